/* test_packet: dp_packet over hand-built frames. Each case gives the frame
 * and the whole expected vector as hex (written out by hand from the spec
 * rules, not computed by the parser), compared byte for byte. */
#include <stdint.h>
#include <string.h>

#include "dp_test.h"
#include "packet/dp_packet.h"

/* ---- hex helpers ---------------------------------------------------------- */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes hex into out (at most cap bytes); -1 on a bad string. */
static long unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0, len = strlen(s);
    if (len % 2)
        return -1;
    for (size_t i = 0; i < len; i += 2) {
        int a = hexval(s[i]), b = hexval(s[i + 1]);
        if (a < 0 || b < 0 || n >= cap)
            return -1;
        out[n++] = (uint8_t)(a << 4 | b);
    }
    return (long)n;
}

/* Compares a vector with expected bytes followed by zeros up to 1500. */
static int vec_equals(const uint8_t *vec, const uint8_t *exp, size_t n, const char *name)
{
    for (size_t i = 0; i < DP_VEC_LEN; i++) {
        uint8_t e = i < n ? exp[i] : 0;
        if (vec[i] != e) {
            fprintf(stderr, "  %s: vector byte %zu is %02x, expected %02x\n", name, i,
                    vec[i], e);
            return 0;
        }
    }
    return 1;
}

/* ---- building blocks (string literals, concatenated by the compiler) ----- */
#define MACS "020000000002" "020000000001"
#define ETH(type) MACS type
#define SRC4 "0a000001"
#define DST4 "c0a80102"
#define Z4 "00000000"
#define SRC6 "20010db8000000000000000000000001"
#define DST6 "20010db80000000000000000000000ff"
#define Z16 "00000000000000000000000000000000"
#define Z12 "000000000000000000000000"

/* IPv4 header without options: total length, flags+fragment offset, protocol */
#define IP4(len, ff, proto, s, d) "4500" len "1234" ff "40" proto "beef" s d
#define IP4T(len) IP4(len, "4000", "06", SRC4, DST4)
#define IP4TM(len) IP4(len, "4000", "06", Z4, Z4)
#define IP4U(len) IP4(len, "4000", "11", SRC4, DST4)
#define IP4UM(len) IP4(len, "4000", "11", Z4, Z4)
/* IPv6 header: payload length, next header */
#define IP6(plen, nh, s, d) "60012345" plen nh "40" s d
#define IP6X(plen, nh) IP6(plen, nh, SRC6, DST6)
#define IP6XM(plen, nh) IP6(plen, nh, Z16, Z16)
/* TCP header (20 bytes, no options): ports, flags */
#define TCP(sp, dp, flags) sp dp "00000001" "00000002" "50" flags "ffff" "0000" "0000"
#define TCPA TCP("c000", "01bb", "18") /* PSH+ACK */
#define UDP(sp, dp, len) sp dp len "cafe"
#define UDPA UDP("c001", "01bb", "0010")
#define PAY4 "deadbeef"
#define PAY8 "0102030405060708"

/* frames: IPv4 TCP with 4 payload bytes (44 = 0x2c), IPv4 UDP with 8 (36 = 0x24) */
#define V4TCP IP4T("002c") TCPA PAY4
#define V4TCP_VEC IP4TM("002c") TCPA PAY4
#define V4UDP IP4U("0024") UDPA PAY8
#define V4UDP_VEC IP4UM("0024") UDPA Z12 PAY8
#define V6TCP IP6X("0018", "06") TCPA PAY4
#define V6TCP_VEC IP6XM("0018", "06") TCPA PAY4
#define V6UDP IP6X("0010", "11") UDPA PAY8
#define V6UDP_VEC IP6XM("0010", "11") UDPA Z12 PAY8

enum { SWEEP = 1, NOSWEEP = 0 };

typedef struct pcase {
    const char *name;
    int linktype;
    const char *frame;
    int verdict;
    const char *vec; /* expected vector, trailing zeros may be left out */
    int sweep;       /* cut the frame at every length and check the result */
} pcase;

