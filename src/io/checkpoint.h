/* checkpoint.h — training checkpoints in parallel HDF5, committed atomically.
 *
 * Defines: ckpt_write (collective: every rank holds identical full copies of every
 * tensor, as in data-parallel training, and writes its own contiguous slab of each, so
 * write bandwidth scales with the ranks), a collective reader (ckpt_open, attributes,
 * dataset info, ckpt_read_item, which every rank ends with the full tensor), ckpt_verify
 * and ckpt_find_resume (follow DIR/latest, fall back to the newest older checkpoint that
 * passes its checksums, and say so).
 *
 * On disk (docs/hdf5-schema.md): DIR/ckpt_<step>.h5 holds one contiguous, uncompressed
 * dataset per item under its name (e.g. "params/model.norm.weight", groups created as
 * needed) with a uint32 attribute "crc32c" (CRC-32C of the full tensor's little-endian
 * bytes in row-major order), root attributes format, format_version, softcot_version,
 * step, world_size and the caller's, and DIR/latest, a one-line text file naming the
 * current checkpoint ("ckpt_<step>.h5").
 * Commit protocol: write ckpt_<step>.h5.tmp collectively, close, fsync (one rank per
 * node), rename to ckpt_<step>.h5, fsync DIR, replace DIR/latest atomically (temp +
 * fsync + rename + fsync DIR), then prune. A crash at any instant leaves `latest` naming a
 * complete, checksummed checkpoint.
 * Test hooks (environment, read at each ckpt_write):
 *   SOFTCOT_TEST_CKPT_DELAY_MS  sleep this long after every collective write piece, so
 *                               tests can kill or signal a writer mid-checkpoint;
 *   SOFTCOT_CKPT_PIECE_BYTES    largest payload per H5Dwrite/H5Dread call (default and
 *                               maximum 1 GiB; tests lower it to exercise the splitting).
 * Every function taking a Dist is collective; all ranks get the same return value and
 * the same error message.
 * Must not: call MPI directly (dist/ does), touch signals (the caller decides when to
 * stop), or leave a partial file under a final name.
 */
#ifndef SOFTCOT_IO_CHECKPOINT_H
#define SOFTCOT_IO_CHECKPOINT_H

#include <stdint.h>

#include "core/check.h"
#include "dist/dist.h"
#include "io/io_attr.h"

#define CKPT_MAX_DIMS IO_MAX_DIMS

typedef enum { CKPT_F32 = 1, CKPT_I64 = 2 } CkptDtype;

/* One dataset: name (HDF5 path relative to the root, '/'-separated groups allowed),
 * element type, shape (ndim in 1..CKPT_MAX_DIMS, row-major) and the full data (identical
 * on every rank when writing; filled on every rank when reading). */
typedef struct {
    const char *name;
    CkptDtype dtype;
    int ndim;
    int64_t shape[CKPT_MAX_DIMS];
    void *data;
} CkptItem;

/* Root attributes written by ckpt_write itself; callers may not pass these names. */
#define CKPT_ATTR_FORMAT "format"                 /* "softcot-checkpoint" */
#define CKPT_ATTR_FORMAT_VERSION "format_version" /* 1 */
#define CKPT_ATTR_VERSION "softcot_version"
#define CKPT_ATTR_STEP "step"
#define CKPT_ATTR_WORLD_SIZE "world_size"

/* Writes DIR/ckpt_<step>.h5 (creating DIR if needed) with items and the caller's root
 * attributes (e.g. seed, cursor, config text), commits it and points DIR/latest at it.
 * Then deletes older checkpoints so that at most keep_last remain among steps <= step
 * (keep_last <= 0 keeps all; checkpoints of later steps, left by an abandoned timeline,
 * are left alone and overwritten when the run reaches them), and stale *.h5.tmp files.
 * On error nothing under a final name changed (a *.tmp may remain and is removed by the
 * next successful write). */
int ckpt_write(Dist *d, const char *dir, int64_t step, const CkptItem *items, int n_items, const IoAttr *attrs,
               int n_attrs, int keep_last, Err *err);

typedef struct CkptReader CkptReader;

/* Opens a checkpoint collectively and checks its format attributes. Refuses truncated or
 * non-HDF5 files with an error naming the path. */
int ckpt_open(Dist *d, const char *path, CkptReader **out, Err *err);
void ckpt_close(CkptReader *r);

/* Root attributes (type must match: an integer attribute is not read as a string). */
int ckpt_attr_i64(CkptReader *r, const char *name, int64_t *out, Err *err);
int ckpt_attr_f64(CkptReader *r, const char *name, double *out, Err *err);
int ckpt_attr_str(CkptReader *r, const char *name, char **out, Err *err); /* caller frees */

/* Datasets in the file, sorted by name (name_at's string lives as long as r). */
int ckpt_dataset_count(const CkptReader *r);
const char *ckpt_dataset_name(const CkptReader *r, int i);
/* Type and shape of dataset name (for arrays whose size the caller does not know, such
 * as the data order, or to detect a model mismatch before allocating). */
int ckpt_dataset_info(CkptReader *r, const char *name, CkptDtype *dtype, int *ndim,
                      int64_t shape[CKPT_MAX_DIMS], Err *err);

/* Reads item->name into item->data on every rank after checking that the stored dtype
 * and shape equal item's (an error names the file, the dataset and both shapes) and that
 * the data matches its crc32c attribute. Each rank reads one slab; the slabs are then
 * exchanged. On error item->data is unspecified. */
int ckpt_read_item(CkptReader *r, const CkptItem *item, Err *err);

/* Convenience: open, read every item, close. */
int ckpt_read(Dist *d, const char *path, const CkptItem *items, int n_items, Err *err);

/* Opens path and checks every dataset against its checksum (reads the whole file, in
 * slabs spread over the ranks). 0 if valid. */
int ckpt_verify(Dist *d, const char *path, Err *err);

/* Chooses the checkpoint to resume from in dir: the one DIR/latest names if it passes
 * ckpt_verify, else the newest older ckpt_<n>.h5 that does (with no `latest`, the newest
 * valid one). Returns 0 and sets *path (malloc'ed) on success; 1 if dir holds no `latest`
 * and no checkpoint (start fresh); -1 with err naming every rejected file if there are
 * checkpoints but none is valid. When it did not take `latest` as is, note->msg explains
 * why in one line (what was rejected and what is used instead); otherwise note->msg is
 * "". Rank 0 decides and broadcasts, so all ranks agree. */
int ckpt_find_resume(Dist *d, const char *dir, char **path, Err *note, Err *err);

#endif
