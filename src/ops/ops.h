/* ops.h — the numeric kernel interface: every computation of the model, the RL loss and
 * the optimizer goes through these functions.
 *
 * Two backends implement it (src/ops/ops_backend.h is their function table):
 *   src/ops/ops_cpu.c   OpenBLAS sgemm + vectorisable loops (always built)
 *   kernels/ (*.cu)      CUDA + cuBLAS + NCCL (built by make CUDA=1)
 * ops_select() picks one at run time (--device cpu|cuda); until it is called, the CPU
 * backend serves every call. src/ops/ops_composite.c builds a few ops (linear layers, the
 * embedding mixture) from the primitives and is shared by both.
 *
 * Memory model: every float* / int* argument is DEVICE memory unless its name starts with
 * host_, and callers never dereference it. Allocate with dev_alloc, move data with
 * dev_upload / dev_download. On the CPU backend device memory is ordinary host memory, but
 * model code must not rely on that.
 *
 * Conventions: matrices are row-major. Linear weights are PyTorch's [out, in]. Backward
 * functions ACCUMULATE (+=) into parameter gradients so micro-batches can be summed; the
 * gradient w.r.t. activations is overwritten unless documented otherwise.
 * Must not: call MPI or HDF5, keep global mutable state, or allocate memory that outlives
 * a call (except inside dev_alloc).
 */
#ifndef SOFTCOT_OPS_H
#define SOFTCOT_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/check.h"
#include "core/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- backend and memory ---- */
typedef enum { OPS_FP32 = 0, OPS_BF16 = 1 } OpsPrecision;
/* Chooses the backend for this process: device "cpu" or "cuda"; precision "auto" (bf16 on
 * cuda, fp32 on cpu), "bf16" (bf16 GEMM operands, fp32 accumulation, everything else fp32)
 * or "fp32". local_rank picks the GPU among the node's devices. Returns 0, or -1 with err
 * set (backend not built, no device, bad name). Call once, before any allocation. */
int ops_select(const char *device, const char *precision, int local_rank, Err *err);
const char *ops_backend_name(void);
const char *ops_precision_name(void);
/* 1 when device memory is ordinary host memory (CPU backend): callers may then hand
 * device buffers to host code (MPI, file writes) without staging copies. */
int ops_device_is_host(void);
void *dev_alloc(size_t bytes); /* zero-filled; fatal on failure */
void dev_free(void *p);
void dev_upload(void *dst, const void *host_src, size_t bytes);
void dev_download(void *host_dst, const void *src, size_t bytes);
void dev_copy(void *dst, const void *src, size_t bytes);
void dev_zero(void *p, size_t bytes);
void dev_sync(void);
/* Most device bytes held at once by dev_alloc so far (for memory reports). */
size_t dev_bytes_peak(void);

/* ---- recorded op sequences (CUDA graphs on the CUDA backend) ----
 * A caller that issues the same ops on the same buffers and shapes many times (a decode
 * step) brackets them. If ops_replay_begin(key) returns 1, the backend has just replayed
 * its recording of that sequence and the caller must skip it; otherwise the caller issues
 * the ops and then calls ops_replay_end(key), which may have recorded them. The key must
 * name every buffer and shape the sequence uses; host-to-device uploads belong before
 * ops_replay_begin. Recordings are dropped whenever device memory is freed or a cached
 * operand they read changes. The CPU backend never records (begin returns 0). */
int ops_replay_begin(uint64_t key);
void ops_replay_end(uint64_t key);

/* ---- collectives between ranks' devices (NCCL on CUDA) ----
 * The rank-0 id travels to the other ranks through MPI (dist/), then every rank calls
 * ops_comm_init. ops_comm_id_bytes() == 0 means the backend has no device collectives
 * and callers stage through the host instead. */
size_t ops_comm_id_bytes(void);
void ops_comm_unique_id(void *id);
int ops_comm_init(const void *id, int rank, int nranks, Err *err);
void op_allreduce_sum(float *x, size_t n); /* in place, sum over ranks */

/* ---- dense algebra ---- */
/* C[M,N] = alpha * op(A) @ op(B) + beta * C; op(A) is [M,K], op(B) is [K,N]. */
void op_matmul(float *C, const float *A, const float *B, int M, int N, int K, int trans_a,
               int trans_b, float alpha, float beta);
