/* deeppacket classify: run a trained model on recorded or live traffic.
 *
 *   deeppacket classify -m MODEL (-r CAPTURE [CAPTURE...] | -i IFACE) [-f BPF]
 *       [--per packet|flow] [--first N] [-o OUT.jsonl] [--idle-timeout S] [--min-prob P]
 *       [--max-flows N] [--batch N] [-j THREADS] [--format json|eve] [--precision P]
 *
 * One JSON object per verdict on stdout (or OUT.jsonl, written atomically),
 * flushed per line: deeppacket's own JSON lines or Suricata EVE (dp_eve.h);
 * a summary on stderr at exit.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "capture/dp_capture.h"
#include "classify/dp_classify.h"
#include "classify/dp_eve.h"
#include "cli/dp_cli.h"
#include "nn/dp_nn.h"
#include "dataset/dp_preprocess.h"
#include "util/dp_privdrop.h"
#include "util/dp_util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deeppacket classify -m MODEL (-r CAPTURE [CAPTURE...] | -i IFACE) [-f BPF]\n"
            "           [--per packet|flow] [--first N] [-o OUT.jsonl] [--idle-timeout S]\n"
            "           [--min-prob P] [--max-flows N] [--batch N] [-j THREADS] [--format json|eve] [--precision P]\n"
            "           [--snaplen N] [--buffer-size MB] [--user NAME]\n"
            "  -m, --model-file MODEL  model file written by `deeppacket train`\n"
            "  -r, --read CAPTURE...  pcap/pcapng files (flows never span two files); '-' is standard\n"
            "                    input; FIFOs and pipes are read as streams\n"
            "  -i, --interface IFACE  live interface (Ctrl-C or SIGTERM ends it, emitting pending flows)\n"
            "  --snaplen N       live: bytes kept per frame (%d: link header + 1500 + margin)\n"
            "  --buffer-size MB  live: kernel capture buffer (%d MB)\n"
            "  --user NAME       live: user to become once the interface and the output are open\n"
            "                    (default when started as root: %s; root keeps root)\n"
            "  -f, --filter BPF  capture filter (pcap-filter syntax)\n"
            "  --per packet|flow one verdict per kept packet (default) or per bidirectional flow\n"
            "  --first N         per flow: decide from the first N kept packets (10; a flow model\n"
            "                    (train --model gbt|flow) uses its own N, refuses another, and\n"
            "                    gives flow verdicts only)\n"
            "  --idle-timeout S  per flow: a flow silent for S seconds ends (30)\n"
            "  --min-prob P      a verdict whose best probability is below P (0..1) is written\n"
            "                    as class -1, label \"" DP_CLS_UNKNOWN "\" (prob and top keep the guesses;\n"
            "                    0, the default: never); `test` reports what each P keeps\n"
            "  --max-flows N     flow table size; when full the least recently active flow\n"
            "                    ends (65536)\n"
            "  --batch N         packets per model call (64)\n"
            "  -j, --threads N   threads of the matrix library (default: all CPUs)\n"
            "  --precision P     fp32 (default), bf16 (the model's products in bf16, float32 sums;\n"
            "                    needs AVX512_BF16) or auto (bf16 where the CPU has it)\n"
            "  -o, --output OUT.jsonl  write verdicts there instead of stdout: atomically for -r\n"
            "                    (Ctrl-C before the captures' end: OUT left as it was, exit 130),\n"
            "                    line by line for -i (kill -9 keeps the lines written);\n"
            "                    a FIFO, device or - is written through, a symlink followed\n"
            "  --format json|eve json (default): JSON lines {time, source, index, proto, src,\n"
            "                    sport, dst, dport, class, label, prob, top[3]} (+ end, flow,\n"
            "                    packets, reason per flow); eve: Suricata EVE JSON lines\n"
            "                    {timestamp, flow_id, in_iface, event_type \"" DP_EVE_EVENT_TYPE "\", src_ip,\n"
            "                    src_port, dest_ip, dest_port, proto, pcap_filename, pcap_cnt,\n"
            "                    " DP_EVE_EVENT_TYPE " {per, class, label, probability, model, kind, task,\n"
            "                    packets, top[3]}}\n"
            "Summary on stderr.\n",
            DP_LIVE_SNAPLEN, DP_LIVE_BUFFER_MB, DP_PRIVDROP_DEFAULT_USER);
}

struct out_ctx {
    FILE *f;
    const dp_model *m;
    int err;          /* errno of the first write that failed; 0 while none did */
    int eve;          /* --format eve */
    dp_eve_info ei;
};

