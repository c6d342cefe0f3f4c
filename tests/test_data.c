/* Dataset readers and the synthetic generator: exact error messages for malformed lines,
 * --skip-bad-lines counts, every format's fields, the MMLU/ARC files, and the generator's
 * determinism, split disjointness, arithmetic and GSM8K round trip. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/synth.h"
#include "rl/reward.h"
#include "test.h"

#define SRC "mem.jsonl"

static int parse(const char *text, DataOptions opt, Dataset *ds, BadLines *bad, Err *err) {
    return dataset_parse(text, strlen(text), SRC, &opt, ds, bad, err);
}

static void expect_error(const char *text, DataOptions opt, const char *want, const char *name) {
    Dataset ds;
    Err err = {{0}};
    int rc = parse(text, opt, &ds, NULL, &err);
    TEST_EXPECT(rc == -1 && !strcmp(err.msg, want), name, "rc %d, message '%s', want '%s'", rc, err.msg, want);
    if (rc == 0) dataset_free(&ds);
}

static void formats(void) {
    DataOptions gsm = {.format = DATA_GSM8K};
    Dataset ds;
    Err err;
    const char *ok = "{\"question\": \"Q1\", \"answer\": \"Step <<2*3=6>>6.\\n#### 1,234\"}\n"
                     "\n"
                     "{\"question\": \"Q2\", \"answer\": \"#### -7\"}\r\n";
    int rc = parse(ok, gsm, &ds, NULL, &err);
    TEST_EXPECT(rc == 0 && ds.n == 2 && !strcmp(ds.items[0].gold, "1234") && !strcmp(ds.items[0].question, "Q1") &&
                    !strcmp(ds.items[0].solution, "Step <<2*3=6>>6.") && ds.items[0].line == 1 &&
                    !strcmp(ds.items[1].gold, "-7") && ds.items[1].line == 3,
                "gsm8k: gold without separators, solution, line numbers (blank lines skipped)", "%s",
                rc ? err.msg : "wrong fields");
    if (rc == 0) dataset_free(&ds);

    DataOptions math = {.format = DATA_MATH};
    rc = parse("{\"problem\": \"P\", \"answer\": \"\\\\frac{1}{2}\", \"solution\": \"so \\\\boxed{\\\\frac12}\"}\n"
               "{\"problem\": \"P2\", \"solution\": \"hence \\\\boxed{x^{2}}.\"}\n"
               "{\"problem\": \"P3\", \"answer\": 5}\n",
               math, &ds, NULL, &err);
    TEST_EXPECT(rc == 0 && ds.n == 3 && !strcmp(ds.items[0].gold, "\\frac{1}{2}") &&
                    !strcmp(ds.items[1].gold, "x^{2}") && !strcmp(ds.items[2].gold, "5") && ds.items[2].solution == NULL,
                "math: answer field, else the solution's last box; numeric answers; solution optional", "%s",
                rc ? err.msg : "wrong fields");
    if (rc == 0) dataset_free(&ds);

    DataOptions dss = {.format = DATA_DEEPSCALER};
    rc = parse("{\"problem\": \"P\", \"answer\": \"3\", \"solution\": \"S\"}\n", dss, &ds, NULL, &err);
    TEST_EXPECT(rc == 0 && ds.n == 1 && !strcmp(ds.items[0].solution, "S"), "deepscaler: all three fields", "%s",
                rc ? err.msg : "");
    if (rc == 0) dataset_free(&ds);
    expect_error("{\"problem\": \"P\", \"answer\": \"3\"}\n", dss,
                 SRC ":1: missing field \"solution\" (expected a string)", "deepscaler: solution required");

    DataOptions gen = {.format = DATA_GENERIC, .question_key = "q", .answer_key = "a", .solution_key = "why"};
    rc = parse("{\"q\": \"Q\", \"a\": \"42\", \"why\": \"W\"}\n{\"q\": \"Q\", \"a\": \"43\"}\n", gen, &ds, NULL, &err);
    TEST_EXPECT(rc == 0 && ds.n == 2 && !strcmp(ds.items[0].gold, "42") && !strcmp(ds.items[0].solution, "W") &&
                    ds.items[1].solution == NULL,
                "generic: caller's field names", "%s", rc ? err.msg : "");
    if (rc == 0) dataset_free(&ds);
    DataOptions genh = {.format = DATA_GENERIC, .question_key = "q", .answer_key = "a", .gold_after_hashes = 1};
    rc = parse("{\"q\": \"Q\", \"a\": \"work\\n#### 9\"}\n", genh, &ds, NULL, &err);
    TEST_EXPECT(rc == 0 && ds.n == 1 && !strcmp(ds.items[0].gold, "9") && !strcmp(ds.items[0].solution, "work"),
                "generic: gold after ####", "%s", rc ? err.msg : "");
    if (rc == 0) dataset_free(&ds);
}

static void errors(void) {
    DataOptions gsm = {.format = DATA_GSM8K};
    const char *good = "{\"question\": \"Q\", \"answer\": \"#### 1\"}\n";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%s{\"question\": \"Q\", \"answer\": \"#### 1\"\n", good, good);
    expect_error(buf, gsm, SRC ":3: bad JSON at column 36 (expected one JSON object per line)",
                 "error: bad JSON names line and column");
    snprintf(buf, sizeof buf, "%s{\"question\": \"Q\"} x\n", good);
    expect_error(buf, gsm, SRC ":2: bad JSON at column 18: text after the object (expected one JSON object per line)",
                 "error: text after the object");
    snprintf(buf, sizeof buf, "%s[1, 2]\n", good);
    expect_error(buf, gsm, SRC ":2: expected a JSON object, got an array", "error: not an object");
    snprintf(buf, sizeof buf, "%s%s{\"answer\": \"#### 1\"}\n", good, good);
    expect_error(buf, gsm, SRC ":3: missing field \"question\" (expected a string)", "error: missing field");
    expect_error("{\"question\": [1], \"answer\": \"#### 1\"}\n", gsm,
                 SRC ":1: field \"question\" must be a string, got an array", "error: wrong field type");
    expect_error("{\"question\": \"Q\", \"answer\": \"it is 5\"}\n", gsm,
                 SRC ":1: cannot extract the gold answer from \"answer\": no '#### ' before the final answer",
                 "error: no #### in the answer");
    expect_error("{\"question\": \"Q\", \"answer\": \"#### five\"}\n", gsm,
                 SRC ":1: cannot extract the gold answer from \"answer\": gold answer 'five' after '####' is not a number",
                 "error: unparseable gold");
    expect_error("{\"problem\": \"P\", \"solution\": \"no box\"}\n", (DataOptions){.format = DATA_MATH},
                 SRC ":1: missing field \"answer\" (expected a string) and no \\boxed{} in \"solution\"",
                 "error: math row without answer or box");
    expect_error("{\"problem\": \"P\", \"answer\": \"  \"}\n", (DataOptions){.format = DATA_MATH},
                 SRC ":1: gold answer in \"answer\" is empty", "error: empty gold");
    expect_error("\n\n", gsm, SRC ": no usable rows (0 bad lines)", "error: empty file");

    /* skip_bad_lines: 3 bad of 6 */
    snprintf(buf, sizeof buf, "%snot json\n%s{\"question\": \"Q\"}\n%s{\"question\": \"Q\", \"answer\": \"#### x\"}\n",
             good, good, good);
    DataOptions skip = {.format = DATA_GSM8K, .skip_bad_lines = 1};
    Dataset ds;
    BadLines bad;
    Err err;
    int rc = parse(buf, skip, &ds, &bad, &err);
    TEST_EXPECT(rc == 0 && ds.n == 3 && bad.n == 3 && ds.items[2].line == 5 &&
                    !strcmp(bad.first.msg, SRC ":2: bad JSON at column 1 (expected one JSON object per line)"),
                "skip_bad_lines: 3 rows kept, 3 bad counted, first message kept", "rc %d n %d bad %d '%s'", rc,
                rc ? 0 : ds.n, bad.n, bad.first.msg);
    if (rc == 0) dataset_free(&ds);
    rc = parse("x\ny\n", skip, &ds, &bad, &err);
    TEST_EXPECT(rc == -1 && !strcmp(err.msg, SRC ": no usable rows (2 bad lines)"), "skip_bad_lines: all bad is an error",
                "%s", err.msg);
    Err e2;
    rc = dataset_load("/nonexistent/x.jsonl", &skip, &ds, NULL, &e2);
    TEST_EXPECT(rc == -1 && strstr(e2.msg, "/nonexistent/x.jsonl: cannot open"), "missing file", "%s", e2.msg);
}

