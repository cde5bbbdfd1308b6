/* deeppacket test: evaluate a model on a test set (spec section 6).
 *
 *   deeppacket test -d SPLIT_DIR/<task>/test|DATASET_DIR -m MODEL [-o REPORT_DIR]
 *                   [-j THREADS] [--batch-size 256] [--save-logprobs]
 *                   [--train-set DIR [--dup-packets 10]]
 *
 * A flow model (train --model gbt|flow) is evaluated per flow instead
 * (dp_flowtest): flow_report.*, flow_confusion.* and flows.npy.
 *
 * Predicts every packet of the test set in batches, prints the per-class
 * markdown table on stdout and writes the report files (see
 * docs/report-format.md) into REPORT_DIR (default: MODEL.report):
 *   report.md, report.json, confusion.csv, confusion.pdf, confusion.png
 *   flow_report.md, ... (the same at flow level, when the test set has
 *                        meta.npy: one verdict per flow)
 *   predictions.npy   int16 [N]    predicted class of each test packet
 *   flows.npy         struct [F]   flow id, true label, verdict, packets
 *                                  (sorted by flow id)
 *   logprobs.npy      float32 [N, C]  only with --save-logprobs
 *
 * THREADS workers (default: all CPUs) each load their own copy of the model
 * (a model is not shared between threads) and take batches in turn; the
 * neural-network layers run single-threaded inside each worker. Results do
 * not depend on the thread count.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/dp_cli.h"
#include "dataset/dp_dataset.h"
#include "dataset/dp_seqdup.h"
#include "eval/dp_eval.h"
#include "eval/dp_flowtest.h"
#include "model/dp_model.h"
#include "nn/dp_nn.h"
#include "util/dp_util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deeppacket test -d TEST_DIR -m MODEL [-o REPORT_DIR] [-j THREADS]\n"
            "                       [--batch-size N] [--save-logprobs] [--train-set DIR [--dup-packets N]]\n"
            "  -d TEST_DIR       test split folder, e.g. SPLIT_DIR/application_classification/test,\n"
            "                    or a preprocessed dataset folder (its rows labelled for the\n"
            "                    model's task); classes are matched to the model's by name\n"
            "  -m MODEL          model file written by `deeppacket train`\n"
            "  -o REPORT_DIR     where the report goes (default: MODEL.report)\n"
            "  -j THREADS        worker threads (default: all CPUs)\n"
            "  --batch-size N    packets per inference batch (default 256)\n"
            "  --save-logprobs   also write logprobs.npy, float32 [N, classes] (kept in RAM)\n"
            "  --train-set DIR   the training data (split or dataset folder): the report also\n"
            "                    gives the scores without the test flows whose first packets'\n"
            "                    size and direction sequence occurs identically in DIR\n"
            "  --dup-packets N   how many first packets make that sequence (default 10)\n"
            "Prints the per-class table (recall, precision, f1-score, support; weighted\n"
            "average) and writes report.md/.json, confusion.csv/.pdf/.png, predictions.npy,\n"
            "and, when the test set knows its flows, the same at flow level (flow_*).\n");
}

/* One row of flows.npy. */
typedef struct __attribute__((packed)) flow_row {
    uint64_t flow;
    int16_t label;
    int16_t pred;
    uint64_t packets;
} flow_row;
#define FLOW_ROW_DESCR "[('flow', '<u8'), ('label', '<i2'), ('pred', '<i2'), ('packets', '<u8')]"

typedef struct shared {
    const dp_splitset *s;
    int C;
    int batch;
    uint64_t nbatches;
    int flows;              /* aggregate per flow (test set has meta) */
    int16_t *pred;          /* [n] */
    float *logprobs;        /* [n, C] or NULL */
    atomic_uint_fast64_t next_batch;
    atomic_uint_fast64_t done;
    atomic_int stop;
    atomic_int running;
} shared;

