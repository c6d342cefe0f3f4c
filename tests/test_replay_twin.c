/* The RL objective (rl/replay.c) against its PyTorch twin (tests/twin/twin_rl.py).
 *
 * For a random tiny Llama (GQA, llama3 rope scaling, untied) and Qwen2 (q/k/v biases,
 * tied embeddings), the twin records B x G rollouts in each CoT mode and computes, in
 * float64 with autograd, each rollout's l_i = sum_CoT log pi_t + sum_answer log p(a_j)
 * (hard: categorical CoT terms; soft/fuzzy: the Gaussian term through softmax and E) and
 * every parameter gradient of L = -(1/BG) sum_i A_i l_i. Here the recorded rollouts are
 * replayed with replay_accumulate and weights w_i = -A_i/(BG) and compared:
 *   - the per-rollout CoT and answer terms (worst relative error over rollouts),
 *   - every parameter gradient of L (relative L2 per tensor), in one call,
 *   - the same accumulated over two micro-batches,
 *   - every gradient of the CoT part alone (rollouts replayed without their answers),
 *   - the answer part (full minus CoT-only), which the Gaussian term would otherwise
 *     dominate.
 * Tolerance: 1e-4 relative (per tensor, ||a-b||/||b||; a tensor whose reference is below
 * 1e-6 of the whole gradient's norm is measured against that instead). Set TWIN_RL_ARGS (e.g. "--break mu-detach") to pass extra
 * arguments to the twin. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "rl/replay.h"
#include "test.h"
#include "twin_case.h"

static const char *CASES[] = {"llama_gqa_rope3", "qwen2_bias_tied"};
static const char *MODES[] = {"hard", "soft", "fuzzy"};
static const double TOL = 1e-4;


typedef struct {
    int n;                       /* rollouts */
    int B, G;
    float temps[3];              /* cot temperature, sigma, answer temperature */
    int *n_prompt, *cot_len, *prefill_long, *ans_len;
    int *prompt, *cot_tokens, *ans_tokens;
    float *cot_vectors, *adv, *logp_cot, *logp_ans;
    Rollout *r;
} ModeRef;

static void moderef_free(ModeRef *m) {
    free(m->n_prompt), free(m->cot_len), free(m->prefill_long), free(m->ans_len);
    free(m->prompt), free(m->cot_tokens), free(m->ans_tokens);
    free(m->cot_vectors), free(m->adv), free(m->logp_cot), free(m->logp_ans);
    free(m->r);
}

