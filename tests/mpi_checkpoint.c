/* mpi_checkpoint.c — driver for tests/test_checkpoint.sh (checkpoints on N ranks).
 *
 *   write DIR STEP KEEP      write the deterministic checkpoint of STEP (with signal
 *                            handlers installed; exits 3 if a stop signal arrived)
 *   read PATH STEP           read it back on this rank count: every buffer bit-identical
 *   resume DIR STEP NOTE     ckpt_find_resume picks ckpt_STEP.h5 ("none": nothing to
 *                            resume; "error": refuses, error contains NOTE) and its note
 *                            contains NOTE ("-": note is empty)
 *   refuse PATH TEXT...      ckpt_verify and ckpt_read fail, message contains every TEXT
 *   unit DIR                 API checks: pruning, shape/dtype mismatch, bad arguments
 * Each rank writes its pid to DIR/pid.<rank> (write mode) so the shell can signal it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "core/fileio.h"
#include "core/signals.h"
#include "io/checkpoint.h"
#include "mpi_test.h"

enum { N_ITEMS = 9 };

/* A deterministic 32-bit pattern for element i of item k at step s (splitmix-style). */
static uint32_t pattern(int k, int64_t i, int64_t s) {
    uint64_t x = (uint64_t)s * 0x9E3779B97F4A7C15ull + (uint64_t)k * 0xBF58476D1CE4E5B9ull + (uint64_t)i;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 29;
    return (uint32_t)x;
}

typedef struct {
    CkptItem items[N_ITEMS];
    char *config;
} Fixture;

/* Names follow the Hugging Face layout the trainer will use; shapes include a 3-d and an
 * empty tensor, and an int64 data order. */
static void fixture_make(Fixture *f, int64_t step, int fill) {
    static const struct {
        const char *name;
        CkptDtype dt;
        int ndim;
        int64_t shape[3];
    } spec[N_ITEMS] = {
        {"params/model.embed_tokens.weight", CKPT_F32, 2, {37, 16}},
        {"params/model.layers.0.mlp.up_proj.weight", CKPT_F32, 3, {3, 5, 7}},
        {"params/model.norm.weight", CKPT_F32, 1, {16}},
        {"adam_m/model.embed_tokens.weight", CKPT_F32, 2, {37, 16}},
        {"adam_m/model.norm.weight", CKPT_F32, 1, {16}},
        {"adam_v/model.embed_tokens.weight", CKPT_F32, 2, {37, 16}},
        {"adam_v/model.norm.weight", CKPT_F32, 1, {16}},
        {"params/empty", CKPT_F32, 2, {0, 4}},
        {"data/order", CKPT_I64, 1, {101}},
    };
    for (int k = 0; k < N_ITEMS; k++) {
        CkptItem *it = &f->items[k];
        memset(it, 0, sizeof *it);
        it->name = spec[k].name;
        it->dtype = spec[k].dt;
        it->ndim = spec[k].ndim;
        int64_t n = 1;
        for (int j = 0; j < it->ndim; j++) n *= it->shape[j] = spec[k].shape[j];
        size_t es = it->dtype == CKPT_F32 ? 4 : 8;
        it->data = xcalloc((size_t)n + 1, es);
        if (!fill) continue;
        for (int64_t i = 0; i < n; i++) {
            if (it->dtype == CKPT_F32) {
                uint32_t u = pattern(k, i, step);
                memcpy((char *)it->data + 4 * i, &u, 4); /* arbitrary bits, NaNs included */
            } else {
                ((int64_t *)it->data)[i] = (int64_t)pattern(k, i, step) * 7919 - 3;
            }
        }
    }
    /* A config longer than 64 KiB exercises dense attribute storage. */
    size_t clen = 70000;
    f->config = xmalloc(clen + 1);
    for (size_t i = 0; i < clen; i++) f->config[i] = i % 61 == 60 ? '\n' : (char)('a' + (i + (size_t)step) % 26);
    f->config[clen] = '\0';
}

