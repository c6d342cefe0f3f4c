/* CUDA backend of ops.h: device memory, cuBLAS GEMMs with a bf16 operand cache, and the
 * element-wise, normalisation, embedding, noise and optimizer kernels. Attention lives in
 * attention_cuda.cu, the row-wise vocabulary ops in vocab_cuda.cu, NCCL in comm_nccl.cu.
 * The function table ops_backend_cuda() is at the end.
 *
 * Precision. In bf16 mode every GEMM reads bf16 copies of its operands and accumulates in
 * fp32 (cublasGemmEx, tensor cores); everything else, and all stored state (weights, Adam
 * moments, activations, gradients), stays fp32, so the fp32 master weights are the
 * parameters themselves. The bf16 copies are cached per operand (below) so that a weight
 * is converted once per optimizer step, not once per use.
 */
#include <stdint.h>
#include <string.h>

#include <unordered_map>

#include "cuda_common.cuh"

cudaStream_t cuda_stream;
cublasHandle_t cuda_blas;
OpsPrecision cuda_precision = OPS_FP32;

/* ---- device memory ---- */

static std::unordered_map<void *, size_t> *alloc_sizes; /* live allocations */
/* Everything the backend holds on the device: dev_alloc blocks, bf16 operand copies and
 * scratch. The peak is what dev_bytes_peak() reports. */
static size_t bytes_live, bytes_peak_seen;
static void note_alloc(size_t bytes) {
    bytes_live += bytes;
    if (bytes_live > bytes_peak_seen) bytes_peak_seen = bytes_live;
}
static void bf16_cache_drop_all(void);
/* Recordings stay valid while graph_epoch does not change (see "recorded sequences"). */
static uint64_t graph_epoch = 1, capture_id;
static int capturing;
static void graphs_invalidate(void) { graph_epoch++; }
static void bf16_forget(const void *p, size_t bytes);

static void *cuda_alloc(size_t bytes) {
    void *p = NULL;
    size_t rounded = bytes ? bytes : 1;
    if (cudaMalloc(&p, rounded) != cudaSuccess) {
        (void)cudaGetLastError();
        bf16_cache_drop_all(); /* the cache is the only memory we can give back */
        if (cudaMalloc(&p, rounded) != cudaSuccess) {
            size_t free_b = 0, total_b = 0;
            cudaMemGetInfo(&free_b, &total_b);
            fatal_at(__FILE__, __LINE__,
                     "out of GPU memory allocating %.3f GiB (%.3f GiB free of %.3f GiB; %.3f GiB held by softcot)",
                     rounded / 1073741824.0, free_b / 1073741824.0, total_b / 1073741824.0,
                     bytes_live / 1073741824.0);
        }
    }
    cudaCheck(cudaMemsetAsync(p, 0, rounded, cuda_stream));
    (*alloc_sizes)[p] = rounded;
    note_alloc(rounded);
    return p;
}

static void cuda_free(void *p) {
    if (!p) return;
    auto it = alloc_sizes->find(p);
    if (it == alloc_sizes->end()) fatal_at(__FILE__, __LINE__, "dev_free of a pointer dev_alloc did not return");
    bf16_forget(p, it->second); /* a later allocation may reuse the address */
    graphs_invalidate();         /* recordings may hold the address */
    bytes_live -= it->second;
    alloc_sizes->erase(it);
    cudaCheck(cudaStreamSynchronize(cuda_stream));
    cudaCheck(cudaFree(p));
}

/* Invalidates from p to the end of the allocation that holds p. */
static void cuda_wrote_to_end(const void *p) {
    for (auto &a : *alloc_sizes) {
        const char *base = (const char *)a.first;
        if ((const char *)p >= base && (const char *)p < base + a.second) {
            cuda_wrote(p, (size_t)(base + a.second - (const char *)p));
            return;
        }
    }
    fatal_at(__FILE__, __LINE__, "device pointer outside every dev_alloc block");
}

static size_t cuda_bytes_peak(void) { return bytes_peak_seen; }

/* Pageable host memory: cudaMemcpyAsync returns once the source has been staged, so the
 * caller may reuse it at once; the device sees the data in stream order. */
static void cuda_upload(void *dst, const void *src, size_t n) {
    if (!n) return;
    cuda_wrote(dst, n);
    cudaCheck(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, cuda_stream));
}
static void cuda_download(void *dst, const void *src, size_t n) {
    if (!n) return;
    cudaCheck(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, cuda_stream));
    cudaCheck(cudaStreamSynchronize(cuda_stream));
}
static void cuda_copy(void *dst, const void *src, size_t n) {
    if (!n) return;
    cuda_wrote(dst, n);
    cudaCheck(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, cuda_stream));
}
static void cuda_zero(void *p, size_t n) {
    if (!n) return;
    cuda_wrote(p, n);
    cudaCheck(cudaMemsetAsync(p, 0, n, cuda_stream));
}
static void cuda_sync(void) { cudaCheck(cudaStreamSynchronize(cuda_stream)); }

