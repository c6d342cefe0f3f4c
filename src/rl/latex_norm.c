/* Canonical form of a LaTeX answer: a fixed sequence of passes, each a linear scan that
 * builds a new string. See latex_norm.h for what is removed and why. */
#include "rl/latex_norm.h"

#include <ctype.h>
#include <string.h>

#include "core/bytebuf.h"

static int is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int name_is(const char *name, size_t len, const char *want) {
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

static int name_in(const char *name, size_t len, const char *const *list) {
    for (; *list; list++)
        if (name_is(name, len, *list)) return 1;
    return 0;
}

/* Sizing, spacing and style commands that never change a value. */
static const char *const DROP_CMDS[] = {
    "left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr",
    "biggl", "biggr", "Biggl", "Biggr", "middle", "displaystyle", "textstyle",
    "scriptstyle", "quad", "qquad", "limits", "nolimits", "mathstrut", "strut",
    "hfill", "dollar", "percent", "enspace", "thinspace", "negthinspace", "medspace",
    "thickspace", "cr", "nobreak", "allowbreak", NULL};

/* Commands replaced by a canonical spelling. Pairs (from, to). */
static const char *const RENAME_CMDS[][2] = {
    {"dfrac", "\\frac"}, {"tfrac", "\\frac"}, {"cfrac", "\\frac"},
    {"dbinom", "\\binom"}, {"tbinom", "\\binom"}, {"lbrace", "\\{"}, {"rbrace", "\\}"},
    {"lvert", "|"}, {"rvert", "|"}, {"vert", "|"}, {"lVert", "|"}, {"rVert", "|"},
    {"Vert", "|"}, {"infin", "\\infty"}, {"infinity", "\\infty"}, {"leq", "\\le"},
    {"geq", "\\ge"}, {"neq", "\\ne"}, {"cdotp", "\\cdot"}, {"ast", "*"},
    {"varnothing", "\\emptyset"}, {"degree", "\\circ"}, {"textdegree", "\\circ"},
    {"colon", ":"}, {"lparen", "("}, {"rparen", ")"}, {"lbrack", "["}, {"rbrack", "]"},
};

/* After `,` that follows a digit: do exactly three digits (then a non-digit) come next?
 * Then the comma was a thousands separator spelled with a spacing command (10,\!080). */
static int three_digits_follow(const char *s, size_t i, size_t n) {
    while (i < n && s[i] == ' ') i++;
    size_t k = 0;
    while (i + k < n && is_digit(s[i + k])) k++;
    return k == 3;
}

static void drop_separator_comma(ByteBuf *o, const char *s, size_t i, size_t n) {
    if (o->n >= 2 && o->p[o->n - 1] == ',' && is_digit(o->p[o->n - 2]) && three_digits_follow(s, i, n)) {
        o->n--;
        o->p[o->n] = '\0';
    }
}

/* Pass 1: wrappers, spacing commands, renames, Unicode symbols, {,} separators. */
static char *pass_commands(const char *s, size_t n) {
    ByteBuf o = {0};
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '$' || c == '%') {
            i++;
        } else if (c == '\n' || c == '\t' || c == '\r' || c == '~') {
            bytebuf_putc(&o, ' ');
            i++;
        } else if (c == '{' && i + 2 < n && s[i + 1] == ',' && s[i + 2] == '}') {
            /* 10{,}000: the braces make the comma a separator in TeX */
            if (!(o.n && is_digit(o.p[o.n - 1]))) bytebuf_putc(&o, ',');
            i += 3;
        } else if (c == 0xCF && i + 1 < n && (unsigned char)s[i + 1] == 0x80) {
            bytebuf_puts(&o, "\\pi ");
            i += 2;
        } else if (c == 0xC3 && i + 1 < n && (unsigned char)s[i + 1] == 0x97) {
            bytebuf_puts(&o, "\\times ");
            i += 2;
        } else if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0xB7) {
            bytebuf_puts(&o, "\\cdot ");
            i += 2;
        } else if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0xB0) {
            i += 2; /* degree sign */
        } else if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0xB1) {
            bytebuf_puts(&o, "\\pm ");
            i += 2;
        } else if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0xA0) {
            bytebuf_putc(&o, ' ');
            i += 2;
        } else if (c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x88) {
            unsigned char d = (unsigned char)s[i + 2];
            if (d == 0x92) bytebuf_putc(&o, '-');
            else if (d == 0x9A) bytebuf_puts(&o, "\\sqrt");
            else if (d == 0x9E) bytebuf_puts(&o, "\\infty ");
            else bytebuf_append(&o, s + i, 3);
            i += 3;
        } else if (c == '\\' && i + 1 < n && !is_letter(s[i + 1])) {
            char d = s[i + 1];
            i += 2;
            if (d == '\\') {
                bytebuf_puts(&o, "\\\\");
            } else if (d == ',' || d == '!' || d == ';' || d == ':' || d == ' ' || d == '>') {
                drop_separator_comma(&o, s, i, n);
                bytebuf_putc(&o, ' ');
            } else if (d == '%' || d == '$' || d == '(' || d == ')' || d == '[' || d == ']') {
                /* percent and dollar signs; inline/display math delimiters */
            } else if (d == '|') {
                bytebuf_putc(&o, '|');
            } else {
                bytebuf_putc(&o, '\\');
                bytebuf_putc(&o, d);
            }
        } else if (c == '\\' && i + 1 < n) {
            size_t j = i + 1;
            while (j < n && is_letter(s[j])) j++;
            const char *name = s + i + 1;
            size_t len = j - i - 1;
            i = j;
            if (name_in(name, len, DROP_CMDS)) {
                if (i < n && s[i] == '.' && (name_is(name, len, "left") || name_is(name, len, "right")))
                    i++; /* \left. and \right. are invisible delimiters */
                bytebuf_putc(&o, ' ');
                continue;
            }
            int renamed = 0;
            for (size_t r = 0; r < sizeof RENAME_CMDS / sizeof RENAME_CMDS[0]; r++) {
                if (name_is(name, len, RENAME_CMDS[r][0])) {
                    bytebuf_puts(&o, RENAME_CMDS[r][1]);
                    renamed = 1;
                    break;
                }
            }
            if (!renamed) bytebuf_append(&o, s + i - len - 1, len + 1);
            /* keep a command name apart from a following letter (\cot x) */
            if (i < n && is_letter(s[i]) && o.n && is_letter(o.p[o.n - 1])) bytebuf_putc(&o, ' ');
        } else {
            bytebuf_putc(&o, (char)c);
            i++;
        }
    }
    return bytebuf_take(&o);
}

