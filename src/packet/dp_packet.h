/* dp_packet: parse a captured frame and turn it into the Deep Packet input
 * vector (spec section 3). Pure functions over bytes: no I/O, no allocation,
 * no global state, safe on any input (fuzzed).
 */
#ifndef DP_PACKET_H
#define DP_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "packet/dp_linktype.h"

#define DP_VEC_LEN 1500

/* Returns 1 if the link type is one the parser understands. */
int dp_linktype_supported(int linktype);

/* What became of a packet. DP_KEEP means a vector was produced; every other
 * value is a counted skip reason (nDPI style: never an abort). */
typedef enum dp_verdict {
    DP_KEEP = 0,
    DP_SKIP_NOT_IP,        /* ARP, LLC, unknown ethertype, ... */
    DP_SKIP_LINKTYPE,      /* link type the parser does not know */
    DP_SKIP_MALFORMED,     /* headers truncated or inconsistent */
    DP_SKIP_EMPTY_TCP,     /* TCP, no payload, SYN/ACK/FIN set */
    DP_SKIP_DNS,           /* port 53 (UDP or TCP) or mDNS (UDP 5353) */
    DP_VERDICT_COUNT
} dp_verdict;

/* Short stable name of a verdict ("kept", "not_ip", ...). */
const char *dp_verdict_name(dp_verdict v);

/* What the parser found in a frame. Addresses are the real ones (the vector
 * masks them, this does not). */
typedef struct dp_pkt_info {
    uint8_t ipver;        /* 4 or 6; 0 if no IP header was found */
    uint8_t proto;        /* transport protocol (after IPv6 ext headers) */
    uint8_t tcp_flags;    /* TCP flags byte (0 if not TCP) */
    uint8_t fragment;     /* 1 for a non-first fragment (no transport header) */
    uint16_t sport, dport;/* 0 when there is no transport header */
    uint8_t saddr[16];    /* IPv4 in the first 4 bytes, rest zero */
    uint8_t daddr[16];
    uint32_t ip_off;      /* offset of the IP header in the frame */
    uint32_t ip_len;      /* IP packet length per its header (TSO 0 -> captured) */
    uint32_t l4_off;      /* offset of the transport header in the IP packet */
    uint32_t payload_len; /* transport payload length from the IP length fields */
} dp_pkt_info;

/* Parses a frame of `caplen` captured bytes with the given link type.
 * Fills *info (always initialised) and returns DP_KEEP when the frame holds
 * an IPv4/IPv6 packet that the drop rules keep, or the skip reason.
 * Reads at most caplen bytes of pkt. */
dp_verdict dp_packet_parse(int linktype, const uint8_t *pkt, size_t caplen,
                           dp_pkt_info *info);

/* Parses a frame and, when it is kept, writes its DP_VEC_LEN-byte vector
 * (IP header first, UDP header padded to 20 bytes, addresses zeroed, cut or
 * zero-padded to 1500 bytes) to vec. Returns the verdict; vec is written only
 * for DP_KEEP. info may be NULL. */
dp_verdict dp_packet_transform(int linktype, const uint8_t *pkt, size_t caplen,
                               uint8_t vec[DP_VEC_LEN], dp_pkt_info *info);

/* 64-bit id of the bidirectional flow (same for both directions): protocol,
 * both addresses and ports in canonical order, mixed with `salt` (e.g. a hash
 * of the capture's name, so that equal 5-tuples in two captures differ). */
uint64_t dp_flow_id(const dp_pkt_info *info, uint64_t salt);

#endif
