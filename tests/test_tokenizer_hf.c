/* Hugging Face tokenizer behaviour beyond the golden file: added tokens inside text,
 * add_special_tokens, BOS/EOS, streaming decode of split characters, invalid UTF-8,
 * malformed tokenizer.json files, and the BPE merge order against a naive reference on
 * a synthetic tokenizer. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "test.h"
#include "text/byte_level.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

static Tokenizer *load_shared(const char *name) {
    char path[1024];
    Err err;
    snprintf(path, sizeof path, "%s/tokenizers/%s", shared_dir(), name);
    Tokenizer *t = tokenizer_load_dir(path, &err);
    TEST_EXPECT(t, "load shared tokenizer", "%s: %s", name, err.msg);
    return t;
}

static int encode(const Tokenizer *t, const char *s, int special, int **ids) {
    int n = -1;
    Err err;
    if (tokenizer_encode(t, s, strlen(s), special, ids, &n, &err)) {
        printf("# encode failed: %s\n", err.msg);
        *ids = NULL;
        return -1;
    }
    return n;
}

static int same(const int *a, int na, const int *b, int nb) {
    return na == nb && (na == 0 || !memcmp(a, b, sizeof(int) * (size_t)na));
}

/* Id of the single-byte token for byte b in a byte-level vocabulary. */
static int byte_token(const Tokenizer *t, unsigned char b) {
    char s[5] = {0};
    utf8_encode_one(byte_level_char(b), s);
    return tokenizer_token_id(t, s);
}

static void test_added_tokens(const Tokenizer *l3, const Tokenizer *qw) {
    int *a, *b, *c;
    int na = encode(l3, "Hello", 0, &a), nb = encode(l3, " world", 0, &b);
    int nc = encode(l3, "Hello<|eot_id|> world", 0, &c);
    int ok = na > 0 && nb > 0 && nc == na + nb + 1 && same(c, na, a, na) && c[na] == 128009 &&
             same(c + na + 1, nb, b, nb);
    TEST_EXPECT(ok, "llama3: <|eot_id|> inside text is one id, text around it encoded apart",
                "got %d ids", nc);
    free(a), free(b), free(c);

    nc = encode(qw, "<|im_start|>user\nHi<|im_end|>", 0, &c);
    TEST_EXPECT(nc >= 3 && c[0] == 151644 && c[nc - 1] == 151645, "qwen2: <|im_start|> and <|im_end|> in text",
                "got %d ids, first %d last %d", nc, nc > 0 ? c[0] : -1, nc > 0 ? c[nc - 1] : -1);
    free(c);

    /* A partial marker is ordinary text. */
    nc = encode(qw, "<|im_end", 0, &c);
    int has = 0;
    for (int i = 0; i < nc; i++) has |= c[i] == 151645;
    TEST_EXPECT(nc > 1 && !has, "qwen2: an incomplete marker stays text", "got %d ids", nc);
    free(c);

    na = encode(l3, "The final answer is", 0, &a);
    nb = encode(l3, "The final answer is", 1, &b);
    TEST_EXPECT(nb == na + 1 && b[0] == 128000 && same(b + 1, na, a, na), "llama3: add_special prepends 128000",
                "without %d ids, with %d ids, first %d", na, nb, nb > 0 ? b[0] : -1);
    free(a), free(b);
    na = encode(qw, "The final answer is", 0, &a);
    nb = encode(qw, "The final answer is", 1, &b);
    TEST_EXPECT(same(a, na, b, nb), "qwen2: add_special adds nothing (no TemplateProcessing)", "%d vs %d ids",
                na, nb);
    free(a), free(b);

    TEST_EXPECT(tokenizer_bos_id(l3) == 128000 && tokenizer_eos_id(l3) == 128009, "llama3: bos/eos from config",
                "bos %d eos %d", tokenizer_bos_id(l3), tokenizer_eos_id(l3));
    TEST_EXPECT(tokenizer_bos_id(qw) == -1 && tokenizer_eos_id(qw) == 151645, "qwen2: no bos, eos <|im_end|>",
                "bos %d eos %d", tokenizer_bos_id(qw), tokenizer_eos_id(qw));
    TEST_EXPECT(tokenizer_vocab_size(l3) == 128256 && tokenizer_vocab_size(qw) == 151646, "vocab sizes",
                "llama3 %d qwen2 %d", tokenizer_vocab_size(l3), tokenizer_vocab_size(qw));

    /* Decoding skips special tokens unless asked to keep them. */
    nc = encode(l3, "Hi<|eot_id|>", 1, &c);
    char *s1 = NULL, *s2 = NULL;
    size_t n2 = 0;
    Err err;
    int r1 = tokenizer_decode(l3, c, nc, &s1, &err);
    int r2 = tokenizer_decode_ex(l3, c, nc, TOKDEC_KEEP_SPECIAL, &s2, &n2, &err);
    TEST_EXPECT(!r1 && !r2 && !strcmp(s1, "Hi") && !strcmp(s2, "<|begin_of_text|>Hi<|eot_id|>"),
                "llama3: decode skips special tokens by default, keeps them on request", "got \"%s\" / \"%s\"",
                s1 ? s1 : "(null)", s2 ? s2 : "(null)");
    free(s1), free(s2), free(c);

    int bad[] = {5, 1 << 20};
    s1 = NULL;
    r1 = tokenizer_decode(l3, bad, 2, &s1, &err);
    TEST_EXPECT(r1 && strstr(err.msg, "1048576"), "decode rejects an id outside the vocabulary", "rc %d: %s",
                r1, err.msg);
    free(s1);
}

