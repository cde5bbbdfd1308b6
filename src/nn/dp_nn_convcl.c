/* dp_nn_convcl: channels-last 1-d convolution + ReLU for inference, one
 * sample or several on one thread (the data-parallel inference path: each
 * thread takes whole samples, so nothing here synchronises or allocates;
 * the Winograd form runs its GEMMs over all the samples of a call).
 *
 * Layout: a signal is position-major, inp [rows, C] (inp[t*C + c]), and so
 * is the output, out [n, OC]. Channels-last turns the layer into plain
 * matrix products over the signal as it lies in memory, no im2col:
 *   - GEMM path: out[t, :] = sum_k inp[t*S + k, :] @ W_k^T, one GEMM per
 *     tap k over the rows t*S + k (row stride S*C, a strided view of inp),
 *     W_k [OC, C] the tap's slice of the packed weight [OC, K, C];
 *   - Winograd path (K = 5, S = 1): F(4, 5) over tiles of 8 positions,
 *     2.5x fewer multiply-adds: V[xi] [T, C] = BT d (vector ops over the
 *     channels), eight GEMMs M[xi] [T, OC] = V[xi] @ U[xi]^T, then
 *     out = relu(bias + AT M) (Lavin & Gray 2016, 1-D; points 0, +-1, +-2,
 *     +-1/2 and infinity). The transforms are exact in binary except G's
 *     ninths; the outputs differ from the GEMM path by about 1e-6 relative;
 *   - direct path (C*K <= 16, a first layer on a raw signal): out[t, :] =
 *     bias + sum_j inp[..] * Wt[j, :], vector ops over the output channels.
 * The GEMMs go through dp_gemm_seq (single-threaded; oneDNN when built
 * with it). In bf16 mode the Winograd input transform writes V in bf16
 * itself, for bf16 x bf16 GEMMs (dp_gemm_seq_bf16_pre): no conversion pass
 * over V, and half its bytes. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

#include "nn/dp_nn.h"

#include <assert.h>
#include <string.h>

#define DIRECT_MAX_CK 16
#define WT 8 /* Winograd tile inputs */
#define WM 4 /* tile outputs */

/* AT (4 x 8), written out in wino_out_tile:
 *   {1, 1, 1, 1, 1, 1, 1, 0},
 *   {0, 1, -1, 2, -2, 0.5, -0.5, 0},
 *   {0, 1, 1, 4, 4, 0.25, 0.25, 0},
 *   {0, 1, -1, 8, -8, 0.125, -0.125, 1} */
static const double wino_g[WT][5] = {
    {-1, 0, 0, 0, 0},
    {-2 / 9., -2 / 9., -2 / 9., -2 / 9., -2 / 9.},
    {-2 / 9., 2 / 9., -2 / 9., 2 / 9., -2 / 9.},
    {1 / 90., 2 / 90., 4 / 90., 8 / 90., 16 / 90.},
    {1 / 90., -2 / 90., 4 / 90., -8 / 90., 16 / 90.},
    {64 / 90., 32 / 90., 16 / 90., 8 / 90., 4 / 90.},
    {64 / 90., -32 / 90., 16 / 90., -8 / 90., 4 / 90.},
    {0, 0, 0, 0, 1},
};
/* BT (8 x 8), written out in wino_in_tile:
 *   {-1, 0, 5.25, 0, -5.25, 0, 1, 0}
 *   {0, 1, 1, -4.25, -4.25, 1, 1, 0}
 *   {0, -1, 1, 4.25, -4.25, -1, 1, 0}
 *   {0, 0.5, 0.25, -2.5, -1.25, 2, 1, 0}
 *   {0, -0.5, 0.25, 2.5, -1.25, -2, 1, 0}
 *   {0, 2, 4, -2.5, -5, 0.5, 1, 0}
 *   {0, -2, 4, 2.5, -5, -0.5, 1, 0}
 *   {0, -1, 0, 5.25, 0, -5.25, 0, 1} */

/* The elementwise loops here are what is left besides the GEMMs: compiled
 * for AVX-512 and AVX2 too, picked at load time by the CPU (the build's
 * baseline is x86-64-v2, 128-bit vectors). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__) /* their resolvers would run before the sanitizers start */
