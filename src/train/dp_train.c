/* dp_train: the training loop; see dp_train.h and docs/model-format.md. */
#include "train/dp_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset/dp_dataset.h"
#include "flow/dp_flowset.h"
#include "model/dp_gbt.h"
#include "nn/dp_nn.h"
#include "packet/dp_mask.h"
#include "train/dp_curves.h"
#include "train/dp_dist.h"

/* A mean batch loss above this (cross-entropy of e^-1000) is divergence. */
#define DP_TRAIN_MAX_LOSS 1000.0f
/* Stream constant: the training rng is seeded with seed ^ this, so that it
 * differs from the initialisation stream of dp_model_create(seed). */
#define DP_TRAIN_RNG_SALT 0x7472616e2d726e67ULL

/* Stream constant of --balance undersample's draws: dp_rng(seed ^ this). */
#define DP_TRAIN_UNDER_SALT 0x756e6465722d736dULL

const char *const dp_balance_name[5] = {"none", "undersample", "weight", "sample", "auto"};

int dp_balance_parse(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, dp_balance_name[i]))
            return i;
    return -1;
}

void dp_train_opts_default(dp_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->task = DP_TASK_TRAFFIC;
    o->kind = DP_MODEL_CNN;
    dp_hparams_default(&o->hp);
    o->dropout = -1;
    dp_flowcfg_default(&o->flow);
    o->flow.mask = 0;
    dp_gbt_params gp;
    dp_gbt_params_default(&gp);
    o->gbt_trees = gp.trees, o->gbt_depth = gp.depth, o->gbt_eta = gp.eta, o->gbt_colsample = gp.colsample;
    o->balance = DP_BALANCE_AUTO;
}

dp_balance dp_train_balance_auto(int kind, const uint64_t *counts, int nclasses)
{
    if (kind == DP_MODEL_GBT)
        return DP_BALANCE_WEIGHT;
    if (kind == DP_MODEL_FLOW)
        return DP_BALANCE_NONE;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int c = 0; c < nclasses; c++)
        if (counts[c]) {
            lo = counts[c] < lo ? counts[c] : lo;
            hi = counts[c] > hi ? counts[c] : hi;
        }
    return hi <= lo ? DP_BALANCE_NONE : DP_BALANCE_SAMPLE;
}

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
    int rank, size;      /* dp_dist: this process's rank, the ranks */
    dp_curve_point *curve; /* --loss-log: the global loss of every step */
    size_t ncurve, capcurve;
    double curve0;       /* dp_now() when the first step was recorded */
} trainer;

/* The batch's rows: masked vectors into xb, or flow rows into xf. */
static void gather(trainer *t, const uint32_t *idx, size_t n)
{
    size_t L = (size_t)dp_model_arch(t->m)->in_len;
    for (size_t i = 0; i < n; i++) {
        if (t->flows) {
            dp_flowset_row(&t->fs, idx[i], t->xf + i * L);
            t->yb[i] = t->fs.flows[idx[i]].label;
            continue;
        }
        memcpy(t->xb + i * DP_VEC_LEN, dp_splitset_vector(&t->ss, idx[i]), DP_VEC_LEN);
        dp_mask_apply(t->mask, t->xb + i * DP_VEC_LEN);
        t->yb[i] = dp_splitset_label(&t->ss, idx[i]);
    }
}

static const float *forward(trainer *t, int nb, int train, char *errbuf)
{
    return dp_model_forward(t->m, t->flows ? NULL : t->xb, t->flows ? t->xf : NULL, nb, train,
                            train ? &t->st.rng : NULL, errbuf);
}

/* The class of training row i (a packet's, or the flow's). */
static int row_label(const trainer *t, uint64_t i)
{
    return t->flows ? t->fs.flows[i].label : dp_splitset_label(&t->ss, i);
}

/* The flow id of training row i (a packet's, or the flow's own). */
static uint64_t row_flow(const trainer *t, uint64_t i)
{
    if (t->flows)
        return t->fs.flows[i].id;
    return dp_splitset_meta(&t->ss, i).flow;
}

/* ---- data parallelism (dp_dist) -------------------------------------------
 * Every rank holds the whole model and the same training state and draws
 * the same epoch orders; a global batch of nb rows is cut into one slice
 * per rank, rows [nb r / size, nb (r + 1) / size) on rank r. */
static void rank_slice(const trainer *t, size_t nb, size_t *lo, size_t *hi)
{
    *lo = nb * (size_t)t->rank / (size_t)t->size;
    *hi = nb * (size_t)(t->rank + 1) / (size_t)t->size;
}

/* Sums the statistics st[0..n) over the ranks; st[n - 1] is this rank's
 * ok flag (1 or 0). Returns 0 when every rank is ok, else -1: with this
 * rank's message when it failed itself, an empty one when another did. */
static int sum_stats(trainer *t, double *st, int n, char *errbuf)
{
    int own_ok = st[n - 1] > 0;
    dp_dist_sum_doubles(st, (size_t)n);
    if (st[n - 1] >= t->size)
        return 0;
    if (own_ok)
        errbuf[0] = 0;
    return -1;
}

/* This rank's gradients g[0..n), computed on its slice, times its share of
 * the batch's loss weight, summed over the ranks in place (MPI_Allreduce).
 * Nothing with one rank. */
static void sum_grads(trainer *t, float *g, size_t n, double share)
{
    if (t->size == 1)
        return;
    float s = (float)share;
    for (size_t i = 0; i < n; i++)
        g[i] *= s;
    dp_dist_sum_floats(g, n);
}

/* Rank 0's result of an action only it takes (a checkpoint, the model) on
 * every rank; a rank other than 0 gets an empty message. */
static int root_rc(const trainer *t, int rc, char *errbuf)
{
    rc = dp_dist_root_rc(rc);
    if (rc != 0 && t->rank != 0)
        errbuf[0] = 0;
    return rc;
}

/* Records a step's global loss for --loss-log. 0, or -1 out of memory. */
static int note_curve(trainer *t, int phase, int epoch, long step, float loss, char *errbuf)
{
    if (!t->o->loss_log || t->rank != 0)
        return 0;
    if (t->ncurve == t->capcurve) {
        size_t cap = t->capcurve ? 2 * t->capcurve : 1024;
        dp_curve_point *p = realloc(t->curve, cap * sizeof *p);
        if (!p)
            return dp_err(errbuf, "out of memory for the loss log");
        t->curve = p, t->capcurve = cap;
    }
    double now = dp_now();
    if (!t->ncurve)
        t->curve0 = now;
    t->curve[t->ncurve++] = (dp_curve_point){phase, epoch, step, loss, now - t->curve0};
    return 0;
}

/* --loss-log: one line per step, "phase epoch step loss time" (phase
 * "train" or "pretrainL"; time in seconds after the first step, for rates
 * without the start-up), written atomically by rank 0. */
