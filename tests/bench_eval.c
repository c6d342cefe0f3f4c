/* make bench: evaluation rollout throughput. Generated tokens per second for a batch of 64
 * sequences decoded together (rollouts_generate, the path `softcot eval` uses) in hard
 * and soft modes, on the built-in base model (inputs/models/base, else the imported
 * stories260K) and on a random d=1024 model (8 layers, V=32000, Philox init), with the
 * soft-mode cost per token relative to hard measured in the same run. The soft mode adds
 * softmax(z/tau) p E over the full vocabulary and the noise per CoT step.
 * Prints figures; asserts nothing (performance is reported, not tested). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cpu.h"
#include "io/llama2c.h"
#include "io/model_dir.h"
#include "model/init.h"
#include "model/model.h"
#include "rl/rollout.h"
#include "text/tokenizer.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* CPU time of the process: on a shared machine the wall clock also counts other jobs'
 * time slices, CPU time (with one OpenBLAS thread) does not. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

typedef struct {
    double tokens_per_s, seconds, cpu_seconds;
    long tokens;
    double cot_len;
} Figure;

/* Best of `reps` runs of 64 rollouts (8 prompts x 8 samples) in one batch. */
static Figure measure(const Model *m, const Tokenizer *tok, CotMode mode, int cot_max, int reps) {
    const char *texts[8] = {"Tom has 3 apples.", "Lily went to the park", "The dog", "Once upon a time",
                            "Ben buys 4 more", "A girl named Sue", "How many cats", "The sun was hot"};
    int *ids[8], n[8];
    RolloutRequest req[8];
    Err err;
    for (int i = 0; i < 8; i++) {
        CHECK(tokenizer_encode(tok, texts[i], strlen(texts[i]), 1, &ids[i], &n[i], &err) == 0);
        req[i] = (RolloutRequest){.prompt_index = i, .prompt = ids[i], .n_prompt = n[i], .first_sample = 0, .n_samples = 8};
    }
    int *pf, *pfl, npf, npfl;
    CHECK(tokenizer_encode(tok, " \\boxed{", 8, 0, &pf, &npf, &err) == 0);
    const char *lp = " The final answer is: \\boxed{";
    CHECK(tokenizer_encode(tok, lp, strlen(lp), 0, &pfl, &npfl, &err) == 0);
    /* A stop string the models do not write: every CoT runs to cot_max in both modes, so
     * the two modes generate the same number of tokens. */
    RolloutConfig cfg = {.mode = mode, .cot_temperature = mode == COT_HARD ? 1.0f : 0.5f,
                         .sigma = mode == COT_HARD ? 0.0f : rollout_sigma(m, 0.33f), .ans_temperature = 0.0f,
                         .cot_max = cot_max, .ans_max = 8, .stop_string = "The final answer is:",
                         .prefill = pf, .n_prefill = npf, .prefill_long = pfl, .n_prefill_long = npfl,
                         .seed = 5, .record_entropy = 1};
    Figure best = {0};
    for (int r = 0; r < reps; r++) {
        RolloutBatch b;
        double t0 = now(), c0 = cpu_now();
        CHECK(rollouts_generate(m, tok, &cfg, req, 8, 64, &b, &err) == 0);
        double dt = now() - t0, dc = cpu_now() - c0;
        long tokens = 0, cot = 0;
        for (int i = 0; i < b.n; i++) tokens += b.r[i].cot_len + b.r[i].ans_len, cot += b.r[i].cot_len;
        if (best.seconds == 0 || dt < best.seconds)
            best = (Figure){.tokens_per_s = tokens / dt, .seconds = dt, .cpu_seconds = dc, .tokens = tokens,
                            .cot_len = (double)cot / b.n};
        rollouts_free(&b);
    }
    for (int i = 0; i < 8; i++) free(ids[i]);
    free(pf), free(pfl);
    return best;
}

