/* Tests of dp_preprocess (deeppacket preprocess): the dataset against an
 * independent re-reading of the captures, -j1 vs -j2, reruns, interrupted
 * runs, damaged inputs, errors and exit codes, and a numpy load of the result.
 *
 * They run on the shared ISCX fixture (../shared/data/iscx-fixture) when it
 * is present, as in CI. On a fresh clone without it, every test that is not
 * about ISCX or nDPI specifically runs on a copy of a few captures of the
 * repository's own corpus (data/corpus, relative to the repository root, where
 * tests/run.sh runs), with the same assertions; only the ISCX golden-vector
 * test and the nDPI test skip. data/corpus itself is never modified. */
#include "dp_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/dp_capture.h"
#include "dataset/dp_dataset.h"
#include "dataset/dp_labels.h"
#include "dataset/dp_npy.h"
#include "dataset/dp_pp_summary.h"
#include "dataset/dp_pp_knobs.h"
#include "dataset/dp_preprocess.h"
#include "packet/dp_packet.h"
#include "util/dp_util.h"

static const char *OUTS[] = {"vectors.npy", "app.npy", "traffic.npy", "meta.npy",
                             "files.tsv", "labels.tsv", "summary.md", "summary.json"};

/* ---- helpers ------------------------------------------------------------------ */

typedef struct msgs {
    char text[65536];
    size_t len;
    int warnings, notes;
} msgs;

static void collect(void *ctx, const char *file, const char *msg, int is_note)
{
    msgs *m = ctx;
    if (is_note)
        m->notes++;
    else
        m->warnings++;
    int n = snprintf(m->text + m->len, sizeof m->text - m->len, "%s: %s: %s\n",
                     is_note ? "note" : "warning", file, msg);
    if (n > 0 && m->len + (size_t)n < sizeof m->text)
        m->len += (size_t)n;
}

static size_t g_chunk_bytes; /* knobs.chunk_bytes for run_pp (0: default) */

static int run_pp(const char *src, const char *dst, const char *labels, int threads,
                  size_t stop_after, msgs *m, dp_preprocess_stats *st, char *errbuf)
{
    dp_preprocess_opts o;
    dp_preprocess_opts_init(&o);
    o.src_dir = src;
    o.dst_dir = dst;
    o.labels_path = labels;
    o.threads = threads;
    o.progress = 0;
    dp_pp_knobs k = {.stop_after = stop_after, .chunk_bytes = g_chunk_bytes};
    o.warn = collect;
    o.warn_ctx = m;
    if (m)
        memset(m, 0, sizeof *m);
    else
        o.warn = NULL;
    return dp_preprocess_run_knobs(&o, &k, st, errbuf);
}

static char *tmp_path(const char *name)
{
    return dp_path_join(dp_test_tmpdir(), name);
}

static int copy_file(const char *from, const char *to, size_t limit)
{
    size_t n;
    char eb[DP_ERRBUF_SIZE];
    char *buf = dp_read_file(from, &n, eb);
    if (!buf)
        return -1;
    if (limit && limit < n)
        n = limit;
    FILE *f = fopen(to, "wb");
    int rc = f && fwrite(buf, 1, n, f) == n ? 0 : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    free(buf);
    return rc;
}

static int files_equal(const char *a, const char *b)
{
    size_t na, nb;
    char *x = dp_read_file(a, &na, NULL), *y = dp_read_file(b, &nb, NULL);
    int eq = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return eq;
}

static int dataset_equal(const char *d1, const char *d2)
{
    for (size_t i = 0; i < sizeof OUTS / sizeof OUTS[0]; i++) {
        char *a = dp_path_join(d1, OUTS[i]), *b = dp_path_join(d2, OUTS[i]);
        int eq = files_equal(a, b);
        if (!eq)
            fprintf(stderr, "  %s differs between %s and %s\n", OUTS[i], d1, d2);
        free(a);
        free(b);
        if (!eq)
            return 0;
    }
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .pcap files of a flat folder, sorted (the fixture's captures). */
static size_t list_pcaps(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    char **v = NULL;
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".pcap")) {
            v = realloc(v, (n + 1) * sizeof *v);
            v[n++] = strdup(e->d_name);
        }
    }
    if (d)
        closedir(d);
    qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Copies the fixture's captures (and only them) into a new folder. */
static char *copy_fixture(const char *fix, const char *name, size_t max_files)
{
    char *dir = tmp_path(name);
    mkdir(dir, 0777);
    char **v;
    size_t n = list_pcaps(fix, &v);
    for (size_t i = 0; i < n && (!max_files || i < max_files); i++) {
        char *a = dp_path_join(fix, v[i]), *b = dp_path_join(dir, v[i]);
        if (copy_file(a, b, 0) != 0)
            fprintf(stderr, "  cannot copy %s\n", a);
        free(a);
        free(b);
    }
    free_list(v, n);
    return dir;
}

static const char *fixture(void) { return dp_test_shared("iscx-fixture"); }

static char *fixture_labels(void)
{
    const char *f = dp_test_shared("iscx-fixture/labels.tsv");
    return f ? strdup(f) : NULL;
}

/* The captures the generic tests run on: the ISCX fixture when present, else
 * a copy of a few captures of data/corpus. `trunc` is cut short and given an
 * unsupported link type; `app` has an app label (found by content under
 * another name); `cli` is cut short for the binary. */
typedef struct src_set {
    char dir[PATH_MAX];    /* folder of captures (the fixture holds non-captures too) */
    char labels[PATH_MAX]; /* its label table */
    const char *trunc, *app, *cli;
} src_set;

static src_set g_src;
static int g_src_state; /* 0: not looked for yet, 1: found, -1: none */

/* Captures of data/corpus copied when the fixture is absent: the first
 * session of every class (direct and VPN), small enough for ASan. */
static const char *CORPUS_CAPS[] = {"chat_01.pcap",   "vpn_chat_01.pcap",  "voip_01.pcap",
                                    "vpn_voip_01.pcap", "scpup_01.pcap",    "vpn_scpup_01.pcap",
                                    "stream_01.pcap",   "vpn_stream_01.pcap"};

/* The source set, or NULL (after a message) if neither the fixture nor
 * data/corpus is there. */
static const src_set *captures(void)
{
    if (g_src_state)
        return g_src_state > 0 ? &g_src : NULL;
    g_src_state = -1;
    const char *fix = fixture();
    if (fix) {
        snprintf(g_src.dir, sizeof g_src.dir, "%s", fix);
        char *lab = fixture_labels();
        if (!lab)
            return NULL;
        snprintf(g_src.labels, sizeof g_src.labels, "%s", lab);
        free(lab);
        g_src.trunc = "iscx_email.pcap";
        g_src.app = "iscx_gmail.pcap";
        g_src.cli = "iscx_netflix.pcap";
        g_src_state = 1;
        return &g_src;
    }
    char corpus[PATH_MAX];
    if (!realpath("data/corpus", corpus) ||
        snprintf(g_src.labels, sizeof g_src.labels, "%s/labels.tsv", corpus) >=
            (int)sizeof g_src.labels ||
        access(g_src.labels, R_OK) != 0) {
        fprintf(stderr, "  neither ../shared/data/iscx-fixture nor data/corpus/labels.tsv "
                        "(run from the repository root)\n");
        return NULL;
    }
    char *dir = tmp_path("corpus");
    mkdir(dir, 0777);
    for (size_t i = 0; i < sizeof CORPUS_CAPS / sizeof CORPUS_CAPS[0]; i++) {
        char *a = dp_path_join(corpus, CORPUS_CAPS[i]), *b = dp_path_join(dir, CORPUS_CAPS[i]);
        int rc = copy_file(a, b, 0);
        if (rc != 0)
            fprintf(stderr, "  cannot copy %s to %s\n", a, b);
        free(a);
        free(b);
        if (rc != 0) {
            free(dir);
            return NULL;
        }
    }
    snprintf(g_src.dir, sizeof g_src.dir, "%s", dir);
    free(dir);
    g_src.trunc = "chat_01.pcap";
    g_src.app = "scpup_01.pcap";
    g_src.cli = "stream_01.pcap";
    g_src_state = 1;
    return &g_src;
}

/* The journal of an interrupted run: its entries' row counts (rows_end),
 * up to max; returns the number of entries. */
