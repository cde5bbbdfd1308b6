/* dp_split: train/test sets per task; see dp_split.h for the exact rules. */
#include "dataset/dp_split.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dataset/dp_split_impl.h"

const char *const dp_split_by_name[4] = {"flow", "file", "packet", "time"};

int dp_split_by_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, dp_split_by_name[i]))
            return i;
    return -1;
}

void dp_split_opts_default(dp_split_opts *o)
{
    memset(o, 0, sizeof *o);
    o->test_size = 0.2;
    o->seed = 9876;
    o->by = DP_SPLIT_BY_FLOW;
    o->under_sample = 1;
    o->tasks = (1 << DP_TASK_APP) | (1 << DP_TASK_TRAFFIC);
    o->out = NULL;
}

/* ---- (class, key) -> dense id ---------------------------------------------- */

static void groups_free(dp_split_groups *t)
{
    dp_flowmap_free(&t->map);
    free(t->cls);
    free(t->count);
    memset(t, 0, sizeof *t);
}

/* Room for one more id in the per-id arrays; -1 when out of memory. */
static int groups_reserve(dp_split_groups *t)
{
    if (t->n < t->idcap)
        return 0;
    size_t nc = t->idcap ? t->idcap * 2 : 1024;
    uint16_t *c = realloc(t->cls, nc * sizeof *c);
    if (!c)
        return -1;
    t->cls = c;
    uint64_t *k = realloc(t->count, nc * sizeof *k);
    if (!k)
        return -1;
    t->count = k;
    t->idcap = nc;
    return 0;
}

/* Returns the id of (cls, key), adding it (and counting one packet) when
 * add is set; -1 when absent (or out of memory, or more than 2^32 - 2 ids). */
static int64_t groups_get(dp_split_groups *t, int cls, uint64_t key, int add)
{
    if (!add)
        return dp_flowmap_get(&t->map, key, (uint32_t)cls);
    if (t->n > DP_FLOWMAP_MAX_VAL || groups_reserve(t) != 0)
        return -1;
    int added;
    int64_t id = dp_flowmap_intern(&t->map, key, (uint32_t)cls, (uint32_t)t->n, &added);
    if (id < 0)
        return -1;
    if (added) {
        t->n++;
        t->cls[id] = (uint16_t)cls;
        t->count[id] = 0;
    }
    t->count[id]++;
    return id;
}

/* ---- keeping the resident set small ---------------------------------------------
 * The dataset is mapped, and every page read stays in this process's resident
 * set until unmapped. A pass that walks an array in order drops the pages it
 * has finished with (the kernel keeps them in the page cache), so a split of
 * a dataset far larger than RAM stays at a few MB of mapped pages. */
typedef struct dropper {
    const dp_npy *a;
    size_t row_bytes;
    size_t done; /* bytes from a->map already dropped */
} dropper;

#define DROP_CHUNK (16u << 20)

static void dropper_init(dropper *r, const dp_npy *a, size_t row_bytes)
{
    r->a = a;
    r->row_bytes = row_bytes;
    r->done = 0;
    if (a->map)
        madvise(a->map, a->map_len, MADV_SEQUENTIAL);
}

/* Rows before `row` are no longer needed. */
static void dropper_upto(dropper *r, uint64_t row)
{
    if (!r->a->map)
        return;
    size_t off = (size_t)(r->a->data - (const uint8_t *)r->a->map) + (size_t)row * r->row_bytes;
    if (off > r->a->map_len)
        off = r->a->map_len;
    if (off < r->done + DROP_CHUNK)
        return;
    size_t page = 4096, end = off / page * page;
    madvise((uint8_t *)r->a->map + r->done, end - r->done, MADV_DONTNEED);
    r->done = end;
}

static void add_class(dp_split_class *t, const dp_split_class *k)
{
    t->packets += k->packets;
    t->flows += k->flows;
    t->train_packets += k->train_packets;
    t->train_flows += k->train_flows;
    t->kept_packets += k->kept_packets;
    t->kept_flows += k->kept_flows;
    t->test_packets += k->test_packets;
    t->test_flows += k->test_flows;
    t->shared_flows += k->shared_flows;
    t->shared_flows_kept += k->shared_flows_kept;
    t->groups += k->groups;
    t->train_groups += k->train_groups;
    t->test_groups += k->test_groups;
}

/* ---- one task's split, step by step ---------------------------------------- */

