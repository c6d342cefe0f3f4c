#include "io/llama2c.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/pread_full.h"
#include "model/params.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "llama2.c import assumes a little-endian host");

/* llama2.c's export.py version 1 and 2 files begin with this magic ("ak42"). */
#define LLAMA2C_MAGIC 0x616b3432

void llama2c_permute_rows(float *dst, const float *src, int n_heads, int head_dim, int cols) {
    const int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        const float *in = src + (size_t)h * head_dim * cols;
        float *out = dst + (size_t)h * head_dim * cols;
        for (int r = 0; r < half; r++) {
            memcpy(out + (size_t)r * cols, in + (size_t)(2 * r) * cols, (size_t)cols * sizeof *out);
            memcpy(out + (size_t)(half + r) * cols, in + (size_t)(2 * r + 1) * cols,
                   (size_t)cols * sizeof *out);
        }
    }
}

/* Multiplies into *acc and adds to *total, flagging overflow. */
static int add_block(uint64_t *total, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t ab, abc;
    if (__builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, &abc) ||
        __builtin_add_overflow(*total, abc, total))
        return -1;
    return 0;
}

typedef struct {
    int fd;
    const char *path;
    uint64_t pos; /* byte offset of the next array */
} Reader;

static int read_floats(Reader *r, float *dst, size_t n, Err *err) {
    if (pread_full(r->fd, dst, n * sizeof(float), r->pos))
        return err_set(err, "%s: read failed at byte %" PRIu64 ": %s", r->path, r->pos,
                       errno ? strerror(errno) : "unexpected end of file");
    r->pos += (uint64_t)n * sizeof(float);
    return 0;
}

/* llama2.c stores each per-layer matrix kind as one [L, rows, cols] array; scatter it
 * into the per-layer slots of the HF layout, permuting when asked. */
static int read_layers(Reader *r, float *params, const size_t *layer_off, int n_layers, int rows,
                       int cols, int permute_heads, int head_dim, float *tmp, Err *err) {
    size_t per = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    for (int l = 0; l < n_layers; l++) {
        float *dst = params + layer_off[l];
        if (!permute_heads) {
            if (read_floats(r, dst, per, err)) return -1;
        } else {
            if (read_floats(r, tmp, per, err)) return -1;
            llama2c_permute_rows(dst, tmp, permute_heads, head_dim, cols);
        }
    }
    return 0;
}

static int check_header(const char *path, const int32_t h[7], Err *err) {
    if (h[0] == LLAMA2C_MAGIC)
        return err_set(err, "%s: this is a version 1/2 llama2.c export (magic \"ak42\"); only the "
                            "legacy version 0 format is supported",
                       path);
    const char *names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; i++)
        if ((i == 5 && (h[i] == 0 || h[i] == INT32_MIN)) || (i != 5 && h[i] <= 0))
            return err_set(err, "%s: bad llama2.c header: %s=%d must be %s", path, names[i], h[i],
                           i == 5 ? "nonzero" : "positive");
    if (h[0] % h[3])
        return err_set(err, "%s: bad llama2.c header: dim=%d is not a multiple of n_heads=%d", path, h[0], h[3]);
    if (h[3] % h[4])
        return err_set(err, "%s: bad llama2.c header: n_heads=%d is not a multiple of n_kv_heads=%d", path,
                       h[3], h[4]);
    if ((h[0] / h[3]) % 2)
        return err_set(err, "%s: bad llama2.c header: head size %d must be even", path, h[0] / h[3]);
    return 0;
}

