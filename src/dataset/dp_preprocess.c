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

#define PART_VERSION 3
#define PART_MAGIC "DPPARTOK"
#define DATASET_FORMAT "deeppacket-dataset-1"
#define JOURNAL_FORMAT "deeppacket-journal-2" /* 2: a checksum of each capture's rows */
#define REC_HEAD (sizeof(dp_meta) + 2) /* record: meta row, 2-byte length */
#define REC_MAX (REC_HEAD + DP_VEC_LEN)
#define CHUNK_SIZE (512 * 1024)  /* records handed to the merge at once */
#define WORKER_CHUNKS 4          /* chunks a worker may have at once (2 MB) */
#define VEC_BUF (4 << 20)        /* vectors.npy write buffer (direct I/O) */
#define SMALL_BUF (512 * 1024)   /* meta.npy write buffer (labels: an eighth) */
#define RBUF_SIZE (1 << 20)      /* part read buffer (>= REC_MAX) */
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

typedef struct chunk chunk;
typedef struct wstate wstate;

/* A buffer of records handed from a worker to the merge (see below). */
struct chunk {
    chunk *next;
    wstate *owner;          /* the worker it goes back to */
    size_t n;               /* bytes of records in data */
    uint8_t data[];         /* CHUNK_SIZE bytes */
};

/* A worker's state: its chunks and the part file of a spilled capture. */
struct wstate {
    chunk *free;            /* its free chunks (under run.mu) */
    size_t nalloc;          /* its chunks in existence */
    chunk *cur;             /* the chunk it fills */
    int fd;                 /* part temp file while spilled, else -1 */
    uint64_t part_bytes;    /* record bytes written to it */
    wstate *next_ws;        /* list of finished workers (freed by the run) */
};

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
    int ready;              /* read (and its part complete if spilled); under run.mu */
    int reused;
    int spilled;            /* its records went to a part file (under run.mu) */
    int from_part;          /* reused the part file of an earlier run */
    int journaled;          /* already in the partial arrays (earlier run) */
    int unreadable;         /* could not be opened or read (permissions...): a
                             * rerun reads it again */
    chunk *qh, *qt;         /* its chunks waiting for the merge (under run.mu) */
    uint64_t part_bytes;    /* record bytes in its part file */
    uint64_t rows_end;      /* rows of the arrays once it is merged */
    uint64_t rows_hash;     /* row_hash of its rows in the four arrays */
    uint64_t frames, kept;
    uint64_t skipped[DP_VERDICT_COUNT];
    char status[MAX_STATUS]; /* "" when all went well */
} capfile;

typedef struct run {
    const dp_preprocess_opts *o;
    char *src, *dst, *parts;
    int replacing;          /* the previous dataset's files are being replaced */
    capfile *files;
    size_t nfiles, ncaptures;
    size_t *queue;          /* indices into files, in file order */
    size_t nqueue;
    size_t *caps;           /* indices into files of the captures, in order */
    capfile *head;          /* the capture the merge reads now (under mu) */
    wstate *workers;        /* finished workers' states (under mu) */
    size_t chunk_size;      /* CHUNK_SIZE, or opts.chunk_bytes (tests) */
    size_t worker_chunks;   /* WORKER_CHUNKS, or 2 with opts.chunk_bytes */

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

/* A set of (device, inode) pairs: open addressing, grown at half full. */
typedef struct devino_set {
    devino *v;
    uint8_t *used;
    size_t cap, n;
} devino_set;

static size_t devino_slot(const devino_set *s, devino k)
{
    size_t i = (size_t)dp_mix64((uint64_t)k.dev * 0x9e3779b97f4a7c15ULL ^ (uint64_t)k.ino) & (s->cap - 1);
    while (s->used[i] && (s->v[i].dev != k.dev || s->v[i].ino != k.ino))
        i = (i + 1) & (s->cap - 1);
    return i;
}

/* Adds k: 1 when it is new, 0 when it was there already, -1 out of memory. */
static int devino_add(devino_set *s, devino k)
{
    if (2 * (s->n + 1) > s->cap) {
        devino_set g = {NULL, NULL, s->cap ? 2 * s->cap : 64, 0};
        g.v = malloc(g.cap * sizeof *g.v);
        g.used = calloc(g.cap, 1);
        if (!g.v || !g.used) {
            free(g.v);
            free(g.used);
            return -1;
        }
        for (size_t i = 0; i < s->cap; i++)
            if (s->used[i]) {
                size_t j = devino_slot(&g, s->v[i]);
                g.v[j] = s->v[i], g.used[j] = 1, g.n++;
            }
        free(s->v);
        free(s->used);
        *s = g;
    }
    size_t i = devino_slot(s, k);
    if (s->used[i])
        return 0;
    s->v[i] = k, s->used[i] = 1, s->n++;
    return 1;
}

#define MAX_FOLDER_DEPTH 64

/* The source walk. Files and folders are known by (device, inode): a folder
 * reached again through a link (a loop, or a "diamond" of links to one
 * folder) is not listed again, and a file reached through two names (a
 * symlink or a hard link) is read once, under the name that comes first
 * in the walk (entries in byte order: the same name on every run). */
typedef struct lister {
    capfile *files;
    size_t n, cap;
    devino skip;            /* the target folder (not read as input) */
    int has_skip;
    devino_set dirs, seen;  /* folders listed, files taken */
    int depth;
} lister;

static void lister_free_sets(lister *l)
{
    free(l->dirs.v);
    free(l->dirs.used);
    free(l->seen.v);
    free(l->seen.used);
    memset(&l->dirs, 0, sizeof l->dirs);
    memset(&l->seen, 0, sizeof l->seen);
}

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

/* One entry of the walk: a folder is listed (once), a regular file taken
 * (once); everything else is ignored. Returns -1 only when out of memory. */
static int list_entry(run *r, lister *l, const char *full, const char *crel, char *errbuf);
static int list_dir(run *r, lister *l, const char *rel, char *errbuf);

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in folder dir (hidden ones left out), sorted; NULL and *n = 0
 * for an empty folder; -1 in *n when out of memory. */
static char **read_names(DIR *d, size_t *n)
{
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') /* ., .., hidden files and folders */
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv)
                goto oom;
            v = nv;
        }
        if (!(v[*n] = strdup(e->d_name)))
            goto oom;
        (*n)++;
    }
    if (*n > 1)
        qsort(v, *n, sizeof *v, cmp_name);
    return v;
oom:
    for (size_t i = 0; i < *n; i++)
        free(v[i]);
    free(v);
    *n = (size_t)-1;
    return NULL;
}

