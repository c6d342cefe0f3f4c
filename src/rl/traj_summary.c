#include "rl/traj_summary.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "io/traj_read.h"

const char *const TRAJ_STEP_COL_NAME[TS_N] = {
    [TS_REWARD_MEAN] = "reward_mean", [TS_REWARD_MIN] = "reward_min", [TS_REWARD_MAX] = "reward_max",
    [TS_FRAC_CORRECT] = "frac_correct", [TS_COT_LEN] = "cot_len", [TS_ANS_LEN] = "ans_len",
    [TS_STOP_STRING] = "frac_stop_string", [TS_STOP_LENGTH] = "frac_stop_length", [TS_STOP_EOS] = "frac_stop_eos",
    [TS_LOGP_COT] = "logp_cot", [TS_LOGP_ANS] = "logp_ans", [TS_LOSS] = "loss", [TS_GRAD_NORM] = "grad_norm",
    [TS_LR] = "lr", [TS_SIGMA] = "sigma", [TS_GEN_TOK_S] = "gen_tok_s", [TS_TRAIN_TOK_S] = "train_tok_s",
    [TS_STEP_SECONDS] = "step_seconds",
};

/* CoT positions read per block when streaming the per-position columns: bounds memory
 * (about 60 bytes per position with K = 8) for runs of any length. */
enum { BLOCK_POSITIONS = 1 << 20 };

/* ------------------------------------------------------------------ live files */

/* A running job appends to the file while we read it: HDF5 metadata on disk is then
 * briefly inconsistent, and a file just created has no superblock yet. If a read fails
 * and the file changed meanwhile, try again (up to MAX_ATTEMPTS); if it did not change
 * but was written in the last RECENT_S seconds, try a few times (a writer may be between
 * two writes). A file at rest that cannot be read is an error at once. */
enum { MAX_ATTEMPTS = 6, RECENT_ATTEMPTS = 3, RECENT_S = 2 };

typedef struct {
    int ok;
    off_t size;
    struct timespec mtime;
} FileSig;

static FileSig file_sig(const char *path) {
    struct stat st;
    FileSig s = {0};
    if (stat(path, &st) == 0) s = (FileSig){1, st.st_size, st.st_mtim};
    return s;
}

