/* dp_flowtest: evaluates a flow model (dp_model_input == DP_INPUT_FLOW) on
 * the flows of a test set: one verdict per flow, the argmax of the model's
 * log-probabilities for its flow row (first maximum wins); the flow's true
 * label is its first packet's (dp_flowset; flows with packets of another
 * label are counted in `conflicts`). The evaluation fills a dp_eval
 * (per-class table, macro and weighted averages, VPN vs non-VPN accuracy)
 * that dp_eval_write_report turns into the report files. */
#ifndef DP_FLOWTEST_H
#define DP_FLOWTEST_H

#include <stdint.h>

#include "dataset/dp_dataset.h"
#include "eval/dp_eval.h"
#include "model/dp_model.h"

typedef struct dp_flowtest {
    dp_eval eval;       /* flow level, over the set's classes */
    uint64_t nflows;
    uint64_t packets;   /* packets of the test flows */
    uint64_t conflicts; /* flows whose packets do not all carry the first one's label */
    uint64_t *ids;      /* [nflows] flow ids, in flow order (dp_flowset) */
    int16_t *label;     /* [nflows] true labels */
    int16_t *pred;      /* [nflows] verdicts */
    uint32_t *npackets; /* [nflows] packets per flow */
    float *logprobs;    /* [nflows, C] the model's log-probabilities, C its classes */
} dp_flowtest;

/* Builds the flowset of s (opened from dir) with the model's flow
 * configuration and predicts every flow. Refuses a packet model ("MODEL is
 * a packet model ...") and a set without meta.npy (dp_flowset_build). The
 * model's classes must be the set's (the caller checks). 0 or -1 + message. */
int dp_flowtest_run(dp_flowtest *r, dp_model *m, const char *mpath, const dp_splitset *s, const char *dir,
                    char *errbuf);
void dp_flowtest_free(dp_flowtest *r);

#endif
