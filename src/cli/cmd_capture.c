/* deeppacket capture: record live traffic to a pcap file.
 *
 *   deeppacket capture -i IFACE -w OUT.pcap [-f BPF] [-c COUNT] [-G SECONDS]
 *       [--snaplen N] [--buffer-size MB] [--user NAME]
 *
 * Stops after COUNT frames, after SECONDS seconds, or on SIGINT/SIGTERM; the
 * file appears (atomically, via dp_dumper) only once the capture has ended
 * cleanly. When it is ready to record it prints "listening on IFACE" on
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
            "  -i IFACE     live interface to record (e.g. lo, eth0)\n"
            "  -w OUT.pcap  pcap file to write, flushed per frame (a FIFO, device or - is\n"
            "               written through; a symlink is followed)\n"
            "  -f BPF       capture filter (pcap-filter syntax)\n"
            "  -c COUNT     stop after COUNT frames\n"
            "  -G SECONDS   stop after SECONDS seconds\n"
            "  --snaplen N  bytes kept per frame (65535)\n"
            "  --buffer-size MB  kernel capture buffer (%d MB)\n"
            "  --user NAME  user to become once the interface and the file are open\n"
            "               (default when started as root: %s; root keeps root)\n"
            "Stops on COUNT, SECONDS, Ctrl-C or SIGTERM; prints a summary on stderr.\n",
            DP_LIVE_BUFFER_MB, DP_PRIVDROP_DEFAULT_USER);
}

int cmd_capture(int argc, char **argv)
{
    const char *iface = NULL, *out = NULL, *bpf = NULL, *user = NULL;
    dp_live_opts lo = {65535, DP_LIVE_BUFFER_MB}; /* whole frames: it records */
    long count = 0;
    double seconds = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return dp_cli_usage_error("capture", "unknown option or missing value: %s", a);
        const char *v = argv[++i];
        if (!strcmp(a, "-i"))
            iface = v;
        else if (!strcmp(a, "-w"))
            out = v;
        else if (!strcmp(a, "-f"))
            bpf = v;
        else if (!strcmp(a, "-c")) {
            if (dp_cli_parse_int(v, 1, 0x7fffffffffffL, &count) < 0)
                return dp_cli_usage_error("capture", "-c wants a positive count, not '%s'", v);
        } else if (!strcmp(a, "--snaplen")) {
            long n;
            if (dp_cli_parse_int(v, 128, 262144, &n) < 0)
                return dp_cli_usage_error("capture", "--snaplen wants bytes in [128, 262144], not '%s'", v);
            lo.snaplen = (int)n;
        } else if (!strcmp(a, "--buffer-size")) {
            long n;
            if (dp_cli_parse_int(v, 1, 2047, &n) < 0)
                return dp_cli_usage_error("capture", "--buffer-size wants MB in [1, 2047], not '%s'", v);
            lo.buffer_mb = (int)n;
        } else if (!strcmp(a, "--user")) {
            user = v;
        } else if (!strcmp(a, "-G")) {
            if (dp_cli_parse_double(v, 0.001, 1e9, &seconds) < 0)
                return dp_cli_usage_error("capture", "-G wants a positive number of seconds, not '%s'", v);
        } else
            return dp_cli_usage_error("capture", "unknown option %s (see --help)", a);
    }
    if (!iface || !out)
        return dp_cli_usage_error("capture", "-i IFACE and -w OUT.pcap are required (see --help)");

    char errbuf[DP_ERRBUF_SIZE] = "";
    dp_privdrop pd;
    if (dp_privdrop_plan(&pd, user, errbuf) < 0) {
        fprintf(stderr, "deeppacket capture: %s\n", errbuf);
        return 1;
    }
    dp_capture *c = dp_capture_open_live_opts(iface, 100, &lo, errbuf);
    if (!c) {
        fprintf(stderr, "deeppacket capture: %s\n", errbuf);
        return 1;
    }
    if (bpf && dp_capture_set_filter(c, bpf, errbuf) < 0) {
        fprintf(stderr, "deeppacket capture: bad filter '%s': %s\n", bpf, errbuf);
        dp_capture_close(c);
        return 1;
    }
    dp_dumper *d = dp_dumper_open_live(out, dp_capture_linktype(c), lo.snaplen, 1, errbuf);
    if (!d) {
        fprintf(stderr, "deeppacket capture: %s\n", errbuf);
        dp_capture_close(c);
        return 1;
    }
    /* the interface and the file (written in place) are open: root is no longer needed */
    if (dp_privdrop_apply(&pd, errbuf) < 0) {
        fprintf(stderr, "deeppacket capture: %s; stopping\n", errbuf);
        dp_dumper_close(d, 0, errbuf);
        dp_capture_close(c);
        return 1;
    }

    dp_cli_signals_install();
    dp_cli_signals_watch(c);

    fprintf(stderr, "deeppacket capture: listening on %s%s%s\n", iface, bpf ? ", filter " : "",
            bpf ? bpf : "");
    fflush(stderr);

    double t0 = dp_now();
    uint64_t written = 0, bytes = 0;
    int rc = 0;
    while (!dp_cli_stop) {
        if (count && written >= (uint64_t)count)
            break;
        if (seconds > 0 && dp_now() - t0 >= seconds)
            break;
        dp_frame f;
        int r = dp_capture_next(c, &f, errbuf);
        if (r == 1) {
            if (dp_dumper_write(d, &f, errbuf) < 0) {
                fprintf(stderr, "deeppacket capture: %s\n", errbuf);
                rc = 1;
                break;
            }
            written++;
            bytes += f.caplen;
        } else if (r == 2 || (r == 3 && !dp_cli_stop)) {
            continue; /* read timeout: check the count and the time */
        } else if (r == 3 || r == 0) {
            break;
        } else {
            fprintf(stderr, "deeppacket capture: %s\n", errbuf);
            rc = 1;
            break;
        }
    }
    dp_cli_signals_restore();

    uint64_t recv = 0, drop = 0;
    dp_capture_stats(c, &recv, &drop);
    dp_capture_close(c);
    if (dp_dumper_close(d, rc == 0, errbuf) < 0) {
        fprintf(stderr, "deeppacket capture: %s\n", errbuf);
        rc = 1;
    }
    double dt = dp_now() - t0;
    fprintf(stderr,
            "deeppacket capture: %llu frames (%llu bytes) written to %s in %.1f s; "
            "kernel: %llu received, %llu dropped\n",
            (unsigned long long)written, (unsigned long long)bytes, rc == 0 ? out : "(nothing)",
            dt, (unsigned long long)recv, (unsigned long long)drop);
    return rc;
}
