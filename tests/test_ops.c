/* Every op of ops.h, forward and backward, against a naive double-precision reference,
 * and every backward against central finite differences of that reference. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "ops/ops.h"
#include "test.h"

/* ---------- helpers ---------- */

static uint32_t g_counter = 0; /* test-local stream position; tests are single-threaded */

static float urand(void) { return rng_uniform((RngKey){.seed = 7, .purpose = RNG_PURPOSE_TEST}, g_counter++) * 2 - 1; }

static float *rand_dev(size_t n, float scale) {
    float *h = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = urand() * scale;
    float *d = dev_alloc(n * sizeof(float));
    dev_upload(d, h, n * sizeof(float));
    free(h);
    return d;
}

static float *to_host(const float *d, size_t n) {
    float *h = malloc(n * sizeof(float));
    dev_download(h, d, n * sizeof(float));
    return h;
}

static double *to_double(const float *d, size_t n) {
    float *h = to_host(d, n);
    double *o = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) o[i] = h[i];
    free(h);
    return o;
}

static void check_rel(const char *name, const float *dev_got, const double *want, size_t n,
                      double tol) {
    float *got = to_host(dev_got, n);
    double e = rel_err_fd(got, want, n);
    TEST_EXPECT(e <= tol, name, "relative error %.3g > %.3g", e, tol);
    free(got);
}

/* Finite-difference gradient of a double-precision scalar function of x[n]:
 * fills g[n] with (f(x+h) - f(x-h)) / 2h. */
typedef double (*ScalarFn)(const double *x, void *ctx);
static void fd_grad(ScalarFn f, void *ctx, double *x, size_t n, double *g) {
    const double h = 1e-5;
    for (size_t i = 0; i < n; i++) {
        double keep = x[i];
        x[i] = keep + h;
        double fp = f(x, ctx);
        x[i] = keep - h;
        double fm = f(x, ctx);
        x[i] = keep;
        g[i] = (fp - fm) / (2 * h);
    }
}

static double dot_d(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---------- matmul / linear ---------- */

static void ref_matmul(double *C, const double *A, const double *B, int M, int N, int K, int ta,
                       int tb) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (ta ? A[(size_t)k * M + i] : A[(size_t)i * K + k]) *
                     (tb ? B[(size_t)j * K + k] : B[(size_t)k * N + j]);
            C[(size_t)i * N + j] = s;
        }
}

static void test_matmul(void) {
    const int M = 7, N = 5, K = 9;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float *A = rand_dev((size_t)M * K, 1), *B = rand_dev((size_t)K * N, 1);
            float *C = rand_dev((size_t)M * N, 1);
            double *Ad = to_double(A, (size_t)M * K), *Bd = to_double(B, (size_t)K * N);
            double *Cd = to_double(C, (size_t)M * N), *R = malloc(sizeof(double) * M * N);
            ref_matmul(R, Ad, Bd, M, N, K, ta, tb);
            for (int i = 0; i < M * N; i++) R[i] = 0.5 * R[i] + 0.25 * Cd[i];
            op_matmul(C, A, B, M, N, K, ta, tb, 0.5f, 0.25f);
            char name[64];
            snprintf(name, sizeof name, "matmul trans_a=%d trans_b=%d", ta, tb);
            check_rel(name, C, R, (size_t)M * N, 1e-6);
            dev_free(A), dev_free(B), dev_free(C);
            free(Ad), free(Bd), free(Cd), free(R);
        }
}

typedef struct { int T, in, out; const double *x, *W, *b, *gy; int wrt; } LinCtx;

static double lin_loss(const double *v, void *p) {
    LinCtx *c = p;
    const double *x = c->wrt == 0 ? v : c->x, *W = c->wrt == 1 ? v : c->W, *b = c->wrt == 2 ? v : c->b;
    double s = 0;
    for (int t = 0; t < c->T; t++)
        for (int o = 0; o < c->out; o++) {
            double y = b[o];
            for (int i = 0; i < c->in; i++) y += x[t * c->in + i] * W[o * c->in + i];
            s += y * c->gy[t * c->out + o];
        }
    return s;
}

