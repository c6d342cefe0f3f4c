/* mstr.h — a growable NUL-terminated string used by the answer checker (rl/) and the
 * data readers/generator (data/) while they build canonical forms and texts.
 *
 * Defines: MStr and static inline append helpers; allocation goes through xrealloc, so
 * running out of memory is fatal rather than a silently truncated answer.
 * Must not: know about LaTeX, JSON or files (it is shared by rl/ and data/).
 */
#ifndef SOFTCOT_RL_MSTR_H
#define SOFTCOT_RL_MSTR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

typedef struct {
    char *p;
    size_t n, cap;
} MStr;

static inline void mstr_reserve(MStr *s, size_t extra) {
    if (s->n + extra + 1 <= s->cap) return;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < s->n + extra + 1) cap *= 2;
    s->p = xrealloc(s->p, cap);
    s->cap = cap;
}

static inline void mstr_add(MStr *s, const char *src, size_t n) {
    mstr_reserve(s, n);
    if (n) memcpy(s->p + s->n, src, n);
    s->n += n;
    s->p[s->n] = '\0';
}

static inline void mstr_puts(MStr *s, const char *src) { mstr_add(s, src, strlen(src)); }
static inline void mstr_putc(MStr *s, char c) { mstr_add(s, &c, 1); }

static inline void mstr_printf(MStr *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void mstr_printf(MStr *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need <= 0) return;
    mstr_reserve(s, (size_t)need);
    va_start(ap, fmt);
    vsnprintf(s->p + s->n, (size_t)need + 1, fmt, ap);
    va_end(ap);
    s->n += (size_t)need;
}

/* Hands the buffer to the caller (always a valid string, "" when nothing was added). */
static inline char *mstr_take(MStr *s) {
    mstr_reserve(s, 0);
    s->p[s->n] = '\0';
    char *p = s->p;
    s->p = NULL;
    s->n = s->cap = 0;
    return p;
}

static inline void mstr_free(MStr *s) {
    free(s->p);
    s->p = NULL;
    s->n = s->cap = 0;
}

#endif
