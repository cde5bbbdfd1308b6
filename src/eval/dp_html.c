/* dp_html: the test report as one self-contained HTML page (dp_html.h). */
#include "eval/dp_html.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/dp_coverage.h"
#include "util/dp_util.h"

static const char *const STYLE =
    "body{font-family:'DejaVu Sans',sans-serif;margin:2em;color:#222;max-width:70em}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.25em .6em}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}tr.avg td{font-weight:bold;background:#f3f3f3}"
    "table.facts th{text-align:left;background:#f3f3f3}figure{margin:1em 0}img{max-width:100%;height:auto}"
    "table.confusion td.d{background:#deebf7}";

/* <tr><th>key</th><td>value</td></tr>, value escaped (NULL: left out). */
static void fact(FILE *f, const char *key, const char *value)
{
    if (!value)
        return;
    fprintf(f, "<tr><th>%s</th><td>", key);
    dp_html_str(f, value);
    fprintf(f, "</td></tr>\n");
}

/* The level's facts and headline scores. */
static void level_facts(FILE *f, const dp_eval *e, const dp_report_info *in, const char *unit)
{
    char buf[256];
    fprintf(f, "<table class=\"facts\">\n");
    fact(f, "model", in->model);
    fact(f, "model kind", in->model_kind);
    fact(f, "task", in->task);
    fact(f, "test set", in->test_set);
    snprintf(buf, sizeof buf, "%llu %s", (unsigned long long)e->n, unit);
    if (in->packets)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " (%llu packets)", (unsigned long long)in->packets);
    fact(f, "evaluated", buf);
    snprintf(buf, sizeof buf, "%.4f (%llu of %llu)", e->accuracy, (unsigned long long)e->correct,
             (unsigned long long)e->n);
    fact(f, "accuracy", buf);
    snprintf(buf, sizeof buf, "%.4f", e->weighted.f1);
    fact(f, "weighted f1-score", buf);
    snprintf(buf, sizeof buf, "%.4f (%d classes)", e->macro.f1, e->nlisted);
    fact(f, "macro f1-score", buf);
    if (e->has_vpn) {
        snprintf(buf, sizeof buf, "%.4f", e->vpn_accuracy);
        fact(f, "VPN vs non-VPN accuracy", buf);
    }
    if (in->label_conflicts) {
        snprintf(buf, sizeof buf, "%llu flows (%s label used)", (unsigned long long)in->label_conflicts,
                 in->first_label ? "first packet's" : "majority");
        fact(f, "label conflicts", buf);
    }
    fprintf(f, "</table>\n");
}

/* What the report says beyond the table: missing classes, duplicates. */
static void level_notes(FILE *f, const dp_report_info *in, const char *unit)
{
    if (in->nmissing > 0) {
        fprintf(f, "<p>Not in the test set (%d of the model's classes): ", in->nmissing);
        for (int i = 0; i < in->nmissing; i++) {
            fprintf(f, "%s", i ? ", " : "");
            dp_html_str(f, in->missing[i]);
        }
        fprintf(f, "</p>\n");
    }
    const dp_report_dedup *d = in->dedup;
    if (d && d->eval) {
        fprintf(f, "<p>Without duplicate sequences: %llu of %llu test flows dropped (first %d packets' sizes and "
                   "directions occur in ",
                (unsigned long long)d->dropped_flows, (unsigned long long)d->test_flows, d->seq_packets);
        dp_html_str(f, d->train_set);
        if (d->eval->n) /* as report.md: no made-up scores of no sample */
            fprintf(f, "); on the other %llu %s: accuracy %.4f, weighted f1-score %.4f, macro f1-score %.4f</p>\n",
                    (unsigned long long)d->eval->n, unit, d->eval->accuracy, d->eval->weighted.f1,
                    d->eval->macro.f1);
        else
            fprintf(f, "); no %s left to score</p>\n", unit);
    }
    if (in->label_conflicts)
        fprintf(f, "<p>%llu flows hold packets of more than one label: %s label used.</p>\n",
                (unsigned long long)in->label_conflicts, in->first_label ? "first packet's" : "majority");
}

static void score_row(FILE *f, const char *cls, const char *label, double r, double p, double f1, uint64_t sup)
{
    fprintf(f, "<tr%s><td>", cls);
    dp_html_str(f, label);
    fprintf(f, "</td><td class=\"n\">%.4f</td><td class=\"n\">%.4f</td><td class=\"n\">%.4f</td>"
               "<td class=\"n\">%llu</td></tr>\n", r, p, f1, (unsigned long long)sup);
}

/* The per-class table, as report.md. */
static void score_table(FILE *f, const dp_eval *e)
{
    fprintf(f, "<table class=\"scores\">\n<thead><tr><th>label</th><th>recall</th><th>precision</th>"
               "<th>f1-score</th><th>support</th></tr></thead>\n<tbody>\n");
    for (int c = 0; c < e->nclasses; c++)
        if (e->cls[c].listed)
            score_row(f, "", e->names[c], e->cls[c].recall, e->cls[c].precision, e->cls[c].f1, e->cls[c].support);
    score_row(f, " class=\"avg\"", "Macro Average", e->macro.recall, e->macro.precision, e->macro.f1,
              e->macro.support);
    score_row(f, " class=\"avg\"", "Wtd. Average", e->weighted.recall, e->weighted.precision, e->weighted.f1,
              e->weighted.support);
    fprintf(f, "</tbody>\n</table>\n");
}

