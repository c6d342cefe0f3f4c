/* softcot analyze: post-hoc analysis of training runs from their HDF5 trajectory files
 * and their eval results (JSON), as compact text tables or JSON (docs/analysis.md):
 * reward and fraction correct by step, CoT/answer lengths and stop reasons,
 * log-probabilities and gradient norm, pass@k per inference mode, the entropy profile
 * by CoT position, and how concentrated soft/fuzzy mixtures are. --compare puts runs side
 * by side; --rollout prints one rollout token by token. Reads files read-only, so it can
 * run on the login node while the job still writes them. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "core/check.h"
#include "core/fileio.h"
#include "rl/eval_results.h"
#include "rl/traj_summary.h"
#include "text/tokenizer.h"

typedef struct {
    int compare, json, bin, pos_bin;
    char *rollout, *steps, *k, *tokenizer;
} AnalyzeOptions;

#define O(field) offsetof(AnalyzeOptions, field)
static const OptSpec ANALYZE_OPTS[] = {
    {"compare", OPT_BOOL, O(compare), "false", NULL, "each argument is a separate run; print the runs side by side"},
    {"rollout", OPT_STRING, O(rollout), "", NULL, "STEP:IDX: print rollout IDX (b*G+g) of training step STEP ('last' = the last step with rollouts)"},
    {"json", OPT_BOOL, O(json), "false", NULL, "print JSON (schema softcot-analyze/1) instead of tables"},
    {"bin", OPT_INT, O(bin), "0", NULL, "training steps per row of the step tables (0 = automatic: at most 20 rows)"},
    {"pos_bin", OPT_INT, O(pos_bin), "8", NULL, "CoT positions per row of the entropy and mixture profiles"},
    {"steps", OPT_STRING, O(steps), "", NULL, "FIRST:LAST: analyse only these training steps (either end may be empty)"},
    {"k", OPT_STRING, O(k), "1,2,4,8,16,32", NULL, "pass@k values to report (each mode shows those <= its samples per problem)"},
    {"tokenizer", OPT_STRING, O(tokenizer), "", NULL, "tokenizer directory for --rollout token text (default: the run's model)"},
};
#undef O
enum { N_ANALYZE_OPTS = sizeof ANALYZE_OPTS / sizeof ANALYZE_OPTS[0] };

static const char *ANALYZE_USAGE =
    "usage: softcot analyze [options] RUN_DIR_OR_FILE...\n"
    "\n"
    "Summarises training runs from their trajectory file (trajectories.h5) and eval\n"
    "results (softcot eval --out, JSON). An argument is a run directory (softcot train's\n"
    "--out, or make run's output folder: DIR/trajectories.h5 or DIR/run/trajectories.h5,\n"
    "plus every softcot eval JSON file in DIR) or a file (.h5 trajectory or eval JSON).\n"
    "Without --compare all arguments describe one run; with --compare each is a run of its\n"
    "own, printed side by side. Files are opened read-only: a run still being written or\n"
    "stopped by preemption can be analysed (the last committed step is used).\n"
    "Exit status: 0; 2 for bad usage or an unreadable, truncated or foreign file (one\n"
    "line naming the file and the dataset or field); 1 for a runtime failure.\n"
    "Guide, definitions of every number, h5py recipes: docs/analysis.md.\n"
    "\n"
    "Options (on the command line --key=value or --key value):\n";

/* ------------------------------------------------------------------ arguments */

/* Splits argv into option arguments (rewritten as --key=value so a boolean flag never
 * swallows the path after it) and positional paths. */
static int split_args(int argc, char **argv, char ***opts, int *n_opts, char ***paths, int *n_paths, int *help,
                      Err *err) {
    *opts = xcalloc((size_t)argc + 1, sizeof(char *));
    *paths = xcalloc((size_t)argc + 1, sizeof(char *));
    *n_opts = *n_paths = *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            *help = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            (*paths)[(*n_paths)++] = xstrdup(a);
            continue;
        }
        const char *eq;
        char key[128];
        const OptSpec *s = options_lookup_arg(ANALYZE_OPTS, N_ANALYZE_OPTS, a, key, sizeof key, &eq, err);
        if (!s) return -1;
        char *arg;
        if (eq || s->type == OPT_BOOL) {
            arg = xmalloc(strlen(key) + strlen(eq ? eq + 1 : "true") + 4);
            sprintf(arg, "--%s=%s", key, eq ? eq + 1 : "true");
        } else {
            if (i + 1 >= argc) return err_set(err, "option '--%s' needs a value", key);
            arg = xmalloc(strlen(key) + strlen(argv[i + 1]) + 4);
            sprintf(arg, "--%s=%s", key, argv[++i]);
        }
        (*opts)[(*n_opts)++] = arg;
    }
    return 0;
}

static void free_strv(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* "A:B", either end empty; the bounds default to the whole range. */
static int parse_step_range(const char *s, const char *what, int64_t *lo, int64_t *hi, Err *err) {
    *lo = INT64_MIN, *hi = INT64_MAX;
    if (!*s) return 0;
    const char *colon = strchr(s, ':');
    if (!colon) return err_set(err, "%s: expected FIRST:LAST (either may be empty), got '%s'", what, s);
    char a[64] = "", b[64] = "";
    size_t la = (size_t)(colon - s);
    if (la >= sizeof a || strlen(colon + 1) >= sizeof b) return err_set(err, "%s: '%s' is too long", what, s);
    memcpy(a, s, la);
    strcpy(b, colon + 1);
    long v;
    if (*a) {
        if (parse_int(a, what, 0, LONG_MAX, &v, err)) return -1;
        *lo = v;
    }
    if (*b) {
        if (parse_int(b, what, 0, LONG_MAX, &v, err)) return -1;
        *hi = v;
    }
    if (*lo > *hi) return err_set(err, "%s: FIRST %lld is after LAST %lld", what, (long long)*lo, (long long)*hi);
    return 0;
}

/* ------------------------------------------------------------------ runs */

typedef struct {
    char *arg;   /* as given (a directory or the first file) */
    char *label; /* column header in --compare */
    char *traj_path;
    int has_traj;
    TrajSummary traj;
    int n_evals;
    char **eval_paths;
    EvalResults *evals;
} Run;

/* 1 HDF5 (signature at offset 0, where softcot writes it), 0 other, -1 unreadable. */
static int sniff_hdf5(const char *path, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    unsigned char sig[8] = {0};
    size_t n = fread(sig, 1, sizeof sig, f);
    fclose(f);
    return n == 8 && !memcmp(sig, "\211HDF\r\n\032\n", 8);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void run_add_eval(Run *r, const char *path) {
    r->eval_paths = xrealloc(r->eval_paths, (size_t)(r->n_evals + 1) * sizeof *r->eval_paths);
    r->eval_paths[r->n_evals++] = xstrdup(path);
}

static int run_add_traj(Run *r, const char *path, Err *err) {
    if (r->traj_path)
        return err_set(err, "%s: a second trajectory file for one run (the first is %s); analyse runs side by side with --compare",
                       path, r->traj_path);
    r->traj_path = xstrdup(path);
    return 0;
}

/* Adds what path holds to r: a directory's trajectory and eval files, or one file. */
static int run_add_path(Run *r, const char *path, Err *err) {
    struct stat st;
    if (stat(path, &st) != 0) return err_set(err, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        int h5 = sniff_hdf5(path, err);
        if (h5 < 0) return -1;
        if (h5) return run_add_traj(r, path, err);
        char *text = NULL;
        if (file_read_all(path, &text, NULL, err)) return -1;
        const char *p = text;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        const int json_object = *p == '{';
        free(text);
        if (!json_object)
            return err_set(err, "%s: neither a softcot trajectory (HDF5) nor an eval results file (JSON)", path);
        run_add_eval(r, path); /* JSON: parsing it says whether it is eval results */
        return 0;
    }
    char *t = path_join(path, "trajectories.h5");
    if (!file_exists(t)) {
        free(t);
        char *sub = path_join(path, "run");
        t = path_join(sub, "trajectories.h5");
        free(sub);
    }
    int rc = file_exists(t) ? run_add_traj(r, t, err) : 0;
    free(t);
    if (rc) return -1;
    DIR *dir = opendir(path);
    if (!dir) return err_set(err, "%s: cannot list: %s", path, strerror(errno));
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t len = strlen(e->d_name);
        if (len > 5 && !strcmp(e->d_name + len - 5, ".json")) {
            names = xrealloc(names, (size_t)(n + 1) * sizeof *names);
            names[n++] = path_join(path, e->d_name);
        }
    }
    closedir(dir);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    int found = 0;
    for (int i = 0; i < n; i++) {
        char *text = NULL;
        Err ignore;
        /* A directory may hold other JSON (tokenizer files, configs): take only eval results. */
        if (file_read_all(names[i], &text, NULL, &ignore) == 0 && eval_results_sniff(text)) run_add_eval(r, names[i]), found++;
        free(text);
        free(names[i]);
    }
    free(names);
    if (!r->traj_path && !found)
        return err_set(err, "%s: no trajectories.h5 (or run/trajectories.h5) and no softcot eval results (*.json) in this directory",
                       path);
    return 0;
}

static void run_free(Run *r) {
    free(r->arg), free(r->label), free(r->traj_path);
    if (r->has_traj) traj_summary_free(&r->traj);
    for (int i = 0; i < r->n_evals; i++) {
        free(r->eval_paths[i]);
        if (r->evals) eval_results_free(&r->evals[i]);
    }
    free(r->eval_paths), free(r->evals);
}

static int run_load(Run *r, const TrajSummaryOptions *to, Err *err) {
    if (r->traj_path) {
        if (traj_summary_load(r->traj_path, to, &r->traj, err)) {
            traj_summary_free(&r->traj);
            return -1;
        }
        r->has_traj = 1;
    }
    r->evals = xcalloc((size_t)(r->n_evals ? r->n_evals : 1), sizeof *r->evals);
    for (int i = 0; i < r->n_evals; i++)
        if (eval_results_load(r->eval_paths[i], &r->evals[i], err)) return -1;
    return 0;
}

/* The value of `key = value` in a config dump (options_dump's format), malloc'ed, or NULL. */
static char *config_value(const char *config, const char *key) {
    if (!config) return NULL;
    const size_t kl = strlen(key);
    for (const char *line = config; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *p = line;
        while (*p == ' ') p++;
        if (strncmp(p, key, kl) != 0) continue;
        p += kl;
        while (*p == ' ' || *p == '\t') p++;
        if (*p != '=') continue;
        p++;
        while (*p == ' ' || *p == '\t') p++;
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\r')) n--;
        if (n >= 2 && p[0] == '"' && p[n - 1] == '"') p++, n -= 2;
        char *v = xmalloc(n + 1);
        memcpy(v, p, n);
        v[n] = '\0';
        return v;
    }
    return NULL;
}

/* The eval file's stem: "outputs/x/eval_after.json" -> "eval_after". */
static char *eval_stem(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".json")) n -= 5;
    char *s = xmalloc(n + 1);
    memcpy(s, b, n);
    s[n] = '\0';
    return s;
}

