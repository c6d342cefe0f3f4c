/* The answer checker on real data (issue 4):
 *   - MATH-500 dev: the last \boxed{} of each solution is equivalent to its answer
 *     (>= 98% of rows), and 2000 random pairs of problems whose answers differ as strings
 *     are judged not equivalent (>= 99% of pairs). Failing rows are printed.
 *   - GSM8K train + test: all 8,792 rows parse to an integer gold answer.
 * Skips (one "ok - ... skipped" line) when ../shared is absent. */
#include <string.h>

#include "core/rng.h"
#include "data/dataset.h"
#include "rl/reward.h"
#include "test.h"

static int file_there(const char *path) {
    FILE *f = fopen(path, "r");
    if (f) fclose(f);
    return f != NULL;
}

static void math500(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/data/math500/dev.jsonl", shared_dir());
    if (!file_there(path)) {
        TEST_EXPECT(1, "math500: skipped, no shared data", "");
        return;
    }
    DataOptions opt = {.format = DATA_MATH};
    Dataset ds;
    Err err;
    int rc = dataset_load(path, &opt, &ds, NULL, &err);
    TEST_EXPECT(rc == 0 && ds.n == 242, "math500: 242 rows load", "%s (n=%d)", rc ? err.msg : "", rc ? 0 : ds.n);
    if (rc) return;
    int agree = 0;
    for (int i = 0; i < ds.n; i++) {
        char *box;
        int got = boxed_last(ds.items[i].solution, &box);
        if (got && math_equiv(box, ds.items[i].gold)) {
            agree++;
        } else {
            printf("# math500 line %d: boxed '%s' vs answer '%s' judged different\n", ds.items[i].line,
                   got ? box : "(none)", ds.items[i].gold);
        }
        free(box);
    }
    double rate = (double)agree / ds.n;
    printf("# math500 boxed-vs-answer equivalent: %d/%d = %.2f%%\n", agree, ds.n, 100 * rate);
    TEST_EXPECT(rate >= 0.98, "math500: boxed solution equivalent to answer for >= 98% of rows", "%.2f%%", 100 * rate);

    RngKey key = {.seed = 20240604, .purpose = RNG_PURPOSE_TEST};
    int pairs = 0, distinct = 0;
    for (uint32_t draw = 0; pairs < 2000 && draw < 100000; draw++) {
        int a = (int)(rng_uniform(key, 2 * draw) * ds.n), b = (int)(rng_uniform(key, 2 * draw + 1) * ds.n);
        if (a >= ds.n || b >= ds.n || a == b || !strcmp(ds.items[a].gold, ds.items[b].gold)) continue;
        pairs++;
        if (!math_equiv(ds.items[a].gold, ds.items[b].gold)) {
            distinct++;
        } else {
            printf("# math500 pair lines %d/%d: '%s' vs '%s' judged equivalent\n", ds.items[a].line,
                   ds.items[b].line, ds.items[a].gold, ds.items[b].gold);
        }
    }
    rate = pairs ? (double)distinct / pairs : 0;
    printf("# math500 random pairs judged not equivalent: %d/%d = %.2f%%\n", distinct, pairs, 100 * rate);
    TEST_EXPECT(pairs == 2000 && rate >= 0.99, "math500: 2000 random different-answer pairs not equivalent >= 99%",
                "%d pairs, %.2f%%", pairs, 100 * rate);
    dataset_free(&ds);
}

static int is_integer(const char *s) {
    if (*s == '-') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

static void gsm8k(void) {
    const char *files[2] = {"train", "test"};
    int expect_n[2] = {7473, 1319}, total = 0, integers = 0;
    for (int f = 0; f < 2; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/data/gsm8k/%s.jsonl", shared_dir(), files[f]);
        if (!file_there(path)) {
            TEST_EXPECT(1, "gsm8k: skipped, no shared data", "");
            return;
        }
        DataOptions opt = {.format = DATA_GSM8K};
        Dataset ds;
        Err err;
        int rc = dataset_load(path, &opt, &ds, NULL, &err);
        TEST_EXPECT(rc == 0 && ds.n == expect_n[f], files[f][1] == 'r' ? "gsm8k: train loads 7473 rows" : "gsm8k: test loads 1319 rows",
                    "%s (n=%d)", rc ? err.msg : "", rc ? 0 : ds.n);
        if (rc) continue;
        for (int i = 0; i < ds.n; i++) {
            total++;
            if (is_integer(ds.items[i].gold) && ds.items[i].solution && ds.items[i].solution[0]) integers++;
            else printf("# gsm8k %s line %d: gold '%s'\n", files[f], ds.items[i].line, ds.items[i].gold);
        }
        dataset_free(&ds);
    }
    TEST_EXPECT(total == 8792 && integers == total, "gsm8k: all 8,792 rows have an integer gold answer and a solution",
                "%d of %d", integers, total);
}

int main(void) {
    math500();
    gsm8k();
    return test_finish();
}
