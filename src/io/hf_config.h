/* hf_config.h — Hugging Face config.json <-> ModelConfig.
 *
 * Defines: hf_config_read (LlamaForCausalLM and Qwen2ForCausalLM, including Llama 3.x's
 * "llama3" rope_scaling and list-valued eos_token_id; every error names the file and the
 * field) and hf_config_write (an atomic config.json that Hugging Face transformers loads
 * and hf_config_read reads back to the identical ModelConfig).
 * Must not: read or write tensors, or accept a config the model engine cannot run
 * exactly (unsupported options are errors, not silently ignored).
 */
#ifndef SOFTCOT_IO_HF_CONFIG_H
#define SOFTCOT_IO_HF_CONFIG_H

#include "core/check.h"
#include "model/config.h"

/* Parses path; returns 0, or -1 with "<path>: <what>" in err. The result has passed
 * model_config_validate. */
int hf_config_read(const char *path, ModelConfig *c, Err *err);

/* Same, from JSON text already in memory; `what` names it in error messages. */
int hf_config_parse(const char *json, size_t len, const char *what, ModelConfig *c, Err *err);

/* Writes c as config.json at path (temp file, fsync, rename). */
/* The config.json text hf_config_write writes (malloc'd, NUL-terminated, *len bytes), or
 * NULL if the config holds a non-finite float. */
char *hf_config_to_json(const ModelConfig *c, size_t *len);
int hf_config_write(const char *path, const ModelConfig *c, Err *err);

#endif