typedef struct worker {
    shared *sh;
    dp_model *m;
    uint64_t *cm;           /* [C * C] */
    dp_flowagg *fa;
    float *lp;              /* [batch, C] */
    uint8_t *xb;            /* [batch, 1500]: rows gathered from a dataset folder */
    int failed;
    char err[DP_ERRBUF_SIZE];
    pthread_t tid;
    int started;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    const dp_splitset *s = sh->s;
    int C = sh->C;
    while (!atomic_load(&sh->stop)) {
        uint64_t b = atomic_fetch_add(&sh->next_batch, 1);
        if (b >= sh->nbatches)
            break;
        uint64_t start = b * (uint64_t)sh->batch;
        int cnt = (int)(s->n - start < (uint64_t)sh->batch ? s->n - start : (uint64_t)sh->batch);
        if (dp_model_predict(w->m, dp_splitset_vectors(s, start, cnt, w->xb), cnt, w->lp, w->err) != 0) {
            w->failed = 1;
            atomic_store(&sh->stop, 1);
            break;
        }
        for (int r = 0; r < cnt; r++) {
            const float *lp = w->lp + (size_t)r * C;
            int p = 0;
            for (int c = 1; c < C; c++)
                if (lp[c] > lp[p])
                    p = c;
            uint64_t i = start + (uint64_t)r;
            int t = dp_splitset_label(s, i);
            sh->pred[i] = (int16_t)p;
            w->cm[(size_t)t * C + p]++;
            if (sh->flows) {
                dp_meta m = dp_splitset_meta(s, i);
                if (dp_flowagg_add(w->fa, m.flow, t, lp, w->err) != 0) {
                    w->failed = 1;
                    atomic_store(&sh->stop, 1);
                    break;
                }
            }
        }
        if (sh->logprobs)
            memcpy(sh->logprobs + start * (uint64_t)C, w->lp, (size_t)cnt * C * sizeof(float));
        atomic_fetch_add(&sh->done, (uint64_t)cnt);
    }
    atomic_fetch_sub(&sh->running, 1);
    return NULL;
}

static void fmt_duration(char *buf, size_t cap, double sec)
{
    if (!(sec >= 0) || sec > 1e7) {
        snprintf(buf, cap, "?");
        return;
    }
    long s = (long)(sec + 0.5);
    if (s >= 3600)
        snprintf(buf, cap, "%ldh%02ldm%02lds", s / 3600, s / 60 % 60, s % 60);
    else if (s >= 60)
        snprintf(buf, cap, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, cap, "%lds", s);
}

static void progress_line(dp_progress *pr, uint64_t done, uint64_t n)
{
    double el = dp_now() - pr->start;
    double rate = el > 0 ? done / el : 0;
    char eta[32];
    fmt_duration(eta, sizeof eta, rate > 0 ? (double)(n - done) / rate : -1);
    dp_progress_print(pr, "test: %llu/%llu packets (%.1f%%), %.0f packets/s, ETA %s",
                      (unsigned long long)done, (unsigned long long)n,
                      n ? 100.0 * (double)done / (double)n : 100.0, rate, eta);
}

/* Opens the test set for the model's task and maps its classes onto the
 * model's by name; missing[] receives the model's classes without test
 * samples (not copied). Returns their count, or -1 + message. */
static int open_test_set(dp_splitset *s, const char *dir, const dp_model *m, const char *mpath,
                         const char **missing, char *errbuf)
{
    int task = dp_model_task(m), mc = dp_model_nclasses(m);
    if (dp_splitset_open_task(s, dir, task, errbuf) != 0)
        return -1;
    const char *names[DP_MAX_CLASSES];
    for (int c = 0; c < mc; c++)
        names[c] = dp_model_class_name(m, c);
    if (dp_splitset_match_classes(s, dir, mc, names, mpath, errbuf) != 0)
        return -1;
    uint64_t counts[DP_MAX_CLASSES];
    dp_splitset_class_counts(s, counts);
    int nmissing = 0;
    for (int c = 0; c < mc; c++)
        if (!counts[c] && names[c] && names[c][0])
            missing[nmissing++] = names[c];
    return nmissing;
}

