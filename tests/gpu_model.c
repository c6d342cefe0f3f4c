/* make check-gpu, part 2: the whole model and the rollout engine on the CUDA backend
 * against the CPU backend.
 *   - forward (logits) and backward (every parameter gradient) of a random tiny Llama
 *     (GQA, tied, llama3 RoPE scaling) and a random tiny Qwen2 (q/k/v biases, untied), on a
 *     packed batch of unequal sequences where some inputs are vectors (soft tokens);
 *     fp32 and bf16;
 *   - batched KV-cache decode on the GPU equals the GPU's own full forward;
 *   - soft-mode rollouts of the built-in model in fp32, noise on: the same noisy input
 *     vectors and shadow tokens as on the CPU (the noise is the CPU generator's Philox
 *     stream).
 * Whole-model tolerances (norm-wise relative): fp32 1e-4, bf16 3e-2 on logits and 5e-2 on
 * gradients; every op alone is checked at 1e-5 / 1e-2 by gpu_ops.
 * usage: gpu_model */
#include "gpu_common.h"
#include "model/init.h"
#include "model/model.h"
#include "cli/run_setup.h"
#include "rl/rollout.h"

typedef struct {
    float *logits, *grads; /* host copies of one backend's results */
    int rows;
} ModelRun;

enum { N_SEQ = 3 };
static const int SEQ_LEN[N_SEQ] = {50, 33, 64};

static void run_model(const ModelConfig *c, const float *host_params, const char *device, const char *prec,
                      ModelRun *out) {
    Err err;
    if (ops_select(device, prec, 0, &err)) FATAL("%s", err.msg);
    Model m;
    model_init(&m, c, host_params);
    int rows = 0;
    for (int s = 0; s < N_SEQ; s++) rows += SEQ_LEN[s];
    RunState rs;
    runstate_init(&rs, c, (RunShape){.max_rows = rows, .n_slots = N_SEQ, .max_seq = 128, .train = 1});
    int *tokens = xmalloc((size_t)rows * sizeof(int));
    float *vec_host = xmalloc((size_t)rows * c->dim * sizeof(float));
    fill_random(vec_host, (size_t)rows * c->dim, 0.05f, 7);
    for (int r = 0; r < rows; r++) tokens[r] = r % 5 == 2 ? -1 : (r * 31 + 7) % c->vocab_size;
    float *vectors = dev_alloc((size_t)rows * c->dim * sizeof(float));
    dev_upload(vectors, vec_host, (size_t)rows * c->dim * sizeof(float));
    int slot[N_SEQ] = {1, 0, 2}, start[N_SEQ] = {0, 0, 0};
    ForwardInput in = {.n_seq = N_SEQ, .slot = slot, .start = start, .len = SEQ_LEN, .tokens = tokens, .vectors = vectors};
    const int n = model_forward(&m, &rs, &in, 0);
    const size_t nl = (size_t)n * c->vocab_size, P = m.layout.n_floats;
    out->rows = n;
    out->logits = xmalloc(nl * sizeof(float));
    dev_download(out->logits, rs.logits, nl * sizeof(float));
    float *dl_host = xmalloc(nl * sizeof(float));
    fill_random(dl_host, nl, 1e-2f, 8);
    float *dlogits = dev_alloc(nl * sizeof(float)), *grads = dev_alloc(P * sizeof(float));
    dev_upload(dlogits, dl_host, nl * sizeof(float));
    model_backward(&m, &rs, dlogits, grads);
    out->grads = xmalloc(P * sizeof(float));
    dev_download(out->grads, grads, P * sizeof(float));
    dev_free(dlogits), dev_free(grads), dev_free(vectors);
    free(dl_host), free(tokens), free(vec_host);
    runstate_free(&rs);
    model_free(&m);
}

/* Largest norm-wise relative error over the parameter tensors, and which one. */
static double grad_err(const ModelConfig *c, const float *ref, const float *got, char *worst, size_t worst_n) {
    ParamLayout L;
    ParamOffsets O;
    param_layout_build(&L, &O, c);
    double e = 0;
    for (int t = 0; t < L.n_tensors; t++) {
        double x = rel_err_host(ref + L.tensors[t].offset, got + L.tensors[t].offset, L.tensors[t].numel);
        if (!(x <= e)) {
            e = x;
            snprintf(worst, worst_n, "%s", L.tensors[t].name);
        }
    }
    param_layout_free(&L, &O);
    return e;
}

