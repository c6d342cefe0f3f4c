/* llama2.c import: a hand-made .bin whose every float is its own file index (so each
 * parameter's source position, including the q/k row permutation, is checked), bad
 * headers and sizes, and the real stories260K checkpoint: config, RoPE equivalence of the
 * permuted rows, and a bit-exact model-dir round trip. */
#include <math.h>
#include <stdint.h>

#include "core/fileio.h"
#include "io/llama2c.h"
#include "io/model_dir.h"
#include "model/params.h"
#include "test_io_util.h"

typedef struct {
    int dim, hidden, layers, heads, kv_heads, vocab, seq;
} Hdr;

/* Float offsets (after the 28-byte header) of each llama2.c array. */
typedef struct {
    size_t emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq, wcls, total;
} Offs;

static Offs offsets_of(Hdr h) {
    size_t d = (size_t)h.dim, L = (size_t)h.layers, hs = d / (size_t)h.heads, kv = hs * (size_t)h.kv_heads,
           V = (size_t)abs(h.vocab), f = (size_t)h.hidden;
    Offs o;
    o.emb = 0;
    o.rms_att = o.emb + V * d;
    o.wq = o.rms_att + L * d;
    o.wk = o.wq + L * d * d;
    o.wv = o.wk + L * kv * d;
    o.wo = o.wv + L * kv * d;
    o.rms_ffn = o.wo + L * d * d;
    o.w1 = o.rms_ffn + L * d;
    o.w2 = o.w1 + L * f * d;
    o.w3 = o.w2 + L * d * f;
    o.rms_final = o.w3 + L * f * d;
    o.freq = o.rms_final + d;
    o.wcls = o.freq + (size_t)h.seq * hs;
    o.total = o.wcls + (h.vocab < 0 ? V * d : 0);
    return o;
}

/* Writes a .bin whose float k holds the value k; extra_bytes may be negative. */
static void write_bin(const char *path, Hdr h, long extra_bytes) {
    Offs o = offsets_of(h);
    size_t n = o.total;
    size_t bytes = 28 + 4 * n;
    unsigned char *b = calloc(bytes + 64, 1);
    memcpy(b, &h, 28);
    for (size_t k = 0; k < n; k++) {
        float v = (float)k;
        memcpy(b + 28 + 4 * k, &v, 4);
    }
    write_bytes(path, b, (size_t)((long)bytes + extra_bytes));
    free(b);
}

/* Source row, in llama2.c order, of HF row i of a per-head projection. */
static size_t src_row(size_t i, size_t hs) {
    size_t head = i / hs, r = i % hs;
    return head * hs + (r < hs / 2 ? 2 * r : 2 * (r - hs / 2) + 1);
}

