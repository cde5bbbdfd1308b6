/* dp_preprocess: captures -> dataset. See dp_preprocess.h for the design. */
#include "dataset/dp_preprocess.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture/dp_capture.h"
#include "dataset/dp_dataset.h"
#include "dataset/dp_npy.h"

extern const char dp_iscx_labels_tsv[]; /* dataset/iscx_labels.S */

#define PART_VERSION 2
#define PART_MAGIC "DPPARTOK"
#define DATASET_FORMAT "deeppacket-dataset-1"
#define VEC_BATCH 700           /* rows per write: ~1 MB of vectors */
#define RBUF_SIZE (1 << 20)     /* merge read buffer (>= DP_VEC_LEN + 2) */
#define META_BATCH 4096         /* meta rows per write: 264 KB */
#define MAX_STATUS 400
#define MAX_NOTES 10            /* "not a capture" notes printed one by one */

static const char *const out_names[] = {"vectors.npy", "app.npy", "traffic.npy", "meta.npy",
                                        "files.tsv", "labels.tsv", "summary.md", "summary.json"};
#define N_OUT (sizeof out_names / sizeof out_names[0])

/* ---- link type names ------------------------------------------------------ */

const char *dp_preprocess_linktype_name(int lt)
{
    static const struct {
        int v;
        const char *name;
    } names[] = {
        {0, "NULL"}, {1, "EN10MB"}, {3, "AX25"}, {6, "IEEE802"}, {7, "ARCNET_BSD"},
        {8, "SLIP"}, {9, "PPP"}, {10, "FDDI"}, {12, "RAW"}, {14, "RAW"},
        {50, "PPP_HDLC"}, {51, "PPP_ETHER"}, {100, "ATM_RFC1483"}, {101, "RAW"},
        {104, "C_HDLC"}, {105, "IEEE802_11"}, {107, "FRELAY"}, {108, "LOOP"},
        {113, "LINUX_SLL"}, {114, "LTALK"}, {117, "PFLOG"}, {119, "PRISM_HEADER"},
        {122, "IP_OVER_FC"}, {123, "SUNATM"}, {127, "IEEE802_11_RADIO"},
        {129, "ARCNET_LINUX"}, {138, "APPLE_IP_OVER_IEEE1394"}, {139, "MTP2_WITH_PHDR"},
        {140, "MTP2"}, {141, "MTP3"}, {142, "SCCP"}, {143, "DOCSIS"}, {144, "LINUX_IRDA"},
        {163, "IEEE802_11_RADIO_AVS"}, {165, "BACNET_MS_TP"}, {166, "PPP_PPPD"},
        {169, "GPRS_LLC"}, {177, "LINUX_LAPD"}, {187, "BLUETOOTH_HCI_H4"},
        {189, "USB_LINUX"}, {192, "PPI"}, {195, "IEEE802_15_4_WITHFCS"},
        {196, "SITA"}, {197, "ERF"}, {201, "BLUETOOTH_HCI_H4_WITH_PHDR"},
        {202, "AX25_KISS"}, {203, "LAPD"}, {204, "PPP_WITH_DIR"}, {209, "IPMB_LINUX"},
        {215, "IEEE802_15_4_NONASK_PHY"}, {220, "USB_LINUX_MMAPPED"}, {224, "FC_2"},
        {227, "CAN_SOCKETCAN"}, {228, "IPV4"}, {229, "IPV6"},
        {230, "IEEE802_15_4_NOFCS"}, {231, "DBUS"}, {235, "DVB_CI"}, {239, "NFLOG"},
        {240, "NETANALYZER"}, {242, "IPOIB"}, {247, "MPEG_2_TS"}, {249, "NETLINK"},
        {251, "BLUETOOTH_LE_LL"}, {253, "NETLINK"}, {254, "BLUETOOTH_LINUX_MONITOR"},
        {255, "BLUETOOTH_BREDR_BB"}, {256, "BLUETOOTH_LE_LL_WITH_PHDR"},
        {258, "PKTAP"}, {259, "EPON"}, {263, "IPMI_HPM_2"}, {264, "ZWAVE_R1_R2"},
        {266, "ZWAVE_R3"}, {270, "WATTSTOPPER_DLM"}, {271, "ISO_14443"},
        {272, "RDS"}, {273, "USB_DARWIN"}, {275, "SDLC"}, {276, "LINUX_SLL2"},
        {281, "DISPLAYPORT_AUX"}, {283, "ETW"}, {284, "NETANALYZER_NG"},
    };
    if (lt >= 147 && lt <= 162) {
        static const char *const user[] = {"USER0", "USER1", "USER2", "USER3", "USER4",
                                           "USER5", "USER6", "USER7", "USER8", "USER9",
                                           "USER10", "USER11", "USER12", "USER13",
                                           "USER14", "USER15"};
        return user[lt - 147];
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].v == lt)
            return names[i].name;
    return NULL;
}

static void linktype_desc(int lt, char *out, size_t cap)
{
    const char *n = dp_preprocess_linktype_name(lt);
    if (n)
        snprintf(out, cap, "%s (%d)", n, lt);
    else
        snprintf(out, cap, "%d", lt);
}

/* ---- the run -------------------------------------------------------------- */

typedef struct capfile {
    char *rel;              /* path relative to the source folder */
    char *path;             /* SRC/rel */
    uint64_t size;
    int64_t mtime_ns;
    int is_capture;
    int probe;              /* dp_probe result */
    uint64_t relhash;       /* FNV-1a of rel: part key and flow salt */
    int cls[DP_NTASKS];
    /* results */
    int ready;              /* parts complete (under run.mu) */
    int reused;
    uint64_t frames, kept;
    uint64_t skipped[DP_VERDICT_COUNT];
    char status[MAX_STATUS]; /* "" when all went well */
} capfile;

typedef struct run {
    const dp_preprocess_opts *o;
    char *src, *dst, *parts;
    capfile *files;
    size_t nfiles, ncaptures;
    size_t *queue;          /* indices into files, largest first */
    size_t nqueue;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t next;            /* next queue slot */
    size_t finished;        /* queue items finished */
    size_t taken;
    int failed, stop;
    char err[DP_ERRBUF_SIZE];
    _Atomic uint64_t live_frames, live_packets;
    double t_read_done;     /* when the last queued capture was read */

    pthread_mutex_t warn_mu;
    dp_progress prog;
    int progress_on;
} run;

static void default_warn(void *ctx, const char *file, const char *msg, int is_note)
{
    run *r = ctx;
    if (r && r->progress_on && r->prog.tty && r->prog.printed)
        fputs("\r\033[K", stderr);
    fprintf(stderr, "deeppacket preprocess: %s: %s: %s\n", is_note ? "note" : "warning", file, msg);
}

static void warn(run *r, const char *file, int is_note, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void warn(run *r, const char *file, int is_note, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&r->warn_mu);
    if (r->o->warn)
        r->o->warn(r->o->warn_ctx, file, msg, is_note);
    else
        default_warn(r, file, msg, is_note);
    pthread_mutex_unlock(&r->warn_mu);
}

