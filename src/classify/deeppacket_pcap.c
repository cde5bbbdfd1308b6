/* The public capture reader (include/deeppacket.h, deeppacket_pcap_*):
 * `classify -r PATH` one verdict at a time. A dp_classifier over the
 * handle's model emits verdicts as JSON lines (dp_cls_result_json, the
 * CLI's writer) into a queue; deeppacket_pcap_next feeds frames until the
 * queue holds a line, so a caller pulls verdicts lazily and memory holds at
 * most the verdicts of one batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deeppacket.h"
#include "capture/dp_capture.h"
#include "classify/dp_api.h"
#include "classify/dp_classify.h"

struct deeppacket_pcap {
    dp_model *m;
    dp_capture *cap;
    dp_classifier *cls;
    char *path;          /* the source name in the JSON lines */
    char **lines;        /* queued verdicts, [head, count) not yet handed out */
    size_t head, count, cap_lines;
    char *current;       /* the line last handed out */
    int oom;             /* a verdict could not be queued */
    int done;            /* the capture is finished (or failed) */
    int failed;          /* err holds an error to report after the queue */
    char err[DEEPPACKET_ERRBUF_SIZE];
};

/* dp_cls_emit_fn: appends r as one JSON line (its newline cut) to the queue. */
static void queue_verdict(void *ctx, const dp_cls_result *r)
{
    deeppacket_pcap *pc = ctx;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = dp_memstream_open(&buf, &len);
    if (!f) {
        pc->oom = 1;
        return;
    }
    dp_cls_result_json(f, pc->m, r);
    if (dp_memstream_close(f) != 0 || !buf) {
        free(buf);
        pc->oom = 1;
        return;
    }
    if (len > 0 && buf[len - 1] == '\n')
        buf[len - 1] = 0;
    if (pc->count == pc->cap_lines) {
        size_t ncap = pc->cap_lines ? 2 * pc->cap_lines : 64;
        char **nl = realloc(pc->lines, ncap * sizeof *nl);
        if (!nl) {
            free(buf);
            pc->oom = 1;
            return;
        }
        pc->lines = nl;
        pc->cap_lines = ncap;
    }
    pc->lines[pc->count++] = buf;
}

/* The classifier options for per_flow / first_n (see the header), checked
 * against the model; -1 + message when they do not fit. */
static int pcap_options(dp_model *m, int per_flow, int first_n, dp_cls_opts *o, char *errbuf)
{
    dp_cls_opts_default(o);
    if (per_flow < -1 || per_flow > 1)
        return dp_err(errbuf, "deeppacket_pcap_open: per_flow is -1, 0 or 1, not %d", per_flow);
    if (first_n < 0 || first_n > 1000000)
        return dp_err(errbuf, "deeppacket_pcap_open: first_n is 0 (default) or in [1, 1000000], not %d", first_n);
    const dp_flowcfg *fc = dp_model_flowcfg(m);
    if (fc) {
        if (per_flow == 0)
            return dp_err(errbuf, "a %s flow model gives one verdict per flow, not per packet",
                          dp_model_kind_name(m));
        o->per_flow = 1;
        o->first_n = fc->npackets;
        return 0;
    }
    o->per_flow = per_flow == 1;
    if (first_n > 0)
        o->first_n = first_n;
    return 0;
}

