/* dp_nn_conv_bf16: conv1d forward and backward in bf16 through oneDNN's
 * direct convolution primitives (dp_nn_conv_bf16.c), for dp_nn_conv.c's
 * bf16 path. Shapes and layouts as dp_conv1d_* (nn/dp_nn.h). */
#ifndef DP_NN_CONV_BF16_H
#define DP_NN_CONV_BF16_H

/* out [B, OC, LO] = act(conv(inp [B, C, L], weight [OC, C, K]) + bias [OC]),
 * act = ReLU when relu, else identity; bias must not be NULL.
 * 0, or -1 (oneDNN unavailable or failed; out untouched or partial: the
 * caller recomputes it). */
int dp_conv1d_bf16_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int C,
                           int L, int OC, int K, int S, int relu);

/* dout [B, OC, LO] (past the ReLU) -> dinp [B, C, L] OVERWRITTEN (may be
 * NULL), dweight [OC, C, K] ACCUMULATED (may be NULL); the bias gradient is
 * the caller's. 0, or -1 as above (nothing accumulated into dweight). */
int dp_conv1d_bf16_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                            int B, int C, int L, int OC, int K, int S);

#endif
