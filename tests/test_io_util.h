/* test_io_util.h — helpers shared by the weights I/O tests: a scratch directory that is
 * removed at exit, raw file writers for hand-built malformed inputs, and an exact
 * error-message check.
 * Must not: be used outside tests/, or hide a failure (every helper that can fail aborts
 * the test binary with a message).
 */
#ifndef SOFTCOT_TEST_IO_UTIL_H
#define SOFTCOT_TEST_IO_UTIL_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "test.h"

static inline int rm_entry_(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void rm_rf(const char *dir) { nftw(dir, rm_entry_, 16, FTW_DEPTH | FTW_PHYS); }

/* Creates a fresh directory under $TMPDIR (or /tmp); caller passes a 256-byte buffer. */
static inline void make_tmpdir(char *buf, size_t cap) {
    const char *t = getenv("TMPDIR");
    snprintf(buf, cap, "%s/softcot_io_XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(1);
    }
}

static inline void write_bytes(const char *path, const void *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    if (!fp || (len && fwrite(data, 1, len, fp) != len) || fclose(fp) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static inline void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

/* A safetensors file from a given header text (declared length = strlen unless
 * hlen_override >= 0) followed by data_len bytes of data (a counting pattern if NULL). */
static inline void write_st_raw(const char *path, const char *header, int64_t hlen_override,
                                const void *data, size_t data_len) {
    size_t h = strlen(header);
    uint64_t declared = hlen_override >= 0 ? (uint64_t)hlen_override : (uint64_t)h;
    size_t total = 8 + h + data_len;
    unsigned char *b = malloc(total);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(declared >> (8 * i));
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++)
        b[8 + h + i] = data ? ((const unsigned char *)data)[i] : (unsigned char)i;
    write_bytes(path, b, total);
    free(b);
}

/* Checks that a call failed with exactly the expected one-line message. */
static inline void expect_err(const char *name, int rc, const Err *err, const char *expected) {
    TEST_EXPECT(rc == -1 && !strcmp(err->msg, expected), name, "rc=%d\n   got:      '%s'\n   expected: '%s'",
                rc, rc ? err->msg : "(success)", expected);
}

/* EXPECT_ERR(name, call, fmt, ...): `call` uses the local Err named ERR and must fail with
 * exactly the message printf(fmt, ...). */
#define EXPECT_ERR(name, call, ...)                                                       \
    do {                                                                                  \
        Err ERR = {{0}};                                                                  \
        char want_[1024];                                                                 \
        snprintf(want_, sizeof want_, __VA_ARGS__);                                       \
        int rc_ = (call);                                                                 \
        expect_err((name), rc_, &ERR, want_);                                             \
    } while (0)

#endif
