/* softcot eval: a model on math problems in the six CoT inference settings of DESIGN.md
 * §1 "Evaluation" (greedy pass@1, sample pass@1 and pass@k, CoT length, stop reasons,
 * entropy profile), and multiple-choice OOD scoring (accuracy, per-token NLL of the
 * correct choice). Prints a table, writes a JSON results file atomically (docs/eval.md)
 * after every mode, so a long run that is stopped keeps what it finished. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/run_setup.h"
#include "core/check.h"
#include "core/fileio.h"
#include "data/dataset.h"
#include "rl/eval.h"
#include "rl/train.h"

typedef struct {
    char *model, *data, *format, *synth, *modes, *k, *template_text, *chat, *stop_string, *prefill;
    char *out, *ood, *ood_format, *device, *precision;
    int synthetic, samples, cot_max, ans_max, seed, batch, limit, entropy_bin, ood_rows;
    float tau_hard, tau_soft, tau_fuzzy, noise_gamma;
} EvalOptions;

#define O(field) offsetof(EvalOptions, field)
static const OptSpec EVAL_OPTS[] = {
    {"model", OPT_STRING, O(model), "", NULL, "model directory (config.json, model.safetensors, tokenizer) (required)"},
    {"data", OPT_STRING, O(data), "", NULL, "math problems: a JSONL file (or use --synthetic)"},
    {"format", OPT_STRING, O(format), "gsm8k", NULL, "--data format: gsm8k, math, deepscaler"},
    {"synthetic", OPT_INT, O(synthetic), "0", NULL, "evaluate on N problems of the built-in synthetic task's test split"},
    {"synth", OPT_STRING, O(synth), "", NULL, "synthetic task settings key=value,... (seed, min_steps, max_steps, max_number, max_factor, max_value, ops, test_fraction); must match training's"},
    {"limit", OPT_INT, O(limit), "0", NULL, "use only the first N problems and the first N rows of each --ood file (0 = all)"},
    {"modes", OPT_STRING, O(modes), "hard-greedy,hard-sample,soft-greedy,soft-sample,fuzzy-greedy,fuzzy-sample", "all six", "inference settings to run, comma-separated"},
    {"samples", OPT_INT, O(samples), "32", "32", "samples per problem in the *-sample modes (>= the largest k)"},
    {"k", OPT_STRING, O(k), "1,2,4,8,16,32", "1..32", "pass@k values reported for the *-sample modes"},
    {"cot_max", OPT_INT, O(cot_max), "96", "512", "CoT steps at most"},
    {"ans_max", OPT_INT, O(ans_max), "32", "32", "answer tokens at most"},
    {"stop_string", OPT_STRING, O(stop_string), "The final answer is:", "The final answer is:", "the CoT ends when the shadow text ends with this"},
    {"prefill", OPT_STRING, O(prefill), " \\boxed{", "\\boxed{", "appended after the stop string (after ' <stop string>' when the CoT hits cot_max)"},
    {"template", OPT_STRING, O(template_text), "Question: {question}\\nAnswer:", "the paper's zero-shot template", "prompt template ({question} is replaced; \\n is a newline); use training's"},
    {"chat", OPT_STRING, O(chat), "none", "none", "chat wrapping: none, llama3, chatml"},
    {"tau_hard", OPT_FLOAT, O(tau_hard), "1.0", "1.0", "hard-sample CoT temperature (hard-greedy is tau = 0)"},
    {"tau_soft", OPT_FLOAT, O(tau_soft), "0.5", "0.5", "soft CoT mixture temperature"},
    {"tau_fuzzy", OPT_FLOAT, O(tau_fuzzy), "1e-4", "1e-4", "fuzzy CoT mixture temperature"},
    {"noise_gamma", OPT_FLOAT, O(noise_gamma), "0.33", "0.33", "soft/fuzzy-sample noise sigma = gamma * rms(E); greedy modes use sigma = 0"},
    {"seed", OPT_INT, O(seed), "1234", NULL, "seed of CoT sampling and noise"},
    {"device", OPT_STRING, O(device), "cpu", NULL, "compute device: cpu, or cuda (needs make CUDA=1)"},
    {"precision", OPT_STRING, O(precision), "auto", NULL, "auto (bf16 on cuda, fp32 on cpu), bf16 or fp32"},
    {"batch", OPT_INT, O(batch), "64", NULL, "sequences decoded together (memory: KV cache of batch x sequence length)"},
    {"entropy_bin", OPT_INT, O(entropy_bin), "8", NULL, "CoT positions per bin of the entropy profile"},
    {"out", OPT_STRING, O(out), "eval.json", NULL, "results file (JSON, written atomically; schema in docs/eval.md)"},
    {"ood", OPT_STRING, O(ood), "", NULL, "multiple-choice JSONL file(s), comma-separated (MMLU, ARC)"},
    {"ood_format", OPT_STRING, O(ood_format), "auto", NULL, "mmlu, arc, or auto (from the file name: 'arc' or 'mmlu' in it); comma-separated per file"},
    {"ood_rows", OPT_INT, O(ood_rows), "2048", NULL, "positions per teacher-forced forward call when scoring choices"},
};
#undef O
enum { N_EVAL_OPTS = sizeof EVAL_OPTS / sizeof EVAL_OPTS[0] };

static const char *EVAL_USAGE =
    "usage: softcot eval --model DIR (--data FILE [--format F] | --synthetic N) [--ood FILE[,FILE]]\n"
    "                    [--config FILE.ini] [--key=value ...]\n"
    "\n"
    "Evaluates a model on math problems in the six CoT inference settings (DESIGN.md §1):\n"
    "hard-greedy (tau 0), hard-sample (tau 1), soft-greedy / soft-sample (tau 0.5),\n"
    "fuzzy-greedy / fuzzy-sample (tau 1e-4); greedy soft/fuzzy use sigma = 0, the sample\n"
    "modes sigma = 0.33 rms(E); the answer is always greedy. Reports greedy pass@1, sample\n"
    "pass@1 and pass@k, mean CoT length, stop reasons and the CoT entropy profile. With\n"
    "--ood, scores multiple-choice rows by the log-likelihood of each choice given\n"
    "\"Question: ...\\nAnswer:\" (accuracy, per-token NLL of the correct choice).\n"
    "All samples of all problems are decoded together, --batch sequences at a time.\n"
    "Prints a table; writes --out (JSON, docs/eval.md). Exit 2 on bad input.\n"
    "\n"
    "Options (INI keys; on the command line --key=value or --key value):\n";

static int parse_eval_args(int argc, char **argv, EvalOptions *o, int *want_help, Err *err) {
    options_defaults(EVAL_OPTS, N_EVAL_OPTS, o);
    *want_help = 0;
    char **rest = xmalloc((size_t)(argc + 1) * sizeof(char *));
    int n_rest = 0, rc = 0;
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) *want_help = 1;
        else if (!strcmp(argv[i], "--config") && i + 1 < argc) config = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9)) config = argv[i] + 9;
        else if (!strcmp(argv[i], "--config")) rc = err_set(err, "option '--config' needs a value");
        else rest[n_rest++] = argv[i];
    }
    if (rc == 0 && !*want_help) {
        if (config) rc = options_load_ini(EVAL_OPTS, N_EVAL_OPTS, o, config, err);
        if (rc == 0) rc = options_parse_args(EVAL_OPTS, N_EVAL_OPTS, o, n_rest, rest, 0, err);
    }
    free(rest);
    return rc;
}

typedef struct {
    int on[EVAL_N_MODES];
    int *ks, n_ks;
    int any_sample;
} Plan;

static int validate(const EvalOptions *o, Plan *p, Err *err) {
    memset(p, 0, sizeof *p);
    if (!*o->model) return err_set(err, "--model is required");
    if (*o->data && o->synthetic) return err_set(err, "give either --data or --synthetic, not both");
    if (!strcmp(o->data, "synthetic"))
        return err_set(err, "--data synthetic: use --synthetic N (N problems of the synthetic task's test split)");
    if (!*o->data && o->synthetic <= 0 && !*o->ood)
        return err_set(err, "nothing to evaluate: give --data FILE, --synthetic N (N >= 1) or --ood FILE");
    if (o->synthetic < 0) return err_set(err, "--synthetic must be at least 1 (got %d)", o->synthetic);
    if (o->limit < 0) return err_set(err, "--limit must be >= 0 (got %d)", o->limit);
    if (o->samples < 1) return err_set(err, "--samples must be at least 1 (got %d)", o->samples);
    if (o->cot_max < 1 || o->ans_max < 1) return err_set(err, "--cot_max and --ans_max must be at least 1");
    if (o->batch < 1) return err_set(err, "--batch must be at least 1 (got %d)", o->batch);
    if (o->entropy_bin < 1) return err_set(err, "--entropy_bin must be at least 1 (got %d)", o->entropy_bin);
    if (o->ood_rows < 1) return err_set(err, "--ood_rows must be at least 1 (got %d)", o->ood_rows);
    if (!(o->tau_hard > 0) || !(o->tau_soft > 0) || !(o->tau_fuzzy > 0))
        return err_set(err, "--tau_hard, --tau_soft and --tau_fuzzy must be positive");
    if (!(o->noise_gamma >= 0)) return err_set(err, "--noise_gamma must be >= 0");
    if (!*o->stop_string) return err_set(err, "--stop_string must not be empty");
    if (!*o->out) return err_set(err, "--out must not be empty");
    if (eval_modes_parse(o->modes, p->on, err)) return -1;
    for (int m = 0; m < EVAL_N_MODES; m++) p->any_sample |= p->on[m] && eval_mode_is_sample((EvalMode)m);
    if (parse_id_list(o->k, "--k", &p->ks, &p->n_ks, err)) return -1;
    if (p->n_ks == 0) return err_set(err, "--k: no value given");
    for (int i = 0; i < p->n_ks; i++) {
        if (p->ks[i] < 1) return err_set(err, "--k: values must be at least 1 (got %d)", p->ks[i]);
        for (int j = 0; j < i; j++)
            if (p->ks[j] == p->ks[i]) return err_set(err, "--k: %d is listed twice", p->ks[i]);
        if (p->any_sample && p->ks[i] > o->samples)
            return err_set(err, "--k %d needs at least %d samples per problem (--samples is %d)", p->ks[i],
                           p->ks[i], o->samples);
    }
    return 0;
}

/* ---- progress on stderr ---- */

