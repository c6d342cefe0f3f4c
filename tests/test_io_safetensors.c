/* Safetensors reader/writer and model directories: round trips, bf16/f16 conversion, and
 * every malformed input with its exact one-line error. */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "io/hf_config.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "model/params.h"
#include "test_io_util.h"

/* ---- writer / reader round trip ----------------------------------------------------- */

static void test_round_trip(const char *dir) {
    char *p = path_join(dir, "rt.safetensors");
    float a[6] = {1.5f, -2.25f, 0.0f, 3e-38f, INFINITY, -0.0f};
    int32_t b[4] = {7, -1, INT32_MAX, INT32_MIN};
    float s = 42.0f;
    StWriteTensor w[3] = {
        {.name = "a.weight", .dtype = ST_F32, .ndim = 2, .shape = {2, 3}, .data = a},
        {.name = "ids \"q\"", .dtype = ST_I32, .ndim = 1, .shape = {4}, .data = b},
        {.name = "scalar", .dtype = ST_F32, .ndim = 0, .data = &s},
    };
    const char *meta[] = {"format", "pt", "note", "x\"y", NULL};
    Err err = {{0}};
    int rc = st_write(p, w, 3, meta, &err);
    TEST_EXPECT(rc == 0, "st_write F32+I32", "%s", err.msg);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    TEST_EXPECT(!file_exists(tmp), "st_write leaves no temp file", "%s exists", tmp);

    StFile f;
    rc = st_open(&f, p, &err);
    TEST_EXPECT(rc == 0, "st_open reads the written file", "%s", err.msg);
    if (rc) {
        free(p);
        return;
    }
    TEST_EXPECT(f.data_start % 8 == 0, "header padded to a multiple of 8", "data_start=%llu",
                (unsigned long long)f.data_start);
    TEST_EXPECT(f.n_tensors == 3, "__metadata__ is not a tensor", "n_tensors=%d", f.n_tensors);
    const StTensor *ta = st_find(&f, "a.weight"), *tb = st_find(&f, "ids \"q\""), *ts = st_find(&f, "scalar");
    TEST_EXPECT(ta && tb && ts, "tensors found by name (escaped quotes too)", "a=%p b=%p s=%p", (void *)ta,
                (void *)tb, (void *)ts);
    if (ta && tb && ts) {
        TEST_EXPECT(ta->dtype == ST_F32 && ta->ndim == 2 && ta->shape[0] == 2 && ta->shape[1] == 3 &&
                        tb->dtype == ST_I32 && tb->ndim == 1 && tb->shape[0] == 4 && ts->ndim == 0 &&
                        ts->numel == 1 && ta->end - ta->begin == 24,
                    "dtypes, shapes and offsets round trip", "mismatch");
        float ra[6], rs;
        int32_t rb[4];
        int ok = !st_read_f32(&f, ta, ra, &err) && !st_read_i32(&f, tb, rb, &err) &&
                 !st_read_f32(&f, ts, &rs, &err);
        TEST_EXPECT(ok && !memcmp(ra, a, sizeof a) && !memcmp(rb, b, sizeof b) && rs == s,
                    "F32 and I32 data round trip bit-exactly", "%s", ok ? "data differs" : err.msg);
        float fb[4];
        EXPECT_ERR("I32 tensor read as float names its dtype", st_read_f32(&f, tb, fb, &ERR),
                   "%s: tensor 'ids \"q\"' has dtype I32, expected F32, BF16 or F16", p);
        int32_t ib[6];
        EXPECT_ERR("F32 tensor read as int names its dtype", st_read_i32(&f, ta, ib, &ERR),
                   "%s: tensor 'a.weight' has dtype F32, expected I32 or I64", p);
    }
    st_close(&f);
    StWriteTensor dup[2] = {w[0], w[0]};
    EXPECT_ERR("st_write refuses duplicate names", st_write(p, dup, 2, NULL, &ERR),
               "%s: tensor 'a.weight' given twice", p);
    free(p);
}

