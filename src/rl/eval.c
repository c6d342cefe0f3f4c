/* Evaluation in the six CoT inference settings and multiple-choice scoring (eval.h). */
#include "rl/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rl/passk.h"
#include "rl/reward.h"
#include "core/bytebuf.h"

static const char *const MODE_NAMES[EVAL_N_MODES] = {
    "hard-greedy", "hard-sample", "soft-greedy", "soft-sample", "fuzzy-greedy", "fuzzy-sample",
};

const char *eval_mode_name(EvalMode m) { return m >= 0 && m < EVAL_N_MODES ? MODE_NAMES[m] : "?"; }

CotMode eval_mode_cot(EvalMode m) {
    return m <= EVAL_HARD_SAMPLE ? COT_HARD : m <= EVAL_SOFT_SAMPLE ? COT_SOFT : COT_FUZZY;
}

int eval_mode_is_sample(EvalMode m) { return m == EVAL_HARD_SAMPLE || m == EVAL_SOFT_SAMPLE || m == EVAL_FUZZY_SAMPLE; }

int eval_modes_parse(const char *list, int on[EVAL_N_MODES], Err *err) {
    memset(on, 0, sizeof(int) * EVAL_N_MODES);
    int n = 0;
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ') p++;
        if (!*p) break;
        size_t len = strcspn(p, ", ");
        int found = -1;
        for (int m = 0; m < EVAL_N_MODES; m++)
            if (strlen(MODE_NAMES[m]) == len && !strncmp(p, MODE_NAMES[m], len)) found = m;
        if (found < 0)
            return err_set(err, "--modes: unknown mode '%.*s' (expected hard-greedy, hard-sample, soft-greedy, "
                                "soft-sample, fuzzy-greedy or fuzzy-sample)", (int)len, p);
        if (on[found]) return err_set(err, "--modes: '%s' is listed twice", MODE_NAMES[found]);
        on[found] = 1;
        n++;
        p += len;
    }
    if (n == 0) return err_set(err, "--modes: no mode given");
    return 0;
}

void eval_mode_settings(const Model *m, EvalMode mode, const EvalTemps *t, float *cot_temperature,
                        float *sigma, float *ans_temperature) {
    const int sample = eval_mode_is_sample(mode);
    switch (eval_mode_cot(mode)) {
    case COT_HARD: *cot_temperature = sample ? t->hard_sample : 0.0f; break;
    case COT_SOFT: *cot_temperature = t->soft; break;
    case COT_FUZZY: *cot_temperature = t->fuzzy; break;
    }
    /* Hard CoT tokens carry no noise; the greedy soft/fuzzy modes are the noiseless ones. */
    *sigma = eval_mode_cot(mode) != COT_HARD && sample ? rollout_sigma(m, t->noise_gamma) : 0.0f;
    *ans_temperature = 0.0f; /* the answer is always greedy at evaluation */
}

void eval_stats_init(EvalModeStats *s, EvalMode mode, int n_problems, int n_samples, int cot_max,
                     int entropy_bin) {
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->n_problems = n_problems;
    s->n_samples = n_samples;
    s->n_correct = xcalloc((size_t)(n_problems > 0 ? n_problems : 1), sizeof(int));
    s->n_closed = xcalloc((size_t)(n_problems > 0 ? n_problems : 1), sizeof(int));
    s->entropy_bin = entropy_bin > 0 ? entropy_bin : 1;
    s->n_bins = (cot_max + s->entropy_bin - 1) / s->entropy_bin;
    if (s->n_bins < 1) s->n_bins = 1;
    s->entropy_sum = xcalloc((size_t)s->n_bins, sizeof(double));
    s->entropy_count = xcalloc((size_t)s->n_bins, sizeof(long));
}

void eval_stats_free(EvalModeStats *s) {
    free(s->n_correct), free(s->n_closed), free(s->entropy_sum), free(s->entropy_count);
    memset(s, 0, sizeof *s);
}