static int write_curve(trainer *t, char *errbuf)
{
    if (!t->o->loss_log || t->rank != 0)
        return 0;
    dp_afile af;
    if (dp_afile_open(&af, t->o->loss_log, errbuf) != 0)
        return -1;
    fprintf(af.f, "phase\tepoch\tstep\tloss\ttime\n");
    for (size_t i = 0; i < t->ncurve; i++) {
        const dp_curve_point *p = &t->curve[i];
        if (p->phase)
            fprintf(af.f, "pretrain%d\t%d\t%ld\t%.9g\t%.6f\n", p->phase, p->epoch, p->step, (double)p->loss,
                    p->time);
        else
            fprintf(af.f, "train\t%d\t%ld\t%.9g\t%.6f\n", p->epoch, p->step, (double)p->loss, p->time);
    }
    return dp_afile_commit(&af, errbuf);
}

/* After an epoch: rank 0's parameters and Adam moments on every rank, so
 * that all hold exactly what its checkpoint holds (the summed gradients are
 * the same on every rank already; this keeps any rounding difference of
 * the MPI library from adding up). */
static void sync_ranks(trainer *t)
{
    if (t->size == 1)
        return;
    size_t n = dp_model_nparams(t->m) * sizeof(float);
    dp_dist_bcast(dp_model_params(t->m), n);
    dp_dist_bcast(dp_model_adam_m(t->m), n);
    dp_dist_bcast(dp_model_adam_v(t->m), n);
}

/* MODEL.ckpt, written by rank 0 (its result on every rank). */
static int save_ckpt(trainer *t, char *errbuf)
{
    t->st.data_rows = t->data_rows;
    t->st.data_fp = t->data_fp;
    int rc = t->rank == 0 ? dp_model_save_checkpoint(t->m, &t->st, t->ckpt, errbuf) : 0;
    return root_rc(t, rc, errbuf);
}

/* Splits rows into training and validation by flow: a flow is held out
 * when a hash of (flow id, seed) falls under the fraction. */
static int make_index(trainer *t, char *errbuf)
{
    uint64_t n = t->flows ? t->fs.nflows : t->ss.n;
    if (n > UINT32_MAX)
        return dp_err(errbuf, "%s: %llu rows, more than this trainer indexes", t->o->train_dir,
                      (unsigned long long)n);
    t->tr = malloc(sizeof(uint32_t) * (n ? n : 1));
    t->va = malloc(sizeof(uint32_t) * (n ? n : 1));
    if (!t->tr || !t->va)
        return dp_err(errbuf, "%s: out of memory", t->o->train_dir);
    float f = t->hp.validation;
    if (f > 0 && !t->ss.has_meta)
        return dp_err(errbuf, "%s: --validation needs meta.npy (flow ids), which is missing", t->o->train_dir);
    for (uint64_t i = 0; i < n; i++) {
        int val = 0;
        if (f > 0) {
            uint64_t flow = row_flow(t, i);
            uint64_t h = dp_fnv1a(&flow, sizeof flow, DP_FNV_INIT ^ t->hp.seed);
            h ^= h >> 33;
            h *= 0xff51afd7ed558ccdULL;
            h ^= h >> 33;
            val = (double)(h >> 11) * (1.0 / 9007199254740992.0) < f;
        }
        if (val)
            t->va[t->nva++] = (uint32_t)i;
        else
            t->tr[t->ntr++] = (uint32_t)i;
    }
    if (t->ntr && !(t->tr0 = malloc(t->ntr * sizeof(uint32_t))))
        return dp_err(errbuf, "%s: out of memory", t->o->train_dir);
    if (t->ntr)
        memcpy(t->tr0, t->tr, t->ntr * sizeof(uint32_t));
    if (t->ntr == 0)
        return dp_err(errbuf, "%s: no training rows%s", t->o->train_dir, f > 0 ? " left after --validation" : "");
    if (f > 0 && t->nva == 0)
        return dp_err(errbuf, "%s: --validation %g holds out no flow (too few flows)", t->o->train_dir, f);
    return 0;
}

void dp_train_class_weights(const uint64_t *counts, int nclasses, float *w)
{
    uint64_t n = 0;
    int k = 0;
    for (int c = 0; c < nclasses; c++) {
        n += counts[c];
        k += counts[c] > 0;
    }
    for (int c = 0; c < nclasses; c++)
        w[c] = counts[c] ? (float)((double)n / ((double)k * (double)counts[c])) : 0.0f;
}

void dp_train_balanced_draw(dp_rng *r, const uint32_t *rows, const size_t *off, int nclasses, uint32_t *out,
                            size_t n)
{
    int present[DP_MAX_CLASSES], k = 0;
    for (int c = 0; c < nclasses; c++)
        if (off[c + 1] > off[c])
            present[k++] = c;
    if (!k)
        return;
    for (size_t i = 0; i < n; i++) {
        int c = present[dp_rng_below(r, (uint64_t)k)];
        out[i] = rows[off[c] + dp_rng_below(r, off[c + 1] - off[c])];
    }
}

