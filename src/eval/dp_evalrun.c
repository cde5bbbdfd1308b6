/* dp_evalrun: a model evaluated on a test set, the report written (see the
 * header). The packet model's batches run in dp_evalpool; a flow model's
 * verdicts come from dp_flowtest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dp_dataset.h"
#include "dataset/dp_seqdup.h"
#include "eval/dp_coverage.h"
#include "eval/dp_evalpool.h"
#include "eval/dp_evalrun.h"
#include "eval/dp_flowtest.h"
#include "eval/dp_html.h"
#include "model/dp_model.h"
#include "nn/dp_nn.h"
#include "util/dp_outdir.h"
#include "util/dp_util.h"

/* One row of flows.npy. */
typedef struct __attribute__((packed)) flow_row {
    uint64_t flow;
    int16_t label;
    int16_t pred;
    uint64_t packets;
} flow_row;
#define FLOW_ROW_DESCR "[('flow', '<u8'), ('label', '<i2'), ('pred', '<i2'), ('packets', '<u8')]"

/* The state of one evaluation. */
typedef struct run {
    const dp_evalrun_opts *o;
    FILE *out;                  /* the tables (NULL: not printed) */
    const char *dir, *mpath;
    const char *target, *outdir; /* the report folder; where its files go (od.path) */
    dp_outdir od;
    int dup_packets;
    int prec;                   /* the model's precision, resolved (DP_PREC_FP32 or _BF16) */
    dp_model *m;
    const char *kind;           /* the model's kind name */
    const char *task_name;      /* NULL: unknown task */
    dp_splitset s;
    const char *missing[DP_MAX_CLASSES]; /* the model's classes without test samples */
    int nmissing;
    dp_seqtab *dups;            /* with train_set: the test flows, duplicates marked */
    uint64_t ndropped;
    dp_eval dev, dfev;          /* packet, flow level without duplicates */
    /* what each level's report said ([0] packet, [1] flow), for report.html */
    dp_report_info info[2];
    dp_report_dedup dup[2];
    dp_coverage cov[2];         /* each level's verdicts by probability */
    int has_info[2];
} run;

/* Keeps level L's report info (and its dedup scores) for report.html. */
static void keep_info(run *x, int L, const dp_report_info *info, const dp_report_dedup *dup)
{
    x->info[L] = *info;
    x->dup[L] = *dup;
    x->info[L].dedup = info->dedup ? &x->dup[L] : NULL;
    x->has_info[L] = 1;
}

/* report.html: the levels evaluated, packet level first. */
static int write_html(run *x, const dp_evalrun_result *r, char *errbuf)
{
    dp_html_level lv[2];
    int n = 0;
    if (r->has_packets && x->has_info[0])
        lv[n++] = (dp_html_level){"", &r->packets, &x->info[0]};
    if (r->has_flows && x->has_info[1])
        lv[n++] = (dp_html_level){"flow_", &r->flows, &x->info[1]};
    return n ? dp_html_write(x->outdir, lv, n, errbuf) : 0;
}

void dp_evalrun_opts_init(dp_evalrun_opts *o)
{
    memset(o, 0, sizeof *o);
}

/* Puts "ctx" (what failed) before the message in errbuf ("failed" when it
 * is empty). Returns -1. */
static int fail_ctx(char *errbuf, const char *ctx)
{
    char msg[DP_ERRBUF_SIZE];
    snprintf(msg, sizeof msg, "%s", errbuf[0] ? errbuf : "failed");
    return dp_err(errbuf, "%s%s", ctx, msg); /* cut short at DP_ERRBUF_SIZE */
}

/* Opens the test set for the model's task and maps its classes onto the
 * model's by name; x->missing receives the model's classes without test
 * samples (not copied). 0, or -1 + message. */
