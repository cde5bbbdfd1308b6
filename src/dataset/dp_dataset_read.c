/* dp_dataset_read: opens a preprocessed DATASET_DIR (see dp_dataset.h). */
#include "dataset/dp_dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const dp_dataset_class_file[DP_NTASKS] = {DP_FILE_APP, DP_FILE_TRAFFIC};

/* Opens dir/name and checks its dtype and shape. */
static int open_part(dp_npy *a, const char *dir, const char *name, const char *descr,
                     size_t itemsize, size_t ncols, char *errbuf)
{
    char *path = dp_path_join(dir, name);
    if (!path)
        return dp_err(errbuf, "%s/%s: out of memory", dir, name);
    int rc = dp_npy_open(a, path, errbuf);
    if (rc == 0 && (rc = dp_npy_expect(a, path, descr, itemsize, ncols, errbuf)) != 0)
        dp_npy_close(a);
    free(path);
    return rc;
}

void dp_dataset_close(dp_dataset *d)
{
    dp_npy_close(&d->vectors);
    for (int t = 0; t < DP_NTASKS; t++)
        dp_npy_close(&d->cls[t]);
    dp_npy_close(&d->meta);
    dp_labels_free(&d->labels);
    memset(d, 0, sizeof *d);
}

/* ---- one generation of a folder ---------------------------------------------------- */

#define OPEN_TRIES 4 /* waits 50, 200, 450 ms between them */

/* What identifies a generation of a folder being opened: the folder and its
 * marker file, held open (so that their inodes cannot be reused meanwhile);
 * markfd -1 when the marker is absent or not asked for. */
typedef struct dir_gen {
    int dirfd, markfd;
} dir_gen;

static int gen_begin(dir_gen *g, const char *dir, const char *marker, char *errbuf)
{
    g->markfd = -1;
    g->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC); /* no read permission needed */
    if (g->dirfd < 0)
        return dp_errno(errbuf, "%s: cannot open folder", dir);
    if (marker)
        g->markfd = openat(g->dirfd, marker, O_PATH | O_CLOEXEC);
    return 0;
}

