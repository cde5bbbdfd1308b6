/* bench_nn: GFLOP/s of the dp_nn layers on the Deep Packet CNN shapes,
 * against the machine's single-precision GEMM peak (a large square sgemm).
 *
 * Build and run: see bench/README-nn.md. Usage:
 *   bench_nn [-t threads] [-b batch[,batch...]] [-r reps] [-f name-filter] [--dnnl]
 * OpenBLAS's kernels follow OPENBLAS_CORETYPE when it is set (the core in use
 * is printed first).
 * --dnnl (only when built with DNNL=1, the default) also times the same
 * im2col GEMMs with oneDNN's dnnl_sgemm, for the engine choice.
 * --bf16 (AVX512_BF16 CPUs) then times the layers again with precision bf16
 * (dp_nn_set_precision), against a 2048^3 GEMM in bf16 through the same
 * path and the vdpbf16ps instruction peak (a register-only loop). */
#include "nn/dp_nn.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef DP_WITH_DNNL
#include <dnnl.h>
#endif

static int reps = 5;
static const char *filter; /* -f: only layers whose name contains this */

static int wanted(const char *name)
{
    return !filter || strstr(name, filter) != NULL;
}

static float *rnd(size_t n, dp_rng *r, float scale)
{
    float *a = malloc(n * sizeof(float));
    if (!a) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        a[i] = (2.0f * dp_rng_float(r) - 1.0f) * scale;
    return a;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* best (least) wall time of reps runs -> best; the least process CPU time of
 * the same runs -> last_cpu. On a shared machine the wall time includes the
 * time we were preempted; the CPU time does not (it counts BLAS threads
 * spinning, though), so flops / CPU time compared with the same for a
 * 1-thread sgemm is the per-core efficiency, robust to other load. */
static double last_cpu;
#define TIME_BEST(best, stmt)                                                      \
    do {                                                                           \
        stmt; /* warm-up */                                                        \
        best = 1e30;                                                               \
        last_cpu = 1e30;                                                           \
        for (int r_ = 0; r_ < reps; r_++) {                                        \
            double t0_ = dp_now(), c0_ = cpu_now();                                \
            stmt;                                                                  \
            double t_ = dp_now() - t0_, c_ = cpu_now() - c0_;                      \
            if (t_ < best)                                                         \
                best = t_;                                                         \
            if (c_ < last_cpu)                                                     \
                last_cpu = c_;                                                     \
        }                                                                          \
    } while (0)

static double core_peak_cpu; /* 1-thread sgemm GFLOP per CPU-second */

static double gemm_peak(int threads, int n)
{
    dp_nn_set_threads(threads);
    dp_rng r;
    dp_rng_seed(&r, 1);
    float *a = rnd((size_t)n * n, &r, 1), *b = rnd((size_t)n * n, &r, 1), *c = rnd((size_t)n * n, &r, 1);
    double best;
    TIME_BEST(best, dp_nn_gemm(0, 0, n, n, n, a, n, b, n, 0.0f, c, n)); /* cblas_sgemm in fp32 */
    free(a), free(b), free(c);
    double pc = 2.0 * n * n * (double)n / last_cpu / 1e9;
    if (threads == 1 && pc > core_peak_cpu)
        core_peak_cpu = pc;
    return 2.0 * n * n * (double)n / best / 1e9;
}

static double peak;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* this thread's CPU seconds (the process's would count idle library threads spinning) */
static double thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
/* Instruction issue rate on one thread, 8 independent accumulators in
 * registers, in GFLOP per CPU-second of this thread: vdpbf16ps zmm (bf16: 32
 * pairs, 64 FLOP per instruction) or vfmadd231ps zmm (0: 16 lanes, 32 FLOP). */
#define INSN8(op)                                                                                               \
    for (long it = 0; it < iters; it++) {                                                                       \
        a0 = op(a0), a1 = op(a1), a2 = op(a2), a3 = op(a3), a4 = op(a4), a5 = op(a5), a6 = op(a6), a7 = op(a7); \
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7));   \
    }
__attribute__((target("avx512f,avx512bf16"), noinline)) static double insn_peak(int bf16)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3c00);
    __m512 fx = _mm512_set1_ps(1e-7f);
    long iters = 20000000;
    double c0 = thread_cpu_now();
