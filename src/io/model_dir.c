#include "io/model_dir.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/params.h"

typedef struct {
    const ModelConfig *cfg;
    const ParamLayout *lay;
    float *params;
    int *seen_in; /* per layout tensor: -1, or the index in sources[] it came from */
    char **sources;
} Fill;

/* HF checkpoints may carry buffers and tied copies that are not parameters. */
static int ignorable(const char *name, const ModelConfig *c) {
    static const char suffix[] = "rotary_emb.inv_freq";
    size_t n = strlen(name), k = sizeof suffix - 1;
    if (c->tied_embeddings && !strcmp(name, "lm_head.weight")) return 1;
    return n >= k && !strcmp(name + n - k, suffix);
}

static int fill_from(const StFile *f, int source, Fill *fl, Err *err) {
    for (int i = 0; i < f->n_tensors; i++) {
        const StTensor *t = &f->tensors[i];
        if (ignorable(t->name, fl->cfg)) continue;
        const ParamTensor *pt = param_find(fl->lay, t->name);
        if (!pt)
            return err_set(err, "%s: unexpected tensor '%s' (not a parameter of the model config.json "
                                "describes)",
                           f->path, t->name);
        int k = (int)(pt - fl->lay->tensors);
        if (fl->seen_in[k] >= 0)
            return err_set(err, "%s: tensor '%s' appears again (already read from %s)", f->path, t->name,
                           fl->sources[fl->seen_in[k]]);
        int64_t want[2] = {pt->shape[0], pt->shape[1]};
        int same = t->ndim == pt->ndim;
        for (int d = 0; d < t->ndim && same; d++) same = t->shape[d] == want[d];
        if (!same) {
            char got[256], exp[64];
            return err_set(err, "%s: tensor '%s' has shape %s, config expects %s", f->path, t->name,
                           st_shape_str(got, sizeof got, t->ndim, t->shape),
                           st_shape_str(exp, sizeof exp, pt->ndim, want));
        }
        if (st_read_f32(f, t, fl->params + pt->offset, err)) return -1;
        fl->seen_in[k] = source;
    }
    return 0;
}

static int load_single(const char *path, Fill *fl, Err *err) {
    StFile f;
    if (st_open(&f, path, err)) return -1;
    fl->sources[0] = xstrdup(path);
    int rc = fill_from(&f, 0, fl, err);
    st_close(&f);
    return rc;
}

/* Shard names come from the file: keep them to plain names inside dir. */
static int plain_name(const char *s) { return *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, ".."); }

static int load_sharded(const char *dir, const char *index_path, Fill *fl, int *n_sources, Err *err) {
    char *text;
    size_t len;
    if (file_read_all(index_path, &text, &len, err)) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        err_set(err, "%s: bad JSON at byte %zu", index_path, end ? (size_t)(end - text) : (size_t)0);
        free(text);
        return -1;
    }
    free(text);
    int rc = 0;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) rc = err_set(err, "%s: field 'weight_map' missing or not an object", index_path);
    /* Distinct shard names in order of first appearance; at most one per entry. */
    int n = 0;
    fl->sources = xcalloc((size_t)(cJSON_IsObject(wm) ? cJSON_GetArraySize(wm) : 0) + 1, sizeof *fl->sources);
    const cJSON *e;
    if (!rc) {
        cJSON_ArrayForEach(e, wm) {
            if (!cJSON_IsString(e) || !plain_name(e->valuestring)) {
                rc = err_set(err, "%s: weight_map entry '%s' must be a shard file name in the same directory",
                             index_path, e->string);
                break;
            }
            int known = 0;
            for (int i = 0; i < n && !known; i++) known = !strcmp(fl->sources[i], e->valuestring);
            if (!known) fl->sources[n++] = xstrdup(e->valuestring);
        }
    }
    if (!rc && n == 0) rc = err_set(err, "%s: weight_map is empty", index_path);
    *n_sources = n;
    for (int s = 0; s < n && !rc; s++) {
        char *shard = path_join(dir, fl->sources[s]);
        StFile f;
        if (!file_exists(shard)) {
            rc = err_set(err, "%s: shard '%s' named in weight_map does not exist", index_path, fl->sources[s]);
        } else if (st_open(&f, shard, err)) {
            rc = -1;
        } else {
            cJSON_ArrayForEach(e, wm) {
                if (strcmp(e->valuestring, fl->sources[s]) || st_find(&f, e->string)) continue;
                rc = err_set(err, "%s: weight_map puts tensor '%s' in '%s', which has no such tensor",
                             index_path, e->string, fl->sources[s]);
                break;
            }
            if (!rc) rc = fill_from(&f, s, fl, err);
            st_close(&f);
        }
        /* Later messages name shards by full path. */
        free(fl->sources[s]);
        fl->sources[s] = shard;
    }
    cJSON_Delete(root);
    return rc;
}