/* Writes one verdict line and flushes it. After a write fails it writes
 * nothing more: o->err keeps that write's errno (the stream keeps only an
 * error flag), and run_source stops the run at its next step. */
static void emit(void *ctx, const dp_cls_result *r)
{
    struct out_ctx *o = ctx;
    if (o->err)
        return;
    errno = 0;
    if (o->eve)
        dp_cls_result_eve(o->f, o->m, &o->ei, r);
    else
        dp_cls_result_json(o->f, o->m, r);
    if (fflush(o->f) != 0 || ferror(o->f))
        o->err = errno ? errno : EIO;
}

/* A stream (-r -, a FIFO) silent this long between two records has its
 * pending verdicts handed out (as a live read timeout does). */
#define STREAM_STALL_MS 100

static double wall_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

/* Warns (naming the source and its link type) when the transform cannot
 * parse this capture's frames; returns 1 then, else 0. */
static int warn_linktype(dp_capture *cap, const char *name)
{
    int lt = dp_capture_linktype(cap);
    if (dp_linktype_supported(lt))
        return 0;
    const char *ltn = dp_capture_linktype_name(lt);
    fprintf(stderr, "deeppacket classify: warning: %s: link type %d%s%s%s is not supported: its frames are skipped\n",
            name, lt, ltn ? " (" : "", ltn ? ltn : "", ltn ? ")" : "");
    return 1;
}

/* Reads one source to its end (*ended = 1 then), an interruption or the
 * first verdict that could not be written (oc->err, reported by
 * finish_output). Returns 0; 2 after a read error (a capture cut short or
 * corrupt: the verdicts of the frames before it are written); 1 on another
 * error. */
static int run_source(dp_classifier *cls, const struct out_ctx *oc, dp_capture *cap, const char *name, int live,
                      int *ended)
{
    char errbuf[DP_ERRBUF_SIZE] = "";
    int rc = 0, model_failed = 0, kill_point = !live && getenv("DP_TEST_KILL_AT"); /* tests only */
    *ended = 0;
    dp_classifier_begin(cls, name);
    dp_cli_signals_watch(cap);
    while (!dp_cli_stop && !oc->err) {
        dp_frame f;
        dp_next r = dp_capture_next(cap, &f, errbuf);
        if (r == DP_NEXT_FRAME) {
            if (dp_classifier_frame(cls, &f, errbuf) < 0) {
                fprintf(stderr, "deeppacket classify: %s\n", errbuf);
                rc = model_failed = 1;
                break;
            }
            if (kill_point)
                dp_test_kill_point("classify");
        } else if (r == DP_NEXT_TIMEOUT || (r == DP_NEXT_BREAK && !dp_cli_stop)) {
            /* live read timeout: keep latency low, end idle flows; a stream
             * that stalls: hand out what was read (its clock stands still) */
            if ((live ? dp_classifier_tick(cls, wall_now(), errbuf) : dp_classifier_flush(cls, errbuf)) < 0) {
                fprintf(stderr, "deeppacket classify: %s\n", errbuf);
                rc = model_failed = 1;
                break;
            }
        } else if (r == DP_NEXT_END || r == DP_NEXT_BREAK) {
            *ended = r == DP_NEXT_END;
            break;
        } else {
            fprintf(stderr, "deeppacket classify: %s\n", errbuf);
            rc = 2;
            break;
        }
    }
    dp_cli_signals_watch(NULL);
    /* after the model failed the pending flows are not decided: it would fail
     * (and be reported) again; after a read error (a capture cut short) what
     * was read is */
    if (!model_failed && !oc->err && dp_classifier_finish(cls, dp_cli_stop ? DP_FLOW_INTERRUPTED : DP_FLOW_END, errbuf) < 0) {
        fprintf(stderr, "deeppacket classify: %s\n", errbuf);
        rc = 1;
    }
    return rc;
}

