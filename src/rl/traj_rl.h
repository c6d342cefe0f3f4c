/* traj_rl.h — the RL trajectory file (OUT/trajectories.h5): what every rollout of a step
 * did, for post-hoc analysis with h5py or `softcot analyze`. Schema in
 * docs/hdf5-schema.md:
 *   /steps     one row per step: the logged statistics (reward, lengths, log-probs,
 *              gradient norm, learning rate, throughput)
 *   /rollouts  one row per rollout of every traj_every-th step: indices, rank, mode,
 *              reward, advantage, lengths, stop reasons, log-probabilities, and ragged
 *              per-CoT-position arrays (shadow token, top-k mixture ids/probabilities,
 *              entropy, noise norm) plus the decoded CoT and answer text
 * Built on io/trajectory.h (collective appends at MPI_Exscan offsets).
 * Must not: call HDF5 or MPI directly.
 */
#ifndef SOFTCOT_RL_TRAJ_RL_H
#define SOFTCOT_RL_TRAJ_RL_H

#include "dist/dist.h"
#include "rl/rollout.h"
#include "rl/train.h"

typedef struct TrajRL TrajRL;

typedef struct {
    const char *mode;
    int batch_prompts, group_size, topk;
    uint64_t seed;
    const char *config_text;
} TrajRLInfo;

/* Collective. Starting at step 0 creates (replaces) path; resuming at next_step > 0
 * reopens it and drops rows of steps >= next_step, so every step appears exactly once.
 * If the file cannot be reopened (damaged by a hard kill), it is moved aside, a new one
 * is started, and note->msg says so (otherwise note->msg is ""). */
int traj_rl_open(Dist *d, const char *path, int next_step, const TrajRLInfo *info, TrajRL **out,
                 Err *note, Err *err);
/* Collective. Appends the step's statistics (rank 0's row) and, if with_rollouts, this
 * rank's rollouts with their advantages. */
int traj_rl_append(TrajRL *t, const StepStats *s, const RolloutBatch *b, const float *adv,
                   int with_rollouts, Err *err);
int traj_rl_flush(TrajRL *t, Err *err);
int traj_rl_close(TrajRL *t, Err *err);

#endif
