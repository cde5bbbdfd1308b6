/* test_gbt_tracker: the C rabit tracker (src/train/dp_gbt_tracker.c) with
 * real XGBoost workers: W processes, each on its share of the rows, train
 * one booster, the same bytes on every worker and as one process trained
 * on all the rows (features with fewer values than the histogram bins, so
 * that the quantile sketches are exact either way); a stranger on the
 * port does not stop them; one worker too many, or none, is refused. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dp_test.h"
#include "model/dp_gbt.h"
#include "train/dp_gbt_tracker.h"
#include "util/dp_util.h"

#define N 600
#define D 6

/* Three classes told apart by features 0 and 1; every feature takes at
 * most 16 values. */
static void data(float *x, int *y)
{
    dp_rng r;
    dp_rng_seed(&r, 42);
    for (int i = 0; i < N; i++) {
        y[i] = (int)dp_rng_below(&r, 3);
        for (int j = 0; j < D; j++)
            x[i * D + j] = (float)dp_rng_below(&r, 16) / 16.0f;
        x[i * D + 0] = (float)(y[i] * 4 + (int)dp_rng_below(&r, 6)) / 16.0f;
        x[i * D + 1] = (float)((2 - y[i]) * 3 + (int)dp_rng_below(&r, 8)) / 16.0f;
    }
}

static void params(dp_gbt_params *gp)
{
    dp_gbt_params_default(gp);
    gp->trees = 6, gp->depth = 3, gp->quiet = 1, gp->colsample = 0.8f, gp->seed = 5;
}

/* Trains rows [lo, hi) (all: one process) and writes the booster's bytes
 * to path. 0 or -1. */
static int train_to(const char *path, int lo, int hi)
{
    static float x[N * D];
    static int y[N];
    char eb[DP_ERRBUF_SIZE];
    data(x, y);
    dp_gbt_params gp;
    params(&gp);
    dp_gbt *g = dp_gbt_train(x + lo * D, (uint64_t)(hi - lo), D, y + lo, NULL, 3, &gp, eb);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = g && dp_gbt_save(g, &buf, &len, eb) == 0 ? dp_write_file_atomic(path, buf, len, eb) : -1;
    if (rc != 0)
        fprintf(stderr, "  %s\n", eb);
    free(buf);
    dp_gbt_free(g);
    return rc;
}

/* Worker w of W: reads the tracker's port from fd, joins, trains its
 * share, leaves; the exit status says. */
static void worker(int w, int W, int fd)
{
    char eb[DP_ERRBUF_SIZE], path[600];
    alarm(100); /* a tracker bug that leaves the workers waiting for each other ends them */
    int port = 0;
    if (read(fd, &port, sizeof port) != (ssize_t)sizeof port)
        _exit(4);
    snprintf(path, sizeof path, "%s/w%d-%d.ubj", dp_test_tmpdir(), W, w);
    if (dp_gbt_join("127.0.0.1", port, w, W, eb) != 0) {
        fprintf(stderr, "  worker %d: %s\n", w, eb);
        _exit(2);
    }
    int rc = train_to(path, N * w / W, N * (w + 1) / W);
    _exit(dp_gbt_leave(eb) != 0 || rc != 0 ? 3 : 0);
}

/* 1 when child pid ends with status 0. */
static int reaped_ok(pid_t pid)
{
    int st;
    return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The one-process booster of all the rows, in a child of its own: this
 * process forks the workers, and forks and XGBoost's threads do not mix. */
static int train_one(const char *path)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(train_to(path, 0, N) == 0 ? 0 : 1);
    return pid > 0 && reaped_ok(pid) ? 0 : -1;
}

/* A socket connected to 127.0.0.1:port, or -1. */
static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* A connection to the tracker's port that sends 4 bytes, not the magic. */
static void stranger(int port)
{
    int fd = connect_to(port);
    CHECK(fd >= 0);
    int32_t bad = 0x1234;
    CHECK(write(fd, &bad, 4) == 4);
    close(fd);
}

/* W workers, forked before the tracker's thread starts (they read its
 * port from a pipe), after a stranger on the port when asked. */
static void check_workers(int W, int with_stranger)
{
    char eb[DP_ERRBUF_SIZE], path[600], one[600];
    pid_t pid[8];
    int pfd[2];
    dp_test_tmpdir(); /* made once, before the workers write into it */
    CHECK(pipe(pfd) == 0);
    for (int w = 0; w < W; w++)
        if ((pid[w] = fork()) == 0)
            worker(w, W, pfd[0]);
    dp_gbt_tracker *t = dp_gbt_tracker_start(W, eb);
    CHECK(t != NULL);
    int port = t ? dp_gbt_tracker_port(t) : 0;
    if (t && with_stranger)
        stranger(port);
    for (int w = 0; w < W; w++)
        CHECK(write(pfd[1], &port, sizeof port) == (ssize_t)sizeof port);
    close(pfd[0]), close(pfd[1]);
    for (int w = 0; w < W; w++)
        CHECK(reaped_ok(pid[w]));
    if (!t)
        return;
    CHECK_EQ_INT(dp_gbt_tracker_finish(t, eb), 0);
    snprintf(one, sizeof one, "%s/one.ubj", dp_test_tmpdir());
    CHECK_EQ_INT(train_one(one), 0);
    for (int w = 0; w < W; w++) {
        snprintf(path, sizeof path, "%s/w%d-%d.ubj", dp_test_tmpdir(), W, w);
        CHECK(dp_test_same_file(path, one));
    }
}

