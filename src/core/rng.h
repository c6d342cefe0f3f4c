/* rng.h — counter-based random numbers (Philox4x32-10).
 *
 * Every random draw in softcot is a pure function of a key, so rollouts do not depend on
 * the rank, the number of ranks, or the order in which things are computed. A key names
 * one stream: (seed, step, prompt index, sample index, position, purpose); element i of a
 * stream is computed directly from its counter. The same functions run on the host and,
 * compiled as CUDA device code, on the GPU (hence the plain, header-only inline style).
 * Must not: keep state between calls.
 */
#ifndef SOFTCOT_RNG_H
#define SOFTCOT_RNG_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define RNG_FN __host__ __device__ static inline
#else
#define RNG_FN static inline
#endif

typedef enum {
    RNG_PURPOSE_NOISE = 1,   /* soft/fuzzy CoT Gaussian noise */
    RNG_PURPOSE_SAMPLE = 2,  /* categorical token sampling */
    RNG_PURPOSE_DATA = 3,    /* data order shuffles */
    RNG_PURPOSE_INIT = 4,    /* parameter initialisation */
    RNG_PURPOSE_TEST = 5,
} RngPurpose;

typedef struct {
    uint64_t seed;
    uint32_t step, prompt, sample, position, purpose;
} RngKey;

RNG_FN uint64_t rng_splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Philox4x32-10 (Salmon et al., SC'11). */
RNG_FN void rng_philox(const uint32_t key_in[2], const uint32_t ctr_in[4], uint32_t out[4]) {
    uint32_t k0 = key_in[0], k1 = key_in[1];
    uint32_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* The Philox key mixes seed, purpose and sample; the counter carries the block index,
 * position, step and prompt, so distinct streams never share a counter. */
RNG_FN void rng_block(RngKey k, uint32_t block, uint32_t out[4]) {
    uint64_t mixed = rng_splitmix64(k.seed ^ rng_splitmix64(((uint64_t)k.purpose << 32) | k.sample));
    uint32_t key[2] = {(uint32_t)mixed, (uint32_t)(mixed >> 32)};
    uint32_t ctr[4] = {block, k.position, k.step, k.prompt};
    rng_philox(key, ctr, out);
}

/* Uniform in [0, 1) with 24 random bits: element i of the stream. */
RNG_FN float rng_uniform(RngKey k, uint32_t i) {
    uint32_t out[4];
    rng_block(k, i / 4, out);
    return (float)(out[i % 4] >> 8) * (1.0f / 16777216.0f);
}

/* Standard normal: element i of the stream (Box-Muller on one Philox block per pair). */
RNG_FN float rng_normal(RngKey k, uint32_t i) {
    uint32_t out[4];
    rng_block(k, i / 2, out);
    uint32_t a = out[(i % 2) * 2], b = out[(i % 2) * 2 + 1];
    /* u1 in (0, 1] so the log is finite */
    double u1 = ((double)a + 1.0) * (1.0 / 4294967296.0);
    double u2 = (double)b * (1.0 / 4294967296.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

#endif
