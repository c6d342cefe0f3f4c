/* args.h — small helpers for the subcommands' hand-written option parsers: "--key value"
 * and "--key=value" forms, and strict number parsing with one-line errors.
 * Must not: exit; callers report errors with their usage text.
 */
#ifndef SOFTCOT_ARGS_H
#define SOFTCOT_ARGS_H

#include "core/check.h"

/* If argv[*i] is "--name" (value in argv[*i+1]) or "--name=value", sets *value, advances
 * *i past what it consumed and returns 1; returns -1 if the value is missing, 0 if the
 * argument is another option. */
int arg_value(int argc, char **argv, int *i, const char *name, const char **value);
int parse_int(const char *s, const char *what, long lo, long hi, long *out, Err *err);
int parse_float(const char *s, const char *what, double lo, double hi, double *out, Err *err);
/* Comma- or space-separated non-negative integers; caller frees *ids. */
int parse_id_list(const char *s, const char *what, int **ids, int *n, Err *err);

#endif