static const pcase cases[] = {
    /* ---- link types ---- */
    {"eth v4 tcp", 1, ETH("0800") V4TCP, DP_KEEP, V4TCP_VEC, SWEEP},
    {"eth v4 udp", 1, ETH("0800") V4UDP, DP_KEEP, V4UDP_VEC, SWEEP},
    {"eth v6 tcp", 1, ETH("86dd") V6TCP, DP_KEEP, V6TCP_VEC, SWEEP},
    {"eth v6 udp", 1, ETH("86dd") V6UDP, DP_KEEP, V6UDP_VEC, SWEEP},
    {"eth 802.1q", 1, ETH("8100") "2064" "0800" V4TCP, DP_KEEP, V4TCP_VEC, SWEEP},
    {"eth 802.1ad+802.1q", 1, ETH("88a8") "00c8" "8100" "0064" "86dd" V6UDP, DP_KEEP,
     V6UDP_VEC, SWEEP},
    {"eth 0x9100+802.1q", 1, ETH("9100") "00c8" "8100" "0064" "0800" V4UDP, DP_KEEP,
     V4UDP_VEC, SWEEP},
    {"eth pppoe v4", 1, ETH("8864") "110000010026" "0021" V4UDP, DP_KEEP, V4UDP_VEC, SWEEP},
    {"eth trailer excluded", 1, ETH("0800") V4TCP "000000000000aabb", DP_KEEP, V4TCP_VEC,
     NOSWEEP},
    {"eth v6 trailer excluded", 1, ETH("86dd") V6UDP "a5a5a5a5", DP_KEEP, V6UDP_VEC, NOSWEEP},
    {"raw v4 udp bytes past total length excluded", 101, V4UDP "ffffffff", DP_KEEP, V4UDP_VEC,
     NOSWEEP},
    {"sll trailer excluded", 113, "0000" "0001" "0006" "020000000001" "0000" "0800" V4TCP
     "0000", DP_KEEP, V4TCP_VEC, NOSWEEP},
    {"raw 12 v4", 12, V4TCP, DP_KEEP, V4TCP_VEC, SWEEP},
    {"raw 14 v6", 14, V6TCP, DP_KEEP, V6TCP_VEC, SWEEP},
    {"raw 101 v4", 101, V4UDP, DP_KEEP, V4UDP_VEC, SWEEP},
    {"raw 101 v6", 101, V6UDP, DP_KEEP, V6UDP_VEC, SWEEP},
    {"ipv4 228", 228, V4UDP, DP_KEEP, V4UDP_VEC, SWEEP},
    {"ipv6 229", 229, V6TCP, DP_KEEP, V6TCP_VEC, SWEEP},
    {"sll v4", 113, "0000" "0001" "0006" "020000000001" "0000" "0800" V4TCP, DP_KEEP,
     V4TCP_VEC, SWEEP},
    {"sll v6", 113, "0004" "0001" "0006" "020000000001" "0000" "86dd" V6UDP, DP_KEEP,
     V6UDP_VEC, SWEEP},
    {"sll vlan", 113, "0000" "0001" "0006" "020000000001" "0000" "8100" "0064" "0800" V4UDP,
     DP_KEEP, V4UDP_VEC, SWEEP},
    {"sll2 v4", 276, "0800" "0000" "00000002" "0001" "00" "06" "0200000000010000" V4TCP,
     DP_KEEP, V4TCP_VEC, SWEEP},
    {"sll2 v6", 276, "86dd" "0000" "00000002" "0001" "04" "06" "0200000000010000" V6UDP,
     DP_KEEP, V6UDP_VEC, SWEEP},
    {"null le v4", 0, "02000000" V4TCP, DP_KEEP, V4TCP_VEC, SWEEP},
    {"null be v4", 0, "00000002" V4UDP, DP_KEEP, V4UDP_VEC, SWEEP},
    {"null le v6 (macos 30)", 0, "1e000000" V6UDP, DP_KEEP, V6UDP_VEC, SWEEP},
    {"null le v6 (freebsd 28)", 0, "1c000000" V6TCP, DP_KEEP, V6TCP_VEC, SWEEP},
    {"null le v6 (linux 10)", 0, "0a000000" V6TCP, DP_KEEP, V6TCP_VEC, SWEEP},
    {"loop v4", 108, "00000002" V4TCP, DP_KEEP, V4TCP_VEC, SWEEP},
    {"loop v6 (openbsd 24)", 108, "00000018" V6UDP, DP_KEEP, V6UDP_VEC, SWEEP},

    /* ---- not IP / unknown link ---- */
    {"eth arp", 1, ETH("0806") "0001080006040001" "020000000001" SRC4 "000000000000" DST4,
     DP_SKIP_NOT_IP, NULL, NOSWEEP},
    {"eth llc (802.3 length)", 1, ETH("0026") "424203000000000000", DP_SKIP_NOT_IP, NULL,
     NOSWEEP},
    {"eth vlan arp", 1, ETH("8100") "0064" "0806" "0001080006040001", DP_SKIP_NOT_IP, NULL,
     NOSWEEP},
    {"eth pppoe lcp", 1, ETH("8864") "110000010010" "c021" "0101000e", DP_SKIP_NOT_IP, NULL,
     NOSWEEP},
    {"sll arp", 113, "0000" "0001" "0006" "020000000001" "0000" "0806" "00010800",
     DP_SKIP_NOT_IP, NULL, NOSWEEP},
    {"sll netlink", 113, "0000" "0338" "0000" "0000000000000000" "0800" V4TCP,
     DP_SKIP_NOT_IP, NULL, NOSWEEP},
    {"sll2 arp", 276, "0806" "0000" "00000002" "0001" "00" "06" "0200000000010000" "0001",
     DP_SKIP_NOT_IP, NULL, NOSWEEP},
    {"null af 7", 0, "07000000" V4TCP, DP_SKIP_NOT_IP, NULL, NOSWEEP},
    {"loop af 17", 108, "00000011" V4TCP, DP_SKIP_NOT_IP, NULL, NOSWEEP},
    {"unknown linktype 147", 147, V4TCP, DP_SKIP_LINKTYPE, NULL, NOSWEEP},
    {"unknown linktype -1", -1, V4TCP, DP_SKIP_LINKTYPE, NULL, NOSWEEP},

    /* ---- IPv4 options and fragments ---- */
    {"v4 options udp", 101,
     "4600" "0028" "1234" "4000" "40" "11" "beef" SRC4 DST4 "01010100" UDPA PAY8, DP_KEEP,
     "4600" "0028" "1234" "4000" "40" "11" "beef" Z4 Z4 "01010100" UDPA Z12 PAY8, SWEEP},
    {"v4 max options tcp", 101,
     "4f00" "0054" "1234" "4000" "40" "06" "beef" SRC4 DST4
     "01010101010101010101010101010101010101010101010101010101010101010101010101010100"
     TCPA PAY4, DP_KEEP,
     "4f00" "0054" "1234" "4000" "40" "06" "beef" Z4 Z4
     "01010101010101010101010101010101010101010101010101010101010101010101010101010100"
     TCPA PAY4, SWEEP},
    {"v4 first fragment udp padded", 101, IP4("0024", "2000", "11", SRC4, DST4) UDPA PAY8,
     DP_KEEP, IP4("0024", "2000", "11", Z4, Z4) UDPA Z12 PAY8, SWEEP},
    /* a non-first fragment whose data happens to look like a DNS header: no
     * transport header, so neither dropped nor padded */
    {"v4 non-first fragment", 101, IP4("001c", "0003", "11", SRC4, DST4) "00350035" "0010beef",
     DP_KEEP, IP4("001c", "0003", "11", Z4, Z4) "00350035" "0010beef", SWEEP},
    {"v4 last fragment tcp", 101, IP4("001c", "00b9", "06", SRC4, DST4) "1122334455667788",
     DP_KEEP, IP4("001c", "00b9", "06", Z4, Z4) "1122334455667788", SWEEP},
    {"v4 icmp", 101, IP4("001c", "0000", "01", SRC4, DST4) "0800f7ff00000000", DP_KEEP,
     IP4("001c", "0000", "01", Z4, Z4) "0800f7ff00000000", SWEEP},
    {"v4 ah tcp", 101,
     IP4("0044", "4000", "33", SRC4, DST4) "06" "04" "0000" "00000100" "00000001"
     "00112233445566778899aabb" TCPA PAY4, DP_KEEP,
     IP4("0044", "4000", "33", Z4, Z4) "06" "04" "0000" "00000100" "00000001"
     "00112233445566778899aabb" TCPA PAY4, SWEEP},
    {"v4 esp kept as is", 101, IP4("0024", "4000", "32", SRC4, DST4) "0000010000000001" PAY8,
     DP_KEEP, IP4("0024", "4000", "32", Z4, Z4) "0000010000000001" PAY8, SWEEP},

    /* ---- IPv6 extension headers ---- */
    {"v6 hop-by-hop udp", 101, IP6X("0018", "00") "11" "00" "010400000000" UDPA PAY8, DP_KEEP,
     IP6XM("0018", "00") "11" "00" "010400000000" UDPA Z12 PAY8, SWEEP},
    {"v6 routing tcp", 101, IP6X("0020", "2b") "06" "00" "0000" "00000000" TCPA PAY4, DP_KEEP,
     IP6XM("0020", "2b") "06" "00" "0000" "00000000" TCPA PAY4, SWEEP},
    {"v6 routing 24 bytes udp", 101,
     IP6X("0028", "2b") "11" "02" "0001" "00000000" SRC6 UDPA PAY8, DP_KEEP,
     IP6XM("0028", "2b") "11" "02" "0001" "00000000" SRC6 UDPA Z12 PAY8, SWEEP},
    {"v6 destination options udp", 101, IP6X("0018", "3c") "11" "00" "010400000000" UDPA PAY8,
     DP_KEEP, IP6XM("0018", "3c") "11" "00" "010400000000" UDPA Z12 PAY8, SWEEP},
    {"v6 first fragment udp padded", 101, IP6X("0018", "2c") "11" "00" "0001" "12345678" UDPA
     PAY8, DP_KEEP, IP6XM("0018", "2c") "11" "00" "0001" "12345678" UDPA Z12 PAY8, SWEEP},
    {"v6 non-first fragment", 101, IP6X("0010", "2c") "11" "00" "0010" "12345678" "0035003500100000",
     DP_KEEP, IP6XM("0010", "2c") "11" "00" "0010" "12345678" "0035003500100000", SWEEP},
    {"v6 ah tcp", 101,
     IP6X("0030", "33") "06" "04" "0000" "00000100" "00000001" "00112233445566778899aabb"
     TCPA PAY4, DP_KEEP,
     IP6XM("0030", "33") "06" "04" "0000" "00000100" "00000001" "00112233445566778899aabb"
     TCPA PAY4, SWEEP},
    {"v6 chain hbh dst rt frag udp", 101,
     IP6X("0030", "00") "3c00010400000000" "2b00010400000000" "2c00000000000000"
     "11000000abcdef01" UDPA PAY8, DP_KEEP,
     IP6XM("0030", "00") "3c00010400000000" "2b00010400000000" "2c00000000000000"
     "11000000abcdef01" UDPA Z12 PAY8, SWEEP},
    {"v6 no next header", 101, IP6X("0000", "3b"), DP_KEEP, IP6XM("0000", "3b"), SWEEP},
    {"v6 icmpv6", 101, IP6X("0008", "3a") "8000abcd00010001", DP_KEEP,
     IP6XM("0008", "3a") "8000abcd00010001", SWEEP},

    /* ---- UDP padding placement: empty UDP payload ---- */
    {"v4 udp empty payload", 101, IP4U("001c") UDP("c001", "01bb", "0008"), DP_KEEP,
     IP4UM("001c") UDP("c001", "01bb", "0008") Z12, SWEEP},

    /* ---- segmentation offload: total length 0 = the captured bytes ---- */
    {"tso v4 tcp total length 0", 1, ETH("0800") IP4T("0000") TCPA PAY8 PAY8, DP_KEEP,
     IP4TM("0000") TCPA PAY8 PAY8, NOSWEEP},
    {"tso v4 tcp ack no payload", 1, ETH("0800") IP4T("0000") TCP("c000", "01bb", "10"),
     DP_SKIP_EMPTY_TCP, NULL, NOSWEEP},
    {"tso v6 udp payload length 0", 101, IP6X("0000", "11") UDPA PAY8, DP_KEEP,
     IP6XM("0000", "11") UDPA Z12 PAY8, NOSWEEP},

    /* ---- DNS / mDNS ---- */
    {"udp dport 53", 101, IP4U("0024") UDP("c001", "0035", "0010") PAY8, DP_SKIP_DNS, NULL,
     NOSWEEP},
    {"udp sport 53", 1, ETH("86dd") IP6X("0010", "11") UDP("0035", "c001", "0010") PAY8,
     DP_SKIP_DNS, NULL, NOSWEEP},
    {"tcp dport 53", 101, IP4T("002c") TCP("c000", "0035", "18") PAY4, DP_SKIP_DNS, NULL,
     NOSWEEP},
    {"tcp sport 53", 101, IP4T("002c") TCP("0035", "c000", "18") PAY4, DP_SKIP_DNS, NULL,
     NOSWEEP},
    {"mdns dport 5353", 101, IP4U("0024") UDP("14e9", "14e9", "0010") PAY8, DP_SKIP_DNS, NULL,
     NOSWEEP},
    {"mdns sport 5353 v6", 101, IP6X("0010", "11") UDP("14e9", "c001", "0010") PAY8,
     DP_SKIP_DNS, NULL, NOSWEEP},
    {"tcp 5353 is not mdns", 101, IP4T("002c") TCP("14e9", "c000", "18") PAY4, DP_KEEP,
     IP4TM("002c") TCP("14e9", "c000", "18") PAY4, SWEEP},
    {"udp 53 behind v6 ext header", 101, IP6X("0018", "3c") "11" "00" "010400000000"
     UDP("c001", "0035", "0010") PAY8, DP_SKIP_DNS, NULL, NOSWEEP},

    /* ---- empty TCP ---- */
    {"empty tcp syn", 101, IP4T("0028") TCP("c000", "01bb", "02"), DP_SKIP_EMPTY_TCP, NULL,
     NOSWEEP},
    {"empty tcp ack", 101, IP4T("0028") TCP("c000", "01bb", "10"), DP_SKIP_EMPTY_TCP, NULL,
     NOSWEEP},
    {"empty tcp fin", 101, IP4T("0028") TCP("c000", "01bb", "01"), DP_SKIP_EMPTY_TCP, NULL,
     NOSWEEP},
    {"empty tcp syn+ack v6", 101, IP6X("0014", "06") TCP("c000", "01bb", "12"),
     DP_SKIP_EMPTY_TCP, NULL, NOSWEEP},
    {"empty tcp ack with eth trailer", 1, ETH("0800") IP4T("0028") TCP("c000", "01bb", "10")
     "000000000000", DP_SKIP_EMPTY_TCP, NULL, NOSWEEP},
    {"empty tcp ack with options", 101,
     "4500" "0034" "1234" "4000" "40" "06" "beef" SRC4 DST4
     "c00001bb" "00000001" "00000002" "80" "10" "ffff" "0000" "0000" "0101080a0000000100000002",
     DP_SKIP_EMPTY_TCP, NULL, NOSWEEP},
    {"empty tcp psh only kept", 101, IP4T("0028") TCP("c000", "01bb", "08"), DP_KEEP,
     IP4TM("0028") TCP("c000", "01bb", "08"), SWEEP},
    {"empty tcp rst only kept", 101, IP4T("0028") TCP("c000", "01bb", "04"), DP_KEEP,
     IP4TM("0028") TCP("c000", "01bb", "04"), SWEEP},
    {"tcp ack with 1 byte kept", 101, IP4T("0029") TCP("c000", "01bb", "10") "00", DP_KEEP,
     IP4TM("0029") TCP("c000", "01bb", "10") "00", SWEEP},

    /* ---- snap length: the IP length says more than was captured ---- */
    {"snaplen tcp ack: payload from IP length", 1, ETH("0800") IP4T("05dc")
     TCP("c000", "01bb", "10") "aabb", DP_KEEP, IP4TM("05dc") TCP("c000", "01bb", "10") "aabb",
     NOSWEEP},
    {"snaplen udp: missing bytes are padding", 101, IP4U("0100") UDP("c001", "01bb", "00ec")
     "0102", DP_KEEP, IP4UM("0100") UDP("c001", "01bb", "00ec") Z12 "0102", NOSWEEP},
    {"snaplen udp header only", 101, IP4U("0100") UDP("c001", "01bb", "00ec"), DP_KEEP,
     IP4UM("0100") UDP("c001", "01bb", "00ec") Z12, NOSWEEP},

    /* ---- malformed ---- */
    {"empty frame raw", 101, "", DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"eth 13 bytes", 1, "02000000000202000000000108", DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"eth header only", 1, ETH("0800"), DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"eth vlan tag cut", 1, ETH("8100") "00", DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"raw version 5", 101, "5500002c", DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"eth ipv4 type, v6 packet", 1, ETH("0800") V6TCP, DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"228 with v6 packet", 228, V6TCP, DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"229 with v4 packet", 229, V4TCP, DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"v4 ihl 4", 101, "4400002c12344000400600000a000001c0a80102" TCPA PAY4, DP_SKIP_MALFORMED,
     NULL, NOSWEEP},
    {"v4 total length < header", 101, IP4T("0013") TCPA PAY4, DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"v4 total length cuts tcp header", 101, IP4T("0020") TCPA PAY4, DP_SKIP_MALFORMED, NULL,
     NOSWEEP},
    {"v4 total length cuts udp header", 101, IP4U("0018") UDPA PAY8, DP_SKIP_MALFORMED, NULL,
     NOSWEEP},
    {"tcp data offset 4", 101,
     IP4T("002c") "c00001bb" "00000001" "00000002" "40" "18" "ffff" "0000" "0000" PAY4,
     DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"tcp data offset past ip length", 101,
     IP4T("002c") "c00001bb" "00000001" "00000002" "70" "18" "ffff" "0000" "0000" PAY4,
     DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"v6 ext header past payload length", 101, IP6X("0010", "00") "11" "02" "010400000000"
     "0000000000000000" "0000000000000000", DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"v6 ah past payload length", 101, IP6X("0008", "33") "06" "04" "0000" "00000100",
     DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"sll 15 bytes", 113, "0000" "0001" "0006" "020000000001" "0000" "08", DP_SKIP_MALFORMED,
     NULL, NOSWEEP},
    {"sll2 19 bytes", 276, "0800" "0000" "00000002" "0001" "00" "06" "02000000000100",
     DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"null 3 bytes", 0, "020000", DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"null family only", 0, "02000000", DP_SKIP_MALFORMED, NULL, NOSWEEP},
    {"loop family only", 108, "00000002", DP_SKIP_MALFORMED, NULL, NOSWEEP},
};

