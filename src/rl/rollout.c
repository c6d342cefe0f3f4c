#include "rl/rollout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/bytebuf.h"

/* Answer-phase sampling keys use positions above this so they never share a stream with
 * CoT positions of the same rollout. */
enum { ANSWER_KEY_OFFSET = 1 << 20 };

const char *cot_mode_name(CotMode m) {
    switch (m) {
    case COT_HARD: return "hard";
    case COT_SOFT: return "soft";
    case COT_FUZZY: return "fuzzy";
    }
    return "?";
}

int cot_mode_parse(const char *s, CotMode *m, Err *err) {
    if (!strcmp(s, "hard")) *m = COT_HARD;
    else if (!strcmp(s, "soft")) *m = COT_SOFT;
    else if (!strcmp(s, "fuzzy")) *m = COT_FUZZY;
    else return err_set(err, "mode: expected hard, soft or fuzzy, got '%s'", s);
    return 0;
}

float rollout_sigma(const Model *m, float gamma) {
    const size_t n = (size_t)m->cfg.vocab_size * m->cfg.dim;
    return gamma * (float)sqrt(op_sumsq(m->params + m->off.embed, n) / (double)n);
}

typedef enum { PHASE_COT, PHASE_ANSWER, PHASE_DONE } Phase;

/* Per-rollout generation state that does not belong in the record. */
typedef struct {
    Phase phase;
    int pos;              /* positions already in the KV cache */
    TokenDecoder *cot_dec, *ans_dec;
    ByteBuf cot_text, ans_text;
    int depth;            /* brace depth of the answer, 1 after the prefilled "\boxed{" */
    int escaped;          /* previous answer byte was a backslash */
} GenState;

static int ends_with_stop(const ByteBuf *text, const char *stop) {
    size_t n = text->n, k = strlen(stop);
    while (n > 0 && (text->p[n - 1] == ' ' || text->p[n - 1] == '\n' || text->p[n - 1] == '\t')) n--;
    return k > 0 && n >= k && memcmp(text->p + n - k, stop, k) == 0;
}

static void append_piece(TokenDecoder *dec, int token, ByteBuf *buf) {
    const char *piece;
    size_t len;
    if (token_decoder_push(dec, token, &piece, &len, NULL) == 0 && len) bytebuf_append(buf, piece, len);
}

/* Feeds answer bytes through the brace counter; returns 1 once the box is closed. */
static int answer_closed(GenState *g, const char *piece, size_t len) {
    for (size_t i = 0; i < len; i++) {
        char c = piece[i];
        if (g->escaped) {
            g->escaped = 0;
            continue;
        }
        if (c == '\\') g->escaped = 1;
        else if (c == '{') g->depth++;
        else if (c == '}' && --g->depth == 0) return 1;
    }
    return 0;
}

static int is_eos(const ModelConfig *c, const Tokenizer *tok, int id) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return 1;
    return id == tokenizer_eos_id(tok);
}

static void topk_row(const float *p, int V, int k, int *ids, float *probs) {
    for (int j = 0; j < k; j++) ids[j] = -1, probs[j] = -1.0f;
    for (int i = 0; i < V; i++) {
        if (p[i] <= probs[k - 1]) continue;
        int j = k - 1;
        while (j > 0 && probs[j - 1] < p[i]) {
            ids[j] = ids[j - 1];
            probs[j] = probs[j - 1];
            j--;
        }
        ids[j] = i;
        probs[j] = p[i];
    }
}

