/* The eval library (rl/eval.h) against independent computations:
 *   - pass@k over problems from known per-problem correct counts, against exact
 *     binomial ratios computed here by a different formula;
 *   - stop fractions and the binned entropy profile from hand-made rollouts;
 *   - eval_run_mode (chunked generation) equals one rollouts_generate call over every
 *     request, on the pretrained stories260K model;
 *   - eval_loglik / eval_mc against a separate full forward per sequence with the
 *     log-softmax done in double precision on the host. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/llama2c.h"
#include "model/model.h"
#include "rl/eval.h"
#include "rl/reward.h"
#include "rl/rollout.h"
#include "test.h"
#include "text/tokenizer.h"

/* C(n, k) / C(m, k) as a product of ratios of binomials, computed via lgamma. */
static double binom_ln(int n, int k) {
    if (k < 0 || k > n) return -INFINITY;
    return lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0);
}

static void test_passk_aggregation(void) {
    const int n = 8, P = 5;
    const int correct[5] = {0, 1, 3, 8, 5};
    const int closed_extra[5] = {2, 0, 1, 0, 3}; /* wrong but boxed (reward 10) */
    EvalModeStats s;
    eval_stats_init(&s, EVAL_SOFT_SAMPLE, P, n, 40, 4);
    Rollout r;
    memset(&r, 0, sizeof r);
    for (int p = 0; p < P; p++)
        for (int j = 0; j < n; j++) {
            r.prompt_index = p;
            int reward = j < correct[p] ? REWARD_CORRECT : j < correct[p] + closed_extra[p] ? REWARD_WRONG : REWARD_NONE;
            eval_stats_add(&s, &r, reward);
        }
    int counts_ok = s.n_rollouts == n * P;
    for (int p = 0; p < P; p++)
        counts_ok &= s.n_correct[p] == correct[p] && s.n_closed[p] == correct[p] + closed_extra[p];
    TEST_EXPECT(counts_ok, "per-problem correct and boxed counts", "counts differ");
    double worst = 0, prev = -1;
    int monotone = 1;
    for (int k = 1; k <= n; k++) {
        double want = 0;
        for (int p = 0; p < P; p++) {
            /* probability that k distinct samples drawn from n are all wrong */
            double fail = exp(binom_ln(n - correct[p], k) - binom_ln(n, k));
            want += 1.0 - fail;
        }
        want /= P;
        double got = eval_pass_at_k(&s, k);
        worst = fmax(worst, fabs(got - want));
        monotone &= got >= prev - 1e-15;
        prev = got;
    }
    TEST_EXPECT(worst < 1e-12, "pass@k mean over problems equals exact binomial ratios", "max error %.3g", worst);
    TEST_EXPECT(monotone && fabs(eval_pass_at_k(&s, n) - 4.0 / 5.0) < 1e-15,
                "pass@k is non-decreasing in k and pass@n = share of problems with a correct sample", "pass@n %.17g",
                eval_pass_at_k(&s, n));
    TEST_EXPECT(fabs(eval_frac_correct(&s) - 17.0 / 40.0) < 1e-15 && fabs(eval_pass_at_k(&s, 1) - 17.0 / 40.0) < 1e-12,
                "pass@1 equals the fraction of correct samples", "%.17g vs %.17g", eval_frac_correct(&s),
                eval_pass_at_k(&s, 1));
    TEST_EXPECT(isnan(eval_pass_at_k(&s, n + 1)) && isnan(eval_pass_at_k(&s, 0)), "pass@k is NaN for k outside 1..n",
                "not NaN");
    eval_stats_free(&s);
}

