#include "io/checkpoint.h"
#include "io/h5util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "io/crc32c.h"

#define FORMAT_NAME "softcot-checkpoint"
#define FORMAT_VERSION 1
#define ATTR_CRC "crc32c"
/* Verification reads into a scratch buffer of at most this many bytes per piece. */
#define VERIFY_PIECE_BYTES ((int64_t)64 << 20)

struct CkptReader {
    Dist *d;
    hid_t file, dxpl;
    char *path;
    char **names;
    int n_names, cap_names;
};

static size_t dtype_size(CkptDtype t) {
    return t == CKPT_F32 ? 4 : 8;
}

static const char *dtype_name(CkptDtype t) {
    return t == CKPT_F32 ? "float32" : "int64";
}

static hid_t dtype_file(CkptDtype t) {
    return t == CKPT_F32 ? H5T_IEEE_F32LE : H5T_STD_I64LE;
}

static hid_t dtype_mem(CkptDtype t) {
    return t == CKPT_F32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64;
}

static int64_t n_elems(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

static void shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (k < size) snprintf(buf + k, size - k, "]");
}

static int64_t piece_bytes_limit(void) {
    return h5u_env_i64("SOFTCOT_CKPT_PIECE_BYTES", H5U_PIECE_BYTES_MAX, 8, H5U_PIECE_BYTES_MAX);
}

/* Combines the per-rank slab CRCs (each rank's own in `mine`) into the CRC of the whole
 * tensor, in rank order. Collective. */
static uint32_t combine_slab_crcs(Dist *d, uint32_t mine, int64_t nelem, size_t elsize) {
    int32_t v = (int32_t)mine;
    int32_t *all = NULL;
    int64_t n = 0;
    dist_allgatherv_i32(d, &v, 1, &all, &n, NULL);
    uint32_t crc = 0;
    for (int r = 0; r < d->size; r++) {
        int64_t b, e;
        dist_shard(nelem, r, d->size, &b, &e);
        crc = crc32c_combine(crc, (uint32_t)all[r], (uint64_t)(e - b) * elsize);
    }
    free(all);
    return crc;
}

/* Collective transfer of this rank's slab of a dataset, in pieces of at most piece_bytes.
 * Every rank makes the same number of H5Dwrite/H5Dread calls (the largest piece count
 * of any rank; ranks out of pieces select nothing), as collective I/O requires; after a
 * failure a rank keeps taking part so that no rank is left waiting. If buf is NULL
 * (reads only) pieces go through a scratch buffer. *crc receives the CRC-32C of the
 * slab's bytes. `delay_ms` sleeps after every piece (test hook). Returns 0 or -1. */
static int transfer_slab(Dist *d, hid_t dset, hid_t dxpl, int writing, CkptDtype dt, int ndim, const int64_t *shape,
                         void *buf, int64_t piece_bytes, int64_t delay_ms, uint32_t *crc, char *why, size_t why_size) {
    size_t es = dtype_size(dt);
    int64_t nelem = n_elems(ndim, shape);
    int64_t max_el = piece_bytes / (int64_t)es;
    if (max_el < 1) max_el = 1;
    int64_t begin, end, most = 0;
    for (int r = 0; r < d->size; r++) {
        int64_t b, e;
        dist_shard(nelem, r, d->size, &b, &e);
        int64_t k = h5u_count_pieces(ndim, shape, b, e, max_el);
        if (k > most) most = k;
    }
    dist_shard(nelem, d->rank, d->size, &begin, &end);
    char *scratch = NULL;
    if (!buf && end > begin) scratch = xmalloc((size_t)((end - begin) < max_el ? (end - begin) : max_el) * es);
    hid_t fspace = H5Dget_space(dset);
    int failed = fspace < 0;
    if (failed) snprintf(why, why_size, "cannot get dataspace");
    uint32_t c = 0;
    int64_t pos = begin;
    unsigned char dummy[8];
    for (int64_t i = 0; i < most; i++) {
        H5uPiece p;
        int have = h5u_next_piece(ndim, shape, &pos, end, max_el, &p);
        hsize_t mdim = have ? (hsize_t)p.nelem : 1;
        hid_t mspace = H5Screate_simple(1, &mdim, NULL);
        herr_t e = mspace < 0 || fspace < 0 ? -1 : 0;
        if (e >= 0 && have)
            e = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, p.start, NULL, p.count, NULL);
        else if (e >= 0)
            e = H5Sselect_none(fspace) < 0 || H5Sselect_none(mspace) < 0 ? -1 : 0;
        void *mem = dummy;
        if (have) mem = buf ? (char *)buf + (size_t)p.first * es : scratch;
        if (e >= 0)
            e = writing ? H5Dwrite(dset, dtype_mem(dt), mspace, fspace, dxpl, mem)
                        : H5Dread(dset, dtype_mem(dt), mspace, fspace, dxpl, mem);
        if (e < 0 && !failed) {
            failed = 1;
            h5u_last_error(why, why_size);
        }
        if (have) c = crc32c_update(c, mem, (size_t)p.nelem * es);
        if (mspace >= 0) H5Sclose(mspace);
        if (delay_ms > 0) h5u_sleep_ms(delay_ms);
    }
    if (fspace >= 0) H5Sclose(fspace);
    free(scratch);
    *crc = c;
    return failed ? -1 : 0;
}

