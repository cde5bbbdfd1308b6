/* Tests of sharded preprocessing (preprocess --shard I/N) and dp_merge
 * (deeppacket merge): shards merged are byte-identical to one run (the
 * repository's corpus always; ../shared/data/iscx-sample in 4 shards when
 * present), a shard holds exactly the files its FNV-1a 64 hash names, empty
 * shards, a killed merge resumes, and every bad shard set is refused with a
 * message. */
#include "dp_test.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dataset/dp_dataset.h"
#include "dataset/dp_merge.h"
#include "dataset/dp_pp_knobs.h"
#include "dataset/dp_preprocess.h"
#include "util/dp_util.h"

#define CORPUS "data/corpus"

static char *tmp(const char *name)
{
    return dp_path_join(dp_test_tmpdir(), name);
}

static void quiet(void *ctx, const char *file, const char *msg, int is_note)
{
    (void)ctx, (void)file, (void)msg, (void)is_note;
}

/* preprocess src -> dst (shard i/n when n > 0) with labels, 2 threads. */
static int pp(const char *src, const char *dst, const char *labels, unsigned i, unsigned n, char *eb)
{
    dp_preprocess_opts o;
    dp_preprocess_opts_init(&o);
    o.src_dir = src;
    o.dst_dir = dst;
    o.labels_path = labels;
    o.threads = 2;
    o.progress = 0;
    o.warn = quiet;
    o.shard_index = i;
    o.shard_count = n;
    return dp_preprocess_run(&o, NULL, eb);
}

static int merge(const char *dst, const char *const *shards, size_t n, size_t stop_after,
                 dp_preprocess_stats *st, char *eb)
{
    dp_merge_opts o;
    memset(&o, 0, sizeof o);
    o.dst_dir = dst;
    o.shard_dirs = shards;
    o.nshards = n;
    o.warn = quiet;
    dp_pp_knobs k = {.stop_after = stop_after};
    return dp_merge_run_knobs(&o, &k, st, eb);
}


/* Preprocesses src in n shards into PREFIX0..PREFIX{n-1} (names in dirs). */
static int make_shards(const char *src, const char *labels, const char *prefix, unsigned n, char **dirs)
{
    char eb[DP_ERRBUF_SIZE];
    for (unsigned i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%u", prefix, i);
        dirs[i] = tmp(name);
        if (pp(src, dirs[i], labels, i, n, eb) != 0) {
            fprintf(stderr, "  shard %u/%u: %s\n", i, n, eb);
            return -1;
        }
    }
    return 0;
}

static void free_dirs(char **dirs, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        free(dirs[i]);
}

/* Whole folder vs n shards merged (given in reverse order). */
static void check_identical(const char *src, const char *labels, const char *tag, unsigned n)
{
    char eb[DP_ERRBUF_SIZE], name[64];
    snprintf(name, sizeof name, "%s-whole", tag);
    char *whole = tmp(name);
    snprintf(name, sizeof name, "%s-merged", tag);
    char *merged = tmp(name);
    snprintf(name, sizeof name, "%s-s", tag);
    char *dirs[16] = {NULL}, *rev[16];
    CHECK(pp(src, whole, labels, 0, 0, eb) == 0);
    CHECK(make_shards(src, labels, name, n, dirs) == 0);
    for (unsigned i = 0; i < n; i++)
        rev[i] = dirs[n - 1 - i];
    dp_preprocess_stats st;
    CHECK(merge(merged, (const char *const *)rev, n, 0, &st, eb) == 0);
    CHECK(dp_test_same_dataset(whole, merged));
    CHECK(dp_preprocess_complete(merged));
    char *man = dp_path_join(merged, "shard.tsv");
    CHECK(access(man, F_OK) != 0); /* the merged dataset is not a shard */
    free(man);
    /* a rerun of the merge has nothing to do */
    CHECK(merge(merged, (const char *const *)rev, n, 0, &st, eb) == 0);
    CHECK_EQ_INT(st.up_to_date, 1);
    free_dirs(dirs, n);
    free(whole);
    free(merged);
}

