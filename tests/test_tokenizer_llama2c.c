/* llama2.c tokenizer (tok512.bin): encode must equal run.c's encode (ported below
 * verbatim as the reference, O(n^2) scan included) on GSM8K text and edge cases; decode
 * of the reference greedy stories260K ids must give the published story; byte fallback
 * and streaming; malformed files. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "test.h"
#include "core/bytebuf.h"
#include "text/tokenizer.h"

/* ---- reference: Karpathy's run.c (build_tokenizer/encode), adapted only to take a
 * length and to skip a missing dummy-prefix token instead of emitting -1 ---------- */
typedef struct {
    char *str;
    int id;
} TokenIndex;

typedef struct {
    char **vocab;
    float *vocab_scores;
    TokenIndex *sorted_vocab;
    int vocab_size;
    unsigned int max_token_length;
} RefTok;

static int compare_tokens(const void *a, const void *b) {
    return strcmp(((const TokenIndex *)a)->str, ((const TokenIndex *)b)->str);
}

static int ref_load(RefTok *t, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int cap = 1024;
    t->vocab = malloc(sizeof(char *) * (size_t)cap);
    t->vocab_scores = malloc(sizeof(float) * (size_t)cap);
    if (fread(&t->max_token_length, sizeof(int), 1, f) != 1) return -1;
    int n = 0, len;
    float score;
    while (fread(&score, sizeof(float), 1, f) == 1) {
        if (fread(&len, sizeof(int), 1, f) != 1 || n == cap) return -1;
        t->vocab_scores[n] = score;
        t->vocab[n] = malloc((size_t)len + 1);
        if (fread(t->vocab[n], (size_t)len, 1, f) != 1 && len) return -1;
        t->vocab[n][len] = '\0';
        n++;
    }
    fclose(f);
    t->vocab_size = n;
    t->sorted_vocab = malloc(sizeof(TokenIndex) * (size_t)n);
    for (int i = 0; i < n; i++) t->sorted_vocab[i] = (TokenIndex){t->vocab[i], i};
    qsort(t->sorted_vocab, (size_t)n, sizeof(TokenIndex), compare_tokens);
    return 0;
}

static int str_lookup(char *str, TokenIndex *sorted_vocab, int vocab_size) {
    TokenIndex tok = {.str = str};
    TokenIndex *res = bsearch(&tok, sorted_vocab, (size_t)vocab_size, sizeof(TokenIndex), compare_tokens);
    return res != NULL ? res->id : -1;
}

static void ref_encode(RefTok *t, const char *text, int8_t bos, int *tokens, int *n_tokens) {
    char *str_buffer = malloc(t->max_token_length * 2 + 1 + 2);
    size_t str_len = 0;
    *n_tokens = 0;
    if (bos) tokens[(*n_tokens)++] = 1;
    if (text[0] != '\0') {
        int dummy_prefix = str_lookup(" ", t->sorted_vocab, t->vocab_size);
        if (dummy_prefix >= 0) tokens[(*n_tokens)++] = dummy_prefix;
    }
    for (const char *c = text; *c != '\0'; c++) {
        if ((*c & 0xC0) != 0x80) str_len = 0;
        str_buffer[str_len++] = *c;
        str_buffer[str_len] = '\0';
        if ((*(c + 1) & 0xC0) == 0x80 && str_len < 4) continue;
        int id = str_lookup(str_buffer, t->sorted_vocab, t->vocab_size);
        if (id != -1) {
            tokens[(*n_tokens)++] = id;
        } else {
            for (size_t i = 0; i < str_len; i++) tokens[(*n_tokens)++] = (unsigned char)str_buffer[i] + 3;
        }
        str_len = 0;
    }
    while (1) {
        float best_score = -1e10;
        int best_id = -1, best_idx = -1;
        for (int i = 0; i < (*n_tokens - 1); i++) {
            sprintf(str_buffer, "%s%s", t->vocab[tokens[i]], t->vocab[tokens[i + 1]]);
            int id = str_lookup(str_buffer, t->sorted_vocab, t->vocab_size);
            if (id != -1 && t->vocab_scores[id] > best_score) {
                best_score = t->vocab_scores[id];
                best_id = id;
                best_idx = i;
            }
        }
        if (best_idx == -1) break;
        tokens[best_idx] = best_id;
        for (int i = best_idx + 1; i < (*n_tokens - 1); i++) tokens[i] = tokens[i + 1];
        (*n_tokens)--;
    }
    free(str_buffer);
}

static void ref_free(RefTok *t) {
    for (int i = 0; i < t->vocab_size; i++) free(t->vocab[i]);
    free(t->vocab);
    free(t->vocab_scores);
    free(t->sorted_vocab);
}

/* ---------------------------------------------------------------------------------- */

static int same(const int *a, int na, const int *b, int nb) {
    return na == nb && (na == 0 || !memcmp(a, b, sizeof(int) * (size_t)na));
}

