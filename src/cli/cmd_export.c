/* softcot export — write a model as Hugging Face F32 safetensors + config.json, with its
 * tokenizer files, for standard deployment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/fileio.h"
#include "io/copy_file.h"
#include "io/model_dir.h"

/* Side files a model directory may carry; copied verbatim when present. */
static const char *const TOKENIZER_FILES[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
    "tokenizer.bin",
};

static void usage(FILE *out) {
    fprintf(out,
            "usage: softcot export --model DIR --out DIR2\n"
            "       softcot export --checkpoint FILE --out DIR2   (comes with the checkpoint issue)\n"
            "\n"
            "Loads a model directory (config.json with model.safetensors, or a sharded\n"
            "model.safetensors.index.json; F32, BF16 or F16) and writes DIR2/model.safetensors\n"
            "(F32) and DIR2/config.json, each atomically, and copies tokenizer.json,\n"
            "tokenizer_config.json, special_tokens_map.json, generation_config.json and\n"
            "tokenizer.bin when DIR has them.\n"
            "\n"
            "  --model DIR         model directory to read\n"
            "  --checkpoint FILE   HDF5 training checkpoint (not supported yet)\n"
            "  --out DIR2          output directory, created if needed (required)\n"
            "  --help              this text\n");
}

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "softcot: export: %s%s%s (see softcot export --help)\n", msg, arg ? " " : "",
            arg ? arg : "");
    return EXIT_USAGE;
}

int cmd_export(int argc, char **argv) {
    const char *model = NULL, *ckpt = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return EXIT_OK;
        }
        if ((r = arg_value(argc, argv, &i, "--model", &model)) ||
            (r = arg_value(argc, argv, &i, "--checkpoint", &ckpt)) ||
            (r = arg_value(argc, argv, &i, "--out", &out))) {
            if (r < 0) return usage_error("missing value for", a);
            continue;
        }
        return usage_error("unknown argument", a);
    }
    if (ckpt) {
        fprintf(stderr, "softcot: %s: not supported yet: export from an HDF5 checkpoint comes with the "
                        "checkpoint issue (use --model DIR)\n",
                ckpt);
        return EXIT_USAGE;
    }
    if (!model) return usage_error("--model DIR is required", NULL);
    if (!out) return usage_error("--out DIR2 is required", NULL);
    if (!*model || !*out) return usage_error("empty path given", NULL);

    Err err;
    ModelConfig cfg;
    float *params = NULL;
    if (model_dir_load(model, &cfg, &params, &err)) {
        fprintf(stderr, "softcot: %s\n", err.msg);
        return EXIT_USAGE;
    }
    int status = EXIT_OK;
    if (model_dir_save(out, &cfg, params, &err)) status = EXIT_RUNTIME;
    enum { N_TOK = sizeof TOKENIZER_FILES / sizeof TOKENIZER_FILES[0] };
    for (int i = 0; i < N_TOK && status == EXIT_OK; i++) {
        char *src = path_join(model, TOKENIZER_FILES[i]);
        char *dst = path_join(out, TOKENIZER_FILES[i]);
        if (file_exists(src) && copy_file_atomic(src, dst, &err)) status = EXIT_RUNTIME;
        free(src);
        free(dst);
    }
    if (status != EXIT_OK) fprintf(stderr, "softcot: %s\n", err.msg);
    free(params);
    return status;
}
