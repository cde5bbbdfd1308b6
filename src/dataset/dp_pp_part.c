/* dp_pp_part: preprocess's record format and the .parts folder. See
 * dp_pp_part.h for the formats. */
#include "dataset/dp_pp_part.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PART_VERSION 4 /* 4: checksums of the records and of the trailer */
#define PART_MAGIC "DPPARTOK"

/* ---- records ---------------------------------------------------------------- */

size_t dp_pp_vec_used(const uint8_t *v)
{
    static const uint8_t zero[64];
    size_t n = DP_VEC_LEN;
    while (n >= 64 && memcmp(v + n - 64, zero, 64) == 0)
        n -= 64;
    while (n && v[n - 1] == 0)
        n--;
    return n;
}

size_t dp_pp_rec_put(uint8_t *p, const dp_meta *m, const uint8_t *vec)
{
    memcpy(p, m, sizeof *m);
    size_t len = dp_pp_vec_used(vec);
    p[sizeof *m] = (uint8_t)(len & 0xff);
    p[sizeof *m + 1] = (uint8_t)(len >> 8);
    memcpy(p + REC_HEAD, vec, len);
    return REC_HEAD + len;
}

size_t dp_pp_frame_record(uint8_t *p, uint64_t relhash, const dp_frame *f, const dp_pkt_info *info,
                          const uint8_t *vec)
{
    dp_meta m;
    m.file = 0; /* set at merge time: the index in files.tsv */
    m.index = f->index;
    m.time = f->time;
    m.flow = dp_flow_id(info, relhash);
    m.ipver = info->ipver;
    m.proto = info->proto;
    m.sport = info->sport;
    m.dport = info->dport;
    memcpy(m.saddr, info->saddr, 16);
    memcpy(m.daddr, info->daddr, 16);
    return dp_pp_rec_put(p, &m, vec);
}

size_t dp_pp_rec_size(const uint8_t *p, size_t n)
{
    if (n < REC_HEAD)
        return 0;
    size_t len = p[sizeof(dp_meta)] | (size_t)p[sizeof(dp_meta) + 1] << 8;
    if (len > DP_VEC_LEN || REC_HEAD + len > n)
        return 0;
    return REC_HEAD + len;
}

/* ---- part files ------------------------------------------------------------- */

char *dp_pp_part_path(const run *r, const capfile *cf, const char *ext)
{
    char name[64];
    snprintf(name, sizeof name, "%016llx.%s", (unsigned long long)cf->relhash, ext);
    return dp_path_join(r->parts, name);
}

uint64_t dp_pp_filter_hash(uint64_t h, const char *filter)
{
    return filter ? dp_fnv1a(filter, strlen(filter) + 1, dp_fnv1a("filter", 7, h)) : h;
}

uint64_t dp_pp_filter_key(const char *filter)
{
    return filter ? dp_pp_filter_hash(DP_FNV_INIT, filter) | 1 : 0;
}

uint64_t dp_pp_records_hash(uint64_t h, const uint8_t *p, size_t n)
{
    size_t size;
    while (n && (size = dp_pp_rec_size(p, n)) != 0) {
        h = dp_hash8(h, p, size);
        p += size;
        n -= size;
    }
    return n ? dp_hash8(h, p, n) : h;
}

#define CHECK_LINE 23 /* "check=" + 16 hex digits + "\n": the trailer's last line */

int dp_pp_part_trailer(const capfile *cf, uint64_t rec_bytes, uint64_t rec_hash, char *t, size_t cap)
{
    int n = snprintf(t, cap,
                     "version=%d\nrelhash=%016llx\nsize=%llu\nmtime=%lld\nframes=%llu\nkept=%llu\n"
                     "rec_bytes=%llu\nrecords=%016llx\nskipped=%llu,%llu,%llu,%llu,%llu,%llu\n"
                     "filter=%016llx\nstatus=%s\n",
                     PART_VERSION, (unsigned long long)cf->relhash,
                     (unsigned long long)cf->size, (long long)cf->mtime_ns,
                     (unsigned long long)cf->frames, (unsigned long long)cf->kept,
                     (unsigned long long)rec_bytes, (unsigned long long)rec_hash,
                     (unsigned long long)cf->skipped[0], (unsigned long long)cf->skipped[1],
                     (unsigned long long)cf->skipped[2], (unsigned long long)cf->skipped[3],
                     (unsigned long long)cf->skipped[4], (unsigned long long)cf->skipped[5],
                     (unsigned long long)dp_pp_filter_key(cf->filter), cf->status);
    _Static_assert(DP_VERDICT_COUNT == 6, "trailer lists 6 verdict counters");
    if (n < 0 || (size_t)n + CHECK_LINE + 16 + 1 > cap)
        return -1;
    n += snprintf(t + n, cap - (size_t)n, "check=%016llx\n",
                  (unsigned long long)dp_fnv1a(t, (size_t)n, DP_FNV_INIT));
    uint64_t len = (uint64_t)n;
    for (int i = 0; i < 8; i++)
        t[n + i] = (char)(len >> (8 * i));
    memcpy(t + n + 8, PART_MAGIC, 8);
    return n + 16;
}

