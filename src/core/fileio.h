/* fileio.h — whole-file reads and crash-safe whole-file writes.
 *
 * Defines: file_read_all (for JSON/config inputs) and the atomic write protocol used
 * for every output softcot produces: write "<path>.tmp", fsync, rename over <path>,
 * fsync the directory. A crash at any instant leaves either the old file or the new one.
 * Must not: know about any file format.
 */
#ifndef SOFTCOT_FILEIO_H
#define SOFTCOT_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include "check.h"

/* Reads the whole file into a NUL-terminated buffer (caller frees). */
int file_read_all(const char *path, char **data, size_t *len, Err *err);

/* Atomic writer: open creates "<path>.tmp"; commit fsyncs, renames and fsyncs the dir;
 * abort removes the temp file. */
typedef struct {
    FILE *fp;
    char *path;
    char *tmp_path;
} AtomicFile;

int atomic_open(AtomicFile *af, const char *path, Err *err);
int atomic_commit(AtomicFile *af, Err *err);
void atomic_abort(AtomicFile *af);

/* Convenience: atomically replace path with the given bytes. */
int atomic_write_all(const char *path, const void *data, size_t len, Err *err);

/* mkdir -p; ok if it exists. */
int make_dirs(const char *path, Err *err);

/* Joins dir and name with '/' into a new string. */
char *path_join(const char *dir, const char *name);

int file_exists(const char *path);

#endif
