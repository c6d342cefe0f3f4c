/* bytebuf.h — a growable byte buffer used by the tokenizer while it builds strings.
 *
 * Defines: ByteBuf and static inline append helpers (allocation via xrealloc, so an
 * out-of-memory failure is fatal, never a partial result).
 * Must not: know anything about tokens, UTF-8 or files.
 */
#ifndef SOFTCOT_TEXT_BYTEBUF_H
#define SOFTCOT_TEXT_BYTEBUF_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

typedef struct {
    char *p;
    size_t n, cap;
} ByteBuf;

static inline void bytebuf_reserve(ByteBuf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1) cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

/* Keeps the contents NUL-terminated so callers can hand them to C string APIs. */
static inline void bytebuf_append(ByteBuf *b, const void *src, size_t n) {
    bytebuf_reserve(b, n);
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static inline void bytebuf_putc(ByteBuf *b, char c) { bytebuf_append(b, &c, 1); }

static inline void bytebuf_free(ByteBuf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* Growable int array (token ids). */
typedef struct {
    int *v;
    size_t n, cap;
} IntVec;

static inline void intvec_push(IntVec *a, int x) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = x;
}

#endif
