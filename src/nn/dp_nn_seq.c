/* dp_nn_seq: layers over channels-last sequences (a flow's packets): the
 * "same"-padded convolution as im2col + one GEMM, and row scaling. See
 * dp_nn.h for the contracts. */
#include <assert.h>
#include <string.h>

#include "nn/dp_nn.h"

/* cols [B*N, C*K]: cols[(b*N+t), c*K+k] = inp[b, t+k-K/2, c] or 0 outside. */
static void seq_im2col(float *cols, const float *inp, int B, int N, int C, int K)
{
    int P = K / 2;
    size_t ck = (size_t)C * K;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < N; t++) {
            float *row = cols + ((size_t)b * N + t) * ck;
            for (int k = 0; k < K; k++) {
                int s = t + k - P;
                if (s < 0 || s >= N) {
                    for (int c = 0; c < C; c++)
                        row[(size_t)c * K + k] = 0.0f;
                    continue;
                }
                const float *in = inp + ((size_t)b * N + s) * C;
                for (int c = 0; c < C; c++)
                    row[(size_t)c * K + k] = in[c];
            }
        }
}

/* dinp [B, N, C] = the sum of dcols over every place an input value was copied to. */
static void seq_col2im(float *dinp, const float *dcols, int B, int N, int C, int K)
{
    int P = K / 2;
    size_t ck = (size_t)C * K;
    memset(dinp, 0, (size_t)B * N * C * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < N; t++) {
            const float *row = dcols + ((size_t)b * N + t) * ck;
            for (int k = 0; k < K; k++) {
                int s = t + k - P;
                if (s < 0 || s >= N)
                    continue;
                float *d = dinp + ((size_t)b * N + s) * C;
                for (int c = 0; c < C; c++)
                    d[c] += row[(size_t)c * K + k];
            }
        }
}

void dp_seqconv_forward(float *out, float *cols, const float *inp, const float *weight, const float *bias, int B,
                        int N, int C, int OC, int K)
{
    assert(K >= 1 && K % 2 == 1);
    seq_im2col(cols, inp, B, N, C, K);
    /* weight [OC, C, K] is a [OC, C*K] matrix in the cols' column order */
    dp_linear_forward(out, cols, weight, bias, B * N, C * K, OC);
}

void dp_seqconv_backward(float *dinp, float *dweight, float *dbias, float *dcols, const float *dout,
                         const float *cols, const float *weight, int B, int N, int C, int OC, int K)
{
    dp_linear_backward(dinp ? dcols : NULL, dweight, dbias, dout, cols, weight, B * N, C * K, OC);
    if (dinp)
        seq_col2im(dinp, dcols, B, N, C, K);
}

void dp_rowscale(float *out, const float *inp, const float *scale, size_t sstride, size_t R, int C)
{
    for (size_t r = 0; r < R; r++) {
        float s = scale[r * sstride];
        const float *in = inp + r * (size_t)C;
        float *o = out + r * (size_t)C;
        for (int c = 0; c < C; c++)
            o[c] = in[c] * s;
    }
}
