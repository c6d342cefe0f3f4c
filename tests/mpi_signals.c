/* mpi_signals.c — driver for tests/test_signals.sh: a stop signal seen at a step boundary.
 *
 *   mpi_signals DIR   each rank writes DIR/pid.<rank>, then runs "steps" of 20 ms; at
 *                     each step boundary the local flag is OR-ed over ranks (dist_any);
 *                     on a stop every rank reports and exits 3 (EXIT_REQUEUE). Gives up
 *                     (exit 1) after 1500 steps (30 s) without a signal.
 * The shell sends the signal to ONE rank; the check is that every rank stops at the
 * same boundary although only that rank's flag is set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/check.h"
#include "core/fileio.h"
#include "core/signals.h"
#include "mpi_test.h"

int main(int argc, char **argv) {
    Dist d;
    dist_init(&d, &argc, &argv);
    mpi_test_begin(&d);
    if (argc != 2) FATAL("usage: mpi_signals DIR");
    if (signals_install() != 0) FATAL("sigaction failed");
    char path[1024], pid[32];
    Err err;
    snprintf(path, sizeof path, "%s/pid.%d", argv[1], d.rank);
    snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (atomic_write_all(path, pid, strlen(pid), &err)) die_err(&err, 1);
    for (int step = 0; step < 1500; step++) {
        struct timespec t = {0, 20 * 1000000L};
        nanosleep(&t, NULL); /* "work"; a signal may cut it short, which is fine */
        int local = signals_pending();
        if (!dist_any(&d, local != 0)) continue;
        /* Who had the flag, and did everyone stop at the same step? */
        int32_t mine[2] = {local, step};
        int32_t *all = NULL;
        int64_t n = 0;
        dist_allgatherv_i32(&d, mine, 2, &all, &n, NULL);
        int flagged = 0, same_step = 1;
        for (int r = 0; r < d.size; r++) {
            flagged += all[2 * r] != 0;
            same_step &= all[2 * r + 1] == step;
        }
        free(all);
        char name[160];
        snprintf(name, sizeof name, "%d ranks: every rank stops at the same step boundary (step %d)", d.size, step);
        MPI_EXPECT(&d, same_step, name, "steps differ");
        snprintf(name, sizeof name, "%d ranks: the signal reached %d rank(s), dist_any told all %d", d.size, flagged,
                 d.size);
        MPI_EXPECT(&d, flagged >= 1, name, "no rank had the flag");
        printf("# local signal on this rank 0: %d\n", local);
        int rc = test_finish();
        dist_finalize(&d);
        return rc ? rc : EXIT_REQUEUE;
    }
    MPI_EXPECT(&d, 0, "stop signal arrives", "no signal within 30 s");
    test_finish();
    dist_finalize(&d);
    return 1;
}