static int cmp_flow_row(const void *a, const void *b)
{
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    return x < y ? -1 : x > y;
}

/* flows.npy, sorted by flow id (so that it does not depend on which worker
 * saw a flow first): from a packet model's aggregator, or (fa NULL) a flow
 * model's verdicts. */
static int save_flows(const dp_flowagg *fa, const dp_flowtest *ft, const char *path, char *errbuf)
{
    uint64_t nf = fa ? dp_flowagg_flows(fa) : ft->nflows;
    flow_row *rows = malloc((nf ? nf : 1) * sizeof *rows);
    if (!rows)
        return dp_err(errbuf, "%s: out of memory for %llu flows", path, (unsigned long long)nf);
    for (uint64_t i = 0; i < nf; i++) {
        int t, p;
        uint64_t id, np;
        if (fa) {
            dp_flowagg_get(fa, i, &id, &t, &p, &np);
        } else {
            id = ft->ids[i], t = ft->label[i], p = ft->pred[i], np = ft->npackets[i];
        }
        flow_row r = {.flow = id, .label = (int16_t)t, .pred = (int16_t)p, .packets = np};
        rows[i] = r;
    }
    qsort(rows, nf, sizeof *rows, cmp_flow_row);
    int rc = dp_npy_save(path, FLOW_ROW_DESCR, sizeof(flow_row), 0, rows, nf, errbuf);
    free(rows);
    return rc;
}

static int save_npy(const char *dir, const char *name, const char *descr, size_t itemsize,
                    size_t ncols, const void *data, uint64_t rows, char *errbuf)
{
    char *path = dp_path_join(dir, name);
    if (!path)
        return dp_err(errbuf, "%s: out of memory", dir);
    int rc = dp_npy_save(path, descr, itemsize, ncols, data, rows, errbuf);
    free(path);
    return rc;
}

/* A flow model: one verdict per flow (dp_flowtest), the flow-level table
 * on stdout, flow_report.* and flows.npy in outdir. */
static int test_flow_model(dp_model *m, const char *mpath, const dp_splitset *s, const char *dir,
                           const char *outdir, const char **missing, int nmissing, dp_report_dedup *dup,
                           const dp_seqtab *dups, char *errbuf)
{
    dp_flowtest ft;
    dp_eval dev;
    memset(&dev, 0, sizeof dev);
    double t0 = dp_now();
    if (dp_flowtest_run(&ft, m, mpath, s, dir, errbuf) != 0)
        return -1;
    const dp_flowcfg *fc = dp_model_flowcfg(m);
    int task = dp_model_task(m);
    dp_report_info info = {.level = "flow", .task = task >= 0 && task < DP_NTASKS ? dp_task_name[task] : NULL,
                           .model = mpath, .model_kind = dp_model_kind_name(m), .test_set = dir,
                           .packets = ft.packets, .missing = missing, .nmissing = nmissing};
    if (dups) { /* the scores without the flows whose sequence occurs in training */
        if (dp_eval_init(&dev, s->nclasses, (const char *const *)s->names, errbuf) != 0) {
            dp_flowtest_free(&ft);
            return -1;
        }
        for (uint64_t i = 0; i < ft.nflows; i++)
            if (!dp_seqtab_is_dup(dups, ft.ids[i]))
                dp_eval_add(&dev, ft.label[i], ft.pred[i]);
        dp_eval_finish(&dev);
        dup->eval = &dev;
        info.dedup = dup;
    }
    double secs = dp_now() - t0;
    printf("flow level (%llu flows of %llu packets, %.1f s; %s flow model on each flow's first %d packets):\n\n",
           (unsigned long long)ft.nflows, (unsigned long long)ft.packets, secs, dp_model_kind_name(m),
           fc->npackets);
    dp_eval_print_markdown(&ft.eval, &info, stdout);
    fflush(stdout);
    char *fp = dp_path_join(outdir, "flows.npy");
    int rc = -1;
    if (!fp)
        dp_err(errbuf, "%s: out of memory", outdir);
    else if (dp_eval_write_report(&ft.eval, &info, outdir, "flow_", errbuf) == 0 &&
             save_flows(NULL, &ft, fp, errbuf) == 0)
        rc = 0;
    if (rc == 0)
        fprintf(stderr, "deeppacket test: report written to %s/ (flow_report.md, flow_report.json, "
                        "flow_confusion.csv/.pdf/.png, flows.npy)\n", outdir);
    free(fp);
    dp_flowtest_free(&ft);
    dp_eval_free(&dev);
    return rc;
}

