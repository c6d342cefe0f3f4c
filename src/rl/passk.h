/* passk.h — the unbiased pass@k estimator (Chen et al. 2021) used by `softcot eval`:
 * pass@k = 1 - C(n-c, k) / C(n, k) for n samples of which c are correct.
 * Defines: pass_at_k and its mean over problems.
 * Must not: print or allocate; it is pure arithmetic.
 */
#ifndef SOFTCOT_RL_PASSK_H
#define SOFTCOT_RL_PASSK_H

/* Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms a binomial, so it is
 * exact to rounding for any n. Returns NAN unless 1 <= k <= n and 0 <= c <= n. */
double pass_at_k(int n, int c, int k);

/* Mean of pass_at_k(n[p], c[p], k) over m problems; NAN if m < 1 or any term is NAN. */
double pass_at_k_mean(const int *n, const int *c, int m, int k);

#endif