#define DP(v) _mm512_dpbf16_ps(v, x, y)
#define FMA(v) _mm512_fmadd_ps(fx, fx, v)
    if (bf16) {
        INSN8(DP)
    } else {
        INSN8(FMA)
    }
    double c = thread_cpu_now() - c0;
    float sink[16];
    _mm512_storeu_ps(sink, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                         _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))));
    if (sink[0] == 12345.0f)
        printf(" ");
    return (double)iters * 8 * (bf16 ? 64 : 32) / c / 1e9;
}
#endif

static void report(const char *what, int B, double flops, double sec)
{
    double gf = flops / sec / 1e9, gc = flops / last_cpu / 1e9;
    printf("%-38s B=%-3d %9.3f ms %7.1f GFLOP/s %5.1f%% of peak | %5.1f%% per-core eff. | %7.1f us/sample\n", what, B,
           sec * 1e3, gf, 100.0 * gf / peak, 100.0 * gc / core_peak_cpu, sec * 1e6 / B);
}

static void bench_conv(const char *name, int B, int C, int L, int OC, int K, int S, int with_dinp, int dnnl)
{
    if (!wanted(name))
        return;
    dp_rng r;
    dp_rng_seed(&r, 2);
    int LO = dp_conv1d_out_len(L, K, S);
    size_t nx = (size_t)B * C * L, nw = (size_t)OC * C * K, ny = (size_t)B * OC * LO;
    float *x = rnd(nx, &r, 1), *w = rnd(nw, &r, 0.05f), *b = rnd(OC, &r, 0.05f), *y = rnd(ny, &r, 1);
    float *dy = rnd(ny, &r, 1), *dx = rnd(nx, &r, 1), *dw = rnd(nw, &r, 0), *db = rnd(OC, &r, 0);
    float *scr = rnd(dp_conv1d_scratch_floats(B, C, L, OC, K, S), &r, 0);
    double f = 2.0 * B * OC * LO * (double)C * K, t;
    char what[96];
    snprintf(what, sizeof what, "%s fwd+relu", name);
    TIME_BEST(t, dp_conv1d_relu_forward(y, scr, x, w, b, B, C, L, OC, K, S));
    report(what, B, f, t);
    snprintf(what, sizeof what, "%s bwd%s", name, with_dinp ? "" : " (no dinp)");
    TIME_BEST(t, dp_conv1d_backward(with_dinp ? dx : NULL, dw, db, scr, dy, x, w, B, C, L, OC, K, S));
    report(what, B, f * (with_dinp ? 2 : 1), t);
#ifdef DP_WITH_DNNL
    if (dnnl && C * K > 16) {
        /* the forward's GEMMs alone, per sample, through oneDNN (no im2col) */
        snprintf(what, sizeof what, "%s fwd GEMM only, dnnl", name);
        TIME_BEST(t, for (int i = 0; i < B; i++) dnnl_sgemm('N', 'N', OC, LO, C * K, 1.0f, w, C * K, scr, LO, 0.0f,
                                                             y + (size_t)i * OC * LO, LO));
        report(what, B, f, t);
        snprintf(what, sizeof what, "%s fwd GEMM only, openblas", name);
        TIME_BEST(t, for (int i = 0; i < B; i++)
                         cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, LO, C * K, 1.0f, w, C * K, scr,
                                     LO, 0.0f, y + (size_t)i * OC * LO, LO));
        report(what, B, f, t);
    }
#else
    (void)dnnl;
#endif
    free(x), free(w), free(b), free(y), free(dy), free(dx), free(dw), free(db), free(scr);
}

/* ---- inference: channels-last convolutions, one sample per thread at a time ---- */

typedef struct clctx {
    float *x, *y, *scr, *wp; /* x [B][rows, C], y [B][LO, OC], scr [threads][...] */
    const float *b;
    size_t xs, ys, ss;
    int B, C, OC, K, S, LO;
} clctx;

static void cl_task(void *ctx, int i, int n)
{
    clctx *c = ctx;
    for (int s = i; s < c->B; s += n)
        dp_conv1d_cl_relu_forward(c->y + c->ys * s, c->scr + c->ss * i, c->x + c->xs * s, c->wp, c->b, c->LO, c->C,
                                  c->OC, c->K, c->S);
}

typedef struct seqctx {
    float *a, *b, *c;
    int n;
} seqctx;

static void seq_task(void *ctx, int i, int n)
{
    (void)n;
    seqctx *q = ctx;
    size_t nn = (size_t)q->n * q->n;
    dp_gemm_seq(0, q->n, q->n, q->n, q->a + nn * i, q->n, q->b + nn * i, q->n, 0.0f, q->c + nn * i, q->n);
}

