/* gpu_common.h — helpers shared by the GPU checks (tests/gpu_*.c, run by `make check-gpu`):
 * buffers that hold the same data on the CPU and the CUDA backend, comparison in the
 * norm-wise relative sense, and TAP-style reporting.
 * Relative error of a result y against the CPU reference x: max_i |y_i - x_i| / max_i |x_i|,
 * so tiny reference entries do not make the measure meaningless.
 */
#ifndef SOFTCOT_TESTS_GPU_COMMON_H
#define SOFTCOT_TESTS_GPU_COMMON_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/check.h"
#include "core/rng.h"
#include "ops/ops_backend.h"

static const OpsBackend *CPU, *GPU;
static int n_fail, n_pass;

static inline void gpu_setup(OpsPrecision prec) {
    CPU = &ops_backend_cpu;
    GPU = ops_backend_cuda();
    if (!GPU) {
        printf("Bail out! this binary was built without CUDA (make CUDA=1)\n");
        exit(1);
    }
    Err err;
    if (GPU->init(0, prec, &err)) {
        printf("Bail out! %s\n", err.msg);
        exit(1);
    }
}

static inline double wall_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static inline void fill_random(float *x, size_t n, float scale, uint32_t seed) {
    RngKey k = {.seed = seed, .purpose = RNG_PURPOSE_TEST};
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * rng_uniform(k, (uint32_t)i) - 1.0f);
}

/* The same n floats on both backends. */
typedef struct {
    float *c, *g;
    size_t n;
} Pair;

static inline Pair pair_from(const float *host, size_t n) {
    Pair p = {CPU->alloc_mem(n * sizeof(float)), GPU->alloc_mem(n * sizeof(float)), n};
    CPU->upload(p.c, host, n * sizeof(float));
    GPU->upload(p.g, host, n * sizeof(float));
    return p;
}
static inline Pair pair_random(size_t n, float scale, uint32_t seed) {
    float *h = xmalloc(n * sizeof(float));
    fill_random(h, n, scale, seed);
    Pair p = pair_from(h, n);
    free(h);
    return p;
}
static inline void pair_free(Pair p) {
    CPU->free_mem(p.c);
    GPU->free_mem(p.g);
}

typedef struct {
    int *c, *g;
} IPair;
static inline IPair ipair_from(const int *host, size_t n) {
    IPair p = {CPU->alloc_mem(n * sizeof(int)), GPU->alloc_mem(n * sizeof(int))};
    CPU->upload(p.c, host, n * sizeof(int));
    GPU->upload(p.g, host, n * sizeof(int));
    return p;
}
static inline void ipair_free(IPair p) {
    CPU->free_mem(p.c);
    GPU->free_mem(p.g);
}

/* Norm-wise relative error of the GPU copy against the CPU copy. */
static inline double rel_err_host(const float *ref, const float *got, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= num)) num = d; /* NaN propagates */
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    return den > 0 ? num / den : num;
}
static inline double pair_err(Pair p) {
    float *h = xmalloc(p.n * sizeof(float));
    GPU->download(h, p.g, p.n * sizeof(float));
    double e = rel_err_host(p.c, h, p.n);
    free(h);
    return e;
}

static inline void report(const char *name, double err, double tol) {
    if (err <= tol) {
        n_pass++;
        printf("ok - %s (rel err %.2e <= %.0e)\n", name, err, tol);
    } else {
        n_fail++;
        printf("not ok - %s (rel err %.2e > %.0e)\n", name, err, tol);
    }
    fflush(stdout);
}

static inline int finish(void) {
    printf("# %d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

#endif