static void test_corpus_three_shards(void)
{
    check_identical(CORPUS, CORPUS "/labels.tsv", "corpus", 3);
}

static void test_iscx_four_shards(void)
{
    const char *s = dp_test_shared("iscx-sample");
    if (!s)
        SKIP("../shared/data/iscx-sample not present");
    char *labels = dp_path_join(s, "labels.tsv");
    check_identical(s, access(labels, R_OK) == 0 ? labels : NULL, "iscx", 4);
    free(labels);
}

/* The FNV-1a 64 of the spec, written out independently of dp_fnv1a. */
static uint64_t fnv(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* A shard's files.tsv lists exactly the corpus captures of its hash. */
static void test_shard_membership(void)
{
    char *dirs[5];
    if (make_shards(CORPUS, CORPUS "/labels.tsv", "member", 5, dirs) != 0) {
        CHECK(0);
        return;
    }
    size_t total = 0;
    for (unsigned i = 0; i < 5; i++) {
        char *ft = dp_path_join(dirs[i], "files.tsv");
        char *text = dp_read_file(ft, NULL, NULL);
        CHECK(text != NULL);
        char *save = NULL;
        for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
            if (!strncmp(line, "index\t", 6))
                continue;
            char *path = strchr(line, '\t') + 1;
            *strchr(path, '\t') = 0;
            if (fnv(path) % 5 != i)
                fprintf(stderr, "  %s in shard %u, hashes to %u\n", path, i, (unsigned)(fnv(path) % 5));
            CHECK(fnv(path) % 5 == i);
            total++;
        }
        free(text);
        free(ft);
    }
    CHECK_EQ_INT(total, 88); /* every capture of the corpus in one shard */
    free_dirs(dirs, 5);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char eb[DP_ERRBUF_SIZE], *p = dp_path_join(dir, name);
    CHECK(dp_write_file_atomic(p, text, strlen(text), eb) == 0);
    free(p);
}

/* A small folder in 8 shards: most are empty datasets, and still merge. */
static void test_empty_shards(void)
{
    char *src = tmp("few"), eb[DP_ERRBUF_SIZE];
    CHECK(mkdir(src, 0777) == 0);
    const char *caps[] = {"chat_01.pcap", "voip_01.pcap", "README.md"};
    for (int i = 0; i < 3; i++) {
        char *from = dp_path_join(CORPUS, caps[i]), *to = dp_path_join(src, caps[i]);
        size_t n;
        char *b = dp_read_file(from, &n, eb);
        CHECK(b && dp_write_file_atomic(to, b, n, eb) == 0);
        free(b);
        free(from);
        free(to);
    }
    char *dirs[8];
    CHECK(make_shards(src, CORPUS "/labels.tsv", "few-s", 8, dirs) == 0);
    int empty = 0;
    for (int i = 0; i < 8; i++) {
        dp_dataset d;
        CHECK(dp_dataset_open(&d, dirs[i], eb) == 0);
        empty += d.n == 0;
        dp_dataset_close(&d);
    }
    CHECK(empty >= 6);
    char *whole = tmp("few-whole"), *merged = tmp("few-merged");
    CHECK(pp(src, whole, CORPUS "/labels.tsv", 0, 0, eb) == 0);
    CHECK(merge(merged, (const char *const *)dirs, 8, 0, NULL, eb) == 0);
    CHECK(dp_test_same_dataset(whole, merged));
    free_dirs(dirs, 8);
    free(whole);
    free(merged);
    free(src);
    /* a folder without any capture: every shard is an empty dataset, and
     * the merge refuses, as preprocess of the whole folder does */
    char *none = tmp("none");
    CHECK(mkdir(none, 0777) == 0);
    write_text(none, "README.md", "no capture here\n");
    char *nd[2];
    CHECK(make_shards(none, CORPUS "/labels.tsv", "none-s", 2, nd) == 0);
    char *nm = tmp("none-merged");
    CHECK(merge(nm, (const char *const *)nd, 2, 0, NULL, eb) != 0);
    CHECK_STR_CONTAINS(eb, "no capture files (pcap or pcapng) in any shard");
    CHECK(pp(none, nm, CORPUS "/labels.tsv", 0, 0, eb) != 0);
    CHECK_STR_CONTAINS(eb, "no capture files");
    free_dirs(nd, 2);
    free(nm);
    free(none);
}

