#include "io/trajectory.h"
#include "io/h5util.h"

#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

#define FORMAT_NAME "softcot-trajectory"
#define FORMAT_VERSION 1
#define ATTR_NROWS "nrows"
/* Target chunk size: large enough for good deflate ratios and few chunk-index entries,
 * small enough that a short run's file stays small. */
#define CHUNK_BYTES ((int64_t)256 << 10)

typedef struct {
    char *name;
    TrajType type;
    int64_t width;
    int ragged;
    hid_t values, offsets; /* offsets only when ragged */
    int64_t nvalues;       /* committed elements (ragged) */
} TCol;

typedef struct {
    char *name;
    hid_t group;
    int n_cols, step_col;
    TCol *cols;
    int64_t nrows;
} TTable;

struct TrajWriter {
    Dist *d;
    hid_t file, dxpl;
    char *path;
    int n_tables;
    TTable *t;
    int compressed;
    int trimmed; /* open_append shrank a dataset (see traj_truncate_to_step) */
};

static size_t type_size(TrajType t) {
    return t == TRAJ_I32 || t == TRAJ_F32 ? 4 : t == TRAJ_I64 ? 8 : 1;
}


/* ------------------------------------------------------------------ schema */

static int validate_schema(const char *path, const TrajTable *tables, int n_tables, Err *err) {
    if (n_tables < 1) return err_set(err, "%s: no tables", path);
    for (int i = 0; i < n_tables; i++) {
        const TrajTable *t = &tables[i];
        if (!t->name || !*t->name || strchr(t->name, '/')) return err_set(err, "%s: table %d: bad name", path, i);
        for (int j = 0; j < i; j++)
            if (!strcmp(tables[j].name, t->name)) return err_set(err, "%s: table %s declared twice", path, t->name);
        int has_step = 0;
        for (int c = 0; c < t->n_cols; c++) {
            const TrajColumn *col = &t->cols[c];
            if (!col->name || !*col->name || strchr(col->name, '/'))
                return err_set(err, "%s: table %s: column %d: bad name", path, t->name, c);
            if (col->type < TRAJ_I32 || col->type > TRAJ_U8 || col->width < 1)
                return err_set(err, "%s: %s/%s: bad type or width", path, t->name, col->name);
            for (int k = 0; k < t->n_cols; k++) {
                if (k != c && !strcmp(t->cols[k].name, col->name))
                    return err_set(err, "%s: %s/%s declared twice", path, t->name, col->name);
                /* "x" ragged stores "x_offsets": no other column may use that name. */
                size_t n = strlen(t->cols[k].name);
                if (t->cols[k].ragged && !strncmp(col->name, t->cols[k].name, n) && !strcmp(col->name + n, "_offsets"))
                    return err_set(err, "%s: %s/%s clashes with the offsets of ragged column %s", path, t->name,
                                   col->name, t->cols[k].name);
            }
            if (!strcmp(col->name, "step")) {
                if (col->type != TRAJ_I64 || col->width != 1 || col->ragged)
                    return err_set(err, "%s: %s/step must be a scalar int64 column", path, t->name);
                has_step = 1;
            }
        }
        if (!has_step) return err_set(err, "%s: table %s has no int64 \"step\" column", path, t->name);
    }
    return 0;
}

static char *offsets_name(const char *col) {
    size_t n = strlen(col);
    char *s = xmalloc(n + 9);
    memcpy(s, col, n);
    memcpy(s + n, "_offsets", 9);
    return s;
}

static void writer_free(TrajWriter *w) {
    if (!w) return;
    for (int i = 0; i < w->n_tables; i++) {
        TTable *t = &w->t[i];
        for (int c = 0; c < t->n_cols; c++) {
            if (t->cols[c].values >= 0) H5Dclose(t->cols[c].values);
            if (t->cols[c].offsets >= 0) H5Dclose(t->cols[c].offsets);
            free(t->cols[c].name);
        }
        free(t->cols);
        if (t->group >= 0) H5Gclose(t->group);
        free(t->name);
    }
    free(w->t);
    if (w->file >= 0) H5Fclose(w->file);
    if (w->dxpl >= 0) H5Pclose(w->dxpl);
    free(w->path);
    free(w);
}

