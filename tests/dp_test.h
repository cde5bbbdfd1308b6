/* dp_test: a tiny test harness. Each tests/test_*.c is one binary; its
 * main() calls DP_RUN(fn) per test and ends with `return dp_test_end();`,
 * which prints "<binary>: N passed, N failed, N skipped". A check that
 * fails prints file:line and what differed, and marks the test failed.
 */
#ifndef DP_TEST_H
#define DP_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int dp_test_failed_now, dp_test_skipped_now;
extern int dp_test_pass, dp_test_fail, dp_test_skip;
extern const char *dp_test_prog;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            dp_test_failed_now = 1;                                              \
        }                                                                        \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                       \
    do {                                                                         \
        long long _a = (long long)(a), _b = (long long)(b);                      \
        if (_a != _b) {                                                          \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n",        \
                    __FILE__, __LINE__, #a, _a, #b, _b);                         \
            dp_test_failed_now = 1;                                              \
        }                                                                        \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                          \
    do {                                                                         \
        const char *_h = (hay), *_n = (needle);                                  \
        if (!_h || !strstr(_h, _n)) {                                            \
            fprintf(stderr, "  %s:%d: \"%s\" does not contain \"%s\"\n",         \
                    __FILE__, __LINE__, _h ? _h : "(null)", _n);                 \
            dp_test_failed_now = 1;                                              \
        }                                                                        \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                    \
    do {                                                                         \
        double _a = (a), _b = (b);                                               \
        if (!(fabs(_a - _b) <= (tol))) {                                         \
            fprintf(stderr, "  %s:%d: %s = %.9g, expected %.9g (tol %g)\n",      \
                    __FILE__, __LINE__, #a, _a, _b, (double)(tol));              \
            dp_test_failed_now = 1;                                              \
        }                                                                        \
    } while (0)

/* Marks the current test skipped (with a reason) and returns from it. */
#define SKIP(...)                                                                \
    do {                                                                         \
        fprintf(stderr, "  skipped: ");                                          \
        fprintf(stderr, __VA_ARGS__);                                            \
        fprintf(stderr, "\n");                                                   \
        dp_test_skipped_now = 1;                                                 \
        return;                                                                  \
    } while (0)

void dp_test_run(const char *name, void (*fn)(void));
int dp_test_end(void);
#define DP_RUN(fn) dp_test_run(#fn, fn)

/* Path of ../shared/data/<rel> if it exists (else NULL): tests that need the
 * shared corpora SKIP when it is absent. Looked up from $DP_SHARED_DATA, then
 * ../shared/data relative to the repository root. Returns a static buffer. */
const char *dp_test_shared(const char *rel);
/* A fresh empty temporary directory (removed by dp_test_end). */
const char *dp_test_tmpdir(void);
/* dp_test_tmpdir()/name, in one of 8 static buffers used in turn (so a
 * call's result lasts for the next 7 calls). */
const char *dp_test_path(const char *name);
/* Runs a shell command: its exit status, -1 if it did not exit. */
int dp_test_system(const char *cmd);
/* Writes a split folder DIR (created): vectors.npy [n, 1500], labels.npy,
 * meta.npy (unless meta is NULL; rows are dp_meta, 66 bytes each) and
 * classes.tsv (its text). 0, or -1 with the message on stderr. */
int dp_test_write_split(const char *dir, const void *vectors, const int16_t *labels, const void *meta, size_t n,
                        const char *classes_tsv);
/* 0 when path starts as a PNG file (signature, IHDR chunk), with its size
 * in *w x *h; -1 when it cannot be read or is no PNG. */
int dp_test_png_size(const char *path, int *w, int *h);
/* The whole file, malloc'd (caller frees), its length in *n; NULL when it
 * cannot be read. */
uint8_t *dp_test_read_file(const char *path, size_t *n);
/* Largest |a[i] - b[i]| over n floats, in double. */
double dp_test_max_abs_diff(const float *a, const float *b, size_t n);
/* 1 when both files can be read and hold the same bytes. */
int dp_test_same_file(const char *a, const char *b);
/* 1 when the eight files of two preprocessed datasets (arrays, files.tsv,
 * labels.tsv, summary.md, summary.json) are the same, byte for byte; names
 * each one that differs on stderr. */
int dp_test_same_dataset(const char *d1, const char *d2);
/* Entries of DATASET/.parts whose name ends with ext (".part", ".partial"):
 * what an unfinished preprocess left there; 0 when there is no such folder. */
int dp_test_count_parts(const char *dataset, const char *ext);

/* The reading end of a FIFO that a writer under test writes through:
 * dp_test_copy_fifo (a pthread start routine, arg a dp_test_fifo_copy)
 * copies everything read from fifo into file; n is the byte count, -1 when
 * it could not. */
typedef struct dp_test_fifo_copy {
    const char *fifo, *file;
    long n;
} dp_test_fifo_copy;
void *dp_test_copy_fifo(void *arg);

/* Runs a shell command (popen); returns its exit status (-1 when it did not
 * exit) and its stdout, NUL-terminated, in out[cap]. */
int dp_test_sh(const char *cmd, char *out, size_t cap);
/* $BUILD/deeppacket (default build/deeppacket) when it is executable, else
 * NULL: command-level checks skip without it. Returns a static buffer. */
const char *dp_test_cli(void);

#endif