/* Which model an eval file scored: "<mode>-trained (this run)" when the model directory
 * lies inside the run's output directory, else the directory as recorded. */
static char *eval_model_label(const Run *r, const EvalResults *e) {
    char *out = r->has_traj ? config_value(r->traj.config, "out") : NULL;
    size_t n = out ? strlen(out) : 0;
    while (n > 1 && out[n - 1] == '/') n--;
    char *label;
    if (out && n && !strncmp(e->model_dir, out, n) && (e->model_dir[n] == '/' || !e->model_dir[n])) {
        label = xmalloc(strlen(r->traj.mode) + 32);
        sprintf(label, "%s-trained (this run)", r->traj.mode);
    } else {
        label = xstrdup(e->model_dir);
    }
    free(out);
    return label;
}

/* ------------------------------------------------------------------ text tables */

typedef struct {
    int n_cols, n_rows, cap;
    unsigned left; /* bit c: column c is text, left-aligned (numbers are right-aligned) */
    char ***rows;  /* rows[0] is the header */
} Table;

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0) FATAL("out of memory");
    va_end(ap);
    return s;
}

static char *fnum(double v, int prec) { return isfinite(v) ? fmt("%.*f", prec, v) : xstrdup("-"); }
static char *fsci(double v) { return isfinite(v) ? fmt("%.3g", v) : xstrdup("-"); }

static Table *table_new(int n_cols) {
    Table *t = xcalloc(1, sizeof *t);
    t->n_cols = n_cols;
    t->left = 1;
    return t;
}

/* Appends a row of n_cols cells (owned strings; NULL prints as empty). */
static char **table_row(Table *t) {
    if (t->n_rows == t->cap) t->rows = xrealloc(t->rows, (size_t)(t->cap = t->cap ? 2 * t->cap : 16) * sizeof *t->rows);
    return t->rows[t->n_rows++] = xcalloc((size_t)t->n_cols, sizeof(char *));
}

