/* The answer checker and reward: hand-written cases for every equivalence rule (with
 * negatives), \boxed{} and answer-phase extraction, the 100/10/0 scale, and the pass@k
 * estimator against exact binomials. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "rl/passk.h"
#include "rl/reward.h"
#include "test.h"

typedef struct {
    const char *a, *b;
    int want;
    const char *rule;
} Case;

static const Case CASES[] = {
    /* integers and separators */
    {"1,000", "1000", 1, "thousands comma"},
    {"10{,}000", "10000", 1, "thousands {,}"},
    {"10\\,000", "10000", 1, "thousands \\,"},
    {"10,\\!080", "10080", 1, "thousands ,\\!"},
    {"11,\\! 111,\\! 111,\\! 100", "11111111100", 1, "thousands ,\\! with spaces"},
    {"1,234,567", "1234567", 1, "several groups"},
    {"11111111100", "11111111101", 0, "large integers compared exactly"},
    {"1,2", "12", 0, "a list is not a thousands group"},
    {"(1,250)", "1250", 0, "a point is not a thousands group"},
    {"007", "7", 1, "leading zeros"},
    /* decimals and fractions */
    {"0.5", "\\frac12", 1, "decimal vs \\frac12"},
    {"0.5", "1/2", 1, "decimal vs a/b"},
    {"\\dfrac{1}{2}", "0.5", 1, "\\dfrac"},
    {"\\tfrac{1}{2}", "1/2", 1, "\\tfrac"},
    {"\\frac 34", "0.75", 1, "\\frac with spaced single-character arguments"},
    {"18.90", "18.9", 1, "trailing zero"},
    {".0000672", "6.72\\times10^{-5}", 1, "small decimal vs scientific"},
    {".0000672", ".0000673", 0, "small decimals differ"},
    {"1/2", "2", 0, "1/2 vs 2"},
    {"\\frac{1}{3}", "0.333", 0, "rounded decimal is not the fraction"},
    {"\\frac{3}{56}", "\\frac{3}{65}", 0, "different fractions"},
    {"-\\frac{35}{9}", "-35/9", 1, "negative fraction"},
    {"\\frac{-35}{9}", "-\\frac{35}{9}", 1, "sign inside the fraction"},
    /* signs */
    {"-5", "5", 0, "sign matters"},
    {"+5", "5", 1, "explicit plus"},
    {"-(-3)", "3", 1, "double negation"},
    /* roots and pi */
    {"\\sqrt{2}", "2", 0, "\\sqrt{2} vs 2"},
    {"\\sqrt2", "\\sqrt{2}", 1, "\\sqrt2"},
    {"2\\sqrt{2}", "\\sqrt{8}", 1, "\\sqrt simplification"},
    {"11\\sqrt2", "11\\sqrt{2}", 1, "coefficient times \\sqrt2"},
    {"\\frac{\\sqrt{21}}{5}", "\\sqrt{21}/5", 1, "\\sqrt in \\frac"},
    {"\\sqrt[3]{-8}", "-2", 1, "real cube root"},
    {"\\pi", "3.141592653589793", 1, "\\pi numerically"},
    {"2\\pi", "\\pi \\cdot 2", 1, "\\pi product"},
    {"288 \\pi", "288\\pi", 1, "\\pi with space"},
    {"18+2\\pi", "2\\pi+18", 1, "\\pi sum"},
    {"\\pi", "3.14", 0, "\\pi vs 3.14"},
    {"\\frac{\\pi}{2}", "90", 0, "radians are not degrees"},
    /* degrees, percent, money */
    {"120^\\circ", "120", 1, "^\\circ"},
    {"30^{\\circ}", "30", 1, "^{\\circ}"},
    {"90^\\circ", "45^\\circ", 0, "different angles"},
    {"50\\%", "50", 1, "\\%"},
    {"50\\%", "5", 0, "percent value differs"},
    {"\\$32,\\!348", "32348", 1, "\\$ and separator"},
    {"\\$18.90", "18.9", 1, "\\$ decimal"},
    /* text and units */
    {"\\text{Evelyn}", "Evelyn", 1, "\\text word"},
    {"\\text{Evelyn}", "evelyn", 1, "word case"},
    {"\\text{Evelyn}", "\\text{Emily}", 0, "different words"},
    {"864 \\mbox{ inches}^2", "864", 1, "\\mbox unit with exponent"},
    {"15\\mbox{ cm}^2", "15", 1, "\\mbox unit"},
    {"\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", 1, "\\text unit after \\frac"},
    {"5 \\text{ cm}", "5", 1, "\\text unit"},
    {"15 cm^2", "15", 1, "bare unit word"},
    {"5 dollars", "6", 0, "unit removed, value differs"},
    {"\\textbf{(C)}", "C", 1, "\\textbf choice"},
    {"(C)", "(D)", 0, "different choices"},
    /* wrappers and spacing */
    {"$5$", "5", 1, "$"},
    {"\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", 1, "\\left \\right"},
    {"\\!5", "5", 1, "\\!"},
    {"2 \\cdot 3", "6", 1, "\\cdot"},
    {"2\\times 3", "6", 1, "\\times"},
    {"{5}", "5", 1, "outer braces"},
    {"5.", "5", 1, "full stop"},
    {"\\displaystyle\\frac{1}{2}", "0.5", 1, "\\displaystyle"},
    /* x = 5 */
    {"x=5", "5", 1, "x=5 vs 5"},
    {"x = 5", "x=5", 1, "x = 5 vs x=5"},
    {"k=3", "5", 0, "k=3 vs 5"},
    {"y = 2x + 3", "y=3+2x", 1, "equation sides as expressions"},
    {"y = 2x + 3", "y=2x+4", 0, "different equations"},
    {"f(x)=x^2", "x^2", 1, "function name on the left"},
    {"(x,y)=(1,2)", "(1,2)", 1, "tuple of names on the left"},
    /* tuples, intervals, sets */
    {"(1,2)", "(2,1)", 0, "tuples are ordered"},
    {"(1,2)", "(1, 2)", 1, "tuple spacing"},
    {"(6,31,-1)", "(6, 31, -1)", 1, "triple"},
    {"(3,\\frac{\\pi}{2})", "(3,1.5707963267948966)", 1, "tuple elements by value"},
    {"[1,2)", "[1,2]", 0, "interval bracket types"},
    {"[1,2)", "(1,2)", 0, "interval open vs half-open"},
    {"(5,\\infty)", "(5, \\infty)", 1, "interval to infinity"},
    {"(-\\infty,5]", "(-\\infty,5)", 0, "infinite interval bracket"},
    {"(2,12) \\cup (12,102)", "(12,102)\\cup(2,12)", 1, "union of intervals"},
    {"(2,12) \\cup (12,102)", "(2,12)\\cup(12,103)", 0, "union differs"},
    {"\\{1,2\\}", "\\{2,1\\}", 1, "sets are unordered"},
    {"\\{1,2\\}", "\\{1,3\\}", 0, "different sets"},
    {"\\{1,2\\}", "\\{1,2,3\\}", 0, "set sizes"},
    {"1,-2", "-2, 1", 1, "bare list of solutions, any order"},
    {"3, 5, 7", "7,5,3", 1, "bare list of three"},
    {"1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}", 1, "\\pm expands to two values"},
    {"1 \\pm \\sqrt{19}", "1+\\sqrt{19}", 0, "\\pm is two values"},
    {"\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}", 1, "matrix"},
    {"\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", "\\begin{pmatrix} 0.2 \\\\ -3.6 \\end{pmatrix}", 1, "vector by value"},
    {"\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix} 2 & 1 \\end{pmatrix}", 0, "matrix order"},
    /* algebra by random points */
    {"(a+5)(b+2)", "ab+2a+5b+10", 1, "expanded product"},
    {"2k+2", "2(k+1)", 1, "factored"},
    {"5r^5", "5r^4", 0, "different exponent"},
    {"x^8 + x^7 + x^6 + x^5 + x^4 + x^3 + x^2 + x + 1", "\\frac{x^9-1}{x-1}", 1, "geometric sum"},
    {"\\cot x", "\\frac{\\cos x}{\\sin x}", 1, "trig identity"},
    {"\\sin^2 x + \\cos^2 x", "1", 1, "function powers"},
    {"x^2", "y^2", 0, "different variables"},
    {"2x", "x2", 1, "implicit multiplication order"},
    {"x+1", "x", 0, "expression vs variable"},
    {"6 - 5i", "6-5i", 1, "complex"},
    {"6-5i", "6+5i", 0, "complex conjugate"},
    {"i^2", "-1", 1, "imaginary unit"},
    {"\\binom{5}{2}", "10", 1, "\\binom"},
    {"5!", "120", 1, "factorial"},
    {"|-3|", "3", 1, "absolute value"},
    /* numerals with a base are not numbers */
    {"40_9", "36", 0, "base subscript is a numeral"},
    {"4210_{5}", "4210_5", 1, "subscript braces"},
    /* degenerate */
    {"", "", 0, "empty answers are never equivalent"},
    {"5", "", 0, "empty vs number"},
};

