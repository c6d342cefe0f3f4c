/* model_dir.h — a Hugging Face model directory <-> (ModelConfig, fp32 parameter buffer).
 *
 * Defines: model_dir_load, which reads DIR/config.json and fills the params.h layout from
 * DIR/model.safetensors or from the shards named in DIR/model.safetensors.index.json
 * (F32, BF16 or F16; every layout tensor exactly once with exactly its shape), and
 * model_dir_save, which writes DIR/config.json and an F32 DIR/model.safetensors in
 * layout order, each atomically.
 * Must not: touch tokenizer files (the CLI copies those) or allocate device memory.
 */
#ifndef SOFTCOT_IO_MODEL_DIR_H
#define SOFTCOT_IO_MODEL_DIR_H

#include "core/check.h"
#include "model/config.h"

/* On success *host_params is a malloc'ed buffer of param_layout n_floats (caller frees).
 * Tensors the model does not use are errors, except rotary_emb.inv_freq buffers and, for
 * tied models, an lm_head.weight copy of the embedding. */
int model_dir_load(const char *dir, ModelConfig *cfg, float **host_params, Err *err);

/* Creates dir if needed. */
int model_dir_save(const char *dir, const ModelConfig *cfg, const float *host_params, Err *err);

#endif