/* ------------------------------------------------------------------ writing */

static int parse_ckpt_name(const char *name, int64_t *step, int *is_tmp) {
    long long n;
    int len = 0;
    if (sscanf(name, "ckpt_%lld%n", &n, &len) != 1 || n < 0) return 0;
    char canon[64];
    snprintf(canon, sizeof canon, "ckpt_%lld", n);
    if (strncmp(name, canon, (size_t)len) != 0 || (int)strlen(canon) != len) return 0; /* no "+1", "007" */
    const char *rest = name + len;
    if (strcmp(rest, ".h5") == 0)
        *is_tmp = 0;
    else if (strcmp(rest, ".h5.tmp") == 0)
        *is_tmp = 1;
    else
        return 0;
    *step = n;
    return 1;
}

static int cmp_desc(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Lists the steps of DIR/ckpt_<n>.h5 (sorted newest first). Stale temp files of other
 * steps are removed when remove_tmp_except >= 0 (a crashed writer's leftovers). */
static int list_ckpts(const char *dir, int64_t **steps, int *n, int64_t remove_tmp_except, Err *err) {
    DIR *dp = opendir(dir);
    *steps = NULL;
    *n = 0;
    if (!dp) return errno == ENOENT ? 0 : err_set(err, "%s: cannot list directory: %s", dir, strerror(errno));
    int cap = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        int64_t s;
        int is_tmp;
        if (!parse_ckpt_name(de->d_name, &s, &is_tmp)) continue;
        if (is_tmp) {
            if (remove_tmp_except >= 0 && s != remove_tmp_except) {
                char *p = path_join(dir, de->d_name);
                unlink(p);
                free(p);
            }
            continue;
        }
        if (*n == cap) *steps = xrealloc(*steps, (size_t)(cap = cap ? 2 * cap : 16) * sizeof **steps);
        (*steps)[(*n)++] = s;
    }
    closedir(dp);
    if (*n) qsort(*steps, (size_t)*n, sizeof **steps, cmp_desc);
    return 0;
}

static char *ckpt_file_name(int64_t step, int tmp) {
    char *s = xmalloc(64);
    snprintf(s, 64, "ckpt_%lld.h5%s", (long long)step, tmp ? ".tmp" : "");
    return s;
}

static int fsync_path(const char *path, int directory, Err *err) {
    int fd = open(path, O_RDONLY | (directory ? O_DIRECTORY : 0));
    if (fd < 0) return err_set(err, "%s: cannot open for fsync: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    return rc ? err_set(err, "%s: fsync failed: %s", path, strerror(e)) : 0;
}

/* Rank 0, after every rank's data is on disk: rename, point latest at it, prune. */
static int commit(const char *dir, int64_t step, const char *tmp, const char *final, int keep_last, Err *err) {
    if (rename(tmp, final) != 0) return err_set(err, "%s: cannot rename to %s: %s", tmp, final, strerror(errno));
    if (fsync_path(dir, 1, err)) return -1;
    char *name = ckpt_file_name(step, 0);
    char line[96];
    snprintf(line, sizeof line, "%s\n", name);
    free(name);
    char *latest = path_join(dir, "latest");
    int rc = atomic_write_all(latest, line, strlen(line), err);
    free(latest);
    if (rc) return -1;
    int64_t *steps;
    int n;
    if (list_ckpts(dir, &steps, &n, step, err)) return -1;
    int kept = 1; /* the one just written */
    for (int i = 0; i < n; i++) {
        if (steps[i] >= step) continue;
        if (keep_last <= 0 || kept < keep_last) {
            kept++;
            continue;
        }
        char *nm = ckpt_file_name(steps[i], 0);
        char *p = path_join(dir, nm);
        if (unlink(p) != 0 && errno != ENOENT) rc = err_set(err, "%s: cannot delete old checkpoint: %s", p, strerror(errno));
        free(p);
        free(nm);
        if (rc) break;
    }
    free(steps);
    return rc;
}

static int is_reserved_attr(const char *name) {
    return !strcmp(name, CKPT_ATTR_FORMAT) || !strcmp(name, CKPT_ATTR_FORMAT_VERSION) ||
           !strcmp(name, CKPT_ATTR_VERSION) || !strcmp(name, CKPT_ATTR_STEP) || !strcmp(name, CKPT_ATTR_WORLD_SIZE);
}

static int validate(const char *where, const CkptItem *items, int n_items, const IoAttr *attrs, int n_attrs, Err *err) {
    for (int i = 0; i < n_items; i++) {
        const CkptItem *it = &items[i];
        if (!it->name || !*it->name || it->name[0] == '/')
            return err_set(err, "%s: item %d has an empty or absolute name", where, i);
        if (it->dtype != CKPT_F32 && it->dtype != CKPT_I64)
            return err_set(err, "%s: dataset %s: unknown dtype %d", where, it->name, (int)it->dtype);
        if (it->ndim < 1 || it->ndim > CKPT_MAX_DIMS)
            return err_set(err, "%s: dataset %s: ndim %d outside 1..%d", where, it->name, it->ndim, CKPT_MAX_DIMS);
        for (int k = 0; k < it->ndim; k++)
            if (it->shape[k] < 0) return err_set(err, "%s: dataset %s: negative dimension", where, it->name);
        if (!it->data && n_elems(it->ndim, it->shape) > 0)
            return err_set(err, "%s: dataset %s: no data", where, it->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(items[j].name, it->name)) return err_set(err, "%s: dataset %s given twice", where, it->name);
    }
    for (int i = 0; i < n_attrs; i++) {
        if (!attrs[i].name || !*attrs[i].name) return err_set(err, "%s: attribute %d has no name", where, i);
        if (is_reserved_attr(attrs[i].name))
            return err_set(err, "%s: attribute %s is written by the checkpoint layer itself", where, attrs[i].name);
        for (int j = 0; j < i; j++)
            if (!strcmp(attrs[j].name, attrs[i].name))
                return err_set(err, "%s: attribute %s given twice", where, attrs[i].name);
    }
    return 0;
}

static int write_item(Dist *d, hid_t file, hid_t dxpl, const char *tmp, const CkptItem *it, int64_t piece_bytes,
                      int64_t delay_ms, Err *err) {
    hsize_t dims[CKPT_MAX_DIMS];
    for (int k = 0; k < it->ndim; k++) dims[k] = (hsize_t)it->shape[k];
    hid_t space = H5Screate_simple(it->ndim, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dset = -1;
    int rc = -1;
    char why[256] = "";
    if (space < 0 || lcpl < 0 || dcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0 ||
        H5Pset_layout(dcpl, H5D_CONTIGUOUS) < 0 ||
        /* Every byte is written by some rank: skip the fill pass that would double the I/O. */
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 || H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0) {
        h5u_last_error(why, sizeof why);
    } else if ((dset = H5Dcreate2(file, it->name, dtype_file(it->dtype), space, lcpl, dcpl, H5P_DEFAULT)) < 0) {
        h5u_last_error(why, sizeof why);
    }
    /* Creation is collective metadata: it fails on all ranks or none. */
    if (dset < 0) {
        err_set(err, "%s: cannot create dataset %s: %s", tmp, it->name, why);
        goto done;
    }
    uint32_t slab_crc = 0;
    if (transfer_slab(d, dset, dxpl, 1, it->dtype, it->ndim, it->shape, it->data, piece_bytes, delay_ms, &slab_crc,
                      why, sizeof why))
        err_set(err, "%s: dataset %s: write failed: %s", tmp, it->name, why);
    else
        rc = 0;
    if (h5u_agree(d, rc, err)) {
        rc = -1;
        goto done;
    }
    uint32_t crc = combine_slab_crcs(d, slab_crc, n_elems(it->ndim, it->shape), dtype_size(it->dtype));
    char where[1200];
    snprintf(where, sizeof where, "%s: dataset %s", tmp, it->name);
    IoAttr a = {.name = ATTR_CRC, .type = IO_ATTR_I64, .i64 = (int64_t)crc};
    rc = h5u_attr_write(dset, &a, where, err);
done:
    if (dset >= 0) H5Dclose(dset);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (space >= 0) H5Sclose(space);
    return rc;
}

static int write_impl(Dist *d, const char *dir, int64_t step, const CkptItem *items, int n_items, const IoAttr *attrs,
                      int n_attrs, int keep_last, Err *err) {
    char *fname = ckpt_file_name(step, 0), *tname = ckpt_file_name(step, 1);
    char *final = path_join(dir, fname), *tmp = path_join(dir, tname);
    free(fname);
    free(tname);
    hid_t fapl = -1, file = -1, dxpl = -1;
    int64_t piece_bytes = piece_bytes_limit();
    int64_t delay_ms = h5u_env_i64("SOFTCOT_TEST_CKPT_DELAY_MS", 0, 0, 60000);
    int rc = step < 0 ? err_set(err, "%s: negative step %lld", final, (long long)step)
                      : validate(final, items, n_items, attrs, n_attrs, err);
    if (h5u_agree(d, rc, err)) goto fail;
    rc = d->rank == 0 ? make_dirs(dir, err) : 0;
    if (h5u_agree(d, rc, err)) goto fail;

    fapl = h5u_fapl(d);
    dxpl = h5u_dxpl_collective();
    if (fapl >= 0 && dxpl >= 0) file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (file < 0) {
        char why[256];
        h5u_last_error(why, sizeof why);
        rc = err_set(err, "%s: cannot create: %s", tmp, why);
    }
    if (h5u_agree(d, rc, err)) goto fail;

    IoAttr fixed[] = {
        {.name = CKPT_ATTR_FORMAT, .type = IO_ATTR_STR, .str = FORMAT_NAME},
        {.name = CKPT_ATTR_FORMAT_VERSION, .type = IO_ATTR_I64, .i64 = FORMAT_VERSION},
        {.name = CKPT_ATTR_VERSION, .type = IO_ATTR_STR, .str = SOFTCOT_VERSION},
        {.name = CKPT_ATTR_STEP, .type = IO_ATTR_I64, .i64 = step},
        {.name = CKPT_ATTR_WORLD_SIZE, .type = IO_ATTR_I64, .i64 = d->size},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && !rc; i++) rc = h5u_attr_write(file, &fixed[i], tmp, err);
    for (int i = 0; i < n_attrs && !rc; i++) rc = h5u_attr_write(file, &attrs[i], tmp, err);
    if (h5u_agree(d, rc, err)) goto fail;
    for (int i = 0; i < n_items; i++) {
        rc = write_item(d, file, dxpl, tmp, &items[i], piece_bytes, delay_ms, err);
        if (h5u_agree(d, rc, err)) goto fail;
    }
    herr_t ce = H5Fclose(file);
    file = -1;
    rc = ce < 0 ? err_set(err, "%s: close failed (data may not be on disk)", tmp) : 0;
    if (h5u_agree(d, rc, err)) goto fail;
    /* MPI-IO close does not promise durability; the page cache is per node, so one rank
     * per node flushes what that node wrote. */
    rc = d->local_rank == 0 ? fsync_path(tmp, 0, err) : 0;
    if (h5u_agree(d, rc, err)) goto fail;
    rc = d->rank == 0 ? commit(dir, step, tmp, final, keep_last, err) : 0;
    if (h5u_agree(d, rc, err)) goto fail;
    H5Pclose(fapl);
    H5Pclose(dxpl);
    free(final);
    free(tmp);
    return 0;
fail:
    if (file >= 0) H5Fclose(file);
    if (fapl >= 0) H5Pclose(fapl);
    if (dxpl >= 0) H5Pclose(dxpl);
    dist_barrier(d); /* everyone has closed the file before it is removed */
    if (d->rank == 0) unlink(tmp);
    free(final);
    free(tmp);
    return -1;
}

int ckpt_write(Dist *d, const char *dir, int64_t step, const CkptItem *items, int n_items, const IoAttr *attrs,
               int n_attrs, int keep_last, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = write_impl(d, dir, step, items, n_items, attrs, n_attrs, keep_last, err);
    }
    H5E_END_TRY;
    return rc;
}

/* ------------------------------------------------------------------ reading */

static herr_t visit_cb(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
    (void)obj;
    CkptReader *r = data;
    if (info->type != H5O_TYPE_DATASET) return 0;
    if (r->n_names == r->cap_names)
        r->names = xrealloc(r->names, (size_t)(r->cap_names = r->cap_names ? 2 * r->cap_names : 64) * sizeof *r->names);
    r->names[r->n_names++] = xstrdup(name);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void reader_free(CkptReader *r) {
    if (!r) return;
    if (r->file >= 0) H5Fclose(r->file);
    if (r->dxpl >= 0) H5Pclose(r->dxpl);
    for (int i = 0; i < r->n_names; i++) free(r->names[i]);
    free(r->names);
    free(r->path);
    free(r);
}

static int open_impl(Dist *d, const char *path, CkptReader **out, Err *err) {
    CkptReader *r = xcalloc(1, sizeof *r);
    r->d = d;
    r->path = xstrdup(path);
    r->file = r->dxpl = -1;
    int rc = 0;
    if (!file_exists(path)) rc = err_set(err, "%s: no such file", path);
    /* A file that is not HDF5 at all (or lost its superblock) fails here... */
    else if (H5Fis_hdf5(path) <= 0)
        rc = err_set(err, "%s: not an HDF5 file (truncated or corrupted checkpoint)", path);
    if (h5u_agree(d, rc, err)) goto fail;
    hid_t fapl = h5u_fapl(d);
    r->dxpl = h5u_dxpl_collective();
    if (fapl >= 0) r->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (r->file < 0 || r->dxpl < 0) {
        /* ...and a truncated one here ("truncated file: eof = ..."). Read the reason
         * before the next HDF5 call clears the error stack. */
        char why[256];
        h5u_last_error(why, sizeof why);
        rc = err_set(err, "%s: cannot open checkpoint (truncated or corrupted?): %s", path, why);
    }
    if (fapl >= 0) H5Pclose(fapl);
    if (h5u_agree(d, rc, err)) goto fail;
    char *fmt = NULL;
    int64_t ver = 0;
    rc = h5u_attr_read_str(r->file, CKPT_ATTR_FORMAT, &fmt, path, err);
    if (!rc && strcmp(fmt, FORMAT_NAME) != 0)
        rc = err_set(err, "%s: not a softcot checkpoint (format \"%s\")", path, fmt);
    if (!rc) rc = h5u_attr_read_i64(r->file, CKPT_ATTR_FORMAT_VERSION, &ver, path, err);
    if (!rc && ver != FORMAT_VERSION)
        rc = err_set(err, "%s: checkpoint format version %lld, this softcot reads %d", path, (long long)ver,
                     FORMAT_VERSION);
    free(fmt);
    if (!rc && H5Ovisit2(r->file, H5_INDEX_NAME, H5_ITER_INC, visit_cb, r, H5O_INFO_BASIC) < 0)
        rc = err_set(err, "%s: cannot list datasets (corrupted?)", path);
    if (h5u_agree(d, rc, err)) goto fail;
    if (r->n_names) qsort(r->names, (size_t)r->n_names, sizeof *r->names, cmp_str);
    *out = r;
    return 0;
fail:
    reader_free(r);
    *out = NULL;
    return -1;
}

int ckpt_open(Dist *d, const char *path, CkptReader **out, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = open_impl(d, path, out, err);
    }
    H5E_END_TRY;
    return rc;
}

void ckpt_close(CkptReader *r) {
    H5E_BEGIN_TRY {
        reader_free(r);
    }
    H5E_END_TRY;
}

int ckpt_attr_i64(CkptReader *r, const char *name, int64_t *out, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = h5u_attr_read_i64(r->file, name, out, r->path, err);
    }
    H5E_END_TRY;
    return rc;
}

int ckpt_attr_f64(CkptReader *r, const char *name, double *out, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = h5u_attr_read_f64(r->file, name, out, r->path, err);
    }
    H5E_END_TRY;
    return rc;
}

