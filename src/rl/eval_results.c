#include "rl/eval_results.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/fileio.h"
#include "rl/passk.h"

#define SCHEMA_PREFIX "softcot-eval/"
#define SCHEMA "softcot-eval/1"

int eval_results_sniff(const char *text) {
    cJSON *root = cJSON_Parse(text);
    const cJSON *s = root ? cJSON_GetObjectItemCaseSensitive(root, "schema") : NULL;
    int yes = cJSON_IsString(s) && !strncmp(s->valuestring, SCHEMA_PREFIX, strlen(SCHEMA_PREFIX));
    cJSON_Delete(root);
    return yes;
}

/* Field access with errors naming the file and the dotted path of the field. */
typedef struct {
    const char *path;
    Err *err;
    int failed;
} Ctx;

static const cJSON *field(Ctx *c, const cJSON *obj, const char *where, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!f && !c->failed) {
        err_set(c->err, "%s: %s%s%s: missing", c->path, where, *where ? "." : "", name);
        c->failed = 1;
    }
    return f;
}

static int bad(Ctx *c, const char *where, const char *name, const char *expected) {
    if (c->failed) return -1;
    err_set(c->err, "%s: %s%s%s: expected %s", c->path, where, *where ? "." : "", name, expected);
    c->failed = 1;
    return -1;
}

/* A number, or NAN for null when allow_null. */
static double num(Ctx *c, const cJSON *obj, const char *where, const char *name, int allow_null) {
    const cJSON *f = field(c, obj, where, name);
    if (!f) return NAN;
    if (cJSON_IsNumber(f)) return f->valuedouble;
    if (allow_null && cJSON_IsNull(f)) return NAN;
    bad(c, where, name, allow_null ? "a number or null" : "a number");
    return NAN;
}

static int integer(Ctx *c, const cJSON *obj, const char *where, const char *name, int lo) {
    double v = num(c, obj, where, name, 0);
    if (c->failed) return lo;
    if (v != floor(v) || v < lo || v > 1e9) {
        char what[64];
        snprintf(what, sizeof what, "an integer >= %d", lo);
        bad(c, where, name, what);
        return lo;
    }
    return (int)v;
}

static char *str(Ctx *c, const cJSON *obj, const char *where, const char *name) {
    const cJSON *f = field(c, obj, where, name);
    if (f && !cJSON_IsString(f)) bad(c, where, name, "a string");
    return xstrdup(f && cJSON_IsString(f) ? f->valuestring : "");
}