static TrajWriter *writer_new(Dist *d, const char *path, const TrajTable *tables, int n_tables) {
    TrajWriter *w = xcalloc(1, sizeof *w);
    w->d = d;
    w->file = w->dxpl = -1;
    w->path = xstrdup(path);
    w->n_tables = n_tables;
    w->t = xcalloc((size_t)n_tables, sizeof *w->t);
    for (int i = 0; i < n_tables; i++) {
        TTable *t = &w->t[i];
        t->name = xstrdup(tables[i].name);
        t->group = -1;
        t->n_cols = tables[i].n_cols;
        t->cols = xcalloc((size_t)t->n_cols, sizeof *t->cols);
        for (int c = 0; c < t->n_cols; c++) {
            const TrajColumn *src = &tables[i].cols[c];
            TCol *col = &t->cols[c];
            col->name = xstrdup(src->name);
            col->type = src->type;
            col->width = src->width;
            col->ragged = src->ragged != 0;
            col->values = col->offsets = -1;
            if (!strcmp(src->name, "step")) t->step_col = c;
        }
    }
    return w;
}

/* ------------------------------------------------------------------ collective I/O */

/* Collective write or read of `nrows` rows starting at row `row0` of a dataset whose
 * current extent is `extent` rows of `width` values, in `pieces` calls (the largest piece
 * count of any rank; the caller agrees on it). */
static int xfer_rows(TrajWriter *w, hid_t dset, TrajType type, int64_t extent, int64_t width, int64_t row0,
                     int64_t nrows, void *buf, int writing, int64_t pieces, char *why, size_t why_size) {
    int ndim = width > 1 ? 2 : 1;
    int64_t dims[2] = {extent, width};
    int64_t es = (int64_t)type_size(type);
    int64_t max_el = H5U_PIECE_BYTES_MAX / es;
    int64_t pos = row0 * width, end = (row0 + nrows) * width;
    hid_t fspace = H5Dget_space(dset);
    int failed = fspace < 0;
    if (failed) snprintf(why, why_size, "cannot get dataspace");
    unsigned char dummy[8];
    for (int64_t i = 0; i < pieces; i++) {
        H5uPiece p;
        int have = h5u_next_piece(ndim, dims, &pos, end, max_el, &p);
        hsize_t mdim = have ? (hsize_t)p.nelem : 1;
        hid_t mspace = H5Screate_simple(1, &mdim, NULL);
        herr_t e = mspace < 0 || fspace < 0 ? -1 : 0;
        if (e >= 0 && have)
            e = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, p.start, NULL, p.count, NULL);
        else if (e >= 0)
            e = H5Sselect_none(fspace) < 0 || H5Sselect_none(mspace) < 0 ? -1 : 0;
        void *mem = have ? (char *)buf + (size_t)(p.first - row0 * width) * (size_t)es : (void *)dummy;
        if (e >= 0)
            e = writing ? H5Dwrite(dset, h5u_traj_type_mem(type), mspace, fspace, w->dxpl, mem)
                        : H5Dread(dset, h5u_traj_type_mem(type), mspace, fspace, w->dxpl, mem);
        if (e < 0 && !failed) {
            failed = 1;
            h5u_last_error(why, why_size);
        }
        if (mspace >= 0) H5Sclose(mspace);
    }
    if (fspace >= 0) H5Sclose(fspace);
    return failed ? -1 : 0;
}

/* The number of calls xfer_rows needs for nrows rows starting at row0 (exact, so the
 * collective call count agreed by max over ranks covers every rank's data). */
static int64_t pieces_for(TrajType type, int64_t width, int64_t row0, int64_t nrows) {
    int64_t dims[2] = {row0 + nrows, width};
    return h5u_count_pieces(width > 1 ? 2 : 1, dims, row0 * width, (row0 + nrows) * width,
                            H5U_PIECE_BYTES_MAX / (int64_t)type_size(type));
}

static int set_rows(hid_t dset, int64_t rows, int64_t width) {
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)width};
    return H5Dset_extent(dset, dims) < 0 ? -1 : 0;
}

/* Reads `n` int64 values starting at `first` of a 1-D dataset on every rank. */
static int read_i64_all(TrajWriter *w, hid_t dset, int64_t extent, int64_t first, int64_t n, int64_t *out, Err *err,
                        const char *what) {
    char why[256] = "";
    int rc = xfer_rows(w, dset, TRAJ_I64, extent, 1, first, n, out, 0, pieces_for(TRAJ_I64, 1, first, n), why, sizeof why);
    if (rc) err_set(err, "%s: cannot read %s: %s", w->path, what, why);
    return h5u_agree(w->d, rc, err);
}

