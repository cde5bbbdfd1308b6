/* dp_model_train: the training-only API of a dp_model (train/, the SAE's
 * pre-training, tests, tools): the forward pass with dropout, the loss,
 * backward, Adam, and checkpoints (MODEL.ckpt). Inference, the
 * architecture and the model file are dp_model.h; the code is
 * dp_model.c (forward), dp_model_train.c (loss, backward, Adam) and
 * dp_model_file.c (checkpoints). */
#ifndef DP_MODEL_TRAIN_H
#define DP_MODEL_TRAIN_H

#include <stdint.h>

#include "model/dp_model.h"
#include "util/dp_util.h"

/* Forward on B (<= the capacity reserved by dp_model_reserve, grown as
 * needed) input rows given as uint8 bytes (scaled by 1/255) or, when
 * xf != NULL, as floats [B, in_len] already scaled. train = 1 applies
 * dropout with rng (must not be NULL then). Returns a pointer to the
 * logits [B, nclasses] inside the model, or NULL + errbuf (out of memory). */
const float *dp_model_forward(dp_model *m, const uint8_t *x, const float *xf, int B, int train, dp_rng *rng,
                              char *errbuf);
/* Training forward (dropout on) like dp_model_forward, but row b's dropout
 * mask in hidden layer l is drawn from its own dp_rng seeded with
 * dp_fnv1a({key, row0 + b, l}): a row's mask depends on the key and its
 * index row0 + b in the global batch only, not on how the batch is cut into
 * slices (data-parallel ranks, dp_dist). Same returns as dp_model_forward. */
const float *dp_model_forward_rows(dp_model *m, const uint8_t *x, const float *xf, int B, uint64_t key,
                                   uint64_t row0, char *errbuf);
/* After dp_model_forward: mean softmax cross-entropy against labels [B]
 * (class-weighted when dp_model_set_class_weights set weights);
 * if correct != NULL, the number of rows whose argmax equals the label. */
float dp_model_loss(dp_model *m, const int *labels, int B, int *correct);
/* Weights [nclasses] of the training loss (dp_softmax_wxent_*), borrowed:
 * they must outlive their use; NULL (the default) = the plain mean. Not
 * saved with the model. */
void dp_model_set_class_weights(dp_model *m, const float *weights);
/* After dp_model_loss: zeroes the gradient buffer and backpropagates,
 * leaving d loss / d params in dp_model_grads. */
int dp_model_backward(dp_model *m, const int *labels, int B, char *errbuf);
float *dp_model_grads(dp_model *m);
/* One Adam step over all parameters with the model's Adam state (m, v, t),
 * allocated zeroed on first use. */
int dp_model_adam_step(dp_model *m, float lr, float b1, float b2, float eps, char *errbuf);
/* Adam state access (for checkpoints): m, v [nparams]. */
float *dp_model_adam_m(dp_model *m);
float *dp_model_adam_v(dp_model *m);
/* Forward up to and including hidden layer `layer` (0-based), eval mode:
 * the post-ReLU activations [B, hidden[layer]] (SAE pre-training input). */
const float *dp_model_hidden(dp_model *m, const uint8_t *x, int B, int layer, char *errbuf);
/* Parameter pointers of fully connected layer i (0..nhidden; nhidden = the
 * output layer): weight [out, in], bias [out]; in/out widths. */
void dp_model_fc(dp_model *m, int i, float **w, float **b, float **dw, float **db, int *in, int *out);

/* ---- checkpoints ------------------------------------------------------------
 * dp_model_file.c, the same format as a model file with the training state
 * (docs/model-format.md). */

/* Training state stored in a checkpoint next to the model (MODEL.ckpt). */
typedef struct dp_train_state {
    int epoch;              /* epochs completed */
    int bad_epochs;         /* epochs without improvement */
    float best_loss;
    int phase;              /* 0 supervised; SAE: 1..nhidden pre-training layer+1 */
    dp_rng rng;
    int has_best;           /* best_params present */
    float *best_params;     /* [nparams] or NULL */
    int has_data;           /* loaded: the checkpoint records its training set
                             * (version 2 on; always written) */
    uint64_t data_rows;     /* the training set's rows */
    uint64_t data_fp;       /* dp_splitset_fingerprint of the training set */
    int precision;          /* DP_PREC_FP32 or DP_PREC_BF16 the run computed in
                             * (checkpoint version 4 on); -1 when not recorded */
} dp_train_state;

/* Writes the model with its Adam state and the training state (atomic). */
int dp_model_save_checkpoint(const dp_model *m, const dp_train_state *st, const char *path, char *errbuf);
/* Loads a checkpoint: the model (with Adam state) and st (best_params
 * malloc'd when present; caller frees). */
dp_model *dp_model_load_checkpoint(const char *path, dp_train_state *st, char *errbuf);

#endif
