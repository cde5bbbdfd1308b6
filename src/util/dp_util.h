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

/* 1 when errno value e says the machine ran out of something (ENOMEM,
 * EMFILE, ENFILE) rather than that a file is bad: a failure to stop on,
 * never a per-file skip (the run would look complete without the file). */
int dp_errno_exhausted(int e);

/* write(2) of all n bytes of p to fd, EINTR and short writes retried: 0,
 * or -1 with errno set. */
int dp_write_full(int fd, const void *p, size_t n);

/* open_memstream(3) that fails instead of losing bytes: glibc's memstream
 * drops what it cannot grow its buffer for, and neither ferror nor fclose
 * says so. Writes go to a malloc'd buffer (*buf, *len set at
 * dp_memstream_close); a write that cannot grow it fails (ENOMEM) and sets
 * the stream's error flag. NULL when out of memory. */
FILE *dp_memstream_open(char **buf, size_t *len);
/* Closes a dp_memstream_open stream: 0 when every write went in (*buf
 * NUL-terminated, *len bytes); -1 (errno ENOMEM) when one failed. The
 * caller frees *buf either way. */
int dp_memstream_close(FILE *f);

/* Like dp_err, appending ": strerror(errno)". */
int dp_errno(char *errbuf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- output files ----------------------------------------------------------
 * Every output goes through dp_afile. What is at PATH decides how it is
 * written:
 *  - a regular file or nothing: PATH.tmp.<pid> in the same folder;
 *    dp_afile_commit flushes, fsyncs, renames it over PATH and fsyncs the
 *    folder. A crash at any point leaves the old PATH or the new one, never
 *    a half-written file;
 *  - a symlink: followed (dangling or not); its target is written as above,
 *    the link stays a link;
 *  - "-": standard output, written through (never closed);
 *  - a character or block device, a FIFO or a socket: opened and written
 *    through, never replaced (a FIFO's open waits for a reader);
 *  - a folder: an error.
 * With DP_AFILE_LIVE a regular file is written in place instead (truncated
 * at open): readers see it grow, and after kill -9 what was flushed is in
 * PATH. dp_afile_open also removes stale PATH.tmp.<pid> files of processes
 * that no longer run, and registers its temp file so that
 * dp_tmp_remove_all() (the commands' SIGINT/SIGTERM handler) removes it. */
typedef struct dp_afile {
    FILE *f;
    char *path;   /* the file written (symlinks resolved) */
    char *tmp;    /* the temp file; NULL when written through */
    int through;  /* 0 atomic; 1 written through (special file, "-");
                   * 2 a live regular file written in place */
    int slot;     /* temp registry slot + 1; 0 when none */
} dp_afile;

#define DP_AFILE_LIVE 1

int dp_afile_open(dp_afile *af, const char *path, char *errbuf);
int dp_afile_open_flags(dp_afile *af, const char *path, int flags, char *errbuf);
/* 1 when dp_afile writes PATH through rather than replacing it: "-", or
 * (symlinks followed) a character or block device, a FIFO or a socket. A
 * command keeps no files beside such an output (no lock, checkpoint or
 * curves next to /dev/null). */
int dp_path_written_through(const char *path);
/* Flushes and (regular files) fsyncs and renames into place, fsyncing the
 * folder; a write error anywhere (also on stdout) fails naming the path. */
int dp_afile_commit(dp_afile *af, char *errbuf);
/* Drops the temp file (a file written through stays as written). */
void dp_afile_abort(dp_afile *af);

/* Writes a whole buffer atomically to path. */
int dp_write_file_atomic(const char *path, const void *buf, size_t n, char *errbuf);

/* Resolves symlinks at PATH (at most 40; the last target may not exist)
 * into a malloc'd path; NULL with a message on a loop or out of memory. */
char *dp_resolve_links(const char *path, char *errbuf);

/* fsyncs the folder that holds PATH (so that a rename in it is durable). */
int dp_fsync_parent(const char *path, char *errbuf);
/* The folder part of PATH ("." when it has none, "/" for "/x"), malloc'd;
 * NULL when out of memory. */
char *dp_dir_of(const char *path);
/* rename(from, to) then dp_fsync_parent(to); the message names both. */
int dp_rename_durable(const char *from, const char *to, char *errbuf);

/* Removes, in DIR, every entry named PREFIX.tmp.<pid> (and
 * PREFIX.old.<pid>), file or folder (recursively), whose pid is not a
 * running process. Returns how many it removed. */
int dp_clean_stale_tmp(const char *dir, const char *prefix);
/* Removes a file or a folder tree (rm -rf); 0, or -1 with errno set. */
int dp_remove_tree(const char *path);

/* Recreates the tree at FROM under the new path TO with hard links to its
 * regular files (symlinks copied, folders made, other files left out):
 * TO shares the data and costs no copy. FROM and TO on one file system. */
int dp_link_tree(const char *from, const char *to, char *errbuf);
/* Puts the folder TMP at TARGET in one step: renamed when TARGET does not
 * exist, else exchanged with it (renameat2 RENAME_EXCHANGE) and the old
 * folder removed; the parent folder is fsynced. Until the exchange the old
 * TARGET stays whole. */
int dp_swap_dir_into_place(const char *tmp, const char *target, char *errbuf);

/* Creates DIR (mkdir -p) and checks that a file can be created in it (a
 * real try: permissions do not stop root, a read-only mount does). */
int dp_check_writable_dir(const char *dir, char *errbuf);

/* Temp paths to remove when the process is stopped by a signal: register
 * returns a slot (-1 when full: the path is then only cleaned by a later
 * run), unregister frees it. */
int dp_tmp_register(const char *path);
void dp_tmp_unregister(int slot);
/* Removes every registered path (files and folder trees). */
void dp_tmp_remove_all(void);
/* Called once at the start of a program that writes outputs (the CLI's
 * main): SIGXFSZ ignored, so that a write past the file-size limit
 * (ulimit -f) fails with EFBIG and is reported and cleaned up like any
 * write error, instead of killing the process with its temp files left;
 * standard descriptors 0-2 that are closed opened on /dev/null, read-only
 * (writes to them still fail, EBADF), so that no output file gets one's
 * number and receives what is printed to it; stderr made to show control
 * characters as "\xHH" (a file name's escape sequences are not run by the
 * terminal). */
void dp_process_guard(void);
/* Makes SIGINT and SIGTERM remove every registered path, then end the
 * process by that signal (the batch commands: preprocess, split, train,
 * test; classify and capture install their own handlers over it). */
void dp_tmp_cleanup_on_signals(void);

/* An exclusive lock on TARGET, held through TARGET.lock (flock, holding the
 * holder's pid; TARGET a symlink: beside the file it leads to, so that runs
 * given the link and the file take one lock): fails at once, naming the lock file and the holder's pid,
 * when another process holds it. Returns the lock's fd (close it to
 * release), or -1 with a message. what names the holder ("split"). */
int dp_lock_target(const char *target, const char *what, char *errbuf);

/* Tests only: with DP_TEST_KILL_AT=PHASE:N[:SIGNAL[:EVERY]] in the
 * environment, the N-th call with that phase (and with EVERY > 0 the
 * (N + EVERY)-th, (N + 2 EVERY)-th...) kills the process with SIGKILL (as a crash
 * there would) or sends it SIGNAL and waits for it to end the process (or,
 * when the handler in place only asks the command to stop, as classify's
 * does, returns once it has run); SIGSTOP (19) stops it there and it goes
 * on once continued (SIGCONT): the test changes files meanwhile (with
 * EVERY, each time: a folder that keeps changing). Phases:
 * "commit" (dp_afile_commit, before the rename), "swap"
 * (dp_swap_dir_into_place, before the exchange), "pp-commit" (preprocess,
 * between its commit steps), "pp-part" (preprocess, once a spilled
 * capture's part file is whole), "ds-open" (dp_dataset_open, between
 * vectors.npy and the other arrays), "set-open" (a split folder's open,
 * between vectors.npy and labels.npy), "classify" (classify -r, after each
 * frame read from a capture). */
void dp_test_kill_point(const char *phase);

/* Writes to stdout failed (or fail at flush)? -1 with a message, else 0. */
int dp_check_stdout(char *errbuf);

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
/* CPU seconds of the whole process (all threads). */
double dp_cpu_now(void);

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
/* A duration (an ETA) for progress lines, rounded to the second: "45s",
 * "3m05s", "2h07m30s"; "?" when negative, not a number or over 1e7 s. */
void dp_fmt_duration(char *buf, size_t cap, double sec);

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

/* Writes s (NULL: empty) to f as the text of a markdown table cell: '|',
 * '\\' and '<' escaped with a backslash (no column break, no HTML tag from
 * a file or class name), control characters as spaces (a file name may hold
 * a newline), bytes that are not UTF-8 as U+FFFD, other text as it is. */
void dp_md_text(FILE *f, const char *s);

/* Writes s (NULL: empty) to f as HTML text, safe in element content and in
 * quoted attribute values: & < > " ' as character references; each byte
 * that is not part of well-formed UTF-8, and each control character but
 * tab and newline, as U+FFFD (the output is valid UTF-8). */
void dp_html_str(FILE *f, const char *s);

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

/* A fast checksum of n bytes at p, chained from h (8 bytes a step: an xor,
 * a multiply and a shift; the last step also takes n mod 8). Each step is a
 * bijection of h for given bytes, so bytes changed within one 8-byte step
 * always change the result. The same bytes cut into other pieces hash
 * differently: writer and reader must feed the same pieces (preprocess:
 * one row, or one record, at a time). Not for cryptography. */
uint64_t dp_hash8(uint64_t h, const void *p, size_t n);

#endif
