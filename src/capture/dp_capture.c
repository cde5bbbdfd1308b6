/* dp_capture: libpcap wrapper (the only libpcap user of the project).
 *
 * Files are opened with nanosecond timestamp precision whatever their own
 * precision, so f->time is right for both usec and nsec files. pcapng files
 * whose interfaces have different link types: libpcap (1.10) reads them as
 * long as every interface has the first one's link type; at the first frame
 * behind an interface of another type it reports an error, which surfaces
 * here as dp_capture_next() == DP_NEXT_ERROR (frames before it are good).
 */
#include "capture/dp_capture.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/dp_ngfix.h"
#include "packet/dp_packet.h"

#define CAPTURE_READ_BUF (256 * 1024) /* stdio buffer of a capture file */
#define LIVE_BLOCK_MS 10 /* a live ring block is handed over after this at most */

struct dp_capture {
    pcap_t *p;
    char *name;        /* file path or interface, for messages */
    int live;
    int fd;            /* live: selectable descriptor (-1 if none) */
    int timeout_ms;    /* live: read timeout */
    int wakefd;        /* live: eventfd that dp_capture_break signals */
    int nano;          /* timestamps in nanoseconds */
    int linktype;      /* LINKTYPE_* */
    int failed;        /* a read error happened: keep reporting it */
    int err_errno;     /* its errno (0: the file's content, not the system) */
    atomic_int broken; /* set by dp_capture_break: another thread or a signal handler */
    uint64_t index;
    struct bpf_program prog; /* file: the filter dp_capture_next applies */
    int has_prog;
    uint64_t filtered; /* file: frames the filter left out */
    char *iobuf;       /* file: the stdio buffer libpcap reads through */
    struct stream *stream; /* a stream's cookie (NULL for files and live captures) */
    int stall_ms;      /* stream: a wait this long for a record is a timeout (0: wait on) */
    char errmsg[DP_ERRBUF_SIZE];
};

/* libpcap reports link types as DLT_* values; ours are LINKTYPE_*. They
 * differ for raw IP on most systems (DLT_RAW 12 or 14 vs LINKTYPE_RAW 101). */
#if defined(DLT_RAW) && DLT_RAW != 12
#error "src/packet/dp_linktype.c numbers DLT_RAW as on Linux (12)"
#endif

const char *dp_capture_linktype_name(int linktype)
{
    /* libpcap names no value of the range reserved for private use */
    static const char user[16][8] = {"USER0",  "USER1",  "USER2",  "USER3", "USER4",  "USER5",
                                     "USER6",  "USER7",  "USER8",  "USER9", "USER10", "USER11",
                                     "USER12", "USER13", "USER14", "USER15"};
    if (linktype >= 147 && linktype <= 162)
        return user[linktype - 147];
    return pcap_datalink_val_to_name(dp_linktype_to_dlt(linktype));
}

void dp_capture_linktype_desc(int linktype, char *out, size_t cap)
{
    const char *n = dp_capture_linktype_name(linktype);
    if (n)
        snprintf(out, cap, "%s (%d)", n, linktype);
    else
        snprintf(out, cap, "%d", linktype);
}

