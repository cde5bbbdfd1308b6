/* dp_pp_split: one big capture read by one worker and transformed by all
 * (see dp_pp_split.h). Batches go FREE -> FILLED (owner) -> TAKEN (any
 * worker) -> DONE -> FREE (owner, after handing its records on), in ring
 * order; states and the ring's positions are under r->mu. */
#include "dataset/dp_pp_split.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dp_pp_part.h"
#include "dataset/dp_pp_pipeline.h"

#define BATCH_FRAMES 256

enum { B_FREE, B_FILLED, B_TAKEN, B_DONE };

typedef struct batch {
    int state;
    size_t nframes;
    dp_frame fr[BATCH_FRAMES];      /* data: NULL; the bytes are at raw + off[i] */
    size_t off[BATCH_FRAMES];
    uint8_t *raw;                   /* the frames' bytes */
    size_t raw_n, raw_cap;
    uint8_t *out;                   /* their records, BATCH_FRAMES * REC_MAX bytes */
    size_t out_n;
    uint64_t kept, skipped[DP_VERDICT_COUNT];
    int bad_lt;                     /* first unsupported link type, or -1 */
} batch;

struct dp_pp_split {
    uint64_t relhash;               /* of the capture: the flows' salt */
    batch *b;
    size_t nb;
    size_t head, tail;              /* next batch to hand on / to fill (counters) */
    size_t busy;                    /* batches TAKEN */
};

static batch *slot(struct dp_pp_split *s, size_t i)
{
    return &s->b[i % s->nb];
}

int dp_pp_split_now(run *r, const capfile *cf)
{
    pthread_mutex_lock(&r->mu);
    int go = r->st->threads >= 2 && !r->split && !r->split_pending && !r->failed && cf->size >= r->split_bytes;
    if (go) {
        r->split_pending = 1;
        r->st->split++;
    }
    pthread_mutex_unlock(&r->mu);
    return go;
}

int dp_pp_split_wanted(run *r, const capfile *cf)
{
    if (r->st->threads < 2 || r->next < r->nqueue || cf->size < r->split_bytes || r->split || r->split_pending)
        return 0;
    r->split_pending = 1;
    r->st->split++;
    return 1;
}

void dp_pp_split_cancel(run *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->split_pending && !r->split) {
        r->split_pending = 0;
        r->st->split--;
        pthread_cond_broadcast(&r->cv); /* the helpers waiting for its batches */
    }
    pthread_mutex_unlock(&r->mu);
}

/* ---- the batches ------------------------------------------------------------------ */

/* Transforms batch b (owned by the caller: TAKEN) into records. */
static void transform(const struct dp_pp_split *s, batch *b, uint8_t *vec)
{
    b->out_n = 0;
    b->kept = 0;
    memset(b->skipped, 0, sizeof b->skipped);
    b->bad_lt = -1;
    for (size_t i = 0; i < b->nframes; i++) {
        dp_frame f = b->fr[i];
        f.data = b->raw + b->off[i];
        dp_pkt_info info;
        dp_verdict v = dp_packet_transform(f.linktype, f.data, f.caplen, vec, &info);
        if (v == DP_KEEP) {
            b->out_n += dp_pp_frame_record(b->out + b->out_n, s->relhash, &f, &info, vec);
            b->kept++;
        } else {
            if ((unsigned)v < DP_VERDICT_COUNT)
                b->skipped[v]++;
            if (v == DP_SKIP_LINKTYPE && b->bad_lt < 0)
                b->bad_lt = f.linktype;
        }
    }
}

/* Under r->mu: takes the oldest FILLED batch, transforms it with the lock
 * released, marks it DONE. 0 when no batch was waiting. */
static int transform_one(run *r, struct dp_pp_split *s, uint8_t *vec)
{
    for (size_t i = s->head; i < s->tail; i++) {
        batch *b = slot(s, i);
        if (b->state != B_FILLED)
            continue;
        b->state = B_TAKEN;
        s->busy++;
        pthread_mutex_unlock(&r->mu);
        transform(s, b, vec);
        pthread_mutex_lock(&r->mu);
        b->state = B_DONE;
        s->busy--;
        pthread_cond_broadcast(&r->cv);
        return 1;
    }
    return 0;
}

int dp_pp_split_help(run *r, uint8_t *vec)
{
    if (!r->split && !r->split_pending && r->finished >= r->next)
        return 0;
    if (r->split && !r->failed && transform_one(r, r->split, vec))
        return 1;
    atomic_fetch_add(&r->idle, 1);
    pthread_cond_wait(&r->cv, &r->mu);
    atomic_fetch_sub(&r->idle, 1);
    return 1;
}

/* Copies the next frames of c into the (FREE) batch b; returns
 * dp_capture_next's status after the last one (1: more may follow). */