static int write_nrows_attr(TrajWriter *w, TTable *t, Err *err) {
    IoAttr a = {.name = ATTR_NROWS, .type = IO_ATTR_I64, .i64 = t->nrows};
    char where[1200];
    snprintf(where, sizeof where, "%s: table %s", w->path, t->name);
    return h5u_attr_write(t->group, &a, where, err);
}

/* ------------------------------------------------------------------ create */

static hid_t make_dataset(TrajWriter *w, hid_t group, const char *name, TrajType type, int64_t width, int level,
                          const char *doc, Err *err, const char *table) {
    int ndim = width > 1 ? 2 : 1;
    hsize_t dims[2] = {0, (hsize_t)width}, maxd[2] = {H5S_UNLIMITED, (hsize_t)width};
    int64_t crow = CHUNK_BYTES / ((int64_t)type_size(type) * width);
    hsize_t chunk[2] = {(hsize_t)(crow < 1 ? 1 : crow), (hsize_t)width};
    hid_t space = H5Screate_simple(ndim, dims, maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE), dset = -1;
    if (space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, ndim, chunk) >= 0 &&
        (level <= 0 || (H5Pset_shuffle(dcpl) >= 0 && H5Pset_deflate(dcpl, (unsigned)level) >= 0)))
        dset = H5Dcreate2(group, name, h5u_traj_type_file(type), space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dset < 0) {
        char why[256];
        h5u_last_error(why, sizeof why);
        err_set(err, "%s: cannot create dataset %s/%s: %s", w->path, table, name, why);
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    if (dset >= 0 && doc) {
        IoAttr a = {.name = "doc", .type = IO_ATTR_STR, .str = doc};
        char where[1200];
        snprintf(where, sizeof where, "%s: %s/%s", w->path, table, name);
        if (h5u_attr_write(dset, &a, where, err)) {
            H5Dclose(dset);
            dset = -1;
        }
    }
    return dset;
}

/* Does a filtered dataset survive an extend + collective write + read-back here? Parallel
 * HDF5 before 1.10.2 refuses filters outright; some MPI-IO setups fail at write time. */
static int deflate_works(TrajWriter *w, int level, char *why, size_t why_size) {
    Err e = {""};
    if (!H5Zfilter_avail(H5Z_FILTER_DEFLATE) || !H5Zfilter_avail(H5Z_FILTER_SHUFFLE)) {
        snprintf(why, why_size, "deflate or shuffle filter not available");
        return h5u_agree(w->d, -1, &e), 0;
    }
    hid_t dset = make_dataset(w, w->file, "compression_probe", TRAJ_I64, 1, level, NULL, &e, "");
    int rc = dset < 0 ? -1 : 0;
    int64_t mine[3] = {w->d->rank, 7, -(int64_t)w->d->rank}, back[3] = {0};
    int64_t n = 3 * (int64_t)w->d->size;
    if (!rc) rc = set_rows(dset, n, 1);
    if (!rc) {
        char msg[256] = "";
        rc = xfer_rows(w, dset, TRAJ_I64, n, 1, 3 * w->d->rank, 3, mine, 1, 2, msg, sizeof msg);
        if (!rc) rc = xfer_rows(w, dset, TRAJ_I64, n, 1, 3 * w->d->rank, 3, back, 0, 2, msg, sizeof msg);
        if (rc) err_set(&e, "%s", msg);
        if (!rc && memcmp(mine, back, sizeof mine) != 0) rc = err_set(&e, "read-back differs");
    }
    if (dset >= 0) H5Dclose(dset);
    H5Ldelete(w->file, "compression_probe", H5P_DEFAULT);
    if (h5u_agree(w->d, rc, &e)) {
        snprintf(why, why_size, "%.250s", e.msg[0] ? e.msg : "collective write with deflate failed");
        return 0;
    }
    return 1;
}

