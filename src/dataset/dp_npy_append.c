/* dp_npy_append: the resumable .npy appender of dp_npy.h (direct I/O,
 * the journal's row count, write-behind with DP_NPY_ASYNC); the headers it
 * writes come from dp_npy.c. */
#include "dataset/dp_npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- appender (resumable, direct I/O) ------------------------------------ */

#define BLOCK 4096 /* alignment of direct I/O: offsets, lengths, buffer */
#define HUGE (2u << 20) /* a huge page */

static uint64_t round_down(uint64_t x) { return x & ~(uint64_t)(BLOCK - 1); }

/* pwrite of the whole range; under direct I/O a refusal (EINVAL: the file
 * system or the alignment does not suit it) turns direct I/O off for good
 * and the write is retried through the page cache. */
static int app_pwrite(dp_npy_appender *w, const uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t k = pwrite(w->fd, p, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EINVAL && w->direct) {
                int fl = fcntl(w->fd, F_GETFL);
                if (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) != 0)
                    return -1;
                w->direct = 0;
                continue;
            }
            return -1;
        }
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* 1 when have is the final header of a file of size bytes (as
 * dp_npy_append_final_header writes it: the file cut to its rows). */
static int final_header_of(const dp_npy_appender *w, const char *have, uint64_t size)
{
    if (size < w->hsize || (size - w->hsize) % w->row_bytes)
        return 0;
    char *f = malloc(w->hsize);
    int same = f && dp_npy_format_header(f, w->descr, (size - w->hsize) / w->row_bytes, w->ncols, w->hsize) == 0 &&
               memcmp(f, have, w->hsize) == 0;
    free(f);
    return same;
}

/* Puts the in-progress header back (through the page cache). */
static int rewrite_header(const char *tmp, const char *h, size_t n)
{
    int fd = open(tmp, O_WRONLY | O_CLOEXEC);
    int rc = fd >= 0 && pwrite(fd, h, n, 0) == (ssize_t)n && fsync(fd) == 0 ? 0 : -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Fills w's layout and allocates its buffer (huge pages when big); on a
 * failure nothing is left to free. */
static int appender_init(dp_npy_appender *w, const char *tmp, const char *descr, size_t itemsize, size_t ncols,
                         size_t bufsize, char *errbuf)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    if (strlen(descr) >= sizeof w->descr)
        return dp_err(errbuf, "%s: dtype description too long", tmp);
    strcpy(w->descr, descr);
    w->ncols = ncols;
    w->row_bytes = itemsize * (ncols ? ncols : 1);
    w->hsize = dp_npy_header_size(descr);
    if (w->hsize == 0 || w->row_bytes == 0)
        return dp_err(errbuf, "%s: cannot make an npy header", tmp);
    size_t need = 2 * w->row_bytes + w->hsize + BLOCK;
    if (bufsize < need)
        bufsize = need;
    w->cap = (bufsize + BLOCK - 1) / BLOCK * BLOCK;
    w->tmp = strdup(tmp);
    /* a big buffer in huge pages: a direct write pins its pages, 2 per
     * 4 MB instead of 1024 */
    size_t align = w->cap >= HUGE ? HUGE : BLOCK;
    if (w->tmp && align == HUGE)
        w->cap = (w->cap + HUGE - 1) / HUGE * HUGE;
    if (!w->tmp || posix_memalign((void **)&w->buf, align, w->cap) != 0) {
        free(w->tmp);
        w->tmp = NULL;
        w->buf = NULL;
        return dp_err(errbuf, "%s: out of memory", tmp);
    }
    if (align == HUGE)
        madvise(w->buf, w->cap, MADV_HUGEPAGE); /* a hint: fine if refused */
    return 0;
}

/* Opens (rows > 0) or creates tmp, with direct I/O when asked and allowed. */
static int appender_open_fd(dp_npy_appender *w, const char *tmp, uint64_t rows, int flags, char *errbuf)
{
    int oflags = O_RDWR | O_CREAT | O_CLOEXEC | (rows == 0 ? O_TRUNC : 0);
    if (flags & DP_NPY_DIRECT) {
        w->fd = open(tmp, oflags | O_DIRECT, 0666);
        w->direct = w->fd >= 0;
    }
    if (w->fd < 0)
        w->fd = open(tmp, oflags, 0666);
    if (w->fd < 0)
        return dp_errno(errbuf, "%s: cannot %s", tmp, rows ? "open" : "create");
    return 0;
}

/* The end of rows rows (a row count that overflows cannot be in the file),
 * checked against the file's size. */
