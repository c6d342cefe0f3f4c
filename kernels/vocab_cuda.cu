/* Row-wise ops over the vocabulary (ops.h contracts): softmax, log-probability,
 * KL to a reference, entropy and sampling. One block per row; softmax statistics and
 * sums are fp32 (double where the CPU backend sums in double), so the fp32 path matches
 * the CPU backend to rounding. Sampling uses the same inverse-CDF rule in double
 * precision as the CPU backend, so both pick the same token for the same uniform except
 * within rounding of a bucket boundary.
 */
#include <limits.h>
#include <math.h>

#include "cuda_common.cuh"

enum { ROW_THREADS = 512 };

/* log sum_i exp(z_i * inv_temp) = mx * inv_temp + log sum exp((z_i - mx) * inv_temp) */
__device__ float row_lse(const float *z, int V, float inv_temp, float mx, float *sh) {
    float acc = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) acc += expf((z[i] - mx) * inv_temp);
    return mx * inv_temp + logf(block_sum(acc, sh));
}

__device__ float row_max_of(const float *z, int V, float *sh) {
    float mx = -FLT_MAX;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, z[i]);
    return block_max(mx, sh);
}

/* p_bf (bf16 mode): the copy the soft mixture GEMM p E reads, written in the same pass. */
__global__ void softmax_forward_kernel(float *p, __nv_bfloat16 *p_bf, const float *z, int V, float inv_temp) {
    __shared__ float sh[32];
    const size_t r = blockIdx.x;
    const float *zr = z + r * V;
    float *pr = p + r * V;
    const float mx = row_max_of(zr, V, sh);
    float acc = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const float e = expf((zr[i] - mx) * inv_temp);
        pr[i] = e;
        acc += e;
    }
    const float inv = 1.0f / block_sum(acc, sh);
    __nv_bfloat16 *br = p_bf ? p_bf + r * V : NULL;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const float y = pr[i] * inv;
        pr[i] = y;
        if (br) br[i] = __float2bfloat16_rn(y);
    }
}
void cuda_softmax_forward(float *p, const float *z, int rows, int V, float inv_temp) {
    if (!rows) return;
    cuda_wrote(p, (size_t)rows * V * sizeof(float));
    __nv_bfloat16 *p_bf = cuda_bf16_alongside(p, (size_t)rows * V); /* the soft mixture's operand */
    softmax_forward_kernel<<<rows, ROW_THREADS, 0, cuda_stream>>>(p, p_bf, z, V, inv_temp);
    launchCheck();
}

__global__ void softmax_backward_kernel(float *dz, const float *dp, const float *p, int V, float inv_temp) {
    __shared__ float sh[32];
    const size_t r = blockIdx.x;
    const float *pr = p + r * V, *g = dp + r * V;
    float acc = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) acc += pr[i] * g[i];
    const float dot = block_sum(acc, sh);
    for (int i = threadIdx.x; i < V; i += blockDim.x) dz[r * V + i] += inv_temp * pr[i] * (g[i] - dot);
}
void cuda_softmax_backward(float *dz, const float *dp, const float *p, int rows, int V, float inv_temp) {
    if (!rows) return;
    cuda_wrote(dz, (size_t)rows * V * sizeof(float));
    softmax_backward_kernel<<<rows, ROW_THREADS, 0, cuda_stream>>>(dz, dp, p, V, inv_temp);
    launchCheck();
}

__global__ void logprob_forward_kernel(float *logp, const float *z, const int *target, int V, float inv_temp) {
    __shared__ float sh[32];
    const size_t r = blockIdx.x;
    const int t = target[r];
    if (t < 0) { /* uniform across the block: every thread returns */
        if (threadIdx.x == 0) logp[r] = 0.0f;
        return;
    }
    const float *zr = z + r * V;
    const float lse = row_lse(zr, V, inv_temp, row_max_of(zr, V, sh), sh);
    if (threadIdx.x == 0) logp[r] = zr[t] * inv_temp - lse;
}
void cuda_logprob_forward(float *logp, const float *z, const int *target, int rows, int V, float inv_temp) {
    if (!rows) return;
    cuda_wrote(logp, (size_t)rows * sizeof(float));
    logprob_forward_kernel<<<rows, ROW_THREADS, 0, cuda_stream>>>(logp, z, target, V, inv_temp);
    launchCheck();
}

