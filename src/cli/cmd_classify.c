/* deeppacket classify: run a trained model on recorded or live traffic.
 *
 *   deeppacket classify -m MODEL (-r CAPTURE [CAPTURE...] | -i IFACE) [-f BPF]
 *       [--per packet|flow] [--first N] [-o OUT.jsonl] [--idle-timeout S]
 *       [--max-flows N] [--batch N] [--threads N]
 *
 * One JSON object per verdict on stdout (or OUT.jsonl, written atomically),
 * flushed per line; a summary on stderr at exit.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "capture/dp_capture.h"
#include "classify/dp_classify.h"
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
            "           [--max-flows N] [--batch N] [--threads N]\n"
            "           [--snaplen N] [--buffer-size MB] [--user NAME]\n"
            "  -m MODEL          model file written by `deeppacket train`\n"
            "  -r CAPTURE...     pcap/pcapng files (flows never span two files); '-' is standard\n"
            "                    input; FIFOs and pipes are read as streams\n"
            "  -i IFACE          live interface (Ctrl-C or SIGTERM ends it, emitting pending flows)\n"
            "  --snaplen N       live: bytes kept per frame (%d: link header + 1500 + margin)\n"
            "  --buffer-size MB  live: kernel capture buffer (%d MB)\n"
            "  --user NAME       live: user to become once the interface and the output are open\n"
            "                    (default when started as root: %s; root keeps root)\n"
            "  -f BPF            capture filter (pcap-filter syntax)\n"
            "  --per packet|flow one verdict per kept packet (default) or per bidirectional flow\n"
            "  --first N         per flow: decide from the first N kept packets (10; a flow model\n"
            "                    (train --model gbt|flow) uses its own N and gives flow verdicts only)\n"
            "  --idle-timeout S  per flow: a flow silent for S seconds ends (30)\n"
            "  --max-flows N     flow table size; when full the least recently active flow\n"
            "                    ends (65536)\n"
            "  --batch N         packets per model call (64)\n"
            "  --threads N       threads of the matrix library (default: all CPUs)\n"
            "  -o OUT.jsonl      write verdicts there instead of stdout: atomically for -r,\n"
            "                    line by line for -i (kill -9 keeps the lines written);\n"
            "                    a FIFO, device or - is written through, a symlink followed\n"
            "Output: JSON lines {time, source, index, proto, src, sport, dst, dport, class,\n"
            "label, prob, top[3]} (+ end, flow, packets, reason per flow). Summary on stderr.\n",
            DP_LIVE_SNAPLEN, DP_LIVE_BUFFER_MB, DP_PRIVDROP_DEFAULT_USER);
}

struct out_ctx {
    FILE *f;
    const dp_model *m;
    int failed;
};

static void emit(void *ctx, const dp_cls_result *r)
{
    struct out_ctx *o = ctx;
    dp_cls_result_json(o->f, o->m, r);
    if (fflush(o->f) != 0)
        o->failed = 1;
}

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
    const char *ltn = dp_preprocess_linktype_name(lt);
    fprintf(stderr, "deeppacket classify: warning: %s: link type %d%s%s%s is not supported: its frames are skipped\n",
            name, lt, ltn ? " (" : "", ltn ? ltn : "", ltn ? ")" : "");
    return 1;
}

/* Reads one source to its end (or an interruption). Returns 0, or 1 on error. */
static int run_source(dp_classifier *cls, dp_capture *cap, const char *name, int live)
{
    char errbuf[DP_ERRBUF_SIZE] = "";
    int rc = 0;
    dp_classifier_begin(cls, name);
    dp_cli_signals_watch(cap);
    while (!dp_cli_stop) {
        dp_frame f;
        int r = dp_capture_next(cap, &f, errbuf);
        if (r == 1) {
            if (dp_classifier_frame(cls, &f, errbuf) < 0) {
                fprintf(stderr, "deeppacket classify: %s\n", errbuf);
                rc = 1;
                break;
            }
        } else if (r == 2 || (r == 3 && !dp_cli_stop)) {
            /* live read timeout: keep latency low, end idle flows */
            if (live && dp_classifier_tick(cls, wall_now(), errbuf) < 0) {
                fprintf(stderr, "deeppacket classify: %s\n", errbuf);
                rc = 1;
                break;
            }
        } else if (r == 0 || r == 3) {
            break;
        } else {
            fprintf(stderr, "deeppacket classify: %s\n", errbuf);
            rc = 1;
            break;
        }
    }
    dp_cli_signals_watch(NULL);
    if (dp_classifier_finish(cls, dp_cli_stop ? DP_FLOW_INTERRUPTED : DP_FLOW_END, errbuf) < 0) {
        fprintf(stderr, "deeppacket classify: %s\n", errbuf);
        rc = 1;
    }
    return rc;
}

