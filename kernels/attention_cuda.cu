/* Causal attention with GQA over the KV cache (ops.h contract), in fp32 (bf16 mode hands
 * prefill and training to the tensor-core kernels of attention_wmma.cu):
 *   - attn_tile_forward: prefill and training. One block per (32-query tile, head), keys
 *     streamed in 32-key tiles through shared memory with an online softmax, so no T×T
 *     matrix is ever stored;
 *   - attn_decode: one query per sequence (batched generation), one block per
 *     (sequence, head), four warps splitting the keys, merged at the end;
 *   - backward: attn_tile_dq (per query tile) and attn_tile_dkdv (per key tile and KV
 *     head, looping over the group's query heads): both recompute P from the saved
 *     log-sum-exp, and each output element has exactly one writer — no atomics, so the
 *     result is deterministic.
 * Thread layout of the tile kernels: 256 threads; thread t owns tile row t/8 and the
 * columns c ≡ t%8 (mod 8) of that row. Head size up to 128.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"

enum { TILE = 32, TILE_THREADS = 256, HS_MAX = 128, COLS_PER_THREAD = HS_MAX / 8 };

/* Work items: (sequence, first row of the tile). */
typedef struct {
    int seq, row;
} TileItem;

static TileItem *upload_tiles(const AttnBatch *b, int slot, int *n_items) {
    int n = 0;
    for (int s = 0; s < b->n_seq; s++) n += (b->host_len[s] + TILE - 1) / TILE;
    TileItem *host = (TileItem *)malloc((size_t)(n ? n : 1) * sizeof(TileItem));
    if (!host) fatal_at(__FILE__, __LINE__, "out of memory");
    int k = 0;
    for (int s = 0; s < b->n_seq; s++)
        for (int r = 0; r < b->host_len[s]; r += TILE) host[k++] = (TileItem){s, r};
    TileItem *dev = (TileItem *)cuda_scratch(slot, (size_t)(n ? n : 1) * sizeof(TileItem));
    cudaCheck(cudaMemcpyAsync(dev, host, (size_t)n * sizeof(TileItem), cudaMemcpyHostToDevice, cuda_stream));
    free(host);
    *n_items = n;
    return dev;
}

static void check_head_size(int hs) {
    if (hs > HS_MAX || hs % 2)
        fatal_at(__FILE__, __LINE__, "CUDA attention supports even head sizes up to %d, not %d", HS_MAX, hs);
}

/* ---- the packed q/k/v rows: RoPE and the KV cache ----
 * One block row per sequence (blockIdx.y); each thread item of a row is a rotated pair of
 * a q head, a rotated pair of a k head, or one v element, so a row is
 * (n_heads + n_kv_heads) * hs/2 + n_kv_heads * hs items. Forward reads the packed row and
 * writes q and the caches; backward (dir -1, the inverse rotation) reads dq and the
 * cached gradients and writes the packed row. */
__global__ void qkv_kernel(float *q, float *k_cache, float *v_cache, float *qkv, const float *cos_tab,
                           const float *sin_tab, const int *slot, const int *start, const int *len,
                           const int *row0, int max_seq, int n_heads, int n_kv_heads, int hs, int backward) {
    const int s = blockIdx.y, half = hs / 2, qd = n_heads * hs, kvd = n_kv_heads * hs, width = qd + 2 * kvd;
    const int q_items = n_heads * half, rot_items = (n_heads + n_kv_heads) * half, row_items = rot_items + kvd;
    const size_t n = (size_t)len[s] * row_items;
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        const int j = (int)(k / row_items), w = (int)(k % row_items);
        const size_t r = (size_t)row0[s] + j, p = (size_t)start[s] + j;
        float *packed = qkv + r * width;
        float *cached_k = k_cache + ((size_t)slot[s] * max_seq + p) * kvd;
        float *cached_v = v_cache + ((size_t)slot[s] * max_seq + p) * kvd;
        if (w >= rot_items) { /* a v element: a plain copy */
            const int e = w - rot_items;
            if (backward) packed[qd + kvd + e] = cached_v[e];
            else cached_v[e] = packed[qd + kvd + e];
            continue;
        }
        const int is_q = w < q_items, h = (is_q ? w : w - q_items) / half, i = w % half;
        float *unrotated = packed + (is_q ? 0 : qd) + h * hs;
        float *rotated = is_q ? q + r * qd + h * hs : cached_k + h * hs;
        const float c = cos_tab[p * half + i], sn = sin_tab[p * half + i];
        if (backward) {
            const float a = rotated[i], b = rotated[i + half];
            unrotated[i] = a * c + b * sn;
            unrotated[i + half] = b * c - a * sn;
        } else {
            const float a = unrotated[i], b = unrotated[i + half];
            rotated[i] = a * c - b * sn;
            rotated[i + half] = b * c + a * sn;
        }
    }
}