/* Feeds ids to a streaming decoder; checks each chunk is whole UTF-8 and returns the
 * concatenation and the number of pushes that produced nothing. */
static char *stream(const Tokenizer *t, const int *ids, int n, int *empty_pushes, int *bad_chunk) {
    TokenDecoder *d = token_decoder_new(t);
    ByteBuf all = {0};
    *empty_pushes = *bad_chunk = 0;
    Err err;
    for (int i = 0; i < n; i++) {
        const char *out;
        size_t len;
        if (token_decoder_push(d, ids[i], &out, &len, &err)) {
            *bad_chunk = 1;
            continue;
        }
        if (utf8_first_invalid(out, len) != len) *bad_chunk = 1;
        if (!len) (*empty_pushes)++;
        bytebuf_append(&all, out, len);
    }
    const char *out;
    size_t len;
    token_decoder_flush(d, &out, &len);
    bytebuf_append(&all, out, len);
    token_decoder_free(d);
    bytebuf_reserve(&all, 0);
    return all.p;
}

static void test_streaming(const Tokenizer *l3, const Tokenizer *qw) {
    /* "Hi" + the four byte tokens of U+1F600 + "!" */
    int hi = tokenizer_token_id(l3, "Hi"), bang = tokenizer_token_id(l3, "!");
    int ids[6] = {hi, byte_token(l3, 0xF0), byte_token(l3, 0x9F), byte_token(l3, 0x98), byte_token(l3, 0x80), bang};
    const char *want[6] = {"Hi", "", "", "", "\xF0\x9F\x98\x80", "!"};
    TokenDecoder *d = token_decoder_new(l3);
    int ok = 1;
    char got[6][16];
    Err err;
    for (int i = 0; i < 6; i++) {
        const char *out;
        size_t len;
        if (token_decoder_push(d, ids[i], &out, &len, &err)) {
            ok = 0;
            snprintf(got[i], sizeof got[i], "ERR");
            continue;
        }
        snprintf(got[i], sizeof got[i], "%.*s", (int)len, out);
        ok &= !strcmp(got[i], want[i]);
    }
    TEST_EXPECT(ok, "stream: a 4-byte character split over 4 tokens appears only when complete",
                "pushes gave [%s][%s][%s][%s][%s][%s]", got[0], got[1], got[2], got[3], got[4], got[5]);

    /* Incomplete at the end: flush gives U+FFFD, like the whole-sequence decode. */
    token_decoder_reset(d);
    const char *out;
    size_t len;
    int r = token_decoder_push(d, byte_token(l3, 0xE4), &out, &len, &err);
    size_t len1 = len;
    token_decoder_flush(d, &out, &len);
    TEST_EXPECT(!r && len1 == 0 && len == 3 && !memcmp(out, "\xEF\xBF\xBD", 3),
                "stream: flush turns a held partial character into U+FFFD", "push %zu bytes, flush %zu", len1, len);
    /* A byte that can never start a character is replaced at once, not held. */
    token_decoder_reset(d);
    r = token_decoder_push(d, byte_token(l3, 0x80), &out, &len, &err);
    TEST_EXPECT(!r && len == 3 && !memcmp(out, "\xEF\xBF\xBD", 3), "stream: a stray continuation byte is U+FFFD at once",
                "got %zu bytes", len);
    token_decoder_free(d);

    int two[2] = {byte_token(l3, 0xF0), tokenizer_token_id(l3, "A")};
    char *s = NULL;
    r = tokenizer_decode(l3, two, 2, &s, &err);
    TEST_EXPECT(!r && !strcmp(s, "\xEF\xBF\xBD" "A"), "decode: invalid byte sequence becomes U+FFFD (from_utf8_lossy)",
                "got \"%s\"", s ? s : "(null)");
    free(s);

    /* Real encodings of text with multi-byte characters, both tokenizers. */
    const char *texts[] = {"emoji 😀👍🏽 test 你好，世界！ café ñ Ελληνικά", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∑ x² ≥ 3½ 🎉🎉"};
    const Tokenizer *toks[2] = {l3, qw};
    for (int k = 0; k < 2; k++) {
        int held = 0;
        for (int j = 0; j < 2; j++) {
            int *e, n = encode(toks[k], texts[j], 0, &e), empty, badc;
            char *all = stream(toks[k], e, n, &empty, &badc);
            char name[128];
            snprintf(name, sizeof name, "stream %s text %d: chunks are whole UTF-8 and join to the text", k ? "qwen2" : "llama3", j);
            TEST_EXPECT(n > 0 && !badc && !strcmp(all, texts[j]), name,
                        "%d ids, %d empty pushes, bad chunk %d, got \"%s\"", n, empty, badc, all);
            held += empty;
            free(all);
            free(e);
        }
        /* Otherwise the texts above would not test splitting at all. */
        TEST_EXPECT(held > 0, k ? "stream qwen2: some token ends mid-character and is held"
                                : "stream llama3: some token ends mid-character and is held", "no push was held back");
    }
}

static void test_invalid_utf8(const Tokenizer *l3) {
    const char text[] = "ab\xff" "cd";
    int *ids = NULL, n = 0;
    Err err = {{0}};
    int r = tokenizer_encode(l3, text, 5, 0, &ids, &n, &err);
    TEST_EXPECT(r == -1 && strstr(err.msg, "invalid UTF-8 at byte 2"), "invalid UTF-8 input is rejected with its offset",
                "rc %d: %s", r, err.msg);
    const char sur[] = "x\xED\xA0\x80";  /* a UTF-16 surrogate encoded in UTF-8 */
    r = tokenizer_encode(l3, sur, 4, 0, &ids, &n, &err);
    TEST_EXPECT(r == -1 && strstr(err.msg, "byte 1"), "encoded surrogates are rejected", "rc %d: %s", r, err.msg);
    /* NUL is a valid character: it is encoded, not a terminator. */
    r = tokenizer_encode(l3, "a\0b", 3, 0, &ids, &n, &err);
    char *s = NULL;
    size_t len = 0;
    int r2 = r ? -1 : tokenizer_decode_ex(l3, ids, n, 0, &s, &len, &err);
    TEST_EXPECT(!r && !r2 && len == 3 && !memcmp(s, "a\0b", 3), "NUL bytes round-trip", "rc %d/%d len %zu", r, r2, len);
    free(ids);
    free(s);
}

/* ---- malformed tokenizer.json ------------------------------------------------------ */

#define TINY_TAIL                                                                                  \
    "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\"," \
    "\"pattern\":{\"Regex\":\"%s\"},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\"," \
    "\"add_prefix_space\":false,\"use_regex\":false}]},\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"}}"