static int create_impl(Dist *d, const char *path, const TrajTable *tables, int n_tables, const IoAttr *attrs,
                       int n_attrs, int level, TrajWriter **out, Err *err) {
    *out = NULL;
    int rc = validate_schema(path, tables, n_tables, err);
    if (h5u_agree(d, rc, err)) return -1;
    TrajWriter *w = writer_new(d, path, tables, n_tables);
    hid_t fapl = h5u_fapl(d);
    w->dxpl = h5u_dxpl_collective();
    if (fapl >= 0 && w->dxpl >= 0) w->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (w->file < 0) {
        char why[256];
        h5u_last_error(why, sizeof why);
        rc = err_set(err, "%s: cannot create: %s", path, why);
    }
    if (fapl >= 0) H5Pclose(fapl);
    if (h5u_agree(d, rc, err)) goto fail;

    char comp[400] = "none";
    if (level > 9) level = 9;
    if (level > 0) {
        char why[300] = "";
        if (deflate_works(w, level, why, sizeof why)) {
            w->compressed = 1;
            snprintf(comp, sizeof comp, "deflate level %d, shuffle", level);
        } else {
            snprintf(comp, sizeof comp, "none (deflate with collective writes failed: %s)", why);
        }
    }
    IoAttr fixed[] = {
        {.name = "format", .type = IO_ATTR_STR, .str = FORMAT_NAME},
        {.name = "format_version", .type = IO_ATTR_I64, .i64 = FORMAT_VERSION},
        {.name = "softcot_version", .type = IO_ATTR_STR, .str = SOFTCOT_VERSION},
        {.name = "compression", .type = IO_ATTR_STR, .str = comp},
        {.name = "world_size", .type = IO_ATTR_I64, .i64 = d->size},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && !rc; i++) rc = h5u_attr_write(w->file, &fixed[i], path, err);
    for (int i = 0; i < n_attrs && !rc; i++) rc = h5u_attr_write(w->file, &attrs[i], path, err);
    if (h5u_agree(d, rc, err)) goto fail;

    int lvl = w->compressed ? level : 0;
    for (int i = 0; i < n_tables && !rc; i++) {
        TTable *t = &w->t[i];
        t->group = H5Gcreate2(w->file, t->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (t->group < 0) {
            rc = err_set(err, "%s: cannot create group %s", path, t->name);
            break;
        }
        if (tables[i].doc) {
            IoAttr a = {.name = "doc", .type = IO_ATTR_STR, .str = tables[i].doc};
            rc = h5u_attr_write(t->group, &a, path, err);
        }
        if (!rc) rc = write_nrows_attr(w, t, err);
        for (int c = 0; c < t->n_cols && !rc; c++) {
            TCol *col = &t->cols[c];
            col->values = make_dataset(w, t->group, col->name, col->type, col->width, lvl, tables[i].cols[c].doc, err,
                                       t->name);
            if (col->values < 0) rc = -1;
            if (!rc && col->ragged) {
                char *on = offsets_name(col->name);
                char doc[600];
                snprintf(doc, sizeof doc, "CSR offsets into %s: row i owns %s[offsets[i]:offsets[i+1]]", col->name,
                         col->name);
                col->offsets = make_dataset(w, t->group, on, TRAJ_I64, 1, lvl, doc, err, t->name);
                free(on);
                if (col->offsets < 0) rc = -1;
                /* offsets[0] = 0, written by rank 0 while the others select nothing. */
                int64_t zero = 0;
                char why[256] = "";
                if (!rc) rc = set_rows(col->offsets, 1, 1);
                if (!rc) rc = xfer_rows(w, col->offsets, TRAJ_I64, 1, 1, 0, d->rank == 0, &zero, 1, 1, why, sizeof why);
                if (rc && why[0]) err_set(err, "%s: cannot write %s/%s_offsets: %s", path, t->name, col->name, why);
            }
        }
    }
    if (h5u_agree(d, rc, err)) goto fail;
    *out = w;
    return 0;
fail:
    writer_free(w);
    return -1;
}

int traj_create(Dist *d, const char *path, const TrajTable *tables, int n_tables, const IoAttr *attrs, int n_attrs,
                int deflate_level, TrajWriter **out, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = create_impl(d, path, tables, n_tables, attrs, n_attrs, deflate_level, out, err);
    }
    H5E_END_TRY;
    return rc;
}

/* ------------------------------------------------------------------ reopen */