/* Display width in columns: UTF-8 continuation bytes take none. */
static int text_width(const char *s) {
    int w = 0;
    for (; s && *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* Prints with each column as wide as its widest cell; frees t. */
static void table_print(Table *t, FILE *out) {
    int *w = xcalloc((size_t)t->n_cols, sizeof *w);
    for (int r = 0; r < t->n_rows; r++)
        for (int c = 0; c < t->n_cols; c++) {
            int n = text_width(t->rows[r][c]);
            w[c] = n > w[c] ? n : w[c];
        }
    char *line = NULL;
    size_t cap = 0;
    for (int r = 0; r < t->n_rows; r++) {
        size_t n = 0;
        for (int c = 0; c < t->n_cols; c++) {
            const char *s = t->rows[r][c] ? t->rows[r][c] : "";
            const size_t len = strlen(s), pad = (size_t)(w[c] - text_width(s)), need = n + len + pad + 3;
            if (need > cap) line = xrealloc(line, cap = 2 * need);
            if (c) line[n++] = ' ', line[n++] = ' ';
            if (!(t->left >> c & 1)) memset(line + n, ' ', pad), n += pad;
            memcpy(line + n, s, len), n += len;
            if (t->left >> c & 1) memset(line + n, ' ', pad), n += pad;
        }
        while (n && line[n - 1] == ' ') n--; /* empty cells at the end leave no trailing blanks */
        fwrite(line, 1, n, out);
        fputc('\n', out);
        for (int c = 0; c < t->n_cols; c++) free(t->rows[r][c]);
        free(t->rows[r]);
    }
    free(line), free(t->rows), free(w), free(t);
}

/* ------------------------------------------------------------------ step bins */

typedef struct {
    int64_t first, last, n; /* steps, and how many steps the row averages */
    double v[TS_N];         /* mean over finite values (NAN if none) */
    int64_t skipped;
} StepRow;

/* Rows of `bin` steps each (step / bin), over the steps the run has. */
static StepRow *step_rows(const TrajSummary *s, int bin, int *n_rows) {
    StepRow *rows = NULL;
    int n = 0;
    int cnt[TS_N] = {0};
    for (int64_t i = 0; i < s->n_steps; i++) {
        const int64_t b = s->step[i] / bin;
        if (!n || rows[n - 1].first / bin != b) {
            if (n) {
                for (int c = 0; c < TS_N; c++) rows[n - 1].v[c] = cnt[c] ? rows[n - 1].v[c] / cnt[c] : NAN;
            }
            rows = xrealloc(rows, (size_t)(n + 1) * sizeof *rows);
            memset(&rows[n], 0, sizeof rows[n]);
            rows[n].first = s->step[i];
            memset(cnt, 0, sizeof cnt);
            n++;
        }
        StepRow *r = &rows[n - 1];
        r->last = s->step[i];
        r->n++;
        r->skipped += s->skipped[i] != 0;
        for (int c = 0; c < TS_N; c++) {
            const float v = s->col[c][i];
            if (isfinite(v)) r->v[c] += v, cnt[c]++;
        }
    }
    if (n)
        for (int c = 0; c < TS_N; c++) rows[n - 1].v[c] = cnt[c] ? rows[n - 1].v[c] / cnt[c] : NAN;
    *n_rows = n;
    return rows;
}

/* At most 20 rows over steps 0..last_step. */
static int auto_bin(int64_t last_step) {
    int64_t span = last_step + 1;
    int64_t b = (span + 19) / 20;
    return b < 1 ? 1 : (int)b;
}

static char *steps_label(const StepRow *r) {
    return r->first == r->last ? fmt("%lld", (long long)r->first) : fmt("%lld-%lld", (long long)r->first, (long long)r->last);
}

/* ------------------------------------------------------------------ single-run text */

static double share(int64_t a, int64_t n) { return n > 0 ? (double)a / (double)n : NAN; }

static void print_run_header(const Run *r, FILE *out) {
    const TrajSummary *s = &r->traj;
    fprintf(out, "trajectory %s\n", s->path);
    fprintf(out, "  mode %s, B=%lld prompts x G=%lld samples, top-k %lld, written by %lld rank(s), softcot %s, format %lld\n",
            s->mode, (long long)s->batch_prompts, (long long)s->group_size, (long long)s->topk, (long long)s->world_size,
            s->softcot_version, (long long)s->format_version);
    char *steps = config_value(s->config, "steps");
    if (s->n_steps)
        fprintf(out, "  %lld step rows (steps %lld..%lld of %s planned)", (long long)s->n_steps, (long long)s->step[0],
                (long long)s->step[s->n_steps - 1], steps ? steps : "?");
    else
        fprintf(out, "  no step rows in range (%lld in the file)", (long long)s->n_steps_total);
    fprintf(out, "; %lld rollout rows from %lld step(s)\n", (long long)s->n_rollouts, (long long)s->n_rollout_steps);
    free(steps);
}

static void print_step_tables(const TrajSummary *s, int bin, FILE *out) {
    int n;
    StepRow *rows = step_rows(s, bin, &n);
    if (!n) {
        free(rows);
        return;
    }
    fprintf(out, "\n== training curve (/steps; each row is the mean over its steps, %d per row)\n", bin);
    Table *t = table_new(9);
    char **h = table_row(t);
    const char *hd[] = {"steps", "reward", "correct", "cot_len", "ans_len", "stop:str", "len", "eos", "skipped"};
    for (int c = 0; c < 9; c++) h[c] = xstrdup(hd[c]);
    for (int i = 0; i < n; i++) {
        char **c = table_row(t);
        const StepRow *r = &rows[i];
        c[0] = steps_label(r), c[1] = fnum(r->v[TS_REWARD_MEAN], 2), c[2] = fnum(r->v[TS_FRAC_CORRECT], 3);
        c[3] = fnum(r->v[TS_COT_LEN], 1), c[4] = fnum(r->v[TS_ANS_LEN], 2), c[5] = fnum(r->v[TS_STOP_STRING], 3);
        c[6] = fnum(r->v[TS_STOP_LENGTH], 3), c[7] = fnum(r->v[TS_STOP_EOS], 3), c[8] = fmt("%lld", (long long)r->skipped);
    }
    table_print(t, out);
    fprintf(out, "\n== log-probabilities (nats per rollout) and optimisation (/steps)\n");
    t = table_new(8);
    h = table_row(t);
    const char *hd2[] = {"steps", "logp_cot", "logp_ans", "loss", "grad_norm", "lr", "sigma", "s/step"};
    for (int c = 0; c < 8; c++) h[c] = xstrdup(hd2[c]);
    for (int i = 0; i < n; i++) {
        char **c = table_row(t);
        const StepRow *r = &rows[i];
        c[0] = steps_label(r), c[1] = fnum(r->v[TS_LOGP_COT], 2), c[2] = fnum(r->v[TS_LOGP_ANS], 3);
        c[3] = fsci(r->v[TS_LOSS]), c[4] = fsci(r->v[TS_GRAD_NORM]), c[5] = fsci(r->v[TS_LR]);
        c[6] = fsci(r->v[TS_SIGMA]), c[7] = fnum(r->v[TS_STEP_SECONDS], 2);
    }
    table_print(t, out);
    free(rows);
}

static void print_rollout_summary(const TrajSummary *s, FILE *out) {
    if (!s->n_rollouts) {
        fprintf(out, "\n(no rollout rows in the analysed steps: traj_every = 0, or the range has none)\n");
        return;
    }
    const int64_t n = s->n_rollouts;
    fprintf(out, "\n== rollouts (/rollouts: %lld rows of steps %lld..%lld)\n", (long long)n, (long long)s->first_rollout_step,
            (long long)s->last_rollout_step);
    fprintf(out, "reward            100: %.1f%%   10 (boxed, wrong): %.1f%%   0 (no box): %.1f%%\n",
            100 * share(s->n_reward[0], n), 100 * share(s->n_reward[1], n), 100 * share(s->n_reward[2], n));
    fprintf(out, "CoT ended by      stop string: %.1f%%   cot_max: %.1f%%   EOS: %.1f%%\n", 100 * share(s->n_cot_stop[0], n),
            100 * share(s->n_cot_stop[1], n), 100 * share(s->n_cot_stop[2], n));
    fprintf(out, "CoT length        mean %.1f   min %d   median %d   p90 %d   max %d positions\n", s->mean_cot_len,
            s->cot_len_min, s->cot_len_median, s->cot_len_p90, s->cot_len_max);
    fprintf(out, "answer ended by   closing brace: %.1f%%   EOS: %.1f%%   ans_max: %.1f%%   (mean length %.2f tokens)\n",
            100 * share(s->n_ans_stop[0], n), 100 * share(s->n_ans_stop[1], n), 100 * share(s->n_ans_stop[2], n),
            s->mean_ans_len);
}

static char *pos_label(const TrajSummary *s, int b) { return fmt("%d-%d", b * s->pos_bin, (b + 1) * s->pos_bin - 1); }

static double mean_of(double sum, int64_t n) { return n > 0 ? sum / (double)n : NAN; }

static void print_entropy_profile(const TrajSummary *s, FILE *out) {
    if (!s->n_pos_bins) return;
    fprintf(out,
            "\n== entropy of the next-token distribution softmax(z) by CoT position (nats; mean over rollouts and positions)\n"
            "   early = steps %lld..%lld, late = steps %lld..%lld (first and last quarter of the rollout steps)\n",
            (long long)s->first_rollout_step, (long long)s->early_max_step, (long long)s->late_min_step,
            (long long)s->last_rollout_step);
    Table *t = table_new(6);
    char **h = table_row(t);
    const char *hd[] = {"positions", "count", "all", "early", "late", "late-early"};
    for (int c = 0; c < 6; c++) h[c] = xstrdup(hd[c]);
    for (int b = 0; b < s->n_pos_bins; b++) {
        const PosBinSums *p = &s->bins[b];
        char **c = table_row(t);
        const double e = mean_of(p->entropy_early, p->count_early), l = mean_of(p->entropy_late, p->count_late);
        c[0] = pos_label(s, b), c[1] = fmt("%lld", (long long)p->count), c[2] = fnum(mean_of(p->entropy, p->count), 3);
        c[3] = fnum(e, 3), c[4] = fnum(l, 3), c[5] = isfinite(e) && isfinite(l) ? fmt("%+.3f", l - e) : xstrdup("-");
    }
    table_print(t, out);
}

static int mode_is_mixture(const char *mode) { return !strcmp(mode, "soft") || !strcmp(mode, "fuzzy"); }

static void print_mixture(const TrajSummary *s, FILE *out) {
    if (!s->n_pos_bins || !mode_is_mixture(s->mode)) return;
    char key[16];
    snprintf(key, sizeof key, "tau_%s", s->mode);
    char *tau = config_value(s->config, key);
    fprintf(out,
            "\n== %s mixture weights softmax(z/tau), tau = %s, by CoT position (mean over rollouts and positions)\n"
            "   top-1 / top-3: weight of the largest / three largest tokens; eff.tokens: exp(entropy of the mixture)\n",
            s->mode, tau ? tau : "?");
    free(tau);
    Table *t = table_new(5);
    char **h = table_row(t);
    const char *hd[] = {"positions", "top-1", "top-3", "eff.tokens", "H_mix"};
    for (int c = 0; c < 5; c++) h[c] = xstrdup(hd[c]);
    for (int b = 0; b < s->n_pos_bins; b++) {
        const PosBinSums *p = &s->bins[b];
        char **c = table_row(t);
        c[0] = pos_label(s, b), c[1] = fnum(mean_of(p->top1, p->count), 3), c[2] = fnum(mean_of(p->top3, p->count), 3);
        c[3] = s->has_mix_entropy ? fnum(mean_of(p->eff_tokens, p->count), 2) : xstrdup("-");
        c[4] = s->has_mix_entropy ? fnum(mean_of(p->mix_entropy, p->count), 3) : xstrdup("-");
    }
    table_print(t, out);
    if (!s->has_mix_entropy)
        fprintf(out, "   (this file predates the mix_entropy column: no effective number of tokens)\n");
}

/* ------------------------------------------------------------------ eval tables */

typedef struct {
    int *k, n;
} KList;

/* The ks to show for a set of modes: the requested ones that some mode can report. */
static KList ks_shown(const KList *want, Run *runs, int n_runs) {
    KList out = {xcalloc((size_t)(want->n ? want->n : 1), sizeof(int)), 0};
    for (int i = 0; i < want->n; i++) {
        int any = 0;
        for (int r = 0; r < n_runs && !any; r++)
            for (int e = 0; e < runs[r].n_evals && !any; e++)
                for (int m = 0; m < runs[r].evals[e].n_modes && !any; m++) {
                    const EvalModeResult *mr = &runs[r].evals[e].modes[m];
                    any = mr->sample && want->k[i] <= mr->samples_per_problem;
                }
        if (any) out.k[out.n++] = want->k[i];
    }
    return out;
}

static void print_passk(Run *runs, int n_runs, const KList *want, FILE *out) {
    int any = 0;
    for (int r = 0; r < n_runs; r++) any |= runs[r].n_evals > 0;
    if (!any) return;
    KList ks = ks_shown(want, runs, n_runs);
    fprintf(out, "\n== pass@k by inference mode (eval files; unbiased estimator from the per-problem correct counts)\n");
    const int nc = 6 + ks.n;
    Table *t = table_new(nc);
    t->left = 7;
    char **h = table_row(t);
    h[0] = xstrdup(n_runs > 1 ? "run/eval" : "eval"), h[1] = xstrdup("model"), h[2] = xstrdup("mode");
    h[3] = xstrdup("problems"), h[4] = xstrdup("n"), h[5] = xstrdup("greedy@1");
    for (int i = 0; i < ks.n; i++) h[6 + i] = fmt("pass@%d", ks.k[i]);
    for (int r = 0; r < n_runs; r++)
        for (int e = 0; e < runs[r].n_evals; e++) {
            const EvalResults *er = &runs[r].evals[e];
            char *stem = eval_stem(er->path);
            for (int m = 0; m < er->n_modes; m++) {
                const EvalModeResult *mr = &er->modes[m];
                char **c = table_row(t);
                c[0] = n_runs > 1 ? fmt("%s/%s", runs[r].label, stem) : xstrdup(stem);
                c[1] = eval_model_label(&runs[r], er);
                c[2] = fmt("%s%s", mr->name, er->complete ? "" : "*");
                c[3] = fmt("%d", mr->n_problems), c[4] = fmt("%d", mr->samples_per_problem);
                c[5] = mr->sample ? xstrdup("") : fnum(mr->greedy_pass_at_1, 3);
                for (int i = 0; i < ks.n; i++)
                    c[6 + i] = mr->sample ? fnum(eval_results_pass_at_k(mr, ks.k[i]), 3) : xstrdup("");
            }
            free(stem);
        }
    table_print(t, out);
    int partial = 0;
    for (int r = 0; r < n_runs; r++)
        for (int e = 0; e < runs[r].n_evals; e++) partial |= !runs[r].evals[e].complete;
    if (partial) fprintf(out, "   * from an eval that was stopped before it finished (\"complete\": false)\n");
    free(ks.k);

    fprintf(out, "\n== eval CoT statistics (per mode: mean CoT length, how CoTs ended, mean entropy of softmax(z) in nats)\n");
    t = table_new(9);
    t->left = 3;
    h = table_row(t);
    const char *hd[] = {n_runs > 1 ? "run/eval" : "eval", "mode", "correct", "boxed", "cot_len", "stop:str", "len", "eos", "entropy"};
    for (int c = 0; c < 9; c++) h[c] = xstrdup(hd[c]);
    for (int r = 0; r < n_runs; r++)
        for (int e = 0; e < runs[r].n_evals; e++) {
            const EvalResults *er = &runs[r].evals[e];
            char *stem = eval_stem(er->path);
            for (int m = 0; m < er->n_modes; m++) {
                const EvalModeResult *mr = &er->modes[m];
                char **c = table_row(t);
                c[0] = n_runs > 1 ? fmt("%s/%s", runs[r].label, stem) : xstrdup(stem);
                c[1] = xstrdup(mr->name), c[2] = fnum(mr->frac_correct, 3), c[3] = fnum(mr->frac_boxed, 3);
                c[4] = fnum(mr->mean_cot_len, 1), c[5] = fnum(mr->frac_stop_string, 3), c[6] = fnum(mr->frac_stop_length, 3);
                c[7] = fnum(mr->frac_stop_eos, 3), c[8] = fnum(mr->mean_entropy, 3);
            }
            free(stem);
        }
    table_print(t, out);

    /* OOD multiple choice, the paper's Table 2 */
    int n_ood = 0;
    for (int r = 0; r < n_runs; r++)
        for (int e = 0; e < runs[r].n_evals; e++) n_ood += runs[r].evals[e].n_ood;
    if (!n_ood) return;
    fprintf(out, "\n== out-of-domain multiple choice (accuracy; NLL of the correct choice, nats per token)\n");
    t = table_new(6);
    t->left = 3;
    h = table_row(t);
    const char *hd3[] = {n_runs > 1 ? "run/eval" : "eval", "file", "items", "accuracy", "acc/token", "nll/token"};
    for (int c = 0; c < 6; c++) h[c] = xstrdup(hd3[c]);
    for (int r = 0; r < n_runs; r++)
        for (int e = 0; e < runs[r].n_evals; e++) {
            const EvalResults *er = &runs[r].evals[e];
            char *stem = eval_stem(er->path);
            for (int o = 0; o < er->n_ood; o++) {
                const EvalOodResult *od = &er->ood[o];
                const char *base = strrchr(od->file, '/');
                char **c = table_row(t);
                c[0] = n_runs > 1 ? fmt("%s/%s", runs[r].label, stem) : xstrdup(stem);
                c[1] = xstrdup(base ? base + 1 : od->file), c[2] = fmt("%d", od->n_items);
                c[3] = fnum(od->accuracy, 3), c[4] = fnum(od->accuracy_per_token, 3), c[5] = fnum(od->nll_per_token, 4);
            }
            free(stem);
        }
    table_print(t, out);
}

/* Entropy profiles of every eval mode, one column each, by CoT position. */
static void print_eval_entropy(Run *runs, int n_runs, FILE *out) {
    int n_cols = 0, n_bins = 0, bin = 0, mixed = 0;
    for (int r = 0; r < n_runs; r++)
        for (int e = 0; e < runs[r].n_evals; e++)
            for (int m = 0; m < runs[r].evals[e].n_modes; m++) {
                const EvalModeResult *mr = &runs[r].evals[e].modes[m];
                n_cols++;
                n_bins = mr->n_entropy_bins > n_bins ? mr->n_entropy_bins : n_bins;
                if (bin && mr->entropy_bin != bin) mixed = 1;
                bin = mr->entropy_bin;
            }
    if (!n_cols || !n_bins) return;
    if (mixed) {
        fprintf(out, "\n(eval entropy profiles use different bin widths; see --json)\n");
        return;
    }
    fprintf(out, "\n== eval entropy of softmax(z) by CoT position (nats), per eval file and mode\n");
    Table *t = table_new(1 + n_cols);
    char **h1 = table_row(t), **h2 = table_row(t);
    h1[0] = xstrdup(""), h2[0] = xstrdup("positions");
    int col = 1;
    for (int r = 0; r < n_runs; r++)
        for (int e = 0; e < runs[r].n_evals; e++) {
            char *stem = eval_stem(runs[r].evals[e].path);
            for (int m = 0; m < runs[r].evals[e].n_modes; m++, col++) {
                h1[col] = n_runs > 1 ? fmt("%s/%s", runs[r].label, stem) : xstrdup(stem);
                h2[col] = xstrdup(runs[r].evals[e].modes[m].name);
            }
            free(stem);
        }
    for (int b = 0; b < n_bins; b++) {
        char **c = table_row(t);
        c[0] = fmt("%d-%d", b * bin, (b + 1) * bin - 1);
        col = 1;
        for (int r = 0; r < n_runs; r++)
            for (int e = 0; e < runs[r].n_evals; e++)
                for (int m = 0; m < runs[r].evals[e].n_modes; m++, col++) {
                    const EvalModeResult *mr = &runs[r].evals[e].modes[m];
                    c[col] = b < mr->n_entropy_bins ? fnum(mr->entropy_mean[b], 3) : xstrdup("-");
                }
    }
    table_print(t, out);
}

/* ------------------------------------------------------------------ --compare text */

static void print_compare(Run *runs, int n_runs, int bin, int pos_bin, FILE *out) {
    fprintf(out, "runs:\n");
    for (int r = 0; r < n_runs; r++) {
        fprintf(out, "  %-10s %s", runs[r].label, runs[r].arg);
        if (runs[r].has_traj)
            fprintf(out, "  (%s, %lld steps, B=%lld x G=%lld)", runs[r].traj.mode, (long long)runs[r].traj.n_steps,
                    (long long)runs[r].traj.batch_prompts, (long long)runs[r].traj.group_size);
        if (runs[r].n_evals) fprintf(out, "  + %d eval file(s)", runs[r].n_evals);
        fputc('\n', out);
    }
    /* training curves, one column per run, rows aligned on step bins */
    StepRow **rows = xcalloc((size_t)n_runs, sizeof *rows);
    int *nr = xcalloc((size_t)n_runs, sizeof *nr), any = 0;
    int64_t max_bin = -1;
    for (int r = 0; r < n_runs; r++)
        if (runs[r].has_traj) {
            rows[r] = step_rows(&runs[r].traj, bin, &nr[r]);
            any |= nr[r] > 0;
            if (nr[r] && rows[r][nr[r] - 1].first / bin > max_bin) max_bin = rows[r][nr[r] - 1].first / bin;
        }
    struct {
        const char *title;
        TrajStepCol col;
        int prec;
    } curves[] = {
        {"reward (mean per rollout, 0/10/100 scale)", TS_REWARD_MEAN, 2},
        {"fraction correct", TS_FRAC_CORRECT, 3},
        {"CoT length (positions)", TS_COT_LEN, 1},
        {"CoT log-probability term (nats per rollout)", TS_LOGP_COT, 2},
        {"gradient norm", TS_GRAD_NORM, -1},
    };
    for (size_t cv = 0; any && cv < sizeof curves / sizeof curves[0]; cv++) {
        fprintf(out, "\n== %s by training step (mean over each row's %d step(s))\n", curves[cv].title, bin);
        Table *t = table_new(1 + n_runs);
        char **h = table_row(t);
        h[0] = xstrdup("steps");
        for (int r = 0; r < n_runs; r++) h[1 + r] = xstrdup(runs[r].label);
        int *at = xcalloc((size_t)n_runs, sizeof *at);
        for (int64_t b = 0; b <= max_bin; b++) {
            int have = 0;
            for (int r = 0; r < n_runs; r++) have |= at[r] < nr[r] && rows[r][at[r]].first / bin == b;
            if (!have) continue;
            char **c = table_row(t);
            c[0] = bin == 1 ? fmt("%lld", (long long)b) : fmt("%lld-%lld", (long long)(b * bin), (long long)((b + 1) * bin - 1));
            for (int r = 0; r < n_runs; r++) {
                if (at[r] < nr[r] && rows[r][at[r]].first / bin == b) {
                    const double v = rows[r][at[r]].v[curves[cv].col];
                    c[1 + r] = curves[cv].prec < 0 ? fsci(v) : fnum(v, curves[cv].prec);
                } else {
                    c[1 + r] = xstrdup("-");
                }
            }
            for (int r = 0; r < n_runs; r++)
                if (at[r] < nr[r] && rows[r][at[r]].first / bin == b) at[r]++;
        }
        free(at);
        table_print(t, out);
    }
    for (int r = 0; r < n_runs; r++) free(rows[r]);
    free(rows), free(nr);

    /* rollout statistics side by side */
    int any_roll = 0, max_bins = 0;
    for (int r = 0; r < n_runs; r++)
        if (runs[r].has_traj && runs[r].traj.n_rollouts) {
            any_roll = 1;
            max_bins = runs[r].traj.n_pos_bins > max_bins ? runs[r].traj.n_pos_bins : max_bins;
        }
    if (!any_roll) return;
    fprintf(out, "\n== rollouts (all analysed rollout rows of each run)\n");
    Table *t = table_new(1 + n_runs);
    char **h = table_row(t);
    h[0] = xstrdup("");
    for (int r = 0; r < n_runs; r++) h[1 + r] = xstrdup(runs[r].label);
    const char *names[] = {"rows", "reward 100", "reward 10", "reward 0", "CoT stop string", "CoT cot_max", "CoT EOS",
                           "CoT length mean", "CoT length median", "answer length mean"};
    for (int i = 0; i < 10; i++) {
        char **c = table_row(t);
        c[0] = xstrdup(names[i]);
        for (int r = 0; r < n_runs; r++) {
            const TrajSummary *s = &runs[r].traj;
            if (!runs[r].has_traj || !s->n_rollouts) {
                c[1 + r] = xstrdup("-");
                continue;
            }
            const int64_t n = s->n_rollouts;
            switch (i) {
            case 0: c[1 + r] = fmt("%lld", (long long)n); break;
            case 1: case 2: case 3: c[1 + r] = fmt("%.1f%%", 100 * share(s->n_reward[i - 1], n)); break;
            case 4: case 5: case 6: c[1 + r] = fmt("%.1f%%", 100 * share(s->n_cot_stop[i - 4], n)); break;
            case 7: c[1 + r] = fnum(s->mean_cot_len, 1); break;
            case 8: c[1 + r] = fmt("%d", s->cot_len_median); break;
            default: c[1 + r] = fnum(s->mean_ans_len, 2); break;
            }
        }
    }
    table_print(t, out);

    /* per-position profiles: entropy for every run, mixture concentration for soft/fuzzy */
    fprintf(out, "\n== entropy of softmax(z) by CoT position (nats; all analysed rollouts; late = last quarter of the steps)\n");
    t = table_new(1 + 2 * n_runs);
    char **h1 = table_row(t), **h2 = table_row(t);
    h1[0] = xstrdup(""), h2[0] = xstrdup("positions");
    for (int r = 0; r < n_runs; r++) {
        h1[1 + 2 * r] = xstrdup(runs[r].label), h1[2 + 2 * r] = xstrdup("");
        h2[1 + 2 * r] = xstrdup("all"), h2[2 + 2 * r] = xstrdup("late");
    }
    for (int b = 0; b < max_bins; b++) {
        char **c = table_row(t);
        c[0] = fmt("%d-%d", b * pos_bin, (b + 1) * pos_bin - 1);
        for (int r = 0; r < n_runs; r++) {
            const TrajSummary *s = &runs[r].traj;
            const PosBinSums *p = runs[r].has_traj && b < s->n_pos_bins ? &s->bins[b] : NULL;
            c[1 + 2 * r] = p ? fnum(mean_of(p->entropy, p->count), 3) : xstrdup("-");
            c[2 + 2 * r] = p ? fnum(mean_of(p->entropy_late, p->count_late), 3) : xstrdup("-");
        }
    }
    table_print(t, out);
    int n_mix = 0;
    for (int r = 0; r < n_runs; r++) n_mix += runs[r].has_traj && runs[r].traj.n_rollouts && mode_is_mixture(runs[r].traj.mode);
    if (!n_mix) return;
    fprintf(out, "\n== soft/fuzzy mixture weights by CoT position: mean top-1 weight, effective tokens exp(H_mix)\n");
    t = table_new(1 + 2 * n_mix);
    h1 = table_row(t), h2 = table_row(t);
    h1[0] = xstrdup(""), h2[0] = xstrdup("positions");
    int col = 1;
    for (int r = 0; r < n_runs; r++)
        if (runs[r].has_traj && runs[r].traj.n_rollouts && mode_is_mixture(runs[r].traj.mode)) {
            h1[col] = xstrdup(runs[r].label), h1[col + 1] = xstrdup("");
            h2[col] = xstrdup("top-1"), h2[col + 1] = xstrdup("eff.tokens");
            col += 2;
        }
    for (int b = 0; b < max_bins; b++) {
        char **c = table_row(t);
        c[0] = fmt("%d-%d", b * pos_bin, (b + 1) * pos_bin - 1);
        col = 1;
        for (int r = 0; r < n_runs; r++) {
            const TrajSummary *s = &runs[r].traj;
            if (!(runs[r].has_traj && s->n_rollouts && mode_is_mixture(s->mode))) continue;
            const PosBinSums *p = b < s->n_pos_bins ? &s->bins[b] : NULL;
            c[col] = p ? fnum(mean_of(p->top1, p->count), 3) : xstrdup("-");
            c[col + 1] = p && s->has_mix_entropy ? fnum(mean_of(p->eff_tokens, p->count), 2) : xstrdup("-");
            col += 2;
        }
    }
    table_print(t, out);
}

/* ------------------------------------------------------------------ JSON */

static cJSON *jnum(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *traj_json(const TrajSummary *s, int bin) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", s->path);
    cJSON_AddStringToObject(o, "mode", s->mode);
    cJSON_AddNumberToObject(o, "batch_prompts", (double)s->batch_prompts);
    cJSON_AddNumberToObject(o, "group_size", (double)s->group_size);
    cJSON_AddNumberToObject(o, "topk", (double)s->topk);
    cJSON_AddNumberToObject(o, "world_size", (double)s->world_size);
    cJSON_AddNumberToObject(o, "format_version", (double)s->format_version);
    cJSON_AddStringToObject(o, "softcot_version", s->softcot_version);
    cJSON_AddNumberToObject(o, "n_steps_in_file", (double)s->n_steps_total);
    cJSON_AddNumberToObject(o, "n_rollouts_in_file", (double)s->n_rollouts_total);
    int n;
    StepRow *rows = step_rows(s, bin, &n);
    cJSON *st = cJSON_AddObjectToObject(o, "steps");
    cJSON_AddNumberToObject(st, "bin", bin);
    cJSON *first = cJSON_AddArrayToObject(st, "first_step"), *last = cJSON_AddArrayToObject(st, "last_step");
    cJSON *cnt = cJSON_AddArrayToObject(st, "n_steps"), *sk = cJSON_AddArrayToObject(st, "skipped");
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(first, cJSON_CreateNumber((double)rows[i].first));
        cJSON_AddItemToArray(last, cJSON_CreateNumber((double)rows[i].last));
        cJSON_AddItemToArray(cnt, cJSON_CreateNumber((double)rows[i].n));
        cJSON_AddItemToArray(sk, cJSON_CreateNumber((double)rows[i].skipped));
    }
    for (int c = 0; c < TS_N; c++) {
        cJSON *a = cJSON_AddArrayToObject(st, TRAJ_STEP_COL_NAME[c]);
        for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, jnum(rows[i].v[c]));
    }
    free(rows);
    cJSON *ro = cJSON_AddObjectToObject(o, "rollouts");
    const int64_t nr = s->n_rollouts;
    cJSON_AddNumberToObject(ro, "n_rows", (double)nr);
    cJSON_AddNumberToObject(ro, "n_steps", (double)s->n_rollout_steps);
    cJSON_AddNumberToObject(ro, "first_step", (double)s->first_rollout_step);
    cJSON_AddNumberToObject(ro, "last_step", (double)s->last_rollout_step);
    cJSON_AddNumberToObject(ro, "early_max_step", (double)s->early_max_step);
    cJSON_AddNumberToObject(ro, "late_min_step", (double)s->late_min_step);
    cJSON *fr = cJSON_AddObjectToObject(ro, "frac_reward");
    cJSON_AddItemToObject(fr, "100", jnum(share(s->n_reward[0], nr)));
    cJSON_AddItemToObject(fr, "10", jnum(share(s->n_reward[1], nr)));
    cJSON_AddItemToObject(fr, "0", jnum(share(s->n_reward[2], nr)));
    cJSON *cs = cJSON_AddObjectToObject(ro, "frac_cot_stop");
    cJSON_AddItemToObject(cs, "stop_string", jnum(share(s->n_cot_stop[0], nr)));
    cJSON_AddItemToObject(cs, "cot_max", jnum(share(s->n_cot_stop[1], nr)));
    cJSON_AddItemToObject(cs, "eos", jnum(share(s->n_cot_stop[2], nr)));
    cJSON *as = cJSON_AddObjectToObject(ro, "frac_ans_stop");
    cJSON_AddItemToObject(as, "closing_brace", jnum(share(s->n_ans_stop[0], nr)));
    cJSON_AddItemToObject(as, "eos", jnum(share(s->n_ans_stop[1], nr)));
    cJSON_AddItemToObject(as, "ans_max", jnum(share(s->n_ans_stop[2], nr)));
    cJSON *cl = cJSON_AddObjectToObject(ro, "cot_len");
    cJSON_AddItemToObject(cl, "mean", jnum(nr ? s->mean_cot_len : NAN));
    cJSON_AddNumberToObject(cl, "min", s->cot_len_min);
    cJSON_AddNumberToObject(cl, "median", s->cot_len_median);
    cJSON_AddNumberToObject(cl, "p90", s->cot_len_p90);
    cJSON_AddNumberToObject(cl, "max", s->cot_len_max);
    cJSON_AddItemToObject(ro, "ans_len_mean", jnum(nr ? s->mean_ans_len : NAN));
    cJSON *pp = cJSON_AddObjectToObject(o, "positions");
    cJSON_AddNumberToObject(pp, "bin", s->pos_bin);
    cJSON_AddBoolToObject(pp, "has_mix_entropy", s->has_mix_entropy);
    const char *keys[] = {"count", "entropy", "entropy_early", "entropy_late", "top1", "top3", "mix_entropy", "eff_tokens"};
    for (int k = 0; k < 8; k++) {
        cJSON *a = cJSON_AddArrayToObject(pp, keys[k]);
        for (int b = 0; b < s->n_pos_bins; b++) {
            const PosBinSums *p = &s->bins[b];
            double v;
            switch (k) {
            case 0: v = (double)p->count; break;
            case 1: v = mean_of(p->entropy, p->count); break;
            case 2: v = mean_of(p->entropy_early, p->count_early); break;
            case 3: v = mean_of(p->entropy_late, p->count_late); break;
            case 4: v = mean_of(p->top1, p->count); break;
            case 5: v = mean_of(p->top3, p->count); break;
            case 6: v = s->has_mix_entropy ? mean_of(p->mix_entropy, p->count) : NAN; break;
            default: v = s->has_mix_entropy ? mean_of(p->eff_tokens, p->count) : NAN; break;
            }
            cJSON_AddItemToArray(a, jnum(v));
        }
    }
    return o;
}

