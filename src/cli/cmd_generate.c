/* softcot generate: sample continuations of a prompt from a model directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/check.h"
#include "io/model_dir.h"
#include "model/generate.h"
#include "text/tokenizer.h"

static const char *USAGE =
    "usage: softcot generate --model DIR (--prompt TEXT | --ids 1,2,3) [options]\n"
    "\n"
    "Generates text from a model directory (config.json + model.safetensors, with\n"
    "tokenizer.json or tokenizer.bin for text prompts).\n"
    "\n"
    "  --model DIR          model directory (required)\n"
    "  --prompt TEXT        text prompt, encoded with the model's tokenizer (BOS added)\n"
    "  --ids LIST           prompt as token ids, e.g. 1,403,407 (no BOS added)\n"
    "  --max-new N          new tokens per sample (default 256)\n"
    "  --greedy             argmax decoding (the default)\n"
    "  --temperature T      sample from softmax(logits / T); T = 0 means greedy\n"
    "  --samples N          samples generated together in one batch (default 1)\n"
    "  --seed S             sampling seed (default 1234)\n"
    "  --ignore-eos         keep generating past EOS\n"
    "  --print-ids          print the new token ids (space-separated, one line per sample)\n"
    "                       instead of text\n"
    "  -h, --help           this help\n";

typedef struct {
    const Tokenizer *tok;
    TokenDecoder *dec; /* streaming decoder when exactly one sample prints text */
} StreamCtx;

/* Writes the text that token completes. Ids the tokenizer does not know (padding rows of
 * a larger embedding) print as nothing. */
static void put_token(TokenDecoder *dec, int token, FILE *out) {
    const char *text;
    size_t len;
    if (token_decoder_push(dec, token, &text, &len, NULL) == 0 && len) fwrite(text, 1, len, out);
}

static void flush_decoder(TokenDecoder *dec, FILE *out) {
    const char *text;
    size_t len;
    token_decoder_flush(dec, &text, &len);
    if (len) fwrite(text, 1, len, out);
}

static void stream_token(void *p, int sample, int token) {
    StreamCtx *s = p;
    (void)sample;
    if (!s->dec) return;
    put_token(s->dec, token, stdout);
    fflush(stdout);
}

int cmd_generate(int argc, char **argv) {
    const char *model_dir = NULL, *prompt = NULL, *ids_arg = NULL, *v;
    long max_new = 256, samples = 1, seed = 1234;
    double temperature = 0;
    int print_ids = 0, ignore_eos = 0;
    Err err;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(USAGE, stdout);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--greedy")) {
            temperature = 0;
        } else if (!strcmp(argv[i], "--print-ids")) {
            print_ids = 1;
        } else if (!strcmp(argv[i], "--ignore-eos")) {
            ignore_eos = 1;
        } else if ((r = arg_value(argc, argv, &i, "--model", &model_dir))) {
            if (r < 0) goto missing;
        } else if ((r = arg_value(argc, argv, &i, "--prompt", &prompt))) {
            if (r < 0) goto missing;
        } else if ((r = arg_value(argc, argv, &i, "--ids", &ids_arg))) {
            if (r < 0) goto missing;
        } else if ((r = arg_value(argc, argv, &i, "--max-new", &v))) {
            if (r < 0) goto missing;
            if (parse_int(v, "--max-new", 0, 1 << 20, &max_new, &err)) goto bad;
        } else if ((r = arg_value(argc, argv, &i, "--samples", &v))) {
            if (r < 0) goto missing;
            if (parse_int(v, "--samples", 1, 4096, &samples, &err)) goto bad;
        } else if ((r = arg_value(argc, argv, &i, "--seed", &v))) {
            if (r < 0) goto missing;
            if (parse_int(v, "--seed", 0, 0x7fffffffL, &seed, &err)) goto bad;
        } else if ((r = arg_value(argc, argv, &i, "--temperature", &v))) {
            if (r < 0) goto missing;
            if (parse_float(v, "--temperature", 0, 100, &temperature, &err)) goto bad;
        } else {
            fprintf(stderr, "softcot generate: unknown option '%s'\n%s", argv[i], USAGE);
            return EXIT_USAGE;
        }
        continue;
    missing:
        fprintf(stderr, "softcot generate: option '%s' needs a value\n", argv[i]);
        return EXIT_USAGE;
    }
    if (!model_dir || (!prompt == !ids_arg)) {
        fprintf(stderr, "softcot generate: need --model and exactly one of --prompt or --ids\n%s", USAGE);
        return EXIT_USAGE;
    }

    ModelConfig cfg;
    float *host_params = NULL;
    if (model_dir_load(model_dir, &cfg, &host_params, &err)) goto bad;
    Tokenizer *tok = NULL;
    if (prompt || !print_ids) {
        tok = tokenizer_load_dir(model_dir, &err);
        if (!tok) {
            free(host_params);
            goto bad;
        }
    }
    int *ids = NULL, n_ids = 0;
    if (ids_arg ? parse_id_list(ids_arg, "--ids", &ids, &n_ids, &err)
                : tokenizer_encode(tok, prompt, strlen(prompt), 1, &ids, &n_ids, &err)) {
        free(host_params);
        tokenizer_free(tok);
        goto bad;
    }

    Model model;
    model_init(&model, &cfg, host_params);
    free(host_params);
    StreamCtx sctx = {tok, NULL};
    if (!print_ids && samples == 1) {
        /* Echo the prompt, then stream the continuation character by character. */
        sctx.dec = token_decoder_new(tok);
        for (int i = 0; i < n_ids; i++) put_token(sctx.dec, ids[i], stdout);
        fflush(stdout);
    }
    GenerateOptions opt = {.n_samples = (int)samples,
                           .max_new = (int)max_new,
                           .temperature = (float)temperature,
                           .seed = (uint64_t)seed,
                           .stop_at_eos = !ignore_eos,
                           .on_token = stream_token,
                           .ctx = &sctx};
    GenerateResult res;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = generate(&model, ids, n_ids, &opt, &res, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == 0) {
        if (sctx.dec) {
            flush_decoder(sctx.dec, stdout);
            fputc('\n', stdout);
        }
        for (int s = 0; s < res.n_samples && !sctx.dec; s++) {
            if (print_ids) {
                for (int i = 0; i < res.n_ids[s]; i++) printf(i ? " %d" : "%d", res.ids[s][i]);
                putchar('\n');
            } else {
                TokenDecoder *dec = token_decoder_new(tok);
                printf("--- sample %d\n", s);
                for (int i = 0; i < n_ids; i++) put_token(dec, ids[i], stdout);
                for (int i = 0; i < res.n_ids[s]; i++) put_token(dec, res.ids[s][i], stdout);
                flush_decoder(dec, stdout);
                token_decoder_free(dec);
                putchar('\n');
            }
        }
        double secs = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
        long total = 0;
        for (int s = 0; s < res.n_samples; s++) total += res.n_ids[s];
        fprintf(stderr, "softcot generate: %ld new tokens in %.2f s (%.1f tok/s), prompt %d tokens\n",
                total, secs, total / (secs > 0 ? secs : 1e-9), n_ids);
        generate_result_free(&res);
    }
    if (sctx.dec) token_decoder_free(sctx.dec);
    free(ids);
    tokenizer_free(tok);
    model_free(&model);
    if (rc) goto bad;
    return EXIT_OK;
bad:
    fprintf(stderr, "softcot: %s\n", err.msg);
    return EXIT_USAGE;
}
