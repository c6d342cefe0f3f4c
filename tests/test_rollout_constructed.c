/* The rollout engine's stop rule, prefill and answer-phase stops on a hand-built model
 * whose next-token logits are a known function of the current input.
 *
 * The "bigram" model: one layer whose o_proj and down_proj are zero, so the residual
 * stream is the input itself; all norm weights 1; E = identity (V = d = 32, one-hot
 * embeddings); an untied lm_head W[u][v] = ALPHA when NEXT[v] == u (a permutation). For a
 * token input v the logits are ALPHA*sqrt(d) at NEXT[v] and 0 elsewhere; for a vector
 * input x they are z = W rmsnorm(x), which the test recomputes. A llama2.c-format
 * tokenizer built in memory gives every token a chosen piece, so the decoded shadow text
 * is known token by token.
 *
 * Checked with rollouts_generate:
 *   - hard greedy CoT follows the chain and stops exactly at the token that completes the
 *     stop string (after a near miss), not one token earlier or later; the same when that
 *     token is also the cot_max-th; one token less of cot_max gives a length stop;
 *   - the short prefill follows a stop-string stop, the long one a cot_max or an EOS stop:
 *     the prefills end in different tokens, so the first answer token (NEXT of the last
 *     token fed) shows which one the model was fed; replay_length agrees;
 *   - the answer stops at the '}' closing the box, across a nested "{...}" and an escaped
 *     "\{", at EOS (recorded as the last answer token), and at ans_max;
 *   - soft and fuzzy: with sigma = 0 the inputs h~ are mu = softmax(z/tau)^T E (fuzzy:
 *     the one-hot row to 1e-30) and the shadow chain equals hard greedy; with noise, every
 *     shadow token is argmax z of the logits recomputed from the recorded inputs, and the
 *     stop rule holds for every rollout (no proper prefix of the shadow text ends with the
 *     stop string; the whole text does iff the stop reason says so). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "rl/replay.h"
#include "rl/rollout.h"
#include "test.h"
#include "text/tokenizer.h"

enum { V = 32, D = 32, EOS = 2 };
static const float ALPHA = 0.5f;
static const float SIGMA_NOISY = 0.3f;
static const char *STOP = "The end is:";

/* Token pieces. */
enum {
    T_A = 3, T_B, T_C, T_THE, T_END, T_IS, T_COLON, T_BOX_SP, T_BOX, T_X, T_LBR, T_YR, T_RBR, T_Z, T_W, T_P, T_Q,
    T_R, T_DOT, T_THE_END, T_IS_COLON, T_ESC
};
static const char *PIECES[V] = {
    "<unk>", "<s>", "</s>", "a", "b", "c", " The", " end", " is", ":", " \\boxed{", "\\boxed{", "x", "{", "y}", "}",
    "z", "w", "p", "q", "r", ".", " The end", " is:", "\\{", "k0", "k1", "k2", "k3", "k4", "k5", "k6"};

static int NEXT[V];

/* The chains the test relies on; the rest of the permutation is filled arbitrarily. */
static void build_next(void) {
    static const int pairs[][2] = {
        /* CoT: a -> " The" " end" " is" "." " The end" " is:"  (near miss, then the stop) */
        {T_A, T_THE}, {T_THE, T_END}, {T_END, T_IS}, {T_IS, T_DOT}, {T_DOT, T_THE_END}, {T_THE_END, T_IS_COLON},
        /* answer after the short prefill " \boxed{": x \{ { y} }  (closes at the last) */
        {T_BOX_SP, T_X}, {T_X, T_ESC}, {T_ESC, T_LBR}, {T_LBR, T_YR}, {T_YR, T_RBR},
        /* answer after the long prefill's "\boxed{": w </s> */
        {T_BOX, T_W}, {T_W, EOS},
        /* a two-cycle that never stops: p q p q ... */
        {T_P, T_Q}, {T_Q, T_P},
    };
    int used_src[V] = {0}, used_dst[V] = {0};
    for (int v = 0; v < V; v++) NEXT[v] = -1;
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        NEXT[pairs[k][0]] = pairs[k][1];
        used_src[pairs[k][0]]++, used_dst[pairs[k][1]]++;
    }
    int dst = 0;
    for (int v = 0; v < V; v++) {
        CHECK(used_src[v] <= 1 && used_dst[v] <= 1);
        if (NEXT[v] >= 0) continue;
        while (used_dst[dst]) dst++;
        NEXT[v] = dst;
        used_dst[dst] = 1;
    }
}

