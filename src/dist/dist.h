/* dist.h — data-parallel communication: the only code in softcot that calls MPI.
 *
 * Defines: Dist (this process's rank, the world size, its rank and the rank count on its
 * node, and an opaque communicator), start-up under `mpirun -n N`, `srun` (PMIx) or as a
 * plain process (Open MPI singleton init), in-place sums and maxima in bounded buckets,
 * the stop-flag OR (dist_any), rank-ordered gathers of variable-length arrays (RLOO needs
 * every reward of a group even when the group spans ranks), broadcast, exclusive prefix
 * sums (file offsets for collective writes), barrier, and deterministic contiguous
 * sharding.
 * Every function here except dist_shard is collective: all ranks must call it, in the
 * same order, with the same root and (for reductions) the same n.
 * An MPI failure is an internal error: it is reported with file and line and the whole
 * job is aborted (MPI_Abort), since one rank exiting alone would hang the others.
 * Must not: know about models, HDF5 or files; be bypassed (io/ may include mpi.h for the
 * MPI_Comm type that H5Pset_fapl_mpio needs, via dist_mpi_comm, but calls no MPI function).
 */
#ifndef SOFTCOT_DIST_H
#define SOFTCOT_DIST_H

#include <stddef.h>
#include <stdint.h>

/* Largest message one MPI call carries, in bytes, unless the caller changes
 * Dist.bucket_bytes. 64 MiB keeps every count far below INT_MAX. */
#define DIST_BUCKET_BYTES_DEFAULT ((size_t)64 << 20)

typedef struct {
    int rank, size;             /* in the world communicator */
    int local_rank, local_size; /* among the ranks sharing this node's memory */
    /* Largest payload per MPI call (bytes). Reductions, broadcasts and large gathers are
     * split into pieces of at most this size; tests lower it to exercise the splitting. */
    size_t bucket_bytes;
    int owns_mpi;               /* 1 if dist_init initialised MPI (so finalize ends it) */
    void *comm;                 /* MPI_Comm * (a duplicate of MPI_COMM_WORLD) */
    void *node_comm;            /* MPI_Comm * (ranks on this node) */
} Dist;

/* Initialises MPI if nobody has yet (MPI_Init_thread, FUNNELED: only the main thread
 * communicates) and fills d. Works under mpirun, srun and with no launcher at all. */
void dist_init(Dist *d, int *argc, char ***argv);

/* Frees the communicators and, if dist_init started MPI, finalises it. */
void dist_finalize(Dist *d);

/* In-place element-wise sum / max over ranks; every rank gets the result. */
void dist_allreduce_sum_f32(Dist *d, float *buf, size_t n);
void dist_allreduce_sum_f64(Dist *d, double *buf, size_t n);
void dist_allreduce_sum_i64(Dist *d, int64_t *buf, size_t n);
void dist_allreduce_max_f64(Dist *d, double *buf, size_t n);

/* Logical OR of flag over ranks (1 if any rank passed nonzero). The stop flag. */
int dist_any(Dist *d, int flag);

/* Gathers every rank's n_mine elements into *all (new buffer, caller frees), in rank
 * order, *n_all elements in total. counts, if not NULL, has d->size entries and receives
 * each rank's count. n_mine may differ between ranks, and may be 0. */
void dist_allgatherv_f32(Dist *d, const float *mine, int64_t n_mine, float **all,
                         int64_t *n_all, int64_t *counts);
void dist_allgatherv_i32(Dist *d, const int32_t *mine, int64_t n_mine, int32_t **all,
                         int64_t *n_all, int64_t *counts);
void dist_allgatherv_bytes(Dist *d, const void *mine, int64_t n_mine, void **all,
                           int64_t *n_all, int64_t *counts);

/* Copies root's bytes into buf on every rank. */
void dist_bcast(Dist *d, void *buf, size_t bytes, int root);

/* Sum of `mine` over the ranks before this one (0 on rank 0): this rank's offset in a
 * collectively written array. */
int64_t dist_exscan_i64(Dist *d, int64_t mine);

void dist_barrier(Dist *d);

/* The MPI_Comm (as MPI_Comm *) for H5Pset_fapl_mpio. Only io/ may use it. */
void *dist_mpi_comm(Dist *d);

/* Rank's share [*begin, *end) of n items: contiguous, in rank order, sizes differing by
 * at most one (the first n % size ranks get one more). Pure function, not collective. */
void dist_shard(int64_t n, int rank, int size, int64_t *begin, int64_t *end);

#endif
