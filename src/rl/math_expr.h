/* math_expr.h — numeric evaluation of a normalized LaTeX expression, used by the answer
 * checker to decide whether two answers have the same value (constants) or are the same
 * function (expressions in variables, compared at a few pseudo-random points).
 *
 * Defines: expr_eval, a recursive-descent evaluator in complex double arithmetic over
 *   + - * / ^ (\cdot \times \div), implicit multiplication (2x, 3\sqrt2, (a+5)(b+2)),
 *   unary signs, ( ) [ ] { } grouping, |x|, n!, \frac, \sqrt, \sqrt[n], \binom, \pi,
 *   i (imaginary unit), \sin \cos \tan \cot \sec \csc \arcsin \arccos \arctan \sinh \cosh
 *   \tanh \ln \log (\log_b) \exp, \lfloor \rfloor \lceil \rceil, and variables: single
 *   letters with optional subscripts (x, a_1, x_{n}) and Greek letters.
 *   A variable's value at point p is a fixed function of its name and p (Philox, fixed
 *   key), so the same variable gets the same value in both answers.
 * Must not: allocate, keep state between calls, or recurse without bound: nesting deeper
 *   than EXPR_MAX_DEPTH is a parse failure, so any input finishes quickly.
 */
#ifndef SOFTCOT_RL_MATH_EXPR_H
#define SOFTCOT_RL_MATH_EXPR_H

#include <complex.h>
#include <stddef.h>

#define EXPR_MAX_DEPTH 150

/* Evaluates s[0..n) with variables set for point index `point`. Returns 0 and sets *out
 * (which may be non-finite, e.g. after a division by zero) and *has_vars (1 if any
 * variable occurred); returns -1 if the text is not an expression this evaluator reads
 * (number with a base subscript such as 40_9, \infty, unknown command, unbalanced
 * brackets, a comma, trailing text, nesting past EXPR_MAX_DEPTH recursive calls, about
 * 50 levels of parentheses). */
int expr_eval(const char *s, size_t n, int point, double complex *out, int *has_vars);

#endif
