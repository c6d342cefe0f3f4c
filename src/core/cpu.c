#include "cpu.h"

#include <stdlib.h>
#include <unistd.h>

const char *cpu_blas_coretype(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "SkylakeX";
    if (__builtin_cpu_supports("avx2")) return "Haswell";
    return NULL;
}

void cpu_setup_blas(int argc, char **argv) {
    (void)argc;
    if (getenv("SOFTCOT_BLAS_SETUP_DONE")) return;
    setenv("SOFTCOT_BLAS_SETUP_DONE", "1", 1);
    int need_exec = 0;
    if (!getenv("OPENBLAS_NUM_THREADS")) {
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        need_exec = 1;
    }
    const char *core = cpu_blas_coretype();
    if (core && !getenv("OPENBLAS_CORETYPE")) {
        setenv("OPENBLAS_CORETYPE", core, 1);
        need_exec = 1;
    }
    /* If exec fails we simply continue with the library's own detection. */
    if (need_exec) execv("/proc/self/exe", argv);
}
