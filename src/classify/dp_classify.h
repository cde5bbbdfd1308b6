/* dp_classify: run a trained model on captured frames, per packet or per
 * bidirectional flow (the `classify` command and include/deeppacket.h).
 *
 * Frames go through dp_packet_transform (exactly the training transform);
 * skipped ones are counted by reason, kept ones are batched through
 * dp_model_predict. Verdicts are handed to a callback in packet order
 * (per-packet mode) or when a flow has its first N kept packets or ends
 * (per-flow mode: idle timeout, eviction from a full table, end of the
 * source, interruption). A flow verdict sums the log-probabilities of its
 * classified packets: the largest sum is its class, and the softmax of
 * the mean (sum / packets) its probabilities (dp_cls_topk_votes).
 *
 * A flow model (dp_model_input == DP_INPUT_FLOW) gives per-flow verdicts
 * only: each kept packet's flow features (dp_flowfeat, the model's mask
 * and configuration) go into its flow's row; the row is predicted when it
 * has the model's N packets or the flow ends. Packets past the first N of a
 * flow only update the flow table (they skip the model).
 *
 * Time is the capture's: frame timestamps drive idle timeouts, so a
 * recorded capture gives the same verdicts however fast it is read.
 */
#ifndef DP_CLASSIFY_H
#define DP_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "capture/dp_capture.h"
#include "model/dp_model.h"
#include "packet/dp_packet.h"
#include "util/dp_flowmap.h"

#define DP_CLS_TOP 3

/* ---- the flow table -----------------------------------------------------------
 * Bounded table of bidirectional flows keyed by dp_flow_id, with the flows
 * also kept in a list ordered by last activity (least recent first), so
 * that idle and oldest flows are found in O(1). */
typedef struct dp_flow {
    uint64_t id;
    dp_pkt_info tuple;      /* first kept packet's parse: real addresses/ports */
    double first_time, last_time;   /* its first packet's time, the latest of its packets' times */
    double idle_from;       /* the time its idle timeout counts from: last_time, or the
                             * time of the frame that showed the clock gone back
                             * past last_time by more than the timeout */
    uint64_t first_index;   /* frame index of the first kept packet */
    uint32_t queued;        /* kept packets sent to the model (<= first N) */
    uint32_t classified;    /* of those, already predicted */
    uint32_t inbatch;       /* of those, waiting in the current batch */
    int done;               /* verdict emitted: later packets are ignored */
    double *sum;            /* [nclasses] summed log-probabilities */
    float *row;             /* flow models: the flow row [N*F] being filled
                             * (malloc'd on the first packet, freed on removal) */
    double prev_time;       /* flow models: time of the last kept packet */
    /* internal links */
    int32_t free_next, prev, next;
} dp_flow;

typedef struct dp_flowtable {
    dp_flow *flows;         /* [cap] */
    double *sums;           /* [cap * nclasses] */
    dp_flowmap index;       /* flow id -> slot in flows */
    int32_t cap, count, free_head, lru_head, lru_tail;
    int32_t alloc;          /* slots allocated so far (<= cap) */
    int nclasses;
} dp_flowtable;

/* Creates a table for at most cap (>= 1) flows; memory grows with the flows
 * held, up to cap. -1 + message when out of memory. */
int dp_flowtable_init(dp_flowtable *t, int32_t cap, int nclasses, char *errbuf);
void dp_flowtable_free(dp_flowtable *t);
/* The flow with this id, or NULL. */
dp_flow *dp_flowtable_find(dp_flowtable *t, uint64_t id);
/* Adds a new flow (the table must not be full and must not hold id); its
 * sums are zeroed and it becomes the most recent. NULL when out of memory
 * (the table is unchanged). Pointers to flows are valid until the next add. */
dp_flow *dp_flowtable_add(dp_flowtable *t, uint64_t id);
/* Marks a flow active (moves it to the most recent end). */
void dp_flowtable_touch(dp_flowtable *t, dp_flow *f);
/* Least recently active flow, or NULL when empty. */
dp_flow *dp_flowtable_oldest(dp_flowtable *t);
/* Removes a flow (its pointer becomes invalid; its row is freed). */
void dp_flowtable_remove(dp_flowtable *t, dp_flow *f);

/* ---- the classifier -------------------------------------------------------------- */
typedef struct dp_cls_opts {
    int per_flow;          /* 0: one verdict per kept packet; 1: per flow */
    int first_n;           /* per flow: packets used per flow (10; a flow model's N) */
    double idle_timeout;   /* per flow: seconds without packets that end a flow (30) */
    int32_t max_flows;     /* flow table capacity (65536) */
    int batch;             /* packets per dp_model_predict call (64) */
    double min_prob;       /* a verdict whose best probability is below it is
                            * "unknown" (dp_cls_result.unknown); 0: never */
} dp_cls_opts;

void dp_cls_opts_default(dp_cls_opts *o);

/* Why a flow verdict was emitted. */
typedef enum {
    DP_FLOW_COMPLETE = 0,  /* the flow reached first_n packets */
    DP_FLOW_IDLE,          /* idle timeout */
    DP_FLOW_EVICTED,       /* table full: the least recently active flow */
    DP_FLOW_END,           /* end of the capture */
    DP_FLOW_INTERRUPTED,   /* Ctrl-C / SIGTERM */
} dp_flow_reason;
const char *dp_flow_reason_name(dp_flow_reason r);

