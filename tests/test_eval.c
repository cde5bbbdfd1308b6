/* Tests for src/eval: classification-report metrics (sklearn semantics),
 * flow-level aggregation, the report files, the evaluation as a library
 * call (dp_evalrun) and the `deeppacket test` command around it; the HTML
 * page (report.html) checked by tests/check_html.py, as written and as
 * headless chromium renders it. */
#include <cairo.h>
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sys/wait.h>
#include <unistd.h>

#include "dataset/dp_dataset.h"
#include "dp_test.h"
#include "eval/dp_coverage.h"
#include "eval/dp_eval.h"
#include "eval/dp_evalrun.h"
#include "eval/dp_html.h"
#include "model/dp_model.h"

static const char *const iscx_app[15] = {
    "AIM Chat", "Email",  "Facebook", "FTPS",    "Gmail",      "Hangouts", "ICQ",     "Netflix",
    "SCP",      "SFTP",   "Skype",    "Spotify", "Vimeo",      "Voipbuster", "Youtube"};
static const char *const iscx_traffic[11] = {
    "Chat",      "Email",          "File Transfer", "Streaming",      "Voip",     "VPN: Chat",
    "VPN: File Transfer", "VPN: Email", "VPN: Streaming", "VPN: Torrent", "VPN: Voip"};

/* ---- metrics ------------------------------------------------------------------ */

/* The example of sklearn's classification_report documentation:
 *   y_true = [0, 1, 2, 2, 2], y_pred = [0, 0, 2, 2, 1]
 *                precision recall f1-score support
 *   class 0        0.50    1.00    0.67      1
 *   class 1        0.00    0.00    0.00      1
 *   class 2        1.00    0.67    0.80      3
 *   accuracy                       0.60      5
 *   macro avg      0.50    0.56    0.49      5
 *   weighted avg   0.70    0.60    0.61      5
 * By hand: class 0: tp 1, support 1, predicted 2 -> P 1/2, R 1, F1 2/(1+2) = 2/3.
 * class 1: tp 0 -> all 0. class 2: tp 2, support 3, predicted 2 -> P 1, R 2/3,
 * F1 4/5. macro R = (1 + 0 + 2/3) / 3 = 5/9; macro F1 = (2/3 + 4/5) / 3 = 22/45.
 * weighted P = (0.5 * 1 + 0 * 1 + 1 * 3) / 5 = 0.7; weighted F1 = (2/3 + 12/5) / 5
 * = 46/75. */
static void test_sklearn_doc_example(void)
{
    int yt[] = {0, 1, 2, 2, 2}, yp[] = {0, 0, 2, 2, 1};
    const char *names[] = {"class 0", "class 1", "class 2"};
    dp_eval e;
    char err[DP_ERRBUF_SIZE];
    CHECK(dp_eval_compute(&e, 3, names, yt, yp, 5, err) == 0);
    CHECK_EQ_INT(e.n, 5);
    CHECK_EQ_INT(e.correct, 3);
    CHECK_NEAR(e.accuracy, 0.6, 1e-12);
    CHECK_EQ_INT(e.nlisted, 3);
    CHECK_NEAR(e.cls[0].precision, 0.5, 1e-12);
    CHECK_NEAR(e.cls[0].recall, 1.0, 1e-12);
    CHECK_NEAR(e.cls[0].f1, 2.0 / 3, 1e-12);
    CHECK_NEAR(e.cls[1].precision, 0.0, 0);
    CHECK_NEAR(e.cls[1].recall, 0.0, 0);
    CHECK_NEAR(e.cls[1].f1, 0.0, 0);
    CHECK_NEAR(e.cls[2].precision, 1.0, 1e-12);
    CHECK_NEAR(e.cls[2].recall, 2.0 / 3, 1e-12);
    CHECK_NEAR(e.cls[2].f1, 0.8, 1e-12);
    CHECK_EQ_INT(e.cls[2].support, 3);
    CHECK_EQ_INT(e.cls[0].predicted, 2);
    CHECK_NEAR(e.macro.precision, 0.5, 1e-12);
    CHECK_NEAR(e.macro.recall, 5.0 / 9, 1e-12);
    CHECK_NEAR(e.macro.f1, 22.0 / 45, 1e-12);
    CHECK_NEAR(e.weighted.precision, 0.7, 1e-12);
    CHECK_NEAR(e.weighted.recall, 0.6, 1e-12);
    CHECK_NEAR(e.weighted.f1, 46.0 / 75, 1e-12);
    CHECK_EQ_INT(e.weighted.support, 5);
    /* confusion [true][pred] */
    CHECK_EQ_INT(e.cm[0 * 3 + 0], 1);
    CHECK_EQ_INT(e.cm[1 * 3 + 0], 1);
    CHECK_EQ_INT(e.cm[2 * 3 + 1], 1);
    CHECK_EQ_INT(e.cm[2 * 3 + 2], 2);
    CHECK_NEAR(dp_eval_norm(&e, 2, 2), 2.0 / 3, 1e-12);
    CHECK_NEAR(dp_eval_norm(&e, 1, 0), 1.0, 1e-12);
    dp_eval_free(&e);
}

/* Absent classes: 5 classes, y_true = [0, 0, 1, 1], y_pred = [0, 4, 1, 1].
 * sklearn lists unique(y_true U y_pred) = {0, 1, 4}; classes 2 and 3 are out
 * of the table and the averages. Class 4 has no support but one prediction:
 * listed, P = R = F1 = 0 (zero_division=0), weight 0 in the weighted average.
 *   class 0: R 1/2, P 1, F1 2*1/(2+1) = 2/3;  class 1: 1, 1, 1;  class 4: 0, 0, 0
 *   macro: R (1/2 + 1)/3 = 1/2, P 2/3, F1 (2/3 + 1)/3 = 5/9
 *   weighted (supports 2, 2, 0): R 3/4, P 1, F1 (4/3 + 2)/4 = 5/6; accuracy 3/4 */
static void test_absent_and_predicted_only_classes(void)
{
    int yt[] = {0, 0, 1, 1}, yp[] = {0, 4, 1, 1};
    dp_eval e;
    char err[DP_ERRBUF_SIZE];
    CHECK(dp_eval_compute(&e, 5, NULL, yt, yp, 4, err) == 0);
    CHECK_EQ_INT(e.nlisted, 3);
    CHECK(e.cls[0].listed && e.cls[1].listed && e.cls[4].listed);
    CHECK(!e.cls[2].listed && !e.cls[3].listed);
    CHECK_NEAR(e.cls[4].precision, 0, 0);
    CHECK_NEAR(e.cls[4].recall, 0, 0);
    CHECK_NEAR(e.cls[4].f1, 0, 0);
    CHECK_NEAR(e.cls[0].f1, 2.0 / 3, 1e-12);
    CHECK_NEAR(e.macro.recall, 0.5, 1e-12);
    CHECK_NEAR(e.macro.precision, 2.0 / 3, 1e-12);
    CHECK_NEAR(e.macro.f1, 5.0 / 9, 1e-12);
    CHECK_NEAR(e.weighted.recall, 0.75, 1e-12);
    CHECK_NEAR(e.weighted.precision, 1.0, 1e-12);
    CHECK_NEAR(e.weighted.f1, 5.0 / 6, 1e-12);
    CHECK_NEAR(e.accuracy, 0.75, 1e-12);
    CHECK(strcmp(e.names[3], "class 3") == 0); /* NULL names get a default */
    /* a zero-support row normalises to 0, not NaN */
    CHECK_NEAR(dp_eval_norm(&e, 4, 4), 0.0, 0);
    CHECK_NEAR(dp_eval_norm(&e, 3, 0), 0.0, 0);
    dp_eval_free(&e);
}

/* Imbalanced weighted average, 2 classes:
 * y_true: 90 x class 0, 10 x class 1. Predictions: class 0 -> 81 right, 9 as 1;
 * class 1 -> 5 right, 5 as 0.
 *   class 0: tp 81, support 90, predicted 86: R 0.9, P 81/86, F1 162/176
 *   class 1: tp 5, support 10, predicted 14: R 0.5, P 5/14, F1 10/24
 *   weighted R = (0.9 * 90 + 0.5 * 10)/100 = 0.86 (= accuracy, always);
 *   weighted P = (90 * 81/86 + 10 * 5/14) / 100; weighted F1 = (90 * 162/176 + 10 * 10/24)/100 */
static void test_weighted_average(void)
{
    dp_eval e;
    char err[DP_ERRBUF_SIZE];
    const char *names[] = {"big", "small"};
    CHECK(dp_eval_init(&e, 2, names, err) == 0);
    CHECK(dp_eval_add_n(&e, 0, 0, 81) == 0);
    CHECK(dp_eval_add_n(&e, 0, 1, 9) == 0);
    CHECK(dp_eval_add_n(&e, 1, 1, 5) == 0);
    for (int i = 0; i < 5; i++)
        CHECK(dp_eval_add(&e, 1, 0) == 0);
    dp_eval_finish(&e);
    CHECK_NEAR(e.cls[0].precision, 81.0 / 86, 1e-12);
    CHECK_NEAR(e.cls[1].precision, 5.0 / 14, 1e-12);
    CHECK_NEAR(e.cls[0].f1, 162.0 / 176, 1e-12);
    CHECK_NEAR(e.cls[1].f1, 10.0 / 24, 1e-12);
    CHECK_NEAR(e.weighted.recall, 0.86, 1e-12);
    CHECK_NEAR(e.weighted.recall, e.accuracy, 1e-12);
    CHECK_NEAR(e.weighted.precision, (90 * 81.0 / 86 + 10 * 5.0 / 14) / 100, 1e-12);
    CHECK_NEAR(e.weighted.f1, (90 * 162.0 / 176 + 10 * 10.0 / 24) / 100, 1e-12);
    CHECK_NEAR(e.macro.recall, 0.7, 1e-12);
    /* Adding another matrix doubles every count: metrics unchanged. */
    uint64_t cm[4];
    memcpy(cm, e.cm, sizeof cm);
    dp_eval_add_matrix(&e, cm);
    dp_eval_finish(&e);
    CHECK_EQ_INT(e.n, 200);
    CHECK_EQ_INT(e.cls[0].support, 180);
    CHECK_NEAR(e.weighted.f1, (90 * 162.0 / 176 + 10 * 10.0 / 24) / 100, 1e-12);
    dp_eval_free(&e);
}

