/* Recursive-descent evaluator for normalized LaTeX answers (see math_expr.h).
 *
 * Grammar (spaces skipped everywhere):
 *   expr    = term { ('+' | '-') term }
 *   term    = factor { ('*' | '/' | \cdot | \times | \div) factor | power }   (juxtaposition
 *             is multiplication, left to right: 1/2x = (1/2)x)
 *   factor  = ('-' | '+') factor | power
 *   power   = primary { '!' } [ '^' exponent ]
 *   exponent= '{' expr '}' | ('-'|'+') exponent | number | letter | command [ '^' exponent ]
 *   primary = number | variable | '(' expr ')' | '[' expr ']' | '{' expr '}' | '|' expr '|'
 *           | \frac arg arg | \sqrt ['[' expr ']'] arg | \binom arg arg | \pi | function
 *           | greek | \lfloor expr \rfloor | \lceil expr \rceil
 *   arg     = '{' expr '}' | one digit | one letter | command primary   (TeX: \frac12)
 * Every recursive rule goes through enter(), which fails past EXPR_MAX_DEPTH.
 */
#include "rl/math_expr.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

typedef struct {
    const char *s;
    size_t n, i;
    int depth, err, has_vars, point, in_abs;
} P;

typedef enum { K_NONE, K_MUL, K_DIV, K_VALUE } CmdKind;

static const char *const FUNCS[] = {"sin", "cos", "tan", "cot", "sec", "csc", "arcsin",
                                    "arccos", "arctan", "sinh", "cosh", "tanh", "ln", "log",
                                    "exp", NULL};
static const char *const GREEK[] = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
    "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau",
    "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda",
    "Xi", "Sigma", "Phi", "Psi", "Omega", NULL};

