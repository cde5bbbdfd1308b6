/* dp_gbt_tracker: XGBoost's rabit tracker in C (see dp_gbt_tracker.h for
 * the protocol). One thread: accept a worker, talk to it, go on. */
#include "train/dp_gbt_tracker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/dp_util.h"

#define IO_TIMEOUT_S 30 /* a peer silent this long mid-message is dropped (workers answer at once) */
#define MAX_STR 4096

typedef struct worker {
    int fd;
    char host[INET6_ADDRSTRLEN];
    int rank, world, port, wait_accept;
    char task[256], cmd[16];
} worker;

struct dp_gbt_tracker {
    int lfd, port, n;
    pthread_t th;
    int rc;
    char err[DP_ERRBUF_SIZE];
    /* the link map, by rank: parent, tree neighbours, ring */
    int *parent, *nnbr, (*nbr)[3], *prev, *next;
    worker **waiting; /* [n]: workers that others must still connect to */
    worker **pending; /* workers waiting for a rank, npending of them */
    int npending, next_rank, nshut;
    unsigned char *shut;
};

/* ---- the link map (tracker.py's get_link_map) ----------------------------------- */

/* Tree neighbours of r in the binary heap over n ranks: parent, children. */
static int heap_neighbours(int r, int n, int out[3])
{
    int k = 0, r1 = r + 1;
    if (r1 > 1)
        out[k++] = r1 / 2 - 1;
    if (r1 * 2 - 1 < n)
        out[k++] = r1 * 2 - 1;
    if (r1 * 2 < n)
        out[k++] = r1 * 2;
    return k;
}

/* Appends to ring[*len] a walk of r's subtree that starts at r, its last
 * child's part reversed (a ring that tends to follow the tree's edges). */
static void share_ring(int r, int n, int *ring, int *len)
{
    int nb[3], k = heap_neighbours(r, n, nb), kids[2], nk = 0;
    for (int i = 0; i < k; i++)
        if (nb[i] != (r + 1) / 2 - 1)
            kids[nk++] = nb[i];
    ring[(*len)++] = r;
    for (int i = 0; i < nk; i++) {
        int start = *len;
        share_ring(kids[i], n, ring, len);
        if (i == nk - 1)
            for (int a = start, b = *len - 1; a < b; a++, b--) {
                int t = ring[a];
                ring[a] = ring[b], ring[b] = t;
            }
    }
}

/* The tree and the ring, relabelled so that the ring is 0, 1, ..., n-1. */
static int make_link_map(dp_gbt_tracker *t)
{
    int n = t->n, *ring = malloc((size_t)n * sizeof *ring), *label = malloc((size_t)n * sizeof *label), len = 0;
    if (!ring || !label) {
        free(ring), free(label);
        return -1;
    }
    share_ring(0, n, ring, &len);
    for (int i = 0; i < n; i++)
        label[ring[i]] = i; /* old rank ring[i] becomes i */
    for (int old = 0; old < n; old++) {
        int r = label[old], nb[3];
        t->nnbr[r] = heap_neighbours(old, n, nb);
        for (int i = 0; i < t->nnbr[r]; i++)
            t->nbr[r][i] = label[nb[i]];
        t->parent[r] = old == 0 ? -1 : label[(old + 1) / 2 - 1];
        t->prev[r] = (r + n - 1) % n;
        t->next[r] = (r + 1) % n;
    }
    free(ring), free(label);
    return 0;
}

/* ---- talking to a worker ------------------------------------------------------- */

static int io_all(int fd, void *buf, size_t len, int sending)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t k = sending ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k, len -= (size_t)k;
    }
    return 0;
}

static int send_int(int fd, int v)
{
    int32_t x = v;
    return io_all(fd, &x, 4, 1);
}

static int recv_int(int fd, int *v)
{
    int32_t x;
    if (io_all(fd, &x, 4, 0))
        return -1;
    *v = x;
    return 0;
}

static int send_str(int fd, const char *s)
{
    size_t n = strlen(s);
    return send_int(fd, (int)n) || io_all(fd, (void *)s, n, 1) ? -1 : 0;
}

/* A string into buf (cap bytes, NUL-terminated); longer ones are read to
 * their end and cut. */
static int recv_str(int fd, char *buf, size_t cap)
{
    int n;
    if (recv_int(fd, &n) || n < 0 || n > MAX_STR)
        return -1;
    size_t k = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
    if (io_all(fd, buf, k, 0))
        return -1;
    buf[k] = 0;
    for (size_t left = (size_t)n - k; left > 0;) { /* the cut tail, discarded */
        char sink[256];
        size_t m = left < sizeof sink ? left : sizeof sink;
        if (io_all(fd, sink, m, 0))
            return -1;
        left -= m;
    }
    return 0;
}

