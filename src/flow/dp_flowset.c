/* dp_flowset: the flows of a split set (see dp_flowset.h). */
#include "flow/dp_flowset.h"

#include <stdlib.h>
#include <string.h>

#include "util/dp_util.h"

/* A row's sort key: flow, then capture order. */
typedef struct rowkey {
    uint64_t flow;
    double time;
    uint32_t file;
    uint64_t index;
    uint64_t row;
} rowkey;

static int cmp_capture_order(double ta, uint32_t fa, uint64_t ia, double tb, uint32_t fb, uint64_t ib)
{
    if (ta != tb)
        return ta < tb ? -1 : 1;
    if (fa != fb)
        return fa < fb ? -1 : 1;
    if (ia != ib)
        return ia < ib ? -1 : 1;
    return 0;
}

static int cmp_rowkey(const void *a, const void *b)
{
    const rowkey *x = a, *y = b;
    if (x->flow != y->flow)
        return x->flow < y->flow ? -1 : 1;
    int c = cmp_capture_order(x->time, x->file, x->index, y->time, y->file, y->index);
    if (c)
        return c;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* Sorts the flows' first rows (each flow's rowkey) into flow order. */
static int cmp_flowkey(const void *a, const void *b)
{
    const rowkey *x = a, *y = b;
    int c = cmp_capture_order(x->time, x->file, x->index, y->time, y->file, y->index);
    if (c)
        return c;
    return x->flow < y->flow ? -1 : x->flow > y->flow;
}

static rowkey *sorted_rowkeys(const dp_splitset *set, char *errbuf)
{
    rowkey *k = malloc((set->n ? set->n : 1) * sizeof *k);
    if (!k) {
        dp_err(errbuf, "out of memory grouping %llu rows into flows", (unsigned long long)set->n);
        return NULL;
    }
    for (uint64_t i = 0; i < set->n; i++) {
        dp_meta m = dp_splitset_meta(set, i);
        k[i] = (rowkey){m.flow, m.time, m.file, m.index, i};
    }
    qsort(k, set->n, sizeof *k, cmp_rowkey);
    return k;
}

/* Counts the flows of sorted keys and collects each flow's first key. */
static rowkey *flow_heads(const rowkey *k, uint64_t n, uint64_t *nflows, char *errbuf)
{
    uint64_t nf = 0;
    for (uint64_t i = 0; i < n; i++)
        nf += i == 0 || k[i].flow != k[i - 1].flow;
    rowkey *h = malloc((nf ? nf : 1) * sizeof *h);
    if (!h) {
        dp_err(errbuf, "out of memory for %llu flows", (unsigned long long)nf);
        return NULL;
    }
    nf = 0;
    for (uint64_t i = 0; i < n; i++)
        if (i == 0 || k[i].flow != k[i - 1].flow) {
            h[nf] = k[i];
            h[nf].row = i; /* position in k of the flow's first row */
            nf++;
        }
    qsort(h, nf, sizeof *h, cmp_flowkey);
    *nflows = nf;
    return h;
}

/* 1 when a packet among the n sorted keys k[j..j+n) (one flow's) has
 * another label than `label`, else 0. */
static int label_conflict(const dp_splitset *set, const rowkey *k, uint64_t j, uint64_t n, int label)
{
    for (uint64_t r = 0; r < n; r++)
        if (dp_splitset_label(set, k[j + r].row) != label)
            return 1;
    return 0;
}

/* Fills fs->flows, fs->rows and fs->label_conflicts from the sorted keys
 * and the ordered heads. */