typedef struct {
    int tty;
    double last_print;
    int printed;
} Progress;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fmt_secs(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

/* A terminal gets a line rewritten after every chunk; a log file gets a line at most
 * every 30 s, so short runs stay quiet and long batch jobs show they are alive. */
static void on_progress(void *ctx, EvalMode mode, long done, long total, long gen_tokens, double seconds) {
    Progress *p = ctx;
    const double t = now_s();
    const int last = done == total;
    /* log file: a line every 30 s, and the closing line of a mode that had any */
    if (!p->tty && t - p->last_print < 30.0 && !(last && p->printed)) return;
    if (p->tty && last && seconds < 2.0) {
        if (p->printed) fputs("\r\033[K", stderr);
        p->printed = 0;
        return;
    }
    p->last_print = t;
    char eta[32];
    fmt_secs(done > 0 ? seconds * (double)(total - done) / (double)done : 0, eta, sizeof eta);
    fprintf(stderr, "%s%-12s %ld/%ld rollouts  %.0f tok/s  ETA %s%s", p->tty ? "\r\033[K" : "", eval_mode_name(mode),
            done, total, seconds > 0 ? gen_tokens / seconds : 0.0, eta, p->tty && !last ? "" : "\n");
    p->printed = !last;
    fflush(stderr);
}

/* ---- results ---- */

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

/* A float option as the decimal the user wrote (0.0001, not 9.99999974737875e-05). */
static double float_value(float f) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)f);
    return strtod(buf, NULL);
}

