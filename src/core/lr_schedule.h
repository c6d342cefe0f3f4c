/* lr_schedule.h — the learning-rate schedule shared by `softcot sft` and `softcot train`:
 * linear warm-up, then cosine decay (DESIGN.md §1 "Optimizer": cosine with warm-up).
 *
 * Defines lr_at(step, total, warmup, peak, min_ratio) for the 0-based update index step
 * of a run of `total` updates, with llm.c's conventions:
 *   step <  warmup:  peak * (step + 1) / warmup    (the first update already moves; a
 *                                                   0 learning rate would waste a step)
 *   step >= warmup:  min + (peak - min) * 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup)))
 * with min = peak * min_ratio; steps at or past `total` get min. min_ratio = 1 gives a
 * constant rate after warm-up.
 * Must not: keep state (the rate is a pure function of the step, so a resumed run gets
 * exactly the same rates).
 */
#ifndef SOFTCOT_LR_SCHEDULE_H
#define SOFTCOT_LR_SCHEDULE_H

#include <math.h>

static inline float lr_at(int step, int total, int warmup, float peak, float min_ratio) {
    const float min_lr = peak * min_ratio;
    if (step < 0) step = 0;
    if (warmup > 0 && step < warmup) return peak * (float)(step + 1) / (float)warmup;
    if (step >= total || total <= warmup) return step >= total ? min_lr : peak;
    /* double for the angle so the value is the same whatever the float contraction */
    double ratio = (double)(step - warmup) / (double)(total - warmup);
    double coeff = 0.5 * (1.0 + cos(3.14159265358979323846 * ratio));
    return (float)(min_lr + coeff * ((double)peak - min_lr));
}

#endif
