/* bench_base_model — measures the built-in base model on the held-out synthetic test split
 * with the rollout engine: hard-greedy pass@1, and hard sampling (CoT temperature 1,
 * greedy answer) pass@1 / pass@k, scored with rl/reward.h. This is how the base model's
 * difficulty was tuned (docs/base-model.md) before `softcot eval` existed; `make bench`
 * runs it on inputs/models/base.
 *
 * usage: bench_base_model [MODEL_DIR] [N_PROBLEMS] [SAMPLES] [COT_MAX]
 * The task knobs, template, stop string and prefill come from MODEL_DIR/sft_config.ini
 * (written by `softcot sft`), so the test split is the one matching the training split. */
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/options.h"
#include "cli/run_setup.h"
#include "data/synth.h"
#include "io/model_dir.h"
#include "model/model.h"
#include "rl/passk.h"
#include "rl/reward.h"
#include "rl/rollout.h"
#include "text/prompt.h"
#include "text/tokenizer.h"

typedef struct {
    SynthConfig synth;
    char template_text[1024], stop[128], prefill[128];
    int synthetic;
    Err err;
    int failed;
} Recipe;

static int on_ini(void *user, const char *section, const char *key, const char *raw) {
    Recipe *r = user;
    (void)section;
    /* options_dump quotes values with edge whitespace (prefill = " \boxed{"); inih keeps
     * the quotes */
    char *value = options_unquote(raw);
    if (!strcmp(key, "template")) snprintf(r->template_text, sizeof r->template_text, "%s", value);
    else if (!strcmp(key, "stop_string")) snprintf(r->stop, sizeof r->stop, "%s", value);
    else if (!strcmp(key, "prefill")) snprintf(r->prefill, sizeof r->prefill, "%s", value);
    else if (!strcmp(key, "synthetic")) r->synthetic = !strcmp(value, "true");
    else if (!strcmp(key, "synth") && *value) {
        /* key=value,... as `softcot sft --synth` took it; test_fraction is shared by both
         * splits, so the test split generated here is disjoint from the training one */
        char copy[1024], *save = NULL;
        snprintf(copy, sizeof copy, "%s", value);
        for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq) break;
            *eq = '\0';
            if (synth_config_set(&r->synth, kv, eq + 1, &r->err)) r->failed = 1;
        }
    }
    free(value);
    return 1;
}

/* inih strips unquoted values, so an older sft_config.ini's " \boxed{" lost its leading
 * space: restore it. */
static void fix_prefill(char *p, size_t cap) {
    if (p[0] != ' ') {
        char tmp[160];
        snprintf(tmp, sizeof tmp, " %s", p);
        snprintf(p, cap, "%.126s", tmp);
    }
}