static dim3 qkv_grid(const AttnBatch *b, int n_heads, int n_kv_heads, int hs) {
    int max_len = 0;
    for (int s = 0; s < b->n_seq; s++) max_len = b->host_len[s] > max_len ? b->host_len[s] : max_len;
    const size_t items = (size_t)max_len * ((n_heads + n_kv_heads) * (hs / 2) + n_kv_heads * hs);
    unsigned g = ceil_div(items, 256);
    return dim3(g < 1024 ? (g ? g : 1) : 1024, b->n_seq);
}

void cuda_qkv_forward(float *q, float *k_cache, float *v_cache, const float *qkv, const float *cos_tab,
                      const float *sin_tab, const AttnBatch *b, int n_heads, int n_kv_heads, int hs) {
    if (!b->n_seq) return;
    const int kvd = n_kv_heads * hs;
    cuda_wrote(q, (size_t)b->total_rows * n_heads * hs * sizeof(float));
    for (int s = 0; s < b->n_seq; s++) {
        const size_t at = ((size_t)b->host_slot[s] * b->max_seq + b->host_start[s]) * kvd;
        cuda_wrote(k_cache + at, (size_t)b->host_len[s] * kvd * sizeof(float));
        cuda_wrote(v_cache + at, (size_t)b->host_len[s] * kvd * sizeof(float));
    }
    qkv_kernel<<<qkv_grid(b, n_heads, n_kv_heads, hs), 256, 0, cuda_stream>>>(
        q, k_cache, v_cache, (float *)qkv, cos_tab, sin_tab, b->d_slot, b->d_start, b->d_len, b->d_row0, b->max_seq,
        n_heads, n_kv_heads, hs, 0);
    launchCheck();
}

void cuda_qkv_backward(float *dqkv, const float *dq, const float *dk_cache, const float *dv_cache,
                       const float *cos_tab, const float *sin_tab, const AttnBatch *b, int n_heads, int n_kv_heads,
                       int hs) {
    if (!b->n_seq) return;
    cuda_wrote(dqkv, (size_t)b->total_rows * (n_heads + 2 * n_kv_heads) * hs * sizeof(float));
    qkv_kernel<<<qkv_grid(b, n_heads, n_kv_heads, hs), 256, 0, cuda_stream>>>(
        (float *)dq, (float *)dk_cache, (float *)dv_cache, dqkv, cos_tab, sin_tab, b->d_slot, b->d_start, b->d_len,
        b->d_row0, b->max_seq, n_heads, n_kv_heads, hs, 1);
    launchCheck();
}

/* ---- forward, tiles ---- */