/* Marks the test flows whose first-N size/direction sequence occurs in the
 * training data `train_dir` (opened for the task). Returns the test table
 * (NULL + message on error); *dropped receives the count. */
static dp_seqtab *find_duplicates(const dp_splitset *s, const char *dir, const char *train_dir, int task,
                                  int npackets, uint64_t *dropped, char *errbuf)
{
    dp_splitset tr;
    dp_seqtab *test = dp_seqtab_new(npackets, errbuf), *train = dp_seqtab_new(npackets, errbuf);
    int ok = test && train;
    if (ok && dp_splitset_open_task(&tr, train_dir, task, errbuf) != 0)
        ok = 0;
    else if (ok) {
        ok = dp_seqtab_add_set(train, &tr, train_dir, errbuf) == 0 &&
             dp_seqtab_add_set(test, s, dir, errbuf) == 0;
        dp_splitset_close(&tr);
    }
    int64_t n = ok ? dp_seqtab_mark(test, train, errbuf) : -1;
    dp_seqtab_free(train);
    if (n < 0) {
        dp_seqtab_free(test);
        return NULL;
    }
    *dropped = (uint64_t)n;
    return test;
}

/* Packet-level scores over the rows of non-duplicate flows. */
static int dedup_packets(dp_eval *e, const dp_splitset *s, const int16_t *pred, const dp_seqtab *dups,
                         char *errbuf)
{
    if (dp_eval_init(e, s->nclasses, (const char *const *)s->names, errbuf) != 0)
        return -1;
    for (uint64_t i = 0; i < s->n; i++) {
        dp_meta m = dp_splitset_meta(s, i);
        if (!dp_seqtab_is_dup(dups, m.flow))
            dp_eval_add(e, dp_splitset_label(s, i), pred[i]);
    }
    dp_eval_finish(e);
    return 0;
}

/* Flow-level scores over the non-duplicate flows. */
static int dedup_flows(dp_eval *e, const dp_splitset *s, const dp_flowagg *fa, const dp_seqtab *dups,
                       char *errbuf)
{
    if (dp_eval_init(e, s->nclasses, (const char *const *)s->names, errbuf) != 0)
        return -1;
    for (uint64_t i = 0; i < dp_flowagg_flows(fa); i++) {
        uint64_t id, np;
        int t, p;
        dp_flowagg_get(fa, i, &id, &t, &p, &np);
        if (!dp_seqtab_is_dup(dups, id))
            dp_eval_add(e, t, p);
    }
    dp_eval_finish(e);
    return 0;
}

