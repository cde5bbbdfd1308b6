/* test_flow: the flow features (src/flow): one packet's F floats from
 * hand-built vectors (each slot, direction, inter-arrival, groups, masks),
 * and flowsets built from hand-built split folders (flow order, capture
 * order inside a flow, first N packets, padding blocks, labels, refusal of
 * a folder without meta.npy). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dp_dataset.h"
#include "dp_test.h"
#include "flow/dp_flowfeat.h"
#include "flow/dp_flowset.h"
#include "packet/dp_mask.h"
#include "util/dp_util.h"

/* IPv4 + TCP (data offset 5), total length len, payload bytes 0xC0 + i,
 * sport/dport, TTL ttl. */
static void v4_tcp(uint8_t *v, int len, int sport, int ttl)
{
    memset(v, 0, DP_VEC_LEN);
    v[0] = 0x45;
    v[2] = (uint8_t)(len >> 8), v[3] = (uint8_t)len;
    v[4] = 0x12, v[5] = 0x34; /* ip id */
    v[8] = (uint8_t)ttl;
    v[9] = 6;
    v[20] = (uint8_t)(sport >> 8), v[21] = (uint8_t)sport;
    v[22] = 0x01, v[23] = 0xBB;
    v[32] = 5 << 4;
    v[33] = 0x18;
    for (int i = 40; i < len && i < DP_VEC_LEN; i++)
        v[i] = (uint8_t)(0xC0 + (i - 40));
}

/* IPv6 + UDP (padded): payload bytes 0x10 + i after byte 60. */
static void v6_udp(uint8_t *v, int plen)
{
    memset(v, 0, DP_VEC_LEN);
    v[0] = 0x60;
    v[1] = 0x0A, v[2] = 0xBC, v[3] = 0xDE; /* flow label */
    v[4] = (uint8_t)((plen + 8) >> 8), v[5] = (uint8_t)(plen + 8);
    v[6] = 17;
    v[7] = 64;
    v[40] = 0x30, v[41] = 0x39, v[42] = 0x01, v[43] = 0xBB;
    v[44] = 0, v[45] = (uint8_t)(plen + 8);
    v[46] = 0xAB, v[47] = 0xCD;
    for (int i = 0; i < plen; i++)
        v[60 + i] = (uint8_t)(0x10 + i);
}

static void cfg_all(dp_flowcfg *c, int N, int K, uint32_t mask)
{
    dp_flowcfg_default(c);
    c->npackets = N;
    c->payload_bytes = K;
    c->mask = mask;
}

static void test_packet_features(void)
{
    uint8_t v[DP_VEC_LEN];
    dp_flowcfg c;
    cfg_all(&c, 10, 8, 0);
    int F = dp_flowcfg_features(&c);
    CHECK_EQ_INT(F, 52);
    float out[52];
    v4_tcp(v, 300, 40000, 64);
    dp_flowfeat_packet(&c, v, -1, 0.5, 0, out);
    CHECK_NEAR(out[0], 1, 0);
    CHECK_NEAR(out[1], -1, 0);
    CHECK_NEAR(out[2], 300.0 / 1500, 1e-7);
    CHECK_NEAR(out[3], log1p(500.0) / 10, 1e-6);
    for (int i = 0; i < 20; i++)
        CHECK_NEAR(out[4 + i], v[i] / 255.0, 1e-7);
    for (int i = 0; i < 20; i++)
        CHECK_NEAR(out[24 + i], v[20 + i] / 255.0, 1e-7);
    for (int i = 0; i < 8; i++)
        CHECK_NEAR(out[44 + i], (0xC0 + i) / 255.0, 1e-7);
    /* first packet: no inter-arrival; +1 */
    dp_flowfeat_packet(&c, v, 1, 0.5, 1, out);
    CHECK_NEAR(out[1], 1, 0);
    CHECK_NEAR(out[3], 0, 0);
    /* negative time steps count as 0 */
    dp_flowfeat_packet(&c, v, 1, -3, 0, out);
    CHECK_NEAR(out[3], 0, 0);
    /* and so do NaN; infinity (a damaged meta.npy) is capped: finite features */
    dp_flowfeat_packet(&c, v, 1, NAN, 0, out);
    CHECK_NEAR(out[3], 0, 0);
    dp_flowfeat_packet(&c, v, 1, INFINITY, 0, out);
    CHECK(isfinite(out[3]) && out[3] > 0);
    CHECK_NEAR(out[3], log1p(1000.0 * DP_FLOWFEAT_MAX_DT) / 10.0, 1e-6);
    /* IPv6 UDP: bytes 0..7 then zeros; UDP 8 bytes then zeros; payload after 20 */
    v6_udp(v, 5);
    dp_flowfeat_packet(&c, v, 1, 0, 1, out);
    CHECK_NEAR(out[2], 53.0 / 1500, 1e-7);
    for (int i = 0; i < 8; i++)
        CHECK_NEAR(out[4 + i], v[i] / 255.0, 1e-7);
    for (int i = 8; i < 20; i++)
        CHECK_NEAR(out[4 + i], 0, 0);
    CHECK_NEAR(out[24 + 6], 0xAB / 255.0, 1e-7);
    for (int i = 8; i < 20; i++)
        CHECK_NEAR(out[24 + i], 0, 0);
    for (int i = 0; i < 5; i++)
        CHECK_NEAR(out[44 + i], (0x10 + i) / 255.0, 1e-7);
    for (int i = 5; i < 8; i++)
        CHECK_NEAR(out[44 + i], 0, 0);
}

