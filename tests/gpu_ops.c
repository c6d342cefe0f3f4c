/* make check-gpu, part 1: every op of the CUDA backend, forward and backward, against the
 * CPU backend on the same random inputs. Tolerances (norm-wise relative, gpu_common.h):
 * 1e-5 in fp32; GEMMs and attention (tensor cores) again in bf16 at 1e-2. Odd sizes on purpose (tails of every loop).
 * usage: gpu_ops   (prints TAP lines, exit 1 on any failure) */
#include "gpu_common.h"

static const double TOL32 = 1e-5, TOL16 = 1e-2;
/* attention runs in fp32 kernels in fp32 mode and on tensor cores (bf16) in bf16 mode */
static double attn_tol = 1e-5;
static const char *attn_prec = "fp32";

static void check_matmul(OpsPrecision prec) {
    const double tol = prec == OPS_BF16 ? TOL16 : TOL32;
    const char *pn = prec == OPS_BF16 ? "bf16" : "fp32";
    const int shapes[][3] = {{257, 384, 129}, {1, 2048, 512}, {64, 4099, 256}, {1024, 1024, 1024}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                Pair A = pair_random((size_t)M * K, 1.0f, 1), B = pair_random((size_t)K * N, 1.0f, 2);
                Pair C = pair_random((size_t)M * N, 1.0f, 3);
                CPU->matmul(C.c, A.c, B.c, M, N, K, ta, tb, 0.7f, 0.5f);
                GPU->matmul(C.g, A.g, B.g, M, N, K, ta, tb, 0.7f, 0.5f);
                char name[128];
                snprintf(name, sizeof name, "%s matmul M=%d N=%d K=%d ta=%d tb=%d", pn, M, N, K, ta, tb);
                report(name, pair_err(C), tol);
                /* the same operands again: the bf16 cache must serve a hit, not stale data */
                CPU->matmul(C.c, A.c, B.c, M, N, K, ta, tb, 1.0f, 0.0f);
                GPU->matmul(C.g, A.g, B.g, M, N, K, ta, tb, 1.0f, 0.0f);
                snprintf(name, sizeof name, "%s matmul repeat (cached operands) M=%d N=%d K=%d ta=%d tb=%d", pn, M,
                         N, K, ta, tb);
                report(name, pair_err(C), tol);
                pair_free(A), pair_free(B), pair_free(C);
            }
    /* a linear layer into the residual stream: separate output, then in place */
    {
        const int T = 64, in = 1536, out = 2048;
        Pair x = pair_random((size_t)T * in, 1.0f, 8), W = pair_random((size_t)out * in, 0.05f, 9);
        Pair r = pair_random((size_t)T * out, 1.0f, 10), y = pair_random((size_t)T * out, 1.0f, 11);
        char nm[96];
        CPU->linear_residual_forward(y.c, x.c, W.c, r.c, T, in, out);
        GPU->linear_residual_forward(y.g, x.g, W.g, r.g, T, in, out);
        snprintf(nm, sizeof nm, "%s linear into the residual stream (y = r + x W^T)", pn);
        report(nm, pair_err(y), tol);
        snprintf(nm, sizeof nm, "%s linear into the residual stream: the residual is left as it was", pn);
        report(nm, pair_err(r), 0.0);
        CPU->linear_residual_forward(r.c, x.c, W.c, r.c, T, in, out);
        GPU->linear_residual_forward(r.g, x.g, W.g, r.g, T, in, out);
        snprintf(nm, sizeof nm, "%s linear into the residual stream, in place", pn);
        report(nm, pair_err(r), tol);
        pair_free(x), pair_free(W), pair_free(r), pair_free(y);
    }
    /* an operand rewritten between two products must be re-read (cache invalidation) */
    const int M = 64, N = 96, K = 80;
    Pair A = pair_random((size_t)M * K, 1.0f, 4), B = pair_random((size_t)K * N, 1.0f, 5);
    Pair C = pair_random((size_t)M * N, 1.0f, 6), A2 = pair_random((size_t)M * K, 1.0f, 7);
    GPU->matmul(C.g, A.g, B.g, M, N, K, 0, 0, 1.0f, 0.0f);
    CPU->copy(A.c, A2.c, A.n * sizeof(float));
    GPU->copy(A.g, A2.g, A.n * sizeof(float));
    CPU->matmul(C.c, A.c, B.c, M, N, K, 0, 0, 1.0f, 0.0f);
    GPU->matmul(C.g, A.g, B.g, M, N, K, 0, 0, 1.0f, 0.0f);
    char name[96];
    snprintf(name, sizeof name, "%s matmul after its operand was overwritten", pn);
    report(name, pair_err(C), tol);
    pair_free(A), pair_free(B), pair_free(C), pair_free(A2);
}

