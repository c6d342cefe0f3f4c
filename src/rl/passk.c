/* Unbiased pass@k in product form (see passk.h). */
#include "rl/passk.h"

#include <math.h>

double pass_at_k(int n, int c, int k) {
    if (n < 1 || k < 1 || k > n || c < 0 || c > n) return NAN;
    /* every k-subset contains a correct sample */
    if (n - c < k) return 1.0;
    double fail = 1.0;
    for (int i = n - c + 1; i <= n; i++) fail *= 1.0 - (double)k / (double)i;
    return 1.0 - fail;
}

double pass_at_k_mean(const int *n, const int *c, int m, int k) {
    if (m < 1) return NAN;
    double sum = 0;
    for (int p = 0; p < m; p++) sum += pass_at_k(n[p], c[p], k);
    return sum / m;
}
