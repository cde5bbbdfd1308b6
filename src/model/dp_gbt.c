/* dp_gbt: gradient-boosted trees on XGBoost's C API (see dp_gbt.h). */
#include "model/dp_gbt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xgboost/c_api.h>

#include "model/dp_gbt_check.h"
#include "util/dp_util.h"

struct dp_gbt {
    BoosterHandle h;
    int d, nclasses;
};

/* Runs one XGBoost call; on failure writes "what: XGBoost's message". */
#define XGB(call, errbuf, ...)                                                                  \
    ((call) == 0 ? 0 : (dp_err(errbuf, __VA_ARGS__), append_xgb_error(errbuf), -1))

static void append_xgb_error(char *errbuf)
{
    if (!errbuf)
        return;
    size_t n = strlen(errbuf);
    const char *e = XGBGetLastError();
    /* XGBoost's messages span lines: keep the first line */
    const char *nl = e ? strchr(e, '\n') : NULL;
    int len = e ? (nl ? (int)(nl - e) : (int)strlen(e)) : 0;
    snprintf(errbuf + n, DP_ERRBUF_SIZE - n, ": %.*s", len, e ? e : "unknown XGBoost error");
}

void dp_gbt_params_default(dp_gbt_params *p)
{
    p->trees = 200;
    p->depth = 6;
    p->eta = 0.1f;
    p->threads = 1;
    p->seed = 9876;
    p->quiet = 0;
    p->bins = 64;
    p->round_loss = p->round_acc = NULL;
    p->colsample = 1.0f;
    p->init = NULL;
    p->init_len = 0;
}

void dp_gbt_free(dp_gbt *g)
{
    if (!g)
        return;
    if (g->h)
        XGBoosterFree(g->h);
    free(g);
}

