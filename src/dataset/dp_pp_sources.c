/* dp_pp_sources: finding and probing preprocess's sources (see
 * dp_pp_sources.h). */
#include "dataset/dp_pp_sources.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/dp_capture.h"

#define MAX_FOLDER_DEPTH 64

static int64_t stat_mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* ---- listing the source folder -------------------------------------------- */

typedef struct devino {
    dev_t dev;
    ino_t ino;
} devino;

/* A set of (device, inode) pairs: open addressing, grown at half full. */
typedef struct devino_set {
    devino *v;
    uint8_t *used;
    size_t cap, n;
} devino_set;

static size_t devino_slot(const devino_set *s, devino k)
{
    size_t i = (size_t)dp_mix64((uint64_t)k.dev * 0x9e3779b97f4a7c15ULL ^ (uint64_t)k.ino) & (s->cap - 1);
    while (s->used[i] && (s->v[i].dev != k.dev || s->v[i].ino != k.ino))
        i = (i + 1) & (s->cap - 1);
    return i;
}

/* Adds k: 1 when it is new, 0 when it was there already, -1 out of memory. */
static int devino_add(devino_set *s, devino k)
{
    if (2 * (s->n + 1) > s->cap) {
        devino_set g = {NULL, NULL, s->cap ? 2 * s->cap : 64, 0};
        g.v = malloc(g.cap * sizeof *g.v);
        g.used = calloc(g.cap, 1);
        if (!g.v || !g.used) {
            free(g.v);
            free(g.used);
            return -1;
        }
        for (size_t i = 0; i < s->cap; i++)
            if (s->used[i]) {
                size_t j = devino_slot(&g, s->v[i]);
                g.v[j] = s->v[i], g.used[j] = 1, g.n++;
            }
        free(s->v);
        free(s->used);
        *s = g;
    }
    size_t i = devino_slot(s, k);
    if (s->used[i])
        return 0;
    s->v[i] = k, s->used[i] = 1, s->n++;
    return 1;
}


/* The source walk. Files and folders are known by (device, inode): a folder
 * reached again through a link (a loop, or a "diamond" of links to one
 * folder) is not listed again, and a file reached through two names (a
 * symlink or a hard link) is read once, under the name that comes first
 * in the walk (entries in byte order: the same name on every run). */
typedef struct lister {
    capfile *files;
    size_t n, cap;
    devino skip;            /* the target folder (not read as input) */
    int has_skip;
    devino_set dirs, seen;  /* folders listed, files taken */
    int depth;
} lister;

static void lister_free_sets(lister *l)
{
    free(l->dirs.v);
    free(l->dirs.used);
    free(l->seen.v);
    free(l->seen.used);
    memset(&l->dirs, 0, sizeof l->dirs);
    memset(&l->seen, 0, sizeof l->seen);
}

static int add_file(lister *l, const char *src, const char *rel, const struct stat *st)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 256;
        capfile *nf = realloc(l->files, nc * sizeof *nf);
        if (!nf)
            return -1;
        l->files = nf;
        l->cap = nc;
    }
    capfile *cf = &l->files[l->n];
    memset(cf, 0, sizeof *cf);
    cf->rel = strdup(rel);
    cf->path = dp_path_join(src, rel);
    if (!cf->rel || !cf->path) {
        free(cf->rel);
        free(cf->path);
        return -1;
    }
    cf->size = (uint64_t)st->st_size;
    cf->mtime_ns = stat_mtime_ns(st);
    cf->relhash = dp_fnv1a(rel, strlen(rel), DP_FNV_INIT);
    l->n++;
    return 0;
}

/* One entry of the walk: a folder is listed (once), a regular file taken
 * (once); everything else is ignored. Returns -1 only when out of memory. */
static int list_entry(run *r, lister *l, const char *full, const char *crel, char *errbuf);
static int list_dir(run *r, lister *l, const char *rel, char *errbuf);

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in folder dir (hidden ones left out), sorted; NULL and *n = 0
 * for an empty folder; -1 in *n when out of memory. */