/* Groups the training rows by class (t->byclass, t->off, t->present). */
static int group_by_class(trainer *t, char *errbuf)
{
    int C = t->ss.nclasses;
    size_t pos[DP_MAX_CLASSES];
    memset(t->off, 0, sizeof t->off);
    if (!(t->byclass = malloc(t->ntr * sizeof(uint32_t))))
        return dp_err(errbuf, "%s: out of memory", t->o->train_dir);
    for (size_t i = 0; i < t->ntr; i++)
        t->off[row_label(t, t->tr0[i]) + 1]++;
    t->npresent = 0;
    for (int c = 0; c < C; c++) {
        if (t->off[c + 1])
            t->present[t->npresent++] = c;
        t->off[c + 1] += t->off[c];
    }
    memcpy(pos, t->off, sizeof pos);
    for (size_t i = 0; i < t->ntr; i++)
        t->byclass[pos[row_label(t, t->tr0[i])]++] = t->tr0[i];
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* --balance undersample: every class cut at random to the smallest one's
 * rows; t->tr0 keeps the kept rows in ascending order. */
static void undersample(trainer *t)
{
    size_t cap = SIZE_MAX;
    for (int k = 0; k < t->npresent; k++) {
        int c = t->present[k];
        if (t->off[c + 1] - t->off[c] < cap)
            cap = t->off[c + 1] - t->off[c];
    }
    dp_rng r;
    dp_rng_seed(&r, t->hp.seed ^ DP_TRAIN_UNDER_SALT);
    size_t n = 0;
    for (int k = 0; k < t->npresent; k++) {
        int c = t->present[k];
        uint32_t *a = t->byclass + t->off[c];
        size_t nc = t->off[c + 1] - t->off[c];
        for (size_t j = 0; j < cap && nc > cap; j++) {
            size_t x = j + (size_t)dp_rng_below(&r, nc - j);
            uint32_t tmp = a[j];
            a[j] = a[x];
            a[x] = tmp;
        }
        memcpy(t->tr0 + n, a, cap * sizeof(uint32_t));
        n += cap;
    }
    qsort(t->tr0, n, sizeof(uint32_t), cmp_u32);
    t->ntr = n;
}

/* Applies o->balance to the training rows made by make_index (auto
 * resolved on their class counts); the mode used goes to t->hp.balance. */
static int apply_balance(trainer *t, char *errbuf)
{
    dp_balance b = t->o->balance;
    if (b != DP_BALANCE_NONE && group_by_class(t, errbuf) != 0)
        return -1;
    uint64_t counts[DP_MAX_CLASSES] = {0};
    for (int c = 0; b != DP_BALANCE_NONE && c < t->ss.nclasses; c++)
        counts[c] = t->off[c + 1] - t->off[c];
    if (b == DP_BALANCE_AUTO)
        b = dp_train_balance_auto(dp_model_arch(t->m)->kind, counts, t->ss.nclasses);
    t->hp.balance = (int)b;
    if (b == DP_BALANCE_UNDERSAMPLE)
        undersample(t);
    if (b == DP_BALANCE_WEIGHT) {
        dp_train_class_weights(counts, t->ss.nclasses, t->cw);
        dp_model_set_class_weights(t->m, t->cw);
    }
    return 0;
}

/* The rows of the next epoch in t->tr, from the training rng: the ascending
 * training index shuffled, or (--balance sample) ntr class-balanced draws
 * with replacement. The order of an epoch only depends on the rng state at
 * its start, which the checkpoint holds. */
static void epoch_order(trainer *t)
{
    if (t->hp.balance == DP_BALANCE_SAMPLE) {
        dp_train_balanced_draw(&t->st.rng, t->byclass, t->off, t->ss.nclasses, t->tr, t->ntr);
        return;
    }
    memcpy(t->tr, t->tr0, t->ntr * sizeof(uint32_t));
    dp_rng_shuffle_u32(&t->st.rng, t->tr, t->ntr);
}

/* Mean loss and accuracy over idx in eval mode: batch j of max(batch, 64)
 * rows on rank j mod size, the sums over the ranks. */
static int evaluate(trainer *t, const uint32_t *idx, size_t n, double *loss, double *acc, char *errbuf)
{
    double st[3] = {0, 0, 1}; /* loss sum, correct, ok */
    int B = t->hp.batch > 64 ? t->hp.batch : 64;
    for (size_t s = (size_t)t->rank * B; st[2] && s < n; s += (size_t)B * t->size) {
        int b = (int)(n - s < (size_t)B ? n - s : (size_t)B), c;
        gather(t, idx + s, (size_t)b);
        st[2] = forward(t, b, 0, errbuf) != NULL;
        if (st[2]) {
            st[0] += (double)dp_model_loss(t->m, t->yb, b, &c) * b;
            st[1] += c;
        }
    }
    if (sum_stats(t, st, 3, errbuf) != 0)
        return -1;
    *loss = st[0] / (double)n;
    *acc = st[1] / (double)n;
    return 0;
}

/* The divergence error (every rank sees the same global loss: rank 0 alone
 * says it). */
static int diverged(const trainer *t, float loss, int epoch, long step, char *errbuf)
{
    dp_err(errbuf,
           "%s: training diverged at epoch %d, step %ld: loss %g (NaN/Inf or above %g); "
           "%s left untouched (try a smaller --lr)",
           t->o->train_dir, epoch, step, (double)loss, (double)DP_TRAIN_MAX_LOSS, t->o->model_path);
    if (t->rank != 0)
        errbuf[0] = 0;
    return -1;
}

/* ---- SAE greedy layer-wise pre-training ---------------------------------------
 * Hidden layer L as an autoencoder on the outputs of layers 0..L-1 (eval
 * mode): encoder = the model's fc(L) + ReLU, decoder = a temporary Linear
 * back to the input width; MSE reconstruction loss; Adam with the training
 * hyper-parameters; hp.pretrain_epochs epochs per layer; no dropout. */
/* The input of SAE layer L for the gathered batch: the scaled bytes
 * (L = 0) or the eval-mode activations of layer L - 1, into inp [nb, in]. */
static int layer_input(trainer *t, int L, int nb, int in, float *inp, char *errbuf)
{
    if (L == 0) {
        for (size_t i = 0; i < (size_t)nb * in; i++)
            inp[i] = (float)t->xb[i] * (1.0f / 255.0f);
        return 0;
    }
    const float *p = dp_model_hidden(t->m, t->xb, nb, L - 1, errbuf);
    if (!p)
        return -1;
    memcpy(inp, p, sizeof(float) * (size_t)nb * in);
    return 0;
}

/* The autoencoder of SAE pre-training layer L: the model's fc(L) as the encoder, a
 * temporary decoder back to the layer's input width, the Adam moments of
 * both and the batch buffers. */
typedef struct sae_ae {
    int L, in, h, tstep;
    size_t ne, nd;            /* encoder (W, b) and decoder floats */
    float *W, *b, *dW, *db;   /* in the model's parameters and gradients */
    float *dec, *ddec, *me, *ve, *md, *vd;
    float *inp, *hid, *rec, *drec, *dhid;
} sae_ae;

static void ae_free(sae_ae *a)
{
    free(a->dec), free(a->ddec), free(a->me), free(a->ve), free(a->md), free(a->vd);
    free(a->inp), free(a->hid), free(a->rec), free(a->drec), free(a->dhid);
}

/* Allocates the ae of layer L and draws the decoder's initialisation from
 * the training rng (the same draws on every rank). 0, or -1 + message. */
static int ae_init(trainer *t, int L, sae_ae *a, char *errbuf)
{
    memset(a, 0, sizeof *a);
    a->L = L;
    dp_model_fc(t->m, L, &a->W, &a->b, &a->dW, &a->db, &a->in, &a->h);
    int in = a->in, h = a->h;
    a->ne = (size_t)in * h + h, a->nd = (size_t)h * in + in;
    if (a->b != a->W + (size_t)in * h || a->db != a->dW + (size_t)in * h)
        return dp_err(errbuf, "internal: fc%d weight and bias not adjacent", L + 1);
    size_t B = (size_t)t->hp.batch;
    a->dec = calloc(a->nd, sizeof(float)), a->ddec = calloc(a->nd, sizeof(float));
    a->me = calloc(a->ne, sizeof(float)), a->ve = calloc(a->ne, sizeof(float));
    a->md = calloc(a->nd, sizeof(float)), a->vd = calloc(a->nd, sizeof(float));
    a->inp = calloc(B * in, sizeof(float)), a->hid = calloc(B * h, sizeof(float));
    a->rec = calloc(B * in, sizeof(float)), a->drec = calloc(B * in, sizeof(float));
    a->dhid = calloc(B * h, sizeof(float));
    if (!a->dec || !a->ddec || !a->me || !a->ve || !a->md || !a->vd || !a->inp || !a->hid || !a->rec || !a->drec ||
        !a->dhid)
        return dp_err(errbuf, "out of memory for pre-training layer %d", L + 1);
    float bound = (float)(1.0 / sqrt((double)h));
    dp_init_uniform(a->dec, (size_t)h * in, bound, &t->st.rng);
    dp_init_uniform(a->dec + (size_t)h * in, (size_t)in, bound, &t->st.rng);
    return 0;
}

/* The forward pass of the ae on nb gathered rows: *loss, the MSE of the
 * reconstruction. 0, or -1 + message. */
static int ae_forward(trainer *t, sae_ae *a, int nb, float *loss, char *errbuf)
{
    if (layer_input(t, a->L, nb, a->in, a->inp, errbuf) != 0)
        return -1;
    float *Wd = a->dec, *bd = a->dec + (size_t)a->h * a->in;
    dp_linear_forward(a->hid, a->inp, a->W, a->b, nb, a->in, a->h);
    dp_relu_forward(a->hid, a->hid, (size_t)nb * a->h);
    dp_linear_forward(a->rec, a->hid, Wd, bd, nb, a->h, a->in);
    *loss = dp_mse_forward(a->rec, a->inp, (size_t)nb * a->in);
    return 0;
}

/* Backpropagates the ae's MSE on nb rows into dW, db (the model's
 * gradients) and ddec. */
static void ae_backward(sae_ae *a, int nb)
{
    size_t nin = (size_t)nb * a->in;
    float *Wd = a->dec, *dWd = a->ddec, *dbd = a->ddec + (size_t)a->h * a->in;
    dp_mse_backward(a->drec, a->rec, a->inp, nin);
    dp_linear_backward(a->dhid, dWd, dbd, a->drec, a->hid, Wd, nb, a->h, a->in);
    dp_relu_backward(a->dhid, a->dhid, a->hid, (size_t)nb * a->h);
    dp_linear_backward(NULL, a->dW, a->db, a->dhid, a->inp, a->W, nb, a->in, a->h);
}

/* One pre-training step on the global batch rows idx[0..nb): this rank's
 * slice through the ae, the statistics and gradients summed over the ranks,
 * one Adam step of encoder and decoder. *loss: the batch's MSE. */
static int pretrain_step(trainer *t, sae_ae *a, const uint32_t *idx, int nb, long step, float *loss, char *errbuf)
{
    size_t lo, hi;
    rank_slice(t, (size_t)nb, &lo, &hi);
    int n = (int)(hi - lo);
    double st[3] = {0, 0, 1}; /* MSE * rows, rows, ok */
    memset(a->ddec, 0, a->nd * sizeof(float));
    memset(a->dW, 0, a->ne * sizeof(float));
    if (n > 0) {
        gather(t, idx + lo, (size_t)n);
        st[2] = ae_forward(t, a, n, loss, errbuf) == 0;
        st[0] = (double)*loss * n, st[1] = n;
    }
    if (sum_stats(t, st, 3, errbuf) != 0)
        return -1;
    if (t->size > 1)
        *loss = (float)(st[0] / st[1]);
    if (!isfinite(*loss) || *loss > DP_TRAIN_MAX_LOSS)
        return diverged(t, *loss, 0, step, errbuf);
    if (n > 0)
        ae_backward(a, n);
    sum_grads(t, a->dW, a->ne, n / st[1]);
    sum_grads(t, a->ddec, a->nd, n / st[1]);
    a->tstep++;
    dp_adam_update(a->W, a->dW, a->me, a->ve, a->ne, t->hp.lr, t->hp.beta1, t->hp.beta2, t->hp.eps, a->tstep);
    dp_adam_update(a->dec, a->ddec, a->md, a->vd, a->nd, t->hp.lr, t->hp.beta1, t->hp.beta2, t->hp.eps, a->tstep);
    return 0;
}

/* Hidden layer L as an autoencoder (see above) for hp.pretrain_epochs
 * epochs. 0, or -1 + message. */
static int pretrain_layer(trainer *t, int L, char *errbuf)
{
    sae_ae a;
    int B = t->hp.batch, nh = dp_model_arch(t->m)->nhidden, rc = ae_init(t, L, &a, errbuf);
    dp_progress pr;
    dp_progress_init(&pr);
    for (int e = 0; rc == 0 && e < t->hp.pretrain_epochs; e++) {
        epoch_order(t);
        double sl = 0, t0 = dp_now();
        for (size_t s = 0; rc == 0 && s < t->ntr; s += (size_t)B) {
            int nb = (int)(t->ntr - s < (size_t)B ? t->ntr - s : (size_t)B);
            float loss = 0;
            if ((rc = pretrain_step(t, &a, t->tr + s, nb, (long)(s / B), &loss, errbuf)) != 0)
                break;
            sl += (double)loss * nb;
            rc = note_curve(t, L + 1, e + 1, (long)(s / B) + 1, loss, errbuf);
            if (!t->o->quiet && dp_progress_due(&pr))
                dp_progress_print(&pr, "pre-train layer %d/%d epoch %d/%d step %zu/%zu mse %.5f", L + 1, nh, e + 1,
                                  t->hp.pretrain_epochs, s / B + 1, (t->ntr + B - 1) / B, sl / (double)(s + nb));
        }
        if (rc == 0 && !t->o->quiet) {
            dp_progress_done(&pr);
            fprintf(stderr, "pre-train layer %d/%d epoch %d/%d: mse %.6f, %.0f samples/s\n", L + 1, nh, e + 1,
                    t->hp.pretrain_epochs, sl / (double)t->ntr, (double)t->ntr / fmax(dp_now() - t0, 1e-9));
        }
    }
    ae_free(&a);
    return rc;
}

/* The loss weight of the nb gathered rows: their class weights under
 * --balance weight (the loss is sum w l / sum w), else nb. */
static double batch_weight(const trainer *t, int nb)
{
    if (t->hp.balance != DP_BALANCE_WEIGHT)
        return nb;
    double w = 0;
    for (int i = 0; i < nb; i++)
        w += t->cw[t->yb[i]];
    return w;
}

/* One optimiser step on the global batch rows idx[0..nb): this rank's
 * slice forward (dropout masks per row, keyed by one draw of the training
 * rng and the row's place in the global batch) and backward, the
 * statistics and the gradients summed over the ranks (each rank's weighted
 * by its share of the batch's loss weight, so the sum is the gradient of
 * the global batch's mean loss), one Adam step. *loss, *correct: the global
 * batch's. 0, or -1 + message. */
static int train_step(trainer *t, const uint32_t *idx, int nb, int epoch, long step, float *loss, long *correct,
                      char *errbuf)
{
    size_t lo, hi;
    rank_slice(t, (size_t)nb, &lo, &hi);
    int n = (int)(hi - lo), c = 0;
    uint64_t key = dp_rng_u64(&t->st.rng);
    double st[4] = {0, 0, 0, 1}, w = 0; /* loss * weight, weight, correct, ok; this rank's weight */
    if (n > 0) {
        gather(t, idx + lo, (size_t)n);
        st[3] = dp_model_forward_rows(t->m, t->flows ? NULL : t->xb, t->flows ? t->xf : NULL, n, key, lo, errbuf) !=
                NULL;
        if (st[3]) {
            *loss = dp_model_loss(t->m, t->yb, n, &c);
            w = st[1] = batch_weight(t, n), st[0] = (double)*loss * w, st[2] = c;
        }
    }
    if (sum_stats(t, st, 4, errbuf) != 0)
        return -1;
    if (t->size > 1)
        *loss = (float)(st[0] / st[1]);
    *correct = (long)st[2];
    if (!isfinite(*loss) || *loss > DP_TRAIN_MAX_LOSS)
        return diverged(t, *loss, epoch, step, errbuf);
    float *g = dp_model_grads(t->m);
    if (n > 0 && dp_model_backward(t->m, t->yb, n, errbuf) != 0)
        return -1; /* cannot fail: the gradients exist (make_step_buffers) */
    if (n == 0)
        memset(g, 0, dp_model_nparams(t->m) * sizeof(float));
    sum_grads(t, g, dp_model_nparams(t->m), st[1] > 0 ? w / st[1] : 0);
    return dp_model_adam_step(t->m, t->hp.lr, t->hp.beta1, t->hp.beta2, t->hp.eps, errbuf);
}

/* One supervised epoch; *mean_loss, *acc over the epoch's batches. */
static int train_epoch(trainer *t, int epoch, double *mean_loss, double *acc, char *errbuf)
{
    int B = t->hp.batch;
    size_t nsteps = (t->ntr + B - 1) / B;
    double sl = 0, t0 = dp_now();
    long corr = 0;
    size_t seen = 0;
    dp_progress pr;
    dp_progress_init(&pr);
    epoch_order(t);
    for (size_t step = 0; step < nsteps; step++) {
        if (t->o->max_steps > 0 && t->steps >= t->o->max_steps) {
            t->killed = 1;
            return 0;
        }
        size_t s = step * B;
        int nb = (int)(t->ntr - s < (size_t)B ? t->ntr - s : (size_t)B);
        float loss = 0;
        long c = 0;
        if (train_step(t, t->tr + s, nb, epoch, (long)step + 1, &loss, &c, errbuf) != 0 ||
            note_curve(t, 0, epoch, (long)step + 1, loss, errbuf) != 0)
            return -1;
        t->steps++;
        sl += (double)loss * nb;
        corr += c;
        seen += (size_t)nb;
        if (!t->o->quiet && dp_progress_due(&pr)) {
            double el = dp_now() - t0, rate = (double)seen / fmax(el, 1e-9);
            char eta[32];
            dp_fmt_duration(eta, sizeof eta, (double)(t->ntr - seen) / rate);
            dp_progress_print(&pr, "epoch %d/%d step %zu/%zu loss %.4f acc %.3f %.0f samples/s ETA %s", epoch,
                              t->hp.epochs, step + 1, nsteps, sl / (double)seen, (double)corr / (double)seen,
                              rate, eta);
        }
    }
    if (!t->o->quiet)
        dp_progress_done(&pr);
    *mean_loss = sl / (double)seen;
    *acc = (double)corr / (double)seen;
    return 0;
}

static int check_params(trainer *t, int epoch, char *errbuf)
{
    const float *p = dp_model_params(t->m);
    size_t n = dp_model_nparams(t->m);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) { /* the same on every rank (sync_ranks): rank 0 alone says it */
            dp_err(errbuf, "%s: training diverged at epoch %d: non-finite weights; %s left untouched",
                   t->o->train_dir, epoch, t->o->model_path);
            if (t->rank != 0)
                errbuf[0] = 0;
            return -1;
        }
    return 0;
}

