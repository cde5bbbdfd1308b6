/* dp_flowagg: flow-level verdicts from packet log-probabilities. See
 * dp_eval.h. Flows live in a growing array (first-seen order) indexed by a
 * dp_flowmap on the flow id. Per flow: the sum of its
 * packets' log-probabilities (double, nclasses), its packet count, the
 * label of its first packet, and - only once a packet disagrees - a count
 * per label for the majority vote. */
#include "eval/dp_eval.h"

#include <stdlib.h>
#include <string.h>

#include "eval/dp_coverage.h"
#include "util/dp_task.h"
#include "util/dp_flowmap.h"

typedef struct flow_ent {
    uint64_t flow;
    uint64_t packets;
    int label;          /* label of the first packet */
    uint32_t *counts;   /* NULL until a packet disagrees: [nclasses] */
} flow_ent;

struct dp_flowagg {
    int nclasses;
    flow_ent *ents;
    double *sums;       /* [cap * nclasses] */
    uint64_t n, cap;
    dp_flowmap index;   /* flow id -> ent index */
    uint64_t packets;
    uint64_t conflicts;
};

dp_flowagg *dp_flowagg_new(int nclasses, char *errbuf)
{
    if (nclasses < 1 || nclasses > DP_MAX_CLASSES) {
        dp_err(errbuf, "flow aggregation: %d classes (expected 1..%d)", nclasses,
               DP_MAX_CLASSES);
        return NULL;
    }
    dp_flowagg *a = calloc(1, sizeof *a);
    if (!a) {
        dp_err(errbuf, "flow aggregation: out of memory");
        return NULL;
    }
    a->nclasses = nclasses;
    return a;
}

void dp_flowagg_free(dp_flowagg *a)
{
    if (!a)
        return;
    for (uint64_t i = 0; i < a->n; i++)
        free(a->ents[i].counts);
    free(a->ents);
    free(a->sums);
    dp_flowmap_free(&a->index);
    free(a);
}

/* Index of flow's entry, created (zero sums) when new; -1 on no memory. */
static int64_t find_or_add(dp_flowagg *a, uint64_t flow, int label, int *created)
{
    *created = 0;
    int64_t i = dp_flowmap_get(&a->index, flow, 0);
    if (i >= 0)
        return i;
    if (a->n >= UINT32_MAX - 1)
        return -1;
    if (a->n == a->cap) {
        uint64_t cap = a->cap ? a->cap * 2 : 1024;
        flow_ent *e = realloc(a->ents, cap * sizeof *e);
        if (!e)
            return -1;
        a->ents = e;
        double *s = realloc(a->sums, cap * (size_t)a->nclasses * sizeof *s);
        if (!s)
            return -1;
        a->sums = s;
        a->cap = cap;
    }
    if (dp_flowmap_put(&a->index, flow, 0, (uint32_t)a->n) != 0)
        return -1;
    i = (int64_t)a->n++;
    a->ents[i] = (flow_ent){.flow = flow, .packets = 0, .label = label, .counts = NULL};
    memset(a->sums + i * a->nclasses, 0, (size_t)a->nclasses * sizeof *a->sums);
    *created = 1;
    return i;
}

/* Counts `k` packets of label `label` into entry e (which already holds
 * e->packets packets). */
static int count_label(dp_flowagg *a, flow_ent *e, int label, uint64_t k)
{
    if (!e->counts && label != e->label) {
        e->counts = calloc((size_t)a->nclasses, sizeof *e->counts);
        if (!e->counts)
            return -1;
        e->counts[e->label] = (uint32_t)e->packets;
        a->conflicts++;
    }
    if (e->counts)
        e->counts[label] += (uint32_t)k;
    e->packets += k;
    return 0;
}

int dp_flowagg_add(dp_flowagg *a, uint64_t flow, int label, const float *logprobs,
                   char *errbuf)
{
    if (label < 0 || label >= a->nclasses)
        return dp_err(errbuf, "flow aggregation: label %d out of range [0, %d)", label,
                      a->nclasses);
    int created;
    int64_t i = find_or_add(a, flow, label, &created);
    if (i < 0 || count_label(a, &a->ents[i], label, 1) != 0)
        return dp_err(errbuf, "flow aggregation: out of memory");
    double *s = a->sums + (size_t)i * a->nclasses;
    for (int c = 0; c < a->nclasses; c++)
        s[c] += logprobs[c];
    a->packets++;
    return 0;
}

