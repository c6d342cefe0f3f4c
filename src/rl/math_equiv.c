/* math_equiv: structural comparison of two normalized answers.
 *
 * Each answer is normalized (latex_norm.c), a simple left-hand side is dropped (x=5 -> 5,
 * (x,y)=(1,2) -> (1,2)) and the text is read as a small tree:
 *   union   A \cup B        parts compared as an unordered collection
 *   matrix  \begin{pmatrix} rows \\ and & cells \end{pmatrix}, compared cell by cell
 *   set     \{a,b\}         unordered (a bare list "1, -2" is also unordered: it is how
 *                           MATH writes "all solutions")
 *   tuple   (a,b) [a,b) ... ordered, and the bracket types must agree (intervals)
 *   a\pm b                  the two-element list {a+b, a-b}
 *   atom    anything else, compared as an expression (math_expr.c): equal constants, or
 *           equal values at several pseudo-random points when variables occur.
 * Nesting, part counts and input length are bounded so any input finishes quickly.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "rl/latex_norm.h"
#include "rl/math_expr.h"
#include "rl/reward.h"

enum { MAX_PARTS = 64, MAX_NEST = 6, N_POINTS = 6, MIN_POINTS = 3 };

/* Work allowed for one math_equiv call, in bytes of atoms compared: nested unordered lists
 * compare every pair of parts, so without a cap a hostile answer could cost seconds. When
 * it runs out the answers are judged different. */
#define EQUIV_BUDGET 4000000L

typedef struct {
    long left;
} Budget;

typedef enum { N_ATOM, N_LIST, N_TUPLE, N_UNION, N_MATRIX } Kind;

typedef struct Node {
    Kind kind;
    char open, close; /* tuple brackets */
    int n, rows, cols;
    struct Node *kids;
    char *text; /* atom: its own copy */
} Node;

typedef struct {
    size_t a, b; /* [a, b) */
} Span;

static int is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static int starts_cmd(const char *s, size_t i, size_t n, const char *name) {
    size_t k = strlen(name);
    return i + 1 + k <= n && s[i] == '\\' && !memcmp(s + i + 1, name, k) && !(i + 1 + k < n && is_letter(s[i + 1 + k]));
}

/* Bracket depth change at s[i], and how many bytes the token there takes. */
static int depth_step(const char *s, size_t i, size_t n, size_t *adv) {
    *adv = 1;
    char c = s[i];
    if (c == '\\' && i + 1 < n) {
        if (s[i + 1] == '{') return *adv = 2, 1;
        if (s[i + 1] == '}') return *adv = 2, -1;
        if (starts_cmd(s, i, n, "begin")) return *adv = 6, 1;
        if (starts_cmd(s, i, n, "end")) return *adv = 4, -1;
        *adv = 2;
        return 0;
    }
    if (c == '(' || c == '[' || c == '{') return 1;
    if (c == ')' || c == ']' || c == '}') return -1;
    return 0;
}

/* Splits s[a, b) at top-level separators: sep is ",", "&", "\\\\" or "\\cup". Returns the
 * number of parts, or -1 if there are more than MAX_PARTS. */
static int split_top(const char *s, size_t a, size_t b, const char *sep, Span *parts) {
    int np = 0, depth = 0;
    size_t start = a, seplen = strlen(sep);
    int is_cup = !strcmp(sep, "\\cup");
    for (size_t i = a; i < b;) {
        int hit = depth == 0 && i + seplen <= b && !memcmp(s + i, sep, seplen) &&
                  (!is_cup || !(i + seplen < b && is_letter(s[i + seplen])));
        if (hit) {
            if (np == MAX_PARTS - 1) return -1;
            parts[np++] = (Span){start, i};
            i += seplen;
            start = i;
            continue;
        }
        size_t adv;
        depth += depth_step(s, i, b, &adv);
        i += adv;
    }
    parts[np++] = (Span){start, b};
    return np;
}

