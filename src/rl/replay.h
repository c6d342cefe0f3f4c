/* replay.h — the RL objective of DESIGN.md §1: replays recorded rollouts in one
 * teacher-forced forward pass and accumulates the gradient of
 *     L = sum_i w_i * l_i,   l_i = sum_CoT log pi_t + sum_answer log softmax(z/tau_ans)[a_j]
 * where the caller sets w_i = -A_i / (B*G). CoT terms are categorical for hard rollouts
 * and the Gaussian log-density -||h~_t - softmax(z_{t-1}/tau)^T E||^2 / (2 sigma^2) for
 * soft and fuzzy ones. The recorded h~_t are data (no gradient); E receives gradient
 * through the logits and, for soft/fuzzy, through mu_t.
 * Must not: sample, compute rewards or advantages, or call MPI.
 */
#ifndef SOFTCOT_RL_REPLAY_H
#define SOFTCOT_RL_REPLAY_H

#include "model/model.h"
#include "rl/rollout.h"

typedef struct {
    CotMode mode;
    float cot_temperature; /* tau_hard for hard, tau of the mixture for soft/fuzzy */
    float sigma;           /* noise std used when the rollouts were generated */
    float ans_temperature;
    const int *prefill, *prefill_long;
    int n_prefill, n_prefill_long;
    /* Optional KL penalty to a frozen reference model (NULL = none): adds
     * kl_scale * sum over CoT and answer positions of KL(pi || pi_ref) to the loss, where
     * categorical positions use the KL of the softmaxes and soft/fuzzy CoT positions the
     * KL of the two Gaussians, ||mu - mu_ref||^2 / (2 sigma^2). */
    const Model *ref;
    float kl_scale;
} ReplayConfig;

/* Scratch sized for a micro-batch: at most max_rows positions, max_seqs rollouts,
 * max_seq positions per rollout. */
typedef struct {
    RunState rs;
    int max_rows, max_seqs, max_seq;
    float *d_dlogits, *d_vectors, *d_logp, *d_dlogp;
    /* soft/fuzzy CoT terms, allocated on first use (NULL in hard-mode runs) */
    int soft_ready;
    float *d_z, *d_p, *d_mu, *d_h, *d_dmu, *d_dp;
    int *d_tgt;
    float *h_vectors, *h_logp, *h_dlogp;
    int *h_tgt, *h_tokens;
    /* reference model working memory, allocated on first use of the KL penalty */
    RunState ref_rs;
    int ref_ready;
    float *d_zref, *d_muref, *d_klw, *d_kl;
} ReplayState;

void replay_init(ReplayState *st, const ModelConfig *c, int max_rows, int max_seqs, int max_seq);
void replay_free(ReplayState *st);

/* Number of positions rollout r occupies in the replay. */
int replay_length(const Rollout *r, const ReplayConfig *rc);

/* Replays r[0..n) (their total length must fit the state), adds d(sum_i w_i l_i)/dparams
 * to grads (device, layout order) and returns each rollout's CoT and answer
 * log-probability terms. Pass grads = NULL to only evaluate the log-probabilities. */
void replay_accumulate(const Model *m, ReplayState *st, const ReplayConfig *rc, const Rollout *r,
                       const float *weights, int n, float *grads, double *logp_cot,
                       double *logp_ans);
/* As replay_accumulate; with rc->ref set, kl[i] receives rollout i's summed KL to the
 * reference (kl may be NULL). */
void replay_accumulate_kl(const Model *m, ReplayState *st, const ReplayConfig *rc, const Rollout *r,
                          const float *weights, int n, float *grads, double *logp_cot,
                          double *logp_ans, double *kl);

#endif
