/* init.h — random initialisation of a model's parameter buffer (training from scratch,
 * e.g. `softcot sft --init random` for the built-in base model).
 *
 * Defines param_init_random: every weight matrix ~ N(0, std^2) (the residual-branch
 * outputs o_proj and down_proj scaled by 1/sqrt(2 n_layers), GPT-2's convention, so the
 * residual stream does not grow with depth), RMSNorm weights 1, biases 0. Each element
 * is drawn from a Philox stream keyed by (seed, RNG_PURPOSE_INIT, tensor index), so the
 * result depends only on the seed and the config.
 * Must not: allocate device memory or do I/O.
 */
#ifndef SOFTCOT_MODEL_INIT_H
#define SOFTCOT_MODEL_INIT_H

#include <stdint.h>

#include "model/config.h"

/* Fills host[0 .. n_floats of the config's param layout). */
void param_init_random(const ModelConfig *cfg, uint64_t seed, float std, float *host);

#endif
