/* utf8.h — UTF-8 validation and lossy (U+FFFD) repair, shared by encode and decode.
 *
 * Defines:
 *   - utf8_first_invalid: where strict validation fails (encode rejects such text);
 *   - utf8_lossy_append: the repair Hugging Face applies when it decodes bytes
 *     (Rust's String::from_utf8_lossy: one U+FFFD per maximal invalid subpart), usable
 *     incrementally so a stream never emits half a character.
 *   - utf8_decode_one: one code point, for callers that walk characters.
 * Must not: allocate except through the ByteBuf it is given; know about tokens.
 */
#ifndef SOFTCOT_TEXT_UTF8_H
#define SOFTCOT_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "core/bytebuf.h"

/* Offset of the first byte that makes s[0..n) invalid UTF-8 (overlong forms,
 * surrogates and code points above U+10FFFF are invalid), or n when it is valid. */
size_t utf8_first_invalid(const char *s, size_t n);

/* Appends s[0..n) to out, replacing each maximal invalid subpart with U+FFFD.
 * If final is 0, an incomplete but so far valid sequence at the very end is left
 * unconsumed (at most 3 bytes); returns how many bytes were consumed. If final is 1,
 * everything is consumed and a trailing incomplete sequence becomes one U+FFFD. */
size_t utf8_lossy_append(ByteBuf *out, const char *s, size_t n, int final);

/* Decodes the code point at s (n > 0 bytes available) of valid UTF-8; returns its
 * length and stores the code point. On invalid input returns 1 and stores 0xFFFD. */
int utf8_decode_one(const char *s, size_t n, uint32_t *cp);

/* Encodes cp (<= 0x10FFFF) into out (4 bytes of room); returns the length. */
int utf8_encode_one(uint32_t cp, char *out);

#endif
