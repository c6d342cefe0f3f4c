/* The public tokenizer API: loading by directory or file, dispatch to the two kinds,
 * id lookups and whole-sequence decoding (shared by both kinds). */
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "text/tok_internal.h"
#include "text/utf8.h"

static Tokenizer *tok_new(const char *name) {
    Tokenizer *t = xcalloc(1, sizeof *t);
    t->name = xstrdup(name);
    t->bos_id = t->eos_id = -1;
    return t;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    hf_model_free(t->hf);
    l2c_model_free(t->l2c);
    tokvocab_free(&t->vocab);
    strmap_free(t->piece_map);
    free(t->name);
    free(t);
}

Tokenizer *tokenizer_load_hf_mem(const char *json, size_t len, const char *cfg, size_t cfg_len,
                                 const char *name, Err *err) {
    Tokenizer *t = tok_new(name);
    if (hf_load(t, json, len, name, cfg, cfg_len, "tokenizer_config.json", err)) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

Tokenizer *tokenizer_load_hf(const char *json_path, const char *config_path, Err *err) {
    char *json = NULL, *cfg = NULL;
    size_t len = 0, cfg_len = 0;
    if (file_read_all(json_path, &json, &len, err)) return NULL;
    if (config_path && file_read_all(config_path, &cfg, &cfg_len, err)) {
        free(json);
        return NULL;
    }
    Tokenizer *t = tok_new(json_path);
    if (hf_load(t, json, len, json_path, cfg, cfg_len, config_path, err)) {
        tokenizer_free(t);
        t = NULL;
    }
    free(json);
    free(cfg);
    return t;
}

Tokenizer *tokenizer_load_llama2c_mem(const void *data, size_t len, const char *name, Err *err) {
    Tokenizer *t = tok_new(name);
    if (l2c_load(t, data, len, name, err)) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

Tokenizer *tokenizer_load_llama2c(const char *path, Err *err) {
    char *data;
    size_t len;
    if (file_read_all(path, &data, &len, err)) return NULL;
    Tokenizer *t = tokenizer_load_llama2c_mem(data, len, path, err);
    free(data);
    return t;
}

Tokenizer *tokenizer_load_dir(const char *dir, Err *err) {
    char *json = path_join(dir, "tokenizer.json");
    char *cfg = path_join(dir, "tokenizer_config.json");
    char *bin = path_join(dir, "tokenizer.bin");
    Tokenizer *t = NULL;
    if (file_exists(json))
        t = tokenizer_load_hf(json, file_exists(cfg) ? cfg : NULL, err);
    else if (file_exists(bin))
        t = tokenizer_load_llama2c(bin, err);
    else
        err_set(err, "%s: no tokenizer.json or tokenizer.bin in this directory", dir);
    free(json);
    free(cfg);
    free(bin);
    return t;
}

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int add_special,
                     int **ids, int *n_ids, Err *err) {
    IntVec out = {0};
    int rc = t->kind == TOK_HF ? hf_encode(t, text, len, add_special, &out, err)
                               : l2c_encode(t, text, len, add_special, &out, err);
    if (rc) {
        free(out.v);
        return -1;
    }
    if (out.n > (size_t)2147483647) {
        free(out.v);
        return err_set(err, "text too long: more than 2^31 tokens");
    }
    *ids = out.v ? out.v : xmalloc(sizeof(int));
    *n_ids = (int)out.n;
    return 0;
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->vocab.n_ids; }
int tokenizer_bos_id(const Tokenizer *t) { return t->bos_id; }
int tokenizer_eos_id(const Tokenizer *t) { return t->eos_id; }
const char *tokenizer_kind(const Tokenizer *t) { return t->kind == TOK_HF ? "huggingface" : "llama2c"; }

int tokenizer_token_id(const Tokenizer *t, const char *piece) {
    return strmap_get(t->piece_map, piece, strlen(piece));
}

const char *tokenizer_piece(const Tokenizer *t, int id, size_t *len) {
    if (!tokvocab_has(&t->vocab, id)) return NULL;
    *len = t->vocab.piece_len[id];
    return t->vocab.pieces.p + t->vocab.piece_off[id];
}

int tokenizer_is_special(const Tokenizer *t, int id) {
    return tokvocab_has(&t->vocab, id) && t->vocab.special[id];
}

int tok_decode_append(const Tokenizer *t, int prev, int id, int flags, ByteBuf *out, Err *err) {
    const TokVocab *v = &t->vocab;
    if (!tokvocab_has(v, id))
        return err_set(err, "%s: cannot decode token id %d (the vocabulary has ids 0..%d)", t->name, id,
                       v->n_ids - 1);
    if (v->special[id] && !(flags & TOKDEC_KEEP_SPECIAL)) return 0;
    const char *b = v->bytes.p + v->bytes_off[id];
    size_t n = v->bytes_len[id];
    if (t->strip_space_after_bos && prev == t->bos_id && v->piece_len[id] > 0 &&
        v->pieces.p[v->piece_off[id]] == ' ') {
        b++;
        n--;
    }
    bytebuf_append(out, b, n);
    return 0;
}

int tokenizer_decode_ex(const Tokenizer *t, const int *ids, int n, int flags, char **text,
                        size_t *len, Err *err) {
    ByteBuf raw = {0}, out = {0};
    for (int i = 0; i < n; i++)
        if (tok_decode_append(t, i ? ids[i - 1] : -1, ids[i], flags, &raw, err)) {
            bytebuf_free(&raw);
            return -1;
        }
    utf8_lossy_append(&out, raw.p ? raw.p : "", raw.n, 1);
    bytebuf_free(&raw);
    bytebuf_reserve(&out, 0);
    *text = out.p;
    if (len) *len = out.n;
    return 0;
}

int tokenizer_decode(const Tokenizer *t, const int *ids, int n, char **text, Err *err) {
    return tokenizer_decode_ex(t, ids, n, 0, text, NULL, err);
}
