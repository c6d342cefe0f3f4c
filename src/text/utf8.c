#include "text/utf8.h"

/* The accepted second-byte range depends on the lead byte; this is the table of
 * Unicode 15, §3.9 (well-formed byte sequences), which also defines "maximal subpart". */
static int seq_len(unsigned char b, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b == 0xE0) { *lo = 0xA0; return 3; }
    if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return 3;
    if (b == 0xED) { *hi = 0x9F; return 3; }
    if (b == 0xF0) { *lo = 0x90; return 4; }
    if (b >= 0xF1 && b <= 0xF3) return 4;
    if (b == 0xF4) { *hi = 0x8F; return 4; }
    return 0;
}

/* Returns the length of the valid sequence at s, or -k where k >= 1 is the length of
 * the maximal invalid subpart, or 0 when s[0..n) is a valid but incomplete prefix. */
static int classify(const unsigned char *s, size_t n) {
    unsigned char lo, hi;
    int len = seq_len(s[0], &lo, &hi);
    if (len == 0) return -1;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return 0;
        unsigned char c = s[i];
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (c < l || c > h) return -i;
    }
    return len;
}

size_t utf8_first_invalid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int k = classify(u + i, n - i);
        if (k <= 0) return i;
        i += (size_t)k;
    }
    return n;
}

size_t utf8_lossy_append(ByteBuf *out, const char *s, size_t n, int final) {
    static const char repl[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;  /* run: start of the pending stretch of valid bytes */
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        int k = classify(u + i, n - i);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        bytebuf_append(out, s + run, i - run);
        if (k == 0) {
            if (!final) return i;
            bytebuf_append(out, repl, 3);
            return n;
        }
        bytebuf_append(out, repl, 3);
        i += (size_t)-k;
        run = i;
    }
    bytebuf_append(out, s + run, n - run);
    return n;
}

int utf8_decode_one(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    int k = classify(u, n);
    if (k <= 0) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t c = k == 1 ? u[0] : k == 2 ? u[0] & 0x1Fu : k == 3 ? u[0] & 0x0Fu : u[0] & 0x07u;
    for (int i = 1; i < k; i++) c = (c << 6) | (u[i] & 0x3Fu);
    *cp = c;
    return k;
}

int utf8_encode_one(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