/* Accepts one worker and reads its greeting (step 1); NULL on a bad one. */
static worker *greet(dp_gbt_tracker *t)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    int fd = accept(t->lfd, (struct sockaddr *)&sa, &sl);
    if (fd < 0)
        return NULL;
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    worker *w = calloc(1, sizeof *w);
    int magic;
    if (!w || recv_int(fd, &magic) || magic != DP_GBT_TRACKER_MAGIC || send_int(fd, DP_GBT_TRACKER_MAGIC) ||
        recv_int(fd, &w->rank) || recv_int(fd, &w->world) || recv_str(fd, w->task, sizeof w->task) ||
        recv_str(fd, w->cmd, sizeof w->cmd)) {
        close(fd);
        free(w);
        return NULL;
    }
    w->fd = fd;
    const void *addr = sa.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&sa)->sin6_addr
                                                : (const void *)&((struct sockaddr_in *)&sa)->sin_addr;
    inet_ntop(sa.ss_family, addr, w->host, sizeof w->host);
    return w;
}

static void drop(worker *w)
{
    if (w && w->fd >= 0)
        close(w->fd);
    free(w);
}

/* Step 3 for worker w of the given neighbours: which of them it connects
 * to, how many connect to it; its port once it has no error. */
static int link_up(dp_gbt_tracker *t, worker *w, const int *nn, int nnn)
{
    for (;;) {
        int ngood, good[5];
        if (recv_int(w->fd, &ngood) || ngood < 0 || ngood > nnn)
            return -1;
        for (int i = 0; i < ngood; i++)
            if (recv_int(w->fd, &good[i]))
                return -1;
        int bad[5], nbad = 0, con[5], ncon = 0;
        for (int i = 0; i < nnn; i++) {
            int linked = 0;
            for (int j = 0; j < ngood; j++)
                linked |= good[j] == nn[i];
            if (!linked)
                bad[nbad++] = nn[i];
        }
        for (int i = 0; i < nbad; i++)
            if (t->waiting[bad[i]])
                con[ncon++] = bad[i];
        if (send_int(w->fd, ncon) || send_int(w->fd, nbad - ncon))
            return -1;
        for (int i = 0; i < ncon; i++) {
            worker *o = t->waiting[con[i]];
            if (send_str(w->fd, o->host) || send_int(w->fd, o->port) || send_int(w->fd, con[i]))
                return -1;
        }
        int nerr;
        if (recv_int(w->fd, &nerr))
            return -1;
        if (nerr != 0)
            continue;
        if (recv_int(w->fd, &w->port))
            return -1;
        for (int i = 0; i < ncon; i++)
            if (--t->waiting[con[i]]->wait_accept == 0) {
                drop(t->waiting[con[i]]);
                t->waiting[con[i]] = NULL;
            }
        w->wait_accept = nbad - ncon;
        return 0;
    }
}

/* Step 2 and 3: gives w its rank and links; keeps it while others must
 * still connect to it. */
static int assign(dp_gbt_tracker *t, worker *w, int rank)
{
    int nn[5], nnn = 0;
    w->rank = rank;
    if (send_int(w->fd, rank) || send_int(w->fd, t->parent[rank]) || send_int(w->fd, t->n) ||
        send_int(w->fd, t->nnbr[rank]))
        return -1;
    for (int i = 0; i < t->nnbr[rank]; i++) {
        nn[nnn++] = t->nbr[rank][i];
        if (send_int(w->fd, t->nbr[rank][i]))
            return -1;
    }
    int ring[2] = {t->prev[rank], t->next[rank]};
    for (int k = 0; k < 2; k++) {
        int r = ring[k], seen = r == -1 || r == rank;
        for (int i = 0; i < nnn && !seen; i++)
            seen = nn[i] == r;
        if (r != -1 && r != rank && !seen)
            nn[nnn++] = r;
        if (send_int(w->fd, r != -1 && r != rank ? r : -1))
            return -1;
    }
    if (link_up(t, w, nn, nnn))
        return -1;
    close(w->fd);
    w->fd = -1;
    if (w->wait_accept > 0)
        t->waiting[rank] = w;
    else
        free(w);
    return 0;
}

static int by_task(const void *a, const void *b)
{
    return strcmp((*(worker *const *)a)->task, (*(worker *const *)b)->task);
}

/* A "start" or "recover": a known rank is linked at once; the others wait
 * until all have asked, then get ranks in the order of their task ids. */
static int start_worker(dp_gbt_tracker *t, worker *w)
{
    if ((w->world != -1 && w->world != t->n) || w->rank >= t->n)
        return dp_err(t->err, "gbt tracker: a worker of a job of %d (rank %d) in one of %d", w->world, w->rank, t->n);
    if (w->rank >= 0)
        return assign(t, w, w->rank) ? dp_err(t->err, "gbt tracker: worker %d broke off", w->rank) : 0;
    if (t->next_rank + t->npending >= t->n)
        return dp_err(t->err, "gbt tracker: more than %d workers", t->n);
    t->pending[t->npending++] = w;
    if (t->npending < t->n - t->next_rank)
        return 0;
    qsort(t->pending, (size_t)t->npending, sizeof *t->pending, by_task);
    int n = t->npending;
    t->npending = 0;
    for (int i = 0; i < n; i++) {
        worker *p = t->pending[i];
        t->pending[i] = NULL;
        if (assign(t, p, t->next_rank++) != 0) {
            for (int j = i + 1; j < n; j++)
                drop(t->pending[j]), t->pending[j] = NULL;
            return dp_err(t->err, "gbt tracker: worker %s (%s) broke off", p->task, p->host);
        }
    }
    return 0;
}

