/* nfc.h — Unicode NFC normalization (tokenizers' "NFC" normalizer) via utf8proc.
 *
 * Defines: text_nfc, with a copy-free fast path for ASCII (already NFC).
 * Must not: be given invalid UTF-8 (callers validate first).
 */
#ifndef SOFTCOT_TEXT_NFC_H
#define SOFTCOT_TEXT_NFC_H

#include <stddef.h>

#include "core/bytebuf.h"

/* Appends NFC(s[0..n)) to out. Returns 0, or -1 if utf8proc rejects the input. */
int text_nfc(const char *s, size_t n, ByteBuf *out);

/* 1 if every byte is ASCII, in which case NFC is the identity. */
int text_is_ascii(const char *s, size_t n);

#endif
