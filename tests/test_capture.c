/* test_capture: dp_capture over real captures and broken files.
 *
 *  (a) golden oracle: every packet of ../shared/data/iscx-fixture that our
 *      rules keep maps to exactly its vector in golden-vectors.tsv;
 *  (b) every nDPI capture reads without error and its per-verdict counts
 *      equal tests/fixtures/ndpi-counts.tsv;
 *  (c) broken input gives a message naming the file, never a crash;
 *  (d) dumper round trip, timestamps of usec/nsec files, pcapng interfaces;
 *  (e) live capture on the loopback interface (skipped without permission).
 *
 * `test_capture --gen-ndpi-counts` prints the counts table (how the fixture
 * was made, after checking several files against tshark by hand).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/dp_capture.h"
#include "dp_test.h"
#include "packet/dp_packet.h"
#include "util/dp_util.h"

static char errbuf[DP_ERRBUF_SIZE];

/* ---- small file helpers ---------------------------------------------------- */
static int write_bytes(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(b, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", dp_test_tmpdir(), name);
    return p;
}

static void put32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static void put16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A hand-made IPv4/UDP frame of the given link type (Ethernet or raw). */
static size_t make_frame(uint8_t *b, int linktype, int seq)
{
    size_t o = 0;
    if (linktype == 1) {
        static const uint8_t eth[14] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
        memcpy(b, eth, 14);
        o = 14;
    }
    static const uint8_t ip[28] = {0x45, 0, 0, 36, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0,
                                   10, 0, 0, 1, 10, 0, 0, 2, 0xc0, 0x01, 0x01, 0xbb,
                                   0, 16, 0, 0};
    memcpy(b + o, ip, 28);
    for (int i = 0; i < 8; i++)
        b[o + 28 + i] = (uint8_t)(seq + i);
    return o + 36;
}

/* Writes a little-endian usec pcap of n hand-made frames. Returns its size. */
static size_t make_pcap(const char *path, int n)
{
    static uint8_t b[65536];
    size_t o = 0;
    put32le(b, 0xa1b2c3d4);
    put16le(b + 4, 2);
    put16le(b + 6, 4);
    put32le(b + 8, 0);
    put32le(b + 12, 0);
    put32le(b + 16, 65535);
    put32le(b + 20, 1);
    o = 24;
    for (int i = 0; i < n; i++) {
        uint8_t fr[64];
        size_t len = make_frame(fr, 1, i);
        put32le(b + o, 1000000000u + (uint32_t)i);
        put32le(b + o + 4, 250000);
        put32le(b + o + 8, (uint32_t)len);
        put32le(b + o + 12, (uint32_t)len);
        memcpy(b + o + 16, fr, len);
        o += 16 + len;
    }
    if (write_bytes(path, b, o) != 0)
        return 0;
    return o;
}

/* Counts the frames of a capture; returns dp_capture_next's final code
 * (-2: it does not open). */
static int count_frames(const char *path, uint64_t *n)
{
    *n = 0;
    dp_capture *c = dp_capture_open_file(path, errbuf);
    if (!c)
        return -2;
    dp_frame f;
    dp_next rc;
    while ((rc = dp_capture_next(c, &f, errbuf)) == DP_NEXT_FRAME)
        (*n)++;
    dp_capture_close(c);
    return rc;
}

/* ---- (a) golden oracle ------------------------------------------------------ */
typedef struct golden {
    char id[16];
    char cls[48];
    int idx;
    char *hex;
    int used;
} golden;

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Parses golden-vectors.tsv's text (modified in place: the entries point
 * into it) into a new array of *ng entries. */
static golden *golden_parse(char *gtext, size_t *ng)
{
    size_t capg = 2048;
    golden *g = calloc(capg, sizeof *g);
    char *save = NULL;
    *ng = 0;
    for (char *line = strtok_r(gtext, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "json_id", 7))
            continue;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL,
             *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
        if (!t3) {
            CHECK(!"bad golden line");
            continue;
        }
        if (*ng == capg)
            g = realloc(g, (capg *= 2) * sizeof *g);
        golden *e = &g[(*ng)++];
        memset(e, 0, sizeof *e);
        snprintf(e->id, sizeof e->id, "%.*s", (int)(t1 - line), line);
        snprintf(e->cls, sizeof e->cls, "%.*s", (int)(t2 - t1 - 1), t1 + 1);
        e->idx = atoi(t2 + 1);
        e->hex = t3 + 1;
        char *cr = strchr(e->hex, '\r');
        if (cr)
            *cr = 0;
    }
    return g;
}

/* Decodes a golden line's hex (trailing zeros trimmed) into a 1500-byte
 * vector; returns 0, or -1 if the hex is malformed or too long. */
static int golden_decode(const char *hex, uint8_t gv[DP_VEC_LEN])
{
    size_t hl = strlen(hex);
    memset(gv, 0, DP_VEC_LEN);
    if (hl % 2 || hl / 2 > DP_VEC_LEN)
        return -1;
    for (size_t i = 0; i < hl / 2; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0)
            return -1;
        gv[i] = (uint8_t)(a << 4 | b);
    }
    return 0;
}

/* What the golden comparison counted. */
typedef struct golden_run {
    golden *g;
    size_t ng;
    int compared, kept, skipped[DP_VERDICT_COUNT], mismatched, frames, dropped_compared;
} golden_run;

/* The publisher's vector of a packet we drop: the stripped IP packet,
 * addresses masked, zero-padded. Returns 0 when there is no such vector to
 * compare (malformed, not IP, or UDP, which would need the padding). */
static int dropped_vector(const dp_frame *f, const dp_pkt_info *info, dp_verdict v,
                          uint8_t vec[DP_VEC_LEN])
{
    if (v == DP_SKIP_MALFORMED || v == DP_SKIP_NOT_IP || !info->ipver || info->proto == 17)
        return 0;
    size_t have = f->caplen - info->ip_off;
    if (have > info->ip_len)
        have = info->ip_len;
    if (have > DP_VEC_LEN)
        have = DP_VEC_LEN;
    memset(vec, 0, DP_VEC_LEN);
    memcpy(vec, f->data + info->ip_off, have);
    if (info->ipver == 4)
        memset(vec + 12, 0, 8);
    else
        memset(vec + 8, 0, 32);
    return 1;
}

