/* mpi_test.h — test.h for programs launched with mpirun (tests/mpi_*.c).
 *
 * Every rank evaluates every check; the verdict is OR-ed over ranks with dist_any, so all
 * ranks agree and exit with the same status. Only rank 0 prints "ok - / not ok - " lines
 * (the other ranks' stdout goes to /dev/null); a rank whose own check failed explains
 * why on stderr, prefixed with its rank.
 * Defines: mpi_test_begin, MPI_EXPECT.
 * Must not: be used by single-process tests (use test.h directly).
 */
#ifndef SOFTCOT_MPI_TEST_H
#define SOFTCOT_MPI_TEST_H

#include <stdio.h>

#include "dist/dist.h"
#include "test.h"

static inline void mpi_test_begin(Dist *d) {
    if (d->rank != 0 && !freopen("/dev/null", "w", stdout)) perror("freopen");
}

/* MPI_EXPECT(d, cond, name, fmt, ...): collective check. */
#define MPI_EXPECT(d, cond, name, ...)                                                  \
    do {                                                                                \
        int ok_ = !!(cond);                                                             \
        if (!ok_) {                                                                     \
            fprintf(stderr, "rank %d: %s: ", (d)->rank, (name));                        \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
        }                                                                               \
        int bad_ = dist_any((d), !ok_);                                                 \
        test_report(!bad_, (name), __VA_ARGS__);                                        \
    } while (0)

#endif
