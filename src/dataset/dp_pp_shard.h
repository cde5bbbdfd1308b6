/* dp_pp_shard: sharded preprocessing (`preprocess --shard I/N`) and the
 * shard manifest that `deeppacket merge` reads. Internal to src/dataset.
 *
 * Shard I of N holds the listed files whose path relative to the source
 * folder (its bytes, no terminating NUL) has an FNV-1a 64 hash h (offset
 * basis 0xcbf29ce484222325, prime 0x100000001b3) with h mod N == I: the same
 * on every machine whatever the source folder is called or where it is
 * mounted. The walk of the source folder (links, duplicates) is the whole
 * folder's; only the shard's files are probed and read. A shard with no
 * capture is an empty dataset (0 rows), not an error.
 *
 * A shard dataset is a complete dataset plus shard.tsv, written before
 * summary.json (a dataset that is not a shard has none):
 *
 *   deeppacket-shard-1 TAB I TAB N TAB fnv1a64
 *   source TAB the source folder as given
 *   filter TAB the --filter (only when the run had one)
 *   listing TAB files TAB hash   the whole folder's listing, the same in every
 *        shard of one state of the folder: its files (all shards'), and the
 *        FNV-1a 64 (16 lower-case hex digits) of each file's relative path,
 *        a NUL, and its size as 8 little-endian bytes, in file order (not
 *        the mtime: a copy of the folder may not keep it). Shards written
 *        before it was added have none; merge checks it when all have one
 *   file TAB capture TAB unreadable TAB size TAB mtime_ns TAB frames TAB kept
 *        TAB skips (6, comma-separated) TAB status TAB path
 *        (one line per listed file of the shard, in file order; capture and
 *        unreadable are 0 or 1, status is empty when all went well)
 *   end TAB number of file lines
 *
 * In source, filter, status and path the bytes below 0x20, 0x7f and '%' are written
 * as %XX (two upper-case hex digits). */
#ifndef DP_PP_SHARD_H
#define DP_PP_SHARD_H

#include <stddef.h>
#include <stdio.h>

#include "dataset/dp_pp_run.h"

#define DP_SHARD_FORMAT "deeppacket-shard-1"
#define DP_SHARD_FILE "shard.tsv"

/* With r->o->shard_count > 0: checks I < N and keeps in r->files only the
 * files of shard I (the others freed). 0, or -1 with a message. */
int dp_pp_shard_select(run *r, char *errbuf);

/* Prints r's shard manifest (above) to f. */
void dp_pp_shard_write(FILE *f, const run *r);

/* A shard manifest read back. */
typedef struct dp_pp_manifest {
    unsigned index, count;  /* shard I of N */
    char *source;
    char *filter;           /* the run's --filter, or NULL */
    int has_listing;        /* a listing line was read: */
    uint64_t listing_files; /* the whole folder's files */
    uint64_t listing_hash;  /* and the hash of its listing */
    capfile *files;         /* rel, path (source/rel), size, mtime_ns, relhash,
                             * is_capture, unreadable, frames, kept, skipped, status */
    size_t nfiles;
} dp_pp_manifest;

/* Reads DIR/shard.tsv into *m (zeroed first). -1 with a message naming the
 * file and line when it is missing or malformed (a dataset made without
 * --shard has none). */
int dp_pp_manifest_read(const char *dir, dp_pp_manifest *m, char *errbuf);

/* Parses manifest text (NUL-terminated; modified in place) into *m, which
 * must be zeroed: 0, or the 1-based number of the first bad line (a
 * header, source, filter, listing, file or end line that does not read as above, a count
 * that differs, text after the end line, or no end line). A pure function
 * over bytes (fuzz/fuzz_dataset.c); *m holds what was read either way and
 * is released with dp_pp_manifest_free. */
size_t dp_pp_manifest_parse(char *text, dp_pp_manifest *m);

/* Frees what dp_pp_manifest_read made; files whose ownership was moved
 * elsewhere must have their rel and path set to NULL. */
void dp_pp_manifest_free(dp_pp_manifest *m);

#endif