static Tokenizer *build_tokenizer(void) {
    size_t cap = 4096, n = 0;
    unsigned char *buf = xmalloc(cap);
    int32_t maxlen = 16;
    memcpy(buf, &maxlen, 4);
    n = 4;
    for (int v = 0; v < V; v++) {
        float score = 0.0f;
        int32_t l = (int32_t)strlen(PIECES[v]);
        memcpy(buf + n, &score, 4);
        memcpy(buf + n + 4, &l, 4);
        memcpy(buf + n + 8, PIECES[v], (size_t)l);
        n += 8 + (size_t)l;
    }
    Err err;
    Tokenizer *t = tokenizer_load_llama2c_mem(buf, n, "constructed.bin", &err);
    if (!t) printf("# %s\n", err.msg);
    free(buf);
    return t;
}

static ModelConfig bigram_config(void) {
    ModelConfig c = {.arch = ARCH_LLAMA, .dim = D, .hidden_dim = 8, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1,
                     .head_dim = 8, .vocab_size = V, .max_seq = 128, .norm_eps = 1e-6f, .rope_theta = 10000.0f,
                     .tied_embeddings = 0, .bos_id = 1, .n_eos = 1, .eos_ids = {EOS}};
    return c;
}

static float *bigram_params(const ModelConfig *c, ParamOffsets *off_out, ParamLayout *lay) {
    param_layout_build(lay, off_out, c);
    float *p = xcalloc(lay->n_floats, sizeof(float));
    for (int t = 0; t < lay->n_tensors; t++) {
        const ParamTensor *pt = &lay->tensors[t];
        if (strstr(pt->name, "norm.weight"))
            for (size_t j = 0; j < pt->numel; j++) p[pt->offset + j] = 1.0f;
        /* q/k/v get small nonzero weights so attention is not trivially zero; o_proj and
         * down_proj stay zero, which cuts both blocks out of the residual stream */
        if (strstr(pt->name, "q_proj") || strstr(pt->name, "k_proj") || strstr(pt->name, "v_proj") ||
            strstr(pt->name, "gate_proj") || strstr(pt->name, "up_proj"))
            for (size_t j = 0; j < pt->numel; j++) p[pt->offset + j] = 0.01f * (float)((j * 7919) % 13) - 0.06f;
    }
    for (int v = 0; v < V; v++) p[off_out->embed + (size_t)v * D + v] = 1.0f;
    for (int v = 0; v < V; v++) p[off_out->lm_head + (size_t)NEXT[v] * D + v] = ALPHA;
    return p;
}

/* Logits the model must produce for input vector x, in double. */
static void logits_of(const float *x, double *z) {
    double ss = 0;
    for (int j = 0; j < D; j++) ss += (double)x[j] * x[j];
    const double rstd = 1.0 / sqrt(ss / D + (double)1e-6f);
    for (int u = 0; u < V; u++) z[u] = 0;
    for (int v = 0; v < V; v++) z[NEXT[v]] += ALPHA * x[v] * rstd;
}

static int argmax_d(const double *z) {
    int b = 0;
    for (int i = 1; i < V; i++) b = z[i] > z[b] ? i : b;
    return b;
}

static Model model;
static Tokenizer *tok;
static const int PF_SHORT[1] = {T_BOX_SP}, PF_LONG[5] = {T_THE, T_END, T_IS, T_COLON, T_BOX};

