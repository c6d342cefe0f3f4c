/* Parses a Hugging Face tokenizer.json (and tokenizer_config.json) into a Tokenizer.
 * Anything the file asks for that softcot cannot reproduce exactly is rejected with a
 * message naming the JSON path, rather than approximated. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text/byte_level.h"
#include "text/hf_model.h"
#include "text/nfc.h"
#include "text/tok_internal.h"
#include "text/utf8.h"

/* Ids far beyond the number of tokens would make the id tables huge (a fuzzed or
 * corrupt file could ask for 2^31 rows); real files are dense. */
#define ID_SLACK 1024

typedef struct {
    const char *name; /* file name for messages */
    Err *err;
    char shown[3][100]; /* scratch for shown(): up to three quoted strings per message */
    int next;
} Ctx;

/* File-provided text for a message: control characters escaped and long strings cut
 * at a character boundary, so the message stays one readable line. */
static const char *shown(Ctx *c, const char *s, size_t n) {
    char *o = c->shown[c->next++ % 3];
    const size_t cap = sizeof c->shown[0];
    size_t k = 0, i = 0;
    for (; i < n && k + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7F)
            k += (size_t)snprintf(o + k, cap - k, "\\x%02X", ch);
        else
            o[k++] = (char)ch;
    }
    if (i < n) {
        while (k > 0 && ((unsigned char)o[k - 1] & 0xC0) == 0x80) k--;
        if (k > 0 && (unsigned char)o[k - 1] >= 0xC0) k--;
        memcpy(o + k, "...", 3);
        k += 3;
    }
    o[k] = '\0';
    return o;
}
#define SHOW(c, s) shown((c), (s), strlen(s))

