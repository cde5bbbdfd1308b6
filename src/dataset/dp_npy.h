/* dp_npy: NumPy .npy files (format 1.0), written streaming and read by mmap.
 *
 * Files written here load with numpy alone: numpy.load(path, mmap_mode='r').
 * The writer does not need the row count up front: it reserves a fixed
 * 128-byte header, streams rows, then rewrites the header with the final
 * shape and renames the temp file into place (atomic, see dp_afile). A
 * target written through (a FIFO, a device, standard output) cannot be
 * rewritten: it takes only arrays whose row count is given at open
 * (dp_npy_writer_open_rows, dp_npy_save), whose final header goes first.
 */
#ifndef DP_NPY_H
#define DP_NPY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "util/dp_util.h"

/* Common dtype descriptors, as Python literals. */
#define DP_NPY_U1 "'|u1'"
#define DP_NPY_I2 "'<i2'"
#define DP_NPY_I4 "'<i4'"
#define DP_NPY_U4 "'<u4'"
#define DP_NPY_I8 "'<i8'"
#define DP_NPY_U8 "'<u8'"
#define DP_NPY_F4 "'<f4'"
#define DP_NPY_F8 "'<f8'"

typedef struct dp_npy_writer {
    dp_afile af;
    char descr[512];
    size_t row_bytes;   /* bytes per row = itemsize * max(ncols, 1) */
    size_t ncols;       /* 0 for a 1-D array */
    uint64_t rows;
    int64_t expect;     /* rows its header announces (open_rows); -1: counted at commit */
} dp_npy_writer;

/* Opens PATH for writing an array of rows, counted as they come. descr is a
 * numpy dtype literal (one of DP_NPY_* or a structured list such as
 * "[('a', '<u4')]"); itemsize its size in bytes; ncols 0 for shape [N],
 * else shape [N, ncols]. Fails (writing nothing) when PATH is written
 * through (a FIFO, a device, "-"): its header could not be rewritten. */
int dp_npy_writer_open(dp_npy_writer *w, const char *path, const char *descr,
                       size_t itemsize, size_t ncols, char *errbuf);
/* The same for exactly `rows` rows: the final header is written first, so
 * that any target (also a FIFO or standard output) gets a whole .npy file;
 * more rows fail at dp_npy_write, fewer at the commit. */
int dp_npy_writer_open_rows(dp_npy_writer *w, const char *path, const char *descr, size_t itemsize,
                            size_t ncols, uint64_t rows, char *errbuf);
/* Appends nrows rows (nrows * row_bytes bytes). */
int dp_npy_write(dp_npy_writer *w, const void *rows, size_t nrows, char *errbuf);
/* Writes the final header (open_rows: checks the row count instead) and
 * renames the file into place; the writer is closed either way. */
int dp_npy_writer_commit(dp_npy_writer *w, char *errbuf);
/* Drops the temp file. Safe after a failed open or commit. */
void dp_npy_writer_abort(dp_npy_writer *w);

/* Writes a whole in-memory array at once (atomic; through a FIFO, a device
 * or "-" as one whole .npy stream). */
int dp_npy_save(const char *path, const char *descr, size_t itemsize,
                size_t ncols, const void *data, uint64_t rows, char *errbuf);

/* The header of a file of `rows` rows into out[want], want from
 * dp_npy_header_size(descr) (the appender rewrites it in place); 0, or -1
 * when the shape does not fit. */
int dp_npy_format_header(char *out, const char *descr, uint64_t rows, size_t ncols, size_t want);

/* Bytes before the first row of a file written here for this descr (128
 * for short descrs); 0 when the descr is too long for a header. */
size_t dp_npy_header_size(const char *descr);

/* An appender: a .npy file built in a temp file with a fixed name, that a
 * later run can reopen and go on appending to (resume), then commit to its
 * final name. Rows go through an aligned buffer and leave in big writes;
 * with direct I/O (O_DIRECT, where the file system takes it) they bypass
 * the page cache: the CPU does not copy them and the kernel does not track
 * them as dirty pages. The file is the same either way: the 128-byte (or
 * larger, see dp_npy_writer) header, then the rows. */
