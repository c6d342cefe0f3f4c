/* softcot sft — the supervised warm start: teacher-forced cross-entropy on worked solutions
 * rendered through the prompt template (rl/sft.h), from a model directory or from a
 * random initialisation, on a GSM8K-format JSONL file or on the built-in synthetic task.
 * Writes a complete model directory (config.json, model.safetensors, tokenizer files and
 * sft_config.ini with the effective options) only at the end: everything goes to
 * OUT.tmp first and is then renamed into place, so a crash never leaves a partial model. */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/fileio.h"
#include "data/dataset.h"
#include "data/synth.h"
#include "io/copy_file.h"
#include "io/model_dir.h"
#include "model/init.h"
#include "model/model.h"
#include "rl/sft.h"
#include "cli/run_setup.h"
#include "text/tokenizer.h"

typedef struct {
    char *config; /* read first, before the other flags */
    char *model, *init, *tokenizer;
    int dim, layers, heads, kv_heads, hidden, max_seq, tied, vocab_from_tokenizer, vocab;
    float init_std, rope_theta, norm_eps;
    char *data, *data_format;
    int skip_bad_lines, max_examples;
    float answer_only;
    int synthetic, synth_n;
    char *synth;
    char *template_text, *stop_string, *prefill, *lead_in;
    int steps, batch, warmup, micro_batch_tokens, seed, log_every, save_every;
    float lr, min_lr_ratio, weight_decay, beta1, beta2, adam_eps, grad_clip;
    char *out;
} SftOptions;

