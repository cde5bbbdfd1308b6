/* dp_nn_bf16: mixed precision (bf16 multiplies, float32 sums) for the
 * GEMMs of the convolutions and fully connected layers.
 *
 * A GEMM in bf16 converts its two float operands to bf16 (round to nearest
 * even) into per-thread buffers and runs oneDNN's matmul primitive on them
 * (bf16 x bf16 -> float32, float32 accumulation; on AVX512_BF16 its brgemm
 * kernels use vdpbf16ps, two products per float lane). Everything else
 * stays float32: the outputs, the master weights, Adam, the losses, the
 * first convolution's direct loops, bias, ReLU and pooling.
 *
 * The training convolutions of the GEMM path do not come here in bf16: they
 * run as oneDNN's direct bf16 convolutions (dp_nn_conv_bf16.c), falling back
 * to im2col + these GEMMs if oneDNN fails.
 *
 * A GEMM of the training layers (dp_nn_gemm) is split over our own threads
 * by output columns (or rows), each slice one single-threaded matmul: with
 * oneDNN threading it itself, libgomp's idle threads spun against ours.
 * Operands inside buffers declared constant (dp_nn_bf16_const: inference
 * weights) are read from a bf16 copy made once.
 *
 * Primitives are created per shape (M, N, K, transposes, strides, beta) and
 * kept in a small per-thread cache: training repeats the same few shapes,
 * and the inference threads each run their own; a thread's primitives and
 * buffer are released when it exits. Without oneDNN (DNNL=0) or on a CPU
 * without AVX512_BF16, bf16 is unavailable and dp_nn_set_precision refuses
 * it; the float32 path never comes here. */
#include "nn/dp_nn.h"

#include <cblas.h>
#include <pthread.h>
#if defined(DP_WITH_DNNL) && defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef DP_WITH_DNNL
#include <dnnl.h>
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define DP_X86_BF16 1
#endif

/* The process's precision (dp_nn_set_precision: training, benches), and a
 * thread's own over it (dp_nn_set_thread_precision, -1: none: a model's
 * inference runs in the model's precision, dp_nn_parallel_for hands the
 * caller's to its workers). Atomic: set from one thread while layers on
 * others read it. */
static atomic_int nn_precision = DP_PREC_FP32;
static _Thread_local int thread_precision = -1;

int dp_nn_cpu_has_bf16(void)
{
#ifdef DP_X86_BF16
    const char *off = getenv("DEEPPACKET_CPU_NO_BF16"); /* tests: act as a CPU without it */
    if (off && *off && strcmp(off, "0"))
        return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1)
        return 0;
    if (!(b & (1u << 16))) /* AVX512F */
        return 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d))
        return 0;
    if (!(a & (1u << 5))) /* AVX512_BF16 */
        return 0;
    /* the OS must save the ZMM state (XCR0 bits 1, 2, 5, 6, 7) */
    __get_cpuid(1, &a, &b, &c, &d);
    if (!(c & (1u << 27))) /* OSXSAVE */
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xe6) == 0xe6;
#else
    return 0;
#endif
}

int dp_nn_bf16_available(void)
{
#ifdef DP_WITH_DNNL
    return dp_nn_cpu_has_bf16();
#else
    return 0;
#endif
}

int dp_nn_precision_parse(const char *s)
{
    if (!strcmp(s, "fp32"))
        return DP_PREC_FP32;
    if (!strcmp(s, "bf16"))
        return DP_PREC_BF16;
    if (!strcmp(s, "auto"))
        return DP_PREC_AUTO;
    return -1;
}

int dp_nn_precision_resolve(int prec, char *errbuf)
{
    if (prec == DP_PREC_AUTO)
        prec = dp_nn_bf16_available() ? DP_PREC_BF16 : DP_PREC_FP32;
    if (prec != DP_PREC_FP32 && prec != DP_PREC_BF16)
        return dp_err(errbuf, "precision %d: expected fp32, bf16 or auto", prec);
    if (prec == DP_PREC_BF16 && !dp_nn_bf16_available())
        return dp_err(errbuf, "precision bf16: %s",
                      dp_nn_cpu_has_bf16() ? "this build has no oneDNN (built with DNNL=0)"
                                           : "this CPU has no AVX512_BF16 (avx512_bf16 in /proc/cpuinfo); "
                                             "use --precision fp32 or auto");
    return prec;
}