#define NCASES (sizeof cases / sizeof cases[0])

static uint8_t frame[4096], expv[4096];

static void test_table(void)
{
    uint8_t vec[DP_VEC_LEN];
    for (size_t i = 0; i < NCASES; i++) {
        const pcase *c = &cases[i];
        long n = unhex(c->frame, frame, sizeof frame);
        CHECK(n >= 0);
        if (n < 0)
            continue;
        memset(vec, 0xA5, sizeof vec);
        dp_pkt_info info;
        dp_verdict v = dp_packet_transform(c->linktype, frame, (size_t)n, vec, &info);
        if ((int)v != c->verdict) {
            fprintf(stderr, "  case \"%s\": verdict %s, expected %s\n", c->name,
                    dp_verdict_name(v), dp_verdict_name((dp_verdict)c->verdict));
            dp_test_failed_now = 1;
            continue;
        }
        /* parse alone agrees with transform */
        dp_pkt_info info2;
        CHECK_EQ_INT(dp_packet_parse(c->linktype, frame, (size_t)n, &info2), v);
        CHECK(memcmp(&info, &info2, sizeof info) == 0);
        if (v != DP_KEEP) {
            /* vec is untouched for a skip */
            CHECK(vec[0] == 0xA5 && vec[DP_VEC_LEN - 1] == 0xA5);
            continue;
        }
        long en = unhex(c->vec, expv, sizeof expv);
        CHECK(en >= 0);
        if (en < 0 || !vec_equals(vec, expv, (size_t)en, c->name))
            dp_test_failed_now = 1;
        CHECK(info.ipver == 4 || info.ipver == 6);
        /* transform without info gives the same vector */
        uint8_t vec2[DP_VEC_LEN];
        CHECK_EQ_INT(dp_packet_transform(c->linktype, frame, (size_t)n, vec2, NULL), DP_KEEP);
        CHECK(memcmp(vec, vec2, DP_VEC_LEN) == 0);
    }
}

