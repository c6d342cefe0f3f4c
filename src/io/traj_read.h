/* traj_read.h — read-only access to trajectory files (io/trajectory.h's layout) for
 * post-hoc analysis on one process, without MPI: `softcot analyze`.
 *
 * Defines: TrajReader, which opens a file read-only with HDF5's file locking off (so a
 * file that a running job still holds open can be read), checks that it is a softcot
 * trajectory this reader understands, and reads attributes, a table's committed row
 * count ("nrows", the writer's commit point: rows beyond it are an append in flight and
 * are never read), fixed columns by row range, and ragged columns by value range with
 * their CSR offsets. Every read checks the dataset's element type and width against
 * what the caller expects and that the requested range exists, so a damaged or foreign
 * file gives one line naming the file, the dataset and the position, never a crash.
 * Must not: write to the file, call MPI, or know what the tables and columns mean (the
 * RL schema lives in rl/traj_rl.c and rl/traj_summary.c).
 */
#ifndef SOFTCOT_IO_TRAJ_READ_H
#define SOFTCOT_IO_TRAJ_READ_H

#include <stdint.h>

#include "core/check.h"
#include "io/trajectory.h"

typedef struct TrajReader TrajReader;

/* The newest trajectory format_version this reader understands. */
enum { TRAJ_READ_MAX_VERSION = 1 };

/* Opens path. Fails (one line in err) if it is not an HDF5 file or is truncated, if its
 * root attribute "format" is not "softcot-trajectory", or if its format_version is newer
 * than TRAJ_READ_MAX_VERSION. */
int traj_read_open(const char *path, TrajReader **out, Err *err);
void traj_read_close(TrajReader *r);
const char *traj_read_path(const TrajReader *r);

/* Root attributes. *out of _str is malloc'ed. Missing or of another type: error. */
int traj_read_attr_i64(TrajReader *r, const char *name, int64_t *out, Err *err);
int traj_read_attr_str(TrajReader *r, const char *name, char **out, Err *err);
int traj_read_has_attr(TrajReader *r, const char *name);

/* Committed rows of table (its "nrows" attribute); error if the table is missing. */
int traj_read_rows(TrajReader *r, const char *table, int64_t *rows, Err *err);

/* 1 if /table/col exists (a dataset), else 0. Optional columns are probed with this. */
int traj_read_has(TrajReader *r, const char *table, const char *col);
/* Width (values per row or per element) of /table/col; checks its element type. */
int traj_read_width(TrajReader *r, const char *table, const char *col, TrajType type, int64_t *width, Err *err);

/* Rows [row0, row0 + n) of the fixed column /table/col (n * width values of type) into
 * buf. The dataset must have exactly this type and width and at least row0 + n rows. */
int traj_read_fixed(TrajReader *r, const char *table, const char *col, TrajType type, int64_t width, int64_t row0,
                    int64_t n, void *buf, Err *err);
/* Entries [row0, row0 + n] (n + 1 values) of /table/col_offsets, checked to be
 * non-decreasing, to start at 0 when row0 is 0, and not to point past the values
 * dataset /table/col. */
int traj_read_offsets(TrajReader *r, const char *table, const char *col, int64_t row0, int64_t n, int64_t *off,
                      Err *err);
/* Elements [v0, v0 + n) of the ragged column's values dataset /table/col. */
int traj_read_values(TrajReader *r, const char *table, const char *col, TrajType type, int64_t width, int64_t v0,
                     int64_t n, void *buf, Err *err);

#endif
