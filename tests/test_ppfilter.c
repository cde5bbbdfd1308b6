/* Tests of preprocess --filter (a BPF filter over every capture's frames)
 * on the repository's corpus: the filtered dataset is exactly the rows of
 * the unfiltered one that the filter names (same vectors, labels and meta,
 * frame numbers included), whatever the threads, splitting and spilling;
 * the filter is part of the dataset's identity (a rerun, a resumed journal
 * or part file of another filter is not reused); shards merge only with
 * the same filter; a bad filter stops the run, one a capture's link type
 * cannot match is a warning for that capture. The label table's filter
 * column: each capture filtered by its row's filter (and --filter), parts
 * keyed by it, a bad one refused by name. */
#include "dp_test.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/dp_capture.h"
#include "dataset/dp_dataset.h"
#include "dataset/dp_merge.h"
#include "dataset/dp_pp_knobs.h"
#include "dataset/dp_preprocess.h"
#include "util/dp_util.h"

#define CORPUS "data/corpus"
#define LABELS CORPUS "/labels.tsv"

typedef struct warns {
    int n;
    char text[4096];
} warns;

static void collect(void *ctx, const char *file, const char *msg, int is_note)
{
    warns *w = ctx;
    if (!w || is_note)
        return;
    w->n++;
    size_t len = strlen(w->text);
    snprintf(w->text + len, sizeof w->text - len, "%s: %s\n", file, msg);
}

/* One run's settings beyond source and target. */
typedef struct ppargs {
    const char *filter;
    const char *labels;   /* NULL: the corpus's */
    int threads;          /* 0: 2 */
    unsigned shard_index, shard_count;
    dp_pp_knobs k;
    warns *w;
    FILE *dry;            /* --dry-run's listing */
} ppargs;

static int pp(const char *src, const char *dst, const ppargs *a, dp_preprocess_stats *st, char *eb)
{
    dp_preprocess_opts o;
    dp_preprocess_opts_init(&o);
    o.src_dir = src;
    o.dst_dir = dst;
    o.labels_path = a->labels ? a->labels : LABELS;
    o.threads = a->threads ? a->threads : 2;
    o.progress = 0;
    o.filter = a->filter;
    o.shard_index = a->shard_index;
    o.shard_count = a->shard_count;
    o.warn = collect;
    o.warn_ctx = a->w;
    o.dry_run = a->dry;
    return dp_preprocess_run_knobs(&o, &a->k, st, eb);
}

static char *tmp(const char *name)
{
    return dp_path_join(dp_test_tmpdir(), name);
}

/* Writes DIR/chat_99.pcap: the frames of a TCP capture and of a UDP
 * capture of the corpus, taken in turn, so that a filter leaves out frames
 * between the ones it keeps. */
static void write_mixed_capture(const char *dir)
{
    char eb[DP_ERRBUF_SIZE];
    char *path = dp_path_join(dir, "chat_99.pcap");
    dp_capture *in[2] = {dp_capture_open_file(CORPUS "/chat_01.pcap", eb),
                         dp_capture_open_file(CORPUS "/voip_01.pcap", eb)};
    dp_dumper *d = in[0] && in[1] ? dp_dumper_open(path, dp_capture_linktype(in[0]), 65535, eb) : NULL;
    CHECK(d != NULL);
    while (d && (in[0] || in[1]))
        for (int k = 0; k < 2; k++) {
            dp_frame f;
            if (in[k] && dp_capture_next(in[k], &f, eb) == DP_NEXT_FRAME) {
                CHECK_EQ_INT(dp_dumper_write(d, &f, eb), 0);
            } else if (in[k]) {
                dp_capture_close(in[k]);
                in[k] = NULL;
            }
        }
    CHECK(d && dp_dumper_close(d, 1, eb) == 0);
    free(path);
}

/* The corpus and a capture of TCP and UDP frames in turn (made once). */
static const char *source(void)
{
    static char *dir;
    if (!dir) {
        char cmd[2048];
        dir = tmp("src");
        snprintf(cmd, sizeof cmd, "cp -r " CORPUS " %s", dir);
        CHECK_EQ_INT(dp_test_system(cmd), 0);
        write_mixed_capture(dir);
    }
    return dir;
}

