/* Forwards every ops.h call to the backend chosen by ops_select(). The CPU backend is the
 * default, so programs that never call ops_select (tests, tools) run on the CPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/ops_backend.h"

static const OpsBackend *backend = &ops_backend_cpu;
static OpsPrecision selected_precision = OPS_FP32;

/* SOFTCOT_PROFILE=1: every call synchronises the device before and after itself and adds
 * its wall time to a per-op total, printed to stderr at exit. It serialises the stream, so
 * totals are an upper bound on each op's own cost; off (one branch per call) otherwise. */
enum {
    P_op_allreduce_sum,
    P_dev_alloc,
    P_dev_free,
    P_dev_upload,
    P_dev_download,
    P_dev_copy,
    P_dev_zero,
    P_op_matmul,
    P_op_linear_residual_forward,
    P_op_add_bias,
    P_op_bias_backward,
    P_op_add,
    P_op_scale,
    P_op_sumsq,
    P_op_embed_forward,
    P_op_embed_backward,
    P_op_rmsnorm_forward,
    P_op_rmsnorm_backward,
    P_op_swiglu_forward,
    P_op_swiglu_backward,
    P_op_qkv_forward,
    P_op_qkv_backward,
    P_op_attention_forward,
    P_op_attention_backward,
    P_op_softmax_forward,
    P_op_softmax_backward,
    P_op_logprob_forward,
    P_op_logprob_backward,
    P_op_kl_categorical,
    P_op_entropy,
    P_op_sample,
    P_op_add_noise,
    P_op_gauss_logprob_forward,
    P_op_gauss_logprob_backward,
    P_op_adamw,
    P_COUNT
};
static const char *const PROF_NAMES[P_COUNT] = {
    "op_allreduce_sum",
    "dev_alloc",
    "dev_free",
    "dev_upload",
    "dev_download",
    "dev_copy",
    "dev_zero",
    "op_matmul",
    "op_linear_residual_forward",
    "op_add_bias",
    "op_bias_backward",
    "op_add",
    "op_scale",
    "op_sumsq",
    "op_embed_forward",
    "op_embed_backward",
    "op_rmsnorm_forward",
    "op_rmsnorm_backward",
    "op_swiglu_forward",
    "op_swiglu_backward",
    "op_qkv_forward",
    "op_qkv_backward",
    "op_attention_forward",
    "op_attention_backward",
    "op_softmax_forward",
    "op_softmax_backward",
    "op_logprob_forward",
    "op_logprob_backward",
    "op_kl_categorical",
    "op_entropy",
    "op_sample",
    "op_add_noise",
    "op_gauss_logprob_forward",
    "op_gauss_logprob_backward",
    "op_adamw",
};
static double prof_seconds[P_COUNT];
static long prof_calls[P_COUNT];
static int profiling = -1;

static void prof_report(void) {
    double total = 0;
    for (int i = 0; i < P_COUNT; i++) total += prof_seconds[i];
    fprintf(stderr, "# softcot profile (%s backend): %.3f s in ops\n", backend->name, total);
    for (;;) {
        int best = -1;
        for (int i = 0; i < P_COUNT; i++)
            if (prof_calls[i] > 0 && (best < 0 || prof_seconds[i] > prof_seconds[best])) best = i;
        if (best < 0) break;
        fprintf(stderr, "#   %-24s %9.4f s %5.1f%% %9ld calls\n", PROF_NAMES[best], prof_seconds[best],
                total > 0 ? 100.0 * prof_seconds[best] / total : 0.0, prof_calls[best]);
        prof_calls[best] = 0;
    }
}

static int prof_on(void) {
    if (profiling < 0) {
        const char *e = getenv("SOFTCOT_PROFILE");
        profiling = e && *e && strcmp(e, "0");
        if (profiling) atexit(prof_report);
    }
    return profiling;
}

static double prof_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define TIMED(id, call)                                   \
    do {                                                  \
        if (!prof_on()) {                                 \
            call;                                         \
        } else {                                          \
            backend->sync();                              \
            const double t0_ = prof_now();                \
            call;                                         \
            backend->sync();                              \
            prof_seconds[id] += prof_now() - t0_;         \
            prof_calls[id]++;                             \
        }                                                 \
    } while (0)

