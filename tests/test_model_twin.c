/* The C model against its PyTorch twin (tests/twin/twin.py): for each random tiny config
 * (Llama with GQA and llama3 rope scaling, Qwen2 with biases and tied embeddings, Llama
 * with head_dim != hidden/heads), compare logits of a packed batch whose inputs mix token
 * ids and vectors, every parameter gradient for a fixed upstream logit gradient,
 * micro-batch gradient accumulation, and batched KV-cache decoding. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test.h"
#include "twin_case.h"

static const char *CASES[] = {"llama_gqa_rope3", "qwen2_bias_tied", "llama_headdim_tied", "qwen2_mqa_untied"};

typedef struct {
    int T, B, d, V;
    int *tokens, *seq_lens;
    float *vectors, *logits, *dlogits;
} Ref;


/* Runs sequences [first, first+count) of the reference batch through a training forward
 * and backward, accumulating into grads. Returns the logits (host) of those rows. */
static float *forward_backward(const Model *m, const Ref *r, int first, int count, float *grads) {
    int row0 = 0;
    for (int s = 0; s < first; s++) row0 += r->seq_lens[s];
    int rows = 0, max_len = 0;
    for (int s = first; s < first + count; s++) {
        rows += r->seq_lens[s];
        max_len = r->seq_lens[s] > max_len ? r->seq_lens[s] : max_len;
    }
    RunState rs;
    runstate_init(&rs, &m->cfg, (RunShape){.max_rows = rows, .n_slots = count, .max_seq = max_len, .train = 1});
    int *slot = xmalloc(sizeof(int) * count), *start = xcalloc(count, sizeof(int));
    for (int s = 0; s < count; s++) slot[s] = count - 1 - s; /* slots need not follow row order */
    float *d_vec = dev_alloc(sizeof(float) * rows * r->d);
    dev_upload(d_vec, r->vectors + (size_t)row0 * r->d, sizeof(float) * rows * r->d);
    ForwardInput in = {.n_seq = count, .slot = slot, .start = start, .len = r->seq_lens + first,
                       .tokens = r->tokens + row0, .vectors = d_vec};
    model_forward(m, &rs, &in, 0);
    float *logits = xmalloc(sizeof(float) * rows * r->V);
    dev_download(logits, rs.logits, sizeof(float) * rows * r->V);
    float *d_dl = dev_alloc(sizeof(float) * rows * r->V);
    dev_upload(d_dl, r->dlogits + (size_t)row0 * r->V, sizeof(float) * rows * r->V);
    model_backward(m, &rs, d_dl, grads);
    dev_free(d_dl);
    dev_free(d_vec);
    free(slot);
    free(start);
    runstate_free(&rs);
    return logits;
}

/* Decodes every sequence one position at a time after a short prefill, all sequences in
 * one batch; sequences drop out as they end. Returns the max relative row error against
 * the reference logits. */
static double decode_error(const Model *m, const Ref *r) {
    int max_len = 0;
    for (int s = 0; s < r->B; s++) max_len = r->seq_lens[s] > max_len ? r->seq_lens[s] : max_len;
    RunState rs;
    runstate_init(&rs, &m->cfg, (RunShape){.max_rows = r->T, .n_slots = r->B, .max_seq = max_len, .train = 0});
    int *row0 = xmalloc(sizeof(int) * r->B), *done = xcalloc(r->B, sizeof(int));
    for (int s = 0, acc = 0; s < r->B; s++) {
        row0[s] = acc;
        acc += r->seq_lens[s];
    }
    int *slot = xmalloc(sizeof(int) * r->B), *start = xmalloc(sizeof(int) * r->B);
    int *len = xmalloc(sizeof(int) * r->B), *seq = xmalloc(sizeof(int) * r->B);
    int *tokens = xmalloc(sizeof(int) * r->T);
    float *vec = xmalloc(sizeof(float) * r->T * r->d), *d_vec = dev_alloc(sizeof(float) * r->T * r->d);
    float *logits = xmalloc(sizeof(float) * r->T * r->V);
    double worst = 0;
    for (;;) {
        int n = 0, rows = 0;
        for (int s = 0; s < r->B; s++) {
            if (done[s] >= r->seq_lens[s]) continue;
            /* prefill s+1 positions first (different prompt lengths), then one at a time */
            int take = done[s] == 0 ? (s + 1 < r->seq_lens[s] ? s + 1 : r->seq_lens[s]) : 1;
            seq[n] = s;
            slot[n] = s;
            start[n] = done[s];
            len[n] = take;
            memcpy(tokens + rows, r->tokens + row0[s] + done[s], sizeof(int) * take);
            memcpy(vec + (size_t)rows * r->d, r->vectors + (size_t)(row0[s] + done[s]) * r->d,
                   sizeof(float) * take * r->d);
            rows += take;
            n++;
        }
        if (n == 0) break;
        dev_upload(d_vec, vec, sizeof(float) * rows * r->d);
        ForwardInput in = {.n_seq = n, .slot = slot, .start = start, .len = len, .tokens = tokens, .vectors = d_vec};
        model_forward(m, &rs, &in, 0);
        dev_download(logits, rs.logits, sizeof(float) * rows * r->V);
        for (int i = 0, row = 0; i < n; i++) {
            int s = seq[i];
            for (int j = 0; j < len[i]; j++, row++) {
                const float *want = r->logits + (size_t)(row0[s] + start[i] + j) * r->V;
                double e = rel_err_f(logits + (size_t)row * r->V, want, r->V);
                worst = e > worst ? e : worst;
            }
            done[s] += len[i];
        }
    }
    free(row0), free(done), free(slot), free(start), free(len), free(seq), free(tokens);
    free(vec), free(logits);
    dev_free(d_vec);
    runstate_free(&rs);
    return worst;
}