/* Does the bracket opened at s[a] close exactly at the last byte before b? */
static int wraps_whole(const char *s, size_t a, size_t b) {
    int depth = 0;
    for (size_t i = a; i < b;) {
        size_t adv;
        depth += depth_step(s, i, b, &adv);
        i += adv;
        if (depth <= 0) return i == b;
    }
    return 0;
}

/* A name that may stand on the left of "=" in a final answer: x, x_1, \theta, AB, f(x),
 * or a tuple of names (x,y). */
static size_t scan_name(const char *s, size_t i, size_t b) {
    size_t start = i;
    if (i < b && s[i] == '\\') {
        i++;
        while (i < b && is_letter(s[i])) i++;
        if (i - start < 3) return 0;
    } else {
        while (i < b && is_letter(s[i]) && i - start < 3) i++;
        if (i == start) return 0;
    }
    if (i < b && s[i] == '_') {
        i++;
        if (i < b && s[i] == '{') {
            while (i < b && s[i] != '}') i++;
            if (i == b) return 0;
            i++;
        } else if (i < b && (isalnum((unsigned char)s[i]))) {
            i++;
        } else {
            return 0;
        }
    }
    while (i < b && s[i] == '\'') i++;
    return i - start;
}

static int lhs_is_simple(const char *s, size_t a, size_t b) {
    if (a >= b) return 0;
    if (s[a] == '(') { /* (x,y) */
        size_t i = a + 1;
        for (;;) {
            size_t k = scan_name(s, i, b);
            if (!k) return 0;
            i += k;
            if (i < b && s[i] == ',') {
                i++;
                continue;
            }
            return i + 1 == b && s[i] == ')';
        }
    }
    size_t k = scan_name(s, a, b);
    if (!k) return 0;
    if (a + k == b) return 1;
    /* f(x), p(3) */
    return s[a + k] == '(' && wraps_whole(s, a + k, b);
}

/* Index of the only top-level '=' in s[a, b), or b if there is none or several. */
static size_t only_equals(const char *s, size_t a, size_t b) {
    int depth = 0;
    size_t at = b;
    for (size_t i = a; i < b;) {
        if (depth == 0 && s[i] == '=') {
            if (at != b) return b;
            at = i;
        }
        size_t adv;
        depth += depth_step(s, i, b, &adv);
        i += adv;
    }
    if (at != b && ((at > a && strchr("<>!:", s[at - 1])) || (at + 1 < b && s[at + 1] == '='))) return b;
    return at;
}

static void strip_lhs(const char *s, size_t *a, size_t b) {
    size_t eq = only_equals(s, *a, b);
    if (eq < b && lhs_is_simple(s, *a, eq)) *a = eq + 1;
}

static char *span_dup(const char *s, size_t a, size_t b) {
    char *t = xmalloc(b - a + 1);
    memcpy(t, s + a, b - a);
    t[b - a] = '\0';
    latex_trim(t);
    latex_strip_thousands(t);
    return t;
}

static void node_free(Node *x) {
    for (int k = 0; k < x->n; k++) node_free(&x->kids[k]);
    free(x->kids);
    free(x->text);
}

static void parse_node(const char *s, size_t a, size_t b, int nest, Node *out);

static void make_atom(const char *s, size_t a, size_t b, Node *out) {
    memset(out, 0, sizeof *out);
    out->kind = N_ATOM;
    out->text = span_dup(s, a, b);
}

static void make_parts(const char *s, const Span *parts, int np, int nest, Kind kind, Node *out) {
    out->kind = kind;
    out->n = np;
    out->kids = xcalloc(np ? (size_t)np : 1, sizeof(Node));
    for (int k = 0; k < np; k++) parse_node(s, parts[k].a, parts[k].b, nest + 1, &out->kids[k]);
}

static const char *const MATRIX_ENVS[] = {"pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix",
                                          "matrix", "smallmatrix", NULL};

