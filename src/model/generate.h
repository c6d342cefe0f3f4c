/* generate.h — plain autoregressive generation with hard tokens (greedy or temperature
 * sampling) for a batch of samples of one prompt, decoding all live samples together
 * through the batched KV cache. Samples that emit an EOS id drop out of the batch.
 * Randomness is keyed by (seed, sample, position), so sample i is the same whether it is
 * generated alone or in a batch.
 * Must not: print, read files, or know about tokenizers (on_token streams ids out).
 */
#ifndef SOFTCOT_GENERATE_H
#define SOFTCOT_GENERATE_H

#include <stdint.h>

#include "model/model.h"

typedef struct {
    int n_samples;
    int max_new;        /* tokens generated per sample at most */
    float temperature;  /* 0 = greedy */
    uint64_t seed;
    int stop_at_eos;    /* stop a sample at any of the config's EOS ids */
    /* called for each new token as soon as it is known; may be NULL */
    void (*on_token)(void *ctx, int sample, int token);
    void *ctx;
} GenerateOptions;

typedef struct {
    int **ids;   /* [n_samples] arrays of new ids (EOS included when hit) */
    int *n_ids;  /* [n_samples] */
    int n_samples;
    long tokens_decoded; /* forward rows spent on new tokens, for throughput */
} GenerateResult;

/* Returns 0, or -1 with err set when the request does not fit the model (length). */
int generate(const Model *m, const int *prompt, int n_prompt, const GenerateOptions *opt,
             GenerateResult *res, Err *err);
void generate_result_free(GenerateResult *res);

#endif
