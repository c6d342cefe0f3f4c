/* bytebuf.h — a growable byte buffer (NUL-terminated) shared by the tokenizer, the answer
 * checker, the data readers and the CLI while they build strings.
 *
 * Defines: ByteBuf and static inline append helpers (allocation via xrealloc, so an
 * out-of-memory failure is fatal, never a partial result).
 * Must not: know anything about tokens, UTF-8 or files.
 */
#ifndef SOFTCOT_CORE_BYTEBUF_H
#define SOFTCOT_CORE_BYTEBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
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
static inline void bytebuf_puts(ByteBuf *b, const char *s) { bytebuf_append(b, s, strlen(s)); }

static inline void bytebuf_printf(ByteBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void bytebuf_printf(ByteBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need <= 0) return;
    bytebuf_reserve(b, (size_t)need);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)need + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

/* Hands the buffer to the caller (always a valid string, "" when nothing was added). */
static inline char *bytebuf_take(ByteBuf *b) {
    bytebuf_reserve(b, 0);
    b->p[b->n] = '\0';
    char *p = b->p;
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

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