static int is_letter(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int fail(P *p) {
    p->err = 1;
    return 0;
}

static int enter(P *p) {
    if (++p->depth > EXPR_MAX_DEPTH) return fail(p);
    return !p->err;
}
static void leave(P *p) { p->depth--; }

static int peek(P *p) {
    while (p->i < p->n && p->s[p->i] == ' ') p->i++;
    return p->i < p->n ? (unsigned char)p->s[p->i] : 0;
}

/* At p->s[at] == '\\': the command's letters (name, len). */
static size_t cmd_name(const P *p, size_t at, const char **name) {
    size_t j = at + 1;
    while (j < p->n && is_letter((unsigned char)p->s[j])) j++;
    *name = p->s + at + 1;
    return j - at - 1;
}

static int name_is(const char *name, size_t len, const char *want) {
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

static int name_in(const char *name, size_t len, const char *const *list) {
    for (; *list; list++)
        if (name_is(name, len, *list)) return 1;
    return 0;
}

static CmdKind cmd_kind(const char *name, size_t len) {
    if (name_is(name, len, "cdot") || name_is(name, len, "times")) return K_MUL;
    if (name_is(name, len, "div")) return K_DIV;
    if (name_is(name, len, "frac") || name_is(name, len, "sqrt") || name_is(name, len, "binom") ||
        name_is(name, len, "pi") || name_is(name, len, "lfloor") || name_is(name, len, "lceil") ||
        name_in(name, len, FUNCS) || name_in(name, len, GREEK))
        return K_VALUE;
    return K_NONE;
}

/* A variable's value at a point: a pure function of its name and the point index, in
 * [1.1, 2.9] so that roots and logs of simple expressions stay real and nothing sits on
 * a small integer where different expressions could agree by accident. */
static double var_value(const char *name, size_t len, int point) {
    uint32_t h = 2166136261u;
    for (size_t k = 0; k < len; k++) h = (h ^ (unsigned char)name[k]) * 16777619u;
    RngKey key = {.seed = 0x736f6674636f7431ull, .step = 0, .prompt = 0, .sample = h,
                  .position = (uint32_t)point, .purpose = RNG_PURPOSE_DATA};
    return 1.1 + 1.8 * (double)rng_uniform(key, 0);
}

static double complex parse_expr(P *p);
static double complex parse_factor(P *p);
static double complex parse_power(P *p);
static double complex parse_primary(P *p);

static int expect(P *p, char c) {
    if (peek(p) != (unsigned char)c) return fail(p);
    p->i++;
    return 1;
}

static int expect_cmd(P *p, const char *want) {
    if (peek(p) != '\\') return fail(p);
    const char *name;
    size_t len = cmd_name(p, p->i, &name);
    if (!name_is(name, len, want)) return fail(p);
    p->i += len + 1;
    return 1;
}

static double complex parse_number(P *p) {
    size_t start = p->i;
    int dots = 0;
    while (p->i < p->n && (is_digit((unsigned char)p->s[p->i]) || p->s[p->i] == '.')) {
        if (p->s[p->i] == '.' && ++dots > 1) return fail(p);
        p->i++;
    }
    size_t len = p->i - start;
    /* a base subscript (40_9) names a numeral, not a value we may compare numerically */
    if (len == 0 || len > 400 || (len == 1 && dots) || (p->i < p->n && p->s[p->i] == '_')) return fail(p);
    char buf[402];
    memcpy(buf, p->s + start, len);
    buf[len] = '\0';
    return strtod(buf, NULL);
}

/* One TeX macro argument: a brace group, or a single digit/letter, or a command. */
static double complex parse_arg(P *p) {
    if (!enter(p)) return 0;
    double complex v = 0;
    int c = peek(p);
    if (c == '{') {
        p->i++;
        v = parse_expr(p);
        expect(p, '}');
    } else if (is_digit(c)) {
        char d = p->s[p->i++];
        v = d - '0';
    } else if (is_letter(c) || c == '\\') {
        if (c == '\\') {
            v = parse_primary(p);
        } else { /* single letter, no subscript: \frac ab */
            const char *name = p->s + p->i++;
            if (*name == 'i') {
                v = I;
            } else {
                p->has_vars = 1;
                v = var_value(name, 1, p->point);
            }
        }
    } else {
        fail(p);
    }
    leave(p);
    return v;
}

static double complex do_pow(double complex b, double complex e) {
    if (cimag(b) == 0 && cimag(e) == 0) {
        double x = creal(b), y = creal(e);
        if (x > 0 || y == floor(y)) return pow(x, y);
        if (x == 0) return y > 0 ? 0.0 : NAN;
    }
    if (b == 0) return creal(e) > 0 ? 0.0 : NAN;
    return cpow(b, e);
}

static double complex parse_exponent(P *p) {
    if (!enter(p)) return 0;
    double complex v = 0;
    int c = peek(p);
    if (c == '{') {
        p->i++;
        v = parse_expr(p);
        expect(p, '}');
    } else if (c == '-' || c == '+') {
        p->i++;
        v = parse_exponent(p);
        if (c == '-') v = -v;
    } else if (is_digit(c) || c == '.') {
        /* all digits, as plain text (x^10) means, not TeX's single character */
        v = parse_number(p);
    } else if (is_letter(c) || c == '\\') {
        v = parse_arg(p);
    } else {
        fail(p);
    }
    if (!p->err && peek(p) == '^') {
        p->i++;
        v = do_pow(v, parse_exponent(p));
    }
    leave(p);
    return v;
}

static double complex factorial(double complex x) {
    double r = creal(x);
    if (cimag(x) != 0 || r < 0 || r > 170 || r != floor(r)) return NAN;
    double f = 1;
    for (int k = 2; k <= (int)r; k++) f *= k;
    return f;
}

static double complex binom(double complex n, double complex k) {
    double a = creal(n), b = creal(k);
    if (cimag(n) != 0 || cimag(k) != 0 || a != floor(a) || b != floor(b) || a < 0 || a > 1e6) return NAN;
    if (b < 0 || b > a) return 0;
    if (b > a - b) b = a - b;
    double r = 1;
    for (int j = 1; j <= (int)b; j++) r = r * (a - b + j) / j;
    return floor(r + 0.5);
}

static double complex apply_func(const char *f, size_t len, double complex x) {
    if (name_is(f, len, "sin")) return csin(x);
    if (name_is(f, len, "cos")) return ccos(x);
    if (name_is(f, len, "tan")) return ctan(x);
    if (name_is(f, len, "cot")) return 1.0 / ctan(x);
    if (name_is(f, len, "sec")) return 1.0 / ccos(x);
    if (name_is(f, len, "csc")) return 1.0 / csin(x);
    if (name_is(f, len, "arcsin")) return casin(x);
    if (name_is(f, len, "arccos")) return cacos(x);
    if (name_is(f, len, "arctan")) return catan(x);
    if (name_is(f, len, "sinh")) return csinh(x);
    if (name_is(f, len, "cosh")) return ccosh(x);
    if (name_is(f, len, "tanh")) return ctanh(x);
    if (name_is(f, len, "exp")) return cexp(x);
    if (x == 0) return NAN;
    return clog(x); /* ln, log */
}

static double complex parse_command(P *p) {
    const char *name;
    size_t len = cmd_name(p, p->i, &name);
    if (len == 0) return fail(p);
    p->i += len + 1;
    if (name_is(name, len, "pi")) return M_PI;
    if (name_is(name, len, "frac")) {
        double complex a = parse_arg(p);
        double complex b = parse_arg(p);
        return a / b;
    }
    if (name_is(name, len, "binom")) {
        double complex a = parse_arg(p);
        double complex b = parse_arg(p);
        return binom(a, b);
    }
    if (name_is(name, len, "sqrt")) {
        double complex idx = 2;
        if (peek(p) == '[') {
            p->i++;
            idx = parse_expr(p);
            expect(p, ']');
        }
        double complex x = parse_arg(p);
        if (p->err) return 0;
        if (idx == 2) return cimag(x) == 0 && creal(x) >= 0 ? sqrt(creal(x)) : csqrt(x);
        double r = creal(idx);
        /* real odd roots of negative numbers: \sqrt[3]{-8} = -2 */
        if (cimag(x) == 0 && cimag(idx) == 0 && creal(x) < 0 && r == floor(r) && fmod(r, 2) != 0)
            return -pow(-creal(x), 1.0 / r);
        return do_pow(x, 1.0 / idx);
    }
    if (name_is(name, len, "lfloor") || name_is(name, len, "lceil")) {
        int fl = name_is(name, len, "lfloor");
        double complex x = parse_expr(p);
        expect_cmd(p, fl ? "rfloor" : "rceil");
        if (cimag(x) != 0) return NAN;
        return fl ? floor(creal(x)) : ceil(creal(x));
    }
    if (name_in(name, len, FUNCS)) {
        double complex power = 1, base = 0;
        int has_base = 0;
        for (int k = 0; k < 2 && !p->err; k++) {
            int c = peek(p);
            if (c == '^') {
                p->i++;
                power = parse_exponent(p);
            } else if (c == '_' && name_is(name, len, "log")) {
                p->i++;
                base = parse_arg(p);
                has_base = 1;
            }
        }
        double complex x = peek(p) == '(' ? parse_primary(p) : parse_factor(p);
        if (p->err) return 0;
        double complex v = apply_func(name, len, x);
        if (has_base) v = (base == 0 || base == 1) ? NAN : v / clog(base);
        return power == 1 ? v : do_pow(v, power);
    }
    if (name_in(name, len, GREEK)) {
        p->has_vars = 1;
        return var_value(name, len, p->point);
    }
    return fail(p); /* \infty, \emptyset, \cup, ... are not values */
}

static double complex parse_variable(P *p) {
    size_t start = p->i++;
    if (p->i < p->n && p->s[p->i] == '_') {
        p->i++;
        int c = peek(p);
        if (c == '{') {
            int depth = 0;
            for (; p->i < p->n; p->i++) {
                if (p->s[p->i] == '{') depth++;
                if (p->s[p->i] == '}' && --depth == 0) break;
            }
            if (p->i >= p->n) return fail(p);
            p->i++;
        } else if (is_letter(c) || is_digit(c)) {
            p->i++;
        } else {
            return fail(p);
        }
    } else if (p->s[start] == 'i') {
        return I;
    }
    p->has_vars = 1;
    return var_value(p->s + start, p->i - start, p->point);
}

static double complex parse_primary(P *p) {
    if (!enter(p)) return 0;
    double complex v = 0;
    int c = peek(p);
    if (is_digit(c) || c == '.') {
        v = parse_number(p);
    } else if (is_letter(c)) {
        v = parse_variable(p);
    } else if (c == '(' || c == '[' || c == '{') {
        p->i++;
        v = parse_expr(p);
        expect(p, c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == '|') {
        p->i++;
        p->in_abs++;
        v = cabs(parse_expr(p));
        p->in_abs--;
        expect(p, '|');
    } else if (c == '\\') {
        v = parse_command(p);
    } else {
        fail(p);
    }
    leave(p);
    return v;
}

static double complex parse_power(P *p) {
    double complex v = parse_primary(p);
    while (!p->err && p->i < p->n && p->s[p->i] == '!') {
        p->i++;
        v = factorial(v);
    }
    if (!p->err && peek(p) == '^') {
        p->i++;
        v = do_pow(v, parse_exponent(p));
    }
    return v;
}

static double complex parse_factor(P *p) {
    if (!enter(p)) return 0;
    double complex v;
    int c = peek(p);
    if (c == '-' || c == '+') {
        p->i++;
        v = parse_factor(p);
        if (c == '-') v = -v;
    } else {
        v = parse_power(p);
    }
    leave(p);
    return v;
}

/* Can juxtaposition continue the product here? */
static int starts_implicit(P *p) {
    int c = peek(p);
    if (is_digit(c) || c == '.' || is_letter(c) || c == '(' || c == '[' || c == '{') return 1;
    if (c == '|') return p->in_abs == 0;
    if (c == '\\') {
        const char *name;
        size_t len = cmd_name(p, p->i, &name);
        return cmd_kind(name, len) == K_VALUE;
    }
    return 0;
}

static double complex parse_term(P *p) {
    double complex v = parse_factor(p);
    while (!p->err) {
        int c = peek(p);
        if (c == '*' || c == '/') {
            p->i++;
            double complex w = parse_factor(p);
            v = c == '*' ? v * w : v / w;
        } else if (c == '\\') {
            const char *name;
            size_t len = cmd_name(p, p->i, &name);
            CmdKind k = cmd_kind(name, len);
            if (k == K_MUL || k == K_DIV) {
                p->i += len + 1;
                double complex w = parse_factor(p);
                v = k == K_MUL ? v * w : v / w;
            } else if (k == K_VALUE) {
                v *= parse_power(p);
            } else {
                break;
            }
        } else if (starts_implicit(p)) {
            v *= parse_power(p);
        } else {
            break;
        }
    }
    return v;
}

static double complex parse_expr(P *p) {
    if (!enter(p)) return 0;
    double complex v = parse_term(p);
    while (!p->err) {
        int c = peek(p);
        if (c != '+' && c != '-') break;
        p->i++;
        double complex w = parse_term(p);
        v = c == '+' ? v + w : v - w;
    }
    leave(p);
    return v;
}

int expr_eval(const char *s, size_t n, int point, double complex *out, int *has_vars) {
    P p = {.s = s, .n = n, .point = point};
    if (n == 0) return -1;
    double complex v = parse_expr(&p);
    if (p.err || peek(&p) != 0) return -1;
    *out = v;
    if (has_vars) *has_vars = p.has_vars;
    return 0;
}