/* The command line of one run. */
struct cls_args {
    const char *model_path, *iface, *bpf, *out_path, *user;
    dp_live_opts lo;
    const char **files;
    int nfiles, read_given, threads, per_given, first_given, help, eve, precision;
    dp_cls_opts o;
};

/* What one run holds open; cls_close releases whatever is set. */
struct cls_run {
    dp_privdrop pd;
    dp_model *m;
    dp_capture *live;
    dp_afile af;
    int out_open; /* af holds an open output not yet committed or aborted */
    struct out_ctx oc;
    dp_classifier *cls;
    int bad_linktype;
    int cut_short; /* -r: a signal stopped the run before the captures' end */
    int read_error; /* -r: a capture was cut short or corrupt (its earlier frames were classified) */
};

enum {
    OPT_USER = DP_CLI_LONG, OPT_FORMAT, OPT_PER, OPT_FIRST, OPT_MAX_FLOWS, OPT_BATCH, OPT_PRECISION, OPT_SNAPLEN,
    OPT_BUFFER, OPT_IDLE, OPT_MIN_PROB
};

/* The options with a count or a number of seconds; 0, 2 after a usage
 * error, or -1 when c is not one of them. */
static int parse_number_option(struct cls_args *ca, int c, const char *v)
{
    static const struct {
        int c;
        const char *what;
        long lo, hi;
    } t[] = {{OPT_FIRST, "--first wants a count >= 1", 1, 1000000},
             {OPT_MAX_FLOWS, "--max-flows wants a count in [1, 67108864]", 1, 1L << 26},
             {OPT_BATCH, "--batch wants a count in [1, 4096]", 1, 4096},
             {'j', "-j wants a thread count in [1, 64]", 1, 64},
             {OPT_SNAPLEN, "--snaplen wants bytes in [128, 262144]", 128, 262144},
             {OPT_BUFFER, "--buffer-size wants MB in [1, 2047]", 1, 2047}};
    int *dst[] = {&ca->o.first_n, NULL /* max_flows: an int32_t */, &ca->o.batch, &ca->threads, &ca->lo.snaplen,
                  &ca->lo.buffer_mb};
    if (c == OPT_MIN_PROB) {
        if (dp_cli_parse_double(v, 0, 1, &ca->o.min_prob) < 0)
            return dp_cli_usage_error("classify", "--min-prob wants a probability in [0, 1], not '%s'", v);
        return 0;
    }
    if (c == OPT_IDLE) {
        if (dp_cli_parse_double(v, 1e-6, 1e9, &ca->o.idle_timeout) < 0)
            return dp_cli_usage_error("classify", "--idle-timeout wants seconds > 0, not '%s'", v);
        return 0;
    }
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        long n;
        if (t[i].c != c)
            continue;
        if (dp_cli_parse_int(v, t[i].lo, t[i].hi, &n) < 0)
            return dp_cli_usage_error("classify", "%s, not '%s'", t[i].what, v);
        ca->first_given |= c == OPT_FIRST;
        if (dst[i])
            *dst[i] = (int)n;
        else
            ca->o.max_flows = (int32_t)n;
        return 0;
    }
    return -1;
}

/* One option c (dp_cli_getopt's) with its value v into *(struct cls_args *)
 * ctx; returns 0, or 2 after a usage error naming the option. */
