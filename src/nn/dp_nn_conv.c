/* dp_nn_conv: 1-d convolution (no padding) forward and backward.
 *
 * GEMM path (C*K > 16). Samples are processed in groups of G (G*LO about
 * 2048 columns, so that each GEMM is wide enough to keep every BLAS thread
 * busy). A group's inputs are unrolled by im2col into
 *   col [C*K, G*LO], col[c*K + k, i*LO + t] = x_i[c, t*S + k]
 * so that the whole group is one GEMM per direction:
 *   tmp[OC, G*LO]  = W[OC, C*K] @ col          (then bias/ReLU, scatter to out [G, OC, LO])
 *   dW[OC, C*K]   += dout_g[OC, G*LO] @ col^T  (dout_g = the group's dout gathered)
 *   dcol[C*K, G*LO] = W^T @ dout_g             (then col2im per sample -> dinp)
 * The GEMMs go to OpenBLAS (threaded by it); im2col/col2im are split over
 * channels with dp_nn_parallel_for when they are big enough to pay for it.
 *
 * Direct path (C*K <= 16: the first layer, C = 1). A GEMM with an inner
 * dimension of 4 or 5 wastes the BLAS, so the whole batch is unrolled
 * (col [B, C*K, LO], tiny) and vectorisable loops run split over output
 * channels (forward, dW, dbias) or samples (dinp).
 *
 * bf16 (dp_nn_set_precision): the GEMM path's shapes go to oneDNN's direct
 * bf16 convolutions instead (dp_nn_conv_bf16.c: no im2col), the bias
 * gradient staying a float32 sum here; any oneDNN failure falls back here.
 *
 * All reductions run in a fixed order: deterministic for a thread count
 * (the direct path and our own loops even for any thread count). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

#include "nn/dp_nn.h"
#include "nn/dp_nn_conv_bf16.h"

#include <assert.h>
#include <cblas.h>
#include <string.h>

/* C*K at or below this uses the direct loops instead of the BLAS. */
#define DIRECT_MAX_CK 16
/* passes over fewer floats than this stay on one thread */
#define PAR_MIN_FLOATS (1 << 16)
/* target GEMM width (columns) of a sample group */
#ifndef GROUP_COLS
#define GROUP_COLS 2048
#endif

int dp_conv1d_out_len(int L, int K, int S)
{
    return (L < K || K < 1 || S < 1) ? 0 : (L - K) / S + 1;
}

/* samples per GEMM group: about GROUP_COLS columns, groups balanced (16
 * samples of LO 495 make 4 groups of 4, not 5 + 5 + 5 + 1) */
static int group_size(int B, int LO)
{
    if (B < 1 || LO < 1)
        return 1;
    int g = (GROUP_COLS + LO - 1) / LO;
    if (g >= B)
        return B;
    int ngroups = (B + g - 1) / g;
    return (B + ngroups - 1) / ngroups;
}

/* the largest group_size(b, LO) over 1 <= b <= B: scratch sized for B then
 * serves every smaller batch too (group_size alone is not monotonic in B:
 * 40 samples make groups of 4 at LO 495, 39 make groups of 5) */
static int max_group_size(int B, int LO)
{
    if (B < 1 || LO < 1)
        return 1;
    int g = (GROUP_COLS + LO - 1) / LO;
    return g < B ? g : B;
}

size_t dp_conv1d_scratch_floats(int B, int C, int L, int OC, int K, int S)
{
    size_t LO = (size_t)dp_conv1d_out_len(L, K, S), CK = (size_t)C * K, n;
    if (CK <= DIRECT_MAX_CK)
        n = (size_t)(B > 0 ? B : 1) * CK * LO;
    else
        n = (size_t)max_group_size(B, (int)LO) * LO * (CK + (size_t)OC);
    return n ? n : 1;
}

/* ---- im2col / col2im ------------------------------------------------------
 * One sample: col rows are c*K + k with row stride ldc (>= LO), so that a
 * group of samples can share one col matrix side by side. */

typedef struct colctx {
    float *col;      /* [C*K, ldc] */
    float *x;        /* [C, L] (col2im: written) */
    const float *xc; /* [C, L] (im2col: read) */
    int C, L, K, S, LO;
    size_t ldc;
} colctx;

