/* softcot — RL fine-tuning of Llama/Qwen2 models with hard, soft and fuzzy chain-of-thought
 * tokens. This file only dispatches to the subcommands in src/cli/. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/check.h"
#include "core/cpu.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

static const Command COMMANDS[] = {
    {"train", cmd_train, "RL fine-tuning with hard, soft or fuzzy CoT tokens (RLOO)"},
    {"generate", cmd_generate, "sample text from a model (greedy or temperature)"},
    {"import", cmd_import, "convert a llama2.c checkpoint into a model directory"},
    {"export", cmd_export, "write a model as Hugging Face safetensors + config.json"},
    {"tokenize", cmd_tokenize, "encode text with a tokenizer and print ids or pieces"},
    {"sft", cmd_sft, "supervised warm start on worked solutions (teacher-forced cross-entropy)"},
    {"reward", cmd_reward, "score an answer against a gold answer (100 / 10 / 0)"},
    {"data", cmd_data, "generate the synthetic task, validate dataset files"},
    {"eval", cmd_eval, "pass@k, CoT statistics and OOD multiple choice in the six inference modes"},
    {"analyze", cmd_analyze, "summarise runs from their trajectory (HDF5) and eval (JSON) files"},
};
enum { N_COMMANDS = sizeof COMMANDS / sizeof COMMANDS[0] };

static void usage(FILE *out) {
    fprintf(out,
            "usage: softcot <command> [options]   (softcot <command> --help for details)\n\n"
            "commands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
}

int main(int argc, char **argv) {
    cpu_setup_blas(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "softcot: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