static const cJSON *get(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static int absent(const cJSON *x) { return !x || cJSON_IsNull(x); }

/* Reads an optional boolean; missing or null gives def. */
static int get_bool(Ctx *c, const cJSON *o, const char *key, int def, int *out, const char *path) {
    const cJSON *x = get(o, key);
    if (absent(x)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(x))
        return err_set(c->err, "%s: %s.%s: expected true or false", c->name, path, key);
    *out = cJSON_IsTrue(x);
    return 0;
}

static int as_id(const cJSON *x, int *id) {
    if (!cJSON_IsNumber(x)) return 0;
    double v = x->valuedouble;
    if (!(v >= 0 && v < 2147483647.0) || v != floor(v)) return 0;
    *id = (int)v;
    return 1;
}

static int check_utf8(Ctx *c, const char *s, const char *what, int index) {
    size_t n = strlen(s), bad = utf8_first_invalid(s, n);
    if (bad == n) return 0;
    return err_set(c->err, "%s: %s[%d]: string is not valid UTF-8 (byte %zu)", c->name, what,
                   index, bad);
}

static const char *type_of(const cJSON *o) {
    const cJSON *t = get(o, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* ---- normalizer ---------------------------------------------------------------- */

static int load_normalizer(Ctx *c, HfModel *m, const cJSON *n, const char *path) {
    if (absent(n)) return 0;
    const char *type = type_of(n);
    if (!type) return err_set(c->err, "%s: %s: expected an object with a \"type\"", c->name, path);
    if (!strcmp(type, "NFC")) {
        m->nfc = 1;
        return 0;
    }
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = get(n, "normalizers");
        if (!cJSON_IsArray(list))
            return err_set(c->err, "%s: %s.normalizers: expected a list", c->name, path);
        int i = 0;
        for (const cJSON *x = list->child; x; x = x->next, i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.normalizers[%d]", path, i);
            if (load_normalizer(c, m, x, sub)) return -1;
        }
        return 0;
    }
    return err_set(c->err, "%s: %s.type \"%s\" is not supported (expected NFC, a Sequence of NFC, or null)",
                   c->name, path, SHOW(c, type));
}

/* ---- pre-tokenizer ------------------------------------------------------------- */

static PreStep *push_step(HfModel *m) {
    m->steps = xrealloc(m->steps, (size_t)(m->n_steps + 1) * sizeof *m->steps);
    PreStep *s = &m->steps[m->n_steps++];
    memset(s, 0, sizeof *s);
    return s;
}

static int compile_into(Ctx *c, PreStep *s, const char *pat, int literal, const char *path) {
    Err e;
    s->re = hf_regex_compile(pat, strlen(pat), literal, &e);
    if (!s->re) return err_set(c->err, "%s: %s: %s", c->name, path, e.msg);
    return 0;
}

static int load_pre(Ctx *c, HfModel *m, const cJSON *p, const char *path) {
    const char *type = type_of(p);
    if (!type) return err_set(c->err, "%s: %s: expected an object with a \"type\"", c->name, path);
    char sub[256];
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = get(p, "pretokenizers");
        if (!cJSON_IsArray(list))
            return err_set(c->err, "%s: %s.pretokenizers: expected a list", c->name, path);
        int i = 0;
        for (const cJSON *x = list->child; x; x = x->next, i++) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%d]", path, i);
            if (load_pre(c, m, x, sub)) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "Split")) {
        PreStep *s = push_step(m);
        s->kind = PRE_SPLIT;
        const cJSON *pat = get(p, "pattern");
        const cJSON *re = get(pat, "Regex"), *lit = get(pat, "String");
        snprintf(sub, sizeof sub, "%s.pattern", path);
        if (cJSON_IsString(re)) {
            if (compile_into(c, s, re->valuestring, 0, sub)) return -1;
        } else if (cJSON_IsString(lit)) {
            if (compile_into(c, s, lit->valuestring, 1, sub)) return -1;
        } else {
            return err_set(c->err, "%s: %s: expected {\"Regex\": \"...\"} or {\"String\": \"...\"}",
                           c->name, sub);
        }
        const cJSON *b = get(p, "behavior");
        static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                            "MergedWithNext", "Contiguous"};
        int found = -1;
        for (int i = 0; i < 5 && cJSON_IsString(b); i++)
            if (!strcmp(b->valuestring, names[i])) found = i;
        if (found < 0)
            return err_set(c->err,
                           "%s: %s.behavior: expected one of Removed, Isolated, MergedWithPrevious, "
                           "MergedWithNext, Contiguous",
                           c->name, path);
        s->behavior = (SplitBehavior)found;
        return get_bool(c, p, "invert", 0, &s->invert, path);
    }
    if (!strcmp(type, "ByteLevel")) {
        PreStep *s = push_step(m);
        s->kind = PRE_BYTE_LEVEL;
        s->behavior = SPLIT_ISOLATED; /* how ByteLevel applies its own regex */
        int use_regex = 0;
        /* tokenizers' defaults: add_prefix_space true, use_regex true. */
        if (get_bool(c, p, "add_prefix_space", 1, &s->add_prefix_space, path) ||
            get_bool(c, p, "use_regex", 1, &use_regex, path))
            return -1;
        if (use_regex) return compile_into(c, s, BYTE_LEVEL_GPT2_REGEX, 0, path);
        return 0;
    }
    return err_set(c->err, "%s: %s.type \"%s\" is not supported (expected Sequence, Split or ByteLevel)",
                   c->name, path, SHOW(c, type));
}

/* ---- model --------------------------------------------------------------------- */

typedef struct {
    const char *piece;
    int id;
} Entry;

static int load_vocab(Ctx *c, Tokenizer *t, const cJSON *vocab, int n_ids) {
    HfModel *m = t->hf;
    int i = 0;
    ByteBuf raw = {0};
    int rc = 0;
    for (const cJSON *x = vocab->child; x; x = x->next, i++) {
        int id = 0;
        as_id(x, &id); /* validated by the caller */
        const char *piece = x->string;
        size_t plen = strlen(piece);
        int prev = strmap_put(t->piece_map, piece, plen, id);
        if (prev >= 0) {
            rc = err_set(c->err, "%s: model.vocab: token \"%s\" appears twice (ids %d and %d)",
                         c->name, SHOW(c, piece), prev, id);
            break;
        }
        if (tokvocab_has(&t->vocab, id)) {
            rc = err_set(c->err, "%s: model.vocab: id %d is given to both \"%s\" and \"%s\"",
                         c->name, id,
                         shown(c, t->vocab.pieces.p + t->vocab.piece_off[id], t->vocab.piece_len[id]),
                         SHOW(c, piece));
            break;
        }
        raw.n = 0;
        int pure = byte_level_decode_token(piece, plen, &raw);
        /* Only tokens spelled in the byte-level alphabet can come out of the BPE. */
        if (pure && raw.n) strmap_put(m->raw_map, raw.p, raw.n, id);
        tokvocab_set(&t->vocab, id, piece, plen, raw.p ? raw.p : "", raw.n, 0);
    }
    (void)n_ids;
    bytebuf_free(&raw);
    return rc;
}