/* Copies the weights of the model file `path` into m (a fresh model of the
 * run's architecture): same kind, task, architecture (dropout aside) and class names, or a
 * message saying what differs. Adam starts from zero, as in a new run. */
static int init_from(dp_model *m, const char *path, const dp_splitset *ss, char *errbuf)
{
    dp_model *src = dp_model_load(path, errbuf);
    if (!src)
        return -1;
    const dp_arch *a = dp_model_arch(m);
    dp_arch b_ = *dp_model_arch(src), *b = &b_;
    b_.dropout = a->dropout; /* a training setting, not the weights' shape */
    int rc = -1;
    if (memcmp(a, b, sizeof *a) != 0 || dp_model_task(m) != dp_model_task(src) ||
        dp_model_nparams(m) != dp_model_nparams(src)) {
        dp_err(errbuf, "%s: a %s %s model with %d classes (%zu parameters); this run trains a %s %s model with %d "
               "classes (%zu parameters)", path, dp_model_kind_name(src), dp_task_name[dp_model_task(src)],
               b->nclasses, dp_model_nparams(src), dp_model_kind_name(m), dp_task_name[dp_model_task(m)], a->nclasses,
               dp_model_nparams(m));
        goto done;
    }
    for (int c = 0; c < a->nclasses; c++) {
        const char *want = ss->names[c] ? ss->names[c] : "";
        if (strcmp(dp_model_class_name(src, c), want) != 0) {
            dp_err(errbuf, "%s: class %d is '%s', the training set's is '%s'", path, c, dp_model_class_name(src, c),
                   want);
            goto done;
        }
    }
    memcpy(dp_model_params(m), dp_model_params(src), sizeof(float) * dp_model_nparams(m));
    rc = 0;
done:
    dp_model_free(src);
    return rc;
}

