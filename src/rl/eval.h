/* eval.h — evaluation of a model on math problems in the six CoT inference settings of
 * DESIGN.md §1 "Evaluation", and multiple-choice log-likelihood scoring (OOD, MMLU/ARC).
 *
 * Defines:
 *   - EvalMode: hard/soft/fuzzy x greedy/sample, with the settings each implies;
 *   - EvalModeStats: per-problem correct counts and aggregate statistics of one mode
 *     (stop reasons, CoT length, binned entropy profile), and pass@k over problems;
 *   - eval_run_mode: batched generation of every sample of every problem (rollout.h) in
 *     chunks of `batch` sequences decoded together, scored with reward.h;
 *   - eval_loglik / eval_mc: teacher-forced, batched log-likelihood of continuations and
 *     multiple-choice scoring (accuracy, per-token NLL of the correct choice).
 * Must not: parse options, read or write files, print, or call MPI (the CLI does those;
 * progress is reported through a callback).
 */
#ifndef SOFTCOT_RL_EVAL_H
#define SOFTCOT_RL_EVAL_H

#include <stdint.h>

#include "data/dataset.h"
#include "model/model.h"
#include "rl/rollout.h"
#include "text/tokenizer.h"

typedef enum {
    EVAL_HARD_GREEDY = 0,
    EVAL_HARD_SAMPLE,
    EVAL_SOFT_GREEDY,
    EVAL_SOFT_SAMPLE,
    EVAL_FUZZY_GREEDY,
    EVAL_FUZZY_SAMPLE,
    EVAL_N_MODES
} EvalMode;

/* Temperatures of the CoT phase (DESIGN §1; the CLI exposes them, defaults = paper). */
typedef struct {
    float hard_sample;  /* tau of hard-sample (1.0); hard-greedy is always tau = 0 */
    float soft;         /* tau of the soft mixture (0.5) */
    float fuzzy;        /* tau of the fuzzy mixture (1e-4) */
    float noise_gamma;  /* sample soft/fuzzy: sigma = gamma * rms(E) (0.33) */
} EvalTemps;

/* "hard-greedy", ... */
const char *eval_mode_name(EvalMode m);
CotMode eval_mode_cot(EvalMode m);
/* 1 for the *-sample modes (several samples per problem, pass@k), 0 for greedy ones. */
int eval_mode_is_sample(EvalMode m);
/* Comma-separated mode names (no duplicates) -> on[EVAL_N_MODES] flags. */
int eval_modes_parse(const char *list, int on[EVAL_N_MODES], Err *err);
/* The CoT temperature, noise scale and answer temperature a mode runs with:
 * hard-greedy tau 0; hard-sample tau = t->hard_sample; soft/fuzzy tau = t->soft/fuzzy;
 * greedy soft/fuzzy sigma = 0, sample soft/fuzzy sigma = gamma * rms(E); answer greedy. */
void eval_mode_settings(const Model *m, EvalMode mode, const EvalTemps *t, float *cot_temperature,
                        float *sigma, float *ans_temperature);

/* One problem: its tokenised prompt (borrowed) and gold answer (borrowed). */
typedef struct {
    const int *ids;
    int n_ids;
    const char *gold;
} EvalTask;

typedef struct {
    EvalMode mode;
    float cot_temperature, sigma, ans_temperature;
    int n_problems, n_samples;    /* samples per problem */
    int *n_correct;               /* [n_problems] samples with reward 100 */
    int *n_closed;                /* [n_problems] samples with a closed \boxed{} (reward >= 10) */
    long n_rollouts;
    long cot_tokens, ans_tokens;  /* sums of cot_len and ans_len */
    long gen_rows;                /* forward rows spent generating (CoT + prefill + answer) */
    long stop[3];                 /* indexed by CotStop: stop string, length, EOS */
    long ans_closed;              /* answers that closed the box (ANS_STOP_CLOSED) */
    int entropy_bin, n_bins;      /* CoT positions [b*bin, (b+1)*bin) form bin b */
    double *entropy_sum;          /* [n_bins] sum of entropies (nats) in the bin */
    long *entropy_count;          /* [n_bins] (rollout, position) pairs in the bin */
    double seconds;               /* wall time of generation and scoring */
} EvalModeStats;