static size_t journal_rows(const char *dst, uint64_t *rows, size_t max)
{
    char *p = dp_path_join(dst, ".parts/journal");
    char *text = p ? dp_read_file(p, NULL, NULL) : NULL;
    free(p);
    size_t n = 0;
    char *save = NULL;
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line && n < max;
         line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "deeppacket-journal", 18))
            continue;
        /* ord key size mtime frames kept skipped rows_end status check */
        char *f = line;
        for (int k = 0; k < 7 && f; k++) {
            f = strchr(f, '\t');
            if (f)
                f++;
        }
        if (!f)
            break;
        rows[n++] = strtoull(f, NULL, 10);
    }
    free(text);
    return n;
}

/* Rewrites byte `at` of a file (from the end when at < 0) to v, or cuts the
 * file to `at` bytes when v < 0. */
static int poke(const char *path, long at, int v)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    long off = at < 0 ? (long)st.st_size + at : at;
    if (v < 0)
        return truncate(path, off);
    FILE *f = fopen(path, "r+b");
    if (!f)
        return -1;
    int rc = fseek(f, off, SEEK_SET) == 0 && fputc(v, f) == v ? 0 : -1;
    fclose(f);
    return rc;
}

/* ---- the fixture dataset against an independent reading -------------------- */

static char *g_ds1; /* -j2 dataset of the fixture or the corpus copy (used by later tests) */

/* A dataset's four row-aligned arrays. */
typedef struct ds_arrays {
    dp_npy vec, app, trf, meta;
} ds_arrays;

/* Opens DS's arrays and checks their types and that they have n rows each. */
static void ds_arrays_open(ds_arrays *d, const char *ds, uint64_t n)
{
    char eb[DP_ERRBUF_SIZE];
    struct { dp_npy *a; const char *name, *descr; size_t item, cols; } f[] = {
        {&d->vec, "vectors.npy", DP_NPY_U1, 1, DP_VEC_LEN},
        {&d->app, "app.npy", DP_NPY_I2, 2, 0},
        {&d->trf, "traffic.npy", DP_NPY_I2, 2, 0},
        {&d->meta, "meta.npy", DP_META_DESCR, sizeof(dp_meta), 0},
    };
    memset(d, 0, sizeof *d);
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        char *p = dp_path_join(ds, f[k].name);
        CHECK_EQ_INT(dp_npy_open(f[k].a, p, eb), 0);
        CHECK_EQ_INT(dp_npy_expect(f[k].a, p, f[k].descr, f[k].item, f[k].cols, eb), 0);
        CHECK_EQ_INT(f[k].a->shape[0], n);
        free(p);
    }
}

static void ds_arrays_close(ds_arrays *d)
{
    dp_npy_close(&d->vec);
    dp_npy_close(&d->app);
    dp_npy_close(&d->trf);
    dp_npy_close(&d->meta);
}

/* Whether row `row` of d is frame f of capture i, transformed independently
 * into want/info, with the labels cls and the flow salt of its name. */
static int ds_row_matches(const ds_arrays *d, uint64_t row, size_t i, const dp_frame *f,
                          const uint8_t *want, const dp_pkt_info *info, const int *cls,
                          uint64_t salt)
{
    dp_meta mr;
    memcpy(&mr, d->meta.data + row * sizeof(dp_meta), sizeof mr);
    int16_t a, t;
    memcpy(&a, d->app.data + 2 * row, 2);
    memcpy(&t, d->trf.data + 2 * row, 2);
    return !(memcmp(d->vec.data + row * DP_VEC_LEN, want, DP_VEC_LEN) != 0 ||
             mr.file != i || mr.index != f->index || mr.time != f->time ||
             mr.flow != dp_flow_id(info, salt) || mr.ipver != info->ipver ||
             mr.proto != info->proto || mr.sport != info->sport || mr.dport != info->dport ||
             memcmp(mr.saddr, info->saddr, 16) || memcmp(mr.daddr, info->daddr, 16) ||
             a != cls[0] || t != cls[1]);
}

/* Re-reads every capture of caps (under dir) independently and compares the
 * dataset row by row; counts each capture's kept packets into kept_per_file
 * (the first 64), the frames into *frames and the app-labelled rows into
 * *labelled_app. Returns the number of mismatched rows. */
static uint64_t ds_compare_rows(const ds_arrays *d, const char *dir, char **caps, size_t ncap,
                                const dp_labels *table, uint64_t kept_per_file[64],
                                uint64_t *frames, uint64_t *labelled_app)
{
    char eb[DP_ERRBUF_SIZE];
    uint64_t row = 0, mismatches = 0, n = d->vec.shape[0];
    uint8_t want[DP_VEC_LEN];
    for (size_t i = 0; i < ncap && d->vec.data; i++) {
        char *path = dp_path_join(dir, caps[i]);
        int cls[DP_NTASKS];
        dp_labels_lookup(table, caps[i], cls);
        uint64_t salt = dp_fnv1a(caps[i], strlen(caps[i]), DP_FNV_INIT);
        dp_capture *c = dp_capture_open_file(path, eb);
        CHECK(c != NULL);
        dp_frame f;
        while (c && dp_capture_next(c, &f, eb) == DP_NEXT_FRAME) {
            (*frames)++;
            dp_pkt_info info;
            if (dp_packet_transform(f.linktype, f.data, f.caplen, want, &info) != DP_KEEP)
                continue;
            if (row >= n) {
                mismatches++;
                continue;
            }
            if (i < 64)
                kept_per_file[i]++;
            if (!ds_row_matches(d, row, i, &f, want, &info, cls, salt)) {
                if (mismatches < 3)
                    fprintf(stderr, "  row %llu (%s frame %llu) differs\n",
                            (unsigned long long)row, caps[i], (unsigned long long)f.index);
                mismatches++;
            }
            int16_t a;
            memcpy(&a, d->app.data + 2 * row, 2);
            *labelled_app += a >= 0;
            row++;
        }
        if (c)
            dp_capture_close(c);
        free(path);
    }
    CHECK_EQ_INT(row, n);
    return mismatches;
}

/* DS/files.tsv: index, path, labels from the table, kept counts, status. */
static void ds_check_files_tsv(const char *ds, char **caps, size_t ncap, const dp_labels *table,
                               const uint64_t kept_per_file[64])
{
    char eb[DP_ERRBUF_SIZE];
    char *p = dp_path_join(ds, "files.tsv");
    char *tsv = dp_read_file(p, NULL, eb);
    free(p);
    CHECK(tsv != NULL);
    if (!tsv)
        return;
    const char *hdr = "index\tpath\tapp\ttraffic\tframes\tkept\tstatus\n";
    CHECK(!strncmp(tsv, hdr, strlen(hdr)));
    char *save = NULL, *line = strtok_r(tsv, "\n", &save);
    size_t nl = 0;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        unsigned idx, fr, kp;
        int a, t;
        char path[512], status[64];
        int nf = sscanf(line, "%u\t%511[^\t]\t%d\t%d\t%u\t%u\t%63s", &idx, path, &a, &t,
                        &fr, &kp, status);
        CHECK_EQ_INT(nf, 7);
        if (nf != 7 || nl >= ncap)
            break;
        int cls[DP_NTASKS];
        dp_labels_lookup(table, caps[nl], cls);
        CHECK_EQ_INT(idx, nl);
        CHECK(!strcmp(path, caps[nl]));
        CHECK_EQ_INT(a, cls[0]);
        CHECK_EQ_INT(t, cls[1]);
        if (nl < 64)
            CHECK_EQ_INT(kp, kept_per_file[nl]);
        CHECK(!strcmp(status, "ok"));
        nl++;
    }
    CHECK_EQ_INT(nl, ncap);
    free(tsv);
}

/* The first vector of d (frame 0 of the aim_chat capture) is the data
 * publisher's own vector in golden-vectors.tsv. */
static void ds_check_first_golden(const ds_arrays *d, char **caps)
{
    const char *golden = dp_test_shared("iscx-fixture/golden-vectors.tsv");
    if (!golden || !d->vec.shape[0] || !d->vec.data)
        return;
    char eb[DP_ERRBUF_SIZE];
    dp_meta m0;
    memcpy(&m0, d->meta.data, sizeof m0);
    char *g = dp_read_file(golden, NULL, eb);
    char *l1 = g ? strchr(g, '\n') : NULL;
    char *hex = l1 ? strrchr(strtok(l1 + 1, "\n"), '\t') : NULL;
    if (hex && m0.file == 0 && m0.index == 0 && strstr(caps[0], "aim_chat")) {
        hex++;
        size_t hl = strlen(hex);
        int same = hl / 2 <= DP_VEC_LEN;
        for (size_t k = 0; same && k < hl / 2; k++) {
            unsigned b;
            sscanf(hex + 2 * k, "%2x", &b);
            same = d->vec.data[k] == b;
        }
        for (size_t k = hl / 2; same && k < DP_VEC_LEN; k++)
            same = d->vec.data[k] == 0;
        CHECK(same);
    }
    free(g);
}

