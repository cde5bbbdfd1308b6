/* Resource exhaustion (issue 11, part B): the commands run out of memory
 * (tests/failmalloc.c, an LD_PRELOAD shim, makes the N-th allocation fail,
 * for every N of a run) or of descriptors (ulimit -n). Oracles: no run ends
 * by a signal (crash, abort); a run that exits 0 wrote what an unhindered
 * run writes, byte for byte; a run that fails says why and leaves no output
 * that looks complete (no summary.json, no split folder). */
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dp_test.h"

static const char *build_dir(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

/* The shim, or "" when the test cannot use it (not built, or ASan). */
static const char *shim(void)
{
    static char path[512];
#if defined(__SANITIZE_ADDRESS__)
    int asan = 1; /* ASan's runtime must come first: no LD_PRELOAD */
#else
    int asan = 0;
#endif
    snprintf(path, sizeof path, "%s/tests/failmalloc.so", build_dir());
    return !asan && access(path, R_OK) == 0 ? path : "";
}

/* Runs a shell command, its output to out (cap bytes; NULL: dropped): the
 * exit status, -1 when a signal ended it. */
static int run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[4200];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    char sink[4096];
    return out ? dp_test_sh(full, out, cap) : dp_test_sh(full, sink, sizeof sink);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A capture folder of four corpus captures (links) and the corpus label
 * table in dp_test_tmpdir(); 0, or -1 when the corpus is not there. */
static int make_sources(void)
{
    char cwd[512];
    if (!getcwd(cwd, sizeof cwd) || access("data/corpus/labels.tsv", R_OK) != 0)
        return -1;
    return run(NULL, 0, "rm -rf %s %s %s && mkdir -p %s && for c in chat_01 scpup_01 sftpdown_04 vpn_voip_01; do "
               "ln -s %s/data/corpus/$c.pcap %s/; done", dp_test_path("ds"), dp_test_path("base"),
               dp_test_path("src"), dp_test_path("src"), cwd, dp_test_path("src")) == 0
               ? 0
               : -1;
}

/* Why a test cannot run here (it then skips), or NULL; makes the sources. */
static const char *cannot_run(int with_shim)
{
    if (!dp_test_cli() || (with_shim && !*shim()))
        return "needs deeppacket and tests/failmalloc.so in $BUILD, without ASan";
    return make_sources() != 0 ? "data/corpus is not there" : NULL;
}

/* preprocess of the sources into dp_test_path(name) (-j threads): its exit
 * status, its output in out. */
static int preprocess(const char *name, int threads, char *out, size_t cap)
{
    return run(out, cap, "%s preprocess -q -j%d -s %s --labels data/corpus/labels.tsv -t %s", dp_test_cli(),
               threads, dp_test_path("src"), dp_test_path(name));
}

/* A gbt model of the traffic task trained on a split of the sources
 * (dataset "ds", split "sp"): its path, or NULL. */
static const char *gbt_model(void)
{
    char out[8192];
    if (preprocess("ds", 1, out, sizeof out) != 0 ||
        run(out, sizeof out, "rm -rf %s && %s split -q -s %s -t %s && %s train -q --model gbt --trees 2 -j1 -t traffic "
            "-d %s/traffic_classification/train -m %s", dp_test_path("sp"), dp_test_cli(), dp_test_path("ds"),
            dp_test_path("sp"), dp_test_cli(), dp_test_path("sp"), dp_test_path("gbt.model")) != 0) {
        fprintf(stderr, "%s", out);
        return NULL;
    }
    return dp_test_path("gbt.model");
}

/* The number of allocations a run of cmd (a shell command) makes. */
static long count_allocations(const char *cmd)
{
    char out[4096];
    run(out, sizeof out, "FAILMALLOC_COUNT=%s LD_PRELOAD=%s %s", dp_test_path("count"), shim(), cmd);
    size_t n;
    uint8_t *s = dp_test_read_file(dp_test_path("count"), &n);
    long k = s ? atol((const char *)s) : 0;
    free(s);
    return k;
}

/* The files of a split of both tasks, for comparisons. */
static int same_split(const char *a, const char *b)
{
    static const char *const task[] = {"application_classification", "traffic_classification"};
    static const char *const side[] = {"train", "test"};
    static const char *const file[] = {"vectors.npy", "labels.npy", "meta.npy", "classes.tsv", "task"};
    for (int t = 0; t < 2; t++) {
        char pa[1024], pb[1024];
        for (int c = 0; c < 2; c++) {
            snprintf(pa, sizeof pa, "%s/%s/data_card.%s", a, task[t], c ? "json" : "md");
            snprintf(pb, sizeof pb, "%s/%s/data_card.%s", b, task[t], c ? "json" : "md");
            if (!dp_test_same_file(pa, pb))
                return 0;
        }
        for (int s = 0; s < 2; s++)
            for (int f = 0; f < 5; f++) {
                snprintf(pa, sizeof pa, "%s/%s/%s/%s", a, task[t], side[s], file[f]);
                snprintf(pb, sizeof pb, "%s/%s/%s/%s", b, task[t], side[s], file[f]);
                if (!dp_test_same_file(pa, pb))
                    return 0;
            }
    }
    return 1;
}

/* Runs cmd once per allocation it makes (the first upto of them; 0: all),
 * that allocation failing: the number of runs that crashed, exited 0 with
 * an output (out, a path) that same() finds unlike base, or failed without
 * a message (prefix) or with out looking complete (its file done, or out
 * itself when done is NULL). */
static int sweep(const char *cmd, const char *out, const char *base, int (*same)(const char *, const char *),
                 const char *done, const char *prefix, long upto)
{
    long total = count_allocations(cmd);
    CHECK(total > 100);
    if (upto > 0 && upto < total)
        total = upto;
    char msg[8192], marker[1024];
    snprintf(marker, sizeof marker, "%s%s%s", out, done ? "/" : "", done ? done : "");
    int bad = 0;
    for (long n = 1; n <= total + 2 && bad < 5; n++) {
        run(NULL, 0, "rm -rf %s", out);
        int rc = run(msg, sizeof msg, "FAILMALLOC_N=%ld LD_PRELOAD=%s %s", n, shim(), cmd);
        int ok = rc == 0 ? same(base, out) : rc == 1 && !exists(marker) && strstr(msg, prefix);
        if (!ok) {
            fprintf(stderr, "  allocation %ld of %ld failed: exit %d%s\n%s", n, total, rc,
                    rc == 0 ? ", another output than the real one" : rc < 0 || rc > 128 ? " (a signal)" : "", msg);
            bad++;
        }
    }
    return bad;
}

/* A dataset like base, and no .parts folder left beside it. */
static int same_dataset_no_parts(const char *base, const char *out)
{
    char parts[1024];
    snprintf(parts, sizeof parts, "%s/.parts", out);
    if (exists(parts))
        fprintf(stderr, "  %s left beside a committed dataset\n", parts);
    return dp_test_same_dataset(base, out) && !exists(parts);
}

/* Every allocation of a preprocess run fails in turn (one per run): no
 * crash, and no dataset that looks complete but is not the real one.
 * Before: a failed snprintf in the journal crashed the run (SIGSEGV), a
 * failed copy of the file name made a labelled capture unlabelled, a
 * capture that could not be opened or read on for want of memory was
 * skipped or cut short, a class name came out "?", and a report that
 * glibc's memstream could not grow was written short: each with exit
 * status 0 and a complete-looking dataset; a committed dataset kept its
 * .parts folder when the cleanup could not make a path. */
static void test_preprocess_alloc_failures(void)
{
    const char *why = cannot_run(1);
    if (why)
        SKIP("%s", why);
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "%s preprocess -q -j1 -s %s --labels data/corpus/labels.tsv -t %s", dp_test_cli(),
             dp_test_path("src"), dp_test_path("ds"));
    CHECK_EQ_INT(preprocess("base", 1, out, sizeof out), 0);
    CHECK_EQ_INT(sweep(cmd, dp_test_path("ds"), dp_test_path("base"), same_dataset_no_parts, "summary.json",
                       "deeppacket preprocess: ", 0), 0);
}

