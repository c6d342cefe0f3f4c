/* make check-gpu, part 3: throughput on the GPU (asserts nothing; prints a table).
 *   - bf16 peak: an 8192^3 GEMM through op_matmul (cuBLAS, bf16 operands, fp32 accumulate);
 *   - memory bandwidth: a 2 GiB device-to-device copy (bytes read + written per second);
 *   - batched decode of 64 sequences on a random Llama-3.2-1B-shaped model, against the
 *     bandwidth floor: (bf16 weights + KV cache read per step) / copy bandwidth;
 *   - one full RL step (generation, replay forward+backward, AdamW) on the 1B shape,
 *     hard and soft, B=2 G=32, prompt 64, CoT 256, answer 16: generation and training
 *     tokens/s and the soft-over-hard overhead;
 *   - forward+backward of a Llama-3.2-3B-shaped model on 4 x 512 tokens: MFU against the
 *     measured bf16 peak, and peak device memory with fp32 weights, gradients and Adam
 *     moments allocated as in training.
 * Weights are random (Philox on the device), so RL rollouts never stop early: every CoT
 * runs to 256 and every answer to 16, identical work in hard and soft.
 */
#include "gpu_common.h"
#include "model/model.h"
#include "rl/replay.h"
#include "rl/rollout.h"
#include "text/tokenizer.h"
#include "word_tokenizer.h"

static double peak_tflops, copy_gbs;

static void device_fill(float *p, size_t n, float scale, uint64_t seed) {
    enum { ROW = 4096 };
    const size_t rows = n / ROW, tail = n % ROW;
    RngKey *keys = xmalloc((rows + 1) * sizeof(RngKey));
    for (size_t r = 0; r <= rows; r++) keys[r] = (RngKey){.seed = seed, .step = (uint32_t)(r >> 32), .prompt = (uint32_t)r, .purpose = RNG_PURPOSE_INIT};
    if (rows) op_add_noise(p, keys, (int)rows, ROW, scale);
    if (tail) op_add_noise(p + rows * ROW, keys + rows, 1, (int)tail, scale);
    free(keys);
}

static void device_random_model(Model *m, const ModelConfig *c, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    param_layout_build(&m->layout, &m->off, c);
    m->params = dev_alloc(m->layout.n_floats * sizeof(float));
    device_fill(m->params, m->layout.n_floats, 0.02f, seed);
}

static void bench_peak_and_copy(void) {
    const int n = 8192;
    float *A = dev_alloc((size_t)n * n * sizeof(float)), *B = dev_alloc((size_t)n * n * sizeof(float));
    float *C = dev_alloc((size_t)n * n * sizeof(float));
    device_fill(A, (size_t)n * n, 1.0f, 1), device_fill(B, (size_t)n * n, 1.0f, 2);
    for (int i = 0; i < 3; i++) op_matmul(C, A, B, n, n, n, 0, 0, 1.0f, 0.0f);
    dev_sync();
    const int reps = 10;
    double t0 = wall_now();
    for (int i = 0; i < reps; i++) op_matmul(C, A, B, n, n, n, 0, 0, 1.0f, 0.0f);
    dev_sync();
    double t = wall_now() - t0;
    peak_tflops = 2.0 * n * n * (double)n * reps / t / 1e12;
    dev_free(A), dev_free(B), dev_free(C);
    const size_t bytes = (size_t)2 << 30;
    float *X = dev_alloc(bytes), *Y = dev_alloc(bytes);
    dev_copy(Y, X, bytes);
    dev_sync();
    t0 = wall_now();
    for (int i = 0; i < reps; i++) dev_copy(Y, X, bytes);
    dev_sync();
    t = wall_now() - t0;
    copy_gbs = 2.0 * bytes * reps / t / 1e9;
    dev_free(X), dev_free(Y);
    printf("| bf16 GEMM 8192^3 (cuBLAS via op_matmul) | %.0f TFLOP/s | the MFU denominator |\n", peak_tflops);
    printf("| device-to-device copy, 2 GiB | %.0f GB/s | read + written; the decode floor's bandwidth |\n", copy_gbs);
    fflush(stdout);
}