/* Every KEEP case cut at every length: short of the end of the transport
 * header it is malformed; from there on it is kept and the missing bytes are
 * zero padding (shifted by 12 past the UDP header). */
static void test_snaplen_sweep(void)
{
    uint8_t vec[DP_VEC_LEN], cutexp[DP_VEC_LEN];
    int checked = 0;
    for (size_t i = 0; i < NCASES; i++) {
        const pcase *c = &cases[i];
        if (!c->sweep)
            continue;
        long n = unhex(c->frame, frame, sizeof frame);
        long en = unhex(c->vec, expv, sizeof expv);
        dp_pkt_info info;
        if (n < 0 || en < 0 ||
            dp_packet_transform(c->linktype, frame, (size_t)n, vec, &info) != DP_KEEP) {
            CHECK(!"sweep case not kept");
            continue;
        }
        int udp = info.proto == 17 && !info.fragment;
        size_t l4h = info.fragment ? 0 : info.proto == 6 ? (size_t)(frame[info.ip_off + info.l4_off + 12] >> 4) * 4
                   : udp ? 8 : 0;
        size_t hdr_end = info.ip_off + info.l4_off + l4h;
        for (size_t cut = 0; cut < (size_t)n; cut++) {
            dp_pkt_info ci;
            dp_verdict v = dp_packet_transform(c->linktype, frame, cut, vec, &ci);
            if (cut < hdr_end) {
                if (v != DP_SKIP_MALFORMED) {
                    fprintf(stderr, "  case \"%s\" cut at %zu: %s, expected malformed\n",
                            c->name, cut, dp_verdict_name(v));
                    dp_test_failed_now = 1;
                }
                continue;
            }
            if (v != DP_KEEP) {
                fprintf(stderr, "  case \"%s\" cut at %zu: %s, expected kept\n", c->name, cut,
                        dp_verdict_name(v));
                dp_test_failed_now = 1;
                continue;
            }
            size_t keep = cut - info.ip_off; /* IP bytes captured */
            if (udp && keep >= info.l4_off + 8)
                keep += 12;
            memset(cutexp, 0, sizeof cutexp);
            memcpy(cutexp, expv, (size_t)en < keep ? (size_t)en : keep);
            if (!vec_equals(vec, cutexp, DP_VEC_LEN, c->name)) {
                fprintf(stderr, "  (cut at %zu)\n", cut);
                dp_test_failed_now = 1;
            }
            CHECK_EQ_INT(ci.payload_len, info.payload_len); /* from IP length, not caplen */
            checked++;
        }
    }
    CHECK(checked > 100);
}

