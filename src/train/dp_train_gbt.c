/* dp_train_gbt: `train --model gbt`: gradient-boosted trees over the flow
 * rows of a training set (see dp_train.h, dp_gbt.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow/dp_flowset.h"
#include "model/dp_gbt.h"
#include "train/dp_curves.h"
#include "train/dp_train.h"

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
static dp_model *wrap_model(const dp_train_opts *o, const dp_splitset *ss, dp_gbt *g, uint64_t nflows,
                            dp_balance balance, char *errbuf)
{
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_GBT, o->task, ss->nclasses);
    a.in_len = dp_flowcfg_row_len(&o->flow);
    a.ext[0] = o->flow.npackets, a.ext[1] = dp_flowcfg_features(&o->flow);
    a.ext[2] = o->gbt_trees, a.ext[3] = o->gbt_depth;
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
    h->epochs = h->epochs_run = o->gbt_trees;
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

int dp_train_gbt(const dp_train_opts *o, char *errbuf)
{
    if (o->resume || o->init_path)
        return dp_err(errbuf, "train: --resume and --init are for neural models, not gbt");
    dp_splitset ss;
    dp_flowset fs;
    memset(&fs, 0, sizeof fs);
    if (dp_splitset_open_task(&ss, o->train_dir, o->task, errbuf) != 0)
        return -1;
    int rc = -1;
    uint64_t *idx = NULL, n = 0;
    int *y = NULL;
    float *x = NULL, *w = NULL;
    double *curve = NULL; /* [2][trees]: training mlogloss and accuracy per round */
    dp_gbt *g = NULL;
    dp_model *m = NULL;
    if (dp_flowset_build(&fs, &ss, o->train_dir, &o->flow, errbuf) != 0)
        goto out;
    if (fs.nflows == 0) {
        dp_err(errbuf, "%s: no flows to train on", o->train_dir);
        goto out;
    }
    idx = malloc(fs.nflows * sizeof *idx);
    y = malloc(fs.nflows * sizeof *y);
    size_t L = (size_t)dp_flowcfg_row_len(&o->flow);
    if (!idx || !y) {
        dp_err(errbuf, "out of memory");
        goto out;
    }
    dp_balance balance = gbt_balance(o, &fs, ss.nclasses);
    n = pick_flows(&fs, ss.nclasses, balance == DP_BALANCE_UNDERSAMPLE, o->hp.seed, idx);
    if (!(x = malloc(n * L * sizeof(float)))) {
        dp_err(errbuf, "%s: out of memory for %llu flow rows of %zu floats", o->train_dir, (unsigned long long)n, L);
        goto out;
    }
    dp_flowset_rows(&fs, idx, n, x);
    if (labels_weights(&fs, idx, n, balance == DP_BALANCE_WEIGHT, y, &w, errbuf) != 0)
        goto out;
    dp_gbt_params gp;
    dp_gbt_params_default(&gp);
    gp.trees = o->gbt_trees, gp.depth = o->gbt_depth, gp.eta = o->gbt_eta, gp.colsample = o->gbt_colsample;
    gp.threads = o->hp.threads > 0 ? o->hp.threads : 1, gp.seed = o->hp.seed, gp.quiet = o->quiet;
    if (gp.trees > 0 && (curve = malloc(2 * (size_t)gp.trees * sizeof *curve)))
        gp.round_loss = curve, gp.round_acc = curve + gp.trees;
    if (!o->quiet)
        fprintf(stderr, "train gbt %s: %llu training flows of %llu, %d classes, %zu features, %d trees, depth %d, eta %g, "
                "balance %s\n",
                dp_task_name[o->task], (unsigned long long)n, (unsigned long long)fs.nflows, ss.nclasses, L,
                gp.trees, gp.depth, (double)gp.eta, dp_balance_name[balance]);
    double t0 = dp_now();
    if (!(g = dp_gbt_train(x, n, (int)L, y, w, ss.nclasses, &gp, errbuf)))
        goto out;
    if (!(m = wrap_model(o, &ss, g, n, balance, errbuf)) || dp_model_save(m, o->model_path, errbuf) != 0)
        goto out;
    if (curve)
        save_curves(o, &gp);
    if (!o->quiet)
        fprintf(stderr, "wrote %s (gbt %s, %d trees, %.1f s; peak memory %.0f MB)\n", o->model_path,
                dp_task_name[o->task], gp.trees, dp_now() - t0, (double)dp_peak_rss() / 1e6);
    rc = 0;
out:
    dp_model_free(m);
    dp_gbt_free(g);
    free(x), free(w), free(y), free(idx), free(curve);
    dp_flowset_free(&fs);
    dp_splitset_close(&ss);
    return rc;
}