/* The verdicts by probability (dp_coverage), as report.md. */
static void coverage_table(FILE *f, const dp_coverage *cv, const char *unit)
{
    fprintf(f, "<h3>Verdicts by probability</h3>\n<p>The %s whose verdict's probability is at least "
               "<i>min prob</i>; the others would be &ldquo;unknown&rdquo; with <code>classify --min-prob</code>."
               "</p>\n<table class=\"coverage\">\n<thead><tr><th>min prob</th><th>kept</th><th>coverage</th>"
               "<th>accuracy</th><th>weighted f1</th><th>macro f1</th></tr></thead>\n<tbody>\n", unit);
    for (int k = 0; k < DP_COVERAGE_NT; k++) {
        const dp_coverage_row *r = &cv->rows[k];
        fprintf(f, "<tr><td class=\"n\">%.2f</td><td class=\"n\">%llu</td><td class=\"n\">%.4f</td>", r->min_prob,
                (unsigned long long)r->kept, r->coverage);
        if (r->kept)
            fprintf(f, "<td class=\"n\">%.4f</td><td class=\"n\">%.4f</td><td class=\"n\">%.4f</td></tr>\n",
                    r->accuracy, r->weighted_f1, r->macro_f1);
        else
            fprintf(f, "<td class=\"n\">-</td><td class=\"n\">-</td><td class=\"n\">-</td></tr>\n");
    }
    fprintf(f, "</tbody>\n</table>\n");
}

/* The confusion counts of the listed classes: rows true, columns predicted. */
static void confusion_table(FILE *f, const dp_eval *e)
{
    fprintf(f, "<table class=\"confusion\">\n<thead><tr><th>true \\ predicted</th>");
    for (int p = 0; p < e->nclasses; p++)
        if (e->cls[p].listed) {
            fprintf(f, "<th>");
            dp_html_str(f, e->names[p]);
            fprintf(f, "</th>");
        }
    fprintf(f, "</tr></thead>\n<tbody>\n");
    for (int t = 0; t < e->nclasses; t++) {
        if (!e->cls[t].listed)
            continue;
        fprintf(f, "<tr><th>");
        dp_html_str(f, e->names[t]);
        fprintf(f, "</th>");
        for (int p = 0; p < e->nclasses; p++)
            if (e->cls[p].listed)
                fprintf(f, "<td class=\"n%s\">%llu</td>", p == t ? " d" : "",
                        (unsigned long long)e->cm[(size_t)t * e->nclasses + p]);
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</tbody>\n</table>\n");
}

static void level_section(FILE *f, const dp_html_level *lv)
{
    static const dp_report_info none;
    const dp_report_info *in = lv->info ? lv->info : &none;
    int flow = in->level && !strcmp(in->level, "flow");
    const char *unit = flow ? "flows" : "packets";
    fprintf(f, "<section id=\"%s-level\">\n<h2>%s level</h2>\n", flow ? "flow" : "packet", flow ? "Flow" : "Packet");
    level_facts(f, lv->eval, in, unit);
    level_notes(f, in, unit);
    score_table(f, lv->eval);
    if (in->coverage)
        coverage_table(f, in->coverage, unit);
    fprintf(f, "<figure><img src=\"%sconfusion.png\" alt=\"row-normalised confusion matrix, %s level\">"
               "<figcaption>Row-normalised confusion matrix (<a href=\"%sconfusion.pdf\">PDF</a>, counts: "
               "<a href=\"%sconfusion.csv\">CSV</a>)</figcaption></figure>\n",
            lv->prefix, flow ? "flow" : "packet", lv->prefix, lv->prefix);
    fprintf(f, "<h3>Confusion counts</h3>\n");
    confusion_table(f, lv->eval);
    fprintf(f, "</section>\n");
}

int dp_html_write(const char *dir, const dp_html_level *lv, int nlevels, char *errbuf)
{
    size_t n = strlen(dir) + 16;
    char *path = malloc(n);
    if (!path)
        return dp_err(errbuf, "%s/report.html: out of memory", dir);
    snprintf(path, n, "%s/report.html", dir);
    dp_afile af;
    int rc = dp_afile_open(&af, path, errbuf);
    free(path);
    if (rc != 0)
        return -1;
    FILE *f = af.f;
    const dp_report_info *in = nlevels > 0 ? lv[0].info : NULL;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>deeppacket test: ");
    dp_html_str(f, in && in->model ? in->model : "report");
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>deeppacket test report</h1>\n", STYLE);
    for (int i = 0; i < nlevels; i++)
        level_section(f, &lv[i]);
    fprintf(f, "<p>Files: <a href=\"%sreport.md\">markdown</a>, <a href=\"%sreport.json\">JSON</a> "
               "(docs/report-format.md).</p>\n</body>\n</html>\n",
            nlevels ? lv[0].prefix : "", nlevels ? lv[0].prefix : "");
    return dp_afile_commit(&af, errbuf);
}