static void test_linear(void) {
    const int T = 5, in = 6, out = 4;
    float *x = rand_dev(T * in, 1), *W = rand_dev(out * in, 1), *b = rand_dev(out, 1);
    float *y = dev_alloc(sizeof(float) * T * out), *gy = rand_dev(T * out, 1);
    float *dx = rand_dev(T * in, 1), *dW = dev_alloc(sizeof(float) * out * in), *db = dev_alloc(sizeof(float) * out);
    op_linear_forward(y, x, W, b, T, in, out);
    double *xd = to_double(x, T * in), *Wd = to_double(W, out * in), *bd = to_double(b, out);
    double *gyd = to_double(gy, T * out), *want = malloc(sizeof(double) * T * out);
    for (int t = 0; t < T; t++)
        for (int o = 0; o < out; o++) {
            double s = bd[o];
            for (int i = 0; i < in; i++) s += xd[t * in + i] * Wd[o * in + i];
            want[t * out + o] = s;
        }
    check_rel("linear forward (with bias)", y, want, T * out, 1e-6);
    op_linear_backward(dx, dW, db, gy, x, W, T, in, out, 0);
    LinCtx c = {T, in, out, xd, Wd, bd, gyd, 0};
    double g[64];
    fd_grad(lin_loss, &c, xd, T * in, g);
    check_rel("linear backward dx vs finite differences", dx, g, T * in, 1e-6);
    c.wrt = 1;
    fd_grad(lin_loss, &c, Wd, out * in, g);
    check_rel("linear backward dW vs finite differences", dW, g, out * in, 1e-6);
    c.wrt = 2;
    fd_grad(lin_loss, &c, bd, out, g);
    check_rel("linear backward db vs finite differences", db, g, out, 1e-6);
    /* into the residual stream: y = r + x W^T, into a separate y and in place */
    float *r = rand_dev(T * out, 2);
    double *rd = to_double(r, T * out);
    for (int t = 0; t < T; t++)
        for (int o = 0; o < out; o++) {
            double s = rd[t * out + o];
            for (int i = 0; i < in; i++) s += xd[t * in + i] * Wd[o * in + i];
            want[t * out + o] = s;
        }
    op_linear_residual_forward(y, x, W, r, T, in, out);
    check_rel("linear forward into the residual stream (y = r + x W^T)", y, want, T * out, 1e-6);
    op_linear_residual_forward(r, x, W, r, T, in, out);
    check_rel("linear forward into the residual stream, in place (y is r)", r, want, T * out, 1e-6);
    dev_free(x), dev_free(W), dev_free(b), dev_free(y), dev_free(gy), dev_free(dx), dev_free(dW), dev_free(db), dev_free(r);
    free(xd), free(Wd), free(bd), free(gyd), free(want), free(rd);
}

/* ---------- embedding and mixture ---------- */

static void test_embed(void) {
    const int V = 11, d = 6, T = 5;
    int tokens[5] = {3, -1, 3, 10, -1};
    float *E = rand_dev(V * d, 1), *vec = rand_dev(T * d, 1), *out = dev_alloc(sizeof(float) * T * d);
    int *dt = dev_alloc(sizeof tokens);
    dev_upload(dt, tokens, sizeof tokens);
    op_embed_forward(out, dt, vec, E, T, d);
    double *Ed = to_double(E, V * d), *vd = to_double(vec, T * d), want[30];
    for (int t = 0; t < T; t++)
        for (int i = 0; i < d; i++) want[t * d + i] = tokens[t] >= 0 ? Ed[tokens[t] * d + i] : vd[t * d + i];
    check_rel("embed forward mixes token rows and input vectors", out, want, T * d, 0);
    float *g = rand_dev(T * d, 1), *dE = dev_alloc(sizeof(float) * V * d);
    op_embed_backward(dE, g, dt, T, d);
    double *gd = to_double(g, T * d), wantE[66] = {0};
    for (int t = 0; t < T; t++)
        if (tokens[t] >= 0)
            for (int i = 0; i < d; i++) wantE[tokens[t] * d + i] += gd[t * d + i];
    check_rel("embed backward: token rows only, vectors get nothing", dE, wantE, V * d, 1e-7);
    dev_free(E), dev_free(vec), dev_free(out), dev_free(dt), dev_free(g), dev_free(dE);
    free(Ed), free(vd), free(gd);
}

typedef struct { int T, V, d; const double *p, *E, *g; int wrt; } MixCtx;
static double mix_loss(const double *v, void *pc) {
    MixCtx *c = pc;
    const double *p = c->wrt == 0 ? v : c->p, *E = c->wrt == 1 ? v : c->E;
    double s = 0;
    for (int t = 0; t < c->T; t++)
        for (int i = 0; i < c->d; i++) {
            double mu = 0;
            for (int k = 0; k < c->V; k++) mu += p[t * c->V + k] * E[k * c->d + i];
            s += mu * c->g[t * c->d + i];
        }
    return s;
}

static void test_mixture(void) {
    const int T = 3, V = 7, d = 4;
    float *p = rand_dev(T * V, 1), *E = rand_dev(V * d, 1), *mu = dev_alloc(sizeof(float) * T * d);
    op_mixture_forward(mu, p, E, T, V, d);
    double *pd = to_double(p, T * V), *Ed = to_double(E, V * d), want[12];
    ref_matmul(want, pd, Ed, T, d, V, 0, 0);
    check_rel("mixture forward p @ E", mu, want, T * d, 1e-6);
    float *g = rand_dev(T * d, 1), *dp = dev_alloc(sizeof(float) * T * V), *dE = dev_alloc(sizeof(float) * V * d);
    op_mixture_backward(dp, dE, g, p, E, T, V, d);
    double *gd = to_double(g, T * d), num[28];
    MixCtx c = {T, V, d, pd, Ed, gd, 0};
    fd_grad(mix_loss, &c, pd, T * V, num);
    check_rel("mixture backward dp vs finite differences", dp, num, T * V, 1e-6);
    c.wrt = 1;
    fd_grad(mix_loss, &c, Ed, V * d, num);
    check_rel("mixture backward dE vs finite differences", dE, num, V * d, 1e-6);
    dev_free(p), dev_free(E), dev_free(mu), dev_free(g), dev_free(dp), dev_free(dE);
    free(pd), free(Ed), free(gd);
}