static int parse_mode(Ctx *c, const cJSON *m, EvalModeResult *r) {
    char where[200];
    snprintf(where, sizeof where, "modes.%s", r->name);
    if (!cJSON_IsObject(m)) return bad(c, "modes", r->name, "an object");
    r->cot = str(c, m, where, "cot");
    char *sampling = str(c, m, where, "sampling");
    r->sample = !strcmp(sampling, "sample");
    if (!c->failed && !r->sample && strcmp(sampling, "greedy")) bad(c, where, "sampling", "\"greedy\" or \"sample\"");
    free(sampling);
    r->n_problems = integer(c, m, where, "n_problems", 0);
    r->samples_per_problem = integer(c, m, where, "samples_per_problem", 1);
    r->greedy_pass_at_1 = num(c, m, where, "greedy_pass_at_1", 1);
    r->sample_pass_at_1 = num(c, m, where, "sample_pass_at_1", 1);
    r->frac_correct = num(c, m, where, "frac_correct", 1);
    r->frac_boxed = num(c, m, where, "frac_boxed", 1);
    r->mean_cot_len = num(c, m, where, "mean_cot_len", 1);
    r->mean_ans_len = num(c, m, where, "mean_ans_len", 1);
    r->frac_stop_string = num(c, m, where, "frac_stop_string", 1);
    r->frac_stop_length = num(c, m, where, "frac_stop_length", 1);
    r->frac_stop_eos = num(c, m, where, "frac_stop_eos", 1);
    r->mean_entropy = num(c, m, where, "mean_entropy", 1);
    if (c->failed) return -1;

    const cJSON *pk = field(c, m, where, "pass_at_k");
    if (pk && !cJSON_IsObject(pk)) bad(c, where, "pass_at_k", "an object");
    if (c->failed) return -1;
    const int nk = cJSON_GetArraySize(pk);
    r->k = xcalloc((size_t)(nk ? nk : 1), sizeof *r->k);
    r->pass_k = xcalloc((size_t)(nk ? nk : 1), sizeof *r->pass_k);
    const cJSON *e;
    cJSON_ArrayForEach(e, pk) {
        char *end;
        long k = strtol(e->string, &end, 10);
        char sub[300];
        snprintf(sub, sizeof sub, "%s.pass_at_k", where);
        if (*end || k < 1 || k > r->samples_per_problem) return bad(c, sub, e->string, "a key k in 1..samples_per_problem");
        if (!cJSON_IsNumber(e) && !cJSON_IsNull(e)) return bad(c, sub, e->string, "a number or null");
        r->k[r->n_k] = (int)k;
        r->pass_k[r->n_k++] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    }
    /* ascending k (insertion sort: a handful of entries) */
    for (int i = 1; i < r->n_k; i++)
        for (int j = i; j > 0 && r->k[j] < r->k[j - 1]; j--) {
            int tk = r->k[j];
            double tv = r->pass_k[j];
            r->k[j] = r->k[j - 1], r->pass_k[j] = r->pass_k[j - 1];
            r->k[j - 1] = tk, r->pass_k[j - 1] = tv;
        }

    char sub[300];
    snprintf(sub, sizeof sub, "%s.per_problem", where);
    const cJSON *pp = field(c, m, where, "per_problem");
    const cJSON *nc = pp ? field(c, pp, sub, "n_correct") : NULL;
    if (c->failed) return -1;
    char what[80];
    snprintf(what, sizeof what, "an array of %d integers in 0..%d", r->n_problems, r->samples_per_problem);
    if (!cJSON_IsArray(nc) || cJSON_GetArraySize(nc) != r->n_problems) return bad(c, sub, "n_correct", what);
    r->n_correct = xcalloc((size_t)(r->n_problems ? r->n_problems : 1), sizeof *r->n_correct);
    int i = 0;
    cJSON_ArrayForEach(e, nc) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 ||
            e->valuedouble > r->samples_per_problem)
            return bad(c, sub, "n_correct", what);
        r->n_correct[i++] = (int)e->valuedouble;
    }

    snprintf(sub, sizeof sub, "%s.entropy_profile", where);
    const cJSON *ep = field(c, m, where, "entropy_profile");
    if (c->failed) return -1;
    r->entropy_bin = integer(c, ep, sub, "bin", 1);
    const cJSON *mean = field(c, ep, sub, "mean"), *count = field(c, ep, sub, "count");
    if (c->failed) return -1;
    if (!cJSON_IsArray(mean)) return bad(c, sub, "mean", "an array");
    if (!cJSON_IsArray(count) || cJSON_GetArraySize(count) != cJSON_GetArraySize(mean))
        return bad(c, sub, "count", "an array as long as mean");
    r->n_entropy_bins = cJSON_GetArraySize(mean);
    r->entropy_mean = xcalloc((size_t)(r->n_entropy_bins ? r->n_entropy_bins : 1), sizeof(double));
    r->entropy_count = xcalloc((size_t)(r->n_entropy_bins ? r->n_entropy_bins : 1), sizeof(double));
    i = 0;
    cJSON_ArrayForEach(e, mean) {
        if (!cJSON_IsNumber(e) && !cJSON_IsNull(e)) return bad(c, sub, "mean", "numbers or null");
        r->entropy_mean[i++] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    }
    i = 0;
    cJSON_ArrayForEach(e, count) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0) return bad(c, sub, "count", "non-negative numbers");
        r->entropy_count[i++] = e->valuedouble;
    }
    return 0;
}

