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
 *     and stream their rows into per-capture part files
 *     DATASET_DIR/.parts/<key>.vec (vectors without their trailing zeros,
 *     each behind a 2-byte length) and <key>.meta (meta rows, then a trailer
 *     with the source's size and mtime and the counts). Parts are written to
 *     temp names and renamed, .vec first, so a .meta with a valid trailer
 *     means the capture is done. Memory per worker is a few MB whatever the
 *     size of the capture; there is no per-packet system call.
 *  2. Meanwhile the main thread merges finished parts, in file order, into
 *     the final .npy files with dp_npy_writer (streaming; writeback of
 *     vectors.npy is started as it grows, so the disk works while captures
 *     are still being read). Once the arrays are committed the parts are
 *     deleted (they are kept until then so that a run killed at any point
 *     loses no finished capture; they take a fraction of the final size, as
 *     they hold no padding), then files.tsv, labels.tsv, summary.md and,
 *     last, summary.json are written.
 *  A run first removes summary.json, so an interrupted run never leaves a
 *  dataset that looks complete. A rerun reuses every part whose recorded
 *  source size and mtime still match, and when the dataset is complete and
 *  nothing changed (same files, sizes, mtimes, label table) it does nothing.
 *  Files and folders whose name starts with '.' are not read, nor is
 *  DATASET_DIR when it lies inside CAPTURE_DIR.
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
    size_t stop_after;          /* tests only: 0, or stop (as if interrupted) once
                                 * this many captures have been processed, before
                                 * the merge; stats->interrupted is then set */
} dp_preprocess_opts;

/* Sets the defaults: everything 0/NULL, progress 1. */
void dp_preprocess_opts_init(dp_preprocess_opts *o);

typedef struct dp_preprocess_stats {
    int up_to_date;             /* 1: dataset was complete, nothing changed, nothing done */
    int interrupted;            /* 1: stopped by stop_after (dataset incomplete) */
    size_t files;               /* regular files found under the source */
    size_t captures;            /* of which pcap/pcapng files */
    size_t not_captures;        /* skipped: not a capture (or unreadable) */
    size_t processed;           /* captures read in this run */
    size_t reused;              /* captures whose part from an earlier run was reused */
    size_t with_warnings;       /* captures with a warning (truncated, link type...) */
    uint64_t capture_bytes;     /* total size of the captures */
    uint64_t frames;            /* frames read */
    uint64_t packets;           /* rows of the dataset (kept packets) */
    uint64_t skipped[DP_VERDICT_COUNT]; /* per skip reason (DP_KEEP unused) */
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

/* Name of a pcap LINKTYPE_* value ("EN10MB", "IEEE802_11_RADIO", ...), or
 * NULL when unknown. */
const char *dp_preprocess_linktype_name(int linktype);

#endif
