/* dp_model_flow: the neural flow classifier's layers (DP_MODEL_FLOW), the
 * kind-specific part of dp_model (dp_model.c adds the fully connected head
 * and the loss). The architecture, chosen by the study in docs/accuracy.md
 * ("Flow classifier (neural): choosing the architecture", bench/flow_model.py):
 *
 *   x [B, N, F]       a flow row: N packets of F features (x[.., 0] = present)
 *   enc1  Linear(F, E1) + ReLU           on all B*N packets (one GEMM)
 *   enc2  Linear(E1, E2) + ReLU, times the present flag -> e [B, N, E2]
 *   conv  Conv1d(E2, C, K, padding K/2) over packets + ReLU -> [B, N, C]
 *         (channels-last; with C = 0 there is no conv and e goes on)
 *   flatten [B, N*C] (packet-major) -> fc1 Linear + Dropout + ReLU ... -> out
 * With E1 = E2 = C = K = 0 there is no per-packet stage: the head is an MLP
 * over the whole row [B, N*F] (the prototype's "mlp" baseline).
 *
 * dp_arch.ext: [0] N packets (1..64), [1] F features per packet (1..4096),
 * [2] E1, [3] E2 (1..4096; both 0 = no per-packet stage), [4] C conv
 * channels (0..4096, 0 = none), [5] K conv kernel (odd, 1..2N-1; 0 when
 * C = 0), [6], [7] 0 (reserved). Defaults (dp_arch_flow): E1 64, E2 32,
 * C 32, K 3, one hidden layer of 128, dropout 0.2.
 * Tensor names follow the PyTorch module (bench/flow_model.py FlowNet):
 * enc1.weight/bias, enc2.weight/bias, conv.weight/bias, fc1..., out... */
#include <stdlib.h>
#include <string.h>

#include "model/dp_model.h"
#include "model/dp_model_impl.h"
#include "nn/dp_nn.h"

enum { X_N, X_F, X_E1, X_E2, X_C, X_K };

void dp_arch_flow(dp_arch *a, int task, int nclasses, int N, int F)
{
    (void)task;
    memset(a, 0, sizeof *a);
    a->kind = DP_MODEL_FLOW;
    a->nclasses = nclasses;
    a->ext[X_N] = N;
    a->ext[X_F] = F;
    a->in_len = N * F;
    a->ext[X_E1] = 64;
    a->ext[X_E2] = 32;
    a->ext[X_C] = 32;
    a->ext[X_K] = 3;
    a->nhidden = 1;
    a->hidden[0] = 128;
    a->dropout = 0.2f;
}

int dp_flow_check(const dp_arch *a, char *errbuf, const char *src)
{
    const int *x = a->ext;
    if (x[X_N] < 1 || x[X_N] > 64)
        return dp_err(errbuf, "%s: flow model: bad packet count N = %d (1..64)", src, x[X_N]);
    if (x[X_F] < 1 || x[X_F] > 4096)
        return dp_err(errbuf, "%s: flow model: bad feature count F = %d (1..4096)", src, x[X_F]);
    if (a->in_len != x[X_N] * x[X_F])
        return dp_err(errbuf, "%s: flow model: input length %d, expected N*F = %d", src, a->in_len,
                      x[X_N] * x[X_F]);
    int mlp = x[X_E1] == 0 && x[X_E2] == 0 && x[X_C] == 0;
    if (!mlp && (x[X_E1] < 1 || x[X_E1] > 4096 || x[X_E2] < 1 || x[X_E2] > 4096))
        return dp_err(errbuf, "%s: flow model: bad encoder widths %d, %d", src, x[X_E1], x[X_E2]);
    if (x[X_C] < 0 || x[X_C] > 4096)
        return dp_err(errbuf, "%s: flow model: bad conv channel count %d", src, x[X_C]);
    if (x[X_C] > 0 && (x[X_K] < 1 || x[X_K] % 2 == 0 || x[X_K] > 2 * x[X_N] - 1))
        return dp_err(errbuf, "%s: flow model: bad conv kernel %d (odd, 1..2N-1)", src, x[X_K]);
    int most = DP_MODEL_MAX_TENSORS / 2 - 1 - dp_flow_nlayers(a); /* a weight and a bias per layer */
    if (a->nhidden < 1 || a->nhidden > most) /* compared before any sum: nhidden is the file's */
        return dp_err(errbuf, "%s: flow model: %d hidden layers, at most %d", src, a->nhidden, most);
    if ((x[X_C] == 0 && x[X_K] != 0) || x[6] != 0 || x[7] != 0)
        return dp_err(errbuf, "%s: flow model: unused architecture parameters are not zero", src);
    return 0;
}

int dp_flow_nlayers(const dp_arch *a)
{
    return a->ext[X_E1] == 0 ? 0 : a->ext[X_C] > 0 ? 3 : 2;
}

