/* dp_flowtable: bounded flow table: slots on a free list, a dp_flowmap from
 * flow id to slot, and an activity (LRU) list. */
#include <stdlib.h>
#include <string.h>

#include "classify/dp_classify.h"

int dp_flowtable_init(dp_flowtable *t, int32_t cap, int nclasses, char *errbuf)
{
    memset(t, 0, sizeof *t);
    if (cap < 1 || nclasses < 1)
        return dp_err(errbuf, "flow table: bad capacity %d or class count %d", (int)cap, nclasses);
    t->flows = calloc((size_t)cap, sizeof *t->flows);
    t->sums = calloc((size_t)cap * (size_t)nclasses, sizeof *t->sums);
    int mapped = dp_flowmap_init(&t->index, (size_t)cap);
    if (!t->flows || !t->sums || mapped != 0) {
        dp_flowtable_free(t);
        return dp_err(errbuf, "flow table: out of memory for %d flows", (int)cap);
    }
    t->cap = cap;
    t->nclasses = nclasses;
    t->count = 0;
    t->lru_head = t->lru_tail = -1;
    /* free list through free_next */
    for (int32_t i = 0; i < cap; i++) {
        t->flows[i].free_next = i + 1 < cap ? i + 1 : -1;
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
    dp_flowmap_free(&t->index);
    memset(t, 0, sizeof *t);
}

dp_flow *dp_flowtable_find(dp_flowtable *t, uint64_t id)
{
    int64_t i = dp_flowmap_get(&t->index, id, 0);
    return i >= 0 ? &t->flows[i] : NULL;
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
    t->free_head = f->free_next;
    double *sum = f->sum;
    memset(f, 0, sizeof *f);
    f->sum = sum;
    memset(sum, 0, (size_t)t->nclasses * sizeof *sum);
    f->id = id;
    dp_flowmap_put(&t->index, id, 0, (uint32_t)i); /* sized for cap: cannot fail */
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
    dp_flowmap_remove(&t->index, f->id, 0);
    lru_unlink(t, i);
    f->free_next = t->free_head;
    t->free_head = i;
    t->count--;
}