int dp_nn_set_precision(int prec, char *errbuf)
{
    if ((prec = dp_nn_precision_resolve(prec, errbuf)) < 0)
        return -1;
    nn_precision = prec;
    return 0;
}

int dp_nn_set_thread_precision(int prec)
{
    int old = thread_precision;
    thread_precision = prec == DP_PREC_FP32 || prec == DP_PREC_BF16 ? prec : -1;
    return old;
}

int dp_nn_get_precision(void) { return thread_precision >= 0 ? thread_precision : nn_precision; }

const char *dp_nn_precision_name(int prec)
{
    return prec == DP_PREC_BF16 ? "bf16" : prec == DP_PREC_AUTO ? "auto" : "fp32";
}

/* ---- conversion ------------------------------------------------------------ */

static uint16_t bf16_scalar(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays a (quiet) NaN */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float dp_bf16_round(float f)
{
    uint32_t u = (uint32_t)bf16_scalar(f) << 16;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

#ifdef DP_X86_BF16
__attribute__((target("avx512f,avx512bf16,avx512vl,avx512bw"))) static void to_bf16_row_avx(uint16_t *dst,
                                                                                         const float *src, int n)
{
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
        _mm512_storeu_si512((void *)(dst + i), (__m512i)v);
    }
    /* the tail 16 at a time, the last part masked: the same instruction
     * for every element (a row of 200 channels has a tail of 8) */
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(k, src + i));
        _mm256_mask_storeu_epi16(dst + i, k, (__m256i)v);
    }
}
#endif

/* rows x cols floats (row stride ld) -> dense bf16 [rows, cols] */
static void to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld)
{
    if (ld == cols && rows > 1 && (int64_t)rows * cols <= INT32_MAX) { /* contiguous: one run, one tail */
        cols *= rows;
        rows = 1;
    }
#ifdef DP_X86_BF16
    int avx = dp_nn_get_precision() == DP_PREC_BF16; /* bf16 is only in effect where the CPU has it */
#endif
    for (int r = 0; r < rows; r++) {
        const float *s = src + (size_t)r * ld;
        uint16_t *d = dst + (size_t)r * cols;
#ifdef DP_X86_BF16
        if (avx) {
            to_bf16_row_avx(d, s, cols);
            continue;
        }
#endif
        for (int i = 0; i < cols; i++)
            d[i] = bf16_scalar(s[i]);
    }
}

/* ---- constant operands --------------------------------------------------------
 * Buffers declared constant (inference weights) get one bf16 copy, element
 * for element, so that any view into them (offset, row stride) reads the
 * same view of the copy. */

#define CONST_SLOTS 64

static struct {
    pthread_rwlock_t lock;
    struct {
        const float *p;
        size_t n;
        uint16_t *bf;
    } e[CONST_SLOTS];
} consts = {.lock = PTHREAD_RWLOCK_INITIALIZER};

static void to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld);

int dp_nn_bf16_const(const float *p, size_t n)
{
    uint16_t *bf = malloc(n * sizeof *bf);
    if (!bf)
        return -1;
    dp_nn_to_bf16(bf, p, n);
    pthread_rwlock_wrlock(&consts.lock);
    int slot = -1;
    for (int i = 0; i < CONST_SLOTS && slot < 0; i++)
        if (!consts.e[i].p)
            slot = i;
    if (slot >= 0) {
        consts.e[slot].p = p;
        consts.e[slot].n = n;
        consts.e[slot].bf = bf;
    }
    pthread_rwlock_unlock(&consts.lock);
    if (slot < 0)
        free(bf);
    return slot < 0 ? -1 : 0;
}

