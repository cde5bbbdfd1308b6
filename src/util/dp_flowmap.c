/* dp_flowmap: open addressing on (flow id, tag); see dp_flowmap.h. */
#include "util/dp_flowmap.h"

#include <stdlib.h>
#include <string.h>

#include "util/dp_util.h"

/* The home slot of (key, tag): the one mixer of every flow-keyed table. */
static size_t home(const dp_flowmap *m, uint64_t key, uint32_t tag)
{
    return (size_t)dp_mix64(key ^ (uint64_t)tag * 0x9e3779b97f4a7c15ULL) & (m->cap - 1);
}

/* The slot that holds (key, tag), or the empty slot where it would go. */
static size_t probe(const dp_flowmap *m, uint64_t key, uint32_t tag)
{
    size_t p = home(m, key, tag);
    while (m->vals[p] && (m->keys[p] != key || m->tags[p] != tag))
        p = (p + 1) & (m->cap - 1);
    return p;
}

/* Moves every key into a table of ncap slots (a power of two > 2 * n). */
static int resize(dp_flowmap *m, size_t ncap)
{
    dp_flowmap t = {.cap = ncap, .n = m->n};
    t.keys = malloc(ncap * sizeof *t.keys);
    t.tags = malloc(ncap * sizeof *t.tags);
    t.vals = calloc(ncap, sizeof *t.vals);
    if (!t.keys || !t.tags || !t.vals) {
        dp_flowmap_free(&t);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->vals[i]) {
            size_t p = probe(&t, m->keys[i], m->tags[i]);
            t.keys[p] = m->keys[i];
            t.tags[p] = m->tags[i];
            t.vals[p] = m->vals[i];
        }
    dp_flowmap_free(m);
    *m = t;
    return 0;
}

int dp_flowmap_init(dp_flowmap *m, size_t expect)
{
    memset(m, 0, sizeof *m);
    if (expect == 0)
        return 0;
    size_t cap = 16;
    while (cap < expect * 2 && cap < ((size_t)1 << 62))
        cap <<= 1;
    return resize(m, cap);
}

void dp_flowmap_free(dp_flowmap *m)
{
    free(m->keys);
    free(m->tags);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

int64_t dp_flowmap_get(const dp_flowmap *m, uint64_t key, uint32_t tag)
{
    if (!m->cap)
        return -1;
    size_t p = probe(m, key, tag);
    return m->vals[p] ? (int64_t)m->vals[p] - 1 : -1;
}

int64_t dp_flowmap_intern(dp_flowmap *m, uint64_t key, uint32_t tag, uint32_t next, int *added)
{
    *added = 0;
    if (m->cap) {
        size_t p = probe(m, key, tag);
        if (m->vals[p])
            return (int64_t)m->vals[p] - 1;
    }
    if (next > DP_FLOWMAP_MAX_VAL)
        return -1;
    if ((m->n + 1) * 2 > m->cap && resize(m, m->cap ? m->cap * 2 : 1024) != 0)
        return -1;
    size_t p = probe(m, key, tag);
    m->keys[p] = key;
    m->tags[p] = tag;
    m->vals[p] = next + 1;
    m->n++;
    *added = 1;
    return next;
}

int dp_flowmap_put(dp_flowmap *m, uint64_t key, uint32_t tag, uint32_t val)
{
    if (val > DP_FLOWMAP_MAX_VAL)
        return -1;
    int added;
    int64_t v = dp_flowmap_intern(m, key, tag, val, &added);
    if (v < 0)
        return -1;
    if (!added)
        m->vals[probe(m, key, tag)] = val + 1;
    return 0;
}

int dp_flowmap_remove(dp_flowmap *m, uint64_t key, uint32_t tag)
{
    if (!m->cap)
        return 0;
    size_t mask = m->cap - 1, hole = probe(m, key, tag);
    if (!m->vals[hole])
        return 0;
    m->vals[hole] = 0;
    m->n--;
    /* Backward shift: pull later keys of the run into the hole when their
     * home slot does not lie (cyclically) after the hole. */
    for (size_t p = (hole + 1) & mask; m->vals[p]; p = (p + 1) & mask) {
        size_t h = home(m, m->keys[p], m->tags[p]);
        if (((p - h) & mask) < ((p - hole) & mask))
            continue;
        m->keys[hole] = m->keys[p];
        m->tags[hole] = m->tags[p];
        m->vals[hole] = m->vals[p];
        m->vals[p] = 0;
        hole = p;
    }
    return 1;
}
