/* params.h — the layout of all model parameters in one contiguous fp32 buffer.
 *
 * The order is Hugging Face's module order: embed_tokens, then per layer
 * input_layernorm, q/k/v weights, then (Qwen2 only) q/k/v biases, o_proj,
 * post_attention_layernorm, gate/up/down, then model.norm and (untied only) lm_head.
 * Weights keep PyTorch's [out_features, in_features] row-major shape, so a tensor's
 * bytes in safetensors and in the buffer are identical. Gradients and AdamW moments use
 * the same layout.
 * Two stacks are contiguous on purpose, so that one GEMM serves each: wq, wk, wv form
 * one [q_dim + 2 kv_dim, d] matrix (and bq, bk, bv one bias), and w_gate, w_up one
 * [2 hidden_dim, d] matrix. Files name tensors, never offsets, so the order is free.
 * Must not: allocate device memory or know about files.
 */
#ifndef SOFTCOT_MODEL_PARAMS_H
#define SOFTCOT_MODEL_PARAMS_H

#include <stddef.h>

#include "model/config.h"

enum { PARAM_NAME_MAX = 96 };

typedef struct {
    char name[PARAM_NAME_MAX]; /* Hugging Face name, e.g. model.layers.3.mlp.up_proj.weight */
    int ndim;                  /* 1 or 2 */
    int shape[2];
    size_t offset;             /* in floats from the start of the buffer */
    size_t numel;
} ParamTensor;

typedef struct {
    ParamTensor *tensors;
    int n_tensors;
    size_t n_floats; /* total size of the buffer */
} ParamLayout;

/* Per-layer offsets into the buffer (in floats), for the forward/backward code.
 * Bias offsets are (size_t)-1 when the architecture has none. wq starts the stacked
 * q/k/v matrix and bq its bias; w_gate starts the stacked gate/up matrix. */
typedef struct {
    size_t attn_norm, wq, bq, wk, bk, wv, bv, wo, ffn_norm, w_gate, w_up, w_down;
} LayerOffsets;

typedef struct {
    size_t embed;       /* model.embed_tokens.weight [V, d] */
    size_t final_norm;  /* model.norm.weight [d] */
    size_t lm_head;     /* lm_head.weight [V, d], == embed when tied */
    LayerOffsets *layers;
} ParamOffsets;

#define PARAM_NONE ((size_t)-1)

void param_layout_build(ParamLayout *layout, ParamOffsets *offsets, const ModelConfig *c);
void param_layout_free(ParamLayout *layout, ParamOffsets *offsets);
/* NULL if no tensor has that name. */
const ParamTensor *param_find(const ParamLayout *layout, const char *name);

#endif