/* \begin{env} ... \end{env} with env a matrix: rows and cells. Returns 1 if parsed. */
static int parse_matrix(const char *s, size_t a, size_t b, int nest, Node *out) {
    if (!starts_cmd(s, a, b, "begin") || a + 7 >= b || s[a + 6] != '{') return 0;
    size_t e = a + 7;
    while (e < b && s[e] != '}') e++;
    if (e >= b) return 0;
    size_t nlen = e - (a + 7);
    int known = 0;
    for (const char *const *m = MATRIX_ENVS; *m; m++)
        if (strlen(*m) == nlen && !memcmp(s + a + 7, *m, nlen)) known = 1;
    if (!known) return 0;
    char tail[64];
    if (nlen > 40) return 0;
    snprintf(tail, sizeof tail, "\\end{%.*s}", (int)nlen, s + a + 7);
    size_t tl = strlen(tail);
    if (b - a < tl || memcmp(s + b - tl, tail, tl) != 0) return 0;
    size_t ca = e + 1, cb = b - tl;
    if (ca > cb) return 0;
    Span rows[MAX_PARTS], cells[MAX_PARTS];
    int nr = split_top(s, ca, cb, "\\\\", rows);
    if (nr < 0) return 0;
    if (nr > 1 && rows[nr - 1].a == rows[nr - 1].b) nr--; /* trailing \\ */
    int nc = -1;
    Span all[MAX_PARTS];
    int total = 0;
    for (int r = 0; r < nr; r++) {
        int k = split_top(s, rows[r].a, rows[r].b, "&", cells);
        if (k < 0 || (nc >= 0 && k != nc) || total + k > MAX_PARTS) return 0;
        nc = k;
        for (int c = 0; c < k; c++) all[total++] = cells[c];
    }
    memset(out, 0, sizeof *out);
    make_parts(s, all, total, nest, N_MATRIX, out);
    out->rows = nr;
    out->cols = nc;
    return 1;
}

static void parse_node(const char *s, size_t a, size_t b, int nest, Node *out) {
    memset(out, 0, sizeof *out);
    while (a < b && s[a] == ' ') a++;
    while (b > a && s[b - 1] == ' ') b--;
    if (nest > MAX_NEST) { make_atom(s, a, b, out); return; }
    strip_lhs(s, &a, b);
    Span parts[MAX_PARTS];
    int np = split_top(s, a, b, "\\cup", parts);
    if (np > 1) { make_parts(s, parts, np, nest, N_UNION, out); return; }
    if (parse_matrix(s, a, b, nest, out)) return;
    if (b - a >= 4 && s[a] == '\\' && s[a + 1] == '{' && s[b - 2] == '\\' && s[b - 1] == '}' && wraps_whole(s, a, b)) {
        if (b - a == 4) { make_parts(s, parts, 0, nest, N_LIST, out); return; }
        np = split_top(s, a + 2, b - 2, ",", parts);
        if (np > 0) { make_parts(s, parts, np, nest, N_LIST, out); return; }
    }
    if (b - a == 9 && !memcmp(s + a, "\\emptyset", 9)) { make_parts(s, parts, 0, nest, N_LIST, out); return; }
    np = split_top(s, a, b, ",", parts);
    if (np > 1) { make_parts(s, parts, np, nest, N_LIST, out); return; }
    if (np < 0) { make_atom(s, a, b, out); return; }
    if (b - a >= 2 && (s[a] == '(' || s[a] == '[') && (s[b - 1] == ')' || s[b - 1] == ']') && wraps_whole(s, a, b)) {
        np = split_top(s, a + 1, b - 1, ",", parts);
        if (np > 1) {
            make_parts(s, parts, np, nest, N_TUPLE, out);
            out->open = s[a];
            out->close = s[b - 1];
            return;
        }
    }
    /* a \pm b: the two values, as a list */
    int depth = 0, npm = 0;
    size_t pm = 0;
    for (size_t i = a; i < b;) {
        if (depth == 0 && (starts_cmd(s, i, b, "pm") || starts_cmd(s, i, b, "mp"))) npm++, pm = i;
        size_t adv;
        depth += depth_step(s, i, b, &adv);
        i += adv;
    }
    if (npm == 1) {
        out->kind = N_LIST;
        out->n = 2;
        out->kids = xcalloc(2, sizeof(Node));
        for (int k = 0; k < 2; k++) {
            size_t len = b - a + 2;
            char *t = xmalloc(len + 1);
            size_t w = 0;
            memcpy(t, s + a, pm - a);
            w = pm - a;
            t[w++] = k == 0 ? '+' : '-';
            memcpy(t + w, s + pm + 3, b - pm - 3);
            w += b - pm - 3;
            t[w] = '\0';
            make_atom(t, 0, w, &out->kids[k]);
            free(t);
        }
        return;
    }
    make_atom(s, a, b, out);
}

