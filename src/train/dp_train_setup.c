/* dp_train_setup: a run's set-up (inputs, model, row index, batch buffers)
 * and clean-up; see dp_train_impl.h. */
#include "train/dp_train_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/dp_nn.h"
#include "packet/dp_mask.h"
#include "train/dp_dist.h"
/* Stream constant: the training rng is seeded with seed ^ this, so that it
 * differs from the initialisation stream of dp_model_create(seed). */
#define DP_TRAIN_RNG_SALT 0x7472616e2d726e67ULL

/* The batch's rows: masked vectors into xb, or flow rows into xf. */
void dp_tr_gather(trainer *t, const uint32_t *idx, size_t n)
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

/* The class of training row i (a packet's, or the flow's). */
int dp_tr_row_label(const trainer *t, uint64_t i)
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

int dp_train_same_classes(const dp_model *m, const dp_splitset *ss, const char *path, char *errbuf)
{
    if (dp_model_nclasses(m) != ss->nclasses)
        return dp_err(errbuf, "%s: %d classes, the training set %d", path, dp_model_nclasses(m), ss->nclasses);
    for (int c = 0; c < ss->nclasses; c++) {
        const char *want = ss->names[c] ? ss->names[c] : "";
        if (strcmp(dp_model_class_name(m, c), want) != 0)
            return dp_err(errbuf, "%s: class %d is '%s', the training set's is '%s'", path, c,
                          dp_model_class_name(m, c), want);
    }
    return 0;
}

/* Says what m reads into buf (size n): its mask, and for flow rows the
 * flow options. */
static const char *inputs_name(const dp_model *m, char *buf, size_t n)
{
    char mk[64];
    const dp_flowcfg *f = dp_model_flowcfg(m);
    dp_mask_name(f ? f->mask : dp_model_mask(m), mk, sizeof mk);
    if (f)
        snprintf(buf, n, "--mask %s, --packets %d, --payload-bytes %d, features 0x%x", mk, f->npackets,
                 f->payload_bytes, (unsigned)f->groups);
    else
        snprintf(buf, n, "--mask %s", mk);
    return buf;
}

/* Copies the weights of the model file `path` into m (a fresh model of the
 * run's architecture): same kind, task, architecture (dropout aside), inputs (mask, flow
 * options) and class names, or a message saying what differs. Adam starts from zero, as in a new run. */
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
    char ia[160], ib[160];
    if (strcmp(inputs_name(m, ia, sizeof ia), inputs_name(src, ib, sizeof ib)) != 0) {
        dp_err(errbuf, "%s: a model of %s; this run trains one of %s: give the model's (its weights were "
               "learnt on those inputs)", path, ib, ia);
        goto done;
    }
    if (dp_train_same_classes(src, ss, path, errbuf) != 0)
        goto done;
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
    if (t->rank == 0 && !dp_path_written_through(o->model_path) &&
        (t->lock = dp_lock_target(o->model_path, "train", errbuf)) < 0)
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
    if (dp_path_written_through(o->model_path)) { /* no MODEL.ckpt beside a device or FIFO */
        if (o->resume)
            return dp_err(errbuf, "%s: --resume reads MODEL.ckpt, and a model written to a device or FIFO has none",
                          o->model_path);
    } else if (!(t->ckpt = malloc(pl)))
        return dp_err(errbuf, "out of memory");
    else
        snprintf(t->ckpt, pl, "%s.ckpt", o->model_path);
    if (dp_splitset_open_task(&t->ss, o->train_dir, o->task, errbuf) != 0)
        return -1;
    if (t->ss.n == 0)
        return dp_err(errbuf, "%s: empty training set", o->train_dir);
    return check_inputs(t, errbuf);
}

/* --resume: the checkpoint's model reads the inputs (mask, flow rows) and
 * has the architecture (dropout included) this run's options make, or -1 +
 * message naming what differs (before, the checkpoint's were used
 * silently whatever the options said). */
static int resume_same_model(trainer *t, char *errbuf)
{
    dp_model *fresh = new_model(t, errbuf);
    if (!fresh)
        return -1;
    const dp_arch *a = dp_model_arch(fresh), *b = dp_model_arch(t->m);
    char ia[160], ib[160];
    inputs_name(fresh, ia, sizeof ia);
    inputs_name(t->m, ib, sizeof ib);
    int rc = 0;
    if (strcmp(ia, ib) != 0 || dp_model_mask(fresh) != dp_model_mask(t->m))
        rc = dp_err(errbuf, "%s: cannot resume with %s: the checkpoint's run has %s (resume with its options, "
                    "or train without --resume)", t->ckpt, ia, ib);
    else if (memcmp(a, b, sizeof *a) != 0)
        rc = dp_err(errbuf, "%s: cannot resume with another architecture than the checkpoint's run (here conv "
                    "channels %d, dropout %g; there %d, %g): resume with its --cnn-channels and --dropout, or "
                    "train without --resume", t->ckpt, a->c1, (double)a->dropout, b->c1, (double)b->dropout);
    dp_model_free(fresh);
    return rc;
}

/* The model to train: resumed from the checkpoint, or fresh (from --init's
 * weights or the seed's initialisation) with a fresh run state. */
static int make_model(trainer *t, char *errbuf)
{
    if (t->o->resume)
        return dp_tr_resume_model(t, errbuf) == 0 ? resume_same_model(t, errbuf) : -1;
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
    if (setup_inputs(t, errbuf) != 0 || make_index(t, errbuf) != 0 || dp_tr_apply_balance(t, errbuf) != 0)
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

/* Releases everything the trainer holds (and the MODEL.lock). */
void dp_tr_free(trainer *t)
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

/* A run's set-up: inputs, model, batches and step buffers; every rank's
 * result agreed (-1 on all when one failed; an empty message on the ranks
 * that did not fail themselves). */
int dp_tr_setup_run(trainer *t, char *errbuf)
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
    if (t->size > 1 && dp_tr_same_data(t, rc, errbuf) != 0)
        rc = -1;
    if (dp_dist_all_ok(rc == 0))
        return 0;
    if (rc == 0)
        errbuf[0] = 0;
    return -1;
}
