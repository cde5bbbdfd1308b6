/* dp_pp_pipeline: preprocess's worker pipeline. Internal to src/dataset.
 *
 * Worker threads take the queued captures (r->queue) in file order and
 * turn each into records (dp_pp_part.h), in chunks of r->chunk_size bytes
 * (each worker has at most r->worker_chunks). The main thread merges the
 * captures in file order as their chunks come (dp_pp_merge.h) and gives
 * the chunks back. A capture that is not the merge's current one and has
 * used up its worker's chunks is "spilled": its records go to its part
 * file, which the merge reads once the capture is read whole. */
#ifndef DP_PP_PIPELINE_H
#define DP_PP_PIPELINE_H

#include "dataset/dp_pp_run.h"

/* Adds the record rec (size bytes) of capture cf to the worker's current
 * chunk, handing the chunk to the merge first when it is full (or, for a
 * capture spilled to its part file, writing it there); counts it kept. */
int dp_pp_emit_record(run *r, capfile *cf, wstate *ws, const uint8_t *rec, size_t size, char *errbuf);

/* Starts the worker threads (r->o->threads, or one per CPU; at most one
 * per queued capture, unless the last queued capture is big enough to be
 * split, dp_pp_split.h) when captures are queued; sets r->st->threads. */
int dp_pp_workers_start(run *r, char *errbuf);

/* Merges the captures from r->m.merged on, in file order, as the workers
 * read them. Returns 1 when all are merged, 0 when the run stopped first
 * (a worker failed, or stop_after), -1 on a failure of the merge. */
int dp_pp_merge_all(run *r, char *errbuf);

/* Waits for the workers to end; when `stop`, asks them to stop first (and
 * marks the run failed). */
void dp_pp_workers_join(run *r, int stop);

/* Frees the chunks still queued or held by finished workers, and the
 * workers' states. */
void dp_pp_pipeline_free(run *r);

#endif
