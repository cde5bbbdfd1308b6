/* dp_train_save: what a run writes and reads back: MODEL.ckpt (--resume),
 * the kept model and its curves, the --loss-log; see dp_train_impl.h. */
#include "train/dp_train_impl.h"

#include "nn/dp_nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records a step's global loss for --loss-log. 0, or -1 out of memory. */
int dp_tr_note_curve(trainer *t, int phase, int epoch, long step, float loss, char *errbuf)
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
int dp_tr_write_curve(trainer *t, char *errbuf)
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

/* MODEL.ckpt, written by rank 0 (its result on every rank); none when MODEL
 * is written through (t->ckpt NULL). */
int dp_tr_save_ckpt(trainer *t, char *errbuf)
{
    if (!t->ckpt)
        return 0;
    t->st.data_rows = t->data_rows;
    t->st.data_fp = t->data_fp;
    t->st.precision = dp_nn_get_precision();
    dp_hparams *mh = dp_model_hparams(t->m); /* the run's settings, for --resume to check */
    *mh = t->hp;
    mh->epochs_run = t->st.epoch;
    mh->final_loss = t->st.best_loss;
    mh->train_samples = t->ntr;
    int rc = t->rank == 0 ? dp_model_save_checkpoint(t->m, &t->st, t->ckpt, errbuf) : 0;
    return dp_tr_root_rc(t, rc, errbuf);
}

/* The first setting (batch size, learning rate, Adam's, seed, validation
 * fraction, pre-training epochs) in which h differs from the checkpoint's
 * run ck, said into what (size n); "" when they agree. */
static void changed_setting(const dp_hparams *h, const dp_hparams *ck, char *what, size_t n)
{
    what[0] = 0;
    if (h->batch != ck->batch)
        snprintf(what, n, "batch size %d: the checkpoint's run has batch size %d", h->batch, ck->batch);
    else if (h->lr != ck->lr)
        snprintf(what, n, "learning rate %g: the checkpoint's run has --lr %g", (double)h->lr, (double)ck->lr);
    else if (h->beta1 != ck->beta1 || h->beta2 != ck->beta2 || h->eps != ck->eps)
        snprintf(what, n, "other Adam settings than the checkpoint's run");
    else if (h->seed != ck->seed)
        snprintf(what, n, "seed %llu: the checkpoint's run has --seed %llu", (unsigned long long)h->seed,
                 (unsigned long long)ck->seed);
    else if (h->validation != ck->validation)
        snprintf(what, n, "validation fraction %g: the checkpoint's run has --validation %g",
                 (double)h->validation, (double)ck->validation);
    else if (h->pretrain_epochs != ck->pretrain_epochs)
        snprintf(what, n, "%d pre-training epochs: the checkpoint's run has --pretrain-epochs %d",
                 h->pretrain_epochs, ck->pretrain_epochs);
}

/* The run's settings against those the checkpoint records (-1 + message
 * naming the first that differs); the epochs, patience and threads may
 * change, and are said. A checkpoint written before the settings were
 * recorded (balance -1) gives its seed and validation fraction, as before. */
static int resume_settings(trainer *t, const dp_hparams *ck, char *errbuf)
{
    t->ckpt_balance = ck->balance; /* checked once resolved (dp_tr_apply_balance) */
    if (ck->balance < 0) {
        t->hp.seed = ck->seed, t->hp.validation = ck->validation;
        if (!t->o->quiet)
            fprintf(stderr, "%s: an older checkpoint that does not record its run's settings: resuming with "
                    "this command's batch size and learning rate\n", t->ckpt);
        return 0;
    }
    char what[160];
    changed_setting(&t->hp, ck, what, sizeof what);
    if (what[0])
        return dp_err(errbuf, "%s: cannot resume with %s (resume with the run's own settings, or train "
                      "without --resume)", t->ckpt, what);
    if (!t->o->quiet && (t->hp.epochs != ck->epochs || t->hp.patience != ck->patience ||
                         t->hp.threads != ck->threads))
        fprintf(stderr, "%s: resuming with --epochs %d, --patience %d, -j %d (the checkpoint's run: %d, %d, %d)\n",
                t->ckpt, t->hp.epochs, t->hp.patience, t->hp.threads, ck->epochs, ck->patience, ck->threads);
    return 0;
}

/* --resume: the model and the run's state from MODEL.ckpt, which must be of
 * the same kind, task, classes, training set and settings (resume_settings;
 * the architecture and mask are checked by the caller). */
int dp_tr_resume_model(trainer *t, char *errbuf)
{
    const dp_train_opts *o = t->o;
    t->m = dp_model_load_checkpoint(t->ckpt, &t->st, errbuf);
    if (!t->m)
        return -1;
    const dp_arch *a = dp_model_arch(t->m);
    if (a->kind != o->kind || dp_model_task(t->m) != o->task || a->nclasses != t->ss.nclasses)
        return dp_err(errbuf, "%s: checkpoint is a %s %s model with %d classes; cannot resume a %s %s run on %d classes",
                      t->ckpt, dp_model_kind_name(t->m), dp_task_name[dp_model_task(t->m)], a->nclasses,
                      dp_model_kind_str(o->kind), dp_task_name[o->task], t->ss.nclasses);
    if (t->st.has_data && (t->st.data_rows != t->data_rows || t->st.data_fp != t->data_fp))
        return dp_err(errbuf, "%s: checkpoint of a run on another training set (%llu rows; %s has %llu or other "
                      "labels): train without --resume, or resume against the run's own training set",
                      t->ckpt, (unsigned long long)t->st.data_rows, o->train_dir, (unsigned long long)t->ss.n);
    if (t->st.precision >= 0 && t->st.precision != dp_nn_get_precision())
        return dp_err(errbuf, "%s: cannot resume with precision %s: the checkpoint's run computed in %s (resume "
                      "with --precision %s, or train without --resume)", t->ckpt,
                      dp_nn_precision_name(dp_nn_get_precision()), dp_nn_precision_name(t->st.precision),
                      dp_nn_precision_name(t->st.precision));
    if (resume_settings(t, dp_model_hparams(t->m), errbuf) != 0)
        return -1;
    if (!o->quiet)
        fprintf(stderr, "resuming %s after epoch %d\n", t->ckpt, t->st.epoch);
    dp_curves_resume(&t->curves, o->model_path, t->st.epoch);
    return 0;
}

/* The kept model (the best validation epoch, else the last one) with the
 * run's hyper-parameters, saved atomically to MODEL by rank 0 (its result
 * on every rank). */
int dp_tr_keep_and_save(trainer *t, char *errbuf)
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
    if (dp_tr_root_rc(t, t->rank == 0 ? dp_model_save(t->m, o->model_path, errbuf) : 0, errbuf) != 0)
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
