/* io_attr.h — the small vocabulary that callers of io/ share with it without seeing HDF5:
 * IoAttr (a named scalar attribute: int64, float64 or string), the largest tensor rank,
 * and the version string recorded in every file.
 * Must not: include hdf5.h or mpi.h (HDF5 stays inside io/, MPI inside dist/).
 */
#ifndef SOFTCOT_IO_ATTR_H
#define SOFTCOT_IO_ATTR_H

#include <stdint.h>

/* The version recorded in checkpoint and trajectory files. The Makefile may override it
 * (e.g. -DSOFTCOT_VERSION="\"$(git describe)\""). */
#ifndef SOFTCOT_VERSION
#define SOFTCOT_VERSION "0.1.0"
#endif

#define IO_MAX_DIMS 8

typedef enum { IO_ATTR_I64 = 1, IO_ATTR_F64 = 2, IO_ATTR_STR = 3 } IoAttrType;

/* A scalar attribute. Strings are stored as fixed-length, NUL-padded HDF5 strings (h5py
 * returns them as bytes). Only the member matching type is used. */
typedef struct {
    const char *name;
    IoAttrType type;
    int64_t i64;
    double f64;
    const char *str;
} IoAttr;

#endif
