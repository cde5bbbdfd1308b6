/* deeppacket merge -t DATASET_DIR SHARD_DIR... */
#include <stdio.h>
#include <string.h>

#include "cli/dp_cli.h"
#include "dataset/dp_merge.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deeppacket merge -t DATASET_DIR [-q] SHARD_DIR...\n"
            "\n"
            "Joins the datasets of `preprocess --shard I/N` runs (all N of them, any order)\n"
            "into one dataset in DATASET_DIR: files, flows and provenance renumbered, every\n"
            "file byte-identical to preprocess of the whole capture folder on one machine.\n"
            "Written like preprocess (summary.json last; a killed merge resumes on rerun).\n"
            "\n"
            "  -t, --target DIR     dataset folder to write (created if missing)\n"
            "  -q, --quiet          no summary tables, only the closing line\n"
            "  -h, --help           this help\n");
}

static void warn(void *ctx, const char *file, const char *msg, int is_note)
{
    (void)ctx;
    fprintf(stderr, "deeppacket merge: %s: %s: %s\n", is_note ? "note" : "warning", file, msg);
}

/* The command line of a merge (the shard folders are its operands). */
struct merge_args {
    const char *dst;
    int quiet;
};

/* One option c (dp_cli_getopt's) with its value v into *(struct merge_args *)ctx. */
static int parse_option(int c, const char *v, void *ctx)
{
    struct merge_args *ma = ctx;
    if (c == 't')
        ma->dst = v;
    else
        ma->quiet = 1; /* 'q': getopt knows no other */
    return 0;
}

int cmd_merge(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"target", required_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct merge_args ma = {NULL, 0};
    int help, rc = dp_cli_getopt("merge", argc, argv, "t:q", longopts, parse_option, &ma, &help);
    if (rc)
        return rc;
    if (help) {
        usage(stdout);
        return 0;
    }
    dp_merge_opts o;
    memset(&o, 0, sizeof o);
    o.dst_dir = ma.dst;
    int quiet = ma.quiet;
    if (!o.dst_dir || optind >= argc)
        return dp_cli_usage_error("merge", "-t DATASET_DIR and at least one SHARD_DIR are required (see --help)");
    o.shard_dirs = (const char *const *)argv + optind;
    o.nshards = (size_t)(argc - optind);
    o.report = quiet ? NULL : stdout;
    o.warn = warn;
    dp_preprocess_stats st;
    char errbuf[DP_ERRBUF_SIZE];
    if (dp_merge_run(&o, &st, errbuf) != 0) {
        fprintf(stderr, "deeppacket merge: %s\n", errbuf);
        return 1;
    }
    if (st.up_to_date)
        printf("deeppacket merge: %s is complete and up to date (%llu packets from %zu captures); nothing "
               "to do\n", o.dst_dir, (unsigned long long)st.packets, st.captures);
    else
        printf("deeppacket merge: %llu packets of %zu captures from %zu shards (%zu captures merged, %zu "
               "resumed from an earlier run) in %.2f s -> %s\n", (unsigned long long)st.packets, st.captures,
               o.nshards, st.processed, st.reused, st.seconds, o.dst_dir);
    return 0;
}