static int merge_parts(const cJSON *x, const char **a, size_t *an, const char **b, size_t *bn) {
    if (cJSON_IsString(x)) {
        const char *s = x->valuestring, *sp = strchr(s, ' ');
        if (!sp || sp == s || !sp[1]) return 0;
        *a = s;
        *an = (size_t)(sp - s);
        *b = sp + 1;
        *bn = strlen(sp + 1);
        return 1;
    }
    if (cJSON_IsArray(x) && cJSON_GetArraySize(x) == 2 && cJSON_IsString(x->child) &&
        cJSON_IsString(x->child->next)) {
        *a = x->child->valuestring;
        *an = strlen(*a);
        *b = x->child->next->valuestring;
        *bn = strlen(*b);
        return 1;
    }
    return 0;
}

static int load_merges(Ctx *c, Tokenizer *t, const cJSON *merges) {
    HfModel *m = t->hf;
    int n = absent(merges) ? 0 : cJSON_GetArraySize(merges);
    m->merges = pairmap_new((size_t)n);
    if (absent(merges)) return 0;
    if (!cJSON_IsArray(merges))
        return err_set(c->err, "%s: model.merges: expected a list", c->name);
    ByteBuf cat = {0};
    int rank = 0, rc = 0;
    for (const cJSON *x = merges->child; x; x = x->next, rank++) {
        const char *a, *b;
        size_t an, bn;
        if (!merge_parts(x, &a, &an, &b, &bn)) {
            rc = err_set(c->err, "%s: model.merges[%d]: expected \"A B\" or [\"A\", \"B\"]", c->name,
                         rank);
            break;
        }
        int ia = strmap_get(t->piece_map, a, an), ib = strmap_get(t->piece_map, b, bn);
        if (ia < 0 || ib < 0) {
            rc = err_set(c->err, "%s: model.merges[%d]: \"%s\" is not in model.vocab", c->name,
                         rank, shown(c, ia < 0 ? a : b, ia < 0 ? an : bn));
            break;
        }
        cat.n = 0;
        bytebuf_append(&cat, a, an);
        bytebuf_append(&cat, b, bn);
        int merged = strmap_get(t->piece_map, cat.p, cat.n);
        if (merged < 0) {
            rc = err_set(c->err, "%s: model.merges[%d]: the merged token \"%s\" is not in model.vocab",
                         c->name, rank, shown(c, cat.p, cat.n));
            break;
        }
        /* A repeated pair keeps its last rank, as tokenizers' HashMap collect does. */
        pairmap_put(m->merges, ia, ib, rank, merged);
    }
    bytebuf_free(&cat);
    return rc;
}

