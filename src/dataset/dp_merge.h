/* dp_merge: shard datasets -> one dataset (`deeppacket merge`).
 *
 * The shards are the datasets of `preprocess --shard I/N` runs over the same
 * source folder (on one machine or many), each with its shard.tsv
 * (dp_pp_shard.h). The merge lists the shards' files in the order a
 * one-machine run lists them (byte order of the relative path), renumbers
 * files (meta.npy's `file`, files.tsv) and copies each capture's rows, so
 * that every output file is byte-identical to `preprocess` of the whole
 * folder on one machine; summary.md and summary.json name the source folder
 * of shard 0 (the same as a one-machine run's when the shards read the folder
 * under the same path; shards that name different folders get a warning,
 * since the merge cannot tell a folder mounted elsewhere from another one).
 *
 * It writes like preprocess: the arrays are built in DATASET/.parts with a
 * resume journal, committed, and summary.json is written last, so a killed
 * merge leaves no dataset that looks complete and a rerun resumes it; a
 * complete merged dataset of the same shards' files, label table and
 * filter is up to date (nothing done).
 *
 * Refused with a message (-1): a shard folder that is not a complete shard
 * dataset, shards of different shard counts, label tables or --filter, two
 * folders of the same shard or the same file in two shards (overlapping
 * shards), a missing shard, a shard whose arrays do not hold the rows its
 * manifest counts, no capture in any shard, a target that is one of the
 * shards. */
#ifndef DP_MERGE_H
#define DP_MERGE_H

#include <stddef.h>
#include <stdio.h>

#include "dataset/dp_preprocess.h"

typedef struct dp_merge_opts {
    const char *dst_dir;            /* DATASET_DIR to write (created if missing) */
    const char *const *shard_dirs;  /* the shard datasets, any order */
    size_t nshards;
    FILE *report;                   /* if set, the readable summary is printed here */
    dp_preprocess_warn_fn warn;     /* as for dp_preprocess_opts */
    void *warn_ctx;
} dp_merge_opts;

/* Merges the shards as described above. *stats (may be NULL) as for
 * preprocess: files, captures, frames, packets, per class...; processed is
 * the captures merged in this run, reused those a killed run had merged.
 * 0 on success (also when up to date), -1 with a message in errbuf. */
int dp_merge_run(const dp_merge_opts *o, dp_preprocess_stats *stats, char *errbuf);

typedef struct dp_pp_knobs dp_pp_knobs;
/* dp_merge_run with preprocess's test knobs (dp_pp_knobs.h; NULL: none):
 * knobs->stop_after stops (as if killed) once that many captures are
 * merged; they are journaled, nothing is committed, stats->interrupted is
 * set. Only tests call it. */
int dp_merge_run_knobs(const dp_merge_opts *o, const dp_pp_knobs *knobs, dp_preprocess_stats *stats,
                       char *errbuf);

#endif