static int resume_end(const dp_npy_appender *w, const char *tmp, uint64_t rows, uint64_t *end, uint64_t *size,
                      char *errbuf)
{
    struct stat st;
    if (__builtin_mul_overflow(rows, (uint64_t)w->row_bytes, end) ||
        __builtin_add_overflow(*end, (uint64_t)w->hsize, end))
        return dp_err(errbuf, "%s: %llu rows of %zu bytes cannot be resumed: the size overflows", tmp,
                      (unsigned long long)rows, w->row_bytes);
    if (fstat(w->fd, &st) != 0)
        return dp_errno(errbuf, "%s: cannot stat", tmp);
    *size = (uint64_t)st.st_size;
    if (*size < *end)
        return dp_err(errbuf, "%s: holds %llu bytes, %llu rows need %llu", tmp, (unsigned long long)*size,
                      (unsigned long long)rows, (unsigned long long)*end);
    return 0;
}

/* Resumes tmp after rows rows: the header must be the one this run writes,
 * h (checked before the file is cut; a final header left by a kill while
 * committing is put back); the last partial block goes back into the
 * buffer, and the file is cut to the rows. */
static int resume_rows(dp_npy_appender *w, const char *tmp, const char *h, uint64_t rows, char *errbuf)
{
    uint64_t end = 0, size = 0;
    if (resume_end(w, tmp, rows, &end, &size, errbuf) != 0)
        return -1;
    /* read through a plain descriptor: direct reads have the alignment
     * rules of direct writes */
    w->off = w->direct ? round_down(end) : end;
    w->n = (size_t)(end - w->off);
    w->written = end;
    int rfd = open(tmp, O_RDONLY | O_CLOEXEC);
    char *have = malloc(w->hsize);
    int bad = rfd < 0 || !have;
    if (!bad)
        bad = pread(rfd, have, w->hsize, 0) != (ssize_t)w->hsize ? 1
              : memcmp(have, h, w->hsize) != 0                    ? 2
                                                                   : 0;
    int refinal = bad == 2 && final_header_of(w, have, size); /* killed while committing */
    if (refinal)
        bad = rewrite_header(tmp, h, w->hsize) == 0 ? 0 : 1;
    if (!bad && w->n && pread(rfd, w->buf, w->n, (off_t)w->off) != (ssize_t)w->n)
        bad = 1;
    if (!bad && refinal && w->off == 0) /* the buffer holds the header */
        memcpy(w->buf, h, w->hsize < w->n ? w->hsize : w->n);
    if (rfd >= 0)
        close(rfd);
    free(have);
    if (!bad && ftruncate(w->fd, (off_t)end) != 0)
        bad = 3;
    if (bad == 2)
        return dp_err(errbuf, "%s: not the expected .npy header", tmp);
    if (bad)
        return dp_errno(errbuf, "%s: cannot %s", tmp, bad == 1 ? "read back" : "truncate");
    w->rows = rows;
    return 0;
}

int dp_npy_append_open(dp_npy_appender *w, const char *tmp, const char *descr,
                       size_t itemsize, size_t ncols, uint64_t rows, size_t bufsize,
                       int flags, char *errbuf)
{
    if (appender_init(w, tmp, descr, itemsize, ncols, bufsize, errbuf) != 0)
        return -1;
    char *h = NULL;
    w->async = (flags & DP_NPY_ASYNC) != 0;
    int rc = appender_open_fd(w, tmp, rows, flags, errbuf);
    if (rc == 0) {
        h = malloc(w->hsize);
        if (!h || dp_npy_format_header(h, descr, 0, ncols, w->hsize) != 0)
            rc = dp_err(errbuf, "%s: cannot make an npy header", tmp);
    }
    if (rc == 0 && rows == 0) { /* a fresh file: the buffer starts with the header */
        memcpy(w->buf, h, w->hsize);
        w->n = w->hsize;
    } else if (rc == 0) {
        rc = resume_rows(w, tmp, h, rows, errbuf);
    }
    free(h);
    if (rc != 0)
        dp_npy_append_close(w);
    return rc;
}

/* ---- write-behind (DP_NPY_ASYNC) ---- */

/* The writer thread: writes each job handed to it, says when it is done. */
static void *writer_main(void *arg)
{
    dp_npy_appender *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->job && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->job)
            break;
        const uint8_t *p = w->job;
        size_t n = w->job_n;
        uint64_t off = w->job_off;
        pthread_mutex_unlock(&w->mu);
        int err = 0;
        while (n && !err) {
            ssize_t k = pwrite(w->fd, p, n, (off_t)off);
            if (k < 0 && errno != EINTR)
                err = errno;
            if (k > 0) {
                p += k;
                n -= (size_t)k;
                off += (uint64_t)k;
            }
        }
        pthread_mutex_lock(&w->mu);
        w->job = NULL;
        w->job_done = 1;
        w->job_err = err;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Starts the writer thread and its second buffer; -1 (nothing started)
 * when that fails: the appender then writes in the caller's thread. */