__global__ void attn_tile_forward(float *out, float *lse, const float *q, const float *k_cache,
                                  const float *v_cache, const TileItem *items, const int *slot,
                                  const int *start, const int *len, const int *row0, int max_seq,
                                  int n_heads, int n_kv_heads, int hs, float scale) {
    extern __shared__ float smem[];
    const int hp = hs + 1; /* padded row stride: threads of a warp read 8 different rows */
    float *Qs = smem, *Ks = Qs + TILE * hp, *Vs = Ks + TILE * hp, *Ss = Vs + TILE * hp;
    float *m_s = Ss + TILE * (TILE + 1), *l_s = m_s + TILE, *alpha_s = l_s + TILE;

    const TileItem it = items[blockIdx.x];
    const int h = blockIdx.y, g = h / (n_heads / n_kv_heads);
    const int s = it.seq, q0 = it.row, n_rows = min(TILE, len[s] - q0);
    const int qd = n_heads * hs, kvd = n_kv_heads * hs, st = start[s];
    const size_t cache0 = (size_t)slot[s] * max_seq * kvd + (size_t)g * hs;
    const int tid = threadIdx.x, row = tid / 8, sub = tid % 8;
    const int lane = tid % 32, warp = tid / 32;

    for (int k = tid; k < TILE * hs; k += TILE_THREADS) {
        const int r = k / hs, c = k % hs;
        Qs[r * hp + c] = r < n_rows ? q[(size_t)(row0[s] + q0 + r) * qd + (size_t)h * hs + c] : 0.0f;
    }
    if (tid < TILE) {
        m_s[tid] = -INFINITY;
        l_s[tid] = 0.0f;
    }
    float acc[COLS_PER_THREAD];
    for (int k = 0; k < COLS_PER_THREAD; k++) acc[k] = 0.0f;

    const int q_pos = st + q0 + row;                 /* this thread's query position */
    const int n_keys = st + q0 + n_rows;             /* keys visible to the tile's last row */
    for (int k0 = 0; k0 < n_keys; k0 += TILE) {
        __syncthreads();
        for (int k = tid; k < TILE * hs; k += TILE_THREADS) {
            const int j = k / hs, c = k % hs;
            const bool ok = k0 + j < n_keys;
            const size_t at = cache0 + (size_t)(k0 + j) * kvd + c;
            Ks[j * hp + c] = ok ? k_cache[at] : 0.0f;
            Vs[j * hp + c] = ok ? v_cache[at] : 0.0f;
        }
        __syncthreads();
        for (int m = 0; m < TILE / 8; m++) {
            const int j = sub + 8 * m;
            float dot = 0.0f;
            for (int c = 0; c < hs; c++) dot += Qs[row * hp + c] * Ks[j * hp + c];
            const bool visible = row < n_rows && k0 + j <= q_pos;
            Ss[row * (TILE + 1) + j] = visible ? dot * scale : -INFINITY;
        }
        __syncthreads();
        /* online softmax: warp w updates rows 4w .. 4w+3, lane = key */
        for (int rr = 0; rr < TILE / 8; rr++) {
            const int r = warp * (TILE / 8) + rr;
            const float sv = Ss[r * (TILE + 1) + lane];
            const float m_old = m_s[r], m_new = fmaxf(m_old, warp_max(sv));
            const float p = m_new == -INFINITY ? 0.0f : expf(sv - m_new);
            const float psum = warp_sum(p);
            Ss[r * (TILE + 1) + lane] = p;
            __syncwarp();
            if (lane == 0) {
                const float alpha = m_new == -INFINITY ? 1.0f : expf(m_old - m_new);
                alpha_s[r] = alpha;
                l_s[r] = l_s[r] * alpha + psum;
                m_s[r] = m_new;
            }
        }
        __syncthreads();
        const float alpha = alpha_s[row];
        for (int c = sub, k = 0; c < hs; c += 8, k++) {
            float a = acc[k] * alpha;
            for (int j = 0; j < TILE; j++) a += Ss[row * (TILE + 1) + j] * Vs[j * hp + c];
            acc[k] = a;
        }
    }
    if (row < n_rows) {
        const float l = l_s[row], inv = 1.0f / l;
        const size_t r = (size_t)(row0[s] + q0 + row);
        for (int c = sub, k = 0; c < hs; c += 8, k++) out[r * qd + (size_t)h * hs + c] = acc[k] * inv;
        if (sub == 0) lse[r * n_heads + h] = m_s[row] + logf(l);
    }
}

/* ---- forward, one query per sequence ---- */

/* Where decode attention of one sequence reads: KV head g's cached keys and values, the
 * sequence's query row and its number of keys (cached positions plus the new one). */
struct DecodeSeq {
    const float *K, *V;
    size_t row;
    int n_keys;
};
__device__ inline DecodeSeq decode_seq(const float *k_cache, const float *v_cache, const int *slot, const int *start,
                                       const int *row0, int s, int g, int max_seq, int kvd, int hs) {
    const size_t at = (size_t)slot[s] * max_seq * kvd + (size_t)g * hs;
    return DecodeSeq{k_cache + at, v_cache + at, (size_t)row0[s], start[s] + 1};
}

/* Run by one warp: merges N_WARPS partial online-softmax states of one query head (warp
 * w's running max at m[w * state_stride], its sum at l[...], its unnormalised output at
 * acc[w * acc_stride + c]; a warp that saw no key has max -inf) into the head's output
 * row and log-sum-exp. */
template <int N_WARPS>
__device__ void merge_decode_states(float *out_row, float *lse_at, const float *m, const float *l, const float *acc,
                                    int state_stride, int acc_stride, int hs, int lane) {
    float M = -INFINITY;
    for (int w = 0; w < N_WARPS; w++) M = fmaxf(M, m[w * state_stride]);
    float L = 0.0f, f[N_WARPS];
    for (int w = 0; w < N_WARPS; w++) {
        f[w] = m[w * state_stride] == -INFINITY ? 0.0f : expf(m[w * state_stride] - M);
        L += l[w * state_stride] * f[w];
    }
    for (int c = lane; c < hs; c += 32) {
        float o = 0.0f;
        for (int w = 0; w < N_WARPS; w++) o += acc[w * acc_stride + c] * f[w];
        out_row[c] = o / L;
    }
    if (lane == 0) *lse_at = M + logf(L);
}