/* What a part file is worth to a rerun. */
enum { PART_BAD = -1, PART_STALE = 0, PART_OK = 1 };

/* A part's trailer, parsed. */
typedef struct trailer {
    int version;
    unsigned long long relhash, size, frames, kept, rbytes, rhash, sk[6], filter;
    long long mtime;
    char status[MAX_STATUS];
} trailer;

/* Reads the trailer text of the part open as fd (size bytes) into t
 * (4097 bytes); returns its length, 0 when there is no whole trailer. */
static uint64_t read_trailer(int fd, off_t size, char *t)
{
    uint8_t foot[16];
    if (size < 16 || pread(fd, foot, 16, size - 16) != 16 || memcmp(foot + 8, PART_MAGIC, 8) != 0)
        return 0;
    uint64_t tlen = 0;
    for (int i = 0; i < 8; i++)
        tlen |= (uint64_t)foot[i] << (8 * i);
    if (tlen == 0 || tlen > 4096 || tlen + 16 > (uint64_t)size)
        return 0;
    if (pread(fd, t, tlen, size - 16 - (off_t)tlen) != (ssize_t)tlen)
        return 0;
    t[tlen] = 0;
    return tlen;
}

/* Checks the trailer text t (tlen bytes) against its last line, "check=":
 * PART_OK (the line cut off t), PART_STALE when t is of another version
 * (older ones have no check line), PART_BAD when the check fails. */
static int trailer_checked(char *t, uint64_t tlen)
{
    int version = -1;
    if (sscanf(t, "version=%d", &version) != 1)
        return PART_BAD;
    if (version != PART_VERSION)
        return PART_STALE;
    unsigned long long check;
    char *line = t + tlen - CHECK_LINE;
    if (tlen <= CHECK_LINE || line[-1] != '\n' || t[tlen - 1] != '\n' || strncmp(line, "check=", 6) != 0 ||
        sscanf(line + 6, "%16llx", &check) != 1 || dp_fnv1a(t, tlen - CHECK_LINE, DP_FNV_INIT) != check)
        return PART_BAD;
    *line = 0;
    return PART_OK;
}

/* Parses the checked trailer text t into *tr; 0 when every field is there. */
static int parse_trailer(char *t, trailer *tr)
{
    memset(tr, 0, sizeof *tr);
    int have = 0;
    char *save = NULL;
    for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (sscanf(line, "version=%d", &tr->version) == 1)
            have |= 1;
        else if (sscanf(line, "relhash=%llx", &tr->relhash) == 1)
            have |= 2;
        else if (sscanf(line, "size=%llu", &tr->size) == 1)
            have |= 4;
        else if (sscanf(line, "mtime=%lld", &tr->mtime) == 1)
            have |= 8;
        else if (sscanf(line, "frames=%llu", &tr->frames) == 1)
            have |= 16;
        else if (sscanf(line, "kept=%llu", &tr->kept) == 1)
            have |= 32;
        else if (sscanf(line, "skipped=%llu,%llu,%llu,%llu,%llu,%llu", &tr->sk[0], &tr->sk[1], &tr->sk[2],
                        &tr->sk[3], &tr->sk[4], &tr->sk[5]) == 6)
            have |= 64;
        else if (!strncmp(line, "status=", 7)) {
            snprintf(tr->status, sizeof tr->status, "%s", line + 7);
            have |= 128;
        } else if (sscanf(line, "rec_bytes=%llu", &tr->rbytes) == 1)
            have |= 256;
        else if (sscanf(line, "records=%llx", &tr->rhash) == 1)
            have |= 512;
        else if (sscanf(line, "filter=%llx", &tr->filter) == 1)
            have |= 1024;
    }
    return have == 2047 ? 0 : -1;
}

#define CHECK_BUF (1 << 20) /* part read buffer while checking (>= REC_MAX) */

/* Reads the first tr->rbytes bytes of the part open as fd: whole records,
 * tr->kept of them, of checksum tr->rhash? PART_OK, else PART_BAD with
 * what is wrong in why. */
static int check_records(int fd, const trailer *tr, char *why, size_t cap)
{
    uint8_t *buf = malloc(CHECK_BUF);
    uint64_t off = 0, n = 0, h = 0;
    size_t have = 0;
    int rc = buf ? PART_OK : PART_BAD;
    if (!buf)
        snprintf(why, cap, "out of memory to check it");
    while (rc == PART_OK && (off < tr->rbytes || have)) {
        size_t want = CHECK_BUF - have < tr->rbytes - off ? CHECK_BUF - have : (size_t)(tr->rbytes - off);
        ssize_t got = want ? pread(fd, buf + have, want, (off_t)off) : 0;
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 && want) {
            snprintf(why, cap, "cannot read it: %s", got < 0 ? strerror(errno) : "cut short");
            rc = PART_BAD;
            break;
        }
        off += (uint64_t)got;
        have += (size_t)got;
        size_t whole = 0, size;
        while ((size = dp_pp_rec_size(buf + whole, have - whole)) != 0) {
            h = dp_hash8(h, buf + whole, size);
            whole += size;
            n++;
        }
        if (whole == 0 && (off == tr->rbytes || have == CHECK_BUF)) {
            snprintf(why, cap, "a malformed record at byte %llu", (unsigned long long)(off - have));
            rc = PART_BAD;
        }
        memmove(buf, buf + whole, have - whole);
        have -= whole;
    }
    free(buf);
    if (rc == PART_OK && n != tr->kept)
        snprintf(why, cap, "%llu records, its trailer says %llu", (unsigned long long)n, tr->kept);
    else if (rc == PART_OK && h != tr->rhash)
        snprintf(why, cap, "its records do not match their checksum");
    return rc == PART_OK && (n != tr->kept || h != tr->rhash) ? PART_BAD : rc;
}