int eval_results_parse(const char *path, const char *text, EvalResults *out, Err *err) {
    memset(out, 0, sizeof *out);
    out->path = xstrdup(path);
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= text ? (long)(at - text) : 0;
        return err_set(err, "%s: not valid JSON (near byte %ld)", path, off);
    }
    Ctx c = {path, err, 0};
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    if (!cJSON_IsObject(root) || !cJSON_IsString(schema) || strncmp(schema->valuestring, SCHEMA_PREFIX, strlen(SCHEMA_PREFIX))) {
        cJSON_Delete(root);
        return err_set(err, "%s: not a softcot eval results file (no \"schema\": \"%s\")", path, SCHEMA);
    }
    if (strcmp(schema->valuestring, SCHEMA)) {
        err_set(err, "%s: eval results schema '%.60s' is not supported (this softcot reads %s)", path, schema->valuestring,
                SCHEMA);
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *complete = field(&c, root, "", "complete");
    if (complete && !cJSON_IsBool(complete)) bad(&c, "", "complete", "true or false");
    out->complete = cJSON_IsTrue(complete);
    const cJSON *model = field(&c, root, "", "model");
    if (model) out->model_dir = str(&c, model, "model", "dir");
    const cJSON *data = field(&c, root, "", "data");
    if (data && cJSON_IsObject(data)) {
        out->data_source = str(&c, data, "data", "source");
        out->n_problems = integer(&c, data, "data", "n_problems", 0);
    } else if (data && !cJSON_IsNull(data)) {
        bad(&c, "", "data", "an object or null");
    }
    const cJSON *modes = field(&c, root, "", "modes");
    if (modes && !cJSON_IsObject(modes)) bad(&c, "", "modes", "an object");
    if (!c.failed) {
        const int nm = cJSON_GetArraySize(modes);
        out->modes = xcalloc((size_t)(nm ? nm : 1), sizeof *out->modes);
        const cJSON *m;
        cJSON_ArrayForEach(m, modes) {
            if (c.failed) break;
            EvalModeResult *r = &out->modes[out->n_modes++];
            r->name = xstrdup(m->string);
            parse_mode(&c, m, r);
        }
    }
    const cJSON *ood = c.failed ? NULL : field(&c, root, "", "ood");
    if (ood && !cJSON_IsArray(ood)) bad(&c, "", "ood", "an array");
    if (!c.failed) {
        const int no = cJSON_GetArraySize(ood);
        out->ood = xcalloc((size_t)(no ? no : 1), sizeof *out->ood);
        const cJSON *o;
        cJSON_ArrayForEach(o, ood) {
            if (c.failed) break;
            char where[32];
            snprintf(where, sizeof where, "ood[%d]", out->n_ood);
            EvalOodResult *r = &out->ood[out->n_ood++];
            r->file = str(&c, o, where, "file");
            r->format = str(&c, o, where, "format");
            r->n_items = integer(&c, o, where, "n_items", 0);
            r->accuracy = num(&c, o, where, "accuracy", 1);
            r->accuracy_per_token = num(&c, o, where, "accuracy_per_token", 1);
            r->nll_per_token = num(&c, o, where, "mean_nll_per_token_correct", 1);
        }
    }
    cJSON_Delete(root);
    if (!out->model_dir) out->model_dir = xstrdup("");
    if (!out->data_source) out->data_source = xstrdup("");
    return c.failed ? -1 : 0;
}

int eval_results_load(const char *path, EvalResults *out, Err *err) {
    char *text = NULL;
    memset(out, 0, sizeof *out);
    if (file_read_all(path, &text, NULL, err)) return -1;
    int rc = eval_results_parse(path, text, out, err);
    free(text);
    return rc;
}

void eval_results_free(EvalResults *r) {
    for (int i = 0; i < r->n_modes; i++) {
        EvalModeResult *m = &r->modes[i];
        free(m->name), free(m->cot), free(m->k), free(m->pass_k), free(m->n_correct);
        free(m->entropy_mean), free(m->entropy_count);
    }
    for (int i = 0; i < r->n_ood; i++) free(r->ood[i].file), free(r->ood[i].format);
    free(r->modes), free(r->ood), free(r->path), free(r->model_dir), free(r->data_source);
    memset(r, 0, sizeof *r);
}

double eval_results_pass_at_k(const EvalModeResult *m, int k) {
    if (!m->n_correct || m->n_problems < 1 || k < 1 || k > m->samples_per_problem) return NAN;
    double sum = 0;
    for (int p = 0; p < m->n_problems; p++) sum += pass_at_k(m->samples_per_problem, m->n_correct[p], k);
    return sum / m->n_problems;
}
