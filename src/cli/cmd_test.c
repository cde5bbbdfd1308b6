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

/* Parses the value v of option a into *o; 0, or 2 after a usage error. */
static int parse_value_option(dp_evalrun_opts *o, const char *a, const char *v)
{
    long n;
    if (!strcmp(a, "-d"))
        o->test_dir = v;
    else if (!strcmp(a, "-m"))
        o->model_path = v;
    else if (!strcmp(a, "-o"))
        o->report_dir = v;
    else if (!strcmp(a, "--train-set"))
        o->train_set = v;
    else if (!strcmp(a, "-j")) {
        if (dp_cli_parse_int(v, 1, 256, &n) < 0)
            return dp_cli_usage_error("test", "-j wants a thread count 1..256, not '%s'", v);
        o->threads = (int)n;
    } else if (!strcmp(a, "--precision")) {
        if ((o->precision = dp_nn_precision_parse(v)) < 0)
            return dp_cli_usage_error("test", "--precision wants fp32, bf16 or auto, not '%s'", v);
    } else if (!strcmp(a, "--dup-packets")) {
        if (dp_cli_parse_int(v, 1, DP_SEQ_MAX_PACKETS, &n) < 0)
            return dp_cli_usage_error("test", "--dup-packets wants 1..%d, not '%s'", DP_SEQ_MAX_PACKETS, v);
        o->dup_packets = (int)n;
    } else if (!strcmp(a, "--batch-size")) {
        if (dp_cli_parse_int(v, 1, 1 << 20, &n) < 0)
            return dp_cli_usage_error("test", "--batch-size wants 1..1048576, not '%s'", v);
        o->batch = (int)n;
    } else
        return dp_cli_usage_error("test", "unknown option %s (see --help)", a);
    return 0;
}

/* argv into *o (tables on stdout, progress on stderr unless -q); 0 (*help
 * set for -h), or 2 after a usage error. */
static int parse_args(int argc, char **argv, dp_evalrun_opts *o, int *help)
{
    static const char *const aliases[] = {"--data", "-d", "--model-file", "-m", "--output", "-o",
                                          "--threads", "-j", "--quiet", "-q", NULL};
    dp_evalrun_opts_init(o);
    o->batch = 256, o->dup_packets = DP_SEQ_DEFAULT_PACKETS, o->precision = DP_PREC_FP32;
    o->out = stdout, o->progress = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = dp_cli_alias(argv[i], aliases);
        int rc = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return *help = 1, 0;
        else if (!strcmp(a, "--save-logprobs"))
            o->save_logprobs = 1;
        else if (!strcmp(a, "-q"))
            o->progress = 0;
        else if (i + 1 >= argc)
            return dp_cli_usage_error("test", "unknown option or missing value: %s (see --help)", a);
        else
            rc = parse_value_option(o, a, argv[++i]);
        if (rc)
            return rc;
    }
    if (!o->test_dir || !o->model_path)
        return dp_cli_usage_error("test", "-d TEST_DIR and -m MODEL are required (see --help)");
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