/* Index just past the brace group starting at s[i] == '{', or 0 if it is not closed. */
static size_t group_end(const char *s, size_t i, size_t n) {
    int depth = 0;
    for (size_t j = i; j < n; j++) {
        if (s[j] == '\\' && j + 1 < n) {
            j++;
            continue;
        }
        if (s[j] == '{') depth++;
        if (s[j] == '}' && --depth == 0) return j + 1;
    }
    return 0;
}

static const char *const TEXT_CMDS[] = {"text", "textrm", "textnormal", "textup", "textit",
                                        "textsf", "texttt", "textbf", "mbox", "hbox",
                                        "mathrm", "emph", NULL};
static const char *const WRAP_CMDS[] = {"mathbf", "mathit", "mathsf", "mathtt", "mathnormal",
                                        "boldsymbol", "bm", "boxed", "fbox", "operatorname",
                                        "mathcal", NULL};

/* After a text group ending at e: only an optional ^2 / ^{3} and spaces until the end? */
static int only_exponent_left(const char *s, size_t e, size_t n, size_t *end) {
    while (e < n && s[e] == ' ') e++;
    if (e < n && s[e] == '^') {
        e++;
        if (e < n && is_digit(s[e])) {
            e++;
        } else if (e + 2 < n && s[e] == '{' && is_digit(s[e + 1]) && s[e + 2] == '}') {
            e += 3;
        } else {
            return 0;
        }
    }
    while (e < n && s[e] == ' ') e++;
    *end = e;
    return e == n;
}

