/* cpu.h — process start-up for the CPU math libraries.
 *
 * Debian's OpenBLAS 0.3.21 mis-detects recent AMD/Intel CPUs as "Prescott" and runs sgemm
 * about 5x slower. OpenBLAS reads OPENBLAS_CORETYPE in a library constructor, before
 * main(), so the only way to fix it from inside the program is to set the variable and
 * re-exec ourselves. cpu_setup_blas does that once (SkylakeX with AVX-512, Haswell with
 * AVX2) unless the user already chose a core type, and defaults OpenBLAS to one thread
 * (one rank per core is the parallelism model; set OPENBLAS_NUM_THREADS to override).
 * Must not: be called after any thread or MPI has started.
 */
#ifndef SOFTCOT_CPU_H
#define SOFTCOT_CPU_H

void cpu_setup_blas(int argc, char **argv);

/* The core type we would pick for this CPU ("SkylakeX", "Haswell" or NULL). */
const char *cpu_blas_coretype(void);

#endif