/* Generates rollouts r[0..n) together. */
static void generate_chunk(const Model *m, const Tokenizer *tok, const RolloutConfig *cfg,
                           Rollout *r, int n, long *gen_rows) {
    const ModelConfig *c = &m->cfg;
    const int d = c->dim, V = c->vocab_size, soft = cfg->mode != COT_HARD;
    const int K = cfg->record_topk > ROLLOUT_MAX_TOPK ? ROLLOUT_MAX_TOPK : cfg->record_topk;
    int max_prompt = 0, sum_prompt = 0;
    for (int i = 0; i < n; i++) {
        max_prompt = r[i].n_prompt > max_prompt ? r[i].n_prompt : max_prompt;
        sum_prompt += r[i].n_prompt;
    }
    const int step_rows = n * (1 + cfg->n_prefill_long);
    RunShape shape = {.max_rows = sum_prompt > step_rows ? sum_prompt : step_rows,
                      .n_slots = n,
                      .max_seq = max_prompt + cfg->cot_max + cfg->n_prefill_long + cfg->ans_max + 1,
                      .train = 0,
                      .last_rows_only = 1};
    RunState rs;
    runstate_init(&rs, c, shape);

    GenState *g = xcalloc((size_t)n, sizeof *g);
    for (int i = 0; i < n; i++) {
        g[i].phase = PHASE_COT;
        g[i].cot_dec = token_decoder_new(tok);
        g[i].ans_dec = token_decoder_new(tok);
        g[i].depth = 1;
        r[i].cot_tokens = xmalloc((size_t)(cfg->cot_max + 1) * sizeof(int));
        r[i].ans_tokens = xmalloc((size_t)(cfg->ans_max + 1) * sizeof(int));
        if (soft) {
            r[i].cot_vectors = xmalloc((size_t)cfg->cot_max * d * sizeof(float));
            r[i].noise_norm = xmalloc((size_t)cfg->cot_max * sizeof(float));
        }
        if (cfg->record_entropy) r[i].cot_entropy = xmalloc((size_t)cfg->cot_max * sizeof(float));
        if (K) {
            r[i].topk_ids = xmalloc((size_t)cfg->cot_max * K * sizeof(int));
            r[i].topk_probs = xmalloc((size_t)cfg->cot_max * K * sizeof(float));
            r[i].mix_entropy = xmalloc((size_t)cfg->cot_max * sizeof(float));
        }
    }

    /* Host staging for batch descriptions and per-row results. */
    int *order = xmalloc((size_t)n * sizeof(int)), *next_order = xmalloc((size_t)n * sizeof(int));
    int *slot = xmalloc((size_t)n * sizeof(int)), *start = xmalloc((size_t)n * sizeof(int));
    int *len = xmalloc((size_t)n * sizeof(int));
    int *tokens = xmalloc((size_t)shape.max_rows * sizeof(int));
    int *ids = xmalloc((size_t)n * sizeof(int));
    float *u = xmalloc((size_t)n * sizeof(float)), *ent = xmalloc((size_t)n * sizeof(float));
    float *mix_ent = K ? xmalloc((size_t)n * sizeof(float)) : NULL;
    float *h_host = soft ? xmalloc((size_t)n * d * sizeof(float)) : NULL;
    float *noise_ss = soft ? xmalloc((size_t)n * sizeof(float)) : NULL;
    float *p_host = K ? xmalloc((size_t)n * V * sizeof(float)) : NULL;
    RngKey *keys = xmalloc((size_t)n * sizeof(RngKey));
    /* Device buffers */
    int *d_ids = dev_alloc((size_t)n * sizeof(int));
    float *d_u = dev_alloc((size_t)n * sizeof(float)), *d_ent = dev_alloc((size_t)n * sizeof(float));
    float *d_mix_ent = K ? dev_alloc((size_t)n * sizeof(float)) : NULL;
    float *d_p = soft || K ? dev_alloc((size_t)n * V * sizeof(float)) : NULL;
    float *d_h = soft ? dev_alloc((size_t)n * d * sizeof(float)) : NULL;
    float *d_mu = soft ? dev_alloc((size_t)n * d * sizeof(float)) : NULL;
    float *d_noise_ss = soft ? dev_alloc((size_t)n * sizeof(float)) : NULL;
    float *d_vec = soft ? dev_alloc((size_t)shape.max_rows * d * sizeof(float)) : NULL;
    const float *E = m->params + m->off.embed;
    const float inv_cot = cfg->cot_temperature > 0 ? 1.0f / cfg->cot_temperature : 0.0f;
    const float inv_ans = cfg->ans_temperature > 0 ? 1.0f / cfg->ans_temperature : 0.0f;

    /* Prefill every prompt. */
    int rows = 0;
    for (int i = 0; i < n; i++) {
        order[i] = i;
        slot[i] = i;
        start[i] = 0;
        len[i] = r[i].n_prompt;
        memcpy(tokens + rows, r[i].prompt, (size_t)r[i].n_prompt * sizeof(int));
        rows += r[i].n_prompt;
        g[i].pos = r[i].n_prompt;
    }
    ForwardInput in = {.n_seq = n, .slot = slot, .start = start, .len = len, .tokens = tokens, .vectors = NULL};
    model_forward(m, &rs, &in, 1);
    int live = n, n_cot = n;

    while (live > 0) {
        /* logits rows follow `order`: the first n_cot rollouts are in the CoT phase. */
        const int n_ans = live - n_cot;
        if (n_cot > 0) {
            for (int k = 0; k < n_cot; k++) {
                const Rollout *ro = &r[order[k]];
                RngKey key = {.seed = cfg->seed, .step = (uint32_t)cfg->step,
                              .prompt = (uint32_t)ro->prompt_index, .sample = (uint32_t)ro->sample_index,
                              .position = (uint32_t)ro->cot_len, .purpose = RNG_PURPOSE_SAMPLE};
                u[k] = rng_uniform(key, 0);
                key.purpose = RNG_PURPOSE_NOISE;
                keys[k] = key;
            }
            dev_upload(d_u, u, (size_t)n_cot * sizeof(float));
            /* hard: the sampled token; soft/fuzzy: the shadow token argmax z */
            op_sample(d_ids, rs.logits, d_u, n_cot, V, soft ? 0.0f : inv_cot);
            if (cfg->record_entropy) {
                op_entropy(d_ent, rs.logits, n_cot, V, 1.0f);
                dev_download(ent, d_ent, (size_t)n_cot * sizeof(float));
            }
            /* The entropy at temperature 1 above describes the model; the effective
             * number of tokens a soft input mixes, exp(H), needs the mixture's own
             * temperature. Greedy hard (inv_cot 0) picks one token: entropy 0. */
            if (K && (soft || inv_cot > 0)) {
                op_entropy(d_mix_ent, rs.logits, n_cot, V, soft ? 1.0f / cfg->cot_temperature : inv_cot);
                dev_download(mix_ent, d_mix_ent, (size_t)n_cot * sizeof(float));
            } else if (K) {
                memset(mix_ent, 0, (size_t)n_cot * sizeof(float));
            }
            if (soft) {
                op_softmax_forward(d_p, rs.logits, n_cot, V, 1.0f / cfg->cot_temperature);
                op_mixture_forward(d_mu, d_p, E, n_cot, V, d);
                dev_copy(d_h, d_mu, (size_t)n_cot * d * sizeof(float));
                if (cfg->sigma > 0) op_add_noise(d_h, keys, n_cot, d, cfg->sigma);
                dev_download(h_host, d_h, (size_t)n_cot * d * sizeof(float));
                /* -||h~ - mu||^2 per row on the device: the host needs only the norm */
                op_gauss_logprob_forward(d_noise_ss, d_h, d_mu, n_cot, d, 1.0f);
                dev_download(noise_ss, d_noise_ss, (size_t)n_cot * sizeof(float));
                if (K) dev_download(p_host, d_p, (size_t)n_cot * V * sizeof(float));
            } else if (K) {
                /* hard: top-k of the distribution the token was sampled from */
                op_softmax_forward(d_p, rs.logits, n_cot, V, inv_cot > 0 ? inv_cot : 1.0f);
                dev_download(p_host, d_p, (size_t)n_cot * V * sizeof(float));
            }
            dev_download(ids, d_ids, (size_t)n_cot * sizeof(int));
        }
        if (n_ans > 0) {
            for (int k = n_cot; k < live; k++) {
                const Rollout *ro = &r[order[k]];
                RngKey key = {.seed = cfg->seed, .step = (uint32_t)cfg->step,
                              .prompt = (uint32_t)ro->prompt_index, .sample = (uint32_t)ro->sample_index,
                              .position = (uint32_t)(ANSWER_KEY_OFFSET + ro->ans_len), .purpose = RNG_PURPOSE_SAMPLE};
                u[k] = rng_uniform(key, 0);
            }
            dev_upload(d_u + n_cot, u + n_cot, (size_t)n_ans * sizeof(float));
            op_sample(d_ids + n_cot, rs.logits + (size_t)n_cot * V, d_u + n_cot, n_ans, V, inv_ans);
            dev_download(ids + n_cot, d_ids + n_cot, (size_t)n_ans * sizeof(int));
        }

        /* Advance every rollout; the next batch is [CoT continuing, CoT ending, answering]. */
        int n_cont = 0, n_next = 0;
        int *ending = xmalloc((size_t)live * sizeof(int)), n_end = 0;
        int *src_of = xcalloc((size_t)n, sizeof(int));
        int *answering = xmalloc((size_t)live * sizeof(int)), n_answering = 0;
        for (int k = 0; k < live; k++) {
            int i = order[k];
            Rollout *ro = &r[i];
            GenState *st = &g[i];
            const int id = ids[k];
            if (k < n_cot) {
                const int t = ro->cot_len;
                ro->cot_tokens[t] = id;
                if (cfg->record_entropy) ro->cot_entropy[t] = ent[k];
                if (soft) {
                    memcpy(ro->cot_vectors + (size_t)t * d, h_host + (size_t)k * d, (size_t)d * sizeof(float));
                    ro->noise_norm[t] = (float)sqrt(fmax(0.0, -(double)noise_ss[k]));
                }
                if (K) {
                    topk_row(p_host + (size_t)k * V, V, K, ro->topk_ids + (size_t)t * K, ro->topk_probs + (size_t)t * K);
                    ro->mix_entropy[t] = mix_ent[k];
                }
                ro->cot_len = t + 1;
                src_of[i] = k;
                append_piece(st->cot_dec, id, &st->cot_text);
                if (ends_with_stop(&st->cot_text, cfg->stop_string)) {
                    ro->cot_stop = COT_STOP_STRING;
                } else if (is_eos(c, tok, id)) {
                    ro->cot_stop = COT_STOP_EOS;
                } else if (ro->cot_len >= cfg->cot_max) {
                    ro->cot_stop = COT_STOP_LENGTH;
                } else {
                    next_order[n_cont++] = i;
                    continue;
                }
                ro->prefill_long = ro->cot_stop != COT_STOP_STRING;
                st->phase = PHASE_ANSWER;
                ending[n_end++] = i;
            } else {
                ro->ans_tokens[ro->ans_len++] = id;
                int done = 0;
                if (is_eos(c, tok, id)) {
                    ro->ans_stop = ANS_STOP_EOS;
                    done = 1;
                } else {
                    size_t before = st->ans_text.n;
                    append_piece(st->ans_dec, id, &st->ans_text);
                    if (answer_closed(st, st->ans_text.p + before, st->ans_text.n - before)) {
                        ro->ans_stop = ANS_STOP_CLOSED;
                        done = 1;
                    } else if (ro->ans_len >= cfg->ans_max) {
                        ro->ans_stop = ANS_STOP_LENGTH;
                        done = 1;
                    }
                }
                if (done) st->phase = PHASE_DONE;
                else answering[n_answering++] = i;
            }
        }
        for (int e = 0; e < n_end; e++) next_order[n_cont + e] = ending[e];
        for (int a = 0; a < n_answering; a++) next_order[n_cont + n_end + a] = answering[a];
        n_next = n_cont + n_end + n_answering;

        /* Build the next forward: rows in next_order. */
        rows = 0;
        int run_dst = 0, run_src = 0, run_len = 0; /* pending copy of soft inputs d_h -> d_vec */
        for (int k = 0; k < n_next; k++) {
            int i = next_order[k];
            Rollout *ro = &r[i];
            slot[k] = i;
            start[k] = g[i].pos;
            int take = 0;
            if (k < n_cont + n_end) {
                /* the CoT input of this step */
                if (soft) {
                    tokens[rows] = -1;
                    /* consecutive rows usually come from consecutive rows of d_h: one copy per run */
                    if (run_len > 0 && rows == run_dst + run_len && src_of[i] == run_src + run_len) {
                        run_len++;
                    } else {
                        if (run_len > 0)
                            dev_copy(d_vec + (size_t)run_dst * d, d_h + (size_t)run_src * d, (size_t)run_len * d * sizeof(float));
                        run_dst = rows, run_src = src_of[i], run_len = 1;
                    }
                } else {
                    tokens[rows] = ro->cot_tokens[ro->cot_len - 1];
                }
                take = 1;
                if (k >= n_cont) { /* ...followed by the prefill */
                    const int *pf = ro->prefill_long ? cfg->prefill_long : cfg->prefill;
                    int npf = ro->prefill_long ? cfg->n_prefill_long : cfg->n_prefill;
                    memcpy(tokens + rows + 1, pf, (size_t)npf * sizeof(int));
                    take += npf;
                }
            } else {
                tokens[rows] = ro->ans_tokens[ro->ans_len - 1];
                take = 1;
            }
            len[k] = take;
            g[i].pos += take;
            rows += take;
        }
        if (run_len > 0)
            dev_copy(d_vec + (size_t)run_dst * d, d_h + (size_t)run_src * d, (size_t)run_len * d * sizeof(float));
        free(ending), free(src_of), free(answering);
        int *swap = order;
        order = next_order;
        next_order = swap;
        live = n_next;
        n_cot = n_cont;
        if (live == 0) break;
        in.n_seq = live;
        in.vectors = d_vec;
        model_forward(m, &rs, &in, 1);
        *gen_rows += rows;
    }

    for (int i = 0; i < n; i++) {
        const char *rest;
        size_t rest_len;
        token_decoder_flush(g[i].cot_dec, &rest, &rest_len);
        if (rest_len) bytebuf_append(&g[i].cot_text, rest, rest_len);
        token_decoder_flush(g[i].ans_dec, &rest, &rest_len);
        if (rest_len) bytebuf_append(&g[i].ans_text, rest, rest_len);
        bytebuf_append(&g[i].cot_text, "", 0);
        bytebuf_append(&g[i].ans_text, "", 0);
        r[i].cot_text = g[i].cot_text.p;
        r[i].ans_text = g[i].ans_text.p;
        token_decoder_free(g[i].cot_dec);
        token_decoder_free(g[i].ans_dec);
    }
    free(g), free(order), free(next_order), free(slot), free(start), free(len), free(tokens);
    free(ids), free(u), free(ent), free(mix_ent), free(h_host), free(noise_ss), free(p_host), free(keys);
    dev_free(d_ids), dev_free(d_u), dev_free(d_ent);
    if (d_mix_ent) dev_free(d_mix_ent);
    if (d_p) dev_free(d_p);
    if (soft) dev_free(d_h), dev_free(d_mu), dev_free(d_vec), dev_free(d_noise_ss);
    runstate_free(&rs);
}