static void im2col_range(const colctx *c, int c0, int c1)
{
    int L = c->L, K = c->K, S = c->S, LO = c->LO;
    for (int ch = c0; ch < c1; ch++) {
        const float *restrict x = c->xc + (size_t)ch * L;
        for (int k = 0; k < K; k++) {
            float *restrict dst = c->col + ((size_t)ch * K + k) * c->ldc;
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

/* col [C*K, ldc] (first LO columns) <- x [C, L] */
static void im2col(float *col, size_t ldc, const float *x, int C, int L, int K, int S, int LO)
{
    colctx c = {.col = col, .xc = x, .C = C, .L = L, .K = K, .S = S, .LO = LO, .ldc = ldc};
    im2col_range(&c, 0, C);
}

static void col2im_range(const colctx *c, int c0, int c1)
{
    int L = c->L, K = c->K, S = c->S, LO = c->LO;
    for (int ch = c0; ch < c1; ch++) {
        float *restrict x = c->x + (size_t)ch * L;
        memset(x, 0, (size_t)L * sizeof(float));
        for (int k = 0; k < K; k++) {
            const float *restrict src = c->col + ((size_t)ch * K + k) * c->ldc;
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

/* x [C, L] (overwritten) <- col [C*K, ldc] summed over overlapping taps */
static void col2im(float *x, const float *col, size_t ldc, int C, int L, int K, int S, int LO)
{
    colctx c = {.col = (float *)col, .x = x, .C = C, .L = L, .K = K, .S = S, .LO = LO, .ldc = ldc};
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

/* ---- direct path (C*K <= DIRECT_MAX_CK) ------------------------------------- */

typedef struct directctx {
    float *out;         /* [B, OC, LO] (forward) */
    float *dinp;        /* [B, C, L] (backward) */
    float *dweight;     /* [OC, CK] */
    float *dbias;       /* [OC] */
    float *col;         /* [B, CK, LO] */
    const float *inp;   /* [B, C, L] */
    const float *dout;  /* [B, OC, LO] */
    const float *w;     /* [OC, CK] */
    const float *bias;  /* [OC] or NULL */
    int B, C, L, K, S, OC, CK, LO, relu;
} directctx;

static void direct_im2col_task(void *ctx, int i, int n)
{
    const directctx *d = ctx;
    for (int b = d->B * i / n; b < d->B * (i + 1) / n; b++)
        im2col(d->col + (size_t)b * d->CK * d->LO, (size_t)d->LO, d->inp + (size_t)b * d->C * d->L, d->C, d->L,
               d->K, d->S, d->LO);
}

/* out[b, o, :] for o in this chunk, all b */
static void direct_fwd_task(void *ctx, int i, int n)
{
    const directctx *d = ctx;
    int CK = d->CK, LO = d->LO;
    for (int b = 0; b < d->B; b++) {
        const float *col = d->col + (size_t)b * CK * LO;
        for (int o = d->OC * i / n; o < d->OC * (i + 1) / n; o++) {
            float *restrict y = d->out + ((size_t)b * d->OC + o) * LO;
            float b0 = d->bias ? d->bias[o] : 0.0f;
            for (int t = 0; t < LO; t++)
                y[t] = b0;
            for (int j = 0; j < CK; j++) {
                float wv = d->w[(size_t)o * CK + j];
                const float *restrict cr = col + (size_t)j * LO;
                for (int t = 0; t < LO; t++)
                    y[t] += wv * cr[t];
            }
            if (d->relu)
                for (int t = 0; t < LO; t++)
                    y[t] = y[t] > 0.0f ? y[t] : 0.0f;
        }
    }
}

/* dweight[o, :], dbias[o] for o in this chunk, summed over b in order */
static void direct_dw_task(void *ctx, int i, int n)
{
    const directctx *d = ctx;
    int CK = d->CK, LO = d->LO;
    for (int o = d->OC * i / n; o < d->OC * (i + 1) / n; o++)
        for (int b = 0; b < d->B; b++) {
            const float *g = d->dout + ((size_t)b * d->OC + o) * LO;
            if (d->dbias)
                d->dbias[o] += sum8(g, LO);
            if (d->dweight)
                for (int j = 0; j < CK; j++)
                    d->dweight[(size_t)o * CK + j] += dot8(g, d->col + ((size_t)b * CK + j) * LO, LO);
        }
}

/* dinp[b] for b in this chunk: dcol = W^T dout (into col[b]), then col2im */
static void direct_dx_task(void *ctx, int i, int n)
{
    const directctx *d = ctx;
    int CK = d->CK, LO = d->LO;
    for (int b = d->B * i / n; b < d->B * (i + 1) / n; b++) {
        float *dcol = d->col + (size_t)b * CK * LO;
        memset(dcol, 0, (size_t)CK * LO * sizeof(float));
        for (int o = 0; o < d->OC; o++) {
            const float *restrict g = d->dout + ((size_t)b * d->OC + o) * LO;
            for (int j = 0; j < CK; j++) {
                float wv = d->w[(size_t)o * CK + j];
                float *restrict dc = dcol + (size_t)j * LO;
                for (int t = 0; t < LO; t++)
                    dc[t] += wv * g[t];
            }
        }
        col2im(d->dinp + (size_t)b * d->C * d->L, dcol, (size_t)LO, d->C, d->L, d->K, d->S, LO);
    }
}

/* chunks worth splitting `work` floats of output over */
static int nchunks(size_t work, int max)
{
    int nt = dp_nn_get_threads();
    if (work < PAR_MIN_FLOATS)
        return 1;
    return nt < max ? nt : max;
}

/* ---- GEMM path helpers ----------------------------------------------------------
 * Each pass over a group is one dp_nn_parallel_for, split over channels
 * (im2col, col2im) or output channels (scatter, gather + dbias), so every
 * element is written by one thread and every sum keeps its order. */

typedef struct groupctx {
    float *col;        /* [CK, ld] */
    float *tmp;        /* [OC, ld]: GEMM output (forward) or gathered dout (backward) */
    float *out;        /* [g, OC, LO] (forward) */
    float *dinp;       /* [g, C, L] (backward) */
    float *dbias;      /* [OC] or NULL (backward) */
    const float *inp;  /* [g, C, L] */
    const float *dout; /* [g, OC, LO] (backward) */
    const float *bias; /* [OC] or NULL (forward) */
    size_t ld;
    int g, C, L, K, S, LO, OC, relu;
} groupctx;

static int range_lo(int n, int i, int parts) { return (int)((long)n * i / parts); }

static void grp_im2col_task(void *ctx, int i, int n)
{
    const groupctx *q = ctx;
    for (int s = 0; s < q->g; s++) {
        colctx c = {.col = q->col + (size_t)s * q->LO, .xc = q->inp + (size_t)s * q->C * q->L, .C = q->C, .L = q->L,
                    .K = q->K, .S = q->S, .LO = q->LO, .ldc = q->ld};
        im2col_range(&c, range_lo(q->C, i, n), range_lo(q->C, i + 1, n));
    }
}

static void grp_col2im_task(void *ctx, int i, int n)
{
    const groupctx *q = ctx;
    for (int s = 0; s < q->g; s++) {
        colctx c = {.col = q->col + (size_t)s * q->LO, .x = q->dinp + (size_t)s * q->C * q->L, .C = q->C, .L = q->L,
                    .K = q->K, .S = q->S, .LO = q->LO, .ldc = q->ld};
        col2im_range(&c, range_lo(q->C, i, n), range_lo(q->C, i + 1, n));
    }
}

/* out[s, o, :] = act(tmp[o, s*LO : (s+1)*LO] + bias[o]) */
static void grp_scatter_task(void *ctx, int i, int n)
{
    const groupctx *q = ctx;
    int LO = q->LO;
    for (int s = 0; s < q->g; s++)
        for (int o = range_lo(q->OC, i, n); o < range_lo(q->OC, i + 1, n); o++) {
            const float *restrict src = q->tmp + (size_t)o * q->ld + (size_t)s * LO;
            float *restrict y = q->out + ((size_t)s * q->OC + o) * LO;
            float b0 = q->bias ? q->bias[o] : 0.0f;
            if (q->relu)
                for (int t = 0; t < LO; t++) {
                    float v = src[t] + b0;
                    y[t] = v > 0.0f ? v : 0.0f;
                }
            else
                for (int t = 0; t < LO; t++)
                    y[t] = src[t] + b0;
        }
}

/* tmp[o, s*LO : (s+1)*LO] = dout[s, o, :]; dbias[o] += sum_t dout[s, o, t] (s in order) */
static void grp_gather_task(void *ctx, int i, int n)
{
    const groupctx *q = ctx;
    int LO = q->LO;
    for (int o = range_lo(q->OC, i, n); o < range_lo(q->OC, i + 1, n); o++)
        for (int s = 0; s < q->g; s++) {
            const float *src = q->dout + ((size_t)s * q->OC + o) * LO;
            if (q->tmp)
                memcpy(q->tmp + (size_t)o * q->ld + (size_t)s * LO, src, (size_t)LO * sizeof(float));
            if (q->dbias)
                q->dbias[o] += sum8(src, LO);
        }
}

/* threads for a pass over a group touching `floats` floats */
static int grp_threads(size_t floats)
{
    return floats >= PAR_MIN_FLOATS ? dp_nn_get_threads() : 1;
}

/* ---- forward --------------------------------------------------------------- */

static void conv_forward(float *out, float *scratch, const float *inp, const float *weight, const float *bias,
                         int B, int C, int L, int OC, int K, int S, int relu)
{
    // inp [B, C, L], weight [OC, C, K], bias [OC] -> out [B, OC, LO]
    int LO = dp_conv1d_out_len(L, K, S);
    assert(LO > 0);
    int CK = C * K;
    if (CK <= DIRECT_MAX_CK) {
        directctx d = {.out = out, .col = scratch, .inp = inp, .w = weight, .bias = bias, .B = B, .C = C, .L = L,
                       .K = K, .S = S, .OC = OC, .CK = CK, .LO = LO, .relu = relu};
        dp_nn_parallel_for(nchunks((size_t)B * CK * LO, B), direct_im2col_task, &d);
        dp_nn_parallel_for(nchunks((size_t)B * OC * LO, OC), direct_fwd_task, &d);
        return;
    }
    if (dp_nn_get_precision() == DP_PREC_BF16 &&
        dp_conv1d_bf16_forward(out, inp, weight, bias, B, C, L, OC, K, S, relu) == 0)
        return;
    int G = group_size(B, LO);
    size_t ld = (size_t)G * LO;
    float *col = scratch, *tmp = scratch + (size_t)CK * ld; /* col [CK, G*LO], tmp [OC, G*LO] */
    for (int b0 = 0; b0 < B; b0 += G) {
        int g = B - b0 < G ? B - b0 : G;
        groupctx q = {.col = col, .tmp = tmp, .out = out + (size_t)b0 * OC * LO, .inp = inp + (size_t)b0 * C * L,
                      .bias = bias, .ld = ld, .g = g, .C = C, .L = L, .K = K, .S = S, .LO = LO, .OC = OC, .relu = relu};
        dp_nn_parallel_for(grp_threads((size_t)g * CK * LO), grp_im2col_task, &q);
        /* columns of a short last group beyond g*LO are stale but never read back */
        dp_nn_gemm(0, 0, OC, g * LO, CK, weight, CK, col, (int)ld, 0.0f, tmp, (int)ld);
        dp_nn_parallel_for(grp_threads((size_t)g * OC * LO), grp_scatter_task, &q);
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
    // -> dinp [B, C, L] (overwritten), dweight [OC, C, K] +=, dbias [OC] +=
    int LO = dp_conv1d_out_len(L, K, S);
    assert(LO > 0);
    int CK = C * K;
    if (CK <= DIRECT_MAX_CK) {
        directctx d = {.dinp = dinp, .dweight = dweight, .dbias = dbias, .col = scratch, .inp = inp, .dout = dout,
                       .w = weight, .B = B, .C = C, .L = L, .K = K, .S = S, .OC = OC, .CK = CK, .LO = LO};
        if (dweight || dbias) {
            if (dweight)
                dp_nn_parallel_for(nchunks((size_t)B * CK * LO, B), direct_im2col_task, &d);
            dp_nn_parallel_for(nchunks((size_t)B * OC * LO, OC), direct_dw_task, &d);
        }
        if (dinp)
            dp_nn_parallel_for(nchunks((size_t)B * OC * LO, B), direct_dx_task, &d);
        return;
    }
    if ((dinp || dweight) && dp_nn_get_precision() == DP_PREC_BF16 &&
        dp_conv1d_bf16_backward(dinp, dweight, dout, inp, weight, B, C, L, OC, K, S) == 0) {
        if (dbias) { /* float32, in the order of the path below */
            groupctx q = {.dbias = dbias, .dout = dout, .g = B, .LO = LO, .OC = OC};
            dp_nn_parallel_for(grp_threads((size_t)B * OC * LO), grp_gather_task, &q);
        }
        return;
    }
    int G = group_size(B, LO);
    size_t ld = (size_t)G * LO;
    float *col = scratch, *dyg = scratch + (size_t)CK * ld; /* col/dcol [CK, G*LO], dout_g [OC, G*LO] */
    for (int b0 = 0; b0 < B; b0 += G) {
        int g = B - b0 < G ? B - b0 : G;
        int need_dyg = dweight || dinp;
        groupctx q = {.col = col, .tmp = need_dyg ? dyg : NULL, .dinp = dinp ? dinp + (size_t)b0 * C * L : NULL,
                      .dbias = dbias, .inp = inp + (size_t)b0 * C * L, .dout = dout + (size_t)b0 * OC * LO, .ld = ld,
                      .g = g, .C = C, .L = L, .K = K, .S = S, .LO = LO, .OC = OC};
        if (!need_dyg && !dbias)
            continue;
        dp_nn_parallel_for(grp_threads((size_t)g * OC * LO), grp_gather_task, &q);
        if (dweight) {
            dp_nn_parallel_for(grp_threads((size_t)g * CK * LO), grp_im2col_task, &q);
            dp_nn_gemm(0, 1, OC, CK, g * LO, dyg, (int)ld, col, (int)ld, 1.0f, dweight, CK);
        }
        if (dinp) {
            dp_nn_gemm(1, 0, CK, g * LO, OC, weight, CK, dyg, (int)ld, 0.0f, col, (int)ld);
            dp_nn_parallel_for(grp_threads((size_t)g * CK * LO), grp_col2im_task, &q);
        }
    }
}