static int list_entry(run *r, lister *l, const char *full, const char *crel, char *errbuf)
{
    struct stat st;
    if (stat(full, &st) != 0) {
        warn(r, full, 1, "cannot stat (%s), skipped", strerror(errno));
        return 0;
    }
    devino k = {st.st_dev, st.st_ino};
    int isnew;
    if (S_ISDIR(st.st_mode)) {
        if (l->has_skip && k.dev == l->skip.dev && k.ino == l->skip.ino)
            return 0; /* the dataset folder itself */
        if (l->depth >= MAX_FOLDER_DEPTH) {
            warn(r, full, 1, "folder more than %d levels deep, not read", MAX_FOLDER_DEPTH);
            return 0;
        }
        if ((isnew = devino_add(&l->dirs, k)) < 0)
            return dp_err(errbuf, "%s: out of memory", full);
        if (!isnew) {
            warn(r, full, 1, "same folder as one already listed (a link or a loop), not read again");
            return 0;
        }
        l->depth++;
        int rc = list_dir(r, l, crel, errbuf);
        l->depth--;
        return rc;
    }
    if (!S_ISREG(st.st_mode))
        return 0;
    if ((isnew = devino_add(&l->seen, k)) < 0)
        return dp_err(errbuf, "%s: out of memory", full);
    if (!isnew) {
        warn(r, full, 1, "same file as one already listed (a link), read once");
        return 0;
    }
    if (add_file(l, r->src, crel, &st) != 0)
        return dp_err(errbuf, "%s: out of memory", full);
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
    size_t n;
    char **names = read_names(d, &n);
    closedir(d);
    int rc = n == (size_t)-1 ? dp_err(errbuf, "%s: out of memory", dir) : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *crel = rel ? dp_path_join(rel, names[i]) : strdup(names[i]);
        char *full = dp_path_join(dir, names[i]);
        rc = crel && full ? list_entry(r, l, full, crel, errbuf) : dp_err(errbuf, "%s: out of memory", dir);
        free(crel);
        free(full);
    }
    for (size_t i = 0; n != (size_t)-1 && i < n; i++)
        free(names[i]);
    free(names);
    free(dir);
    return rc;
}

static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const capfile *)a)->rel, ((const capfile *)b)->rel);
}

/* ---- records, chunks and part files ------------------------------------------ */

/* A worker turns a capture into records, one per kept packet: the dp_meta
 * row (file 0: set by the merge), a 2-byte length, then the vector without
 * its trailing zeros. Records go into chunks (CHUNK_SIZE bytes) that are
 * handed to the merge in memory, or, when a capture is "spilled", into the
 * capture's part file (.parts/<key>.part: the records, then a trailer). */

static char *part_path(const run *r, const capfile *cf, const char *ext)
{
    char name[64];
    snprintf(name, sizeof name, "%016llx.%s", (unsigned long long)cf->relhash, ext);
    return dp_path_join(r->parts, name);
}

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

/* The trailer closing a part: text "key=value" lines, then the text's
 * length (u64 little-endian) and PART_MAGIC. */
