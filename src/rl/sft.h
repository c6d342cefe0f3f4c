/* sft.h — the supervised warm start (`softcot sft`): teacher-forced cross-entropy on
 * worked solutions rendered through the prompt template, with AdamW and the shared
 * warm-up + cosine schedule (core/lr_schedule.h).
 *
 * One example is the token sequence a hard-CoT rollout would produce for a perfect
 * answer, segment by segment exactly as the rollout engine builds it (rl/rollout.h):
 *   encode(template(question), with BOS)          prompt: no loss
 *   encode(" <solution> <stop string>")           the CoT the model must learn to write
 *                                                  (" <lead-in> <solution> <stop string>"
 *                                                  when the format has a lead-in)
 *   encode(prefill = " \boxed{")                  in RL a hard prefill, here just target
 *   encode("<answer>}")                           the answer phase, ends at the '}'
 *   EOS                                           (when the tokenizer has one)
 * The loss is the mean, over every target token of the batch, of -log p(token): every
 * position after the prompt is predicted, none inside it.
 * Must not: read files, parse options or print (the CLI does), or call MPI.
 */
#ifndef SOFTCOT_RL_SFT_H
#define SOFTCOT_RL_SFT_H

#include <stdint.h>

#include "core/check.h"
#include "model/model.h"
#include "text/tokenizer.h"

/* How examples are rendered. The strings are borrowed. */
typedef struct {
    const char *template_text; /* contains "{question}" */
    const char *stop_string;   /* DESIGN.md: "The final answer is:" */
    const char *prefill;       /* " \boxed{" */
    const char *lead_in;       /* NULL or "": none. Else put before every worked solution
                                * (not before an empty one), so that the choice between
                                * working the problem and answering at once is the choice
                                * between two first tokens: docs/base-model.md */
} SftFormat;

typedef struct {
    int *ids;     /* prompt + target (+ EOS) */
    int n;        /* total length */
    int n_prompt; /* ids[0 .. n_prompt) are the prompt; ids[n_prompt .. n) are targets */
} SftExample;

/* GSM8K's answer field -> the worked solution: the text before the last "####", with
 * the <<expr=value>> calculator annotations removed and surrounding whitespace trimmed.
 * malloc'd. */
char *sft_worked_solution(const char *gsm8k_answer);

/* Tokenizes one example as described above. answer is the gold answer text (e.g. "72").
 * Returns 0, or -1 with err (bad template, text the tokenizer rejects). */
int sft_example_build(const Tokenizer *tok, const SftFormat *fmt, const char *question,
                      const char *solution, const char *answer, SftExample *ex, Err *err);
void sft_example_free(SftExample *ex);

/* Whether example i of the set is trained answer-only (its worked solution dropped, so the
 * target is just " <stop string><prefill>N}"): a seeded draw with probability share, the
 * same for a given (seed, i) on every run. A stream of its own (RNG_PURPOSE_DATA, sample 1)
 * so it never correlates with the data order. */
int sft_answer_only(uint64_t seed, int i, float share);

/* Per-row targets of one example in a teacher-forced forward: row r predicts ids[r+1];
 * tgt[r] = ids[r+1] when that token is a target (r + 1 >= n_prompt), else -1 (prompt
 * rows and the last row). tgt has ex->n entries. Returns the number of target rows. */
int sft_row_targets(const SftExample *ex, int *tgt);

/* Index of the p-th example drawn (p = 0, 1, ...) from a set of n: a fresh seeded
 * permutation of the set in every epoch (a Feistel bijection, so no state is kept and
 * the position p alone restores the data order). */
int64_t sft_example_at(uint64_t seed, int64_t p, int64_t n);

typedef struct {
    int steps, warmup, batch; /* batch = examples per optimizer step */
    float lr, min_lr_ratio;   /* peak rate; cosine decays to lr * min_lr_ratio */
    float beta1, beta2, adam_eps;
    float weight_decay;       /* applied to 2-D weight matrices only (not norms, biases) */
    float grad_clip;          /* global L2 norm clip; 0 = off */
    uint64_t seed;            /* data order */
} SftParams;

/* Training state. The forward works in micro-batches of at most max_rows positions and
 * max_seqs examples, so memory does not grow with the batch size. */
typedef struct {
    Model *model;
    float *grads, *adam_m, *adam_v; /* device, layout order */
    int step;                       /* the next optimizer step (0-based) */
    RunState rs;
    int max_rows, max_seqs, max_seq;
    float *d_dlogits, *d_logp, *d_dlogp;
    int *d_tgt;
    float *h_logp, *h_dlogp;
    int *h_tokens, *h_tgt, *h_slot, *h_start, *h_len;
} SftState;

/* max_seq must be at least the longest example; max_rows at least max_seq. */
void sft_state_init(SftState *st, Model *model, int max_rows, int max_seqs, int max_seq);
void sft_state_free(SftState *st);

/* Sum over the target tokens of ex[0..n) of -log p (one forward per micro-batch). With
 * backward, also accumulates d(scale * sum)/dparams into st->grads (scale = 1/N gives
 * the gradient of the mean over N target tokens). *n_targets receives the count. */
double sft_nll(SftState *st, const SftExample *const *ex, int n, int backward, float scale,
               long *n_targets);

typedef struct {
    double loss;      /* mean NLL per target token of this step's batch, before the update */
    double grad_norm; /* global L2 norm before clipping */
    double lr;
    long tokens;      /* positions forwarded */
    long targets;     /* target tokens */
} SftStepStats;

/* Runs optimizer step st->step on the examples drawn for it (sft_example_at with
 * positions step*batch ..), then advances st->step. Returns 0, or -1 with err when the
 * loss or gradient is not finite (the weights are then left unchanged). */
int sft_step(SftState *st, const SftParams *p, const SftExample *set, int n_set, SftStepStats *stats,
             Err *err);

#endif
