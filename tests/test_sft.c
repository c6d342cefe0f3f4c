/* The supervised warm start (rl/sft.h) and the learning-rate schedule (core/lr_schedule.h):
 * hand-computed schedule values; GSM8K solution cleaning; the example layout and its loss
 * mask; the loss equals a double-precision recomputation on exactly the target rows;
 * micro-batching does not change the gradient; the data order is a permutation per
 * epoch; training lowers the loss; lr 0 leaves the weights bit-identical; equal seeds
 * give bit-identical weights and different seeds do not.
 * The tokenizer is built in memory: the 256 GPT-2 byte tokens, no merges, <|bos|> and
 * <|eos|>, so every id below can be computed by hand from the bytes of the text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/lr_schedule.h"
#include "data/synth.h"
#include "model/init.h"
#include "model/model.h"
#include "core/bytebuf.h"
#include "rl/sft.h"
#include "test.h"
#include "text/tokenizer.h"

enum { BOS = 256, EOS = 257 };

/* GPT-2's byte -> character map, written as UTF-8 JSON keys. */
static void byte_char(int b, ByteBuf *out) {
    int cp;
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
        cp = b;
    } else {
        int k = 0; /* the k-th byte outside the printable ranges maps to 256 + k */
        for (int c = 0; c < b; c++)
            if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        if (cp == '"' || cp == '\\') bytebuf_putc(out, '\\');
        bytebuf_putc(out, (char)cp);
    } else {
        bytebuf_putc(out, (char)(0xC0 | (cp >> 6)));
        bytebuf_putc(out, (char)(0x80 | (cp & 0x3F)));
    }
}

static Tokenizer *byte_tokenizer(void) {
    ByteBuf j = {0};
    bytebuf_puts(&j, "{\"added_tokens\":[{\"id\":256,\"content\":\"<|bos|>\",\"special\":true},"
                  "{\"id\":257,\"content\":\"<|eos|>\",\"special\":true}],\"normalizer\":null,"
                  "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false},"
                  "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<|bos|>\"}},"
                  "{\"Sequence\":{\"id\":\"A\"}}],\"special_tokens\":{\"<|bos|>\":{\"id\":\"<|bos|>\",\"ids\":[256]}}},"
                  "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"merges\":[],\"vocab\":{");
    for (int b = 0; b < 256; b++) {
        bytebuf_puts(&j, b ? ",\"" : "\"");
        byte_char(b, &j);
        bytebuf_printf(&j, "\":%d", b);
    }
    bytebuf_puts(&j, "}}}");
    const char *cfg = "{\"bos_token\":\"<|bos|>\",\"eos_token\":\"<|eos|>\"}";
    Err err;
    Tokenizer *t = tokenizer_load_hf_mem(j.p, j.n, cfg, strlen(cfg), "byte tokenizer", &err);
    if (!t) FATAL("%s", err.msg);
    free(j.p);
    return t;
}

static const SftFormat FMT = {.template_text = "Q: {question}\nA:", .stop_string = "The final answer is:",
                              .prefill = " \\boxed{"};

static ModelConfig tiny_config(void) {
    ModelConfig c = {.arch = ARCH_LLAMA, .dim = 32, .hidden_dim = 64, .n_layers = 2, .n_heads = 4,
                     .n_kv_heads = 2, .head_dim = 8, .vocab_size = 258, .max_seq = 512, .norm_eps = 1e-5f,
                     .rope_theta = 10000.0f, .tied_embeddings = 1, .bos_id = BOS, .n_eos = 1, .eos_ids = {EOS}};
    return c;
}

/* A handful of problems of the built-in synthetic task (1-2 operations, so that the
 * byte-level examples stay short). */
enum { N_PROBLEMS = 8 };
static Dataset synthetic_problems(void) {
    SynthConfig sc;
    synth_config_default(&sc);
    sc.max_steps = 2;
    Dataset ds;
    Err err;
    if (synth_generate(&sc, SYNTH_TRAIN, N_PROBLEMS, &ds, &err)) FATAL("%s", err.msg);
    return ds;
}


