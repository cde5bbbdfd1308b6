/* Tests for dp_dataset_open, dp_splitset_open and dp_split (the split
 * command): synthetic datasets with known flows and files. */
#include "dp_test.h"

#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dataset/dp_dataset.h"
#include "dataset/dp_split.h"

static const char *LABELS_TSV =
    "prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\n"
    "a0\t0\tZero\t0\tChat\n"
    "a1\t1\tOne\t0\tChat\n"
    "a2\t2\tTwo\t1\tVoip\n"
    "a3\t3\tThree (unused)\t1\tVoip\n";

typedef struct synth {
    uint64_t n, cap;
    int16_t *cls[DP_NTASKS];
    uint64_t *flow;
    uint32_t *file;
    double *time;    /* capture time per row; synth_add sets 1000 + row */
} synth;

static void synth_add(synth *s, int app, int traffic, uint64_t flow, uint32_t file)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        for (int t = 0; t < DP_NTASKS; t++)
            s->cls[t] = realloc(s->cls[t], s->cap * sizeof(int16_t));
        s->flow = realloc(s->flow, s->cap * sizeof(uint64_t));
        s->file = realloc(s->file, s->cap * sizeof(uint32_t));
        s->time = realloc(s->time, s->cap * sizeof(double));
    }
    s->time[s->n] = 1000.0 + (double)s->n;
    s->cls[0][s->n] = (int16_t)app;
    s->cls[1][s->n] = (int16_t)traffic;
    s->flow[s->n] = flow;
    s->file[s->n] = file;
    s->n++;
}

/* `count` packets of one flow. */
static void synth_flow(synth *s, int app, int traffic, uint64_t flow, uint32_t file, int count)
{
    for (int i = 0; i < count; i++)
        synth_add(s, app, traffic, flow, file);
}

static void synth_free(synth *s)
{
    for (int t = 0; t < DP_NTASKS; t++)
        free(s->cls[t]);
    free(s->flow);
    free(s->file);
    free(s->time);
    memset(s, 0, sizeof *s);
}

static char *join(const char *a, const char *b)
{
    return dp_path_join(a, b);
}

/* A fresh sub directory of the test tmpdir. */
static char *subdir(const char *name)
{
    char *p = join(dp_test_tmpdir(), name);
    char err[DP_ERRBUF_SIZE];
    if (dp_mkdirs(p, err) != 0)
        fprintf(stderr, "%s\n", err);
    return p;
}

static void put_file(const char *dir, const char *name, const char *text)
{
    char *p = join(dir, name);
    char err[DP_ERRBUF_SIZE];
    if (dp_write_file_atomic(p, text, strlen(text), err) != 0)
        fprintf(stderr, "%s\n", err);
    free(p);
}

/* Vector i carries i in its first 4 bytes (LE), then a pattern of i. */
static void fill_vector(uint8_t *v, uint64_t i)
{
    for (int j = 0; j < 4; j++)
        v[j] = (uint8_t)(i >> (8 * j));
    for (int j = 4; j < DP_VEC_LEN; j++)
        v[j] = (uint8_t)(i * 31 + (uint64_t)j);
}

/* Writes a whole dataset (with summary.json when summary is set). Here
 * meta.index is the dataset row (in real datasets it is the frame index in
 * its capture), which lets the checks map output rows back to inputs. */
static void write_dataset(const char *dir, const synth *s, int summary)
{
    char err[DP_ERRBUF_SIZE];
    uint8_t *vec = malloc((s->n ? s->n : 1) * DP_VEC_LEN);
    dp_meta *meta = calloc(s->n ? s->n : 1, sizeof(dp_meta));
    for (uint64_t i = 0; i < s->n; i++) {
        fill_vector(vec + i * DP_VEC_LEN, i);
        meta[i].file = s->file[i];
        meta[i].index = i;
        meta[i].time = s->time[i];
        meta[i].flow = s->flow[i];
        meta[i].ipver = 4;
        meta[i].proto = 6;
        meta[i].sport = 443;
        meta[i].dport = (uint16_t)(1024 + s->flow[i]);
    }
    char *p = join(dir, "vectors.npy");
    CHECK(dp_npy_save(p, DP_NPY_U1, 1, DP_VEC_LEN, vec, s->n, err) == 0);
    free(p);
    p = join(dir, "app.npy");
    CHECK(dp_npy_save(p, DP_NPY_I2, 2, 0, s->cls[0], s->n, err) == 0);
    free(p);
    p = join(dir, "traffic.npy");
    CHECK(dp_npy_save(p, DP_NPY_I2, 2, 0, s->cls[1], s->n, err) == 0);
    free(p);
    p = join(dir, "meta.npy");
    CHECK(dp_npy_save(p, DP_META_DESCR, sizeof(dp_meta), 0, meta, s->n, err) == 0);
    free(p);
    put_file(dir, "labels.tsv", LABELS_TSV);
    put_file(dir, "files.tsv", "index\tpath\n");
    if (summary)
        put_file(dir, "summary.json", "{}\n");
    free(vec);
    free(meta);
}

/* The standard small dataset: app classes 0..2 used (3 unused), several
 * flows and files per class; traffic labels on part of the packets. */