/* A merge stopped (as if killed) after 10 captures leaves no complete
 * dataset; the rerun goes on from the journal, with the same result. */
static void test_merge_resume(void)
{
    char *dirs[3], eb[DP_ERRBUF_SIZE];
    CHECK(make_shards(CORPUS, CORPUS "/labels.tsv", "res-s", 3, dirs) == 0);
    char *whole = tmp("res-whole"), *merged = tmp("res-merged");
    CHECK(pp(CORPUS, whole, CORPUS "/labels.tsv", 0, 0, eb) == 0);
    dp_preprocess_stats st;
    CHECK(merge(merged, (const char *const *)dirs, 3, 10, &st, eb) == 0);
    CHECK_EQ_INT(st.interrupted, 1);
    CHECK(!dp_preprocess_complete(merged));
    CHECK(merge(merged, (const char *const *)dirs, 3, 0, &st, eb) == 0);
    CHECK_EQ_INT(st.reused, 10);
    CHECK_EQ_INT(st.processed, 78);
    CHECK(dp_test_same_dataset(whole, merged));
    char *parts = dp_path_join(merged, ".parts");
    CHECK(access(parts, F_OK) != 0);
    free(parts);
    free_dirs(dirs, 3);
    free(whole);
    free(merged);
}

/* merge must fail with a message containing want (and leave no dataset). */
static void expect_refused(const char *const *dirs, size_t n, const char *want)
{
    char eb[DP_ERRBUF_SIZE] = "", *t = tmp("refused");
    CHECK(merge(t, dirs, n, 0, NULL, eb) != 0);
    CHECK_STR_CONTAINS(eb, want);
    CHECK(!dp_preprocess_complete(t));
    free(t);
}


/* Copies the corpus files names[0..n) into the folder dir (made). */
static void copy_corpus(const char *dir, const char *const *names, int n)
{
    char eb[DP_ERRBUF_SIZE];
    CHECK(mkdir(dir, 0777) == 0 || errno == EEXIST);
    for (int i = 0; i < n; i++) {
        char *from = dp_path_join(CORPUS, names[i]), *to = dp_path_join(dir, names[i]);
        size_t len;
        char *b = dp_read_file(from, &len, eb);
        CHECK(b && dp_write_file_atomic(to, b, len, eb) == 0);
        free(b), free(from), free(to);
    }
}

/* Shards made from two states of the folder (a capture added and one
 * removed between the runs of shard 0 and shard 1) are refused, naming
 * both; before, the merge exited 0 with a dataset of neither state (the
 * removed capture from shard 0's run, without the added one). Shard 0 made
 * again merges as one run of the new state. A shard without a listing line
 * (another version's) beside one with is refused. */
