/* tok_internal.h — the layout of a loaded tokenizer, shared by the files of src/text/.
 *
 * Defines: struct Tokenizer (the opaque type of tokenizer.h), TokVocab (what every id
 * decodes to, the same for both tokenizer kinds) and the entry points each kind
 * implements (hf_*, l2c_*).
 * Must not: be included from outside src/text/ (everything else uses tokenizer.h).
 */
#ifndef SOFTCOT_TEXT_TOK_INTERNAL_H
#define SOFTCOT_TEXT_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/check.h"
#include "core/bytebuf.h"
#include "text/str_map.h"
#include "text/tokenizer.h"

typedef enum { TOK_HF = 1, TOK_LLAMA2C = 2 } TokKind;

/* Per id: the token's string as the file spells it (the "piece": "ĠOnce", " Once") and
 * the bytes decoding emits ("\x20Once"). Ids without a token are holes (len NONE). */
#define TOKVOCAB_NONE UINT32_MAX
typedef struct {
    int n_ids;
    uint32_t *piece_off, *piece_len;
    uint32_t *bytes_off, *bytes_len;
    uint8_t *special;
    ByteBuf pieces, bytes;
} TokVocab;

void tokvocab_init(TokVocab *v, int n_ids);
void tokvocab_set(TokVocab *v, int id, const char *piece, size_t plen, const char *bytes,
                  size_t blen, int special);
void tokvocab_free(TokVocab *v);
static inline int tokvocab_has(const TokVocab *v, int id) {
    return id >= 0 && id < v->n_ids && v->piece_len[id] != TOKVOCAB_NONE;
}

typedef struct HfModel HfModel;
typedef struct L2cModel L2cModel;

struct Tokenizer {
    TokKind kind;
    char *name;        /* file it came from, for messages */
    TokVocab vocab;
    StrMap *piece_map; /* piece -> id */
    int bos_id, eos_id;
    int strip_space_after_bos; /* llama2.c decode rule */
    HfModel *hf;
    L2cModel *l2c;
};

/* Hugging Face tokenizer.json (hf_load.c, hf_encode.c). hf_load fills t and returns 0,
 * or -1 with "<json_name>: ..." / "<cfg_name>: ..." in err. */
int hf_load(Tokenizer *t, const char *json, size_t len, const char *json_name, const char *cfg,
            size_t cfg_len, const char *cfg_name, Err *err);
int hf_encode(const Tokenizer *t, const char *text, size_t len, int add_special, IntVec *out,
              Err *err);
void hf_model_free(HfModel *m);

/* llama2.c tokenizer.bin (llama2c_tokenizer.c). */
int l2c_load(Tokenizer *t, const char *data, size_t len, const char *name, Err *err);
int l2c_encode(const Tokenizer *t, const char *text, size_t len, int add_special, IntVec *out,
               Err *err);
void l2c_model_free(L2cModel *m);

/* Appends what id decodes to, honouring flags; prev is the previous id or -1. */
int tok_decode_append(const Tokenizer *t, int prev, int id, int flags, ByteBuf *out, Err *err);

#endif
