/* dp_pp_part: preprocess's record format and the .parts folder. Internal to
 * src/dataset.
 *
 * A worker turns a capture into records, one per kept packet:
 *
 *   1. the dp_meta row (its `file` 0: the merge sets it);
 *   2. the vector's length without its trailing zeros (u16 little-endian);
 *   3. those bytes of the vector.
 *
 * Records go into chunks handed to the merge in memory, or, when a
 * capture is "spilled", into its part file DATASET/.parts/<key>.part (key:
 * 16 hex digits of the capture's relhash): the records, then a trailer of
 * text "key=value" lines (version, relhash, size, mtime, frames, kept,
 * rec_bytes, records: the checksum of the records (dp_pp_records_hash),
 * skipped, filter, status, and last check: FNV-1a of the text before that
 * line), the text's length (u64 little-endian) and "DPPARTOK". A part is
 * written as <key>.part.tmp, fsynced, then renamed: a <key>.part is whole
 * unless something changed it since, and the checksums tell. The .parts
 * folder also holds the resume journal and the partial arrays
 * (dp_pp_merge.h). */
#ifndef DP_PP_PART_H
#define DP_PP_PART_H

#include <stddef.h>
#include <stdint.h>

#include "capture/dp_capture.h"
#include "dataset/dp_pp_run.h"

#define REC_HEAD (sizeof(dp_meta) + 2) /* record: meta row, 2-byte length */
#define REC_MAX (REC_HEAD + DP_VEC_LEN)

/* Length of a vector (DP_VEC_LEN bytes) without its trailing zero bytes. */
size_t dp_pp_vec_used(const uint8_t *vec);

/* Writes the record of meta m and vector vec at p (room: REC_MAX);
 * returns its size. */
size_t dp_pp_rec_put(uint8_t *p, const dp_meta *m, const uint8_t *vec);

/* Writes at p (room: REC_MAX) the record of kept frame f of the capture
 * whose path hashes to relhash (its flow salt), parsed into info with
 * vector vec; returns its size. */
size_t dp_pp_frame_record(uint8_t *p, uint64_t relhash, const dp_frame *f, const dp_pkt_info *info,
                          const uint8_t *vec);

/* Size of the whole, well-formed record at p within n bytes (REC_HEAD +
 * its vector bytes), or 0 when the n bytes do not hold one (cut short, or
 * a length over DP_VEC_LEN). */
size_t dp_pp_rec_size(const uint8_t *p, size_t n);

/* DATASET/.parts/<key>.<ext> of a capture (malloc'd; NULL out of memory). */
char *dp_pp_part_path(const run *r, const capfile *cf, const char *ext);

/* h extended by a --filter's text (h itself without one: the hashes of
 * runs made before --filter stay the same). */
uint64_t dp_pp_filter_hash(uint64_t h, const char *filter);

/* The key of a capture's filter (cf->filter) in part trailers: 0 for none,
 * else odd. */
uint64_t dp_pp_filter_key(const char *filter);

/* The part checksum h chained over the n bytes at p, which hold whole
 * records: dp_hash8 of each record in turn (a rest that is not a whole
 * record is hashed as one piece). Feeding a part's records in any cut
 * between records gives the same value. */
uint64_t dp_pp_records_hash(uint64_t h, const uint8_t *p, size_t n);

/* Formats the trailer closing cf's part (its counts and status, rec_bytes
 * of records before it and their checksum rec_hash, the key of its filter)
 * into t; returns its length, -1 when cap is short. */
int dp_pp_part_trailer(const capfile *cf, uint64_t rec_bytes, uint64_t rec_hash, char *t, size_t cap);

/* Returns 1 when cf's part exists, is whole, was made from the source as
 * it is now, and its records and trailer match their checksums; fills
 * cf's counts, status and part_bytes from the trailer. 0 otherwise: the
 * part (if any) is removed and the capture is read again; a part that is
 * damaged (no trailer, a checksum or a size that does not match) is first
 * reported as a warning naming the part, the capture and what is wrong
 * (one made from another state of the source, or by another version, is
 * dropped silently). Never fails the run. */
int dp_pp_part_load(run *r, capfile *cf);

/* Removes temp files of earlier runs in the target, and in the parts
 * folder everything but the journal, the partial arrays and the parts of
 * current captures. */
void dp_pp_parts_clean_stale(run *r);

/* Deletes the journal, every capture's part and the parts folder (once the
 * arrays are committed). */
void dp_pp_parts_remove(const run *r);

#endif