/* ---------- rmsnorm, swiglu ---------- */

typedef struct { int T, d; double eps; const double *x, *w, *g; int wrt; } NormCtx;
static void ref_rmsnorm(double *out, const double *x, const double *w, int T, int d, double eps) {
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int i = 0; i < d; i++) ss += x[t * d + i] * x[t * d + i];
        double r = 1 / sqrt(ss / d + eps);
        for (int i = 0; i < d; i++) out[t * d + i] = x[t * d + i] * r * w[i];
    }
}
static double norm_loss(const double *v, void *p) {
    NormCtx *c = p;
    double out[64];
    ref_rmsnorm(out, c->wrt == 0 ? v : c->x, c->wrt == 1 ? v : c->w, c->T, c->d, c->eps);
    return dot_d(out, c->g, c->T * c->d);
}

static void test_rmsnorm(void) {
    const int T = 4, d = 8;
    const float eps = 1e-5f;
    float *x = rand_dev(T * d, 2), *w = rand_dev(d, 1), *out = dev_alloc(sizeof(float) * T * d);
    float *rstd = dev_alloc(sizeof(float) * T);
    op_rmsnorm_forward(out, rstd, x, w, T, d, eps);
    double *xd = to_double(x, T * d), *wd = to_double(w, d), want[32];
    ref_rmsnorm(want, xd, wd, T, d, eps);
    check_rel("rmsnorm forward", out, want, T * d, 1e-6);
    float *g = rand_dev(T * d, 1), *dx = rand_dev(T * d, 1), *dw = dev_alloc(sizeof(float) * d);
    double *dx0 = to_double(dx, T * d);
    op_rmsnorm_backward(dx, dw, g, x, w, rstd, T, d);
    double *gd = to_double(g, T * d), num[32];
    NormCtx c = {T, d, eps, xd, wd, gd, 0};
    fd_grad(norm_loss, &c, xd, T * d, num);
    for (int i = 0; i < T * d; i++) num[i] += dx0[i]; /* backward accumulates into dx */
    check_rel("rmsnorm backward dx (accumulating) vs finite differences", dx, num, T * d, 1e-5);
    c.wrt = 1;
    fd_grad(norm_loss, &c, wd, d, num);
    check_rel("rmsnorm backward dw vs finite differences", dw, num, d, 1e-5);
    dev_free(x), dev_free(w), dev_free(out), dev_free(rstd), dev_free(g), dev_free(dx), dev_free(dw);
    free(xd), free(wd), free(gd), free(dx0);
}

/* Packed [T, 2 ff] rows: gate in the first ff columns, up in the second. */
typedef struct { int T, ff; const double *gu, *g; } SwiCtx;
static double swiglu_loss(const double *v, void *p) {
    SwiCtx *c = p;
    double s = 0;
    for (int t = 0; t < c->T; t++)
        for (int i = 0; i < c->ff; i++) {
            double a = v[t * 2 * c->ff + i], b = v[t * 2 * c->ff + c->ff + i];
            s += a / (1 + exp(-a)) * b * c->g[t * c->ff + i];
        }
    return s;
}

static void test_swiglu(void) {
    enum { T = 4, FF = 10 };
    float *gu = rand_dev(T * 2 * FF, 4), *h = dev_alloc(sizeof(float) * T * FF);
    op_swiglu_forward(h, gu, T, FF);
    double *gud = to_double(gu, T * 2 * FF), want[T * FF];
    for (int t = 0; t < T; t++)
        for (int i = 0; i < FF; i++) {
            double a = gud[t * 2 * FF + i], b = gud[t * 2 * FF + FF + i];
            want[t * FF + i] = a / (1 + exp(-a)) * b;
        }
    check_rel("swiglu forward on packed gate/up rows", h, want, T * FF, 1e-6);
    float *g = rand_dev(T * FF, 1), *dgu = dev_alloc(sizeof(float) * T * 2 * FF);
    op_swiglu_backward(dgu, g, gu, T, FF);
    double *gd = to_double(g, T * FF), num[T * 2 * FF];
    SwiCtx c = {T, FF, gud, gd};
    fd_grad(swiglu_loss, &c, gud, T * 2 * FF, num);
    check_rel("swiglu backward d(gate, up) vs finite differences", dgu, num, T * 2 * FF, 1e-6);
    dev_free(gu), dev_free(h), dev_free(g), dev_free(dgu);
    free(gud), free(gd);
}

/* ---------- packed q/k/v: rope and the KV cache ---------- */