void eval_stats_add(EvalModeStats *s, const Rollout *r, int reward) {
    CHECK(r->prompt_index >= 0 && r->prompt_index < s->n_problems);
    if (reward == REWARD_CORRECT) s->n_correct[r->prompt_index]++;
    if (reward >= REWARD_WRONG) s->n_closed[r->prompt_index]++;
    s->n_rollouts++;
    s->cot_tokens += r->cot_len;
    s->ans_tokens += r->ans_len;
    if (r->cot_stop >= 0 && r->cot_stop <= 2) s->stop[r->cot_stop]++;
    if (r->ans_stop == ANS_STOP_CLOSED) s->ans_closed++;
    if (!r->cot_entropy) return;
    for (int t = 0; t < r->cot_len; t++) {
        int b = t / s->entropy_bin;
        if (b >= s->n_bins) b = s->n_bins - 1; /* cot_len never exceeds cot_max; be safe */
        s->entropy_sum[b] += r->cot_entropy[t];
        s->entropy_count[b]++;
    }
}

double eval_pass_at_k(const EvalModeStats *s, int k) {
    if (k < 1 || k > s->n_samples || s->n_problems < 1) return NAN;
    double sum = 0;
    for (int p = 0; p < s->n_problems; p++) sum += pass_at_k(s->n_samples, s->n_correct[p], k);
    return sum / s->n_problems;
}

