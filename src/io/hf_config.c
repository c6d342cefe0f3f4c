#include "io/hf_config.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

/* ---- typed field access; every failure names the file and the field ------------------ */

static const cJSON *field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNull(v) ? NULL : v;
}

static int is_int(const cJSON *v, double lo) {
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= lo &&
           v->valuedouble <= INT_MAX;
}

/* A positive integer; absent or null gives def, or an error when def < 0. */
static int get_pos_int(const char *what, const cJSON *o, const char *key, int def, int *out, Err *err) {
    const cJSON *v = field(o, key);
    if (!v) {
        if (def < 0) return err_set(err, "%s: field '%s' missing", what, key);
        *out = def;
        return 0;
    }
    if (!is_int(v, 1)) return err_set(err, "%s: field '%s' must be a positive integer", what, key);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_pos_float(const char *what, const cJSON *o, const char *key, double def, float *out,
                         Err *err) {
    const cJSON *v = field(o, key);
    if (!v) {
        if (def < 0) return err_set(err, "%s: field '%s' missing", what, key);
        *out = (float)def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite((float)v->valuedouble))
        return err_set(err, "%s: field '%s' must be a positive number", what, key);
    *out = (float)v->valuedouble;
    return 0;
}

static int get_bool(const char *what, const cJSON *o, const char *key, int def, int *out, Err *err) {
    const cJSON *v = field(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) return err_set(err, "%s: field '%s' must be true or false", what, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* Options that change the network in ways the engine does not implement are refused. */
static int refuse_true(const char *what, const cJSON *o, const char *key, Err *err) {
    int b;
    if (get_bool(what, o, key, 0, &b, err)) return -1;
    if (b) return err_set(err, "%s: field '%s' is true, which is not supported", what, key);
    return 0;
}

static int parse_arch(const char *what, const cJSON *root, ModelArch *arch, Err *err) {
    const cJSON *archs = field(root, "architectures");
    if (archs) {
        const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
        if (!cJSON_IsString(a0))
            return err_set(err, "%s: field 'architectures' must be a non-empty list of strings", what);
        if (!strcmp(a0->valuestring, "LlamaForCausalLM")) *arch = ARCH_LLAMA;
        else if (!strcmp(a0->valuestring, "Qwen2ForCausalLM")) *arch = ARCH_QWEN2;
        else
            return err_set(err,
                           "%s: unsupported architecture '%s' (expected LlamaForCausalLM or "
                           "Qwen2ForCausalLM)",
                           what, a0->valuestring);
        return 0;
    }
    const cJSON *mt = field(root, "model_type");
    if (!mt) return err_set(err, "%s: field 'architectures' (or 'model_type') missing", what);
    if (!cJSON_IsString(mt)) return err_set(err, "%s: field 'model_type' must be a string", what);
    if (!strcmp(mt->valuestring, "llama")) *arch = ARCH_LLAMA;
    else if (!strcmp(mt->valuestring, "qwen2")) *arch = ARCH_QWEN2;
    else
        return err_set(err, "%s: unsupported model_type '%s' (expected llama or qwen2)", what,
                       mt->valuestring);
    return 0;
}

static int parse_rope_scaling(const char *what, const cJSON *root, ModelConfig *c, Err *err) {
    const cJSON *rs = field(root, "rope_scaling");
    if (!rs) return 0;
    if (!cJSON_IsObject(rs)) return err_set(err, "%s: field 'rope_scaling' must be an object or null", what);
    const cJSON *ty = field(rs, "rope_type");
    if (!ty) ty = field(rs, "type");
    if (!cJSON_IsString(ty))
        return err_set(err, "%s: field 'rope_scaling.rope_type' missing or not a string", what);
    if (!strcmp(ty->valuestring, "default")) return 0;
    if (strcmp(ty->valuestring, "llama3"))
        return err_set(err, "%s: rope_scaling type '%s' is not supported (only 'llama3')", what,
                       ty->valuestring);
    c->rope_llama3 = 1;
    static const char *const F[] = {"factor", "low_freq_factor", "high_freq_factor"};
    float *dst[] = {&c->rope_factor, &c->rope_low_freq_factor, &c->rope_high_freq_factor};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = field(rs, F[i]);
        if (!v) return err_set(err, "%s: field 'rope_scaling.%s' missing", what, F[i]);
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite((float)v->valuedouble))
            return err_set(err, "%s: field 'rope_scaling.%s' must be a positive number", what, F[i]);
        *dst[i] = (float)v->valuedouble;
    }
    const cJSON *om = field(rs, "original_max_position_embeddings");
    if (!om) return err_set(err, "%s: field 'rope_scaling.original_max_position_embeddings' missing", what);
    if (!is_int(om, 1))
        return err_set(err, "%s: field 'rope_scaling.original_max_position_embeddings' must be a "
                            "positive integer",
                       what);
    c->rope_original_max_pos = (int)om->valuedouble;
    return 0;
}

static int parse_special_ids(const char *what, const cJSON *root, ModelConfig *c, Err *err) {
    c->bos_id = -1;
    const cJSON *b = field(root, "bos_token_id");
    if (b) {
        if (!is_int(b, 0)) return err_set(err, "%s: field 'bos_token_id' must be a non-negative integer", what);
        c->bos_id = (int)b->valuedouble;
    }
    c->n_eos = 0;
    const cJSON *e = field(root, "eos_token_id");
    if (!e) return 0;
    if (is_int(e, 0)) {
        c->eos_ids[c->n_eos++] = (int)e->valuedouble;
        return 0;
    }
    if (!cJSON_IsArray(e))
        return err_set(err, "%s: field 'eos_token_id' must be a non-negative integer or a list of them",
                       what);
    int n = cJSON_GetArraySize(e);
    if (n > MAX_EOS_IDS)
        return err_set(err, "%s: field 'eos_token_id' has %d entries, at most %d are supported", what, n,
                       MAX_EOS_IDS);
    const cJSON *v;
    cJSON_ArrayForEach(v, e) {
        if (!is_int(v, 0))
            return err_set(err, "%s: field 'eos_token_id' must be a non-negative integer or a list of them",
                           what);
        c->eos_ids[c->n_eos++] = (int)v->valuedouble;
    }
    return 0;
}

static int parse_root(const char *what, const cJSON *root, ModelConfig *c, Err *err) {
    if (!cJSON_IsObject(root)) return err_set(err, "%s: not a JSON object", what);
    memset(c, 0, sizeof *c);
    if (parse_arch(what, root, &c->arch, err)) return -1;
    if (get_pos_int(what, root, "hidden_size", -1, &c->dim, err) ||
        get_pos_int(what, root, "intermediate_size", -1, &c->hidden_dim, err) ||
        get_pos_int(what, root, "num_hidden_layers", -1, &c->n_layers, err) ||
        get_pos_int(what, root, "num_attention_heads", -1, &c->n_heads, err) ||
        get_pos_int(what, root, "num_key_value_heads", c->n_heads, &c->n_kv_heads, err) ||
        get_pos_int(what, root, "vocab_size", -1, &c->vocab_size, err) ||
        get_pos_int(what, root, "max_position_embeddings", 2048, &c->max_seq, err))
        return -1;
    if (c->dim % c->n_heads && !field(root, "head_dim"))
        return err_set(err, "%s: hidden_size=%d is not a multiple of num_attention_heads=%d and no "
                            "head_dim is given",
                       what, c->dim, c->n_heads);
    /* Absent fields take transformers' LlamaConfig/Qwen2Config defaults. */
    if (get_pos_int(what, root, "head_dim", c->dim / c->n_heads, &c->head_dim, err) ||
        get_pos_float(what, root, "rms_norm_eps", 1e-6, &c->norm_eps, err) ||
        get_pos_float(what, root, "rope_theta", 10000.0, &c->rope_theta, err) ||
        get_bool(what, root, "tie_word_embeddings", 0, &c->tied_embeddings, err) ||
        parse_rope_scaling(what, root, c, err) || parse_special_ids(what, root, c, err))
        return -1;
    /* the layout computes heads*head_dim in int */
    if ((long long)c->n_heads * c->head_dim > INT_MAX)
        return err_set(err, "%s: num_attention_heads x head_dim = %lld is too large", what,
                       (long long)c->n_heads * c->head_dim);
    const cJSON *act = field(root, "hidden_act");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu")))
        return err_set(err, "%s: field 'hidden_act' must be \"silu\" (the only activation supported)", what);
    if (c->arch == ARCH_QWEN2) {
        c->qkv_bias = 1;
        if (refuse_true(what, root, "use_sliding_window", err)) return -1;
    } else {
        if (refuse_true(what, root, "attention_bias", err) || refuse_true(what, root, "mlp_bias", err))
            return -1;
    }
    return model_config_validate(c, what, err);
}

int hf_config_parse(const char *json, size_t len, const char *what, ModelConfig *c, Err *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root)
        return err_set(err, "%s: bad JSON at byte %zu", what, end ? (size_t)(end - json) : (size_t)0);
    int rc = parse_root(what, root, c, err);
    cJSON_Delete(root);
    return rc;
}

