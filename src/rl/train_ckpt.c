#include "rl/train_ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "io/checkpoint.h"
#include "io/copy_file.h"
#include "io/hf_config.h"
#include "io/model_dir.h"

enum { N_GROUPS = 3 };
static const char *GROUPS[N_GROUPS] = {"params", "adam_m", "adam_v"};

/* Host views of the three device buffers (staged copies when device memory is not host). */
typedef struct {
    float *host[N_GROUPS];
    int staged;
} HostViews;

static void host_views(const TrainState *st, HostViews *h, int download) {
    float *dev[N_GROUPS] = {st->model->params, st->adam_m, st->adam_v};
    const size_t bytes = st->model->layout.n_floats * sizeof(float);
    h->staged = !ops_device_is_host();
    for (int g = 0; g < N_GROUPS; g++) {
        if (!h->staged) {
            h->host[g] = dev[g];
        } else {
            h->host[g] = xmalloc(bytes);
            if (download) dev_download(h->host[g], dev[g], bytes);
        }
    }
}

static void host_views_release(const TrainState *st, HostViews *h, int upload) {
    float *dev[N_GROUPS] = {st->model->params, st->adam_m, st->adam_v};
    const size_t bytes = st->model->layout.n_floats * sizeof(float);
    for (int g = 0; g < N_GROUPS && h->staged; g++) {
        if (upload) dev_upload(dev[g], h->host[g], bytes);
        free(h->host[g]);
    }
}

/* One item per tensor per group, named "<group>/<hf name>", plus the data order. */
static CkptItem *build_items(const TrainState *st, HostViews *h, int64_t *order, int64_t n_tasks,
                             char ***names_out, int *n_out) {
    const ParamLayout *L = &st->model->layout;
    const int n = N_GROUPS * L->n_tensors + 1;
    CkptItem *items = xcalloc((size_t)n, sizeof *items);
    char **names = xcalloc((size_t)n, sizeof *names);
    int k = 0;
    for (int g = 0; g < N_GROUPS; g++)
        for (int i = 0; i < L->n_tensors; i++, k++) {
            const ParamTensor *t = &L->tensors[i];
            names[k] = xmalloc(strlen(GROUPS[g]) + strlen(t->name) + 2);
            sprintf(names[k], "%s/%s", GROUPS[g], t->name);
            items[k].name = names[k];
            items[k].dtype = CKPT_F32;
            items[k].ndim = t->ndim;
            items[k].shape[0] = t->shape[0];
            items[k].shape[1] = t->shape[1];
            items[k].data = h->host[g] + t->offset;
        }
    names[k] = xstrdup("data/order");
    items[k] = (CkptItem){.name = names[k], .dtype = CKPT_I64, .ndim = 1, .shape = {n_tasks}, .data = order};
    *names_out = names;
    *n_out = n;
    return items;
}

static void free_items(CkptItem *items, char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(items);
}

/* The order in which the current epoch visits the tasks (informative: the order is a pure
 * function of seed and cursor, which is what resume uses). */
static int64_t *epoch_order(uint64_t seed, int64_t cursor, int64_t n_tasks) {
    int64_t *order = xmalloc((size_t)n_tasks * sizeof(int64_t));
    train_epoch_order(seed, cursor / n_tasks, n_tasks, order);
    return order;
}

int train_ckpt_save(Dist *d, const char *dir, const TrainState *st, const TrainRunInfo *info,
                    int keep_last, Err *err) {
    HostViews h;
    host_views(st, &h, 1);
    int64_t *order = epoch_order(info->seed, st->cursor, info->n_tasks);
    char **names;
    int n;
    CkptItem *items = build_items(st, &h, order, info->n_tasks, &names, &n);
    char *model_json = hf_config_to_json(&st->model->cfg, NULL);
    CHECK(model_json);
    IoAttr attrs[] = {
        {.name = "model_config", .type = IO_ATTR_STR, .str = model_json},
        {.name = "model_dir", .type = IO_ATTR_STR, .str = info->model_dir ? info->model_dir : ""},
        {.name = "seed", .type = IO_ATTR_I64, .i64 = (int64_t)info->seed},
        {.name = "cursor", .type = IO_ATTR_I64, .i64 = st->cursor},
        {.name = "n_tasks", .type = IO_ATTR_I64, .i64 = info->n_tasks},
        {.name = "bad_steps", .type = IO_ATTR_I64, .i64 = st->bad_steps},
        {.name = "mode", .type = IO_ATTR_STR, .str = info->mode},
        {.name = "config", .type = IO_ATTR_STR, .str = info->config_text},
    };
    int rc = ckpt_write(d, dir, st->step, items, n, attrs, (int)(sizeof attrs / sizeof attrs[0]), keep_last, err);
    free_items(items, names, n);
    free(order);
    free(model_json);
    host_views_release(st, &h, 0);
    return rc;
}

