/* dp_train_gbt: `train --model gbt`: gradient-boosted trees over the flow
 * rows of a training set (see dp_train.h, dp_gbt.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flow/dp_flowset.h"
#include "model/dp_gbt.h"
#include "packet/dp_mask.h"
#include "train/dp_curves.h"
#include "train/dp_dist.h"
#include "train/dp_gbt_tracker.h"
#include "train/dp_train.h"
#include "train/dp_train_impl.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Flows to train on: all, or per class a seeded random subset as large as
 * the smallest class (undersample). Fills idx (nflows entries), returns
 * the count. */
static uint64_t pick_flows(const dp_flowset *fs, int nclasses, int undersample, uint64_t seed, uint64_t *idx)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < fs->nflows; i++)
        idx[n++] = i;
    if (!undersample)
        return n;
    uint64_t count[DP_MAX_CLASSES] = {0}, keep = UINT64_MAX;
    for (uint64_t i = 0; i < n; i++)
        count[fs->flows[i].label]++;
    for (int c = 0; c < nclasses; c++)
        if (count[c] && count[c] < keep)
            keep = count[c];
    dp_rng r;
    dp_rng_seed(&r, seed ^ 0x67627475ULL);
    dp_rng_shuffle_u64(&r, idx, n);
    uint64_t taken[DP_MAX_CLASSES] = {0}, m = 0;
    for (uint64_t i = 0; i < n; i++) {
        int c = fs->flows[idx[i]].label;
        if (taken[c] < keep) {
            taken[c]++;
            idx[m++] = idx[i];
        }
    }
    /* back to flow order */
    qsort(idx, m, sizeof *idx, cmp_u64);
    return m;
}

/* Labels of the picked flows and, with class weights, n / (classes present
 * x count of the flow's class) per flow (NULL otherwise). */
static int labels_weights(const dp_flowset *fs, const uint64_t *idx, uint64_t n, int weighted, int *y, float **w,
                          char *errbuf)
{
    uint64_t count[DP_MAX_CLASSES] = {0};
    int present = 0;
    for (uint64_t i = 0; i < n; i++) {
        y[i] = fs->flows[idx[i]].label;
        present += count[y[i]]++ == 0;
    }
    *w = NULL;
    if (!weighted)
        return 0;
    if (!(*w = malloc(n * sizeof(float))))
        return dp_err(errbuf, "out of memory");
    for (uint64_t i = 0; i < n; i++)
        (*w)[i] = (float)((double)n / ((double)present * (double)count[y[i]]));
    return 0;
}

/* o->balance for the flows of fs (auto resolved on their class counts);
 * `sample` is refused before (cmd_train). */
static dp_balance gbt_balance(const dp_train_opts *o, const dp_flowset *fs, int nclasses)
{
    if (o->balance != DP_BALANCE_AUTO)
        return o->balance;
    uint64_t counts[DP_MAX_CLASSES] = {0};
    for (uint64_t i = 0; i < fs->nflows; i++)
        counts[fs->flows[i].label]++;
    return dp_train_balance_auto(DP_MODEL_GBT, counts, nclasses);
}

/* The GBT dp_model around a trained booster, ready to save. */
static dp_model *wrap_model(const dp_train_opts *o, const dp_splitset *ss, dp_gbt *g, int trees, uint64_t nflows,
                            dp_balance balance, char *errbuf)
{
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_GBT, o->task, ss->nclasses);
    a.in_len = dp_flowcfg_row_len(&o->flow);
    a.ext[0] = o->flow.npackets, a.ext[1] = dp_flowcfg_features(&o->flow);
    a.ext[2] = trees, a.ext[3] = o->gbt_depth; /* trees: with --init's, all of them */
    uint8_t *buf = NULL;
    size_t len = 0;
    if (dp_gbt_save(g, &buf, &len, errbuf) != 0)
        return NULL;
    dp_model *m = dp_model_create(&a, o->task, ss->names, o->hp.seed, errbuf);
    if (m && (dp_model_set_flowcfg(m, &o->flow, errbuf) != 0 || dp_model_set_blob(m, buf, len, errbuf) != 0)) {
        dp_model_free(m);
        m = NULL;
    }
    free(buf);
    if (!m)
        return NULL;
    dp_hparams *h = dp_model_hparams(m);
    *h = o->hp;
    h->epochs = h->epochs_run = trees;
    h->lr = o->gbt_eta;
    h->train_samples = nflows;
    h->balance = (int)balance;
    return m;
}

