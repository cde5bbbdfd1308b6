/* dp_classify: batched per-packet / per-flow classification of frames. */
#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classify/dp_classify.h"
#include "flow/dp_flowfeat.h"

struct slot {
    double time;
    uint64_t index;
    uint64_t flow_id;
    int32_t flow;          /* index in the flow table (per-flow mode) */
    dp_pkt_info info;
};

struct dp_classifier {
    dp_model *m;
    dp_cls_opts o;
    dp_cls_emit_fn emit;
    void *ctx;
    int ncls;
    dp_flowtable ft;
    const char *source;
    uint64_t salt;
    uint8_t cur[DP_VEC_LEN];
    uint8_t *vec;          /* [batch * DP_VEC_LEN] */
    float *lp;             /* [batch * ncls] */
    double *row;           /* [ncls] */
    struct slot *slots;    /* [batch] */
    int nb;
    dp_cls_stats st;
    const dp_flowcfg *flowcfg; /* flow model: its configuration; NULL otherwise */
    double prev_time;      /* the previous frame's time (-inf before the first) */
};

void dp_cls_opts_default(dp_cls_opts *o)
{
    o->per_flow = 0;
    o->first_n = 10;
    o->idle_timeout = 30;
    o->max_flows = 65536;
    o->batch = 64;
    o->min_prob = 0;
}

const char *dp_flow_reason_name(dp_flow_reason r)
{
    static const char *const names[] = {"complete", "idle", "evicted", "end", "interrupted"};
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

int dp_cls_topk(const double *lp, int n, int k, int *ids, double *probs)
{
    if (k > n)
        k = n;
    double mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (lp[i] > mx)
            mx = lp[i];
    double z = 0;
    for (int i = 0; i < n; i++)
        z += exp(lp[i] - mx);
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int used = 0;
            for (int q = 0; q < j; q++)
                used |= ids[q] == i;
            if (!used && (best < 0 || lp[i] > lp[best]))
                best = i;
        }
        ids[j] = best;
        probs[j] = exp(lp[best] - mx) / z;
    }
    return k;
}

int dp_cls_topk_votes(const double *sum, int n, uint32_t npk, int k, int *ids, double *probs)
{
    k = dp_cls_topk(sum, n, k, ids, probs);
    if (npk <= 1 || n < 1)
        return k;
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < n; i++)
        if (sum[i] / npk > mx)
            mx = sum[i] / npk;
    for (int i = 0; i < n; i++)
        z += exp(sum[i] / npk - mx);
    for (int j = 0; j < k; j++)
        probs[j] = exp(sum[ids[j]] / npk - mx) / z;
    return k;
}

dp_classifier *dp_classifier_new(dp_model *m, const dp_cls_opts *o, dp_cls_emit_fn emit, void *ctx,
                                 char *errbuf)
{
    if (!m || !emit) {
        dp_err(errbuf, "classifier: no model or no verdict callback");
        return NULL;
    }
    if (o->batch < 1 || o->batch > 4096 || o->first_n < 1 || o->max_flows < 1 || !(o->idle_timeout > 0) ||
        !(o->min_prob >= 0 && o->min_prob <= 1)) {
        dp_err(errbuf, "classifier: bad options (batch %d, first %d, max flows %d, idle timeout %g, min prob %g)",
               o->batch, o->first_n, (int)o->max_flows, o->idle_timeout, o->min_prob);
        return NULL;
    }
    int ncls = dp_model_nclasses(m);
    if (ncls < 1) {
        dp_err(errbuf, "classifier: the model has no classes");
        return NULL;
    }
    if (dp_model_flowcfg(m) && !o->per_flow) {
        dp_err(errbuf, "classifier: a %s flow model gives one verdict per flow, not per packet (use --per flow)",
               dp_model_kind_name(m));
        return NULL;
    }
    dp_classifier *c = calloc(1, sizeof *c);
    if (!c) {
        dp_err(errbuf, "classifier: out of memory");
        return NULL;
    }
    c->m = m;
    c->o = *o;
    c->flowcfg = dp_model_flowcfg(m);
    if (c->flowcfg)
        c->o.first_n = c->flowcfg->npackets;
    c->emit = emit;
    c->ctx = ctx;
    c->ncls = ncls;
    c->vec = malloc((size_t)o->batch * DP_VEC_LEN);
    c->lp = malloc((size_t)o->batch * (size_t)ncls * sizeof *c->lp);
    c->row = malloc((size_t)ncls * sizeof *c->row);
    c->slots = malloc((size_t)o->batch * sizeof *c->slots);
    if (!c->vec || !c->lp || !c->row || !c->slots) {
        dp_err(errbuf, "classifier: out of memory for a batch of %d", o->batch);
        dp_classifier_free(c);
        return NULL;
    }
    if (dp_flowtable_init(&c->ft, o->max_flows, ncls, errbuf) < 0) {
        dp_classifier_free(c);
        return NULL;
    }
    dp_classifier_begin(c, "");
    return c;
}