#define HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HOT
#endif

enum { PATH_DIRECT, PATH_WINO, PATH_GEMM };

static int cl_path(int C, int K, int S)
{
    if (C * K <= DIRECT_MAX_CK)
        return PATH_DIRECT;
    return (K == 5 && S == 1) ? PATH_WINO : PATH_GEMM;
}

size_t dp_conv1d_cl_weight_floats(int OC, int C, int K, int S)
{
    return cl_path(C, K, S) == PATH_WINO ? (size_t)WT * OC * C : (size_t)OC * C * K;
}

void dp_conv1d_cl_pack(float *wp, const float *weight, int OC, int C, int K, int S)
{
    // weight [OC, C, K] -> direct: [C*K, OC]; Winograd: U [8, OC, C]; GEMM: [OC, K, C]
    switch (cl_path(C, K, S)) {
    case PATH_DIRECT:
        for (int o = 0; o < OC; o++)
            for (int j = 0; j < C * K; j++)
                wp[(size_t)j * OC + o] = weight[(size_t)o * C * K + j];
        break;
    case PATH_WINO:
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++) {
                const float *g = weight + ((size_t)o * C + c) * K;
                for (int x = 0; x < WT; x++) {
                    double v = 0;
                    for (int k = 0; k < 5; k++)
                        v += wino_g[x][k] * g[k];
                    wp[((size_t)x * OC + o) * C + c] = (float)v;
                }
            }
        break;
    default:
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++)
                for (int k = 0; k < K; k++)
                    wp[((size_t)o * K + k) * C + c] = weight[((size_t)o * C + c) * K + k];
    }
}

int dp_conv1d_cl_in_rows(int n, int K, int S, int C)
{
    if (n <= 0)
        return 0;
    if (cl_path(C, K, S) == PATH_WINO)
        return WM * ((n + WM - 1) / WM) + WT - WM;
    return S * (n - 1) + K;
}

size_t dp_conv1d_cl_scratch_floats(int n, int C, int OC, int K, int S)
{
    if (cl_path(C, K, S) == PATH_DIRECT)
        return (size_t)OC; /* zeros for a NULL bias */
    if (cl_path(C, K, S) != PATH_WINO)
        return 1;
    /* float32: V, M; bf16: M, a tile's rows [8, C], V in bf16; both: a last tile [4, OC], zeros [OC] */
    size_t T = (size_t)(n + WM - 1) / WM;
    return T ? (size_t)WT * T * ((size_t)C + OC) + (size_t)WT * C + (size_t)(WM + 1) * OC : 1;
}

HOT static void relu_bias_rows(float *out, const float *bias, int n, int OC)
{
    for (int t = 0; t < n; t++) {
        float *restrict y = out + (size_t)t * OC;
        if (bias)
            for (int o = 0; o < OC; o++)
                y[o] += bias[o];
        for (int o = 0; o < OC; o++)
            y[o] = y[o] > 0.0f ? y[o] : 0.0f;
    }
}

/* one output row of the direct path: y [OC] = relu(bias + sum_j xv[j] w[j, :]),
 * written out for the first layers' 4 and 5 taps so that the o loop
 * vectorises with its sum in registers */
static inline __attribute__((always_inline)) void direct_row(float *restrict y, const float *xv, const float *restrict wp,
                              const float *restrict bias, int CK, int OC)
{
    const float *restrict w0 = wp, *restrict w1 = wp + OC, *restrict w2 = wp + 2 * OC, *restrict w3 = wp + 3 * OC;
    if (CK == 4) {
        float x0 = xv[0], x1 = xv[1], x2 = xv[2], x3 = xv[3];
        for (int o = 0; o < OC; o++) {
            float v = bias[o] + x0 * w0[o] + x1 * w1[o] + x2 * w2[o] + x3 * w3[o];
            y[o] = v > 0.0f ? v : 0.0f;
        }
    } else if (CK == 5) {
        const float *restrict w4 = wp + 4 * OC;
        float x0 = xv[0], x1 = xv[1], x2 = xv[2], x3 = xv[3], x4 = xv[4];
        for (int o = 0; o < OC; o++) {
            float v = bias[o] + x0 * w0[o] + x1 * w1[o] + x2 * w2[o] + x3 * w3[o] + x4 * w4[o];
            y[o] = v > 0.0f ? v : 0.0f;
        }
    } else {
        memcpy(y, bias, sizeof(float) * (size_t)OC);
        for (int j = 0; j < CK; j++)
            for (int o = 0; o < OC; o++)
                y[o] += xv[j] * wp[(size_t)j * OC + o];
        for (int o = 0; o < OC; o++)
            y[o] = y[o] > 0.0f ? y[o] : 0.0f;
    }
}

