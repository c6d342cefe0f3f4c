/* softcot export — write a model as Hugging Face F32 safetensors + config.json, with its
 * tokenizer files, for standard deployment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/fileio.h"
#include "io/copy_file.h"
#include "dist/dist.h"
#include "io/model_dir.h"
#include "rl/train_ckpt.h"

/* Side files a model directory may carry; copied verbatim when present. */
static const char *const TOKENIZER_FILES[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
    "tokenizer.bin",
};

static void usage(FILE *out) {
    fprintf(out,
            "usage: softcot export --model DIR --out DIR2\n"
            "       softcot export --checkpoint FILE.h5 --out DIR2\n"
            "\n"
            "Loads a model directory (config.json with model.safetensors, or a sharded\n"
            "model.safetensors.index.json; F32, BF16 or F16) and writes DIR2/model.safetensors\n"
            "(F32) and DIR2/config.json, each atomically, and copies tokenizer.json,\n"
            "tokenizer_config.json, special_tokens_map.json, generation_config.json and\n"
            "tokenizer.bin when DIR has them. From a training checkpoint it writes the\n"
            "checkpoint's parameters with the model config stored in it, and copies the\n"
            "tokenizer files of the run's base model directory.\n"
            "\n"
            "  --model DIR         model directory to read\n"
            "  --checkpoint FILE   HDF5 training checkpoint (OUT/checkpoints/ckpt_<step>.h5)\n"
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
    if (ckpt && model) return usage_error("give --model or --checkpoint, not both", NULL);
    if (ckpt) {
        if (!out) return usage_error("--out DIR2 is required", NULL);
        Dist d;
        dist_init(&d, &argc, &argv);
        Err err, note;
        int rc = train_ckpt_export(&d, ckpt, out, &note, &err);
        if (d.rank == 0) {
            if (rc) fprintf(stderr, "softcot: %s\n", err.msg);
            else if (note.msg[0]) fprintf(stderr, "softcot: warning: %s\n", note.msg);
        }
        dist_finalize(&d);
        return rc ? EXIT_USAGE : EXIT_OK;
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