static int last_nonspace(const ByteBuf *o) {
    for (size_t k = o->n; k > 0; k--)
        if (o->p[k - 1] != ' ') return (unsigned char)o->p[k - 1];
    return 0;
}

static int word_is(const char *s, size_t n, const char *w) {
    while (n && *s == ' ') s++, n--;
    while (n && s[n - 1] == ' ') n--;
    if (n != strlen(w)) return 0;
    for (size_t k = 0; k < n; k++)
        if (tolower((unsigned char)s[k]) != w[k]) return 0;
    return 1;
}

/* Pass 2: text and style wrappers, units, degrees. Returns 1 if anything changed. */
static int pass_text(const char *s, ByteBuf *o) {
    size_t n = strlen(s);
    int changed = 0;
    size_t i = 0;
    while (i < n) {
        if (s[i] == '^') {
            size_t j = i + 1;
            while (j < n && s[j] == ' ') j++;
            if (j + 5 <= n && !memcmp(s + j, "\\circ", 5) && !(j + 5 < n && is_letter(s[j + 5]))) {
                i = j + 5;
                changed = 1;
                continue;
            }
            if (j < n && s[j] == '{') {
                size_t k = j + 1;
                while (k < n && s[k] == ' ') k++;
                if (k + 5 <= n && !memcmp(s + k, "\\circ", 5)) {
                    k += 5;
                    while (k < n && s[k] == ' ') k++;
                    if (k < n && s[k] == '}') {
                        i = k + 1;
                        changed = 1;
                        continue;
                    }
                }
            }
            bytebuf_putc(o, s[i++]);
            continue;
        }
        if (s[i] != '\\' || i + 1 >= n || !is_letter(s[i + 1])) {
            if (s[i] == '\\' && i + 1 < n) bytebuf_putc(o, s[i++]); /* keep \{ \\ as pairs */
            bytebuf_putc(o, s[i++]);
            continue;
        }
        size_t j = i + 1;
        while (j < n && is_letter(s[j])) j++;
        const char *name = s + i + 1;
        size_t len = j - i - 1;
        if (name_is(name, len, "circ")) {
            i = j;
            changed = 1;
            continue;
        }
        int is_text = name_in(name, len, TEXT_CMDS), is_wrap = name_in(name, len, WRAP_CMDS);
        if (!is_text && !is_wrap) {
            bytebuf_append(o, s + i, j - i);
            i = j;
            continue;
        }
        changed = 1;
        size_t g = j;
        while (g < n && s[g] == ' ') g++;
        size_t e = g < n && s[g] == '{' ? group_end(s, g, n) : 0;
        if (!e) { /* \mathbf x, or an unclosed group: drop the command only */
            i = j;
            continue;
        }
        const char *content = s + g + 1;
        size_t clen = e - g - 2;
        size_t end;
        int prev = last_nonspace(o);
        if (is_text && only_exponent_left(s, e, n, &end) && prev &&
            (is_digit((char)prev) || prev == '}' || prev == ')' || prev == ']' || prev == '!' || prev == '.')) {
            i = end; /* a unit after a quantity: 864 \mbox{ inches}^2 */
            continue;
        }
        if (is_text && (word_is(content, clen, "and") || word_is(content, clen, "or"))) {
            bytebuf_putc(o, ',');
        } else {
            bytebuf_append(o, content, clen);
        }
        i = e;
    }
    return changed;
}

/* Pass 3: bare trailing unit words after a quantity ("15 cm^2", "5 dollars"). Only words
 * of two or more plain letters preceded by a space are candidates, so single-letter
 * variables and commands (\pi) are never removed. */
static void strip_trailing_words(char *s) {
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ') n--;
    size_t cut = n;
    for (;;) {
        size_t e = cut;
        while (e && s[e - 1] == ' ') e--;
        size_t k = e;
        /* optional ^2, ^{2} */
        if (k >= 2 && is_digit(s[k - 1]) && s[k - 2] == '^') k -= 2;
        else if (k >= 4 && s[k - 1] == '}' && is_digit(s[k - 2]) && s[k - 3] == '{' && s[k - 4] == '^') k -= 4;
        size_t w = k;
        while (w && is_letter(s[w - 1])) w--;
        if (k - w < 2 || w == 0 || s[w - 1] != ' ') break;
        cut = w - 1;
    }
    if (cut == n) return;
    size_t r = cut;
    while (r && s[r - 1] == ' ') r--;
    if (r == 0) return;
    char last = s[r - 1];
    if (is_digit(last) || last == '}' || last == ')') s[r] = '\0';
}