static void test_profile_and_stops(void) {
    /* cot_max 10, bin 4 -> bins [0,4) [4,8) [8,10). Entropy at position t of rollout i
     * is i + t, so each bin's mean is known in closed form. */
    EvalModeStats s;
    eval_stats_init(&s, EVAL_HARD_SAMPLE, 2, 2, 10, 4);
    const int lens[4] = {10, 3, 6, 1};
    const CotStop stops[4] = {COT_STOP_LENGTH, COT_STOP_STRING, COT_STOP_EOS, COT_STOP_STRING};
    double sum[3] = {0}, cnt[3] = {0};
    for (int i = 0; i < 4; i++) {
        float ent[10];
        for (int t = 0; t < lens[i]; t++) {
            ent[t] = (float)(i + t);
            sum[t / 4] += i + t;
            cnt[t / 4] += 1;
        }
        Rollout r = {.prompt_index = i / 2, .sample_index = i % 2, .cot_len = lens[i], .cot_entropy = ent,
                     .cot_stop = stops[i], .ans_len = 2 + i, .ans_stop = i == 0 ? ANS_STOP_CLOSED : ANS_STOP_LENGTH};
        eval_stats_add(&s, &r, REWARD_NONE);
    }
    int ok = s.n_bins == 3 && s.stop[COT_STOP_STRING] == 2 && s.stop[COT_STOP_LENGTH] == 1 && s.stop[COT_STOP_EOS] == 1 &&
             s.cot_tokens == 20 && s.ans_tokens == 14 && s.ans_closed == 1;
    for (int b = 0; ok && b < 3; b++) ok &= s.entropy_count[b] == (long)cnt[b] && fabs(s.entropy_sum[b] - sum[b]) < 1e-9;
    TEST_EXPECT(ok, "stop reasons, lengths and the binned entropy profile", "bins %d, stops %ld/%ld/%ld, counts %ld %ld %ld",
                s.n_bins, s.stop[0], s.stop[1], s.stop[2], s.entropy_count[0], s.entropy_count[1],
                s.n_bins > 2 ? s.entropy_count[2] : -1L);
    eval_stats_free(&s);
}

static void test_modes(void) {
    int on[EVAL_N_MODES];
    Err err;
    int ok = eval_modes_parse("soft-sample,hard-greedy", on, &err) == 0 && on[EVAL_SOFT_SAMPLE] && on[EVAL_HARD_GREEDY] &&
             !on[EVAL_FUZZY_GREEDY];
    ok &= eval_modes_parse("hard-greedy,hard-greedy", on, &err) < 0 && strstr(err.msg, "twice");
    ok &= eval_modes_parse("soft", on, &err) < 0 && strstr(err.msg, "unknown mode 'soft'");
    TEST_EXPECT(ok, "--modes parsing accepts the six names and rejects others", "%s", err.msg);
}

static Model model;
static Tokenizer *tok;

static int *encode(const char *text, int add_special, int *n) {
    int *ids;
    Err err;
    CHECK(tokenizer_encode(tok, text, strlen(text), add_special, &ids, n, &err) == 0);
    return ids;
}

/* log p(ids[t] | ids[<t]) summed over t in [n_ctx, n), by one forward of this sequence
 * alone and a double-precision log-softmax on the host. */
static double reference_loglik(const int *ids, int n, int n_ctx) {
    const int V = model.cfg.vocab_size;
    RunShape shape = {.max_rows = n, .n_slots = 1, .max_seq = n, .train = 0};
    RunState rs;
    runstate_init(&rs, &model.cfg, shape);
    int slot = 0, start = 0, len = n;
    ForwardInput in = {.n_seq = 1, .slot = &slot, .start = &start, .len = &len, .tokens = ids, .vectors = NULL};
    model_forward(&model, &rs, &in, 0);
    float *z = malloc((size_t)n * V * sizeof(float));
    dev_download(z, rs.logits, (size_t)n * V * sizeof(float));
    double total = 0;
    for (int t = n_ctx; t < n; t++) {
        const float *row = z + (size_t)(t - 1) * V;
        double mx = row[0], se = 0;
        for (int v = 1; v < V; v++) mx = fmax(mx, row[v]);
        for (int v = 0; v < V; v++) se += exp(row[v] - mx);
        total += row[ids[t]] - mx - log(se);
    }
    free(z);
    runstate_free(&rs);
    return total;
}

static void test_loglik(void) {
    const char *texts[5] = {"Once upon a time, there was a little girl.", "The dog ran to the park and played with a ball",
                            "Lily", "Tom and Ben were friends. They liked to play in the sand and make castles.", "Hi"};
    LoglikSeq seqs[5];
    int *ids[5];
    double got[5], want[5];
    for (int i = 0; i < 5; i++) {
        int n;
        ids[i] = encode(texts[i], 1, &n);
        seqs[i] = (LoglikSeq){.ids = ids[i], .n = n, .n_ctx = n > 3 ? n / 2 : 1};
        want[i] = reference_loglik(ids[i], n, seqs[i].n_ctx);
    }
    /* 20 rows per call: several calls, and the longest sequence exceeds it alone */
    eval_loglik(&model, seqs, 5, 20, got);
    double worst = 0;
    for (int i = 0; i < 5; i++) worst = fmax(worst, fabs(got[i] - want[i]) / (fabs(want[i]) + 1e-9));
    TEST_EXPECT(worst < 1e-4, "packed log-likelihoods equal one full forward per sequence", "worst relative error %.3g",
                worst);
    double got_big[5];
    eval_loglik(&model, seqs, 5, 100000, got_big);
    worst = 0;
    for (int i = 0; i < 5; i++) worst = fmax(worst, fabs(got_big[i] - want[i]) / (fabs(want[i]) + 1e-9));
    TEST_EXPECT(worst < 1e-4, "one call for every sequence gives the same log-likelihoods", "worst relative error %.3g",
                worst);
    for (int i = 0; i < 5; i++) free(ids[i]);
}

