/* llama2c.h — import of Karpathy's llama2.c checkpoint format (legacy "version 0" .bin).
 *
 * Defines: llama2c_read, which validates the 7-int32 header and the exact file size,
 * then returns a ModelConfig and the parameters in the Hugging Face layout of
 * model/params.h. llama2.c rotates adjacent pairs (2i, 2i+1) of each head while
 * Hugging Face Llama rotates halves (i, i + head_dim/2), so the rows of wq and wk are
 * permuted per head exactly as transformers' convert_llama_weights_to_hf does.
 * Must not: write files, or accept a file whose size disagrees with its header.
 */
#ifndef SOFTCOT_IO_LLAMA2C_H
#define SOFTCOT_IO_LLAMA2C_H

#include "core/check.h"
#include "model/config.h"

/* On success *host_params is a malloc'ed buffer of param_layout n_floats (caller frees). */
int llama2c_read(const char *path, ModelConfig *cfg, float **host_params, Err *err);

/* The HF row order for a [n_heads*head_dim, cols] projection written by llama2.c:
 * within each head, out row r < head_dim/2 is in row 2r, out row head_dim/2 + r is in
 * row 2r + 1. Exposed for tests. */
void llama2c_permute_rows(float *dst, const float *src, int n_heads, int head_dim, int cols);

#endif