/* y[T,out] = x[T,in] @ W[out,in]^T (+ b[out] if b) : nn.Linear. */
void op_linear_forward(float *y, const float *x, const float *W, const float *b, int T, int in,
                       int out);
/* dx[T,in] (+)= dy @ W (overwrite unless accumulate_dx; skipped if dx NULL);
 * dW += dy^T @ x; db += column sums of dy (skipped if db NULL). */
void op_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                        const float *W, int T, int in, int out, int accumulate_dx);
/* y[T,out] = residual[T,out] + x[T,in] @ W[out,in]^T: a linear layer that adds into the
 * residual stream, in one GEMM pass where the backend can (y may be residual). */
void op_linear_residual_forward(float *y, const float *x, const float *W, const float *residual, int T,
                                int in, int out);
void op_add_bias(float *y, const float *b, int T, int n);      /* y[t,:] += b */
void op_bias_backward(float *db, const float *dy, int T, int n); /* db += sum_t dy[t,:] */
void op_add(float *y, const float *x, size_t n);                /* y += x */
void op_scale(float *y, float s, size_t n);                     /* y *= s */
double op_sumsq(const float *x, size_t n);                      /* sum x^2, to host */

/* ---- embeddings ---- */
/* out[t] = tokens[t] >= 0 ? E[tokens[t]] : vectors[t]  (vectors may be NULL if no
 * position is a vector). tokens is a device int array. */
void op_embed_forward(float *out, const int *tokens, const float *vectors, const float *E, int T,
                      int d);
/* dE[tokens[t]] += dout[t] for token positions; vector positions get no gradient. */
void op_embed_backward(float *dE, const float *dout, const int *tokens, int T, int d);
/* Soft-token mixture mu[T,d] = p[T,V] @ E[V,d] and its backward:
 * dp[T,V] = dmu @ E^T (overwrite, skipped if NULL); dE += p^T @ dmu. */
void op_mixture_forward(float *mu, const float *p, const float *E, int T, int V, int d);
void op_mixture_backward(float *dp, float *dE, const float *dmu, const float *p, const float *E,
                         int T, int V, int d);

/* ---- normalisation, activations ---- */
/* out = x * rsqrt(mean(x^2) + eps) * w per row; rstd[T] saved for backward. */
void op_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int T, int d,
                        float eps);
/* dx (+)= ...; dw += ... (dx accumulates: it is the residual stream gradient). */
void op_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                         const float *rstd, int T, int d);
/* SwiGLU on the packed output of the stacked gate/up projection: gate_up is [T, 2 ff],
 * gate in columns 0..ff-1 and up in ff..2ff-1 of each row. h[T, ff] = silu(gate) * up. */
void op_swiglu_forward(float *h, const float *gate_up, int T, int ff);
/* dgate_up[T, 2 ff] = d/d(gate, up) of sum(dh * h) (overwrite). */
void op_swiglu_backward(float *dgate_up, const float *dh, const float *gate_up, int T, int ff);

/* ---- causal attention with GQA over a KV cache ----
 * A batch is n_seq sequences; sequence s owns cache slot slot[s], already holds start[s]
 * positions in the cache, and contributes len[s] new rows, packed one sequence after the
 * other (rows row0[s] .. row0[s]+len[s]-1, positions start[s] .. start[s]+len[s]-1).
 * Caches are [n_slots, max_seq, n_kv*hs]. host_* arrays are on the host, d_* copies of the
 * same arrays on the device (the CUDA backend needs them, the CPU backend reads host_*). */
typedef struct {
    int n_seq, max_seq, total_rows;
    const int *host_slot, *host_start, *host_len, *host_row0;
    const int *d_slot, *d_start, *d_len, *d_row0;
} AttnBatch;

/* The packed output of the stacked q/k/v projection: qkv is [T, (n_heads + 2 n_kv_heads) * hs],
 * each row q (n_heads heads), then k, then v (n_kv_heads heads each).
 * Rotary position embedding uses Hugging Face's half-split convention: row j of sequence s
 * is at position p = start[s] + j and rotates pair (i, i + hs/2) of every head by angle
 * p * inv_freq[i]; the tables hold cos_tab[p * hs/2 + i] for every position < max_seq.
 * Forward: q[T, n_heads*hs] = rope(q part); k_cache[slot, p] = rope(k part);
 * v_cache[slot, p] = v part. */
