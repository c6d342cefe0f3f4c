/* make bench: forward and forward+backward throughput of the CPU model at d=1024, 8 layers,
 * V=32000, 2048 tokens, against OpenBLAS sgemm measured in the same run at the model's own
 * GEMM shapes, and against the PyTorch twin on the same shape. Prints ratios; asserts
 * nothing (performance is reported, not tested). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cpu.h"
#include "core/rng.h"
#include "model/model.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

typedef struct { int M, N, K, ta, tb; } Gemm;

/* The GEMMs of one forward (y = x W^T per linear layer) and one backward (dx = dy W,
 * dW += dy^T x), exactly as op_linear_* issues them: the stacked q/k/v and gate/up
 * projections are one GEMM each. */
static int model_gemms(const ModelConfig *c, int T, int backward, Gemm *out) {
    const int d = c->dim, qd = cfg_q_dim(c), kvd = cfg_kv_dim(c), ff = c->hidden_dim;
    const int lin[4][2] = {{d, qd + 2 * kvd}, {qd, d}, {d, 2 * ff}, {ff, d}};
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) {
        for (int i = 0; i < 4; i++) {
            int in = lin[i][0], o = lin[i][1];
            if (!backward) {
                out[n++] = (Gemm){T, o, in, 0, 1};
            } else {
                out[n++] = (Gemm){T, in, o, 0, 0};
                out[n++] = (Gemm){o, in, T, 1, 0};
            }
        }
    }
    if (!backward) {
        out[n++] = (Gemm){T, c->vocab_size, d, 0, 1};
    } else {
        out[n++] = (Gemm){T, d, c->vocab_size, 0, 0};
        out[n++] = (Gemm){c->vocab_size, d, T, 1, 0};
    }
    return n;
}

static double gemm_flops(const Gemm *g, int n) {
    double f = 0;
    for (int i = 0; i < n; i++) f += 2.0 * g[i].M * g[i].N * g[i].K;
    return f;
}

static double time_gemms(const Gemm *g, int n, float *A, float *B, float *C) {
    double t0 = now();
    for (int i = 0; i < n; i++)
        op_matmul(C, A, B, g[i].M, g[i].N, g[i].K, g[i].ta, g[i].tb, 1.0f, 1.0f);
    return now() - t0;
}

static double best_of(int reps, double (*fn)(void *), void *ctx) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = fn(ctx);
        best = t < best ? t : best;
    }
    return best;
}

typedef struct {
    Model *m;
    RunState *rs;
    ForwardInput *in;
    float *grads, *dlogits;
} Step;

static double run_forward(void *p) {
    Step *s = p;
    double t0 = now();
    model_forward(s->m, s->rs, s->in, 0);
    return now() - t0;
}

static double run_forward_backward(void *p) {
    Step *s = p;
    double t0 = now();
    model_forward(s->m, s->rs, s->in, 0);
    model_backward(s->m, s->rs, s->dlogits, s->grads);
    return now() - t0;
}