int ckpt_attr_str(CkptReader *r, const char *name, char **out, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = h5u_attr_read_str(r->file, name, out, r->path, err);
    }
    H5E_END_TRY;
    return rc;
}

int ckpt_dataset_count(const CkptReader *r) {
    return r->n_names;
}

const char *ckpt_dataset_name(const CkptReader *r, int i) {
    return i >= 0 && i < r->n_names ? r->names[i] : NULL;
}

static int has_dataset(const CkptReader *r, const char *name) {
    const char *key = name;
    return r->n_names && bsearch(&key, r->names, (size_t)r->n_names, sizeof *r->names, cmp_str) != NULL;
}

/* Opens dataset name and reports its dtype and shape. */
static hid_t open_dataset(CkptReader *r, const char *name, CkptDtype *dtype, int *ndim, int64_t *shape, Err *err) {
    if (!has_dataset(r, name)) {
        err_set(err, "%s: missing dataset %s", r->path, name);
        return -1;
    }
    hid_t dset = H5Dopen2(r->file, name, H5P_DEFAULT);
    if (dset < 0) {
        err_set(err, "%s: cannot open dataset %s", r->path, name);
        return -1;
    }
    hid_t type = H5Dget_type(dset), space = H5Dget_space(dset);
    int ok = type >= 0 && space >= 0;
    if (ok) {
        H5T_class_t cls = H5Tget_class(type);
        size_t sz = H5Tget_size(type);
        if (cls == H5T_FLOAT && sz == 4)
            *dtype = CKPT_F32;
        else if (cls == H5T_INTEGER && sz == 8 && H5Tget_sign(type) == H5T_SGN_2)
            *dtype = CKPT_I64;
        else {
            err_set(err, "%s: dataset %s: unsupported type (class %d, %zu bytes)", r->path, name, (int)cls, sz);
            ok = 0;
        }
    }
    if (ok) {
        int nd = H5Sget_simple_extent_ndims(space);
        hsize_t dims[H5S_MAX_RANK];
        if (nd < 1 || nd > CKPT_MAX_DIMS || H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
            err_set(err, "%s: dataset %s: unsupported rank %d", r->path, name, nd);
            ok = 0;
        } else {
            *ndim = nd;
            for (int k = 0; k < nd; k++) shape[k] = (int64_t)dims[k];
        }
    } else if (type < 0 || space < 0) {
        err_set(err, "%s: dataset %s: cannot read type or shape", r->path, name);
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (!ok) {
        H5Dclose(dset);
        return -1;
    }
    return dset;
}

int ckpt_dataset_info(CkptReader *r, const char *name, CkptDtype *dtype, int *ndim, int64_t shape[CKPT_MAX_DIMS],
                      Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        hid_t dset = open_dataset(r, name, dtype, ndim, shape, err);
        if (dset >= 0) {
            H5Dclose(dset);
            rc = 0;
        }
    }
    H5E_END_TRY;
    return rc;
}

