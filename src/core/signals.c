#include "signals.h"

#include <signal.h>
#include <string.h>

/* The one global mutable variable softcot allows: written only by the handler (an
 * async-signal-safe store of a sig_atomic_t) and by signals_reset. 0 = no signal. */
static volatile sig_atomic_t stop_signal = 0;

static void on_stop_signal(int sig) {
    stop_signal = sig;
}

int signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    /* Block the other stop signals while the handler runs; they are only deferred, never
     * lost (the flag already says "stop"). */
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGUSR1);
    sigaddset(&sa.sa_mask, SIGINT);
    sa.sa_flags = SA_RESTART; /* never SA_RESETHAND: a second signal must not kill us */
    const int sigs[] = {SIGTERM, SIGUSR1, SIGINT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0) return -1;
    return 0;
}

int signals_pending(void) {
    return (int)stop_signal;
}

void signals_reset(void) {
    stop_signal = 0;
}
