/* dp_model: the Deep Packet models (spec section 5) built from the dp_nn
 * layers: the reference CNN of each task and the paper's stacked
 * autoencoder (SAE); one flat float32 parameter buffer per model (llm.c
 * style), PyTorch-default seeded initialisation, and the model file
 * (docs/model-format.md).
 *
 * The inference contract (notes/model_api.md) is the first block below;
 * the rest is for `train` and the tests. */
#ifndef DP_MODEL_H
#define DP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "util/dp_task.h"
#include "flow/dp_flowfeat.h"
#include "packet/dp_packet.h"
#include "util/dp_util.h"

typedef struct dp_model dp_model;

/* ---- inference contract ---------------------------------------------------- */

/* Loads a model file written by `deeppacket train`; NULL + message (naming
 * the file) if missing, truncated, corrupt (checksum) or of an unknown
 * version. */
dp_model *dp_model_load(const char *path, char *errbuf);
/* A copy of m (its weights, blob, classes, mask, precision and settings;
 * not its training state), made through the file format in memory: for threads
 * that each need a model of their own without reading the file again (it
 * may have been replaced since). NULL + message. */
dp_model *dp_model_clone(const dp_model *m, char *errbuf);
void dp_model_free(dp_model *m);
int dp_model_task(const dp_model *m);              /* DP_TASK_APP or DP_TASK_TRAFFIC */
int dp_model_nclasses(const dp_model *m);
/* Class name of id c ("" for an unnamed id, "?" when out of range). */
const char *dp_model_class_name(const dp_model *m, int c);
const char *dp_model_kind_name(const dp_model *m); /* "cnn", "sae", "flow" or "gbt" */
const char *dp_model_kind_str(int kind);            /* the same for a DP_MODEL_* kind ("?": none) */
/* Inference (eval mode: no dropout): B >= 1 vectors of DP_VEC_LEN uint8
 * bytes, row-major, the model's field mask applied (to a copy), each byte
 * scaled by 1/255 -> log-probabilities (log-softmax) [B, nclasses]. Any B:
 * processed in chunks of at most DP_MODEL_PREDICT_CHUNK, in the model's
 * precision (dp_model_set_precision, on every thread the call uses). Uses
 * scratch inside the model, so one model is not to be used from two
 * threads at once.
 * Returns 0, or -1 + message (also for a flow model: it wants flow rows). */
int dp_model_predict(dp_model *m, const uint8_t *vectors, int B, float *logprobs, char *errbuf);
#define DP_MODEL_PREDICT_CHUNK 64
/* The precision of the model's products in dp_model_predict and
 * dp_model_predict_flows: prec DP_PREC_FP32, _BF16 or _AUTO (nn/dp_nn.h;
 * AUTO: bf16 where it runs). 0, or -1 + message and nothing changed for
 * bf16 where it cannot run or a value that is no DP_PREC_*. The model's
 * own: other models, other threads and the process's precision
 * (dp_nn_set_precision, which training and dp_model_forward follow) are
 * not affected, nor do they affect it. A model starts in fp32 (created or
 * loaded); a clone has its source's. No effect on a GBT. */
int dp_model_set_precision(dp_model *m, int prec, char *errbuf);
/* DP_PREC_FP32 or DP_PREC_BF16 (AUTO resolved). */
int dp_model_precision(const dp_model *m);

/* What a model reads: packet vectors (CNN, SAE) or flow rows (flow NN, GBT,
 * and in tests an SAE-shaped MLP over flow rows). */
#define DP_INPUT_PACKET 0
#define DP_INPUT_FLOW 1
int dp_model_input(const dp_model *m);
/* The field mask (dp_mask bits) the model was trained with; applied to
 * every vector before the model (or the flow features) sees it. */
uint32_t dp_model_mask(const dp_model *m);
/* The flow configuration (N, K, mask, groups) of a flow model; NULL for a
 * packet model. Its mask equals dp_model_mask. */
const dp_flowcfg *dp_model_flowcfg(const dp_model *m);
/* Inference on B >= 1 flow rows xf [B, in_len] (dp_flowset_row layout:
 * N*F floats, packet-major) -> log-probabilities [B, nclasses]; -1 +
 * message for a packet model or B < 1. Flow NN: eval mode (no dropout), any
 * B in chunks of at most DP_MODEL_PREDICT_CHUNK, allocates only on a first
 * call with more rows than before (never per flow after that). Same
 * threading rule as dp_model_predict. */
int dp_model_predict_flows(dp_model *m, const float *xf, int B, float *logprobs, char *errbuf);

/* ---- architecture ----------------------------------------------------------- */

#define DP_MODEL_CNN 0
#define DP_MODEL_SAE 1
#define DP_MODEL_FLOW 2 /* the flow NN (src/model/dp_model_flow.c, branch flownn) */
#define DP_MODEL_GBT 3  /* gradient-boosted trees (dp_gbt.c): no parameters, a booster blob */
#define DP_MODEL_MAX_HIDDEN 8
#define DP_MODEL_MAX_TENSORS (2 * (DP_MODEL_MAX_HIDDEN + 3))
/* the longest input row: a flow row of 64 packets x (44 + 1456) floats */
#define DP_MODEL_MAX_IN_LEN (DP_FLOW_MAX_PACKETS * (DP_FLOW_BASE_FEATURES + DP_FLOW_MAX_PAYLOAD))