static void fixture_free(Fixture *f) {
    for (int k = 0; k < N_ITEMS; k++) free(f->items[k].data);
    free(f->config);
}

static int write_step(Dist *d, const char *dir, int64_t step, int keep, Err *err) {
    Fixture f;
    fixture_make(&f, step, 1);
    IoAttr attrs[] = {
        {.name = "seed", .type = IO_ATTR_I64, .i64 = 1234 + step},
        {.name = "cursor", .type = IO_ATTR_I64, .i64 = 10 * step},
        {.name = "lr", .type = IO_ATTR_F64, .f64 = 6e-6 * (double)step},
        {.name = "config", .type = IO_ATTR_STR, .str = f.config},
        {.name = "empty_text", .type = IO_ATTR_STR, .str = ""},
    };
    int rc = ckpt_write(d, dir, step, f.items, N_ITEMS, attrs, 5, keep, err);
    fixture_free(&f);
    return rc;
}

/* Reads path and compares everything with the fixture of `step`. */
static void check_read(Dist *d, const char *path, int64_t step, const char *label) {
    Fixture want, got;
    fixture_make(&want, step, 1);
    fixture_make(&got, -1, 0);
    char name[256];
    Err err = {""};
    CkptReader *r = NULL;
    int rc = ckpt_open(d, path, &r, &err);
    snprintf(name, sizeof name, "%s: ckpt_open on %d ranks", label, d->size);
    MPI_EXPECT(d, rc == 0, name, "%s", err.msg);
    if (rc) goto out;
    int same = 1, rrc = 0;
    const char *bad = "";
    for (int k = 0; k < N_ITEMS && !rrc; k++) {
        rrc = ckpt_read_item(r, &got.items[k], &err);
        int64_t n = 1;
        for (int j = 0; j < want.items[k].ndim; j++) n *= want.items[k].shape[j];
        size_t es = want.items[k].dtype == CKPT_F32 ? 4 : 8;
        if (!rrc && memcmp(want.items[k].data, got.items[k].data, (size_t)n * es) != 0) same = 0, bad = want.items[k].name;
    }
    snprintf(name, sizeof name, "%s: every tensor bit-identical on %d ranks", label, d->size);
    MPI_EXPECT(d, rrc == 0 && same, name, "%s %s", err.msg, bad);
    int64_t s = -1, seed = -1, cursor = -1, ws = -1;
    double lr = -1;
    char *cfg = NULL, *ver = NULL, *empty = NULL;
    int arc = ckpt_attr_i64(r, "step", &s, &err) || ckpt_attr_i64(r, "seed", &seed, &err) ||
              ckpt_attr_i64(r, "cursor", &cursor, &err) || ckpt_attr_i64(r, "world_size", &ws, &err) ||
              ckpt_attr_f64(r, "lr", &lr, &err) || ckpt_attr_str(r, "config", &cfg, &err) ||
              ckpt_attr_str(r, "softcot_version", &ver, &err) || ckpt_attr_str(r, "empty_text", &empty, &err);
    snprintf(name, sizeof name, "%s: attributes (step, seed, cursor, lr, 70 KB config, version) on %d ranks", label,
             d->size);
    MPI_EXPECT(d, !arc && s == step && seed == 1234 + step && cursor == 10 * step && lr == 6e-6 * (double)step &&
                      ws >= 1 && cfg && !strcmp(cfg, want.config) && ver && !strcmp(ver, SOFTCOT_VERSION) && empty &&
                      !*empty,
               name, "%s (step %lld seed %lld ws %lld)", err.msg, (long long)s, (long long)seed, (long long)ws);
    free(cfg), free(ver), free(empty);
    snprintf(name, sizeof name, "%s: dataset list is sorted and complete", label);
    int cnt = ckpt_dataset_count(r);
    MPI_EXPECT(d, cnt == N_ITEMS && !strcmp(ckpt_dataset_name(r, 0), "adam_m/model.embed_tokens.weight") &&
                      ckpt_dataset_name(r, cnt) == NULL,
               name, "%d datasets, first %s", cnt, cnt ? ckpt_dataset_name(r, 0) : "-");
    ckpt_close(r);
out:
    fixture_free(&want);
    fixture_free(&got);
}

