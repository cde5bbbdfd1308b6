/* The public embedding API (include/deeppacket.h) on top of the library. */
#include <math.h>
#include <stdlib.h>

#include "deeppacket.h"
#include "classify/dp_classify.h"

_Static_assert(DEEPPACKET_ERRBUF_SIZE == DP_ERRBUF_SIZE, "error buffer sizes must agree");

struct deeppacket {
    dp_model *m;
    int ncls;
    float *lp;
    double *row;
    uint8_t vec[DP_VEC_LEN];
};

deeppacket *deeppacket_open(const char *model_path, char *errbuf)
{
    dp_model *m = dp_model_load(model_path, errbuf);
    if (!m)
        return NULL;
    deeppacket *dp = calloc(1, sizeof *dp);
    int n = dp_model_nclasses(m);
    if (dp) {
        dp->lp = malloc((size_t)n * sizeof *dp->lp);
        dp->row = malloc((size_t)n * sizeof *dp->row);
    }
    if (!dp || !dp->lp || !dp->row) {
        if (dp) {
            free(dp->lp);
            free(dp->row);
            free(dp);
        }
        dp_model_free(m);
        dp_err(errbuf, "%s: out of memory", model_path);
        return NULL;
    }
    dp->m = m;
    dp->ncls = n;
    return dp;
}

int deeppacket_classify(deeppacket *dp, int linktype, const uint8_t *frame, size_t caplen,
                        deeppacket_result *out, char *errbuf)
{
    dp_verdict v = dp_packet_transform(linktype, frame, caplen, dp->vec, NULL);
    out->kept = v == DP_KEEP;
    out->skip_reason = dp_verdict_name(v);
    out->class_id = -1;
    out->class_name = "";
    out->probability = 0;
    if (v != DP_KEEP)
        return 0;
    if (dp_model_predict(dp->m, dp->vec, 1, dp->lp, errbuf) < 0)
        return -1;
    for (int k = 0; k < dp->ncls; k++)
        dp->row[k] = dp->lp[k];
    int id;
    double p;
    dp_cls_topk(dp->row, dp->ncls, 1, &id, &p);
    out->class_id = id;
    out->class_name = dp_model_class_name(dp->m, id);
    out->probability = (float)p;
    return 0;
}

int deeppacket_nclasses(const deeppacket *dp) { return dp->ncls; }

const char *deeppacket_class_name(const deeppacket *dp, int c)
{
    if (c < 0 || c >= dp->ncls)
        return "";
    return dp_model_class_name(dp->m, c);
}

void deeppacket_close(deeppacket *dp)
{
    if (!dp)
        return;
    dp_model_free(dp->m);
    free(dp->lp);
    free(dp->row);
    free(dp);
}
