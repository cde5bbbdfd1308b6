/* dp_pp_summary: reading a dataset's summary.json back (is the dataset up
 * to date?) with a small strict JSON reader. Internal to src/dataset. */
#ifndef DP_PP_SUMMARY_H
#define DP_PP_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

/* The top-level members of summary.json that a rerun needs. */
typedef struct dp_pp_summary {
    char fingerprint[17];   /* "" when absent */
    uint64_t packets, frames, captures, unreadable; /* 0 when absent */
} dp_pp_summary;

/* Parses text (len bytes): 0 and *s filled when it is exactly one JSON
 * object (RFC 8259 grammar: strings without raw control characters and
 * with valid escapes, numbers as the grammar spells them, nesting at most
 * 64 deep, nothing but white space after it) whose top-level
 * "fingerprint", if present, is a string of at most 16 characters and
 * whose top-level "packets", "frames", "captures" and "unreadable", if
 * present, are integers from 0 to 2^64-1. The first of duplicate members
 * counts. -1 otherwise. */
int dp_pp_summary_parse(const char *text, size_t len, dp_pp_summary *s);

/* dp_pp_summary_parse of DIR/summary.json; -1 also when it cannot be read. */
int dp_pp_summary_read(const char *dir, dp_pp_summary *s);

#endif