static void test_groups_and_mask(void)
{
    uint8_t v[DP_VEC_LEN], keep[DP_VEC_LEN];
    dp_flowcfg c;
    float out[52];
    char err[DP_ERRBUF_SIZE], name[64];
    v4_tcp(v, 300, 40000, 64);
    memcpy(keep, v, sizeof v);
    cfg_all(&c, 10, 8, DP_MASK_PORTS | DP_MASK_TTL | DP_MASK_IPID);
    dp_flowfeat_packet(&c, v, -1, 0.5, 0, out);
    CHECK(memcmp(v, keep, sizeof v) == 0); /* the caller's vector is not touched */
    CHECK_NEAR(out[4 + 4], 0, 0);          /* ip id */
    CHECK_NEAR(out[4 + 5], 0, 0);
    CHECK_NEAR(out[4 + 8], 0, 0);          /* ttl */
    CHECK_NEAR(out[4 + 9], 6 / 255.0, 1e-7); /* protocol kept */
    for (int i = 0; i < 4; i++)
        CHECK_NEAR(out[24 + i], 0, 0);     /* ports */
    CHECK_NEAR(out[24 + 13], 0x18 / 255.0, 1e-7);
    /* groups: only sizes -> header, time, payload zero; [0] stays */
    c.mask = 0;
    c.groups = DP_FEAT_SIZES;
    dp_flowfeat_packet(&c, v, -1, 0.5, 0, out);
    CHECK_NEAR(out[0], 1, 0);
    CHECK_NEAR(out[1], -1, 0);
    CHECK_NEAR(out[2], 0.2, 1e-7);
    for (int i = 3; i < 52; i++)
        CHECK_NEAR(out[i], 0, 0);
    c.groups = DP_FEAT_TIME | DP_FEAT_PAYLOAD;
    dp_flowfeat_packet(&c, v, -1, 0.5, 0, out);
    CHECK_NEAR(out[1], 0, 0);
    CHECK_NEAR(out[2], 0, 0);
    CHECK(out[3] > 0);
    CHECK_NEAR(out[10], 0, 0);
    CHECK(out[44] > 0);
    /* names */
    uint32_t g;
    CHECK_EQ_INT(dp_flowfeat_groups_parse("payload,sizes", &g, err), 0);
    CHECK_EQ_INT(g, DP_FEAT_SIZES | DP_FEAT_PAYLOAD);
    CHECK(strcmp(dp_flowfeat_groups_name(g, name, sizeof name), "sizes,payload") == 0);
    CHECK(strcmp(dp_flowfeat_groups_name(DP_FEAT_ALL, name, sizeof name), "all") == 0);
    CHECK_EQ_INT(dp_flowfeat_groups_parse("sizes,bytes", &g, err), -1);
    CHECK_STR_CONTAINS(err, "unknown field 'bytes'");
    CHECK_STR_CONTAINS(err, "sizes, time, header, payload");
    /* config ranges */
    cfg_all(&c, 0, 8, 0);
    CHECK_EQ_INT(dp_flowcfg_check(&c, "m.dpm", err), -1);
    CHECK_STR_CONTAINS(err, "m.dpm: packets per flow 0");
    cfg_all(&c, 10, 1457, 0);
    CHECK_EQ_INT(dp_flowcfg_check(&c, "m.dpm", err), -1);
    cfg_all(&c, 64, 1456, DP_MASK_ALL);
    CHECK_EQ_INT(dp_flowcfg_check(&c, "m.dpm", err), 0);
}

