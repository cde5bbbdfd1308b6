/* The public embedding API (include/deeppacket.h) on top of the library. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "deeppacket.h"
#include "classify/dp_api.h"
#include "classify/dp_classify.h"
#include "flow/dp_flowfeat.h"
#include "packet/dp_mask.h"
#include "nn/dp_nn.h"

_Static_assert(DEEPPACKET_ERRBUF_SIZE == DP_ERRBUF_SIZE, "error buffer sizes must agree");

struct deeppacket {
    dp_model *m;
    int ncls;
    float *lp;
    double *row;
    uint8_t vec[DP_VEC_LEN];
    float *flowrow;          /* flow model: [N*F] */
    char mask[64];           /* dp_mask_name of the model's mask */
    double min_prob;         /* below it a verdict is "unknown" (0: never) */
};

dp_model *dp_api_model(deeppacket *dp) { return dp->m; }
double dp_api_min_prob(const deeppacket *dp) { return dp->min_prob; }

/* A precision word (fp32, bf16, auto) resolved: DP_PREC_FP32 or _BF16, or
 * -1 + message (starting with what for a word that is none). */
static int precision_word(const char *what, const char *word, char *errbuf)
{
    int p = dp_nn_precision_parse(word);
    if (p < 0)
        return dp_err(errbuf, "%s'%s': expected fp32, bf16 or auto", what, word);
    return dp_nn_precision_resolve(p, errbuf);
}

/* DEEPPACKET_PRECISION from the environment, resolved (unset: fp32); -1 +
 * message. */
static int precision_from_env(char *errbuf)
{
    const char *v = getenv("DEEPPACKET_PRECISION");
    return v && *v ? precision_word("DEEPPACKET_PRECISION=", v, errbuf) : DP_PREC_FP32;
}

deeppacket *deeppacket_open(const char *model_path, char *errbuf)
{
    if (!model_path || !*model_path) {
        dp_err(errbuf, "deeppacket_open: no model path");
        return NULL;
    }
    int prec = precision_from_env(errbuf); /* checked first: a wrong setting fails before the load */
    if (prec < 0)
        return NULL;
    dp_model *m = dp_model_load(model_path, errbuf);
    if (!m)
        return NULL;
    dp_model_set_precision(m, prec, errbuf); /* resolved: cannot fail */
    deeppacket *dp = calloc(1, sizeof *dp);
    int n = dp_model_nclasses(m);
    if (dp) {
        dp->lp = malloc((size_t)n * sizeof *dp->lp);
        dp->row = malloc((size_t)n * sizeof *dp->row);
    }
    const dp_flowcfg *fc = dp_model_flowcfg(m);
    if (dp && fc)
        dp->flowrow = malloc((size_t)dp_flowcfg_row_len(fc) * sizeof(float));
    if (!dp || !dp->lp || !dp->row || (fc && !dp->flowrow)) {
        if (dp) {
            free(dp->lp);
            free(dp->row);
            free(dp->flowrow);
            free(dp);
        }
        dp_model_free(m);
        dp_err(errbuf, "%s: out of memory", model_path);
        return NULL;
    }
    dp->m = m;
    dp->ncls = n;
    dp_mask_name(dp_model_mask(m), dp->mask, sizeof dp->mask);
    return dp;
}

/* The best class of dp->row into out: log-probabilities (npk 1) or the
 * sums of npk packets' (dp_cls_topk_votes). */
static void set_best(deeppacket *dp, uint32_t npk, deeppacket_result *out)
{
    int id;
    double p;
    dp_cls_topk_votes(dp->row, dp->ncls, npk, 1, &id, &p);
    int unknown = p < dp->min_prob;
    out->class_id = unknown ? -1 : id;
    out->class_name = unknown ? DP_CLS_UNKNOWN : dp_model_class_name(dp->m, id);
    out->probability = (float)p;
}

/* A call's handle and result pointer: -1 + message naming fn when one is
 * NULL (the public functions never dereference a NULL argument). */
static int check_call(const char *fn, const deeppacket *dp, const deeppacket_result *out, char *errbuf)
{
    if (!dp)
        return dp_err(errbuf, "%s: no model handle (NULL)", fn);
    if (!out)
        return dp_err(errbuf, "%s: no result to fill (NULL)", fn);
    return 0;
}