static ModelConfig llama_1b(void) {
    return (ModelConfig){.arch = ARCH_LLAMA, .dim = 2048, .hidden_dim = 8192, .n_layers = 16, .n_heads = 32,
                         .n_kv_heads = 8, .head_dim = 64, .vocab_size = 128256, .max_seq = 2048, .norm_eps = 1e-5f,
                         .rope_theta = 500000.0f, .tied_embeddings = 1, .rope_llama3 = 1, .rope_factor = 32.0f,
                         .rope_low_freq_factor = 1.0f, .rope_high_freq_factor = 4.0f, .rope_original_max_pos = 8192,
                         .bos_id = -1};
}
static ModelConfig llama_3b(void) {
    ModelConfig c = llama_1b();
    c.dim = 3072, c.n_layers = 28, c.n_heads = 24, c.n_kv_heads = 8, c.head_dim = 128;
    return c;
}

/* Bytes of weights a decode step reads in bf16: every matrix used in a GEMM once (a tied
 * embedding is read as the LM head). */
static double gemm_weight_floats(const ModelConfig *c) {
    const double d = c->dim, qd = cfg_q_dim(c), kvd = cfg_kv_dim(c), ff = c->hidden_dim;
    return c->n_layers * (d * qd + 2 * d * kvd + qd * d + 3 * d * ff) + d * c->vocab_size;
}

static void bench_decode(const Model *m, int n_seq, const char *kernel) {
    const ModelConfig *c = &m->cfg;
    const int prompt = 128, steps = 128;
    RunState rs;
    runstate_init(&rs, c, (RunShape){.max_rows = n_seq * prompt, .n_slots = n_seq, .max_seq = prompt + steps + 1, .train = 0});
    int *tok = xmalloc((size_t)n_seq * prompt * sizeof(int)), slot[64], start[64], len[64], ids[64];
    CHECK(n_seq <= 64);
    for (int i = 0; i < n_seq * prompt; i++) tok[i] = (i * 7919) % c->vocab_size;
    for (int s = 0; s < n_seq; s++) slot[s] = s, start[s] = 0, len[s] = prompt;
    ForwardInput in = {.n_seq = n_seq, .slot = slot, .start = start, .len = len, .tokens = tok};
    model_forward(m, &rs, &in, 1);
    int *d_ids = dev_alloc(n_seq * sizeof(int));
    float *d_u = dev_alloc(n_seq * sizeof(float));
    double t = 0, kv_bytes = 0;
    for (int pass = 0; pass < 2; pass++) { /* pass 0 warms up (bf16 weight copies) */
        for (int s = 0; s < n_seq; s++) start[s] = prompt, len[s] = 1, ids[s] = s;
        dev_sync();
        double t0 = wall_now();
        for (int k = 0; k < (pass ? steps : 4); k++) {
            ForwardInput din = {.n_seq = n_seq, .slot = slot, .start = start, .len = len, .tokens = ids};
            model_forward(m, &rs, &din, 1);
            op_sample(d_ids, rs.logits, d_u, n_seq, c->vocab_size, 0.0f);
            dev_download(ids, d_ids, n_seq * sizeof(int)); /* the host needs each token, as in rollouts */
            if (pass) kv_bytes += 2.0 * c->n_layers * n_seq * (start[0] + 1.0) * cfg_kv_dim(c) * sizeof(float);
            for (int s = 0; s < n_seq; s++) start[s]++;
        }
        t = wall_now() - t0;
    }
    const double step_s = t / steps;
    const double floor_s = (gemm_weight_floats(c) * 2.0 + kv_bytes / steps) / (copy_gbs * 1e9);
    printf("| batched decode, %d sequence(s), context %d-%d (1B shape), %s decode attention | %.2f ms/step, %.0f "
           "tokens/s | %.0f%% of the bandwidth floor (%.2f ms: %.2f GB bf16 weights + %.2f GB fp32 KV per step) |\n",
           n_seq, prompt, prompt + steps, kernel, 1e3 * step_s, n_seq / step_s, 100.0 * floor_s / step_s,
           1e3 * floor_s, gemm_weight_floats(c) * 2e-9, kv_bytes / steps * 1e-9);
    fflush(stdout);
    dev_free(d_ids), dev_free(d_u), free(tok);
    runstate_free(&rs);
}

