/* copy_file.h — byte-for-byte copy of a small side file (tokenizer files) into a model
 * directory, with the same crash safety as every other output: temp file, fsync, rename.
 * Defines: copy_file_atomic.
 * Must not: interpret the bytes it copies, or be used for multi-GB files (it reads the
 * whole source into memory).
 */
#ifndef SOFTCOT_IO_COPY_FILE_H
#define SOFTCOT_IO_COPY_FILE_H

#include "core/check.h"

/* Returns 0, or -1 with "<src>: cannot open: ..." or "<dst>: write failed: ..." in err. */
int copy_file_atomic(const char *src, const char *dst, Err *err);

#endif