static void report(const char *name, const Model *m, const Tokenizer *tok, int cot_max, int reps) {
    const ModelConfig *c = &m->cfg;
    printf("# %s: d=%d layers=%d heads=%d/%d ff=%d V=%d (%.1fM params), batch 64, cot_max %d, ans_max 8\n", name,
           c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->hidden_dim, c->vocab_size, m->layout.n_floats / 1e6,
           cot_max);
    Figure h = measure(m, tok, COT_HARD, cot_max, reps);
    Figure s = measure(m, tok, COT_SOFT, cot_max, reps);
    const Figure *f[2] = {&h, &s};
    for (int i = 0; i < 2; i++)
        printf("  %s: %8.1f generated tok/s wall, %8.1f per CPU second (%ld tokens, %.3f s wall, %.3f s CPU, mean CoT %.1f)\n",
               i ? "soft" : "hard", f[i]->tokens_per_s, f[i]->tokens / f[i]->cpu_seconds, f[i]->tokens, f[i]->seconds,
               f[i]->cpu_seconds, f[i]->cot_len);
    printf("  soft-mode overhead (time per generated token, soft / hard): %.3fx wall, %.3fx CPU\n",
           s.seconds / s.tokens * h.tokens / h.seconds, s.cpu_seconds / s.tokens * h.tokens / h.cpu_seconds);
    fflush(stdout);
}

int main(int argc, char **argv) {
    cpu_setup_blas(argc, argv);
    const char *shared = getenv("SOFTCOT_SHARED") && *getenv("SOFTCOT_SHARED") ? getenv("SOFTCOT_SHARED") : "../shared";
    char tokp[512], bin[512];
    snprintf(tokp, sizeof tokp, "%s/models/stories260K/tok512.bin", shared);
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", shared);
    const char *threads = getenv("OPENBLAS_NUM_THREADS");
    printf("# softcot bench_eval: rollout throughput, backend %s, OPENBLAS_NUM_THREADS=%s\n", ops_backend_name(),
           threads ? threads : "(unset: 1)");
    Err err;
    ModelConfig cfg;
    float *host = NULL;

    /* The built-in model, or stories260K while it does not exist yet. */
    Tokenizer *tok = NULL;
    const char *name = "inputs/models/base";
    if (model_dir_load("inputs/models/base", &cfg, &host, &err) == 0 && (tok = tokenizer_load_dir("inputs/models/base", &err))) {
    } else {
        free(host);
        host = NULL;
        name = "stories260K (inputs/models/base not found)";
        if (llama2c_read(bin, &cfg, &host, &err)) {
            fprintf(stderr, "bench_eval: %s\n", err.msg);
            return 1;
        }
        tok = tokenizer_load_llama2c(tokp, &err);
        if (!tok) {
            fprintf(stderr, "bench_eval: %s\n", err.msg);
            return 1;
        }
    }
    Model m;
    model_init(&m, &cfg, host);
    free(host);
    report(name, &m, tok, 64, 3);
    model_free(&m);
    tokenizer_free(tok);

    /* Random d=1024 model; tok512 encodes the prompts (ids above 511 decode to nothing,
     * so no stop string ends a CoT early). */
    tok = tokenizer_load_llama2c(tokp, &err);
    if (!tok) {
        fprintf(stderr, "bench_eval: %s\n", err.msg);
        return 1;
    }
    ModelConfig c = {.arch = ARCH_LLAMA, .dim = 1024, .hidden_dim = 2816, .n_layers = 8, .n_heads = 16,
                     .n_kv_heads = 4, .head_dim = 64, .vocab_size = 32000, .max_seq = 1024, .norm_eps = 1e-5f,
                     .rope_theta = 10000.0f, .tied_embeddings = 0, .bos_id = 1, .n_eos = 1, .eos_ids = {2}};
    ParamLayout layout;
    ParamOffsets off;
    param_layout_build(&layout, &off, &c);
    host = malloc(layout.n_floats * sizeof(float));
    param_init_random(&c, 1, 0.02f, host);
    param_layout_free(&layout, &off);
    model_init(&m, &c, host);
    free(host);
    report("random d=1024", &m, tok, 64, 2);
    model_free(&m);
    tokenizer_free(tok);
    return 0;
}
