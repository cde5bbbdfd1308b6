/* dp_flowset: the flows of an open dp_splitset (its meta.npy `flow` ids),
 * for the flow models. Knows nothing of models.
 *
 * A flow's packets are taken in capture order (time, then file, then
 * index); flows are ordered by their first packet the same way (flow id
 * last), so the order is deterministic whatever the rows' order on disk.
 * The set keeps, per flow, its label (its first packet's), first time, id,
 * packet count and the rows of its first N packets: memory proportional to
 * the flows; feature rows are computed on demand. It counts the flows whose
 * packets do not all carry that label (label_conflicts). */
#ifndef DP_FLOWSET_H
#define DP_FLOWSET_H

#include <stdint.h>

#include "dataset/dp_dataset.h"
#include "flow/dp_flowfeat.h"

typedef struct dp_flowinfo {
    uint64_t id;       /* meta.flow */
    double first_time; /* time of its first packet */
    uint64_t first;    /* offset of its rows in dp_flowset.rows */
    uint32_t npackets; /* packets of the flow in the set */
    uint16_t nrows;    /* min(npackets, N) */
    int16_t label;     /* class id of its first packet */
} dp_flowinfo;

typedef struct dp_flowset {
    const dp_splitset *set; /* not owned */
    dp_flowcfg cfg;
    uint64_t nflows;
    dp_flowinfo *flows;     /* [nflows] in flow order */
    uint64_t *rows;         /* rows of each flow's first N packets, capture order */
    uint64_t label_conflicts; /* flows with a packet of another label than the flow's */
} dp_flowset;

/* Groups the rows of `set` (opened from `dir`, named in messages) into
 * flows. Refuses a set without meta.npy: "DIR: no flow information
 * (meta.npy); flow models need a dataset made by `deeppacket preprocess` or
 * a split made by `deeppacket split`", and an invalid cfg. Returns 0 or -1. */
int dp_flowset_build(dp_flowset *fs, const dp_splitset *set, const char *dir, const dp_flowcfg *cfg,
                     char *errbuf);
void dp_flowset_free(dp_flowset *fs);

/* The feature row of flow i (N*F floats, dp_flowcfg_row_len) into out. */
void dp_flowset_row(const dp_flowset *fs, uint64_t i, float *out);
/* Rows of flows idx[0..n) (NULL: flows 0..n-1) into out [n, N*F]. */
void dp_flowset_rows(const dp_flowset *fs, const uint64_t *idx, uint64_t n, float *out);
/* The whole matrix [nflows, N*F], malloc'd (caller frees); NULL + message
 * when it does not fit in memory. */
float *dp_flowset_matrix(const dp_flowset *fs, char *errbuf);

#endif