/* ---- bf16 / f16 conversion ---------------------------------------------------------- */

static void test_conversion(const char *dir) {
    char *p = path_join(dir, "half.safetensors");
    /* bf16: 1, -2, -0, inf, -inf, nan, smallest subnormal 2^-133, 3.140625 */
    const uint16_t bf[8] = {0x3f80, 0xc000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x4049};
    /* f16: 1, -2, -0, inf, -inf, nan, 2^-24, 1023*2^-24, 2^-14, 65504, 0x3555, -2^-24 */
    const uint16_t hf[12] = {0x3c00, 0xc000, 0x8000, 0x7c00, 0xfc00, 0x7e00,
                             0x0001, 0x03ff, 0x0400, 0x7bff, 0x3555, 0x8001};
    const int64_t i64[3] = {5, -7, 2147483647};
    unsigned char data[16 + 24 + 24];
    memcpy(data, bf, 16);
    memcpy(data + 16, hf, 24);
    memcpy(data + 40, i64, 24);
    write_st_raw(p,
                 "{\"b\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[0,16]},"
                 "\"h\":{\"dtype\":\"F16\",\"shape\":[3,4],\"data_offsets\":[16,40]},"
                 "\"l\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[40,64]}}",
                 -1, data, sizeof data);
    StFile f;
    Err err = {{0}};
    if (st_open(&f, p, &err)) {
        TEST_EXPECT(0, "open bf16/f16 file", "%s", err.msg);
        free(p);
        return;
    }
    float b[8], h[12];
    int rc = st_read_f32(&f, st_find(&f, "b"), b, &err) || st_read_f32(&f, st_find(&f, "h"), h, &err);
    TEST_EXPECT(!rc, "read bf16 and f16 tensors", "%s", err.msg);
    TEST_EXPECT(b[0] == 1.0f && b[1] == -2.0f && b[2] == 0.0f && signbit(b[2]) && isinf(b[3]) && b[3] > 0 &&
                    isinf(b[4]) && b[4] < 0 && isnan(b[5]) && b[6] == 0x1p-133f && b[7] == 3.140625f,
                "bf16 -> f32 (incl. -0, inf, nan, subnormal)", "got %g %g %g %g %g %g %g %g", b[0], b[1], b[2],
                b[3], b[4], b[5], b[6], b[7]);
    TEST_EXPECT(h[0] == 1.0f && h[1] == -2.0f && h[2] == 0.0f && signbit(h[2]) && isinf(h[3]) && h[3] > 0 &&
                    isinf(h[4]) && h[4] < 0 && isnan(h[5]) && h[6] == 0x1p-24f && h[7] == 1023 * 0x1p-24f &&
                    h[8] == 0x1p-14f && h[9] == 65504.0f && h[10] == 0.333251953125f && h[11] == -0x1p-24f,
                "f16 -> f32 (incl. -0, inf, nan, subnormals, max)", "got %a %a %a %a %a %a", h[6], h[7], h[8],
                h[9], h[10], h[11]);
    int32_t l[3];
    rc = st_read_i32(&f, st_find(&f, "l"), l, &err);
    TEST_EXPECT(!rc && l[0] == 5 && l[1] == -7 && l[2] == 2147483647, "I64 -> int32", "%s", err.msg);
    EXPECT_ERR("I64 tensor read as float names its dtype", st_read_f32(&f, st_find(&f, "l"), h, &ERR),
               "%s: tensor 'l' has dtype I64, expected F32, BF16 or F16", p);
    st_close(&f);
    free(p);
}

/* ---- malformed files ---------------------------------------------------------------- */

