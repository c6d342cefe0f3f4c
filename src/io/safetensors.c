#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "io/pread_full.h"

/* Tensor bytes are copied straight into host floats and ints. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

/* The reference implementation refuses headers above 100 MB; a bigger one is a corrupt or
 * hostile length field, and honouring it would mean a huge allocation. */
#define ST_MAX_HEADER 100000000ull
/* Linux caps one write() near 2 GiB; stay well below. */
#define IO_CHUNK ((size_t)1 << 30)
/* Staging buffer for dtype conversion, in elements. */
#define CONVERT_CHUNK ((size_t)1 << 20)

static const struct {
    const char *name;
    size_t size;
} DTYPES[ST_N_DTYPES] = {
    [ST_F32] = {"F32", 4},   [ST_F16] = {"F16", 2},      [ST_BF16] = {"BF16", 2},
    [ST_F64] = {"F64", 8},   [ST_I8] = {"I8", 1},        [ST_I16] = {"I16", 2},
    [ST_I32] = {"I32", 4},   [ST_I64] = {"I64", 8},      [ST_U8] = {"U8", 1},
    [ST_U16] = {"U16", 2},   [ST_U32] = {"U32", 4},      [ST_U64] = {"U64", 8},
    [ST_BOOL] = {"BOOL", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *st_dtype_name(StDtype d) { return d < ST_N_DTYPES ? DTYPES[d].name : "?"; }
size_t st_dtype_size(StDtype d) { return d < ST_N_DTYPES ? DTYPES[d].size : 0; }

char *st_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = 0;
    k += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? "," : "", shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* ---- low-level reads ---------------------------------------------------------------- */

static int read_error(const StFile *f, const StTensor *t, Err *err) {
    if (errno)
        return err_set(err, "%s: reading tensor '%s': %s", f->path, t->name, strerror(errno));
    return err_set(err, "%s: reading tensor '%s': unexpected end of file (file changed while open?)",
                   f->path, t->name);
}

/* ---- header parsing ----------------------------------------------------------------- */

/* JSON numbers are doubles: accept only exact non-negative integers below 2^53. */
static int json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_dtype(const char *s, StDtype *d) {
    for (int i = 0; i < ST_N_DTYPES; i++)
        if (!strcmp(s, DTYPES[i].name)) {
            *d = (StDtype)i;
            return 0;
        }
    return -1;
}

static int parse_entry(const char *path, const cJSON *e, uint64_t data_len, StTensor *t, Err *err) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return err_set(err, "%s: tensor '%s': header entry is not an object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt))
        return err_set(err, "%s: tensor '%s': field 'dtype' missing or not a string", path, name);
    if (parse_dtype(dt->valuestring, &t->dtype))
        return err_set(err, "%s: tensor '%s' has unknown dtype '%s'", path, name, dt->valuestring);

    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(sh))
        return err_set(err, "%s: tensor '%s': field 'shape' missing or not a list", path, name);
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS)
        return err_set(err, "%s: tensor '%s' has %d dimensions, at most %d supported", path, name, nd,
                       ST_MAX_DIMS);
    t->ndim = nd;
    /* A product that passes the data length cannot have overflowed, so cap at it. */
    uint64_t numel = 1, cap = data_len / DTYPES[t->dtype].size + 1;
    int k = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, sh) {
        uint64_t v;
        if (json_u64(dim, &v) || v > INT64_MAX)
            return err_set(err, "%s: tensor '%s': shape must be a list of non-negative integers", path,
                           name);
        t->shape[k++] = (int64_t)v;
        if (v && numel > cap / v)
            numel = cap + 1; /* saturate: certainly larger than the data section */
        else
            numel *= v;
    }
    t->numel = numel;

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    uint64_t b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || json_u64(cJSON_GetArrayItem(off, 0), &b) ||
        json_u64(cJSON_GetArrayItem(off, 1), &en) || b > en)
        return err_set(err, "%s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end",
                       path, name);
    t->begin = b;
    t->end = en;
    if (en > data_len)
        return err_set(err,
                       "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] run past the end of "
                       "the data section (%" PRIu64 " bytes): truncated file or bad offsets",
                       path, name, b, en, data_len);
    if (numel > cap || numel * DTYPES[t->dtype].size != en - b) {
        char s[256];
        if (numel > cap)
            return err_set(err, "%s: tensor '%s' has shape %s, larger than the data section", path,
                           name, st_shape_str(s, sizeof s, nd, t->shape));
        return err_set(err,
                       "%s: tensor '%s' has shape %s and dtype %s (%" PRIu64 " bytes) but its "
                       "data_offsets span %" PRIu64 " bytes",
                       path, name, st_shape_str(s, sizeof s, nd, t->shape), DTYPES[t->dtype].name,
                       numel * DTYPES[t->dtype].size, en - b);
    }
    return 0;
}

