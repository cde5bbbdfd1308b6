/* dp_model_impl: the model's internals, shared by dp_model.c (layout,
 * training forward/backward), dp_model_file.c (the file format) and
 * dp_model_infer.c (the inference fast path). Not part of any public interface. */
#ifndef DP_MODEL_IMPL_H
#define DP_MODEL_IMPL_H

#include "model/dp_model.h"

typedef struct dp_tdesc {
    char name[32];
    int ndim;
    int shape[4];
    size_t offset, numel;
    size_t fan_in;
} dp_tdesc;

struct dp_model {
    dp_arch arch;
    int task;
    char *names[DP_MAX_CLASSES];
    dp_hparams hp;
    int input;            /* DP_INPUT_PACKET or DP_INPUT_FLOW */
    uint32_t fieldmask;   /* dp_mask bits (= flow.mask for flow models) */
    dp_flowcfg flow;      /* flow models: N, K, mask, groups; else zero */
    uint8_t *blob;        /* opaque bytes stored in the file (GBT booster) */
    size_t blob_len;
    struct dp_gbt *gbt;   /* the booster loaded from blob, on first use */
    uint8_t *masked;      /* DP_MODEL_PREDICT_CHUNK masked vectors (predict) */
    int prec;             /* DP_PREC_FP32 (0: calloc's) or DP_PREC_BF16: predict's */

    int ntensors;
    dp_tdesc t[DP_MODEL_MAX_TENSORS];
    size_t nparams;
    float *params, *grads, *adam_m, *adam_v;
    int adam_t;

    /* layer views into params / grads */
    float *cw[2], *cb[2], *dcw[2], *dcb[2];
    float *fw[DP_MODEL_MAX_HIDDEN + 1], *fb[DP_MODEL_MAX_HIDDEN + 1];
    float *dfw[DP_MODEL_MAX_HIDDEN + 1], *dfb[DP_MODEL_MAX_HIDDEN + 1];
    int nfc;                                /* nhidden + 1 */
    int fin[DP_MODEL_MAX_HIDDEN + 1], fout[DP_MODEL_MAX_HIDDEN + 1];
    int L1, L2, L3, flat;                   /* CNN lengths; flat = fc0 input */
    /* flow kind (dp_model_flow.c): enc1, enc2, conv weights [3] */
    float *gw[3], *gb[3], *dgw[3], *dgb[3];

    /* activations for `cap` rows */
    int cap;
    float *x, *a1, *a2, *pool;
    int32_t *argmax;
    float *pre[DP_MODEL_MAX_HIDDEN + 1];    /* linear outputs (pre[nfc-1] = logits) */
    float *act[DP_MODEL_MAX_HIDDEN];        /* after dropout + ReLU */
    uint8_t *mask[DP_MODEL_MAX_HIDDEN];
    float *probs;
    /* flow kind: per-packet rows [B*N, .] (h1, h2 post-ReLU, e masked, cv
     * post-ReLU conv), im2col rows, and their gradients */
    float *h1, *h2, *e, *cols, *cv, *dh1, *de, *dcols, *dcv;
    float *scratch;
    /* activation gradients */
    float *da1, *da2, *dP0, *dP1;
    size_t dmax;                            /* floats per row of dP0/dP1 */
    int last_B, last_train;
    /* dp_model_forward_rows: dropout masks drawn per row from (key, row0 + b,
     * layer) instead of from the rng (set only for that call) */
    int drop_keyed;
    uint64_t drop_key, drop_row0;
    const float *class_weight; /* [nclasses] for the loss, borrowed; NULL: unweighted */

    /* inference cache (dp_model_infer.c): valid while inf_gen == gen; gen
     * moves whenever the parameters may change (Adam step, a mutable
     * parameter pointer handed out) */
    unsigned gen, inf_gen;
    struct dp_infer *inf;
};

/* ---- shared by the compute code (dp_model.c) and the file format
 * (dp_model_file.c) ---- */
