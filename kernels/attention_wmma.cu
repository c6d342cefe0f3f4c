/* Causal attention on tensor cores (bf16 precision mode): flash-attention style forward
 * and backward with WMMA 16x16x16 bf16 products and fp32 accumulation. Softmax
 * statistics, the running output, D = rowsum(dO*O) and all global data stay fp32; Q, K, V,
 * dO and the probabilities enter the tensor cores as bf16, exactly like the GEMM operands
 * of bf16 mode. No T x T matrix is stored; every output element has one writer.
 *
 * A block owns 64 rows (4 warps x 16) and streams the other side in tiles of 32, which
 * keeps shared memory near 80 KB so that two blocks share an SM.
 *   attn_wmma_forward: block = (query tile, head); online softmax over key tiles.
 *   attn_wmma_dq:      block = (query tile, head); dQ accumulates in fragments.
 *   attn_wmma_dkdv:    block = (key tile, KV head); loops over the group's heads and the
 *                      query tiles that see the keys; dK, dV accumulate in fragments.
 * Head sizes 32, 64, 96 and 128, compiled each (attention_cuda.cu falls back to the fp32
 * kernels otherwise, and for single-query decode, which is bandwidth-bound).
 */
#include <mma.h>

#include "cuda_common.cuh"

using namespace nvcuda;

enum { WT = 64, WI = 32, W_WARPS = 4, W_THREADS = 128, WHS_MAX = 128 };

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> FragA;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> FragBt; /* B = X^T */
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> FragB;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> FragC;

/* Row strides (elements) of the shared tiles: padded against bank conflicts, and
 * multiples of 8 (bf16) / 4 (fp32) as WMMA requires. */
__device__ __host__ inline int ld_h(int hs) { return hs + 8; }  /* bf16 [rows][hs] tiles */
enum { LD_S = WI + 4, LD_P = WI + 8 };                         /* fp32 / bf16 [64][32] tiles */

/* Loads `rows` rows from row_base of an fp32 matrix (row stride `stride`) into a bf16
 * tile; rows >= n_valid become zeros. */
__device__ inline void load_tile(__nv_bfloat16 *dst, int ld, const float *src, size_t row_base, size_t stride,
                                 int rows, int n_valid, int hs) {
    for (int k = threadIdx.x; k < rows * hs; k += W_THREADS) {
        const int r = k / hs, c = k % hs;
        const float v = r < n_valid ? src[(row_base + r) * stride + c] : 0.0f;
        dst[r * ld + c] = __float2bfloat16_rn(v);
    }
}

/* S[16 rows of warp][32] = A[16][hs] * B[32][hs]^T, both bf16 tiles, into fp32 smem. */
__device__ inline void warp_abt(float *S, const __nv_bfloat16 *A, const __nv_bfloat16 *B, int ld, int hs) {
    const int w = threadIdx.x / 32;
    for (int n = 0; n < WI / 16; n++) {
        FragC acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int k = 0; k < hs / 16; k++) {
            FragA a;
            FragBt b;
            wmma::load_matrix_sync(a, A + (16 * w) * ld + 16 * k, ld);
            wmma::load_matrix_sync(b, B + (16 * n) * ld + 16 * k, ld);
            wmma::mma_sync(acc, a, b, acc);
        }
        wmma::store_matrix_sync(S + (16 * w) * LD_S + 16 * n, acc, LD_S, wmma::mem_row_major);
    }
}

/* acc[j] += P[16 rows of warp][32] * X[32][hs] (16-column block j of the result). */
__device__ inline void warp_px(FragC *acc, const __nv_bfloat16 *P, const __nv_bfloat16 *X, int ld, int hs) {
    const int w = threadIdx.x / 32;
    for (int j = 0; j < hs / 16; j++)
        for (int k = 0; k < WI / 16; k++) {
            FragA a;
            FragB b;
            wmma::load_matrix_sync(a, P + (16 * w) * LD_P + 16 * k, LD_P);
            wmma::load_matrix_sync(b, X + (16 * k) * ld + 16 * j, ld);
            wmma::mma_sync(acc[j], a, b, acc[j]);
        }
}

