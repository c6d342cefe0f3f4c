/* Encoding with a Hugging Face tokenizer, in tokenizers' order: added tokens are cut
 * out of the raw text, each remaining segment is normalized (NFC), normalized added
 * tokens are cut out, the rest is pre-tokenized (Split regex, ByteLevel) into words,
 * each word goes through BPE, and the post-processor template wraps the result. */
#include <stdlib.h>
#include <string.h>

#include "text/bpe_merge.h"
#include "text/hf_model.h"
#include "text/nfc.h"
#include "text/tok_internal.h"
#include "text/utf8.h"

typedef struct {
    const HfModel *m;
    IntVec *out;
    RegexScratch rs;
    BpeScratch bs;
    IntVec word; /* symbol ids of the current word */
    Err *err;
} Enc;

static int merge_pair(const void *ctx, int a, int b, int *rank, int *merged) {
    return pairmap_get(((const HfModel *)ctx)->merges, a, b, rank, merged);
}

static void bpe_word(Enc *e, const char *w, size_t n) {
    const HfModel *m = e->m;
    if (m->ignore_merges) {
        int id = strmap_get(m->raw_map, w, n);
        if (id >= 0) {
            intvec_push(e->out, id);
            return;
        }
    }
    e->word.n = 0;
    int last_unk = 0;
    for (size_t i = 0; i < n; i++) {
        int id = m->byte_id[(unsigned char)w[i]];
        if (id < 0) {
            if (m->unk_id < 0) continue; /* tokenizers drops it when there is no unk */
            if (m->fuse_unk && last_unk) continue;
            id = m->unk_id;
            last_unk = 1;
        } else {
            last_unk = 0;
        }
        intvec_push(&e->word, id);
    }
    int k = bpe_merge(e->word.v, (int)e->word.n, merge_pair, m, &e->bs);
    for (int i = 0; i < k; i++) intvec_push(e->out, e->word.v[i]);
}

typedef struct {
    size_t start, end;
    int match;
} Seg;

/* Cuts s[0..n) by the step's regex and returns the pieces per its behavior. */
static int split_pieces(Enc *e, const PreStep *st, const char *s, size_t n, Seg **out, int *n_out) {
    Seg *seg = NULL;
    size_t nseg = 0, cap = 0, pos = 0;
#define PUSH(a, b, mt)                                                  \
    do {                                                                \
        if (nseg == cap) seg = xrealloc(seg, (cap = cap ? 2 * cap : 16) * sizeof *seg); \
        seg[nseg++] = (Seg){(a), (b), (mt)};                            \
    } while (0)
    for (;;) {
        size_t ms, me;
        int r = hf_regex_next(st->re, s, n, pos, &ms, &me, &e->rs, e->err);
        if (r < 0) {
            free(seg);
            return -1;
        }
        if (r == 0) break;
        if (ms > pos) PUSH(pos, ms, st->invert);
        PUSH(ms, me, !st->invert);
        pos = me;
    }
    if (pos < n) PUSH(pos, n, st->invert);
#undef PUSH
    /* Combine in place per behavior (tokenizers' SplitDelimiterBehavior). */
    size_t k = 0;
    for (size_t i = 0; i < nseg; i++) {
        Seg cur = seg[i];
        switch (st->behavior) {
        case SPLIT_ISOLATED:
            seg[k++] = cur;
            break;
        case SPLIT_REMOVED:
            if (!cur.match) seg[k++] = cur;
            break;
        case SPLIT_MERGED_WITH_PREVIOUS:
            if (cur.match && k > 0 && !seg[k - 1].match && seg[k - 1].end == cur.start) {
                seg[k - 1].end = cur.end;
                seg[k - 1].match = 1;
            } else {
                seg[k++] = cur;
            }
            break;
        case SPLIT_MERGED_WITH_NEXT:
            if (cur.match && i + 1 < nseg && !seg[i + 1].match) {
                cur.end = seg[i + 1].end;
                i++;
            }
            seg[k++] = cur;
            break;
        case SPLIT_CONTIGUOUS:
            if (cur.match && k > 0 && seg[k - 1].match)
                seg[k - 1].end = cur.end;
            else
                seg[k++] = cur;
            break;
        }
    }
    *out = seg;
    *n_out = (int)k;
    return 0;
}

