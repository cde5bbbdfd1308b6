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

int cmd_export(int argc, char **argv)
{
    const char *mpath = NULL, *opath = NULL;
    for (int i = 1; i < argc; i++) {
        static const char *const aliases[] = {"--model-file", "-m", "--output", "-o", NULL};
        const char *a = dp_cli_alias(argv[i], aliases);
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return dp_cli_usage_error("export", "unknown option or missing value: %s (see --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "-m"))
            mpath = v;
        else if (!strcmp(a, "-o"))
            opath = v;
        else
            return dp_cli_usage_error("export", "unknown option %s (see --help)", a);
    }
    if (!mpath || !opath)
        return dp_cli_usage_error("export", "-m MODEL and -o MODEL.onnx are required (see --help)");
    char errbuf[DP_ERRBUF_SIZE];
    dp_model *m = dp_model_load(mpath, errbuf);
    int rc = m ? dp_onnx_export(m, opath, errbuf) : -1;
    if (rc != 0)
        fprintf(stderr, "deeppacket export: %s\n", errbuf);
    else
        fprintf(stderr, "deeppacket export: %s model (%d classes) written to %s\n", dp_model_kind_name(m),
                dp_model_nclasses(m), opath);
    dp_model_free(m);
    return rc == 0 ? 0 : 1;
}