static int parse_option(int c, const char *v, void *ctx)
{
    struct cls_args *ca = ctx;
    int rc = parse_number_option(ca, c, v);
    if (rc >= 0)
        return rc;
    switch (c) {
    case 'm': ca->model_path = v; return 0;
    case 'r':
    case 1: /* an operand: one more capture of -r */
        ca->read_given |= c == 'r';
        ca->files[ca->nfiles++] = v;
        return 0;
    case 'i': ca->iface = v; return 0;
    case 'f': ca->bpf = v; return 0;
    case 'o': ca->out_path = v; return 0;
    case OPT_USER: ca->user = v; return 0;
    case OPT_FORMAT:
        if (strcmp(v, "json") && strcmp(v, "eve"))
            return dp_cli_usage_error("classify", "--format wants 'json' or 'eve', not '%s'", v);
        ca->eve = !strcmp(v, "eve");
        return 0;
    case OPT_PER:
        ca->per_given = 1;
        if (strcmp(v, "packet") && strcmp(v, "flow"))
            return dp_cli_usage_error("classify", "--per wants 'packet' or 'flow', not '%s'", v);
        ca->o.per_flow = !strcmp(v, "flow");
        return 0;
    case OPT_PRECISION:
        if ((ca->precision = dp_nn_precision_parse(v)) < 0)
            return dp_cli_usage_error("classify", "--precision wants fp32, bf16 or auto, not '%s'", v);
        return 0;
    }
    return dp_cli_usage_error("classify", "unknown option (see --help)"); /* not reached */
}

/* Checks that the options given make one run; returns 0, or 2 after a
 * usage error. */
static int check_args(const struct cls_args *ca)
{
    if (!ca->model_path)
        return dp_cli_usage_error("classify", "-m MODEL is required (see --help)");
    if (!!ca->iface == !!ca->nfiles)
        return dp_cli_usage_error("classify", "give either -r CAPTURE... or -i IFACE (see --help)");
    if (ca->user && !ca->iface)
        return dp_cli_usage_error("classify", "--user applies to live capture (-i) only");
    return 0;
}

/* Parses argv into *ca (ca->files has room for argc names); returns 0
 * (ca->help set for -h), or 2 after a usage error. The operands are more
 * captures for -r (-r A B C reads three files), kept in their order among
 * the -r values. */
static int parse_args(int argc, char **argv, struct cls_args *ca)
{
    static const struct option longopts[] = {
        {"model-file", required_argument, NULL, 'm'}, {"read", required_argument, NULL, 'r'},
        {"interface", required_argument, NULL, 'i'},  {"filter", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},     {"threads", required_argument, NULL, 'j'},
        {"user", required_argument, NULL, OPT_USER},  {"format", required_argument, NULL, OPT_FORMAT},
        {"per", required_argument, NULL, OPT_PER},    {"first", required_argument, NULL, OPT_FIRST},
        {"max-flows", required_argument, NULL, OPT_MAX_FLOWS},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"precision", required_argument, NULL, OPT_PRECISION},
        {"snaplen", required_argument, NULL, OPT_SNAPLEN},
        {"buffer-size", required_argument, NULL, OPT_BUFFER},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"min-prob", required_argument, NULL, OPT_MIN_PROB},
        {"help", no_argument, NULL, DP_CLI_HELP},
        {NULL, 0, NULL, 0},
    };
    int rc = dp_cli_getopt("classify", argc, argv, "-m:r:i:f:o:j:", longopts, parse_option, ca, &ca->help);
    if (rc || ca->help)
        return rc;
    while (optind < argc) /* after "--": captures whose names start with '-' */
        ca->files[ca->nfiles++] = argv[optind++];
    if (ca->nfiles && !ca->read_given)
        return dp_cli_usage_error("classify", "unexpected argument '%s' (captures follow -r; see --help)",
                                  ca->files[0]);
    return check_args(ca);
}

/* Prints "deeppacket classify: ERRBUF" and returns 1. */
static int fail(const char *errbuf)
{
    fprintf(stderr, "deeppacket classify: %s\n", errbuf);
    return 1;
}

/* Loads the model; a flow model always gives flow verdicts from its own N.
 * Returns 0, 1 on error, 2 when --per packet or another --first was asked
 * of a flow model. */
