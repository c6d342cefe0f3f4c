/* CPU backend of ops.h (table ops_backend_cpu at the end): OpenBLAS for every matrix product (attention included, per
 * sequence and head), plain loops that gcc vectorises for the rest. "Device" memory is
 * host memory here. */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "ops/ops_backend.h"
#include "ops/vec_math.h"

/* Sum with eight independent partial sums: gcc turns it into one vector accumulator,
 * where a plain `s += x[i]` loop stays scalar without -ffast-math. */
static float sum_f32(const float *x, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[i + k];
    float s = 0;
    for (; i < n; i++) s += x[i];
    for (int k = 0; k < 8; k++) s += acc[k];
    return s;
}


/* Each block carries a 64-byte header holding its size, so the peak of live bytes can be
 * reported like the CUDA backend's. 64 bytes keep the payload AVX-512 and cache-line
 * aligned. */
enum { ALLOC_HEADER = 64 };
static size_t bytes_live, bytes_peak_seen;

static void *cpu_dev_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    unsigned char *base = aligned_alloc(64, ALLOC_HEADER + (rounded ? rounded : 64));
    if (!base) FATAL("out of memory allocating %zu bytes", bytes);
    memcpy(base, &rounded, sizeof rounded);
    memset(base + ALLOC_HEADER, 0, rounded);
    bytes_live += rounded;
    if (bytes_live > bytes_peak_seen) bytes_peak_seen = bytes_live;
    return base + ALLOC_HEADER;
}
static void cpu_dev_free(void *p) {
    if (!p) return;
    unsigned char *base = (unsigned char *)p - ALLOC_HEADER;
    size_t rounded;
    memcpy(&rounded, base, sizeof rounded);
    bytes_live -= rounded;
    free(base);
}
static size_t cpu_bytes_peak(void) { return bytes_peak_seen; }
static void cpu_dev_upload(void *dst, const void *src, size_t n) { if (n) memcpy(dst, src, n); }
static void cpu_dev_download(void *dst, const void *src, size_t n) { if (n) memcpy(dst, src, n); }
static void cpu_dev_copy(void *dst, const void *src, size_t n) { if (n) memmove(dst, src, n); }
static void cpu_dev_zero(void *p, size_t n) { if (n) memset(p, 0, n); }
static void cpu_dev_sync(void) {}

static void cpu_matmul(float *C, const float *A, const float *B, int M, int N, int K, int trans_a,
               int trans_b, float alpha, float beta) {
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, trans_a ? M : K, B,
                trans_b ? K : N, beta, C, N);
}

static void cpu_linear_residual_forward(float *y, const float *x, const float *W, const float *residual, int T,
                                        int in, int out) {
    if (y != residual) memcpy(y, residual, (size_t)T * out * sizeof(float));
    cpu_matmul(y, x, W, T, out, in, 0, 1, 1.0f, 1.0f);
}

static void cpu_add_bias(float *y, const float *b, int T, int n) {
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += b[i];
}

static void cpu_bias_backward(float *db, const float *dy, int T, int n) {
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) db[i] += dy[(size_t)t * n + i];
}

static void cpu_add(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

static void cpu_scale(float *y, float s, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] *= s;
}

static double cpu_sumsq(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

static void cpu_embed_forward(float *out, const int *tokens, const float *vectors, const float *E, int T,
                      int d) {
    for (int t = 0; t < T; t++) {
        const float *src = tokens[t] >= 0 ? E + (size_t)tokens[t] * d : vectors + (size_t)t * d;
        memcpy(out + (size_t)t * d, src, (size_t)d * sizeof(float));
    }
}

static void cpu_embed_backward(float *dE, const float *dout, const int *tokens, int T, int d) {
    for (int t = 0; t < T; t++) {
        if (tokens[t] < 0) continue;
        float *row = dE + (size_t)tokens[t] * d;
        const float *g = dout + (size_t)t * d;
        for (int i = 0; i < d; i++) row[i] += g[i];
    }
}

static void cpu_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int T, int d,
                        float eps) {
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * d;
        float *o = out + (size_t)t * d;
        float ss = 0;
        for (int i = 0; i < d; i++) ss += xr[i] * xr[i];
        float r = 1.0f / sqrtf(ss / d + eps);
        rstd[t] = r;
        for (int i = 0; i < d; i++) o[i] = xr[i] * r * w[i];
    }
}

