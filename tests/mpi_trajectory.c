/* mpi_trajectory.c — driver for tests/test_trajectory.sh (trajectory files on N ranks).
 *
 *   create PATH FROM TO LEVEL     new file (deflate LEVEL), append steps FROM..TO
 *   resume PATH KEEP FROM TO      reopen, truncate to steps <= KEEP, append FROM..TO
 *   errors DIR                    schema and argument errors
 * Step s has n(s) rollouts, numbered 0..n(s)-1 and split over the ranks with dist_shard
 * (as the trainer splits B*G rollouts), so the counts per rank differ and some ranks
 * have none. Every value is a function of (step, sample) that tests/traj_check.py
 * recomputes; the "rank" column records the writer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "io/trajectory.h"
#include "mpi_test.h"

static const TrajColumn ROLLOUT_COLS[] = {
    {"step", TRAJ_I64, 1, 0, "training step"},
    {"sample", TRAJ_I64, 1, 0, "rollout index within the step"},
    {"rank", TRAJ_I32, 1, 0, "MPI rank that wrote the row"},
    {"reward", TRAJ_F32, 1, 0, "reward (paper scale)"},
    {"tag", TRAJ_U8, 8, 0, "fixed 8-byte NUL-padded label"},
    {"top", TRAJ_I32, 3, 0, "three ids per row"},
    {"cot_tok", TRAJ_I32, 1, 1, "one id per CoT position"},
    {"topk", TRAJ_F32, 2, 1, "two floats per CoT position"},
    {"text", TRAJ_U8, 1, 1, "UTF-8 text bytes"},
};
static const TrajColumn STEP_COLS[] = {
    {"step", TRAJ_I64, 1, 0, "training step"},
    {"loss", TRAJ_F32, 1, 0, "loss"},
};
static const TrajTable TABLES[] = {
    {"rollouts", ROLLOUT_COLS, 9, "one row per rollout"},
    {"steps", STEP_COLS, 2, "one row per step (written by rank 0)"},
};

static int64_t n_samples(int64_t s) {
    return s == 2 ? 1 : 4 + s % 3; /* step 2: one rollout, so rank 1 of 2 writes none */
}
static int64_t cot_len(int64_t s, int64_t k) {
    return (s * 7 + k * 3) % 5; /* 0..4, zero included */
}
static void text_of(int64_t s, int64_t k, char *buf, size_t size) {
    snprintf(buf, size, "step %lld sample %lld%.*s", (long long)s, (long long)k, (int)(k % 3), "!!!");
}

static int append_step(Dist *d, TrajWriter *w, int64_t s, Err *err) {
    int64_t b, e;
    dist_shard(n_samples(s), d->rank, d->size, &b, &e);
    int64_t n = e - b, nv = 0, nt = 0;
    for (int64_t k = b; k < e; k++) {
        char t[64];
        text_of(s, k, t, sizeof t);
        nv += cot_len(s, k);
        nt += (int64_t)strlen(t);
    }
    int64_t *step = calloc((size_t)n + 1, 8), *sample = calloc((size_t)n + 1, 8);
    int32_t *rank = calloc((size_t)n + 1, 4), *top = calloc(3 * (size_t)n + 1, 4), *tok = calloc((size_t)nv + 1, 4);
    float *reward = calloc((size_t)n + 1, 4), *topk = calloc(2 * (size_t)nv + 1, 4);
    uint8_t *tag = calloc(8 * (size_t)n + 1, 1), *text = calloc((size_t)nt + 1, 1);
    int64_t *lc = calloc((size_t)n + 1, 8), *lt = calloc((size_t)n + 1, 8);
    int64_t iv = 0, it = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = b + i;
        step[i] = s;
        sample[i] = k;
        rank[i] = d->rank;
        reward[i] = (float)s + 0.25f * (float)k;
        snprintf((char *)tag + 8 * i, 8, "t%lld", (long long)(s * 10 + k));
        for (int j = 0; j < 3; j++) top[3 * i + j] = (int32_t)(s * 100 + k * 3 + j);
        lc[i] = cot_len(s, k);
        for (int64_t j = 0; j < lc[i]; j++, iv++) {
            tok[iv] = (int32_t)(s * 1000 + k * 10 + j);
            topk[2 * iv] = 0.5f * (float)(s + k + j);
            topk[2 * iv + 1] = -(float)j;
        }
        char t[64];
        text_of(s, k, t, sizeof t);
        lt[i] = (int64_t)strlen(t);
        memcpy(text + it, t, (size_t)lt[i]);
        it += lt[i];
    }
    TrajData cols[9] = {{step, NULL}, {sample, NULL}, {rank, NULL}, {reward, NULL}, {tag, NULL},
                        {top, NULL},  {tok, lc},      {topk, lc},   {text, lt}};
    int rc = traj_append(w, 0, cols, n, err);
    int64_t one_step = s;
    float loss = -(float)s / 8;
    TrajData scols[2] = {{&one_step, NULL}, {&loss, NULL}};
    if (!rc) rc = traj_append(w, 1, scols, d->rank == 0 ? 1 : 0, err);
    free(step), free(sample), free(rank), free(top), free(tok), free(reward), free(topk), free(tag), free(text);
    free(lc), free(lt);
    return rc;
}

