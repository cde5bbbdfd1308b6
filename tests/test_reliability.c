/* Reliability under faults (issue 11, part A): outputs never replace a
 * special file, temp files do not outlive their process, split folders and
 * models are locked and atomic, preprocess and train resume after kill -9,
 * write errors on stdout fail the command. Oracles: the file type at the
 * target after the run (lstat), the bytes read at the other end of a FIFO,
 * the exit status and message of the command, byte comparisons with an
 * uninterrupted run. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/dp_capture.h"
#include "dataset/dp_dataset.h"
#include "dataset/dp_merge.h"
#include "dataset/dp_pp_knobs.h"
#include "dataset/dp_preprocess.h"
#include "dataset/dp_split.h"
#include "dp_test.h"
#include "eval/dp_eval.h"
#include "eval/dp_evalrun.h"
#include "train/dp_train.h"
#include "util/dp_util.h"

static char errbuf[DP_ERRBUF_SIZE];

static char *tmp(const char *name)
{
    static char buf[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dp_test_tmpdir(), name);
    return buf[k];
}

static char *slurp(const char *path, size_t *n)
{
    return dp_read_file(path, n, NULL);
}

static int file_is(const char *path, const char *want)
{
    char *s = slurp(path, NULL);
    int ok = s && !strcmp(s, want);
    free(s);
    return ok;
}

/* A pid that is certainly not running: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

static const char *bin(void)
{
    static char path[512];
    const char *b = getenv("BUILD");
    snprintf(path, sizeof path, "%s/deeppacket", b && *b ? b : "build");
    return access(path, X_OK) == 0 ? path : NULL;
}

/* Runs a shell command; its exit status (-1: killed), stderr+stdout in out. */
static int sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = 0;
    if (out && cap) {
        n = fread(out, 1, cap - 1, p);
        out[n] = 0;
    } else {
        char sink[4096];
        while (fread(sink, 1, sizeof sink, p) > 0)
            ;
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Forks a child that runs run(what, res) (with DP_TEST_KILL_AT=kill_at when
 * it is not NULL) and writes res[size] into a pipe, whose reading end is
 * *rfd. The child's pid, or -1. */
static pid_t spawn_reporting(const char *kill_at, void (*run)(const void *what, void *res), const void *what,
                             void *res, size_t size, int *rfd)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    fflush(NULL);
    pid_t c = fork();
    if (c == 0) {
        if (kill_at)
            setenv("DP_TEST_KILL_AT", kill_at, 1);
        run(what, res);
        _exit(write(pfd[1], res, size) == (ssize_t)size ? 0 : 1);
    }
    close(pfd[1]);
    *rfd = pfd[0];
    return c;
}

/* Waits for spawn_reporting's child c to end and reads its report into
 * res[size]. 0, or -1 when it did not exit or did not report. */
static int collect_report(pid_t c, int rfd, void *res, size_t size)
{
    int st = 0;
    waitpid(c, &st, 0);
    int rc = read(rfd, res, size) == (ssize_t)size && WIFEXITED(st) ? 0 : -1;
    close(rfd);
    return rc;
}

/* ---- 1. outputs: regular files atomic, special files written through ---- */

struct fifo_reader {
    const char *path;
    char got[256];
};

static void *read_fifo(void *arg)
{
    struct fifo_reader *r = arg;
    int fd = open(r->path, O_RDONLY);
    if (fd < 0)
        return NULL;
    size_t n = 0;
    ssize_t k;
    char buf[4096];
    while ((k = read(fd, buf, sizeof buf)) > 0) /* to the end: the writer must not get SIGPIPE */
        for (ssize_t i = 0; i < k && n < sizeof r->got - 1; i++)
            r->got[n++] = buf[i];
    r->got[n] = 0;
    close(fd);
    return NULL;
}

static void test_afile_fifo(void)
{
    char *p = tmp("out.fifo");
    CHECK(mkfifo(p, 0600) == 0);
    struct fifo_reader r = {p, ""};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, read_fifo, &r) == 0);
    CHECK(dp_write_file_atomic(p, "through the fifo\n", 17, errbuf) == 0);
    pthread_join(th, NULL);
    CHECK(!strcmp(r.got, "through the fifo\n"));
    struct stat st;
    CHECK(lstat(p, &st) == 0 && S_ISFIFO(st.st_mode));
}

/* A private null device (mknod c 1 3), so that a broken writer cannot
 * replace the system's /dev/null; NULL when this process cannot make one. */
static const char *private_null(void)
{
    char *p = tmp("null.dev");
    unlink(p);
    if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) != 0)
        return NULL;
    int fd = open(p, O_WRONLY);
    if (fd < 0)
        return NULL; /* a nodev mount */
    close(fd);
    return p;
}

/* The folders fsynced while `on` (test_mkdirs_fsyncs_parent). */
static struct {
    pthread_mutex_t mu;
    int on, n;
    struct stat dirs[16];
} fsynced = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {{0}}};

/* This binary's fsync, which the library linked into it calls in place of
 * libc's: it notes the folders fsynced while fsynced.on, then fsyncs. */