static void *scratch_ptr[SCRATCH_SLOTS];
static size_t scratch_cap[SCRATCH_SLOTS];

void *cuda_scratch(int slot, size_t bytes) {
    if (bytes > scratch_cap[slot]) {
        if (capturing) fatal_at(__FILE__, __LINE__, "scratch growth while recording a graph");
        graphs_invalidate(); /* recordings may hold the old scratch address */
        if (scratch_ptr[slot]) {
            cudaCheck(cudaStreamSynchronize(cuda_stream));
            cudaCheck(cudaFree(scratch_ptr[slot]));
        }
        size_t cap = bytes + bytes / 4 + 256;
        bytes_live -= scratch_cap[slot];
        cudaCheck(cudaMalloc(&scratch_ptr[slot], cap));
        note_alloc(cap);
        scratch_cap[slot] = cap;
    }
    return scratch_ptr[slot];
}

/* ---- bf16 operand cache ----
 * A GEMM operand (ptr, n floats) converted to bf16 stays cached until an op writes any
 * byte of it: every launcher reports the ranges it writes through cuda_wrote(). The
 * model's weights are therefore converted once after each AdamW step and reused by every
 * forward, backward and decode call in between. Least recently used copies are dropped
 * beyond the byte budget set at init. */
typedef struct {
    const float *src;
    size_t n, cap;
    __nv_bfloat16 *bf;
    uint64_t last_use;
    int valid;
    /* CUDA graphs recorded in epoch graph_epoch use this copy's buffer (pinned) or read
     * its content without converting it again (read_cached): see "recorded sequences". */
    uint64_t pinned_epoch, read_cached_epoch;
    uint64_t converted_capture; /* the recording that converts it, if any */
} Bf16Entry;

enum { BF16_MAX_ENTRIES = 4096 };
static Bf16Entry bf16_entries[BF16_MAX_ENTRIES];
static int bf16_n_entries;
static size_t bf16_bytes, bf16_budget;
static uint64_t bf16_clock;


void cuda_wrote(const void *p, size_t bytes) {
    const char *lo = (const char *)p, *hi = lo + bytes;
    for (int i = 0; i < bf16_n_entries; i++) {
        Bf16Entry *e = &bf16_entries[i];
        if (!e->valid) continue;
        const char *elo = (const char *)e->src, *ehi = elo + e->n * sizeof(float);
        if (elo < hi && lo < ehi) {
            if (e->read_cached_epoch == graph_epoch) graphs_invalidate(); /* a graph would read stale data */
            e->valid = 0;
        }
    }
}

static void bf16_release(Bf16Entry *e) {
    if (capturing) fatal_at(__FILE__, __LINE__, "bf16 operand cache eviction while recording a graph");
    if (e->pinned_epoch == graph_epoch) graphs_invalidate();
    cudaCheck(cudaStreamSynchronize(cuda_stream));
    cudaCheck(cudaFree(e->bf));
    bf16_bytes -= e->cap * sizeof(__nv_bfloat16);
    bytes_live -= e->cap * sizeof(__nv_bfloat16);
    *e = bf16_entries[--bf16_n_entries];
}

/* Drops the copies of operands inside a block being freed. */
static void bf16_forget(const void *p, size_t bytes) {
    const char *lo = (const char *)p, *hi = lo + bytes;
    for (int i = 0; i < bf16_n_entries;) {
        const char *elo = (const char *)bf16_entries[i].src, *ehi = elo + bf16_entries[i].n * sizeof(float);
        if (elo >= lo && ehi <= hi) bf16_release(&bf16_entries[i]); /* moves the last entry to i */
        else if (elo < hi && lo < ehi) bf16_entries[i++].valid = 0;
        else i++;
    }
}

static void bf16_cache_drop_all(void) {
    while (bf16_n_entries > 0) bf16_release(&bf16_entries[0]);
}

__global__ void to_bf16_kernel(__nv_bfloat16 *out, const float *in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16_rn(in[i]);
}

static unsigned grid_for(size_t n, unsigned block) {
    size_t g = (n + block - 1) / block;
    return (unsigned)(g < 65535u * 8u ? (g ? g : 1) : 65535u * 8u);
}

/* The cache entry of operand (src, n), found or made (evicting least recently used copies
 * beyond the budget); *hit says whether it already holds src's current content. */
