/* word_tokenizer.h — the benchmarks' in-memory tokenizer: a byte-level BPE with V pieces
 * "w0".."w<V-1>" (letters and digits only, so the stop string and the closing brace can
 * never be produced) and no EOS. With it every CoT runs to cot_max and every answer to
 * ans_max, so the work of an RL step is fixed. Shared by bench_rl.c and gpu_bench.c. */
#ifndef SOFTCOT_TESTS_WORD_TOKENIZER_H
#define SOFTCOT_TESTS_WORD_TOKENIZER_H

#include <stdio.h>
#include <stdlib.h>

#include "core/check.h"
#include "text/tokenizer.h"

static inline Tokenizer *word_tokenizer(int V) {
    size_t cap = (size_t)V * 24 + 1024, n = 0;
    char *j = xmalloc(cap);
    n += (size_t)snprintf(j + n, cap - n,
                          "{\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\","
                          "\"add_prefix_space\":false,\"use_regex\":false},\"post_processor\":null,"
                          "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"merges\":[],\"vocab\":{");
    for (int i = 0; i < V; i++) n += (size_t)snprintf(j + n, cap - n, "%s\"w%d\":%d", i ? "," : "", i, i);
    n += (size_t)snprintf(j + n, cap - n, "}}}");
    Err err;
    Tokenizer *t = tokenizer_load_hf_mem(j, n, NULL, 0, "bench word tokenizer", &err);
    if (!t) FATAL("%s", err.msg);
    free(j);
    return t;
}

#endif