static void check_tiny(const char *dir, int tied) {
    Hdr h = {8, 12, 2, 2, 1, tied ? 6 : -6, 3};
    char *p = path_join(dir, "tiny.bin");
    write_bin(p, h, 0);
    ModelConfig c;
    float *w = NULL;
    Err err = {{0}};
    int rc = llama2c_read(p, &c, &w, &err);
    const char *tag = tied ? "tied" : "untied";
    char name[128];
    snprintf(name, sizeof name, "read tiny %s .bin", tag);
    TEST_EXPECT(rc == 0, name, "%s", err.msg);
    if (rc) {
        free(p);
        return;
    }
    snprintf(name, sizeof name, "tiny %s config", tag);
    TEST_EXPECT(c.arch == ARCH_LLAMA && c.dim == 8 && c.hidden_dim == 12 && c.n_layers == 2 && c.n_heads == 2 &&
                    c.n_kv_heads == 1 && c.head_dim == 4 && c.vocab_size == 6 && c.max_seq == 3 &&
                    c.tied_embeddings == tied && c.norm_eps == 1e-5f && c.rope_theta == 10000.0f && c.bos_id == 1 &&
                    c.n_eos == 1 && c.eos_ids[0] == 2 && c.qkv_bias == 0 && c.rope_llama3 == 0,
                name, "dim=%d tied=%d V=%d", c.dim, c.tied_embeddings, c.vocab_size);

    Offs o = offsets_of(h);
    ParamLayout L;
    ParamOffsets po;
    param_layout_build(&L, &po, &c);
    const size_t d = 8, f = 12, hs = 4, kv = 4;
    size_t bad = 0, checked = 0;
    char first_bad[320] = "";
    for (int t = 0; t < L.n_tensors; t++) {
        const ParamTensor *pt = &L.tensors[t];
        int l = -1;
        sscanf(pt->name, "model.layers.%d.", &l);
        for (size_t i = 0; i < (size_t)pt->shape[0]; i++) {
            size_t cols = pt->ndim == 2 ? (size_t)pt->shape[1] : 1;
            for (size_t j = 0; j < cols; j++) {
                size_t src;
                const char *n = pt->name;
                if (!strcmp(n, "model.embed_tokens.weight")) src = o.emb + i * d + j;
                else if (!strcmp(n, "lm_head.weight")) src = o.wcls + i * d + j;
                else if (!strcmp(n, "model.norm.weight")) src = o.rms_final + i;
                else if (strstr(n, "input_layernorm")) src = o.rms_att + (size_t)l * d + i;
                else if (strstr(n, "post_attention_layernorm")) src = o.rms_ffn + (size_t)l * d + i;
                else if (strstr(n, "q_proj")) src = o.wq + (size_t)l * d * d + src_row(i, hs) * d + j;
                else if (strstr(n, "k_proj")) src = o.wk + (size_t)l * kv * d + src_row(i, hs) * d + j;
                else if (strstr(n, "v_proj")) src = o.wv + (size_t)l * kv * d + i * d + j;
                else if (strstr(n, "o_proj")) src = o.wo + (size_t)l * d * d + i * d + j;
                else if (strstr(n, "gate_proj")) src = o.w1 + (size_t)l * f * d + i * d + j;
                else if (strstr(n, "down_proj")) src = o.w2 + (size_t)l * d * f + i * f + j;
                else if (strstr(n, "up_proj")) src = o.w3 + (size_t)l * f * d + i * d + j;
                else src = (size_t)-1;
                float got = w[pt->offset + i * cols + j];
                checked++;
                if (got != (float)src) {
                    if (!bad++)
                        snprintf(first_bad, sizeof first_bad, "%s[%zu,%zu] = %g, expected file float %zu", n, i,
                                 j, got, src);
                }
            }
        }
    }
    snprintf(name, sizeof name, "tiny %s: every parameter comes from its llama2.c position (q/k permuted)", tag);
    TEST_EXPECT(bad == 0 && checked == L.n_floats, name, "%zu of %zu wrong; first: %s", bad, checked, first_bad);
    /* the brief's explicit rule, spelled out for head 1 of layer 0's wq */
    const float *wq = w + po.layers[0].wq;
    snprintf(name, sizeof name, "tiny %s: q row hs/2+i of head 1 is llama2.c row 2i+1", tag);
    TEST_EXPECT(wq[(4 + 2 + 1) * d] == (float)(o.wq + (4 + 3) * d) && wq[(4 + 0) * d] == (float)(o.wq + 4 * d) &&
                    wq[(4 + 1) * d] == (float)(o.wq + (4 + 2) * d),
                name, "rows do not match");
    param_layout_free(&L, &po);
    free(w);
    free(p);
}