#define O(f) offsetof(SftOptions, f)
static const OptSpec SPECS[] = {
    {"config", OPT_STRING, O(config), "", NULL, "INI file of these options, read before the other flags"},
    {"model", OPT_STRING, O(model), "", NULL, "start from this model directory (or use --init random)"},
    {"init", OPT_STRING, O(init), "", NULL, "'random': train from scratch with the shape options below"},
    {"tokenizer", OPT_STRING, O(tokenizer), "", NULL, "tokenizer directory (default: --model)"},
    {"dim", OPT_INT, O(dim), "128", NULL, "random init: hidden size"},
    {"layers", OPT_INT, O(layers), "4", NULL, "random init: decoder layers"},
    {"heads", OPT_INT, O(heads), "4", NULL, "random init: attention heads"},
    {"kv_heads", OPT_INT, O(kv_heads), "2", NULL, "random init: key/value heads (GQA)"},
    {"hidden", OPT_INT, O(hidden), "352", NULL, "random init: SwiGLU intermediate size"},
    {"max_seq", OPT_INT, O(max_seq), "512", NULL, "random init: max_position_embeddings"},
    {"tied", OPT_BOOL, O(tied), "true", NULL, "random init: tie lm_head to the input embedding"},
    {"vocab_from_tokenizer", OPT_BOOL, O(vocab_from_tokenizer), "true", NULL,
     "random init: vocabulary size = the tokenizer's (else --vocab)"},
    {"vocab", OPT_INT, O(vocab), "0", NULL, "random init: vocabulary size when not from the tokenizer"},
    {"init_std", OPT_FLOAT, O(init_std), "0.02", NULL, "random init: std of the weight matrices"},
    {"rope_theta", OPT_FLOAT, O(rope_theta), "10000", NULL, "random init: RoPE base"},
    {"norm_eps", OPT_FLOAT, O(norm_eps), "1e-5", NULL, "random init: RMSNorm epsilon"},
    {"data", OPT_STRING, O(data), "", NULL, "training JSONL (question + worked solution), or 'synthetic'"},
    {"data_format", OPT_STRING, O(data_format), "gsm8k", NULL, "gsm8k | math | deepscaler (rows need a solution)"},
    {"skip_bad_lines", OPT_BOOL, O(skip_bad_lines), "false", NULL, "skip malformed JSONL lines instead of stopping"},
    {"max_examples", OPT_INT, O(max_examples), "0", NULL, "use only the first N rows (0 = all)"},
    {"answer_only", OPT_FLOAT, O(answer_only), "0", NULL,
     "share of examples (drawn per example from --seed) trained without their worked solution: "
     "the target is just the stop string and the boxed answer"},
    {"lead_in", OPT_STRING, O(lead_in), "", NULL,
     "text put before every worked solution (not the answer-only ones), e.g. \"Let us work it out.\": "
     "the habit choice then lies in one token"},
    {"synthetic", OPT_BOOL, O(synthetic), "false", NULL, "train on the built-in synthetic task (= --data synthetic)"},
    {"synth", OPT_STRING, O(synth), "", NULL,
     "synthetic task settings key=value,... (seed, min_steps, max_steps, max_number, max_factor, max_value, ops, "
     "test_fraction; data/synth.h)"},
    {"synth_n", OPT_INT, O(synth_n), "10000", NULL, "synthetic task: training problems generated (train split)"},
    {"template", OPT_STRING, O(template_text), "Question: {question}\\nAnswer:", "the paper's zero-shot template",
     "prompt template ({question} is replaced; \\n is a newline)"},
    {"stop_string", OPT_STRING, O(stop_string), "The final answer is:", "The final answer is:",
     "ends the worked solution (the CoT stop string)"},
    {"prefill", OPT_STRING, O(prefill), " \\boxed{", " \\boxed{", "text between the stop string and the answer"},
    {"steps", OPT_INT, O(steps), "1000", NULL, "optimizer steps"},
    {"batch", OPT_INT, O(batch), "32", NULL, "examples per step"},
    {"lr", OPT_FLOAT, O(lr), "1e-3", NULL, "peak learning rate"},
    {"min_lr_ratio", OPT_FLOAT, O(min_lr_ratio), "0.1", NULL, "cosine floor as a fraction of --lr"},
    {"warmup", OPT_INT, O(warmup), "50", NULL, "linear warm-up steps"},
    {"weight_decay", OPT_FLOAT, O(weight_decay), "0.1", NULL, "AdamW decay of weight matrices (not norms/biases)"},
    {"beta1", OPT_FLOAT, O(beta1), "0.9", NULL, "AdamW beta1"},
    {"beta2", OPT_FLOAT, O(beta2), "0.95", NULL, "AdamW beta2"},
    {"adam_eps", OPT_FLOAT, O(adam_eps), "1e-8", NULL, "AdamW epsilon"},
    {"grad_clip", OPT_FLOAT, O(grad_clip), "1.0", NULL, "clip the global gradient norm (0 = off)"},
    {"micro_batch_tokens", OPT_INT, O(micro_batch_tokens), "4096", NULL, "positions per forward/backward call"},
    {"seed", OPT_INT, O(seed), "1234", NULL, "seed of the random init and of the data order"},
    {"log_every", OPT_INT, O(log_every), "50", NULL, "progress line every N steps"},
    {"save_every", OPT_INT, O(save_every), "0", NULL, "also write the model to OUT.step<N> every N steps (0 = never)"},
    {"out", OPT_STRING, O(out), "", NULL, "output model directory (required)"},
};
#undef O
enum { N_SPECS = sizeof SPECS / sizeof SPECS[0] };

static void usage(FILE *out) {
    fputs("usage: softcot sft (--model DIR | --init random --tokenizer DIR) (--data FILE | --synthetic)\n"
          "                   --out DIR [options]\n"
          "\n"
          "Supervised warm start: teacher-forced cross-entropy, averaged over target tokens, on\n"
          "  prompt = template(question) (+BOS)   target = \" [<lead-in> ]<solution> The final answer is: \\boxed{N}\" + EOS\n"
          "with no loss on the prompt. GSM8K solutions lose their <<...>> calculator notes.\n"
          "AdamW with linear warm-up and cosine decay. Options come from --config FILE (INI)\n"
          "and are overridden by --key=value flags ('-' and '_' are the same in keys).\n\n",
          out);
    options_help(SPECS, N_SPECS, out);
}

static int fail(const char *msg, int status) {
    fprintf(stderr, "softcot: sft: %s\n", msg);
    return status;
}

