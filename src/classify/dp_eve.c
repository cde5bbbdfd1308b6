/* dp_eve: verdicts as Suricata EVE JSON lines (see dp_eve.h). */
#include "classify/dp_eve.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "dataset/dp_labels.h"
#include "util/dp_util.h"

int dp_eve_timestamp(double t, char *out, size_t cap)
{
    const char *zero = "1970-01-01T00:00:00.000000+0000";
    /* up to year 9999: 253402300799 s */
    if (!isfinite(t) || t < 0 || t >= 253402300800.0) {
        snprintf(out, cap, "%s", zero);
        return -1;
    }
    long long us = llround(t * 1e6);
    time_t sec = (time_t)(us / 1000000);
    struct tm tm;
    if (!gmtime_r(&sec, &tm)) {
        snprintf(out, cap, "%s", zero);
        return -1;
    }
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%06lld+0000", date, us % 1000000);
    return 0;
}

const char *dp_eve_proto_name(unsigned proto)
{
    switch (proto) {
    case 1: return "ICMP";
    case 6: return "TCP";
    case 17: return "UDP";
    case 58: return "IPv6-ICMP";
    default: return NULL;
    }
}

/* The common section: timestamp, flow_id, in_iface, event_type, the tuple. */
static void eve_common(FILE *f, const dp_eve_info *e, const dp_cls_result *r)
{
    char ts[40], src[64], dst[64];
    const dp_pkt_info *t = r->tuple;
    dp_eve_timestamp(r->time, ts, sizeof ts);
    fprintf(f, "{\"timestamp\":\"%s\",\"flow_id\":%llu,", ts,
            (unsigned long long)(r->flow_id & DP_EVE_FLOW_ID_MASK));
    if (e->in_iface) {
        fprintf(f, "\"in_iface\":");
        dp_json_str(f, e->in_iface);
        fputc(',', f);
    }
    dp_cls_addr_str(t, t->saddr, src, sizeof src);
    dp_cls_addr_str(t, t->daddr, dst, sizeof dst);
    fprintf(f, "\"event_type\":\"%s\",\"src_ip\":\"%s\",", DP_EVE_EVENT_TYPE, src);
    int ports = t->proto == 6 || t->proto == 17;
    if (ports)
        fprintf(f, "\"src_port\":%u,", t->sport);
    fprintf(f, "\"dest_ip\":\"%s\",", dst);
    if (ports)
        fprintf(f, "\"dest_port\":%u,", t->dport);
    const char *pn = dp_eve_proto_name(t->proto);
    if (pn)
        fprintf(f, "\"proto\":\"%s\"", pn);
    else
        fprintf(f, "\"proto\":\"%u\"", t->proto);
    if (!e->in_iface) {
        fprintf(f, ",\"pcap_filename\":");
        dp_json_str(f, r->source);
        fprintf(f, ",\"pcap_cnt\":%llu", (unsigned long long)r->index + 1);
    }
}

/* The verdict object: class, probability, model, what it was made of. */
static void eve_verdict(FILE *f, const dp_model *m, const dp_eve_info *e, const dp_cls_result *r)
{
    fprintf(f, ",\"%s\":{\"per\":\"%s\",\"class\":%d,\"label\":", DP_EVE_EVENT_TYPE,
            r->per_flow ? "flow" : "packet", dp_cls_result_class(r));
    dp_json_str(f, dp_cls_result_label(m, r));
    fprintf(f, ",\"probability\":");
    dp_json_num(f, "%.6f", r->prob[0]);
    fprintf(f, ",\"model\":");
    dp_json_str(f, e->model_path ? e->model_path : "");
    int task = dp_model_task(m);
    fprintf(f, ",\"kind\":\"%s\",\"task\":\"%s\",\"packets\":%u,", dp_model_kind_name(m),
            task >= 0 && task < DP_NTASKS ? dp_task_name[task] : "", r->npackets);
    if (r->per_flow) {
        char ts[40];
        fprintf(f, "\"reason\":\"%s\",", dp_flow_reason_name(r->reason));
        dp_eve_timestamp(r->time, ts, sizeof ts);
        fprintf(f, "\"start\":\"%s\",", ts);
        dp_eve_timestamp(r->end, ts, sizeof ts);
        fprintf(f, "\"end\":\"%s\",", ts);
    }
    dp_cls_top_json(f, m, r);
    fputc('}', f);
}

void dp_cls_result_eve(FILE *f, const dp_model *m, const dp_eve_info *e, const dp_cls_result *r)
{
    eve_common(f, e, r);
    eve_verdict(f, m, e, r);
    fprintf(f, "}\n");
}