int deeppacket_classify(deeppacket *dp, int linktype, const uint8_t *frame, size_t caplen,
                        deeppacket_result *out, char *errbuf)
{
    if (check_call("deeppacket_classify", dp, out, errbuf) < 0)
        return -1;
    if (!frame && caplen > 0)
        return dp_err(errbuf, "deeppacket_classify: %zu captured bytes without a frame (NULL)", caplen);
    if (dp->flowrow)
        return dp_err(errbuf, "deeppacket_classify: a %s flow model classifies flows, not single packets "
                              "(use deeppacket_classify_flow)", dp_model_kind_name(dp->m));
    dp_verdict v = dp_packet_transform(linktype, frame, caplen, dp->vec, NULL);
    out->kept = 0;
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
    out->kept = 1;
    set_best(dp, 1, out);
    return 0;
}

int deeppacket_set_precision(deeppacket *dp, const char *precision, char *errbuf)
{
    if (!dp)
        return dp_err(errbuf, "deeppacket_set_precision: no model handle (NULL)");
    if (!precision)
        return dp_err(errbuf, "deeppacket_set_precision: no precision (NULL)");
    int p = precision_word("deeppacket_set_precision: ", precision, errbuf);
    return p < 0 ? -1 : dp_model_set_precision(dp->m, p, errbuf);
}

int deeppacket_set_min_prob(deeppacket *dp, double min_prob, char *errbuf)
{
    if (!dp)
        return dp_err(errbuf, "deeppacket_set_min_prob: no model handle (NULL)");
    if (!(min_prob >= 0 && min_prob <= 1))
        return dp_err(errbuf, "deeppacket_set_min_prob: %g is not a probability in [0, 1]", min_prob);
    dp->min_prob = min_prob;
    return 0;
}

double deeppacket_min_prob(const deeppacket *dp) { return dp ? dp->min_prob : 0.0; }

const char *deeppacket_precision(const deeppacket *dp)
{
    return dp ? dp_nn_precision_name(dp_model_precision(dp->m)) : "";
}

int deeppacket_wants_flows(const deeppacket *dp) { return dp && dp_model_flowcfg(dp->m) != NULL; }

int deeppacket_flow_packets(const deeppacket *dp)
{
    const dp_flowcfg *fc = dp ? dp_model_flowcfg(dp->m) : NULL;
    return fc ? fc->npackets : 0;
}

/* A flow model: the first N kept frames' features into flowrow. Returns the
 * kept frames used. */
static int fill_flow_row(deeppacket *dp, int linktype, const uint8_t *const *frames, const size_t *caplens,
                         const double *times, int nframes)
{
    const dp_flowcfg *fc = dp_model_flowcfg(dp->m);
    int F = dp_flowcfg_features(fc), used = 0;
    dp_pkt_info first, info;
    double prev = 0;
    memset(dp->flowrow, 0, (size_t)dp_flowcfg_row_len(fc) * sizeof(float));
    for (int i = 0; i < nframes && used < fc->npackets; i++) {
        if (dp_packet_transform(linktype, frames[i], caplens[i], dp->vec, &info) != DP_KEEP)
            continue;
        if (used == 0)
            first = info;
        int dir = dp_flowfeat_direction(first.saddr, first.sport, info.saddr, info.sport);
        dp_flowfeat_packet(fc, dp->vec, dir, times[i] - prev, used == 0, dp->flowrow + (size_t)used * F);
        prev = times[i];
        used++;
    }
    return used;
}

/* A packet model: summed log-probabilities of every kept frame in row. */
static int sum_packets(deeppacket *dp, int linktype, const uint8_t *const *frames, const size_t *caplens,
                       int nframes, char *errbuf)
{
    int used = 0;
    for (int k = 0; k < dp->ncls; k++)
        dp->row[k] = 0;
    for (int i = 0; i < nframes; i++) {
        if (dp_packet_transform(linktype, frames[i], caplens[i], dp->vec, NULL) != DP_KEEP)
            continue;
        if (dp_model_predict(dp->m, dp->vec, 1, dp->lp, errbuf) < 0)
            return -1;
        for (int k = 0; k < dp->ncls; k++)
            dp->row[k] += dp->lp[k];
        used++;
    }
    return used;
}