static void fmt_secs(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Writes the model and side files into OUT.tmp, then moves them into OUT: a fresh OUT
 * appears in one rename; an existing one has each file replaced by a rename. */
static int write_output(const SftOptions *o, const char *out, const ModelConfig *cfg, const float *params,
                        const char *tok_dir, Err *err) {
    size_t n = strlen(out);
    char *stage = xmalloc(n + 8);
    while (n > 1 && out[n - 1] == '/') n--; /* "dir/" -> stage "dir.tmp" */
    snprintf(stage, n + 8, "%.*s.tmp", (int)n, out);
    int rc = make_dirs(stage, err);
    if (!rc) rc = model_dir_save(stage, cfg, params, err);
    static const char *const side[] = {"tokenizer.json", "tokenizer_config.json", "tokenizer.bin"};
    for (size_t i = 0; !rc && i < sizeof side / sizeof side[0]; i++) {
        char *src = path_join(tok_dir, side[i]), *dst = path_join(stage, side[i]);
        if (file_exists(src)) rc = copy_file_atomic(src, dst, err);
        free(src), free(dst);
    }
    if (!rc) {
        char *ini = options_dump(SPECS, N_SPECS, o), *p = path_join(stage, "sft_config.ini");
        rc = atomic_write_all(p, ini, strlen(ini), err);
        free(ini), free(p);
    }
    struct stat sb;
    if (!rc && stat(out, &sb) != 0) {
        if (rename(stage, out) != 0) rc = err_set(err, "%s: cannot rename from %s: %s", out, stage, strerror(errno));
    } else if (!rc) {
        DIR *d = opendir(stage);
        struct dirent *e;
        if (!d) rc = err_set(err, "%s: cannot list: %s", stage, strerror(errno));
        while (!rc && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char *src = path_join(stage, e->d_name), *dst = path_join(out, e->d_name);
            if (rename(src, dst) != 0) rc = err_set(err, "%s: cannot rename from %s: %s", dst, src, strerror(errno));
            free(src), free(dst);
        }
        if (d) closedir(d);
        if (!rc) rmdir(stage);
    }
    free(stage);
    return rc;
}


static int build_config(const SftOptions *o, const Tokenizer *tok, ModelConfig *c, Err *err) {
    memset(c, 0, sizeof *c);
    c->arch = ARCH_LLAMA;
    c->dim = o->dim;
    c->hidden_dim = o->hidden;
    c->n_layers = o->layers;
    c->n_heads = o->heads;
    c->n_kv_heads = o->kv_heads;
    c->head_dim = o->heads > 0 ? o->dim / o->heads : 0;
    c->vocab_size = o->vocab_from_tokenizer ? tokenizer_vocab_size(tok) : o->vocab;
    c->max_seq = o->max_seq;
    c->norm_eps = o->norm_eps;
    c->rope_theta = o->rope_theta;
    c->tied_embeddings = o->tied;
    c->bos_id = tokenizer_bos_id(tok);
    c->n_eos = tokenizer_eos_id(tok) >= 0;
    c->eos_ids[0] = tokenizer_eos_id(tok);
    if (o->heads <= 0 || o->dim % o->heads)
        return err_set(err, "--dim %d must be a positive multiple of --heads %d", o->dim, o->heads);
    if (c->vocab_size < tokenizer_vocab_size(tok))
        return err_set(err, "--vocab %d is smaller than the tokenizer's %d ids", c->vocab_size,
                       tokenizer_vocab_size(tok));
    return model_config_validate(c, "sft --init random", err);
}

int cmd_sft(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return EXIT_OK;
        }
    SftOptions o;
    Err err;
    options_defaults(SPECS, N_SPECS, &o);
    /* --config first, so that flags override the file whatever their order */
    for (int i = 1; i < argc; i++) {
        const char *cfg = NULL;
        if (!strncmp(argv[i], "--config=", 9)) cfg = argv[i] + 9;
        else if (!strcmp(argv[i], "--config") && i + 1 < argc) cfg = argv[i + 1];
        if (cfg && options_load_ini(SPECS, N_SPECS, &o, cfg, &err)) {
            options_free_strings(SPECS, N_SPECS, &o);
            return fail(err.msg, EXIT_USAGE);
        }
    }
    int status = EXIT_USAGE;
    Tokenizer *tok = NULL;
    Dataset ds = {0};
    SftExample *set = NULL;
    int n_set = 0;
    float *host = NULL;
    char *tmpl = NULL, *stop = NULL, *prefill = NULL, *lead_in = NULL;
    if (options_parse_args(SPECS, N_SPECS, &o, argc, argv, 1, &err)) goto bad;
    if (!*o.out) {
        err_set(&err, "--out DIR is required");
        goto bad;
    }
    int random_init = !strcmp(o.init, "random");
    if (*o.init && !random_init) {
        err_set(&err, "--init must be 'random' (got '%s')", o.init);
        goto bad;
    }
    if (random_init == !!*o.model) {
        err_set(&err, "give exactly one of --model DIR and --init random");
        goto bad;
    }
    if (!strcmp(o.data, "synthetic")) {
        o.synthetic = 1;
        free(o.data);
        o.data = xstrdup("");
    }
    if (!*o.data == !o.synthetic) {
        err_set(&err, "give exactly one of --data FILE and --synthetic");
        goto bad;
    }
    if (!(o.answer_only >= 0 && o.answer_only <= 1)) {
        err_set(&err, "--answer-only must be a share in [0, 1] (got %g)", o.answer_only);
        goto bad;
    }
    if (o.steps < 1 || o.batch < 1 || o.warmup < 0 || o.log_every < 1 || o.lr < 0 || o.micro_batch_tokens < 2) {
        err_set(&err, "--steps, --batch, --log-every must be >= 1, --warmup and --lr >= 0, --micro-batch-tokens >= 2");
        goto bad;
    }
    const char *tok_dir = *o.tokenizer ? o.tokenizer : o.model;
    if (!*tok_dir) {
        err_set(&err, "--init random needs --tokenizer DIR");
        goto bad;
    }
    if (!(tok = tokenizer_load_dir(tok_dir, &err))) goto bad;

    /* ---- model ---- */
    ModelConfig cfg;
    if (random_init) {
        if (build_config(&o, tok, &cfg, &err)) goto bad;
        ParamLayout L;
        ParamOffsets off;
        param_layout_build(&L, &off, &cfg);
        host = xmalloc(L.n_floats * sizeof(float));
        param_init_random(&cfg, (uint64_t)o.seed, o.init_std, host);
        param_layout_free(&L, &off);
    } else if (model_dir_load(o.model, &cfg, &host, &err)) {
        goto bad;
    }
    if (cfg.vocab_size < tokenizer_vocab_size(tok)) {
        err_set(&err, "%s: the tokenizer has %d ids but the model only %d", tok_dir, tokenizer_vocab_size(tok),
                cfg.vocab_size);
        goto bad;
    }

    /* ---- data ---- */
    const char *data_name = o.synthetic ? "synthetic" : o.data;
    if (o.synthetic) {
        SynthConfig sc;
        if (synth_settings(o.synth, &sc, &err) || synth_generate(&sc, SYNTH_TRAIN, o.synth_n, &ds, &err)) goto bad;
    } else {
        DataOptions dopt = {.skip_bad_lines = o.skip_bad_lines};
        BadLines badl = {0};
        if (data_format_parse(o.data_format, &dopt.format, &err) || dataset_load(o.data, &dopt, &ds, &badl, &err))
            goto bad;
        if (badl.n) fprintf(stderr, "softcot: sft: skipped %d bad lines (first: %s)\n", badl.n, badl.first.msg);
    }
    /* config files hold one-line values: "\n" in them means a newline (as in train/eval) */
    tmpl = unescape_text(o.template_text);
    stop = unescape_text(o.stop_string);
    prefill = unescape_text(o.prefill);
    lead_in = unescape_text(o.lead_in);
    SftFormat fmt = {.template_text = tmpl, .stop_string = stop, .prefill = prefill, .lead_in = lead_in};
    int n_use = o.max_examples > 0 && o.max_examples < ds.n ? o.max_examples : ds.n;
    set = xcalloc((size_t)n_use, sizeof *set);
    int longest = 0, shortest = 1 << 30;
    long target_tokens = 0;
    int n_answer_only = 0;
    for (int i = 0; i < n_use; i++) {
        const Problem *pr = &ds.items[i];
        if (!pr->solution) {
            err_set(&err, "%s:%d: no worked solution to train on", data_name, pr->line);
            goto bad;
        }
        int drop_working = sft_answer_only((uint64_t)o.seed, i, o.answer_only);
        n_answer_only += drop_working;
        char *sol = drop_working ? xstrdup("") : sft_worked_solution(pr->solution);
        int rc = sft_example_build(tok, &fmt, pr->question, sol, pr->gold, &set[n_set], &err);
        free(sol);
        if (rc) goto bad;
        if (set[n_set].n > cfg.max_seq) {
            err_set(&err, "%s:%d: example of %d tokens exceeds the model's %d positions", data_name, pr->line,
                    set[n_set].n, cfg.max_seq);
            sft_example_free(&set[n_set]);
            goto bad;
        }
        longest = set[n_set].n > longest ? set[n_set].n : longest;
        shortest = set[n_set].n < shortest ? set[n_set].n : shortest;
        target_tokens += set[n_set].n - set[n_set].n_prompt;
        n_set++;
    }

    /* ---- train ---- */
    status = EXIT_RUNTIME;
    Model model;
    model_init(&model, &cfg, host);
    int max_rows = o.micro_batch_tokens > longest ? o.micro_batch_tokens : longest;
    /* KV-cache slots: as many examples as one micro-batch can hold, at most a batch */
    int max_seqs = max_rows / shortest;
    if (max_seqs > o.batch) max_seqs = o.batch;
    if (max_seqs < 1) max_seqs = 1;
    SftState st;
    sft_state_init(&st, &model, max_rows, max_seqs, longest);
    SftParams sp = {.steps = o.steps, .warmup = o.warmup, .batch = o.batch, .lr = o.lr,
                    .min_lr_ratio = o.min_lr_ratio, .beta1 = o.beta1, .beta2 = o.beta2, .adam_eps = o.adam_eps,
                    .weight_decay = o.weight_decay, .grad_clip = o.grad_clip, .seed = (uint64_t)o.seed};
    fprintf(stderr,
            "softcot: sft: %s model d=%d layers=%d heads=%d/%d ffn=%d vocab=%d (%zu params), %d examples "
            "(%d answer-only; %.1f target tokens each, longest %d), %d steps x %d\n",
            random_init ? "random" : o.model, cfg.dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.hidden_dim,
            cfg.vocab_size, model.layout.n_floats, n_set, n_answer_only, (double)target_tokens / n_set, longest,
            o.steps, o.batch);
    double t0 = now_s(), t_last = t0, loss_acc = 0;
    long tok_acc = 0;
    int n_acc = 0, rc = 0;
    for (int s = 0; s < o.steps && !rc; s++) {
        SftStepStats stats;
        rc = sft_step(&st, &sp, set, n_set, &stats, &err);
        if (rc) break;
        loss_acc += stats.loss;
        tok_acc += stats.tokens;
        n_acc++;
        if ((s + 1) % o.log_every == 0 || s + 1 == o.steps) {
            double t = now_s();
            char eta[32], el[32];
            fmt_secs((t - t0) / (s + 1) * (o.steps - s - 1), eta, sizeof eta);
            fmt_secs(t - t0, el, sizeof el);
            printf("step %5d/%d  loss %.4f  lr %.3e  gnorm %.3f  tok/s %.0f  elapsed %s  eta %s\n", s + 1, o.steps,
                   loss_acc / n_acc, stats.lr, stats.grad_norm, (double)tok_acc / (t - t_last), el, eta);
            fflush(stdout);
            loss_acc = 0, tok_acc = 0, n_acc = 0, t_last = t;
        }
        if (o.save_every > 0 && (s + 1) % o.save_every == 0 && s + 1 < o.steps) {
            /* snapshots for choosing the number of steps; not the final output */
            size_t n = strlen(o.out) + 32;
            char *snap = xmalloc(n);
            snprintf(snap, n, "%s.step%d", o.out, s + 1);
            model_download_params(&model, host);
            rc = write_output(&o, snap, &cfg, host, tok_dir, &err);
            free(snap);
            t_last = now_s();
        }
    }
    if (!rc) {
        model_download_params(&model, host);
        rc = write_output(&o, o.out, &cfg, host, tok_dir, &err);
        if (!rc) printf("wrote %s (%.1f s)\n", o.out, now_s() - t0);
    }
    sft_state_free(&st);
    model_free(&model);
    if (!rc) status = EXIT_OK;
bad:
    if (status != EXIT_OK) fprintf(stderr, "softcot: sft: %s\n", err.msg);
    for (int i = 0; i < n_set; i++) sft_example_free(&set[i]);
    free(set);
    free(host), free(tmpl), free(stop), free(prefill), free(lead_in);
    dataset_free(&ds);
    tokenizer_free(tok);
    options_free_strings(SPECS, N_SPECS, &o);
    return status;
}