static int64_t rows_through(int64_t from, int64_t to) {
    int64_t r = 0;
    for (int64_t s = from; s <= to; s++) r += n_samples(s);
    return r;
}

static int contains(const char *a, const char *b) {
    return strstr(a, b) != NULL;
}

static void errors(Dist *d, const char *dir) {
    char path[1024];
    Err err = {""};
    TrajWriter *w = NULL;
    snprintf(path, sizeof path, "%s/e.h5", dir);
    TrajColumn nostep[] = {{"x", TRAJ_I32, 1, 0, NULL}};
    TrajTable t1 = {"t", nostep, 1, NULL};
    int rc = traj_create(d, path, &t1, 1, NULL, 0, 0, &w, &err);
    MPI_EXPECT(d, rc && !w && contains(err.msg, "table t has no int64 \"step\" column"), "errors: table without step",
               "'%s'", err.msg);
    TrajColumn clash[] = {{"step", TRAJ_I64, 1, 0, NULL}, {"x", TRAJ_U8, 1, 1, NULL}, {"x_offsets", TRAJ_I64, 1, 0, NULL}};
    TrajTable t2 = {"t", clash, 3, NULL};
    rc = traj_create(d, path, &t2, 1, NULL, 0, 0, &w, &err);
    MPI_EXPECT(d, rc && contains(err.msg, "clashes with the offsets"), "errors: column clashing with ragged offsets",
               "'%s'", err.msg);
    snprintf(path, sizeof path, "%s/missing.h5", dir);
    rc = traj_open_append(d, path, TABLES, 2, &w, &err);
    MPI_EXPECT(d, rc && contains(err.msg, path) && contains(err.msg, "no such file"), "errors: reopen a missing file",
               "'%s'", err.msg);
    /* Reopen with a different schema: widths and extra columns are detected. */
    snprintf(path, sizeof path, "%s/s.h5", dir);
    rc = traj_create(d, path, TABLES, 2, NULL, 0, 1, &w, &err);
    if (!rc) rc = append_step(d, w, 1, &err);
    if (!rc) rc = traj_close(w, &err);
    MPI_EXPECT(d, rc == 0, "errors: small file written", "%s", err.msg);
    TrajColumn wide[9];
    memcpy(wide, ROLLOUT_COLS, sizeof wide);
    wide[5].width = 4;
    TrajTable other[2] = {TABLES[0], TABLES[1]};
    other[0].cols = wide;
    rc = traj_open_append(d, path, other, 2, &w, &err);
    MPI_EXPECT(d, rc && contains(err.msg, path) && contains(err.msg, "rollouts/top is not int32 with width 4"),
               "errors: reopen with another column width", "'%s'", err.msg);
    other[0].n_cols = 8; /* drop "text" */
    rc = traj_open_append(d, path, other, 2, &w, &err);
    MPI_EXPECT(d, rc && contains(err.msg, "schema differs"), "errors: reopen with a column missing from the schema",
               "'%s'", err.msg);
    rc = traj_open_append(d, path, TABLES, 2, &w, &err);
    int64_t rows = rc ? -1 : traj_rows(w, 0);
    /* Bad append: a ragged column without lengths (on the last rank only: all agree). */
    TrajData bad[9] = {{0}};
    int64_t s1 = 1, zero = 0;
    int64_t n = d->rank == d->size - 1 ? 1 : 0;
    for (int c = 0; c < 9; c++) bad[c].values = &zero;
    bad[0].values = &s1;
    int arc = rc ? 0 : traj_append(w, 0, bad, n, &err);
    MPI_EXPECT(d, rc == 0 && rows == n_samples(1) && arc != 0 && contains(err.msg, "ragged column without lengths"),
               "errors: bad append refused on every rank", "rc %d rows %lld '%s'", rc, (long long)rows, err.msg);
    if (!rc) traj_close(w, &err);
}