static void test_info_fields(void)
{
    dp_pkt_info info;
    long n = unhex(ETH("8100") "2064" "0800" V4TCP, frame, sizeof frame);
    CHECK_EQ_INT(dp_packet_parse(1, frame, (size_t)n, &info), DP_KEEP);
    CHECK_EQ_INT(info.ipver, 4);
    CHECK_EQ_INT(info.proto, 6);
    CHECK_EQ_INT(info.sport, 0xc000);
    CHECK_EQ_INT(info.dport, 443);
    CHECK_EQ_INT(info.tcp_flags, 0x18);
    CHECK_EQ_INT(info.ip_off, 18);
    CHECK_EQ_INT(info.ip_len, 44);
    CHECK_EQ_INT(info.l4_off, 20);
    CHECK_EQ_INT(info.payload_len, 4);
    CHECK_EQ_INT(info.fragment, 0);
    uint8_t s4[16] = {10, 0, 0, 1}, d4[16] = {192, 168, 1, 2};
    CHECK(memcmp(info.saddr, s4, 16) == 0);
    CHECK(memcmp(info.daddr, d4, 16) == 0);

    /* v6 chain: transport behind 4 extension headers */
    n = unhex(IP6X("0030", "00") "3c00010400000000" "2b00010400000000" "2c00000000000000"
              "11000000abcdef01" UDPA PAY8, frame, sizeof frame);
    CHECK_EQ_INT(dp_packet_parse(101, frame, (size_t)n, &info), DP_KEEP);
    CHECK_EQ_INT(info.ipver, 6);
    CHECK_EQ_INT(info.proto, 17);
    CHECK_EQ_INT(info.l4_off, 72);
    CHECK_EQ_INT(info.ip_len, 88);
    CHECK_EQ_INT(info.payload_len, 8);
    CHECK_EQ_INT(info.sport, 0xc001);
    uint8_t s6[16], d6[16];
    unhex(SRC6, s6, 16);
    unhex(DST6, d6, 16);
    CHECK(memcmp(info.saddr, s6, 16) == 0);
    CHECK(memcmp(info.daddr, d6, 16) == 0);

    /* non-first v6 fragment */
    n = unhex(IP6X("0010", "2c") "11" "00" "0010" "12345678" "0035003500100000", frame,
              sizeof frame);
    CHECK_EQ_INT(dp_packet_parse(101, frame, (size_t)n, &info), DP_KEEP);
    CHECK_EQ_INT(info.fragment, 1);
    CHECK_EQ_INT(info.proto, 17);
    CHECK_EQ_INT(info.sport, 0);
    CHECK_EQ_INT(info.dport, 0);
    CHECK_EQ_INT(info.l4_off, 48);

    /* TSO: ip_len is the captured length */
    n = unhex(ETH("0800") IP4T("0000") TCPA PAY8 PAY8, frame, sizeof frame);
    CHECK_EQ_INT(dp_packet_parse(1, frame, (size_t)n, &info), DP_KEEP);
    CHECK_EQ_INT(info.ip_len, 56);
    CHECK_EQ_INT(info.payload_len, 16);

    /* skipped packets still report what was found */
    n = unhex(IP4U("0024") UDP("c001", "0035", "0010") PAY8, frame, sizeof frame);
    CHECK_EQ_INT(dp_packet_parse(101, frame, (size_t)n, &info), DP_SKIP_DNS);
    CHECK_EQ_INT(info.dport, 53);

    /* NULL pkt is safe */
    CHECK_EQ_INT(dp_packet_parse(101, NULL, 0, &info), DP_SKIP_MALFORMED);
    CHECK_EQ_INT(info.ipver, 0);
}