static cJSON *eval_json(const Run *r, const EvalResults *e, const KList *want) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", e->path);
    char *stem = eval_stem(e->path), *model = eval_model_label(r, e);
    cJSON_AddStringToObject(o, "label", stem);
    cJSON_AddStringToObject(o, "model_dir", e->model_dir);
    cJSON_AddStringToObject(o, "model", model);
    free(stem), free(model);
    cJSON_AddBoolToObject(o, "complete", e->complete);
    cJSON *modes = cJSON_AddObjectToObject(o, "modes");
    for (int m = 0; m < e->n_modes; m++) {
        const EvalModeResult *mr = &e->modes[m];
        cJSON *j = cJSON_AddObjectToObject(modes, mr->name);
        cJSON_AddStringToObject(j, "cot", mr->cot);
        cJSON_AddStringToObject(j, "sampling", mr->sample ? "sample" : "greedy");
        cJSON_AddNumberToObject(j, "n_problems", mr->n_problems);
        cJSON_AddNumberToObject(j, "samples_per_problem", mr->samples_per_problem);
        cJSON_AddItemToObject(j, "greedy_pass_at_1", mr->sample ? cJSON_CreateNull() : jnum(mr->greedy_pass_at_1));
        cJSON *pk = cJSON_AddObjectToObject(j, "pass_at_k");
        for (int i = 0; mr->sample && i < want->n; i++)
            if (want->k[i] <= mr->samples_per_problem) {
                char key[16];
                snprintf(key, sizeof key, "%d", want->k[i]);
                cJSON_AddItemToObject(pk, key, jnum(eval_results_pass_at_k(mr, want->k[i])));
            }
        cJSON_AddItemToObject(j, "frac_correct", jnum(mr->frac_correct));
        cJSON_AddItemToObject(j, "frac_boxed", jnum(mr->frac_boxed));
        cJSON_AddItemToObject(j, "mean_cot_len", jnum(mr->mean_cot_len));
        cJSON_AddItemToObject(j, "frac_stop_string", jnum(mr->frac_stop_string));
        cJSON_AddItemToObject(j, "frac_stop_length", jnum(mr->frac_stop_length));
        cJSON_AddItemToObject(j, "frac_stop_eos", jnum(mr->frac_stop_eos));
        cJSON_AddItemToObject(j, "mean_entropy", jnum(mr->mean_entropy));
        cJSON *ep = cJSON_AddObjectToObject(j, "entropy_profile");
        cJSON_AddNumberToObject(ep, "bin", mr->entropy_bin);
        cJSON *mean = cJSON_AddArrayToObject(ep, "mean");
        for (int b = 0; b < mr->n_entropy_bins; b++) cJSON_AddItemToArray(mean, jnum(mr->entropy_mean[b]));
    }
    cJSON *ood = cJSON_AddArrayToObject(o, "ood");
    for (int i = 0; i < e->n_ood; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "file", e->ood[i].file);
        cJSON_AddNumberToObject(j, "n_items", e->ood[i].n_items);
        cJSON_AddItemToObject(j, "accuracy", jnum(e->ood[i].accuracy));
        cJSON_AddItemToObject(j, "accuracy_per_token", jnum(e->ood[i].accuracy_per_token));
        cJSON_AddItemToObject(j, "mean_nll_per_token_correct", jnum(e->ood[i].nll_per_token));
        cJSON_AddItemToArray(ood, j);
    }
    return o;
}