static int contains(const char *hay, const char *needle) {
    return strstr(hay, needle) != NULL;
}

static void unit(Dist *d, const char *dir) {
    Err err = {""};
    char name[256], path[1024];
    /* keep_last pruning: steps 1..5 with K = 2 leave 4 and 5, latest -> 5. A later-step
     * file from an abandoned timeline (9) is left alone; a stale temp file is removed. */
    if (d->rank == 0) {
        make_dirs(dir, &err);
        snprintf(path, sizeof path, "%s/ckpt_7.h5.tmp", dir);
        atomic_write_all(path, "junk", 4, &err);
    }
    int rc = write_step(d, dir, 9, 2, &err);
    for (int64_t s = 1; s <= 5 && !rc; s++) rc = write_step(d, dir, s, 2, &err);
    MPI_EXPECT(d, rc == 0, "unit: five checkpoints written with keep_last=2", "%s", err.msg);
    int present[10];
    for (int s = 0; s < 10; s++) {
        snprintf(path, sizeof path, "%s/ckpt_%d.h5", dir, s);
        present[s] = file_exists(path);
    }
    snprintf(path, sizeof path, "%s/ckpt_7.h5.tmp", dir);
    int tmp_left = file_exists(path);
    MPI_EXPECT(d, !present[1] && !present[2] && !present[3] && present[4] && present[5] && present[9] && !tmp_left,
               "unit: keep_last=2 keeps steps 4 and 5, leaves later step 9, removes stale .tmp",
               "present 1..5: %d%d%d%d%d, 9: %d, tmp %d", present[1], present[2], present[3], present[4], present[5],
               present[9], tmp_left);
    char *text = NULL;
    snprintf(path, sizeof path, "%s/latest", dir);
    rc = file_read_all(path, &text, NULL, &err);
    MPI_EXPECT(d, rc == 0 && !strcmp(text, "ckpt_5.h5\n"), "unit: latest names ckpt_5.h5", "got '%s'",
               text ? text : err.msg);
    free(text);

    /* Shape and dtype mismatches name the file, the dataset and both shapes. */
    snprintf(path, sizeof path, "%s/ckpt_5.h5", dir);
    float buf[16 * 38];
    CkptItem wrong = {.name = "params/model.embed_tokens.weight", .dtype = CKPT_F32, .ndim = 2, .shape = {38, 16}, .data = buf};
    rc = ckpt_read(d, path, &wrong, 1, &err);
    snprintf(name, sizeof name, "unit: shape mismatch refused");
    MPI_EXPECT(d, rc != 0 && contains(err.msg, path) && contains(err.msg, "params/model.embed_tokens.weight") &&
                      contains(err.msg, "[37,16]") && contains(err.msg, "[38,16]"),
               name, "'%s'", err.msg);
    CkptItem wrong_t = {.name = "data/order", .dtype = CKPT_F32, .ndim = 1, .shape = {101}, .data = buf};
    float big[101];
    wrong_t.data = big;
    rc = ckpt_read(d, path, &wrong_t, 1, &err);
    MPI_EXPECT(d, rc != 0 && contains(err.msg, "data/order is int64 [101], expected float32 [101]"),
               "unit: dtype mismatch refused", "'%s'", err.msg);
    CkptItem missing = {.name = "params/nope", .dtype = CKPT_F32, .ndim = 1, .shape = {1}, .data = buf};
    rc = ckpt_read(d, path, &missing, 1, &err);
    MPI_EXPECT(d, rc != 0 && contains(err.msg, path) && contains(err.msg, "missing dataset params/nope"),
               "unit: missing dataset refused", "'%s'", err.msg);

    /* dataset_info lets a caller size an array it does not know (the data order). */
    CkptReader *r;
    CkptDtype dt = 0;
    int nd = 0;
    int64_t shape[CKPT_MAX_DIMS] = {0};
    rc = ckpt_open(d, path, &r, &err);
    if (!rc) {
        rc = ckpt_dataset_info(r, "data/order", &dt, &nd, shape, &err);
        char *s = NULL;
        int arc = ckpt_attr_str(r, "seed", &s, &err); /* an integer is not a string */
        MPI_EXPECT(d, arc != 0 && contains(err.msg, "seed is not a scalar string"), "unit: attribute type checked",
                   "'%s'", err.msg);
        ckpt_close(r);
    }
    MPI_EXPECT(d, rc == 0 && dt == CKPT_I64 && nd == 1 && shape[0] == 101, "unit: ckpt_dataset_info", "%s", err.msg);

    /* Bad arguments: reserved attribute, duplicate dataset, bad ndim. Nothing written. */
    float one = 1;
    CkptItem dup[2] = {{.name = "a", .dtype = CKPT_F32, .ndim = 1, .shape = {1}, .data = &one},
                       {.name = "a", .dtype = CKPT_F32, .ndim = 1, .shape = {1}, .data = &one}};
    IoAttr reserved = {.name = "step", .type = IO_ATTR_I64, .i64 = 1};
    int r1 = ckpt_write(d, dir, 6, dup, 2, NULL, 0, 2, &err);
    int m1 = contains(err.msg, "dataset a given twice");
    int r2 = ckpt_write(d, dir, 6, dup, 1, &reserved, 1, 2, &err);
    int m2 = contains(err.msg, "attribute step is written by the checkpoint layer");
    dup[0].ndim = 0;
    int r3 = ckpt_write(d, dir, 6, dup, 1, NULL, 0, 2, &err);
    int m3 = contains(err.msg, "ndim 0");
    snprintf(path, sizeof path, "%s/ckpt_6.h5", dir);
    MPI_EXPECT(d, r1 && r2 && r3 && m1 && m2 && m3 && !file_exists(path),
               "unit: bad items/attributes refused, nothing written", "%d%d%d %d%d%d '%s'", r1, r2, r3, m1, m2, m3,
               err.msg);

    /* An empty directory: nothing to resume. A directory that cannot be created: error. */
    char *p = NULL;
    Err note;
    snprintf(path, sizeof path, "%s/empty", dir);
    rc = ckpt_find_resume(d, path, &p, &note, &err);
    MPI_EXPECT(d, rc == 1 && !p && !note.msg[0], "unit: find_resume in an empty dir returns 1", "rc %d", rc);
    snprintf(path, sizeof path, "%s/latest/sub", dir); /* latest is a file */
    rc = write_step(d, path, 1, 2, &err);
    MPI_EXPECT(d, rc != 0 && contains(err.msg, "cannot create directory"), "unit: unwritable dir is an error",
               "'%s'", err.msg);
}