static double ratio(long a, long b) { return b > 0 ? (double)a / (double)b : NAN; }

static cJSON *mode_json(const EvalModeStats *s, const Plan *p) {
    cJSON *o = cJSON_CreateObject();
    const int sample = eval_mode_is_sample(s->mode);
    cJSON_AddStringToObject(o, "cot", cot_mode_name(eval_mode_cot(s->mode)));
    cJSON_AddStringToObject(o, "sampling", sample ? "sample" : "greedy");
    cJSON_AddNumberToObject(o, "cot_temperature", float_value(s->cot_temperature));
    cJSON_AddNumberToObject(o, "sigma", float_value(s->sigma));
    cJSON_AddNumberToObject(o, "ans_temperature", float_value(s->ans_temperature));
    cJSON_AddNumberToObject(o, "n_problems", s->n_problems);
    cJSON_AddNumberToObject(o, "samples_per_problem", s->n_samples);
    cJSON_AddNumberToObject(o, "n_rollouts", (double)s->n_rollouts);
    const double acc = eval_frac_correct(s);
    cJSON_AddItemToObject(o, "greedy_pass_at_1", sample ? cJSON_CreateNull() : num_or_null(acc));
    cJSON_AddItemToObject(o, "sample_pass_at_1", sample ? num_or_null(eval_pass_at_k(s, 1)) : cJSON_CreateNull());
    cJSON *pk = cJSON_AddObjectToObject(o, "pass_at_k");
    for (int i = 0; sample && i < p->n_ks; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", p->ks[i]);
        cJSON_AddItemToObject(pk, key, num_or_null(eval_pass_at_k(s, p->ks[i])));
    }
    long closed = 0;
    for (int i = 0; i < s->n_problems; i++) closed += s->n_closed[i];
    cJSON_AddItemToObject(o, "frac_correct", num_or_null(acc));
    cJSON_AddItemToObject(o, "frac_boxed", num_or_null(ratio(closed, s->n_rollouts)));
    cJSON_AddItemToObject(o, "mean_cot_len", num_or_null(ratio(s->cot_tokens, s->n_rollouts)));
    cJSON_AddItemToObject(o, "mean_ans_len", num_or_null(ratio(s->ans_tokens, s->n_rollouts)));
    cJSON_AddItemToObject(o, "frac_stop_string", num_or_null(ratio(s->stop[COT_STOP_STRING], s->n_rollouts)));
    cJSON_AddItemToObject(o, "frac_stop_length", num_or_null(ratio(s->stop[COT_STOP_LENGTH], s->n_rollouts)));
    cJSON_AddItemToObject(o, "frac_stop_eos", num_or_null(ratio(s->stop[COT_STOP_EOS], s->n_rollouts)));
    double esum = 0;
    long ecount = 0;
    cJSON *prof = cJSON_AddObjectToObject(o, "entropy_profile");
    cJSON_AddNumberToObject(prof, "bin", s->entropy_bin);
    cJSON *mean = cJSON_AddArrayToObject(prof, "mean"), *count = cJSON_AddArrayToObject(prof, "count");
    for (int b = 0; b < s->n_bins; b++) {
        cJSON_AddItemToArray(mean, s->entropy_count[b] ? cJSON_CreateNumber(s->entropy_sum[b] / s->entropy_count[b])
                                                       : cJSON_CreateNull());
        cJSON_AddItemToArray(count, cJSON_CreateNumber((double)s->entropy_count[b]));
        esum += s->entropy_sum[b];
        ecount += s->entropy_count[b];
    }
    cJSON_AddItemToObject(o, "mean_entropy", num_or_null(ecount ? esum / ecount : NAN));
    const long gen = s->cot_tokens + s->ans_tokens;
    cJSON_AddNumberToObject(o, "generated_tokens", (double)gen);
    cJSON_AddNumberToObject(o, "forward_rows", (double)s->gen_rows);
    cJSON_AddNumberToObject(o, "seconds", s->seconds);
    cJSON_AddItemToObject(o, "tokens_per_second", num_or_null(s->seconds > 0 ? gen / s->seconds : NAN));
    cJSON *pp = cJSON_AddObjectToObject(o, "per_problem");
    cJSON_AddItemToObject(pp, "n_correct", cJSON_CreateIntArray(s->n_correct, s->n_problems));
    cJSON_AddItemToObject(pp, "n_boxed", cJSON_CreateIntArray(s->n_closed, s->n_problems));
    return o;
}