void dp_nn_bf16_forget(const float *p)
{
    pthread_rwlock_wrlock(&consts.lock);
    for (int i = 0; i < CONST_SLOTS; i++)
        if (consts.e[i].p == p) {
            free(consts.e[i].bf);
            consts.e[i].p = NULL;
            consts.e[i].bf = NULL;
        }
    pthread_rwlock_unlock(&consts.lock);
}

#ifdef DP_WITH_DNNL
/* the bf16 copy of the element at x, when x lies in a constant buffer with
 * `span` more elements after it; else NULL */
static const uint16_t *const_find(const float *x, size_t span)
{
    const uint16_t *r = NULL;
    pthread_rwlock_rdlock(&consts.lock);
    for (int i = 0; i < CONST_SLOTS && !r; i++) {
        const float *p = consts.e[i].p;
        if (p && x >= p && x < p + consts.e[i].n && span <= (size_t)(p + consts.e[i].n - x))
            r = consts.e[i].bf + (x - p);
    }
    pthread_rwlock_unlock(&consts.lock);
    return r;
}
#endif

/* ---- oneDNN matmul ------------------------------------------------------------ */

#ifdef DP_WITH_DNNL

#define CACHE_SLOTS 64

typedef struct mm_entry {
    int M, N, K, ta, tb, beta1, lda, ldb, ldc, used;
    unsigned long tick;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
} mm_entry;

typedef struct mm_tls {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    mm_entry slot[CACHE_SLOTS];
    unsigned long tick;
    uint16_t *buf;
    size_t buf_elems;
} mm_tls;

static _Thread_local mm_tls tls;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void entry_free(mm_entry *e);

/* at thread exit (pool and evaluation workers): the thread's primitives,
 * stream, engine and buffer */
static void tls_release(void *unused)
{
    (void)unused;
    for (int i = 0; i < CACHE_SLOTS; i++)
        entry_free(&tls.slot[i]);
    if (tls.strm)
        dnnl_stream_destroy(tls.strm);
    if (tls.eng)
        dnnl_engine_destroy(tls.eng);
    free(tls.buf);
    memset(&tls, 0, sizeof tls);
}

/* Once per process: the thread-exit release, and freed memory kept mapped
 * (oneDNN allocates its scratchpads per call; see dp_nn_gemm.c). */
static void tls_key_make(void)
{
    pthread_key_create(&tls_key, tls_release);
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

void openblas_set_num_threads(int num_threads);

static void entry_free(mm_entry *e)
{
    if (!e->used)
        return;
    dnnl_primitive_destroy(e->prim);
    dnnl_memory_destroy(e->a);
    dnnl_memory_destroy(e->b);
    dnnl_memory_destroy(e->c);
    memset(e, 0, sizeof *e);
}

/* A [M, K] (ta: stored [K, M]), B [K, N] (tb: stored [N, K]), bf16 with
 * row strides lda, ldb; C [M, N] float, row stride ldc. */
static int entry_make(mm_entry *e, int M, int N, int K, int ta, int tb, int beta1, int lda, int ldb, int ldc)
{
    dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
    dnnl_dims_t as = {ta ? 1 : lda, ta ? lda : 1}, bs = {tb ? 1 : ldb, tb ? ldb : 1}, cs = {ldc, 1};
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int ok = 0;
    if (dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_bf16, as) || dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_bf16, bs) ||
        dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_f32, cs) || dnnl_matmul_desc_init(&desc, &amd, &bmd, NULL, &cmd))
        return -1;
    if (dnnl_primitive_attr_create(&attr))
        return -1;
    if (beta1 && (dnnl_post_ops_create(&po) || dnnl_post_ops_append_sum(po, 1.0f) ||
                  dnnl_primitive_attr_set_post_ops(attr, po)))
        goto out;
    if (dnnl_primitive_desc_create(&pd, &desc, attr, tls.eng, NULL))
        goto out;
    if (dnnl_primitive_create(&e->prim, pd))
        goto out;
    if (dnnl_memory_create(&e->a, &amd, tls.eng, DNNL_MEMORY_NONE) ||
        dnnl_memory_create(&e->b, &bmd, tls.eng, DNNL_MEMORY_NONE) ||
        dnnl_memory_create(&e->c, &cmd, tls.eng, DNNL_MEMORY_NONE)) {
        dnnl_primitive_destroy(e->prim);
        goto out;
    }
    *e = (mm_entry){M, N, K, ta, tb, beta1, lda, ldb, ldc, 1, 0, e->prim, e->a, e->b, e->c};
    ok = 1;
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (po)
        dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return ok ? 0 : -1;
}

