/* dp_split_write: the files of a split set (vectors.npy, labels.npy,
 * meta.npy, classes.tsv) and of a task folder (data_card.*). See
 * dp_split_impl.h for the contracts. */
#include "dataset/dp_split_impl.h"

#include <stdlib.h>
#include <string.h>

int dp_split_outset_open(dp_split_outset *w, const char *dir, char *errbuf)
{
    memset(w, 0, sizeof *w);
    char *pv = dp_path_join(dir, DP_FILE_VECTORS), *pl = dp_path_join(dir, DP_FILE_SET_LABELS),
         *pm = dp_path_join(dir, DP_FILE_META);
    int rc = -1;
    if (!pv || !pl || !pm) {
        dp_err(errbuf, "%s: out of memory", dir);
        goto out;
    }
    if (dp_npy_writer_open(&w->vec, pv, DP_VECTORS_DESCR, 1, DP_VEC_LEN, errbuf) != 0)
        goto out;
    if (dp_npy_writer_open(&w->lab, pl, DP_CLASS_DESCR, 2, 0, errbuf) != 0) {
        dp_npy_writer_abort(&w->vec);
        goto out;
    }
    if (dp_npy_writer_open(&w->meta, pm, DP_META_DESCR, sizeof(dp_meta), 0, errbuf) != 0) {
        dp_npy_writer_abort(&w->vec);
        dp_npy_writer_abort(&w->lab);
        goto out;
    }
    w->open = 1;
    rc = 0;
out:
    free(pv);
    free(pl);
    free(pm);
    return rc;
}

void dp_split_outset_abort(dp_split_outset *w)
{
    if (w->open) {
        dp_npy_writer_abort(&w->vec);
        dp_npy_writer_abort(&w->lab);
        dp_npy_writer_abort(&w->meta);
        w->open = 0;
    }
}

int dp_split_outset_row(dp_split_outset *w, const uint8_t *vec, int16_t label, const void *meta, char *errbuf)
{
    if (dp_npy_write(&w->vec, vec, 1, errbuf) != 0 || dp_npy_write(&w->lab, &label, 1, errbuf) != 0 ||
        dp_npy_write(&w->meta, meta, 1, errbuf) != 0)
        return -1;
    return 0;
}

int dp_split_outset_commit(dp_split_outset *w, char *errbuf)
{
    w->open = 0;
    if (dp_npy_writer_commit(&w->vec, errbuf) != 0) {
        dp_npy_writer_abort(&w->lab);
        dp_npy_writer_abort(&w->meta);
        return -1;
    }
    if (dp_npy_writer_commit(&w->lab, errbuf) != 0) {
        dp_npy_writer_abort(&w->meta);
        return -1;
    }
    return dp_npy_writer_commit(&w->meta, errbuf);
}

int dp_split_write_classes(const char *dir, const dp_split_card *c, char *errbuf)
{
    char *path = dp_path_join(dir, DP_FILE_SET_CLASSES);
    if (!path)
        return dp_err(errbuf, "%s: out of memory", dir);
    dp_afile af;
    int rc = dp_afile_open(&af, path, errbuf);
    if (rc == 0) {
        for (int k = 0; k < c->nclasses; k++)
            fprintf(af.f, "%d\t%s\n", k, c->names[k] ? c->names[k] : "");
        rc = dp_afile_commit(&af, errbuf);
    }
    free(path);
    return rc;
}

int dp_split_write_card(const char *task_dir, const dp_split_card *c, const char *dataset_dir,
                        const dp_split_opts *o, int json, char *errbuf)
{
    char *path = dp_path_join(task_dir, json ? DP_FILE_CARD_JSON : DP_FILE_CARD_MD);
    if (!path)
        return dp_err(errbuf, "%s: out of memory", task_dir);
    dp_afile af;
    int rc = dp_afile_open(&af, path, errbuf);
    if (rc == 0) {
        if (json)
            dp_split_card_json(af.f, c, dataset_dir, o);
        else
            dp_split_card_markdown(af.f, c, dataset_dir, o);
        rc = dp_afile_commit(&af, errbuf);
    }
    free(path);
    return rc;
}