HOT static void direct_forward(float *out, const float *inp, const float *wp, const float *bias, float *zeros,
                               int n, int C, int OC, int K, int S)
{
    int CK = C * K;
    float xv[DIRECT_MAX_CK];
    if (!bias) { /* the scratch holds OC zeros */
        memset(zeros, 0, sizeof(float) * (size_t)OC);
        bias = zeros;
    }
    for (int t = 0; t < n; t++) {
        const float *x = inp + (size_t)t * S * C; /* rows t*S .. t*S + K - 1 */
        for (int j = 0; j < CK; j++)
            xv[j] = x[(size_t)(j % K) * C + j / K]; /* j = c*K + k: inp[(t*S + k)*C + c] */
        direct_row(out + (size_t)t * OC, xv, wp, bias, CK, OC);
    }
}

/* v[xi] [C] = row xi of BT applied to the tile's 8 input rows d [8, C], all
 * eight rows in one pass over the channels (each input read once), with
 * BT's zeros and the rows' shared terms taken out: rows 1-2, 3-4 and 5-6
 * are s + t and s - t. */
HOT static void wino_in_tile(float *restrict v0, float *restrict v1, float *restrict v2, float *restrict v3,
                             float *restrict v4, float *restrict v5, float *restrict v6, float *restrict v7,
                             const float *restrict d, int C)
{
    for (int c = 0; c < C; c++) {
        float d0 = d[c], d1 = d[C + c], d2 = d[2 * C + c], d3 = d[3 * C + c], d4 = d[4 * C + c];
        float d5 = d[5 * C + c], d6 = d[6 * C + c], d7 = d[7 * C + c];
        v0[c] = (d6 - d0) + 5.25f * (d2 - d4);
        v7[c] = (d7 - d1) + 5.25f * (d3 - d5);
        float s = (d2 + d6) - 4.25f * d4, t = (d1 + d5) - 4.25f * d3;
        v1[c] = s + t;
        v2[c] = s - t;
        s = (0.25f * d2 + d6) - 1.25f * d4, t = (0.5f * d1 + 2.0f * d5) - 2.5f * d3;
        v3[c] = s + t;
        v4[c] = s - t;
        s = (4.0f * d2 + d6) - 5.0f * d4, t = (2.0f * d1 + 0.5f * d5) - 2.5f * d3;
        v5[c] = s + t;
        v6[c] = s - t;
    }
}

/* out rows 4 tile .. (up to n) = relu(bias + AT m), m[xi] the tile's GEMM
 * rows [OC]: the four rows in one pass over the channels (each m read
 * once), with AT's zeros and shared terms taken out (AT's columns 1-2, 3-4
 * and 5-6 are pairs +-1, +-2^k, +-2^-k). */
HOT static void wino_out_tile(float *restrict y0, float *restrict y1, float *restrict y2, float *restrict y3,
                              const float *restrict m0, const float *restrict m1, const float *restrict m2,
                              const float *restrict m3, const float *restrict m4, const float *restrict m5,
                              const float *restrict m6, const float *restrict m7, const float *restrict bias, int OC)
{
    for (int o = 0; o < OC; o++) {
        float b = bias[o];
        float s12 = m1[o] + m2[o], d12 = m1[o] - m2[o], s34 = m3[o] + m4[o], d34 = m3[o] - m4[o];
        float s56 = m5[o] + m6[o], d56 = m5[o] - m6[o];
        float v0 = b + m0[o] + s12 + s34 + s56;
        float v1 = b + d12 + 2.0f * d34 + 0.5f * d56;
        float v2 = b + s12 + 4.0f * s34 + 0.25f * s56;
        float v3 = b + d12 + 8.0f * d34 + 0.125f * d56 + m7[o];
        y0[o] = v0 > 0.0f ? v0 : 0.0f;
        y1[o] = v1 > 0.0f ? v1 : 0.0f;
        y2[o] = v2 > 0.0f ? v2 : 0.0f;
        y3[o] = v3 > 0.0f ? v3 : 0.0f;
    }
}