typedef struct {
    char *file;
    const char *format;
    McResult r;
} OodResult;

static cJSON *ood_json(const OodResult *res) {
    cJSON *o = cJSON_CreateObject();
    const McResult *r = &res->r;
    cJSON_AddStringToObject(o, "file", res->file);
    cJSON_AddStringToObject(o, "format", res->format);
    cJSON_AddNumberToObject(o, "n_items", r->n_items);
    cJSON_AddItemToObject(o, "accuracy", num_or_null(ratio(r->n_correct, r->n_items)));
    cJSON_AddItemToObject(o, "accuracy_per_token", num_or_null(ratio(r->n_correct_norm, r->n_items)));
    cJSON_AddItemToObject(o, "mean_nll_per_token_correct", num_or_null(r->n_items ? r->sum_nll_token / r->n_items : NAN));
    cJSON_AddItemToObject(o, "mean_tokens_correct", num_or_null(r->n_items ? r->sum_tokens_correct / r->n_items : NAN));
    cJSON_AddNumberToObject(o, "n_truncated", r->n_truncated);
    cJSON_AddItemToObject(o, "predicted", cJSON_CreateIntArray(r->predicted, r->n_items));
    cJSON_AddItemToObject(o, "correct", cJSON_CreateIntArray(r->correct, r->n_items));
    return o;
}