static int check_model_options(Ctx *c, Tokenizer *t, const cJSON *model) {
    HfModel *m = t->hf;
    const cJSON *d = get(model, "dropout");
    if (!absent(d) && !(cJSON_IsNumber(d) && d->valuedouble == 0))
        return err_set(c->err, "%s: model.dropout: BPE dropout is not supported (expected null)",
                       c->name);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = get(model, affixes[i]);
        if (!absent(a) && !(cJSON_IsString(a) && !a->valuestring[0]))
            return err_set(c->err, "%s: model.%s: not supported with byte-level BPE (expected null or \"\")",
                           c->name, affixes[i]);
    }
    int byte_fallback = 0;
    if (get_bool(c, model, "ignore_merges", 0, &m->ignore_merges, "model") ||
        get_bool(c, model, "fuse_unk", 0, &m->fuse_unk, "model") ||
        get_bool(c, model, "byte_fallback", 0, &byte_fallback, "model"))
        return -1;
    m->unk_id = -1;
    const cJSON *unk = get(model, "unk_token");
    if (!absent(unk)) {
        if (!cJSON_IsString(unk))
            return err_set(c->err, "%s: model.unk_token: expected a string or null", c->name);
        m->unk_id = strmap_get(t->piece_map, unk->valuestring, strlen(unk->valuestring));
        if (m->unk_id < 0)
            return err_set(c->err, "%s: model.unk_token \"%s\" is not in model.vocab", c->name,
                           SHOW(c, unk->valuestring));
    }
    for (int b = 0; b < 256; b++) {
        char ch = (char)b;
        m->byte_id[b] = strmap_get(m->raw_map, &ch, 1);
        /* byte_fallback only acts on characters missing from the vocabulary. */
        if (byte_fallback && m->byte_id[b] < 0)
            return err_set(c->err, "%s: model.byte_fallback: not supported when byte tokens are missing",
                           c->name);
    }
    return 0;
}

/* ---- added tokens -------------------------------------------------------------- */

static int load_added(Ctx *c, Tokenizer *t, const cJSON *added) {
    HfModel *m = t->hf;
    int n = cJSON_GetArraySize(added);
    AddedPattern *raw = xcalloc((size_t)n + 1, sizeof *raw), *norm = xcalloc((size_t)n + 1, sizeof *norm);
    int n_raw = 0, n_norm = 0, i = 0, rc = 0;
    uint8_t *seen = xcalloc((size_t)t->vocab.n_ids + 1, 1);
    ByteBuf bytes = {0};
    for (const cJSON *x = added->child; x; x = x->next, i++) {
        int id = 0, special = 0, normalized = 0, single_word = 0, lstrip = 0, rstrip = 0;
        const cJSON *content = get(x, "content");
        as_id(get(x, "id"), &id); /* validated by the caller */
        if (!cJSON_IsString(content) || !content->valuestring[0]) {
            rc = err_set(c->err, "%s: added_tokens[%d].content: expected a non-empty string", c->name, i);
            break;
        }
        const char *s = content->valuestring;
        size_t sn = strlen(s);
        if ((rc = check_utf8(c, s, "added_tokens", i))) break;
        char path[64];
        snprintf(path, sizeof path, "added_tokens[%d]", i);
        if ((rc = get_bool(c, x, "special", 0, &special, path)) ||
            (rc = get_bool(c, x, "normalized", !special, &normalized, path)) ||
            (rc = get_bool(c, x, "single_word", 0, &single_word, path)) ||
            (rc = get_bool(c, x, "lstrip", 0, &lstrip, path)) ||
            (rc = get_bool(c, x, "rstrip", 0, &rstrip, path)))
            break;
        if (seen[id]) {
            rc = err_set(c->err, "%s: added_tokens[%d]: id %d is used by two added tokens", c->name, i, id);
            break;
        }
        seen[id] = 1;
        if (tokvocab_has(&t->vocab, id)) {
            size_t pl = t->vocab.piece_len[id];
            const char *p = t->vocab.pieces.p + t->vocab.piece_off[id];
            if (pl != sn || memcmp(p, s, sn)) {
                rc = err_set(c->err, "%s: added_tokens[%d]: id %d is \"%s\" here but \"%s\" in model.vocab",
                             c->name, i, id, SHOW(c, s), shown(c, p, pl));
                break;
            }
        }
        bytes.n = 0;
        byte_level_decode_token(s, sn, &bytes);
        tokvocab_set(&t->vocab, id, s, sn, bytes.p ? bytes.p : "", bytes.n, special);
        strmap_put(t->piece_map, s, sn, id);
        AddedPattern ap = {id, NULL, 0, (uint8_t)single_word, (uint8_t)lstrip, (uint8_t)rstrip};
        if (normalized && m->nfc) {
            ByteBuf nb = {0};
            if (text_nfc(s, sn, &nb) || nb.n == 0) {
                bytebuf_free(&nb);
                rc = err_set(c->err, "%s: added_tokens[%d]: cannot NFC-normalize \"%s\"", c->name, i, SHOW(c, s));
                break;
            }
            ap.s = nb.p;
            ap.n = nb.n;
        } else {
            ap.s = xstrdup(s);
            ap.n = sn;
        }
        if (normalized)
            norm[n_norm++] = ap;
        else
            raw[n_raw++] = ap;
    }
    added_matcher_build(&m->raw_added, raw, n_raw);
    added_matcher_build(&m->norm_added, norm, n_norm);
    bytebuf_free(&bytes);
    free(seen);
    return rc;
}