static int fill(batch *b, dp_capture *c, char *ceb)
{
    int nrc = 1;
    b->nframes = b->raw_n = 0;
    dp_frame f;
    while (b->nframes < BATCH_FRAMES && (nrc = dp_capture_next(c, &f, ceb)) == 1) {
        if (b->raw_cap - b->raw_n < f.caplen) {
            size_t cap = 2 * (b->raw_cap + f.caplen);
            uint8_t *nr = realloc(b->raw, cap);
            if (!nr)
                return -3;
            b->raw = nr;
            b->raw_cap = cap;
        }
        memcpy(b->raw + b->raw_n, f.data, f.caplen);
        b->off[b->nframes] = b->raw_n;
        b->raw_n += f.caplen;
        f.data = NULL;
        b->fr[b->nframes++] = f;
    }
    return nrc;
}

/* Hands a DONE batch's records on, in order, and adds up its counts. */
static int hand_on(run *r, capfile *cf, wstate *ws, batch *b, int *bad_lt, char *errbuf)
{
    for (size_t pos = 0; pos < b->out_n;) {
        size_t size = dp_pp_rec_size(b->out + pos, b->out_n - pos);
        if (dp_pp_emit_record(r, cf, ws, b->out + pos, size, errbuf) != 0)
            return -1;
        pos += size;
    }
    cf->frames += b->nframes;
    for (int v = 0; v < DP_VERDICT_COUNT; v++)
        cf->skipped[v] += b->skipped[v];
    if (*bad_lt < 0)
        *bad_lt = b->bad_lt;
    atomic_fetch_add(&r->live_frames, b->nframes);
    atomic_fetch_add(&r->live_packets, b->kept);
    return 0;
}

/* ---- the owner -------------------------------------------------------------------- */

/* The owner's step while it cannot fill a batch (the ring is full) or has
 * read everything: hands on the oldest batch if it is DONE, else
 * transforms a waiting one, else waits for a helper. -1 on failure. */
static int owner_step(run *r, capfile *cf, wstate *ws, struct dp_pp_split *s, uint8_t *vec, int *bad_lt,
                      char *errbuf)
{
    pthread_mutex_lock(&r->mu);
    batch *h = slot(s, s->head);
    if (r->failed) {
        pthread_mutex_unlock(&r->mu);
        return dp_err(errbuf, "stopped");
    }
    if (h->state == B_DONE) {
        pthread_mutex_unlock(&r->mu);
        if (hand_on(r, cf, ws, h, bad_lt, errbuf) != 0)
            return -1;
        pthread_mutex_lock(&r->mu);
        h->state = B_FREE;
        s->head++;
    } else if (!transform_one(r, s, vec)) {
        pthread_cond_wait(&r->cv, &r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static int ring_init(struct dp_pp_split *s, const run *r, const capfile *cf)
{
    memset(s, 0, sizeof *s);
    s->relhash = cf->relhash;
    s->nb = 2 * (size_t)r->st->threads + 2;
    s->b = calloc(s->nb, sizeof *s->b);
    if (!s->b)
        return -1;
    for (size_t i = 0; i < s->nb; i++)
        if (!(s->b[i].out = malloc(BATCH_FRAMES * REC_MAX)))
            return -1;
    return 0;
}

static void ring_free(struct dp_pp_split *s)
{
    for (size_t i = 0; s->b && i < s->nb; i++) {
        free(s->b[i].raw);
        free(s->b[i].out);
    }
    free(s->b);
}

/* Reads every frame into the ring and hands the batches on in order;
 * returns as dp_pp_split_read. */
static int read_all(run *r, capfile *cf, wstate *ws, struct dp_pp_split *s, dp_capture *c, uint8_t *vec,
                    int *bad_lt, char *ceb, char *errbuf)
{
    int nrc = 1;
    while (nrc == 1 || s->head < s->tail) {
        pthread_mutex_lock(&r->mu);
        batch *t = slot(s, s->tail);
        int can_fill = nrc == 1 && s->tail - s->head < s->nb && t->state == B_FREE;
        pthread_mutex_unlock(&r->mu);
        if (!can_fill) {
            if (owner_step(r, cf, ws, s, vec, bad_lt, errbuf) != 0)
                return -2;
            continue;
        }
        nrc = fill(t, c, ceb);
        if (nrc == -3)
            return dp_err(errbuf, "%s: out of memory", cf->path), -2;
        pthread_mutex_lock(&r->mu);
        if (t->nframes) {
            t->state = B_FILLED;
            s->tail++;
            pthread_cond_broadcast(&r->cv);
        }
        pthread_mutex_unlock(&r->mu);
    }
    return nrc;
}

int dp_pp_split_read(run *r, capfile *cf, wstate *ws, dp_capture *c, uint8_t *vec, int *bad_lt,
                     char *ceb, char *errbuf)
{
    struct dp_pp_split s;
    int rc = ring_init(&s, r, cf) == 0 ? 0 : (dp_err(errbuf, "%s: out of memory", cf->path), -2);
    if (rc == 0) {
        pthread_mutex_lock(&r->mu);
        r->split = &s;
        pthread_mutex_unlock(&r->mu);
        rc = read_all(r, cf, ws, &s, c, vec, bad_lt, ceb, errbuf);
    }
    /* the helpers let go of the ring before it goes */
    pthread_mutex_lock(&r->mu);
    r->split = NULL;
    r->split_pending = 0;
    while (s.busy)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    ring_free(&s);
    return rc;
}
