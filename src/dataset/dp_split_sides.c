/* dp_split_sides: which side (train or test) each packet of a task goes
 * to: per packet, or per group (flow, file) at random or in time order. See
 * dp_split.h for the rules and dp_split_impl.h for the contracts. */
#include "dataset/dp_split_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- randomness ------------------------------------------------------------ */

void dp_split_rng(dp_rng *r, uint64_t seed, int task, int cls, int purpose)
{
    uint64_t parts[4] = {seed, (uint64_t)task, (uint64_t)cls, (uint64_t)purpose};
    dp_rng_seed(r, dp_fnv1a(parts, sizeof parts, DP_FNV_INIT));
}

/* ---- splitting ----------------------------------------------------------------- */

/* Assigns the groups of one class to a side (see dp_split.h). */
static void assign_groups(uint32_t *g, size_t k, const uint64_t *count, uint8_t *gside,
                          double s, dp_rng *r)
{
    if (k == 0)
        return;
    dp_rng_shuffle_u32(r, g, k);
    double P = 0;
    for (size_t j = 0; j < k; j++)
        P += (double)count[g[j]];
    double T = s * P, t = 0;
    size_t ntest = 0;
    for (size_t j = 0; j < k; j++) {
        double n = (double)count[g[j]];
        if (t + n - T < T - t) {
            gside[g[j]] = SIDE_TEST;
            t += n;
            ntest++;
        } else {
            gside[g[j]] = SIDE_TRAIN;
        }
    }
    if (k < 2 || (ntest > 0 && ntest < k))
        return;
    /* all on one side: move the smallest group across */
    size_t best = k;
    for (size_t j = 0; j < k; j++)
        if (best == k || count[g[j]] < count[g[best]])
            best = j;
    gside[g[best]] = ntest == 0 ? SIDE_TEST : SIDE_TRAIN;
}

/* ---- --by time ------------------------------------------------------------------ */

/* A flow's first packet (of its class), the key of the time order. */
typedef struct tkey {
    double time;
    uint32_t file;
    uint64_t index;
    uint64_t flow;
    uint32_t g;
} tkey;

static int cmp_tkey(const void *pa, const void *pb)
{
    const tkey *a = pa, *b = pb;
    if (a->time != b->time)
        return a->time < b->time ? -1 : 1;
    if (a->file != b->file)
        return a->file < b->file ? -1 : 1;
    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    if (a->flow != b->flow)
        return a->flow < b->flow ? -1 : 1;
    return (a->g > b->g) - (a->g < b->g);
}

static int tkey_before(const tkey *a, const dp_meta *m)
{
    if (a->time != m->time)
        return a->time < m->time;
    if (a->file != m->file)
        return a->file < m->file;
    return a->index <= m->index;
}

/* The first packet of each of the ng groups (ids in gid, UINT32_MAX for
 * unlabelled rows). NULL + message when out of memory, or when every
 * labelled packet has time 0 (no capture times to order by). */
static tkey *group_starts(const dp_dataset *d, const char *dataset_dir, int task, const uint32_t *gid,
                          size_t ng, char *errbuf)
{
    tkey *k = malloc((ng ? ng : 1) * sizeof *k);
    uint8_t *seen = calloc(ng ? ng : 1, 1);
    int timed = 0;
    if (!k || !seen) {
        dp_err(errbuf, "%s: out of memory", dataset_dir);
        goto fail;
    }
    for (uint64_t i = 0; i < d->n; i++) {
        if (gid[i] == UINT32_MAX)
            continue;
        dp_meta m = dp_dataset_meta(d, i);
        timed |= m.time != 0;
        tkey *t = &k[gid[i]];
        if (seen[gid[i]] && tkey_before(t, &m))
            continue;
        seen[gid[i]] = 1;
        *t = (tkey){.time = m.time, .file = m.file, .index = m.index, .flow = m.flow, .g = gid[i]};
    }
    if (!timed) {
        dp_err(errbuf, "%s/" DP_FILE_META ": every packet labelled for the %s task has time 0 (no capture times); "
               "--by time cannot order the flows (use --by flow)", dataset_dir, dp_task_name[task]);
        goto fail;
    }
    free(seen);
    return k;
fail:
    free(k);
    free(seen);
    return NULL;
}

/* Assigns one class's flows (g, k of them) by time (see dp_split.h): sorts g
 * into time order, puts the latest share in test, records the boundary. */
static int assign_by_time(uint32_t *g, size_t k, const tkey *starts, const uint64_t *count,
                          uint8_t *gside, double s, dp_split_class *card)
{
    card->train_last_start = card->test_first_start = NAN;
    if (k == 0)
        return 0;
    tkey *o = malloc(k * sizeof *o);
    if (!o)
        return -1;
    double P = 0;
    for (size_t j = 0; j < k; j++) {
        o[j] = starts[g[j]];
        P += (double)count[g[j]];
    }
    qsort(o, k, sizeof *o, cmp_tkey);
    double T = s * P, t = 0;
    size_t first_test = k; /* o[first_test..k) go to test */
    while (first_test > 0) {
        double n = (double)count[o[first_test - 1].g];
        if (!(t + n - T < T - t))
            break;
        t += n;
        first_test--;
    }
    if (k >= 2 && first_test == k)
        first_test = k - 1;
    if (k >= 2 && first_test == 0)
        first_test = 1;
    for (size_t j = 0; j < k; j++) {
        g[j] = o[j].g;
        gside[o[j].g] = j < first_test ? SIDE_TRAIN : SIDE_TEST;
    }
    if (first_test > 0)
        card->train_last_start = o[first_test - 1].time;
    if (first_test < k)
        card->test_first_start = o[first_test].time;
    free(o);
    return 0;
}