static void multiple_choice(void) {
    McSet set;
    Err err;
    BadLines bad;
    const char *mm = "{\"question\": \"Q\", \"choices\": [\"a\", \"b\", \"c\", \"d\"], \"answer\": 2}\n"
                     "{\"question\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": \"B\"}\n";
    int rc = mc_parse(mm, strlen(mm), SRC, MC_MMLU, 0, &set, NULL, &err);
    TEST_EXPECT(rc == 0 && set.n == 2 && set.items[0].n_choices == 4 && set.items[0].correct == 2 &&
                    !strcmp(set.items[0].choices[3], "d") && set.items[1].correct == 1,
                "mmlu: choices and answer index or letter", "%s", rc ? err.msg : "");
    if (rc == 0) mc_free(&set);
    const char *mbad = "{\"question\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": 4}\n";
    rc = mc_parse(mbad, strlen(mbad), SRC, MC_MMLU, 0, &set, NULL, &err);
    TEST_EXPECT(rc == -1 && !strcmp(err.msg, SRC ":1: field \"answer\" must be a choice index in [0, 1] or a letter"),
                "mmlu: answer out of range", "%s", err.msg);
    const char *arc = "{\"question\": \"Q\", \"choices\": {\"text\": [\"x\", \"y\", \"z\"], \"label\": [\"1\", \"2\", "
                      "\"3\"]}, \"answerKey\": \"3\"}\n"
                      "{\"question\": \"Q\", \"choices\": {\"text\": [\"x\", \"y\"], \"label\": [\"A\", \"B\"]}, "
                      "\"answerKey\": \"E\"}\n";
    rc = mc_parse(arc, strlen(arc), SRC, MC_ARC, 1, &set, &bad, &err);
    TEST_EXPECT(rc == 0 && set.n == 1 && set.items[0].correct == 2 && bad.n == 1 &&
                    !strcmp(bad.first.msg, SRC ":2: answerKey 'E' is not one of the choice labels"),
                "arc: labels, a bad answerKey skipped and counted", "rc %d '%s'", rc, rc ? err.msg : bad.first.msg);
    if (rc == 0) mc_free(&set);

    const char *files[2] = {"data/ood/mmlu_stem_test.jsonl", "data/ood/arc_challenge_test.jsonl"};
    McFormat fm[2] = {MC_MMLU, MC_ARC};
    int want[2] = {3018, 1172};
    for (int f = 0; f < 2; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", shared_dir(), files[f]);
        if (access(path, R_OK) != 0) {
            TEST_EXPECT(1, f ? "arc: skipped, no shared data" : "mmlu: skipped, no shared data", "");
            continue;
        }
        rc = mc_load(path, fm[f], 0, &set, NULL, &err);
        int sane = rc == 0;
        for (int i = 0; sane && i < set.n; i++)
            sane = set.items[i].correct >= 0 && set.items[i].correct < set.items[i].n_choices && set.items[i].question[0];
        TEST_EXPECT(rc == 0 && set.n == want[f] && sane, f ? "arc: 1172 rows from ../shared" : "mmlu: 3018 rows from ../shared",
                    "%s n=%d", rc ? err.msg : "", rc ? 0 : set.n);
        if (rc == 0) mc_free(&set);
    }
}

