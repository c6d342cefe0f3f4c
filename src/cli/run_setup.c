#include "cli/run_setup.h"

#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "data/dataset.h"
#include "data/synth.h"
#include "io/copy_file.h"
#include "io/model_dir.h"
#include "text/prompt.h"

char *unescape_text(const char *s) {
    char *out = xmalloc(strlen(s) + 1), *o = out;
    for (; *s; s++) {
        if (s[0] == '\\' && (s[1] == 'n' || s[1] == 't' || s[1] == '\\')) {
            *o++ = s[1] == 'n' ? '\n' : s[1] == 't' ? '\t' : '\\';
            s++;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

int run_assets_load(const char *model_dir, RunAssets *a, Err *err) {
    memset(a, 0, sizeof *a);
    ModelConfig cfg;
    float *host = NULL;
    if (model_dir_load(model_dir, &cfg, &host, err)) return -1;
    a->tok = tokenizer_load_dir(model_dir, err);
    if (!a->tok) {
        free(host);
        return -1;
    }
    if (tokenizer_vocab_size(a->tok) > cfg.vocab_size) {
        free(host);
        return err_set(err, "%s: tokenizer has %d tokens but the model's vocab_size is %d", model_dir,
                       tokenizer_vocab_size(a->tok), cfg.vocab_size);
    }
    model_init(&a->model, &cfg, host);
    a->model_ready = 1;
    free(host);
    return 0;
}

static int encode_plain(const Tokenizer *tok, const char *text, int **ids, int *n, const char *what, Err *err) {
    if (tokenizer_encode(tok, text, strlen(text), 0, ids, n, err)) return -1;
    if (*n == 0) {
        free(*ids);
        return err_set(err, "%s '%s' encodes to no tokens", what, text);
    }
    return 0;
}

int prefills_encode(const Tokenizer *tok, const char *stop_string, const char *prefill,
                    RunAssets *a, Err *err) {
    char *pf = unescape_text(prefill), *stop = unescape_text(stop_string);
    char *longer = xmalloc(strlen(stop) + strlen(pf) + 2);
    sprintf(longer, " %s%s", stop, pf);
    int rc = encode_plain(tok, pf, &a->prefill, &a->n_prefill, "prefill", err);
    if (rc == 0) rc = encode_plain(tok, longer, &a->prefill_long, &a->n_prefill_long, "prefill", err);
    free(pf), free(stop), free(longer);
    return rc;
}

int run_assets_save_model(const RunAssets *a, const char *dir, const char *src_model_dir, Err *err) {
    float *host = xmalloc(a->model.layout.n_floats * sizeof(float));
    model_download_params(&a->model, host);
    int rc = model_dir_save(dir, &a->model.cfg, host, err);
    free(host);
    static const char *const FILES[] = {"tokenizer.json", "tokenizer_config.json", "tokenizer.bin"};
    for (size_t i = 0; rc == 0 && i < sizeof FILES / sizeof FILES[0]; i++) {
        char *src = path_join(src_model_dir, FILES[i]), *dst = path_join(dir, FILES[i]);
        if (file_exists(src)) rc = copy_file_atomic(src, dst, err);
        free(src), free(dst);
    }
    return rc;
}

void run_assets_free(RunAssets *a) {
    if (a->model_ready) model_free(&a->model);
    tokenizer_free(a->tok);
    free(a->prefill);
    free(a->prefill_long);
    memset(a, 0, sizeof *a);
}

int synth_settings(const char *spec, SynthConfig *c, Err *err) {
    synth_config_default(c);
    if (!spec || !*spec) return synth_config_check(c, err);
    char *copy = xstrdup(spec), *save = NULL;
    int rc = 0;
    for (char *kv = strtok_r(copy, ",", &save); kv && rc == 0; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            rc = err_set(err, "synth: expected key=value, got '%s'", kv);
            break;
        }
        *eq = '\0';
        rc = synth_config_set(c, kv, eq + 1, err);
    }
    free(copy);
    return rc ? rc : synth_config_check(c, err);
}

int taskset_load(const TaskSource *src, const Tokenizer *tok, TaskSet *out, Err *err) {
    memset(out, 0, sizeof *out);
    Dataset ds = {0};
    if (!strcmp(src->data, "synthetic")) {
        SynthConfig sc;
        if (synth_settings(src->synth, &sc, err)) return -1;
        if (synth_generate(&sc, src->split_test ? SYNTH_TEST : SYNTH_TRAIN, src->n, &ds, err)) return -1;
    } else {
        DataOptions opt = {0};
        BadLines bad = {0};
        if (data_format_parse(src->format, &opt.format, err)) return -1;
        if (dataset_load(src->data, &opt, &ds, &bad, err)) return -1;
    }
    const int use = src->n > 0 && src->n < ds.n ? src->n : ds.n;
    if (ds.n == 0) {
        dataset_free(&ds);
        return err_set(err, "%s: no problems", src->data);
    }
    ChatStyle style;
    if (chat_style_parse(src->chat, &style, err) || prompt_check_tokenizer(tok, style, err)) {
        dataset_free(&ds);
        return -1;
    }
    char *tmpl = unescape_text(src->template_text);
    out->n = use;
    out->prompt_ids = xcalloc((size_t)use, sizeof(int *));
    out->prompt_len = xcalloc((size_t)use, sizeof(int));
    out->gold = xcalloc((size_t)use, sizeof(char *));
    int rc = 0;
    for (int i = 0; i < use && rc == 0; i++) {
        char *prompt = NULL;
        rc = prompt_build(tmpl, ds.items[i].question, style, NULL, &prompt, err);
        if (rc == 0) rc = tokenizer_encode(tok, prompt, strlen(prompt), 1, &out->prompt_ids[i], &out->prompt_len[i], err);
        free(prompt);
        out->gold[i] = xstrdup(ds.items[i].gold);
    }
    free(tmpl);
    dataset_free(&ds);
    if (rc) taskset_free(out);
    return rc;
}

void taskset_free(TaskSet *t) {
    for (int i = 0; i < t->n; i++) {
        free(t->prompt_ids ? t->prompt_ids[i] : NULL);
        free(t->gold ? t->gold[i] : NULL);
    }
    free(t->prompt_ids);
    free(t->prompt_len);
    free(t->gold);
    memset(t, 0, sizeof *t);
}