static int load_model(struct cls_run *r, struct cls_args *ca, char *errbuf)
{
    r->m = dp_model_load(ca->model_path, errbuf);
    if (!r->m)
        return fail(errbuf);
    dp_model_set_precision(r->m, ca->precision, errbuf); /* resolved by cmd_classify: cannot fail */
    if (dp_model_flowcfg(r->m)) { /* a flow model: per flow, from its own N packets */
        if (ca->per_given && !ca->o.per_flow)
            return dp_cli_usage_error("classify", "%s is a %s flow model: it gives one verdict per flow (--per flow)",
                                      ca->model_path, dp_model_kind_name(r->m));
        int N = dp_model_flowcfg(r->m)->npackets;
        if (ca->first_given && ca->o.first_n != N) /* it was ignored */
            return dp_cli_usage_error("classify", "%s is a %s flow model: it decides from the first %d packets of a "
                                      "flow, its own N (train --packets), not --first %d", ca->model_path,
                                      dp_model_kind_name(r->m), N, ca->o.first_n);
        ca->o.per_flow = 1;
        ca->o.first_n = N;
    }
    return 0;
}

/* Checks that every named capture file is a pcap or pcapng file (streams are
 * left to libpcap); returns 0, or 1 after a message. */
static int probe_files(const struct cls_args *ca, char *errbuf)
{
    for (int i = 0; i < ca->nfiles; i++) {
        if (dp_capture_is_stream(ca->files[i]))
            continue; /* a probe would block or eat the magic: libpcap checks it */
        dp_probe p = dp_capture_probe(ca->files[i], errbuf);
        if (p == DP_PROBE_NOT_CAPTURE) {
            fprintf(stderr, "deeppacket classify: %s: not a pcap or pcapng file\n", ca->files[i]);
            return 1;
        }
        if (p == DP_PROBE_ERROR)
            return fail(errbuf);
    }
    return 0;
}

/* Opens everything the run needs, in order: the privilege-drop plan, the
 * model, the captures' check, the interface, the output, the classifier;
 * then drops root. Returns 0, or the exit code after a message (what was
 * opened is left in *r for cls_close). */
static int cls_open(struct cls_run *r, struct cls_args *ca, char *errbuf)
{
    int rc;
    if (ca->iface && dp_privdrop_plan(&r->pd, ca->user, errbuf) < 0)
        return fail(errbuf);
    if ((rc = load_model(r, ca, errbuf)) != 0 || (rc = probe_files(ca, errbuf)) != 0)
        return rc;
    if (ca->iface) {
        r->live = dp_capture_open_live_opts(ca->iface, 100, &ca->lo, errbuf);
        if (!r->live || (ca->bpf && dp_capture_set_filter(r->live, ca->bpf, errbuf) < 0))
            return fail(errbuf);
    }
    r->oc = (struct out_ctx){stdout, r->m, 0, ca->eve, {ca->model_path, ca->iface}};
    if (ca->out_path) {
        /* live: lines are visible (and survive kill -9) as they are written */
        if (dp_afile_open_flags(&r->af, ca->out_path, r->live ? DP_AFILE_LIVE : 0, errbuf) < 0)
            return fail(errbuf);
        r->out_open = 1;
        r->oc.f = r->af.f;
    }
    r->cls = dp_classifier_new(r->m, &ca->o, emit, &r->oc, errbuf);
    if (!r->cls)
        return fail(errbuf);
    /* the interface and the output are open: root is no longer needed */
    /* (a live -o is written in place: after the drop nothing needs its folder) */
    if (r->live && dp_privdrop_apply(&r->pd, errbuf) < 0) {
        fprintf(stderr, "deeppacket classify: %s; stopping\n", errbuf);
        return 1;
    }
    return 0;
}

/* Releases what cls_open opened (an output still open is dropped). */
static void cls_close(struct cls_run *r)
{
    dp_classifier_free(r->cls);
    if (r->out_open)
        dp_afile_abort(&r->af);
    dp_capture_close(r->live);
    dp_model_free(r->m);
}

/* Classifies the interface or each capture file in turn; returns 0, or 1
 * if a source failed (r->read_error set instead when a capture file was cut
 * short or corrupt: the run goes on with the next one). Sets r->cut_short when a signal stopped the run
 * before every capture was read to its end (a stream, which has no end of
 * its own, ends by that signal as a live run does). */
