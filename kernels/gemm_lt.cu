/* bf16 GEMMs through cublasLt with per-shape autotuning.
 *
 * cublasGemmEx picks one kernel per shape from its heuristics, and for the skinny
 * products of batched decode (64 rows against a 2048 x 8192 weight) that kernel leaves
 * most SMs idle. Here the first product of each shape asks cublasLt for up to 8
 * candidate algorithms (split-K variants among them), times each on the real operands
 * into a scratch output, and keeps the fastest; later products of that shape run it
 * directly. Shapes first seen while a CUDA graph is being recorded, and outputs too large
 * for the scratch, take the heuristic's first choice untimed. Anything cublasLt refuses
 * falls back to cublasGemmEx. SOFTCOT_CUBLASLT=0 turns the whole path off.
 *
 * The caller passes the column-major problem that ops_cuda.cu's matmul derives from the
 * row-major one: D[m x n] = alpha op(A)[m x k] op(B)[k x n] + beta C, A and B bf16, C and
 * D fp32 with the same layout. C may be D; a separate C lets a linear layer add into the
 * residual stream without a copy or an extra kernel.
 */
#include <cublasLt.h>
#include <stdint.h>
#include <string.h>

#include "cuda_common.cuh"

enum { LT_CANDIDATES = 8, LT_MAX_PLANS = 512, LT_TIMED_REPS = 3 };
static const size_t LT_WORKSPACE = (size_t)64 << 20, LT_SCRATCH_MAX = (size_t)256 << 20;

typedef struct {
    int m, n, k, op_a, op_b, lda, ldb, ldc, beta_nonzero, align_c;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
    int usable; /* 0: cublasLt refused this shape; use cublasGemmEx */
} LtPlan;

static cublasLtHandle_t lt;
static void *lt_workspace;
static LtPlan plans[LT_MAX_PLANS];
static int n_plans, lt_enabled = -1;

static int lt_ok(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }

static int alignment_of(const void *p) {
    const uintptr_t a = (uintptr_t)p;
    int al = 256;
    while (al > 4 && a % al) al /= 2;
    return al;
}

static double time_algo(LtPlan *pl, const cublasLtMatmulAlgo_t *algo, const void *A, const void *B, float *C,
                        float alpha, float beta) {
    cudaEvent_t t0, t1;
    cudaCheck(cudaEventCreate(&t0));
    cudaCheck(cudaEventCreate(&t1));
    /* one untimed run: first-launch costs do not count */
    if (!lt_ok(cublasLtMatmul(lt, pl->desc, &alpha, A, pl->a, B, pl->b, &beta, C, pl->c, C, pl->c, algo, lt_workspace,
                              LT_WORKSPACE, cuda_stream))) {
        cudaEventDestroy(t0), cudaEventDestroy(t1);
        return -1.0;
    }
    cudaCheck(cudaEventRecord(t0, cuda_stream));
    for (int r = 0; r < LT_TIMED_REPS; r++)
        cublasLtMatmul(lt, pl->desc, &alpha, A, pl->a, B, pl->b, &beta, C, pl->c, C, pl->c, algo, lt_workspace,
                       LT_WORKSPACE, cuda_stream);
    cudaCheck(cudaEventRecord(t1, cuda_stream));
    cudaCheck(cudaEventSynchronize(t1));
    float ms = 0;
    cudaCheck(cudaEventElapsedTime(&ms, t0, t1));
    cudaEventDestroy(t0), cudaEventDestroy(t1);
    return ms;
}

