/* dp_eval: the test report (spec section 6).
 *
 * Metrics follow scikit-learn's classification_report with zero_division=0
 * and labels = unique(y_true U y_pred):
 *   recall    = tp / support            (0 when support is 0)
 *   precision = tp / predicted          (0 when nothing was predicted)
 *   f1        = 2 tp / (support + predicted)   (0 when both are 0)
 *   accuracy  = correct / n
 *   macro avg = plain mean over the listed classes
 *   weighted  = mean over the listed classes weighted by support
 * VPN vs non-VPN accuracy: when the class names include both kinds, the
 * share of samples whose true and predicted classes are on the same side
 * (names starting with "VPN" vs the others); printed and in the JSON.
 * A class is "listed" (in the table and the averages) when it has support
 * or was predicted at least once; other classes are left out, as sklearn
 * does. The confusion matrix is counts [true][pred] over all nclasses.
 *
 * Flow level (dp_flowagg): one verdict per flow = argmax of the sum of its
 * packets' log-probabilities (first maximum wins, as numpy.argmax); the
 * flow's true label is its packets' label, or the majority label when they
 * disagree (ties: lowest class id, as numpy.bincount().argmax()).
 *
 * Report files (dp_eval_write_report), all written atomically into DIR with
 * an optional file-name prefix (e.g. "flow_"):
 *   <prefix>report.md       markdown table | label | recall | precision |
 *                           f1-score | support |, last row "Wtd. Average",
 *                           then accuracy and macro average lines
 *   <prefix>report.json     everything, machine-readable (docs/report-format.md)
 *   <prefix>confusion.csv   counts, header row and first column = class names
 *   <prefix>confusion.pdf   row-normalised confusion matrix figure (cairo)
 *   <prefix>confusion.png   the same figure as an image
 */
#ifndef DP_EVAL_H
#define DP_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "util/dp_util.h"

typedef struct dp_eval_class {
    uint64_t support;    /* packets (or flows) whose true label is the class */
    uint64_t predicted;  /* ... predicted as the class */
    uint64_t tp;         /* ... both */
    double recall, precision, f1;
    int listed;          /* support > 0 || predicted > 0 */
} dp_eval_class;

typedef struct dp_eval_avg {
    double recall, precision, f1;
    uint64_t support;    /* sum of the listed classes' support (= n) */
} dp_eval_avg;

typedef struct dp_eval {
    int nclasses;
    char **names;        /* nclasses copies of the class names */
    uint64_t *cm;        /* [nclasses * nclasses], cm[t * nclasses + p] */
    uint64_t n;          /* samples counted */
    uint64_t correct;
    uint64_t invalid;    /* dp_eval_add calls with a label out of range */
    /* Filled by dp_eval_finish: */
    dp_eval_class *cls;  /* [nclasses] */
    int nlisted;
    double accuracy;
    dp_eval_avg macro, weighted;
    /* VPN vs non-VPN (issue 10): when some class names start with "VPN" and
     * some do not, the accuracy with each side folded into one class */
    int has_vpn;
    uint64_t vpn_correct;
    double vpn_accuracy;
} dp_eval;

/* Prepares an empty evaluation over nclasses (1..DP_MAX_CLASSES) classes.
 * names[c] may be NULL (printed as "class <c>"). The names are copied.
 * Returns 0, or -1 + message. */
int dp_eval_init(dp_eval *e, int nclasses, const char *const *names, char *errbuf);
/* Counts `count` samples with true label t predicted as p. A label out of
 * [0, nclasses) is not counted in the matrix but in e->invalid; returns -1
 * then, else 0. */
int dp_eval_add_n(dp_eval *e, int t, int p, uint64_t count);
static inline int dp_eval_add(dp_eval *e, int t, int p) { return dp_eval_add_n(e, t, p, 1); }
/* Adds every count of another matrix of the same shape ([t * nclasses + p]). */
void dp_eval_add_matrix(dp_eval *e, const uint64_t *cm);
/* Computes the per-class metrics and averages from the counts so far (may
 * be called again after more adds). */
void dp_eval_finish(dp_eval *e);
void dp_eval_free(dp_eval *e);

/* Convenience: init + add n pairs + finish. Labels out of range are counted
 * in e->invalid (not an error). */
int dp_eval_compute(dp_eval *e, int nclasses, const char *const *names,
                    const int *y_true, const int *y_pred, size_t n, char *errbuf);

/* Row-normalised confusion value (cm[t][p] / support(t); 0 for a row
 * without support, like sklearn's normalize='true' + nan_to_num). */
double dp_eval_norm(const dp_eval *e, int t, int p);

/* What the report says about where the numbers came from. Any field may be
 * NULL / 0. */