static void expect_load_error(const char *json, const char *needle, const char *name) {
    Err err = {{0}};
    Tokenizer *t = tokenizer_load_hf_mem(json, strlen(json), NULL, 0, "bad/tokenizer.json", &err);
    int ok = !t && strstr(err.msg, needle) && !strchr(err.msg, '\n') &&
             !strncmp(err.msg, "bad/tokenizer.json: ", 20);
    TEST_EXPECT(ok, name, "got %s \"%s\"", t ? "a tokenizer and" : "error", err.msg);
    tokenizer_free(t);
}

static void test_malformed(void) {
    char buf[4096];
    snprintf(buf, sizeof buf, "{\"added_tokens\":[]," TINY_TAIL, "\\\\s+");
    expect_load_error(buf, "missing \"model\"", "malformed: missing model");
    snprintf(buf, sizeof buf, "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}," TINY_TAIL, "\\\\s+");
    expect_load_error(buf, "model.type \"WordPiece\" is not supported", "malformed: unknown model type");
    snprintf(buf, sizeof buf,
             "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\",\"a c\"]}," TINY_TAIL,
             "\\\\s+");
    expect_load_error(buf, "model.merges[1]: \"c\" is not in model.vocab", "malformed: merge naming an unknown token");
    snprintf(buf, sizeof buf, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[[\"a\",\"b\"]]}," TINY_TAIL,
             "\\\\s+");
    expect_load_error(buf, "merged token \"ab\" is not in model.vocab", "malformed: merge result missing");
    snprintf(buf, sizeof buf, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}," TINY_TAIL, "(?i:'s|\\\\p{L}+");
    expect_load_error(buf, "invalid regex at offset", "malformed: invalid regex");
    snprintf(buf, sizeof buf, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}," TINY_TAIL, "\\\\s+");
    expect_load_error(buf, "id 0 is given to both \"a\" and \"b\"", "malformed: duplicate ids in vocab");
    snprintf(buf, sizeof buf,
             "{\"added_tokens\":[{\"id\":1,\"content\":\"<x>\",\"special\":true},{\"id\":1,\"content\":\"<y>\",\"special\":true}],"
             "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}," TINY_TAIL,
             "\\\\s+");
    expect_load_error(buf, "id 1 is used by two added tokens", "malformed: duplicate ids in added_tokens");
    snprintf(buf, sizeof buf,
             "{\"added_tokens\":[{\"id\":0,\"content\":\"<x>\",\"special\":true}],"
             "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}," TINY_TAIL,
             "\\\\s+");
    expect_load_error(buf, "id 0 is \"<x>\" here but \"a\" in model.vocab", "malformed: added token id clashes with vocab");
    snprintf(buf, sizeof buf, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":7000000},\"merges\":[]}," TINY_TAIL, "\\\\s+");
    expect_load_error(buf, "far beyond", "malformed: absurd id does not allocate gigabytes");
    snprintf(buf, sizeof buf, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}," TINY_TAIL, "\\\\s+");
    expect_load_error(buf, "expected a non-negative integer id", "malformed: negative id");
    snprintf(buf, sizeof buf, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"ab\"]}," TINY_TAIL, "\\\\s+");
    expect_load_error(buf, "model.merges[0]: expected \"A B\"", "malformed: merge without a space");
    expect_load_error("{\"model\":{\"type\":\"Uni\\ngram\\u0000x\",\"vocab\":{}}}", "model.type \"Uni\\x0Agram\" is not",
                      "malformed: file text quoted in a message cannot break the line");
    expect_load_error("[1,2,3]", "expected a JSON object", "malformed: top level is not an object");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, ", "unexpected end of file",
                      "malformed: truncated small file");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\" 0}}}", "invalid JSON at line 1, column",
                      "malformed: JSON syntax error position");
    expect_load_error("", "unexpected end of file", "malformed: empty file");

    /* Truncated real file, through the directory loader, naming the path. */
    char path[1024], *data;
    size_t len;
    Err err;
    snprintf(path, sizeof path, "%s/tokenizers/llama3/tokenizer.json", shared_dir());
    if (file_read_all(path, &data, &len, &err)) {
        TEST_EXPECT(0, "malformed: truncated llama3 tokenizer.json", "%s", err.msg);
        return;
    }
    char dir[] = "/tmp/softcot_tok_XXXXXX";
    char *ok_dir = mkdtemp(dir);
    char *jp = ok_dir ? path_join(dir, "tokenizer.json") : NULL;
    int wrote = jp && !atomic_write_all(jp, data, len / 2, &err);
    Tokenizer *t = wrote ? tokenizer_load_dir(dir, &err) : NULL;
    TEST_EXPECT(wrote && !t && strstr(err.msg, jp) && strstr(err.msg, "unexpected end of file") &&
                    !strchr(err.msg, '\n'),
                "malformed: truncated llama3 tokenizer.json (one-line error naming the file)", "%s", err.msg);
    tokenizer_free(t);
    if (jp) unlink(jp);
    free(jp);
    if (ok_dir) rmdir(dir);
    t = tokenizer_load_dir("/nonexistent/softcot", &err);
    TEST_EXPECT(!t && strstr(err.msg, "/nonexistent/softcot: no tokenizer.json or tokenizer.bin"),
                "missing directory: clear error", "%s", err.msg);
    free(data);
}

/* ---- synthetic tokenizer: merge order vs a naive O(n^2) BPE ---------------------- */

typedef struct {
    char **tok; /* raw bytes of each id (NUL-terminated) */
    int n;
    int (*merge)[3]; /* a, b, result */
    int n_merges;
} Synth;

static int synth_find(const Synth *s, const char *str) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->tok[i], str)) return i;
    return -1;
}

