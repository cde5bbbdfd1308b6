/* dp_pp_merge: preprocess's merge into the four arrays, and its resume
 * journal. See dp_pp_merge.h for the journal's format. */
#include "dataset/dp_pp_merge.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset/dp_pp_part.h"
#include "dataset/dp_pp_run.h"

#define JOURNAL_FORMAT "deeppacket-journal-2" /* 2: a checksum of each capture's rows */
#define VEC_BUF (4 << 20)        /* vectors.npy write buffer (direct I/O) */
#define SMALL_BUF (512 * 1024)   /* meta.npy write buffer (labels: an eighth) */
#define RBUF_SIZE (1 << 20)      /* part read buffer (>= REC_MAX) */

/* A checksum of rows as they are in the arrays (dp_hash8): of each row,
 * the vector's bytes up to its last non-zero one and their count, the two
 * labels and the meta row. The journal records it per capture; a resume
 * reads the rows back and checks it. */
static uint64_t row_hash(uint64_t h, const uint8_t *vec, size_t used, const int16_t lab[DP_NTASKS],
                         const uint8_t *meta)
{
    h = dp_hash8(h, vec, used);
    uint8_t small[8] = {(uint8_t)used, (uint8_t)(used >> 8)};
    memcpy(small + 2, lab, 2 * DP_NTASKS);
    h = dp_hash8(h, small, 2 + 2 * DP_NTASKS);
    return dp_hash8(h, meta, sizeof(dp_meta));
}

static char *arr_tmp_path(const run *r, int k)
{
    char name[64];
    snprintf(name, sizeof name, "%s.partial", dp_pp_out_names[k]);
    return dp_path_join(r->parts, name);
}

static const char *const arr_descr[4] = {DP_VECTORS_DESCR, DP_CLASS_DESCR, DP_CLASS_DESCR, DP_META_DESCR};
static const size_t arr_item[4] = {1, 2, 2, sizeof(dp_meta)};
static const size_t arr_cols[4] = {DP_VEC_LEN, 0, 0, 0};
static const size_t arr_buf[4] = {VEC_BUF, SMALL_BUF / 8, SMALL_BUF / 8, SMALL_BUF};
/* vectors.npy, 1500 bytes a row, is written behind the merge (its own
 * thread writes one 4 MB buffer while the merge fills the other) */
static const int arr_flags[4] = {DP_NPY_DIRECT | DP_NPY_ASYNC, DP_NPY_DIRECT, DP_NPY_DIRECT, DP_NPY_DIRECT};

void dp_pp_merger_close(merger *m)
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
                                         rows, arr_buf[k], arr_flags[k], errbuf)
                    : dp_err(errbuf, "%s: out of memory", r->parts);
        free(p);
        if (orc != 0) {
            dp_pp_merger_close(m);
            return -1;
        }
    }
    m->rows = rows;
    return 0;
}

/* The journal's key: the label table and the filter a run's rows were
 * made with. */
static uint64_t journal_hash(const run *r)
{
    uint64_t h = dp_fnv1a(JOURNAL_FORMAT, strlen(JOURNAL_FORMAT) + 1, DP_FNV_INIT);
    h = dp_fnv1a(r->label_text, strlen(r->label_text) + 1, h);
    return dp_pp_filter_hash(h, r->filter);
}

/* The journal's first line (for the label table of hash jhash). */
static int journal_head(uint64_t jhash, char *out, size_t cap)
{
    return snprintf(out, cap, "%s %016llx\n", JOURNAL_FORMAT, (unsigned long long)jhash);
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
    int hl = journal_head(jhash, head, sizeof head);
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
            kept > frames || rows_end < rows || rows_end != rows + kept) /* rows + kept may not wrap */
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
            h = row_hash(h, vec, dp_pp_vec_used(vec), lab, meta);
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

/* Rows every partial array holds (the fewest of the four). */
static uint64_t rows_on_disk(const run *r)
{
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
    return avail;
}

/* How many leading captures an earlier run left merged: journaled, with
 * their rows in every partial array, and rows that check. *ends as for
 * journal_load. */