int hf_config_read(const char *path, ModelConfig *c, Err *err) {
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len, err)) return -1;
    int rc = hf_config_parse(text, len, path, c, err);
    free(text);
    return rc;
}

/* ---- writer ------------------------------------------------------------------------- */

/* The shortest decimal that reads back as the same float, so 1e-5f is written "1e-05"
 * rather than the double expansion 9.99999974737875e-06. */
static cJSON *float_item(float x) {
    char s[48];
    if (x == floorf(x) && fabsf(x) < 1e15f) { /* 10000.0 as transformers writes it, not 1e+04 */
        snprintf(s, sizeof s, "%.1f", (double)x);
        return cJSON_CreateRaw(s);
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, (double)x);
        if (strtof(s, NULL) == x) break;
    }
    return cJSON_CreateRaw(s);
}

char *hf_config_to_json(const ModelConfig *c, size_t *len) {
    if (!isfinite(c->norm_eps) || !isfinite(c->rope_theta) || !isfinite(c->rope_factor) ||
        !isfinite(c->rope_low_freq_factor) || !isfinite(c->rope_high_freq_factor))
        return NULL;
    int qwen = c->arch == ARCH_QWEN2;
    cJSON *o = cJSON_CreateObject();
    const char *arch = qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
    cJSON_AddItemToObject(o, "architectures", cJSON_CreateStringArray(&arch, 1));
    cJSON_AddStringToObject(o, "model_type", qwen ? "qwen2" : "llama");
    cJSON_AddNumberToObject(o, "hidden_size", c->dim);
    cJSON_AddNumberToObject(o, "intermediate_size", c->hidden_dim);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddStringToObject(o, "hidden_act", "silu");
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_seq);
    cJSON_AddItemToObject(o, "rms_norm_eps", float_item(c->norm_eps));
    cJSON_AddItemToObject(o, "rope_theta", float_item(c->rope_theta));
    if (c->rope_llama3) {
        cJSON *rs = cJSON_AddObjectToObject(o, "rope_scaling");
        cJSON_AddStringToObject(rs, "rope_type", "llama3");
        cJSON_AddItemToObject(rs, "factor", float_item(c->rope_factor));
        cJSON_AddItemToObject(rs, "low_freq_factor", float_item(c->rope_low_freq_factor));
        cJSON_AddItemToObject(rs, "high_freq_factor", float_item(c->rope_high_freq_factor));
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_original_max_pos);
    } else {
        cJSON_AddNullToObject(o, "rope_scaling");
    }
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tied_embeddings);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    if (c->bos_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", c->bos_id);
    else cJSON_AddNullToObject(o, "bos_token_id");
    if (c->n_eos == 1) cJSON_AddNumberToObject(o, "eos_token_id", c->eos_ids[0]);
    else if (c->n_eos > 1) cJSON_AddItemToObject(o, "eos_token_id", cJSON_CreateIntArray(c->eos_ids, c->n_eos));
    else cJSON_AddNullToObject(o, "eos_token_id");
    if (qwen) {
        cJSON_AddBoolToObject(o, "use_sliding_window", 0);
    } else {
        cJSON_AddBoolToObject(o, "attention_bias", 0);
        cJSON_AddBoolToObject(o, "mlp_bias", 0);
    }
    cJSON_AddStringToObject(o, "torch_dtype", "float32");
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) FATAL("cJSON_Print failed (out of memory)");
    /* cJSON indents with tabs and writes ":\t"; raw tabs occur nowhere else (strings escape
     * them), so rewrite to the 2-space style of Hugging Face's files. */
    size_t n = strlen(text), k = 0;
    char *out = xmalloc(2 * n + 2);
    for (size_t i = 0; i < n; i++) {
        if (text[i] != '\t') out[k++] = text[i];
        else if (i > 0 && text[i - 1] == ':') out[k++] = ' ';
        else out[k++] = ' ', out[k++] = ' ';
    }
    out[k++] = '\n';
    out[k] = '\0';
    cJSON_free(text);
    if (len) *len = k;
    return out;
}

int hf_config_write(const char *path, const ModelConfig *c, Err *err) {
    size_t k;
    char *out = hf_config_to_json(c, &k);
    if (!out) return err_set(err, "%s: config has a non-finite float", path);
    int rc = atomic_write_all(path, out, k, err);
    free(out);
    return rc;
}
