/* Gradient all-reduce between ranks' GPUs with NCCL. Rank 0 makes the unique id; dist/
 * carries it to the other ranks over MPI (no MPI here), then every rank joins the
 * communicator. */
#include <nccl.h>
#include <string.h>

#include "cuda_common.cuh"

static_assert(sizeof(ncclUniqueId) == CUDA_COMM_ID_BYTES, "NCCL id size");

#define ncclCheck(call)                                                                        \
    do {                                                                                       \
        ncclResult_t r_ = (call);                                                              \
        if (r_ != ncclSuccess) fatal_at(__FILE__, __LINE__, "NCCL: %s", ncclGetErrorString(r_)); \
    } while (0)

static ncclComm_t comm;
static int comm_ready;

void cuda_comm_unique_id(void *id) {
    ncclUniqueId u;
    ncclCheck(ncclGetUniqueId(&u));
    memcpy(id, &u, sizeof u);
}

int cuda_comm_init(const void *id, int rank, int nranks, Err *err) {
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    ncclResult_t r = ncclCommInitRank(&comm, nranks, u, rank);
    if (r != ncclSuccess) return err_set(err, "NCCL communicator setup failed on rank %d: %s", rank, ncclGetErrorString(r));
    comm_ready = 1;
    return 0;
}

void cuda_allreduce_sum(float *x, size_t n) {
    if (!comm_ready) fatal_at(__FILE__, __LINE__, "op_allreduce_sum before ops_comm_init");
    cuda_wrote(x, n * sizeof(float));
    ncclCheck(ncclAllReduce(x, x, n, ncclFloat, ncclSum, comm, cuda_stream));
}