/* MODEL.curves.tsv/png: the booster's training mlogloss and accuracy per
 * round (no validation: the GBT trains on every flow it is given). */
static void save_curves(const dp_train_opts *o, const dp_gbt_params *gp)
{
    char errbuf[DP_ERRBUF_SIZE], title[160];
    dp_curves c = {0};
    for (int i = 0; i < gp->trees; i++)
        if (dp_curves_add(&c, gp->round_loss[i], gp->round_acc[i], NAN, NAN, errbuf) != 0)
            break;
    snprintf(title, sizeof title, "deeppacket train: gbt %s, %d rounds (training mlogloss, accuracy)",
             dp_task_name[o->task], gp->trees);
    dp_curves_save(&c, o->model_path, 1, title, "boosting round");
    dp_curves_free(&c);
}

/* What one GBT training holds; gbt_free releases whatever is set. */
typedef struct gbt_run {
    dp_splitset ss;
    int ss_open;
    dp_flowset fs;
    uint64_t *idx, n;       /* the picked flows (all ranks alike) */
    int *y;                 /* their labels */
    float *w;               /* their weights (NULL: none) */
    float *x;               /* rows [hi - lo, L] of this rank's slice */
    uint64_t lo, hi;
    size_t L;
    dp_balance balance;
    double *curve;          /* [2][trees]: training mlogloss and accuracy per round */
    dp_gbt *g;
    dp_model *init;         /* --init: the gbt model gone on from, or NULL */
    int lock;               /* rank 0: MODEL.lock (dp_lock_target), -1 when none */
} gbt_run;

static void gbt_free(gbt_run *R)
{
    dp_gbt_free(R->g);
    dp_model_free(R->init);
    free(R->x), free(R->w), free(R->y), free(R->idx), free(R->curve);
    dp_flowset_free(&R->fs);
    if (R->lock >= 0)
        close(R->lock);
    if (R->ss_open)
        dp_splitset_close(&R->ss);
}

/* The training set's flows, the ones picked (--balance), their labels and
 * weights. The same on every rank. */
static int load_flows(gbt_run *R, const dp_train_opts *o, char *errbuf)
{
    if (dp_splitset_open_task(&R->ss, o->train_dir, o->task, errbuf) != 0)
        return -1;
    R->ss_open = 1;
    if (dp_flowset_build(&R->fs, &R->ss, o->train_dir, &o->flow, errbuf) != 0)
        return -1;
    if (R->fs.nflows == 0)
        return dp_err(errbuf, "%s: no flows to train on", o->train_dir);
    R->idx = malloc(R->fs.nflows * sizeof *R->idx);
    R->y = malloc(R->fs.nflows * sizeof *R->y);
    if (!R->idx || !R->y)
        return dp_err(errbuf, "out of memory");
    R->L = (size_t)dp_flowcfg_row_len(&o->flow);
    R->balance = gbt_balance(o, &R->fs, R->ss.nclasses);
    R->n = pick_flows(&R->fs, R->ss.nclasses, R->balance == DP_BALANCE_UNDERSAMPLE, o->hp.seed, R->idx);
    return labels_weights(&R->fs, R->idx, R->n, R->balance == DP_BALANCE_WEIGHT, R->y, &R->w, errbuf);
}

/* --init MODEL: a gbt model of the same task, classes (by name, in order)
 * and flow rows (N, K, mask, feature groups), whose trees the new ones are
 * added to. 0 (R->init set), or -1 + message naming what differs. */