static void test_zero_division_and_edge_cases(void)
{
    dp_eval e;
    char err[DP_ERRBUF_SIZE];
    /* Nothing counted: every metric 0, nothing listed, no NaN. */
    CHECK(dp_eval_init(&e, 3, NULL, err) == 0);
    dp_eval_finish(&e);
    CHECK_EQ_INT(e.nlisted, 0);
    CHECK_NEAR(e.accuracy, 0, 0);
    CHECK_NEAR(e.macro.f1, 0, 0);
    CHECK_NEAR(e.weighted.f1, 0, 0);
    /* Out-of-range labels are counted as invalid, not in the matrix. */
    CHECK(dp_eval_add(&e, 3, 0) == -1);
    CHECK(dp_eval_add(&e, 0, -1) == -1);
    CHECK_EQ_INT(e.invalid, 2);
    CHECK_EQ_INT(e.n, 0);
    /* Everything predicted as one class: the others' precision is 0/0 -> 0. */
    for (int i = 0; i < 3; i++)
        dp_eval_add(&e, i, 0);
    dp_eval_finish(&e);
    CHECK_NEAR(e.cls[1].precision, 0, 0);
    CHECK_NEAR(e.cls[0].precision, 1.0 / 3, 1e-12);
    CHECK_NEAR(e.cls[0].f1, 0.5, 1e-12); /* 2*1/(1+3) */
    CHECK(!isnan(e.macro.precision));
    dp_eval_free(&e);
    /* Perfect single-class result. */
    int y[4] = {1, 1, 1, 1};
    CHECK(dp_eval_compute(&e, 2, NULL, y, y, 4, err) == 0);
    CHECK_EQ_INT(e.nlisted, 1);
    CHECK_NEAR(e.macro.f1, 1, 0);
    CHECK_NEAR(e.weighted.precision, 1, 0);
    dp_eval_free(&e);
    /* Bad class counts are refused with a message. */
    err[0] = 0;
    CHECK(dp_eval_init(&e, 0, NULL, err) == -1);
    CHECK_STR_CONTAINS(err, "classes");
    CHECK(dp_eval_init(&e, 100000, NULL, err) == -1);
}

/* Random labels against an independent brute-force computation of every
 * metric from the label vectors. */
static void test_random_against_bruteforce(void)
{
    dp_rng r;
    dp_rng_seed(&r, 42);
    enum { N = 3000, C = 7 };
    static int yt[N], yp[N];
    for (int i = 0; i < N; i++) {
        yt[i] = (int)dp_rng_below(&r, C - 1); /* class 6 never true */
        yp[i] = dp_rng_double(&r) < 0.6 ? yt[i] : (int)dp_rng_below(&r, C);
        if (yp[i] == 5)
            yp[i] = 4; /* class 5 never predicted, but has support */
    }
    dp_eval e;
    char err[DP_ERRBUF_SIZE];
    CHECK(dp_eval_compute(&e, C, NULL, yt, yp, N, err) == 0);
    double mr = 0, wf = 0;
    int listed = 0;
    for (int c = 0; c < C; c++) {
        int tp = 0, sup = 0, pr = 0;
        for (int i = 0; i < N; i++) {
            tp += yt[i] == c && yp[i] == c;
            sup += yt[i] == c;
            pr += yp[i] == c;
        }
        double R = sup ? (double)tp / sup : 0, P = pr ? (double)tp / pr : 0;
        double F = P + R > 0 ? 2 * P * R / (P + R) : 0;
        CHECK_NEAR(e.cls[c].recall, R, 1e-12);
        CHECK_NEAR(e.cls[c].precision, P, 1e-12);
        CHECK_NEAR(e.cls[c].f1, F, 1e-12);
        if (sup || pr) {
            listed++;
            mr += R;
            wf += F * sup;
        }
    }
    CHECK_EQ_INT(e.nlisted, listed);
    CHECK_NEAR(e.macro.recall, mr / listed, 1e-12);
    CHECK_NEAR(e.weighted.f1, wf / N, 1e-12);
    CHECK_NEAR(e.cls[5].precision, 0, 0);
    CHECK_NEAR(e.cls[6].recall, 0, 0);
    CHECK(e.cls[6].listed); /* predicted, no support */
    dp_eval_free(&e);
}

/* ---- flow aggregation --------------------------------------------------------- */

static void lp3(float *o, double a, double b, double c)
{
    o[0] = (float)log(a), o[1] = (float)log(b), o[2] = (float)log(c);
}

/* Crafted flows, 3 classes:
 *  flow 100, label 0, packets p = (.6 .3 .1), (.2 .7 .1), (.5 .4 .1): per-packet
 *    argmax votes 0, 1, 0, but the product is (.06 .084 .001) -> verdict 1.
 *  flow 7, label 2, one packet (.05 .15 .8) -> 2.
 *  flow 55, labels 1, 1, 2 (conflict, majority 1); probs favour 2 -> verdict 2.
 *  flow 9, labels 2, 0 (conflict, tie -> lowest id 0); probs favour 0 -> 0.
 * Flow level (true, verdict): (0,1), (2,2), (1,2), (0,0): accuracy 1/2. */
static void feed_crafted(dp_flowagg *a, int part, int nparts)
{
    struct {
        uint64_t flow;
        int label;
        double p[3];
    } pk[] = {
        {100, 0, {.6, .3, .1}}, {7, 2, {.05, .15, .8}}, {55, 1, {.2, .3, .5}},
        {100, 0, {.2, .7, .1}}, {55, 1, {.1, .2, .7}},  {9, 2, {.8, .1, .1}},
        {100, 0, {.5, .4, .1}}, {55, 2, {.3, .3, .4}},  {9, 0, {.9, .05, .05}},
    };
    char err[DP_ERRBUF_SIZE];
    for (size_t i = 0; i < sizeof pk / sizeof pk[0]; i++) {
        if ((int)(i % nparts) != part)
            continue;
        float lp[3];
        lp3(lp, pk[i].p[0], pk[i].p[1], pk[i].p[2]);
        CHECK(dp_flowagg_add(a, pk[i].flow, pk[i].label, lp, err) == 0);
    }
}

static void check_crafted(const dp_flowagg *a)
{
    CHECK_EQ_INT(dp_flowagg_flows(a), 4);
    CHECK_EQ_INT(dp_flowagg_packets(a), 9);
    CHECK_EQ_INT(dp_flowagg_conflicts(a), 2);
    struct {
        uint64_t flow;
        int label, pred;
        uint64_t packets;
    } want[] = {{100, 0, 1, 3}, {7, 2, 2, 1}, {55, 1, 2, 3}, {9, 0, 0, 2}};
    for (uint64_t i = 0; i < dp_flowagg_flows(a); i++) {
        uint64_t f, np;
        int t, p;
        CHECK(dp_flowagg_get(a, i, &f, &t, &p, &np) == 0);
        int found = 0;
        for (int k = 0; k < 4; k++)
            if (want[k].flow == f) {
                found = 1;
                CHECK_EQ_INT(t, want[k].label);
                CHECK_EQ_INT(p, want[k].pred);
                CHECK_EQ_INT(np, want[k].packets);
            }
        CHECK(found);
    }
    CHECK(dp_flowagg_get(a, 4, NULL, NULL, NULL, NULL) == -1);
    dp_eval e;
    char err[DP_ERRBUF_SIZE];
    CHECK(dp_eval_init(&e, 3, NULL, err) == 0);
    CHECK(dp_flowagg_eval(a, &e, err) == 0);
    CHECK_EQ_INT(e.n, 4);
    CHECK_NEAR(e.accuracy, 0.5, 1e-12);
    CHECK_EQ_INT(e.cm[0 * 3 + 1], 1);
    CHECK_EQ_INT(e.cm[1 * 3 + 2], 1);
    CHECK_EQ_INT(e.cls[2].predicted, 2);
    dp_eval_free(&e);
}

/* ---- verdicts by probability ------------------------------------------------------- */

/* Six hand-counted samples of two classes (probabilities exact in binary,
 * one pair out of range): kept, coverage and the scores of every
 * threshold, worked out on paper from the sklearn definitions. */
static void test_coverage_by_hand(void)
{
    /*            i:     0      1       2       3      4       5 (label 7: out of range) */
    const int16_t y[] = {0, 0, 1, 1, 0, 7};
    const int16_t p[] = {0, 1, 1, 0, 0, 0};
    const float pr[] = {0.875f, 0.5625f, 0.9375f, 0.625f, 0.4375f, 0.99f};
    dp_coverage cv;
    char eb[DP_ERRBUF_SIZE];
    CHECK_EQ_INT(dp_coverage_compute(&cv, 2, y, p, pr, 6, eb), 0);
    CHECK(cv.n == 6);
    static const struct {
        double t;
        uint64_t kept;
        double acc, wf1, mf1;
    } want[DP_COVERAGE_NT] = {
        /* 0: i0-i4; class 0: support 3, predicted 3, tp 2 (f1 2/3); class 1: 2, 2, 1 (1/2) */
        {0, 5, 0.6, (3 * 2.0 / 3 + 2 * 0.5) / 5, (2.0 / 3 + 0.5) / 2},
        {0.5, 4, 0.5, 0.5, 0.5},                 /* i0-i3: each class 2, 2, 1 */
        {0.6, 3, 2.0 / 3, 2.0 / 3, 2.0 / 3},     /* i0, i2, i3: 1, 2, 1 and 2, 1, 1 */
        {0.7, 2, 1, 1, 1},                       /* i0, i2 */
        {0.8, 2, 1, 1, 1},
        {0.9, 1, 1, 1, 1},                       /* i2 alone: class 0 not listed */
        {0.95, 0, 0, 0, 0},
        {0.99, 0, 0, 0, 0},                      /* i5's 0.99 is out of range: never kept */
    };
    for (int k = 0; k < DP_COVERAGE_NT; k++) {
        const dp_coverage_row *r = &cv.rows[k];
        CHECK(r->min_prob == want[k].t);
        CHECK(r->kept == want[k].kept);
        CHECK_NEAR(r->coverage, want[k].kept / 6.0, 1e-12);
        CHECK_NEAR(r->accuracy, want[k].acc, 1e-12);
        CHECK_NEAR(r->weighted_f1, want[k].wf1, 1e-12);
        CHECK_NEAR(r->macro_f1, want[k].mf1, 1e-12);
    }
    /* JSON: 17 digits, null scores where nothing is kept; markdown: dashes */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dp_coverage_print_json(&cv, f);
    dp_coverage_print_markdown(&cv, "flows", f);
    fclose(f);
    CHECK_STR_CONTAINS(buf, "{\"min_prob\": 0.5, \"kept\": 4, \"coverage\": 0.66666666666666663, \"accuracy\": 0.5,");
    CHECK_STR_CONTAINS(buf, "{\"min_prob\": 0.95, \"kept\": 0, \"coverage\": 0, \"accuracy\": null, "
                            "\"weighted_f1\": null, \"macro_f1\": null}");
    CHECK_STR_CONTAINS(buf, "|     0.60 |          3 |   0.5000 |   0.6667 |      0.6667 |   0.6667 |");
    CHECK_STR_CONTAINS(buf, "|     0.99 |          0 |   0.0000 |        - |           - |        - |");
    free(buf);
    /* no sample: every row empty, no division by zero */
    CHECK_EQ_INT(dp_coverage_compute(&cv, 2, y, p, pr, 0, eb), 0);
    CHECK(cv.rows[0].kept == 0 && cv.rows[0].coverage == 0);
    CHECK_EQ_INT(dp_coverage_compute(&cv, 0, y, p, pr, 6, eb), -1);
    CHECK_STR_CONTAINS(eb, "0 classes");
}