static void test_shards_of_two_states(void)
{
    char *src = tmp("states"), eb[DP_ERRBUF_SIZE];
    const char *caps[] = {"chat_01.pcap", "voip_01.pcap", "README.md", "chat_02.pcap"};
    copy_corpus(src, caps, 3);
    char *dirs[2];
    CHECK(make_shards(src, CORPUS "/labels.tsv", "states-s", 2, dirs) == 0);
    copy_corpus(src, caps + 3, 1);
    char *gone = dp_path_join(src, "voip_01.pcap");
    CHECK(unlink(gone) == 0);
    CHECK(pp(src, dirs[1], CORPUS "/labels.tsv", 1, 2, eb) == 0);
    expect_refused((const char *const *)dirs, 2, "different states of the capture folder");
    expect_refused((const char *const *)dirs, 2, "holding 3 files");
    CHECK(pp(src, dirs[0], CORPUS "/labels.tsv", 0, 2, eb) == 0);
    char *whole = tmp("states-whole"), *merged = tmp("states-merged");
    CHECK(pp(src, whole, CORPUS "/labels.tsv", 0, 0, eb) == 0);
    CHECK(merge(merged, (const char *const *)dirs, 2, 0, NULL, eb) == 0);
    CHECK(dp_test_same_dataset(whole, merged));
    /* a manifest without the listing line, as before it was written */
    char *mp = dp_path_join(dirs[0], "shard.tsv"), *text = dp_read_file(mp, NULL, eb);
    char *line = text ? strstr(text, "\nlisting\t") : NULL;
    CHECK(line != NULL);
    if (line) {
        memmove(line + 1, strchr(line + 1, '\n') + 1, strlen(strchr(line + 1, '\n') + 1) + 1);
        write_text(dirs[0], "shard.tsv", text);
        expect_refused((const char *const *)dirs, 2, "different versions of deeppacket");
    }
    free(text), free(mp);
    free(gone), free(whole), free(merged), free(src);
    free_dirs(dirs, 2);
}

/* The manifest text with the kept counts of its first two capture lines
 * that keep packets moved by +1 and -1 (the total unchanged); malloc'd,
 * NULL when it has no two such lines. */
static char *shift_kept(const char *text)
{
    size_t o = 0;
    char *out = malloc(strlen(text) + 64);
    int moved = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        unsigned long long size, frames, kept;
        long long mtime;
        int unr, pre = 0;
        if (moved < 2 &&
            sscanf(p, "file\t1\t%d\t%llu\t%lld\t%llu\t%n%llu", &unr, &size, &mtime, &frames, &pre, &kept) == 5 &&
            kept > 0) {
            const char *after = strchr(p + pre, '\t');
            o += (size_t)sprintf(out + o, "%.*s%llu", pre, p, moved ? kept - 1 : kept + 1);
            len -= (size_t)(after - p);
            p = after;
            moved++;
        }
        memcpy(out + o, p, len);
        o += len;
        p += len;
    }
    out[o] = 0;
    if (moved < 2) {
        free(out);
        return NULL;
    }
    return out;
}