static Bf16Entry *bf16_entry(const float *src, size_t n, int *hit) {
    bf16_clock++;
    *hit = 0;
    for (int i = 0; i < bf16_n_entries; i++) {
        Bf16Entry *e = &bf16_entries[i];
        if (e->src == src && e->n == n) {
            e->last_use = bf16_clock;
            if (capturing) e->pinned_epoch = graph_epoch;
            *hit = e->valid;
            return e; /* stale or not, the same operand reuses its buffer */
        }
    }
    while (bf16_n_entries > 0 &&
           (bf16_bytes + n * sizeof(__nv_bfloat16) > bf16_budget || bf16_n_entries == BF16_MAX_ENTRIES)) {
        int lru = 0;
        for (int i = 1; i < bf16_n_entries; i++)
            if (bf16_entries[i].last_use < bf16_entries[lru].last_use) lru = i;
        bf16_release(&bf16_entries[lru]);
    }
    Bf16Entry *slot = &bf16_entries[bf16_n_entries++];
    slot->src = src;
    slot->n = n;
    slot->cap = n;
    slot->last_use = bf16_clock;
    slot->pinned_epoch = capturing ? graph_epoch : 0;
    slot->read_cached_epoch = 0;
    slot->converted_capture = 0;
    slot->valid = 0;
    if (cudaMalloc(&slot->bf, n * sizeof(__nv_bfloat16)) != cudaSuccess)
        fatal_at(__FILE__, __LINE__, "out of GPU memory for a bf16 operand copy of %zu values", n);
    bf16_bytes += n * sizeof(__nv_bfloat16);
    note_alloc(n * sizeof(__nv_bfloat16));
    return slot;
}

static const __nv_bfloat16 *bf16_of(const float *src, size_t n) {
    int hit;
    Bf16Entry *e = bf16_entry(src, n, &hit);
    if (hit) {
        /* content converted before this recording began: replays depend on it */
        if (capturing && e->converted_capture != capture_id) e->read_cached_epoch = graph_epoch;
        return e->bf;
    }
    to_bf16_kernel<<<grid_for(n, 256), 256, 0, cuda_stream>>>(e->bf, src, n);
    launchCheck();
    e->valid = 1;
    e->converted_capture = capturing ? capture_id : 0;
    return e->bf;
}

/* A kernel that produces a GEMM operand (RMSNorm, SwiGLU, softmax output) writes its bf16
 * copy in the same pass, which saves the conversion kernel and a read of the operand
 * before the GEMM. This returns the copy's buffer for (dst, n), marked current, or NULL
 * in fp32 mode. Call it after cuda_wrote(dst, ...) and before the launch; the kernel
 * must then write __float2bfloat16_rn of every one of the n values it writes to dst,
 * exactly what bf16_of would have converted. */
__nv_bfloat16 *cuda_bf16_alongside(const float *dst, size_t n) {
    if (cuda_precision != OPS_BF16 || n == 0) return NULL;
    int hit;
    Bf16Entry *e = bf16_entry(dst, n, &hit);
    e->valid = 1;
    e->converted_capture = capturing ? capture_id : 0;
    return e->bf;
}