static int format_trailer(const capfile *cf, uint64_t rec_bytes, char *t, size_t cap)
{
    int n = snprintf(t, cap,
                     "version=%d\nrelhash=%016llx\nsize=%llu\nmtime=%lld\nframes=%llu\nkept=%llu\n"
                     "rec_bytes=%llu\nskipped=%llu,%llu,%llu,%llu,%llu,%llu\nstatus=%s\n",
                     PART_VERSION, (unsigned long long)cf->relhash,
                     (unsigned long long)cf->size, (long long)cf->mtime_ns,
                     (unsigned long long)cf->frames, (unsigned long long)cf->kept,
                     (unsigned long long)rec_bytes, (unsigned long long)cf->skipped[0], (unsigned long long)cf->skipped[1],
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

/* Returns 1 when cf's part exists, is whole and was made from the source
 * as it is now; fills cf's counts, status and part_bytes from the trailer. */
static int load_part(const run *r, capfile *cf)
{
    char *pp = part_path(r, cf, "part");
    int ok = 0, fd = -1;
    struct stat ps;
    if (!pp || stat(pp, &ps) != 0 || ps.st_size < 16)
        goto out;
    fd = open(pp, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto out;
    uint8_t foot[16];
    if (pread(fd, foot, 16, ps.st_size - 16) != 16 || memcmp(foot + 8, PART_MAGIC, 8) != 0)
        goto out;
    uint64_t tlen = 0;
    for (int i = 0; i < 8; i++)
        tlen |= (uint64_t)foot[i] << (8 * i);
    if (tlen == 0 || tlen > 4096 || tlen + 16 > (uint64_t)ps.st_size)
        goto out;
    char t[4097];
    if (pread(fd, t, tlen, ps.st_size - 16 - (off_t)tlen) != (ssize_t)tlen)
        goto out;
    t[tlen] = 0;
    int version = -1;
    unsigned long long relhash = 0, size = 0, frames = 0, kept = 0, rbytes = 0, sk[6] = {0};
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
        else if (sscanf(line, "rec_bytes=%llu", &rbytes) == 1)
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
        mtime != cf->mtime_ns)
        goto out;
    if ((uint64_t)ps.st_size != rbytes + tlen + 16 || rbytes < kept * (REC_HEAD) ||
        rbytes > kept * REC_MAX)
        goto out;
    cf->frames = frames;
    cf->kept = kept;
    cf->part_bytes = rbytes;
    for (int i = 0; i < DP_VERDICT_COUNT; i++)
        cf->skipped[i] = sk[i];
    memcpy(cf->status, status, sizeof status);
    ok = 1;
out:
    if (fd >= 0)
        close(fd);
    free(pp);
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

/* Under r->mu: one of the worker's own chunks, free or newly made (at most
 * r->worker_chunks); NULL when all are in use (or out of memory: *oom set). */
static chunk *own_chunk(const run *r, wstate *ws, int *oom)
{
    chunk *c = ws->free;
    if (c) {
        ws->free = c->next;
    } else if (ws->nalloc < r->worker_chunks) {
        c = malloc(sizeof *c + r->chunk_size);
        if (!c) {
            *oom = 1;
            return NULL;
        }
        ws->nalloc++;
        c->owner = ws;
    } else {
        return NULL;
    }
    c->next = NULL;
    c->n = 0;
    return c;
}

/* Under r->mu: gives a chunk back to its worker. */
static void chunk_release(chunk *c)
{
    wstate *ws = c->owner;
    c->next = ws->free;
    ws->free = c;
}

/* Under r->mu: appends a chunk to a capture's queue for the merge. */
static void chunk_push(capfile *cf, chunk *c)
{
    c->next = NULL;
    if (cf->qt)
        cf->qt->next = c;
    else
        cf->qh = c;
    cf->qt = c;
}

/* Starts the part of a capture that does not fit in memory: its chunks
 * taken back from the merge's queue (q), then the current one, go to the
 * part's temp file. */
static int spill(run *r, capfile *cf, wstate *ws, chunk *q, char *errbuf)
{
    char *tmp = part_path(r, cf, "part.tmp");
    ws->fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666) : -1;
    int rc = 0;
    if (ws->fd < 0)
        rc = tmp ? dp_errno(errbuf, "%s: cannot create", tmp) : dp_err(errbuf, "out of memory");
    ws->part_bytes = 0;
    for (chunk *c = q; c && rc == 0; c = c->next) {
        if (write_full(ws->fd, c->data, c->n) != 0)
            rc = dp_errno(errbuf, "%s: write failed", tmp);
        ws->part_bytes += c->n;
    }
    pthread_mutex_lock(&r->mu);
    while (q) {
        chunk *n = q->next;
        chunk_release(q);
        q = n;
    }
    pthread_mutex_unlock(&r->mu);
    free(tmp);
    return rc;
}

/* The current chunk has no room for another record: hand it to the merge
 * and take another, or (a capture bigger than the worker's chunks, not the
 * merge's next one, that has used up the chunks) spill the capture to its
 * part file. */
static int chunk_full(run *r, capfile *cf, wstate *ws, char *errbuf)
{
    if (ws->fd < 0) {
        int oom = 0;
        chunk *q = NULL;
        pthread_mutex_lock(&r->mu);
        for (;;) {
            chunk *c = own_chunk(r, ws, &oom);
            if (c) {
                chunk_push(cf, ws->cur);
                ws->cur = c;
                pthread_cond_broadcast(&r->cv);
                pthread_mutex_unlock(&r->mu);
                return 0;
            }
            if (oom || r->failed) {
                pthread_mutex_unlock(&r->mu);
                return dp_err(errbuf, oom ? "out of memory" : "stopped");
            }
            /* (decided under the lock the merge takes too) */
            if (r->head != cf && cf->size > r->chunk_size * r->worker_chunks) {
                q = cf->qh;
                cf->qh = cf->qt = NULL;
                cf->spilled = 1;
                break;
            }
            /* the merge frees chunks: of this capture if it is the one the
             * merge reads, else of the earlier ones. A capture whose output
             * fits in the worker's chunks waits for them rather than spill:
             * writing and reading back a part costs more CPU than waiting
             * for a merge that is held up by the disk. */
            pthread_cond_wait(&r->cv, &r->mu);
        }
        pthread_mutex_unlock(&r->mu);
        if (spill(r, cf, ws, q, errbuf) != 0)
            return -1;
    }
    if (write_full(ws->fd, ws->cur->data, ws->cur->n) != 0) {
        char *tmp = part_path(r, cf, "part.tmp");
        dp_errno(errbuf, "%s: write failed", tmp ? tmp : r->parts);
        free(tmp);
        return -1;
    }
    ws->part_bytes += ws->cur->n;
    ws->cur->n = 0;
    return 0;
}

/* Closes a spilled capture's part: last records, trailer, rename. No
 * fsync: a part is checked (size, trailer) before reuse, and one lost in a
 * crash is simply redone. */
static int finish_part(run *r, capfile *cf, wstate *ws, char *errbuf)
{
    char *tmp = part_path(r, cf, "part.tmp"), *path = part_path(r, cf, "part");
    char trailer[MAX_STATUS + 512];
    int rc = 0;
    if (!tmp || !path) {
        rc = dp_err(errbuf, "%s: out of memory", r->parts);
        goto out;
    }
    uint64_t total = ws->part_bytes + ws->cur->n;
    int tl = format_trailer(cf, total, trailer, sizeof trailer);
    if (tl < 0) {
        rc = dp_err(errbuf, "%s: cannot format part trailer", tmp);
        goto out;
    }
    if (write_full(ws->fd, ws->cur->data, ws->cur->n) != 0 ||
        write_full(ws->fd, trailer, (size_t)tl) != 0) {
        rc = dp_errno(errbuf, "%s: write failed", tmp);
        goto out;
    }
    int fd = ws->fd;
    ws->fd = -1;
    if (close(fd) != 0) {
        rc = dp_errno(errbuf, "%s: write failed", tmp);
        goto out;
    }
    if (rename(tmp, path) != 0)
        rc = dp_errno(errbuf, "%s: rename failed", path);
    cf->part_bytes = total;
out:
    ws->cur->n = 0;
    if (ws->fd >= 0)
        close(ws->fd);
    ws->fd = -1;
    if (rc != 0 && tmp)
        unlink(tmp);
    free(tmp);
    free(path);
    return rc;
}

/* Reads one capture into records. Problems with the capture become
 * warnings and its status; -1 (message in errbuf) only for failures that
 * stop the run (writing a part, memory). */
static int process_capture(run *r, capfile *cf, wstate *ws, uint8_t *vec, char *errbuf)
{
    dp_capture *c = NULL;
    int rc = -1;
    ws->fd = -1;
    ws->part_bytes = 0;
    cf->frames = cf->kept = 0;
    memset(cf->skipped, 0, sizeof cf->skipped);
    cf->status[0] = 0;

    char ceb[DP_ERRBUF_SIZE] = "";
    c = dp_capture_open_file(cf->path, ceb);
    if (!c) {
        cf->unreadable = 1;
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
            while ((nrc = dp_capture_next(c, &f, ceb)) == 1) {
                cf->frames++;
                dp_pkt_info info;
                dp_verdict v = dp_packet_transform(f.linktype, f.data, f.caplen, vec, &info);
                if (v == DP_KEEP) {
                    if (r->chunk_size - ws->cur->n < REC_MAX && chunk_full(r, cf, ws, errbuf) != 0)
                        goto out;
                    uint8_t *p = ws->cur->data + ws->cur->n;
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
                    memcpy(p, &m, sizeof m);
                    size_t len = vec_used(vec);
                    p[sizeof m] = (uint8_t)(len & 0xff);
                    p[sizeof m + 1] = (uint8_t)(len >> 8);
                    memcpy(p + REC_HEAD, vec, len);
                    ws->cur->n += REC_HEAD + len;
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
    if (ws->fd >= 0 && finish_part(r, cf, ws, errbuf) != 0)
        goto out;
    rc = 0;
out:
    if (c)
        dp_capture_close(c);
    if (ws->fd >= 0) { /* failed while spilled */
        close(ws->fd);
        ws->fd = -1;
        char *tmp = part_path(r, cf, "part.tmp");
        if (tmp)
            unlink(tmp);
        free(tmp);
    }
    pthread_mutex_lock(&r->mu);
    if (rc == 0) {
        if (!cf->spilled && ws->cur->n) {
            chunk_push(cf, ws->cur);
            ws->cur = NULL; /* the worker takes another before its next capture */
        }
        cf->ready = 1;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (ws->cur)
        ws->cur->n = 0;
    return rc;
}

static void *worker(void *arg)
{
    run *r = arg;
    wstate *ws = calloc(1, sizeof *ws);
    uint8_t *vec = malloc(DP_VEC_LEN);
    int oom = !ws || !vec;
    if (ws)
        ws->fd = -1;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        /* a chunk first, then a capture: the capture the merge waits for
         * is always in the hands of a worker that can make progress */
        while (!oom && !ws->cur && !r->failed && !r->stop && r->next < r->nqueue) {
            ws->cur = own_chunk(r, ws, &oom);
            if (!ws->cur && !oom)
                pthread_cond_wait(&r->cv, &r->mu);
        }
        if (oom) {
            if (!r->failed) {
                r->failed = 1;
                dp_err(r->err, "out of memory");
            }
            pthread_cond_broadcast(&r->cv);
            pthread_mutex_unlock(&r->mu);
            break;
        }
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
        int rc = process_capture(r, &r->files[idx], ws, vec, eb);

        pthread_mutex_lock(&r->mu);
        if (rc != 0 && !r->failed) {
            r->failed = 1;
            memcpy(r->err, eb, sizeof eb);
        }
        r->finished++;
        if (r->finished == r->nqueue)
            r->t_read_done = dp_now();
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    free(vec);
    if (ws) {
        /* the worker's chunks still queued for the merge are freed by the
         * run; here only the ones it holds */
        pthread_mutex_lock(&r->mu);
        if (ws->cur)
            chunk_release(ws->cur);
        ws->cur = NULL;
        ws->next_ws = r->workers;
        r->workers = ws;
        pthread_mutex_unlock(&r->mu);
    }
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

/* 1 when the dataset's summary.json counts files that could not be read:
 * such a dataset is never up to date (a rerun reads them again). */
static int summary_has_unreadable(const char *dir)
{
    char *sp = dp_path_join(dir, "summary.json");
    char *json = sp ? dp_read_file(sp, NULL, NULL) : NULL;
    const char *key = "\"unreadable\": ";
    const char *p = json ? strstr(json, key) : NULL;
    int has = p && strtoull(p + strlen(key), NULL, 10) > 0;
    free(json);
    free(sp);
    return has;
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
    size_t unreadable = 0;
    for (size_t i = 0; i < r->nfiles; i++)
        unreadable += r->files[i].unreadable;
    fprintf(f, "\n  ],\n  \"unreadable\": %zu,\n  \"not_captures\": [", unreadable);
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

/* ---- merge and journal --------------------------------------------------------- */

/* The merge appends each capture's records, in file order, to the four
 * arrays, built in .parts/<name>.partial by dp_npy appenders (direct
 * I/O). It runs in the main thread while the workers read later
 * captures. The journal (.parts/journal) says which captures are in the
 * partial arrays: a header line, then one line per merged capture (its key,
 * source size and mtime, counts, status, and the row count after it), each
 * with a checksum; a line is written only once the rows it covers are in
 * the files. A rerun keeps the longest prefix of lines that matches the
 * captures as they are now and that the files hold, cuts the arrays back to
 * it and goes on from there. */
typedef struct merger {
    dp_npy_appender w[4];
    int opened;
    int jfd;                /* journal, O_APPEND; -1 when closed */
    uint8_t *rbuf;          /* part read buffer (made on first use) */
    size_t done;            /* captures merged in this run */
    size_t merged, journaled; /* captures (in order) merged / in the journal */
    uint64_t rows;
    uint64_t hash;          /* row_hash of the capture being merged */
} merger;

/* A fast checksum of rows as they are in the arrays (8 bytes a step): of
 * each row, the vector's bytes up to its last non-zero one and their
 * count, the two labels and the meta row. The journal records it per
 * capture; a resume reads the rows back and checks it. */
static uint64_t row_mix(uint64_t h, const uint8_t *p, size_t n)
{
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = ((h ^ w) * 0x9e3779b97f4a7c15ULL);
        h ^= h >> 29;
    }
    uint64_t w = (uint64_t)n << 56;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

static uint64_t row_hash(uint64_t h, const uint8_t *vec, size_t used, const int16_t lab[DP_NTASKS],
                         const uint8_t *meta)
{
    h = row_mix(h, vec, used);
    uint8_t small[8] = {(uint8_t)used, (uint8_t)(used >> 8)};
    memcpy(small + 2, lab, 2 * DP_NTASKS);
    h = row_mix(h, small, 2 + 2 * DP_NTASKS);
    return row_mix(h, meta, sizeof(dp_meta));
}

static char *arr_tmp_path(const run *r, int k)
{
    char name[64];
    snprintf(name, sizeof name, "%s.partial", out_names[k]);
    return dp_path_join(r->parts, name);
}

static const char *const arr_descr[4] = {DP_NPY_U1, DP_NPY_I2, DP_NPY_I2, DP_META_DESCR};
static const size_t arr_item[4] = {1, 2, 2, sizeof(dp_meta)};
static const size_t arr_cols[4] = {DP_VEC_LEN, 0, 0, 0};
static const size_t arr_buf[4] = {VEC_BUF, SMALL_BUF / 8, SMALL_BUF / 8, SMALL_BUF};

static void merger_close(merger *m)
{
    for (int k = 0; k < m->opened; k++)
        dp_npy_append_close(&m->w[k]);
    m->opened = 0;
    if (m->jfd >= 0)
        close(m->jfd);
    m->jfd = -1;
    free(m->rbuf);
    m->rbuf = NULL;
}

/* Opens the four partial arrays with `rows` rows (0: new). */
static int merger_open_arrays(const run *r, merger *m, uint64_t rows, char *errbuf)
{
    for (m->opened = 0; m->opened < 4; m->opened++) {
        int k = m->opened;
        char *p = arr_tmp_path(r, k);
        int orc = p ? dp_npy_append_open(&m->w[k], p, arr_descr[k], arr_item[k], arr_cols[k],
                                         rows, arr_buf[k], DP_NPY_DIRECT, errbuf)
                    : dp_err(errbuf, "%s: out of memory", r->parts);
        free(p);
        if (orc != 0) {
            merger_close(m);
            return -1;
        }
    }
    m->rows = rows;
    return 0;
}

static uint64_t journal_hash(const char *label_text)
{
    uint64_t h = dp_fnv1a(JOURNAL_FORMAT, strlen(JOURNAL_FORMAT) + 1, DP_FNV_INIT);
    return dp_fnv1a(label_text, strlen(label_text) + 1, h);
}

/* One journal line for capture number ord (without checksum and newline). */
static int journal_body(const capfile *cf, size_t ord, char *out, size_t cap)
{
    return snprintf(out, cap, "%zu\t%016llx\t%llu\t%lld\t%llu\t%llu\t%llu,%llu,%llu,%llu,%llu,%llu\t%llu\t%016llx\t%s",
                    ord, (unsigned long long)cf->relhash, (unsigned long long)cf->size,
                    (long long)cf->mtime_ns, (unsigned long long)cf->frames,
                    (unsigned long long)cf->kept, (unsigned long long)cf->skipped[0],
                    (unsigned long long)cf->skipped[1], (unsigned long long)cf->skipped[2],
                    (unsigned long long)cf->skipped[3], (unsigned long long)cf->skipped[4],
                    (unsigned long long)cf->skipped[5], (unsigned long long)cf->rows_end,
                    (unsigned long long)cf->rows_hash, cf->status);
}

/* Reads the journal: returns the number of leading captures it validly
 * records (their counts, status and rows_end filled in); (*ends)[i] is the
 * byte length of the journal up to its i-th entry (malloc'd). */
static size_t journal_load(run *r, uint64_t jhash, off_t **ends)
{
    char *jp = dp_path_join(r->parts, "journal");
    size_t len = 0;
    char *text = jp ? dp_read_file(jp, &len, NULL) : NULL;
    free(jp);
    size_t k = 0;
    *ends = NULL;
    char head[64];
    int hl = snprintf(head, sizeof head, "%s %016llx\n", JOURNAL_FORMAT, (unsigned long long)jhash);
    if (!text || len < (size_t)hl || memcmp(text, head, (size_t)hl) != 0)
        goto out;
    *ends = malloc((r->ncaptures + 1) * sizeof **ends);
    if (!*ends)
        goto out;
    (*ends)[0] = hl;
    uint64_t rows = 0;
    size_t pos = (size_t)hl;
    while (k < r->ncaptures && pos < len) {
        char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl)
            break; /* a line cut short by a crash */
        *nl = 0;
        char *line = text + pos, *tab = strrchr(line, '\t');
        size_t next = (size_t)(nl - text) + 1;
        if (!tab)
            break;
        unsigned long long check;
        if (sscanf(tab + 1, "%llx", &check) != 1 || strlen(tab + 1) != 16 ||
            dp_fnv1a(line, (size_t)(tab - line), DP_FNV_INIT) != check)
            break;
        *tab = 0;
        capfile *cf = &r->files[r->caps[k]];
        size_t ord;
        unsigned long long relhash, size, frames, kept, sk[6], rows_end, rows_hash;
        long long mtime;
        int used = 0;
        if (sscanf(line, "%zu\t%llx\t%llu\t%lld\t%llu\t%llu\t%llu,%llu,%llu,%llu,%llu,%llu\t%llu\t%llx\t%n",
                   &ord, &relhash, &size, &mtime, &frames, &kept, &sk[0], &sk[1], &sk[2], &sk[3],
                   &sk[4], &sk[5], &rows_end, &rows_hash, &used) != 14 || used == 0)
            break;
        if (ord != k || relhash != cf->relhash || size != cf->size || mtime != cf->mtime_ns ||
            rows_end != rows + kept)
            break;
        if (frames == 0 && line[used]) /* nothing read, with a problem (unreadable?): read it again */
            break;
        cf->frames = frames;
        cf->kept = kept;
        for (int i = 0; i < DP_VERDICT_COUNT; i++)
            cf->skipped[i] = sk[i];
        snprintf(cf->status, sizeof cf->status, "%s", line + used);
        cf->rows_end = rows_end;
        cf->rows_hash = rows_hash;
        rows = rows_end;
        k++;
        pos = next;
        (*ends)[k] = (off_t)pos;
    }
out:
    free(text);
    return k;
}

/* Reads back the rows of the first k journaled captures from the partial
 * arrays and checks their checksums; returns how many leading captures
 * match (a corrupt one and all after it are merged again). */
static size_t verify_rows(const run *r, size_t k)
{
    FILE *f[4] = {NULL};
    size_t ok = 0;
    for (int a = 0; a < 4; a++) {
        char *p = arr_tmp_path(r, a);
        f[a] = p ? fopen(p, "rbe") : NULL;
        free(p);
        if (!f[a] || fseeko(f[a], (off_t)dp_npy_header_size(arr_descr[a]), SEEK_SET) != 0)
            goto out;
    }
    uint8_t vec[DP_VEC_LEN], meta[sizeof(dp_meta)];
    int16_t lab[DP_NTASKS];
    uint64_t row = 0;
    for (; ok < k; ok++) {
        const capfile *cf = &r->files[r->caps[ok]];
        uint64_t h = 0;
        for (; row < cf->rows_end; row++) {
            if (fread(vec, 1, sizeof vec, f[0]) != sizeof vec || fread(&lab[0], 2, 1, f[1]) != 1 ||
                fread(&lab[1], 2, 1, f[2]) != 1 || fread(meta, 1, sizeof meta, f[3]) != sizeof meta)
                goto out;
            h = row_hash(h, vec, vec_used(vec), lab, meta);
        }
        if (h != cf->rows_hash)
            break;
    }
out:
    for (int a = 0; a < 4; a++)
        if (f[a])
            fclose(f[a]);
    return ok;
}

/* Resumes from the journal and partial arrays of an earlier run, or starts
 * new ones. Sets cf->journaled for the captures already in the arrays. */
static int merger_start(run *r, merger *m, const char *label_text, char *errbuf)
{
    memset(m, 0, sizeof *m);
    m->jfd = -1;
    uint64_t jhash = journal_hash(label_text);
    off_t *ends = NULL;
    size_t k = journal_load(r, jhash, &ends);
    /* as many entries as every partial array holds rows for */
    if (k) {
        uint64_t avail = UINT64_MAX;
        for (int a = 0; a < 4; a++) {
            char *p = arr_tmp_path(r, a);
            struct stat st;
            uint64_t hs = dp_npy_header_size(arr_descr[a]);
            uint64_t rb = arr_item[a] * (arr_cols[a] ? arr_cols[a] : 1), n = 0;
            if (p && hs && stat(p, &st) == 0 && (uint64_t)st.st_size >= hs)
                n = ((uint64_t)st.st_size - hs) / rb;
            free(p);
            if (n < avail)
                avail = n;
        }
        while (k && r->files[r->caps[k - 1]].rows_end > avail)
            k--;
        size_t good = verify_rows(r, k);
        if (good < k)
            warn(r, r->parts, 0, "the rows of %s in the partial arrays are corrupt; merging it and the %zu "
                 "captures after it again", r->files[r->caps[good]].path, k - good - 1);
        k = good;
    }
    int resumed = 0;
    if (k) {
        uint64_t rows = r->files[r->caps[k - 1]].rows_end;
        char jerr[DP_ERRBUF_SIZE];
        char *jp = dp_path_join(r->parts, "journal");
        if (jp && merger_open_arrays(r, m, rows, jerr) == 0) {
            m->jfd = open(jp, O_WRONLY | O_APPEND | O_CLOEXEC);
            if (m->jfd >= 0 && ftruncate(m->jfd, ends[k]) == 0)
                resumed = 1;
            else
                merger_close(m);
        }
        free(jp);
    }
    free(ends);
    if (!resumed) {
        k = 0;
        if (merger_open_arrays(r, m, 0, errbuf) != 0)
            return -1;
        char *jp = dp_path_join(r->parts, "journal");
        if (!jp) {
            merger_close(m);
            return dp_err(errbuf, "%s: out of memory", r->parts);
        }
        char head[64];
        int hl = snprintf(head, sizeof head, "%s %016llx\n", JOURNAL_FORMAT, (unsigned long long)jhash);
        m->jfd = open(jp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0666);
        if (m->jfd < 0 || write_full(m->jfd, head, (size_t)hl) != 0) {
            dp_errno(errbuf, "%s: cannot write", jp);
            free(jp);
            merger_close(m);
            return -1;
        }
        free(jp);
    }
    for (size_t i = 0; i < k; i++)
        r->files[r->caps[i]].journaled = 1;
    m->merged = m->journaled = k;
    return 0;
}

/* Writes the journal lines of the merged captures whose rows are all in
 * the files (all of them when `all`: the arrays are flushed first). */
static int journal_sync(const run *r, merger *m, int all, char *errbuf)
{
    if (m->journaled == m->merged)
        return 0;
    if (all && dp_npy_append_flush(&m->w[0], errbuf) != 0)
        return -1;
    uint64_t on_disk = dp_npy_append_rows_written(&m->w[0]);
    if (r->files[r->caps[m->journaled]].rows_end > on_disk)
        return 0;
    for (int k = 1; k < 4; k++)
        if (dp_npy_append_flush(&m->w[k], errbuf) != 0)
            return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return dp_err(errbuf, "%s: out of memory", r->parts);
    size_t first = m->journaled, k = first;
    for (; k < m->merged && r->files[r->caps[k]].rows_end <= on_disk; k++) {
        if (cap - len < MAX_STATUS + 256) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return dp_err(errbuf, "%s: out of memory", r->parts);
            }
            buf = nb;
            cap *= 2;
        }
        int n = journal_body(&r->files[r->caps[k]], k, buf + len, cap - len - 20);
        uint64_t check = dp_fnv1a(buf + len, (size_t)n, DP_FNV_INIT);
        len += (size_t)n;
        len += (size_t)snprintf(buf + len, cap - len, "\t%016llx\n", (unsigned long long)check);
    }
    int rc = write_full(m->jfd, buf, len);
    free(buf);
    if (rc != 0) {
        char *jp = dp_path_join(r->parts, "journal");
        dp_errno(errbuf, "%s: write failed", jp ? jp : r->parts);
        free(jp);
        return -1;
    }
    m->journaled = k;
    /* parts of journaled captures are no longer needed */
    for (size_t i = first; i < k; i++) {
        const capfile *cf = &r->files[r->caps[i]];
        if (cf->spilled || cf->from_part) {
            char *pp = part_path(r, cf, "part");
            if (pp)
                unlink(pp);
            free(pp);
        }
    }
    return 0;
}

/* Appends records (a chunk, or a slice of a part file) of a capture. */
static int merge_records(merger *m, const capfile *cf, uint32_t file_index, const uint8_t *p,
                         size_t n, uint64_t *count, const char *where, char *errbuf)
{
    int16_t lab[DP_NTASKS];
    for (int t = 0; t < DP_NTASKS; t++)
        lab[t] = (int16_t)cf->cls[t];
    while (n) {
        size_t len = n >= REC_HEAD ? (p[sizeof(dp_meta)] | (size_t)p[sizeof(dp_meta) + 1] << 8) : 0;
        if (n < REC_HEAD || len > DP_VEC_LEN || REC_HEAD + len > n)
            return dp_err(errbuf, "%s: records of %s are corrupt", where, cf->path);
        uint8_t *row = dp_npy_append_row(&m->w[0], errbuf);
        if (!row)
            return -1;
        memcpy(row, p + REC_HEAD, len);
        memset(row + len, 0, DP_VEC_LEN - len);
        for (int t = 0; t < DP_NTASKS; t++) {
            uint8_t *l = dp_npy_append_row(&m->w[1 + t], errbuf);
            if (!l)
                return -1;
            memcpy(l, &lab[t], sizeof lab[t]);
        }
        uint8_t *mr = dp_npy_append_row(&m->w[3], errbuf);
        if (!mr)
            return -1;
        memcpy(mr, p, sizeof(dp_meta));
        memcpy(mr, &file_index, sizeof file_index); /* dp_meta.file is its first field */
        m->hash = row_hash(m->hash, p + REC_HEAD, len, lab, mr);
        p += REC_HEAD + len;
        n -= REC_HEAD + len;
        (*count)++;
    }
    return 0;
}

/* Appends the records of a capture's part file. */
static int merge_part(const run *r, merger *m, const capfile *cf, uint32_t file_index,
                      uint64_t *count, char *errbuf)
{
    char *pp = part_path(r, cf, "part");
    if (!pp)
        return dp_err(errbuf, "%s: out of memory", r->parts);
    if (!m->rbuf && !(m->rbuf = malloc(RBUF_SIZE))) {
        free(pp);
        return dp_err(errbuf, "%s: out of memory", r->parts);
    }
    int fd = open(pp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        dp_errno(errbuf, "%s: cannot open part of %s", pp, cf->path);
        free(pp);
        return -1;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    int rc = 0;
    uint64_t left = cf->part_bytes;
    size_t have = 0;
    while (rc == 0 && (left || have)) {
        size_t want = RBUF_SIZE - have < left ? RBUF_SIZE - have : (size_t)left;
        ssize_t got = want ? read(fd, m->rbuf + have, want) : 0;
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = dp_errno(errbuf, "%s: cannot read part of %s", pp, cf->path);
            break;
        }
        if (got == 0 && want) {
            rc = dp_err(errbuf, "%s: part of %s is short", pp, cf->path);
            break;
        }
        have += (size_t)got;
        left -= (uint64_t)got;
        /* whole records only; the rest waits for the next read */
        size_t whole = 0;
        while (whole + REC_HEAD <= have) {
            size_t len = m->rbuf[whole + sizeof(dp_meta)] | (size_t)m->rbuf[whole + sizeof(dp_meta) + 1] << 8;
            if (len > DP_VEC_LEN || whole + REC_HEAD + len > have)
                break;
            whole += REC_HEAD + len;
        }
        if (whole == 0 && (left == 0 || have == RBUF_SIZE)) {
            rc = dp_err(errbuf, "%s: part of %s is corrupt", pp, cf->path);
            break;
        }
        rc = merge_records(m, cf, file_index, m->rbuf, whole, count, pp, errbuf);
        memmove(m->rbuf, m->rbuf + whole, have - whole);
        have -= whole;
    }
    close(fd);
    free(pp);
    return rc;
}

/* Commits the four arrays to their final names in the dataset folder, in
 * steps that a rerun resumes from: (1) every array's rows fsynced, (2) every
 * final header written and fsynced, (3) the old dataset's summary.json
 * removed (from here the folder is incomplete) and the renames. */
static int merger_commit(run *r, merger *m, char *errbuf)
{
    int rc = 0;
    for (int k = 0; k < 4 && rc == 0; k++) {
        rc = dp_npy_append_finish(&m->w[k], errbuf);
        dp_test_kill_point("pp-commit");
    }
    for (int k = 0; k < 4 && rc == 0; k++) {
        rc = dp_npy_append_final_header(&m->w[k], errbuf);
        dp_test_kill_point("pp-commit");
    }
    char *sj = dp_path_join(r->dst, "summary.json");
    r->replacing = rc == 0;
    if (rc == 0 && (!sj || (unlink(sj) != 0 && errno != ENOENT)))
        rc = dp_errno(errbuf, "%s: cannot remove", sj ? sj : r->dst);
    free(sj);
    for (int k = 0; k < 4 && rc == 0; k++) {
        char *p = dp_path_join(r->dst, out_names[k]);
        rc = p ? dp_npy_append_commit(&m->w[k], p, errbuf) : dp_err(errbuf, "out of memory");
        free(p);
    }
    merger_close(m);
    return rc;
}

/* Deletes the journal, every capture's part and the parts folder (once the
 * arrays are committed). */
static void remove_parts(const run *r)
{
    for (size_t i = 0; i < r->nfiles; i++) {
        if (!r->files[i].is_capture)
            continue;
        char *pp = part_path(r, &r->files[i], "part");
        if (pp)
            unlink(pp);
        free(pp);
    }
    char *jp = dp_path_join(r->parts, "journal");
    if (jp)
        unlink(jp);
    free(jp);
    rmdir(r->parts);
}

/* Bytes the files of a folder use on disk (not recursive). */
static uint64_t folder_bytes(const char *dir)
{
    uint64_t total = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char *p = dp_path_join(dir, e->d_name);
        struct stat st;
        if (p && e->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_blocks * 512;
        free(p);
    }
    if (d)
        closedir(d);
    return total;
}

/* After a failed run: says in errbuf what state the target is in. The
 * parts folder (the work a rerun resumes) is kept, but removed when the
 * disk is full, since it is what fills it. */
static void report_failure(const run *r, int had_dataset, int full_disk, char *errbuf)
{
    struct stat st;
    if (!errbuf || !r->parts || stat(r->parts, &st) != 0)
        return;
    uint64_t bytes = folder_bytes(r->parts);
    size_t n = strlen(errbuf);
    const char *prev = r->replacing  ? "the dataset is incomplete (no summary.json)"
                       : had_dataset ? "the previous dataset is unchanged"
                                     : "no dataset yet";
    if (full_disk && dp_remove_tree(r->parts) == 0)
        snprintf(errbuf + n, DP_ERRBUF_SIZE - n, "; %s; removed %s (%.1f MB of partial work) to free the disk",
                 prev, r->parts, bytes / 1e6);
    else
        snprintf(errbuf + n, DP_ERRBUF_SIZE - n, "; %s; %s keeps %.1f MB of partial work for a rerun to "
                 "resume (delete it to free the space)", prev, r->parts, bytes / 1e6);
}

/* Removes temp files of earlier runs in the target, and in the parts folder
 * everything but the journal, the partial arrays and the parts of current
 * captures. */
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
        int keep = !strcmp(e->d_name, "journal");
        for (int k = 0; k < 4 && !keep; k++) {
            size_t n = strlen(out_names[k]);
            keep = !strncmp(e->d_name, out_names[k], n) && !strcmp(e->d_name + n, ".partial");
        }
        unsigned long long key;
        char ext[16];
        if (!keep && sscanf(e->d_name, "%16llx.%15s", &key, ext) == 2 && !strcmp(ext, "part"))
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

/* 1 when DST is the source folder or lies inside it (DST need not exist:
 * its nearest existing folder is looked at, symlinks resolved). */
static int inside_source(const char *dst, const struct stat *src)
{
    char *p = strdup(dst), *real = NULL;
    while (p && !(real = realpath(p, NULL))) {
        char *sl = strrchr(p, '/');
        if (!sl) {
            free(p);
            p = strdup(".");
            continue;
        }
        if (sl == p)
            sl[1] = 0;
        else
            *sl = 0;
    }
    free(p);
    int inside = 0;
    for (char *end = real ? real + strlen(real) : NULL; end && !inside;) {
        struct stat st;
        char c = *end;
        *end = 0;
        inside = stat(real[0] ? real : "/", &st) == 0 && st.st_dev == src->st_dev && st.st_ino == src->st_ino;
        *end = c;
        if (end == real)
            break;
        do
            end--;
        while (end > real && *end != '/');
    }
    free(real);
    return inside;
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
    int had_dataset = -1; /* -1: not yet looked at (the run had not started) */
    pthread_t *th = NULL;
    size_t nth = 0;
    char *ap = NULL;
    size_t alen = 0;
    FILE *mem = NULL;
    merger M;
    memset(&M, 0, sizeof M);
    M.jfd = -1;

    r->chunk_size = CHUNK_SIZE;
    r->worker_chunks = WORKER_CHUNKS;
    if (o->chunk_bytes) {
        r->chunk_size = o->chunk_bytes < REC_MAX ? REC_MAX : o->chunk_bytes;
        r->worker_chunks = 2;
    }
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

    if (inside_source(r->dst, &sst)) {
        dp_err(errbuf, "%s: the dataset folder is the capture folder %s or lies inside it; give a target "
               "outside it", r->dst, r->src);
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
    L.depth = 1;
    int lrc = devino_add(&L.dirs, (devino){sst.st_dev, sst.st_ino}) < 0
                  ? dp_err(errbuf, "%s: out of memory", r->src)
                  : list_dir(r, &L, NULL, errbuf);
    lister_free_sets(&L);
    r->files = L.files;
    r->nfiles = L.n;
    if (lrc != 0)
        goto out;
    if (r->nfiles > 1)
        qsort(r->files, r->nfiles, sizeof *r->files, cmp_rel);
    st->files = r->nfiles;

    /* complete and unchanged? */
    uint64_t fp = fingerprint(r, label_text);
    had_dataset = dp_preprocess_complete(r->dst);
    if (r->nfiles && had_dataset && !summary_has_unreadable(r->dst)) {
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
            dp_remove_tree(r->parts); /* what a killed rerun of other sources left */
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
            cf->unreadable = 1;
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

    /* the previous dataset (if any) stays whole until merger_commit */
    if (mkdir(r->parts, 0777) != 0 && errno != EEXIST) {
        dp_errno(errbuf, "%s: cannot create directory", r->parts);
        goto out;
    }
    clean_stale(r);

    /* resume: captures already in the partial arrays (journal), then parts
     * of spilled captures; queue the rest in file order (the merge follows) */
    r->queue = malloc((r->ncaptures ? r->ncaptures : 1) * sizeof *r->queue);
    r->caps = malloc((r->ncaptures ? r->ncaptures : 1) * sizeof *r->caps);
    if (!r->queue || !r->caps) {
        dp_err(errbuf, "out of memory");
        goto out;
    }
    for (size_t i = 0, k = 0; i < r->nfiles; i++)
        if (r->files[i].is_capture)
            r->caps[k++] = i;
    if (merger_start(r, &M, label_text, errbuf) != 0)
        goto out;
    for (size_t k = 0; k < r->ncaptures; k++) {
        capfile *cf = &r->files[r->caps[k]];
        if (cf->journaled || load_part(r, cf)) {
            cf->reused = 1;
            cf->from_part = !cf->journaled;
            cf->ready = 1;
            st->reused++;
            if (cf->status[0])
                warn(r, cf->path, 0, "%s (recorded by an earlier run)", cf->status);
        } else {
            r->queue[r->nqueue++] = r->caps[k];
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
    for (size_t k = M.merged; k < r->ncaptures; k++) {
        capfile *cf = &r->files[r->caps[k]];
        uint64_t count = 0;
        int ready = 0, failed = 0;
        pthread_mutex_lock(&r->mu);
        r->head = cf;
        pthread_cond_broadcast(&r->cv);
        for (;;) {
            while (!cf->qh && !cf->ready && !r->failed && !(r->stop && r->finished == r->next)) {
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
                                      r->finished + st->reused, r->ncaptures, M.merged,
                                      (unsigned long long)pk, el > 0 ? pk / el : 0.0);
                    pthread_mutex_unlock(&r->warn_mu);
                }
            }
            if (!cf->qh || r->failed)
                break;
            chunk *c = cf->qh;
            cf->qh = c->next;
            if (!cf->qh)
                cf->qt = NULL;
            pthread_mutex_unlock(&r->mu);
            int mrc = merge_records(&M, cf, (uint32_t)k, c->data, c->n, &count, r->parts, errbuf);
            pthread_mutex_lock(&r->mu);
            chunk_release(c);
            pthread_cond_broadcast(&r->cv);
            if (mrc != 0) {
                pthread_mutex_unlock(&r->mu);
                goto out; /* `out` stops and joins the workers */
            }
        }
        ready = cf->ready;
        failed = r->failed;
        int from_file = cf->spilled || cf->from_part;
        pthread_mutex_unlock(&r->mu);
        if (failed || !ready) {
            all_merged = 0;
            break;
        }
        if (from_file && merge_part(r, &M, cf, (uint32_t)k, &count, errbuf) != 0)
            goto out;
        st->spilled += cf->spilled;
        if (count != cf->kept) {
            dp_err(errbuf, "%s: %llu records merged for %s, which has %llu kept packets",
                   r->parts, (unsigned long long)count, cf->path, (unsigned long long)cf->kept);
            goto out;
        }
        M.rows += count;
        cf->rows_end = M.rows;
        cf->rows_hash = M.hash;
        M.hash = 0;
        M.merged++;
        M.done++;
        if (journal_sync(r, &M, 0, errbuf) != 0)
            goto out;
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
    if (!all_merged) { /* stopped by stop_after: the journal records what is merged */
        if (journal_sync(r, &M, 1, errbuf) != 0)
            goto out;
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
    /* every capture in the journal first, so that a kill in the commit resumes */
    if (journal_sync(r, &M, 1, errbuf) != 0 || merger_commit(r, &M, errbuf) != 0)
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
    int full_disk = rc != 0 && errbuf && strstr(errbuf, strerror(ENOSPC)) != NULL;
    if (nth) { /* a failure while workers run: stop them */
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        r->failed = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        for (size_t i = 0; i < nth; i++)
            pthread_join(th[i], NULL);
    }
    /* the partial arrays and the journal stay for a rerun */
    merger_close(&M);
    if (rc != 0 && had_dataset >= 0)
        report_failure(r, had_dataset, full_disk, errbuf);
    for (size_t i = 0; i < r->nfiles; i++)
        for (chunk *c = r->files[i].qh, *n; c; c = n) {
            n = c->next;
            free(c);
        }
    for (wstate *ws = r->workers, *nw; ws; ws = nw) {
        nw = ws->next_ws;
        for (chunk *c = ws->free, *n; c; c = n) {
            n = c->next;
            free(c);
        }
        free(ws);
    }
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
    free(r->caps);
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