static int writer_start(dp_npy_appender *w)
{
    size_t align = w->cap >= HUGE ? HUGE : BLOCK;
    if (posix_memalign((void **)&w->spare, align, w->cap) != 0) {
        w->spare = NULL;
        return -1;
    }
    if (align == HUGE)
        madvise(w->spare, w->cap, MADV_HUGEPAGE);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->th, NULL, writer_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w->spare);
        w->spare = NULL;
        return -1;
    }
    w->th_on = 1;
    return 0;
}

/* Waits for the write in flight (in w->spare) to end and counts it
 * written; a refused write is done again here, through app_pwrite (which
 * turns direct I/O off when that is the cause). -1 with errno set. */
static int writer_wait(dp_npy_appender *w)
{
    if (!w->th_on)
        return 0;
    pthread_mutex_lock(&w->mu);
    while (w->job)
        pthread_cond_wait(&w->cv, &w->mu);
    int done = w->job_done, err = w->job_err;
    w->job_done = w->job_err = 0;
    pthread_mutex_unlock(&w->mu);
    if (!done)
        return 0;
    if (err && app_pwrite(w, w->spare, w->job_n, w->job_off) != 0)
        return -1;
    if (w->job_off + w->job_n > w->written)
        w->written = w->job_off + w->job_n;
    return 0;
}

/* Ends the writer thread (after its write in flight). */
static void writer_stop(dp_npy_appender *w)
{
    if (!w->th_on)
        return;
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->spare);
    w->spare = NULL;
    w->th_on = 0;
}

/* Hands the first `whole` bytes of the buffer to the writer thread and
 * goes on in the other buffer, which starts with the rest. */
static int drain_async(dp_npy_appender *w, size_t whole)
{
    if (writer_wait(w) != 0)
        return -1;
    size_t left = w->n - whole;
    memcpy(w->spare, w->buf + whole, left);
    uint8_t *full = w->buf;
    w->buf = w->spare;
    w->spare = full;
    pthread_mutex_lock(&w->mu);
    w->job_n = whole;
    w->job_off = w->off;
    w->job = full;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    w->off += whole;
    w->n = left;
    return 0;
}

/* Writes out the whole blocks of the buffer and keeps the rest (under
 * buffered I/O: everything); with write-behind the write is only started. */
static int app_drain(dp_npy_appender *w)
{
    size_t whole = w->direct ? (size_t)round_down(w->n) : w->n;
    if (whole == 0)
        return 0;
    if (w->async && !w->th_on && writer_start(w) != 0)
        w->async = 0;
    if (w->async)
        return drain_async(w, whole);
    /* the part of the buffer already written by a flush is written again:
     * it is at most one block */
    if (app_pwrite(w, w->buf, whole, w->off) != 0)
        return -1;
    if (w->off + whole > w->written)
        w->written = w->off + whole;
    size_t left = w->n - whole;
    if (left) {
        if (!w->direct) { /* a direct write was refused on the way: write it all */
            if (app_pwrite(w, w->buf + whole, left, w->off + whole) != 0)
                return -1;
            w->written = w->off + w->n;
            w->off += w->n;
            w->n = 0;
            return 0;
        }
        memmove(w->buf, w->buf + whole, left);
    }
    w->off += whole;
    w->n = left;
    return 0;
}

uint8_t *dp_npy_append_row(dp_npy_appender *w, char *errbuf)
{
    if (w->cap - w->n < w->row_bytes && app_drain(w) != 0) {
        dp_errno(errbuf, "%s: write failed", w->tmp);
        return NULL;
    }
    uint8_t *p = w->buf + w->n;
    w->n += w->row_bytes;
    w->rows++;
    return p;
}

int dp_npy_append(dp_npy_appender *w, const void *rows, size_t nrows, char *errbuf)
{
    const uint8_t *src = rows;
    size_t left = nrows * w->row_bytes;
    while (left) {
        if (w->n == w->cap && app_drain(w) != 0)
            return dp_errno(errbuf, "%s: write failed", w->tmp);
        size_t k = w->cap - w->n < left ? w->cap - w->n : left;
        memcpy(w->buf + w->n, src, k);
        w->n += k;
        src += k;
        left -= k;
    }
    w->rows += nrows;
    return 0;
}

