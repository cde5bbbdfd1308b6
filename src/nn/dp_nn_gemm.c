/* dp_nn_gemm: the single-threaded GEMM of the data-parallel inference path.
 *
 * Inference splits a batch over threads by sample, and every thread then
 * runs its own small GEMMs (a few hundred rows by 200 by 200). Those go to
 * oneDNN's dnnl_sgemm when built with it (DP_WITH_DNNL, the default; see the
 * Makefile): it picks its kernels from the CPU at run time (AVX-512 where
 * there is AVX-512), while OpenBLAS follows OPENBLAS_CORETYPE, which this
 * project's machine sets to Haswell (AVX2). On these shapes, one thread:
 * dnnl 137-173 GFLOP/s against OpenBLAS's Haswell kernels 78-94
 * (docs/bench-nn.md). oneDNN threads with OpenMP; each calling thread is
 * held to one OpenMP thread, so that the caller's own threads are the only
 * parallelism. Without oneDNN, cblas_sgemm. Either way OpenBLAS is held to
 * one thread for the duration of the parallel region (dp_gemm_seq_begin /
 * _end): woken for any call, its idle threads spin (sched_yield) for a long
 * while, and on two cores they took a third of the CPU from ours. */
#include "nn/dp_nn.h"

#include <cblas.h>
#include <pthread.h>
#if defined(DP_WITH_DNNL) && defined(__GLIBC__)
#include <malloc.h>
#endif

#ifdef DP_WITH_DNNL
#include <dnnl.h>
#include <omp.h>
#endif

void openblas_set_num_threads(int num_threads);

const char *dp_gemm_seq_engine(void)
{
#ifdef DP_WITH_DNNL
    return "oneDNN";
#else
    return "OpenBLAS";
#endif
}

/* dnnl_sgemm allocates its packing buffers (a few hundred KB) on every
 * call and frees them on return. With glibc's defaults (dynamic mmap
 * threshold, trim threshold twice that) the free gives the pages back to
 * the kernel and the next call faults them in again: measured, two thirds
 * of the inference time at two threads went to page faults. So freed heap
 * memory is kept: blocks up to 8 MB come from the heap, and up to 64 MB of
 * free heap top stays mapped. Process-wide, set once, at the first
 * data-parallel inference. */
static void keep_freed_memory(void)
{
#if defined(DP_WITH_DNNL) && defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

void dp_gemm_seq_begin(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, keep_freed_memory);
    openblas_set_num_threads(1);
}

void dp_gemm_seq_end(void)
{
    openblas_set_num_threads(dp_nn_get_threads());
}

void dp_gemm_seq(int transb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc)
{
    // A [M, K] (row stride lda), B [N, K] (transb) or [K, N] -> C [M, N] = A @ op(B) + beta C
    if (M <= 0 || N <= 0)
        return;
    if (dp_nn_get_precision() == DP_PREC_BF16 && dp_gemm_seq_bf16(transb, M, N, K, A, lda, B, ldb, beta, C, ldc) == 0)
        return;
#ifdef DP_WITH_DNNL
    static _Thread_local int omp_one;
    if (!omp_one) { /* this thread's own OpenMP setting (libgomp keeps it per thread) */
        omp_set_num_threads(1);
        omp_one = 1;
    }
    dnnl_sgemm('N', transb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
#else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, transb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta,
                C, ldc);
#endif
}
