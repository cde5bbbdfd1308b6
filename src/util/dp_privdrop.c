/* dp_privdrop: see dp_privdrop.h. */
#include "util/dp_privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