/* The peak of the inference GEMM (dp_gemm_seq): every thread its own n^3 sgemm at once. */
static double seq_peak(int threads, int n)
{
    dp_rng r;
    dp_rng_seed(&r, 1);
    size_t nn = (size_t)n * n * threads;
    seqctx q = {rnd(nn, &r, 1), rnd(nn, &r, 1), rnd(nn, &r, 1), n};
    double best;
    dp_gemm_seq_begin();
    TIME_BEST(best, dp_nn_parallel_for(threads, seq_task, &q));
    dp_gemm_seq_end();
    free(q.a), free(q.b), free(q.c);
    return 2.0 * n * n * (double)n * threads / best / 1e9;
}

static double cl_peak;

/* B samples through dp_conv1d_cl_relu_forward split over the threads, as
 * dp_model_predict runs them; GFLOP/s counted as the direct convolution's
 * (Winograd does fewer, so it can pass 100% of the GEMM peak). */
static void bench_conv_cl(const char *name, int B, int C, int L, int OC, int K, int S)
{
    if (!wanted(name))
        return;
    dp_rng r;
    dp_rng_seed(&r, 6);
    int LO = dp_conv1d_out_len(L, K, S), nt = dp_nn_get_threads();
    int rows = dp_conv1d_cl_in_rows(LO, K, S, C);
    rows = rows > L ? rows : L;
    clctx c = {.B = B, .C = C, .OC = OC, .K = K, .S = S, .LO = LO, .xs = (size_t)rows * C, .ys = (size_t)LO * OC,
               .ss = dp_conv1d_cl_scratch_floats(LO, C, OC, K, S)};
    c.x = rnd(c.xs * B, &r, 1);
    c.y = rnd(c.ys * B, &r, 0);
    c.scr = rnd(c.ss * nt, &r, 0);
    float *w = rnd((size_t)OC * C * K, &r, 0.05f), *b = rnd(OC, &r, 0.05f);
    c.wp = rnd(dp_conv1d_cl_weight_floats(OC, C, K, S), &r, 0);
    c.b = b;
    dp_conv1d_cl_pack(c.wp, w, OC, C, K, S);
    double f = 2.0 * B * OC * LO * (double)C * K, t;
    dp_gemm_seq_begin();
    TIME_BEST(t, dp_nn_parallel_for(nt < B ? nt : B, cl_task, &c));
    dp_gemm_seq_end();
    printf("%-38s B=%-3d %9.3f ms %7.1f GFLOP/s %5.1f%% of the %s peak | %7.1f us/sample\n", name, B, t * 1e3,
           f / t / 1e9, 100.0 * f / t / 1e9 / cl_peak, dp_gemm_seq_engine(), t * 1e6 / B);
    free(c.x), free(c.y), free(c.scr), free(c.wp), free(w), free(b);
}

static void bench_linear(const char *name, int B, int C, int OC, int dnnl)
{
    if (!wanted(name))
        return;
    dp_rng r;
    dp_rng_seed(&r, 3);
    float *x = rnd((size_t)B * C, &r, 1), *w = rnd((size_t)OC * C, &r, 0.01f), *b = rnd(OC, &r, 0.01f);
    float *y = rnd((size_t)B * OC, &r, 1), *dy = rnd((size_t)B * OC, &r, 1), *dx = rnd((size_t)B * C, &r, 1);
    float *dw = rnd((size_t)OC * C, &r, 0), *db = rnd(OC, &r, 0);
    double f = 2.0 * B * (double)C * OC, t;
    char what[96];
    snprintf(what, sizeof what, "%s fwd", name);
    TIME_BEST(t, dp_linear_forward(y, x, w, b, B, C, OC));
    report(what, B, f, t);
    snprintf(what, sizeof what, "%s bwd", name);
    TIME_BEST(t, dp_linear_backward(dx, dw, db, dy, x, w, B, C, OC));
    report(what, B, 2 * f, t);
#ifdef DP_WITH_DNNL
    if (dnnl) {
        snprintf(what, sizeof what, "%s fwd, dnnl_sgemm", name);
        TIME_BEST(t, dnnl_sgemm('N', 'T', B, OC, C, 1.0f, x, C, w, C, 0.0f, y, OC));
        report(what, B, f, t);
        snprintf(what, sizeof what, "%s bwd dW, dnnl_sgemm", name);
        TIME_BEST(t, dnnl_sgemm('T', 'N', OC, C, B, 1.0f, dy, OC, x, C, 1.0f, dw, C));
        report(what, B, f, t);
    }
#else
    (void)dnnl;
#endif
    free(x), free(w), free(b), free(y), free(dy), free(dx), free(dw), free(db);
}

