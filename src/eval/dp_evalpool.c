/* dp_evalpool: batches of a test set predicted by worker threads (see the
 * header). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval/dp_evalpool.h"
#include "nn/dp_nn.h"
#include "util/dp_util.h"

typedef struct shared {
    const dp_splitset *s;
    int C;
    int batch;
    uint64_t nbatches;
    int flows;              /* aggregate per flow (test set has meta) */
    int16_t *pred;          /* [n] */
    float *prob;            /* [n] the verdicts' probabilities */
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

typedef struct pool {
    shared sh;
    worker *ws;
    int nw;
} pool;

/* Counts one predicted batch (rows start.. of w->lp) into the worker's
 * matrix, the predictions and its flow aggregator. 0, or -1 + w->err. */
static int count_batch(worker *w, uint64_t start, int cnt)
{
    shared *sh = w->sh;
    const dp_splitset *s = sh->s;
    int C = sh->C;
    for (int r = 0; r < cnt; r++) {
        const float *lp = w->lp + (size_t)r * C;
        int p = 0;
        for (int c = 1; c < C; c++)
            if (lp[c] > lp[p])
                p = c;
        uint64_t i = start + (uint64_t)r;
        int t = dp_splitset_label(s, i);
        sh->pred[i] = (int16_t)p;
        sh->prob[i] = expf(lp[p]);
        w->cm[(size_t)t * C + p]++;
        if (sh->flows) {
            dp_meta m = dp_splitset_meta(s, i);
            if (dp_flowagg_add(w->fa, m.flow, t, lp, w->err) != 0)
                return -1;
        }
    }
    return 0;
}

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
        if (dp_model_predict(w->m, dp_splitset_vectors(s, start, cnt, w->xb), cnt, w->lp, w->err) != 0 ||
            count_batch(w, start, cnt) != 0) {
            w->failed = 1;
            atomic_store(&sh->stop, 1);
            break;
        }
        if (sh->logprobs)
            memcpy(sh->logprobs + start * (uint64_t)C, w->lp, (size_t)cnt * C * sizeof(float));
        atomic_fetch_add(&sh->done, (uint64_t)cnt);
    }
    atomic_fetch_sub(&sh->running, 1);
    return NULL;
}

static void progress_line(dp_progress *pr, uint64_t done, uint64_t n)
{
    double el = dp_now() - pr->start;
    double rate = el > 0 ? done / el : 0;
    char eta[32];
    dp_fmt_duration(eta, sizeof eta, rate > 0 ? (double)(n - done) / rate : -1);
    dp_progress_print(pr, "test: %llu/%llu packets (%.1f%%), %.0f packets/s, ETA %s",
                      (unsigned long long)done, (unsigned long long)n,
                      n ? 100.0 * (double)done / (double)n : 100.0, rate, eta);
}

/* The worker count: `threads` (0: all CPUs), no more than batches. */
static int worker_count(uint64_t n, int threads, int batch)
{
    if (!threads)
        threads = dp_ncpu();
    uint64_t nb = (n + (uint64_t)batch - 1) / (uint64_t)batch;
    if ((uint64_t)threads * (uint64_t)batch > n && n > 0 && (uint64_t)threads > nb)
        threads = (int)nb;
    return threads;
}

/* The shared state: predictions and (save_lp) log-probabilities for every
 * row. 0, or -1 + message. */
static int shared_init(shared *sh, const dp_splitset *s, int batch, int save_lp, char *errbuf)
{
    int C = s->nclasses;
    if (save_lp && s->n * (uint64_t)C > (UINT64_C(1) << 34))
        return dp_err(errbuf, "--save-logprobs: %llu x %d floats do not fit in memory",
                      (unsigned long long)s->n, C);
    sh->s = s;
    sh->C = C;
    sh->batch = batch;
    sh->nbatches = (s->n + batch - 1) / batch;
    sh->flows = s->has_meta;
    sh->pred = malloc((s->n ? s->n : 1) * sizeof *sh->pred);
    sh->prob = malloc((s->n ? s->n : 1) * sizeof *sh->prob);
    if (save_lp)
        sh->logprobs = malloc((s->n ? s->n : 1) * (size_t)C * sizeof(float));
    if (!sh->pred || !sh->prob || (save_lp && !sh->logprobs))
        return dp_err(errbuf, "out of memory for %llu test packets", (unsigned long long)s->n);
    return 0;
}

/* Gives each of p->nw workers a model (worker 0 borrows m0, the others a
 * copy of it: reading the file again could give another model, if it was
 * replaced since), its buffers and flow aggregator. On failure p->nw
 * counts the workers to free. */
static int workers_init(pool *p, int threads, dp_model *m0, char *errbuf)
{
    int C = p->sh.C, batch = p->sh.batch;
    if (!(p->ws = calloc((size_t)threads, sizeof *p->ws)))
        return dp_err(errbuf, "out of memory for %llu test packets", (unsigned long long)p->sh.s->n);
    for (p->nw = 0; p->nw < threads; p->nw++) {
        worker *w = &p->ws[p->nw];
        w->sh = &p->sh;
        w->m = p->nw == 0 ? m0 : dp_model_clone(m0, errbuf);
        w->cm = calloc((size_t)C * C, sizeof *w->cm);
        w->lp = malloc((size_t)batch * C * sizeof *w->lp);
        w->xb = malloc((size_t)batch * DP_VEC_LEN);
        if (p->sh.flows)
            w->fa = dp_flowagg_new(C, errbuf);
        if (!w->m || !w->cm || !w->lp || !w->xb || (p->sh.flows && !w->fa)) {
            if (w->m && errbuf[0] == 0)
                dp_err(errbuf, "out of memory for worker %d", p->nw);
            p->nw++;
            return -1;
        }
    }
    return 0;
}