static void check_model(const char *name, const ModelConfig *c) {
    ParamLayout L;
    ParamOffsets O;
    param_layout_build(&L, &O, c);
    float *host = xmalloc(L.n_floats * sizeof(float));
    param_init_random(c, 11, 0.05f, host);
    ModelRun ref, g32, g16;
    run_model(c, host, "cpu", "fp32", &ref);
    run_model(c, host, "cuda", "fp32", &g32);
    run_model(c, host, "cuda", "bf16", &g16);
    const size_t nl = (size_t)ref.rows * c->vocab_size;
    char line[256], worst[128] = "";
    snprintf(line, sizeof line, "%s fp32: logits", name);
    report(line, rel_err_host(ref.logits, g32.logits, nl), 1e-4);
    double e = grad_err(c, ref.grads, g32.grads, worst, sizeof worst);
    snprintf(line, sizeof line, "%s fp32: every parameter gradient (worst %s)", name, worst);
    report(line, e, 1e-4);
    snprintf(line, sizeof line, "%s bf16: logits", name);
    report(line, rel_err_host(ref.logits, g16.logits, nl), 3e-2);
    e = grad_err(c, ref.grads, g16.grads, worst, sizeof worst);
    snprintf(line, sizeof line, "%s bf16: every parameter gradient (worst %s)", name, worst);
    report(line, e, 5e-2);
    free(ref.logits), free(ref.grads), free(g32.logits), free(g32.grads), free(g16.logits), free(g16.grads);

    /* decode on the GPU: prefill 20 tokens, then 12 one-token steps, per sequence with
     * different lengths, against one full forward of the same tokens */
    Err err;
    if (ops_select("cuda", "fp32", 0, &err)) FATAL("%s", err.msg);
    Model m;
    model_init(&m, c, host);
    const int n_seq = 4, total = 32;
    RunState full, dec;
    runstate_init(&full, c, (RunShape){.max_rows = n_seq * total, .n_slots = n_seq, .max_seq = 64, .train = 0});
    int *tok = xmalloc((size_t)n_seq * total * sizeof(int));
    for (int i = 0; i < n_seq * total; i++) tok[i] = (i * 17 + 3) % c->vocab_size;
    int slot[4] = {0, 1, 2, 3}, start[4] = {0, 0, 0, 0}, len[4] = {total, total, total, total};
    ForwardInput fin = {.n_seq = n_seq, .slot = slot, .start = start, .len = len, .tokens = tok};
    model_forward(&m, &full, &fin, 0);
    float *want = xmalloc((size_t)n_seq * total * c->vocab_size * sizeof(float));
    dev_download(want, full.logits, (size_t)n_seq * total * c->vocab_size * sizeof(float));
    int plen[4] = {20, 17, 25, 1};
    int *ptok = xmalloc((size_t)n_seq * total * sizeof(int)), rows = 0;
    for (int s = 0; s < n_seq; s++)
        for (int j = 0; j < plen[s]; j++) ptok[rows++] = tok[s * total + j];
    float *got = xmalloc((size_t)n_seq * c->vocab_size * sizeof(float));
    /* both decode attention kernels (SOFTCOT_DECODE_ATTN, kernels/attention_cuda.cu); a
     * RunState each, because freeing one drops the CUDA graphs recorded with the other */
    for (int grouped = 0; grouped < 2; grouped++) {
        if (grouped) setenv("SOFTCOT_DECODE_ATTN", "gqa", 1);
        else unsetenv("SOFTCOT_DECODE_ATTN");
        runstate_init(&dec, c, (RunShape){.max_rows = n_seq * total, .n_slots = n_seq, .max_seq = 64, .train = 0});
        ForwardInput pin = {.n_seq = n_seq, .slot = slot, .start = start, .len = plen, .tokens = ptok};
        model_forward(&m, &dec, &pin, 1);
        double worst_dec = 0;
        for (int step = 0; step < 7; step++) {
            int one[4] = {1, 1, 1, 1}, pos[4], t1[4];
            for (int s = 0; s < n_seq; s++) pos[s] = plen[s] + step, t1[s] = tok[s * total + pos[s]];
            ForwardInput din = {.n_seq = n_seq, .slot = slot, .start = pos, .len = one, .tokens = t1};
            model_forward(&m, &dec, &din, 1);
            dev_download(got, dec.logits, (size_t)n_seq * c->vocab_size * sizeof(float));
            for (int s = 0; s < n_seq; s++) {
                double e2 = rel_err_host(want + ((size_t)s * total + pos[s]) * c->vocab_size,
                                         got + (size_t)s * c->vocab_size, c->vocab_size);
                worst_dec = e2 > worst_dec ? e2 : worst_dec;
            }
        }
        snprintf(line, sizeof line, "%s: batched KV-cache decode (unequal lengths, %s decode attention) equals the full forward",
                 name, grouped ? "grouped" : "per-head");
        report(line, worst_dec, 1e-5);
        runstate_free(&dec);
    }
    unsetenv("SOFTCOT_DECODE_ATTN");
    free(got), free(want), free(tok), free(ptok);
    runstate_free(&full);
    model_free(&m);
    free(host);
    param_layout_free(&L, &O);
}

/* Soft rollouts of the built-in model (inputs/models/base) with noise, on both backends.
 * Rounding differences can flip a shadow token where two logits nearly tie, after which
 * that rollout's own text differs, so the check is: the first CoT input vector of every
 * rollout matches to 1e-5, and at least 90% of the rollouts are identical throughout. */
