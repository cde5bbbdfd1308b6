/* dp_preprocess: a folder of captures -> the dataset of dp_dataset.h
 * (`deeppacket preprocess`).
 *
 * Every regular file under the source folder (recursively, symlinks
 * followed, sorted by relative path) is probed by content: pcap and pcapng
 * files are read through dp_capture, anything else is skipped with a note.
 * Each frame goes through dp_packet_transform (spec section 3); a kept
 * packet becomes one row of vectors.npy / app.npy / traffic.npy / meta.npy.
 * Labels come from the file name through a dp_labels table.
 *
 * How it runs (bounded memory, parallel, restartable):
 *  1. Worker threads take whole captures from a shared queue (file order)
 *     and turn each kept packet into a record (its meta row, then the
 *     vector without its trailing zeros behind a 2-byte length) in buffers
 *     of 512 KB ("chunks"), at most 4 per worker, handed to the merge in
 *     memory. A worker whose chunks are all taken waits for the merge,
 *     unless its capture is bigger than its chunks and not the one the
 *     merge reads: such a capture is "spilled": its records go to a part
 *     file, DATASET_DIR/.parts/<key>.part (records, then a trailer with the
 *     source's size and mtime and the counts), written to a temp name and
 *     renamed when whole. Memory is bounded (a few MB per worker) whatever
 *     the size of a capture; there is no per-packet system call. A big
 *     capture is read by its worker and transformed by the workers that
 *     have no capture left (dp_pp_split.h), same records, same order.
 *  2. Meanwhile the main thread merges the captures in file order, from
 *     their chunks or part files, into the four arrays, built as
 *     .parts/<name>.partial by dp_npy appenders (vectors.npy in 4 MB direct
 *     writes, bypassing the page cache, by a thread of its own). The journal .parts/journal records
 *     each merged capture (source size and mtime, counts, status, row count
 *     after it, a checksum) once its rows are in the files; the part of a
 *     journaled capture is deleted. When all are merged the arrays are
 *     committed in steps a rerun resumes from (every array's rows fsynced;
 *     then every final header written and fsynced; then the previous
 *     summary.json removed and the renames, with a folder fsync), the
 *     journal and parts folder removed, then files.tsv, labels.tsv,
 *     summary.md and, last, summary.json are written.
 *  A previous complete dataset in DATASET_DIR stays whole and usable until
 *  the renames of the commit; a run that fails before them leaves it as it
 *  was and says so, with the size of the parts folder it keeps for a rerun
 *  (removed instead when the disk is full). A rerun keeps the longest
 *  prefix of the journal that matches the captures as they are now (same
 *  files in the same order, sizes, mtimes, label table, filter) and whose
 *  rows the partial arrays hold, cuts the arrays back to it and goes on
 *  from there; it also reuses every whole part whose source and filter are
 *  unchanged. Only the captures a killed run had read but not yet merged
 *  (in memory) are read again, and those that could not be read (journal
 *  entries with no frame and a problem). When the dataset is complete and
 *  nothing changed (same files, sizes, mtimes, label table, filter) and
 *  every file could be read
 *  (summary.json "unreadable": 0) a rerun does nothing.
 *  Files and folders whose name starts with '.' are not read. DATASET_DIR
 *  may not be CAPTURE_DIR nor lie inside it (refused).
 *
 * Errors that stop the run (missing source folder, no capture in it,
 * unwritable target, bad label table, I/O errors on the target) return -1
 * with a message. Problems with one capture (truncated, corrupt, unknown link
 * type, unreadable) are warnings: the readable packets are kept, the run
 * goes on, and the problem is recorded in files.tsv and the summary.
 */
#ifndef DP_PREPROCESS_H
#define DP_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dataset/dp_labels.h"
#include "packet/dp_packet.h"
#include "util/dp_util.h"

/* Receives one warning (is_note 0: a problem with a capture) or note
 * (is_note 1: e.g. a file that is not a capture). `file` is the path of the
 * file as reached from the source folder (SRC/relative/path). May be called
 * from worker threads, but never concurrently. */
typedef void (*dp_preprocess_warn_fn)(void *ctx, const char *file, const char *msg,
                                      int is_note);