static LtPlan *plan_for(int m, int n, int k, cublasOperation_t op_a, cublasOperation_t op_b, int lda, int ldb,
                        int ldc, float beta, const float *C, float *D, const void *A, const void *B, float alpha,
                        int may_time) {
    const int bnz = beta != 0.0f, align_in = alignment_of(C), align_out = alignment_of(D);
    const int al = align_in < align_out ? align_in : align_out;
    for (int i = 0; i < n_plans; i++) {
        LtPlan *p = &plans[i];
        if (p->m == m && p->n == n && p->k == k && p->op_a == (int)op_a && p->op_b == (int)op_b && p->lda == lda &&
            p->ldb == ldb && p->ldc == ldc && p->beta_nonzero == bnz && p->align_c == al)
            return p;
    }
    if (n_plans == LT_MAX_PLANS) return NULL;
    LtPlan *pl = &plans[n_plans++];
    memset(pl, 0, sizeof *pl);
    pl->m = m, pl->n = n, pl->k = k, pl->op_a = (int)op_a, pl->op_b = (int)op_b;
    pl->lda = lda, pl->ldb = ldb, pl->ldc = ldc, pl->beta_nonzero = bnz, pl->align_c = al;
    const int32_t ta = op_a, tb = op_b;
    if (!lt_ok(cublasLtMatmulDescCreate(&pl->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F)) ||
        !lt_ok(cublasLtMatmulDescSetAttribute(pl->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta)) ||
        !lt_ok(cublasLtMatmulDescSetAttribute(pl->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb)) ||
        !lt_ok(cublasLtMatrixLayoutCreate(&pl->a, CUDA_R_16BF, op_a == CUBLAS_OP_N ? m : k, op_a == CUBLAS_OP_N ? k : m, lda)) ||
        !lt_ok(cublasLtMatrixLayoutCreate(&pl->b, CUDA_R_16BF, op_b == CUBLAS_OP_N ? k : n, op_b == CUBLAS_OP_N ? n : k, ldb)) ||
        !lt_ok(cublasLtMatrixLayoutCreate(&pl->c, CUDA_R_32F, m, n, ldc)))
        return pl; /* usable = 0 */
    cublasLtMatmulPreference_t pref;
    if (!lt_ok(cublasLtMatmulPreferenceCreate(&pref))) return pl;
    const uint64_t ws = LT_WORKSPACE;
    const uint32_t al_c = (uint32_t)al;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof al_c);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof al_c);
    cublasLtMatmulHeuristicResult_t cand[LT_CANDIDATES];
    int found = 0;
    if (!lt_ok(cublasLtMatmulAlgoGetHeuristic(lt, pl->desc, pl->a, pl->b, pl->c, pl->c, pref, LT_CANDIDATES, cand, &found)) ||
        found == 0) {
        cublasLtMatmulPreferenceDestroy(pref);
        return pl;
    }
    cublasLtMatmulPreferenceDestroy(pref);
    int best = 0;
    const size_t c_bytes = (size_t)ldc * n * sizeof(float);
    if (may_time && found > 1 && c_bytes <= LT_SCRATCH_MAX) {
        float *scratch = (float *)cuda_scratch(SCRATCH_GEMM, c_bytes);
        double best_ms = 1e30;
        for (int i = 0; i < found; i++) {
            if (cand[i].state != CUBLAS_STATUS_SUCCESS) continue;
            const double ms = time_algo(pl, &cand[i].algo, A, B, scratch, alpha, beta);
            if (ms >= 0 && ms < best_ms) best_ms = ms, best = i;
        }
        if (best_ms == 1e30) return pl;
    }
    pl->algo = cand[best].algo;
    pl->usable = 1;
    return pl;
}

void cuda_gemm_lt_init(void) {
    const char *e = getenv("SOFTCOT_CUBLASLT");
    lt_enabled = !(e && !strcmp(e, "0"));
    if (!lt_enabled) return;
    cublasCheck(cublasLtCreate(&lt));
    cudaCheck(cudaMalloc(&lt_workspace, LT_WORKSPACE));
}

/* Returns 1 if the product ran through cublasLt, 0 if the caller must use cublasGemmEx. */
int cuda_gemm_lt(cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k, float alpha, const void *A,
                 int lda, const void *B, int ldb, float beta, const float *C, float *D, int ldc, int capturing) {
    if (lt_enabled <= 0) return 0;
    LtPlan *pl = plan_for(m, n, k, op_a, op_b, lda, ldb, ldc, beta, C, D, A, B, alpha, !capturing);
    if (!pl || !pl->usable) return 0;
    return lt_ok(cublasLtMatmul(lt, pl->desc, &alpha, A, pl->a, B, pl->b, &beta, C, pl->c, D, pl->c, &pl->algo,
                                lt_workspace, LT_WORKSPACE, cuda_stream));
}