/* The whole source without a filter (made once, shared by the tests). */
static const char *unfiltered(dp_preprocess_stats *st_out)
{
    static char *dir;
    static dp_preprocess_stats st;
    char eb[DP_ERRBUF_SIZE];
    if (!dir) {
        dir = tmp("whole");
        ppargs a = {0};
        if (pp(source(), dir, &a, &st, eb) != 0)
            fprintf(stderr, "  preprocess %s: %s\n", source(), eb);
    }
    if (st_out)
        *st_out = st;
    return dir;
}

static dp_meta meta_row(const dp_dataset *d, uint64_t i)
{
    dp_meta m;
    memcpy(&m, d->meta.data + i * sizeof m, sizeof m);
    return m;
}

/* Rows of `whole` that keep(meta) accepts must be `part`'s rows, in order,
 * byte for byte; returns the number that differ or are missing. */
static uint64_t rows_where(const char *whole, const char *part, int (*keep)(const dp_meta *, int), int arg)
{
    char eb[DP_ERRBUF_SIZE];
    dp_dataset a, b;
    if (dp_dataset_open(&a, whole, eb) != 0 || dp_dataset_open(&b, part, eb) != 0) {
        fprintf(stderr, "  %s\n", eb);
        return 1;
    }
    uint64_t j = 0, bad = 0;
    for (uint64_t i = 0; i < a.n; i++) {
        dp_meta ma = meta_row(&a, i), mb;
        if (!keep(&ma, arg))
            continue;
        if (j < b.n && (mb = meta_row(&b, j), !memcmp(&ma, &mb, sizeof ma)) &&
            !memcmp(dp_dataset_vector(&a, i), dp_dataset_vector(&b, j), DP_VEC_LEN) &&
            dp_dataset_label(&a, 0, i) == dp_dataset_label(&b, 0, j) &&
            dp_dataset_label(&a, 1, i) == dp_dataset_label(&b, 1, j))
            j++;
        else
            bad++, j += j < b.n;
    }
    bad += b.n - (j < b.n ? j : b.n);
    dp_dataset_close(&a);
    dp_dataset_close(&b);
    return bad;
}

static int keep_proto(const dp_meta *m, int proto)
{
    return m->proto == proto;
}

/* Rows of `whole` whose IP protocol is proto must be `part`'s rows, in
 * order, byte for byte (vector, labels, meta with its frame number);
 * returns the number of rows that differ or are missing. */
static uint64_t rows_of_proto(const char *whole, const char *part, int proto)
{
    return rows_where(whole, part, keep_proto, proto);
}

/* ---- the rows a filter keeps ------------------------------------------------------ */

static void test_rows_are_the_filters(void)
{
    dp_preprocess_stats all, st;
    const char *whole = unfiltered(&all);
    char eb[DP_ERRBUF_SIZE];
    struct { const char *filter; int proto; } cases[] = {{"udp", 17}, {"tcp", 6}};
    for (size_t c = 0; c < 2; c++) {
        char name[32];
        snprintf(name, sizeof name, "only-%s", cases[c].filter);
        char *dir = tmp(name);
        ppargs a = {.filter = cases[c].filter};
        CHECK_EQ_INT(pp(source(), dir, &a, &st, eb), 0);
        CHECK_EQ_INT(rows_of_proto(whole, dir, cases[c].proto), 0);
        CHECK(st.packets > 0 && st.packets < all.packets);
        CHECK_EQ_INT(st.frames, all.frames); /* every frame of the files, left out or not */
        uint64_t seen = st.packets + st.filtered;
        for (int v = 1; v < DP_VERDICT_COUNT; v++)
            seen += st.skipped[v];
        CHECK_EQ_INT(seen, st.frames);
        CHECK(st.filtered > 0);
        if (cases[c].proto == 17) /* no TCP frame reached the transform */
            CHECK_EQ_INT(st.skipped[DP_SKIP_EMPTY_TCP], 0);
        char *sj = dp_path_join(dir, "summary.json");
        char *text = dp_read_file(sj, NULL, eb);
        char want[64];
        snprintf(want, sizeof want, "\"filter\": \"%s\"", cases[c].filter);
        CHECK_STR_CONTAINS(text, want);
        snprintf(want, sizeof want, "\"filtered\": %llu", (unsigned long long)st.filtered);
        CHECK_STR_CONTAINS(text, want);
        free(text);
        free(sj);
        free(dir);
    }
    CHECK_EQ_INT(all.filtered, 0);
}