/* Reads (buf != NULL) or just checks (buf == NULL) one dataset: slab per rank, CRC
 * combined over ranks and compared with the stored one, then (buf) slabs exchanged. */
static int read_dataset(CkptReader *r, const char *name, const CkptItem *want, void *buf, int64_t piece_bytes,
                        Err *err) {
    Dist *d = r->d;
    CkptDtype dt;
    int ndim = 0;
    int64_t shape[CKPT_MAX_DIMS];
    hid_t dset = open_dataset(r, name, &dt, &ndim, shape, err);
    int rc = dset < 0 ? -1 : 0;
    if (!rc && want) {
        int same = want->dtype == dt && want->ndim == ndim;
        for (int k = 0; same && k < ndim; k++) same = want->shape[k] == shape[k];
        if (!same) {
            char got[160], exp[160];
            shape_str(got, sizeof got, ndim, shape);
            shape_str(exp, sizeof exp, want->ndim, want->shape);
            rc = err_set(err, "%s: dataset %s is %s %s, expected %s %s", r->path, name, dtype_name(dt), got,
                         dtype_name(want->dtype), exp);
        }
    }
    int64_t stored = -1;
    if (!rc) {
        char where[1200];
        snprintf(where, sizeof where, "%s: dataset %s", r->path, name);
        rc = h5u_attr_read_i64(dset, ATTR_CRC, &stored, where, err);
    }
    /* Metadata is identical on every rank, so these checks agree without communication;
     * h5u_agree is still used to be safe against a rank-local failure. */
    if (h5u_agree(d, rc, err)) goto done;
    uint32_t slab_crc = 0;
    char why[256] = "";
    rc = transfer_slab(d, dset, r->dxpl, 0, dt, ndim, shape, buf, piece_bytes, 0, &slab_crc, why, sizeof why);
    if (rc) err_set(err, "%s: dataset %s: read failed (truncated?): %s", r->path, name, why);
    if (h5u_agree(d, rc, err)) goto done;
    int64_t nelem = n_elems(ndim, shape);
    size_t es = dtype_size(dt);
    uint32_t crc = combine_slab_crcs(d, slab_crc, nelem, es);
    if ((int64_t)crc != stored) {
        rc = err_set(err, "%s: dataset %s: checksum mismatch (stored crc32c %08llx, data has %08x): corrupted checkpoint",
                     r->path, name, (unsigned long long)stored, crc);
        goto done;
    }
    if (buf)
        for (int q = 0; q < d->size; q++) {
            int64_t b, e;
            dist_shard(nelem, q, d->size, &b, &e);
            dist_bcast(d, (char *)buf + (size_t)b * es, (size_t)(e - b) * es, q);
        }
done:
    if (dset >= 0) H5Dclose(dset);
    return rc;
}