static mm_entry *entry_get(int M, int N, int K, int ta, int tb, int beta1, int lda, int ldb, int ldc)
{
    if (!tls.eng) {
        pthread_once(&tls_once, tls_key_make);
        pthread_setspecific(tls_key, &tls);
        if (dnnl_engine_create(&tls.eng, dnnl_cpu, 0))
            return NULL;
        if (dnnl_stream_create(&tls.strm, tls.eng, dnnl_stream_default_flags)) {
            dnnl_engine_destroy(tls.eng);
            tls.eng = NULL;
            return NULL;
        }
    }
    mm_entry *lru = &tls.slot[0];
    for (int i = 0; i < CACHE_SLOTS; i++) {
        mm_entry *e = &tls.slot[i];
        if (e->used && e->M == M && e->N == N && e->K == K && e->ta == ta && e->tb == tb && e->beta1 == beta1 &&
            e->lda == lda && e->ldb == ldb && e->ldc == ldc) {
            e->tick = ++tls.tick;
            return e;
        }
        if (!e->used || (lru->used && e->tick < lru->tick))
            lru = e;
    }
    entry_free(lru);
    if (entry_make(lru, M, N, K, ta, tb, beta1, lda, ldb, ldc) != 0)
        return NULL;
    lru->tick = ++tls.tick;
    return lru;
}

static uint16_t *buf_get(size_t elems)
{
    if (elems > tls.buf_elems) {
        uint16_t *p = realloc(tls.buf, elems * sizeof *p);
        if (!p)
            return NULL;
        tls.buf = p;
        tls.buf_elems = elems;
    }
    return tls.buf;
}

/* C [M, N] (row stride ldc) = op(A) @ op(B) + beta C in bf16 on the calling
 * thread (one OpenMP thread); -1 if oneDNN or memory failed (the caller
 * then runs float32). */
static int gemm_bf16(int ta, int tb, int M, int N, int K, const float *A, const uint16_t *A16, int lda, const float *B,
                     const uint16_t *B16, int ldb, float beta, float *C, int ldc)
{
    if (beta != 0.0f && beta != 1.0f)
        return -1;
    static _Thread_local int omp_one;
    if (!omp_one) { /* this thread's own OpenMP setting: the callers split the work */
        omp_set_num_threads(1);
        omp_one = 1;
    }
    /* operands: given in bf16, or a constant buffer's bf16 copy in place, else converted into a dense buffer */
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N; /* stored shapes */
    const uint16_t *ca = A16 ? A16 : const_find(A, (size_t)(ar - 1) * lda + ac);
    const uint16_t *cb = B16 ? B16 : const_find(B, (size_t)(br - 1) * ldb + bc);
    size_t na = ca ? 0 : (size_t)ar * ac, nb = cb ? 0 : (size_t)br * bc;
    uint16_t *buf = na + nb ? buf_get(na + nb) : NULL;
    if (na + nb && !buf)
        return -1;
    mm_entry *e = entry_get(M, N, K, ta, tb, beta != 0.0f, ca ? lda : ac, cb ? ldb : bc, ldc);
    if (!e)
        return -1;
    if (!ca)
        to_bf16(buf, A, ar, ac, lda);
    if (!cb)
        to_bf16(buf + na, B, br, bc, ldb);
    dnnl_memory_set_data_handle(e->a, ca ? (void *)ca : buf);
    dnnl_memory_set_data_handle(e->b, cb ? (void *)cb : buf + na);
    dnnl_memory_set_data_handle(e->c, C);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
    return dnnl_primitive_execute(e->prim, tls.strm, 3, args) || dnnl_stream_wait(tls.strm) ? -1 : 0;
}