/* Packets longer than 1500 bytes: the vector is cut at 1500. */
static void test_truncate_1500(void)
{
    static uint8_t f[4000];
    uint8_t vec[DP_VEC_LEN];
    /* IPv4 TCP with 1600 payload bytes */
    long h = unhex(ETH("0800") IP4T("0674") TCPA, f, sizeof f); /* 20+20+1600 = 1640 */
    CHECK_EQ_INT(h, 54);
    for (int i = 0; i < 1600; i++)
        f[h + i] = (uint8_t)(i * 7 + 1);
    CHECK_EQ_INT(dp_packet_transform(1, f, (size_t)h + 1600, vec, NULL), DP_KEEP);
    for (int i = 0; i < 1500; i++) {
        uint8_t e = i < 40 ? f[14 + i] : (uint8_t)((i - 40) * 7 + 1);
        if (i >= 12 && i < 20)
            e = 0;
        if (vec[i] != e) {
            fprintf(stderr, "  tcp byte %d: %02x expected %02x\n", i, vec[i], e);
            dp_test_failed_now = 1;
            break;
        }
    }
    /* IPv6 UDP with 1500 payload bytes: 40 + 8 + 12 zeros + the first 1440 */
    h = unhex(IP6X("05e4", "11") UDP("c001", "01bb", "05e4"), f, sizeof f);
    CHECK_EQ_INT(h, 48);
    for (int i = 0; i < 1500; i++)
        f[h + i] = (uint8_t)(i * 13 + 5);
    CHECK_EQ_INT(dp_packet_transform(101, f, (size_t)h + 1500, vec, NULL), DP_KEEP);
    for (int i = 0; i < 1500; i++) {
        uint8_t e = i < 48 ? f[i] : i < 60 ? 0 : (uint8_t)((i - 60) * 13 + 5);
        if (i >= 8 && i < 40)
            e = 0;
        if (vec[i] != e) {
            fprintf(stderr, "  udp byte %d: %02x expected %02x\n", i, vec[i], e);
            dp_test_failed_now = 1;
            break;
        }
    }
    /* UDP exactly filling 1500 with the padding: 20 + 8 + 12 + 1460 */
    h = unhex(IP4U("05d0") UDP("c001", "01bb", "05bc"), f, sizeof f); /* 1488 total */
    for (int i = 0; i < 1460; i++)
        f[h + i] = 0xEE;
    CHECK_EQ_INT(dp_packet_transform(101, f, (size_t)h + 1460, vec, NULL), DP_KEEP);
    CHECK(vec[27] == 0xfe && vec[28] == 0 && vec[39] == 0 && vec[40] == 0xEE &&
          vec[1499] == 0xEE);
}