static RolloutConfig config(CotMode mode, int cot_max, int ans_max) {
    RolloutConfig c = {.mode = mode, .cot_temperature = mode == COT_HARD ? 0.0f : mode == COT_SOFT ? 0.5f : 1e-4f,
                       .sigma = 0.0f, .ans_temperature = 0.0f, .cot_max = cot_max, .ans_max = ans_max,
                       .stop_string = STOP, .prefill = PF_SHORT, .n_prefill = 1, .prefill_long = PF_LONG,
                       .n_prefill_long = 5, .seed = 5, .step = 1};
    return c;
}

static RolloutBatch gen(const RolloutConfig *c, const int *prompt, int n_prompt, int n_samples) {
    RolloutRequest rq = {.prompt_index = 0, .prompt = prompt, .n_prompt = n_prompt, .first_sample = 0,
                         .n_samples = n_samples};
    RolloutBatch b;
    Err err;
    CHECK(rollouts_generate(&model, tok, c, &rq, 1, 8, &b, &err) == 0);
    return b;
}

static int same_ids(const int *a, int na, const int *b, int nb) {
    return na == nb && !memcmp(a, b, sizeof(int) * (size_t)na);
}

static void fmt_ids(char *buf, size_t cap, const int *ids, int n) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n && k + 8 < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? "," : "", ids[i]);
}

static int ends_with_stop(const char *s, size_t n) {
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t')) n--;
    size_t k = strlen(STOP);
    return n >= k && !memcmp(s + n - k, STOP, k);
}

/* The stop rule on one rollout, from its recorded shadow tokens alone. */
static int stop_rule_holds(const Rollout *r, int cot_max) {
    for (int k = 1; k <= r->cot_len; k++) {
        char *text;
        size_t len;
        Err err;
        CHECK(tokenizer_decode_ex(tok, r->cot_tokens, k, 0, &text, &len, &err) == 0);
        int stop = ends_with_stop(text, len);
        int is_last = k == r->cot_len;
        if (is_last && strcmp(text, r->cot_text)) stop = -1; /* decoded text must be the record */
        free(text);
        if (stop < 0) return 0;
        if (!is_last && (stop || r->cot_tokens[k - 1] == EOS)) return 0; /* should have stopped here */
        if (is_last) {
            CotStop want = stop ? COT_STOP_STRING : r->cot_tokens[k - 1] == EOS ? COT_STOP_EOS : COT_STOP_LENGTH;
            if (r->cot_stop != want || (want == COT_STOP_LENGTH && k != cot_max)) return 0;
            if (r->prefill_long != (want != COT_STOP_STRING)) return 0;
        }
    }
    return r->cot_len >= 1;
}

