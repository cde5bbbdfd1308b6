/* deeppacket preprocess -s CAPTURE_DIR -t DATASET_DIR [--labels TABLE] [-f FILTER] [-j THREADS]
 *                       [--shard I/N] [-n] [-q] */
#include <stdio.h>
#include <string.h>

#include "cli/dp_cli.h"
#include "dataset/dp_preprocess.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deeppacket preprocess -s CAPTURE_DIR -t DATASET_DIR [--labels TABLE] [-f FILTER]\n"
            "                             [-j THREADS] [--shard I/N] [-n] [-q]\n"
            "\n"
            "Turns every pcap/pcapng capture under CAPTURE_DIR (recursively) into labelled\n"
            "1500-byte packet vectors in DATASET_DIR (vectors.npy, app.npy, traffic.npy,\n"
            "meta.npy, files.tsv, labels.tsv, summary.md, summary.json).\n"
            "\n"
            "  -s, --source DIR     folder of captures (recognised by content, not by name)\n"
            "  -t, --target DIR     dataset folder to write (created if missing)\n"
            "  -l, --labels TABLE   label table (TSV: prefix app_id app_name traffic_id\n"
            "                       traffic_name [filter: a BPF filter for that row's captures]);\n"
            "                       default: the built-in ISCX VPN-nonVPN table\n"
            "  -f, --filter BPF     only frames that pass this filter (pcap-filter syntax, as\n"
            "                       tcpdump -r reads them), e.g. 'not udp port 61009' to drop\n"
            "                       a capture's background; frame numbers stay the file's\n"
            "  -j, --threads N      captures read in parallel (default: number of CPUs); a\n"
            "                       capture of 8 MB or more is transformed by the idle ones\n"
            "      --shard I/N      only the files whose path relative to CAPTURE_DIR hashes\n"
            "                       (FNV-1a 64, modulo N) to I, 0 <= I < N; join the N shard\n"
            "                       datasets with `deeppacket merge` (same result as one run)\n"
            "  -n, --dry-run        only list the captures with their labels and filters (and\n"
            "                       check the filters); nothing is read or written, -t optional\n"
            "  -q, --quiet          no progress line and no summary tables, only the closing\n"
            "                       line (warnings still shown)\n"
            "  -h, --help           this help\n"
            "\n"
            "A rerun reuses the captures finished by an interrupted run and does nothing\n"
            "when the dataset is complete and no capture changed.\n");
}

/* OpenBLAS (linked for the other commands) starts its thread pool when the
 * program loads, and an idle pool thread spins on sched_yield for about
 * 0.1 s before it sleeps: CPU time that preprocess, which never calls BLAS,
 * would pay for. Weak: absent with another BLAS. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

/* "I/N" with 0 <= I < N <= 65536 into o's shard fields. */
static int parse_shard(const char *s, dp_preprocess_opts *o)
{
    char buf[32];
    const char *slash = strchr(s, '/');
    long i, n;
    if (!slash || (size_t)(slash - s) >= sizeof buf)
        return -1;
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = 0;
    if (dp_cli_parse_int(buf, 0, 65535, &i) != 0 || dp_cli_parse_int(slash + 1, 1, 65536, &n) != 0 || i >= n)
        return -1;
    o->shard_index = (unsigned)i;
    o->shard_count = (unsigned)n;
    return 0;
}

/* The command line of a run: the library's options and -q. */
struct pp_args {
    dp_preprocess_opts *o;
    int quiet;
};

/* One option c (dp_cli_getopt's) with its value into *(struct pp_args *)
 * ctx; 0, or 2 after a usage error. */
