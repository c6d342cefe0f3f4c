/* train.h — one RL step of DESIGN.md §1 (RLOO, on-policy, one gradient step per batch),
 * data-parallel over the ranks of a Dist:
 *   draw B prompts (seeded order, cursor kept) -> this rank's share of the B*G rollouts
 *   -> rewards -> rewards of every group gathered -> RLOO advantages -> teacher-forced
 *   replay in micro-batches (gradient accumulation) -> gradient all-reduce -> optional
 *   clipping / non-finite skip -> AdamW with warm-up + cosine schedule.
 * The weights and optimizer state are identical on every rank after each step.
 * Must not: read files, parse options, write checkpoints (the caller does, between steps)
 * or print (it returns statistics).
 */
#ifndef SOFTCOT_RL_TRAIN_H
#define SOFTCOT_RL_TRAIN_H

#include <stdint.h>

#include "dist/dist.h"
#include "model/model.h"
#include "rl/replay.h"
#include "rl/rollout.h"
#include "text/tokenizer.h"

/* The prompts of a task set, tokenised once, with their gold answers. */
typedef struct {
    int n;
    int **prompt_ids;
    int *prompt_len;
    char **gold;
} TaskSet;

typedef int (*RewardFn)(const char *answer_text, const char *gold);

typedef struct {
    CotMode mode;
    int steps;              /* total steps of the run (for the schedule) */
    int batch_prompts;      /* B */
    int group_size;         /* G */
    float lr, min_lr_ratio;
    int warmup;
    float beta1, beta2, adam_eps, weight_decay;
    float cot_temperature;  /* tau for the chosen mode */
    float noise_gamma;      /* sigma = gamma * rms(E) */
    float ans_temperature;
    int cot_max, ans_max;
    const char *stop_string;
    const int *prefill, *prefill_long;
    int n_prefill, n_prefill_long;
    int micro_batch_tokens; /* replay positions per micro-batch */
    int gen_batch;          /* rollouts generated together: the unit of work per rank,
                               chosen independently of the rank count for reproducibility */
    uint64_t seed;
    float grad_clip;        /* 0 = off */
    int adv_norm;           /* divide advantages by the group std */
    float kl_coef;          /* KL penalty to the reference model (0 = off) */
    const Model *ref;       /* the frozen initial model, when kl_coef > 0 */
    int skip_nonfinite;     /* skip the update on NaN/Inf instead of aborting */
    int max_bad_steps;      /* abort after this many consecutive skipped steps */
    int record_topk;        /* top-k mixture tokens kept per CoT position (trajectories) */
} TrainParams;

typedef struct {
    Model *model;
    float *grads, *adam_m, *adam_v; /* device, layout order */
    int step;                       /* the next step to run (0-based) */
    int64_t cursor;                 /* prompts consumed so far */
    int bad_steps;                  /* consecutive skipped steps */
    int device_allreduce;           /* reduce gradients with op_allreduce_sum (NCCL), not MPI */
    ReplayState replay;
    int replay_ready;
} TrainState;

typedef struct {
    int step;
    double reward_mean, reward_min, reward_max, frac_correct;
    double cot_len, ans_len, frac_stop_string, frac_stop_length, frac_stop_eos;
    double logp_cot, logp_ans, loss;
    double kl;              /* mean KL to the reference per rollout (0 without penalty) */
    double grad_norm, lr, sigma;
    double gen_tokens, train_tokens, gen_seconds, train_seconds, step_seconds;
    double allreduce_seconds; /* gradient all-reduce wall time on this rank */
    int skipped;            /* the update was skipped (non-finite loss or gradient) */
    int64_t first_rollout;  /* this rank's rollouts are global indices [first, first+n) */
} StepStats;

/* Allocates gradients and AdamW moments (zeroed) for model. */
void train_state_init(TrainState *st, Model *model);
void train_state_free(TrainState *st);

/* The order in which epoch `epoch` visits the task set (a seeded permutation, fresh every
 * epoch): the p-th prompt drawn is perm[p % n] of epoch p / n, so the cursor alone
 * restores the data order. */
void train_epoch_order(uint64_t seed, int64_t epoch, int64_t n_tasks, int64_t *perm);

/* Runs step st->step, advances st->step and st->cursor. The rollouts this rank generated
 * (with rewards and advantages) are left in *rollouts for trajectory dumps (the caller
 * frees them with rollouts_free) and their advantages in *advantages (malloc'd).
 * Returns 0; -1 with err when the step cannot run (prompt too long) or when
 * max_bad_steps consecutive non-finite steps were reached. */
int train_step(TrainState *st, const TrainParams *p, const TaskSet *tasks, const Tokenizer *tok,
               RewardFn reward, Dist *dist, StepStats *stats, RolloutBatch *rollouts,
               float **advantages, Err *err);


#endif
