/* options.h — table-driven run options: one OptSpec per option (key, type, field offset,
 * default, the paper's value, help). The same table parses an INI file (inih), applies
 * `--key=value` / `--key value` overrides, prints `--help` with every default and paper
 * value, and dumps the effective configuration as INI text (logged and stored in
 * checkpoints so a run can be reproduced exactly).
 * Must not: know what the options mean (the commands validate values).
 */
#ifndef SOFTCOT_OPTIONS_H
#define SOFTCOT_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include "core/check.h"

typedef enum { OPT_INT, OPT_FLOAT, OPT_STRING, OPT_BOOL } OptType;

typedef struct {
    const char *key;
    OptType type;
    size_t offset;   /* offsetof(struct, field): int, float, char* (owned) or int (bool) */
    const char *def;
    const char *paper; /* the paper's value, or NULL when the paper has none */
    const char *help;
} OptSpec;

/* Sets every field to its default (strings are strdup'ed). */
void options_defaults(const OptSpec *specs, int n, void *obj);
void options_free_strings(const OptSpec *specs, int n, void *obj);
/* Sets one option from text; `where` prefixes errors (e.g. "run.ini:12" or "--lr"). */
int options_set(const OptSpec *specs, int n, void *obj, const char *key, const char *value,
                const char *where, Err *err);
/* Reads KEY = VALUE lines; [sections] are allowed and ignored. */
int options_load_ini(const OptSpec *specs, int n, void *obj, const char *path, Err *err);
/* Applies --key=value / --key value arguments from argv[first..argc) ('-' in a key reads
 * as '_'; a bool may omit its value). Any argument that is not an option of the table is
 * an error. */
/* The spec an argument "--key[=value]" names: the key, dashes turned to underscores, goes
 * to key[key_size] and *eq to the '=' (NULL without one). NULL with err for an unknown or
 * over-long name. */
const OptSpec *options_lookup_arg(const OptSpec *specs, int n, const char *arg, char *key, size_t key_size,
                                  const char **eq, Err *err);
int options_parse_args(const OptSpec *specs, int n, void *obj, int argc, char **argv,
                       int first, Err *err);
void options_help(const OptSpec *specs, int n, FILE *out);
/* The effective values as INI text (malloc'd). String values with leading or trailing
 * whitespace are written in double quotes, which options_set removes on reading. */
char *options_dump(const OptSpec *specs, int n, const void *obj);
/* An INI value as options_dump meant it: without the double quotes it may have put around
 * it (malloc'd). For readers of options_dump output that do not go through options_set. */
char *options_unquote(const char *value);

#endif