/* Opens name in group and checks type and width; *rows receives the extent. */
static hid_t open_column(TrajWriter *w, TTable *t, const char *name, TrajType type, int64_t width, int64_t *rows,
                         Err *err) {
    if (H5Lexists(t->group, name, H5P_DEFAULT) <= 0) {
        err_set(err, "%s: missing dataset %s/%s (schema differs)", w->path, t->name, name);
        return -1;
    }
    hid_t dset = H5Dopen2(t->group, name, H5P_DEFAULT);
    if (dset < 0) {
        err_set(err, "%s: cannot open %s/%s", w->path, t->name, name);
        return -1;
    }
    hid_t ft = H5Dget_type(dset), sp = H5Dget_space(dset);
    hsize_t dims[H5S_MAX_RANK] = {0, 0};
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    int ok = ft >= 0 && nd >= 1 && nd <= 2 && H5Sget_simple_extent_dims(sp, dims, NULL) >= 0 &&
             H5Tequal(ft, h5u_traj_type_file(type)) > 0 && (nd == 2 ? (int64_t)dims[1] == width : width == 1);
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    if (!ok) {
        H5Dclose(dset);
        err_set(err, "%s: dataset %s/%s is not %s with width %lld (schema differs)", w->path, t->name, name,
                h5u_traj_type_name(type), (long long)width);
        return -1;
    }
    *rows = (int64_t)dims[0];
    return dset;
}

static int open_impl(Dist *d, const char *path, const TrajTable *tables, int n_tables, TrajWriter **out, Err *err) {
    *out = NULL;
    int rc = validate_schema(path, tables, n_tables, err);
    if (!rc && !file_exists(path)) rc = err_set(err, "%s: no such file", path);
    if (h5u_agree(d, rc, err)) return -1;
    TrajWriter *w = writer_new(d, path, tables, n_tables);
    hid_t fapl = h5u_fapl(d);
    w->dxpl = h5u_dxpl_collective();
    if (fapl >= 0 && w->dxpl >= 0) w->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    if (w->file < 0) {
        char why[256];
        h5u_last_error(why, sizeof why);
        rc = err_set(err, "%s: cannot open trajectory file: %s", path, why);
    }
    if (fapl >= 0) H5Pclose(fapl);
    char *fmt = NULL, *comp = NULL;
    if (!rc) rc = h5u_attr_read_str(w->file, "format", &fmt, path, err);
    if (!rc && strcmp(fmt, FORMAT_NAME)) rc = err_set(err, "%s: not a softcot trajectory file", path);
    if (!rc) rc = h5u_attr_read_str(w->file, "compression", &comp, path, err);
    if (!rc) w->compressed = !strncmp(comp, "deflate", 7);
    free(fmt);
    free(comp);
    if (h5u_agree(d, rc, err)) goto fail;
    for (int i = 0; i < n_tables && !rc; i++) {
        TTable *t = &w->t[i];
        if (H5Lexists(w->file, t->name, H5P_DEFAULT) <= 0 || (t->group = H5Gopen2(w->file, t->name, H5P_DEFAULT)) < 0) {
            rc = err_set(err, "%s: missing table %s (schema differs)", path, t->name);
            break;
        }
        char where[1200];
        snprintf(where, sizeof where, "%s: table %s", path, t->name);
        rc = h5u_attr_read_i64(t->group, ATTR_NROWS, &t->nrows, where, err);
        for (int c = 0; c < t->n_cols && !rc; c++) {
            TCol *col = &t->cols[c];
            int64_t rows = 0, orows = 0;
            col->values = open_column(w, t, col->name, col->type, col->width, &rows, err);
            if (col->values < 0) {
                rc = -1;
                break;
            }
            if (!col->ragged) {
                if (rows < t->nrows) rc = err_set(err, "%s: %s/%s has %lld rows, fewer than nrows %lld", path, t->name,
                                                  col->name, (long long)rows, (long long)t->nrows);
                /* Rows beyond nrows come from an append cut short by a crash. */
                if (!rc && rows > t->nrows) rc = set_rows(col->values, t->nrows, col->width), w->trimmed = 1;
                continue;
            }
            char *on = offsets_name(col->name);
            col->offsets = open_column(w, t, on, TRAJ_I64, 1, &orows, err);
            free(on);
            if (col->offsets < 0 || orows < t->nrows + 1) {
                rc = col->offsets < 0 ? -1
                                      : err_set(err, "%s: %s/%s_offsets is shorter than nrows + 1", path, t->name,
                                                col->name);
                break;
            }
            if (read_i64_all(w, col->offsets, orows, t->nrows, 1, &col->nvalues, err, "offsets")) {
                rc = -1;
                break;
            }
            if (col->nvalues > rows) rc = err_set(err, "%s: %s/%s is shorter than its offsets say", path, t->name, col->name);
            if (!rc && orows > t->nrows + 1) rc = set_rows(col->offsets, t->nrows + 1, 1), w->trimmed = 1;
            if (!rc && rows > col->nvalues) rc = set_rows(col->values, col->nvalues, col->width), w->trimmed = 1;
        }
        /* A file with more columns than declared is a schema difference too. */
        if (!rc) {
            H5G_info_t gi;
            int64_t want = 0;
            for (int c = 0; c < t->n_cols; c++) want += 1 + t->cols[c].ragged;
            if (H5Gget_info(t->group, &gi) < 0 || (int64_t)gi.nlinks != want)
                rc = err_set(err, "%s: table %s has %lld datasets, the schema declares %lld (schema differs)", path,
                             t->name, (long long)gi.nlinks, (long long)want);
        }
    }
    if (h5u_agree(d, rc, err)) goto fail;
    *out = w;
    return 0;
fail:
    writer_free(w);
    return -1;
}

