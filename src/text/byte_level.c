#include "text/byte_level.h"

#include "text/utf8.h"

/* GPT-2 keeps the printable Latin-1 bytes as themselves and moves the other 68 bytes
 * (0x00-0x20, 0x7F-0xA0, 0xAD) in order to U+0100.. so that no token contains
 * whitespace or control characters. */
uint32_t byte_level_char(uint8_t b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    if (b <= 0x20) return 256u + b;
    if (b >= 0x7F && b <= 0xA0) return 256u + 33u + (uint32_t)(b - 0x7F);
    return 256u + 33u + 34u; /* 0xAD */
}

int byte_level_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 256 && cp < 256 + 33) return (int)(cp - 256);
    if (cp >= 256 + 33 && cp < 256 + 33 + 34) return (int)(0x7F + cp - (256 + 33));
    if (cp == 256 + 33 + 34) return 0xAD;
    return -1;
}

int byte_level_decode_token(const char *s, size_t n, ByteBuf *out) {
    size_t start = out->n;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = utf8_decode_one(s + i, n - i, &cp);
        int b = (k == 1 && (unsigned char)s[i] >= 0x80) ? -1 : byte_level_byte(cp);
        if (b < 0) {
            out->n = start;
            bytebuf_append(out, s, n);
            return 0;
        }
        bytebuf_putc(out, (char)b);
        i += (size_t)k;
    }
    return 1;
}

void byte_level_encode(const char *s, size_t n, ByteBuf *out) {
    for (size_t i = 0; i < n; i++) {
        char u[4];
        int k = utf8_encode_one(byte_level_char((uint8_t)s[i]), u);
        bytebuf_append(out, u, (size_t)k);
    }
}
