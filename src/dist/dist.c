#include "dist/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

/* Every MPI call goes through CHECK_MPI. Our communicators use MPI_ERRORS_RETURN, so a
 * failure comes back here, is reported with our file and line, and aborts the whole job:
 * exiting on one rank only would leave the others blocked in the next collective. */
static _Noreturn void mpi_fail(int rc, const char *call, const char *file, int line) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", rc);
    fprintf(stderr, "softcot: internal error at %s:%d: %s failed: %s\n", file, line, call, msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, EXIT_RUNTIME);
    exit(EXIT_RUNTIME); /* MPI_Abort does not return; keeps _Noreturn honest */
}

#define CHECK_MPI(call)                                                                 \
    do {                                                                                \
        int mpi_rc_ = (call);                                                           \
        if (mpi_rc_ != MPI_SUCCESS) mpi_fail(mpi_rc_, #call, __FILE__, __LINE__);      \
    } while (0)

static MPI_Comm comm_of(Dist *d) {
    return *(MPI_Comm *)d->comm;
}

void dist_init(Dist *d, int *argc, char ***argv) {
    memset(d, 0, sizeof *d);
    int inited = 0;
    CHECK_MPI(MPI_Initialized(&inited));
    if (!inited) {
        int provided = 0;
        /* Without mpirun/srun Open MPI performs a singleton init: one rank, size 1. A
         * singleton never spawns processes, so it needs no helper daemon (orted): asking
         * for an isolated singleton lets a plain process run on nodes whose image has the
         * MPI libraries but not Open MPI's runtime tools. Launched ranks ignore this. */
        if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK"))
            setenv("OMPI_MCA_ess_singleton_isolated", "1", 0);
        CHECK_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
        d->owns_mpi = 1;
        if (provided < MPI_THREAD_FUNNELED)
            FATAL("MPI provides thread level %d, softcot needs MPI_THREAD_FUNNELED", provided);
    }
    CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_Comm *world = xmalloc(sizeof *world);
    MPI_Comm *node = xmalloc(sizeof *node);
    /* A private duplicate: our collectives never match messages of other libraries. */
    CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, world));
    CHECK_MPI(MPI_Comm_set_errhandler(*world, MPI_ERRORS_RETURN));
    CHECK_MPI(MPI_Comm_rank(*world, &d->rank));
    CHECK_MPI(MPI_Comm_size(*world, &d->size));
    CHECK_MPI(MPI_Comm_split_type(*world, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, node));
    CHECK_MPI(MPI_Comm_set_errhandler(*node, MPI_ERRORS_RETURN));
    CHECK_MPI(MPI_Comm_rank(*node, &d->local_rank));
    CHECK_MPI(MPI_Comm_size(*node, &d->local_size));
    d->comm = world;
    d->node_comm = node;
    d->bucket_bytes = DIST_BUCKET_BYTES_DEFAULT;
}

void dist_finalize(Dist *d) {
    if (d->node_comm) {
        CHECK_MPI(MPI_Comm_free((MPI_Comm *)d->node_comm));
        free(d->node_comm);
    }
    if (d->comm) {
        CHECK_MPI(MPI_Comm_free((MPI_Comm *)d->comm));
        free(d->comm);
    }
    if (d->owns_mpi) CHECK_MPI(MPI_Finalize());
    memset(d, 0, sizeof *d);
}

/* Elements per MPI call: bucket_bytes worth, at least 1, never above INT_MAX. */
static size_t bucket_elems(const Dist *d, size_t elsize) {
    size_t b = d->bucket_bytes / elsize;
    if (b < 1) b = 1;
    if (b > (size_t)INT_MAX) b = (size_t)INT_MAX;
    return b;
}

static void allreduce(Dist *d, void *buf, size_t n, size_t elsize, MPI_Datatype type, MPI_Op op) {
    size_t step = bucket_elems(d, elsize);
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + i * elsize, (int)k, type, op, comm_of(d)));
    }
}

void dist_allreduce_sum_f32(Dist *d, float *buf, size_t n) {
    allreduce(d, buf, n, sizeof *buf, MPI_FLOAT, MPI_SUM);
}

void dist_allreduce_sum_f64(Dist *d, double *buf, size_t n) {
    allreduce(d, buf, n, sizeof *buf, MPI_DOUBLE, MPI_SUM);
}

void dist_allreduce_sum_i64(Dist *d, int64_t *buf, size_t n) {
    allreduce(d, buf, n, sizeof *buf, MPI_INT64_T, MPI_SUM);
}

