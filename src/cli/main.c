/* deeppacket: encrypted traffic classification with Deep Packet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deeppacket.h"
#include "cli/dp_cli.h"
#include "util/dp_util.h"


static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"preprocess", cmd_preprocess, "captures -> labelled 1500-byte packet vectors"},
    {"merge", cmd_merge, "join the datasets of preprocess --shard runs into one"},
    {"split", cmd_split, "train/test sets per task, under-sampled training set"},
    {"train", cmd_train, "train a model (CNN, SAE, flow NN or GBT) on a training set"},
    {"test", cmd_test, "evaluate a model: per-class report, confusion matrix"},
    {"classify", cmd_classify, "classify recorded or live traffic"},
    {"capture", cmd_capture, "record live traffic to a pcap file"},
    {"export", cmd_export, "write a model as an ONNX file"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: deeppacket COMMAND [options]   (deeppacket COMMAND --help; deeppacket --version)\n\n"
               "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].help);
}

/* A command's exit status, made 1 when its standard output could not be
 * written (a full disk, a closed pipe): the output is incomplete. */
static int finish_stdout(const char *cmd, int rc)
{
    char err[DP_ERRBUF_SIZE];
    if (dp_check_stdout(err) != 0) {
        fprintf(stderr, "deeppacket %s: %s\n", cmd, err);
        return rc ? rc : 1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    dp_process_guard();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return finish_stdout("help", 0);
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("deeppacket %s\n", DEEPPACKET_VERSION_STRING);
        return finish_stdout("version", 0);
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            /* classify and capture install their own handlers (dp_cli_signals_install) */
            dp_tmp_cleanup_on_signals();
            int rc = commands[i].fn(argc - 1, argv + 1);
            return finish_stdout(commands[i].name, rc);
        }
    fprintf(stderr, "deeppacket: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