static void check_elementwise(void) {
    const int T = 131, n = 301;
    Pair y = pair_random((size_t)T * n, 1.0f, 10), b = pair_random(n, 1.0f, 11);
    CPU->add_bias(y.c, b.c, T, n), GPU->add_bias(y.g, b.g, T, n);
    report("add_bias", pair_err(y), TOL32);
    CPU->bias_backward(b.c, y.c, T, n), GPU->bias_backward(b.g, y.g, T, n);
    report("bias_backward (column sums, accumulate)", pair_err(b), TOL32);
    pair_free(y), pair_free(b);

    const size_t N = 1000003;
    Pair u = pair_random(N, 1.0f, 12), v = pair_random(N, 2.0f, 13);
    CPU->add(u.c, v.c, N), GPU->add(u.g, v.g, N);
    report("add", pair_err(u), TOL32);
    CPU->scale(u.c, -0.37f, N), GPU->scale(u.g, -0.37f, N);
    report("scale", pair_err(u), TOL32);
    const double sc = CPU->sumsq(u.c, N), sg = GPU->sumsq(u.g, N);
    report("sumsq", fabs(sg - sc) / sc, 1e-9);

    /* SwiGLU on packed [T, 2 ff] gate/up rows */
    const int Ts = 97, ff = 1031;
    Pair gu = pair_random((size_t)Ts * 2 * ff, 4.0f, 14), h = pair_random((size_t)Ts * ff, 1.0f, 16);
    Pair dgu = pair_random((size_t)Ts * 2 * ff, 1.0f, 15);
    CPU->swiglu_forward(h.c, gu.c, Ts, ff), GPU->swiglu_forward(h.g, gu.g, Ts, ff);
    report("swiglu forward (packed gate/up)", pair_err(h), TOL32);
    CPU->swiglu_backward(dgu.c, h.c, gu.c, Ts, ff), GPU->swiglu_backward(dgu.g, h.g, gu.g, Ts, ff);
    report("swiglu backward d(gate, up)", pair_err(dgu), TOL32);
    pair_free(u), pair_free(v), pair_free(gu), pair_free(dgu), pair_free(h);

    /* AdamW over three steps */
    Pair p = pair_random(N, 0.1f, 17), g = pair_random(N, 1.0f, 18), m = pair_random(N, 0.0f, 19),
         w = pair_random(N, 0.0f, 20);
    for (int step = 1; step <= 3; step++) {
        AdamWParams hp = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .step = step};
        CPU->adamw(p.c, g.c, m.c, w.c, N, hp), GPU->adamw(p.g, g.g, m.g, w.g, N, hp);
    }
    report("adamw, 3 steps: parameters", pair_err(p), TOL32);
    report("adamw, 3 steps: first moment", pair_err(m), TOL32);
    report("adamw, 3 steps: second moment", pair_err(w), TOL32);
    pair_free(p), pair_free(g), pair_free(m), pair_free(w);
}