/* One verdict, valid during the callback. */
typedef struct dp_cls_result {
    int per_flow;
    const char *source;         /* capture path or interface name */
    double time;                /* packet time (flow: its first kept packet) */
    double end;                 /* flow: last packet time (= time per packet) */
    uint64_t index;             /* frame index in the source (flow: first kept) */
    uint32_t npackets;          /* packets the verdict is made of (1 per packet) */
    dp_flow_reason reason;      /* flows only */
    uint64_t flow_id;
    const dp_pkt_info *tuple;   /* real 5-tuple (flow: as its first kept packet) */
    int ntop;                   /* min(DP_CLS_TOP, nclasses) */
    int top[DP_CLS_TOP];        /* best class ids, best first */
    double prob[DP_CLS_TOP];    /* their probabilities */
    int unknown;                /* prob[0] < the options' min_prob: written as class -1,
                                 * label "unknown" (top[] keeps the guesses) */
} dp_cls_result;

typedef void (*dp_cls_emit_fn)(void *ctx, const dp_cls_result *r);

typedef struct dp_cls_stats {
    uint64_t seen, kept, classified, ignored; /* ignored: flow already decided */
    uint64_t skipped[DP_VERDICT_COUNT];       /* by dp_verdict (DP_KEEP unused) */
    uint64_t flows;                           /* flows created */
    uint64_t verdicts;                        /* emitted */
    uint64_t unknown;                         /* ... of them "unknown" (below min_prob) */
    uint64_t evicted_idle, evicted_full;      /* flows removed that way */
    double model_seconds;                     /* wall time inside dp_model_predict */
    double model_cpu_seconds;                 /* process CPU time inside it (all threads) */
} dp_cls_stats;

typedef struct dp_classifier dp_classifier;

/* A classifier over model m (not owned; used from one thread). emit is
 * called for every verdict. NULL + message on bad options / memory, or a
 * flow model asked for per-packet verdicts. */
dp_classifier *dp_classifier_new(dp_model *m, const dp_cls_opts *o, dp_cls_emit_fn emit, void *ctx,
                                 char *errbuf);
void dp_classifier_free(dp_classifier *c);
/* Starts a new source (capture file or interface). Its name salts flow ids
 * (equal 5-tuples in two captures are two flows). Call dp_classifier_finish
 * on the previous source first. name is not copied. */
void dp_classifier_begin(dp_classifier *c, const char *name);
/* Feeds one frame. Returns 0, or -1 + message if the model fails. */
int dp_classifier_frame(dp_classifier *c, const dp_frame *f, char *errbuf);
/* Predicts the partial batch and hands out what it decides (per-packet
 * verdicts, flows that reach N), ending no flow: for a stream that stalls,
 * whose clock (the frames' time) stands still meanwhile. Returns 0, or -1 +
 * message if the model fails. */
int dp_classifier_flush(dp_classifier *c, char *errbuf);
/* Low latency for live sources: predicts the partial batch and ends flows
 * idle at time `now` (seconds since the epoch). */
int dp_classifier_tick(dp_classifier *c, double now, char *errbuf);
/* Predicts what is pending and emits every undecided flow with `reason`
 * (DP_FLOW_END or DP_FLOW_INTERRUPTED), emptying the table. */
int dp_classifier_finish(dp_classifier *c, dp_flow_reason reason, char *errbuf);
const dp_cls_stats *dp_classifier_stats(const dp_classifier *c);

/* The verdict's class id and label as written: the best class, or -1 and
 * DP_CLS_UNKNOWN when r is "unknown" (below the options' min_prob). */
#define DP_CLS_UNKNOWN "unknown"
int dp_cls_result_class(const dp_cls_result *r);
const char *dp_cls_result_label(const dp_model *m, const dp_cls_result *r);
/* Writes r as one JSON object and a newline (class names from m). */
void dp_cls_result_json(FILE *f, const dp_model *m, const dp_cls_result *r);
/* Writes r's best classes as the member `"top":[{"class":C,"label":L,"prob":P},...]`
 * (no comma around it; shared by the JSON lines and EVE writers). */
void dp_cls_top_json(FILE *f, const dp_model *m, const dp_cls_result *r);
/* Writes address a (t's IP version) in text form into out[cap] (>= 46 bytes). */
void dp_cls_addr_str(const dp_pkt_info *t, const uint8_t *a, char *out, size_t cap);

/* Top-k of n log-probabilities (or summed log-probabilities): ids best
 * first, probabilities normalised by softmax. Returns k = min(k, n). */
int dp_cls_topk(const double *lp, int n, int k, int *ids, double *probs);
/* A packet model's flow verdict from the sums of its npk packets'
 * log-probabilities: the classes ranked by the sums (the verdict of
 * summed log-probabilities, as `test` votes), their probabilities the
 * softmax of the mean, sum / npk (the normalised geometric mean of the
 * packets' probabilities). The sums' own softmax counts every packet as
 * independent evidence and is near 1 for most flows, right or wrong
 * (docs/accuracy.md, "Verdicts by probability"). Returns k = min(k, n). */
int dp_cls_topk_votes(const double *sum, int n, uint32_t npk, int k, int *ids, double *probs);

#endif
