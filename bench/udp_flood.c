/* udp_flood: paced UDP traffic to 127.0.0.1 only, for measuring what a live
 * capture on `lo` loses (docs/bench-classify.md, tests/test_untrusted.c).
 *
 *   udp_flood [-n COUNT] [-r RATE] [-p BASEPORT] [-f FLOWS] [-s MIN] [-S MAX]
 *
 * Sends COUNT datagrams (default 100000, at most 10,000,000) at RATE packets
 * per second (default 20000), round-robin over FLOWS destination ports
 * BASEPORT..BASEPORT+FLOWS-1 (default 100 from 40000), with IP packet sizes
 * drawn uniformly from MIN..MAX bytes (default 90..1290; 28 bytes of IP and
 * UDP headers included). Pacing: a batch every millisecond. Prints
 * "sent N in S s" on stdout. Exit 1 on a socket error, 2 on bad arguments.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int arg_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    long count = 100000, rate = 20000, base = 40000, flows = 100, smin = 90, smax = 1290;
    int opt;
    while ((opt = getopt(argc, argv, "n:r:p:f:s:S:")) != -1) {
        int bad = 0;
        switch (opt) {
        case 'n': bad = arg_long(optarg, 1, 10000000, &count); break;
        case 'r': bad = arg_long(optarg, 1, 1000000, &rate); break;
        case 'p': bad = arg_long(optarg, 1024, 65000, &base); break;
        case 'f': bad = arg_long(optarg, 1, 500, &flows); break;
        case 's': bad = arg_long(optarg, 28, 65000, &smin); break;
        case 'S': bad = arg_long(optarg, 28, 65000, &smax); break;
        default: bad = -1;
        }
        if (bad) {
            fprintf(stderr, "usage: udp_flood [-n COUNT] [-r RATE] [-p BASEPORT] [-f FLOWS] [-s MIN] [-S MAX]\n");
            return 2;
        }
    }
    if (smax < smin || base + flows > 65535) {
        fprintf(stderr, "udp_flood: need MIN <= MAX and BASEPORT + FLOWS <= 65535\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("udp_flood: socket");
        return 1;
    }
    static char payload[65000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (char)(i * 131 + 7);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only, by design */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    double t0 = now(), per_ms = rate / 1000.0;
    long sent = 0;
    for (long ms = 0; sent < count; ms++) {
        long due = (long)((ms + 1) * per_ms);
        for (; sent < due && sent < count; sent++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift: sizes */
            size_t len = (size_t)(smin + (long)(x % (uint64_t)(smax - smin + 1))) - 28;
            a.sin_port = htons((uint16_t)(base + sent % flows));
            if (sendto(fd, payload, len, 0, (struct sockaddr *)&a, sizeof a) < 0) {
                perror("udp_flood: sendto");
                return 1;
            }
        }
        double wait = t0 + (ms + 1) * 1e-3 - now();
        if (wait > 0) {
            struct timespec ts = {0, (long)(wait * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
    printf("sent %ld in %.3f s\n", sent, now() - t0);
    close(fd);
    return 0;
}