/* ---- atoms ---- */

/* Three or more plain letters in a row (outside command names): a word, compared as text
 * rather than as a product of variables. */
static int is_wordy(const char *s) {
    int run = 0;
    for (size_t i = 0; s[i];) {
        if (s[i] == '\\') {
            i++;
            if (!is_letter(s[i])) { /* \{ \\ ... */
                if (s[i]) i++;
            }
            while (is_letter(s[i])) i++;
            run = 0;
            continue;
        }
        run = is_letter(s[i]) ? run + 1 : 0;
        if (run >= 3) return 1;
        i++;
    }
    return 0;
}

static int text_equal_ci(const char *a, const char *b) {
    for (;;) {
        while (*a == ' ') a++;
        while (*b == ' ') b++;
        if (!*a || !*b) return !*a && !*b;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
        a++, b++;
    }
}

static int near_int(double x) {
    double r = round(x);
    return r != 0 && fabs(x - r) <= 1e-9 * fabs(x);
}

/* Equal values: exact for large integers (so 11111111100 != 11111111101), relative
 * tolerance otherwise, with a tiny absolute floor for results that should be 0. */
static int values_close(double complex x, double complex y, double tol) {
    if (!isfinite(creal(x)) || !isfinite(cimag(x)) || !isfinite(creal(y)) || !isfinite(cimag(y))) return 0;
    double mx = cabs(x), my = cabs(y), m = fmax(mx, my);
    int real = fabs(cimag(x)) <= 1e-12 * fmax(1, mx) && fabs(cimag(y)) <= 1e-12 * fmax(1, my);
    if (real && near_int(creal(x)) && near_int(creal(y)) && m < 9e15)
        return llround(creal(x)) == llround(creal(y));
    return cabs(x - y) <= tol * m + 1e-13;
}

static int expr_equiv(const char *a, const char *b) {
    if (!strcmp(a, b)) return 1;
    if (strstr(a, "\\infty") || strstr(b, "\\infty")) {
        return !strcmp(a + (a[0] == '+'), b + (b[0] == '+'));
    }
    if (is_wordy(a) || is_wordy(b)) return text_equal_ci(a, b);
    double complex va, vb;
    int ha = 0, hb = 0;
    if (expr_eval(a, strlen(a), 0, &va, &ha) != 0 || expr_eval(b, strlen(b), 0, &vb, &hb) != 0)
        return text_equal_ci(a, b);
    if (!ha && !hb) return values_close(va, vb, 1e-9);
    int valid = 0;
    for (int p = 0; p < N_POINTS; p++) {
        if (p > 0 && (expr_eval(a, strlen(a), p, &va, NULL) != 0 || expr_eval(b, strlen(b), p, &vb, NULL) != 0))
            return 0;
        if (!isfinite(creal(va)) || !isfinite(cimag(va)) || !isfinite(creal(vb)) || !isfinite(cimag(vb)))
            continue;
        if (!values_close(va, vb, 1e-7)) return 0;
        valid++;
    }
    return valid >= MIN_POINTS;
}