static int open_test_set(run *x, char *errbuf)
{
    int task = dp_model_task(x->m), mc = dp_model_nclasses(x->m);
    if (dp_splitset_open_task(&x->s, x->dir, task, errbuf) != 0)
        return -1;
    const char *names[DP_MAX_CLASSES];
    for (int c = 0; c < mc; c++)
        names[c] = dp_model_class_name(x->m, c);
    if (dp_splitset_match_classes(&x->s, x->dir, mc, names, x->mpath, errbuf) != 0)
        return -1;
    uint64_t counts[DP_MAX_CLASSES];
    dp_splitset_class_counts(&x->s, counts);
    x->nmissing = 0;
    for (int c = 0; c < mc; c++)
        if (!counts[c] && names[c] && names[c][0])
            x->missing[x->nmissing++] = names[c];
    return 0;
}

/* The sets of one evaluation being opened (dp_splitset_one_generation's
 * context): the test set into x->s and, with --train-set, the training
 * data into *tr. */
typedef struct sets_open {
    run *x;
    dp_splitset *tr;
} sets_open;

static void close_sets(void *ctx)
{
    sets_open *o = ctx;
    dp_splitset_close(&o->x->s);
    dp_splitset_close(o->tr);
}

/* One attempt at opening the test set (open_test_set) and, with
 * --train-set, the training data for the model's task; on failure nothing
 * stays open. */
static int open_sets(void *ctx, char *errbuf)
{
    sets_open *o = ctx;
    run *x = o->x;
    const char *train_dir = x->o->train_set;
    int rc = 0;
    if (open_test_set(x, errbuf) != 0)
        rc = fail_ctx(errbuf, "cannot use the test set: ");
    else if (train_dir && !x->s.has_meta)
        rc = dp_err(errbuf, "%s: no " DP_FILE_META ": --train-set needs the test set's flows", x->dir);
    else if (train_dir && dp_splitset_open_task(o->tr, train_dir, dp_model_task(x->m), errbuf) != 0)
        rc = fail_ctx(errbuf, "--train-set: ");
    if (rc != 0)
        dp_splitset_close(&x->s);
    return rc;
}

/* Marks the test flows whose first-N size/direction sequence occurs in the
 * training data tr: x->dups, x->ndropped. 0 or -1. */
static int find_duplicates(run *x, const dp_splitset *tr, char *errbuf)
{
    int n = x->dup_packets;
    dp_seqtab *test = dp_seqtab_new(n, errbuf), *train = dp_seqtab_new(n, errbuf);
    int ok = test && train && dp_seqtab_add_set(train, tr, x->o->train_set, errbuf) == 0 &&
             dp_seqtab_add_set(test, &x->s, x->dir, errbuf) == 0;
    int64_t dropped = ok ? dp_seqtab_mark(test, train, errbuf) : -1;
    dp_seqtab_free(train);
    if (dropped < 0) {
        dp_seqtab_free(test);
        return -1;
    }
    x->dups = test;
    x->ndropped = (uint64_t)dropped;
    return 0;
}

/* Every file a report folder may hold: the outputs of an earlier test,
 * replaced as a whole by the new report (dp_outdir). */
static const char *const report_files[] = {
    "report.md", "report.json", "confusion.csv", "confusion.pdf", "confusion.png",
    "flow_report.md", "flow_report.json", "flow_confusion.csv", "flow_confusion.pdf", "flow_confusion.png",
    "predictions.npy", "logprobs.npy", "flows.npy", "flow_logprobs.npy", "report.html", NULL};

/* Loads the model, opens the test set and checks everything the
 * evaluation needs before it starts (rows, a writable report directory,
 * flows for --train-set); finds the duplicate flows. 0, or -1 + message. */