static int reopen(TrajWriter *w, Err *err);

int traj_open_append(Dist *d, const char *path, const TrajTable *tables, int n_tables, TrajWriter **out, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = open_impl(d, path, tables, n_tables, out, err);
        /* Trimming an interrupted append shrank datasets: drop the chunk cache (see
         * traj_truncate_to_step). */
        if (rc == 0 && (*out)->trimmed && reopen(*out, err) != 0) {
            writer_free(*out);
            *out = NULL;
            rc = -1;
        }
    }
    H5E_END_TRY;
    return rc;
}

/* ------------------------------------------------------------------ append */

static int append_impl(TrajWriter *w, int ti, const TrajData *cols, int64_t n, Err *err) {
    Dist *d = w->d;
    int rc = 0;
    if (ti < 0 || ti >= w->n_tables) return err_set(err, "%s: no table %d", w->path, ti);
    TTable *t = &w->t[ti];
    /* counts[0] = rows, counts[1 + c] = ragged column c's elements (this rank). */
    int64_t *cnt = xcalloc((size_t)t->n_cols + 1, sizeof *cnt);
    cnt[0] = n;
    if (n < 0) rc = err_set(err, "%s: table %s: negative row count", w->path, t->name);
    for (int c = 0; c < t->n_cols && !rc; c++) {
        TCol *col = &t->cols[c];
        if (col->ragged) {
            if (n > 0 && !cols[c].lengths) {
                rc = err_set(err, "%s: %s/%s: ragged column without lengths", w->path, t->name, col->name);
                break;
            }
            for (int64_t i = 0; i < n; i++) {
                if (cols[c].lengths[i] < 0) {
                    rc = err_set(err, "%s: %s/%s: negative length", w->path, t->name, col->name);
                    break;
                }
                cnt[1 + c] += cols[c].lengths[i];
            }
        }
        int64_t need = col->ragged ? cnt[1 + c] : n;
        if (!rc && need > 0 && !cols[c].values)
            rc = err_set(err, "%s: %s/%s: no data for %lld rows", w->path, t->name, col->name, (long long)n);
    }
    /* Steps must not go backwards, within this rank's rows (across ranks the caller
     * appends one step at a time, so the check below suffices for the truncation logic). */
    const int64_t *steps = cols[t->step_col].values;
    for (int64_t i = 1; i < n && !rc; i++)
        if (steps[i] < steps[i - 1]) rc = err_set(err, "%s: %s: step column decreases", w->path, t->name);
    if (h5u_agree(d, rc, err)) {
        free(cnt);
        return -1;
    }

    int64_t *before = xcalloc((size_t)t->n_cols + 1, sizeof *before);
    int64_t *total = xmalloc(((size_t)t->n_cols + 1) * sizeof *total);
    double *pieces = xcalloc((size_t)t->n_cols * 2, sizeof *pieces);
    for (int k = 0; k <= t->n_cols; k++) {
        if (k > 0 && !t->cols[k - 1].ragged) continue;
        before[k] = dist_exscan_i64(d, cnt[k]);
    }
    memcpy(total, cnt, ((size_t)t->n_cols + 1) * sizeof *total);
    dist_allreduce_sum_i64(d, total, (size_t)t->n_cols + 1);
    for (int c = 0; c < t->n_cols; c++) {
        TCol *col = &t->cols[c];
        pieces[2 * c] = col->ragged ? (double)pieces_for(col->type, col->width, col->nvalues + before[1 + c], cnt[1 + c])
                                    : (double)pieces_for(col->type, col->width, t->nrows + before[0], n);
        pieces[2 * c + 1] = col->ragged ? (double)pieces_for(TRAJ_I64, 1, t->nrows + before[0] + 1, n) : 0;
    }
    dist_allreduce_max_f64(d, pieces, (size_t)t->n_cols * 2);

    int64_t *offs = NULL;
    char why[256] = "";
    for (int c = 0; c < t->n_cols && !rc; c++) {
        TCol *col = &t->cols[c];
        if (!col->ragged) {
            int64_t rows = t->nrows + total[0];
            rc = set_rows(col->values, rows, col->width);
            if (!rc)
                rc = xfer_rows(w, col->values, col->type, rows, col->width, t->nrows + before[0], n,
                               (void *)cols[c].values, 1, (int64_t)pieces[2 * c], why, sizeof why);
        } else {
            int64_t vals = col->nvalues + total[1 + c];
            rc = set_rows(col->values, vals, col->width);
            if (!rc)
                rc = xfer_rows(w, col->values, col->type, vals, col->width, col->nvalues + before[1 + c], cnt[1 + c],
                               (void *)cols[c].values, 1, (int64_t)pieces[2 * c], why, sizeof why);
            /* This rank's rows end at these global element offsets. */
            offs = xrealloc(offs, (size_t)(n ? n : 1) * sizeof *offs);
            int64_t run = col->nvalues + before[1 + c];
            for (int64_t i = 0; i < n; i++) offs[i] = run += cols[c].lengths[i];
            int64_t orows = t->nrows + total[0] + 1;
            if (!rc) rc = set_rows(col->offsets, orows, 1);
            if (!rc)
                rc = xfer_rows(w, col->offsets, TRAJ_I64, orows, 1, t->nrows + before[0] + 1, n, offs, 1,
                               (int64_t)pieces[2 * c + 1], why, sizeof why);
        }
        if (rc) err_set(err, "%s: cannot append to %s/%s: %s", w->path, t->name, col->name, why[0] ? why : "HDF5 error");
    }
    free(offs);
    if (!h5u_agree(d, rc, err)) {
        t->nrows += total[0];
        for (int c = 0; c < t->n_cols; c++)
            if (t->cols[c].ragged) t->cols[c].nvalues += total[1 + c];
        /* Committed only now: a crash before this line leaves the old nrows, and
         * traj_open_append trims the partial rows. */
        rc = write_nrows_attr(w, t, err);
        rc = h5u_agree(d, rc, err);
    } else {
        rc = -1;
    }
    free(cnt), free(before), free(total), free(pieces);
    return rc;
}