static void equivalence_cases(void) {
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const Case *c = &CASES[i];
        int ab = math_equiv(c->a, c->b), ba = math_equiv(c->b, c->a);
        char name[256];
        snprintf(name, sizeof name, "math_equiv %s: '%s' %s '%s'", c->rule, c->a, c->want ? "==" : "!=", c->b);
        TEST_EXPECT(ab == c->want && ba == c->want, name, "got %d (reversed %d), want %d", ab, ba, c->want);
    }
}

static void expect_extract(int got, char *content, int want, const char *want_content, const char *name) {
    int ok = got == want && (want ? content && !strcmp(content, want_content) : content == NULL);
    TEST_EXPECT(ok, name, "got %d '%s', want %d '%s'", got, content ? content : "(null)", want,
                want ? want_content : "(null)");
    free(content);
}

static void extraction(void) {
    char *c;
    int r = boxed_last("so \\boxed{\\frac{1}{2}} is it", &c);
    expect_extract(r, c, 1, "\\frac{1}{2}", "boxed_last: nested braces");
    r = boxed_last("first \\boxed{1}, then \\boxed{\\{1,\\sqrt{2}\\}}.", &c);
    expect_extract(r, c, 1, "\\{1,\\sqrt{2}\\}", "boxed_last: the last box, escaped braces ignored");
    r = boxed_last("\\fbox{42}", &c);
    expect_extract(r, c, 1, "42", "boxed_last: \\fbox");
    r = boxed_last("\\boxed {7}", &c);
    expect_extract(r, c, 1, "7", "boxed_last: space before the brace");
    r = boxed_last("$\\boxed 5$", &c);
    expect_extract(r, c, 1, "5", "boxed_last: \\boxed 5 (one token)");
    r = boxed_last("\\boxed{1} and then \\boxed{2", &c);
    expect_extract(r, c, 0, NULL, "boxed_last: last box unclosed");
    r = boxed_last("no box here {1}", &c);
    expect_extract(r, c, 0, NULL, "boxed_last: no box");
    r = boxed_last("\\boxedx{3}", &c);
    expect_extract(r, c, 0, NULL, "boxed_last: \\boxedx is another command");
    r = boxed_last("\\boxed{}", &c);
    expect_extract(r, c, 1, "", "boxed_last: empty box");

    r = answer_phase_content("7}. The end", &c);
    expect_extract(r, c, 1, "7", "answer phase: up to the closing brace");
    r = answer_phase_content("\\frac{1}{2}}\n", &c);
    expect_extract(r, c, 1, "\\frac{1}{2}", "answer phase: nested braces");
    r = answer_phase_content("\\{1,2\\}} done", &c);
    expect_extract(r, c, 1, "\\{1,2\\}", "answer phase: escaped braces");
    r = answer_phase_content("\\frac{1}{2", &c);
    expect_extract(r, c, 0, NULL, "answer phase: not closed");
    r = answer_phase_content("", &c);
    expect_extract(r, c, 0, NULL, "answer phase: empty");
}

