#include "io/h5util.h"

#include <errno.h>
#include <mpi.h> /* the MPI_Comm/MPI_Info types for H5Pset_fapl_mpio only: no MPI calls */
#include <stdlib.h>
#include <string.h>
#include <time.h>

hid_t h5u_fapl(Dist *d) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    if (H5Pset_fapl_mpio(fapl, *(MPI_Comm *)dist_mpi_comm(d), MPI_INFO_NULL) < 0 ||
        /* 1.8+ object headers: attributes larger than 64 KiB (a long config text) go to
         * dense storage instead of failing; h5py and HDF5 >= 1.8 read it. */
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0 ||
        /* Metadata operations are collective, so one rank reads and broadcasts. */
        H5Pset_all_coll_metadata_ops(fapl, 1) < 0 || H5Pset_coll_metadata_write(fapl, 1) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

hid_t h5u_dxpl_collective(void) {
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (dxpl < 0) return -1;
    if (H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0) {
        H5Pclose(dxpl);
        return -1;
    }
    return dxpl;
}

static hid_t str_type(size_t len) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    if (H5Tset_size(t, len ? len : 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

int h5u_attr_write(hid_t obj, const IoAttr *a, const char *where, Err *err) {
    hid_t space = H5Screate(H5S_SCALAR), type = -1, attr = -1;
    const void *val = NULL;
    hid_t mtype = -1;
    int rc = -1;
    if (space < 0) goto done;
    switch (a->type) {
    case IO_ATTR_I64:
        type = H5Tcopy(H5T_STD_I64LE), mtype = H5T_NATIVE_INT64, val = &a->i64;
        break;
    case IO_ATTR_F64:
        type = H5Tcopy(H5T_IEEE_F64LE), mtype = H5T_NATIVE_DOUBLE, val = &a->f64;
        break;
    case IO_ATTR_STR:
        type = str_type(strlen(a->str ? a->str : "")), mtype = type, val = a->str ? a->str : "";
        break;
    default:
        err_set(err, "%s: attribute %s has an unknown type %d", where, a->name, (int)a->type);
        goto done;
    }
    if (type < 0) goto fail;
    if (a->type == IO_ATTR_STR && strlen(val) == 0) val = "\0"; /* size-1 string, NUL */
    if (H5Aexists(obj, a->name) > 0 && H5Adelete(obj, a->name) < 0) goto fail;
    attr = H5Acreate2(obj, a->name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0 || H5Awrite(attr, mtype, val) < 0) goto fail;
    rc = 0;
    goto done;
fail : {
    char why[256];
    h5u_last_error(why, sizeof why);
    err_set(err, "%s: cannot write attribute %s: %s", where, a->name, why);
}
done:
    if (attr >= 0) H5Aclose(attr);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    return rc;
}

/* Opens attribute name of obj and checks it is a scalar of the given class. */
static hid_t open_attr(hid_t obj, const char *name, H5T_class_t cls, const char *what, const char *where,
                       Err *err) {
    if (H5Aexists(obj, name) <= 0) {
        err_set(err, "%s: missing attribute %s", where, name);
        return -1;
    }
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    if (attr < 0) {
        err_set(err, "%s: cannot open attribute %s", where, name);
        return -1;
    }
    hid_t type = H5Aget_type(attr), space = H5Aget_space(attr);
    int ok = type >= 0 && space >= 0 && H5Tget_class(type) == cls && H5Sget_simple_extent_npoints(space) == 1;
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (!ok) {
        H5Aclose(attr);
        err_set(err, "%s: attribute %s is not a scalar %s", where, name, what);
        return -1;
    }
    return attr;
}

int h5u_attr_read_i64(hid_t obj, const char *name, int64_t *out, const char *where, Err *err) {
    hid_t attr = open_attr(obj, name, H5T_INTEGER, "integer", where, err);
    if (attr < 0) return -1;
    herr_t e = H5Aread(attr, H5T_NATIVE_INT64, out);
    H5Aclose(attr);
    return e < 0 ? err_set(err, "%s: cannot read attribute %s", where, name) : 0;
}

int h5u_attr_read_f64(hid_t obj, const char *name, double *out, const char *where, Err *err) {
    hid_t attr = open_attr(obj, name, H5T_FLOAT, "float", where, err);
    if (attr < 0) return -1;
    herr_t e = H5Aread(attr, H5T_NATIVE_DOUBLE, out);
    H5Aclose(attr);
    return e < 0 ? err_set(err, "%s: cannot read attribute %s", where, name) : 0;
}

int h5u_attr_read_str(hid_t obj, const char *name, char **out, const char *where, Err *err) {
    hid_t attr = open_attr(obj, name, H5T_STRING, "string", where, err);
    if (attr < 0) return -1;
    hid_t ftype = H5Aget_type(attr);
    int rc = -1;
    if (ftype >= 0 && H5Tis_variable_str(ftype) == 0) {
        size_t len = H5Tget_size(ftype);
        hid_t mtype = str_type(len);
        char *s = xcalloc(len + 1, 1);
        if (mtype >= 0 && H5Aread(attr, mtype, s) >= 0) {
            *out = s;
            rc = 0;
        } else {
            free(s);
        }
        if (mtype >= 0) H5Tclose(mtype);
    }
    if (ftype >= 0) H5Tclose(ftype);
    H5Aclose(attr);
    return rc ? err_set(err, "%s: cannot read attribute %s as a fixed-length string", where, name) : 0;
}

int h5u_next_piece(int ndim, const int64_t *dims, int64_t *pos, int64_t end, int64_t max_elems,
                   H5uPiece *p) {
    int64_t a = *pos;
    if (a >= end) return 0;
    if (max_elems < 1) max_elems = 1;
    if (ndim < 1 || ndim > H5U_MAX_DIMS) return 0;
    int64_t stride[H5U_MAX_DIMS] = {0};
    int64_t s = 1;
    for (int j = ndim - 1; j >= 0; j--) {
        stride[j] = s;
        s *= dims[j];
    }
    /* Take whole sub-blocks of the coarsest dimension j at which `a` is aligned and whose
     * unit (stride[j] elements) fits both the remaining range and the size limit; the
     * innermost dimension (stride 1) always qualifies. The piece stays inside one index of
     * every dimension before j, so it is a single hyperslab. */
    int j = 0;
    while (j < ndim - 1 && (a % stride[j] != 0 || stride[j] > end - a || stride[j] > max_elems)) j++;
    int64_t idx_j = (a / stride[j]) % dims[j];
    int64_t k = dims[j] - idx_j;
    if ((end - a) / stride[j] < k) k = (end - a) / stride[j];
    if (max_elems / stride[j] < k) k = max_elems / stride[j];
    for (int i = 0; i < ndim; i++) {
        if (i < j) {
            p->start[i] = (hsize_t)((a / stride[i]) % dims[i]);
            p->count[i] = 1;
        } else if (i == j) {
            p->start[i] = (hsize_t)idx_j;
            p->count[i] = (hsize_t)k;
        } else {
            p->start[i] = 0;
            p->count[i] = (hsize_t)dims[i];
        }
    }
    p->first = a;
    p->nelem = k * stride[j];
    *pos = a + p->nelem;
    return 1;
}

int64_t h5u_count_pieces(int ndim, const int64_t *dims, int64_t begin, int64_t end, int64_t max_elems) {
    H5uPiece p;
    int64_t n = 0;
    while (h5u_next_piece(ndim, dims, &begin, end, max_elems, &p)) n++;
    return n;
}

int h5u_agree(Dist *d, int rc, Err *err) {
    if (!dist_any(d, rc != 0)) return 0;
    int32_t mine = rc != 0;
    int32_t *all = NULL;
    int64_t n = 0;
    dist_allgatherv_i32(d, &mine, 1, &all, &n, NULL);
    int root = 0;
    while (root < d->size && !all[root]) root++;
    free(all);
    Err tmp;
    memset(&tmp, 0, sizeof tmp);
    if (d->rank == root && err) tmp = *err;
    dist_bcast(d, tmp.msg, sizeof tmp.msg, root);
    tmp.msg[sizeof tmp.msg - 1] = '\0';
    if (err) *err = tmp;
    return -1;
}

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    char *buf = ((char **)data)[0];
    size_t size = (size_t)((char **)data)[1];
    /* Walking upward, entry 0 is the most specific error (e.g. "truncated file: ..."). */
    if (n == 0 && e->desc) snprintf(buf, size, "%s", e->desc);
    return 0;
}

void h5u_last_error(char *buf, size_t size) {
    buf[0] = '\0';
    void *data[2] = {buf, (void *)size};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, data);
    if (!buf[0]) snprintf(buf, size, "HDF5 error");
}

int64_t h5u_env_i64(const char *name, int64_t dflt, int64_t lo, int64_t hi) {
    const char *s = getenv(name);
    if (!s || !*s) return dflt;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return dflt;
    return v < lo ? lo : v > hi ? hi : v;
}

void h5u_sleep_ms(int64_t ms) {
    struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

hid_t h5u_traj_type_file(TrajType t) {
    switch (t) {
    case TRAJ_I32: return H5T_STD_I32LE;
    case TRAJ_I64: return H5T_STD_I64LE;
    case TRAJ_F32: return H5T_IEEE_F32LE;
    default: return H5T_STD_U8LE;
    }
}

hid_t h5u_traj_type_mem(TrajType t) {
    switch (t) {
    case TRAJ_I32: return H5T_NATIVE_INT32;
    case TRAJ_I64: return H5T_NATIVE_INT64;
    case TRAJ_F32: return H5T_NATIVE_FLOAT;
    default: return H5T_NATIVE_UINT8;
    }
}

const char *h5u_traj_type_name(TrajType t) {
    switch (t) {
    case TRAJ_I32: return "int32";
    case TRAJ_I64: return "int64";
    case TRAJ_F32: return "float32";
    default: return "uint8";
    }
}
