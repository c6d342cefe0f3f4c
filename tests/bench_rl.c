/* make bench: one full RL step (train_step: generation + rewards + RLOO + teacher-forced
 * replay forward/backward + AdamW) in hard and soft mode, on
 *   (a) the built-in base model inputs/models/base when it exists, else a random tiny Llama
 *       of the same kind (d=128, 4 layers, 4/2 heads, ffn 352, V=512), B=2 G=32, cot_max 96;
 *   (b) a random Llama at d=1024 (8 layers, 16/4 heads, ffn 2816, V=32000), B=2 G=8,
 *       cot_max 64;
 * ans_max 16, prompts of 40 random token ids, fixed seed. Prints generation tokens/s,
 * training tokens/s, the share of the step spent generating and seconds per step, then
 * runs the same step in the PyTorch twin (tests/twin/bench_rl_twin.py: Hugging Face-style
 * batched incremental decoding with a KV cache, one teacher-forced forward/backward, AdamW)
 * with the same shape, mode, batch and lengths, and prints the ratio. Asserts nothing.
 *
 * What is timed: train_step itself, unchanged. Random models get an in-memory tokenizer
 * whose pieces contain no ':' and no '}' and which has no EOS, so every CoT runs to cot_max
 * and every answer to ans_max: the work is fixed and the twin can do exactly the same.
 * With the base model the CoT and answer stop naturally; the twin then runs, for every
 * sequence, the mean CoT / prefill / answer lengths softcot produced (the same number of
 * decoded and trained tokens, without the padding a real Hugging Face batch would carry).
 * Gold answers never match; the bench reward is reward_score (0 or 10 here), replaced by a
 * deterministic hash of the answer text (0 or 10) when it is 0, so the RLOO advantages have
 * a spread and the gradient is not zero. (train_step replays and back-propagates every
 * rollout whatever the advantages, so this changes the numbers, not the amount of work.)
 * Trajectory top-k recording is on (record_topk 8), as in `softcot train`'s defaults.
 *
 * usage: bench_rl [--no-twin] [--only tiny|big] [--mode hard|soft] [--steps N]
 *   --steps N: RL steps per model and mode (default 2); the last one is reported, the
 *   first one pays for allocating and paging in the replay buffers. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/run_setup.h"
#include "core/cpu.h"
#include "core/rng.h"
#include "dist/dist.h"
#include "model/init.h"
#include "model/model.h"
#include "rl/reward.h"
#include "rl/rollout.h"
#include "rl/train.h"
#include "text/tokenizer.h"
#include "word_tokenizer.h"

enum { PROMPT_LEN = 40, N_TASKS = 4, ANS_MAX = 16 };
static const char *STOP = "The final answer is:";

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int bench_reward(const char *answer_text, const char *gold) {
    int r = reward_score(answer_text, gold);
    if (r == 0 && (fnv1a(answer_text) >> 7 & 1)) r = 10;
    return r;
}

typedef struct {
    const char *name;
    Model *model;
    const Tokenizer *tok;
    const int *prefill, *prefill_long;
    int n_prefill, n_prefill_long;
    int B, G, cot_max, prompt_len;
} Case;

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

typedef struct {
    StepStats s;
    double first_step_seconds, cpu_seconds, first_cpu_seconds;
    double mean_cot, mean_prefill, mean_ans;
    int n_rollouts;
} Result;

static void run_softcot(const Case *cs, CotMode mode, int steps, Dist *dist, Result *res) {
    Model *m = cs->model;
    TaskSet tasks = {.n = N_TASKS};
    tasks.prompt_ids = xcalloc(N_TASKS, sizeof(int *));
    tasks.prompt_len = xcalloc(N_TASKS, sizeof(int));
    tasks.gold = xcalloc(N_TASKS, sizeof(char *));
    RngKey key = {.seed = 77, .purpose = RNG_PURPOSE_DATA};
    for (int t = 0; t < N_TASKS; t++) {
        tasks.prompt_len[t] = cs->prompt_len;
        tasks.prompt_ids[t] = xmalloc((size_t)cs->prompt_len * sizeof(int));
        for (int i = 0; i < cs->prompt_len; i++) {
            int id = (int)(rng_uniform(key, (uint32_t)(t * 1000 + i)) * (float)m->cfg.vocab_size);
            tasks.prompt_ids[t][i] = id < m->cfg.vocab_size ? id : m->cfg.vocab_size - 1;
        }
        tasks.gold[t] = strdup("987654321");
    }
    TrainParams p = {.mode = mode, .steps = 100, .batch_prompts = cs->B, .group_size = cs->G,
                     .lr = 1e-5f, .min_lr_ratio = 0.1f, .warmup = 20, .beta1 = 0.9f, .beta2 = 0.999f,
                     .adam_eps = 1e-8f, .weight_decay = 0.0f,
                     .cot_temperature = mode == COT_HARD ? 1.0f : mode == COT_SOFT ? 0.5f : 1e-4f,
                     .noise_gamma = 0.33f, .ans_temperature = 1.0f, .cot_max = cs->cot_max,
                     .ans_max = ANS_MAX, .stop_string = STOP, .prefill = cs->prefill,
                     .prefill_long = cs->prefill_long, .n_prefill = cs->n_prefill,
                     .n_prefill_long = cs->n_prefill_long, .micro_batch_tokens = 4096, .gen_batch = 64,
                     .seed = 1234, .grad_clip = 0.0f, .max_bad_steps = 5, .record_topk = 8};
    /* Work on a copy of the weights: AdamW changes them and every mode starts equal. */
    const size_t P = m->layout.n_floats;
    float *saved = xmalloc(P * sizeof(float));
    model_download_params(m, saved);
    TrainState st;
    train_state_init(&st, m);
    memset(res, 0, sizeof *res);
    for (int s = 0; s < steps; s++) {
        RolloutBatch rb;
        float *adv = NULL;
        Err err;
        double c0 = cpu_now();
        if (train_step(&st, &p, &tasks, cs->tok, bench_reward, dist, &res->s, &rb, &adv, &err))
            FATAL("bench_rl: train_step: %s", err.msg);
        res->cpu_seconds = cpu_now() - c0;
        if (s == 0) res->first_step_seconds = res->s.step_seconds, res->first_cpu_seconds = res->cpu_seconds;
        double c = 0, f = 0, a = 0;
        for (int i = 0; i < rb.n; i++) {
            c += rb.r[i].cot_len;
            f += rb.r[i].prefill_long ? cs->n_prefill_long : cs->n_prefill;
            a += rb.r[i].ans_len;
        }
        res->n_rollouts = rb.n;
        res->mean_cot = c / rb.n, res->mean_prefill = f / rb.n, res->mean_ans = a / rb.n;
        rollouts_free(&rb);
        free(adv);
    }
    train_state_free(&st);
    dev_upload(m->params, saved, P * sizeof(float));
    free(saved);
    for (int t = 0; t < N_TASKS; t++) free(tasks.prompt_ids[t]), free(tasks.gold[t]);
    free(tasks.prompt_ids), free(tasks.prompt_len), free(tasks.gold);
}