static float *train_run(const Tokenizer *tok, const SftExample *set, int n, float lr, uint64_t seed, int steps,
                        double *first_loss, double *last_loss) {
    ModelConfig c = tiny_config();
    ParamLayout L;
    ParamOffsets O;
    param_layout_build(&L, &O, &c);
    float *host = xmalloc(L.n_floats * sizeof(float));
    param_init_random(&c, 42, 0.02f, host);
    Model m;
    model_init(&m, &c, host);
    SftState st;
    sft_state_init(&st, &m, 2048, 4, 512);
    SftParams p = {.steps = steps, .warmup = 3, .batch = 4, .lr = lr, .min_lr_ratio = 0.1f, .beta1 = 0.9f,
                   .beta2 = 0.95f, .adam_eps = 1e-8f, .weight_decay = 0.1f, .grad_clip = 1.0f, .seed = seed};
    Err err;
    for (int s = 0; s < steps; s++) {
        SftStepStats stats;
        if (sft_step(&st, &p, set, n, &stats, &err)) FATAL("%s", err.msg);
        if (s == 0 && first_loss) *first_loss = stats.loss;
    }
    (void)tok;
    if (last_loss) { /* mean loss over the whole set after training */
        const SftExample **all = xmalloc((size_t)n * sizeof *all);
        for (int i = 0; i < n; i++) all[i] = &set[i];
        long nt;
        *last_loss = sft_nll(&st, all, n, 0, 0.0f, &nt) / (double)nt;
        free(all);
    }
    model_download_params(&m, host);
    sft_state_free(&st);
    model_free(&m);
    param_layout_free(&L, &O);
    return host;
}

