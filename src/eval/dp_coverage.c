/* dp_coverage: selective classification over a threshold on the verdict's
 * probability. See dp_coverage.h. */
#include "eval/dp_coverage.h"

#include <math.h>

#include "eval/dp_eval.h"
#include "util/dp_task.h"
#include "util/dp_util.h"

const double dp_coverage_thresholds[DP_COVERAGE_NT] = {0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99};

/* One row: the samples with prob >= t scored in a fresh dp_eval. */
static int coverage_row(dp_coverage_row *row, double t, int nclasses, const int16_t *label,
                        const int16_t *pred, const float *prob, uint64_t n, char *errbuf)
{
    dp_eval e;
    if (dp_eval_init(&e, nclasses, NULL, errbuf) != 0)
        return -1;
    for (uint64_t i = 0; i < n; i++)
        if (prob[i] >= t) /* NaN is never kept */
            dp_eval_add(&e, label[i], pred[i]);
    dp_eval_finish(&e);
    row->min_prob = t;
    row->kept = e.n;
    row->coverage = n ? (double)e.n / (double)n : 0.0;
    row->accuracy = e.n ? e.accuracy : 0.0;
    row->weighted_f1 = e.n ? e.weighted.f1 : 0.0;
    row->macro_f1 = e.n ? e.macro.f1 : 0.0;
    dp_eval_free(&e);
    return 0;
}

int dp_coverage_compute(dp_coverage *cv, int nclasses, const int16_t *label, const int16_t *pred,
                        const float *prob, uint64_t n, char *errbuf)
{
    cv->n = n;
    for (int k = 0; k < DP_COVERAGE_NT; k++)
        if (coverage_row(&cv->rows[k], dp_coverage_thresholds[k], nclasses, label, pred, prob, n, errbuf) != 0)
            return -1;
    return 0;
}

double dp_coverage_top_prob(const double *lp, int n)
{
    if (n < 1)
        return 0.0;
    double mx = lp[0];
    for (int i = 1; i < n; i++)
        if (lp[i] > mx)
            mx = lp[i];
    if (!isfinite(mx))
        return 0.0;
    double z = 0.0;
    for (int i = 0; i < n; i++) {
        if (isnan(lp[i]))
            return 0.0;
        z += exp(lp[i] - mx);
    }
    return 1.0 / z;
}

double dp_coverage_top_probf(const float *lp, int n)
{
    double buf[DP_MAX_CLASSES];
    if (n < 1 || n > DP_MAX_CLASSES)
        return 0.0;
    for (int i = 0; i < n; i++)
        buf[i] = lp[i];
    return dp_coverage_top_prob(buf, n);
}

void dp_coverage_print_markdown(const dp_coverage *cv, const char *unit, FILE *f)
{
    fprintf(f, "\nverdicts by probability (%s whose verdict's probability is at least min prob; "
               "the others would be \"unknown\" with classify --min-prob):\n\n", unit);
    fprintf(f, "| min prob |       kept | coverage | accuracy | weighted f1 | macro f1 |\n");
    fprintf(f, "|---------:|-----------:|---------:|---------:|------------:|---------:|\n");
    for (int k = 0; k < DP_COVERAGE_NT; k++) {
        const dp_coverage_row *r = &cv->rows[k];
        if (r->kept)
            fprintf(f, "| %8.2f | %10llu | %8.4f | %8.4f | %11.4f | %8.4f |\n", r->min_prob,
                    (unsigned long long)r->kept, r->coverage, r->accuracy, r->weighted_f1, r->macro_f1);
        else
            fprintf(f, "| %8.2f | %10d | %8.4f | %8s | %11s | %8s |\n", r->min_prob, 0, r->coverage, "-", "-", "-");
    }
}

/* A score as JSON: 17 significant digits (dp_json_num: null when not
 * finite), null when nothing is kept. */
static void json_score(FILE *f, double v, int defined)
{
    dp_json_num(f, "%.17g", defined ? v : NAN);
}

void dp_coverage_print_json(const dp_coverage *cv, FILE *f)
{
    fputs("[", f);
    for (int k = 0; k < DP_COVERAGE_NT; k++) {
        const dp_coverage_row *r = &cv->rows[k];
        fprintf(f, "%s\n    {\"min_prob\": %g, \"kept\": %llu, \"coverage\": ", k ? "," : "", r->min_prob,
                (unsigned long long)r->kept);
        json_score(f, r->coverage, 1);
        fputs(", \"accuracy\": ", f);
        json_score(f, r->accuracy, r->kept > 0);
        fputs(", \"weighted_f1\": ", f);
        json_score(f, r->weighted_f1, r->kept > 0);
        fputs(", \"macro_f1\": ", f);
        json_score(f, r->macro_f1, r->kept > 0);
        fputs("}", f);
    }
    fputs("\n  ]", f);
}
