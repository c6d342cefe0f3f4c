/* libFuzzer target: the answer checker on arbitrary bytes. The input is split at its
 * first newline into two answers a and b (without a newline, b = a). Invariants (abort on
 * violation): math_equiv returns 0 or 1, is symmetric, and says 1 for an answer and
 * itself unless it normalizes to nothing (blank, "$$"); boxed_last and answer_phase_content return a
 * substring of their input; reward scores are 0, 10 or 100. Time and recursion are
 * bounded by the checker itself (libFuzzer's -timeout catches a hang). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl/latex_norm.h"
#include "rl/reward.h"

#define REQUIRE(c)                                                                 \
    do {                                                                           \
        if (!(c)) {                                                                \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #c, __LINE__);     \
            abort();                                                               \
        }                                                                          \
    } while (0)

static int blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 12000) return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    /* text up to an embedded NUL is what C callers would see */
    char *nl = strchr(buf, '\n');
    const char *a = buf, *b = buf;
    if (nl) {
        *nl = '\0';
        b = nl + 1;
    }
    int ab = math_equiv(a, b), ba = math_equiv(b, a);
    REQUIRE(ab == 0 || ab == 1);
    REQUIRE(ab == ba);
    /* reflexive, except for answers that normalize to nothing */
    int aa = math_equiv(a, a);
    char *na = latex_normalize(a, strlen(a));
    REQUIRE(aa == (strlen(a) > MATH_MAX_LEN || na[0] != '\0'));
    REQUIRE(!blank(a) || aa == 0);
    free(na);
    char *c;
    if (boxed_last(a, &c)) {
        REQUIRE(c && strstr(a, c));
        free(c);
    } else {
        REQUIRE(c == NULL);
    }
    if (answer_phase_content(b, &c)) {
        REQUIRE(c && !strncmp(b, c, strlen(c)));
        free(c);
    } else {
        REQUIRE(c == NULL);
    }
    int r = reward_score(b, a), t = reward_score_text(b, a);
    REQUIRE(r == 0 || r == 10 || r == 100);
    REQUIRE(t == 0 || t == 10 || t == 100);
    free(buf);
    return 0;
}
