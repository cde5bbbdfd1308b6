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
 * escaping quotes, backslashes and control characters. */
void dp_json_str(FILE *f, const char *s);

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

/* ---- named bit sets (--mask, --features) ---------------------------------
 * names[i] is bit i; aliases[j] (e.g. "all") stands for alias_bits[j].
 * dp_bits_parse reads a comma-separated list of names and aliases into *out
 * (unchanged on error): -1 + "OPT: unknown field 'x' (valid: ...)" for an
 * unknown or empty item or an empty list. dp_bits_name writes the bits'
 * names in bit order joined by commas, or `zero` for none; returns buf. */
int dp_bits_parse(const char *opt, const char *list, const char *const *names, int nnames,
                  const char *const *aliases, const uint32_t *alias_bits, int naliases, uint32_t *out,
                  char *errbuf);
char *dp_bits_name(uint32_t bits, const char *const *names, int nnames, const char *zero, char *buf,
                   size_t n);

/* FNV-1a 64-bit hash, for checksums and flow keys. */
uint64_t dp_fnv1a(const void *data, size_t n, uint64_t h);
#define DP_FNV_INIT 0xcbf29ce484222325ULL

#endif