/* What the steps of dp_split_task share. */
typedef struct split_job {
    const dp_dataset *d;
    const char *dataset_dir;
    const dp_split_opts *o;
    int task, nc;
    uint64_t n;
    dp_split_card *card;
    uint8_t *side;  /* per packet: SIDE_* */
    uint32_t *gid;  /* per packet: group id; reused by the under-sampling */
    dp_split_groups flows, files;
    uint8_t *fmask; /* per flow: 1 train, 2 kept, 4 test */
} split_job;

static int check_task_args(const dp_dataset *d, const char *dataset_dir, int task, const dp_split_opts *o,
                           char *errbuf)
{
    if (task < 0 || task >= DP_NTASKS)
        return dp_err(errbuf, "split: bad task %d", task);
    if (!(o->test_size > 0 && o->test_size < 1))
        return dp_err(errbuf, "split: test size %g is not in (0, 1)", o->test_size);
    if ((int)o->by < 0 || o->by > DP_SPLIT_BY_TIME)
        return dp_err(errbuf, "split: bad split mode %d", (int)o->by);
    if (d->labels.nclasses[task] <= 0)
        return dp_err(errbuf, "%s/" DP_FILE_LABELS ": no %s classes", dataset_dir, dp_task_name[task]);
    if (d->n >= UINT32_MAX)
        return dp_err(errbuf, "%s: %" PRIu64 " packets; split handles at most %u", dataset_dir, d->n,
                      UINT32_MAX - 1);
    return 0;
}

/* Allocates the job's arrays and fills the card's header; j is zeroed first
 * so that job_free is safe after a failure. */
static int job_init(split_job *j, const dp_dataset *d, const char *dataset_dir, int task, const dp_split_opts *o,
                    char *errbuf)
{
    memset(j, 0, sizeof *j);
    j->d = d;
    j->dataset_dir = dataset_dir;
    j->o = o;
    j->task = task;
    j->nc = d->labels.nclasses[task];
    j->n = d->n;
    j->card = calloc(1, sizeof *j->card);
    j->side = calloc(j->n ? j->n : 1, 1);
    j->gid = malloc((j->n ? j->n : 1) * sizeof *j->gid);
    if (!j->card || !j->side || !j->gid)
        return dp_err(errbuf, "%s: out of memory", dataset_dir);
    j->card->task = task;
    j->card->nclasses = j->nc;
    j->card->dataset_packets = j->n;
    for (int k = 0; k < j->nc; k++)
        j->card->names[k] = d->labels.names[task][k];
    return 0;
}

static void job_free(split_job *j)
{
    free(j->card);
    free(j->side);
    free(j->gid);
    free(j->fmask);
    groups_free(&j->flows);
    groups_free(&j->files);
}

/* Step 1: each labelled packet's group (its flow, or its capture when
 * splitting by file); flows always, for the card. */
static int find_groups(split_job *j, char *errbuf)
{
    const dp_dataset *d = j->d;
    dp_split_card *card = j->card;
    dropper dm;
    dropper_init(&dm, &d->meta, sizeof(dp_meta));
    for (uint64_t i = 0; i < j->n; i++) {
        dropper_upto(&dm, i);
        int c = dp_dataset_label(d, j->task, i);
        j->gid[i] = UINT32_MAX;
        if (c < 0) {
            card->unlabelled++;
            continue;
        }
        if (c >= j->nc)
            return dp_err(errbuf, "%s: packet %" PRIu64 " has %s class %d, outside 0..%d", j->dataset_dir, i,
                          dp_task_name[j->task], c, j->nc - 1);
        dp_meta m = dp_dataset_meta(d, i);
        int64_t f = groups_get(&j->flows, c, m.flow, 1);
        int64_t g = f;
        if (f >= 0 && j->o->by == DP_SPLIT_BY_FILE)
            g = groups_get(&j->files, c, m.file, 1);
        if (g < 0)
            return dp_err(errbuf, "%s: out of memory (flow table)", j->dataset_dir);
        j->gid[i] = (uint32_t)g;
        card->cls[c].packets++;
    }
    if (card->unlabelled == j->n)
        return dp_err(errbuf, "%s: no packet is labelled for the %s task", j->dataset_dir,
                      dp_task_name[j->task]);
    return 0;
}