/* ---- dense algebra ---- */

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B first. */
static void cuda_matmul(float *C, const float *A, const float *B, int M, int N, int K, int trans_a,
                        int trans_b, float alpha, float beta) {
    if (M == 0 || N == 0) return;
    cuda_wrote(C, (size_t)M * N * sizeof(float));
    const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int ld_b = trans_b ? K : N, ld_a = trans_a ? M : K;
    if (K == 0) {
        /* empty sum: C = beta * C */
        if (beta == 0.0f) cudaCheck(cudaMemsetAsync(C, 0, (size_t)M * N * sizeof(float), cuda_stream));
        else cublasCheck(cublasSscal(cuda_blas, M * N, &beta, C, 1));
        return;
    }
    if (cuda_precision == OPS_BF16) {
        const __nv_bfloat16 *Bb = bf16_of(B, (size_t)K * N), *Ab = bf16_of(A, (size_t)M * K);
        if (cuda_gemm_lt(op_b, op_a, N, M, K, alpha, Bb, ld_b, Ab, ld_a, beta, C, C, N, capturing)) return;
        cublasCheck(cublasGemmEx(cuda_blas, op_b, op_a, N, M, K, &alpha, Bb, CUDA_R_16BF, ld_b, Ab,
                                 CUDA_R_16BF, ld_a, &beta, C, CUDA_R_32F, N, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
    } else {
        cublasCheck(cublasGemmEx(cuda_blas, op_b, op_a, N, M, K, &alpha, B, CUDA_R_32F, ld_b, A,
                                 CUDA_R_32F, ld_a, &beta, C, CUDA_R_32F, N, CUBLAS_COMPUTE_32F_PEDANTIC,
                                 CUBLAS_GEMM_DEFAULT));
    }
}

/* y = residual + x W^T. In bf16 mode cublasLt reads the residual as its C operand and
 * writes y as D: one kernel, where a GEMM and an add kernel ran before. */
static void cuda_linear_residual_forward(float *y, const float *x, const float *W, const float *residual, int T,
                                         int in, int out) {
    if (T == 0 || out == 0) return;
    cuda_wrote(y, (size_t)T * out * sizeof(float));
    if (in > 0 && cuda_precision == OPS_BF16) {
        const __nv_bfloat16 *Wb = bf16_of(W, (size_t)in * out), *xb = bf16_of(x, (size_t)T * in);
        if (cuda_gemm_lt(CUBLAS_OP_T, CUBLAS_OP_N, out, T, in, 1.0f, Wb, in, xb, in, 1.0f, residual, y, out, capturing))
            return;
    }
    if (y != residual) cudaCheck(cudaMemcpyAsync(y, residual, (size_t)T * out * sizeof(float), cudaMemcpyDeviceToDevice, cuda_stream));
    cuda_matmul(y, x, W, T, out, in, 0, 1, 1.0f, 1.0f);
}

__global__ void add_bias_kernel(float *y, const float *b, size_t total, int n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        y[i] += b[i % n];
}
static void cuda_add_bias(float *y, const float *b, int T, int n) {
    size_t total = (size_t)T * n;
    if (!total) return;
    cuda_wrote(y, total * sizeof(float));
    add_bias_kernel<<<grid_for(total, 256), 256, 0, cuda_stream>>>(y, b, total, n);
    launchCheck();
}

/* Column sums in a fixed order (deterministic, no atomics): chunks of rows first, then
 * the chunks in order. out[i] += scale_i * sum_t a[t,i] * (b ? b[t,i] : 1) * (r ? r[t] : 1). */
enum { COLSUM_CHUNKS = 64 };
__global__ void colsum_partial_kernel(float *partial, const float *a, const float *b, const float *r,
                                      int T, int n, int rows_per_chunk) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x, c = blockIdx.y;
    if (i >= n) return;
    const int t0 = c * rows_per_chunk, t1 = min(T, t0 + rows_per_chunk);
    float acc = 0.0f;
    for (int t = t0; t < t1; t++) {
        float v = a[(size_t)t * n + i];
        if (b) v *= b[(size_t)t * n + i];
        if (r) v *= r[t];
        acc += v;
    }
    partial[(size_t)c * n + i] = acc;
}
__global__ void colsum_finish_kernel(float *out, const float *partial, int chunks, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float acc = 0.0f;
    for (int c = 0; c < chunks; c++) acc += partial[(size_t)c * n + i];
    out[i] += acc;
}
static void column_sums(float *out, const float *a, const float *b, const float *r, int T, int n) {
    if (T == 0 || n == 0) return;
    cuda_wrote(out, (size_t)n * sizeof(float));
    const int chunks = T < COLSUM_CHUNKS ? T : COLSUM_CHUNKS;
    const int rows_per_chunk = (T + chunks - 1) / chunks;
    float *partial = (float *)cuda_scratch(SCRATCH_C, (size_t)chunks * n * sizeof(float));
    colsum_partial_kernel<<<dim3(ceil_div(n, 128), chunks), 128, 0, cuda_stream>>>(partial, a, b, r, T, n, rows_per_chunk);
    launchCheck();
    colsum_finish_kernel<<<ceil_div(n, 128), 128, 0, cuda_stream>>>(out, partial, chunks, n);
    launchCheck();
}

static void cuda_bias_backward(float *db, const float *dy, int T, int n) { column_sums(db, dy, NULL, NULL, T, n); }

__global__ void add_kernel(float *y, const float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}
static void cuda_add(float *y, const float *x, size_t n) {
    if (!n) return;
    cuda_wrote(y, n * sizeof(float));
    add_kernel<<<grid_for(n, 256), 256, 0, cuda_stream>>>(y, x, n);
    launchCheck();
}

__global__ void scale_kernel(float *y, float s, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] *= s;
}
static void cuda_scale(float *y, float s, size_t n) {
    if (!n) return;
    cuda_wrote(y, n * sizeof(float));
    scale_kernel<<<grid_for(n, 256), 256, 0, cuda_stream>>>(y, s, n);
    launchCheck();
}