/* ---- flowsets ----------------------------------------------------------- */

typedef struct trow {
    uint64_t flow;
    double time;
    uint32_t file;
    uint64_t index;
    int label;
    int sport;  /* the first packet's sport is 40000: direction +1 */
    int len;    /* IP total length: identifies the row in the features */
} trow;

/* Writes a split folder holding rows (meta.npy unless no_meta). */
static char *write_split(const char *name, const trow *rows, int n, int no_meta)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", dp_test_tmpdir(), name);
    uint8_t *v = calloc((size_t)n, DP_VEC_LEN);
    int16_t *l = calloc((size_t)n, 2);
    dp_meta *m = calloc((size_t)n, sizeof(dp_meta));
    for (int i = 0; i < n; i++) {
        v4_tcp(v + (size_t)i * DP_VEC_LEN, rows[i].len, rows[i].sport, 64);
        l[i] = (int16_t)rows[i].label;
        m[i] = (dp_meta){.file = rows[i].file, .index = rows[i].index, .time = rows[i].time,
                         .flow = rows[i].flow, .ipver = 4, .proto = 6, .sport = (uint16_t)rows[i].sport,
                         .dport = 443};
        m[i].saddr[0] = rows[i].sport == 40000 ? 10 : 20;
        m[i].daddr[0] = rows[i].sport == 40000 ? 20 : 10;
    }
    CHECK(dp_test_write_split(dir, v, l, no_meta ? NULL : m, (size_t)n, "0\tChat\n1\tEmail\n2\tVoip\n") == 0);
    free(v);
    free(l);
    free(m);
    return dir;
}

/* Flow 7 (label 2) starts at t=1; flow 3 (label 1) at t=2; flow 9 (label 0)
 * at t=2 too but in file 1 (after file 0); rows on disk shuffled. */
static const trow rows_a[] = {
    {3, 2.5, 0, 11, 1, 443, 120},  {7, 1.0, 0, 1, 2, 40000, 100}, {9, 2.0, 1, 0, 0, 40000, 300},
    {3, 2.0, 0, 10, 1, 40000, 110}, {7, 1.5, 0, 5, 2, 40000, 102}, {7, 1.2, 0, 3, 2, 443, 101},
    {3, 2.5, 0, 12, 1, 40000, 130}, {7, 1.5, 0, 4, 2, 443, 103},   {7, 9.0, 0, 99, 2, 443, 104},
};

static int block_len(const float *row, int F, int b)
{
    return (int)lrintf(row[(size_t)b * F + 2] * 1500);
}

