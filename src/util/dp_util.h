/* dp_util: errors, atomic output files, a seeded RNG, progress lines.
 *
 * Error convention (as libpcap): a function that can fail takes a
 * `char *errbuf` of DP_ERRBUF_SIZE bytes, returns -1 (or NULL) on failure
 * and leaves a one-line message there that names the file and what is wrong.
 */
#ifndef DP_UTIL_H
#define DP_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DP_ERRBUF_SIZE 512

/* Formats a message into errbuf (may be NULL). Always returns -1 so that
 * callers can write `return dp_err(errbuf, "...")`. */
int dp_err(char *errbuf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like dp_err, appending ": strerror(errno)". */
int dp_errno(char *errbuf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- atomic output files -------------------------------------------------
 * dp_afile_open creates PATH.tmp.<pid>; dp_afile_commit flushes, fsyncs and
 * renames it over PATH; dp_afile_abort removes it. A crash at any point
 * leaves either the old PATH or the new one, never a half-written file. */
typedef struct dp_afile {
    FILE *f;
    char *path;
    char *tmp;
} dp_afile;

int dp_afile_open(dp_afile *af, const char *path, char *errbuf);
int dp_afile_commit(dp_afile *af, char *errbuf);
void dp_afile_abort(dp_afile *af);

/* Writes a whole buffer atomically to path. */
int dp_write_file_atomic(const char *path, const void *buf, size_t n, char *errbuf);

/* Creates a directory and its parents (mkdir -p). */
int dp_mkdirs(const char *path, char *errbuf);

/* Joins a directory and a name into a malloc'd string. */
char *dp_path_join(const char *dir, const char *name);

/* Reads a whole file into a malloc'd, NUL-terminated buffer. */
char *dp_read_file(const char *path, size_t *len, char *errbuf);

/* ---- seeded random numbers ------------------------------------------------
 * xoshiro256** seeded through splitmix64: fast, reproducible on every
 * platform for a given seed. Not for cryptography. */
typedef struct dp_rng {
    uint64_t s[4];
} dp_rng;

void dp_rng_seed(dp_rng *r, uint64_t seed);
uint64_t dp_rng_u64(dp_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double dp_rng_double(dp_rng *r);
/* Uniform in [0, 1) as float (24 random bits). */
float dp_rng_float(dp_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t dp_rng_below(dp_rng *r, uint64_t n);
/* Standard normal (Box-Muller). */
double dp_rng_normal(dp_rng *r);
/* Fisher-Yates shuffle of n uint32 / uint64 indices. */
void dp_rng_shuffle_u32(dp_rng *r, uint32_t *a, size_t n);
void dp_rng_shuffle_u64(dp_rng *r, uint64_t *a, size_t n);

/* ---- time and progress ---------------------------------------------------- */
/* Monotonic seconds. */
double dp_now(void);

/* A progress line on stderr, redrawn at most every `interval` seconds when
 * stderr is a terminal, printed as plain lines every 10 s otherwise (logs).
 * dp_progress_done ends the line. */
typedef struct dp_progress {
    double start, last;
    int tty;
    int printed;
} dp_progress;

void dp_progress_init(dp_progress *p);
/* Returns 1 when the caller should print now (and records the time). */
int dp_progress_due(dp_progress *p);
void dp_progress_print(dp_progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void dp_progress_done(dp_progress *p);

/* Number of online CPUs (at least 1). */
int dp_ncpu(void);

/* Peak resident set size of this process in bytes (0 if unknown). */
size_t dp_peak_rss(void);

/* Writes s (NULL: empty) to f as a JSON string literal, quotes included,
 * escaping quotes, backslashes and control characters. The output is always
 * valid UTF-8: each byte that does not belong to a well-formed UTF-8
 * sequence (a file name in Latin-1, say) becomes \ufffd, the replacement
 * character (lossy: the raw name stays in files.tsv). */
void dp_json_str(FILE *f, const char *s);

/* Writes v with the printf format fmt (one double), or null when v is NaN
 * or infinite: JSON has no spelling for those. */
void dp_json_num(FILE *f, const char *fmt, double v);

/* The splitmix64 finaliser: a fast, well-mixing bijection on 64 bits, for
 * hash tables and ids (not for cryptography). */
static inline uint64_t dp_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* FNV-1a 64-bit hash, for checksums and flow keys. */
uint64_t dp_fnv1a(const void *data, size_t n, uint64_t h);
#define DP_FNV_INIT 0xcbf29ce484222325ULL

#endif
