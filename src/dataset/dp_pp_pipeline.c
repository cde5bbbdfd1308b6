/* dp_pp_pipeline: preprocess's worker pipeline (see dp_pp_pipeline.h):
 * workers read captures into chunks or part files, the main thread merges
 * them in file order. */
#include "dataset/dp_pp_pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capture/dp_capture.h"
#include "dataset/dp_pp_part.h"
#include "dataset/dp_pp_sources.h"
#include "dataset/dp_pp_split.h"

/* ---- chunks --------------------------------------------------------------------- */

/* Under r->mu: one of the worker's own chunks, free or newly made (at most
 * r->worker_chunks); NULL when all are in use (or out of memory: *oom set). */
static chunk *own_chunk(const run *r, wstate *ws, int *oom)
{
    chunk *c = ws->free;
    if (c) {
        ws->free = c->next;
    } else if (ws->nalloc < r->worker_chunks) {
        c = malloc(sizeof *c + r->chunk_size);
        if (!c) {
            *oom = 1;
            return NULL;
        }
        ws->nalloc++;
        c->owner = ws;
    } else {
        return NULL;
    }
    c->next = NULL;
    c->n = 0;
    return c;
}

/* Under r->mu: gives a chunk back to its worker. */
static void chunk_release(chunk *c)
{
    wstate *ws = c->owner;
    c->next = ws->free;
    ws->free = c;
}

/* Under r->mu: appends a chunk to a capture's queue for the merge. */
static void chunk_push(capfile *cf, chunk *c)
{
    c->next = NULL;
    if (cf->qt)
        cf->qt->next = c;
    else
        cf->qh = c;
    cf->qt = c;
}

/* Appends the records of chunk c to the part file of capture cf being
 * written (ws->fd), counting them in the part's size and checksum. */
static int part_write(const run *r, const capfile *cf, wstate *ws, const chunk *c, char *errbuf)
{
    if (dp_write_full(ws->fd, c->data, c->n) != 0) {
        char *tmp = dp_pp_part_path(r, cf, "part.tmp");
        dp_errno(errbuf, "%s: write failed", tmp ? tmp : r->parts);
        free(tmp);
        return -1;
    }
    ws->part_bytes += c->n;
    ws->part_hash = dp_pp_records_hash(ws->part_hash, c->data, c->n);
    return 0;
}

/* Starts the part of a capture that does not fit in memory: its chunks
 * taken back from the merge's queue (q), then the current one, go to the
 * part's temp file. */
static int spill(run *r, capfile *cf, wstate *ws, chunk *q, char *errbuf)
{
    char *tmp = dp_pp_part_path(r, cf, "part.tmp");
    ws->fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666) : -1;
    int rc = 0;
    if (ws->fd < 0)
        rc = tmp ? dp_errno(errbuf, "%s: cannot create", tmp) : dp_err(errbuf, "out of memory");
    ws->part_bytes = 0;
    ws->part_hash = 0;
    for (chunk *c = q; c && rc == 0; c = c->next)
        rc = part_write(r, cf, ws, c, errbuf);
    pthread_mutex_lock(&r->mu);
    while (q) {
        chunk *n = q->next;
        chunk_release(q);
        q = n;
    }
    pthread_mutex_unlock(&r->mu);
    free(tmp);
    return rc;
}

/* The current chunk has no room for another record: hand it to the merge
 * and take another, or (a capture bigger than the worker's chunks, not the
 * merge's next one, that has used up the chunks) spill the capture to its
 * part file. */
static int chunk_full(run *r, capfile *cf, wstate *ws, char *errbuf)
{
    if (ws->fd < 0) {
        int oom = 0;
        chunk *q = NULL;
        pthread_mutex_lock(&r->mu);
        for (;;) {
            chunk *c = own_chunk(r, ws, &oom);
            if (c) {
                chunk_push(cf, ws->cur);
                ws->cur = c;
                pthread_cond_broadcast(&r->cv);
                pthread_mutex_unlock(&r->mu);
                return 0;
            }
            if (oom || r->failed) {
                pthread_mutex_unlock(&r->mu);
                return dp_err(errbuf, oom ? "out of memory" : "stopped");
            }
            /* (decided under the lock the merge takes too) */
            if (r->head != cf && cf->size > r->chunk_size * r->worker_chunks) {
                q = cf->qh;
                cf->qh = cf->qt = NULL;
                cf->spilled = 1;
                break;
            }
            /* the merge frees chunks: of this capture if it is the one the
             * merge reads, else of the earlier ones. A capture whose output
             * fits in the worker's chunks waits for them rather than spill:
             * writing and reading back a part costs more CPU than waiting
             * for a merge that is held up by the disk. */
            pthread_cond_wait(&r->cv, &r->mu);
        }
        pthread_mutex_unlock(&r->mu);
        if (spill(r, cf, ws, q, errbuf) != 0)
            return -1;
    }
    if (part_write(r, cf, ws, ws->cur, errbuf) != 0)
        return -1;
    ws->cur->n = 0;
    return 0;
}