static void test_flow_id(void)
{
    dp_pkt_info a, b, c;
    long n = unhex(V4TCP, frame, sizeof frame);
    CHECK_EQ_INT(dp_packet_parse(101, frame, (size_t)n, &a), DP_KEEP);
    /* the reply: addresses and ports swapped */
    n = unhex(IP4("002c", "4000", "06", DST4, SRC4) TCP("01bb", "c000", "18") PAY4, frame,
              sizeof frame);
    CHECK_EQ_INT(dp_packet_parse(101, frame, (size_t)n, &b), DP_KEEP);
    CHECK(dp_flow_id(&a, 1) == dp_flow_id(&b, 1));
    CHECK(dp_flow_id(&a, 1) != dp_flow_id(&a, 2)); /* salted */
    /* other port: other flow */
    n = unhex(IP4T("002c") TCP("c002", "01bb", "18") PAY4, frame, sizeof frame);
    CHECK_EQ_INT(dp_packet_parse(101, frame, (size_t)n, &c), DP_KEEP);
    CHECK(dp_flow_id(&a, 1) != dp_flow_id(&c, 1));
    /* same 5-tuple, UDP instead of TCP: other flow */
    n = unhex(IP4("0024", "4000", "11", SRC4, DST4) UDP("c000", "01bb", "0010") PAY8, frame,
              sizeof frame);
    CHECK_EQ_INT(dp_packet_parse(101, frame, (size_t)n, &c), DP_KEEP);
    CHECK(dp_flow_id(&a, 1) != dp_flow_id(&c, 1));

    /* IPv6 both ways, from different link types */
    n = unhex(ETH("86dd") V6UDP, frame, sizeof frame);
    CHECK_EQ_INT(dp_packet_parse(1, frame, (size_t)n, &a), DP_KEEP);
    n = unhex(IP6("0010", "11", DST6, SRC6) UDP("01bb", "c001", "0010") PAY8, frame,
              sizeof frame);
    CHECK_EQ_INT(dp_packet_parse(101, frame, (size_t)n, &b), DP_KEEP);
    CHECK(dp_flow_id(&a, 7) == dp_flow_id(&b, 7));
    /* same addresses, ports equal on both ends, swapped: still symmetric */
    n = unhex(IP4("0024", "4000", "11", SRC4, DST4) UDP("1000", "1000", "0010") PAY8, frame,
              sizeof frame);
    dp_packet_parse(101, frame, (size_t)n, &a);
    n = unhex(IP4("0024", "4000", "11", DST4, SRC4) UDP("1000", "1000", "0010") PAY8, frame,
              sizeof frame);
    dp_packet_parse(101, frame, (size_t)n, &b);
    CHECK(dp_flow_id(&a, 0) == dp_flow_id(&b, 0));
    /* loopback-like flow: same address, ports swapped */
    n = unhex(IP4("0024", "4000", "11", SRC4, SRC4) UDP("1000", "2000", "0010") PAY8, frame,
              sizeof frame);
    dp_packet_parse(101, frame, (size_t)n, &a);
    n = unhex(IP4("0024", "4000", "11", SRC4, SRC4) UDP("2000", "1000", "0010") PAY8, frame,
              sizeof frame);
    dp_packet_parse(101, frame, (size_t)n, &b);
    CHECK(dp_flow_id(&a, 0) == dp_flow_id(&b, 0));
    /* v4 10.0.0.1 and a v6 address starting with the same bytes differ */
    memset(&c, 0, sizeof c);
    c = a;
    c.ipver = 6;
    CHECK(dp_flow_id(&a, 0) != dp_flow_id(&c, 0));
}

