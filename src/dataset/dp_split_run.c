/* dp_split_run: a whole split run: every task asked for, built in a temp
 * folder next to SPLIT_DIR and swapped into place (dp_split_task in
 * dp_split.c does one task). */
#include "dataset/dp_split.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Splits every task asked for into the folder out (a fresh temp folder). */
static int split_tasks(const dp_dataset *d, const char *dataset_dir, const char *out, const dp_split_opts *o,
                       int asked, char *errbuf)
{
    int done = 0, rc = 0;
    for (int t = 0; t < DP_NTASKS && rc == 0; t++) {
        if (!((o->tasks >> t) & 1))
            continue;
        uint64_t labelled = 0;
        for (uint64_t i = 0; i < d->n && !labelled; i++)
            labelled += dp_dataset_label(d, t, i) >= 0;
        if (!labelled || d->labels.nclasses[t] == 0) {
            if (asked == 1) {
                rc = dp_err(errbuf, "%s: no packet is labelled for the %s task; nothing to split", dataset_dir,
                            dp_task_name[t]);
                break;
            }
            fprintf(stderr, "deeppacket split: %s: no packet is labelled for the %s task; task skipped\n",
                    dataset_dir, dp_task_name[t]);
            continue;
        }
        char *td = dp_path_join(out, dp_task_dir[t]);
        if (!td)
            return dp_err(errbuf, "%s: out of memory", out);
        rc = dp_split_task(d, dataset_dir, t, td, o, NULL, errbuf);
        free(td);
        done += rc == 0;
    }
    if (rc == 0 && !done)
        rc = dp_err(errbuf, "%s: no packet has a class for any task; nothing to split", dataset_dir);
    return rc;
}

/* Links into out everything of the old split folder that this run does not
 * rewrite (the other task's folder, files of the user's), so that the swap
 * keeps them. */
static int carry_over(const char *old, const char *out, char *errbuf)
{
    DIR *dir = opendir(old);
    if (!dir)
        return errno == ENOENT ? 0 : dp_errno(errbuf, "%s: cannot read folder", old);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dir)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *to = dp_path_join(out, e->d_name), *from = dp_path_join(old, e->d_name);
        struct stat st;
        if (!to || !from)
            rc = dp_err(errbuf, "%s: out of memory", old);
        else if (lstat(to, &st) != 0) /* not written by this run */
            rc = dp_link_tree(from, to, errbuf);
        free(to);
        free(from);
    }
    closedir(dir);
    return rc;
}

/* SPLIT_DIR without trailing slashes and with symlinks resolved (the
 * link's target is replaced, the link stays), its parent folder, and the
 * temp folder next to it. */
static int split_paths(const char *split_dir, char **target, char **parent, char **tmpdir, char *errbuf)
{
    char *given = strdup(split_dir);
    for (size_t k = given ? strlen(given) : 0; k > 1 && given[k - 1] == '/'; k--)
        given[k - 1] = 0;
    if (!given)
        return dp_err(errbuf, "%s: out of memory", split_dir);
    *target = dp_resolve_links(given, errbuf);
    free(given);
    if (!*target)
        return -1;
    char *sl = strrchr(*target, '/');
    *parent = !sl ? strdup(".") : sl == *target ? strdup("/") : strndup(*target, (size_t)(sl - *target));
    size_t n = strlen(*target) + 32;
    *tmpdir = malloc(n);
    if (!*parent || !*tmpdir)
        return dp_err(errbuf, "%s: out of memory", split_dir);
    snprintf(*tmpdir, n, "%s.tmp.%ld", *target, (long)getpid());
    return 0;
}

int dp_split_run(const char *dataset_dir, const char *split_dir, const dp_split_opts *o,
                 char *errbuf)
{
    int asked = 0;
    for (int t = 0; t < DP_NTASKS; t++)
        asked += (o->tasks >> t) & 1;
    if (!asked)
        return dp_err(errbuf, "split: no task selected");
    char *target = NULL, *parent = NULL, *tmpdir = NULL;
    int lock = -1, slot = -1, rc = -1;
    dp_dataset d;
    int opened = 0;
    if (split_paths(split_dir, &target, &parent, &tmpdir, errbuf) != 0)
        goto out;
    if (dp_dataset_open(&d, dataset_dir, errbuf) != 0) /* first: a bad source leaves nothing behind */
        goto out;
    opened = 1;
    if (dp_mkdirs(parent, errbuf) != 0 || (lock = dp_lock_target(target, "split", errbuf)) < 0)
        goto out;
    const char *sl = strrchr(target, '/');
    dp_clean_stale_tmp(parent, sl ? sl + 1 : target);
    /* the whole split is built in TARGET.tmp.<pid>, then swapped in */
    slot = dp_tmp_register(tmpdir);
    if (mkdir(tmpdir, 0777) != 0) {
        dp_errno(errbuf, "%s: cannot create directory", tmpdir);
        goto out;
    }
    if (split_tasks(&d, dataset_dir, tmpdir, o, asked, errbuf) != 0 || carry_over(target, tmpdir, errbuf) != 0 ||
        dp_swap_dir_into_place(tmpdir, target, errbuf) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0 && tmpdir)
        dp_remove_tree(tmpdir); /* the old split stays as it was */
    dp_tmp_unregister(slot);
    if (opened)
        dp_dataset_close(&d);
    if (lock >= 0)
        close(lock);
    free(target);
    free(parent);
    free(tmpdir);
    return rc;
}