/* ---- post-processor and decoder ------------------------------------------------ */

static int load_template(Ctx *c, Tokenizer *t, const cJSON *p, const char *path) {
    HfModel *m = t->hf;
    if (m->prefix || m->suffix)
        return err_set(c->err, "%s: %s: more than one TemplateProcessing", c->name, path);
    const cJSON *single = get(p, "single"), *specials = get(p, "special_tokens");
    if (!cJSON_IsArray(single))
        return err_set(c->err, "%s: %s.single: expected a list", c->name, path);
    IntVec pre = {0}, post = {0};
    int seen_a = 0, i = 0, rc = 0;
    for (const cJSON *x = single->child; x && !rc; x = x->next, i++) {
        const cJSON *seq = get(x, "Sequence"), *sp = get(x, "SpecialToken");
        if (seq) {
            const cJSON *sid = get(seq, "id");
            if (!cJSON_IsString(sid) || strcmp(sid->valuestring, "A") || seen_a)
                rc = err_set(c->err, "%s: %s.single[%d]: expected one {\"Sequence\": {\"id\": \"A\"}}",
                             c->name, path, i);
            seen_a = 1;
            continue;
        }
        const cJSON *name = get(sp, "id");
        const cJSON *def = cJSON_IsString(name) ? get(specials, name->valuestring) : NULL;
        const cJSON *ids = get(def, "ids");
        if (!cJSON_IsArray(ids)) {
            rc = err_set(c->err, "%s: %s.single[%d]: expected a SpecialToken listed in special_tokens with \"ids\"",
                         c->name, path, i);
            break;
        }
        for (const cJSON *y = ids->child; y; y = y->next) {
            int id;
            if (!as_id(y, &id) || !tokvocab_has(&t->vocab, id)) {
                rc = err_set(c->err, "%s: %s.special_tokens[\"%s\"]: ids must be token ids of this tokenizer",
                             c->name, path, SHOW(c, name->valuestring));
                break;
            }
            intvec_push(seen_a ? &post : &pre, id);
        }
    }
    if (!rc && !seen_a)
        rc = err_set(c->err, "%s: %s.single: has no {\"Sequence\": {\"id\": \"A\"}}", c->name, path);
    /* Non-NULL marks that a template was read even when it adds nothing. */
    m->prefix = pre.v ? pre.v : xmalloc(sizeof(int));
    m->n_prefix = (int)pre.n;
    m->suffix = post.v ? post.v : xmalloc(sizeof(int));
    m->n_suffix = (int)post.n;
    return rc;
}

static int load_post(Ctx *c, Tokenizer *t, const cJSON *p, const char *path) {
    if (absent(p)) return 0;
    const char *type = type_of(p);
    if (!type) return err_set(c->err, "%s: %s: expected an object with a \"type\"", c->name, path);
    if (!strcmp(type, "ByteLevel")) return 0; /* only adjusts offsets */
    if (!strcmp(type, "TemplateProcessing")) return load_template(c, t, p, path);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = get(p, "processors");
        if (!cJSON_IsArray(list))
            return err_set(c->err, "%s: %s.processors: expected a list", c->name, path);
        int i = 0;
        for (const cJSON *x = list->child; x; x = x->next, i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.processors[%d]", path, i);
            if (load_post(c, t, x, sub)) return -1;
        }
        return 0;
    }
    return err_set(c->err,
                   "%s: %s.type \"%s\" is not supported (expected TemplateProcessing, ByteLevel, Sequence or null)",
                   c->name, path, SHOW(c, type));
}

