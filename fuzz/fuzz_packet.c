/* libFuzzer target for dp_packet. The first input byte picks a link type
 * from the supported list (plus one unsupported value), the rest is the
 * frame. Checks the parser's invariants; any violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "packet/dp_packet.h"

static const int linktypes[] = {
    DP_LINKTYPE_NULL,      DP_LINKTYPE_ETHERNET,  DP_LINKTYPE_RAW_DLT, DP_LINKTYPE_RAW_DLT_OBSD,
    DP_LINKTYPE_RAW,       DP_LINKTYPE_LOOP,      DP_LINKTYPE_LINUX_SLL, DP_LINKTYPE_IPV4,
    DP_LINKTYPE_IPV6,      DP_LINKTYPE_LINUX_SLL2, 147 /* unsupported */
};
#define NLT (sizeof linktypes / sizeof linktypes[0])

#define ASSERT(c)                                                                  \
    do {                                                                           \
        if (!(c))                                                                  \
            abort();                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int lt = linktypes[data[0] % NLT];
    /* copy the frame so that ASan sees reads past caplen */
    size_t caplen = size - 1;
    uint8_t *frame = malloc(caplen ? caplen : 1);
    if (!frame)
        return 0;
    memcpy(frame, data + 1, caplen);

    uint8_t vec[DP_VEC_LEN];
    dp_pkt_info info, info2;
    memset(vec, 0xA5, sizeof vec);
    dp_verdict v = dp_packet_transform(lt, frame, caplen, vec, &info);
    ASSERT((int)v >= 0 && v < DP_VERDICT_COUNT);
    ASSERT(dp_packet_parse(lt, frame, caplen, &info2) == v);
    ASSERT(memcmp(&info, &info2, sizeof info) == 0);
    ASSERT(dp_verdict_name(v) != NULL);
    if (!dp_linktype_supported(lt))
        ASSERT(v == DP_SKIP_LINKTYPE);

    if (v == DP_KEEP) {
        ASSERT(info.ipver == 4 || info.ipver == 6);
        ASSERT(info.ip_off < caplen);
        ASSERT(info.l4_off <= info.ip_len);
        ASSERT(info.payload_len <= info.ip_len);
        /* addresses zeroed */
        size_t a = info.ipver == 4 ? 12 : 8, b = info.ipver == 4 ? 20 : 40;
        for (size_t i = a; i < b; i++)
            ASSERT(vec[i] == 0);
        /* first byte is the IP version nibble as captured */
        ASSERT((vec[0] >> 4) == info.ipver);
        /* the IP header bytes outside the addresses are copied as captured */
        for (size_t i = 0; i < a; i++)
            ASSERT(vec[i] == frame[info.ip_off + i]);
        /* bytes past the captured IP packet (+12 for UDP) are zero */
        size_t have = caplen - info.ip_off;
        if (have > info.ip_len)
            have = info.ip_len;
        int udp = info.proto == 17 && !info.fragment;
        size_t end = have + (udp ? 12 : 0);
        for (size_t i = end; i < DP_VEC_LEN; i++)
            ASSERT(vec[i] == 0);
        if (udp) {
            ASSERT(info.l4_off + 8 <= have);
            for (size_t i = info.l4_off + 8; i < info.l4_off + 20 && i < DP_VEC_LEN; i++)
                ASSERT(vec[i] == 0);
        }
        if (info.proto == 6 && !info.fragment)
            ASSERT(info.payload_len > 0 || !(info.tcp_flags & 0x13));
        if ((info.proto == 6 || info.proto == 17) && !info.fragment)
            ASSERT(info.sport != 53 && info.dport != 53);
        /* a transform without info gives the same vector */
        uint8_t vec2[DP_VEC_LEN];
        ASSERT(dp_packet_transform(lt, frame, caplen, vec2, NULL) == DP_KEEP);
        ASSERT(memcmp(vec, vec2, DP_VEC_LEN) == 0);
    } else {
        /* skips leave the vector alone */
        for (size_t i = 0; i < DP_VEC_LEN; i++)
            ASSERT(vec[i] == 0xA5);
    }

    /* flow id: symmetric under swapping the ends */
    if (info.ipver) {
        dp_pkt_info r = info;
        memcpy(r.saddr, info.daddr, 16);
        memcpy(r.daddr, info.saddr, 16);
        r.sport = info.dport;
        r.dport = info.sport;
        ASSERT(dp_flow_id(&info, 42) == dp_flow_id(&r, 42));
    }
    free(frame);
    return 0;
}
