/* h5util.h — helpers shared by the parallel-HDF5 writers in io/ (checkpoint.c,
 * trajectory.c); internal to io/.
 *
 * Defines: IoAttr (a named scalar attribute: int64, float64 or string) with write/read
 * helpers, the MPI-IO file-access and collective-transfer property lists built from a
 * Dist, the decomposition of a flat element range of a row-major N-d dataset into
 * hyperslab pieces of bounded size (ROMIO cannot move 2 GiB or more in one call), error
 * agreement across ranks, and the text of the innermost HDF5 error for messages.
 * Must not: call MPI functions (reductions go through dist/), print HDF5 error stacks
 * (callers run inside H5E_BEGIN_TRY and turn failures into one-line Err messages).
 */
#ifndef SOFTCOT_IO_H5UTIL_H
#define SOFTCOT_IO_H5UTIL_H

#include <hdf5.h>
#include <stdint.h>

#include "core/check.h"
#include "dist/dist.h"
#include "io/io_attr.h"
#include "io/trajectory.h"

/* Largest payload of one H5Dwrite/H5Dread call: 1 GiB, well under ROMIO's 2 GiB. */
#define H5U_PIECE_BYTES_MAX ((int64_t)1 << 30)
#define H5U_MAX_DIMS IO_MAX_DIMS

/* The HDF5 types of a trajectory column: on file (little-endian, fixed) and in memory. */
hid_t h5u_traj_type_file(TrajType t);
hid_t h5u_traj_type_mem(TrajType t);
const char *h5u_traj_type_name(TrajType t); /* for messages: int32, int64, float32, uint8 */

/* fapl for H5Fcreate/H5Fopen over d's communicator; dxpl for collective transfers. */
hid_t h5u_fapl(Dist *d);
hid_t h5u_dxpl_collective(void);

/* Writes (collectively: every rank passes the same value) / reads one attribute of obj.
 * `where` (file and object) prefixes error messages. */
int h5u_attr_write(hid_t obj, const IoAttr *a, const char *where, Err *err);
int h5u_attr_read_i64(hid_t obj, const char *name, int64_t *out, const char *where, Err *err);
int h5u_attr_read_f64(hid_t obj, const char *name, double *out, const char *where, Err *err);
/* *out is malloc'ed, NUL-terminated, trailing NUL padding removed. */
int h5u_attr_read_str(hid_t obj, const char *name, char **out, const char *where, Err *err);

/* One hyperslab piece: file selection start/count (ndim entries) covering elements
 * [first, first + nelem) of the flat row-major order. */
typedef struct {
    hsize_t start[H5U_MAX_DIMS], count[H5U_MAX_DIMS];
    int64_t first, nelem;
} H5uPiece;

/* Splits the flat range [*pos, end) of a dataset of shape dims[ndim] into pieces of at
 * most max_elems elements, each a single hyperslab. Call repeatedly: returns 1 and fills
 * *p (advancing *pos), or 0 when *pos == end. */
int h5u_next_piece(int ndim, const int64_t *dims, int64_t *pos, int64_t end, int64_t max_elems,
                   H5uPiece *p);
/* The number of pieces h5u_next_piece yields for [begin, end). */
int64_t h5u_count_pieces(int ndim, const int64_t *dims, int64_t begin, int64_t end, int64_t max_elems);

/* Collective: if any rank's rc is nonzero, every rank gets the error message of the
 * lowest failing rank in err and -1; otherwise 0. Keeps all ranks on the same path. */
int h5u_agree(Dist *d, int rc, Err *err);

/* The description of the innermost error on HDF5's current error stack ("" if none);
 * call right after a failed HDF5 call. */
void h5u_last_error(char *buf, size_t size);

/* Reads the int value of env var name, clamped to [lo, hi]; dflt when unset/invalid.
 * For test hooks and tuning knobs (documented where used). */
int64_t h5u_env_i64(const char *name, int64_t dflt, int64_t lo, int64_t hi);

/* Sleeps for SOFTCOT_TEST_CKPT_DELAY_MS-style test delays (restarts after signals). */
void h5u_sleep_ms(int64_t ms);

#endif