typedef struct {
    int seq, row;
} WTile;

/* ---- forward ---- */

template <int HS>
__global__ void __launch_bounds__(W_THREADS) attn_wmma_forward(float *out, float *lse, const float *q, const float *k_cache, const float *v_cache,
                                  const WTile *items, const int *slot, const int *start, const int *len,
                                  const int *row0, int max_seq, int n_heads, int n_kv_heads, float scale) {
    constexpr int hs = HS;
    extern __shared__ __align__(32) unsigned char smem_raw[];
    const int ld = ld_h(hs), LD_O = hs + 4;
    __nv_bfloat16 *Qs = (__nv_bfloat16 *)smem_raw, *Ks = Qs + WT * ld, *Vs = Ks + WI * ld;
    __nv_bfloat16 *Pb = Vs + WI * ld;
    float *Sf = (float *)(Pb + WT * LD_P), *Of = Sf + WT * LD_S, *m_s = Of + WT * LD_O, *l_s = m_s + WT;

    const WTile it = items[blockIdx.x];
    const int h = blockIdx.y, g = h / (n_heads / n_kv_heads);
    const int s = it.seq, q0 = it.row, n_rows = min(WT, len[s] - q0), st = start[s];
    const int qd = n_heads * hs, kvd = n_kv_heads * hs;
    const size_t cache0 = (size_t)slot[s] * max_seq;
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32;

    load_tile(Qs, ld, q + (size_t)h * hs, (size_t)row0[s] + q0, qd, WT, n_rows, hs);
    for (int k = threadIdx.x; k < WT * LD_O; k += W_THREADS) Of[k] = 0.0f;
    if (threadIdx.x < WT) {
        m_s[threadIdx.x] = -INFINITY;
        l_s[threadIdx.x] = 0.0f;
    }
    const int n_keys = st + q0 + n_rows;
    for (int k0 = 0; k0 < n_keys; k0 += WI) {
        __syncthreads();
        const int nk = min(WI, n_keys - k0);
        load_tile(Ks, ld, k_cache + (size_t)g * hs, cache0 + k0, kvd, WI, nk, hs);
        load_tile(Vs, ld, v_cache + (size_t)g * hs, cache0 + k0, kvd, WI, nk, hs);
        __syncthreads();
        warp_abt(Sf, Qs, Ks, ld, hs);
        __syncwarp();
        /* online softmax: two lanes per row of the warp's 16, sixteen keys each, so a row
         * needs one shuffle per statistic instead of a whole-warp reduction */
        {
            const int half = lane & 1, r = 16 * w + (lane >> 1), q_pos = st + q0 + r;
            float sv[WI / 2], mx = -INFINITY;
#pragma unroll
            for (int jj = 0; jj < WI / 2; jj++) {
                const int j = half * (WI / 2) + jj;
                const bool ok = r < n_rows && k0 + j <= q_pos;
                sv[jj] = ok ? Sf[r * LD_S + j] * scale : -INFINITY;
                mx = fmaxf(mx, sv[jj]);
            }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            const float m_old = m_s[r], m_new = fmaxf(m_old, mx);
            float psum = 0.0f;
#pragma unroll
            for (int jj = 0; jj < WI / 2; jj++) {
                const float p = m_new == -INFINITY ? 0.0f : expf(sv[jj] - m_new);
                Pb[r * LD_P + half * (WI / 2) + jj] = __float2bfloat16_rn(p);
                psum += p;
            }
            psum += __shfl_xor_sync(0xffffffffu, psum, 1);
            const float alpha = m_new == -INFINITY ? 1.0f : expf(m_old - m_new);
            for (int c = half; c < hs; c += 2) Of[r * LD_O + c] *= alpha;
            __syncwarp();
            if (half == 0) {
                l_s[r] = l_s[r] * alpha + psum;
                m_s[r] = m_new;
            }
        }
        __syncwarp();
        FragC acc[WHS_MAX / 16];
        for (int j = 0; j < hs / 16; j++) wmma::load_matrix_sync(acc[j], Of + (16 * w) * LD_O + 16 * j, LD_O, wmma::mem_row_major);
        warp_px(acc, Pb, Vs, ld, hs);
        for (int j = 0; j < hs / 16; j++) wmma::store_matrix_sync(Of + (16 * w) * LD_O + 16 * j, acc[j], LD_O, wmma::mem_row_major);
    }
    __syncwarp();
    for (int rr = 0; rr < 16; rr++) {
        const int r = 16 * w + rr;
        if (r >= n_rows) break;
        const float l = l_s[r], inv = 1.0f / l;
        const size_t row = (size_t)row0[s] + q0 + r;
        for (int c = lane; c < hs; c += 32) out[row * qd + (size_t)h * hs + c] = Of[r * LD_O + c] * inv;
        if (lane == 0) lse[row * n_heads + h] = m_s[r] + logf(l);
    }
}