int traj_append(TrajWriter *w, int table, const TrajData *cols, int64_t n_rows, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = append_impl(w, table, cols, n_rows, err);
    }
    H5E_END_TRY;
    return rc;
}

/* ------------------------------------------------------------------ truncate */

static int truncate_impl(TrajWriter *w, int64_t step, Err *err) {
    int rc = 0;
    for (int i = 0; i < w->n_tables && !rc; i++) {
        TTable *t = &w->t[i];
        if (t->nrows == 0) continue;
        int64_t *steps = xmalloc((size_t)t->nrows * sizeof *steps);
        rc = read_i64_all(w, t->cols[t->step_col].values, t->nrows, 0, t->nrows, steps, err, "step column");
        int64_t keep = 0;
        for (int64_t r = 0; r < t->nrows && !rc; r++) {
            if (r && steps[r] < steps[r - 1]) rc = err_set(err, "%s: %s/step is not sorted at row %lld", w->path, t->name, (long long)r);
            if (steps[r] <= step) keep = r + 1;
        }
        free(steps);
        if (h5u_agree(w->d, rc, err)) return -1;
        if (keep == t->nrows) continue;
        for (int c = 0; c < t->n_cols && !rc; c++) {
            TCol *col = &t->cols[c];
            if (!col->ragged) {
                rc = set_rows(col->values, keep, col->width);
                continue;
            }
            int64_t nv = 0;
            if (read_i64_all(w, col->offsets, t->nrows + 1, keep, 1, &nv, err, "offsets")) return -1;
            rc = set_rows(col->values, nv, col->width) || set_rows(col->offsets, keep + 1, 1) ? -1 : 0;
            if (!rc) col->nvalues = nv;
        }
        if (rc) err_set(err, "%s: cannot shrink table %s", w->path, t->name);
        if (!rc) {
            t->nrows = keep;
            rc = write_nrows_attr(w, t, err);
        }
        if (h5u_agree(w->d, rc, err)) return -1;
    }
    return rc;
}