typedef struct dp_npy_appender {
    int fd;
    int direct;         /* 1 while O_DIRECT is on */
    char *tmp;          /* the temp file */
    char descr[512];
    size_t ncols, row_bytes, hsize;
    uint64_t rows;      /* rows appended, resumed ones included */
    uint8_t *buf;       /* cap bytes, 4096-aligned; buf[0] is at file offset off */
    size_t cap, n;
    uint64_t off;       /* file offset of buf[0] (4096-aligned when direct) */
    uint64_t written;   /* bytes of the file written from the buffer (durable
                         * against a crash of the process) */
    int finished;       /* dp_npy_append_finish done */
    /* write-behind (DP_NPY_ASYNC): a full buffer is written by a thread
     * while the caller fills the other one */
    int async;
    uint8_t *spare;     /* the other buffer (cap bytes) */
    pthread_t th;
    int th_on;          /* the thread runs */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const uint8_t *job; /* bytes the thread writes (NULL: none), under mu */
    size_t job_n;
    uint64_t job_off;
    int job_done, job_err, quit; /* under mu */
} dp_npy_appender;

#define DP_NPY_DIRECT 1 /* flag: try O_DIRECT (falls back to buffered I/O) */
#define DP_NPY_ASYNC 2  /* flag: write-behind: each full buffer is written by
                         * a thread of the appender while rows go into a second
                         * buffer, so the caller does not wait for the disk
                         * (one write in flight; twice the buffer memory). The
                         * file is the same; rows_written counts a row once
                         * its write has completed. */

/* Opens TMP for appending rows of the given descr/itemsize/ncols (as
 * dp_npy_writer_open). rows 0: creates (or truncates) TMP with an empty
 * header. rows > 0: resumes TMP, which must hold the header and at least
 * that many rows (longer is cut back to exactly that many). bufsize is the
 * buffer size (rounded up to 4096, at least 2 rows and one block). Fails
 * with a message naming TMP. */
int dp_npy_append_open(dp_npy_appender *w, const char *tmp, const char *descr,
                       size_t itemsize, size_t ncols, uint64_t rows, size_t bufsize,
                       int flags, char *errbuf);
/* Returns room for one more row in the buffer (row_bytes bytes, to be filled
 * by the caller), writing out whole blocks first when the buffer is full;
 * NULL with a message on a write error. The row counts from this call on. */
uint8_t *dp_npy_append_row(dp_npy_appender *w, char *errbuf);
/* Appends nrows rows. */
int dp_npy_append(dp_npy_appender *w, const void *rows, size_t nrows, char *errbuf);
/* Writes every buffered byte to the file (a partial last block padded with
 * zeros under direct I/O; the padding is cut at commit or resume), so that
 * all rows so far survive a crash of the process. */
int dp_npy_append_flush(dp_npy_appender *w, char *errbuf);
/* Rows whose bytes are all in the file (not only in the buffer). */
uint64_t dp_npy_append_rows_written(const dp_npy_appender *w);
/* The commit in steps, so that a crash in between loses nothing:
 * finish flushes, cuts the file to its exact size and fsyncs it (the header
 * still the in-progress one: a resume takes the file as it is); then
 * final_header writes the header with the row count and fsyncs (a resume
 * also accepts this header on a file cut to its rows, and puts the
 * in-progress one back); commit does what is left of both, then renames TMP
 * to PATH and fsyncs the folder (a symlink, FIFO or device at PATH is
 * written through as dp_afile does: TMP's bytes copied, TMP removed); it
 * closes the appender either way. No row may be appended after finish. */
int dp_npy_append_finish(dp_npy_appender *w, char *errbuf);
int dp_npy_append_final_header(dp_npy_appender *w, char *errbuf);
int dp_npy_append_commit(dp_npy_appender *w, const char *path, char *errbuf);
/* Closes without committing; TMP stays for a later resume. Safe on a zeroed
 * or already closed appender. */
void dp_npy_append_close(dp_npy_appender *w);

/* A read-only memory-mapped .npy file. */
typedef struct dp_npy {
    void *map;
    size_t map_len;
    const uint8_t *data;  /* first byte of the array */
    char descr[512];      /* the descr literal as written in the header */
    int ndim;             /* 1 or 2 */
    uint64_t shape[2];    /* shape[1] is 1 when ndim == 1 */
} dp_npy;

/* Maps PATH and parses its header. Fails with a message on a bad magic, a
 * header it cannot parse, Fortran order, more than 2 dimensions. */
int dp_npy_open(dp_npy *a, const char *path, char *errbuf);
/* Checks that the array has the given descr, itemsize and ncols (0: 1-D)
 * and that the file holds all shape[0] rows. */
int dp_npy_expect(const dp_npy *a, const char *path, const char *descr,
                  size_t itemsize, size_t ncols, char *errbuf);
void dp_npy_close(dp_npy *a);

#endif
