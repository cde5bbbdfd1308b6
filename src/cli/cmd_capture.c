/* deeppacket capture: record live traffic to a pcap file.
 *
 *   deeppacket capture -i IFACE -w OUT.pcap [-f BPF] [-c COUNT] [-G SECONDS]
 *       [--snaplen N] [--buffer-size MB] [--user NAME]
 *
 * Stops after COUNT frames, after SECONDS seconds, on SIGINT/SIGTERM or at
 * the first error; OUT is written in place (or through), flushed per frame
 * (dp_dumper_open_live), so it holds the frames written whatever stopped
 * the capture, and the summary says how many. When it is ready to record it prints "listening on IFACE" on
 * stderr, so that scripts can wait for that line before making traffic.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "capture/dp_capture.h"
#include "cli/dp_cli.h"
#include "util/dp_privdrop.h"
#include "util/dp_util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deeppacket capture -i IFACE -w OUT.pcap [-f BPF] [-c COUNT] [-G SECONDS]\n"
            "           [--snaplen N] [--buffer-size MB] [--user NAME]\n"
            "  -i, --interface IFACE  live interface to record (e.g. lo, eth0)\n"
            "  -w, --write OUT.pcap  pcap file to write, flushed per frame (a FIFO, device or - is\n"
            "               written through; a symlink is followed)\n"
            "  -f, --filter BPF  capture filter (pcap-filter syntax)\n"
            "  -c, --count COUNT  stop after COUNT frames\n"
            "  -G SECONDS   stop after SECONDS seconds\n"
            "  --snaplen N  bytes kept per frame (65535)\n"
            "  --buffer-size MB  kernel capture buffer (%d MB)\n"
            "  --user NAME  user to become once the interface and the file are open\n"
            "               (default when started as root: %s; root keeps root)\n"
            "Stops on COUNT, SECONDS, Ctrl-C or SIGTERM; prints a summary on stderr.\n",
            DP_LIVE_BUFFER_MB, DP_PRIVDROP_DEFAULT_USER);
}

/* The command line of one capture. */
struct cap_args {
    const char *iface, *out, *bpf, *user;
    dp_live_opts lo;
    long count;
    double seconds;
    int help;
};

/* What one capture holds open. */
struct cap_run {
    dp_privdrop pd;
    dp_capture *c;
    dp_dumper *d;
    uint64_t written, bytes;
};

enum { OPT_SNAPLEN = DP_CLI_LONG, OPT_BUFFER, OPT_USER };

/* One option c (dp_cli_getopt's) with its value v into *(struct cap_args *)
 * ctx; 0, or 2 after a usage error naming the option. */
static int parse_option(int c, const char *v, void *ctx)
{
    struct cap_args *ca = ctx;
    long n;
    switch (c) {
    case 'i': ca->iface = v; return 0;
    case 'w': ca->out = v; return 0;
    case 'f': ca->bpf = v; return 0;
    case OPT_USER: ca->user = v; return 0;
    case 'c':
        if (dp_cli_parse_int(v, 1, 0x7fffffffffffL, &ca->count) < 0)
            return dp_cli_usage_error("capture", "-c wants a positive count, not '%s'", v);
        return 0;
    case OPT_SNAPLEN:
        if (dp_cli_parse_int(v, 128, 262144, &n) < 0)
            return dp_cli_usage_error("capture", "--snaplen wants bytes in [128, 262144], not '%s'", v);
        ca->lo.snaplen = (int)n;
        return 0;
    case OPT_BUFFER:
        if (dp_cli_parse_int(v, 1, 2047, &n) < 0)
            return dp_cli_usage_error("capture", "--buffer-size wants MB in [1, 2047], not '%s'", v);
        ca->lo.buffer_mb = (int)n;
        return 0;
    case 'G':
        if (dp_cli_parse_double(v, 0.001, 1e9, &ca->seconds) < 0)
            return dp_cli_usage_error("capture", "-G wants a positive number of seconds, not '%s'", v);
        return 0;
    }
    return dp_cli_usage_error("capture", "unknown option (see --help)"); /* not reached */
}

/* Parses argv into *ca; returns 0 (ca->help set for -h), or 2 after a
 * usage error. */
static int parse_args(int argc, char **argv, struct cap_args *ca)
{
    static const struct option longopts[] = {
        {"interface", required_argument, NULL, 'i'}, {"write", required_argument, NULL, 'w'},
        {"filter", required_argument, NULL, 'f'},    {"count", required_argument, NULL, 'c'},
        {"snaplen", required_argument, NULL, OPT_SNAPLEN},
        {"buffer-size", required_argument, NULL, OPT_BUFFER},
        {"user", required_argument, NULL, OPT_USER}, {"help", no_argument, NULL, DP_CLI_HELP},
        {NULL, 0, NULL, 0},
    };
    int rc = dp_cli_getopt("capture", argc, argv, "i:w:f:c:G:", longopts, parse_option, ca, &ca->help);
    if (rc || ca->help || (rc = dp_cli_no_operands("capture", argc, argv)))
        return rc;
    if (!ca->iface || !ca->out)
        return dp_cli_usage_error("capture", "-i IFACE and -w OUT.pcap are required (see --help)");
    return 0;
}

