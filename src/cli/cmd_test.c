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

int cmd_test(int argc, char **argv)
{
    const char *dir = NULL, *mpath = NULL, *outdir = NULL;
    long threads = 0, batch = 256, dup_packets = DP_SEQ_DEFAULT_PACKETS;
    const char *train_dir = NULL;
    int save_lp = 0, precision = DP_PREC_FP32, quiet = 0;
    static const char *const aliases[] = {"--data", "-d", "--model-file", "-m", "--output", "-o",
                                          "--threads", "-j", "--quiet", "-q", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = dp_cli_alias(argv[i], aliases);
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--save-logprobs")) {
            save_lp = 1;
            continue;
        }
        if (!strcmp(a, "-q")) {
            quiet = 1;
            continue;
        }
        if (i + 1 >= argc)
            return dp_cli_usage_error("test", "unknown option or missing value: %s (see --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "-d"))
            dir = v;
        else if (!strcmp(a, "-m"))
            mpath = v;
        else if (!strcmp(a, "-o"))
            outdir = v;
        else if (!strcmp(a, "-j")) {
            if (dp_cli_parse_int(v, 1, 256, &threads) < 0)
                return dp_cli_usage_error("test", "-j wants a thread count 1..256, not '%s'", v);
        } else if (!strcmp(a, "--precision")) {
            if ((precision = dp_nn_precision_parse(v)) < 0)
                return dp_cli_usage_error("test", "--precision wants fp32, bf16 or auto, not '%s'", v);
        } else if (!strcmp(a, "--train-set")) {
            train_dir = v;
        } else if (!strcmp(a, "--dup-packets")) {
            if (dp_cli_parse_int(v, 1, DP_SEQ_MAX_PACKETS, &dup_packets) < 0)
                return dp_cli_usage_error("test", "--dup-packets wants 1..%d, not '%s'", DP_SEQ_MAX_PACKETS, v);
        } else if (!strcmp(a, "--batch-size")) {
            if (dp_cli_parse_int(v, 1, 1 << 20, &batch) < 0)
                return dp_cli_usage_error("test", "--batch-size wants 1..1048576, not '%s'", v);
        } else
            return dp_cli_usage_error("test", "unknown option %s (see --help)", a);
    }
    if (!dir || !mpath)
        return dp_cli_usage_error("test", "-d TEST_DIR and -m MODEL are required (see --help)");

    dp_evalrun_opts o;
    dp_evalrun_opts_init(&o);
    o.test_dir = dir;
    o.model_path = mpath;
    o.report_dir = outdir;
    o.threads = (int)threads;
    o.batch = (int)batch;
    o.save_logprobs = save_lp;
    o.train_set = train_dir;
    o.dup_packets = (int)dup_packets;
    o.out = stdout;
    o.progress = !quiet;
    o.precision = precision;
    char errbuf[DP_ERRBUF_SIZE];
    dp_evalrun_result r;
    int rc = dp_evalrun(&o, &r, errbuf);
    fflush(stdout);
    if (rc != 0)
        fprintf(stderr, "deeppacket test: %s\n", errbuf);
    else if (r.flow_model)
        fprintf(stderr, "deeppacket test: report written to %s/ (flow_report.md, flow_report.json, "
                        "flow_confusion.csv/.pdf/.png, flows.npy, report.html)\n", r.report_dir);
    else
        fprintf(stderr, "deeppacket test: report written to %s/ (report.md, report.json, "
                        "confusion.csv/.pdf/.png%s, predictions.npy%s, report.html)\n",
                r.report_dir, r.has_flows ? ", flow_*, flows.npy" : "", save_lp ? ", logprobs.npy" : "");
    dp_evalrun_result_free(&r);
    dp_eval_plot_release();
    return rc == 0 ? 0 : 1;
}
