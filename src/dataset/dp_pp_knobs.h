/* dp_pp_knobs: preprocess's test knobs, kept out of the public options
 * (dp_preprocess_opts). Only tests include this. */
#ifndef DP_PP_KNOBS_H
#define DP_PP_KNOBS_H

#include <stddef.h>

#include "dataset/dp_preprocess.h"

typedef struct dp_pp_knobs {
    size_t stop_after;   /* 0, or stop (as if interrupted) once this many
                          * captures have been read; they are merged and
                          * journaled, nothing is committed, and
                          * stats->interrupted is set */
    size_t chunk_bytes;  /* 0, or the size of the buffers that hand records to
                          * the merge (at least a record; each worker then has
                          * 2), so that captures spill to part files */
    size_t split_bytes;  /* 0, or the size from which a capture may be split
                          * across the workers (default 8 MB; dp_pp_split.h) */
} dp_pp_knobs;

/* dp_preprocess_run with test knobs (NULL: none, as dp_preprocess_run). */
int dp_preprocess_run_knobs(const dp_preprocess_opts *o, const dp_pp_knobs *k,
                            dp_preprocess_stats *stats, char *errbuf);

#endif