/* Threads, split captures and spilled parts change nothing. */
static void test_split_and_spilled(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    char *one = tmp("udp-j1"), *split = tmp("udp-split");
    ppargs a = {.filter = "udp", .threads = 1};
    CHECK_EQ_INT(pp(source(), one, &a, &st, eb), 0);
    ppargs b = {.filter = "udp", .k = {.split_bytes = 1, .chunk_bytes = 1}};
    size_t spilled = 0;
    /* spilling is a race with the merge (test_preprocess's test_spill_to_parts):
     * runs are repeated until one spills; each must give the same dataset */
    for (int tries = 0; tries < 10 && !spilled; tries++) {
        char *sj = dp_path_join(split, "summary.json");
        unlink(sj);
        free(sj);
        CHECK_EQ_INT(pp(source(), split, &b, &st, eb), 0);
        CHECK(st.split > 0);
        CHECK(dp_test_same_dataset(one, split));
        spilled += st.spilled;
    }
    CHECK(spilled > 0);
    free(one);
    free(split);
}

/* ---- the filter is part of the dataset ------------------------------------------ */

static void test_rerun_with_another_filter(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    char *dir = tmp("rerun"), *fresh_tcp = tmp("fresh-tcp");
    ppargs udp = {.filter = "udp"}, tcp = {.filter = "tcp"}, none = {0};
    CHECK_EQ_INT(pp(source(), dir, &udp, &st, eb), 0);
    CHECK_EQ_INT(pp(source(), dir, &udp, &st, eb), 0);
    CHECK_EQ_INT(st.up_to_date, 1);
    CHECK_EQ_INT(pp(source(), dir, &tcp, &st, eb), 0);
    CHECK_EQ_INT(st.up_to_date, 0);
    CHECK_EQ_INT(st.processed, st.captures);
    CHECK_EQ_INT(pp(source(), fresh_tcp, &tcp, &st, eb), 0);
    CHECK(dp_test_same_dataset(dir, fresh_tcp));
    CHECK_EQ_INT(pp(source(), dir, &none, &st, eb), 0); /* back to no filter: the whole corpus */
    CHECK_EQ_INT(st.up_to_date, 0);
    CHECK(dp_test_same_dataset(dir, unfiltered(NULL)));
    free(dir);
    free(fresh_tcp);
}

/* An interrupted run's journal is reused by a rerun with the same filter,
 * and not by one with another. */
static void test_journal_keyed_by_filter(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    char *same = tmp("resume-same"), *other = tmp("resume-other"), *ref = tmp("resume-ref");
    ppargs stop = {.filter = "udp", .k = {.stop_after = 2}};
    ppargs udp = {.filter = "udp"}, tcp = {.filter = "tcp"};
    CHECK_EQ_INT(pp(source(), ref, &tcp, &st, eb), 0);
    for (int k = 0; k < 2; k++) {
        char *dir = k ? other : same;
        CHECK_EQ_INT(pp(source(), dir, &stop, &st, eb), 0);
        CHECK_EQ_INT(st.interrupted, 1);
        CHECK_EQ_INT(pp(source(), dir, k ? &tcp : &udp, &st, eb), 0);
        CHECK_EQ_INT(st.reused, k ? 0 : 2);
    }
    CHECK(dp_test_same_dataset(other, ref));
    free(same);
    free(other);
    free(ref);
}

/* A run killed once a spilled capture's part file is whole (a child
 * process; spilling is a race with the merge, so it is tried until one
 * spills): 1 when dir now holds a part. */
