/* dp_split_impl: what the rooms of `split` share (not a public API).
 *
 *   dp_split.c        one task's split, step by step (dp_split_task), the
 *                     groups (flows, files) as dense ids
 *   dp_split_sides.c  which side each packet goes to (per packet, per group
 *                     at random or in time order)
 *   dp_split_write.c  the files of a split set and of a task folder
 *   dp_split_card.c   the data card; dp_split_run.c the whole run
 */
#ifndef DP_SPLIT_IMPL_H
#define DP_SPLIT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "dataset/dp_split.h"
#include "util/dp_flowmap.h"

/* A packet's side. */
enum { SIDE_NONE = 0, SIDE_TRAIN = 1, SIDE_TEST = 2, SIDE_DROPPED = 3 };

/* The purposes of the random streams. */
enum { RNG_PACKET = 1, RNG_GROUPS = 2, RNG_UNDER = 3 };

/* The random stream of (seed, task, class, purpose). */
void dp_split_rng(dp_rng *r, uint64_t seed, int task, int cls, int purpose);

/* The groups of a task (flows, or capture files): each (class, key) a dense
 * id in order of first appearance. */
typedef struct dp_split_groups {
    dp_flowmap map;  /* (key, class) -> id */
    size_t n;        /* ids handed out */
    uint16_t *cls;   /* per id: its class */
    uint64_t *count; /* per id: packets */
    size_t idcap;
} dp_split_groups;

/* --by packet: each labelled packet's side (side[i], SIDE_*) from its
 * class's stream. -1 + message when out of memory. */
int dp_split_sides_by_packet(const dp_dataset *d, const char *dataset_dir, int task, int nc, const dp_split_opts *o,
                             uint8_t *side, char *errbuf);
/* --by flow / file / time: the groups G (ids gid[i] per packet, UINT32_MAX
 * unlabelled) of each class to a side, then every packet to its group's
 * side; counts the groups in the card. -1 + message when out of memory or
 * (--by time) the dataset has no capture times. */
int dp_split_sides_by_group(const dp_dataset *d, const char *dataset_dir, int task, int nc, const dp_split_opts *o,
                            const dp_split_groups *G, const uint32_t *gid, uint8_t *side, dp_split_card *card,
                            char *errbuf);

/* A split set being written: vectors.npy, labels.npy, meta.npy. */
typedef struct dp_split_outset {
    dp_npy_writer vec, lab, meta;
    int open;
} dp_split_outset;

/* Opens the three arrays in dir (atomic: nothing shows before commit). */
int dp_split_outset_open(dp_split_outset *w, const char *dir, char *errbuf);
/* Appends one row. */
int dp_split_outset_row(dp_split_outset *w, const uint8_t *vec, int16_t label, const void *meta, char *errbuf);
/* Commits the three arrays; after a failure the rest are dropped. */
int dp_split_outset_commit(dp_split_outset *w, char *errbuf);
/* Drops what is open (safe after commit or a failed open). */
void dp_split_outset_abort(dp_split_outset *w);
/* Writes dir/classes.tsv (id TAB name per class of the card). */
int dp_split_write_classes(const char *dir, const dp_split_card *c, char *errbuf);
/* Writes task_dir/data_card.json (json) or data_card.md. */
int dp_split_write_card(const char *task_dir, const dp_split_card *c, const char *dataset_dir,
                        const dp_split_opts *o, int json, char *errbuf);

#endif