static size_t resume_point(run *r, uint64_t jhash, off_t **ends)
{
    size_t k = journal_load(r, jhash, ends);
    if (!k)
        return 0;
    uint64_t avail = rows_on_disk(r);
    while (k && r->files[r->caps[k - 1]].rows_end > avail)
        k--;
    size_t good = verify_rows(r, k);
    if (good < k)
        dp_pp_warn(r, r->parts, 0, "the rows of %s in the partial arrays are corrupt; merging it and the %zu "
             "captures after it again", r->files[r->caps[good]].path, k - good - 1);
    return good;
}

/* Reopens the partial arrays with the rows of the first k captures and the
 * journal cut after their lines (ends: journal_load); 0 when that fails. */
static int reopen(run *r, merger *m, size_t k, const off_t *ends)
{
    int resumed = 0;
    uint64_t rows = r->files[r->caps[k - 1]].rows_end;
    char jerr[DP_ERRBUF_SIZE];
    char *jp = dp_path_join(r->parts, "journal");
    if (jp && merger_open_arrays(r, m, rows, jerr) == 0) {
        m->jfd = open(jp, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (m->jfd >= 0 && ftruncate(m->jfd, ends[k]) == 0)
            resumed = 1;
        else
            dp_pp_merger_close(m);
    }
    free(jp);
    return resumed;
}

/* Starts empty partial arrays and a journal of only its header line. */
static int start_new(run *r, merger *m, uint64_t jhash, char *errbuf)
{
    if (merger_open_arrays(r, m, 0, errbuf) != 0)
        return -1;
    char *jp = dp_path_join(r->parts, "journal");
    if (!jp) {
        dp_pp_merger_close(m);
        return dp_err(errbuf, "%s: out of memory", r->parts);
    }
    char head[64];
    int hl = journal_head(jhash, head, sizeof head);
    m->jfd = open(jp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0666);
    if (m->jfd < 0 || dp_write_full(m->jfd, head, (size_t)hl) != 0) {
        dp_errno(errbuf, "%s: cannot write", jp);
        free(jp);
        dp_pp_merger_close(m);
        return -1;
    }
    free(jp);
    return 0;
}

int dp_pp_merger_start(run *r, char *errbuf)
{
    merger *m = &r->m;
    memset(m, 0, sizeof *m);
    m->jfd = -1;
    uint64_t jhash = journal_hash(r);
    off_t *ends = NULL;
    size_t k = resume_point(r, jhash, &ends);
    if (k && !reopen(r, m, k, ends))
        k = 0;
    free(ends);
    if (!k && start_new(r, m, jhash, errbuf) != 0)
        return -1;
    for (size_t i = 0; i < k; i++)
        r->files[r->caps[i]].journaled = 1;
    m->merged = m->journaled = k;
    return 0;
}

int dp_pp_journal_sync(const run *r, merger *m, int all, char *errbuf)
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
        if (n < 0 || (size_t)n >= cap - len - 20) { /* glibc's snprintf can fail: ENOMEM */
            free(buf);
            return dp_errno(errbuf, "%s: cannot format the journal", r->parts);
        }
        uint64_t check = dp_fnv1a(buf + len, (size_t)n, DP_FNV_INIT);
        len += (size_t)n;
        len += (size_t)snprintf(buf + len, cap - len, "\t%016llx\n", (unsigned long long)check);
    }
    int rc = dp_write_full(m->jfd, buf, len);
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
            char *pp = dp_pp_part_path(r, cf, "part");
            if (pp)
                unlink(pp);
            free(pp);
        }
    }
    return 0;
}

