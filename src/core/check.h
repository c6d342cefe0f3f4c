/* check.h — error handling shared by every layer of softcot.
 *
 * Defines:
 *   - Err: a one-line error message returned by functions that parse user input
 *     (config, JSONL, safetensors, tokenizer.json, HDF5). Such functions return 0 on
 *     success and -1 after filling the Err; they never exit, so tests can assert the
 *     exact message and the CLI decides the exit status.
 *   - CHECK_* style fatal macros for failures that are not the user's fault (out of
 *     memory, a library call that must not fail). They report file:line and exit 1.
 *   - Exit statuses used by the CLI.
 * Must not: contain global mutable state.
 */
#ifndef SOFTCOT_CHECK_H
#define SOFTCOT_CHECK_H

#include <stddef.h>
#include <stdio.h>

enum {
    EXIT_OK = 0,
    EXIT_RUNTIME = 1,     /* a runtime failure: I/O error, numerical abort, ... */
    EXIT_USAGE = 2,       /* bad command line or bad input file */
    EXIT_REQUEUE = 3,     /* checkpointed after a stop signal: resubmit me */
};

/* CUDA sources (C++) include this header too. */
#ifdef __cplusplus
#define SOFTCOT_NORETURN [[noreturn]]
extern "C" {
#else
#define SOFTCOT_NORETURN _Noreturn
#endif

typedef struct {
    char msg[1024];
} Err;

/* Fills err->msg with printf-style text and returns -1, so parsers can write
 * `return err_set(err, "%s: ...", path);`. err may be NULL. */
int err_set(Err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "softcot: <msg>" to stderr and exits with status. */
SOFTCOT_NORETURN void die_err(const Err *err, int status);
SOFTCOT_NORETURN void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fatal internal failure with source position (never for bad user input). */
SOFTCOT_NORETURN void fatal_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define FATAL(...) fatal_at(__FILE__, __LINE__, __VA_ARGS__)
#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) FATAL("check failed: %s", #cond);                                  \
    } while (0)

void *xmalloc_at(size_t n, const char *file, int line);
void *xcalloc_at(size_t n, size_t size, const char *file, int line);
void *xrealloc_at(void *p, size_t n, const char *file, int line);
char *xstrdup_at(const char *s, const char *file, int line);
#define xmalloc(n) xmalloc_at((n), __FILE__, __LINE__)
#define xcalloc(n, s) xcalloc_at((n), (s), __FILE__, __LINE__)
#define xrealloc(p, n) xrealloc_at((p), (n), __FILE__, __LINE__)
#define xstrdup(s) xstrdup_at((s), __FILE__, __LINE__)

#ifdef __cplusplus
}
#endif

#endif