int main(void) {
    /* ---- lr_at: warm-up 10, 110 steps, peak 1e-3, floor 1e-4 ---- */
    struct { int step; float want; } pts[] = {
        {0, 1e-4f}, {4, 5e-4f}, {9, 1e-3f}, {10, 1e-3f},
        {35, 1e-4f + 9e-4f * 0.8535533906f}, /* cos(pi/4) */
        {60, 5.5e-4f}, {109, 1e-4f + 9e-4f * 0.5f * (1.0f + cosf(3.14159265f * 99.0f / 100.0f))},
        {110, 1e-4f}, {500, 1e-4f}};
    int lr_ok = 1;
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        float got = lr_at(pts[i].step, 110, 10, 1e-3f, 0.1f);
        if (fabsf(got - pts[i].want) > 1e-9f) {
            lr_ok = 0;
            printf("# lr_at(%d) = %.9g, want %.9g\n", pts[i].step, got, pts[i].want);
        }
    }
    TEST_EXPECT(lr_ok, "lr_at: linear warm-up then cosine to the floor at hand-computed steps", "mismatch");
    TEST_EXPECT(lr_at(0, 100, 0, 2e-3f, 0.0f) == 2e-3f && lr_at(50, 100, 0, 2e-3f, 1.0f) == 2e-3f &&
                    fabsf(lr_at(50, 100, 0, 2e-3f, 0.0f) - 1e-3f) < 1e-9f,
                "lr_at: no warm-up starts at the peak; min_ratio 1 is constant; halfway is half", "got %g %g %g",
                lr_at(0, 100, 0, 2e-3f, 0.0f), lr_at(50, 100, 0, 2e-3f, 1.0f), lr_at(50, 100, 0, 2e-3f, 0.0f));

    /* ---- GSM8K worked solution ---- */
    char *sol = sft_worked_solution("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
                                    "Natalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72");
    TEST_EXPECT(!strcmp(sol, "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips."),
                "worked solution: text before ####, calculator annotations removed, trimmed", "got '%s'", sol);
    free(sol);

    /* ---- example layout: every id computed from the bytes ---- */
    Tokenizer *tok = byte_tokenizer();
    Err err;
    SftExample ex;
    CHECK(sft_example_build(tok, &FMT, "1+1", "1+1=2.", "2", &ex, &err) == 0);
    const char *prompt = "Q: 1+1\nA:", *target = " 1+1=2. The final answer is: \\boxed{2}";
    int want[128], nw = 0;
    want[nw++] = BOS;
    for (const char *s = prompt; *s; s++) want[nw++] = (unsigned char)*s;
    int want_prompt = nw;
    for (const char *s = target; *s; s++) want[nw++] = (unsigned char)*s;
    want[nw++] = EOS;
    TEST_EXPECT(ex.n == nw && ex.n_prompt == want_prompt && !memcmp(ex.ids, want, sizeof(int) * nw),
                "example = BOS + prompt | ' solution The final answer is:' ' \\boxed{' 'N}' EOS", "n %d (want %d), n_prompt %d (want %d)",
                ex.n, nw, ex.n_prompt, want_prompt);
    sft_example_free(&ex);

    /* ---- a lead-in goes before a worked solution, never into an answer-only target ---- */
    {
        SftFormat lead = FMT;
        lead.lead_in = "So:";
        const char *cases[2][2] = {{"1+1=2.", " So: 1+1=2. The final answer is: \\boxed{2}"},
                                   {"", " The final answer is: \\boxed{2}"}};
        for (int c = 0; c < 2; c++) {
            CHECK(sft_example_build(tok, &lead, "1+1", cases[c][0], "2", &ex, &err) == 0);
            nw = want_prompt;
            for (const char *s = cases[c][1]; *s; s++) want[nw++] = (unsigned char)*s;
            want[nw++] = EOS;
            TEST_EXPECT(ex.n == nw && ex.n_prompt == want_prompt && !memcmp(ex.ids, want, sizeof(int) * nw),
                        c == 0 ? "lead-in: ' So: solution The final answer is:' ..."
                               : "lead-in: an answer-only example has none",
                        "n %d (want %d)", ex.n, nw);
            sft_example_free(&ex);
        }
    }

    /* ---- loss mask on a hand case: ids 5 6 | 7 8 9, rows 1..3 predict 7 8 9 ---- */
    int ids5[5] = {5, 6, 7, 8, 9}, tgt[5];
    SftExample hand = {.ids = ids5, .n = 5, .n_prompt = 2};
    int nt = sft_row_targets(&hand, tgt);
    TEST_EXPECT(nt == 3 && tgt[0] == -1 && tgt[1] == 7 && tgt[2] == 8 && tgt[3] == 9 && tgt[4] == -1,
                "loss mask: exactly the rows that predict target tokens", "targets %d: %d %d %d %d %d", nt, tgt[0],
                tgt[1], tgt[2], tgt[3], tgt[4]);

    /* ---- the examples ---- */
    SftExample set[N_PROBLEMS];
    Dataset ds = synthetic_problems();
    for (int i = 0; i < N_PROBLEMS; i++)
        CHECK(sft_example_build(tok, &FMT, ds.items[i].question, ds.items[i].solution, ds.items[i].gold, &set[i], &err) == 0);
    dataset_free(&ds);

    /* ---- loss = double-precision mean of -log softmax on exactly the target rows ---- */
    {
        ModelConfig c = tiny_config();
        ParamLayout L;
        ParamOffsets O;
        param_layout_build(&L, &O, &c);
        float *host = xmalloc(L.n_floats * sizeof(float));
        param_init_random(&c, 7, 0.2f, host); /* large std: a peaked, non-uniform softmax */
        Model m;
        model_init(&m, &c, host);
        SftState st;
        sft_state_init(&st, &m, 1024, 8, 512);
        const SftExample *two[2] = {&set[0], &set[1]};
        long n_t;
        double nll = sft_nll(&st, two, 2, 0, 0.0f, &n_t);
        /* recompute from the logits of a plain forward of the same two sequences */
        int slot[2] = {0, 1}, start[2] = {0, 0}, len[2] = {set[0].n, set[1].n};
        int *toks = xmalloc(sizeof(int) * (set[0].n + set[1].n));
        memcpy(toks, set[0].ids, sizeof(int) * set[0].n);
        memcpy(toks + set[0].n, set[1].ids, sizeof(int) * set[1].n);
        RunState rs;
        runstate_init(&rs, &c, (RunShape){.max_rows = 1024, .n_slots = 2, .max_seq = 512, .train = 0});
        ForwardInput in = {.n_seq = 2, .slot = slot, .start = start, .len = len, .tokens = toks};
        int rows = model_forward(&m, &rs, &in, 0);
        float *z = xmalloc(sizeof(float) * (size_t)rows * c.vocab_size);
        dev_download(z, rs.logits, sizeof(float) * (size_t)rows * c.vocab_size);
        double ref = 0;
        long ref_n = 0;
        for (int s = 0, row0 = 0; s < 2; row0 += set[s].n, s++)
            for (int r = set[s].n_prompt - 1; r < set[s].n - 1; r++) { /* the rows that predict targets */
                const float *zr = z + (size_t)(row0 + r) * c.vocab_size;
                double mx = zr[0], se = 0;
                for (int v = 1; v < c.vocab_size; v++) mx = zr[v] > mx ? zr[v] : mx;
                for (int v = 0; v < c.vocab_size; v++) se += exp(zr[v] - mx);
                ref -= zr[set[s].ids[r + 1]] - mx - log(se);
                ref_n++;
            }
        TEST_EXPECT(n_t == ref_n && n_t == (set[0].n - set[0].n_prompt) + (set[1].n - set[1].n_prompt) &&
                        fabs(nll - ref) < 1e-4 * fabs(ref),
                    "SFT loss sums -log p over exactly the target rows", "n %ld vs %ld, nll %.8g vs %.8g", n_t, ref_n,
                    nll, ref);

        /* micro-batching (one example per forward) gives the same gradient */
        const size_t P = L.n_floats;
        float *g_full = xmalloc(P * sizeof(float)), *g_micro = xmalloc(P * sizeof(float));
        dev_zero(st.grads, P * sizeof(float));
        sft_nll(&st, two, 2, 1, 1.0f / (float)n_t, &n_t);
        dev_download(g_full, st.grads, P * sizeof(float));
        SftState st1;
        sft_state_init(&st1, &m, 512, 1, 512);
        dev_zero(st1.grads, P * sizeof(float));
        sft_nll(&st1, two, 2, 1, 1.0f / (float)n_t, &n_t);
        dev_download(g_micro, st1.grads, P * sizeof(float));
        double e = rel_err_f(g_micro, g_full, P), gn = sqrt(op_sumsq(st.grads, P));
        TEST_EXPECT(e < 1e-5 && gn > 0, "micro-batched gradient equals the full-batch gradient",
                    "rel err %.3g, norm %.3g", e, gn);
        sft_state_free(&st1);
        free(g_full), free(g_micro), free(z), free(toks), free(host);
        runstate_free(&rs);
        sft_state_free(&st);
        model_free(&m);
        param_layout_free(&L, &O);
    }

    /* ---- data order: a permutation in every epoch, different across epochs ---- */
    {
        int perm_ok = 1, differ = 0;
        for (int n = 1; n <= 37 && perm_ok; n += 6) {
            int seen[64];
            for (int ep = 0; ep < 3; ep++) {
                memset(seen, 0, sizeof seen);
                for (int i = 0; i < n; i++) {
                    int64_t k = sft_example_at(5, (int64_t)ep * n + i, n);
                    perm_ok &= k >= 0 && k < n && !seen[k];
                    if (k >= 0 && k < n) seen[k] = 1;
                    if (ep == 1 && n == 37) differ += k != sft_example_at(5, i, n);
                }
            }
        }
        TEST_EXPECT(perm_ok && differ > 0, "data order: each epoch visits every example once, epochs differ",
                    "perm %d differ %d", perm_ok, differ);
    }

    /* ---- learning, lr 0, determinism ---- */
    const int steps = 30;
    double l0, l1;
    float *w_a = train_run(tok, set, N_PROBLEMS, 1e-2f, 1, steps, &l0, &l1);
    printf("# SFT loss: first step %.4f, after 30 steps %.4f\n", l0, l1);
    TEST_EXPECT(l1 < 0.75 * l0, "30 SFT steps lower the loss by more than 25% (uniform: log 258 = 5.55)", "first %.4f, after %.4f", l0, l1);
    ModelConfig c = tiny_config();
    ParamLayout L;
    ParamOffsets O;
    param_layout_build(&L, &O, &c);
    float *init = xmalloc(L.n_floats * sizeof(float));
    param_init_random(&c, 42, 0.02f, init);
    float *w_zero = train_run(tok, set, N_PROBLEMS, 0.0f, 1, 5, NULL, NULL);
    TEST_EXPECT(!memcmp(w_zero, init, L.n_floats * sizeof(float)), "lr 0 leaves the weights bit-identical",
                "weights changed");
    float *w_b = train_run(tok, set, N_PROBLEMS, 1e-2f, 1, steps, NULL, NULL);
    float *w_c = train_run(tok, set, N_PROBLEMS, 1e-2f, 2, steps, NULL, NULL);
    TEST_EXPECT(!memcmp(w_a, w_b, L.n_floats * sizeof(float)), "two runs with the same seed give bit-identical weights",
                "weights differ");
    TEST_EXPECT(memcmp(w_a, w_c, L.n_floats * sizeof(float)) != 0, "a different data seed gives different weights",
                "identical");

    /* ---- random init: deterministic, norms 1, matrices with the requested std ---- */
    {
        float *again = xmalloc(L.n_floats * sizeof(float));
        param_init_random(&c, 42, 0.02f, again);
        const ParamTensor *emb = param_find(&L, "model.embed_tokens.weight"), *nrm = param_find(&L, "model.norm.weight");
        double ss = 0;
        for (size_t i = 0; i < emb->numel; i++) ss += (double)init[emb->offset + i] * init[emb->offset + i];
        double sd = sqrt(ss / (double)emb->numel);
        int norms_one = 1;
        for (size_t i = 0; i < nrm->numel; i++) norms_one &= init[nrm->offset + i] == 1.0f;
        TEST_EXPECT(!memcmp(again, init, L.n_floats * sizeof(float)) && norms_one && fabs(sd - 0.02) < 0.002,
                    "random init: same seed same weights, RMSNorm gains 1, embedding std 0.02", "std %.4f", sd);
        free(again);
    }
    for (int i = 0; i < N_PROBLEMS; i++) sft_example_free(&set[i]);
    free(w_a), free(w_b), free(w_c), free(w_zero), free(init);
    param_layout_free(&L, &O);
    tokenizer_free(tok);
    return test_finish();
}