/* Preprocesses the fixture with 2 threads, then checks the dataset against
 * an independent reading of every capture: rows, files.tsv, labels.tsv, the
 * summary, and the publisher's vector for the first packet. */
static void test_fixture_dataset(void)
{
    const char *fix = fixture();
    if (!fix)
        SKIP("../shared/data/iscx-fixture is absent");
    char fixdir[4096];
    snprintf(fixdir, sizeof fixdir, "%s", fix);
    char *labels = fixture_labels();
    g_ds1 = tmp_path("ds1");
    char eb[DP_ERRBUF_SIZE];

    /* 1. preprocess, with the notes for the three non-captures */
    msgs m;
    dp_preprocess_stats st;
    int rc = run_pp(fixdir, g_ds1, labels, 2, 0, &m, &st, eb);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "  %s\n", eb);
        free(labels);
        return;
    }
    char **caps;
    size_t ncap = list_pcaps(fixdir, &caps);
    CHECK(ncap >= 40);
    CHECK_EQ_INT(st.captures, ncap);
    CHECK_EQ_INT(st.not_captures, 3); /* labels.tsv, sessions.tsv, golden-vectors.tsv */
    CHECK_EQ_INT(m.notes, 3);
    CHECK_EQ_INT(m.warnings, 0);
    CHECK_STR_CONTAINS(m.text, "golden-vectors.tsv");
    CHECK(dp_preprocess_complete(g_ds1));

    /* 2. every row against an independent reading of the captures */
    dp_labels table;
    CHECK_EQ_INT(dp_labels_load(&table, labels, eb), 0);
    ds_arrays d;
    ds_arrays_open(&d, g_ds1, st.packets);
    uint64_t frames = 0, labelled_app = 0, kept_per_file[64] = {0};
    CHECK_EQ_INT(ds_compare_rows(&d, fixdir, caps, ncap, &table, kept_per_file, &frames,
                                 &labelled_app), 0);
    CHECK_EQ_INT(frames, st.frames);
    CHECK(labelled_app > 0 && labelled_app < st.packets); /* VPN captures have no app label */
    CHECK_EQ_INT(st.unlabelled[DP_TASK_TRAFFIC], 0);

    /* 3. files.tsv, labels.tsv (the table used), the summary */
    ds_check_files_tsv(g_ds1, caps, ncap, &table, kept_per_file);
    char *p = dp_path_join(g_ds1, "labels.tsv");
    CHECK(files_equal(p, labels));
    free(p);
    p = dp_path_join(g_ds1, "summary.json");
    char *json = dp_read_file(p, NULL, eb);
    free(p);
    char want_s[64];
    snprintf(want_s, sizeof want_s, "\"packets\": %llu,", (unsigned long long)st.packets);
    CHECK_STR_CONTAINS(json, want_s);
    CHECK_STR_CONTAINS(json, "\"empty_tcp\": ");
    CHECK_STR_CONTAINS(json, "\"name\": \"VPN: Torrent\"");
    free(json);

    /* 4. the first vector against the data publisher's */
    ds_check_first_golden(&d, caps);
    ds_arrays_close(&d);
    dp_labels_free(&table);
    free_list(caps, ncap);
    free(labels);
}

/* Re-reads every capture named in DS/files.tsv (which must be sorted) and
 * checks each row of the dataset against dp_packet_transform of the same
 * frame, the meta fields and the labels from `table`. Returns the number of
 * captures, or -1 after a failed check. */
static long verify_dataset(const char *src, const char *ds, const dp_labels *table,
                           uint64_t *frames_out)
{
    char eb[DP_ERRBUF_SIZE];
    dp_npy vec, app, trf, meta;
    const char *names[4] = {"vectors.npy", "app.npy", "traffic.npy", "meta.npy"};
    dp_npy *arr[4] = {&vec, &app, &trf, &meta};
    for (int k = 0; k < 4; k++) {
        char *p = dp_path_join(ds, names[k]);
        int rc = dp_npy_open(arr[k], p, eb);
        free(p);
        if (rc != 0) {
            fprintf(stderr, "  %s\n", eb);
            for (int j = 0; j < k; j++)
                dp_npy_close(arr[j]);
            return -1;
        }
    }
    uint64_t N = vec.shape[0], row = 0, frames = 0, bad = 0;
    long nfiles = 0;
    char *ft = dp_path_join(ds, "files.tsv");
    char *tsv = dp_read_file(ft, NULL, eb);
    free(ft);
    char prev[1024] = "";
    char *save = NULL, *line = tsv ? strtok_r(tsv, "\n", &save) : NULL;
    while (line && (line = strtok_r(NULL, "\n", &save)) != NULL) {
        unsigned idx;
        char rel[1024];
        if (sscanf(line, "%u\t%1023[^\t]", &idx, rel) != 2 || idx != (unsigned)nfiles ||
            strcmp(prev, rel) >= 0) {
            bad++;
            break;
        }
        snprintf(prev, sizeof prev, "%s", rel);
        int cls[DP_NTASKS];
        dp_labels_lookup(table, rel, cls);
        uint64_t salt = dp_fnv1a(rel, strlen(rel), DP_FNV_INIT);
        char *path = dp_path_join(src, rel);
        dp_capture *c = dp_capture_open_file(path, eb);
        dp_frame f;
        uint8_t want[DP_VEC_LEN];
        while (c && dp_capture_next(c, &f, eb) == DP_NEXT_FRAME) {
            frames++;
            dp_pkt_info info;
            if (dp_packet_transform(f.linktype, f.data, f.caplen, want, &info) != DP_KEEP)
                continue;
            if (row >= N) {
                bad++;
                break;
            }
            dp_meta mr;
            int16_t a, t;
            memcpy(&mr, meta.data + row * sizeof mr, sizeof mr);
            memcpy(&a, app.data + 2 * row, 2);
            memcpy(&t, trf.data + 2 * row, 2);
            if (memcmp(vec.data + row * DP_VEC_LEN, want, DP_VEC_LEN) != 0 ||
                mr.file != idx || mr.index != f.index || mr.time != f.time ||
                mr.flow != dp_flow_id(&info, salt) || mr.sport != info.sport ||
                mr.dport != info.dport || mr.proto != info.proto || mr.ipver != info.ipver ||
                memcmp(mr.saddr, info.saddr, 16) || memcmp(mr.daddr, info.daddr, 16) ||
                a != cls[0] || t != cls[1]) {
                if (bad < 3)
                    fprintf(stderr, "  row %llu (%s frame %llu) differs\n",
                            (unsigned long long)row, rel, (unsigned long long)f.index);
                bad++;
            }
            row++;
        }
        if (c)
            dp_capture_close(c);
        free(path);
        nfiles++;
    }
    free(tsv);
    for (int k = 0; k < 4; k++)
        dp_npy_close(arr[k]);
    if (row != N)
        bad++;
    if (frames_out)
        *frames_out = frames;
    return bad ? -1 : nfiles;
}

/* The -j2 dataset the later tests compare with: the fixture's (made by
 * test_fixture_dataset), else one of the corpus copy, made here and checked
 * row by row against an independent re-reading. NULL if there is none. */
static const char *base_dataset(void)
{
    if (g_ds1 || fixture())
        return g_ds1;
    const src_set *s = captures();
    if (!s)
        return NULL;
    g_ds1 = tmp_path("ds1");
    char eb[DP_ERRBUF_SIZE];
    msgs m;
    dp_preprocess_stats st;
    int rc = run_pp(s->dir, g_ds1, s->labels, 2, 0, &m, &st, eb);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "  %s\n", eb);
        return g_ds1;
    }
    const size_t ncap = sizeof CORPUS_CAPS / sizeof CORPUS_CAPS[0];
    CHECK_EQ_INT(st.captures, ncap);
    CHECK_EQ_INT(m.warnings, 0);
    CHECK(st.packets > 0);
    CHECK(dp_preprocess_complete(g_ds1));
    dp_labels table;
    CHECK_EQ_INT(dp_labels_load(&table, s->labels, eb), 0);
    uint64_t frames = 0;
    CHECK_EQ_INT(verify_dataset(s->dir, g_ds1, &table, &frames), ncap);
    CHECK_EQ_INT(frames, st.frames);
    CHECK_EQ_INT(st.unlabelled[DP_TASK_TRAFFIC], 0);
    dp_labels_free(&table);
    return g_ds1;
}

