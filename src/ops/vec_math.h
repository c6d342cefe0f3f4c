/* vec_math.h — an expf that gcc can vectorise (glibc's expf only vectorises under
 * -ffast-math, and calls such as rintf/fmaf next to the clamps stop gcc's if-conversion).
 * Cody-Waite range reduction, round-to-nearest by the 1.5*2^23 trick, Cephes' degree-6
 * polynomial: within a few ulp on [-87, 88]. Inputs are clamped to that range, so exp of
 * a very negative number is ~1.6e-38 rather than 0, which is harmless inside softmax sums.
 * Must not: depend on errno or rounding mode; be used where exact IEEE expf is needed.
 */
#ifndef SOFTCOT_VEC_MATH_H
#define SOFTCOT_VEC_MATH_H

#include <stdint.h>

static inline float vexpf(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float n = (x * 1.44269504088896341f + round_magic) - round_magic;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)n + 127) << 23};
    return p * scale.f;
}

#endif