int model_dir_load(const char *dir, ModelConfig *cfg, float **host_params, Err *err) {
    char *cfg_path = path_join(dir, "config.json");
    ModelConfig c;
    int rc = hf_config_read(cfg_path, &c, err);
    free(cfg_path);
    if (rc) return -1;

    ParamLayout lay;
    ParamOffsets off;
    param_layout_build(&lay, &off, &c);
    Fill fl = {&c, &lay, xmalloc(lay.n_floats * sizeof(float)), xmalloc((size_t)lay.n_tensors * sizeof(int)),
               NULL};
    for (int i = 0; i < lay.n_tensors; i++) fl.seen_in[i] = -1;
    char *single = path_join(dir, "model.safetensors");
    char *index = path_join(dir, "model.safetensors.index.json");
    const char *source_name = single;
    int n_sources = 0;
    if (file_exists(single)) {
        fl.sources = xcalloc(1, sizeof *fl.sources);
        n_sources = 1;
        rc = load_single(single, &fl, err);
    } else if (file_exists(index)) {
        rc = load_sharded(dir, index, &fl, &n_sources, err);
        source_name = index;
    } else {
        rc = err_set(err, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    for (int i = 0; i < lay.n_tensors && !rc; i++)
        if (fl.seen_in[i] < 0) rc = err_set(err, "%s: missing tensor '%s'", source_name, lay.tensors[i].name);
    for (int i = 0; i < n_sources; i++) free(fl.sources[i]);
    free(fl.sources);
    free(fl.seen_in);
    free(single);
    free(index);
    param_layout_free(&lay, &off);
    if (rc) {
        free(fl.params);
        return -1;
    }
    *cfg = c;
    *host_params = fl.params;
    return 0;
}

int model_dir_save(const char *dir, const ModelConfig *cfg, const float *host_params, Err *err) {
    if (model_config_validate(cfg, dir, err) || make_dirs(dir, err)) return -1;
    ParamLayout lay;
    ParamOffsets off;
    param_layout_build(&lay, &off, cfg);
    StWriteTensor *w = xcalloc((size_t)lay.n_tensors, sizeof *w);
    for (int i = 0; i < lay.n_tensors; i++) {
        const ParamTensor *t = &lay.tensors[i];
        w[i].name = t->name;
        w[i].dtype = ST_F32;
        w[i].ndim = t->ndim;
        w[i].shape[0] = t->shape[0];
        w[i].shape[1] = t->shape[1];
        w[i].data = host_params + t->offset;
    }
    static const char *const meta[] = {"format", "pt", NULL};
    char *st_path = path_join(dir, "model.safetensors");
    char *cfg_path = path_join(dir, "config.json");
    int rc = st_write(st_path, w, lay.n_tensors, meta, err);
    if (!rc) rc = hf_config_write(cfg_path, cfg, err);
    free(st_path);
    free(cfg_path);
    free(w);
    param_layout_free(&lay, &off);
    return rc;
}
