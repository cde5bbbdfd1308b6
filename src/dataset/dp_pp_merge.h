/* dp_pp_merge: preprocess's merge into the four arrays, and its resume
 * journal. Internal to src/dataset.
 *
 * The merge appends each capture's records (dp_pp_part.h), in file order,
 * to the four arrays (vectors, app, traffic, meta), built in
 * DATASET/.parts/<name>.partial by dp_npy appenders (direct I/O). It runs
 * in the main thread while the workers read later captures.
 *
 * The journal (.parts/journal) says which captures are in the partial
 * arrays: a header line "deeppacket-journal-2 <hash of the label table>",
 * then one line per merged capture, tab-separated: its number, key, source
 * size and mtime, frames, kept, skip counters, the row count after it, a
 * checksum of its rows, its status, and an FNV-1a checksum of the line. A
 * line is written only once the rows it covers are in the files. A rerun
 * keeps the longest prefix of lines that matches the captures as they are
 * now, that the files hold and whose rows check, cuts the arrays back to
 * it and goes on from there. */
#ifndef DP_PP_MERGE_H
#define DP_PP_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "dataset/dp_npy.h"

typedef struct run run;
typedef struct capfile capfile;

typedef struct merger {
    dp_npy_appender w[4];
    int opened;
    int jfd;                /* journal, O_APPEND; -1 when closed */
    uint8_t *rbuf;          /* part read buffer (made on first use) */
    size_t done;            /* captures merged in this run */
    size_t merged, journaled; /* captures (in order) merged / in the journal */
    uint64_t rows;
    uint64_t hash;          /* row hash of the capture being merged */
} merger;

/* Resumes from the journal and partial arrays of an earlier run, or starts
 * new ones. Sets cf->journaled (and the counts the journal records) for
 * the captures already in the arrays; r->m.merged is their number. */
int dp_pp_merger_start(run *r, char *errbuf);

/* Appends records (a chunk, or a slice of a part file) of capture cf, the
 * file_index-th capture; counts them in *count. `where` names the source of
 * the records in the error message when they are corrupt. */
int dp_pp_merge_records(merger *m, const capfile *cf, uint32_t file_index, const uint8_t *p,
                        size_t n, uint64_t *count, const char *where, char *errbuf);

/* Appends one row of capture cf (the file_index-th): the first `used`
 * bytes of vector vec (the rest zero), cf's labels, and the dp_meta row at
 * meta with its `file` set to file_index. */
int dp_pp_merge_row(merger *m, const capfile *cf, uint32_t file_index, const uint8_t *vec,
                    size_t used, const void *meta, char *errbuf);

/* Appends the records of cf's part file. */
int dp_pp_merge_part(const run *r, merger *m, const capfile *cf, uint32_t file_index,
                     uint64_t *count, char *errbuf);

/* Closes the merge of capture cf (count records appended): checks the count
 * against its kept packets, records its row range and checksum, and
 * journals what is on disk. */
int dp_pp_merge_done(run *r, capfile *cf, uint64_t count, char *errbuf);

/* Writes the journal lines of the merged captures whose rows are all in
 * the files (all of them when `all`: the arrays are flushed first), and
 * deletes their parts. */
int dp_pp_journal_sync(const run *r, merger *m, int all, char *errbuf);

/* Commits the four arrays to their final names in the dataset folder, in
 * steps that a rerun resumes from: (1) every array's rows fsynced, (2) every
 * final header written and fsynced, (3) the old dataset's summary.json
 * removed (from here the folder is incomplete: r->replacing) and the
 * renames. Closes the merger. */
int dp_pp_merger_commit(run *r, char *errbuf);

/* Closes the arrays and the journal (both stay on disk for a rerun). */
void dp_pp_merger_close(merger *m);

#endif
