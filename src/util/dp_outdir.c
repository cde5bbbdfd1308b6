/* dp_outdir: a folder of outputs made as one; see dp_outdir.h. */
#include "util/dp_outdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/dp_util.h"

static int named(const char *name, const char *const *names)
{
    for (; *names; names++)
        if (!strcmp(name, *names))
            return 1;
    return 0;
}

/* 1 when the folder DIR holds only regular files named in NAMES (after
 * their dead temp files are removed), 0 when it holds anything else. */
static int holds_only(const char *dir, const char *const *names)
{
    for (const char *const *n = names; *n; n++)
        dp_clean_stale_tmp(dir, *n);
    DIR *dh = opendir(dir);
    if (!dh)
        return 0;
    int only = 1;
    struct dirent *e;
    while (only && (e = readdir(dh)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        char *p = dp_path_join(dir, e->d_name);
        only = p && named(e->d_name, names) && lstat(p, &st) == 0 && S_ISREG(st.st_mode);
        free(p);
    }
    closedir(dh);
    return only;
}

/* 1 when PATH's last component cannot be renamed ("/", ".", ".."). */
static int unrenamable(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return !*b || !strcmp(b, ".") || !strcmp(b, "..");
}

/* In place: TARGET made and writable, the earlier run's outputs removed. */
static int open_in_place(dp_outdir *d, const char *const *names, char *errbuf)
{
    if (dp_check_writable_dir(d->target, errbuf) != 0)
        return -1;
    for (; *names; names++) {
        char *p = dp_path_join(d->target, *names);
        struct stat st;
        int rc = !p ? dp_err(errbuf, "%s: out of memory", d->target)
                 : lstat(p, &st) == 0 && S_ISREG(st.st_mode) && unlink(p) != 0
                     ? dp_errno(errbuf, "%s: cannot remove the earlier run's output", p)
                     : 0;
        free(p);
        if (rc != 0)
            return -1;
    }
    d->path = strdup(d->target);
    return d->path ? 0 : dp_err(errbuf, "%s: out of memory", d->target);
}

/* Staged: a fresh TARGET.tmp.<pid> beside TARGET (whose parent is made). */
static int open_staged(dp_outdir *d, char *errbuf)
{
    char *pdir = dp_dir_of(d->target);
    const char *slash = strrchr(d->target, '/'), *base = slash ? slash + 1 : d->target;
    int rc = pdir ? dp_mkdirs(pdir, errbuf) : dp_err(errbuf, "%s: out of memory", d->target);
    if (rc == 0)
        dp_clean_stale_tmp(pdir, base); /* a killed run's staging folders */
    size_t n = strlen(d->target) + 32;
    if (rc == 0 && !(d->path = malloc(n)))
        rc = dp_err(errbuf, "%s: out of memory", d->target);
    if (rc == 0) {
        snprintf(d->path, n, "%s.tmp.%ld", d->target, (long)getpid());
        dp_remove_tree(d->path); /* our own pid's: an earlier call of this process */
        if (mkdir(d->path, 0777) != 0)
            rc = dp_errno(errbuf, "%s: cannot create folder", d->path);
        else
            d->slot = dp_tmp_register(d->path) + 1;
    }
    free(pdir);
    if (rc == 0 && dp_check_writable_dir(d->path, errbuf) != 0)
        rc = -1;
    d->staged = rc == 0;
    return rc;
}

int dp_outdir_open(dp_outdir *d, const char *target, const char *const *names, char *errbuf)
{
    memset(d, 0, sizeof *d);
    if (!(d->target = dp_resolve_links(target, errbuf)))
        return -1;
    for (size_t k = strlen(d->target); k > 1 && d->target[k - 1] == '/'; k--)
        d->target[k - 1] = 0;
    struct stat st;
    int rc, exists = lstat(d->target, &st) == 0;
    if (!exists && errno != ENOENT)
        rc = dp_errno(errbuf, "%s: cannot read", target);
    else if (exists && !S_ISDIR(st.st_mode))
        rc = dp_err(errbuf, "%s: exists and is not a folder", target);
    else if (unrenamable(d->target) || (exists && !holds_only(d->target, names)))
        rc = open_in_place(d, names, errbuf);
    else
        rc = open_staged(d, errbuf);
    if (rc != 0)
        dp_outdir_abort(d);
    return rc;
}

int dp_outdir_commit(dp_outdir *d, char *errbuf)
{
    int rc = d->staged ? dp_swap_dir_into_place(d->path, d->target, errbuf) : 0;
    if (rc == 0)
        d->staged = 0; /* nothing left to drop */
    dp_outdir_abort(d);
    return rc;
}

void dp_outdir_abort(dp_outdir *d)
{
    if (d->staged && d->path)
        dp_remove_tree(d->path);
    if (d->slot)
        dp_tmp_unregister(d->slot - 1);
    free(d->target);
    free(d->path);
    memset(d, 0, sizeof *d);
}
