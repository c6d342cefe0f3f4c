#include "io/model_dir.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/params.h"

/* Where each layout tensor is found: checked for every tensor of every file before the
 * (possibly huge) parameter buffer is allocated, so a config that does not match the
 * files is reported as such rather than as an allocation failure. */
typedef struct {
    const ModelConfig *cfg;
    const ParamLayout *lay;
    StFile *files;
    char **names; /* shard file names as in weight_map (sharded only) */
    int n_files;
    int *src_file;              /* per layout tensor: index in files[], or -1 */
    const StTensor **src_tensor; /* per layout tensor */
} Plan;

/* HF checkpoints may carry buffers and tied copies that are not parameters. */
static int ignorable(const char *name, const ModelConfig *c) {
    static const char suffix[] = "rotary_emb.inv_freq";
    size_t n = strlen(name), k = sizeof suffix - 1;
    if (c->tied_embeddings && !strcmp(name, "lm_head.weight")) return 1;
    return n >= k && !strcmp(name + n - k, suffix);
}

static int plan_file(Plan *pl, int fi, Err *err) {
    const StFile *f = &pl->files[fi];
    for (int i = 0; i < f->n_tensors; i++) {
        const StTensor *t = &f->tensors[i];
        if (ignorable(t->name, pl->cfg)) continue;
        const ParamTensor *pt = param_find(pl->lay, t->name);
        if (!pt)
            return err_set(err, "%s: unexpected tensor '%s' (not a parameter of the model config.json "
                                "describes)",
                           f->path, t->name);
        int k = (int)(pt - pl->lay->tensors);
        if (pl->src_file[k] >= 0)
            return err_set(err, "%s: tensor '%s' appears again (already read from %s)", f->path, t->name,
                           pl->files[pl->src_file[k]].path);
        int64_t want[2] = {pt->shape[0], pt->shape[1]};
        int same = t->ndim == pt->ndim;
        for (int d = 0; d < t->ndim && same; d++) same = t->shape[d] == want[d];
        if (!same) {
            char got[256], exp[64];
            return err_set(err, "%s: tensor '%s' has shape %s, config expects %s", f->path, t->name,
                           st_shape_str(got, sizeof got, t->ndim, t->shape),
                           st_shape_str(exp, sizeof exp, pt->ndim, want));
        }
        if (t->dtype != ST_F32 && t->dtype != ST_BF16 && t->dtype != ST_F16)
            return err_set(err, "%s: tensor '%s' has dtype %s, expected F32, BF16 or F16", f->path, t->name,
                           st_dtype_name(t->dtype));
        pl->src_file[k] = fi;
        pl->src_tensor[k] = t;
    }
    return 0;
}

/* Shard names come from the file: keep them to plain names inside dir. */
static int plain_name(const char *s) { return *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, ".."); }

static int open_shards(const char *dir, const char *index_path, Plan *pl, Err *err) {
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
    int cap = (cJSON_IsObject(wm) ? cJSON_GetArraySize(wm) : 0) + 1;
    pl->names = xcalloc((size_t)cap, sizeof *pl->names);
    pl->files = xcalloc((size_t)cap, sizeof *pl->files);
    const cJSON *e;
    if (!rc) {
        cJSON_ArrayForEach(e, wm) {
            if (!cJSON_IsString(e) || !plain_name(e->valuestring)) {
                rc = err_set(err, "%s: weight_map entry '%s' must be a shard file name in the same directory",
                             index_path, e->string);
                break;
            }
            int known = 0;
            for (int i = 0; i < pl->n_files && !known; i++) known = !strcmp(pl->names[i], e->valuestring);
            if (!known) pl->names[pl->n_files++] = xstrdup(e->valuestring);
        }
    }
    if (!rc && pl->n_files == 0) rc = err_set(err, "%s: weight_map is empty", index_path);
    int opened = 0;
    for (; opened < pl->n_files && !rc; opened++) {
        char *shard = path_join(dir, pl->names[opened]);
        StFile *f = &pl->files[opened];
        if (!file_exists(shard)) {
            rc = err_set(err, "%s: shard '%s' named in weight_map does not exist", index_path, pl->names[opened]);
        } else if (st_open(f, shard, err)) {
            rc = -1;
        } else {
            cJSON_ArrayForEach(e, wm) {
                if (strcmp(e->valuestring, pl->names[opened]) || st_find(f, e->string)) continue;
                rc = err_set(err, "%s: weight_map puts tensor '%s' in '%s', which has no such tensor",
                             index_path, e->string, pl->names[opened]);
                break;
            }
        }
        free(shard);
        if (rc && f->path) st_close(f); /* failed shards are not counted as open */
        if (rc) break;
    }
    /* only files[0 .. opened) are open; the caller closes them */
    for (int i = 0; i < pl->n_files; i++) free(pl->names[i]);
    free(pl->names);
    pl->names = NULL;
    pl->n_files = opened;
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
    Plan pl = {.cfg = &c, .lay = &lay};
    pl.src_file = xmalloc((size_t)lay.n_tensors * sizeof *pl.src_file);
    pl.src_tensor = xcalloc((size_t)lay.n_tensors, sizeof *pl.src_tensor);
    for (int i = 0; i < lay.n_tensors; i++) pl.src_file[i] = -1;
    char *single = path_join(dir, "model.safetensors");
    char *index = path_join(dir, "model.safetensors.index.json");
    const char *source_name = single;
    if (file_exists(single)) {
        pl.files = xcalloc(1, sizeof *pl.files);
        rc = st_open(&pl.files[0], single, err);
        pl.n_files = rc ? 0 : 1;
    } else if (file_exists(index)) {
        rc = open_shards(dir, index, &pl, err);
        source_name = index;
    } else {
        rc = err_set(err, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    for (int fi = 0; fi < pl.n_files && !rc; fi++) rc = plan_file(&pl, fi, err);
    for (int i = 0; i < lay.n_tensors && !rc; i++)
        if (pl.src_file[i] < 0) rc = err_set(err, "%s: missing tensor '%s'", source_name, lay.tensors[i].name);
    float *params = NULL;
    if (!rc) {
        params = xmalloc(lay.n_floats * sizeof *params);
        for (int i = 0; i < lay.n_tensors && !rc; i++)
            rc = st_read_f32(&pl.files[pl.src_file[i]], pl.src_tensor[i], params + lay.tensors[i].offset, err);
    }
    for (int i = 0; i < pl.n_files; i++) st_close(&pl.files[i]);
    free(pl.files);
    free(pl.src_file);
    free(pl.src_tensor);
    free(single);
    free(index);
    param_layout_free(&lay, &off);
    if (rc) {
        free(params);
        return -1;
    }
    *cfg = c;
    *host_params = params;
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
