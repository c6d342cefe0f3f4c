/* tokenizer.h — text <-> token ids: the only tokenizer interface the rest of softcot uses.
 *
 * Defines the opaque Tokenizer (two kinds behind one API):
 *   - Hugging Face tokenizer.json byte-level BPE, as used by Llama 3.x and Qwen2/2.5:
 *     added tokens, NFC normalizer, Split(regex)+ByteLevel pre-tokenizer, BPE model
 *     (merges as "a b" or ["a","b"], ignore_merges), TemplateProcessing (BOS), ByteLevel
 *     decoder. Encoding reproduces Hugging Face tokenizers' ids exactly.
 *   - llama2.c tokenizer.bin (tok512.bin): run.c semantics (dummy-prefix " ", score-
 *     ordered merges, <0xXX> byte fallback, BOS = 1, EOS = 2).
 * and TokenDecoder, a streaming decoder that emits only complete UTF-8 characters.
 *
 * Ownership and threads: a loaded Tokenizer is immutable; any number of threads may
 * encode/decode with it concurrently (each call uses only its own scratch memory).
 * Errors: functions taking Err* return 0 / non-NULL on success and -1 / NULL after
 * filling err with one line that names the file and what was wrong. They never exit.
 *
 * Must not: print, exit, read anything but the tokenizer files it is pointed at, or
 * keep global state. Callers must not look inside Tokenizer (see tok_internal.h).
 */
#ifndef SOFTCOT_TEXT_TOKENIZER_H
#define SOFTCOT_TEXT_TOKENIZER_H

#include <stddef.h>

#include "core/check.h"

typedef struct Tokenizer Tokenizer;

/* Loads DIR/tokenizer.json (with DIR/tokenizer_config.json when present, for the BOS
 * and EOS names) or, if there is no tokenizer.json, DIR/tokenizer.bin (llama2.c). */
Tokenizer *tokenizer_load_dir(const char *dir, Err *err);
/* config_path may be NULL. */
Tokenizer *tokenizer_load_hf(const char *json_path, const char *config_path, Err *err);
/* The same from memory (tests, fuzzing); name is used in messages, cfg may be NULL. */
Tokenizer *tokenizer_load_hf_mem(const char *json, size_t len, const char *cfg, size_t cfg_len,
                                 const char *name, Err *err);
/* llama2.c format: int32 max_token_length, then per token float32 score, int32 length,
 * bytes; the vocabulary size is however many tokens the file holds. */
Tokenizer *tokenizer_load_llama2c(const char *path, Err *err);
Tokenizer *tokenizer_load_llama2c_mem(const void *data, size_t len, const char *name, Err *err);
void tokenizer_free(Tokenizer *t);

/* Encodes text[0..len) (it need not be NUL-terminated and may contain NUL bytes).
 * On success *ids is a malloc'd array of *n_ids ids (never NULL; free() it).
 * add_special: 1 applies the tokenizer's template (Llama 3: prepend 128000; Qwen2:
 * nothing; llama2.c: prepend BOS 1), like Hugging Face's add_special_tokens=True.
 * Added tokens written in the text (e.g. "<|eot_id|>") always become their own id.
 * Invalid UTF-8: the Hugging Face kind rejects it ("invalid UTF-8 at byte N"); the
 * llama2.c kind encodes any bytes, as run.c does, with <0xXX> byte fallback. */
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int add_special,
                     int **ids, int *n_ids, Err *err);

/* 1 + the largest id (embedding rows a model needs at least). */
int tokenizer_vocab_size(const Tokenizer *t);
/* -1 if the tokenizer has none. HF: tokenizer_config.json's bos_token / eos_token
 * (else BOS from the TemplateProcessing, EOS none). llama2.c: 1 and 2. */
int tokenizer_bos_id(const Tokenizer *t);
int tokenizer_eos_id(const Tokenizer *t);
/* Id of the token spelled exactly `piece` (as in the file: "<|eot_id|>", "ĠOnce",
 * " Once"), or -1. */
int tokenizer_token_id(const Tokenizer *t, const char *piece);
/* The spelling of id (not NUL-terminated; *len set), or NULL for an unknown id. */
const char *tokenizer_piece(const Tokenizer *t, int id, size_t *len);
/* 1 for special tokens (HF: added tokens marked special; llama2.c: 0, 1, 2). */
int tokenizer_is_special(const Tokenizer *t, int id);
/* "huggingface" or "llama2c". */
const char *tokenizer_kind(const Tokenizer *t);

/* Decoding flags. By default special tokens are skipped (as tokenizers' decode with
 * skip_special_tokens=True), so BOS/EOS/<|eot_id|> never show up in text. */
enum { TOKDEC_KEEP_SPECIAL = 1 };

/* Decodes a whole sequence into a malloc'd, NUL-terminated string (free() it). The
 * text is always valid UTF-8: byte sequences that do not form characters become
 * U+FFFD exactly as Hugging Face's decode (String::from_utf8_lossy) does. llama2.c:
 * a piece following BOS loses its leading space, as in run.c. Fails only for an id
 * outside the vocabulary. The text can contain NUL characters if id for byte 0 was
 * decoded; use tokenizer_decode_ex to get the length. */
int tokenizer_decode(const Tokenizer *t, const int *ids, int n, char **text, Err *err);
int tokenizer_decode_ex(const Tokenizer *t, const int *ids, int n, int flags, char **text,
                        size_t *len, Err *err);

/* Streaming decode for generation: push ids one at a time; each push yields the text
 * that became complete (valid UTF-8, whole characters only; a character split across
 * tokens appears with the token that completes it). Concatenating every push and the
 * final flush gives exactly tokenizer_decode_ex of the whole sequence. */
typedef struct TokenDecoder TokenDecoder;

TokenDecoder *token_decoder_new(const Tokenizer *t); /* skips special tokens */
TokenDecoder *token_decoder_new_ex(const Tokenizer *t, int flags);
/* On success *out points to *len new bytes (maybe 0), NUL-terminated, owned by the
 * decoder and valid until its next call. Fails only for an id outside the vocabulary
 * (the decoder is then unchanged). */
int token_decoder_push(TokenDecoder *d, int id, const char **out, size_t *len, Err *err);
/* End of sequence: a held incomplete character is emitted as U+FFFD. */
void token_decoder_flush(TokenDecoder *d, const char **out, size_t *len);
/* Forget held bytes and the previous id (start a new sequence). */
void token_decoder_reset(TokenDecoder *d);
void token_decoder_free(TokenDecoder *d);

#endif