typedef struct {
    double gen_s, train_s, adam_s, gen_rows, train_rows;
} StepTime;

/* One RL step as train_step does it, minus MPI: generate B*G rollouts, replay them in
 * micro-batches of at most 4096 positions with gradient accumulation, AdamW. */
static StepTime rl_step(Model *m, const Tokenizer *tok, CotMode mode, ReplayState *rp, float *grads, float *adam_m,
                        float *adam_v, int step, int COT, int gen_batch) {
    enum { B = 2, G = 32, PROMPT = 64, ANS = 16 };
    static int prompts[B][PROMPT];
    for (int b = 0; b < B; b++)
        for (int i = 0; i < PROMPT; i++) prompts[b][i] = (b * 1000 + i * 37) % m->cfg.vocab_size;
    static const int prefill[3] = {40, 41, 42}, prefill_long[5] = {43, 44, 45, 46, 47};
    const float sigma = mode == COT_HARD ? 0.0f : rollout_sigma(m, 0.33f);
    const float tau = mode == COT_HARD ? 1.0f : 0.5f;
    RolloutConfig cfg = {.mode = mode, .cot_temperature = tau, .sigma = sigma, .ans_temperature = 1.0f, .cot_max = COT,
                         .ans_max = ANS, .stop_string = "The final answer is:", .prefill = prefill,
                         .prefill_long = prefill_long, .n_prefill = 3, .n_prefill_long = 5, .seed = 9, .step = step};
    RolloutRequest req[B];
    for (int b = 0; b < B; b++) req[b] = (RolloutRequest){b, prompts[b], PROMPT, 0, G};
    StepTime t = {0};
    Err err;
    dev_sync();
    double t0 = wall_now();
    RolloutBatch rb;
    if (rollouts_generate(m, tok, &cfg, req, B, gen_batch, &rb, &err)) FATAL("%s", err.msg);
    dev_sync();
    t.gen_s = wall_now() - t0;
    t.gen_rows = (double)rb.gen_rows;
    ReplayConfig rc = {.mode = mode, .cot_temperature = tau, .sigma = sigma, .ans_temperature = 1.0f,
                       .prefill = prefill, .prefill_long = prefill_long, .n_prefill = 3, .n_prefill_long = 5};
    float *w = xmalloc((size_t)rb.n * sizeof(float));
    double *lc = xmalloc((size_t)rb.n * sizeof(double)), *la = xmalloc((size_t)rb.n * sizeof(double));
    for (int i = 0; i < rb.n; i++) w[i] = (i % 3 - 1) / (float)(B * G);
    t0 = wall_now();
    dev_zero(grads, m->layout.n_floats * sizeof(float));
    for (int i = 0; i < rb.n;) {
        int j = i, rows = 0;
        while (j < rb.n && j - i < rp->max_seqs && (j == i || rows + replay_length(&rb.r[j], &rc) <= rp->max_rows)) {
            rows += replay_length(&rb.r[j], &rc);
            j++;
        }
        replay_accumulate(m, rp, &rc, rb.r + i, w + i, j - i, grads, lc + i, la + i);
        t.train_rows += rows;
        i = j;
    }
    dev_sync();
    t.train_s = wall_now() - t0;
    t0 = wall_now();
    AdamWParams hp = {.lr = 1e-6f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f, .step = step + 1};
    op_adamw(m->params, grads, adam_m, adam_v, m->layout.n_floats, hp);
    dev_sync();
    t.adam_s = wall_now() - t0;
    free(w), free(lc), free(la);
    rollouts_free(&rb);
    return t;
}

