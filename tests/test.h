/* test.h — the tiny test harness every C test in tests/ uses.
 *
 * Each test binary reports one line per check: "ok - name" or "not ok - name: why".
 * tests/run.sh counts those lines over all binaries and shell tests and prints the
 * closing "N passed, N failed". A binary exits 1 if any of its checks failed.
 * Defines: TEST_OK / TEST_EXPECT / rel_err helpers and SHARED_DIR lookup.
 * Must not: depend on any softcot module.
 */
#ifndef SOFTCOT_TEST_H
#define SOFTCOT_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures_ = 0;
static int test_count_ = 0;

static inline void test_report(int ok, const char *name, const char *fmt, ...) {
    test_count_++;
    if (ok) {
        printf("ok - %s\n", name);
    } else {
        test_failures_++;
        printf("not ok - %s: ", name);
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
    }
    fflush(stdout);
}

/* TEST_EXPECT(cond, name, fmt, ...): one reported check. */
#define TEST_EXPECT(cond, name, ...) test_report(!!(cond), (name), __VA_ARGS__)

/* Exit status for main(): nonzero when any check failed or none ran. */
static inline int test_finish(void) {
    if (test_count_ == 0) {
        printf("not ok - no checks ran\n");
        return 1;
    }
    return test_failures_ ? 1 : 0;
}

/* ||a-b|| / ||b|| in double precision. */
static inline double rel_err_f(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static inline double rel_err_fd(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Root of the read-only shared data (GSM8K, tokenizers, stories260K). Tests that need it
 * skip with a message when it is absent. */
static inline const char *shared_dir(void) {
    const char *s = getenv("SOFTCOT_SHARED");
    return s && *s ? s : "../shared";
}

#endif
