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
 * seconds), pcapng, or not a capture at all: for regular files (callers
 * leave streams to dp_capture_open_file); anything else, also a file
 * replaced by a FIFO meanwhile, is DP_PROBE_ERROR at once, never a wait for
 * a writer. On DP_PROBE_ERROR errno holds the cause (EISDIR for a folder,
 * EINVAL for another file type). */
dp_probe dp_capture_probe(const char *path, char *errbuf);

/* Opens a capture file for reading. NULL with a message naming the file on
 * failure (not a capture, unreadable, bad header). "-" is standard input;
 * a FIFO, a pipe (/dev/stdin) or a character device is read as a stream:
 * the format is recognised by libpcap from the stream itself (nothing is
 * consumed by a probe), opening does not block waiting for a writer, and
 * every wait for data (open and read) gives up when dp_capture_interrupt
 * was called or dp_capture_break on the capture (dp_capture_next then
 * returns DP_NEXT_BREAK). On failure errno holds the system's cause
 * (EACCES, EMFILE, ENOMEM, EIO, ...), or 0 when the file's content is the
 * problem (no capture magic, a bad header): dp_errno_exhausted tells a
 * failure of the machine's resources from one of the file. */
dp_capture *dp_capture_open_file(const char *path, char *errbuf);

/* 1 when path is "-" or names something other than a regular file or a
 * directory (FIFO, pipe, character device, socket): a stream that
 * dp_capture_probe must not read (that would block or eat the magic). */
int dp_capture_is_stream(const char *path);

/* A stream opened by dp_capture_open_file (no effect on files and live
 * captures): when its writer has sent nothing for ms milliseconds between
 * two records, dp_capture_next returns DP_NEXT_TIMEOUT instead of waiting
 * on, so that the caller can hand out what it holds back (a partial batch)
 * while the stream stalls. ms 0 (the default): wait for the next record. A
 * stall in the middle of a record is waited out. */
void dp_capture_set_stall_timeout(dp_capture *c, int ms);

/* Async-signal-safe: makes every wait for stream data of this process (a
 * FIFO's first writer, the next bytes of a pipe) give up from now on; for
 * signal handlers of commands that read captures from pipes. */
void dp_capture_interrupt(void);

/* Options of a live capture. snaplen: bytes kept per frame (the transform
 * needs the link header and 1500 bytes: DP_LIVE_SNAPLEN). buffer_mb: the
 * kernel ring buffer in MB (libpcap's default, 2 MB in immediate mode, held
 * about 32 frames at snaplen 65535: most packets of a burst were dropped;
 * 128 MB keeps 20,000 packets/s whole on `lo` while the model works through
 * the first packets of 100 new flows on a loaded two-core machine). */
typedef struct dp_live_opts {
    int snaplen;
    int buffer_mb;
} dp_live_opts;
#define DP_LIVE_SNAPLEN 2048
#define DP_LIVE_BUFFER_MB 128

/* Opens a live interface (promiscuous off; frames reach the reader at most
 * 10 ms after they arrive; read timeout timeout_ms so that callers can
 * notice Ctrl-C and idle timers) with the options o (NULL: snaplen
 * DP_LIVE_SNAPLEN, buffer DP_LIVE_BUFFER_MB). */
dp_capture *dp_capture_open_live_opts(const char *iface, int timeout_ms, const dp_live_opts *o,
                                      char *errbuf);
/* dp_capture_open_live_opts with the default options. */
dp_capture *dp_capture_open_live(const char *iface, int timeout_ms, char *errbuf);

/* Applies a BPF filter (pcap-filter syntax), compiled for the capture's
 * link type: in the kernel for a live capture; by dp_capture_next for a
 * file, which skips the frames it rejects (counted, dp_capture_filtered)
 * and keeps numbering frames as they are in the file (f->index), as
 * tcpdump -r does. A second call replaces the filter. -1 with a message
 * naming the capture, the filter, the link type and libpcap's complaint
 * (bad syntax, or a filter the link type cannot match, e.g. `ether host`
 * on raw IP). */
int dp_capture_set_filter(dp_capture *c, const char *bpf, char *errbuf);

/* Checks a filter's syntax (compiled for Ethernet) before any capture is
 * opened; 0, or -1 with libpcap's message. */
int dp_capture_check_filter(const char *bpf, char *errbuf);

/* Frames of a file that the filter left out so far (0 without a filter
 * and for live captures, whose kernel filter does not count them). */
uint64_t dp_capture_filtered(const dp_capture *c);

/* What dp_capture_next did. */
typedef enum dp_next {
    DP_NEXT_ERROR = -1,  /* a read error (truncated or corrupt file: the frames
                          * returned so far are good; errbuf names the file and
                          * the problem); every later call fails the same way */
    DP_NEXT_END = 0,     /* end of file */
    DP_NEXT_FRAME = 1,   /* *f holds the next frame */
    DP_NEXT_TIMEOUT = 2, /* live read timeout, or a stream's stall timeout
                          * (dp_capture_set_stall_timeout): no frame, try again */
    DP_NEXT_BREAK = 3,   /* interrupted by dp_capture_break or dp_capture_interrupt */
} dp_next;

/* Reads the next frame; see dp_next. */
dp_next dp_capture_next(dp_capture *c, dp_frame *f, char *errbuf);
/* After DP_NEXT_ERROR: the errno of the failed read or allocation (ENOMEM
 * when libpcap could not grow its buffer, EIO, ...), 0 when the file's
 * content is the problem (truncated, corrupt) or nothing failed. */
int dp_capture_error_errno(const dp_capture *c);

/* Link type of the capture (first interface for pcapng). */
int dp_capture_linktype(const dp_capture *c);
/* libpcap's name of a link type (the parser's number, see
 * packet/dp_linktype.h): "EN10MB", "IEEE802_11", "USER0", ...; NULL when
 * libpcap has none. Thread-safe. */
const char *dp_capture_linktype_name(int linktype);
/* "NAME (number)", or "number" when it has no name, into out (cap bytes). */
void dp_capture_linktype_desc(int linktype, char *out, size_t cap);

/* Makes a blocked dp_capture_next return DP_NEXT_BREAK (async-signal-safe). */
void dp_capture_break(dp_capture *c);

/* Packets received/dropped by the kernel for a live capture (0 otherwise);
 * dropped counts the buffer's drops and the interface's (ps_drop +
 * ps_ifdrop). */
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
/* The descriptor of the file being written (its temporary name). */
int dp_dumper_fd(dp_dumper *d);
int dp_dumper_close(dp_dumper *d, int commit, char *errbuf);

#endif