/* The best class's probability from log-probabilities or unnormalised
 * sums (a flow's votes), against values worked out by hand. */
static void test_coverage_top_prob(void)
{
    const double a[] = {log(0.5), log(0.25), log(0.25)};
    CHECK_NEAR(dp_coverage_top_prob(a, 3), 0.5, 1e-12);
    const double b[] = {-1000, -1000}; /* summed log-probabilities: no underflow */
    CHECK_NEAR(dp_coverage_top_prob(b, 2), 0.5, 1e-12);
    const double c[] = {3, 3 - log(3.0)};   /* e^0 / (1 + 1/3) */
    CHECK_NEAR(dp_coverage_top_prob(c, 2), 0.75, 1e-12);
    const double d[] = {0, -INFINITY};
    CHECK_NEAR(dp_coverage_top_prob(d, 2), 1.0, 1e-12);
    const double e[] = {0, NAN};
    CHECK(dp_coverage_top_prob(e, 2) == 0.0);
    const double g[] = {-INFINITY, -INFINITY};
    CHECK(dp_coverage_top_prob(g, 2) == 0.0);
    CHECK(dp_coverage_top_prob(a, 0) == 0.0);
    const float h[] = {logf(0.125f), logf(0.875f)};
    CHECK_NEAR(dp_coverage_top_probf(h, 2), 0.875, 1e-6);
}

static void test_flow_crafted(void)
{
    char err[DP_ERRBUF_SIZE];
    dp_flowagg *a = dp_flowagg_new(3, err);
    CHECK(a != NULL);
    feed_crafted(a, 0, 1);
    check_crafted(a);
    /* first-seen order */
    uint64_t f;
    dp_flowagg_get(a, 0, &f, NULL, NULL, NULL);
    CHECK_EQ_INT(f, 100);
    dp_flowagg_get(a, 3, &f, NULL, NULL, NULL);
    CHECK_EQ_INT(f, 9);
    float lp[3] = {0, 0, 0};
    CHECK(dp_flowagg_add(a, 1, 3, lp, err) == -1);
    CHECK_STR_CONTAINS(err, "out of range");
    dp_flowagg_free(a);
    CHECK(dp_flowagg_new(0, err) == NULL);
}

/* Packets spread over three aggregators (as over threads) and merged give
 * the same flows as one aggregator. */
static void test_flow_merge(void)
{
    char err[DP_ERRBUF_SIZE];
    dp_flowagg *part[3], *all = dp_flowagg_new(3, err);
    for (int k = 0; k < 3; k++) {
        part[k] = dp_flowagg_new(3, err);
        feed_crafted(part[k], k, 3);
        CHECK(dp_flowagg_merge(all, part[k], err) == 0);
    }
    check_crafted(all);
    dp_flowagg *other = dp_flowagg_new(4, err);
    CHECK(dp_flowagg_merge(other, all, err) == -1);
    dp_flowagg_free(other);

    /* Label counts survive merging: X holds flow 1 with labels 0, 0, 0, 1,
     * Y with labels 1, 1, 1 -> 3 x label 0 against 4 x label 1: label 1.
     * Log-probabilities tie exactly -> the first maximum (class 0) wins. */
    dp_flowagg *x = dp_flowagg_new(2, err), *y = dp_flowagg_new(2, err);
    dp_flowagg *m = dp_flowagg_new(2, err);
    float tie[2] = {-0.5f, -0.5f};
    int xl[] = {0, 0, 0, 1};
    for (int i = 0; i < 4; i++)
        dp_flowagg_add(x, 1, xl[i], tie, err);
    for (int i = 0; i < 3; i++)
        dp_flowagg_add(y, 1, 1, tie, err);
    CHECK(dp_flowagg_merge(m, x, err) == 0);
    CHECK(dp_flowagg_merge(m, y, err) == 0);
    int t = -1, p = -1;
    uint64_t np = 0;
    CHECK(dp_flowagg_get(m, 0, NULL, &t, &p, &np) == 0);
    CHECK_EQ_INT(t, 1);
    CHECK_EQ_INT(p, 0);
    CHECK_EQ_INT(np, 7);
    CHECK_EQ_INT(dp_flowagg_conflicts(m), 1);
    dp_flowagg_free(x);
    dp_flowagg_free(y);
    dp_flowagg_free(m);
    for (int k = 0; k < 3; k++)
        dp_flowagg_free(part[k]);
    dp_flowagg_free(all);
}

/* Many flows (table growth): verdicts against a direct computation. */
static void test_flow_many(void)
{
    enum { NF = 20000, C = 4, PER = 3 };
    char err[DP_ERRBUF_SIZE];
    dp_flowagg *a = dp_flowagg_new(C, err), *b = dp_flowagg_new(C, err);
    static double sum[NF][C];
    dp_rng r;
    dp_rng_seed(&r, 7);
    for (int rep = 0; rep < PER; rep++)
        for (int f = 0; f < NF; f++) {
            float lp[C];
            for (int c = 0; c < C; c++) {
                lp[c] = (float)(-5 * dp_rng_double(&r));
                sum[f][c] += lp[c];
            }
            uint64_t id = (uint64_t)f * 0x9E3779B97F4A7C15ULL; /* spread ids */
            dp_flowagg *dst = (f + rep) % 2 ? a : b;
            CHECK(dp_flowagg_add(dst, id, f % C, lp, err) == 0);
        }
    CHECK(dp_flowagg_merge(a, b, err) == 0);
    CHECK_EQ_INT(dp_flowagg_flows(a), NF);
    CHECK_EQ_INT(dp_flowagg_packets(a), NF * PER);
    CHECK_EQ_INT(dp_flowagg_conflicts(a), 0);
    int bad = 0;
    for (uint64_t i = 0; i < NF; i++) {
        uint64_t id, np;
        int t, p;
        dp_flowagg_get(a, i, &id, &t, &p, &np);
        uint64_t f = id * 0xF1DE83E19937733DULL; /* inverse of the multiplier mod 2^64 */
        if (f >= NF) {
            bad++;
            continue;
        }
        int want = 0;
        for (int c = 1; c < C; c++)
            if (sum[f][c] > sum[f][want])
                want = c;
        /* float sums in a different order may differ in the last bits: only
         * count clear disagreements */
        if (p != want && fabs(sum[f][p] - sum[f][want]) > 1e-4)
            bad++;
        if (t != (int)(f % C) || np != PER)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    dp_flowagg_free(a);
    dp_flowagg_free(b);
}

/* ---- report files --------------------------------------------------------------- */

/* A minimal JSON syntax checker (RFC 8259 subset: no surrogate checks). */
static const char *js_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

static const char *js_value(const char *p, int depth);

static const char *js_string(const char *p)
{
    if (*p != '"')
        return NULL;
    for (p++; *p && *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i]))
                        return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return NULL;
            }
        }
    }
    return *p == '"' ? p + 1 : NULL;
}

static const char *js_value(const char *p, int depth)
{
    if (depth > 32)
        return NULL;
    p = js_ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p = js_ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                p = js_string(js_ws(p));
                if (!p)
                    return NULL;
                p = js_ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            p = js_value(p, depth + 1);
            if (!p)
                return NULL;
            p = js_ws(p);
            if (*p == ',') {
                p++;
                continue;
            }
            return *p == close ? p + 1 : NULL;
        }
    }
    if (*p == '"')
        return js_string(p);
    if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
        return p + 4;
    if (!strncmp(p, "false", 5))
        return p + 5;
    char *end;
    if (*p == '-' || isdigit((unsigned char)*p)) {
        strtod(p, &end);
        return end > p ? end : NULL;
    }
    return NULL;
}

static int json_valid(const char *text)
{
    const char *p = js_value(text, 0);
    return p && *js_ws(p) == 0;
}