/* Step 2: each packet's side, per packet or per group. */
static int assign_sides(split_job *j, char *errbuf)
{
    const dp_split_opts *o = j->o;
    if (o->by == DP_SPLIT_BY_PACKET)
        return dp_split_sides_by_packet(j->d, j->dataset_dir, j->task, j->nc, o, j->side, errbuf);
    return dp_split_sides_by_group(j->d, j->dataset_dir, j->task, j->nc, o,
                          o->by == DP_SPLIT_BY_FILE ? &j->files : &j->flows, j->gid, j->side, j->card, errbuf);
}

/* The training packets per class and the under-sampling cap: the smallest
 * class's (0 when not under-sampling). */
static void count_train(split_job *j)
{
    dp_split_card *card = j->card;
    for (uint64_t i = 0; i < j->n; i++)
        if (j->side[i] == SIDE_TRAIN)
            card->cls[dp_dataset_label(j->d, j->task, i)].train_packets++;
    for (int k = 0; k < j->nc; k++) {
        uint64_t t = card->cls[k].train_packets;
        if (t && (!card->cap || t < card->cap))
            card->cap = t;
    }
    if (!j->o->under_sample)
        card->cap = 0;
}

/* Step 3: drops training packets at random down to the cap in every class. */
static void under_sample(split_job *j)
{
    count_train(j);
    const size_t cap = j->card->cap;
    if (!cap)
        return;
    /* bucket the training packets per class, in dataset order; gid is free now */
    size_t off[DP_MAX_CLASSES + 1] = {0}, pos[DP_MAX_CLASSES];
    for (int k = 0; k < j->nc; k++)
        off[k + 1] = off[k] + j->card->cls[k].train_packets;
    memcpy(pos, off, sizeof pos);
    for (uint64_t i = 0; i < j->n; i++)
        if (j->side[i] == SIDE_TRAIN)
            j->gid[pos[dp_dataset_label(j->d, j->task, i)]++] = (uint32_t)i;
    for (int k = 0; k < j->nc; k++) {
        uint32_t *a = j->gid + off[k];
        size_t n = off[k + 1] - off[k];
        if (n <= cap)
            continue;
        dp_rng r;
        dp_split_rng(&r, j->o->seed, j->task, k, RNG_UNDER);
        for (size_t x = 0; x < cap; x++) {
            size_t y = x + (size_t)dp_rng_below(&r, n - x);
            uint32_t tmp = a[x];
            a[x] = a[y];
            a[y] = tmp;
        }
        for (size_t x = cap; x < n; x++)
            j->side[a[x]] = SIDE_DROPPED;
    }
}

/* Packets per class and side, and which sides each flow reached (fmask). */
static int count_packets(split_job *j, char *errbuf)
{
    const dp_dataset *d = j->d;
    j->fmask = calloc(j->flows.n ? j->flows.n : 1, 1);
    if (!j->fmask)
        return dp_err(errbuf, "%s: out of memory", j->dataset_dir);
    dropper dm;
    dropper_init(&dm, &d->meta, sizeof(dp_meta));
    for (uint64_t i = 0; i < j->n; i++) {
        dropper_upto(&dm, i);
        int c = dp_dataset_label(d, j->task, i);
        if (c < 0)
            continue;
        dp_meta m = dp_dataset_meta(d, i);
        int64_t f = groups_get(&j->flows, c, m.flow, 0);
        dp_split_class *s = &j->card->cls[c];
        uint8_t bits = 0;
        switch (j->side[i]) {
        case SIDE_TRAIN:
            s->kept_packets++;
            bits = 1 | 2;
            break;
        case SIDE_DROPPED:
            bits = 1;
            break;
        case SIDE_TEST:
            s->test_packets++;
            bits = 4;
            break;
        }
        if (f >= 0)
            j->fmask[f] |= bits;
    }
    return 0;
}

/* Step 4: the card's counts per class and per flow, and the total row. */
static int count_card(split_job *j, char *errbuf)
{
    if (count_packets(j, errbuf) != 0)
        return -1;
    dp_split_card *card = j->card;
    for (size_t f = 0; f < j->flows.n; f++) {
        dp_split_class *s = &card->cls[j->flows.cls[f]];
        uint8_t b = j->fmask[f];
        s->flows++;
        s->train_flows += (b & 1) != 0;
        s->kept_flows += (b & 2) != 0;
        s->test_flows += (b & 4) != 0;
        s->shared_flows += (b & 5) == 5;
        s->shared_flows_kept += (b & 6) == 6;
    }
    for (int k = 0; k < j->nc; k++)
        add_class(&card->total, &card->cls[k]);
    return 0;
}

