/* The deeppacket command line: one file per subcommand, each only parses
 * its arguments and calls the library. Every cmd_* returns the process exit
 * status: 0 success, 1 runtime failure (bad input, I/O), 2 usage error. */
#ifndef DP_CLI_H
#define DP_CLI_H

int cmd_preprocess(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_split(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_capture(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* Prints "deeppacket CMD: message" to stderr and returns 2 (usage error). */
int dp_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Every command's options go through getopt_long (long names, --opt=value,
 * -j2, options and operands in any order). fn takes one option: c is its
 * short letter or its long-only code (>= DP_CLI_LONG), arg its value (NULL
 * for a flag), ctx the command's; it returns 0, or 2 after a usage error. */
#include <getopt.h>
enum { DP_CLI_HELP = 256, DP_CLI_LONG = 257 };
typedef int (*dp_cli_optfn)(int c, const char *arg, void *ctx);
/* Parses argv's options (shortopts as getopt's, without -h: -h and --help,
 * which longopts should map to DP_CLI_HELP, set *help and stop). A missing
 * value or an unknown option is a usage error that names it. Returns 0 (the
 * operands, permuted to the end, are argv[optind..argc)), fn's non-zero
 * return, or 2. Resets getopt's state first. With shortopts starting with
 * '-' the operands go to fn too, in their place among the options, as
 * c = 1 (getopt's "in order" mode). */
int dp_cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts, const struct option *longopts,
                  dp_cli_optfn fn, void *ctx, int *help);
/* After dp_cli_getopt, for commands without operands: 0, or 2 after a usage
 * error naming the first one. */
int dp_cli_no_operands(const char *cmd, int argc, char **argv);

/* Parses a non-negative integer / a float in [lo, hi]; returns -1 if bad. */
int dp_cli_parse_int(const char *s, long lo, long hi, long *out);
int dp_cli_parse_double(const char *s, double lo, double hi, double *out);
/* Parses a decimal integer in [0, 2^64-1] (digits only); -1 if bad or out
 * of range (never clamped). */
#include <stdint.h>
int dp_cli_parse_u64(const char *s, uint64_t *out);

/* Signals of the live commands (dp_cli_signal.c): install makes SIGINT and
 * SIGTERM set dp_cli_stop (0 until then) to the signal's number and break
 * the capture given to watch (NULL: none); restore puts the previous
 * handlers back. */
#include <signal.h>
struct dp_capture;
extern volatile sig_atomic_t dp_cli_stop;
void dp_cli_signals_install(void);
void dp_cli_signals_watch(struct dp_capture *c);
void dp_cli_signals_restore(void);

#endif