dp_probe dp_capture_probe(const char *path, char *errbuf)
{
    /* O_NONBLOCK: a file replaced by a FIFO since it was listed must not
     * block the open until some writer comes */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        dp_errno(errbuf, "%s: cannot open", path);
        return DP_PROBE_ERROR;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        dp_err(errbuf, "%s: %s, not a capture file", path,
               S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file (a FIFO, a device?)");
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return DP_PROBE_ERROR;
    }
    uint8_t m[4];
    size_t got = 0;
    while (got < 4) {
        ssize_t r = read(fd, m + got, 4 - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            dp_errno(errbuf, "%s: cannot read", path);
            close(fd);
            return DP_PROBE_ERROR;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got < 4) {
        dp_err(errbuf, "%s: %s, not a capture file", path,
               got ? "shorter than a capture header" : "empty file");
        return DP_PROBE_NOT_CAPTURE;
    }
    uint32_t be = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
    switch (be) {
    case 0xa1b2c3d4: case 0xd4c3b2a1: /* microseconds */
    case 0xa1b23c4d: case 0x4d3cb2a1: /* nanoseconds */
    case 0xa1b2cd34: case 0x34cdb2a1: /* Kuznetzov's modified pcap */
        return DP_PROBE_PCAP;
    case 0x0a0d0d0a:                   /* pcapng section header block */
        return DP_PROBE_PCAPNG;
    default:
        dp_err(errbuf, "%s: not a pcap or pcapng file (magic %02x%02x%02x%02x)", path, m[0],
               m[1], m[2], m[3]);
        return DP_PROBE_NOT_CAPTURE;
    }
}

static dp_capture *cap_new(pcap_t *p, const char *name, int live, char *errbuf)
{
    dp_capture *c = calloc(1, sizeof *c);
    char *nm = strdup(name);
    if (!c || !nm) {
        free(c);
        free(nm);
        pcap_close(p);
        dp_err(errbuf, "%s: out of memory", name);
        errno = ENOMEM;
        return NULL;
    }
    c->p = p;
    c->name = nm;
    c->live = live;
    c->nano = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
    c->linktype = dp_linktype_from_dlt(pcap_datalink(p));
    c->fd = -1;
    c->wakefd = -1;
    return c;
}

/* ---- streams: "-", FIFOs, pipes ------------------------------------------------- */

static volatile sig_atomic_t g_interrupted; /* dp_capture_interrupt was called */

void dp_capture_interrupt(void) { g_interrupted = 1; }

int dp_capture_is_stream(const char *path)
{
    if (!strcmp(path, "-"))
        return 1;
    struct stat st;
    return stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

/* The cookie of a stream's FILE (or a pcapng file's): its descriptor, the
 * capture whose break flag also ends a wait (NULL while libpcap reads the
 * header), and the pcapng link-type fix the bytes go through
 * (capture/dp_ngfix.h). */
typedef struct stream {
    int fd, own;
    int file;      /* a regular file: plain reads, no waiting */
    dp_capture *c;
    dp_ngfix *fix;
} stream;

/* Waits, 100 ms at a time, until fd has data (or its writer hung up); -1
 * with errno EINTR once interrupted. poll() rather than a blocking read: a
 * signal handler installed with SA_RESTART would restart the read forever. */
static int stream_wait(stream *s)
{
    for (;;) {
        if (g_interrupted || (s->c && atomic_load(&s->c->broken))) {
            errno = EINTR;
            return -1;
        }
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        int r = poll(&pfd, 1, 100);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* dp_ngfix_read_fn: the descriptor's next bytes (a stream's as they come). */
static ssize_t stream_raw_read(void *cookie, char *buf, size_t n)
{
    stream *s = cookie;
    for (;;) {
        if (!s->file && stream_wait(s) != 0)
            return -1;
        ssize_t k = read(s->fd, buf, n);
        if (k >= 0)
            return k;
        if (errno != EAGAIN && errno != EINTR)
            return -1;
    }
}

static ssize_t stream_read(void *cookie, char *buf, size_t n)
{
    stream *s = cookie;
    return dp_ngfix_read(s->fix, buf, n);
}

static int stream_close(void *cookie)
{
    stream *s = cookie;
    int rc = s->own ? close(s->fd) : 0;
    dp_ngfix_free(s->fix);
    free(s);
    return rc;
}

/* A FILE over "-" (standard input, left open) or a FIFO/pipe/device path,
 * opened without blocking for a writer; or (file 1) over a regular pcapng
 * file. Either way through the pcapng link-type fix. */
static FILE *stream_fopen(const char *path, int file, stream **out, char *errbuf)
{
    stream *s = calloc(1, sizeof *s);
    if (!s || !(s->fix = dp_ngfix_new(stream_raw_read, s))) {
        free(s);
        dp_err(errbuf, "%s: out of memory", path);
        return NULL;
    }
    s->file = file;
    if (file) {
        s->own = 1;
        if ((s->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            dp_errno(errbuf, "%s: cannot open", path);
            stream_close(s);
            return NULL;
        }
    } else if (!strcmp(path, "-")) {
        s->fd = STDIN_FILENO;
    } else {
        s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        s->own = 1;
        int fl = s->fd >= 0 ? fcntl(s->fd, F_GETFL) : -1;
        if (fl < 0 || fcntl(s->fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
            dp_errno(errbuf, "%s: cannot open", path);
            if (s->fd < 0)
                s->own = 0;
            stream_close(s);
            return NULL;
        }
    }
    cookie_io_functions_t io = {.read = stream_read, .close = stream_close};
    FILE *fp = fopencookie(s, "r", io);
    if (!fp) {
        dp_errno(errbuf, "%s: cannot open", path);
        stream_close(s);
        return NULL;
    }
    *out = s;
    return fp;
}

/* dp_capture_open_file for a stream: libpcap recognises the format from the
 * stream's first bytes. */
static dp_capture *open_stream(const char *path, char *errbuf)
{
    stream *s;
    FILE *fp = stream_fopen(path, 0, &s, errbuf);
    if (!fp)
        return NULL;
    char *iobuf = malloc(CAPTURE_READ_BUF);
    if (iobuf)
        setvbuf(fp, iobuf, _IOFBF, CAPTURE_READ_BUF);
    char perr[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, perr);
    if (!p) {
        int intr = g_interrupted;
        fclose(fp);
        free(iobuf);
        if (intr)
            dp_err(errbuf, "%s: interrupted while waiting for the capture header", path);
        else
            dp_err(errbuf, "%s: %s", path, perr[0] ? perr : "cannot open capture");
        return NULL;
    }
    dp_capture *c = cap_new(p, path, 0, errbuf);
    if (!c) {
        free(iobuf);
        return NULL;
    }
    c->iobuf = iobuf;
    s->c = c;
    c->stream = s;
    return c;
}

void dp_capture_set_stall_timeout(dp_capture *c, int ms) { c->stall_ms = ms > 0 ? ms : 0; }

/* 1 when no frame's record lies before libpcap in what the stream sent so
 * far (libpcap keeps no buffer of its own: what it has not read yet is in
 * the FILE's buffer, dp_ngfix's, or still in the pipe; pcapng blocks that
 * are no packet, which libpcap reads past, do not count). Where the FILE's
 * buffer cannot be seen, 0: never a stall. */
static int stream_drained(stream *s, FILE *fp)
{
#if defined(__GLIBC__)
    size_t unread = fp->_IO_read_ptr < fp->_IO_read_end ? (size_t)(fp->_IO_read_end - fp->_IO_read_ptr) : 0;
    return !dp_ngfix_record_ahead(s->fix, unread);
#else
    (void)s;
    (void)fp;
    return 0;
#endif
}

/* A stream with a stall timeout, between two records, whose writer sent
 * nothing for stall_ms: 1 (dp_capture_next says DP_NEXT_TIMEOUT and is
 * called again later), else 0 (data, the writer's end, or an interruption
 * that the read then reports). Waiting only between records keeps libpcap
 * out of the wait: it never sees a record half read. */
static int stream_stalled(dp_capture *c)
{
    if (!c->stream || c->stall_ms <= 0 || !stream_drained(c->stream, pcap_file(c->p)))
        return 0;
    struct pollfd pfd = {.fd = c->stream->fd, .events = POLLIN};
    int r = poll(&pfd, 1, c->stall_ms);
    return r == 0 || (r < 0 && errno == EINTR && !g_interrupted && !atomic_load(&c->broken));
}

dp_capture *dp_capture_open_file(const char *path, char *errbuf)
{
    if (dp_capture_is_stream(path))
        return open_stream(path, errbuf);
    char perr[PCAP_ERRBUF_SIZE];
    dp_probe pr = dp_capture_probe(path, errbuf);
    if (pr == DP_PROBE_NOT_CAPTURE)
        errno = 0;
    if (pr != DP_PROBE_PCAP && pr != DP_PROBE_PCAPNG)
        return NULL; /* errbuf says why (errno: the probe's) */
    /* Our own FILE with a big buffer: libpcap reads every record through
     * stdio, and the default buffer (one block) costs a read() per 4 KB.
     * pcapng goes through the link-type fix (capture/dp_ngfix.h). */
    stream *s = NULL;
    FILE *fp = pr == DP_PROBE_PCAPNG ? stream_fopen(path, 1, &s, errbuf) : fopen(path, "rb");
    if (!fp) {
        if (pr != DP_PROBE_PCAPNG) /* stream_fopen said why */
            dp_errno(errbuf, "%s: cannot open", path);
        return NULL;
    }
    /* glibc ignores the size unless it is given the buffer */
    char *iobuf = malloc(CAPTURE_READ_BUF);
    if (iobuf)
        setvbuf(fp, iobuf, _IOFBF, CAPTURE_READ_BUF);
    /* one thread reads a capture: no stdio lock around each of libpcap's
     * two freads per frame */
    __fsetlocking(fp, FSETLOCKING_BYCALLER);
    perr[0] = 0;
    errno = 0;
    pcap_t *p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, perr);
    if (!p) {
        int e = errno; /* a failed allocation or read in libpcap; 0 for a bad header */
        fclose(fp); /* libpcap closes it only once it owns it */
        free(iobuf);
        dp_err(errbuf, "%s: %s", path, perr[0] ? perr : "cannot open capture");
        errno = e;
        return NULL;
    }
    dp_capture *c = cap_new(p, path, 0, errbuf); /* closes p on failure */
    if (!c) {
        free(iobuf);
        return NULL;
    }
    c->iobuf = iobuf;
    return c;
}

dp_capture *dp_capture_open_live(const char *iface, int timeout_ms, char *errbuf)
{
    return dp_capture_open_live_opts(iface, timeout_ms, NULL, errbuf);
}

dp_capture *dp_capture_open_live_opts(const char *iface, int timeout_ms, const dp_live_opts *o,
                                      char *errbuf)
{
    int snaplen = o && o->snaplen > 0 ? o->snaplen : DP_LIVE_SNAPLEN;
    int buffer_mb = o && o->buffer_mb > 0 ? o->buffer_mb : DP_LIVE_BUFFER_MB;
    char perr[PCAP_ERRBUF_SIZE];
    perr[0] = 0;
    pcap_t *p = pcap_create(iface, perr);
    if (!p) {
        dp_err(errbuf, "%s: %s", iface, perr[0] ? perr : "cannot create live capture");
        return NULL;
    }
    if (timeout_ms <= 0)
        timeout_ms = 1;
    /* Not immediate mode: libpcap then uses the kernel's TPACKET_V3 ring,
     * whose blocks hold frames back to back (immediate mode gets fixed slots
     * of about snaplen bytes: 2 MB held 32 frames at snaplen 65535). A
     * block is handed over when full or after LIVE_BLOCK_MS, which bounds
     * the latency. The buffer absorbs the bursts during which the reader is
     * busy in the model (the first packets of many new flows at once). */
    if (pcap_set_snaplen(p, snaplen) != 0 || pcap_set_promisc(p, 0) != 0 ||
        pcap_set_buffer_size(p, buffer_mb << 20) != 0 ||
        pcap_set_timeout(p, timeout_ms < LIVE_BLOCK_MS ? timeout_ms : LIVE_BLOCK_MS) != 0 ||
        pcap_set_immediate_mode(p, 0) != 0) {
        dp_err(errbuf, "%s: cannot set capture options: %s", iface, pcap_geterr(p));
        pcap_close(p);
        return NULL;
    }
    /* nanosecond stamps where the platform has them; micro otherwise */
    (void)pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
    int rc = pcap_activate(p);
    if (rc < 0) {
        const char *detail = pcap_geterr(p);
        if (rc == PCAP_ERROR || !detail || !detail[0])
            dp_err(errbuf, "%s: %s", iface, detail && detail[0] ? detail : pcap_statustostr(rc));
        else
            dp_err(errbuf, "%s: %s (%s)", iface, pcap_statustostr(rc), detail);
        pcap_close(p);
        return NULL;
    }
    /* rc > 0 is a warning (e.g. promiscuous mode unsupported): go on.
     * libpcap's own read timeout does not fire on Linux while no packet
     * arrives (immediate mode) and is the block timeout otherwise, so reads
     * are non-blocking and the caller's timeout is a poll() on the capture
     * descriptor. */
    dp_capture *c = cap_new(p, iface, 1, errbuf);
    if (!c)
        return NULL;
    c->timeout_ms = timeout_ms;
    c->fd = pcap_get_selectable_fd(p);
    if (c->fd >= 0 && pcap_setnonblock(p, 1, perr) != 0)
        c->fd = -1;
    if (c->fd >= 0)
        c->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return c;
}

int dp_capture_set_filter(dp_capture *c, const char *bpf, char *errbuf)
{
    struct bpf_program prog;
    char ltd[64];
    dp_capture_linktype_desc(c->linktype, ltd, sizeof ltd);
    if (pcap_compile(c->p, &prog, bpf, 1, PCAP_NETMASK_UNKNOWN) != 0)
        return dp_err(errbuf, "%s: bad filter \"%s\" for link type %s: %s", c->name, bpf, ltd,
                      pcap_geterr(c->p));
    if (!c->live) { /* applied by dp_capture_next: frame numbers stay the file's */
        if (c->has_prog)
            pcap_freecode(&c->prog);
        c->prog = prog;
        c->has_prog = 1;
        return 0;
    }
    int rc = pcap_setfilter(c->p, &prog);
    pcap_freecode(&prog);
    if (rc != 0)
        return dp_err(errbuf, "%s: cannot set filter \"%s\": %s", c->name, bpf,
                      pcap_geterr(c->p));
    return 0;
}

int dp_capture_check_filter(const char *bpf, char *errbuf)
{
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
    if (!dead)
        return dp_err(errbuf, "out of memory");
    struct bpf_program prog;
    int rc = 0;
    if (pcap_compile(dead, &prog, bpf, 1, PCAP_NETMASK_UNKNOWN) != 0)
        rc = dp_err(errbuf, "bad filter \"%s\": %s", bpf, pcap_geterr(dead));
    else
        pcap_freecode(&prog);
    pcap_close(dead);
    return rc;
}

uint64_t dp_capture_filtered(const dp_capture *c) { return c->filtered; }

/* A live read: non-blocking with our own poll() timeout (in immediate mode
 * libpcap's timeout does not fire on Linux while no packet arrives, and a
 * non-blocking read does not see pcap_breakloop(), so the break is our own
 * flag + eventfd). Returns pcap_next_ex's result, or sets *early to what
 * dp_capture_next returns at once (a break, a timeout, a poll error). */
static int read_live(dp_capture *c, struct pcap_pkthdr **h, const u_char **data, dp_next *early, char *errbuf)
{
    if (atomic_exchange(&c->broken, 0)) {
        *early = DP_NEXT_BREAK;
        return 0;
    }
    int rc = pcap_next_ex(c->p, h, data);
    if (rc == 0 && c->fd >= 0) {
        struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN}, {.fd = c->wakefd, .events = POLLIN}};
        int pr = poll(pfd, c->wakefd >= 0 ? 2 : 1, c->timeout_ms);
        if (c->wakefd >= 0 && pr > 0 && (pfd[1].revents & POLLIN)) {
            uint64_t v;
            if (read(c->wakefd, &v, sizeof v) < 0) { /* already drained */
            }
        }
        if (atomic_exchange(&c->broken, 0)) {
            *early = DP_NEXT_BREAK;
            return 0;
        }
        if (pr < 0 && errno != EINTR) {
            snprintf(c->errmsg, sizeof c->errmsg, "%s: poll: %s", c->name, strerror(errno));
            dp_err(errbuf, "%s", c->errmsg);
            *early = DP_NEXT_ERROR;
            return 0;
        }
        if (pr <= 0 || !(pfd[0].revents & POLLIN)) {
            *early = DP_NEXT_TIMEOUT;
            return 0;
        }
        rc = pcap_next_ex(c->p, h, data);
    }
    if (rc == PCAP_ERROR_BREAK) /* pcap's leftover break flag */
        *early = DP_NEXT_TIMEOUT;
    return rc;
}

/* c->errmsg for libpcap's read error: the file, the problem and after
 * which frame. pcapng interfaces of another link type are named as such
 * (libpcap names the type by the value dp_ngfix gave it: DLT_RAW 12). */
static void set_read_error(dp_capture *c)
{
    const char *perr = pcap_geterr(c->p);
    unsigned lt;
    char a[64], b[64];
    if (sscanf(perr, "an interface has a type %u different", &lt) == 1) {
        dp_capture_linktype_desc(dp_linktype_from_dlt((int)lt), a, sizeof a);
        dp_capture_linktype_desc(c->linktype, b, sizeof b);
        snprintf(c->errmsg, sizeof c->errmsg, "%s: an interface of link type %s after frame %llu, the first of "
                 "%s: libpcap reads one link type per capture, the frames from there on are not read", c->name, a,
                 (unsigned long long)c->index, b);
    } else {
        snprintf(c->errmsg, sizeof c->errmsg, "%s: %s after frame %llu", c->name, perr,
                 (unsigned long long)c->index);
    }
}

dp_next dp_capture_next(dp_capture *c, dp_frame *f, char *errbuf)
{
    if (c->failed) {
        dp_err(errbuf, "%s", c->errmsg);
        return DP_NEXT_ERROR;
    }
    struct pcap_pkthdr *h;
    const u_char *data;
    int rc;
    if (c->live) {
        dp_next early = DP_NEXT_FRAME;
        rc = read_live(c, &h, &data, &early, errbuf);
        if (early != DP_NEXT_FRAME)
            return early;
    } else {
        if (stream_stalled(c))
            return DP_NEXT_TIMEOUT;
        errno = 0; /* what a failed read or allocation in libpcap leaves, for err_errno */
        while ((rc = pcap_next_ex(c->p, &h, &data)) == 1 && c->has_prog &&
               !pcap_offline_filter(&c->prog, h, data)) {
            c->index++; /* left out: still a frame of the file */
            c->filtered++;
        }
    }
    if (rc == 1) {
        f->data = data;
        f->caplen = h->caplen;
        f->wirelen = h->len;
        f->time = (double)h->ts.tv_sec + (double)h->ts.tv_usec * (c->nano ? 1e-9 : 1e-6);
        /* libpcap gives one link type per capture (see the file comment) */
        f->linktype = c->linktype;
        f->index = c->index++;
        return DP_NEXT_FRAME;
    }
    if (rc == 0)
        return DP_NEXT_TIMEOUT; /* live read timeout */
    if (rc == PCAP_ERROR_BREAK) {
        if (atomic_exchange(&c->broken, 0))
            return DP_NEXT_BREAK;
        return DP_NEXT_END; /* end of file */
    }
    if (!c->live && (atomic_load(&c->broken) || g_interrupted)) { /* a stream's wait gave up */
        atomic_store(&c->broken, 0);
        return DP_NEXT_BREAK;
    }
    /* PCAP_ERROR: truncated or corrupt file, or a live read error */
    c->err_errno = errno;
    set_read_error(c);
    c->failed = 1;
    dp_err(errbuf, "%s", c->errmsg);
    return DP_NEXT_ERROR;
}

int dp_capture_linktype(const dp_capture *c) { return c->linktype; }

int dp_capture_error_errno(const dp_capture *c) { return c->failed ? c->err_errno : 0; }

void dp_capture_break(dp_capture *c)
{
    atomic_store(&c->broken, 1);
    pcap_breakloop(c->p);
    if (c->wakefd >= 0) {
        uint64_t one = 1;
        if (write(c->wakefd, &one, sizeof one) < 0) { /* already signalled */
        }
    }
}

void dp_capture_stats(dp_capture *c, uint64_t *received, uint64_t *dropped)
{
    uint64_t r = 0, d = 0;
    struct pcap_stat st;
    if (c && c->live && pcap_stats(c->p, &st) == 0) {
        r = st.ps_recv;
        d = (uint64_t)st.ps_drop + st.ps_ifdrop;
    }
    if (received)
        *received = r;
    if (dropped)
        *dropped = d;
}

void dp_capture_close(dp_capture *c)
{
    if (!c)
        return;
    if (c->has_prog)
        pcap_freecode(&c->prog);
    pcap_close(c->p); /* closes the FILE: its buffer can go after */
    free(c->iobuf);
    if (c->wakefd >= 0)
        close(c->wakefd);
    free(c->name);
    free(c);
}

/* ---- writing --------------------------------------------------------------- */
struct dp_dumper {
    pcap_t *dead;
    pcap_dumper_t *d;
    dp_afile af;  /* the output (pcap writes through a dup of its descriptor) */
    int snaplen;
    int live;     /* flush after every frame */
};

static void dumper_free(dp_dumper *d)
{
    if (!d)
        return;
    if (d->d)
        pcap_dump_close(d->d);
    if (d->dead)
        pcap_close(d->dead);
    if (d->af.path)
        dp_afile_abort(&d->af);
    free(d);
}

dp_dumper *dp_dumper_open(const char *path, int linktype, int snaplen, char *errbuf)
{
    return dp_dumper_open_live(path, linktype, snaplen, 0, errbuf);
}

dp_dumper *dp_dumper_open_live(const char *path, int linktype, int snaplen, int live, char *errbuf)
{
    if (snaplen <= 0 || snaplen > 262144)
        snaplen = 262144;
    dp_dumper *d = calloc(1, sizeof *d);
    if (!d) {
        dp_err(errbuf, "%s: out of memory", path);
        return NULL;
    }
    d->snaplen = snaplen;
    d->live = live;
    d->dead = pcap_open_dead(dp_linktype_to_dlt(linktype), snaplen);
    if (!d->dead) {
        dumper_free(d);
        dp_err(errbuf, "%s: cannot create a pcap writer for link type %d", path, linktype);
        return NULL;
    }
    if (dp_afile_open_flags(&d->af, path, live ? DP_AFILE_LIVE : 0, errbuf) != 0) {
        dumper_free(d);
        return NULL;
    }
    fflush(d->af.f);
    int fd = dup(fileno(d->af.f));
    FILE *pf = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!pf) {
        dp_errno(errbuf, "%s: cannot open for writing", path);
        if (fd >= 0)
            close(fd);
        dumper_free(d);
        return NULL;
    }
    d->d = pcap_dump_fopen(d->dead, pf);
    if (!d->d) {
        dp_err(errbuf, "%s: %s", path, pcap_geterr(d->dead));
        fclose(pf);
        dumper_free(d);
        return NULL;
    }
    if (live && pcap_dump_flush(d->d) != 0) {
        dp_errno(errbuf, "%s: write error", path);
        dumper_free(d);
        return NULL;
    }
    return d;
}

int dp_dumper_write(dp_dumper *d, const dp_frame *f, char *errbuf)
{
    struct pcap_pkthdr h;
    double t = f->time < 0 ? 0 : f->time;
    double sec = floor(t);
    long usec = lround((t - sec) * 1e6);
    if (usec >= 1000000) {
        sec += 1;
        usec -= 1000000;
    }
    h.ts.tv_sec = (time_t)sec;
    h.ts.tv_usec = (suseconds_t)usec;
    h.caplen = f->caplen > (uint32_t)d->snaplen ? (uint32_t)d->snaplen : f->caplen;
    h.len = f->wirelen < f->caplen ? f->caplen : f->wirelen;
    errno = 0; /* pcap_dump returns nothing: a failed write shows in errno and the error flag */
    pcap_dump((u_char *)d->d, &h, f->data);
    if ((d->live && pcap_dump_flush(d->d) != 0) || ferror(pcap_dump_file(d->d))) {
        if (errno == 0)
            errno = EIO;
        return dp_errno(errbuf, "%s: write error", d->af.path);
    }
    return 0;
}

int dp_dumper_fd(dp_dumper *d) { return fileno(pcap_dump_file(d->d)); }

int dp_dumper_close(dp_dumper *d, int commit, char *errbuf)
{
    if (!d)
        return 0;
    int rc = 0;
    if (commit && (pcap_dump_flush(d->d) != 0 || ferror(pcap_dump_file(d->d))))
        rc = dp_errno(errbuf, "%s: write error", d->af.path);
    pcap_dump_close(d->d); /* closes the dup */
    d->d = NULL;
    if (commit && rc == 0)
        rc = dp_afile_commit(&d->af, errbuf);
    dumper_free(d); /* drops the temp file unless committed */
    return rc;
}