static void generate(const char *device, const TaskSet *tasks, RolloutBatch *out) {
    Err err;
    RunAssets a;
    memset(&a, 0, sizeof a);
    if (ops_select(device, "fp32", 0, &err) || run_assets_load("inputs/models/base", &a, &err) ||
        prefills_encode(a.tok, "The final answer is:", " \\boxed{", &a, &err))
        FATAL("%s", err.msg);
    RolloutConfig cfg = {.mode = COT_SOFT, .cot_temperature = 0.5f, .sigma = rollout_sigma(&a.model, 0.33f),
                         .ans_temperature = 1.0f, .cot_max = 96, .ans_max = 16, .stop_string = "The final answer is:",
                         .prefill = a.prefill, .prefill_long = a.prefill_long, .n_prefill = a.n_prefill,
                         .n_prefill_long = a.n_prefill_long, .seed = 5, .step = 2};
    RolloutRequest req[8];
    for (int i = 0; i < 8; i++)
        req[i] = (RolloutRequest){.prompt_index = i, .prompt = tasks->prompt_ids[i], .n_prompt = tasks->prompt_len[i],
                                  .first_sample = 0, .n_samples = 4};
    if (rollouts_generate(&a.model, a.tok, &cfg, req, 8, 32, out, &err)) FATAL("%s", err.msg);
    run_assets_free(&a);
}

static void check_rollouts(void) {
    Err err;
    RunAssets a;
    memset(&a, 0, sizeof a);
    TaskSet tasks;
    memset(&tasks, 0, sizeof tasks);
    TaskSource src = {.data = "synthetic", .n = 16, .split_test = 1, .template_text = "Question: {question}\\nAnswer:",
                      .chat = "none"};
    if (ops_select("cpu", "fp32", 0, &err) || run_assets_load("inputs/models/base", &a, &err) ||
        taskset_load(&src, a.tok, &tasks, &err))
        FATAL("%s", err.msg);
    run_assets_free(&a);
    RolloutBatch x, y;
    generate("cpu", &tasks, &x);
    generate("cuda", &tasks, &y);
    const int d = 128;
    int same = 0, positions = 0;
    double first_err = 0;
    for (int i = 0; i < x.n && i < y.n; i++) {
        const Rollout *p = &x.r[i], *q = &y.r[i];
        double e = rel_err_host(p->cot_vectors, q->cot_vectors, (size_t)d);
        first_err = e > first_err ? e : first_err;
        int eq = p->cot_len == q->cot_len && p->ans_len == q->ans_len;
        for (int t = 0; eq && t < p->cot_len; t++) eq = p->cot_tokens[t] == q->cot_tokens[t];
        for (int t = 0; eq && t < p->ans_len; t++) eq = p->ans_tokens[t] == q->ans_tokens[t];
        same += eq;
        positions += p->cot_len;
    }
    char line[200];
    snprintf(line, sizeof line, "soft rollouts fp32 (built-in model, noise on): first CoT input vectors of %d rollouts", x.n);
    report(line, first_err, 1e-5);
    snprintf(line, sizeof line, "soft rollouts fp32: %d of %d rollouts identical in every shadow and answer token (%d CoT positions on the CPU)",
             same, x.n, positions);
    report(line, x.n == y.n && same * 10 >= 9 * x.n ? 0.0 : 1.0, 0.0);
    rollouts_free(&x), rollouts_free(&y);
    taskset_free(&tasks);
}

int main(void) {
    gpu_setup(OPS_FP32);
    printf("# whole model and rollouts: CUDA backend vs CPU backend\n");
    ModelConfig llama = {.arch = ARCH_LLAMA, .dim = 256, .hidden_dim = 688, .n_layers = 3, .n_heads = 8,
                         .n_kv_heads = 2, .head_dim = 32, .vocab_size = 1000, .max_seq = 128, .norm_eps = 1e-5f,
                         .rope_theta = 500000.0f, .tied_embeddings = 1, .rope_llama3 = 1, .rope_factor = 32.0f,
                         .rope_low_freq_factor = 1.0f, .rope_high_freq_factor = 4.0f, .rope_original_max_pos = 64,
                         .bos_id = -1};
    ModelConfig qwen = {.arch = ARCH_QWEN2, .dim = 192, .hidden_dim = 512, .n_layers = 2, .n_heads = 6,
                        .n_kv_heads = 2, .head_dim = 32, .vocab_size = 777, .max_seq = 128, .norm_eps = 1e-6f,
                        .rope_theta = 1000000.0f, .tied_embeddings = 0, .qkv_bias = 1, .bos_id = -1};
    check_model("tiny Llama (GQA, tied, llama3 RoPE)", &llama);
    check_model("tiny Qwen2 (biases, untied)", &qwen);
    check_rollouts();
    return finish();
}
