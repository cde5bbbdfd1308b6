/* dp_merge: shard datasets -> one dataset (see dp_merge.h). The run is
 * preprocess's (dp_pp_run.h) with the shards' rows in place of the
 * workers' records: same journal, same commit, same reports. */
#include "dataset/dp_merge.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "dataset/dp_dataset.h"
#include "dataset/dp_pp_merge.h"
#include "dataset/dp_pp_part.h"
#include "dataset/dp_pp_run.h"
#include "dataset/dp_pp_shard.h"
#include "dataset/dp_pp_sources.h"

typedef struct shard {
    const char *dir;
    dp_pp_manifest man;
    char *labels;           /* its labels.tsv text */
    dp_dataset ds;          /* its arrays, memory-mapped */
    uint64_t rows;          /* rows its manifest's captures count */
    uint32_t captures;      /* captures its manifest lists */
} shard;

/* ---- the shards ----------------------------------------------------------------- */

/* Drops what read_shard_files read (ctx: the shard). */
static void drop_shard_files(void *ctx)
{
    shard *s = ctx;
    dp_pp_manifest_free(&s->man);
    free(s->labels);
    s->labels = NULL;
}

/* A shard's own files, read in the generation of its arrays
 * (dp_dataset_open_with; ctx: the shard): complete, its manifest and its
 * label table. On failure nothing is kept. */
static int read_shard_files(void *ctx, char *errbuf)
{
    shard *s = ctx;
    if (!dp_preprocess_complete(s->dir))
        return dp_err(errbuf, "%s: not a complete dataset (no summary.json, or a file missing); finish its "
                      "preprocess --shard run first", s->dir);
    if (dp_pp_manifest_read(s->dir, &s->man, errbuf) != 0)
        return -1;
    char *lp = dp_path_join(s->dir, "labels.tsv");
    s->labels = lp ? dp_labels_read(lp, errbuf) : NULL;
    if (!lp)
        dp_err(errbuf, "%s: out of memory", s->dir);
    free(lp);
    if (s->labels)
        return 0;
    drop_shard_files(s);
    return -1;
}

/* Reads one shard: complete, with a manifest, its label table and arrays,
 * all of one generation of it (a shard preprocessed again meanwhile is
 * read again, as other readers do). */
static int load_shard(shard *s, char *errbuf)
{
    if (dp_dataset_open_with(&s->ds, s->dir, read_shard_files, drop_shard_files, s, errbuf) != 0)
        return -1;
    /* read once, front to back: read ahead, and drop the pages behind */
    madvise(s->ds.vectors.map, s->ds.vectors.map_len, MADV_SEQUENTIAL);
    madvise(s->ds.meta.map, s->ds.meta.map_len, MADV_SEQUENTIAL);
    return 0;
}

/* 1 + message when shards s and s0 were made from different states of the
 * capture folder (their listing lines differ), or one has a listing line and
 * the other none (another version's shard); else 0. */
static int listing_differs(const shard *s, const shard *s0, char *errbuf)
{
    const dp_pp_manifest *m = &s->man, *m0 = &s0->man;
    if (m->has_listing != m0->has_listing) {
        dp_err(errbuf, "%s/%s has %s listing line, %s/%s %s: shards made by different versions of deeppacket; "
               "make every shard again with this one", s->dir, DP_SHARD_FILE, m->has_listing ? "a" : "no",
               s0->dir, DP_SHARD_FILE, m0->has_listing ? "has one" : "none");
        return 1;
    }
    if (m->has_listing && (m->listing_files != m0->listing_files || m->listing_hash != m0->listing_hash)) {
        dp_err(errbuf, "%s was made from %s holding %llu files (listing %016llx), %s from %s holding %llu files "
               "(listing %016llx): shards made from different states of the capture folder (a file added, "
               "removed or changed in size between the runs); make every shard again from the same folder",
               s->dir, m->source, (unsigned long long)m->listing_files, (unsigned long long)m->listing_hash,
               s0->dir, m0->source, (unsigned long long)m0->listing_files, (unsigned long long)m0->listing_hash);
        return 1;
    }
    return 0;
}