/* Transforms packet k of session (cls, id) and compares it with its golden
 * line: a kept packet must map to exactly its vector, a dropped one (other
 * than UDP) to its stripped IP packet. */
static void golden_frame(golden_run *r, const dp_frame *f, const char *cls, const char *id, int k)
{
    uint8_t vec[DP_VEC_LEN], gv[DP_VEC_LEN];
    r->frames++;
    dp_pkt_info info;
    dp_verdict v = dp_packet_transform(f->linktype, f->data, f->caplen, vec, &info);
    golden *e = NULL;
    for (size_t j = 0; j < r->ng && !e; j++)
        if (r->g[j].idx == k && !strcmp(r->g[j].id, id) && !strcmp(r->g[j].cls, cls))
            e = &r->g[j];
    if (!e) {
        fprintf(stderr, "  no golden line for %s %s %d\n", cls, id, k);
        CHECK(!"golden line missing");
        return;
    }
    e->used = 1;
    if (v != DP_KEEP) {
        r->skipped[v]++;
        if (!dropped_vector(f, &info, v, vec))
            return;
        r->dropped_compared++;
    } else {
        r->kept++;
    }
    CHECK(golden_decode(e->hex, gv) == 0);
    if (v == DP_KEEP)
        r->compared++;
    if (memcmp(vec, gv, DP_VEC_LEN) != 0 && ++r->mismatched <= 5) {
        size_t i = 0;
        while (vec[i] == gv[i])
            i++;
        fprintf(stderr, "  %s session %s packet %d: byte %zu is %02x, golden %02x\n", cls, id, k,
                i, vec[i], gv[i]);
    }
}

/* Closes the capture of the previous class, which must be used up. */
static void golden_end_capture(dp_capture *c)
{
    if (!c)
        return;
    dp_frame f;
    CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_END);
    dp_capture_close(c);
}

/* Goes through sessions.tsv's text (id, class, packets, in file order),
 * reading each class's capture session by session. */