int dp_flow_flat(const dp_arch *a)
{
    if (dp_flow_nlayers(a) == 0)
        return a->in_len;
    return a->ext[X_N] * (a->ext[X_C] > 0 ? a->ext[X_C] : a->ext[X_E2]);
}

int dp_flow_tensors(const dp_arch *a, const char *names[6], int shape[6][3], int ndim[6], size_t fan[6])
{
    static const char *nm[6] = {"enc1.weight", "enc1.bias", "enc2.weight", "enc2.bias", "conv.weight", "conv.bias"};
    const int *x = a->ext;
    int in[3] = {x[X_F], x[X_E1], x[X_E2]}, out[3] = {x[X_E1], x[X_E2], x[X_C]};
    int kk[3] = {1, 1, x[X_K]};
    int n = 2 * dp_flow_nlayers(a);
    for (int i = 0; i < n; i++) {
        int l = i / 2, w = i % 2 == 0;
        names[i] = nm[i];
        shape[i][0] = out[l];
        shape[i][1] = w ? in[l] : 1;
        shape[i][2] = w && l == 2 ? kk[l] : 1;
        ndim[i] = !w ? 1 : l == 2 ? 3 : 2;
        fan[i] = (size_t)in[l] * kk[l];
    }
    return n;
}

void dp_flow_free_acts(dp_model *m)
{
    float **p[] = {&m->h1, &m->h2, &m->e, &m->cols, &m->cv, &m->dh1, &m->de, &m->dcols, &m->dcv};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        free(*p[i]);
        *p[i] = NULL;
    }
}

int dp_flow_reserve(dp_model *m, int B)
{
    const int *x = m->arch.ext;
    size_t R = (size_t)B * x[X_N], E1 = (size_t)x[X_E1], E2 = (size_t)x[X_E2], C = (size_t)x[X_C];
    size_t ck = C > 0 ? E2 * (size_t)x[X_K] : 1;
    int ok = 1;
    if (dp_flow_nlayers(&m->arch) == 0)
        return 0;
#define AL(p, n) ok &= ((p) = calloc((n) > 0 ? (size_t)(n) : 1, sizeof(float))) != NULL
    AL(m->h1, R * E1);
    AL(m->h2, R * E2);
    AL(m->e, R * E2);
    AL(m->dh1, R * E1);
    AL(m->de, R * E2);
    AL(m->cols, C > 0 ? R * ck : 0);
    AL(m->dcols, C > 0 ? R * ck : 0);
    AL(m->cv, R * C);
#undef AL
    return ok ? 0 : -1;
}

const float *dp_flow_forward(dp_model *m, int B)
{
    const int *x = m->arch.ext;
    int R = B * x[X_N], F = x[X_F], E1 = x[X_E1], E2 = x[X_E2], C = x[X_C];
    if (dp_flow_nlayers(&m->arch) == 0)
        return m->x;                                                     /* [B, N*F] */
    dp_linear_forward(m->h1, m->x, m->gw[0], m->gb[0], R, F, E1);       /* [R, E1] */
    dp_relu_forward(m->h1, m->h1, (size_t)R * E1);
    dp_linear_forward(m->h2, m->h1, m->gw[1], m->gb[1], R, E1, E2);     /* [R, E2] */
    dp_relu_forward(m->h2, m->h2, (size_t)R * E2);
    dp_rowscale(m->e, m->h2, m->x, (size_t)F, (size_t)R, E2);           /* absent packets -> 0 */
    if (C == 0)
        return m->e;                                                     /* [B, N*E2] */
    dp_seqconv_forward(m->cv, m->cols, m->e, m->gw[2], m->gb[2], B, x[X_N], E2, C, x[X_K]);
    dp_relu_forward(m->cv, m->cv, (size_t)R * C);
    return m->cv;                                                        /* [B, N*C] */
}

void dp_flow_backward(dp_model *m, float *dflat, int B)
{
    const int *x = m->arch.ext;
    int R = B * x[X_N], F = x[X_F], E1 = x[X_E1], E2 = x[X_E2], C = x[X_C];
    float *de = dflat;
    if (dp_flow_nlayers(&m->arch) == 0)
        return;
    if (C > 0) { /* dflat = d cv [R, C] */
        dp_relu_backward(dflat, dflat, m->cv, (size_t)R * C);
        dp_seqconv_backward(m->de, m->dgw[2], m->dgb[2], m->dcols, dflat, m->cols, m->gw[2], B, x[X_N], E2, C,
                            x[X_K]);
        de = m->de;
    }
    dp_rowscale(de, de, m->x, (size_t)F, (size_t)R, E2);                 /* d h2 */
    dp_relu_backward(de, de, m->h2, (size_t)R * E2);
    dp_linear_backward(m->dh1, m->dgw[1], m->dgb[1], de, m->h1, m->gw[1], R, E1, E2);
    dp_relu_backward(m->dh1, m->dh1, m->h1, (size_t)R * E1);
    dp_linear_backward(NULL, m->dgw[0], m->dgb[0], m->dh1, m->x, m->gw[0], R, F, E1);
}