int ckpt_read_item(CkptReader *r, const CkptItem *item, Err *err) {
    int rc = -1;
    H5E_BEGIN_TRY {
        rc = 0;
        if (!item->name || (!item->data && n_elems(item->ndim, item->shape) > 0) || item->ndim < 1 ||
            item->ndim > CKPT_MAX_DIMS)
            rc = err_set(err, "%s: dataset %s: bad read request", r->path, item->name ? item->name : "(null)");
        if (!rc) rc = read_dataset(r, item->name, item, item->data, piece_bytes_limit(), err);
    }
    H5E_END_TRY;
    return rc;
}

int ckpt_read(Dist *d, const char *path, const CkptItem *items, int n_items, Err *err) {
    CkptReader *r;
    if (ckpt_open(d, path, &r, err)) return -1;
    int rc = 0;
    for (int i = 0; i < n_items && !rc; i++) rc = ckpt_read_item(r, &items[i], err);
    ckpt_close(r);
    return rc;
}

int ckpt_verify(Dist *d, const char *path, Err *err) {
    CkptReader *r;
    if (ckpt_open(d, path, &r, err)) return -1;
    int rc = 0;
    int64_t step;
    rc = ckpt_attr_i64(r, CKPT_ATTR_STEP, &step, err);
    int64_t piece = piece_bytes_limit() < VERIFY_PIECE_BYTES ? piece_bytes_limit() : VERIFY_PIECE_BYTES;
    for (int i = 0; i < r->n_names && !rc; i++) {
        H5E_BEGIN_TRY {
            rc = read_dataset(r, r->names[i], NULL, NULL, piece, err);
        }
        H5E_END_TRY;
    }
    ckpt_close(r);
    return rc;
}