static int set_params(BoosterHandle h, const dp_gbt_params *p, int nclasses, char *errbuf)
{
    char v[7][32];
    snprintf(v[0], sizeof v[0], "%d", nclasses);
    snprintf(v[1], sizeof v[1], "%d", p->depth);
    snprintf(v[2], sizeof v[2], "%.9g", (double)p->eta);
    snprintf(v[3], sizeof v[3], "%d", p->threads > 0 ? p->threads : 1);
    snprintf(v[4], sizeof v[4], "%llu", (unsigned long long)(p->seed & 0x7fffffff));
    snprintf(v[5], sizeof v[5], "%d", p->bins > 1 ? p->bins : 256);
    snprintf(v[6], sizeof v[6], "%.9g", (double)(p->colsample > 0 && p->colsample <= 1 ? p->colsample : 1.0f));
    const char *kv[][2] = {
        {"objective", "multi:softprob"}, {"num_class", v[0]}, {"max_depth", v[1]}, {"eta", v[2]},
        {"nthread", v[3]}, {"seed", v[4]}, {"tree_method", "hist"}, {"verbosity", "0"},
        {"eval_metric", "mlogloss"}, {"max_bin", v[5]}, {"colsample_bytree", v[6]},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (XGB(XGBoosterSetParam(h, kv[i][0], kv[i][1]), errbuf, "gbt: setting %s=%s", kv[i][0], kv[i][1]))
            return -1;
    /* a second metric for the curves (metrics do not change the trees) */
    if (p->round_acc && XGB(XGBoosterSetParam(h, "eval_metric", "merror"), errbuf, "gbt: setting eval_metric"))
        return -1;
    return 0;
}

static DMatrixHandle make_dmatrix(const float *x, uint64_t n, int d, char *errbuf)
{
    DMatrixHandle dm = NULL;
    if (XGB(XGDMatrixCreateFromMat(x, (bst_ulong)n, (bst_ulong)d, NAN, &dm), errbuf,
            "gbt: building a %llu x %d matrix", (unsigned long long)n, d))
        return NULL;
    return dm;
}

static int set_labels(DMatrixHandle dm, const int *labels, const float *weights, uint64_t n, char *errbuf)
{
    float *y = malloc((n ? n : 1) * sizeof *y);
    if (!y)
        return dp_err(errbuf, "gbt: out of memory");
    for (uint64_t i = 0; i < n; i++)
        y[i] = (float)labels[i];
    int rc = XGB(XGDMatrixSetFloatInfo(dm, "label", y, (bst_ulong)n), errbuf, "gbt: setting labels");
    free(y);
    if (rc == 0 && weights)
        rc = XGB(XGDMatrixSetFloatInfo(dm, "weight", weights, (bst_ulong)n), errbuf, "gbt: setting weights");
    return rc;
}

/* The value of "NAME:" in XGBoost's evaluation line, or NAN. */
static double eval_value(const char *line, const char *name)
{
    const char *s = strstr(line, name);
    return s ? strtod(s + strlen(name), NULL) : NAN;
}

/* p->round_loss/acc[it]: the metrics of round it on the training rows. */
static int round_metrics(BoosterHandle h, DMatrixHandle dm, const dp_gbt_params *p, int it, char *errbuf)
{
    const char *names[1] = {"train"}, *out = NULL;
    if (XGB(XGBoosterEvalOneIter(h, it, &dm, names, 1, &out), errbuf, "gbt: evaluating round %d", it + 1))
        return -1;
    p->round_loss[it] = eval_value(out, "train-mlogloss:");
    if (p->round_acc)
        p->round_acc[it] = 1.0 - eval_value(out, "train-merror:");
    return 0;
}

/* p->trees rounds after the r0 the booster has (0, or an init booster's). */
static int boost(BoosterHandle h, DMatrixHandle dm, const dp_gbt_params *p, int r0, char *errbuf)
{
    dp_progress pr;
    dp_progress_init(&pr);
    for (int it = 0; it < p->trees; it++) {
        if (XGB(XGBoosterUpdateOneIter(h, r0 + it, dm), errbuf, "gbt: boosting round %d", r0 + it + 1))
            return -1;
        if (p->round_loss && round_metrics(h, dm, p, it, errbuf) != 0)
            return -1;
        if (!p->quiet && dp_progress_due(&pr))
            dp_progress_print(&pr, "gbt: round %d/%d", it + 1, p->trees);
    }
    if (!p->quiet)
        dp_progress_done(&pr);
    return 0;
}

dp_gbt *dp_gbt_train(const float *x, uint64_t n, int d, const int *labels, const float *weights, int nclasses,
                     const dp_gbt_params *p, char *errbuf)
{
    if (n < 1 || d < 1 || nclasses < 1 || p->trees < 1 || p->depth < 1 || !(p->eta > 0)) {
        dp_err(errbuf, "gbt: bad arguments (%llu rows, %d features, %d classes, %d trees, depth %d, eta %g)",
               (unsigned long long)n, d, nclasses, p->trees, p->depth, (double)p->eta);
        return NULL;
    }
    dp_gbt *g = calloc(1, sizeof *g);
    if (!g) {
        dp_err(errbuf, "gbt: out of memory");
        return NULL;
    }
    g->d = d, g->nclasses = nclasses;
    DMatrixHandle dm = make_dmatrix(x, n, d, errbuf);
    int rc = dm ? set_labels(dm, labels, weights, n, errbuf) : -1;
    if (rc == 0)
        rc = XGB(XGBoosterCreate(&dm, 1, &g->h), errbuf, "gbt: creating the booster");
    int r0 = 0; /* rounds of the booster gone on from (as XGBoost's Python train(xgb_model=)) */
    char msg[DP_ERRBUF_SIZE / 2];
    if (rc == 0 && p->init && dp_gbt_check_booster(p->init, p->init_len, d, nclasses, msg, sizeof msg) != 0)
        rc = dp_err(errbuf, "gbt: the booster to go on from: %s", msg);
    if (rc == 0 && p->init)
        rc = XGB(XGBoosterLoadModelFromBuffer(g->h, p->init, (bst_ulong)p->init_len), errbuf,
                 "gbt: loading the booster to go on from");
    if (rc == 0)
        rc = set_params(g->h, p, nclasses, errbuf);
    if (rc == 0 && p->init)
        rc = XGB(XGBoosterBoostedRounds(g->h, &r0), errbuf, "gbt: reading the booster's rounds");
    if (rc == 0)
        rc = boost(g->h, dm, p, r0, errbuf);
    if (dm)
        XGDMatrixFree(dm);
    if (rc != 0) {
        dp_gbt_free(g);
        return NULL;
    }
    return g;
}

/* XGBoost's informational log lines ("task 000001 got new rank 1"): dropped. */
static void quiet_log(const char *msg)
{
    (void)msg;
}

int dp_gbt_join(const char *host, int port, int task, int world, char *errbuf)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"xgboost_communicator\": \"rabit\", \"rabit_tracker_uri\": \"%s\", \"rabit_tracker_port\": %d, "
             "\"rabit_task_id\": \"%06d\", \"rabit_world_size\": %d}",
             host, port, task, world);
    if (XGB(XGBRegisterLogCallback(quiet_log), errbuf, "gbt: setting XGBoost's log"))
        return -1;
    return XGB(XGCommunicatorInit(cfg), errbuf, "gbt: joining the other processes through %s:%d", host, port);
}

