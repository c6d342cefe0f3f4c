#include "io/pread_full.h"

#include <errno.h>
#include <sys/types.h>
#include <unistd.h>

#define IO_CHUNK ((size_t)1 << 30)

int pread_full(int fd, void *buf, size_t len, uint64_t off) {
    char *p = buf;
    while (len > 0) {
        size_t want = len < IO_CHUNK ? len : IO_CHUNK;
        ssize_t got = pread(fd, p, want, (off_t)off);
        if (got < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (got == 0) {
            errno = 0;
            return -1;
        }
        p += got;
        off += (uint64_t)got;
        len -= (size_t)got;
    }
    return 0;
}