/* Every "a op b = c" in a worked solution must be right. Returns the number of equations
 * checked, or -1 at the first wrong one. */
static int check_arithmetic(const char *s) {
    int n = 0;
    for (const char *p = s; *p; p++) {
        long a, b, c;
        char op;
        int used = 0;
        if ((p == s || p[-1] == ' ') && sscanf(p, "%ld %c %ld = %ld%n", &a, &op, &b, &c, &used) == 4 && used > 0) {
            long want = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : op == '/' && b && a % b == 0 ? a / b : -999999;
            if (want != c || c < 1) return -1;
            n++;
            p += used - 1;
        }
    }
    return n;
}

static int word_count(const char *s) {
    int n = 0, in = 0;
    for (; *s; s++) {
        if (*s == ' ') in = 0;
        else if (!in) in = 1, n++;
    }
    return n;
}

static void synthetic(void) {
    SynthConfig c;
    synth_config_default(&c);
    Err err;
    Dataset a, b, t;
    int rc = synth_generate(&c, SYNTH_TRAIN, 500, &a, &err);
    rc |= synth_generate(&c, SYNTH_TRAIN, 500, &b, &err);
    int same = rc == 0 && a.n == b.n;
    for (int i = 0; same && i < a.n; i++)
        same = !strcmp(a.items[i].question, b.items[i].question) && !strcmp(a.items[i].solution, b.items[i].solution) &&
               !strcmp(a.items[i].gold, b.items[i].gold);
    TEST_EXPECT(same, "synth: same seed, same problems", "%s", rc ? err.msg : "differ");
    if (rc == 0) dataset_free(&b);

    SynthConfig c2 = c;
    c2.seed = 2;
    rc = synth_generate(&c2, SYNTH_TRAIN, 500, &b, &err);
    int differ = 0;
    for (int i = 0; rc == 0 && i < 500; i++) differ += strcmp(a.items[i].question, b.items[i].question) != 0;
    TEST_EXPECT(rc == 0 && differ > 450, "synth: another seed, other problems", "%d of 500 differ", differ);
    if (rc == 0) dataset_free(&b);

    /* prefix property: n = 100 is the first 100 of n = 500 */
    rc = synth_generate(&c, SYNTH_TRAIN, 100, &b, &err);
    int prefix = rc == 0;
    for (int i = 0; prefix && i < 100; i++) prefix = !strcmp(a.items[i].question, b.items[i].question);
    TEST_EXPECT(prefix, "synth: a smaller set is a prefix of a larger one", "");
    if (rc == 0) dataset_free(&b);

    /* disjoint splits, across seeds too: no test question appears in either train set */
    SynthConfig c3 = c;
    c3.seed = 3;
    Dataset a3;
    rc = synth_generate(&c, SYNTH_TEST, 500, &t, &err) | synth_generate(&c3, SYNTH_TRAIN, 2000, &a3, &err);
    int shared = 0, dup = 0;
    for (int i = 0; rc == 0 && i < t.n; i++) {
        for (int j = 0; j < a.n; j++) shared += !strcmp(t.items[i].question, a.items[j].question);
        for (int j = 0; j < a3.n; j++) shared += !strcmp(t.items[i].question, a3.items[j].question);
        for (int j = 0; j < i; j++) dup += !strcmp(t.items[i].question, t.items[j].question);
    }
    TEST_EXPECT(rc == 0 && shared == 0 && dup == 0, "synth: train and test share no question (seeds 1 and 3), no repeats",
                "%s shared %d dup %d", rc ? err.msg : "", shared, dup);
    int wrong_split = 0;
    for (int i = 0; rc == 0 && i < t.n; i++) wrong_split += synth_split_of(t.items[i].question, c.test_permille) != SYNTH_TEST;
    for (int i = 0; rc == 0 && i < a.n; i++) wrong_split += synth_split_of(a.items[i].question, c.test_permille) != SYNTH_TRAIN;
    TEST_EXPECT(rc == 0 && wrong_split == 0, "synth: every problem is in the split its text hashes to", "%d", wrong_split);

    /* answers are integers; solutions' arithmetic is right and ends at the gold */
    int bad_arith = 0, bad_gold = 0, eqs = 0;
    for (int i = 0; rc == 0 && i < a.n; i++) {
        const Problem *p = &a.items[i];
        int k = check_arithmetic(p->solution);
        if (k < 1) {
            if (bad_arith++ < 3) printf("# bad arithmetic: %s\n", p->solution);
            continue;
        }
        eqs += k;
        char last[64];
        snprintf(last, sizeof last, "= %s ", p->gold);
        const char *at = strstr(p->solution, last), *again = at;
        while (again && (again = strstr(again + 1, last))) at = again;
        char *end;
        long g = strtol(p->gold, &end, 10);
        if (*end || g < 1 || !at || strchr(at, '\n')) {
            if (bad_gold++ < 3) printf("# gold %s does not end the solution: %s\n", p->gold, p->solution);
        }
    }
    TEST_EXPECT(rc == 0 && bad_arith == 0 && bad_gold == 0 && eqs >= 500,
                "synth: integer answers, every 'a op b = c' right, the last result is the gold", "%d bad, %d gold, %d eqs",
                bad_arith, bad_gold, eqs);

    /* difficulty knobs */
    SynthConfig easy;
    synth_config_default(&easy);
    Err e;
    int set_ok = synth_config_set(&easy, "max-steps", "1", &e) == 0 && synth_config_set(&easy, "max_number", "9", &e) == 0 &&
                 synth_config_set(&easy, "ops", "+-", &e) == 0;
    rc = set_ok ? synth_generate(&easy, SYNTH_TRAIN, 300, &b, &e) : -1;
    int easy_ok = rc == 0, max_words = 0;
    for (int i = 0; easy_ok && i < b.n; i++) {
        const char *s = b.items[i].solution;
        long x, y, z;
        char op;
        const char *eq = strstr(s, "has ");
        eq = eq ? strstr(eq + 4, "has ") : NULL;
        easy_ok = check_arithmetic(s) == 1 && eq && sscanf(eq, "has %ld %c %ld = %ld", &x, &op, &y, &z) == 4 &&
                  x <= 9 && y <= 9 && (op == '+' || op == '-');
        int w = word_count(b.items[i].question);
        if (w > max_words) max_words = w;
    }
    TEST_EXPECT(easy_ok && max_words <= 20, "synth: max_steps=1 max_number=9 ops=+- gives one-digit one-step problems",
                "%s max words %d", rc ? e.msg : "", max_words);
    if (rc == 0) dataset_free(&b);
    SynthConfig two = c;
    two.max_steps = 2;
    rc = synth_generate(&two, SYNTH_TRAIN, 300, &b, &e);
    max_words = 0;
    for (int i = 0; rc == 0 && i < b.n; i++)
        if (word_count(b.items[i].question) > max_words) max_words = word_count(b.items[i].question);
    TEST_EXPECT(rc == 0 && max_words <= 40, "synth: 1-2 step questions have at most 40 words", "max %d", max_words);
    if (rc == 0) dataset_free(&b);
    SynthConfig hard = c;
    hard.min_steps = hard.max_steps = 4;
    rc = synth_generate(&hard, SYNTH_TEST, 50, &b, &e);
    int four = rc == 0;
    for (int i = 0; four && i < b.n; i++) four = check_arithmetic(b.items[i].solution) == 4;
    TEST_EXPECT(four, "synth: min_steps = max_steps = 4 gives four equations", "%s", rc ? e.msg : "");
    if (rc == 0) dataset_free(&b);

    SynthConfig tiny;
    synth_config_default(&tiny);
    tiny.max_steps = 1, tiny.max_number = 1, strcpy(tiny.ops, "-");
    rc = synth_generate(&tiny, SYNTH_TRAIN, 10, &b, &e);
    TEST_EXPECT(rc == -1 && strstr(e.msg, "synthetic: only 0 of 10 train problems after"), "synth: impossible knobs fail",
                "%s", e.msg);
    TEST_EXPECT(synth_config_set(&tiny, "ops", "+x", &e) == -1 &&
                    !strcmp(e.msg, "synthetic ops: expected distinct characters from '+-*/', got '+x'"),
                "synth: bad ops rejected", "%s", e.msg);
    TEST_EXPECT(synth_config_set(&tiny, "colour", "red", &e) == -1 && strstr(e.msg, "unknown synthetic knob 'colour'"),
                "synth: unknown knob rejected", "%s", e.msg);

    /* GSM8K round trip: write, read back with the GSM8K reader, same problems */
    char path[] = "/tmp/softcot_synth_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    rc = dataset_write_gsm8k(&a, path, &e);
    Dataset back;
    DataOptions gsm = {.format = DATA_GSM8K};
    int rc2 = rc ? -1 : dataset_load(path, &gsm, &back, NULL, &e);
    int same_rt = rc2 == 0 && back.n == a.n;
    for (int i = 0; same_rt && i < a.n; i++)
        same_rt = !strcmp(back.items[i].question, a.items[i].question) && !strcmp(back.items[i].gold, a.items[i].gold) &&
                  !strcmp(back.items[i].solution, a.items[i].solution) && reward_score("7}", back.items[i].gold) ==
                  (strcmp(a.items[i].gold, "7") ? 10 : 100);
    TEST_EXPECT(same_rt, "synth: GSM8K JSONL round trip through the GSM8K reader", "%s", rc || rc2 ? e.msg : "differ");
    if (rc2 == 0) dataset_free(&back);
    unlink(path);

    printf("# example 1 step: %s\n#   %s\n", a.items[0].question, a.items[0].solution);
    dataset_free(&a);
    dataset_free(&t);
    dataset_free(&a3);
}

int main(void) {
    formats();
    errors();
    multiple_choice();
    synthetic();
    return test_finish();
}
