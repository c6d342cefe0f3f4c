/* Safetensors reader/writer and model directories: round trips, bf16/f16 conversion, and
 * every malformed input with its exact one-line error. */
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "io/hf_config.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "model/params.h"
#include "test_io_util.h"

static char TMP[256];

static char *tmp_path(const char *name) { return path_join(TMP, name); }

/* ---- writer / reader round trip ----------------------------------------------------- */

static void test_round_trip(void) {
    char *p = tmp_path("rt.safetensors");
    float a[6] = {1.5f, -2.25f, 0.0f, 3e-38f, INFINITY, -0.0f};
    int32_t b[4] = {7, -1, INT32_MAX, INT32_MIN};
    float s = 42.0f;
    StWriteTensor w[3] = {
        {.name = "a.weight", .dtype = ST_F32, .ndim = 2, .shape = {2, 3}, .data = a},
        {.name = "ids \"quoted\"", .dtype = ST_I32, .ndim = 1, .shape = {4}, .data = b},
        {.name = "scalar", .dtype = ST_F32, .ndim = 0, .data = &s},
    };
    const char *meta[] = {"format", "pt", "note", "x\"y", NULL};
    Err err = {{0}};
    int rc = st_write(p, w, 3, meta, &err);
    TEST_EXPECT(rc == 0, "st_write F32+I32", "%s", err.msg);
    char *tmp = xmalloc(strlen(p) + 8);
    sprintf(tmp, "%s.tmp", p);
    TEST_EXPECT(!file_exists(tmp), "st_write leaves no temp file", "%s exists", tmp);
    free(tmp);

    StFile f;
    rc = st_open(&f, p, &err);
    TEST_EXPECT(rc == 0, "st_open written file", "%s", err.msg);
    if (rc) return;
    TEST_EXPECT(f.data_start % 8 == 0, "header padded to a multiple of 8", "data_start=%llu",
                (unsigned long long)f.data_start);
    TEST_EXPECT(f.n_tensors == 3, "__metadata__ is not a tensor", "n_tensors=%d", f.n_tensors);
    const StTensor *ta = st_find(&f, "a.weight"), *tb = st_find(&f, "ids \"quoted\""),
                   *ts = st_find(&f, "scalar");
    TEST_EXPECT(ta && tb && ts, "all tensors found by name", "a=%p b=%p s=%p", (void *)ta, (void *)tb,
                (void *)ts);
    if (ta && tb && ts) {
        TEST_EXPECT(ta->dtype == ST_F32 && ta->ndim == 2 && ta->shape[0] == 2 && ta->shape[1] == 3 &&
                        tb->dtype == ST_I32 && tb->ndim == 1 && tb->shape[0] == 4 && ts->ndim == 0 &&
                        ts->numel == 1,
                    "dtypes and shapes round trip", "mismatch");
        float ra[6], rs;
        int32_t rb[4];
        int ok = !st_read_f32(&f, ta, ra, &err) && !st_read_i32(&f, tb, rb, &err) &&
                 !st_read_f32(&f, ts, &rs, &err);
        TEST_EXPECT(ok && !memcmp(ra, a, sizeof a) && !memcmp(rb, b, sizeof b) && rs == s,
                    "F32 and I32 data round trip bit-exactly", "%s", ok ? "data differs" : err.msg);
        expect_err("I32 tensor read as float is refused", st_read_f32(&f, tb, ra, &err), &err,
                   (snprintf(err.msg, 0, "%s", ""), ({
                        static char e[512];
                        snprintf(e, sizeof e, "%s: tensor 'ids \"quoted\"' has dtype I32, expected F32, BF16 or F16", p);
                        e;
                    })));
    }
    st_close(&f);
    free(p);
}
