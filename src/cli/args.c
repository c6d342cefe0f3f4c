#include "cli/args.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int arg_value(int argc, char **argv, int *i, const char *name, const char **value) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) return -1;
    *value = argv[++*i];
    return 1;
}

int parse_int(const char *s, const char *what, long lo, long hi, long *out, Err *err) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        return err_set(err, "%s: expected an integer in [%ld, %ld], got '%s'", what, lo, hi, s);
    *out = v;
    return 0;
}

int parse_float(const char *s, const char *what, double lo, double hi, double *out, Err *err) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= lo && v <= hi))
        return err_set(err, "%s: expected a number in [%g, %g], got '%s'", what, lo, hi, s);
    *out = v;
    return 0;
}

int parse_id_list(const char *s, const char *what, int **ids, int *n, Err *err) {
    int cap = 16, k = 0;
    int *out = xmalloc((size_t)cap * sizeof(int));
    const char *p = s;
    while (*p) {
        while (*p == ',' || *p == ' ') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT_MAX || (*end && *end != ',' && *end != ' ')) {
            free(out);
            return err_set(err, "%s: bad token id at character %d of '%s'", what, (int)(p - s) + 1, s);
        }
        if (k == cap) out = xrealloc(out, (size_t)(cap *= 2) * sizeof(int));
        out[k++] = (int)v;
        p = end;
    }
    if (k == 0) {
        free(out);
        return err_set(err, "%s: no token ids given", what);
    }
    *ids = out;
    *n = k;
    return 0;
}