/* One accepted connection (step 1 and what its command asks). */
static int serve_one(dp_gbt_tracker *t)
{
    worker *w = greet(t);
    if (!w) /* a stranger on the port (a scanner, a probe): dropped, the workers go on */
        return 0;
    if (!strcmp(w->cmd, "print")) {
        char msg[MAX_STR];
        recv_str(w->fd, msg, sizeof msg);
        drop(w);
        return 0;
    }
    if (!strcmp(w->cmd, "shutdown")) {
        int ok = w->rank >= 0 && w->rank < t->n && !t->shut[w->rank];
        if (ok)
            t->shut[w->rank] = 1, t->nshut++;
        drop(w);
        return ok ? 0 : dp_err(t->err, "gbt tracker: a shutdown from an unknown rank");
    }
    if (strcmp(w->cmd, "start") && strcmp(w->cmd, "recover")) {
        drop(w);
        return dp_err(t->err, "gbt tracker: unknown command '%s'", w->cmd);
    }
    if (start_worker(t, w) != 0) {
        drop(w);
        return -1;
    }
    return 0;
}

static void *run(void *arg)
{
    dp_gbt_tracker *t = arg;
    while (t->nshut < t->n)
        if (serve_one(t) != 0) {
            t->rc = -1;
            break;
        }
    return NULL;
}

/* ---- the public functions ------------------------------------------------------ */

static void release(dp_gbt_tracker *t)
{
    if (t->lfd >= 0)
        close(t->lfd);
    for (int i = 0; t->waiting && i < t->n; i++)
        drop(t->waiting[i]);
    for (int i = 0; t->pending && i < t->npending; i++)
        drop(t->pending[i]);
    free(t->parent), free(t->nnbr), free(t->nbr), free(t->prev), free(t->next);
    free(t->waiting), free(t->pending), free(t->shut);
    free(t);
}

/* A socket listening on an ephemeral port of every IPv4 interface. */
static int listen_any(dp_gbt_tracker *t, char *errbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY), .sin_port = 0};
    socklen_t sl = sizeof sa;
    t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (t->lfd < 0 || bind(t->lfd, (struct sockaddr *)&sa, sizeof sa) || listen(t->lfd, 256) ||
        getsockname(t->lfd, (struct sockaddr *)&sa, &sl))
        return dp_errno(errbuf, "gbt tracker: cannot listen on a TCP port");
    t->port = ntohs(sa.sin_port);
    return 0;
}

dp_gbt_tracker *dp_gbt_tracker_start(int nworkers, char *errbuf)
{
    dp_gbt_tracker *t = calloc(1, sizeof *t);
    if (!t) {
        dp_err(errbuf, "gbt tracker: out of memory");
        return NULL;
    }
    t->lfd = -1, t->n = nworkers;
    size_t n = (size_t)(nworkers > 0 ? nworkers : 1);
    t->parent = malloc(n * sizeof(int)), t->nnbr = malloc(n * sizeof(int)), t->nbr = malloc(n * sizeof *t->nbr);
    t->prev = malloc(n * sizeof(int)), t->next = malloc(n * sizeof(int));
    t->waiting = calloc(n, sizeof *t->waiting), t->pending = calloc(n, sizeof *t->pending), t->shut = calloc(n, 1);
    if (nworkers < 1 || !t->parent || !t->nnbr || !t->nbr || !t->prev || !t->next || !t->waiting || !t->pending ||
        !t->shut || make_link_map(t) != 0) {
        dp_err(errbuf, nworkers < 1 ? "gbt tracker: %d workers" : "gbt tracker: out of memory", nworkers);
        release(t);
        return NULL;
    }
    if (listen_any(t, errbuf) != 0 || pthread_create(&t->th, NULL, run, t) != 0) {
        if (t->lfd >= 0 && t->port > 0)
            dp_err(errbuf, "gbt tracker: cannot start its thread");
        release(t);
        return NULL;
    }
    return t;
}

void dp_gbt_tracker_host(char *buf, size_t n)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1)}, me;
    socklen_t sl = sizeof me;
    sa.sin_addr.s_addr = htonl(0x0affffffu); /* 10.255.255.255: need not be reachable */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&me, &sl) != 0 || !inet_ntop(AF_INET, &me.sin_addr, buf, (socklen_t)n))
        snprintf(buf, n, "127.0.0.1");
    if (fd >= 0)
        close(fd);
}

int dp_gbt_tracker_port(const dp_gbt_tracker *t)
{
    return t->port;
}

int dp_gbt_tracker_finish(dp_gbt_tracker *t, char *errbuf)
{
    pthread_join(t->th, NULL);
    int rc = t->rc;
    if (rc != 0)
        dp_err(errbuf, "%s", t->err);
    release(t);
    return rc;
}
