/* deeppacket split: train and test sets per task (see dataset/dp_split.h). */
#include <stdio.h>
#include <string.h>

#include "cli/dp_cli.h"
#include "dataset/dp_split.h"

static void split_usage(FILE *f)
{
    fprintf(f,
            "usage: deeppacket split -s DATASET_DIR -t SPLIT_DIR [options]\n"
            "\n"
            "Creates SPLIT_DIR/{application,traffic}_classification/{train,test} from a\n"
            "preprocessed dataset, under-samples each training set to its smallest class,\n"
            "and writes a data card (data_card.md, data_card.json) per task. The split is\n"
            "built in DIR.tmp.PID and swapped in whole at the end (the other task's folder is\n"
            "kept); DIR.lock stops a second split of DIR.\n"
            "\n"
            "  -s, --source DIR         preprocessed dataset (from deeppacket preprocess)\n"
            "  -t, --target DIR         where to write the split\n"
            "      --test-size X        share of each class's packets in the test set, in\n"
            "                           (0, 1); whole flows/files, so approximately [0.2]\n"
            "      --seed N             random seed [9876]\n"
            "      --by flow|file|packet|time  unit kept on one side: bidirectional flow,\n"
            "                           capture file, or single packet (the reference\n"
            "                           behaviour, which puts flows on both sides); time:\n"
            "                           per class, the flows that start latest go to test,\n"
            "                           the earlier ones to train (needs capture times) [flow]\n"
            "      --time-scope class|capture  --by time: order the flows per class, or per\n"
            "                           capture file within each class (each capture's later\n"
            "                           sessions to test) [class]\n"
            "      --no-under-sampling  keep every training packet\n"
            "      --task app|traffic|all  which task(s) to split [all]\n"
            "  -q, --quiet              do not print the data cards\n"
            "  -h, --help               this help\n");
}

/* The value options of split into o: 0, or the usage error's exit code (2). */
static int parse_value(int ch, const char *v, dp_split_opts *o)
{
    int k;
    switch (ch) {
    case 'z':
        if (dp_cli_parse_double(v, 0, 1, &o->test_size) != 0 || o->test_size <= 0 || o->test_size >= 1)
            return dp_cli_usage_error("split", "--test-size '%s': expected a number in (0, 1)", v);
        return 0;
    case 'S':
        if (dp_cli_parse_u64(v, &o->seed) != 0) /* as train's */
            return dp_cli_usage_error("split", "--seed '%s': expected an integer in [0, 2^64-1]", v);
        return 0;
    case 'b':
        if ((k = dp_split_by_parse(v)) < 0)
            return dp_cli_usage_error("split", "--by '%s': expected flow, file, packet or time", v);
        o->by = (dp_split_by)k;
        return 0;
    case 'C':
        if (strcmp(v, "class") && strcmp(v, "capture"))
            return dp_cli_usage_error("split", "--time-scope '%s': expected class or capture", v);
        o->time_per_capture = !strcmp(v, "capture");
        return 0;
    default: /* 'T' */
        if (!strcmp(v, "all")) {
            o->tasks = (1 << DP_TASK_APP) | (1 << DP_TASK_TRAFFIC);
            return 0;
        }
        if ((k = dp_task_parse(v)) < 0)
            return dp_cli_usage_error("split", "--task '%s': expected app, traffic or all", v);
        o->tasks = 1 << k;
        return 0;
    }
}

/* The command line of a split. */
struct split_args {
    const char *src, *dst;
    dp_split_opts o;
};

/* One option ch (dp_cli_getopt's) with its value v into *(struct
 * split_args *)ctx; 0, or 2 after a usage error. */
static int parse_option(int ch, const char *v, void *ctx)
{
    struct split_args *sa = ctx;
    switch (ch) {
    case 's': sa->src = v; return 0;
    case 't': sa->dst = v; return 0;
    case 'U': sa->o.under_sample = 0; return 0;
    case 'q': sa->o.out = NULL; return 0;
    }
    return parse_value(ch, v, &sa->o); /* 'z', 'S', 'b', 'C', 'T' */
}

int cmd_split(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"source", required_argument, NULL, 's'},
        {"target", required_argument, NULL, 't'},
        {"test-size", required_argument, NULL, 'z'},
        {"seed", required_argument, NULL, 'S'},
        {"by", required_argument, NULL, 'b'},
        {"time-scope", required_argument, NULL, 'C'},
        {"no-under-sampling", no_argument, NULL, 'U'},
        {"task", required_argument, NULL, 'T'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct split_args sa = {.src = NULL};
    dp_split_opts_default(&sa.o);
    sa.o.out = stdout;
    int help, rc = dp_cli_getopt("split", argc, argv, "s:t:q", longopts, parse_option, &sa, &help);
    if (rc || (!help && (rc = dp_cli_no_operands("split", argc, argv))))
        return rc;
    if (help) {
        split_usage(stdout);
        return 0;
    }
    dp_split_opts o = sa.o;
    const char *src = sa.src, *dst = sa.dst;
    if (o.time_per_capture && o.by != DP_SPLIT_BY_TIME)
        return dp_cli_usage_error("split", "--time-scope goes with --by time");
    if (!src || !dst)
        return dp_cli_usage_error("split", "need -s DATASET_DIR and -t SPLIT_DIR (deeppacket split --help)");
    char errbuf[DP_ERRBUF_SIZE];
    if (dp_split_run(src, dst, &o, errbuf) != 0) {
        fprintf(stderr, "deeppacket split: %s\n", errbuf);
        return 1;
    }
    return 0;
}
