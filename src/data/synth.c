/* The synthetic arithmetic word-problem generator (see synth.h). Templates are short and
 * use a small vocabulary on purpose: the built-in default model is tiny and must be able
 * to learn the task on two CPU cores. */
#include "data/synth.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/rng.h"
#include "core/bytebuf.h"

typedef struct {
    const char *name, *he, *him, *his;
} Person;

static const Person PEOPLE[] = {
    {"Tom", "he", "him", "his"},   {"Lily", "she", "her", "her"}, {"Ben", "he", "him", "his"},
    {"Mia", "she", "her", "her"},  {"Sam", "he", "him", "his"},   {"Anna", "she", "her", "her"},
    {"Max", "he", "him", "his"},   {"Sue", "she", "her", "her"},  {"Tim", "he", "him", "his"},
    {"Amy", "she", "her", "her"},  {"Jack", "he", "him", "his"},  {"Emma", "she", "her", "her"},
    {"Leo", "he", "him", "his"},   {"Zoe", "she", "her", "her"},  {"Dan", "he", "him", "his"},
    {"Kim", "she", "her", "her"},
};
enum { N_PEOPLE = sizeof PEOPLE / sizeof PEOPLE[0] };

typedef struct {
    const char *one, *many;
} Thing;

static const Thing THINGS[] = {
    {"apple", "apples"}, {"pen", "pens"},       {"book", "books"},     {"card", "cards"},
    {"ball", "balls"},   {"toy", "toys"},       {"cookie", "cookies"}, {"sticker", "stickers"},
    {"shell", "shells"}, {"marble", "marbles"}, {"egg", "eggs"},       {"cup", "cups"},
    {"flower", "flowers"}, {"coin", "coins"},   {"rock", "rocks"},     {"candy", "candies"},
};
enum { N_THINGS = sizeof THINGS / sizeof THINGS[0] };

void synth_config_default(SynthConfig *c) {
    memset(c, 0, sizeof *c);
    c->seed = 1;
    c->min_steps = 1;
    c->max_steps = 3;
    c->max_number = 20;
    c->max_factor = 5;
    c->max_value = 200;
    strcpy(c->ops, "+-*/");
    c->test_permille = 100;
    c->unique = 1;
}

static int parse_long(const char *v, const char *key, long lo, long hi, long *out, Err *err) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return err_set(err, "synthetic %s: expected an integer in [%ld, %ld], got '%s'", key, lo, hi, v);
    *out = x;
    return 0;
}

int synth_config_set(SynthConfig *c, const char *key, const char *value, Err *err) {
    char k[32];
    size_t n = strlen(key);
    if (n >= sizeof k) return err_set(err, "unknown synthetic knob '%s'", key);
    for (size_t i = 0; i <= n; i++) k[i] = key[i] == '-' ? '_' : key[i];
    long x = 0;
    if (!strcmp(k, "seed")) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-')
            return err_set(err, "synthetic seed: expected a non-negative integer, got '%s'", value);
        c->seed = s;
        return 0;
    }
    if (!strcmp(k, "ops")) {
        size_t m = strlen(value);
        if (m == 0 || m > 4) return err_set(err, "synthetic ops: expected 1 to 4 of '+-*/', got '%s'", value);
        for (size_t i = 0; i < m; i++)
            if (!strchr("+-*/", value[i]) || memchr(value, value[i], i))
                return err_set(err, "synthetic ops: expected distinct characters from '+-*/', got '%s'", value);
        strcpy(c->ops, value);
        return 0;
    }
    if (!strcmp(k, "test_fraction")) {
        char *end;
        errno = 0;
        double f = strtod(value, &end);
        if (errno || end == value || *end || !(f > 0 && f < 1))
            return err_set(err, "synthetic test_fraction: expected a number in (0, 1), got '%s'", value);
        c->test_permille = (int)(f * 1000 + 0.5);
        if (c->test_permille < 1) c->test_permille = 1;
        if (c->test_permille > 999) c->test_permille = 999;
        return 0;
    }
    struct {
        const char *name;
        int *dst;
        long lo, hi;
    } ints[] = {
        {"min_steps", &c->min_steps, 1, 20},   {"max_steps", &c->max_steps, 1, 20},
        {"max_number", &c->max_number, 1, 100000}, {"max_factor", &c->max_factor, 2, 100},
        {"max_value", &c->max_value, 2, 100000000}, {"unique", &c->unique, 0, 1},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (strcmp(k, ints[i].name)) continue;
        if (parse_long(value, ints[i].name, ints[i].lo, ints[i].hi, &x, err)) return -1;
        *ints[i].dst = (int)x;
        return 0;
    }
    return err_set(err, "unknown synthetic knob '%s' (expected seed, min_steps, max_steps, max_number, max_factor, "
                        "max_value, ops, test_fraction or unique)", key);
}

