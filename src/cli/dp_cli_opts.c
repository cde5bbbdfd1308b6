/* The commands' shared argument handling: one getopt_long loop for every
 * command (dp_cli_getopt), usage errors, and the number parsers. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/dp_cli.h"

int dp_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "deeppacket %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 2;
}

/* The length of the name in argument a when it is a long option ("--name"
 * or "--name=value"), else 0. */
static size_t long_name_len(const char *a)
{
    return strncmp(a, "--", 2) ? 0 : strcspn(a + 2, "=");
}

/* 1 when argument a is a long option (its name a prefix of one in lo)
 * whose code is val. */
static int is_long_of(const char *a, const struct option *lo, int val)
{
    size_t n = long_name_len(a);
    for (; n && lo && lo->name; lo++)
        if (lo->val == val && !strncmp(lo->name, a + 2, n))
            return 1;
    return 0;
}

/* The option getopt just refused, as the user wrote it: a long one up to
 * any "=value", a short one as "-x" (also inside a group such as -qx, when
 * getopt has not yet moved past that argument). */
static void bad_option(char *out, size_t cap, char **argv, const struct option *lo)
{
    const char *a = argv[optind - 1];
    if (optopt > 0 && optopt < 256 && !is_long_of(a, lo, optopt)) {
        snprintf(out, cap, "-%c", optopt);
        return;
    }
    size_t n = strcspn(a, "=");
    snprintf(out, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), a);
}

/* When argument a ("--na" or "--na=v") is a prefix of several long names
 * of different options, writes them into out ("--name, --nap") and returns
 * 1 (getopt_long calls that an unknown option). */
static int ambiguous(const char *a, const struct option *lo, char *out, size_t cap)
{
    size_t n = long_name_len(a), k = 0;
    int found = 0, first = -1;
    out[0] = 0;
    for (; n && lo && lo->name; lo++)
        if (!strncmp(lo->name, a + 2, n) && k + strlen(lo->name) + 5 < cap) {
            found += first < 0 || lo->val != first;
            first = first < 0 ? lo->val : first;
            k += (size_t)snprintf(out + k, cap - k, "%s--%s", k ? ", " : "", lo->name);
        }
    return found > 1;
}

int dp_cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts, const struct option *longopts,
                  dp_cli_optfn fn, void *ctx, int *help)
{
    char spec[64];
    /* ':' tells a missing value apart; a leading '-' (in order) goes before it */
    int in_order = shortopts[0] == '-';
    snprintf(spec, sizeof spec, "%s:%sh", in_order ? "-" : "", shortopts + in_order);
    optind = 1;                                      /* each command parses afresh (tests run several) */
    opterr = 0;
    *help = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, spec, longopts, NULL)) != -1) {
        char name[64];
        if (c == 'h' || c == DP_CLI_HELP) {
            *help = 1;
            return 0;
        }
        if (c == ':' || c == '?') {
            const char *a = argv[optind - 1];
            bad_option(name, sizeof name, argv, longopts);
            if (c == ':')
                return dp_cli_usage_error(cmd, "option %s needs a value (see --help)", name);
            if (optopt && is_long_of(a, longopts, optopt) && strchr(a, '=')) /* --quiet=1 */
                return dp_cli_usage_error(cmd, "option %s takes no value (see --help)", name);
            char all[256];
            if (!optopt && ambiguous(a, longopts, all, sizeof all))
                return dp_cli_usage_error(cmd, "ambiguous option '%s' (%s)", name, all);
            return dp_cli_usage_error(cmd, "unknown option '%s' (see --help)", name);
        }
        if ((rc = fn(c, optarg, ctx)) != 0)
            return rc;
    }
    return 0;
}

int dp_cli_no_operands(const char *cmd, int argc, char **argv)
{
    if (optind < argc)
        return dp_cli_usage_error(cmd, "unexpected argument '%s' (see --help)", argv[optind]);
    return 0;
}

int dp_cli_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int dp_cli_parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9') /* strtoull takes signs and blanks: "-1" is 2^64-1 */
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) /* ERANGE: above 2^64-1, which strtoull clamps */
        return -1;
    *out = v;
    return 0;
}

int dp_cli_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}