int cmd_classify(int argc, char **argv)
{
    const char *model_path = NULL, *iface = NULL, *bpf = NULL, *out_path = NULL, *user = NULL;
    dp_live_opts lo = {DP_LIVE_SNAPLEN, DP_LIVE_BUFFER_MB};
    const char **files = calloc((size_t)argc, sizeof *files);
    int nfiles = 0, threads = 0, per_given = 0;
    dp_cls_opts o;
    dp_cls_opts_default(&o);
    if (!files)
        return 1;
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long n;
        double d;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(files);
            return 0;
        }
        if (!strcmp(a, "-r")) {
            while (i + 1 < argc && (argv[i + 1][0] != '-' || !strcmp(argv[i + 1], "-")))
                files[nfiles++] = argv[++i];
            if (!nfiles) {
                dp_cli_usage_error("classify", "-r wants at least one capture file");
                goto out;
            }
            continue;
        }
        if (i + 1 >= argc) {
            dp_cli_usage_error("classify", "unknown option or missing value: %s (see --help)", a);
            goto out;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-m"))
            model_path = v;
        else if (!strcmp(a, "-i"))
            iface = v;
        else if (!strcmp(a, "-f"))
            bpf = v;
        else if (!strcmp(a, "-o"))
            out_path = v;
        else if (!strcmp(a, "--per")) {
            per_given = 1;
            if (!strcmp(v, "packet"))
                o.per_flow = 0;
            else if (!strcmp(v, "flow"))
                o.per_flow = 1;
            else {
                dp_cli_usage_error("classify", "--per wants 'packet' or 'flow', not '%s'", v);
                goto out;
            }
        } else if (!strcmp(a, "--first")) {
            if (dp_cli_parse_int(v, 1, 1000000, &n) < 0) {
                dp_cli_usage_error("classify", "--first wants a count >= 1, not '%s'", v);
                goto out;
            }
            o.first_n = (int)n;
        } else if (!strcmp(a, "--max-flows")) {
            if (dp_cli_parse_int(v, 1, 1L << 26, &n) < 0) {
                dp_cli_usage_error("classify", "--max-flows wants a count in [1, 67108864], not '%s'", v);
                goto out;
            }
            o.max_flows = (int32_t)n;
        } else if (!strcmp(a, "--batch")) {
            if (dp_cli_parse_int(v, 1, 4096, &n) < 0) {
                dp_cli_usage_error("classify", "--batch wants a count in [1, 4096], not '%s'", v);
                goto out;
            }
            o.batch = (int)n;
        } else if (!strcmp(a, "--threads")) {
            if (dp_cli_parse_int(v, 1, 64, &n) < 0) {
                dp_cli_usage_error("classify", "--threads wants a count in [1, 64], not '%s'", v);
                goto out;
            }
            threads = (int)n;
        } else if (!strcmp(a, "--snaplen")) {
            if (dp_cli_parse_int(v, 128, 262144, &n) < 0) {
                dp_cli_usage_error("classify", "--snaplen wants bytes in [128, 262144], not '%s'", v);
                goto out;
            }
            lo.snaplen = (int)n;
        } else if (!strcmp(a, "--buffer-size")) {
            if (dp_cli_parse_int(v, 1, 2047, &n) < 0) {
                dp_cli_usage_error("classify", "--buffer-size wants MB in [1, 2047], not '%s'", v);
                goto out;
            }
            lo.buffer_mb = (int)n;
        } else if (!strcmp(a, "--user")) {
            user = v;
        } else if (!strcmp(a, "--idle-timeout")) {
            if (dp_cli_parse_double(v, 1e-6, 1e9, &d) < 0) {
                dp_cli_usage_error("classify", "--idle-timeout wants seconds > 0, not '%s'", v);
                goto out;
            }
            o.idle_timeout = d;
        } else {
            dp_cli_usage_error("classify", "unknown option %s (see --help)", a);
            goto out;
        }
    }
    if (!model_path) {
        dp_cli_usage_error("classify", "-m MODEL is required (see --help)");
        goto out;
    }
    if (!!iface == !!nfiles) {
        dp_cli_usage_error("classify", "give either -r CAPTURE... or -i IFACE (see --help)");
        goto out;
    }
    if (user && !iface) {
        dp_cli_usage_error("classify", "--user applies to live capture (-i) only");
        goto out;
    }

    rc = 1;
    dp_nn_set_threads(threads);
    char errbuf[DP_ERRBUF_SIZE] = "";
    dp_privdrop pd = {0};
    if (iface && dp_privdrop_plan(&pd, user, errbuf) < 0) {
        fprintf(stderr, "deeppacket classify: %s\n", errbuf);
        goto out;
    }
    dp_model *m = dp_model_load(model_path, errbuf);
    if (!m) {
        fprintf(stderr, "deeppacket classify: %s\n", errbuf);
        goto out;
    }
    if (dp_model_flowcfg(m)) { /* a flow model: per flow, from its own N packets */
        if (per_given && !o.per_flow) {
            rc = dp_cli_usage_error("classify", "%s is a %s flow model: it gives one verdict per flow (--per flow)",
                                    model_path, dp_model_kind_name(m));
            dp_model_free(m);
            goto out;
        }
        o.per_flow = 1;
        o.first_n = dp_model_flowcfg(m)->npackets;
    }
    for (int i = 0; i < nfiles; i++) {
        if (dp_capture_is_stream(files[i]))
            continue; /* a probe would block or eat the magic: libpcap checks it */
        dp_probe p = dp_capture_probe(files[i], errbuf);
        if (p == DP_PROBE_ERROR || p == DP_PROBE_NOT_CAPTURE) {
            if (p == DP_PROBE_NOT_CAPTURE)
                fprintf(stderr, "deeppacket classify: %s: not a pcap or pcapng file\n", files[i]);
            else
                fprintf(stderr, "deeppacket classify: %s\n", errbuf);
            dp_model_free(m);
            goto out;
        }
    }
    dp_capture *live = NULL;
    if (iface) {
        live = dp_capture_open_live_opts(iface, 100, &lo, errbuf);
        if (!live || (bpf && dp_capture_set_filter(live, bpf, errbuf) < 0)) {
            fprintf(stderr, "deeppacket classify: %s\n", errbuf);
            dp_capture_close(live);
            dp_model_free(m);
            goto out;
        }
    }
    dp_afile af = {0};
    struct out_ctx oc = {stdout, m, 0};
    if (out_path) {
        /* live: lines are visible (and survive kill -9) as they are written */
        if (dp_afile_open_flags(&af, out_path, live ? DP_AFILE_LIVE : 0, errbuf) < 0) {
            fprintf(stderr, "deeppacket classify: %s\n", errbuf);
            dp_capture_close(live);
            dp_model_free(m);
            goto out;
        }
        oc.f = af.f;
    }
    dp_classifier *cls = dp_classifier_new(m, &o, emit, &oc, errbuf);
    if (!cls) {
        fprintf(stderr, "deeppacket classify: %s\n", errbuf);
        if (out_path)
            dp_afile_abort(&af);
        dp_capture_close(live);
        dp_model_free(m);
        goto out;
    }

    /* the interface and the output are open: root is no longer needed */
    /* (a live -o is written in place: after the drop nothing needs its folder) */
    if (live && dp_privdrop_apply(&pd, errbuf) < 0) {
        fprintf(stderr, "deeppacket classify: %s; stopping\n", errbuf);
        dp_classifier_free(cls);
        if (out_path)
            dp_afile_abort(&af);
        dp_capture_close(live);
        dp_model_free(m);
        goto out;
    }
    dp_cli_signals_install();
    if (live)
        fprintf(stderr, "deeppacket classify: listening on %s%s%s\n", iface, bpf ? ", filter " : "",
                bpf ? bpf : "");

    double t0 = dp_now();
    rc = 0;
    int bad_linktype = 0;
    if (live) {
        bad_linktype += warn_linktype(live, iface);
        rc = run_source(cls, live, iface, 1);
    } else {
        for (int i = 0; i < nfiles && !dp_cli_stop; i++) {
            dp_capture *cap = dp_capture_open_file(files[i], errbuf);
            if (!cap || (bpf && dp_capture_set_filter(cap, bpf, errbuf) < 0)) {
                fprintf(stderr, "deeppacket classify: %s\n", errbuf);
                dp_capture_close(cap);
                rc = 1;
                break;
            }
            bad_linktype += warn_linktype(cap, files[i]);
            rc |= run_source(cls, cap, files[i], 0);
            dp_capture_close(cap);
        }
    }
    double dt = dp_now() - t0;
    dp_cli_signals_restore();

    uint64_t krecv = 0, kdrop = 0;
    if (live) {
        dp_capture_stats(live, &krecv, &kdrop);
        dp_capture_close(live);
    }
    if (oc.failed) {
        fprintf(stderr, "deeppacket classify: cannot write the verdicts%s%s\n", out_path ? " to " : "",
                out_path ? out_path : "");
        rc = 1;
    }
    if (out_path) {
        if (rc == 0 || dp_cli_stop) {
            if (dp_afile_commit(&af, errbuf) < 0) {
                fprintf(stderr, "deeppacket classify: %s\n", errbuf);
                rc = 1;
            }
        } else
            dp_afile_abort(&af);
    }

    const dp_cls_stats *st = dp_classifier_stats(cls);
    fprintf(stderr,
            "deeppacket classify: %llu packets seen, %llu kept, %llu classified, %llu flows, "
            "%llu verdicts (per %s) in %.2f s: %.0f packets/s (model %.2f s, %.2f CPU s)\n",
            (unsigned long long)st->seen, (unsigned long long)st->kept, (unsigned long long)st->classified,
            (unsigned long long)st->flows, (unsigned long long)st->verdicts, o.per_flow ? "flow" : "packet", dt,
            dt > 0 ? st->seen / dt : 0.0, st->model_seconds, st->model_cpu_seconds);
    fprintf(stderr, "deeppacket classify: skipped:");
    for (int v = 1; v < DP_VERDICT_COUNT; v++)
        fprintf(stderr, " %s %llu%s", dp_verdict_name((dp_verdict)v), (unsigned long long)st->skipped[v],
                v + 1 < DP_VERDICT_COUNT ? "," : "");
    if (o.per_flow)
        fprintf(stderr, "; beyond first %d of their flow %llu; flows ended idle %llu, evicted (table full) %llu",
                o.first_n, (unsigned long long)st->ignored, (unsigned long long)st->evicted_idle,
                (unsigned long long)st->evicted_full);
    if (live)
        fprintf(stderr, "; kernel: %llu received, %llu dropped", (unsigned long long)krecv,
                (unsigned long long)kdrop);
    fprintf(stderr, "%s\n", dp_cli_stop ? " (interrupted)" : "");
    if (kdrop)
        fprintf(stderr, "deeppacket classify: warning: the kernel dropped %llu packets on %s "
                        "(buffer full): raise --buffer-size or lower --snaplen\n",
                (unsigned long long)kdrop, iface);
    if (bad_linktype && st->kept == 0 && rc == 0) {
        fprintf(stderr, "deeppacket classify: nothing could be classified: unsupported link type\n");
        rc = 1;
    }
    dp_classifier_free(cls);
    dp_model_free(m);
out:
    free(files);
    return rc;
}
