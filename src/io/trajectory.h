/* trajectory.h — per-run trajectory files: tables appended collectively every step.
 *
 * Defines: a generic schema (tables of columns; a column is int32, int64, float32 or
 * uint8, `width` values per row, or ragged: a variable number of `width`-value elements
 * per row, stored as a values dataset plus CSR offsets), and a collective writer that
 * appends each rank's rows at offsets from dist_exscan_i64, so a step's rows appear in
 * rank order. Datasets are chunked, extendable and (if it works with collective writes
 * on this HDF5, which traj_create tests) deflate-compressed; the root attribute
 * "compression" records what was used. h5py reads the result directly.
 * Layout (docs/hdf5-schema.md): /<table>/<column> with shape [rows] or [rows, width];
 * a ragged column has /<table>/<column> of shape [values] or [values, width] and
 * /<table>/<column>_offsets (int64, rows + 1 entries, offsets[0] = 0): row i owns
 * values[offsets[i]:offsets[i+1]]. Each table has an int64 "step" column (required) and
 * an attribute "nrows", updated after the data of every append: the committed row count.
 * Resume: traj_open_append reopens a file, trims datasets to the committed rows, and
 * traj_truncate_to_step(s) drops the rows of steps after s, so a resumed run writes every
 * step exactly once.
 * Every function taking or holding a Dist is collective (same table, same order on all
 * ranks; row counts may differ per rank, 0 included).
 * Must not: call MPI directly, use variable-length HDF5 types (not writable in parallel;
 * text is a ragged uint8 column), or know what the columns mean (the caller's schema).
 */
#ifndef SOFTCOT_IO_TRAJECTORY_H
#define SOFTCOT_IO_TRAJECTORY_H

#include <stdint.h>

#include "core/check.h"
#include "dist/dist.h"
#include "io/io_attr.h"

typedef enum { TRAJ_I32 = 1, TRAJ_I64 = 2, TRAJ_F32 = 3, TRAJ_U8 = 4 } TrajType;

typedef struct {
    const char *name; /* dataset name in the table's group; no '/' */
    TrajType type;
    int64_t width;    /* values per row (fixed) or per element (ragged); >= 1 */
    int ragged;       /* 1: variable number of elements per row (values + offsets) */
    const char *doc;  /* meaning and unit, stored as attribute "doc"; may be NULL */
} TrajColumn;

/* A group of columns sharing rows. One column must be {"step", TRAJ_I64, 1, 0}; rows
 * must be appended in non-decreasing step order. */
typedef struct {
    const char *name;
    const TrajColumn *cols;
    int n_cols;
    const char *doc;
} TrajTable;

/* This rank's data for one column in one append: fixed columns n_rows * width values;
 * ragged columns lengths[n_rows] element counts and sum(lengths) * width values. */
typedef struct {
    const void *values;
    const int64_t *lengths;
} TrajData;

typedef struct TrajWriter TrajWriter;

/* Creates (truncates) path with the given tables and root attributes. deflate_level 1..9
 * compresses (with the shuffle filter) if a collective test write with the filter works,
 * else falls back to uncompressed; 0 never compresses. */
int traj_create(Dist *d, const char *path, const TrajTable *tables, int n_tables, const IoAttr *attrs, int n_attrs,
                int deflate_level, TrajWriter **out, Err *err);

/* Reopens an existing file for appending. The tables must match the file's (names,
 * types, widths, raggedness; an error names the file and the first difference).
 * Datasets longer than the committed "nrows" (an append interrupted by a crash) are
 * trimmed. */
int traj_open_append(Dist *d, const char *path, const TrajTable *tables, int n_tables, TrajWriter **out, Err *err);

/* Appends n_rows rows from this rank to table `table` (index into the tables given at
 * create/open); cols[i] is the data of the table's column i. */
int traj_append(TrajWriter *w, int table, const TrajData *cols, int64_t n_rows, Err *err);

/* Drops, in every table, the rows whose step is greater than step. */
int traj_truncate_to_step(TrajWriter *w, int64_t step, Err *err);

/* Committed rows of a table (the same on every rank). */
int64_t traj_rows(const TrajWriter *w, int table);

/* 1 if datasets created by this writer are deflate-compressed. */
int traj_compressed(const TrajWriter *w);

/* Makes everything appended so far durable in the file (H5Fflush). Call before writing a
 * checkpoint, so the trajectory on disk covers every step up to it. */
int traj_flush(TrajWriter *w, Err *err);

/* Flushes and closes; frees w (also on error). */
int traj_close(TrajWriter *w, Err *err);

#endif
