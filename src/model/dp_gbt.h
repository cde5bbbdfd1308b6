/* dp_gbt: gradient-boosted trees over flow rows (issue 10, `train --model
 * gbt`), on XGBoost's C API (Debian libxgboost-dev). The only module that
 * includes <xgboost/c_api.h>; every XGBoost call is checked and its
 * XGBGetLastError() goes into the message.
 *
 * Objective multi:softprob, tree_method hist, rows [n, d] floats as a dense
 * matrix (NaN = missing, so 0 is a value). Training is deterministic for a
 * given seed and thread count. A GBT dp_model (kind DP_MODEL_GBT) keeps the
 * booster serialised (UBJSON) in its file's blob. */
#ifndef DP_GBT_H
#define DP_GBT_H

#include <stddef.h>
#include <stdint.h>

typedef struct dp_gbt dp_gbt;

typedef struct dp_gbt_params {
    int trees;     /* boosting rounds */
    int depth;     /* max tree depth */
    float eta;     /* learning rate */
    int threads;   /* nthread (>= 1) */
    uint64_t seed;
    int quiet;     /* no progress line per round on stderr */
    int bins;      /* histogram bins per feature (max_bin; 64: 4x faster than 256) */
    float colsample; /* fraction of the features drawn (seeded) for each tree (1: all) */
    double *round_loss;  /* [trees] or NULL: after each round, XGBoost's (sample-weighted)
                          * mlogloss on the training rows ... */
    double *round_acc;   /* [trees] or NULL: ... and 1 - its merror (needs round_loss) */
    const uint8_t *init; /* a serialised booster (dp_gbt_save) to go on from: its trees are */
    size_t init_len;     /* kept and `trees` more are boosted on the rows (XGBoost's training
                          * continuation); NULL: a new booster */
} dp_gbt_params;

/* Defaults (from a quick measurement on iscx-sample, docs/accuracy.md). */
void dp_gbt_params_default(dp_gbt_params *p);
/* Trains on x [n, d] with labels [n] in [0, nclasses), sample weights [n]
 * (NULL: all 1). NULL + message on an XGBoost error or bad arguments. */
dp_gbt *dp_gbt_train(const float *x, uint64_t n, int d, const int *labels, const float *weights, int nclasses,
                     const dp_gbt_params *p, char *errbuf);
/* Serialises the booster (UBJSON) into a malloc'd buffer; 0 or -1. */
int dp_gbt_save(dp_gbt *g, uint8_t **buf, size_t *len, char *errbuf);
/* Loads a serialised booster, which must first pass dp_gbt_check_booster
 * (model/dp_gbt_check.h) for d features and nclasses classes: XGBoost
 * never sees a blob that fails it. NULL + "SRC: gbt booster: what is
 * wrong" (src names the file). */
dp_gbt *dp_gbt_load(const uint8_t *buf, size_t len, int d, int nclasses, const char *src, char *errbuf);
/* Log-probabilities [n, nclasses] of rows x [n, d] (probabilities floored
 * at 1e-30 before the log); 0 or -1 + message. */
int dp_gbt_predict(dp_gbt *g, const float *x, int n, int d, int nclasses, float *logprobs, char *errbuf);
void dp_gbt_free(dp_gbt *g);

/* Several processes training one booster (XGBoost's "rabit" communicator,
 * its tracker at host:port: train/dp_gbt_tracker.h). Between dp_gbt_join
 * and dp_gbt_leave, dp_gbt_train on each process's share of the rows
 * trains the same booster on every process: the histograms, the quantile
 * sketches and the metrics are summed over all of them. task is this
 * process's rank (the tracker ranks the processes in its order), world
 * their number. 0, or -1 + message (XGBoost's). */
int dp_gbt_join(const char *host, int port, int task, int world, char *errbuf);
int dp_gbt_leave(char *errbuf);

/* One node of a booster's trees, as XGBoost dumps them: a split goes to
 * `yes` when x[feature] < value (missing: to `missing`), a leaf adds value
 * to the margin of class tree % nclasses (one tree per class and round). */
typedef struct dp_gbt_node {
    int tree, id;
    int leaf;               /* 1: a leaf (value = its weight) */
    int feature, yes, no, missing;
    float value;            /* split threshold or leaf weight */
} dp_gbt_node;
/* The trees of g (XGBoosterDumpModelEx, text, thresholds and weights in
 * float's 9 significant digits) into a malloc'd array *nodes [*nnodes],
 * with the number of trees and the base score (added to every class's
 * margin before the softmax). 0, or -1 + message on an XGBoost error or a
 * dump line it cannot read. */
int dp_gbt_trees(dp_gbt *g, dp_gbt_node **nodes, size_t *nnodes, int *ntrees, float *base_score, char *errbuf);

#endif