static int load_init(gbt_run *R, const dp_train_opts *o, char *errbuf)
{
    const char *p = o->init_path;
    if (!(R->init = dp_model_load(p, errbuf)))
        return -1;
    const dp_model *m = R->init;
    const dp_flowcfg *f = dp_model_flowcfg(m), *w = &o->flow;
    if (dp_model_arch(m)->kind != DP_MODEL_GBT || dp_model_task(m) != o->task)
        return dp_err(errbuf, "%s: a %s %s model; --init for gbt takes a gbt %s model", p, dp_model_kind_name(m),
                      dp_task_name[dp_model_task(m)], dp_task_name[o->task]);
    if (dp_train_same_classes(m, &R->ss, p, errbuf) != 0)
        return -1;
    if (f->npackets != w->npackets || f->payload_bytes != w->payload_bytes || f->mask != w->mask ||
        f->groups != w->groups) {
        char fm[128], wm[128], fg[64], wg[64];
        return dp_err(errbuf, "%s: its flow rows are --packets %d --payload-bytes %d --mask %s --features %s, this "
                      "run's --packets %d --payload-bytes %d --mask %s --features %s: give the model's", p,
                      f->npackets, f->payload_bytes, dp_mask_name(f->mask, fm, sizeof fm),
                      dp_flowfeat_groups_name(f->groups, fg, sizeof fg), w->npackets, w->payload_bytes,
                      dp_mask_name(w->mask, wm, sizeof wm), dp_flowfeat_groups_name(w->groups, wg, sizeof wg));
    }
    return 0;
}

/* With several ranks: -1 on every rank unless each one loaded its flows
 * and its rows (rc 0) and picked as many flows as rank 0; the failing rank
 * keeps its message, the others get an empty one. Collective. */
static int same_on_ranks(const gbt_run *R, const dp_train_opts *o, int rc, char *errbuf)
{
    if (dp_dist_size() == 1)
        return rc;
    uint64_t root[2] = {rc == 0, R->n};
    dp_dist_bcast(root, sizeof root);
    if (rc == 0 && root[0] && root[1] != R->n)
        rc = dp_err(errbuf, "%s: %llu training flows here, %llu on rank 0: every rank must read the same "
                    "training set", o->train_dir, (unsigned long long)R->n, (unsigned long long)root[1]);
    if (rc == 0 && R->n < (uint64_t)dp_dist_size())
        rc = dp_err(errbuf, "%s: %llu training flows for %d ranks", o->train_dir, (unsigned long long)R->n,
                    dp_dist_size());
    if (dp_dist_all_ok(rc == 0))
        return 0;
    if (rc == 0)
        errbuf[0] = 0;
    return -1;
}

/* This rank's rows: flows [n r / size, n (r + 1) / size) of the picked. */
static int slice_rows(gbt_run *R, const dp_train_opts *o, char *errbuf)
{
    int r = dp_dist_rank(), k = dp_dist_size();
    R->lo = R->n * (uint64_t)r / (uint64_t)k, R->hi = R->n * (uint64_t)(r + 1) / (uint64_t)k;
    uint64_t m = R->hi - R->lo;
    if (!(R->x = malloc(m * R->L * sizeof(float))))
        return dp_err(errbuf, "%s: out of memory for %llu flow rows of %zu floats", o->train_dir,
                      (unsigned long long)m, R->L);
    dp_flowset_rows(&R->fs, R->idx + R->lo, m, R->x);
    return 0;
}

/* Trains the booster on this rank's rows; with several ranks, joined to
 * the others through rank 0's tracker (dp_gbt_tracker), one booster for
 * all. */
static int train_booster(gbt_run *R, dp_gbt_params *gp, char *errbuf)
{
    int size = dp_dist_size();
    const float *w = R->w ? R->w + R->lo : NULL;
    uint64_t m = R->hi - R->lo;
    if (size == 1)
        return (R->g = dp_gbt_train(R->x, m, (int)R->L, R->y + R->lo, w, R->ss.nclasses, gp, errbuf)) ? 0 : -1;
    struct {
        char host[256];
        int port;
    } at = {"127.0.0.1", 0};
    dp_gbt_tracker *tr = NULL;
    if (dp_dist_rank() == 0 && (tr = dp_gbt_tracker_start(size, errbuf)) != NULL) {
        at.port = dp_gbt_tracker_port(tr);
        if (dp_dist_local_size() < size) /* ranks on other machines */
            dp_gbt_tracker_host(at.host, sizeof at.host);
    }
    dp_dist_bcast(&at, sizeof at);
    if (at.port == 0)
        return dp_dist_rank() == 0 ? -1 : (errbuf[0] = 0, -1);
    /* joined, the others wait on this rank inside XGBoost: a failure here
     * cannot be agreed on, it ends the job */
    if (dp_gbt_join(at.host, at.port, dp_dist_rank(), size, errbuf) != 0 ||
        !(R->g = dp_gbt_train(R->x, m, (int)R->L, R->y + R->lo, w, R->ss.nclasses, gp, errbuf)) ||
        dp_gbt_leave(errbuf) != 0) {
        fprintf(stderr, "deeppacket train: rank %d: %s\n", dp_dist_rank(), errbuf);
        dp_dist_abort(1);
    }
    int rc = tr ? dp_gbt_tracker_finish(tr, errbuf) : 0;
    if (dp_dist_root_rc(rc) == 0)
        return 0;
    if (rc == 0)
        errbuf[0] = 0; /* rank 0's tracker failed: it says so */
    return -1;
}