static void golden_sessions(golden_run *r, const char *gdir, char *stext)
{
    char cur_cls[48] = "", path[1200];
    dp_capture *c = NULL;
    char *save = NULL;
    for (char *line = strtok_r(stext, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char id[16], cls[48];
        int npk;
        if (sscanf(line, "%15[^\t]\t%47[^\t]\t%d", id, cls, &npk) != 3 ||
            !strcmp(id, "id") || !strcmp(id, "session_id"))
            continue;
        if (strcmp(cls, cur_cls) != 0) {
            golden_end_capture(c);
            snprintf(cur_cls, sizeof cur_cls, "%s", cls);
            snprintf(path, sizeof path, "%s/iscx_%s.pcap", gdir, cls);
            c = dp_capture_open_file(path, errbuf);
            if (!c) {
                fprintf(stderr, "  %s\n", errbuf);
                CHECK(!"cannot open fixture capture");
                return;
            }
            CHECK_EQ_INT(dp_capture_linktype(c), DP_LINKTYPE_RAW);
        }
        for (int k = 0; k < npk; k++) {
            dp_frame f;
            dp_next rc = dp_capture_next(c, &f, errbuf);
            if (rc != DP_NEXT_FRAME) {
                fprintf(stderr, "  %s session %s packet %d: rc %d %s\n", cls, id, k, rc,
                        rc < 0 ? errbuf : "");
                CHECK(!"fixture capture shorter than sessions.tsv says");
                break;
            }
            golden_frame(r, &f, cls, id, k);
        }
    }
    golden_end_capture(c);
}

/* Reads DIR/NAME whole, NUL-terminated; NULL (a failed check) if it cannot. */
static char *golden_read_text(const char *dir, const char *name)
{
    char *path = dp_path_join(dir, name);
    char *text = dp_read_file(path, NULL, errbuf);
    free(path);
    CHECK(text != NULL);
    return text;
}

/* Every frame of the fixture's captures against the publisher's vectors:
 * each golden line used once, no mismatch, nothing malformed. */
static void test_golden(void)
{
    const char *dir = dp_test_shared("iscx-fixture");
    if (!dir)
        SKIP("../shared/data/iscx-fixture not found");
    char gdir[1024];
    snprintf(gdir, sizeof gdir, "%s", dir);
    golden_run r;
    memset(&r, 0, sizeof r);
    char *gtext = golden_read_text(gdir, "golden-vectors.tsv");
    char *stext = golden_read_text(gdir, "sessions.tsv");
    if (!gtext || !stext) {
        free(gtext);
        free(stext);
        return;
    }
    r.g = golden_parse(gtext, &r.ng);
    golden_sessions(&r, gdir, stext);

    int unused = 0;
    for (size_t j = 0; j < r.ng; j++)
        unused += !r.g[j].used;
    fprintf(stderr, "  golden: %d frames, %d kept and compared, %d mismatched; skipped:", r.frames,
            r.compared, r.mismatched);
    for (int v = 1; v < DP_VERDICT_COUNT; v++)
        fprintf(stderr, " %s %d", dp_verdict_name((dp_verdict)v), r.skipped[v]);
    fprintf(stderr, "; dropped packets also compared %d; golden lines unused %d\n",
            r.dropped_compared, unused);
    CHECK(r.compared > 0);
    CHECK(r.dropped_compared > 0);
    CHECK_EQ_INT(r.mismatched, 0);
    CHECK_EQ_INT(unused, 0);
    CHECK_EQ_INT(r.frames, (int)r.ng);
    CHECK_EQ_INT(r.skipped[DP_SKIP_MALFORMED], 0);
    CHECK_EQ_INT(r.kept, r.compared);
    free(r.g);
    free(gtext);
    free(stext);
}

/* ---- (b) nDPI captures -------------------------------------------------------- */
typedef struct counts {
    uint64_t frames, v[DP_VERDICT_COUNT];
    int rc;
} counts;

static int count_verdicts(const char *path, counts *k)
{
    memset(k, 0, sizeof *k);
    dp_capture *c = dp_capture_open_file(path, errbuf);
    if (!c)
        return -1;
    dp_frame f;
    uint8_t vec[DP_VEC_LEN];
    while ((k->rc = dp_capture_next(c, &f, errbuf)) == DP_NEXT_FRAME) {
        k->frames++;
        k->v[dp_packet_transform(f.linktype, f.data, f.caplen, vec, NULL)]++;
    }
    dp_capture_close(c);
    return k->rc == 0 ? 0 : -1;
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted capture names of ndpi/ (no labels.tsv, no results/). */
static int ndpi_files(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **names = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        size_t l = strlen(nm);
        if ((l > 5 && !strcmp(nm + l - 5, ".pcap")) || (l > 7 && !strcmp(nm + l - 7, ".pcapng"))) {
            names = realloc(names, (size_t)(n + 1) * sizeof *names);
            names[n++] = strdup(nm);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmpstr);
    *out = names;
    return n;
}

static void print_counts_header(FILE *o)
{
    fprintf(o, "file\tframes");
    for (int v = 0; v < DP_VERDICT_COUNT; v++)
        fprintf(o, "\t%s", dp_verdict_name((dp_verdict)v));
    fprintf(o, "\n");
}

static void format_counts(char *buf, size_t n, const char *name, const counts *k)
{
    int o = snprintf(buf, n, "%s\t%llu", name, (unsigned long long)k->frames);
    for (int v = 0; v < DP_VERDICT_COUNT; v++)
        o += snprintf(buf + o, n - (size_t)o, "\t%llu", (unsigned long long)k->v[v]);
}

static int gen_ndpi_counts(void)
{
    const char *dir = dp_test_shared("ndpi");
    if (!dir) {
        fprintf(stderr, "../shared/data/ndpi not found\n");
        return 1;
    }
    char ddir[1024];
    snprintf(ddir, sizeof ddir, "%s", dir);
    char **names;
    int n = ndpi_files(ddir, &names);
    print_counts_header(stdout);
    for (int i = 0; i < n; i++) {
        char path[1400], line[512];
        snprintf(path, sizeof path, "%s/%s", ddir, names[i]);
        counts k;
        if (count_verdicts(path, &k) != 0) {
            fprintf(stderr, "%s\n", errbuf);
            return 1;
        }
        format_counts(line, sizeof line, names[i], &k);
        printf("%s\n", line);
    }
    return 0;
}

static void test_ndpi_counts(void)
{
    const char *dir = dp_test_shared("ndpi");
    if (!dir)
        SKIP("../shared/data/ndpi not found");
    char ddir[1024];
    snprintf(ddir, sizeof ddir, "%s", dir);
    size_t flen;
    char *fx = (char *)dp_test_read_file("tests/fixtures/ndpi-counts.tsv", &flen);
    CHECK(fx != NULL);
    if (!fx)
        return;
    fx = realloc(fx, flen + 1);
    fx[flen] = 0;
    char **names;
    int n = ndpi_files(ddir, &names);
    CHECK(n >= 40);
    uint64_t total[DP_VERDICT_COUNT] = {0};
    int matched = 0;
    for (int i = 0; i < n; i++) {
        char path[1400], line[512], want[520];
        snprintf(path, sizeof path, "%s/%s", ddir, names[i]);
        counts k;
        if (count_verdicts(path, &k) != 0) {
            fprintf(stderr, "  %s\n", errbuf);
            CHECK(!"nDPI capture read error");
            continue;
        }
        CHECK(k.frames > 0);
        for (int v = 0; v < DP_VERDICT_COUNT; v++)
            total[v] += k.v[v];
        format_counts(line, sizeof line, names[i], &k);
        snprintf(want, sizeof want, "\n%s\n", line);
        if (strstr(fx, want))
            matched++;
        else {
            fprintf(stderr, "  counts differ from the fixture: %s\n", line);
            dp_test_failed_now = 1;
        }
        free(names[i]);
    }
    free(names);
    int lines = 0;
    for (char *p = fx; *p; p++)
        lines += *p == '\n';
    CHECK_EQ_INT(matched, lines - 1); /* every fixture line has its file */
    fprintf(stderr, "  ndpi: %d captures;", n);
    for (int v = 0; v < DP_VERDICT_COUNT; v++)
        fprintf(stderr, " %s %llu", dp_verdict_name((dp_verdict)v), (unsigned long long)total[v]);
    fprintf(stderr, "\n");
    CHECK(total[DP_KEEP] > 0 && total[DP_SKIP_DNS] > 0 && total[DP_SKIP_EMPTY_TCP] > 0);
    free(fx);
}

/* ---- (c) bad input ------------------------------------------------------------ */
static void expect_open_fails(const char *path, const char *needle)
{
    errbuf[0] = 0;
    dp_capture *c = dp_capture_open_file(path, errbuf);
    CHECK(c == NULL);
    if (c)
        dp_capture_close(c);
    CHECK_STR_CONTAINS(errbuf, path);
    if (needle)
        CHECK_STR_CONTAINS(errbuf, needle);
}

/* Files that are no capture at all: text, empty, truncated global or
 * section headers, a missing file, a directory. */
static void bad_files(void)
{
    char *p = tmp_path("text.pcap");
    const char *txt = "this is not a capture file, only text\n";
    CHECK(write_bytes(p, txt, strlen(txt)) == 0);
    CHECK_EQ_INT(dp_capture_probe(p, errbuf), DP_PROBE_NOT_CAPTURE);
    CHECK_STR_CONTAINS(errbuf, p);
    expect_open_fails(p, "not a pcap or pcapng");

    p = tmp_path("empty.pcap");
    CHECK(write_bytes(p, "", 0) == 0);
    CHECK_EQ_INT(dp_capture_probe(p, errbuf), DP_PROBE_NOT_CAPTURE);
    expect_open_fails(p, "empty");

    p = tmp_path("shorthdr.pcap");
    static const uint8_t hdr10[10] = {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0};
    CHECK(write_bytes(p, hdr10, sizeof hdr10) == 0);
    CHECK_EQ_INT(dp_capture_probe(p, errbuf), DP_PROBE_PCAP);
    expect_open_fails(p, "truncated");

    p = tmp_path("shorthdr.pcapng");
    static const uint8_t ng6[6] = {0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0};
    CHECK(write_bytes(p, ng6, sizeof ng6) == 0);
    CHECK_EQ_INT(dp_capture_probe(p, errbuf), DP_PROBE_PCAPNG);
    expect_open_fails(p, NULL);

    p = tmp_path("does-not-exist.pcap");
    CHECK_EQ_INT(dp_capture_probe(p, errbuf), DP_PROBE_ERROR);
    CHECK_STR_CONTAINS(errbuf, p);
    expect_open_fails(p, "No such file");

    p = (char *)dp_test_tmpdir();
    CHECK_EQ_INT(dp_capture_probe(p, errbuf), DP_PROBE_ERROR);
    expect_open_fails(p, "directory");
}

/* A little-endian pcap to cut and edit, written to src: a fixture copy when
 * the shared data is there, else a hand-made one. Returns its bytes (*n of
 * them) with the offsets of its records in offs (*nrec, at most cap), or NULL. */
static uint8_t *source_capture(const char *src, size_t *n, size_t *offs, size_t cap, size_t *nrec)
{
    uint8_t *b = NULL;
    const char *fx = dp_test_shared("iscx-fixture/iscx_email.pcap");
    if (fx)
        b = dp_test_read_file(fx, n);
    if (!b) {
        CHECK(make_pcap(src, 20) > 0);
        b = dp_test_read_file(src, n);
    }
    CHECK(b != NULL && *n > 24);
    if (!b)
        return NULL;
    CHECK(b[0] == 0xd4 && b[1] == 0xc3); /* little-endian pcap */
    CHECK(write_bytes(src, b, *n) == 0);
    uint64_t total;
    CHECK_EQ_INT(count_frames(src, &total), DP_NEXT_END);
    CHECK(total >= 3);
    *nrec = 0;
    for (size_t o = 24; o + 16 <= *n && *nrec < cap;) {
        offs[(*nrec)++] = o;
        uint32_t cl = (uint32_t)b[o + 8] | (uint32_t)b[o + 9] << 8 | (uint32_t)b[o + 10] << 16 |
                      (uint32_t)b[o + 11] << 24;
        o += 16 + cl;
    }
    CHECK_EQ_INT(*nrec, total);
    return *nrec >= 3 ? b : (free(b), NULL);
}

/* Captures cut inside a record's data or header (an error naming the file,
 * after the whole records) or between records (a clean end), and an absurd
 * record length (an error that repeats rather than reading garbage). */
static void damaged_records(void)
{
    size_t n = 0, offs[4096], nrec = 0;
    uint8_t *b = source_capture(tmp_path("src.pcap"), &n, offs, 4096, &nrec);
    if (!b)
        return;
    char *p = tmp_path("cut.pcap");
    uint64_t got;
    errbuf[0] = 0;
    CHECK(write_bytes(p, b, offs[nrec - 1] + 16 + 3) == 0);
    CHECK_EQ_INT(count_frames(p, &got), DP_NEXT_ERROR);
    CHECK_EQ_INT(got, nrec - 1);
    CHECK_STR_CONTAINS(errbuf, p);
    CHECK_STR_CONTAINS(errbuf, "truncated");
    CHECK(write_bytes(p, b, offs[2] + 7) == 0);
    CHECK_EQ_INT(count_frames(p, &got), DP_NEXT_ERROR);
    CHECK_EQ_INT(got, 2);
    CHECK_STR_CONTAINS(errbuf, p);
    CHECK(write_bytes(p, b, offs[2]) == 0);
    CHECK_EQ_INT(count_frames(p, &got), DP_NEXT_END);
    CHECK_EQ_INT(got, 2);

    p = tmp_path("absurd.pcap");
    put32le(b + offs[1] + 8, 0x7fffffff);
    CHECK(write_bytes(p, b, n) == 0);
    errbuf[0] = 0;
    CHECK_EQ_INT(count_frames(p, &got), DP_NEXT_ERROR);
    CHECK_EQ_INT(got, 1);
    CHECK_STR_CONTAINS(errbuf, p);
    dp_capture *c = dp_capture_open_file(p, errbuf);
    CHECK(c != NULL);
    if (c) {
        dp_frame f;
        CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_FRAME);
        CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_ERROR);
        CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_ERROR);
        CHECK_STR_CONTAINS(errbuf, p);
        dp_capture_close(c);
    }
    free(b);
}

