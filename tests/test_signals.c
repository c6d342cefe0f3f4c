/* test_signals.c — the stop flag in one process: each stop signal sets it and records
 * which one, a second signal does not kill the process (no SA_RESETHAND), reset clears
 * it, and other signals are untouched. */
#include <signal.h>

#include "core/signals.h"
#include "test.h"

int main(void) {
    TEST_EXPECT(signals_pending() == 0, "no signal pending at start", "got %d", signals_pending());
    TEST_EXPECT(signals_install() == 0, "signals_install succeeds", "sigaction failed");
    TEST_EXPECT(signals_install() == 0, "signals_install is idempotent", "sigaction failed");
    raise(SIGUSR1);
    TEST_EXPECT(signals_pending() == SIGUSR1, "SIGUSR1 sets the flag to SIGUSR1", "got %d", signals_pending());
    raise(SIGTERM);
    raise(SIGTERM); /* a second one must only set the flag again */
    TEST_EXPECT(signals_pending() == SIGTERM, "two SIGTERMs: still alive, flag records SIGTERM", "got %d",
                signals_pending());
    signals_reset();
    TEST_EXPECT(signals_pending() == 0, "signals_reset clears the flag", "got %d", signals_pending());
    raise(SIGINT);
    TEST_EXPECT(signals_pending() == SIGINT, "SIGINT sets the flag", "got %d", signals_pending());
    struct sigaction sa;
    sigaction(SIGTERM, NULL, &sa);
    TEST_EXPECT(!(sa.sa_flags & SA_RESETHAND) && (sa.sa_flags & SA_RESTART),
                "handler stays installed (no SA_RESETHAND) and restarts syscalls (SA_RESTART)", "flags %#x",
                (unsigned)sa.sa_flags);
    sigaction(SIGUSR2, NULL, &sa);
    TEST_EXPECT(sa.sa_handler == SIG_DFL, "other signals keep their default action", "SIGUSR2 handler changed");
    return test_finish();
}
