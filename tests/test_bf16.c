/* test_bf16: mixed precision (dp_nn_bf16.c). The bf16 GEMM against a
 * double-precision product of the bf16-rounded operands (it must round its
 * inputs to bf16 and sum in float32: tight), and against the float32 GEMM
 * (within bf16's rounding, and not equal: bf16 was really used); the
 * convolution, fully connected and sequence layers forward and backward, the
 * inference convolutions and the CNN's inference path, in bf16 against float32 within bf16 tolerances;
 * operands declared constant (read from their bf16 copy, never stale); the
 * precision words and the refusal where the CPU lacks AVX512_BF16.
 * The bf16 runs skip with a message on a CPU without AVX512_BF16. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_test.h"
#include "model/dp_model.h"
#include "nn/dp_nn.h"

#define SKIP_WITHOUT_BF16()                                                                                     \
    do {                                                                                                        \
        char eb_[DP_ERRBUF_SIZE];                                                                               \
        if (dp_nn_set_precision(DP_PREC_BF16, eb_) != 0)                                                        \
            SKIP("bf16 unavailable here: %s", eb_);                                                             \
    } while (0)

static float *rndv(size_t n, dp_rng *r, float scale)
{
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = (2.0f * dp_rng_float(r) - 1.0f) * scale;
    return a;
}

static void test_precision_words(void)
{
    char eb[DP_ERRBUF_SIZE];
    CHECK_EQ_INT(dp_nn_precision_parse("fp32"), DP_PREC_FP32);
    CHECK_EQ_INT(dp_nn_precision_parse("bf16"), DP_PREC_BF16);
    CHECK_EQ_INT(dp_nn_precision_parse("auto"), DP_PREC_AUTO);
    CHECK_EQ_INT(dp_nn_precision_parse("BF16"), -1);
    CHECK_EQ_INT(dp_nn_precision_parse("fp16"), -1);
    CHECK_EQ_INT(dp_nn_precision_parse(""), -1);
    /* auto follows the CPU; bf16 is refused, with the reason, where it cannot run */
    CHECK(dp_nn_set_precision(DP_PREC_AUTO, eb) == 0);
    CHECK_EQ_INT(dp_nn_get_precision(), dp_nn_bf16_available() ? DP_PREC_BF16 : DP_PREC_FP32);
    CHECK(dp_nn_set_precision(DP_PREC_FP32, eb) == 0);
    CHECK_EQ_INT(dp_nn_get_precision(), DP_PREC_FP32);
    if (dp_nn_bf16_available()) {
        CHECK(dp_nn_set_precision(DP_PREC_BF16, eb) == 0);
        CHECK_EQ_INT(dp_nn_get_precision(), DP_PREC_BF16);
    } else {
        CHECK(dp_nn_set_precision(DP_PREC_BF16, eb) == -1);
        CHECK_STR_CONTAINS(eb, "bf16");
        CHECK_EQ_INT(dp_nn_get_precision(), DP_PREC_FP32);
    }
    dp_nn_set_precision(DP_PREC_FP32, eb);
    /* resolving changes nothing; a value that is no DP_PREC_* is refused */
    CHECK_EQ_INT(dp_nn_precision_resolve(DP_PREC_AUTO, eb), dp_nn_bf16_available() ? DP_PREC_BF16 : DP_PREC_FP32);
    CHECK_EQ_INT(dp_nn_precision_resolve(DP_PREC_BF16, eb), dp_nn_bf16_available() ? DP_PREC_BF16 : -1);
    CHECK_EQ_INT(dp_nn_precision_resolve(5, eb), -1);
    CHECK_STR_CONTAINS(eb, "expected fp32, bf16 or auto");
    CHECK(dp_nn_set_precision(5, eb) == -1);
    CHECK_EQ_INT(dp_nn_get_precision(), DP_PREC_FP32);
    CHECK(!strcmp(dp_nn_precision_name(DP_PREC_BF16), "bf16"));
    CHECK(!strcmp(dp_nn_precision_name(DP_PREC_FP32), "fp32"));
}