static void test_bad_shard_sets(void)
{
    char *d3[3], *d2[2], eb[DP_ERRBUF_SIZE];
    CHECK(make_shards(CORPUS, CORPUS "/labels.tsv", "bad3-", 3, d3) == 0);
    CHECK(make_shards(CORPUS, CORPUS "/labels.tsv", "bad2-", 2, d2) == 0);
    const char *missing[] = {d3[0], d3[2]};
    expect_refused(missing, 2, "shard 1/3 is missing");
    const char *twice[] = {d3[0], d3[1], d3[1]};
    expect_refused(twice, 3, "are both shard 1/3 (overlapping shards)");
    const char *counts[] = {d3[0], d3[1], d2[1]};
    expect_refused(counts, 3, "different shard counts");
    /* the same shard under a second name, made with another label table */
    char *other = tmp("bad-labels");
    char *lt = tmp("labels-other.tsv");
    size_t n;
    char *text = dp_read_file(CORPUS "/labels.tsv", &n, eb);
    CHECK(text && dp_write_file_atomic(lt, text, n, eb) == 0);
    FILE *f = fopen(lt, "a");
    CHECK(f && fputs("zzz\t0\tChat\t0\tChat\n", f) >= 0 && fclose(f) == 0);
    free(text);
    CHECK(pp(CORPUS, other, lt, 1, 3, eb) == 0);
    const char *labels[] = {d3[0], other, d3[2]};
    expect_refused(labels, 3, "different label tables");
    /* a dataset made without --shard */
    char *plain = tmp("bad-plain");
    CHECK(pp(CORPUS, plain, CORPUS "/labels.tsv", 0, 0, eb) == 0);
    const char *noshard[] = {plain};
    expect_refused(noshard, 1, "not a shard dataset (no shard.tsv");
    /* an unfinished shard */
    char *sj = dp_path_join(d2[0], "summary.json");
    char *keep = dp_read_file(sj, &n, eb);
    CHECK(unlink(sj) == 0);
    const char *unfinished[] = {d2[0], d2[1]};
    expect_refused(unfinished, 2, "not a complete dataset");
    CHECK(keep && dp_write_file_atomic(sj, keep, n, eb) == 0);
    /* a shard whose manifest and labels read but whose arrays do not: what
     * was read is dropped (make asan) */
    char *app = dp_path_join(d2[0], "app.npy");
    char *app_keep = dp_read_file(app, &n, eb);
    write_text(d2[0], "app.npy", "not an npy file\n");
    expect_refused(unfinished, 2, "app.npy");
    CHECK(app_keep && dp_write_file_atomic(app, app_keep, n, eb) == 0);
    free(app_keep), free(app);
    /* the target is one of the shards */
    CHECK(merge(d2[1], (const char *const *)d2, 2, 0, NULL, eb) != 0);
    CHECK_STR_CONTAINS(eb, "the target is the shard folder");
    /* a manifest that counts more rows than the arrays hold */
    char *man = dp_path_join(d3[2], "shard.tsv");
    char *mt = dp_read_file(man, &n, eb);
    CHECK(mt != NULL);
    char *line = mt ? strstr(mt, "\nfile\t1\t") : NULL; /* the first capture's line */
    CHECK(line != NULL);
    if (line) {
        char *kept = line + 1;
        for (int tab = 0; tab < 6; tab++)
            kept = strchr(kept, '\t') + 1; /* file cap unr size mtime frames -> kept */
        char fixed[1 << 16];
        snprintf(fixed, sizeof fixed, "%.*s9%s", (int)(kept - mt), mt, kept);
        write_text(d3[2], "shard.tsv", fixed);
        const char *rows[] = {d3[0], d3[1], d3[2]};
        expect_refused(rows, 3, "counts");
        /* the same total, one row moved from a capture to the one before it */
        char *shifted = shift_kept(mt);
        CHECK(shifted != NULL);
        if (shifted) {
            write_text(d3[2], "shard.tsv", shifted);
            expect_refused(rows, 3, "belongs to capture");
        }
        free(shifted);
        write_text(d3[2], "shard.tsv", "deeppacket-shard-1\t2\t3\tfnv1a64\nsource\tx\nfile\tbroken\n");
        expect_refused(rows, 3, "line 3: malformed shard manifest");
    }
    /* a plain rerun into a shard's folder drops its manifest */
    CHECK(pp(CORPUS, d3[1], CORPUS "/labels.tsv", 0, 0, eb) == 0);
    char *m1 = dp_path_join(d3[1], "shard.tsv");
    CHECK(access(m1, F_OK) != 0);
    free(m1);
    free(mt);
    free(man);
    free(keep);
    free(sj);
    free(plain);
    free(other);
    free(lt);
    free_dirs(d3, 3);
    free_dirs(d2, 2);
}

/* Manifests that are not what preprocess --shard writes: each refused
 * with the file and line named, none read out of bounds (make asan). */
