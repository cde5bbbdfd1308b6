/* dp_train: `deeppacket train` (spec section 5). Reads a split folder
 * (SPLIT_DIR/<task>/train) or a preprocessed dataset folder (its rows
 * labelled for the task; dp_splitset_open_task) memory-mapped, trains a CNN or SAE with Adam on
 * shuffled mini-batches, early-stops, writes the model atomically and a
 * checkpoint MODEL.ckpt after each epoch (for --resume).
 *
 * Determinism: the same data, hyper-parameters, seed and thread count give
 * a bit-identical model file. The initialisation draws from dp_rng(seed)
 * (dp_model_create); the validation split hashes (flow id, seed); a second
 * stream, dp_rng(seed ^ constant), draws per epoch the shuffle and the
 * dropout masks (and the SAE decoders' init). Its state is checkpointed, so a
 * resumed run equals an uninterrupted one. Dropout masks are drawn per row
 * (dp_model_forward_rows: one draw of that stream per step, and the row's
 * place in the global batch).
 *
 * Data parallelism (dp_dist, `mpirun -np K deeppacket train`): every rank
 * runs this same loop on the same state and the same epoch order; each
 * global batch is cut into K slices, one per rank, whose gradients are
 * summed over the ranks (MPI_Allreduce, in place over the flat gradient
 * buffer, each slice weighted by its share of the batch's loss weight) before
 * the same Adam step on every rank. Rank 0 alone prints, takes MODEL.lock and
 * writes the checkpoints, the model and the loss log. The model equals a
 * one-process run's up to float rounding (docs/distributed.md).
 */
#ifndef DP_TRAIN_H
#define DP_TRAIN_H

#include "model/dp_model.h"
#include "model/dp_model_train.h"

/* --balance: how training treats unequal classes.
 *   NONE         every training row once per epoch
 *   AUTO         the default: the mode that measured best for the model kind
 *                (dp_train_balance_auto; docs/accuracy.md, "Class balancing")
 *   UNDERSAMPLE  the reference's: once, before training, every class is cut
 *                to the smallest class's row count (the smallest with rows),
 *                rows chosen uniformly at random (partial Fisher-Yates over
 *                the class's rows in file order, from dp_rng(seed ^ salt));
 *                the kept rows keep file order
 *   WEIGHT       class-weighted cross-entropy (dp_softmax_wxent_*): class c
 *                with n_c of the N training rows, K classes with rows, weighs
 *                N / (K n_c), so the mean weight over the rows is 1
 *   SAMPLE       each epoch draws N rows with replacement, class-balanced:
 *                per draw a class uniformly among the K with rows, then a row
 *                of it uniformly, from the training rng (checkpointed, so a
 *                resumed run equals an uninterrupted one)
 * Validation rows (--validation) are held out first and never balanced;
 * under WEIGHT the validation loss is weighted too. */
typedef enum dp_balance {
    DP_BALANCE_NONE = 0,
    DP_BALANCE_UNDERSAMPLE = 1,
    DP_BALANCE_WEIGHT = 2,
    DP_BALANCE_SAMPLE = 3,
    DP_BALANCE_AUTO = 4,
} dp_balance;

extern const char *const dp_balance_name[5]; /* "none", "undersample", "weight", "sample", "auto" */
/* The mode for its name, or -1. */
int dp_balance_parse(const char *s);

/* What --balance auto means for a model of `kind` (DP_MODEL_*) trained on
 * rows with counts[c] rows of class c: the gbt weighs its classes (WEIGHT),
 * the flow NN takes every flow once (NONE), the CNN and SAE take every row
 * once when the classes with rows are already equal (a split's
 * under-sampled training set: the reference pipeline unchanged) and draw
 * class-balanced batches (SAMPLE) otherwise. Never returns AUTO. */
dp_balance dp_train_balance_auto(int kind, const uint64_t *counts, int nclasses);

/* --balance weight's weights: w[c] = N / (K counts[c]) for the K classes
 * with rows (N rows in all), 0 for the others; sum_c counts[c] w[c] = N. */
void dp_train_class_weights(const uint64_t *counts, int nclasses, float *w);

/* --balance sample's draw: n rows into out, each from a class chosen
 * uniformly among the classes with rows, then one of that class's rows
 * uniformly; class c's rows are rows[off[c] .. off[c + 1]). Two dp_rng draws
 * per row, in order. Nothing is drawn when no class has rows. */
void dp_train_balanced_draw(dp_rng *r, const uint32_t *rows, const size_t *off, int nclasses, uint32_t *out,
                            size_t n);

