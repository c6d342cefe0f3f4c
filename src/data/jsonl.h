/* jsonl.h — line-by-line reading of JSONL files for the dataset readers.
 *
 * Defines: JsonlReader (iterates the lines of an in-memory buffer, parsing each non-blank
 * line as one JSON object with cJSON) and field accessors that report problems as
 * "path:LINE: ..." one-line errors.
 * Must not: know any dataset's field names, exit, or print.
 */
#ifndef SOFTCOT_DATA_JSONL_H
#define SOFTCOT_DATA_JSONL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/check.h"

typedef struct {
    const char *path;
    const char *buf;
    size_t len, pos;
    int line; /* 1-based number of the line last returned */
} JsonlReader;

void jsonl_init(JsonlReader *r, const char *path, const char *buf, size_t len);

/* Next non-blank line: returns 1 with *obj (free with cJSON_Delete), 0 at the end of the
 * buffer, or -1 after err_set("path:LINE: ...") for a line that is not one JSON object;
 * the reader has then moved past that line, so a caller may skip it and go on. */
int jsonl_next(JsonlReader *r, cJSON **obj, Err *err);

/* A required text field: a JSON string (or a number, written back as text, since some
 * datasets store integer answers as numbers). Returns 0 and a malloc'd *out, or -1 with
 * "path:LINE: missing field "key" (expected a string)" or "... must be a string". */
int jsonl_get_text(const JsonlReader *r, const cJSON *obj, const char *key, char **out, Err *err);

/* As jsonl_get_text, but an absent (or null) field gives 0 and *out = NULL. */
int jsonl_get_text_opt(const JsonlReader *r, const cJSON *obj, const char *key, char **out, Err *err);

#endif