static void scores(void) {
    TEST_EXPECT(reward_score("72}", "72") == 100, "reward: correct 100", "%d", reward_score("72}", "72"));
    TEST_EXPECT(reward_score("1,080}", "1080") == 100, "reward: separators 100", "");
    TEST_EXPECT(reward_score("73}", "72") == 10, "reward: closed but wrong 10", "");
    TEST_EXPECT(reward_score("}", "72") == 10, "reward: closed empty box 10", "");
    TEST_EXPECT(reward_score("72", "72") == 0, "reward: not closed 0", "");
    TEST_EXPECT(reward_score("\\frac{1}{2", "1/2") == 0, "reward: unclosed nested 0", "");
    TEST_EXPECT(reward_score_text("so the answer is \\boxed{\\dfrac{1}{2}}.", "0.5") == 100, "reward_text: 100", "");
    TEST_EXPECT(reward_score_text("\\boxed{3}", "0.5") == 10, "reward_text: 10", "");
    TEST_EXPECT(reward_score_text("The final answer is: 3", "3") == 0, "reward_text: no box 0", "");
    const char *why;
    int s = reward_explain("5}", "x=5", 0, &why);
    TEST_EXPECT(s == 100 && !strcmp(why, "equivalent"), "reward_explain: reason", "%d %s", s, why);
}

