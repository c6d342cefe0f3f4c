#include "rl/sft.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/lr_schedule.h"
#include "core/rng.h"
#include "core/bytebuf.h"
#include "text/prompt.h"

/* ---- examples ---------------------------------------------------------------------- */

char *sft_worked_solution(const char *ans) {
    /* the last "####" starts GSM8K's final-answer line */
    const char *end = ans + strlen(ans);
    for (const char *p = strstr(ans, "####"); p; p = strstr(p + 1, "####")) end = p;
    ByteBuf s = {0};
    for (const char *p = ans; p < end;) {
        const char *close = p[0] == '<' && p[1] == '<' ? strstr(p + 2, ">>") : NULL;
        if (close && close < end) { /* drop the calculator annotation <<48/2=24>> */
            p = close + 2;
            continue;
        }
        bytebuf_putc(&s, *p++);
    }
    char *out = s.p ? s.p : xstrdup("");
    size_t a = 0, b = strlen(out);
    while (a < b && isspace((unsigned char)out[a])) a++;
    while (b > a && isspace((unsigned char)out[b - 1])) b--;
    memmove(out, out + a, b - a);
    out[b - a] = '\0';
    return out;
}

/* Appends the ids of text (no special template) to ids[*n..]. */
static int append_encoded(const Tokenizer *tok, const char *text, int add_special, int **ids, int *n,
                          int *cap, Err *err) {
    int *part, np;
    if (tokenizer_encode(tok, text, strlen(text), add_special, &part, &np, err)) return -1;
    if (*n + np + 1 > *cap) {
        *cap = 2 * (*n + np + 1);
        *ids = xrealloc(*ids, (size_t)*cap * sizeof(int));
    }
    memcpy(*ids + *n, part, (size_t)np * sizeof(int));
    *n += np;
    free(part);
    return 0;
}

int sft_example_build(const Tokenizer *tok, const SftFormat *fmt, const char *question,
                      const char *solution, const char *answer, SftExample *ex, Err *err) {
    memset(ex, 0, sizeof *ex);
    char *prompt = NULL;
    if (prompt_build(fmt->template_text, question, CHAT_NONE, NULL, &prompt, err)) return -1;
    ByteBuf cot = {0}, ans = {0};
    /* The CoT segment: " [<lead-in> ]<solution> <stop string>"; an empty solution gives " <stop>". */
    if (solution && *solution) {
        if (fmt->lead_in && *fmt->lead_in) bytebuf_printf(&cot, " %s", fmt->lead_in);
        bytebuf_printf(&cot, " %s", solution);
    }
    bytebuf_printf(&cot, " %s", fmt->stop_string);
    bytebuf_printf(&ans, "%s}", answer);
    int *ids = NULL, n = 0, cap = 0, rc = 0;
    rc = append_encoded(tok, prompt, 1, &ids, &n, &cap, err);
    int n_prompt = n;
    if (!rc) rc = append_encoded(tok, cot.p, 0, &ids, &n, &cap, err);
    if (!rc) rc = append_encoded(tok, fmt->prefill, 0, &ids, &n, &cap, err);
    if (!rc) rc = append_encoded(tok, ans.p, 0, &ids, &n, &cap, err);
    free(prompt), free(cot.p), free(ans.p);
    if (rc) {
        free(ids);
        return -1;
    }
    int eos = tokenizer_eos_id(tok);
    if (eos >= 0) ids[n++] = eos; /* append_encoded left room for one more id */
    ex->ids = ids;
    ex->n = n;
    ex->n_prompt = n_prompt;
    return 0;
}

void sft_example_free(SftExample *ex) {
    free(ex->ids);
    memset(ex, 0, sizeof *ex);
}

int sft_row_targets(const SftExample *ex, int *tgt) {
    int count = 0;
    for (int r = 0; r < ex->n; r++) {
        int next = r + 1;
        tgt[r] = next < ex->n && next >= ex->n_prompt ? ex->ids[next] : -1;
        count += tgt[r] >= 0;
    }
    return count;
}

/* ---- data order -------------------------------------------------------------------- */

/* A keyed bijection of [0, 2^(2*half)) (4-round Feistel network); cycle-walking
 * restricts it to [0, n). The domain is < 4n, so a few rounds on average. */