/* The number after "key": at its first occurrence (NAN if absent). */
static double json_number(const char *text, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(text, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* Splits a CSV line honouring quotes; returns the field count. */
static int csv_fields(const char *line, char fields[][64], int max)
{
    int n = 0;
    const char *p = line;
    for (;;) {
        char buf[64];
        size_t o = 0;
        if (*p == '"') {
            for (p++; *p; p++) {
                if (*p == '"' && p[1] == '"')
                    p++;
                else if (*p == '"') {
                    p++;
                    break;
                }
                if (o < 63)
                    buf[o++] = *p;
            }
        } else {
            for (; *p && *p != ',' && *p != '\n'; p++)
                if (o < 63)
                    buf[o++] = *p;
        }
        buf[o] = 0;
        if (n < max)
            strcpy(fields[n], buf);
        n++;
        if (*p != ',')
            return n;
        p++;
    }
}

/* Trimmed '|'-separated cells of a markdown row (no escaped pipes here). */
static int md_cells(const char *line, char cells[][64], int max)
{
    if (*line != '|')
        return 0;
    int n = 0;
    const char *p = line + 1;
    while (*p && *p != '\n') {
        const char *q = p;
        while (*q && *q != '|' && *q != '\n')
            q++;
        if (*q != '|')
            break;
        while (p < q && *p == ' ')
            p++;
        const char *e = q;
        while (e > p && e[-1] == ' ')
            e--;
        if (n < max) {
            size_t len = (size_t)(e - p) < 63 ? (size_t)(e - p) : 63;
            memcpy(cells[n], p, len);
            cells[n][len] = 0;
        }
        n++;
        p = q + 1;
    }
    return n;
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return dp_read_file(path, len, NULL);
}

/* An 11-class traffic result with a skewed confusion matrix and one class
 * without support or predictions. */
static void make_traffic_eval(dp_eval *e, int skip_class)
{
    char err[DP_ERRBUF_SIZE];
    dp_eval_init(e, 11, iscx_traffic, err);
    dp_rng r;
    dp_rng_seed(&r, 3);
    for (int t = 0; t < 11; t++) {
        if (t == skip_class)
            continue;
        uint64_t n = 50 + 40 * (uint64_t)t;
        for (uint64_t i = 0; i < n; i++) {
            int p = dp_rng_double(&r) < 0.8 ? t : (int)dp_rng_below(&r, 11);
            if (p == skip_class)
                p = t;
            dp_eval_add(e, t, p);
        }
    }
    dp_eval_finish(e);
}

/* report.md: header, separator, 10 listed classes, Wtd. Average. */
static void report_check_md(const char *dir, const dp_eval *ev)
{
    char *md = slurp(dir, "report.md", NULL);
    CHECK(md != NULL);
    if (md) {
        char cells[8][64];
        const char *line = md;
        int rows = 0, header_ok = 0, last_is_avg = 0;
        double avg[3] = {NAN, NAN, NAN};
        while (line && *line) {
            int n = md_cells(line, cells, 8);
            if (n == 5 && !strcmp(cells[0], "label")) {
                header_ok = !strcmp(cells[1], "recall") && !strcmp(cells[2], "precision") &&
                            !strcmp(cells[3], "f1-score") && !strcmp(cells[4], "support");
            } else if (n == 5 && cells[0][0] != ':') {
                rows++;
                last_is_avg = !strcmp(cells[0], "Wtd. Average");
                if (last_is_avg)
                    for (int k = 0; k < 3; k++)
                        avg[k] = strtod(cells[k + 1], NULL);
                if (!strcmp(cells[0], "VPN: File Transfer"))
                    CHECK_NEAR(strtod(cells[3], NULL), ev->cls[6].f1, 5e-5);
            }
            line = strchr(line, '\n');
            line = line ? line + 1 : NULL;
        }
        CHECK(header_ok);
        CHECK_EQ_INT(rows, 10 + 1);
        CHECK(last_is_avg);
        CHECK_NEAR(avg[0], ev->weighted.recall, 5e-5);
        CHECK_NEAR(avg[1], ev->weighted.precision, 5e-5);
        CHECK_NEAR(avg[2], ev->weighted.f1, 5e-5);
        CHECK(strstr(md, "VPN: Email") == NULL); /* unlisted class */
        CHECK_STR_CONTAINS(md, "\naccuracy: ");
        CHECK_STR_CONTAINS(md, "\nmacro average: ");
        char acc[64];
        snprintf(acc, sizeof acc, "accuracy: %.4f", ev->accuracy);
        CHECK_STR_CONTAINS(md, acc);
    }
    free(md);
}

/* report.json: valid, numbers agree, every class present. */
static void report_check_json(const char *dir, const dp_eval *ev)
{
    char *js = slurp(dir, "report.json", NULL);
    CHECK(js != NULL);
    if (js) {
        CHECK(json_valid(js));
        CHECK_NEAR(json_number(js, "accuracy"), ev->accuracy, 1e-12);
        CHECK_NEAR(json_number(js, "n"), (double)ev->n, 0);
        CHECK_NEAR(json_number(js, "nlisted"), 10, 0);
        const char *w = strstr(js, "\"weighted_avg\"");
        CHECK(w != NULL);
        if (w)
            CHECK_NEAR(json_number(w, "f1"), ev->weighted.f1, 1e-12);
        CHECK_STR_CONTAINS(js, "\"name\": \"VPN: Email\", \"listed\": false");
        CHECK_STR_CONTAINS(js, "\"model\": \"m \\\"x\\\".model\"");
        CHECK_STR_CONTAINS(js, "\"confusion\": [");
        CHECK_STR_CONTAINS(js, "\"level\": \"packet\"");
        /* the checker itself rejects broken JSON */
        CHECK(!json_valid("{\"a\": [1, 2,]}"));
        CHECK(!json_valid("{\"a\": \"x\ny\"}"));
    }
    free(js);
}

/* confusion.csv: 12 lines of 12 fields; counts sum to n; row sums = support. */
static void report_check_csv(const char *dir, const dp_eval *ev)
{
    char *csv = slurp(dir, "confusion.csv", NULL);
    CHECK(csv != NULL);
    if (csv) {
        int lines = 0;
        uint64_t total = 0;
        char (*f)[64] = calloc(16, 64);
        for (char *line = csv; line && *line; lines++) {
            int n = csv_fields(line, f, 16);
            CHECK_EQ_INT(n, 12);
            if (lines == 0) {
                CHECK(!strcmp(f[1], "Chat"));
                CHECK(!strcmp(f[11], "VPN: Voip"));
            } else if (n == 12) {
                CHECK(!strcmp(f[0], iscx_traffic[lines - 1]));
                uint64_t row = 0;
                for (int k = 1; k < 12; k++)
                    row += strtoull(f[k], NULL, 10);
                CHECK_EQ_INT(row, ev->cls[lines - 1].support);
                total += row;
            }
            line = strchr(line, '\n');
            line = line ? line + 1 : NULL;
        }
        free(f);
        CHECK_EQ_INT(lines, 12);
        CHECK_EQ_INT(total, ev->n);
    }
    free(csv);
}

/* confusion.png: loads, sane size, has the darkest shade (diagonal) and
 * white background. */
static void report_check_png(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/confusion.png", dir);
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    CHECK(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS);
    if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
        int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
        CHECK(w >= 600 && w <= 4000);
        CHECK(h >= 600 && h <= 4000);
        cairo_surface_flush(s);
        const unsigned char *d = cairo_image_surface_get_data(s);
        int stride = cairo_image_surface_get_stride(s);
        long dark = 0, white = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint32_t px;
                memcpy(&px, d + (size_t)y * stride + 4 * x, 4);
                int R = (px >> 16) & 255, G = (px >> 8) & 255, B = px & 255;
                dark += R < 0x20 && G < 0x60 && B > 0x50 && B < 0xa0;
                white += R == 255 && G == 255 && B == 255;
            }
        CHECK(dark > 1000);
        CHECK(white > (long)w * h / 5);
    }
    cairo_surface_destroy(s);
}

/* The report files of a packet-level evaluation, each against the
 * evaluation's numbers; no temp file left; then the flow_ set. */
static void test_report_files(void)
{
    dp_eval e;
    make_traffic_eval(&e, 7);
    char dir[512], path[1024], err[DP_ERRBUF_SIZE];
    snprintf(dir, sizeof dir, "%s/report/sub", dp_test_tmpdir());
    dp_report_info info = {.level = "packet", .task = "traffic", .model = "m \"x\".model",
                           .model_kind = "cnn", .test_set = "split/traffic/test"};
    CHECK(dp_eval_write_report(&e, &info, dir, "", err) == 0);

    /* 1. each file against the evaluation */
    report_check_md(dir, &e);
    report_check_json(dir, &e);
    report_check_csv(dir, &e);
    size_t plen = 0;
    char *pdf = slurp(dir, "confusion.pdf", &plen);
    CHECK(pdf && plen > 1000 && !memcmp(pdf, "%PDF", 4));
    free(pdf);
    report_check_png(dir);

    /* 2. no temp files left behind */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", dir);
    CHECK(system(cmd) != 0);

    /* 3. the flow_ prefix names the second set */
    dp_report_info finfo = info;
    finfo.level = "flow";
    finfo.packets = 12345;
    finfo.label_conflicts = 3;
    CHECK(dp_eval_write_report(&e, &finfo, dir, "flow_", err) == 0);
    const char *names[] = {"flow_report.md", "flow_report.json", "flow_confusion.csv",
                           "flow_confusion.pdf", "flow_confusion.png"};
    for (int k = 0; k < 5; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        struct stat st;
        CHECK(stat(path, &st) == 0 && st.st_size > 0);
    }
    char *js = slurp(dir, "flow_report.json", NULL);
    if (js) {
        CHECK(json_valid(js));
        CHECK_NEAR(json_number(js, "packets"), 12345, 0);
        CHECK_NEAR(json_number(js, "label_conflicts"), 3, 0);
    }
    free(js);
    char *md = slurp(dir, "flow_report.md", NULL);
    if (md)
        CHECK_STR_CONTAINS(md, " flows)");
    free(md);
    dp_eval_free(&e);
}

/* Names with CSV / markdown / JSON specials are escaped. */
static void test_escaping(void)
{
    const char *names[] = {"a,b", "q\"uote", "pi|pe", "back\\slash"};
    int y[] = {0, 1, 2, 3, 0};
    dp_eval e;
    char err[DP_ERRBUF_SIZE];
    CHECK(dp_eval_compute(&e, 4, names, y, y, 5, err) == 0);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/esc", dp_test_tmpdir());
    CHECK(dp_eval_write_report(&e, NULL, dir, NULL, err) == 0);
    char *csv = slurp(dir, "confusion.csv", NULL);
    if (csv) {
        char f[8][64];
        CHECK_EQ_INT(csv_fields(csv, f, 8), 5);
        CHECK(!strcmp(f[1], "a,b"));
        CHECK(!strcmp(f[2], "q\"uote"));
    }
    free(csv);
    char *js = slurp(dir, "report.json", NULL);
    CHECK(js && json_valid(js));
    if (js)
        CHECK_STR_CONTAINS(js, "\"back\\\\slash\"");
    free(js);
    char *md = slurp(dir, "report.md", NULL);
    if (md)
        CHECK_STR_CONTAINS(md, "pi\\|pe");
    free(md);
    dp_eval_free(&e);
}

static void test_unwritable_dir(void)
{
    dp_eval e;
    int y[] = {0, 1};
    char err[DP_ERRBUF_SIZE];
    CHECK(dp_eval_compute(&e, 2, NULL, y, y, 2, err) == 0);
    /* A directory below a regular file cannot be created, even by root. */
    char file[512], dir[600];
    snprintf(file, sizeof file, "%s/plainfile", dp_test_tmpdir());
    CHECK(dp_write_file_atomic(file, "x", 1, err) == 0);
    snprintf(dir, sizeof dir, "%s/reports", file);
    err[0] = 0;
    CHECK(dp_eval_write_report(&e, NULL, dir, "", err) == -1);
    CHECK_STR_CONTAINS(err, "plainfile");
    /* The report files themselves unwritable: a directory in the way. */
    snprintf(dir, sizeof dir, "%s/blocked", dp_test_tmpdir());
    char blocker[700];
    snprintf(blocker, sizeof blocker, "%s/report.json", dir);
    CHECK(dp_mkdirs(blocker, err) == 0);
    err[0] = 0;
    CHECK(dp_eval_write_report(&e, NULL, dir, "", err) == -1);
    CHECK_STR_CONTAINS(err, "report.json");
    /* bad figure format */
    CHECK(dp_eval_plot(&e, blocker, "svg", NULL, err) == -1);
    CHECK_STR_CONTAINS(err, "svg");
    dp_eval_free(&e);
}