int ops_select(const char *device, const char *precision, int local_rank, Err *err) {
    const OpsBackend *want = NULL;
    if (!strcmp(device, "cpu")) want = &ops_backend_cpu;
    else if (!strcmp(device, "cuda")) {
        want = ops_backend_cuda();
        if (!want) return err_set(err, "--device cuda: this softcot was built without CUDA (rebuild with make CUDA=1)");
    } else {
        return err_set(err, "--device: unknown device '%s' (expected cpu or cuda)", device);
    }
    OpsPrecision prec;
    if (!strcmp(precision, "auto")) prec = want->device_is_host ? OPS_FP32 : OPS_BF16;
    else if (!strcmp(precision, "fp32")) prec = OPS_FP32;
    else if (!strcmp(precision, "bf16")) prec = OPS_BF16;
    else return err_set(err, "--precision: unknown precision '%s' (expected auto, bf16 or fp32)", precision);
    if (prec == OPS_BF16 && want->device_is_host)
        return err_set(err, "--precision bf16 needs --device cuda; the CPU backend computes in fp32");
    if (want->init(local_rank, prec, err)) return -1;
    backend = want;
    selected_precision = prec;
    return 0;
}

const char *ops_backend_name(void) { return backend->name; }
const char *ops_precision_name(void) { return selected_precision == OPS_BF16 ? "bf16" : "fp32"; }
int ops_device_is_host(void) { return backend->device_is_host; }
size_t dev_bytes_peak(void) { return backend->bytes_peak(); }

int ops_replay_begin(uint64_t key) { return prof_on() ? 0 : backend->replay_begin(key); }
void ops_replay_end(uint64_t key) {
    if (!prof_on()) backend->replay_end(key);
}

size_t ops_comm_id_bytes(void) { return backend->comm_id_bytes; }
void ops_comm_unique_id(void *id) { backend->comm_unique_id(id); }
int ops_comm_init(const void *id, int rank, int nranks, Err *err) { return backend->comm_init(id, rank, nranks, err); }
void op_allreduce_sum(float *x, size_t n) { TIMED(P_op_allreduce_sum, backend->allreduce_sum(x, n)); }