typedef struct dp_arch {
    int kind;          /* DP_MODEL_CNN, DP_MODEL_SAE or DP_MODEL_FLOW */
    int nclasses;      /* output width, 1..DP_MAX_CLASSES */
    int in_len;        /* input length, DP_VEC_LEN (flow: N*F) */
    /* CNN only: conv1/conv2 (filters, kernel, stride), max-pool size */
    int c1, k1, s1, c2, k2, s2, pool;
    /* hidden fully connected widths (CNN: 200,100,50; SAE: 400..50;
     * flow: the head's hidden layers after the sequence stage) */
    int nhidden;
    int hidden[DP_MODEL_MAX_HIDDEN];
    float dropout;     /* drop probability of each hidden layer (0.05) */
    int ext[8];  /* kind-specific architecture parameters (flow NN: ext[0] = N packets, ext[1] = F features per packet, the rest see dp_model_flow.c) */
} dp_arch;

/* The spec's architecture for kind and task (DP_TASK_*), nclasses outputs
 * (DP_MODEL_FLOW: dp_arch_flow with N = 10 packets, F = 44 + 64 features). */
void dp_arch_default(dp_arch *a, int kind, int task, int nclasses);
/* The flow classifier's default architecture (docs/accuracy.md, "Flow
 * classifier (neural): choosing the architecture"; ext[] documented in
 * dp_model_flow.c) for N packets of F features per flow row (in_len = N*F);
 * the sizes are checked when a model is created. */
void dp_arch_flow(dp_arch *a, int task, int nclasses, int N, int F);
/* Parses "cnn"/"sae"/"flow"/"gbt" -> DP_MODEL_*, or -1. */
int dp_model_kind_parse(const char *s);

/* Training hyper-parameters: recorded in the model file (provenance) and
 * used by dp_train. */
typedef struct dp_hparams {
    int epochs;          /* at most (20) */
    int batch;           /* 16 */
    int patience;        /* early stopping (3) */
    int pretrain_epochs; /* SAE: greedy pre-training epochs per layer (2) */
    int threads;         /* 0: all CPUs */
    float lr, beta1, beta2, eps; /* Adam: 1e-3, 0.9, 0.999, 1e-8 */
    float validation;    /* held-out fraction by flow, 0 = none */
    uint64_t seed;       /* 9876 */
    /* filled in by training, for the record */
    int epochs_run;
    float final_loss;    /* loss of the kept model (train or validation) */
    uint64_t train_samples;
    int balance;         /* class balancing training used (train's dp_balance:
                          * 0 none, 1 undersample, 2 weight, 3 sample); -1
                          * unknown (files before format version 3) */
} dp_hparams;

void dp_hparams_default(dp_hparams *h);

/* A new model with PyTorch-default initialisation drawn from `seed`
 * (dp_init_uniform in tensor order: conv1.w, conv1.b, conv2.w, ...).
 * names: nclasses class names (NULL entries allowed), copied. */
dp_model *dp_model_create(const dp_arch *a, int task, char *const *names, uint64_t seed, char *errbuf);
const dp_arch *dp_model_arch(const dp_model *m);
dp_hparams *dp_model_hparams(dp_model *m);
/* Makes m read flow rows of cfg (cfg's mask becomes the model's mask):
 * -1 + message unless arch.in_len == N*F. */
int dp_model_set_flowcfg(dp_model *m, const dp_flowcfg *cfg, char *errbuf);
/* Sets the field mask of a packet model (a flow model's is its cfg's). */
void dp_model_set_mask(dp_model *m, uint32_t mask);
/* The opaque blob stored in the model file (the GBT's booster); len 0 and
 * NULL when none. set copies it; -1 + message when out of memory. */
const uint8_t *dp_model_blob(const dp_model *m, size_t *len);
int dp_model_set_blob(dp_model *m, const void *data, size_t len, char *errbuf);

/* ---- parameters (one flat buffer) ------------------------------------------- */
size_t dp_model_nparams(const dp_model *m);
float *dp_model_params(dp_model *m);
int dp_model_ntensors(const dp_model *m);
/* Tensor i: name (PyTorch state_dict name, e.g. "conv1.weight"), numel,
 * offset (floats) into the parameter buffer; shape copied into shape[4]
 * (unused dims 1), returns ndim. */
int dp_model_tensor(const dp_model *m, int i, const char **name, size_t *offset, size_t *numel, int shape[4]);

/* ---- training: forward with dropout, loss, backward, Adam, checkpoints:
 * dp_model_train.h ---------------------------------------------------------- */

/* ---- model file -------------------------------------------------------------
 * Written atomically (temp + rename); dp_model_file.c, whose top comment
 * numbers the on-disk fields. See docs/model-format.md. */
int dp_model_save(const dp_model *m, const char *path, char *errbuf);

#endif