/* Writes the kept packets into w[0] (train) and w[1] (test) in one pass
 * over the vectors, and commits both. */
static int write_rows(const split_job *j, dp_split_outset w[2], char *errbuf)
{
    const dp_dataset *d = j->d;
    dropper dv, dm;
    dropper_init(&dv, &d->vectors, DP_VEC_LEN);
    dropper_init(&dm, &d->meta, sizeof(dp_meta));
    dp_progress prog;
    dp_progress_init(&prog);
    for (uint64_t i = 0; i < j->n; i++) {
        dropper_upto(&dv, i);
        dropper_upto(&dm, i);
        if (j->side[i] != SIDE_TRAIN && j->side[i] != SIDE_TEST)
            continue;
        dp_split_outset *ws = &w[j->side[i] == SIDE_TEST];
        if (dp_split_outset_row(ws, dp_dataset_vector(d, i), (int16_t)dp_dataset_label(d, j->task, i),
                       d->meta.data + sizeof(dp_meta) * i, errbuf) != 0)
            return -1;
        if ((i & 0xffff) == 0 && dp_progress_due(&prog))
            dp_progress_print(&prog, "split %s: %.1f%% written", dp_task_name[j->task],
                              100.0 * (double)i / (double)j->n);
    }
    if (prog.printed)
        dp_progress_done(&prog);
    return dp_split_outset_commit(&w[0], errbuf) != 0 || dp_split_outset_commit(&w[1], errbuf) != 0 ? -1 : 0;
}

/* Step 5: task_dir/{train,test} with their arrays and tables, then the data
 * cards (and the card's table on o->out). */
static int write_task(const split_job *j, const char *task_dir, char *errbuf)
{
    char *train_dir = dp_path_join(task_dir, "train"), *test_dir = dp_path_join(task_dir, "test");
    dp_split_outset w[2];
    memset(w, 0, sizeof w);
    int rc = -1;
    if (!train_dir || !test_dir) {
        dp_err(errbuf, "%s: out of memory", j->dataset_dir);
        goto out;
    }
    if (dp_mkdirs(train_dir, errbuf) != 0 || dp_mkdirs(test_dir, errbuf) != 0)
        goto out;
    if (dp_split_outset_open(&w[0], train_dir, errbuf) != 0 || dp_split_outset_open(&w[1], test_dir, errbuf) != 0)
        goto out;
    if (write_rows(j, w, errbuf) != 0)
        goto out;
    if (dp_split_write_classes(train_dir, j->card, errbuf) != 0 || dp_split_write_classes(test_dir, j->card, errbuf) != 0 ||
        dp_splitset_write_task(train_dir, j->task, errbuf) != 0 ||
        dp_splitset_write_task(test_dir, j->task, errbuf) != 0)
        goto out;
    if (dp_split_write_card(task_dir, j->card, j->dataset_dir, j->o, 0, errbuf) != 0 ||
        dp_split_write_card(task_dir, j->card, j->dataset_dir, j->o, 1, errbuf) != 0)
        goto out;
    if (j->o->out) {
        dp_split_card_markdown(j->o->out, j->card, j->dataset_dir, j->o);
        fflush(j->o->out);
    }
    rc = 0;
out:
    dp_split_outset_abort(&w[0]);
    dp_split_outset_abort(&w[1]);
    free(train_dir);
    free(test_dir);
    return rc;
}

int dp_split_task(const dp_dataset *d, const char *dataset_dir, int task, const char *task_dir,
                  const dp_split_opts *o, dp_split_card *card_out, char *errbuf)
{
    if (check_task_args(d, dataset_dir, task, o, errbuf) != 0)
        return -1;
    split_job j;
    int rc = -1;
    if (job_init(&j, d, dataset_dir, task, o, errbuf) != 0)
        goto out;
    if (find_groups(&j, errbuf) != 0 || assign_sides(&j, errbuf) != 0)
        goto out;
    under_sample(&j);
    if (count_card(&j, errbuf) != 0 || write_task(&j, task_dir, errbuf) != 0)
        goto out;
    if (card_out)
        *card_out = *j.card;
    rc = 0;
out:
    job_free(&j);
    return rc;
}
