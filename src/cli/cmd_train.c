/* softcot train: RL fine-tuning with hard, soft or fuzzy CoT tokens (DESIGN.md §1),
 * data-parallel over MPI ranks, with atomic HDF5 checkpoints, exact resume and
 * per-rollout trajectories. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/run_setup.h"
#include "core/check.h"
#include "core/fileio.h"
#include "core/signals.h"
#include "dist/dist.h"
#include "io/checkpoint.h"
#include "io/model_dir.h"
#include "rl/reward.h"
#include "rl/train.h"
#include "rl/train_ckpt.h"
#include "rl/traj_rl.h"

typedef struct {
    char *model, *out, *data, *data_format, *mode, *template_text, *chat, *stop_string, *prefill,
        *resume;
    char *synth;
    char *device, *precision, *allreduce;
    int synth_n;
    int steps, batch_prompts, group_size, warmup;
    float lr, min_lr_ratio, beta1, beta2, adam_eps, weight_decay;
    float tau_hard, tau_soft, tau_fuzzy, noise_gamma, tau_ans;
    int cot_max, ans_max, micro_batch_tokens, gen_batch, seed;
    float grad_clip;
    int adv_norm, skip_nonfinite, max_bad_steps;
    float kl_coef;
    int ckpt_every, keep_ckpts, traj_every, traj_topk, log_every, save_final;
} TrainOptions;

#define O(field) offsetof(TrainOptions, field)
static const OptSpec TRAIN_OPTS[] = {
    {"model", OPT_STRING, O(model), "inputs/models/base", NULL, "base model directory (config.json, model.safetensors, tokenizer)"},
    {"out", OPT_STRING, O(out), "outputs/run", NULL, "run directory: log, checkpoints/, trajectories.h5, final/"},
    {"data", OPT_STRING, O(data), "synthetic", NULL, "training problems: 'synthetic' or a JSONL file"},
    {"data_format", OPT_STRING, O(data_format), "gsm8k", NULL, "JSONL format: gsm8k, math, deepscaler"},
    {"synth", OPT_STRING, O(synth), "", NULL, "synthetic task settings key=value,... (seed, min_steps, max_steps, max_number, ops; see docs/reward.md)"},
    {"synth_n", OPT_INT, O(synth_n), "4000", NULL, "synthetic task: training problems generated"},
    {"template", OPT_STRING, O(template_text), "Question: {question}\\nAnswer:", "the paper's zero-shot template", "prompt template ({question} is replaced; \\n is a newline)"},
    {"chat", OPT_STRING, O(chat), "none", "none", "chat wrapping: none, llama3, chatml"},
    {"mode", OPT_STRING, O(mode), "soft", "hard|soft|fuzzy", "CoT tokens: hard, soft or fuzzy"},
    {"steps", OPT_INT, O(steps), "150", "4000", "RL steps"},
    {"batch_prompts", OPT_INT, O(batch_prompts), "4", "2", "B: prompts per step"},
    {"group_size", OPT_INT, O(group_size), "16", "32", "G: samples per prompt (RLOO group)"},
    {"lr", OPT_FLOAT, O(lr), "2e-4", "6e-6", "peak learning rate (paper: Llama 3B 6e-6, 8B 3e-6, Qwen 3B 8e-6)"},
    {"min_lr_ratio", OPT_FLOAT, O(min_lr_ratio), "0.1", NULL, "cosine decays to this fraction of lr"},
    {"warmup", OPT_INT, O(warmup), "20", "20", "linear warm-up steps"},
    {"beta1", OPT_FLOAT, O(beta1), "0.9", NULL, "AdamW beta1"},
    {"beta2", OPT_FLOAT, O(beta2), "0.999", NULL, "AdamW beta2"},
    {"adam_eps", OPT_FLOAT, O(adam_eps), "1e-8", NULL, "AdamW epsilon"},
    {"weight_decay", OPT_FLOAT, O(weight_decay), "0", NULL, "AdamW decoupled weight decay"},
    {"tau_hard", OPT_FLOAT, O(tau_hard), "1.0", "1.0", "hard CoT sampling temperature"},
    {"tau_soft", OPT_FLOAT, O(tau_soft), "0.5", "0.5", "soft CoT mixture temperature"},
    {"tau_fuzzy", OPT_FLOAT, O(tau_fuzzy), "1e-4", "1e-4", "fuzzy CoT mixture temperature"},
    {"noise_gamma", OPT_FLOAT, O(noise_gamma), "0.33", "0.33", "noise sigma = gamma * rms(E)"},
    {"tau_ans", OPT_FLOAT, O(tau_ans), "1.0", "1.0", "answer sampling temperature"},
    {"cot_max", OPT_INT, O(cot_max), "96", "128", "CoT steps at most (paper: 128 GSM8K, 512 MATH)"},
    {"ans_max", OPT_INT, O(ans_max), "16", "32", "answer tokens at most"},
    {"stop_string", OPT_STRING, O(stop_string), "The final answer is:", "The final answer is:", "the CoT ends when the shadow text ends with this"},
    {"prefill", OPT_STRING, O(prefill), " \\boxed{", "\\boxed{", "appended after the stop string"},
    {"micro_batch_tokens", OPT_INT, O(micro_batch_tokens), "4096", NULL, "replay positions per micro-batch (memory bound)"},
    {"gen_batch", OPT_INT, O(gen_batch), "16", NULL, "rollouts decoded together: ranks own whole chunks of this many rollouts (same results on any rank count)"},
    {"seed", OPT_INT, O(seed), "1234", NULL, "seed of data order, sampling and noise"},
    {"grad_clip", OPT_FLOAT, O(grad_clip), "0", "0 (none)", "clip the gradient norm to this (0 = off)"},
    {"kl_coef", OPT_FLOAT, O(kl_coef), "0", "0 (none)", "KL penalty to the initial model: adds kl_coef * mean KL per rollout to the loss"},
    {"adv_norm", OPT_BOOL, O(adv_norm), "false", "false", "divide advantages by the group's reward std"},
    {"skip_nonfinite", OPT_BOOL, O(skip_nonfinite), "false", NULL, "skip steps with a NaN/Inf loss or gradient instead of aborting"},
    {"max_bad_steps", OPT_INT, O(max_bad_steps), "5", NULL, "abort after this many consecutive skipped steps"},
    {"ckpt_every", OPT_INT, O(ckpt_every), "50", NULL, "checkpoint every N steps (and on a stop signal, and at the end)"},
    {"keep_ckpts", OPT_INT, O(keep_ckpts), "3", NULL, "checkpoints kept"},
    {"traj_every", OPT_INT, O(traj_every), "1", NULL, "write the trajectories of every N-th step (0 = never)"},
    {"traj_topk", OPT_INT, O(traj_topk), "8", NULL, "mixture tokens kept per CoT position in trajectories"},
    {"log_every", OPT_INT, O(log_every), "1", NULL, "print a progress line every N steps"},
    {"save_final", OPT_BOOL, O(save_final), "true", NULL, "write OUT/final as a Hugging Face model directory at the end"},
    {"device", OPT_STRING, O(device), "cpu", NULL, "compute device: cpu, or cuda (one GPU per rank, chosen by local rank; needs make CUDA=1)"},
    {"precision", OPT_STRING, O(precision), "auto", NULL, "auto (bf16 on cuda, fp32 on cpu), bf16 (bf16 GEMM operands, fp32 master weights and accumulation) or fp32"},
    {"allreduce", OPT_STRING, O(allreduce), "auto", NULL, "gradient all-reduce: auto (nccl on cuda, else mpi), nccl or mpi (host-staged)"},
    {"resume", OPT_STRING, O(resume), "no", NULL, "'auto' continues from OUT/checkpoints/latest if present"},
};
#undef O
enum { N_TRAIN_OPTS = sizeof TRAIN_OPTS / sizeof TRAIN_OPTS[0] };

static const char *TRAIN_USAGE =
    "usage: softcot train [--config FILE.ini] [--key=value ...] [--resume auto]\n"
    "\n"
    "RL fine-tuning (RLOO) with hard, soft or fuzzy chain-of-thought tokens. Runs as one\n"
    "process or under mpirun/srun (each rank generates and trains on its share of the\n"
    "B*G rollouts; gradients are all-reduced). Writes OUT/train.log, OUT/checkpoints/\n"
    "(ckpt_<step>.h5 + latest), OUT/trajectories.h5 and OUT/final/.\n"
    "SIGTERM, SIGUSR1 or SIGINT: checkpoint at the next step boundary and exit with status 3\n"
    "(\"checkpointed, resubmit\"); `--resume auto` continues exactly.\n"
    "\n"
    "Options (INI keys; on the command line --key=value or --key value):\n";

typedef struct {
    FILE *log;
    int rank;
} Logger;

static void log_line(Logger *lg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(Logger *lg, const char *fmt, ...) {
    if (lg->rank != 0) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fputs(buf, stdout);
    fflush(stdout);
    if (lg->log) {
        fputs(buf, lg->log);
        fflush(lg->log);
    }
}

/* The recipe in force, one line at start-up: the settings that decide what a run learns, so
 * a log says how it differs from the paper's (docs/results.md, "How this differs"). */
