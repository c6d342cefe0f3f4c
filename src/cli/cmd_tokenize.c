/* softcot tokenize: encode text with a model directory's tokenizer and print the ids or
 * the pieces. Output goes to stdout only after encoding succeeded, so a failed run
 * prints nothing but its one-line error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/check.h"
#include "core/bytebuf.h"
#include "text/tokenizer.h"

static void usage(FILE *out) {
    fputs("usage: softcot tokenize --tokenizer DIR [--ids] [--add-special] (TEXT | -)\n"
          "\n"
          "Encodes TEXT (or all of standard input for '-', byte for byte, including any\n"
          "trailing newline) with the tokenizer in DIR: DIR/tokenizer.json (Hugging Face,\n"
          "with DIR/tokenizer_config.json if present) or DIR/tokenizer.bin (llama2.c).\n"
          "\n"
          "options:\n"
          "  --tokenizer DIR   directory holding tokenizer.json or tokenizer.bin (required)\n"
          "  --ids             print the token ids, separated by single spaces, on one line\n"
          "                    (default: print the pieces as a JSON array of strings, spelled\n"
          "                    as in the tokenizer file, e.g. [\"Once\",\"Ġupon\"])\n"
          "  --add-special     apply the tokenizer's special-token template (Llama 3 and\n"
          "                    llama2.c prepend BOS; Qwen2 adds nothing)\n"
          "  -h, --help        show this help\n"
          "\n"
          "Special tokens written in the text (e.g. <|eot_id|>) always become their ids.\n"
          "Hugging Face tokenizers reject text that is not valid UTF-8.\n"
          "Exit status: 0 on success, 2 for usage or input errors.\n",
          out);
}

static int usage_error(const char *what, const char *arg) {
    fprintf(stderr, "softcot: tokenize: %s%s%s%s (see softcot tokenize --help)\n", what,
            arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
    return EXIT_USAGE;
}

static int read_stdin(ByteBuf *b) {
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, stdin)) > 0) bytebuf_append(b, chunk, got);
    bytebuf_reserve(b, 0);
    return ferror(stdin) ? -1 : 0;
}

static void print_json_string(ByteBuf *o, const char *s, size_t n) {
    bytebuf_putc(o, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            bytebuf_putc(o, '\\');
            bytebuf_putc(o, (char)c);
        } else if (c == '\n') {
            bytebuf_append(o, "\\n", 2);
        } else if (c == '\t') {
            bytebuf_append(o, "\\t", 2);
        } else if (c == '\r') {
            bytebuf_append(o, "\\r", 2);
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            bytebuf_append(o, esc, 6);
        } else {
            bytebuf_putc(o, (char)c);
        }
    }
    bytebuf_putc(o, '"');
}

int cmd_tokenize(int argc, char **argv) {
    const char *dir = NULL, *text = NULL;
    int want_ids = 0, add_special = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--ids")) {
            want_ids = 1;
        } else if (!strcmp(a, "--add-special")) {
            add_special = 1;
        } else if (!strcmp(a, "--tokenizer")) {
            if (i + 1 >= argc) return usage_error("--tokenizer needs a directory", NULL);
            dir = argv[++i];
        } else if (!strncmp(a, "--tokenizer=", 12)) {
            dir = a + 12;
        } else if (!strcmp(a, "--")) {
            if (i + 1 < argc && !text) text = argv[++i];
            if (i + 1 < argc) return usage_error("more than one TEXT argument", NULL);
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option", a);
        } else if (text) {
            return usage_error("more than one TEXT argument", a);
        } else {
            text = a;
        }
    }
    if (!dir) return usage_error("missing --tokenizer DIR", NULL);
    if (!text) return usage_error("missing TEXT (or '-' to read standard input)", NULL);

    Err err;
    Tokenizer *tok = tokenizer_load_dir(dir, &err);
    if (!tok) die_err(&err, EXIT_USAGE);

    ByteBuf in = {0};
    const char *src = text, *src_name = "TEXT";
    size_t len = strlen(text);
    if (!strcmp(text, "-")) {
        src_name = "<stdin>";
        if (read_stdin(&in)) {
            tokenizer_free(tok);
            bytebuf_free(&in);
            die(EXIT_RUNTIME, "<stdin>: read error");
        }
        src = in.p;
        len = in.n;
    }
    int *ids = NULL, n = 0;
    if (tokenizer_encode(tok, src, len, add_special, &ids, &n, &err)) {
        fprintf(stderr, "softcot: %s: %s\n", src_name, err.msg);
        tokenizer_free(tok);
        bytebuf_free(&in);
        return EXIT_USAGE;
    }
    ByteBuf out = {0};
    if (!want_ids) bytebuf_putc(&out, '[');
    for (int i = 0; i < n; i++) {
        if (want_ids) {
            char num[16];
            int k = snprintf(num, sizeof num, "%s%d", i ? " " : "", ids[i]);
            bytebuf_append(&out, num, (size_t)k);
        } else {
            size_t pl = 0;
            const char *p = tokenizer_piece(tok, ids[i], &pl);
            if (i) bytebuf_putc(&out, ',');
            print_json_string(&out, p, pl);
        }
    }
    if (!want_ids) bytebuf_putc(&out, ']');
    bytebuf_putc(&out, '\n');
    int status = EXIT_OK;
    if (fwrite(out.p, 1, out.n, stdout) != out.n || fflush(stdout)) {
        fprintf(stderr, "softcot: <stdout>: write error\n");
        status = EXIT_RUNTIME;
    }
    free(ids);
    bytebuf_free(&out);
    bytebuf_free(&in);
    tokenizer_free(tok);
    return status;
}
