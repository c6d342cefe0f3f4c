#include "io/traj_read.h"
#include "io/h5util.h"

#include <stdlib.h>
#include <string.h>

#define FORMAT_NAME "softcot-trajectory"

struct TrajReader {
    hid_t file;
    char *path;
};


/* The stored type in words, for "is X, expected Y" messages. */
static void describe_type(hid_t t, char *buf, size_t n) {
    static const TrajType all[] = {TRAJ_I32, TRAJ_I64, TRAJ_F32, TRAJ_U8};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (H5Tequal(t, h5u_traj_type_file(all[i])) > 0) {
            snprintf(buf, n, "%s", h5u_traj_type_name(all[i]));
            return;
        }
    H5T_class_t c = H5Tget_class(t);
    snprintf(buf, n, "%s of %zu bytes",
             c == H5T_INTEGER ? "an integer" : c == H5T_FLOAT ? "a float" : c == H5T_STRING ? "a string" : "a non-numeric type",
             H5Tget_size(t));
}

static int open_impl(const char *path, TrajReader **out, Err *err) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* A training job holds the file open for writing (through MPI-IO, which takes no
     * lock, but a serial writer would): reading must not need a lock. */
    if (fapl < 0 || H5Pset_file_locking(fapl, 0, 1) < 0) {
        if (fapl >= 0) H5Pclose(fapl);
        return err_set(err, "%s: cannot set up HDF5 file access", path);
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    char why[256] = "";
    if (f < 0) h5u_last_error(why, sizeof why); /* before H5Pclose resets the error stack */
    H5Pclose(fapl);
    if (f < 0) {
        if (strstr(why, "signature")) return err_set(err, "%s: not an HDF5 file (%s)", path, why);
        return err_set(err, "%s: cannot open as HDF5 (truncated or corrupted?): %s", path, why);
    }
    TrajReader *r = xcalloc(1, sizeof *r);
    r->file = f;
    r->path = xstrdup(path);
    char *fmt = NULL;
    int64_t version = 0;
    int rc = 0;
    if (H5Aexists(f, "format") <= 0)
        rc = err_set(err, "%s: not a softcot trajectory file (no root attribute 'format')", path);
    else if (h5u_attr_read_str(f, "format", &fmt, path, err))
        rc = err_set(err, "%s: not a softcot trajectory file (root attribute 'format' is not a fixed-length string)", path);
    else if (strcmp(fmt, FORMAT_NAME))
        rc = err_set(err, "%s: not a softcot trajectory file (format is '%.100s', expected '%s')", path, fmt, FORMAT_NAME);
    else if (h5u_attr_read_i64(f, "format_version", &version, path, err))
        rc = -1;
    else if (version < 1 || version > TRAJ_READ_MAX_VERSION)
        rc = err_set(err, "%s: trajectory format_version %lld is not supported (this softcot reads 1..%d; a newer softcot wrote it?)",
                     path, (long long)version, TRAJ_READ_MAX_VERSION);
    free(fmt);
    if (rc) {
        traj_read_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

int traj_read_open(const char *path, TrajReader **out, Err *err) {
    int rc = -1;
    *out = NULL;
    H5E_BEGIN_TRY {
        rc = open_impl(path, out, err);
    }
    H5E_END_TRY;
    return rc;
}

void traj_read_close(TrajReader *r) {
    if (!r) return;
    H5E_BEGIN_TRY {
        if (r->file >= 0) H5Fclose(r->file);
    }
    H5E_END_TRY;
    free(r->path);
    free(r);
}

const char *traj_read_path(const TrajReader *r) { return r->path; }

int traj_read_attr_i64(TrajReader *r, const char *name, int64_t *out, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = h5u_attr_read_i64(r->file, name, out, r->path, err);
    }
    H5E_END_TRY;
    return rc;
}

int traj_read_attr_str(TrajReader *r, const char *name, char **out, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = h5u_attr_read_str(r->file, name, out, r->path, err);
    }
    H5E_END_TRY;
    return rc;
}