int dp_gbt_leave(char *errbuf)
{
    return XGB(XGCommunicatorFinalize(), errbuf, "gbt: leaving the other processes");
}

int dp_gbt_save(dp_gbt *g, uint8_t **buf, size_t *len, char *errbuf)
{
    bst_ulong n = 0;
    const char *p = NULL;
    if (XGB(XGBoosterSaveModelToBuffer(g->h, "{\"format\": \"ubj\"}", &n, &p), errbuf, "gbt: saving the booster"))
        return -1;
    if (!(*buf = malloc(n ? n : 1)))
        return dp_err(errbuf, "gbt: out of memory");
    memcpy(*buf, p, n);
    *len = n;
    return 0;
}

dp_gbt *dp_gbt_load(const uint8_t *buf, size_t len, int d, int nclasses, const char *src, char *errbuf)
{
    /* XGBoost's parser and predictor trust the blob: it is checked first */
    char msg[DP_ERRBUF_SIZE / 2];
    if (dp_gbt_check_booster(buf, len, d, nclasses, msg, sizeof msg) != 0) {
        dp_err(errbuf, "%s: gbt booster: %s", src, msg);
        return NULL;
    }
    dp_gbt *g = calloc(1, sizeof *g);
    if (!g) {
        dp_err(errbuf, "%s: out of memory", src);
        return NULL;
    }
    g->d = d, g->nclasses = nclasses;
    bst_ulong nf = 0;
    int rc = XGB(XGBoosterCreate(NULL, 0, &g->h), errbuf, "%s: creating a booster", src);
    if (rc == 0)
        rc = XGB(XGBoosterLoadModelFromBuffer(g->h, buf, (bst_ulong)len), errbuf, "%s: loading the gbt booster", src);
    if (rc == 0)
        rc = XGB(XGBoosterSetParam(g->h, "nthread", "1"), errbuf, "%s: setting nthread", src);
    if (rc == 0)
        rc = XGB(XGBoosterGetNumFeature(g->h, &nf), errbuf, "%s: reading the booster's features", src);
    if (rc == 0 && nf != (bst_ulong)d)
        rc = dp_err(errbuf, "%s: the gbt booster takes %llu features, the model's flow rows have %d", src,
                    (unsigned long long)nf, d);
    if (rc != 0) {
        dp_gbt_free(g);
        return NULL;
    }
    return g;
}

