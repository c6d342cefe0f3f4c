/* pread_full.h — positioned reads that loop until done, for the weight readers.
 *
 * Defines: pread_full, which reads exactly len bytes at off, retrying on EINTR and short
 * reads and never asking the kernel for more than 1 GiB at once (Linux returns at most
 * about 2 GiB per call, so one large read would silently come back short).
 * Must not: know about any file format or allocate.
 */
#ifndef SOFTCOT_IO_PREAD_FULL_H
#define SOFTCOT_IO_PREAD_FULL_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0, or -1 with errno set (errno 0 means the file ended first). */
int pread_full(int fd, void *buf, size_t len, uint64_t off);

#endif