int traj_read_has_attr(TrajReader *r, const char *name) {
    htri_t e = -1;
    H5E_BEGIN_TRY {
        e = H5Aexists(r->file, name);
    }
    H5E_END_TRY;
    return e > 0;
}

int traj_read_rows(TrajReader *r, const char *table, int64_t *rows, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        hid_t g = H5Lexists(r->file, table, H5P_DEFAULT) > 0 ? H5Gopen2(r->file, table, H5P_DEFAULT) : -1;
        if (g < 0) {
            rc = err_set(err, "%s: missing table /%s", r->path, table);
        } else {
            char where[1200];
            snprintf(where, sizeof where, "%s: table /%s", r->path, table);
            rc = h5u_attr_read_i64(g, "nrows", rows, where, err);
            if (!rc && *rows < 0) rc = err_set(err, "%s: negative nrows %lld", where, (long long)*rows);
            H5Gclose(g);
        }
    }
    H5E_END_TRY;
    return rc;
}

/* "/table/name" exists and is a dataset. */
static int exists(TrajReader *r, const char *table, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", table, name);
    H5O_info_t info;
    return H5Lexists(r->file, table, H5P_DEFAULT) > 0 && H5Lexists(r->file, p, H5P_DEFAULT) > 0 &&
           H5Oget_info_by_name(r->file, p, &info, H5P_DEFAULT) >= 0 && info.type == H5O_TYPE_DATASET;
}

int traj_read_has(TrajReader *r, const char *table, const char *col) {
    int e = 0;
    H5E_BEGIN_TRY {
        e = exists(r, table, col);
    }
    H5E_END_TRY;
    return e;
}

/* Opens /table/name, checks its type (unless type is ANY_TYPE) and width (when
 * width > 0); *rows and *width_out receive the extent of the first dimension and the
 * width. */
#define ANY_TYPE ((TrajType)0)
static hid_t open_dataset(TrajReader *r, const char *table, const char *name, TrajType type, int64_t width,
                          int64_t *rows, int64_t *width_out, Err *err) {
    if (!exists(r, table, name)) {
        err_set(err, "%s: missing dataset /%s/%s", r->path, table, name);
        return -1;
    }
    char p[512];
    snprintf(p, sizeof p, "%s/%s", table, name);
    hid_t d = H5Dopen2(r->file, p, H5P_DEFAULT);
    if (d < 0) {
        char why[256];
        h5u_last_error(why, sizeof why);
        err_set(err, "%s: cannot open dataset /%s: %s", r->path, p, why);
        return -1;
    }
    hid_t ft = H5Dget_type(d), sp = H5Dget_space(d);
    hsize_t dims[H5S_MAX_RANK] = {0};
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd >= 1 && nd <= 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    const int64_t w = nd == 2 ? (int64_t)dims[1] : 1;
    char got[64] = "unreadable";
    if (ft >= 0) describe_type(ft, got, sizeof got);
    int ok = ft >= 0 && (type == ANY_TYPE || H5Tequal(ft, h5u_traj_type_file(type)) > 0);
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    if (!ok) {
        err_set(err, "%s: dataset /%s is %s, expected %s", r->path, p, got, h5u_traj_type_name(type));
    } else if (nd < 1 || nd > 2) {
        err_set(err, "%s: dataset /%s has %d dimensions, expected 1 or 2", r->path, p, nd);
        ok = 0;
    } else if (width > 0 && w != width) {
        err_set(err, "%s: dataset /%s has width %lld, expected %lld", r->path, p, (long long)w, (long long)width);
        ok = 0;
    }
    if (!ok) {
        H5Dclose(d);
        return -1;
    }
    *rows = (int64_t)dims[0];
    if (width_out) *width_out = w;
    return d;
}

