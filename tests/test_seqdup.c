/* Tests for dp_seqdup: flows' first-N packet size/direction sequences and
 * the duplicates between a training and a test set, on hand-built rows. */
#include "dp_test.h"

#include <stdint.h>

#include "dataset/dp_seqdup.h"

/* An IPv4 vector of IP length len. */
static void v4(uint8_t *v, uint32_t len)
{
    memset(v, 0, DP_VEC_LEN);
    v[0] = 0x45;
    v[2] = (uint8_t)(len >> 8);
    v[3] = (uint8_t)len;
}

/* Client A:1000 <-> server B:443; fwd: the packet comes from A. */
static dp_meta row(uint64_t flow, int fwd)
{
    dp_meta m;
    memset(&m, 0, sizeof m);
    m.flow = flow;
    m.ipver = 4;
    m.saddr[0] = fwd ? 10 : 192;
    m.daddr[0] = fwd ? 192 : 10;
    m.sport = fwd ? 1000 : 443;
    m.dport = fwd ? 443 : 1000;
    return m;
}

static void add(dp_seqtab *t, uint64_t flow, int fwd, uint32_t len)
{
    char err[DP_ERRBUF_SIZE];
    uint8_t v[DP_VEC_LEN];
    v4(v, len);
    dp_meta m = row(flow, fwd);
    CHECK(dp_seqtab_add(t, &m, v, err) == 0);
}

static void test_fields(void)
{
    uint8_t v[DP_VEC_LEN];
    v4(v, 300);
    CHECK_EQ_INT(dp_seq_ip_length(v), 300);
    memset(v, 0, sizeof v);
    v[0] = 0x60;
    v[4] = 0x01;
    v[5] = 0x00; /* payload 256 */
    CHECK_EQ_INT(dp_seq_ip_length(v), 296);
    v[0] = 0x00;
    CHECK_EQ_INT(dp_seq_ip_length(v), 0);
    dp_meta a = row(1, 1), b = row(1, 0), c = row(1, 1);
    CHECK_EQ_INT(dp_seq_direction(&a, &c), 1);
    CHECK_EQ_INT(dp_seq_direction(&a, &b), 0);
    c.sport = 1001; /* same host, another port */
    CHECK_EQ_INT(dp_seq_direction(&a, &c), 0);
    /* a flow whose first packet is the server's: its replies are "back" */
    CHECK_EQ_INT(dp_seq_direction(&b, &a), 0);
}

/* Training flows 1..3, test flows 10..15 (rows of flows 10 and 11
 * interleaved), with N = 2 and N = 3. */
static void fill(dp_seqtab *train, dp_seqtab *test)
{
    add(train, 1, 1, 100), add(train, 1, 0, 200), add(train, 1, 1, 300);
    add(train, 2, 0, 60), add(train, 2, 1, 60);
    add(train, 3, 1, 60);
    add(test, 10, 1, 100);
    add(test, 11, 1, 100);
    add(test, 10, 0, 200);
    add(test, 11, 1, 200);  /* 11: same sizes as 1, other direction */
    add(test, 10, 1, 999);  /* 10: as 1 for 2 packets, not for 3 */
    add(test, 12, 1, 100);  /* 12: one packet; no training flow is that short and equal */
    add(test, 13, 1, 60);   /* 13: as 3 */
    add(test, 14, 0, 60), add(test, 14, 1, 60); /* 14: starts with the server: as 2 (directions are relative) */
    add(test, 15, 1, 60), add(test, 15, 0, 60), add(test, 15, 1, 70);
}

static void test_duplicates(void)
{
    char err[DP_ERRBUF_SIZE];
    for (int n = 2; n <= 3; n++) {
        dp_seqtab *tr = dp_seqtab_new(n, err), *te = dp_seqtab_new(n, err);
        CHECK(tr && te);
        if (!tr || !te)
            return;
        fill(tr, te);
        CHECK_EQ_INT(dp_seqtab_flows(tr), 3);
        CHECK_EQ_INT(dp_seqtab_flows(te), 6);
        int64_t marked = dp_seqtab_mark(te, tr, err);
        /* N = 2: 10, 13, 14 and 15 (2 starts with the server: relative to its first packet it is
         * 60 fwd, 60 back, as 15 starts); N = 3: 13 and 14 (15 has a third packet, 2 has not) */
        CHECK_EQ_INT(marked, n == 2 ? 4 : 2);
        CHECK_EQ_INT(dp_seqtab_is_dup(te, 10), n == 2);
        CHECK_EQ_INT(dp_seqtab_is_dup(te, 11), 0);
        CHECK_EQ_INT(dp_seqtab_is_dup(te, 12), 0);
        CHECK_EQ_INT(dp_seqtab_is_dup(te, 13), 1);
        CHECK_EQ_INT(dp_seqtab_is_dup(te, 14), 1);
        CHECK_EQ_INT(dp_seqtab_is_dup(te, 15), n == 2);
        CHECK_EQ_INT(dp_seqtab_is_dup(te, 99), 0); /* unknown flow */
        dp_seqtab_free(tr);
        dp_seqtab_free(te);
    }
}

static void test_many_flows_and_errors(void)
{
    char err[DP_ERRBUF_SIZE];
    CHECK(dp_seqtab_new(0, err) == NULL);
    CHECK_STR_CONTAINS(err, "sequence length 0");
    dp_seqtab *tr = dp_seqtab_new(4, err), *te = dp_seqtab_new(4, err), *t5 = dp_seqtab_new(5, err);
    /* 5000 training flows of sizes (f, f + 1); test flows f + 2500 for f in 0..4999: half duplicates
     * (the table grows several times) */
    for (uint32_t f = 0; f < 5000; f++) {
        add(tr, f, 1, f), add(tr, f, 0, f + 1);
        add(te, 100000 + f, 1, f + 2500), add(te, 100000 + f, 0, f + 2501);
    }
    CHECK_EQ_INT(dp_seqtab_mark(te, tr, err), 2500);
    CHECK_EQ_INT(dp_seqtab_is_dup(te, 100000), 1);
    CHECK_EQ_INT(dp_seqtab_is_dup(te, 104999), 0);
    CHECK_EQ_INT(dp_seqtab_mark(t5, tr, err), -1);
    CHECK_STR_CONTAINS(err, "sequence lengths differ");
    dp_seqtab_free(tr);
    dp_seqtab_free(te);
    dp_seqtab_free(t5);
}

int main(void)
{
    dp_test_prog = "test_seqdup";
    DP_RUN(test_fields);
    DP_RUN(test_duplicates);
    DP_RUN(test_many_flows_and_errors);
    return dp_test_end();
}