/* Prints root and frees it; 1 (runtime) if stdout cannot take it. */
static int print_json(cJSON *root) {
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) return EXIT_RUNTIME;
    int bad = fputs(s, stdout) < 0 || fputc('\n', stdout) < 0;
    free(s);
    return bad ? EXIT_RUNTIME : EXIT_OK;
}

/* ------------------------------------------------------------------ --rollout */

/* A token's text for display: quoted, with quotes, backslashes and control bytes escaped. */
static char *token_text(const Tokenizer *tok, int id) {
    if (!tok) return NULL;
    char *text = NULL;
    size_t len = 0;
    Err e;
    if (tokenizer_decode_ex(tok, &id, 1, TOKDEC_KEEP_SPECIAL, &text, &len, &e)) return xstrdup("?");
    char *out = xmalloc(4 * len + 3), *p = out;
    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        const unsigned char ch = (unsigned char)text[i];
        if (ch == '"' || ch == '\\') *p++ = '\\', *p++ = (char)ch;
        else if (ch == '\n') *p++ = '\\', *p++ = 'n';
        else if (ch == '\t') *p++ = '\\', *p++ = 't';
        else if (ch < 0x20 || ch == 0x7f) p += sprintf(p, "\\x%02x", ch);
        else *p++ = (char)ch;
    }
    *p++ = '"';
    *p = '\0';
    free(text);
    return out;
}