void op_qkv_forward(float *q, float *k_cache, float *v_cache, const float *qkv, const float *cos_tab,
                    const float *sin_tab, const AttnBatch *b, int n_heads, int n_kv_heads, int hs);
/* Backward of op_qkv_forward (overwrites dqkv): the q part is dq rotated back, the k and v
 * parts are the rows' entries of dk_cache (rotated back) and dv_cache. */
void op_qkv_backward(float *dqkv, const float *dq, const float *dk_cache, const float *dv_cache,
                     const float *cos_tab, const float *sin_tab, const AttnBatch *b, int n_heads,
                     int n_kv_heads, int hs);
/* out[T, nh*hs] = softmax(q k^T / sqrt(hs), causal) v, using cached k/v of positions
 * 0..pos; lse[T, nh] saves each row's log-sum-exp so backward can recompute the softmax. */
void op_attention_forward(float *out, float *lse, const float *q, const float *k_cache,
                          const float *v_cache, const AttnBatch *b, int n_heads, int n_kv_heads,
                          int hs);
/* dq (overwrite); dk_cache, dv_cache accumulate (zero them first). Needs start[s] == 0. */
void op_attention_backward(float *dq, float *dk_cache, float *dv_cache, const float *dout,
                           const float *out, const float *lse, const float *q,
                           const float *k_cache, const float *v_cache, const AttnBatch *b,
                           int n_heads, int n_kv_heads, int hs);

/* ---- distributions over the vocabulary ---- */
/* p = softmax(z * inv_temp) per row. */
void op_softmax_forward(float *p, const float *z, int rows, int V, float inv_temp);
/* dz += inv_temp * p * (dp - sum(p * dp)) per row. */
void op_softmax_backward(float *dz, const float *dp, const float *p, int rows, int V,
                         float inv_temp);
/* logp[r] = log softmax(z[r] * inv_temp)[target[r]]; rows with target < 0 give 0. */
void op_logprob_forward(float *logp, const float *z, const int *target, int rows, int V,
                        float inv_temp);
/* dz[r] += dlogp[r] * inv_temp * (onehot(target) - softmax(z[r] * inv_temp)). */
void op_logprob_backward(float *dz, const float *dlogp, const float *z, const int *target,
                         int rows, int V, float inv_temp);
/* KL(p || q) per row for p = softmax(z * inv_temp), q = softmax(z_ref * inv_temp), for rows
 * with weight[r] != 0 (others give 0). If dz is not NULL, adds weight[r] * dKL/dz[r]
 * = weight[r] * inv_temp * p * (log p - log q - KL) (the KL penalty to a reference model). */
void op_kl_categorical(float *kl, float *dz, const float *z, const float *z_ref, const float *weight,
                       int rows, int V, float inv_temp);
/* Entropy (nats) of softmax(z * inv_temp) per row. */
void op_entropy(float *ent, const float *z, int rows, int V, float inv_temp);
/* Next token per row: argmax when inv_temp == 0 (greedy), else inverse-CDF sampling from
 * softmax(z * inv_temp) with the given uniform u[r] in [0,1). */
void op_sample(int *ids, const float *z, const float *u, int rows, int V, float inv_temp);

/* ---- soft-token noise and its log-density ---- */
/* x[r, :] += sigma * N(0, I), the normal stream for row r keyed by keys[r] (host array). */
void op_add_noise(float *x, const RngKey *host_keys, int rows, int d, float sigma);
/* out[r] = -||h[r] - mu[r]||^2 * inv_two_sigma2   (Gaussian log-density, constant dropped) */
void op_gauss_logprob_forward(float *out, const float *h, const float *mu, int rows, int d,
                              float inv_two_sigma2);
/* dmu[r] += dout[r] * 2 * inv_two_sigma2 * (h[r] - mu[r]) */
void op_gauss_logprob_backward(float *dmu, const float *dout, const float *h, const float *mu,
                               int rows, int d, float inv_two_sigma2);

/* ---- optimizer ---- */
typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    int step; /* 1-based, for bias correction */
} AdamWParams;
/* PyTorch AdamW: p -= lr*wd*p; m,v updated; p -= lr * mhat / (sqrt(vhat) + eps). */
void op_adamw(float *p, const float *g, float *m, float *v, size_t n, AdamWParams hp);

#ifdef __cplusplus
}
#endif

#endif