/* The training set is the task's, and no other train writes MODEL (the
 * lock is held until the run ends; by rank 0, which alone writes). */
static int check_inputs(trainer *t, char *errbuf)
{
    const dp_train_opts *o = t->o;
    if (t->ss.task >= 0 && t->ss.task != o->task)
        return dp_err(errbuf, "%s: a training set of the %s task; this run trains the %s task (-t %s)",
                      o->train_dir, dp_task_name[t->ss.task], dp_task_name[o->task], dp_task_name[o->task]);
    if (t->rank == 0 && (t->lock = dp_lock_target(o->model_path, "train", errbuf)) < 0)
        return -1;
    t->data_rows = t->ss.n;
    t->data_fp = dp_splitset_fingerprint(&t->ss);
    return 0;
}

/* A fresh model of the run's kind: packet vectors with the field mask, or
 * flow rows of o->flow (in_len N*F; the flow NN's ext[0] = N, ext[1] = F). */
static dp_model *new_model(trainer *t, char *errbuf)
{
    const dp_train_opts *o = t->o;
    int flows = o->flows || o->kind == DP_MODEL_FLOW;
    dp_arch a;
    dp_arch_default(&a, o->kind, o->task, t->ss.nclasses);
    if (o->cnn_channels > 0 && o->kind == DP_MODEL_CNN)
        a.c1 = a.c2 = o->cnn_channels;
    if (o->dropout >= 0)
        a.dropout = o->dropout;
    if (flows) {
        if (o->kind == DP_MODEL_CNN) {
            dp_err(errbuf, "train: the CNN reads packet vectors, not flow rows");
            return NULL;
        }
        if (dp_flowcfg_check(&o->flow, "train", errbuf) < 0)
            return NULL;
        a.in_len = dp_flowcfg_row_len(&o->flow);
        if (o->kind == DP_MODEL_FLOW)
            a.ext[0] = o->flow.npackets, a.ext[1] = dp_flowcfg_features(&o->flow);
    }
    dp_model *m = dp_model_create(&a, o->task, t->ss.names, t->hp.seed, errbuf);
    if (m && flows && dp_model_set_flowcfg(m, &o->flow, errbuf) != 0) {
        dp_model_free(m);
        return NULL;
    }
    if (m && !flows)
        dp_model_set_mask(m, o->flow.mask);
    return m;
}