/* The Winograd form over `count` signals at once: their tiles are the rows
 * of one V and one M (signal s's from row g0 = the tiles of the signals
 * before it), so the eight GEMMs are as tall as all the signals together:
 * short packets no longer make small GEMMs, each a call's fixed cost. */
static int tiles_of(const int *ns, int count)
{
    int T = 0;
    for (int s = 0; s < count; s++)
        T += (ns[s] + WM - 1) / WM;
    return T;
}

/* every signal's outputs from M [8, T, OC] (its tiles from row g0 on); a
 * last tile past the signal's end goes through `part` [4, OC], and a NULL
 * bias reads `zeros` [OC] */
static void wino_out_all(float *const *outs, const float *M, const int *ns, int count, int T, const float *bias,
                         float *part, float *zeros, int OC)
{
    if (!bias) {
        memset(zeros, 0, sizeof(float) * (size_t)OC);
        bias = zeros;
    }
    for (int s = 0, g = 0; s < count; s++)
        for (int tile = 0; tile < (ns[s] + WM - 1) / WM; tile++, g++) {
            const float *m = M + (size_t)g * OC;
            size_t plane = (size_t)T * OC;
            int rows = ns[s] - WM * tile;
            float *y = rows >= WM ? outs[s] + (size_t)WM * tile * OC : part;
            wino_out_tile(y, y + OC, y + 2 * OC, y + 3 * OC, m, m + plane, m + 2 * plane, m + 3 * plane, m + 4 * plane,
                          m + 5 * plane, m + 6 * plane, m + 7 * plane, bias, OC);
            if (rows < WM)
                memcpy(outs[s] + (size_t)WM * tile * OC, part, sizeof(float) * (size_t)rows * OC);
        }
}

HOT static void wino_forward(float *const *outs, float *scratch, const float *const *inps, const int *ns, int count,
                             const float *U, const float *bias, int C, int OC)
{
    int T = tiles_of(ns, count);
    float *V = scratch, *M = scratch + (size_t)WT * T * C; /* V [8, T, C], M [8, T, OC], part [4, OC], zeros [OC] */
    float *part = M + (size_t)WT * T * OC;
    for (int s = 0, g = 0; s < count; s++)
        for (int tile = 0; tile < (ns[s] + WM - 1) / WM; tile++, g++) {
            float *v = V + (size_t)g * C;
            size_t plane = (size_t)T * C;
            wino_in_tile(v, v + plane, v + 2 * plane, v + 3 * plane, v + 4 * plane, v + 5 * plane, v + 6 * plane,
                         v + 7 * plane, inps[s] + (size_t)WM * tile * C, C);
        }
    for (int xi = 0; xi < WT; xi++)
        dp_gemm_seq(1, T, OC, C, V + (size_t)xi * T * C, C, U + (size_t)xi * OC * C, C, 0.0f,
                    M + (size_t)xi * T * OC, OC);
    wino_out_all(outs, M, ns, count, T, bias, part, part + WM * OC, OC);
}

/* The bf16 form: the input transform writes V in bf16, each tile's eight
 * rows through an L1 buffer (no conversion pass over V, and half its
 * bytes), for bf16 x bf16 GEMMs against U's bf16 copy (dp_nn_bf16_const).
 * -1 if a GEMM failed (the caller then runs the float32 form). */