/* Every bad file and damaged capture gives an error naming the file. */
static void test_bad_input(void)
{
    bad_files();
    damaged_records();
}

/* ---- (d) timestamps, pcapng interfaces, dumper ----------------------------- */
static void test_timestamps(void)
{
    uint8_t b[128];
    uint8_t fr[64];
    size_t len = make_frame(fr, 101, 0);
    /* big-endian nanosecond pcap */
    put32be(b, 0xa1b23c4d);
    b[4] = 0, b[5] = 2, b[6] = 0, b[7] = 4;
    put32be(b + 8, 0);
    put32be(b + 12, 0);
    put32be(b + 16, 65535);
    put32be(b + 20, 101);
    put32be(b + 24, 1500000000u);
    put32be(b + 28, 123456789u);
    put32be(b + 32, (uint32_t)len);
    put32be(b + 36, 1000);
    memcpy(b + 40, fr, len);
    char *p = tmp_path("nsec-be.pcap");
    CHECK(write_bytes(p, b, 40 + len) == 0);
    CHECK_EQ_INT(dp_capture_probe(p, errbuf), DP_PROBE_PCAP);
    dp_capture *c = dp_capture_open_file(p, errbuf);
    CHECK(c != NULL);
    if (!c)
        return;
    dp_frame f;
    CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_FRAME);
    CHECK_NEAR(f.time, 1500000000.123456789, 1e-6);
    CHECK(f.time > 1500000000.1234565 && f.time < 1500000000.1234570);
    CHECK_EQ_INT(f.caplen, len);
    CHECK_EQ_INT(f.wirelen, 1000);
    CHECK_EQ_INT(f.linktype, DP_LINKTYPE_RAW);
    CHECK_EQ_INT(f.index, 0);
    CHECK(memcmp(f.data, fr, len) == 0);
    CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_END);
    CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_END);
    dp_capture_close(c);

    /* little-endian microsecond pcap */
    p = tmp_path("usec-le.pcap");
    CHECK(make_pcap(p, 3) > 0);
    c = dp_capture_open_file(p, errbuf);
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_EQ_INT(dp_capture_linktype(c), 1);
    /* a break on a file: one 3, then reading goes on where it was */
    dp_capture_break(c);
    CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_BREAK);
    uint64_t rx = 9, drop = 9;
    dp_capture_stats(c, &rx, &drop);
    CHECK(rx == 0 && drop == 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_FRAME);
        CHECK_NEAR(f.time, 1000000000.25 + i, 1e-6);
        CHECK_EQ_INT(f.index, i);
        CHECK_EQ_INT(f.linktype, 1);
    }
    CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_END);
    dp_capture_close(c);
}

