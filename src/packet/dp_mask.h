/* dp_mask: field masks over a Deep Packet vector (issue 10, "no shortcuts"),
 * and the layout of the headers inside a vector. Pure functions over bytes:
 * the vector's 1500 bytes can be anything, every read is bounds-checked
 * against DP_VEC_LEN (fuzzed: fuzz/fuzz_mask.c).
 *
 * A mask zeroes header fields that identify a capture or a host rather than
 * an application (ports, IP ids, TTLs, checksums, TCP sequence numbers and
 * timestamps), in the vector itself, before any model sees it: training,
 * test, classify and the C API apply the model's stored mask identically.
 */
#ifndef DP_MASK_H
#define DP_MASK_H

#include <stddef.h>
#include <stdint.h>

#include "packet/dp_packet.h"

/* Mask bits, in the order of their names. */
enum {
    DP_MASK_PORTS = 1u << 0,    /* TCP/UDP source and destination ports */
    DP_MASK_IPID = 1u << 1,     /* IPv4 identification; IPv6 flow label */
    DP_MASK_TTL = 1u << 2,      /* IPv4 TTL; IPv6 hop limit */
    DP_MASK_CHECKSUM = 1u << 3, /* IPv4 header, TCP and UDP checksums */
    DP_MASK_SEQ = 1u << 4,      /* TCP sequence and acknowledgement numbers */
    DP_MASK_TCPTS = 1u << 5,    /* the TCP timestamp option's two values */
    DP_MASK_WINDOW = 1u << 6,   /* TCP window */
    DP_MASK_NFIELDS = 7
};
#define DP_MASK_ALL ((1u << DP_MASK_NFIELDS) - 1)
#define DP_MASK_DEFAULT \
    (DP_MASK_PORTS | DP_MASK_IPID | DP_MASK_TTL | DP_MASK_CHECKSUM | DP_MASK_SEQ | DP_MASK_TCPTS)

/* Parses a comma-separated list of field names ("ports,ttl"), or one of
 * "none", "all", "default" (which may also appear inside a list) into *mask.
 * Returns 0, or -1 + message naming the unknown field and listing the valid
 * ones (an empty list or an empty item is an error too). */
int dp_mask_parse(const char *list, uint32_t *mask, char *errbuf);

/* Writes the mask's canonical name to buf (size n >= 64 holds any mask):
 * "none", or the field names in bit order joined by commas. Bits outside
 * DP_MASK_ALL are ignored. Returns buf. */
char *dp_mask_name(uint32_t mask, char *buf, size_t n);

/* Where the headers lie in a vector, as far as its bytes say (offsets into
 * the vector; every offset reported is < DP_VEC_LEN or -1). */
typedef struct dp_vec_layout {
    int ipver;       /* 4 or 6 (first nibble); 0: neither, nothing else set */
    int ip_hlen;     /* IPv4: IHL*4 (20..60); IPv6: 40 */
    int proto;       /* transport protocol after IPv6/AH extension headers */
    int l4_off;      /* TCP/UDP header (first fragment or unfragmented) or -1 */
    int l4_hlen;     /* TCP: data offset*4; UDP: 20 (padded); 0 without l4 */
    int payload_off; /* first transport payload byte (after the padded UDP
                      * header / TCP options; other protocols and non-first
                      * fragments: after the IP and extension headers);
                      * may be >= DP_VEC_LEN when the headers fill the vector */
    uint32_t ip_len; /* IPv4 total length; IPv6 payload length + 40; if 0,
                      * the vector's bytes up to its last non-zero byte */
} dp_vec_layout;

/* Fills *lay from a vector (never fails: unknown layouts give ipver 0 or
 * l4_off -1). */
void dp_vec_layout_get(const uint8_t vec[DP_VEC_LEN], dp_vec_layout *lay);

/* Zeroes the fields of `mask` in the vector, in place; nothing else is
 * touched. mask 0 leaves the vector unchanged. */
void dp_mask_apply(uint32_t mask, uint8_t vec[DP_VEC_LEN]);

#endif