static void test_hard(void) {
    char got[256], label[256];
    const int prompt[2] = {1, T_A};
    const int chain[6] = {T_THE, T_END, T_IS, T_DOT, T_THE_END, T_IS_COLON};
    const int ans_short[5] = {T_X, T_ESC, T_LBR, T_YR, T_RBR};
    const int ans_long[2] = {T_W, EOS};

    RolloutConfig c = config(COT_HARD, 20, 10);
    RolloutBatch b = gen(&c, prompt, 2, 1);
    Rollout *r = &b.r[0];
    fmt_ids(got, sizeof got, r->cot_tokens, r->cot_len);
    TEST_EXPECT(same_ids(r->cot_tokens, r->cot_len, chain, 6) && r->cot_stop == COT_STOP_STRING &&
                    !strcmp(r->cot_text, " The end is. The end is:"),
                "hard greedy: CoT follows the chain past the near miss 'The end is.' and stops at the token completing the stop string",
                "cot [%s] stop %d text '%s'", got, r->cot_stop, r->cot_text);
    TEST_EXPECT(stop_rule_holds(r, c.cot_max), "hard greedy: no shorter prefix of the shadow text ends with the stop string",
                "stop rule violated (cot_len %d)", r->cot_len);
    fmt_ids(got, sizeof got, r->ans_tokens, r->ans_len);
    ReplayConfig rc = {.mode = COT_HARD, .prefill = PF_SHORT, .n_prefill = 1, .prefill_long = PF_LONG, .n_prefill_long = 5};
    TEST_EXPECT(r->prefill_long == 0 && same_ids(r->ans_tokens, r->ans_len, ans_short, 5) &&
                    replay_length(r, &rc) == 2 + 6 + 1 + 5,
                "stop string -> short prefill fed (answer starts with NEXT(' \\boxed{'))",
                "prefill_long %d answer [%s] replay length %d", r->prefill_long, got, replay_length(r, &rc));
    TEST_EXPECT(r->ans_stop == ANS_STOP_CLOSED && r->ans_len == 5 && !strcmp(r->ans_text, "x\\{{y}}"),
                "answer stops at the '}' closing the box, past a nested '{y}' and an escaped '\\{'",
                "stop %d len %d text '%s'", r->ans_stop, r->ans_len, r->ans_text);
    rollouts_free(&b);

    /* the stop string completes exactly at cot_max: the stop string wins */
    c = config(COT_HARD, 6, 10);
    b = gen(&c, prompt, 2, 1);
    r = &b.r[0];
    TEST_EXPECT(r->cot_len == 6 && r->cot_stop == COT_STOP_STRING && r->prefill_long == 0 && r->ans_tokens[0] == T_X,
                "stop string on the cot_max-th token counts as a stop-string stop (short prefill)",
                "cot_len %d stop %d long %d", r->cot_len, r->cot_stop, r->prefill_long);
    rollouts_free(&b);

    /* one token short: length stop, long prefill */
    c = config(COT_HARD, 5, 10);
    b = gen(&c, prompt, 2, 1);
    r = &b.r[0];
    fmt_ids(got, sizeof got, r->ans_tokens, r->ans_len);
    TEST_EXPECT(r->cot_len == 5 && r->cot_stop == COT_STOP_LENGTH && r->prefill_long == 1 &&
                    same_ids(r->cot_tokens, 5, chain, 5),
                "cot_max one token before the stop string: length stop", "cot_len %d stop %d", r->cot_len, r->cot_stop);
    TEST_EXPECT(same_ids(r->ans_tokens, r->ans_len, ans_long, 2) && r->ans_stop == ANS_STOP_EOS &&
                    replay_length(r, &rc) == 2 + 5 + 5 + 2 && !strcmp(r->ans_text, "w"),
                "length stop -> long prefill fed (answer starts with NEXT('\\boxed{')); answer stops at EOS, recorded",
                "answer [%s] stop %d text '%s'", got, r->ans_stop, r->ans_text);
    rollouts_free(&b);

    /* a cycle that never spells the stop string */
    const int prompt_p[3] = {1, T_A, T_P};
    c = config(COT_HARD, 7, 10);
    b = gen(&c, prompt_p, 3, 1);
    r = &b.r[0];
    const int pq[7] = {T_Q, T_P, T_Q, T_P, T_Q, T_P, T_Q};
    TEST_EXPECT(same_ids(r->cot_tokens, r->cot_len, pq, 7) && r->cot_stop == COT_STOP_LENGTH && r->prefill_long == 1 &&
                    r->ans_tokens[0] == T_W,
                "no stop string within cot_max: cot_max tokens, then the long prefill", "cot_len %d stop %d",
                r->cot_len, r->cot_stop);
    rollouts_free(&b);

    /* EOS as a CoT token */
    const int prompt_w[2] = {1, T_W};
    c = config(COT_HARD, 7, 10);
    b = gen(&c, prompt_w, 2, 1);
    r = &b.r[0];
    TEST_EXPECT(r->cot_len == 1 && r->cot_tokens[0] == EOS && r->cot_stop == COT_STOP_EOS && r->prefill_long == 1 &&
                    r->ans_tokens[0] == T_W,
                "EOS in the CoT ends it, then the long prefill", "cot_len %d stop %d", r->cot_len, r->cot_stop);
    rollouts_free(&b);

    /* ans_max: an answer that never closes */
    c = config(COT_HARD, 20, 3);
    const int pf_q[1] = {T_Q};
    c.prefill = pf_q;
    b = gen(&c, prompt, 2, 1);
    r = &b.r[0];
    const int pqp[3] = {T_P, T_Q, T_P};
    fmt_ids(got, sizeof got, r->ans_tokens, r->ans_len);
    TEST_EXPECT(same_ids(r->ans_tokens, r->ans_len, pqp, 3) && r->ans_stop == ANS_STOP_LENGTH,
                "answer stops at ans_max", "answer [%s] stop %d", got, r->ans_stop);
    rollouts_free(&b);
    (void)label;
}