enum { SUMSQ_BLOCKS = 1024 };
__global__ void sumsq_partial_kernel(double *partial, const float *x, size_t n) {
    __shared__ double sh[32];
    double acc = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        acc += (double)x[i] * x[i];
    acc = block_sum_d(acc, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}
__global__ void sumsq_finish_kernel(double *out, const double *partial, int n) {
    __shared__ double sh[32];
    double acc = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
    acc = block_sum_d(acc, sh);
    if (threadIdx.x == 0) *out = acc;
}
static double cuda_sumsq(const float *x, size_t n) {
    if (!n) return 0.0;
    double *partial = (double *)cuda_scratch(SCRATCH_C, (SUMSQ_BLOCKS + 1) * sizeof(double));
    const unsigned blocks = grid_for(n, 256) < (unsigned)SUMSQ_BLOCKS ? grid_for(n, 256) : (unsigned)SUMSQ_BLOCKS;
    sumsq_partial_kernel<<<blocks, 256, 0, cuda_stream>>>(partial, x, n);
    launchCheck();
    sumsq_finish_kernel<<<1, 256, 0, cuda_stream>>>(partial + SUMSQ_BLOCKS, partial, (int)blocks);
    launchCheck();
    double s;
    cuda_download(&s, partial + SUMSQ_BLOCKS, sizeof s);
    return s;
}

/* ---- embeddings ---- */

__global__ void embed_forward_kernel(float *out, const int *tokens, const float *vectors, const float *E,
                                     int T, int d) {
    const size_t total = (size_t)T * d;
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < total; k += (size_t)gridDim.x * blockDim.x) {
        const size_t t = k / d, i = k % d;
        const int tok = tokens[t];
        out[k] = tok >= 0 ? E[(size_t)tok * d + i] : vectors[k];
    }
}
static void cuda_embed_forward(float *out, const int *tokens, const float *vectors, const float *E, int T, int d) {
    if (!T) return;
    cuda_wrote(out, (size_t)T * d * sizeof(float));
    embed_forward_kernel<<<grid_for((size_t)T * d, 256), 256, 0, cuda_stream>>>(out, tokens, vectors, E, T, d);
    launchCheck();
}

/* One thread per embedding column walks the positions in order: repeated tokens add up
 * deterministically and without atomics. */
__global__ void embed_backward_kernel(float *dE, const float *dout, const int *tokens, int T, int d) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= d) return;
    for (int t = 0; t < T; t++) {
        const int tok = tokens[t];
        if (tok >= 0) dE[(size_t)tok * d + i] += dout[(size_t)t * d + i];
    }
}
static void cuda_embed_backward(float *dE, const float *dout, const int *tokens, int T, int d) {
    if (!T) return;
    /* which rows change is known only on the device: treat the rest of dE's allocation as written */
    cuda_wrote_to_end(dE);
    embed_backward_kernel<<<ceil_div(d, 64), 64, 0, cuda_stream>>>(dE, dout, tokens, T, d);
    launchCheck();
}

/* ---- normalisation, activations ---- */

/* out_bf (bf16 mode): the GEMM operand copy of out, written in the same pass. */
__global__ void rmsnorm_forward_kernel(float *out, __nv_bfloat16 *out_bf, float *rstd, const float *x, const float *w,
                                       int d, float eps) {
    __shared__ float sh[32];
    const size_t row = blockIdx.x;
    const float *xr = x + row * d;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss, sh);
    const float r = 1.0f / sqrtf(ss / d + eps);
    if (threadIdx.x == 0) rstd[row] = r;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        const float y = xr[i] * r * w[i];
        out[row * d + i] = y;
        if (out_bf) out_bf[row * d + i] = __float2bfloat16_rn(y);
    }
}
/* One warp per row: no block-wide barrier, eight rows per block. */
__global__ void rmsnorm_forward_warp_kernel(float *out, __nv_bfloat16 *out_bf, float *rstd, const float *x,
                                            const float *w, int T, int d, float eps) {
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= T) return;
    const float *xr = x + (size_t)row * d;
    float ss = 0.0f;
    for (int i = lane; i < d; i += 32) ss += xr[i] * xr[i];
    ss = warp_sum(ss);
    const float r = 1.0f / sqrtf(ss / d + eps);
    if (lane == 0) rstd[row] = r;
    for (int i = lane; i < d; i += 32) {
        const float y = xr[i] * r * w[i];
        out[(size_t)row * d + i] = y;
        if (out_bf) out_bf[(size_t)row * d + i] = __float2bfloat16_rn(y);
    }
}

static void cuda_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int T, int d, float eps) {
    if (!T) return;
    cuda_wrote(out, (size_t)T * d * sizeof(float));
    cuda_wrote(rstd, (size_t)T * sizeof(float));
    __nv_bfloat16 *out_bf = cuda_bf16_alongside(out, (size_t)T * d); /* the next GEMM's operand */
    if (d <= 8192) {
        rmsnorm_forward_warp_kernel<<<ceil_div(T, 8), 256, 0, cuda_stream>>>(out, out_bf, rstd, x, w, T, d, eps);
    } else {
        rmsnorm_forward_kernel<<<T, 256, 0, cuda_stream>>>(out, out_bf, rstd, x, w, d, eps);
    }
    launchCheck();
}

