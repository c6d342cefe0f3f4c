/* Math problem sets from JSONL (see dataset.h). Every row is validated as it is read so
 * that a bad row is reported with its line, never discovered mid-training. */
#include "data/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "data/jsonl.h"
#include "rl/reward.h"

int data_format_parse(const char *s, DataFormat *f, Err *err) {
    if (!strcmp(s, "gsm8k")) *f = DATA_GSM8K;
    else if (!strcmp(s, "math") || !strcmp(s, "math500")) *f = DATA_MATH;
    else if (!strcmp(s, "deepscaler")) *f = DATA_DEEPSCALER;
    else if (!strcmp(s, "generic")) *f = DATA_GENERIC;
    else return err_set(err, "unknown dataset format '%s' (expected gsm8k, math, deepscaler or generic)", s);
    return 0;
}

const char *data_format_name(DataFormat f) {
    switch (f) {
    case DATA_GSM8K: return "gsm8k";
    case DATA_MATH: return "math";
    case DATA_DEEPSCALER: return "deepscaler";
    case DATA_GENERIC: return "generic";
    }
    return "?";
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

int gsm8k_split_answer(const char *answer, char **gold, char **solution, Err *err) {
    *gold = NULL;
    if (solution) *solution = NULL;
    const char *h = NULL;
    for (const char *p = answer; (p = strstr(p, "####")) != NULL; p += 4) h = p;
    if (!h) return err_set(err, "no '#### ' before the final answer");
    const char *a = h + 4;
    while (*a == ' ' || *a == '\t') a++;
    size_t n = strlen(a);
    while (n && (a[n - 1] == ' ' || a[n - 1] == '\n' || a[n - 1] == '\r' || a[n - 1] == '\t')) n--;
    char *g = xmalloc(n + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] != ',') g[w++] = a[i];
    g[w] = '\0';
    /* -?digits[.digits] */
    size_t i = g[0] == '-';
    size_t d = 0;
    while (is_digit(g[i + d])) d++;
    int ok = d > 0;
    if (ok && g[i + d] == '.') {
        size_t f = 0;
        while (is_digit(g[i + d + 1 + f])) f++;
        ok = f > 0;
        d += 1 + f;
    }
    if (!ok || g[i + d] != '\0') {
        int shown = n > 40 ? 40 : (int)n;
        err_set(err, "gold answer '%.*s%s' after '####' is not a number", shown, a, n > 40 ? "..." : "");
        free(g);
        return -1;
    }
    *gold = g;
    if (solution) {
        size_t s = (size_t)(h - answer);
        while (s && (answer[s - 1] == ' ' || answer[s - 1] == '\n' || answer[s - 1] == '\r')) s--;
        char *t = xmalloc(s + 1);
        memcpy(t, answer, s);
        t[s] = '\0';
        *solution = t;
    }
    return 0;
}

static void problem_free(Problem *p) {
    free(p->question);
    free(p->gold);
    free(p->solution);
    memset(p, 0, sizeof *p);
}

/* One row into *p; -1 with "path:LINE: ..." if it is malformed. */
static int parse_row(const JsonlReader *r, const cJSON *obj, const DataOptions *opt, Problem *p, Err *err) {
    memset(p, 0, sizeof *p);
    p->line = r->line;
    const char *qk = "problem", *ak = "answer", *sk = "solution";
    int hashes = 0, need_solution = 0;
    switch (opt->format) {
    case DATA_GSM8K: qk = "question", sk = NULL, hashes = 1; break;
    case DATA_MATH: break;
    case DATA_DEEPSCALER: need_solution = 1; break;
    case DATA_GENERIC:
        qk = opt->question_key, ak = opt->answer_key, sk = opt->solution_key, hashes = opt->gold_after_hashes;
        if (!qk || !ak) return err_set(err, "%s: generic format needs question and answer field names", r->path);
        break;
    }
    char *answer = NULL;
    if (jsonl_get_text(r, obj, qk, &p->question, err)) goto bad;
    if (sk && (need_solution ? jsonl_get_text(r, obj, sk, &p->solution, err)
                             : jsonl_get_text_opt(r, obj, sk, &p->solution, err)))
        goto bad;
    if (opt->format == DATA_MATH) {
        /* the original MATH release has no "answer" field: take the solution's last box */
        if (jsonl_get_text_opt(r, obj, ak, &answer, err)) goto bad;
        if (!answer) {
            if (!p->solution || !boxed_last(p->solution, &answer)) {
                err_set(err, "%s:%d: missing field \"%s\" (expected a string) and no \\boxed{} in \"%s\"", r->path,
                        r->line, ak, sk);
                goto bad;
            }
        }
    } else if (jsonl_get_text(r, obj, ak, &answer, err)) {
        goto bad;
    }
    if (hashes) {
        Err e;
        char *sol = NULL;
        if (gsm8k_split_answer(answer, &p->gold, sk ? NULL : &sol, &e)) {
            err_set(err, "%s:%d: cannot extract the gold answer from \"%s\": %s", r->path, r->line, ak, e.msg);
            goto bad;
        }
        if (!sk) p->solution = sol;
        free(answer);
    } else {
        p->gold = answer;
    }
    answer = NULL;
    if (!p->gold[strspn(p->gold, " \t\n\r")]) {
        err_set(err, "%s:%d: gold answer in \"%s\" is empty", r->path, r->line, ak);
        goto bad;
    }
    return 0;
bad:
    free(answer);
    problem_free(p);
    return -1;
}

static void note_bad(BadLines *bad, const Err *e) {
    if (!bad) return;
    if (bad->n++ == 0) bad->first = *e;
}

int dataset_parse(const char *buf, size_t len, const char *path, const DataOptions *opt, Dataset *ds,
                  BadLines *bad, Err *err) {
    memset(ds, 0, sizeof *ds);
    if (bad) memset(bad, 0, sizeof *bad);
    JsonlReader r;
    jsonl_init(&r, path, buf, len);
    int cap = 0, nbad = 0;
    for (;;) {
        cJSON *obj;
        Err e;
        int got = jsonl_next(&r, &obj, &e);
        if (got == 0) break;
        Problem p;
        if (got > 0) {
            int rc = parse_row(&r, obj, opt, &p, &e);
            cJSON_Delete(obj);
            if (rc == 0) {
                if (ds->n == cap) ds->items = xrealloc(ds->items, (size_t)(cap = cap ? 2 * cap : 256) * sizeof(Problem));
                ds->items[ds->n++] = p;
                continue;
            }
        }
        if (!opt->skip_bad_lines) {
            dataset_free(ds);
            if (err) *err = e;
            return -1;
        }
        nbad++;
        note_bad(bad, &e);
    }
    if (ds->n == 0) {
        dataset_free(ds);
        return err_set(err, "%s: no usable rows (%d bad lines)", path, nbad);
    }
    return 0;
}

int dataset_load(const char *path, const DataOptions *opt, Dataset *ds, BadLines *bad, Err *err) {
    char *buf;
    size_t len;
    memset(ds, 0, sizeof *ds);
    if (file_read_all(path, &buf, &len, err)) return -1;
    int rc = dataset_parse(buf, len, path, opt, ds, bad, err);
    free(buf);
    return rc;
}

void dataset_free(Dataset *ds) {
    for (int i = 0; i < ds->n; i++) problem_free(&ds->items[i]);
    free(ds->items);
    ds->items = NULL;
    ds->n = 0;
}