typedef struct dp_train_opts {
    const char *train_dir;   /* split folder (vectors/labels/(meta).npy, classes.tsv) or dataset folder */
    const char *model_path;  /* output model file; checkpoint at MODEL.ckpt */
    int task;                /* DP_TASK_APP / DP_TASK_TRAFFIC */
    int kind;                /* DP_MODEL_CNN / DP_MODEL_SAE */
    dp_hparams hp;           /* epochs, batch, lr, seed, threads, validation... */
    int resume;              /* continue from MODEL.ckpt */
    const char *init_path;   /* start from this model's weights (same architecture,
                              * task and classes) instead of the seed's initialisation;
                              * the seed still drives shuffling and dropout; NULL: none */
    int quiet;               /* no progress / epoch lines */
    float dropout;           /* dropout probability of the hidden layers; < 0: the spec's 0.05 */
    dp_balance balance;      /* class balancing (DP_BALANCE_AUTO); the mode
                              * used is recorded in the model (hp.balance) */
    int precision;           /* DP_PREC_FP32 (default), _BF16 or _AUTO (dp_nn.h): the GEMMs' inputs */
    /* testing: a smaller architecture (CNN channel count; 0 = the spec's) */
    int cnn_channels;
    /* testing: stop after this many optimiser steps in total (0 = none),
     * as if killed: no final model is written, the checkpoint of the last
     * completed epoch stays. */
    long max_steps;
    /* a TSV of every optimiser step's global batch loss (phase, epoch,
     * step, loss, seconds since the first step), written atomically at the end of the run (also after
     * max_steps) by rank 0; NULL: none */
    const char *loss_log;
    /* flow models (issue 10): kind DP_MODEL_FLOW / DP_MODEL_GBT read flow
     * rows (dp_flowset over train_dir); flows = 1 makes an SAE read them too
     * (an MLP over flow rows: tests, until the flow NN is merged; no
     * pre-training). flow.mask is also the field mask of packet models. */
    int flows;
    dp_flowcfg flow;         /* N, K, mask, feature groups */
    int gbt_trees, gbt_depth;/* GBT: boosting rounds, max depth */
    float gbt_eta;           /* GBT: learning rate */
    float gbt_colsample;     /* GBT: fraction of features per tree (seeded; 1 = all) */
} dp_train_opts;

/* Fills opts with the spec defaults (epochs 20, batch 16, lr 1e-3, seed
 * 9876, patience 3, CNN; no field mask; flows: N 10, K 64, all groups; GBT
 * dp_gbt_params_default; --balance auto). */
void dp_train_opts_default(dp_train_opts *o);

/* Trains. Returns 0 (model written), or -1 + message: unreadable input,
 * NaN/Inf or exploding loss (nothing written over an existing model), I/O.
 * Prints a progress line and one summary line per epoch on stderr unless
 * quiet. */
int dp_train_run(const dp_train_opts *o, char *errbuf);

/* `train --model gbt` (dp_train_run calls it for kind DP_MODEL_GBT): builds
 * the flowset of train_dir, trains the booster on all its flows (seed,
 * threads from hp), writes the GBT model atomically. 0 or -1 + message.
 * Under a data-parallel job (dp_dist) each rank trains on its share of the
 * flows and XGBoost joins them into one booster (rank 0 runs the tracker,
 * dp_gbt_tracker.h); rank 0 writes it. Collective. */
int dp_train_gbt(const dp_train_opts *o, char *errbuf);

/* Speed benchmark: a freshly initialised model of kind/task with nclasses
 * outputs, `steps` training steps (forward + backward + Adam, dropout on)
 * on random bytes at batch size `batch`, then `steps` eval batches of the
 * same size through dp_model_predict, each after one untimed warm-up step.
 * The eval batches are random bytes too (full-length packets, the worst
 * case), or, when infer_dir names a dataset or split folder, its vectors:
 * batch s is rows [start, start + batch), start = s * batch mod
 * (n - batch + 1) (bench/torch_model.py --vectors reads the same rows).
 * precision: as dp_train_opts'. Fills samples/s and packets/s, and the
 * same per process CPU second in cpu_rates (may be NULL); -1 + message
 * on error (also bf16 where the CPU lacks it). */
int dp_train_bench(int kind, int task, int nclasses, int batch, int steps, int threads, int precision,
                   const char *infer_dir, double *train_sps, double *infer_pps, double cpu_rates[2],
                   char *errbuf);

#endif