/* Closes every handle of w and opens the file again into the same writer. */
static int reopen(TrajWriter *w, Err *err) {
    int n = w->n_tables;
    TrajTable *tables = xcalloc((size_t)n, sizeof *tables);
    for (int i = 0; i < n; i++) {
        TrajColumn *cols = xcalloc((size_t)w->t[i].n_cols, sizeof *cols);
        for (int c = 0; c < w->t[i].n_cols; c++) {
            const TCol *col = &w->t[i].cols[c];
            cols[c] = (TrajColumn){col->name, col->type, col->width, col->ragged, NULL};
        }
        tables[i] = (TrajTable){w->t[i].name, cols, w->t[i].n_cols, NULL};
    }
    TrajWriter *fresh = NULL;
    int rc = H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0 ? err_set(err, "%s: flush failed", w->path) : 0;
    if (h5u_agree(w->d, rc, err) == 0) rc = open_impl(w->d, w->path, tables, n, &fresh, err);
    for (int i = 0; i < n; i++) free((void *)tables[i].cols);
    free(tables);
    if (rc) return -1;
    /* Swap the fresh handles into w, so the caller's pointer stays valid. */
    TrajWriter old = *w;
    *w = *fresh;
    *fresh = old;
    writer_free(fresh);
    return 0;
}

int traj_truncate_to_step(TrajWriter *w, int64_t step, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = truncate_impl(w, step, err);
        /* Shrinking rewrites the chunk that straddles the new end through HDF5's chunk
         * cache, while later parallel appends write to the file directly; the stale
         * cached chunk, flushed at close, then overwrote the appended rows (HDF5 1.10.8,
         * with and without deflate). Closing and reopening the file after a truncation
         * flushes and drops that cache first. */
        if (rc == 0) rc = reopen(w, err);
    }
    H5E_END_TRY;
    return rc;
}

int64_t traj_rows(const TrajWriter *w, int table) {
    return table >= 0 && table < w->n_tables ? w->t[table].nrows : -1;
}

int traj_compressed(const TrajWriter *w) {
    return w->compressed;
}

int traj_flush(TrajWriter *w, Err *err) {
    herr_t e = 0;
    H5E_BEGIN_TRY {
        e = H5Fflush(w->file, H5F_SCOPE_GLOBAL);
    }
    H5E_END_TRY;
    int rc = e < 0 ? err_set(err, "%s: flush failed", w->path) : 0;
    return h5u_agree(w->d, rc, err);
}

int traj_close(TrajWriter *w, Err *err) {
    int rc = traj_flush(w, err);
    H5E_BEGIN_TRY {
        for (int i = 0; i < w->n_tables; i++) {
            TTable *t = &w->t[i];
            for (int c = 0; c < t->n_cols; c++) {
                if (t->cols[c].values >= 0) H5Dclose(t->cols[c].values);
                if (t->cols[c].offsets >= 0) H5Dclose(t->cols[c].offsets);
                t->cols[c].values = t->cols[c].offsets = -1;
            }
            if (t->group >= 0) H5Gclose(t->group);
            t->group = -1;
        }
        if (H5Fclose(w->file) < 0 && !rc) rc = err_set(err, "%s: close failed", w->path);
        w->file = -1;
        writer_free(w);
    }
    H5E_END_TRY;
    return rc;
}
