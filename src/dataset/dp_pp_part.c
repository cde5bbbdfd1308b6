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

#define PART_VERSION 3
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

int dp_pp_write_full(int fd, const void *p, size_t n)
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

uint64_t dp_pp_filter_hash(uint64_t h, const char *filter)
{
    return filter ? dp_fnv1a(filter, strlen(filter) + 1, dp_fnv1a("filter", 7, h)) : h;
}

uint64_t dp_pp_filter_key(const char *filter)
{
    return filter ? dp_pp_filter_hash(DP_FNV_INIT, filter) | 1 : 0;
}

int dp_pp_part_trailer(const capfile *cf, uint64_t rec_bytes, char *t, size_t cap)
{
    int n = snprintf(t, cap,
                     "version=%d\nrelhash=%016llx\nsize=%llu\nmtime=%lld\nframes=%llu\nkept=%llu\n"
                     "rec_bytes=%llu\nskipped=%llu,%llu,%llu,%llu,%llu,%llu\nfilter=%016llx\nstatus=%s\n",
                     PART_VERSION, (unsigned long long)cf->relhash,
                     (unsigned long long)cf->size, (long long)cf->mtime_ns,
                     (unsigned long long)cf->frames, (unsigned long long)cf->kept,
                     (unsigned long long)rec_bytes, (unsigned long long)cf->skipped[0], (unsigned long long)cf->skipped[1],
                     (unsigned long long)cf->skipped[2], (unsigned long long)cf->skipped[3],
                     (unsigned long long)cf->skipped[4], (unsigned long long)cf->skipped[5],
                     (unsigned long long)dp_pp_filter_key(cf->filter), cf->status);
    _Static_assert(DP_VERDICT_COUNT == 6, "trailer lists 6 verdict counters");
    if (n < 0 || (size_t)n + 16 > cap)
        return -1;
    uint64_t len = (uint64_t)n;
    for (int i = 0; i < 8; i++)
        t[n + i] = (char)(len >> (8 * i));
    memcpy(t + n + 8, PART_MAGIC, 8);
    return n + 16;
}

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

/* Parses trailer text t (a part of size bytes, tlen of them the text) and
 * fills cf from it when it is whole and matches cf's source as it is now
 * and the filter of key fkey (a trailer without one: made without). */
static int parse_trailer(char *t, uint64_t tlen, uint64_t size_on_disk, uint64_t fkey, capfile *cf)
{
    int version = -1;
    unsigned long long relhash = 0, size = 0, frames = 0, kept = 0, rbytes = 0, sk[6] = {0}, filter = 0;
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
        else if (sscanf(line, "filter=%llx", &filter) == 1)
            continue;
        else if (!strncmp(line, "status=", 7)) {
            snprintf(status, sizeof status, "%s", line + 7);
            have |= 128;
        }
    }
    if (have != 511 || version != PART_VERSION || relhash != cf->relhash || size != cf->size ||
        mtime != cf->mtime_ns || filter != fkey)
        return 0;
    if (size_on_disk != rbytes + tlen + 16 || rbytes < kept * (REC_HEAD) || rbytes > kept * REC_MAX)
        return 0;
    cf->frames = frames;
    cf->kept = kept;
    cf->part_bytes = rbytes;
    for (int i = 0; i < DP_VERDICT_COUNT; i++)
        cf->skipped[i] = sk[i];
    memcpy(cf->status, status, sizeof status);
    return 1;
}

int dp_pp_part_load(const run *r, capfile *cf)
{
    char *pp = dp_pp_part_path(r, cf, "part");
    int ok = 0, fd = -1;
    struct stat ps;
    char t[4097];
    if (pp && stat(pp, &ps) == 0 && ps.st_size >= 16 && (fd = open(pp, O_RDONLY | O_CLOEXEC)) >= 0) {
        uint64_t tlen = read_trailer(fd, ps.st_size, t);
        ok = tlen && parse_trailer(t, tlen, (uint64_t)ps.st_size, dp_pp_filter_key(cf->filter), cf);
    }
    if (fd >= 0)
        close(fd);
    free(pp);
    return ok;
}

/* ---- the parts folder --------------------------------------------------------- */

void dp_pp_parts_remove(const run *r)
{
    for (size_t i = 0; i < r->nfiles; i++) {
        if (!r->files[i].is_capture)
            continue;
        char *pp = dp_pp_part_path(r, &r->files[i], "part");
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