static void test_mc(void) {
    char *ch0[3] = {"a little girl named Lily", "the purple algebra of seven", "zzz qqq xxx"};
    char *ch1[2] = {"park", "ball"};
    /* a question far longer than the model's 512 positions: cut from the left */
    char *longq = malloc(4000);
    longq[0] = '\0';
    while (strlen(longq) < 3000) strcat(longq, "The cat sat on the mat and looked at the sun. ");
    char *ch2[2] = {"The end.", "Yes"};
    McItem items[3] = {{.question = "Once upon a time, there was", .choices = ch0, .n_choices = 3, .correct = 0, .line = 1},
                       {.question = "Where did the dog go?", .choices = ch1, .n_choices = 2, .correct = 1, .line = 2},
                       {.question = longq, .choices = ch2, .n_choices = 2, .correct = 0, .line = 3}};
    McSet set = {.items = items, .n = 3};
    McResult res;
    Err err;
    int rc = eval_mc(&model, tok, &set, 2, 64, &res, &err);
    TEST_EXPECT(rc == 0 && res.n_items == 2, "eval_mc scores the first n items", "rc %d: %s", rc, err.msg);
    if (rc) return;
    /* Independent: encode context and whole text, score the tail of the whole text. */
    int ok = 1;
    double nll_sum = 0;
    for (int i = 0; i < 2; i++) {
        char ctx[256];
        snprintf(ctx, sizeof ctx, "Question: %s\nAnswer:", items[i].question);
        int nc, best = 0;
        int *cids = encode(ctx, 1, &nc);
        free(cids);
        double ll[3];
        int ntok[3];
        for (int c = 0; c < items[i].n_choices; c++) {
            char whole[512];
            snprintf(whole, sizeof whole, "%s %s", ctx, items[i].choices[c]);
            int nw;
            int *w = encode(whole, 1, &nw);
            ll[c] = reference_loglik(w, nw, nc);
            ntok[c] = nw - nc;
            free(w);
            if (ll[c] > ll[best]) best = c;
        }
        ok &= res.predicted[i] == best && res.correct[i] == items[i].correct;
        nll_sum += -ll[items[i].correct] / ntok[items[i].correct];
    }
    TEST_EXPECT(ok, "predicted choice = argmax of independently computed log-likelihoods", "predicted %d %d",
                res.predicted[0], res.predicted[1]);
    TEST_EXPECT(fabs(res.sum_nll_token - nll_sum) < 1e-4 * fabs(nll_sum) && res.n_truncated == 0,
                "per-token NLL of the correct choice", "%.8g vs %.8g", res.sum_nll_token, nll_sum);
    eval_mc_free(&res);
    rc = eval_mc(&model, tok, &set, 3, 256, &res, &err);
    TEST_EXPECT(rc == 0 && res.n_items == 3 && res.n_truncated == 1 && isfinite(res.sum_nll_token),
                "a question longer than the model is cut from the left and still scored", "rc %d truncated %d",
                rc, res.n_truncated);
    if (rc == 0) eval_mc_free(&res);
    items[1].correct = 5;
    rc = eval_mc(&model, tok, &set, 2, 64, &res, &err);
    TEST_EXPECT(rc < 0 && strstr(err.msg, "line 2"), "a gold index outside the choices is an error naming the line",
                "rc %d: %s", rc, err.msg);
    free(longq);
}

/* eval_run_mode cuts the (problem, sample) order into chunks of `batch` with requests
 * split at chunk borders; the rollouts must be those of one rollouts_generate call. */