typedef struct {
    const EvalOptions *o;
    const Plan *p;
    const Model *model;
    const char *source;
    int n_problems;
    EvalModeStats *stats; /* [EVAL_N_MODES], done[m] when filled */
    int *done;
    OodResult *ood;
    int n_ood;
} Report;

static int write_results(const Report *rep, int complete, Err *err) {
    const EvalOptions *o = rep->o;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", "softcot-eval/1");
    cJSON_AddBoolToObject(root, "complete", complete);
    cJSON *m = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(m, "dir", o->model);
    cJSON_AddNumberToObject(m, "n_params", (double)rep->model->layout.n_floats);
    cJSON_AddNumberToObject(m, "hidden_size", rep->model->cfg.dim);
    cJSON_AddNumberToObject(m, "num_hidden_layers", rep->model->cfg.n_layers);
    cJSON_AddNumberToObject(m, "vocab_size", rep->model->cfg.vocab_size);
    if (rep->source) {
        cJSON *d = cJSON_AddObjectToObject(root, "data");
        cJSON_AddStringToObject(d, "source", rep->source);
        if (o->synthetic) {
            cJSON_AddStringToObject(d, "format", "synthetic");
            cJSON_AddStringToObject(d, "split", "test");
            cJSON_AddStringToObject(d, "synth", o->synth);
        } else {
            cJSON_AddStringToObject(d, "format", o->format);
        }
        cJSON_AddNumberToObject(d, "n_problems", rep->n_problems);
    } else {
        cJSON_AddNullToObject(root, "data");
    }
    cJSON *s = cJSON_AddObjectToObject(root, "settings");
    cJSON *ml = cJSON_AddArrayToObject(s, "modes");
    for (int k = 0; k < EVAL_N_MODES; k++)
        if (rep->p->on[k]) cJSON_AddItemToArray(ml, cJSON_CreateString(eval_mode_name((EvalMode)k)));
    cJSON_AddNumberToObject(s, "samples", o->samples);
    cJSON_AddItemToObject(s, "k", cJSON_CreateIntArray(rep->p->ks, rep->p->n_ks));
    cJSON_AddNumberToObject(s, "cot_max", o->cot_max);
    cJSON_AddNumberToObject(s, "ans_max", o->ans_max);
    cJSON_AddStringToObject(s, "stop_string", o->stop_string);
    cJSON_AddStringToObject(s, "prefill", o->prefill);
    cJSON_AddStringToObject(s, "template", o->template_text);
    cJSON_AddStringToObject(s, "chat", o->chat);
    cJSON_AddNumberToObject(s, "tau_hard", float_value(o->tau_hard));
    cJSON_AddNumberToObject(s, "tau_soft", float_value(o->tau_soft));
    cJSON_AddNumberToObject(s, "tau_fuzzy", float_value(o->tau_fuzzy));
    cJSON_AddNumberToObject(s, "noise_gamma", float_value(o->noise_gamma));
    cJSON_AddNumberToObject(s, "seed", o->seed);
    cJSON_AddNumberToObject(s, "batch", o->batch);
    cJSON_AddNumberToObject(s, "entropy_bin", o->entropy_bin);
    cJSON_AddNumberToObject(s, "limit", o->limit);
    cJSON *modes = cJSON_AddObjectToObject(root, "modes");
    for (int k = 0; k < EVAL_N_MODES; k++)
        if (rep->done[k]) cJSON_AddItemToObject(modes, eval_mode_name((EvalMode)k), mode_json(&rep->stats[k], rep->p));
    cJSON *ood = cJSON_AddArrayToObject(root, "ood");
    for (int i = 0; i < rep->n_ood; i++) cJSON_AddItemToArray(ood, ood_json(&rep->ood[i]));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    CHECK(text);
    size_t n = strlen(text);
    text[n] = '\n'; /* cJSON_Print's buffer ends in a NUL we may overwrite: we pass n + 1 */
    int rc = atomic_write_all(o->out, text, n + 1, err);
    cJSON_free(text);
    return rc;
}

