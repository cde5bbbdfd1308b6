/* dp_split: train and test sets per task from a preprocessed dataset
 * (spec section 4), written as split folders (see dp_dataset.h):
 *
 *   SPLIT_DIR/<task dir>/{train,test}/{vectors,labels,meta}.npy, classes.tsv, task
 *   SPLIT_DIR/<task dir>/data_card.md, data_card.json
 *
 * For each task, only packets with a class for it (id >= 0) are used. Rows
 * keep the dataset's order. Every file is written atomically, vectors are
 * streamed from the mmap (RAM: about 5 bytes per dataset packet plus a hash
 * table of flows). The same dataset, options and seed give byte-identical
 * outputs.
 *
 * Randomness: every (task, class, purpose) has its own dp_rng stream, seeded
 * from (seed, task, class, purpose), so one class's draws do not depend on
 * the other classes.
 *
 * Splitting (test_size s in (0, 1)):
 *
 *   --by packet (the reference behaviour): each packet of class c goes to
 *     test when dp_rng_double() < s, drawn from c's stream in dataset order.
 *     Packets of one flow land on both sides.
 *
 *   --by flow (default) / --by file: the groups are bidirectional flows
 *     (meta.flow) or capture files (meta.file); a group is wholly on one
 *     side. Stratified per class: a class c with P packets in k groups
 *     (a group is the packets of class c with one key)
 *       1. lists its groups in order of first appearance and shuffles them
 *          with c's stream;
 *       2. with target T = s * P and t = 0, walks the shuffled groups: a group
 *          of n packets goes to test iff that brings t strictly closer to T,
 *          i.e. iff t + n - T < T - t; then t += n. Otherwise it goes to train;
 *       3. if k >= 2 and no group went to test, the smallest group (the first
 *          in shuffled order among equals) goes to test; if k >= 2 and every
 *          group went to test, the smallest one goes back to train.
 *     So a class with one group is wholly in train when s <= 0.5, and a class
 *     with >= 2 groups has a group on each side.
 *
 *   --by time: the groups are flows, as with --by flow, but in time order
 *     instead of shuffled: a class's flows are sorted by their first packet
 *     (the smallest (meta.time, meta.file, meta.index) of the flow's packets
 *     of that class; then the flow id). The latest flows go to test, walking
 *     back from the latest: a flow of n packets joins test iff that brings t
 *     strictly closer to T = s * P (t + n - T < T - t); the walk stops at the
 *     first flow that does not, and every earlier flow goes to train. So
 *     test_size is a share of the class's packets, as for the other modes,
 *     and a class with >= 2 flows keeps its latest flow in test and its
 *     earliest in train. Every test flow of a class starts no earlier than
 *     every training flow of it. No randomness (the seed only drives
 *     under-sampling). A dataset whose labelled packets all have time 0
 *     (no capture times) is refused.
 *
 * Under-sampling (default on): cap = the packet count of the smallest class
 * that has any training packets; every class with more training packets
 * keeps cap of them, chosen uniformly at random (partial Fisher-Yates over
 * its training packets in dataset order, with c's under-sampling stream).
 * The test set keeps its natural imbalance.
 */
#ifndef DP_SPLIT_H
#define DP_SPLIT_H

#include <stdint.h>
#include <stdio.h>

#include "dataset/dp_dataset.h"

typedef enum dp_split_by {
    DP_SPLIT_BY_FLOW = 0,
    DP_SPLIT_BY_FILE = 1,
    DP_SPLIT_BY_PACKET = 2,
    DP_SPLIT_BY_TIME = 3,
} dp_split_by;

extern const char *const dp_split_by_name[4]; /* "flow", "file", "packet", "time" */
/* "flow"/"file"/"packet"/"time" -> DP_SPLIT_BY_*, else -1. */
int dp_split_by_parse(const char *s);

typedef struct dp_split_opts {
    double test_size;  /* in (0, 1); default 0.2 */
    uint64_t seed;     /* default 9876 */
    dp_split_by by;    /* default DP_SPLIT_BY_FLOW */
    int time_per_capture; /* --by time: order and cut each capture file's flows
                           * of a class on their own (--time-scope capture), so
                           * every capture keeps its earlier sessions in train
                           * and its later ones in test; default 0 (per class) */
    int under_sample;  /* default 1 */
    int tasks;         /* bit (1 << DP_TASK_*) per task; default both */
    FILE *out;         /* the data cards are printed here (NULL: quiet) */
} dp_split_opts;

void dp_split_opts_default(dp_split_opts *o);

/* Per-class numbers of one task's split. "train" is before
 * under-sampling, "kept" after; flows are distinct meta.flow values. */
typedef struct dp_split_class {
    uint64_t packets, flows;              /* labelled, in the whole dataset */
    uint64_t train_packets, train_flows;  /* training set, before under-sampling */
    uint64_t kept_packets, kept_flows;    /* training set as written */
    uint64_t test_packets, test_flows;
    uint64_t shared_flows;       /* flows with packets in train (before) and test */
    uint64_t shared_flows_kept;  /* flows with packets in train (as written) and test */
    uint64_t groups, train_groups, test_groups; /* flows/files (by packet: flows) */
    /* --by time: start of the latest training flow and of the earliest test
     * flow (seconds since the epoch; NAN when that side has no flow) */
    double train_last_start, test_first_start;
} dp_split_class;

typedef struct dp_split_card {
    int task;
    int nclasses;
    const char *names[DP_MAX_CLASSES];    /* borrowed from the dataset's labels */
    dp_split_class cls[DP_MAX_CLASSES];
    uint64_t dataset_packets;    /* all packets of the dataset */
    uint64_t unlabelled;         /* packets with no class for this task */
    uint64_t cap;                /* under-sampling cap (0 when off) */
    dp_split_class total;        /* sums over classes */
} dp_split_card;

/* Splits one task of an open dataset into task_dir/{train,test} and writes
 * task_dir/data_card.{md,json}. card (may be NULL) receives the numbers.
 * dataset_dir is only quoted in the card. Fails (-1 + message) when the task
 * has no labelled packets, or on any I/O error. */
int dp_split_task(const dp_dataset *d, const char *dataset_dir, int task, const char *task_dir,
                  const dp_split_opts *o, dp_split_card *card, char *errbuf);

/* The whole command: opens dataset_dir, splits every task in o->tasks into
 * split_dir/<dp_task_dir[task]>, printing each data card to o->out. A task
 * with no labelled packets is an error when it is the only task asked for,
 * else it is skipped with a note on stderr (an error if no task remains).
 * Atomic as a whole: the split is built in SPLIT_DIR.tmp.<pid> (the old
 * split's other entries, e.g. the task not asked for, hard-linked in), then
 * swapped with the old one (dp_swap_dir_into_place); a failure removes the
 * temp folder and leaves the old split as it was. Locked: SPLIT_DIR.lock
 * (dp_lock_target) makes a concurrent split of the same target fail at
 * once. A symlink at SPLIT_DIR is followed. Stale temp folders of dead
 * splits are removed first. Each train/test folder gets a `task` file. */
int dp_split_run(const char *dataset_dir, const char *split_dir, const dp_split_opts *o,
                 char *errbuf);

/* Writes the card as markdown / JSON text to f. */
void dp_split_card_markdown(FILE *f, const dp_split_card *c, const char *dataset_dir,
                            const dp_split_opts *o);
void dp_split_card_json(FILE *f, const dp_split_card *c, const char *dataset_dir,
                        const dp_split_opts *o);

#endif
