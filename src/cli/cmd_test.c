/* deeppacket test: evaluate a model on a test set (spec section 6).
 *
 *   deeppacket test -d SPLIT_DIR/<task>/test|DATASET_DIR -m MODEL [-o REPORT_DIR]
 *                   [-j THREADS] [--batch-size 256] [--save-logprobs] [--precision P]
 *                   [--train-set DIR [--dup-packets 10]] [-q]
 *
 * A flow model (train --model gbt|flow) is evaluated per flow instead
 * (dp_flowtest): flow_report.*, flow_confusion.* and flows.npy.
 *
 * Predicts every packet of the test set in batches, prints the per-class
 * markdown table on stdout and writes the report files (see
 * docs/report-format.md) into REPORT_DIR (default: MODEL.report):
 *   report.md, report.json, confusion.csv, confusion.pdf, confusion.png
 *   flow_report.md, ... (the same at flow level, when the test set has
 *                        meta.npy: one verdict per flow)
 *   predictions.npy   int16 [N]    predicted class of each test packet
 *   flows.npy         struct [F]   flow id, true label, verdict, packets
 *                                  (sorted by flow id)
 *   logprobs.npy      float32 [N, C]  only with --save-logprobs (packet models)
 *   flow_logprobs.npy float32 [F, C]  flow models with --save-logprobs, flows.npy order
 *
 * The evaluation is the library's (eval/dp_evalrun.h): this file parses the
 * arguments, calls dp_evalrun and prints where the report went.
 */
#include <stdio.h>
#include <string.h>

#include "cli/dp_cli.h"
#include "dataset/dp_seqdup.h"
#include "eval/dp_eval.h"
#include "eval/dp_evalrun.h"
#include "nn/dp_nn.h"
#include "util/dp_util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deeppacket test -d TEST_DIR -m MODEL [-o REPORT_DIR] [-j THREADS] [--precision P]\n"
            "                       [--batch-size N] [--save-logprobs] [--train-set DIR [--dup-packets N]] [-q]\n"
            "  -d, --data TEST_DIR      test split folder, e.g. SPLIT_DIR/application_classification/test,\n"
            "                    or a preprocessed dataset folder (its rows labelled for the\n"
            "                    model's task); classes are matched to the model's by name\n"
            "  -m, --model-file MODEL   model file written by `deeppacket train`\n"
            "  -o, --output REPORT_DIR  where the report goes (default: MODEL.report)\n"
            "  -j, --threads N   worker threads (default: all CPUs)\n"
            "  -q, --quiet       no status or progress lines (the table and the closing line stay)\n"
            "  --precision P     fp32 (default), bf16 (the convolutions' and fully connected layers'\n"
            "                    products in bf16, float32 sums; needs AVX512_BF16) or auto\n"
            "  --batch-size N    packets per inference batch (default 256)\n"
            "  --save-logprobs   also write logprobs.npy, float32 [N, classes] (kept in RAM);\n"
            "                    a flow model: flow_logprobs.npy [flows, classes], flows.npy's order\n"
            "  --train-set DIR   the training data (split or dataset folder): the report also\n"
            "                    gives the scores without the test flows whose first packets'\n"
            "                    size and direction sequence occurs identically in DIR\n"
            "  --dup-packets N   how many first packets make that sequence (default 10)\n"
            "Prints the per-class table (recall, precision, f1-score, support; weighted\n"
            "average) and writes report.md/.json, confusion.csv/.pdf/.png, predictions.npy,\n"
            "and, when the test set knows its flows, the same at flow level (flow_*).\n");
}

enum { OPT_PRECISION = DP_CLI_LONG, OPT_BATCH, OPT_LOGPROBS, OPT_TRAIN_SET, OPT_DUP_PACKETS };

/* One option c (dp_cli_getopt's) with its value v into *(dp_evalrun_opts *)ctx;
 * 0, or 2 after a usage error. */