typedef struct {
    double seconds, gen_seconds, train_seconds, gen_tokens, train_tokens, cpu_seconds;
} TwinResult;

static int run_twin(const Case *cs, CotMode mode, const Result *r, int repeats, TwinResult *tw) {
    const ModelConfig *c = &cs->model->cfg;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tests/twin/bench_rl_twin.py --dim %d --layers %d --heads %d --kv-heads %d "
             "--head-dim %d --hidden %d --vocab %d%s --norm-eps %g --theta %g --mode %s --batch %d --group %d "
             "--prompt-len %d --cot-len %d --prefill-len %d --ans-len %d --repeats %d 2>&1",
             c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->hidden_dim, c->vocab_size,
             c->tied_embeddings ? " --tied" : "", c->norm_eps, c->rope_theta, cot_mode_name(mode), cs->B,
             cs->G, cs->prompt_len, (int)lround(r->mean_cot), (int)lround(r->mean_prefill),
             (int)lround(r->mean_ans), repeats);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[1024];
    int got = 0;
    while (fgets(line, sizeof line, p)) {
        if (sscanf(line, "twin_rl seconds=%lf gen_seconds=%lf train_seconds=%lf gen_tokens=%lf train_tokens=%lf cpu_seconds=%lf",
                   &tw->seconds, &tw->gen_seconds, &tw->train_seconds, &tw->gen_tokens, &tw->train_tokens,
                   &tw->cpu_seconds) == 6)
            got = 1;
        else if (line[0] != '#') fprintf(stdout, "#   twin: %s", line);
    }
    pclose(p);
    return got ? 0 : -1;
}