/* Reference: repeatedly apply the lowest-rank merge present, leftmost occurrence. */
static int naive_bpe(const Synth *s, const char *w, int *out) {
    int n = 0;
    for (const char *p = w; *p; p++) {
        char c[2] = {*p, 0};
        out[n++] = synth_find(s, c);
    }
    for (;;) {
        int best = -1, at = -1;
        for (int i = 0; i + 1 < n; i++)
            for (int r = 0; r < s->n_merges; r++)
                if (s->merge[r][0] == out[i] && s->merge[r][1] == out[i + 1]) {
                    if (best < 0 || r < best) best = r, at = i;
                    break;
                }
        if (best < 0) return n;
        out[at] = s->merge[best][2];
        memmove(out + at + 1, out + at + 2, sizeof(int) * (size_t)(n - at - 2));
        n--;
    }
}

static char *bl(const char *raw) {
    ByteBuf b = {0};
    byte_level_encode(raw, strlen(raw), &b);
    bytebuf_reserve(&b, 0);
    return b.p;
}

/* Builds tokenizer.json text for s; pair_form chooses ["a","b"] over "a b". */
static char *synth_json(const Synth *s, int pair_form, int ignore_merges, const char *extra_added) {
    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddBoolToObject(model, "ignore_merges", ignore_merges);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab"), *merges = cJSON_AddArrayToObject(model, "merges");
    for (int i = 0; i < s->n; i++) {
        char *k = bl(s->tok[i]);
        cJSON_AddNumberToObject(vocab, k, i);
        free(k);
    }
    for (int r = 0; r < s->n_merges; r++) {
        char *a = bl(s->tok[s->merge[r][0]]), *b = bl(s->tok[s->merge[r][1]]);
        if (pair_form) {
            const char *pair[2] = {a, b};
            cJSON_AddItemToArray(merges, cJSON_CreateStringArray(pair, 2));
        } else {
            char m[256];
            snprintf(m, sizeof m, "%s %s", a, b);
            cJSON_AddItemToArray(merges, cJSON_CreateString(m));
        }
        free(a), free(b);
    }
    cJSON_AddItemToObject(root, "added_tokens", extra_added ? cJSON_Parse(extra_added) : cJSON_CreateArray());
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddBoolToObject(pre, "add_prefix_space", 0);
    cJSON_AddBoolToObject(pre, "use_regex", 0);
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    char *txt = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return txt;
}