int main(int argc, char **argv) {
    Dist d;
    dist_init(&d, &argc, &argv);
    mpi_test_begin(&d);
    if (argc < 3) {
        fprintf(stderr, "usage: mpi_checkpoint MODE ARGS...\n");
        return 2;
    }
    const char *mode = argv[1];
    Err err = {""};
    char name[512];
    int status = 0;
    if (!strcmp(mode, "write") && argc == 5) {
        const char *dir = argv[2];
        int64_t step = atoll(argv[3]);
        if (signals_install() != 0) FATAL("sigaction failed");
        char pidf[1024], pid[32];
        Err e;
        snprintf(pidf, sizeof pidf, "%s/pid.%d", dir, d.rank);
        snprintf(pid, sizeof pid, "%d\n", (int)getpid());
        make_dirs(dir, &e);
        atomic_write_all(pidf, pid, strlen(pid), &e);
        dist_barrier(&d);
        int rc = write_step(&d, dir, step, atoi(argv[4]), &err);
        snprintf(name, sizeof name, "write step %lld on %d ranks", (long long)step, d.size);
        MPI_EXPECT(&d, rc == 0, name, "%s", err.msg);
        /* The step boundary: a signal on any rank stops every rank. */
        if (dist_any(&d, signals_pending() != 0)) {
            printf("# stop signal seen after the checkpoint\n");
            status = EXIT_REQUEUE;
        }
    } else if (!strcmp(mode, "read") && argc == 4) {
        check_read(&d, argv[2], atoll(argv[3]), "read");
    } else if (!strcmp(mode, "resume") && argc == 5) {
        char *p = NULL;
        Err note;
        int rc = ckpt_find_resume(&d, argv[2], &p, &note, &err);
        if (d.rank == 0 && note.msg[0]) printf("# note: %s\n", note.msg);
        int note_ok = !strcmp(argv[4], "-") ? note.msg[0] == '\0' : contains(note.msg, argv[4]);
        if (!strcmp(argv[3], "error")) {
            snprintf(name, sizeof name, "resume refuses %s: error mentions '%s'", argv[2], argv[4]);
            MPI_EXPECT(&d, rc == -1 && !p && contains(err.msg, argv[4]) && contains(err.msg, argv[2]), name,
                       "rc %d: '%s'", rc, err.msg);
        } else if (!strcmp(argv[3], "none")) {
            snprintf(name, sizeof name, "resume: nothing to resume in %s", argv[2]);
            MPI_EXPECT(&d, rc == 1 && !p, name, "rc %d %s", rc, err.msg);
        } else {
            char want[1024];
            snprintf(want, sizeof want, "%s/ckpt_%s.h5", argv[2], argv[3]);
            snprintf(name, sizeof name, "resume picks ckpt_%s.h5, note %s '%s'", argv[3],
                     strcmp(argv[4], "-") ? "mentions" : "empty", strcmp(argv[4], "-") ? argv[4] : "");
            MPI_EXPECT(&d, rc == 0 && p && !strcmp(p, want) && note_ok, name, "rc %d path %s note '%s' err '%s'", rc,
                       p ? p : "-", note.msg, err.msg);
            if (rc == 0 && p) check_read(&d, p, atoll(argv[3]), "resume");
        }
        free(p);
    } else if (!strcmp(mode, "refuse") && argc >= 4) {
        int rc = ckpt_verify(&d, argv[2], &err);
        int all = 1;
        for (int i = 3; i < argc; i++) all &= contains(err.msg, argv[i]);
        if (d.rank == 0) printf("# refused: %s\n", err.msg);
        snprintf(name, sizeof name, "refuse %s: one-line error contains '%s'%s%s%s", argv[2], argv[3],
                 argc > 4 ? " and '" : "", argc > 4 ? argv[argc - 1] : "", argc > 4 ? "'" : "");
        MPI_EXPECT(&d, rc != 0 && all && !strchr(err.msg, '\n'), name, "rc %d: '%s'", rc, err.msg);
        Fixture f;
        fixture_make(&f, 0, 0);
        rc = ckpt_read(&d, argv[2], f.items, N_ITEMS, &err);
        fixture_free(&f);
        MPI_EXPECT(&d, rc != 0 && contains(err.msg, argv[2]), "refuse: ckpt_read fails too, naming the file", "'%s'",
                   err.msg);
    } else if (!strcmp(mode, "unit")) {
        unit(&d, argv[2]);
    } else {
        fprintf(stderr, "mpi_checkpoint: bad arguments\n");
        return 2;
    }
    int rc = test_finish();
    dist_finalize(&d);
    return status ? status : rc;
}