static void test_flowset_order(void)
{
    char err[DP_ERRBUF_SIZE];
    const char *dir = write_split("fs_a", rows_a, 9, 0);
    dp_splitset s;
    CHECK_EQ_INT(dp_splitset_open(&s, dir, err), 0);
    dp_flowset fs;
    dp_flowcfg c;
    cfg_all(&c, 3, 4, DP_MASK_DEFAULT);
    CHECK_EQ_INT(dp_flowset_build(&fs, &s, dir, &c, err), 0);
    CHECK_EQ_INT(fs.nflows, 3);
    CHECK_EQ_INT(fs.flows[0].id, 7);
    CHECK_EQ_INT(fs.flows[1].id, 3);
    CHECK_EQ_INT(fs.flows[2].id, 9);
    CHECK_EQ_INT(fs.flows[0].label, 2);
    CHECK_EQ_INT(fs.flows[1].label, 1);
    CHECK_EQ_INT(fs.flows[2].label, 0);
    CHECK_EQ_INT(fs.flows[0].npackets, 5);
    CHECK_EQ_INT(fs.flows[0].nrows, 3);
    CHECK_EQ_INT(fs.flows[2].npackets, 1);
    CHECK_NEAR(fs.flows[1].first_time, 2.0, 0);
    int F = dp_flowcfg_features(&c), L = dp_flowcfg_row_len(&c);
    CHECK_EQ_INT(L, 3 * 48);
    float *x = dp_flowset_matrix(&fs, err);
    CHECK(x != NULL);
    if (x) {
        /* flow 7: t 1.0 (len 100), 1.2 (101), 1.5 index 4 (103) before index 5 */
        float *r = x;
        CHECK_EQ_INT(block_len(r, F, 0), 100);
        CHECK_EQ_INT(block_len(r, F, 1), 101);
        CHECK_EQ_INT(block_len(r, F, 2), 103);
        CHECK_NEAR(r[1], 1, 0);
        CHECK_NEAR(r[F + 1], -1, 0);
        CHECK_NEAR(r[2 * F + 1], -1, 0);
        CHECK_NEAR(r[3], 0, 0);
        CHECK_NEAR(r[F + 3], log1p(200.0) / 10, 1e-6);
        CHECK_NEAR(r[2 * F + 3], log1p(300.0) / 10, 1e-6);
        CHECK_NEAR(r[24], 0, 0); /* ports masked by the default mask */
        /* flow 3: its first packet (t 2.0) sets the direction */
        r = x + L;
        CHECK_EQ_INT(block_len(r, F, 0), 110);
        CHECK_NEAR(r[1], 1, 0);
        CHECK_EQ_INT(block_len(r, F, 1), 120); /* t 2.5 index 11 before 12 */
        CHECK_NEAR(r[F + 1], -1, 0);
        CHECK_EQ_INT(block_len(r, F, 2), 130);
        CHECK_NEAR(r[2 * F + 1], 1, 0);
        /* flow 9: one packet, then two all-zero blocks */
        r = x + 2 * L;
        CHECK_EQ_INT(block_len(r, F, 0), 300);
        for (int i = F; i < L; i++)
            CHECK_NEAR(r[i], 0, 0);
        /* a single row equals the matrix row */
        float *one = malloc((size_t)L * sizeof(float));
        dp_flowset_row(&fs, 1, one);
        CHECK(memcmp(one, x + L, (size_t)L * sizeof(float)) == 0);
        uint64_t idx[2] = {2, 0};
        float *two = malloc(2 * (size_t)L * sizeof(float));
        dp_flowset_rows(&fs, idx, 2, two);
        CHECK(memcmp(two, x + 2 * L, (size_t)L * sizeof(float)) == 0);
        CHECK(memcmp(two + L, x, (size_t)L * sizeof(float)) == 0);
        free(one);
        free(two);
    }
    free(x);
    dp_flowset_free(&fs);
    dp_splitset_close(&s);
}

static void test_flowset_refusals(void)
{
    char err[DP_ERRBUF_SIZE];
    const char *dir = write_split("fs_nometa", rows_a, 9, 1);
    dp_splitset s;
    CHECK_EQ_INT(dp_splitset_open(&s, dir, err), 0);
    dp_flowset fs;
    dp_flowcfg c;
    dp_flowcfg_default(&c);
    CHECK_EQ_INT(dp_flowset_build(&fs, &s, dir, &c, err), -1);
    CHECK_STR_CONTAINS(err, "fs_nometa: no flow information (meta.npy)");
    CHECK_STR_CONTAINS(err, "deeppacket preprocess");
    dp_splitset_close(&s);
    dir = write_split("fs_badcfg", rows_a, 9, 0);
    CHECK_EQ_INT(dp_splitset_open(&s, dir, err), 0);
    c.npackets = 65;
    CHECK_EQ_INT(dp_flowset_build(&fs, &s, dir, &c, err), -1);
    CHECK_STR_CONTAINS(err, "packets per flow 65");
    dp_splitset_close(&s);
}

int main(void)
{
    dp_test_prog = "test_flow";
    DP_RUN(test_packet_features);
    DP_RUN(test_groups_and_mask);
    DP_RUN(test_flowset_order);
    DP_RUN(test_flowset_refusals);
    return dp_test_end();
}
