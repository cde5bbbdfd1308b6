/* dp_train_ranks: the trainer's data parallelism over dp_dist (slices,
 * sums over the ranks, what rank 0 alone does); see dp_train.h. */
#include "train/dp_train_impl.h"

#include <stdio.h>

#include "train/dp_dist.h"

/* ---- data parallelism (dp_dist) -------------------------------------------
 * Every rank holds the whole model and the same training state and draws
 * the same epoch orders; a global batch of nb rows is cut into one slice
 * per rank, rows [nb r / size, nb (r + 1) / size) on rank r. */
void dp_tr_rank_slice(const trainer *t, size_t nb, size_t *lo, size_t *hi)
{
    *lo = nb * (size_t)t->rank / (size_t)t->size;
    *hi = nb * (size_t)(t->rank + 1) / (size_t)t->size;
}

/* Sums the statistics st[0..n) over the ranks; st[n - 1] is this rank's
 * ok flag (1 or 0). Returns 0 when every rank is ok, else -1: with this
 * rank's message when it failed itself, an empty one when another did. */
int dp_tr_sum_stats(trainer *t, double *st, int n, char *errbuf)
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
void dp_tr_sum_grads(trainer *t, float *g, size_t n, double share)
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
int dp_tr_root_rc(const trainer *t, int rc, char *errbuf)
{
    rc = dp_dist_root_rc(rc);
    if (rc != 0 && t->rank != 0)
        errbuf[0] = 0;
    return rc;
}

/* After an epoch: rank 0's parameters and Adam moments on every rank, so
 * that all hold exactly what its checkpoint holds (the summed gradients are
 * the same on every rank already; this keeps any rounding difference of
 * the MPI library from adding up). */
void dp_tr_sync_ranks(trainer *t)
{
    if (t->size == 1)
        return;
    size_t n = dp_model_nparams(t->m) * sizeof(float);
    dp_dist_bcast(dp_model_params(t->m), n);
    dp_dist_bcast(dp_model_adam_m(t->m), n);
    dp_dist_bcast(dp_model_adam_v(t->m), n);
}

/* Every rank trains on rank 0's training set (its row count and
 * fingerprint): -1 + message on a rank whose set differs (another copy of
 * the data on another machine). Collective: call on every rank, whatever
 * rc (this rank's set-up result so far). */
int dp_tr_same_data(trainer *t, int rc, char *errbuf)
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
