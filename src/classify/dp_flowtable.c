/* dp_flowtable: bounded flow table: slots on a free list, a dp_flowmap from
 * flow id to slot, and an activity (LRU) list. The slots are allocated as
 * flows come (doubling, up to the capacity): --max-flows is a bound, not
 * an allocation (2^26 flows used to take about 20 GB at start). */
#include <stdlib.h>
#include <string.h>

#include "classify/dp_classify.h"

#define FLOWTABLE_FIRST 1024 /* slots allocated at first */

/* Makes room for n slots (alloc < n <= cap): the new ones go on the free
 * list, every slot's sum pointer follows the moved sums. 0, or -1 when out
 * of memory (the table is unchanged). */
static int grow(dp_flowtable *t, int32_t n)
{
    dp_flow *fl = realloc(t->flows, (size_t)n * sizeof *fl);
    if (!fl)
        return -1;
    t->flows = fl;
    double *sums = realloc(t->sums, (size_t)n * (size_t)t->nclasses * sizeof *sums);
    if (!sums)
        return -1;
    t->sums = sums;
    memset(fl + t->alloc, 0, (size_t)(n - t->alloc) * sizeof *fl);
    for (int32_t i = 0; i < n; i++)
        fl[i].sum = sums + (size_t)i * (size_t)t->nclasses;
    for (int32_t i = n - 1; i >= t->alloc; i--) {
        fl[i].free_next = t->free_head;
        t->free_head = i;
    }
    t->alloc = n;
    return 0;
}

int dp_flowtable_init(dp_flowtable *t, int32_t cap, int nclasses, char *errbuf)
{
    memset(t, 0, sizeof *t);
    if (cap < 1 || nclasses < 1)
        return dp_err(errbuf, "flow table: bad capacity %d or class count %d", (int)cap, nclasses);
    t->cap = cap;
    t->nclasses = nclasses;
    t->lru_head = t->lru_tail = t->free_head = -1;
    int32_t first = cap < FLOWTABLE_FIRST ? cap : FLOWTABLE_FIRST;
    if (dp_flowmap_init(&t->index, (size_t)first) != 0 || grow(t, first) != 0) {
        dp_flowtable_free(t);
        return dp_err(errbuf, "flow table: out of memory for %d flows", (int)first);
    }
    return 0;
}

void dp_flowtable_free(dp_flowtable *t)
{
    for (int32_t i = 0; t->flows && i < t->alloc; i++)
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
    if (t->free_head < 0 && t->alloc < t->cap &&
        grow(t, t->alloc > t->cap / 2 ? t->cap : 2 * t->alloc) != 0)
        return NULL;
    if (t->free_head < 0 || dp_flowmap_put(&t->index, id, 0, (uint32_t)t->free_head) != 0)
        return NULL;
    int32_t i = t->free_head;
    dp_flow *f = &t->flows[i];
    t->free_head = f->free_next;
    double *sum = f->sum;
    memset(f, 0, sizeof *f);
    f->sum = sum;
    memset(sum, 0, (size_t)t->nclasses * sizeof *sum);
    f->id = id;
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