static int parse_option(int c, const char *v, void *ctx)
{
    dp_evalrun_opts *o = ctx;
    long n;
    switch (c) {
    case 'd': o->test_dir = v; return 0;
    case 'm': o->model_path = v; return 0;
    case 'o': o->report_dir = v; return 0;
    case 'q': o->progress = 0; return 0;
    case OPT_TRAIN_SET: o->train_set = v; return 0;
    case OPT_LOGPROBS: o->save_logprobs = 1; return 0;
    case 'j':
        if (dp_cli_parse_int(v, 1, 256, &n) < 0)
            return dp_cli_usage_error("test", "-j wants a thread count 1..256, not '%s'", v);
        o->threads = (int)n;
        return 0;
    case OPT_PRECISION:
        if ((o->precision = dp_nn_precision_parse(v)) < 0)
            return dp_cli_usage_error("test", "--precision wants fp32, bf16 or auto, not '%s'", v);
        return 0;
    case OPT_DUP_PACKETS:
        if (dp_cli_parse_int(v, 1, DP_SEQ_MAX_PACKETS, &n) < 0)
            return dp_cli_usage_error("test", "--dup-packets wants 1..%d, not '%s'", DP_SEQ_MAX_PACKETS, v);
        o->dup_packets = (int)n;
        return 0;
    case OPT_BATCH:
        if (dp_cli_parse_int(v, 1, 1 << 20, &n) < 0)
            return dp_cli_usage_error("test", "--batch-size wants 1..1048576, not '%s'", v);
        o->batch = (int)n;
        return 0;
    }
    return dp_cli_usage_error("test", "unknown option (see --help)"); /* not reached: getopt knows them all */
}

/* argv into *o (tables on stdout, progress on stderr unless -q); 0 (*help
 * set for -h), or 2 after a usage error. */
static int parse_args(int argc, char **argv, dp_evalrun_opts *o, int *help)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},       {"model-file", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'},     {"threads", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},            {"help", no_argument, NULL, DP_CLI_HELP},
        {"precision", required_argument, NULL, OPT_PRECISION},
        {"batch-size", required_argument, NULL, OPT_BATCH},
        {"save-logprobs", no_argument, NULL, OPT_LOGPROBS},
        {"train-set", required_argument, NULL, OPT_TRAIN_SET},
        {"dup-packets", required_argument, NULL, OPT_DUP_PACKETS},
        {NULL, 0, NULL, 0},
    };
    dp_evalrun_opts_init(o);
    o->batch = 256, o->dup_packets = 0 /* given? the default is dp_evalrun's */, o->precision = DP_PREC_FP32;
    o->out = stdout, o->progress = 1;
    int rc = dp_cli_getopt("test", argc, argv, "d:m:o:j:q", longopts, parse_option, o, help);
    if (rc || *help || (rc = dp_cli_no_operands("test", argc, argv)))
        return rc;
    if (!o->test_dir || !o->model_path)
        return dp_cli_usage_error("test", "-d TEST_DIR and -m MODEL are required (see --help)");
    if (o->dup_packets && !o->train_set) /* it was ignored */
        return dp_cli_usage_error("test", "--dup-packets goes with --train-set DIR (the training side to look up)");
    return 0;
}

/* The closing line on stderr: what failed, or where the report went. */
static void say_result(int rc, const dp_evalrun_opts *o, const dp_evalrun_result *r, const char *errbuf)
{
    if (rc != 0)
        fprintf(stderr, "deeppacket test: %s\n", errbuf);
    else if (r->flow_model)
        fprintf(stderr, "deeppacket test: report written to %s/ (flow_report.md, flow_report.json, "
                        "flow_confusion.csv/.pdf/.png, flows.npy, report.html)\n", r->report_dir);
    else
        fprintf(stderr, "deeppacket test: report written to %s/ (report.md, report.json, "
                        "confusion.csv/.pdf/.png%s, predictions.npy%s, report.html)\n",
                r->report_dir, r->has_flows ? ", flow_*, flows.npy" : "", o->save_logprobs ? ", logprobs.npy" : "");
}

int cmd_test(int argc, char **argv)
{
    dp_evalrun_opts o;
    int help = 0, rc = parse_args(argc, argv, &o, &help);
    if (rc != 0)
        return rc;
    if (help) {
        usage(stdout);
        return 0;
    }
    char errbuf[DP_ERRBUF_SIZE];
    dp_evalrun_result r;
    rc = dp_evalrun(&o, &r, errbuf);
    fflush(stdout);
    say_result(rc, &o, &r, errbuf);
    dp_evalrun_result_free(&r);
    dp_eval_plot_release();
    return rc == 0 ? 0 : 1;
}