static void test_qkv(void) {
    enum { NH = 4, NKV = 2, HS = 8, HALF = HS / 2, MAX_SEQ = 16, SLOTS = 3, ROWS = 9 };
    enum { QD = NH * HS, KVD = NKV * HS, W = QD + 2 * KVD, CACHE = SLOTS * MAX_SEQ * KVD };
    /* three sequences in slots 2, 0, 1; the last continues a cached prefix of 13 */
    int slot[3] = {2, 0, 1}, start[3] = {0, 0, 13}, len[3] = {5, 1, 3}, row0[3] = {0, 5, 6};
    float cos_t[MAX_SEQ * HALF], sin_t[MAX_SEQ * HALF];
    for (int p = 0; p < MAX_SEQ; p++)
        for (int i = 0; i < HALF; i++) {
            double a = p * pow(10000.0, -2.0 * i / HS);
            cos_t[p * HALF + i] = (float)cos(a);
            sin_t[p * HALF + i] = (float)sin(a);
        }
    float *dc = dev_alloc(sizeof cos_t), *ds = dev_alloc(sizeof sin_t);
    dev_upload(dc, cos_t, sizeof cos_t), dev_upload(ds, sin_t, sizeof sin_t);
    int host_meta[12];
    memcpy(host_meta, slot, 12), memcpy(host_meta + 3, start, 12), memcpy(host_meta + 6, len, 12), memcpy(host_meta + 9, row0, 12);
    int *meta = dev_alloc(sizeof host_meta);
    dev_upload(meta, host_meta, sizeof host_meta);
    AttnBatch b = {3, MAX_SEQ, ROWS, slot, start, len, row0, meta, meta + 3, meta + 6, meta + 9};

    float *qkv = rand_dev(ROWS * W, 1), *q = dev_alloc(sizeof(float) * ROWS * QD);
    float *kc = rand_dev(CACHE, 1), *vc = rand_dev(CACHE, 1); /* stale entries elsewhere must survive */
    double *x = to_double(qkv, ROWS * W), *kc_want = to_double(kc, CACHE), *vc_want = to_double(vc, CACHE);
    double q_want[ROWS * QD];
    /* Hugging Face: x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1] */
    for (int s = 0; s < 3; s++)
        for (int j = 0; j < len[s]; j++) {
            const int r = row0[s] + j, pos = start[s] + j;
            const double *row = x + r * W;
            for (int h = 0; h < NH + NKV; h++)
                for (int i = 0; i < HS; i++) {
                    const double *v = row + h * HS, a = pos * pow(10000.0, -2.0 * (i % HALF) / HS);
                    double rot = i < HALF ? -v[i + HALF] : v[i - HALF];
                    double y = v[i] * cos(a) + rot * sin(a);
                    if (h < NH) q_want[r * QD + h * HS + i] = y;
                    else kc_want[((size_t)slot[s] * MAX_SEQ + pos) * KVD + (h - NH) * HS + i] = y;
                }
            for (int e = 0; e < KVD; e++) vc_want[((size_t)slot[s] * MAX_SEQ + pos) * KVD + e] = row[QD + KVD + e];
        }
    op_qkv_forward(q, kc, vc, qkv, dc, ds, &b, NH, NKV, HS);
    check_rel("qkv forward: q rotated (half-split, HF rotate_half)", q, q_want, ROWS * QD, 1e-6);
    check_rel("qkv forward: k rotated into its slot and position, other cache entries kept", kc, kc_want, CACHE, 1e-6);
    check_rel("qkv forward: v copied into its slot and position, other cache entries kept", vc, vc_want, CACHE, 0);

    /* The op is linear in qkv, so its backward must be its transpose:
     * <forward(x), g> == <x, backward(g)> for g = (dq, dk_cache, dv_cache). Stale cache
     * entries hold no gradient, so zero them out of the product by zeroing the caches. */
    float *dq = rand_dev(ROWS * QD, 1), *dkc = rand_dev(CACHE, 1), *dvc = rand_dev(CACHE, 1);
    float *dqkv = dev_alloc(sizeof(float) * ROWS * W);
    op_qkv_backward(dqkv, dq, dkc, dvc, dc, ds, &b, NH, NKV, HS);
    dev_zero(kc, sizeof(float) * CACHE), dev_zero(vc, sizeof(float) * CACHE);
    op_qkv_forward(q, kc, vc, qkv, dc, ds, &b, NH, NKV, HS);
    double *qf = to_double(q, ROWS * QD), *kf = to_double(kc, CACHE), *vf = to_double(vc, CACHE);
    double *dqd = to_double(dq, ROWS * QD), *dkd = to_double(dkc, CACHE), *dvd = to_double(dvc, CACHE);
    double *back = to_double(dqkv, ROWS * W);
    double lhs = dot_d(qf, dqd, ROWS * QD) + dot_d(kf, dkd, CACHE) + dot_d(vf, dvd, CACHE);
    double rhs = dot_d(x, back, ROWS * W);
    TEST_EXPECT(fabs(lhs - rhs) <= 1e-5 * fabs(lhs), "qkv backward is the transpose of forward",
                "<f(x), g> %.9g vs <x, f^T(g)> %.9g", lhs, rhs);
    /* and the v part is exactly the cached gradient of the row's position */
    int exact = 1;
    for (int s = 0; s < 3; s++)
        for (int j = 0; j < len[s]; j++)
            for (int e = 0; e < KVD; e++)
                exact &= back[(row0[s] + j) * W + QD + KVD + e] ==
                         dvd[((size_t)slot[s] * MAX_SEQ + start[s] + j) * KVD + e];
    TEST_EXPECT(exact, "qkv backward gathers dv from each row's slot and position", "-");
    dev_free(dc), dev_free(ds), dev_free(meta), dev_free(qkv), dev_free(q), dev_free(kc), dev_free(vc);
    dev_free(dq), dev_free(dkc), dev_free(dvc), dev_free(dqkv);
    free(x), free(kc_want), free(vc_want), free(qf), free(kf), free(vf), free(dqd), free(dkd), free(dvd), free(back);
}