/* Starts the workers, redraws the progress line until they end, joins them.
 * Returns the seconds taken, or -1 + message (no thread started, a worker
 * failed). */
static double run_workers(pool *p, int progress, char *errbuf)
{
    shared *sh = &p->sh;
    dp_progress pr;
    dp_progress_init(&pr);
    atomic_store(&sh->running, p->nw);
    int any_started = 0;
    for (int i = 0; i < p->nw; i++) {
        if (pthread_create(&p->ws[i].tid, NULL, worker_main, &p->ws[i]) == 0)
            any_started = p->ws[i].started = 1;
        else
            atomic_fetch_sub(&sh->running, 1);
    }
    if (!any_started)
        return dp_err(errbuf, "cannot start worker threads");
    while (atomic_load(&sh->running) > 0) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (progress && dp_progress_due(&pr))
            progress_line(&pr, atomic_load(&sh->done), sh->s->n);
    }
    for (int i = 0; i < p->nw; i++)
        if (p->ws[i].started)
            pthread_join(p->ws[i].tid, NULL);
    for (int i = 0; i < p->nw; i++)
        if (p->ws[i].failed) {
            if (progress)
                dp_progress_done(&pr);
            memcpy(errbuf, p->ws[i].err, DP_ERRBUF_SIZE);
            return -1;
        }
    if (progress) {
        progress_line(&pr, atomic_load(&sh->done), sh->s->n);
        dp_progress_done(&pr);
    }
    return dp_now() - pr.start;
}

/* Sums the workers' matrices and merges their flow aggregators into o,
 * freeing each one as it goes (peak memory: the workers' tables, not one
 * more copy). */
static int collect(pool *p, dp_evalpool_out *o, char *errbuf)
{
    int C = p->sh.C;
    if (!(o->cm = calloc((size_t)C * C, sizeof *o->cm)))
        return dp_err(errbuf, "out of memory for the confusion matrix");
    for (int i = 0; i < p->nw; i++)
        for (size_t k = 0; k < (size_t)C * C; k++)
            o->cm[k] += p->ws[i].cm[k];
    if (!p->sh.flows)
        return 0;
    o->flows = p->ws[0].fa;
    p->ws[0].fa = NULL;
    for (int i = 1; i < p->nw; i++) {
        if (dp_flowagg_merge(o->flows, p->ws[i].fa, errbuf) != 0)
            return -1;
        dp_flowagg_free(p->ws[i].fa);
        p->ws[i].fa = NULL;
    }
    return 0;
}

static void pool_free(pool *p)
{
    for (int i = 0; i < p->nw; i++) {
        if (i > 0) /* worker 0's is the caller's */
            dp_model_free(p->ws[i].m);
        free(p->ws[i].cm);
        free(p->ws[i].lp);
        free(p->ws[i].xb);
        dp_flowagg_free(p->ws[i].fa);
    }
    free(p->ws);
    free(p->sh.pred);
    free(p->sh.prob);
    free(p->sh.logprobs);
}

int dp_evalpool_run(dp_model *m0, const dp_splitset *s, const char *dir,
                    const char *task_name, int threads, int batch, int save_logprobs, int progress,
                    dp_evalpool_out *o, char *errbuf)
{
    memset(o, 0, sizeof *o);
    pool p;
    memset(&p, 0, sizeof p);
    threads = worker_count(s->n, threads, batch);
    int rc = -1;
    if (shared_init(&p.sh, s, batch, save_logprobs, errbuf) != 0)
        goto out;
    dp_nn_set_threads(1);
    if (workers_init(&p, threads, m0, errbuf) != 0)
        goto out;
    if (progress)
        fprintf(stderr, "deeppacket test: %s model (%s, %d classes) on %s: %llu packets%s, %d threads\n",
                dp_model_kind_name(p.ws[0].m), task_name ? task_name : "?", p.sh.C, dir,
                (unsigned long long)s->n, p.sh.flows ? " with flows" : "", p.nw);
    o->secs = run_workers(&p, progress, errbuf);
    if (o->secs < 0 || collect(&p, o, errbuf) != 0)
        goto out;
    o->pred = p.sh.pred, p.sh.pred = NULL;
    o->prob = p.sh.prob, p.sh.prob = NULL;
    o->logprobs = p.sh.logprobs, p.sh.logprobs = NULL;
    o->threads = p.nw;
    rc = 0;
out:
    pool_free(&p);
    if (rc != 0)
        dp_evalpool_out_free(o);
    return rc;
}

void dp_evalpool_out_free(dp_evalpool_out *o)
{
    free(o->pred);
    free(o->prob);
    free(o->logprobs);
    free(o->cm);
    dp_flowagg_free(o->flows);
    memset(o, 0, sizeof *o);
}
