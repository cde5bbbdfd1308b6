/* dp_dataset_read: opens a preprocessed DATASET_DIR (see dp_dataset.h). */
#include "dataset/dp_dataset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

int dp_dataset_open(dp_dataset *d, const char *dir, char *errbuf)
{
    memset(d, 0, sizeof *d);
    struct stat st;
    if (stat(dir, &st) != 0)
        return dp_errno(errbuf, "%s: cannot open dataset directory", dir);
    if (!S_ISDIR(st.st_mode))
        return dp_err(errbuf, "%s: not a directory (expected a preprocessed dataset)", dir);
    char *sum = dp_path_join(dir, DP_FILE_SUMMARY_JSON);
    if (!sum)
        return dp_err(errbuf, "%s: out of memory", dir);
    int have_summary = stat(sum, &st) == 0 && S_ISREG(st.st_mode);
    free(sum);
    if (!have_summary)
        return dp_err(errbuf, "%s: incomplete dataset (no " DP_FILE_SUMMARY_JSON "); rerun preprocess", dir);

    if (open_part(&d->vectors, dir, DP_FILE_VECTORS, DP_VECTORS_DESCR, 1, DP_VEC_LEN, errbuf) != 0)
        goto fail;
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
    char *lpath = dp_path_join(dir, DP_FILE_LABELS);
    if (!lpath) {
        dp_err(errbuf, "%s: out of memory", dir);
        goto fail;
    }
    int lrc = dp_labels_load(&d->labels, lpath, errbuf);
    free(lpath);
    if (lrc != 0)
        goto fail;
    for (int t = 0; t < DP_NTASKS; t++) {
        int nc = d->labels.nclasses[t];
        for (uint64_t i = 0; i < d->n; i++) {
            int c = dp_dataset_label(d, t, i);
            if (c < -1 || c >= nc) {
                dp_err(errbuf, "%s/%s: row %llu has class %d, but " DP_FILE_LABELS " has %d %s classes", dir,
                       dp_dataset_class_file[t], (unsigned long long)i, c, nc, dp_task_name[t]);
                goto fail;
            }
        }
    }
    return 0;
fail:;
    char keep[DP_ERRBUF_SIZE];
    if (errbuf)
        memcpy(keep, errbuf, DP_ERRBUF_SIZE);
    dp_dataset_close(d);
    if (errbuf)
        memcpy(errbuf, keep, DP_ERRBUF_SIZE);
    return -1;
}