static void test_round(void)
{
    /* bf16 keeps 8 significant bits: ulp(1) = 2^-7; ties go to even */
    CHECK(dp_bf16_round(1.0f) == 1.0f);
    CHECK(dp_bf16_round(1.0f + 0x1p-8f) == 1.0f);                 /* tie, down to even */
    CHECK(dp_bf16_round(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);  /* tie, up to even */
    CHECK(dp_bf16_round(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f);
    CHECK(dp_bf16_round(-3.0f) == -3.0f);
    CHECK(isnan(dp_bf16_round(NAN)));
    CHECK(isinf(dp_bf16_round(INFINITY)));
    CHECK(dp_bf16_round(0.1f) == 0.10009765625f);
}

/* dp_nn_to_bf16 in bf16 mode (vector code, masked tails) = the scalar
 * rounding, element for element, at every length from 1 to 70 and at 200
 * (a row of the CNN's channels); nothing written past n. */
static void test_to_bf16_lengths(void)
{
    SKIP_WITHOUT_BF16();
    char eb[DP_ERRBUF_SIZE];
    dp_rng r;
    dp_rng_seed(&r, 11);
    float *src = rndv(256, &r, 3.0f);
    src[5] = 1.0f + 0x1p-8f; /* ties */
    src[6] = 1.0f + 3 * 0x1p-8f;
    uint16_t dst[260];
    int bad = 0;
    for (int n = 1; n <= 200; n = n < 70 ? n + 1 : n == 70 ? 200 : 201) { /* 1..70, then 200 */
        for (int i = 0; i < 260; i++)
            dst[i] = 0xabcd;
        dp_nn_to_bf16(dst, src, (size_t)n);
        for (int i = 0; i < 260; i++) {
            uint32_t u = (uint32_t)dst[i] << 16;
            float f;
            memcpy(&f, &u, 4);
            bad += i < n ? f != dp_bf16_round(src[i]) : dst[i] != 0xabcd;
        }
    }
    CHECK_EQ_INT(bad, 0);
    free(src);
    dp_nn_set_precision(DP_PREC_FP32, eb);
}

/* C = op(A) op(B) + beta C0 in double over the given (possibly rounded) operands */
static void ref_gemm(double *C, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                     int ldb, float beta, const float *C0, int ldc, int round)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                if (round)
                    a = dp_bf16_round(a), b = dp_bf16_round(b);
                s += (double)a * b;
            }
            C[(size_t)i * N + j] = s + (double)beta * C0[(size_t)i * ldc + j];
        }
}

static void test_gemm_oracle(void)
{
    SKIP_WITHOUT_BF16();
    char eb[DP_ERRBUF_SIZE];
    dp_rng r;
    dp_rng_seed(&r, 7);
    int M = 37, N = 45, K = 300;
    for (int v = 0; v < 16; v++) {
        int ta = v & 1, tb = (v >> 1) & 1, beta1 = (v >> 2) & 1, strided = (v >> 3) & 1;
        int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + (strided ? 7 : 0);
        float *A = rndv((size_t)(ta ? K : M) * lda, &r, 1), *B = rndv((size_t)(tb ? N : K) * ldb, &r, 1);
        float *C0 = rndv((size_t)M * ldc, &r, 1), *C = malloc((size_t)M * ldc * sizeof *C);
        double *R = malloc((size_t)M * N * sizeof *R), *F = malloc((size_t)M * N * sizeof *F);
        memcpy(C, C0, (size_t)M * ldc * sizeof *C);
        float beta = beta1 ? 1.0f : 0.0f;
        dp_nn_set_precision(DP_PREC_BF16, eb);
        dp_nn_gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
        ref_gemm(R, ta, tb, M, N, K, A, lda, B, ldb, beta, C0, ldc, 1);
        ref_gemm(F, ta, tb, M, N, K, A, lda, B, ldb, beta, C0, ldc, 0);
        double emax = 0, dmax = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double c = C[(size_t)i * ldc + j];
                emax = fmax(emax, fabs(c - R[(size_t)i * N + j]));
                dmax = fmax(dmax, fabs(c - F[(size_t)i * N + j]));
            }
        /* the padding between rows of a strided C is untouched */
        for (int i = 0; strided && i < M; i++)
            for (int j = N; j < ldc; j++)
                CHECK(C[(size_t)i * ldc + j] == C0[(size_t)i * ldc + j]);
        /* |sum| <= K = 300: float32 sums of exact bf16 products stay within ~1e-4;
         * bf16 inputs (relative 2^-9 each) move the result by ~sqrt(K) 2^-9 / 3 */
        if (emax > 2e-4 || dmax < 1e-3 || dmax > 0.2)
            fprintf(stderr, "  ta %d tb %d beta %d strided %d: vs bf16-rounded reference %.3g, vs fp32 %.3g\n", ta, tb,
                    beta1, strided, emax, dmax);
        CHECK(emax <= 2e-4);
        CHECK(dmax >= 1e-3);
        CHECK(dmax <= 0.2);
        free(A), free(B), free(C0), free(C), free(R), free(F);
    }
    dp_nn_set_precision(DP_PREC_FP32, eb);
}

