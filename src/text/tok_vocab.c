#include <stdlib.h>
#include <string.h>

#include "text/tok_internal.h"

void tokvocab_init(TokVocab *v, int n_ids) {
    memset(v, 0, sizeof *v);
    v->n_ids = n_ids;
    size_t n = n_ids > 0 ? (size_t)n_ids : 1;
    v->piece_off = xmalloc(n * sizeof(uint32_t));
    v->piece_len = xmalloc(n * sizeof(uint32_t));
    v->bytes_off = xmalloc(n * sizeof(uint32_t));
    v->bytes_len = xmalloc(n * sizeof(uint32_t));
    v->special = xcalloc(n, 1);
    for (size_t i = 0; i < n; i++) v->piece_len[i] = v->bytes_len[i] = TOKVOCAB_NONE;
    bytebuf_reserve(&v->pieces, 1);
    bytebuf_reserve(&v->bytes, 1);
}

void tokvocab_set(TokVocab *v, int id, const char *piece, size_t plen, const char *bytes,
                  size_t blen, int special) {
    CHECK(id >= 0 && id < v->n_ids && plen < UINT32_MAX && blen < UINT32_MAX);
    CHECK(v->pieces.n + plen < UINT32_MAX && v->bytes.n + blen < UINT32_MAX);
    v->piece_off[id] = (uint32_t)v->pieces.n;
    v->piece_len[id] = (uint32_t)plen;
    bytebuf_append(&v->pieces, piece, plen);
    v->bytes_off[id] = (uint32_t)v->bytes.n;
    v->bytes_len[id] = (uint32_t)blen;
    bytebuf_append(&v->bytes, bytes, blen);
    v->special[id] = (uint8_t)(special != 0);
}

void tokvocab_free(TokVocab *v) {
    free(v->piece_off);
    free(v->piece_len);
    free(v->bytes_off);
    free(v->bytes_len);
    free(v->special);
    bytebuf_free(&v->pieces);
    bytebuf_free(&v->bytes);
    memset(v, 0, sizeof *v);
}