static void cpu_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                         const float *rstd, int T, int d) {
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * d, *g = dout + (size_t)t * d;
        float *dxr = dx + (size_t)t * d;
        float r = rstd[t];
        /* out_i = w_i x_i r ; dr/dx_j = -r^3 x_j / d */
        float dot = 0;
        for (int i = 0; i < d; i++) {
            dot += g[i] * w[i] * xr[i];
            dw[i] += g[i] * xr[i] * r;
        }
        float c = dot * r * r * r / d;
        for (int i = 0; i < d; i++) dxr[i] += g[i] * w[i] * r - c * xr[i];
    }
}

static void cpu_swiglu_forward(float *h, const float *gate_up, int T, int ff) {
    for (int t = 0; t < T; t++) {
        const float *gate = gate_up + (size_t)t * 2 * ff, *up = gate + ff;
        float *ht = h + (size_t)t * ff;
        for (int i = 0; i < ff; i++) {
            float g = gate[i];
            ht[i] = g / (1.0f + vexpf(-g)) * up[i];
        }
    }
}

static void cpu_swiglu_backward(float *dgate_up, const float *dh, const float *gate_up, int T, int ff) {
    for (int t = 0; t < T; t++) {
        const float *gate = gate_up + (size_t)t * 2 * ff, *up = gate + ff, *dht = dh + (size_t)t * ff;
        float *dgate = dgate_up + (size_t)t * 2 * ff, *dup = dgate + ff;
        for (int i = 0; i < ff; i++) {
            float g = gate[i], s = 1.0f / (1.0f + vexpf(-g));
            float silu = g * s;
            dup[i] = dht[i] * silu;
            dgate[i] = dht[i] * up[i] * s * (1.0f + g * (1.0f - s));
        }
    }
}

/* dst = src with every head's pairs (i, i + hs/2) rotated by dir * angle; dst may be src. */
static void rope_heads(float *dst, const float *src, const float *cos_p, const float *sin_p, int n_heads, int hs,
                       float dir) {
    const int half = hs / 2;
    for (int h = 0; h < n_heads; h++) {
        const float *x = src + (size_t)h * hs;
        float *y = dst + (size_t)h * hs;
        for (int i = 0; i < half; i++) {
            float a = x[i], b = x[i + half], sn = dir * sin_p[i];
            y[i] = a * cos_p[i] - b * sn;
            y[i + half] = b * cos_p[i] + a * sn;
        }
    }
}

static void cpu_qkv_forward(float *q, float *k_cache, float *v_cache, const float *qkv, const float *cos_tab,
                            const float *sin_tab, const AttnBatch *b, int n_heads, int n_kv_heads, int hs) {
    const int qd = n_heads * hs, kvd = n_kv_heads * hs, width = qd + 2 * kvd, half = hs / 2;
    for (int s = 0; s < b->n_seq; s++)
        for (int j = 0; j < b->host_len[s]; j++) {
            const size_t r = (size_t)b->host_row0[s] + j, p = (size_t)b->host_start[s] + j;
            const size_t cached = ((size_t)b->host_slot[s] * b->max_seq + p) * kvd;
            const float *row = qkv + r * width, *c = cos_tab + p * half, *sn = sin_tab + p * half;
            rope_heads(q + r * qd, row, c, sn, n_heads, hs, 1.0f);
            rope_heads(k_cache + cached, row + qd, c, sn, n_kv_heads, hs, 1.0f);
            memcpy(v_cache + cached, row + qd + kvd, (size_t)kvd * sizeof(float));
        }
}

static void cpu_qkv_backward(float *dqkv, const float *dq, const float *dk_cache, const float *dv_cache,
                             const float *cos_tab, const float *sin_tab, const AttnBatch *b, int n_heads,
                             int n_kv_heads, int hs) {
    const int qd = n_heads * hs, kvd = n_kv_heads * hs, width = qd + 2 * kvd, half = hs / 2;
    for (int s = 0; s < b->n_seq; s++)
        for (int j = 0; j < b->host_len[s]; j++) {
            const size_t r = (size_t)b->host_row0[s] + j, p = (size_t)b->host_start[s] + j;
            const size_t cached = ((size_t)b->host_slot[s] * b->max_seq + p) * kvd;
            float *row = dqkv + r * width;
            const float *c = cos_tab + p * half, *sn = sin_tab + p * half;
            rope_heads(row, dq + r * qd, c, sn, n_heads, hs, -1.0f);
            rope_heads(row + qd, dk_cache + cached, c, sn, n_kv_heads, hs, -1.0f);
            memcpy(row + qd + kvd, dv_cache + cached, (size_t)kvd * sizeof(float));
        }
}