/* max |x - y| / max |y| */
static double rel_err(const float *x, const float *y, size_t n)
{
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)x[i] - y[i]));
        s = fmax(s, fabs((double)y[i]));
    }
    return s > 0 ? e / s : e;
}

/* Operands declared constant (dp_nn_bf16_const) are read from their bf16
 * copy, views with an offset and a row stride included: the same products as
 * converting them per call; after dp_nn_bf16_forget and a change of the
 * buffer, the new contents count (no stale copy). */
static void test_gemm_const_operands(void)
{
    SKIP_WITHOUT_BF16();
    char eb[DP_ERRBUF_SIZE];
    dp_rng r;
    dp_rng_seed(&r, 8);
    int M = 20, N = 33, K = 70, ld = 90;
    float *W = rndv((size_t)N * ld + 7, &r, 1), *X = rndv((size_t)M * K, &r, 1);
    float *C1 = calloc((size_t)M * N, sizeof(float)), *C2 = calloc((size_t)M * N, sizeof(float));
    double *R = malloc((size_t)M * N * sizeof *R);
    const float *Wv = W + 7; /* a view: offset 7, row stride 90 */
    CHECK(dp_gemm_seq_bf16(1, M, N, K, X, K, Wv, ld, 0.0f, C1, N) == 0);
    CHECK(dp_nn_bf16_const(W, (size_t)N * ld + 7) == 0);
    CHECK(dp_gemm_seq_bf16(1, M, N, K, X, K, Wv, ld, 0.0f, C2, N) == 0);
    CHECK(rel_err(C2, C1, (size_t)M * N) < 1e-6);
    dp_nn_bf16_forget(W);
    for (size_t i = 0; i < (size_t)N * ld + 7; i++)
        W[i] = -W[i];
    CHECK(dp_gemm_seq_bf16(1, M, N, K, X, K, Wv, ld, 0.0f, C2, N) == 0);
    ref_gemm(R, 0, 1, M, N, K, X, K, Wv, ld, 0.0f, C2, N, 1);
    double e = 0;
    for (int i = 0; i < M * N; i++)
        e = fmax(e, fabs(C2[i] - R[i]));
    CHECK(e < 1e-4);
    free(W), free(X), free(C1), free(C2), free(R);
    dp_nn_set_precision(DP_PREC_FP32, eb);
}

/* bf16 against fp32 on one tensor: close (bf16 tolerance) but not identical */
static void check_bf16_close(const char *what, const float *b, const float *f, size_t n, double tol)
{
    double e = rel_err(b, f, n);
    if (!(e <= tol && e > 0))
        fprintf(stderr, "  %s: bf16 vs fp32 relative error %.3g (tolerance %.3g, must be > 0)\n", what, e, tol);
    CHECK(e <= tol);
    CHECK(e > 0);
}