static int same_inode(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* 1 when dir (and its marker) are still the files g holds: nothing was
 * swapped or renamed in since gen_begin. */
static int gen_same(const dir_gen *g, const char *dir, const char *marker)
{
    struct stat held, now;
    if (fstat(g->dirfd, &held) != 0 || stat(dir, &now) != 0 || !same_inode(&held, &now))
        return 0;
    if (!marker)
        return 1;
    char *mp = dp_path_join(dir, marker);
    int there = mp && stat(mp, &now) == 0;
    free(mp);
    if (g->markfd < 0)
        return !there;
    return there && fstat(g->markfd, &held) == 0 && same_inode(&held, &now);
}

static void gen_end(dir_gen *g)
{
    if (g->markfd >= 0)
        close(g->markfd);
    close(g->dirfd);
}

/* One attempt of dp_open_one_generation: 1 when what open_fn did (its
 * result in *rc) is of one generation of dir, 0 when dir changed meanwhile
 * (what open_fn opened is closed again). */
static int open_attempt(const char *dir, const char *marker, int (*open_fn)(void *ctx, char *errbuf),
                        void (*close_fn)(void *ctx), void *ctx, int *rc, char *errbuf)
{
    dir_gen g;
    if ((*rc = gen_begin(&g, dir, marker, errbuf)) != 0)
        return 1;
    *rc = open_fn(ctx, errbuf);
    int same = gen_same(&g, dir, marker);
    gen_end(&g);
    if (!same && *rc == 0)
        close_fn(ctx);
    return same;
}

int dp_open_one_generation(const char *dir, const char *marker, int (*open_fn)(void *ctx, char *errbuf),
                           void (*close_fn)(void *ctx), void *ctx, char *errbuf)
{
    int changed = 0, rc = -1;
    for (int attempt = 1; attempt <= OPEN_TRIES; attempt++) {
        if (attempt > 1) {
            /* a run that replaces a dataset or a split is in its last
             * milliseconds (or was stopped there: then the error stays) */
            struct timespec ts = {0, 50000000L * (attempt - 1) * (attempt - 1)};
            nanosleep(&ts, NULL);
        }
        int same = open_attempt(dir, marker, open_fn, close_fn, ctx, &rc, errbuf);
        /* a failure after a change is retried too: the change may not be over */
        if (same && (rc == 0 || !changed))
            return rc;
        changed |= !same;
    }
    char last[DP_ERRBUF_SIZE];
    snprintf(last, sizeof last, "%s", rc == 0 || !errbuf ? "it changed again" : errbuf);
    return dp_err(errbuf, "%s: the dataset changed while it was being opened (a preprocess, merge or split run "
                  "is replacing it); retry when that run is done (last attempt: %s)", dir, last);
}

/* ---- a dataset ----------------------------------------------------------------------- */

/* The files of a dataset (dp_dataset_open_with); one attempt. */
typedef struct ds_open {
    dp_dataset *d;
    const char *dir;
    int (*read_fn)(void *ctx, char *errbuf); /* the caller's files, or NULL */
    void (*drop_fn)(void *ctx);
    void *ctx;
} ds_open;

/* Loads labels.tsv and checks every class id of the open arrays against it. */
static int check_labels(dp_dataset *d, const char *dir, char *errbuf)
{
    char *lpath = dp_path_join(dir, DP_FILE_LABELS);
    if (!lpath)
        return dp_err(errbuf, "%s: out of memory", dir);
    int lrc = dp_labels_load(&d->labels, lpath, errbuf);
    free(lpath);
    if (lrc != 0)
        return -1;
    for (int t = 0; t < DP_NTASKS; t++) {
        int nc = d->labels.nclasses[t];
        for (uint64_t i = 0; i < d->n; i++) {
            int c = dp_dataset_label(d, t, i);
            if (c < -1 || c >= nc)
                return dp_err(errbuf, "%s/%s: row %llu has class %d, but " DP_FILE_LABELS " has %d %s classes", dir,
                              dp_dataset_class_file[t], (unsigned long long)i, c, nc, dp_task_name[t]);
        }
    }
    return 0;
}

/* One attempt at reading the caller's files (read_fn) and opening a
 * dataset's (ctx: ds_open); on failure nothing stays open or read. */
static int open_dataset_files(void *ctx, char *errbuf)
{
    const ds_open *o = ctx;
    dp_dataset *d = o->d;
    const char *dir = o->dir;
    memset(d, 0, sizeof *d);
    if (o->read_fn && o->read_fn(o->ctx, errbuf) != 0)
        return -1;
    char *sum = dp_path_join(dir, DP_FILE_SUMMARY_JSON);
    struct stat st;
    int have_summary = sum && stat(sum, &st) == 0 && S_ISREG(st.st_mode);
    free(sum);
    if (!sum) {
        dp_err(errbuf, "%s: out of memory", dir);
        goto fail;
    }
    if (!have_summary) {
        dp_err(errbuf, "%s: incomplete dataset (no " DP_FILE_SUMMARY_JSON "); rerun the preprocess or merge that made it", dir);
        goto fail;
    }

    if (open_part(&d->vectors, dir, DP_FILE_VECTORS, DP_VECTORS_DESCR, 1, DP_VEC_LEN, errbuf) != 0)
        goto fail;
    dp_test_kill_point("ds-open"); /* tests: another generation may come in here */
    for (int t = 0; t < DP_NTASKS; t++)
        if (open_part(&d->cls[t], dir, dp_dataset_class_file[t], DP_CLASS_DESCR, 2, 0, errbuf) != 0)
            goto fail;
    if (open_part(&d->meta, dir, DP_FILE_META, DP_META_DESCR, sizeof(dp_meta), 0, errbuf) != 0)
        goto fail;
    d->n = d->vectors.shape[0];
    for (int t = 0; t < DP_NTASKS; t++)
        if (d->cls[t].shape[0] != d->n) {
            dp_err(errbuf, "%s/%s: %llu rows, but " DP_FILE_VECTORS " has %llu", dir, dp_dataset_class_file[t],
                   (unsigned long long)d->cls[t].shape[0], (unsigned long long)d->n);
            goto fail;
        }
    if (d->meta.shape[0] != d->n) {
        dp_err(errbuf, "%s/" DP_FILE_META ": %llu rows, but " DP_FILE_VECTORS " has %llu", dir,
               (unsigned long long)d->meta.shape[0], (unsigned long long)d->n);
        goto fail;
    }
    if (check_labels(d, dir, errbuf) == 0)
        return 0;
fail:;
    char keep[DP_ERRBUF_SIZE];
    if (errbuf)
        memcpy(keep, errbuf, DP_ERRBUF_SIZE);
    dp_dataset_close(d);
    if (o->drop_fn)
        o->drop_fn(o->ctx);
    if (errbuf)
        memcpy(errbuf, keep, DP_ERRBUF_SIZE);
    return -1;
}

static void close_dataset_files(void *ctx)
{
    const ds_open *o = ctx;
    dp_dataset_close(o->d);
    if (o->drop_fn)
        o->drop_fn(o->ctx);
}

int dp_dataset_open(dp_dataset *d, const char *dir, char *errbuf)
{
    return dp_dataset_open_with(d, dir, NULL, NULL, NULL, errbuf);
}

int dp_dataset_open_with(dp_dataset *d, const char *dir, int (*read_fn)(void *ctx, char *errbuf),
                         void (*drop_fn)(void *ctx), void *ctx, char *errbuf)
{
    memset(d, 0, sizeof *d);
    struct stat st;
    if (stat(dir, &st) != 0)
        return dp_errno(errbuf, "%s: cannot open dataset directory", dir);
    if (!S_ISDIR(st.st_mode))
        return dp_err(errbuf, "%s: not a directory (expected a preprocessed dataset)", dir);
    /* preprocess (and merge) remove summary.json before they rename new
     * arrays in, and write it last: the same summary.json before and after
     * means the same arrays */
    ds_open o = {d, dir, read_fn, drop_fn, ctx};
    return dp_open_one_generation(dir, DP_FILE_SUMMARY_JSON, open_dataset_files, close_dataset_files, &o, errbuf);
}
