/* dp_train: the training run, step by named step (dp_train_run), and the
 * supervised epoch loop; see dp_train.h, dp_train_impl.h and
 * docs/model-format.md. */
#include "train/dp_train_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/dp_gbt.h"
#include "train/dp_dist.h"

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

static const float *forward(trainer *t, int nb, int train, char *errbuf)
{
    return dp_model_forward(t->m, t->flows ? NULL : t->xb, t->flows ? t->xf : NULL, nb, train,
                            train ? &t->st.rng : NULL, errbuf);
}

/* Mean loss and accuracy over idx in eval mode: batch j of max(batch, 64)
 * rows on rank j mod size, the sums over the ranks. */
static int evaluate(trainer *t, const uint32_t *idx, size_t n, double *loss, double *acc, char *errbuf)
{
    double st[3] = {0, 0, 1}; /* loss sum, correct, ok */
    int B = t->hp.batch > 64 ? t->hp.batch : 64;
    for (size_t s = (size_t)t->rank * B; st[2] && s < n; s += (size_t)B * t->size) {
        int b = (int)(n - s < (size_t)B ? n - s : (size_t)B), c;
        dp_tr_gather(t, idx + s, (size_t)b);
        st[2] = forward(t, b, 0, errbuf) != NULL;
        if (st[2]) {
            st[0] += (double)dp_model_loss(t->m, t->yb, b, &c) * b;
            st[1] += c;
        }
    }
    if (dp_tr_sum_stats(t, st, 3, errbuf) != 0)
        return -1;
    *loss = st[0] / (double)n;
    *acc = st[1] / (double)n;
    return 0;
}

/* The divergence error (every rank sees the same global loss: rank 0 alone
 * says it). */
int dp_tr_diverged(const trainer *t, float loss, int epoch, long step, char *errbuf)
{
    dp_err(errbuf,
           "%s: training diverged at epoch %d, step %ld: loss %g (NaN/Inf or above %g); "
           "%s left untouched (try a smaller --lr)",
           t->o->train_dir, epoch, step, (double)loss, (double)DP_TRAIN_MAX_LOSS, t->o->model_path);
    if (t->rank != 0)
        errbuf[0] = 0;
    return -1;
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
    dp_tr_rank_slice(t, (size_t)nb, &lo, &hi);
    int n = (int)(hi - lo), c = 0;
    uint64_t key = dp_rng_u64(&t->st.rng);
    double st[4] = {0, 0, 0, 1}, w = 0; /* loss * weight, weight, correct, ok; this rank's weight */
    if (n > 0) {
        dp_tr_gather(t, idx + lo, (size_t)n);
        st[3] = dp_model_forward_rows(t->m, t->flows ? NULL : t->xb, t->flows ? t->xf : NULL, n, key, lo, errbuf) !=
                NULL;
        if (st[3]) {
            *loss = dp_model_loss(t->m, t->yb, n, &c);
            w = st[1] = batch_weight(t, n), st[0] = (double)*loss * w, st[2] = c;
        }
    }
    if (dp_tr_sum_stats(t, st, 4, errbuf) != 0)
        return -1;
    if (t->size > 1)
        *loss = (float)(st[0] / st[1]);
    *correct = (long)st[2];
    if (!isfinite(*loss) || *loss > DP_TRAIN_MAX_LOSS)
        return dp_tr_diverged(t, *loss, epoch, step, errbuf);
    float *g = dp_model_grads(t->m);
    if (n > 0 && dp_model_backward(t->m, t->yb, n, errbuf) != 0)
        return -1; /* cannot fail: the gradients exist (make_step_buffers) */
    if (n == 0)
        memset(g, 0, dp_model_nparams(t->m) * sizeof(float));
    dp_tr_sum_grads(t, g, dp_model_nparams(t->m), st[1] > 0 ? w / st[1] : 0);
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
    dp_tr_epoch_order(t);
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
            dp_tr_note_curve(t, 0, epoch, (long)step + 1, loss, errbuf) != 0)
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
        if (!isfinite(p[i])) { /* the same on every rank (dp_tr_sync_ranks): rank 0 alone says it */
            dp_err(errbuf, "%s: training diverged at epoch %d: non-finite weights; %s left untouched",
                   t->o->train_dir, epoch, t->o->model_path);
            if (t->rank != 0)
                errbuf[0] = 0;
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
        dp_tr_sync_ranks(t);
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
        if (dp_tr_save_ckpt(t, errbuf) != 0)
            return -1;
        if (dp_curves_add(&t->curves, loss, acc, validation ? vloss : NAN, validation ? vacc : NAN, errbuf) != 0)
            return -1;
        dp_curves_save(&t->curves, t->o->model_path, 0, NULL, NULL);
    }
    if (!t->o->quiet && t->st.bad_epochs >= t->hp.patience)
        fprintf(stderr, "early stop: no improvement for %d epochs\n", t->st.bad_epochs);
    return 0;
}

int dp_train_run(const dp_train_opts *o, char *errbuf)
{
    if (o->kind == DP_MODEL_GBT)
        return dp_train_gbt(o, errbuf);
    trainer T, *t = &T;
    memset(t, 0, sizeof T);
    dp_train_opts ro = *o; /* rank 0 alone prints */
    t->rank = dp_dist_rank(), t->size = dp_dist_size();
    ro.quiet |= t->rank != 0;
    t->lock = -1;
    t->o = &ro;
    t->hp = o->hp;
    int rc = dp_tr_setup_run(t, errbuf);
    if (rc == 0)
        rc = dp_tr_pretrain_sae(t, errbuf);
    if (rc == 0)
        rc = run_epochs(t, errbuf);
    if (rc == 0)
        rc = dp_tr_keep_and_save(t, errbuf);
    if (rc >= 0 && dp_tr_write_curve(t, errbuf) != 0)
        rc = -1;
    dp_tr_free(t);
    return rc < 0 ? -1 : 0; /* 1: max_steps stopped the run */
}
