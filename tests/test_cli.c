/* test_cli: the argument handling every command shares (src/cli/dp_cli_opts.c,
 * one getopt_long loop): --help and -h, unknown options and missing values
 * named as written, --opt=value and -j2, abbreviations of long names,
 * options after operands, operands where a command takes none. Each case
 * runs the built program and checks its exit status and one line of its
 * output; none of them reaches a file, so they run anywhere. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dp_test.h"

/* Each command and one option it takes with a value. */
static const char *const commands[][2] = {{"preprocess", "-s x"}, {"merge", "-t x"},   {"split", "-s x"},
                                          {"train", "-d x"},      {"test", "-d x"},    {"classify", "-m x"},
                                          {"capture", "-i x"},    {"export", "-m x"}};
#define NCMD (sizeof commands / sizeof commands[0])

/* Runs `deeppacket ARGS 2>&1`; checks its exit status and that its output
 * holds needle. */
static void expect(const char *args, int status, const char *needle)
{
    char cmd[1024], out[16384];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", dp_test_cli(), args);
    int st = dp_test_sh(cmd, out, sizeof out);
    if (st != status || !strstr(out, needle)) {
        fprintf(stderr, "  deeppacket %s: exit %d (want %d), output:\n%s  (want it to hold \"%s\")\n", args, st,
                status, out, needle);
        dp_test_failed_now = 1;
    }
}

/* Every command: -h and --help print its usage and exit 0, also after other
 * options; an unknown long or short option exits 2 naming it. */
static void test_help_and_unknown(void)
{
    if (!dp_test_cli())
        SKIP("no deeppacket binary in $BUILD (run through make check)");
    for (size_t i = 0; i < NCMD; i++) {
        char args[256], want[128];
        const char *c = commands[i][0];
        snprintf(want, sizeof want, "usage: deeppacket %s", c);
        snprintf(args, sizeof args, "%s --help", c);
        expect(args, 0, want);
        snprintf(args, sizeof args, "%s %s -h", c, commands[i][1]);
        expect(args, 0, want);
        snprintf(args, sizeof args, "%s --bogus", c);
        snprintf(want, sizeof want, "deeppacket %s: unknown option '--bogus'", c);
        expect(args, 2, want);
        snprintf(args, sizeof args, "%s --bogus=3", c);
        expect(args, 2, want);
        snprintf(args, sizeof args, "%s -Z", c);
        snprintf(want, sizeof want, "deeppacket %s: unknown option '-Z'", c);
        expect(args, 2, want);
    }
}

/* A missing value names the option as written; a flag given a value is
 * refused as such. */
static void test_missing_and_extra_values(void)
{
    if (!dp_test_cli())
        SKIP("no deeppacket binary in $BUILD (run through make check)");
    expect("preprocess -s", 2, "option -s needs a value");
    expect("merge a b -t", 2, "option -t needs a value");           /* options after operands too */
    expect("split --target", 2, "option --target needs a value");
    expect("train -d x --seed", 2, "option --seed needs a value");
    expect("test -m", 2, "option -m needs a value");
    expect("classify -m x --per", 2, "option --per needs a value");
    expect("capture -i lo -w", 2, "option -w needs a value");
    expect("export --output", 2, "option --output needs a value");
    expect("test --quiet=1", 2, "option --quiet takes no value");
    expect("split --no-under-sampling=yes", 2, "option --no-under-sampling takes no value");
    expect("split --s x", 2, "ambiguous option '--s' (--source, --seed)"); /* not "unknown" */
    expect("train -t app", 2, "deeppacket train: missing -d TRAIN_DIR, -m MODEL (see --help)");
    expect("train -d x -m y -t app --model gbt --validation 0.2", 2, "--validation is for the neural models");
    expect("test -d a -m b --dup-packets 5", 2, "--dup-packets goes with --train-set DIR");
}

/* Values reach the command whichever way they are written: --opt=value,
 * -jN, an unambiguous prefix of a long name. Each case gives a value the
 * command refuses, so that its message shows the value arrived. */
static void test_value_forms(void)
{
    if (!dp_test_cli())
        SKIP("no deeppacket binary in $BUILD (run through make check)");
    expect("test -d a -m b --batch-size=0", 2, "--batch-size wants 1..1048576, not '0'");
    expect("test -d a -m b --batch 0", 2, "--batch-size wants 1..1048576, not '0'");   /* prefix */
    expect("classify -m x -r a -j0", 2, "-j wants a thread count in [1, 64], not '0'");
    expect("classify -m x -r a --max-flows=0", 2, "--max-flows wants a count in [1, 67108864], not '0'");
    expect("classify -m x -r a --idle-timeout=-1", 2, "--idle-timeout wants seconds > 0, not '-1'");
    expect("classify -m x -r a --form=xml", 2, "--format wants 'json' or 'eve', not 'xml'");
    expect("capture -i lo -w x --snaplen=5", 2, "--snaplen wants bytes in [128, 262144], not '5'");
    expect("capture -i lo -w x -c0", 2, "-c wants a positive count, not '0'");
    expect("preprocess -s a -t b -j0", 2, "-j wants a thread count in 1..1024, not '0'");
    expect("preprocess -s a -t b --shard=4/4", 2, "--shard wants I/N");
    expect("split -s a -t b --by=bogus", 2, "--by 'bogus'");
    expect("split -s a -t b --seed=-1", 2, "--seed '-1': expected an integer in [0, 2^64-1]");
    expect("split -s /nonexistent -t b --seed 18446744073709551615", 1, "/nonexistent"); /* as train's range */
    CHECK(access("b.lock", F_OK) != 0); /* a bad source leaves no lock file behind */
    expect("train -d a -m b -t app --bal=x", 2, "unknown --balance 'x'");
    expect("train -d a -m b -tbogus", 2, "unknown task 'bogus'");
}

/* Operands: refused by the commands that take none, naming the first;
 * merge's are its shard folders; classify's are more captures after -r. */
static void test_operands(void)
{
    if (!dp_test_cli())
        SKIP("no deeppacket binary in $BUILD (run through make check)");
    expect("preprocess -s a -t b extra", 2, "unexpected argument 'extra'");
    expect("split extra -s a -t b", 2, "unexpected argument 'extra'");
    expect("train -d a -m b -t app extra", 2, "unexpected argument 'extra'");
    expect("test -d a -m b extra", 2, "unexpected argument 'extra'");
    expect("capture -i lo -w x extra", 2, "unexpected argument 'extra'");
    expect("export -m a -o b extra", 2, "unexpected argument 'extra'");
    expect("classify -m x extra.pcap", 2, "unexpected argument 'extra.pcap'");
    expect("merge -t out", 2, "at least one SHARD_DIR");
    expect("classify -m /nonexistent/m.model -r a.pcap b.pcap", 1, "/nonexistent/m.model");
    expect("classify -m x -- -b.pcap", 2, "unexpected argument '-b.pcap' (captures follow -r"); /* after "--" */
    expect("classify -m x -r -- -weird.pcap", 2, "unknown option '-w'"); /* -r took "--": -weird is options */
    expect("test -d a -m b -qZ", 2, "unknown option '-Z'");                /* in a group, after "-m b" */
}

int main(void)
{
    dp_test_prog = "test_cli";
    DP_RUN(test_help_and_unknown);
    DP_RUN(test_missing_and_extra_values);
    DP_RUN(test_value_forms);
    DP_RUN(test_operands);
    return dp_test_end();
}