static void test_merge_order(void) {
    uint64_t rng = 0x243F6A8885A308D3ULL;
#define RND() (rng = rng * 6364136223846793005ULL + 1442695040888963407ULL, (int)(rng >> 33))
    Synth s = {0};
    s.tok = calloc(256 + 200, sizeof(char *));
    s.merge = calloc(200, sizeof *s.merge);
    /* Id b is the single byte b, except id 0 (a C string cannot hold byte 0). */
    s.tok[0] = strdup("zz");
    for (int b = 1; b < 256; b++) {
        s.tok[b] = calloc(2, 1);
        s.tok[b][0] = (char)b;
    }
    s.n = 256;
    const char alpha[] = "abc";
    while (s.n_merges < 120) {
        /* Merge two existing tokens over the alphabet; skip duplicates/over-long. */
        int a = RND() % s.n, b = RND() % s.n;
        const char *ta = s.tok[a], *tb = s.tok[b];
        if (!strchr(alpha, ta[0]) || !strchr(alpha, tb[0]) || strlen(ta) + strlen(tb) > 10) continue;
        char cat[32];
        snprintf(cat, sizeof cat, "%s%s", ta, tb);
        int dup = 0;
        for (int r = 0; r < s.n_merges; r++) dup |= s.merge[r][0] == a && s.merge[r][1] == b;
        if (dup) continue;
        int res = synth_find(&s, cat);
        if (res < 0) {
            res = s.n;
            s.tok[s.n++] = strdup(cat);
        }
        s.merge[s.n_merges][0] = a, s.merge[s.n_merges][1] = b, s.merge[s.n_merges][2] = res;
        s.n_merges++;
    }
    Err err;
    char *j1 = synth_json(&s, 0, 0, NULL), *j2 = synth_json(&s, 1, 0, NULL);
    Tokenizer *t1 = tokenizer_load_hf_mem(j1, strlen(j1), NULL, 0, "synth1", &err);
    TEST_EXPECT(t1, "synthetic tokenizer (\"a b\" merges) loads", "%s", err.msg);
    Tokenizer *t2 = tokenizer_load_hf_mem(j2, strlen(j2), NULL, 0, "synth2", &err);
    TEST_EXPECT(t2, "synthetic tokenizer ([\"a\",\"b\"] merges) loads", "%s", err.msg);
    if (!t1 || !t2) goto done;
    int agree = 0, forms = 0, trials = 400;
    char first_bad[128] = "";
    for (int k = 0; k < trials; k++) {
        char w[64];
        int len = 1 + RND() % 40;
        for (int i = 0; i < len; i++) w[i] = alpha[RND() % 3];
        w[len] = 0;
        int ref[64], nr = naive_bpe(&s, w, ref), *got, *got2;
        int ng = encode(t1, w, 0, &got), ng2 = encode(t2, w, 0, &got2);
        if (same(ref, nr, got, ng))
            agree++;
        else if (!first_bad[0])
            snprintf(first_bad, sizeof first_bad, "%s: %d ids vs reference %d", w, ng, nr);
        forms += same(got, ng, got2, ng2);
        free(got), free(got2);
    }
    TEST_EXPECT(agree == trials, "heap BPE merges in the same order as the naive reference", "%d/%d agree; first: %s",
                agree, trials, first_bad);
    TEST_EXPECT(forms == trials, "\"a b\" and [\"a\",\"b\"] merge forms give the same ids", "%d/%d", forms, trials);
    tokenizer_free(t2);
    t2 = NULL;

    /* ignore_merges: a word that is itself a token is emitted whole even if the merges
     * would not build it. Pick a merge result that is not reachable by ranks: the
     * 3-char token "abc" if present; otherwise just check a single-token word. */
    free(j2);
    j2 = synth_json(&s, 0, 1, NULL);
    t2 = tokenizer_load_hf_mem(j2, strlen(j2), NULL, 0, "synth3", &err);
    int whole = 0, n_tok = 0;
    for (int i = 256; t2 && i < s.n; i++) {
        int *got, ng = encode(t2, s.tok[i], 0, &got);
        n_tok++;
        whole += ng == 1 && got[0] == i;
        free(got);
    }
    TEST_EXPECT(t2 && n_tok > 0 && whole == n_tok, "ignore_merges: every vocabulary word encodes to itself",
                "%d/%d", whole, n_tok);
    int differs = 0;
    for (int i = 256; i < s.n; i++) {
        int ref[64], nr = naive_bpe(&s, s.tok[i], ref);
        differs += !(nr == 1 && ref[0] == i);
    }
    printf("# ignore_merges: %d of %d merge results are not what plain BPE gives for their text\n", differs, n_tok);
    tokenizer_free(t2);
    t2 = NULL;

    /* Added tokens flags on the synthetic tokenizer. */
    free(j2);
    j2 = synth_json(&s, 0, 0,
                    "[{\"id\":900,\"content\":\"<L>\",\"lstrip\":true,\"special\":true,\"normalized\":false},"
                    "{\"id\":901,\"content\":\"<R>\",\"rstrip\":true,\"special\":true,\"normalized\":false},"
                    "{\"id\":902,\"content\":\"cab\",\"single_word\":true,\"special\":false,\"normalized\":false},"
                    "{\"id\":903,\"content\":\"<LONG>\",\"special\":true,\"normalized\":false},"
                    "{\"id\":904,\"content\":\"<LO\",\"special\":true,\"normalized\":false}]");
    t2 = tokenizer_load_hf_mem(j2, strlen(j2), NULL, 0, "synth4", &err);
    TEST_EXPECT(t2, "synthetic tokenizer with added tokens loads", "%s", err.msg);
    if (t2) {
        int *g, ng = encode(t2, "a  <L>b", 0, &g);
        TEST_EXPECT(ng == 3 && g[0] == 'a' && g[1] == 900 && g[2] == 'b', "lstrip eats the spaces before the token",
                    "%d ids", ng);
        free(g);
        ng = encode(t2, "a<R>  b", 0, &g);
        TEST_EXPECT(ng == 3 && g[0] == 'a' && g[1] == 901 && g[2] == 'b', "rstrip eats the spaces after the token",
                    "%d ids", ng);
        free(g);
        ng = encode(t2, "a cab b", 0, &g);
        int found = 0;
        for (int i = 0; i < ng; i++) found += g[i] == 902;
        free(g);
        int ng2 = encode(t2, "acab b", 0, &g);
        int found2 = 0;
        for (int i = 0; i < ng2; i++) found2 += g[i] == 902;
        free(g);
        TEST_EXPECT(found == 1 && found2 == 0, "single_word matches only a whole word", "alone %d, inside a word %d",
                    found, found2);
        ng = encode(t2, "x<LONG>y<LO", 0, &g);
        TEST_EXPECT(ng >= 4 && g[1] == 903 && g[ng - 1] == 904, "added tokens: leftmost-longest match", "%d ids", ng);
        free(g);
    }
done:
    tokenizer_free(t1);
    tokenizer_free(t2);
    free(j1);
    free(j2);
    for (int i = 0; i < s.n; i++) free(s.tok[i]);
    free(s.tok);
    free(s.merge);
}