static const char *only_mode = NULL; /* --mode: run one mode only */

static void run_case(const Case *cs, int steps, int want_twin, Dist *dist) {
    const ModelConfig *c = &cs->model->cfg;
    printf("\n## %s: d=%d layers=%d heads=%d/%d ffn=%d V=%d%s (%.2f M params), B=%d G=%d, prompt %d, "
           "cot_max %d, ans_max %d\n",
           cs->name, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->hidden_dim, c->vocab_size,
           c->tied_embeddings ? " tied" : "", cs->model->layout.n_floats / 1e6, cs->B, cs->G, cs->prompt_len,
           cs->cot_max, ANS_MAX);
    printf("%-5s %9s %10s %6s %7s %7s %8s %9s %9s %6s %8s %8s\n", "mode", "gen tok/s", "train tok/s",
           "gen %", "s/step", "cpu s", "cot/ans", "twin s", "twin cpu", "twin gen %", "x (wall)", "x (cpu)");
    fflush(stdout);
    const CotMode modes[2] = {COT_HARD, COT_SOFT};
    for (int k = 0; k < 2; k++) {
        if (only_mode && strcmp(only_mode, cot_mode_name(modes[k]))) continue;
        Result r;
        run_softcot(cs, modes[k], steps, dist, &r);
        const StepStats *s = &r.s;
        TwinResult tw = {0};
        int have_twin = want_twin && run_twin(cs, modes[k], &r, steps, &tw) == 0;
        char lens[32];
        snprintf(lens, sizeof lens, "%.1f/%.1f", r.mean_cot, r.mean_ans);
        printf("%-5s %9.1f %10.1f %6.1f %7.2f %7.2f %8s", cot_mode_name(modes[k]), s->gen_tokens / s->gen_seconds,
               s->train_tokens / s->train_seconds, 100.0 * s->gen_seconds / s->step_seconds, s->step_seconds,
               r.cpu_seconds, lens);
        if (have_twin)
            printf(" %9.2f %9.2f %10.1f %7.2fx %7.2fx\n", tw.seconds, tw.cpu_seconds,
                   100.0 * tw.gen_seconds / tw.seconds, tw.seconds / s->step_seconds, tw.cpu_seconds / r.cpu_seconds);
        else
            printf(" %9s %9s %10s %8s %8s\n", "-", "-", "-", "-", "-");
        printf("#   softcot: gen %.2f s (%.0f rows), replay fwd+bwd %.2f s (%.0f rows), rest %.2f s (rewards, "
               "AdamW); first step %.2f s (cpu %.2f s)\n",
               s->gen_seconds, s->gen_tokens, s->train_seconds, s->train_tokens,
               s->step_seconds - s->gen_seconds - s->train_seconds, r.first_step_seconds, r.first_cpu_seconds);
        if (have_twin)
            printf("#   twin:    gen %.2f s (%.0f rows), fwd+bwd+AdamW %.2f s (%.0f rows); softcot/twin s/step "
                   "%.3f (wall) %.3f (cpu)\n",
                   tw.gen_seconds, tw.gen_tokens, tw.train_seconds, tw.train_tokens, s->step_seconds / tw.seconds,
                   r.cpu_seconds / tw.cpu_seconds);
        else if (want_twin)
            printf("#   pytorch twin did not run (needs /usr/bin/python3 with torch)\n");
        fflush(stdout);
    }
}

static void random_model(Model *m, ModelConfig c, uint64_t seed) {
    ParamLayout L;
    ParamOffsets O;
    param_layout_build(&L, &O, &c);
    float *host = xmalloc(L.n_floats * sizeof(float));
    param_init_random(&c, seed, 0.02f, host);
    param_layout_free(&L, &O);
    model_init(m, &c, host);
    free(host);
}

