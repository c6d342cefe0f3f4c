#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_read_all(const char *path, char **data, size_t *len, Err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) buf = xrealloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return err_set(err, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    if (len) *len = n;
    return 0;
}

char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = xmalloc(a + b + 2);
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void fsync_parent_dir(const char *path) {
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int atomic_open(AtomicFile *af, const char *path, Err *err) {
    af->path = xstrdup(path);
    af->tmp_path = xmalloc(strlen(path) + 5);
    sprintf(af->tmp_path, "%s.tmp", path);
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        int e = errno;
        free(af->path);
        free(af->tmp_path);
        return err_set(err, "%s: cannot create: %s", path, strerror(e));
    }
    return 0;
}

void atomic_abort(AtomicFile *af) {
    if (af->fp) fclose(af->fp);
    unlink(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    af->fp = NULL;
}

int atomic_commit(AtomicFile *af, Err *err) {
    int bad = fflush(af->fp) != 0 || ferror(af->fp) || fsync(fileno(af->fp)) != 0;
    int e = errno;
    bad |= fclose(af->fp) != 0;
    af->fp = NULL;
    if (bad || rename(af->tmp_path, af->path) != 0) {
        if (!bad) e = errno;
        err_set(err, "%s: write failed: %s", af->path, strerror(e));
        unlink(af->tmp_path);
        free(af->path);
        free(af->tmp_path);
        return -1;
    }
    fsync_parent_dir(af->path);
    free(af->path);
    free(af->tmp_path);
    return 0;
}

int atomic_write_all(const char *path, const void *data, size_t len, Err *err) {
    AtomicFile af;
    if (atomic_open(&af, path, err)) return -1;
    if (len && fwrite(data, 1, len, af.fp) != len) {
        atomic_abort(&af);
        return err_set(err, "%s: write failed", path);
    }
    return atomic_commit(&af, err);
}

int make_dirs(const char *path, Err *err) {
    char *p = xstrdup(path);
    for (char *s = p + 1;; s++) {
        int end = *s == '\0';
        if (*s == '/' || end) {
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                int e = errno;
                err_set(err, "%s: cannot create directory: %s", p, strerror(e));
                free(p);
                return -1;
            }
            if (end) break;
            *s = '/';
        }
    }
    free(p);
    return 0;
}