/* One GEMM split over the threads: part i of n takes a slice of C's
 * columns (or rows, when C has more rows than columns), whole, so every
 * element is one thread's sum and the result depends on the thread count
 * only. */
typedef struct gemm_split {
    int ta, tb, M, N, K, lda, ldb, ldc, by_rows;
    const float *A, *B;
    float *C, beta;
} gemm_split;

static void gemm_part_task(void *ctx, int i, int n)
{
    gemm_split *g = ctx;
    int D = g->by_rows ? g->M : g->N, q = (D + 15) / 16; /* slices of 16 */
    int d0 = 16 * (int)((long)q * i / n), d1 = 16 * (int)((long)q * (i + 1) / n);
    d1 = d1 < D ? d1 : D;
    if (d0 >= d1)
        return;
    const float *A = g->A, *B = g->B;
    float *C = g->C;
    int M = g->M, N = g->N;
    if (g->by_rows) {
        A += g->ta ? (size_t)d0 : (size_t)d0 * g->lda;
        C += (size_t)d0 * g->ldc;
        M = d1 - d0;
    } else {
        B += g->tb ? (size_t)d0 * g->ldb : (size_t)d0;
        C += d0;
        N = d1 - d0;
    }
    if (gemm_bf16(g->ta, g->tb, M, N, g->K, A, NULL, g->lda, B, NULL, g->ldb, g->beta, C, g->ldc) != 0) /* float32 then */
        cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, M, N, g->K,
                    1.0f, A, g->lda, B, g->ldb, g->beta, C, g->ldc);
}
#endif

void dp_nn_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
#ifdef DP_WITH_DNNL
    if (dp_nn_get_precision() == DP_PREC_BF16 && K > 0) {
        gemm_split g = {.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc,
                        .by_rows = M > N, .A = A, .B = B, .C = C, .beta = beta};
        double work = (double)M * N * K;
        int nt = work < 1e6 ? 1 : dp_nn_get_threads(), D = M > N ? M : N;
        nt = nt < (D + 15) / 16 ? nt : (D + 15) / 16;
        openblas_set_num_threads(1); /* a failed slice's fallback runs inside our threads */
        dp_nn_parallel_for(nt, gemm_part_task, &g);
        openblas_set_num_threads(dp_nn_get_threads());
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda,
                B, ldb, beta, C, ldc);
}

int dp_gemm_seq_bf16(int transb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta,
                     float *C, int ldc)
{
    return dp_gemm_seq_bf16_pre(transb, M, N, K, A, NULL, lda, B, NULL, ldb, beta, C, ldc);
}

int dp_gemm_seq_bf16_pre(int transb, int M, int N, int K, const float *A, const uint16_t *A16, int lda, const float *B,
                         const uint16_t *B16, int ldb, float beta, float *C, int ldc)
{
#ifdef DP_WITH_DNNL
    if (M <= 0 || N <= 0)
        return 0;
    if (dp_nn_get_precision() == DP_PREC_BF16 && K > 0)
        return gemm_bf16(0, transb, M, N, K, A, A16, lda, B, B16, ldb, beta, C, ldc);
#else
    (void)transb, (void)M, (void)N, (void)K, (void)A, (void)A16, (void)lda, (void)B, (void)B16, (void)ldb, (void)beta;
    (void)C, (void)ldc;
#endif
    return -1;
}

void dp_nn_to_bf16(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i += 1 << 20) { /* rows of 2^20 keep the int count in range */
        size_t m = n - i < (1u << 20) ? n - i : 1u << 20;
        to_bf16(dst + i, src + i, 1, (int)m, (int)m);
    }
}