static void test_against_reference(const Tokenizer *t, RefTok *ref) {
    const char *fixed[] = {"Once upon a time",
                           "",
                           " ",
                           "a",
                           "Lily and Ben went to the park. They saw a big dog!\n\"Hello,\" said Tim.",
                           "café naïve résumé — 😀👍🏽 你好，世界！",
                           "\xF0\x9F\x98",               /* truncated 4-byte char */
                           "\x80\x80\x80\x80\x80\x80 x", /* stray continuation bytes */
                           "tabs\tand\r\nnewlines\n\n",
                           "12345678901234567890 + 3.14159 = ?",
                           "<0x41> <s> </s> <unk>"};
    int n_fixed = sizeof fixed / sizeof *fixed;
    /* Plus GSM8K questions, the kind of text the model will see. */
    char path[1024], *data = NULL;
    size_t len;
    Err err;
    snprintf(path, sizeof path, "%s/data/gsm8k/test.jsonl", shared_dir());
    int have = !file_read_all(path, &data, &len, &err);
    TEST_EXPECT(have, "gsm8k test.jsonl readable", "%s", err.msg);
    int agree = 0, total = 0;
    char first_bad[256] = "";
    char *line = have ? data : NULL;
    for (int k = 0; k < n_fixed + 300; k++) {
        const char *text;
        cJSON *j = NULL;
        if (k < n_fixed) {
            text = fixed[k];
        } else {
            if (!line || !*line) break;
            char *next = strchr(line, '\n');
            if (next) *next++ = '\0';
            j = cJSON_Parse(line);
            line = next;
            const cJSON *q = cJSON_GetObjectItem(j, "question");
            if (!cJSON_IsString(q)) {
                cJSON_Delete(j);
                continue;
            }
            text = q->valuestring;
        }
        for (int bos = 0; bos < 2; bos++) {
            size_t n = strlen(text);
            int *want = malloc(sizeof(int) * (n * 4 + 3)), nw = 0, *got = NULL, ng = 0;
            ref_encode(ref, text, (int8_t)bos, want, &nw);
            total++;
            if (!tokenizer_encode(t, text, n, bos, &got, &ng, &err) && same(got, ng, want, nw))
                agree++;
            else if (!first_bad[0])
                snprintf(first_bad, sizeof first_bad, "\"%.40s\" bos=%d: %d ids vs run.c %d", text, bos, ng, nw);
            free(got);
            free(want);
        }
        cJSON_Delete(j);
    }
    free(data);
    TEST_EXPECT(total > 2 * n_fixed + 400 && agree == total, "llama2c encode equals run.c's encode",
                "%d/%d agree; first: %s", agree, total, first_bad);
}

static void test_stories(const Tokenizer *t) {
    int *ids = NULL, n = 0;
    Err err;
    int r = tokenizer_encode(t, "Once upon a time", 16, 1, &ids, &n, &err);
    /* The reference greedy continuation from BOS starts with these very tokens. */
    int want[] = {1, 403, 407, 261, 378};
    TEST_EXPECT(!r && same(ids, n, want, 5), "encode \"Once upon a time\" with BOS = 1 403 407 261 378",
                "rc %d, %d ids, first %d %d", r, n, n > 0 ? ids[0] : -1, n > 1 ? ids[1] : -1);
    free(ids);

    char path[1024], *data;
    size_t len;
    snprintf(path, sizeof path, "%s/models/stories260K/expected_greedy_ids.txt", shared_dir());
    if (file_read_all(path, &data, &len, &err)) {
        TEST_EXPECT(0, "expected_greedy_ids.txt readable", "%s", err.msg);
        return;
    }
    int seq[400], k = 0;
    seq[k++] = 1;
    for (char *p = data, *e; k < 400; p = e) {
        long v = strtol(p, &e, 10);
        if (e == p) break;
        seq[k++] = (int)v;
    }
    free(data);
    char *text = NULL;
    r = tokenizer_decode(t, seq, k, &text, &err);
    const char *story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
    TEST_EXPECT(k == 201 && !r && !strncmp(text, story, strlen(story)),
                "decode of the reference greedy ids (BOS first) is the published story", "%d ids: \"%.100s\"", k,
                text ? text : "(null)");
    /* Streaming gives the same text. */
    TokenDecoder *d = token_decoder_new(t);
    ByteBuf all = {0};
    int ok = 1;
    for (int i = 0; i < k; i++) {
        const char *o;
        size_t ol;
        ok &= !token_decoder_push(d, seq[i], &o, &ol, &err);
        bytebuf_append(&all, o, ol);
    }
    const char *o;
    size_t ol;
    token_decoder_flush(d, &o, &ol);
    bytebuf_append(&all, o, ol);
    TEST_EXPECT(ok && text && all.p && !strcmp(all.p, text), "streaming decode equals whole decode", "differs");
    /* Re-encoding the decoded story gives back ids that decode to the same text. */
    int *ids2, n2;
    char *text2 = NULL;
    r = text ? tokenizer_encode(t, text, strlen(text), 1, &ids2, &n2, &err) : -1;
    if (!r) r = tokenizer_decode(t, ids2, n2, &text2, &err);
    TEST_EXPECT(!r && !strcmp(text2, text), "encode(decode(ids)) round-trips the text", "rc %d", r);
    if (!r) free(ids2);
    free(text2);
    free(text);
    bytebuf_free(&all);
    token_decoder_free(d);
}

