/* traj_summary.h — what `softcot analyze` reads from an RL trajectory file
 * (OUT/trajectories.h5, written by rl/traj_rl.c; schema in docs/hdf5-schema.md).
 *
 * Defines:
 *   - TrajSummary: the run's root attributes, the /steps table (one value per step and
 *     column), and aggregates over the /rollouts rows of a step range: reward and
 *     stop-reason shares, CoT length quantiles, and per CoT-position bin the mean
 *     entropy (all, early and late steps) and the concentration of the CoT distribution
 *     (mean top-1 and top-3 probability, mean mixture entropy and mean exp of it, the
 *     effective number of tokens). Rollout rows are streamed in blocks, so memory stays
 *     bounded whatever the run's length.
 *   - TrajRollout: every column of one rollout, for printing it.
 * Both loaders retry when the file changes while they read it (a job still writing it);
 * a file that does not change and cannot be read is an error at once.
 * Optional columns (added after the first release: mix_entropy, prompt_tokens) are
 * reported as absent; every other column is required and its absence is an error that
 * names the file and the dataset.
 * Must not: call HDF5 (io/traj_read.h does), print, or exit.
 */
#ifndef SOFTCOT_RL_TRAJ_SUMMARY_H
#define SOFTCOT_RL_TRAJ_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "core/check.h"

/* The float columns of /steps, in this order. */
typedef enum {
    TS_REWARD_MEAN, TS_REWARD_MIN, TS_REWARD_MAX, TS_FRAC_CORRECT, TS_COT_LEN, TS_ANS_LEN,
    TS_STOP_STRING, TS_STOP_LENGTH, TS_STOP_EOS, TS_LOGP_COT, TS_LOGP_ANS, TS_LOSS,
    TS_GRAD_NORM, TS_LR, TS_SIGMA, TS_GEN_TOK_S, TS_TRAIN_TOK_S, TS_STEP_SECONDS, TS_N
} TrajStepCol;

/* Dataset names of the TrajStepCol columns ("reward_mean", ...). */
extern const char *const TRAJ_STEP_COL_NAME[TS_N];

/* Sums over the (rollout, CoT position) pairs of one position bin. */
typedef struct {
    int64_t count, count_early, count_late;
    double entropy, entropy_early, entropy_late; /* entropy of softmax(z), nats */
    double top1, top3;                           /* top-1 / top-3 probability of the CoT distribution */
    double mix_entropy, eff_tokens;              /* its entropy, and exp of it (when recorded) */
} PosBinSums;

typedef struct {
    int64_t step_min, step_max; /* inclusive step range analysed; INT64_MIN / INT64_MAX = all */
    int pos_bin;                /* CoT positions per bin (>= 1) */
} TrajSummaryOptions;

typedef struct {
    char *path;
    /* root attributes */
    char *mode, *softcot_version, *compression, *config;
    int64_t format_version, batch_prompts, group_size, topk, world_size, seed;
    /* /steps rows within the step range */
    int64_t n_steps_total, n_steps;
    int64_t *step;
    float *col[TS_N];
    int32_t *skipped;
    /* /rollouts rows within the step range */
    int64_t n_rollouts_total, n_rollouts, n_rollout_steps;
    int64_t first_rollout_step, last_rollout_step; /* -1 when there are no rows */
    int64_t early_max_step, late_min_step;         /* early: step <= early_max_step; late: >= late_min_step */
    int has_mix_entropy, has_prompt_tokens;
    int64_t n_reward[3];   /* rows with reward 100, 10, 0 (other values are not counted) */
    int64_t n_cot_stop[3]; /* stop string, cot_max, EOS */
    int64_t n_ans_stop[3]; /* closing brace, EOS, ans_max */
    double mean_cot_len, mean_ans_len;
    int cot_len_min, cot_len_median, cot_len_p90, cot_len_max;
    int pos_bin, n_pos_bins; /* bins cover positions [0, n_pos_bins * pos_bin) */
    PosBinSums *bins;
} TrajSummary;

int traj_summary_load(const char *path, const TrajSummaryOptions *o, TrajSummary *s, Err *err);
void traj_summary_free(TrajSummary *s);

/* One rollout. Optional columns missing from the file leave their pointer NULL (and
 * n_prompt = -1). Text is NUL-terminated and may contain any bytes the model wrote. */
typedef struct {
    char *path, *mode_name;
    int64_t step, row, index_in_step, n_in_step;
    int prompt_index, sample_index, rank, mode, correct, cot_len, ans_len, cot_stop, ans_stop, topk;
    float reward, advantage, logp_cot, logp_ans;
    int32_t *shadow, *topk_ids, *answer_tokens, *prompt_tokens;
    float *topk_probs, *entropy, *mix_entropy, *noise_norm;
    int n_prompt;
    char *cot_text, *answer_text;
    size_t cot_text_len, answer_text_len;
    char *config; /* the run's config text (to find its tokenizer) */
} TrajRollout;

/* Loads rollout `index` (0-based, in the order the step's rows are stored: rollout
 * b*G + g) of step `step`; step < 0 means the last step with rollouts. */
int traj_rollout_load(const char *path, int64_t step, int64_t index, TrajRollout *r, Err *err);
void traj_rollout_free(TrajRollout *r);

#endif