static int cmp_by_begin(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp((*(const StTensor *const *)a)->name, (*(const StTensor *const *)b)->name);
}

/* Names must be unique and byte ranges of non-empty tensors disjoint (holes are allowed). */
static int check_layout(const StFile *f, Err *err) {
    int n = f->n_tensors, rc = 0;
    if (n < 2) return 0;
    const StTensor **v = xmalloc((size_t)n * sizeof *v);
    for (int i = 0; i < n; i++) v[i] = &f->tensors[i];
    qsort(v, (size_t)n, sizeof *v, cmp_by_name);
    for (int i = 1; i < n && !rc; i++)
        if (!strcmp(v[i - 1]->name, v[i]->name))
            rc = err_set(err, "%s: tensor '%s' appears twice in the header", f->path, v[i]->name);
    if (!rc) {
        qsort(v, (size_t)n, sizeof *v, cmp_by_begin);
        const StTensor *prev = NULL;
        for (int i = 0; i < n && !rc; i++) {
            if (v[i]->begin == v[i]->end) continue;
            if (prev && v[i]->begin < prev->end)
                rc = err_set(err,
                             "%s: tensors '%s' and '%s' overlap (data_offsets [%" PRIu64 ", %" PRIu64
                             "] and [%" PRIu64 ", %" PRIu64 "])",
                             f->path, prev->name, v[i]->name, prev->begin, prev->end, v[i]->begin,
                             v[i]->end);
            if (!prev || v[i]->end > prev->end) prev = v[i];
        }
    }
    free(v);
    return rc;
}

static void free_tensors(StFile *f) {
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    f->tensors = NULL;
    f->n_tensors = 0;
}

static int parse_header(StFile *f, const char *hdr, uint64_t hlen, Err *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        uint64_t pos = end ? (uint64_t)(end - hdr) : 0;
        return err_set(err, "%s: header is not valid JSON (error at byte %" PRIu64 " of the file)",
                       f->path, 8 + pos);
    }
    int rc = 0;
    /* The writer pads with spaces; anything else after the JSON value is corruption. */
    for (const char *p = end; p < hdr + hlen && !rc; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            rc = err_set(err, "%s: header has trailing bytes after the JSON (at byte %" PRIu64
                              " of the file)",
                         f->path, 8 + (uint64_t)(p - hdr));
    if (!rc && !cJSON_IsObject(root)) rc = err_set(err, "%s: header is not a JSON object", f->path);
    if (rc) {
        cJSON_Delete(root);
        return rc;
    }
    uint64_t data_len = f->file_size - f->data_start;
    int cap = cJSON_GetArraySize(root);
    f->tensors = xcalloc((size_t)(cap ? cap : 1), sizeof *f->tensors);
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (!strcmp(e->string, "__metadata__")) continue;
        StTensor *t = &f->tensors[f->n_tensors];
        memset(t, 0, sizeof *t);
        if (parse_entry(f->path, e, data_len, t, err)) {
            rc = -1;
            break;
        }
        t->name = xstrdup(e->string);
        f->n_tensors++;
    }
    cJSON_Delete(root);
    if (!rc) rc = check_layout(f, err);
    return rc;
}