/* Real-world captures: pcapng (also named .pcap), Ethernet, SLL, raw IP,
 * IPv6, TSO lengths; a subfolder of non-captures. */
static void test_ndpi_dataset(void)
{
    const char *nd = dp_test_shared("ndpi");
    if (!nd)
        SKIP("../shared/data/ndpi is absent");
    char src[4096], lab[4200];
    snprintf(src, sizeof src, "%s", nd);
    snprintf(lab, sizeof lab, "%s/labels.tsv", src);
    DIR *d = opendir(src);
    struct dirent *e;
    long want = 0;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if ((l > 5 && !strcmp(e->d_name + l - 5, ".pcap")) ||
            (l > 7 && !strcmp(e->d_name + l - 7, ".pcapng")))
            want++;
    }
    if (d)
        closedir(d);
    char *ds = tmp_path("ds_ndpi");
    char eb[DP_ERRBUF_SIZE];
    msgs m;
    dp_preprocess_stats st;
    CHECK_EQ_INT(run_pp(src, ds, lab, 2, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.captures, want);
    CHECK(st.not_captures > 0);
    CHECK(st.packets > 1000);
    dp_labels table;
    CHECK_EQ_INT(dp_labels_load(&table, lab, eb), 0);
    uint64_t frames = 0;
    CHECK_EQ_INT(verify_dataset(src, ds, &table, &frames), want);
    CHECK_EQ_INT(frames, st.frames);
    uint64_t sum = st.packets;
    for (int v = 1; v < DP_VERDICT_COUNT; v++)
        sum += st.skipped[v];
    CHECK_EQ_INT(sum, st.frames);
    dp_labels_free(&table);
    free(ds);
}