/* ---- backward: dQ ---- */

template <int HS>
__global__ void __launch_bounds__(W_THREADS) attn_wmma_dq(float *dq, const float *dout, const float *lse, const float *D, const float *q,
                             const float *k_cache, const float *v_cache, const WTile *items, const int *slot,
                             const int *len, const int *row0, int max_seq, int n_heads, int n_kv_heads,
                             float scale) {
    constexpr int hs = HS;
    extern __shared__ __align__(32) unsigned char smem_raw[];
    const int ld = ld_h(hs);
    __nv_bfloat16 *Qs = (__nv_bfloat16 *)smem_raw, *dOs = Qs + WT * ld, *Ks = dOs + WT * ld, *Vs = Ks + WI * ld;
    __nv_bfloat16 *dSb = Vs + WI * ld;
    float *Sf = (float *)(dSb + WT * LD_P), *dPf = Sf + WT * LD_S, *lse_s = dPf + WT * LD_S, *D_s = lse_s + WT;

    const WTile it = items[blockIdx.x];
    const int h = blockIdx.y, g = h / (n_heads / n_kv_heads);
    const int s = it.seq, q0 = it.row, n_rows = min(WT, len[s] - q0);
    const int qd = n_heads * hs, kvd = n_kv_heads * hs;
    const size_t cache0 = (size_t)slot[s] * max_seq;
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32;

    load_tile(Qs, ld, q + (size_t)h * hs, (size_t)row0[s] + q0, qd, WT, n_rows, hs);
    load_tile(dOs, ld, dout + (size_t)h * hs, (size_t)row0[s] + q0, qd, WT, n_rows, hs);
    if (threadIdx.x < WT) {
        const size_t row = (size_t)row0[s] + q0 + threadIdx.x;
        const bool ok = (int)threadIdx.x < n_rows;
        lse_s[threadIdx.x] = ok ? lse[row * n_heads + h] : 0.0f;
        D_s[threadIdx.x] = ok ? D[row * n_heads + h] : 0.0f;
    }
    FragC acc[WHS_MAX / 16];
    for (int j = 0; j < hs / 16; j++) wmma::fill_fragment(acc[j], 0.0f);
    const int n_keys = q0 + n_rows; /* start == 0 in backward */
    for (int k0 = 0; k0 < n_keys; k0 += WI) {
        __syncthreads();
        const int nk = min(WI, n_keys - k0);
        load_tile(Ks, ld, k_cache + (size_t)g * hs, cache0 + k0, kvd, WI, nk, hs);
        load_tile(Vs, ld, v_cache + (size_t)g * hs, cache0 + k0, kvd, WI, nk, hs);
        __syncthreads();
        warp_abt(Sf, Qs, Ks, ld, hs);
        warp_abt(dPf, dOs, Vs, ld, hs);
        __syncwarp();
        for (int rr = 0; rr < 16; rr++) {
            const int r = 16 * w + rr, q_pos = q0 + r;
            const bool ok = r < n_rows && k0 + lane <= q_pos;
            const float p = ok ? expf(Sf[r * LD_S + lane] * scale - lse_s[r]) : 0.0f;
            dSb[r * LD_P + lane] = __float2bfloat16_rn(p * (dPf[r * LD_S + lane] - D_s[r]));
        }
        __syncwarp();
        warp_px(acc, dSb, Ks, ld, hs); /* dQ += dS K */
    }
    __syncthreads();
    /* stage the warp's 16 x hs result through shared memory (the Q/dO region, now free) */
    float *stage = (float *)smem_raw + (size_t)w * 16 * (hs + 4);
    for (int j = 0; j < hs / 16; j++) wmma::store_matrix_sync(stage + 16 * j, acc[j], hs + 4, wmma::mem_row_major);
    __syncwarp();
    for (int rr = 0; rr < 16; rr++) {
        const int r = 16 * w + rr;
        if (r >= n_rows) break;
        const size_t row = (size_t)row0[s] + q0 + r;
        for (int c = lane; c < hs; c += 32) dq[row * qd + (size_t)h * hs + c] = stage[rr * (hs + 4) + c] * scale;
    }
}

