/* added_tokens.h — finding tokenizer.json "added_tokens" inside input text.
 *
 * Defines: AddedMatcher, which finds the leftmost-longest occurrence of any added token
 * (the aho-corasick LeftmostLongest rule of tokenizers' AddedVocabulary) and applies the
 * token's single_word, lstrip and rstrip flags the way tokenizers does.
 * Must not: normalize, pre-tokenize or know about BPE; keep state between calls.
 */
#ifndef SOFTCOT_TEXT_ADDED_TOKENS_H
#define SOFTCOT_TEXT_ADDED_TOKENS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int id;
    char *s; /* owned, valid UTF-8, non-empty */
    size_t n;
    uint8_t single_word, lstrip, rstrip;
} AddedPattern;

typedef struct {
    AddedPattern *p; /* sorted by first byte, then longest first */
    int n;
    int first[257]; /* patterns starting with byte b are p[first[b] .. first[b+1]) */
} AddedMatcher;

/* Takes ownership of pats (n entries, malloc'd array). */
void added_matcher_build(AddedMatcher *m, AddedPattern *pats, int n);
void added_matcher_free(AddedMatcher *m);

/* Next match in s[from..n) (s valid UTF-8). Returns 1 with the token id and the span
 * [*ms, *me) it covers (after lstrip/rstrip, never starting before from), else 0. */
int added_matcher_next(const AddedMatcher *m, const char *s, size_t n, size_t from, int *id,
                       size_t *ms, size_t *me);

/* Unicode White_Space (Rust's char::is_whitespace). */
int unicode_is_space(uint32_t cp);

#endif