static char *token_cell(const Tokenizer *tok, int id, const float *prob) {
    char *t = id >= 0 ? token_text(tok, id) : NULL;
    char *c;
    if (id < 0) c = xstrdup("-");
    else if (prob) c = t ? fmt("%d %s %.3f", id, t, *prob) : fmt("%d %.3f", id, *prob);
    else c = t ? fmt("%d %s", id, t) : fmt("%d", id);
    free(t);
    return c;
}

enum { GRID_WIDTH = 100 };

static void print_rollout_text(const TrajRollout *r, const Tokenizer *tok, const char *tok_note, FILE *out) {
    static const char *cot_stop[] = {"the stop string", "cot_max", "EOS"};
    static const char *ans_stop[] = {"the closing brace", "EOS", "ans_max"};
    fprintf(out, "rollout %lld of %lld of step %lld (row %lld of /rollouts in %s)\n", (long long)r->index_in_step,
            (long long)r->n_in_step, (long long)r->step, (long long)r->row, r->path);
    fprintf(out, "problem %d, sample %d, generated by rank %d, mode %s\n", r->prompt_index, r->sample_index, r->rank,
            r->mode == 0 ? "hard" : r->mode == 1 ? "soft" : r->mode == 2 ? "fuzzy" : "?");
    fprintf(out, "reward %g (%s), advantage %+.3f\n", (double)r->reward,
            r->reward == 100.0f ? "correct" : r->reward == 10.0f ? "boxed but wrong" : "no closed box", (double)r->advantage);
    fprintf(out, "CoT %d positions, ended by %s; answer %d tokens, ended by %s\n", r->cot_len,
            r->cot_stop >= 0 && r->cot_stop < 3 ? cot_stop[r->cot_stop] : "?", r->ans_len,
            r->ans_stop >= 0 && r->ans_stop < 3 ? ans_stop[r->ans_stop] : "?");
    fprintf(out, "log-probability: CoT %.4g%s, answer %.4g (nats)\n", (double)r->logp_cot,
            r->mode == 0 ? "" : " (Gaussian term without its constant)", (double)r->logp_ans);
    if (tok_note) fprintf(out, "(token text unavailable: %s; pass --tokenizer DIR)\n", tok_note);

    if (r->n_prompt >= 0) {
        fprintf(out, "\n--- prompt: %d tokens ---\n", r->n_prompt);
        for (int i = 0; i < r->n_prompt; i++) fprintf(out, "%s%d", i ? " " : "", r->prompt_tokens[i]);
        fputc('\n', out);
        if (tok) {
            char *text = NULL;
            size_t len = 0;
            Err e;
            if (tokenizer_decode_ex(tok, r->prompt_tokens, r->n_prompt, 0, &text, &len, &e) == 0) {
                fprintf(out, "--- prompt text (decoded) ---\n");
                fwrite(text, 1, len, out);
                fputc('\n', out);
            }
            free(text);
        }
    } else {
        fprintf(out, "\n--- prompt: not recorded in this file (it predates prompt_tokens); problem %d of the training set ---\n",
                r->prompt_index);
    }

    fprintf(out, "--- CoT text (stored: the decoded shadow tokens) ---\n");
    fwrite(r->cot_text, 1, r->cot_text_len, out);
    fputc('\n', out);
    const int K = r->topk < 3 ? r->topk : 3;
    fprintf(out, "--- CoT by position: shadow token, then the top-%d %s tokens with their weights; H = entropy of softmax(z)%s ---\n",
            K, r->mode == 0 ? "sampling-distribution" : "mixture", r->mix_entropy ? ", eff = exp(entropy of the mixture)" : "");
    /* rows: pos, shadow, top-1..K, H, [eff] */
    const int n_lines = 2 + K + 1 + (r->mix_entropy != NULL);
    char **label = xcalloc((size_t)n_lines, sizeof *label);
    label[0] = xstrdup("pos"), label[1] = xstrdup("shadow");
    for (int k = 0; k < K; k++) label[2 + k] = fmt("top-%d", k + 1);
    label[2 + K] = xstrdup("H");
    if (r->mix_entropy) label[3 + K] = xstrdup("eff");
    int lw = 0;
    for (int l = 0; l < n_lines; l++) lw = text_width(label[l]) > lw ? text_width(label[l]) : lw;
    char ***cell = xcalloc((size_t)(r->cot_len ? r->cot_len : 1), sizeof *cell);
    for (int p = 0; p < r->cot_len; p++) {
        cell[p] = xcalloc((size_t)n_lines, sizeof(char *));
        cell[p][0] = fmt("%d", p);
        cell[p][1] = token_cell(tok, r->shadow[p], NULL);
        for (int k = 0; k < K; k++)
            cell[p][2 + k] = token_cell(tok, r->topk_ids[(size_t)p * r->topk + k], &r->topk_probs[(size_t)p * r->topk + k]);
        cell[p][2 + K] = fmt("%.3f", (double)r->entropy[p]);
        if (r->mix_entropy) cell[p][3 + K] = fmt("%.2f", exp((double)r->mix_entropy[p]));
    }
    for (int p0 = 0; p0 < r->cot_len;) {
        /* as many positions as fit in GRID_WIDTH columns (at least one) */
        int p1 = p0, width = lw;
        while (p1 < r->cot_len) {
            int cw = 0;
            for (int l = 0; l < n_lines; l++) cw = text_width(cell[p1][l]) > cw ? text_width(cell[p1][l]) : cw;
            if (p1 > p0 && width + 3 + cw > GRID_WIDTH) break;
            width += 3 + cw;
            p1++;
        }
        for (int l = 0; l < n_lines; l++) {
            fprintf(out, "%-*s", lw, label[l]);
            for (int p = p0; p < p1; p++) {
                int cw = 0;
                for (int m = 0; m < n_lines; m++) cw = text_width(cell[p][m]) > cw ? text_width(cell[p][m]) : cw;
                fprintf(out, " | %s%*s", cell[p][l], p + 1 < p1 ? cw - text_width(cell[p][l]) : 0, "");
            }
            fputc('\n', out);
        }
        p0 = p1;
        if (p0 < r->cot_len) fputc('\n', out);
    }
    for (int p = 0; p < r->cot_len; p++) {
        for (int l = 0; l < n_lines; l++) free(cell[p][l]);
        free(cell[p]);
    }
    for (int l = 0; l < n_lines; l++) free(label[l]);
    free(cell), free(label);

    fprintf(out, "--- answer text (stored: decoded after the prefilled \\boxed{) ---\n");
    fwrite(r->answer_text, 1, r->answer_text_len, out);
    fputc('\n', out);
    fprintf(out, "--- answer tokens: %d ---\n", r->ans_len);
    for (int i = 0; i < r->ans_len; i++) {
        char *t = token_text(tok, r->answer_tokens[i]);
        fprintf(out, "%s%d%s%s", i ? "  " : "", r->answer_tokens[i], t ? " " : "", t ? t : "");
        free(t);
    }
    fputc('\n', out);
}