int st_open(StFile *f, const char *path, Err *err) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, "%s: not a regular file", path);
    }
    f->path = xstrdup(path);
    f->fd = fd;
    f->file_size = (uint64_t)st.st_size;
    int rc = 0;
    unsigned char lenb[8];
    if (f->file_size < 8) {
        rc = err_set(err, "%s: truncated: file is %" PRIu64 " bytes, too short for the 8-byte header length",
                     path, f->file_size);
    } else if (pread_full(fd, lenb, 8, 0)) {
        rc = err_set(err, "%s: cannot read header length: %s", path, errno ? strerror(errno) : "end of file");
    } else {
        uint64_t hlen = 0;
        for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
        if (hlen > f->file_size - 8) {
            rc = err_set(err, "%s: header length %" PRIu64 " runs past the end of the file (%" PRIu64
                              " bytes)",
                         path, hlen, f->file_size);
        } else if (hlen > ST_MAX_HEADER) {
            rc = err_set(err, "%s: header length %" PRIu64 " exceeds the limit of %llu bytes", path,
                         hlen, ST_MAX_HEADER);
        } else {
            f->data_start = 8 + hlen;
            char *hdr = xmalloc((size_t)hlen + 1);
            if (pread_full(fd, hdr, (size_t)hlen, 8))
                rc = err_set(err, "%s: cannot read header: %s", path,
                             errno ? strerror(errno) : "end of file");
            else {
                hdr[hlen] = '\0';
                rc = parse_header(f, hdr, hlen, err);
            }
            free(hdr);
        }
    }
    if (rc) st_close(f);
    return rc;
}

void st_close(StFile *f) {
    if (f->fd >= 0) close(f->fd);
    free_tensors(f);
    free(f->path);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

const StTensor *st_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

/* ---- conversions -------------------------------------------------------------------- */

static float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24 is exact in fp32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | man << 13); /* inf, or nan keeping payload */
    return bits_f32(sign | (exp + 112) << 23 | man << 13);
}

int st_read_f32(const StFile *f, const StTensor *t, float *dst, Err *err) {
    uint64_t off = f->data_start + t->begin;
    if (t->dtype == ST_F32) {
        if (pread_full(f->fd, dst, (size_t)(t->end - t->begin), off)) return read_error(f, t, err);
        return 0;
    }
    if (t->dtype != ST_BF16 && t->dtype != ST_F16)
        return err_set(err, "%s: tensor '%s' has dtype %s, expected F32, BF16 or F16", f->path, t->name,
                       DTYPES[t->dtype].name);
    size_t chunk = t->numel < CONVERT_CHUNK ? (size_t)t->numel : CONVERT_CHUNK;
    uint16_t *buf = xmalloc((chunk ? chunk : 1) * sizeof *buf);
    int rc = 0;
    for (uint64_t i = 0; i < t->numel && !rc; i += chunk) {
        size_t n = t->numel - i < chunk ? (size_t)(t->numel - i) : chunk;
        if (pread_full(f->fd, buf, n * 2, off + i * 2)) {
            rc = read_error(f, t, err);
            break;
        }
        if (t->dtype == ST_BF16)
            for (size_t j = 0; j < n; j++) dst[i + j] = bf16_to_f32(buf[j]);
        else
            for (size_t j = 0; j < n; j++) dst[i + j] = f16_to_f32(buf[j]);
    }
    free(buf);
    return rc;
}

int st_read_i32(const StFile *f, const StTensor *t, int32_t *dst, Err *err) {
    uint64_t off = f->data_start + t->begin;
    if (t->dtype == ST_I32) {
        if (pread_full(f->fd, dst, (size_t)(t->end - t->begin), off)) return read_error(f, t, err);
        return 0;
    }
    if (t->dtype != ST_I64)
        return err_set(err, "%s: tensor '%s' has dtype %s, expected I32 or I64", f->path, t->name,
                       DTYPES[t->dtype].name);
    size_t chunk = t->numel < CONVERT_CHUNK ? (size_t)t->numel : CONVERT_CHUNK;
    int64_t *buf = xmalloc((chunk ? chunk : 1) * sizeof *buf);
    int rc = 0;
    for (uint64_t i = 0; i < t->numel && !rc; i += chunk) {
        size_t n = t->numel - i < chunk ? (size_t)(t->numel - i) : chunk;
        if (pread_full(f->fd, buf, n * 8, off + i * 8)) {
            rc = read_error(f, t, err);
            break;
        }
        for (size_t j = 0; j < n && !rc; j++) {
            if (buf[j] < INT32_MIN || buf[j] > INT32_MAX)
                rc = err_set(err, "%s: tensor '%s' value %" PRId64 " at index %" PRIu64
                                  " does not fit in int32",
                             f->path, t->name, buf[j], i + j);
            dst[i + j] = (int32_t)buf[j];
        }
    }
    free(buf);
    return rc;
}