static void print_table(const Report *rep) {
    const Plan *p = rep->p;
    printf("%-12s %8s %9s", "mode", "rollouts", "greedy@1");
    for (int i = 0; i < p->n_ks; i++) {
        char h[24];
        snprintf(h, sizeof h, "pass@%d", p->ks[i]);
        printf(" %8s", h);
    }
    printf(" %8s %8s %8s %8s %8s %9s\n", "cot_len", "stop_str", "stop_len", "stop_eos", "entropy", "tok/s");
    for (int k = 0; k < EVAL_N_MODES; k++) {
        if (!rep->done[k]) continue;
        const EvalModeStats *s = &rep->stats[k];
        const int sample = eval_mode_is_sample(s->mode);
        printf("%-12s %8ld", eval_mode_name(s->mode), s->n_rollouts);
        if (sample) printf(" %9s", "-");
        else printf(" %9.4f", eval_frac_correct(s));
        for (int i = 0; i < p->n_ks; i++) {
            if (sample) printf(" %8.4f", eval_pass_at_k(s, p->ks[i]));
            else printf(" %8s", "-");
        }
        double esum = 0;
        long ecount = 0;
        for (int b = 0; b < s->n_bins; b++) esum += s->entropy_sum[b], ecount += s->entropy_count[b];
        const long n = s->n_rollouts > 0 ? s->n_rollouts : 1;
        printf(" %8.1f %8.3f %8.3f %8.3f %8.3f %9.1f\n", (double)s->cot_tokens / n, (double)s->stop[COT_STOP_STRING] / n,
               (double)s->stop[COT_STOP_LENGTH] / n, (double)s->stop[COT_STOP_EOS] / n, ecount ? esum / ecount : 0.0,
               s->seconds > 0 ? (s->cot_tokens + s->ans_tokens) / s->seconds : 0.0);
    }
    if (rep->n_ood) {
        printf("\n%-40s %-6s %6s %9s %9s %12s\n", "ood file", "format", "items", "accuracy", "acc/tok", "nll/tok(ok)");
        for (int i = 0; i < rep->n_ood; i++) {
            const McResult *r = &rep->ood[i].r;
            const char *f = strrchr(rep->ood[i].file, '/');
            printf("%-40s %-6s %6d %9.4f %9.4f %12.4f\n", f ? f + 1 : rep->ood[i].file, rep->ood[i].format, r->n_items,
                   ratio(r->n_correct, r->n_items), ratio(r->n_correct_norm, r->n_items),
                   r->n_items ? r->sum_nll_token / r->n_items : NAN);
        }
    }
    fflush(stdout);
}

/* Splits a comma-separated list into malloc'd strings. */
static char **split_list(const char *s, int *n) {
    char **out = xcalloc(strlen(s) / 2 + 2, sizeof(char *));
    *n = 0;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len) {
            out[*n] = xmalloc(len + 1);
            memcpy(out[*n], p, len);
            out[*n][len] = '\0';
            (*n)++;
        }
        p += len;
        if (*p == ',') p++;
    }
    return out;
}