static void log_recipe(Logger *lg, const TrainOptions *o) {
    float tau = !strcmp(o->mode, "hard") ? o->tau_hard : !strcmp(o->mode, "soft") ? o->tau_soft : o->tau_fuzzy;
    log_line(lg,
             "softcot train: recipe: lr %g (warm-up %d, cosine to %gx), kl_coef %g, grad_clip %g%s, adv_norm %s, "
             "B x G %d x %d, CoT tau %g, noise gamma %g%s, cot_max %d, ans_max %d, seed %d\n",
             o->lr, o->warmup, o->min_lr_ratio, o->kl_coef, o->grad_clip, o->grad_clip > 0 ? "" : " (off)",
             o->adv_norm ? "on" : "off", o->batch_prompts, o->group_size, tau, o->noise_gamma,
             !strcmp(o->mode, "hard") ? " (unused: hard CoT)" : "", o->cot_max, o->ans_max, o->seed);
}

static void format_eta(double seconds, char *out, size_t n) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(out, n, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    else if (s >= 60) snprintf(out, n, "%ldm%02lds", s / 60, s % 60);
    else snprintf(out, n, "%lds", s);
}

/* Parses argv: --config FILE first (INI), then every other --key=value over it. */
static int parse_train_args(int argc, char **argv, TrainOptions *o, int *want_help,
                            const char **config_out, Err *err) {
    options_defaults(TRAIN_OPTS, N_TRAIN_OPTS, o);
    *want_help = 0;
    char **rest = xmalloc((size_t)(argc + 1) * sizeof(char *));
    int n_rest = 0;
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            *want_help = 1;
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            config = argv[i] + 9;
        } else {
            rest[n_rest++] = argv[i];
        }
    }
    int rc = 0;
    *config_out = config;
    if (!*want_help) {
        if (config) rc = options_load_ini(TRAIN_OPTS, N_TRAIN_OPTS, o, config, err);
        if (rc == 0) rc = options_parse_args(TRAIN_OPTS, N_TRAIN_OPTS, o, n_rest, rest, 0, err);
    }
    free(rest);
    return rc;
}