/* The shards are one run's: same count, label table, filter and state of
 * the capture folder, each shard once. */
static int check_shard_set(shard *sh, size_t n, char *errbuf)
{
    unsigned count = sh[0].man.count;
    const char **seen = calloc(count, sizeof *seen);
    if (!seen)
        return dp_err(errbuf, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const dp_pp_manifest *m = &sh[i].man;
        if (m->count != count)
            rc = dp_err(errbuf, "%s is shard %u/%u but %s is shard %u/%u: shards of runs with different "
                        "shard counts", sh[i].dir, m->index, m->count, sh[0].dir, sh[0].man.index, count);
        else if (strcmp(sh[i].labels, sh[0].labels) != 0)
            rc = dp_err(errbuf, "%s/labels.tsv differs from %s/labels.tsv: shards made with different "
                        "label tables", sh[i].dir, sh[0].dir);
        else if (!m->filter != !sh[0].man.filter || (m->filter && strcmp(m->filter, sh[0].man.filter)))
            rc = dp_err(errbuf, "%s was made with %s%s%s, %s with %s%s%s: shards made with different filters",
                        sh[i].dir, m->filter ? "--filter '" : "no filter", m->filter ? m->filter : "",
                        m->filter ? "'" : "", sh[0].dir, sh[0].man.filter ? "--filter '" : "no filter",
                        sh[0].man.filter ? sh[0].man.filter : "", sh[0].man.filter ? "'" : "");
        else if (listing_differs(&sh[i], &sh[0], errbuf))
            rc = -1;
        else if (seen[m->index])
            rc = dp_err(errbuf, "%s and %s are both shard %u/%u (overlapping shards)", seen[m->index],
                        sh[i].dir, m->index, count);
        else
            seen[m->index] = sh[i].dir;
    }
    for (unsigned k = 0; k < count && rc == 0; k++)
        if (!seen[k])
            rc = dp_err(errbuf, "shard %u/%u is missing (give all %u shard folders of the run; %zu given)", k,
                        count, count, n);
    free(seen);
    return rc;
}

/* ---- the merged file list --------------------------------------------------------- */

static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const capfile *)a)->rel, ((const capfile *)b)->rel);
}

/* Moves every shard's files into r->files, in the order a one-machine run
 * lists them; a file in the wrong shard or in two is refused. */
static int gather_files(run *r, shard *sh, size_t n, char *errbuf)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += sh[i].man.nfiles;
    r->files = calloc(total ? total : 1, sizeof *r->files);
    if (!r->files)
        return dp_err(errbuf, "out of memory");
    for (size_t i = 0; i < n; i++)
        for (size_t f = 0; f < sh[i].man.nfiles; f++) {
            capfile *cf = &r->files[r->nfiles++];
            *cf = sh[i].man.files[f];
            sh[i].man.files[f].rel = sh[i].man.files[f].path = NULL; /* r owns them now */
            cf->shard = i;
            if (cf->relhash % sh[i].man.count != sh[i].man.index)
                return dp_err(errbuf, "%s/%s: lists %s, a file of shard %u/%u, not of shard %u",
                              sh[i].dir, DP_SHARD_FILE, cf->rel, (unsigned)(cf->relhash % sh[i].man.count),
                              sh[i].man.count, sh[i].man.index);
        }
    if (r->nfiles > 1)
        qsort(r->files, r->nfiles, sizeof *r->files, cmp_rel);
    for (size_t f = 1; f < r->nfiles; f++)
        if (!strcmp(r->files[f - 1].rel, r->files[f].rel))
            return dp_err(errbuf, "%s is in %s and in %s (overlapping shards)", r->files[f].rel,
                          sh[r->files[f - 1].shard].dir, sh[r->files[f].shard].dir);
    return 0;
}

/* Each capture's rows in its shard, its labels, and the run's counts; the
 * shards' arrays must hold the rows their manifests count. */