enum { DECODE_WARPS = 4 };
__global__ void attn_decode(float *out, float *lse, const float *q, const float *k_cache, const float *v_cache,
                            const int *slot, const int *start, const int *row0, int max_seq, int n_heads,
                            int n_kv_heads, int hs, float scale) {
    __shared__ float m_w[DECODE_WARPS], l_w[DECODE_WARPS], acc_w[DECODE_WARPS][HS_MAX];
    const int h = blockIdx.x, s = blockIdx.y, g = h / (n_heads / n_kv_heads);
    const int qd = n_heads * hs, kvd = n_kv_heads * hs;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const DecodeSeq seq = decode_seq(k_cache, v_cache, slot, start, row0, s, g, max_seq, kvd, hs);
    const float *K = seq.K, *V = seq.V;
    const size_t r = seq.row;
    const int n_keys = seq.n_keys;
    float qv[HS_MAX / 32], acc[HS_MAX / 32];
    for (int k = 0; k < HS_MAX / 32; k++) {
        const int c = lane + 32 * k;
        qv[k] = c < hs ? q[r * qd + (size_t)h * hs + c] * scale : 0.0f;
        acc[k] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int j = warp; j < n_keys; j += DECODE_WARPS) {
        const float *kj = K + (size_t)j * kvd, *vj = V + (size_t)j * kvd;
        float dot = 0.0f;
        for (int k = 0; k < HS_MAX / 32; k++) {
            const int c = lane + 32 * k;
            if (c < hs) dot += qv[k] * kj[c];
        }
        dot = warp_sum(dot);
        const float m_new = fmaxf(m, dot), corr = expf(m - m_new), p = expf(dot - m_new);
        l = l * corr + p;
        for (int k = 0; k < HS_MAX / 32; k++) {
            const int c = lane + 32 * k;
            acc[k] = acc[k] * corr + (c < hs ? p * vj[c] : 0.0f);
        }
        m = m_new;
    }
    if (lane == 0) {
        m_w[warp] = m;
        l_w[warp] = l;
    }
    for (int k = 0; k < HS_MAX / 32; k++) {
        const int c = lane + 32 * k;
        if (c < hs) acc_w[warp][c] = acc[k];
    }
    __syncthreads();
    if (warp != 0) return;
    merge_decode_states<DECODE_WARPS>(out + r * qd + (size_t)h * hs, lse + r * n_heads + h, m_w, l_w, &acc_w[0][0], 1,
                                      HS_MAX, hs, lane);
}

/* ---- forward, one query per sequence, one block per KV head (opt-in) ----
 * attn_decode reads each KV head's keys once per query head of its group and walks them
 * one dependent load at a time per warp, so at decode shapes it is bound by load latency
 * (43 µs per layer for 64 sequences of the 1B shape, docs/gpu.md). This kernel gives
 * one block to a (KV head, sequence): its warps split the keys, every warp scores each
 * key against all G query heads of the group (the keys and values are read once), and
 * each warp loads DECODE_KEYS keys and their values before it uses any of them, so that
 * many loads are in flight. Partial softmax states merge through shared memory as in
 * attn_decode (merge_decode_states). G and the per-lane head slice D = ceil(hs/32) are
 * template parameters so that every per-head array stays in registers.
 * Not yet measured (no GPU in the session that wrote it): SOFTCOT_DECODE_ATTN=gqa selects
 * it; gpu_ops checks it against the CPU and gpu_bench times both kernels. */
enum { GQA_WARPS = 8, GQA_MAX = 8, DECODE_KEYS = 4 };

