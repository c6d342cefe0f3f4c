/* train_ckpt.h — what an RL checkpoint holds and how a run resumes from it
 * (DESIGN.md §3): parameters, AdamW m and v under their Hugging Face names, the step,
 * the data order and cursor, the seed, the full config text and the world size.
 * Resuming restores exactly the state train_step depends on, so a resumed run is
 * bit-identical to an uninterrupted one with the same world size.
 * Must not: call HDF5 or MPI directly (io/checkpoint.h and dist/ do).
 */
#ifndef SOFTCOT_RL_TRAIN_CKPT_H
#define SOFTCOT_RL_TRAIN_CKPT_H

#include <stdint.h>

#include "dist/dist.h"
#include "rl/train.h"

typedef struct {
    uint64_t seed;
    int64_t n_tasks;
    const char *mode;        /* hard, soft or fuzzy */
    const char *config_text; /* the effective options as INI text */
    const char *model_dir;   /* the base model directory (its tokenizer files) */
} TrainRunInfo;

/* Collective. Writes DIR/ckpt_<st->step>.h5 and points DIR/latest at it. */
int train_ckpt_save(Dist *d, const char *dir, const TrainState *st, const TrainRunInfo *info,
                    int keep_last, Err *err);

/* Collective. Restores params, moments, step, cursor from path into st (whose model must
 * have the same layout). Checks that seed, task count and mode match info: a resumed run
 * with other settings would silently be a different run. Returns the world size the
 * checkpoint was written with in *saved_world. */
int train_ckpt_load(Dist *d, const char *path, TrainState *st, const TrainRunInfo *info,
                    int *saved_world, Err *err);

/* Collective. Writes the parameters of checkpoint path as a Hugging Face model directory
 * (config.json from the checkpoint's "model_config", F32 model.safetensors) and copies
 * the tokenizer files of the run's base model directory when it still exists (*note
 * says when it does not). Rank 0 writes. */
int train_ckpt_export(Dist *d, const char *path, const char *out_dir, Err *note, Err *err);

#endif
