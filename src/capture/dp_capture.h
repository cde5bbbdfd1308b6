/* dp_capture: the only module that touches libpcap. Reads pcap and pcapng
 * files (recognised by content, not by extension), live interfaces, and
 * writes pcap files. Streaming: memory does not grow with the capture.
 */
#ifndef DP_CAPTURE_H
#define DP_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "util/dp_util.h"

typedef struct dp_capture dp_capture;

/* One frame as read: valid until the next dp_capture_next or close. */
typedef struct dp_frame {
    const uint8_t *data;
    uint32_t caplen;    /* bytes captured (data holds exactly these) */
    uint32_t wirelen;   /* original length on the wire */
    double time;        /* seconds since the epoch */
    int linktype;       /* LINKTYPE_* of this frame's interface */
    uint64_t index;     /* 0-based frame number in this capture */
} dp_frame;

/* Result of dp_capture_probe. */
typedef enum {
    DP_PROBE_PCAP = 1,
    DP_PROBE_PCAPNG = 2,
    DP_PROBE_NOT_CAPTURE = 0,   /* readable, but no capture magic */
    DP_PROBE_ERROR = -1         /* could not open/read (errbuf says why) */
} dp_probe;

/* Looks at the first bytes of a file: pcap (any byte order, micro or nano
 * seconds), pcapng, or not a capture at all. */
dp_probe dp_capture_probe(const char *path, char *errbuf);

/* Opens a capture file for reading. NULL with a message naming the file on
 * failure (not a capture, unreadable, bad header). */
dp_capture *dp_capture_open_file(const char *path, char *errbuf);

/* Opens a live interface (promiscuous off, snaplen 65535, immediate mode,
 * read timeout timeout_ms so that callers can notice Ctrl-C and idle
 * timers). */
dp_capture *dp_capture_open_live(const char *iface, int timeout_ms, char *errbuf);

/* Applies a BPF filter (pcap-filter syntax). -1 with libpcap's message. */
int dp_capture_set_filter(dp_capture *c, const char *bpf, char *errbuf);

/* Reads the next frame. Returns 1 with *f filled, 0 at end of file,
 * 2 on a live read timeout (no frame, try again), 3 when interrupted by
 * dp_capture_break, -1 on a read error (truncated or corrupt file: the
 * frames returned so far are good; errbuf names the file and the problem). */
int dp_capture_next(dp_capture *c, dp_frame *f, char *errbuf);

/* Link type of the capture (first interface for pcapng). */
int dp_capture_linktype(const dp_capture *c);

/* Makes a blocked dp_capture_next return 3 (async-signal-safe). */
void dp_capture_break(dp_capture *c);

/* Packets received/dropped by the kernel for a live capture (0 otherwise). */
void dp_capture_stats(dp_capture *c, uint64_t *received, uint64_t *dropped);

void dp_capture_close(dp_capture *c);

/* ---- writing --------------------------------------------------------------- */
typedef struct dp_dumper dp_dumper;

/* Creates a pcap file for frames of the given link type through dp_afile
 * (dp_util.h): "-", a FIFO or a device is written through; a symlink is
 * followed. live 0: a regular file appears under path only at
 * dp_dumper_close with commit = 1 (atomic). live 1: a regular file is
 * written in place and flushed after every frame, so that after kill -9 it
 * holds every frame written (at most the last one cut short).
 * dp_dumper_open is dp_dumper_open_live with live 0. */
dp_dumper *dp_dumper_open(const char *path, int linktype, int snaplen, char *errbuf);
dp_dumper *dp_dumper_open_live(const char *path, int linktype, int snaplen, int live, char *errbuf);
int dp_dumper_write(dp_dumper *d, const dp_frame *f, char *errbuf);
int dp_dumper_close(dp_dumper *d, int commit, char *errbuf);

#endif
