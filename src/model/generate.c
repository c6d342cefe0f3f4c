#include "model/generate.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

static int is_eos(const ModelConfig *c, int id) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return 1;
    return 0;
}

int generate(const Model *m, const int *prompt, int n_prompt, const GenerateOptions *opt,
             GenerateResult *res, Err *err) {
    const ModelConfig *c = &m->cfg;
    const int S = opt->n_samples, V = c->vocab_size;
    memset(res, 0, sizeof *res);
    if (n_prompt <= 0) return err_set(err, "generate: empty prompt");
    if (S <= 0) return err_set(err, "generate: need at least one sample");
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= V)
            return err_set(err, "generate: prompt token %d at position %d is outside the vocabulary [0, %d)",
                           prompt[i], i, V);
    if ((long)n_prompt + opt->max_new > c->max_seq)
        return err_set(err, "generate: prompt (%d) + max-new (%d) exceeds the model's max_position_embeddings (%d)",
                       n_prompt, opt->max_new, c->max_seq);

    RunShape shape = {.max_rows = S * n_prompt > S ? S * n_prompt : S,
                      .n_slots = S,
                      .max_seq = n_prompt + opt->max_new,
                      .train = 0,
                      .last_rows_only = 1};
    RunState rs;
    runstate_init(&rs, c, shape);
    res->n_samples = S;
    res->ids = xcalloc((size_t)S, sizeof(int *));
    res->n_ids = xcalloc((size_t)S, sizeof(int));
    for (int s = 0; s < S; s++) res->ids[s] = xmalloc((size_t)(opt->max_new > 0 ? opt->max_new : 1) * sizeof(int));

    int *slot = xmalloc((size_t)S * sizeof(int)), *start = xmalloc((size_t)S * sizeof(int));
    int *len = xmalloc((size_t)S * sizeof(int)), *tokens = xmalloc((size_t)shape.max_rows * sizeof(int));
    int *next = xmalloc((size_t)S * sizeof(int));
    float *u = xmalloc((size_t)S * sizeof(float));
    float *d_u = dev_alloc((size_t)S * sizeof(float));
    int *d_next = dev_alloc((size_t)S * sizeof(int));
    const float inv_temp = opt->temperature > 0 ? 1.0f / opt->temperature : 0.0f;

    /* Prefill: every sample gets its own copy of the prompt in its own slot. */
    int live = S;
    for (int s = 0; s < S; s++) {
        slot[s] = s;
        start[s] = 0;
        len[s] = n_prompt;
        memcpy(tokens + (size_t)s * n_prompt, prompt, (size_t)n_prompt * sizeof(int));
    }
    ForwardInput in = {.n_seq = live, .slot = slot, .start = start, .len = len, .tokens = tokens};
    model_forward(m, &rs, &in, 1);

    for (int step = 0; step < opt->max_new && live > 0; step++) {
        for (int i = 0; i < live; i++) {
            RngKey key = {.seed = opt->seed, .sample = (uint32_t)slot[i],
                          .position = (uint32_t)(n_prompt + step), .purpose = RNG_PURPOSE_SAMPLE};
            u[i] = rng_uniform(key, 0);
        }
        dev_upload(d_u, u, (size_t)live * sizeof(float));
        op_sample(d_next, rs.logits, d_u, live, V, inv_temp);
        dev_download(next, d_next, (size_t)live * sizeof(int));
        /* record, then compact the batch to the samples that go on */
        int kept = 0;
        for (int i = 0; i < live; i++) {
            int s = slot[i];
            res->ids[s][res->n_ids[s]++] = next[i];
            if (opt->on_token) opt->on_token(opt->ctx, s, next[i]);
            if (opt->stop_at_eos && is_eos(c, next[i])) continue;
            slot[kept] = s;
            start[kept] = n_prompt + step;
            len[kept] = 1;
            tokens[kept] = next[i];
            kept++;
        }
        live = kept;
        if (live == 0 || step + 1 == opt->max_new) break;
        in.n_seq = live;
        model_forward(m, &rs, &in, 1);
        res->tokens_decoded += live;
    }
    free(slot), free(start), free(len), free(tokens), free(next), free(u);
    dev_free(d_u);
    dev_free(d_next);
    runstate_free(&rs);
    return 0;
}

void generate_result_free(GenerateResult *res) {
    for (int s = 0; s < res->n_samples; s++) free(res->ids[s]);
    free(res->ids);
    free(res->n_ids);
    memset(res, 0, sizeof *res);
}