/* ------------------------------------------------------------------ resume */

/* Appends "; " + text to a note. */
static void note_add(Err *note, const char *text) {
    size_t k = strlen(note->msg);
    snprintf(note->msg + k, sizeof note->msg - k, "%s%s", k ? "; " : "", text);
}

/* Rank 0: the candidate list ("path\n" per line, best first) and the note so far. */
static char *resume_plan(const char *dir, Err *note, int *have_latest) {
    char *latest = path_join(dir, "latest");
    char *text = NULL;
    size_t len = 0;
    Err e;
    int64_t latest_step = -1;
    *have_latest = 0;
    char msg[1400];
    if (file_exists(latest)) {
        *have_latest = 1;
        if (file_read_all(latest, &text, &len, &e) != 0) {
            snprintf(msg, sizeof msg, "%s", e.msg);
            note_add(note, msg);
        } else {
            while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) text[--len] = '\0';
            int is_tmp;
            if (!parse_ckpt_name(text, &latest_step, &is_tmp) || is_tmp) {
                snprintf(msg, sizeof msg, "%s: does not name a checkpoint (\"%.64s\")", latest, text);
                note_add(note, msg);
                latest_step = -1;
            }
            free(text);
        }
    }
    int64_t *steps = NULL;
    int n = 0;
    if (list_ckpts(dir, &steps, &n, -1, &e) != 0) note_add(note, e.msg);
    size_t cap = 256, k = 0;
    char *plan = xmalloc(cap);
    plan[0] = '\0';
    int found_latest = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            /* pass 0: the file latest names; pass 1: everything older (or all, without a
             * usable latest). */
            int take = pass == 0 ? steps[i] == latest_step : (latest_step < 0 || steps[i] < latest_step);
            if (!take) continue;
            if (pass == 0) found_latest = 1;
            char *nm = ckpt_file_name(steps[i], 0);
            char *p = path_join(dir, nm);
            size_t need = strlen(p) + 2;
            if (k + need >= cap) plan = xrealloc(plan, cap = 2 * (k + need));
            k += (size_t)sprintf(plan + k, "%s\n", p);
            free(p);
            free(nm);
        }
    if (latest_step >= 0 && !found_latest) {
        char *nm = ckpt_file_name(latest_step, 0);
        char *p = path_join(dir, nm);
        snprintf(msg, sizeof msg, "%s names %s, which does not exist", latest, p);
        note_add(note, msg);
        free(p);
        free(nm);
    } else if (!*have_latest && n > 0) {
        snprintf(msg, sizeof msg, "%s is missing", latest);
        note_add(note, msg);
    }
    free(steps);
    free(latest);
    return plan;
}