void dp_classifier_free(dp_classifier *c)
{
    if (!c)
        return;
    dp_flowtable_free(&c->ft);
    free(c->vec);
    free(c->lp);
    free(c->row);
    free(c->slots);
    free(c);
}

void dp_classifier_begin(dp_classifier *c, const char *name)
{
    c->source = name ? name : "";
    c->prev_time = -INFINITY;
    c->salt = dp_fnv1a(c->source, strlen(c->source), DP_FNV_INIT);
}

const dp_cls_stats *dp_classifier_stats(const dp_classifier *c) { return &c->st; }

/* Hands r (its top classes filled) to the callback, "unknown" below the
 * options' min_prob, and counts it. */
static void emit(dp_classifier *c, dp_cls_result *r)
{
    r->unknown = r->ntop > 0 && r->prob[0] < c->o.min_prob;
    c->st.unknown += (uint64_t)r->unknown;
    c->st.verdicts++;
    c->emit(c->ctx, r);
}

static void emit_flow(dp_classifier *c, dp_flow *fl, dp_flow_reason reason)
{
    if (fl->done || fl->classified == 0)
        return;
    fl->done = 1;
    dp_cls_result r;
    memset(&r, 0, sizeof r);
    r.per_flow = 1;
    r.source = c->source;
    r.time = fl->first_time;
    r.end = fl->last_time;
    r.index = fl->first_index;
    r.npackets = fl->classified;
    r.reason = reason;
    r.flow_id = fl->id;
    r.tuple = &fl->tuple;
    r.ntop = c->flowcfg ? dp_cls_topk(fl->sum, c->ncls, DP_CLS_TOP, r.top, r.prob) /* the model's row */
                        : dp_cls_topk_votes(fl->sum, c->ncls, fl->classified, DP_CLS_TOP, r.top, r.prob);
    emit(c, &r);
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Predicts the pending batch and hands out what it decides. */
static int run_batch(dp_classifier *c, char *errbuf)
{
    if (c->nb == 0)
        return 0;
    int nb = c->nb;
    c->nb = 0;
    double t0 = dp_now(), c0 = cpu_now();
    if (dp_model_predict(c->m, c->vec, nb, c->lp, errbuf) < 0)
        return -1;
    c->st.model_seconds += dp_now() - t0;
    c->st.model_cpu_seconds += cpu_now() - c0;
    c->st.classified += (uint64_t)nb;
    for (int i = 0; i < nb; i++) {
        const float *lp = c->lp + (size_t)i * (size_t)c->ncls;
        struct slot *s = &c->slots[i];
        if (!c->o.per_flow) {
            for (int k = 0; k < c->ncls; k++)
                c->row[k] = lp[k];
            dp_cls_result r;
            memset(&r, 0, sizeof r);
            r.source = c->source;
            r.time = r.end = s->time;
            r.index = s->index;
            r.npackets = 1;
            r.flow_id = s->flow_id;
            r.tuple = &s->info;
            r.ntop = dp_cls_topk(c->row, c->ncls, DP_CLS_TOP, r.top, r.prob);
            emit(c, &r);
        } else {
            dp_flow *fl = &c->ft.flows[s->flow];
            for (int k = 0; k < c->ncls; k++)
                fl->sum[k] += lp[k];
            fl->classified++;
            fl->inbatch--;
            if (fl->classified >= (uint32_t)c->o.first_n)
                emit_flow(c, fl, DP_FLOW_COMPLETE);
        }
    }
    return 0;
}

/* Flow model: predicts the flow's row (its first packets) and emits it. */
static int predict_flow(dp_classifier *c, dp_flow *fl, dp_flow_reason reason, char *errbuf)
{
    if (fl->done || !fl->row || fl->queued == 0)
        return 0;
    double t0 = dp_now(), c0 = cpu_now();
    if (dp_model_predict_flows(c->m, fl->row, 1, c->lp, errbuf) < 0)
        return -1;
    c->st.model_seconds += dp_now() - t0;
    c->st.model_cpu_seconds += cpu_now() - c0;
    c->st.classified += fl->queued;
    for (int k = 0; k < c->ncls; k++)
        fl->sum[k] = c->lp[k];
    fl->classified = fl->queued;
    emit_flow(c, fl, reason);
    free(fl->row);
    fl->row = NULL;
    return 0;
}

/* Flow model: a kept packet's features into its flow's row; predicts the
 * row when it is full. */
static int add_to_row(dp_classifier *c, dp_flow *fl, const dp_pkt_info *info, double time, char *errbuf)
{
    const dp_flowcfg *cfg = c->flowcfg;
    int F = dp_flowcfg_features(cfg);
    if (!fl->row && !(fl->row = calloc((size_t)dp_flowcfg_row_len(cfg), sizeof(float))))
        return dp_err(errbuf, "classifier: out of memory for a flow row");
    int dir = dp_flowfeat_direction(fl->tuple.saddr, fl->tuple.sport, info->saddr, info->sport);
    dp_flowfeat_packet(cfg, c->cur, dir, time - fl->prev_time, fl->queued == 0, fl->row + (size_t)fl->queued * F);
    fl->prev_time = time;
    fl->queued++;
    if (fl->queued >= (uint32_t)cfg->npackets)
        return predict_flow(c, fl, DP_FLOW_COMPLETE, errbuf);
    return 0;
}

/* Removes a flow, first deciding it if it is still open. */
static int end_flow(dp_classifier *c, dp_flow *fl, dp_flow_reason reason, char *errbuf)
{
    if (c->flowcfg) {
        if (predict_flow(c, fl, reason, errbuf) < 0)
            return -1;
    } else if (c->o.per_flow) {
        if (fl->inbatch && run_batch(c, errbuf) < 0)
            return -1;
        emit_flow(c, fl, reason);
    }
    dp_flowtable_remove(&c->ft, fl);
    return 0;
}

/* Ends the flows idle at time now, least recently active first. A flow
 * whose last packet lies more than the timeout after now and after the
 * previous frame (the clock went back for two frames in a row: a bogus
 * stamp in the future, a second clock) counts as active from now on and
 * goes to the most recent end, instead of holding back the idle flows
 * behind it until the clock catches up (years, for a stamp in the future);
 * a single frame stamped in the past (0) moves nothing. Each flow moves at
 * most once per call. */
static int expire(dp_classifier *c, double now, char *errbuf)
{
    dp_flow *fl;
    int32_t moved = 0;
    while ((fl = dp_flowtable_oldest(&c->ft))) {
        if (fl->idle_from + c->o.idle_timeout < now) {
            c->st.evicted_idle++;
            if (end_flow(c, fl, DP_FLOW_IDLE, errbuf) < 0)
                return -1;
        } else if (fl->idle_from > fmax(now, c->prev_time) + c->o.idle_timeout && moved++ < c->ft.count) {
            fl->idle_from = now;
            dp_flowtable_touch(&c->ft, fl);
        } else {
            break;
        }
    }
    return 0;
}

/* A packet of flow fl stamped t, at time `at` of the idle timeouts (see
 * frame_clock): it becomes the most recent flow. */
static void flow_seen(dp_classifier *c, dp_flow *fl, double t, double at)
{
    dp_flowtable_touch(&c->ft, fl);
    if (t > fl->last_time)
        fl->last_time = t;
    if (at > fl->idle_from)
        fl->idle_from = at;
}

/* The time of a frame stamped t for the idle timeouts, into *at: t, after
 * ending the flows idle by then. A frame stamped 0 has no time (a pcapng
 * simple packet block): the previous frame's (0 before any), and no flow
 * ends or moves (two such frames in a row used to count as the clock gone
 * back, and every flow ended idle at the next stamped frame). 0, or -1 +
 * message if the model fails. */
static int frame_clock(dp_classifier *c, double t, double *at, char *errbuf)
{
    if (!(t > 0)) {
        *at = isfinite(c->prev_time) ? c->prev_time : 0;
        return 0;
    }
    int rc = expire(c, t, errbuf);
    c->prev_time = *at = t;
    return rc;
}

int dp_classifier_frame(dp_classifier *c, const dp_frame *f, char *errbuf)
{
    dp_pkt_info info;
    c->st.seen++;
    dp_verdict v = dp_packet_transform(f->linktype, f->data, f->caplen, c->cur, &info);
    double at;
    if (frame_clock(c, f->time, &at, errbuf) < 0)
        return -1;
    if (v != DP_KEEP) {
        if ((unsigned)v < DP_VERDICT_COUNT)
            c->st.skipped[v]++;
        /* a dropped packet (e.g. a pure ACK) still shows the flow is alive */
        if (info.ipver) {
            dp_flow *fl = dp_flowtable_find(&c->ft, dp_flow_id(&info, c->salt));
            if (fl)
                flow_seen(c, fl, f->time, at);
        }
        return 0;
    }
    c->st.kept++;
    uint64_t id = dp_flow_id(&info, c->salt);
    dp_flow *fl = dp_flowtable_find(&c->ft, id);
    if (!fl) {
        if (c->ft.count >= c->ft.cap) {
            c->st.evicted_full++;
            if (end_flow(c, dp_flowtable_oldest(&c->ft), DP_FLOW_EVICTED, errbuf) < 0)
                return -1;
        }
        if (!(fl = dp_flowtable_add(&c->ft, id)))
            return dp_err(errbuf, "classifier: out of memory for flow %d of the table", (int)c->ft.count + 1);
        c->st.flows++;
        fl->tuple = info;
        fl->first_time = fl->last_time = f->time;
        fl->idle_from = at;
        fl->first_index = f->index;
    }
    flow_seen(c, fl, f->time, at);
    if (c->o.per_flow && (fl->done || fl->queued >= (uint32_t)c->o.first_n)) {
        c->st.ignored++;
        return 0;
    }
    if (c->flowcfg)
        return add_to_row(c, fl, &info, f->time, errbuf);
    struct slot *s = &c->slots[c->nb];
    s->time = f->time;
    s->index = f->index;
    s->flow_id = id;
    s->flow = (int32_t)(fl - c->ft.flows);
    s->info = info;
    memcpy(c->vec + (size_t)c->nb * DP_VEC_LEN, c->cur, DP_VEC_LEN);
    fl->queued++;
    fl->inbatch++;
    if (++c->nb == c->o.batch)
        return run_batch(c, errbuf);
    return 0;
}

int dp_classifier_flush(dp_classifier *c, char *errbuf) { return run_batch(c, errbuf); }

int dp_classifier_tick(dp_classifier *c, double now, char *errbuf)
{
    if (run_batch(c, errbuf) < 0)
        return -1;
    return expire(c, now, errbuf);
}

int dp_classifier_finish(dp_classifier *c, dp_flow_reason reason, char *errbuf)
{
    if (run_batch(c, errbuf) < 0)
        return -1;
    dp_flow *fl;
    while ((fl = dp_flowtable_oldest(&c->ft))) {
        if (end_flow(c, fl, reason, errbuf) < 0)
            return -1;
    }
    return 0;
}

/* ---- JSON ------------------------------------------------------------------ */
void dp_cls_addr_str(const dp_pkt_info *t, const uint8_t *a, char *out, size_t cap)
{
    if (t->ipver == 6)
        inet_ntop(AF_INET6, a, out, (socklen_t)cap);
    else
        inet_ntop(AF_INET, a, out, (socklen_t)cap);
}

void dp_cls_result_json(FILE *f, const dp_model *m, const dp_cls_result *r)
{
    char src[64], dst[64];
    const dp_pkt_info *t = r->tuple;
    dp_cls_addr_str(t, t->saddr, src, sizeof src);
    dp_cls_addr_str(t, t->daddr, dst, sizeof dst);
    fprintf(f, "{\"time\":");
    dp_json_num(f, "%.6f", r->time);
    if (r->per_flow) {
        fprintf(f, ",\"end\":");
        dp_json_num(f, "%.6f", r->end);
    }
    fprintf(f, ",\"source\":");
    dp_json_str(f, r->source);
    fprintf(f, ",\"index\":%llu,", (unsigned long long)r->index);
    if (r->per_flow)
        fprintf(f, "\"flow\":\"%016llx\",\"packets\":%u,\"reason\":\"%s\",", (unsigned long long)r->flow_id,
                r->npackets, dp_flow_reason_name(r->reason));
    if (t->proto == 6)
        fprintf(f, "\"proto\":\"tcp\",");
    else if (t->proto == 17)
        fprintf(f, "\"proto\":\"udp\",");
    else
        fprintf(f, "\"proto\":%u,", t->proto);
    fprintf(f, "\"src\":\"%s\",\"sport\":%u,\"dst\":\"%s\",\"dport\":%u,", src, t->sport, dst, t->dport);
    fprintf(f, "\"class\":%d,\"label\":", dp_cls_result_class(r));
    dp_json_str(f, dp_cls_result_label(m, r));
    fprintf(f, ",\"prob\":");
    dp_json_num(f, "%.6f", r->prob[0]);
    fputc(',', f);
    dp_cls_top_json(f, m, r);
    fprintf(f, "}\n");
}

int dp_cls_result_class(const dp_cls_result *r) { return r->unknown || r->ntop < 1 ? -1 : r->top[0]; }

const char *dp_cls_result_label(const dp_model *m, const dp_cls_result *r)
{
    return r->unknown || r->ntop < 1 ? DP_CLS_UNKNOWN : dp_model_class_name(m, r->top[0]);
}

void dp_cls_top_json(FILE *f, const dp_model *m, const dp_cls_result *r)
{
    fprintf(f, "\"top\":[");
    for (int k = 0; k < r->ntop; k++) {
        fprintf(f, "%s{\"class\":%d,\"label\":", k ? "," : "", r->top[k]);
        dp_json_str(f, dp_model_class_name(m, r->top[k]));
        fprintf(f, ",\"prob\":");
        dp_json_num(f, "%.6f", r->prob[k]);
        fputc('}', f);
    }
    fputc(']', f);
}