static int check_decoder(Ctx *c, const cJSON *d) {
    const char *type = type_of(d);
    if (absent(d) || !type)
        return err_set(c->err, "%s: decoder: missing (expected {\"type\": \"ByteLevel\"})", c->name);
    if (strcmp(type, "ByteLevel"))
        return err_set(c->err, "%s: decoder.type \"%s\" is not supported (expected ByteLevel)",
                       c->name, SHOW(c, type));
    return 0;
}

/* ---- whole file ---------------------------------------------------------------- */

/* Checks ids and finds how many id slots the file needs. */
static int scan_ids(Ctx *c, const cJSON *vocab, const cJSON *added, int *n_ids) {
    int max_id = -1, count = 0, i = 0;
    for (const cJSON *x = vocab->child; x; x = x->next, i++, count++) {
        int id;
        if (!as_id(x, &id))
            return err_set(c->err, "%s: model.vocab[\"%s\"]: expected a non-negative integer id",
                           c->name, SHOW(c, x->string));
        if (check_utf8(c, x->string, "model.vocab", i)) return -1;
        if (id > max_id) max_id = id;
    }
    i = 0;
    for (const cJSON *x = added ? added->child : NULL; x; x = x->next, i++, count++) {
        int id;
        if (!cJSON_IsObject(x) || !as_id(get(x, "id"), &id))
            return err_set(c->err, "%s: added_tokens[%d].id: expected a non-negative integer", c->name, i);
        if (id > max_id) max_id = id;
    }
    if ((long)max_id >= 2L * count + ID_SLACK)
        return err_set(c->err, "%s: token id %d is far beyond the %d tokens the file defines", c->name,
                       max_id, count);
    *n_ids = max_id + 1;
    return 0;
}

static int load_root(Ctx *c, Tokenizer *t, const cJSON *root) {
    if (!cJSON_IsObject(root)) return err_set(c->err, "%s: expected a JSON object at the top", c->name);
    const cJSON *model = get(root, "model");
    if (absent(model))
        return err_set(c->err, "%s: missing \"model\" (expected {\"type\": \"BPE\", ...})", c->name);
    const char *type = type_of(model);
    if (!type) return err_set(c->err, "%s: model: missing \"type\" (expected \"BPE\")", c->name);
    if (strcmp(type, "BPE"))
        return err_set(c->err, "%s: model.type \"%s\" is not supported (expected \"BPE\")", c->name, SHOW(c, type));
    const cJSON *vocab = get(model, "vocab");
    if (!cJSON_IsObject(vocab))
        return err_set(c->err, "%s: model.vocab: expected an object mapping tokens to ids", c->name);
    const cJSON *added = get(root, "added_tokens");
    if (!absent(added) && !cJSON_IsArray(added))
        return err_set(c->err, "%s: added_tokens: expected a list", c->name);
    if (absent(added)) added = NULL;

    int n_ids = 0;
    if (scan_ids(c, vocab, added, &n_ids)) return -1;
    HfModel *m = t->hf;
    int nv = cJSON_GetArraySize(vocab);
    tokvocab_init(&t->vocab, n_ids);
    t->piece_map = strmap_new((size_t)nv + 300);
    m->raw_map = strmap_new((size_t)nv);
    if (load_vocab(c, t, vocab, n_ids) || load_merges(c, t, get(model, "merges")) ||
        check_model_options(c, t, model))
        return -1;
    if (load_normalizer(c, m, get(root, "normalizer"), "normalizer")) return -1;
    if (added && load_added(c, t, added)) return -1;
    if (!added) {
        added_matcher_build(&m->raw_added, NULL, 0);
        added_matcher_build(&m->norm_added, NULL, 0);
    }
    const cJSON *pre = get(root, "pre_tokenizer");
    if (!absent(pre) && load_pre(c, m, pre, "pre_tokenizer")) return -1;
    int byte_level_at = -1;
    for (int i = 0; i < m->n_steps; i++)
        if (m->steps[i].kind == PRE_BYTE_LEVEL) {
            if (byte_level_at >= 0)
                return err_set(c->err, "%s: pre_tokenizer: more than one ByteLevel step", c->name);
            byte_level_at = i;
        }
    if (byte_level_at < 0 || byte_level_at != m->n_steps - 1)
        return err_set(c->err, "%s: pre_tokenizer: expected a ByteLevel step last (softcot supports byte-level BPE)",
                       c->name);
    if (load_post(c, t, get(root, "post_processor"), "post_processor")) return -1;
    if (check_decoder(c, get(root, "decoder"))) return -1;
    t->bos_id = m->n_prefix > 0 ? m->prefix[0] : -1;
    t->eos_id = -1;
    return 0;
}

