/* Tests for dp_mask: list parsing and naming, the vector layout, and each
 * field zeroed (and nothing else touched) on hand-built IPv4/IPv6 TCP/UDP
 * vectors. */
#include <stdint.h>
#include <string.h>

#include "dp_test.h"
#include "packet/dp_mask.h"
#include "util/dp_util.h"

/* Fills every byte of v with a non-zero pattern, then writes the headers. */
static void fill(uint8_t *v)
{
    for (int i = 0; i < DP_VEC_LEN; i++)
        v[i] = (uint8_t)(0x80 | (i * 7));
}

/* IPv4 (IHL 5) + TCP with data offset 8 (12 option bytes: NOP NOP TS). */
static void v4_tcp(uint8_t *v)
{
    fill(v);
    v[0] = 0x45;
    v[2] = 0x01, v[3] = 0x00;  /* total length 256 */
    v[6] = 0x40, v[7] = 0x00;  /* DF, offset 0 */
    v[9] = 6;
    v[20 + 12] = 8 << 4;       /* data offset 8 */
    v[40] = 1, v[41] = 1, v[42] = 8, v[43] = 10; /* NOP NOP TS(10) */
}

/* IPv6 with one 8-byte destination-options header, then UDP. */
static void v6_udp(uint8_t *v)
{
    fill(v);
    v[0] = 0x6A;                /* version 6, traffic class high nibble */
    v[4] = 0x00, v[5] = 0x30;   /* payload length 48 */
    v[6] = 60;                  /* dest options */
    v[40] = 17, v[41] = 0;      /* next UDP, 8 bytes */
    for (int i = 48 + 8; i < 48 + 20; i++)
        v[i] = 0;               /* UDP padding */
}

/* Checks that `got` differs from `orig` exactly on [a, b) ranges given as
 * pairs, which must be zero. */
static int only_zeroed(const uint8_t *orig, const uint8_t *got, const int *ranges, int nr)
{
    for (int i = 0; i < DP_VEC_LEN; i++) {
        int in = 0;
        for (int r = 0; r < nr; r++)
            if (i >= ranges[2 * r] && i < ranges[2 * r + 1])
                in = 1;
        if (in && got[i] != 0) {
            fprintf(stderr, "  byte %d = %d, expected 0\n", i, got[i]);
            return 0;
        }
        if (!in && got[i] != orig[i]) {
            fprintf(stderr, "  byte %d changed %d -> %d\n", i, orig[i], got[i]);
            return 0;
        }
    }
    return 1;
}

static int masked_ok(void (*build)(uint8_t *), uint32_t mask, const int *ranges, int nr)
{
    uint8_t a[DP_VEC_LEN], b[DP_VEC_LEN];
    build(a);
    memcpy(b, a, sizeof a);
    dp_mask_apply(mask, b);
    return only_zeroed(a, b, ranges, nr);
}