static void bench_pool(const char *name, int B, int C, int L)
{
    if (!wanted("maxpool"))
        return;
    dp_rng r;
    dp_rng_seed(&r, 4);
    size_t nx = (size_t)B * C * L, ny = (size_t)B * C * (L / 2);
    float *x = rnd(nx, &r, 1), *y = rnd(ny, &r, 1), *dx = rnd(nx, &r, 1);
    int32_t *am = malloc(ny * sizeof(int32_t));
    double t;
    char what[96];
    snprintf(what, sizeof what, "%s maxpool fwd (GB/s=%.0f)", name, 0.0);
    TIME_BEST(t, dp_maxpool1d_forward(y, am, x, B, C, L, 2));
    snprintf(what, sizeof what, "%s maxpool fwd", name);
    printf("%-34s B=%-3d %9.3f ms  %8.1f GB/s moved\n", what, B, t * 1e3, (nx + 2 * ny) * 4.0 / t / 1e9);
    TIME_BEST(t, dp_maxpool1d_backward(dx, y, am, B, C, L, 2));
    snprintf(what, sizeof what, "%s maxpool bwd", name);
    printf("%-34s B=%-3d %9.3f ms  %8.1f GB/s moved\n", what, B, t * 1e3, (nx + 2 * ny) * 4.0 / t / 1e9);
    free(x), free(y), free(dx), free(am);
}

static void bench_adam(const char *name, size_t n)
{
    if (!wanted(name))
        return;
    dp_rng r;
    dp_rng_seed(&r, 5);
    float *p = rnd(n, &r, 0.1f), *g = rnd(n, &r, 1), *m = rnd(n, &r, 0), *v = rnd(n, &r, 0);
    double t;
    int step = 1;
    TIME_BEST(t, dp_adam_update(p, g, m, v, n, 1e-3f, 0.9f, 0.999f, 1e-8f, step++));
    printf("%-34s n=%-9zu %7.3f ms  %8.1f GB/s moved (7 x 4 bytes/param)\n", name, n, t * 1e3, n * 28.0 / t / 1e9);
    free(p), free(g), free(m), free(v);
}