/* The figure grows with the number of classes and with long names. */
static void test_figure_sizes(void)
{
    char err[DP_ERRBUF_SIZE], p11[600], p15[600], p2[600];
    dp_eval e11, e15, e2;
    make_traffic_eval(&e11, -1);
    dp_eval_init(&e15, 15, iscx_app, err);
    for (int t = 0; t < 15; t++)
        for (int p = 0; p < 15; p++)
            dp_eval_add_n(&e15, t, p, t == p ? 100 : (uint64_t)((t * 7 + p) % 5));
    dp_eval_finish(&e15);
    const char *short_names[] = {"a", "b"};
    int y[] = {0, 1, 1};
    dp_eval_compute(&e2, 2, short_names, y, y, 3, err);
    snprintf(p11, sizeof p11, "%s/c11.png", dp_test_tmpdir());
    snprintf(p15, sizeof p15, "%s/c15.png", dp_test_tmpdir());
    snprintf(p2, sizeof p2, "%s/c2.png", dp_test_tmpdir());
    CHECK(dp_eval_plot(&e11, p11, "png", "traffic classification (cnn model)", err) == 0);
    CHECK(dp_eval_plot(&e15, p15, "png", "app classification (cnn model)", err) == 0);
    CHECK(dp_eval_plot(&e2, p2, "png", NULL, err) == 0);
    cairo_surface_t *s11 = cairo_image_surface_create_from_png(p11);
    cairo_surface_t *s15 = cairo_image_surface_create_from_png(p15);
    cairo_surface_t *s2 = cairo_image_surface_create_from_png(p2);
    int w11 = cairo_image_surface_get_width(s11), w15 = cairo_image_surface_get_width(s15);
    int w2 = cairo_image_surface_get_width(s2);
    CHECK(w2 > 200 && w2 < w11);
    CHECK(w15 > 600 && w11 > 600);
    cairo_surface_destroy(s11);
    cairo_surface_destroy(s15);
    cairo_surface_destroy(s2);
    /* DP_EVAL_FIGURES=dir keeps copies to look at. */
    const char *keep = getenv("DP_EVAL_FIGURES");
    if (keep) {
        char path[1024];
        snprintf(path, sizeof path, "%s/traffic11.png", keep);
        dp_eval_plot(&e11, path, "png", "traffic classification (cnn model) - packet level", err);
        snprintf(path, sizeof path, "%s/app15.png", keep);
        dp_eval_plot(&e15, path, "png", "app classification (cnn model) - packet level", err);
        snprintf(path, sizeof path, "%s/app15.pdf", keep);
        dp_eval_plot(&e15, path, "pdf", "app classification (cnn model) - packet level", err);
    }
    dp_eval_free(&e11);
    dp_eval_free(&e15);
    dp_eval_free(&e2);
}

/* ---- deeppacket test (the command, end to end) ---------------------------------- */

static const char *cli_bin(void)
{
    static char path[512];
    const char *b = getenv("BUILD");
    snprintf(path, sizeof path, "%s/deeppacket", b && *b ? b : "build");
    return access(path, X_OK) == 0 ? path : NULL;
}

/* Runs a shell command; returns its exit status (-1 if it did not exit). */
static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

enum { CLI_N = 203, CLI_C = 4, CLI_FLOWS = 23 };
static const char *const cli_names[CLI_C] = {"Chat", "Email", "VPN: File Transfer", "Voip"};

/* A split folder of CLI_N packets: packet i is in flow i % CLI_FLOWS whose
 * label is flow % CLI_C; vector bytes depend on the label (so a random
 * model tells some classes apart). with_meta 0 leaves meta.npy out. */
/* The CLI test rows: CLI_N vectors of CLI_FLOWS flows, label = flow % CLI_C,
 * each class's bytes distinct enough for the model to learn. */
static void cli_rows(uint8_t *v, int16_t *lab, dp_meta *meta)
{
    dp_rng r;
    dp_rng_seed(&r, 11);
    for (int i = 0; i < CLI_N; i++) {
        int f = i % CLI_FLOWS;
        lab[i] = (int16_t)(f % CLI_C);
        for (int k = 0; k < DP_VEC_LEN; k++)
            v[(size_t)i * DP_VEC_LEN + k] =
                (uint8_t)(k < 40 * (lab[i] + 1) ? 60 * lab[i] + dp_rng_below(&r, 16) : 0);
        meta[i].flow = 1000 + (uint64_t)f;
        meta[i].index = (uint64_t)i;
        meta[i].ipver = 4;
    }
}

static int make_split(const char *dir, int with_meta, const char *const *names, int nclasses)
{
    char err[DP_ERRBUF_SIZE], path[700];
    if (dp_mkdirs(dir, err) != 0)
        return -1;
    uint8_t *v = malloc((size_t)CLI_N * DP_VEC_LEN);
    int16_t lab[CLI_N];
    dp_meta *meta = calloc(CLI_N, sizeof *meta);
    cli_rows(v, lab, meta);
    int rc = 0;
    snprintf(path, sizeof path, "%s/vectors.npy", dir);
    rc |= dp_npy_save(path, DP_NPY_U1, 1, DP_VEC_LEN, v, CLI_N, err);
    snprintf(path, sizeof path, "%s/labels.npy", dir);
    rc |= dp_npy_save(path, DP_NPY_I2, 2, 0, lab, CLI_N, err);
    if (with_meta) {
        snprintf(path, sizeof path, "%s/meta.npy", dir);
        rc |= dp_npy_save(path, DP_META_DESCR, sizeof(dp_meta), 0, meta, CLI_N, err);
    }
    char tsv[512];
    size_t o = 0;
    for (int c = 0; c < nclasses; c++)
        o += (size_t)snprintf(tsv + o, sizeof tsv - o, "%d\t%s\n", c, names[c]);
    snprintf(path, sizeof path, "%s/classes.tsv", dir);
    rc |= dp_write_file_atomic(path, tsv, o, err);
    free(v);
    free(meta);
    return rc ? -1 : 0;
}

/* The CLI rows as a preprocessed dataset folder: traffic id = tmap[label]
 * (-1: unlabelled), no app labels, labels.tsv as given. */
static int make_dataset(const char *dir, const int16_t *tmap, const char *labels_tsv)
{
    char err[DP_ERRBUF_SIZE], path[700];
    if (dp_mkdirs(dir, err) != 0)
        return -1;
    uint8_t *v = malloc((size_t)CLI_N * DP_VEC_LEN);
    int16_t lab[CLI_N], app[CLI_N];
    dp_meta *meta = calloc(CLI_N, sizeof *meta);
    cli_rows(v, lab, meta);
    for (int i = 0; i < CLI_N; i++) {
        lab[i] = tmap[lab[i]];
        app[i] = -1;
    }
    int rc = 0;
    snprintf(path, sizeof path, "%s/vectors.npy", dir);
    rc |= dp_npy_save(path, DP_NPY_U1, 1, DP_VEC_LEN, v, CLI_N, err);
    snprintf(path, sizeof path, "%s/traffic.npy", dir);
    rc |= dp_npy_save(path, DP_NPY_I2, 2, 0, lab, CLI_N, err);
    snprintf(path, sizeof path, "%s/app.npy", dir);
    rc |= dp_npy_save(path, DP_NPY_I2, 2, 0, app, CLI_N, err);
    snprintf(path, sizeof path, "%s/meta.npy", dir);
    rc |= dp_npy_save(path, DP_META_DESCR, sizeof(dp_meta), 0, meta, CLI_N, err);
    snprintf(path, sizeof path, "%s/labels.tsv", dir);
    rc |= dp_write_file_atomic(path, labels_tsv, strlen(labels_tsv), err);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    rc |= dp_write_file_atomic(path, "{}\n", 3, err);
    free(v);
    free(meta);
    return rc ? -1 : 0;
}

static dp_model *make_model(const char *path)
{
    char err[DP_ERRBUF_SIZE];
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_SAE, DP_TASK_TRAFFIC, CLI_C);
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, (char *const *)cli_names, 5, err);
    if (!m || dp_model_save(m, path, err) != 0) {
        fprintf(stderr, "  make_model: %s\n", err);
        dp_model_free(m);
        return NULL;
    }
    return m;
}