int train_ckpt_load(Dist *d, const char *path, TrainState *st, const TrainRunInfo *info,
                    int *saved_world, Err *err) {
    CkptReader *r;
    if (ckpt_open(d, path, &r, err)) return -1;
    int64_t step, seed, cursor, n_tasks, world, bad;
    char *mode = NULL;
    int rc = -1;
    if (ckpt_attr_i64(r, CKPT_ATTR_STEP, &step, err) || ckpt_attr_i64(r, "seed", &seed, err) ||
        ckpt_attr_i64(r, "cursor", &cursor, err) || ckpt_attr_i64(r, "n_tasks", &n_tasks, err) ||
        ckpt_attr_i64(r, CKPT_ATTR_WORLD_SIZE, &world, err) || ckpt_attr_i64(r, "bad_steps", &bad, err) ||
        ckpt_attr_str(r, "mode", &mode, err))
        goto out;
    if ((uint64_t)seed != info->seed || n_tasks != info->n_tasks || strcmp(mode, info->mode) != 0) {
        err_set(err, "%s: checkpoint of another run (seed %lld, %lld tasks, mode %s; this run: seed %llu, %lld tasks, mode %s)",
                path, (long long)seed, (long long)n_tasks, mode, (unsigned long long)info->seed,
                (long long)info->n_tasks, info->mode);
        goto out;
    }
    HostViews h;
    host_views(st, &h, 0);
    int64_t *order = xmalloc((size_t)n_tasks * sizeof(int64_t));
    char **names;
    int n;
    CkptItem *items = build_items(st, &h, order, n_tasks, &names, &n);
    rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = ckpt_read_item(r, &items[i], err);
    free_items(items, names, n);
    free(order);
    host_views_release(st, &h, rc == 0);
    if (rc == 0) {
        st->step = (int)step;
        st->cursor = cursor;
        st->bad_steps = (int)bad;
        *saved_world = (int)world;
    }
out:
    free(mode);
    ckpt_close(r);
    return rc;
}

int train_ckpt_export(Dist *d, const char *path, const char *out_dir, Err *note, Err *err) {
    note->msg[0] = '\0';
    CkptReader *r;
    if (ckpt_open(d, path, &r, err)) return -1;
    char *json = NULL, *model_dir = NULL;
    float *host = NULL;
    ParamLayout layout = {0};
    ParamOffsets off = {0};
    int rc = -1, have_layout = 0;
    ModelConfig cfg;
    if (ckpt_attr_str(r, "model_config", &json, err) || ckpt_attr_str(r, "model_dir", &model_dir, err)) goto out;
    char what[600];
    snprintf(what, sizeof what, "%s: attribute model_config", path);
    if (hf_config_parse(json, strlen(json), what, &cfg, err)) goto out;
    param_layout_build(&layout, &off, &cfg);
    have_layout = 1;
    host = xmalloc(layout.n_floats * sizeof(float));
    rc = 0;
    for (int i = 0; i < layout.n_tensors && rc == 0; i++) {
        const ParamTensor *t = &layout.tensors[i];
        char name[PARAM_NAME_MAX + 16];
        snprintf(name, sizeof name, "params/%s", t->name);
        CkptItem item = {.name = name, .dtype = CKPT_F32, .ndim = t->ndim,
                         .shape = {t->shape[0], t->shape[1]}, .data = host + t->offset};
        rc = ckpt_read_item(r, &item, err);
    }
    if (rc == 0 && d->rank == 0) {
        rc = model_dir_save(out_dir, &cfg, host, err);
        static const char *const FILES[] = {"tokenizer.json", "tokenizer_config.json", "tokenizer.bin"};
        int copied = 0;
        for (size_t i = 0; rc == 0 && i < sizeof FILES / sizeof FILES[0]; i++) {
            char *src = path_join(model_dir, FILES[i]), *dst = path_join(out_dir, FILES[i]);
            if (*model_dir && file_exists(src)) {
                rc = copy_file_atomic(src, dst, err);
                copied++;
            }
            free(src), free(dst);
        }
        if (rc == 0 && !copied)
            err_set(note, "no tokenizer copied: the run's base model directory '%s' has none (or is gone); copy it by hand", model_dir);
    }
out:
    free(json), free(model_dir), free(host);
    if (have_layout) param_layout_free(&layout, &off);
    ckpt_close(r);
    return rc;
}