static void bench_rl(Model *m) {
    const size_t P = m->layout.n_floats;
    float *grads = dev_alloc(P * sizeof(float)), *am = dev_alloc(P * sizeof(float)), *av = dev_alloc(P * sizeof(float));
    Tokenizer *tok = word_tokenizer(m->cfg.vocab_size);
    ReplayState rp;
    replay_init(&rp, &m->cfg, 4096, 16, 64 + 256 + 5 + 16 + 1);
    double step_s[2] = {0};
    const CotMode modes[2] = {COT_HARD, COT_SOFT};
    for (int k = 0; k < 2; k++) {
        StepTime t = {0};
        for (int rep = 0; rep < 2; rep++) t = rl_step(m, tok, modes[k], &rp, grads, am, av, rep, 256, 64); /* the 2nd is reported */
        step_s[k] = t.gen_s + t.train_s + t.adam_s;
        printf("| RL step, %s, 1B shape, B=2 G=32, prompt 64, CoT 256, answer 16 | %.2f s/step | generation %.0f tokens/s "
               "(%.0f rows, %.2f s); training %.0f tokens/s (%.0f rows, %.2f s); AdamW %.3f s |\n",
               cot_mode_name(modes[k]), step_s[k], t.gen_rows / t.gen_s, t.gen_rows, t.gen_s, t.train_rows / t.train_s,
               t.train_rows, t.train_s, t.adam_s);
        fflush(stdout);
    }
    printf("| soft-mode overhead over hard, per RL step | %+.1f%% | bar: <= 15%% |\n", 100.0 * (step_s[1] / step_s[0] - 1.0));
    replay_free(&rp);
    tokenizer_free(tok);
    dev_free(grads), dev_free(am), dev_free(av);
}

static void bench_3b(void) {
    const ModelConfig c = llama_3b();
    Model m;
    device_random_model(&m, &c, 33);
    const size_t P = m.layout.n_floats;
    float *grads = dev_alloc(P * sizeof(float));
    float *am = dev_alloc(P * sizeof(float)), *av = dev_alloc(P * sizeof(float)); /* as in training */
    enum { N_SEQ = 4, LEN = 512 }; /* one 2048-token micro-batch */
    RunState rs;
    runstate_init(&rs, &c, (RunShape){.max_rows = N_SEQ * LEN, .n_slots = N_SEQ, .max_seq = LEN, .train = 1});
    int *tok = xmalloc((size_t)N_SEQ * LEN * sizeof(int)), slot[N_SEQ], start[N_SEQ], len[N_SEQ];
    for (int i = 0; i < N_SEQ * LEN; i++) tok[i] = (i * 104729) % c.vocab_size;
    for (int s = 0; s < N_SEQ; s++) slot[s] = s, start[s] = 0, len[s] = LEN;
    ForwardInput in = {.n_seq = N_SEQ, .slot = slot, .start = start, .len = len, .tokens = tok};
    const int reps = 3;
    double t = 0;
    for (int pass = 0; pass < 2; pass++) {
        dev_sync();
        double t0 = wall_now();
        for (int r = 0; r < (pass ? reps : 1); r++) {
            model_forward(&m, &rs, &in, 0);
            op_scale(rs.logits, 1e-4f, (size_t)N_SEQ * LEN * c.vocab_size); /* stands in for dL/dlogits */
            model_backward(&m, &rs, rs.logits, grads);
        }
        dev_sync();
        t = wall_now() - t0;
    }
    const double tokens = (double)N_SEQ * LEN * reps;
    const double attn = 2.0 * 2.0 * cfg_q_dim(&c) * c.n_layers * (LEN + 1) / 2.0; /* QK and PV, causal */
    const double flops = 3.0 * tokens * (2.0 * gemm_weight_floats(&c) + attn);
    printf("| forward+backward, 3B shape, 4 x 512 tokens | %.0f tokens/s, %.0f TFLOP/s | MFU %.1f%% of the measured "
           "bf16 peak; peak device memory %.1f GiB (fp32 weights, gradients, Adam m and v, bf16 copies, activations) |\n",
           tokens / t, flops / t / 1e12, 100.0 * flops / t / 1e12 / peak_tflops, dev_bytes_peak() / 1073741824.0);
    fflush(stdout);
    free(tok);
    runstate_free(&rs);
    dev_free(grads), dev_free(am), dev_free(av);
    model_free(&m);
}