static int classify_sources(struct cls_run *r, const struct cls_args *ca, char *errbuf)
{
    int ended;
    if (r->live) {
        r->bad_linktype += warn_linktype(r->live, ca->iface);
        return run_source(r->cls, &r->oc, r->live, ca->iface, 1, &ended) != 0;
    }
    int rc = 0, i;
    for (i = 0; i < ca->nfiles && !dp_cli_stop && !r->oc.err; i++) {
        dp_capture *cap = dp_capture_open_file(ca->files[i], errbuf);
        if (cap)
            dp_capture_set_stall_timeout(cap, STREAM_STALL_MS);
        if (!cap || (ca->bpf && dp_capture_set_filter(cap, ca->bpf, errbuf) < 0)) {
            fprintf(stderr, "deeppacket classify: %s\n", errbuf);
            dp_capture_close(cap);
            r->cut_short = dp_cli_stop != 0; /* a stream's header wait, interrupted */
            return 1;
        }
        r->bad_linktype += warn_linktype(cap, ca->files[i]);
        int src_rc = run_source(r->cls, &r->oc, cap, ca->files[i], 0, &ended);
        r->read_error |= src_rc == 2;
        rc |= src_rc == 1;
        dp_capture_close(cap);
        if (dp_cli_stop && !ended && !dp_capture_is_stream(ca->files[i]))
            r->cut_short = 1;
    }
    if (dp_cli_stop && i < ca->nfiles)
        r->cut_short = 1; /* captures never opened */
    return rc;
}

/* Commits the output when the run succeeded (also when a capture was cut
 * short or corrupt, r->read_error: the verdicts of what could be read are
 * kept, as on standard output; the exit status is 1), or was interrupted
 * where that is its normal end (live, a stream); else drops it: an atomic
 * OUT stays as it was. Returns RC; 1 after a message naming the output and the failed
 * write's errno when a verdict could not be written; 128 + the signal
 * (130 SIGINT, 143 SIGTERM) after a message when a signal cut the reading
 * of recorded captures short (r->cut_short). */
static int finish_output(struct cls_run *r, const struct cls_args *ca, int rc, char *errbuf)
{
    const char *name = !ca->out_path || !strcmp(ca->out_path, "-") ? "standard output" : ca->out_path;
    int atomic = r->out_open && r->af.tmp;
    if (r->oc.err) {
        fprintf(stderr, "deeppacket classify: %s: cannot write the verdicts: %s; %s\n", name,
                strerror(r->oc.err), atomic ? "it was left as it was" : "stopped at the first failed write");
        if (r->oc.f == stdout)
            clearerr(stdout); /* reported here, with its cause: not again at exit */
        rc = 1;
    } else if (r->cut_short) {
        int sig = dp_cli_stop;
        fprintf(stderr, "deeppacket classify: interrupted (%s) before the end of the captures: %s%s%s\n",
                sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "a signal",
                atomic ? "" : "the verdicts written to ", name, atomic ? " was left as it was" : " are incomplete");
        rc = rc ? rc : 128 + sig;
    }
    if (r->out_open) {
        r->out_open = 0;
        if (!r->oc.err && !r->cut_short && (rc == 0 || dp_cli_stop)) {
            if (dp_afile_commit(&r->af, errbuf) < 0) {
                fprintf(stderr, "deeppacket classify: %s\n", errbuf);
                rc = 1;
            } else if (r->read_error) {
                fprintf(stderr, "deeppacket classify: %s holds the verdicts of the frames read before the error\n",
                        name);
            }
        } else
            dp_afile_abort(&r->af);
    }
    return rc ? rc : r->read_error != 0;
}

