/* dp_npy: writing .npy arrays: the headers and the one-shot writer; the
 * resumable appender (direct I/O, write-behind) is dp_npy_append.c, the
 * reader dp_npy_read.c. */
#include "dataset/dp_npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_HEADER_LEN 128 /* fixed: magic(6) ver(2) hlen(2) dict, padded */

/* Formats the 128-byte header for the given shape into out. */
static int npy_header(char out[NPY_HEADER_LEN], const char *descr, uint64_t rows,
                      size_t ncols)
{
    char dict[NPY_HEADER_LEN];
    int n;
    if (ncols)
        n = snprintf(dict, sizeof dict, "{'descr': %s, 'fortran_order': False, 'shape': (%llu, %zu), }",
                     descr, (unsigned long long)rows, ncols);
    else
        n = snprintf(dict, sizeof dict, "{'descr': %s, 'fortran_order': False, 'shape': (%llu,), }",
                     descr, (unsigned long long)rows);
    if (n < 0 || n + 10 + 1 > NPY_HEADER_LEN)
        return -1;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    uint16_t hlen = NPY_HEADER_LEN - 10;
    out[8] = (char)(hlen & 0xff);
    out[9] = (char)(hlen >> 8);
    memset(out + 10, ' ', NPY_HEADER_LEN - 10);
    memcpy(out + 10, dict, (size_t)n);
    out[NPY_HEADER_LEN - 1] = '\n';
    return 0;
}

static int npy_header_big(char **out, size_t *len, const char *descr, uint64_t rows, size_t ncols)
{
    /* for long structured descrs: header rounded up to a multiple of 64 */
    size_t dl = strlen(descr) + 128;
    char *dict = malloc(dl);
    if (!dict)
        return -1;
    int n = ncols ? snprintf(dict, dl, "{'descr': %s, 'fortran_order': False, 'shape': (%llu, %zu), }",
                             descr, (unsigned long long)rows, ncols)
                  : snprintf(dict, dl, "{'descr': %s, 'fortran_order': False, 'shape': (%llu,), }",
                             descr, (unsigned long long)rows);
    if (n < 0 || (size_t)n >= dl) { /* glibc's snprintf fails when out of memory */
        free(dict);
        return -1;
    }
    /* reserve room for the row count to grow to 20 digits */
    size_t total = 10 + (size_t)n + 24 + 1;
    total = (total + 63) / 64 * 64;
    if (total - 10 > 65535) {
        free(dict);
        return -1;
    }
    char *h = malloc(total);
    if (!h) {
        free(dict);
        return -1;
    }
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    uint16_t hlen = (uint16_t)(total - 10);
    h[8] = (char)(hlen & 0xff);
    h[9] = (char)(hlen >> 8);
    memset(h + 10, ' ', total - 10);
    memcpy(h + 10, dict, (size_t)n);
    h[total - 1] = '\n';
    free(dict);
    *out = h;
    *len = total;
    return 0;
}

/* The header size for this descr: fixed 128 for short descrs, else larger. */
static size_t header_size(const char *descr)
{
    char tmp[NPY_HEADER_LEN];
    if (npy_header(tmp, descr, UINT64_MAX / 2, 99999) == 0)
        return NPY_HEADER_LEN;
    char *h;
    size_t len;
    if (npy_header_big(&h, &len, descr, UINT64_MAX / 2, 99999) != 0)
        return 0;
    free(h);
    return len;
}

/* Formats the header for `rows` rows into out[want] (want from header_size;
 * -1 when the header does not fit in it, or out of memory). */
int dp_npy_format_header(char *out, const char *descr, uint64_t rows, size_t ncols, size_t want)
{
    if (want < NPY_HEADER_LEN)
        return -1;
    if (want == NPY_HEADER_LEN)
        return npy_header(out, descr, rows, ncols);
    char *h;
    size_t len;
    if (npy_header_big(&h, &len, descr, rows, ncols) != 0)
        return -1;
    /* keep the reserved size: pad the dict part with spaces */
    memset(out, ' ', want);
    memcpy(out, h, 10);
    size_t dictlen = strchr(h + 10, '}') - (h + 10) + 1;
    if (10 + dictlen + 1 > want) {
        free(h);
        return -1;
    }
    memcpy(out + 10, h + 10, dictlen);
    out[8] = (char)((want - 10) & 0xff);
    out[9] = (char)((want - 10) >> 8);
    out[want - 1] = '\n';
    free(h);
    return 0;
}

