/* dp_flowfeat: the per-packet features of the flow models (issue 10; the
 * layout shared by the flow NN and the GBT, docs/flow-features.md). Pure
 * functions over bytes: no I/O, no allocation; knows nothing of models.
 *
 * A flow row is the flow's first N kept packets, packet-major: N blocks of
 * F = 4 + 40 + K floats; blocks past the flow's last packet are all zero.
 * Per packet, from its 1500-byte vector AFTER the field mask:
 *   [0]        present, 1.0
 *   [1]        direction: +1 the way of the flow's first packet, else -1
 *   [2]        IP length / 1500 (dp_vec_layout.ip_len)
 *   [3]        log1p(1000 * seconds since the flow's previous packet) / 10
 *   [4..23]    IP header slot / 255: IPv4 bytes 0..19; IPv6 bytes 0..7 + 12 zeros
 *   [24..43]   transport slot / 255: TCP first 20 bytes; UDP 8 bytes + 12 zeros
 *   [44..44+K) the first K transport payload bytes / 255, zero-padded
 * A feature group left out of cfg.groups is zeroed ([0] is always set). */
#ifndef DP_FLOWFEAT_H
#define DP_FLOWFEAT_H

#include <stddef.h>
#include <stdint.h>

#include "packet/dp_packet.h"

#define DP_FLOW_MAX_PACKETS 64
#define DP_FLOW_MAX_PAYLOAD 1456
#define DP_FLOW_DEFAULT_PACKETS 10
#define DP_FLOW_DEFAULT_PAYLOAD 64
#define DP_FLOW_BASE_FEATURES 44 /* F without the payload bytes */

/* Feature groups (--features LIST). */
enum {
    DP_FEAT_SIZES = 1u << 0,   /* [1], [2] */
    DP_FEAT_TIME = 1u << 1,    /* [3] */
    DP_FEAT_HEADER = 1u << 2,  /* [4..43] */
    DP_FEAT_PAYLOAD = 1u << 3, /* [44..] */
    DP_FEAT_NGROUPS = 4
};
#define DP_FEAT_ALL ((1u << DP_FEAT_NGROUPS) - 1)

/* What the flow models see; stored in the model file. */
typedef struct dp_flowcfg {
    int npackets;      /* N, 1..DP_FLOW_MAX_PACKETS (10) */
    int payload_bytes; /* K, 0..DP_FLOW_MAX_PAYLOAD (64) */
    uint32_t mask;     /* dp_mask bits applied to each vector first */
    uint32_t groups;   /* DP_FEAT_* bits (all) */
} dp_flowcfg;

/* N 10, K 64, mask DP_MASK_DEFAULT, all groups. */
void dp_flowcfg_default(dp_flowcfg *c);
/* 0 if N, K, mask and groups are in range; else -1 + message naming the
 * offending value (prefixed by `what`, e.g. the model file's path). */
int dp_flowcfg_check(const dp_flowcfg *c, const char *what, char *errbuf);
/* F, the floats per packet block. */
static inline int dp_flowcfg_features(const dp_flowcfg *c)
{
    return DP_FLOW_BASE_FEATURES + c->payload_bytes;
}
/* N * F, the floats of a flow row. */
static inline int dp_flowcfg_row_len(const dp_flowcfg *c)
{
    return c->npackets * dp_flowcfg_features(c);
}

/* Parses "sizes,time,header,payload" (any subset, or "all") into groups;
 * -1 + message naming an unknown group and listing the valid ones. */
int dp_flowfeat_groups_parse(const char *list, uint32_t *groups, char *errbuf);
/* Canonical name: "all", or the groups in bit order joined by commas
 * ("none" for 0). buf of n >= 40 bytes holds any. Returns buf. */
char *dp_flowfeat_groups_name(uint32_t groups, char *buf, size_t n);

/* One packet's F floats into out[0..F): vec is the packet's unmasked
 * vector (copied and masked with cfg->mask here), dir +1/-1, dt the seconds
 * since the flow's previous packet (ignored when first; negative or NaN ->
 * 0, above DP_FLOWFEAT_MAX_DT -> that: a damaged meta.npy's infinite time
 * gives a finite feature). */
#define DP_FLOWFEAT_MAX_DT 1e9
void dp_flowfeat_packet(const dp_flowcfg *cfg, const uint8_t vec[DP_VEC_LEN], int dir, double dt, int first,
                        float *out);

/* Direction of a packet against the flow's first packet: +1 when its source
 * address (16 bytes) and source port equal the first packet's, else -1. */
int dp_flowfeat_direction(const uint8_t first_saddr[16], uint16_t first_sport, const uint8_t saddr[16],
                          uint16_t sport);

#endif