void dist_allreduce_max_f64(Dist *d, double *buf, size_t n) {
    allreduce(d, buf, n, sizeof *buf, MPI_DOUBLE, MPI_MAX);
}

int dist_any(Dist *d, int flag) {
    int v = flag != 0;
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LOR, comm_of(d)));
    return v;
}

void dist_bcast(Dist *d, void *buf, size_t bytes, int root) {
    size_t step = bucket_elems(d, 1);
    for (size_t i = 0; i < bytes; i += step) {
        size_t k = bytes - i < step ? bytes - i : step;
        CHECK_MPI(MPI_Bcast((char *)buf + i, (int)k, MPI_BYTE, root, comm_of(d)));
    }
}

/* Variable-length gather. Small totals (the common case: rewards, counts) take one
 * MPI_Allgatherv; totals above one bucket are sent as one chunked broadcast per rank, so
 * no count or displacement can overflow an int. */
static void allgatherv(Dist *d, const void *mine, int64_t n_mine, size_t elsize, MPI_Datatype type,
                       void **all, int64_t *n_all, int64_t *counts_out) {
    CHECK(n_mine >= 0);
    int64_t *counts = xmalloc((size_t)d->size * sizeof *counts);
    CHECK_MPI(MPI_Allgather(&n_mine, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, comm_of(d)));
    int64_t total = 0;
    for (int r = 0; r < d->size; r++) total += counts[r];
    char *out = xmalloc((size_t)total * elsize);
    if ((size_t)total <= bucket_elems(d, elsize)) {
        int *cnt = xmalloc((size_t)d->size * sizeof *cnt);
        int *disp = xmalloc((size_t)d->size * sizeof *disp);
        int64_t off = 0;
        for (int r = 0; r < d->size; r++) {
            cnt[r] = (int)counts[r];
            disp[r] = (int)off;
            off += counts[r];
        }
        /* The send buffer must be valid even for a zero count. */
        const void *send = n_mine ? mine : out;
        CHECK_MPI(MPI_Allgatherv(send, (int)n_mine, type, out, cnt, disp, type, comm_of(d)));
        free(cnt);
        free(disp);
    } else {
        int64_t off = 0;
        for (int r = 0; r < d->size; r++) {
            char *dst = out + (size_t)off * elsize;
            if (r == d->rank && n_mine) memcpy(dst, mine, (size_t)n_mine * elsize);
            dist_bcast(d, dst, (size_t)counts[r] * elsize, r);
            off += counts[r];
        }
    }
    *all = out;
    if (n_all) *n_all = total;
    if (counts_out) memcpy(counts_out, counts, (size_t)d->size * sizeof *counts);
    free(counts);
}

void dist_allgatherv_f32(Dist *d, const float *mine, int64_t n_mine, float **all, int64_t *n_all,
                         int64_t *counts) {
    void *p = NULL;
    allgatherv(d, mine, n_mine, sizeof(float), MPI_FLOAT, &p, n_all, counts);
    *all = p;
}

void dist_allgatherv_i32(Dist *d, const int32_t *mine, int64_t n_mine, int32_t **all,
                         int64_t *n_all, int64_t *counts) {
    void *p = NULL;
    allgatherv(d, mine, n_mine, sizeof(int32_t), MPI_INT32_T, &p, n_all, counts);
    *all = p;
}

void dist_allgatherv_bytes(Dist *d, const void *mine, int64_t n_mine, void **all, int64_t *n_all,
                           int64_t *counts) {
    allgatherv(d, mine, n_mine, 1, MPI_BYTE, all, n_all, counts);
}

int64_t dist_exscan_i64(Dist *d, int64_t mine) {
    int64_t before = 0;
    CHECK_MPI(MPI_Exscan(&mine, &before, 1, MPI_INT64_T, MPI_SUM, comm_of(d)));
    /* MPI leaves rank 0's result undefined. */
    return d->rank == 0 ? 0 : before;
}

void dist_barrier(Dist *d) {
    CHECK_MPI(MPI_Barrier(comm_of(d)));
}

void *dist_mpi_comm(Dist *d) {
    return d->comm;
}

void dist_shard(int64_t n, int rank, int size, int64_t *begin, int64_t *end) {
    CHECK(n >= 0 && size > 0 && rank >= 0 && rank < size);
    int64_t base = n / size, rem = n % size;
    int64_t b = rank * base + (rank < rem ? rank : rem);
    *begin = b;
    *end = b + base + (rank < rem ? 1 : 0);
}