static int file_exists(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

/* The model's own log-probabilities for the CLI split's rows, [CLI_N, CLI_C]
 * into lp, and their argmaxes into want; returns how many are right. */
static int cli_expected(dp_model *m, const dp_splitset *s, float *lp, int want[CLI_N])
{
    char err[DP_ERRBUF_SIZE];
    CHECK(dp_model_predict(m, dp_splitset_vector(s, 0), CLI_N, lp, err) == 0);
    int correct = 0;
    for (int i = 0; i < CLI_N; i++) {
        want[i] = 0;
        for (int c = 1; c < CLI_C; c++)
            if (lp[i * CLI_C + c] > lp[i * CLI_C + want[i]])
                want[i] = c;
        correct += want[i] == dp_splitset_label(s, i);
    }
    return correct;
}

/* predictions.npy = the model's argmax (up to near-ties across thread
 * counts); logprobs.npy = the model's output. */
static void cli_check_predictions(const char *out, const float *lp, const int want[CLI_N])
{
    char path[1024], err[DP_ERRBUF_SIZE];
    dp_npy a;
    snprintf(path, sizeof path, "%s/predictions.npy", out);
    if (dp_npy_open(&a, path, err) == 0) {
        CHECK(dp_npy_expect(&a, path, DP_NPY_I2, 2, 0, err) == 0);
        CHECK_EQ_INT(a.shape[0], CLI_N);
        int bad = 0;
        for (int i = 0; i < CLI_N && a.shape[0] == CLI_N; i++) {
            int16_t p;
            memcpy(&p, a.data + 2 * i, 2);
            if (p != want[i] && fabsf(lp[i * CLI_C + p] - lp[i * CLI_C + want[i]]) > 1e-4f)
                bad++;
        }
        CHECK_EQ_INT(bad, 0);
        dp_npy_close(&a);
    } else {
        CHECK(0);
    }
    snprintf(path, sizeof path, "%s/logprobs.npy", out);
    if (dp_npy_open(&a, path, err) == 0) {
        CHECK(dp_npy_expect(&a, path, DP_NPY_F4, 4, CLI_C, err) == 0);
        double maxd = 0;
        for (int i = 0; i < CLI_N * CLI_C && a.shape[0] == CLI_N; i++) {
            float x;
            memcpy(&x, a.data + 4 * (size_t)i, 4);
            maxd = fmax(maxd, fabs(x - lp[i]));
        }
        CHECK(maxd < 1e-4);
        dp_npy_close(&a);
    } else {
        CHECK(0);
    }
}

/* report.json and flow_report.json: counts, accuracy, task and model kind. */
static void cli_check_reports(const char *out, int correct)
{
    char *js = slurp(out, "report.json", NULL);
    if (js) {
        CHECK(json_valid(js));
        CHECK_NEAR(json_number(js, "n"), CLI_N, 0);
        CHECK_NEAR(json_number(js, "accuracy"), (double)correct / CLI_N, 1e-9);
        CHECK_STR_CONTAINS(js, "\"task\": \"traffic\"");
        CHECK_STR_CONTAINS(js, "\"model_kind\": \"sae\"");
    }
    free(js);
    js = slurp(out, "flow_report.json", NULL);
    if (js) {
        CHECK(json_valid(js));
        CHECK_NEAR(json_number(js, "n"), CLI_FLOWS, 0);
        CHECK_NEAR(json_number(js, "packets"), CLI_N, 0);
        CHECK_NEAR(json_number(js, "label_conflicts"), 0, 0);
    }
    free(js);
}

/* flows.npy: one row per flow, sorted by flow id, verdict = argmax of the
 * flow's summed log-probabilities (row i belongs to flow 1000 + i % CLI_FLOWS). */
static void cli_check_flows(const char *out, const float *lp)
{
    char path[1024], err[DP_ERRBUF_SIZE];
    dp_npy a;
    snprintf(path, sizeof path, "%s/flows.npy", out);
    if (dp_npy_open(&a, path, err) != 0) {
        CHECK(0);
        return;
    }
    CHECK_EQ_INT(a.shape[0], CLI_FLOWS);
    int bad = 0;
    uint64_t prev = 0;
    for (uint64_t r = 0; r < a.shape[0]; r++) {
        uint64_t flow, np;
        int16_t t, p;
        const uint8_t *row = a.data + 20 * r;
        memcpy(&flow, row, 8);
        memcpy(&t, row + 8, 2);
        memcpy(&p, row + 10, 2);
        memcpy(&np, row + 12, 8);
        bad += flow <= prev;
        prev = flow;
        int f = (int)(flow - 1000);
        double sum[CLI_C] = {0};
        uint64_t cnt = 0;
        for (int i = f; i < CLI_N; i += CLI_FLOWS, cnt++)
            for (int c = 0; c < CLI_C; c++)
                sum[c] += lp[i * CLI_C + c];
        int w = 0;
        for (int c = 1; c < CLI_C; c++)
            if (sum[c] > sum[w])
                w = c;
        bad += f < 0 || f >= CLI_FLOWS || t != f % CLI_C || np != cnt ||
               (p != w && fabs(sum[p] - sum[w]) > 1e-3);
    }
    CHECK_EQ_INT(bad, 0);
    dp_npy_close(&a);
}

/* Runs cmd, expects exit status `want` and, when `needle`, that its stderr
 * (redirected by cmd to errf) contains it. */
static void cli_expect_error(const char *cmd, int want, const char *errf, const char *needle)
{
    CHECK_EQ_INT(run(cmd), want);
    if (!needle)
        return;
    char *msg = dp_read_file(errf, NULL, NULL);
    CHECK_STR_CONTAINS(msg, needle);
    free(msg);
}

/* Every way `test` refuses: a missing model or set, classes that differ by
 * name or by count, an unwritable report folder, usage errors. */
static void cli_check_errors(const char *bin, const char *tmp, const char *split, const char *model)
{
    char cmd[4096], errf[600], split3[512];
    snprintf(errf, sizeof errf, "%s/cli/err", tmp);
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s/nope.model' 2> '%s'", bin, split, tmp, errf);
    cli_expect_error(cmd, 1, errf, "nope.model");
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s/nope' -m '%s' 2> '%s'", bin, tmp, model, errf);
    cli_expect_error(cmd, 1, errf, "test set");
    /* classes differ: another name, then another count (classes matched by name) */
    const char *other[] = {"Chat", "Email", "File Transfer", "Voip", "Streaming"};
    snprintf(split3, sizeof split3, "%s/cli/othernames", tmp);
    CHECK(make_split(split3, 1, other, 4) == 0);
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' 2> '%s'", bin, split3, model, errf);
    cli_expect_error(cmd, 1, errf, "othernames and ");
    char *msg = dp_read_file(errf, NULL, NULL);
    CHECK_STR_CONTAINS(msg, "traffic.sae.model: classes differ: dataset class 'File Transfer' is not one "
                            "of the model's (Chat, Email, VPN: File Transfer, Voip)");
    free(msg);
    snprintf(split3, sizeof split3, "%s/cli/fiveclasses", tmp);
    CHECK(make_split(split3, 1, other, 5) == 0);
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' 2> '%s'", bin, split3, model, errf);
    cli_expect_error(cmd, 1, errf, "classes differ: dataset class 'File Transfer'");
    /* unwritable REPORT_DIR */
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' -o '%s/vectors.npy/x' >/dev/null 2> '%s'",
             bin, split, model, split, errf);
    cli_expect_error(cmd, 1, errf, "vectors.npy");
    /* usage errors */
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' 2>/dev/null", bin, split);
    cli_expect_error(cmd, 2, NULL, NULL);
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' -j 0 2>/dev/null", bin, split, model);
    cli_expect_error(cmd, 2, NULL, NULL);
    snprintf(cmd, sizeof cmd, "'%s' test --bogus 2>/dev/null", bin);
    cli_expect_error(cmd, 2, NULL, NULL);
    snprintf(cmd, sizeof cmd, "'%s' test --help >/dev/null", bin);
    cli_expect_error(cmd, 0, NULL, NULL);
}

/* `test` on a split against the model's own outputs: every report file,
 * predictions, log-probabilities, per-flow verdicts and the printed table;
 * one thread gives the same predictions in the default report folder; a
 * set without meta.npy gets packet-level reports only; then every error. */
static void test_cli_end_to_end(void)
{
    const char *bin = cli_bin();
    if (!bin)
        SKIP("no deeppacket binary in $BUILD (run through make check)");
    const char *tmp = dp_test_tmpdir();
    char split[512], model[512], out1[512], out2[512], cmd[4096], err[DP_ERRBUF_SIZE];
    snprintf(split, sizeof split, "%s/cli/traffic/test", tmp);
    snprintf(model, sizeof model, "%s/cli/traffic.sae.model", tmp);
    snprintf(out1, sizeof out1, "%s/cli/out1", tmp);
    snprintf(out2, sizeof out2, "%s/cli/out2", tmp);
    CHECK(make_split(split, 1, cli_names, CLI_C) == 0);
    dp_model *m = make_model(model);
    CHECK(m != NULL);
    if (!m)
        return;

    /* 1. expected predictions, straight from the model */
    dp_splitset s;
    CHECK(dp_splitset_open(&s, split, err) == 0);
    float *lp = malloc(sizeof(float) * CLI_N * CLI_C);
    int want[CLI_N];
    int correct = cli_expected(m, &s, lp, want);

    /* 2. the CLI's reports against them */
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' -o '%s' -j 2 --batch-size 16 "
             "--save-logprobs > '%s/cli/stdout1' 2> '%s/cli/stderr1'", bin, split, model, out1, tmp, tmp);
    CHECK_EQ_INT(run(cmd), 0);
    const char *files[] = {"report.md", "report.json", "confusion.csv", "confusion.pdf",
                           "confusion.png", "flow_report.md", "flow_report.json",
                           "flow_confusion.csv", "flow_confusion.pdf", "flow_confusion.png",
                           "predictions.npy", "flows.npy", "logprobs.npy"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++)
        if (!file_exists(out1, files[k])) {
            fprintf(stderr, "  missing %s\n", files[k]);
            dp_test_failed_now = 1;
        }
    cli_check_predictions(out1, lp, want);
    cli_check_reports(out1, correct);
    cli_check_flows(out1, lp);
    /* the independent oracle (sklearn, numpy): every number of the report,
     * the verdicts by probability included; skips without them */
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/check_report.py '%s' '%s' 2>&1", out1, split);
    char ores[8192];
    CHECK_EQ_INT(dp_test_sh(cmd, ores, sizeof ores), 0);
    if (!strstr(ores, "SKIP"))
        CHECK_STR_CONTAINS(ores, ": 0 mismatches");
    char *so = slurp(tmp, "cli/stdout1", NULL);
    if (so) {
        CHECK_STR_CONTAINS(so, "| label");
        CHECK_STR_CONTAINS(so, "| VPN: File Transfer");
        CHECK_STR_CONTAINS(so, "Wtd. Average");
        CHECK_STR_CONTAINS(so, "flow level");
    }
    free(so);

    /* 3. one thread: the same predictions; default REPORT_DIR = MODEL.report;
     * the long option names; -q leaves only the closing line on stderr */
    snprintf(cmd, sizeof cmd, "'%s' test --data '%s' --model-file '%s' --threads 1 --quiet > /dev/null "
             "2> '%s/cli/stderr3'", bin, split, model, tmp);
    CHECK_EQ_INT(run(cmd), 0);
    char *se = slurp(tmp, "cli/stderr3", NULL);
    CHECK(se && !strncmp(se, "deeppacket test: report written to ", 35) && !strchr(se, '\n')[1]);
    free(se);
    char defdir[600];
    snprintf(defdir, sizeof defdir, "%s.report", model);
    size_t l1 = 0, l2 = 0;
    char *p1 = slurp(out1, "predictions.npy", &l1), *p2 = slurp(defdir, "predictions.npy", &l2);
    CHECK(p1 && p2 && l1 == l2 && !memcmp(p1, p2, l1));
    free(p1);
    free(p2);
    CHECK(!file_exists(defdir, "logprobs.npy"));

    /* 4. no meta.npy: packet level only */
    char split2[512];
    snprintf(split2, sizeof split2, "%s/cli/nometa", tmp);
    CHECK(make_split(split2, 0, cli_names, CLI_C) == 0);
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' -o '%s' > /dev/null 2>&1", bin, split2,
             model, out2);
    CHECK_EQ_INT(run(cmd), 0);
    CHECK(file_exists(out2, "report.json"));
    CHECK(!file_exists(out2, "flow_report.json"));

    /* 5. errors */
    cli_check_errors(bin, tmp, split, model);

    free(lp);
    dp_splitset_close(&s);
    dp_model_free(m);
}

/* Checks that file dir/name contains needle. */
static void file_contains(const char *dir, const char *name, const char *needle)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = dp_read_file(path, NULL, NULL);
    CHECK_STR_CONTAINS(text, needle);
    free(text);
}

/* The model's predictions on the CLI rows, scored over the rows whose class
 * is not `skip`: returns their count, *correct the correct ones. */
static int cli_score(dp_model *m, int skip, int *correct)
{
    char err[DP_ERRBUF_SIZE];
    uint8_t *v = malloc((size_t)CLI_N * DP_VEC_LEN);
    int16_t lab[CLI_N];
    dp_meta *meta = calloc(CLI_N, sizeof *meta);
    cli_rows(v, lab, meta);
    float *lp = malloc(sizeof(float) * CLI_N * CLI_C);
    CHECK(dp_model_predict(m, v, CLI_N, lp, err) == 0);
    int n = 0;
    *correct = 0;
    for (int i = 0; i < CLI_N; i++) {
        int p = 0;
        for (int c = 1; c < CLI_C; c++)
            if (lp[i * CLI_C + c] > lp[i * CLI_C + p])
                p = c;
        if (lab[i] != skip) {
            n++;
            *correct += p == lab[i];
        }
    }
    free(v);
    free(meta);
    free(lp);
    return n;
}

/* dp_evalrun on `dir` with `model` (one thread, batch 16), the report into
 * `out`; train: NULL or the --train-set data, dup: its packets (0: 10).
 * *printed receives the tables it printed (caller frees). Returns its
 * status; err its message. */