int traj_read_width(TrajReader *r, const char *table, const char *col, TrajType type, int64_t *width, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        int64_t rows;
        hid_t d = open_dataset(r, table, col, type, 0, &rows, width, err);
        if (d >= 0) {
            H5Dclose(d);
            rc = 0;
        }
    }
    H5E_END_TRY;
    return rc;
}

/* Rows [first, first + n) of /table/name (width values each) into buf. `what` names the
 * range in errors ("rows" or "elements"). */
static int read_range(TrajReader *r, const char *table, const char *name, TrajType type, int64_t width,
                      int64_t first, int64_t n, void *buf, const char *what, Err *err) {
    if (first < 0 || n < 0) return err_set(err, "%s: /%s/%s: bad range", r->path, table, name);
    int64_t rows = 0;
    hid_t d = open_dataset(r, table, name, type, width, &rows, NULL, err);
    if (d < 0) return -1;
    int rc = 0;
    if (first + n > rows) {
        rc = err_set(err, "%s: dataset /%s/%s has %lld %s, %lld needed (truncated or damaged file)", r->path, table,
                     name, (long long)rows, what, (long long)(first + n));
    } else if (n > 0) {
        hsize_t start[2] = {(hsize_t)first, 0}, count[2] = {(hsize_t)n, (hsize_t)width};
        hsize_t mdim = (hsize_t)(n * width);
        hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &mdim, NULL);
        if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(d, h5u_traj_type_mem(type), ms, fs, H5P_DEFAULT, buf) < 0) {
            char why[256];
            h5u_last_error(why, sizeof why);
            rc = err_set(err, "%s: cannot read /%s/%s %s %lld..%lld: %s", r->path, table, name, what, (long long)first,
                         (long long)(first + n - 1), why);
        }
        if (fs >= 0) H5Sclose(fs);
        if (ms >= 0) H5Sclose(ms);
    }
    H5Dclose(d);
    return rc;
}

int traj_read_fixed(TrajReader *r, const char *table, const char *col, TrajType type, int64_t width, int64_t row0,
                    int64_t n, void *buf, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = read_range(r, table, col, type, width, row0, n, buf, "rows", err);
    }
    H5E_END_TRY;
    return rc;
}

int traj_read_values(TrajReader *r, const char *table, const char *col, TrajType type, int64_t width, int64_t v0,
                     int64_t n, void *buf, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = read_range(r, table, col, type, width, v0, n, buf, "elements", err);
    }
    H5E_END_TRY;
    return rc;
}

int traj_read_offsets(TrajReader *r, const char *table, const char *col, int64_t row0, int64_t n, int64_t *off,
                      Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        char oname[300];
        snprintf(oname, sizeof oname, "%s_offsets", col);
        int64_t nvalues = 0;
        /* Only the values' extent matters here; their type is checked when they are read. */
        hid_t d = open_dataset(r, table, col, ANY_TYPE, 0, &nvalues, NULL, err);
        rc = d < 0 ? -1 : 0;
        if (d >= 0) H5Dclose(d);
        if (!rc) rc = read_range(r, table, oname, TRAJ_I64, 1, row0, n + 1, off, "rows", err);
        for (int64_t i = 0; i <= n && !rc; i++) {
            const int64_t at = row0 + i;
            if (at == 0 && off[i] != 0)
                rc = err_set(err, "%s: /%s/%s[0] is %lld, expected 0 (corrupted)", r->path, table, oname, (long long)off[i]);
            else if (i > 0 && off[i] < off[i - 1])
                rc = err_set(err, "%s: /%s/%s[%lld] = %lld is less than the entry before it, %lld (corrupted)", r->path,
                             table, oname, (long long)at, (long long)off[i], (long long)off[i - 1]);
            else if (off[i] > nvalues)
                rc = err_set(err, "%s: /%s/%s[%lld] = %lld points past the %lld elements of /%s/%s (truncated or damaged)",
                             r->path, table, oname, (long long)at, (long long)off[i], (long long)nvalues, table, col);
        }
    }
    H5E_END_TRY;
    return rc;
}
