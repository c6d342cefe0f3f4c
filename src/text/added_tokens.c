#include "text/added_tokens.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/check.h"
#include "text/utf8.h"

int unicode_is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* tokenizers' is_word_char: char::is_alphanumeric() || '_'. Alphanumeric is taken as
 * the L and N general categories. */
static int is_word_char(uint32_t c) {
    if (c == '_') return 1;
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
           (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

/* Code point ending at s[end) (end > 0). */
static uint32_t cp_before(const char *s, size_t end, size_t *start) {
    size_t i = end - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    uint32_t cp;
    utf8_decode_one(s + i, end - i, &cp);
    if (start) *start = i;
    return cp;
}

static int cmp_pattern(const void *a, const void *b) {
    const AddedPattern *x = a, *y = b;
    unsigned char fx = (unsigned char)x->s[0], fy = (unsigned char)y->s[0];
    if (fx != fy) return fx < fy ? -1 : 1;
    if (x->n != y->n) return x->n > y->n ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

void added_matcher_build(AddedMatcher *m, AddedPattern *pats, int n) {
    memset(m, 0, sizeof *m);
    m->p = pats;
    m->n = n;
    if (n) qsort(pats, (size_t)n, sizeof *pats, cmp_pattern);
    int k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < n && (unsigned char)pats[k].s[0] < b) k++;
        m->first[b] = k;
    }
}

void added_matcher_free(AddedMatcher *m) {
    for (int i = 0; i < m->n; i++) free(m->p[i].s);
    free(m->p);
    memset(m, 0, sizeof *m);
}

int added_matcher_next(const AddedMatcher *m, const char *s, size_t n, size_t from, int *id,
                       size_t *ms, size_t *me) {
    if (m->n == 0) return 0;
    for (size_t i = from; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        int lo = m->first[b], hi = m->first[b + 1];
        if (lo == hi) continue;
        const AddedPattern *hit = NULL;
        for (int k = lo; k < hi; k++)
            if (m->p[k].n <= n - i && !memcmp(s + i, m->p[k].s, m->p[k].n)) {
                hit = &m->p[k];
                break;
            }
        if (!hit) continue;
        size_t start = i, stop = i + hit->n;
        if (hit->single_word) {
            int word_before = start > 0 && is_word_char(cp_before(s, start, NULL));
            uint32_t next = 0;
            int word_after = stop < n && (utf8_decode_one(s + stop, n - stop, &next), is_word_char(next));
            if (word_before || word_after) {
                /* tokenizers drops the match and resumes after it, so the same bytes
                 * cannot match a shorter token either. */
                i = stop - 1;
                continue;
            }
        }
        if (hit->lstrip) {
            size_t p;
            while (start > from && unicode_is_space(cp_before(s, start, &p))) start = p;
        }
        if (hit->rstrip) {
            uint32_t cp;
            int k;
            while (stop < n && (k = utf8_decode_one(s + stop, n - stop, &cp), unicode_is_space(cp)))
                stop += (size_t)k;
        }
        *id = hit->id;
        *ms = start;
        *me = stop;
        return 1;
    }
    return 0;
}