static void run_case(const char *name, const char *tmp) {
    char label[256];
    Model m;
    StFile f;
    if (!twin_case_open("tests/twin/twin.py", name, tmp, "ref.safetensors", NULL, &m, &f)) return;
    const ModelConfig cfg = m.cfg;
    Ref r = {.d = cfg.dim, .V = cfg.vocab_size};
    size_t nt = 0, nb = 0;
    r.tokens = twin_read_i32(&f, "tokens", &nt);
    r.seq_lens = twin_read_i32(&f, "seq_lens", &nb);
    r.T = (int)nt;
    r.B = (int)nb;
    r.vectors = twin_read_f32(&f, "vectors", nt * r.d);
    r.logits = twin_read_f32(&f, "logits", nt * r.V);
    r.dlogits = twin_read_f32(&f, "dlogits", nt * r.V);
    int n_vec = 0;
    for (int i = 0; i < r.T; i++) n_vec += r.tokens && r.tokens[i] < 0;
    snprintf(label, sizeof label, "%s: reference has tokens, vectors, logits, dlogits", name);
    TEST_EXPECT(r.tokens && r.seq_lens && r.vectors && r.logits && r.dlogits && n_vec > 0 && r.B > 1,
                label, "missing or malformed reference tensors (vector positions: %d)", n_vec);
    if (!(r.tokens && r.seq_lens && r.vectors && r.logits && r.dlogits)) goto out;

    {
        const size_t P = m.layout.n_floats;
        float *grads = dev_alloc(P * sizeof(float));
        float *logits = forward_backward(&m, &r, 0, r.B, grads);
        double e = rel_err_f(logits, r.logits, (size_t)r.T * r.V);
        snprintf(label, sizeof label, "%s: logits of packed batch (%d rows, %d vector inputs) within 1e-5", name, r.T, n_vec);
        TEST_EXPECT(e <= 1e-5, label, "relative error %.3g", e);
        free(logits);

        float *g = xmalloc(P * sizeof(float));
        dev_download(g, grads, P * sizeof(float));
        int bad = 0, checked = 0;
        double worst = 0;
        const char *worst_name = "";
        for (int i = 0; i < m.layout.n_tensors; i++) {
            const ParamTensor *t = &m.layout.tensors[i];
            char gname[PARAM_NAME_MAX + 8];
            snprintf(gname, sizeof gname, "grad.%s", t->name);
            float *want = twin_read_f32(&f, gname, t->numel);
            if (!want) {
                bad++;
                printf("# %s: reference lacks %s\n", name, gname);
                continue;
            }
            double ge = rel_err_f(g + t->offset, want, t->numel);
            if (ge > worst) worst = ge, worst_name = t->name;
            if (ge > 1e-4) {
                bad++;
                printf("# %s: %s relative error %.3g\n", name, t->name, ge);
            }
            checked++;
            free(want);
        }
        snprintf(label, sizeof label, "%s: all %d parameter gradients within 1e-4 (worst %.2g, %s)", name, checked, worst, worst_name);
        TEST_EXPECT(bad == 0 && checked == m.layout.n_tensors, label, "%d tensors off", bad);

        /* gradient accumulation: two micro-batches sum to the full-batch gradient */
        float *acc = dev_alloc(P * sizeof(float));
        free(forward_backward(&m, &r, 0, 1, acc));
        free(forward_backward(&m, &r, 1, r.B - 1, acc));
        float *ga = xmalloc(P * sizeof(float));
        dev_download(ga, acc, P * sizeof(float));
        double ae = rel_err_f(ga, g, P);
        snprintf(label, sizeof label, "%s: micro-batch gradients accumulate to the full-batch gradient", name);
        TEST_EXPECT(ae <= 1e-5, label, "relative error %.3g", ae);
        free(ga);
        free(g);
        dev_free(acc);
        dev_free(grads);

        double de = decode_error(&m, &r);
        snprintf(label, sizeof label, "%s: batched KV-cache decode of unequal lengths matches full forward", name);
        TEST_EXPECT(de <= 1e-5, label, "worst row relative error %.3g", de);
    }
out:
    free(r.tokens), free(r.seq_lens), free(r.vectors), free(r.logits), free(r.dlogits);
    st_close(&f);
    model_free(&m);
}

int main(void) {
    return twin_run_cases("softcot_twin", CASES, (int)(sizeof CASES / sizeof CASES[0]), run_case);
}