/* Closes a spilled capture's part: last records, trailer (with their
 * checksum), fsync, rename, fsync of the folder. Only then is the part
 * whole for a rerun; before, it is a temp file that the next run removes. */
static int finish_part(run *r, capfile *cf, wstate *ws, char *errbuf)
{
    char *tmp = dp_pp_part_path(r, cf, "part.tmp"), *path = dp_pp_part_path(r, cf, "part");
    char trailer[MAX_STATUS + 512];
    int rc = 0;
    if (!tmp || !path) {
        rc = dp_err(errbuf, "%s: out of memory", r->parts);
        goto out;
    }
    if (part_write(r, cf, ws, ws->cur, errbuf) != 0) {
        rc = -1;
        goto out;
    }
    int tl = dp_pp_part_trailer(cf, ws->part_bytes, ws->part_hash, trailer, sizeof trailer);
    if (tl < 0) {
        rc = dp_err(errbuf, "%s: cannot format part trailer", tmp);
        goto out;
    }
    if (dp_write_full(ws->fd, trailer, (size_t)tl) != 0 || fsync(ws->fd) != 0) {
        rc = dp_errno(errbuf, "%s: write failed", tmp);
        goto out;
    }
    int fd = ws->fd;
    ws->fd = -1;
    if (close(fd) != 0) {
        rc = dp_errno(errbuf, "%s: write failed", tmp);
        goto out;
    }
    rc = dp_rename_durable(tmp, path, errbuf);
    if (rc == 0)
        dp_test_kill_point("pp-part");
    cf->part_bytes = ws->part_bytes;
out:
    ws->cur->n = 0;
    if (ws->fd >= 0)
        close(ws->fd);
    ws->fd = -1;
    if (rc != 0 && tmp)
        unlink(tmp);
    free(tmp);
    free(path);
    return rc;
}


/* ---- reading a capture -------------------------------------------------------- */

/* Adds the record rec (size bytes) of capture cf to the worker's current
 * chunk, handing it on first when it is full. */
int dp_pp_emit_record(run *r, capfile *cf, wstate *ws, const uint8_t *rec, size_t size, char *errbuf)
{
    if (r->chunk_size - ws->cur->n < REC_MAX && chunk_full(r, cf, ws, errbuf) != 0)
        return -1;
    memcpy(ws->cur->data + ws->cur->n, rec, size);
    ws->cur->n += size;
    cf->kept++;
    return 0;
}

/* Adds a kept packet's record (meta from frame f and info, vector vec) to
 * the worker's current chunk, handing it on first when it is full. */
static int keep_packet(run *r, capfile *cf, wstate *ws, const dp_frame *f, const dp_pkt_info *info,
                       const uint8_t *vec, char *errbuf)
{
    if (r->chunk_size - ws->cur->n < REC_MAX && chunk_full(r, cf, ws, errbuf) != 0)
        return -1;
    ws->cur->n += dp_pp_frame_record(ws->cur->data + ws->cur->n, cf->relhash, f, info, vec);
    cf->kept++;
    return 0;
}

/* read_frames's status when keeping a packet failed (beside dp_next's). */
#define KEEP_FAILED -2

/* The frames of an open capture: kept ones become records, the others are
 * counted per reason. Returns dp_capture_next's last status (DP_NEXT_END:
 * the end), or KEEP_FAILED (message in errbuf). *bad_lt: the first
 * unsupported link type met, or -1. */