/* Checks m->arch and lays out the tensor table and parameter count;
 * 0, or -1 + message naming src. Allocates nothing. */
int dp_model_layout(dp_model *m, char *errbuf, const char *src);
/* A model of architecture a and task with zeroed parameters, default
 * hyper-parameters and the class names (NULL: empty); NULL + message
 * naming src when the architecture or task is bad or memory runs out. */
dp_model *dp_model_alloc(const dp_arch *a, int task, char *const *names, char *errbuf, const char *src);
/* Allocates the Adam moments (zeroed, step 0) unless present; 0, or -1 +
 * message (errbuf may be NULL) (dp_model_train.c). */
int dp_model_ensure_adam(dp_model *m, char *errbuf);
/* The forward pass's steps, shared by dp_model.c and dp_model_train.c:
 * B input rows into m->x (bytes scaled by 1/255, or floats as they are);
 * the CNN's two convolutions and pooling on m->x; the fully connected
 * stack's input for the kind; the weight and gradient views of the
 * parameter (and gradient) buffer. */
void dp_model_load_input(dp_model *m, const uint8_t *x, const float *xf, int B);
void dp_model_conv_forward(dp_model *m, int B);
const float *dp_model_fc_input(dp_model *m);
void dp_model_set_views(dp_model *m);
/* Makes room for B rows of activations (dp_model.c); 0, or -1 + message. */
int dp_model_reserve(dp_model *m, int B, char *errbuf);
/* Runs the fully connected stack from layer `from` (whose input is `in`)
 * up to layer `upto` (inclusive; nfc-1 = the logits): Linear, then for the
 * hidden layers Dropout (train only) and ReLU into m->act (dp_model.c). */
void dp_model_fc_forward(dp_model *m, const float *in, int B, int from, int upto, int train, dp_rng *rng);
/* Eval-mode CNN forward of B <= DP_MODEL_PREDICT_CHUNK byte vectors to
 * log-probabilities [B, nclasses], computing only what the vectors' trailing
 * zeros do not fix (dp_model_infer.c); 0, or -1 + message. */
int dp_model_infer_cnn(dp_model *m, const uint8_t *x, int B, float *logprobs, char *errbuf);
/* ---- flow kind (dp_model_flow.c) ---- */
/* Checks a DP_MODEL_FLOW architecture's ext[] and sizes; 0 or -1 + message
 * naming src. */
int dp_flow_check(const dp_arch *a, char *errbuf, const char *src);
/* Layers before the head: 3 (enc1, enc2, conv), 2 (no conv) or 0 (none:
 * the head reads the row itself). */
int dp_flow_nlayers(const dp_arch *a);
/* Width of the head's input (N*C with the conv stage, N*E2 without, N*F
 * with no per-packet stage). */
int dp_flow_flat(const dp_arch *a);
/* Tensor shapes of the flow stages in order (enc1.weight, enc1.bias,
 * enc2.weight, enc2.bias[, conv.weight, conv.bias]): returns the count,
 * fills names, shapes (3 dims, unused 1), ndims and fan-ins. */
int dp_flow_tensors(const dp_arch *a, const char *names[6], int shape[6][3], int ndim[6], size_t fan[6]);
/* Activation buffers for B rows (freed by dp_flow_free_acts); 0 or -1. */
int dp_flow_reserve(dp_model *m, int B);
void dp_flow_free_acts(dp_model *m);
/* m->x [B, N*F] -> the head's input [B, flat] (returned pointer). */
const float *dp_flow_forward(dp_model *m, int B);
/* The head's input gradient dflat [B, flat] -> parameter gradients of the
 * flow stages (accumulated). dflat is overwritten (used as scratch). */
void dp_flow_backward(dp_model *m, float *dflat, int B);

/* Frees the inference cache (dp_model_free). */
void dp_model_infer_free(dp_model *m);

#endif
