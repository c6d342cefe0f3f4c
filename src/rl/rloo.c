#include "rl/rloo.h"

#include <math.h>

void rloo_advantages(const float *rewards, int n_groups, int group_size, int normalize, float *adv) {
    const int G = group_size;
    for (int b = 0; b < n_groups; b++) {
        const float *r = rewards + (long)b * G;
        float *a = adv + (long)b * G;
        double sum = 0;
        for (int g = 0; g < G; g++) sum += r[g];
        for (int g = 0; g < G; g++) a[g] = (float)(r[g] - (sum - r[g]) / (G - 1));
        if (normalize) {
            double mean = sum / G, var = 0;
            for (int g = 0; g < G; g++) var += (r[g] - mean) * (r[g] - mean);
            double sd = sqrt(var / G);
            if (sd > 0)
                for (int g = 0; g < G; g++) a[g] = (float)(a[g] / sd);
        }
    }
}