/* Rank 0: the model file and its curves. */
static int write_model(const dp_train_opts *o, const gbt_run *R, const dp_gbt_params *gp, double t0,
                       char *errbuf)
{
    int trees = gp->trees + (R->init ? dp_model_arch(R->init)->ext[2] : 0);
    dp_model *m = wrap_model(o, &R->ss, R->g, trees, R->n, R->balance, errbuf);
    if (!m || dp_model_save(m, o->model_path, errbuf) != 0) {
        dp_model_free(m);
        return -1;
    }
    dp_model_free(m);
    if (R->curve)
        save_curves(o, gp);
    if (!o->quiet)
        fprintf(stderr, "wrote %s (gbt %s, %d trees%s, %.1f s; peak memory %.0f MB)\n", o->model_path,
                dp_task_name[o->task], trees, R->init ? ", the --init model's and this run's" : "", dp_now() - t0,
                (double)dp_peak_rss() / 1e6);
    return 0;
}

int dp_train_gbt(const dp_train_opts *o, char *errbuf)
{
    if (o->resume)
        return dp_err(errbuf, "train: --resume is for neural models (a gbt trains in one go; --init MODEL "
                      "adds trees to a gbt model)");
    gbt_run R;
    memset(&R, 0, sizeof R);
    R.lock = -1;
    dp_train_opts ro = *o; /* rank 0 alone prints */
    ro.quiet |= dp_dist_rank() != 0;
    int rc = load_flows(&R, &ro, errbuf);
    if (rc == 0 && dp_dist_rank() == 0 && !dp_path_written_through(o->model_path) && /* as the NN's check_inputs */
        (R.lock = dp_lock_target(o->model_path, "train", errbuf)) < 0)
        rc = -1;
    if (rc == 0 && o->init_path)
        rc = load_init(&R, o, errbuf);
    if (rc == 0)
        rc = slice_rows(&R, &ro, errbuf);
    rc = same_on_ranks(&R, &ro, rc, errbuf);
    dp_gbt_params gp;
    dp_gbt_params_default(&gp);
    gp.trees = o->gbt_trees, gp.depth = o->gbt_depth, gp.eta = o->gbt_eta, gp.colsample = o->gbt_colsample;
    gp.threads = o->hp.threads > 0 ? o->hp.threads : 1, gp.seed = o->hp.seed, gp.quiet = ro.quiet;
    if (R.init)
        gp.init = dp_model_blob(R.init, &gp.init_len);
    if (rc == 0 && gp.trees > 0 && (R.curve = malloc(2 * (size_t)gp.trees * sizeof *R.curve)))
        gp.round_loss = R.curve, gp.round_acc = R.curve + gp.trees;
    if (rc == 0 && !ro.quiet)
        fprintf(stderr, "train gbt %s: %llu training flows of %llu, %d classes, %zu features, %d trees, depth %d, "
                "eta %g, balance %s\n", dp_task_name[o->task], (unsigned long long)R.n,
                (unsigned long long)R.fs.nflows, R.ss.nclasses, R.L, gp.trees, gp.depth, (double)gp.eta,
                dp_balance_name[R.balance]);
    if (rc == 0 && !ro.quiet && dp_dist_size() > 1)
        fprintf(stderr, "train gbt: the flows shared out over %d ranks (%llu on rank 0), one booster (XGBoost's "
                "rabit communicator)\n", dp_dist_size(), (unsigned long long)(R.hi - R.lo));
    double t0 = dp_now();
    if (rc == 0)
        rc = train_booster(&R, &gp, errbuf);
    if (rc == 0) {
        int mine = dp_dist_rank() == 0 ? write_model(&ro, &R, &gp, t0, errbuf) : 0;
        if ((rc = dp_dist_root_rc(mine)) != 0 && mine == 0)
            errbuf[0] = 0; /* rank 0's write failed: it says so */
    }
    gbt_free(&R);
    return rc;
}