/* The same for split: before, a failed allocation while sizing an .npy
 * header made the commit write a header into a buffer of 0 bytes (heap
 * corruption: "double free or corruption", SIGABRT). */
static void test_split_alloc_failures(void)
{
    const char *why = cannot_run(1);
    if (why)
        SKIP("%s", why);
    char cmd[2048], out[8192];
    CHECK_EQ_INT(preprocess("ds", 1, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "%s split -q -s %s -t %s", dp_test_cli(), dp_test_path("ds"), dp_test_path("sp"));
    CHECK_EQ_INT(run(out, sizeof out, "%s", cmd), 0);
    CHECK_EQ_INT(run(NULL, 0, "mv %s %s", dp_test_path("sp"), dp_test_path("spbase")), 0);
    CHECK_EQ_INT(sweep(cmd, dp_test_path("sp"), dp_test_path("spbase"), same_split, NULL, "deeppacket split: ", 0),
                 0);
}

/* The same for loading a model (export of the fixture gbt, its first 70
 * allocations: the model file's; from about the 80th, XGBoost's own, some
 * of which abort inside XGBoost or glibc: not ours): before, a class name that
 * could not be copied was left NULL, and the ONNX file was written without
 * it, exit 0 ("classes differ" when a test loaded such a model). */
static void test_model_load_alloc_failures(void)
{
    const char *why = cannot_run(1);
    if (why)
        SKIP("%s", why);
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "%s export -m tests/fixtures/model_gbt.dpm -o %s", dp_test_cli(), dp_test_path("m.onnx"));
    CHECK_EQ_INT(run(out, sizeof out, "%s", cmd), 0);
    CHECK_EQ_INT(run(NULL, 0, "mv %s %s", dp_test_path("m.onnx"), dp_test_path("base.onnx")), 0);
    CHECK_EQ_INT(sweep(cmd, dp_test_path("m.onnx"), dp_test_path("base.onnx"), dp_test_same_file, NULL,
                       "deeppacket export: ", 70), 0);
}

