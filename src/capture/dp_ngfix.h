/* dp_ngfix: the bytes of a pcapng file on their way to libpcap, with the
 * link type of every interface after the file's first (in any section)
 * written as libpcap's DLT_ value.
 *
 * libpcap 1.10 checks each interface description block (IDB) after the
 * first against the capture's link type, which it keeps as a DLT_ value
 * (the first IDB's LINKTYPE_ converted), but compares the IDB's LINKTYPE_
 * value with it without converting: a second raw-IP interface
 * (LINKTYPE_RAW 101, DLT_RAW 12 on Linux) fails with "an interface has a
 * type 101 different from the type of the first interface", and every
 * frame after it is lost (dumpcap -i tun0 -i wg0). Written as 12, the IDB
 * passes, and the capture's link type is what it was. Nothing else is
 * changed; interfaces of really different link types still fail in
 * libpcap. Input that is not pcapng (a pcap stream) or whose block lengths
 * do not parse is passed on unchanged from there on, for libpcap to read
 * or report.
 */
#ifndef DP_NGFIX_H
#define DP_NGFIX_H

#include <stddef.h>
#include <sys/types.h>

/* Reads up to n bytes into buf: > 0 bytes read, 0 at the end, -1 + errno. */
typedef ssize_t (*dp_ngfix_read_fn)(void *ctx, char *buf, size_t n);

typedef struct dp_ngfix dp_ngfix;

/* A reader over rd(ctx, ...) (not owned); NULL when out of memory. */
dp_ngfix *dp_ngfix_new(dp_ngfix_read_fn rd, void *ctx);
/* Reads up to n bytes of the rewritten input: > 0, 0 at the end, or -1 +
 * errno when rd failed (a later call tries rd again). */
ssize_t dp_ngfix_read(dp_ngfix *g, char *buf, size_t n);
/* 1 when the reader, which holds `unread` bytes handed out but not read
 * yet, has the start of a frame's record before it in what was read from
 * rd (pcapng: a packet block whose header was seen; pcap: any byte): it
 * gets a frame, or part of one, without waiting for rd. 0 when reading on
 * waits for rd before the next frame (pcapng: only blocks that are no
 * packet, e.g. interface statistics, are left). */
int dp_ngfix_record_ahead(const dp_ngfix *g, size_t unread);
void dp_ngfix_free(dp_ngfix *g);

#endif