static int *encode(const Tokenizer *tok, const char *s, int special, int *n) {
    int *ids;
    Err err;
    if (tokenizer_encode(tok, s, strlen(s), special, &ids, n, &err)) {
        fprintf(stderr, "bench_base_model: %s\n", err.msg);
        exit(2);
    }
    return ids;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "inputs/models/base";
    int n_prob = argc > 2 ? atoi(argv[2]) : 200, samples = argc > 3 ? atoi(argv[3]) : 32;
    int cot_max = argc > 4 ? atoi(argv[4]) : 128;
    Recipe r = {0};
    synth_config_default(&r.synth);
    char ini[1024];
    snprintf(ini, sizeof ini, "%s/sft_config.ini", dir);
    if (ini_parse(ini, on_ini, &r) != 0 || r.failed || !r.synthetic) {
        fprintf(stderr, "bench_base_model: %s: %s\n", ini, r.failed ? r.err.msg : "missing, unreadable or not a --synthetic run");
        return 2;
    }
    fix_prefill(r.prefill, sizeof r.prefill);
    char *tmpl = unescape_text(r.template_text);
    snprintf(r.template_text, sizeof r.template_text, "%s", tmpl);
    free(tmpl);
    Err err;
    ModelConfig cfg;
    float *host;
    Tokenizer *tok = tokenizer_load_dir(dir, &err);
    if (!tok || model_dir_load(dir, &cfg, &host, &err)) {
        fprintf(stderr, "bench_base_model: %s\n", err.msg);
        return 2;
    }
    Model m;
    model_init(&m, &cfg, host);
    free(host);
    Dataset ds;
    if (synth_generate(&r.synth, SYNTH_TEST, n_prob, &ds, &err)) {
        fprintf(stderr, "bench_base_model: %s\n", err.msg);
        return 2;
    }
    int **prompts = malloc(sizeof(int *) * ds.n), *plen = malloc(sizeof(int) * ds.n);
    RolloutRequest *req = calloc((size_t)ds.n, sizeof *req);
    for (int i = 0; i < ds.n; i++) {
        char *p;
        if (prompt_build(r.template_text, ds.items[i].question, CHAT_NONE, NULL, &p, &err)) {
            fprintf(stderr, "bench_base_model: %s\n", err.msg);
            return 2;
        }
        prompts[i] = encode(tok, p, 1, &plen[i]);
        free(p);
        req[i] = (RolloutRequest){.prompt_index = i, .prompt = prompts[i], .n_prompt = plen[i], .first_sample = 0, .n_samples = 1};
    }
    char longp[256];
    snprintf(longp, sizeof longp, " %s%s", r.stop, r.prefill);
    int npf, npfl;
    int *pf = encode(tok, r.prefill, 0, &npf), *pfl = encode(tok, longp, 0, &npfl);
    RolloutConfig rc = {.mode = COT_HARD, .cot_temperature = 0.0f, .ans_temperature = 0.0f, .cot_max = cot_max,
                        .ans_max = 32, .stop_string = r.stop, .prefill = pf, .n_prefill = npf,
                        .prefill_long = pfl, .n_prefill_long = npfl, .seed = 2024};
    printf("bench_base_model: %s, %d test problems (max_steps %d, max_number %d, ops %s), template '%s'\n", dir, ds.n,
           r.synth.max_steps, r.synth.max_number, r.synth.ops, r.template_text);

    /* hard greedy */
    double t0 = now_s();
    RolloutBatch b;
    if (rollouts_generate(&m, tok, &rc, req, ds.n, 256, &b, &err)) {
        fprintf(stderr, "bench_base_model: %s\n", err.msg);
        return 2;
    }
    int correct = 0, formed = 0, stop_str = 0;
    long toks = 0;
    for (int i = 0; i < b.n; i++) {
        int s = reward_score(b.r[i].ans_text, ds.items[b.r[i].prompt_index].gold);
        correct += s == REWARD_CORRECT;
        formed += s >= REWARD_WRONG;
        stop_str += b.r[i].cot_stop == COT_STOP_STRING;
        toks += b.r[i].cot_len + b.r[i].ans_len;
    }
    double tg = now_s() - t0;
    printf("hard greedy : pass@1 %.1f%%  (well-formed %.1f%%, stopped by the stop string %.1f%%, %.1f CoT tokens, %.1f s)\n",
           100.0 * correct / b.n, 100.0 * formed / b.n, 100.0 * stop_str / b.n, (double)toks / b.n - 0, tg);
    if (getenv("BENCH_SHOW"))
        for (int i = 0; i < 5 && i < b.n; i++)
            printf("  [%s] %s\n   -> %s| \\boxed{%s\n", ds.items[b.r[i].prompt_index].gold, ds.items[b.r[i].prompt_index].question, b.r[i].cot_text, b.r[i].ans_text);
    rollouts_free(&b);

    /* hard sampling */
    if (samples > 0) {
        for (int i = 0; i < ds.n; i++) req[i].n_samples = samples;
        rc.cot_temperature = 1.0f;
        t0 = now_s();
        if (rollouts_generate(&m, tok, &rc, req, ds.n, 512, &b, &err)) {
            fprintf(stderr, "bench_base_model: %s\n", err.msg);
            return 2;
        }
        int *nn = calloc((size_t)ds.n, sizeof(int)), *cc = calloc((size_t)ds.n, sizeof(int));
        toks = 0;
        for (int i = 0; i < b.n; i++) {
            int p = b.r[i].prompt_index;
            nn[p]++;
            cc[p] += reward_score(b.r[i].ans_text, ds.items[p].gold) == REWARD_CORRECT;
            toks += b.r[i].cot_len + b.r[i].ans_len;
        }
        double ts = now_s() - t0;
        printf("hard sample : pass@1 %.1f%%", 100.0 * pass_at_k_mean(nn, cc, ds.n, 1));
        for (int k = 4; k <= samples; k *= 2) printf("  pass@%d %.1f%%", k, 100.0 * pass_at_k_mean(nn, cc, ds.n, k));
        if (samples & (samples - 1)) printf("  pass@%d %.1f%%", samples, 100.0 * pass_at_k_mean(nn, cc, ds.n, samples));
        printf("  (%d samples each, %.0f generated tokens/s, %.1f s)\n", samples, (double)toks / ts, ts);
        free(nn), free(cc);
        rollouts_free(&b);
    }
    for (int i = 0; i < ds.n; i++) free(prompts[i]);
    free(prompts), free(plen), free(req), free(pf), free(pfl);
    dataset_free(&ds);
    model_free(&m);
    tokenizer_free(tok);
    return 0;
}