static void test_names(void)
{
    CHECK(strcmp(dp_verdict_name(DP_KEEP), "kept") == 0);
    CHECK(strcmp(dp_verdict_name(DP_SKIP_NOT_IP), "not_ip") == 0);
    CHECK(strcmp(dp_verdict_name(DP_SKIP_LINKTYPE), "linktype") == 0);
    CHECK(strcmp(dp_verdict_name(DP_SKIP_MALFORMED), "malformed") == 0);
    CHECK(strcmp(dp_verdict_name(DP_SKIP_EMPTY_TCP), "empty_tcp") == 0);
    CHECK(strcmp(dp_verdict_name(DP_SKIP_DNS), "dns") == 0);
    int lts[] = {0, 1, 12, 14, 101, 108, 113, 228, 229, 276};
    for (size_t i = 0; i < sizeof lts / sizeof lts[0]; i++)
        CHECK(dp_linktype_supported(lts[i]));
    CHECK(!dp_linktype_supported(147));
    CHECK(!dp_linktype_supported(105));
}

/* Every byte of pseudo-random frames, on every link type: no crash, and kept
 * vectors have zero addresses (the sanitizer builds make this meaningful). */
static void test_random_frames(void)
{
    static const int lts[] = {0, 1, 12, 14, 101, 108, 113, 228, 229, 276};
    uint8_t f[200], vec[DP_VEC_LEN];
    uint64_t s = 12345;
    int kept = 0;
    for (int it = 0; it < 200000; it++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t len = (size_t)((s >> 33) % sizeof f);
        for (size_t i = 0; i < len; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            f[i] = (uint8_t)(s >> 56);
        }
        int lt = lts[it % 10];
        /* bias the IP version nibble so that parsing goes deep */
        size_t ipo = lt == 1 ? 14 : lt == 113 ? 16 : lt == 276 ? 20 : lt == 0 || lt == 108 ? 4 : 0;
        if (len > ipo)
            f[ipo] = (uint8_t)((it & 1 ? 0x40 : 0x60) | (f[ipo] & 0x0f));
        if (lt == 1 && len >= 14) {
            f[12] = it & 1 ? 0x08 : 0x86;
            f[13] = it & 1 ? 0x00 : 0xdd;
        }
        dp_pkt_info info;
        if (dp_packet_transform(lt, f, len, vec, &info) == DP_KEEP) {
            kept++;
            size_t a = info.ipver == 4 ? 12 : 8, b = info.ipver == 4 ? 20 : 40;
            for (size_t i = a; i < b; i++)
                if (vec[i]) {
                    CHECK(!"address byte not zero");
                    break;
                }
        }
    }
    fprintf(stderr, "  random frames: %d of 200000 kept\n", kept);
    CHECK(kept > 1000);
}

/* The link-type table: DLT values to and from the parser's numbers, as
 * libpcap on Linux numbers them (DLT_RAW 12, LINKTYPE_RAW 101). */
static void test_linktype_table(void)
{
    CHECK_EQ_INT(dp_linktype_from_dlt(12), DP_LINKTYPE_RAW);
    CHECK_EQ_INT(dp_linktype_from_dlt(1), DP_LINKTYPE_ETHERNET);
    CHECK_EQ_INT(dp_linktype_from_dlt(276), DP_LINKTYPE_LINUX_SLL2);
    CHECK_EQ_INT(dp_linktype_from_dlt(14), 14);   /* not DLT_RAW on Linux */
    CHECK_EQ_INT(dp_linktype_from_dlt(105), 105); /* unknown: as it is */
    CHECK_EQ_INT(dp_linktype_to_dlt(DP_LINKTYPE_RAW), 12);
    CHECK_EQ_INT(dp_linktype_to_dlt(DP_LINKTYPE_RAW_DLT_OBSD), 12);
    CHECK_EQ_INT(dp_linktype_to_dlt(DP_LINKTYPE_IPV6), 229);
    CHECK_EQ_INT(dp_linktype_to_dlt(147), 147);
    CHECK(dp_linktype_find(105) == NULL);
    CHECK_EQ_INT(dp_linktype_find(DP_LINKTYPE_LINUX_SLL)->kind, DP_LINK_SLL);
    CHECK_EQ_INT(dp_linktype_find(DP_LINKTYPE_RAW_DLT)->kind, DP_LINK_RAW);
    /* every supported number converts to a DLT and back to a raw-IP or the
     * same link type */
    int lts[] = {0, 1, 12, 14, 101, 108, 113, 228, 229, 276};
    for (size_t i = 0; i < sizeof lts / sizeof lts[0]; i++) {
        int back = dp_linktype_from_dlt(dp_linktype_to_dlt(lts[i]));
        CHECK(back == lts[i] || (dp_linktype_find(lts[i])->kind == DP_LINK_RAW && back == DP_LINKTYPE_RAW));
    }
}

int main(void)
{
    dp_test_prog = "test_packet";
    DP_RUN(test_table);
    DP_RUN(test_linktype_table);
    DP_RUN(test_snaplen_sweep);
    DP_RUN(test_info_fields);
    DP_RUN(test_truncate_1500);
    DP_RUN(test_flow_id);
    DP_RUN(test_names);
    DP_RUN(test_random_frames);
    return dp_test_end();
}
