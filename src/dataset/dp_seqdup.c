/* dp_seqdup: flows' first-packet size/direction sequences; see dp_seqdup.h. */
#include "dataset/dp_seqdup.h"

#include <stdlib.h>
#include <string.h>

#include "util/dp_flowmap.h"

typedef struct seqflow {
    uint64_t flow;
    uint8_t ipver;
    uint16_t sport;
    uint8_t saddr[16];
    uint32_t count;   /* packets in the sequence, <= npackets */
    uint8_t dup;
} seqflow;

struct dp_seqtab {
    int npackets;
    seqflow *f;       /* [nflows] in first-seen order */
    uint32_t *seq;    /* [nflows * npackets]: size << 1 | direction */
    size_t nflows, fcap;
    dp_flowmap index; /* flow id -> index in f */
};

uint32_t dp_seq_ip_length(const uint8_t *vec)
{
    switch (vec[0] >> 4) {
    case 4:
        return (uint32_t)vec[2] << 8 | vec[3];
    case 6:
        return ((uint32_t)vec[4] << 8 | vec[5]) + 40;
    default:
        return 0;
    }
}

int dp_seq_direction(const dp_meta *first, const dp_meta *m)
{
    return m->ipver == first->ipver && m->sport == first->sport &&
           !memcmp(m->saddr, first->saddr, sizeof m->saddr);
}

dp_seqtab *dp_seqtab_new(int npackets, char *errbuf)
{
    if (npackets < 1 || npackets > DP_SEQ_MAX_PACKETS) {
        dp_err(errbuf, "sequence length %d is not in 1..%d", npackets, DP_SEQ_MAX_PACKETS);
        return NULL;
    }
    dp_seqtab *t = calloc(1, sizeof *t);
    if (!t) {
        dp_err(errbuf, "out of memory");
        return NULL;
    }
    t->npackets = npackets;
    return t;
}

void dp_seqtab_free(dp_seqtab *t)
{
    if (!t)
        return;
    free(t->f);
    free(t->seq);
    dp_flowmap_free(&t->index);
    free(t);
}

uint64_t dp_seqtab_flows(const dp_seqtab *t)
{
    return t->nflows;
}

/* A new flow whose first packet is m; its index, or -1 (no memory). */
static int64_t new_flow(dp_seqtab *t, const dp_meta *m)
{
    if (t->nflows >= UINT32_MAX - 1)
        return -1;
    if (t->nflows == t->fcap) {
        size_t nc = t->fcap ? t->fcap * 2 : 1024;
        seqflow *f = realloc(t->f, nc * sizeof *f);
        if (!f)
            return -1;
        t->f = f;
        uint32_t *q = realloc(t->seq, nc * (size_t)t->npackets * sizeof *q);
        if (!q)
            return -1;
        t->seq = q;
        t->fcap = nc;
    }
    seqflow *f = &t->f[t->nflows];
    memset(f, 0, sizeof *f);
    f->flow = m->flow;
    f->ipver = m->ipver;
    f->sport = m->sport;
    memcpy(f->saddr, m->saddr, sizeof f->saddr);
    return (int64_t)t->nflows++;
}

int dp_seqtab_add(dp_seqtab *t, const dp_meta *m, const uint8_t *vec, char *errbuf)
{
    int64_t i = dp_flowmap_get(&t->index, m->flow, 0);
    if (i < 0) {
        i = new_flow(t, m);
        if (i < 0 || dp_flowmap_put(&t->index, m->flow, 0, (uint32_t)i) != 0)
            return dp_err(errbuf, "out of memory (flow sequences)");
    }
    seqflow *f = &t->f[i];
    if (f->count >= (uint32_t)t->npackets)
        return 0;
    dp_meta first = {.ipver = f->ipver, .sport = f->sport};
    memcpy(first.saddr, f->saddr, sizeof first.saddr);
    t->seq[(size_t)i * t->npackets + f->count++] =
        dp_seq_ip_length(vec) << 1 | (uint32_t)dp_seq_direction(&first, m);
    return 0;
}

int dp_seqtab_add_set(dp_seqtab *t, const dp_splitset *s, const char *dir, char *errbuf)
{
    if (!s->has_meta)
        return dp_err(errbuf, "%s: no " DP_FILE_META ": its flows and directions are unknown", dir);
    for (uint64_t i = 0; i < s->n; i++) {
        dp_meta m = dp_splitset_meta(s, i);
        if (dp_seqtab_add(t, &m, dp_splitset_vector(s, i), errbuf) != 0)
            return -1;
    }
    return 0;
}

static uint64_t signature(const dp_seqtab *t, size_t i)
{
    uint32_t n = t->f[i].count;
    uint64_t h = dp_fnv1a(&n, sizeof n, DP_FNV_INIT);
    return dp_fnv1a(t->seq + i * (size_t)t->npackets, n * sizeof(uint32_t), h);
}

typedef struct sigref {
    uint64_t sig;
    uint32_t i;
} sigref;

static int cmp_sigref(const void *pa, const void *pb)
{
    const sigref *a = pa, *b = pb;
    if (a->sig != b->sig)
        return a->sig < b->sig ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* 1 when flow i of a and flow j of b have the same sequence. */
static int same_seq(const dp_seqtab *a, size_t i, const dp_seqtab *b, size_t j)
{
    uint32_t n = a->f[i].count;
    return n == b->f[j].count &&
           !memcmp(a->seq + i * (size_t)a->npackets, b->seq + j * (size_t)b->npackets, n * sizeof(uint32_t));
}

int64_t dp_seqtab_mark(dp_seqtab *test, dp_seqtab *train, char *errbuf)
{
    if (test->npackets != train->npackets)
        return dp_err(errbuf, "sequence lengths differ (%d and %d packets)", test->npackets, train->npackets);
    size_t n = train->nflows;
    sigref *r = malloc((n ? n : 1) * sizeof *r);
    if (!r)
        return dp_err(errbuf, "out of memory (%zu training flows)", n);
    for (size_t i = 0; i < n; i++)
        r[i] = (sigref){signature(train, i), (uint32_t)i};
    qsort(r, n, sizeof *r, cmp_sigref);
    int64_t marked = 0;
    for (size_t j = 0; j < test->nflows; j++) {
        uint64_t sig = signature(test, j);
        size_t lo = 0, hi = n; /* first entry with r.sig >= sig */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (r[mid].sig < sig)
                lo = mid + 1;
            else
                hi = mid;
        }
        test->f[j].dup = 0;
        for (size_t k = lo; k < n && r[k].sig == sig && !test->f[j].dup; k++)
            test->f[j].dup = (uint8_t)same_seq(test, j, train, r[k].i);
        marked += test->f[j].dup;
    }
    free(r);
    return marked;
}

int dp_seqtab_is_dup(const dp_seqtab *test, uint64_t flow)
{
    int64_t i = dp_flowmap_get(&test->index, flow, 0);
    return i >= 0 ? test->f[i].dup : 0;
}
