#include "io/copy_file.h"

#include <stdlib.h>

#include "core/fileio.h"

int copy_file_atomic(const char *src, const char *dst, Err *err) {
    char *data;
    size_t len;
    if (file_read_all(src, &data, &len, err)) return -1;
    int rc = atomic_write_all(dst, data, len, err);
    free(data);
    return rc;
}