int ckpt_find_resume(Dist *d, const char *dir, char **path, Err *note, Err *err) {
    Err local_note;
    if (!note) note = &local_note;
    memset(note, 0, sizeof *note);
    *path = NULL;
    char *plan = NULL;
    int64_t plan_len = 0;
    int have_latest = 0;
    if (d->rank == 0) {
        plan = resume_plan(dir, note, &have_latest);
        plan_len = (int64_t)strlen(plan);
    }
    int64_t hdr[2] = {plan_len, have_latest};
    dist_bcast(d, hdr, sizeof hdr, 0);
    if (d->rank != 0) plan = xmalloc((size_t)hdr[0] + 1);
    dist_bcast(d, plan, (size_t)hdr[0] + 1, 0);
    dist_bcast(d, note->msg, sizeof note->msg, 0);
    have_latest = (int)hdr[1];
    if (hdr[0] == 0) {
        free(plan);
        if (!have_latest) return 1; /* nothing was ever checkpointed here */
        return err_set(err, "%s: no checkpoint to resume from: %s", dir, note->msg);
    }
    int tried = 0, rc = -1;
    for (char *line = plan, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = '\0';
        Err e;
        if (ckpt_verify(d, line, &e) == 0) {
            *path = xstrdup(line);
            rc = 0;
            if (tried || note->msg[0]) {
                char msg[1200];
                snprintf(msg, sizeof msg, "resuming from %s instead", line);
                note_add(note, msg);
            }
            break;
        }
        tried++;
        note_add(note, e.msg);
    }
    free(plan);
    if (rc) return err_set(err, "%s: no valid checkpoint to resume from: %s", dir, note->msg);
    return 0;
}
