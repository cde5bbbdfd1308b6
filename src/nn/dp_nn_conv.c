/* dp_nn_conv: 1-d convolution (no padding) forward and backward.
 *
 * Per sample, the input [C, L] is unrolled by im2col into col [C*K, LO]
 * (col[(c*K + k), t] = x[c, t*S + k]) so that the convolution is one GEMM:
 *   out[OC, LO] = W[OC, C*K] @ col[C*K, LO]
 *   dW[OC, C*K] += dout[OC, LO] @ col^T
 *   dcol[C*K, LO] = W^T @ dout  -> col2im -> dinp
 * The GEMMs go to OpenBLAS (threaded by it); im2col/col2im are split over
 * channels with dp_nn_parallel_for when they are big enough to pay for it.
 * When C*K is tiny (the first layer, C = 1) a GEMM with an inner dimension
 * of 4 or 5 wastes the BLAS, so a direct, vectorisable loop is used.
 * All reductions run in a fixed order: deterministic for a thread count. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

#include "nn/dp_nn.h"

#include <assert.h>
#include <cblas.h>
#include <string.h>

/* C*K at or below this uses the direct loops instead of the BLAS. */
#define DIRECT_MAX_CK 16
/* im2col/col2im of fewer floats than this stay on one thread. */
#define PAR_MIN_FLOATS (1 << 16)

int dp_conv1d_out_len(int L, int K, int S)
{
    return (L < K || K < 1 || S < 1) ? 0 : (L - K) / S + 1;
}

size_t dp_conv1d_scratch_floats(int B, int C, int L, int OC, int K, int S)
{
    (void)B;
    (void)OC;
    size_t n = (size_t)C * K * (size_t)dp_conv1d_out_len(L, K, S);
    return n ? n : 1;
}

/* ---- im2col / col2im ------------------------------------------------------ */

typedef struct colctx {
    float *col;      /* [C*K, LO] */
    float *x;        /* [C, L] (col2im: written) */
    const float *xc; /* [C, L] (im2col: read) */
    int C, L, K, S, LO;
} colctx;

static void im2col_range(const colctx *c, int c0, int c1)
{
    int L = c->L, K = c->K, S = c->S, LO = c->LO;
    for (int ch = c0; ch < c1; ch++) {
        const float *restrict x = c->xc + (size_t)ch * L;
        for (int k = 0; k < K; k++) {
            float *restrict dst = c->col + ((size_t)ch * K + k) * LO;
            if (S == 1) {
                memcpy(dst, x + k, (size_t)LO * sizeof(float));
            } else {
                const float *restrict src = x + k;
                for (int t = 0; t < LO; t++)
                    dst[t] = src[(size_t)t * S];
            }
        }
    }
}

static void im2col_task(void *ctx, int i, int n)
{
    const colctx *c = ctx;
    im2col_range(c, (int)((long)c->C * i / n), (int)((long)c->C * (i + 1) / n));
}

/* col [C*K, LO] <- x [C, L] */
static void im2col(float *col, const float *x, int C, int L, int K, int S, int LO)
{
    colctx c = {.col = col, .xc = x, .C = C, .L = L, .K = K, .S = S, .LO = LO};
    int nt = dp_nn_get_threads();
    if (nt > 1 && (size_t)C * K * LO >= PAR_MIN_FLOATS && C >= nt)
        dp_nn_parallel_for(nt, im2col_task, &c);
    else
        im2col_range(&c, 0, C);
}

static void col2im_range(const colctx *c, int c0, int c1)
{
    int L = c->L, K = c->K, S = c->S, LO = c->LO;
    for (int ch = c0; ch < c1; ch++) {
        float *restrict x = c->x + (size_t)ch * L;
        memset(x, 0, (size_t)L * sizeof(float));
        for (int k = 0; k < K; k++) {
            const float *restrict src = c->col + ((size_t)ch * K + k) * LO;
            float *restrict dst = x + k;
            if (S == 1) {
                for (int t = 0; t < LO; t++)
                    dst[t] += src[t];
            } else {
                for (int t = 0; t < LO; t++)
                    dst[(size_t)t * S] += src[t];
            }
        }
    }
}

static void col2im_task(void *ctx, int i, int n)
{
    const colctx *c = ctx;
    col2im_range(c, (int)((long)c->C * i / n), (int)((long)c->C * (i + 1) / n));
}

/* x [C, L] (overwritten) <- sum of col [C*K, LO] over overlapping taps */
static void col2im(float *x, const float *col, int C, int L, int K, int S, int LO)
{
    colctx c = {.col = (float *)col, .x = x, .C = C, .L = L, .K = K, .S = S, .LO = LO};
    int nt = dp_nn_get_threads();
    if (nt > 1 && (size_t)C * K * LO >= PAR_MIN_FLOATS && C >= nt)
        dp_nn_parallel_for(nt, col2im_task, &c);
    else
        col2im_range(&c, 0, C);
}