/* conv forward in double over bf16-rounded inputs and weights (float32 bias) */
static void ref_conv_bf16(double *y, const float *x, const float *w, const float *bias, int B, int C, int L, int OC,
                          int K, int S, int relu)
{
    int LO = dp_conv1d_out_len(L, K, S);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++)
            for (int t = 0; t < LO; t++) {
                double v = bias[o];
                for (int c = 0; c < C; c++)
                    for (int k = 0; k < K; k++)
                        v += (double)dp_bf16_round(w[((size_t)o * C + c) * K + k]) *
                             dp_bf16_round(x[((size_t)b * C + c) * L + (size_t)t * S + k]);
                y[((size_t)b * OC + o) * LO + t] = relu && v < 0 ? 0 : v;
            }
}

/* One shape, forward (with or without ReLU) and backward in both precisions:
 * bf16 within its tolerance of float32 and not equal to it, the forward
 * within float32 rounding of the double product of the bf16-rounded
 * operands, dinp overwritten, dweight and dbias accumulated (both start
 * non-zero), the bias gradient a float32 sum identical to float32's. The
 * GEMM-path shapes (C*K > 16) run on oneDNN's direct bf16 convolutions,
 * split over the batch (odd B: unequal slices). */
static void conv_case(int B, int C, int L, int OC, int K, int S, int relu)
{
    char eb[DP_ERRBUF_SIZE];
    dp_rng r;
    dp_rng_seed(&r, 11 + B + S);
    int LO = dp_conv1d_out_len(L, K, S);
    size_t nx = (size_t)B * C * L, nw = (size_t)OC * C * K, ny = (size_t)B * OC * LO;
    float *x = rndv(nx, &r, 1), *w = rndv(nw, &r, 0.1f), *bias = rndv(OC, &r, 0.1f), *dy = rndv(ny, &r, 1);
    float *w0 = rndv(nw, &r, 0.5f), *b0 = rndv(OC, &r, 0.5f);
    float *scr = calloc(dp_conv1d_scratch_floats(B, C, L, OC, K, S), sizeof(float));
    double *ref = malloc(ny * sizeof *ref);
    float *y[2], *dx[2], *dw[2], *db[2];
    for (int p = 0; p < 2; p++) { /* p 0: fp32, 1: bf16 */
        dp_nn_set_precision(p ? DP_PREC_BF16 : DP_PREC_FP32, eb);
        y[p] = calloc(ny, sizeof(float)), dx[p] = malloc(nx * sizeof(float));
        dw[p] = malloc(nw * sizeof(float)), db[p] = malloc(OC * sizeof(float));
        for (size_t i = 0; i < nx; i++)
            dx[p][i] = 1e9f; /* must be overwritten */
        memcpy(dw[p], w0, nw * sizeof(float)), memcpy(db[p], b0, OC * sizeof(float));
        if (relu)
            dp_conv1d_relu_forward(y[p], scr, x, w, bias, B, C, L, OC, K, S);
        else
            dp_conv1d_forward(y[p], scr, x, w, bias, B, C, L, OC, K, S);
        dp_conv1d_backward(dx[p], dw[p], db[p], scr, dy, x, w, B, C, L, OC, K, S);
    }
    check_bf16_close("conv forward", y[1], y[0], ny, 2e-2);
    check_bf16_close("conv dinp", dx[1], dx[0], nx, 2e-2);
    check_bf16_close("conv dweight", dw[1], dw[0], nw, 2e-2);
    CHECK(rel_err(db[1], db[0], OC) == 0); /* the bias gradient is a float32 sum either way */
    ref_conv_bf16(ref, x, w, bias, B, C, L, OC, K, S, relu);
    double e = 0, m = 0;
    for (size_t i = 0; i < ny; i++)
        e = fmax(e, fabs(y[1][i] - ref[i])), m = fmax(m, fabs(ref[i]));
    if (!(e <= 1e-5 * m))
        fprintf(stderr, "  conv forward vs double over bf16 operands: %.3g (of %.3g)\n", e, m);
    CHECK(e <= 1e-5 * m);
    for (int p = 0; p < 2; p++)
        free(y[p]), free(dx[p]), free(dw[p]), free(db[p]);
    free(x), free(w), free(bias), free(dy), free(w0), free(b0), free(scr), free(ref);
    dp_nn_set_precision(DP_PREC_FP32, eb);
}

