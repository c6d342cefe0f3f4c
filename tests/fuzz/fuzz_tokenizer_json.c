/* libFuzzer target: tokenizer.json loading, then encode/decode with whatever loaded.
 * Invariants (abort on violation): loading never crashes and fails with a one-line
 * message naming the file; a loaded tokenizer encodes sample text to ids inside its
 * vocabulary, and whole decode equals streaming decode. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytebuf.h"
#include "text/tokenizer.h"

#define REQUIRE(c)                                                      \
    do {                                                                \
        if (!(c)) {                                                     \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                    \
        }                                                               \
    } while (0)

static void check_roundtrip(const Tokenizer *t, const char *text, size_t len) {
    int *ids = NULL, n = 0;
    Err err;
    if (tokenizer_encode(t, text, len, 1, &ids, &n, &err)) {
        REQUIRE(!strchr(err.msg, '\n'));
        return;
    }
    for (int i = 0; i < n; i++) REQUIRE(ids[i] >= 0 && ids[i] < tokenizer_vocab_size(t));
    char *whole = NULL;
    size_t wl = 0;
    REQUIRE(!tokenizer_decode_ex(t, ids, n, TOKDEC_KEEP_SPECIAL, &whole, &wl, &err));
    TokenDecoder *d = token_decoder_new_ex(t, TOKDEC_KEEP_SPECIAL);
    ByteBuf s = {0};
    const char *o;
    size_t ol;
    for (int i = 0; i < n; i++) {
        REQUIRE(!token_decoder_push(d, ids[i], &o, &ol, &err));
        bytebuf_append(&s, o, ol);
    }
    token_decoder_flush(d, &o, &ol);
    bytebuf_append(&s, o, ol);
    REQUIRE(s.n == wl && (wl == 0 || !memcmp(s.p, whole, wl)));
    bytebuf_free(&s);
    token_decoder_free(d);
    free(whole);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Err err = {{0}};
    Tokenizer *t = tokenizer_load_hf_mem((const char *)data, size, NULL, 0, "fuzz.json", &err);
    if (!t) {
        REQUIRE(err.msg[0] && !strchr(err.msg, '\n') && !strncmp(err.msg, "fuzz.json: ", 11));
        return 0;
    }
    static const char *const samples[] = {"", "abc ab  c\n\n12 'S", "<|eot_id|>hello<|im_end|>cab",
                                          "caf\xC3\xA9 e\xCC\x81 \xF0\x9F\x98\x80\xC2\x85 x"};
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++)
        check_roundtrip(t, samples[i], strlen(samples[i]));
    tokenizer_free(t);
    return 0;
}
