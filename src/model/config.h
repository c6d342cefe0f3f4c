/* config.h — the shape and hyper-parameters of a Llama / Qwen2 decoder (ModelConfig).
 *
 * Filled from a Hugging Face config.json by io/hf_config.c, or from a llama2.c header by
 * io/llama2c.c. Everything the forward pass needs to know about the architecture lives
 * here; nothing here knows about files.
 * Must not: do I/O or allocate.
 */
#ifndef SOFTCOT_MODEL_CONFIG_H
#define SOFTCOT_MODEL_CONFIG_H

#include "core/check.h"

typedef enum { ARCH_LLAMA = 0, ARCH_QWEN2 = 1 } ModelArch;

enum { MAX_EOS_IDS = 8 };

typedef struct {
    ModelArch arch;
    int dim;          /* hidden_size */
    int hidden_dim;   /* intermediate_size */
    int n_layers;     /* num_hidden_layers */
    int n_heads;      /* num_attention_heads */
    int n_kv_heads;   /* num_key_value_heads */
    int head_dim;     /* head_dim, or dim / n_heads */
    int vocab_size;
    int max_seq;      /* max_position_embeddings */
    float norm_eps;   /* rms_norm_eps */
    float rope_theta;
    int tied_embeddings; /* tie_word_embeddings: lm_head shares embed_tokens */
    int qkv_bias;        /* Qwen2: q/k/v projections carry biases */
    /* rope_scaling {"rope_type": "llama3", ...}; rope_llama3 = 0 means no scaling */
    int rope_llama3;
    float rope_factor;
    float rope_low_freq_factor;
    float rope_high_freq_factor;
    int rope_original_max_pos;
    int bos_id;                /* -1 if unknown */
    int n_eos;                 /* eos_token_id may be a list (Llama 3.x) */
    int eos_ids[MAX_EOS_IDS];
} ModelConfig;

/* Derived sizes. */
static inline int cfg_q_dim(const ModelConfig *c) { return c->n_heads * c->head_dim; }
static inline int cfg_kv_dim(const ModelConfig *c) { return c->n_kv_heads * c->head_dim; }

/* Checks internal consistency (positive sizes, heads divisible by kv heads, even head_dim).
 * Returns 0, or -1 with a one-line message prefixed by `what` (usually the config path). */
int model_config_validate(const ModelConfig *c, const char *what, Err *err);

#endif
