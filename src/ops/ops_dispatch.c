/* Forwards every ops.h call to the backend chosen by ops_select(). The CPU backend is the
 * default, so programs that never call ops_select (tests, tools) run on the CPU. */
#include <string.h>

#include "ops/ops_backend.h"

static const OpsBackend *backend = &ops_backend_cpu;
static OpsPrecision selected_precision = OPS_FP32;

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

size_t ops_comm_id_bytes(void) { return backend->comm_id_bytes; }
void ops_comm_unique_id(void *id) { backend->comm_unique_id(id); }
int ops_comm_init(const void *id, int rank, int nranks, Err *err) { return backend->comm_init(id, rank, nranks, err); }
void op_allreduce_sum(float *x, size_t n) { backend->allreduce_sum(x, n); }

void *dev_alloc(size_t bytes) { return backend->alloc_mem(bytes); }
void dev_free(void *p) { backend->free_mem(p); }
void dev_upload(void *dst, const void *host_src, size_t bytes) { backend->upload(dst, host_src, bytes); }
void dev_download(void *host_dst, const void *src, size_t bytes) { backend->download(host_dst, src, bytes); }
void dev_copy(void *dst, const void *src, size_t bytes) { backend->copy(dst, src, bytes); }
void dev_zero(void *p, size_t bytes) { backend->zero(p, bytes); }
void dev_sync(void) { backend->sync(); }
void op_matmul(float *C, const float *A, const float *B, int M, int N, int K, int trans_a, int trans_b, float alpha, float beta) { backend->matmul(C, A, B, M, N, K, trans_a, trans_b, alpha, beta); }
void op_add_bias(float *y, const float *b, int T, int n) { backend->add_bias(y, b, T, n); }
void op_bias_backward(float *db, const float *dy, int T, int n) { backend->bias_backward(db, dy, T, n); }
void op_add(float *y, const float *x, size_t n) { backend->add(y, x, n); }
void op_scale(float *y, float s, size_t n) { backend->scale(y, s, n); }
double op_sumsq(const float *x, size_t n) { return backend->sumsq(x, n); }
void op_embed_forward(float *out, const int *tokens, const float *vectors, const float *E, int T, int d) { backend->embed_forward(out, tokens, vectors, E, T, d); }
void op_embed_backward(float *dE, const float *dout, const int *tokens, int T, int d) { backend->embed_backward(dE, dout, tokens, T, d); }
void op_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int T, int d, float eps) { backend->rmsnorm_forward(out, rstd, x, w, T, d, eps); }
void op_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int T, int d) { backend->rmsnorm_backward(dx, dw, dout, x, w, rstd, T, d); }
void op_swiglu_forward(float *h, const float *gate, const float *up, size_t n) { backend->swiglu_forward(h, gate, up, n); }
void op_swiglu_backward(float *dgate, float *dup, const float *dh, const float *gate, const float *up, size_t n) { backend->swiglu_backward(dgate, dup, dh, gate, up, n); }
void op_rope_forward(float *x, const int *pos, const float *cos_tab, const float *sin_tab, int T, int n_heads, int hs) { backend->rope_forward(x, pos, cos_tab, sin_tab, T, n_heads, hs); }
void op_rope_backward(float *dx, const int *pos, const float *cos_tab, const float *sin_tab, int T, int n_heads, int hs) { backend->rope_backward(dx, pos, cos_tab, sin_tab, T, n_heads, hs); }
void op_kv_store(float *cache, const float *kv, const AttnBatch *b, int kv_dim) { backend->kv_store(cache, kv, b, kv_dim); }
void op_kv_gather(float *kv, const float *cache, const AttnBatch *b, int kv_dim) { backend->kv_gather(kv, cache, b, kv_dim); }
void op_attention_forward(float *out, float *lse, const float *q, const float *k_cache, const float *v_cache, const AttnBatch *b, int n_heads, int n_kv_heads, int hs) { backend->attention_forward(out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs); }
void op_attention_backward(float *dq, float *dk_cache, float *dv_cache, const float *dout, const float *out, const float *lse, const float *q, const float *k_cache, const float *v_cache, const AttnBatch *b, int n_heads, int n_kv_heads, int hs) { backend->attention_backward(dq, dk_cache, dv_cache, dout, out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs); }
void op_softmax_forward(float *p, const float *z, int rows, int V, float inv_temp) { backend->softmax_forward(p, z, rows, V, inv_temp); }
void op_softmax_backward(float *dz, const float *dp, const float *p, int rows, int V, float inv_temp) { backend->softmax_backward(dz, dp, p, rows, V, inv_temp); }
void op_logprob_forward(float *logp, const float *z, const int *target, int rows, int V, float inv_temp) { backend->logprob_forward(logp, z, target, rows, V, inv_temp); }
void op_logprob_backward(float *dz, const float *dlogp, const float *z, const int *target, int rows, int V, float inv_temp) { backend->logprob_backward(dz, dlogp, z, target, rows, V, inv_temp); }
void op_kl_categorical(float *kl, float *dz, const float *z, const float *z_ref, const float *weight, int rows, int V, float inv_temp) { backend->kl_categorical(kl, dz, z, z_ref, weight, rows, V, inv_temp); }
void op_entropy(float *ent, const float *z, int rows, int V, float inv_temp) { backend->entropy(ent, z, rows, V, inv_temp); }
void op_sample(int *ids, const float *z, const float *u, int rows, int V, float inv_temp) { backend->sample(ids, z, u, rows, V, inv_temp); }
void op_add_noise(float *x, const RngKey *host_keys, int rows, int d, float sigma) { backend->add_noise(x, host_keys, rows, d, sigma); }
void op_gauss_logprob_forward(float *out, const float *h, const float *mu, int rows, int d, float inv_two_sigma2) { backend->gauss_logprob_forward(out, h, mu, rows, d, inv_two_sigma2); }
void op_gauss_logprob_backward(float *dmu, const float *dout, const float *h, const float *mu, int rows, int d, float inv_two_sigma2) { backend->gauss_logprob_backward(dmu, dout, h, mu, rows, d, inv_two_sigma2); }
void op_adamw(float *p, const float *g, float *m, float *v, size_t n, AdamWParams hp) { backend->adamw(p, g, m, v, n, hp); }