static int parse_option(int c, const char *arg, void *ctx)
{
    struct pp_args *pa = ctx;
    dp_preprocess_opts *o = pa->o;
    long j;
    switch (c) {
    case 's': o->src_dir = arg; return 0;
    case 't': o->dst_dir = arg; return 0;
    case 'l': o->labels_path = arg; return 0;
    case 'q': pa->quiet = 1; return 0;
    case 'n': o->dry_run = stdout; return 0;
    case 'f':
        if (!*arg)
            return dp_cli_usage_error("preprocess", "--filter wants a filter expression, not an empty string");
        o->filter = arg;
        return 0;
    case 'j':
        if (dp_cli_parse_int(arg, 1, 1024, &j) != 0)
            return dp_cli_usage_error("preprocess", "-j wants a thread count in 1..1024, not '%s'", arg);
        o->threads = (int)j;
        return 0;
    case 'S':
        if (parse_shard(arg, o) != 0)
            return dp_cli_usage_error("preprocess", "--shard wants I/N with 0 <= I < N <= 65536, not '%s'", arg);
        return 0;
    }
    return dp_cli_usage_error("preprocess", "unknown option (see --help)"); /* not reached */
}

/* Parses argv into o and *quiet; returns 0 (*help set for -h), or 2 after
 * a usage error. */
static int parse_args(int argc, char **argv, dp_preprocess_opts *o, int *quiet, int *help)
{
    static const struct option longopts[] = {
        {"source", required_argument, NULL, 's'}, {"target", required_argument, NULL, 't'},
        {"labels", required_argument, NULL, 'l'}, {"threads", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"shard", required_argument, NULL, 'S'},  {"filter", required_argument, NULL, 'f'},
        {"dry-run", no_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    struct pp_args pa = {o, 0};
    int rc = dp_cli_getopt("preprocess", argc, argv, "s:t:l:f:j:qn", longopts, parse_option, &pa, help);
    *quiet = pa.quiet;
    if (rc || *help || (rc = dp_cli_no_operands("preprocess", argc, argv)))
        return rc;
    if (!o->src_dir || (!o->dst_dir && !o->dry_run))
        return dp_cli_usage_error("preprocess", "-s CAPTURE_DIR and -t DATASET_DIR are required (see --help)");
    return 0;
}

/* The closing line on stdout: nothing to do, or what the run did and how fast. */
static void print_summary(const dp_preprocess_opts *o, const dp_preprocess_stats *st)
{
    if (st->up_to_date) {
        printf("deeppacket preprocess: %s is complete and up to date (%llu packets from %zu "
               "captures); nothing to do\n",
               o->dst_dir, (unsigned long long)st->packets, st->captures);
        return;
    }
    double mb = st->capture_bytes / 1e6;
    double s = st->seconds > 0 ? st->seconds : 1e-9;
    printf("deeppacket preprocess: %llu packets kept of %llu frames from %zu captures "
           "(%.1f MB; %zu read, %zu reused from an earlier run) in %.2f s (reading %.2f s, "
           "merge tail %.2f s) with %d threads: %.0f frames/s, %.0f kept packets/s, %.1f MB/s "
           "-> %s\n",
           (unsigned long long)st->packets, (unsigned long long)st->frames, st->captures, mb,
           st->processed, st->reused, st->seconds, st->seconds_parts, st->seconds_merge,
           st->threads, st->frames / s, st->packets / s, mb / s, o->dst_dir);
}

int cmd_preprocess(int argc, char **argv)
{
    if (blas_thread_shutdown_)
        blas_thread_shutdown_();
    dp_preprocess_opts o;
    dp_preprocess_opts_init(&o);
    int quiet = 0, help = 0, rc = parse_args(argc, argv, &o, &quiet, &help);
    if (rc != 0 || help) {
        if (help)
            usage(stdout);
        return rc;
    }
    o.progress = !quiet;
    o.report = quiet ? NULL : stdout;
    dp_preprocess_stats st;
    char errbuf[DP_ERRBUF_SIZE];
    if (dp_preprocess_run(&o, &st, errbuf) != 0) {
        fprintf(stderr, "deeppacket preprocess: %s\n", errbuf);
        return 1;
    }
    if (!o.dry_run)
        print_summary(&o, &st);
    return 0;
}