int fsync(int fd)
{
    struct stat st;
    pthread_mutex_lock(&fsynced.mu);
    if (fsynced.on && fsynced.n < 16 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        fsynced.dirs[fsynced.n++] = st;
    pthread_mutex_unlock(&fsynced.mu);
    return (int)syscall(SYS_fsync, fd);
}

/* 1 when the folder at path was fsynced while fsynced.on. */
static int was_fsynced(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    for (int i = 0; i < fsynced.n; i++)
        if (fsynced.dirs[i].st_dev == st.st_dev && fsynced.dirs[i].st_ino == st.st_ino)
            return 1;
    return 0;
}

/* Each folder dp_mkdirs makes is fsynced in its parent, so that at a power
 * loss it does not vanish with the outputs committed into it (a dataset, a
 * report, a model's folder): the parents of a/b/c made in one call. */
static void test_mkdirs_fsyncs_parent(void)
{
    char *top = tmp("mk"), *a = tmp("mk/a"), *b = tmp("mk/a/b"), *c = tmp("mk/a/b/c");
    CHECK(dp_mkdirs(top, errbuf) == 0);
    pthread_mutex_lock(&fsynced.mu);
    fsynced.on = 1, fsynced.n = 0;
    pthread_mutex_unlock(&fsynced.mu);
    CHECK(dp_mkdirs(c, errbuf) == 0);
    pthread_mutex_lock(&fsynced.mu);
    fsynced.on = 0;
    pthread_mutex_unlock(&fsynced.mu);
    CHECK(was_fsynced(top));
    CHECK(was_fsynced(a));
    CHECK(was_fsynced(b));
}

/* An output (or a lock) in a folder that does not exist: the message says
 * so, naming the output, not the temp file. */
static void test_afile_missing_folder(void)
{
    dp_afile af;
    char *p = tmp("no-such-folder/out.jsonl");
    CHECK(dp_afile_open(&af, p, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "no-such-folder/out.jsonl: cannot create it: the folder ");
    CHECK_STR_CONTAINS(errbuf, "no-such-folder does not exist");
    CHECK(strstr(errbuf, ".tmp.") == NULL);
    CHECK(dp_lock_target(tmp("no-such-folder/m.model"), "train", errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "m.model.lock: cannot create it: the folder ");
}

static void test_afile_device(void)
{
    const char *p = private_null();
    if (!p)
        SKIP("cannot make a device node here (not root, or a nodev mount)");
    CHECK(dp_write_file_atomic(p, "gone\n", 5, errbuf) == 0);
    struct stat st;
    CHECK(lstat(p, &st) == 0 && S_ISCHR(st.st_mode));
    char *g = slurp(p, NULL);
    CHECK(g && g[0] == 0); /* still the null device: reads nothing */
    free(g);
}

static void test_afile_symlink(void)
{
    char *target = tmp("real.txt"), *link = tmp("link.txt"), *dangling = tmp("dangling.txt");
    CHECK(dp_write_file_atomic(target, "old\n", 4, errbuf) == 0);
    CHECK(symlink("real.txt", link) == 0); /* relative, as users make them */
    CHECK(dp_write_file_atomic(link, "new\n", 4, errbuf) == 0);
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(file_is(target, "new\n"));
    /* a dangling link creates its target */
    CHECK(symlink("made.txt", dangling) == 0);
    CHECK(dp_write_file_atomic(dangling, "made\n", 5, errbuf) == 0);
    CHECK(lstat(dangling, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(file_is(tmp("made.txt"), "made\n"));
    /* a loop is an error naming the path */
    char *loop = tmp("loop.txt");
    CHECK(symlink("loop.txt", loop) == 0);
    CHECK(dp_write_file_atomic(loop, "x", 1, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "loop.txt");
    /* a folder is an error, not replaced */
    CHECK(dp_write_file_atomic(dp_test_tmpdir(), "x", 1, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "folder");
}

static void test_afile_stdout(void)
{
    char *p = tmp("stdout.txt");
    fflush(stdout);
    int saved = dup(1);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    dp_afile af;
    int orc = dp_afile_open(&af, "-", errbuf);
    if (orc == 0) {
        fputs("to stdout\n", af.f);
        orc = dp_afile_commit(&af, errbuf);
    }
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    CHECK(orc == 0);
    CHECK(file_is(p, "to stdout\n"));
    struct stat st;
    CHECK(stat("-", &st) != 0); /* no file named "-" */
    /* stdout still works after the commit (not closed) */
    CHECK(fflush(stdout) == 0 && fcntl(1, F_GETFD) != -1);
}

/* DP_AFILE_LIVE: lines are in PATH as soon as they are flushed (what
 * survives kill -9), and no temp file is made. */
static void test_afile_live(void)
{
    char *p = tmp("live.jsonl");
    CHECK(dp_write_file_atomic(p, "old contents\n", 13, errbuf) == 0);
    dp_afile af;
    CHECK(dp_afile_open_flags(&af, p, DP_AFILE_LIVE, errbuf) == 0);
    fputs("{\"a\":1}\n", af.f);
    fflush(af.f);
    CHECK(file_is(p, "{\"a\":1}\n"));
    char tp[700];
    snprintf(tp, sizeof tp, "%s.tmp.%ld", p, (long)getpid());
    CHECK(access(tp, F_OK) != 0);
    CHECK(dp_afile_commit(&af, errbuf) == 0);
    CHECK(file_is(p, "{\"a\":1}\n"));
}

/* A write that failed before the commit (the stream keeps only its error
 * flag, the buffer is gone) is reported as such, not with whatever errno
 * the process set since ("write failed: Invalid argument"). */
static void test_afile_earlier_error(void)
{
    if (access("/dev/full", W_OK) != 0)
        SKIP("no /dev/full");
    dp_afile af;
    CHECK(dp_afile_open(&af, "/dev/full", errbuf) == 0);
    fputs("a verdict\n", af.f);
    CHECK(fflush(af.f) != 0 && errno == ENOSPC);
    errno = EINVAL; /* what some later call left behind */
    CHECK(dp_afile_commit(&af, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "/dev/full: write failed");
    CHECK(strstr(errbuf, "Invalid argument") == NULL);
    CHECK_STR_CONTAINS(errbuf, "an earlier write to it failed");
}

/* A live pcap writer: every frame is in the file before the close. */
static void test_dumper_live(void)
{
    char *p = tmp("live.pcap");
    dp_dumper *d = dp_dumper_open_live(p, 1, 65535, 1, errbuf);
    CHECK(d != NULL);
    if (!d)
        return;
    uint8_t frame[60] = {0};
    dp_frame f;
    memset(&f, 0, sizeof f);
    f.data = frame;
    f.caplen = f.wirelen = sizeof frame;
    f.time = 1.5;
    CHECK(dp_dumper_write(d, &f, errbuf) == 0);
    CHECK(dp_dumper_write(d, &f, errbuf) == 0);
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_size == 24 + 2 * (16 + 60));
    CHECK(dp_dumper_close(d, 1, errbuf) == 0);
    /* and it reads back */
    dp_capture *c = dp_capture_open_file(p, errbuf);
    CHECK(c != NULL);
    int n = 0;
    dp_frame g;
    while (c && dp_capture_next(c, &g, errbuf) == DP_NEXT_FRAME)
        n++;
    CHECK_EQ_INT(n, 2);
    dp_capture_close(c);
}

/* ---- 7. stale temp files of dead processes are removed on the next run ---- */

static void test_stale_tmp(void)
{
    char *p = tmp("model.ckpt");
    char dead[700], alive[700], other[700];
    snprintf(dead, sizeof dead, "%s.tmp.%ld", p, (long)dead_pid());
    snprintf(alive, sizeof alive, "%s.tmp.%ld", p, (long)getppid());
    snprintf(other, sizeof other, "%s.tmpfoo", p);
    CHECK(dp_write_file_atomic(dead, "x", 1, errbuf) == 0);
    CHECK(dp_write_file_atomic(alive, "x", 1, errbuf) == 0);
    CHECK(dp_write_file_atomic(other, "x", 1, errbuf) == 0);
    CHECK(dp_write_file_atomic(p, "ckpt", 4, errbuf) == 0);
    CHECK(access(dead, F_OK) != 0);  /* its process is gone */
    CHECK(access(alive, F_OK) == 0); /* its process runs: may still write it */
    CHECK(access(other, F_OK) == 0); /* not a temp name */
    unlink(alive);
    /* folders too (split's temp folder) */
    char deaddir[700];
    snprintf(deaddir, sizeof deaddir, "%s/split.tmp.%ld", dp_test_tmpdir(), (long)dead_pid());
    char sub[800];
    snprintf(sub, sizeof sub, "%s/a/b", deaddir);
    CHECK(dp_mkdirs(sub, errbuf) == 0);
    CHECK_EQ_INT(dp_clean_stale_tmp(dp_test_tmpdir(), "split"), 1);
    CHECK(access(deaddir, F_OK) != 0);
}

/* The batch commands remove their registered temp files on SIGTERM. */
static void test_signal_removes_tmp(void)
{
    char *p = tmp("sig.out"), tp[700];
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    pid_t c = fork();
    if (c == 0) {
        /* what main.c does for preprocess, split, train and test */
        dp_tmp_cleanup_on_signals();
        dp_afile af;
        if (dp_afile_open(&af, p, NULL) != 0)
            _exit(3);
        fputs("half", af.f);
        fflush(af.f);
        if (write(pfd[1], "r", 1) != 1)
            _exit(4);
        for (;;)
            pause();
    }
    char b;
    CHECK(read(pfd[0], &b, 1) == 1);
    snprintf(tp, sizeof tp, "%s.tmp.%ld", p, (long)c);
    CHECK(access(tp, F_OK) == 0);
    kill(c, SIGTERM);
    int st;
    waitpid(c, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    CHECK(access(tp, F_OK) != 0);
    CHECK(access(p, F_OK) != 0);
    close(pfd[0]);
    close(pfd[1]);
}

/* ---- 15. write errors on stdout fail the command ---- */

static const char *corpus_dataset(void);

static void test_stdout_full(void)
{
    const char *b = bin();
    if (!b)
        SKIP("no deeppacket binary ($BUILD/deeppacket)");
    if (access("/dev/full", W_OK) != 0)
        SKIP("no /dev/full");
    char out[4096];
    CHECK_EQ_INT(sh(out, sizeof out, "%s --help >/dev/full 2>&1", b), 1);
    CHECK_EQ_INT(sh(out, sizeof out, "%s split --help 2>&1 >/dev/full", b), 1);
    CHECK_STR_CONTAINS(out, "standard output");
    CHECK_EQ_INT(sh(out, sizeof out, "%s split --help 2>&1 >/dev/null", b), 0);
    /* real runs: split prints its data cards, preprocess its summary */
    const char *ds = corpus_dataset();
    if (!ds)
        return;
    CHECK_EQ_INT(sh(out, sizeof out, "%s split -s %s -t %s 2>&1 >/dev/full", b, ds, tmp("full-split")), 1);
    CHECK_STR_CONTAINS(out, "deeppacket split: standard output: write failed");
    CHECK_EQ_INT(sh(out, sizeof out, "%s preprocess -s data/corpus -t %s --labels data/corpus/labels.tsv "
                    "2>&1 >/dev/full", b, tmp("full-pp")), 1);
    CHECK_STR_CONTAINS(out, "deeppacket preprocess: standard output: write failed");
}

/* ---- the corpus of the repository, preprocessed once ---- */

/* preprocess of src (captures of data/corpus) into dst: its label table,
 * 2 workers, no progress line. */
static void corpus_pp_opts(dp_preprocess_opts *o, const char *src, const char *dst)
{
    dp_preprocess_opts_init(o);
    o->src_dir = src;
    o->dst_dir = dst;
    o->labels_path = "data/corpus/labels.tsv";
    o->progress = 0;
    o->threads = 2;
}

static const char *corpus_dataset(void)
{
    static char ds[600];
    static int tried;
    if (tried)
        return ds[0] ? ds : NULL;
    tried = 1;
    if (access("data/corpus/labels.tsv", R_OK) != 0)
        return NULL;
    snprintf(ds, sizeof ds, "%s/corpus-ds", dp_test_tmpdir());
    dp_preprocess_opts o;
    corpus_pp_opts(&o, "data/corpus", ds);
    int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2); /* the notes about README.md and labels.tsv */
    int rc = dp_preprocess_run(&o, NULL, errbuf);
    dup2(saved, 2);
    close(saved);
    close(devnull);
    if (rc != 0) {
        fprintf(stderr, "  preprocess data/corpus: %s\n", errbuf);
        ds[0] = 0;
        return NULL;
    }
    return ds;
}

/* 1 when the two split folders hold the same files, byte for byte. */
static int same_split(const char *a, const char *b)
{
    static const char *const files[] = {"train/vectors.npy", "train/labels.npy", "train/meta.npy",
                                        "train/classes.tsv", "train/task", "test/vectors.npy",
                                        "test/labels.npy", "test/meta.npy", "test/classes.tsv",
                                        "test/task", "data_card.json", "data_card.md"};
    for (int t = 0; t < DP_NTASKS; t++)
        for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
            char pa[900], pb[900];
            snprintf(pa, sizeof pa, "%s/%s/%s", a, dp_task_dir[t], files[k]);
            snprintf(pb, sizeof pb, "%s/%s/%s", b, dp_task_dir[t], files[k]);
            if (!dp_test_same_file(pa, pb))
                return 0;
        }
    return 1;
}

/* Names in dir that contain ".tmp." (temp files or folders left behind). */
static int count_tmp(const char *dir)
{
    char out[4096];
    sh(out, sizeof out, "find '%s' -name '*.tmp.*' | wc -l", dir);
    return atoi(out);
}

/* ---- 4. a split folder is atomic as a whole, and locked ---- */

static void test_split_atomic(void)
{
    const char *b = bin(), *ds = corpus_dataset();
    if (!b || !ds)
        SKIP("no deeppacket binary or no data/corpus");
    char *s1 = tmp("split-s1"), *s2 = tmp("split-s2"), *t = tmp("split-target");
    char out[8192];
    CHECK_EQ_INT(sh(out, sizeof out, "%s split -q -s %s -t %s --seed 1 2>&1", b, ds, s1), 0);
    CHECK_EQ_INT(sh(out, sizeof out, "%s split -q -s %s -t %s --seed 2 2>&1", b, ds, s2), 0);
    CHECK(!same_split(s1, s2)); /* the seeds give different splits */
    CHECK_EQ_INT(sh(out, sizeof out, "%s split -q -s %s -t %s --seed 1 2>&1", b, ds, t), 0);
    /* killed at each commit of a rerun with another seed, and just before the
     * swap: the old split stays whole */
    for (int k = 1; k <= 3; k++) {
        CHECK(sh(out, sizeof out, "DP_TEST_KILL_AT=commit:%d %s split -q -s %s -t %s --seed 2 2>&1", 4 * k, b,
                 ds, t) != 0);
        CHECK(same_split(t, s1));
    }
    /* SIGTERM (Ctrl-C alike) in the middle: the run removes the temp folder a
     * killed run left (stale) and its own */
    CHECK(count_tmp(dp_test_tmpdir()) > 0);
    CHECK(sh(out, sizeof out, "DP_TEST_KILL_AT=commit:6:%d %s split -q -s %s -t %s --seed 2 2>&1", SIGTERM, b,
             ds, t) != 0);
    CHECK(same_split(t, s1));
    CHECK_EQ_INT(count_tmp(dp_test_tmpdir()), 0);
    CHECK(sh(out, sizeof out, "DP_TEST_KILL_AT=swap:1 %s split -q -s %s -t %s --seed 2 2>&1", b, ds, t) != 0);
    CHECK(same_split(t, s1));
    CHECK(count_tmp(dp_test_tmpdir()) > 0); /* what the kills left */
    /* the rerun: the new split, whole, and no temp folder left */
    CHECK_EQ_INT(sh(out, sizeof out, "%s split -q -s %s -t %s --seed 2 2>&1", b, ds, t), 0);
    CHECK(same_split(t, s2));
    CHECK_EQ_INT(count_tmp(dp_test_tmpdir()), 0);
    /* one task: the other task's folder is kept as it was */
    CHECK_EQ_INT(sh(out, sizeof out, "%s split -q -s %s -t %s --seed 1 --task app 2>&1", b, ds, t), 0);
    char pa[900], pb[900];
    snprintf(pa, sizeof pa, "%s/traffic_classification/test/labels.npy", t);
    snprintf(pb, sizeof pb, "%s/traffic_classification/test/labels.npy", s2);
    CHECK(dp_test_same_file(pa, pb));
    snprintf(pa, sizeof pa, "%s/application_classification/test/labels.npy", t);
    snprintf(pb, sizeof pb, "%s/application_classification/test/labels.npy", s1);
    CHECK(dp_test_same_file(pa, pb));
    /* a symlink to a split folder: the folder is replaced, the link stays */
    char *link = tmp("split-link");
    CHECK(symlink("split-target", link) == 0);
    CHECK_EQ_INT(sh(out, sizeof out, "%s split -q -s %s -t %s/ --seed 2 2>&1", b, ds, link), 0);
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(same_split(t, s2));
}

static void test_split_lock(void)
{
    const char *ds = corpus_dataset();
    if (!ds)
        SKIP("no data/corpus");
    char *t = tmp("split-locked");
    int fd = dp_lock_target(t, "split", errbuf);
    CHECK(fd >= 0);
    dp_split_opts o;
    dp_split_opts_default(&o);
    o.out = NULL;
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    CHECK(dp_split_run(ds, t, &o, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "split-locked.lock");
    CHECK_STR_CONTAINS(errbuf, pid);
    struct stat st;
    CHECK(stat(t, &st) != 0); /* nothing written */
    close(fd);
    CHECK(dp_split_run(ds, t, &o, errbuf) == 0);
}

/* The corpus split with the default options, made once. */
static const char *corpus_split(void)
{
    static char sp[600];
    const char *ds = corpus_dataset();
    if (sp[0] || !ds)
        return ds ? sp : NULL;
    snprintf(sp, sizeof sp, "%s/corpus-split", dp_test_tmpdir());
    dp_split_opts so;
    dp_split_opts_default(&so);
    so.out = NULL;
    if (dp_split_run(ds, sp, &so, errbuf) != 0) {
        fprintf(stderr, "  split: %s\n", errbuf);
        return NULL;
    }
    return sp;
}

/* ---- 13. train checks its task, its training set on --resume, and locks MODEL ---- */

static void train_opts(dp_train_opts *o, const char *dir, const char *model, int task)
{
    dp_train_opts_default(o);
    o->train_dir = dir;
    o->model_path = model;
    o->task = task;
    o->quiet = 1;
    o->cnn_channels = 2;
    o->hp.threads = 1;
    o->hp.epochs = 1;
}

static void test_train_checks(void)
{
    const char *ds = corpus_dataset();
    if (!ds)
        SKIP("no data/corpus");
    const char *sp = corpus_split();
    char *sp2 = tmp("train-split2");
    dp_split_opts so;
    dp_split_opts_default(&so);
    so.out = NULL;
    so.seed = 5;
    CHECK(sp && dp_split_run(ds, sp2, &so, errbuf) == 0);
    char trd[900], trd2[900], appd[900];
    snprintf(trd, sizeof trd, "%s/traffic_classification/train", sp);
    snprintf(trd2, sizeof trd2, "%s/traffic_classification/train", sp2);
    snprintf(appd, sizeof appd, "%s/application_classification/train", sp);
    char *model = tmp("checks.model");
    dp_train_opts o;
    /* -t app on a traffic training set */
    train_opts(&o, trd, model, DP_TASK_APP);
    CHECK(dp_train_run(&o, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "traffic task");
    CHECK_STR_CONTAINS(errbuf, trd);
    /* an older split folder without its task file: the folder name says it */
    char tf[1000];
    snprintf(tf, sizeof tf, "%s/task", appd);
    CHECK(unlink(tf) == 0);
    train_opts(&o, appd, model, DP_TASK_TRAFFIC);
    CHECK(dp_train_run(&o, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "app task");
    /* --resume against another training set */
    train_opts(&o, trd, model, DP_TASK_TRAFFIC);
    CHECK(dp_train_run(&o, errbuf) == 0);
    train_opts(&o, trd2, model, DP_TASK_TRAFFIC);
    o.resume = 1;
    o.hp.epochs = 2; /* extends the finished run */
    CHECK(dp_train_run(&o, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "another training set");
    /* ... and against its own it goes on */
    o.train_dir = trd;
    CHECK(dp_train_run(&o, errbuf) == 0);
    /* a second train writing the same model fails at once */
    int fd = dp_lock_target(model, "train", errbuf);
    CHECK(fd >= 0);
    train_opts(&o, trd, model, DP_TASK_TRAFFIC);
    CHECK(dp_train_run(&o, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "checks.model.lock");
    /* ... also given through a symlink to it (before: a lock of its own, beside
     * the link, and both runs wrote the model) */
    char link[700];
    snprintf(link, sizeof link, "%s", tmp("checks-link.model"));
    unlink(link);
    CHECK(symlink(model, link) == 0);
    train_opts(&o, trd, link, DP_TASK_TRAFFIC);
    CHECK(dp_train_run(&o, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "checks.model.lock: locked by another train");
    /* ... a gbt too (it trains in one go, but two runs would race for
     * the model and its curves) */
    train_opts(&o, trd, model, DP_TASK_TRAFFIC);
    o.kind = DP_MODEL_GBT, o.gbt_trees = 2, o.gbt_depth = 2, o.flow.npackets = 4;
    CHECK(dp_train_run(&o, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "checks.model.lock");
    close(fd);
    CHECK(dp_train_run(&o, errbuf) == 0);
}

/* Curves that cannot be written (a file size limit stands in for a full
 * disk) are a warning that names the cause, and the earlier run's figure is
 * removed: it would pass for this model's. */
static void test_train_curves_fail(void)
{
    const char *b = bin(), *sp = corpus_split();
    if (!b || !sp)
        SKIP("no deeppacket binary or no data/corpus");
    char out[4096], *m = tmp("curves-fail.model"), png[700];
    snprintf(png, sizeof png, "%s.curves.png", m);
    const char *t = "%s train -q -d %s/traffic_classification/train -m %s -t traffic --model gbt --trees 2 "
                    "--depth 2 -j 1 2>&1";
    CHECK_EQ_INT(sh(out, sizeof out, t, b, sp, m), 0);
    struct stat st, ms;
    CHECK(stat(m, &ms) == 0 && stat(png, &st) == 0);
    /* a limit the model fits under and the figure not, whether the shell
     * counts in blocks of 512 bytes (dash, POSIX) or 1024 (bash) */
    long blocks = (long)ms.st_size / 512 + 4;
    CHECK(st.st_size > blocks * 1024);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "trap '' XFSZ; ulimit -f %ld; %s", blocks, t);
    CHECK_EQ_INT(sh(out, sizeof out, cmd, b, sp, m), 0);
    CHECK_STR_CONTAINS(out, "curves.png: cannot draw the training curves: File too large (the earlier run's file");
    CHECK(access(png, F_OK) != 0);
}

/* A model written to a FIFO: the reader gets it, and train keeps no lock,
 * checkpoint or curves beside it (as root, -m /dev/null put them in /dev);
 * --resume, which needs the checkpoint, is refused. */
static void test_train_model_fifo(void)
{
    const char *sp = corpus_split();
    if (!sp)
        SKIP("no data/corpus");
    char trd[900], side[700];
    snprintf(trd, sizeof trd, "%s/traffic_classification/train", sp);
    char *fifo = tmp("model.fifo");
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    for (int kind = 0; kind < 2; kind++) {
        struct fifo_reader r = {.path = fifo};
        pthread_t th;
        CHECK(pthread_create(&th, NULL, read_fifo, &r) == 0);
        dp_train_opts o;
        train_opts(&o, trd, fifo, DP_TASK_TRAFFIC);
        if (kind)
            o.kind = DP_MODEL_GBT, o.gbt_trees = 2, o.gbt_depth = 2, o.flow.npackets = 4;
        CHECK(dp_train_run(&o, errbuf) == 0);
        pthread_join(th, NULL);
        CHECK(!memcmp(r.got, "DPMODEL", 8));
        static const char *const ext[] = {".ckpt", ".lock", ".curves.tsv", ".curves.png"};
        for (int i = 0; i < 4; i++) {
            snprintf(side, sizeof side, "%s%s", fifo, ext[i]);
            CHECK(access(side, F_OK) != 0);
        }
    }
    dp_train_opts o;
    train_opts(&o, trd, fifo, DP_TASK_TRAFFIC);
    o.resume = 1;
    CHECK(dp_train_run(&o, errbuf) == -1);
    CHECK_STR_CONTAINS(errbuf, "--resume");
    CHECK(access(side, F_OK) != 0);
}

/* ---- 16. test: an impossible report folder and an empty test set fail at once ---- */

static void test_test_command(void)
{
    const char *b = bin(), *sp = corpus_split();
    if (!b || !sp)
        SKIP("no deeppacket binary or no data/corpus");
    char trd[900], ted[900], *model = tmp("test-cmd.model");
    snprintf(trd, sizeof trd, "%s/traffic_classification/train", sp);
    snprintf(ted, sizeof ted, "%s/traffic_classification/test", sp);
    dp_train_opts o;
    train_opts(&o, trd, model, DP_TASK_TRAFFIC);
    CHECK(dp_train_run(&o, errbuf) == 0);
    char out[8192];
    /* the report folder cannot be made: fails before the table is printed */
    CHECK_EQ_INT(sh(out, sizeof out, "%s test -d %s -m %s -o /dev/null/report 2>&1", b, ted, model), 1);
    CHECK_STR_CONTAINS(out, "/dev/null/report");
    CHECK(strstr(out, "recall") == NULL);
    /* a test set of 0 rows */
    char *empty = tmp("empty-test"), p[900];
    CHECK(dp_mkdirs(empty, errbuf) == 0);
    snprintf(p, sizeof p, "%s/vectors.npy", empty);
    CHECK(dp_npy_save(p, DP_NPY_U1, 1, DP_VEC_LEN, "", 0, errbuf) == 0);
    snprintf(p, sizeof p, "%s/labels.npy", empty);
    CHECK(dp_npy_save(p, DP_NPY_I2, 2, 0, "", 0, errbuf) == 0);
    CHECK_EQ_INT(sh(NULL, 0, "cp %s/classes.tsv %s/", ted, empty), 0);
    CHECK_EQ_INT(sh(out, sizeof out, "%s test -d %s -m %s -o %s/r 2>&1", b, empty, model, empty), 1);
    CHECK_STR_CONTAINS(out, "no rows");
    /* and a good one still works */
    CHECK_EQ_INT(sh(out, sizeof out, "%s test -d %s -m %s -o %s/r 2>&1", b, ted, model, empty), 0);
}

/* ---- 1. classify -o: FIFO, symlink, "-"; live output survives kill -9 ---- */

/* A tiny traffic model trained on the corpus split, made once. */
static const char *corpus_model(void)
{
    static char model[600];
    const char *sp = corpus_split();
    if (model[0] || !sp)
        return sp ? model : NULL;
    char trd[900];
    snprintf(trd, sizeof trd, "%s/traffic_classification/train", sp);
    snprintf(model, sizeof model, "%s/corpus.model", dp_test_tmpdir());
    dp_train_opts o;
    train_opts(&o, trd, model, DP_TASK_TRAFFIC);
    if (dp_train_run(&o, errbuf) != 0) {
        fprintf(stderr, "  train: %s\n", errbuf);
        model[0] = 0;
        return NULL;
    }
    return model;
}

/* ---- 16b. a report folder is replaced as a whole ---- */

static int contains(const char *path, const char *needle)
{
    char *s = slurp(path, NULL);
    int yes = s && strstr(s, needle) != NULL;
    free(s);
    return yes;
}

/* Killed half-way, a test leaves the old report whole; a finished one
 * leaves none of an earlier run's files (logprobs.npy without
 * --save-logprobs); a folder holding the user's own files keeps them; a
 * symlink to the folder stays a link. Oracles: the bytes of report.md, the
 * model path each report.json names, lstat. */
static void test_report_folder(void)
{
    const char *b = bin(), *sp = corpus_split(), *m1 = corpus_model();
    if (!b || !sp || !m1)
        SKIP("no deeppacket binary or no data/corpus");
    char ted[900], f[1000], *m2 = tmp("report-m2.model"), *R = tmp("report-folder");
    snprintf(ted, sizeof ted, "%s/traffic_classification/test", sp);
    CHECK_EQ_INT(sh(NULL, 0, "cp %s %s && rm -rf %s", m1, m2, R), 0);
    const char *t = "%s test -q -d %s -m %s -o %s %s > /dev/null 2>&1";
    CHECK_EQ_INT(sh(NULL, 0, t, b, ted, m1, R, "--save-logprobs"), 0);
    snprintf(f, sizeof f, "%s/report.md", R);
    size_t n1;
    char *md1 = slurp(f, &n1);
    CHECK(md1 && n1 > 0);
    /* killed at its second file: the old report, every file of it */
    CHECK_EQ_INT(sh(NULL, 0, "DP_TEST_KILL_AT=commit:2 " "%s test -q -d %s -m %s -o %s > /dev/null 2>&1", b, ted, m2, R), 137);
    size_t n;
    char *md = slurp(f, &n);
    CHECK(md && n == n1 && !memcmp(md, md1, n));
    free(md);
    snprintf(f, sizeof f, "%s/report.json", R);
    CHECK(contains(f, "corpus.model") && !contains(f, "report-m2.model"));
    snprintf(f, sizeof f, "%s/logprobs.npy", R);
    CHECK(access(f, F_OK) == 0);
    /* finished: the new report alone, and no staging folder left */
    CHECK_EQ_INT(sh(NULL, 0, t, b, ted, m2, R, ""), 0);
    CHECK(access(f, F_OK) != 0);
    snprintf(f, sizeof f, "%s/report.json", R);
    CHECK(contains(f, "report-m2.model"));
    CHECK_EQ_INT(sh(NULL, 0, "ls -d %s.* 2> /dev/null | grep -q .", R), 1);
    /* the user's own file in the folder stays; the earlier outputs go */
    snprintf(f, sizeof f, "%s/notes.txt", R);
    CHECK_EQ_INT(sh(NULL, 0, "echo mine > %s", f), 0);
    CHECK_EQ_INT(sh(NULL, 0, t, b, ted, m1, R, "--save-logprobs"), 0);
    CHECK_EQ_INT(sh(NULL, 0, t, b, ted, m2, R, ""), 0);
    CHECK(file_is(f, "mine\n"));
    snprintf(f, sizeof f, "%s/logprobs.npy", R);
    CHECK(access(f, F_OK) != 0);
    /* -o a symlink to a report folder: the link stays a link */
    char *L = tmp("report-link"), *R2 = tmp("report-folder2");
    CHECK_EQ_INT(sh(NULL, 0, "rm -rf %s %s && mkdir %s && ln -s %s %s", L, R2, R2, R2, L), 0);
    CHECK_EQ_INT(sh(NULL, 0, t, b, ted, m1, L, ""), 0);
    struct stat st;
    CHECK(lstat(L, &st) == 0 && S_ISLNK(st.st_mode));
    snprintf(f, sizeof f, "%s/report.json", R2);
    CHECK(contains(f, "corpus.model"));
    free(md1);
}

/* test -j 2 reads the model once: its workers get copies (they read the
 * file again, and got another model when it had been replaced in between:
 * a buffer sized for 11 classes written with 41). Oracle: a FIFO serves
 * the model once; a second read would wait for ever. */
static void test_test_reads_model_once(void)
{
    const char *b = bin(), *sp = corpus_split(), *m = corpus_model();
    if (!b || !sp || !m)
        SKIP("no deeppacket binary or no data/corpus");
    char *fifo = tmp("model-once.fifo"), *R = tmp("report-once");
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    char out[8192];
    CHECK_EQ_INT(sh(out, sizeof out, "(cat %s > %s &); timeout 60 %s test -d %s/traffic_classification/test -m %s "
                    "-o %s -j 2 2>&1", m, fifo, b, sp, fifo, R), 0);
    CHECK_STR_CONTAINS(out, "2 threads");
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

static void test_classify_targets(void)
{
    const char *b = bin(), *m = corpus_model();
    if (!b || !m)
        SKIP("no deeppacket binary or no data/corpus");
    const char *cap = "data/corpus/chat_01.pcap";
    char *ref = tmp("cls-ref.jsonl"), out[8192];
    CHECK_EQ_INT(sh(out, sizeof out, "%s classify -m %s -r %s -o %s 2>&1", b, m, cap, ref), 0);
    size_t n;
    char *want = slurp(ref, &n);
    CHECK(want && count_lines(want) > 10);
    /* a symlink: followed, stays a link */
    char *real = tmp("cls-real.jsonl"), *link = tmp("cls-link.jsonl");
    CHECK(symlink("cls-real.jsonl", link) == 0);
    CHECK_EQ_INT(sh(out, sizeof out, "%s classify -m %s -r %s -o %s 2>&1", b, m, cap, link), 0);
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(dp_test_same_file(real, ref));
    /* "-": standard output */
    char *dash = tmp("cls-dash.jsonl");
    CHECK_EQ_INT(sh(out, sizeof out, "%s classify -m %s -r %s -o - >%s 2>/dev/null", b, m, cap, dash), 0);
    CHECK(dp_test_same_file(dash, ref));
    /* a FIFO: read at the other end, still a FIFO */
    char *fifo = tmp("cls.fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    struct fifo_reader r = {fifo, ""};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, read_fifo, &r) == 0);
    CHECK_EQ_INT(sh(out, sizeof out, "%s classify -m %s -r %s -o %s 2>&1", b, m, cap, fifo), 0);
    pthread_join(th, NULL);
    CHECK(want && !strncmp(r.got, want, strlen(r.got)) && strlen(r.got) > 100);
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    /* a device */
    const char *null = private_null();
    if (null) {
        CHECK_EQ_INT(sh(out, sizeof out, "%s classify -m %s -r %s -o %s 2>&1", b, m, cap, null), 0);
        CHECK(lstat(null, &st) == 0 && S_ISCHR(st.st_mode));
    }
    free(want);
}

/* classify -o OUT stops at the first verdict it cannot write, naming OUT
 * and the write's own errno, exit 1 (it went on to the end and then said
 * "write failed: Invalid argument"): a device (/dev/full, written through
 * as a live -o is), standard output, and a regular file whose write fails
 * (a file size limit), whose old contents stay. --batch 1: every kept
 * packet is a verdict, so "1 classified" shows where it stopped. */
static void test_classify_write_error(void)
{
    const char *b = bin(), *m = corpus_model();
    if (!b || !m)
        SKIP("no deeppacket binary or no data/corpus");
    if (access("/dev/full", W_OK) != 0)
        SKIP("no /dev/full");
    const char *cap = "data/corpus/chat_01.pcap";
    char out[8192];
    CHECK_EQ_INT(sh(out, sizeof out, "%s classify -m %s -r %s --batch 1 -o /dev/full 2>&1", b, m, cap), 1);
    CHECK_STR_CONTAINS(out, "/dev/full: cannot write the verdicts: No space left on device");
    CHECK_STR_CONTAINS(out, " 1 kept, 1 classified,");
    CHECK(strstr(out, "Invalid argument") == NULL);
    CHECK_EQ_INT(sh(out, sizeof out, "%s classify -m %s -r %s --batch 1 2>&1 >/dev/full", b, m, cap), 1);
    CHECK_STR_CONTAINS(out, "standard output: cannot write the verdicts: No space left on device");
    CHECK_STR_CONTAINS(out, " 1 kept, 1 classified,");
    CHECK_EQ_INT(count_lines(out), 3); /* the error and the two summary lines, nothing more */
    /* a regular OUT: the temp file hits the limit, OUT keeps its old lines */
    char *o = tmp("cls-limited.jsonl"), *old = tmp("cls-limited.old");
    CHECK(dp_write_file_atomic(o, "old verdicts\n", 13, errbuf) == 0);
    CHECK(dp_write_file_atomic(old, "old verdicts\n", 13, errbuf) == 0);
    CHECK_EQ_INT(sh(out, sizeof out, "trap '' XFSZ; ulimit -f 1; exec %s classify -m %s -r %s -o %s 2>&1", b, m, cap,
                    o), 1);
    CHECK_STR_CONTAINS(out, "cls-limited.jsonl: cannot write the verdicts: File too large; it was left as it was");
    CHECK(dp_test_same_file(o, old));
    CHECK_EQ_INT(sh(out, sizeof out, "ls %s | grep -c 'cls-limited.jsonl.tmp'", dp_test_tmpdir()), 1); /* none */
}

/* classify -r of a capture cut mid-record (a file still being written,
 * a copy cut short): the verdicts of the frames before the cut are in OUT
 * as they are on standard output (an atomic OUT used to be dropped, so
 * `-o` lost every verdict), the message names the capture and the cut and
 * says what OUT holds, the exit status is 1. Also when a whole capture
 * follows the cut one: its verdicts are there too. */
static void test_classify_cut_capture(void)
{
    const char *b = bin(), *m = corpus_model();
    if (!b || !m)
        SKIP("no deeppacket binary or no data/corpus");
    const char *cap = "data/corpus/chat_01.pcap", *cap2 = "data/corpus/chat_02.pcap";
    char *cut = tmp("cls-cut.pcap"), *o = tmp("cls-cut.jsonl"), *o2 = tmp("cls-cut2.jsonl");
    char *ref = tmp("cls-cut.ref"), out[8192];
    size_t n;
    char *whole = slurp(cap, &n);
    CHECK(whole && n > 200);
    if (!whole)
        return;
    CHECK(dp_write_file_atomic(cut, whole, n - 7, errbuf) == 0); /* the last record cut short */
    free(whole);
    CHECK_EQ_INT(sh(out, sizeof out, "%s classify -m %s -r %s >%s 2>&1", b, m, cut, ref), 1);
    CHECK_EQ_INT(sh(out, sizeof out, "%s classify -m %s -r %s 2>/dev/null >%s", b, m, cut, ref), 1);
    CHECK_EQ_INT(sh(out, sizeof out, "%s classify -m %s -r %s -o %s 2>&1", b, m, cut, o), 1);
    CHECK_STR_CONTAINS(out, "cls-cut.pcap: truncated dump file");
    CHECK_STR_CONTAINS(out, "cls-cut.jsonl holds the verdicts of the frames read before the error");
    CHECK(dp_test_same_file(o, ref));
    char *lines = slurp(o, NULL);
    CHECK(lines && count_lines(lines) > 10);
    free(lines);
    CHECK_EQ_INT(sh(out, sizeof out, "%s classify -m %s -r %s %s -o %s 2>&1", b, m, cut, cap2, o2), 1);
    CHECK_EQ_INT(sh(out, sizeof out, "grep -c '\"source\":\"%s\"' %s", cap2, o2), 0);
    CHECK(atoi(out) > 10);
}

/* classify -r stopped by SIGINT or SIGTERM (DP_TEST_KILL_AT=classify:N:SIG:
 * after the N-th frame) has incomplete verdicts: the old OUT stays byte for
 * byte (it used to be replaced by the truncated file, exit 0), no temp file
 * is left, the message says so, the exit status is 128 + the signal. Also
 * when the signal falls in the first of two captures; a kill point past the
 * last frame changes nothing (exit 0, OUT replaced). */
static void test_classify_interrupted(void)
{
    const char *b = bin(), *m = corpus_model();
    if (!b || !m)
        SKIP("no deeppacket binary or no data/corpus");
    const char *cap = "data/corpus/chat_01.pcap", *cap2 = "data/corpus/chat_02.pcap";
    char *o = tmp("cls-int.jsonl"), *old = tmp("cls-int.old"), out[8192];
    CHECK_EQ_INT(sh(out, sizeof out, "%s classify -m %s -r %s -o %s 2>&1", b, m, cap2, o), 0);
    CHECK_EQ_INT(sh(NULL, 0, "cp %s %s", o, old), 0);
    static const struct {
        int sig, status;
        const char *name;
    } t[] = {{SIGINT, 130, "SIGINT"}, {SIGTERM, 143, "SIGTERM"}};
    for (int k = 0; k < 2; k++) {
        CHECK_EQ_INT(sh(out, sizeof out, "DP_TEST_KILL_AT=classify:20:%d %s classify -m %s -r %s -o %s 2>&1", t[k].sig,
                        b, m, cap, o), t[k].status);
        char want[900];
        snprintf(want, sizeof want, "interrupted (%s) before the end of the captures: %s was left as it was",
                 t[k].name, o);
        CHECK_STR_CONTAINS(out, want);
        CHECK_STR_CONTAINS(out, "20 packets seen");
        CHECK(dp_test_same_file(o, old));
    }
    /* in the first of two captures */
    CHECK_EQ_INT(sh(out, sizeof out, "DP_TEST_KILL_AT=classify:5:%d %s classify -m %s -r %s %s -o %s 2>&1", SIGINT, b,
                    m, cap, cap2, o), 130);
    CHECK(dp_test_same_file(o, old));
    CHECK_EQ_INT(sh(out, sizeof out, "ls %s | grep -c 'cls-int.jsonl.tmp'", dp_test_tmpdir()), 1); /* none */
    /* standard output: the verdicts are out, and said to be incomplete */
    CHECK_EQ_INT(sh(out, sizeof out, "DP_TEST_KILL_AT=classify:20:%d %s classify -m %s -r %s 2>&1 >/dev/null", SIGINT,
                    b, m, cap), 130);
    CHECK_STR_CONTAINS(out, "the verdicts written to standard output are incomplete");
    /* never reached: a whole run */
    CHECK_EQ_INT(sh(out, sizeof out, "DP_TEST_KILL_AT=classify:1000000:%d %s classify -m %s -r %s -o %s 2>&1", SIGINT,
                    b, m, cap, o), 0);
    CHECK(!dp_test_same_file(o, old));
}

/* `test -o R` with R/predictions.npy a FIFO: the reader gets the same bytes
 * as a regular run's file (a whole .npy that numpy loads), not a header of
 * shape (0,) and "cannot finish npy header: Illegal seek". */
static void test_test_npy_fifo(void)
{
    const char *b = bin(), *m = corpus_model(), *sp = corpus_split();
    if (!b || !m || !sp)
        SKIP("no deeppacket binary or no data/corpus");
    char ted[900], out[8192];
    snprintf(ted, sizeof ted, "%s/traffic_classification/test", sp);
    char *ref = tmp("npy-ref"), *r3 = tmp("npy-r3");
    CHECK_EQ_INT(sh(out, sizeof out, "%s test -d %s -m %s -o %s 2>&1", b, ted, m, ref), 0);
    CHECK(dp_mkdirs(r3, errbuf) == 0);
    char fifo[900], want[900], got[900];
    snprintf(fifo, sizeof fifo, "%s/predictions.npy", r3);
    snprintf(want, sizeof want, "%s/predictions.npy", ref);
    snprintf(got, sizeof got, "%s", tmp("npy-got.npy"));
    CHECK(mkfifo(fifo, 0600) == 0);
    dp_test_fifo_copy c = {fifo, got, -1};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, dp_test_copy_fifo, &c) == 0);
    int rc = sh(out, sizeof out, "%s test -d %s -m %s -o %s 2>&1", b, ted, m, r3);
    if (rc != 0)
        fprintf(stderr, "  %s\n", out);
    CHECK_EQ_INT(rc, 0);
    pthread_join(th, NULL);
    CHECK(c.n > 128);
    CHECK(dp_test_same_file(got, want));
    struct stat st;
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    if (sh(NULL, 0, "/usr/bin/python3 -c 'import numpy' 2>/dev/null") == 0)
        CHECK_EQ_INT(sh(out, sizeof out, "/usr/bin/python3 -c \"import numpy as np, sys; "
                        "a=np.load('%s'); b=np.load('%s'); assert a.dtype==np.int16 and a.shape==b.shape "
                        "and a.shape[0]>0 and (a==b).all()\" 2>&1", got, want), 0);
}

/* Sends datagrams to 127.0.0.1:port every 5 ms until stop is set (120 s at
 * most): for as long as a live test waits for what it sees. */
struct udp_flood {
    int port;
    volatile int stop;
};

static void *send_udp(void *arg)
{
    struct udp_flood *f = arg;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)f->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char msg[300];
    memset(msg, 'x', sizeof msg);
    double t0 = dp_now();
    for (int i = 0; !f->stop && dp_now() - t0 < 120; i++) {
        sendto(fd, msg, 60 + (size_t)(i % 200), 0, (struct sockaddr *)&a, sizeof a);
        usleep(5000);
    }
    close(fd);
    return NULL;
}

/* A live command (cmd, "%d" for the UDP port it filters on) run by the shell
 * while a thread sends it packets on lo; live_stop kills it with SIGKILL. */
typedef struct live_run {
    struct udp_flood f;
    pid_t pid;
    pthread_t th;
    char tmp[700]; /* OUT.tmp.<pid>, where an atomic writer would put OUT */
} live_run;

static void live_start(live_run *L, const char *cmd_fmt, const char *out, int port_salt)
{
    char cmd[2000];
    L->f.port = 30000 + (int)((getpid() + port_salt) % 20000);
    L->f.stop = 0;
    snprintf(cmd, sizeof cmd, cmd_fmt, L->f.port);
    L->pid = fork();
    if (L->pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    CHECK(pthread_create(&L->th, NULL, send_udp, &L->f) == 0);
    snprintf(L->tmp, sizeof L->tmp, "%s.tmp.%ld", out, (long)L->pid);
}

static void live_stop(live_run *L)
{
    kill(L->pid, SIGKILL);
    waitpid(L->pid, NULL, 0);
    L->f.stop = 1;
    pthread_join(L->th, NULL);
}

static void test_classify_live_kill9(void)
{
    const char *b = bin(), *m = corpus_model();
    if (!b || !m)
        SKIP("no deeppacket binary or no data/corpus");
    if (geteuid() != 0)
        SKIP("live capture needs root");
    char *o = tmp("live-out.jsonl"), fmt[1500];
    snprintf(fmt, sizeof fmt, "exec %s classify -m %s -i lo -f 'udp and dst port %%d' -o %s 2>/dev/null", b, m, o);
    live_run L;
    live_start(&L, fmt, o, 0);
    const char *tp = L.tmp;
    int lines = 0; /* in OUT or (the old way) its temp file */
    for (int i = 0; i < 1200 && lines < 5; i++) { /* up to 60 s (a slow start: ASan, a loaded machine) */
        usleep(50000);
        char *s = slurp(o, NULL), *t = slurp(tp, NULL);
        lines = count_lines(s) + count_lines(t);
        free(s);
        free(t);
    }
    live_stop(&L);
    if (lines == 0 && access(tp, F_OK) != 0)
        SKIP("no verdict from the loopback interface within 60 s");
    char *s = slurp(o, NULL);
    CHECK(count_lines(s) >= 5); /* in OUT itself, written before the kill */
    CHECK(s && strstr(s, "\"label\""));
    free(s);
    CHECK(access(tp, F_OK) != 0);
}

/* capture -w: the frames written are in OUT after kill -9 (a valid pcap). */
static void test_capture_live_kill9(void)
{
    const char *b = bin();
    if (!b)
        SKIP("no deeppacket binary ($BUILD/deeppacket)");
    if (geteuid() != 0)
        SKIP("live capture needs root");
    char *o = tmp("live-cap.pcap"), fmt[1500];
    snprintf(fmt, sizeof fmt, "exec %s capture --interface lo --filter 'udp and dst port %%d' --write %s 2>/dev/null", b, o);
    live_run L;
    live_start(&L, fmt, o, 7);
    const char *tp = L.tmp;
    struct stat st;
    off_t size = 0;
    /* up to 60 s for 5 frames (a record is at most 16 + 42 + 259 bytes here) */
    for (int i = 0; i < 1200 && size < 24 + 5 * (16 + 42 + 259); i++) {
        usleep(50000);
        size = stat(o, &st) == 0 ? st.st_size : stat(tp, &st) == 0 ? st.st_size : 0;
    }
    live_stop(&L);
    if (size == 0)
        SKIP("nothing captured on the loopback interface within 60 s");
    CHECK(access(tp, F_OK) != 0);
    dp_capture *cap = dp_capture_open_file(o, errbuf);
    CHECK(cap != NULL);
    int n = 0;
    dp_frame g;
    while (cap && dp_capture_next(cap, &g, errbuf) == DP_NEXT_FRAME)
        n++;
    CHECK(n >= 5);
    dp_capture_close(cap);
}

/* capture -w OUT stopped by a write error (a file size limit standing in for
 * a full disk): the summary names OUT, the frames that are in it and the
 * error (it said "N frames written to (nothing)"), exit 1; OUT holds those N
 * frames (and at most part of the next). */
static void test_capture_write_error(void)
{
    const char *b = bin();
    if (!b)
        SKIP("no deeppacket binary ($BUILD/deeppacket)");
    if (geteuid() != 0)
        SKIP("live capture needs root");
    char *o = tmp("cap-limited.pcap"), *e = tmp("cap-limited.err"), fmt[1500];
    snprintf(fmt, sizeof fmt, "trap '' XFSZ; ulimit -f 4; exec %s capture -i lo -f 'udp and dst port %%d' -w %s 2>%s", b,
             o, e);
    live_run L;
    live_start(&L, fmt, o, 11);
    int st = 0, done = 0;
    for (int i = 0; i < 1200 && !done; i++) { /* up to 60 s; the limit (2 KB) fills in well under 1 s */
        usleep(50000);
        done = waitpid(L.pid, &st, WNOHANG) == L.pid;
    }
    L.f.stop = 1;
    pthread_join(L.th, NULL);
    if (!done) {
        kill(L.pid, SIGKILL);
        waitpid(L.pid, NULL, 0);
        char *s = slurp(e, NULL);
        int listening = s && strstr(s, "listening");
        free(s);
        if (!listening)
            SKIP("the loopback interface could not be opened");
    }
    CHECK(done && WIFEXITED(st) && WEXITSTATUS(st) == 1);
    char *s = slurp(e, NULL), want[900];
    CHECK(s && strstr(s, "(nothing)") == NULL);
    const char *p = s ? strstr(s, " frames (") : NULL;
    while (p && p > s && p[-1] != ' ')
        p--;
    long n = p ? strtol(p, NULL, 10) : -1;
    snprintf(want, sizeof want, "written to %s in ", o);
    CHECK_STR_CONTAINS(s, want);
    snprintf(want, sizeof want, "then stopped by an error: %s: write error: File too large", o);
    CHECK_STR_CONTAINS(s, want);
    free(s);
    CHECK(n > 0);
    dp_capture *cap = dp_capture_open_file(o, errbuf);
    CHECK(cap != NULL);
    long got = 0;
    dp_frame g;
    while (cap && dp_capture_next(cap, &g, errbuf) == DP_NEXT_FRAME)
        got++;
    dp_capture_close(cap);
    CHECK_EQ_INT(got, n);
}

/* ---- preprocess: resume from the commit phase, keep the previous dataset ---- */

static int run_pp_stop(const char *src, const char *dst, size_t stop_after, dp_preprocess_stats *st, char *eb)
{
    dp_preprocess_opts o;
    corpus_pp_opts(&o, src, dst);
    dp_pp_knobs k = {.stop_after = stop_after};
    int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2); /* notes about the non-captures */
    int rc = dp_preprocess_run_knobs(&o, &k, st, eb);
    dup2(saved, 2);
    close(saved);
    close(devnull);
    return rc;
}

static int run_pp(const char *src, const char *dst, dp_preprocess_stats *st, char *eb)
{
    return run_pp_stop(src, dst, 0, st, eb);
}

static int same_dataset(const char *a, const char *b)
{
    static const char *const files[] = {"vectors.npy", "app.npy", "traffic.npy", "meta.npy", "files.tsv"};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        char pa[900], pb[900];
        snprintf(pa, sizeof pa, "%s/%s", a, files[k]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[k]);
        if (!dp_test_same_file(pa, pb))
            return 0;
    }
    return 1;
}

/* 8. killed at each step of the commit, the rerun resumes: it reads no
 * capture again and writes the same bytes. */
static void test_pp_commit_resume(void)
{
    const char *b = bin(), *ref = corpus_dataset();
    if (!b || !ref)
        SKIP("no deeppacket binary or no data/corpus");
    char out[8192];
    for (int k = 1; k <= 8; k += 3) {
        char dst[700];
        snprintf(dst, sizeof dst, "%s/pp-commit-%d", dp_test_tmpdir(), k);
        int rc = sh(out, sizeof out, "DP_TEST_KILL_AT=pp-commit:%d %s preprocess -q -j 2 -s data/corpus -t %s "
                    "--labels data/corpus/labels.tsv 2>&1", k, b, dst);
        CHECK(rc != 0); /* killed */
        CHECK(!dp_preprocess_complete(dst));
        dp_preprocess_stats st;
        CHECK_EQ_INT(run_pp("data/corpus", dst, &st, errbuf), 0);
        CHECK_EQ_INT(st.processed, 0);
        CHECK_EQ_INT(st.reused, st.captures);
        CHECK(same_dataset(dst, ref));
        CHECK_EQ_INT(count_tmp(dst), 0);
    }
}

/* 9. a rerun that fails or is killed leaves the previous dataset complete and
 * as it was, and says so. */
static void test_pp_failed_rerun(void)
{
    const char *b = bin(), *ref = corpus_dataset();
    if (!b || !ref)
        SKIP("no deeppacket binary or no data/corpus");
    char *src = tmp("pp-src"), *dst = tmp("pp-keep"), out[8192];
    CHECK_EQ_INT(sh(NULL, 0, "cp -r data/corpus %s", src), 0);
    CHECK_EQ_INT(run_pp(src, dst, NULL, errbuf), 0);
    /* the sources change; the rerun is killed in the commit, before the renames */
    CHECK_EQ_INT(sh(NULL, 0, "touch -d '2020-01-01' %s/chat_01.pcap", src), 0);
    CHECK(sh(out, sizeof out, "DP_TEST_KILL_AT=pp-commit:6 %s preprocess -q -s %s -t %s "
             "--labels data/corpus/labels.tsv 2>&1", b, src, dst) != 0);
    CHECK(dp_preprocess_complete(dst));
    CHECK(same_dataset(dst, ref));
    /* a rerun that fails (files limited to 1 MB: writes fail with EFBIG) */
    CHECK_EQ_INT(sh(NULL, 0, "touch -d '2020-01-02' %s/chat_01.pcap", src), 0);
    CHECK_EQ_INT(sh(out, sizeof out, "trap '' XFSZ; ulimit -f 1024; %s preprocess -q -s %s -t %s "
                    "--labels data/corpus/labels.tsv 2>&1", b, src, dst), 1);
    CHECK_STR_CONTAINS(out, "the previous dataset is unchanged");
    CHECK_STR_CONTAINS(out, ".parts keeps");
    CHECK(dp_preprocess_complete(dst));
    CHECK(same_dataset(dst, ref));
    /* and the next run completes */
    dp_preprocess_stats st;
    CHECK_EQ_INT(run_pp(src, dst, &st, errbuf), 0);
    CHECK(same_dataset(dst, ref));
}

/* Makes mnt a tmpfs of one page in a mount namespace of this process's
 * own (as root), and fills it. 0, or -1 when this process may not. */
static int full_tmpfs(const char *mnt)
{
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=4k") != 0)
        return -1;
    char fill[700];
    snprintf(fill, sizeof fill, "%s/fill", mnt);
    int fd = open(fill, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char page[4096];
    memset(page, 'x', sizeof page);
    while (fd >= 0 && write(fd, page, sizeof page) > 0)
        ;
    return fd >= 0 && close(fd) == 0 ? 0 : -1;
}

/* A preprocess run in a child (pp_summary_link): its folders, and where
 * to mount a full tmpfs first (NULL: none). */
typedef struct pp_in_child {
    const char *src, *dst, *full;
} pp_in_child;

/* What it reported: whether the tmpfs could not be made, and the message. */
typedef struct pp_report {
    int no_tmpfs;
    char err[DP_ERRBUF_SIZE];
} pp_report;

static void run_pp_in_child(const void *what, void *res)
{
    const pp_in_child *w = what;
    pp_report *r = res;
    memset(r, 0, sizeof *r);
    if (w->full && full_tmpfs(w->full) != 0)
        r->no_tmpfs = 1;
    else if (run_pp(w->src, w->dst, NULL, r->err) == 0)
        snprintf(r->err, sizeof r->err, "preprocess succeeded");
}

/* preprocess of src into dst whose summary.json is a link to `to`, in a
 * child; with full (a folder), `to` is in a full tmpfs mounted there for the
 * child alone. 0 with what it reported in *r, -1 when it did not report. */
static int pp_summary_link(const char *src, const char *dst, const char *to, const char *full, pp_report *r)
{
    char link[800];
    snprintf(link, sizeof link, "%s/summary.json", dst);
    if (dp_mkdirs(dst, errbuf) != 0 || symlink(to, link) != 0)
        return -1;
    pp_in_child w = {src, dst, full};
    int rfd;
    pid_t c = spawn_reporting(NULL, run_pp_in_child, &w, r, sizeof *r, &rfd);
    return c < 0 ? -1 : collect_report(c, rfd, r, sizeof *r);
}

/* 9b. summary.json that cannot be written once the new arrays are in (the
 * disk full by then; or its link's folder gone): the message says that the
 * dataset is incomplete and what to do, not the write error alone. */
static void test_pp_summary_fails(void)
{
    char *src = tmp("sum-src"), *mnt = tmp("sum-full");
    CHECK_EQ_INT(sh(NULL, 0, "mkdir -p %s %s && cp data/corpus/chat_0[1-3].pcap %s", src, mnt, src), 0);
    for (int full = 0; full < 2; full++) {
        char dst[700], to[800];
        snprintf(dst, sizeof dst, "%s/sum-ds-%d", dp_test_tmpdir(), full);
        snprintf(to, sizeof to, "%s/summary.json", full ? mnt : tmp("sum-no-such-folder"));
        pp_report r;
        CHECK_EQ_INT(pp_summary_link(src, dst, to, full ? mnt : NULL, &r), 0);
        if (r.no_tmpfs)
            SKIP("a tmpfs cannot be mounted here (not root?): the full disk was not tried");
        CHECK_STR_CONTAINS(r.err, "summary.json");
        CHECK_STR_CONTAINS(r.err, full ? "No space left on device" : "does not exist");
        CHECK_STR_CONTAINS(r.err, "; the dataset is incomplete (no summary.json): rerun preprocess");
        CHECK(!dp_preprocess_complete(dst));
    }
}

/* 16. a corrupt row in the partial arrays of an interrupted run is found by
 * the resume (journal checksums): that capture and the later ones are merged
 * again, and the dataset is the uninterrupted run's. */
static void test_pp_corrupt_partial(void)
{
    const char *ref = corpus_dataset();
    if (!ref)
        SKIP("no data/corpus");
    char *dst = tmp("pp-corrupt");
    dp_preprocess_stats st;
    CHECK_EQ_INT(run_pp_stop("data/corpus", dst, 20, &st, errbuf), 0);
    CHECK_EQ_INT(st.interrupted, 1);
    /* flip a byte of a row near the end of what was merged */
    char vp[900];
    snprintf(vp, sizeof vp, "%s/.parts/vectors.npy.partial", dst);
    struct stat vs;
    CHECK(stat(vp, &vs) == 0 && vs.st_size > 128 + 3 * DP_VEC_LEN);
    int fd = open(vp, O_RDWR);
    off_t at = 128 + ((vs.st_size - 128) / DP_VEC_LEN - 2) * DP_VEC_LEN + 40;
    uint8_t byte = 0;
    CHECK(fd >= 0 && pread(fd, &byte, 1, at) == 1);
    byte ^= 0x5a;
    CHECK(pwrite(fd, &byte, 1, at) == 1);
    close(fd);
    CHECK_EQ_INT(run_pp("data/corpus", dst, &st, errbuf), 0);
    CHECK(st.reused < 20);
    CHECK(same_dataset(dst, ref));
}

/* Splits a journal line (dp_pp_merge.c's journal_body, then its checksum)
 * at its tabs into f[0..11): ord, relhash, size, mtime, frames, kept,
 * skipped, rows_end, rows_hash, status, checksum. 0, or -1 when it has
 * another number of fields. */
static int journal_fields(char *line, char *f[11])
{
    int n = 0;
    for (char *t; (t = strsep(&line, "\t")) != NULL; n++)
        if (n < 11)
            f[n] = t;
    return n == 11 ? 0 : -1;
}

/* Cuts the journal of the run stopped in dst after capture 1's line and
 * changes that line, its checksum written again (the loader trusts any
 * line whose checksum matches). wrap: kept and frames 2^64 - 1, so that
 * rows_end, capture 0's rows_end + kept, wraps to one row less, and no row
 * (rows_hash 0); else frames one less than kept. 0 or -1. */
static int forge_journal(const char *dst, int wrap)
{
    char path[900], line[1024];
    snprintf(path, sizeof path, "%s/.parts/journal", dst);
    char *text = slurp(path, NULL);
    char *e0 = text ? strchr(text, '\n') : NULL; /* the ends of the head, line 0, line 1 */
    char *e1 = e0 ? strchr(e0 + 1, '\n') : NULL, *e2 = e1 ? strchr(e1 + 1, '\n') : NULL;
    if (!e2) {
        free(text);
        return -1;
    }
    char *keep = strndup(text, (size_t)(e1 - text) + 1), *c0 = strndup(e0 + 1, (size_t)(e1 - e0) - 1);
    char *c1 = strndup(e1 + 1, (size_t)(e2 - e1) - 1), *f0[11], *f[11], *out = NULL;
    int rc = -1;
    if (keep && c0 && c1 && journal_fields(c0, f0) == 0 && journal_fields(c1, f) == 0) {
        unsigned long long kept = strtoull(f[5], NULL, 10), frames = kept - 1, end = strtoull(f[7], NULL, 10);
        unsigned long long hash = strtoull(f[8], NULL, 16);
        if (wrap) {
            kept = frames = UINT64_MAX;
            end = strtoull(f0[7], NULL, 10) + kept; /* wraps */
            hash = 0;
        }
        int n = snprintf(line, sizeof line, "%s\t%s\t%s\t%s\t%llu\t%llu\t%s\t%llu\t%016llx\t%s", f[0], f[1], f[2],
                         f[3], frames, kept, f[6], end, hash, f[9]);
        if (asprintf(&out, "%s%s\t%016llx\n", keep, line, (unsigned long long)dp_fnv1a(line, (size_t)n, DP_FNV_INIT)) > 0)
            rc = dp_write_file_atomic(path, out, strlen(out), errbuf);
    }
    free(out);
    free(keep);
    free(c0);
    free(c1);
    free(text);
    return rc;
}

/* 16b. a journal line that a resume must not trust although its checksum
 * matches: a kept count that wraps the row count (rows_end == rows + kept
 * only modulo 2^64), or more kept packets than frames. That capture and the
 * later ones are merged again, and the dataset is the uninterrupted run's. */
static void test_pp_journal_wrap(void)
{
    const char *ref = corpus_dataset();
    if (!ref)
        SKIP("no data/corpus");
    for (int wrap = 1; wrap >= 0; wrap--) {
        char *dst = tmp(wrap ? "pp-wrap" : "pp-kept");
        dp_preprocess_stats st;
        CHECK_EQ_INT(run_pp_stop("data/corpus", dst, 20, &st, errbuf), 0);
        CHECK_EQ_INT(forge_journal(dst, wrap), 0);
        CHECK_EQ_INT(run_pp("data/corpus", dst, &st, errbuf), 0);
        CHECK_EQ_INT(st.reused, 1); /* capture 0 alone */
        CHECK(same_dataset(dst, ref));
    }
}

/* ---- preprocess: a damaged part file of a killed run is redone ---- */

typedef struct warns {
    char text[16384];
    size_t len;
} warns;

static void collect_warn(void *ctx, const char *file, const char *msg, int is_note)
{
    warns *w = ctx;
    int n = snprintf(w->text + w->len, sizeof w->text - w->len, "%s: %s: %s\n", is_note ? "note" : "warning",
                     file, msg);
    if (n > 0 && w->len + (size_t)n < sizeof w->text)
        w->len += (size_t)n;
}

/* preprocess of data/corpus into dst with 2 workers and the chunk_bytes
 * knob (0: none; 1: captures spill to part files); warnings into w. */
static int run_pp_parts(const char *dst, size_t chunk_bytes, warns *w, char *eb)
{
    dp_preprocess_opts o;
    corpus_pp_opts(&o, "data/corpus", dst);
    o.warn = collect_warn;
    o.warn_ctx = w;
    memset(w, 0, sizeof *w);
    dp_pp_knobs k = {.chunk_bytes = chunk_bytes};
    return dp_preprocess_run_knobs(&o, &k, NULL, eb);
}

/* A run into dst killed once a spilled capture's part file is whole
 * (pp-part:1, in a child; spilling is a race with the merge, so it is tried
 * until one spills). 1 with the part's path in part. */
static int killed_with_part(const char *dst, char *part, size_t cap)
{
    for (int tries = 0; tries < 20; tries++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            setenv("DP_TEST_KILL_AT", "pp-part:1", 1);
            warns w;
            char eb[DP_ERRBUF_SIZE];
            _exit(run_pp_parts(dst, 1, &w, eb) == 0 ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        char out[1024] = "";
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
            sh(out, sizeof out, "ls %s/.parts/*.part 2>/dev/null | head -1", dst) == 0 && out[0]) {
            out[strcspn(out, "\n")] = 0;
            snprintf(part, cap, "%s", out);
            return 1;
        }
        dp_remove_tree(dst);
    }
    return 0;
}

/* Damages the part file at path: 0, 8 bytes of its first record changed
 * (its meta row); 1, a range of its records zeroed; 2, a digit of the
 * trailer's frame count changed; 3, cut short. */
static int damage_part(const char *path, int how)
{
    size_t n = 0;
    char *b = slurp(path, &n);
    int fd = open(path, O_RDWR);
    int ok = b && fd >= 0 && n > 200;
    if (ok && how == 0) {
        for (int i = 8; i < 16; i++)
            b[i] ^= 0x5a;
        ok = pwrite(fd, b + 8, 8, 8) == 8;
    } else if (ok && how == 1) {
        size_t len = n / 3 < 4000 ? n / 3 : 4000;
        memset(b, 0, len);
        ok = pwrite(fd, b, len, (off_t)(n / 3)) == (ssize_t)len;
    } else if (ok && how == 2) {
        char *f = NULL;
        for (size_t i = n > 1000 ? n - 1000 : 0; i + 8 < n && !f; i++)
            if (!memcmp(b + i, "\nframes=", 8))
                f = b + i + 8;
        ok = f && *f >= '0' && *f <= '9';
        if (ok) {
            *f = *f == '1' ? '2' : '1';
            ok = pwrite(fd, f, 1, f - b) == 1;
        }
    } else if (ok) {
        ok = ftruncate(fd, (off_t)(n - 20)) == 0;
    }
    if (fd >= 0)
        close(fd);
    free(b);
    return ok;
}

/* 17. a part file of a killed run that was changed since (8 bytes, a zeroed
 * range, its trailer, cut short) is not merged: the rerun says which part
 * of which capture is damaged and how, removes it, reads the capture again
 * and makes the dataset of an uninterrupted run; it never fails for it. */
static void test_pp_damaged_part(void)
{
    const char *ref = corpus_dataset();
    if (!ref)
        SKIP("no data/corpus");
    static const char *const why[] = {"do not match their checksum", "", "trailer does not match",
                                      "no whole trailer"};
    for (int how = 0; how < 4; how++) {
        char dst[700], part[900];
        snprintf(dst, sizeof dst, "%s/pp-part-%d", dp_test_tmpdir(), how);
        CHECK(killed_with_part(dst, part, sizeof part));
        CHECK(damage_part(part, how));
        warns w;
        int rc = run_pp_parts(dst, 0, &w, errbuf);
        if (rc != 0)
            fprintf(stderr, "  damage %d: %s\n", how, errbuf);
        CHECK_EQ_INT(rc, 0);
        CHECK_STR_CONTAINS(w.text, part);
        CHECK_STR_CONTAINS(w.text, "is damaged (");
        CHECK_STR_CONTAINS(w.text, why[how]);
        CHECK_STR_CONTAINS(w.text, "the capture is read again");
        CHECK(same_dataset(dst, ref));
        CHECK(access(part, F_OK) != 0);
    }
}

/* ---- readers get one generation of a dataset or of a split folder ---- */

/* What a child saw when it opened a folder (open_across). */
typedef struct opened {
    int rc;
    uint64_t n, sum;
    char err[DP_ERRBUF_SIZE];
} opened;

static uint64_t npy_sum(uint64_t h, const dp_npy *a)
{
    return a->map ? dp_hash8(h, a->map, a->map_len) : h;
}

/* Opens dir, a dataset (split_task < 0) or a split folder of that task, into
 * *o: rc, rows, a checksum of every array. */
static void open_sum(const char *dir, int split_task, opened *o)
{
    memset(o, 0, sizeof *o);
    if (split_task < 0) {
        dp_dataset d;
        if ((o->rc = dp_dataset_open(&d, dir, o->err)) == 0) {
            o->n = d.n;
            o->sum = npy_sum(npy_sum(npy_sum(npy_sum(0, &d.vectors), &d.cls[0]), &d.cls[1]), &d.meta);
            dp_dataset_close(&d);
        }
    } else {
        dp_splitset st;
        if ((o->rc = dp_splitset_open_task(&st, dir, split_task, o->err)) == 0) {
            o->n = st.n;
            o->sum = npy_sum(npy_sum(npy_sum(0, &st.vectors), &st.labels), &st.meta);
            dp_splitset_close(&st);
        }
    }
}

/* run(what, res) in a child stopped (DP_TEST_KILL_AT=PHASE:N:SIGSTOP) at the
 * N-th pass through PHASE; while it is stopped, change(arg) runs; then it
 * goes on. 0 with what it wrote into res[size]; -1 when it did not stop
 * there or did not report. */
static int run_across(const char *phase, int n, void (*run)(const void *what, void *res), const void *what,
                      void *res, size_t size, void (*change)(void *), void *arg)
{
    char env[64];
    snprintf(env, sizeof env, "%s:%d:%d", phase, n, SIGSTOP);
    int rfd, st = 0;
    pid_t c = spawn_reporting(env, run, what, res, size, &rfd);
    if (c < 0)
        return -1;
    waitpid(c, &st, WUNTRACED);
    if (WIFSTOPPED(st)) {
        change(arg);
        kill(c, SIGCONT);
        return collect_report(c, rfd, res, size);
    }
    if (!WIFEXITED(st) && !WIFSIGNALED(st)) {
        kill(c, SIGKILL);
        waitpid(c, &st, 0);
    }
    close(rfd);
    return -1;
}

/* A folder to open (open_across): a dataset (split_task < 0) or a split
 * folder of that task. */
typedef struct to_open {
    const char *dir;
    int split_task;
} to_open;

static void run_open_sum(const void *what, void *res)
{
    const to_open *t = what;
    open_sum(t->dir, t->split_task, res);
}

/* open_sum in a child stopped (DP_TEST_KILL_AT=PHASE:1:SIGSTOP) in the middle
 * of the open; while it is stopped, change(arg) runs; then it goes on. 0 with
 * what it saw in *o; -1 when it did not stop there or did not report. */
static int open_across(const char *phase, const char *dir, int split_task, void (*change)(void *), void *arg,
                       opened *o)
{
    to_open t = {dir, split_task};
    return run_across(phase, 1, run_open_sum, &t, o, sizeof *o, change, arg);
}

static void commit_corpus(void *dst)
{
    CHECK_EQ_INT(run_pp("data/corpus", dst, NULL, errbuf), 0);
}

/* A commit killed in its renames: summary.json gone, the label and meta
 * arrays of another dataset (arg: {target, other}) renamed in. */
static void half_commit(void *arg)
{
    const char *const *dirs = arg;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd %s && rm summary.json && for f in app traffic meta; do cp %s/$f.npy $f.npy.new && "
             "mv $f.npy.new $f.npy; done", dirs[0], dirs[1]);
    CHECK_EQ_INT(sh(NULL, 0, "%s", cmd), 0);
}

/* 18. a dataset opened while preprocess commits another one over it: the
 * reader (split, train, test, merge) gets the arrays of one of them, never
 * old vectors with new labels; when the dataset is left half replaced it
 * says it changed while it was being opened. */
static void test_dataset_open_one_generation(void)
{
    const char *ref = corpus_dataset();
    if (!ref)
        SKIP("no data/corpus");
    char *src = tmp("gen-src"), *dst = tmp("gen-ds");
    CHECK_EQ_INT(sh(NULL, 0, "mkdir -p %s && cp data/corpus/chat_0[1-3].pcap %s", src, src), 0);
    CHECK_EQ_INT(run_pp(src, dst, NULL, errbuf), 0);
    opened old, fresh, got;
    open_sum(dst, -1, &old);
    open_sum(ref, -1, &fresh);
    CHECK(old.rc == 0 && fresh.rc == 0 && old.n != fresh.n);
    /* stopped after vectors.npy, the corpus is committed over it */
    CHECK_EQ_INT(open_across("ds-open", dst, -1, commit_corpus, dst, &got), 0);
    if (got.rc != 0)
        fprintf(stderr, "  open: %s\n", got.err);
    CHECK_EQ_INT(got.rc, 0);
    CHECK_EQ_INT(got.n, fresh.n);
    CHECK(got.sum == fresh.sum);
    /* a commit killed in its renames: no mix, a clear message */
    CHECK_EQ_INT(run_pp(src, dst, NULL, errbuf), 0);
    const char *dirs[2] = {dst, ref};
    CHECK_EQ_INT(open_across("ds-open", dst, -1, half_commit, (void *)dirs, &got), 0);
    CHECK(got.rc != 0);
    CHECK_STR_CONTAINS(got.err, "the dataset changed while it was being opened");
    CHECK_STR_CONTAINS(got.err, "incomplete dataset");
}

/* A preprocess for the merge test: src into dst with a label table and a
 * filter (NULL: none), as shard 0/1 when shard is set. */
typedef struct pp_job {
    const char *src, *dst, *labels, *filter;
    int shard;
} pp_job;

static int run_pp_job(const pp_job *j, char *eb)
{
    dp_preprocess_opts o;
    corpus_pp_opts(&o, j->src, j->dst);
    o.labels_path = j->labels;
    o.filter = j->filter;
    o.shard_count = j->shard ? 1 : 0;
    return dp_preprocess_run(&o, NULL, eb);
}

static void repreprocess(void *job)
{
    CHECK_EQ_INT(run_pp_job(job, errbuf), 0);
}

/* dp_merge_run of the one shard what[0] into what[1]; rc and message in
 * res (an opened). */
static void run_merge_one(const void *what, void *res)
{
    const char *const *dirs = what;
    opened *o = res;
    memset(o, 0, sizeof *o);
    dp_merge_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.dst_dir = dirs[1];
    mo.shard_dirs = dirs;
    mo.nshards = 1;
    o->rc = dp_merge_run(&mo, NULL, o->err);
}

/* 18b. merge reads each shard's shard.tsv and labels.tsv in the generation
 * of its arrays: a shard preprocessed again (with another label table, with
 * a filter) while the merge opens it (stopped after its vectors.npy) is
 * merged as it is now, the same as a one-machine run of the new settings.
 * Before, the manifest and label table were read before the arrays' one
 * generation: the old labels were merged with the new arrays (exit 0), and
 * new arrays with fewer rows were refused as not holding the rows the old
 * manifest counts. */
static void test_merge_one_generation(void)
{
    if (access("data/corpus/labels.tsv", R_OK) != 0)
        SKIP("no data/corpus");
    char *src = tmp("mgen-src"), *lt = tmp("mgen-labels.tsv"), *shard = tmp("mgen-s0");
    CHECK_EQ_INT(sh(NULL, 0, "mkdir -p %s && cp data/corpus/chat_01.pcap data/corpus/voip_01.pcap %s && "
                    "sed 's/\t0\tChat$/\t1\tChat/' data/corpus/labels.tsv > %s", src, src, lt), 0);
    const pp_job first = {src, shard, "data/corpus/labels.tsv", NULL, 1};
    const pp_job again[2] = {{src, shard, lt, NULL, 1}, {src, shard, "data/corpus/labels.tsv", "udp", 1}};
    for (int k = 0; k < 2; k++) {
        char merged[700], whole[700], ma[800], wa[800];
        snprintf(merged, sizeof merged, "%s/mgen-merged-%d", dp_test_tmpdir(), k);
        snprintf(whole, sizeof whole, "%s/mgen-whole-%d", dp_test_tmpdir(), k);
        pp_job w = again[k];
        w.dst = whole;
        w.shard = 0;
        CHECK_EQ_INT(run_pp_job(&w, errbuf), 0);
        CHECK_EQ_INT(run_pp_job(&first, errbuf), 0);
        const char *dirs[2] = {shard, merged};
        opened got;
        CHECK_EQ_INT(run_across("ds-open", 1, run_merge_one, dirs, &got, sizeof got, repreprocess,
                                (void *)&again[k]), 0);
        if (got.rc != 0)
            fprintf(stderr, "  merge %d: %s\n", k, got.err);
        CHECK_EQ_INT(got.rc, 0);
        CHECK(same_dataset(merged, whole));
        snprintf(ma, sizeof ma, "%s/labels.tsv", merged);
        snprintf(wa, sizeof wa, "%s/labels.tsv", whole);
        CHECK(dp_test_same_file(ma, wa));
    }
}

static void split_seed2(void *target)
{
    dp_split_opts o;
    dp_split_opts_default(&o);
    o.out = NULL;
    o.seed = 2;
    CHECK_EQ_INT(dp_split_run(corpus_dataset(), target, &o, errbuf), 0);
}

/* 19. a split folder (train's and test's input) opened while split swaps a
 * new one in: the reader gets the files of one of them. */
static void test_split_open_one_generation(void)
{
    const char *ds = corpus_dataset();
    if (!ds)
        SKIP("no data/corpus");
    char *t = tmp("gen-split"), train[700];
    dp_split_opts o;
    dp_split_opts_default(&o);
    o.out = NULL;
    o.seed = 1;
    CHECK_EQ_INT(dp_split_run(ds, t, &o, errbuf), 0);
    snprintf(train, sizeof train, "%s/%s/train", t, dp_task_dir[DP_TASK_APP]);
    opened old, got, fresh;
    open_sum(train, DP_TASK_APP, &old);
    CHECK_EQ_INT(old.rc, 0);
    /* stopped after vectors.npy, a split of another seed is swapped in */
    CHECK_EQ_INT(open_across("set-open", train, DP_TASK_APP, split_seed2, t, &got), 0);
    open_sum(train, DP_TASK_APP, &fresh);
    CHECK(fresh.rc == 0 && fresh.sum != old.sum);
    if (got.rc != 0)
        fprintf(stderr, "  open: %s\n", got.err);
    CHECK_EQ_INT(got.rc, 0);
    CHECK_EQ_INT(got.n, fresh.n);
    CHECK(got.sum == fresh.sum);
}

/* What `test --train-set` reported (tested_with_train_set). */
typedef struct tested {
    int rc;
    uint64_t packets, flows, dropped;
    char err[DP_ERRBUF_SIZE];
} tested;

/* The corpus model tested on a split's traffic test side with its training
 * side as --train-set (what: the split folder), the report in tmp. */
static void tested_with_train_set(const void *what, void *res)
{
    char test[900], train[900];
    snprintf(test, sizeof test, "%s/%s/test", (const char *)what, dp_task_dir[DP_TASK_TRAFFIC]);
    snprintf(train, sizeof train, "%s/%s/train", (const char *)what, dp_task_dir[DP_TASK_TRAFFIC]);
    tested *t = res;
    memset(t, 0, sizeof *t);
    dp_evalrun_opts o;
    dp_evalrun_opts_init(&o);
    o.test_dir = test;
    o.train_set = train;
    o.model_path = corpus_model();
    o.report_dir = tmp("gen-tt-report");
    o.threads = 1;
    dp_evalrun_result r;
    if ((t->rc = dp_evalrun(&o, &r, t->err)) == 0) {
        t->packets = r.packets.n;
        t->flows = r.flows.n;
        t->dropped = r.dropped_flows;
        dp_evalrun_result_free(&r);
    }
}

/* 19b. `test --train-set` with a split's two sides, while split swaps a new
 * split in between the two opens (stopped in the training side's open): the
 * test side and the training side are of one split, the new one (before,
 * the old test side was scored against the new training side). */
static void test_test_train_set_one_split(void)
{
    const char *ds = corpus_dataset();
    if (!ds || !corpus_model())
        SKIP("no data/corpus");
    char *t = tmp("gen-tt");
    dp_split_opts o;
    dp_split_opts_default(&o);
    o.out = NULL;
    o.seed = 1;
    CHECK_EQ_INT(dp_split_run(ds, t, &o, errbuf), 0);
    tested old, got, fresh;
    tested_with_train_set(t, &old);
    CHECK_EQ_INT(old.rc, 0);
    /* set-open:1 is the test side's open, set-open:2 the training side's */
    CHECK_EQ_INT(run_across("set-open", 2, tested_with_train_set, t, &got, sizeof got, split_seed2, t), 0);
    tested_with_train_set(t, &fresh);
    CHECK(fresh.rc == 0 && fresh.packets != old.packets);
    if (got.rc != 0)
        fprintf(stderr, "  test: %s\n", got.err);
    CHECK_EQ_INT(got.rc, 0);
    CHECK_EQ_INT(got.packets, fresh.packets);
    CHECK_EQ_INT(got.flows, fresh.flows);
    CHECK_EQ_INT(got.dropped, fresh.dropped);
}

/* Runs the shell command cmd (which execs the command under test) with
 * DP_TEST_KILL_AT=kill_at; each time the command stops there (SIGSTOP),
 * change(arg) runs and it goes on. Its exit status (-1: it did not exit),
 * the number of stops in *stops. */
static int sh_across(const char *kill_at, const char *cmd, void (*change)(void *), void *arg, int *stops)
{
    fflush(NULL);
    pid_t c = fork();
    if (c == 0) {
        setenv("DP_TEST_KILL_AT", kill_at, 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    for (*stops = 0; c > 0 && waitpid(c, &st, WUNTRACED) == c && WIFSTOPPED(st); ++*stops) {
        change(arg);
        kill(c, SIGCONT);
    }
    return c > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* 19c. `test --train-set` while split swaps a new split in on every attempt
 * to open both sides (stopped in the sides' opens): after 4 attempts it
 * refuses (exit 1) with a message that says the split kept
 * changing and to retry, and writes no report. */
static void test_test_train_set_keeps_changing(void)
{
    const char *b = bin(), *ds = corpus_dataset();
    if (!b || !ds || !corpus_model())
        SKIP("no deeppacket binary or no data/corpus");
    char *t = tmp("gen-tk"), *report = tmp("gen-tk-report"), *log = tmp("gen-tk.log"), cmd[4096];
    split_seed2(t);
    snprintf(cmd, sizeof cmd, "exec %s test -q -j 1 -d %s/%s/test --train-set %s/%s/train -m %s -o %s 2>%s", b, t,
             dp_task_dir[DP_TASK_TRAFFIC], t, dp_task_dir[DP_TASK_TRAFFIC], corpus_model(), report, log);
    /* from the first training side's open on, every second open of a side
     * (a side's own open retries too) stops while a new split is swapped in:
     * no attempt sees both sides of one split */
    int stops;
    CHECK_EQ_INT(sh_across("set-open:2:19:2", cmd, split_seed2, t, &stops), 1);
    CHECK(stops >= 4);
    char *msg = slurp(log, NULL);
    CHECK(msg != NULL);
    if (msg) {
        CHECK_STR_CONTAINS(msg, "deeppacket test: ");
        CHECK_STR_CONTAINS(msg, "the dataset changed while it was being opened");
        CHECK_STR_CONTAINS(msg, "retry when that run is done");
    }
    free(msg);
    struct stat st;
    CHECK(lstat(report, &st) != 0 && errno == ENOENT);
    char out[64];
    sh(out, sizeof out, "ls -a %s | grep -c '^gen-tk-report'", dp_test_tmpdir()); /* no temp folder either */
    CHECK_EQ_INT(atoi(out), 0);
    /* the same command, the split left alone, writes its report */
    CHECK_EQ_INT(sh(NULL, 0, "%s", cmd + 5), 0);
    CHECK(stat(report, &st) == 0 && S_ISDIR(st.st_mode));
}

/* 6. a capture that could not be read is read on the rerun. Permissions do
 * not stop root: the runs are made as nobody (65534) then. */
static int pp_as_user(const char *src, const char *dst, uint64_t *packets)
{
    fflush(NULL);
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    pid_t c = fork();
    if (c == 0) {
        close(pfd[0]);
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        char eb[DP_ERRBUF_SIZE];
        dp_preprocess_stats st;
        memset(&st, 0, sizeof st);
        int rc = run_pp(src, dst, &st, eb);
        if (write(pfd[1], &st.packets, sizeof st.packets) != (ssize_t)sizeof st.packets)
            _exit(4);
        _exit(rc == 0 ? 0 : 1);
    }
    close(pfd[1]);
    *packets = 0;
    ssize_t n = read(pfd[0], packets, sizeof *packets);
    close(pfd[0]);
    int st;
    waitpid(c, &st, 0);
    return n == (ssize_t)sizeof *packets && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_pp_unreadable_retried(void)
{
    if (access("data/corpus/labels.tsv", R_OK) != 0)
        SKIP("no data/corpus");
    char base[] = "/tmp/dprel.XXXXXX";
    CHECK(mkdtemp(base) != NULL);
    chmod(base, 0777);
    char src[300], dst[300], cap[400], out[256];
    snprintf(src, sizeof src, "%s/src", base);
    snprintf(dst, sizeof dst, "%s/ds", base);
    snprintf(cap, sizeof cap, "%s/chat_02.pcap", src);
    CHECK_EQ_INT(sh(NULL, 0, "mkdir -p %s && cp data/corpus/chat_01.pcap data/corpus/chat_02.pcap %s && "
                    "chmod -R a+rwX %s", src, src, base), 0);
    uint64_t all = 0, some = 0, again = 0;
    char dst_all[300];
    snprintf(dst_all, sizeof dst_all, "%s/ds-all", base);
    CHECK_EQ_INT(pp_as_user(src, dst_all, &all), 0);
    CHECK_EQ_INT(chmod(cap, 0), 0);
    CHECK_EQ_INT(pp_as_user(src, dst, &some), 0);
    CHECK(some > 0 && some < all); /* chat_02 skipped */
    CHECK_EQ_INT(chmod(cap, 0644), 0);
    CHECK_EQ_INT(pp_as_user(src, dst, &again), 0);
    CHECK_EQ_INT(again, all); /* read this time */
    CHECK(same_dataset(dst, dst_all));
    sh(out, sizeof out, "rm -rf %s", base);
}

/* 16. the target may not be the source or lie inside it */
/* Symlinks at a dataset's files (arrays kept on another disk, say) stay
 * links when preprocess replaces the dataset: their targets get the new
 * files (before, the arrays and summary.json were renamed over the links,
 * and the targets kept the old data). Oracles: lstat, the bytes of a fresh
 * run, the dataset's row count. */
static void test_pp_symlinked_files(void)
{
    char *src = tmp("pp-sym-src"), *dst = tmp("pp-sym"), *other = tmp("pp-sym-other"), *fresh = tmp("pp-sym-fresh");
    CHECK_EQ_INT(sh(NULL, 0, "rm -rf %s %s %s %s && mkdir -p %s %s && cp data/corpus/chat_0[1-3].pcap %s", src, dst,
                    other, fresh, src, other, src), 0);
    CHECK_EQ_INT(run_pp(src, dst, NULL, errbuf), 0);
    static const char *const names[] = {"vectors.npy", "meta.npy", "summary.json"};
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(sh(NULL, 0, "mv %s/%s %s/ && ln -s %s/%s %s/%s", dst, names[i], other, other, names[i], dst,
                        names[i]), 0);
    CHECK_EQ_INT(sh(NULL, 0, "cp data/corpus/chat_04.pcap %s", src), 0); /* one capture more */
    CHECK_EQ_INT(run_pp(src, dst, NULL, errbuf), 0);
    CHECK_EQ_INT(run_pp(src, fresh, NULL, errbuf), 0);
    for (int i = 0; i < 3; i++) {
        char p[1000], q[1000];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dst, names[i]);
        CHECK(lstat(p, &st) == 0 && S_ISLNK(st.st_mode));
        snprintf(p, sizeof p, "%s/%s", other, names[i]);
        snprintf(q, sizeof q, "%s/%s", fresh, names[i]);
        if (i < 2)
            CHECK(dp_test_same_file(p, q));
    }
    dp_dataset a, b;
    CHECK(dp_dataset_open(&a, dst, errbuf) == 0);
    CHECK(dp_dataset_open(&b, fresh, errbuf) == 0);
    CHECK(a.n == b.n && a.n > 0);
    dp_dataset_close(&a);
    dp_dataset_close(&b);
}

/* summary.json that is (or links to) a FIFO or a device: preprocess removes
 * summary.json at the commit and writes it last, so it would remove the
 * special file (as root, a link to /dev/null took /dev/null away) and put a
 * regular file there. Refused before anything is read, the file left as it
 * was. */
static void test_pp_special_summary(void)
{
    char *src = tmp("pp-spec-src"), *fifo = tmp("pp-spec.fifo");
    CHECK_EQ_INT(sh(NULL, 0, "mkdir -p %s && cp data/corpus/chat_01.pcap %s", src, src), 0);
    CHECK(mkfifo(fifo, 0600) == 0);
    const char *targets[] = {fifo, private_null()}; /* a link to a FIFO, to a device */
    for (int i = 0; i < 3; i++) {
        const char *to = i < 2 ? targets[i] : NULL; /* 2: a FIFO at summary.json itself */
        char dst[700], sj[800];
        snprintf(dst, sizeof dst, "%s/pp-spec-%d", dp_test_tmpdir(), i);
        snprintf(sj, sizeof sj, "%s/summary.json", dst);
        if (i == 1 && !to)
            continue; /* no device node here */
        CHECK(dp_mkdirs(dst, errbuf) == 0);
        CHECK(to ? symlink(to, sj) == 0 : mkfifo(sj, 0600) == 0);
        CHECK_EQ_INT(run_pp(src, dst, NULL, errbuf), -1);
        CHECK_STR_CONTAINS(errbuf, sj);
        CHECK_STR_CONTAINS(errbuf, "not a regular file");
        struct stat st;
        CHECK(stat(sj, &st) == 0 && (i == 1 ? S_ISCHR(st.st_mode) : S_ISFIFO(st.st_mode)));
        snprintf(sj, sizeof sj, "%s/vectors.npy", dst);
        CHECK(stat(sj, &st) != 0); /* nothing read, nothing written */
    }
}

static void test_pp_target_inside_source(void)
{
    char *src = tmp("pp-in"), *in = tmp("pp-in/ds");
    CHECK_EQ_INT(sh(NULL, 0, "mkdir -p %s && cp data/corpus/chat_01.pcap %s", src, src), 0);
    CHECK_EQ_INT(run_pp(src, src, NULL, errbuf), -1);
    CHECK_STR_CONTAINS(errbuf, "inside");
    CHECK_EQ_INT(run_pp(src, in, NULL, errbuf), -1);
    CHECK_STR_CONTAINS(errbuf, "pp-in/ds");
    struct stat st;
    CHECK(stat(in, &st) != 0); /* not created */
}

int main(void)
{
    dp_test_prog = "test_reliability";
    DP_RUN(test_afile_fifo);
    DP_RUN(test_afile_device);
    DP_RUN(test_afile_missing_folder);
    DP_RUN(test_mkdirs_fsyncs_parent);
    DP_RUN(test_afile_symlink);
    DP_RUN(test_afile_stdout);
    DP_RUN(test_afile_live);
    DP_RUN(test_afile_earlier_error);
    DP_RUN(test_dumper_live);
    DP_RUN(test_stale_tmp);
    DP_RUN(test_signal_removes_tmp);
    DP_RUN(test_stdout_full);
    DP_RUN(test_split_atomic);
    DP_RUN(test_split_lock);
    DP_RUN(test_train_checks);
    DP_RUN(test_train_model_fifo);
    DP_RUN(test_train_curves_fail);
    DP_RUN(test_test_command);
    DP_RUN(test_report_folder);
    DP_RUN(test_test_reads_model_once);
    DP_RUN(test_classify_targets);
    DP_RUN(test_test_npy_fifo);
    DP_RUN(test_classify_write_error);
    DP_RUN(test_classify_cut_capture);
    DP_RUN(test_classify_interrupted);
    DP_RUN(test_classify_live_kill9);
    DP_RUN(test_capture_live_kill9);
    DP_RUN(test_capture_write_error);
    DP_RUN(test_pp_commit_resume);
    DP_RUN(test_pp_failed_rerun);
    DP_RUN(test_pp_summary_fails);
    DP_RUN(test_pp_corrupt_partial);
    DP_RUN(test_pp_journal_wrap);
    DP_RUN(test_pp_damaged_part);
    DP_RUN(test_dataset_open_one_generation);
    DP_RUN(test_merge_one_generation);
    DP_RUN(test_split_open_one_generation);
    DP_RUN(test_test_train_set_one_split);
    DP_RUN(test_test_train_set_keeps_changing);
    DP_RUN(test_pp_unreadable_retried);
    DP_RUN(test_pp_target_inside_source);
    DP_RUN(test_pp_symlinked_files);
    DP_RUN(test_pp_special_summary);
    dp_eval_plot_release(); /* training curves drew text: cairo's and fontconfig's caches */
    return dp_test_end();
}