static void test_conv_layers(void)
{
    SKIP_WITHOUT_BF16();
    conv_case(3, 16, 120, 24, 5, 2, 1);
    conv_case(5, 32, 64, 16, 5, 1, 1);  /* stride 1, as the app CNN's conv2 */
    conv_case(4, 24, 90, 20, 4, 3, 0);  /* no ReLU, stride 3 */
    conv_case(1, 20, 40, 8, 4, 1, 1);   /* one sample: one slice */
}

static void test_linear_and_seq_layers(void)
{
    SKIP_WITHOUT_BF16();
    char eb[DP_ERRBUF_SIZE];
    dp_rng r;
    dp_rng_seed(&r, 12);
    int B = 9, C = 130, OC = 33, N = 6, SC = 7, K = 3;
    float *x = rndv((size_t)B * C, &r, 1), *w = rndv((size_t)OC * C, &r, 0.1f), *bias = rndv(OC, &r, 0.1f);
    float *dy = rndv((size_t)B * OC, &r, 1);
    float *sx = rndv((size_t)B * N * SC, &r, 1), *sw = rndv((size_t)OC * SC * K, &r, 0.3f);
    float *sdy = rndv((size_t)B * N * OC, &r, 1);
    float *y[2], *dx[2], *dw[2], *sy[2], *sdx[2], *sdw[2];
    float *cols = calloc((size_t)B * N * SC * K, sizeof(float)), *dcols = calloc((size_t)B * N * SC * K, sizeof(float));
    for (int p = 0; p < 2; p++) {
        dp_nn_set_precision(p ? DP_PREC_BF16 : DP_PREC_FP32, eb);
        y[p] = calloc((size_t)B * OC, sizeof(float)), dx[p] = calloc((size_t)B * C, sizeof(float));
        dw[p] = calloc((size_t)OC * C, sizeof(float));
        dp_linear_forward(y[p], x, w, bias, B, C, OC);
        dp_linear_backward(dx[p], dw[p], NULL, dy, x, w, B, C, OC);
        sy[p] = calloc((size_t)B * N * OC, sizeof(float)), sdx[p] = calloc((size_t)B * N * SC, sizeof(float));
        sdw[p] = calloc((size_t)OC * SC * K, sizeof(float));
        dp_seqconv_forward(sy[p], cols, sx, sw, bias, B, N, SC, OC, K);
        dp_seqconv_backward(sdx[p], sdw[p], NULL, dcols, sdy, cols, sw, B, N, SC, OC, K);
    }
    check_bf16_close("linear forward", y[1], y[0], (size_t)B * OC, 2e-2);
    check_bf16_close("linear dinp", dx[1], dx[0], (size_t)B * C, 2e-2);
    check_bf16_close("linear dweight", dw[1], dw[0], (size_t)OC * C, 2e-2);
    check_bf16_close("seqconv forward", sy[1], sy[0], (size_t)B * N * OC, 2e-2);
    check_bf16_close("seqconv dinp", sdx[1], sdx[0], (size_t)B * N * SC, 2e-2);
    check_bf16_close("seqconv dweight", sdw[1], sdw[0], (size_t)OC * SC * K, 2e-2);
    for (int p = 0; p < 2; p++)
        free(y[p]), free(dx[p]), free(dw[p]), free(sy[p]), free(sdx[p]), free(sdw[p]);
    free(x), free(w), free(bias), free(dy), free(sx), free(sw), free(sdy), free(cols), free(dcols);
    dp_nn_set_precision(DP_PREC_FP32, eb);
}

/* The inference convolutions (channels-last, one sample: the Winograd
 * F(4, 5) form, whose bf16 form writes its transformed input in bf16, and
 * the GEMM form) in bf16 against float32, for output counts that end
 * inside a tile: close, rows past n untouched (NaN sentinel), and no input
 * row past dp_conv1d_cl_in_rows(n) read (they hold NaN, which would
 * spread). */
