/* dp_privdrop: see dp_privdrop.h. */
#include "util/dp_privdrop.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int dp_privdrop_plan(dp_privdrop *p, const char *user, char *errbuf)
{
    memset(p, 0, sizeof *p);
    int root = geteuid() == 0;
    if (!user && !root)
        return 0;
    const char *name = user ? user : DP_PRIVDROP_DEFAULT_USER;
    errno = 0;
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        if (errno)
            return dp_errno(errbuf, "--user %s: cannot look the user up", name);
        return dp_err(errbuf, "--user %s: no such user", name);
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    p->uid = pw->pw_uid;
    p->gid = pw->pw_gid;
    if (pw->pw_uid == 0 || (!root && pw->pw_uid == geteuid()))
        return 0; /* already that user (or explicitly root) */
    if (!root)
        return dp_err(errbuf, "--user %s: only root can switch to another user", name);
    p->active = 1;
    return 0;
}

int dp_privdrop_can_write(const dp_privdrop *p, const char *path)
{
    if (!p->active)
        return 1;
    struct stat cur;
    if (!strcmp(path, "-") || (stat(path, &cur) == 0 && !S_ISREG(cur.st_mode)))
        return 1; /* a device, a FIFO: written through, nothing to publish */
    /* asked as that user, in a child: every folder on the way, ACLs and all */
    char *copy = strdup(path);
    if (!copy)
        return 0;
    const char *dir = dirname(copy);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char eb[DP_ERRBUF_SIZE];
        struct stat st, target;
        int ok = dp_privdrop_apply(p, eb) == 0 && access(dir, W_OK | X_OK) == 0 && stat(dir, &st) == 0;
        /* sticky folder (/tmp): only the owner may replace an existing file */
        if (ok && (st.st_mode & S_ISVTX) && stat(path, &target) == 0 && target.st_uid != p->uid)
            ok = 0;
        _exit(ok ? 0 : 1);
    }
    free(copy);
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int dp_privdrop_give(const dp_privdrop *p, int fd, const char *path, char *errbuf)
{
    struct stat st;
    if (!p->active || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return 0; /* a terminal or a pipe stays whose it is */
    if (fchown(fd, p->uid, p->gid) != 0)
        return dp_errno(errbuf, "%s: cannot give the output to user %s", path, p->name);
    return 0;
}

int dp_privdrop_apply(const dp_privdrop *p, char *errbuf)
{
    if (!p->active)
        return 0;
    if (setgroups(0, NULL) != 0)
        return dp_errno(errbuf, "--user %s: cannot clear the supplementary groups", p->name);
    if (setgid(p->gid) != 0)
        return dp_errno(errbuf, "--user %s: cannot switch to group %ld", p->name, (long)p->gid);
    if (setuid(p->uid) != 0)
        return dp_errno(errbuf, "--user %s: cannot switch to user id %ld", p->name, (long)p->uid);
    if (p->uid != 0 && setuid(0) == 0)
        return dp_err(errbuf, "--user %s: root could be regained after the switch", p->name);
    if (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid || getegid() != p->gid ||
        getgroups(0, NULL) != 0)
        return dp_err(errbuf, "--user %s: the ids are not the expected ones after the switch", p->name);
    return 0;
}