static int atom_equiv(const char *a, const char *b, Budget *bud) {
    if (!strcmp(a, b)) return 1;
    size_t la = strlen(a), lb = strlen(b);
    bud->left -= (long)(la + lb + 16);
    if (bud->left < 0) return 0;
    size_t ea = only_equals(a, 0, la), eb = only_equals(b, 0, lb);
    if ((ea < la) != (eb < lb)) return 0;
    if (ea == la) return expr_equiv(a, b);
    /* two equations: the same sides, in either order */
    char *al = span_dup(a, 0, ea), *ar = span_dup(a, ea + 1, la);
    char *bl = span_dup(b, 0, eb), *br = span_dup(b, eb + 1, lb);
    int eq = (expr_equiv(al, bl) && expr_equiv(ar, br)) || (expr_equiv(al, br) && expr_equiv(ar, bl));
    free(al), free(ar), free(bl), free(br);
    return eq;
}

static int node_equiv(const Node *x, const Node *y, Budget *bud);

static int ordered_equiv(const Node *x, const Node *y, Budget *bud) {
    if (x->n != y->n) return 0;
    for (int k = 0; k < x->n; k++)
        if (!node_equiv(&x->kids[k], &y->kids[k], bud)) return 0;
    return 1;
}

static int unordered_equiv(const Node *x, const Node *y, Budget *bud) {
    if (x->n != y->n) return 0;
    char used[MAX_PARTS] = {0};
    for (int k = 0; k < x->n; k++) {
        int found = 0;
        for (int j = 0; j < y->n && !found; j++)
            if (!used[j] && node_equiv(&x->kids[k], &y->kids[j], bud)) used[j] = 1, found = 1;
        if (!found) return 0;
    }
    return 1;
}

static int is_vector(const Node *m) { return m->kind == N_MATRIX && (m->rows == 1 || m->cols == 1); }

static int node_equiv(const Node *x, const Node *y, Budget *bud) {
    if (--bud->left < 0) return 0;
    if (x->kind == N_ATOM && y->kind == N_ATOM) return atom_equiv(x->text, y->text, bud);
    if (x->kind == N_LIST && y->kind == N_LIST) return unordered_equiv(x, y, bud);
    if (x->kind == N_UNION && y->kind == N_UNION) return unordered_equiv(x, y, bud);
    if (x->kind == N_TUPLE && y->kind == N_TUPLE)
        return x->open == y->open && x->close == y->close && ordered_equiv(x, y, bud);
    if (x->kind == N_MATRIX && y->kind == N_MATRIX)
        return x->rows == y->rows && x->cols == y->cols && ordered_equiv(x, y, bud);
    /* a point written without parentheses, or as a column vector */
    const Node *t = x->kind == N_TUPLE ? x : y->kind == N_TUPLE ? y : NULL;
    const Node *o = t == x ? y : x;
    if (t && t->open == '(' && t->close == ')' && (o->kind == N_LIST || is_vector(o))) return ordered_equiv(t, o, bud);
    return 0;
}

int math_equiv(const char *a, const char *b) {
    if (!a || !b) return 0;
    size_t la = strlen(a), lb = strlen(b);
    if (la > MATH_MAX_LEN || lb > MATH_MAX_LEN) return la == lb && !memcmp(a, b, la);
    char *na = latex_normalize(a, la), *nb = latex_normalize(b, lb);
    int eq = 0;
    if (!strcmp(na, nb)) {
        eq = na[0] != '\0';
    } else if (na[0] && nb[0]) {
        Node x, y;
        parse_node(na, 0, strlen(na), 0, &x);
        parse_node(nb, 0, strlen(nb), 0, &y);
        Budget bud = {EQUIV_BUDGET};
        eq = node_equiv(&x, &y, &bud);
        node_free(&x);
        node_free(&y);
    }
    free(na);
    free(nb);
    return eq;
}