/* dst[row0 + r][g*hs + c] += f * acc (the warp's 16 rows), staged through shared memory. */
template <int hs>
__device__ inline void add_rows(float *dst, const FragC *acc, float *stage, size_t row0, int n_valid, int kvd, int g,
                                float f) {
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
    for (int j = 0; j < hs / 16; j++) wmma::store_matrix_sync(stage + 16 * j, acc[j], hs + 4, wmma::mem_row_major);
    __syncwarp();
    for (int rr = 0; rr < 16; rr++) {
        const int kr = 16 * w + rr;
        if (kr >= n_valid) break;
        float *row = dst + (row0 + kr) * kvd + (size_t)g * hs;
        for (int c = lane; c < hs; c += 32) row[c] += stage[rr * (hs + 4) + c] * f;
    }
    __syncwarp();
}

/* ---- backward: dK, dV ---- */

template <int HS>
__global__ void __launch_bounds__(W_THREADS) attn_wmma_dkdv(float *dk_cache, float *dv_cache, const float *dout, const float *lse, const float *D,
                               const float *q, const float *k_cache, const float *v_cache, const WTile *items,
                               const int *slot, const int *len, const int *row0, int max_seq, int n_heads,
                               int n_kv_heads, float scale) {
    constexpr int hs = HS;
    extern __shared__ __align__(32) unsigned char smem_raw[];
    const int ld = ld_h(hs);
    __nv_bfloat16 *Ks = (__nv_bfloat16 *)smem_raw, *Vs = Ks + WT * ld, *Qs = Vs + WT * ld, *dOs = Qs + WI * ld;
    __nv_bfloat16 *Pt = dOs + WI * ld, *dSt = Pt + WT * LD_P;
    float *St = (float *)(dSt + WT * LD_P), *dPt = St + WT * LD_S, *lse_s = dPt + WT * LD_S, *D_s = lse_s + WT;

    const WTile it = items[blockIdx.x];
    const int g = blockIdx.y, group = n_heads / n_kv_heads;
    const int s = it.seq, k0 = it.row, n_k = min(WT, len[s] - k0), L = len[s];
    const int qd = n_heads * hs, kvd = n_kv_heads * hs;
    const size_t cache0 = (size_t)slot[s] * max_seq;
    const int w = threadIdx.x / 32, lane = threadIdx.x % 32;

    load_tile(Ks, ld, k_cache + (size_t)g * hs, cache0 + k0, kvd, WT, n_k, hs);
    load_tile(Vs, ld, v_cache + (size_t)g * hs, cache0 + k0, kvd, WT, n_k, hs);
    FragC dk[WHS_MAX / 16], dv[WHS_MAX / 16];
    for (int j = 0; j < hs / 16; j++) wmma::fill_fragment(dk[j], 0.0f), wmma::fill_fragment(dv[j], 0.0f);
    for (int hh = 0; hh < group; hh++) {
        const int h = g * group + hh;
        for (int q0 = k0; q0 < L; q0 += WI) {
            const int n_q = min(WI, L - q0);
            __syncthreads();
            load_tile(Qs, ld, q + (size_t)h * hs, (size_t)row0[s] + q0, qd, WI, n_q, hs);
            load_tile(dOs, ld, dout + (size_t)h * hs, (size_t)row0[s] + q0, qd, WI, n_q, hs);
            if (threadIdx.x < WI) {
                const size_t row = (size_t)row0[s] + q0 + threadIdx.x;
                const bool ok = (int)threadIdx.x < n_q;
                lse_s[threadIdx.x] = ok ? lse[row * n_heads + h] : 0.0f;
                D_s[threadIdx.x] = ok ? D[row * n_heads + h] : 0.0f;
            }
            __syncthreads();
            warp_abt(St, Ks, Qs, ld, hs);  /* S^T: keys x queries */
            warp_abt(dPt, Vs, dOs, ld, hs); /* dP^T = V dO^T */
            __syncwarp();
            for (int rr = 0; rr < 16; rr++) {
                const int kr = 16 * w + rr, k_pos = k0 + kr, i = lane; /* i: query within the tile */
                const bool ok = kr < n_k && i < n_q && k_pos <= q0 + i;
                const float p = ok ? expf(St[kr * LD_S + i] * scale - lse_s[i]) : 0.0f;
                Pt[kr * LD_P + i] = __float2bfloat16_rn(p);
                dSt[kr * LD_P + i] = __float2bfloat16_rn(p * (dPt[kr * LD_S + i] - D_s[i]));
            }
            __syncwarp();
            warp_px(dv, Pt, dOs, ld, hs); /* dV += P^T dO */
            warp_px(dk, dSt, Qs, ld, hs); /* dK += dS^T Q */
        }
    }
    __syncthreads();
    float *stage = (float *)smem_raw + (size_t)w * 16 * (hs + 4); /* the K/V region, now free */
    add_rows<hs>(dk_cache, dk, stage, cache0 + k0, n_k, kvd, g, scale);
    add_rows<hs>(dv_cache, dv, stage, cache0 + k0, n_k, kvd, g, 1.0f);
}

