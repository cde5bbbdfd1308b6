/* deeppacket train: parses options and calls dp_train_run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/dp_cli.h"
#include "eval/dp_eval.h"
#include "nn/dp_nn.h"
#include "packet/dp_mask.h"
#include "train/dp_dist.h"
#include "train/dp_train.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: deeppacket train -d SPLIT_DIR/<task>/train|DATASET_DIR -m MODEL -t app|traffic [options]\n"
            "  -d, --data DIR         training split folder (vectors.npy, labels.npy, meta.npy, classes.tsv),\n"
            "                         or a preprocessed dataset folder: its rows labelled for -t's task\n"
            "  -m, --model-file FILE  model to write (checkpoint: FILE.ckpt, rewritten each epoch)\n"
            "  -t, --task TASK        app or traffic\n"
            "      --model KIND       cnn (default), sae, gbt (gradient-boosted trees over flows) or\n"
            "                         flow (the flow NN; one verdict per flow)\n"
            "      --epochs N         at most N epochs (20, flow: 40; 0 writes the initialised model)\n"
            "      --batch-size N     mini-batch size (16, flow: 64)\n"
            "      --lr X             Adam learning rate (1e-3)\n"
            "      --seed N           seed of init, shuffling, dropout (9876)\n"
            "      --patience N       early stopping patience in epochs (3)\n"
            "      --pretrain-epochs N  SAE: greedy pre-training epochs per layer (2)\n"
            "  -j, --threads N        threads (default: all CPUs; under mpirun, the CPUs over the\n"
            "                         ranks on the machine); same seed + threads = same model\n"
            "      --precision P      fp32 (default), bf16 (the convolutions' and fully connected\n"
            "                         layers' products in bf16, float32 sums and weights; needs a CPU\n"
            "                         with AVX512_BF16) or auto (bf16 where the CPU has it)\n"
            "      --validation F     hold out fraction F of the flows; early stopping and the kept\n"
            "                         model follow the validation loss (default: training loss)\n"
            "      --balance MODE     auto (default: what measured best; gbt: weight; flow: none;\n"
            "                         cnn, sae: none on equal classes, as split leaves them, else\n"
            "                         sample), none (every row once per epoch), undersample (every\n"
            "                         class cut at random to the smallest, once), weight (class-\n"
            "                         weighted loss, weights 1/frequency, mean 1 over the rows), or\n"
            "                         sample (each epoch a class-balanced draw with replacement, as\n"
            "                         many rows as the training set); resume with the same MODE;\n"
            "                         gbt: no sample; the mode used is stored in the model\n"
            "      --resume           continue from MODEL.ckpt\n"
            "      --dropout P        dropout probability of the hidden layers (0.05)\n"
            "      --init MODEL       start from MODEL's weights (same architecture and classes;\n"
            "                         Adam starts afresh; --seed still drives shuffling and dropout);\n"
            "                         gbt: keep MODEL's trees and add --trees more, boosted on -d's\n"
            "                         flows (same task, classes and flow rows: update a model with\n"
            "                         newly labelled captures)\n"
            "      --mask FIELDS      zero these header fields in every vector, stored in the model:\n"
            "                         ports,ipid,ttl,checksum,seq,tcpts,window | none | all | default\n"
            "                         (default = ports,ipid,ttl,checksum,seq,tcpts; the default for\n"
            "                         flow and gbt; cnn and sae default to none, as the reference)\n"
            "  flow models (gbt, flow): one row per flow of -d's meta.npy (docs/flow-features.md)\n"
            "      --packets N        first N packets of each flow (10; 1..64)\n"
            "      --payload-bytes K  first K transport payload bytes per packet (64; 0..1456)\n"
            "      --features LIST    sizes,time,header,payload or all (default); others are zeroed\n"
            "      --trees N          gbt: boosting rounds (200)\n"
            "      --depth N          gbt: maximum tree depth (6)\n"
            "      --eta X            gbt: learning rate (0.1)\n"
            "      --colsample F      gbt: fraction of the features each tree may use, drawn with\n"
            "                         --seed (1: all, nothing random)\n"
            "      --loss-log FILE    write every optimiser step's loss (the global batch's) to FILE\n"
            "      --max-steps N      stop after N optimiser steps as if killed (no model written;\n"
            "                         the last epoch's checkpoint and the loss log are): benchmarks\n"
            "  -q, --quiet            no progress output\n"
            "      --bench STEPS      no training: time STEPS training steps and inference batches of\n"
            "                         a fresh model on random bytes (needs -t; prints samples/s);\n"
            "                         with -d DIR the inference batches are DIR's vectors\n"
            "  data-parallel: mpirun -np K deeppacket train ... (a `make MPI=1` build; every rank\n"
            "  reads the same -d, rank 0 writes; docs/distributed.md)\n");
}

static const struct option long_opts[] = {
    {"data", required_argument, 0, 'd'},       {"model-file", required_argument, 0, 'm'},
    {"task", required_argument, 0, 't'},       {"model", required_argument, 0, 'K'},
    {"epochs", required_argument, 0, 'E'},     {"batch-size", required_argument, 0, 'B'},
    {"lr", required_argument, 0, 'L'},         {"seed", required_argument, 0, 'S'},
    {"patience", required_argument, 0, 'P'},   {"pretrain-epochs", required_argument, 0, 'R'},
    {"threads", required_argument, 0, 'j'},    {"validation", required_argument, 0, 'V'},
    {"resume", no_argument, 0, 'r'},           {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'},             {"channels", required_argument, 0, 'C'},
    {"bench", required_argument, 0, 'X'},      {"init", required_argument, 0, 'I'},
    {"dropout", required_argument, 0, 'D'},    {"balance", required_argument, 0, 'A'},
    {"mask", required_argument, 0, 'M'},       {"packets", required_argument, 0, 'N'},
    {"payload-bytes", required_argument, 0, 'k'}, {"features", required_argument, 0, 'F'},
    {"trees", required_argument, 0, 'T'},      {"depth", required_argument, 0, 'H'},
    {"eta", required_argument, 0, 'e'},        {"colsample", required_argument, 0, 'c'},
    {"loss-log", required_argument, 0, 'O'},   {"max-steps", required_argument, 0, 'x'},
    {"precision", required_argument, 0, 'p'},
    {0, 0, 0, 0}};

/* The command line: the library's options and what the CLI decides itself. */
struct train_args {
    dp_train_opts o;
    int task, bench, help, mask_given, epochs_given, batch_given, max_steps;
};

