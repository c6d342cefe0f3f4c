#include "text/bpe_merge.h"

#include <stdlib.h>

#include "core/check.h"

typedef struct {
    int id; /* -1 once merged into its left neighbour */
    int prev, next;
} Sym;

/* A candidate merge of the symbols at pos and right, valid only while both still hold
 * the ids they had when it was pushed and are still adjacent. */
typedef struct {
    int rank, pos, right, left_id, right_id, merged;
} Cand;

static int cand_less(const Cand *a, const Cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

typedef struct {
    Cand *v;
    size_t n, cap;
    BpeScratch *owner;
} Heap;

static void heap_push(Heap *h, Cand c) {
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = xrealloc(h->v, h->cap * sizeof *h->v);
        h->owner->heap = h->v;
        h->owner->heap_cap = h->cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
}

static Cand heap_pop(Heap *h) {
    Cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const Cand *best = &last;
        if (l < h->n && cand_less(&h->v[l], best)) m = l, best = &h->v[l];
        if (r < h->n && cand_less(&h->v[r], best)) m = r;
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static void try_push(Heap *h, const Sym *s, int pos, int right, BpePairFn pair, const void *ctx) {
    int rank, merged;
    if (pair(ctx, s[pos].id, s[right].id, &rank, &merged))
        heap_push(h, (Cand){rank, pos, right, s[pos].id, s[right].id, merged});
}

int bpe_merge(int *ids, int n, BpePairFn pair, const void *ctx, BpeScratch *scratch) {
    if (n < 2) return n;
    if (scratch->sym_cap < (size_t)n) {
        scratch->sym_cap = (size_t)n * 2;
        scratch->sym = xrealloc(scratch->sym, scratch->sym_cap * sizeof(Sym));
    }
    Sym *s = scratch->sym;
    Heap h = {scratch->heap, 0, scratch->heap_cap, scratch};
    for (int i = 0; i < n; i++) s[i] = (Sym){ids[i], i - 1, i + 1 < n ? i + 1 : -1};
    for (int i = 0; i + 1 < n; i++) try_push(&h, s, i, i + 1, pair, ctx);
    while (h.n) {
        Cand c = heap_pop(&h);
        if (s[c.pos].id != c.left_id || s[c.pos].next != c.right || s[c.right].id != c.right_id)
            continue;
        int nx = s[c.right].next;
        s[c.pos].id = c.merged;
        s[c.pos].next = nx;
        if (nx >= 0) s[nx].prev = c.pos;
        s[c.right].id = -1;
        if (s[c.pos].prev >= 0) try_push(&h, s, s[c.pos].prev, c.pos, pair, ctx);
        if (nx >= 0) try_push(&h, s, c.pos, nx, pair, ctx);
    }
    int k = 0;
    for (int i = 0; i >= 0; i = s[i].next) ids[k++] = s[i].id;
    return k;
}

void bpe_scratch_free(BpeScratch *s) {
    free(s->sym);
    free(s->heap);
    s->sym = s->heap = NULL;
    s->sym_cap = s->heap_cap = 0;
}