static int write_header(FILE *f, const char *descr, uint64_t rows, size_t ncols, size_t want)
{
    char *buf = want ? malloc(want) : NULL; /* want 0: header_size ran out of memory */
    if (!buf)
        return -1;
    int rc = dp_npy_format_header(buf, descr, rows, ncols, want) == 0 &&
                     fwrite(buf, 1, want, f) == want
                 ? 0
                 : -1;
    free(buf);
    return rc;
}

/* Opens PATH and writes the header: the final one when the row count is
 * known (expect >= 0), else an in-progress one that the commit rewrites in
 * place, which a target written through (a FIFO, a device, standard
 * output: nothing to seek back on) cannot take: refused before any byte. */
static int writer_open(dp_npy_writer *w, const char *path, const char *descr, size_t itemsize, size_t ncols,
                       int64_t expect, char *errbuf)
{
    memset(w, 0, sizeof *w);
    if (strlen(descr) >= sizeof w->descr)
        return dp_err(errbuf, "%s: dtype description too long", path);
    strcpy(w->descr, descr);
    w->ncols = ncols;
    w->row_bytes = itemsize * (ncols ? ncols : 1);
    w->expect = expect;
    if (dp_afile_open(&w->af, path, errbuf) != 0)
        return -1;
    if (expect < 0 && w->af.through) {
        dp_err(errbuf, "%s: is written through (a FIFO, a device or standard output): an .npy array "
                       "of rows not counted in advance cannot be written there", path);
        dp_afile_abort(&w->af);
        return -1;
    }
    size_t hs = header_size(descr);
    if (hs == 0 || write_header(w->af.f, descr, expect < 0 ? 0 : (uint64_t)expect, ncols, hs) != 0) {
        dp_err(errbuf, "%s: cannot write npy header", path);
        dp_afile_abort(&w->af);
        return -1;
    }
    return 0;
}

int dp_npy_writer_open(dp_npy_writer *w, const char *path, const char *descr,
                       size_t itemsize, size_t ncols, char *errbuf)
{
    return writer_open(w, path, descr, itemsize, ncols, -1, errbuf);
}

int dp_npy_writer_open_rows(dp_npy_writer *w, const char *path, const char *descr, size_t itemsize,
                            size_t ncols, uint64_t rows, char *errbuf)
{
    if (rows > (uint64_t)INT64_MAX)
        return dp_err(errbuf, "%s: too many rows", path);
    return writer_open(w, path, descr, itemsize, ncols, (int64_t)rows, errbuf);
}

int dp_npy_write(dp_npy_writer *w, const void *rows, size_t nrows, char *errbuf)
{
    if (w->expect >= 0 && nrows > (uint64_t)w->expect - w->rows)
        return dp_err(errbuf, "%s: more rows than the %lld of its header", w->af.path, (long long)w->expect);
    size_t n = nrows * w->row_bytes;
    if (n && fwrite(rows, 1, n, w->af.f) != n)
        return dp_errno(errbuf, "%s: write failed", w->af.path);
    w->rows += nrows;
    return 0;
}

int dp_npy_writer_commit(dp_npy_writer *w, char *errbuf)
{
    if (w->expect >= 0) { /* the header written at open is final */
        if (w->rows != (uint64_t)w->expect) {
            dp_err(errbuf, "%s: %llu rows written, its header says %lld", w->af.path,
                   (unsigned long long)w->rows, (long long)w->expect);
            dp_afile_abort(&w->af);
            return -1;
        }
        return dp_afile_commit(&w->af, errbuf);
    }
    size_t hs = header_size(w->descr);
    if (fflush(w->af.f) != 0 || fseek(w->af.f, 0, SEEK_SET) != 0 ||
        write_header(w->af.f, w->descr, w->rows, w->ncols, hs) != 0) {
        dp_errno(errbuf, "%s: cannot finish npy header", w->af.path);
        dp_afile_abort(&w->af);
        return -1;
    }
    return dp_afile_commit(&w->af, errbuf);
}

void dp_npy_writer_abort(dp_npy_writer *w)
{
    if (w->af.path || w->af.f)
        dp_afile_abort(&w->af);
}

int dp_npy_save(const char *path, const char *descr, size_t itemsize,
                size_t ncols, const void *data, uint64_t rows, char *errbuf)
{
    dp_npy_writer w;
    if (dp_npy_writer_open_rows(&w, path, descr, itemsize, ncols, rows, errbuf) != 0)
        return -1;
    if (dp_npy_write(&w, data, rows, errbuf) != 0) {
        dp_npy_writer_abort(&w);
        return -1;
    }
    return dp_npy_writer_commit(&w, errbuf);
}

size_t dp_npy_header_size(const char *descr) { return header_size(descr); }