int dp_npy_append_flush(dp_npy_appender *w, char *errbuf)
{
    if (app_drain(w) != 0 || writer_wait(w) != 0)
        return dp_errno(errbuf, "%s: write failed", w->tmp);
    if (w->n == 0)
        return 0;
    /* direct: the partial block, padded to a whole one, stays in the buffer */
    size_t padded = (w->n + BLOCK - 1) / BLOCK * BLOCK;
    memset(w->buf + w->n, 0, padded - w->n);
    if (app_pwrite(w, w->buf, padded, w->off) != 0)
        return dp_errno(errbuf, "%s: write failed", w->tmp);
    w->written = w->off + w->n;
    return 0;
}

uint64_t dp_npy_append_rows_written(const dp_npy_appender *w)
{
    if (w->written <= w->hsize)
        return 0;
    uint64_t r = (w->written - w->hsize) / w->row_bytes;
    return r < w->rows ? r : w->rows;
}

int dp_npy_append_finish(dp_npy_appender *w, char *errbuf)
{
    if (w->finished)
        return 0;
    int rc = dp_npy_append_flush(w, errbuf);
    uint64_t end = w->hsize + w->rows * w->row_bytes;
    if (rc == 0 && ftruncate(w->fd, (off_t)end) != 0)
        rc = dp_errno(errbuf, "%s: cannot truncate", w->tmp);
    if (rc == 0 && w->direct) { /* the header is not a whole block */
        int fl = fcntl(w->fd, F_GETFL);
        if (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) != 0)
            rc = dp_errno(errbuf, "%s: cannot turn direct I/O off", w->tmp);
        w->direct = 0;
    }
    /* the rows are durable before any header says how many there are */
    if (rc == 0 && fsync(w->fd) != 0 && errno != EINVAL)
        rc = dp_errno(errbuf, "%s: fsync failed", w->tmp);
    w->finished = rc == 0;
    return rc;
}

int dp_npy_append_final_header(dp_npy_appender *w, char *errbuf)
{
    int rc = dp_npy_append_finish(w, errbuf);
    char *h = rc == 0 ? malloc(w->hsize) : NULL;
    if (rc == 0 && !h)
        rc = dp_err(errbuf, "%s: out of memory", w->tmp);
    if (rc == 0 && dp_npy_format_header(h, w->descr, w->rows, w->ncols, w->hsize) != 0)
        rc = dp_err(errbuf, "%s: cannot finish npy header", w->tmp);
    if (rc == 0 && app_pwrite(w, (const uint8_t *)h, w->hsize, 0) != 0)
        rc = dp_errno(errbuf, "%s: cannot finish npy header", w->tmp);
    if (rc == 0 && fsync(w->fd) != 0 && errno != EINVAL)
        rc = dp_errno(errbuf, "%s: fsync failed", w->tmp);
    free(h);
    return rc;
}

/* The finished temp file's bytes to path through dp_afile (a symlink's
 * target replaced atomically, a FIFO or device written through), then the
 * temp file removed. */
static int copy_through(const char *tmp, const char *path, char *errbuf)
{
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dp_errno(errbuf, "%s: cannot read", tmp);
    dp_afile af;
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    int rc = buf ? dp_afile_open(&af, path, errbuf) : dp_err(errbuf, "%s: out of memory", path);
    ssize_t n = 0;
    while (rc == 0 && (n = read(fd, buf, cap)) > 0)
        if (fwrite(buf, 1, (size_t)n, af.f) != (size_t)n)
            rc = dp_errno(errbuf, "%s: write failed", path);
    if (rc == 0 && n < 0)
        rc = dp_errno(errbuf, "%s: read failed", tmp);
    close(fd);
    free(buf);
    if (rc == 0)
        rc = dp_afile_commit(&af, errbuf);
    else if (buf && af.f)
        dp_afile_abort(&af);
    if (rc == 0 && unlink(tmp) != 0)
        rc = dp_errno(errbuf, "%s: cannot remove", tmp);
    return rc;
}

int dp_npy_append_commit(dp_npy_appender *w, const char *path, char *errbuf)
{
    int rc = dp_npy_append_final_header(w, errbuf);
    if (rc == 0 && close(w->fd) != 0)
        rc = dp_errno(errbuf, "%s: close failed", w->tmp);
    else if (rc != 0)
        close(w->fd);
    w->fd = -1;
    struct stat st; /* a symlink, FIFO or device at path is written through, as by dp_afile */
    int through = lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
    if (rc == 0)
        rc = through ? copy_through(w->tmp, path, errbuf) : dp_rename_durable(w->tmp, path, errbuf);
    dp_npy_append_close(w);
    return rc;
}

void dp_npy_append_close(dp_npy_appender *w)
{
    writer_stop(w); /* its write in flight ends first */
    if (w->fd >= 0)
        close(w->fd);
    free(w->buf);
    free(w->tmp);
    memset(w, 0, sizeof *w);
    w->fd = -1;
}
