/* mpi_dist.c — the dist layer on N ranks. Usage: mpi_dist EXPECTED_SIZE
 * (launched by tests/test_dist.sh under mpirun -n 1/2/3, and once with no launcher). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "mpi_test.h"

static char names_[64][128];
static int n_names_;
/* Check names carry the world size so the lines of the 1/2/3-rank runs stay distinct. */
static const char *nm(const Dist *d, const char *what) {
    char *s = names_[n_names_++ % 64];
    snprintf(s, 128, "dist n=%d: %s", d->size, what);
    return s;
}

static void test_shard(Dist *d) {
    /* Pure function: every (n, size) covers [0, n) contiguously, in rank order, with
     * sizes differing by at most one, larger shares first. */
    int good = 1;
    char why[160] = "";
    for (int64_t n = 0; n <= 40 && good; n++)
        for (int size = 1; size <= 6 && good; size++) {
            int64_t prev_end = 0, lo = INT64_MAX, hi = -1, prev_len = INT64_MAX;
            for (int r = 0; r < size; r++) {
                int64_t b, e;
                dist_shard(n, r, size, &b, &e);
                int64_t len = e - b;
                if (b != prev_end || len < 0 || len > prev_len) {
                    good = 0;
                    snprintf(why, sizeof why, "n=%lld size=%d rank=%d -> [%lld,%lld)", (long long)n, size,
                             r, (long long)b, (long long)e);
                    break;
                }
                prev_end = e;
                prev_len = len;
                lo = len < lo ? len : lo;
                hi = len > hi ? len : hi;
            }
            if (good && (prev_end != n || hi - lo > 1)) {
                good = 0;
                snprintf(why, sizeof why, "n=%lld size=%d: end %lld, sizes %lld..%lld", (long long)n, size,
                         (long long)prev_end, (long long)lo, (long long)hi);
            }
        }
    int64_t b, e;
    dist_shard(10, 1, 3, &b, &e);
    MPI_EXPECT(d, good && b == 4 && e == 7, nm(d, "dist_shard contiguous, balanced, deterministic"), "%s [%lld,%lld)",
               why, (long long)b, (long long)e);
}

static void test_allreduce(Dist *d) {
    const int R = d->size;
    /* Values are small integers, so float sums are exact in any order. */
    size_t n = 1000;
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)(i % 97) + (float)d->rank;
    size_t saved = d->bucket_bytes;
    d->bucket_bytes = 64; /* 16 floats per call: 63 buckets, the last one partial */
    dist_allreduce_sum_f32(d, f, n);
    d->bucket_bytes = saved;
    int good = 1;
    for (size_t i = 0; i < n; i++)
        if (f[i] != (float)(R * (int)(i % 97) + R * (R - 1) / 2)) good = 0;
    MPI_EXPECT(d, good, nm(d, "allreduce_sum_f32 in many small buckets"), "wrong sums");
    free(f);

    /* Larger than one default (64 MiB) bucket: 17M floats = 68 MB, so 2 MPI calls. */
    n = (size_t)17 << 20;
    f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)(i & 1023) * (float)(d->rank + 1);
    dist_allreduce_sum_f32(d, f, n);
    good = 1;
    size_t bad_at = 0;
    for (size_t i = 0; i < n && good; i++)
        if (f[i] != (float)(i & 1023) * (float)(R * (R + 1) / 2)) good = 0, bad_at = i;
    MPI_EXPECT(d, good, nm(d, "allreduce_sum_f32 of 68 MB (> one 64 MiB bucket)"), "wrong at %zu: %g", bad_at,
               (double)f[bad_at]);
    free(f);

    double g[3] = {0.5 * d->rank, -1.0, 1e300};
    dist_allreduce_sum_f64(d, g, 3);
    MPI_EXPECT(d, g[0] == 0.25 * R * (R - 1) && g[1] == -R, nm(d, "allreduce_sum_f64"), "%g %g", g[0], g[1]);

    int64_t k[2] = {(int64_t)1 << 40, d->rank};
    dist_allreduce_sum_i64(d, k, 2);
    MPI_EXPECT(d, k[0] == ((int64_t)R << 40) && k[1] == (int64_t)R * (R - 1) / 2, nm(d, "allreduce_sum_i64"),
               "%lld %lld", (long long)k[0], (long long)k[1]);

    double m[2] = {(double)d->rank, -(double)d->rank};
    dist_allreduce_max_f64(d, m, 2);
    MPI_EXPECT(d, m[0] == R - 1 && m[1] == 0, nm(d, "allreduce_max_f64"), "%g %g", m[0], m[1]);
}