/* Prints the run's summary (and a kernel-drop warning) on stderr. */
static void print_summary(const struct cls_run *r, const struct cls_args *ca, double dt, int live,
                          uint64_t krecv, uint64_t kdrop)
{
    const dp_cls_stats *st = dp_classifier_stats(r->cls);
    fprintf(stderr,
            "deeppacket classify: %llu packets seen, %llu kept, %llu classified, %llu flows, "
            "%llu verdicts (per %s) in %.2f s: %.0f packets/s (model %.2f s, %.2f CPU s)\n",
            (unsigned long long)st->seen, (unsigned long long)st->kept, (unsigned long long)st->classified,
            (unsigned long long)st->flows, (unsigned long long)st->verdicts, ca->o.per_flow ? "flow" : "packet", dt,
            dt > 0 ? st->seen / dt : 0.0, st->model_seconds, st->model_cpu_seconds);
    fprintf(stderr, "deeppacket classify: skipped:");
    for (int v = 1; v < DP_VERDICT_COUNT; v++)
        fprintf(stderr, " %s %llu%s", dp_verdict_name((dp_verdict)v), (unsigned long long)st->skipped[v],
                v + 1 < DP_VERDICT_COUNT ? "," : "");
    if (ca->o.per_flow)
        fprintf(stderr, "; beyond first %d of their flow %llu; flows ended idle %llu, evicted (table full) %llu",
                ca->o.first_n, (unsigned long long)st->ignored, (unsigned long long)st->evicted_idle,
                (unsigned long long)st->evicted_full);
    if (ca->o.min_prob > 0)
        fprintf(stderr, "; unknown (probability below %g) %llu of %llu verdicts", ca->o.min_prob,
                (unsigned long long)st->unknown, (unsigned long long)st->verdicts);
    if (live)
        fprintf(stderr, "; kernel: %llu received, %llu dropped", (unsigned long long)krecv,
                (unsigned long long)kdrop);
    fprintf(stderr, "%s\n", dp_cli_stop ? " (interrupted)" : "");
    if (kdrop)
        fprintf(stderr, "deeppacket classify: warning: the kernel dropped %llu packets on %s "
                        "(buffer full): raise --buffer-size or lower --snaplen\n",
                (unsigned long long)kdrop, ca->iface);
}

/* Runs the opened classifier over its sources, closes the interface,
 * commits the output and prints the summary; returns the exit code. */
static int cls_execute(struct cls_run *r, const struct cls_args *ca, char *errbuf)
{
    dp_cli_signals_install();
    if (r->live)
        fprintf(stderr, "deeppacket classify: listening on %s%s%s\n", ca->iface, ca->bpf ? ", filter " : "",
                ca->bpf ? ca->bpf : "");
    double t0 = dp_now();
    int rc = classify_sources(r, ca, errbuf);
    double dt = dp_now() - t0;
    dp_cli_signals_restore();

    uint64_t krecv = 0, kdrop = 0;
    int was_live = r->live != NULL;
    if (r->live) {
        dp_capture_stats(r->live, &krecv, &kdrop);
        dp_capture_close(r->live);
        r->live = NULL;
    }
    rc = finish_output(r, ca, rc, errbuf);
    print_summary(r, ca, dt, was_live, krecv, kdrop);
    if (r->bad_linktype && dp_classifier_stats(r->cls)->kept == 0 && rc == 0) {
        fprintf(stderr, "deeppacket classify: nothing could be classified: unsupported link type\n");
        rc = 1;
    }
    return rc;
}

int cmd_classify(int argc, char **argv)
{
    struct cls_args ca = {.lo = {DP_LIVE_SNAPLEN, DP_LIVE_BUFFER_MB}};
    dp_cls_opts_default(&ca.o);
    ca.files = calloc((size_t)argc, sizeof *ca.files);
    if (!ca.files)
        return 1;
    int rc = parse_args(argc, argv, &ca);
    if (rc == 0 && ca.help)
        usage(stdout);
    else if (rc == 0) {
        char errbuf[DP_ERRBUF_SIZE] = "";
        struct cls_run r = {0};
        dp_nn_set_threads(ca.threads);
        ca.precision = dp_nn_precision_resolve(ca.precision, errbuf); /* refused before the model is read */
        rc = ca.precision >= 0 ? cls_open(&r, &ca, errbuf) : fail(errbuf);
        if (rc == 0)
            rc = cls_execute(&r, &ca, errbuf);
        cls_close(&r);
    }
    free(ca.files);
    return rc;
}
