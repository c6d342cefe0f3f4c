/* eval_results.h — reads the results file `softcot eval --out` writes (JSON, schema
 * "softcot-eval/1", docs/eval.md) back, for `softcot analyze`.
 *
 * Defines EvalResults (one file: model, data, per-mode results, OOD rows) and pass@k of a
 * mode for any k <= its samples per problem, recomputed from the per-problem correct
 * counts with the unbiased estimator of rl/passk.h, so runs evaluated with different
 * --k lists can still be compared at the same k.
 * Errors name the file and the JSON field ("FILE: modes.hard-sample.per_problem.n_correct:
 * expected an array of 200 integers").
 * Must not: print, exit, or write files.
 */
#ifndef SOFTCOT_RL_EVAL_RESULTS_H
#define SOFTCOT_RL_EVAL_RESULTS_H

#include "core/check.h"

typedef struct {
    char *name;      /* "hard-sample", ... */
    char *cot;       /* "hard", "soft", "fuzzy" */
    int sample;      /* 1 for *-sample modes */
    int n_problems, samples_per_problem;
    double greedy_pass_at_1, sample_pass_at_1; /* NAN where the file has null */
    int n_k;
    int *k;          /* the k of the file's pass_at_k, ascending */
    double *pass_k;  /* their stored values */
    int *n_correct;  /* [n_problems] */
    double frac_correct, frac_boxed, mean_cot_len, mean_ans_len;
    double frac_stop_string, frac_stop_length, frac_stop_eos, mean_entropy;
    int entropy_bin, n_entropy_bins;
    double *entropy_mean; /* NAN for bins no rollout reached */
    double *entropy_count;
} EvalModeResult;

typedef struct {
    char *file, *format;
    int n_items;
    double accuracy, accuracy_per_token, nll_per_token;
} EvalOodResult;

typedef struct {
    char *path;
    int complete;
    char *model_dir, *data_source;
    int n_problems;
    int n_modes;
    EvalModeResult *modes;
    int n_ood;
    EvalOodResult *ood;
} EvalResults;

/* 1 if text looks like a softcot eval results file (its "schema" starts with
 * "softcot-eval/"); for telling them apart from other JSON files in a directory. */
int eval_results_sniff(const char *text);
int eval_results_parse(const char *path, const char *text, EvalResults *out, Err *err);
int eval_results_load(const char *path, EvalResults *out, Err *err);
void eval_results_free(EvalResults *r);

/* Mean unbiased pass@k over the mode's problems; NAN unless 1 <= k <= samples. */
double eval_results_pass_at_k(const EvalModeResult *m, int k);

#endif