static int prepare(run *x, char *errbuf)
{
    if (!(x->m = dp_model_load(x->mpath, errbuf)))
        return fail_ctx(errbuf, "cannot load the model: ");
    dp_model_set_precision(x->m, x->prec, errbuf); /* resolved: cannot fail; the workers' clones copy it */
    int task = dp_model_task(x->m);
    x->kind = dp_model_kind_name(x->m);
    x->task_name = task >= 0 && task < DP_NTASKS ? dp_task_name[task] : NULL;
    dp_splitset tr;
    memset(&tr, 0, sizeof tr);
    sets_open so = {x, &tr};
    /* a split's two sides are of one split: a split swapped in between
     * the two opens makes both open again */
    int rc = x->o->train_set ? dp_splitset_one_generation(x->dir, open_sets, close_sets, &so, errbuf)
                             : open_sets(&so, errbuf);
    if (rc == 0 && x->s.n == 0)
        rc = dp_err(errbuf, "%s: the test set has no rows: nothing to evaluate", x->dir);
    if (rc == 0 && dp_outdir_open(&x->od, x->target, report_files, errbuf) != 0) /* before the evaluation */
        rc = fail_ctx(errbuf, "cannot write the report: ");
    x->outdir = x->od.path;
    if (rc == 0 && x->o->train_set && find_duplicates(x, &tr, errbuf) != 0)
        rc = fail_ctx(errbuf, "--train-set: ");
    dp_splitset_close(&tr);
    return rc;
}

/* What the report says about the duplicate-sequence scores (eval: this
 * level's scores over the other flows). */
static dp_report_dedup dedup_info(const run *x, const dp_eval *eval)
{
    dp_report_dedup d = {.train_set = x->o->train_set, .seq_packets = x->dup_packets,
                         .test_flows = x->dups ? dp_seqtab_flows(x->dups) : 0,
                         .dropped_flows = x->ndropped, .eval = eval};
    return d;
}

static int cmp_flow_row(const void *a, const void *b)
{
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    return x < y ? -1 : x > y;
}

/* flows.npy in outdir, sorted by flow id (so that it does not depend on
 * which worker saw a flow first): from a packet model's aggregator, or (fa
 * NULL) a flow model's verdicts. */
