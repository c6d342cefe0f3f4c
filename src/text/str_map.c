#include "text/str_map.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"

static uint64_t mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0x100000001B3ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x87c37b91114253d5ULL;
        h = (h << 31) | (h >> 33);
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return mix64(h ^ w);
}

typedef struct {
    uint32_t hash; /* low bits of the full hash, to skip most key compares */
    int32_t value; /* -1: empty */
    uint32_t off, len;
} Slot;

struct StrMap {
    Slot *slots;
    size_t cap, count; /* cap is a power of two, kept at least twice count */
    char *keys;
    size_t keys_n, keys_cap;
};

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

StrMap *strmap_new(size_t expected) {
    StrMap *m = xcalloc(1, sizeof *m);
    m->cap = pow2_at_least(expected * 2 + 1);
    m->slots = xmalloc(m->cap * sizeof *m->slots);
    for (size_t i = 0; i < m->cap; i++) m->slots[i].value = -1;
    return m;
}

void strmap_free(StrMap *m) {
    if (!m) return;
    free(m->slots);
    free(m->keys);
    free(m);
}

size_t strmap_count(const StrMap *m) { return m->count; }

static void strmap_grow(StrMap *m) {
    size_t ncap = m->cap * 2;
    Slot *ns = xmalloc(ncap * sizeof *ns);
    for (size_t i = 0; i < ncap; i++) ns[i].value = -1;
    for (size_t i = 0; i < m->cap; i++) {
        Slot s = m->slots[i];
        if (s.value < 0) continue;
        size_t j = hash_bytes(m->keys + s.off, s.len) & (ncap - 1);
        while (ns[j].value >= 0) j = (j + 1) & (ncap - 1);
        ns[j] = s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
}

int strmap_put(StrMap *m, const char *key, size_t n, int value) {
    if ((m->count + 1) * 2 > m->cap) strmap_grow(m);
    uint64_t h = hash_bytes(key, n);
    size_t j = h & (m->cap - 1);
    for (;; j = (j + 1) & (m->cap - 1)) {
        Slot *s = &m->slots[j];
        if (s->value < 0) break;
        if (s->hash == (uint32_t)h && s->len == n && (n == 0 || !memcmp(m->keys + s->off, key, n)))
            return s->value;
    }
    if (m->keys_n + n > m->keys_cap) {
        m->keys_cap = pow2_at_least(m->keys_n + n + 1024);
        m->keys = xrealloc(m->keys, m->keys_cap);
    }
    if (n) memcpy(m->keys + m->keys_n, key, n);
    m->slots[j] = (Slot){(uint32_t)h, value, (uint32_t)m->keys_n, (uint32_t)n};
    m->keys_n += n;
    m->count++;
    return -1;
}

int strmap_get(const StrMap *m, const char *key, size_t n) {
    uint64_t h = hash_bytes(key, n);
    for (size_t j = h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const Slot *s = &m->slots[j];
        if (s->value < 0) return -1;
        if (s->hash == (uint32_t)h && s->len == n && (n == 0 || !memcmp(m->keys + s->off, key, n)))
            return s->value;
    }
}

typedef struct {
    uint64_t key; /* UINT64_MAX: empty (ids are non-negative int, so never all ones) */
    int32_t rank, id;
} PairSlot;

struct PairMap {
    PairSlot *slots;
    size_t cap, count;
};

static uint64_t pair_key(int a, int b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

PairMap *pairmap_new(size_t expected) {
    PairMap *m = xcalloc(1, sizeof *m);
    m->cap = pow2_at_least(expected * 2 + 1);
    m->slots = xmalloc(m->cap * sizeof *m->slots);
    for (size_t i = 0; i < m->cap; i++) m->slots[i].key = UINT64_MAX;
    return m;
}

void pairmap_free(PairMap *m) {
    if (!m) return;
    free(m->slots);
    free(m);
}

static void pairmap_grow(PairMap *m) {
    size_t ncap = m->cap * 2;
    PairSlot *ns = xmalloc(ncap * sizeof *ns);
    for (size_t i = 0; i < ncap; i++) ns[i].key = UINT64_MAX;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == UINT64_MAX) continue;
        size_t j = mix64(m->slots[i].key) & (ncap - 1);
        while (ns[j].key != UINT64_MAX) j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
}

void pairmap_put(PairMap *m, int a, int b, int rank, int id) {
    if ((m->count + 1) * 2 > m->cap) pairmap_grow(m);
    uint64_t k = pair_key(a, b);
    size_t j = mix64(k) & (m->cap - 1);
    while (m->slots[j].key != UINT64_MAX && m->slots[j].key != k) j = (j + 1) & (m->cap - 1);
    if (m->slots[j].key == UINT64_MAX) m->count++;
    m->slots[j] = (PairSlot){k, rank, id};
}

int pairmap_get(const PairMap *m, int a, int b, int *rank, int *id) {
    uint64_t k = pair_key(a, b);
    for (size_t j = mix64(k) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const PairSlot *s = &m->slots[j];
        if (s->key == k) {
            *rank = s->rank;
            *id = s->id;
            return 1;
        }
        if (s->key == UINT64_MAX) return 0;
    }
}