/* Parses the value of a flow-model option (mask, packets, payload bytes,
 * features, the GBT's settings) C. Returns 0, 2 after a usage error, or -1
 * when C is not one of these. */
static int parse_flow_option(struct train_args *ta, int c, const char *arg)
{
    dp_train_opts *o = &ta->o;
    char eb[DP_ERRBUF_SIZE];
    long v;
    double d;
    switch (c) {
    case 'M':
        if (dp_mask_parse(arg, &o->flow.mask, eb) < 0)
            return dp_cli_usage_error("train", "%s", eb);
        ta->mask_given = 1;
        return 0;
    case 'N':
        if (dp_cli_parse_int(arg, 1, DP_FLOW_MAX_PACKETS, &v) < 0)
            return dp_cli_usage_error("train", "bad --packets '%s' (1..%d)", arg, DP_FLOW_MAX_PACKETS);
        o->flow.npackets = (int)v;
        return 0;
    case 'k':
        if (dp_cli_parse_int(arg, 0, DP_FLOW_MAX_PAYLOAD, &v) < 0)
            return dp_cli_usage_error("train", "bad --payload-bytes '%s' (0..%d)", arg, DP_FLOW_MAX_PAYLOAD);
        o->flow.payload_bytes = (int)v;
        return 0;
    case 'F':
        if (dp_flowfeat_groups_parse(arg, &o->flow.groups, eb) < 0)
            return dp_cli_usage_error("train", "%s", eb);
        return 0;
    case 'T':
        if (dp_cli_parse_int(arg, 1, 100000, &v) < 0)
            return dp_cli_usage_error("train", "bad --trees '%s'", arg);
        o->gbt_trees = (int)v;
        return 0;
    case 'H':
        if (dp_cli_parse_int(arg, 1, 32, &v) < 0)
            return dp_cli_usage_error("train", "bad --depth '%s' (1..32)", arg);
        o->gbt_depth = (int)v;
        return 0;
    case 'e':
        if (dp_cli_parse_double(arg, 1e-6, 1, &d) < 0)
            return dp_cli_usage_error("train", "bad --eta '%s' (0 < eta <= 1)", arg);
        o->gbt_eta = (float)d;
        return 0;
    case 'c':
        if (dp_cli_parse_double(arg, 0.01, 1, &d) < 0)
            return dp_cli_usage_error("train", "bad --colsample '%s' (0.01..1)", arg);
        o->gbt_colsample = (float)d;
        return 0;
    }
    return -1;
}

/* Parses an integer option C of the training run (epochs, batch, patience,
 * pre-training epochs, threads, channels, bench steps). Returns 0, 2 after a
 * usage error, or -1 when C is not one of these. */
