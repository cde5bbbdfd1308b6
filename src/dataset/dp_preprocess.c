/* dp_preprocess: captures -> dataset. See dp_preprocess.h for the design;
 * this file is the run, step by step, and the modules below do the steps:
 *
 *   dp_pp_run.h       the run's shared state
 *   dp_pp_sources.c   finding and probing the sources; link type names
 *   dp_pp_part.c      the record format, part files, the .parts folder
 *   dp_pp_pipeline.c  worker threads reading captures; the merge in order
 *   dp_pp_merge.c     the four partial arrays and the resume journal
 *   dp_pp_report.c    files.tsv, labels.tsv, summary.md, summary.json
 *   dp_pp_shard.c     --shard I/N: the shard's captures and its shard.tsv
 *   dp_pp_summary.c   reading summary.json back (strict JSON) */
#include "dataset/dp_preprocess.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset/dp_pp_merge.h"
#include "dataset/dp_pp_part.h"
#include "dataset/dp_pp_pipeline.h"
#include "dataset/dp_pp_report.h"
#include "dataset/dp_pp_run.h"
#include "dataset/dp_pp_shard.h"
#include "dataset/dp_pp_sources.h"
#include "dataset/dp_pp_summary.h"

extern const char dp_iscx_labels_tsv[]; /* dataset/iscx_labels.S */

const char *const dp_pp_out_names[N_OUT] = {
    DP_FILE_VECTORS, DP_FILE_APP,    DP_FILE_TRAFFIC,    DP_FILE_META,
    DP_FILE_FILES,   DP_FILE_LABELS, DP_FILE_SUMMARY_MD, DP_FILE_SUMMARY_JSON};

/* ---- messages ------------------------------------------------------------------- */

static void default_warn(void *ctx, const char *file, const char *msg, int is_note)
{
    run *r = ctx;
    if (r && r->progress_on && r->prog.tty && r->prog.printed)
        fputs("\r\033[K", stderr);
    fprintf(stderr, "deeppacket preprocess: %s: %s: %s\n", is_note ? "note" : "warning", file, msg);
}

void dp_pp_warn(run *r, const char *file, int is_note, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&r->warn_mu);
    if (r->o->warn)
        r->o->warn(r->o->warn_ctx, file, msg, is_note);
    else
        default_warn(r, file, msg, is_note);
    pthread_mutex_unlock(&r->warn_mu);
}

