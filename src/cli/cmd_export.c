/* deeppacket export: a model as an ONNX file (issue 14; docs/onnx.md).
 *
 *   deeppacket export -m MODEL -o MODEL.onnx
 *
 * Every model kind (CNN, SAE, flow NN, GBT); the graph scales its input as
 * deeppacket does and outputs log-probabilities [N, classes]. The export is
 * the library's (model/dp_onnx.h): this file parses the arguments. */
#include <stdio.h>
#include <string.h>

#include "cli/dp_cli.h"
#include "model/dp_model.h"
#include "model/dp_onnx.h"
#include "util/dp_util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deeppacket export -m MODEL -o MODEL.onnx\n"
            "  -m, --model-file MODEL  model file written by `deeppacket train` (cnn, sae, flow or gbt)\n"
            "  -o, --output FILE  the ONNX model to write (opset 17, ai.onnx.ml 3; written atomically)\n"
            "Packet models (cnn, sae) take input \"packets\", uint8 [N, 1500], the vectors of\n"
            "`preprocess` (scaled by 1/255 inside the graph); flow models (flow, gbt) take\n"
            "\"flows\", float32 [N, packets x features], the rows of docs/flow-features.md.\n"
            "Output \"logprobs\", float32 [N, classes]; the class names are in the metadata\n"
            "(\"classes\", a JSON array). A packet model's field mask is applied in the graph.\n");
}

/* The two paths of an export. */
struct export_args {
    const char *mpath, *opath;
};

/* One option c (dp_cli_getopt's) with its value v into *(struct export_args *)ctx. */
static int parse_option(int c, const char *v, void *ctx)
{
    struct export_args *ea = ctx;
    if (c == 'm')
        ea->mpath = v;
    else
        ea->opath = v; /* 'o': getopt knows no other */
    return 0;
}

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model-file", required_argument, NULL, 'm'}, {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, DP_CLI_HELP},     {NULL, 0, NULL, 0},
    };
    struct export_args ea = {NULL, NULL};
    int help, rc = dp_cli_getopt("export", argc, argv, "m:o:", longopts, parse_option, &ea, &help);
    if (rc || (!help && (rc = dp_cli_no_operands("export", argc, argv))))
        return rc;
    if (help) {
        usage(stdout);
        return 0;
    }
    const char *mpath = ea.mpath, *opath = ea.opath;
    if (!mpath || !opath)
        return dp_cli_usage_error("export", "-m MODEL and -o MODEL.onnx are required (see --help)");
    char errbuf[DP_ERRBUF_SIZE];
    dp_model *m = dp_model_load(mpath, errbuf);
    rc = m ? dp_onnx_export(m, opath, errbuf) : -1;
    if (rc != 0)
        fprintf(stderr, "deeppacket export: %s\n", errbuf);
    else
        fprintf(stderr, "deeppacket export: %s model (%d classes) written to %s\n", dp_model_kind_name(m),
                dp_model_nclasses(m), opath);
    dp_model_free(m);
    return rc == 0 ? 0 : 1;
}
