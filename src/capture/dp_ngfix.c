/* dp_ngfix: pcapng interface link types as libpcap compares them (see
 * dp_ngfix.h). A buffer of the input, and a walk over its block headers:
 * each is parsed once its first 12 bytes are buffered (type, length, and
 * the SHB's byte-order magic or the IDB's link type), and no byte of a
 * header is handed out before that. */
#include "capture/dp_ngfix.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "packet/dp_linktype.h"

#define NGFIX_BUF (256 * 1024)
#define NG_HDR 12            /* bytes of a block header parsed here */
#define NG_SHB 0x0a0d0d0au   /* section header block (the same in both byte orders) */
#define NG_IDB 1u            /* interface description block */

struct dp_ngfix {
    dp_ngfix_read_fn rd;
    void *ctx;
    uint8_t *buf;
    size_t beg, end;  /* buffered, not yet handed out: buf[beg, end) */
    uint64_t pos;     /* input offset of buf[beg] */
    uint64_t next;    /* input offset of the next block header to parse */
    uint64_t pkt_end; /* input offset of the end of the last packet block parsed */
    int parsing;      /* 0: passing bytes on unchanged (not pcapng, or lengths that lie) */
    int big;          /* the section is big-endian */
    int idbs;         /* IDBs seen in the file (libpcap takes the capture's link type from the first) */
    int eof;
};

dp_ngfix *dp_ngfix_new(dp_ngfix_read_fn rd, void *ctx)
{
    dp_ngfix *g = calloc(1, sizeof *g);
    if (!g || !(g->buf = malloc(NGFIX_BUF))) {
        free(g);
        return NULL;
    }
    g->rd = rd;
    g->ctx = ctx;
    g->parsing = 1;
    return g;
}

void dp_ngfix_free(dp_ngfix *g)
{
    if (g)
        free(g->buf);
    free(g);
}

int dp_ngfix_record_ahead(const dp_ngfix *g, size_t unread)
{
    if (!g->parsing) /* a pcap stream: every record is a frame */
        return unread > 0 || g->end > g->beg;
    return g->pkt_end > g->pos - unread;
}

static uint32_t rd32(const uint8_t *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* One block header h (NG_HDR bytes, writable) at input offset g->next:
 * a new section's byte order, the link type of an IDB after the file's
 * first rewritten (in a later section too: libpcap compares it with the
 * first section's); moves
 * g->next past the block, or stops parsing when the header makes no
 * sense (libpcap reports that). */
static void parse_header(dp_ngfix *g, uint8_t *h)
{
    uint32_t type = rd32(h, 1);
    if (type == NG_SHB) {
        uint32_t magic = rd32(h + 8, 1);
        if (magic != 0x1a2b3c4du && magic != 0x4d3c2b1au) {
            g->parsing = 0;
            return;
        }
        g->big = magic == 0x1a2b3c4du;
    } else if (g->next == 0) {
        g->parsing = 0; /* not pcapng: a pcap stream */
        return;
    }
    uint32_t len = rd32(h + 4, g->big);
    if (len < NG_HDR || len % 4) {
        g->parsing = 0;
        return;
    }
    uint32_t btype = rd32(h, g->big);
    if (btype == 2 || btype == 3 || btype == 6) /* packet, simple packet, enhanced packet */
        g->pkt_end = g->next + len;
    if (btype == NG_IDB && g->idbs++ > 0) {
        int lt = g->big ? h[8] << 8 | h[9] : h[9] << 8 | h[8];
        int dlt = dp_linktype_to_dlt(lt);
        if (dlt != lt && dlt >= 0 && dlt <= 0xffff) {
            h[8] = (uint8_t)(g->big ? dlt >> 8 : dlt);
            h[9] = (uint8_t)(g->big ? dlt : dlt >> 8);
        }
    }
    g->next += len;
}

/* Parses every block header wholly buffered; returns how many buffered
 * bytes may be handed out (all but a header not yet whole). */
static size_t parse_buffered(dp_ngfix *g)
{
    size_t have = g->end - g->beg;
    while (g->parsing && g->next + NG_HDR <= g->pos + have)
        parse_header(g, g->buf + g->beg + (size_t)(g->next - g->pos));
    if (g->parsing && !g->eof && g->next < g->pos + have)
        return (size_t)(g->next - g->pos);
    return have;
}

/* Reads more input behind what is buffered. 0, or -1 + errno. */
static int fill(dp_ngfix *g)
{
    if (g->beg > 0) {
        memmove(g->buf, g->buf + g->beg, g->end - g->beg);
        g->end -= g->beg;
        g->beg = 0;
    }
    ssize_t k = g->rd(g->ctx, (char *)g->buf + g->end, NGFIX_BUF - g->end);
    if (k < 0)
        return -1;
    if (k == 0)
        g->eof = 1;
    g->end += (size_t)k;
    return 0;
}

ssize_t dp_ngfix_read(dp_ngfix *g, char *buf, size_t n)
{
    size_t ready;
    while ((ready = parse_buffered(g)) == 0 && !g->eof)
        if (fill(g) < 0)
            return -1;
    if (ready > n)
        ready = n;
    memcpy(buf, g->buf + g->beg, ready);
    g->beg += ready;
    g->pos += ready;
    return (ssize_t)ready;
}