/* Reads one mode's rollouts and fills Rollout structs pointing into the arrays. */
static int load_mode(StFile *f, const char *mode, int d, ModeRef *m) {
    memset(m, 0, sizeof *m);
    char k[128];
    size_t n = 0, n2 = 0, np = 0, nc = 0, na = 0;
#define I32(field, key, cnt) (snprintf(k, sizeof k, "%s." key, mode), m->field = twin_read_i32(f, k, cnt))
    I32(n_prompt, "n_prompt", &n);
    I32(cot_len, "cot_len", &n2);
    if (!m->n_prompt || !m->cot_len || n2 != n) return -1;
    I32(prefill_long, "prefill_long", &n2);
    if (!m->prefill_long || n2 != n) return -1;
    I32(ans_len, "ans_len", &n2);
    if (!m->ans_len || n2 != n) return -1;
    I32(prompt, "prompt", &np);
    I32(cot_tokens, "cot_tokens", &nc);
    I32(ans_tokens, "ans_tokens", &na);
#undef I32
    if (!m->prompt || !m->cot_tokens || !m->ans_tokens) return -1;
    size_t sp = 0, sc = 0, sa = 0;
    for (size_t i = 0; i < n; i++) sp += m->n_prompt[i], sc += m->cot_len[i], sa += m->ans_len[i];
    if (sp != np || sc != nc || sa != na) return -1;
    snprintf(k, sizeof k, "%s.cot_vectors", mode);
    m->cot_vectors = twin_read_f32(f, k, nc * d);
    snprintf(k, sizeof k, "%s.advantage", mode);
    m->adv = twin_read_f32(f, k, n);
    snprintf(k, sizeof k, "%s.logp_cot", mode);
    m->logp_cot = twin_read_f32(f, k, n);
    snprintf(k, sizeof k, "%s.logp_ans", mode);
    m->logp_ans = twin_read_f32(f, k, n);
    snprintf(k, sizeof k, "%s.temps", mode);
    float *t = twin_read_f32(f, k, 3);
    size_t nb = 0;
    int *bg = twin_read_i32(f, "batch", &nb);
    if (!m->cot_vectors || !m->adv || !m->logp_cot || !m->logp_ans || !t || !bg || nb != 2 ||
        (size_t)bg[0] * bg[1] != n) {
        free(t), free(bg);
        return -1;
    }
    memcpy(m->temps, t, sizeof m->temps);
    m->B = bg[0], m->G = bg[1];
    free(t), free(bg);
    m->n = (int)n;
    m->r = xcalloc(n, sizeof(Rollout));
    for (size_t i = 0, op = 0, oc = 0, oa = 0; i < n; i++) {
        Rollout *r = &m->r[i];
        r->prompt_index = (int)i / m->G;
        r->sample_index = (int)i % m->G;
        r->prompt = m->prompt + op;
        r->n_prompt = m->n_prompt[i];
        r->cot_len = m->cot_len[i];
        r->cot_tokens = m->cot_tokens + oc;
        r->cot_vectors = m->cot_vectors + oc * d;
        r->prefill_long = m->prefill_long[i];
        r->ans_len = m->ans_len[i];
        r->ans_tokens = m->ans_tokens + oa;
        r->cot_stop = r->prefill_long ? COT_STOP_LENGTH : COT_STOP_STRING;
        op += r->n_prompt, oc += r->cot_len, oa += r->ans_len;
    }
    return 0;
}

/* Replays r[first..first+count) into grads (device, accumulating). */
static void replay(const Model *m, const ReplayConfig *rc, const Rollout *r, const float *w, int first,
                   int count, float *grads, double *lc, double *la) {
    int rows = 0, max_len = 0;
    for (int i = first; i < first + count; i++) {
        int L = replay_length(&r[i], rc);
        rows += L;
        max_len = L > max_len ? L : max_len;
    }
    ReplayState st;
    replay_init(&st, &m->cfg, rows, count, max_len);
    replay_accumulate(m, &st, rc, r + first, w + first, count, grads, lc + first, la + first);
    replay_free(&st);
}

/* Worst per-tensor relative error of the gradient g (host, layout order) against
 * <mode>.<prefix>.<name> in the reference; with gsub, compares g - gsub against
 * ref(prefix) - ref(sub_prefix). Pass 0 sums the reference's squared norm, pass 1 compares. */
static double grad_error(const Model *m, StFile *f, const char *mode, const char *prefix, const float *g,
                         const float *gsub, const char *sub_prefix, const char **worst_name, int *missing) {
    double worst = 0;
    *missing = 0;
    *worst_name = "";
    /* A tensor whose reference gradient is negligible against the whole gradient (fuzzy
     * CoT terms: the softmax Jacobian is below e^-40 everywhere but in E) is compared
     * against 1e-6 of the whole gradient's norm instead of its own. */
    double total = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < m->layout.n_tensors; i++) {
            const ParamTensor *t = &m->layout.tensors[i];
            char key[PARAM_NAME_MAX + 64];
            snprintf(key, sizeof key, "%s.%s.%s", mode, prefix, t->name);
            float *want = twin_read_f32(f, key, t->numel);
            float *wsub = NULL;
            if (sub_prefix) {
                snprintf(key, sizeof key, "%s.%s.%s", mode, sub_prefix, t->name);
                wsub = twin_read_f32(f, key, t->numel);
            }
            if (!want || (sub_prefix && !wsub)) {
                (*missing)++;
                free(want), free(wsub);
                continue;
            }
            double num = 0, den = 0;
            for (size_t j = 0; j < t->numel; j++) {
                double got = (double)g[t->offset + j] - (gsub ? gsub[t->offset + j] : 0.0f);
                double w = (double)want[j] - (wsub ? wsub[j] : 0.0f);
                num += (got - w) * (got - w);
                den += w * w;
            }
            free(want), free(wsub);
            if (pass == 0) {
                total += den;
                continue;
            }
            double e = sqrt(num) / fmax(sqrt(den), 1e-6 * sqrt(total));
            if (e > worst) worst = e, *worst_name = t->name;
            if (e > TOL) printf("# %s %s %s: %s relative error %.3g\n", mode, prefix, sub_prefix ? sub_prefix : "", t->name, e);
        }
    }
    *missing /= 2;
    return worst;
}