/* \s in the file's regex is Unicode White_Space (Oniguruma), which PCRE2 lacks for U+0085. */
static void test_regex_space(const Tokenizer *l3) {
    /* Oniguruma splits "x NEL NEL y" as "x" | NEL (\s+(?!\S)) | NEL "y"; with PCRE2's
     * own \s it would be "x" | NEL NEL ([^\s\p{L}\p{N}]+) | "y". */
    int *all, *p1, *p2, *p3;
    int n = encode(l3, "x\xC2\x85\xC2\x85y", 0, &all);
    int n1 = encode(l3, "x", 0, &p1), n2 = encode(l3, "\xC2\x85", 0, &p2), n3 = encode(l3, "\xC2\x85y", 0, &p3);
    int ok = n == n1 + n2 + n3 && same(all, n1, p1, n1) && same(all + n1, n2, p2, n2) &&
             same(all + n1 + n2, n3, p3, n3);
    TEST_EXPECT(ok, "regex: \\s includes U+0085 (Unicode White_Space, as Oniguruma)", "%d ids vs %d+%d+%d", n, n1,
                n2, n3);
    free(all), free(p1), free(p2), free(p3);
}

/* Long inputs: a megabyte-long whitespace run (regex backtracking, JIT stack) and a
 * megabyte-long word (one BPE heap of a million symbols) must encode and round-trip. */
