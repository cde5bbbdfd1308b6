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
/* Parses a non-negative integer / a float in [lo, hi]; returns -1 if bad. */
int dp_cli_parse_int(const char *s, long lo, long hi, long *out);
int dp_cli_parse_double(const char *s, double lo, double hi, double *out);
/* Parses a decimal integer in [0, 2^64-1] (digits only); -1 if bad or out
 * of range (never clamped). */
#include <stdint.h>
int dp_cli_parse_u64(const char *s, uint64_t *out);

/* The spelling the command's parser knows for option a: the second of the
 * pair in aliases ({"--data", "-d", ..., NULL}) whose first is a, else a
 * itself. Lets the hand-written parsers (test, classify, capture, export)
 * take long names as the getopt_long ones (preprocess, split, train) do. */
const char *dp_cli_alias(const char *a, const char *const *aliases);

/* Signals of the live commands (dp_cli_signal.c): install makes SIGINT and
 * SIGTERM set dp_cli_stop and break the capture given to watch (NULL: none);
 * restore puts the previous handlers back. */
#include <signal.h>
struct dp_capture;
extern volatile sig_atomic_t dp_cli_stop;
void dp_cli_signals_install(void);
void dp_cli_signals_watch(struct dp_capture *c);
void dp_cli_signals_restore(void);

#endif