static int validate(const TrainOptions *o, CotMode *mode, Err *err) {
    if (cot_mode_parse(o->mode, mode, err)) return -1;
    if (o->steps < 1) return err_set(err, "--steps must be at least 1 (got %d)", o->steps);
    if (o->batch_prompts < 1) return err_set(err, "--batch_prompts must be at least 1");
    if (o->group_size < 2) return err_set(err, "--group_size must be at least 2 (RLOO needs a leave-one-out baseline)");
    if (!(o->lr >= 0)) return err_set(err, "--lr must be non-negative");
    if (o->cot_max < 1 || o->ans_max < 1) return err_set(err, "--cot_max and --ans_max must be at least 1");
    if (!(o->tau_soft > 0) || !(o->tau_fuzzy > 0) || !(o->tau_ans > 0) || !(o->tau_hard > 0))
        return err_set(err, "training temperatures must be positive");
    if (!(o->kl_coef >= 0)) return err_set(err, "--kl_coef must be non-negative");
    if (*mode != COT_HARD && !(o->noise_gamma > 0))
        return err_set(err, "--noise_gamma must be positive for soft and fuzzy training (the Gaussian log-density needs sigma > 0)");
    if (strcmp(o->resume, "no") && strcmp(o->resume, "auto"))
        return err_set(err, "--resume: expected 'auto' or 'no', got '%s'", o->resume);
    if (o->ckpt_every < 1 || o->log_every < 1 || o->traj_every < 0 || o->keep_ckpts < 1)
        return err_set(err, "--ckpt_every, --log_every and --keep_ckpts must be at least 1, --traj_every at least 0");
    return 0;
}

/* Binds this rank to its device and, for multi-GPU runs, sets up the device-side
 * all-reduce: rank 0's NCCL id travels to the others over MPI, as in llm.c. */