static void check_norm_embed(void) {
    const int T = 77, d = 2048;
    Pair x = pair_random((size_t)T * d, 3.0f, 30), w = pair_random(d, 1.0f, 31), out = pair_random((size_t)T * d, 1.0f, 32);
    Pair rstd = pair_random(T, 1.0f, 33);
    CPU->rmsnorm_forward(out.c, rstd.c, x.c, w.c, T, d, 1e-5f), GPU->rmsnorm_forward(out.g, rstd.g, x.g, w.g, T, d, 1e-5f);
    report("rmsnorm forward", pair_err(out), TOL32);
    report("rmsnorm forward rstd", pair_err(rstd), TOL32);
    Pair dout = pair_random((size_t)T * d, 1.0f, 34), dx = pair_random((size_t)T * d, 1.0f, 35), dw = pair_random(d, 1.0f, 36);
    CPU->rmsnorm_backward(dx.c, dw.c, dout.c, x.c, w.c, rstd.c, T, d);
    GPU->rmsnorm_backward(dx.g, dw.g, dout.g, x.g, w.g, rstd.g, T, d);
    report("rmsnorm backward dx (accumulate)", pair_err(dx), TOL32);
    report("rmsnorm backward dw (accumulate)", pair_err(dw), TOL32);
    pair_free(x), pair_free(w), pair_free(out), pair_free(rstd), pair_free(dout), pair_free(dx), pair_free(dw);

    /* embedding gather with vector positions; scatter-add with repeated tokens */
    const int V = 1000, de = 96, Te = 200;
    int tok[200];
    for (int t = 0; t < Te; t++) tok[t] = t % 7 == 3 ? -1 : (t * 13) % 50; /* repeats */
    IPair Tk = ipair_from(tok, Te);
    Pair E = pair_random((size_t)V * de, 1.0f, 40), vec = pair_random((size_t)Te * de, 1.0f, 41);
    Pair eo = pair_random((size_t)Te * de, 1.0f, 42);
    CPU->embed_forward(eo.c, Tk.c, vec.c, E.c, Te, de), GPU->embed_forward(eo.g, Tk.g, vec.g, E.g, Te, de);
    report("embedding forward (tokens and input vectors)", pair_err(eo), 0.0);
    CPU->embed_backward(E.c, eo.c, Tk.c, Te, de), GPU->embed_backward(E.g, eo.g, Tk.g, Te, de);
    report("embedding backward (repeated tokens accumulate)", pair_err(E), TOL32);
    pair_free(E), pair_free(vec), pair_free(eo), ipair_free(Tk);
}

/* The attention batch on both backends. */
typedef struct {
    AttnBatch c, g;
    int *meta;
    int *d_meta;
} Batch;

static Batch make_batch(int n_seq, const int *slot, const int *start, const int *len, int max_seq) {
    Batch B;
    B.meta = xmalloc((size_t)4 * n_seq * sizeof(int));
    int rows = 0;
    for (int s = 0; s < n_seq; s++) {
        B.meta[s] = slot[s], B.meta[n_seq + s] = start[s], B.meta[2 * n_seq + s] = len[s];
        B.meta[3 * n_seq + s] = rows;
        rows += len[s];
    }
    B.d_meta = GPU->alloc_mem((size_t)4 * n_seq * sizeof(int));
    GPU->upload(B.d_meta, B.meta, (size_t)4 * n_seq * sizeof(int));
    const int *m = B.meta;
    B.c = (AttnBatch){n_seq, max_seq, rows, m, m + n_seq, m + 2 * n_seq, m + 3 * n_seq,
                      m, m + n_seq, m + 2 * n_seq, m + 3 * n_seq};
    B.g = B.c;
    B.g.d_slot = B.d_meta, B.g.d_start = B.d_meta + n_seq, B.g.d_len = B.d_meta + 2 * n_seq;
    B.g.d_row0 = B.d_meta + 3 * n_seq;
    return B;
}
static void free_batch(Batch *B) {
    free(B->meta);
    GPU->free_mem(B->d_meta);
}

