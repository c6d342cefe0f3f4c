/* ops_backend.h — the table of functions a numeric backend provides (the CPU backend in
 * src/ops/ops_cpu.c, the CUDA backend in kernels/). ops_dispatch.c forwards every ops.h
 * call to the backend chosen at run time by ops_select(). Only backends and the dispatcher
 * include this header; model, RL and I/O code see ops.h alone.
 * Each entry has the contract of the ops.h function of the same name.
 */
#ifndef SOFTCOT_OPS_BACKEND_H
#define SOFTCOT_OPS_BACKEND_H

#include "ops/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *name;
    int device_is_host;
    /* Binds the backend to a device (local_rank picks among this node's GPUs). */
    int (*init)(int local_rank, OpsPrecision precision, Err *err);
    size_t (*bytes_peak)(void);
    /* Device-side collectives; comm_id_bytes == 0 means the backend has none. */
    size_t comm_id_bytes;
    void (*comm_unique_id)(void *id);
    int (*comm_init)(const void *id, int rank, int nranks, Err *err);
    void (*allreduce_sum)(float *x, size_t n);
    /* Recorded op sequences; replay_begin returns 0 on backends that never record. */
    int (*replay_begin)(uint64_t key);
    void (*replay_end)(uint64_t key);
    void *(*alloc_mem)(size_t bytes);
    void (*free_mem)(void *p);
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *p, size_t bytes);
    void (*sync)(void);
    void (*matmul)(float *C, const float *A, const float *B, int M, int N, int K, int trans_a, int trans_b, float alpha, float beta);
    void (*linear_residual_forward)(float *y, const float *x, const float *W, const float *residual, int T, int in, int out);
    void (*add_bias)(float *y, const float *b, int T, int n);
    void (*bias_backward)(float *db, const float *dy, int T, int n);
    void (*add)(float *y, const float *x, size_t n);
    void (*scale)(float *y, float s, size_t n);
    double (*sumsq)(const float *x, size_t n);
    void (*embed_forward)(float *out, const int *tokens, const float *vectors, const float *E, int T, int d);
    void (*embed_backward)(float *dE, const float *dout, const int *tokens, int T, int d);
    void (*rmsnorm_forward)(float *out, float *rstd, const float *x, const float *w, int T, int d, float eps);
    void (*rmsnorm_backward)(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int T, int d);
    void (*swiglu_forward)(float *h, const float *gate_up, int T, int ff);
    void (*swiglu_backward)(float *dgate_up, const float *dh, const float *gate_up, int T, int ff);
    void (*qkv_forward)(float *q, float *k_cache, float *v_cache, const float *qkv, const float *cos_tab, const float *sin_tab, const AttnBatch *b, int n_heads, int n_kv_heads, int hs);
    void (*qkv_backward)(float *dqkv, const float *dq, const float *dk_cache, const float *dv_cache, const float *cos_tab, const float *sin_tab, const AttnBatch *b, int n_heads, int n_kv_heads, int hs);
    void (*attention_forward)(float *out, float *lse, const float *q, const float *k_cache, const float *v_cache, const AttnBatch *b, int n_heads, int n_kv_heads, int hs);
    void (*attention_backward)(float *dq, float *dk_cache, float *dv_cache, const float *dout, const float *out, const float *lse, const float *q, const float *k_cache, const float *v_cache, const AttnBatch *b, int n_heads, int n_kv_heads, int hs);
    void (*softmax_forward)(float *p, const float *z, int rows, int V, float inv_temp);
    void (*softmax_backward)(float *dz, const float *dp, const float *p, int rows, int V, float inv_temp);
    void (*logprob_forward)(float *logp, const float *z, const int *target, int rows, int V, float inv_temp);
    void (*logprob_backward)(float *dz, const float *dlogp, const float *z, const int *target, int rows, int V, float inv_temp);
    void (*kl_categorical)(float *kl, float *dz, const float *z, const float *z_ref, const float *weight, int rows, int V, float inv_temp);
    void (*entropy)(float *ent, const float *z, int rows, int V, float inv_temp);
    void (*sample)(int *ids, const float *z, const float *u, int rows, int V, float inv_temp);
    void (*add_noise)(float *x, const RngKey *host_keys, int rows, int d, float sigma);
    void (*gauss_logprob_forward)(float *out, const float *h, const float *mu, int rows, int d, float inv_two_sigma2);
    void (*gauss_logprob_backward)(float *dmu, const float *dout, const float *h, const float *mu, int rows, int d, float inv_two_sigma2);
    void (*adamw)(float *p, const float *g, float *m, float *v, size_t n, AdamWParams hp);} OpsBackend;

extern const OpsBackend ops_backend_cpu;
/* The CUDA backend, or NULL in a build without CUDA (src/ops/ops_cuda_absent.c). */
const OpsBackend *ops_backend_cuda(void);

#ifdef __cplusplus
}
#endif

#endif