static int place_captures(run *r, shard *sh, size_t n, char *errbuf)
{
    dp_preprocess_stats *st = r->st;
    for (size_t f = 0; f < r->nfiles; f++) {
        capfile *cf = &r->files[f];
        if (!cf->is_capture)
            continue;
        shard *s = &sh[cf->shard];
        if (cf->kept > s->ds.n - s->rows) /* checked as it adds up: a sum could wrap past 2^64 */
            return dp_err(errbuf, "%s/%s counts more kept packets (up to %s) than the %llu rows of "
                          "vectors.npy", s->dir, DP_SHARD_FILE, cf->rel, (unsigned long long)s->ds.n);
        cf->shard_row = s->rows;
        cf->shard_file = s->captures++;
        s->rows += cf->kept;
        if (dp_pp_label_capture(r, cf) < 0)
            return dp_err(errbuf, "out of memory");
        r->ncaptures++;
        st->capture_bytes += cf->size;
    }
    for (size_t i = 0; i < n; i++)
        if (sh[i].rows != sh[i].ds.n)
            return dp_err(errbuf, "%s/vectors.npy: %llu rows, but its %s counts %llu kept packets", sh[i].dir,
                          (unsigned long long)sh[i].ds.n, DP_SHARD_FILE, (unsigned long long)sh[i].rows);
    st->files = r->nfiles;
    st->captures = r->ncaptures;
    st->not_captures = r->nfiles - r->ncaptures;
    if (!r->ncaptures)
        return dp_err(errbuf, "%s: no capture files (pcap or pcapng) in any shard", sh[0].man.source);
    return 0;
}

/* The run's source, label table and files from the shards. */
static int setup_run(run *r, shard *sh, size_t n, char *errbuf)
{
    r->src = strdup(sh[0].man.source);
    r->label_text = strdup(sh[0].labels);
    r->filter = sh[0].man.filter ? strdup(sh[0].man.filter) : NULL;
    if (!r->src || !r->label_text || (sh[0].man.filter && !r->filter))
        return dp_err(errbuf, "out of memory");
    char *lp = dp_path_join(sh[0].dir, "labels.tsv");
    int rc = lp ? dp_labels_parse(&r->table, r->label_text, lp, errbuf) : dp_err(errbuf, "out of memory");
    free(lp);
    if (rc != 0 || gather_files(r, sh, n, errbuf) != 0)
        return -1;
    for (size_t i = 1; i < n; i++)
        if (strcmp(sh[i].man.source, r->src) != 0)
            dp_pp_warn(r, sh[i].dir, 0, "made from the capture folder %s, shard %s from %s; the merged "
                       "dataset names %s", sh[i].man.source, sh[0].dir, r->src, r->src);
    return place_captures(r, sh, n, errbuf);
}

