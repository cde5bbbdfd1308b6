/* The public dataset view (include/deeppacket.h, deeppacket_dataset_*): a
 * dp_splitset (split or dataset folder, memory-mapped, one task) whose rows
 * are copied out on request. */
#include <stdlib.h>
#include <string.h>

#include "deeppacket.h"
#include "dataset/dp_dataset.h"

struct deeppacket_dataset {
    dp_splitset s;
    char *dir;   /* for messages */
};

deeppacket_dataset *deeppacket_dataset_open(const char *dir, const char *task, char *errbuf)
{
    int t = -1;
    if (!dir || !*dir) {
        dp_err(errbuf, "deeppacket_dataset_open: no folder");
        return NULL;
    }
    if (task && (t = dp_task_parse(task)) < 0) {
        dp_err(errbuf, "%s: unknown task '%s' (app or traffic)", dir, task);
        return NULL;
    }
    deeppacket_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->dir = strdup(dir))) {
        free(ds);
        dp_err(errbuf, "%s: out of memory", dir);
        return NULL;
    }
    if (dp_splitset_open_task(&ds->s, dir, t, errbuf) < 0) {
        free(ds->dir);
        free(ds);
        return NULL;
    }
    return ds;
}

uint64_t deeppacket_dataset_rows(const deeppacket_dataset *ds) { return ds ? ds->s.n : 0; }

const char *deeppacket_dataset_task(const deeppacket_dataset *ds)
{
    return ds && ds->s.task >= 0 && ds->s.task < DP_NTASKS ? dp_task_name[ds->s.task] : "";
}

int deeppacket_dataset_nclasses(const deeppacket_dataset *ds) { return ds ? ds->s.nclasses : 0; }

const char *deeppacket_dataset_class_name(const deeppacket_dataset *ds, int c)
{
    if (!ds || c < 0 || c >= ds->s.nclasses || !ds->s.names[c])
        return "";
    return ds->s.names[c];
}

int deeppacket_dataset_has_flows(const deeppacket_dataset *ds) { return ds ? ds->s.has_meta : 0; }

int deeppacket_dataset_read(const deeppacket_dataset *ds, uint64_t start, uint64_t n, uint8_t *vectors,
                            int16_t *labels, uint64_t *flows, char *errbuf)
{
    if (!ds)
        return dp_err(errbuf, "deeppacket_dataset_read: no dataset handle (NULL)");
    const dp_splitset *s = &ds->s;
    if (start > s->n || n > s->n - start)
        return dp_err(errbuf, "%s: rows [%llu, %llu) are outside the %llu rows", ds->dir, (unsigned long long)start, (unsigned long long)(start + n), (unsigned long long)s->n);
    if (flows && !s->has_meta)
        return dp_err(errbuf, "%s: no meta.npy, so no flow ids", ds->dir);
    for (uint64_t i = 0; i < n; i++) {
        if (vectors)
            memcpy(vectors + i * DP_VEC_LEN, dp_splitset_vector(s, start + i), DP_VEC_LEN);
        if (labels)
            labels[i] = (int16_t)dp_splitset_label(s, start + i);
        if (flows)
            flows[i] = dp_splitset_meta(s, start + i).flow;
    }
    return 0;
}

void deeppacket_dataset_close(deeppacket_dataset *ds)
{
    if (!ds)
        return;
    dp_splitset_close(&ds->s);
    free(ds->dir);
    free(ds);
}
