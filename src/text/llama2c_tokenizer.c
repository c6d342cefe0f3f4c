/* The llama2.c tokenizer (tokenizer.bin / tok512.bin), with the semantics of Karpathy's
 * run.c: encode adds a dummy-prefix " " token, looks up each UTF-8 character (falling
 * back to the byte tokens <0x00>..<0xFF> at id byte+3), then repeatedly merges the adjacent pair
 * whose concatenation is the highest-scoring token, leftmost first. run.c rescans all
 * pairs after each merge (O(n^2)); here the same merge order comes from a heap.
 * Decoding drops a piece's leading space right after BOS and turns byte tokens into bytes. */
#include <stdlib.h>
#include <string.h>

#include "text/bpe_merge.h"
#include "text/tok_internal.h"

enum { L2C_BOS = 1, L2C_EOS = 2, L2C_BYTE0 = 3 };

struct L2cModel {
    int n;
    int *rank; /* merge priority of each token as a merge result: lower first; -1 never */
};

static uint32_t rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float rd_f32(const unsigned char *p) {
    uint32_t u = rd_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* run.c accepts a merge only if its score beats the initial best of -1e10. */
static int eligible(float s) { return s > -1e10f; }

typedef struct {
    const float *score;
    int id;
} ScoreIdx;

static int by_score_desc(const void *a, const void *b) {
    const ScoreIdx *x = a, *y = b;
    if (x->score[x->id] > y->score[y->id]) return -1;
    if (x->score[x->id] < y->score[y->id]) return 1;
    return x->id - y->id;
}

/* Equal scores share a rank, so ties fall to the leftmost pair exactly as in run.c's
 * strict ">" scan. */
static void build_ranks(L2cModel *m, const float *score) {
    ScoreIdx *v = xmalloc((size_t)m->n * sizeof *v);
    int k = 0;
    for (int i = 0; i < m->n; i++) {
        m->rank[i] = -1;
        if (eligible(score[i])) v[k++] = (ScoreIdx){score, i};
    }
    qsort(v, (size_t)k, sizeof *v, by_score_desc);
    int r = 0;
    for (int i = 0; i < k; i++) {
        if (i > 0 && score[v[i].id] < score[v[i - 1].id]) r++;
        m->rank[v[i].id] = r;
    }
    free(v);
}

static int parse_byte_piece(const char *p, size_t n) {
    if (n != 6 || memcmp(p, "<0x", 3) || p[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

int l2c_load(Tokenizer *t, const char *data, size_t len, const char *name, Err *err) {
    const unsigned char *d = (const unsigned char *)data;
    t->kind = TOK_LLAMA2C;
    t->strip_space_after_bos = 1;
    if (len < 4) return err_set(err, "%s: too short for a llama2.c tokenizer (expected an int32 max_token_length)", name);
    int32_t max_len = (int32_t)rd_u32(d);
    if (max_len <= 0)
        return err_set(err, "%s: max_token_length %d at byte 0 (expected a positive int32)", name, max_len);
    /* First pass: count tokens and validate the framing. */
    int n = 0;
    for (size_t off = 4; off < len; n++) {
        if (len - off < 8)
            return err_set(err, "%s: token %d at byte %zu: truncated (expected float32 score and int32 length)",
                           name, n, off);
        int32_t l = (int32_t)rd_u32(d + off + 4);
        if (l < 0 || (size_t)l > len - off - 8)
            return err_set(err, "%s: token %d at byte %zu: length %d exceeds the %zu bytes left", name, n,
                           off, l, len - off - 8);
        off += 8 + (size_t)l;
    }
    if (n < 3) return err_set(err, "%s: %d tokens (expected at least <unk>, <s>, </s>)", name, n);
    L2cModel *m = xcalloc(1, sizeof *m);
    t->l2c = m;
    m->n = n;
    m->rank = xmalloc((size_t)n * sizeof *m->rank);
    float *score = xmalloc((size_t)n * sizeof *score);
    tokvocab_init(&t->vocab, n);
    t->piece_map = strmap_new((size_t)n);
    size_t off = 4;
    for (int i = 0; i < n; i++) {
        score[i] = rd_f32(d + off);
        size_t l = rd_u32(d + off + 4);
        const char *p = data + off + 8;
        int byte = parse_byte_piece(p, l);
        char b = (char)byte;
        if (byte >= 0)
            tokvocab_set(&t->vocab, i, p, l, &b, 1, i < 3);
        else
            tokvocab_set(&t->vocab, i, p, l, p, l, i < 3);
        /* run.c's bsearch over duplicates is unspecified; the first id is kept. */
        strmap_put(t->piece_map, p, l, i);
        off += 8 + l;
    }
    build_ranks(m, score);
    free(score);
    t->bos_id = L2C_BOS;
    t->eos_id = L2C_EOS;
    return 0;
}

void l2c_model_free(L2cModel *m) {
    if (!m) return;
    free(m->rank);
    free(m);
}

typedef struct {
    const Tokenizer *t;
    ByteBuf *cat;
} PairCtx;

static int l2c_pair(const void *ctx, int a, int b, int *rank, int *merged) {
    const PairCtx *c = ctx;
    const TokVocab *v = &c->t->vocab;
    c->cat->n = 0;
    bytebuf_append(c->cat, v->pieces.p + v->piece_off[a], v->piece_len[a]);
    bytebuf_append(c->cat, v->pieces.p + v->piece_off[b], v->piece_len[b]);
    int id = strmap_get(c->t->piece_map, c->cat->p, c->cat->n);
    if (id < 0 || c->t->l2c->rank[id] < 0) return 0;
    *rank = c->t->l2c->rank[id];
    *merged = id;
    return 1;
}

int l2c_encode(const Tokenizer *t, const char *text, size_t len, int add_special, IntVec *out,
               Err *err) {
    IntVec ids = {0};
    if (add_special) intvec_push(&ids, L2C_BOS);
    if (len > 0) {
        int dummy = strmap_get(t->piece_map, " ", 1);
        if (dummy >= 0) intvec_push(&ids, dummy);
    }
    char buf[4];
    size_t bl = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c & 0xC0) != 0x80) bl = 0;
        buf[bl++] = (char)c;
        /* Gather a lead byte and up to three continuation bytes, as run.c does. */
        if (i + 1 < len && ((unsigned char)text[i + 1] & 0xC0) == 0x80 && bl < 4) continue;
        int id = strmap_get(t->piece_map, buf, bl);
        if (id >= 0) {
            intvec_push(&ids, id);
        } else {
            for (size_t k = 0; k < bl; k++) {
                int b = (unsigned char)buf[k] + L2C_BYTE0;
                if (b >= t->vocab.n_ids) {
                    free(ids.v);
                    return err_set(err, "%s: byte 0x%02X at offset %zu has no <0x%02X> token", t->name,
                                   (unsigned char)buf[k], i + 1 - bl + k, (unsigned char)buf[k]);
                }
                intvec_push(&ids, b);
            }
        }
        bl = 0;
    }
    ByteBuf cat = {0};
    BpeScratch bs = {0};
    PairCtx ctx = {t, &cat};
    int k = bpe_merge(ids.v, (int)ids.n, l2c_pair, &ctx, &bs);
    for (int i = 0; i < k; i++) intvec_push(out, ids.v[i]);
    bytebuf_free(&cat);
    bpe_scratch_free(&bs);
    free(ids.v);
    return 0;
}
