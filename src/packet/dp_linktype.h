/* dp_linktype: the one table of link types the packet parser understands.
 *
 * A link type here is the parser's number for it: the number of the
 * pcap/pcapng LINKTYPE_* registry, which is what files hold. libpcap hands
 * out DLT_* values instead, equal to LINKTYPE_* except for raw IP (DLT_RAW
 * is 12 on Linux, 14 on OpenBSD; LINKTYPE_RAW is 101). Each row says the
 * link type, the DLT value libpcap uses for it (Linux numbering) and how
 * the parser finds the network header behind it; dp_packet.c reads the
 * row's kind, dp_capture.c converts DLT values through the table, and
 * dp_capture_linktype_name names any value through libpcap. Pure data: no
 * libpcap here.
 */
#ifndef DP_LINKTYPE_H
#define DP_LINKTYPE_H

enum {
    DP_LINKTYPE_NULL = 0,       /* BSD loopback, host-endian 4-byte family */
    DP_LINKTYPE_ETHERNET = 1,   /* Ethernet II, 802.1Q / 802.1ad tags */
    DP_LINKTYPE_RAW_DLT = 12,   /* DLT_RAW on most systems */
    DP_LINKTYPE_RAW_DLT_OBSD = 14,
    DP_LINKTYPE_RAW = 101,      /* LINKTYPE_RAW in files */
    DP_LINKTYPE_LOOP = 108,     /* OpenBSD loopback, network-endian family */
    DP_LINKTYPE_LINUX_SLL = 113,
    DP_LINKTYPE_IPV4 = 228,
    DP_LINKTYPE_IPV6 = 229,
    DP_LINKTYPE_LINUX_SLL2 = 276,
};

/* What is in front of the IP header. */
typedef enum dp_link_kind {
    DP_LINK_NULL,       /* 4-byte address family, either byte order */
    DP_LINK_LOOP,       /* 4-byte address family, network byte order */
    DP_LINK_ETHERNET,   /* 14-byte Ethernet header, VLAN tags */
    DP_LINK_RAW,        /* nothing: IPv4 or IPv6 by the first nibble */
    DP_LINK_IPV4,       /* nothing: IPv4 */
    DP_LINK_IPV6,       /* nothing: IPv6 */
    DP_LINK_SLL,        /* Linux cooked v1, 16 bytes */
    DP_LINK_SLL2,       /* Linux cooked v2, 20 bytes */
} dp_link_kind;

typedef struct dp_linktype_row {
    int linktype;       /* DP_LINKTYPE_* */
    int dlt;            /* libpcap's DLT_* value for it (Linux) */
    dp_link_kind kind;
} dp_linktype_row;

/* The row of a link type, or NULL when the parser does not support it. */
const dp_linktype_row *dp_linktype_find(int linktype);
/* The link type of a libpcap DLT_* value (DLT_RAW becomes LINKTYPE_RAW);
 * a value the table does not know is returned as it is. */
int dp_linktype_from_dlt(int dlt);
/* libpcap's DLT_* value for a link type (every raw IP number becomes
 * DLT_RAW); a value the table does not know is returned as it is. */
int dp_linktype_to_dlt(int linktype);

#endif