int main(int argc, char **argv) {
    cpu_setup_blas(argc, argv);
    const int T = 2048, reps = 2;
    ModelConfig c = {.arch = ARCH_LLAMA, .dim = 1024, .hidden_dim = 2816, .n_layers = 8,
                     .n_heads = 16, .n_kv_heads = 4, .head_dim = 64, .vocab_size = 32000,
                     .max_seq = 4096, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                     .tied_embeddings = 0, .bos_id = 1, .n_eos = 1, .eos_ids = {2}};
    ParamLayout layout;
    ParamOffsets off;
    param_layout_build(&layout, &off, &c);
    float *host = malloc(layout.n_floats * sizeof(float));
    RngKey key = {.seed = 1, .purpose = RNG_PURPOSE_INIT};
    for (size_t i = 0; i < layout.n_floats; i++) host[i] = 0.02f * rng_normal(key, (uint32_t)i);
    for (int l = 0; l < c.n_layers; l++) {
        for (int i = 0; i < c.dim; i++) host[off.layers[l].attn_norm + i] = host[off.layers[l].ffn_norm + i] = 1.0f;
    }
    for (int i = 0; i < c.dim; i++) host[off.final_norm + i] = 1.0f;
    param_layout_free(&layout, &off);
    Model m;
    model_init(&m, &c, host);
    free(host);

    RunState rs;
    RunShape shape = {.max_rows = T, .n_slots = 1, .max_seq = T, .train = 1};
    runstate_init(&rs, &c, shape);
    int *tokens = malloc(T * sizeof(int));
    for (int i = 0; i < T; i++) tokens[i] = (int)(rng_uniform(key, (uint32_t)(1u << 30) + i) * c.vocab_size);
    int slot = 0, start = 0, len = T;
    ForwardInput in = {.n_seq = 1, .slot = &slot, .start = &start, .len = &len, .tokens = tokens};
    float *grads = dev_alloc(m.layout.n_floats * sizeof(float));
    float *dlogits = dev_alloc((size_t)T * c.vocab_size * sizeof(float));
    {
        float *h = malloc((size_t)T * c.vocab_size * sizeof(float));
        for (size_t i = 0; i < (size_t)T * c.vocab_size; i++) h[i] = 1e-4f * rng_normal(key, (uint32_t)(i + 7));
        dev_upload(dlogits, h, (size_t)T * c.vocab_size * sizeof(float));
        free(h);
    }
    printf("# softcot bench: d=%d layers=%d heads=%d kv_heads=%d ff=%d V=%d tokens=%d, backend %s, "
           "OPENBLAS_CORETYPE=%s OPENBLAS_NUM_THREADS=%s\n",
           c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.hidden_dim, c.vocab_size, T,
           ops_backend_name(), getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(auto)",
           getenv("OPENBLAS_NUM_THREADS") ? getenv("OPENBLAS_NUM_THREADS") : "(auto)");
    printf("# RunState %.2f GiB, parameters %.1f M\n", runstate_bytes(&c, shape) / 1073741824.0,
           m.layout.n_floats / 1e6);

    Step st = {&m, &rs, &in, grads, dlogits};
    run_forward(&st); /* warm-up: page in every buffer */
    double t_fwd = best_of(reps, run_forward, &st);
    double t_fb = best_of(reps, run_forward_backward, &st);

    /* Model FLOPs: GEMMs plus causal attention (QK^T and PV over the lower triangle). */
    Gemm g[256];
    int nf = model_gemms(&c, T, 0, g);
    double lin_f = gemm_flops(g, nf);
    double att_f = (double)c.n_layers * 2.0 * T * (T + 1) / 2.0 * cfg_q_dim(&c) * 2.0;
    double fwd_flops = lin_f + att_f, fb_flops = 3 * fwd_flops;

    /* sgemm at the same shapes, same run */
    int nb = model_gemms(&c, T, 1, g + nf);
    size_t big = (size_t)c.vocab_size * c.dim > (size_t)T * c.vocab_size ? (size_t)c.vocab_size * c.dim : (size_t)T * c.vocab_size;
    float *A = dev_alloc(big * sizeof(float)), *B = dev_alloc(big * sizeof(float)), *C = dev_alloc(big * sizeof(float));
    time_gemms(g, nf, A, B, C);
    double t_gemm = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = time_gemms(g, nf + nb, A, B, C);
        t_gemm = t < t_gemm ? t : t_gemm;
    }
    double gemm_rate = gemm_flops(g, nf + nb) / t_gemm / 1e9;
    double fwd_rate = fwd_flops / t_fwd / 1e9, fb_rate = fb_flops / t_fb / 1e9;

    printf("%-28s %12s %12s %14s\n", "measure", "tokens/s", "GFLOP/s", "vs sgemm");
    printf("%-28s %12s %12.1f %14s\n", "sgemm at model shapes", "-", gemm_rate, "1.00");
    printf("%-28s %12.1f %12.1f %14.2f\n", "softcot forward", T / t_fwd, fwd_rate, fwd_rate / gemm_rate);
    printf("%-28s %12.1f %12.1f %14.2f\n", "softcot forward+backward", T / t_fb, fb_rate, fb_rate / gemm_rate);

    /* The PyTorch twin on the same shape, same environment (OpenBLAS core type, 1 thread). */
    int want_twin = !(argc > 1 && !strcmp(argv[1], "--no-twin"));
    FILE *p = !want_twin ? NULL : popen("/usr/bin/python3 tests/twin/bench_twin.py --dim 1024 --layers 8 --heads 16 "
                    "--kv-heads 4 --hidden 2816 --vocab 32000 --tokens 2048 --threads 1 --repeats 2 2>&1",
                    "r");
    double tw_f = 0, tw_fb = 0;
    char line[512];
    while (p && fgets(line, sizeof line, p))
        if (sscanf(line, "twin fwd_tok_s=%lf fwdbwd_tok_s=%lf", &tw_f, &tw_fb) == 2) break;
    if (p) pclose(p);
    if (tw_f > 0) {
        printf("%-28s %12.1f %12s %14s   softcot/twin %.2fx\n", "pytorch twin forward", tw_f, "-", "-", (T / t_fwd) / tw_f);
        printf("%-28s %12.1f %12s %14s   softcot/twin %.2fx\n", "pytorch twin forward+backward", tw_fb, "-", "-", (T / t_fb) / tw_fb);
    } else if (want_twin) {
        printf("# pytorch twin bench did not run (needs /usr/bin/python3 with torch)\n");
    }
    dev_free(A), dev_free(B), dev_free(C), dev_free(grads), dev_free(dlogits);
    free(tokens);
    runstate_free(&rs);
    model_free(&m);
    return 0;
}