typedef struct dp_preprocess_opts {
    const char *src_dir;        /* CAPTURE_DIR */
    const char *dst_dir;        /* DATASET_DIR (created if missing) */
    const char *labels_path;    /* label table; NULL: the built-in ISCX table */
    int threads;                /* worker threads; <= 0: dp_ncpu() */
    int progress;               /* 1: progress line on stderr (dp_progress) */
    FILE *report;               /* if set, the readable summary is printed here */
    dp_preprocess_warn_fn warn; /* NULL: "deeppacket preprocess: warning: FILE: MSG"
                                 * (or "note:") on stderr */
    void *warn_ctx;
    unsigned shard_index;       /* --shard I/N: with shard_count > 0, only the files */
    unsigned shard_count;       /* whose relative path's FNV-1a 64 hash modulo N is I
                                 * (dp_pp_shard.h); the dataset gets a shard.tsv
                                 * for `deeppacket merge` (dp_merge.h) */
    const char *filter;         /* --filter: a BPF filter (pcap-filter syntax) that
                                 * every frame must pass to be transformed, as
                                 * `tcpdump -r CAPTURE FILTER` would read it; frames
                                 * left out are counted (summary: "filtered"), frame
                                 * numbers stay the file's. A bad filter stops the
                                 * run; one that a capture's link type cannot match
                                 * is a warning for that capture. NULL: every frame.
                                 * Part of the dataset's identity: a rerun with
                                 * another filter reads every capture again. */
    FILE *dry_run;              /* if set: only list the captures (by content, as a
                                 * run finds them) with their labels and filters
                                 * here, check the filters, and stop; nothing is
                                 * created and dst_dir may be NULL (-n/--dry-run) */
} dp_preprocess_opts;

/* Sets the defaults: everything 0/NULL, progress 1. */
void dp_preprocess_opts_init(dp_preprocess_opts *o);

typedef struct dp_preprocess_stats {
    int up_to_date;             /* 1: dataset was complete, nothing changed, nothing done */
    int interrupted;            /* 1: stopped by a test knob (dp_pp_knobs.h; dataset
                                 * incomplete) */
    size_t files;               /* regular files found under the source */
    size_t captures;            /* of which pcap/pcapng files */
    size_t not_captures;        /* skipped: not a capture (or unreadable) */
    size_t processed;           /* captures read in this run */
    size_t reused;              /* captures taken from an earlier run (journal or part) */
    size_t spilled;             /* captures read in this run whose records went
                                 * through a part file (too big to wait in memory) */
    size_t split;               /* captures read by one worker and transformed by
                                 * several (dp_pp_split.h) */
    size_t with_warnings;       /* captures with a warning (truncated, link type...) */
    uint64_t capture_bytes;     /* total size of the captures */
    uint64_t frames;            /* frames read */
    uint64_t packets;           /* rows of the dataset (kept packets) */
    uint64_t skipped[DP_VERDICT_COUNT]; /* per skip reason (DP_KEEP unused) */
    uint64_t filtered;          /* frames the filter left out (counted in frames) */
    uint64_t per_class[DP_NTASKS][DP_MAX_CLASSES];
    uint64_t unlabelled[DP_NTASKS];     /* packets with -1 for that task */
    double seconds;             /* wall time of the whole run */
    double seconds_parts;       /* until the last capture was read into its parts
                                 * (the merge runs meanwhile) */
    double seconds_merge;       /* after that: rest of the merge, commit (fsync),
                                 * text outputs */
    int threads;                /* worker threads used */
} dp_preprocess_stats;

/* Runs preprocessing as described above. Fills *stats (may be NULL).
 * Returns 0 on success (also when up to date or interrupted by stop_after),
 * -1 with a message in errbuf when the run cannot go on. */
int dp_preprocess_run(const dp_preprocess_opts *o, dp_preprocess_stats *stats,
                      char *errbuf);

/* Returns 1 when DIR holds a complete dataset: summary.json (written last)
 * and the four .npy files, files.tsv and labels.tsv exist; 0 otherwise. */
int dp_preprocess_complete(const char *dir);

#endif