/* pcapng: section header, interfaces, enhanced packet blocks, in the byte
 * order ng_big says (0: little-endian). */
static int ng_big;

static void ng_put32(uint8_t *p, uint32_t v)
{
    if (ng_big)
        put32be(p, v);
    else
        put32le(p, v);
}

static void ng_put16(uint8_t *p, uint16_t v)
{
    if (ng_big) {
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
    } else {
        put16le(p, v);
    }
}

static size_t ng_block(uint8_t *b, uint32_t type, const uint8_t *body, size_t blen)
{
    size_t pad = (4 - blen % 4) % 4, tot = 12 + blen + pad;
    ng_put32(b, type);
    ng_put32(b + 4, (uint32_t)tot);
    memcpy(b + 8, body, blen);
    memset(b + 8 + blen, 0, pad);
    ng_put32(b + 8 + blen + pad, (uint32_t)tot);
    return tot;
}

static size_t ng_shb(uint8_t *b)
{
    uint8_t body[16];
    ng_put32(body, 0x1a2b3c4d);
    ng_put16(body + 4, 1);
    ng_put16(body + 6, 0);
    memset(body + 8, 0xff, 8); /* section length unknown */
    return ng_block(b, 0x0a0d0d0a, body, 16);
}

/* An interface of link type lt; with an if_tsresol option when tsresol >= 0. */
static size_t ng_idb_res(uint8_t *b, uint16_t lt, int tsresol)
{
    uint8_t body[20];
    ng_put16(body, lt);
    ng_put16(body + 2, 0);
    ng_put32(body + 4, 65535);
    if (tsresol < 0)
        return ng_block(b, 1, body, 8);
    ng_put16(body + 8, 9); /* if_tsresol, 1 byte (padded) */
    ng_put16(body + 10, 1);
    memset(body + 12, 0, 4);
    body[12] = (uint8_t)tsresol;
    memset(body + 16, 0, 4); /* opt_endofopt */
    return ng_block(b, 1, body, 20);
}

static size_t ng_idb(uint8_t *b, uint16_t lt) { return ng_idb_res(b, lt, -1); }

static size_t ng_epb(uint8_t *b, uint32_t ifid, uint64_t ts, const uint8_t *fr, size_t len)
{
    uint8_t body[256];
    ng_put32(body, ifid);
    ng_put32(body + 4, (uint32_t)(ts >> 32));
    ng_put32(body + 8, (uint32_t)ts);
    ng_put32(body + 12, (uint32_t)len);
    ng_put32(body + 16, (uint32_t)len);
    memcpy(body + 20, fr, len);
    return ng_block(b, 6, body, 20 + len);
}

static void test_pcapng_interfaces(void)
{
    uint8_t b[2048], fe[64], fr[64];
    size_t le = make_frame(fe, 1, 1), lr = make_frame(fr, 101, 2);
    /* two Ethernet interfaces: frames of both read, time from the default
     * microsecond resolution */
    size_t o = ng_shb(b);
    o += ng_idb(b + o, 1);
    o += ng_idb(b + o, 1);
    o += ng_epb(b + o, 0, 1600000000000000ULL + 5, fe, le);
    o += ng_epb(b + o, 1, 1600000001000000ULL, fe, le);
    char *p = tmp_path("two-eth.pcapng");
    CHECK(write_bytes(p, b, o) == 0);
    CHECK_EQ_INT(dp_capture_probe(p, errbuf), DP_PROBE_PCAPNG);
    uint64_t n;
    CHECK_EQ_INT(count_frames(p, &n), DP_NEXT_END);
    CHECK_EQ_INT(n, 2);
    dp_capture *c = dp_capture_open_file(p, errbuf);
    CHECK(c != NULL);
    if (c) {
        dp_frame f;
        CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_FRAME);
        CHECK_NEAR(f.time, 1600000000.000005, 1e-7);
        CHECK_EQ_INT(f.linktype, 1);
        dp_capture_close(c);
    }

    /* Ethernet and raw IP interfaces: libpcap reads the frames of the first
     * link type and then reports an error (documented limitation) */
    o = ng_shb(b);
    o += ng_idb(b + o, 1);
    o += ng_epb(b + o, 0, 1600000000000000ULL, fe, le);
    o += ng_idb(b + o, 101);
    o += ng_epb(b + o, 1, 1600000000000001ULL, fr, lr);
    p = tmp_path("mixed.pcapng");
    CHECK(write_bytes(p, b, o) == 0);
    errbuf[0] = 0;
    int rc = count_frames(p, &n);
    CHECK_EQ_INT(rc, DP_NEXT_ERROR);
    CHECK_EQ_INT(n, 1);
    CHECK_STR_CONTAINS(errbuf, p);
    fprintf(stderr, "  mixed link types: %s\n", errbuf);
}

