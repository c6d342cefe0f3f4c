#include "model/init.h"

#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "model/params.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

void param_init_random(const ModelConfig *cfg, uint64_t seed, float std, float *host) {
    ParamLayout layout;
    ParamOffsets off;
    param_layout_build(&layout, &off, cfg);
    const float resid_scale = 1.0f / sqrtf(2.0f * (float)cfg->n_layers);
    for (int t = 0; t < layout.n_tensors; t++) {
        const ParamTensor *pt = &layout.tensors[t];
        float *p = host + pt->offset;
        if (ends_with(pt->name, "norm.weight")) {
            for (size_t i = 0; i < pt->numel; i++) p[i] = 1.0f;
            continue;
        }
        if (ends_with(pt->name, ".bias")) {
            memset(p, 0, pt->numel * sizeof(float));
            continue;
        }
        float s = std;
        if (ends_with(pt->name, "o_proj.weight") || ends_with(pt->name, "down_proj.weight")) s *= resid_scale;
        RngKey k = {.seed = seed, .purpose = RNG_PURPOSE_INIT, .sample = (uint32_t)t};
        for (size_t i = 0; i < pt->numel; i++) {
            /* position carries the high bits so tensors over 2^32 elements stay distinct */
            k.position = (uint32_t)(i >> 32);
            p[i] = s * rng_normal(k, (uint32_t)i);
        }
    }
    param_layout_free(&layout, &off);
}