static void check_attention(const char *what_in, int n_seq, const int *slot, const int *start, const int *len,
                            int n_slots, int max_seq, int nh, int nkv, int hs, int backward) {
    char what[128];
    snprintf(what, sizeof what, "%s %s", attn_prec, what_in);
    Batch B = make_batch(n_seq, slot, start, len, max_seq);
    const int rows = B.c.total_rows, qd = nh * hs, kvd = nkv * hs;
    const size_t cache_n = (size_t)n_slots * max_seq * kvd;
    Pair kc = pair_random(cache_n, 1.0f, 50), vc = pair_random(cache_n, 1.0f, 51);
    Pair qkv = pair_random((size_t)rows * (qd + 2 * kvd), 1.0f, 52), q = pair_random((size_t)rows * qd, 1.0f, 54);
    Pair out = pair_random((size_t)rows * qd, 1.0f, 55), lse = pair_random((size_t)rows * nh, 1.0f, 56);
    /* RoPE tables of arbitrary angles */
    const int half = hs / 2;
    float *ang = xmalloc((size_t)max_seq * half * sizeof(float)), *cs = xmalloc((size_t)max_seq * half * sizeof(float));
    float *sn = xmalloc((size_t)max_seq * half * sizeof(float));
    fill_random(ang, (size_t)max_seq * half, 3.14159f, 53);
    for (int i = 0; i < max_seq * half; i++) cs[i] = cosf(ang[i]), sn[i] = sinf(ang[i]);
    Pair ct = pair_from(cs, (size_t)max_seq * half), st = pair_from(sn, (size_t)max_seq * half);
    free(ang), free(cs), free(sn);
    char name[200];
    CPU->qkv_forward(q.c, kc.c, vc.c, qkv.c, ct.c, st.c, &B.c, nh, nkv, hs);
    GPU->qkv_forward(q.g, kc.g, vc.g, qkv.g, ct.g, st.g, &B.g, nh, nkv, hs);
    snprintf(name, sizeof name, "%s: qkv forward: q (rotated)", what);
    report(name, pair_err(q), TOL32);
    snprintf(name, sizeof name, "%s: qkv forward: k cache (rotated) and v cache", what);
    report(name, pair_err(kc) + pair_err(vc), TOL32);
    CPU->attention_forward(out.c, lse.c, q.c, kc.c, vc.c, &B.c, nh, nkv, hs);
    GPU->attention_forward(out.g, lse.g, q.g, kc.g, vc.g, &B.g, nh, nkv, hs);
    snprintf(name, sizeof name, "%s: attention forward", what);
    report(name, pair_err(out), attn_tol);
    snprintf(name, sizeof name, "%s: attention forward log-sum-exp", what);
    report(name, pair_err(lse), attn_tol);
    if (backward) {
        /* both backends start from the CPU forward's outputs */
        GPU->upload(out.g, out.c, out.n * sizeof(float));
        GPU->upload(lse.g, lse.c, lse.n * sizeof(float));
        Pair dout = pair_random((size_t)rows * qd, 1.0f, 57), dq = pair_random((size_t)rows * qd, 1.0f, 58);
        Pair dkc = pair_random(cache_n, 0.0f, 59), dvc = pair_random(cache_n, 0.0f, 60);
        Pair dqkv = pair_random((size_t)rows * (qd + 2 * kvd), 1.0f, 61);
        CPU->attention_backward(dq.c, dkc.c, dvc.c, dout.c, out.c, lse.c, q.c, kc.c, vc.c, &B.c, nh, nkv, hs);
        GPU->attention_backward(dq.g, dkc.g, dvc.g, dout.g, out.g, lse.g, q.g, kc.g, vc.g, &B.g, nh, nkv, hs);
        snprintf(name, sizeof name, "%s: attention backward dq", what);
        report(name, pair_err(dq), attn_tol);
        snprintf(name, sizeof name, "%s: attention backward dk", what);
        report(name, pair_err(dkc), attn_tol);
        snprintf(name, sizeof name, "%s: attention backward dv", what);
        report(name, pair_err(dvc), attn_tol);
        /* both backends unpack the CPU's attention gradients */
        GPU->upload(dq.g, dq.c, dq.n * sizeof(float));
        GPU->upload(dkc.g, dkc.c, dkc.n * sizeof(float));
        GPU->upload(dvc.g, dvc.c, dvc.n * sizeof(float));
        CPU->qkv_backward(dqkv.c, dq.c, dkc.c, dvc.c, ct.c, st.c, &B.c, nh, nkv, hs);
        GPU->qkv_backward(dqkv.g, dq.g, dkc.g, dvc.g, ct.g, st.g, &B.g, nh, nkv, hs);
        snprintf(name, sizeof name, "%s: qkv backward", what);
        report(name, pair_err(dqkv), TOL32);
        pair_free(dout), pair_free(dq), pair_free(dkc), pair_free(dvc), pair_free(dqkv);
    }
    pair_free(kc), pair_free(vc), pair_free(qkv), pair_free(q), pair_free(out), pair_free(lse), pair_free(ct), pair_free(st);
    free_batch(&B);
}