__global__ void rmsnorm_backward_dx_kernel(float *dx, const float *dout, const float *x, const float *w,
                                           const float *rstd, int d) {
    __shared__ float sh[32];
    const size_t row = blockIdx.x;
    const float *xr = x + row * d, *g = dout + row * d;
    const float r = rstd[row];
    float dot = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) dot += g[i] * w[i] * xr[i];
    dot = block_sum(dot, sh);
    const float c = dot * r * r * r / d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) dx[row * d + i] += g[i] * w[i] * r - c * xr[i];
}
static void cuda_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                                  const float *rstd, int T, int d) {
    if (!T) return;
    cuda_wrote(dx, (size_t)T * d * sizeof(float));
    rmsnorm_backward_dx_kernel<<<T, 256, 0, cuda_stream>>>(dx, dout, x, w, rstd, d);
    launchCheck();
    column_sums(dw, dout, x, rstd, T, d); /* dw_i += sum_t g_ti x_ti r_t */
}

/* SwiGLU on the packed [T, 2 ff] output of the stacked gate/up GEMM. */
/* h_bf, dgate_up_bf (bf16 mode): the GEMM operand copies, written in the same pass. */
__global__ void swiglu_forward_kernel(float *h, __nv_bfloat16 *h_bf, const float *gate_up, size_t n, int ff) {
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        const size_t g_at = (k / ff) * 2 * ff + k % ff;
        const float g = gate_up[g_at], y = g / (1.0f + expf(-g)) * gate_up[g_at + ff];
        h[k] = y;
        if (h_bf) h_bf[k] = __float2bfloat16_rn(y);
    }
}
static void cuda_swiglu_forward(float *h, const float *gate_up, int T, int ff) {
    const size_t n = (size_t)T * ff;
    if (!n) return;
    cuda_wrote(h, n * sizeof(float));
    __nv_bfloat16 *h_bf = cuda_bf16_alongside(h, n); /* the down projection's operand */
    swiglu_forward_kernel<<<grid_for(n, 256), 256, 0, cuda_stream>>>(h, h_bf, gate_up, n, ff);
    launchCheck();
}

__global__ void swiglu_backward_kernel(float *dgate_up, __nv_bfloat16 *dgate_up_bf, const float *dh,
                                       const float *gate_up, size_t n, int ff) {
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        const size_t g_at = (k / ff) * 2 * ff + k % ff;
        const float g = gate_up[g_at], u = gate_up[g_at + ff], s = 1.0f / (1.0f + expf(-g));
        const float d_up = dh[k] * g * s, d_gate = dh[k] * u * s * (1.0f + g * (1.0f - s));
        dgate_up[g_at + ff] = d_up;
        dgate_up[g_at] = d_gate;
        if (dgate_up_bf) {
            dgate_up_bf[g_at + ff] = __float2bfloat16_rn(d_up);
            dgate_up_bf[g_at] = __float2bfloat16_rn(d_gate);
        }
    }
}
static void cuda_swiglu_backward(float *dgate_up, const float *dh, const float *gate_up, int T, int ff) {
    const size_t n = (size_t)T * ff;
    if (!n) return;
    cuda_wrote(dgate_up, 2 * n * sizeof(float));
    /* the operand of both backward GEMMs of the gate/up projection */
    __nv_bfloat16 *dgate_up_bf = cuda_bf16_alongside(dgate_up, 2 * n);
    swiglu_backward_kernel<<<grid_for(n, 256), 256, 0, cuda_stream>>>(dgate_up, dgate_up_bf, dh, gate_up, n, ff);
    launchCheck();
}

/* ---- soft-token noise and its log-density ---- */

__global__ void add_noise_kernel(float *x, const RngKey *keys, int rows, int d, float sigma) {
    const size_t total = (size_t)rows * d;
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < total; k += (size_t)gridDim.x * blockDim.x)
        x[k] += sigma * rng_normal(keys[k / d], (uint32_t)(k % d));
}
static void cuda_add_noise(float *x, const RngKey *host_keys, int rows, int d, float sigma) {
    if (!rows) return;
    RngKey *keys = (RngKey *)cuda_scratch(SCRATCH_META, (size_t)rows * sizeof(RngKey));
    cudaCheck(cudaMemcpyAsync(keys, host_keys, (size_t)rows * sizeof(RngKey), cudaMemcpyHostToDevice, cuda_stream));
    cuda_wrote(x, (size_t)rows * d * sizeof(float));
    add_noise_kernel<<<grid_for((size_t)rows * d, 256), 256, 0, cuda_stream>>>(x, keys, rows, d, sigma);
    launchCheck();
}

__global__ void gauss_forward_kernel(float *out, const float *h, const float *mu, int d, float inv_two_sigma2) {
    __shared__ float sh[32];
    const size_t row = blockIdx.x;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        const float e = h[row * d + i] - mu[row * d + i];
        ss += e * e;
    }
    ss = block_sum(ss, sh);
    if (threadIdx.x == 0) out[row] = -ss * inv_two_sigma2;
}
static void cuda_gauss_logprob_forward(float *out, const float *h, const float *mu, int rows, int d,
                                       float inv_two_sigma2) {
    if (!rows) return;
    cuda_wrote(out, (size_t)rows * sizeof(float));
    gauss_forward_kernel<<<rows, 128, 0, cuda_stream>>>(out, h, mu, d, inv_two_sigma2);
    launchCheck();
}