static void test_parallel_identical(void)
{
    const src_set *s = captures();
    if (!s || !base_dataset())
        SKIP("no captures (../shared/data/iscx-fixture, data/corpus) or no -j2 dataset");
    const char *fixdir = s->dir, *labels = s->labels;
    char *ds = tmp_path("ds_j1");
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    msgs m;
    CHECK_EQ_INT(run_pp(fixdir, ds, labels, 1, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.threads, 1);
    CHECK(dataset_equal(ds, g_ds1));
    free(ds);
}

static void test_rerun_up_to_date(void)
{
    const src_set *s = captures();
    if (!s || !base_dataset())
        SKIP("no captures (../shared/data/iscx-fixture, data/corpus) or no -j2 dataset");
    const char *fixdir = s->dir, *labels = s->labels;
    char *p = dp_path_join(g_ds1, "vectors.npy");
    struct stat a, b;
    CHECK_EQ_INT(stat(p, &a), 0);
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    msgs m;
    CHECK_EQ_INT(run_pp(fixdir, g_ds1, labels, 2, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.up_to_date, 1);
    CHECK(st.packets > 0);
    CHECK_EQ_INT(stat(p, &b), 0);
    CHECK(a.st_ino == b.st_ino && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
          a.st_mtim.tv_sec == b.st_mtim.tv_sec);
    uint64_t packets = st.packets;
    /* a summary.json that is not JSON (here: something after the object)
     * proves nothing, though its fingerprint matches: redone, and rewritten */
    char *sj = dp_path_join(g_ds1, "summary.json");
    size_t len = 0;
    char *json = dp_read_file(sj, &len, eb);
    CHECK(json != NULL);
    if (json) {
        char *bad = malloc(len + 8);
        memcpy(bad, json, len);
        memcpy(bad + len, "}\n", 2);
        CHECK_EQ_INT(dp_write_file_atomic(sj, bad, len + 2, eb), 0);
        CHECK_EQ_INT(run_pp(fixdir, g_ds1, labels, 2, 0, &m, &st, eb), 0);
        CHECK_EQ_INT(st.up_to_date, 0);
        CHECK_EQ_INT(st.packets, packets);
        char *again = dp_read_file(sj, &len, eb);
        CHECK(again && !strcmp(again, json));
        free(again);
        free(bad);
        free(json);
    }
    CHECK_EQ_INT(run_pp(fixdir, g_ds1, labels, 2, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.up_to_date, 1);
    CHECK_EQ_INT(st.packets, packets);
    free(sj);
    /* another label table is a change: redone, and labels differ */
    CHECK_EQ_INT(run_pp(fixdir, g_ds1, NULL, 2, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.up_to_date, 0);
    /* neither iscx_* nor the corpus' names are prefixes in the built-in ISCX table */
    CHECK_EQ_INT(st.unlabelled[DP_TASK_APP], st.packets);
    CHECK_STR_CONTAINS(m.text, "no capture's file name is in the label table");
    /* back to the fixture table */
    CHECK_EQ_INT(run_pp(fixdir, g_ds1, labels, 2, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.up_to_date, 0);
    free(p);
}

/* The runs of the resume scenarios: a source copy, the dataset resumed
 * into, and a fresh run of the same captures to compare with. */
typedef struct resume_ctx {
    const char *labels;
    char *src, *ds, *fresh;
    size_t ncap;
} resume_ctx;

/* Removes DS/summary.json, so that the next run redoes the dataset. */
static void drop_summary(const char *ds)
{
    char *sj = dp_path_join(ds, "summary.json");
    unlink(sj);
    free(sj);
}

/* Interrupted after 5 captures: not complete; the 5 are merged into the
 * partial arrays and in the journal, no part file is left. Then a stale
 * temp part of a killed run, and vectors cut by one byte of their last row:
 * the captures whose rows are not all there any more are redone. */
static void resume_after_damaged_parts(const resume_ctx *r)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    msgs m;
    CHECK_EQ_INT(run_pp(r->src, r->ds, r->labels, 1, 5, &m, &st, eb), 0);
    CHECK_EQ_INT(st.interrupted, 1);
    CHECK_EQ_INT(st.processed, 5);
    CHECK(!dp_preprocess_complete(r->ds));
    uint64_t rows[64];
    CHECK_EQ_INT(journal_rows(r->ds, rows, 64), 5);
    CHECK_EQ_INT(dp_test_count_parts(r->ds, ".part"), 0);
    CHECK_EQ_INT(dp_test_count_parts(r->ds, ".partial"), 4);
    char *junk = dp_path_join(r->ds, ".parts/0123456789abcdef.part.tmp");
    CHECK_EQ_INT(copy_file(r->labels, junk, 0), 0);
    char *pdir = dp_path_join(r->ds, ".parts");
    char *vpart = dp_path_join(r->ds, ".parts/vectors.npy.partial");
    /* (the file may be longer: direct I/O pads its last block) */
    CHECK_EQ_INT(poke(vpart, (long)(128 + rows[4] * DP_VEC_LEN - 1), -1), 0);
    size_t keep = 0;
    while (keep < 5 && rows[keep] < rows[4])
        keep++;
    CHECK(keep < 5);

    CHECK_EQ_INT(run_pp(r->src, r->ds, r->labels, 2, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.interrupted, 0);
    CHECK_EQ_INT(st.reused, keep);
    CHECK_EQ_INT(st.processed, r->ncap - keep);
    CHECK(dp_preprocess_complete(r->ds));
    CHECK(dataset_equal(r->ds, r->fresh));
    CHECK(access(junk, F_OK) != 0);
    CHECK(access(pdir, F_OK) != 0); /* journal and partial arrays gone once committed */
    free(pdir);
    free(vpart);
    free(junk);
}

/* A damaged journal: a changed byte in the 3rd entry (its checksum no
 * longer matches) keeps 2 entries; a last line cut short keeps the whole
 * ones before it. */
static void resume_damaged_journal(const resume_ctx *r)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    msgs m;
    uint64_t rows[64];
    for (int round = 0; round < 2; round++) {
        drop_summary(r->ds);
        CHECK_EQ_INT(run_pp(r->src, r->ds, r->labels, 1, 5, &m, &st, eb), 0);
        CHECK_EQ_INT(st.interrupted, 1);
        CHECK_EQ_INT(journal_rows(r->ds, rows, 64), 5);
        char *jp = dp_path_join(r->ds, ".parts/journal");
        char *text = dp_read_file(jp, NULL, eb);
        CHECK(text != NULL);
        long at = 0;
        for (int nl = 0; text && text[at] && nl < 3; at++) /* header + 2 entries */
            nl += text[at] == '\n';
        if (round == 0)
            CHECK_EQ_INT(poke(jp, at + 2, text && text[at + 2] == '9' ? '8' : '9'), 0);
        else
            CHECK_EQ_INT(poke(jp, -3, -1), 0);
        free(text);
        free(jp);
        size_t want = round == 0 ? 2 : 4;
        CHECK_EQ_INT(run_pp(r->src, r->ds, r->labels, 2, 0, &m, &st, eb), 0);
        CHECK_EQ_INT(st.reused, want);
        CHECK_EQ_INT(st.processed, r->ncap - want);
        CHECK(dataset_equal(r->ds, r->fresh));
    }
}

/* A source changed between runs (the 3rd capture's size: one byte appended,
 * then removed; mtime restored): entries from it on are redone; then a
 * different label table: nothing is reused. */
static void resume_changed_source(const resume_ctx *r)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    msgs m;
    uint64_t rows[64];
    drop_summary(r->ds);
    CHECK_EQ_INT(run_pp(r->src, r->ds, r->labels, 1, 5, &m, &st, eb), 0);
    char **caps;
    size_t n = list_pcaps(r->src, &caps);
    CHECK(n > 3);
    char *cp = dp_path_join(r->src, caps[2]);
    struct stat cs;
    CHECK_EQ_INT(stat(cp, &cs), 0);
    CHECK_EQ_INT(truncate(cp, cs.st_size + 1), 0);
    CHECK_EQ_INT(run_pp(r->src, r->ds, r->labels, 1, 4, &m, &st, eb), 0);
    CHECK_EQ_INT(st.reused, 2);
    CHECK_EQ_INT(truncate(cp, cs.st_size), 0);
    struct timespec ts[2] = {cs.st_atim, cs.st_mtim};
    CHECK_EQ_INT(utimensat(AT_FDCWD, cp, ts, 0), 0);
    free(cp);
    free_list(caps, n);
    CHECK_EQ_INT(run_pp(r->src, r->ds, r->labels, 2, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.reused, 2);
    CHECK(dataset_equal(r->ds, r->fresh));
    drop_summary(r->ds);
    CHECK_EQ_INT(run_pp(r->src, r->ds, r->labels, 1, 3, &m, &st, eb), 0);
    CHECK_EQ_INT(journal_rows(r->ds, rows, 64), 3);
    CHECK_EQ_INT(run_pp(r->src, r->ds, NULL, 1, 0, &m, &st, eb), 0); /* built-in table */
    CHECK_EQ_INT(st.reused, 0);
    CHECK_EQ_INT(st.processed, r->ncap);
}

/* Every capture's mtime changed, interrupted after 3 parts (the previous
 * dataset stays usable), then every capture changes again: no part is
 * reused; the arrays are the fresh run's, and the next run is a no-op. */
static void resume_after_mtime_changes(const resume_ctx *r)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    msgs m;
    uint64_t rows[64];
    for (int round = 0; round < 2; round++) {
        char **caps;
        size_t n = list_pcaps(r->src, &caps);
        for (size_t i = 0; i < n; i++) {
            char *cp = dp_path_join(r->src, caps[i]);
            struct timeval tv[2] = {{1000000000 + round, 0}, {1000000000 + round, 0}};
            CHECK_EQ_INT(utimes(cp, tv), 0);
            free(cp);
        }
        free_list(caps, n);
        if (round == 0) {
            CHECK_EQ_INT(run_pp(r->src, r->ds, r->labels, 1, 3, &m, &st, eb), 0);
            CHECK_EQ_INT(st.interrupted, 1);
            CHECK(dp_preprocess_complete(r->ds));
            CHECK_EQ_INT(journal_rows(r->ds, rows, 64), 3);
        }
    }
    CHECK_EQ_INT(run_pp(r->src, r->ds, r->labels, 2, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.reused, 0);
    CHECK_EQ_INT(st.processed, r->ncap);
    /* same content, but the fingerprint records new mtimes: compare arrays */
    char *a = dp_path_join(r->ds, "vectors.npy"), *b = dp_path_join(r->fresh, "vectors.npy");
    CHECK(files_equal(a, b));
    free(a);
    free(b);
    CHECK_EQ_INT(run_pp(r->src, r->ds, r->labels, 2, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.up_to_date, 1);
}

/* Interrupted and resumed runs give the fresh run's dataset, whatever was
 * damaged or changed in between. */
static void test_interrupted_and_resume(void)
{
    const src_set *s = captures();
    if (!s)
        SKIP("no captures (../shared/data/iscx-fixture, data/corpus)");
    resume_ctx r = {.labels = s->labels, .src = copy_fixture(s->dir, "src_resume", 0),
                    .ds = tmp_path("ds_resume"), .fresh = tmp_path("ds_fresh")};
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    msgs m;
    CHECK_EQ_INT(run_pp(r.src, r.fresh, r.labels, 2, 0, &m, &st, eb), 0);
    r.ncap = st.captures;
    CHECK(r.ncap > 5);

    resume_after_damaged_parts(&r);
    resume_damaged_journal(&r);
    resume_changed_source(&r);
    /* a dataset without summary.json is not complete, and is redone */
    char *sj = dp_path_join(r.ds, "summary.json");
    CHECK_EQ_INT(unlink(sj), 0);
    free(sj);
    CHECK(!dp_preprocess_complete(r.ds));
    CHECK_EQ_INT(run_pp(r.src, r.ds, r.labels, 2, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.up_to_date, 0);
    CHECK_EQ_INT(st.processed, r.ncap);
    CHECK(dataset_equal(r.ds, r.fresh));
    resume_after_mtime_changes(&r);

    free(r.src);
    free(r.ds);
    free(r.fresh);
}

/* Captures too big for the in-memory hand-over go through part files: the
 * dataset is the same, with 1 or 2 workers, interrupted and resumed too. */
static void test_spill_to_parts(void)
{
    const src_set *s = captures();
    if (!s)
        SKIP("no captures (../shared/data/iscx-fixture, data/corpus)");
    char *src = copy_fixture(s->dir, "src_spill", 0);
    char *fresh = tmp_path("ds_spill_fresh"), *ds = tmp_path("ds_spill");
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    msgs m;
    CHECK_EQ_INT(run_pp(src, fresh, s->labels, 2, 0, &m, &st, eb), 0);
    size_t ncap = st.captures;
    g_chunk_bytes = 1; /* one record per chunk, two chunks per worker */
    /* With 2 workers a capture spills when its worker has used up its chunks
     * before the merge reaches it: a race by design (on a loaded machine the
     * merge can keep up), so the 2-worker run is repeated until one spills;
     * every run must give the same dataset. */
    size_t spilled = 0;
    for (int j = 1, tries = 0; j <= 2; tries++) {
        char *sj = dp_path_join(ds, "summary.json");
        unlink(sj);
        free(sj);
        CHECK_EQ_INT(run_pp(src, ds, s->labels, j, 0, &m, &st, eb), 0);
        CHECK_EQ_INT(st.processed, ncap);
        CHECK(dataset_equal(ds, fresh));
        spilled += j == 2 ? st.spilled : 0;
        if (j == 1 || spilled > 0 || tries >= 20)
            j++;
    }
    CHECK(spilled > 0);
    char *sj = dp_path_join(ds, "summary.json");
    unlink(sj);
    free(sj);
    CHECK_EQ_INT(run_pp(src, ds, s->labels, 2, 4, &m, &st, eb), 0);
    CHECK_EQ_INT(st.interrupted, 1);
    CHECK_EQ_INT(dp_test_count_parts(ds, ".part"), 0); /* merged ones are dropped */
    CHECK_EQ_INT(run_pp(src, ds, s->labels, 2, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.reused, 4);
    CHECK(dataset_equal(ds, fresh));
    g_chunk_bytes = 0;
    free(src);
    free(ds);
    free(fresh);
}

/* Offsets of the records of a little-endian microsecond pcap file. */
static size_t pcap_records(const uint8_t *b, size_t n, size_t *off, size_t max)
{
    size_t k = 0, p = 24;
    while (p + 16 <= n && k < max) {
        uint32_t incl = b[p + 8] | b[p + 9] << 8 | b[p + 10] << 16 | (uint32_t)b[p + 11] << 24;
        if (p + 16 + incl > n)
            break;
        off[k++] = p;
        p += 16 + incl;
    }
    return k;
}

static void test_truncated_capture(void)
{
    const src_set *s = captures();
    if (!s)
        SKIP("no captures (../shared/data/iscx-fixture, data/corpus)");
    char *orig = dp_path_join(s->dir, s->trunc);
    char eb[DP_ERRBUF_SIZE];
    size_t n;
    uint8_t *b = (uint8_t *)dp_read_file(orig, &n, eb);
    if (!b || n < 24 || memcmp(b, "\xd4\xc3\xb2\xa1", 4) != 0) {
        free(b);
        free(orig);
        SKIP("%s is not a little-endian microsecond pcap", s->trunc);
    }
    /* the link type, from the file header (LINKTYPE_RAW in the fixture,
     * Ethernet in the corpus) */
    int linktype = (int)(b[20] | b[21] << 8 | b[22] << 16 | (uint32_t)b[23] << 24);
    size_t off[4096];
    size_t nrec = pcap_records(b, n, off, 4096);
    CHECK(nrec > 10);
    size_t keep_frames = nrec / 2;
    size_t cut = off[keep_frames] + 16 + 5; /* inside the data of that record */

    char *dir = tmp_path("src_trunc");
    mkdir(dir, 0777);
    char *cp = dp_path_join(dir, s->trunc);
    CHECK_EQ_INT(copy_file(orig, cp, cut), 0);
    /* expected: the transform of the complete frames before the cut */
    uint64_t want_kept = 0;
    uint8_t vec[DP_VEC_LEN];
    for (size_t k = 0; k < keep_frames; k++) {
        const uint8_t *r = b + off[k];
        uint32_t incl = r[8] | r[9] << 8 | r[10] << 16 | (uint32_t)r[11] << 24;
        if (dp_packet_transform(linktype, r + 16, incl, vec, NULL) == DP_KEEP)
            want_kept++;
    }
    char *ds = tmp_path("ds_trunc");
    msgs m;
    dp_preprocess_stats st;
    int rc = run_pp(dir, ds, s->labels, 2, 0, &m, &st, eb);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(st.captures, 1);
    CHECK_EQ_INT(st.frames, keep_frames);
    CHECK_EQ_INT(st.packets, want_kept);
    CHECK(want_kept > 0);
    CHECK_EQ_INT(st.with_warnings, 1);
    CHECK_EQ_INT(m.warnings, 1);
    CHECK_STR_CONTAINS(m.text, "warning: ");
    CHECK_STR_CONTAINS(m.text, cp);
    CHECK(dp_preprocess_complete(ds));
    char *ft = dp_path_join(ds, "files.tsv");
    char *tsv = dp_read_file(ft, NULL, eb);
    CHECK(tsv && !strstr(tsv, "\tok\n")); /* the status records the problem */
    free(tsv);
    free(ft);
    free(ds);
    free(cp);
    free(dir);
    free(b);
    free(orig);
}

static void test_not_capture_and_linktype(void)
{
    const src_set *s = captures();
    if (!s)
        SKIP("no captures (../shared/data/iscx-fixture, data/corpus)");
    const char *fix = s->dir;
    char *dir = tmp_path("src_mixed");
    char *sub = dp_path_join(dir, "sub/deeper");
    char eb[DP_ERRBUF_SIZE];
    CHECK_EQ_INT(dp_mkdirs(sub, eb), 0);
    /* a good capture two levels down, named .dat: found by content */
    char good_name[256];
    snprintf(good_name, sizeof good_name, "%.*s.dat", (int)(strlen(s->app) - 5), s->app);
    char *good_src = dp_path_join(fix, s->app);
    char *good = dp_path_join(sub, good_name);
    CHECK_EQ_INT(copy_file(good_src, good, 0), 0);
    /* a text file named .pcap: not a capture */
    char *txt = dp_path_join(dir, "notes.pcap");
    CHECK_EQ_INT(dp_write_file_atomic(txt, "hello, not a capture\n", 21, eb), 0);
    /* a capture whose link type is 802.11 (unsupported) */
    char *wifi = dp_path_join(dir, s->trunc);
    char *wsrc = dp_path_join(fix, s->trunc);
    size_t n;
    uint8_t *b = (uint8_t *)dp_read_file(wsrc, &n, eb);
    CHECK(b && n > 24);
    if (b && n > 24) {
        b[20] = 105; /* LINKTYPE_IEEE802_11, little-endian */
        b[21] = b[22] = b[23] = 0;
        CHECK_EQ_INT(dp_write_file_atomic(wifi, b, n, eb), 0);
    }
    free(b);
    /* an empty file */
    char *empty = dp_path_join(dir, "empty.pcap");
    CHECK_EQ_INT(dp_write_file_atomic(empty, "", 0, eb), 0);

    const char *labels = s->labels;
    char *ds = tmp_path("ds_mixed");
    msgs m;
    dp_preprocess_stats st;
    CHECK_EQ_INT(run_pp(dir, ds, labels, 2, 0, &m, &st, eb), 0);
    CHECK_EQ_INT(st.captures, 2);
    CHECK_EQ_INT(st.not_captures, 2);
    CHECK_EQ_INT(m.notes, 2);
    CHECK_EQ_INT(m.warnings, 1);
    CHECK_STR_CONTAINS(m.text, "note: ");
    CHECK_STR_CONTAINS(m.text, txt);
    CHECK_STR_CONTAINS(m.text, "IEEE802_11");
    CHECK_STR_CONTAINS(m.text, wifi);
    CHECK_EQ_INT(st.with_warnings, 1);
    CHECK(st.packets > 0);
    /* the only rows are gmail's, labelled from its name */
    dp_labels table;
    CHECK_EQ_INT(dp_labels_load(&table, labels, eb), 0);
    int cls[DP_NTASKS];
    CHECK_EQ_INT(dp_labels_lookup(&table, good, cls), 1);
    CHECK(cls[0] >= 0 && cls[0] < DP_MAX_CLASSES);
    if (cls[0] >= 0 && cls[0] < DP_MAX_CLASSES)
        CHECK_EQ_INT(st.per_class[DP_TASK_APP][cls[0]], st.packets);
    /* files.tsv: path, app, traffic, frames, kept, status (labels from the table) */
    char want[1024];
    char *ft = dp_path_join(ds, "files.tsv");
    char *tsv = dp_read_file(ft, NULL, eb);
    snprintf(want, sizeof want, "sub/deeper/%s\t%d\t%d\t", good_name, cls[0], cls[1]);
    CHECK_STR_CONTAINS(tsv, want);
    CHECK_EQ_INT(dp_labels_lookup(&table, s->trunc, cls), 1);
    snprintf(want, sizeof want, "%s\t%d\t%d\t0\t0\tunsupported link type IEEE802_11 (105)",
             s->trunc, cls[0], cls[1]);
    CHECK_STR_CONTAINS(tsv, want);
    free(tsv);
    free(ft);
    dp_labels_free(&table);
    free(ds);
    free(empty);
    free(wsrc);
    free(wifi);
    free(txt);
    free(good);
    free(good_src);
    free(sub);
    free(dir);
}

static void test_errors(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    msgs m;
    char *empty = tmp_path("src_empty");
    mkdir(empty, 0777);
    char *ds = tmp_path("ds_err");
    eb[0] = 0;
    CHECK_EQ_INT(run_pp(empty, ds, NULL, 1, 0, &m, &st, eb), -1);
    CHECK_STR_CONTAINS(eb, "no capture files");
    CHECK_STR_CONTAINS(eb, empty);
    /* a folder with files but no capture */
    char *txt = dp_path_join(empty, "readme.txt");
    CHECK_EQ_INT(dp_write_file_atomic(txt, "x\n", 2, eb), 0);
    CHECK_EQ_INT(run_pp(empty, ds, NULL, 1, 0, &m, &st, eb), -1);
    CHECK_STR_CONTAINS(eb, "no capture files");
    CHECK_EQ_INT(m.notes, 1);
    /* missing source */
    char *missing = tmp_path("no_such_folder");
    CHECK_EQ_INT(run_pp(missing, ds, NULL, 1, 0, &m, &st, eb), -1);
    CHECK_STR_CONTAINS(eb, missing);
    /* unwritable target: below a regular file (works as root too) */
    const src_set *s = captures();
    if (s) {
        const char *fixdir = s->dir;
        char *bad = dp_path_join(txt, "dataset");
        CHECK_EQ_INT(run_pp(fixdir, bad, NULL, 1, 0, &m, &st, eb), -1);
        CHECK_STR_CONTAINS(eb, txt);
        free(bad);
        /* bad label table */
        CHECK_EQ_INT(run_pp(fixdir, ds, txt, 1, 0, &m, &st, eb), -1);
        CHECK_STR_CONTAINS(eb, txt);
    }
    free(missing);
    free(txt);
    free(ds);
    free(empty);
}

/* ---- the binary: exit codes and the warning format ------------------------- */

static char g_bin[4096];

static const char *binary(void)
{
    const char *b = getenv("BUILD");
    snprintf(g_bin, sizeof g_bin, "%s/deeppacket", b ? b : "build");
    return access(g_bin, X_OK) == 0 ? g_bin : NULL;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cli_exit_codes(void)
{
    const char *bin = binary();
    if (!bin)
        SKIP("no deeppacket binary ($BUILD/deeppacket)");
    const src_set *s = captures();
    char *empty = tmp_path("cli_empty");
    mkdir(empty, 0777);
    char *ds = tmp_path("cli_ds");
    char *errf = tmp_path("cli_stderr.txt");
    CHECK_EQ_INT(sh("%s preprocess 2>/dev/null", bin), 2);
    CHECK_EQ_INT(sh("%s preprocess -s %s 2>/dev/null", bin, empty), 2);
    CHECK_EQ_INT(sh("%s preprocess -s %s -t %s -j 0 2>/dev/null", bin, empty, ds), 2);
    CHECK_EQ_INT(sh("%s preprocess -s %s -t %s --bogus 2>/dev/null", bin, empty, ds), 2);
    CHECK_EQ_INT(sh("%s preprocess -s %s -t %s extra 2>/dev/null", bin, empty, ds), 2);
    CHECK_EQ_INT(sh("%s preprocess --help >/dev/null", bin), 0);
    /* a missing value names the option; -h after other options still helps */
    CHECK_EQ_INT(sh("%s preprocess -s %s -t 2>%s", bin, empty, errf), 2);
    char *msg = dp_read_file(errf, NULL, NULL);
    CHECK_STR_CONTAINS(msg, "option -t needs a value");
    free(msg);
    CHECK_EQ_INT(sh("%s preprocess -s %s -t %s -h >%s", bin, empty, ds, errf), 0);
    msg = dp_read_file(errf, NULL, NULL);
    CHECK_STR_CONTAINS(msg, "usage: deeppacket preprocess");
    free(msg);
    CHECK_EQ_INT(sh("%s preprocess -s %s -t %s 2>/dev/null", bin, empty, ds), 1);
    CHECK_EQ_INT(sh("%s preprocess -s %s/nope -t %s 2>/dev/null", bin, empty, ds), 1);
    if (!s) {
        free(empty);
        free(ds);
        free(errf);
        SKIP("no captures (../shared/data/iscx-fixture, data/corpus)");
    }
    /* a truncated capture: warning format, exit 0 */
    char *src = tmp_path("cli_src");
    mkdir(src, 0777);
    char *orig = dp_path_join(s->dir, s->cli);
    char *cut = dp_path_join(src, s->cli);
    struct stat os;
    CHECK_EQ_INT(stat(orig, &os), 0);
    CHECK_EQ_INT(copy_file(orig, cut, (size_t)os.st_size - 7), 0);
    const char *labels = s->labels;
    char want[8192];
    char *outf = tmp_path("cli_stdout.txt");
    CHECK_EQ_INT(sh("%s preprocess -s %s -t %s --labels %s -j 2 -q >%s 2>%s", bin, src, ds,
                    labels, outf, errf),
                 0);
    /* -q: the closing line alone, naming the dataset */
    char *out = dp_read_file(outf, NULL, NULL);
    CHECK_STR_CONTAINS(out, " packets kept of ");
    snprintf(want, sizeof want, "-> %s\n", ds);
    CHECK_STR_CONTAINS(out, want);
    CHECK(out && !strncmp(out, "deeppacket preprocess: ", 23) && strchr(out, '\n')[1] == 0);
    free(out);
    char *err = dp_read_file(errf, NULL, NULL);
    snprintf(want, sizeof want, "deeppacket preprocess: warning: %s: ", cut);
    CHECK_STR_CONTAINS(err, want);
    free(err);
    /* rerun: complete and up to date */
    CHECK_EQ_INT(sh("%s preprocess -s %s -t %s --labels %s >%s 2>/dev/null", bin, src, ds, labels,
                    outf),
                 0);
    out = dp_read_file(outf, NULL, NULL);
    CHECK_STR_CONTAINS(out, "up to date");
    free(out);
    /* unwritable target */
    CHECK_EQ_INT(sh("%s preprocess -s %s -t %s/x 2>/dev/null", bin, src, cut), 1);
    free(outf);
    free(cut);
    free(orig);
    free(src);
    free(empty);
    free(ds);
    free(errf);
}

/* ---- the progress line and the workers at a failed run's end ---------------------- */

/* Writes a pcap of n 14-byte Ethernet frames of LLDP (not IP: none is
 * kept), the last one cut short when cut (a warning once it is read). */
static int write_lldp_pcap(const char *path, size_t n, int cut)
{
    static const uint8_t head[24] = {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0,
                                     0,    0,    0,    0,    0xff, 0xff, 0, 0, 1, 0, 0, 0};
    static const uint8_t rec[30] = {1, 0, 0, 0, 0, 0, 0, 0, 14, 0, 0, 0, 14, 0, 0, 0, 0x01, 0x80, 0xc2, 0, 0, 0x0e,
                                    2, 0, 0, 0, 0, 1, 0x88, 0xcc};
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(head, 1, sizeof head, f) == sizeof head;
    for (size_t i = 0; ok && i < n; i++) {
        size_t len = cut && i == n - 1 ? 16 + 5 : sizeof rec;
        ok = fwrite(rec, 1, len, f) == len;
    }
    if (f && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

/* Runs argv with its standard output and error on a new pseudo-terminal
 * (the progress line's terminal) and files limited to fsize bytes; what it
 * printed in out[cap] (the first cap - 1 bytes). Its exit status, -1 when it did not exit, -2 when
 * this machine has no pseudo-terminal. */
static int run_on_tty(char *const argv[], rlim_t fsize, char *out, size_t cap)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    const char *name = m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0 ? ptsname(m) : NULL;
    int s = name ? open(name, O_RDWR | O_NOCTTY) : -1; /* open until the child ends: no EIO before */
    if (s < 0) {
        if (m >= 0)
            close(m);
        return -2;
    }
    fflush(NULL);
    pid_t c = fork();
    if (c == 0) {
        struct rlimit rl = {fsize, fsize};
        if (dup2(s, 1) < 0 || dup2(s, 2) < 0 || setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    close(s);
    size_t n = 0;
    char sink[4096];
    for (;;) { /* until EIO: the child has ended; past cap, read on so that it never blocks */
        ssize_t got = n < cap - 1 ? read(m, out + n, cap - 1 - n) : read(m, sink, sizeof sink);
        if (got > 0 && n < cap - 1)
            n += (size_t)got;
        if (got < 0 && errno != EINTR)
            break;
    }
    out[n] = 0;
    close(m);
    int st = 0;
    if (c < 0 || waitpid(c, &st, 0) != c)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A run that fails (files limited to 1 KB: the first capture's journal
 * entry cannot be written) while the other workers read long captures
 * that end in a warning, the progress line on a terminal: the run ends
 * (exit 1, the reason given) only after the workers' warnings, and under
 * `make tsan` without a data race. Before, the run's end cleared the
 * progress line (dp_progress_done) before it joined the workers, whose
 * warnings read it: a race that ThreadSanitizer reports (exit 66).
 * a.pcap (read first, no packet kept, so its journal entry is due at once)
 * is short; b.pcap and c.pcap are ten times longer, keep no packet (so
 * their workers take no lock until their warning) and are smaller than a
 * split capture. b.pcap is taken at the start, beside a.pcap, so it is still
 * read when the run fails: its warning is sure. c.pcap is taken by a.pcap's
 * worker only when that worker comes back before a.pcap's journal entry
 * fails (most runs; under ASan's slower build not always, and then the run
 * ends before it): its warning is not required. No worker is idle before the
 * run stops (an idle one makes the readers take the lock). */
static void test_workers_joined_before_progress_end(void)
{
    const char *bin = binary();
    if (!bin)
        SKIP("no deeppacket binary ($BUILD/deeppacket)");
    char *src = tmp_path("race_src"), *ds = tmp_path("race_ds"), *lt = tmp_path("race_labels.tsv"), eb[DP_ERRBUF_SIZE];
    CHECK_EQ_INT(dp_mkdirs(src, eb), 0);
    const char *names[3] = {"a.pcap", "b.pcap", "c.pcap"};
    for (int i = 0; i < 3; i++) {
        char *p = dp_path_join(src, names[i]);
        CHECK_EQ_INT(write_lldp_pcap(p, i ? 200000 : 20000, i != 0), 0);
        free(p);
    }
    const char *table = "prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\n"
                        "a\t0\tA\t0\tT\nb\t0\tA\t0\tT\nc\t0\tA\t0\tT\n";
    CHECK_EQ_INT(dp_write_file_atomic(lt, table, strlen(table), eb), 0);
    char *argv[] = {(char *)bin, "preprocess", "-j", "2", "-s", src, "-t", ds, "--labels", lt, NULL};
    static char out[1 << 16];
    int rc = run_on_tty(argv, 1024, out, sizeof out);
    if (rc == -2) {
        free(src), free(ds), free(lt);
        SKIP("no pseudo-terminal");
    }
    if (rc != 1)
        fprintf(stderr, "  exit %d:\n%s\n", rc, out);
    CHECK_EQ_INT(rc, 1);
    CHECK_STR_CONTAINS(out, "b.pcap: truncated dump file");
    CHECK_STR_CONTAINS(out, "write failed: File too large");
    CHECK(!strstr(out, "ThreadSanitizer"));
    free(src), free(ds), free(lt);
}

/* ---- numpy ------------------------------------------------------------------------ */

static void test_numpy_load(void)
{
    if (!base_dataset() || !dp_preprocess_complete(g_ds1))
        SKIP("no -j2 dataset (../shared/data/iscx-fixture, data/corpus)");
    if (access("/usr/bin/python3", X_OK) != 0 ||
        sh("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
        SKIP("/usr/bin/python3 with numpy is not available");
    char *script = tmp_path("check.py"), *outf = tmp_path("numpy_out.txt");
    const char *py =
        "import sys, json, numpy as np\n"
        "d = sys.argv[1]\n"
        "v = np.load(d + '/vectors.npy', mmap_mode='r')\n"
        "a = np.load(d + '/app.npy', mmap_mode='r')\n"
        "t = np.load(d + '/traffic.npy', mmap_mode='r')\n"
        "m = np.load(d + '/meta.npy', mmap_mode='r')\n"
        "s = json.load(open(d + '/summary.json'))\n"
        "assert v.shape == (len(a), 1500) and v.dtype == np.uint8\n"
        "assert a.dtype == np.int16 and t.dtype == np.int16 and m.shape == a.shape\n"
        "assert s['packets'] == len(a)\n"
        "n = len(a) - 1\n"
        "print(len(a), int(v[n].astype(np.int64).sum()), int(v[0, 0]), int(a[n]), int(t[0]),\n"
        "      int(m['file'][n]), int(m['index'][n]), int(m['flow'][n]), int(m['sport'][n]),\n"
        "      int(m['ipver'][0]))\n";
    char eb[DP_ERRBUF_SIZE];
    CHECK_EQ_INT(dp_write_file_atomic(script, py, strlen(py), eb), 0);
    CHECK_EQ_INT(sh("/usr/bin/python3 %s %s > %s", script, g_ds1, outf), 0);
    char *out = dp_read_file(outf, NULL, eb);
    /* the same values read in C */
    char *p = dp_path_join(g_ds1, "vectors.npy");
    dp_npy v, a, t, m;
    CHECK_EQ_INT(dp_npy_open(&v, p, eb), 0);
    free(p);
    p = dp_path_join(g_ds1, "app.npy");
    CHECK_EQ_INT(dp_npy_open(&a, p, eb), 0);
    free(p);
    p = dp_path_join(g_ds1, "traffic.npy");
    CHECK_EQ_INT(dp_npy_open(&t, p, eb), 0);
    free(p);
    p = dp_path_join(g_ds1, "meta.npy");
    CHECK_EQ_INT(dp_npy_open(&m, p, eb), 0);
    free(p);
    uint64_t N = v.shape[0], n = N - 1, sum = 0;
    for (int k = 0; k < DP_VEC_LEN; k++)
        sum += v.data[n * DP_VEC_LEN + k];
    int16_t an, t0;
    memcpy(&an, a.data + 2 * n, 2);
    memcpy(&t0, t.data, 2);
    dp_meta mn, m0;
    memcpy(&mn, m.data + n * sizeof mn, sizeof mn);
    memcpy(&m0, m.data, sizeof m0);
    char want[512];
    snprintf(want, sizeof want, "%llu %llu %d %d %d %u %llu %llu %u %u\n",
             (unsigned long long)N, (unsigned long long)sum, v.data[0], an, t0, mn.file,
             (unsigned long long)mn.index, (unsigned long long)mn.flow, mn.sport, m0.ipver);
    CHECK(out && !strcmp(out, want));
    if (out && strcmp(out, want))
        fprintf(stderr, "  numpy: %s  C:     %s", out, want);
    free(out);
    dp_npy_close(&v);
    dp_npy_close(&a);
    dp_npy_close(&t);
    dp_npy_close(&m);
    free(script);
    free(outf);
}

/* summary.json is read back by a strict JSON reader: the top-level members
 * only, and nothing from a text that is not JSON. */
static void test_summary_reader(void)
{
    dp_pp_summary s;
    const char *good = " {\"format\": \"x\", \"fingerprint\": \"0123456789abcdef\", \"packets\": 5,"
                       " \"frames\": 7, \"captures\": 2, \"tasks\": {\"app\": {\"packets\": 99,"
                       " \"frames\": [1, -2.5e+3, true, false, null, \"\\u0041\\n\\\"\"]}},"
                       " \"unreadable\": 0, \"packets\": 6, \"not_captures\": []}\n";
    CHECK_EQ_INT(dp_pp_summary_parse(good, strlen(good), &s), 0);
    CHECK(!strcmp(s.fingerprint, "0123456789abcdef"));
    CHECK_EQ_INT(s.packets, 5); /* the first of two; not the nested one */
    CHECK_EQ_INT(s.frames, 7);
    CHECK_EQ_INT(s.captures, 2);
    CHECK_EQ_INT(s.unreadable, 0);
    const char *big = "{\"unreadable\": 18446744073709551615, \"a\": \"\\u00e9\"}";
    CHECK_EQ_INT(dp_pp_summary_parse(big, strlen(big), &s), 0);
    CHECK(s.unreadable == UINT64_MAX && !s.fingerprint[0] && s.packets == 0);
    static const char *const bad[] = {
        "", "[]", "{} x", "{\"a\": 1,}", "{\"a\" 1}", "{\"a\": 1 \"b\": 2}", "{\"a\": \"x}",
        "{\"a\": \"\t\"}", "{\"a\": \"\\x\"}", "{\"a\": \"\\u12g4\"}", "{\"packets\": 01}",
        "{\"packets\": -1}", "{\"packets\": 1.5}", "{\"packets\": 18446744073709551616}",
        "{\"packets\": \"5\"}", "{\"fingerprint\": 5}", "{\"fingerprint\": \"0123456789abcdef0\"}",
        "{\"a\": tru}", "{\"a\": 1.}", "{\"a\": 1e}", "{\"a\": [1, 2}", "{\"a\": -}",
        "{\"fingerprint\": \"x\"", "{\"a\": 1}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = dp_pp_summary_parse(bad[i], strlen(bad[i]), &s);
        if (rc != -1)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK_EQ_INT(rc, -1);
    }
    /* a NUL inside, and nesting: 63 levels inside the object pass, 64 do not */
    CHECK_EQ_INT(dp_pp_summary_parse("{}\0", 3, &s), -1);
    char deep[256];
    for (int levels = 63; levels <= 64; levels++) {
        int n = snprintf(deep, sizeof deep, "{\"a\": ");
        for (int i = 0; i < levels; i++)
            deep[n++] = '[';
        for (int i = 0; i < levels; i++)
            deep[n++] = ']';
        deep[n++] = '}';
        CHECK_EQ_INT(dp_pp_summary_parse(deep, (size_t)n, &s), levels == 63 ? 0 : -1);
    }
    /* a file that cannot be read */
    CHECK_EQ_INT(dp_pp_summary_read("/nonexistent-deeppacket-dir", &s), -1);
}

int main(void)
{
    dp_test_prog = "test_preprocess";
    DP_RUN(test_summary_reader);
    DP_RUN(test_fixture_dataset);
    DP_RUN(test_parallel_identical);
    DP_RUN(test_ndpi_dataset);
    DP_RUN(test_rerun_up_to_date);
    DP_RUN(test_interrupted_and_resume);
    DP_RUN(test_spill_to_parts);
    DP_RUN(test_truncated_capture);
    DP_RUN(test_not_capture_and_linktype);
    DP_RUN(test_errors);
    DP_RUN(test_cli_exit_codes);
    DP_RUN(test_workers_joined_before_progress_end);
    DP_RUN(test_numpy_load);
    free(g_ds1);
    return dp_test_end();
}