static uint64_t feistel(uint64_t x, int half, const uint32_t keys[4]) {
    const uint64_t mask = (1ull << half) - 1;
    uint64_t l = x >> half, r = x & mask;
    for (int i = 0; i < 4; i++) {
        uint64_t f = rng_splitmix64(r ^ ((uint64_t)keys[i] << 32)) & mask;
        uint64_t nl = r;
        r = l ^ f;
        l = nl;
    }
    return (l << half) | r;
}

int64_t sft_example_at(uint64_t seed, int64_t p, int64_t n) {
    CHECK(n > 0 && p >= 0);
    uint64_t epoch = (uint64_t)(p / n), i = (uint64_t)(p % n);
    int half = 1;
    while ((1ull << (2 * half)) < (uint64_t)n) half++;
    uint32_t keys[4];
    RngKey k = {.seed = seed, .purpose = RNG_PURPOSE_DATA, .step = (uint32_t)epoch,
                .prompt = (uint32_t)(epoch >> 32)};
    rng_block(k, 0, keys);
    do i = feistel(i, half, keys);
    while (i >= (uint64_t)n);
    return (int64_t)i;
}

int sft_answer_only(uint64_t seed, int i, float share) {
    RngKey k = {.seed = seed, .purpose = RNG_PURPOSE_DATA, .sample = 1, .prompt = (uint32_t)i};
    return rng_uniform(k, 0) < share;
}

/* ---- training ---------------------------------------------------------------------- */

void sft_state_init(SftState *st, Model *model, int max_rows, int max_seqs, int max_seq) {
    CHECK(max_rows >= max_seq && max_seqs > 0 && max_seq > 1);
    memset(st, 0, sizeof *st);
    st->model = model;
    st->max_rows = max_rows;
    st->max_seqs = max_seqs;
    st->max_seq = max_seq;
    const size_t P = model->layout.n_floats, R = (size_t)max_rows, V = model->cfg.vocab_size;
    st->grads = dev_alloc(P * sizeof(float));
    st->adam_m = dev_alloc(P * sizeof(float));
    st->adam_v = dev_alloc(P * sizeof(float));
    runstate_init(&st->rs, &model->cfg,
                  (RunShape){.max_rows = max_rows, .n_slots = max_seqs, .max_seq = max_seq, .train = 1});
    st->d_dlogits = dev_alloc(R * V * sizeof(float));
    st->d_logp = dev_alloc(R * sizeof(float));
    st->d_dlogp = dev_alloc(R * sizeof(float));
    st->d_tgt = dev_alloc(R * sizeof(int));
    st->h_logp = xmalloc(R * sizeof(float));
    st->h_dlogp = xmalloc(R * sizeof(float));
    st->h_tokens = xmalloc(R * sizeof(int));
    st->h_tgt = xmalloc(R * sizeof(int));
    st->h_slot = xmalloc((size_t)max_seqs * sizeof(int));
    st->h_start = xcalloc((size_t)max_seqs, sizeof(int));
    st->h_len = xmalloc((size_t)max_seqs * sizeof(int));
}

void sft_state_free(SftState *st) {
    dev_free(st->grads), dev_free(st->adam_m), dev_free(st->adam_v);
    runstate_free(&st->rs);
    dev_free(st->d_dlogits), dev_free(st->d_logp), dev_free(st->d_dlogp), dev_free(st->d_tgt);
    free(st->h_logp), free(st->h_dlogp), free(st->h_tokens), free(st->h_tgt);
    free(st->h_slot), free(st->h_start), free(st->h_len);
    memset(st, 0, sizeof *st);
}

