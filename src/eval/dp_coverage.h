/* dp_coverage: selective classification ("risk-coverage"): if a verdict
 * whose probability is below a threshold were left unclassified (`classify
 * --min-prob`: "unknown"), how many verdicts would be given and how right
 * would they be. On traffic a model has never seen this is what a user can
 * trust: the verdicts the model is sure of, and the share of them.
 *
 * For each threshold t of dp_coverage_thresholds (0 = every verdict), over
 * the samples whose verdict probability is >= t: their count (kept), the
 * share of all samples (coverage), and their accuracy, weighted and macro
 * F1 (dp_eval's sklearn semantics, over those samples only; undefined when
 * none is kept: written as null).
 *
 * A verdict's probability: a packet's, the softmax of its log-probabilities
 * at the verdict; a flow voted from its packets', the softmax of their mean
 * log-probability (as `classify --per flow` gives it); a flow model's,
 * the softmax of its flow row's output. */
#ifndef DP_COVERAGE_H
#define DP_COVERAGE_H

#include <stdint.h>
#include <stdio.h>

#define DP_COVERAGE_NT 8
/* 0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99 */
extern const double dp_coverage_thresholds[DP_COVERAGE_NT];

typedef struct dp_coverage_row {
    double min_prob;     /* the threshold t */
    uint64_t kept;       /* samples whose verdict probability is >= t */
    double coverage;     /* kept / n (0 when n is 0) */
    double accuracy, weighted_f1, macro_f1; /* over the kept samples (0 when none) */
} dp_coverage_row;

typedef struct dp_coverage {
    uint64_t n;                             /* samples */
    dp_coverage_row rows[DP_COVERAGE_NT];   /* one per threshold, in order */
} dp_coverage;

/* Fills cv from n samples: true label label[i], verdict pred[i] (both in
 * [0, nclasses); a pair out of range is counted in n and never kept) and
 * the verdict's probability prob[i]. Returns 0, or -1 + message (bad
 * nclasses, no memory). */
int dp_coverage_compute(dp_coverage *cv, int nclasses, const int16_t *label, const int16_t *pred,
                        const float *prob, uint64_t n, char *errbuf);

/* The probability of the best of n log-probabilities (or scores): the
 * softmax at the maximum, 1 / sum_i exp(lp[i] - max). 0 when n < 1 or a
 * value is not finite. */
double dp_coverage_top_prob(const double *lp, int n);
double dp_coverage_top_probf(const float *lp, int n);

/* The report's parts: a markdown table "| min prob | kept | coverage |
 * accuracy | weighted f1 | macro f1 |" under a one-line heading naming the
 * unit ("flows", "packets"), and the JSON array value (no key, no
 * trailing comma) of objects {"min_prob", "kept", "coverage", "accuracy",
 * "weighted_f1", "macro_f1"}, scores null when nothing is kept. */
void dp_coverage_print_markdown(const dp_coverage *cv, const char *unit, FILE *f);
void dp_coverage_print_json(const dp_coverage *cv, FILE *f);

#endif
