/* dp_pp_run: the state of one preprocess run, shared by its modules.
 * Internal to src/dataset (not part of any public interface).
 *
 * How a run goes (dp_preprocess.c reads as this list):
 *   1. the source folder is walked and its files probed (dp_pp_sources.c);
 *   2. captures already merged by an earlier run are found in the resume
 *      journal, or in part files (dp_pp_merge.c, dp_pp_part.c);
 *   3. workers read the other captures into records, in memory chunks or
 *      part files (dp_pp_pipeline.c, record format in dp_pp_part.c); a
 *      big capture is read by one and transformed by the idle ones
 *      (dp_pp_split.c);
 *   4. the main thread merges the records, in file order, into the four
 *      partial arrays and journals each capture (dp_pp_merge.c);
 *   5. the arrays are committed, then files.tsv, labels.tsv, summary.md and
 *      summary.json, last (dp_pp_report.c). */
#ifndef DP_PP_RUN_H
#define DP_PP_RUN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "dataset/dp_dataset.h"
#include "dataset/dp_labels.h"
#include "dataset/dp_pp_merge.h"
#include "dataset/dp_pp_knobs.h"
#include "dataset/dp_preprocess.h"

#define DATASET_FORMAT "deeppacket-dataset-1"
#define CHUNK_SIZE (512 * 1024)  /* records handed to the merge at once */
#define WORKER_CHUNKS 4          /* chunks a worker may have at once (2 MB) */
#define SPLIT_MIN_BYTES (8u << 20) /* a capture is split from this size */
#define MAX_STATUS 400
#define MAX_NOTES 10            /* "not a capture" notes printed one by one */

/* The dataset's files: the four arrays (in this order), then the texts. */
extern const char *const dp_pp_out_names[8];
#define N_OUT 8

typedef struct chunk chunk;
typedef struct wstate wstate;

/* A buffer of records handed from a worker to the merge (see below). */
struct chunk {
    chunk *next;
    wstate *owner;          /* the worker it goes back to */
    size_t n;               /* bytes of records in data */
    uint8_t data[];         /* CHUNK_SIZE bytes */
};

/* A worker's state: its chunks and the part file of a spilled capture. */
struct wstate {
    chunk *free;            /* its free chunks (under run.mu) */
    size_t nalloc;          /* its chunks in existence */
    chunk *cur;             /* the chunk it fills */
    int fd;                 /* part temp file while spilled, else -1 */
    uint64_t part_bytes;    /* record bytes written to it */
    uint64_t part_hash;     /* their checksum (dp_pp_records_hash) */
    wstate *next_ws;        /* list of finished workers (freed by the run) */
};

typedef struct capfile {
    char *rel;              /* path relative to the source folder */
    char *path;             /* SRC/rel */
    uint64_t size;
    int64_t mtime_ns;
    int is_capture;
    int probe;              /* dp_probe result */
    uint64_t relhash;       /* FNV-1a of rel: part key, flow salt and shard */
    size_t shard;           /* merge: the shard dataset that holds it */
    uint64_t shard_row;     /* merge: its first row in that shard's arrays */
    uint32_t shard_file;    /* merge: its capture number in that shard */
    int cls[DP_NTASKS];
    char *filter;           /* --filter and its label row's filter, joined; NULL: none */
    /* results */
    int ready;              /* read (and its part complete if spilled); under run.mu */
    int reused;
    int spilled;            /* its records went to a part file (under run.mu) */
    int from_part;          /* reused the part file of an earlier run */
    int journaled;          /* already in the partial arrays (earlier run) */
    int unreadable;         /* could not be opened or read (permissions...): a
                             * rerun reads it again */
    chunk *qh, *qt;         /* its chunks waiting for the merge (under run.mu) */
    uint64_t part_bytes;    /* record bytes in its part file */
    uint64_t rows_end;      /* rows of the arrays once it is merged */
    uint64_t rows_hash;     /* row_hash of its rows in the four arrays */
    uint64_t frames, kept;
    uint64_t skipped[DP_VERDICT_COUNT];
    char status[MAX_STATUS]; /* "" when all went well */
} capfile;