__global__ void gauss_backward_kernel(float *dmu, const float *dout, const float *h, const float *mu, int rows,
                                      int d, float inv_two_sigma2) {
    const size_t total = (size_t)rows * d;
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < total; k += (size_t)gridDim.x * blockDim.x)
        dmu[k] += dout[k / d] * 2.0f * inv_two_sigma2 * (h[k] - mu[k]);
}
static void cuda_gauss_logprob_backward(float *dmu, const float *dout, const float *h, const float *mu, int rows,
                                        int d, float inv_two_sigma2) {
    if (!rows) return;
    cuda_wrote(dmu, (size_t)rows * d * sizeof(float));
    gauss_backward_kernel<<<grid_for((size_t)rows * d, 256), 256, 0, cuda_stream>>>(dmu, dout, h, mu, rows, d,
                                                                                     inv_two_sigma2);
    launchCheck();
}

/* ---- optimizer ---- */

__global__ void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                             float beta2, float eps, float wd, float bc1, float bc2) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float pi = p[i] * (1.0f - lr * wd);
        const float mi = beta1 * m[i] + (1.0f - beta1) * g[i];
        const float vi = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
    }
}
static void cuda_adamw(float *p, const float *g, float *m, float *v, size_t n, AdamWParams hp) {
    if (!n) return;
    cuda_wrote(p, n * sizeof(float));
    cuda_wrote(m, n * sizeof(float));
    cuda_wrote(v, n * sizeof(float));
    const float bc1 = 1.0f - powf(hp.beta1, (float)hp.step), bc2 = 1.0f - powf(hp.beta2, (float)hp.step);
    adamw_kernel<<<grid_for(n, 256), 256, 0, cuda_stream>>>(p, g, m, v, n, hp.lr, hp.beta1, hp.beta2, hp.eps,
                                                            hp.weight_decay, bc1, bc2);
    launchCheck();
}

/* ---- recorded sequences (ops_replay_begin / ops_replay_end) ----
 * A key's first sequence runs normally (it sizes the scratch buffers and the bf16 copies),
 * its second is captured into a CUDA graph and launched, later ones replay the graph: one
 * launch instead of hundreds of small ones per decode step. Every recording dies when
 * graph_epoch moves: on any dev_free or scratch growth (addresses it holds may be reused),
 * when a bf16 copy it reads without converting is invalidated (weights after AdamW), or
 * when a copy it uses is evicted. SOFTCOT_CUDA_GRAPHS=0 turns recording off. */
typedef struct {
    uint64_t key, epoch;
    cudaGraphExec_t exec;
    int seen;
    uint64_t last_use;
} Recording;

enum { MAX_RECORDINGS = 128 };
static Recording recordings[MAX_RECORDINGS];
static int n_recordings, graphs_enabled = -1;
static uint64_t capture_epoch, replay_clock;

static Recording *recording_for(uint64_t key) {
    replay_clock++;
    for (int i = 0; i < n_recordings; i++)
        if (recordings[i].key == key) {
            recordings[i].last_use = replay_clock;
            return &recordings[i];
        }
    Recording *r;
    if (n_recordings < MAX_RECORDINGS) {
        r = &recordings[n_recordings++];
    } else {
        r = &recordings[0];
        for (int i = 1; i < n_recordings; i++)
            if (recordings[i].last_use < r->last_use) r = &recordings[i];
        if (r->exec) cudaCheck(cudaGraphExecDestroy(r->exec));
    }
    *r = (Recording){.key = key, .epoch = 0, .exec = NULL, .seen = 0, .last_use = replay_clock};
    return r;
}

static int cuda_replay_begin(uint64_t key) {
    if (graphs_enabled < 0) {
        const char *e = getenv("SOFTCOT_CUDA_GRAPHS");
        graphs_enabled = !(e && !strcmp(e, "0"));
    }
    if (!graphs_enabled || capturing) return 0;
    Recording *r = recording_for(key);
    if (r->exec && r->epoch == graph_epoch) {
        cudaCheck(cudaGraphLaunch(r->exec, cuda_stream));
        return 1;
    }
    if (r->exec) {
        cudaCheck(cudaGraphExecDestroy(r->exec));
        r->exec = NULL;
        r->seen = 0;
    }
    if (r->seen++ == 0) return 0;
    cudaCheck(cudaStreamBeginCapture(cuda_stream, cudaStreamCaptureModeRelaxed));
    capturing = 1;
    capture_id++;
    capture_epoch = graph_epoch;
    return 0;
}

