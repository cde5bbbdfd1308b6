/* dp_evalrun: evaluate a model on a test set, the library behind
 * `deeppacket test` (spec section 6).
 *
 * A packet model (cnn, sae) predicts every row of the test set in batches
 * (dp_evalpool: worker threads, each with its own copy of the model; the
 * results do not depend on the thread count); when the set has meta.npy the
 * packets are also aggregated per flow (dp_flowagg). A flow model (gbt,
 * flow) is evaluated per flow instead (dp_flowtest). With a training set,
 * the report also gives the scores without the test flows whose first
 * packets' size and direction sequence occurs in it (dp_seqdup).
 *
 * Report files in REPORT_DIR (docs/report-format.md), each atomic:
 *   packet model: report.md/.json, confusion.csv/.pdf/.png, predictions.npy
 *                 int16 [N]; with flows the same at flow level (flow_*) and
 *                 flows.npy; logprobs.npy float32 [N, C] when asked
 *   flow model:   flow_report.md/.json, flow_confusion.*, flows.npy;
 *                 flow_logprobs.npy float32 [F, C] (flows.npy's order) when asked
 *   both:         report.html, the levels' tables and figures (dp_html.h)
 *   flows.npy     struct [F] (flow '<u8', label '<i2', pred '<i2',
 *                 packets '<u8'), sorted by flow id
 */
#ifndef DP_EVALRUN_H
#define DP_EVALRUN_H

#include <stdint.h>
#include <stdio.h>

#include "eval/dp_eval.h"

typedef struct dp_evalrun_opts {
    const char *test_dir;    /* split test folder or preprocessed dataset folder */
    const char *model_path;  /* model file written by `deeppacket train` */
    const char *report_dir;  /* where the report goes (NULL: MODEL.report) */
    int threads;             /* worker threads (0: all CPUs); packet models */
    int batch;               /* packets per inference batch (0: 256) */
    int save_logprobs;       /* also write logprobs.npy (packet models) or
                              * flow_logprobs.npy (flow models) */
    const char *train_set;   /* NULL, or the training data for the
                              * duplicate-sequence scores */
    int dup_packets;         /* first packets making that sequence (0: 10) */
    FILE *out;               /* the markdown tables go here (NULL: nowhere) */
    int progress;            /* status and progress lines on stderr */
    int precision;           /* DP_PREC_FP32 (default), _BF16 or _AUTO (nn/dp_nn.h): the model's
                              * (dp_model_set_precision); bf16 where the CPU lacks it fails the run */
} dp_evalrun_opts;

typedef struct dp_evalrun_result {
    int flow_model;          /* the model was a flow model (no packet level) */
    int has_packets;         /* `packets` holds the packet-level scores */
    int has_flows;           /* `flows` holds the flow-level scores */
    dp_eval packets;         /* packet level (packet models) */
    dp_eval flows;           /* flow level (test set with meta.npy) */
    uint64_t dropped_flows;  /* with train_set: test flows dropped as duplicates */
    int threads;             /* workers used (packet models) */
    char *report_dir;        /* where the report was written */
} dp_evalrun_result;

/* Fills o with the defaults (everything 0/NULL: see the field comments). */
void dp_evalrun_opts_init(dp_evalrun_opts *o);

/* Evaluates o->model_path on o->test_dir and writes the report files into
 * the report directory (checked writable before the evaluation). Prints the
 * tables to o->out as `deeppacket test` does on stdout. On success fills
 * *r (free with dp_evalrun_result_free) and returns 0; else -1 + a one-line
 * message in errbuf naming what failed (e.g. "cannot load the model: ...",
 * "DIR: the test set has no rows: nothing to evaluate"); *r is then empty. */
int dp_evalrun(const dp_evalrun_opts *o, dp_evalrun_result *r, char *errbuf);

/* Frees what dp_evalrun filled (safe on an empty result). */
void dp_evalrun_result_free(dp_evalrun_result *r);

#endif