static int sig_changed(FileSig a, FileSig b) {
    return a.ok && b.ok &&
           (a.size != b.size || a.mtime.tv_sec != b.mtime.tv_sec || a.mtime.tv_nsec != b.mtime.tv_nsec);
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

typedef int (*LoadFn)(void *ctx, Err *err);

static int load_with_retries(const char *path, LoadFn load, void (*reset)(void *), void *ctx, Err *err) {
    for (int attempt = 1;; attempt++) {
        FileSig before = file_sig(path);
        if (load(ctx, err) == 0) return 0;
        FileSig after = file_sig(path);
        const int recent = after.ok && time(NULL) - after.mtime.tv_sec < RECENT_S;
        if (!sig_changed(before, after) && !(recent && attempt < RECENT_ATTEMPTS)) return -1;
        if (attempt == MAX_ATTEMPTS) {
            size_t n = strlen(err->msg);
            snprintf(err->msg + n, sizeof err->msg - n,
                     " (the file changed during each of %d attempts: is a job writing it? analyse a copy)", MAX_ATTEMPTS);
            return -1;
        }
        reset(ctx);
        sleep_ms(100L * attempt);
    }
}

/* ------------------------------------------------------------------ summary */

typedef struct {
    const char *path;
    const TrajSummaryOptions *o;
    TrajSummary *s;
} SummaryCtx;

static int read_root_attrs(TrajReader *tr, TrajSummary *s, Err *err) {
    if (traj_read_attr_str(tr, "mode", &s->mode, err) || traj_read_attr_str(tr, "softcot_version", &s->softcot_version, err) ||
        traj_read_attr_i64(tr, "format_version", &s->format_version, err) ||
        traj_read_attr_i64(tr, "batch_prompts", &s->batch_prompts, err) ||
        traj_read_attr_i64(tr, "group_size", &s->group_size, err) || traj_read_attr_i64(tr, "topk", &s->topk, err) ||
        traj_read_attr_i64(tr, "world_size", &s->world_size, err) || traj_read_attr_i64(tr, "seed", &s->seed, err) ||
        traj_read_attr_str(tr, "config", &s->config, err))
        return -1;
    if (traj_read_has_attr(tr, "compression") && traj_read_attr_str(tr, "compression", &s->compression, err)) return -1;
    if (s->topk < 1 || s->topk > 1024)
        return err_set(err, "%s: root attribute topk is %lld, expected 1..1024", s->path, (long long)s->topk);
    return 0;
}

/* [*r0, *r1): the rows of a sorted step column inside [lo, hi]. */
static int step_rows(const char *path, const char *table, const int64_t *step, int64_t n, int64_t lo, int64_t hi,
                     int64_t *r0, int64_t *r1, Err *err) {
    for (int64_t i = 1; i < n; i++)
        if (step[i] < step[i - 1])
            return err_set(err, "%s: /%s/step decreases at row %lld (%lld after %lld): corrupted", path, table,
                           (long long)i, (long long)step[i], (long long)step[i - 1]);
    int64_t a = 0;
    while (a < n && step[a] < lo) a++;
    int64_t b = a;
    while (b < n && step[b] <= hi) b++;
    *r0 = a, *r1 = b;
    return 0;
}

static int read_steps(TrajReader *tr, const TrajSummaryOptions *o, TrajSummary *s, Err *err) {
    if (traj_read_rows(tr, "steps", &s->n_steps_total, err)) return -1;
    const int64_t N = s->n_steps_total;
    int64_t *all = xmalloc((size_t)(N ? N : 1) * sizeof *all), r0 = 0, r1 = 0;
    if (traj_read_fixed(tr, "steps", "step", TRAJ_I64, 1, 0, N, all, err) ||
        step_rows(s->path, "steps", all, N, o->step_min, o->step_max, &r0, &r1, err)) {
        free(all);
        return -1;
    }
    const int64_t n = r1 - r0;
    s->n_steps = n;
    s->step = xmalloc((size_t)(n ? n : 1) * sizeof *s->step);
    memcpy(s->step, all + r0, (size_t)n * sizeof *s->step);
    free(all);
    for (int c = 0; c < TS_N; c++) {
        s->col[c] = xmalloc((size_t)(n ? n : 1) * sizeof(float));
        if (traj_read_fixed(tr, "steps", TRAJ_STEP_COL_NAME[c], TRAJ_F32, 1, r0, n, s->col[c], err)) return -1;
    }
    s->skipped = xmalloc((size_t)(n ? n : 1) * sizeof *s->skipped);
    return traj_read_fixed(tr, "steps", "skipped", TRAJ_I32, 1, r0, n, s->skipped, err);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The ragged columns of /rollouts that hold one element per CoT position. */
static int check_positions(TrajReader *tr, const char *col, const int64_t *want, int64_t r0, int64_t n,
                           int64_t *off, Err *err) {
    if (traj_read_offsets(tr, "rollouts", col, r0, n, off, err)) return -1;
    for (int64_t i = 0; i < n; i++)
        if (off[i + 1] - off[i] != want[i + 1] - want[i])
            return err_set(err, "%s: /rollouts/%s_offsets: row %lld has %lld elements, cot_len says %lld (corrupted)",
                           traj_read_path(tr), col, (long long)(r0 + i), (long long)(off[i + 1] - off[i]),
                           (long long)(want[i + 1] - want[i]));
    return 0;
}

static int read_rollouts(TrajReader *tr, const TrajSummaryOptions *o, TrajSummary *s, Err *err) {
    const char *path = s->path;
    if (traj_read_rows(tr, "rollouts", &s->n_rollouts_total, err)) return -1;
    const int64_t N = s->n_rollouts_total;
    int64_t *step = xmalloc((size_t)(N ? N : 1) * sizeof *step), r0 = 0, r1 = 0;
    int rc = traj_read_fixed(tr, "rollouts", "step", TRAJ_I64, 1, 0, N, step, err);
    if (!rc) rc = step_rows(path, "rollouts", step, N, o->step_min, o->step_max, &r0, &r1, err);
    if (rc) {
        free(step);
        return -1;
    }
    const int64_t n = r1 - r0, K = s->topk;
    const size_t nn = (size_t)(n ? n : 1);
    s->n_rollouts = n;
    s->first_rollout_step = n ? step[r0] : -1;
    s->last_rollout_step = n ? step[r1 - 1] : -1;
    for (int64_t i = r0; i < r1; i++) s->n_rollout_steps += i == r0 || step[i] != step[i - 1];
    const int64_t span = n ? s->last_rollout_step - s->first_rollout_step : 0;
    s->early_max_step = s->first_rollout_step + span / 4;
    s->late_min_step = s->last_rollout_step - span / 4;
    s->has_mix_entropy = traj_read_has(tr, "rollouts", "mix_entropy");
    s->has_prompt_tokens = traj_read_has(tr, "rollouts", "prompt_tokens");

    float *reward = xmalloc(nn * sizeof *reward);
    int32_t *cot_len = xmalloc(nn * sizeof *cot_len), *ans_len = xmalloc(nn * sizeof *ans_len);
    int32_t *cot_stop = xmalloc(nn * sizeof *cot_stop), *ans_stop = xmalloc(nn * sizeof *ans_stop);
    int64_t *cum = xmalloc((nn + 1) * sizeof *cum), *off = xmalloc((nn + 1) * sizeof *off);
    int64_t w = 0;
    rc = traj_read_fixed(tr, "rollouts", "reward", TRAJ_F32, 1, r0, n, reward, err) ||
         traj_read_fixed(tr, "rollouts", "cot_len", TRAJ_I32, 1, r0, n, cot_len, err) ||
         traj_read_fixed(tr, "rollouts", "ans_len", TRAJ_I32, 1, r0, n, ans_len, err) ||
         traj_read_fixed(tr, "rollouts", "cot_stop", TRAJ_I32, 1, r0, n, cot_stop, err) ||
         traj_read_fixed(tr, "rollouts", "ans_stop", TRAJ_I32, 1, r0, n, ans_stop, err) ||
         traj_read_width(tr, "rollouts", "topk_probs", TRAJ_F32, &w, err);
    if (!rc && w != K)
        rc = err_set(err, "%s: /rollouts/topk_probs has width %lld, the root attribute topk says %lld", path, (long long)w,
                     (long long)K);
    int max_len = 0;
    double sum_cot = 0, sum_ans = 0;
    cum[0] = 0;
    for (int64_t i = 0; i < n && !rc; i++) {
        if (cot_len[i] < 0 || ans_len[i] < 0)
            rc = err_set(err, "%s: /rollouts row %lld: negative cot_len or ans_len (corrupted)", path, (long long)(r0 + i));
        cum[i + 1] = cum[i] + (cot_len[i] > 0 ? cot_len[i] : 0);
        max_len = cot_len[i] > max_len ? cot_len[i] : max_len;
        sum_cot += cot_len[i], sum_ans += ans_len[i];
        const float r = reward[i];
        s->n_reward[0] += r == 100.0f, s->n_reward[1] += r == 10.0f, s->n_reward[2] += r == 0.0f;
        if (cot_stop[i] >= 0 && cot_stop[i] < 3) s->n_cot_stop[cot_stop[i]]++;
        if (ans_stop[i] >= 0 && ans_stop[i] < 3) s->n_ans_stop[ans_stop[i]]++;
    }
    if (!rc && n) {
        s->mean_cot_len = sum_cot / (double)n, s->mean_ans_len = sum_ans / (double)n;
        int *sorted = xmalloc(nn * sizeof *sorted);
        for (int64_t i = 0; i < n; i++) sorted[i] = cot_len[i];
        qsort(sorted, nn, sizeof *sorted, cmp_int);
        /* nearest-rank quantiles: the smallest value with at least q of the rows <= it */
        s->cot_len_min = sorted[0], s->cot_len_max = sorted[n - 1];
        s->cot_len_median = sorted[(n + 1) / 2 - 1];
        s->cot_len_p90 = sorted[(9 * n + 9) / 10 - 1];
        free(sorted);
    }
    s->pos_bin = o->pos_bin;
    s->n_pos_bins = (max_len + o->pos_bin - 1) / o->pos_bin;
    s->bins = xcalloc((size_t)(s->n_pos_bins ? s->n_pos_bins : 1), sizeof *s->bins);
    /* Every per-position column must describe the same positions as cot_len. */
    const char *pos_cols[] = {"entropy", "topk_probs", "mix_entropy"};
    const int n_pos_cols = s->has_mix_entropy ? 3 : 2;
    int64_t v_first = 0;
    for (int c = 0; c < n_pos_cols && !rc; c++) {
        rc = check_positions(tr, pos_cols[c], cum, r0, n, off, err);
        if (!rc && c == 0) v_first = off[0];
        if (!rc && off[0] != v_first)
            rc = err_set(err, "%s: /rollouts/%s_offsets[%lld] = %lld differs from entropy_offsets (%lld) (corrupted)", path,
                         pos_cols[c], (long long)r0, (long long)off[0], (long long)v_first);
    }

    /* Stream the per-position columns in blocks of whole rows. */
    float *ent = NULL, *probs = NULL, *mix = NULL;
    int64_t i = 0;
    while (!rc && i < n) {
        int64_t j = i + 1;
        while (j < n && cum[j + 1] - cum[i] <= BLOCK_POSITIONS) j++;
        const int64_t nv = cum[j] - cum[i], v0 = v_first + cum[i];
        ent = xrealloc(ent, (size_t)(nv ? nv : 1) * sizeof *ent);
        probs = xrealloc(probs, (size_t)(nv ? nv : 1) * (size_t)K * sizeof *probs);
        if (s->has_mix_entropy) mix = xrealloc(mix, (size_t)(nv ? nv : 1) * sizeof *mix);
        rc = traj_read_values(tr, "rollouts", "entropy", TRAJ_F32, 1, v0, nv, ent, err) ||
             traj_read_values(tr, "rollouts", "topk_probs", TRAJ_F32, K, v0, nv, probs, err) ||
             (s->has_mix_entropy && traj_read_values(tr, "rollouts", "mix_entropy", TRAJ_F32, 1, v0, nv, mix, err));
        for (int64_t row = i; row < j && !rc; row++) {
            const int64_t st = step[r0 + row];
            const int early = st <= s->early_max_step, late = st >= s->late_min_step;
            for (int p = 0; p < cot_len[row]; p++) {
                const int64_t v = cum[row] - cum[i] + p;
                PosBinSums *b = &s->bins[p / o->pos_bin];
                const double h = ent[v];
                b->count++, b->entropy += h;
                if (early) b->count_early++, b->entropy_early += h;
                if (late) b->count_late++, b->entropy_late += h;
                const float *pr = probs + (size_t)v * (size_t)K;
                b->top1 += pr[0];
                for (int k = 0; k < 3 && k < K; k++) b->top3 += pr[k];
                if (mix) b->mix_entropy += mix[v], b->eff_tokens += exp((double)mix[v]);
            }
        }
        i = j;
    }
    free(ent), free(probs), free(mix);
    free(step), free(reward), free(cot_len), free(ans_len), free(cot_stop), free(ans_stop), free(cum), free(off);
    return rc ? -1 : 0;
}

static int summary_once(void *vctx, Err *err) {
    SummaryCtx *c = vctx;
    TrajReader *tr = NULL;
    if (traj_read_open(c->path, &tr, err)) return -1;
    int rc = read_root_attrs(tr, c->s, err);
    if (!rc) rc = read_steps(tr, c->o, c->s, err);
    if (!rc) rc = read_rollouts(tr, c->o, c->s, err);
    traj_read_close(tr);
    return rc;
}

static void summary_reset(void *vctx) {
    SummaryCtx *c = vctx;
    traj_summary_free(c->s);
    c->s->path = xstrdup(c->path);
}

int traj_summary_load(const char *path, const TrajSummaryOptions *o, TrajSummary *s, Err *err) {
    memset(s, 0, sizeof *s);
    s->path = xstrdup(path);
    if (o->pos_bin < 1) return err_set(err, "position bin must be at least 1");
    SummaryCtx c = {path, o, s};
    return load_with_retries(path, summary_once, summary_reset, &c, err);
}

void traj_summary_free(TrajSummary *s) {
    free(s->path), free(s->mode), free(s->softcot_version), free(s->compression), free(s->config);
    free(s->step), free(s->skipped), free(s->bins);
    for (int c = 0; c < TS_N; c++) free(s->col[c]);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ one rollout */

typedef struct {
    const char *path;
    int64_t step, index;
    TrajRollout *r;
} RolloutCtx;

/* Reads row `row` of the ragged column col (type, width) into a new buffer with one
 * extra zeroed element (so text is NUL-terminated); *n receives the element count. */
static int read_ragged_row(TrajReader *tr, const char *col, TrajType type, int64_t width, int64_t row, void **out,
                           int64_t *n, Err *err) {
    int64_t off[2];
    if (traj_read_offsets(tr, "rollouts", col, row, 1, off, err)) return -1;
    *n = off[1] - off[0];
    const size_t es = type == TRAJ_I64 ? 8 : type == TRAJ_U8 ? 1 : 4;
    *out = xcalloc((size_t)(*n + 1) * (size_t)width, es);
    return traj_read_values(tr, "rollouts", col, type, width, off[0], *n, *out, err);
}

static int rollout_once(void *vctx, Err *err) {
    RolloutCtx *c = vctx;
    TrajRollout *r = c->r;
    TrajReader *tr = NULL;
    if (traj_read_open(c->path, &tr, err)) return -1;
    int64_t N = 0, K = 0;
    int64_t *step = NULL;
    int rc = traj_read_attr_str(tr, "mode", &r->mode_name, err) || traj_read_attr_str(tr, "config", &r->config, err) ||
             traj_read_attr_i64(tr, "topk", &K, err) || traj_read_rows(tr, "rollouts", &N, err);
    if (!rc) {
        step = xmalloc((size_t)(N ? N : 1) * sizeof *step);
        rc = traj_read_fixed(tr, "rollouts", "step", TRAJ_I64, 1, 0, N, step, err);
    }
    int64_t r0 = 0, r1 = 0;
    if (!rc) {
        if (N == 0) rc = err_set(err, "%s: no rollouts recorded (traj_every = 0, or the run stopped before its first step)", c->path);
        int64_t want = c->step < 0 && N ? step[N - 1] : c->step;
        if (!rc) rc = step_rows(c->path, "rollouts", step, N, want, want, &r0, &r1, err);
        if (!rc && r0 == r1) {
            int64_t below = -1, above = -1;
            for (int64_t i = 0; i < N; i++) {
                if (step[i] < want) below = step[i];
                if (step[i] > want && above < 0) above = step[i];
            }
            char near[96] = "";
            if (below >= 0 && above >= 0) snprintf(near, sizeof near, "; the nearest are %lld and %lld", (long long)below, (long long)above);
            else if (below >= 0 || above >= 0) snprintf(near, sizeof near, "; the nearest is %lld", (long long)(below >= 0 ? below : above));
            rc = err_set(err, "%s: no rollouts recorded for step %lld (steps %lld..%lld have rollouts, every traj_every-th%s)",
                         c->path, (long long)want, (long long)step[0], (long long)step[N - 1], near);
        }
        if (!rc && (c->index < 0 || c->index >= r1 - r0))
            rc = err_set(err, "%s: step %lld has %lld rollouts (0..%lld), not %lld", c->path, (long long)want,
                         (long long)(r1 - r0), (long long)(r1 - r0 - 1), (long long)c->index);
        r->step = want;
    }
    free(step);
    const int64_t row = r0 + c->index;
    r->row = row, r->index_in_step = c->index, r->n_in_step = r1 - r0, r->topk = (int)K, r->n_prompt = -1;
    struct {
        const char *name;
        TrajType type;
        void *dst;
    } fixed[] = {
        {"prompt_index", TRAJ_I32, &r->prompt_index}, {"sample_index", TRAJ_I32, &r->sample_index},
        {"rank", TRAJ_I32, &r->rank}, {"mode", TRAJ_I32, &r->mode}, {"correct", TRAJ_I32, &r->correct},
        {"cot_len", TRAJ_I32, &r->cot_len}, {"ans_len", TRAJ_I32, &r->ans_len}, {"cot_stop", TRAJ_I32, &r->cot_stop},
        {"ans_stop", TRAJ_I32, &r->ans_stop}, {"reward", TRAJ_F32, &r->reward}, {"advantage", TRAJ_F32, &r->advantage},
        {"logp_cot", TRAJ_F32, &r->logp_cot}, {"logp_ans", TRAJ_F32, &r->logp_ans},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && !rc; i++)
        rc = traj_read_fixed(tr, "rollouts", fixed[i].name, fixed[i].type, 1, row, 1, fixed[i].dst, err);
    int64_t n = 0;
    struct {
        const char *name;
        TrajType type;
        int64_t width;
        void **dst;
        int64_t want; /* expected elements, -1 = any */
    } ragged[] = {
        {"shadow", TRAJ_I32, 1, (void **)&r->shadow, r->cot_len},
        {"topk_ids", TRAJ_I32, K, (void **)&r->topk_ids, r->cot_len},
        {"topk_probs", TRAJ_F32, K, (void **)&r->topk_probs, r->cot_len},
        {"entropy", TRAJ_F32, 1, (void **)&r->entropy, r->cot_len},
        {"noise_norm", TRAJ_F32, 1, (void **)&r->noise_norm, r->cot_len},
        {"answer_tokens", TRAJ_I32, 1, (void **)&r->answer_tokens, r->ans_len},
        {"cot_text", TRAJ_U8, 1, (void **)&r->cot_text, -1},
        {"answer_text", TRAJ_U8, 1, (void **)&r->answer_text, -1},
        {"mix_entropy", TRAJ_F32, 1, (void **)&r->mix_entropy, r->cot_len},
        {"prompt_tokens", TRAJ_I32, 1, (void **)&r->prompt_tokens, -1},
    };
    for (size_t i = 0; i < sizeof ragged / sizeof ragged[0] && !rc; i++) {
        const int optional = !strcmp(ragged[i].name, "mix_entropy") || !strcmp(ragged[i].name, "prompt_tokens");
        if (optional && !traj_read_has(tr, "rollouts", ragged[i].name)) continue;
        rc = read_ragged_row(tr, ragged[i].name, ragged[i].type, ragged[i].width, row, ragged[i].dst, &n, err);
        if (!rc && ragged[i].want >= 0 && n != ragged[i].want)
            rc = err_set(err, "%s: /rollouts/%s row %lld has %lld elements, expected %lld (corrupted)", c->path,
                         ragged[i].name, (long long)row, (long long)n, (long long)ragged[i].want);
        if (!rc && !strcmp(ragged[i].name, "cot_text")) r->cot_text_len = (size_t)n;
        if (!rc && !strcmp(ragged[i].name, "answer_text")) r->answer_text_len = (size_t)n;
        if (!rc && !strcmp(ragged[i].name, "prompt_tokens")) r->n_prompt = (int)n;
    }
    traj_read_close(tr);
    return rc ? -1 : 0;
}

static void rollout_reset(void *vctx) {
    RolloutCtx *c = vctx;
    traj_rollout_free(c->r);
    c->r->path = xstrdup(c->path);
}

int traj_rollout_load(const char *path, int64_t step, int64_t index, TrajRollout *r, Err *err) {
    memset(r, 0, sizeof *r);
    r->path = xstrdup(path);
    RolloutCtx c = {path, step, index, r};
    return load_with_retries(path, rollout_once, rollout_reset, &c, err);
}

void traj_rollout_free(TrajRollout *r) {
    free(r->path), free(r->mode_name), free(r->shadow), free(r->topk_ids), free(r->answer_tokens);
    free(r->prompt_tokens), free(r->topk_probs), free(r->entropy), free(r->mix_entropy), free(r->noise_norm);
    free(r->cot_text), free(r->answer_text), free(r->config);
    memset(r, 0, sizeof *r);
}