int llama2c_read(const char *path, ModelConfig *cfg, float **host_params, Err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, "%s: not a regular file", path);
    }
    uint64_t fsize = (uint64_t)st.st_size;
    int32_t h[7];
    if (fsize < sizeof h) {
        close(fd);
        return err_set(err, "%s: truncated: file is %" PRIu64 " bytes, too short for the 28-byte llama2.c header",
                       path, fsize);
    }
    if (pread_full(fd, h, sizeof h, 0)) {
        int e = errno;
        close(fd);
        return err_set(err, "%s: cannot read header: %s", path, e ? strerror(e) : "unexpected end of file");
    }
    if (check_header(path, h, err)) {
        close(fd);
        return -1;
    }
    const uint64_t d = (uint64_t)h[0], hid = (uint64_t)h[1], L = (uint64_t)h[2];
    const int tied = h[5] > 0;
    const uint64_t V = (uint64_t)(tied ? h[5] : -(int64_t)h[5]), seq = (uint64_t)h[6];
    const uint64_t hs = d / (uint64_t)h[3], kv = d * (uint64_t)h[4] / (uint64_t)h[3];
    uint64_t nf = 0;
    int ovf = add_block(&nf, V, d, 1) || add_block(&nf, L, d, 1) || add_block(&nf, L, d, d) ||
              add_block(&nf, L, kv, d) || add_block(&nf, L, kv, d) || add_block(&nf, L, d, d) ||
              add_block(&nf, L, d, 1) || add_block(&nf, L, hid, d) || add_block(&nf, L, d, hid) ||
              add_block(&nf, L, hid, d) || add_block(&nf, d, 1, 1) || add_block(&nf, seq, hs, 1) ||
              (!tied && add_block(&nf, V, d, 1)) || nf > (UINT64_MAX - 28) / 4;
    uint64_t expect = ovf ? 0 : 28 + 4 * nf;
    if (ovf || fsize != expect) {
        close(fd);
        if (ovf) return err_set(err, "%s: bad llama2.c header: sizes overflow", path);
        return err_set(err, "%s: file is %" PRIu64 " bytes, header implies %" PRIu64, path, fsize, expect);
    }

    ModelConfig c = {0};
    c.arch = ARCH_LLAMA;
    c.dim = h[0];
    c.hidden_dim = h[1];
    c.n_layers = h[2];
    c.n_heads = h[3];
    c.n_kv_heads = h[4];
    c.head_dim = (int)hs;
    c.vocab_size = (int)V;
    c.max_seq = h[6];
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.tied_embeddings = tied;
    c.bos_id = 1;
    c.n_eos = 1;
    c.eos_ids[0] = 2;
    if (model_config_validate(&c, path, err)) {
        close(fd);
        return -1;
    }

    ParamLayout lay;
    ParamOffsets off;
    param_layout_build(&lay, &off, &c);
    float *p = xmalloc(lay.n_floats * sizeof *p);
    size_t *lo = xmalloc((size_t)c.n_layers * sizeof *lo);
    float *tmp = xmalloc((size_t)d * (size_t)d * sizeof *tmp); /* largest permuted block: wq */
    Reader r = {fd, path, 28};
    const int n = c.n_layers, D = c.dim, H = c.hidden_dim, KV = (int)kv;
    int rc = read_floats(&r, p + off.embed, (size_t)V * d, err);
#define LAYERS(field, rows, cols, perm)                                                       \
    do {                                                                                      \
        if (rc) break;                                                                        \
        for (int l = 0; l < n; l++) lo[l] = off.layers[l].field;                              \
        rc = read_layers(&r, p, lo, n, rows, cols, perm, c.head_dim, tmp, err);              \
    } while (0)
    LAYERS(attn_norm, D, 0, 0);
    LAYERS(wq, D, D, c.n_heads);
    LAYERS(wk, KV, D, c.n_kv_heads);
    LAYERS(wv, KV, D, 0);
    LAYERS(wo, D, D, 0);
    LAYERS(ffn_norm, D, 0, 0);
    LAYERS(w_gate, H, D, 0);
    LAYERS(w_down, D, H, 0);
    LAYERS(w_up, H, D, 0);
#undef LAYERS
    if (!rc) rc = read_floats(&r, p + off.final_norm, (size_t)d, err);
    r.pos += 4 * seq * hs; /* freq_cis_real and freq_cis_imag: recomputed by the model */
    if (!rc && !tied) rc = read_floats(&r, p + off.lm_head, (size_t)V * d, err);
    free(tmp);
    free(lo);
    param_layout_free(&lay, &off);
    close(fd);
    if (rc) {
        free(p);
        return -1;
    }
    *cfg = c;
    *host_params = p;
    return 0;
}
