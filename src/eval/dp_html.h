/* dp_html: the test report as one small HTML page, REPORT_DIR/report.html,
 * written by `deeppacket test` beside the other report files.
 *
 * Self-contained: no script, no style sheet or font from elsewhere, no
 * network; the figures are the report folder's own PNG files, linked by
 * relative name (confusion.png, flow_confusion.png), so the folder moves
 * as a whole. Per level (packet, then flow; a flow model has only the flow
 * level), a section with id "packet-level" / "flow-level": what was tested
 * (model, kind, task, test set, counts), the scores (accuracy, weighted and
 * macro F1, VPN vs non-VPN accuracy, without duplicate sequences, label
 * conflicts), the per-class table (class "scores": label, recall,
 * precision, f1-score, support for the listed classes, then the macro and
 * weighted averages; four decimals as in report.md), the verdicts by
 * probability (class "coverage", dp_coverage.h), the confusion figure with links to its
 * PDF and CSV, and the confusion counts (class "confusion", listed classes).
 * Every string from outside (class names, paths) goes through dp_html_str.
 */
#ifndef DP_HTML_H
#define DP_HTML_H

#include "eval/dp_eval.h"

typedef struct dp_html_level {
    const char *prefix;          /* the level's file prefix: "" (packet) or "flow_" */
    const dp_eval *eval;         /* finished */
    const dp_report_info *info;  /* level, task, model, ... (may be NULL) */
} dp_html_level;

/* Writes DIR/report.html atomically for nlevels (1 or 2) levels. 0, or -1
 * + message naming the file. */
int dp_html_write(const char *dir, const dp_html_level *lv, int nlevels, char *errbuf);

#endif