static void test_parse_and_name(void)
{
    char err[DP_ERRBUF_SIZE], name[128];
    uint32_t m = 99;
    CHECK_EQ_INT(dp_mask_parse("none", &m, err), 0);
    CHECK_EQ_INT(m, 0);
    CHECK_EQ_INT(dp_mask_parse("all", &m, err), 0);
    CHECK_EQ_INT(m, DP_MASK_ALL);
    CHECK_EQ_INT(dp_mask_parse("default", &m, err), 0);
    CHECK_EQ_INT(m, DP_MASK_DEFAULT);
    CHECK(!(m & DP_MASK_WINDOW));
    CHECK_EQ_INT(dp_mask_parse("ttl,ports", &m, err), 0);
    CHECK_EQ_INT(m, DP_MASK_TTL | DP_MASK_PORTS);
    CHECK(strcmp(dp_mask_name(m, name, sizeof name), "ports,ttl") == 0);
    CHECK(strcmp(dp_mask_name(0, name, sizeof name), "none") == 0);
    CHECK(strcmp(dp_mask_name(DP_MASK_ALL, name, sizeof name),
                 "ports,ipid,ttl,checksum,seq,tcpts,window") == 0);
    CHECK_EQ_INT(dp_mask_parse("default,window", &m, err), 0);
    CHECK_EQ_INT(m, DP_MASK_DEFAULT | DP_MASK_WINDOW);
    /* every name round-trips */
    for (uint32_t x = 0; x <= DP_MASK_ALL; x++) {
        uint32_t y = 12345;
        CHECK_EQ_INT(dp_mask_parse(dp_mask_name(x, name, sizeof name), &y, err), 0);
        CHECK_EQ_INT(y, x);
    }
    m = 77;
    CHECK_EQ_INT(dp_mask_parse("ports,tll", &m, err), -1);
    CHECK_STR_CONTAINS(err, "unknown field 'tll'");
    CHECK_STR_CONTAINS(err, "ports, ipid, ttl, checksum, seq, tcpts, window");
    CHECK_EQ_INT(m, 77);
    CHECK_EQ_INT(dp_mask_parse("", &m, err), -1);
    CHECK_STR_CONTAINS(err, "empty");
    CHECK_EQ_INT(dp_mask_parse("ports,,ttl", &m, err), -1);
    CHECK_STR_CONTAINS(err, "empty field name");
    CHECK_EQ_INT(dp_mask_parse("Ports", &m, err), -1);
}

static void test_layout(void)
{
    uint8_t v[DP_VEC_LEN];
    dp_vec_layout lay;
    v4_tcp(v);
    dp_vec_layout_get(v, &lay);
    CHECK_EQ_INT(lay.ipver, 4);
    CHECK_EQ_INT(lay.proto, 6);
    CHECK_EQ_INT(lay.l4_off, 20);
    CHECK_EQ_INT(lay.l4_hlen, 32);
    CHECK_EQ_INT(lay.payload_off, 52);
    CHECK_EQ_INT(lay.ip_len, 256);
    v6_udp(v);
    dp_vec_layout_get(v, &lay);
    CHECK_EQ_INT(lay.ipver, 6);
    CHECK_EQ_INT(lay.proto, 17);
    CHECK_EQ_INT(lay.l4_off, 48);
    CHECK_EQ_INT(lay.payload_off, 68);
    CHECK_EQ_INT(lay.ip_len, 88);
    /* non-first IPv4 fragment: no transport header */
    v4_tcp(v);
    v[6] = 0x00, v[7] = 0x10;
    dp_vec_layout_get(v, &lay);
    CHECK_EQ_INT(lay.l4_off, -1);
    CHECK_EQ_INT(lay.payload_off, 20);
    /* IPv4 total length 0 (offload): up to the last non-zero byte */
    v4_tcp(v);
    v[2] = v[3] = 0;
    memset(v + 300, 0, DP_VEC_LEN - 300);
    v[299] = 1;
    dp_vec_layout_get(v, &lay);
    CHECK_EQ_INT(lay.ip_len, 300);
    /* not IP */
    memset(v, 0, sizeof v);
    dp_vec_layout_get(v, &lay);
    CHECK_EQ_INT(lay.ipver, 0);
    CHECK_EQ_INT(lay.l4_off, -1);
}

static void test_v4_tcp_fields(void)
{
    CHECK(masked_ok(v4_tcp, DP_MASK_PORTS, (int[]){20, 24}, 1));
    CHECK(masked_ok(v4_tcp, DP_MASK_IPID, (int[]){4, 6}, 1));
    CHECK(masked_ok(v4_tcp, DP_MASK_TTL, (int[]){8, 9}, 1));
    CHECK(masked_ok(v4_tcp, DP_MASK_CHECKSUM, (int[]){10, 12, 36, 38}, 2));
    CHECK(masked_ok(v4_tcp, DP_MASK_SEQ, (int[]){24, 32}, 1));
    CHECK(masked_ok(v4_tcp, DP_MASK_WINDOW, (int[]){34, 36}, 1));
    CHECK(masked_ok(v4_tcp, DP_MASK_TCPTS, (int[]){44, 52}, 1));
    CHECK(masked_ok(v4_tcp, 0, NULL, 0));
}