static void test_conv_cl(void)
{
    SKIP_WITHOUT_BF16();
    char eb[DP_ERRBUF_SIZE];
    int shapes[][5] = {{30, 499, 20, 5, 1}, {16, 31, 17, 5, 1}, {200, 120, 200, 5, 1}, {12, 499, 10, 4, 3}};
    dp_rng r;
    dp_rng_seed(&r, 21);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int C = shapes[s][0], L = shapes[s][1], OC = shapes[s][2], K = shapes[s][3], S = shapes[s][4];
        int LO = dp_conv1d_out_len(L, K, S), rows = dp_conv1d_cl_in_rows(LO, K, S, C);
        float *x = rndv((size_t)rows * C, &r, 1.0f), *w = rndv((size_t)OC * C * K, &r, 0.3f), *b = rndv(OC, &r, 0.3f);
        float *wp = malloc(sizeof(float) * dp_conv1d_cl_weight_floats(OC, C, K, S));
        float *scr = malloc(sizeof(float) * dp_conv1d_cl_scratch_floats(LO, C, OC, K, S));
        float *xin = malloc(sizeof(float) * (size_t)rows * C), *y[2];
        for (int p = 0; p < 2; p++)
            y[p] = malloc(sizeof(float) * (size_t)(LO + 1) * OC);
        dp_conv1d_cl_pack(wp, w, OC, C, K, S);
        int ns[] = {1, 3, 6, LO - 2, LO};
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
            int n = ns[i], in = dp_conv1d_cl_in_rows(n, K, S, C);
            for (size_t j = 0; j < (size_t)rows * C; j++)
                xin[j] = j < (size_t)in * C ? x[j] : NAN;
            for (int p = 0; p < 2; p++) {
                dp_nn_set_precision(p ? DP_PREC_BF16 : DP_PREC_FP32, eb);
                if (p)
                    dp_nn_bf16_const(wp, dp_conv1d_cl_weight_floats(OC, C, K, S));
                for (size_t j = 0; j < (size_t)(LO + 1) * OC; j++)
                    y[p][j] = NAN;
                dp_conv1d_cl_relu_forward(y[p], scr, xin, wp, b, n, C, OC, K, S);
                dp_nn_bf16_forget(wp);
            }
            char what[64];
            snprintf(what, sizeof what, "conv cl C %d K %d S %d n %d", C, K, S, n);
            check_bf16_close(what, y[1], y[0], (size_t)n * OC, 2e-2);
            int untouched = 1;
            for (size_t j = (size_t)n * OC; j < (size_t)(LO + 1) * OC; j++)
                untouched &= isnan(y[1][j]);
            CHECK(untouched);
        }
        /* the same signals in one call (the Winograd form shares its GEMMs across them) */
        int cnt = (int)(sizeof ns / sizeof ns[0]), sum = 0;
        float *xs[5], *ys[5];
        for (int k = 0; k < cnt; k++) {
            sum += 4 * ((ns[k] + 3) / 4);
            xs[k] = malloc(sizeof(float) * (size_t)rows * C), ys[k] = malloc(sizeof(float) * (size_t)(LO + 1) * OC);
            for (size_t q = 0; q < (size_t)rows * C; q++)
                xs[k][q] = q < (size_t)dp_conv1d_cl_in_rows(ns[k], K, S, C) * C ? x[q] * (1 + 0.1f * k) : NAN;
        }
        float *mscr = malloc(sizeof(float) * dp_conv1d_cl_scratch_floats(sum, C, OC, K, S));
        dp_nn_set_precision(DP_PREC_BF16, eb);
        dp_nn_bf16_const(wp, dp_conv1d_cl_weight_floats(OC, C, K, S));
        dp_conv1d_cl_relu_forward_many(ys, mscr, (const float *const *)xs, ns, cnt, wp, b, C, OC, K, S);
        dp_nn_bf16_forget(wp);
        dp_nn_set_precision(DP_PREC_FP32, eb);
        for (int k = 0; k < cnt; k++) {
            dp_conv1d_cl_relu_forward(y[0], scr, xs[k], wp, b, ns[k], C, OC, K, S);
            char what[64];
            snprintf(what, sizeof what, "conv cl many C %d K %d S %d n %d", C, K, S, ns[k]);
            check_bf16_close(what, ys[k], y[0], (size_t)ns[k] * OC, 2e-2);
            free(xs[k]), free(ys[k]);
        }
        free(mscr);
        free(x), free(w), free(b), free(wp), free(scr), free(xin), free(y[0]), free(y[1]);
    }
    dp_nn_set_precision(DP_PREC_FP32, eb);
}