/* Rows are processed in blocks so each block only multiplies against the keys it can see:
 * this skips most of the masked upper triangle in training-length sequences. */
enum { ATTN_ROW_BLOCK = 128 };

static void cpu_attention_forward(float *out, float *lse, const float *q, const float *k_cache,
                          const float *v_cache, const AttnBatch *b, int n_heads, int n_kv_heads,
                          int hs) {
    const int q_dim = n_heads * hs, kv_dim = n_kv_heads * hs, group = n_heads / n_kv_heads;
    const float scale = 1.0f / sqrtf((float)hs);
    float *S = xmalloc((size_t)ATTN_ROW_BLOCK * b->max_seq * sizeof(float));
    for (int s = 0; s < b->n_seq; s++) {
        const int start = b->host_start[s], len = b->host_len[s], row0 = b->host_row0[s];
        const size_t slot_off = (size_t)b->host_slot[s] * b->max_seq * kv_dim;
        for (int h = 0; h < n_heads; h++) {
            const float *K = k_cache + slot_off + (size_t)(h / group) * hs;
            const float *V = v_cache + slot_off + (size_t)(h / group) * hs;
            if (len == 1) {
                /* One query (a decode step): plain loops beat two tiny sgemm calls, whose
                 * packing overhead dominates at M = 1. */
                const int nk = start + 1;
                const float *Q = q + (size_t)row0 * q_dim + (size_t)h * hs;
                float *O = out + (size_t)row0 * q_dim + (size_t)h * hs;
                float mx = -FLT_MAX;
                for (int j = 0; j < nk; j++) {
                    const float *kj = K + (size_t)j * kv_dim;
                    float dot = 0;
                    for (int c = 0; c < hs; c++) dot += Q[c] * kj[c];
                    S[j] = dot * scale;
                    mx = S[j] > mx ? S[j] : mx;
                }
                for (int j = 0; j < nk; j++) S[j] = vexpf(S[j] - mx);
                const float sum = sum_f32(S, nk), inv = 1.0f / sum;
                for (int c = 0; c < hs; c++) O[c] = 0.0f;
                for (int j = 0; j < nk; j++) {
                    const float *vj = V + (size_t)j * kv_dim;
                    const float w = S[j] * inv;
                    for (int c = 0; c < hs; c++) O[c] += w * vj[c];
                }
                lse[(size_t)row0 * n_heads + h] = mx + logf(sum);
                continue;
            }
            for (int i0 = 0; i0 < len; i0 += ATTN_ROW_BLOCK) {
                const int mb = len - i0 < ATTN_ROW_BLOCK ? len - i0 : ATTN_ROW_BLOCK;
                const int nk = start + i0 + mb; /* keys visible to the last row of the block */
                const float *Q = q + (size_t)(row0 + i0) * q_dim + (size_t)h * hs;
                float *O = out + (size_t)(row0 + i0) * q_dim + (size_t)h * hs;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mb, nk, hs, scale, Q, q_dim,
                            K, kv_dim, 0.0f, S, nk);
                for (int i = 0; i < mb; i++) {
                    float *row = S + (size_t)i * nk;
                    const int visible = start + i0 + i + 1;
                    float mx = -FLT_MAX;
                    for (int j = 0; j < visible; j++) mx = row[j] > mx ? row[j] : mx;
                    for (int j = 0; j < visible; j++) row[j] = vexpf(row[j] - mx);
                    float sum = sum_f32(row, visible);
                    float inv = 1.0f / sum;
                    for (int j = 0; j < visible; j++) row[j] *= inv;
                    for (int j = visible; j < nk; j++) row[j] = 0.0f;
                    lse[(size_t)(row0 + i0 + i) * n_heads + h] = mx + logf(sum);
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mb, hs, nk, 1.0f, S, nk, V,
                            kv_dim, 0.0f, O, q_dim);
            }
        }
    }
    free(S);
}