typedef struct dp_report_info {
    const char *level;       /* "packet" or "flow"; names the unit counted */
    const char *task;        /* "app", "traffic" */
    const char *model;       /* model file path */
    const char *model_kind;  /* "cnn", "sae" */
    const char *test_set;    /* test set directory */
    uint64_t packets;        /* flow level: packets behind the flows */
    uint64_t label_conflicts;/* flow level: flows whose packets disagree */
    int first_label;         /* flow level: a flow's true label is its first packet's
                              * (flow models), not its packets' majority */
    /* the model's classes the test set has no sample of (names; NULL/0: none) */
    const char *const *missing;
    int nmissing;
    /* scores without the test flows whose first packets' size and direction
     * sequence occurs in the training set (NULL: not computed) */
    const struct dp_report_dedup *dedup;
    /* the verdicts by probability threshold (dp_coverage.h; NULL: none) */
    const struct dp_coverage *coverage;
} dp_report_info;

typedef struct dp_report_dedup {
    const char *train_set;   /* the training data compared against */
    int seq_packets;         /* N: the first N packets of a flow */
    uint64_t test_flows;     /* flows of the test set */
    uint64_t dropped_flows;  /* ... whose sequence occurs in the training set */
    const dp_eval *eval;     /* this level's scores over the other flows */
} dp_report_dedup;

/* Writes the markdown report (the table, then accuracy and macro average
 * lines) to f. dp_eval_finish must have been called. */
void dp_eval_print_markdown(const dp_eval *e, const dp_report_info *info, FILE *f);
/* Writes the JSON report to f. */
void dp_eval_print_json(const dp_eval *e, const dp_report_info *info, FILE *f);
/* Writes the confusion counts as CSV to f (all nclasses classes). */
void dp_eval_print_csv(const dp_eval *e, FILE *f);

/* Draws the row-normalised confusion matrix of the listed classes (all
 * classes if none is listed) to PATH, atomically. format: "pdf" or "png".
 * title: one line above the figure (NULL: "Confusion matrix"). */
int dp_eval_plot(const dp_eval *e, const char *path, const char *format,
                 const char *title, char *errbuf);

/* Releases the process-wide caches cairo and fontconfig keep after drawing
 * text (so that leak checkers stay quiet). Call at most at exit, after the
 * last dp_eval_plot; a later plot still works (the caches are rebuilt). */
void dp_eval_plot_release(void);

/* Creates DIR (mkdir -p) and writes the five report files described at the
 * top of this header, each atomically. Returns 0, or -1 + message naming the
 * file that could not be written. */
int dp_eval_write_report(const dp_eval *e, const dp_report_info *info, const char *dir,
                         const char *prefix, char *errbuf);

/* ---- flow-level aggregation ------------------------------------------------ */
typedef struct dp_flowagg dp_flowagg;

/* An empty aggregator for nclasses classes; NULL + message on bad input or
 * no memory. */
dp_flowagg *dp_flowagg_new(int nclasses, char *errbuf);
void dp_flowagg_free(dp_flowagg *a);
/* Adds one packet of flow `flow` with true label `label` (in [0, nclasses))
 * and its nclasses log-probabilities. Returns 0, or -1 + message (label out
 * of range, no memory). */
int dp_flowagg_add(dp_flowagg *a, uint64_t flow, int label, const float *logprobs,
                   char *errbuf);
/* Adds everything src holds into dst (same nclasses); src is unchanged. */
int dp_flowagg_merge(dp_flowagg *dst, const dp_flowagg *src, char *errbuf);
uint64_t dp_flowagg_flows(const dp_flowagg *a);
uint64_t dp_flowagg_packets(const dp_flowagg *a);
/* Flows whose packets do not all carry the same label. */
uint64_t dp_flowagg_conflicts(const dp_flowagg *a);
/* The verdict and true label of each flow, in first-seen order of the flow
 * ids (i < dp_flowagg_flows). Returns 0, or -1 when i is out of range. */
int dp_flowagg_get(const dp_flowagg *a, uint64_t i, uint64_t *flow, int *label, int *pred,
                   uint64_t *packets);
/* The probability of flow i's verdict: the softmax of its packets' mean
 * log-probability at the verdict (as classify --per flow gives it,
 * dp_cls_topk_votes); 0 when i is out of range. */
double dp_flowagg_prob(const dp_flowagg *a, uint64_t i);
/* The verdicts by probability of every flow (dp_coverage.h). 0, or -1 +
 * message (no memory). */
struct dp_coverage;
int dp_flowagg_coverage(const dp_flowagg *a, struct dp_coverage *cv, char *errbuf);
/* Counts every flow (true label, verdict) into e (init'ed by the caller with
 * the same nclasses) and calls dp_eval_finish. */
int dp_flowagg_eval(const dp_flowagg *a, dp_eval *e, char *errbuf);

#endif
