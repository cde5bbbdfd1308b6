/* dp_model_impl: the model's internals, shared by dp_model.c (layout,
 * training forward/backward, file format) and dp_model_infer.c (the
 * inference fast path). Not part of any public interface. */
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

    /* activations for `cap` rows */
    int cap;
    float *x, *a1, *a2, *pool;
    int32_t *argmax;
    float *pre[DP_MODEL_MAX_HIDDEN + 1];    /* linear outputs (pre[nfc-1] = logits) */
    float *act[DP_MODEL_MAX_HIDDEN];        /* after dropout + ReLU */
    uint8_t *mask[DP_MODEL_MAX_HIDDEN];
    float *probs;
    float *scratch;
    /* activation gradients */
    float *da1, *da2, *dP0, *dP1;
    size_t dmax;                            /* floats per row of dP0/dP1 */
    int last_B, last_train;
    const float *class_weight; /* [nclasses] for the loss, borrowed; NULL: unweighted */

    /* inference cache (dp_model_infer.c): valid while inf_gen == gen; gen
     * moves whenever the parameters may change (Adam step, a mutable
     * parameter pointer handed out) */
    unsigned gen, inf_gen;
    struct dp_infer *inf;
};

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
/* Frees the inference cache (dp_model_free). */
void dp_model_infer_free(dp_model *m);

#endif
