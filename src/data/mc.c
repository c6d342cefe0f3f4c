/* Multiple-choice sets for the out-of-domain evaluation: MMLU and ARC (see dataset.h). */
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "data/dataset.h"
#include "data/jsonl.h"

int mc_format_parse(const char *s, McFormat *f, Err *err) {
    if (!strcmp(s, "mmlu")) *f = MC_MMLU;
    else if (!strcmp(s, "arc")) *f = MC_ARC;
    else return err_set(err, "unknown multiple-choice format '%s' (expected mmlu or arc)", s);
    return 0;
}

static void item_free(McItem *it) {
    free(it->question);
    for (int k = 0; k < it->n_choices; k++) free(it->choices[k]);
    free(it->choices);
    memset(it, 0, sizeof *it);
}

/* A JSON array of strings into it->choices. */
static int read_choices(const JsonlReader *r, const cJSON *arr, const char *what, McItem *it, Err *err) {
    if (!cJSON_IsArray(arr))
        return err_set(err, "%s:%d: field \"%s\" must be an array of strings", r->path, r->line, what);
    int n = cJSON_GetArraySize(arr);
    if (n < 2 || n > 26)
        return err_set(err, "%s:%d: field \"%s\" has %d entries (expected 2 to 26 choices)", r->path, r->line, what, n);
    it->choices = xcalloc((size_t)n, sizeof(char *));
    const cJSON *c;
    cJSON_ArrayForEach(c, arr) {
        if (!cJSON_IsString(c) || !c->valuestring)
            return err_set(err, "%s:%d: choice %d in \"%s\" is not a string", r->path, r->line, it->n_choices + 1, what);
        it->choices[it->n_choices++] = xstrdup(c->valuestring);
    }
    return 0;
}

static int parse_mmlu(const JsonlReader *r, const cJSON *obj, McItem *it, Err *err) {
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(obj, "choices");
    if (!ch) return err_set(err, "%s:%d: missing field \"choices\" (expected an array of strings)", r->path, r->line);
    if (read_choices(r, ch, "choices", it, err)) return -1;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "answer");
    if (!a) return err_set(err, "%s:%d: missing field \"answer\" (expected a choice index)", r->path, r->line);
    int idx = -1;
    if (cJSON_IsNumber(a) && a->valuedouble == (double)(int)a->valuedouble) idx = (int)a->valuedouble;
    else if (cJSON_IsString(a) && a->valuestring && a->valuestring[0] >= 'A' && a->valuestring[0] <= 'Z' &&
             !a->valuestring[1])
        idx = a->valuestring[0] - 'A';
    if (idx < 0 || idx >= it->n_choices)
        return err_set(err, "%s:%d: field \"answer\" must be a choice index in [0, %d] or a letter", r->path, r->line,
                       it->n_choices - 1);
    it->correct = idx;
    return 0;
}

static int parse_arc(const JsonlReader *r, const cJSON *obj, McItem *it, Err *err) {
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(obj, "choices");
    if (!cJSON_IsObject(ch))
        return err_set(err, "%s:%d: missing field \"choices\" (expected an object with \"text\" and \"label\")",
                       r->path, r->line);
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(ch, "text");
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(ch, "label");
    if (!text || !label)
        return err_set(err, "%s:%d: field \"choices\" needs \"text\" and \"label\" arrays", r->path, r->line);
    if (read_choices(r, text, "choices.text", it, err)) return -1;
    if (!cJSON_IsArray(label) || cJSON_GetArraySize(label) != it->n_choices)
        return err_set(err, "%s:%d: \"choices.label\" must be an array of %d labels", r->path, r->line, it->n_choices);
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(obj, "answerKey");
    if (!cJSON_IsString(key) || !key->valuestring)
        return err_set(err, "%s:%d: missing field \"answerKey\" (expected a choice label)", r->path, r->line);
    it->correct = -1;
    int k = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, label) {
        if (!cJSON_IsString(l) || !l->valuestring)
            return err_set(err, "%s:%d: label %d in \"choices.label\" is not a string", r->path, r->line, k + 1);
        if (!strcmp(l->valuestring, key->valuestring) && it->correct < 0) it->correct = k;
        k++;
    }
    if (it->correct < 0)
        return err_set(err, "%s:%d: answerKey '%.20s' is not one of the choice labels", r->path, r->line,
                       key->valuestring);
    return 0;
}

int mc_parse(const char *buf, size_t len, const char *path, McFormat fmt, int skip_bad_lines, McSet *set,
             BadLines *bad, Err *err) {
    memset(set, 0, sizeof *set);
    if (bad) memset(bad, 0, sizeof *bad);
    JsonlReader r;
    jsonl_init(&r, path, buf, len);
    int cap = 0, nbad = 0;
    for (;;) {
        cJSON *obj;
        Err e;
        int got = jsonl_next(&r, &obj, &e);
        if (got == 0) break;
        if (got > 0) {
            McItem it = {.line = r.line};
            int rc = jsonl_get_text(&r, obj, "question", &it.question, &e);
            if (!rc) rc = fmt == MC_MMLU ? parse_mmlu(&r, obj, &it, &e) : parse_arc(&r, obj, &it, &e);
            cJSON_Delete(obj);
            if (rc == 0) {
                if (set->n == cap) set->items = xrealloc(set->items, (size_t)(cap = cap ? 2 * cap : 256) * sizeof(McItem));
                set->items[set->n++] = it;
                continue;
            }
            item_free(&it);
        }
        if (!skip_bad_lines) {
            mc_free(set);
            if (err) *err = e;
            return -1;
        }
        nbad++;
        if (bad && bad->n++ == 0) bad->first = e;
    }
    if (set->n == 0) {
        mc_free(set);
        return err_set(err, "%s: no usable rows (%d bad lines)", path, nbad);
    }
    return 0;
}

int mc_load(const char *path, McFormat fmt, int skip_bad_lines, McSet *set, BadLines *bad, Err *err) {
    char *buf;
    size_t len;
    memset(set, 0, sizeof *set);
    if (file_read_all(path, &buf, &len, err)) return -1;
    int rc = mc_parse(buf, len, path, fmt, skip_bad_lines, set, bad, err);
    free(buf);
    return rc;
}

void mc_free(McSet *set) {
    for (int i = 0; i < set->n; i++) item_free(&set->items[i]);
    free(set->items);
    set->items = NULL;
    set->n = 0;
}
