/* dp_seqdup: duplicate flow sequences between a training and a test set.
 *
 * A flow's sequence is its first N packets (in row order, which is capture
 * order) as (size, direction) pairs: size = the IP length from the vector's
 * IP header (IPv4 total length; IPv6 payload length + 40; 0 when the vector
 * holds no IP header), direction = 1 when the packet goes the way of the
 * flow's first packet (same IP version, source address and source port in
 * meta), else 0. A flow with fewer than N packets has a shorter sequence;
 * sequences are equal when their lengths and every pair are. Flows are told
 * apart by meta.flow.
 *
 * A test flow is a duplicate when its sequence occurs, identically, as the
 * sequence of some training flow: such flows inflate test scores (the model
 * may have memorised the very sequence), so `deeppacket test --train-set`
 * also reports the scores without them.
 *
 * Pure functions over rows; memory: about (24 + 4 N) bytes per flow.
 */
#ifndef DP_SEQDUP_H
#define DP_SEQDUP_H

#include <stdint.h>

#include "dataset/dp_dataset.h"

#define DP_SEQ_DEFAULT_PACKETS 10
#define DP_SEQ_MAX_PACKETS 1000

/* The IP length recorded in a packet vector's IP header (see above). */
uint32_t dp_seq_ip_length(const uint8_t *vec);
/* 1 when packet m goes the way of its flow's first packet `first`, else 0. */
int dp_seq_direction(const dp_meta *first, const dp_meta *m);

typedef struct dp_seqtab dp_seqtab;

/* An empty table of flow sequences of at most npackets (1..DP_SEQ_MAX_PACKETS)
 * packets; NULL + message on bad input or no memory. */
dp_seqtab *dp_seqtab_new(int npackets, char *errbuf);
void dp_seqtab_free(dp_seqtab *t);
/* Adds one row (rows of a flow in capture order): it extends its flow's
 * sequence while that is shorter than npackets. Not after dp_seqtab_mark.
 * 0, or -1 + message (no memory). */
int dp_seqtab_add(dp_seqtab *t, const dp_meta *m, const uint8_t *vec, char *errbuf);
/* Adds every row of a set (which needs meta.npy: -1 + message naming dir
 * otherwise). */
int dp_seqtab_add_set(dp_seqtab *t, const dp_splitset *s, const char *dir, char *errbuf);
uint64_t dp_seqtab_flows(const dp_seqtab *t);
/* Marks every flow of test whose sequence occurs in train (same npackets)
 * and returns how many were marked, or -1 + message (no memory, or the two
 * tables count different npackets). Both tables are complete by now. */
int64_t dp_seqtab_mark(dp_seqtab *test, dp_seqtab *train, char *errbuf);
/* After dp_seqtab_mark: 1 when flow `flow` of test is a duplicate, 0 when it
 * is not or is unknown. */
int dp_seqtab_is_dup(const dp_seqtab *test, uint64_t flow);

#endif