/* 1 if text ends inside a string or with an open { or [: the file was cut short.
 * (cJSON reports where it gave up, which for a cut inside a long string is the string's
 * start, so the position alone cannot tell truncation from a syntax error.) */
static int json_truncated(const char *text, size_t len) {
    long depth = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return in_str || depth > 0 || len == 0;
}

static cJSON *parse_json(const char *text, size_t len, const char *name, Err *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root) return root;
    if (json_truncated(text, len)) {
        err_set(err, "%s: invalid JSON: unexpected end of file after %zu bytes (truncated?)", name, len);
        return NULL;
    }
    size_t pos = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n')
            line++, col = 1;
        else
            col++;
    }
    err_set(err, "%s: invalid JSON at line %zu, column %zu", name, line, col);
    return NULL;
}

static int token_id_for(Ctx *c, Tokenizer *t, const cJSON *root, const char *key, int *out) {
    const cJSON *x = get(root, key);
    if (absent(x)) return 0;
    if (cJSON_IsObject(x)) x = get(x, "content");
    if (!cJSON_IsString(x))
        return err_set(c->err, "%s: %s: expected a string, {\"content\": ...} or null", c->name, key);
    int id = strmap_get(t->piece_map, x->valuestring, strlen(x->valuestring));
    if (id < 0)
        return err_set(c->err, "%s: %s \"%s\" is not a token of the tokenizer", c->name, key,
                       SHOW(c, x->valuestring));
    *out = id;
    return 0;
}

static int load_config(Tokenizer *t, const char *cfg, size_t len, const char *name, Err *err) {
    cJSON *root = parse_json(cfg, len, name, err);
    if (!root) return -1;
    Ctx c = {.name = name, .err = err};
    int rc = 0;
    if (!cJSON_IsObject(root))
        rc = err_set(err, "%s: expected a JSON object at the top", name);
    if (!rc) rc = token_id_for(&c, t, root, "bos_token", &t->bos_id);
    if (!rc) rc = token_id_for(&c, t, root, "eos_token", &t->eos_id);
    cJSON_Delete(root);
    return rc;
}

int hf_load(Tokenizer *t, const char *json, size_t len, const char *json_name, const char *cfg,
            size_t cfg_len, const char *cfg_name, Err *err) {
    t->kind = TOK_HF;
    t->hf = xcalloc(1, sizeof *t->hf);
    t->hf->unk_id = -1;
    cJSON *root = parse_json(json, len, json_name, err);
    if (!root) return -1;
    Ctx c = {.name = json_name, .err = err};
    int rc = load_root(&c, t, root);
    cJSON_Delete(root);
    if (rc) return -1;
    if (cfg) return load_config(t, cfg, cfg_len, cfg_name, err);
    return 0;
}

void hf_model_free(HfModel *m) {
    if (!m) return;
    for (int i = 0; i < m->n_steps; i++) hf_regex_free(m->steps[i].re);
    free(m->steps);
    strmap_free(m->raw_map);
    pairmap_free(m->merges);
    added_matcher_free(&m->raw_added);
    added_matcher_free(&m->norm_added);
    free(m->prefix);
    free(m->suffix);
    free(m);
}