static double worst_rel(const double *a, const float *b, int n) {
    double w = 0;
    for (int i = 0; i < n; i++) {
        double den = fabs((double)b[i]) > 1e-6 ? fabs((double)b[i]) : 1e-6;
        double e = fabs(a[i] - b[i]) / den;
        w = e > w ? e : w;
    }
    return w;
}

static void run_mode(const char *cname, const Model *m, StFile *f, int mi, const int *pf, int npf,
                     const int *pfl, int npfl) {
    const char *mode = MODES[mi];
    char label[320];
    ModeRef ref;
    int ok = load_mode(f, mode, m->cfg.dim, &ref) == 0;
    snprintf(label, sizeof label, "%s %s: recorded rollouts load", cname, mode);
    TEST_EXPECT(ok, label, "missing or inconsistent %s.* tensors", mode);
    if (!ok) {
        moderef_free(&ref);
        return;
    }
    const int n = ref.n;
    ReplayConfig rc = {.mode = (CotMode)mi, .cot_temperature = ref.temps[0], .sigma = ref.temps[1],
                       .ans_temperature = ref.temps[2], .prefill = pf, .n_prefill = npf,
                       .prefill_long = pfl, .n_prefill_long = npfl};
    float *w = xmalloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) w[i] = -ref.adv[i] / (float)(ref.B * ref.G);
    const size_t P = m->layout.n_floats;
    double *lc = xcalloc((size_t)n, sizeof(double)), *la = xcalloc((size_t)n, sizeof(double));
    const char *wn;
    int missing;

    /* one call */
    float *d_g = dev_alloc(P * sizeof(float));
    replay(m, &rc, ref.r, w, 0, n, d_g, lc, la);
    float *g = xmalloc(P * sizeof(float));
    dev_download(g, d_g, P * sizeof(float));
    double ec = worst_rel(lc, ref.logp_cot, n), ea = worst_rel(la, ref.logp_ans, n);
    snprintf(label, sizeof label, "%s %s: per-rollout CoT log-prob terms (%s) match (worst rel %.2g)", cname, mode,
             mi == COT_HARD ? "categorical" : "Gaussian", ec);
    TEST_EXPECT(ec <= TOL, label, "worst relative error %.3g (rollout 0: C %.6g twin %.6g)", ec, lc[0], ref.logp_cot[0]);
    snprintf(label, sizeof label, "%s %s: per-rollout answer log-prob terms match (worst rel %.2g)", cname, mode, ea);
    TEST_EXPECT(ea <= TOL, label, "worst relative error %.3g (rollout 0: C %.6g twin %.6g)", ea, la[0], ref.logp_ans[0]);
    double ge = grad_error(m, f, mode, "grad", g, NULL, NULL, &wn, &missing);
    snprintf(label, sizeof label, "%s %s: all %d parameter gradients of L, one call (worst %.2g, %s)", cname, mode,
             m->layout.n_tensors, ge, wn);
    TEST_EXPECT(ge <= TOL && !missing, label, "worst %.3g, %d reference tensors missing", ge, missing);

    /* two micro-batches accumulating into one buffer */
    float *d_g2 = dev_alloc(P * sizeof(float));
    double *lc2 = xcalloc((size_t)n, sizeof(double)), *la2 = xcalloc((size_t)n, sizeof(double));
    const int split = n / 2 - 1; /* unequal halves */
    replay(m, &rc, ref.r, w, 0, split, d_g2, lc2, la2);
    replay(m, &rc, ref.r, w, split, n - split, d_g2, lc2, la2);
    float *g2 = xmalloc(P * sizeof(float));
    dev_download(g2, d_g2, P * sizeof(float));
    double ge2 = grad_error(m, f, mode, "grad", g2, NULL, NULL, &wn, &missing);
    double el2 = worst_rel(lc2, ref.logp_cot, n), ea2 = worst_rel(la2, ref.logp_ans, n);
    snprintf(label, sizeof label, "%s %s: gradients accumulated over micro-batches of %d and %d rollouts (worst %.2g)",
             cname, mode, split, n - split, ge2);
    TEST_EXPECT(ge2 <= TOL && el2 <= TOL && ea2 <= TOL && !missing, label, "grad worst %.3g, l_cot %.3g, l_ans %.3g",
                ge2, el2, ea2);

    /* the CoT part alone: the same rollouts without their answers */
    Rollout *rc_only = xmalloc((size_t)n * sizeof(Rollout));
    memcpy(rc_only, ref.r, (size_t)n * sizeof(Rollout));
    for (int i = 0; i < n; i++) rc_only[i].ans_len = 0;
    float *d_gc = dev_alloc(P * sizeof(float));
    double *lc3 = xcalloc((size_t)n, sizeof(double)), *la3 = xcalloc((size_t)n, sizeof(double));
    replay(m, &rc, rc_only, w, 0, n, d_gc, lc3, la3);
    float *gc = xmalloc(P * sizeof(float));
    dev_download(gc, d_gc, P * sizeof(float));
    double gec = grad_error(m, f, mode, "grad_cot", gc, NULL, NULL, &wn, &missing);
    snprintf(label, sizeof label, "%s %s: all parameter gradients of the CoT part alone (worst %.2g, %s)", cname, mode,
             gec, wn);
    TEST_EXPECT(gec <= TOL && !missing, label, "worst %.3g, %d missing", gec, missing);
    double gea = grad_error(m, f, mode, "grad", g, gc, "grad_cot", &wn, &missing);
    snprintf(label, sizeof label, "%s %s: all parameter gradients of the answer part, full minus CoT (worst %.2g, %s)",
             cname, mode, gea, wn);
    TEST_EXPECT(gea <= TOL && !missing, label, "worst %.3g, %d missing", gea, missing);
    printf("# %s %s: l_cot err %.2e, l_ans err %.2e, grad %.2e, 2 micro-batches %.2e, CoT-only %.2e, answer part %.2e\n",
           cname, mode, ec, ea, ge, ge2, gec, gea);

    free(rc_only), free(lc3), free(la3), free(gc);
    dev_free(d_gc);
    free(lc2), free(la2), free(g2);
    dev_free(d_g2);
    free(g), free(lc), free(la), free(w);
    dev_free(d_g);
    moderef_free(&ref);
}

static void run_case(const char *name, const char *tmp) {
    char label[256];
    Model m;
    StFile f;
    if (!twin_case_open("tests/twin/twin_rl.py", name, tmp, "rl_ref.safetensors", getenv("TWIN_RL_ARGS"), &m, &f)) return;
    size_t npf = 0, npfl = 0;
    int *pf = twin_read_i32(&f, "prefill", &npf);
    int *pfl = twin_read_i32(&f, "prefill_long", &npfl);
    snprintf(label, sizeof label, "%s: RL reference has both prefills", name);
    TEST_EXPECT(pf && pfl && npf > 0 && npfl > npf, label, "prefill tensors missing");
    if (pf && pfl)
        for (int mi = 0; mi < 3; mi++) run_mode(name, &m, &f, mi, pf, (int)npf, pfl, (int)npfl);
    free(pf), free(pfl);
    st_close(&f);
    model_free(&m);
}

int main(void) {
    return twin_run_cases("softcot_twin_rl", CASES, (int)(sizeof CASES / sizeof CASES[0]), run_case);
}