int main(int argc, char **argv) {
    cpu_setup_blas(argc, argv);
    int want_twin = 1, steps = 2;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-twin")) want_twin = 0;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc) only_mode = argv[++i];
        else {
            fprintf(stderr, "usage: bench_rl [--no-twin] [--only tiny|big] [--mode hard|soft] [--steps N]\n");
            return 2;
        }
    }
    if (steps < 1) steps = 1;
    Dist dist;
    dist_init(&dist, &argc, &argv);
    printf("# softcot RL-step bench: backend %s, OPENBLAS_CORETYPE=%s OPENBLAS_NUM_THREADS=%s, %d step(s) "
           "per row, the last reported; the twin gets the same number of steps\n",
           ops_backend_name(), getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(auto)",
           getenv("OPENBLAS_NUM_THREADS") ? getenv("OPENBLAS_NUM_THREADS") : "(auto)", steps);
    printf("# gen tok/s: decoded rows (CoT, prefill, answer) / generation time (prompt prefill included);\n"
           "# train tok/s: replayed positions / replay fwd+bwd time; gen share: generation / whole step;\n"
           "# s/step: wall seconds of the whole step; cpu s: process CPU seconds of it (robust on a busy machine);\n"
           "# x (wall), x (cpu): twin s/step / softcot s/step, i.e. how many times faster softcot is\n");

    /* (a) the built-in base model, or a random one of the same kind */
    if (!only || !strcmp(only, "tiny")) {
        const char *dir = "inputs/models/base";
        char path[256];
        snprintf(path, sizeof path, "%s/config.json", dir);
        struct stat sb;
        RunAssets a;
        memset(&a, 0, sizeof a);
        Model rm;
        Tokenizer *wt = NULL;
        Case cs = {.B = 2, .G = 32, .cot_max = 96, .prompt_len = PROMPT_LEN};
        int prefill[4] = {11, 12, 13, 14}, prefill_long[10] = {21, 22, 23, 24, 25, 26, 27, 28, 29, 30};
        Err err;
        if (stat(path, &sb) == 0) {
            if (run_assets_load(dir, &a, &err) || prefills_encode(a.tok, STOP, " \\boxed{", &a, &err))
                FATAL("bench_rl: %s", err.msg);
            cs.name = "built-in base model (inputs/models/base)";
            cs.model = &a.model;
            cs.tok = a.tok;
            cs.prefill = a.prefill, cs.n_prefill = a.n_prefill;
            cs.prefill_long = a.prefill_long, cs.n_prefill_long = a.n_prefill_long;
            int room = a.model.cfg.max_seq - (cs.cot_max + cs.n_prefill_long + ANS_MAX + 1);
            if (room < cs.prompt_len) cs.prompt_len = room;
            if (cs.prompt_len < 1) FATAL("bench_rl: %s: max_position_embeddings too small", dir);
        } else {
            ModelConfig c = {.arch = ARCH_LLAMA, .dim = 128, .hidden_dim = 352, .n_layers = 4, .n_heads = 4,
                             .n_kv_heads = 2, .head_dim = 32, .vocab_size = 512, .max_seq = 512,
                             .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tied_embeddings = 1, .bos_id = -1,
                             .n_eos = 0};
            random_model(&rm, c, 5);
            wt = word_tokenizer(c.vocab_size);
            cs.name = "random tiny Llama (inputs/models/base not found)";
            cs.model = &rm;
            cs.tok = wt;
            cs.prefill = prefill, cs.n_prefill = 4, cs.prefill_long = prefill_long, cs.n_prefill_long = 10;
        }
        run_case(&cs, steps, want_twin, &dist);
        if (wt) {
            tokenizer_free(wt);
            model_free(&rm);
        } else {
            run_assets_free(&a);
        }
    }

    /* (b) a random d=1024 Llama */
    if (!only || !strcmp(only, "big")) {
        ModelConfig c = {.arch = ARCH_LLAMA, .dim = 1024, .hidden_dim = 2816, .n_layers = 8, .n_heads = 16,
                         .n_kv_heads = 4, .head_dim = 64, .vocab_size = 32000, .max_seq = 4096,
                         .norm_eps = 1e-5f, .rope_theta = 10000.0f, .tied_embeddings = 0, .bos_id = -1,
                         .n_eos = 0};
        Model m;
        random_model(&m, c, 6);
        Tokenizer *wt = word_tokenizer(c.vocab_size);
        int prefill[4] = {11, 12, 13, 14}, prefill_long[10] = {21, 22, 23, 24, 25, 26, 27, 28, 29, 30};
        Case cs = {.name = "random Llama d=1024", .model = &m, .tok = wt, .prefill = prefill, .n_prefill = 4,
                   .prefill_long = prefill_long, .n_prefill_long = 10, .B = 2, .G = 8, .cot_max = 64,
                   .prompt_len = PROMPT_LEN};
        run_case(&cs, steps, want_twin, &dist);
        tokenizer_free(wt);
        model_free(&m);
    }
    dist_finalize(&dist);
    return 0;
}