double eval_frac_correct(const EvalModeStats *s) {
    long c = 0;
    for (int p = 0; p < s->n_problems; p++) c += s->n_correct[p];
    return s->n_rollouts > 0 ? (double)c / (double)s->n_rollouts : NAN;
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int eval_run_mode(const Model *m, const Tokenizer *tok, const RolloutConfig *base, EvalMode mode,
                  const EvalTemps *temps, const EvalTask *tasks, int n_tasks, int n_samples,
                  int batch, int entropy_bin, EvalProgressFn progress, void *progress_ctx,
                  EvalModeStats *out, Err *err) {
    RolloutConfig cfg = *base;
    cfg.mode = eval_mode_cot(mode);
    eval_mode_settings(m, mode, temps, &cfg.cot_temperature, &cfg.sigma, &cfg.ans_temperature);
    cfg.step = 0;
    cfg.record_entropy = 1;
    cfg.record_topk = 0;
    if (batch < 1) batch = 1;
    eval_stats_init(out, mode, n_tasks, n_samples, cfg.cot_max, entropy_bin);
    out->cot_temperature = cfg.cot_temperature;
    out->sigma = cfg.sigma;
    out->ans_temperature = cfg.ans_temperature;

    const long total = (long)n_tasks * n_samples;
    const double t0 = now_seconds();
    /* A chunk covers rollouts [first, first + batch) of the (problem, sample) order; a
     * problem whose samples straddle two chunks becomes two requests (first_sample keeps
     * the sample indices, hence the random streams, unchanged). */
    RolloutRequest *req = xmalloc((size_t)(batch + 1) * sizeof *req);
    for (long first = 0; first < total; first += batch) {
        const long end = first + batch < total ? first + batch : total;
        int n_req = 0;
        for (long g = first; g < end;) {
            const int p = (int)(g / n_samples), s = (int)(g % n_samples);
            const int take = (int)(end - g < n_samples - s ? end - g : n_samples - s);
            req[n_req++] = (RolloutRequest){.prompt_index = p, .prompt = tasks[p].ids, .n_prompt = tasks[p].n_ids,
                                            .first_sample = s, .n_samples = take};
            g += take;
        }
        RolloutBatch rb;
        if (rollouts_generate(m, tok, &cfg, req, n_req, batch, &rb, err)) {
            free(req);
            eval_stats_free(out);
            return -1;
        }
        for (int i = 0; i < rb.n; i++) {
            const Rollout *r = &rb.r[i];
            eval_stats_add(out, r, reward_score(r->ans_text, tasks[r->prompt_index].gold));
        }
        out->gen_rows += rb.gen_rows;
        rollouts_free(&rb);
        out->seconds = now_seconds() - t0;
        if (progress) progress(progress_ctx, mode, end, total, out->cot_tokens + out->ans_tokens, out->seconds);
    }
    free(req);
    return 0;
}

/* ---- teacher-forced log-likelihood ---- */

static int cmp_len_desc(const void *a, const void *b, void *ctx) {
    const LoglikSeq *s = ctx;
    const int ia = *(const int *)a, ib = *(const int *)b;
    if (s[ia].n != s[ib].n) return s[ib].n - s[ia].n;
    return ia - ib;
}

void eval_loglik(const Model *m, const LoglikSeq *seqs, int n, int max_rows, double *loglik) {
    if (n <= 0) return;
    const int V = m->cfg.vocab_size;
    /* Longest first, so each call's sequences have similar lengths: the KV cache of a
     * call is n_slots x longest, which then stays close to the rows it actually holds. */
    int *order = xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof(int), cmp_len_desc, (void *)seqs);
    int longest = seqs[order[0]].n;
    int cap = max_rows > longest ? max_rows : longest;
    int *slot = xmalloc((size_t)n * sizeof(int)), *start = xcalloc((size_t)n, sizeof(int));
    int *len = xmalloc((size_t)n * sizeof(int));
    int *tokens = xmalloc((size_t)cap * sizeof(int)), *target = xmalloc((size_t)cap * sizeof(int));
    float *logp = xmalloc((size_t)cap * sizeof(float));
    int *d_target = dev_alloc((size_t)cap * sizeof(int));
    float *d_logp = dev_alloc((size_t)cap * sizeof(float));
    for (int a = 0; a < n;) {
        int b = a, rows = 0;
        while (b < n && (b == a || rows + seqs[order[b]].n <= cap)) rows += seqs[order[b++]].n;
        const int n_seq = b - a;
        RunShape shape = {.max_rows = rows, .n_slots = n_seq, .max_seq = seqs[order[a]].n, .train = 0};
        RunState rs;
        runstate_init(&rs, &m->cfg, shape);
        int row = 0;
        for (int k = 0; k < n_seq; k++) {
            const LoglikSeq *s = &seqs[order[a + k]];
            CHECK(s->n_ctx >= 1 && s->n_ctx < s->n && s->n <= m->cfg.max_seq);
            slot[k] = k;
            len[k] = s->n;
            memcpy(tokens + row, s->ids, (size_t)s->n * sizeof(int));
            /* row t predicts token t + 1; only continuation tokens are scored */
            for (int t = 0; t < s->n; t++) target[row + t] = t + 1 >= s->n_ctx && t + 1 < s->n ? s->ids[t + 1] : -1;
            row += s->n;
        }
        ForwardInput in = {.n_seq = n_seq, .slot = slot, .start = start, .len = len, .tokens = tokens, .vectors = NULL};
        model_forward(m, &rs, &in, 0);
        dev_upload(d_target, target, (size_t)rows * sizeof(int));
        op_logprob_forward(d_logp, rs.logits, d_target, rows, V, 1.0f);
        dev_download(logp, d_logp, (size_t)rows * sizeof(float));
        row = 0;
        for (int k = 0; k < n_seq; k++) {
            const int i = order[a + k];
            double sum = 0;
            for (int t = 0; t < seqs[i].n; t++)
                if (target[row + t] >= 0) sum += logp[row + t];
            loglik[i] = sum;
            row += seqs[i].n;
        }
        runstate_free(&rs);
        a = b;
    }
    dev_free(d_target), dev_free(d_logp);
    free(order), free(slot), free(start), free(len), free(tokens), free(target), free(logp);
}

static int encode_text(const Tokenizer *tok, const char *text, int add_special, int **ids, int *n, Err *err) {
    return tokenizer_encode(tok, text, strlen(text), add_special, ids, n, err);
}