static int pretokenize(Enc *e, int step, const char *s, size_t n);

/* Runs step's regex (if any) over s and hands each piece to the next step. */
static int split_and_continue(Enc *e, int step, const char *s, size_t n) {
    const PreStep *st = &e->m->steps[step];
    if (!st->re) return pretokenize(e, step + 1, s, n);
    Seg *seg;
    int k;
    if (split_pieces(e, st, s, n, &seg, &k)) return -1;
    int rc = 0;
    for (int i = 0; !rc && i < k; i++)
        rc = pretokenize(e, step + 1, s + seg[i].start, seg[i].end - seg[i].start);
    free(seg);
    return rc;
}

static int pretokenize(Enc *e, int step, const char *s, size_t n) {
    if (n == 0) return 0;
    if (step == e->m->n_steps) {
        bpe_word(e, s, n);
        return 0;
    }
    const PreStep *st = &e->m->steps[step];
    if (st->kind == PRE_BYTE_LEVEL && st->add_prefix_space && s[0] != ' ') {
        char *p = xmalloc(n + 1);
        p[0] = ' ';
        memcpy(p + 1, s, n);
        int rc = split_and_continue(e, step, p, n + 1);
        free(p);
        return rc;
    }
    return split_and_continue(e, step, s, n);
}

/* A normalized segment: cut out normalized added tokens, pre-tokenize the rest. */
static int encode_normalized(Enc *e, const char *s, size_t n) {
    size_t pos = 0, ms, me;
    int id;
    while (added_matcher_next(&e->m->norm_added, s, n, pos, &id, &ms, &me)) {
        if (pretokenize(e, 0, s + pos, ms - pos)) return -1;
        intvec_push(e->out, id);
        pos = me;
    }
    return pretokenize(e, 0, s + pos, n - pos);
}

static int encode_segment(Enc *e, const char *s, size_t n, ByteBuf *norm) {
    if (n == 0) return 0;
    if (!e->m->nfc) return encode_normalized(e, s, n);
    norm->n = 0;
    if (text_nfc(s, n, norm)) return err_set(e->err, "NFC normalization failed");
    return encode_normalized(e, norm->p, norm->n);
}

int hf_encode(const Tokenizer *t, const char *text, size_t len, int add_special, IntVec *out,
              Err *err) {
    size_t bad = utf8_first_invalid(text, len);
    if (bad < len)
        return err_set(err, "invalid UTF-8 at byte %zu (0x%02X): text must be UTF-8", bad,
                       (unsigned char)text[bad]);
    const HfModel *m = t->hf;
    Enc e = {.m = m, .out = out, .err = err};
    ByteBuf norm = {0};
    int rc = 0;
    if (add_special)
        for (int i = 0; i < m->n_prefix; i++) intvec_push(out, m->prefix[i]);
    size_t pos = 0, ms, me;
    int id;
    while (!rc && added_matcher_next(&m->raw_added, text, len, pos, &id, &ms, &me)) {
        rc = encode_segment(&e, text + pos, ms - pos, &norm);
        intvec_push(out, id);
        pos = me;
    }
    if (!rc) rc = encode_segment(&e, text + pos, len - pos, &norm);
    if (!rc && add_special)
        for (int i = 0; i < m->n_suffix; i++) intvec_push(out, m->suffix[i]);
    bytebuf_free(&norm);
    regex_scratch_free(&e.rs);
    bpe_scratch_free(&e.bs);
    free(e.word.v);
    return rc;
}
