/* cuda_common.cuh — what every CUDA source of the backend shares: error-checking macros
 * in the style of llm.c (cudaCheck, cublasCheck, ncclCheck, a check after every launch),
 * the backend's stream and cuBLAS handle, the scratch allocator, block reductions, and
 * the entry points each kernels/ source file provides to ops_cuda.cu's function table.
 * Must not: be included by anything outside kernels/.
 */
#ifndef SOFTCOT_CUDA_COMMON_CUH
#define SOFTCOT_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <float.h>

#include "ops/ops_backend.h"

#define cudaCheck(call)                                                                       \
    do {                                                                                      \
        cudaError_t e_ = (call);                                                              \
        if (e_ != cudaSuccess) fatal_at(__FILE__, __LINE__, "CUDA: %s", cudaGetErrorString(e_)); \
    } while (0)
#define cublasCheck(call)                                                                     \
    do {                                                                                      \
        cublasStatus_t s_ = (call);                                                           \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                      \
            fatal_at(__FILE__, __LINE__, "cuBLAS: %s", cublasGetStatusString(s_));           \
    } while (0)
/* After every kernel launch: launch-configuration errors surface here, at the launch
 * site, instead of at some later synchronising call. */
#define launchCheck() cudaCheck(cudaGetLastError())

/* The stream every kernel, copy and cuBLAS call of the backend runs on. */
extern cudaStream_t cuda_stream;
extern cublasHandle_t cuda_blas;
extern OpsPrecision cuda_precision;

/* Scratch memory that lives until the next call of the same slot (never across ops).
 * Slots let one op hold several buffers at once. */
enum { SCRATCH_A, SCRATCH_B, SCRATCH_C, SCRATCH_META, SCRATCH_GEMM, SCRATCH_SLOTS };
void *cuda_scratch(int slot, size_t bytes);

/* bf16 cache of GEMM operands (ops_cuda.cu): invalidates cached copies that overlap a
 * range an op is about to write. Every op that writes device memory calls it. */
void cuda_wrote(const void *p, size_t bytes);
/* For a kernel that writes a GEMM operand dst[n] and, in the same pass, its bf16 copy:
 * the copy's cache buffer, marked current (NULL in fp32 mode). Call after cuda_wrote;
 * the kernel must write __float2bfloat16_rn of all n values. */
__nv_bfloat16 *cuda_bf16_alongside(const float *dst, size_t n);

static inline unsigned ceil_div(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }

/* ---- block reductions (blockDim.x a multiple of 32, at most 1024) ---- */
__device__ inline float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ inline float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ inline double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
/* Every thread gets the block's sum; `shared` holds 32 floats. */
__device__ inline float block_sum(float v, float *shared) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < n_warps ? shared[lane] : 0.0f;
    return warp_sum(v);
}
__device__ inline float block_max(float v, float *shared) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < n_warps ? shared[lane] : -FLT_MAX;
    return warp_max(v);
}
__device__ inline double block_sum_d(double v, double *shared) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < n_warps ? shared[lane] : 0.0;
    return warp_sum_d(v);
}

/* ---- entry points of the other kernels/ files ---- */
/* attention_cuda.cu */
void cuda_qkv_forward(float *q, float *k_cache, float *v_cache, const float *qkv, const float *cos_tab,
                      const float *sin_tab, const AttnBatch *b, int n_heads, int n_kv_heads, int hs);
void cuda_qkv_backward(float *dqkv, const float *dq, const float *dk_cache, const float *dv_cache,
                       const float *cos_tab, const float *sin_tab, const AttnBatch *b, int n_heads,
                       int n_kv_heads, int hs);
void cuda_attention_forward(float *out, float *lse, const float *q, const float *k_cache,
                            const float *v_cache, const AttnBatch *b, int n_heads, int n_kv_heads,
                            int hs);
void cuda_attention_backward(float *dq, float *dk_cache, float *dv_cache, const float *dout,
                             const float *out, const float *lse, const float *q,
                             const float *k_cache, const float *v_cache, const AttnBatch *b,
                             int n_heads, int n_kv_heads, int hs);
/* gemm_lt.cu: bf16 GEMMs through autotuned cublasLt (column-major problem) */
void cuda_gemm_lt_init(void);
int cuda_gemm_lt(cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k, float alpha, const void *A,
                 int lda, const void *B, int ldb, float beta, const float *C, float *D, int ldc, int capturing);
/* attention_wmma.cu: the tensor-core path of bf16 mode */
int cuda_attention_wmma_supported(int hs);
void cuda_attention_forward_wmma(float *out, float *lse, const float *q, const float *k_cache, const float *v_cache,
                                 const AttnBatch *b, int n_heads, int n_kv_heads, int hs);
void cuda_attention_backward_wmma(float *dq, float *dk_cache, float *dv_cache, const float *dout, const float *lse,
                                  const float *D, const float *q, const float *k_cache, const float *v_cache,
                                  const AttnBatch *b, int n_heads, int n_kv_heads, int hs);
/* vocab_cuda.cu */
void cuda_softmax_forward(float *p, const float *z, int rows, int V, float inv_temp);
void cuda_softmax_backward(float *dz, const float *dp, const float *p, int rows, int V, float inv_temp);
void cuda_logprob_forward(float *logp, const float *z, const int *target, int rows, int V, float inv_temp);
void cuda_logprob_backward(float *dz, const float *dlogp, const float *z, const int *target, int rows,
                           int V, float inv_temp);
void cuda_kl_categorical(float *kl, float *dz, const float *z, const float *z_ref, const float *weight,
                         int rows, int V, float inv_temp);
void cuda_entropy(float *ent, const float *z, int rows, int V, float inv_temp);
void cuda_sample(int *ids, const float *z, const float *u, int rows, int V, float inv_temp);
/* comm_nccl.cu */
enum { CUDA_COMM_ID_BYTES = 128 }; /* sizeof(ncclUniqueId) */
void cuda_comm_unique_id(void *id);
int cuda_comm_init(const void *id, int rank, int nranks, Err *err);
void cuda_allreduce_sum(float *x, size_t n);

#endif