int eval_mc(const Model *m, const Tokenizer *tok, const McSet *set, int n, int max_rows, McResult *out,
            Err *err) {
    memset(out, 0, sizeof *out);
    if (n > set->n) n = set->n;
    int n_seq = 0;
    for (int i = 0; i < n; i++) n_seq += set->items[i].n_choices;
    LoglikSeq *seqs = xcalloc((size_t)(n_seq ? n_seq : 1), sizeof *seqs);
    int **owned = xcalloc((size_t)(n_seq ? n_seq : 1), sizeof *owned);
    int *n_cont = xcalloc((size_t)(n_seq ? n_seq : 1), sizeof(int));
    double *ll = xcalloc((size_t)(n_seq ? n_seq : 1), sizeof(double));
    int *truncated = xcalloc((size_t)(n ? n : 1), sizeof(int));
    const int max_len = m->cfg.max_seq;
    int q = 0, rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const McItem *it = &set->items[i];
        if (it->n_choices < 1 || it->correct < 0 || it->correct >= it->n_choices) {
            rc = err_set(err, "line %d: the correct choice %d is not one of the %d choices", it->line, it->correct,
                         it->n_choices);
            break;
        }
        ByteBuf ctx = {0};
        bytebuf_append(&ctx, "Question: ", 10);
        bytebuf_append(&ctx, it->question, strlen(it->question));
        bytebuf_append(&ctx, "\nAnswer:", 8);
        int *ctx_ids = NULL, n_ctx_ids = 0;
        if (encode_text(tok, ctx.p, 1, &ctx_ids, &n_ctx_ids, err)) {
            free(ctx.p);
            rc = -1;
            break;
        }
        for (int c = 0; c < it->n_choices; c++, q++) {
            ByteBuf whole = {0};
            bytebuf_append(&whole, ctx.p, ctx.n);
            bytebuf_putc(&whole, ' ');
            bytebuf_append(&whole, it->choices[c], strlen(it->choices[c]));
            int *ids = NULL, nw = 0;
            rc = encode_text(tok, whole.p, 1, &ids, &nw, err);
            free(whole.p);
            if (rc) break;
            /* Continuation = the whole text's tokens after the context's own token count;
             * at least one token, even if the boundary merged (an empty choice). */
            int nc = n_ctx_ids < nw ? n_ctx_ids : nw - 1;
            int cont = nw - nc;
            if (nc < 1 || cont < 1) {
                free(ids);
                rc = err_set(err, "line %d, choice %d: the choice text adds no token", it->line, c);
                break;
            }
            /* Too long for the model: drop context tokens from the left, keeping the
             * first one (BOS); if the choice alone is still too long, cut its tail. */
            if (nw > max_len) {
                truncated[i] = 1;
                int drop = nw - max_len;
                if (drop > nc - 1) drop = nc - 1;
                memmove(ids + 1, ids + 1 + drop, (size_t)(nw - 1 - drop) * sizeof(int));
                nc -= drop;
                nw -= drop;
                if (nw > max_len) nw = max_len;
                cont = nw - nc;
            }
            owned[q] = ids;
            seqs[q] = (LoglikSeq){.ids = ids, .n = nw, .n_ctx = nc};
            n_cont[q] = cont;
        }
        free(ctx_ids);
        free(ctx.p);
    }
    if (rc == 0) {
        eval_loglik(m, seqs, n_seq, max_rows, ll);
        out->n_items = n;
        out->predicted = xmalloc((size_t)(n ? n : 1) * sizeof(int));
        out->correct = xmalloc((size_t)(n ? n : 1) * sizeof(int));
        q = 0;
        for (int i = 0; i < n; i++) {
            const McItem *it = &set->items[i];
            int best = 0, best_norm = 0;
            for (int c = 0; c < it->n_choices; c++) {
                if (ll[q + c] > ll[q + best]) best = c;
                if (ll[q + c] / n_cont[q + c] > ll[q + best_norm] / n_cont[q + best_norm]) best_norm = c;
            }
            const int g = it->correct;
            out->predicted[i] = best;
            out->correct[i] = g;
            out->n_correct += best == g;
            out->n_correct_norm += best_norm == g;
            out->n_truncated += truncated[i];
            out->sum_nll_token += -ll[q + g] / n_cont[q + g];
            out->sum_tokens_correct += n_cont[q + g];
            q += it->n_choices;
        }
    }
    for (int i = 0; i < n_seq; i++) free(owned[i]);
    free(owned), free(seqs), free(n_cont), free(ll), free(truncated);
    return rc;
}

void eval_mc_free(McResult *r) {
    free(r->predicted), free(r->correct);
    memset(r, 0, sizeof *r);
}