/* --bf16: the training layers and the inference convolutions again in bf16 */
static void bench_bf16(int threads, const int *batches, int nb)
{
    char eb[DP_ERRBUF_SIZE];
    if (dp_nn_set_precision(DP_PREC_BF16, eb) != 0) {
        printf("bf16: skipped: %s\n", eb);
        return;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    double ip = insn_peak(1), fp = insn_peak(0);
    printf("instruction peak, one core (GFLOP per CPU s): vdpbf16ps %.1f, vfmadd231ps zmm %.1f (%.2fx)\n", ip, fp,
           ip / fp);
#endif
    core_peak_cpu = 0; /* per-core efficiency below: against the bf16 GEMM */
    double b1 = gemm_peak(1, 2048), bn = threads > 1 ? gemm_peak(threads, 2048) : b1;
    printf("bf16 GEMM 2048^3 (dp_nn_gemm: conversion + oneDNN matmul): 1 thread %.1f GFLOP/s, %d threads %.1f "
           "GFLOP/s\nlayers in bf16 at %d threads, %% of the %d-thread bf16 GEMM peak:\n", b1, threads, bn, threads,
           threads);
    peak = bn;
    dp_nn_set_threads(threads);
    for (int bi = 0; bi < nb; bi++) {
        int B = batches[bi];
        bench_conv("bf16 app conv2 (200x499 k5 s1 ->200)", B, 200, 499, 200, 5, 1, 1, 0);
        bench_linear("bf16 app fc1 (49400 -> 200)", B, 49400, 200, 0);
        bench_conv("bf16 traffic conv2 (200x499 k4 s3)", B, 200, 499, 200, 4, 3, 1, 0);
        bench_linear("bf16 traffic fc1 (16600 -> 200)", B, 16600, 200, 0);
    }
    cl_peak = seq_peak(threads, 2048);
    printf("bf16 inference convolutions, %d threads at once, bf16 GEMM peak %.1f GFLOP/s:\n", threads, cl_peak);
    for (int bi = 0; bi < nb; bi++) {
        bench_conv_cl("bf16 app conv2 inference (Winograd)", batches[bi], 200, 499, 200, 5, 1);
        bench_conv_cl("bf16 traffic conv2 inference", batches[bi], 200, 499, 200, 4, 3);
    }
    dp_nn_set_precision(DP_PREC_FP32, eb);
}

int main(int argc, char **argv)
{
    int threads = 2, batches[8] = {16, 64}, nb = 2, dnnl = 0, bf16 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) {
            nb = 0;
            for (char *s = strtok(argv[++i], ","); s && nb < 8; s = strtok(NULL, ","))
                batches[nb++] = atoi(s);
        } else if (!strcmp(argv[i], "-f") && i + 1 < argc)
            filter = argv[++i];
        else if (!strcmp(argv[i], "--dnnl"))
            dnnl = 1;
        else if (!strcmp(argv[i], "--bf16"))
            bf16 = 1;
        else {
            fprintf(stderr, "usage: %s [-t threads] [-b batch[,batch...]] [-r reps] [-f name-filter] [--dnnl] [--bf16]\n", argv[0]);
            return 2;
        }
    }
    printf("OpenBLAS core: %s; %d reps, best time\n", dp_nn_blas_core(), reps);
    double p1 = gemm_peak(1, 2048);
    double pn = threads > 1 ? gemm_peak(threads, 2048) : p1;
    printf("sgemm 2048^3 peak: 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s; per core by CPU time %.1f GFLOP/s\n",
           p1, threads, pn, core_peak_cpu);
    printf("columns: wall time (best of reps), GFLOP/s and %% of the %d-thread wall peak; per-core efficiency =\n"
           "  (flops / process CPU time) / (1-thread sgemm flops / CPU time), robust to other load\n", threads);
    peak = pn;
    dp_nn_set_threads(threads);
    printf("layers at %d threads, %% of the %d-thread peak:\n", threads, threads);
    for (int bi = 0; bi < nb; bi++) {
        int B = batches[bi];
        bench_conv("app conv1 (1x1500 k4 s3 ->200)", B, 1, 1500, 200, 4, 3, 0, dnnl);
        bench_conv("app conv2 (200x499 k5 s1 ->200)", B, 200, 499, 200, 5, 1, 1, dnnl);
        bench_pool("app", B, 200, 495);
        bench_linear("app fc1 (49400 -> 200)", B, 49400, 200, dnnl);
        bench_conv("traffic conv1 (1x1500 k5 s3)", B, 1, 1500, 200, 5, 3, 0, dnnl);
        bench_conv("traffic conv2 (200x499 k4 s3)", B, 200, 499, 200, 4, 3, 1, dnnl);
        bench_pool("traffic", B, 200, 166);
        bench_linear("traffic fc1 (16600 -> 200)", B, 16600, 200, dnnl);
        bench_linear("fc2 (200 -> 100)", B, 200, 100, 0);
    }
    cl_peak = seq_peak(threads, 2048);
    printf("inference convolutions (channels-last, one sample per thread, %s GEMMs): %s sgemm 2048^3 peak, "
           "%d threads at once: %.1f GFLOP/s\n", dp_gemm_seq_engine(), dp_gemm_seq_engine(), threads, cl_peak);
    for (int bi = 0; bi < nb; bi++) {
        int B = batches[bi];
        bench_conv_cl("app conv2 inference (Winograd)", B, 200, 499, 200, 5, 1);
        bench_conv_cl("traffic conv2 inference", B, 200, 499, 200, 4, 3);
        bench_conv_cl("traffic conv1 inference", B, 1, 1500, 200, 5, 3);
    }
    if (bf16)
        bench_bf16(threads, batches, nb);
    bench_adam("adam step, app CNN params", 10100000);
    bench_adam("adam step, traffic CNN params", 3500000);
    /* the machine may be shared: measure the peak again and report the best */
    double p1b = gemm_peak(1, 2048);
    double pnb = threads > 1 ? gemm_peak(threads, 2048) : p1b;
    printf("sgemm 2048^3 peak again: 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s, per core by CPU time %.1f%s\n",
           p1b, threads, pnb, core_peak_cpu,
           pnb > 1.1 * peak ? " (higher than at the start: the % above are inflated by load)" : "");
    return 0;
}
