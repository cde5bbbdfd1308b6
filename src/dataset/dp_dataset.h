/* dp_dataset: the on-disk dataset that `preprocess` writes and `split`,
 * `train` and `test` read. Every array is a .npy file (numpy.load, mmap):
 *
 *   DATASET_DIR/vectors.npy   uint8  [N, 1500]  the Deep Packet input vectors
 *   DATASET_DIR/app.npy       int16  [N]        app class id, -1 where none
 *   DATASET_DIR/traffic.npy   int16  [N]        traffic class id, -1 where none
 *   DATASET_DIR/meta.npy      struct [N]        provenance, see dp_meta
 *   DATASET_DIR/files.tsv     capture index -> path, labels, counts
 *   DATASET_DIR/labels.tsv    the label table used (class names)
 *   DATASET_DIR/summary.json  per class / file / skip reason; written last:
 *                             a dataset without it is incomplete
 *
 * A split folder (SPLIT_DIR/<task>/{train,test}) holds vectors.npy,
 * labels.npy (int16 [N], the task's class id), meta.npy and classes.tsv
 * (id <TAB> name, one line per class id of the task).
 */
#ifndef DP_DATASET_H
#define DP_DATASET_H

#include <stdint.h>

#include "dataset/dp_labels.h"
#include "dataset/dp_npy.h"
#include "packet/dp_packet.h"

/* ---- the one place that names the files and their dtypes ----------------------
 * Every reader and writer of datasets and split folders spells the names
 * and dtypes through these (messages too: "%s/" DP_FILE_META ": ..."). */
#define DP_FILE_VECTORS      "vectors.npy"   /* DP_VECTORS_DESCR [N, DP_VEC_LEN] */
#define DP_FILE_APP          "app.npy"       /* DP_CLASS_DESCR [N] */
#define DP_FILE_TRAFFIC      "traffic.npy"   /* DP_CLASS_DESCR [N] */
#define DP_FILE_META         "meta.npy"      /* DP_META_DESCR [N] */
#define DP_FILE_FILES        "files.tsv"
#define DP_FILE_LABELS       "labels.tsv"
#define DP_FILE_SUMMARY_MD   "summary.md"
#define DP_FILE_SUMMARY_JSON "summary.json"  /* written last: marks a dataset whole */
/* a split folder: DP_FILE_VECTORS, DP_FILE_META and these */
#define DP_FILE_SET_LABELS   "labels.npy"    /* DP_CLASS_DESCR [N] */
#define DP_FILE_SET_CLASSES  "classes.tsv"
#define DP_FILE_SET_TASK     "task"
/* a split's task folder (SPLIT_DIR/<task dir>): {train,test}/ and these */
#define DP_FILE_CARD_JSON    "data_card.json"
#define DP_FILE_CARD_MD      "data_card.md"

#define DP_VECTORS_DESCR DP_NPY_U1           /* itemsize 1 */
#define DP_CLASS_DESCR   DP_NPY_I2           /* int16_t; -1: no label (datasets) */

/* The class-id file of each task (DP_TASK_*): app.npy, traffic.npy. */
extern const char *const dp_dataset_class_file[DP_NTASKS];

/* One packet's provenance; packed, it is exactly a row of meta.npy. */
typedef struct __attribute__((packed)) dp_meta {
    uint32_t file;      /* index into files.tsv */
    uint64_t index;     /* 0-based index of the frame in its capture */
    double time;        /* capture timestamp, seconds since the epoch */
    uint64_t flow;      /* bidirectional flow id, unique in the dataset */
    uint8_t ipver;      /* 4 or 6 */
    uint8_t proto;      /* IP protocol */
    uint16_t sport;     /* as seen in the packet (real, not masked) */
    uint16_t dport;
    uint8_t saddr[16];  /* real addresses; IPv4 in the first 4 bytes */
    uint8_t daddr[16];
} dp_meta;

#define DP_META_DESCR                                                           \
    "[('file', '<u4'), ('index', '<u8'), ('time', '<f8'), ('flow', '<u8'), "    \
    "('ipver', 'u1'), ('proto', 'u1'), ('sport', '<u2'), ('dport', '<u2'), "    \
    "('saddr', 'u1', (16,)), ('daddr', 'u1', (16,))]"

_Static_assert(sizeof(dp_meta) == 66, "dp_meta must be packed");