static void test_bad_manifests(void)
{
    char *d[2];
    if (make_shards(CORPUS, CORPUS "/labels.tsv", "man-", 2, d) != 0) {
        CHECK(0);
        return;
    }
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "line 1"},
        {"deeppacket-shard-1\t0\t2\tfnv1a64\n", "line 2"},                 /* no source */
        {"deeppacket-shard-2\t0\t2\tfnv1a64\nsource\tx\nend\t0\n", "line 1"}, /* other format */
        {"deeppacket-shard-1\t0\t2\tmd5\nsource\tx\nend\t0\n", "line 1"},
        {"deeppacket-shard-1\t2\t2\tfnv1a64\nsource\tx\nend\t0\n", "line 1"},  /* I >= N */
        {"deeppacket-shard-1\t0\t65537\tfnv1a64\nsource\tx\nend\t0\n", "line 1"},
        {"deeppacket-shard-1\t0\t-2\tfnv1a64\nsource\tx\nend\t0\n", "line 1"},
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx%0\nend\t0\n", "line 2"}, /* cut escape */
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx%00y\nend\t0\n", "line 2"}, /* NUL escape */
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx\n", "line 3"},           /* no end line */
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx\nlisting\t1\t0123\nend\t0\n", "line 3"}, /* short hash */
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx\nlisting\t1\t0123456789ABCDEF\nend\t0\n", "line 3"},
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx\nlisting\t1\t0123456789abcdef\n"
         "listing\t1\t0123456789abcdef\nend\t0\n", "line 4"}, /* twice */
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx\nend\t1\n", "line 3"},  /* count */
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx\nend\t0\nmore\n", "line 3"},
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx\nfile\t1\t0\t1\t2\t3\t4\t0,0,0,0,0\t\ta\nend\t1\n",
         "line 3"}, /* five skip counters */
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx\nfile\t2\t0\t1\t2\t3\t4\t0,0,0,0,0,0\t\ta\nend\t1\n",
         "line 3"}, /* capture flag 2 */
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx\nfile\t1\t0\t1\t2\t3\t4\t0,0,0,0,0,0\t\t\nend\t1\n",
         "line 3"}, /* empty path */
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx\nfile\t1\t0\t+1\t2\t3\t4\t0,0,0,0,0,0\t\ta\nend\t1\n",
         "line 3"}, /* signed size */
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx\nfile\t1\t0\t99999999999999999999\t2\t3\t4\t0,0,0,0,0,0\t\ta\nend\t1\n",
         "line 3"}, /* over 2^64 */
        {"deeppacket-shard-1\t0\t2\tfnv1a64\nsource\tx\nfile\t1\t0\t1\t2\t3\t4\t0,0,0,0,0,0\t\ta\textra\nend\t1\n",
         "line 3"},
    };
    const char *pair[] = {d[0], d[1]};
    char eb[DP_ERRBUF_SIZE] = "", *t = tmp("man-target");
    /* well-formed, but the kept counts wrap: two captures' counts raised
     * by 2^63 sum to the true count modulo 2^64 (the rows past the end of
     * the mapped arrays were then read) */
    char *mp = dp_path_join(d[0], "shard.tsv"), *text = dp_read_file(mp, NULL, eb), out[65536];
    CHECK(text != NULL);
    size_t o = 0, files = 0;
    for (char *line = text, *nl; text && *line && o < sizeof out - 512; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = 0;
        char *f[8];
        int nf = 0;
        for (char *p = line; nf < 8; p = strchr(p, '\t') + 1) {
            f[nf++] = p;
            if (!strchr(p, '\t'))
                break;
        }
        unsigned long long kept = nf == 8 ? strtoull(f[6], NULL, 10) : 0;
        if (!strncmp(line, "file\t1\t", 7) && kept > 0 && files++ < 2)
            o += (size_t)snprintf(out + o, sizeof out - o, "%.*s%llu%s\n", (int)(f[6] - line), line,
                                  kept + (1ULL << 63), f[7] - 1);
        else
            o += (size_t)snprintf(out + o, sizeof out - o, "%s\n", line);
    }
    CHECK(files > 1);
    write_text(d[0], "shard.tsv", out);
    CHECK(merge(t, pair, 2, 0, NULL, eb) != 0);
    CHECK_STR_CONTAINS(eb, "counts more kept packets (up to ");
    free(text), free(mp);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(d[0], "shard.tsv", bad[i].text);
        eb[0] = 0;
        CHECK(merge(t, pair, 2, 0, NULL, eb) != 0);
        CHECK_STR_CONTAINS(eb, "malformed shard manifest");
        CHECK_STR_CONTAINS(eb, bad[i].want);
    }
    free(t);
    free_dirs(d, 2);
}