/* preprocess -j2 under every small open-file limit: it either builds the
 * dataset or fails naming the limit. Before, a capture that could not be
 * opened (EMFILE) was skipped like an unreadable one: with `ulimit -n 12`
 * every capture was, and the run exited 0 with an empty dataset. */
static void test_preprocess_fd_limit(void)
{
    const char *why = cannot_run(0), *cli = dp_test_cli();
    if (why)
        SKIP("%s", why);
    char out[8192];
    CHECK_EQ_INT(preprocess("base", 2, out, sizeof out), 0);
    int failed = 0, built = 0;
    for (int lim = 6; lim <= 30; lim++) {
        run(NULL, 0, "rm -rf %s", dp_test_path("ds"));
        /* (the shell sets up 2>&1 outside: dash keeps saved descriptors at 10 and up) */
        int rc = run(out, sizeof out, "(ulimit -n %d && exec %s preprocess -q -j2 -s %s --labels data/corpus/labels.tsv "
                     "-t %s)", lim, cli, dp_test_path("src"), dp_test_path("ds"));
        char sum[1024];
        snprintf(sum, sizeof sum, "%s/summary.json", dp_test_path("ds"));
        if (rc == 0) {
            built++;
            if (!dp_test_same_dataset(dp_test_path("base"), dp_test_path("ds"))) {
                fprintf(stderr, "  ulimit -n %d: exit 0 with another dataset\n%s", lim, out);
                CHECK(0);
            }
        } else {
            failed++;
            CHECK_EQ_INT(rc, 1);
            CHECK(!exists(sum));
            if (!strstr(out, "Too many open files"))
                fprintf(stderr, "  ulimit -n %d: %s", lim, out);
            CHECK_STR_CONTAINS(out, "Too many open files");
        }
    }
    CHECK(failed > 0 && built > 0); /* the sweep spans the limit */
}

/* Every output-writing command under a file-size limit (ulimit -f) too
 * small for its output: exit 1 with "File too large" and no temp file
 * left. Before, SIGXFSZ killed the process (status 153) with no message
 * of its own and its PATH.tmp.PID files left behind. */