static int save_flows(const dp_flowagg *fa, const dp_flowtest *ft, const char *outdir, char *errbuf)
{
    char *path = dp_path_join(outdir, "flows.npy");
    if (!path)
        return dp_err(errbuf, "%s: out of memory", outdir);
    uint64_t nf = fa ? dp_flowagg_flows(fa) : ft->nflows;
    flow_row *rows = malloc((nf ? nf : 1) * sizeof *rows);
    if (!rows) {
        dp_err(errbuf, "%s: out of memory for %llu flows", path, (unsigned long long)nf);
        free(path);
        return -1;
    }
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
    free(path);
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

/* flow_logprobs.npy in outdir: a flow model's log-probabilities [F, C],
 * rows in the order of flows.npy (by flow id). */
static int save_flow_logprobs(const dp_flowtest *ft, int C, const char *outdir, char *errbuf)
{
    uint64_t nf = ft->nflows;
    uint64_t(*order)[2] = malloc((nf ? nf : 1) * sizeof *order); /* (flow id, row) */
    float *lp = malloc((nf ? nf : 1) * (size_t)C * sizeof *lp);
    int rc = -1;
    if (!order || !lp) {
        dp_err(errbuf, "%s: out of memory for %llu flows", outdir, (unsigned long long)nf);
        goto out;
    }
    for (uint64_t i = 0; i < nf; i++)
        order[i][0] = ft->ids[i], order[i][1] = i;
    qsort(order, nf, sizeof *order, cmp_flow_row);
    for (uint64_t i = 0; i < nf; i++)
        memcpy(lp + i * (size_t)C, ft->logprobs + order[i][1] * (size_t)C, (size_t)C * sizeof *lp);
    rc = save_npy(outdir, "flow_logprobs.npy", DP_NPY_F4, 4, (size_t)C, lp, nf, errbuf);
out:
    free(order);
    free(lp);
    return rc;
}

/* The verdicts by probability of a flow model's flows: each flow's
 * probability from its row of C model classes' log-probabilities. */
static int flow_model_coverage(const dp_flowtest *ft, int C, int nclasses, dp_coverage *cv, char *errbuf)
{
    float *prob = malloc((ft->nflows ? ft->nflows : 1) * sizeof *prob);
    if (!prob)
        return dp_err(errbuf, "test: out of memory");
    for (uint64_t i = 0; i < ft->nflows; i++)
        prob[i] = (float)dp_coverage_top_probf(ft->logprobs + i * (uint64_t)C, C);
    int rc = dp_coverage_compute(cv, nclasses, ft->label, ft->pred, prob, ft->nflows, errbuf);
    free(prob);
    return rc;
}

/* A flow model: one verdict per flow (dp_flowtest), the flow-level table,
 * flow_report.* and flows.npy. */
static int test_flow_model(run *x, dp_evalrun_result *r, char *errbuf)
{
    dp_flowtest ft;
    double t0 = dp_now();
    if (dp_flowtest_run(&ft, x->m, x->mpath, &x->s, x->dir, errbuf) != 0)
        return -1;
    dp_report_dedup dup = dedup_info(x, &x->dfev);
    dp_report_info info = {.level = "flow", .task = x->task_name, .model = x->mpath,
                           .model_kind = x->kind, .test_set = x->dir, .packets = ft.packets,
                           .label_conflicts = ft.conflicts, .first_label = 1,
                           .missing = x->missing, .nmissing = x->nmissing};
    int rc = -1;
    if (flow_model_coverage(&ft, dp_model_nclasses(x->m), x->s.nclasses, &x->cov[1], errbuf) != 0)
        goto out;
    info.coverage = &x->cov[1];
    if (x->dups) { /* the scores without the flows whose sequence occurs in training */
        if (dp_eval_init(&x->dfev, x->s.nclasses, (const char *const *)x->s.names, errbuf) != 0)
            goto out;
        for (uint64_t i = 0; i < ft.nflows; i++)
            if (!dp_seqtab_is_dup(x->dups, ft.ids[i]))
                dp_eval_add(&x->dfev, ft.label[i], ft.pred[i]);
        dp_eval_finish(&x->dfev);
        info.dedup = &dup;
    }
    double secs = dp_now() - t0;
    if (x->out) {
        fprintf(x->out, "flow level (%llu flows of %llu packets, %.1f s; %s flow model on each flow's "
                        "first %d packets):\n\n", (unsigned long long)ft.nflows,
                (unsigned long long)ft.packets, secs, x->kind, dp_model_flowcfg(x->m)->npackets);
        dp_eval_print_markdown(&ft.eval, &info, x->out);
        fflush(x->out);
    }
    if (dp_eval_write_report(&ft.eval, &info, x->outdir, "flow_", errbuf) != 0 ||
        save_flows(NULL, &ft, x->outdir, errbuf) != 0)
        goto out;
    if (x->o->save_logprobs && save_flow_logprobs(&ft, dp_model_nclasses(x->m), x->outdir, errbuf) != 0)
        goto out;
    keep_info(x, 1, &info, &dup);
    r->flows = ft.eval;
    memset(&ft.eval, 0, sizeof ft.eval);
    r->has_flows = 1;
    rc = 0;
out:
    dp_flowtest_free(&ft);
    return rc;
}

/* The verdicts by probability of every packet (po->prob). */
static int packet_coverage(const dp_splitset *s, const dp_evalpool_out *po, dp_coverage *cv, char *errbuf)
{
    int16_t *label = malloc((s->n ? s->n : 1) * sizeof *label);
    if (!label)
        return dp_err(errbuf, "test: out of memory");
    for (uint64_t i = 0; i < s->n; i++)
        label[i] = (int16_t)dp_splitset_label(s, i);
    int rc = dp_coverage_compute(cv, s->nclasses, label, po->pred, po->prob, s->n, errbuf);
    free(label);
    return rc;
}

/* Packet level: the scores from the summed matrix (and without the
 * duplicate flows), the table, report.*, predictions.npy, logprobs.npy. */
static int packet_level(run *x, const dp_evalpool_out *po, dp_evalrun_result *r, char *errbuf)
{
    const dp_splitset *s = &x->s;
    dp_eval *ev = &r->packets;
    if (dp_eval_init(ev, s->nclasses, (const char *const *)s->names, errbuf) != 0)
        return -1;
    r->has_packets = 1;
    dp_eval_add_matrix(ev, po->cm);
    dp_eval_finish(ev);
    dp_report_info info = {.level = "packet", .task = x->task_name, .model = x->mpath,
                           .model_kind = x->kind, .test_set = x->dir,
                           .missing = x->missing, .nmissing = x->nmissing};
    dp_report_dedup dup = dedup_info(x, &x->dev);
    if (packet_coverage(s, po, &x->cov[0], errbuf) != 0)
        return -1;
    info.coverage = &x->cov[0];
    if (x->dups) { /* the rows of the non-duplicate flows */
        if (dp_eval_init(&x->dev, s->nclasses, (const char *const *)s->names, errbuf) != 0)
            return -1;
        for (uint64_t i = 0; i < s->n; i++)
            if (!dp_seqtab_is_dup(x->dups, dp_splitset_meta(s, i).flow))
                dp_eval_add(&x->dev, dp_splitset_label(s, i), po->pred[i]);
        dp_eval_finish(&x->dev);
        info.dedup = &dup;
    }
    if (x->out) {
        fprintf(x->out, "packet level (%llu packets, %.1f s, %.0f packets/s):\n\n",
                (unsigned long long)ev->n, po->secs, po->secs > 0 ? ev->n / po->secs : 0.0);
        dp_eval_print_markdown(ev, &info, x->out);
    }
    if (dp_eval_write_report(ev, &info, x->outdir, "", errbuf) != 0 ||
        save_npy(x->outdir, "predictions.npy", DP_NPY_I2, 2, 0, po->pred, s->n, errbuf) != 0)
        return -1;
    keep_info(x, 0, &info, &dup);
    if (po->logprobs && save_npy(x->outdir, "logprobs.npy", DP_NPY_F4, 4, (size_t)s->nclasses,
                                 po->logprobs, s->n, errbuf) != 0)
        return -1;
    return 0;
}

/* Flow level of a packet model: one verdict per flow from the merged
 * aggregator (and without the duplicate flows), the table, flow_report.*,
 * flows.npy. */
static int flow_level(run *x, const dp_flowagg *fa, dp_evalrun_result *r, char *errbuf)
{
    const dp_splitset *s = &x->s;
    dp_eval *fev = &r->flows;
    if (dp_eval_init(fev, s->nclasses, (const char *const *)s->names, errbuf) != 0)
        return -1;
    r->has_flows = 1;
    if (dp_flowagg_eval(fa, fev, errbuf) != 0)
        return -1;
    dp_report_info info = {.level = "flow", .task = x->task_name, .model = x->mpath,
                           .model_kind = x->kind, .test_set = x->dir,
                           .missing = x->missing, .nmissing = x->nmissing,
                           .packets = dp_flowagg_packets(fa), .label_conflicts = dp_flowagg_conflicts(fa)};
    dp_report_dedup dup = dedup_info(x, &x->dfev);
    if (dp_flowagg_coverage(fa, &x->cov[1], errbuf) != 0)
        return -1;
    info.coverage = &x->cov[1];
    if (x->dups) { /* the non-duplicate flows */
        if (dp_eval_init(&x->dfev, s->nclasses, (const char *const *)s->names, errbuf) != 0)
            return -1;
        for (uint64_t i = 0; i < dp_flowagg_flows(fa); i++) {
            uint64_t id, np;
            int t, p;
            dp_flowagg_get(fa, i, &id, &t, &p, &np);
            if (!dp_seqtab_is_dup(x->dups, id))
                dp_eval_add(&x->dfev, t, p);
        }
        dp_eval_finish(&x->dfev);
        info.dedup = &dup;
    }
    if (x->out) {
        fprintf(x->out, "\nflow level (%llu flows; verdict = argmax of the summed packet log-probabilities):\n\n",
                (unsigned long long)fev->n);
        dp_eval_print_markdown(fev, &info, x->out);
    }
    if (dp_eval_write_report(fev, &info, x->outdir, "flow_", errbuf) != 0)
        return -1;
    keep_info(x, 1, &info, &dup);
    return save_flows(fa, NULL, x->outdir, errbuf);
}

/* A packet model: every row predicted by the worker pool, then the packet
 * and (with meta.npy) flow levels. */
static int test_packet_model(run *x, dp_evalrun_result *r, char *errbuf)
{
    const dp_evalrun_opts *o = x->o;
    dp_evalpool_out po;
    if (dp_evalpool_run(x->m, &x->s, x->dir, x->task_name, o->threads,
                        o->batch > 0 ? o->batch : 256, o->save_logprobs, o->progress, &po, errbuf) != 0)
        return -1;
    r->threads = po.threads;
    int rc = packet_level(x, &po, r, errbuf);
    if (rc == 0 && po.flows)
        rc = flow_level(x, po.flows, r, errbuf);
    else if (rc == 0 && x->out)
        fprintf(x->out, "\n(no " DP_FILE_META " in %s: flow-level report skipped)\n", x->dir);
    if (x->out)
        fflush(x->out);
    dp_evalpool_out_free(&po);
    return rc;
}

/* The report directory: o->report_dir, or MODEL.report. */
static char *report_dir(const dp_evalrun_opts *o)
{
    if (o->report_dir)
        return strdup(o->report_dir);
    size_t n = strlen(o->model_path) + 8;
    char *d = malloc(n);
    if (d)
        snprintf(d, n, "%s.report", o->model_path);
    return d;
}

int dp_evalrun(const dp_evalrun_opts *o, dp_evalrun_result *r, char *errbuf)
{
    memset(r, 0, sizeof *r);
    errbuf[0] = 0;
    if (!o->test_dir || !o->model_path)
        return dp_err(errbuf, "the test set and the model are required");
    int prec = dp_nn_precision_resolve(o->precision, errbuf); /* refused before anything is read */
    if (prec < 0)
        return -1;
    run x;
    memset(&x, 0, sizeof x);
    x.prec = prec;
    x.o = o;
    x.out = o->out;
    x.dir = o->test_dir;
    x.mpath = o->model_path;
    x.dup_packets = o->dup_packets > 0 ? o->dup_packets : DP_SEQ_DEFAULT_PACKETS;
    x.target = r->report_dir = report_dir(o);
    int rc = -1;
    if (!x.target)
        dp_err(errbuf, "%s: out of memory", o->model_path);
    else if (prepare(&x, errbuf) == 0) {
        r->flow_model = dp_model_input(x.m) == DP_INPUT_FLOW;
        rc = r->flow_model ? test_flow_model(&x, r, errbuf) : test_packet_model(&x, r, errbuf);
        if (rc == 0)
            rc = write_html(&x, r, errbuf);
        if (rc == 0) /* the new report in place of the old, in one step */
            rc = dp_outdir_commit(&x.od, errbuf);
    }
    dp_outdir_abort(&x.od);
    r->dropped_flows = x.ndropped;
    dp_model_free(x.m);
    dp_seqtab_free(x.dups);
    dp_eval_free(&x.dev);
    dp_eval_free(&x.dfev);
    dp_splitset_close(&x.s);
    if (rc != 0)
        dp_evalrun_result_free(r);
    return rc;
}

void dp_evalrun_result_free(dp_evalrun_result *r)
{
    dp_eval_free(&r->packets);
    dp_eval_free(&r->flows);
    free(r->report_dir);
    memset(r, 0, sizeof *r);
}