/* The batch buffers, and for a flow model the flowset of the training set
 * (with the model's flow configuration, so a resumed run sees the same). */
static int setup_inputs(trainer *t, char *errbuf)
{
    size_t B = (size_t)(t->hp.batch > 64 ? t->hp.batch : 64);
    const dp_flowcfg *fc = dp_model_flowcfg(t->m);
    t->flows = fc != NULL;
    t->mask = dp_model_mask(t->m);
    if (t->flows) {
        if (dp_flowset_build(&t->fs, &t->ss, t->o->train_dir, fc, errbuf) != 0)
            return -1;
        t->xf = malloc(B * (size_t)dp_model_arch(t->m)->in_len * sizeof(float));
    } else {
        t->xb = malloc(B * DP_VEC_LEN);
    }
    t->yb = malloc(sizeof(int) * B);
    if ((t->flows ? !t->xf : !t->xb) || !t->yb)
        return dp_err(errbuf, "out of memory");
    return 0;
}

/* Checks the hyper-parameters, names the checkpoint, opens the training set
 * (memory-mapped) and checks it (check_inputs). */
static int open_inputs(trainer *t, char *errbuf)
{
    const dp_train_opts *o = t->o;
    if (t->hp.batch < 1 || t->hp.epochs < 0 || t->hp.patience < 1 || !(t->hp.lr > 0))
        return dp_err(errbuf, "train: bad hyper-parameters (batch %d, epochs %d, patience %d, lr %g)",
                      t->hp.batch, t->hp.epochs, t->hp.patience, (double)t->hp.lr);
    size_t pl = strlen(o->model_path) + 8;
    t->ckpt = malloc(pl);
    if (!t->ckpt)
        return dp_err(errbuf, "out of memory");
    snprintf(t->ckpt, pl, "%s.ckpt", o->model_path);
    if (dp_splitset_open_task(&t->ss, o->train_dir, o->task, errbuf) != 0)
        return -1;
    if (t->ss.n == 0)
        return dp_err(errbuf, "%s: empty training set", o->train_dir);
    return check_inputs(t, errbuf);
}

/* --resume: the model and the run's state from MODEL.ckpt, which must be of
 * the same kind, task, classes and training set; the seed and validation
 * fraction are the checkpoint's. */
static int resume_model(trainer *t, char *errbuf)
{
    const dp_train_opts *o = t->o;
    t->m = dp_model_load_checkpoint(t->ckpt, &t->st, errbuf);
    if (!t->m)
        return -1;
    const dp_arch *a = dp_model_arch(t->m);
    if (a->kind != o->kind || dp_model_task(t->m) != o->task || a->nclasses != t->ss.nclasses)
        return dp_err(errbuf, "%s: checkpoint is a %s %s model with %d classes; cannot resume a %s %s run on %d classes",
                      t->ckpt, dp_model_kind_name(t->m), dp_task_name[dp_model_task(t->m)], a->nclasses,
                      o->kind == DP_MODEL_CNN ? "cnn" : "sae", dp_task_name[o->task], t->ss.nclasses);
    if (t->st.has_data && (t->st.data_rows != t->data_rows || t->st.data_fp != t->data_fp))
        return dp_err(errbuf, "%s: checkpoint of a run on another training set (%llu rows; %s has %llu or other "
                      "labels): train without --resume, or resume against the run's own training set",
                      t->ckpt, (unsigned long long)t->st.data_rows, o->train_dir, (unsigned long long)t->ss.n);
    /* the split and the rng depend on the original seed */
    t->hp.seed = dp_model_hparams(t->m)->seed;
    t->hp.validation = dp_model_hparams(t->m)->validation;
    if (!o->quiet)
        fprintf(stderr, "resuming %s after epoch %d\n", t->ckpt, t->st.epoch);
    dp_curves_resume(&t->curves, o->model_path, t->st.epoch);
    return 0;
}

/* The model to train: resumed from the checkpoint, or fresh (from --init's
 * weights or the seed's initialisation) with a fresh run state. */
static int make_model(trainer *t, char *errbuf)
{
    if (t->o->resume)
        return resume_model(t, errbuf);
    t->m = new_model(t, errbuf);
    if (!t->m)
        return -1;
    if (t->o->init_path && init_from(t->m, t->o->init_path, &t->ss, errbuf) != 0)
        return -1;
    dp_rng_seed(&t->st.rng, t->hp.seed ^ DP_TRAIN_RNG_SALT);
    t->st.best_loss = INFINITY;
    return 0;
}

/* ", K ranks" for a data-parallel run, else "" (a static buffer). */
static const char *ranks_note(const trainer *t)
{
    static char note[48];
    note[0] = 0;
    if (t->size > 1)
        snprintf(note, sizeof note, ", %d ranks (global batch)", t->size);
    return note;
}

/* The batch buffers, the row index (training and validation rows) and the
 * class balance; says what will be trained unless quiet. */
static int setup_batches(trainer *t, char *errbuf)
{
    const dp_train_opts *o = t->o;
    if (setup_inputs(t, errbuf) != 0 || make_index(t, errbuf) != 0 || apply_balance(t, errbuf) != 0)
        return -1;
    if (!o->quiet)
        fprintf(stderr,
                "train %s %s: %zu parameters, %zu training %s%s, %d classes, batch %d, lr %g, seed %llu, balance %s%s%s\n",
                dp_model_kind_name(t->m), dp_task_name[o->task], dp_model_nparams(t->m), t->ntr,
                t->flows ? "flows" : "rows",
                t->nva ? " (+ validation rows)" : "", dp_model_arch(t->m)->nclasses, t->hp.batch, (double)t->hp.lr,
                (unsigned long long)t->hp.seed, dp_balance_name[t->hp.balance],
                dp_nn_get_precision() == DP_PREC_BF16 ? ", precision bf16" : "", ranks_note(t));
    if (!o->quiet && t->nva)
        fprintf(stderr, "validation: %zu rows held out by flow (%.0f%% of flows)\n", t->nva,
                (double)t->hp.validation * 100);
    return 0;
}