/* A message from another module usually starts with "PATH: "; drop that. */
static const char *strip_path(const char *msg, const char *path)
{
    size_t n = strlen(path);
    if (!strncmp(msg, path, n) && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

/* Appends a problem to a capture's status (one line, "; "-separated). */
static void add_status(capfile *cf, const char *msg)
{
    size_t n = strlen(cf->status);
    if (n + 3 >= sizeof cf->status)
        return;
    snprintf(cf->status + n, sizeof cf->status - n, "%s%s", n ? "; " : "", msg);
    for (char *p = cf->status; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r')
            *p = ' ';
}

static int64_t stat_mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* ---- listing the source folder -------------------------------------------- */

typedef struct devino {
    dev_t dev;
    ino_t ino;
} devino;

typedef struct lister {
    capfile *files;
    size_t n, cap;
    devino skip;            /* the target folder (not read as input) */
    int has_skip;
    devino stack[64];
    int depth;
} lister;

static int add_file(lister *l, const char *src, const char *rel, const struct stat *st)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 256;
        capfile *nf = realloc(l->files, nc * sizeof *nf);
        if (!nf)
            return -1;
        l->files = nf;
        l->cap = nc;
    }
    capfile *cf = &l->files[l->n];
    memset(cf, 0, sizeof *cf);
    cf->rel = strdup(rel);
    cf->path = dp_path_join(src, rel);
    if (!cf->rel || !cf->path) {
        free(cf->rel);
        free(cf->path);
        return -1;
    }
    cf->size = (uint64_t)st->st_size;
    cf->mtime_ns = stat_mtime_ns(st);
    cf->relhash = dp_fnv1a(rel, strlen(rel), DP_FNV_INIT);
    l->n++;
    return 0;
}

static int list_dir(run *r, lister *l, const char *rel, char *errbuf)
{
    char *dir = rel ? dp_path_join(r->src, rel) : strdup(r->src);
    if (!dir)
        return dp_err(errbuf, "%s: out of memory", r->src);
    DIR *d = opendir(dir);
    if (!d) {
        if (!rel) {
            dp_errno(errbuf, "%s: cannot read capture folder", dir);
            free(dir);
            return -1;
        }
        warn(r, dir, 1, "cannot read folder (%s), skipped", strerror(errno));
        free(dir);
        return 0;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') /* ., .., hidden files and folders */
            continue;
        char *crel = rel ? dp_path_join(rel, e->d_name) : strdup(e->d_name);
        char *full = dp_path_join(dir, e->d_name);
        if (!crel || !full) {
            free(crel);
            free(full);
            rc = dp_err(errbuf, "%s: out of memory", dir);
            break;
        }
        struct stat st;
        if (stat(full, &st) != 0) {
            warn(r, full, 1, "cannot stat (%s), skipped", strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            int loop = l->has_skip && st.st_dev == l->skip.dev && st.st_ino == l->skip.ino;
            for (int i = 0; i < l->depth && !loop; i++)
                loop = st.st_dev == l->stack[i].dev && st.st_ino == l->stack[i].ino;
            if (!loop && l->depth < (int)(sizeof l->stack / sizeof l->stack[0])) {
                l->stack[l->depth++] = (devino){st.st_dev, st.st_ino};
                rc = list_dir(r, l, crel, errbuf);
                l->depth--;
            }
        } else if (S_ISREG(st.st_mode)) {
            if (add_file(l, r->src, crel, &st) != 0)
                rc = dp_err(errbuf, "%s: out of memory", dir);
        }
        free(crel);
        free(full);
        if (rc != 0)
            break;
    }
    closedir(d);
    free(dir);
    return rc;
}

static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const capfile *)a)->rel, ((const capfile *)b)->rel);
}

/* ---- part files ------------------------------------------------------------ */

static char *part_path(const run *r, const capfile *cf, const char *ext)
{
    char name[64];
    snprintf(name, sizeof name, "%016llx.%s", (unsigned long long)cf->relhash, ext);
    return dp_path_join(r->parts, name);
}

typedef struct wbuf {
    int fd;
    uint8_t *buf;
    size_t n, cap;
    uint64_t written;
} wbuf;

