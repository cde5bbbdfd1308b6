/* dp_pp_report: preprocess's dataset reports (files.tsv, labels.tsv,
 * summary.md, summary.json) and the totals they hold. Internal to
 * src/dataset. */
#ifndef DP_PP_REPORT_H
#define DP_PP_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "dataset/dp_pp_run.h"

/* The dataset's fingerprint: the format, the label table's text, the
 * filter (when there is one), the shard, and every listed file's relative
 * path, size and mtime (summary.json's "fingerprint"; a dataset whose
 * fingerprint matches is up to date). */
uint64_t dp_pp_fingerprint(const run *r);

/* Frames of cf that the filter left out: those neither kept nor skipped
 * by the transform (cf->frames counts them). */
uint64_t dp_pp_filtered(const capfile *cf);

/* Adds up the captures' counts into r->st (frames, packets, skips,
 * captures with a warning, packets per class). */
void dp_pp_totals(run *r);

/* Writes files.tsv, labels.tsv, summary.md and summary.json (last: it
 * marks the dataset complete), each atomically. */
int dp_pp_write_reports(run *r, char *errbuf);

/* Prints the readable summary to f: summary.md without the per-file table,
 * listing only the captures with a warning. */
void dp_pp_print_report(const run *r, FILE *f);

/* Prints what a run would read (preprocess --dry-run): a markdown table of
 * the probed captures with their classes and filters, then the counts. */
void dp_pp_print_listing(const run *r, FILE *f);

#endif