static void cpu_attention_backward(float *dq, float *dk_cache, float *dv_cache, const float *dout,
                           const float *out, const float *lse, const float *q,
                           const float *k_cache, const float *v_cache, const AttnBatch *b,
                           int n_heads, int n_kv_heads, int hs) {
    const int q_dim = n_heads * hs, kv_dim = n_kv_heads * hs, group = n_heads / n_kv_heads;
    const float scale = 1.0f / sqrtf((float)hs);
    const size_t block = (size_t)ATTN_ROW_BLOCK * b->max_seq;
    float *P = xmalloc(block * sizeof(float));
    float *dP = xmalloc(block * sizeof(float));
    for (int s = 0; s < b->n_seq; s++) {
        const int start = b->host_start[s], len = b->host_len[s], row0 = b->host_row0[s];
        const size_t slot_off = (size_t)b->host_slot[s] * b->max_seq * kv_dim;
        for (int h = 0; h < n_heads; h++) {
            const size_t kv_off = slot_off + (size_t)(h / group) * hs;
            const float *K = k_cache + kv_off, *V = v_cache + kv_off;
            float *dK = dk_cache + kv_off, *dV = dv_cache + kv_off;
            for (int i0 = 0; i0 < len; i0 += ATTN_ROW_BLOCK) {
                const int mb = len - i0 < ATTN_ROW_BLOCK ? len - i0 : ATTN_ROW_BLOCK;
                const int nk = start + i0 + mb;
                const size_t r = (size_t)(row0 + i0) * q_dim + (size_t)h * hs;
                const float *Q = q + r, *O = out + r, *dO = dout + r;
                float *dQ = dq + r;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mb, nk, hs, scale, Q, q_dim,
                            K, kv_dim, 0.0f, P, nk);
                for (int i = 0; i < mb; i++) {
                    float *row = P + (size_t)i * nk;
                    const int visible = start + i0 + i + 1;
                    const float l = lse[(size_t)(row0 + i0 + i) * n_heads + h];
                    for (int j = 0; j < visible; j++) row[j] = vexpf(row[j] - l);
                    for (int j = visible; j < nk; j++) row[j] = 0.0f;
                }
                /* dV += P^T dO ; dP = dO V^T */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hs, mb, 1.0f, P, nk, dO,
                            q_dim, 1.0f, dV, kv_dim);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mb, nk, hs, 1.0f, dO, q_dim,
                            V, kv_dim, 0.0f, dP, nk);
                for (int i = 0; i < mb; i++) {
                    const float *o = O + (size_t)i * q_dim, *go = dO + (size_t)i * q_dim;
                    float D = 0;
                    for (int c = 0; c < hs; c++) D += o[c] * go[c];
                    float *p = P + (size_t)i * nk, *dp = dP + (size_t)i * nk;
                    for (int j = 0; j < nk; j++) dp[j] = p[j] * (dp[j] - D);
                }
                /* dQ = scale dS K ; dK += scale dS^T Q */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mb, hs, nk, scale, dP, nk,
                            K, kv_dim, 0.0f, dQ, q_dim);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hs, mb, scale, dP, nk, Q,
                            q_dim, 1.0f, dK, kv_dim);
            }
        }
    }
    free(P);
    free(dP);
}

static float row_max(const float *z, int V) {
    float mx = -FLT_MAX;
    for (int i = 0; i < V; i++) mx = z[i] > mx ? z[i] : mx;
    return mx;
}

/* log sum_i exp(z_i * inv_temp), computed stably; exponentials go through a small
 * buffer so both the exp and the sum vectorise. */
static float row_logsumexp(const float *z, int V, float inv_temp, float mx) {
    enum { CHUNK = 512 };
    float buf[CHUNK], sum = 0;
    for (int i0 = 0; i0 < V; i0 += CHUNK) {
        int n = V - i0 < CHUNK ? V - i0 : CHUNK;
        for (int i = 0; i < n; i++) buf[i] = vexpf((z[i0 + i] - mx) * inv_temp);
        sum += sum_f32(buf, n);
    }
    return mx * inv_temp + logf(sum);
}