static int killed_with_part(const char *dir, const char *filter)
{
    for (int tries = 0; tries < 20; tries++) {
        char eb[DP_ERRBUF_SIZE];
        pid_t pid = fork();
        if (pid == 0) {
            setenv("DP_TEST_KILL_AT", "pp-part:1", 1);
            ppargs a = {.filter = filter, .k = {.chunk_bytes = 1}};
            _exit(pp(source(), dir, &a, NULL, eb) == 0 ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            return dp_test_count_parts(dir, ".part") > 0;
        dp_remove_tree(dir);
    }
    return 0;
}

/* The part file of a killed run is reused with the same filter only. */
static void test_parts_keyed_by_filter(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    char *other = tmp("parts-other"), *same = tmp("parts-same"), *ref = tmp("parts-ref");
    ppargs tcp = {.filter = "tcp"};
    CHECK_EQ_INT(pp(source(), ref, &tcp, &st, eb), 0);
    CHECK(killed_with_part(other, "udp"));
    CHECK_EQ_INT(pp(source(), other, &tcp, &st, eb), 0);
    CHECK_EQ_INT(st.reused, 0);
    CHECK(dp_test_same_dataset(other, ref));
    CHECK(killed_with_part(same, "tcp"));
    int parts = dp_test_count_parts(same, ".part");
    CHECK_EQ_INT(pp(source(), same, &tcp, &st, eb), 0);
    CHECK(parts > 0 && st.reused >= (size_t)parts);
    CHECK(dp_test_same_dataset(same, ref));
    free(other);
    free(same);
    free(ref);
}

/* ---- bad filters ------------------------------------------------------------------ */

/* A filter that does not parse stops the run before anything is made. */
static void test_bad_syntax(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    char *dir = tmp("bad-syntax");
    ppargs a = {.filter = "udp and ("};
    CHECK_EQ_INT(pp(source(), dir, &a, &st, eb), -1);
    CHECK_STR_CONTAINS(eb, "bad filter \"udp and (\"");
    CHECK_STR_CONTAINS(eb, "syntax error");
    CHECK(access(dir, F_OK) != 0);
    free(dir);
}

/* Writes DIR/raw.pcap: one IPv4 UDP datagram in a raw-IP (101) capture. */
static void write_raw_capture(const char *dir)
{
    char eb[DP_ERRBUF_SIZE];
    char *path = dp_path_join(dir, "chat_raw.pcap");
    uint8_t ip[28 + 4] = {0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                          0x30, 0x39, 0x1f, 0x90, 0, 12, 0, 0, 'p', 'i', 'n', 'g'};
    dp_dumper *d = dp_dumper_open(path, 101, 65535, eb);
    CHECK(d != NULL);
    dp_frame f = {.data = ip, .caplen = sizeof ip, .wirelen = sizeof ip, .time = 1.0, .linktype = 101};
    CHECK(d && dp_dumper_write(d, &f, eb) == 0);
    CHECK(d && dp_dumper_close(d, 1, eb) == 0);
    free(path);
}

/* A filter that a capture's link type cannot match (Ethernet addresses on
 * raw IP) is a warning for that capture, which gives no rows; the
 * Ethernet captures are filtered as usual. */
static void test_filter_not_for_linktype(void)
{
    char eb[DP_ERRBUF_SIZE], cmd[2048];
    dp_preprocess_stats st;
    char *src = tmp("lt-src"), *dir = tmp("lt-ds");
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp " CORPUS "/chat_01.pcap " CORPUS "/voip_01.pcap %s", src, src);
    CHECK_EQ_INT(dp_test_system(cmd), 0);
    write_raw_capture(src);
    warns w = {0};
    ppargs a = {.filter = "udp or ether src 0:1:2:3:4:5", .w = &w};
    CHECK_EQ_INT(pp(src, dir, &a, &st, eb), 0);
    CHECK_EQ_INT(st.captures, 3);
    CHECK_EQ_INT(st.with_warnings, 1);
    CHECK_EQ_INT(w.n, 1);
    CHECK_STR_CONTAINS(w.text, "chat_raw.pcap: bad filter");
    CHECK_STR_CONTAINS(w.text, "link type RAW (101)");
    CHECK(st.packets > 0);
    ppargs udp = {.filter = "udp"};
    char *ref = tmp("lt-ref");
    dp_preprocess_stats rs;
    CHECK_EQ_INT(pp(src, ref, &udp, &rs, eb), 0); /* the raw capture's one datagram, and the rest */
    CHECK_EQ_INT(rs.packets, st.packets + 1);
    free(src);
    free(dir);
    free(ref);
}

/* ---- the label table's filters ------------------------------------------------------- */

/* Writes NAME (in the temp folder): the corpus's table with the filter
 * column and a row for chat_99 (Chat); every row gets filter `all`, and
 * chat_99's row `own` instead when that is set (NULL or "": an empty cell).
 * Returns its path (caller frees). */
static char *write_table(const char *name, const char *all, const char *own)
{
    char eb[DP_ERRBUF_SIZE];
    char *path = tmp(name), *text = dp_read_file(LABELS, NULL, eb);
    FILE *f = fopen(path, "w");
    CHECK(f && text);
    if (!f || !text)
        return free(text), path;
    fputs("prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\tfilter\n", f);
    for (char *line = strchr(text, '\n') + 1, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = 0;
        fprintf(f, "%s\t%s\n", line, all ? all : "");
    }
    fprintf(f, "chat_99\t\t\t0\tChat\t%s\n", own ? own : all ? all : "");
    fclose(f);
    free(text);
    return path;
}

/* chat_99.pcap's index in files.tsv (name order: chat_01..chat_11 first). */
#define CHAT99 11
static int keep_udp_or_not_chat99(const dp_meta *m, int unused)
{
    (void)unused;
    return m->file != CHAT99 || m->proto == 17;
}
static int keep_udp_not_chat99(const dp_meta *m, int unused)
{
    (void)unused;
    return m->file != CHAT99 && m->proto == 17;
}

/* Each capture is filtered by its own row's filter: "udp" on chat_99's row
 * leaves its TCP frames out and no other capture's; joined with --filter
 * ("(udp) and (tcp)": nothing of chat_99); the summary says so per file. */
static void test_label_row_filters(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st, ws;
    char *t0 = write_table("t0.tsv", NULL, NULL), *t1 = write_table("t1.tsv", NULL, "udp"),
         *t2 = write_table("t2.tsv", NULL, "tcp");
    char *whole = tmp("lf-whole"), *own = tmp("lf-own"), *both = tmp("lf-both");
    ppargs a0 = {.labels = t0}, a1 = {.labels = t1}, a2 = {.labels = t2, .filter = "udp"};
    CHECK_EQ_INT(pp(source(), whole, &a0, &ws, eb), 0);
    CHECK_EQ_INT(pp(source(), own, &a1, &st, eb), 0);
    CHECK_EQ_INT(rows_where(whole, own, keep_udp_or_not_chat99, 0), 0);
    CHECK(st.filtered > 0 && st.packets < ws.packets && st.frames == ws.frames);
    char *sj = dp_path_join(own, "summary.json"), *sm = dp_path_join(own, "summary.md");
    char *json = dp_read_file(sj, NULL, eb), *md = dp_read_file(sm, NULL, eb);
    CHECK_STR_CONTAINS(json, "\"path\": \"chat_99.pcap\", \"app\": -1, \"traffic\": 0");
    CHECK_STR_CONTAINS(json, "\"filter\": \"udp\", \"status\": \"ok\"");
    CHECK(strstr(json, "\n  \"filter\"") == NULL); /* no --filter */
    CHECK_STR_CONTAINS(md, "- label table rows with a filter: 1\n");
    CHECK_STR_CONTAINS(md, "| filtered (label table) | ");
    CHECK_EQ_INT(pp(source(), both, &a2, &st, eb), 0);
    CHECK_EQ_INT(rows_where(whole, both, keep_udp_not_chat99, 0), 0);
    free(json);
    free(sj);
    sj = dp_path_join(both, "summary.json");
    json = dp_read_file(sj, NULL, eb);
    CHECK_STR_CONTAINS(json, "\"filter\": \"(udp) and (tcp)\"");
    free(json), free(md), free(sj), free(sm);
    free(t0), free(t1), free(t2), free(whole), free(own), free(both);
}

/* A killed run's part files are keyed by each capture's own filter: after
 * a run with "udp" on every row is killed, a rerun without filters reads
 * every capture again (nothing reused), and gives the unfiltered rows. */
static void test_parts_keyed_by_row_filter(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    char *t0 = write_table("p0.tsv", NULL, NULL), *tu = write_table("pu.tsv", "udp", NULL);
    char *ref = tmp("lp-ref"), *dir = tmp("lp-dir");
    ppargs a0 = {.labels = t0};
    CHECK_EQ_INT(pp(source(), ref, &a0, &st, eb), 0);
    int parts = 0;
    for (int tries = 0; tries < 20 && !parts; tries++) {
        pid_t pid = fork();
        if (pid == 0) {
            setenv("DP_TEST_KILL_AT", "pp-part:1", 1);
            ppargs a = {.labels = tu, .k = {.chunk_bytes = 1}};
            _exit(pp(source(), dir, &a, NULL, eb) == 0 ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && (parts = dp_test_count_parts(dir, ".part")) > 0)
            break;
        dp_remove_tree(dir);
    }
    CHECK(parts > 0);
    CHECK_EQ_INT(pp(source(), dir, &a0, &st, eb), 0);
    CHECK_EQ_INT(st.reused, 0);
    CHECK(dp_test_same_dataset(dir, ref));
    free(t0), free(tu), free(ref), free(dir);
}

/* A row filter that does not parse stops the run before anything is made,
 * naming the table and the row's prefix. */
static void test_bad_row_filter(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_preprocess_stats st;
    char *t = write_table("bad.tsv", NULL, "udp and ("), *dir = tmp("lf-bad");
    ppargs a = {.labels = t};
    CHECK_EQ_INT(pp(source(), dir, &a, &st, eb), -1);
    CHECK_STR_CONTAINS(eb, "bad.tsv: the filter of 'chat_99': bad filter \"udp and (\"");
    CHECK(access(dir, F_OK) != 0);
    /* a NUL byte in the table: refused, naming its line (the parser stopped
     * there, and every row after it was silently left unlabelled) */
    char *nt = tmp("nul.tsv");
    FILE *f = fopen(nt, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\nchat_01\t\t\t0\tChat", f);
        fputc(0, f);
        fputs("\nchat_02\t\t\t0\tChat\n", f);
        fclose(f);
    }
    ppargs c = {.labels = nt};
    CHECK_EQ_INT(pp(source(), dir, &c, &st, eb), -1);
    CHECK_STR_CONTAINS(eb, "nul.tsv:2: a NUL byte");
    CHECK(access(dir, F_OK) != 0);
    free(t), free(dir), free(nt);
}

/* --dry-run lists every capture with its classes and filter (the joined
 * one), checks the filters, and creates nothing. */
static void test_dry_run(void)
{
    char eb[DP_ERRBUF_SIZE], *text = NULL;
    size_t len = 0;
    dp_preprocess_stats st;
    char *t = write_table("dry.tsv", NULL, "udp"), *dir = tmp("dry-target"), *bad = write_table("dry-bad.tsv", NULL, "(");
    FILE *f = open_memstream(&text, &len);
    ppargs a = {.labels = t, .filter = "ip", .dry = f};
    CHECK_EQ_INT(pp(source(), dir, &a, &st, eb), 0);
    fclose(f);
    CHECK(access(dir, F_OK) != 0);
    CHECK_STR_CONTAINS(text, "| capture | app | traffic | filter |\n");
    CHECK_STR_CONTAINS(text, "| chat_99.pcap | - | Chat | (ip) and (udp) |\n");
    CHECK_STR_CONTAINS(text, "| scpup_01.pcap | SCP | File Transfer | ip |\n");
    char want[128];
    snprintf(want, sizeof want, "\n%zu captures (", st.captures);
    CHECK_STR_CONTAINS(text, want);
    CHECK_STR_CONTAINS(text, "with an app label, 89 with a traffic label, 89 with a filter; 2 other files\n");
    free(text);
    f = open_memstream(&text, &len);
    ppargs b = {.labels = bad, .dry = f};
    CHECK_EQ_INT(pp(source(), NULL, &b, &st, eb), -1);
    CHECK_STR_CONTAINS(eb, "dry-bad.tsv: the filter of 'chat_99': bad filter");
    fclose(f);
    free(text), free(t), free(bad), free(dir);
}

/* ---- shards ----------------------------------------------------------------------- */

static int merge2(const char *dst, const char *s0, const char *s1, char *eb)
{
    const char *dirs[2] = {s0, s1};
    dp_merge_opts o;
    memset(&o, 0, sizeof o);
    o.dst_dir = dst;
    o.shard_dirs = dirs;
    o.nshards = 2;
    return dp_merge_run(&o, NULL, eb);
}

/* Shards of one filtered run merge into that run's dataset; shards of
 * different filters (or one without) are refused. */
static void test_shards(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *whole = tmp("sh-whole"), *s[2], *t[2], *n1 = tmp("sh-none1"), *merged = tmp("sh-merged");
    ppargs udp = {.filter = "udp"};
    CHECK_EQ_INT(pp(source(), whole, &udp, NULL, eb), 0);
    for (unsigned i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "sh-udp%u", i);
        s[i] = tmp(name);
        snprintf(name, sizeof name, "sh-tcp%u", i);
        t[i] = tmp(name);
        ppargs a = {.filter = "udp", .shard_index = i, .shard_count = 2};
        CHECK_EQ_INT(pp(source(), s[i], &a, NULL, eb), 0);
        a.filter = "tcp";
        CHECK_EQ_INT(pp(source(), t[i], &a, NULL, eb), 0);
    }
    ppargs none = {.shard_index = 1, .shard_count = 2};
    CHECK_EQ_INT(pp(source(), n1, &none, NULL, eb), 0);
    CHECK_EQ_INT(merge2(merged, s[1], s[0], eb), 0);
    CHECK(dp_test_same_dataset(whole, merged));
    char *bad = tmp("sh-bad");
    CHECK_EQ_INT(merge2(bad, s[0], t[1], eb), -1);
    CHECK_STR_CONTAINS(eb, "made with --filter 'tcp'");
    CHECK_STR_CONTAINS(eb, "shards made with different filters");
    CHECK_EQ_INT(merge2(bad, s[0], n1, eb), -1);
    CHECK_STR_CONTAINS(eb, "made with no filter");
    CHECK(!dp_preprocess_complete(bad));
    for (int i = 0; i < 2; i++) {
        free(s[i]);
        free(t[i]);
    }
    free(whole);
    free(n1);
    free(merged);
    free(bad);
}

/* Shards of a run whose label table has filters merge into that run's
 * dataset, byte for byte (summaries included). */
static void test_shards_with_row_filters(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *t = write_table("sh.tsv", NULL, "udp"), *whole = tmp("shf-whole"), *merged = tmp("shf-merged"), *s[2];
    ppargs a = {.labels = t, .filter = "udp or tcp"};
    CHECK_EQ_INT(pp(source(), whole, &a, NULL, eb), 0);
    a.shard_count = 2;
    for (unsigned i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "shf-%u", i);
        s[i] = tmp(name);
        a.shard_index = i;
        CHECK_EQ_INT(pp(source(), s[i], &a, NULL, eb), 0);
    }
    CHECK_EQ_INT(merge2(merged, s[0], s[1], eb), 0);
    CHECK(dp_test_same_dataset(whole, merged));
    free(t), free(whole), free(merged), free(s[0]), free(s[1]);
}

/* ---- the command ------------------------------------------------------------------ */

static void test_cli(void)
{
    const char *bin = dp_test_cli();
    if (!bin)
        SKIP("deeppacket not built");
    char cmd[4096], out[4096];
    const char *d = dp_test_tmpdir();
    snprintf(cmd, sizeof cmd, "%s preprocess -q -s " CORPUS " -t %s/cli -f '' 2>&1", bin, d);
    CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 2);
    CHECK_STR_CONTAINS(out, "--filter wants a filter expression");
    snprintf(cmd, sizeof cmd, "%s preprocess -q -s " CORPUS " -t %s/cli --filter 'port 99999' 2>&1", bin, d);
    CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 1);
    CHECK_STR_CONTAINS(out, "deeppacket preprocess: bad filter \"port 99999\"");
    snprintf(cmd, sizeof cmd, "%s preprocess -q -s " CORPUS " -t %s/cli --labels " LABELS " -f udp 2>&1 && "
             "grep -c '^| filtered (--filter) | [1-9]' %s/cli/summary.md", bin, d, d);
    CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 0);
    CHECK_STR_CONTAINS(out, "1\n");
    snprintf(cmd, sizeof cmd, "%s preprocess -n -s " CORPUS " --labels " LABELS " 2>/dev/null", bin);
    CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 0);
    CHECK_STR_CONTAINS(out, "| vpn_voip_11.pcap | - | VPN: Voip |  |\n");
    snprintf(cmd, sizeof cmd, "%s preprocess --dry-run -s " CORPUS " -t %s/dry 2>&1; test -e %s/dry", bin, d, d);
    CHECK(dp_test_sh(cmd, out, sizeof out) != 0); /* nothing made */
}

int main(void)
{
    dp_test_prog = "test_ppfilter";
    DP_RUN(test_rows_are_the_filters);
    DP_RUN(test_split_and_spilled);
    DP_RUN(test_rerun_with_another_filter);
    DP_RUN(test_journal_keyed_by_filter);
    DP_RUN(test_parts_keyed_by_filter);
    DP_RUN(test_bad_syntax);
    DP_RUN(test_filter_not_for_linktype);
    DP_RUN(test_label_row_filters);
    DP_RUN(test_parts_keyed_by_row_filter);
    DP_RUN(test_bad_row_filter);
    DP_RUN(test_dry_run);
    DP_RUN(test_shards);
    DP_RUN(test_shards_with_row_filters);
    DP_RUN(test_cli);
    return dp_test_end();
}