static cJSON *int_array(const int32_t *v, int64_t n) {
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *float_array(const float *v, int64_t n) {
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; i < n; i++) cJSON_AddItemToArray(a, jnum(v[i]));
    return a;
}

/* JSON strings must be valid UTF-8: invalid bytes become U+FFFD. */
static cJSON *text_json(const char *s, size_t n) {
    char *o = xmalloc(3 * n + 1), *p = o;
    for (size_t i = 0; i < n;) {
        const unsigned char c = (unsigned char)s[i];
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        int ok = len > 0 && i + (size_t)len <= n && c != 0;
        for (int k = 1; ok && k < len; k++) ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
        if (ok) {
            memcpy(p, s + i, (size_t)len);
            p += len, i += (size_t)len;
        } else {
            memcpy(p, "\xEF\xBF\xBD", 3);
            p += 3, i++;
        }
    }
    *p = '\0';
    cJSON *j = cJSON_CreateString(o);
    free(o);
    return j;
}

static cJSON *rollout_json(const TrajRollout *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "schema", "softcot-analyze-rollout/1");
    cJSON_AddStringToObject(o, "path", r->path);
    cJSON_AddNumberToObject(o, "step", (double)r->step);
    cJSON_AddNumberToObject(o, "index", (double)r->index_in_step);
    cJSON_AddNumberToObject(o, "row", (double)r->row);
    cJSON_AddNumberToObject(o, "prompt_index", r->prompt_index);
    cJSON_AddNumberToObject(o, "sample_index", r->sample_index);
    cJSON_AddNumberToObject(o, "rank", r->rank);
    cJSON_AddNumberToObject(o, "mode", r->mode);
    cJSON_AddItemToObject(o, "reward", jnum(r->reward));
    cJSON_AddItemToObject(o, "advantage", jnum(r->advantage));
    cJSON_AddNumberToObject(o, "correct", r->correct);
    cJSON_AddNumberToObject(o, "cot_len", r->cot_len);
    cJSON_AddNumberToObject(o, "ans_len", r->ans_len);
    cJSON_AddNumberToObject(o, "cot_stop", r->cot_stop);
    cJSON_AddNumberToObject(o, "ans_stop", r->ans_stop);
    cJSON_AddItemToObject(o, "logp_cot", jnum(r->logp_cot));
    cJSON_AddItemToObject(o, "logp_ans", jnum(r->logp_ans));
    cJSON_AddItemToObject(o, "prompt_tokens", r->n_prompt >= 0 ? int_array(r->prompt_tokens, r->n_prompt) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "shadow", int_array(r->shadow, r->cot_len));
    cJSON *ids = cJSON_AddArrayToObject(o, "topk_ids"), *probs = cJSON_AddArrayToObject(o, "topk_probs");
    for (int p = 0; p < r->cot_len; p++) {
        cJSON_AddItemToArray(ids, int_array(r->topk_ids + (size_t)p * r->topk, r->topk));
        cJSON_AddItemToArray(probs, float_array(r->topk_probs + (size_t)p * r->topk, r->topk));
    }
    cJSON_AddNumberToObject(o, "topk", r->topk);
    cJSON_AddItemToObject(o, "entropy", float_array(r->entropy, r->cot_len));
    cJSON_AddItemToObject(o, "mix_entropy", r->mix_entropy ? float_array(r->mix_entropy, r->cot_len) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "noise_norm", float_array(r->noise_norm, r->cot_len));
    cJSON_AddItemToObject(o, "cot_text", text_json(r->cot_text, r->cot_text_len));
    cJSON_AddItemToObject(o, "answer_text", text_json(r->answer_text, r->answer_text_len));
    cJSON_AddItemToObject(o, "answer_tokens", int_array(r->answer_tokens, r->ans_len));
    return o;
}

