/* dataset.h — math problem sets (GSM8K, MATH / MATH-500, DeepScaleR, generic JSONL) and
 * multiple-choice sets (MMLU, ARC) read into memory.
 *
 * Defines: Problem/Dataset (question, gold answer, optional worked solution, source
 * line) and McItem/McSet, their loaders and the GSM8K gold extraction. A malformed line
 * (bad JSON, a missing field, a gold answer that cannot be extracted) is an error
 * "path:LINE: ..." unless skip_bad_lines is set; then it is counted and skipped.
 * Must not: shuffle, shard or tokenize (callers do that), print, or exit.
 */
#ifndef SOFTCOT_DATA_DATASET_H
#define SOFTCOT_DATA_DATASET_H

#include "core/check.h"

typedef struct {
    char *question; /* the text that goes into the prompt template */
    char *gold;     /* the gold final answer (GSM8K: digits only, separators removed) */
    char *solution; /* worked solution, or NULL when the format has none */
    int line;       /* 1-based line in the source file (0 for generated problems) */
} Problem;

typedef struct {
    Problem *items;
    int n;
} Dataset;

typedef enum {
    DATA_GSM8K,      /* question; answer = "worked solution\n#### N" */
    DATA_MATH,       /* problem; answer (or else the last \boxed{} of solution); solution optional */
    DATA_DEEPSCALER, /* problem, answer, solution all required */
    DATA_GENERIC,    /* field names from DataOptions */
} DataFormat;

typedef struct {
    DataFormat format;
    /* DATA_GENERIC only: question and answer fields are required; solution_key may be
     * NULL (no solution). gold_after_hashes: the gold answer is the number after the
     * last "#### " of the answer field, as in GSM8K, and the text before it is the
     * solution. */
    const char *question_key, *answer_key, *solution_key;
    int gold_after_hashes;
    int skip_bad_lines;
} DataOptions;

/* Lines skipped with skip_bad_lines: how many, and the first one's message. */
typedef struct {
    int n;
    Err first;
} BadLines;

/* "gsm8k" | "math" | "math500" | "deepscaler" | "generic". */
int data_format_parse(const char *s, DataFormat *f, Err *err);
const char *data_format_name(DataFormat f);

/* Reads a JSONL file. bad may be NULL. A file with no usable rows is an error. */
int dataset_load(const char *path, const DataOptions *opt, Dataset *ds, BadLines *bad, Err *err);
/* The same from memory; path only names the source in messages. */
int dataset_parse(const char *buf, size_t len, const char *path, const DataOptions *opt, Dataset *ds,
                  BadLines *bad, Err *err);
void dataset_free(Dataset *ds);

/* GSM8K gold: the text after the last "####", trimmed, with ',' separators removed; it
 * must be a decimal number (-?digits[.digits]). Returns 0 and a malloc'd *gold, or -1
 * with a message (no path) saying what was wrong. Also returns the solution: the text
 * before "####" without trailing spaces/newlines (malloc'd) when solution != NULL. */
int gsm8k_split_answer(const char *answer, char **gold, char **solution, Err *err);

/* ---- multiple choice ---- */

typedef struct {
    char *question;
    char **choices;
    int n_choices;
    int correct; /* index into choices */
    int line;
} McItem;

typedef struct {
    McItem *items;
    int n;
} McSet;

typedef enum {
    MC_MMLU, /* question, choices [strings], answer (index, or a letter "A".."") */
    MC_ARC,  /* question, choices {text: [...], label: [...]}, answerKey (a label) */
} McFormat;

/* "mmlu" | "arc". */
int mc_format_parse(const char *s, McFormat *f, Err *err);

int mc_load(const char *path, McFormat fmt, int skip_bad_lines, McSet *set, BadLines *bad, Err *err);
int mc_parse(const char *buf, size_t len, const char *path, McFormat fmt, int skip_bad_lines, McSet *set,
             BadLines *bad, Err *err);
void mc_free(McSet *set);

#endif
