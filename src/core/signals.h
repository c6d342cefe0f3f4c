/* signals.h — the stop flag set by SIGTERM, SIGUSR1 and SIGINT.
 *
 * Defines: signals_install, which makes those three signals set a flag (and nothing else),
 * signals_pending, which reports the signal seen, and signals_reset.
 * Slurm sends SIGTERM (or the signal chosen with --signal) before preemption and at the
 * time limit; the training loop polls signals_pending() at each step boundary, ORs it
 * across ranks with dist_any(), checkpoints and exits with EXIT_REQUEUE.
 * The handler stays installed (no SA_RESETHAND), so a second signal while checkpointing
 * only sets the flag again: it can never kill the process half-way through a write.
 * SA_RESTART is set so that interrupted read/write/fsync calls resume instead of failing
 * with EINTR inside HDF5 or MPI-IO.
 * Must not: do anything in the handler but store the signal number (async-signal-safe);
 * hold any state other than that one flag (the project's only global mutable variable).
 */
#ifndef SOFTCOT_SIGNALS_H
#define SOFTCOT_SIGNALS_H

/* Installs the handler for SIGTERM, SIGUSR1 and SIGINT. Idempotent. Returns 0, or -1 if
 * sigaction failed (errno set). */
int signals_install(void);

/* The number of the most recent stop signal received since the last reset, or 0. */
int signals_pending(void);

/* Clears the flag (e.g. after the stop was handled, or in tests). */
void signals_reset(void);

#endif
