/* hf_model.h — the parsed form of a Hugging Face tokenizer.json: what hf_load.c builds
 * and hf_encode.c runs.
 *
 * Defines: HfModel (normalizer flag, pre-tokenizer steps, BPE tables, added-token
 * matchers, post-processor template).
 * Must not: be included outside src/text/; be modified after loading (encode reads it
 * from many threads).
 */
#ifndef SOFTCOT_TEXT_HF_MODEL_H
#define SOFTCOT_TEXT_HF_MODEL_H

#include "text/added_tokens.h"
#include "text/hf_regex.h"
#include "text/str_map.h"

typedef enum { PRE_SPLIT, PRE_BYTE_LEVEL } PreKind;

/* tokenizers' SplitDelimiterBehavior. */
typedef enum {
    SPLIT_REMOVED,
    SPLIT_ISOLATED,
    SPLIT_MERGED_WITH_PREVIOUS,
    SPLIT_MERGED_WITH_NEXT,
    SPLIT_CONTIGUOUS
} SplitBehavior;

typedef struct {
    PreKind kind;
    HfRegex *re; /* Split: its pattern; ByteLevel: the GPT-2 regex if use_regex, else NULL */
    SplitBehavior behavior;
    int invert;
    int add_prefix_space; /* ByteLevel */
} PreStep;

struct HfModel {
    int nfc;
    PreStep *steps;
    int n_steps;
    /* BPE. Tokens are looked up by their raw bytes (the byte-level spelling decoded),
     * so input text never needs to be re-spelled as byte-level characters. */
    StrMap *raw_map;
    PairMap *merges;
    int byte_id[256]; /* the single-byte token of each byte, -1 if absent */
    int ignore_merges;
    int unk_id; /* -1: characters without a token are dropped, as tokenizers does */
    int fuse_unk;
    AddedMatcher raw_added;  /* added tokens with normalized=false: matched in raw text */
    AddedMatcher norm_added; /* normalized=true: matched after normalization */
    int *prefix, n_prefix;   /* TemplateProcessing "single": ids before and after $A */
    int *suffix, n_suffix;
};

#endif