/* The memory budget of issue 8: a Llama-3.2-3B shape trained with B=2, G=32 and a 512-token
 * CoT on one GPU, with 1024-token replay micro-batches and rollouts generated 32 at a time
 * (docs/gpu.md). Soft mode, two steps, the second reported; peak device memory is the
 * whole process's (this part runs alone with --only rl3b). */
static void bench_rl3b(void) {
    const ModelConfig c = llama_3b();
    Model m;
    device_random_model(&m, &c, 44);
    const size_t P = m.layout.n_floats;
    float *grads = dev_alloc(P * sizeof(float)), *am = dev_alloc(P * sizeof(float)), *av = dev_alloc(P * sizeof(float));
    Tokenizer *tok = word_tokenizer(c.vocab_size);
    ReplayState rp;
    replay_init(&rp, &c, 1024, 1, 64 + 512 + 5 + 16 + 1);
    StepTime t = {0};
    for (int rep = 0; rep < 2; rep++) t = rl_step(&m, tok, COT_SOFT, &rp, grads, am, av, rep, 512, 32);
    printf("| RL step, soft, 3B shape, B=2 G=32, prompt 64, CoT 512, answer 16; micro-batch 1024 tokens, "
           "generation 32 at a time | %.2f s/step | generation %.0f tokens/s, training %.0f tokens/s; peak device "
           "memory %.1f GiB (%.1f GB) |\n",
           t.gen_s + t.train_s + t.adam_s, t.gen_rows / t.gen_s, t.train_rows / t.train_s,
           dev_bytes_peak() / 1073741824.0, dev_bytes_peak() / 1e9);
    fflush(stdout);
    replay_free(&rp);
    tokenizer_free(tok);
    dev_free(grads), dev_free(am), dev_free(av);
    model_free(&m);
}

/* usage: gpu_bench [--only decode|rl|3b|rl3b] (SOFTCOT_PROFILE=1 adds a per-op time table) */
int main(int argc, char **argv) {
    const char *only = argc > 2 && !strcmp(argv[1], "--only") ? argv[2] : NULL;
    Err err;
    if (ops_select("cuda", "bf16", 0, &err)) {
        printf("Bail out! %s\n", err.msg);
        return 1;
    }
    printf("| what (bf16 GEMMs, fp32 everything else) | measured | notes |\n|---|---|---|\n");
    bench_peak_and_copy();
    if (!only || (strcmp(only, "3b") && strcmp(only, "rl3b"))) {
        ModelConfig c1 = llama_1b();
        Model m;
        device_random_model(&m, &c1, 21);
        if (!only || !strcmp(only, "decode")) {
            /* both decode attention kernels, side by side (SOFTCOT_DECODE_ATTN) */
            unsetenv("SOFTCOT_DECODE_ATTN");
            bench_decode(&m, 64, "per-head");
            bench_decode(&m, 1, "per-head");
            setenv("SOFTCOT_DECODE_ATTN", "gqa", 1);
            bench_decode(&m, 64, "grouped");
            bench_decode(&m, 1, "grouped");
            unsetenv("SOFTCOT_DECODE_ATTN");
        }
        if (!only || !strcmp(only, "rl")) bench_rl(&m);
        model_free(&m);
    }
    if (!only || !strcmp(only, "3b")) bench_3b();
    if (only && !strcmp(only, "rl3b")) bench_rl3b(); /* alone: its peak memory is the process's */
    return 0;
}
