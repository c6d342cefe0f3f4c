/* byte_level.h — the GPT-2 byte-to-character alphabet of Hugging Face's ByteLevel
 * pre-tokenizer and decoder.
 *
 * Defines: the mapping in both directions and the ByteLevel decoder rule for one token
 * (map every character back to its byte; a token holding any character outside the
 * alphabet decodes to its own UTF-8 bytes, exactly as tokenizers' ByteLevel decoder).
 * Also the GPT-2 split regex that ByteLevel uses when `use_regex` is true.
 * Must not: hold tables in mutable globals (the mapping is computed arithmetically).
 */
#ifndef SOFTCOT_TEXT_BYTE_LEVEL_H
#define SOFTCOT_TEXT_BYTE_LEVEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/bytebuf.h"

/* tokenizers' ByteLevel::use_regex pattern (identical to GPT-2's). */
#define BYTE_LEVEL_GPT2_REGEX \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* Code point that stands for byte b. */
uint32_t byte_level_char(uint8_t b);

/* Byte that code point cp stands for, or -1 if cp is not in the alphabet. */
int byte_level_byte(uint32_t cp);

/* Appends the raw bytes a token string s[0..n) decodes to. Returns 1 if every
 * character was in the alphabet (the usual case), 0 if the token fell back to its
 * UTF-8 bytes. */
int byte_level_decode_token(const char *s, size_t n, ByteBuf *out);

/* Appends the byte-level spelling (UTF-8) of raw bytes s[0..n). */
void byte_level_encode(const char *s, size_t n, ByteBuf *out);

#endif
