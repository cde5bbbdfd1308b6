/* dp_eval: per-class metrics (sklearn classification_report semantics) and
 * the text report files. See dp_eval.h. */
#include "eval/dp_eval.h"

static void vpn_fold(dp_eval *e);

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/dp_coverage.h"
#include "util/dp_task.h"

int dp_eval_init(dp_eval *e, int nclasses, const char *const *names, char *errbuf)
{
    memset(e, 0, sizeof *e);
    if (nclasses < 1 || nclasses > DP_MAX_CLASSES)
        return dp_err(errbuf, "eval: %d classes (expected 1..%d)", nclasses, DP_MAX_CLASSES);
    size_t c = (size_t)nclasses;
    e->nclasses = nclasses;
    e->names = calloc(c, sizeof *e->names);
    e->cm = calloc(c * c, sizeof *e->cm);
    e->cls = calloc(c, sizeof *e->cls);
    if (!e->names || !e->cm || !e->cls)
        goto oom;
    for (int i = 0; i < nclasses; i++) {
        char tmp[32];
        const char *s = names ? names[i] : NULL;
        if (!s) {
            snprintf(tmp, sizeof tmp, "class %d", i);
            s = tmp;
        }
        if (!(e->names[i] = strdup(s)))
            goto oom;
    }
    return 0;
oom:
    dp_eval_free(e);
    return dp_err(errbuf, "eval: out of memory");
}

void dp_eval_free(dp_eval *e)
{
    if (e->names)
        for (int i = 0; i < e->nclasses; i++)
            free(e->names[i]);
    free(e->names);
    free(e->cm);
    free(e->cls);
    memset(e, 0, sizeof *e);
}

int dp_eval_add_n(dp_eval *e, int t, int p, uint64_t count)
{
    if (t < 0 || t >= e->nclasses || p < 0 || p >= e->nclasses) {
        e->invalid += count;
        return -1;
    }
    e->cm[(size_t)t * e->nclasses + p] += count;
    e->n += count;
    if (t == p)
        e->correct += count;
    return 0;
}

void dp_eval_add_matrix(dp_eval *e, const uint64_t *cm)
{
    for (int t = 0; t < e->nclasses; t++)
        for (int p = 0; p < e->nclasses; p++)
            dp_eval_add_n(e, t, p, cm[(size_t)t * e->nclasses + p]);
}

void dp_eval_finish(dp_eval *e)
{
    int C = e->nclasses;
    for (int c = 0; c < C; c++) {
        dp_eval_class *k = &e->cls[c];
        memset(k, 0, sizeof *k);
        for (int j = 0; j < C; j++) {
            k->support += e->cm[(size_t)c * C + j];
            k->predicted += e->cm[(size_t)j * C + c];
        }
        k->tp = e->cm[(size_t)c * C + c];
        k->listed = k->support > 0 || k->predicted > 0;
        k->recall = k->support ? (double)k->tp / (double)k->support : 0.0;
        k->precision = k->predicted ? (double)k->tp / (double)k->predicted : 0.0;
        /* sklearn >= 1.3 computes F1 as 2tp / (2tp + fp + fn); equal to
         * 2PR/(P+R) wherever that is defined, 0 where tp == 0. */
        uint64_t den = k->support + k->predicted;
        k->f1 = den ? 2.0 * (double)k->tp / (double)den : 0.0;
    }
    memset(&e->macro, 0, sizeof e->macro);
    memset(&e->weighted, 0, sizeof e->weighted);
    e->nlisted = 0;
    uint64_t wsum = 0;
    for (int c = 0; c < C; c++) {
        const dp_eval_class *k = &e->cls[c];
        if (!k->listed)
            continue;
        e->nlisted++;
        e->macro.recall += k->recall;
        e->macro.precision += k->precision;
        e->macro.f1 += k->f1;
        double w = (double)k->support;
        e->weighted.recall += w * k->recall;
        e->weighted.precision += w * k->precision;
        e->weighted.f1 += w * k->f1;
        wsum += k->support;
    }
    if (e->nlisted) {
        e->macro.recall /= e->nlisted;
        e->macro.precision /= e->nlisted;
        e->macro.f1 /= e->nlisted;
    }
    if (wsum) {
        e->weighted.recall /= (double)wsum;
        e->weighted.precision /= (double)wsum;
        e->weighted.f1 /= (double)wsum;
    } else {
        e->weighted.recall = e->weighted.precision = e->weighted.f1 = 0.0;
    }
    e->macro.support = e->weighted.support = wsum;
    e->accuracy = e->n ? (double)e->correct / (double)e->n : 0.0;
    vpn_fold(e);
}