HOT static int wino_forward_bf16(float *const *outs, float *scratch, const float *const *inps, const int *ns, int count,
                                 const float *U, const float *bias, int C, int OC)
{
    int T = tiles_of(ns, count);
    float *M = scratch, *row = M + (size_t)WT * T * OC; /* M [8, T, OC], row [8, C] */
    uint16_t *V = (uint16_t *)(row + (size_t)WT * C);     /* V [8, T, C] bf16, then part [4, OC], zeros [OC] */
    float *part = row + (size_t)WT * C + (size_t)WM * T * C;
    for (int s = 0, g = 0; s < count; s++)
        for (int tile = 0; tile < (ns[s] + WM - 1) / WM; tile++, g++) {
            wino_in_tile(row, row + C, row + 2 * C, row + 3 * C, row + 4 * C, row + 5 * C, row + 6 * C, row + 7 * C,
                         inps[s] + (size_t)WM * tile * C, C);
            for (int xi = 0; xi < WT; xi++)
                dp_nn_to_bf16(V + ((size_t)xi * T + g) * C, row + (size_t)xi * C, (size_t)C);
        }
    for (int xi = 0; xi < WT; xi++)
        if (dp_gemm_seq_bf16_pre(1, T, OC, C, NULL, V + (size_t)xi * T * C, C, U + (size_t)xi * OC * C, NULL, C, 0.0f,
                                 M + (size_t)xi * T * OC, OC) != 0)
            return -1;
    wino_out_all(outs, M, ns, count, T, bias, part, part + WM * OC, OC);
    return 0;
}

void dp_conv1d_cl_relu_forward(float *out, float *scratch, const float *inp, const float *wp, const float *bias,
                               int n, int C, int OC, int K, int S)
{
    // inp [in_rows(n), C], wp packed -> out [n, OC]
    dp_conv1d_cl_relu_forward_many(&out, scratch, &inp, &n, 1, wp, bias, C, OC, K, S);
}

void dp_conv1d_cl_relu_forward_many(float *const *outs, float *scratch, const float *const *inps, const int *ns,
                                    int count, const float *wp, const float *bias, int C, int OC, int K, int S)
{
    // signal s: inps[s] [in_rows(ns[s]), C] -> outs[s] [ns[s], OC]
    int path = cl_path(C, K, S);
    if (path == PATH_WINO) {
        for (int s = 0; s < count;) { /* DP_CONV_CL_MANY non-empty signals at a time */
            const float *in[DP_CONV_CL_MANY];
            float *out[DP_CONV_CL_MANY];
            int nn[DP_CONV_CL_MANY], k = 0;
            for (; s < count && k < DP_CONV_CL_MANY; s++)
                if (ns[s] > 0) /* empty signals take no tiles */
                    in[k] = inps[s], out[k] = outs[s], nn[k++] = ns[s];
            if (k && (dp_nn_get_precision() != DP_PREC_BF16 ||
                      wino_forward_bf16(out, scratch, in, nn, k, wp, bias, C, OC) != 0))
                wino_forward(out, scratch, in, nn, k, wp, bias, C, OC);
        }
        return;
    }
    for (int s = 0; s < count; s++) {
        int n = ns[s];
        float *out = outs[s];
        const float *inp = inps[s];
        if (n <= 0)
            continue;
        if (path == PATH_DIRECT) {
            direct_forward(out, inp, wp, bias, scratch, n, C, OC, K, S);
            continue;
        }
        for (int k = 0; k < K; k++)
            dp_gemm_seq(1, n, OC, C, inp + (size_t)k * C, S * C, wp + (size_t)k * C, K * C, k ? 1.0f : 0.0f, out, OC);
        relu_bias_rows(out, bias, n, OC);
    }
}

HOT void dp_maxpool1d_cl_forward(float *out, const float *inp, const float *sub, int n, int C, int P)
{
    // inp [n*P, C] -> out [n, C] = max over P rows (- sub)
    for (int p = 0; p < n; p++) {
        float *restrict y = out + (size_t)p * C;
        const float *restrict w0 = inp + (size_t)p * P * C;
        memcpy(y, w0, sizeof(float) * (size_t)C);
        for (int k = 1; k < P; k++) {
            const float *restrict wk = w0 + (size_t)k * C;
            for (int c = 0; c < C; c++)
                y[c] = wk[c] > y[c] ? wk[c] : y[c];
        }
        if (sub)
            for (int c = 0; c < C; c++)
                y[c] -= sub[c];
    }
}