static int ood_format_of(const char *file, const char *name, McFormat *f, const char **fname, Err *err) {
    if (strcmp(name, "auto")) {
        if (mc_format_parse(name, f, err)) return -1;
        *fname = *f == MC_ARC ? "arc" : "mmlu";
        return 0;
    }
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    const int arc = strstr(base, "arc") != NULL, mmlu = strstr(base, "mmlu") != NULL;
    if (arc == mmlu)
        return err_set(err, "%s: cannot tell the multiple-choice format from the file name; give --ood_format mmlu or arc", file);
    *f = arc ? MC_ARC : MC_MMLU;
    *fname = arc ? "arc" : "mmlu";
    return 0;
}

int cmd_eval(int argc, char **argv) {
    EvalOptions o;
    Plan plan;
    memset(&plan, 0, sizeof plan);
    Err err;
    int want_help;
    if (parse_eval_args(argc, argv, &o, &want_help, &err) || (!want_help && validate(&o, &plan, &err))) {
        fprintf(stderr, "softcot eval: %s\n", err.msg);
        free(plan.ks);
        options_free_strings(EVAL_OPTS, N_EVAL_OPTS, &o);
        return EXIT_USAGE;
    }
    if (want_help) {
        free(plan.ks);
        fputs(EVAL_USAGE, stdout);
        options_help(EVAL_OPTS, N_EVAL_OPTS, stdout);
        options_free_strings(EVAL_OPTS, N_EVAL_OPTS, &o);
        return EXIT_OK;
    }
    if (ops_select(o.device, o.precision, 0, &err)) {
        fprintf(stderr, "softcot eval: %s\n", err.msg);
        free(plan.ks);
        options_free_strings(EVAL_OPTS, N_EVAL_OPTS, &o);
        return EXIT_USAGE;
    }
    int status = EXIT_USAGE;
    RunAssets assets;
    TaskSet tasks;
    memset(&assets, 0, sizeof assets);
    memset(&tasks, 0, sizeof tasks);
    EvalModeStats stats[EVAL_N_MODES];
    int done[EVAL_N_MODES] = {0};
    memset(stats, 0, sizeof stats);
    int n_ood_files = 0, n_fmt = 0;
    char **ood_files = split_list(o.ood, &n_ood_files), **ood_fmts = split_list(o.ood_format, &n_fmt);
    OodResult *ood = xcalloc((size_t)n_ood_files + 1, sizeof *ood);
    McSet *mc = xcalloc((size_t)n_ood_files + 1, sizeof *mc);
    EvalTask *et = NULL;
    char *stop = unescape_text(o.stop_string);
    const int have_problems = *o.data || o.synthetic > 0;
    Report rep = {.o = &o, .p = &plan, .model = &assets.model, .source = NULL, .stats = stats, .done = done,
                  .ood = ood, .n_ood = 0};

    /* Everything that can fail on bad input fails before any model is run. */
    if (*o.ood && n_ood_files == 0) {
        err_set(&err, "--ood: no file given");
        goto fail;
    }
    if (n_ood_files && n_fmt != 1 && n_fmt != n_ood_files) {
        err_set(&err, "--ood_format: give one format or one per --ood file (%d files, %d formats)", n_ood_files, n_fmt);
        goto fail;
    }
    if (run_assets_load(o.model, &assets, &err)) goto fail;
    rep.model = &assets.model;
    if (have_problems) {
        int n = o.synthetic > 0 ? o.synthetic : o.limit;
        if (o.synthetic > 0 && o.limit > 0 && o.limit < n) n = o.limit;
        TaskSource src = {.data = o.synthetic > 0 ? "synthetic" : o.data, .format = o.format, .synth = o.synth,
                          .n = n, .split_test = 1, .template_text = o.template_text, .chat = o.chat};
        if (taskset_load(&src, assets.tok, &tasks, &err)) goto fail;
        if (prefills_encode(assets.tok, o.stop_string, o.prefill, &assets, &err)) goto fail;
        rep.source = o.synthetic > 0 ? "synthetic" : o.data;
        rep.n_problems = tasks.n;
        et = xcalloc((size_t)tasks.n, sizeof *et);
        const long need_extra = (long)o.cot_max + assets.n_prefill_long + o.ans_max + 1;
        for (int i = 0; i < tasks.n; i++) {
            et[i] = (EvalTask){.ids = tasks.prompt_ids[i], .n_ids = tasks.prompt_len[i], .gold = tasks.gold[i]};
            if (tasks.prompt_len[i] + need_extra > assets.model.cfg.max_seq) {
                err_set(&err, "%s: problem %d: %d prompt tokens + cot_max %d + prefill %d + ans_max %d exceed the model's max_position_embeddings %d (lower --cot_max)",
                        rep.source, i + 1, tasks.prompt_len[i], o.cot_max, assets.n_prefill_long, o.ans_max,
                        assets.model.cfg.max_seq);
                goto fail;
            }
        }
    }
    for (int i = 0; i < n_ood_files; i++) {
        McFormat f;
        if (ood_format_of(ood_files[i], ood_fmts[n_fmt == 1 ? 0 : i], &f, &ood[i].format, &err)) goto fail;
        if (mc_load(ood_files[i], f, 0, &mc[i], NULL, &err)) goto fail;
        ood[i].file = ood_files[i];
    }

    fprintf(stderr, "softcot eval: model %s (%.2fM params), %d problem(s)%s%s, %d OOD file(s)\n", o.model,
            assets.model.layout.n_floats / 1e6, tasks.n, rep.source ? " from " : "", rep.source ? rep.source : "",
            n_ood_files);
    status = EXIT_RUNTIME;
    if (have_problems) {
        RolloutConfig base = {.cot_max = o.cot_max, .ans_max = o.ans_max, .stop_string = stop,
                              .prefill = assets.prefill, .n_prefill = assets.n_prefill,
                              .prefill_long = assets.prefill_long, .n_prefill_long = assets.n_prefill_long,
                              .seed = (uint64_t)o.seed};
        EvalTemps temps = {.hard_sample = o.tau_hard, .soft = o.tau_soft, .fuzzy = o.tau_fuzzy, .noise_gamma = o.noise_gamma};
        Progress prog = {.tty = isatty(2), .last_print = now_s()};
        for (int k = 0; k < EVAL_N_MODES; k++) {
            if (!plan.on[k]) continue;
            const int samples = eval_mode_is_sample((EvalMode)k) ? o.samples : 1;
            if (eval_run_mode(&assets.model, assets.tok, &base, (EvalMode)k, &temps, et, tasks.n, samples, o.batch,
                              o.entropy_bin, on_progress, &prog, &stats[k], &err)) {
                status = EXIT_USAGE;
                goto fail;
            }
            done[k] = 1;
            if (write_results(&rep, 0, &err)) goto fail;
        }
    }
    for (int i = 0; i < n_ood_files; i++) {
        const int n = o.limit > 0 && o.limit < mc[i].n ? o.limit : mc[i].n;
        const double t0 = now_s();
        if (eval_mc(&assets.model, assets.tok, &mc[i], n, o.ood_rows, &ood[i].r, &err)) {
            char msg[sizeof err.msg];
            snprintf(msg, sizeof msg, "%s", err.msg);
            err_set(&err, "%s: %s", ood_files[i], msg);
            status = EXIT_USAGE;
            goto fail;
        }
        rep.n_ood = i + 1;
        if (now_s() - t0 > 2.0)
            fprintf(stderr, "softcot eval: %s: %d items in %.1f s\n", ood_files[i], n, now_s() - t0);
    }
    if (write_results(&rep, 1, &err)) goto fail;
    print_table(&rep);
    fprintf(stderr, "softcot eval: results in %s\n", o.out);
    status = EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "softcot eval: %s\n", err.msg);
done:
    for (int k = 0; k < EVAL_N_MODES; k++)
        if (done[k]) eval_stats_free(&stats[k]);
    for (int i = 0; i < n_ood_files; i++) {
        eval_mc_free(&ood[i].r);
        mc_free(&mc[i]);
        free(ood_files[i]);
    }
    for (int i = 0; i < n_fmt; i++) free(ood_fmts[i]);
    free(ood_files), free(ood_fmts), free(ood), free(mc), free(et), free(stop), free(plan.ks);
    taskset_free(&tasks);
    run_assets_free(&assets);
    options_free_strings(EVAL_OPTS, N_EVAL_OPTS, &o);
    return status;
}