static void test_v6_udp_fields(void)
{
    uint8_t a[DP_VEC_LEN], b[DP_VEC_LEN];
    CHECK(masked_ok(v6_udp, DP_MASK_PORTS, (int[]){48, 52}, 1));
    CHECK(masked_ok(v6_udp, DP_MASK_TTL, (int[]){7, 8}, 1));
    CHECK(masked_ok(v6_udp, DP_MASK_CHECKSUM, (int[]){54, 56}, 1));
    /* TCP-only fields leave a UDP vector alone */
    CHECK(masked_ok(v6_udp, DP_MASK_SEQ | DP_MASK_WINDOW | DP_MASK_TCPTS, NULL, 0));
    /* flow label: the low nibble of byte 1 and bytes 2..3; traffic class kept */
    v6_udp(a);
    memcpy(b, a, sizeof a);
    dp_mask_apply(DP_MASK_IPID, b);
    CHECK_EQ_INT(b[0], a[0]);
    CHECK_EQ_INT(b[1], a[1] & 0xF0);
    CHECK_EQ_INT(b[2], 0);
    CHECK_EQ_INT(b[3], 0);
    CHECK(memcmp(a + 4, b + 4, DP_VEC_LEN - 4) == 0);
}

static void test_tcp_options_walk(void)
{
    uint8_t a[DP_VEC_LEN], b[DP_VEC_LEN];
    /* timestamp after MSS(4) and SACK-permitted(2) in a 60-byte header */
    v4_tcp(a);
    a[32] = 15 << 4;
    uint8_t opts[] = {2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 0};
    memcpy(a + 40, opts, sizeof opts);
    memcpy(b, a, sizeof a);
    dp_mask_apply(DP_MASK_TCPTS, b);
    CHECK(only_zeroed(a, b, (int[]){48, 56}, 1));
    /* an option whose length runs past the header: walk stops, nothing zeroed */
    v4_tcp(a);
    a[42] = 8, a[43] = 40;
    memcpy(b, a, sizeof a);
    dp_mask_apply(DP_MASK_TCPTS, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* a zero-length option must not loop forever */
    v4_tcp(a);
    a[42] = 3, a[43] = 0;
    memcpy(b, a, sizeof a);
    dp_mask_apply(DP_MASK_TCPTS, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* end-of-options before the timestamp */
    v4_tcp(a);
    a[40] = 0;
    memcpy(b, a, sizeof a);
    dp_mask_apply(DP_MASK_TCPTS, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
}

static void test_fragment_and_edges(void)
{
    uint8_t a[DP_VEC_LEN], b[DP_VEC_LEN];
    /* non-first fragment: only the IP fields */
    v4_tcp(a);
    a[7] = 0x20;
    memcpy(b, a, sizeof a);
    dp_mask_apply(DP_MASK_ALL, b);
    CHECK(only_zeroed(a, b, (int[]){4, 6, 8, 9, 10, 12}, 3));
    /* extension headers that run off the vector: IP fields only, no crash */
    v6_udp(a);
    a[41] = 255;
    a[40] = 60;
    memcpy(b, a, sizeof a);
    dp_mask_apply(DP_MASK_PORTS | DP_MASK_TTL, b);
    CHECK(only_zeroed(a, b, (int[]){7, 8}, 1));
    /* transport header at the very end of the vector */
    memset(a, 0, sizeof a);
    a[0] = 0x4F;
    a[9] = 6;
    memcpy(b, a, sizeof a);
    dp_mask_apply(DP_MASK_ALL, b);
    CHECK_EQ_INT(b[0], 0x4F);
    /* not IP: untouched */
    fill(a);
    a[0] = 0x12;
    memcpy(b, a, sizeof a);
    dp_mask_apply(DP_MASK_ALL, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
}

int main(void)
{
    dp_test_prog = "test_mask";
    DP_RUN(test_parse_and_name);
    DP_RUN(test_layout);
    DP_RUN(test_v4_tcp_fields);
    DP_RUN(test_v6_udp_fields);
    DP_RUN(test_tcp_options_walk);
    DP_RUN(test_fragment_and_edges);
    return dp_test_end();
}