/* The input of train and test: a split folder or a preprocessed dataset
 * folder, opened memory-mapped for one task, seen the same way: n rows, each
 * with a vector, a class id in [0, nclasses) and (when has_meta) a dp_meta,
 * and the class names. Nothing is copied: a dataset folder's rows without a
 * label for the task are left out through a row index into the mmap. */
typedef enum dp_splitset_kind {
    DP_SET_SPLIT = 0,    /* SPLIT_DIR/<task dir>/{train,test} */
    DP_SET_DATASET = 1,  /* the output of preprocess */
} dp_splitset_kind;

typedef struct dp_splitset {
    dp_npy vectors;          /* [rows, 1500] uint8 */
    dp_npy labels;           /* [rows] int16: labels.npy, or the dataset's app/traffic.npy */
    dp_npy meta;             /* [rows] dp_meta (may be absent: has_meta 0) */
    int has_meta;
    uint64_t n;              /* rows of the view */
    uint32_t *rows;          /* view row -> file row; NULL: every file row, in order */
    int nclasses;
    char *names[DP_MAX_CLASSES];
    int16_t map[DP_MAX_CLASSES]; /* file class id -> view class id (identity
                                  * until dp_splitset_match_classes) */
    dp_splitset_kind kind;
    int task;                /* DP_TASK_*, or -1 when a split folder does not say */
} dp_splitset;

/* Opens DIR for `task` (DP_TASK_*, or -1: any) as a split folder when it
 * holds classes.tsv, else as a preprocessed dataset (dp_dataset_open: it
 * needs summary.json and meta.npy). A split folder: DIR/{vectors,labels,
 * meta}.npy and classes.tsv, shapes agree, every label in [0, nclasses); its
 * task is read from DIR/task (written by split), or for older split folders
 * from the parent folder's name (application_classification,
 * traffic_classification; -1 when it is neither), and one of the other task
 * than `task` is refused. A dataset folder: the task's label column, its
 * classes from labels.tsv (unused ids have the name ""), rows without a label
 * left out; task -1 is refused (a dataset has two label columns), as is a
 * dataset with no row labelled for the task. -1 + message naming DIR. */
int dp_splitset_open_task(dp_splitset *s, const char *dir, int task, char *errbuf);
/* dp_splitset_open_task(s, dir, -1, errbuf): a split folder, any task. */
int dp_splitset_open(dp_splitset *s, const char *dir, char *errbuf);
/* Runs open_fn(ctx, errbuf), which opens the set folder DIR
 * (dp_splitset_open_task) and what must be of the same generation as it
 * (the other side of the same split), under one generation of DIR:
 * dp_open_one_generation on DIR with the marker summary.json when DIR is a
 * dataset folder, none when it is a split folder (split swaps the whole
 * split in, both sides at once, so DIR changes with any of them). A change
 * meanwhile makes it close (close_fn) and run open_fn again; the same
 * results and messages as dp_open_one_generation. When DIR is not a
 * folder, open_fn runs alone: its open of DIR says what is wrong. */
int dp_splitset_one_generation(const char *dir, int (*open_fn)(void *ctx, char *errbuf),
                               void (*close_fn)(void *ctx), void *ctx, char *errbuf);
/* Writes DIR/task: the task's name ("app", "traffic") and a newline. */
int dp_splitset_write_task(const char *dir, int task, char *errbuf);
/* A cheap fingerprint of the rows: the row count, the class names and a
 * hash of labels.npy and meta.npy (not of the vectors). */
uint64_t dp_splitset_fingerprint(const dp_splitset *s);
void dp_splitset_close(dp_splitset *s);

/* Counts the rows of every class (view ids) into counts[nclasses]. */
void dp_splitset_class_counts(const dp_splitset *s, uint64_t *counts);

/* Maps the set's classes onto a model's by name: afterwards the view's class
 * ids and names are the model's (nclasses = n). Every class of the set that
 * has rows must be one of names[0..n); classes without rows are ignored.
 * Otherwise -1 + "<dir> and <model>: classes differ: dataset class 'X' is
 * not one of the model's (A, B, ...)". */
int dp_splitset_match_classes(dp_splitset *s, const char *dir, int n, const char *const *names,
                              const char *model, char *errbuf);

