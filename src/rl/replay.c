#include "rl/replay.h"

#include <stdlib.h>
#include <string.h>

void replay_init(ReplayState *st, const ModelConfig *c, int max_rows, int max_seqs, int max_seq) {
    memset(st, 0, sizeof *st);
    st->max_rows = max_rows;
    st->max_seqs = max_seqs;
    st->max_seq = max_seq;
    runstate_init(&st->rs, c, (RunShape){.max_rows = max_rows, .n_slots = max_seqs, .max_seq = max_seq, .train = 1});
    const size_t R = (size_t)max_rows, V = c->vocab_size, d = c->dim;
    st->d_dlogits = dev_alloc(R * V * sizeof(float));
    st->d_vectors = dev_alloc(R * d * sizeof(float));
    st->d_logp = dev_alloc(R * sizeof(float));
    st->d_dlogp = dev_alloc(R * sizeof(float));
    st->d_tgt = dev_alloc(R * sizeof(int));
    st->h_vectors = xcalloc(R * d, sizeof(float));
    st->h_logp = xmalloc(R * sizeof(float));
    st->h_dlogp = xmalloc(R * sizeof(float));
    st->h_tgt = xmalloc(R * sizeof(int));
    st->h_tokens = xmalloc(R * sizeof(int));
}

void replay_free(ReplayState *st) {
    runstate_free(&st->rs);
    if (st->ref_ready) {
        runstate_free(&st->ref_rs);
        dev_free(st->d_zref), dev_free(st->d_muref), dev_free(st->d_klw), dev_free(st->d_kl);
    }
    float *f[] = {st->d_dlogits, st->d_vectors, st->d_z, st->d_p, st->d_dp, st->d_mu,
                  st->d_h, st->d_dmu, st->d_logp, st->d_dlogp};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) dev_free(f[i]);
    dev_free(st->d_tgt);
    free(st->h_vectors), free(st->h_logp), free(st->h_dlogp), free(st->h_tgt), free(st->h_tokens);
    memset(st, 0, sizeof *st);
}

static int prefill_len(const Rollout *r, const ReplayConfig *rc) {
    return r->prefill_long ? rc->n_prefill_long : rc->n_prefill;
}

int replay_length(const Rollout *r, const ReplayConfig *rc) {
    return r->n_prompt + r->cot_len + prefill_len(r, rc) + r->ans_len;
}

/* Categorical terms: rows whose target is set in h_tgt, with weight per row. */
static void categorical_terms(const Model *m, ReplayState *st, int rows, float inv_temp,
                              int backward, float *row_logp) {
    const int V = m->cfg.vocab_size;
    dev_upload(st->d_tgt, st->h_tgt, (size_t)rows * sizeof(int));
    op_logprob_forward(st->d_logp, st->rs.logits, st->d_tgt, rows, V, inv_temp);
    dev_download(row_logp, st->d_logp, (size_t)rows * sizeof(float));
    if (backward) {
        dev_upload(st->d_dlogp, st->h_dlogp, (size_t)rows * sizeof(float));
        op_logprob_backward(st->d_dlogits, st->d_dlogp, st->rs.logits, st->d_tgt, rows, V, inv_temp);
    }
}

void replay_accumulate(const Model *m, ReplayState *st, const ReplayConfig *rc, const Rollout *r,
                       const float *weights, int n, float *grads, double *logp_cot,
                       double *logp_ans) {
    replay_accumulate_kl(m, st, rc, r, weights, n, grads, logp_cot, logp_ans, NULL);
}

/* The soft/fuzzy CoT terms' buffers, three of them logit-sized: made on first use, so
 * hard-mode runs never hold them. */
static void soft_init(ReplayState *st, const ModelConfig *c) {
    const size_t R = (size_t)st->max_rows, V = c->vocab_size, d = c->dim;
    st->d_z = dev_alloc(R * V * sizeof(float));
    st->d_p = dev_alloc(R * V * sizeof(float));
    st->d_dp = dev_alloc(R * V * sizeof(float));
    st->d_mu = dev_alloc(R * d * sizeof(float));
    st->d_h = dev_alloc(R * d * sizeof(float));
    st->d_dmu = dev_alloc(R * d * sizeof(float));
    st->soft_ready = 1;
}

