/* hf_regex.h — the split regex of a tokenizer.json pre-tokenizer, run with PCRE2.
 *
 * Defines: compilation of a pattern taken verbatim from the file (UTF + Unicode
 * properties, JIT when available) and iteration over its non-empty matches.
 * Hugging Face runs these patterns with Oniguruma, where \s is Unicode White_Space;
 * PCRE2's \s lacks U+0085 (NEL), so the pattern is rewritten to add it. Nothing else
 * in the pattern is changed: (?i:...), \p{L}, \p{N}, lookahead are PCRE2-native.
 * Must not: hard-code any tokenizer's pattern; share match state between calls (each
 * encode owns a RegexScratch, so one compiled regex serves many threads).
 */
#ifndef SOFTCOT_TEXT_HF_REGEX_H
#define SOFTCOT_TEXT_HF_REGEX_H

#include <stddef.h>

#include "core/check.h"

typedef struct HfRegex HfRegex;

/* literal: the file gave {"String": ...}, to be matched verbatim. On failure the Err
 * holds "invalid regex at offset N: reason" (the caller prefixes the file name). */
HfRegex *hf_regex_compile(const char *pattern, size_t len, int literal, Err *err);
void hf_regex_free(HfRegex *re);

typedef struct {
    void *match_data;
    void *match_ctx;
    void *jit_stack;
} RegexScratch;

void regex_scratch_free(RegexScratch *s);

/* Finds the next non-empty match in s[0..n) starting at or after byte `from` (a
 * character boundary of valid UTF-8). Returns 1 and sets [*ms, *me), 0 when there is
 * none, -1 with err set if PCRE2 gave up (match limit). Empty matches are skipped one
 * character at a time, as Oniguruma's find_iter does. */
int hf_regex_next(const HfRegex *re, const char *s, size_t n, size_t from, size_t *ms,
                  size_t *me, RegexScratch *scr, Err *err);

#endif