/* The CNN's inference path (channels-last convolutions, Winograd for the
 * app CNN, fc1 by groups: dp_gemm_seq) in the model's bf16 against its
 * fp32: log-probabilities close, not equal; the process's precision
 * neither changed by it nor reaching it. */
static void test_model_inference(void)
{
    SKIP_WITHOUT_BF16();
    char eb[DP_ERRBUF_SIZE];
    dp_nn_set_precision(DP_PREC_FP32, eb); /* the macro's probe set bf16 */
    for (int task = 0; task < 2; task++) {
        dp_arch a;
        int V = task == DP_TASK_APP ? 15 : 11;
        dp_arch_default(&a, DP_MODEL_CNN, task, V);
        a.c1 = a.c2 = 32;
        dp_model *m = dp_model_create(&a, task, NULL, 5, eb);
        CHECK(m != NULL);
        if (!m)
            return;
        int B = 24;
        uint8_t *x = calloc((size_t)B, DP_VEC_LEN);
        dp_rng r;
        dp_rng_seed(&r, 13);
        for (int b = 0; b < B; b++) /* packets of different lengths */
            for (int k = 0; k < 40 + 60 * b; k++)
                x[(size_t)b * DP_VEC_LEN + k] = (uint8_t)dp_rng_below(&r, 256);
        float *lp[3];
        for (int p = 0; p < 2; p++) {
            CHECK(dp_model_set_precision(m, p ? DP_PREC_BF16 : DP_PREC_FP32, eb) == 0);
            CHECK_EQ_INT(dp_model_precision(m), p ? DP_PREC_BF16 : DP_PREC_FP32);
            lp[p] = malloc(sizeof(float) * (size_t)B * V);
            CHECK(dp_model_predict(m, x, B, lp[p], eb) == 0);
            CHECK_EQ_INT(dp_nn_get_precision(), DP_PREC_FP32); /* the model's, for its call only */
        }
        /* the process's bf16 does not reach an fp32 model's inference */
        dp_nn_set_precision(DP_PREC_BF16, eb);
        dp_model_set_precision(m, DP_PREC_FP32, eb);
        lp[2] = malloc(sizeof(float) * (size_t)B * V);
        CHECK(dp_model_predict(m, x, B, lp[2], eb) == 0);
        CHECK(memcmp(lp[2], lp[0], sizeof(float) * (size_t)B * V) == 0);
        dp_nn_set_precision(DP_PREC_FP32, eb);
        double e = 0;
        for (int i = 0; i < B * V; i++)
            e = fmax(e, fabs((double)lp[1][i] - lp[0][i]));
        if (!(e > 0 && e < 0.05))
            fprintf(stderr, "  task %d: max |log-prob difference| %.3g\n", task, e);
        CHECK(e > 0);
        CHECK(e < 0.05);
        free(lp[0]), free(lp[1]), free(lp[2]), free(x);
        dp_model_free(m);
    }
    dp_nn_set_precision(DP_PREC_FP32, eb);
}

int main(void)
{
    dp_test_prog = "test_bf16";
    DP_RUN(test_precision_words);
    DP_RUN(test_round);
    DP_RUN(test_to_bf16_lengths);
    DP_RUN(test_gemm_oracle);
    DP_RUN(test_gemm_const_operands);
    DP_RUN(test_conv_layers);
    DP_RUN(test_linear_and_seq_layers);
    DP_RUN(test_conv_cl);
    DP_RUN(test_model_inference);
    return dp_test_end();
}