static char **read_names(DIR *d, size_t *n)
{
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') /* ., .., hidden files and folders */
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv)
                goto oom;
            v = nv;
        }
        if (!(v[*n] = strdup(e->d_name)))
            goto oom;
        (*n)++;
    }
    if (*n > 1)
        qsort(v, *n, sizeof *v, cmp_name);
    return v;
oom:
    for (size_t i = 0; i < *n; i++)
        free(v[i]);
    free(v);
    *n = (size_t)-1;
    return NULL;
}

static int list_entry(run *r, lister *l, const char *full, const char *crel, char *errbuf)
{
    struct stat st;
    if (stat(full, &st) != 0) {
        if (dp_errno_exhausted(errno))
            return dp_errno(errbuf, "%s: cannot stat", full);
        dp_pp_warn(r, full, 1, "cannot stat (%s), skipped", strerror(errno));
        return 0;
    }
    devino k = {st.st_dev, st.st_ino};
    int isnew;
    if (S_ISDIR(st.st_mode)) {
        if (l->has_skip && k.dev == l->skip.dev && k.ino == l->skip.ino)
            return 0; /* the dataset folder itself */
        if (l->depth >= MAX_FOLDER_DEPTH) {
            dp_pp_warn(r, full, 1, "folder more than %d levels deep, not read", MAX_FOLDER_DEPTH);
            return 0;
        }
        if ((isnew = devino_add(&l->dirs, k)) < 0)
            return dp_err(errbuf, "%s: out of memory", full);
        if (!isnew) {
            dp_pp_warn(r, full, 1, "same folder as one already listed (a link or a loop), not read again");
            return 0;
        }
        l->depth++;
        int rc = list_dir(r, l, crel, errbuf);
        l->depth--;
        return rc;
    }
    if (!S_ISREG(st.st_mode))
        return 0;
    if ((isnew = devino_add(&l->seen, k)) < 0)
        return dp_err(errbuf, "%s: out of memory", full);
    if (!isnew) {
        dp_pp_warn(r, full, 1, "same file as one already listed (a link), read once");
        return 0;
    }
    if (add_file(l, r->src, crel, &st) != 0)
        return dp_err(errbuf, "%s: out of memory", full);
    return 0;
}

static int list_dir(run *r, lister *l, const char *rel, char *errbuf)
{
    char *dir = rel ? dp_path_join(r->src, rel) : strdup(r->src);
    if (!dir)
        return dp_err(errbuf, "%s: out of memory", r->src);
    DIR *d = opendir(dir);
    if (!d) {
        if (!rel || dp_errno_exhausted(errno)) { /* a subfolder is skipped only for its own fault */
            char msg[DP_ERRBUF_SIZE];
            int e = errno;
            dp_errno(msg, "%s: cannot read %s", dir, rel ? "folder" : "capture folder");
            free(dir);
            return dp_pp_exhausted(errbuf, msg, e);
        }
        dp_pp_warn(r, dir, 1, "cannot read folder (%s), skipped", strerror(errno));
        free(dir);
        return 0;
    }
    size_t n;
    char **names = read_names(d, &n);
    closedir(d);
    int rc = n == (size_t)-1 ? dp_err(errbuf, "%s: out of memory", dir) : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *crel = rel ? dp_path_join(rel, names[i]) : strdup(names[i]);
        char *full = dp_path_join(dir, names[i]);
        rc = crel && full ? list_entry(r, l, full, crel, errbuf) : dp_err(errbuf, "%s: out of memory", dir);
        free(crel);
        free(full);
    }
    for (size_t i = 0; n != (size_t)-1 && i < n; i++)
        free(names[i]);
    free(names);
    free(dir);
    return rc;
}

static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const capfile *)a)->rel, ((const capfile *)b)->rel);
}

int dp_pp_list_sources(run *r, const struct stat *src, char *errbuf)
{
    lister l;
    memset(&l, 0, sizeof l);
    struct stat dst_st;
    if (fstat(r->dirfd, &dst_st) == 0) {
        l.skip = (devino){dst_st.st_dev, dst_st.st_ino};
        l.has_skip = 1;
    }
    l.depth = 1;
    int rc = devino_add(&l.dirs, (devino){src->st_dev, src->st_ino}) < 0
                 ? dp_err(errbuf, "%s: out of memory", r->src)
                 : list_dir(r, &l, NULL, errbuf);
    lister_free_sets(&l);
    r->files = l.files;
    r->nfiles = l.n;
    if (rc != 0)
        return -1;
    if (r->nfiles > 1)
        qsort(r->files, r->nfiles, sizeof *r->files, cmp_rel);
    r->st->files = r->nfiles;
    return 0;
}