static void test_long(const Tokenizer *t, const char *name) {
    size_t n = 1 << 20;
    char *text = malloc(n + 2);
    const char fill[2] = {' ', '7'};
    for (int k = 0; k < 2; k++) {
        memset(text, fill[k], n);
        text[n] = 'x';
        text[n + 1] = '\0';
        int *ids = NULL, m = 0;
        char *back = NULL;
        Err err = {{0}};
        int r = tokenizer_encode(t, text, n + 1, 0, &ids, &m, &err);
        if (!r) r = tokenizer_decode(t, ids, m, &back, &err);
        char label[128];
        snprintf(label, sizeof label, "%s: 1 MiB run of '%c' encodes and round-trips", name, fill[k]);
        TEST_EXPECT(!r && m > 0 && !strcmp(back, text), label, "rc %d, %d ids: %s", r, m, err.msg);
        free(ids);
        free(back);
    }
    free(text);
}

/* A backtracking-heavy split pattern on a long input outgrows PCRE2's default JIT
 * stack; the encoder must retry with a larger one rather than fail. */
static void test_deep_regex(void) {
    char buf[2048];
    snprintf(buf, sizeof buf, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[]}," TINY_TAIL,
             "(a|b)+");
    Err err = {{0}};
    Tokenizer *t = tokenizer_load_hf_mem(buf, strlen(buf), NULL, 0, "deep", &err);
    size_t n = 200000;
    char *text = malloc(n);
    for (size_t i = 0; i < n; i++) text[i] = "ab"[i % 3 == 0];
    int *ids = NULL, m = 0, r = t ? tokenizer_encode(t, text, n, 0, &ids, &m, &err) : -1;
    int ok = !r && (size_t)m == n;
    for (int i = 0; ok && i < m; i++) ok = ids[i] == (text[i] == 'b');
    TEST_EXPECT(ok, "split regex with deep backtracking on a long input", "rc %d, %d ids: %s", r, m, err.msg);
    free(ids);
    free(text);
    tokenizer_free(t);
}

/* Split with a literal {"String": ...} pattern and each delimiter behavior
 * (tokenizers' documented example: "the-final--countdown" split on "-"). The merges
 * join "-" with its neighbours, which they can only do inside one piece, so the ids
 * show where the pieces end. */