static int read_frames(run *r, capfile *cf, wstate *ws, dp_capture *c, uint8_t *vec, int *bad_lt,
                       char *ceb, char *errbuf)
{
    dp_frame f;
    int nrc;
    uint64_t reported_f = 0, reported_p = 0;
    *bad_lt = -1;
    while ((nrc = dp_capture_next(c, &f, ceb)) == DP_NEXT_FRAME) {
        cf->frames++;
        dp_pkt_info info;
        dp_verdict v = dp_packet_transform(f.linktype, f.data, f.caplen, vec, &info);
        if (v == DP_KEEP) {
            if (keep_packet(r, cf, ws, &f, &info, vec, errbuf) != 0)
                return KEEP_FAILED;
        } else {
            if ((unsigned)v < DP_VERDICT_COUNT)
                cf->skipped[v]++;
            if (v == DP_SKIP_LINKTYPE && *bad_lt < 0)
                *bad_lt = f.linktype;
        }
        if ((cf->frames & 0x3fff) == 0) {
            atomic_fetch_add(&r->live_frames, cf->frames - reported_f);
            atomic_fetch_add(&r->live_packets, cf->kept - reported_p);
            reported_f = cf->frames;
            reported_p = cf->kept;
        }
        /* workers ran out of captures: they take on the rest of this one */
        if ((cf->frames & 0x3ff) == 0 && atomic_load_explicit(&r->idle, memory_order_relaxed) &&
            dp_pp_split_now(r, cf)) {
            atomic_fetch_add(&r->live_frames, cf->frames - reported_f);
            atomic_fetch_add(&r->live_packets, cf->kept - reported_p);
            return dp_pp_split_read(r, cf, ws, c, vec, bad_lt, ceb, errbuf);
        }
    }
    atomic_fetch_add(&r->live_frames, cf->frames - reported_f);
    atomic_fetch_add(&r->live_packets, cf->kept - reported_p);
    return nrc;
}

/* Warnings and status for what went wrong while reading frames: frames of
 * an unsupported link type (bad_lt >= 0), a read error (nrc not DP_NEXT_END). */
static void note_read_problems(run *r, capfile *cf, int bad_lt, int nrc, const char *ceb)
{
    if (bad_lt >= 0) {
        char msg[160], ltd[64];
        dp_capture_linktype_desc(bad_lt, ltd, sizeof ltd);
        snprintf(msg, sizeof msg, "%llu frames of unsupported link type %s skipped",
                 (unsigned long long)cf->skipped[DP_SKIP_LINKTYPE], ltd);
        dp_pp_add_status(cf, msg);
        dp_pp_warn(r, cf->path, 0, "%s", msg);
    }
    if (nrc != DP_NEXT_END) {
        char msg[DP_ERRBUF_SIZE + 100];
        if (nrc == DP_NEXT_ERROR)
            snprintf(msg, sizeof msg, "%s", dp_pp_strip_path(ceb, cf->path));
        else
            snprintf(msg, sizeof msg, "unexpected read status %d after frame %llu", nrc,
                     (unsigned long long)cf->frames);
        dp_pp_add_status(cf, msg);
        dp_pp_warn(r, cf->path, 0, "%s; kept the %llu packets read before", msg,
                   (unsigned long long)cf->kept);
    }
}

/* 0 when the capture c can be read: its link type is supported (pcap: one
 * for the whole file; pcapng: the first interface's, others are checked
 * per frame) and its filter compiles for it; -1 after the warning. */
static int capture_usable(run *r, capfile *cf, dp_capture *c)
{
    int lt = dp_capture_linktype(c);
    char msg[DP_ERRBUF_SIZE + 64];
    if (!dp_linktype_supported(lt) && cf->probe == DP_PROBE_PCAP) {
        char ltd[64];
        dp_capture_linktype_desc(lt, ltd, sizeof ltd);
        snprintf(msg, sizeof msg, "unsupported link type %s", ltd);
    } else if (cf->filter && dp_capture_set_filter(c, cf->filter, msg) != 0) {
        const char *why = dp_pp_strip_path(msg, cf->path); /* within msg */
        memmove(msg, why, strlen(why) + 1);
    } else {
        return 0;
    }
    dp_pp_add_status(cf, msg);
    dp_pp_warn(r, cf->path, 0, "%s; skipped", msg);
    return -1;
}

/* Reads the capture's frames into records; a capture that cannot be opened,
 * a pcap file of an unsupported link type, or one the filter cannot apply
 * to, is a warning. -1 only for a failure that stops the run. */
static int read_capture(run *r, capfile *cf, wstate *ws, uint8_t *vec, int split, char *errbuf)
{
    char ceb[DP_ERRBUF_SIZE] = "";
    dp_capture *c = dp_capture_open_file(cf->path, ceb);
    if (!c && dp_errno_exhausted(errno)) { /* not the capture's fault: it is not skipped */
        if (split)
            dp_pp_split_cancel(r);
        return dp_pp_exhausted(errbuf, ceb, errno);
    }
    if (!c) {
        cf->unreadable = 1;
        dp_pp_add_status(cf, dp_pp_strip_path(ceb, cf->path));
        dp_pp_warn(r, cf->path, 0, "%s; skipped", cf->status);
    }
    int rc = 0;
    if (!c || capture_usable(r, cf, c) != 0) {
        if (split) /* skipped: the helpers waiting for its batches would wait for ever */
            dp_pp_split_cancel(r);
    } else {
        int bad_lt = -1;
        int nrc = split ? dp_pp_split_read(r, cf, ws, c, vec, &bad_lt, ceb, errbuf)
                        : read_frames(r, cf, ws, c, vec, &bad_lt, ceb, errbuf);
        cf->frames += dp_capture_filtered(c); /* frames of the file all the same */
        if (nrc == KEEP_FAILED)
            rc = -1;
        else if (nrc == DP_NEXT_ERROR && dp_errno_exhausted(dp_capture_error_errno(c)))
            rc = dp_pp_exhausted(errbuf, ceb, dp_capture_error_errno(c)); /* not a short capture */
        else
            note_read_problems(r, cf, bad_lt, nrc, ceb);
    }
    dp_capture_close(c);
    return rc;
}