deeppacket_pcap *deeppacket_pcap_open(deeppacket *dp, const char *path, int per_flow, int first_n, char *errbuf)
{
    dp_cls_opts o;
    if (!dp || !path || !*path) {
        dp_err(errbuf, "deeppacket_pcap_open: no %s", !dp ? "model handle (NULL)" : "capture path");
        return NULL;
    }
    dp_model *m = dp_api_model(dp);
    if (pcap_options(m, per_flow, first_n, &o, errbuf) < 0)
        return NULL;
    o.min_prob = dp_api_min_prob(dp);
    if (!dp_capture_is_stream(path)) {
        dp_probe p = dp_capture_probe(path, errbuf);
        if (p == DP_PROBE_ERROR)
            return NULL;
        if (p == DP_PROBE_NOT_CAPTURE) {
            dp_err(errbuf, "%s: not a pcap or pcapng file", path);
            return NULL;
        }
    }
    deeppacket_pcap *pc = calloc(1, sizeof *pc);
    if (!pc || !(pc->path = strdup(path))) {
        free(pc);
        dp_err(errbuf, "%s: out of memory", path);
        return NULL;
    }
    pc->m = m;
    if (!(pc->cap = dp_capture_open_file(path, errbuf)) ||
        !(pc->cls = dp_classifier_new(m, &o, queue_verdict, pc, errbuf))) {
        deeppacket_pcap_close(pc);
        return NULL;
    }
    dp_capture_set_stall_timeout(pc->cap, 100);
    dp_classifier_begin(pc->cls, pc->path);
    return pc;
}

/* Ends the capture: pending verdicts are queued, then the read error (rc
 * -1, errbuf set) or the link-type check decides what the caller sees
 * after them. Returns 0, or -1 + message. */
static int pcap_finish(deeppacket_pcap *pc, int rc, char *errbuf)
{
    char fin[DEEPPACKET_ERRBUF_SIZE];
    pc->done = 1;
    if (dp_classifier_finish(pc->cls, DP_FLOW_END, fin) < 0)
        return dp_err(errbuf, "%s", fin);
    if (rc < 0)
        return -1;
    int lt = dp_capture_linktype(pc->cap);
    if (!dp_linktype_supported(lt) && dp_classifier_stats(pc->cls)->kept == 0)
        return dp_err(errbuf, "%s: link type %d is not supported: nothing could be classified", pc->path, lt);
    return 0;
}

/* Feeds frames until a verdict is queued or the capture ends. Returns 0, or
 * -1 + message (a read error or a failed model; the verdicts before it stay
 * queued). */
static int pcap_fill(deeppacket_pcap *pc, char *errbuf)
{
    while (!pc->done && pc->head == pc->count && !pc->oom) {
        dp_frame f;
        int r = dp_capture_next(pc->cap, &f, errbuf);
        if (r == DP_NEXT_FRAME || r == DP_NEXT_TIMEOUT) {
            /* a stream that stalls: what was read is decided meanwhile */
            if ((r == DP_NEXT_FRAME ? dp_classifier_frame(pc->cls, &f, errbuf)
                                    : dp_classifier_flush(pc->cls, errbuf)) < 0) {
                pc->done = 1;
                return -1;
            }
        } else if (r == DP_NEXT_END) {
            return pcap_finish(pc, 0, errbuf);
        } else {
            return pcap_finish(pc, -1, errbuf);
        }
    }
    return 0;
}

int deeppacket_pcap_next(deeppacket_pcap *pc, const char **json, char *errbuf)
{
    if (!pc || !json)
        return dp_err(errbuf, "deeppacket_pcap_next: no %s (NULL)", !pc ? "reader" : "place for the verdict");
    free(pc->current);
    pc->current = NULL;
    *json = NULL;
    if (pc->head == pc->count && pcap_fill(pc, pc->err) < 0)
        pc->failed = 1; /* reported once the verdicts before it are out */
    if (pc->oom) {
        pc->done = 1;
        pc->oom = 0;
        return dp_err(errbuf, "%s: out of memory for the verdicts", pc->path);
    }
    if (pc->head < pc->count) {
        pc->current = pc->lines[pc->head++];
        if (pc->head == pc->count)
            pc->head = pc->count = 0;
        *json = pc->current;
        return 1;
    }
    if (pc->failed) {
        pc->failed = 0;
        return dp_err(errbuf, "%s", pc->err);
    }
    return 0;
}

void deeppacket_pcap_close(deeppacket_pcap *pc)
{
    if (!pc)
        return;
    for (size_t i = pc->head; i < pc->count; i++)
        free(pc->lines[i]);
    free(pc->lines);
    free(pc->current);
    dp_classifier_free(pc->cls);
    dp_capture_close(pc->cap);
    free(pc->path);
    free(pc);
}
