/* run_setup.h — what `train`, `sft` and `eval` share before their real work: loading a
 * model directory with its tokenizer, encoding the stop string and prefills, and turning
 * a dataset (a JSONL file or the built-in synthetic task) into tokenised prompts with
 * gold answers. Everything here validates input and fails with one-line errors before
 * any output is written.
 * Must not: run the model or write anything except run_assets_save_model's directory.
 */
#ifndef SOFTCOT_RUN_SETUP_H
#define SOFTCOT_RUN_SETUP_H

#include "core/check.h"
#include "data/synth.h"
#include "model/model.h"
#include "rl/train.h"
#include "text/tokenizer.h"

typedef struct {
    Model model;
    int model_ready;
    Tokenizer *tok;
    int *prefill, *prefill_long; /* " \boxed{" and " The final answer is: \boxed{" */
    int n_prefill, n_prefill_long;
} RunAssets;

int run_assets_load(const char *model_dir, RunAssets *a, Err *err);
/* Encodes the prefill after a stop-string stop, and " <stop string><prefill>" used when
 * the CoT ends by length. */
int prefills_encode(const Tokenizer *tok, const char *stop_string, const char *prefill,
                    RunAssets *a, Err *err);
/* Writes the current parameters as a Hugging Face model directory and copies the
 * tokenizer files of src_model_dir next to them. */
int run_assets_save_model(const RunAssets *a, const char *dir, const char *src_model_dir, Err *err);
void run_assets_free(RunAssets *a);

typedef struct {
    const char *data;   /* "synthetic" or a JSONL path */
    const char *format; /* gsm8k, math, deepscaler */
    const char *synth;  /* "key=value,..." settings of the synthetic generator (data/synth.h) */
    int n;              /* synthetic problems to generate; for files, 0 = all rows */
    int split_test;     /* synthetic: 1 for the held-out test split */
    const char *template_text; /* prompt template; "\n" escapes are expanded */
    const char *chat;          /* none, llama3, chatml */
} TaskSource;

/* "key=value,key=value" settings of the synthetic generator (data/synth.h), each applied
 * with synth_config_set over the defaults, then checked. */
int synth_settings(const char *spec, SynthConfig *c, Err *err);

int taskset_load(const TaskSource *src, const Tokenizer *tok, TaskSet *out, Err *err);
void taskset_free(TaskSet *t);

/* Copy of s with the escapes \n, \t and \\ expanded (config files hold one-line values). */
char *unescape_text(const char *s);

#endif
