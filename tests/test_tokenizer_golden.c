/* Every line of ../shared/tokenizers/golden.jsonl (ids from tiktoken and Tokenizers.js
 * for Llama 3 and Qwen2): encode(text) without special tokens must equal ids exactly,
 * and decode(ids) must give the text back (NFC-normalized for Qwen2, whose normalizer
 * is NFC). Reports one check per tokenizer and direction, with the first mismatches. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "test.h"
#include "text/nfc.h"
#include "text/tokenizer.h"

#define SHOW 3

typedef struct {
    const char *name;
    Tokenizer *tok;
    int lines, enc_ok, dec_ok, enc_shown, dec_shown;
    char enc_detail[4096], dec_detail[4096];
} Case;

static void append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...) {
    size_t n = strlen(buf);
    if (n + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

static void ids_str(char *out, size_t cap, const int *ids, int n) {
    out[0] = '\0';
    for (int i = 0; i < n && i < 24; i++) append(out, cap, "%s%d", i ? "," : "", ids[i]);
    if (n > 24) append(out, cap, ",...(%d)", n);
}

int main(void) {
    char path[1024];
    Case cases[2] = {{.name = "llama3"}, {.name = "qwen2"}};
    Err err;
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/tokenizers/%s", shared_dir(), cases[i].name);
        cases[i].tok = tokenizer_load_dir(path, &err);
        TEST_EXPECT(cases[i].tok, cases[i].name, "load: %s", err.msg);
        if (!cases[i].tok) return test_finish();
    }
    snprintf(path, sizeof path, "%s/tokenizers/golden.jsonl", shared_dir());
    char *data;
    size_t len;
    if (file_read_all(path, &data, &len, &err)) {
        TEST_EXPECT(0, "golden.jsonl readable", "%s", err.msg);
        return test_finish();
    }
    int total = 0, bad_lines = 0;
    for (char *line = data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (!*line) continue;
        total++;
        cJSON *j = cJSON_Parse(line);
        const cJSON *tk = cJSON_GetObjectItem(j, "tokenizer"), *tx = cJSON_GetObjectItem(j, "text"),
                    *ex = cJSON_GetObjectItem(j, "ids");
        Case *c = NULL;
        for (int i = 0; i < 2 && cJSON_IsString(tk); i++)
            if (!strcmp(tk->valuestring, cases[i].name)) c = &cases[i];
        if (!c || !cJSON_IsString(tx) || !cJSON_IsArray(ex)) {
            bad_lines++;
            cJSON_Delete(j);
            continue;
        }
        c->lines++;
        const char *text = tx->valuestring;
        int n_exp = cJSON_GetArraySize(ex);
        int *exp = malloc(sizeof(int) * (size_t)(n_exp + 1));
        int k = 0;
        for (const cJSON *x = ex->child; x; x = x->next) exp[k++] = x->valueint;

        int *ids = NULL, n = 0;
        char a[512], b[512];
        if (tokenizer_encode(c->tok, text, strlen(text), 0, &ids, &n, &err)) {
            if (c->enc_shown++ < SHOW)
                append(c->enc_detail, sizeof c->enc_detail, "\n#   line %d: error %s", total, err.msg);
        } else if (n != n_exp || memcmp(ids, exp, sizeof(int) * (size_t)n)) {
            if (c->enc_shown++ < SHOW) {
                ids_str(a, sizeof a, ids, n);
                ids_str(b, sizeof b, exp, n_exp);
                append(c->enc_detail, sizeof c->enc_detail, "\n#   line %d %.60s: got [%s] want [%s]",
                       total, text, a, b);
            }
        } else {
            c->enc_ok++;
        }
        free(ids);

        char *dec = NULL;
        size_t dn = 0;
        ByteBuf want = {0};
        if (c == &cases[1])
            text_nfc(text, strlen(text), &want);
        else
            bytebuf_append(&want, text, strlen(text));
        if (tokenizer_decode_ex(c->tok, exp, n_exp, 0, &dec, &dn, &err)) {
            if (c->dec_shown++ < SHOW)
                append(c->dec_detail, sizeof c->dec_detail, "\n#   line %d: error %s", total, err.msg);
        } else if (dn != want.n || memcmp(dec, want.p ? want.p : "", dn)) {
            if (c->dec_shown++ < SHOW)
                append(c->dec_detail, sizeof c->dec_detail, "\n#   line %d: got \"%.60s\" want \"%.60s\"",
                       total, dec, want.p ? want.p : "");
        } else {
            c->dec_ok++;
        }
        free(dec);
        bytebuf_free(&want);
        free(exp);
        cJSON_Delete(j);
    }
    free(data);
    TEST_EXPECT(total == 832 && bad_lines == 0, "golden.jsonl has 832 well-formed lines",
                "%d lines, %d malformed", total, bad_lines);
    for (int i = 0; i < 2; i++) {
        Case *c = &cases[i];
        char name[128];
        snprintf(name, sizeof name, "golden %s encode: %d/%d lines exact", c->name, c->enc_ok, c->lines);
        TEST_EXPECT(c->lines > 0 && c->enc_ok == c->lines, name, "%d mismatches%s", c->lines - c->enc_ok,
                    c->enc_detail);
        snprintf(name, sizeof name, "golden %s decode: %d/%d lines round-trip", c->name, c->dec_ok, c->lines);
        TEST_EXPECT(c->lines > 0 && c->dec_ok == c->lines, name, "%d mismatches%s", c->lines - c->dec_ok,
                    c->dec_detail);
        tokenizer_free(c->tok);
    }
    return test_finish();
}