/* Writes a buffer into a FIFO (opened here: blocks until the reader comes),
 * then, with hold set, keeps it open until hold is cleared (3 s at most). */
struct fifo_feed {
    const char *path;
    const uint8_t *b;
    size_t n;
    atomic_int hold;
};

static void *feed_fifo(void *arg)
{
    struct fifo_feed *ff = arg;
    int fd = open(ff->path, O_WRONLY);
    if (fd >= 0) {
        for (size_t o = 0; o < ff->n;) {
            ssize_t k = write(fd, ff->b + o, ff->n - o > 1000 ? 1000 : ff->n - o); /* many short reads */
            if (k <= 0)
                break;
            o += (size_t)k;
        }
        for (int i = 0; i < 300 && atomic_load(&ff->hold); i++) /* 3 s at most: a reader that waits fails, not hangs */
            usleep(10000);
        close(fd);
    }
    return NULL;
}

/* Reads path (a file, or a FIFO fed the n bytes of b), checking that it
 * holds nfr raw-IP frames whose stamps are want[i] (NULL: not checked) and
 * ends well. */
static void check_raw_frames(const char *path, const uint8_t *b, size_t n, int nfr, const double *want)
{
    struct fifo_feed ff = {path, b, n, 0};
    pthread_t th;
    int fifo = b != NULL && pthread_create(&th, NULL, feed_fifo, &ff) == 0;
    dp_capture *c = dp_capture_open_file(path, errbuf);
    CHECK(c != NULL);
    int got = 0;
    dp_next rc = DP_NEXT_ERROR;
    dp_frame f;
    while (c && (rc = dp_capture_next(c, &f, errbuf)) == DP_NEXT_FRAME) {
        CHECK_EQ_INT(f.linktype, DP_LINKTYPE_RAW);
        if (want && got < nfr)
            CHECK_NEAR(f.time, want[got], 1e-6);
        got++;
    }
    if (rc != DP_NEXT_END)
        fprintf(stderr, "  %s: %s\n", path, errbuf);
    CHECK_EQ_INT(rc, DP_NEXT_END);
    CHECK_EQ_INT(got, nfr);
    dp_capture_close(c);
    if (fifo)
        pthread_join(th, NULL);
}

/* pcapng with several raw-IP interfaces (LINKTYPE_RAW 101, dumpcap -i tun0
 * -i wg0): libpcap 1.10 compared the second IDB's 101 with the capture's
 * DLT_RAW 12 and stopped ("an interface has a type 101 different from the
 * type of the first interface"): no frame of such a capture was read.
 * Through dp_ngfix all are, each with its interface's if_tsresol (10^-6,
 * 10^-9, 2^-10, 2^0), in either byte order, in a second section too,
 * from a file and from a FIFO (a header cut across reads). */
static void test_pcapng_raw_interfaces(void)
{
    static uint8_t b[512 * 1024];
    uint8_t fr[64];
    size_t lr = make_frame(fr, 101, 3);
    const double want[6] = {1600000000.000005, 1600000001.0, 1600000002.5, 1600000003.0, 1600000004.25,
                            1600000005.0};
    for (ng_big = 0; ng_big < 2; ng_big++) {
        size_t o = ng_shb(b);
        o += ng_idb(b + o, 101);
        o += ng_idb_res(b + o, 101, 9);
        o += ng_idb_res(b + o, 101, 0x80 | 10);
        o += ng_idb_res(b + o, 101, 0x80);
        o += ng_epb(b + o, 0, 1600000000000005ULL, fr, lr);
        o += ng_epb(b + o, 1, 1600000001000000000ULL, fr, lr);
        o += ng_epb(b + o, 2, 1600000002ULL * 1024 + 512, fr, lr);
        o += ng_epb(b + o, 3, 1600000003ULL, fr, lr);
        o += ng_idb_res(b + o, 101, 3); /* an interface declared late */
        o += ng_epb(b + o, 4, 1600000004250ULL, fr, lr);
        o += ng_shb(b + o); /* a second section: its interfaces are numbered from 0 */
        o += ng_idb(b + o, 101);
        o += ng_epb(b + o, 0, 1600000005000000ULL, fr, lr);
        char *p = tmp_path(ng_big ? "raw-ifs-be.pcapng" : "raw-ifs.pcapng");
        CHECK(write_bytes(p, b, o) == 0);
        check_raw_frames(p, NULL, o, 6, want);
    }
    ng_big = 0;
    /* more than the fix's 256 KB buffer, through a FIFO: 5000 frames, then
     * a second interface and a frame of it */
    size_t o = ng_shb(b);
    o += ng_idb(b + o, 101);
    for (int i = 0; i < 5000; i++)
        o += ng_epb(b + o, 0, 1600000000000000ULL + (uint64_t)i, fr, lr);
    o += ng_idb(b + o, 101);
    o += ng_epb(b + o, 1, 1600000100000000ULL, fr, lr);
    CHECK(o > 300000 && o <= sizeof b);
    char *fifo = tmp_path("raw-ifs.fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    check_raw_frames(fifo, b, o, 5001, NULL);
    char *p = tmp_path("raw-ifs-big.pcapng");
    CHECK(write_bytes(p, b, o) == 0);
    check_raw_frames(p, NULL, o, 5001, NULL);
}

/* A stream whose writer goes quiet after some frames, with a stall
 * timeout: dp_capture_next gives the frames, then DP_NEXT_TIMEOUT (again
 * and again) instead of waiting, then the end once the writer closes. Also
 * for pcapng whose last block before the stall is no packet (interface
 * statistics, which libpcap reads past: it used to wait inside them). */
static void test_stream_stall(void)
{
    static uint8_t b[4096];
    uint8_t fr[64], isb[16] = {0};
    size_t lr = make_frame(fr, 101, 3);
    for (int ng = 0; ng < 2; ng++) {
        size_t o = 0;
        if (ng) {
            o = ng_shb(b);
            o += ng_idb(b + o, 101);
            o += ng_epb(b + o, 0, 1600000000000000ULL, fr, lr);
            o += ng_epb(b + o, 0, 1600000000000001ULL, fr, lr);
            o += ng_block(b + o, 5, isb, sizeof isb); /* an interface statistics block */
        } else {
            o = make_pcap(tmp_path("stall-src.pcap"), 2);
            FILE *f = fopen(tmp_path("stall-src.pcap"), "rb");
            CHECK(f && fread(b, 1, o, f) == o);
            if (f)
                fclose(f);
        }
        char *fifo = tmp_path(ng ? "stall-ng.fifo" : "stall.fifo");
        CHECK(mkfifo(fifo, 0600) == 0);
        struct fifo_feed ff = {fifo, b, o, 1};
        pthread_t th;
        CHECK(pthread_create(&th, NULL, feed_fifo, &ff) == 0);
        dp_capture *c = dp_capture_open_file(fifo, errbuf);
        CHECK(c != NULL);
        if (c) {
            dp_capture_set_stall_timeout(c, 50);
            dp_frame f;
            CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_FRAME);
            CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_FRAME);
            double t0 = dp_now();
            CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_TIMEOUT);
            CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_TIMEOUT);
            CHECK(dp_now() - t0 < 1);
            atomic_store(&ff.hold, 0);
            dp_next rc;
            while ((rc = dp_capture_next(c, &f, errbuf)) == DP_NEXT_TIMEOUT)
                ;
            CHECK_EQ_INT(rc, DP_NEXT_END);
        }
        atomic_store(&ff.hold, 0);
        pthread_join(th, NULL);
        dp_capture_close(c);
    }
}