static void check_attention_all(void) {
    { /* prefill after cached positions, GQA, unequal lengths, slots out of order */
        const int slot[] = {2, 0, 3}, start[] = {0, 5, 20}, len[] = {37, 1, 70};
        check_attention("prefill GQA 8/2 hs=64", 3, slot, start, len, 4, 128, 8, 2, 64, 0);
    }
    { /* decode: one query per sequence */
        const int slot[] = {0, 1, 2, 3, 4}, start[] = {0, 7, 33, 300, 64}, len[] = {1, 1, 1, 1, 1};
        check_attention("decode MHA hs=128", 5, slot, start, len, 5, 512, 4, 4, 128, 0);
    }
    { /* decode, GQA and a long context */
        const int slot[] = {1, 0}, start[] = {1500, 2}, len[] = {1, 1};
        check_attention("decode GQA 32/8 hs=64", 2, slot, start, len, 2, 2048, 32, 8, 64, 0);
    }
    { /* training: start 0, several tiles, GQA */
        const int slot[] = {0, 1, 2}, start[] = {0, 0, 0}, len[] = {45, 100, 3};
        check_attention("training GQA 8/2 hs=64", 3, slot, start, len, 3, 128, 8, 2, 64, 1);
    }
    { /* training, head size not a multiple of 8, MQA */
        const int slot[] = {1, 0}, start[] = {0, 0}, len[] = {65, 31};
        check_attention("training MQA 6/1 hs=42", 2, slot, start, len, 2, 96, 6, 1, 42, 1);
    }
    { /* training and prefill, hs = 32 and 96 (the other compiled tensor-core sizes) */
        const int slot[] = {1, 0}, start[] = {0, 0}, len[] = {70, 17};
        check_attention("training MHA 4/4 hs=32", 2, slot, start, len, 2, 96, 4, 4, 32, 1);
        const int slot2[] = {0}, start2[] = {0}, len2[] = {100};
        check_attention("training GQA 6/2 hs=96", 1, slot2, start2, len2, 1, 128, 6, 2, 96, 1);
        const int slot3[] = {0, 1}, start3[] = {40, 3}, len3[] = {9, 33};
        check_attention("prefill after cache GQA 6/2 hs=96", 2, slot3, start3, len3, 2, 128, 6, 2, 96, 0);
    }
    { /* training, hs = 128 */
        const int slot[] = {0}, start[] = {0}, len[] = {129};
        check_attention("training 4/2 hs=128", 1, slot, start, len, 1, 160, 4, 2, 128, 1);
    }
}

