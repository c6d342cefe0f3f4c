/* model.h — a Llama / Qwen2 decoder: weights (Model), working memory (RunState), the
 * batched forward pass with a KV cache, and the backward pass to parameter gradients.
 *
 * A forward call processes a batch of sequences. Each sequence owns a KV-cache slot,
 * already holds `start` cached positions and brings `len` new positions, packed one
 * sequence after the other. A position's input is a token id (embedding lookup) or, for
 * soft tokens, an input vector. Decoding a whole batch is a forward call with len = 1 per
 * sequence; a teacher-forced replay is one call with start = 0.
 * Backward takes dL/dlogits for every row of the last training forward and ACCUMULATES
 * parameter gradients (so micro-batches sum). Input vectors receive no gradient.
 * All float buffers here are device memory (see ops/ops.h); the model never touches them
 * from the host.
 * Must not: do file I/O, call MPI, or know about RL.
 */
#ifndef SOFTCOT_MODEL_H
#define SOFTCOT_MODEL_H

#include <stddef.h>

#include "model/config.h"
#include "model/params.h"
#include "ops/ops.h"

typedef struct {
    ModelConfig cfg;
    ParamLayout layout;
    ParamOffsets off;
    float *params; /* device, layout.n_floats */
} Model;

/* Uploads host_params (layout order) to the device. */
void model_init(Model *m, const ModelConfig *cfg, const float *host_params);
void model_free(Model *m);
/* Copies the parameters back to a host buffer of layout.n_floats floats. */
void model_download_params(const Model *m, float *host_params);

typedef struct {
    int max_rows;  /* most positions in one forward call */
    int n_slots;   /* KV-cache slots (sequences alive at once) */
    int max_seq;   /* most positions per sequence */
    int train;     /* keep every layer's activations so backward can run */
    int last_rows_only; /* every forward asks for last-row logits only (generation): the
                         * logits buffer then holds n_slots rows instead of max_rows */
} RunShape;

typedef struct {
    RunShape shape;
    /* RoPE tables [max_seq, head_dim/2] */
    float *rope_cos, *rope_sin;
    /* KV caches [n_layers][n_slots][max_seq][kv_dim] */
    float *k_cache, *v_cache;
    /* activations; with train every layer has its own copy (stride *_stride) */
    float *x;     /* residual stream at each layer input, [n_layers + 1][rows][d] with train */
    float *xn1, *rstd1, *q, *att, *lse, *x_mid, *xn2, *rstd2, *hid;
    float *gate_up;         /* [rows][2 hidden_dim] the stacked gate/up projection */
    float *qkv;             /* [rows][q_dim + 2 kv_dim] the stacked q/k/v projection, before RoPE */
    float *xnf, *rstdf;     /* final norm */
    float *last_rows;       /* [n_slots][d] last row of each sequence (logits_last_only) */
    float *logits;          /* [rows][V] */
    int *d_tokens, *d_meta;
    int *host_tokens, *host_meta;
    AttnBatch batch;
    int rows;               /* rows of the last forward */
    int trained_rows;       /* rows the last training forward stored, for backward */
    /* backward scratch */
    float *dx, *dxn, *dq, *datt, *dqkv, *dk_cache, *dv_cache, *dhid, *dgate_up;
} RunState;

void runstate_init(RunState *rs, const ModelConfig *cfg, RunShape shape);
void runstate_free(RunState *rs);
/* Bytes of device memory a RunState of this shape uses (for sizing and docs). */
size_t runstate_bytes(const ModelConfig *cfg, RunShape shape);

typedef struct {
    int n_seq;
    const int *slot, *start, *len; /* host arrays [n_seq] */
    const int *tokens;             /* host [rows]; < 0 means "use vectors[row]" */
    const float *vectors;          /* device [rows][d], or NULL when every input is a token */
} ForwardInput;

/* Runs the batch through the model, appending its keys/values to the cache. Writes
 * rs->logits: [rows][V] for every row, or [n_seq][V] (the last row of each sequence)
 * when logits_last_only. Returns the number of logit rows. */
int model_forward(const Model *m, RunState *rs, const ForwardInput *in, int logits_last_only);

/* Accumulates parameter gradients (device, layout order) for dL/dlogits [rows][V] of the
 * last forward, which must have run with logits_last_only = 0 on a train RunState and
 * start = 0 for every sequence. dlogits may be rs->logits itself. */
void model_backward(const Model *m, RunState *rs, const float *dlogits, float *grads);

#endif