static int fill_flows(dp_flowset *fs, const rowkey *k, uint64_t n, const rowkey *h, char *errbuf)
{
    uint64_t total = 0, N = (uint64_t)fs->cfg.npackets;
    fs->flows = calloc(fs->nflows ? fs->nflows : 1, sizeof *fs->flows);
    for (uint64_t f = 0; f < fs->nflows; f++) {
        uint64_t j = h[f].row, e = j;
        while (e < n && k[e].flow == k[j].flow)
            e++;
        if (fs->flows)
            fs->flows[f] = (dp_flowinfo){h[f].flow, h[f].time, total, (uint32_t)(e - j),
                                         (uint16_t)(e - j < N ? e - j : N), 0};
        total += e - j < N ? e - j : N;
    }
    fs->rows = malloc((total ? total : 1) * sizeof *fs->rows);
    if (!fs->flows || !fs->rows)
        return dp_err(errbuf, "out of memory for %llu flows", (unsigned long long)fs->nflows);
    for (uint64_t f = 0; f < fs->nflows; f++) {
        dp_flowinfo *fi = &fs->flows[f];
        for (uint64_t r = 0; r < fi->nrows; r++)
            fs->rows[fi->first + r] = k[h[f].row + r].row;
        fi->label = (int16_t)dp_splitset_label(fs->set, fs->rows[fi->first]);
        fs->label_conflicts += (uint64_t)label_conflict(fs->set, k, h[f].row, fi->npackets, fi->label);
    }
    return 0;
}

int dp_flowset_build(dp_flowset *fs, const dp_splitset *set, const char *dir, const dp_flowcfg *cfg,
                     char *errbuf)
{
    memset(fs, 0, sizeof *fs);
    if (!set->has_meta)
        return dp_err(errbuf,
                      "%s: no flow information (meta.npy); flow models need a dataset made by `deeppacket "
                      "preprocess` or a split made by `deeppacket split`",
                      dir);
    if (dp_flowcfg_check(cfg, dir, errbuf) < 0)
        return -1;
    fs->set = set;
    fs->cfg = *cfg;
    rowkey *k = sorted_rowkeys(set, errbuf);
    if (!k)
        return -1;
    rowkey *h = flow_heads(k, set->n, &fs->nflows, errbuf);
    int rc = h ? fill_flows(fs, k, set->n, h, errbuf) : -1;
    free(h);
    free(k);
    if (rc < 0)
        dp_flowset_free(fs);
    return rc;
}

void dp_flowset_free(dp_flowset *fs)
{
    free(fs->flows);
    free(fs->rows);
    memset(fs, 0, sizeof *fs);
}

void dp_flowset_row(const dp_flowset *fs, uint64_t i, float *out)
{
    const dp_flowinfo *fi = &fs->flows[i];
    int F = dp_flowcfg_features(&fs->cfg);
    memset(out, 0, (size_t)dp_flowcfg_row_len(&fs->cfg) * sizeof(float));
    dp_meta m0 = dp_splitset_meta(fs->set, fs->rows[fi->first]);
    double prev = m0.time;
    for (int r = 0; r < fi->nrows; r++) {
        uint64_t row = fs->rows[fi->first + (uint64_t)r];
        dp_meta m = dp_splitset_meta(fs->set, row);
        int dir = dp_flowfeat_direction(m0.saddr, m0.sport, m.saddr, m.sport);
        dp_flowfeat_packet(&fs->cfg, dp_splitset_vector(fs->set, row), dir, m.time - prev, r == 0,
                           out + (size_t)r * (size_t)F);
        prev = m.time;
    }
}

void dp_flowset_rows(const dp_flowset *fs, const uint64_t *idx, uint64_t n, float *out)
{
    size_t len = (size_t)dp_flowcfg_row_len(&fs->cfg);
    for (uint64_t i = 0; i < n; i++)
        dp_flowset_row(fs, idx ? idx[i] : i, out + i * len);
}

float *dp_flowset_matrix(const dp_flowset *fs, char *errbuf)
{
    size_t len = (size_t)dp_flowcfg_row_len(&fs->cfg);
    float *x = malloc((fs->nflows ? fs->nflows : 1) * len * sizeof(float));
    if (!x) {
        dp_err(errbuf, "out of memory for the %llu x %zu flow matrix", (unsigned long long)fs->nflows, len);
        return NULL;
    }
    dp_flowset_rows(fs, NULL, fs->nflows, x);
    return x;
}