static void check_bad(const char *dir) {
    Hdr h = {8, 12, 2, 2, 1, -6, 3};
    char *p = path_join(dir, "bad.bin");
    ModelConfig c;
    float *w = NULL;
    size_t good = 28 + 4 * offsets_of(h).total;
    write_bin(p, h, -4);
    EXPECT_ERR("truncated .bin", llama2c_read(p, &c, &w, &ERR), "%s: file is %zu bytes, header implies %zu", p,
               good - 4, good);
    write_bin(p, h, 8);
    EXPECT_ERR(".bin with trailing bytes", llama2c_read(p, &c, &w, &ERR), "%s: file is %zu bytes, header implies %zu",
               p, good + 8, good);
    write_bytes(p, "\x08\0\0\0\x0c\0\0\0", 8);
    EXPECT_ERR(".bin shorter than its header", llama2c_read(p, &c, &w, &ERR),
               "%s: truncated: file is 8 bytes, too short for the 28-byte llama2.c header", p);
    Hdr odd = {8, 12, 2, 3, 1, 6, 3};
    write_bin(p, odd, 0);
    EXPECT_ERR("dim not a multiple of heads", llama2c_read(p, &c, &w, &ERR),
               "%s: bad llama2.c header: dim=8 is not a multiple of n_heads=3", p);
    Hdr kvbad = {8, 12, 2, 2, 3, 6, 3};
    write_bin(p, kvbad, 0);
    EXPECT_ERR("heads not a multiple of kv heads", llama2c_read(p, &c, &w, &ERR),
               "%s: bad llama2.c header: n_heads=2 is not a multiple of n_kv_heads=3", p);
    Hdr zero = {8, 0, 2, 2, 1, 6, 3};
    write_bytes(p, &zero, 28);
    EXPECT_ERR("zero hidden_dim", llama2c_read(p, &c, &w, &ERR),
               "%s: bad llama2.c header: hidden_dim=0 must be positive", p);
    Hdr huge = {1 << 30, 1 << 30, 1 << 30, 1, 1, 1 << 30, 1 << 30};
    write_bytes(p, &huge, 28);
    EXPECT_ERR("sizes that overflow", llama2c_read(p, &c, &w, &ERR), "%s: bad llama2.c header: sizes overflow", p);
    int32_t magic[7] = {0x616b3432, 1, 0, 0, 0, 0, 0};
    write_bytes(p, magic, 28);
    EXPECT_ERR("version 1 export", llama2c_read(p, &c, &w, &ERR),
               "%s: this is a version 1/2 llama2.c export (magic \"ak42\"); only the legacy version 0 format is "
               "supported",
               p);
    TEST_EXPECT(w == NULL, "no buffer handed out on error", "w=%p", (void *)w);
    free(p);
}

/* llama2.c RoPE: rotate adjacent pairs (2i, 2i+1) of each head with freq theta^(-2i/hs). */
static void rope_adjacent(double *v, int n, int hs, int pos) {
    for (int i = 0; i < n; i += 2) {
        int hd = i % hs;
        double a = pos * pow(10000.0, -(double)hd / hs), c = cos(a), s = sin(a);
        double x = v[i], y = v[i + 1];
        v[i] = x * c - y * s;
        v[i + 1] = x * s + y * c;
    }
}

/* Hugging Face RoPE: rotate (j, j + hs/2) of each head with freq theta^(-2j/hs). */
static void rope_half(double *v, int n, int hs, int pos) {
    for (int h = 0; h < n / hs; h++)
        for (int j = 0; j < hs / 2; j++) {
            double a = pos * pow(10000.0, -2.0 * j / hs), c = cos(a), s = sin(a);
            double *x = v + h * hs + j, *y = v + h * hs + j + hs / 2;
            double xv = *x, yv = *y;
            *x = xv * c - yv * s;
            *y = yv * c + xv * s;
        }
}

static void matvec(double *out, const float *W, const double *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) s += (double)W[(size_t)r * cols + c] * x[c];
        out[r] = s;
    }
}