int dp_gbt_predict(dp_gbt *g, const float *x, int n, int d, int nclasses, float *logprobs, char *errbuf)
{
    if (n < 1 || d != g->d || nclasses != g->nclasses)
        return dp_err(errbuf, "gbt: predict on %d rows of %d features for %d classes (booster: %d, %d)", n, d,
                      nclasses, g->d, g->nclasses);
    DMatrixHandle dm = make_dmatrix(x, (uint64_t)n, d, errbuf);
    if (!dm)
        return -1;
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *out = NULL;
    int rc = XGB(XGBoosterPredictFromDMatrix(g->h, dm,
                                             "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                                             "\"iteration_end\": 0, \"strict_shape\": true}",
                                             &shape, &dim, &out),
                 errbuf, "gbt: predicting");
    if (rc == 0 && (dim != 2 || shape[0] != (bst_ulong)n || shape[1] != (bst_ulong)nclasses))
        rc = dp_err(errbuf, "gbt: the booster gives %llu outputs per row, the model has %d classes",
                    dim == 2 ? (unsigned long long)shape[1] : 0ULL, nclasses);
    for (size_t i = 0; rc == 0 && i < (size_t)n * (size_t)nclasses; i++)
        logprobs[i] = logf(out[i] > 1e-30f ? out[i] : 1e-30f);
    XGDMatrixFree(dm);
    return rc;
}

/* One dump line: "ID:[fFEAT<THR] yes=A,no=B,missing=C" or "ID:leaf=W". */
static int parse_node(const char *line, int tree, dp_gbt_node *n)
{
    memset(n, 0, sizeof *n);
    n->tree = tree;
    while (*line == '\t')
        line++;
    if (sscanf(line, "%d:leaf=%f", &n->id, &n->value) == 2) {
        n->leaf = 1;
        return 0;
    }
    if (sscanf(line, "%d:[f%d<%f] yes=%d,no=%d,missing=%d", &n->id, &n->feature, &n->value, &n->yes, &n->no,
               &n->missing) == 6)
        return 0;
    return -1;
}

/* Appends the nodes of one tree's text dump. */
static int parse_tree(const char *text, int tree, dp_gbt_node **nodes, size_t *n, size_t *cap, char *errbuf)
{
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char buf[512];
        if (len > 0 && len < sizeof buf) {
            memcpy(buf, line, len);
            buf[len] = 0;
            if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 1024;
                dp_gbt_node *p = realloc(*nodes, c * sizeof *p);
                if (!p)
                    return dp_err(errbuf, "gbt: out of memory");
                *nodes = p, *cap = c;
            }
            if (parse_node(buf, tree, &(*nodes)[*n]) != 0)
                return dp_err(errbuf, "gbt: tree %d: cannot read the dump line '%s'", tree, buf);
            (*n)++;
        } else if (len >= sizeof buf) {
            return dp_err(errbuf, "gbt: tree %d: dump line of %zu bytes", tree, len);
        }
        line += len + (nl ? 1 : 0);
    }
    return 0;
}

/* base_score from the booster's JSON configuration ("base_score":"5E-1"). */
static int base_score_of(dp_gbt *g, float *base, char *errbuf)
{
    bst_ulong len = 0;
    const char *cfg = NULL;
    if (XGB(XGBoosterSaveJsonConfig(g->h, &len, &cfg), errbuf, "gbt: reading the booster's configuration"))
        return -1;
    const char *p = strstr(cfg, "\"base_score\":\"");
    char *end = NULL;
    if (p)
        *base = strtof(p + strlen("\"base_score\":\""), &end);
    if (!p || !end || *end != '"')
        return dp_err(errbuf, "gbt: no base_score in the booster's configuration");
    return 0;
}

int dp_gbt_trees(dp_gbt *g, dp_gbt_node **nodes, size_t *nnodes, int *ntrees, float *base_score, char *errbuf)
{
    bst_ulong nt = 0;
    const char **dump = NULL;
    size_t cap = 0;
    *nodes = NULL, *nnodes = 0, *ntrees = 0;
    if (base_score_of(g, base_score, errbuf) != 0)
        return -1;
    if (XGB(XGBoosterDumpModelEx(g->h, "", 0, "text", &nt, &dump), errbuf, "gbt: dumping the trees"))
        return -1;
    for (bst_ulong t = 0; t < nt; t++)
        if (parse_tree(dump[t], (int)t, nodes, nnodes, &cap, errbuf) != 0) {
            free(*nodes);
            *nodes = NULL, *nnodes = 0;
            return -1;
        }
    *ntrees = (int)nt;
    return 0;
}
