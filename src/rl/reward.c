/* Answer extraction and the reward scale (DESIGN.md §1.5). Equivalence is in
 * math_equiv.c. */
#include "rl/reward.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"

static int is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Index just past the '}' closing a brace opened before s[i] (depth 1 at i), or -1.
 * \{ \} are literal braces and \\ a line break, so they never change the depth. */
static long close_brace(const char *s, size_t i) {
    int depth = 1;
    for (; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1]) {
            i++;
            continue;
        }
        if (s[i] == '{') depth++;
        if (s[i] == '}' && --depth == 0) return (long)i + 1;
    }
    return -1;
}

static char *dup_span(const char *s, size_t n) {
    char *t = xmalloc(n + 1);
    memcpy(t, s, n);
    t[n] = '\0';
    return t;
}

int boxed_last(const char *text, char **content) {
    *content = NULL;
    if (!text) return 0;
    const char *last = NULL;
    size_t name_len = 0;
    for (const char *p = text; (p = strchr(p, '\\')) != NULL; p++) {
        size_t k = !strncmp(p + 1, "boxed", 5) ? 5 : !strncmp(p + 1, "fbox", 4) ? 4 : 0;
        if (k && !is_letter(p[1 + k])) last = p, name_len = k;
    }
    if (!last) return 0;
    const char *q = last + 1 + name_len;
    while (*q == ' ') q++;
    if (*q == '{') {
        long end = close_brace(q, 1);
        if (end < 0) return 0;
        *content = dup_span(q + 1, (size_t)end - 2);
        return 1;
    }
    /* "\boxed 5": TeX takes one token; accept the word up to a space or '$' */
    if (q == last + 1 + name_len) return 0;
    size_t n = strcspn(q, " $\n");
    if (n == 0) return 0;
    *content = dup_span(q, n);
    return 1;
}

int answer_phase_content(const char *answer_text, char **content) {
    *content = NULL;
    if (!answer_text) return 0;
    long end = close_brace(answer_text, 0);
    if (end < 0) return 0;
    *content = dup_span(answer_text, (size_t)end - 1);
    return 1;
}

int reward_explain(const char *text, const char *gold, int boxed, const char **reason) {
    char *content;
    int closed = boxed ? boxed_last(text, &content) : answer_phase_content(text, &content);
    if (!closed) {
        *reason = boxed ? "no closed \\boxed{}" : "no closing brace";
        return REWARD_NONE;
    }
    int eq = math_equiv(content, gold);
    free(content);
    *reason = eq ? "equivalent" : "not equivalent to the gold answer";
    return eq ? REWARD_CORRECT : REWARD_WRONG;
}

int reward_score(const char *answer_text, const char *gold) {
    const char *why;
    return reward_explain(answer_text, gold, 0, &why);
}

int reward_score_text(const char *full_text, const char *gold) {
    const char *why;
    return reward_explain(full_text, gold, 1, &why);
}
