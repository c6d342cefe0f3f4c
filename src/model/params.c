#include "model/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

typedef struct {
    ParamLayout *layout;
    int cap;
} Builder;

static size_t add_tensor(Builder *b, const char *name, int rows, int cols) {
    ParamLayout *L = b->layout;
    if (L->n_tensors == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        L->tensors = xrealloc(L->tensors, (size_t)b->cap * sizeof *L->tensors);
    }
    ParamTensor *t = &L->tensors[L->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = cols > 0 ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols > 0 ? cols : 0;
    t->numel = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    t->offset = L->n_floats;
    L->n_floats += t->numel;
    return t->offset;
}

void param_layout_build(ParamLayout *layout, ParamOffsets *off, const ModelConfig *c) {
    memset(layout, 0, sizeof *layout);
    Builder b = {layout, 0};
    const int d = c->dim, q = cfg_q_dim(c), kv = cfg_kv_dim(c), ff = c->hidden_dim;
    char name[PARAM_NAME_MAX];
    off->layers = xcalloc((size_t)c->n_layers, sizeof *off->layers);
    off->embed = add_tensor(&b, "model.embed_tokens.weight", c->vocab_size, d);
    for (int l = 0; l < c->n_layers; l++) {
        LayerOffsets *lo = &off->layers[l];
#define LAYER_TENSOR(field, suffix, rows, cols)                                  \
    do {                                                                          \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);             \
        lo->field = add_tensor(&b, name, rows, cols);                             \
    } while (0)
        LAYER_TENSOR(attn_norm, "input_layernorm.weight", d, 0);
        /* q, k, v weights back to back, then their biases back to back: each stack is
         * one [q + 2 kv, d] matrix (one GEMM) and one [q + 2 kv] bias */
        LAYER_TENSOR(wq, "self_attn.q_proj.weight", q, d);
        LAYER_TENSOR(wk, "self_attn.k_proj.weight", kv, d);
        LAYER_TENSOR(wv, "self_attn.v_proj.weight", kv, d);
        lo->bq = lo->bk = lo->bv = PARAM_NONE;
        if (c->qkv_bias) {
            LAYER_TENSOR(bq, "self_attn.q_proj.bias", q, 0);
            LAYER_TENSOR(bk, "self_attn.k_proj.bias", kv, 0);
            LAYER_TENSOR(bv, "self_attn.v_proj.bias", kv, 0);
        }
        LAYER_TENSOR(wo, "self_attn.o_proj.weight", d, q);
        LAYER_TENSOR(ffn_norm, "post_attention_layernorm.weight", d, 0);
        /* gate then up: one [2 ff, d] matrix */
        LAYER_TENSOR(w_gate, "mlp.gate_proj.weight", ff, d);
        LAYER_TENSOR(w_up, "mlp.up_proj.weight", ff, d);
        LAYER_TENSOR(w_down, "mlp.down_proj.weight", d, ff);
#undef LAYER_TENSOR
        /* model.c runs each stack as one GEMM */
        CHECK(lo->wk == lo->wq + (size_t)q * d && lo->wv == lo->wk + (size_t)kv * d);
        CHECK(!c->qkv_bias || (lo->bk == lo->bq + (size_t)q && lo->bv == lo->bk + (size_t)kv));
        CHECK(lo->w_up == lo->w_gate + (size_t)ff * d);
    }
    off->final_norm = add_tensor(&b, "model.norm.weight", d, 0);
    off->lm_head = c->tied_embeddings ? off->embed
                                      : add_tensor(&b, "lm_head.weight", c->vocab_size, d);
}

void param_layout_free(ParamLayout *layout, ParamOffsets *off) {
    free(layout->tensors);
    free(off->layers);
    memset(layout, 0, sizeof *layout);
    off->layers = NULL;
}

const ParamTensor *param_find(const ParamLayout *layout, const char *name) {
    for (int i = 0; i < layout->n_tensors; i++)
        if (!strcmp(layout->tensors[i].name, name)) return &layout->tensors[i];
    return NULL;
}
