/* dp_privdrop: giving up root once a live interface is open (as tcpdump -Z
 * and suricata --user do), so that hostile packets are parsed without
 * privileges. Plan first (who to become; fails early on an unknown user),
 * open what needs root, then apply: supplementary groups cleared, then the
 * group, then the user, then a check that root cannot be regained. */
#ifndef DP_PRIVDROP_H
#define DP_PRIVDROP_H

#include <sys/types.h>

#include "util/dp_util.h"

#define DP_PRIVDROP_DEFAULT_USER "nobody"

typedef struct dp_privdrop {
    int active;     /* 1: apply switches to uid/gid; 0: apply does nothing */
    uid_t uid;
    gid_t gid;
    char name[64];  /* the user's name, for messages */
} dp_privdrop;

/* Decides who the process becomes. user NULL: DP_PRIVDROP_DEFAULT_USER when
 * running as root (effective uid 0), else nobody to become (inactive). A
 * user with uid 0 (--user root) keeps root: inactive. Fails with a message
 * when the user is unknown, or when it is another user and the process is
 * not root (only root can switch). */
int dp_privdrop_plan(dp_privdrop *p, const char *user, char *errbuf);

/* Applies the plan: setgroups(0), setgid, setuid, in that order, then
 * checks that setuid(0) fails and that the ids are the planned ones. -1
 * with a message when any step fails: the caller must stop. */
int dp_privdrop_apply(const dp_privdrop *p, char *errbuf);

#endif