static int parse_count_option(struct train_args *ta, int c, const char *arg)
{
    static const struct {
        int c;
        const char *name;
        long lo, hi;
    } t[] = {{'E', "epochs", 0, 100000},  {'B', "batch-size", 1, 65536},     {'P', "patience", 1, 100000},
             {'R', "pretrain-epochs", 0, 1000}, {'j', "threads", 1, 1024}, {'C', "channels", 1, 4096},
             {'X', "bench", 1, 1000000}, {'x', "max-steps", 1, 1000000000}};
    dp_train_opts *o = &ta->o;
    int *dst[] = {&o->hp.epochs, &o->hp.batch, &o->hp.patience, &o->hp.pretrain_epochs,
                  &o->hp.threads, &o->cnn_channels, &ta->bench, &ta->max_steps};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (t[i].c != c)
            continue;
        long v;
        if (dp_cli_parse_int(arg, t[i].lo, t[i].hi, &v) < 0)
            return dp_cli_usage_error("train", "bad --%s '%s'", t[i].name, arg);
        *dst[i] = (int)v;
        ta->epochs_given |= c == 'E';
        ta->batch_given |= c == 'B';
        return 0;
    }
    return -1;
}

/* Parses the other hyper-parameters (learning rate, seed, validation,
 * dropout, balance) C. Returns 0, 2 after a usage error, or -1 when C is not
 * one of these. */
static int parse_hp_option(struct train_args *ta, int c, const char *arg)
{
    dp_train_opts *o = &ta->o;
    double d;
    switch (c) {
    case 'L':
        if (dp_cli_parse_double(arg, 1e-9, 10, &d) < 0)
            return dp_cli_usage_error("train", "bad --lr '%s'", arg);
        o->hp.lr = (float)d;
        return 0;
    case 'S':
        if (dp_cli_parse_u64(arg, &o->hp.seed) < 0)
            return dp_cli_usage_error("train", "bad --seed '%s': expected an integer in [0, 2^64-1]", arg);
        return 0;
    case 'V':
        if (dp_cli_parse_double(arg, 0, 0.9, &d) < 0)
            return dp_cli_usage_error("train", "bad --validation '%s' (a fraction in [0, 0.9])", arg);
        o->hp.validation = (float)d;
        return 0;
    case 'D':
        if (dp_cli_parse_double(arg, 0, 0.95, &d) < 0)
            return dp_cli_usage_error("train", "bad --dropout '%s' (a probability in [0, 0.95])", arg);
        o->dropout = (float)d;
        return 0;
    case 'p':
        if ((o->precision = dp_nn_precision_parse(arg)) < 0)
            return dp_cli_usage_error("train", "unknown --precision '%s' (fp32, bf16 or auto)", arg);
        return 0;
    case 'A': {
        int b = dp_balance_parse(arg);
        if (b < 0)
            return dp_cli_usage_error("train", "unknown --balance '%s' (auto, none, undersample, weight or sample)", arg);
        o->balance = (dp_balance)b;
        return 0;
    }
    }
    return -1;
}

/* One option c (dp_cli_getopt's) with its value arg into *(struct
 * train_args *)ctx; 0, or 2 after a usage error. */
static int parse_option(int c, const char *arg, void *ctx)
{
    struct train_args *ta = ctx;
    int rc;
    switch (c) {
    case 'd': ta->o.train_dir = arg; return 0;
    case 'm': ta->o.model_path = arg; return 0;
    case 't':
        if ((ta->task = dp_task_parse(arg)) < 0)
            return dp_cli_usage_error("train", "unknown task '%s' (app or traffic)", arg);
        return 0;
    case 'K':
        if ((ta->o.kind = dp_model_kind_parse(arg)) < 0)
            return dp_cli_usage_error("train", "unknown model '%s' (cnn, sae, gbt or flow)", arg);
        return 0;
    case 'r': ta->o.resume = 1; return 0;
    case 'I': ta->o.init_path = arg; return 0;
    case 'O': ta->o.loss_log = arg; return 0;
    case 'q': ta->o.quiet = 1; return 0;
    }
    if ((rc = parse_flow_option(ta, c, arg)) >= 0 || (rc = parse_count_option(ta, c, arg)) >= 0 ||
        (rc = parse_hp_option(ta, c, arg)) >= 0)
        return rc;
    return dp_cli_usage_error("train", "unknown option (see --help)"); /* not reached */
}

/* Parses argv into *ta; returns 0 (ta->help set for -h), or 2 after a
 * usage error. */
static int parse_args(int argc, char **argv, struct train_args *ta)
{
    int rc = dp_cli_getopt("train", argc, argv, "d:m:t:j:q", long_opts, parse_option, ta, &ta->help);
    if (rc || ta->help)
        return rc;
    return dp_cli_no_operands("train", argc, argv);
}

/* Checks the options against each other and fills in the defaults that
 * depend on the model kind; returns 0, or 2 after a usage error. */