static int cmp_tkey_by_file(const void *pa, const void *pb)
{
    const tkey *a = pa, *b = pb;
    if (a->file != b->file)
        return a->file < b->file ? -1 : 1;
    return cmp_tkey(pa, pb);
}

/* --time-scope capture: one class's flows (g, k of them) grouped by the
 * capture of their first packet, each capture's flows assigned by time on
 * their own (assign_by_time); the class's boundaries stay NAN. */
static int assign_by_time_per_capture(uint32_t *g, size_t k, const tkey *starts, const uint64_t *count,
                                      uint8_t *gside, double s, dp_split_class *card)
{
    card->train_last_start = card->test_first_start = NAN;
    tkey *o = malloc((k ? k : 1) * sizeof *o);
    if (!o)
        return -1;
    for (size_t j = 0; j < k; j++)
        o[j] = starts[g[j]];
    qsort(o, k, sizeof *o, cmp_tkey_by_file);
    for (size_t j = 0; j < k; j++)
        g[j] = o[j].g;
    int rc = 0;
    for (size_t a = 0, b; a < k && rc == 0; a = b) {
        for (b = a + 1; b < k && o[b].file == o[a].file; b++)
            ;
        dp_split_class scratch;
        rc = assign_by_time(g + a, b - a, starts, count, gside, s, &scratch);
    }
    free(o);
    return rc;
}

int dp_split_sides_by_packet(const dp_dataset *d, const char *dataset_dir, int task, int nc, const dp_split_opts *o,
                             uint8_t *side, char *errbuf)
{
    dp_rng *r = malloc((size_t)nc * sizeof *r);
    if (!r)
        return dp_err(errbuf, "%s: out of memory", dataset_dir);
    for (int k = 0; k < nc; k++)
        dp_split_rng(&r[k], o->seed, task, k, RNG_PACKET);
    for (uint64_t i = 0; i < d->n; i++) {
        int c = dp_dataset_label(d, task, i);
        if (c >= 0)
            side[i] = dp_rng_double(&r[c]) < o->test_size ? SIDE_TEST : SIDE_TRAIN;
    }
    free(r);
    return 0;
}

int dp_split_sides_by_group(const dp_dataset *d, const char *dataset_dir, int task, int nc, const dp_split_opts *o,
                            const dp_split_groups *G, const uint32_t *gid, uint8_t *side, dp_split_card *card,
                            char *errbuf)
{
    size_t ng = G->n;
    uint8_t *gside = calloc(ng ? ng : 1, 1);
    uint32_t *order = malloc((ng ? ng : 1) * sizeof *order);
    tkey *starts = NULL;
    size_t off[DP_MAX_CLASSES + 1] = {0}, pos[DP_MAX_CLASSES];
    int rc = -1;
    if (!gside || !order) {
        dp_err(errbuf, "%s: out of memory", dataset_dir);
        goto out;
    }
    for (size_t g = 0; g < ng; g++)
        off[G->cls[g] + 1]++;
    for (int k = 0; k < nc; k++)
        off[k + 1] += off[k];
    memcpy(pos, off, sizeof pos);
    for (size_t g = 0; g < ng; g++) /* ids are in order of first appearance */
        order[pos[G->cls[g]]++] = (uint32_t)g;
    if (o->by == DP_SPLIT_BY_TIME && !(starts = group_starts(d, dataset_dir, task, gid, ng, errbuf)))
        goto out;
    for (int k = 0; k < nc; k++) {
        size_t nk = off[k + 1] - off[k];
        if (starts) {
            int (*assign)(uint32_t *, size_t, const tkey *, const uint64_t *, uint8_t *, double, dp_split_class *) =
                o->time_per_capture ? assign_by_time_per_capture : assign_by_time;
            if (assign(order + off[k], nk, starts, G->count, gside, o->test_size, &card->cls[k]) != 0) {
                dp_err(errbuf, "%s: out of memory", dataset_dir);
                goto out;
            }
            continue;
        }
        dp_rng r;
        dp_split_rng(&r, o->seed, task, k, RNG_GROUPS);
        assign_groups(order + off[k], nk, G->count, gside, o->test_size, &r);
    }
    for (uint64_t i = 0; i < d->n; i++)
        if (gid[i] != UINT32_MAX)
            side[i] = gside[gid[i]];
    for (size_t g = 0; g < ng; g++) {
        dp_split_class *s = &card->cls[G->cls[g]];
        s->groups++;
        if (gside[g] == SIDE_TEST)
            s->test_groups++;
        else
            s->train_groups++;
    }
    rc = 0;
out:
    free(gside);
    free(order);
    free(starts);
    return rc;
}