__global__ void logprob_backward_kernel(float *dz, const float *dlogp, const float *z, const int *target, int V,
                                        float inv_temp) {
    __shared__ float sh[32];
    const size_t r = blockIdx.x;
    const int t = target[r];
    if (t < 0) return;
    const float *zr = z + r * V;
    float *out = dz + r * V;
    const float lse = row_lse(zr, V, inv_temp, row_max_of(zr, V, sh), sh);
    const float g = dlogp[r] * inv_temp;
    for (int i = threadIdx.x; i < V; i += blockDim.x) out[i] -= g * expf(zr[i] * inv_temp - lse);
    __syncthreads();
    if (threadIdx.x == 0) out[t] += g;
}
void cuda_logprob_backward(float *dz, const float *dlogp, const float *z, const int *target, int rows, int V,
                           float inv_temp) {
    if (!rows) return;
    cuda_wrote(dz, (size_t)rows * V * sizeof(float));
    logprob_backward_kernel<<<rows, ROW_THREADS, 0, cuda_stream>>>(dz, dlogp, z, target, V, inv_temp);
    launchCheck();
}

__global__ void kl_kernel(float *kl, float *dz, const float *z, const float *z_ref, const float *weight, int V,
                          float inv_temp) {
    __shared__ float sh[32];
    __shared__ double shd[32];
    const size_t r = blockIdx.x;
    if (weight[r] == 0.0f) {
        if (threadIdx.x == 0) kl[r] = 0.0f;
        return;
    }
    const float *zr = z + r * V, *qr = z_ref + r * V;
    const float lse_p = row_lse(zr, V, inv_temp, row_max_of(zr, V, sh), sh);
    const float lse_q = row_lse(qr, V, inv_temp, row_max_of(qr, V, sh), sh);
    double acc = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const float lp = zr[i] * inv_temp - lse_p, lq = qr[i] * inv_temp - lse_q;
        acc += (double)expf(lp) * (lp - lq);
    }
    const float k = (float)block_sum_d(acc, shd);
    if (threadIdx.x == 0) kl[r] = k;
    if (!dz) return;
    const float g = weight[r] * inv_temp;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const float lp = zr[i] * inv_temp - lse_p, lq = qr[i] * inv_temp - lse_q;
        dz[r * V + i] += g * expf(lp) * (lp - lq - k);
    }
}
void cuda_kl_categorical(float *kl, float *dz, const float *z, const float *z_ref, const float *weight, int rows,
                         int V, float inv_temp) {
    if (!rows) return;
    cuda_wrote(kl, (size_t)rows * sizeof(float));
    if (dz) cuda_wrote(dz, (size_t)rows * V * sizeof(float));
    kl_kernel<<<rows, ROW_THREADS, 0, cuda_stream>>>(kl, dz, z, z_ref, weight, V, inv_temp);
    launchCheck();
}

__global__ void entropy_kernel(float *ent, const float *z, int V, float inv_temp) {
    __shared__ float sh[32];
    __shared__ double shd[32];
    const size_t r = blockIdx.x;
    const float *zr = z + r * V;
    const float lse = row_lse(zr, V, inv_temp, row_max_of(zr, V, sh), sh);
    double acc = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const float lp = zr[i] * inv_temp - lse;
        acc -= (double)expf(lp) * lp;
    }
    const double h = block_sum_d(acc, shd);
    if (threadIdx.x == 0) ent[r] = (float)h;
}
void cuda_entropy(float *ent, const float *z, int rows, int V, float inv_temp) {
    if (!rows) return;
    cuda_wrote(ent, (size_t)rows * sizeof(float));
    entropy_kernel<<<rows, ROW_THREADS, 0, cuda_stream>>>(ent, z, V, inv_temp);
    launchCheck();
}

/* Sampling (greedy rows go to the multi-block argmax below): the first i whose running sum of
 * exp((z_i - max) * inv_temp), in index order and in double precision, exceeds u times
 * the total. Each thread owns a contiguous chunk; the chunks' sums are scanned in order,
 * and the thread whose chunk crosses the target finds the index inside it. */