static void cuda_replay_end(uint64_t key) {
    if (!capturing) return;
    cudaGraph_t graph;
    cudaCheck(cudaStreamEndCapture(cuda_stream, &graph));
    capturing = 0;
    cudaGraphExec_t exec;
    cudaCheck(cudaGraphInstantiate(&exec, graph, 0));
    cudaCheck(cudaGraphDestroy(graph));
    cudaCheck(cudaGraphLaunch(exec, cuda_stream)); /* capturing ran nothing: run it now */
    Recording *r = recording_for(key);
    if (graph_epoch == capture_epoch) {
        r->exec = exec;
        r->epoch = graph_epoch;
    } else { /* the sequence itself invalidated what it read: do not keep it */
        cudaCheck(cudaGraphExecDestroy(exec));
        r->seen = 0;
    }
}

/* ---- backend ---- */

static int cuda_initialised;

/* Selecting the backend again (the GPU checks switch precision) only changes the
 * precision; cached bf16 copies are dropped because fp32 runs must not read them. */
static int cuda_init(int local_rank, OpsPrecision precision, Err *err) {
    if (cuda_initialised) {
        bf16_cache_drop_all();
        cuda_precision = precision;
        return 0;
    }
    int n_dev = 0;
    cudaError_t e = cudaGetDeviceCount(&n_dev);
    if (e != cudaSuccess || n_dev == 0)
        return err_set(err, "--device cuda: no usable GPU (%s)",
                       e != cudaSuccess ? cudaGetErrorString(e) : "no devices");
    const int dev = local_rank % n_dev;
    cudaCheck(cudaSetDevice(dev));
    cudaCheck(cudaStreamCreateWithFlags(&cuda_stream, cudaStreamNonBlocking));
    cublasCheck(cublasCreate(&cuda_blas));
    cublasCheck(cublasSetStream(cuda_blas, cuda_stream));
    /* fp32 mode must be true fp32 (the CPU-comparison path): no TF32 tensor cores. */
    cublasCheck(cublasSetMathMode(cuda_blas, CUBLAS_DEFAULT_MATH));
    /* a fixed workspace, so that cuBLAS allocates nothing while a graph is being recorded */
    void *workspace;
    const size_t workspace_bytes = (size_t)64 << 20;
    cudaCheck(cudaMalloc(&workspace, workspace_bytes));
    cublasCheck(cublasSetWorkspace(cuda_blas, workspace, workspace_bytes));
    cuda_gemm_lt_init();
    alloc_sizes = new std::unordered_map<void *, size_t>();
    cuda_precision = precision;
    size_t free_b = 0, total_b = 0;
    cudaCheck(cudaMemGetInfo(&free_b, &total_b));
    bf16_budget = total_b / 6; /* weights of a 3B model in bf16 fit; activations rotate */
    cuda_initialised = 1;
    return 0;
}

static const OpsBackend cuda_backend = {
    .name = "cuda",
    .device_is_host = 0,
    .init = cuda_init,
    .bytes_peak = cuda_bytes_peak,
    .comm_id_bytes = CUDA_COMM_ID_BYTES,
    .comm_unique_id = cuda_comm_unique_id,
    .comm_init = cuda_comm_init,
    .allreduce_sum = cuda_allreduce_sum,
    .replay_begin = cuda_replay_begin,
    .replay_end = cuda_replay_end,
    .alloc_mem = cuda_alloc,
    .free_mem = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .zero = cuda_zero,
    .sync = cuda_sync,
    .matmul = cuda_matmul,
    .linear_residual_forward = cuda_linear_residual_forward,
    .add_bias = cuda_add_bias,
    .bias_backward = cuda_bias_backward,
    .add = cuda_add,
    .scale = cuda_scale,
    .sumsq = cuda_sumsq,
    .embed_forward = cuda_embed_forward,
    .embed_backward = cuda_embed_backward,
    .rmsnorm_forward = cuda_rmsnorm_forward,
    .rmsnorm_backward = cuda_rmsnorm_backward,
    .swiglu_forward = cuda_swiglu_forward,
    .swiglu_backward = cuda_swiglu_backward,
    .qkv_forward = cuda_qkv_forward,
    .qkv_backward = cuda_qkv_backward,
    .attention_forward = cuda_attention_forward,
    .attention_backward = cuda_attention_backward,
    .softmax_forward = cuda_softmax_forward,
    .softmax_backward = cuda_softmax_backward,
    .logprob_forward = cuda_logprob_forward,
    .logprob_backward = cuda_logprob_backward,
    .kl_categorical = cuda_kl_categorical,
    .entropy = cuda_entropy,
    .sample = cuda_sample,
    .add_noise = cuda_add_noise,
    .gauss_logprob_forward = cuda_gauss_logprob_forward,
    .gauss_logprob_backward = cuda_gauss_logprob_backward,
    .adamw = cuda_adamw,
};

extern "C" const OpsBackend *ops_backend_cuda(void) { return &cuda_backend; }