static void check_stories(const char *dir) {
    char *p = path_join(shared_dir(), "models/stories260K/stories260K.bin");
    if (!file_exists(p)) {
        printf("# skip stories260K checks: %s not found (set SOFTCOT_SHARED)\n", p);
        free(p);
        return;
    }
    ModelConfig c;
    float *w = NULL;
    Err err = {{0}};
    int rc = llama2c_read(p, &c, &w, &err);
    TEST_EXPECT(rc == 0, "import stories260K.bin", "%s", err.msg);
    if (rc) {
        free(p);
        return;
    }
    TEST_EXPECT(c.dim == 64 && c.hidden_dim == 172 && c.n_layers == 5 && c.n_heads == 8 && c.n_kv_heads == 4 &&
                    c.vocab_size == 512 && c.head_dim == 8 && c.max_seq == 512 && c.tied_embeddings == 1,
                "stories260K config (dim 64, 5 layers, 8 heads, 4 KV heads, vocab 512)",
                "dim=%d ff=%d L=%d H=%d KV=%d V=%d seq=%d tied=%d", c.dim, c.hidden_dim, c.n_layers, c.n_heads,
                c.n_kv_heads, c.vocab_size, c.max_seq, c.tied_embeddings);

    /* Attention scores must not change: q.k under llama2.c's RoPE on the raw rows equals
     * q.k under HF's RoPE on the permuted rows, for every head and a few positions. */
    ParamLayout L;
    ParamOffsets po;
    param_layout_build(&L, &po, &c);
    const int d = 64, hs = 8, kvd = 32, layer = 3;
    FILE *fp = fopen(p, "rb");
    float *rq = malloc((size_t)d * d * 4), *rk = malloc((size_t)kvd * d * 4);
    Offs o = offsets_of((Hdr){64, 172, 5, 8, 4, 512, 512});
    int ok = fp && !fseek(fp, (long)(28 + 4 * (o.wq + (size_t)layer * d * d)), SEEK_SET) &&
             fread(rq, 4, (size_t)d * d, fp) == (size_t)d * d &&
             !fseek(fp, (long)(28 + 4 * (o.wk + (size_t)layer * kvd * d)), SEEK_SET) &&
             fread(rk, 4, (size_t)kvd * d, fp) == (size_t)kvd * d;
    if (fp) fclose(fp);
    double x[64], qa[64], ka[32], qh[64], kh[32], worst = 0;
    for (int i = 0; i < d; i++) x[i] = sin(0.37 * i + 1.0);
    for (int pq = 0; pq < 40 && ok; pq += 13)
        for (int pk = 0; pk <= pq; pk += 7) {
            matvec(qa, rq, x, d, d);
            matvec(ka, rk, x, kvd, d);
            matvec(qh, w + po.layers[layer].wq, x, d, d);
            matvec(kh, w + po.layers[layer].wk, x, kvd, d);
            rope_adjacent(qa, d, hs, pq);
            rope_adjacent(ka, kvd, hs, pk);
            rope_half(qh, d, hs, pq);
            rope_half(kh, kvd, hs, pk);
            for (int h = 0; h < 8; h++) {
                double sa = 0, sh = 0;
                for (int j = 0; j < hs; j++) {
                    sa += qa[h * hs + j] * ka[(h / 2) * hs + j];
                    sh += qh[h * hs + j] * kh[(h / 2) * hs + j];
                }
                double e = fabs(sa - sh) / (fabs(sa) + 1e-6);
                if (e > worst) worst = e;
            }
        }
    TEST_EXPECT(ok && worst < 1e-9, "stories260K: permuted q/k give the same attention scores under HF RoPE",
                "%s worst rel err %g", ok ? "" : "cannot read raw rows;", worst);
    free(rq);
    free(rk);

    /* save, reload, compare bit-exactly */
    char *md = path_join(dir, "stories");
    ModelConfig back;
    float *w2 = NULL;
    rc = model_dir_save(md, &c, w, &err) || model_dir_load(md, &back, &w2, &err);
    TEST_EXPECT(rc == 0 && !memcmp(&back, &c, sizeof c) && !memcmp(w, w2, L.n_floats * sizeof *w),
                "stories260K: save to a model dir and reload bit-exactly", "%s",
                rc ? err.msg : "config or weights differ");
    free(w2);
    free(md);
    param_layout_free(&L, &po);
    free(w);
    free(p);
}

int main(void) {
    char dir[256];
    make_tmpdir(dir, sizeof dir);
    check_tiny(dir, 0);
    check_tiny(dir, 1);
    check_bad(dir);
    check_stories(dir);
    rm_rf(dir);
    return test_finish();
}