/* Plans the privilege drop, opens the interface (with its filter) and the
 * output, then drops root. Returns 0, or 1 after a message (what was opened
 * is left in *r). */
static int cap_open(struct cap_run *r, const struct cap_args *ca, char *errbuf)
{
    if (dp_privdrop_plan(&r->pd, ca->user, errbuf) < 0) {
        fprintf(stderr, "deeppacket capture: %s\n", errbuf);
        return 1;
    }
    r->c = dp_capture_open_live_opts(ca->iface, 100, &ca->lo, errbuf);
    if (!r->c) {
        fprintf(stderr, "deeppacket capture: %s\n", errbuf);
        return 1;
    }
    if (ca->bpf && dp_capture_set_filter(r->c, ca->bpf, errbuf) < 0) {
        fprintf(stderr, "deeppacket capture: bad filter '%s': %s\n", ca->bpf, errbuf);
        return 1;
    }
    r->d = dp_dumper_open_live(ca->out, dp_capture_linktype(r->c), ca->lo.snaplen, 1, errbuf);
    if (!r->d) {
        fprintf(stderr, "deeppacket capture: %s\n", errbuf);
        return 1;
    }
    /* the interface and the file (written in place) are open: root is no longer needed */
    if (dp_privdrop_apply(&r->pd, errbuf) < 0) {
        fprintf(stderr, "deeppacket capture: %s; stopping\n", errbuf);
        return 1;
    }
    return 0;
}

/* Writes frames until COUNT, SECONDS, a signal, the end or an error;
 * returns 0, or 1 with the error in errbuf (cap_execute reports it). */
static int record(struct cap_run *r, const struct cap_args *ca, double t0, char *errbuf)
{
    while (!dp_cli_stop) {
        if (ca->count && r->written >= (uint64_t)ca->count)
            break;
        if (ca->seconds > 0 && dp_now() - t0 >= ca->seconds)
            break;
        dp_frame f;
        dp_next n = dp_capture_next(r->c, &f, errbuf);
        if (n == DP_NEXT_FRAME) {
            if (dp_dumper_write(r->d, &f, errbuf) < 0)
                return 1;
            r->written++;
            r->bytes += f.caplen;
        } else if (n == DP_NEXT_TIMEOUT || (n == DP_NEXT_BREAK && !dp_cli_stop)) {
            continue; /* read timeout: check the count and the time */
        } else if (n == DP_NEXT_BREAK || n == DP_NEXT_END) {
            break;
        } else {
            return 1;
        }
    }
    return 0;
}

/* Records under the signal handlers, closes the interface and the file, and
 * prints the summary: the frames written to OUT (there after an error too:
 * it is written in place or through) and the error that stopped the
 * recording, if one did; returns the exit code. */
static int cap_execute(struct cap_run *r, const struct cap_args *ca, char *errbuf)
{
    dp_cli_signals_install();
    dp_cli_signals_watch(r->c);
    fprintf(stderr, "deeppacket capture: listening on %s%s%s\n", ca->iface, ca->bpf ? ", filter " : "",
            ca->bpf ? ca->bpf : "");
    fflush(stderr);

    double t0 = dp_now();
    int rc = record(r, ca, t0, errbuf);
    dp_cli_signals_restore();

    uint64_t recv = 0, drop = 0;
    dp_capture_stats(r->c, &recv, &drop);
    dp_capture_close(r->c);
    r->c = NULL;
    dp_dumper *d = r->d;
    r->d = NULL;
    if (dp_dumper_close(d, rc == 0, rc ? NULL : errbuf) < 0 && rc == 0)
        rc = 1;
    double dt = dp_now() - t0;
    fprintf(stderr,
            "deeppacket capture: %llu frames (%llu bytes) written to %s in %.1f s%s%s; "
            "kernel: %llu received, %llu dropped\n",
            (unsigned long long)r->written, (unsigned long long)r->bytes,
            strcmp(ca->out, "-") ? ca->out : "standard output", dt, rc ? ", then stopped by an error: " : "",
            rc ? errbuf : "", (unsigned long long)recv, (unsigned long long)drop);
    return rc;
}

int cmd_capture(int argc, char **argv)
{
    struct cap_args ca = {.lo = {65535, DP_LIVE_BUFFER_MB}}; /* whole frames: it records */
    int rc = parse_args(argc, argv, &ca);
    if (rc || ca.help) {
        if (ca.help)
            usage(stdout);
        return rc;
    }
    char errbuf[DP_ERRBUF_SIZE] = "";
    struct cap_run r = {0};
    rc = cap_open(&r, &ca, errbuf);
    if (rc == 0)
        rc = cap_execute(&r, &ca, errbuf);
    if (r.d)
        dp_dumper_close(r.d, 0, errbuf);
    dp_capture_close(r.c);
    return rc;
}
