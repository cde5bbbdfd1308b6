/* dp_packet: frame -> Deep Packet input vector (spec section 3).
 *
 * Hot path of the preprocessor: no allocation, no I/O, every read checked
 * against caplen, and only the tail of the vector that the packet does not
 * cover is zeroed. See docs/packet.md for the rules in prose.
 */
#include "packet/dp_packet.h"
#include "util/dp_util.h"

#include <string.h>

/* ---- byte helpers (callers have checked the bounds) ------------------------ */
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t rd32be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint32_t rd32le(const uint8_t *p)
{
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86DD
#define ETH_VLAN 0x8100
#define ETH_QINQ 0x88A8
#define ETH_QINQ_OLD 0x9100
#define ETH_PPPOE 0x8864

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_ACK 0x10

#define IPP_HOPOPTS 0
#define IPP_TCP 6
#define IPP_UDP 17
#define IPP_ROUTING 43
#define IPP_FRAGMENT 44
#define IPP_AH 51
#define IPP_DSTOPTS 60

int dp_linktype_supported(int linktype)
{
    return dp_linktype_find(linktype) != NULL;
}

const char *dp_verdict_name(dp_verdict v)
{
    switch (v) {
    case DP_KEEP: return "kept";
    case DP_SKIP_NOT_IP: return "not_ip";
    case DP_SKIP_LINKTYPE: return "linktype";
    case DP_SKIP_MALFORMED: return "malformed";
    case DP_SKIP_EMPTY_TCP: return "empty_tcp";
    case DP_SKIP_DNS: return "dns";
    default: return "unknown";
    }
}

/* IP version expected at the network layer: 4, 6, 0 = not IP, -1 = frame too
 * short for its link header. */
enum { L3_MALFORMED = -1, L3_NOT_IP = 0, L3_ANY = 1 };

static int ethertype_ver(uint16_t et)
{
    if (et == ETH_IPV4)
        return 4;
    if (et == ETH_IPV6)
        return 6;
    return L3_NOT_IP;
}

/* Walks VLAN tags (802.1Q, 802.1ad, old 0x9100) and PPPoE session headers
 * starting with ethertype `et` whose payload begins at *off. */
static int ether_payload(const uint8_t *pkt, size_t caplen, uint16_t et, size_t *off)
{
    size_t o = *off;
    while (et == ETH_VLAN || et == ETH_QINQ || et == ETH_QINQ_OLD) {
        if (caplen < o + 4)
            return L3_MALFORMED;
        et = rd16(pkt + o + 2);
        o += 4;
    }
    if (et == ETH_PPPOE) { /* 6-byte PPPoE session header + 2-byte PPP protocol */
        if (caplen < o + 8)
            return L3_MALFORMED;
        uint16_t ppp = rd16(pkt + o + 6);
        o += 8;
        *off = o;
        return ppp == 0x0021 ? 4 : ppp == 0x0057 ? 6 : L3_NOT_IP;
    }
    *off = o;
    return ethertype_ver(et);
}

/* BSD loopback address family to IP version. */
static int af_ver(uint32_t af)
{
    if (af == 2)
        return 4;
    /* AF_INET6: Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, macOS 30 */
    if (af == 10 || af == 24 || af == 28 || af == 30)
        return 6;
    return L3_NOT_IP;
}

/* Finds the network header. Returns the expected IP version (4 or 6), L3_ANY
 * for raw IP (version from the first nibble), L3_NOT_IP, L3_MALFORMED, or -2
 * for an unknown link type. */
static int link_layer(int linktype, const uint8_t *pkt, size_t caplen, size_t *off)
{
    const dp_linktype_row *lt = dp_linktype_find(linktype);
    if (!lt)
        return -2;
    switch (lt->kind) {
    case DP_LINK_ETHERNET:
        if (caplen < 14)
            return L3_MALFORMED;
        *off = 14;
        return ether_payload(pkt, caplen, rd16(pkt + 12), off);
    case DP_LINK_RAW:
        *off = 0;
        return L3_ANY;
    case DP_LINK_IPV4:
        *off = 0;
        return 4;
    case DP_LINK_IPV6:
        *off = 0;
        return 6;
    case DP_LINK_NULL: {
        if (caplen < 4)
            return L3_MALFORMED;
        *off = 4;
        /* host byte order of the capturing machine: accept either */
        uint32_t af = rd32le(pkt);
        if (af > 0xFFFF)
            af = rd32be(pkt);
        return af_ver(af);
    }
    case DP_LINK_LOOP:
        if (caplen < 4)
            return L3_MALFORMED;
        *off = 4;
        return af_ver(rd32be(pkt));
    case DP_LINK_SLL:
        /* packet type 2, ARPHRD 2, addr len 2, addr 8, protocol 2 */
        if (caplen < 16)
            return L3_MALFORMED;
        if (rd16(pkt + 2) == 824) /* ARPHRD_NETLINK: protocol is a netlink family */
            return L3_NOT_IP;
        *off = 16;
        return ether_payload(pkt, caplen, rd16(pkt + 14), off);
    case DP_LINK_SLL2:
        /* protocol 2, reserved 2, ifindex 4, ARPHRD 2, pkttype 1, addr len 1, addr 8 */
        if (caplen < 20)
            return L3_MALFORMED;
        if (rd16(pkt + 8) == 824)
            return L3_NOT_IP;
        *off = 20;
        return ether_payload(pkt, caplen, rd16(pkt + 0), off);
    default:
        return -2;
    }
}

/* The IP packet of a frame as the parse steps see it. */
typedef struct ip_view {
    const uint8_t *ip;
    size_t cap;    /* captured bytes of the IP packet (and any trailer) */
    int ver;       /* 4 or 6 */
    size_t ip_len; /* the IP length */
    size_t have;   /* bytes of the IP packet we actually have: trailers excluded */
    size_t hdr;    /* bytes of IP headers so far */
    uint8_t nh;    /* the next header's protocol */
    int frag;      /* a fragment other than the first */
} ip_view;

/* Strips the link layer and checks the IP version it announces. */
static dp_verdict locate_ip(int linktype, const uint8_t *pkt, size_t caplen, ip_view *v, dp_pkt_info *info)
{
    size_t off = 0;
    int want = link_layer(linktype, pkt, caplen, &off);
    if (want == -2)
        return DP_SKIP_LINKTYPE;
    if (want == L3_NOT_IP)
        return DP_SKIP_NOT_IP;
    if (want == L3_MALFORMED || off >= caplen)
        return DP_SKIP_MALFORMED;
    v->ip = pkt + off;
    v->cap = caplen - off;
    v->ver = v->ip[0] >> 4;
    if ((want == 4 || want == 6) ? v->ver != want : (v->ver != 4 && v->ver != 6))
        return DP_SKIP_MALFORMED;
    info->ip_off = (uint32_t)off;
    return DP_KEEP;
}

/* The fixed IPv4 or IPv6 header: lengths, protocol, addresses. */
static dp_verdict ip_fixed_header(ip_view *v, dp_pkt_info *info)
{
    const uint8_t *ip = v->ip;
    if (v->ver == 4) {
        if (v->cap < 20)
            return DP_SKIP_MALFORMED;
        v->hdr = (size_t)(ip[0] & 0x0f) * 4;
        if (v->hdr < 20 || v->hdr > v->cap)
            return DP_SKIP_MALFORMED;
        v->ip_len = rd16(ip + 2);
        if (v->ip_len == 0) /* segmentation offload: the captured bytes */
            v->ip_len = v->cap;
        else if (v->ip_len < v->hdr)
            return DP_SKIP_MALFORMED;
        v->nh = ip[9];
        v->frag = (rd16(ip + 6) & 0x1fff) != 0;
        memcpy(info->saddr, ip + 12, 4);
        memcpy(info->daddr, ip + 16, 4);
        info->ipver = 4;
    } else {
        if (v->cap < 40)
            return DP_SKIP_MALFORMED;
        v->hdr = 40;
        v->ip_len = rd16(ip + 4);
        /* 0: jumbogram or segmentation offload: the captured bytes */
        v->ip_len = v->ip_len ? v->ip_len + 40 : v->cap;
        v->nh = ip[6];
        v->frag = 0;
        memcpy(info->saddr, ip + 8, 16);
        memcpy(info->daddr, ip + 24, 16);
        info->ipver = 6;
    }
    v->have = v->ip_len < v->cap ? v->ip_len : v->cap;
    return DP_KEEP;
}

/* IPv6 extension headers (and AH in either version). Each one must be
 * captured and lie inside the IP length. */
static dp_verdict ip_ext_headers(ip_view *v)
{
    const uint8_t *ip = v->ip;
    while (!v->frag) {
        size_t elen, hdr = v->hdr;
        if (v->ver == 6 && (v->nh == IPP_HOPOPTS || v->nh == IPP_ROUTING || v->nh == IPP_DSTOPTS)) {
            if (hdr + 2 > v->have)
                return DP_SKIP_MALFORMED;
            elen = ((size_t)ip[hdr + 1] + 1) * 8;
        } else if (v->ver == 6 && v->nh == IPP_FRAGMENT) {
            if (hdr + 8 > v->have)
                return DP_SKIP_MALFORMED;
            elen = 8;
            v->frag = (rd16(ip + hdr + 2) & 0xfff8) != 0;
        } else if (v->nh == IPP_AH) {
            if (hdr + 2 > v->have)
                return DP_SKIP_MALFORMED;
            elen = ((size_t)ip[hdr + 1] + 2) * 4;
        } else {
            break;
        }
        if (hdr + elen > v->have)
            return DP_SKIP_MALFORMED;
        v->nh = ip[hdr];
        v->hdr = hdr + elen;
    }
    return DP_KEEP;
}

/* The TCP or UDP header: ports, flags, payload length; DNS and empty
 * SYN/ACK/FIN segments are skipped. */
static dp_verdict transport_header(const ip_view *v, dp_pkt_info *info)
{
    const size_t hdr = v->hdr;
    if (v->nh == IPP_TCP) {
        if (hdr + 20 > v->have)
            return DP_SKIP_MALFORMED;
        const uint8_t *t = v->ip + hdr;
        size_t thl = (size_t)(t[12] >> 4) * 4;
        if (thl < 20 || hdr + thl > v->have)
            return DP_SKIP_MALFORMED;
        info->sport = rd16(t);
        info->dport = rd16(t + 2);
        info->tcp_flags = t[13];
        info->payload_len = (uint32_t)(v->ip_len - hdr - thl);
        if (info->sport == 53 || info->dport == 53)
            return DP_SKIP_DNS;
        if (info->payload_len == 0 && (t[13] & (TCP_SYN | TCP_ACK | TCP_FIN)))
            return DP_SKIP_EMPTY_TCP;
    } else if (v->nh == IPP_UDP) {
        if (hdr + 8 > v->have)
            return DP_SKIP_MALFORMED;
        const uint8_t *u = v->ip + hdr;
        info->sport = rd16(u);
        info->dport = rd16(u + 2);
        info->payload_len = (uint32_t)(v->ip_len - hdr - 8);
        if (info->sport == 53 || info->dport == 53 || info->sport == 5353 || info->dport == 5353)
            return DP_SKIP_DNS;
    }
    return DP_KEEP;
}

dp_verdict dp_packet_parse(int linktype, const uint8_t *pkt, size_t caplen,
                           dp_pkt_info *info)
{
    memset(info, 0, sizeof *info);
    if (!pkt)
        caplen = 0;
    ip_view v;
    memset(&v, 0, sizeof v);
    dp_verdict r = locate_ip(linktype, pkt, caplen, &v, info);
    if (r == DP_KEEP)
        r = ip_fixed_header(&v, info);
    if (r == DP_KEEP)
        r = ip_ext_headers(&v);
    if (r != DP_KEEP)
        return r;
    info->proto = v.nh;
    info->ip_len = (uint32_t)v.ip_len;
    info->l4_off = (uint32_t)v.hdr;
    info->payload_len = (uint32_t)(v.ip_len - v.hdr);
    if (v.frag) { /* a later fragment: no transport header to read */
        info->fragment = 1;
        return DP_KEEP;
    }
    return transport_header(&v, info);
}

static inline size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

dp_verdict dp_packet_transform(int linktype, const uint8_t *pkt, size_t caplen,
                               uint8_t vec[DP_VEC_LEN], dp_pkt_info *info)
{
    dp_pkt_info local;
    if (!info)
        info = &local;
    dp_verdict v = dp_packet_parse(linktype, pkt, caplen, info);
    if (v != DP_KEEP)
        return v;

    const uint8_t *ip = pkt + info->ip_off;
    size_t have = min_sz(info->ip_len, caplen - info->ip_off);
    size_t n;
    if (info->proto == IPP_UDP && !info->fragment) {
        /* IP header + UDP header, 12 zero bytes, then the UDP payload */
        size_t h = info->l4_off + 8; /* <= have, checked by the parser */
        size_t a = min_sz(h, DP_VEC_LEN);
        memcpy(vec, ip, a);
        n = a;
        if (n < DP_VEC_LEN) {
            size_t z = min_sz(12, DP_VEC_LEN - n);
            memset(vec + n, 0, z);
            n += z;
            size_t b = min_sz(have - h, DP_VEC_LEN - n);
            memcpy(vec + n, ip + h, b);
            n += b;
        }
    } else {
        n = min_sz(have, DP_VEC_LEN);
        memcpy(vec, ip, n);
    }
    if (n < DP_VEC_LEN)
        memset(vec + n, 0, DP_VEC_LEN - n);
    /* mask the addresses (headers are at least 20 / 40 bytes, all captured) */
    if (info->ipver == 4)
        memset(vec + 12, 0, 8);
    else
        memset(vec + 8, 0, 32);
    return DP_KEEP;
}

static inline uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

uint64_t dp_flow_id(const dp_pkt_info *info, uint64_t salt)
{
    /* canonical order: the (address, port) end that compares lower first */
    const uint8_t *a = info->saddr, *b = info->daddr;
    uint16_t pa = info->sport, pb = info->dport;
    int c = memcmp(a, b, 16);
    if (c > 0 || (c == 0 && pa > pb)) {
        const uint8_t *t = a;
        a = b;
        b = t;
        uint16_t tp = pa;
        pa = pb;
        pb = tp;
    }
    uint64_t h = dp_mix64(salt ^ 0x9e3779b97f4a7c15ULL);
    h = dp_mix64(h ^ ((uint64_t)info->ipver << 48 | (uint64_t)info->proto << 32 |
                   (uint64_t)pa << 16 | pb));
    h = dp_mix64(h ^ ld64(a));
    h = dp_mix64(h ^ ld64(a + 8));
    h = dp_mix64(h ^ ld64(b));
    h = dp_mix64(h ^ ld64(b + 8));
    return h;
}