static int is_vpn(const dp_eval *e, int c)
{
    return e->names[c] && strncmp(e->names[c], "VPN", 3) == 0;
}

/* VPN vs non-VPN accuracy from the confusion matrix. */
static void vpn_fold(dp_eval *e)
{
    int C = e->nclasses, nv = 0;
    for (int c = 0; c < C; c++)
        nv += is_vpn(e, c);
    e->has_vpn = nv > 0 && nv < C;
    e->vpn_correct = 0;
    e->vpn_accuracy = 0;
    if (!e->has_vpn)
        return;
    for (int t = 0; t < C; t++)
        for (int p = 0; p < C; p++)
            if (is_vpn(e, t) == is_vpn(e, p))
                e->vpn_correct += e->cm[(size_t)t * C + p];
    e->vpn_accuracy = e->n ? (double)e->vpn_correct / (double)e->n : 0.0;
}

int dp_eval_compute(dp_eval *e, int nclasses, const char *const *names,
                    const int *y_true, const int *y_pred, size_t n, char *errbuf)
{
    if (dp_eval_init(e, nclasses, names, errbuf) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        dp_eval_add(e, y_true[i], y_pred[i]);
    dp_eval_finish(e);
    return 0;
}

double dp_eval_norm(const dp_eval *e, int t, int p)
{
    int C = e->nclasses;
    uint64_t row = 0;
    for (int j = 0; j < C; j++)
        row += e->cm[(size_t)t * C + j];
    return row ? (double)e->cm[(size_t)t * C + p] / (double)row : 0.0;
}

/* ---- text outputs ------------------------------------------------------------ */

/* Display width of a UTF-8 string (code points). */
static int utf8_width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

static int md_width(const char *s)
{
    int w = utf8_width(s);
    for (; *s; s++)
        w += *s == '|' || *s == '\\' || *s == '<'; /* dp_md_text's backslash */
    return w;
}

/* A markdown cell (dp_md_text) padded with spaces to width characters. */
static void md_cell(FILE *f, const char *s, int width)
{
    dp_md_text(f, s);
    for (int w = md_width(s); w < width; w++)
        fputc(' ', f);
}

static const char *unit_name(const dp_report_info *info)
{
    return info && info->level && !strcmp(info->level, "flow") ? "flows" : "packets";
}

void dp_eval_print_markdown(const dp_eval *e, const dp_report_info *info, FILE *f)
{
    static const char *avg_label = "Wtd. Average";
    int lw = (int)strlen("label");
    if ((int)strlen(avg_label) > lw)
        lw = (int)strlen(avg_label);
    for (int c = 0; c < e->nclasses; c++)
        if (e->cls[c].listed && md_width(e->names[c]) > lw)
            lw = md_width(e->names[c]);
    char sup[32];
    snprintf(sup, sizeof sup, "%llu", (unsigned long long)e->n);
    int sw = (int)strlen(sup) > 7 ? (int)strlen(sup) : 7;

    fprintf(f, "| ");
    md_cell(f, "label", lw);
    fprintf(f, " |   recall |   precision |   f1-score | %*s |\n", sw, "support");
    fputs("|:", f);
    for (int i = 0; i < lw + 1; i++)
        fputc('-', f);
    fprintf(f, "|---------:|------------:|-----------:|");
    for (int i = 0; i < sw + 1; i++)
        fputc('-', f);
    fputs(":|\n", f);
    for (int c = 0; c < e->nclasses; c++) {
        const dp_eval_class *k = &e->cls[c];
        if (!k->listed)
            continue;
        fprintf(f, "| ");
        md_cell(f, e->names[c], lw);
        fprintf(f, " | %8.4f | %11.4f | %10.4f | %*llu |\n", k->recall, k->precision, k->f1,
                sw, (unsigned long long)k->support);
    }
    fprintf(f, "| ");
    md_cell(f, avg_label, lw);
    fprintf(f, " | %8.4f | %11.4f | %10.4f | %*llu |\n", e->weighted.recall,
            e->weighted.precision, e->weighted.f1, sw,
            (unsigned long long)e->weighted.support);
    fprintf(f, "\naccuracy: %.4f (%llu of %llu %s)\n", e->accuracy,
            (unsigned long long)e->correct, (unsigned long long)e->n, unit_name(info));
    fprintf(f, "macro average: recall %.4f, precision %.4f, f1-score %.4f (%d classes)\n",
            e->macro.recall, e->macro.precision, e->macro.f1, e->nlisted);
    if (e->has_vpn)
        fprintf(f, "VPN vs non-VPN accuracy: %.4f (%llu of %llu %s; the VPN classes folded into one)\n",
                e->vpn_accuracy, (unsigned long long)e->vpn_correct, (unsigned long long)e->n, unit_name(info));
    if (info && info->nmissing) {
        fprintf(f, "not in the test set (%d of the model's classes): ", info->nmissing);
        for (int i = 0; i < info->nmissing; i++)
            fprintf(f, "%s%s", i ? ", " : "", info->missing[i]);
        fputc('\n', f);
    }
    if (info && info->dedup) {
        const dp_report_dedup *d = info->dedup;
        const dp_eval *x = d->eval;
        fprintf(f,
                "without duplicate sequences: %llu of %llu test flows dropped (first %d packets' sizes and "
                "directions occur in %s); ",
                (unsigned long long)d->dropped_flows, (unsigned long long)d->test_flows, d->seq_packets,
                d->train_set);
        if (x->n) /* scores of no sample would be made up: sklearn's are NaN */
            fprintf(f, "on the other %llu %s: accuracy %.4f, weighted f1-score %.4f, macro f1-score %.4f\n",
                    (unsigned long long)x->n, unit_name(info), x->accuracy, x->weighted.f1, x->macro.f1);
        else
            fprintf(f, "no %s left to score\n", unit_name(info));
    }
    if (info && info->label_conflicts)
        fprintf(f, "(%llu flows hold packets of more than one label: %s label used)\n",
                (unsigned long long)info->label_conflicts, info->first_label ? "first packet's" : "majority");
    if (info && info->coverage)
        dp_coverage_print_markdown(info->coverage, unit_name(info), f);
}

/* A finite double as JSON (17 significant digits round-trip). */
static void json_num(FILE *f, double v)
{
    if (!isfinite(v))
        v = 0.0;
    fprintf(f, "%.17g", v);
}

/* v as JSON when `defined` (a score over at least one sample), else null. */
static void json_score(FILE *f, double v, int defined)
{
    if (defined)
        json_num(f, v);
    else
        fputs("null", f);
}

static void json_avg(FILE *f, const char *key, const dp_eval_avg *a)
{
    fprintf(f, "  \"%s\": {\"recall\": ", key);
    json_num(f, a->recall);
    fputs(", \"precision\": ", f);
    json_num(f, a->precision);
    fputs(", \"f1\": ", f);
    json_num(f, a->f1);
    fprintf(f, ", \"support\": %llu},\n", (unsigned long long)a->support);
}

/* "missing_classes" and "without_duplicates" (null when not computed). */
static void json_extras(FILE *f, const dp_report_info *info)
{
    fputs("  \"missing_classes\": [", f);
    for (int i = 0; info && i < info->nmissing; i++) {
        fputs(i ? ", " : "", f);
        dp_json_str(f, info->missing[i]);
    }
    fputs("],\n  \"without_duplicates\": ", f);
    if (!info || !info->dedup) {
        fputs("null,\n", f);
        return;
    }
    const dp_report_dedup *d = info->dedup;
    fputs("{\"train_set\": ", f);
    dp_json_str(f, d->train_set ? d->train_set : "");
    fprintf(f, ", \"sequence_packets\": %d, \"test_flows\": %llu, \"dropped_flows\": %llu, \"n\": %llu",
            d->seq_packets, (unsigned long long)d->test_flows, (unsigned long long)d->dropped_flows,
            (unsigned long long)d->eval->n);
    int scored = d->eval->n > 0; /* no flow left: no score (null), not 0 */
    fputs(", \"accuracy\": ", f);
    json_score(f, d->eval->accuracy, scored);
    fputs(", \"weighted_f1\": ", f);
    json_score(f, d->eval->weighted.f1, scored);
    fputs(", \"macro_f1\": ", f);
    json_score(f, d->eval->macro.f1, scored);
    fputs("},\n", f);
}

void dp_eval_print_json(const dp_eval *e, const dp_report_info *info, FILE *f)
{
    int C = e->nclasses;
    fputs("{\n  \"format\": \"deeppacket-report-1\",\n  \"level\": ", f);
    dp_json_str(f, info && info->level ? info->level : "packet");
    fputs(",\n  \"task\": ", f);
    if (info && info->task)
        dp_json_str(f, info->task);
    else
        fputs("null", f);
    fputs(",\n  \"model\": ", f);
    if (info && info->model)
        dp_json_str(f, info->model);
    else
        fputs("null", f);
    fputs(",\n  \"model_kind\": ", f);
    if (info && info->model_kind)
        dp_json_str(f, info->model_kind);
    else
        fputs("null", f);
    fputs(",\n  \"test_set\": ", f);
    if (info && info->test_set)
        dp_json_str(f, info->test_set);
    else
        fputs("null", f);
    fprintf(f, ",\n  \"n\": %llu,\n  \"correct\": %llu,\n  \"invalid\": %llu,\n",
            (unsigned long long)e->n, (unsigned long long)e->correct,
            (unsigned long long)e->invalid);
    if (info && info->level && !strcmp(info->level, "flow"))
        fprintf(f, "  \"packets\": %llu,\n  \"label_conflicts\": %llu,\n",
                (unsigned long long)info->packets, (unsigned long long)info->label_conflicts);
    json_extras(f, info);
    fputs("  \"accuracy\": ", f);
    json_num(f, e->accuracy);
    fputs(",\n  \"vpn_accuracy\": ", f);
    if (e->has_vpn)
        json_num(f, e->vpn_accuracy);
    else
        fputs("null", f);
    fprintf(f, ",\n  \"nclasses\": %d,\n  \"nlisted\": %d,\n", C, e->nlisted);
    json_avg(f, "macro_avg", &e->macro);
    json_avg(f, "weighted_avg", &e->weighted);
    fputs("  \"coverage\": ", f);
    if (info && info->coverage)
        dp_coverage_print_json(info->coverage, f);
    else
        fputs("null", f);
    fputs(",\n", f);
    fputs("  \"classes\": [\n", f);
    for (int c = 0; c < C; c++) {
        const dp_eval_class *k = &e->cls[c];
        fprintf(f, "    {\"id\": %d, \"name\": ", c);
        dp_json_str(f, e->names[c]);
        fprintf(f, ", \"listed\": %s, \"support\": %llu, \"predicted\": %llu, \"tp\": %llu",
                k->listed ? "true" : "false", (unsigned long long)k->support,
                (unsigned long long)k->predicted, (unsigned long long)k->tp);
        fputs(", \"recall\": ", f);
        json_num(f, k->recall);
        fputs(", \"precision\": ", f);
        json_num(f, k->precision);
        fputs(", \"f1\": ", f);
        json_num(f, k->f1);
        fprintf(f, "}%s\n", c + 1 < C ? "," : "");
    }
    fputs("  ],\n  \"confusion\": [\n", f);
    for (int t = 0; t < C; t++) {
        fputs("    [", f);
        for (int p = 0; p < C; p++)
            fprintf(f, "%s%llu", p ? ", " : "", (unsigned long long)e->cm[(size_t)t * C + p]);
        fprintf(f, "]%s\n", t + 1 < C ? "," : "");
    }
    fputs("  ]\n}\n", f);
}

static void csv_cell(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void dp_eval_print_csv(const dp_eval *e, FILE *f)
{
    int C = e->nclasses;
    fputs("true\\predicted", f);
    for (int p = 0; p < C; p++) {
        fputc(',', f);
        csv_cell(f, e->names[p]);
    }
    fputc('\n', f);
    for (int t = 0; t < C; t++) {
        csv_cell(f, e->names[t]);
        for (int p = 0; p < C; p++)
            fprintf(f, ",%llu", (unsigned long long)e->cm[(size_t)t * C + p]);
        fputc('\n', f);
    }
}

/* ---- the report directory ---------------------------------------------------- */

typedef void (*printer_fn)(const dp_eval *, const dp_report_info *, FILE *);

static void csv_printer(const dp_eval *e, const dp_report_info *info, FILE *f)
{
    (void)info;
    dp_eval_print_csv(e, f);
}

static int write_text(const dp_eval *e, const dp_report_info *info, const char *path,
                      printer_fn fn, char *errbuf)
{
    dp_afile af;
    if (dp_afile_open(&af, path, errbuf) != 0)
        return -1;
    fn(e, info, af.f);
    return dp_afile_commit(&af, errbuf);
}

int dp_eval_write_report(const dp_eval *e, const dp_report_info *info, const char *dir,
                         const char *prefix, char *errbuf)
{
    if (!prefix)
        prefix = "";
    if (dp_mkdirs(dir, errbuf) != 0)
        return -1;
    static const char *const base[5] = {"report.md", "report.json", "confusion.csv",
                                        "confusion.pdf", "confusion.png"};
    char title[512];
    const char *task = info && info->task ? info->task : NULL;
    const char *kind = info && info->model_kind ? info->model_kind : NULL;
    const char *level = info && info->level ? info->level : "packet";
    snprintf(title, sizeof title, "%s%s%s%s%s - %s level, %llu %s", task ? task : "",
             task ? " classification" : "Confusion matrix", kind ? " (" : "", kind ? kind : "",
             kind ? " model)" : "", level, (unsigned long long)e->n, unit_name(info));
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(prefix) + strlen(base[i]) + 1;
        char *name = malloc(n);
        char *path = name ? (snprintf(name, n, "%s%s", prefix, base[i]), dp_path_join(dir, name))
                          : NULL;
        free(name);
        if (!path)
            return dp_err(errbuf, "%s: out of memory", dir);
        int rc;
        switch (i) {
        case 0: rc = write_text(e, info, path, dp_eval_print_markdown, errbuf); break;
        case 1: rc = write_text(e, info, path, dp_eval_print_json, errbuf); break;
        case 2: rc = write_text(e, info, path, csv_printer, errbuf); break;
        case 3: rc = dp_eval_plot(e, path, "pdf", title, errbuf); break;
        default: rc = dp_eval_plot(e, path, "png", title, errbuf); break;
        }
        free(path);
        if (rc != 0)
            return -1;
    }
    return 0;
}