static int eval_lib(const char *dir, const char *model, const char *out, const char *train, int dup,
                    dp_evalrun_result *r, char **printed, char *err)
{
    size_t len = 0;
    dp_evalrun_opts o;
    dp_evalrun_opts_init(&o);
    o.test_dir = dir;
    o.model_path = model;
    o.report_dir = out;
    o.threads = 1;
    o.batch = 16;
    o.train_set = train;
    o.dup_packets = dup;
    o.out = open_memstream(printed, &len);
    int rc = dp_evalrun(&o, r, err);
    if (o.out)
        fclose(o.out);
    return rc;
}

/* dp_evalrun on `dir` with `model`: expects -1 and returns the message
 * (a static buffer); the result stays empty. */
static const char *eval_fails(const char *dir, const char *model)
{
    static char err[DP_ERRBUF_SIZE];
    char out[700], *printed = NULL;
    snprintf(out, sizeof out, "%s/od/report", dp_test_tmpdir());
    dp_evalrun_result r;
    CHECK_EQ_INT(eval_lib(dir, model, out, NULL, 0, &r, &printed, err), -1);
    CHECK(!r.has_packets && !r.has_flows && !r.report_dir);
    free(printed);
    return err;
}

/* What dp_evalrun refuses beside test_evalrun_other_dataset's dataset ds
 * (made with tmap and tsv): a class the model does not know, a split folder
 * of the other task, incomplete datasets, a missing model, a report
 * directory that cannot be made. */
static void check_other_dataset_refusals(const char *model, const char *ds, const int16_t *tmap, const char *tsv)
{
    const char *tmp = dp_test_tmpdir();
    char ds2[512], err[DP_ERRBUF_SIZE], path[700];
    /* a class the model does not know */
    snprintf(ds2, sizeof ds2, "%s/od/ds2", tmp);
    const char *tsv2 = "prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\n"
                       "v\t\t\t0\tVoip\nc\t\t\t1\tChat\ne\t\t\t2\tStreaming\n";
    CHECK(make_dataset(ds2, tmap, tsv2) == 0);
    const char *msg = eval_fails(ds2, model);
    CHECK_STR_CONTAINS(msg, "cannot use the test set: ");
    CHECK_STR_CONTAINS(msg, "od/ds2 and ");
    CHECK_STR_CONTAINS(msg, "traffic.model: classes differ: dataset class 'Streaming' is not one of the model's");

    /* a split folder of the other task */
    char split[512];
    snprintf(split, sizeof split, "%s/od/split/application_classification/test", tmp);
    CHECK(make_split(split, 1, cli_names, CLI_C) == 0);
    msg = eval_fails(split, model);
    CHECK_STR_CONTAINS(msg, "application_classification/test: a split folder of the app task, not of the "
                            "traffic task");

    /* incomplete datasets: no summary.json, no meta.npy */
    static const char *const drop[2] = {"summary.json", "meta.npy"};
    for (int k = 0; k < 2; k++) {
        char dsk[512], gone[700];
        snprintf(dsk, sizeof dsk, "%s/od/ds_no_%d", tmp, k);
        CHECK(make_dataset(dsk, tmap, tsv) == 0);
        snprintf(gone, sizeof gone, "%s/%s", dsk, drop[k]);
        CHECK(unlink(gone) == 0);
        msg = eval_fails(dsk, model);
        CHECK_STR_CONTAINS(msg, dsk);
        CHECK_STR_CONTAINS(msg, k == 0 ? "incomplete dataset (no summary.json)" : "meta.npy");
    }
    /* a model that is not there; a report directory that cannot be made */
    snprintf(path, sizeof path, "%s/od/nope.model", tmp);
    msg = eval_fails(ds, path);
    CHECK_STR_CONTAINS(msg, "cannot load the model: ");
    CHECK_STR_CONTAINS(msg, "nope.model");
    snprintf(path, sizeof path, "%s/od/ds/vectors.npy/x", tmp);
    dp_evalrun_result r2;
    char *p2 = NULL;
    CHECK_EQ_INT(eval_lib(ds, model, path, NULL, 0, &r2, &p2, err), -1);
    CHECK_STR_CONTAINS(err, "cannot write the report: ");
    CHECK_STR_CONTAINS(err, "vectors.npy/x");
    CHECK(!p2 || !p2[0]); /* refused before the evaluation */
    free(p2);
}

/* dp_evalrun on another set of captures: a dataset folder whose label table
 * numbers the classes differently and lacks one of the model's; a class the
 * model does not know; a split folder of the other task; incomplete
 * datasets. */
static void test_evalrun_other_dataset(void)
{
    const char *tmp = dp_test_tmpdir();
    char model[512], ds[512], out[512], err[DP_ERRBUF_SIZE], path[700];
    snprintf(model, sizeof model, "%s/od/traffic.model", tmp);
    snprintf(ds, sizeof ds, "%s/od/ds", tmp);
    snprintf(out, sizeof out, "%s/od/report", tmp);
    CHECK(dp_mkdirs(ds, err) == 0);
    dp_model *m = make_model(model);
    CHECK(m != NULL);
    if (!m)
        return;
    int correct = 0, n = cli_score(m, 2, &correct);
    /* Voip = 0, Chat = 1, Email = 2; no "VPN: File Transfer" rows */
    static const int16_t tmap[CLI_C] = {1, 2, -1, 0};
    const char *tsv = "prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\n"
                      "v\t\t\t0\tVoip\nc\t\t\t1\tChat\ne\t\t\t2\tEmail\n";
    CHECK(make_dataset(ds, tmap, tsv) == 0);
    dp_evalrun_result r;
    char *printed = NULL;
    CHECK_EQ_INT(eval_lib(ds, model, out, NULL, 0, &r, &printed, err), 0);
    CHECK(r.has_packets && r.has_flows && !r.flow_model);
    CHECK_EQ_INT(r.threads, 1);
    CHECK_EQ_INT(r.packets.n, n);
    CHECK_EQ_INT(r.packets.correct, correct);
    CHECK_EQ_INT(r.flows.n, 17); /* the 6 flows of label 2 (f % 4 == 2) are unlabelled */
    CHECK(r.report_dir && !strcmp(r.report_dir, out));
    dp_evalrun_result_free(&r);
    snprintf(path, sizeof path, "%s/report.json", out);
    char *js = dp_read_file(path, NULL, NULL);
    char want[128];
    snprintf(want, sizeof want, "\"n\": %d,\n  \"correct\": %d,", n, correct);
    CHECK_STR_CONTAINS(js, want);
    CHECK_STR_CONTAINS(js, "\"missing_classes\": [\"VPN: File Transfer\"],");
    free(js);
    CHECK_STR_CONTAINS(printed, "not in the test set (1 of the model's classes): VPN: File Transfer");
    CHECK_STR_CONTAINS(printed, "packet level (");
    free(printed);
    check_other_dataset_refusals(model, ds, tmap, tsv);
    dp_model_free(m);
}

/* A set of 0 rows is refused with a message naming it. */
static void test_evalrun_empty_set(void)
{
    const char *tmp = dp_test_tmpdir();
    char dir[512], model[512], path[700], err[DP_ERRBUF_SIZE];
    snprintf(dir, sizeof dir, "%s/empty/test", tmp);
    snprintf(model, sizeof model, "%s/empty/traffic.model", tmp);
    CHECK(make_split(dir, 1, cli_names, CLI_C) == 0);
    uint8_t v[1];
    int16_t lab[1];
    dp_meta meta[1];
    snprintf(path, sizeof path, "%s/vectors.npy", dir);
    CHECK(dp_npy_save(path, DP_NPY_U1, 1, DP_VEC_LEN, v, 0, err) == 0);
    snprintf(path, sizeof path, "%s/labels.npy", dir);
    CHECK(dp_npy_save(path, DP_NPY_I2, 2, 0, lab, 0, err) == 0);
    snprintf(path, sizeof path, "%s/meta.npy", dir);
    CHECK(dp_npy_save(path, DP_META_DESCR, sizeof(dp_meta), 0, meta, 0, err) == 0);
    dp_model *m = make_model(model);
    CHECK(m != NULL);
    const char *msg = eval_fails(dir, model);
    CHECK_STR_CONTAINS(msg, "empty/test: the test set has no rows: nothing to evaluate");
    dp_model_free(m);
}

/* The --train-set fixture under tmp/sub: the model, the test split (the CLI
 * rows) and training data of the Email rows alone; out = a report dir.
 * Returns the model (NULL on failure). */
static dp_model *train_set_fixture(const char *sub, char *model, char *split, char *tr, char *out)
{
    const char *tmp = dp_test_tmpdir();
    snprintf(model, 512, "%s/%s/traffic.model", tmp, sub);
    snprintf(split, 512, "%s/%s/test", tmp, sub);
    snprintf(tr, 512, "%s/%s/train", tmp, sub);
    snprintf(out, 512, "%s/%s/report", tmp, sub);
    CHECK(make_split(split, 1, cli_names, CLI_C) == 0);
    static const int16_t email_only[CLI_C] = {-1, 0, -1, -1};
    CHECK(make_dataset(tr, email_only, "prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\ne\t\t\t0\tEmail\n") == 0);
    dp_model *m = make_model(model);
    CHECK(m != NULL);
    return m;
}

/* --train-set: the test flows whose first packets' sizes and directions
 * occur in the training data are dropped from a second set of scores. In the
 * CLI rows only Email vectors carry IPv4 headers with (random) lengths; the
 * other classes' sequences are all size 0. The training data holds the Email
 * rows alone: exactly the 6 Email flows are duplicates. */
