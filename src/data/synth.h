/* synth.h — the built-in synthetic task: GSM8K-style arithmetic word problems generated
 * from templates, with worked step-by-step solutions and integer answers.
 *
 * A problem is: a person starts with some objects, then 1..N events change the amount
 * (buys/finds more: +, gives away/loses/sells: -, ends up with k times as many: *,
 * splits them into k equal groups and keeps one: /); the question asks for the final
 * amount. Every intermediate amount is a positive integer <= max_value, every division
 * is exact. Example (1 step): "Tom has 3 apples. He buys 4 more. How many apples does Tom
 * have now?" with solution "Tom has 3 apples. He buys 4 more, so he has 3 + 4 = 7 apples."
 *
 * Determinism: draw j of a config is a pure function of (seed, j) through the Philox
 * stream (seed, prompt = j, purpose = DATA); generating n problems scans j = 0, 1, ...
 * and keeps those of the requested split (and, with `unique`, not seen before in this
 * set), so a set with n = 100 is the first 100 problems of the set with n = 1000.
 * Train/test disjointness by construction: a problem's split is a fixed hash of its
 * question text alone (not of the seed), compared with test_permille. The same question
 * is therefore always in the same split, for every seed and every n, as long as
 * test_permille is the same for both splits.
 * Must not: keep state between calls, print, or use any randomness but rng.h.
 */
#ifndef SOFTCOT_DATA_SYNTH_H
#define SOFTCOT_DATA_SYNTH_H

#include <stdint.h>

#include "core/check.h"
#include "data/dataset.h"

typedef struct {
    uint64_t seed;     /* which problems (default 1) */
    int min_steps;     /* fewest events per problem (default 1) */
    int max_steps;     /* most events per problem (default 3); difficulty knob #1 */
    int max_number;    /* start amount and +/- operands drawn from [1, max_number] (default 20);
                          difficulty knob #2: 9 keeps every operand one digit */
    int max_factor;    /* * and / operands drawn from [2, max_factor] (default 5) */
    int max_value;     /* every intermediate and final amount is <= max_value (default 200) */
    char ops[5];       /* allowed operations, a subset of "+-*\/" (default all four);
                          "+-" gives the easiest task */
    int test_permille; /* share of all problems that belong to the test split, in 1/1000
                          (default 100 = 10%); must match between the train and test sets */
    int unique;        /* 1: no question repeats within one generated set (default 1) */
} SynthConfig;

typedef enum { SYNTH_TRAIN = 0, SYNTH_TEST = 1 } SynthSplit;

void synth_config_default(SynthConfig *c);

/* Sets one knob by its config-file name: seed, min_steps, max_steps, max_number,
 * max_factor, max_value, ops, test_fraction (0..1, stored as per mille), unique (0/1).
 * '-' may replace '_' in names. Returns -1 with a one-line message for an unknown key or
 * a bad value. */
int synth_config_set(SynthConfig *c, const char *key, const char *value, Err *err);

/* Checks that the knobs are consistent (ranges, min <= max, ops non-empty). */
int synth_config_check(const SynthConfig *c, Err *err);

int synth_split_parse(const char *s, SynthSplit *split, Err *err);

/* The split a question belongs to. */
SynthSplit synth_split_of(const char *question, int test_permille);

/* Draw j of config c: returns 1 and fills *p (question, gold = decimal integer,
 * solution = worked solution lines, line = 0) or returns 0 when the draw has no feasible
 * problem under the knobs (e.g. ops "-" with a start amount of 1); callers skip it. */
int synth_problem(const SynthConfig *c, uint32_t j, Problem *p);

/* n problems of one split. Fails (with a message saying how many were found) when the
 * knobs allow too few distinct problems for n unique ones. */
int synth_generate(const SynthConfig *c, SynthSplit split, int n, Dataset *out, Err *err);

/* Writes ds atomically as GSM8K JSONL: {"question": ..., "answer": solution + "\n#### " + gold}. */
int dataset_write_gsm8k(const Dataset *ds, const char *path, Err *err);

#endif
