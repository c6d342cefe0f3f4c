#include "cli/options.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytebuf.h"

static const OptSpec *find(const OptSpec *s, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].key, key)) return &s[i];
    return NULL;
}

int options_set(const OptSpec *specs, int n, void *obj, const char *key, const char *value,
                const char *where, Err *err) {
    const OptSpec *s = find(specs, n, key);
    if (!s) return err_set(err, "%s: unknown option '%s'", where, key);
    char *field = (char *)obj + s->offset, *end;
    errno = 0;
    switch (s->type) {
    case OPT_INT: {
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < INT_MIN || v > INT_MAX)
            return err_set(err, "%s: option '%s' expects an integer, got '%s'", where, key, value);
        *(int *)field = (int)v;
        break;
    }
    case OPT_FLOAT: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v))
            return err_set(err, "%s: option '%s' expects a number, got '%s'", where, key, value);
        *(float *)field = (float)v;
        break;
    }
    case OPT_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on"))
            *(int *)field = 1;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off"))
            *(int *)field = 0;
        else
            return err_set(err, "%s: option '%s' expects true or false, got '%s'", where, key, value);
        break;
    case OPT_STRING: {
        /* INI readers strip surrounding whitespace, so values that need it are written
         * in double quotes (options_dump does), which are removed here. */
        free(*(char **)field);
        *(char **)field = options_unquote(value);
        break;
    }
    }
    return 0;
}

char *options_unquote(const char *value) {
    size_t n = strlen(value);
    if (n < 2 || value[0] != '"' || value[n - 1] != '"') return xstrdup(value);
    char *v = xmalloc(n - 1);
    memcpy(v, value + 1, n - 2);
    v[n - 2] = '\0';
    return v;
}

void options_defaults(const OptSpec *specs, int n, void *obj) {
    for (int i = 0; i < n; i++) {
        if (specs[i].type == OPT_STRING) *(char **)((char *)obj + specs[i].offset) = NULL;
        Err err;
        if (options_set(specs, n, obj, specs[i].key, specs[i].def, "default", &err)) FATAL("%s", err.msg);
    }
}

void options_free_strings(const OptSpec *specs, int n, void *obj) {
    for (int i = 0; i < n; i++)
        if (specs[i].type == OPT_STRING) {
            char **p = (char **)((char *)obj + specs[i].offset);
            free(*p);
            *p = NULL;
        }
}

typedef struct {
    const OptSpec *specs;
    int n;
    void *obj;
    const char *path;
    Err *err;
    int failed;
} IniCtx;

static int handle_ini_line(void *user, const char *section, const char *name, const char *value) {
    IniCtx *c = user;
    (void)section;
    if (c->failed) return 0;
    char where[600];
    snprintf(where, sizeof where, "%s", c->path);
    if (options_set(c->specs, c->n, c->obj, name, value, where, c->err)) {
        c->failed = 1;
        return 0;
    }
    return 1;
}

int options_load_ini(const OptSpec *specs, int n, void *obj, const char *path, Err *err) {
    IniCtx c = {specs, n, obj, path, err, 0};
    int rc = ini_parse(path, handle_ini_line, &c);
    if (rc == -1) return err_set(err, "%s: cannot open config file", path);
    if (rc == -2) return err_set(err, "%s: out of memory while parsing", path);
    if (rc > 0) {
        if (c.failed) {
            /* put the line number after the path: "file:LINE: ..." */
            char msg[sizeof err->msg];
            size_t k = strlen(path);
            snprintf(msg, sizeof msg, "%s:%d%s", path, rc, err->msg + k);
            snprintf(err->msg, sizeof err->msg, "%s", msg);
            return -1;
        }
        return err_set(err, "%s:%d: expected 'key = value' or '[section]'", path, rc);
    }
    return 0;
}

const OptSpec *options_lookup_arg(const OptSpec *specs, int n, const char *arg, char *key, size_t key_size,
                                  const char **eq, Err *err) {
    *eq = strchr(arg + 2, '=');
    size_t klen = *eq ? (size_t)(*eq - arg - 2) : strlen(arg + 2);
    if (klen >= key_size) {
        err_set(err, "option name too long: '%s'", arg);
        return NULL;
    }
    memcpy(key, arg + 2, klen);
    key[klen] = '\0';
    for (char *p = key; *p; p++)
        if (*p == '-') *p = '_';
    const OptSpec *s = find(specs, n, key);
    if (!s) err_set(err, "unknown option '--%s' (see --help)", key);
    return s;
}

int options_parse_args(const OptSpec *specs, int n, void *obj, int argc, char **argv, int first,
                       Err *err) {
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) return err_set(err, "unexpected argument '%s'", a);
        char key[128];
        const char *eq, *value;
        const OptSpec *s = options_lookup_arg(specs, n, a, key, sizeof key, &eq, err);
        if (!s) return -1;
        if (eq) {
            value = eq + 1;
        } else if (s->type == OPT_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            value = "true";
        } else {
            if (i + 1 >= argc) return err_set(err, "option '--%s' needs a value", key);
            value = argv[++i];
        }
        char where[160];
        snprintf(where, sizeof where, "--%s", key);
        if (options_set(specs, n, obj, key, value, where, err)) return -1;
    }
    return 0;
}

void options_help(const OptSpec *specs, int n, FILE *out) {
    fprintf(out, "  %-22s %-24s %-14s %s\n", "option", "default", "paper", "meaning");
    for (int i = 0; i < n; i++)
        fprintf(out, "  --%-20s %-24s %-14s %s\n", specs[i].key, specs[i].def[0] ? specs[i].def : "\"\"",
                specs[i].paper ? specs[i].paper : "-", specs[i].help);
}

char *options_dump(const OptSpec *specs, int n, const void *obj) {
    ByteBuf b = {0};
    char line[1024];
    for (int i = 0; i < n; i++) {
        const char *field = (const char *)obj + specs[i].offset;
        switch (specs[i].type) {
        case OPT_INT: snprintf(line, sizeof line, "%s = %d\n", specs[i].key, *(const int *)field); break;
        case OPT_BOOL: snprintf(line, sizeof line, "%s = %s\n", specs[i].key, *(const int *)field ? "true" : "false"); break;
        case OPT_FLOAT: snprintf(line, sizeof line, "%s = %.9g\n", specs[i].key, *(const float *)field); break;
        case OPT_STRING: {
            const char *v = *(char *const *)field;
            size_t n = v ? strlen(v) : 0;
            int quote = n > 0 && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t' ||
                                  (v[0] == '"' && v[n - 1] == '"'));
            snprintf(line, sizeof line, quote ? "%s = \"%s\"\n" : "%s = %s\n", specs[i].key, v ? v : "");
            break;
        }
        }
        bytebuf_append(&b, line, strlen(line));
    }
    bytebuf_append(&b, "", 0);
    return b.p;
}