static void cpu_softmax_forward(float *p, const float *z, int rows, int V, float inv_temp) {
    for (int r = 0; r < rows; r++) {
        const float *zr = z + (size_t)r * V;
        float *pr = p + (size_t)r * V;
        float mx = row_max(zr, V);
        for (int i = 0; i < V; i++) pr[i] = vexpf((zr[i] - mx) * inv_temp);
        float inv = 1.0f / sum_f32(pr, V);
        for (int i = 0; i < V; i++) pr[i] *= inv;
    }
}

static void cpu_softmax_backward(float *dz, const float *dp, const float *p, int rows, int V,
                         float inv_temp) {
    for (int r = 0; r < rows; r++) {
        const float *pr = p + (size_t)r * V, *g = dp + (size_t)r * V;
        float *out = dz + (size_t)r * V;
        float dot = 0;
        for (int i = 0; i < V; i++) dot += pr[i] * g[i];
        for (int i = 0; i < V; i++) out[i] += inv_temp * pr[i] * (g[i] - dot);
    }
}

static void cpu_logprob_forward(float *logp, const float *z, const int *target, int rows, int V,
                        float inv_temp) {
    for (int r = 0; r < rows; r++) {
        if (target[r] < 0) {
            logp[r] = 0.0f;
            continue;
        }
        const float *zr = z + (size_t)r * V;
        float lse = row_logsumexp(zr, V, inv_temp, row_max(zr, V));
        logp[r] = zr[target[r]] * inv_temp - lse;
    }
}

static void cpu_logprob_backward(float *dz, const float *dlogp, const float *z, const int *target,
                         int rows, int V, float inv_temp) {
    for (int r = 0; r < rows; r++) {
        if (target[r] < 0) continue;
        const float *zr = z + (size_t)r * V;
        float *out = dz + (size_t)r * V;
        float mx = row_max(zr, V), lse = row_logsumexp(zr, V, inv_temp, mx);
        float g = dlogp[r] * inv_temp;
        for (int i = 0; i < V; i++) out[i] -= g * vexpf(zr[i] * inv_temp - lse);
        out[target[r]] += g;
    }
}

static void cpu_kl_categorical(float *kl, float *dz, const float *z, const float *z_ref, const float *weight,
                       int rows, int V, float inv_temp) {
    for (int r = 0; r < rows; r++) {
        if (weight[r] == 0.0f) {
            kl[r] = 0.0f;
            continue;
        }
        const float *zr = z + (size_t)r * V, *qr = z_ref + (size_t)r * V;
        const float lse_p = row_logsumexp(zr, V, inv_temp, row_max(zr, V));
        const float lse_q = row_logsumexp(qr, V, inv_temp, row_max(qr, V));
        double k = 0;
        for (int i = 0; i < V; i++) {
            float lp = zr[i] * inv_temp - lse_p, lq = qr[i] * inv_temp - lse_q;
            k += (double)vexpf(lp) * (lp - lq);
        }
        kl[r] = (float)k;
        if (!dz) continue;
        float *out = dz + (size_t)r * V;
        const float g = weight[r] * inv_temp;
        for (int i = 0; i < V; i++) {
            float lp = zr[i] * inv_temp - lse_p, lq = qr[i] * inv_temp - lse_q;
            out[i] += g * vexpf(lp) * (lp - lq - (float)k);
        }
    }
}

static void cpu_entropy(float *ent, const float *z, int rows, int V, float inv_temp) {
    for (int r = 0; r < rows; r++) {
        const float *zr = z + (size_t)r * V;
        float mx = row_max(zr, V), lse = row_logsumexp(zr, V, inv_temp, mx);
        double h = 0;
        for (int i = 0; i < V; i++) {
            float lp = zr[i] * inv_temp - lse;
            h -= (double)expf(lp) * lp;
        }
        ent[r] = (float)h;
    }
}

static void cpu_sample(int *ids, const float *z, const float *u, int rows, int V, float inv_temp) {
    for (int r = 0; r < rows; r++) {
        const float *zr = z + (size_t)r * V;
        float mx = row_max(zr, V);
        int best = 0;
        while (zr[best] != mx) best++;
        if (inv_temp == 0.0f) {
            ids[r] = best;
            continue;
        }
        double sum = 0;
        for (int i = 0; i < V; i++) sum += exp((double)(zr[i] - mx) * inv_temp);
        double target = (double)u[r] * sum, acc = 0;
        int pick = best; /* fallback if rounding leaves target past the end */
        for (int i = 0; i < V; i++) {
            acc += exp((double)(zr[i] - mx) * inv_temp);
            if (acc > target) {
                pick = i;
                break;
            }
        }
        ids[r] = pick;
    }
}

