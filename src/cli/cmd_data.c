/* softcot data: the built-in synthetic task (`data synth`) and dataset validation
 * (`data check`). */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/check.h"
#include "data/dataset.h"
#include "data/synth.h"

static void usage(FILE *out) {
    fputs("usage: softcot data synth --out FILE [--split train|test] [--n N] [--seed S]\n"
          "                          [--min-steps A] [--max-steps B] [--max-number M]\n"
          "                          [--max-factor F] [--max-value V] [--ops +-*/]\n"
          "                          [--test-fraction X] [--allow-repeats]\n"
          "       softcot data check --format gsm8k|math|deepscaler|generic|mmlu|arc FILE\n"
          "                          [--skip-bad-lines] [--question-key K --answer-key K\n"
          "                          [--solution-key K] [--hashes]]\n"
          "\n"
          "synth: writes N GSM8K-format rows {\"question\", \"answer\": worked solution +\n"
          "\"\\n#### N\"} of the built-in arithmetic word problems, atomically. A problem is a\n"
          "start amount and 1..B events (+ buys/finds, - gives/loses/sells, * ends up with k\n"
          "times as many, / keeps one of k equal groups); all amounts stay positive integers.\n"
          "  --out FILE         output JSONL (required)\n"
          "  --split S          train (default) or test; disjoint by construction: a question's\n"
          "                     split is a hash of its text, the same for every seed\n"
          "  --n N              number of problems (default 1000)\n"
          "  --seed S           which problems (default 1)\n"
          "  --min-steps A      fewest events per problem (default 1)\n"
          "  --max-steps B      most events per problem (default 3)\n"
          "  --max-number M     start amount and +/- operands in [1, M] (default 20)\n"
          "  --max-factor F     * and / operands in [2, F] (default 5)\n"
          "  --max-value V      cap on every intermediate amount (default 200)\n"
          "  --ops OPS          allowed operations, a subset of +-*/ (default +-*/)\n"
          "  --test-fraction X  share of all problems in the test split (default 0.1); use the\n"
          "                     same value for both splits\n"
          "  --allow-repeats    do not remove repeated questions\n"
          "Easiest task: --max-steps 1 --max-number 9 --ops +-\n"
          "\n"
          "check: reads FILE with the given format and prints \"N rows\" and the number of\n"
          "bad lines (with the first one's message). A bad line is an error (exit 2) unless\n"
          "--skip-bad-lines. generic needs --question-key and --answer-key; --hashes takes\n"
          "the gold answer after the last '#### ' of the answer field, as in GSM8K.\n"
          "Exit status: 0, or 2 for usage and input errors, 1 for write failures.\n",
          out);
}

static int usage_error(const char *what, const char *arg) {
    fprintf(stderr, "softcot: data: %s%s%s%s (see softcot data --help)\n", what, arg ? " '" : "", arg ? arg : "",
            arg ? "'" : "");
    return EXIT_USAGE;
}

static int input_error(const Err *err) {
    fprintf(stderr, "softcot: data: %s\n", err->msg);
    return EXIT_USAGE;
}

static int run_synth(int argc, char **argv) {
    SynthConfig cfg;
    synth_config_default(&cfg);
    const char *out = NULL, *split_s = "train";
    long n = 1000;
    Err err;
    static const char *const KNOBS[][2] = {
        {"--seed", "seed"},           {"--min-steps", "min_steps"}, {"--max-steps", "max_steps"},
        {"--max-number", "max_number"}, {"--max-factor", "max_factor"}, {"--max-value", "max_value"},
        {"--ops", "ops"},             {"--test-fraction", "test_fraction"},
    };
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "--allow-repeats")) {
            cfg.unique = 0;
            continue;
        }
        int r = arg_value(argc, argv, &i, "--out", &out);
        if (r == 0) r = arg_value(argc, argv, &i, "--split", &split_s);
        if (r == 0 && (r = arg_value(argc, argv, &i, "--n", &v)) > 0 && parse_int(v, "--n", 1, 10000000, &n, &err))
            return input_error(&err);
        for (size_t k = 0; r == 0 && k < sizeof KNOBS / sizeof KNOBS[0]; k++) {
            r = arg_value(argc, argv, &i, KNOBS[k][0], &v);
            if (r > 0 && synth_config_set(&cfg, KNOBS[k][1], v, &err)) return input_error(&err);
        }
        if (r < 0) return usage_error("missing value for", a);
        if (r == 0) return usage_error("unknown option", a);
    }
    if (!out) return usage_error("data synth: --out is required", NULL);
    SynthSplit split;
    if (synth_split_parse(split_s, &split, &err)) return input_error(&err);
    Dataset ds;
    if (synth_generate(&cfg, split, (int)n, &ds, &err)) return input_error(&err);
    int rc = dataset_write_gsm8k(&ds, out, &err);
    dataset_free(&ds);
    if (rc) {
        fprintf(stderr, "softcot: data: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    printf("wrote %ld %s problems to %s\n", n, split_s, out);
    return EXIT_OK;
}

static int run_check(int argc, char **argv) {
    const char *fmt = NULL, *path = NULL;
    DataOptions opt = {0};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--skip-bad-lines")) {
            opt.skip_bad_lines = 1;
            continue;
        }
        if (!strcmp(a, "--hashes")) {
            opt.gold_after_hashes = 1;
            continue;
        }
        int r = arg_value(argc, argv, &i, "--format", &fmt);
        if (r == 0) r = arg_value(argc, argv, &i, "--question-key", &opt.question_key);
        if (r == 0) r = arg_value(argc, argv, &i, "--answer-key", &opt.answer_key);
        if (r == 0) r = arg_value(argc, argv, &i, "--solution-key", &opt.solution_key);
        if (r < 0) return usage_error("missing value for", a);
        if (r > 0) continue;
        if (a[0] == '-' && a[1]) return usage_error("unknown option", a);
        if (path) return usage_error("more than one FILE", a);
        path = a;
    }
    if (!fmt) return usage_error("data check: --format is required", NULL);
    if (!path) return usage_error("data check: FILE is required", NULL);
    Err err;
    BadLines bad;
    int rows;
    McFormat mf;
    if (mc_format_parse(fmt, &mf, &err) == 0) {
        McSet set;
        if (mc_load(path, mf, opt.skip_bad_lines, &set, &bad, &err)) return input_error(&err);
        rows = set.n;
        mc_free(&set);
    } else {
        if (data_format_parse(fmt, &opt.format, &err))
            return usage_error("unknown format (expected gsm8k, math, deepscaler, generic, mmlu or arc)", fmt);
        if (opt.format == DATA_GENERIC && (!opt.question_key || !opt.answer_key))
            return usage_error("--format generic needs --question-key and --answer-key", NULL);
        Dataset ds;
        if (dataset_load(path, &opt, &ds, &bad, &err)) return input_error(&err);
        rows = ds.n;
        dataset_free(&ds);
    }
    printf("%d rows, %d bad lines skipped\n", rows, bad.n);
    if (bad.n) printf("first bad line: %s\n", bad.first.msg);
    return EXIT_OK;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return EXIT_OK;
        }
    if (!strcmp(argv[1], "synth")) return run_synth(argc, argv);
    if (!strcmp(argv[1], "check")) return run_check(argc, argv);
    return usage_error("unknown subcommand (expected synth or check)", argv[1]);
}
