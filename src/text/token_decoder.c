/* Streaming decode: bytes of each token are appended to a pending tail; only the
 * prefix made of whole characters is released, so a character split over several
 * tokens (common with byte-level BPE and <0xXX> fallback) is never emitted broken. */
#include <stdlib.h>
#include <string.h>

#include "text/tok_internal.h"
#include "text/utf8.h"

struct TokenDecoder {
    const Tokenizer *t;
    int flags;
    int prev;
    char pending[4]; /* an incomplete character, at most 3 bytes, kept across pushes */
    size_t n_pending;
    ByteBuf raw, out;
};

TokenDecoder *token_decoder_new_ex(const Tokenizer *t, int flags) {
    TokenDecoder *d = xcalloc(1, sizeof *d);
    d->t = t;
    d->flags = flags;
    d->prev = -1;
    return d;
}

TokenDecoder *token_decoder_new(const Tokenizer *t) { return token_decoder_new_ex(t, 0); }

void token_decoder_reset(TokenDecoder *d) {
    d->prev = -1;
    d->n_pending = 0;
}

void token_decoder_free(TokenDecoder *d) {
    if (!d) return;
    bytebuf_free(&d->raw);
    bytebuf_free(&d->out);
    free(d);
}

int token_decoder_push(TokenDecoder *d, int id, const char **out, size_t *len, Err *err) {
    d->raw.n = 0;
    bytebuf_append(&d->raw, d->pending, d->n_pending);
    if (tok_decode_append(d->t, d->prev, id, d->flags, &d->raw, err)) return -1;
    d->prev = id;
    d->out.n = 0;
    bytebuf_reserve(&d->out, d->raw.n + 4);
    size_t used = utf8_lossy_append(&d->out, d->raw.p, d->raw.n, 0);
    d->n_pending = d->raw.n - used;
    memcpy(d->pending, d->raw.p + used, d->n_pending);
    d->out.p[d->out.n] = '\0';
    *out = d->out.p;
    *len = d->out.n;
    return 0;
}

void token_decoder_flush(TokenDecoder *d, const char **out, size_t *len) {
    d->out.n = 0;
    bytebuf_reserve(&d->out, 4);
    utf8_lossy_append(&d->out, d->pending, d->n_pending, 1);
    d->out.p[d->out.n] = '\0';
    d->n_pending = 0;
    *out = d->out.p;
    *len = d->out.n;
}