static void test_file_size_limit(void)
{
    const char *why = cannot_run(0), *cli = dp_test_cli();
    if (why)
        SKIP("%s", why);
    char out[8192], model[1024], train[1024];
    CHECK(gbt_model() != NULL);
    snprintf(model, sizeof model, "%s", dp_test_path("gbt.model"));
    snprintf(train, sizeof train, "%s/traffic_classification/train", dp_test_path("sp"));
    static const char *const what[] = {"preprocess", "split", "train", "classify"};
    for (int k = 0; k < 4; k++) {
        run(NULL, 0, "rm -rf %s/out*", dp_test_tmpdir());
        char cmd[2048];
        if (k == 0)
            snprintf(cmd, sizeof cmd, "preprocess -q -s %s --labels data/corpus/labels.tsv -t %s", dp_test_path("src"),
                     dp_test_path("out"));
        else if (k == 1)
            snprintf(cmd, sizeof cmd, "split -q -s %s -t %s", dp_test_path("ds"), dp_test_path("out"));
        else if (k == 2)
            snprintf(cmd, sizeof cmd, "train -q --model gbt --trees 2 -j1 -t traffic -d %s -m %s", train,
                     dp_test_path("out.model"));
        else
            snprintf(cmd, sizeof cmd, "classify -r %s/scpup_01.pcap %s/vpn_voip_01.pcap -m %s -o %s",
                     dp_test_path("src"), dp_test_path("src"), model, dp_test_path("out.jsonl"));
        int rc = run(out, sizeof out, "(ulimit -f %d && exec %s %s)", k == 3 ? 1 : 8, cli, cmd);
        if (rc != 1 || !strstr(out, "File too large"))
            fprintf(stderr, "  %s under ulimit -f: exit %d\n%s", what[k], rc, out);
        CHECK_EQ_INT(rc, 1);
        CHECK_STR_CONTAINS(out, "File too large");
        char left[256] = "";
        run(left, sizeof left, "sh -c 'ls -d %s/out*.tmp.* 2>/dev/null'", dp_test_tmpdir());
        if (left[0])
            fprintf(stderr, "  %s left %s", what[k], left);
        CHECK(!left[0]);
    }
}

/* A command started with its standard descriptors closed: its own files
 * and pipes must not take their numbers. Before, split's temp-cleanup pipe
 * became descriptors 0 and 1, the summary it printed went into that pipe,
 * and the cleanup thread took its first byte ('#', 35) for a signal and
 * killed the process with it ("Real-time signal 1"). Now the split is made
 * and the command exits 1: its standard output could not be written. */
static void test_closed_std_descriptors(void)
{
    const char *why = cannot_run(0), *cli = dp_test_cli();
    if (why)
        SKIP("%s", why);
    char out[8192];
    CHECK_EQ_INT(preprocess("ds", 1, out, sizeof out), 0);
    CHECK_EQ_INT(run(out, sizeof out, "%s split -q -s %s -t %s", cli, dp_test_path("ds"), dp_test_path("spbase")), 0);
    run(NULL, 0, "rm -rf %s", dp_test_path("sp"));
    int rc = run(out, sizeof out, "sh -c 'exec %s split -s %s -t %s <&- >&- 2>&-'", cli, dp_test_path("ds"),
                 dp_test_path("sp"));
    CHECK_EQ_INT(rc, 1);
    CHECK(same_split(dp_test_path("spbase"), dp_test_path("sp")));
}

/* classify's flow table grows with the flows it holds, not with
 * --max-flows: the largest accepted value (67108864) on a capture of a few
 * flows runs in 1 GB of address space and gives the default run's
 * verdicts. Before, the table was allocated whole: 9.5 GB touched and 50 s
 * for 229 flows, and "flow table: out of memory" under ulimit -v. */
static void test_classify_max_flows_memory(void)
{
    const char *why = cannot_run(0), *cli = dp_test_cli(), *model;
#if defined(__SANITIZE_ADDRESS__)
    why = "ASan's shadow memory needs more address space than ulimit -v leaves";
#endif
    if (why)
        SKIP("%s", why);
    CHECK((model = gbt_model()) != NULL);
    if (!model)
        return;
    char out[8192], cmd[2048];
    snprintf(cmd, sizeof cmd, "%s classify -r %s/scpup_01.pcap %s/chat_01.pcap -m %s", cli, dp_test_path("src"),
             dp_test_path("src"), model);
    CHECK_EQ_INT(run(out, sizeof out, "%s -o %s", cmd, dp_test_path("base.jsonl")), 0);
    int rc = run(out, sizeof out, "(ulimit -v 1000000 && exec %s --max-flows 67108864 -o %s)", cmd,
                 dp_test_path("big.jsonl"));
    if (rc != 0)
        fprintf(stderr, "%s", out);
    CHECK_EQ_INT(rc, 0);
    CHECK(dp_test_same_file(dp_test_path("base.jsonl"), dp_test_path("big.jsonl")));
}

int main(void)
{
    dp_test_prog = "test_exhaust";
    DP_RUN(test_preprocess_alloc_failures);
    DP_RUN(test_split_alloc_failures);
    DP_RUN(test_model_load_alloc_failures);
    DP_RUN(test_preprocess_fd_limit);
    DP_RUN(test_file_size_limit);
    DP_RUN(test_closed_std_descriptors);
    DP_RUN(test_classify_max_flows_memory);
    return dp_test_end();
}