int synth_config_check(const SynthConfig *c, Err *err) {
    if (c->min_steps < 1 || c->max_steps > 20 || c->min_steps > c->max_steps)
        return err_set(err, "synthetic: need 1 <= min_steps <= max_steps <= 20 (got %d, %d)", c->min_steps, c->max_steps);
    if (c->max_number < 1) return err_set(err, "synthetic: max_number must be >= 1 (got %d)", c->max_number);
    if (c->max_factor < 2) return err_set(err, "synthetic: max_factor must be >= 2 (got %d)", c->max_factor);
    if (c->max_value < c->max_number)
        return err_set(err, "synthetic: max_value (%d) must be >= max_number (%d)", c->max_value, c->max_number);
    if (!c->ops[0]) return err_set(err, "synthetic: ops is empty");
    if (c->test_permille < 1 || c->test_permille > 999)
        return err_set(err, "synthetic: test fraction must be in (0, 1) (got %d per mille)", c->test_permille);
    return 0;
}

int synth_split_parse(const char *s, SynthSplit *split, Err *err) {
    if (!strcmp(s, "train")) *split = SYNTH_TRAIN;
    else if (!strcmp(s, "test")) *split = SYNTH_TEST;
    else return err_set(err, "unknown split '%s' (expected train or test)", s);
    return 0;
}