static void test_split_behaviors(void) {
    static const char *const behaviors[5] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                             "Contiguous"};
    static const char *const want[5] = {
        "t h e f i n a l c o u n t d o w n",        /* the | final | countdown */
        "t h e - f i n a l - - c o u n t d o w n",  /* the | - | final | - | - | countdown */
        "t h e- f i n a l- - c o u n t d o w n",    /* the- | final- | - | countdown */
        "t h e -f i n a l - -c o u n t d o w n",    /* the | -final | - | -countdown */
        "t h e - f i n a l -- c o u n t d o w n"};  /* the | - | final | -- | countdown */
    for (int b = 0; b < 5; b++) {
        char json[4096];
        snprintf(json, sizeof json,
                 "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"-\":0,\"t\":1,\"h\":2,\"e\":3,\"f\":4,\"i\":5,"
                 "\"n\":6,\"a\":7,\"l\":8,\"c\":9,\"o\":10,\"u\":11,\"d\":12,\"w\":13,\"--\":14,\"e-\":15,"
                 "\"-f\":16,\"l-\":17,\"-c\":18},\"merges\":[\"- -\",\"e -\",\"- f\",\"l -\",\"- c\"]},"
                 "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
                 "{\"String\":\"-\"},\"behavior\":\"%s\",\"invert\":false},{\"type\":\"ByteLevel\","
                 "\"add_prefix_space\":false,\"use_regex\":false}]},\"decoder\":{\"type\":\"ByteLevel\"}}",
                 behaviors[b]);
        Err err = {{0}};
        Tokenizer *t = tokenizer_load_hf_mem(json, strlen(json), NULL, 0, "split", &err);
        char name[96];
        snprintf(name, sizeof name, "Split {\"String\"} with behavior %s", behaviors[b]);
        if (!t) {
            TEST_EXPECT(0, name, "load: %s", err.msg);
            continue;
        }
        int *ids, n = encode(t, "the-final--countdown", 0, &ids);
        ByteBuf got = {0};
        for (int i = 0; i < n; i++) {
            size_t pl;
            const char *p = tokenizer_piece(t, ids[i], &pl);
            if (i) bytebuf_putc(&got, ' ');
            bytebuf_append(&got, p ? p : "?", p ? pl : 1);
        }
        TEST_EXPECT(got.p && !strcmp(got.p, want[b]), name, "got \"%s\" want \"%s\"", got.p ? got.p : "", want[b]);
        bytebuf_free(&got);
        free(ids);
        tokenizer_free(t);
    }
}

/* GPT-2 style: ByteLevel with its own regex and add_prefix_space, unk_token with
 * fuse_unk, an NFC Sequence normalizer. */
static void test_gpt2_style(void) {
    const char *json =
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"h\":0,\"e\":1,\"l\":2,\"o\":3,\"\xC4\xA0\":4,\"he\":5,\"ll\":6,"
        "\"hell\":7,\"hello\":8,\"\xC4\xA0h\":9,\"<unk>\":10},\"merges\":[\"h e\",\"l l\",\"he ll\",\"hell o\","
        "\"\xC4\xA0 h\"],\"unk_token\":\"<unk>\",\"fuse_unk\":true},\"added_tokens\":[],"
        "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"}]},"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true},"
        "\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"}}";
    Err err = {{0}};
    Tokenizer *t = tokenizer_load_hf_mem(json, strlen(json), NULL, 0, "gpt2", &err);
    TEST_EXPECT(t, "gpt2-style tokenizer loads", "%s", err.msg);
    if (!t) return;
    int *ids, n = encode(t, "hello hexxo", 0, &ids);
    /* " hello" -> Ġ hello (h e, l l, he ll, hell o outrank Ġ h); " hexxo" -> Ġ he <unk> o
     * with the two unknown x fused into one <unk>. */
    int want[] = {4, 8, 4, 5, 10, 3};
    TEST_EXPECT(same(ids, n, want, 6), "ByteLevel use_regex + add_prefix_space, fused <unk>", "got %d ids: %d %d %d %d",
                n, n > 0 ? ids[0] : -1, n > 1 ? ids[1] : -1, n > 2 ? ids[2] : -1, n > 3 ? ids[3] : -1);
    free(ids);
    tokenizer_free(t);
}

int main(void) {
    Tokenizer *l3 = load_shared("llama3"), *qw = load_shared("qwen2");
    if (l3 && qw) {
        test_added_tokens(l3, qw);
        test_streaming(l3, qw);
        test_invalid_utf8(l3);
        test_regex_space(l3);
        test_long(l3, "llama3");
        test_long(qw, "qwen2");
    }
    test_malformed();
    test_deep_regex();
    test_split_behaviors();
    test_gpt2_style();
    test_merge_order();
    tokenizer_free(l3);
    tokenizer_free(qw);
    return test_finish();
}