static void test_any(Dist *d) {
    int none = dist_any(d, 0);
    int last = dist_any(d, d->rank == d->size - 1 ? 7 : 0);
    int all = dist_any(d, 1);
    MPI_EXPECT(d, none == 0 && last == 1 && all == 1, nm(d, "dist_any is a logical OR (flag on one rank only)"),
               "none=%d last=%d all=%d", none, last, all);
}

/* Rank r contributes 3r elements (rank 0 none): unequal, and one empty. */
static void test_allgatherv(Dist *d, size_t bucket, const char *label) {
    size_t saved = d->bucket_bytes;
    d->bucket_bytes = bucket;
    const int R = d->size;
    int64_t mine_n = 3 * d->rank;
    float *mf = malloc((size_t)(mine_n + 1) * sizeof *mf);
    int32_t *mi = malloc((size_t)(mine_n + 1) * sizeof *mi);
    char *mb = malloc((size_t)mine_n + 1);
    for (int64_t j = 0; j < mine_n; j++) {
        mf[j] = (float)(100 * d->rank + j) + 0.25f;
        mi[j] = -(100 * d->rank + (int32_t)j);
        mb[j] = (char)('a' + d->rank);
    }
    float *af = NULL;
    int32_t *ai = NULL;
    void *ab = NULL;
    int64_t nf = -1, ni = -1, nb = -1;
    int64_t *counts = malloc((size_t)R * sizeof *counts);
    dist_allgatherv_f32(d, mf, mine_n, &af, &nf, counts);
    dist_allgatherv_i32(d, mi, mine_n, &ai, &ni, NULL);
    dist_allgatherv_bytes(d, mb, mine_n, &ab, &nb, NULL);
    int64_t want_n = 3 * (int64_t)R * (R - 1) / 2;
    int good = nf == want_n && ni == want_n && nb == want_n;
    int64_t pos = 0;
    for (int r = 0; r < R && good; r++) {
        if (counts[r] != 3 * r) good = 0;
        for (int64_t j = 0; j < 3 * r && good; j++, pos++)
            if (af[pos] != (float)(100 * r + j) + 0.25f || ai[pos] != -(100 * r + (int32_t)j) ||
                ((char *)ab)[pos] != (char)('a' + r))
                good = 0;
    }
    char name[96];
    snprintf(name, sizeof name, "allgatherv f32/i32/bytes, unequal counts, rank order (%s)", label);
    MPI_EXPECT(d, good, nm(d, name), "n=%lld/%lld/%lld want %lld, mismatch near %lld", (long long)nf, (long long)ni,
               (long long)nb, (long long)want_n, (long long)pos);
    free(mf), free(mi), free(mb), free(af), free(ai), free(ab), free(counts);
    d->bucket_bytes = saved;
}

static void test_bcast_exscan(Dist *d) {
    size_t saved = d->bucket_bytes;
    d->bucket_bytes = 7; /* odd chunk size: 1000 bytes in 143 calls */
    unsigned char buf[1000];
    int root = d->size - 1;
    for (int i = 0; i < 1000; i++) buf[i] = d->rank == root ? (unsigned char)(i * 31 + 5) : 0;
    dist_bcast(d, buf, sizeof buf, root);
    d->bucket_bytes = saved;
    int good = 1;
    for (int i = 0; i < 1000; i++)
        if (buf[i] != (unsigned char)(i * 31 + 5)) good = 0;
    MPI_EXPECT(d, good, nm(d, "bcast from the last rank in odd-sized chunks"), "bytes differ");

    int64_t before = dist_exscan_i64(d, d->rank + 1);
    int64_t want = (int64_t)d->rank * (d->rank + 1) / 2;
    MPI_EXPECT(d, before == want, nm(d, "exscan_i64 gives the sum over earlier ranks (0 on rank 0)"),
               "rank %d got %lld want %lld", d->rank, (long long)before, (long long)want);
    dist_barrier(d);
}

int main(int argc, char **argv) {
    Dist d;
    dist_init(&d, &argc, &argv);
    mpi_test_begin(&d);
    int want = argc > 1 ? atoi(argv[1]) : -1;
    MPI_EXPECT(&d, d.size == want && d.rank >= 0 && d.rank < d.size && d.local_rank >= 0 &&
                       d.local_rank < d.local_size && d.local_size <= d.size && dist_mpi_comm(&d) != NULL,
               nm(&d, "rank, size, local rank"), "rank %d size %d (want %d) local %d/%d", d.rank, d.size, want,
               d.local_rank, d.local_size);
    test_shard(&d);
    test_allreduce(&d);
    test_any(&d);
    test_allgatherv(&d, DIST_BUCKET_BYTES_DEFAULT, "one Allgatherv");
    test_allgatherv(&d, 8, "chunked broadcasts");
    test_bcast_exscan(&d);
    int rc = test_finish();
    dist_finalize(&d);
    return rc;
}
