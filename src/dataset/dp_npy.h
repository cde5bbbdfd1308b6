/* dp_npy: NumPy .npy files (format 1.0), written streaming and read by mmap.
 *
 * Files written here load with numpy alone: numpy.load(path, mmap_mode='r').
 * The writer does not need the row count up front: it reserves a fixed
 * 128-byte header, streams rows, then rewrites the header with the final
 * shape and renames the temp file into place (atomic, see dp_afile).
 */
#ifndef DP_NPY_H
#define DP_NPY_H

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
} dp_npy_writer;

/* Opens PATH for writing an array of rows. descr is a numpy dtype literal
 * (one of DP_NPY_* or a structured list such as "[('a', '<u4')]"); itemsize
 * its size in bytes; ncols 0 for shape [N], else shape [N, ncols]. */
int dp_npy_writer_open(dp_npy_writer *w, const char *path, const char *descr,
                       size_t itemsize, size_t ncols, char *errbuf);
/* Appends nrows rows (nrows * row_bytes bytes). */
int dp_npy_write(dp_npy_writer *w, const void *rows, size_t nrows, char *errbuf);
/* Writes the final header and renames the file into place. */
int dp_npy_writer_commit(dp_npy_writer *w, char *errbuf);
/* Drops the temp file. Safe after a failed open or commit. */
void dp_npy_writer_abort(dp_npy_writer *w);

/* Writes a whole in-memory array at once (atomic). */
int dp_npy_save(const char *path, const char *descr, size_t itemsize,
                size_t ncols, const void *data, uint64_t rows, char *errbuf);

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