static int do_rollout(const AnalyzeOptions *o, Run *run, Err *err) {
    if (!run->traj_path) return err_set(err, "--rollout needs a trajectory file (none among the arguments)"), EXIT_USAGE;
    const char *spec = o->rollout, *colon = strchr(spec, ':');
    if (!colon) return err_set(err, "--rollout: expected STEP:IDX, got '%s'", spec), EXIT_USAGE;
    int64_t step = -1;
    long v;
    char sbuf[32];
    size_t sl = (size_t)(colon - spec);
    if (sl == 0 || sl >= sizeof sbuf) return err_set(err, "--rollout: expected STEP:IDX, got '%s'", spec), EXIT_USAGE;
    memcpy(sbuf, spec, sl);
    sbuf[sl] = '\0';
    if (strcmp(sbuf, "last")) {
        if (parse_int(sbuf, "--rollout STEP", 0, LONG_MAX, &v, err)) return EXIT_USAGE;
        step = v;
    }
    if (parse_int(colon + 1, "--rollout IDX", 0, LONG_MAX, &v, err)) return EXIT_USAGE;
    TrajRollout r;
    if (traj_rollout_load(run->traj_path, step, v, &r, err)) {
        traj_rollout_free(&r);
        return EXIT_USAGE;
    }
    int status = EXIT_OK;
    if (o->json) {
        status = print_json(rollout_json(&r));
    } else {
        char *dir = *o->tokenizer ? xstrdup(o->tokenizer) : config_value(r.config, "model");
        Tokenizer *tok = NULL;
        Err terr = {""};
        if (dir) tok = tokenizer_load_dir(dir, &terr);
        else err_set(&terr, "the run's config names no model directory");
        print_rollout_text(&r, tok, tok ? NULL : terr.msg, stdout);
        if (fflush(stdout) != 0 || ferror(stdout)) status = EXIT_RUNTIME;
        tokenizer_free(tok);
        free(dir);
    }
    traj_rollout_free(&r);
    return status;
}

/* ------------------------------------------------------------------ command */

int cmd_analyze(int argc, char **argv) {
    AnalyzeOptions o;
    options_defaults(ANALYZE_OPTS, N_ANALYZE_OPTS, &o);
    char **opts = NULL, **paths = NULL;
    int n_opts = 0, n_paths = 0, help = 0, status = EXIT_USAGE;
    Err err = {""};
    Run *runs = NULL;
    int n_runs = 0;
    KList want = {NULL, 0};
    int rc = split_args(argc, argv, &opts, &n_opts, &paths, &n_paths, &help, &err);
    if (help) {
        fputs(ANALYZE_USAGE, stdout);
        options_help(ANALYZE_OPTS, N_ANALYZE_OPTS, stdout);
        status = EXIT_OK;
        goto done;
    }
    if (!rc) rc = options_parse_args(ANALYZE_OPTS, N_ANALYZE_OPTS, &o, n_opts, opts, 0, &err);
    TrajSummaryOptions to = {.pos_bin = o.pos_bin};
    if (!rc && n_paths == 0) rc = err_set(&err, "no run directory or file given (see --help)");
    if (!rc && o.bin < 0) rc = err_set(&err, "--bin must be >= 0 (got %d)", o.bin);
    if (!rc && o.pos_bin < 1) rc = err_set(&err, "--pos_bin must be at least 1 (got %d)", o.pos_bin);
    if (!rc) rc = parse_step_range(o.steps, "--steps", &to.step_min, &to.step_max, &err);
    if (!rc) rc = parse_id_list(o.k, "--k", &want.k, &want.n, &err);
    for (int i = 0; !rc && i < want.n; i++)
        if (want.k[i] < 1) rc = err_set(&err, "--k: values must be at least 1");
    if (!rc && *o.rollout && o.compare) rc = err_set(&err, "--rollout and --compare do not go together");
    if (rc) {
        fprintf(stderr, "softcot analyze: %s\n", err.msg);
        goto done;
    }

    /* Gather the runs: one per argument with --compare, else one for all. */
    n_runs = o.compare ? n_paths : 1;
    runs = xcalloc((size_t)n_runs, sizeof *runs);
    for (int i = 0; i < n_paths && !rc; i++) {
        Run *r = &runs[o.compare ? i : 0];
        if (!r->arg) r->arg = xstrdup(paths[i]);
        rc = run_add_path(r, paths[i], &err);
    }
    if (!rc && *o.rollout) {
        status = do_rollout(&o, &runs[0], &err);
        if (status != EXIT_OK && err.msg[0]) fprintf(stderr, "softcot analyze: %s\n", err.msg);
        goto done;
    }
    for (int i = 0; i < n_runs && !rc; i++) rc = run_load(&runs[i], &to, &err);
    if (rc) {
        fprintf(stderr, "softcot analyze: %s\n", err.msg);
        goto done;
    }
    /* labels: the run's mode, made unique; else the argument */
    for (int i = 0; i < n_runs; i++) {
        const char *base = runs[i].has_traj ? runs[i].traj.mode : runs[i].arg;
        int dup = 0, nth = 0;
        for (int j = 0; j < n_runs; j++) {
            const char *bj = runs[j].has_traj ? runs[j].traj.mode : runs[j].arg;
            if (!strcmp(bj, base)) {
                dup++;
                if (j < i) nth++;
            }
        }
        runs[i].label = dup > 1 ? fmt("%s#%d", base, nth + 1) : xstrdup(base);
    }
    int64_t last = 0;
    for (int i = 0; i < n_runs; i++)
        if (runs[i].has_traj && runs[i].traj.n_steps) {
            const int64_t l = runs[i].traj.step[runs[i].traj.n_steps - 1];
            last = l > last ? l : last;
        }
    const int bin = o.bin > 0 ? o.bin : auto_bin(last);

    if (o.json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "schema", "softcot-analyze/1");
        cJSON *ra = cJSON_AddArrayToObject(root, "runs");
        for (int i = 0; i < n_runs; i++) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "label", runs[i].label);
            cJSON_AddStringToObject(j, "arg", runs[i].arg);
            cJSON_AddItemToObject(j, "trajectory", runs[i].has_traj ? traj_json(&runs[i].traj, bin) : cJSON_CreateNull());
            cJSON *ev = cJSON_AddArrayToObject(j, "evals");
            for (int e = 0; e < runs[i].n_evals; e++) cJSON_AddItemToArray(ev, eval_json(&runs[i], &runs[i].evals[e], &want));
            cJSON_AddItemToArray(ra, j);
        }
        status = print_json(root);
        goto done;
    }
    FILE *out = stdout;
    if (o.compare) {
        print_compare(runs, n_runs, bin, o.pos_bin, out);
    } else if (runs[0].has_traj) {
        print_run_header(&runs[0], out);
        print_step_tables(&runs[0].traj, bin, out);
        print_rollout_summary(&runs[0].traj, out);
        print_entropy_profile(&runs[0].traj, out);
        print_mixture(&runs[0].traj, out);
    }
    print_passk(runs, n_runs, &want, out);
    print_eval_entropy(runs, n_runs, out);
    status = fflush(out) != 0 || ferror(out) ? EXIT_RUNTIME : EXIT_OK;
    if (status) fprintf(stderr, "softcot analyze: cannot write to standard output\n");

done:
    for (int i = 0; i < n_runs; i++) run_free(&runs[i]);
    free(runs), free(want.k);
    free_strv(opts, n_opts), free_strv(paths, n_paths);
    options_free_strings(ANALYZE_OPTS, N_ANALYZE_OPTS, &o);
    return status;
}