static void collect(void *ctx, const char *file, const char *msg, int is_note)
{
    char *buf = ctx;
    size_t n = strlen(buf);
    snprintf(buf + n, 4096 - n, "%s: %s: %s\n", is_note ? "note" : "warning", file, msg);
}

/* Shards made from the folder under two paths: merged as one, with a
 * warning naming both, and the merged dataset names shard 0's. */
static void test_source_paths_differ(void)
{
    char eb[DP_ERRBUF_SIZE], *link = tmp("corpus-link"), *cwd = getcwd(NULL, 0);
    char *target = cwd ? dp_path_join(cwd, CORPUS) : NULL;
    CHECK(target && symlink(target, link) == 0);
    char *s0 = tmp("paths-s0"), *s1 = tmp("paths-s1"), *whole = tmp("paths-whole"), *m = tmp("paths-m");
    CHECK(pp(CORPUS, s0, CORPUS "/labels.tsv", 0, 2, eb) == 0);
    CHECK(pp(link, s1, CORPUS "/labels.tsv", 1, 2, eb) == 0);
    CHECK(pp(CORPUS, whole, CORPUS "/labels.tsv", 0, 0, eb) == 0);
    char warnings[4096] = "";
    dp_merge_opts o;
    memset(&o, 0, sizeof o);
    const char *dirs[] = {s0, s1};
    o.dst_dir = m;
    o.shard_dirs = dirs;
    o.nshards = 2;
    o.warn = collect;
    o.warn_ctx = warnings;
    CHECK(dp_merge_run(&o, NULL, eb) == 0);
    CHECK_STR_CONTAINS(warnings, "made from the capture folder");
    CHECK_STR_CONTAINS(warnings, link);
    CHECK(dp_test_same_dataset(whole, m));
    free(target);
    free(cwd);
    free(link);
    free(s0);
    free(s1);
    free(whole);
    free(m);
}

static int sh(const char *cmd)
{
    char out[4096];
    return dp_test_sh(cmd, out, sizeof out);
}

static void test_cli(void)
{
    const char *bin = dp_test_cli();
    char cmd[4096];
    if (!bin)
        SKIP("deeppacket not built");
    const char *d = dp_test_tmpdir();
    const char *bad[] = {"3/3", "1", "a/2", "0/0", "-1/2", "1/2x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s preprocess -q -s %s -t %s/cli --shard %s 2>/dev/null", bin, CORPUS, d, bad[i]);
        CHECK_EQ_INT(sh(cmd), 2);
    }
    snprintf(cmd, sizeof cmd, "%s merge -t %s/cli-m 2>/dev/null", bin, d);
    CHECK_EQ_INT(sh(cmd), 2);
    snprintf(cmd, sizeof cmd, "%s merge %s/x 2>/dev/null", bin, d);
    CHECK_EQ_INT(sh(cmd), 2);
    snprintf(cmd, sizeof cmd, "%s preprocess -q -s %s -t %s/cli-0 --shard 0/2 >/dev/null 2>&1 && "
             "%s merge -q -t %s/cli-m %s/cli-0 2>%s/cli.err", bin, CORPUS, d, bin, d, d, d);
    CHECK_EQ_INT(sh(cmd), 1);
    snprintf(cmd, sizeof cmd, "%s/cli.err", d);
    char *err = dp_read_file(cmd, NULL, NULL);
    CHECK_STR_CONTAINS(err, "deeppacket merge: shard 1/2 is missing");
    free(err);
}

int main(void)
{
    dp_test_prog = "test_shard";
    DP_RUN(test_corpus_three_shards);
    DP_RUN(test_iscx_four_shards);
    DP_RUN(test_shard_membership);
    DP_RUN(test_empty_shards);
    DP_RUN(test_merge_resume);
    DP_RUN(test_bad_shard_sets);
    DP_RUN(test_bad_manifests);
    DP_RUN(test_shards_of_two_states);
    DP_RUN(test_source_paths_differ);
    DP_RUN(test_cli);
    return dp_test_end();
}
