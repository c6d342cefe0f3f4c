/* softcot import — convert a llama2.c checkpoint into a Hugging Face model directory
 * (model.safetensors, config.json, tokenizer.bin). */
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/fileio.h"
#include "io/llama2c.h"
#include "io/model_dir.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: softcot import --llama2c FILE --out DIR [--tokenizer TOKFILE]\n"
            "\n"
            "Converts a llama2.c checkpoint (legacy version 0 .bin) into a model directory:\n"
            "DIR/model.safetensors (F32, Hugging Face names, q/k rows permuted to half-split\n"
            "RoPE), DIR/config.json (LlamaForCausalLM) and DIR/tokenizer.bin.\n"
            "\n"
            "  --llama2c FILE       the .bin checkpoint (required)\n"
            "  --out DIR            output directory, created if needed (required)\n"
            "  --tokenizer TOKFILE  llama2.c tokenizer to copy to DIR/tokenizer.bin; default:\n"
            "                       tok<vocab>.bin, else tokenizer.bin, next to FILE\n"
            "  --help               this text\n");
}

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "softcot: import: %s%s%s (see softcot import --help)\n", msg, arg ? " " : "",
            arg ? arg : "");
    return EXIT_USAGE;
}

/* A wrong tokenizer would only show up later as garbage text, so check that the file
 * holds exactly vocab entries (int32 max_len, then per token: f32 score, i32 len, bytes). */
static int check_tokenizer(const char *path, const char *data, size_t len, int vocab, Err *err) {
    size_t pos = 4;
    if (len < 4) return err_set(err, "%s: truncated llama2.c tokenizer (%zu bytes)", path, len);
    for (int i = 0; i < vocab; i++) {
        int32_t n;
        if (len - pos < 8)
            return err_set(err, "%s: llama2.c tokenizer ends at token %d, the model has %d tokens", path, i,
                           vocab);
        memcpy(&n, data + pos + 4, 4);
        pos += 8;
        if (n < 0)
            return err_set(err, "%s: bad llama2.c tokenizer: token %d has length %d at byte %zu", path, i, n,
                           pos - 4);
        if ((size_t)n > len - pos)
            return err_set(err, "%s: llama2.c tokenizer ends at token %d, the model has %d tokens", path, i,
                           vocab);
        pos += (size_t)n;
    }
    if (pos != len)
        return err_set(err, "%s: llama2.c tokenizer has %zu bytes after token %d; the model has %d tokens",
                       path, len - pos, vocab - 1, vocab);
    return 0;
}

/* tok<V>.bin is llama2.c's name for a custom vocabulary (tok512.bin for stories260K);
 * tokenizer.bin is its default 32000-token one. */
static char *find_tokenizer(const char *model_path, int vocab) {
    char *copy = xstrdup(model_path);
    const char *dir = dirname(copy);
    char name[64];
    snprintf(name, sizeof name, "tok%d.bin", vocab);
    const char *cands[2] = {name, "tokenizer.bin"};
    char *found = NULL;
    for (int i = 0; i < 2 && !found; i++) {
        char *p = path_join(dir, cands[i]);
        if (file_exists(p)) found = p;
        else free(p);
    }
    free(copy);
    return found;
}

int cmd_import(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *tok = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return EXIT_OK;
        }
        if ((r = arg_value(argc, argv, &i, "--llama2c", &in)) ||
            (r = arg_value(argc, argv, &i, "--out", &out)) ||
            (r = arg_value(argc, argv, &i, "--tokenizer", &tok))) {
            if (r < 0) return usage_error("missing value for", a);
            continue;
        }
        return usage_error("unknown argument", a);
    }
    if (!in) return usage_error("--llama2c FILE is required", NULL);
    if (!out) return usage_error("--out DIR is required", NULL);
    if (!*in || !*out) return usage_error("empty path given", NULL);

    Err err;
    ModelConfig cfg;
    float *params = NULL;
    if (llama2c_read(in, &cfg, &params, &err)) {
        fprintf(stderr, "softcot: %s\n", err.msg);
        return EXIT_USAGE;
    }
    /* Read and check the tokenizer before writing anything, so a bad one leaves no output. */
    char *tok_path = tok ? xstrdup(tok) : find_tokenizer(in, cfg.vocab_size);
    char *tok_data = NULL;
    size_t tok_len = 0;
    if (tok_path && (file_read_all(tok_path, &tok_data, &tok_len, &err) ||
                     check_tokenizer(tok_path, tok_data, tok_len, cfg.vocab_size, &err))) {
        fprintf(stderr, "softcot: %s\n", err.msg);
        free(tok_data);
        free(tok_path);
        free(params);
        return EXIT_USAGE;
    }
    int status = EXIT_OK;
    if (model_dir_save(out, &cfg, params, &err)) {
        status = EXIT_RUNTIME;
    } else if (tok_data) {
        char *dst = path_join(out, "tokenizer.bin");
        if (atomic_write_all(dst, tok_data, tok_len, &err)) status = EXIT_RUNTIME;
        free(dst);
    } else {
        fprintf(stderr,
                "softcot: warning: %s: no tokenizer found next to it (tok%d.bin or tokenizer.bin); "
                "%s has no tokenizer.bin\n",
                in, cfg.vocab_size, out);
    }
    if (status != EXIT_OK) fprintf(stderr, "softcot: %s\n", err.msg);
    free(tok_data);
    free(tok_path);
    free(params);
    return status;
}