int main(int argc, char **argv) {
    Dist d;
    dist_init(&d, &argc, &argv);
    mpi_test_begin(&d);
    Err err = {""};
    char name[256];
    TrajWriter *w = NULL;
    if (argc == 6 && !strcmp(argv[1], "create")) {
        int64_t from = atoll(argv[3]), to = atoll(argv[4]);
        IoAttr attrs[] = {{.name = "config", .type = IO_ATTR_STR, .str = "[train]\nsteps = 7\n"}};
        int rc = traj_create(&d, argv[2], TABLES, 2, attrs, 1, atoi(argv[5]), &w, &err);
        for (int64_t s = from; s <= to && !rc; s++) rc = append_step(&d, w, s, &err);
        int64_t rows = rc ? -1 : traj_rows(w, 0);
        int comp = rc ? -1 : traj_compressed(w);
        if (!rc) rc = traj_close(w, &err);
        snprintf(name, sizeof name, "create + append steps %lld..%lld on %d ranks", (long long)from, (long long)to,
                 d.size);
        MPI_EXPECT(&d, rc == 0 && rows == rows_through(from, to), name, "%s (rows %lld)", err.msg, (long long)rows);
        if (d.rank == 0) printf("# compressed: %d\n", comp);
    } else if (argc == 6 && !strcmp(argv[1], "resume")) {
        int64_t keep = atoll(argv[3]), from = atoll(argv[4]), to = atoll(argv[5]);
        int rc = traj_open_append(&d, argv[2], TABLES, 2, &w, &err);
        if (!rc) rc = traj_truncate_to_step(w, keep, &err);
        int64_t after_trunc = rc ? -1 : traj_rows(w, 0), steps_rows = rc ? -1 : traj_rows(w, 1);
        for (int64_t s = from; s <= to && !rc; s++) rc = append_step(&d, w, s, &err);
        if (!rc) rc = traj_close(w, &err);
        snprintf(name, sizeof name, "resume on %d ranks: truncate to step %lld, append %lld..%lld", d.size,
                 (long long)keep, (long long)from, (long long)to);
        MPI_EXPECT(&d, rc == 0 && after_trunc == rows_through(1, keep) && steps_rows == keep, name,
                   "%s (rows after truncation %lld, steps rows %lld)", err.msg, (long long)after_trunc,
                   (long long)steps_rows);
    } else if (argc == 3 && !strcmp(argv[1], "errors")) {
        errors(&d, argv[2]);
    } else {
        fprintf(stderr, "mpi_trajectory: bad arguments\n");
        return 2;
    }
    int rc = test_finish();
    dist_finalize(&d);
    return rc;
}