int deeppacket_classify_flow(deeppacket *dp, int linktype, const uint8_t *const *frames, const size_t *caplens,
                             const double *times, int nframes, deeppacket_result *out, char *errbuf)
{
    if (check_call("deeppacket_classify_flow", dp, out, errbuf) < 0)
        return -1;
    out->kept = 0;
    out->skip_reason = "kept";
    out->class_id = -1;
    out->class_name = "";
    out->probability = 0;
    if (nframes < 0 || (nframes > 0 && (!frames || !caplens || !times)))
        return dp_err(errbuf, "deeppacket_classify_flow: %d frames without frame, length or time arrays", nframes);
    int used;
    if (dp->flowrow) {
        used = fill_flow_row(dp, linktype, frames, caplens, times, nframes);
        if (used > 0 && dp_model_predict_flows(dp->m, dp->flowrow, 1, dp->lp, errbuf) < 0)
            return -1;
        for (int k = 0; used > 0 && k < dp->ncls; k++)
            dp->row[k] = dp->lp[k];
    } else if ((used = sum_packets(dp, linktype, frames, caplens, nframes, errbuf)) < 0) {
        return -1;
    }
    out->kept = used;
    if (used == 0) {
        out->skip_reason = "no_kept_frames";
        return 0;
    }
    set_best(dp, dp->flowrow ? 1 : (uint32_t)used, out);
    return 0;
}

int deeppacket_nclasses(const deeppacket *dp) { return dp ? dp->ncls : 0; }

const char *deeppacket_class_name(const deeppacket *dp, int c)
{
    if (!dp || c < 0 || c >= dp->ncls)
        return "";
    return dp_model_class_name(dp->m, c);
}

const char *deeppacket_version(void) { return DEEPPACKET_VERSION_STRING; }

const char *deeppacket_model_kind(const deeppacket *dp) { return dp ? dp_model_kind_name(dp->m) : ""; }

const char *deeppacket_task(const deeppacket *dp) { return dp ? dp_task_name[dp_model_task(dp->m)] : ""; }

const char *deeppacket_mask(const deeppacket *dp) { return dp ? dp->mask : ""; }

int deeppacket_flow_row_len(const deeppacket *dp)
{
    const dp_flowcfg *fc = dp ? dp_model_flowcfg(dp->m) : NULL;
    return fc ? dp_flowcfg_row_len(fc) : 0;
}

/* Rows per model call below: keeps the int row counts of dp_model_predict*
 * far from overflow whatever n is. */
#define API_CHUNK 65536

int deeppacket_predict(deeppacket *dp, const uint8_t *vectors, size_t n, float *logprobs, char *errbuf)
{
    if (!dp)
        return dp_err(errbuf, "deeppacket_predict: no model handle (NULL)");
    if (dp_model_input(dp->m) != DP_INPUT_PACKET)
        return dp_err(errbuf, "deeppacket_predict: a %s flow model reads flow rows, not packet vectors "
                              "(use deeppacket_predict_flows)", dp_model_kind_name(dp->m));
    if (n > 0 && (!vectors || !logprobs))
        return dp_err(errbuf, "deeppacket_predict: %zu rows without vectors or an output array", n);
    for (size_t i = 0; i < n; i += API_CHUNK) {
        int b = n - i < API_CHUNK ? (int)(n - i) : API_CHUNK;
        if (dp_model_predict(dp->m, vectors + i * DP_VEC_LEN, b, logprobs + i * (size_t)dp->ncls, errbuf) < 0)
            return -1;
    }
    return 0;
}

int deeppacket_predict_flows(deeppacket *dp, const float *rows, size_t n, float *logprobs, char *errbuf)
{
    if (!dp)
        return dp_err(errbuf, "deeppacket_predict_flows: no model handle (NULL)");
    const dp_flowcfg *fc = dp_model_flowcfg(dp->m);
    if (!fc)
        return dp_err(errbuf, "deeppacket_predict_flows: a %s packet model reads packet vectors, not flow rows "
                              "(use deeppacket_predict)", dp_model_kind_name(dp->m));
    if (n > 0 && (!rows || !logprobs))
        return dp_err(errbuf, "deeppacket_predict_flows: %zu rows without rows or an output array", n);
    size_t len = (size_t)dp_flowcfg_row_len(fc);
    for (size_t i = 0; i < n; i += API_CHUNK) {
        int b = n - i < API_CHUNK ? (int)(n - i) : API_CHUNK;
        if (dp_model_predict_flows(dp->m, rows + i * len, b, logprobs + i * (size_t)dp->ncls, errbuf) < 0)
            return -1;
    }
    return 0;
}

void deeppacket_close(deeppacket *dp)
{
    if (!dp)
        return;
    dp_model_free(dp->m);
    free(dp->lp);
    free(dp->row);
    free(dp->flowrow);
    free(dp);
}