/* Exact C(n, k) for n <= 62 in 64-bit integers (Pascal's triangle). */
static uint64_t binom_exact(int n, int k) {
    if (k < 0 || k > n) return 0;
    uint64_t row[64] = {1};
    for (int i = 1; i <= n; i++)
        for (int j = i; j > 0; j--) row[j] += row[j - 1];
    return row[k];
}

static void passk(void) {
    const int cs[4] = {0, 1, 16, 32};
    double worst = 0;
    int bad = 0;
    for (int ci = 0; ci < 4; ci++) {
        for (int k = 1; k <= 32; k++) {
            int n = 32, c = cs[ci];
            long double exact = 1.0L - (long double)binom_exact(n - c, k) / (long double)binom_exact(n, k);
            double got = pass_at_k(n, c, k);
            double e = fabs(got - (double)exact);
            if (e > worst) worst = e;
            if (!(e <= 1e-13)) {
                bad++;
                printf("# pass@%d n=%d c=%d: got %.17g exact %.17Lg\n", k, n, c, got, exact);
            }
        }
    }
    TEST_EXPECT(bad == 0, "pass@k: n=32, c in {0,1,16,32}, k=1..32 equal exact binomials", "%d off, worst %.3g", bad,
                worst);
    TEST_EXPECT(pass_at_k(32, 0, 5) == 0.0 && pass_at_k(32, 32, 1) == 1.0 && fabs(pass_at_k(32, 1, 1) - 1.0 / 32) < 1e-15,
                "pass@k: edge values", "");
    TEST_EXPECT(fabs(pass_at_k(32, 16, 1) - 0.5) < 1e-15, "pass@1 is c/n", "%.17g", pass_at_k(32, 16, 1));
    TEST_EXPECT(isnan(pass_at_k(4, 1, 5)) && isnan(pass_at_k(4, 5, 1)) && isnan(pass_at_k(0, 0, 1)),
                "pass@k: invalid arguments give NAN", "");
    int n[3] = {4, 4, 8}, c[3] = {0, 4, 2};
    double m = pass_at_k_mean(n, c, 3, 2);
    double want = (0.0 + 1.0 + (1.0 - 15.0 / 28.0)) / 3.0;
    TEST_EXPECT(fabs(m - want) < 1e-15, "pass@k mean over problems", "%.17g vs %.17g", m, want);
}

/* Hostile inputs finish quickly and never claim equivalence by accident. */
static void robustness(void) {
    char deep[4000];
    int k = 0;
    for (; k < 1500; k++) deep[k] = '(';
    deep[k++] = '1';
    for (int j = 0; j < 1500 && k < (int)sizeof deep - 1; j++) deep[k++] = ')';
    deep[k] = '\0';
    TEST_EXPECT(math_equiv(deep, "1") == 0, "nesting past the depth limit is not evaluated", "");
    TEST_EXPECT(math_equiv("((((((((((((((((((((1))))))))))))))))))))", "1") == 1, "20 levels of parentheses evaluate", "");
    char sq[4000] = "";
    for (int j = 0; j < 600; j++) strcat(sq, "\\sqrt");
    strcat(sq, "2");
    TEST_EXPECT(math_equiv(sq, "2") == 0, "a long \\sqrt chain is bounded and not equal to 2", "");
    char big[9000];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    TEST_EXPECT(math_equiv(big, big) == 1 && math_equiv(big, "1") == 0, "over-long answers compared verbatim", "");
    TEST_EXPECT(math_equiv("2^{2^{2^{2^{2^{2}}}}}", "3") == 0, "overflowing powers are not equal", "");
    TEST_EXPECT(math_equiv("\\frac{1}{0}", "\\frac{2}{0}") == 0, "division by zero is not a value", "");
}

int main(void) {
    equivalence_cases();
    extraction();
    scores();
    passk();
    robustness();
    return test_finish();
}