/* ---------- attention ---------- */

typedef struct {
    int n_seq, nh, nkv, hs, max_seq, rows;
    const int *slot, *start, *len, *row0;
    const double *q, *kc, *vc, *g; /* kc/vc: caches [slots][max_seq][nkv*hs] */
    int wrt; /* 0 q, 1 k cache, 2 v cache */
} AttCtx;

static void ref_attention(double *out, const AttCtx *c, const double *q, const double *kc, const double *vc) {
    const int qd = c->nh * c->hs, kvd = c->nkv * c->hs, group = c->nh / c->nkv;
    for (int s = 0; s < c->n_seq; s++)
        for (int i = 0; i < c->len[s]; i++) {
            int row = c->row0[s] + i, pos = c->start[s] + i;
            for (int h = 0; h < c->nh; h++) {
                const double *qv = q + row * qd + h * c->hs;
                double sc[64], mx = -1e300, sum = 0;
                for (int j = 0; j <= pos; j++) {
                    const double *kv = kc + ((size_t)c->slot[s] * c->max_seq + j) * kvd + (h / group) * c->hs;
                    sc[j] = dot_d(qv, kv, c->hs) / sqrt((double)c->hs);
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                for (int j = 0; j <= pos; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int e = 0; e < c->hs; e++) {
                    double o = 0;
                    for (int j = 0; j <= pos; j++)
                        o += sc[j] / sum * vc[((size_t)c->slot[s] * c->max_seq + j) * kvd + (h / group) * c->hs + e];
                    out[row * qd + h * c->hs + e] = o;
                }
            }
        }
}

static double att_loss(const double *v, void *p) {
    AttCtx *c = p;
    double out[2048];
    ref_attention(out, c, c->wrt == 0 ? v : c->q, c->wrt == 1 ? v : c->kc, c->wrt == 2 ? v : c->vc);
    return dot_d(out, c->g, (size_t)c->rows * c->nh * c->hs);
}

static void test_attention(void) {
    const int nh = 4, nkv = 2, hs = 4, max_seq = 12, slots = 3;
    const int qd = nh * hs, kvd = nkv * hs;
    /* three sequences in slots 2, 0, 1; the last one is a decode step on a cached prefix */
    int slot[3] = {2, 0, 1}, start[3] = {0, 0, 5}, len[3] = {6, 3, 2}, row0[3] = {0, 6, 9};
    const int rows = 11;
    const size_t cache_n = (size_t)slots * max_seq * kvd;
    float *q = rand_dev(rows * qd, 1.5f), *kc = rand_dev(cache_n, 1.5f), *vc = rand_dev(cache_n, 1);
    AttnBatch b = {3, max_seq, rows, slot, start, len, row0, NULL, NULL, NULL, NULL};
    int *meta = dev_alloc(sizeof(int) * 12);
    int host_meta[12];
    memcpy(host_meta, slot, 12), memcpy(host_meta + 3, start, 12), memcpy(host_meta + 6, len, 12), memcpy(host_meta + 9, row0, 12);
    dev_upload(meta, host_meta, sizeof host_meta);
    b.d_slot = meta, b.d_start = meta + 3, b.d_len = meta + 6, b.d_row0 = meta + 9;
    float *out = dev_alloc(sizeof(float) * rows * qd), *lse = dev_alloc(sizeof(float) * rows * nh);
    op_attention_forward(out, lse, q, kc, vc, &b, nh, nkv, hs);
    double *qd_ = to_double(q, rows * qd), *kcd = to_double(kc, cache_n), *vcd = to_double(vc, cache_n);
    AttCtx c = {3, nh, nkv, hs, max_seq, rows, slot, start, len, row0, qd_, kcd, vcd, NULL, 0};
    double want[11 * 16];
    ref_attention(want, &c, qd_, kcd, vcd);
    check_rel("attention forward: causal, GQA, batched slots, cached prefix", out, want, rows * qd, 1e-6);

    /* backward needs start = 0: use the first two sequences only */
    AttnBatch b2 = b;
    b2.n_seq = 2;
    b2.total_rows = 9;
    c.n_seq = 2;
    c.rows = 9;
    float *g = rand_dev(9 * qd, 1), *dq = dev_alloc(sizeof(float) * 9 * qd);
    float *dk = dev_alloc(sizeof(float) * cache_n), *dv = dev_alloc(sizeof(float) * cache_n);
    op_attention_forward(out, lse, q, kc, vc, &b2, nh, nkv, hs);
    op_attention_backward(dq, dk, dv, g, out, lse, q, kc, vc, &b2, nh, nkv, hs);
    double *gd = to_double(g, 9 * qd);
    c.g = gd;
    double *num = malloc(sizeof(double) * cache_n);
    fd_grad(att_loss, &c, qd_, 9 * qd, num);
    check_rel("attention backward dq vs finite differences", dq, num, 9 * qd, 1e-5);
    c.wrt = 1;
    fd_grad(att_loss, &c, kcd, cache_n, num);
    check_rel("attention backward dk (cache layout) vs finite differences", dk, num, cache_n, 1e-5);
    c.wrt = 2;
    fd_grad(att_loss, &c, vcd, cache_n, num);
    check_rel("attention backward dv (cache layout) vs finite differences", dv, num, cache_n, 1e-5);
    dev_free(q), dev_free(kc), dev_free(vc), dev_free(meta);
    dev_free(out), dev_free(lse), dev_free(g), dev_free(dq), dev_free(dk), dev_free(dv);
    free(qd_), free(kcd), free(vcd), free(gd), free(num);
}

/* ---------- vocabulary distributions ---------- */

typedef struct { int rows, V; double it; const double *g; const int *tgt; } DistCtx;

static void ref_softmax(double *p, const double *z, int rows, int V, double it) {
    for (int r = 0; r < rows; r++) {
        double mx = -1e300, s = 0;
        for (int i = 0; i < V; i++) mx = fmax(mx, z[r * V + i] * it);
        for (int i = 0; i < V; i++) s += (p[r * V + i] = exp(z[r * V + i] * it - mx));
        for (int i = 0; i < V; i++) p[r * V + i] /= s;
    }
}
static double softmax_loss(const double *z, void *pc) {
    DistCtx *c = pc;
    double p[256];
    ref_softmax(p, z, c->rows, c->V, c->it);
    return dot_d(p, c->g, c->rows * c->V);
}
static double logprob_loss(const double *z, void *pc) {
    DistCtx *c = pc;
    double p[256], s = 0;
    ref_softmax(p, z, c->rows, c->V, c->it);
    for (int r = 0; r < c->rows; r++)
        if (c->tgt[r] >= 0) s += log(p[r * c->V + c->tgt[r]]) * c->g[r];
    return s;
}

static void test_distributions(void) {
    const int rows = 4, V = 9;
    const float inv_temp = 2.0f; /* temperature 0.5, the paper's soft-token setting */
    float *z = rand_dev(rows * V, 3), *p = dev_alloc(sizeof(float) * rows * V);
    double *zd = to_double(z, rows * V), want[36];
    op_softmax_forward(p, z, rows, V, inv_temp);
    ref_softmax(want, zd, rows, V, inv_temp);
    check_rel("softmax forward with temperature", p, want, rows * V, 1e-6);

    float *gp = rand_dev(rows * V, 1), *dz = rand_dev(rows * V, 1);
    double *dz0 = to_double(dz, rows * V), *gpd = to_double(gp, rows * V), num[36];
    op_softmax_backward(dz, gp, p, rows, V, inv_temp);
    DistCtx c = {rows, V, inv_temp, gpd, NULL};
    fd_grad(softmax_loss, &c, zd, rows * V, num);
    for (int i = 0; i < rows * V; i++) num[i] += dz0[i];
    check_rel("softmax backward (accumulating) vs finite differences", dz, num, rows * V, 1e-5);

    int tgt[4] = {3, -1, 0, 8};
    int *dt = dev_alloc(sizeof tgt);
    dev_upload(dt, tgt, sizeof tgt);
    float *lp = dev_alloc(sizeof(float) * rows), *gl = rand_dev(rows, 1);
    op_logprob_forward(lp, z, dt, rows, V, inv_temp);
    double wl[4];
    for (int r = 0; r < rows; r++) wl[r] = tgt[r] >= 0 ? log(want[r * V + tgt[r]]) : 0;
    check_rel("log-softmax at target (ignored rows give 0)", lp, wl, rows, 1e-6);
    dev_zero(dz, sizeof(float) * rows * V);
    op_logprob_backward(dz, gl, z, dt, rows, V, inv_temp);
    double *gld = to_double(gl, rows);
    DistCtx c2 = {rows, V, inv_temp, gld, tgt};
    fd_grad(logprob_loss, &c2, zd, rows * V, num);
    check_rel("log-softmax backward vs finite differences", dz, num, rows * V, 1e-5);

    float *ent = dev_alloc(sizeof(float) * rows);
    op_entropy(ent, z, rows, V, inv_temp);
    double we[4] = {0};
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < V; i++) we[r] -= want[r * V + i] * log(want[r * V + i]);
    check_rel("entropy of softmax(z/T)", ent, we, rows, 1e-6);

    /* sampling: greedy is argmax; inverse-CDF picks the bucket that contains u */
    int ids[4];
    float u[4] = {0.0f, 0.3f, 0.6f, 0.999f};
    float *du = dev_alloc(sizeof u);
    int *did = dev_alloc(sizeof ids);
    dev_upload(du, u, sizeof u);
    op_sample(did, z, du, rows, V, 0.0f);
    dev_download(ids, did, sizeof ids);
    int ok = 1;
    for (int r = 0; r < rows; r++) {
        int best = 0;
        for (int i = 1; i < V; i++) best = zd[r * V + i] > zd[r * V + best] ? i : best;
        ok &= ids[r] == best;
    }
    TEST_EXPECT(ok, "sample with inv_temp 0 is argmax", "mismatch");
    op_sample(did, z, du, rows, V, inv_temp);
    dev_download(ids, did, sizeof ids);
    ok = 1;
    for (int r = 0; r < rows; r++) {
        double lo = 0;
        for (int i = 0; i < ids[r]; i++) lo += want[r * V + i];
        double hi = lo + want[r * V + ids[r]];
        ok &= u[r] >= lo - 1e-6 && u[r] < hi + 1e-6;
    }
    TEST_EXPECT(ok, "sample by inverse CDF lands in u's bucket", "mismatch");
    dev_free(z), dev_free(p), dev_free(gp), dev_free(dz), dev_free(dt), dev_free(lp), dev_free(gl);
    dev_free(ent), dev_free(du), dev_free(did);
    free(zd), free(dz0), free(gpd), free(gld);
}