struct run {
    const dp_preprocess_opts *o;
    dp_pp_knobs knobs;      /* tests' knobs; zero in a real run */
    dp_preprocess_stats *st;
    char *src, *dst, *parts;
    dp_labels table;
    char *label_text;       /* the label table's text (written as labels.tsv) */
    char *filter;           /* the --filter (opts, or the shards'), or NULL; each
                             * capture's own (with its label row's) is cf->filter */
    int dirfd;              /* the locked target folder, or -1 */
    int had_dataset;        /* -1: not yet looked at (the run had not started) */
    int replacing;          /* the previous dataset's files are being replaced */
    uint64_t fingerprint;   /* of the sources and labels (summary.json) */
    uint64_t listing_hash;  /* --shard: the whole folder's listing (dp_pp_shard.h) */
    size_t listing_files;   /* --shard: the files of the whole folder */
    capfile *files;
    size_t nfiles, ncaptures;
    size_t *queue;          /* indices into files, in file order */
    size_t nqueue;
    size_t *caps;           /* indices into files of the captures, in order */
    capfile *head;          /* the capture the merge reads now (under mu) */
    wstate *workers;        /* finished workers' states (under mu) */
    size_t chunk_size;      /* CHUNK_SIZE, or knobs.chunk_bytes (tests) */
    size_t worker_chunks;   /* WORKER_CHUNKS, or 2 with knobs.chunk_bytes */
    merger m;               /* the merge into the partial arrays */
    pthread_t *th;          /* worker threads running: nth */
    size_t nth;
    size_t split_bytes;     /* a capture at least this big may be split */
    struct dp_pp_split *split; /* the capture being split, or NULL (under mu) */
    int split_pending;      /* a capture is about to be split (under mu) */
    _Atomic size_t idle;    /* workers with no capture left to take, waiting */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t next;            /* next queue slot */
    size_t finished;        /* queue items finished */
    size_t taken;
    int failed, stop;
    char err[DP_ERRBUF_SIZE];
    _Atomic uint64_t live_frames, live_packets;
    double t_read;          /* when the workers started */
    double t_read_done;     /* when the last queued capture was read */

    pthread_mutex_t warn_mu;
    dp_progress prog;
    int progress_on;
};

/* Reports a warning (is_note 0) or a note about `file` through the
 * options' warn callback, or on stderr; callable from any thread. */
void dp_pp_warn(run *r, const char *file, int is_note, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A message from another module usually starts with "PATH: "; returns it
 * without that. */
const char *dp_pp_strip_path(const char *msg, const char *path);
/* The run's error for a source that could not be opened or read because
 * the machine ran out of something (dp_errno_exhausted(e)): msg (naming the
 * file), and for EMFILE/ENFILE the open-file limit and what to do. -1. */
int dp_pp_exhausted(char *errbuf, const char *msg, int e);

/* Appends a problem to a capture's status (one line, "; "-separated). */
void dp_pp_add_status(capfile *cf, const char *msg);

/* The steps preprocess and merge (dp_merge.c) share, in dp_preprocess.c. */

/* Zeroes r and sets up its locks for a run with options o and stats st. */
void dp_pp_run_init(run *r, const dp_preprocess_opts *o, const dp_pp_knobs *k, dp_preprocess_stats *st);

/* Creates the target folder r->dst and locks it against a second run (the
 * lock lasts while r->dirfd is open); `what` names the kind of run in the
 * message when another one holds it. Refuses a summary.json there that is,
 * or links to, anything but a regular file (a FIFO, a device, a folder):
 * the commit would remove it. */
int dp_pp_lock_dir(run *r, const char *what, char *errbuf);

/* 1 when r->dst holds a complete dataset whose summary.json has this run's
 * fingerprint and counts no unreadable file: nothing to do (the stats are
 * filled from summary.json). Sets r->fingerprint and r->had_dataset. */
int dp_pp_up_to_date(run *r);

/* Makes the .parts folder (cleaned of what no listed capture needs) and
 * r->caps, the listed captures in file order. */
int dp_pp_prepare_parts(run *r, char *errbuf);

/* Commits the merged arrays, drops the parts, writes the text outputs
 * (summary.json last) and prints the report when asked. */
int dp_pp_commit_dataset(run *r, char *errbuf);

/* Ends a run: stops its workers, keeps the partial work for a rerun, says
 * in errbuf what state a failed run left, frees everything. */
void dp_pp_run_end(run *r, int rc, char *errbuf);

#endif
