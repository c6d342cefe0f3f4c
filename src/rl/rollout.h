/* rollout.h — batched generation of chain-of-thought rollouts in hard, soft or fuzzy mode
 * (DESIGN.md §1 "Generation of one rollout"), recording everything the teacher-forced
 * replay and the trajectory dump need.
 *
 * All rollouts of a call advance together through the batched KV cache; rollouts that
 * have finished drop out. Within a step the batch is ordered [CoT phase..., answer
 * phase...] so the CoT rows' logits are contiguous for the mixture GEMM.
 * Randomness (token sampling, soft-token noise) is keyed by (seed, step, prompt index,
 * sample index, position, purpose): a rollout is the same whichever rank or batch
 * produces it.
 * Must not: compute rewards (rl/reward.h), call MPI or HDF5, or print.
 */
#ifndef SOFTCOT_RL_ROLLOUT_H
#define SOFTCOT_RL_ROLLOUT_H

#include <stdint.h>

#include "model/model.h"
#include "text/tokenizer.h"

typedef enum { COT_HARD = 0, COT_SOFT = 1, COT_FUZZY = 2 } CotMode;

const char *cot_mode_name(CotMode m);
int cot_mode_parse(const char *s, CotMode *m, Err *err);

/* Why the CoT ended. */
typedef enum { COT_STOP_STRING = 0, COT_STOP_LENGTH = 1, COT_STOP_EOS = 2 } CotStop;
/* Why the answer ended. */
typedef enum { ANS_STOP_CLOSED = 0, ANS_STOP_EOS = 1, ANS_STOP_LENGTH = 2 } AnsStop;

typedef struct {
    CotMode mode;
    float cot_temperature;  /* hard: tau_hard (0 = greedy); soft/fuzzy: tau of the mixture */
    float sigma;            /* soft/fuzzy noise std (0 = the noiseless "greedy" modes) */
    float ans_temperature;  /* answer phase: 1 in training, 0 (greedy) at evaluation */
    int cot_max, ans_max;
    const char *stop_string;        /* "The final answer is:" */
    const int *prefill, *prefill_long; /* token ids of " \boxed{" and " The final answer is: \boxed{" */
    int n_prefill, n_prefill_long;
    uint64_t seed;
    int step;               /* training step, part of every random key */
    int record_entropy;     /* keep the entropy of softmax(z) at each CoT position */
    int record_topk;        /* keep the top-k mixture tokens and probabilities, and the
                             * mixture's entropy (0 = none) */
} RolloutConfig;

enum { ROLLOUT_MAX_TOPK = 8 };

typedef struct {
    int prompt_index, sample_index;
    const int *prompt;     /* borrowed from the caller */
    int n_prompt;
    int cot_len;
    int *cot_tokens;       /* [cot_len] hard: sampled tokens; soft/fuzzy: shadow = argmax z */
    float *cot_vectors;    /* [cot_len][d] soft/fuzzy: the noisy inputs h~_t fed (data, no grad) */
    float *cot_entropy;    /* [cot_len] when record_entropy */
    float *noise_norm;     /* [cot_len] ||h~_t - mu_t|| (soft/fuzzy) */
    int *topk_ids;         /* [cot_len][record_topk] */
    float *topk_probs;     /* [cot_len][record_topk] */
    float *mix_entropy;    /* [cot_len] when record_topk: entropy of softmax(z/tau), the
                            * distribution the CoT input was mixed (soft/fuzzy) or sampled
                            * (hard) from; 0 for greedy hard */
    int prefill_long;      /* 1 when the long prefill was used */
    int ans_len;
    int *ans_tokens;       /* [ans_len] */
    CotStop cot_stop;
    AnsStop ans_stop;
    char *cot_text;        /* decoded shadow text */
    char *ans_text;        /* decoded answer text (after the prefilled "\boxed{") */
    float reward;          /* filled by the caller */
    float logp_cot, logp_ans; /* filled by the trainer's replay: the two parts of l */
} Rollout;

typedef struct {
    Rollout *r;
    int n;
    long gen_rows;         /* forward rows spent generating (for tokens/s) */
} RolloutBatch;

/* One request: generate n_samples rollouts of prompt prompt_index. */
typedef struct {
    int prompt_index;
    const int *prompt;
    int n_prompt;
    int first_sample, n_samples; /* sample indices first_sample .. first_sample+n-1 */
} RolloutRequest;

/* Noise scale sigma = gamma * rms(E) of the model's current input embedding. */
float rollout_sigma(const Model *m, float gamma);

/* Generates every requested rollout, at most max_batch sequences at a time (bounded
 * memory). Returns 0, or -1 with err (a prompt too long for the model). */
int rollouts_generate(const Model *m, const Tokenizer *tok, const RolloutConfig *cfg,
                      const RolloutRequest *req, int n_req, int max_batch, RolloutBatch *out,
                      Err *err);
void rollouts_free(RolloutBatch *b);

#endif