/* Copies capture `in` through a dumper to `out` (committed: the file
 * appears only at the close); returns the number of frames, -1 on failure. */
static int dump_copy(const char *in, const char *out, int *lt)
{
    dp_capture *c = dp_capture_open_file(in, errbuf);
    CHECK(c != NULL);
    if (!c)
        return -1;
    *lt = dp_capture_linktype(c);
    dp_dumper *d = dp_dumper_open(out, *lt, 65535, errbuf);
    CHECK(d != NULL);
    if (!d) {
        dp_capture_close(c);
        return -1;
    }
    dp_frame f;
    int n = 0;
    while (dp_capture_next(c, &f, errbuf) == DP_NEXT_FRAME) {
        CHECK_EQ_INT(dp_dumper_write(d, &f, errbuf), 0);
        n++;
    }
    dp_capture_close(c);
    struct stat st;
    CHECK(stat(out, &st) != 0); /* not there before commit */
    CHECK_EQ_INT(dp_dumper_close(d, 1, errbuf), 0);
    CHECK(stat(out, &st) == 0);
    return n;
}

/* Reads captures a and b side by side: the same n frames (lengths, time,
 * link type, bytes). */
static void check_same_frames(const char *pa, const char *pb, int lt, int n)
{
    dp_capture *a = dp_capture_open_file(pa, errbuf), *b = dp_capture_open_file(pb, errbuf);
    CHECK(a && b);
    if (a && b) {
        CHECK_EQ_INT(dp_capture_linktype(b), lt);
        dp_frame fa, fb;
        int m = 0;
        while (dp_capture_next(a, &fa, errbuf) == DP_NEXT_FRAME) {
            if (dp_capture_next(b, &fb, errbuf) != DP_NEXT_FRAME) {
                CHECK(!"copy is short");
                break;
            }
            CHECK_EQ_INT(fb.caplen, fa.caplen);
            CHECK_EQ_INT(fb.wirelen, fa.wirelen);
            CHECK_NEAR(fb.time, fa.time, 1e-6);
            CHECK_EQ_INT(fb.linktype, fa.linktype);
            CHECK(memcmp(fa.data, fb.data, fa.caplen) == 0);
            m++;
        }
        CHECK_EQ_INT(m, n);
        CHECK_EQ_INT(dp_capture_next(b, &fb, errbuf), DP_NEXT_END);
    }
    dp_capture_close(a);
    dp_capture_close(b);
}

/* Writes one 36-byte raw-IP frame at time 12.9999999 through a dumper with
 * snaplen 20 to path, committed or not. Returns the close's result. */
static int dump_one_frame(const char *path, int commit)
{
    dp_dumper *d = dp_dumper_open(path, 101, 20, errbuf);
    CHECK(d != NULL);
    if (!d)
        return -1;
    uint8_t fr[64];
    dp_frame g = {0};
    g.data = fr;
    g.caplen = (uint32_t)make_frame(fr, 101, 0);
    g.wirelen = g.caplen;
    g.time = 12.9999999; /* rounds up into the next second */
    CHECK_EQ_INT(dp_dumper_write(d, &g, errbuf), 0);
    return dp_dumper_close(d, commit, errbuf);
}

/* The dumper: a copy reads back frame for frame; an aborted dump leaves
 * nothing behind; snaplen cuts frames and times round; an unwritable path
 * is an error naming it. */
static void test_dumper(void)
{
    /* 1. a copy of a capture */
    char *src = tmp_path("dsrc.pcap");
    const char *fx = dp_test_shared("iscx-fixture/iscx_skype_chat.pcap");
    if (!fx) {
        CHECK(make_pcap(src, 25) > 0);
        fx = src;
    }
    char fxp[1024];
    snprintf(fxp, sizeof fxp, "%s", fx);
    char *out = tmp_path("out.pcap");
    int lt, n = dump_copy(fxp, out, &lt);
    if (n < 0)
        return;
    check_same_frames(fxp, out, lt, n);

    /* 2. abort: nothing left behind, not even a temp file */
    char *out2 = tmp_path("aborted.pcap");
    struct stat st;
    CHECK_EQ_INT(dump_one_frame(out2, 0), 0);
    CHECK(stat(out2, &st) != 0);
    DIR *dir = opendir(dp_test_tmpdir());
    struct dirent *de;
    int tmps = 0;
    while (dir && (de = readdir(dir)))
        tmps += strstr(de->d_name, ".tmp.") != NULL;
    if (dir)
        closedir(dir);
    CHECK_EQ_INT(tmps, 0);

    /* 3. snaplen cuts the frame; the time rounds into the next second */
    char *out3 = tmp_path("snap.pcap");
    CHECK_EQ_INT(dump_one_frame(out3, 1), 0);
    dp_capture *c = dp_capture_open_file(out3, errbuf);
    CHECK(c != NULL);
    if (c) {
        dp_frame f;
        CHECK_EQ_INT(dp_capture_linktype(c), 101);
        CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_FRAME);
        CHECK_EQ_INT(f.caplen, 20);
        CHECK_EQ_INT(f.wirelen, 36);
        CHECK_NEAR(f.time, 13.0, 1e-9);
        dp_capture_close(c);
    }

    /* 4. unwritable place */
    dp_dumper *d = dp_dumper_open("/nonexistent-dir/x.pcap", 1, 65535, errbuf);
    CHECK(d == NULL);
    CHECK_STR_CONTAINS(errbuf, "/nonexistent-dir/x.pcap");
}