void eval_stats_init(EvalModeStats *s, EvalMode mode, int n_problems, int n_samples, int cot_max,
                     int entropy_bin);
void eval_stats_free(EvalModeStats *s);
/* Adds one scored rollout (r->prompt_index is the problem index; r->cot_entropy may be
 * NULL, then the rollout adds nothing to the entropy profile). */
void eval_stats_add(EvalModeStats *s, const Rollout *r, int reward);
/* Mean over problems of the unbiased pass@k (passk.h); NAN if k > n_samples or k < 1. */
double eval_pass_at_k(const EvalModeStats *s, int k);
/* Fraction of rollouts that were correct (greedy pass@1 for greedy modes, sample pass@1
 * for sample modes: equal to eval_pass_at_k(s, 1)). */
double eval_frac_correct(const EvalModeStats *s);

/* Called after each chunk: rollouts done of total, generated tokens so far, seconds. */
typedef void (*EvalProgressFn)(void *ctx, EvalMode mode, long done, long total, long gen_tokens,
                               double seconds);

/* Generates n_samples rollouts of each of the n_tasks problems with the settings of mode
 * (base supplies cot_max, ans_max, stop string, prefills and seed; its mode, temperatures,
 * sigma, step and recording flags are overridden), `batch` sequences decoded together,
 * scores them with reward_score and fills *out (initialised here; free with
 * eval_stats_free). The rollouts are generated in the order (problem, sample) and cut
 * into chunks of `batch` exactly as one rollouts_generate call with max_batch = batch
 * would cut them, so the results are the same; only one chunk's rollouts are held at a
 * time, which bounds memory (soft rollouts carry a d-vector per CoT position).
 * Returns 0, or -1 with err (a prompt too long for the model). */
int eval_run_mode(const Model *m, const Tokenizer *tok, const RolloutConfig *base, EvalMode mode,
                  const EvalTemps *temps, const EvalTask *tasks, int n_tasks, int n_samples,
                  int batch, int entropy_bin, EvalProgressFn progress, void *progress_ctx,
                  EvalModeStats *out, Err *err);

/* ---- teacher-forced log-likelihood ---- */

/* A sequence ids[0..n) whose tokens n_ctx..n-1 are scored given everything before them
 * (1 <= n_ctx < n). */
typedef struct {
    const int *ids;
    int n, n_ctx;
} LoglikSeq;

/* loglik[i] = sum over t in [n_ctx, n) of log softmax(z_{t-1})[ids[t]], computed in
 * packed forward calls of at most max_rows positions (a longer sequence gets a call of
 * its own). Every sequence must fit the model (n <= max_position_embeddings). */
void eval_loglik(const Model *m, const LoglikSeq *seqs, int n, int max_rows, double *loglik);

typedef struct {
    int n_items;
    int n_correct;         /* argmax of the summed log-likelihood is the correct choice */
    int n_correct_norm;    /* argmax of the per-token mean log-likelihood is correct */
    int n_truncated;       /* items whose question was cut (from the left) to fit the model */
    double sum_nll_token;  /* sum over items of -loglik(correct) / tokens(correct) */
    double sum_tokens_correct; /* sum over items of tokens(correct choice) */
    int *predicted;        /* [n_items] predicted choice index */
    int *correct;          /* [n_items] gold choice index */
} McResult;

/* Scores items[0..n) of set: context "Question: <q>\nAnswer:" (BOS added as the
 * tokenizer's template does), continuation " <choice>"; the continuation tokens are
 * those of the whole text after the context's own tokens (as lm-evaluation-harness
 * does). Returns 0, or -1 with err (an id the tokenizer cannot encode). */
int eval_mc(const Model *m, const Tokenizer *tok, const McSet *set, int n, int max_rows,
            McResult *out, Err *err);
void eval_mc_free(McResult *r);

#endif