int dp_pp_label_capture(run *r, capfile *cf)
{
    const dp_label_row *row = dp_labels_find(&r->table, cf->rel); /* one scan for classes and filter */
    for (int k = 0; k < DP_NTASKS; k++)
        cf->cls[k] = row ? row->cls[k] : -1;
    const char *own = row ? row->filter : NULL;
    free(cf->filter);
    cf->filter = NULL;
    if (r->filter && own) {
        size_t n = strlen(r->filter) + strlen(own) + 12;
        if ((cf->filter = malloc(n)))
            snprintf(cf->filter, n, "(%s) and (%s)", r->filter, own);
    } else if (r->filter || own) {
        cf->filter = strdup(r->filter ? r->filter : own);
    }
    return (r->filter || own) && !cf->filter ? -1 : row != NULL;
}

int dp_pp_probe_sources(run *r, char *errbuf)
{
    char peb[DP_ERRBUF_SIZE];
    size_t notes = 0, labelled = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        capfile *cf = &r->files[i];
        dp_probe p = dp_capture_probe(cf->path, peb);
        if (p == DP_PROBE_ERROR && dp_errno_exhausted(errno))
            return dp_pp_exhausted(errbuf, peb, errno);
        cf->probe = p;
        if (p == DP_PROBE_PCAP || p == DP_PROBE_PCAPNG) {
            cf->is_capture = 1;
            r->ncaptures++;
            r->st->capture_bytes += cf->size;
            int in_table = dp_pp_label_capture(r, cf);
            if (in_table < 0)
                return dp_err(errbuf, "out of memory");
            labelled += (size_t)in_table;
        } else if (p == DP_PROBE_NOT_CAPTURE) {
            if (++notes <= MAX_NOTES)
                dp_pp_warn(r, cf->path, 1, "%s; skipped", dp_pp_strip_path(peb, cf->path));
        } else {
            cf->unreadable = 1;
            dp_pp_warn(r, cf->path, 0, "%s; skipped", dp_pp_strip_path(peb, cf->path));
        }
    }
    if (notes > MAX_NOTES)
        dp_pp_warn(r, r->src, 1, "%zu more files that are not captures skipped (listed in summary.md)",
                   notes - MAX_NOTES);
    r->st->captures = r->ncaptures;
    r->st->not_captures = r->nfiles - r->ncaptures;
    if (r->ncaptures == 0 && !r->o->shard_count) /* a shard may hold none */
        return dp_err(errbuf, "%s: no capture files (pcap or pcapng) found%s", r->src,
                      r->nfiles ? "" : " (the folder is empty)");
    if (labelled == 0 && r->ncaptures)
        dp_pp_warn(r, r->src, 0, "no capture's file name is in the label table (%s): every packet "
                   "will be unlabelled; is --labels right?",
                   r->o->labels_path ? r->o->labels_path : "built-in ISCX table");
    return 0;
}

int dp_pp_inside_source(const char *dst, const struct stat *src)
{
    char *p = strdup(dst), *real = NULL;
    while (p && !(real = realpath(p, NULL))) {
        char *sl = strrchr(p, '/');
        if (!sl) {
            free(p);
            p = strdup(".");
            continue;
        }
        if (sl == p)
            sl[1] = 0;
        else
            *sl = 0;
    }
    free(p);
    int inside = 0;
    for (char *end = real ? real + strlen(real) : NULL; end && !inside;) {
        struct stat st;
        char c = *end;
        *end = 0;
        inside = stat(real[0] ? real : "/", &st) == 0 && st.st_dev == src->st_dev && st.st_ino == src->st_ino;
        *end = c;
        if (end == real)
            break;
        do
            end--;
        while (end > real && *end != '/');
    }
    free(real);
    return inside;
}