static int write_full(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t read_full(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, b + got, n - got);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

static int wbuf_flush(wbuf *w)
{
    if (w->n && write_full(w->fd, w->buf, w->n) != 0)
        return -1;
    w->written += w->n;
    w->n = 0;
    return 0;
}

/* The trailer closing a .meta part: text "key=value" lines, then the text's
 * length (u64 little-endian) and PART_MAGIC. */
static int format_trailer(const capfile *cf, uint64_t vec_bytes, char *t, size_t cap)
{
    int n = snprintf(t, cap,
                     "version=%d\nrelhash=%016llx\nsize=%llu\nmtime=%lld\nframes=%llu\nkept=%llu\n"
                     "vec_bytes=%llu\nskipped=%llu,%llu,%llu,%llu,%llu,%llu\nstatus=%s\n",
                     PART_VERSION, (unsigned long long)cf->relhash,
                     (unsigned long long)cf->size, (long long)cf->mtime_ns,
                     (unsigned long long)cf->frames, (unsigned long long)cf->kept,
                     (unsigned long long)vec_bytes, (unsigned long long)cf->skipped[0], (unsigned long long)cf->skipped[1],
                     (unsigned long long)cf->skipped[2], (unsigned long long)cf->skipped[3],
                     (unsigned long long)cf->skipped[4], (unsigned long long)cf->skipped[5],
                     cf->status);
    _Static_assert(DP_VERDICT_COUNT == 6, "trailer lists 6 verdict counters");
    if (n < 0 || (size_t)n + 16 > cap)
        return -1;
    uint64_t len = (uint64_t)n;
    for (int i = 0; i < 8; i++)
        t[n + i] = (char)(len >> (8 * i));
    memcpy(t + n + 8, PART_MAGIC, 8);
    return n + 16;
}

/* Returns 1 when cf's parts exist, are whole and were made from the source
 * as it is now; fills cf's counts and status from the trailer. */
static int load_part(const run *r, capfile *cf)
{
    char *mp = part_path(r, cf, "meta"), *vp = part_path(r, cf, "vec");
    int ok = 0, fd = -1;
    struct stat ms, vs;
    if (!mp || !vp || stat(mp, &ms) != 0 || stat(vp, &vs) != 0 || ms.st_size < 16)
        goto out;
    fd = open(mp, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto out;
    uint8_t foot[16];
    if (pread(fd, foot, 16, ms.st_size - 16) != 16 || memcmp(foot + 8, PART_MAGIC, 8) != 0)
        goto out;
    uint64_t tlen = 0;
    for (int i = 0; i < 8; i++)
        tlen |= (uint64_t)foot[i] << (8 * i);
    if (tlen == 0 || tlen > 4096 || tlen + 16 > (uint64_t)ms.st_size)
        goto out;
    char t[4097];
    if (pread(fd, t, tlen, ms.st_size - 16 - (off_t)tlen) != (ssize_t)tlen)
        goto out;
    t[tlen] = 0;
    int version = -1;
    unsigned long long relhash = 0, size = 0, frames = 0, kept = 0, vbytes = 0, sk[6] = {0};
    long long mtime = 0;
    char status[MAX_STATUS] = "";
    int have = 0;
    char *save = NULL;
    for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (sscanf(line, "version=%d", &version) == 1)
            have |= 1;
        else if (sscanf(line, "relhash=%llx", &relhash) == 1)
            have |= 2;
        else if (sscanf(line, "size=%llu", &size) == 1)
            have |= 4;
        else if (sscanf(line, "mtime=%lld", &mtime) == 1)
            have |= 8;
        else if (sscanf(line, "frames=%llu", &frames) == 1)
            have |= 16;
        else if (sscanf(line, "kept=%llu", &kept) == 1)
            have |= 32;
        else if (sscanf(line, "vec_bytes=%llu", &vbytes) == 1)
            have |= 256;
        else if (sscanf(line, "skipped=%llu,%llu,%llu,%llu,%llu,%llu", &sk[0], &sk[1], &sk[2],
                        &sk[3], &sk[4], &sk[5]) == 6)
            have |= 64;
        else if (!strncmp(line, "status=", 7)) {
            snprintf(status, sizeof status, "%s", line + 7);
            have |= 128;
        }
    }
    if (have != 511 || version != PART_VERSION || relhash != cf->relhash || size != cf->size ||
        mtime != cf->mtime_ns || kept > frames)
        goto out;
    if ((uint64_t)ms.st_size != kept * sizeof(dp_meta) + tlen + 16 ||
        (uint64_t)vs.st_size != vbytes || vbytes < 2 * kept || vbytes > kept * (DP_VEC_LEN + 2))
        goto out;
    cf->frames = frames;
    cf->kept = kept;
    for (int i = 0; i < DP_VERDICT_COUNT; i++)
        cf->skipped[i] = sk[i];
    memcpy(cf->status, status, sizeof status);
    ok = 1;
out:
    if (fd >= 0)
        close(fd);
    free(mp);
    free(vp);
    return ok;
}

/* Length of a vector without its trailing zero bytes. */
static size_t vec_used(const uint8_t *v)
{
    static const uint8_t zero[64];
    size_t n = DP_VEC_LEN;
    while (n >= 64 && memcmp(v + n - 64, zero, 64) == 0)
        n -= 64;
    while (n && v[n - 1] == 0)
        n--;
    return n;
}

/* Reads one capture into its parts. Problems with the capture become
 * warnings and its status; -1 (message in errbuf) only for failures to
 * write the parts, which stop the run. */
static int process_capture(run *r, capfile *cf, wbuf *vb, wbuf *mb, uint8_t *vec, char *errbuf)
{
    int rc = -1;
    char *vpath = part_path(r, cf, "vec"), *mpath = part_path(r, cf, "meta");
    char *vtmp = part_path(r, cf, "vec.tmp"), *mtmp = part_path(r, cf, "meta.tmp");
    dp_capture *c = NULL;
    vb->fd = mb->fd = -1;
    vb->n = mb->n = 0;
    vb->written = mb->written = 0;
    cf->frames = cf->kept = 0;
    memset(cf->skipped, 0, sizeof cf->skipped);
    cf->status[0] = 0;
    if (!vpath || !mpath || !vtmp || !mtmp) {
        dp_err(errbuf, "%s: out of memory", r->parts);
        goto out;
    }
    vb->fd = open(vtmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (vb->fd < 0) {
        dp_errno(errbuf, "%s: cannot create", vtmp);
        goto out;
    }
    mb->fd = open(mtmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (mb->fd < 0) {
        dp_errno(errbuf, "%s: cannot create", mtmp);
        goto out;
    }

    char ceb[DP_ERRBUF_SIZE] = "";
    c = dp_capture_open_file(cf->path, ceb);
    if (!c) {
        add_status(cf, strip_path(ceb, cf->path));
        warn(r, cf->path, 0, "%s; skipped", cf->status);
    } else {
        int lt = dp_capture_linktype(c);
        char ltd[64];
        if (!dp_linktype_supported(lt)) {
            /* pcap: one link type for the whole file; pcapng: the first
             * interface's, others are checked per frame below */
            linktype_desc(lt, ltd, sizeof ltd);
        }
        int whole_file_bad = !dp_linktype_supported(lt) && cf->probe == DP_PROBE_PCAP;
        if (whole_file_bad) {
            char msg[128];
            snprintf(msg, sizeof msg, "unsupported link type %s", ltd);
            add_status(cf, msg);
            warn(r, cf->path, 0, "%s; skipped", msg);
        } else {
            dp_frame f;
            int nrc, bad_lt = -1;
            uint64_t reported_f = 0, reported_p = 0;
            const size_t meta_cap = mb->cap - mb->cap % sizeof(dp_meta);
            while ((nrc = dp_capture_next(c, &f, ceb)) == 1) {
                cf->frames++;
                dp_pkt_info info;
                dp_verdict v = dp_packet_transform(f.linktype, f.data, f.caplen, vec, &info);
                if (v == DP_KEEP) {
                    /* the part holds the vector without its trailing zeros:
                     * a 2-byte length, then the bytes */
                    size_t len = vec_used(vec);
                    if (vb->cap - vb->n < len + 2 && wbuf_flush(vb) != 0) {
                        dp_errno(errbuf, "%s: write failed", vtmp);
                        goto out;
                    }
                    vb->buf[vb->n] = (uint8_t)(len & 0xff);
                    vb->buf[vb->n + 1] = (uint8_t)(len >> 8);
                    memcpy(vb->buf + vb->n + 2, vec, len);
                    vb->n += len + 2;
                    if (meta_cap - mb->n < sizeof(dp_meta) && wbuf_flush(mb) != 0) {
                        dp_errno(errbuf, "%s: write failed", mtmp);
                        goto out;
                    }
                    dp_meta m;
                    m.file = 0; /* set at merge time: the index in files.tsv */
                    m.index = f.index;
                    m.time = f.time;
                    m.flow = dp_flow_id(&info, cf->relhash);
                    m.ipver = info.ipver;
                    m.proto = info.proto;
                    m.sport = info.sport;
                    m.dport = info.dport;
                    memcpy(m.saddr, info.saddr, 16);
                    memcpy(m.daddr, info.daddr, 16);
                    memcpy(mb->buf + mb->n, &m, sizeof m);
                    mb->n += sizeof m;
                    cf->kept++;
                } else {
                    if ((unsigned)v < DP_VERDICT_COUNT)
                        cf->skipped[v]++;
                    if (v == DP_SKIP_LINKTYPE && bad_lt < 0)
                        bad_lt = f.linktype;
                }
                if ((cf->frames & 0x3fff) == 0) {
                    atomic_fetch_add(&r->live_frames, cf->frames - reported_f);
                    atomic_fetch_add(&r->live_packets, cf->kept - reported_p);
                    reported_f = cf->frames;
                    reported_p = cf->kept;
                }
            }
            atomic_fetch_add(&r->live_frames, cf->frames - reported_f);
            atomic_fetch_add(&r->live_packets, cf->kept - reported_p);
            if (bad_lt >= 0) {
                char msg[160];
                linktype_desc(bad_lt, ltd, sizeof ltd);
                snprintf(msg, sizeof msg, "%llu frames of unsupported link type %s skipped",
                         (unsigned long long)cf->skipped[DP_SKIP_LINKTYPE], ltd);
                add_status(cf, msg);
                warn(r, cf->path, 0, "%s", msg);
            }
            if (nrc != 0) {
                char msg[DP_ERRBUF_SIZE + 100];
                if (nrc == -1)
                    snprintf(msg, sizeof msg, "%s", strip_path(ceb, cf->path));
                else
                    snprintf(msg, sizeof msg, "unexpected read status %d after frame %llu", nrc,
                             (unsigned long long)cf->frames);
                add_status(cf, msg);
                warn(r, cf->path, 0, "%s; kept the %llu packets read before", msg,
                     (unsigned long long)cf->kept);
            }
        }
    }
    char trailer[MAX_STATUS + 512];
    int tl = format_trailer(cf, vb->written + vb->n, trailer, sizeof trailer);
    if (tl < 0) {
        dp_err(errbuf, "%s: cannot format part trailer", mtmp);
        goto out;
    }
    if (wbuf_flush(vb) != 0) {
        dp_errno(errbuf, "%s: write failed", vtmp);
        goto out;
    }
    if (wbuf_flush(mb) != 0 || write_full(mb->fd, trailer, (size_t)tl) != 0) {
        dp_errno(errbuf, "%s: write failed", mtmp);
        goto out;
    }
    /* No fsync: parts are checked (sizes, trailer) before reuse, and a part
     * lost in a crash is simply redone. */
    int vfd = vb->fd, mfd = mb->fd;
    vb->fd = mb->fd = -1;
    if (close(vfd) != 0) {
        close(mfd);
        dp_errno(errbuf, "%s: write failed", vtmp);
        goto out;
    }
    if (close(mfd) != 0) {
        dp_errno(errbuf, "%s: write failed", mtmp);
        goto out;
    }
    if (rename(vtmp, vpath) != 0) {
        dp_errno(errbuf, "%s: rename failed", vpath);
        goto out;
    }
    if (rename(mtmp, mpath) != 0) {
        dp_errno(errbuf, "%s: rename failed", mpath);
        goto out;
    }
    rc = 0;
out:
    if (c)
        dp_capture_close(c);
    if (vb->fd >= 0)
        close(vb->fd);
    if (mb->fd >= 0)
        close(mb->fd);
    vb->fd = mb->fd = -1;
    if (rc != 0) {
        if (vtmp)
            unlink(vtmp);
        if (mtmp)
            unlink(mtmp);
    }
    free(vpath);
    free(mpath);
    free(vtmp);
    free(mtmp);
    return rc;
}

static void *worker(void *arg)
{
    run *r = arg;
    wbuf vb = {.fd = -1}, mb = {.fd = -1};
    vb.cap = (size_t)VEC_BATCH * DP_VEC_LEN;
    mb.cap = (size_t)META_BATCH * sizeof(dp_meta);
    vb.buf = malloc(vb.cap);
    mb.buf = malloc(mb.cap);
    uint8_t *vec = malloc(DP_VEC_LEN);
    if (!vb.buf || !mb.buf || !vec) {
        pthread_mutex_lock(&r->mu);
        if (!r->failed) {
            r->failed = 1;
            dp_err(r->err, "out of memory");
        }
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        free(vb.buf);
        free(mb.buf);
        free(vec);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&r->mu);
        if (r->failed || r->stop || r->next >= r->nqueue) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        if (r->o->stop_after && r->taken >= r->o->stop_after) {
            r->stop = 1;
            pthread_cond_broadcast(&r->cv);
            pthread_mutex_unlock(&r->mu);
            break;
        }
        size_t idx = r->queue[r->next++];
        r->taken++;
        pthread_mutex_unlock(&r->mu);

        char eb[DP_ERRBUF_SIZE];
        int rc = process_capture(r, &r->files[idx], &vb, &mb, vec, eb);

        pthread_mutex_lock(&r->mu);
        if (rc != 0 && !r->failed) {
            r->failed = 1;
            memcpy(r->err, eb, sizeof eb);
        }
        if (rc == 0)
            r->files[idx].ready = 1;
        r->finished++;
        if (r->finished == r->nqueue)
            r->t_read_done = dp_now();
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    free(vb.buf);
    free(mb.buf);
    free(vec);
    return NULL;
}

/* ---- fingerprint and completeness ---------------------------------------- */

static uint64_t fingerprint(const run *r, const char *label_text)
{
    uint64_t h = dp_fnv1a(DATASET_FORMAT, strlen(DATASET_FORMAT) + 1, DP_FNV_INIT);
    h = dp_fnv1a(label_text, strlen(label_text) + 1, h);
    for (size_t i = 0; i < r->nfiles; i++) {
        const capfile *cf = &r->files[i];
        h = dp_fnv1a(cf->rel, strlen(cf->rel) + 1, h);
        h = dp_fnv1a(&cf->size, sizeof cf->size, h);
        h = dp_fnv1a(&cf->mtime_ns, sizeof cf->mtime_ns, h);
    }
    return h;
}

int dp_preprocess_complete(const char *dir)
{
    for (size_t i = 0; i < N_OUT; i++) {
        char *p = dp_path_join(dir, out_names[i]);
        struct stat st;
        int ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
        free(p);
        if (!ok)
            return 0;
    }
    return 1;
}

/* Reads `"key": value` (a number or a quoted string) from summary.json. */
static int json_lookup(const char *json, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p == '"')
        p++;
    size_t k = 0;
    while (*p && *p != '"' && *p != ',' && *p != '\n' && *p != '}' && k + 1 < cap)
        out[k++] = *p++;
    out[k] = 0;
    return 0;
}

/* ---- outputs ---------------------------------------------------------------- */

static void tsv_field(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

static const char *class_name(const dp_labels *t, int task, int c)
{
    if (c < 0)
        return "-";
    return c < DP_MAX_CLASSES && t->names[task][c] ? t->names[task][c] : "?";
}

/* The readable summary: with_files adds the per-file table (summary.md);
 * without it only the files with a warning are listed (the printed one). */
static void write_md(FILE *f, const run *r, const dp_labels *t, const dp_preprocess_stats *st,
                     int with_files)
{
    fprintf(f, "# deeppacket preprocess summary\n\n");
    fprintf(f, "- source: %s\n", r->src);
    fprintf(f, "- captures: %zu (%zu other files skipped)\n", st->captures, st->not_captures);
    fprintf(f, "- captures with a warning: %zu\n", st->with_warnings);
    fprintf(f, "- frames read: %llu\n", (unsigned long long)st->frames);
    fprintf(f, "- packets kept: %llu\n\n", (unsigned long long)st->packets);
    for (int k = 0; k < DP_NTASKS; k++) {
        fprintf(f, "## Packets per %s class\n\n| id | class | packets |\n|---:|---|---:|\n",
                dp_task_name[k]);
        for (int c = 0; c < t->nclasses[k]; c++)
            fprintf(f, "| %d | %s | %llu |\n", c, class_name(t, k, c),
                    (unsigned long long)st->per_class[k][c]);
        fprintf(f, "| - | (no label) | %llu |\n\n", (unsigned long long)st->unlabelled[k]);
    }
    fprintf(f, "## Frames skipped\n\n| reason | frames |\n|---|---:|\n");
    for (int v = 1; v < DP_VERDICT_COUNT; v++)
        fprintf(f, "| %s | %llu |\n", dp_verdict_name((dp_verdict)v),
                (unsigned long long)st->skipped[v]);
    fprintf(f, "\n");
    if (with_files) {
        fprintf(f, "## Files\n\n| # | file | app | traffic | frames | kept | status |\n"
                   "|---:|---|---|---|---:|---:|---|\n");
        size_t idx = 0;
        for (size_t i = 0; i < r->nfiles; i++) {
            const capfile *cf = &r->files[i];
            if (!cf->is_capture)
                continue;
            fprintf(f, "| %zu | %s | %s | %s | %llu | %llu | %s |\n", idx++, cf->rel,
                    class_name(t, DP_TASK_APP, cf->cls[DP_TASK_APP]),
                    class_name(t, DP_TASK_TRAFFIC, cf->cls[DP_TASK_TRAFFIC]),
                    (unsigned long long)cf->frames, (unsigned long long)cf->kept,
                    cf->status[0] ? cf->status : "ok");
        }
        if (st->not_captures) {
            fprintf(f, "\nSkipped (not a capture): ");
            int first = 1;
            for (size_t i = 0; i < r->nfiles; i++)
                if (!r->files[i].is_capture) {
                    fprintf(f, "%s%s", first ? "" : ", ", r->files[i].rel);
                    first = 0;
                }
            fprintf(f, "\n");
        }
    } else if (st->with_warnings) {
        fprintf(f, "## Captures with a warning\n\n");
        for (size_t i = 0; i < r->nfiles; i++) {
            const capfile *cf = &r->files[i];
            if (cf->is_capture && cf->status[0])
                fprintf(f, "- %s: %s\n", cf->rel, cf->status);
        }
        fprintf(f, "\n");
    }
}

static void write_json(FILE *f, const run *r, const dp_labels *t, const dp_preprocess_stats *st,
                       uint64_t fp)
{
    fprintf(f, "{\n  \"format\": \"%s\",\n  \"fingerprint\": \"%016llx\",\n", DATASET_FORMAT,
            (unsigned long long)fp);
    fprintf(f, "  \"source\": ");
    dp_json_str(f, r->src);
    fprintf(f, ",\n  \"packets\": %llu,\n  \"frames\": %llu,\n  \"captures\": %zu,\n"
               "  \"not_captures\": %zu,\n  \"captures_with_warnings\": %zu,\n"
               "  \"capture_bytes\": %llu,\n",
            (unsigned long long)st->packets, (unsigned long long)st->frames, st->captures,
            st->not_captures, st->with_warnings, (unsigned long long)st->capture_bytes);
    fprintf(f, "  \"skipped\": {");
    for (int v = 1; v < DP_VERDICT_COUNT; v++)
        fprintf(f, "%s\"%s\": %llu", v > 1 ? ", " : "", dp_verdict_name((dp_verdict)v),
                (unsigned long long)st->skipped[v]);
    fprintf(f, "},\n  \"tasks\": {\n");
    for (int k = 0; k < DP_NTASKS; k++) {
        fprintf(f, "    \"%s\": {\"unlabelled\": %llu, \"classes\": [", dp_task_name[k],
                (unsigned long long)st->unlabelled[k]);
        for (int c = 0; c < t->nclasses[k]; c++) {
            fprintf(f, "%s\n      {\"id\": %d, \"name\": ", c ? "," : "", c);
            dp_json_str(f, class_name(t, k, c));
            fprintf(f, ", \"packets\": %llu}", (unsigned long long)st->per_class[k][c]);
        }
        fprintf(f, "]}%s\n", k + 1 < DP_NTASKS ? "," : "");
    }
    fprintf(f, "  },\n  \"files\": [");
    size_t idx = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        const capfile *cf = &r->files[i];
        if (!cf->is_capture)
            continue;
        fprintf(f, "%s\n    {\"index\": %zu, \"path\": ", idx ? "," : "", idx);
        dp_json_str(f, cf->rel);
        fprintf(f, ", \"app\": %d, \"traffic\": %d, \"frames\": %llu, \"kept\": %llu, \"skipped\": {",
                cf->cls[0], cf->cls[1], (unsigned long long)cf->frames,
                (unsigned long long)cf->kept);
        for (int v = 1; v < DP_VERDICT_COUNT; v++)
            fprintf(f, "%s\"%s\": %llu", v > 1 ? ", " : "", dp_verdict_name((dp_verdict)v),
                    (unsigned long long)cf->skipped[v]);
        fprintf(f, "}, \"status\": ");
        dp_json_str(f, cf->status[0] ? cf->status : "ok");
        fprintf(f, "}");
        idx++;
    }
    fprintf(f, "\n  ],\n  \"not_captures\": [");
    int first = 1;
    for (size_t i = 0; i < r->nfiles; i++)
        if (!r->files[i].is_capture) {
            fprintf(f, "%s\n    ", first ? "" : ",");
            dp_json_str(f, r->files[i].rel);
            first = 0;
        }
    fprintf(f, "%s]\n}\n", first ? "" : "\n  ");
}

/* Writes a text output atomically through a callback-free memstream. */
static int save_text(const char *dir, const char *name, const char *text, size_t n,
                     char *errbuf)
{
    char *p = dp_path_join(dir, name);
    if (!p)
        return dp_err(errbuf, "%s: out of memory", dir);
    int rc = dp_write_file_atomic(p, text, n, errbuf);
    free(p);
    return rc;
}

/* ---- merge ------------------------------------------------------------------- */

/* Makes at least `need` (<= RBUF_SIZE) unread bytes available in rbuf[pos,
 * end). 0 on success, 1 at a premature end of file, -1 on a read error. */
static int rbuf_need(int fd, uint8_t *rbuf, size_t *pos, size_t *end, size_t need)
{
    if (*end - *pos >= need)
        return 0;
    memmove(rbuf, rbuf + *pos, *end - *pos);
    *end -= *pos;
    *pos = 0;
    while (*end < need) {
        ssize_t got = read(fd, rbuf + *end, RBUF_SIZE - *end);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (got == 0)
            return 1;
        *end += (size_t)got;
    }
    return 0;
}

/* The merge appends each capture's parts, in file order, to the four .npy
 * writers. It runs in the main thread while the workers read later
 * captures, so the disk writes the dataset while captures are still being
 * read. Parts are deleted only once the dataset is committed, so a run
 * killed at any point can reuse every finished part. */
typedef struct merger {
    dp_npy_writer w[4];
    int opened;
    uint8_t *vbuf, *rbuf, *mbuf;
    int16_t *lbuf[DP_NTASKS];
    uint32_t next_index;    /* files.tsv index of the next capture */
    size_t done;
    uint64_t rows, rows_kicked;
} merger;

static void merger_free(merger *m)
{
    for (int k = 0; k < m->opened; k++)
        dp_npy_writer_abort(&m->w[k]);
    m->opened = 0;
    free(m->vbuf);
    free(m->rbuf);
    free(m->mbuf);
    free(m->lbuf[0]);
    free(m->lbuf[1]);
    m->vbuf = m->rbuf = m->mbuf = NULL;
    m->lbuf[0] = m->lbuf[1] = NULL;
}

static int merger_open(const run *r, merger *m, char *errbuf)
{
    static const char *const descr[4] = {DP_NPY_U1, DP_NPY_I2, DP_NPY_I2, DP_META_DESCR};
    static const size_t item[4] = {1, 2, 2, sizeof(dp_meta)};
    static const size_t cols[4] = {DP_VEC_LEN, 0, 0, 0};
    memset(m, 0, sizeof *m);
    m->vbuf = malloc((size_t)VEC_BATCH * DP_VEC_LEN);
    m->rbuf = malloc(RBUF_SIZE);
    m->mbuf = malloc((size_t)META_BATCH * sizeof(dp_meta));
    m->lbuf[0] = malloc(META_BATCH * 2);
    m->lbuf[1] = malloc(META_BATCH * 2);
    if (!m->vbuf || !m->rbuf || !m->mbuf || !m->lbuf[0] || !m->lbuf[1]) {
        merger_free(m);
        return dp_err(errbuf, "%s: out of memory", r->dst);
    }
    for (; m->opened < 4; m->opened++) {
        char *p = dp_path_join(r->dst, out_names[m->opened]);
        int orc = p ? dp_npy_writer_open(&m->w[m->opened], p, descr[m->opened],
                                         item[m->opened], cols[m->opened], errbuf)
                    : dp_err(errbuf, "%s: out of memory", r->dst);
        free(p);
        if (orc != 0) {
            merger_free(m);
            return -1;
        }
    }
    return 0;
}

/* Appends one finished capture (the next one in file order). */
static int merger_add(const run *r, merger *m, const capfile *cf, char *errbuf)
{
    uint32_t file_index = m->next_index++;
    char *vp = part_path(r, cf, "vec"), *mp = part_path(r, cf, "meta");
    int vfd = -1, mfd = -1, rc = -1;
    if (!vp || !mp) {
        dp_err(errbuf, "%s: out of memory", r->parts);
        goto out;
    }
    if (cf->kept) {
        vfd = open(vp, O_RDONLY | O_CLOEXEC);
        mfd = open(mp, O_RDONLY | O_CLOEXEC);
        if (vfd < 0 || mfd < 0) {
            dp_errno(errbuf, "%s: cannot open part of %s", vfd < 0 ? vp : mp, cf->path);
            goto out;
        }
        posix_fadvise(vfd, 0, 0, POSIX_FADV_SEQUENTIAL);
        size_t pos = 0, end = 0, rows = 0;
        for (uint64_t k = 0; k < cf->kept; k++) {
            /* one record: 2-byte length, then that many bytes */
            int e = rbuf_need(vfd, m->rbuf, &pos, &end, 2);
            size_t len = e ? 0 : (m->rbuf[pos] | (size_t)m->rbuf[pos + 1] << 8);
            if (!e && len > DP_VEC_LEN)
                e = 2;
            if (!e)
                e = rbuf_need(vfd, m->rbuf, &pos, &end, 2 + len);
            if (e) {
                if (e < 0)
                    dp_errno(errbuf, "%s: cannot read part of %s", vp, cf->path);
                else
                    dp_err(errbuf, "%s: part of %s is %s", vp, cf->path,
                           e == 1 ? "short" : "corrupt");
                goto out;
            }
            uint8_t *row = m->vbuf + rows * DP_VEC_LEN;
            memcpy(row, m->rbuf + pos + 2, len);
            memset(row + len, 0, DP_VEC_LEN - len);
            pos += 2 + len;
            if (++rows == VEC_BATCH || k + 1 == cf->kept) {
                if (dp_npy_write(&m->w[0], m->vbuf, rows, errbuf) != 0)
                    goto out;
                rows = 0;
            }
        }
        for (uint64_t left = cf->kept; left;) {
            size_t n = left < META_BATCH ? (size_t)left : META_BATCH;
            if (read_full(mfd, m->mbuf, n * sizeof(dp_meta)) != (ssize_t)(n * sizeof(dp_meta))) {
                dp_err(errbuf, "%s: part of %s is short or unreadable", mp, cf->path);
                goto out;
            }
            for (size_t k = 0; k < n; k++) /* dp_meta.file is its first field */
                memcpy(m->mbuf + k * sizeof(dp_meta), &file_index, sizeof file_index);
            for (int t = 0; t < DP_NTASKS; t++) {
                for (size_t k = 0; k < n; k++)
                    m->lbuf[t][k] = (int16_t)cf->cls[t];
                if (dp_npy_write(&m->w[1 + t], m->lbuf[t], n, errbuf) != 0)
                    goto out;
            }
            if (dp_npy_write(&m->w[3], m->mbuf, n, errbuf) != 0)
                goto out;
            left -= n;
        }
    }
    m->done++;
    m->rows += cf->kept;
    /* start writing the vectors to disk now rather than all at the final
     * fsync: the disk works while the rest is read and merged */
    if ((m->rows - m->rows_kicked) * DP_VEC_LEN >= ((uint64_t)32 << 20)) {
        sync_file_range(fileno(m->w[0].af.f), 0, 0, SYNC_FILE_RANGE_WRITE);
        m->rows_kicked = m->rows;
    }
    rc = 0;
out:
    if (vfd >= 0)
        close(vfd);
    if (mfd >= 0)
        close(mfd);
    free(vp);
    free(mp);
    return rc;
}

static int merger_commit(merger *m, char *errbuf)
{
    for (int k = 0; k < 4; k++) {
        if (dp_npy_writer_commit(&m->w[k], errbuf) != 0) {
            for (int j = k + 1; j < 4; j++)
                dp_npy_writer_abort(&m->w[j]);
            m->opened = 0;
            merger_free(m);
            return -1;
        }
    }
    m->opened = 0;
    merger_free(m);
    return 0;
}

/* Deletes every capture's parts and the parts folder. */
static void remove_parts(const run *r)
{
    for (size_t i = 0; i < r->nfiles; i++) {
        if (!r->files[i].is_capture)
            continue;
        char *vp = part_path(r, &r->files[i], "vec"), *mp = part_path(r, &r->files[i], "meta");
        if (vp)
            unlink(vp);
        if (mp)
            unlink(mp);
        free(vp);
        free(mp);
    }
    rmdir(r->parts);
}

/* Removes temp files of earlier runs in the target and parts that belong
 * to no current capture. */
static void clean_stale(run *r)
{
    DIR *d = opendir(r->dst);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            for (size_t i = 0; i < N_OUT; i++) {
                size_t n = strlen(out_names[i]);
                if (!strncmp(e->d_name, out_names[i], n) && !strncmp(e->d_name + n, ".tmp.", 5)) {
                    char *p = dp_path_join(r->dst, e->d_name);
                    if (p)
                        unlink(p);
                    free(p);
                }
            }
        closedir(d);
    }
    d = opendir(r->parts);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int keep = 0;
        unsigned long long key;
        char ext[16];
        if (!strstr(e->d_name, ".tmp") && sscanf(e->d_name, "%16llx.%15s", &key, ext) == 2 &&
            (!strcmp(ext, "vec") || !strcmp(ext, "meta")))
            for (size_t i = 0; i < r->nfiles && !keep; i++)
                keep = r->files[i].is_capture && r->files[i].relhash == key;
        if (!keep) {
            char *p = dp_path_join(r->parts, e->d_name);
            if (p)
                unlink(p);
            free(p);
        }
    }
    closedir(d);
}