static int select_device(const TrainOptions *o, Dist *dist, Err *err) {
    if (strcmp(o->allreduce, "auto") && strcmp(o->allreduce, "nccl") && strcmp(o->allreduce, "mpi"))
        return err_set(err, "--allreduce: unknown value '%s' (expected auto, nccl or mpi)", o->allreduce);
    if (ops_select(o->device, o->precision, dist->local_rank, err)) return -1;
    const size_t id_bytes = ops_comm_id_bytes();
    if (!strcmp(o->allreduce, "nccl") && id_bytes == 0)
        return err_set(err, "--allreduce nccl needs --device cuda");
    if (dist->size == 1 || id_bytes == 0 || !strcmp(o->allreduce, "mpi")) return 0;
    unsigned char *id = xcalloc(1, id_bytes);
    if (dist->rank == 0) ops_comm_unique_id(id);
    dist_bcast(dist, id, id_bytes, 0);
    int rc = ops_comm_init(id, dist->rank, dist->size, err);
    free(id);
    return rc;
}

int cmd_train(int argc, char **argv) {
    /* Before MPI start-up, so a preemption signal during MPI_Init is not fatal. */
    signals_install();
    Dist dist;
    dist_init(&dist, &argc, &argv);
    TrainOptions o;
    Err err;
    int want_help, status = EXIT_USAGE;
    CotMode mode = COT_SOFT;
    const char *config = NULL;
    if (parse_train_args(argc, argv, &o, &want_help, &config, &err)) {
        if (dist.rank == 0) fprintf(stderr, "softcot train: %s\n", err.msg);
        options_free_strings(TRAIN_OPTS, N_TRAIN_OPTS, &o);
        dist_finalize(&dist);
        return EXIT_USAGE;
    }
    if (!want_help && validate(&o, &mode, &err)) {
        /* the value came from the config file or the command line */
        if (dist.rank == 0)
            fprintf(stderr, "softcot train: %s%s%s%s\n", config ? config : "", config ? ": " : "", err.msg,
                    config ? " (value from this file or a command-line override)" : "");
        options_free_strings(TRAIN_OPTS, N_TRAIN_OPTS, &o);
        dist_finalize(&dist);
        return EXIT_USAGE;
    }
    if (want_help) {
        if (dist.rank == 0) {
            fputs(TRAIN_USAGE, stdout);
            options_help(TRAIN_OPTS, N_TRAIN_OPTS, stdout);
        }
        options_free_strings(TRAIN_OPTS, N_TRAIN_OPTS, &o);
        dist_finalize(&dist);
        return EXIT_OK;
    }

    if (select_device(&o, &dist, &err)) {
        if (dist.rank == 0) fprintf(stderr, "softcot train: %s\n", err.msg);
        options_free_strings(TRAIN_OPTS, N_TRAIN_OPTS, &o);
        dist_finalize(&dist);
        return EXIT_USAGE;
    }
    const int device_allreduce = dist.size > 1 && ops_comm_id_bytes() > 0 && strcmp(o.allreduce, "mpi") != 0;

    Logger lg = {NULL, dist.rank};
    char *ckpt_dir = path_join(o.out, "checkpoints");
    char *traj_path = path_join(o.out, "trajectories.h5");
    char *config_text = options_dump(TRAIN_OPTS, N_TRAIN_OPTS, &o);
    char *stop_string = unescape_text(o.stop_string); /* as eval does: config values are one line */
    RunAssets assets;
    TaskSet tasks;
    memset(&tasks, 0, sizeof tasks);
    memset(&assets, 0, sizeof assets);
    TrainState st;
    memset(&st, 0, sizeof st);
    Model ref_model;
    int have_ref = 0;
    TrajRL *traj = NULL;
    int have_state = 0;

    /* Everything that can fail on bad input fails before any output is written. */
    if (run_assets_load(o.model, &assets, &err)) goto fail_usage;
    TaskSource src = {.data = o.data, .format = o.data_format, .synth = o.synth, .n = o.synth_n,
                      .split_test = 0, .template_text = o.template_text, .chat = o.chat};
    if (taskset_load(&src, assets.tok, &tasks, &err)) goto fail_usage;
    if (prefills_encode(assets.tok, o.stop_string, o.prefill, &assets, &err)) goto fail_usage;
    if (dist.rank == 0 && make_dirs(o.out, &err)) goto fail_runtime;
    if (dist.rank == 0) {
        char *log_path = path_join(o.out, "train.log");
        lg.log = fopen(log_path, "a");
        free(log_path);
    }

    train_state_init(&st, &assets.model);
    st.device_allreduce = device_allreduce;
    have_state = 1;
    /* The KL reference is the model the run started from: the base model, also on resume. */
    if (o.kl_coef > 0) {
        float *host = xmalloc(assets.model.layout.n_floats * sizeof(float));
        model_download_params(&assets.model, host);
        model_init(&ref_model, &assets.model.cfg, host);
        free(host);
        have_ref = 1;
    }
    TrainRunInfo info = {.seed = (uint64_t)o.seed, .n_tasks = tasks.n, .mode = o.mode, .config_text = config_text,
                         .model_dir = o.model};
    const char *restart = getenv("SLURM_RESTART_COUNT");
    log_line(&lg, "softcot train: %s mode, B=%d G=%d, %d steps, %d tasks, model %s (%.2fM params), %d rank(s), %s %s%s%s%s\n",
             o.mode, o.batch_prompts, o.group_size, o.steps, tasks.n, o.model,
             assets.model.layout.n_floats / 1e6, dist.size, ops_backend_name(), ops_precision_name(),
             device_allreduce ? ", NCCL all-reduce" : "", restart ? ", SLURM_RESTART_COUNT=" : "",
             restart ? restart : "");
    log_recipe(&lg, &o);
    if (!strcmp(o.resume, "auto")) {
        char *path = NULL;
        Err note = {{0}};
        int found = ckpt_find_resume(&dist, ckpt_dir, &path, &note, &err);
        if (found < 0) goto fail_runtime;
        if (note.msg[0]) log_line(&lg, "softcot train: %s\n", note.msg);
        if (found == 0) {
            int saved_world = 0;
            int rc = train_ckpt_load(&dist, path, &st, &info, &saved_world, &err);
            if (rc) {
                free(path);
                goto fail_runtime;
            }
            log_line(&lg, "softcot train: resumed from %s at step %d (written by %d rank(s), now %d)\n", path,
                     st.step, saved_world, dist.size);
            free(path);
        } else {
            log_line(&lg, "softcot train: no checkpoint in %s, starting fresh\n", ckpt_dir);
        }
    }
    TrajRLInfo tinfo = {.mode = o.mode, .batch_prompts = o.batch_prompts, .group_size = o.group_size,
                        .topk = o.traj_topk, .seed = (uint64_t)o.seed, .config_text = config_text};
    Err traj_note;
    if (o.traj_every > 0 && traj_rl_open(&dist, traj_path, st.step, &tinfo, &traj, &traj_note, &err)) goto fail_runtime;
    if (o.traj_every > 0 && traj_note.msg[0]) log_line(&lg, "softcot train: %s\n", traj_note.msg);

    TrainParams p = {.mode = mode, .steps = o.steps, .batch_prompts = o.batch_prompts,
                     .group_size = o.group_size, .lr = o.lr, .min_lr_ratio = o.min_lr_ratio,
                     .warmup = o.warmup, .beta1 = o.beta1, .beta2 = o.beta2, .adam_eps = o.adam_eps,
                     .weight_decay = o.weight_decay,
                     .cot_temperature = mode == COT_HARD ? o.tau_hard : mode == COT_SOFT ? o.tau_soft : o.tau_fuzzy,
                     .noise_gamma = o.noise_gamma, .ans_temperature = o.tau_ans, .cot_max = o.cot_max,
                     .ans_max = o.ans_max, .stop_string = stop_string, .prefill = assets.prefill,
                     .n_prefill = assets.n_prefill, .prefill_long = assets.prefill_long,
                     .n_prefill_long = assets.n_prefill_long, .micro_batch_tokens = o.micro_batch_tokens,
                     .gen_batch = o.gen_batch, .seed = (uint64_t)o.seed, .grad_clip = o.grad_clip,
                     .adv_norm = o.adv_norm, .skip_nonfinite = o.skip_nonfinite,
                     .kl_coef = o.kl_coef, .ref = have_ref ? &ref_model : NULL,
                     .max_bad_steps = o.max_bad_steps, .record_topk = o.traj_every > 0 ? o.traj_topk : 0};
    double t0 = 0, done_seconds = 0;
    int done_steps = 0;
    struct timespec ts;
    status = EXIT_OK;
    while (st.step < o.steps) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t0 = ts.tv_sec + 1e-9 * ts.tv_nsec;
        StepStats s;
        RolloutBatch rollouts;
        float *adv = NULL;
        const int step = st.step;
        if (train_step(&st, &p, &tasks, assets.tok, reward_score, &dist, &s, &rollouts, &adv, &err)) {
            rollouts_free(&rollouts);
            free(adv);
            goto fail_runtime;
        }
        if (traj && traj_rl_append(traj, &s, &rollouts, adv, step % o.traj_every == 0, &err)) {
            rollouts_free(&rollouts);
            free(adv);
            goto fail_runtime;
        }
        rollouts_free(&rollouts);
        free(adv);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        done_seconds += ts.tv_sec + 1e-9 * ts.tv_nsec - t0;
        done_steps++;
        if (step % o.log_every == 0 || st.step == o.steps) {
            char eta[32], klbuf[48] = "";
            if (o.kl_coef > 0) snprintf(klbuf, sizeof klbuf, " kl %.4g", s.kl);
            format_eta(done_seconds / done_steps * (o.steps - st.step), eta, sizeof eta);
            log_line(&lg,
                     "step %d/%d | reward %.1f [%.0f, %.0f] correct %.3f | cot %.1f ans %.1f | stop str %.2f len %.2f eos %.2f | "
                     "logp cot %.2f ans %.2f%s | gnorm %.3g lr %.3g%s | gen %.0f tok/s train %.0f tok/s allreduce %.1f ms | %.2f s/step ETA %s\n",
                     step + 1, o.steps, s.reward_mean, s.reward_min, s.reward_max, s.frac_correct, s.cot_len,
                     s.ans_len, s.frac_stop_string, s.frac_stop_length, s.frac_stop_eos, s.logp_cot, s.logp_ans, klbuf,
                     s.grad_norm, s.lr, s.skipped ? " SKIPPED (non-finite)" : "",
                     s.gen_tokens / (s.gen_seconds > 0 ? s.gen_seconds : 1e-9),
                     s.train_tokens / (s.train_seconds > 0 ? s.train_seconds : 1e-9), 1e3 * s.allreduce_seconds,
                     s.step_seconds, eta);
        }
        /* The stop flag is OR-ed across ranks here, at the step boundary. */
        const int stop = dist_any(&dist, signals_pending());
        if (stop || st.step % o.ckpt_every == 0 || st.step == o.steps) {
            if (traj && traj_rl_flush(traj, &err)) goto fail_runtime;
            if (train_ckpt_save(&dist, ckpt_dir, &st, &info, o.keep_ckpts, &err)) goto fail_runtime;
            log_line(&lg, "softcot train: checkpoint step %d written to %s\n", st.step, ckpt_dir);
        }
        if (stop) {
            log_line(&lg, "softcot train: stop signal received; checkpointed at step %d, exiting with status %d (resubmit with --resume auto)\n",
                     st.step, EXIT_REQUEUE);
            status = EXIT_REQUEUE;
            break;
        }
    }
    if (status == EXIT_OK && o.save_final && dist.rank == 0) {
        char *final_dir = path_join(o.out, "final");
        int rc = run_assets_save_model(&assets, final_dir, o.model, &err);
        if (rc == 0) log_line(&lg, "softcot train: final model written to %s\n", final_dir);
        free(final_dir);
        if (rc) {
            fprintf(stderr, "softcot: %s\n", err.msg);
            status = EXIT_RUNTIME;
        }
    }
    goto cleanup;

fail_usage:
    if (dist.rank == 0) fprintf(stderr, "softcot: %s\n", err.msg);
    status = EXIT_USAGE;
    goto cleanup;
fail_runtime:
    if (dist.rank == 0) fprintf(stderr, "softcot: %s\n", err.msg);
    status = EXIT_RUNTIME;
cleanup:
    if (traj) {
        Err close_err;
        if (traj_rl_close(traj, &close_err) && status == EXIT_OK) {
            if (dist.rank == 0) fprintf(stderr, "softcot: %s\n", close_err.msg);
            status = EXIT_RUNTIME;
        }
    }
    if (have_state) train_state_free(&st);
    if (have_ref) model_free(&ref_model);
    taskset_free(&tasks);
    run_assets_free(&assets);
    if (lg.log) fclose(lg.log);
    free(ckpt_dir), free(traj_path), free(config_text), free(stop_string);
    options_free_strings(TRAIN_OPTS, N_TRAIN_OPTS, &o);
    dist_finalize(&dist);
    return status;
}