/* A message from another module usually starts with "PATH: "; drop that. */
const char *dp_pp_strip_path(const char *msg, const char *path)
{
    size_t n = strlen(path);
    if (!strncmp(msg, path, n) && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

int dp_pp_exhausted(char *errbuf, const char *msg, int e)
{
    struct rlimit rl;
    if (e == EMFILE && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        return dp_err(errbuf, "%s (the limit is %llu open files: raise it, ulimit -n, or use fewer "
                      "threads, -j)", msg, (unsigned long long)rl.rlim_cur);
    if (e == ENFILE)
        return dp_err(errbuf, "%s (the system's open-file table is full)", msg);
    return dp_err(errbuf, "%s", msg);
}

/* Appends a problem to a capture's status (one line, "; "-separated). */
void dp_pp_add_status(capfile *cf, const char *msg)
{
    size_t n = strlen(cf->status);
    if (n + 3 >= sizeof cf->status)
        return;
    snprintf(cf->status + n, sizeof cf->status - n, "%s%s", n ? "; " : "", msg);
    for (char *p = cf->status; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r')
            *p = ' ';
}

/* ---- the dataset folder ----------------------------------------------------------- */

int dp_preprocess_complete(const char *dir)
{
    for (size_t i = 0; i < N_OUT; i++) {
        char *p = dp_path_join(dir, dp_pp_out_names[i]);
        struct stat st;
        int ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
        free(p);
        if (!ok)
            return 0;
    }
    return 1;
}

/* Bytes the files of a folder use on disk (not recursive). */
static uint64_t folder_bytes(const char *dir)
{
    uint64_t total = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char *p = dp_path_join(dir, e->d_name);
        struct stat st;
        if (p && e->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_blocks * 512;
        free(p);
    }
    if (d)
        closedir(d);
    return total;
}

/* After a failed run: says in errbuf what state the target is in. The
 * parts folder (the work a rerun resumes) is kept, but removed when the
 * disk is full, since it is what fills it. */
static void report_failure(const run *r, int had_dataset, int full_disk, char *errbuf)
{
    struct stat st;
    if (!errbuf || !r->parts)
        return;
    if (stat(r->parts, &st) != 0) { /* the arrays were in, the summary could not be written */
        size_t n = strlen(errbuf);
        if (r->replacing)
            snprintf(errbuf + n, DP_ERRBUF_SIZE - n, "; the dataset is incomplete (no " DP_FILE_SUMMARY_JSON
                     "): rerun preprocess");
        return;
    }
    uint64_t bytes = folder_bytes(r->parts);
    size_t n = strlen(errbuf);
    const char *prev = r->replacing  ? "the dataset is incomplete (no " DP_FILE_SUMMARY_JSON ")"
                       : had_dataset ? "the previous dataset is unchanged"
                                     : "no dataset yet";
    if (full_disk && dp_remove_tree(r->parts) == 0)
        snprintf(errbuf + n, DP_ERRBUF_SIZE - n, "; %s; removed %s (%.1f MB of partial work) to free the disk",
                 prev, r->parts, bytes / 1e6);
    else
        snprintf(errbuf + n, DP_ERRBUF_SIZE - n, "; %s; %s keeps %.1f MB of partial work for a rerun to "
                 "resume (delete it to free the space)", prev, r->parts, bytes / 1e6);
}

/* ---- the steps ------------------------------------------------------------------ */

/* Paths of the run (source without trailing slashes), and the source's
 * stat in *sst: it must be a folder. */
static int open_source(run *r, struct stat *sst, char *errbuf)
{
    const char *dst = r->o->dst_dir ? r->o->dst_dir : ""; /* none for a dry run */
    r->src = strdup(r->o->src_dir);
    r->dst = strdup(dst);
    r->parts = dp_path_join(dst, ".parts");
    if (!r->src || !r->dst || !r->parts)
        return dp_err(errbuf, "out of memory");
    /* strip trailing slashes (keep "/") so that joined paths read well */
    for (char *s = r->src; strlen(s) > 1 && s[strlen(s) - 1] == '/';)
        s[strlen(s) - 1] = 0;
    if (stat(r->src, sst) != 0)
        return dp_errno(errbuf, "%s: cannot open capture folder", r->src);
    if (!S_ISDIR(sst->st_mode))
        return dp_err(errbuf, "%s: not a folder (give the folder that holds the captures)", r->src);
    return 0;
}

/* The label table (--labels, or the built-in ISCX one) and its text,
 * which is also written as labels.tsv. */
static int load_labels(run *r, char *errbuf)
{
    const char *path = r->o->labels_path;
    if (path) {
        r->label_text = dp_labels_read(path, errbuf);
        return r->label_text && dp_labels_parse(&r->table, r->label_text, path, errbuf) == 0 ? 0 : -1;
    }
    r->label_text = strdup(dp_iscx_labels_tsv);
    return r->label_text && dp_labels_load_iscx(&r->table, errbuf) == 0 ? 0 : -1;
}

/* The --filter and the label table's filters, checked before any capture
 * is read (a typo stops the run at once, not as a warning per capture). */
static int load_filter(run *r, char *errbuf)
{
    for (size_t i = 0; i < r->table.nrows; i++) {
        const dp_label_row *row = &r->table.rows[i];
        char eb[DP_ERRBUF_SIZE];
        if (row->filter && dp_capture_check_filter(row->filter, eb) != 0)
            return dp_err(errbuf, "%s: the filter of '%s': %s",
                          r->o->labels_path ? r->o->labels_path : "built-in ISCX table", row->prefix, eb);
    }
    if (!r->o->filter)
        return 0;
    if (dp_capture_check_filter(r->o->filter, errbuf) != 0)
        return -1;
    r->filter = strdup(r->o->filter);
    return r->filter ? 0 : dp_err(errbuf, "out of memory");
}

/* preprocess --dry-run: the captures a run would read (probed, labelled,
 * with their filters) printed to o->dry_run; nothing is created. */
static int list_only(run *r, const struct stat *src, char *errbuf)
{
    if (dp_pp_list_sources(r, src, errbuf) != 0 || dp_pp_shard_select(r, errbuf) != 0 ||
        dp_pp_probe_sources(r, errbuf) != 0)
        return -1;
    dp_pp_print_listing(r, r->o->dry_run);
    return 0;
}

/* Creates the dataset folder (outside the source) and locks it against a
 * second run; the lock lasts while r->dirfd is open. */
static int lock_target(run *r, const struct stat *sst, char *errbuf)
{
    if (dp_pp_inside_source(r->dst, sst))
        return dp_err(errbuf, "%s: the dataset folder is the capture folder %s or lies inside it; give a "
                      "target outside it", r->dst, r->src);
    return dp_pp_lock_dir(r, "preprocess", errbuf);
}

/* summary.json, its links followed, must be a regular file or absent: the
 * commit removes it (it marks the dataset whole) and writes it last, which
 * would take a FIFO or a device away (a link to /dev/null, as root). */
static int check_summary_file(const run *r, char *errbuf)
{
    char *sj = dp_path_join(r->dst, DP_FILE_SUMMARY_JSON);
    if (!sj)
        return dp_err(errbuf, "%s: out of memory", r->dst);
    char *real = dp_resolve_links(sj, errbuf);
    struct stat st;
    int rc = real ? 0 : -1, link = real && strcmp(sj, real) != 0;
    if (real && lstat(real, &st) == 0 && !S_ISREG(st.st_mode))
        rc = dp_err(errbuf, "%s%s%s: not a regular file: each run removes " DP_FILE_SUMMARY_JSON ", the mark of a "
                    "whole dataset, and writes it again; remove it or give another dataset folder", sj,
                    link ? " -> " : "", link ? real : "");
    free(real);
    free(sj);
    return rc;
}

int dp_pp_lock_dir(run *r, const char *what, char *errbuf)
{
    if (dp_mkdirs(r->dst, errbuf) != 0)
        return -1;
    r->dirfd = open(r->dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->dirfd < 0)
        return dp_errno(errbuf, "%s: cannot open dataset folder", r->dst);
    if (flock(r->dirfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return dp_err(errbuf, "%s: another %s run is writing this dataset folder", r->dst, what);
        return dp_errno(errbuf, "%s: cannot lock dataset folder", r->dst);
    }
    return check_summary_file(r, errbuf);
}

/* 1 when the target holds a complete dataset of these sources and labels
 * that counts no unreadable file (a rerun reads those again): nothing is
 * to be done, and the stats are those of summary.json. */
int dp_pp_up_to_date(run *r)
{
    r->fingerprint = dp_pp_fingerprint(r);
    r->had_dataset = dp_preprocess_complete(r->dst);
    dp_pp_summary sum;
    char want[32];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)r->fingerprint);
    if (!r->nfiles || !r->had_dataset || dp_pp_summary_read(r->dst, &sum) != 0 || sum.unreadable ||
        strcmp(sum.fingerprint, want) != 0)
        return 0;
    r->st->up_to_date = 1;
    r->st->packets = sum.packets;
    r->st->frames = sum.frames;
    r->st->captures = sum.captures;
    dp_remove_tree(r->parts); /* what a killed rerun of other sources left */
    return 1;
}

/* The .parts folder, cleaned of what no current capture needs, and the
 * list of captures in file order. The previous dataset (if any) stays
 * whole until the commit. */
int dp_pp_prepare_parts(run *r, char *errbuf)
{
    if (mkdir(r->parts, 0777) != 0 && errno != EEXIST)
        return dp_errno(errbuf, "%s: cannot create directory", r->parts);
    dp_pp_parts_clean_stale(r);
    r->queue = malloc((r->ncaptures ? r->ncaptures : 1) * sizeof *r->queue);
    r->caps = malloc((r->ncaptures ? r->ncaptures : 1) * sizeof *r->caps);
    if (!r->queue || !r->caps)
        return dp_err(errbuf, "out of memory");
    for (size_t i = 0, k = 0; i < r->nfiles; i++)
        if (r->files[i].is_capture)
            r->caps[k++] = i;
    return 0;
}

/* Captures an earlier run left in the partial arrays (journal) or in whole
 * part files are reused; the others are queued for the workers, in file
 * order (the merge follows it). */
static void queue_captures(run *r)
{
    for (size_t k = 0; k < r->ncaptures; k++) {
        capfile *cf = &r->files[r->caps[k]];
        if (cf->journaled || dp_pp_part_load(r, cf)) {
            cf->reused = 1;
            cf->from_part = !cf->journaled;
            cf->ready = 1;
            r->st->reused++;
            if (cf->status[0])
                dp_pp_warn(r, cf->path, 0, "%s (recorded by an earlier run)", cf->status);
        } else {
            r->queue[r->nqueue++] = r->caps[k];
        }
    }
}

/* Reads the queued captures in parallel and merges every capture in file
 * order as it is ready. 1: all merged; 0: stopped by stop_after (what is
 * merged is journaled); -1 failed. */
static int read_and_merge(run *r, char *errbuf)
{
    if (dp_pp_workers_start(r, errbuf) != 0)
        return -1;
    int all = dp_pp_merge_all(r, errbuf);
    if (all < 0)
        return -1; /* the run's end stops and joins the workers */
    dp_pp_workers_join(r, 0);
    if (r->failed) {
        if (errbuf)
            memcpy(errbuf, r->err, DP_ERRBUF_SIZE);
        return -1;
    }
    r->st->processed = r->stop ? r->taken : r->nqueue;
    r->st->seconds_parts = (r->nqueue ? r->t_read_done : dp_now()) - r->t_read;
    if (!all && dp_pp_journal_sync(r, &r->m, 1, errbuf) != 0)
        return -1;
    r->st->interrupted = !all;
    return all;
}

/* Commits the arrays (every capture journaled first, so that a kill in the
 * commit resumes), drops the parts, then writes the text outputs,
 * summary.json last. */
int dp_pp_commit_dataset(run *r, char *errbuf)
{
    double tm = r->t_read + r->st->seconds_parts;
    dp_pp_totals(r);
    if (dp_pp_journal_sync(r, &r->m, 1, errbuf) != 0 || dp_pp_merger_commit(r, errbuf) != 0)
        return -1;
    dp_pp_parts_remove(r);
    if (dp_pp_write_reports(r, errbuf) != 0)
        return -1;
    r->st->seconds_merge = dp_now() - tm;
    if (r->progress_on)
        dp_progress_done(&r->prog);
    if (r->o->report)
        dp_pp_print_report(r, r->o->report);
    return 0;
}

/* Builds (or resumes building) the dataset of the listed sources: 0 when
 * it is committed, or stopped by stop_after; -1 failed. */
static int build_dataset(run *r, char *errbuf)
{
    if (dp_pp_probe_sources(r, errbuf) != 0 || dp_pp_prepare_parts(r, errbuf) != 0 ||
        dp_pp_merger_start(r, errbuf) != 0)
        return -1;
    queue_captures(r);
    int all = read_and_merge(r, errbuf);
    if (all <= 0)
        return all;
    return dp_pp_commit_dataset(r, errbuf);
}

/* ---- the run -------------------------------------------------------------------- */

void dp_pp_run_init(run *r, const dp_preprocess_opts *o, const dp_pp_knobs *k, dp_preprocess_stats *st)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    if (k)
        r->knobs = *k;
    r->st = st;
    r->dirfd = -1;
    r->had_dataset = -1;
    r->m.jfd = -1;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    pthread_mutex_init(&r->warn_mu, NULL);
    r->chunk_size = CHUNK_SIZE;
    r->split_bytes = r->knobs.split_bytes ? r->knobs.split_bytes : SPLIT_MIN_BYTES;
    r->worker_chunks = WORKER_CHUNKS;
    if (r->knobs.chunk_bytes) {
        r->chunk_size = r->knobs.chunk_bytes < REC_MAX ? REC_MAX : r->knobs.chunk_bytes;
        r->worker_chunks = 2;
    }
}

/* Ends the run: stops the workers if they still run, keeps the partial
 * arrays and the journal for a rerun, says in errbuf what state a failed
 * run left, and frees everything (the lock goes with r->dirfd). */
void dp_pp_run_end(run *r, int rc, char *errbuf)
{
    dp_pp_workers_join(r, 1); /* first: a worker still running may warn, which reads the progress line */
    if (r->progress_on)
        dp_progress_done(&r->prog);
    int full_disk = rc != 0 && errbuf && strstr(errbuf, strerror(ENOSPC)) != NULL;
    dp_pp_merger_close(&r->m);
    if (rc != 0 && r->had_dataset >= 0)
        report_failure(r, r->had_dataset, full_disk, errbuf);
    dp_pp_pipeline_free(r);
    if (r->dirfd >= 0)
        close(r->dirfd);
    for (size_t i = 0; i < r->nfiles; i++) {
        free(r->files[i].rel);
        free(r->files[i].path);
        free(r->files[i].filter);
    }
    free(r->files);
    free(r->queue);
    free(r->caps);
    free(r->src);
    free(r->dst);
    free(r->parts);
    free(r->label_text);
    free(r->filter);
    dp_labels_free(&r->table);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->warn_mu);
}

void dp_preprocess_opts_init(dp_preprocess_opts *o)
{
    memset(o, 0, sizeof *o);
    o->progress = 1;
}

int dp_preprocess_run(const dp_preprocess_opts *o, dp_preprocess_stats *stats, char *errbuf)
{
    return dp_preprocess_run_knobs(o, NULL, stats, errbuf);
}

int dp_preprocess_run_knobs(const dp_preprocess_opts *o, const dp_pp_knobs *k,
                            dp_preprocess_stats *stats, char *errbuf)
{
    dp_preprocess_stats local;
    dp_preprocess_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    double t0 = dp_now();
    if (!o->src_dir || !*o->src_dir || (!o->dry_run && (!o->dst_dir || !*o->dst_dir)))
        return dp_err(errbuf, "preprocess: source and target folders are required");
    run r;
    dp_pp_run_init(&r, o, k, st);
    struct stat src;
    int rc = -1;
    if (open_source(&r, &src, errbuf) == 0 && load_labels(&r, errbuf) == 0 && load_filter(&r, errbuf) == 0) {
        if (o->dry_run)
            rc = list_only(&r, &src, errbuf);
        else if (lock_target(&r, &src, errbuf) == 0 && dp_pp_list_sources(&r, &src, errbuf) == 0)
            rc = dp_pp_shard_select(&r, errbuf) != 0 ? -1 : dp_pp_up_to_date(&r) ? 0 : build_dataset(&r, errbuf);
    }
    dp_pp_run_end(&r, rc, errbuf);
    st->seconds = dp_now() - t0;
    return rc;
}