static int settle_args(struct train_args *ta)
{
    dp_train_opts *o = &ta->o;
    if (o->resume && o->init_path)
        return dp_cli_usage_error("train", "--init and --resume exclude each other (a checkpoint has its own weights)");
    if (o->hp.threads == 0) /* the machine's CPUs shared by its ranks */
        o->hp.threads = dp_ncpu() / dp_dist_local_size() > 0 ? dp_ncpu() / dp_dist_local_size() : 1;
    o->max_steps = ta->max_steps;
    if (!ta->mask_given && (o->kind == DP_MODEL_GBT || o->kind == DP_MODEL_FLOW))
        o->flow.mask = DP_MASK_DEFAULT;
    if (o->kind == DP_MODEL_FLOW) { /* what the flow NN was measured with (docs/accuracy.md) */
        if (!ta->epochs_given)
            o->hp.epochs = 40;
        if (!ta->batch_given)
            o->hp.batch = 64;
    }
    if (o->kind == DP_MODEL_GBT && o->balance == DP_BALANCE_SAMPLE)
        return dp_cli_usage_error("train", "--balance sample is for the neural models; gbt takes auto, weight, "
                                  "undersample or none");
    if (o->kind == DP_MODEL_GBT && o->hp.validation > 0) /* it was ignored: every flow trained on */
        return dp_cli_usage_error("train", "--validation is for the neural models (early stopping); a gbt trains "
                                  "on every flow of -d: test it on another set (test -d)");
    return 0;
}

/* --bench: times training steps and inference batches; returns the exit code. */
static int run_bench(const struct train_args *ta)
{
    const dp_train_opts *o = &ta->o;
    if (ta->task < 0)
        return dp_cli_usage_error("train", "--bench needs -t app|traffic");
    char eb[DP_ERRBUF_SIZE];
    double tr, inf, cpu[2];
    int ncls = ta->task == DP_TASK_APP ? 15 : 11;
    if (dp_train_bench(o->kind, ta->task, ncls, o->hp.batch, ta->bench, o->hp.threads, o->precision, o->train_dir, &tr, &inf, cpu,
                       eb) != 0) {
        fprintf(stderr, "deeppacket train: %s\n", eb);
        return 1;
    }
    printf("%s %s batch %d threads %d %s: train %.1f samples/s, inference %.1f packets/s "
           "(per CPU second: %.1f samples, %.1f packets)\n",
           o->kind == DP_MODEL_CNN ? "cnn" : "sae", dp_task_name[ta->task], o->hp.batch, o->hp.threads,
           dp_nn_precision_name(dp_nn_get_precision()), tr, inf, cpu[0], cpu[1]);
    return 0;
}

/* The training run (on every rank of an MPI job); returns the exit code.
 * A rank prints its own failure, prefixed with its rank in a job of
 * several; ranks that failed because another did print nothing. */
static int run_training(struct train_args *ta)
{
    if (!ta->o.train_dir || !ta->o.model_path || ta->task < 0) {
        char miss[96] = "";
        const char *what[3] = {!ta->o.train_dir ? "-d TRAIN_DIR" : NULL, !ta->o.model_path ? "-m MODEL" : NULL,
                               ta->task < 0 ? "-t app|traffic" : NULL};
        for (int i = 0; i < 3; i++)
            if (what[i])
                snprintf(miss + strlen(miss), sizeof miss - strlen(miss), "%s%s", miss[0] ? ", " : "", what[i]);
        return dp_cli_usage_error("train", "missing %s (see --help)", miss);
    }
    ta->o.task = ta->task;
    char eb[DP_ERRBUF_SIZE];
    if (dp_train_run(&ta->o, eb) == 0)
        return 0;
    if (eb[0] && dp_dist_size() > 1)
        fprintf(stderr, "deeppacket train: rank %d: %s\n", dp_dist_rank(), eb);
    else if (eb[0])
        fprintf(stderr, "deeppacket train: %s\n", eb);
    return 1;
}

int cmd_train(int argc, char **argv)
{
    struct train_args ta = {.task = -1};
    dp_train_opts_default(&ta.o);
    int rc = parse_args(argc, argv, &ta);
    if (rc)
        return rc;
    if (ta.help) {
        usage(stdout);
        return 0;
    }
    char eb[DP_ERRBUF_SIZE];
    if (dp_dist_init(eb) != 0) {
        fprintf(stderr, "deeppacket train: %s\n", eb);
        return 1;
    }
    if ((rc = settle_args(&ta)) == 0)
        rc = ta.bench ? run_bench(&ta) : run_training(&ta);
    dp_dist_finish();
    dp_eval_plot_release(); /* the curves drew text: cairo's and fontconfig's caches */
    return rc;
}