/* ---------- KL to a reference distribution ---------- */

typedef struct { int rows, V; double it; const double *zref, *w; } KlCtx;
static double kl_loss(const double *z, void *pc) {
    KlCtx *c = pc;
    double p[256], q[256], s = 0;
    ref_softmax(p, z, c->rows, c->V, c->it);
    ref_softmax(q, c->zref, c->rows, c->V, c->it);
    for (int r = 0; r < c->rows; r++)
        for (int i = 0; i < c->V; i++) s += c->w[r] * p[r * c->V + i] * log(p[r * c->V + i] / q[r * c->V + i]);
    return s;
}

static void test_kl(void) {
    const int rows = 3, V = 7;
    const float inv_temp = 1.5f;
    float *z = rand_dev(rows * V, 2), *zr = rand_dev(rows * V, 2), *kl = dev_alloc(sizeof(float) * rows);
    float hw[3] = {0.7f, 0.0f, -1.3f};
    float *w = dev_alloc(sizeof hw), *dz = rand_dev(rows * V, 1);
    dev_upload(w, hw, sizeof hw);
    double *zd = to_double(z, rows * V), *zrd = to_double(zr, rows * V), *dz0 = to_double(dz, rows * V);
    double wd[3] = {0.7, 0.0, -1.3}, p[21], q[21], want[3] = {0};
    op_kl_categorical(kl, dz, z, zr, w, rows, V, inv_temp);
    ref_softmax(p, zd, rows, V, inv_temp);
    ref_softmax(q, zrd, rows, V, inv_temp);
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < V && wd[r] != 0; i++) want[r] += p[r * V + i] * log(p[r * V + i] / q[r * V + i]);
    check_rel("KL(softmax(z/T) || softmax(z_ref/T)) per weighted row", kl, want, rows, 1e-5);
    KlCtx c = {rows, V, inv_temp, zrd, wd};
    double num[21];
    fd_grad(kl_loss, &c, zd, rows * V, num);
    for (int i = 0; i < rows * V; i++) num[i] += dz0[i];
    check_rel("KL backward (weighted, accumulating) vs finite differences", dz, num, rows * V, 1e-5);
    op_kl_categorical(kl, NULL, z, z, w, rows, V, inv_temp);
    float *hk = to_host(kl, rows);
    TEST_EXPECT(fabsf(hk[0]) < 1e-6f && fabsf(hk[2]) < 1e-6f, "KL of a distribution to itself is 0", "got %g %g", hk[0], hk[2]);
    free(hk), free(zd), free(zrd), free(dz0);
    dev_free(z), dev_free(zr), dev_free(kl), dev_free(w), dev_free(dz);
}