void dp_preprocess_opts_init(dp_preprocess_opts *o)
{
    memset(o, 0, sizeof *o);
    o->progress = 1;
}

int dp_preprocess_run(const dp_preprocess_opts *o, dp_preprocess_stats *stats, char *errbuf)
{
    dp_preprocess_stats local;
    dp_preprocess_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    double t0 = dp_now();
    if (!o->src_dir || !*o->src_dir || !o->dst_dir || !*o->dst_dir)
        return dp_err(errbuf, "preprocess: source and target folders are required");

    run R;
    memset(&R, 0, sizeof R);
    run *r = &R;
    r->o = o;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    pthread_mutex_init(&r->warn_mu, NULL);
    dp_labels table;
    memset(&table, 0, sizeof table);
    char *label_text = NULL;
    int dirfd = -1, rc = -1;
    pthread_t *th = NULL;
    size_t nth = 0;
    char *ap = NULL;
    size_t alen = 0;
    FILE *mem = NULL;
    merger M;
    int merging = 0;
    memset(&M, 0, sizeof M);

    r->src = strdup(o->src_dir);
    r->dst = strdup(o->dst_dir);
    r->parts = dp_path_join(o->dst_dir, ".parts");
    if (!r->src || !r->dst || !r->parts) {
        dp_err(errbuf, "out of memory");
        goto out;
    }
    /* strip trailing slashes (keep "/") so that joined paths read well */
    for (char *s = r->src; strlen(s) > 1 && s[strlen(s) - 1] == '/';)
        s[strlen(s) - 1] = 0;

    struct stat sst;
    if (stat(r->src, &sst) != 0) {
        dp_errno(errbuf, "%s: cannot open capture folder", r->src);
        goto out;
    }
    if (!S_ISDIR(sst.st_mode)) {
        dp_err(errbuf, "%s: not a folder (give the folder that holds the captures)", r->src);
        goto out;
    }

    /* label table: its text is also written as labels.tsv */
    if (o->labels_path) {
        label_text = dp_read_file(o->labels_path, NULL, errbuf);
        if (!label_text || dp_labels_parse(&table, label_text, o->labels_path, errbuf) != 0)
            goto out;
    } else {
        label_text = strdup(dp_iscx_labels_tsv);
        if (!label_text || dp_labels_load_iscx(&table, errbuf) != 0)
            goto out;
    }

    if (dp_mkdirs(r->dst, errbuf) != 0)
        goto out;
    dirfd = open(r->dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        dp_errno(errbuf, "%s: cannot open dataset folder", r->dst);
        goto out;
    }
    if (flock(dirfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            dp_err(errbuf, "%s: another preprocess run is writing this dataset folder", r->dst);
        else
            dp_errno(errbuf, "%s: cannot lock dataset folder", r->dst);
        goto out;
    }

    /* list the source */
    lister L;
    memset(&L, 0, sizeof L);
    struct stat dst_st;
    if (fstat(dirfd, &dst_st) == 0) {
        L.skip = (devino){dst_st.st_dev, dst_st.st_ino};
        L.has_skip = 1;
    }
    L.stack[L.depth++] = (devino){sst.st_dev, sst.st_ino};
    if (list_dir(r, &L, NULL, errbuf) != 0) {
        r->files = L.files;
        r->nfiles = L.n;
        goto out;
    }
    r->files = L.files;
    r->nfiles = L.n;
    if (r->nfiles > 1)
        qsort(r->files, r->nfiles, sizeof *r->files, cmp_rel);
    st->files = r->nfiles;

    /* complete and unchanged? */
    uint64_t fp = fingerprint(r, label_text);
    if (r->nfiles && dp_preprocess_complete(r->dst)) {
        char *sp = dp_path_join(r->dst, "summary.json");
        char *json = sp ? dp_read_file(sp, NULL, NULL) : NULL;
        char have[64], want[32], num[32];
        snprintf(want, sizeof want, "%016llx", (unsigned long long)fp);
        if (json && json_lookup(json, "fingerprint", have, sizeof have) == 0 &&
            !strcmp(have, want)) {
            st->up_to_date = 1;
            if (json_lookup(json, "packets", num, sizeof num) == 0)
                st->packets = strtoull(num, NULL, 10);
            if (json_lookup(json, "frames", num, sizeof num) == 0)
                st->frames = strtoull(num, NULL, 10);
            if (json_lookup(json, "captures", num, sizeof num) == 0)
                st->captures = strtoull(num, NULL, 10);
        }
        free(json);
        free(sp);
        if (st->up_to_date) {
            rc = 0;
            goto out;
        }
    }

    /* probe: captures by content */
    char peb[DP_ERRBUF_SIZE];
    size_t notes = 0, labelled = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        capfile *cf = &r->files[i];
        dp_probe p = dp_capture_probe(cf->path, peb);
        cf->probe = p;
        if (p == DP_PROBE_PCAP || p == DP_PROBE_PCAPNG) {
            cf->is_capture = 1;
            r->ncaptures++;
            st->capture_bytes += cf->size;
            labelled += dp_labels_lookup(&table, cf->rel, cf->cls);
        } else if (p == DP_PROBE_NOT_CAPTURE) {
            if (++notes <= MAX_NOTES)
                warn(r, cf->path, 1, "%s; skipped", strip_path(peb, cf->path));
        } else {
            warn(r, cf->path, 0, "%s; skipped", strip_path(peb, cf->path));
        }
    }
    if (notes > MAX_NOTES)
        warn(r, r->src, 1, "%zu more files that are not captures skipped (listed in summary.md)",
             notes - MAX_NOTES);
    st->captures = r->ncaptures;
    st->not_captures = r->nfiles - r->ncaptures;
    if (r->ncaptures == 0) {
        dp_err(errbuf, "%s: no capture files (pcap or pcapng) found%s", r->src,
               r->nfiles ? "" : " (the folder is empty)");
        goto out;
    }

    if (labelled == 0)
        warn(r, r->src, 0, "no capture's file name is in the label table (%s): every packet "
             "will be unlabelled; is --labels right?",
             o->labels_path ? o->labels_path : "built-in ISCX table");

    /* from here on the dataset is being rewritten: drop the completion mark */
    char *sj = dp_path_join(r->dst, "summary.json");
    if (!sj || (unlink(sj) != 0 && errno != ENOENT)) {
        dp_errno(errbuf, "%s: cannot remove", sj ? sj : r->dst);
        free(sj);
        goto out;
    }
    free(sj);
    if (mkdir(r->parts, 0777) != 0 && errno != EEXIST) {
        dp_errno(errbuf, "%s: cannot create directory", r->parts);
        goto out;
    }
    clean_stale(r);

    /* reuse finished parts; queue the rest in file order (the merge follows) */
    r->queue = malloc((r->ncaptures ? r->ncaptures : 1) * sizeof *r->queue);
    if (!r->queue) {
        dp_err(errbuf, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r->nfiles; i++) {
        capfile *cf = &r->files[i];
        if (!cf->is_capture)
            continue;
        if (load_part(r, cf)) {
            cf->reused = 1;
            cf->ready = 1;
            st->reused++;
            if (cf->status[0])
                warn(r, cf->path, 0, "%s (recorded by an earlier run)", cf->status);
        } else {
            r->queue[r->nqueue++] = i;
        }
    }

    /* read captures in parallel; merge them in file order as they are ready */
    int threads = o->threads > 0 ? o->threads : dp_ncpu();
    if ((size_t)threads > r->nqueue)
        threads = r->nqueue ? (int)r->nqueue : 1;
    st->threads = threads;
    r->progress_on = o->progress;
    dp_progress_init(&r->prog);
    double tp = dp_now();
    r->t_read_done = tp;
    if (merger_open(r, &M, errbuf) != 0)
        goto out;
    merging = 1;
    if (r->nqueue) {
        th = calloc((size_t)threads, sizeof *th);
        if (!th) {
            dp_err(errbuf, "out of memory");
            goto out;
        }
        for (; nth < (size_t)threads; nth++)
            if (pthread_create(&th[nth], NULL, worker, r) != 0)
                break;
        if (nth == 0) {
            dp_err(errbuf, "cannot start worker threads");
            goto out;
        }
    }
    int all_merged = 1;
    for (size_t i = 0; i < r->nfiles; i++) {
        capfile *cf = &r->files[i];
        if (!cf->is_capture)
            continue;
        pthread_mutex_lock(&r->mu);
        while (!cf->ready && !r->failed && !(r->stop && r->finished == r->next)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 250 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
            if (r->progress_on && dp_progress_due(&r->prog)) {
                double el = dp_now() - tp;
                uint64_t pk = atomic_load(&r->live_packets);
                pthread_mutex_lock(&r->warn_mu);
                dp_progress_print(&r->prog,
                                  "preprocess: %zu/%zu captures read, %zu merged, %llu packets, "
                                  "%.0f packets/s",
                                  r->finished + st->reused, r->ncaptures, M.done,
                                  (unsigned long long)pk, el > 0 ? pk / el : 0.0);
                pthread_mutex_unlock(&r->warn_mu);
            }
        }
        int ready = cf->ready, failed = r->failed;
        pthread_mutex_unlock(&r->mu);
        if (failed || !ready) {
            all_merged = 0;
            break;
        }
        if (merger_add(r, &M, cf, errbuf) != 0)
            goto out; /* `out` stops and joins the workers */
    }
    for (size_t i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    nth = 0;
    if (r->failed) {
        if (errbuf)
            memcpy(errbuf, r->err, DP_ERRBUF_SIZE);
        goto out;
    }
    st->processed = r->stop ? r->taken : r->nqueue;
    st->seconds_parts = (r->nqueue ? r->t_read_done : dp_now()) - tp;
    if (!all_merged) { /* stopped by stop_after: leave the parts for the next run */
        st->interrupted = 1;
        rc = 0;
        goto out;
    }

    /* totals */
    for (size_t i = 0; i < r->nfiles; i++) {
        capfile *cf = &r->files[i];
        if (!cf->is_capture)
            continue;
        st->frames += cf->frames;
        st->packets += cf->kept;
        for (int v = 0; v < DP_VERDICT_COUNT; v++)
            st->skipped[v] += cf->skipped[v];
        if (cf->status[0])
            st->with_warnings++;
        for (int k = 0; k < DP_NTASKS; k++) {
            if (cf->cls[k] >= 0 && cf->cls[k] < DP_MAX_CLASSES)
                st->per_class[k][cf->cls[k]] += cf->kept;
            else
                st->unlabelled[k] += cf->kept;
        }
    }

    /* commit the arrays, drop the parts, then the text outputs, summary.json last */
    double tm = tp + st->seconds_parts;
    merging = 0;
    if (merger_commit(&M, errbuf) != 0)
        goto out;
    remove_parts(r);
    mem = open_memstream(&ap, &alen);
    if (!mem) {
        dp_errno(errbuf, "out of memory");
        goto out;
    }
    fprintf(mem, "index\tpath\tapp\ttraffic\tframes\tkept\tstatus\n");
    size_t idx = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        capfile *cf = &r->files[i];
        if (!cf->is_capture)
            continue;
        fprintf(mem, "%zu\t", idx++);
        tsv_field(mem, cf->rel);
        fprintf(mem, "\t%d\t%d\t%llu\t%llu\t", cf->cls[0], cf->cls[1],
                (unsigned long long)cf->frames, (unsigned long long)cf->kept);
        tsv_field(mem, cf->status[0] ? cf->status : "ok");
        fputc('\n', mem);
    }
    fclose(mem);
    mem = NULL;
    if (save_text(r->dst, "files.tsv", ap, alen, errbuf) != 0)
        goto out;
    free(ap);
    ap = NULL;
    if (save_text(r->dst, "labels.tsv", label_text, strlen(label_text), errbuf) != 0)
        goto out;

    mem = open_memstream(&ap, &alen);
    if (!mem) {
        dp_errno(errbuf, "out of memory");
        goto out;
    }
    write_md(mem, r, &table, st, 1);
    fclose(mem);
    mem = NULL;
    if (save_text(r->dst, "summary.md", ap, alen, errbuf) != 0)
        goto out;
    free(ap);
    ap = NULL;

    mem = open_memstream(&ap, &alen);
    if (!mem) {
        dp_errno(errbuf, "out of memory");
        goto out;
    }
    write_json(mem, r, &table, st, fp);
    fclose(mem);
    mem = NULL;
    if (save_text(r->dst, "summary.json", ap, alen, errbuf) != 0)
        goto out;
    free(ap);
    ap = NULL;
    st->seconds_merge = dp_now() - tm;
    if (r->progress_on)
        dp_progress_done(&r->prog);
    if (o->report)
        write_md(o->report, r, &table, st, 0);
    rc = 0;
out:
    if (r->progress_on)
        dp_progress_done(&r->prog);
    if (nth) { /* a failure while workers run: stop them */
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_mutex_unlock(&r->mu);
        for (size_t i = 0; i < nth; i++)
            pthread_join(th[i], NULL);
    }
    if (merging)
        merger_free(&M);
    if (mem)
        fclose(mem);
    free(ap);
    free(th);
    if (dirfd >= 0)
        close(dirfd); /* releases the lock */
    for (size_t i = 0; i < r->nfiles; i++) {
        free(r->files[i].rel);
        free(r->files[i].path);
    }
    free(r->files);
    free(r->queue);
    free(r->src);
    free(r->dst);
    free(r->parts);
    free(label_text);
    dp_labels_free(&table);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->warn_mu);
    st->seconds = dp_now() - t0;
    return rc;
}
