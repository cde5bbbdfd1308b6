/* dp_labels: the file-name-to-class tables (spec section 2).
 *
 * A table is TSV with the header `prefix app_id app_name traffic_id
 * traffic_name`, optionally followed by a sixth column `filter`; empty
 * cells mean "no label for that task". A capture's prefix is its file name
 * (no directory) up to the first dot, lower-cased. A row's filter is a BPF
 * expression (pcap-filter syntax, checked by preprocess, not here): the
 * frames of its captures that it rejects are left out, so that each capture
 * keeps the traffic its label names (ISCX labels every flow of a capture
 * with the capture's activity, background included).
 */
#ifndef DP_LABELS_H
#define DP_LABELS_H

#include <stddef.h>

#include "util/dp_task.h"

typedef struct dp_label_row {
    char *prefix;
    int cls[DP_NTASKS]; /* -1: no label for that task */
    char *filter;       /* the row's BPF filter; NULL when the cell is empty */
} dp_label_row;

typedef struct dp_labels {
    dp_label_row *rows;
    size_t nrows;
    int nclasses[DP_NTASKS];                  /* max id + 1 per task */
    char *names[DP_NTASKS][DP_MAX_CLASSES];   /* NULL for unused ids */
    int nfilters;                             /* rows with a filter */
    const dp_label_row **byprefix;            /* the rows in prefix order (dp_labels_find) */
} dp_labels;

/* Parses a table from text; `source` names it in error messages. Rejects
 * a wrong header, bad ids, an id with two names, duplicate prefixes, a
 * filter cell in a table without the filter column. In a table with it, a
 * row may leave the sixth field out. */
int dp_labels_parse(dp_labels *t, const char *text, const char *source, char *errbuf);
/* Reads a table's text from a file: malloc'd, or NULL with a message (a
 * file that cannot be read, or holds a NUL byte: the line is named). */
char *dp_labels_read(const char *path, char *errbuf);
/* Loads a table from a file (dp_labels_read, then dp_labels_parse). */
int dp_labels_load(dp_labels *t, const char *path, char *errbuf);
/* Loads the ISCX VPN-nonVPN table built into the program
 * (data/iscx-labels.tsv). */
int dp_labels_load_iscx(dp_labels *t, char *errbuf);
void dp_labels_free(dp_labels *t);

/* Writes the file-name prefix of path (basename up to the first dot,
 * lower-cased) into out (cap bytes). */
void dp_labels_prefix(const char *path, char *out, size_t cap);
/* Looks up a capture path; fills cls[task] (-1 where none). Returns 1 when
 * the prefix is in the table, 0 otherwise (both set to -1). */
int dp_labels_lookup(const dp_labels *t, const char *path, int cls[DP_NTASKS]);
/* The row of path's prefix (its classes and filter), or NULL when the
 * prefix is not in the table (never for want of memory: it allocates
 * nothing). A binary search: O(log rows) per capture. */
const dp_label_row *dp_labels_find(const dp_labels *t, const char *path);

#endif