/* Reads one capture into records. Problems with the capture become
 * warnings and its status; -1 (message in errbuf) only for failures that
 * stop the run (writing a part, memory). Either way the merge is told. */
static int process_capture(run *r, capfile *cf, wstate *ws, uint8_t *vec, int split, char *errbuf)
{
    ws->fd = -1;
    ws->part_bytes = 0;
    ws->part_hash = 0;
    cf->frames = cf->kept = 0;
    memset(cf->skipped, 0, sizeof cf->skipped);
    cf->status[0] = 0;
    int rc = read_capture(r, cf, ws, vec, split, errbuf);
    if (rc == 0 && ws->fd >= 0)
        rc = finish_part(r, cf, ws, errbuf);
    if (ws->fd >= 0) { /* failed while spilled */
        close(ws->fd);
        ws->fd = -1;
        char *tmp = dp_pp_part_path(r, cf, "part.tmp");
        if (tmp)
            unlink(tmp);
        free(tmp);
    }
    pthread_mutex_lock(&r->mu);
    if (rc == 0) {
        if (!cf->spilled && ws->cur->n) {
            chunk_push(cf, ws->cur);
            ws->cur = NULL; /* the worker takes another before its next capture */
        }
        cf->ready = 1;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (ws->cur)
        ws->cur->n = 0;
    return rc;
}

/* ---- the workers ---------------------------------------------------------------- */

static void *worker(void *arg)
{
    run *r = arg;
    wstate *ws = calloc(1, sizeof *ws);
    uint8_t *vec = malloc(DP_VEC_LEN);
    int oom = !ws || !vec;
    if (ws)
        ws->fd = -1;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        /* a chunk first, then a capture: the capture the merge waits for
         * is always in the hands of a worker that can make progress */
        while (!oom && !ws->cur && !r->failed && !r->stop && r->next < r->nqueue) {
            ws->cur = own_chunk(r, ws, &oom);
            if (!ws->cur && !oom)
                pthread_cond_wait(&r->cv, &r->mu);
        }
        if (oom) {
            if (!r->failed) {
                r->failed = 1;
                dp_err(r->err, "out of memory");
            }
            pthread_cond_broadcast(&r->cv);
            pthread_mutex_unlock(&r->mu);
            break;
        }
        if (r->failed || r->stop || r->next >= r->nqueue) {
            /* no capture left: help transform the one being split */
            int helped = !r->failed && !r->stop && dp_pp_split_help(r, vec);
            pthread_mutex_unlock(&r->mu);
            if (helped)
                continue;
            break;
        }
        if (r->knobs.stop_after && r->taken >= r->knobs.stop_after) {
            r->stop = 1;
            pthread_cond_broadcast(&r->cv);
            pthread_mutex_unlock(&r->mu);
            break;
        }
        size_t idx = r->queue[r->next++];
        r->taken++;
        int split = dp_pp_split_wanted(r, &r->files[idx]);
        pthread_mutex_unlock(&r->mu);

        char eb[DP_ERRBUF_SIZE];
        int rc = process_capture(r, &r->files[idx], ws, vec, split, eb);

        pthread_mutex_lock(&r->mu);
        if (rc != 0 && !r->failed) {
            r->failed = 1;
            memcpy(r->err, eb, sizeof eb);
        }
        r->finished++;
        if (r->finished == r->nqueue)
            r->t_read_done = dp_now();
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    free(vec);
    if (ws) {
        /* the worker's chunks still queued for the merge are freed by the
         * run; here only the ones it holds */
        pthread_mutex_lock(&r->mu);
        if (ws->cur)
            chunk_release(ws->cur);
        ws->cur = NULL;
        ws->next_ws = r->workers;
        r->workers = ws;
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}


int dp_pp_workers_start(run *r, char *errbuf)
{
    int threads = r->o->threads > 0 ? r->o->threads : dp_ncpu();
    /* a worker per capture at most, unless the last one may be split
     * (dp_pp_split.h): then the others help with it */
    int big = r->nqueue && r->files[r->queue[r->nqueue - 1]].size >= r->split_bytes;
    if ((size_t)threads > r->nqueue && !big)
        threads = r->nqueue ? (int)r->nqueue : 1;
    r->st->threads = threads;
    r->progress_on = r->o->progress;
    dp_progress_init(&r->prog);
    r->t_read = dp_now();
    r->t_read_done = r->t_read;
    if (!r->nqueue)
        return 0;
    r->th = calloc((size_t)threads, sizeof *r->th);
    if (!r->th)
        return dp_err(errbuf, "out of memory");
    for (; r->nth < (size_t)threads; r->nth++)
        if (pthread_create(&r->th[r->nth], NULL, worker, r) != 0)
            break;
    if (r->nth == 0)
        return dp_err(errbuf, "cannot start worker threads");
    return 0;
}

void dp_pp_workers_join(run *r, int stop)
{
    if (stop && r->nth) {
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        r->failed = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    for (size_t i = 0; i < r->nth; i++)
        pthread_join(r->th[i], NULL);
    r->nth = 0;
}

void dp_pp_pipeline_free(run *r)
{
    for (size_t i = 0; i < r->nfiles; i++)
        for (chunk *c = r->files[i].qh, *n; c; c = n) {
            n = c->next;
            free(c);
        }
    for (wstate *ws = r->workers, *nw; ws; ws = nw) {
        nw = ws->next_ws;
        for (chunk *c = ws->free, *n; c; c = n) {
            n = c->next;
            free(c);
        }
        free(ws);
    }
    r->workers = NULL;
    free(r->th);
    r->th = NULL;
}

/* ---- the merge side --------------------------------------------------------------- */

/* Under r->mu: waits until capture cf has a chunk queued or is read, or
 * the run stops; prints the progress line meanwhile. */
static void wait_for_records(run *r, const capfile *cf)
{
    while (!cf->qh && !cf->ready && !r->failed && !(r->stop && r->finished == r->next)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        if (r->progress_on && dp_progress_due(&r->prog)) {
            double el = dp_now() - r->t_read;
            uint64_t pk = atomic_load(&r->live_packets);
            pthread_mutex_lock(&r->warn_mu);
            dp_progress_print(&r->prog,
                              "preprocess: %zu/%zu captures read, %zu merged, %llu packets, "
                              "%.0f packets/s",
                              r->finished + r->st->reused, r->ncaptures, r->m.merged,
                              (unsigned long long)pk, el > 0 ? pk / el : 0.0);
            pthread_mutex_unlock(&r->warn_mu);
        }
    }
}

/* Merges the k-th capture: its chunks as they come, then its part file if
 * it has one. 1 when merged, 0 when the run stopped first, -1 failed. */
static int merge_capture(run *r, size_t k, char *errbuf)
{
    capfile *cf = &r->files[r->caps[k]];
    uint64_t count = 0;
    pthread_mutex_lock(&r->mu);
    r->head = cf;
    pthread_cond_broadcast(&r->cv);
    for (;;) {
        wait_for_records(r, cf);
        if (!cf->qh || r->failed)
            break;
        chunk *c = cf->qh;
        cf->qh = c->next;
        if (!cf->qh)
            cf->qt = NULL;
        pthread_mutex_unlock(&r->mu);
        int mrc = dp_pp_merge_records(&r->m, cf, (uint32_t)k, c->data, c->n, &count, r->parts, errbuf);
        pthread_mutex_lock(&r->mu);
        chunk_release(c);
        pthread_cond_broadcast(&r->cv);
        if (mrc != 0) {
            pthread_mutex_unlock(&r->mu);
            return -1;
        }
    }
    int ready = cf->ready, failed = r->failed, from_file = cf->spilled || cf->from_part;
    pthread_mutex_unlock(&r->mu);
    if (failed || !ready)
        return 0;
    if (from_file && dp_pp_merge_part(r, &r->m, cf, (uint32_t)k, &count, errbuf) != 0)
        return -1;
    r->st->spilled += cf->spilled;
    return dp_pp_merge_done(r, cf, count, errbuf) == 0 ? 1 : -1;
}

int dp_pp_merge_all(run *r, char *errbuf)
{
    for (size_t k = r->m.merged; k < r->ncaptures; k++) {
        int rc = merge_capture(r, k, errbuf);
        if (rc != 1)
            return rc;
    }
    return 1;
}