static inline uint64_t dp_splitset_row(const dp_splitset *s, uint64_t i)
{
    return s->rows ? s->rows[i] : i;
}
static inline const uint8_t *dp_splitset_vector(const dp_splitset *s, uint64_t i)
{
    return s->vectors.data + dp_splitset_row(s, i) * DP_VEC_LEN;
}
static inline int dp_splitset_label(const dp_splitset *s, uint64_t i)
{
    int16_t v;
    __builtin_memcpy(&v, s->labels.data + 2 * dp_splitset_row(s, i), 2);
    return s->map[v];
}
static inline dp_meta dp_splitset_meta(const dp_splitset *s, uint64_t i)
{
    dp_meta m;
    __builtin_memcpy(&m, s->meta.data + sizeof(dp_meta) * dp_splitset_row(s, i), sizeof m);
    return m;
}
/* The vectors of view rows [start, start + n): a pointer into the mmap when
 * they are consecutive there, else gathered into buf (n * 1500 bytes). */
const uint8_t *dp_splitset_vectors(const dp_splitset *s, uint64_t start, int n, uint8_t *buf);

/* A preprocessed DATASET_DIR opened memory-mapped (split input). */
typedef struct dp_dataset {
    dp_npy vectors;          /* [n, 1500] uint8 */
    dp_npy cls[DP_NTASKS];   /* app.npy, traffic.npy: [n] int16, -1 = none */
    dp_npy meta;             /* [n] dp_meta */
    uint64_t n;
    dp_labels labels;        /* labels.tsv: class names, nclasses per task */
} dp_dataset;

/* Opens DIR/{vectors,app,traffic,meta}.npy and DIR/labels.tsv, all of one
 * generation of the dataset (dp_open_one_generation, marker summary.json:
 * a preprocess or merge committing meanwhile makes it open them again).
 * Fails with a message naming the file when DIR is missing, summary.json is
 * absent ("DIR: incomplete dataset (no summary.json); rerun the preprocess
 * or merge that made it"), a file is missing or malformed, the row counts
 * disagree, or a class id is outside [-1, nclasses) of labels.tsv; or with
 * "DIR: the dataset changed while it was being opened ...; retry ..." when
 * it kept changing. */
int dp_dataset_open(dp_dataset *d, const char *dir, char *errbuf);
/* dp_dataset_open, with more files of DIR read in the same generation as
 * the arrays (merge: a shard's shard.tsv and labels.tsv): each attempt
 * first runs read_fn(ctx, errbuf), which reads them by path (0; or -1 +
 * message, having kept nothing: the open fails with its message), then
 * opens the arrays; an attempt given up after read_fn succeeded (the
 * arrays failed, or the dataset changed meanwhile) runs drop_fn(ctx) to
 * undo it. On success what read_fn read is of the generation of *d's
 * arrays; on failure nothing of it is kept. */
int dp_dataset_open_with(dp_dataset *d, const char *dir, int (*read_fn)(void *ctx, char *errbuf),
                         void (*drop_fn)(void *ctx), void *ctx, char *errbuf);
void dp_dataset_close(dp_dataset *d);

/* Runs open_fn(ctx, errbuf), which opens files of folder DIR one by one by
 * path (and on failure leaves nothing open), so that all it opened belong to
 * one generation of DIR: DIR itself (split swaps a whole new folder in) and,
 * when marker is not NULL, the file DIR/marker (preprocess removes
 * summary.json before it renames new arrays in and writes it last) are the
 * same files, held open, before and after. When either changed, what was
 * opened is closed (close_fn) and open_fn runs again, up to 4 times in all
 * with 50, 200 and 450 ms between (a failure after a change is retried as
 * well). Returns open_fn's result when it ran on one generation, else -1 +
 * "DIR: the dataset changed while it was being opened (...); retry when
 * that run is done (last attempt: ...)". Readers take no lock: a writer is
 * never held up by them. */
int dp_open_one_generation(const char *dir, const char *marker, int (*open_fn)(void *ctx, char *errbuf),
                           void (*close_fn)(void *ctx), void *ctx, char *errbuf);
static inline const uint8_t *dp_dataset_vector(const dp_dataset *d, uint64_t i)
{
    return d->vectors.data + i * DP_VEC_LEN;
}
/* The class id of packet i for task (DP_TASK_*), -1 when it has none. */
static inline int dp_dataset_label(const dp_dataset *d, int task, uint64_t i)
{
    int16_t v;
    __builtin_memcpy(&v, d->cls[task].data + 2 * i, 2);
    return v;
}
static inline dp_meta dp_dataset_meta(const dp_dataset *d, uint64_t i)
{
    dp_meta m;
    __builtin_memcpy(&m, d->meta.data + sizeof(dp_meta) * i, sizeof m);
    return m;
}

#endif