/* The target may not be one of the shards. */
static int check_target(const char *dst, shard *sh, size_t n, char *errbuf)
{
    struct stat t, s;
    if (stat(dst, &t) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (stat(sh[i].dir, &s) == 0 && s.st_dev == t.st_dev && s.st_ino == t.st_ino)
            return dp_err(errbuf, "%s: the target is the shard folder %s; give a new folder", dst, sh[i].dir);
    return 0;
}

/* ---- the merge ---------------------------------------------------------------------- */

/* Appends the k-th capture's rows from its shard and journals it. */
static int merge_capture(run *r, const shard *sh, size_t k, char *errbuf)
{
    capfile *cf = &r->files[r->caps[k]];
    const dp_dataset *d = &sh[cf->shard].ds;
    for (uint64_t row = cf->shard_row; row < cf->shard_row + cf->kept; row++) {
        const uint8_t *vec = dp_dataset_vector(d, row);
        uint32_t file;
        memcpy(&file, d->meta.data + row * sizeof(dp_meta), sizeof file); /* dp_meta.file: first */
        if (file != cf->shard_file)
            return dp_err(errbuf, "%s/meta.npy: row %llu belongs to capture %u, but the shard's manifest puts "
                          "the rows of capture %u (%s) there", sh[cf->shard].dir, (unsigned long long)row,
                          file, cf->shard_file, cf->rel);
        if (dp_pp_merge_row(&r->m, cf, (uint32_t)k, vec, dp_pp_vec_used(vec),
                            d->meta.data + row * sizeof(dp_meta), errbuf) != 0)
            return -1;
    }
    return dp_pp_merge_done(r, cf, cf->kept, errbuf);
}

/* Merges the captures an earlier run did not, in file order: 1 all
 * merged, 0 stopped by stop_after (journaled), -1 failed. */
static int merge_all(run *r, const shard *sh, size_t stop_after, char *errbuf)
{
    r->st->reused = r->m.merged;
    for (size_t k = r->m.merged; k < r->ncaptures; k++) {
        if (stop_after && r->st->processed >= stop_after) {
            r->st->interrupted = 1;
            return dp_pp_journal_sync(r, &r->m, 1, errbuf) == 0 ? 0 : -1;
        }
        if (merge_capture(r, sh, k, errbuf) != 0)
            return -1;
        r->st->processed++;
    }
    return 1;
}

static int merge_shards(run *r, shard *sh, size_t n, size_t stop_after, char *errbuf)
{
    for (size_t i = 0; i < n; i++)
        if (load_shard(&sh[i], errbuf) != 0)
            return -1;
    if (check_shard_set(sh, n, errbuf) != 0 || check_target(r->dst, sh, n, errbuf) != 0 ||
        setup_run(r, sh, n, errbuf) != 0 || dp_pp_lock_dir(r, "merge", errbuf) != 0)
        return -1;
    if (dp_pp_up_to_date(r))
        return 0;
    if (dp_pp_prepare_parts(r, errbuf) != 0 || dp_pp_merger_start(r, errbuf) != 0)
        return -1;
    r->t_read = dp_now();
    int all = merge_all(r, sh, stop_after, errbuf);
    r->st->seconds_parts = dp_now() - r->t_read;
    return all <= 0 ? all : dp_pp_commit_dataset(r, errbuf);
}

int dp_merge_run(const dp_merge_opts *o, dp_preprocess_stats *stats, char *errbuf)
{
    return dp_merge_run_knobs(o, NULL, stats, errbuf);
}

int dp_merge_run_knobs(const dp_merge_opts *o, const dp_pp_knobs *knobs, dp_preprocess_stats *stats,
                       char *errbuf)
{
    dp_preprocess_stats local;
    dp_preprocess_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    double t0 = dp_now();
    if (!o->dst_dir || !*o->dst_dir || !o->nshards)
        return dp_err(errbuf, "merge: a target folder and at least one shard folder are required");
    dp_preprocess_opts po;
    dp_preprocess_opts_init(&po);
    po.dst_dir = o->dst_dir;
    po.progress = 0;
    po.report = o->report;
    po.warn = o->warn;
    po.warn_ctx = o->warn_ctx;
    shard *sh = calloc(o->nshards, sizeof *sh);
    if (!sh)
        return dp_err(errbuf, "out of memory");
    for (size_t i = 0; i < o->nshards; i++)
        sh[i].dir = o->shard_dirs[i];
    run r;
    dp_pp_run_init(&r, &po, knobs, st);
    r.dst = strdup(o->dst_dir);
    r.parts = dp_path_join(o->dst_dir, ".parts");
    int rc = r.dst && r.parts ? merge_shards(&r, sh, o->nshards, r.knobs.stop_after, errbuf)
                              : dp_err(errbuf, "out of memory");
    dp_pp_run_end(&r, rc, errbuf);
    for (size_t i = 0; i < o->nshards; i++) {
        dp_pp_manifest_free(&sh[i].man);
        free(sh[i].labels);
        dp_dataset_close(&sh[i].ds);
    }
    free(sh);
    st->seconds = dp_now() - t0;
    return rc;
}
