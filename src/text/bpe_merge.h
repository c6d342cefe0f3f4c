/* bpe_merge.h — the merge loop shared by the Hugging Face BPE model and the llama2.c
 * tokenizer: repeatedly merge the adjacent pair with the lowest rank, leftmost first on
 * equal ranks, until no adjacent pair is mergeable.
 *
 * Defines: bpe_merge, O(n log n) per word with a binary heap of candidate pairs and
 * lazy invalidation (the scheme of tokenizers' Word::merge_all), and BpeScratch, the
 * caller-owned buffers it reuses between words.
 * Must not: know where ranks come from (the caller's pair function decides), allocate
 * per call once the scratch has grown, or keep state between calls.
 */
#ifndef SOFTCOT_TEXT_BPE_MERGE_H
#define SOFTCOT_TEXT_BPE_MERGE_H

#include <stddef.h>

/* Returns 1 and sets *rank (lower merges first) and *merged (the id of the merged
 * token) if (left, right) can merge, else 0. */
typedef int (*BpePairFn)(const void *ctx, int left, int right, int *rank, int *merged);

typedef struct {
    void *sym;
    size_t sym_cap;
    void *heap;
    size_t heap_cap;
} BpeScratch;

/* Merges ids[0..n) in place and returns the new count. */
int bpe_merge(int *ids, int n, BpePairFn pair, const void *ctx, BpeScratch *scratch);

void bpe_scratch_free(BpeScratch *s);

#endif
