/* libFuzzer target: encode arbitrary bytes with the real Llama 3, Qwen2 and tok512
 * tokenizers (first byte picks the tokenizer and add_special). Invariants (abort on
 * violation): invalid UTF-8 is rejected by the HF kind with a one-line error and
 * encoded by the llama2.c kind; ids are in range; decode(encode(text)) gives the text
 * back (NFC for Qwen2, the dummy-prefix space for llama2.c without BOS); streaming
 * decode equals whole decode. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytebuf.h"
#include "text/nfc.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

#define REQUIRE(c)                                                      \
    do {                                                                \
        if (!(c)) {                                                     \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                    \
        }                                                               \
    } while (0)

/* libFuzzer's harness shape forces process-wide state: loaded once, read-only after. */
static Tokenizer *toks[3];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *shared = getenv("SOFTCOT_SHARED");
    if (!shared) shared = "../shared";
    char path[1024];
    Err err;
    const char *dirs[2] = {"tokenizers/llama3", "tokenizers/qwen2"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", shared, dirs[i]);
        toks[i] = tokenizer_load_dir(path, &err);
        if (!toks[i]) fprintf(stderr, "fuzz: %s\n", err.msg), exit(1);
    }
    snprintf(path, sizeof path, "%s/models/stories260K/tok512.bin", shared);
    toks[2] = tokenizer_load_llama2c(path, &err);
    if (!toks[2]) fprintf(stderr, "fuzz: %s\n", err.msg), exit(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int which = data[0] % 3, special = (data[0] >> 2) & 1;
    const Tokenizer *t = toks[which];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int valid = utf8_first_invalid(text, len) == len;
    int *ids = NULL, n = 0;
    Err err;
    if (tokenizer_encode(t, text, len, special, &ids, &n, &err)) {
        REQUIRE(which < 2 && !valid && !strchr(err.msg, '\n'));
        return 0;
    }
    REQUIRE(which == 2 || valid);
    for (int i = 0; i < n; i++) REQUIRE(ids[i] >= 0 && ids[i] < tokenizer_vocab_size(t));

    int flags = which == 2 ? 0 : TOKDEC_KEEP_SPECIAL;
    char *back = NULL;
    size_t bl = 0;
    REQUIRE(!tokenizer_decode_ex(t, ids, n, flags, &back, &bl, &err));
    ByteBuf want = {0};
    if (which == 0) {
        if (special) bytebuf_append(&want, "<|begin_of_text|>", 17);
        bytebuf_append(&want, text, len);
    } else if (which == 1) {
        /* NFC applies between added tokens; compare only text free of them. */
        if (!memmem(text, len, "<|", 2)) REQUIRE(!text_nfc(text, len, &want));
        else bytebuf_append(&want, back, bl);
    } else {
        /* run.c's dummy prefix survives decoding unless BOS precedes it. */
        if (len && !special) bytebuf_putc(&want, ' ');
        if (valid) bytebuf_append(&want, text, len);
        else bytebuf_append(&want, back + (len && !special), bl - (len && !special));
    }
    /* The llama2.c vocabulary has pieces such as "\n<s>\n"-like control text only at
     * ids 0-2; text that spells them still round-trips byte for byte. */
    REQUIRE(want.n == bl && (bl == 0 || !memcmp(want.p, back, bl)));

    TokenDecoder *d = token_decoder_new_ex(t, flags);
    ByteBuf s = {0};
    const char *o;
    size_t ol;
    for (int i = 0; i < n; i++) {
        REQUIRE(!token_decoder_push(d, ids[i], &o, &ol, &err));
        REQUIRE(utf8_first_invalid(o, ol) == ol);
        bytebuf_append(&s, o, ol);
    }
    token_decoder_flush(d, &o, &ol);
    bytebuf_append(&s, o, ol);
    REQUIRE(s.n == bl && (bl == 0 || !memcmp(s.p, back, bl)));
    bytebuf_free(&s);
    bytebuf_free(&want);
    token_decoder_free(d);
    free(back);
    free(ids);
    return 0;
}