int cmd_test(int argc, char **argv)
{
    const char *dir = NULL, *mpath = NULL, *outdir = NULL;
    long threads = 0, batch = 256, dup_packets = DP_SEQ_DEFAULT_PACKETS;
    const char *train_dir = NULL;
    int save_lp = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--save-logprobs")) {
            save_lp = 1;
            continue;
        }
        if (i + 1 >= argc)
            return dp_cli_usage_error("test", "unknown option or missing value: %s (see --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "-d"))
            dir = v;
        else if (!strcmp(a, "-m"))
            mpath = v;
        else if (!strcmp(a, "-o"))
            outdir = v;
        else if (!strcmp(a, "-j")) {
            if (dp_cli_parse_int(v, 1, 256, &threads) < 0)
                return dp_cli_usage_error("test", "-j wants a thread count 1..256, not '%s'", v);
        } else if (!strcmp(a, "--train-set")) {
            train_dir = v;
        } else if (!strcmp(a, "--dup-packets")) {
            if (dp_cli_parse_int(v, 1, DP_SEQ_MAX_PACKETS, &dup_packets) < 0)
                return dp_cli_usage_error("test", "--dup-packets wants 1..%d, not '%s'", DP_SEQ_MAX_PACKETS, v);
        } else if (!strcmp(a, "--batch-size")) {
            if (dp_cli_parse_int(v, 1, 1 << 20, &batch) < 0)
                return dp_cli_usage_error("test", "--batch-size wants 1..1048576, not '%s'", v);
        } else
            return dp_cli_usage_error("test", "unknown option %s (see --help)", a);
    }
    if (!dir || !mpath)
        return dp_cli_usage_error("test", "-d TEST_DIR and -m MODEL are required (see --help)");

    char errbuf[DP_ERRBUF_SIZE] = "";
    char *defdir = NULL;
    if (!outdir) {
        size_t n = strlen(mpath) + 8;
        if (!(defdir = malloc(n)))
            return 1;
        snprintf(defdir, n, "%s.report", mpath);
        outdir = defdir;
    }
    int rc = 1;
    dp_splitset s;
    memset(&s, 0, sizeof s);
    dp_model *m0 = NULL;
    worker *ws = NULL;
    int nw = 0;
    shared sh;
    memset(&sh, 0, sizeof sh);
    dp_eval ev, fev, dev, dfev; /* packet, flow level; the same without duplicates */
    memset(&ev, 0, sizeof ev);
    memset(&fev, 0, sizeof fev);
    memset(&dev, 0, sizeof dev);
    memset(&dfev, 0, sizeof dfev);
    dp_seqtab *dups = NULL;
    uint64_t ndropped = 0;
    dp_flowagg *fall = NULL;
    const char *ctx = ""; /* what failed, before errbuf */

    if (!(m0 = dp_model_load(mpath, errbuf))) {
        ctx = "cannot load the model: ";
        goto fail;
    }
    const char *missing[DP_MAX_CLASSES];
    int nmissing = open_test_set(&s, dir, m0, mpath, missing, errbuf);
    if (nmissing < 0) {
        ctx = "cannot use the test set: ";
        goto fail;
    }
    if (s.n == 0) {
        dp_err(errbuf, "%s: the test set has no rows: nothing to evaluate", dir);
        goto fail;
    }
    if (dp_check_writable_dir(outdir, errbuf) != 0) { /* before the evaluation, not after */
        ctx = "cannot write the report: ";
        goto fail;
    }
    int C = s.nclasses;
    int task = dp_model_task(m0);
    if (train_dir && !s.has_meta) {
        dp_err(errbuf, "%s: no meta.npy: --train-set needs the test set's flows", dir);
        goto fail;
    }
    if (train_dir && !(dups = find_duplicates(&s, dir, train_dir, task, (int)dup_packets, &ndropped, errbuf))) {
        ctx = "--train-set: ";
        goto fail;
    }
    if (dp_model_input(m0) == DP_INPUT_FLOW) {
        dp_report_dedup fd = {.train_set = train_dir, .seq_packets = (int)dup_packets,
                              .test_flows = dups ? dp_seqtab_flows(dups) : 0, .dropped_flows = ndropped};
        if (test_flow_model(m0, mpath, &s, dir, outdir, missing, nmissing, &fd, dups, errbuf) != 0)
            goto fail;
        rc = 0;
        goto out;
    }
    const char *task_name = task >= 0 && task < DP_NTASKS ? dp_task_name[task] : NULL;
    if (!threads)
        threads = dp_ncpu();
    if ((uint64_t)threads * (uint64_t)batch > s.n && s.n > 0) {
        /* no more workers than batches */
        uint64_t nb = (s.n + batch - 1) / batch;
        if ((uint64_t)threads > nb)
            threads = (long)nb;
    }
    if (save_lp && s.n * (uint64_t)C > (UINT64_C(1) << 34))
        goto fail_msg_lp;

    sh.s = &s;
    sh.C = C;
    sh.batch = (int)batch;
    sh.nbatches = (s.n + batch - 1) / batch;
    sh.flows = s.has_meta;
    sh.pred = malloc((s.n ? s.n : 1) * sizeof *sh.pred);
    if (save_lp)
        sh.logprobs = malloc((s.n ? s.n : 1) * (size_t)C * sizeof(float));
    ws = calloc((size_t)threads, sizeof *ws);
    if (!sh.pred || (save_lp && !sh.logprobs) || !ws) {
        dp_err(errbuf, "out of memory for %llu test packets", (unsigned long long)s.n);
        goto fail;
    }
    dp_nn_set_threads(1);
    for (nw = 0; nw < threads; nw++) {
        worker *w = &ws[nw];
        w->sh = &sh;
        w->m = nw == 0 ? m0 : dp_model_load(mpath, errbuf);
        if (nw == 0)
            m0 = NULL; /* owned by worker 0 now */
        w->cm = calloc((size_t)C * C, sizeof *w->cm);
        w->lp = malloc((size_t)batch * C * sizeof *w->lp);
        w->xb = malloc((size_t)batch * DP_VEC_LEN);
        if (sh.flows)
            w->fa = dp_flowagg_new(C, errbuf);
        if (!w->m || !w->cm || !w->lp || !w->xb || (sh.flows && !w->fa)) {
            if (w->m && errbuf[0] == 0)
                dp_err(errbuf, "out of memory for worker %d", nw);
            nw++;
            goto fail;
        }
    }
    fprintf(stderr, "deeppacket test: %s model (%s, %d classes) on %s: %llu packets%s, %d threads\n",
            dp_model_kind_name(ws[0].m), task_name ? task_name : "?", C, dir,
            (unsigned long long)s.n, sh.flows ? " with flows" : "", nw);

    dp_progress pr;
    dp_progress_init(&pr);
    atomic_store(&sh.running, nw);
    for (int i = 0; i < nw; i++) {
        if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) == 0)
            ws[i].started = 1;
        else
            atomic_fetch_sub(&sh.running, 1);
    }
    int any_started = 0;
    for (int i = 0; i < nw; i++)
        any_started |= ws[i].started;
    if (!any_started) {
        dp_err(errbuf, "cannot start worker threads");
        goto fail;
    }
    while (atomic_load(&sh.running) > 0) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (dp_progress_due(&pr))
            progress_line(&pr, atomic_load(&sh.done), s.n);
    }
    for (int i = 0; i < nw; i++)
        if (ws[i].started)
            pthread_join(ws[i].tid, NULL);
    for (int i = 0; i < nw; i++)
        if (ws[i].failed) {
            dp_progress_done(&pr);
            memcpy(errbuf, ws[i].err, DP_ERRBUF_SIZE);
            goto fail;
        }
    progress_line(&pr, atomic_load(&sh.done), s.n);
    dp_progress_done(&pr);
    double secs = dp_now() - pr.start;

    /* Packet level. */
    if (dp_eval_init(&ev, C, (const char *const *)s.names, errbuf) != 0)
        goto fail;
    for (int i = 0; i < nw; i++)
        dp_eval_add_matrix(&ev, ws[i].cm);
    dp_eval_finish(&ev);
    dp_report_info info = {.level = "packet", .task = task_name, .model = mpath,
                           .model_kind = dp_model_kind_name(ws[0].m), .test_set = dir,
                           .missing = missing, .nmissing = nmissing};
    dp_report_dedup pdup = {.train_set = train_dir, .seq_packets = (int)dup_packets,
                            .test_flows = dups ? dp_seqtab_flows(dups) : 0, .dropped_flows = ndropped,
                            .eval = &dev};
    dp_report_dedup fdup = pdup;
    fdup.eval = &dfev;
    if (dups) {
        if (dedup_packets(&dev, &s, sh.pred, dups, errbuf) != 0)
            goto fail;
        info.dedup = &pdup;
    }
    printf("packet level (%llu packets, %.1f s, %.0f packets/s):\n\n", (unsigned long long)ev.n,
           secs, secs > 0 ? ev.n / secs : 0.0);
    dp_eval_print_markdown(&ev, &info, stdout);
    if (dp_eval_write_report(&ev, &info, outdir, "", errbuf) != 0)
        goto fail;
    if (save_npy(outdir, "predictions.npy", DP_NPY_I2, 2, 0, sh.pred, s.n, errbuf) != 0)
        goto fail;
    if (save_lp && save_npy(outdir, "logprobs.npy", DP_NPY_F4, 4, (size_t)C, sh.logprobs, s.n,
                            errbuf) != 0)
        goto fail;

    /* Flow level. */
    if (sh.flows) {
        /* Merge into worker 0's aggregator, freeing each other one as we go
         * (peak memory: the workers' tables, not one more copy). */
        fall = ws[0].fa;
        ws[0].fa = NULL;
        for (int i = 1; i < nw; i++) {
            if (dp_flowagg_merge(fall, ws[i].fa, errbuf) != 0)
                goto fail;
            dp_flowagg_free(ws[i].fa);
            ws[i].fa = NULL;
        }
        if (dp_eval_init(&fev, C, (const char *const *)s.names, errbuf) != 0 ||
            dp_flowagg_eval(fall, &fev, errbuf) != 0)
            goto fail;
        dp_report_info finfo = info;
        finfo.level = "flow";
        if (dups) {
            if (dedup_flows(&dfev, &s, fall, dups, errbuf) != 0)
                goto fail;
            finfo.dedup = &fdup;
        }
        finfo.packets = dp_flowagg_packets(fall);
        finfo.label_conflicts = dp_flowagg_conflicts(fall);
        printf("\nflow level (%llu flows; verdict = argmax of the summed packet log-probabilities):\n\n",
               (unsigned long long)fev.n);
        dp_eval_print_markdown(&fev, &finfo, stdout);
        if (finfo.label_conflicts)
            printf("(%llu flows hold packets of more than one label: majority label used)\n",
                   (unsigned long long)finfo.label_conflicts);
        if (dp_eval_write_report(&fev, &finfo, outdir, "flow_", errbuf) != 0)
            goto fail;
        char *fp = dp_path_join(outdir, "flows.npy");
        if (!fp || save_flows(fall, NULL, fp, errbuf) != 0) {
            if (!fp)
                dp_err(errbuf, "%s: out of memory", outdir);
            free(fp);
            goto fail;
        }
        free(fp);
    } else {
        printf("\n(no meta.npy in %s: flow-level report skipped)\n", dir);
    }
    fflush(stdout);
    fprintf(stderr, "deeppacket test: report written to %s/ (report.md, report.json, "
                    "confusion.csv/.pdf/.png%s, predictions.npy%s)\n",
            outdir, sh.flows ? ", flow_*, flows.npy" : "", save_lp ? ", logprobs.npy" : "");
    rc = 0;
    goto out;

fail_msg_lp:
    dp_err(errbuf, "--save-logprobs: %llu x %d floats do not fit in memory",
           (unsigned long long)s.n, C);
fail:
    fflush(stdout);
    fprintf(stderr, "deeppacket test: %s%s\n", ctx, errbuf[0] ? errbuf : "failed");
    rc = 1;
out:
    for (int i = 0; i < nw; i++) {
        dp_model_free(ws[i].m);
        free(ws[i].cm);
        free(ws[i].lp);
        free(ws[i].xb);
        dp_flowagg_free(ws[i].fa);
    }
    free(ws);
    dp_model_free(m0);
    dp_flowagg_free(fall);
    dp_eval_free(&ev);
    dp_eval_free(&fev);
    dp_eval_free(&dev);
    dp_eval_free(&dfev);
    dp_seqtab_free(dups);
    free(sh.pred);
    free(sh.logprobs);
    dp_splitset_close(&s);
    free(defdir);
    dp_eval_plot_release();
    return rc;
}