__global__ void sample_kernel(int *ids, const float *z, const float *u, int V, float inv_temp) {
    __shared__ float sh[32];
    __shared__ double chunk_start[ROW_THREADS + 1];
    __shared__ int best_s, pick_s;
    const size_t r = blockIdx.x;
    const float *zr = z + r * V;
    const float mx = row_max_of(zr, V, sh);
    if (threadIdx.x == 0) best_s = V;
    __syncthreads();
    int best = V;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (zr[i] == mx) {
            best = i;
            break;
        }
    atomicMin(&best_s, best);
    __syncthreads();
    best = best_s; /* the fallback if rounding leaves the target past the end */
    const int chunk = (V + blockDim.x - 1) / blockDim.x;
    const int i0 = min(V, (int)threadIdx.x * chunk), i1 = min(V, i0 + chunk);
    double sum = 0.0;
    for (int i = i0; i < i1; i++) sum += exp((double)(zr[i] - mx) * (double)inv_temp);
    chunk_start[threadIdx.x + 1] = sum;
    if (threadIdx.x == 0) {
        pick_s = best; /* fallback if rounding leaves the target past the end */
        chunk_start[0] = 0.0;
    }
    __syncthreads();
    if (threadIdx.x == 0)
        for (int k = 1; k <= (int)blockDim.x; k++) chunk_start[k] += chunk_start[k - 1];
    __syncthreads();
    const double target = (double)u[r] * chunk_start[blockDim.x];
    if (chunk_start[threadIdx.x] <= target && target < chunk_start[threadIdx.x + 1]) {
        double acc = chunk_start[threadIdx.x];
        for (int i = i0; i < i1; i++) {
            acc += exp((double)(zr[i] - mx) * (double)inv_temp);
            if (acc > target) {
                pick_s = i;
                break;
            }
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) ids[r] = pick_s;
}
/* Greedy rows are split over ARGMAX_CHUNKS blocks each (a vocabulary of 128K is too much
 * for one block per row when only a few dozen rows are decoded), then each row's partial
 * maxima are merged: the largest value, the lowest index among equals. */
enum { ARGMAX_CHUNKS = 32, ARGMAX_THREADS = 256 };

__device__ inline void better(float &v, int &i, float v2, int i2) {
    if (v2 > v || (v2 == v && i2 < i)) v = v2, i = i2;
}

__global__ void argmax_partial_kernel(float *pval, int *pidx, const float *z, int V, int chunk) {
    __shared__ float sv[ARGMAX_THREADS / 32];
    __shared__ int si[ARGMAX_THREADS / 32];
    const size_t r = blockIdx.x;
    const int c = blockIdx.y, i0 = c * chunk, i1 = min(V, i0 + chunk);
    float v = -INFINITY;
    int idx = INT_MAX;
    for (int i = i0 + threadIdx.x; i < i1; i += blockDim.x) better(v, idx, z[r * V + i], i);
    for (int o = 16; o > 0; o >>= 1) better(v, idx, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, idx, o));
    if (threadIdx.x % 32 == 0) sv[threadIdx.x / 32] = v, si[threadIdx.x / 32] = idx;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < ARGMAX_THREADS / 32; w++) better(v, idx, sv[w], si[w]);
        pval[r * gridDim.y + c] = v;
        pidx[r * gridDim.y + c] = idx;
    }
}

__global__ void argmax_finish_kernel(int *ids, const float *pval, const int *pidx, int chunks) {
    const size_t r = blockIdx.x;
    const int lane = threadIdx.x;
    float v = lane < chunks ? pval[r * chunks + lane] : -INFINITY;
    int idx = lane < chunks ? pidx[r * chunks + lane] : INT_MAX;
    for (int o = 16; o > 0; o >>= 1) better(v, idx, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, idx, o));
    if (lane == 0) ids[r] = idx == INT_MAX ? 0 : idx;
}

void cuda_sample(int *ids, const float *z, const float *u, int rows, int V, float inv_temp) {
    if (!rows) return;
    cuda_wrote(ids, (size_t)rows * sizeof(int));
    if (inv_temp == 0.0f) {
        const int chunk = (V + ARGMAX_CHUNKS - 1) / ARGMAX_CHUNKS;
        char *scratch = (char *)cuda_scratch(SCRATCH_C, (size_t)rows * ARGMAX_CHUNKS * (sizeof(float) + sizeof(int)));
        float *pval = (float *)scratch;
        int *pidx = (int *)(scratch + (size_t)rows * ARGMAX_CHUNKS * sizeof(float));
        argmax_partial_kernel<<<dim3(rows, ARGMAX_CHUNKS), ARGMAX_THREADS, 0, cuda_stream>>>(pval, pidx, z, V, chunk);
        launchCheck();
        argmax_finish_kernel<<<rows, 32, 0, cuda_stream>>>(ids, pval, pidx, ARGMAX_CHUNKS);
        launchCheck();
        return;
    }
    sample_kernel<<<rows, ROW_THREADS, 0, cuda_stream>>>(ids, z, u, V, inv_temp);
    launchCheck();
}
