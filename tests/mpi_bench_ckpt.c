/* Checkpoint bandwidth (make bench, through tests/bench_dist.sh): every rank holds the same
 * ~1.2 GB of fp32 tensors (a Llama-3.2-1B-sized parameter set split into a few large
 * datasets) and ckpt_write / ckpt_read them collectively; prints GB/s per direction.
 * Not a test: asserts only that the round trip is bit-identical. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist.h"
#include "io/checkpoint.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
    Dist d;
    dist_init(&d, &argc, &argv);
    if (argc < 2) {
        if (d.rank == 0) fprintf(stderr, "usage: mpi_bench_ckpt DIR\n");
        dist_finalize(&d);
        return 2;
    }
    /* embedding 128256 x 2048 (1.05 GB) + four 2048 x 8192 MLP-sized tensors */
    const int n_items = 5;
    int64_t shapes[5][2] = {{128256, 2048}, {8192, 2048}, {8192, 2048}, {2048, 8192}, {2048, 8192}};
    CkptItem items[5], back[5];
    char names[5][32];
    size_t total = 0;
    for (int i = 0; i < n_items; i++) {
        size_t n = (size_t)shapes[i][0] * shapes[i][1];
        float *data = malloc(n * sizeof(float)), *copy = malloc(n * sizeof(float));
        for (size_t j = 0; j < n; j++) data[j] = (float)((j * 2654435761u + i) % 1000003) * 1e-6f;
        snprintf(names[i], sizeof names[i], "params/t%d", i);
        items[i] = (CkptItem){.name = names[i], .dtype = CKPT_F32, .ndim = 2, .shape = {shapes[i][0], shapes[i][1]}, .data = data};
        back[i] = items[i];
        back[i].data = copy;
        total += n * sizeof(float);
    }
    Err err;
    dist_barrier(&d);
    double t0 = now();
    int rc = ckpt_write(&d, argv[1], 1, items, n_items, NULL, 0, 1, &err);
    double tw = now() - t0;
    char path[512];
    snprintf(path, sizeof path, "%s/ckpt_1.h5", argv[1]);
    dist_barrier(&d);
    t0 = now();
    if (rc == 0) rc = ckpt_read(&d, path, back, n_items, &err);
    double tr = now() - t0;
    int same = rc == 0;
    for (int i = 0; i < n_items && same; i++)
        same = !memcmp(items[i].data, back[i].data, (size_t)shapes[i][0] * shapes[i][1] * sizeof(float));
    if (d.rank == 0) {
        if (rc) printf("checkpoint bench failed: %s\n", err.msg);
        else
            printf("checkpoint %.2f GB on %d rank(s): write %.2f s (%.2f GB/s incl. fsync), read %.2f s (%.2f GB/s, checksums verified), round trip %s\n",
                   total / 1e9, d.size, tw, total / 1e9 / tw, tr, total / 1e9 / tr, same ? "bit-identical" : "DIFFERS");
    }
    for (int i = 0; i < n_items; i++) free(items[i].data), free(back[i].data);
    dist_finalize(&d);
    return rc || !same;
}