static void cpu_add_noise(float *x, const RngKey *host_keys, int rows, int d, float sigma) {
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < d; i++)
            x[(size_t)r * d + i] += sigma * rng_normal(host_keys[r], (uint32_t)i);
}

static void cpu_gauss_logprob_forward(float *out, const float *h, const float *mu, int rows, int d,
                              float inv_two_sigma2) {
    for (int r = 0; r < rows; r++) {
        float ss = 0;
        for (int i = 0; i < d; i++) {
            float e = h[(size_t)r * d + i] - mu[(size_t)r * d + i];
            ss += e * e;
        }
        out[r] = -ss * inv_two_sigma2;
    }
}

static void cpu_gauss_logprob_backward(float *dmu, const float *dout, const float *h, const float *mu,
                               int rows, int d, float inv_two_sigma2) {
    for (int r = 0; r < rows; r++) {
        float g = dout[r] * 2.0f * inv_two_sigma2;
        for (int i = 0; i < d; i++) {
            size_t k = (size_t)r * d + i;
            dmu[k] += g * (h[k] - mu[k]);
        }
    }
}

static void cpu_adamw(float *p, const float *g, float *m, float *v, size_t n, AdamWParams hp) {
    const float bc1 = 1.0f - powf(hp.beta1, (float)hp.step);
    const float bc2 = 1.0f - powf(hp.beta2, (float)hp.step);
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] * (1.0f - hp.lr * hp.weight_decay);
        float mi = hp.beta1 * m[i] + (1.0f - hp.beta1) * g[i];
        float vi = hp.beta2 * v[i] + (1.0f - hp.beta2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - hp.lr * (mi / bc1) / (sqrtf(vi / bc2) + hp.eps);
    }
}

static int cpu_init(int local_rank, OpsPrecision precision, Err *err) {
    (void)local_rank;
    if (precision != OPS_FP32) return err_set(err, "the CPU backend computes in fp32 only");
    return 0;
}

static int cpu_replay_begin(uint64_t key) {
    (void)key;
    return 0; /* nothing to save: issuing the ops is all there is */
}
static void cpu_replay_end(uint64_t key) { (void)key; }

const OpsBackend ops_backend_cpu = {
    .name = "cpu",
    .device_is_host = 1,
    .init = cpu_init,
    .bytes_peak = cpu_bytes_peak,
    .comm_id_bytes = 0, /* ranks' buffers are host memory: MPI reduces them directly */
    .replay_begin = cpu_replay_begin,
    .replay_end = cpu_replay_end,
    .alloc_mem = cpu_dev_alloc,
    .free_mem = cpu_dev_free,
    .upload = cpu_dev_upload,
    .download = cpu_dev_download,
    .copy = cpu_dev_copy,
    .zero = cpu_dev_zero,
    .sync = cpu_dev_sync,
    .matmul = cpu_matmul,
    .linear_residual_forward = cpu_linear_residual_forward,
    .add_bias = cpu_add_bias,
    .bias_backward = cpu_bias_backward,
    .add = cpu_add,
    .scale = cpu_scale,
    .sumsq = cpu_sumsq,
    .embed_forward = cpu_embed_forward,
    .embed_backward = cpu_embed_backward,
    .rmsnorm_forward = cpu_rmsnorm_forward,
    .rmsnorm_backward = cpu_rmsnorm_backward,
    .swiglu_forward = cpu_swiglu_forward,
    .swiglu_backward = cpu_swiglu_backward,
    .qkv_forward = cpu_qkv_forward,
    .qkv_backward = cpu_qkv_backward,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .softmax_forward = cpu_softmax_forward,
    .softmax_backward = cpu_softmax_backward,
    .logprob_forward = cpu_logprob_forward,
    .logprob_backward = cpu_logprob_backward,
    .kl_categorical = cpu_kl_categorical,
    .entropy = cpu_entropy,
    .sample = cpu_sample,
    .add_noise = cpu_add_noise,
    .gauss_logprob_forward = cpu_gauss_logprob_forward,
    .gauss_logprob_backward = cpu_gauss_logprob_backward,
    .adamw = cpu_adamw,
};
