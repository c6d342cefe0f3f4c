/* latex_norm.h — canonical form of a short LaTeX math answer, the first stage of the
 * answer checker (rl/math_equiv.c).
 *
 * Defines: latex_normalize, which removes everything that does not change a final answer's
 * value: math-mode wrappers ($, \( \), \[ \]), sizing and spacing (\left \right \big
 * \! \, \; \quad ~ and spaces), \dfrac/\tfrac -> \frac, degrees (^\circ), \% and \$, text
 * units (\text{ cm}^2 after a number, also bare trailing words such as "15 cm"), text
 * wrappers (\text{Evelyn} -> Evelyn), thousands separators (1,000  10{,}000  10,\!080), a
 * trailing full stop and outer braces. Also a few Unicode symbols a model may emit.
 * Must not: decide equivalence, evaluate anything, or keep state between calls.
 */
#ifndef SOFTCOT_RL_LATEX_NORM_H
#define SOFTCOT_RL_LATEX_NORM_H

#include <stddef.h>

/* Longest answer (bytes) the checker analyses; longer strings are only compared verbatim,
 * which bounds the work a hostile or runaway answer can cause. */
#define MATH_MAX_LEN 4096

/* Returns the canonical form of s[0..n) (malloc'd, never NULL). */
char *latex_normalize(const char *s, size_t n);

/* In place: if the whole string is an integer/decimal written with ',' thousands groups
 * ("-1,234,567.5"), removes the commas. Anything else is left alone, so "1,2" (a list)
 * and "(1,250)" (a point) are not touched. */
void latex_strip_thousands(char *s);

/* In place: removes leading/trailing spaces and any number of braces wrapping the whole
 * string ("{{5}}" -> "5"). */
void latex_trim(char *s);

#endif