int dp_flowagg_merge(dp_flowagg *dst, const dp_flowagg *src, char *errbuf)
{
    if (dst->nclasses != src->nclasses)
        return dp_err(errbuf, "flow aggregation: merging %d classes into %d", src->nclasses,
                      dst->nclasses);
    for (uint64_t k = 0; k < src->n; k++) {
        const flow_ent *se = &src->ents[k];
        int created;
        int64_t i = find_or_add(dst, se->flow, se->label, &created);
        if (i < 0)
            return dp_err(errbuf, "flow aggregation: out of memory");
        flow_ent *de = &dst->ents[i];
        if (se->counts) {
            for (int c = 0; c < src->nclasses; c++)
                if (se->counts[c] && count_label(dst, de, c, se->counts[c]) != 0)
                    return dp_err(errbuf, "flow aggregation: out of memory");
        } else if (count_label(dst, de, se->label, se->packets) != 0) {
            return dp_err(errbuf, "flow aggregation: out of memory");
        }
        double *d = dst->sums + (size_t)i * dst->nclasses;
        const double *s = src->sums + k * src->nclasses;
        for (int c = 0; c < dst->nclasses; c++)
            d[c] += s[c];
        dst->packets += se->packets;
    }
    return 0;
}

uint64_t dp_flowagg_flows(const dp_flowagg *a) { return a->n; }
uint64_t dp_flowagg_packets(const dp_flowagg *a) { return a->packets; }
uint64_t dp_flowagg_conflicts(const dp_flowagg *a) { return a->conflicts; }

int dp_flowagg_get(const dp_flowagg *a, uint64_t i, uint64_t *flow, int *label, int *pred,
                   uint64_t *packets)
{
    if (i >= a->n)
        return -1;
    const flow_ent *e = &a->ents[i];
    int t = e->label;
    if (e->counts) {
        t = 0;
        for (int c = 1; c < a->nclasses; c++)
            if (e->counts[c] > e->counts[t])
                t = c;
    }
    const double *s = a->sums + i * a->nclasses;
    int p = 0;
    for (int c = 1; c < a->nclasses; c++)
        if (s[c] > s[p])
            p = c;
    if (flow)
        *flow = e->flow;
    if (label)
        *label = t;
    if (pred)
        *pred = p;
    if (packets)
        *packets = e->packets;
    return 0;
}

int dp_flowagg_eval(const dp_flowagg *a, dp_eval *e, char *errbuf)
{
    if (e->nclasses != a->nclasses)
        return dp_err(errbuf, "flow aggregation: %d classes, report has %d", a->nclasses,
                      e->nclasses);
    for (uint64_t i = 0; i < a->n; i++) {
        int t, p;
        dp_flowagg_get(a, i, NULL, &t, &p, NULL);
        dp_eval_add(e, t, p);
    }
    dp_eval_finish(e);
    return 0;
}

double dp_flowagg_prob(const dp_flowagg *a, uint64_t i)
{
    if (i >= a->n)
        return 0.0;
    double mean[DP_MAX_CLASSES];
    for (int c = 0; c < a->nclasses; c++)
        mean[c] = a->sums[i * a->nclasses + c] / (double)a->ents[i].packets;
    return dp_coverage_top_prob(mean, a->nclasses);
}

int dp_flowagg_coverage(const dp_flowagg *a, dp_coverage *cv, char *errbuf)
{
    uint64_t n = a->n ? a->n : 1;
    int16_t *label = malloc(n * sizeof *label), *pred = malloc(n * sizeof *pred);
    float *prob = malloc(n * sizeof *prob);
    int rc = label && pred && prob ? 0 : dp_err(errbuf, "flow aggregation: out of memory");
    for (uint64_t i = 0; rc == 0 && i < a->n; i++) {
        int t, p;
        dp_flowagg_get(a, i, NULL, &t, &p, NULL);
        label[i] = (int16_t)t, pred[i] = (int16_t)p;
        prob[i] = (float)dp_flowagg_prob(a, i);
    }
    if (rc == 0)
        rc = dp_coverage_compute(cv, a->nclasses, label, pred, prob, a->n, errbuf);
    free(label), free(pred), free(prob);
    return rc;
}
