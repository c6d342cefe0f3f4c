/* safetensors.h — reader and writer for the Hugging Face safetensors format.
 *
 * Defines: StFile (an opened, fully validated safetensors file: header parsed, every
 * tensor's dtype, shape and byte range checked against each other and against the file
 * size before anything is read), st_read_f32 (F32/BF16/F16 -> fp32), st_read_i32
 * (I32/I64 -> int32), and st_write (F32 and I32 tensors, atomic, header padded to a
 * multiple of 8 bytes).
 * Layout of a file: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the data section; offsets are relative to the start of the data section.
 * Must not: know about model parameter names or layouts (that is model_dir.c), trust
 * any number from the file before checking it, exit on bad input, or read more than
 * 1 GiB in one system call.
 */
#ifndef SOFTCOT_IO_SAFETENSORS_H
#define SOFTCOT_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/check.h"

enum { ST_MAX_DIMS = 8 };

/* Every dtype name the format defines, so an error can name what the file holds. */
typedef enum {
    ST_F32, ST_F16, ST_BF16, ST_F64,
    ST_I8, ST_I16, ST_I32, ST_I64,
    ST_U8, ST_U16, ST_U32, ST_U64,
    ST_BOOL, ST_F8_E4M3, ST_F8_E5M2,
    ST_N_DTYPES
} StDtype;

const char *st_dtype_name(StDtype d);
size_t st_dtype_size(StDtype d);

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end; /* byte range within the data section */
} StTensor;

typedef struct {
    char *path;
    int fd;
    uint64_t file_size;
    uint64_t data_start; /* 8 + header length */
    StTensor *tensors;   /* in header order */
    int n_tensors;
} StFile;

/* Opens and validates path. On failure nothing stays open and err holds one line that
 * starts with the path. */
int st_open(StFile *f, const char *path, Err *err);
void st_close(StFile *f);

/* NULL if the file has no tensor of that name. */
const StTensor *st_find(const StFile *f, const char *name);

/* Reads all t->numel elements into dst, converting BF16 and F16 to fp32. Any other
 * dtype is an error: "<path>: tensor 'x' has dtype I64, expected F32, BF16 or F16". */
int st_read_f32(const StFile *f, const StTensor *t, float *dst, Err *err);

/* Reads an I32 tensor (or an I64 one whose values fit in int32) into dst. */
int st_read_i32(const StFile *f, const StTensor *t, int32_t *dst, Err *err);

/* Formats a shape as "[a,b,...]" into buf; returns buf. */
char *st_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);

typedef struct {
    const char *name;
    StDtype dtype; /* ST_F32 or ST_I32 */
    int ndim;      /* 0 (scalar) .. ST_MAX_DIMS */
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* numel elements, little-endian host layout */
} StWriteTensor;

/* Writes the tensors, in the given order and contiguously, to path via a temp file,
 * fsync and rename. metadata is NULL or a NULL-terminated list of alternating key and
 * value strings, stored as "__metadata__". */
int st_write(const char *path, const StWriteTensor *tensors, int n,
             const char *const *metadata, Err *err);

#endif