/* SAE on packets, before the first epoch: greedy pre-training, one
 * checkpoint per layer (a resumed run continues at its layer). */
static int pretrain_sae(trainer *t, char *errbuf)
{
    const dp_arch *arch = dp_model_arch(t->m);
    if (arch->kind != DP_MODEL_SAE || t->flows || t->st.epoch != 0)
        return 0;
    while (t->st.phase < arch->nhidden && t->hp.pretrain_epochs > 0) {
        if (pretrain_layer(t, t->st.phase, errbuf) != 0)
            return -1;
        t->st.phase++;
        sync_ranks(t);
        if (save_ckpt(t, errbuf) != 0)
            return -1;
    }
    return 0;
}

/* Early stopping's bookkeeping after an epoch whose monitored loss is MON:
 * a new best resets the patience (and with validation keeps a copy of the
 * parameters). Sets *improved; returns 0, or -1 out of memory. */
static int note_epoch(trainer *t, double mon, int *improved, char *errbuf)
{
    *improved = mon < t->st.best_loss;
    if (!*improved) {
        t->st.bad_epochs++;
        return 0;
    }
    t->st.best_loss = (float)mon;
    t->st.bad_epochs = 0;
    if (t->nva > 0) {
        size_t n = dp_model_nparams(t->m);
        if (!t->st.best_params && !(t->st.best_params = malloc(n * sizeof(float))))
            return dp_err(errbuf, "out of memory");
        memcpy(t->st.best_params, dp_model_params(t->m), n * sizeof(float));
        t->st.has_best = 1;
    }
    return 0;
}

/* The epoch loop: train, check, validate, note, report, checkpoint, until
 * the epochs or the patience run out. Returns 0, 1 when max_steps stopped
 * the run (nothing more is written), or -1 on error. */
static int run_epochs(trainer *t, char *errbuf)
{
    int validation = t->nva > 0;
    while (t->st.epoch < t->hp.epochs && t->st.bad_epochs < t->hp.patience) {
        int epoch = t->st.epoch + 1, improved;
        double t0 = dp_now(), loss = 0, acc = 0, vloss = 0, vacc = 0;
        if (train_epoch(t, epoch, &loss, &acc, errbuf) != 0)
            return -1;
        if (t->killed)
            return 1;
        sync_ranks(t);
        if (check_params(t, epoch, errbuf) != 0)
            return -1;
        double el = dp_now() - t0;
        if (validation && evaluate(t, t->va, t->nva, &vloss, &vacc, errbuf) != 0)
            return -1;
        if (note_epoch(t, validation ? vloss : loss, &improved, errbuf) != 0)
            return -1;
        t->st.epoch = epoch;
        if (!t->o->quiet) {
            if (validation)
                fprintf(stderr,
                        "epoch %d/%d: loss %.4f acc %.4f, validation loss %.4f acc %.4f%s, %.0f samples/s, %.1f s\n",
                        epoch, t->hp.epochs, loss, acc, vloss, vacc, improved ? " (best)" : "",
                        (double)t->ntr / fmax(el, 1e-9), el);
            else
                fprintf(stderr, "epoch %d/%d: loss %.4f acc %.4f%s, %.0f samples/s, %.1f s\n", epoch, t->hp.epochs,
                        loss, acc, improved ? " (best)" : "", (double)t->ntr / fmax(el, 1e-9), el);
        }
        if (save_ckpt(t, errbuf) != 0)
            return -1;
        if (dp_curves_add(&t->curves, loss, acc, validation ? vloss : NAN, validation ? vacc : NAN, errbuf) != 0)
            return -1;
        dp_curves_save(&t->curves, t->o->model_path, 0, NULL, NULL);
    }
    if (!t->o->quiet && t->st.bad_epochs >= t->hp.patience)
        fprintf(stderr, "early stop: no improvement for %d epochs\n", t->st.bad_epochs);
    return 0;
}

/* The kept model (the best validation epoch, else the last one) with the
 * run's hyper-parameters, saved atomically to MODEL by rank 0 (its result
 * on every rank). */
static int keep_and_save(trainer *t, char *errbuf)
{
    const dp_train_opts *o = t->o;
    int validation = t->nva > 0;
    dp_hparams *mh = dp_model_hparams(t->m);
    *mh = t->hp;
    mh->epochs_run = t->st.epoch;
    mh->final_loss = t->st.best_loss;
    mh->train_samples = t->ntr;
    if (validation && t->st.has_best)
        memcpy(dp_model_params(t->m), t->st.best_params, dp_model_nparams(t->m) * sizeof(float));
    if (root_rc(t, t->rank == 0 ? dp_model_save(t->m, o->model_path, errbuf) : 0, errbuf) != 0)
        return -1;
    char title[160];
    snprintf(title, sizeof title, "deeppacket train: %s %s, %d epochs", dp_model_kind_name(t->m),
             dp_task_name[o->task], t->st.epoch);
    dp_curves_save(&t->curves, o->model_path, 1, title, "epoch");
    if (!o->quiet)
        fprintf(stderr, "wrote %s (%s %s, %d epochs, %s loss %.4f; peak memory %.0f MB)\n", o->model_path,
                dp_model_kind_name(t->m), dp_task_name[o->task], t->st.epoch,
                validation ? "best validation" : "training", (double)t->st.best_loss, (double)dp_peak_rss() / 1e6);
    return 0;
}

/* Releases everything the trainer holds (and the MODEL.lock). */
static void trainer_free(trainer *t)
{
    dp_model_free(t->m);
    dp_flowset_free(&t->fs);
    dp_splitset_close(&t->ss);
    free(t->xf);
    free(t->st.best_params);
    free(t->tr);
    free(t->tr0);
    free(t->byclass);
    free(t->va);
    free(t->xb);
    free(t->yb);
    free(t->ckpt);
    free(t->curve);
    dp_curves_free(&t->curves);
    if (t->lock >= 0)
        close(t->lock);
}

/* The buffers every step needs (gradients, Adam moments), made before the
 * ranks agree to start, so that no step fails on one rank alone. */
static int make_step_buffers(trainer *t, char *errbuf)
{
    if (!dp_model_grads(t->m) || !dp_model_adam_m(t->m) || !dp_model_adam_v(t->m))
        return dp_err(errbuf, "out of memory for the gradients and the optimiser state");
    return 0;
}