static uint64_t fnv1a64(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

SynthSplit synth_split_of(const char *question, int test_permille) {
    /* a fixed salt, not the seed: the split is a property of the question text */
    uint64_t h = rng_splitmix64(fnv1a64(question) ^ 0x53706c6974ull);
    return (int)(h % 1000) < test_permille ? SYNTH_TEST : SYNTH_TRAIN;
}

/* Sequential uniform draws from the Philox stream of one problem. */
typedef struct {
    RngKey key;
    uint32_t next;
} Draw;

static int draw_int(Draw *d, int lo, int hi) {
    if (hi <= lo) return lo;
    int span = hi - lo + 1;
    int k = (int)(rng_uniform(d->key, d->next++) * (float)span);
    return lo + (k >= span ? span - 1 : k);
}

static const char *plural(const Thing *t, long n) { return n == 1 ? t->one : t->many; }

static void put_cap(ByteBuf *s, const char *w) {
    bytebuf_putc(s, (char)(w[0] - 'a' + 'A'));
    bytebuf_puts(s, w + 1);
}

/* Which operations are possible at amount v, as characters; returns the count. */
static int feasible_ops(const SynthConfig *c, long v, char *out) {
    int n = 0;
    for (const char *o = c->ops; *o; o++) {
        int ok = 0;
        switch (*o) {
        case '+': ok = v + 1 <= c->max_value; break;
        case '-': ok = v >= 2; break;
        case '*': ok = v * 2 <= c->max_value; break;
        case '/':
            for (long d = 2; d <= c->max_factor && d <= v; d++)
                if (v % d == 0) ok = 1;
            break;
        }
        if (ok) out[n++] = *o;
    }
    return n;
}

int synth_problem(const SynthConfig *c, uint32_t j, Problem *p) {
    memset(p, 0, sizeof *p);
    Draw d = {.key = {.seed = c->seed, .prompt = j, .purpose = RNG_PURPOSE_DATA}};
    const Person *who = &PEOPLE[draw_int(&d, 0, N_PEOPLE - 1)];
    const Thing *thing = &THINGS[draw_int(&d, 0, N_THINGS - 1)];
    int steps = draw_int(&d, c->min_steps, c->max_steps);
    long v = draw_int(&d, 1, c->max_number);
    ByteBuf q = {0}, s = {0};
    bytebuf_printf(&q, "%s has %ld %s.", who->name, v, plural(thing, v));
    bytebuf_printf(&s, "%s has %ld %s.", who->name, v, plural(thing, v));
    for (int k = 0; k < steps; k++) {
        char ops[4];
        int nops = feasible_ops(c, v, ops);
        if (nops == 0) {
            bytebuf_free(&q);
            bytebuf_free(&s);
            return 0;
        }
        char op = ops[draw_int(&d, 0, nops - 1)];
        int variant = draw_int(&d, 0, 2);
        long b = 0, r = 0;
        const char *sym = "+";
        ByteBuf ev = {0}; /* the event sentence without its final stop, shared by Q and S */
        if (op == '+') {
            long hi = c->max_value - v < c->max_number ? c->max_value - v : c->max_number;
            b = draw_int(&d, 1, (int)hi);
            r = v + b;
            if (variant == 0) {
                put_cap(&ev, who->he);
                bytebuf_printf(&ev, " buys %ld more", b);
            } else if (variant == 1) {
                put_cap(&ev, who->he);
                bytebuf_printf(&ev, " finds %ld more", b);
            } else {
                const Person *o = &PEOPLE[(who - PEOPLE + 1 + draw_int(&d, 0, N_PEOPLE - 2)) % N_PEOPLE];
                bytebuf_printf(&ev, "%s gives %s %ld more", o->name, who->him, b);
            }
        } else if (op == '-') {
            long hi = v - 1 < c->max_number ? v - 1 : c->max_number;
            b = draw_int(&d, 1, (int)hi);
            r = v - b;
            sym = "-";
            put_cap(&ev, who->he);
            if (variant == 0) {
                const Person *o = &PEOPLE[(who - PEOPLE + 1 + draw_int(&d, 0, N_PEOPLE - 2)) % N_PEOPLE];
                bytebuf_printf(&ev, " gives %ld to %s", b, o->name);
            } else if (variant == 1) {
                bytebuf_printf(&ev, " loses %ld", b);
            } else {
                bytebuf_printf(&ev, " sells %ld", b);
            }
        } else if (op == '*') {
            long hi = c->max_value / v < c->max_factor ? c->max_value / v : c->max_factor;
            b = draw_int(&d, 2, (int)hi);
            r = v * b;
            sym = "*";
            put_cap(&ev, who->he);
            bytebuf_printf(&ev, " ends up with %ld times as many", b);
        } else {
            long divs[100];
            int nd = 0;
            for (long x = 2; x <= c->max_factor && x <= v; x++)
                if (v % x == 0) divs[nd++] = x;
            b = divs[draw_int(&d, 0, nd - 1)];
            r = v / b;
            sym = "/";
            put_cap(&ev, who->he);
            bytebuf_printf(&ev, " splits them into %ld equal groups and keeps one", b);
        }
        bytebuf_printf(&q, " %s.", ev.p);
        bytebuf_printf(&s, "%s%s, so %s has %ld %s %ld = %ld %s.", k == 0 ? " " : "\n", ev.p, who->he, v, sym, b, r,
                    plural(thing, r));
        bytebuf_free(&ev);
        v = r;
    }
    bytebuf_printf(&q, " How many %s does %s have now?", thing->many, who->name);
    char gold[32];
    snprintf(gold, sizeof gold, "%ld", v);
    p->question = bytebuf_take(&q);
    p->solution = bytebuf_take(&s);
    p->gold = xstrdup(gold);
    return 1;
}

/* Open-addressing set of 64-bit question hashes (0 marks an empty slot). */
typedef struct {
    uint64_t *slot;
    size_t cap, n;
} HashSet;

static int hashset_add(HashSet *h, uint64_t x) {
    if (x == 0) x = 1;
    if (2 * (h->n + 1) > h->cap) {
        HashSet g = {.cap = h->cap ? 2 * h->cap : 1024};
        g.slot = xcalloc(g.cap, sizeof(uint64_t));
        for (size_t i = 0; i < h->cap; i++)
            if (h->slot[i]) hashset_add(&g, h->slot[i]);
        free(h->slot);
        *h = g;
    }
    for (size_t i = x & (h->cap - 1);; i = (i + 1) & (h->cap - 1)) {
        if (h->slot[i] == x) return 0;
        if (!h->slot[i]) {
            h->slot[i] = x;
            h->n++;
            return 1;
        }
    }
}

int synth_generate(const SynthConfig *c, SynthSplit split, int n, Dataset *out, Err *err) {
    memset(out, 0, sizeof *out);
    if (synth_config_check(c, err)) return -1;
    if (n < 1) return err_set(err, "synthetic: need at least one problem (got n = %d)", n);
    out->items = xcalloc((size_t)n, sizeof(Problem));
    HashSet seen = {0};
    /* enough draws for any reasonable request; a too-small problem space ends here */
    uint64_t limit = 200000 + 400 * (uint64_t)n;
    if (limit > UINT32_MAX) limit = UINT32_MAX;
    uint32_t j = 0;
    for (; out->n < n && j < limit; j++) {
        Problem p;
        if (!synth_problem(c, j, &p)) continue;
        if (synth_split_of(p.question, c->test_permille) != split || (c->unique && !hashset_add(&seen, fnv1a64(p.question)))) {
            free(p.question);
            free(p.gold);
            free(p.solution);
            continue;
        }
        out->items[out->n++] = p;
    }
    free(seen.slot);
    if (out->n < n) {
        int got = out->n;
        dataset_free(out);
        return err_set(err, "synthetic: only %d of %d %s problems after %u draws; allow more steps, a larger "
                            "max_number or more ops, or ask for fewer",
                       got, n, split == SYNTH_TEST ? "test" : "train", j);
    }
    return 0;
}

int dataset_write_gsm8k(const Dataset *ds, const char *path, Err *err) {
    AtomicFile af;
    if (atomic_open(&af, path, err)) return -1;
    ByteBuf answer = {0};
    for (int i = 0; i < ds->n; i++) {
        const Problem *p = &ds->items[i];
        answer.n = 0;
        if (p->solution && p->solution[0]) bytebuf_printf(&answer, "%s\n", p->solution);
        bytebuf_printf(&answer, "#### %s", p->gold);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "question", p->question);
        cJSON_AddStringToObject(o, "answer", answer.p);
        char *line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        CHECK(line != NULL);
        int bad = fputs(line, af.fp) < 0 || fputc('\n', af.fp) == EOF;
        free(line);
        if (bad) {
            bytebuf_free(&answer);
            atomic_abort(&af);
            return err_set(err, "%s: write error", path);
        }
    }
    bytebuf_free(&answer);
    return atomic_commit(&af, err);
}