template <int G, int D>
__global__ void __launch_bounds__(GQA_WARPS * 32)
attn_decode_gqa(float *out, float *lse, const float *q, const float *k_cache, const float *v_cache, const int *slot,
                const int *start, const int *row0, int max_seq, int n_heads, int n_kv_heads, int hs, float scale) {
    __shared__ float m_w[GQA_WARPS][G], l_w[GQA_WARPS][G], acc_w[GQA_WARPS][G][D * 32];
    const int g = blockIdx.x, s = blockIdx.y, h0 = g * G;
    const int qd = n_heads * hs, kvd = n_kv_heads * hs;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const DecodeSeq seq = decode_seq(k_cache, v_cache, slot, start, row0, s, g, max_seq, kvd, hs);
    const float *K = seq.K, *V = seq.V;
    const size_t r = seq.row;
    const int n_keys = seq.n_keys;
    float qv[G][D], acc[G][D], m[G], l[G];
#pragma unroll
    for (int h = 0; h < G; h++) {
        m[h] = -INFINITY, l[h] = 0.0f;
#pragma unroll
        for (int k = 0; k < D; k++) {
            const int c = lane + 32 * k;
            qv[h][k] = c < hs ? q[r * qd + (size_t)(h0 + h) * hs + c] * scale : 0.0f;
            acc[h][k] = 0.0f;
        }
    }
    for (int j0 = warp * DECODE_KEYS; j0 < n_keys; j0 += GQA_WARPS * DECODE_KEYS) {
        float kx[DECODE_KEYS][D], vx[DECODE_KEYS][D];
#pragma unroll
        for (int b = 0; b < DECODE_KEYS; b++)
#pragma unroll
            for (int k = 0; k < D; k++) {
                const int c = lane + 32 * k;
                const int ok = j0 + b < n_keys && c < hs;
                kx[b][k] = ok ? K[(size_t)(j0 + b) * kvd + c] : 0.0f;
                vx[b][k] = ok ? V[(size_t)(j0 + b) * kvd + c] : 0.0f;
            }
        float sc[DECODE_KEYS][G];
#pragma unroll
        for (int b = 0; b < DECODE_KEYS; b++)
#pragma unroll
            for (int h = 0; h < G; h++) {
                float dot = 0.0f;
#pragma unroll
                for (int k = 0; k < D; k++) dot += qv[h][k] * kx[b][k];
                sc[b][h] = dot;
            }
#pragma unroll
        for (int b = 0; b < DECODE_KEYS; b++)
#pragma unroll
            for (int h = 0; h < G; h++) sc[b][h] = warp_sum(sc[b][h]);
#pragma unroll
        for (int h = 0; h < G; h++) {
            float m_new = m[h]; /* key j0 exists, so m_new ends finite */
#pragma unroll
            for (int b = 0; b < DECODE_KEYS; b++)
                if (j0 + b < n_keys) m_new = fmaxf(m_new, sc[b][h]);
            const float corr = expf(m[h] - m_new);
            l[h] *= corr;
#pragma unroll
            for (int k = 0; k < D; k++) acc[h][k] *= corr;
#pragma unroll
            for (int b = 0; b < DECODE_KEYS; b++) {
                const float p = j0 + b < n_keys ? expf(sc[b][h] - m_new) : 0.0f;
                l[h] += p;
#pragma unroll
                for (int k = 0; k < D; k++) acc[h][k] += p * vx[b][k];
            }
            m[h] = m_new;
        }
    }
#pragma unroll
    for (int h = 0; h < G; h++) {
        if (lane == 0) m_w[warp][h] = m[h], l_w[warp][h] = l[h];
#pragma unroll
        for (int k = 0; k < D; k++) acc_w[warp][h][lane + 32 * k] = acc[h][k];
    }
    __syncthreads();
    for (int h = warp; h < G; h += GQA_WARPS) /* warp h merges query head h */
        merge_decode_states<GQA_WARPS>(out + r * qd + (size_t)(h0 + h) * hs, lse + r * n_heads + h0 + h, &m_w[0][h],
                                       &l_w[0][h], &acc_w[0][h][0], G, G * D * 32, hs, lane);
}

template <int G>
static void launch_decode_gqa(int D, dim3 grid, float *out, float *lse, const float *q, const float *k_cache,
                              const float *v_cache, const AttnBatch *b, int n_heads, int n_kv_heads, int hs,
                              float scale) {
#define DECODE_GQA_ARGS out, lse, q, k_cache, v_cache, b->d_slot, b->d_start, b->d_row0, b->max_seq, n_heads, n_kv_heads, hs, scale
    switch (D) {
    case 1: attn_decode_gqa<G, 1><<<grid, GQA_WARPS * 32, 0, cuda_stream>>>(DECODE_GQA_ARGS); break;
    case 2: attn_decode_gqa<G, 2><<<grid, GQA_WARPS * 32, 0, cuda_stream>>>(DECODE_GQA_ARGS); break;
    case 3: attn_decode_gqa<G, 3><<<grid, GQA_WARPS * 32, 0, cuda_stream>>>(DECODE_GQA_ARGS); break;
    default: attn_decode_gqa<G, 4><<<grid, GQA_WARPS * 32, 0, cuda_stream>>>(DECODE_GQA_ARGS); break;
    }
#undef DECODE_GQA_ARGS
}

/* Returns 1 if the grouped decode kernel ran (selected, and the group fits GQA_MAX). */
static int decode_gqa(float *out, float *lse, const float *q, const float *k_cache, const float *v_cache,
                      const AttnBatch *b, int n_heads, int n_kv_heads, int hs, float scale) {
    const char *e = getenv("SOFTCOT_DECODE_ATTN");
    const int G = n_heads / n_kv_heads, D = (hs + 31) / 32;
    if (!e || strcmp(e, "gqa") || G > GQA_MAX) return 0;
    const dim3 grid(n_kv_heads, b->n_seq);
    switch (G) {
    case 1: launch_decode_gqa<1>(D, grid, out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs, scale); break;
    case 2: launch_decode_gqa<2>(D, grid, out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs, scale); break;
    case 3: launch_decode_gqa<3>(D, grid, out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs, scale); break;
    case 4: launch_decode_gqa<4>(D, grid, out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs, scale); break;
    case 5: launch_decode_gqa<5>(D, grid, out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs, scale); break;
    case 6: launch_decode_gqa<6>(D, grid, out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs, scale); break;
    case 7: launch_decode_gqa<7>(D, grid, out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs, scale); break;
    default: launch_decode_gqa<8>(D, grid, out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs, scale); break;
    }
    launchCheck();
    return 1;
}