/* Pass 4: removes spaces, except one between a command name and a following letter. */
static void squash_spaces(char *s) {
    size_t w = 0;
    int in_cmd = 0;
    for (size_t r = 0; s[r]; r++) {
        char c = s[r];
        if (c == ' ') {
            size_t k = r;
            while (s[k] == ' ') k++;
            if (in_cmd && is_letter(s[k])) s[w++] = ' ';
            r = k - 1;
            in_cmd = 0;
            continue;
        }
        if (c == '\\') {
            s[w++] = c;
            if (s[r + 1] && !is_letter(s[r + 1])) {
                s[w++] = s[++r];
                in_cmd = 0;
            } else {
                in_cmd = 1;
            }
            continue;
        }
        if (!is_letter(c)) in_cmd = 0;
        s[w++] = c;
    }
    s[w] = '\0';
}

/* Pass 5: x_{1} -> x_1 and x^{2} -> x^2 (one alphanumeric character), so 4210_{5} and
 * 4210_5 have one spelling. */
static void unbrace_scripts(char *s) {
    size_t w = 0;
    for (size_t r = 0; s[r]; r++) {
        if ((s[r] == '_' || s[r] == '^') && s[r + 1] == '{' && s[r + 2] && isalnum((unsigned char)s[r + 2]) &&
            s[r + 3] == '}') {
            s[w++] = s[r];
            s[w++] = s[r + 2];
            r += 3;
            continue;
        }
        s[w++] = s[r];
    }
    s[w] = '\0';
}

void latex_trim(char *s) {
    for (;;) {
        size_t n = strlen(s), a = 0;
        while (a < n && s[a] == ' ') a++;
        while (n > a && s[n - 1] == ' ') n--;
        memmove(s, s + a, n - a);
        n -= a;
        s[n] = '\0';
        if (n >= 2 && s[0] == '{' && group_end(s, 0, n) == n) {
            memmove(s, s + 1, n - 2);
            s[n - 2] = '\0';
            continue;
        }
        return;
    }
}

void latex_strip_thousands(char *s) {
    size_t i = 0;
    if (s[i] == '-' || s[i] == '+') i++;
    size_t d = 0;
    while (is_digit(s[i + d])) d++;
    if (d < 1 || d > 3 || s[i + d] != ',') return;
    size_t k = i + d;
    int groups = 0;
    while (s[k] == ',') {
        for (int q = 1; q <= 3; q++)
            if (!is_digit(s[k + q])) return;
        if (is_digit(s[k + 4])) return;
        k += 4;
        groups++;
    }
    if (s[k] == '.') {
        k++;
        if (!is_digit(s[k])) return;
        while (is_digit(s[k])) k++;
    }
    if (s[k] != '\0' || groups == 0) return;
    size_t w = 0;
    for (size_t r = 0; s[r]; r++)
        if (s[r] != ',') s[w++] = s[r];
    s[w] = '\0';
}

char *latex_normalize(const char *s, size_t n) {
    char *a = pass_commands(s, n);
    /* text groups can nest (\text{\textbf{A}}): a few rounds, bounded */
    for (int round = 0; round < 4; round++) {
        ByteBuf o = {0};
        int changed = pass_text(a, &o);
        free(a);
        a = bytebuf_take(&o);
        if (!changed) break;
    }
    strip_trailing_words(a);
    squash_spaces(a);
    unbrace_scripts(a);
    latex_trim(a);
    /* a trailing full stop ends a sentence, not a number */
    size_t len = strlen(a);
    while (len > 1 && a[len - 1] == '.') a[--len] = '\0';
    latex_trim(a);
    latex_strip_thousands(a);
    return a;
}