static void test_evalrun_train_set(void)
{
    const char *tmp = dp_test_tmpdir();
    char model[512], split[512], tr[512], out[512], path[700], err[DP_ERRBUF_SIZE];
    dp_model *m = train_set_fixture("ts", model, split, tr, out);
    if (!m)
        return;
    int correct = 0, n = cli_score(m, 1, &correct);
    dp_evalrun_result r;
    char *printed = NULL;
    CHECK_EQ_INT(eval_lib(split, model, out, tr, 0, &r, &printed, err), 0);
    CHECK_EQ_INT(r.dropped_flows, 6);
    CHECK_EQ_INT(r.packets.n, CLI_N); /* the main scores keep every row */
    dp_evalrun_result_free(&r);
    char want[256];
    snprintf(path, sizeof path, "%s/report.json", out);
    char *js = dp_read_file(path, NULL, NULL);
    snprintf(want, sizeof want, "\"sequence_packets\": 10, \"test_flows\": 23, \"dropped_flows\": 6, \"n\": %d, "
             "\"accuracy\": %.17g,", n, (double)correct / n);
    CHECK_STR_CONTAINS(js, want);
    free(js);
    file_contains(out, "flow_report.json", "\"test_flows\": 23, \"dropped_flows\": 6, \"n\": 17,");
    CHECK_STR_CONTAINS(printed, "without duplicate sequences: 6 of 23 test flows dropped (first 10 packets' sizes");
    free(printed);
    /* the training data as test set: every flow is a duplicate */
    printed = NULL;
    CHECK_EQ_INT(eval_lib(tr, model, out, tr, 3, &r, &printed, err), 0);
    CHECK_EQ_INT(r.dropped_flows, 6);
    dp_evalrun_result_free(&r);
    /* no flow left: the scores are undefined (sklearn: NaN), not 0 */
    CHECK_STR_CONTAINS(printed, "6 of 6 test flows dropped");
    CHECK_STR_CONTAINS(printed, "occur in ");
    CHECK_STR_CONTAINS(printed, "); no packets left to score\n");
    CHECK_STR_CONTAINS(printed, "); no flows left to score\n");
    CHECK(!strstr(printed, "on the other 0 "));
    free(printed);
    file_contains(out, "report.json", "\"sequence_packets\": 3, \"test_flows\": 6, \"dropped_flows\": 6, \"n\": 0, "
                                      "\"accuracy\": null, \"weighted_f1\": null, \"macro_f1\": null}");
    file_contains(out, "flow_report.json", "\"n\": 0, \"accuracy\": null, \"weighted_f1\": null, \"macro_f1\": null}");
    file_contains(out, "report.md", "); no packets left to score\n");
    file_contains(out, "report.html", "); no flows left to score</p>");
    /* bad input */
    char nometa[512];
    snprintf(nometa, sizeof nometa, "%s/ts/nometa", tmp);
    CHECK(make_split(nometa, 0, cli_names, CLI_C) == 0);
    printed = NULL;
    CHECK_EQ_INT(eval_lib(nometa, model, out, tr, 0, &r, &printed, err), -1);
    CHECK_STR_CONTAINS(err, "ts/nometa: no meta.npy: --train-set needs the test set's flows");
    free(printed);
    snprintf(path, sizeof path, "%s/ts/none", tmp);
    printed = NULL;
    CHECK_EQ_INT(eval_lib(split, model, out, path, 0, &r, &printed, err), -1);
    CHECK_STR_CONTAINS(err, "--train-set: ");
    CHECK_STR_CONTAINS(err, "ts/none");
    free(printed);
    dp_model_free(m);
}

/* The defaults: no FILE for the tables (nothing printed), the report in
 * MODEL.report, all CPUs (no more workers than batches: 203 rows at 256 per
 * batch make one). */
static void test_evalrun_defaults(void)
{
    char model[512], split[512], tr[512], out[512], err[DP_ERRBUF_SIZE], want[600];
    dp_model *m = train_set_fixture("df", model, split, tr, out);
    if (!m)
        return;
    dp_evalrun_opts o;
    dp_evalrun_opts_init(&o);
    o.test_dir = split;
    o.model_path = model;
    dp_evalrun_result r;
    CHECK_EQ_INT(dp_evalrun(&o, &r, err), 0);
    snprintf(want, sizeof want, "%s.report", model);
    CHECK(r.report_dir && !strcmp(r.report_dir, want));
    CHECK_EQ_INT(r.threads, 1);
    CHECK_EQ_INT(r.packets.n, CLI_N);
    CHECK_EQ_INT(r.flows.n, CLI_FLOWS);
    CHECK(file_exists(want, "report.json") && file_exists(want, "flows.npy"));
    CHECK(!file_exists(want, "logprobs.npy"));
    dp_evalrun_result_free(&r);
    o.model_path = NULL; /* required */
    CHECK_EQ_INT(dp_evalrun(&o, &r, err), -1);
    CHECK_STR_CONTAINS(err, "required");
    dp_model_free(m);
}

/* The CLI passes --train-set and --dup-packets through and prints the
 * library's messages after "deeppacket test: ". */
static void test_cli_train_set(void)
{
    const char *bin = cli_bin();
    if (!bin)
        SKIP("no deeppacket binary in $BUILD (run through make check)");
    const char *tmp = dp_test_tmpdir();
    char model[512], split[512], tr[512], out[512], cmd[4096];
    dp_model *m = train_set_fixture("tc", model, split, tr, out);
    if (!m)
        return;
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' -o '%s' --train-set '%s' --dup-packets 3 > '%s/tc/stdout' "
             "2>&1", bin, split, model, out, tr, tmp);
    CHECK_EQ_INT(run(cmd), 0);
    file_contains(out, "report.json", "\"sequence_packets\": 3, \"test_flows\": 23,");
    file_contains(tmp, "tc/stdout", "without duplicate sequences: ");
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' -o '%s' --train-set '%s/tc/none' > /dev/null 2> '%s/tc/err'",
             bin, split, model, out, tmp, tmp);
    CHECK_EQ_INT(run(cmd), 1);
    file_contains(tmp, "tc/err", "deeppacket test: --train-set: ");
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' --train-set '%s' --dup-packets 0 2> /dev/null", bin, split,
             model, tr);
    CHECK_EQ_INT(run(cmd), 2);
    dp_model_free(m);
}

/* ---- report.html ------------------------------------------------------------------- */
static void test_html_str(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dp_html_str(f, "<b>a&b</b> \"q\" 'x' \xff\x01 caf\xc3\xa9\tend");
    dp_html_str(f, NULL);
    fclose(f);
    CHECK(buf && !strcmp(buf, "&lt;b&gt;a&amp;b&lt;/b&gt; &quot;q&quot; &#39;x&#39; \xef\xbf\xbd\xef\xbf\xbd "
                              "caf\xc3\xa9\tend"));
    free(buf);
}

/* Runs tests/check_html.py on PAGE against the report files in DIR; 0 when
 * it says OK. */
static int check_html(const char *page, const char *dir)
{
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/check_html.py '%s' '%s' 2>&1", page, dir);
    int rc = dp_test_sh(cmd, out, sizeof out);
    if (rc != 0)
        fprintf(stderr, "  check_html.py %s: %s", page, out);
    return rc;
}

/* `deeppacket test`'s library writes report.html with both levels, and
 * what it shows is what report.json and flow_report.json say. */
static void test_html_evalrun(void)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        SKIP("no /usr/bin/python3 to parse the page");
    char model[512], split[512], tr[512], out[512], err[DP_ERRBUF_SIZE], page[700];
    dp_model *m = train_set_fixture("html", model, split, tr, out);
    if (!m)
        return;
    dp_evalrun_result r;
    char *printed = NULL;
    CHECK_EQ_INT(eval_lib(split, model, out, tr, 0, &r, &printed, err), 0);
    CHECK(r.has_packets && r.has_flows);
    dp_evalrun_result_free(&r);
    free(printed);
    snprintf(page, sizeof page, "%s/report.html", out);
    CHECK_EQ_INT(check_html(page, out), 0);
    char *html = dp_read_file(page, NULL, NULL);
    CHECK_STR_CONTAINS(html, "Without duplicate sequences: 6 of 23 test flows dropped");
    free(html);
    dp_model_free(m);
}

/* A page with class names and a model path that are markup (and a byte
 * that is not ASCII), opened in headless chromium: the DOM it builds has the
 * names as text in the tables, the numbers of report.json, no script.
 * (Bytes that are no UTF-8 are test_html_str's: the confusion figure
 * refuses such class names.) */
static void test_html_browser(void)
{
    char chromium[256] = "";
    if (dp_test_sh("command -v chromium || command -v chromium-browser", chromium, sizeof chromium) != 0)
        SKIP("chromium is not installed (apt-get install chromium: scripts/install-deps.sh test)");
    if (access("/usr/bin/python3", X_OK) != 0)
        SKIP("no /usr/bin/python3 to parse the page");
    chromium[strcspn(chromium, "\n")] = 0;
    const char *names[] = {"<b>Chat</b>", "E&mail \"q\" 'a'", "VPN: caf\xc3\xa9", "Voip</td></tr><script>alert(1)</script>"};
    int yt[] = {0, 0, 1, 2, 3, 3, 3, 1}, yp[] = {0, 1, 1, 2, 3, 0, 3, 1};
    dp_eval e;
    char err[DP_ERRBUF_SIZE], dir[512], page[700], dom[700], cmd[4096];
    CHECK_EQ_INT(dp_eval_compute(&e, 4, names, yt, yp, 8, err), 0);
    snprintf(dir, sizeof dir, "%s/html-hostile", dp_test_tmpdir());
    dp_report_info info = {.level = "packet", .task = "traffic", .model = "/tmp/<i>m</i>.model",
                           .model_kind = "cnn", .test_set = "split&test"};
    if (dp_eval_write_report(&e, &info, dir, "", err) != 0) {
        fprintf(stderr, "  %s\n", err);
        dp_test_failed_now = 1;
    }
    dp_html_level lv = {"", &e, &info};
    CHECK_EQ_INT(dp_html_write(dir, &lv, 1, err), 0);
    snprintf(page, sizeof page, "%s/report.html", dir);
    CHECK_EQ_INT(check_html(page, dir), 0);
    snprintf(dom, sizeof dom, "%s/dom.html", dir);
    snprintf(cmd, sizeof cmd, "timeout 120 %s --headless --no-sandbox --disable-gpu --user-data-dir=%s/chrome "
             "--dump-dom 'file://%s' > '%s' 2>/dev/null", chromium, dir, page, dom);
    CHECK_EQ_INT(dp_test_system(cmd), 0);
    CHECK_EQ_INT(check_html(dom, dir), 0);
    char *d = dp_read_file(dom, NULL, NULL);
    CHECK_STR_CONTAINS(d, "<td>&lt;b&gt;Chat&lt;/b&gt;</td>"); /* text, not a <b> element */
    free(d);
    dp_eval_free(&e);
    /* a folder that cannot be written: a message naming the file */
    CHECK_EQ_INT(dp_html_write("/nonexistent/dir", &lv, 1, err), -1);
    CHECK_STR_CONTAINS(err, "/nonexistent/dir/report.html");
}

int main(void)
{
    dp_test_prog = "test_eval";
    DP_RUN(test_sklearn_doc_example);
    DP_RUN(test_absent_and_predicted_only_classes);
    DP_RUN(test_weighted_average);
    DP_RUN(test_zero_division_and_edge_cases);
    DP_RUN(test_random_against_bruteforce);
    DP_RUN(test_flow_crafted);
    DP_RUN(test_flow_merge);
    DP_RUN(test_flow_many);
    DP_RUN(test_coverage_by_hand);
    DP_RUN(test_coverage_top_prob);
    DP_RUN(test_report_files);
    DP_RUN(test_escaping);
    DP_RUN(test_unwritable_dir);
    DP_RUN(test_figure_sizes);
    DP_RUN(test_cli_end_to_end);
    DP_RUN(test_evalrun_other_dataset);
    DP_RUN(test_evalrun_empty_set);
    DP_RUN(test_evalrun_train_set);
    DP_RUN(test_evalrun_defaults);
    DP_RUN(test_cli_train_set);
    DP_RUN(test_html_str);
    DP_RUN(test_html_evalrun);
    DP_RUN(test_html_browser);
    dp_eval_plot_release();
    return dp_test_end();
}
