/* twin_case.h — what the C tests against the PyTorch twins share: run a twin script for
 * one case into a temp directory, load the model directory it wrote, open its reference
 * safetensors, and read reference tensors. Each step reports one ok/not-ok line.
 * Must not: compare anything (each test decides what to check).
 */
#ifndef SOFTCOT_TEST_TWIN_CASE_H
#define SOFTCOT_TEST_TWIN_CASE_H

#include <stdio.h>
#include <stdlib.h>

#include "core/fileio.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test.h"

/* NULL unless the tensor exists with exactly `expect` elements. */
static inline float *twin_read_f32(StFile *f, const char *name, size_t expect) {
    const StTensor *t = st_find(f, name);
    if (!t || t->numel != expect) return NULL;
    float *buf = xmalloc((expect ? expect : 1) * sizeof(float));
    Err err;
    if (st_read_f32(f, t, buf, &err)) {
        free(buf);
        return NULL;
    }
    return buf;
}

static inline int *twin_read_i32(StFile *f, const char *name, size_t *n) {
    const StTensor *t = st_find(f, name);
    if (!t) return NULL;
    int *buf = xmalloc((t->numel ? t->numel : 1) * sizeof(int));
    Err err;
    if (st_read_i32(f, t, buf, &err)) {
        free(buf);
        return NULL;
    }
    *n = t->numel;
    return buf;
}

/* Runs `/usr/bin/python3 SCRIPT --case NAME --out TMP/NAME EXTRA`, loads the model into *m
 * and opens TMP/NAME/REF_FILE into *f. Returns 1 when both are ready (the caller then
 * frees them with model_free and st_close), 0 after reporting what failed. */
static inline int twin_case_open(const char *script, const char *name, const char *tmp,
                                 const char *ref_file, const char *extra, Model *m, StFile *f) {
    char dir[256], cmd[1024], label[256];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s --case %s --out %s %s > %s.log 2>&1", script, name, dir,
             extra ? extra : "", dir);
    int rc = system(cmd);
    snprintf(label, sizeof label, "%s: twin %s ran (incl. its own self-checks)", name, script);
    TEST_EXPECT(rc == 0, label, "'%s' exited with %d (see %s.log)", cmd, rc, dir);
    if (rc) return 0;
    Err err;
    ModelConfig cfg;
    float *host = NULL;
    int loaded = model_dir_load(dir, &cfg, &host, &err) == 0;
    snprintf(label, sizeof label, "%s: model directory loads", name);
    TEST_EXPECT(loaded, label, "%s", err.msg);
    if (!loaded) return 0;
    model_init(m, &cfg, host);
    free(host);
    char *ref_path = path_join(dir, ref_file);
    int opened = st_open(f, ref_path, &err) == 0;
    free(ref_path);
    snprintf(label, sizeof label, "%s: reference %s opens", name, ref_file);
    TEST_EXPECT(opened, label, "%s", err.msg);
    if (!opened) model_free(m);
    return opened;
}

/* main() of a twin test: runs every case in a fresh temp directory (named from prefix),
 * removes it when every check passed and keeps it for inspection otherwise. */
static inline int twin_run_cases(const char *prefix, const char *const *cases, int n_cases,
                                 void (*run_case)(const char *name, const char *tmp)) {
    char tmp[256];
    snprintf(tmp, sizeof tmp, "/tmp/%s_XXXXXX", prefix);
    if (!mkdtemp(tmp)) {
        printf("not ok - mkdtemp failed\n");
        return 1;
    }
    for (int i = 0; i < n_cases; i++) run_case(cases[i], tmp);
    int rc = test_finish();
    if (rc == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        if (system(cmd) != 0) printf("# could not remove %s\n", tmp);
    } else {
        printf("# twin outputs kept in %s\n", tmp);
    }
    return rc;
}

#endif