static void standard(synth *s)
{
    memset(s, 0, sizeof *s);
    uint64_t flow = 1;
    /* class 0: 12 flows over 4 files, 30 packets each */
    for (int f = 0; f < 12; f++)
        synth_flow(s, 0, 0, flow++, (uint32_t)(f % 4), 30);
    /* class 1: 5 flows over 2 files, 8..16 packets */
    for (int f = 0; f < 5; f++)
        synth_flow(s, 1, 0, flow++, (uint32_t)(10 + f % 2), 8 + 2 * f);
    /* unlabelled for app, traffic 1 */
    for (int f = 0; f < 4; f++)
        synth_flow(s, -1, 1, flow++, 20, 10);
    /* class 2: 20 flows over 5 files, 12 packets; interleave with class 0 */
    for (int f = 0; f < 20; f++) {
        synth_flow(s, 2, 1, flow++, (uint32_t)(30 + f % 5), 6);
        synth_flow(s, 0, -1, flow++, 3, 2);
        synth_flow(s, 2, 1, flow - 2, (uint32_t)(30 + f % 5), 6);
    }
    /* no label at all */
    synth_flow(s, -1, -1, flow++, 40, 7);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* 1 when the two files exist and are byte-identical. */
static int same_file(const char *a, const char *b)
{
    size_t la, lb;
    char err[DP_ERRBUF_SIZE];
    char *x = dp_read_file(a, &la, err), *y = dp_read_file(b, &lb, err);
    int same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

static const char *PARTS[] = {"train/vectors.npy", "train/labels.npy", "train/meta.npy",
                              "train/classes.tsv", "test/vectors.npy", "test/labels.npy",
                              "test/meta.npy",     "test/classes.tsv", "data_card.json",
                              "data_card.md"};
#define NPARTS (sizeof PARTS / sizeof PARTS[0])

static int same_task(const char *d1, const char *d2, int task)
{
    int same = 1;
    for (size_t k = 0; k < NPARTS; k++) {
        char p1[1024], p2[1024];
        snprintf(p1, sizeof p1, "%s/%s/%s", d1, dp_task_dir[task], PARTS[k]);
        snprintf(p2, sizeof p2, "%s/%s/%s", d2, dp_task_dir[task], PARTS[k]);
        if (!same_file(p1, p2))
            same = 0;
    }
    return same;
}

static int run_split(const char *ds, const char *out, const dp_split_opts *o, char *err)
{
    int rc = dp_split_run(ds, out, o, err);
    if (rc != 0)
        fprintf(stderr, "  split: %s\n", err);
    return rc;
}

/* The outputs of one side, read back through dp_splitset_open, as per-class
 * packet counts, and the set of flows / files seen (as flags). */
typedef struct side_info {
    int ok;
    uint64_t n;
    uint64_t per_class[DP_MAX_CLASSES];
    uint8_t flows[4096];   /* flow id -> seen */
    uint8_t files[64];
    uint64_t flows_per_class[DP_MAX_CLASSES];
    int nclasses;
    int rows_ok;           /* vectors, labels, meta agree with the input */
} side_info;

static void read_side(side_info *si, const char *split, int task, const char *side,
                      const synth *in)
{
    memset(si, 0, sizeof *si);
    char dir[1024], err[DP_ERRBUF_SIZE];
    snprintf(dir, sizeof dir, "%s/%s/%s", split, dp_task_dir[task], side);
    dp_splitset s;
    if (dp_splitset_open(&s, dir, err) != 0) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    si->ok = 1;
    si->n = s.n;
    si->nclasses = s.nclasses;
    si->rows_ok = s.has_meta;
    uint64_t prev = 0;
    for (uint64_t i = 0; i < s.n; i++) {
        int c = dp_splitset_label(&s, i);
        dp_meta m = dp_splitset_meta(&s, i);
        uint8_t want[DP_VEC_LEN];
        if (m.index >= in->n || (i && m.index <= prev)) { /* dataset order */
            si->rows_ok = 0;
            continue;
        }
        prev = m.index;
        fill_vector(want, m.index);
        if (memcmp(want, dp_splitset_vector(&s, i), DP_VEC_LEN) || in->cls[task][m.index] != c ||
            in->flow[m.index] != m.flow || in->file[m.index] != m.file)
            si->rows_ok = 0;
        si->per_class[c]++;
        if (m.flow < sizeof si->flows) {
            if (!si->flows[m.flow])
                si->flows_per_class[c]++;
            si->flows[m.flow] = 1;
        }
        if (m.file < sizeof si->files)
            si->files[m.file] = 1;
    }
    dp_splitset_close(&s);
}

/* ---- the readers ------------------------------------------------------------ */

static void write_splitset(const char *dir, uint64_t n, const int16_t *labels, uint64_t nlabels,
                           const char *classes)
{
    char err[DP_ERRBUF_SIZE];
    uint8_t *vec = calloc(n ? n : 1, DP_VEC_LEN);
    char *p = join(dir, "vectors.npy");
    CHECK(dp_npy_save(p, DP_NPY_U1, 1, DP_VEC_LEN, vec, n, err) == 0);
    free(p);
    p = join(dir, "labels.npy");
    CHECK(dp_npy_save(p, DP_NPY_I2, 2, 0, labels, nlabels, err) == 0);
    free(p);
    put_file(dir, "classes.tsv", classes);
    free(vec);
}

static void test_splitset_open(void)
{
    char err[DP_ERRBUF_SIZE];
    dp_splitset s;
    int16_t lab[4] = {0, 1, 2, 1};

    char *d = subdir("ss_ok");
    write_splitset(d, 4, lab, 4, "0\tA\n1\tB\n2\tC\n");
    CHECK(dp_splitset_open(&s, d, err) == 0);
    CHECK_EQ_INT(s.n, 4);
    CHECK_EQ_INT(s.nclasses, 3);
    CHECK_EQ_INT(s.has_meta, 0);
    CHECK(s.names[2] && !strcmp(s.names[2], "C"));
    CHECK_EQ_INT(dp_splitset_label(&s, 3), 1);
    dp_splitset_close(&s);
    free(d);

    d = subdir("ss_range");
    write_splitset(d, 4, lab, 4, "0\tA\n1\tB\n");
    CHECK(dp_splitset_open(&s, d, err) == -1);
    CHECK_STR_CONTAINS(err, "labels.npy");
    CHECK_STR_CONTAINS(err, "row 2 has class 2");
    free(d);

    int16_t neg[2] = {0, -1};
    d = subdir("ss_neg");
    write_splitset(d, 2, neg, 2, "0\tA\n1\tB\n");
    CHECK(dp_splitset_open(&s, d, err) == -1);
    CHECK_STR_CONTAINS(err, "class -1");
    free(d);

    d = subdir("ss_shape");
    write_splitset(d, 4, lab, 3, "0\tA\n1\tB\n2\tC\n");
    CHECK(dp_splitset_open(&s, d, err) == -1);
    CHECK_STR_CONTAINS(err, "labels.npy: 3 rows, but vectors.npy has 4");
    /* a meta.npy of the wrong length */
    dp_meta m[5];
    memset(m, 0, sizeof m);
    char *p = join(d, "labels.npy");
    CHECK(dp_npy_save(p, DP_NPY_I2, 2, 0, lab, 4, err) == 0);
    free(p);
    p = join(d, "meta.npy");
    CHECK(dp_npy_save(p, DP_META_DESCR, sizeof(dp_meta), 0, m, 5, err) == 0);
    free(p);
    CHECK(dp_splitset_open(&s, d, err) == -1);
    CHECK_STR_CONTAINS(err, "meta.npy: 5 rows");
    free(d);

    d = subdir("ss_dtype");
    write_splitset(d, 4, lab, 4, "0\tA\n1\tB\n2\tC\n");
    int32_t wide[4] = {0, 1, 2, 1};
    p = join(d, "labels.npy");
    CHECK(dp_npy_save(p, DP_NPY_I4, 4, 0, wide, 4, err) == 0);
    free(p);
    CHECK(dp_splitset_open(&s, d, err) == -1);
    CHECK_STR_CONTAINS(err, "labels.npy: dtype");
    free(d);

    d = subdir("ss_classes");
    write_splitset(d, 4, lab, 4, "0\tA\n2\tC\n");
    CHECK(dp_splitset_open(&s, d, err) == -1);
    CHECK_STR_CONTAINS(err, "classes.tsv:2");
    free(d);

    CHECK(dp_splitset_open(&s, "/nonexistent/split/dir", err) == -1);
    CHECK_STR_CONTAINS(err, "/nonexistent/split/dir");
}

static void test_dataset_open(void)
{
    char err[DP_ERRBUF_SIZE];
    synth s;
    standard(&s);
    char *d = subdir("ds_open");
    write_dataset(d, &s, 1);
    dp_dataset ds;
    CHECK(dp_dataset_open(&ds, d, err) == 0);
    CHECK_EQ_INT(ds.n, s.n);
    CHECK_EQ_INT(ds.labels.nclasses[DP_TASK_APP], 4);
    CHECK_EQ_INT(ds.labels.nclasses[DP_TASK_TRAFFIC], 2);
    CHECK_EQ_INT(dp_dataset_label(&ds, DP_TASK_APP, 0), 0);
    CHECK_EQ_INT(dp_dataset_meta(&ds, 5).flow, s.flow[5]);
    CHECK_EQ_INT(dp_dataset_vector(&ds, 300)[0], 300 & 0xff);
    dp_dataset_close(&ds);

    /* meta.npy as numpy.save spells the dtype ('|u1') */
    const char *numpy_descr =
        "[('file', '<u4'), ('index', '<u8'), ('time', '<f8'), ('flow', '<u8'), "
        "('ipver', '|u1'), ('proto', '|u1'), ('sport', '<u2'), ('dport', '<u2'), "
        "('saddr', '|u1', (16,)), ('daddr', '|u1', (16,))]";
    dp_meta *m = calloc(s.n, sizeof *m);
    char *mp = join(d, "meta.npy");
    CHECK(dp_npy_save(mp, numpy_descr, sizeof(dp_meta), 0, m, s.n, err) == 0);
    CHECK(dp_dataset_open(&ds, d, err) == 0);
    dp_dataset_close(&ds);
    /* but not another layout */
    CHECK(dp_npy_save(mp, "[('file', '<u4'), ('index', '<u8')]", sizeof(dp_meta), 0, m, s.n, err) == 0);
    CHECK(dp_dataset_open(&ds, d, err) == -1);
    CHECK_STR_CONTAINS(err, "meta.npy: dtype is");
    free(mp);
    free(m);

    /* a class id beyond labels.tsv */
    s.cls[DP_TASK_TRAFFIC][7] = 5;
    char *bad = subdir("ds_badclass");
    write_dataset(bad, &s, 1);
    CHECK(dp_dataset_open(&ds, bad, err) == -1);
    CHECK_STR_CONTAINS(err, "traffic.npy: row 7 has class 5");
    free(bad);
    synth_free(&s);
    free(d);
}

/* ---- the split ------------------------------------------------------------------ */

static void test_errors(void)
{
    char err[DP_ERRBUF_SIZE];
    dp_split_opts o;
    dp_split_opts_default(&o);
    synth s;
    standard(&s);
    char *out = subdir("err_out");

    CHECK(dp_split_run("/nonexistent/dataset", out, &o, err) == -1);
    CHECK_STR_CONTAINS(err, "/nonexistent/dataset");

    char *inc = subdir("err_incomplete");
    write_dataset(inc, &s, 0);
    CHECK(dp_split_run(inc, out, &o, err) == -1);
    CHECK_STR_CONTAINS(err, "incomplete dataset (no summary.json); rerun the preprocess or merge that made it");

    char *cor = subdir("err_corrupt");
    write_dataset(cor, &s, 1);
    put_file(cor, "vectors.npy", "this is not a numpy file at all");
    CHECK(dp_split_run(cor, out, &o, err) == -1);
    CHECK_STR_CONTAINS(err, "vectors.npy");
    CHECK_STR_CONTAINS(err, "not a .npy file");

    /* truncated: the header says more rows than the file holds */
    char *tru = subdir("err_trunc");
    write_dataset(tru, &s, 1);
    char *mp = join(tru, "meta.npy");
    CHECK(truncate(mp, (off_t)(file_size(mp) - 10)) == 0);
    CHECK(dp_split_run(tru, out, &o, err) == -1);
    CHECK_STR_CONTAINS(err, "meta.npy: truncated");
    free(mp);

    /* row counts that disagree */
    char *mis = subdir("err_rows");
    write_dataset(mis, &s, 1);
    char *ap = join(mis, "app.npy");
    CHECK(dp_npy_save(ap, DP_NPY_I2, 2, 0, s.cls[0], s.n - 1, err) == 0);
    CHECK(dp_split_run(mis, out, &o, err) == -1);
    CHECK_STR_CONTAINS(err, "app.npy");
    free(ap);

    /* unwritable target: below a regular file */
    char *ok = subdir("err_ok");
    write_dataset(ok, &s, 1);
    put_file(dp_test_tmpdir(), "plainfile", "x");
    char *target = join(dp_test_tmpdir(), "plainfile/split");
    CHECK(dp_split_run(ok, target, &o, err) == -1);
    CHECK_STR_CONTAINS(err, "plainfile");

    /* bad option values through the library */
    o.test_size = 0;
    CHECK(dp_split_run(ok, out, &o, err) == -1);
    CHECK_STR_CONTAINS(err, "test size");
    dp_split_opts_default(&o);
    o.tasks = 0;
    CHECK(dp_split_run(ok, out, &o, err) == -1);

    free(target);
    free(ok);
    free(mis);
    free(tru);
    free(cor);
    free(inc);
    free(out);
    synth_free(&s);
}

static void test_determinism(void)
{
    char err[DP_ERRBUF_SIZE];
    synth s;
    standard(&s);
    char *d = subdir("det_ds");
    write_dataset(d, &s, 1);
    for (int by = 0; by < 4; by++) {
        dp_split_opts o;
        dp_split_opts_default(&o);
        o.by = (dp_split_by)by;
        char n1[64], n2[64], n3[64];
        snprintf(n1, sizeof n1, "det_a%d", by);
        snprintf(n2, sizeof n2, "det_b%d", by);
        snprintf(n3, sizeof n3, "det_c%d", by);
        char *o1 = subdir(n1), *o2 = subdir(n2), *o3 = subdir(n3);
        CHECK(run_split(d, o1, &o, err) == 0);
        CHECK(run_split(d, o2, &o, err) == 0);
        o.seed = 12345;
        CHECK(run_split(d, o3, &o, err) == 0);
        for (int t = 0; t < DP_NTASKS; t++) {
            CHECK(same_task(o1, o2, t));
            CHECK(!same_task(o1, o3, t));
        }
        /* the training labels differ (which packets are kept) with another seed */
        char p1[1024], p3[1024];
        snprintf(p1, sizeof p1, "%s/%s/train/meta.npy", o1, dp_task_dir[0]);
        snprintf(p3, sizeof p3, "%s/%s/train/meta.npy", o3, dp_task_dir[0]);
        CHECK(!same_file(p1, p3));
        free(o1);
        free(o2);
        free(o3);
    }
    free(d);
    synth_free(&s);
}

/* Checks one split of the standard dataset against its inputs and its card. */
static void check_split(const char *split, int task, const synth *s, const dp_split_opts *o,
                        const dp_split_card *card)
{
    side_info *tr = malloc(sizeof *tr), *te = malloc(sizeof *te);
    read_side(tr, split, task, "train", s);
    read_side(te, split, task, "test", s);
    CHECK(tr->ok && te->ok);
    CHECK(tr->rows_ok && te->rows_ok);
    int nc = task == DP_TASK_APP ? 4 : 2;
    CHECK_EQ_INT(tr->nclasses, nc);
    CHECK_EQ_INT(te->nclasses, nc);

    uint64_t labelled[DP_MAX_CLASSES] = {0};
    for (uint64_t i = 0; i < s->n; i++)
        if (s->cls[task][i] >= 0)
            labelled[s->cls[task][i]]++;
    uint64_t cap = 0;
    for (int c = 0; c < nc; c++) {
        uint64_t t = card->cls[c].train_packets;
        if (t && (!cap || t < cap))
            cap = t;
    }
    for (int c = 0; c < nc; c++) {
        const dp_split_class *k = &card->cls[c];
        CHECK_EQ_INT(k->packets, labelled[c]);
        CHECK_EQ_INT(k->train_packets + k->test_packets, labelled[c]);
        CHECK_EQ_INT(tr->per_class[c], k->kept_packets);
        CHECK_EQ_INT(te->per_class[c], k->test_packets);
        CHECK_EQ_INT(tr->flows_per_class[c], k->kept_flows);
        CHECK_EQ_INT(te->flows_per_class[c], k->test_flows);
        if (o->under_sample) {
            if (k->train_packets)
                CHECK_EQ_INT(k->kept_packets, cap);
        } else {
            CHECK_EQ_INT(k->kept_packets, k->train_packets);
        }
    }
    CHECK_EQ_INT(card->cap, o->under_sample ? cap : 0);
    /* flows on both sides */
    uint64_t shared = 0;
    for (size_t f = 0; f < sizeof tr->flows; f++)
        shared += tr->flows[f] && te->flows[f];
    CHECK_EQ_INT(shared, card->total.shared_flows_kept);
    if (o->by != DP_SPLIT_BY_PACKET) {
        CHECK_EQ_INT(card->total.shared_flows, 0);
        CHECK_EQ_INT(shared, 0);
    }
    if (o->by == DP_SPLIT_BY_FILE)
        for (size_t f = 0; f < sizeof tr->files; f++)
            CHECK(!(tr->files[f] && te->files[f]));
    free(tr);
    free(te);
}

static void test_split_modes(void)
{
    char err[DP_ERRBUF_SIZE];
    synth s;
    standard(&s);
    char *d = subdir("modes_ds");
    write_dataset(d, &s, 1);
    dp_dataset ds;
    CHECK(dp_dataset_open(&ds, d, err) == 0);
    for (int by = 0; by < 4; by++)
        for (int us = 0; us < 2; us++)
            for (int task = 0; task < DP_NTASKS; task++) {
                dp_split_opts o;
                dp_split_opts_default(&o);
                o.by = (dp_split_by)by;
                o.under_sample = us;
                char name[64];
                snprintf(name, sizeof name, "modes_%d_%d", by, us);
                char *out = subdir(name);
                char *td = join(out, dp_task_dir[task]);
                dp_split_card card;
                CHECK(dp_split_task(&ds, d, task, td, &o, &card, err) == 0);
                check_split(out, task, &s, &o, &card);
                if (task == DP_TASK_APP) {
                    /* class 3 has no packets: listed, all zero */
                    CHECK_EQ_INT(card.cls[3].packets, 0);
                    CHECK_EQ_INT(card.cls[3].kept_packets, 0);
                    CHECK_EQ_INT(card.unlabelled, 4 * 10 + 7);
                    /* every class with several groups is on both sides */
                    for (int c = 0; c < 3 && by != DP_SPLIT_BY_PACKET; c++) {
                        CHECK(card.cls[c].train_groups >= 1);
                        CHECK(card.cls[c].test_groups >= 1);
                    }
                    if (by == DP_SPLIT_BY_FILE) {
                        CHECK_EQ_INT(card.cls[0].groups, 4); /* file 3 holds both kinds */
                        CHECK_EQ_INT(card.cls[1].groups, 2);
                        CHECK_EQ_INT(card.cls[2].groups, 5);
                    }
                    if (by == DP_SPLIT_BY_FLOW)
                        CHECK_EQ_INT(card.cls[2].groups, 20);
                }
                char *cj = join(td, "data_card.json"), *cm = join(td, "data_card.md");
                char *js = dp_read_file(cj, NULL, err), *md = dp_read_file(cm, NULL, err);
                CHECK_STR_CONTAINS(js, dp_split_by_name[by]);
                CHECK_STR_CONTAINS(js, us ? "\"under_sampling\": true" : "\"under_sampling\": false");
                CHECK_STR_CONTAINS(md, task == DP_TASK_APP ? "Three (unused)" : "Voip");
                if (task == DP_TASK_APP)
                    CHECK_STR_CONTAINS(md, "class 3 (Three (unused)): no labelled packets");
                free(js);
                free(md);
                free(cj);
                free(cm);
                free(td);
                free(out);
            }
    dp_dataset_close(&ds);
    free(d);
    synth_free(&s);
}

/* Exact numbers where the group rule leaves no choice. */
static void test_card_exact(void)
{
    char err[DP_ERRBUF_SIZE];
    synth s;
    memset(&s, 0, sizeof s);
    /* class 0: 2 flows of 10: neither reaches T = 4 alone -> the first in
     * shuffled order goes to test by the "both sides" rule */
    synth_flow(&s, 0, 0, 1, 0, 10);
    synth_flow(&s, 0, 0, 2, 0, 10);
    /* class 1: one flow of 5: wholly train */
    synth_flow(&s, 1, 0, 3, 1, 5);
    /* class 2: 5 flows of 4 (T = 4): exactly one goes to test */
    for (int f = 0; f < 5; f++)
        synth_flow(&s, 2, 1, 10 + (uint64_t)f, 2, 4);
    char *d = subdir("exact_ds");
    write_dataset(d, &s, 1);
    dp_dataset ds;
    CHECK(dp_dataset_open(&ds, d, err) == 0);
    dp_split_opts o;
    dp_split_opts_default(&o);
    char *out = subdir("exact_out");
    char *td = join(out, dp_task_dir[0]);
    dp_split_card c;
    CHECK(dp_split_task(&ds, d, DP_TASK_APP, td, &o, &c, err) == 0);
    CHECK_EQ_INT(c.cls[0].train_packets, 10);
    CHECK_EQ_INT(c.cls[0].test_packets, 10);
    CHECK_EQ_INT(c.cls[0].train_flows, 1);
    CHECK_EQ_INT(c.cls[0].test_flows, 1);
    CHECK_EQ_INT(c.cls[1].train_packets, 5);
    CHECK_EQ_INT(c.cls[1].test_packets, 0);
    CHECK_EQ_INT(c.cls[1].flows, 1);
    CHECK_EQ_INT(c.cls[2].train_packets, 16);
    CHECK_EQ_INT(c.cls[2].train_flows, 4);
    CHECK_EQ_INT(c.cls[2].test_packets, 4);
    CHECK_EQ_INT(c.cls[2].test_flows, 1);
    CHECK_EQ_INT(c.cap, 5);
    for (int k = 0; k < 3; k++)
        CHECK_EQ_INT(c.cls[k].kept_packets, 5);
    CHECK_EQ_INT(c.cls[1].kept_flows, 1);
    CHECK(c.cls[2].kept_flows >= 2 && c.cls[2].kept_flows <= 4);
    CHECK_EQ_INT(c.total.packets, 45);
    CHECK_EQ_INT(c.total.kept_packets, 15);
    CHECK_EQ_INT(c.total.test_packets, 14);
    CHECK_EQ_INT(c.total.shared_flows, 0);
    check_split(out, DP_TASK_APP, &s, &o, &c);
    char *cj = join(td, "data_card.json");
    char *js = dp_read_file(cj, NULL, err);
    CHECK_STR_CONTAINS(js, "\"id\": 2, \"name\": \"Two\", \"packets\": 20, \"flows\": 5, "
                           "\"train_packets\": 16, \"train_flows\": 4, \"train_kept_packets\": 5");
    CHECK_STR_CONTAINS(js, "\"under_sampling_cap\": 5");
    free(js);
    free(cj);

    /* test_size above 0.5: a one-flow class goes wholly to test; the
     * two-flow class still has one flow per side */
    o.test_size = 0.8;
    CHECK(dp_split_task(&ds, d, DP_TASK_APP, td, &o, &c, err) == 0);
    CHECK_EQ_INT(c.cls[1].test_packets, 5);
    CHECK_EQ_INT(c.cls[1].train_packets, 0);
    CHECK_EQ_INT(c.cls[0].train_packets, 10);
    CHECK_EQ_INT(c.cls[2].test_packets, 16);
    CHECK_EQ_INT(c.cap, 4); /* class 1 has no training packets: not the minimum */
    CHECK_EQ_INT(c.cls[1].kept_packets, 0);
    check_split(out, DP_TASK_APP, &s, &o, &c);

    free(td);
    free(out);
    dp_dataset_close(&ds);
    free(d);
    synth_free(&s);
}

static void test_packet_fraction(void)
{
    char err[DP_ERRBUF_SIZE];
    synth s;
    memset(&s, 0, sizeof s);
    /* class 0: 12000 packets in 100 flows; class 1: 3000 packets */
    for (int f = 0; f < 100; f++)
        synth_flow(&s, 0, 0, (uint64_t)f, 0, 120);
    for (int f = 0; f < 30; f++)
        synth_flow(&s, 1, 1, 1000 + (uint64_t)f, 1, 100);
    char *d = subdir("frac_ds");
    write_dataset(d, &s, 1);
    dp_dataset ds;
    CHECK(dp_dataset_open(&ds, d, err) == 0);
    for (int by = 0; by < 4; by++) {
        dp_split_opts o;
        dp_split_opts_default(&o);
        o.by = (dp_split_by)by;
        o.test_size = 0.3;
        char name[32];
        snprintf(name, sizeof name, "frac_out%d", by);
        char *out = subdir(name);
        char *td = join(out, dp_task_dir[0]);
        dp_split_card c;
        CHECK(dp_split_task(&ds, d, DP_TASK_APP, td, &o, &c, err) == 0);
        double f0 = (double)c.cls[0].test_packets / 12000, f1 = (double)c.cls[1].test_packets / 3000;
        if (by == DP_SPLIT_BY_PACKET) {
            CHECK_NEAR(f0, 0.3, 0.02);   /* sd 0.0042 */
            CHECK_NEAR(f1, 0.3, 0.04);   /* sd 0.0084 */
            CHECK(c.cls[0].shared_flows > 90); /* 120-packet flows: all on both sides */
        } else if (by == DP_SPLIT_BY_FLOW || by == DP_SPLIT_BY_TIME) {
            /* equal groups: the greedy rule hits the target to within one group */
            CHECK_NEAR(f0, 0.3, 120.0 / 12000 / 2 + 1e-9);
            CHECK_NEAR(f1, 0.3, 100.0 / 3000 / 2 + 1e-9);
            CHECK_EQ_INT(c.cls[0].shared_flows, 0);
        } else {
            /* one file per class: wholly train (s <= 0.5) */
            CHECK_EQ_INT(c.cls[0].test_packets, 0);
            CHECK_EQ_INT(c.cls[0].train_packets, 12000);
        }
        CHECK_EQ_INT(c.cls[0].kept_packets, c.cap);
        CHECK_EQ_INT(c.cls[1].kept_packets, c.cap);
        check_split(out, DP_TASK_APP, &s, &o, &c);
        free(td);
        free(out);
    }
    dp_dataset_close(&ds);
    free(d);
    synth_free(&s);
}

/* Start (earliest time) of every flow on one side of a split, per class:
 * fills max_train[c] / min_test[c] style bounds into lo/hi. */
typedef struct time_side {
    double start[4096];  /* flow id -> earliest time on this side (0: absent) */
    int cls[4096];
} time_side;

static int read_time_side(time_side *ts, const char *split, int task, const char *side)
{
    memset(ts, 0, sizeof *ts);
    char dir[1024], err[DP_ERRBUF_SIZE];
    snprintf(dir, sizeof dir, "%s/%s/%s", split, dp_task_dir[task], side);
    dp_splitset s;
    if (dp_splitset_open(&s, dir, err) != 0) {
        fprintf(stderr, "  %s\n", err);
        return -1;
    }
    for (uint64_t i = 0; i < s.n; i++) {
        dp_meta m = dp_splitset_meta(&s, i);
        if (m.flow >= 4096)
            continue;
        if (ts->start[m.flow] == 0 || m.time < ts->start[m.flow])
            ts->start[m.flow] = m.time;
        ts->cls[m.flow] = dp_splitset_label(&s, i);
    }
    dp_splitset_close(&s);
    return 0;
}

/* --by time: flows whose start times run against the row order, a tie, and
 * a class of two flows; every test flow starts no earlier than every
 * training flow of its class, no flow is on both sides, the card holds the
 * boundary, and a rerun gives the same bytes. */
static void test_time_split(void)
{
    char err[DP_ERRBUF_SIZE];
    synth s;
    memset(&s, 0, sizeof s);
    /* class 0: 10 flows of 5 packets, later rows start earlier */
    for (int f = 0; f < 10; f++) {
        synth_flow(&s, 0, 0, 1 + (uint64_t)f, 0, 5);
        for (int j = 0; j < 5; j++)
            s.time[s.n - 5 + (uint64_t)j] = 5000.0 - 100.0 * f + j;
    }
    /* class 1: 6 flows, starts in a scrambled order, flows 21 and 22 tied */
    static const double start1[6] = {3000, 1000, 4000, 4000, 2000, 500};
    for (int f = 0; f < 6; f++) {
        synth_flow(&s, 1, 1, 20 + (uint64_t)f, 1, 4);
        for (int j = 0; j < 4; j++)
            s.time[s.n - 4 + (uint64_t)j] = start1[f] + 0.5 * j;
    }
    /* class 2: two flows, the later one is big: it still goes to test */
    synth_flow(&s, 2, 1, 40, 2, 3);
    synth_flow(&s, 2, 1, 41, 2, 30);
    char *d = subdir("time_ds");
    write_dataset(d, &s, 1);
    dp_split_opts o;
    dp_split_opts_default(&o);
    o.by = DP_SPLIT_BY_TIME;
    o.under_sample = 0;
    o.tasks = 1 << DP_TASK_APP;
    char *out = subdir("time_out"), *out2 = subdir("time_out2");
    CHECK(run_split(d, out, &o, err) == 0);
    CHECK(run_split(d, out2, &o, err) == 0);
    CHECK(same_task(out, out2, DP_TASK_APP));
    time_side *tr = malloc(sizeof *tr), *te = malloc(sizeof *te);
    CHECK(read_time_side(tr, out, DP_TASK_APP, "train") == 0);
    CHECK(read_time_side(te, out, DP_TASK_APP, "test") == 0);
    double last_train[3] = {0, 0, 0}, first_test[3] = {1e18, 1e18, 1e18};
    int ntest[3] = {0, 0, 0}, ntrain[3] = {0, 0, 0};
    for (int f = 0; f < 4096; f++) {
        CHECK(!(tr->start[f] && te->start[f])); /* no flow on both sides */
        if (tr->start[f]) {
            ntrain[tr->cls[f]]++;
            if (tr->start[f] > last_train[tr->cls[f]])
                last_train[tr->cls[f]] = tr->start[f];
        }
        if (te->start[f]) {
            ntest[te->cls[f]]++;
            if (te->start[f] < first_test[te->cls[f]])
                first_test[te->cls[f]] = te->start[f];
        }
    }
    for (int c = 0; c < 3; c++) {
        CHECK(ntrain[c] >= 1 && ntest[c] >= 1);
        CHECK(last_train[c] <= first_test[c]);
    }
    /* class 0: 50 packets, T = 10: the two latest-starting flows (rows 0, 1) */
    CHECK_EQ_INT(ntest[0], 2);
    CHECK(te->start[1] == 5000 && te->start[2] == 4900);
    /* class 1: 24 packets, T = 4.8: one flow; of the tied 22 and 23 the later row */
    CHECK_EQ_INT(ntest[1], 1);
    CHECK(te->start[23] == 4000 && tr->start[22] == 4000);
    /* class 2: the big later flow */
    CHECK(te->start[41] != 0 && tr->start[40] != 0);
    char *cj = join(out, "application_classification/data_card.json");
    char *cm = join(out, "application_classification/data_card.md");
    char *js = dp_read_file(cj, NULL, err), *md = dp_read_file(cm, NULL, err);
    CHECK_STR_CONTAINS(js, "\"by\": \"time\"");
    CHECK_STR_CONTAINS(js, "\"train_last_start\": 4800.000000, \"test_first_start\": 4900.000000");
    CHECK_STR_CONTAINS(js, "\"train_last_start\": null, \"test_first_start\": null"); /* class 3 */
    CHECK_STR_CONTAINS(md, "| train until | test from |");
    CHECK_STR_CONTAINS(md, "| 4000.000000 | 4000.000000 |");
    free(js);
    free(md);
    free(cj);
    free(cm);
    free(tr);
    free(te);
    free(out);
    free(out2);
    free(d);
    synth_free(&s);
}

/* --by time --time-scope capture: class 0 has two captures whose clocks
 * overlap (capture 1 starts after capture 0 ends); per class, capture 1
 * would be the whole test side; per capture, each capture's latest flows go
 * to test and its earliest to train. */
static void test_time_split_per_capture(void)
{
    char err[DP_ERRBUF_SIZE];
    synth s;
    memset(&s, 0, sizeof s);
    for (int file = 0; file < 2; file++)
        for (int f = 0; f < 5; f++) {
            synth_flow(&s, 0, 0, 1 + (uint64_t)(10 * file + f), (uint32_t)file, 4);
            for (int j = 0; j < 4; j++)
                s.time[s.n - 4 + (uint64_t)j] = 1000.0 * (file + 1) + 10.0 * f + j;
        }
    char *d = subdir("tcap_ds");
    write_dataset(d, &s, 1);
    dp_split_opts o;
    dp_split_opts_default(&o);
    o.by = DP_SPLIT_BY_TIME;
    o.under_sample = 0;
    o.tasks = 1 << DP_TASK_APP;
    char *cls = subdir("tcap_cls"), *cap = subdir("tcap_cap"), *cap2 = subdir("tcap_cap2");
    CHECK(run_split(d, cls, &o, err) == 0);
    o.time_per_capture = 1;
    CHECK(run_split(d, cap, &o, err) == 0);
    CHECK(run_split(d, cap2, &o, err) == 0);
    CHECK(same_task(cap, cap2, DP_TASK_APP));
    time_side *tr = malloc(sizeof *tr), *te = malloc(sizeof *te);
    /* per class: 40 packets, T = 8: the two latest flows, both of capture 1 */
    CHECK(read_time_side(te, cls, DP_TASK_APP, "test") == 0);
    CHECK(te->start[15] != 0 && te->start[14] != 0 && te->start[5] == 0);
    /* per capture: 20 packets each, T = 4: the latest flow of each capture */
    CHECK(read_time_side(tr, cap, DP_TASK_APP, "train") == 0);
    CHECK(read_time_side(te, cap, DP_TASK_APP, "test") == 0);
    int ntest = 0;
    for (int f = 0; f < 4096; f++) {
        CHECK(!(tr->start[f] && te->start[f]));
        ntest += te->start[f] != 0;
    }
    CHECK_EQ_INT(ntest, 2);
    CHECK(te->start[5] != 0 && te->start[15] != 0);
    CHECK(tr->start[1] != 0 && tr->start[4] != 0 && tr->start[11] != 0 && tr->start[14] != 0);
    char *cj = join(cap, "application_classification/data_card.json");
    char *js = dp_read_file(cj, NULL, err);
    CHECK_STR_CONTAINS(js, "\"time_scope\": \"capture\"");
    free(js);
    free(cj);
    free(tr);
    free(te);
    free(cls);
    free(cap);
    free(cap2);
    free(d);
    synth_free(&s);
}

/* --by time refuses a dataset without capture times instead of falling
 * back to the row order. */
static void test_time_split_untimed(void)
{
    char err[DP_ERRBUF_SIZE];
    synth s;
    standard(&s);
    for (uint64_t i = 0; i < s.n; i++)
        s.time[i] = 0;
    char *d = subdir("untimed_ds"), *out = subdir("untimed_out");
    write_dataset(d, &s, 1);
    dp_split_opts o;
    dp_split_opts_default(&o);
    o.by = DP_SPLIT_BY_TIME;
    CHECK(dp_split_run(d, out, &o, err) == -1);
    CHECK_STR_CONTAINS(err, "untimed_ds/meta.npy: every packet labelled for the app task has time 0");
    CHECK_STR_CONTAINS(err, "--by time");
    o.by = DP_SPLIT_BY_FLOW;
    CHECK(dp_split_run(d, out, &o, err) == 0);
    free(d);
    free(out);
    synth_free(&s);
}

/* dataset folder d (written from s) opened for task: only its labelled rows,
 * in order, read through the row index; a batch across a gap is gathered. */
static void check_dataset_as_set(const synth *s, const char *d, int task)
{
    char err[DP_ERRBUF_SIZE];
    dp_splitset ss;
    CHECK(dp_splitset_open_task(&ss, d, task, err) == 0);
    CHECK_EQ_INT(ss.kind, DP_SET_DATASET);
    CHECK_EQ_INT(ss.task, task);
    CHECK(ss.has_meta);
    CHECK_EQ_INT(ss.nclasses, task == DP_TASK_APP ? 4 : 2);
    CHECK(!strcmp(ss.names[task == DP_TASK_APP ? 3 : 1], task == DP_TASK_APP ? "Three (unused)" : "Voip"));
    uint64_t want = 0, bad = 0;
    for (uint64_t i = 0; i < s->n; i++)
        if (s->cls[task][i] >= 0) {
            uint8_t v[DP_VEC_LEN];
            fill_vector(v, i);
            dp_meta m = dp_splitset_meta(&ss, want);
            bad += m.index != i || dp_splitset_label(&ss, want) != s->cls[task][i] ||
                   memcmp(v, dp_splitset_vector(&ss, want), DP_VEC_LEN) != 0;
            want++;
        }
    CHECK_EQ_INT(ss.n, want);
    CHECK_EQ_INT(bad, 0);
    uint8_t *buf = malloc(64 * DP_VEC_LEN);
    uint64_t gap = 10;
    while (gap + 1 < ss.n && ss.rows[gap + 1] == ss.rows[gap] + 1)
        gap++;
    CHECK(gap + 54 < ss.n);
    const uint8_t *b = dp_splitset_vectors(&ss, gap - 10, 64, buf);
    CHECK(b == buf);
    for (int r = 0; r < 64; r++)
        CHECK(!memcmp(b + (size_t)r * DP_VEC_LEN, dp_splitset_vector(&ss, gap - 10 + (uint64_t)r), DP_VEC_LEN));
    CHECK(dp_splitset_vectors(&ss, 0, 16, buf) == dp_splitset_vector(&ss, 0)); /* consecutive: no copy */
    free(buf);
    dp_splitset_close(&ss);
}

/* Classes matched by name: a model with the app classes in another order
 * and one more; a class with rows that the model lacks is refused, one
 * without rows ("Three (unused)") may be absent. */
static void check_class_matching(const synth *s, const char *d)
{
    char err[DP_ERRBUF_SIZE];
    dp_splitset ss;
    CHECK(dp_splitset_open_task(&ss, d, DP_TASK_APP, err) == 0);
    const char *model[5] = {"Two", "Extra", "Zero", "One", "Three (unused)"};
    CHECK(dp_splitset_match_classes(&ss, d, 5, model, "m.model", err) == 0);
    CHECK_EQ_INT(ss.nclasses, 5);
    CHECK(!strcmp(ss.names[1], "Extra"));
    uint64_t counts[DP_MAX_CLASSES], in[4] = {0};
    dp_splitset_class_counts(&ss, counts);
    for (uint64_t i = 0; i < s->n; i++)
        if (s->cls[0][i] >= 0)
            in[s->cls[0][i]]++;
    CHECK_EQ_INT(counts[0], in[2]);
    CHECK_EQ_INT(counts[1], 0);
    CHECK_EQ_INT(counts[2], in[0]);
    CHECK_EQ_INT(counts[3], in[1]);
    dp_splitset_close(&ss);
    CHECK(dp_splitset_open_task(&ss, d, DP_TASK_APP, err) == 0);
    const char *model2[3] = {"Zero", "One", "Two"};
    CHECK(dp_splitset_match_classes(&ss, d, 3, model2, "m.model", err) == 0);
    dp_splitset_close(&ss);
    CHECK(dp_splitset_open_task(&ss, d, DP_TASK_APP, err) == 0);
    const char *model3[3] = {"Zero", "Two", "Three (unused)"};
    CHECK(dp_splitset_match_classes(&ss, d, 3, model3, "m.model", err) == -1);
    CHECK_STR_CONTAINS(err, "asset_ds and m.model: classes differ: dataset class 'One' is not one of the "
                            "model's (Zero, Two, Three (unused))");
    dp_splitset_close(&ss);
}

/* A split folder of d knows its task from its parent folder; a folder that
 * is neither kind is refused. */
static void check_split_folder_task(const char *d)
{
    char err[DP_ERRBUF_SIZE];
    dp_splitset ss;
    dp_split_opts o;
    dp_split_opts_default(&o);
    char *out = subdir("asset_split");
    CHECK(run_split(d, out, &o, err) == 0);
    char *tr = join(out, "traffic_classification/train");
    CHECK(dp_splitset_open_task(&ss, tr, DP_TASK_TRAFFIC, err) == 0);
    CHECK_EQ_INT(ss.kind, DP_SET_SPLIT);
    CHECK_EQ_INT(ss.task, DP_TASK_TRAFFIC);
    CHECK(ss.rows == NULL);
    dp_splitset_close(&ss);
    CHECK(dp_splitset_open_task(&ss, tr, DP_TASK_APP, err) == -1);
    CHECK_STR_CONTAINS(err, "traffic_classification/train: a split folder of the traffic task, not of the app task");
    CHECK(dp_splitset_open_task(&ss, out, DP_TASK_APP, err) == -1);
    CHECK_STR_CONTAINS(err, "neither a split folder");
    free(tr);
    free(out);
}

/* A dataset folder opened as a set: the task must be given; each task's
 * rows; class matching; split folders. */
static void test_open_dataset_as_set(void)
{
    char err[DP_ERRBUF_SIZE];
    synth s;
    standard(&s);
    char *d = subdir("asset_ds");
    write_dataset(d, &s, 1);
    dp_splitset ss;
    CHECK(dp_splitset_open_task(&ss, d, -1, err) == -1);
    CHECK_STR_CONTAINS(err, "asset_ds: a preprocessed dataset has a label column per task");
    for (int task = 0; task < DP_NTASKS; task++)
        check_dataset_as_set(&s, d, task);
    check_class_matching(&s, d);
    check_split_folder_task(d);
    free(d);
    synth_free(&s);
}

static void test_tasks(void)
{
    char err[DP_ERRBUF_SIZE];
    synth s;
    memset(&s, 0, sizeof s);
    /* traffic labels only (VPN-like captures) */
    synth_flow(&s, -1, 0, 1, 0, 10);
    synth_flow(&s, -1, 1, 2, 1, 10);
    synth_flow(&s, -1, 1, 3, 1, 10);
    synth_flow(&s, -1, 0, 4, 0, 10);
    char *d = subdir("tasks_ds");
    write_dataset(d, &s, 1);
    dp_split_opts o;
    dp_split_opts_default(&o);
    char *out = subdir("tasks_out");
    CHECK(run_split(d, out, &o, err) == 0);
    char *app = join(out, dp_task_dir[0]), *tr = join(out, "traffic_classification/train/labels.npy");
    struct stat st;
    CHECK(stat(app, &st) != 0); /* skipped */
    CHECK(stat(tr, &st) == 0);
    o.tasks = 1 << DP_TASK_APP;
    CHECK(dp_split_run(d, out, &o, err) == -1);
    CHECK_STR_CONTAINS(err, "no packet is labelled for the app task");
    free(app);
    free(tr);
    free(out);
    free(d);
    synth_free(&s);
}

/* The command line: exit codes 0 / 1 / 2 (needs the built binary). */
static void test_cli(void)
{
    /* the binary of the same build: <BUILD>/tests/test_split -> <BUILD>/deeppacket */
    char self[400] = {0}, bin[512];
    if (readlink("/proc/self/exe", self, sizeof self - 1) < 0)
        SKIP("cannot find this test binary");
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    snprintf(bin, sizeof bin, "%s/../deeppacket", self);
    if (access(bin, X_OK) != 0)
        SKIP("%s not built", bin);
    synth s;
    standard(&s);
    char *d = subdir("cli_ds");
    write_dataset(d, &s, 1);
    char *out = join(dp_test_tmpdir(), "cli_out");
    char cmd[4096];
    struct {
        const char *args;
        int code;
    } cases[] = {
        {"", 2},
        {"-s %s", 2},
        {"-s %s -t %s --test-size 1.5", 2},
        {"-s %s -t %s --test-size 0", 2},
        {"-s %s -t %s --by session", 2},
        {"-s %s -t %s --task web", 2},
        {"-s %s -t %s --seed -3", 2},
        {"-s %s -t %s --bogus", 2},
        {"-s %s/nope -t %s", 1},
        {"-s %s -t %s --by packet --test-size 0.25 --seed 7 --no-under-sampling --task app -q", 0},
        {"-s %s -t %s --by time -q", 0},
        {"-s %s -t %s", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char args[2048];
        snprintf(args, sizeof args, cases[k].args, d, out);
        snprintf(cmd, sizeof cmd, "%s split %s >/dev/null 2>&1", bin, args);
        int st = system(cmd);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (code != cases[k].code)
            fprintf(stderr, "  %s: exit %d, expected %d\n", cmd, code, cases[k].code);
        CHECK_EQ_INT(code, cases[k].code);
    }
    char *card = join(out, "traffic_classification/data_card.md");
    struct stat st;
    CHECK(stat(card, &st) == 0);
    free(card);
    free(out);
    free(d);
    synth_free(&s);
}

/* numpy reads the split back: rows equal the dataset rows they came from. */
static void test_numpy_reads_split(void)
{
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
        SKIP("no python3 with numpy");
    char err[DP_ERRBUF_SIZE];
    synth s;
    standard(&s);
    char *d = subdir("np_ds");
    write_dataset(d, &s, 1);
    char *out = subdir("np_out");
    dp_split_opts o;
    dp_split_opts_default(&o);
    CHECK(run_split(d, out, &o, err) == 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"\n"
             "import numpy as np, json, sys\n"
             "d, o = sys.argv[1], sys.argv[2]\n"
             "v = np.load(d + '/vectors.npy', mmap_mode='r')\n"
             "for t, task in (('app', 'application_classification'), ('traffic', 'traffic_classification')):\n"
             "    lab = np.load(d + '/' + t + '.npy')\n"
             "    seen = []\n"
             "    for side in ('train', 'test'):\n"
             "        p = o + '/' + task + '/' + side\n"
             "        x = np.load(p + '/vectors.npy', mmap_mode='r'); y = np.load(p + '/labels.npy')\n"
             "        m = np.load(p + '/meta.npy')\n"
             "        assert x.shape == (len(y), 1500) and y.dtype == np.int16 and len(m) == len(y)\n"
             "        assert (v[m['index']] == x).all() and (lab[m['index']] == y).all()\n"
             "        assert (np.diff(m['index'].astype(np.int64)) > 0).all()\n"
             "        seen.append(set(m['flow'].tolist()))\n"
             "    assert not (seen[0] & seen[1])\n"
             "    c = json.load(open(o + '/' + task + '/data_card.json'))\n"
             "    assert c['total']['shared_flows'] == 0 and c['options']['by'] == 'flow'\n"
             "\" %s %s",
             d, out);
    CHECK_EQ_INT(system(cmd), 0);
    free(out);
    free(d);
    synth_free(&s);
}

int main(void)
{
    dp_test_prog = "test_split";
    DP_RUN(test_splitset_open);
    DP_RUN(test_dataset_open);
    DP_RUN(test_errors);
    DP_RUN(test_determinism);
    DP_RUN(test_split_modes);
    DP_RUN(test_card_exact);
    DP_RUN(test_packet_fraction);
    DP_RUN(test_time_split);
    DP_RUN(test_time_split_untimed);
    DP_RUN(test_time_split_per_capture);
    DP_RUN(test_open_dataset_as_set);
    DP_RUN(test_tasks);
    DP_RUN(test_cli);
    DP_RUN(test_numpy_reads_split);
    return dp_test_end();
}
