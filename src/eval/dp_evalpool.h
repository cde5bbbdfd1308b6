/* dp_evalpool: a packet model's predictions over every row of a test set,
 * by worker threads taking batches in turn (used by dp_evalrun). Each
 * worker holds its own copy of the model (a model is not shared between
 * threads); the neural-network layers run single-threaded inside each
 * worker. The results do not depend on the thread count. */
#ifndef DP_EVALPOOL_H
#define DP_EVALPOOL_H

#include <stdint.h>

#include "dataset/dp_dataset.h"
#include "eval/dp_eval.h"
#include "model/dp_model.h"

typedef struct dp_evalpool_out {
    int16_t *pred;      /* [n] predicted class of each row (argmax, first wins) */
    float *prob;        /* [n] the verdict's probability, exp(its log-probability) */
    float *logprobs;    /* [n, C] or NULL (not asked for) */
    uint64_t *cm;       /* [C * C] counts [true][pred] */
    dp_flowagg *flows;  /* the per-flow aggregation (NULL: set without meta) */
    double secs;        /* time spent predicting */
    int threads;        /* workers used */
} dp_evalpool_out;

/* Predicts every row of s (C = s->nclasses classes, the model's) with up to
 * `threads` workers (0: all CPUs; never more than batches) of `batch` rows.
 * Worker 0 uses m0 (still the caller's afterwards); the others a copy of it
 * (dp_model_clone).
 * With `progress`, prints the start line (naming dir and task_name)
 * and a progress line on stderr. Returns 0 and fills *o (free with
 * dp_evalpool_out_free), or -1 + message (no memory, a model that cannot be
 * loaded or fails to predict, no thread started); *o is then empty. */
int dp_evalpool_run(dp_model *m0, const dp_splitset *s, const char *dir,
                    const char *task_name, int threads, int batch, int save_logprobs, int progress,
                    dp_evalpool_out *o, char *errbuf);
void dp_evalpool_out_free(dp_evalpool_out *o);

#endif