/* ---- launchers ---- */

static WTile *upload_wtiles(const AttnBatch *b, int *n_items) {
    int n = 0;
    for (int s = 0; s < b->n_seq; s++) n += (b->host_len[s] + WT - 1) / WT;
    WTile *host = (WTile *)malloc((size_t)(n ? n : 1) * sizeof(WTile));
    if (!host) fatal_at(__FILE__, __LINE__, "out of memory");
    int k = 0;
    for (int s = 0; s < b->n_seq; s++)
        for (int r = 0; r < b->host_len[s]; r += WT) host[k++] = (WTile){s, r};
    WTile *dev = (WTile *)cuda_scratch(SCRATCH_B, (size_t)(n ? n : 1) * sizeof(WTile));
    cudaCheck(cudaMemcpyAsync(dev, host, (size_t)n * sizeof(WTile), cudaMemcpyHostToDevice, cuda_stream));
    free(host);
    *n_items = n;
    return dev;
}

static void allow_smem_w(const void *kernel, size_t bytes) {
    if (bytes > 48 * 1024) cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

int cuda_attention_wmma_supported(int hs) {
    return cuda_precision == OPS_BF16 && (hs == 32 || hs == 64 || hs == 96 || hs == 128);
}

template <int HS>
static void forward_hs(float *out, float *lse, const float *q, const float *k_cache, const float *v_cache,
                       const AttnBatch *b, int n_heads, int n_kv_heads) {
    int n_items;
    const WTile *items = upload_wtiles(b, &n_items);
    /* Q (64 rows), K and V (32 rows) tiles and P (bf16), S and the output accumulator (fp32), m and l */
    const size_t smem = (size_t)(WT + 2 * WI) * ld_h(HS) * 2 + (size_t)WT * LD_P * 2 + (size_t)WT * LD_S * 4 +
                        (size_t)WT * (HS + 4) * 4 + 2 * WT * 4;
    allow_smem_w((const void *)attn_wmma_forward<HS>, smem);
    attn_wmma_forward<HS><<<dim3(n_items, n_heads), W_THREADS, smem, cuda_stream>>>(
        out, lse, q, k_cache, v_cache, items, b->d_slot, b->d_start, b->d_len, b->d_row0, b->max_seq, n_heads,
        n_kv_heads, 1.0f / sqrtf((float)HS));
    launchCheck();
}

void cuda_attention_forward_wmma(float *out, float *lse, const float *q, const float *k_cache, const float *v_cache,
                                 const AttnBatch *b, int n_heads, int n_kv_heads, int hs) {
    switch (hs) {
    case 32: forward_hs<32>(out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads); break;
    case 64: forward_hs<64>(out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads); break;
    case 96: forward_hs<96>(out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads); break;
    case 128: forward_hs<128>(out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads); break;
    default: fatal_at(__FILE__, __LINE__, "no tensor-core attention for head size %d", hs);
    }
}

template <int HS>
static void backward_hs(float *dq, float *dk_cache, float *dv_cache, const float *dout, const float *lse,
                        const float *D, const float *q, const float *k_cache, const float *v_cache,
                        const AttnBatch *b, int n_heads, int n_kv_heads) {
    int n_items;
    const WTile *items = upload_wtiles(b, &n_items);
    const float scale = 1.0f / sqrtf((float)HS);
    /* dQ: Q dO K V tiles (bf16), dS (bf16), S and dP (fp32), lse and D */
    size_t smem = (size_t)(2 * WT + 2 * WI) * ld_h(HS) * 2 + (size_t)WT * LD_P * 2 + (size_t)2 * WT * LD_S * 4 + 2 * WT * 4;
    allow_smem_w((const void *)attn_wmma_dq<HS>, smem);
    attn_wmma_dq<HS><<<dim3(n_items, n_heads), W_THREADS, smem, cuda_stream>>>(
        dq, dout, lse, D, q, k_cache, v_cache, items, b->d_slot, b->d_len, b->d_row0, b->max_seq, n_heads, n_kv_heads,
        scale);
    launchCheck();
    /* dK dV: K V Q dO tiles (bf16), P^T dS^T (bf16), S^T dP^T (fp32), lse and D */
    smem = (size_t)(2 * WT + 2 * WI) * ld_h(HS) * 2 + (size_t)2 * WT * LD_P * 2 + (size_t)2 * WT * LD_S * 4 + 2 * WT * 4;
    allow_smem_w((const void *)attn_wmma_dkdv<HS>, smem);
    attn_wmma_dkdv<HS><<<dim3(n_items, n_kv_heads), W_THREADS, smem, cuda_stream>>>(
        dk_cache, dv_cache, dout, lse, D, q, k_cache, v_cache, items, b->d_slot, b->d_len, b->d_row0, b->max_seq,
        n_heads, n_kv_heads, scale);
    launchCheck();
}

void cuda_attention_backward_wmma(float *dq, float *dk_cache, float *dv_cache, const float *dout, const float *lse,
                                  const float *D, const float *q, const float *k_cache, const float *v_cache,
                                  const AttnBatch *b, int n_heads, int n_kv_heads, int hs) {
    switch (hs) {
    case 32: backward_hs<32>(dq, dk_cache, dv_cache, dout, lse, D, q, k_cache, v_cache, b, n_heads, n_kv_heads); break;
    case 64: backward_hs<64>(dq, dk_cache, dv_cache, dout, lse, D, q, k_cache, v_cache, b, n_heads, n_kv_heads); break;
    case 96: backward_hs<96>(dq, dk_cache, dv_cache, dout, lse, D, q, k_cache, v_cache, b, n_heads, n_kv_heads); break;
    case 128: backward_hs<128>(dq, dk_cache, dv_cache, dout, lse, D, q, k_cache, v_cache, b, n_heads, n_kv_heads); break;
    default: fatal_at(__FILE__, __LINE__, "no tensor-core attention for head size %d", hs);
    }
}