static void test_malformed(const char *dir) {
    char *p = path_join(dir, "bad.safetensors");
    StFile f;
    static const char T8[] = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    write_bytes(p, "\x10\0\0\0\0", 5);
    EXPECT_ERR("truncated: shorter than the header length", st_open(&f, p, &ERR),
               "%s: truncated: file is 5 bytes, too short for the 8-byte header length", p);
    write_bytes(p, "", 0);
    EXPECT_ERR("truncated: empty file", st_open(&f, p, &ERR),
               "%s: truncated: file is 0 bytes, too short for the 8-byte header length", p);

    write_st_raw(p, T8, 1000, NULL, 8);
    EXPECT_ERR("header length past end of file", st_open(&f, p, &ERR),
               "%s: header length 1000 runs past the end of the file (%zu bytes)", p, 8 + strlen(T8) + 8);
    write_st_raw(p, T8, (int64_t)0x7fffffffffffffffLL, NULL, 8);
    EXPECT_ERR("huge header length", st_open(&f, p, &ERR),
               "%s: header length 9223372036854775807 runs past the end of the file (%zu bytes)", p,
               8 + strlen(T8) + 8);
    {
        /* a sparse file big enough to hold an over-limit header */
        write_st_raw(p, "{}", 100000001, NULL, 0);
        int ok = truncate(p, 100000016) == 0;
        if (ok)
            EXPECT_ERR("header length over the 100 MB limit", st_open(&f, p, &ERR),
                       "%s: header length 100000001 exceeds the limit of 100000000 bytes", p);
        else
            TEST_EXPECT(0, "header length over the 100 MB limit", "cannot make sparse file");
    }

    /* '{"w" 1}': cJSON stops where ':' was expected, byte 5 of the header = 13 of the file */
    write_st_raw(p, "{\"w\" 1}", -1, NULL, 0);
    EXPECT_ERR("bad JSON names the byte", st_open(&f, p, &ERR),
               "%s: header is not valid JSON (error at byte 13 of the file)", p);
    /* input that ends early: cJSON points at its last byte (19 of the header) */
    write_st_raw(p, "{\"w\":{\"dtype\":\"F32\",", -1, NULL, 0);
    EXPECT_ERR("unterminated JSON", st_open(&f, p, &ERR),
               "%s: header is not valid JSON (error at byte 27 of the file)", p);
    write_st_raw(p, "{}  x   ", -1, NULL, 0);
    EXPECT_ERR("trailing bytes after the header JSON", st_open(&f, p, &ERR),
               "%s: header has trailing bytes after the JSON (at byte 12 of the file)", p);
    write_st_raw(p, "[1,2]   ", -1, NULL, 0);
    EXPECT_ERR("header not an object", st_open(&f, p, &ERR), "%s: header is not a JSON object", p);
    write_st_raw(p, "{\"w\":3}", -1, NULL, 0);
    EXPECT_ERR("entry not an object", st_open(&f, p, &ERR), "%s: tensor 'w': header entry is not an object", p);

    write_st_raw(p, "{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, NULL, 8);
    EXPECT_ERR("unknown dtype", st_open(&f, p, &ERR), "%s: tensor 'w' has unknown dtype 'Q4'", p);
    write_st_raw(p, "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", -1, NULL, 8);
    EXPECT_ERR("missing dtype", st_open(&f, p, &ERR), "%s: tensor 'w': field 'dtype' missing or not a string", p);
    write_st_raw(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}}", -1, NULL, 8);
    EXPECT_ERR("negative dimension", st_open(&f, p, &ERR),
               "%s: tensor 'w': shape must be a list of non-negative integers", p);
    write_st_raw(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", -1, NULL, 8);
    EXPECT_ERR("fractional dimension", st_open(&f, p, &ERR),
               "%s: tensor 'w': shape must be a list of non-negative integers", p);
    write_st_raw(p, "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", -1, NULL, 8);
    EXPECT_ERR("missing shape", st_open(&f, p, &ERR), "%s: tensor 'w': field 'shape' missing or not a list", p);

    write_st_raw(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}", -1, NULL, 16);
    EXPECT_ERR("offsets out of range", st_open(&f, p, &ERR),
               "%s: tensor 'w' data_offsets [0, 32] run past the end of the data section (16 bytes): "
               "truncated file or bad offsets",
               p);
    write_st_raw(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", -1, NULL, 16);
    EXPECT_ERR("begin after end", st_open(&f, p, &ERR),
               "%s: tensor 'w': data_offsets must be [begin, end] with 0 <= begin <= end", p);
    write_st_raw(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", -1, NULL, 16);
    EXPECT_ERR("data_offsets with one number", st_open(&f, p, &ERR),
               "%s: tensor 'w': data_offsets must be [begin, end] with 0 <= begin <= end", p);
    write_st_raw(p,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                 -1, NULL, 24);
    EXPECT_ERR("overlapping offsets", st_open(&f, p, &ERR),
               "%s: tensors 'a' and 'b' overlap (data_offsets [0, 16] and [8, 24])", p);
    write_st_raw(p,
                 "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                 -1, NULL, 16);
    EXPECT_ERR("a tensor nested inside another", st_open(&f, p, &ERR),
               "%s: tensors 'a' and 'b' overlap (data_offsets [0, 16] and [4, 8])", p);
    write_st_raw(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", -1, NULL, 24);
    EXPECT_ERR("shape x dtype != byte length", st_open(&f, p, &ERR),
               "%s: tensor 'w' has shape [2,3] and dtype F32 (24 bytes) but its data_offsets span 20 bytes", p);
    write_st_raw(p, "{\"w\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,16]}}", -1, NULL, 16);
    EXPECT_ERR("shape x dtype != byte length (bf16)", st_open(&f, p, &ERR),
               "%s: tensor 'w' has shape [4] and dtype BF16 (8 bytes) but its data_offsets span 16 bytes", p);
    write_st_raw(p,
                 "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,16]}}", -1,
                 NULL, 16);
    EXPECT_ERR("shape product overflow", st_open(&f, p, &ERR),
               "%s: tensor 'w' has shape [4294967296,4294967296,4], larger than the data section", p);
    write_st_raw(p,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                 -1, NULL, 8);
    EXPECT_ERR("duplicate tensor name", st_open(&f, p, &ERR), "%s: tensor 'a' appears twice in the header", p);

    /* A good file cut short: data shorter than the last offset. */
    float v[10] = {0};
    StWriteTensor w[2] = {{.name = "x", .dtype = ST_F32, .ndim = 1, .shape = {2}, .data = v},
                          {.name = "y", .dtype = ST_F32, .ndim = 2, .shape = {2, 4}, .data = v}};
    Err err;
    TEST_EXPECT(st_write(p, w, 2, NULL, &err) == 0, "write file to truncate", "%s", err.msg);
    struct stat st;
    stat(p, &st);
    TEST_EXPECT(truncate(p, st.st_size - 4) == 0, "truncate file", "truncate failed");
    EXPECT_ERR("truncated file: data shorter than the last offset", st_open(&f, p, &ERR),
               "%s: tensor 'y' data_offsets [8, 40] run past the end of the data section (36 bytes): "
               "truncated file or bad offsets",
               p);

    char *missing = path_join(dir, "nope.safetensors");
    EXPECT_ERR("missing file", st_open(&f, missing, &ERR), "%s: cannot open: No such file or directory", missing);
    free(missing);
    free(p);
}

/* ---- model directories -------------------------------------------------------------- */

static ModelConfig tiny_cfg(int arch) {
    ModelConfig c = {0};
    c.arch = arch;
    c.dim = 8;
    c.hidden_dim = 16;
    c.n_layers = 2;
    c.n_heads = 2;
    c.n_kv_heads = 1;
    c.head_dim = 4;
    c.vocab_size = 16;
    c.max_seq = 32;
    c.norm_eps = 1e-6f;
    c.rope_theta = 10000.0f;
    c.tied_embeddings = arch == ARCH_QWEN2;
    c.qkv_bias = arch == ARCH_QWEN2;
    c.bos_id = 1;
    c.n_eos = 1;
    c.eos_ids[0] = 2;
    return c;
}

/* Values k/64 with small k are exact in bf16, so a bf16 copy must load bit-exactly. */
static float *tiny_params(const ModelConfig *c, size_t *n) {
    ParamLayout L;
    ParamOffsets o;
    param_layout_build(&L, &o, c);
    *n = L.n_floats;
    float *p = xmalloc(L.n_floats * sizeof *p);
    for (size_t i = 0; i < L.n_floats; i++) p[i] = (float)((int)((i * 7919u) % 255u) - 127) / 64.0f;
    param_layout_free(&L, &o);
    return p;
}

/* Writes the layout's tensors [from, to) to path (F32), skipping `skip`, plus an extra
 * [2] tensor named `extra` when given. */
static void write_layout(const char *path, const ModelConfig *c, const float *p, int from, int to,
                         const char *skip, const char *extra) {
    ParamLayout L;
    ParamOffsets o;
    param_layout_build(&L, &o, c);
    if (to < 0) to = L.n_tensors;
    StWriteTensor *w = xcalloc((size_t)L.n_tensors + 1, sizeof *w);
    int n = 0;
    for (int i = from; i < to; i++) {
        const ParamTensor *t = &L.tensors[i];
        if (skip && !strcmp(skip, t->name)) continue;
        w[n] = (StWriteTensor){.name = t->name, .dtype = ST_F32, .ndim = t->ndim, .data = p + t->offset};
        w[n].shape[0] = t->shape[0];
        w[n].shape[1] = t->shape[1];
        n++;
    }
    if (extra)
        w[n++] = (StWriteTensor){.name = extra, .dtype = ST_F32, .ndim = 2, .shape = {2, 8}, .data = p};
    Err err;
    if (st_write(path, w, n, NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    free(w);
    param_layout_free(&L, &o);
}

/* The same tensors as BF16, with a hand-built header. */
static void write_layout_bf16(const char *path, const ModelConfig *c, const float *p) {
    ParamLayout L;
    ParamOffsets o;
    param_layout_build(&L, &o, c);
    size_t cap = 64 + (size_t)L.n_tensors * 160, k = 0;
    char *h = xmalloc(cap);
    uint16_t *data = xmalloc(L.n_floats * 2);
    k += (size_t)snprintf(h + k, cap - k, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < L.n_tensors; i++) {
        const ParamTensor *t = &L.tensors[i];
        if (t->ndim == 2)
            k += (size_t)snprintf(h + k, cap - k, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%d,%d],", t->name,
                                  t->shape[0], t->shape[1]);
        else
            k += (size_t)snprintf(h + k, cap - k, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%d],", t->name,
                                  t->shape[0]);
        k += (size_t)snprintf(h + k, cap - k, "\"data_offsets\":[%zu,%zu]}", 2 * t->offset,
                              2 * (t->offset + t->numel));
    }
    snprintf(h + k, cap - k, "}");
    for (size_t i = 0; i < L.n_floats; i++) {
        uint32_t u;
        memcpy(&u, &p[i], 4);
        data[i] = (uint16_t)(u >> 16);
    }
    write_st_raw(path, h, -1, data, L.n_floats * 2);
    free(h);
    free(data);
    param_layout_free(&L, &o);
}

static void write_cfg(const char *dir, const ModelConfig *c) {
    char *p = path_join(dir, "config.json");
    Err err;
    if (hf_config_write(p, c, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    free(p);
}

static int load_equals(const char *name, const char *dir, const ModelConfig *c, const float *want, size_t n) {
    ModelConfig got;
    float *p = NULL;
    Err err = {{0}};
    int rc = model_dir_load(dir, &got, &p, &err);
    int ok = rc == 0 && !memcmp(&got, c, sizeof got) && !memcmp(p, want, n * sizeof *p);
    TEST_EXPECT(ok, name, "%s", rc ? err.msg : "config or parameters differ");
    free(p);
    return ok;
}

static void test_model_dirs(const char *root) {
    Err err = {{0}};
    for (int arch = 0; arch < 2; arch++) {
        ModelConfig c = tiny_cfg(arch);
        size_t n;
        float *p = tiny_params(&c, &n);
        char *d = path_join(root, arch ? "qwen/sub" : "llama");
        int rc = model_dir_save(d, &c, p, &err);
        TEST_EXPECT(rc == 0, arch ? "model_dir_save qwen2 (creates nested dir)" : "model_dir_save llama", "%s",
                    err.msg);
        load_equals(arch ? "qwen2 model dir round trip (biases, tied)" : "llama model dir round trip (untied)", d,
                    &c, p, n);
        free(d);
        free(p);
    }

    ModelConfig c = tiny_cfg(ARCH_LLAMA);
    c.tied_embeddings = 1;
    size_t n;
    float *p = tiny_params(&c, &n);
    char *d = path_join(root, "m");
    char *st = path_join(d, "model.safetensors");
    char *index = path_join(d, "model.safetensors.index.json");
    make_dirs(d, &err);
    write_cfg(d, &c);

    write_layout_bf16(st, &c, p);
    load_equals("bf16 model dir loads exactly", d, &c, p, n);

    write_layout(st, &c, p, 0, -1, NULL, "lm_head.weight");
    load_equals("tied model: lm_head.weight in the file is ignored", d, &c, p, n);
    write_layout(st, &c, p, 0, -1, NULL, "model.layers.0.self_attn.rotary_emb.inv_freq");
    load_equals("rotary_emb.inv_freq is ignored", d, &c, p, n);

    ModelConfig got;
    float *q = NULL;
    write_layout(st, &c, p, 0, -1, "model.norm.weight", NULL);
    EXPECT_ERR("missing tensor", model_dir_load(d, &got, &q, &ERR), "%s: missing tensor 'model.norm.weight'", st);
    write_layout(st, &c, p, 0, -1, NULL, "model.layers.0.self_attn.o_proj.bias");
    EXPECT_ERR("unexpected tensor", model_dir_load(d, &got, &q, &ERR),
               "%s: unexpected tensor 'model.layers.0.self_attn.o_proj.bias' (not a parameter of the model "
               "config.json describes)",
               st);

    /* config.json that does not match the tensors */
    write_layout(st, &c, p, 0, -1, NULL, NULL);
    ModelConfig wrong = c;
    wrong.vocab_size = 20;
    write_cfg(d, &wrong);
    EXPECT_ERR("config with the wrong vocab", model_dir_load(d, &got, &q, &ERR),
               "%s: tensor 'model.embed_tokens.weight' has shape [16,8], config expects [20,8]", st);
    wrong = c;
    wrong.n_kv_heads = 2;
    write_cfg(d, &wrong);
    EXPECT_ERR("config with the wrong kv heads", model_dir_load(d, &got, &q, &ERR),
               "%s: tensor 'model.layers.0.self_attn.k_proj.weight' has shape [4,8], config expects [8,8]", st);
    wrong = c;
    wrong.n_layers = 3;
    write_cfg(d, &wrong);
    EXPECT_ERR("config with more layers than the file", model_dir_load(d, &got, &q, &ERR),
               "%s: missing tensor 'model.layers.2.input_layernorm.weight'", st);
    wrong = c;
    wrong.vocab_size = 1 << 30;
    wrong.dim = 1 << 14;
    wrong.n_heads = 1 << 11;
    wrong.n_kv_heads = 1 << 10;
    write_cfg(d, &wrong);
    EXPECT_ERR("absurd config is a shape error, not an allocation failure", model_dir_load(d, &got, &q, &ERR),
               "%s: tensor 'model.embed_tokens.weight' has shape [16,8], config expects [1073741824,16384]", st);
    wrong = c;
    wrong.tied_embeddings = 0;
    write_cfg(d, &wrong);
    EXPECT_ERR("untied config, tied file", model_dir_load(d, &got, &q, &ERR), "%s: missing tensor 'lm_head.weight'",
               st);
    wrong = c;
    wrong.arch = ARCH_QWEN2;
    wrong.qkv_bias = 1;
    write_cfg(d, &wrong);
    EXPECT_ERR("qwen2 config, llama file (no biases)", model_dir_load(d, &got, &q, &ERR),
               "%s: missing tensor 'model.layers.0.self_attn.q_proj.bias'", st);
    write_cfg(d, &c);

    /* sharded */
    remove(st);
    EXPECT_ERR("no weights at all", model_dir_load(d, &got, &q, &ERR),
               "%s: no model.safetensors or model.safetensors.index.json", d);
    ParamLayout L;
    ParamOffsets o;
    param_layout_build(&L, &o, &c);
    const int half = L.n_tensors / 2;
    char *s1 = path_join(d, "model-00001-of-00002.safetensors");
    char *s2 = path_join(d, "model-00002-of-00002.safetensors");
    write_layout(s1, &c, p, 0, half, NULL, NULL);
    write_layout(s2, &c, p, half, -1, NULL, NULL);
    size_t cap = 256 + (size_t)L.n_tensors * 160, k = 0;
    char *idx = xmalloc(cap);
    k += (size_t)snprintf(idx, cap, "{\"metadata\":{\"total_size\":%zu},\"weight_map\":{", 4 * n);
    for (int i = 0; i < L.n_tensors; i++)
        k += (size_t)snprintf(idx + k, cap - k, "%s\"%s\":\"model-0000%d-of-00002.safetensors\"", i ? "," : "",
                              L.tensors[i].name, i < half ? 1 : 2);
    snprintf(idx + k, cap - k, "}}");
    write_text(index, idx);
    load_equals("sharded model dir loads", d, &c, p, n);

    /* the index names a third shard for the last tensor */
    char *bad = xstrdup(idx);
    char *last = strstr(bad, "\"model.norm.weight\":\"model-00002");
    memcpy(last + strlen("\"model.norm.weight\":\"model-0000"), "3-of-00003", 10);
    write_text(index, bad);
    EXPECT_ERR("sharded index naming a missing shard", model_dir_load(d, &got, &q, &ERR),
               "%s: shard 'model-00003-of-00003.safetensors' named in weight_map does not exist", index);
    /* the index puts the last tensor in the first shard */
    memcpy(last + strlen("\"model.norm.weight\":\"model-0000"), "1-of-00002", 10);
    write_text(index, bad);
    EXPECT_ERR("index maps a tensor to the wrong shard", model_dir_load(d, &got, &q, &ERR),
               "%s: weight_map puts tensor 'model.norm.weight' in 'model-00001-of-00002.safetensors', which has no "
               "such tensor",
               index);
    write_text(index, idx);
    write_layout(s2, &c, p, half - 1, -1, NULL, NULL);
    EXPECT_ERR("tensor in two shards", model_dir_load(d, &got, &q, &ERR),
               "%s: tensor '%s' appears again (already read from %s)", s2, L.tensors[half - 1].name, s1);
    write_text(index, "{\"weight_map\":{\"model.norm.weight\":\"../x.safetensors\"}}");
    EXPECT_ERR("shard outside the directory", model_dir_load(d, &got, &q, &ERR),
               "%s: weight_map entry 'model.norm.weight' must be a shard file name in the same directory", index);
    write_text(index, "{\"weight_map\":[1]}");
    EXPECT_ERR("index without a weight_map object", model_dir_load(d, &got, &q, &ERR),
               "%s: field 'weight_map' missing or not an object", index);
    write_text(index, "{\"weight_map\":{");
    EXPECT_ERR("index with bad JSON", model_dir_load(d, &got, &q, &ERR), "%s: bad JSON at byte 14", index);

    param_layout_free(&L, &o);
    free(bad);
    free(idx);
    free(s1);
    free(s2);
    free(index);
    free(st);
    free(d);
    free(p);
}

int main(void) {
    char dir[256];
    make_tmpdir(dir, sizeof dir);
    test_round_trip(dir);
    test_conversion(dir);
    test_malformed(dir);
    test_model_dirs(dir);
    rm_rf(dir);
    return test_finish();
}