/* One forward (and backward) over ex[0..n), which must fit the state. */
static double micro_batch(SftState *st, const SftExample *const *ex, int n, int backward, float scale,
                          long *n_targets) {
    const Model *m = st->model;
    const int V = m->cfg.vocab_size;
    int rows = 0;
    for (int i = 0; i < n; i++) {
        CHECK(ex[i]->n <= st->max_seq);
        st->h_slot[i] = i;
        st->h_len[i] = ex[i]->n;
        memcpy(st->h_tokens + rows, ex[i]->ids, (size_t)ex[i]->n * sizeof(int));
        *n_targets += sft_row_targets(ex[i], st->h_tgt + rows);
        rows += ex[i]->n;
    }
    CHECK(rows <= st->max_rows);
    ForwardInput in = {.n_seq = n, .slot = st->h_slot, .start = st->h_start, .len = st->h_len,
                       .tokens = st->h_tokens, .vectors = NULL};
    model_forward(m, &st->rs, &in, 0);
    dev_upload(st->d_tgt, st->h_tgt, (size_t)rows * sizeof(int));
    op_logprob_forward(st->d_logp, st->rs.logits, st->d_tgt, rows, V, 1.0f);
    dev_download(st->h_logp, st->d_logp, (size_t)rows * sizeof(float));
    double nll = 0;
    for (int r = 0; r < rows; r++) nll -= st->h_logp[r]; /* non-target rows hold 0 */
    if (backward) {
        /* d(scale * -sum logp)/dlogp = -scale on target rows (op_logprob_backward skips
         * the others) */
        for (int r = 0; r < rows; r++) st->h_dlogp[r] = -scale;
        dev_upload(st->d_dlogp, st->h_dlogp, (size_t)rows * sizeof(float));
        dev_zero(st->d_dlogits, (size_t)rows * V * sizeof(float));
        op_logprob_backward(st->d_dlogits, st->d_dlogp, st->rs.logits, st->d_tgt, rows, V, 1.0f);
        model_backward(m, &st->rs, st->d_dlogits, st->grads);
    }
    return nll;
}

double sft_nll(SftState *st, const SftExample *const *ex, int n, int backward, float scale,
               long *n_targets) {
    double nll = 0;
    *n_targets = 0;
    for (int i = 0; i < n;) {
        /* greedy packing: as many whole examples as the row and slot budgets allow */
        int j = i, rows = 0;
        while (j < n && j - i < st->max_seqs && rows + ex[j]->n <= st->max_rows) rows += ex[j++]->n;
        CHECK(j > i); /* sft_state_init guarantees one example always fits */
        nll += micro_batch(st, ex + i, j - i, backward, scale, n_targets);
        i = j;
    }
    return nll;
}

int sft_step(SftState *st, const SftParams *p, const SftExample *set, int n_set, SftStepStats *stats,
             Err *err) {
    CHECK(p->batch > 0 && n_set > 0);
    Model *m = st->model;
    const SftExample **batch = xmalloc((size_t)p->batch * sizeof *batch);
    long tokens = 0, targets = 0;
    for (int j = 0; j < p->batch; j++) {
        batch[j] = &set[sft_example_at(p->seed, (int64_t)st->step * p->batch + j, n_set)];
        tokens += batch[j]->n;
        targets += batch[j]->n - batch[j]->n_prompt;
    }
    const size_t P = m->layout.n_floats;
    dev_zero(st->grads, P * sizeof(float));
    long counted;
    /* scale 1/targets: the gradient of the mean over the batch's target tokens */
    double nll = sft_nll(st, batch, p->batch, 1, targets > 0 ? 1.0f / (float)targets : 0.0f, &counted);
    free(batch);
    CHECK(counted == targets);
    double gnorm = sqrt(op_sumsq(st->grads, P));
    memset(stats, 0, sizeof *stats);
    stats->loss = targets > 0 ? nll / (double)targets : 0.0;
    stats->grad_norm = gnorm;
    stats->tokens = tokens;
    stats->targets = targets;
    stats->lr = lr_at(st->step, p->steps, p->warmup, p->lr, p->min_lr_ratio);
    if (!isfinite(nll) || !isfinite(gnorm))
        return err_set(err, "sft step %d: non-finite loss (%g) or gradient norm (%g); try a lower --lr",
                       st->step, stats->loss, gnorm);
    if (p->grad_clip > 0 && gnorm > p->grad_clip) op_scale(st->grads, (float)(p->grad_clip / gnorm), P);
    /* Decay only the 2-D weight matrices (GPT-2 / llm.c practice): pulling RMSNorm gains
     * towards 0 would fight the normalisation. */
    for (int t = 0; t < m->layout.n_tensors; t++) {
        const ParamTensor *pt = &m->layout.tensors[t];
        AdamWParams hp = {.lr = (float)stats->lr, .beta1 = p->beta1, .beta2 = p->beta2, .eps = p->adam_eps,
                          .weight_decay = pt->ndim == 2 ? p->weight_decay : 0.0f, .step = st->step + 1};
        op_adamw(m->params + pt->offset, st->grads + pt->offset, st->adam_m + pt->offset,
                 st->adam_v + pt->offset, pt->numel, hp);
    }
    st->step++;
    return 0;
}
