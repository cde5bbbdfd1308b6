/* dp_train_impl: what the trainer's files share (private to src/train; the
 * public API is dp_train.h). The run is dp_train.c; the other files hold
 * one concern each:
 *   dp_train_setup.c    inputs, model, row index, batch buffers, clean-up
 *   dp_train_balance.c  --balance (grouping, undersample, weights, draws)
 *                       and each epoch's row order
 *   dp_train_sae.c      the SAE's greedy layer-wise pre-training
 *   dp_train_save.c     checkpoints, --resume, the kept model, --loss-log
 *   dp_train_ranks.c    data parallelism (dp_dist): slices, sums, rank 0
 *   dp_train_bench.c    --bench
 * Every dp_tr_* function takes the trainer of one run; the collective ones
 * (see each contract) must be called on every rank. */
#ifndef DP_TRAIN_IMPL_H
#define DP_TRAIN_IMPL_H

#include "dataset/dp_dataset.h"
#include "flow/dp_flowset.h"
#include "train/dp_curves.h"
#include "train/dp_train.h"

/* A mean batch loss above this (cross-entropy of e^-1000) is divergence. */
#define DP_TRAIN_MAX_LOSS 1000.0f

/* One optimiser step's global loss, for --loss-log. */
typedef struct dp_curve_point {
    int phase;           /* 0 supervised, L + 1 SAE pre-training of layer L */
    int epoch;           /* 1-based, within the phase */
    long step;           /* 1-based, within the epoch */
    float loss;          /* mean over the global batch (cross-entropy or MSE) */
    double time;         /* seconds since the run's first recorded step ended */
} dp_curve_point;

typedef struct trainer {
    const dp_train_opts *o;
    dp_splitset ss;
    dp_model *m;
    dp_hparams hp;
    dp_train_state st;
    uint32_t *tr, *va;   /* training (shuffled) / validation row indices */
    uint32_t *tr0;       /* training rows, ascending */
    size_t ntr, nva;
    /* --balance: training rows grouped by class (ascending within a class),
     * class c at byclass[off[c] .. off[c + 1]); the classes with rows; the
     * loss weights */
    uint32_t *byclass;
    size_t off[DP_MAX_CLASSES + 1];
    int present[DP_MAX_CLASSES], npresent;
    float cw[DP_MAX_CLASSES];
    uint8_t *xb;         /* [batch, 1500] gathered bytes */
    int *yb;             /* [batch] labels */
    int flows;           /* rows are flows of fs, gathered as floats into xf */
    dp_flowset fs;
    float *xf;           /* [batch, in_len] flow rows */
    uint32_t mask;       /* packet models: field mask applied to gathered vectors */
    char *ckpt;
    dp_curves curves;    /* per epoch, for MODEL.curves.tsv/png */
    long steps;          /* optimiser steps in this process (max_steps) */
    int killed;          /* max_steps reached */
    int lock;            /* MODEL.lock (dp_lock_target); -1 before */
    uint64_t data_rows, data_fp; /* the training set, recorded in checkpoints */
    int ckpt_balance;    /* --resume: the balance the checkpoint's run used, -1 unknown */
    int rank, size;      /* dp_dist: this process's rank, the ranks */
    dp_curve_point *curve; /* --loss-log: the global loss of every step */
    size_t ncurve, capcurve;
    double curve0;       /* dp_now() when the first step was recorded */
} trainer;

/* ---- dp_train_setup.c ---- */
/* The batch's rows idx[0..n): masked vectors into t->xb, or flow rows into
 * t->xf; their labels into t->yb. */
void dp_tr_gather(trainer *t, const uint32_t *idx, size_t n);
/* The class of training row i (a packet's, or the flow's). */
int dp_tr_row_label(const trainer *t, uint64_t i);
/* A run's set-up: inputs, model, batches and step buffers; every rank's
 * result agreed (-1 on all when one failed; an empty message on the ranks
 * that did not fail themselves). Collective. */
int dp_tr_setup_run(trainer *t, char *errbuf);
/* Releases everything the trainer holds (and the MODEL.lock). */
void dp_tr_free(trainer *t);

/* ---- dp_train_balance.c ---- */
/* Applies o->balance to the training rows (auto resolved on their class
 * counts); the mode used goes to t->hp.balance. 0, or -1 + message. */
int dp_tr_apply_balance(trainer *t, char *errbuf);
/* The rows of the next epoch in t->tr, from the training rng (shuffled, or
 * --balance sample's draws). */
void dp_tr_epoch_order(trainer *t);

/* ---- dp_train_sae.c ---- */
/* SAE on packets, before the first epoch: greedy pre-training, one
 * checkpoint per layer. 0 (also when there is nothing to do), or -1 +
 * message. Collective. */
int dp_tr_pretrain_sae(trainer *t, char *errbuf);

/* ---- dp_train_save.c ---- */
/* Records a step's global loss for --loss-log (rank 0). 0, or -1 out of
 * memory. */
int dp_tr_note_curve(trainer *t, int phase, int epoch, long step, float loss, char *errbuf);
/* Writes --loss-log atomically (rank 0). 0, or -1 + message. */
int dp_tr_write_curve(trainer *t, char *errbuf);
/* MODEL.ckpt, written by rank 0 (its result on every rank). Collective. */
int dp_tr_save_ckpt(trainer *t, char *errbuf);
/* --resume: the model and the run's state from MODEL.ckpt, checked against
 * the run. 0, or -1 + message. */
int dp_tr_resume_model(trainer *t, char *errbuf);
/* The kept model with the run's hyper-parameters, saved atomically to
 * MODEL by rank 0 (its result on every rank), and the curves. Collective. */
int dp_tr_keep_and_save(trainer *t, char *errbuf);

/* ---- dp_train_ranks.c ---- */
/* Rank r's slice [lo, hi) of a global batch of nb rows. */
void dp_tr_rank_slice(const trainer *t, size_t nb, size_t *lo, size_t *hi);
/* Sums st[0..n) over the ranks, st[n - 1] the ok flag: 0 when every rank
 * is ok, else -1 (an empty message where another rank failed). Collective. */
int dp_tr_sum_stats(trainer *t, double *st, int n, char *errbuf);
/* g[0..n) times share, summed over the ranks in place. Collective. */
void dp_tr_sum_grads(trainer *t, float *g, size_t n, double share);
/* Rank 0's rc on every rank (an empty message on the others). Collective. */
int dp_tr_root_rc(const trainer *t, int rc, char *errbuf);
/* Rank 0's parameters and Adam moments on every rank. Collective. */
void dp_tr_sync_ranks(trainer *t);
/* -1 + message on a rank whose training set is not rank 0's. Collective,
 * whatever rc (this rank's set-up result so far). */
int dp_tr_same_data(trainer *t, int rc, char *errbuf);

/* ---- dp_train.c ---- */
/* --init (NN and gbt alike): 0 when model m (of the file path) has the
 * training set's classes, by name and in order; else -1 + a message naming
 * path and what differs. */
int dp_train_same_classes(const dp_model *m, const dp_splitset *ss, const char *path, char *errbuf);

/* The divergence error at (epoch, step) with the loss (rank 0 alone says
 * it). Returns -1. */
int dp_tr_diverged(const trainer *t, float loss, int epoch, long step, char *errbuf);

#endif
