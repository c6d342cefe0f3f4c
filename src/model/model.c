/* Forward and backward of the decoder, written straight-line in the style of llama2.c's
 * run.c, with every numeric kernel behind ops.h. */
#include "model/model.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

void model_init(Model *m, const ModelConfig *cfg, const float *host_params) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    param_layout_build(&m->layout, &m->off, cfg);
    m->params = dev_alloc(m->layout.n_floats * sizeof(float));
    dev_upload(m->params, host_params, m->layout.n_floats * sizeof(float));
}

void model_free(Model *m) {
    dev_free(m->params);
    param_layout_free(&m->layout, &m->off);
    memset(m, 0, sizeof *m);
}

void model_download_params(const Model *m, float *host_params) {
    dev_download(host_params, m->params, m->layout.n_floats * sizeof(float));
}

/* Inverse frequencies as Hugging Face computes them, including the llama3 rule that
 * stretches long wavelengths (Llama 3.1/3.2 rope_scaling). */
static void rope_inv_freq(const ModelConfig *c, double *inv_freq) {
    const int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow((double)c->rope_theta, (2.0 * i) / c->head_dim);
        if (c->rope_llama3) {
            const double old_ctx = c->rope_original_max_pos;
            const double low_wavelen = old_ctx / c->rope_low_freq_factor;
            const double high_wavelen = old_ctx / c->rope_high_freq_factor;
            const double wavelen = 2.0 * M_PI / f;
            if (wavelen > low_wavelen) {
                f = f / c->rope_factor;
            } else if (wavelen >= high_wavelen) {
                double smooth = (old_ctx / wavelen - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1.0 - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        inv_freq[i] = f;
    }
}

/* Size, in floats, of every buffer of a RunState; shared by init and runstate_bytes. */
typedef struct {
    size_t rope, cache, x, per_layer, acts, qkv, xnf, last, logits, dcache, grads;
} RunSizes;

static RunSizes run_sizes(const ModelConfig *c, RunShape s) {
    RunSizes z;
    const size_t R = (size_t)s.max_rows, d = c->dim, qd = cfg_q_dim(c), kvd = cfg_kv_dim(c);
    const size_t ff = c->hidden_dim, L = c->n_layers, nh = c->n_heads;
    const size_t layers_kept = s.train ? L : 1;
    z.rope = (size_t)s.max_seq * (c->head_dim / 2);
    z.cache = L * s.n_slots * s.max_seq * kvd;
    z.x = (s.train ? L + 1 : 2) * R * d;
    /* xn1, rstd1, q, att, lse, x_mid, xn2, rstd2, gate_up, hid */
    z.per_layer = R * (d + 1 + qd + qd + nh + d + d + 1 + 2 * ff + ff);
    z.acts = layers_kept * z.per_layer;
    z.qkv = R * (qd + 2 * kvd);
    z.xnf = R * d + R;
    z.last = (size_t)s.n_slots * d;
    z.logits = (s.last_rows_only ? (size_t)s.n_slots : R) * c->vocab_size;
    z.dcache = s.train ? (size_t)s.n_slots * s.max_seq * kvd : 0;
    /* dx, dxn, dq, datt, dqkv, dhid, dgate_up */
    z.grads = s.train ? R * (d + d + qd + qd + (qd + 2 * kvd) + ff + 2 * ff) : 0;
    return z;
}

size_t runstate_bytes(const ModelConfig *c, RunShape s) {
    RunSizes z = run_sizes(c, s);
    size_t floats = 2 * z.rope + 2 * z.cache + z.x + z.acts + z.qkv + z.xnf + z.last + z.logits +
                    2 * z.dcache + z.grads;
    return floats * sizeof(float) + (size_t)s.max_rows * sizeof(int);
}

void runstate_init(RunState *rs, const ModelConfig *c, RunShape s) {
    memset(rs, 0, sizeof *rs);
    CHECK(s.max_rows > 0 && s.n_slots > 0 && s.max_seq > 0);
    rs->shape = s;
    RunSizes z = run_sizes(c, s);
    const size_t R = (size_t)s.max_rows, d = c->dim, qd = cfg_q_dim(c), nh = c->n_heads;
    const size_t ff = c->hidden_dim, keep = s.train ? (size_t)c->n_layers : 1;
#define F(n) ((float *)dev_alloc((n) * sizeof(float)))
    rs->rope_cos = F(z.rope);
    rs->rope_sin = F(z.rope);
    rs->k_cache = F(z.cache);
    rs->v_cache = F(z.cache);
    rs->x = F(z.x);
    rs->xn1 = F(keep * R * d);
    rs->rstd1 = F(keep * R);
    rs->q = F(keep * R * qd);
    rs->att = F(keep * R * qd);
    rs->lse = F(keep * R * nh);
    rs->x_mid = F(keep * R * d);
    rs->xn2 = F(keep * R * d);
    rs->rstd2 = F(keep * R);
    rs->gate_up = F(keep * R * 2 * ff);
    rs->hid = F(keep * R * ff);
    rs->qkv = F(z.qkv);
    rs->xnf = F(R * d);
    rs->rstdf = F(R);
    rs->last_rows = F(z.last);
    rs->logits = F(z.logits);
    if (s.train) {
        rs->dk_cache = F(z.dcache);
        rs->dv_cache = F(z.dcache);
        rs->dx = F(R * d);
        rs->dxn = F(R * d);
        rs->dq = F(R * qd);
        rs->datt = F(R * qd);
        rs->dqkv = F(z.qkv);
        rs->dhid = F(R * ff);
        rs->dgate_up = F(R * 2 * ff);
    }
#undef F
    rs->d_tokens = dev_alloc(R * sizeof(int));
    rs->d_meta = dev_alloc((size_t)4 * s.n_slots * sizeof(int));
    rs->host_tokens = xcalloc(R, sizeof(int));
    rs->host_meta = xcalloc((size_t)4 * s.n_slots, sizeof(int));

    /* RoPE tables in double precision, rounded once. */
    const int half = c->head_dim / 2;
    double *inv_freq = xmalloc((size_t)half * sizeof(double));
    rope_inv_freq(c, inv_freq);
    float *cos_tab = xmalloc(z.rope * sizeof(float)), *sin_tab = xmalloc(z.rope * sizeof(float));
    for (int p = 0; p < s.max_seq; p++)
        for (int i = 0; i < half; i++) {
            double a = p * inv_freq[i];
            cos_tab[(size_t)p * half + i] = (float)cos(a);
            sin_tab[(size_t)p * half + i] = (float)sin(a);
        }
    dev_upload(rs->rope_cos, cos_tab, z.rope * sizeof(float));
    dev_upload(rs->rope_sin, sin_tab, z.rope * sizeof(float));
    free(cos_tab);
    free(sin_tab);
    free(inv_freq);
}

void runstate_free(RunState *rs) {
    float *bufs[] = {rs->rope_cos, rs->rope_sin, rs->k_cache, rs->v_cache, rs->x, rs->xn1,
                     rs->rstd1, rs->q, rs->att, rs->lse, rs->x_mid, rs->xn2, rs->rstd2,
                     rs->gate_up, rs->hid, rs->qkv, rs->xnf, rs->rstdf, rs->last_rows,
                     rs->logits, rs->dk_cache, rs->dv_cache, rs->dx, rs->dxn, rs->dq, rs->datt,
                     rs->dqkv, rs->dhid, rs->dgate_up};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) dev_free(bufs[i]);
    dev_free(rs->d_tokens);
    dev_free(rs->d_meta);
    free(rs->host_tokens);
    free(rs->host_meta);
    memset(rs, 0, sizeof *rs);
}

/* Per-layer activation views: layer l's slice when training, the single slice otherwise. */
typedef struct {
    float *x_in, *x_out, *xn1, *rstd1, *q, *att, *lse, *x_mid, *xn2, *rstd2, *gate_up, *hid;
    float *k_cache, *v_cache;
} LayerActs;

static LayerActs layer_acts(const ModelConfig *c, const RunState *rs, int l) {
    const RunShape s = rs->shape;
    const size_t R = (size_t)s.max_rows, d = c->dim, qd = cfg_q_dim(c), ff = c->hidden_dim;
    const size_t a = s.train ? (size_t)l : 0;
    const size_t xi = s.train ? (size_t)l : (size_t)(l % 2); /* ping-pong without train */
    const size_t xo = s.train ? (size_t)l + 1 : (size_t)((l + 1) % 2);
    const size_t cache = (size_t)l * s.n_slots * s.max_seq * cfg_kv_dim(c);
    LayerActs A = {
        .x_in = rs->x + xi * R * d,
        .x_out = rs->x + xo * R * d,
        .xn1 = rs->xn1 + a * R * d,
        .rstd1 = rs->rstd1 + a * R,
        .q = rs->q + a * R * qd,
        .att = rs->att + a * R * qd,
        .lse = rs->lse + a * R * c->n_heads,
        .x_mid = rs->x_mid + a * R * d,
        .xn2 = rs->xn2 + a * R * d,
        .rstd2 = rs->rstd2 + a * R,
        .gate_up = rs->gate_up + a * R * 2 * ff,
        .hid = rs->hid + a * R * ff,
        .k_cache = rs->k_cache + cache,
        .v_cache = rs->v_cache + cache,
    };
    return A;
}

static const float *bias_or_null(const Model *m, size_t off) {
    return off == PARAM_NONE ? NULL : m->params + off;
}

/* Validates the batch against the RunState and uploads tokens, positions and the
 * attention batch description. Returns the number of rows. */
static int prepare_batch(const Model *m, RunState *rs, const ForwardInput *in) {
    const RunShape s = rs->shape;
    CHECK(in->n_seq > 0 && in->n_seq <= s.n_slots);
    int *meta = rs->host_meta, n = in->n_seq, rows = 0;
    int *slot = meta, *start = meta + n, *len = meta + 2 * n, *row0 = meta + 3 * n;
    for (int i = 0; i < n; i++) {
        CHECK(in->slot[i] >= 0 && in->slot[i] < s.n_slots);
        CHECK(in->start[i] >= 0 && in->len[i] > 0 && in->start[i] + in->len[i] <= s.max_seq);
        slot[i] = in->slot[i];
        start[i] = in->start[i];
        len[i] = in->len[i];
        row0[i] = rows;
        rows += in->len[i];
    }
    CHECK(rows <= s.max_rows);
    for (int r = 0; r < rows; r++) {
        int t = in->tokens[r];
        CHECK(t < m->cfg.vocab_size);
        CHECK(t >= 0 || in->vectors);
        rs->host_tokens[r] = t;
    }
    dev_upload(rs->d_tokens, rs->host_tokens, (size_t)rows * sizeof(int));
    dev_upload(rs->d_meta, meta, (size_t)4 * n * sizeof(int));
    rs->batch = (AttnBatch){
        .n_seq = n,
        .max_seq = s.max_seq,
        .total_rows = rows,
        .host_slot = slot,
        .host_start = start,
        .host_len = len,
        .host_row0 = row0,
        .d_slot = rs->d_meta,
        .d_start = rs->d_meta + n,
        .d_len = rs->d_meta + 2 * n,
        .d_row0 = rs->d_meta + 3 * n,
    };
    rs->rows = rows;
    return rows;
}

int model_forward(const Model *m, RunState *rs, const ForwardInput *in, int logits_last_only) {
    const ModelConfig *c = &m->cfg;
    const int d = c->dim, qd = cfg_q_dim(c), qkvd = qd + 2 * cfg_kv_dim(c), ff = c->hidden_dim;
    const int hs = c->head_dim, V = c->vocab_size;
    const float *P = m->params;
    CHECK(logits_last_only || !rs->shape.last_rows_only);
    const int T = prepare_batch(m, rs, in);
    const AttnBatch *b = &rs->batch;
    rs->trained_rows = rs->shape.train && !logits_last_only ? T : 0;

    /* A decode step (one new position per sequence, last-row logits) repeats the same ops
     * on the same buffers every step: the backend may replay a recording of it. */
    const int decode_step = logits_last_only && T == in->n_seq;
    uint64_t replay_key = 0;
    if (decode_step) {
        const uintptr_t parts[4] = {(uintptr_t)m->params, (uintptr_t)rs, (uintptr_t)in->vectors, (uintptr_t)T};
        replay_key = 1469598103934665603ull;
        for (int i = 0; i < 4; i++) replay_key = (replay_key ^ parts[i]) * 1099511628211ull;
        if (ops_replay_begin(replay_key)) return T;
    }

    LayerActs A0 = layer_acts(c, rs, 0);
    op_embed_forward(A0.x_in, rs->d_tokens, in->vectors, P + m->off.embed, T, d);

    for (int l = 0; l < c->n_layers; l++) {
        const LayerOffsets *w = &m->off.layers[l];
        LayerActs A = layer_acts(c, rs, l);
        /* attention block */
        op_rmsnorm_forward(A.xn1, A.rstd1, A.x_in, P + w->attn_norm, T, d, c->norm_eps);
        op_linear_forward(rs->qkv, A.xn1, P + w->wq, bias_or_null(m, w->bq), T, d, qkvd);
        op_qkv_forward(A.q, A.k_cache, A.v_cache, rs->qkv, rs->rope_cos, rs->rope_sin, b, c->n_heads,
                       c->n_kv_heads, hs);
        op_attention_forward(A.att, A.lse, A.q, A.k_cache, A.v_cache, b, c->n_heads,
                             c->n_kv_heads, hs);
        op_linear_residual_forward(A.x_mid, A.att, P + w->wo, A.x_in, T, qd, d);
        /* feed-forward block */
        op_rmsnorm_forward(A.xn2, A.rstd2, A.x_mid, P + w->ffn_norm, T, d, c->norm_eps);
        op_linear_forward(A.gate_up, A.xn2, P + w->w_gate, NULL, T, d, 2 * ff);
        op_swiglu_forward(A.hid, A.gate_up, T, ff);
        op_linear_residual_forward(A.x_out, A.hid, P + w->w_down, A.x_mid, T, ff, d);
    }

    const float *x_final = layer_acts(c, rs, c->n_layers - 1).x_out;
    op_rmsnorm_forward(rs->xnf, rs->rstdf, x_final, P + m->off.final_norm, T, d, c->norm_eps);
    if (!logits_last_only || decode_step) { /* every row is wanted, or every row is a last row */
        op_linear_forward(rs->logits, rs->xnf, P + m->off.lm_head, NULL, T, d, V);
        if (decode_step) ops_replay_end(replay_key);
        return T;
    }
    for (int i = 0; i < b->n_seq; i++) {
        int last = b->host_row0[i] + b->host_len[i] - 1;
        dev_copy(rs->last_rows + (size_t)i * d, rs->xnf + (size_t)last * d, (size_t)d * sizeof(float));
    }
    op_linear_forward(rs->logits, rs->last_rows, P + m->off.lm_head, NULL, b->n_seq, d, V);
    return b->n_seq;
}

void model_backward(const Model *m, RunState *rs, const float *dlogits, float *grads) {
    const ModelConfig *c = &m->cfg;
    const int d = c->dim, qd = cfg_q_dim(c), kvd = cfg_kv_dim(c), qkvd = qd + 2 * kvd;
    const int ff = c->hidden_dim;
    const int hs = c->head_dim, V = c->vocab_size, T = rs->trained_rows;
    const float *P = m->params;
    const AttnBatch *b = &rs->batch;
    CHECK(rs->shape.train && T > 0);
    for (int i = 0; i < b->n_seq; i++) CHECK(b->host_start[i] == 0);
    float *G = grads, *dx = rs->dx, *dxn = rs->dxn;

    /* lm_head and final norm */
    op_linear_backward(dxn, G + m->off.lm_head, NULL, dlogits, rs->xnf, P + m->off.lm_head, T,
                       d, V, 0);
    const float *x_final = layer_acts(c, rs, c->n_layers - 1).x_out;
    dev_zero(dx, (size_t)T * d * sizeof(float));
    op_rmsnorm_backward(dx, G + m->off.final_norm, dxn, x_final, P + m->off.final_norm,
                        rs->rstdf, T, d);

    for (int l = c->n_layers - 1; l >= 0; l--) {
        const LayerOffsets *w = &m->off.layers[l];
        LayerActs A = layer_acts(c, rs, l);
        /* feed-forward block: x_out = x_mid + down(swiglu(gate, up)) */
        op_linear_backward(rs->dhid, G + w->w_down, NULL, dx, A.hid, P + w->w_down, T, ff, d, 0);
        op_swiglu_backward(rs->dgate_up, rs->dhid, A.gate_up, T, ff);
        op_linear_backward(dxn, G + w->w_gate, NULL, rs->dgate_up, A.xn2, P + w->w_gate, T, d, 2 * ff, 0);
        op_rmsnorm_backward(dx, G + w->ffn_norm, dxn, A.x_mid, P + w->ffn_norm, A.rstd2, T, d);
        /* attention block: x_mid = x_in + o_proj(attention(q, k, v)) */
        op_linear_backward(rs->datt, G + w->wo, NULL, dx, A.att, P + w->wo, T, qd, d, 0);
        size_t dcache = (size_t)rs->shape.n_slots * rs->shape.max_seq * kvd * sizeof(float);
        dev_zero(rs->dk_cache, dcache);
        dev_zero(rs->dv_cache, dcache);
        op_attention_backward(rs->dq, rs->dk_cache, rs->dv_cache, rs->datt, A.att, A.lse, A.q,
                              A.k_cache, A.v_cache, b, c->n_heads, c->n_kv_heads, hs);
        op_qkv_backward(rs->dqkv, rs->dq, rs->dk_cache, rs->dv_cache, rs->rope_cos, rs->rope_sin, b,
                        c->n_heads, c->n_kv_heads, hs);
        float *gbqkv = w->bq == PARAM_NONE ? NULL : G + w->bq;
        op_linear_backward(dxn, G + w->wq, gbqkv, rs->dqkv, A.xn1, P + w->wq, T, d, qkvd, 0);
        op_rmsnorm_backward(dx, G + w->attn_norm, dxn, A.x_in, P + w->attn_norm, A.rstd1, T, d);
    }
    op_embed_backward(G + m->off.embed, dx, rs->d_tokens, T, d);
}