int dp_pp_merge_row(merger *m, const capfile *cf, uint32_t file_index, const uint8_t *vec,
                    size_t used, const void *meta, char *errbuf)
{
    int16_t lab[DP_NTASKS];
    for (int t = 0; t < DP_NTASKS; t++)
        lab[t] = (int16_t)cf->cls[t];
    uint8_t *row = dp_npy_append_row(&m->w[0], errbuf);
    if (!row)
        return -1;
    memcpy(row, vec, used);
    memset(row + used, 0, DP_VEC_LEN - used);
    for (int t = 0; t < DP_NTASKS; t++) {
        uint8_t *l = dp_npy_append_row(&m->w[1 + t], errbuf);
        if (!l)
            return -1;
        memcpy(l, &lab[t], sizeof lab[t]);
    }
    uint8_t *mr = dp_npy_append_row(&m->w[3], errbuf);
    if (!mr)
        return -1;
    memcpy(mr, meta, sizeof(dp_meta));
    memcpy(mr, &file_index, sizeof file_index); /* dp_meta.file is its first field */
    m->hash = row_hash(m->hash, vec, used, lab, mr);
    return 0;
}

int dp_pp_merge_records(merger *m, const capfile *cf, uint32_t file_index, const uint8_t *p,
                        size_t n, uint64_t *count, const char *where, char *errbuf)
{
    while (n) {
        size_t size = dp_pp_rec_size(p, n);
        if (!size)
            return dp_err(errbuf, "%s: records of %s are corrupt", where, cf->path);
        if (dp_pp_merge_row(m, cf, file_index, p + REC_HEAD, size - REC_HEAD, p, errbuf) != 0)
            return -1;
        p += size;
        n -= size;
        (*count)++;
    }
    return 0;
}

int dp_pp_merge_part(const run *r, merger *m, const capfile *cf, uint32_t file_index,
                     uint64_t *count, char *errbuf)
{
    char *pp = dp_pp_part_path(r, cf, "part");
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
        size_t whole = 0, size;
        while ((size = dp_pp_rec_size(m->rbuf + whole, have - whole)) != 0)
            whole += size;
        if (whole == 0 && (left == 0 || have == RBUF_SIZE)) {
            rc = dp_err(errbuf, "%s: part of %s is corrupt", pp, cf->path);
            break;
        }
        rc = dp_pp_merge_records(m, cf, file_index, m->rbuf, whole, count, pp, errbuf);
        memmove(m->rbuf, m->rbuf + whole, have - whole);
        have -= whole;
    }
    close(fd);
    free(pp);
    return rc;
}

int dp_pp_merger_commit(run *r, char *errbuf)
{
    merger *m = &r->m;
    int rc = 0;
    for (int k = 0; k < 4 && rc == 0; k++) {
        rc = dp_npy_append_finish(&m->w[k], errbuf);
        dp_test_kill_point("pp-commit");
    }
    for (int k = 0; k < 4 && rc == 0; k++) {
        rc = dp_npy_append_final_header(&m->w[k], errbuf);
        dp_test_kill_point("pp-commit");
    }
    /* the dataset is incomplete until summary.json is written again; a
     * symlink there stays (its target goes, and comes back through it) */
    char *sj = dp_path_join(r->dst, DP_FILE_SUMMARY_JSON), *real = NULL;
    r->replacing = rc == 0;
    if (rc == 0 && !sj)
        rc = dp_err(errbuf, "out of memory");
    if (rc == 0 && !(real = dp_resolve_links(sj, errbuf)))
        rc = -1;
    if (rc == 0 && unlink(real) != 0 && errno != ENOENT)
        rc = dp_errno(errbuf, "%s: cannot remove", real);
    free(sj), free(real);
    for (int k = 0; k < 4 && rc == 0; k++) {
        char *p = dp_path_join(r->dst, dp_pp_out_names[k]);
        rc = p ? dp_npy_append_commit(&m->w[k], p, errbuf) : dp_err(errbuf, "out of memory");
        free(p);
    }
    dp_pp_merger_close(m);
    return rc;
}

int dp_pp_merge_done(run *r, capfile *cf, uint64_t count, char *errbuf)
{
    merger *m = &r->m;
    if (count != cf->kept)
        return dp_err(errbuf, "%s: %llu records merged for %s, which has %llu kept packets",
                      r->parts, (unsigned long long)count, cf->path, (unsigned long long)cf->kept);
    m->rows += count;
    cf->rows_end = m->rows;
    cf->rows_hash = m->hash;
    m->hash = 0;
    m->merged++;
    m->done++;
    return dp_pp_journal_sync(r, m, 0, errbuf);
}
