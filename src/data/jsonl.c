/* JSONL line iteration and field access (see jsonl.h). */
#include "data/jsonl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void jsonl_init(JsonlReader *r, const char *path, const char *buf, size_t len) {
    r->path = path;
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    r->line = 0;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

static const char *type_name(const cJSON *v) {
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "a value";
}

int jsonl_next(JsonlReader *r, cJSON **obj, Err *err) {
    *obj = NULL;
    while (r->pos < r->len) {
        const char *start = r->buf + r->pos;
        const char *nl = memchr(start, '\n', r->len - r->pos);
        size_t n = nl ? (size_t)(nl - start) : r->len - r->pos;
        r->pos += n + (nl ? 1 : 0);
        r->line++;
        if (blank(start, n)) continue;
        const char *end = NULL;
        cJSON *v = cJSON_ParseWithLengthOpts(start, n, &end, 0);
        if (!v) {
            size_t col = end && end >= start && end <= start + n ? (size_t)(end - start) + 1 : 1;
            return err_set(err, "%s:%d: bad JSON at column %zu (expected one JSON object per line)",
                           r->path, r->line, col);
        }
        if (end && !blank(end, n - (size_t)(end - start))) {
            cJSON_Delete(v);
            return err_set(err, "%s:%d: bad JSON at column %zu: text after the object (expected one JSON object per line)",
                           r->path, r->line, (size_t)(end - start) + 1);
        }
        if (!cJSON_IsObject(v)) {
            const char *what = type_name(v);
            cJSON_Delete(v);
            return err_set(err, "%s:%d: expected a JSON object, got %s", r->path, r->line, what);
        }
        *obj = v;
        return 1;
    }
    return 0;
}

static int get_text(const JsonlReader *r, const cJSON *obj, const char *key, int required, char **out, Err *err) {
    *out = NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) {
        if (!required) return 0;
        return err_set(err, "%s:%d: missing field \"%s\" (expected a string)", r->path, r->line, key);
    }
    if (cJSON_IsString(v) && v->valuestring) {
        *out = xstrdup(v->valuestring);
        return 0;
    }
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
        char buf[64];
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 9e15) snprintf(buf, sizeof buf, "%.0f", d);
        else snprintf(buf, sizeof buf, "%.17g", d);
        *out = xstrdup(buf);
        return 0;
    }
    return err_set(err, "%s:%d: field \"%s\" must be a string, got %s", r->path, r->line, key, type_name(v));
}

int jsonl_get_text(const JsonlReader *r, const cJSON *obj, const char *key, char **out, Err *err) {
    return get_text(r, obj, key, 1, out, err);
}

int jsonl_get_text_opt(const JsonlReader *r, const cJSON *obj, const char *key, char **out, Err *err) {
    return get_text(r, obj, key, 0, out, err);
}
