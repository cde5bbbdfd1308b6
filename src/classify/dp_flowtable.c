/* dp_flowtable: bounded flow table with hash chains and an activity list. */
#include <stdlib.h>
#include <string.h>

#include "classify/dp_classify.h"

int dp_flowtable_init(dp_flowtable *t, int32_t cap, int nclasses, char *errbuf)
{
    memset(t, 0, sizeof *t);
    if (cap < 1 || nclasses < 1)
        return dp_err(errbuf, "flow table: bad capacity %d or class count %d", (int)cap, nclasses);
    uint32_t nb = 16;
    while (nb < (uint32_t)cap * 2u && nb < (1u << 30))
        nb <<= 1;
    t->flows = calloc((size_t)cap, sizeof *t->flows);
    t->sums = calloc((size_t)cap * (size_t)nclasses, sizeof *t->sums);
    t->buckets = malloc(nb * sizeof *t->buckets);
    if (!t->flows || !t->sums || !t->buckets) {
        dp_flowtable_free(t);
        return dp_err(errbuf, "flow table: out of memory for %d flows", (int)cap);
    }
    t->nbuckets = nb;
    for (uint32_t i = 0; i < nb; i++)
        t->buckets[i] = -1;
    t->cap = cap;
    t->nclasses = nclasses;
    t->count = 0;
    t->lru_head = t->lru_tail = -1;
    /* free list through hnext */
    for (int32_t i = 0; i < cap; i++) {
        t->flows[i].hnext = i + 1 < cap ? i + 1 : -1;
        t->flows[i].sum = t->sums + (size_t)i * (size_t)nclasses;
    }
    t->free_head = 0;
    return 0;
}

void dp_flowtable_free(dp_flowtable *t)
{
    for (int32_t i = 0; t->flows && i < t->cap; i++)
        free(t->flows[i].row);
    free(t->flows);
    free(t->sums);
    free(t->buckets);
    memset(t, 0, sizeof *t);
}

static uint32_t bucket_of(const dp_flowtable *t, uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (uint32_t)id & (t->nbuckets - 1);
}

dp_flow *dp_flowtable_find(dp_flowtable *t, uint64_t id)
{
    for (int32_t i = t->buckets[bucket_of(t, id)]; i >= 0; i = t->flows[i].hnext)
        if (t->flows[i].id == id)
            return &t->flows[i];
    return NULL;
}

static void lru_unlink(dp_flowtable *t, int32_t i)
{
    dp_flow *f = &t->flows[i];
    if (f->prev >= 0)
        t->flows[f->prev].next = f->next;
    else
        t->lru_head = f->next;
    if (f->next >= 0)
        t->flows[f->next].prev = f->prev;
    else
        t->lru_tail = f->prev;
    f->prev = f->next = -1;
}

static void lru_append(dp_flowtable *t, int32_t i)
{
    dp_flow *f = &t->flows[i];
    f->prev = t->lru_tail;
    f->next = -1;
    if (t->lru_tail >= 0)
        t->flows[t->lru_tail].next = i;
    else
        t->lru_head = i;
    t->lru_tail = i;
}

dp_flow *dp_flowtable_add(dp_flowtable *t, uint64_t id)
{
    if (t->free_head < 0)
        return NULL;
    int32_t i = t->free_head;
    dp_flow *f = &t->flows[i];
    t->free_head = f->hnext;
    double *sum = f->sum;
    memset(f, 0, sizeof *f);
    f->sum = sum;
    memset(sum, 0, (size_t)t->nclasses * sizeof *sum);
    f->id = id;
    uint32_t b = bucket_of(t, id);
    f->hnext = t->buckets[b];
    t->buckets[b] = i;
    lru_append(t, i);
    t->count++;
    return f;
}

void dp_flowtable_touch(dp_flowtable *t, dp_flow *f)
{
    int32_t i = (int32_t)(f - t->flows);
    if (t->lru_tail == i)
        return;
    lru_unlink(t, i);
    lru_append(t, i);
}

dp_flow *dp_flowtable_oldest(dp_flowtable *t)
{
    return t->lru_head >= 0 ? &t->flows[t->lru_head] : NULL;
}

void dp_flowtable_remove(dp_flowtable *t, dp_flow *f)
{
    int32_t i = (int32_t)(f - t->flows);
    free(f->row);
    f->row = NULL;
    uint32_t b = bucket_of(t, f->id);
    int32_t *pp = &t->buckets[b];
    while (*pp >= 0 && *pp != i)
        pp = &t->flows[*pp].hnext;
    if (*pp == i)
        *pp = f->hnext;
    lru_unlink(t, i);
    f->hnext = t->free_head;
    t->free_head = i;
    t->count--;
}