/* Sum of n floats in a fixed order, 8 lanes (vectorises without -ffast-math). */
static float sum8(const float *restrict a, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[i + j];
    for (int j = 0; i < n; i++, j++)
        acc[j] += a[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static float dot8(const float *restrict a, const float *restrict b, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    for (int j = 0; i < n; i++, j++)
        acc[j] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* ---- forward --------------------------------------------------------------- */

typedef struct directctx {
    float *out;         /* [OC, LO] */
    const float *col;   /* [CK, LO] */
    const float *w;     /* [OC, CK] */
    const float *bias;  /* [OC] or NULL */
    int OC, CK, LO, relu;
} directctx;

static void direct_fwd_range(const directctx *d, int o0, int o1)
{
    int CK = d->CK, LO = d->LO;
    for (int o = o0; o < o1; o++) {
        float *restrict y = d->out + (size_t)o * LO;
        float b0 = d->bias ? d->bias[o] : 0.0f;
        for (int t = 0; t < LO; t++)
            y[t] = b0;
        for (int j = 0; j < CK; j++) {
            float wv = d->w[(size_t)o * CK + j];
            const float *restrict cr = d->col + (size_t)j * LO;
            for (int t = 0; t < LO; t++)
                y[t] += wv * cr[t];
        }
        if (d->relu)
            for (int t = 0; t < LO; t++)
                y[t] = y[t] > 0.0f ? y[t] : 0.0f;
    }
}

/* bias (optional) and ReLU (optional) over out [OC, LO] in place */
static void bias_relu(float *out, const float *bias, int OC, int LO, int relu)
{
    for (int o = 0; o < OC; o++) {
        float *restrict y = out + (size_t)o * LO;
        float b0 = bias ? bias[o] : 0.0f;
        if (relu)
            for (int t = 0; t < LO; t++) {
                float v = y[t] + b0;
                y[t] = v > 0.0f ? v : 0.0f;
            }
        else if (bias)
            for (int t = 0; t < LO; t++)
                y[t] += b0;
    }
}

static void conv_forward(float *out, float *scratch, const float *inp, const float *weight, const float *bias,
                         int B, int C, int L, int OC, int K, int S, int relu)
{
    // inp [B, C, L], weight [OC, C, K], bias [OC] -> out [B, OC, LO]; scratch [C*K, LO]
    int LO = dp_conv1d_out_len(L, K, S);
    assert(LO > 0);
    int CK = C * K;
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * C * L;
        float *y = out + (size_t)b * OC * LO;
        im2col(scratch, x, C, L, K, S, LO);
        if (CK <= DIRECT_MAX_CK) {
            directctx d = {y, scratch, weight, bias, OC, CK, LO, relu};
            direct_fwd_range(&d, 0, OC);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, LO, CK, 1.0f, weight, CK, scratch, LO,
                        0.0f, y, LO);
            bias_relu(y, bias, OC, LO, relu);
        }
    }
}

void dp_conv1d_forward(float *out, float *scratch, const float *inp, const float *weight, const float *bias,
                       int B, int C, int L, int OC, int K, int S)
{
    conv_forward(out, scratch, inp, weight, bias, B, C, L, OC, K, S, 0);
}

void dp_conv1d_relu_forward(float *out, float *scratch, const float *inp, const float *weight,
                            const float *bias, int B, int C, int L, int OC, int K, int S)
{
    conv_forward(out, scratch, inp, weight, bias, B, C, L, OC, K, S, 1);
}

/* ---- backward ---------------------------------------------------------------- */

void dp_conv1d_backward(float *dinp, float *dweight, float *dbias, float *scratch, const float *dout,
                        const float *inp, const float *weight, int B, int C, int L, int OC, int K, int S)
{
    // dout [B, OC, LO], inp [B, C, L], weight [OC, C, K]
    // -> dinp [B, C, L] (overwritten), dweight [OC, C, K] +=, dbias [OC] +=; scratch [C*K, LO]
    int LO = dp_conv1d_out_len(L, K, S);
    assert(LO > 0);
    int CK = C * K;
    for (int b = 0; b < B; b++) {
        const float *dy = dout + (size_t)b * OC * LO;
        if (dbias)
            for (int o = 0; o < OC; o++)
                dbias[o] += sum8(dy + (size_t)o * LO, LO);
        if (dweight) {
            im2col(scratch, inp + (size_t)b * C * L, C, L, K, S, LO);
            if (CK <= DIRECT_MAX_CK) {
                for (int o = 0; o < OC; o++)
                    for (int j = 0; j < CK; j++)
                        dweight[(size_t)o * CK + j] += dot8(dy + (size_t)o * LO, scratch + (size_t)j * LO, LO);
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, CK, LO, 1.0f, dy, LO, scratch, LO, 1.0f,
                            dweight, CK);
            }
        }
        if (dinp) {
            /* dcol [CK, LO] = W^T [CK, OC] @ dout [OC, LO], into scratch */
            if (CK <= DIRECT_MAX_CK) {
                memset(scratch, 0, (size_t)CK * LO * sizeof(float));
                for (int o = 0; o < OC; o++) {
                    const float *restrict g = dy + (size_t)o * LO;
                    for (int j = 0; j < CK; j++) {
                        float wv = weight[(size_t)o * CK + j];
                        float *restrict dc = scratch + (size_t)j * LO;
                        for (int t = 0; t < LO; t++)
                            dc[t] += wv * g[t];
                    }
                }
            } else {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CK, LO, OC, 1.0f, weight, CK, dy, LO, 0.0f,
                            scratch, LO);
            }
            col2im(dinp + (size_t)b * C * L, scratch, C, L, K, S, LO);
        }
    }
}
