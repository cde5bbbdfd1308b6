/* dp_gbt_tracker: the rendezvous of XGBoost's distributed training (its
 * "rabit" communicator), so that `mpirun -np K deeppacket train --model gbt`
 * trains one booster on K ranks. XGBoost's own tracker is a Python script
 * (xgboost/tracker.py) that Debian's libxgboost-dev does not give a C
 * program; this is the same protocol in C, run by rank 0 in a thread. Knows
 * nothing of MPI or of XGBoost's API: plain TCP sockets.
 *
 * The protocol (xgboost 1.7's tracker.py; integers are 32-bit, host order;
 * a string is its length as an integer, then its bytes):
 *   1. a worker connects, sends the magic 0xff99 and gets it back, then
 *      sends its rank (-1: to be assigned), the world size, its task id and
 *      a command: "start", "recover", "print" (then a message) or
 *      "shutdown" (its work is done);
 *   2. to a starting worker the tracker sends its rank, its parent in a
 *      binary tree over the ranks (-1 for rank 0), the world size, its tree
 *      neighbours (count, then ranks), and its previous and next rank on a
 *      ring (-1 when it is itself); ranks are given out once all workers
 *      have asked, in the order of their task ids;
 *   3. then, until the worker reports no error: it sends the neighbours it
 *      is already linked to; the tracker answers how many it must connect
 *      to (with host, port and rank of each, among those listening) and how
 *      many will connect to it; the worker reports its errors and, when
 *      none, its own listening port.
 * The tracker ends when every worker has sent "shutdown". A connection that
 * does not greet with the magic number (in 30 s) is closed and forgotten. */
#ifndef DP_GBT_TRACKER_H
#define DP_GBT_TRACKER_H

#include <stddef.h>

#define DP_GBT_TRACKER_MAGIC 0xff99

typedef struct dp_gbt_tracker dp_gbt_tracker;

/* Listens on an ephemeral TCP port of every IPv4 interface and serves
 * nworkers workers in a thread of its own. NULL + message on a socket
 * error. */
dp_gbt_tracker *dp_gbt_tracker_start(int nworkers, char *errbuf);
/* The port the workers connect to. */
int dp_gbt_tracker_port(const dp_gbt_tracker *t);
/* This machine's IPv4 address as the other machines reach it, in buf (n
 * >= 16 bytes): the source address of a route outwards (a UDP socket
 * "connected" to 10.255.255.255, nothing sent), as XGBoost's tracker finds
 * it, because a host name often resolves to 127.0.1.1 on the machine
 * itself (Debian's /etc/hosts). "127.0.0.1" when there is no such route. */
void dp_gbt_tracker_host(char *buf, size_t n);

/* Waits until every worker has shut down (a worker that fails ends the
 * whole job: train/dp_train_gbt.c), then frees t. 0, or -1 + message when
 * a worker broke the protocol. */
int dp_gbt_tracker_finish(dp_gbt_tracker *t, char *errbuf);

#endif