/* Every rank trains on rank 0's training set (its row count and
 * fingerprint): -1 + message on a rank whose set differs (another copy of
 * the data on another machine). Collective: call on every rank, whatever
 * rc (this rank's set-up result so far). */
static int same_data(trainer *t, int rc, char *errbuf)
{
    uint64_t mine[2] = {t->data_rows, t->data_fp}, root[3] = {t->data_rows, t->data_fp, rc == 0};
    dp_dist_bcast(root, sizeof root);
    if (rc != 0 || !root[2] || (mine[0] == root[0] && mine[1] == root[1]))
        return 0; /* a failed set-up (here or on rank 0) speaks for itself */
    return dp_err(errbuf, "%s: %llu rows, fingerprint %016llx; rank 0's training set has %llu rows, fingerprint "
                  "%016llx: every rank must read the same training set", t->o->train_dir,
                  (unsigned long long)mine[0], (unsigned long long)mine[1], (unsigned long long)root[0],
                  (unsigned long long)root[1]);
}

/* A run's set-up: inputs, model, batches and step buffers; every rank's
 * result agreed (-1 on all when one failed; an empty message on the ranks
 * that did not fail themselves). */
static int setup_run(trainer *t, char *errbuf)
{
    int rc = open_inputs(t, errbuf);
    if (rc == 0 && (rc = dp_nn_set_precision(t->o->precision, errbuf)) == 0) {
        dp_nn_set_threads(t->hp.threads);
        rc = make_model(t, errbuf);
    }
    if (rc == 0)
        rc = setup_batches(t, errbuf);
    if (rc == 0)
        rc = make_step_buffers(t, errbuf);
    if (t->size > 1 && same_data(t, rc, errbuf) != 0)
        rc = -1;
    if (dp_dist_all_ok(rc == 0))
        return 0;
    if (rc == 0)
        errbuf[0] = 0;
    return -1;
}

/* The GBT under a data-parallel job: trained by rank 0 alone (XGBoost's own
 * distributed mode needs its Python tracker, which Debian's package does
 * not give a C program); the other ranks wait for its result. */
static int train_gbt_on_root(const dp_train_opts *o, char *errbuf)
{
    int rc = 0;
    if (dp_dist_rank() == 0) {
        if (dp_dist_size() > 1 && !o->quiet)
            fprintf(stderr, "train gbt: on rank 0 alone (%d ranks started; XGBoost trains here in one process)\n",
                    dp_dist_size());
        rc = dp_train_gbt(o, errbuf);
    }
    rc = dp_dist_root_rc(rc);
    if (rc != 0 && dp_dist_rank() != 0)
        errbuf[0] = 0;
    return rc;
}

int dp_train_run(const dp_train_opts *o, char *errbuf)
{
    if (o->kind == DP_MODEL_GBT)
        return train_gbt_on_root(o, errbuf);
    trainer T, *t = &T;
    memset(t, 0, sizeof T);
    dp_train_opts ro = *o; /* rank 0 alone prints */
    t->rank = dp_dist_rank(), t->size = dp_dist_size();
    ro.quiet |= t->rank != 0;
    t->lock = -1;
    t->o = &ro;
    t->hp = o->hp;
    int rc = setup_run(t, errbuf);
    if (rc == 0)
        rc = pretrain_sae(t, errbuf);
    if (rc == 0)
        rc = run_epochs(t, errbuf);
    if (rc == 0)
        rc = keep_and_save(t, errbuf);
    if (rc >= 0 && write_curve(t, errbuf) != 0)
        rc = -1;
    trainer_free(t);
    return rc < 0 ? -1 : 0; /* 1: max_steps stopped the run */
}

int dp_train_bench(int kind, int task, int nclasses, int batch, int steps, int threads, int precision,
                   const char *infer_dir, double *train_sps, double *infer_pps, double cpu_rates[2],
                   char *errbuf)
{
    if (dp_nn_set_precision(precision, errbuf) != 0)
        return -1;
    dp_splitset set = {0};
    if (infer_dir) {
        if (dp_splitset_open_task(&set, infer_dir, task, errbuf) != 0)
            return -1;
        if (set.vectors.shape[0] < (uint64_t)batch) {
            dp_err(errbuf, "%s: %llu vectors, fewer than the batch size %d", infer_dir,
                   (unsigned long long)set.vectors.shape[0], batch);
            dp_splitset_close(&set);
            return -1;
        }
    }
    dp_nn_set_threads(threads);
    dp_arch a;
    dp_arch_default(&a, kind, task, nclasses);
    dp_model *m = dp_model_create(&a, task, NULL, 9876, errbuf);
    if (!m)
        return -1;
    uint8_t *x = malloc((size_t)batch * DP_VEC_LEN);
    int *y = malloc(sizeof(int) * (size_t)batch);
    float *lp = malloc(sizeof(float) * (size_t)batch * nclasses);
    int rc = -1;
    if (!x || !y || !lp) {
        dp_err(errbuf, "out of memory");
        goto out;
    }
    dp_rng r;
    dp_rng_seed(&r, 1);
    for (size_t i = 0; i < (size_t)batch * DP_VEC_LEN; i++)
        x[i] = (uint8_t)dp_rng_below(&r, 256);
    for (int b = 0; b < batch; b++)
        y[b] = (int)dp_rng_below(&r, (uint64_t)nclasses);
    double t0 = 0, c0 = 0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1)
            t0 = dp_now(), c0 = dp_cpu_now();
        if (!dp_model_forward(m, x, NULL, batch, 1, &r, errbuf))
            goto out;
        dp_model_loss(m, y, batch, NULL);
        if (dp_model_backward(m, y, batch, errbuf) != 0 || dp_model_adam_step(m, 1e-3f, 0.9f, 0.999f, 1e-8f, errbuf) != 0)
            goto out;
    }
    *train_sps = (double)steps * batch / fmax(dp_now() - t0, 1e-9);
    if (cpu_rates)
        cpu_rates[0] = (double)steps * batch / fmax(dp_cpu_now() - c0, 1e-9);
    for (int s = 0; s <= steps; s++) {
        if (s == 1)
            t0 = dp_now(), c0 = dp_cpu_now();
        const uint8_t *xs = x;
        if (infer_dir)
            xs = set.vectors.data + DP_VEC_LEN * ((uint64_t)s * batch % (set.vectors.shape[0] - (uint64_t)batch + 1));
        if (dp_model_predict(m, xs, batch, lp, errbuf) != 0)
            goto out;
    }
    *infer_pps = (double)steps * batch / fmax(dp_now() - t0, 1e-9);
    if (cpu_rates)
        cpu_rates[1] = (double)steps * batch / fmax(dp_cpu_now() - c0, 1e-9);
    rc = 0;
out:
    free(x);
    free(y);
    free(lp);
    dp_model_free(m);
    if (infer_dir)
        dp_splitset_close(&set);
    return rc;
}
