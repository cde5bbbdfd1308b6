/* dp_pp_split: one big capture read by one worker and transformed by all.
 * Internal to src/dataset.
 *
 * Workers take whole captures, so the last capture of a run (or the only
 * one) would keep one core busy while the others idle. When the capture a
 * worker takes is the last one queued, is at least r->split_bytes big and
 * the run has more than one worker, it is split; a big capture being read
 * unsplit is split from where its reader is when a worker runs out of
 * captures (one capture split at a time). Split: its worker (the owner)
 * reads frames and copies them into batches of up to 256 frames in a ring
 * (2 per worker, plus 2), the idle workers (and the owner, when no
 * helper is free) transform whole batches into records, and the owner hands
 * the batches' records on in frame order, as the unsplit path would have
 * (dp_pp_emit_record): the dataset is the same, byte for byte. Memory: the
 * ring's frames and records, about 0.8 MB a batch. */
#ifndef DP_PP_SPLIT_H
#define DP_PP_SPLIT_H

#include "capture/dp_capture.h"
#include "dataset/dp_pp_run.h"

/* Under r->mu, when worker ws takes capture cf from the queue: 1 (and the
 * run marked so that idle workers wait for its batches) when cf is to be
 * split as described above, else 0. */
int dp_pp_split_wanted(run *r, const capfile *cf);

/* Called by the worker reading capture cf unsplit when workers are idle:
 * 1 (and the run marked as for dp_pp_split_wanted) when the rest of cf is
 * to be split: cf is big enough, the run has more than one worker and no
 * other capture is being split; else 0. Takes r->mu. */
int dp_pp_split_now(run *r, const capfile *cf);

/* For a capture that dp_pp_split_wanted chose and that is skipped before
 * dp_pp_split_read (it cannot be opened, its link type is unsupported, its
 * filter cannot apply): unmarks the run and wakes the idle workers, which
 * otherwise waited for its batches for ever. Takes r->mu. */
void dp_pp_split_cancel(run *r);

/* Reads the (remaining) frames of open capture c (of capture cf, which
 * dp_pp_split_wanted or dp_pp_split_now chose) with the help of the idle
 * workers, adding to cf's counts. Returns as the unsplit reading does:
 * dp_capture_next's last status (0 at the end; ceb holds its message), or
 * -2 when handing records on failed (errbuf); *bad_lt (-1 or a link type
 * met before) is set to the first unsupported link type met. vec: a
 * DP_VEC_LEN buffer. */
int dp_pp_split_read(run *r, capfile *cf, wstate *ws, dp_capture *c, uint8_t *vec, int *bad_lt,
                     char *ceb, char *errbuf);

/* Under r->mu (held on return), for a worker with no capture left to
 * take: transforms a waiting batch of the capture being split, or waits
 * (counted idle) while captures are still being read, since their readers
 * may split them. 1 when there was work to do or to wait for, 0 when every
 * capture taken is finished (the worker may end). */
int dp_pp_split_help(run *r, uint8_t *vec);

#endif