/* ---------- noise and the Gaussian log-density ---------- */

static void test_noise(void) {
    const int rows = 4, d = 5000;
    float *x = dev_alloc(sizeof(float) * rows * d);
    RngKey keys[4];
    for (int r = 0; r < rows; r++) keys[r] = (RngKey){.seed = 42, .step = 3, .prompt = 1, .sample = (uint32_t)r, .position = 9, .purpose = RNG_PURPOSE_NOISE};
    op_add_noise(x, keys, rows, d, 0.5f);
    float *h = to_host(x, rows * d);
    int ok = 1;
    for (int r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int i = 0; i < d; i++) m += h[r * d + i];
        m /= d;
        for (int i = 0; i < d; i++) v += (h[r * d + i] - m) * (h[r * d + i] - m);
        double sd = sqrt(v / d);
        ok &= fabs(m) < 0.03 && fabs(sd - 0.5) < 0.02;
    }
    TEST_EXPECT(ok, "noise has mean 0 and the requested sigma", "moments off");
    TEST_EXPECT(memcmp(h, h + d, sizeof(float) * d) != 0, "noise streams differ per sample", "identical");
    /* the same key gives the same numbers, whatever else was drawn before */
    float *y = dev_alloc(sizeof(float) * d);
    op_add_noise(y, &keys[2], 1, d, 0.5f);
    float *hy = to_host(y, d);
    TEST_EXPECT(memcmp(hy, h + 2 * d, sizeof(float) * d) == 0, "noise is a pure function of its key", "differs");
    free(h), free(hy), dev_free(x), dev_free(y);

    const int R = 3, D = 4;
    const float inv2s2 = 1.0f / (2 * 0.3f * 0.3f);
    float *ht = rand_dev(R * D, 1), *mu = rand_dev(R * D, 1), *out = dev_alloc(sizeof(float) * R);
    op_gauss_logprob_forward(out, ht, mu, R, D, inv2s2);
    double *hd = to_double(ht, R * D), *md = to_double(mu, R * D), w[3];
    for (int r = 0; r < R; r++) {
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (hd[r * D + i] - md[r * D + i]) * (hd[r * D + i] - md[r * D + i]);
        w[r] = -ss * inv2s2;
    }
    check_rel("gaussian log-density forward", out, w, R, 1e-6);
    float *g = rand_dev(R, 1), *dmu = dev_alloc(sizeof(float) * R * D);
    op_gauss_logprob_backward(dmu, g, ht, mu, R, D, inv2s2);
    double *gd = to_double(g, R), wd[12];
    for (int r = 0; r < R; r++)
        for (int i = 0; i < D; i++) wd[r * D + i] = gd[r] * 2 * inv2s2 * (hd[r * D + i] - md[r * D + i]);
    check_rel("gaussian log-density backward d/dmu", dmu, wd, R * D, 1e-6);
    dev_free(ht), dev_free(mu), dev_free(out), dev_free(g), dev_free(dmu);
    free(hd), free(md), free(gd);
}