/* The grouped decode kernel (SOFTCOT_DECODE_ATTN=gqa, kernels/attention_cuda.cu) on every
 * group size it compiles (1-8), the head-size slices 1-4 per lane, a lone first key,
 * long contexts, and a group of 9 that must fall back to the per-head kernel. */
static void check_decode_gqa(void) {
    setenv("SOFTCOT_DECODE_ATTN", "gqa", 1);
    const char *const saved_prec = attn_prec;
    attn_prec = "fp32 gqa-decode";
    const int slot[] = {3, 0, 2, 1, 4}, start[] = {0, 31, 1500, 255, 7}, len[] = {1, 1, 1, 1, 1};
    const struct { int nh, nkv, hs; const char *name; } shapes[] = {
        {4, 4, 128, "decode MHA 4/4 hs=128"},  {32, 8, 64, "decode GQA 32/8 hs=64 (1B)"},
        {24, 8, 128, "decode GQA 24/8 hs=128 (3B)"}, {14, 2, 64, "decode GQA 14/2 hs=64 (Qwen2 0.5B)"},
        {6, 1, 42, "decode MQA 6/1 hs=42"},    {10, 2, 96, "decode GQA 10/2 hs=96"},
        {16, 2, 32, "decode GQA 16/2 hs=32"},  {9, 1, 32, "decode MQA 9/1 hs=32 (falls back)"},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_attention(shapes[i].name, 5, slot, start, len, 5, 1600, shapes[i].nh, shapes[i].nkv, shapes[i].hs, 0);
    attn_prec = saved_prec;
    unsetenv("SOFTCOT_DECODE_ATTN");
}

static void check_vocab(void) {
    const int rows = 6, V = 50257;
    const float it = 1.0f / 0.7f;
    Pair z = pair_random((size_t)rows * V, 8.0f, 70), zr = pair_random((size_t)rows * V, 8.0f, 71);
    Pair p = pair_random((size_t)rows * V, 1.0f, 72), dp = pair_random((size_t)rows * V, 1.0f, 73);
    Pair dz = pair_random((size_t)rows * V, 1.0f, 74);
    CPU->softmax_forward(p.c, z.c, rows, V, it), GPU->softmax_forward(p.g, z.g, rows, V, it);
    report("softmax forward", pair_err(p), TOL32);
    CPU->softmax_backward(dz.c, dp.c, p.c, rows, V, it), GPU->softmax_backward(dz.g, dp.g, p.g, rows, V, it);
    report("softmax backward (accumulate)", pair_err(dz), TOL32);
    const int tgt[6] = {5, -1, 50256, 0, 12345, 777};
    IPair T = ipair_from(tgt, rows);
    Pair lp = pair_random(rows, 1.0f, 75), dl = pair_random(rows, 1.0f, 76);
    CPU->logprob_forward(lp.c, z.c, T.c, rows, V, it), GPU->logprob_forward(lp.g, z.g, T.g, rows, V, it);
    report("log-probability forward (a row without target)", pair_err(lp), TOL32);
    CPU->logprob_backward(dz.c, dl.c, z.c, T.c, rows, V, it), GPU->logprob_backward(dz.g, dl.g, z.g, T.g, rows, V, it);
    report("log-probability backward (accumulate)", pair_err(dz), TOL32);
    const float wt[6] = {0.5f, 0.0f, -1.0f, 2.0f, 1.0f, 0.25f};
    Pair w = pair_from(wt, rows), kl = pair_random(rows, 1.0f, 77);
    CPU->kl_categorical(kl.c, dz.c, z.c, zr.c, w.c, rows, V, it);
    GPU->kl_categorical(kl.g, dz.g, z.g, zr.g, w.g, rows, V, it);
    report("KL to reference (a zero-weight row)", pair_err(kl), TOL32);
    report("KL to reference gradient (accumulate)", pair_err(dz), TOL32);
    Pair ent = pair_random(rows, 1.0f, 78);
    CPU->entropy(ent.c, z.c, rows, V, it), GPU->entropy(ent.g, z.g, rows, V, it);
    report("entropy", pair_err(ent), TOL32);

    /* sampling: 256 rows, the same token on both backends */
    const int R = 256, Vs = 32000;
    Pair zs = pair_random((size_t)R * Vs, 3.0f, 79), us = pair_random(R, 0.5f, 80);
    float *uh = xmalloc(R * sizeof(float));
    for (int r = 0; r < R; r++) uh[r] = (float)r / R + 0.5f / R; /* spread over [0,1) */
    CPU->upload(us.c, uh, R * sizeof(float)), GPU->upload(us.g, uh, R * sizeof(float));
    int *ic = CPU->alloc_mem(R * sizeof(int)), *ig = GPU->alloc_mem(R * sizeof(int));
    int *ih = xmalloc(R * sizeof(int));
    for (int greedy = 1; greedy >= 0; greedy--) {
        const float t = greedy ? 0.0f : 1.0f;
        CPU->sample(ic, zs.c, us.c, R, Vs, t), GPU->sample(ig, zs.g, us.g, R, Vs, t);
        GPU->download(ih, ig, R * sizeof(int));
        int diff = 0;
        for (int r = 0; r < R; r++) diff += ih[r] != ic[r];
        report(greedy ? "argmax: same token in 256 rows" : "sampling: same token in 256 rows (inverse CDF, double)",
               (double)diff, 0.0);
    }
    CPU->free_mem(ic), GPU->free_mem(ig), free(ih), free(uh);
    pair_free(zs), pair_free(us), pair_free(z), pair_free(zr), pair_free(p), pair_free(dp), pair_free(dz);
    pair_free(lp), pair_free(dl), pair_free(w), pair_free(kl), pair_free(ent), ipair_free(T);
}

static void check_noise_gauss(void) {
    const int rows = 10, d = 2048;
    RngKey keys[10];
    for (int r = 0; r < rows; r++)
        keys[r] = (RngKey){.seed = 99, .step = 3, .prompt = (uint32_t)r / 3, .sample = (uint32_t)r, .position = 17,
                           .purpose = RNG_PURPOSE_NOISE};
    Pair x = pair_random((size_t)rows * d, 0.1f, 90);
    CPU->add_noise(x.c, keys, rows, d, 0.05f), GPU->add_noise(x.g, keys, rows, d, 0.05f);
    report("Gaussian noise: the CPU generator's stream", pair_err(x), 1e-6);
    Pair mu = pair_random((size_t)rows * d, 0.1f, 91), out = pair_random(rows, 1.0f, 92);
    CPU->gauss_logprob_forward(out.c, x.c, mu.c, rows, d, 200.0f);
    GPU->gauss_logprob_forward(out.g, x.g, mu.g, rows, d, 200.0f);
    report("Gaussian log-density forward", pair_err(out), TOL32);
    Pair dmu = pair_random((size_t)rows * d, 1.0f, 93);
    CPU->gauss_logprob_backward(dmu.c, out.c, x.c, mu.c, rows, d, 200.0f);
    GPU->gauss_logprob_backward(dmu.g, out.g, x.g, mu.g, rows, d, 200.0f);
    report("Gaussian log-density backward (accumulate)", pair_err(dmu), TOL32);
    pair_free(x), pair_free(mu), pair_free(out), pair_free(dmu);
}

/* bf16 mode: RMSNorm, SwiGLU (both ways) and softmax write their output's bf16 copy in
 * the same pass, for the GEMM that reads it next. That product must equal, bit for bit,
 * the same product of a fresh fp32 copy of the operand (which the GEMM converts itself),
 * also after the producer rewrote the operand (the copy follows it). */
static void same_product(const char *name, float *operand, int M, int K, float *W, int N, int trans_b, float *C,
                         float *fresh) {
    float *via_copy = xmalloc((size_t)M * N * sizeof(float)), *via_fresh = xmalloc((size_t)M * N * sizeof(float));
    GPU->matmul(C, operand, W, M, N, K, 0, trans_b, 1.0f, 0.0f);
    GPU->download(via_copy, C, (size_t)M * N * sizeof(float));
    GPU->copy(fresh, operand, (size_t)M * K * sizeof(float));
    GPU->matmul(C, fresh, W, M, N, K, 0, trans_b, 1.0f, 0.0f);
    GPU->download(via_fresh, C, (size_t)M * N * sizeof(float));
    report(name, rel_err_host(via_fresh, via_copy, (size_t)M * N), 0.0);
    free(via_copy), free(via_fresh);
}

static void check_bf16_operands(void) {
    const int T = 64, d = 1536, ff = 1031, V = 5003, N = 384;
    Pair W = pair_random((size_t)N * 2 * ff > (size_t)V * N ? (size_t)N * 2 * ff : (size_t)V * N, 1.0f, 70);
    Pair C = pair_random((size_t)T * N, 1.0f, 71);
    float *fresh = GPU->alloc_mem((size_t)T * V * sizeof(float));
    char name[160];
    for (int round = 0; round < 2; round++) {
        Pair x = pair_random((size_t)T * d, 3.0f, 72 + round), w = pair_random(d, 1.0f, 74);
        Pair out = pair_random((size_t)T * d, 1.0f, 75), rstd = pair_random(T, 1.0f, 76);
        GPU->rmsnorm_forward(out.g, rstd.g, x.g, w.g, T, d, 1e-5f);
        snprintf(name, sizeof name, "bf16 operand written by rmsnorm forward, round %d", round + 1);
        same_product(name, out.g, T, d, W.g, N, 1, C.g, fresh);

        Pair gu = pair_random((size_t)T * 2 * ff, 4.0f, 77 + round), h = pair_random((size_t)T * ff, 1.0f, 79);
        Pair dgu = pair_random((size_t)T * 2 * ff, 1.0f, 80);
        GPU->swiglu_forward(h.g, gu.g, T, ff);
        snprintf(name, sizeof name, "bf16 operand written by swiglu forward, round %d", round + 1);
        same_product(name, h.g, T, ff, W.g, N, 1, C.g, fresh);
        GPU->swiglu_backward(dgu.g, h.g, gu.g, T, ff);
        snprintf(name, sizeof name, "bf16 operand written by swiglu backward, round %d", round + 1);
        same_product(name, dgu.g, T, 2 * ff, W.g, N, 1, C.g, fresh);

        Pair z = pair_random((size_t)T * V, 8.0f, 81 + round), p = pair_random((size_t)T * V, 1.0f, 83);
        GPU->softmax_forward(p.g, z.g, T, V, 2.0f);
        snprintf(name, sizeof name, "bf16 operand written by softmax forward (soft mixture p E), round %d", round + 1);
        same_product(name, p.g, T, V, W.g, N, 0, C.g, fresh);
        pair_free(x), pair_free(w), pair_free(out), pair_free(rstd), pair_free(gu), pair_free(h), pair_free(dgu);
        pair_free(z), pair_free(p);
    }
    GPU->free_mem(fresh);
    pair_free(W), pair_free(C);
}

int main(void) {
    gpu_setup(OPS_FP32);
    printf("# CUDA backend vs CPU backend, every op (fp32 unless named)\n");
    check_matmul(OPS_FP32);
    check_elementwise();
    check_norm_embed();
    check_attention_all();
    check_decode_gqa();
    check_vocab();
    check_noise_gauss();
    gpu_setup(OPS_BF16);
    check_matmul(OPS_BF16);
    check_bf16_operands();
    attn_tol = TOL16, attn_prec = "bf16";
    check_attention_all();
    return finish();
}