/* 2 workers (a tree of one edge) and 5 (a deeper tree, the ring
 * relabelled); a stranger on the port is dropped, the workers go on. */
static void test_workers_train_one_booster(void)
{
    check_workers(2, 0);
    check_workers(5, 0);
    check_workers(3, 1);
}

static int send_i(int fd, int32_t v)
{
    return write(fd, &v, 4) == 4 ? 0 : -1;
}

static int32_t recv_i(int fd)
{
    int32_t v = -99;
    return read(fd, &v, 4) == 4 ? v : -99;
}

/* A worker by hand: greets with rank -1 and "start"; when given a rank,
 * reads its links and reports it is linked with no error. Returns the
 * rank it got, or -99 when the tracker hung up. */
static int fake_start(int port, const char *task)
{
    int fd = connect_to(port);
    int32_t rank = -99;
    if (fd >= 0 && send_i(fd, DP_GBT_TRACKER_MAGIC) == 0 &&
        recv_i(fd) == DP_GBT_TRACKER_MAGIC && send_i(fd, -1) == 0 && send_i(fd, 1) == 0 &&
        send_i(fd, (int32_t)strlen(task)) == 0 && write(fd, task, strlen(task)) == (ssize_t)strlen(task) &&
        send_i(fd, 5) == 0 && write(fd, "start", 5) == 5 && (rank = recv_i(fd)) >= 0) {
        recv_i(fd), recv_i(fd);                /* parent, world size */
        for (int k = recv_i(fd); k > 0; k--)   /* tree neighbours */
            recv_i(fd);
        recv_i(fd), recv_i(fd);                /* ring */
        send_i(fd, 0);                         /* linked to none */
        recv_i(fd), recv_i(fd);                /* none to connect to, none to wait for */
        send_i(fd, 0), send_i(fd, 12345);      /* no error, my port */
    }
    if (fd >= 0)
        close(fd);
    return rank;
}

/* One worker more than the tracker was started for is an error, not a
 * rank past the end of its tables. */
static void test_extra_worker(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_gbt_tracker *t = dp_gbt_tracker_start(1, eb);
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK_EQ_INT(fake_start(dp_gbt_tracker_port(t), "a"), 0);
    CHECK_EQ_INT(fake_start(dp_gbt_tracker_port(t), "b"), -99);
    CHECK_EQ_INT(dp_gbt_tracker_finish(t, eb), -1);
    CHECK_STR_CONTAINS(eb, "more than 1 workers");
}

/* A task id longer than the tracker keeps (256 bytes) is cut, and the
 * rest of it read, so that the command after it is read in step. */
static void test_long_task_id(void)
{
    char eb[DP_ERRBUF_SIZE], task[3000];
    memset(task, 'x', sizeof task - 1);
    task[sizeof task - 1] = 0;
    dp_gbt_tracker *t = dp_gbt_tracker_start(1, eb);
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK_EQ_INT(fake_start(dp_gbt_tracker_port(t), task), 0);
    CHECK_EQ_INT(fake_start(dp_gbt_tracker_port(t), "b"), -99);
    CHECK_EQ_INT(dp_gbt_tracker_finish(t, eb), -1);
}

/* The address other machines are told: an IPv4 address (the outward one,
 * or 127.0.0.1 without a route), never a name. */
static void test_host_address(void)
{
    char host[64];
    struct in_addr a;
    dp_gbt_tracker_host(host, sizeof host);
    CHECK(inet_pton(AF_INET, host, &a) == 1);
    fprintf(stderr, "  tracker address: %s\n", host);
}

/* A tracker for no worker is refused. */
static void test_no_workers(void)
{
    char eb[DP_ERRBUF_SIZE];
    CHECK(dp_gbt_tracker_start(0, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "0 workers");
}

int main(void)
{
    dp_test_prog = "test_gbt_tracker";
    alarm(120); /* a hang is a failure */
    DP_RUN(test_workers_train_one_booster);
    DP_RUN(test_extra_worker);
    DP_RUN(test_long_task_id);
    DP_RUN(test_host_address);
    DP_RUN(test_no_workers);
    return dp_test_end();
}