static void ref_init(ReplayState *st, const ModelConfig *c) {
    const size_t R = (size_t)st->max_rows, V = c->vocab_size, d = c->dim;
    runstate_init(&st->ref_rs, c, (RunShape){.max_rows = st->max_rows, .n_slots = st->max_seqs, .max_seq = st->max_seq, .train = 0});
    st->d_zref = dev_alloc(R * V * sizeof(float));
    st->d_muref = dev_alloc(R * d * sizeof(float));
    st->d_klw = dev_alloc(R * sizeof(float));
    st->d_kl = dev_alloc(R * sizeof(float));
    st->ref_ready = 1;
}

void replay_accumulate_kl(const Model *m, ReplayState *st, const ReplayConfig *rc, const Rollout *r,
                          const float *weights, int n, float *grads, double *logp_cot,
                          double *logp_ans, double *kl_out) {
    const ModelConfig *c = &m->cfg;
    const int d = c->dim, V = c->vocab_size, soft = rc->mode != COT_HARD;
    CHECK(n > 0 && n <= st->max_seqs);
    if (soft && !st->soft_ready) soft_init(st, c);
    int *slot = xmalloc((size_t)n * sizeof(int)), *start = xcalloc((size_t)n, sizeof(int));
    int *len = xmalloc((size_t)n * sizeof(int)), *row0 = xmalloc((size_t)n * sizeof(int));
    int rows = 0;
    for (int i = 0; i < n; i++) {
        slot[i] = i;
        len[i] = replay_length(&r[i], rc);
        CHECK(len[i] <= st->max_seq);
        row0[i] = rows;
        rows += len[i];
    }
    CHECK(rows <= st->max_rows);

    /* Input sequence: prompt, CoT inputs (tokens or recorded vectors), prefill, answer. */
    for (int i = 0; i < n; i++) {
        const Rollout *ro = &r[i];
        int *tk = st->h_tokens + row0[i];
        memcpy(tk, ro->prompt, (size_t)ro->n_prompt * sizeof(int));
        tk += ro->n_prompt;
        for (int t = 0; t < ro->cot_len; t++) {
            if (soft) {
                tk[t] = -1;
                memcpy(st->h_vectors + (size_t)(row0[i] + ro->n_prompt + t) * d,
                       ro->cot_vectors + (size_t)t * d, (size_t)d * sizeof(float));
            } else {
                tk[t] = ro->cot_tokens[t];
            }
        }
        tk += ro->cot_len;
        memcpy(tk, ro->prefill_long ? rc->prefill_long : rc->prefill, (size_t)prefill_len(ro, rc) * sizeof(int));
        tk += prefill_len(ro, rc);
        memcpy(tk, ro->ans_tokens, (size_t)ro->ans_len * sizeof(int));
    }
    if (soft) dev_upload(st->d_vectors, st->h_vectors, (size_t)rows * d * sizeof(float));
    ForwardInput in = {.n_seq = n, .slot = slot, .start = start, .len = len, .tokens = st->h_tokens,
                       .vectors = soft ? st->d_vectors : NULL};
    model_forward(m, &st->rs, &in, 0);
    const int backward = grads != NULL;
    if (backward) dev_zero(st->d_dlogits, (size_t)rows * V * sizeof(float));
    const int use_kl = rc->ref != NULL && rc->kl_scale != 0.0f;
    if (kl_out)
        for (int i = 0; i < n; i++) kl_out[i] = 0;
    if (use_kl) {
        if (!st->ref_ready) ref_init(st, &c[0]);
        model_forward(rc->ref, &st->ref_rs, &in, 0);
        /* categorical positions: every answer position, and hard CoT positions */
        float *w = st->h_dlogp;
        for (int k = 0; k < rows; k++) w[k] = 0.0f;
        for (int i = 0; i < n; i++) {
            const Rollout *ro = &r[i];
            int first_ans = row0[i] + ro->n_prompt + ro->cot_len + prefill_len(ro, rc) - 1;
            for (int j = 0; j < ro->ans_len; j++) w[first_ans + j] = rc->kl_scale;
        }
        dev_upload(st->d_klw, w, (size_t)rows * sizeof(float));
        op_kl_categorical(st->d_kl, backward ? st->d_dlogits : NULL, st->rs.logits, st->ref_rs.logits,
                          st->d_klw, rows, V, 1.0f / rc->ans_temperature);
        dev_download(st->h_logp, st->d_kl, (size_t)rows * sizeof(float));
        for (int i = 0; i < n && kl_out; i++) {
            const Rollout *ro = &r[i];
            int first_ans = row0[i] + ro->n_prompt + ro->cot_len + prefill_len(ro, rc) - 1;
            for (int j = 0; j < ro->ans_len; j++) kl_out[i] += st->h_logp[first_ans + j];
        }
        if (!soft) {
            for (int k = 0; k < rows; k++) w[k] = 0.0f;
            for (int i = 0; i < n; i++)
                for (int t = 0; t < r[i].cot_len; t++) w[row0[i] + r[i].n_prompt - 1 + t] = rc->kl_scale;
            dev_upload(st->d_klw, w, (size_t)rows * sizeof(float));
            op_kl_categorical(st->d_kl, backward ? st->d_dlogits : NULL, st->rs.logits, st->ref_rs.logits,
                              st->d_klw, rows, V, 1.0f / rc->cot_temperature);
            dev_download(st->h_logp, st->d_kl, (size_t)rows * sizeof(float));
            for (int i = 0; i < n && kl_out; i++)
                for (int t = 0; t < r[i].cot_len; t++) kl_out[i] += st->h_logp[row0[i] + r[i].n_prompt - 1 + t];
        }
    }

    /* Answer terms: the logits of the position before each answer token. */
    for (int k = 0; k < rows; k++) st->h_tgt[k] = -1;
    for (int i = 0; i < n; i++) {
        const Rollout *ro = &r[i];
        int first = row0[i] + ro->n_prompt + ro->cot_len + prefill_len(ro, rc) - 1;
        for (int j = 0; j < ro->ans_len; j++) {
            st->h_tgt[first + j] = ro->ans_tokens[j];
            st->h_dlogp[first + j] = weights ? weights[i] : 0.0f;
        }
    }
    categorical_terms(m, st, rows, 1.0f / rc->ans_temperature, backward, st->h_logp);
    for (int i = 0; i < n; i++) {
        const Rollout *ro = &r[i];
        int first = row0[i] + ro->n_prompt + ro->cot_len + prefill_len(ro, rc) - 1;
        double s = 0;
        for (int j = 0; j < ro->ans_len; j++) s += st->h_logp[first + j];
        logp_ans[i] = s;
    }

    /* CoT terms: the logits of the position before each CoT input. */
    if (!soft) {
        for (int k = 0; k < rows; k++) st->h_tgt[k] = -1;
        for (int i = 0; i < n; i++) {
            const Rollout *ro = &r[i];
            int first = row0[i] + ro->n_prompt - 1;
            for (int t = 0; t < ro->cot_len; t++) {
                st->h_tgt[first + t] = ro->cot_tokens[t];
                st->h_dlogp[first + t] = weights ? weights[i] : 0.0f;
            }
        }
        categorical_terms(m, st, rows, 1.0f / rc->cot_temperature, backward, st->h_logp);
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int t = 0; t < r[i].cot_len; t++) s += st->h_logp[row0[i] + r[i].n_prompt - 1 + t];
            logp_cot[i] = s;
        }
    } else {
        /* Gather the CoT logit rows, then mixture and Gaussian log-density. A rollout's
         * CoT rows are contiguous: one copy per rollout, not per row. */
        int ns = 0;
        for (int i = 0; i < n; i++) {
            const int row = row0[i] + r[i].n_prompt - 1, nc = r[i].cot_len;
            if (nc == 0) continue;
            dev_copy(st->d_z + (size_t)ns * V, st->rs.logits + (size_t)row * V, (size_t)nc * V * sizeof(float));
            dev_copy(st->d_h + (size_t)ns * d, st->d_vectors + (size_t)(row + 1) * d, (size_t)nc * d * sizeof(float));
            for (int t = 0; t < nc; t++) st->h_dlogp[ns + t] = weights ? weights[i] : 0.0f;
            ns += nc;
        }
        const float inv_temp = 1.0f / rc->cot_temperature;
        const float inv2s2 = 1.0f / (2.0f * rc->sigma * rc->sigma);
        if (ns > 0) {
            op_softmax_forward(st->d_p, st->d_z, ns, V, inv_temp);
            op_mixture_forward(st->d_mu, st->d_p, m->params + m->off.embed, ns, V, d);
            op_gauss_logprob_forward(st->d_logp, st->d_h, st->d_mu, ns, d, inv2s2);
            dev_download(st->h_logp, st->d_logp, (size_t)ns * sizeof(float));
        }
        for (int i = 0, k = 0; i < n; i++) {
            double s = 0;
            for (int t = 0; t < r[i].cot_len; t++) s += st->h_logp[k++];
            logp_cot[i] = s;
        }
        if (use_kl && ns > 0) {
            /* mu_ref = softmax(z_ref / tau)^T E_ref at the same CoT positions */
            for (int i = 0, k = 0; i < n; k += r[i].cot_len, i++)
                if (r[i].cot_len > 0)
                    dev_copy(st->d_zref + (size_t)k * V, st->ref_rs.logits + (size_t)(row0[i] + r[i].n_prompt - 1) * V,
                             (size_t)r[i].cot_len * V * sizeof(float));
            op_softmax_forward(st->d_dp, st->d_zref, ns, V, inv_temp); /* d_dp as scratch */
            op_mixture_forward(st->d_muref, st->d_dp, rc->ref->params + rc->ref->off.embed, ns, V, d);
            op_gauss_logprob_forward(st->d_kl, st->d_muref, st->d_mu, ns, d, inv2s2);
            float *kl_pos = xmalloc((size_t)ns * sizeof(float));
            dev_download(kl_pos, st->d_kl, (size_t)ns * sizeof(float));
            for (int i = 0, j = 0; i < n; i++)
                for (int t = 0; t < r[i].cot_len; t++, j++)
                    if (kl_out) kl_out[i] -= kl_pos[j]; /* KL = ||mu - mu_ref||^2 / (2 sigma^2) */
            free(kl_pos);
        }
        if (backward && ns > 0) {
            dev_upload(st->d_dlogp, st->h_dlogp, (size_t)ns * sizeof(float));
            dev_zero(st->d_dmu, (size_t)ns * d * sizeof(float));
            op_gauss_logprob_backward(st->d_dmu, st->d_dlogp, st->d_h, st->d_mu, ns, d, inv2s2);
            if (use_kl) {
                /* d/dmu of kl_scale * ||mu - mu_ref||^2 / (2 sigma^2), via the same op with h = mu_ref */
                float *negk = xmalloc((size_t)ns * sizeof(float));
                for (int k = 0; k < ns; k++) negk[k] = -rc->kl_scale;
                dev_upload(st->d_klw, negk, (size_t)ns * sizeof(float));
                free(negk);
                op_gauss_logprob_backward(st->d_dmu, st->d_klw, st->d_muref, st->d_mu, ns, d, inv2s2);
            }
            op_mixture_backward(st->d_dp, grads + m->off.embed, st->d_dmu, st->d_p,
                                m->params + m->off.embed, ns, V, d);
            /* The softmax backward accumulates straight into dlogits, one rollout's CoT rows
             * at a time (contiguous there, and disjoint from every row another term wrote):
             * no logit-sized scratch, no zeroing, no second pass to add it in. */
            for (int i = 0, k = 0; i < n; k += r[i].cot_len, i++)
                if (r[i].cot_len > 0)
                    op_softmax_backward(st->d_dlogits + (size_t)(row0[i] + r[i].n_prompt - 1) * V,
                                        st->d_dp + (size_t)k * V, st->d_p + (size_t)k * V, r[i].cot_len, V, inv_temp);
        }
    }
    if (backward) model_backward(m, &st->rs, st->d_dlogits, grads);
    free(slot), free(start), free(len), free(row0);
}