void *dev_alloc(size_t bytes) {
    void *r_;
    TIMED(P_dev_alloc, r_ = backend->alloc_mem(bytes));
    return r_;
}
void dev_free(void *p) { TIMED(P_dev_free, backend->free_mem(p)); }
void dev_upload(void *dst, const void *host_src, size_t bytes) { TIMED(P_dev_upload, backend->upload(dst, host_src, bytes)); }
void dev_download(void *host_dst, const void *src, size_t bytes) { TIMED(P_dev_download, backend->download(host_dst, src, bytes)); }
void dev_copy(void *dst, const void *src, size_t bytes) { TIMED(P_dev_copy, backend->copy(dst, src, bytes)); }
void dev_zero(void *p, size_t bytes) { TIMED(P_dev_zero, backend->zero(p, bytes)); }
void dev_sync(void) { backend->sync(); }
void op_matmul(float *C, const float *A, const float *B, int M, int N, int K, int trans_a, int trans_b, float alpha, float beta) { TIMED(P_op_matmul, backend->matmul(C, A, B, M, N, K, trans_a, trans_b, alpha, beta)); }
void op_add_bias(float *y, const float *b, int T, int n) { TIMED(P_op_add_bias, backend->add_bias(y, b, T, n)); }
void op_bias_backward(float *db, const float *dy, int T, int n) { TIMED(P_op_bias_backward, backend->bias_backward(db, dy, T, n)); }
void op_linear_residual_forward(float *y, const float *x, const float *W, const float *residual, int T, int in, int out) { TIMED(P_op_linear_residual_forward, backend->linear_residual_forward(y, x, W, residual, T, in, out)); }
void op_add(float *y, const float *x, size_t n) { TIMED(P_op_add, backend->add(y, x, n)); }
void op_scale(float *y, float s, size_t n) { TIMED(P_op_scale, backend->scale(y, s, n)); }
double op_sumsq(const float *x, size_t n) {
    double r_;
    TIMED(P_op_sumsq, r_ = backend->sumsq(x, n));
    return r_;
}
void op_embed_forward(float *out, const int *tokens, const float *vectors, const float *E, int T, int d) { TIMED(P_op_embed_forward, backend->embed_forward(out, tokens, vectors, E, T, d)); }
void op_embed_backward(float *dE, const float *dout, const int *tokens, int T, int d) { TIMED(P_op_embed_backward, backend->embed_backward(dE, dout, tokens, T, d)); }
void op_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int T, int d, float eps) { TIMED(P_op_rmsnorm_forward, backend->rmsnorm_forward(out, rstd, x, w, T, d, eps)); }
void op_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int T, int d) { TIMED(P_op_rmsnorm_backward, backend->rmsnorm_backward(dx, dw, dout, x, w, rstd, T, d)); }
void op_swiglu_forward(float *h, const float *gate_up, int T, int ff) { TIMED(P_op_swiglu_forward, backend->swiglu_forward(h, gate_up, T, ff)); }
void op_swiglu_backward(float *dgate_up, const float *dh, const float *gate_up, int T, int ff) { TIMED(P_op_swiglu_backward, backend->swiglu_backward(dgate_up, dh, gate_up, T, ff)); }
void op_qkv_forward(float *q, float *k_cache, float *v_cache, const float *qkv, const float *cos_tab, const float *sin_tab, const AttnBatch *b, int n_heads, int n_kv_heads, int hs) { TIMED(P_op_qkv_forward, backend->qkv_forward(q, k_cache, v_cache, qkv, cos_tab, sin_tab, b, n_heads, n_kv_heads, hs)); }
void op_qkv_backward(float *dqkv, const float *dq, const float *dk_cache, const float *dv_cache, const float *cos_tab, const float *sin_tab, const AttnBatch *b, int n_heads, int n_kv_heads, int hs) { TIMED(P_op_qkv_backward, backend->qkv_backward(dqkv, dq, dk_cache, dv_cache, cos_tab, sin_tab, b, n_heads, n_kv_heads, hs)); }
void op_attention_forward(float *out, float *lse, const float *q, const float *k_cache, const float *v_cache, const AttnBatch *b, int n_heads, int n_kv_heads, int hs) { TIMED(P_op_attention_forward, backend->attention_forward(out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs)); }
void op_attention_backward(float *dq, float *dk_cache, float *dv_cache, const float *dout, const float *out, const float *lse, const float *q, const float *k_cache, const float *v_cache, const AttnBatch *b, int n_heads, int n_kv_heads, int hs) { TIMED(P_op_attention_backward, backend->attention_backward(dq, dk_cache, dv_cache, dout, out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs)); }
void op_softmax_forward(float *p, const float *z, int rows, int V, float inv_temp) { TIMED(P_op_softmax_forward, backend->softmax_forward(p, z, rows, V, inv_temp)); }
void op_softmax_backward(float *dz, const float *dp, const float *p, int rows, int V, float inv_temp) { TIMED(P_op_softmax_backward, backend->softmax_backward(dz, dp, p, rows, V, inv_temp)); }
void op_logprob_forward(float *logp, const float *z, const int *target, int rows, int V, float inv_temp) { TIMED(P_op_logprob_forward, backend->logprob_forward(logp, z, target, rows, V, inv_temp)); }
void op_logprob_backward(float *dz, const float *dlogp, const float *z, const int *target, int rows, int V, float inv_temp) { TIMED(P_op_logprob_backward, backend->logprob_backward(dz, dlogp, z, target, rows, V, inv_temp)); }
void op_kl_categorical(float *kl, float *dz, const float *z, const float *z_ref, const float *weight, int rows, int V, float inv_temp) { TIMED(P_op_kl_categorical, backend->kl_categorical(kl, dz, z, z_ref, weight, rows, V, inv_temp)); }
void op_entropy(float *ent, const float *z, int rows, int V, float inv_temp) { TIMED(P_op_entropy, backend->entropy(ent, z, rows, V, inv_temp)); }
void op_sample(int *ids, const float *z, const float *u, int rows, int V, float inv_temp) { TIMED(P_op_sample, backend->sample(ids, z, u, rows, V, inv_temp)); }
void op_add_noise(float *x, const RngKey *host_keys, int rows, int d, float sigma) { TIMED(P_op_add_noise, backend->add_noise(x, host_keys, rows, d, sigma)); }
void op_gauss_logprob_forward(float *out, const float *h, const float *mu, int rows, int d, float inv_two_sigma2) { TIMED(P_op_gauss_logprob_forward, backend->gauss_logprob_forward(out, h, mu, rows, d, inv_two_sigma2)); }
void op_gauss_logprob_backward(float *dmu, const float *dout, const float *h, const float *mu, int rows, int d, float inv_two_sigma2) { TIMED(P_op_gauss_logprob_backward, backend->gauss_logprob_backward(dmu, dout, h, mu, rows, d, inv_two_sigma2)); }
void op_adamw(float *p, const float *g, float *m, float *v, size_t n, AdamWParams hp) { TIMED(P_op_adamw, backend->adamw(p, g, m, v, n, hp)); }