static void test_bytes(const Tokenizer *t) {
    /* "ü" has no token in tok512: <0xC3><0xBC> byte fallback. */
    int *ids = NULL, n = 0;
    Err err;
    int r = tokenizer_encode(t, "\xC3\xBC", 2, 0, &ids, &n, &err);
    int has = 0;
    for (int i = 0; i + 1 < n; i++) has |= ids[i] == 0xC3 + 3 && ids[i + 1] == 0xBC + 3;
    TEST_EXPECT(!r && has, "byte fallback: ü becomes <0xC3><0xBC>", "%d ids", n);
    TokenDecoder *d = token_decoder_new(t);
    const char *o1, *o2;
    size_t l1 = 9, l2 = 0;
    int r1 = token_decoder_push(d, 0xC3 + 3, &o1, &l1, &err);
    int r2 = token_decoder_push(d, 0xBC + 3, &o2, &l2, &err);
    TEST_EXPECT(!r1 && !r2 && l1 == 0 && l2 == 2 && !memcmp(o2, "\xC3\xBC", 2),
                "stream: <0xC3> is held until <0xBC> completes ü", "lengths %zu %zu", l1, l2);
    token_decoder_free(d);
    free(ids);
    TEST_EXPECT(tokenizer_vocab_size(t) == 512 && tokenizer_bos_id(t) == 1 && tokenizer_eos_id(t) == 2 &&
                    tokenizer_is_special(t, 1) && !tokenizer_is_special(t, 403),
                "tok512: 512 tokens, BOS 1, EOS 2", "vocab %d", tokenizer_vocab_size(t));
    size_t pl;
    const char *p = tokenizer_piece(t, 403, &pl);
    TEST_EXPECT(p && pl == 5 && !memcmp(p, " Once", 5) && tokenizer_token_id(t, " Once") == 403,
                "piece <-> id lookups", "piece of 403: %.*s", p ? (int)pl : 0, p ? p : "");
}

static void test_malformed(const char *tok_path) {
    char *data;
    size_t len;
    Err err;
    if (file_read_all(tok_path, &data, &len, &err)) return;
    Tokenizer *t = tokenizer_load_llama2c_mem(data, len - 3, "cut.bin", &err);
    TEST_EXPECT(!t && strstr(err.msg, "cut.bin: token 511 at byte") && !strchr(err.msg, '\n'),
                "llama2c: truncated file gets a one-line error naming the token", "%s", err.msg);
    tokenizer_free(t);
    t = tokenizer_load_llama2c_mem(data, 2, "tiny.bin", &err);
    TEST_EXPECT(!t && strstr(err.msg, "tiny.bin: too short"), "llama2c: 2-byte file", "%s", err.msg);
    tokenizer_free(t);
    data[8] = (char)0xFF, data[9] = data[10] = data[11] = (char)0x7F; /* token 0 length huge */
    t = tokenizer_load_llama2c_mem(data, len, "big.bin", &err);
    TEST_EXPECT(!t && strstr(err.msg, "exceeds"), "llama2c: absurd token length", "%s", err.msg);
    tokenizer_free(t);
    free(data);
}

int main(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/stories260K/tok512.bin", shared_dir());
    Err err;
    Tokenizer *t = tokenizer_load_llama2c(path, &err);
    TEST_EXPECT(t, "load tok512.bin", "%s", err.msg);
    RefTok ref = {0};
    int have_ref = !ref_load(&ref, path);
    TEST_EXPECT(have_ref, "reference loader reads tok512.bin", "failed");
    if (t && have_ref) {
        test_against_reference(t, &ref);
        test_stories(t);
        test_bytes(t);
    }
    if (have_ref) ref_free(&ref);
    test_malformed(path);
    /* The directory loader finds tokenizer.bin only under that name; tok512.bin's own
     * directory has none, which must be a clean error. */
    snprintf(path, sizeof path, "%s/models/stories260K", shared_dir());
    Tokenizer *t2 = tokenizer_load_dir(path, &err);
    TEST_EXPECT(!t2 && strstr(err.msg, "no tokenizer.json or tokenizer.bin"), "load_dir without a tokenizer", "%s",
                err.msg);
    tokenizer_free(t2);
    tokenizer_free(t);
    return test_finish();
}