/* ---- (e) live capture on loopback ------------------------------------------ */
static void *breaker(void *arg)
{
    usleep(100000);
    dp_capture_break((dp_capture *)arg);
    return NULL;
}

static void test_live(void)
{
    dp_capture *c = dp_capture_open_live("lo", 100, errbuf);
    if (!c)
        SKIP("cannot open lo for capture: %s", errbuf);
    CHECK_EQ_INT(dp_capture_set_filter(c, "udp and port 45999 and (", errbuf), -1);
    CHECK_STR_CONTAINS(errbuf, "bad filter");
    CHECK_STR_CONTAINS(errbuf, "lo");
    CHECK_EQ_INT(dp_capture_set_filter(c, "udp and dst port 45999", errbuf), 0);
    CHECK_EQ_INT(dp_capture_linktype(c), 1);

    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(45999);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char msg[] = "deeppacket live test";
    CHECK(sendto(s, msg, sizeof msg, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)sizeof msg);
    close(s);
    dp_frame f;
    int found = 0, timeouts = 0;
    for (int i = 0; i < 50 && !found; i++) {
        dp_next rc = dp_capture_next(c, &f, errbuf);
        if (rc == DP_NEXT_TIMEOUT) {
            timeouts++;
            continue;
        }
        CHECK_EQ_INT(rc, DP_NEXT_FRAME);
        if (rc != DP_NEXT_FRAME)
            break;
        uint8_t vec[DP_VEC_LEN];
        dp_pkt_info info;
        if (dp_packet_transform(f.linktype, f.data, f.caplen, vec, &info) == DP_KEEP &&
            info.dport == 45999) {
            found = 1;
            CHECK_EQ_INT(info.payload_len, sizeof msg);
            CHECK(memcmp(vec + 40, msg, sizeof msg) == 0); /* after 20 + 8 + 12 */
        }
    }
    CHECK(found);
    /* a read with nothing to see times out */
    dp_next rc = dp_capture_next(c, &f, errbuf);
    CHECK(rc == DP_NEXT_TIMEOUT || rc == DP_NEXT_FRAME);
    uint64_t rx, drop;
    dp_capture_stats(c, &rx, &drop);
    CHECK(rx >= 1);
    dp_capture_break(c);
    CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_BREAK);
    /* the break is used up: the next read is an ordinary timeout */
    rc = dp_capture_next(c, &f, errbuf);
    CHECK(rc == DP_NEXT_TIMEOUT || rc == DP_NEXT_FRAME);
    /* a break from another thread wakes a blocked read at once */
    dp_capture_close(c);
    c = dp_capture_open_live("lo", 5000, errbuf);
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_EQ_INT(dp_capture_set_filter(c, "udp and dst port 45998", errbuf), 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, breaker, c) == 0);
    double t0 = dp_now();
    CHECK_EQ_INT(dp_capture_next(c, &f, errbuf), DP_NEXT_BREAK);
    CHECK(dp_now() - t0 < 2.0);
    pthread_join(th, NULL);
    dp_capture_close(c);

    c = dp_capture_open_live("no-such-interface-xyz", 100, errbuf);
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(errbuf, "no-such-interface-xyz");
}

/* Link type names come from libpcap (the numbers the parser uses, raw IP
 * as DLT_RAW), and the user-reserved range has its own. */
static void test_linktype_names(void)
{
    CHECK(dp_capture_linktype_name(1) && !strcmp(dp_capture_linktype_name(1), "EN10MB"));
    CHECK(dp_capture_linktype_name(101) && !strcmp(dp_capture_linktype_name(101), "RAW"));
    CHECK(dp_capture_linktype_name(105) && !strcmp(dp_capture_linktype_name(105), "IEEE802_11"));
    CHECK(dp_capture_linktype_name(276) && !strcmp(dp_capture_linktype_name(276), "LINUX_SLL2"));
    CHECK(dp_capture_linktype_name(263) && !strcmp(dp_capture_linktype_name(263), "WATTSTOPPER_DLM"));
    CHECK(dp_capture_linktype_name(147) && !strcmp(dp_capture_linktype_name(147), "USER0"));
    CHECK(dp_capture_linktype_name(162) && !strcmp(dp_capture_linktype_name(162), "USER15"));
    CHECK(dp_capture_linktype_name(99999) == NULL);
    char d[64];
    dp_capture_linktype_desc(105, d, sizeof d);
    CHECK(!strcmp(d, "IEEE802_11 (105)"));
    dp_capture_linktype_desc(99999, d, sizeof d);
    CHECK(!strcmp(d, "99999"));
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--gen-ndpi-counts"))
        return gen_ndpi_counts();
    dp_test_prog = "test_capture";
    DP_RUN(test_linktype_names);
    DP_RUN(test_golden);
    DP_RUN(test_ndpi_counts);
    DP_RUN(test_bad_input);
    DP_RUN(test_timestamps);
    DP_RUN(test_pcapng_interfaces);
    DP_RUN(test_pcapng_raw_interfaces);
    DP_RUN(test_stream_stall);
    DP_RUN(test_dumper);
    DP_RUN(test_live);
    return dp_test_end();
}