/* ---------- AdamW ---------- */

static void test_adamw(void) {
    const int n = 17;
    float *p = rand_dev(n, 1), *m = dev_alloc(sizeof(float) * n), *v = dev_alloc(sizeof(float) * n);
    double *pd = to_double(p, n), md[17] = {0}, vd[17] = {0};
    AdamWParams hp = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
    for (int step = 1; step <= 3; step++) {
        float *g = rand_dev(n, 1);
        double *gd = to_double(g, n);
        hp.step = step;
        op_adamw(p, g, m, v, n, hp);
        for (int i = 0; i < n; i++) {
            pd[i] *= 1 - (double)hp.lr * hp.weight_decay;
            md[i] = hp.beta1 * md[i] + (1 - (double)hp.beta1) * gd[i];
            vd[i] = hp.beta2 * vd[i] + (1 - (double)hp.beta2) * gd[i] * gd[i];
            double mh = md[i] / (1 - pow(hp.beta1, step)), vh = vd[i] / (1 - pow(hp.beta2, step));
            pd[i] -= hp.lr * mh / (sqrt(vh) + hp.eps);
        }
        dev_free(g);
        free(gd);
    }
    check_rel("adamw matches PyTorch's update over 3 steps", p, pd, n, 1e-6);
    dev_free(p), dev_free(m), dev_free(v);
    free(pd);
}

/* The backend bookkeeping every backend provides: selection, peak bytes, recordings. */
static void test_backend(void) {
    TEST_EXPECT(!strcmp(ops_backend_name(), "cpu") && ops_device_is_host() && !strcmp(ops_precision_name(), "fp32"),
                "the CPU backend serves before ops_select", "backend %s", ops_backend_name());
    Err err;
    int rc = ops_select("cuda", "auto", 0, &err);
    TEST_EXPECT(rc == -1 && strstr(err.msg, "built without CUDA") && !strcmp(ops_backend_name(), "cpu"),
                "ops_select(cuda) in a CPU build fails and keeps the CPU backend", "rc %d: %s", rc, rc ? err.msg : "");
    rc = ops_select("cpu", "bf16", 0, &err);
    TEST_EXPECT(rc == -1 && strstr(err.msg, "needs --device cuda"), "bf16 is refused on the CPU backend", "rc %d", rc);
    TEST_EXPECT(ops_select("cpu", "auto", 0, &err) == 0 && !strcmp(ops_precision_name(), "fp32"),
                "cpu with precision auto means fp32", "%s", ops_precision_name());
    const size_t before = dev_bytes_peak();
    float *a = dev_alloc((size_t)3 << 20), *b = dev_alloc((size_t)1 << 20);
    const size_t both = dev_bytes_peak();
    dev_free(a), dev_free(b);
    float *c = dev_alloc(1000);
    TEST_EXPECT(both >= before && both - before >= ((size_t)4 << 20) && dev_bytes_peak() == both,
                "dev_bytes_peak counts live blocks and keeps the peak after frees", "before %zu both %zu now %zu", before,
                both, dev_bytes_peak());
    dev_free(c);
    TEST_EXPECT(ops_replay_begin(42) == 0 && ops_replay_begin(42) == 0 && ops_comm_id_bytes() == 0,
                "the CPU backend never records op sequences and has no device collectives", "-");
    ops_replay_end(42);
}

int main(void) {
    test_backend();
    test_matmul();
    test_linear();
    test_embed();
    test_mixture();
    test_rmsnorm();
    test_swiglu();
    test_qkv();
    test_attention();
    test_distributions();
    test_kl();
    test_noise();
    test_adamw();
    return test_finish();
}