/* Checks the part open as fd (size bytes) of capture cf, made with the
 * filter of key fkey: PART_OK (tr filled), PART_STALE (made from another
 * state of the source, another filter or by another version), or
 * PART_BAD with what is wrong in why. */
static int check_part(int fd, off_t size, const capfile *cf, uint64_t fkey, trailer *tr, char *why, size_t cap)
{
    char t[4097];
    uint64_t tlen = read_trailer(fd, size, t);
    int rc = tlen ? trailer_checked(t, tlen) : PART_BAD;
    if (!tlen)
        snprintf(why, cap, "no whole trailer: cut short or overwritten");
    else if (rc == PART_BAD)
        snprintf(why, cap, "its trailer does not match its checksum");
    if (rc != PART_OK)
        return rc;
    if (parse_trailer(t, tr) != 0) {
        snprintf(why, cap, "its trailer lacks fields");
        return PART_BAD;
    }
    if (tr->relhash != cf->relhash || tr->size != cf->size || tr->mtime != cf->mtime_ns || tr->filter != fkey)
        return PART_STALE;
    if ((uint64_t)size != tr->rbytes + tlen + 16 || tr->rbytes < tr->kept * REC_HEAD ||
        tr->rbytes > tr->kept * REC_MAX) {
        snprintf(why, cap, "%llu bytes, its trailer says %llu of records in %llu records", (unsigned long long)size,
                 tr->rbytes, tr->kept);
        return PART_BAD;
    }
    return check_records(fd, tr, why, cap);
}

int dp_pp_part_load(run *r, capfile *cf)
{
    char *pp = dp_pp_part_path(r, cf, "part");
    int rc = PART_STALE, fd = -1;
    struct stat ps;
    trailer tr;
    char why[200] = "";
    if (!pp || stat(pp, &ps) != 0) {
        free(pp);
        return 0;
    }
    if ((fd = open(pp, O_RDONLY | O_CLOEXEC)) < 0)
        snprintf(why, sizeof why, "cannot open it: %s", strerror(errno));
    else
        rc = check_part(fd, ps.st_size, cf, dp_pp_filter_key(cf->filter), &tr, why, sizeof why);
    if (fd >= 0)
        close(fd);
    if (rc == PART_OK) {
        cf->frames = tr.frames;
        cf->kept = tr.kept;
        cf->part_bytes = tr.rbytes;
        for (int i = 0; i < DP_VERDICT_COUNT; i++)
            cf->skipped[i] = tr.sk[i];
        memcpy(cf->status, tr.status, sizeof tr.status);
    } else {
        if (why[0])
            dp_pp_warn(r, pp, 0, "the part of %s is damaged (%s); removed it, the capture is read again",
                       cf->path, why);
        unlink(pp);
    }
    free(pp);
    return rc == PART_OK;
}

/* ---- the parts folder --------------------------------------------------------- */

void dp_pp_parts_remove(const run *r)
{
    /* by names on the stack, relative to the folder: the commit's cleanup
     * allocates nothing, so no .parts is left beside a committed dataset
     * for want of memory */
    int dfd = open(r->parts, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    char name[64];
    for (size_t i = 0; i < r->nfiles; i++) {
        if (!r->files[i].is_capture)
            continue;
        snprintf(name, sizeof name, "%016llx.part", (unsigned long long)r->files[i].relhash);
        unlinkat(dfd, name, 0);
    }
    unlinkat(dfd, "journal", 0);
    close(dfd);
    rmdir(r->parts);
}

void dp_pp_parts_clean_stale(run *r)
{
    DIR *d = opendir(r->dst);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            for (size_t i = 0; i < N_OUT; i++) {
                size_t n = strlen(dp_pp_out_names[i]);
                if (!strncmp(e->d_name, dp_pp_out_names[i], n) && !strncmp(e->d_name + n, ".tmp.", 5)) {
                    char *p = dp_path_join(r->dst, e->d_name);
                    if (p)
                        unlink(p);
                    free(p);
                }
            }
        closedir(d);
    }
    dp_clean_stale_tmp(r->dst, "shard.tsv");
    d = opendir(r->parts);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int keep = !strcmp(e->d_name, "journal");
        for (int k = 0; k < 4 && !keep; k++) {
            size_t n = strlen(dp_pp_out_names[k]);
            keep = !strncmp(e->d_name, dp_pp_out_names[k], n) && !strcmp(e->d_name + n, ".partial");
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