/* ---- writer ------------------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t len, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 4096;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_str(Buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_json_string(Buf *b, const char *s) {
    buf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            buf_add(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            buf_add(b, esc, 6);
        } else {
            buf_add(b, (const char *)p, 1);
        }
    }
    buf_add(b, "\"", 1);
}

static int write_chunked(FILE *fp, const void *data, uint64_t len) {
    const char *p = data;
    while (len > 0) {
        size_t n = len < IO_CHUNK ? (size_t)len : IO_CHUNK;
        if (fwrite(p, 1, n, fp) != n) return -1;
        p += n;
        len -= n;
    }
    return 0;
}

int st_write(const char *path, const StWriteTensor *tensors, int n, const char *const *metadata,
             Err *err) {
    Buf h = {0};
    uint64_t pos = 0;
    uint64_t *sizes = xcalloc((size_t)(n > 0 ? n : 1), sizeof *sizes);
    int rc = 0;
    buf_str(&h, "{");
    int first = 1;
    if (metadata && metadata[0]) {
        buf_str(&h, "\"__metadata__\":{");
        for (int i = 0; metadata[i] && metadata[i + 1]; i += 2) {
            if (i) buf_str(&h, ",");
            buf_json_string(&h, metadata[i]);
            buf_str(&h, ":");
            buf_json_string(&h, metadata[i + 1]);
        }
        buf_str(&h, "}");
        first = 0;
    }
    for (int i = 0; i < n && !rc; i++) {
        const StWriteTensor *t = &tensors[i];
        if (t->dtype != ST_F32 && t->dtype != ST_I32) {
            rc = err_set(err, "%s: tensor '%s': writing dtype %s is not supported (F32 or I32 only)", path,
                         t->name, st_dtype_name(t->dtype));
            break;
        }
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS) {
            rc = err_set(err, "%s: tensor '%s': %d dimensions is out of range", path, t->name, t->ndim);
            break;
        }
        for (int j = 0; j < i && !rc; j++)
            if (!strcmp(tensors[j].name, t->name))
                rc = err_set(err, "%s: tensor '%s' given twice", path, t->name);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim && !rc; d++) {
            if (t->shape[d] < 0) rc = err_set(err, "%s: tensor '%s' has a negative dimension", path, t->name);
            numel *= (uint64_t)t->shape[d];
        }
        if (rc) break;
        sizes[i] = numel * 4;
        char num[64];
        if (!first) buf_str(&h, ",");
        first = 0;
        buf_json_string(&h, t->name);
        buf_str(&h, ":{\"dtype\":\"");
        buf_str(&h, st_dtype_name(t->dtype));
        buf_str(&h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", t->shape[d]);
            buf_str(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", pos, pos + sizes[i]);
        buf_str(&h, num);
        pos += sizes[i];
    }
    buf_str(&h, "}");
    /* Pad so the data section starts 8-byte aligned, as the reference writer does. */
    while (h.len % 8) buf_str(&h, " ");

    AtomicFile af;
    if (!rc && atomic_open(&af, path, err) == 0) {
        unsigned char lenb[8];
        for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
        int bad = fwrite(lenb, 1, 8, af.fp) != 8 || write_chunked(af.fp, h.s, h.len);
        for (int i = 0; i < n && !bad; i++) bad = write_chunked(af.fp, tensors[i].data, sizes[i]);
        if (bad) {
            int e = errno;
            atomic_abort(&af);
            rc = err_set(err, "%s: write failed: %s", path, strerror(e));
        } else {
            rc = atomic_commit(&af, err);
        }
    } else if (!rc) {
        rc = -1;
    }
    free(sizes);
    free(h.s);
    return rc;
}
