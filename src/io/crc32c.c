#include "io/crc32c.h"

#include <string.h>

#ifdef __SSE4_2__
#include <nmmintrin.h>
#endif

#define POLY 0x82F63B78u

/* Byte-at-a-time table, built on the stack per call (1 KiB, 2K operations): cheaper than
 * a static table initialised on first use, which would be global mutable state. Only used
 * when the compiler may not emit the SSE4.2 crc32 instruction (e.g. the ASan build). */
#ifndef __SSE4_2__
static void make_table(uint32_t t[256]) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        t[i] = c;
    }
}
#endif

uint32_t crc32c_update(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = data;
    uint32_t c = ~crc;
#ifdef __SSE4_2__
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* unaligned-safe */
        c64 = _mm_crc32_u64(c64, w);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--) c = _mm_crc32_u8(c, *p++);
#else
    uint32_t t[256];
    make_table(t);
    while (n--) c = t[(c ^ *p++) & 0xff] ^ (c >> 8);
#endif
    return ~c;
}

/* GF(2) matrix helpers for combine (the method of zlib's crc32_combine): applying "append
 * len_b zero bytes" to crc_a is a linear map, computed by repeated squaring. */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1) sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2_times(mat, mat[n]);
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
    if (len_b == 0) return crc_a;
    uint32_t even[32], odd[32];
    odd[0] = POLY; /* operator for one zero bit */
    uint32_t row = 1;
    for (int n = 1; n < 32; n++) {
        odd[n] = row;
        row <<= 1;
    }
    gf2_square(even, odd); /* two zero bits */
    gf2_square(odd, even); /* four zero bits */
    do {
        gf2_square(even, odd); /* first pass: one zero byte */
        if (len_b & 1) crc_a = gf2_times(even, crc_a);
        len_b >>= 1;
        if (!len_b) break;
        gf2_square(odd, even);
        if (len_b & 1) crc_a = gf2_times(odd, crc_a);
        len_b >>= 1;
    } while (len_b);
    return crc_a ^ crc_b;
}