static void test_run_mode_chunks(void) {
    int npf, npfl;
    int *pf = encode(" {", 0, &npf), *pfl = encode(" The end {", 0, &npfl);
    const char *qs[3] = {"Lily went to the park", "The dog", "Once upon a time"};
    int *ids[3], nids[3];
    EvalTask tasks[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = encode(qs[i], 1, &nids[i]);
        tasks[i] = (EvalTask){.ids = ids[i], .n_ids = nids[i], .gold = "7"};
    }
    RolloutConfig base = {.cot_max = 20, .ans_max = 6, .stop_string = ".", .prefill = pf, .n_prefill = npf,
                          .prefill_long = pfl, .n_prefill_long = npfl, .seed = 99};
    EvalTemps temps = {.hard_sample = 1.0f, .soft = 0.5f, .fuzzy = 1e-4f, .noise_gamma = 0.33f};
    for (int mode = EVAL_HARD_SAMPLE; mode <= EVAL_SOFT_SAMPLE; mode += EVAL_SOFT_SAMPLE - EVAL_HARD_SAMPLE) {
        EvalModeStats s;
        Err err;
        CHECK(eval_run_mode(&model, tok, &base, (EvalMode)mode, &temps, tasks, 3, 3, 4, 5, NULL, NULL, &s, &err) == 0);
        RolloutConfig cfg = base;
        cfg.mode = eval_mode_cot((EvalMode)mode);
        eval_mode_settings(&model, (EvalMode)mode, &temps, &cfg.cot_temperature, &cfg.sigma, &cfg.ans_temperature);
        cfg.record_entropy = 1;
        RolloutRequest req[3];
        for (int i = 0; i < 3; i++)
            req[i] = (RolloutRequest){.prompt_index = i, .prompt = ids[i], .n_prompt = nids[i], .first_sample = 0, .n_samples = 3};
        RolloutBatch b;
        CHECK(rollouts_generate(&model, tok, &cfg, req, 3, 4, &b, &err) == 0);
        EvalModeStats ref;
        eval_stats_init(&ref, (EvalMode)mode, 3, 3, base.cot_max, 5);
        for (int i = 0; i < b.n; i++) eval_stats_add(&ref, &b.r[i], reward_score(b.r[i].ans_text, "7"));
        int same = s.n_rollouts == 9 && s.cot_tokens == ref.cot_tokens && s.ans_tokens == ref.ans_tokens &&
                   !memcmp(s.stop, ref.stop, sizeof s.stop) && s.gen_rows == b.gen_rows;
        for (int k = 0; same && k < s.n_bins; k++)
            same &= s.entropy_count[k] == ref.entropy_count[k] && s.entropy_sum[k] == ref.entropy_sum[k];
        for (int p = 0; same && p < 3; p++) same &= s.n_correct[p] == ref.n_correct[p];
        char name[128];
        snprintf(name, sizeof name, "%s: chunked evaluation equals one rollouts_generate call", eval_mode_name((EvalMode)mode));
        TEST_EXPECT(same, name, "cot tokens %ld vs %ld, rows %ld vs %ld", s.cot_tokens, ref.cot_tokens, s.gen_rows,
                    b.gen_rows);
        snprintf(name, sizeof name, "%s: settings (tau, sigma, greedy answer)", eval_mode_name((EvalMode)mode));
        TEST_EXPECT(s.ans_temperature == 0 && (mode == EVAL_HARD_SAMPLE ? s.sigma == 0 && s.cot_temperature == 1.0f
                                                                        : s.sigma > 0 && s.cot_temperature == 0.5f),
                    name, "tau %g sigma %g", s.cot_temperature, s.sigma);
        eval_stats_free(&ref);
        eval_stats_free(&s);
        rollouts_free(&b);
    }
    float tau, sigma, ans;
    eval_mode_settings(&model, EVAL_FUZZY_GREEDY, &temps, &tau, &sigma, &ans);
    int ok = tau == 1e-4f && sigma == 0 && ans == 0;
    eval_mode_settings(&model, EVAL_HARD_GREEDY, &temps, &tau, &sigma, &ans);
    ok &= tau == 0 && sigma == 0;
    eval_mode_settings(&model, EVAL_FUZZY_SAMPLE, &temps, &tau, &sigma, &ans);
    ok &= fabsf(sigma - rollout_sigma(&model, 0.33f)) < 1e-7f;
    TEST_EXPECT(ok, "greedy modes: hard tau 0, soft/fuzzy sigma 0; sample modes sigma = 0.33 rms(E)", "tau %g sigma %g",
                tau, sigma);
    for (int i = 0; i < 3; i++) free(ids[i]);
    free(pf), free(pfl);
}

int main(void) {
    test_passk_aggregation();
    test_profile_and_stops();
    test_modes();

    char bin[512], tokp[512];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", shared_dir());
    snprintf(tokp, sizeof tokp, "%s/models/stories260K/tok512.bin", shared_dir());
    Err err;
    ModelConfig cfg;
    float *host;
    if (llama2c_read(bin, &cfg, &host, &err)) {
        printf("not ok - load stories260K: %s\n", err.msg);
        return 1;
    }
    model_init(&model, &cfg, host);
    free(host);
    tok = tokenizer_load_llama2c(tokp, &err);
    CHECK(tok);
    test_loglik();
    test_mc();
    test_run_mode_chunks();
    tokenizer_free(tok);
    model_free(&model);
    return test_finish();
}