int rollouts_generate(const Model *m, const Tokenizer *tok, const RolloutConfig *cfg,
                      const RolloutRequest *req, int n_req, int max_batch, RolloutBatch *out,
                      Err *err) {
    memset(out, 0, sizeof *out);
    int total = 0;
    for (int q = 0; q < n_req; q++) {
        long need = (long)req[q].n_prompt + cfg->cot_max + cfg->n_prefill_long + cfg->ans_max + 1;
        if (req[q].n_prompt <= 0)
            return err_set(err, "prompt %d is empty", req[q].prompt_index);
        if (need > m->cfg.max_seq)
            return err_set(err, "prompt %d: %d prompt tokens + cot_max %d + prefill %d + ans_max %d exceed the model's max_position_embeddings %d",
                           req[q].prompt_index, req[q].n_prompt, cfg->cot_max, cfg->n_prefill_long,
                           cfg->ans_max, m->cfg.max_seq);
        total += req[q].n_samples;
    }
    if (cfg->cot_max < 1 || cfg->ans_max < 1 || cfg->n_prefill < 1 || cfg->n_prefill_long < 1)
        return err_set(err, "rollout: cot_max, ans_max and both prefills must be non-empty");
    if (cfg->mode != COT_HARD && !(cfg->cot_temperature > 0))
        return err_set(err, "rollout: soft and fuzzy modes need a positive temperature");
    out->r = xcalloc((size_t)(total ? total : 1), sizeof(Rollout));
    out->n = total;
    int k = 0;
    for (int q = 0; q < n_req; q++)
        for (int s = 0; s < req[q].n_samples; s++, k++) {
            out->r[k].prompt_index = req[q].prompt_index;
            out->r[k].sample_index = req[q].first_sample + s;
            out->r[k].prompt = req[q].prompt;
            out->r[k].n_prompt = req[q].n_prompt;
        }
    if (max_batch < 1) max_batch = 1;
    for (int b = 0; b < total; b += max_batch)
        generate_chunk(m, tok, cfg, out->r + b, total - b < max_batch ? total - b : max_batch, &out->gen_rows);
    return 0;
}

void rollouts_free(RolloutBatch *b) {
    for (int i = 0; i < b->n; i++) {
        Rollout *r = &b->r[i];
        free(r->cot_tokens), free(r->cot_vectors), free(r->cot_entropy), free(r->noise_norm);
        free(r->topk_ids), free(r->topk_probs), free(r->mix_entropy), free(r->ans_tokens), free(r->cot_text);
        free(r->ans_text);
    }
    free(b->r);
    memset(b, 0, sizeof *b);
}
