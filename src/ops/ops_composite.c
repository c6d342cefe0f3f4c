/* Ops built from the primitives of ops.h; shared by the CPU and CUDA backends. */
#include "ops/ops.h"

void op_linear_forward(float *y, const float *x, const float *W, const float *b, int T, int in,
                       int out) {
    op_matmul(y, x, W, T, out, in, 0, 1, 1.0f, 0.0f);
    if (b) op_add_bias(y, b, T, out);
}

void op_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                        const float *W, int T, int in, int out, int accumulate_dx) {
    if (dx) op_matmul(dx, dy, W, T, in, out, 0, 0, 1.0f, accumulate_dx ? 1.0f : 0.0f);
    op_matmul(dW, dy, x, out, in, T, 1, 0, 1.0f, 1.0f);
    if (db) op_bias_backward(db, dy, T, out);
}

void op_mixture_forward(float *mu, const float *p, const float *E, int T, int V, int d) {
    op_matmul(mu, p, E, T, d, V, 0, 0, 1.0f, 0.0f);
}

void op_mixture_backward(float *dp, float *dE, const float *dmu, const float *p, const float *E,
                         int T, int V, int d) {
    if (dp) op_matmul(dp, dmu, E, T, V, d, 0, 1, 1.0f, 0.0f);
    op_matmul(dE, p, dmu, V, d, T, 1, 0, 1.0f, 1.0f);
}