static void test_soft(CotMode mode) {
    const char *mn = cot_mode_name(mode);
    char label[256], got[256];
    const int prompt[2] = {1, T_A};
    const int chain[6] = {T_THE, T_END, T_IS, T_DOT, T_THE_END, T_IS_COLON};
    const int ans_short[5] = {T_X, T_ESC, T_LBR, T_YR, T_RBR};

    /* sigma = 0: h~ = mu, and the shadow chain is the hard greedy one */
    RolloutConfig c = config(mode, 20, 10);
    RolloutBatch b = gen(&c, prompt, 2, 2);
    Rollout *r = &b.r[0];
    fmt_ids(got, sizeof got, r->cot_tokens, r->cot_len);
    snprintf(label, sizeof label, "%s sigma=0: shadow chain and stop equal hard greedy, short prefill, same answer", mn);
    TEST_EXPECT(same_ids(r->cot_tokens, r->cot_len, chain, 6) && r->cot_stop == COT_STOP_STRING && !r->prefill_long &&
                    same_ids(r->ans_tokens, r->ans_len, ans_short, 5) && r->ans_stop == ANS_STOP_CLOSED,
                label, "cot [%s] stop %d", got, r->cot_stop);
    double worst = 0, min_top = 1;
    int zero_noise = 1, onehot = 1, same_samples = 1;
    float prev[D] = {0};
    prev[T_A] = 1.0f; /* E[a] */
    for (int t = 0; t < r->cot_len; t++) {
        double z[V], p[V], mx = -1e300, s = 0;
        logits_of(prev, z);
        for (int v = 0; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        for (int v = 0; v < V; v++) s += p[v] = exp((z[v] - mx) / c.cot_temperature);
        double num = 0, den = 0;
        for (int v = 0; v < V; v++) {
            p[v] /= s; /* mu = p^T E = p, E being the identity */
            double e = r->cot_vectors[(size_t)t * D + v] - p[v];
            num += e * e, den += p[v] * p[v];
            /* the CPU softmax clamps exp at e^-87, so off-argmax weights are ~1e-38, not 0 */
            onehot &= fabs(r->cot_vectors[(size_t)t * D + v] - (v == chain[t] ? 1.0 : 0.0)) < 1e-30;
        }
        min_top = fmin(min_top, p[chain[t]]);
        worst = fmax(worst, sqrt(num / den));
        zero_noise &= r->noise_norm[t] == 0.0f;
        same_samples &= !memcmp(r->cot_vectors + (size_t)t * D, b.r[1].cot_vectors + (size_t)t * D, D * sizeof(float));
        memcpy(prev, r->cot_vectors + (size_t)t * D, sizeof prev);
    }
    snprintf(label, sizeof label, "%s sigma=0: h~ = softmax(z/tau)^T E (rel err %.1g), noise exactly zero%s", mn, worst,
             mode == COT_FUZZY ? ", the one-hot row E[argmax] to 1e-30" : "");
    TEST_EXPECT(worst < 1e-5 && zero_noise && same_samples && (mode != COT_FUZZY || onehot), label,
                "rel err %.3g, zero noise %d, samples equal %d, one-hot %d", worst, zero_noise, same_samples, onehot);
    if (mode == COT_SOFT) {
        snprintf(label, sizeof label, "soft sigma=0: the mixture is genuinely soft (top weight %.3f < 0.95)", min_top);
        TEST_EXPECT(min_top < 0.95 && min_top > 0.5, label, "top weight %.3f", min_top);
    }
    rollouts_free(&b);

    /* noisy: shadow = argmax z of the logits of the recorded inputs; stop rule per rollout */
    c = config(mode, 12, 6);
    c.sigma = SIGMA_NOISY; /* per component, against top weights ~0.9: the argmax sometimes moves */
    const int n = 24;
    b = gen(&c, prompt, 2, n);
    int shadow_ok = 1, rule_ok = 1, steps = 0, off_chain = 0, stops[3] = {0};
    for (int i = 0; i < n; i++) {
        const Rollout *ro = &b.r[i];
        const float *in = NULL;
        float first[D] = {0};
        first[T_A] = 1.0f;
        for (int t = 0; t < ro->cot_len; t++) {
            in = t == 0 ? first : ro->cot_vectors + (size_t)(t - 1) * D;
            double z[V];
            logits_of(in, z);
            shadow_ok &= ro->cot_tokens[t] == argmax_d(z);
            off_chain += t > 0 && ro->cot_tokens[t] != NEXT[ro->cot_tokens[t - 1]];
            steps++;
        }
        rule_ok &= stop_rule_holds(ro, c.cot_max);
        stops[ro->cot_stop]++;
    }
    snprintf(label, sizeof label, "%s sigma>0: every shadow token is argmax z (%d steps, %d off the noiseless chain)", mn,
             steps, off_chain);
    TEST_EXPECT(shadow_ok && off_chain > 0, label, "shadow ok %d, off-chain steps %d", shadow_ok, off_chain);
    snprintf(label, sizeof label, "%s sigma>0: stop rule and prefill choice hold for all %d rollouts (stops: %d string, %d length, %d EOS)",
             mn, n, stops[0], stops[1], stops[2]);
    TEST_EXPECT(rule_ok, label, "a rollout violates the stop rule");
    rollouts_free(&b);
}

int main(void) {
    build_next();
    tok = build_tokenizer();
    if (!tok) {
        printf("not ok - constructed tokenizer loads\n");
        return 1;
    }
    ModelConfig cfg = bigram_config();
    ParamLayout lay;
    ParamOffsets off;
    float *p = bigram_params(&cfg, &off, &lay);
    param_layout_free(&lay, &off);
    model_init(&model, &cfg, p);
    free(p);

    /* the construction itself: one-hot inputs give ALPHA*sqrt(d) at NEXT[v] */
    {
        const int n = V - 1;
        int ids[V], slot[1] = {0}, start[1] = {0}, len[1] = {n};
        for (int v = 0; v < n; v++) ids[v] = v + 1;
        RunState rs;
        runstate_init(&rs, &cfg, (RunShape){.max_rows = n, .n_slots = 1, .max_seq = n, .train = 0});
        ForwardInput in = {.n_seq = 1, .slot = slot, .start = start, .len = len, .tokens = ids, .vectors = NULL};
        model_forward(&model, &rs, &in, 0);
        float *z = xmalloc(sizeof(float) * n * V);
        dev_download(z, rs.logits, sizeof(float) * n * V);
        double worst = 0;
        for (int r = 0; r < n; r++)
            for (int u = 0; u < V; u++) {
                double want = u == NEXT[ids[r]] ? ALPHA / sqrt(1.0 / D + (double)1e-6f) : 0.0;
                worst = fmax(worst, fabs(z[(size_t)r * V + u] - want));
            }
        TEST_EXPECT(worst < 1e-5, "constructed model: logits of a token sequence are ALPHA*sqrt(d) at NEXT[token], 0 elsewhere",
                    "max deviation %.3g", worst);
        free(z);
        runstate_free(&rs);
    }
    test_hard();
    test_soft(COT_SOFT);
    test_soft(COT_FUZZY);
    tokenizer_free(tok);
    model_free(&model);
    return test_finish();
}