static size_t tile_smem_forward(int hs) { return (size_t)(3 * TILE * (hs + 1) + TILE * (TILE + 1) + 3 * TILE) * sizeof(float); }
static size_t tile_smem_dq(int hs) { return (size_t)(4 * TILE * (hs + 1) + TILE * (TILE + 1) + 2 * TILE) * sizeof(float); }
static size_t tile_smem_dkdv(int hs) { return (size_t)(4 * TILE * (hs + 1) + 2 * TILE * (TILE + 1) + 2 * TILE) * sizeof(float); }

/* Kernels whose shared memory may pass 48 KiB must say so once. */
static void allow_smem(const void *kernel, size_t bytes) {
    if (bytes > 48 * 1024) cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

void cuda_attention_forward(float *out, float *lse, const float *q, const float *k_cache, const float *v_cache,
                            const AttnBatch *b, int n_heads, int n_kv_heads, int hs) {
    if (!b->n_seq) return;
    check_head_size(hs);
    const float scale = 1.0f / sqrtf((float)hs);
    cuda_wrote(out, (size_t)b->total_rows * n_heads * hs * sizeof(float));
    cuda_wrote(lse, (size_t)b->total_rows * n_heads * sizeof(float));
    int all_single = 1;
    for (int s = 0; s < b->n_seq; s++) all_single &= b->host_len[s] == 1;
    if (all_single && decode_gqa(out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs, scale)) return;
    if (all_single) {
        attn_decode<<<dim3(n_heads, b->n_seq), DECODE_WARPS * 32, 0, cuda_stream>>>(
            out, lse, q, k_cache, v_cache, b->d_slot, b->d_start, b->d_row0, b->max_seq, n_heads, n_kv_heads, hs,
            scale);
        launchCheck();
        return;
    }
    if (cuda_attention_wmma_supported(hs)) {
        cuda_attention_forward_wmma(out, lse, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs);
        return;
    }
    int n_items;
    const TileItem *items = upload_tiles(b, SCRATCH_META, &n_items);
    const size_t smem = tile_smem_forward(hs);
    allow_smem((const void *)attn_tile_forward, smem);
    attn_tile_forward<<<dim3(n_items, n_heads), TILE_THREADS, smem, cuda_stream>>>(
        out, lse, q, k_cache, v_cache, items, b->d_slot, b->d_start, b->d_len, b->d_row0, b->max_seq, n_heads,
        n_kv_heads, hs, scale);
    launchCheck();
}

/* ---- backward ---- */

/* D[r, h] = sum_c dO[r, h, c] * O[r, h, c]: one warp per (row, head). */
__global__ void attn_row_dot(float *D, const float *dout, const float *out, int rows, int n_heads, int hs) {
    const int w = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (w >= rows * n_heads) return;
    const float *a = dout + (size_t)w * hs, *o = out + (size_t)w * hs; /* [rows][n_heads][hs] */
    float acc = 0.0f;
    for (int c = lane; c < hs; c += 32) acc += a[c] * o[c];
    acc = warp_sum(acc);
    if (lane == 0) D[w] = acc;
}

__global__ void attn_tile_dq(float *dq, const float *dout, const float *lse, const float *D, const float *q,
                             const float *k_cache, const float *v_cache, const TileItem *items, const int *slot,
                             const int *len, const int *row0, int max_seq, int n_heads, int n_kv_heads, int hs,
                             float scale) {
    extern __shared__ float smem[];
    const int hp = hs + 1;
    float *Qs = smem, *dOs = Qs + TILE * hp, *Ks = dOs + TILE * hp, *Vs = Ks + TILE * hp;
    float *Ss = Vs + TILE * hp, *lse_s = Ss + TILE * (TILE + 1), *D_s = lse_s + TILE;

    const TileItem it = items[blockIdx.x];
    const int h = blockIdx.y, g = h / (n_heads / n_kv_heads);
    const int s = it.seq, q0 = it.row, n_rows = min(TILE, len[s] - q0);
    const int qd = n_heads * hs, kvd = n_kv_heads * hs;
    const size_t cache0 = (size_t)slot[s] * max_seq * kvd + (size_t)g * hs;
    const int tid = threadIdx.x, row = tid / 8, sub = tid % 8;

    for (int k = tid; k < TILE * hs; k += TILE_THREADS) {
        const int r = k / hs, c = k % hs;
        const size_t at = (size_t)(row0[s] + q0 + r) * qd + (size_t)h * hs + c;
        Qs[r * hp + c] = r < n_rows ? q[at] : 0.0f;
        dOs[r * hp + c] = r < n_rows ? dout[at] : 0.0f;
    }
    if (tid < TILE) {
        const size_t r = (size_t)(row0[s] + q0 + tid);
        lse_s[tid] = tid < n_rows ? lse[r * n_heads + h] : 0.0f;
        D_s[tid] = tid < n_rows ? D[r * n_heads + h] : 0.0f;
    }
    float acc[COLS_PER_THREAD];
    for (int k = 0; k < COLS_PER_THREAD; k++) acc[k] = 0.0f;
    const int q_pos = q0 + row, n_keys = q0 + n_rows; /* start == 0 in backward */
    for (int k0 = 0; k0 < n_keys; k0 += TILE) {
        __syncthreads();
        for (int k = tid; k < TILE * hs; k += TILE_THREADS) {
            const int j = k / hs, c = k % hs;
            const bool ok = k0 + j < n_keys;
            const size_t at = cache0 + (size_t)(k0 + j) * kvd + c;
            Ks[j * hp + c] = ok ? k_cache[at] : 0.0f;
            Vs[j * hp + c] = ok ? v_cache[at] : 0.0f;
        }
        __syncthreads();
        for (int m = 0; m < TILE / 8; m++) {
            const int j = sub + 8 * m;
            float qk = 0.0f, dov = 0.0f;
            for (int c = 0; c < hs; c++) {
                qk += Qs[row * hp + c] * Ks[j * hp + c];
                dov += dOs[row * hp + c] * Vs[j * hp + c];
            }
            const bool visible = row < n_rows && k0 + j <= q_pos;
            const float p = visible ? expf(qk * scale - lse_s[row]) : 0.0f;
            Ss[row * (TILE + 1) + j] = p * (dov - D_s[row]); /* dS */
        }
        __syncthreads();
        for (int c = sub, k = 0; c < hs; c += 8, k++) {
            float a = acc[k];
            for (int j = 0; j < TILE; j++) a += Ss[row * (TILE + 1) + j] * Ks[j * hp + c];
            acc[k] = a;
        }
    }
    if (row < n_rows) {
        const size_t r = (size_t)(row0[s] + q0 + row);
        for (int c = sub, k = 0; c < hs; c += 8, k++) dq[r * qd + (size_t)h * hs + c] = acc[k] * scale;
    }
}

/* One block per (key tile, KV head): dK and dV of those keys, summed over the group's
 * query heads and every query tile that sees them. */
__global__ void attn_tile_dkdv(float *dk_cache, float *dv_cache, const float *dout, const float *lse, const float *D,
                               const float *q, const float *k_cache, const float *v_cache, const TileItem *items,
                               const int *slot, const int *len, const int *row0, int max_seq, int n_heads,
                               int n_kv_heads, int hs, float scale) {
    extern __shared__ float smem[];
    const int hp = hs + 1;
    float *Qs = smem, *dOs = Qs + TILE * hp, *Ks = dOs + TILE * hp, *Vs = Ks + TILE * hp;
    float *Pt = Vs + TILE * hp, *dSt = Pt + TILE * (TILE + 1);
    float *lse_s = dSt + TILE * (TILE + 1), *D_s = lse_s + TILE;

    const TileItem it = items[blockIdx.x];
    const int g = blockIdx.y, group = n_heads / n_kv_heads;
    const int s = it.seq, k0 = it.row, n_k = min(TILE, len[s] - k0), L = len[s];
    const int qd = n_heads * hs, kvd = n_kv_heads * hs;
    const size_t cache0 = (size_t)slot[s] * max_seq * kvd + (size_t)g * hs;
    const int tid = threadIdx.x, krow = tid / 8, sub = tid % 8;

    for (int k = tid; k < TILE * hs; k += TILE_THREADS) {
        const int j = k / hs, c = k % hs;
        const size_t at = cache0 + (size_t)(k0 + j) * kvd + c;
        Ks[j * hp + c] = j < n_k ? k_cache[at] : 0.0f;
        Vs[j * hp + c] = j < n_k ? v_cache[at] : 0.0f;
    }
    float dk[COLS_PER_THREAD], dv[COLS_PER_THREAD];
    for (int k = 0; k < COLS_PER_THREAD; k++) dk[k] = dv[k] = 0.0f;
    const int k_pos = k0 + krow;
    for (int hh = 0; hh < group; hh++) {
        const int h = g * group + hh;
        for (int q0 = (k0 / TILE) * TILE; q0 < L; q0 += TILE) {
            const int n_q = min(TILE, L - q0);
            __syncthreads();
            for (int k = tid; k < TILE * hs; k += TILE_THREADS) {
                const int r = k / hs, c = k % hs;
                const size_t at = (size_t)(row0[s] + q0 + r) * qd + (size_t)h * hs + c;
                Qs[r * hp + c] = r < n_q ? q[at] : 0.0f;
                dOs[r * hp + c] = r < n_q ? dout[at] : 0.0f;
            }
            if (tid < TILE) {
                const size_t r = (size_t)(row0[s] + q0 + tid);
                lse_s[tid] = tid < n_q ? lse[r * n_heads + h] : 0.0f;
                D_s[tid] = tid < n_q ? D[r * n_heads + h] : 0.0f;
            }
            __syncthreads();
            for (int m = 0; m < TILE / 8; m++) {
                const int i = sub + 8 * m; /* query row within the tile */
                float qk = 0.0f, dov = 0.0f;
                for (int c = 0; c < hs; c++) {
                    qk += Qs[i * hp + c] * Ks[krow * hp + c];
                    dov += dOs[i * hp + c] * Vs[krow * hp + c];
                }
                const bool visible = i < n_q && krow < n_k && k_pos <= q0 + i;
                const float p = visible ? expf(qk * scale - lse_s[i]) : 0.0f;
                Pt[krow * (TILE + 1) + i] = p;
                dSt[krow * (TILE + 1) + i] = p * (dov - D_s[i]);
            }
            __syncthreads();
            for (int c = sub, k = 0; c < hs; c += 8, k++) {
                float a = dv[k], b = dk[k];
                for (int i = 0; i < TILE; i++) {
                    a += Pt[krow * (TILE + 1) + i] * dOs[i * hp + c];
                    b += dSt[krow * (TILE + 1) + i] * Qs[i * hp + c];
                }
                dv[k] = a;
                dk[k] = b;
            }
        }
    }
    if (krow < n_k) {
        const size_t at = cache0 + (size_t)k_pos * kvd;
        for (int c = sub, k = 0; c < hs; c += 8, k++) {
            dk_cache[at + c] += dk[k] * scale;
            dv_cache[at + c] += dv[k];
        }
    }
}

void cuda_attention_backward(float *dq, float *dk_cache, float *dv_cache, const float *dout, const float *out,
                             const float *lse, const float *q, const float *k_cache, const float *v_cache,
                             const AttnBatch *b, int n_heads, int n_kv_heads, int hs) {
    if (!b->n_seq) return;
    check_head_size(hs);
    for (int s = 0; s < b->n_seq; s++)
        if (b->host_start[s] != 0) fatal_at(__FILE__, __LINE__, "attention backward needs start == 0");
    const float scale = 1.0f / sqrtf((float)hs);
    const int rows = b->total_rows;
    cuda_wrote(dq, (size_t)rows * n_heads * hs * sizeof(float));
    for (int s = 0; s < b->n_seq; s++) {
        const size_t off = (size_t)b->host_slot[s] * b->max_seq * n_kv_heads * hs;
        cuda_wrote(dk_cache + off, (size_t)b->host_len[s] * n_kv_heads * hs * sizeof(float));
        cuda_wrote(dv_cache + off, (size_t)b->host_len[s] * n_kv_heads * hs * sizeof(float));
    }
    float *D = (float *)cuda_scratch(SCRATCH_A, (size_t)rows * n_heads * sizeof(float));
    attn_row_dot<<<ceil_div((size_t)rows * n_heads * 32, 256), 256, 0, cuda_stream>>>(D, dout, out, rows, n_heads, hs);
    launchCheck();
    if (cuda_attention_wmma_supported(hs)) {
        cuda_attention_backward_wmma(dq, dk_cache, dv_cache, dout, lse, D, q, k_cache, v_cache, b, n_heads, n_kv_heads, hs);
        return;
    }
    int n_items;
    const TileItem *items = upload_tiles(b, SCRATCH_META, &n_items);
    size_t smem = tile_smem_dq(hs);
    allow_smem((const void *)attn_tile_dq, smem);
    attn_tile_dq<<<dim3(n_items, n_heads), TILE_THREADS, smem, cuda_stream>>>(
        dq, dout, lse, D, q, k_cache, v_cache, items, b->d_slot, b->d_len, b->d_row0, b->max_seq, n_heads,
        n_kv_heads, hs, scale);
    launchCheck();
    smem = tile_smem_dkdv(hs);
    allow_smem((const void *)attn_tile_dkdv, smem);
    attn_tile_dkdv<<<dim3(n_items, n_kv_heads), TILE_THREADS, smem, cuda_stream>>>(
        dk_cache, dv_cache, dout, lse, D, q, k_cache, v_cache, items, b->d_slot, b->d_len, b->d_row0, b->max_seq,
        n_heads, n_kv_heads, hs, scale);
    launchCheck();
}
