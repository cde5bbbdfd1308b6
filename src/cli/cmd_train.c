/* deeppacket train: parses options and calls dp_train_run. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/dp_cli.h"
#include "packet/dp_mask.h"
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
            "  -j, --threads N        threads (default: all CPUs); same seed + threads = same model\n"
            "      --validation F     hold out fraction F of the flows; early stopping and the kept\n"
            "                         model follow the validation loss (default: training loss)\n"
            "      --balance MODE     none (default: every row once per epoch), undersample (every\n"
            "                         class cut at random to the smallest, once), weight (class-\n"
            "                         weighted loss, weights 1/frequency, mean 1 over the rows), or\n"
            "                         sample (each epoch a class-balanced draw with replacement, as\n"
            "                         many rows as the training set); resume with the same MODE;\n"
            "                         gbt: weight (its default: sample weights), undersample or none\n"
            "      --resume           continue from MODEL.ckpt\n"
            "      --dropout P        dropout probability of the hidden layers (0.05)\n"
            "      --init MODEL       start from MODEL's weights (same architecture and classes;\n"
            "                         Adam starts afresh; --seed still drives shuffling and dropout)\n"
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
            "  -q, --quiet            no progress output\n"
            "      --bench STEPS      no training: time STEPS training steps and inference batches of\n"
            "                         a fresh model on random bytes (needs -t; prints samples/s);\n"
            "                         with -d DIR the inference batches are DIR's vectors\n");
}

int cmd_train(int argc, char **argv)
{
    static const struct option lo[] = {
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
        {0, 0, 0, 0}};
    dp_train_opts o;
    dp_train_opts_default(&o);
    int task = -1, bench = 0, mask_given = 0, balance_given = 0, epochs_given = 0, batch_given = 0;
    char eb[DP_ERRBUF_SIZE];
    long v;
    double d;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:m:t:j:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'd': o.train_dir = optarg; break;
        case 'm': o.model_path = optarg; break;
        case 't':
            if ((task = dp_task_parse(optarg)) < 0)
                return dp_cli_usage_error("train", "unknown task '%s' (app or traffic)", optarg);
            break;
        case 'K':
            if ((o.kind = dp_model_kind_parse(optarg)) < 0)
                return dp_cli_usage_error("train", "unknown model '%s' (cnn, sae, gbt or flow)", optarg);
            break;
        case 'M':
            if (dp_mask_parse(optarg, &o.flow.mask, eb) < 0)
                return dp_cli_usage_error("train", "%s", eb);
            mask_given = 1;
            break;
        case 'N':
            if (dp_cli_parse_int(optarg, 1, DP_FLOW_MAX_PACKETS, &v) < 0)
                return dp_cli_usage_error("train", "bad --packets '%s' (1..%d)", optarg, DP_FLOW_MAX_PACKETS);
            o.flow.npackets = (int)v;
            break;
        case 'k':
            if (dp_cli_parse_int(optarg, 0, DP_FLOW_MAX_PAYLOAD, &v) < 0)
                return dp_cli_usage_error("train", "bad --payload-bytes '%s' (0..%d)", optarg, DP_FLOW_MAX_PAYLOAD);
            o.flow.payload_bytes = (int)v;
            break;
        case 'F':
            if (dp_flowfeat_groups_parse(optarg, &o.flow.groups, eb) < 0)
                return dp_cli_usage_error("train", "%s", eb);
            break;
        case 'T':
            if (dp_cli_parse_int(optarg, 1, 100000, &v) < 0)
                return dp_cli_usage_error("train", "bad --trees '%s'", optarg);
            o.gbt_trees = (int)v;
            break;
        case 'H':
            if (dp_cli_parse_int(optarg, 1, 32, &v) < 0)
                return dp_cli_usage_error("train", "bad --depth '%s' (1..32)", optarg);
            o.gbt_depth = (int)v;
            break;
        case 'e':
            if (dp_cli_parse_double(optarg, 1e-6, 1, &d) < 0)
                return dp_cli_usage_error("train", "bad --eta '%s' (0 < eta <= 1)", optarg);
            o.gbt_eta = (float)d;
            break;
        case 'c':
            if (dp_cli_parse_double(optarg, 0.01, 1, &d) < 0)
                return dp_cli_usage_error("train", "bad --colsample '%s' (0.01..1)", optarg);
            o.gbt_colsample = (float)d;
            break;
        case 'E':
            if (dp_cli_parse_int(optarg, 0, 100000, &v) < 0)
                return dp_cli_usage_error("train", "bad --epochs '%s'", optarg);
            o.hp.epochs = (int)v;
            epochs_given = 1;
            break;
        case 'B':
            if (dp_cli_parse_int(optarg, 1, 65536, &v) < 0)
                return dp_cli_usage_error("train", "bad --batch-size '%s'", optarg);
            o.hp.batch = (int)v;
            batch_given = 1;
            break;
        case 'L':
            if (dp_cli_parse_double(optarg, 1e-9, 10, &d) < 0)
                return dp_cli_usage_error("train", "bad --lr '%s'", optarg);
            o.hp.lr = (float)d;
            break;
        case 'S':
            if (dp_cli_parse_u64(optarg, &o.hp.seed) < 0)
                return dp_cli_usage_error("train", "bad --seed '%s': expected an integer in [0, 2^64-1]",
                                          optarg);
            break;
        case 'P':
            if (dp_cli_parse_int(optarg, 1, 100000, &v) < 0)
                return dp_cli_usage_error("train", "bad --patience '%s'", optarg);
            o.hp.patience = (int)v;
            break;
        case 'R':
            if (dp_cli_parse_int(optarg, 0, 1000, &v) < 0)
                return dp_cli_usage_error("train", "bad --pretrain-epochs '%s'", optarg);
            o.hp.pretrain_epochs = (int)v;
            break;
        case 'j':
            if (dp_cli_parse_int(optarg, 1, 1024, &v) < 0)
                return dp_cli_usage_error("train", "bad --threads '%s'", optarg);
            o.hp.threads = (int)v;
            break;
        case 'V':
            if (dp_cli_parse_double(optarg, 0, 0.9, &d) < 0)
                return dp_cli_usage_error("train", "bad --validation '%s' (a fraction in [0, 0.9])", optarg);
            o.hp.validation = (float)d;
            break;
        case 'D':
            if (dp_cli_parse_double(optarg, 0, 0.95, &d) < 0)
                return dp_cli_usage_error("train", "bad --dropout '%s' (a probability in [0, 0.95])", optarg);
            o.dropout = (float)d;
            break;
        case 'C': /* undocumented: smaller CNNs for tests */
            if (dp_cli_parse_int(optarg, 1, 4096, &v) < 0)
                return dp_cli_usage_error("train", "bad --channels '%s'", optarg);
            o.cnn_channels = (int)v;
            break;
        case 'X':
            if (dp_cli_parse_int(optarg, 1, 1000000, &v) < 0)
                return dp_cli_usage_error("train", "bad --bench '%s'", optarg);
            bench = (int)v;
            break;
        case 'A': {
            int b = dp_balance_parse(optarg);
            if (b < 0)
                return dp_cli_usage_error("train", "unknown --balance '%s' (none, undersample, weight or sample)",
                                          optarg);
            o.balance = (dp_balance)b;
            balance_given = 1;
            break;
        }
        case 'r': o.resume = 1; break;
        case 'I': o.init_path = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        case ':': return dp_cli_usage_error("train", "option '%s' needs a value", argv[optind - 1]);
        default: return dp_cli_usage_error("train", "unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return dp_cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (o.resume && o.init_path)
        return dp_cli_usage_error("train", "--init and --resume exclude each other (a checkpoint has its own weights)");
    if (o.hp.threads == 0)
        o.hp.threads = dp_ncpu();
    if (!mask_given && (o.kind == DP_MODEL_GBT || o.kind == DP_MODEL_FLOW))
        o.flow.mask = DP_MASK_DEFAULT;
    if (o.kind == DP_MODEL_FLOW) { /* what the flow NN was measured with (docs/accuracy.md) */
        if (!epochs_given)
            o.hp.epochs = 40;
        if (!batch_given)
            o.hp.batch = 64;
    }
    if (o.kind == DP_MODEL_GBT && balance_given) {
        if (o.balance == DP_BALANCE_SAMPLE)
            return dp_cli_usage_error("train", "--balance sample is for the neural models; gbt takes weight, "
                                      "undersample or none");
        o.gbt_balance = o.balance == DP_BALANCE_WEIGHT        ? DP_GBT_BALANCE_WEIGHT
                        : o.balance == DP_BALANCE_UNDERSAMPLE ? DP_GBT_BALANCE_UNDERSAMPLE
                                                              : DP_GBT_BALANCE_NONE;
    }
    if (bench) {
        if (task < 0)
            return dp_cli_usage_error("train", "--bench needs -t app|traffic");
        char eb[DP_ERRBUF_SIZE];
        double tr, inf;
        int ncls = task == DP_TASK_APP ? 15 : 11;
        if (dp_train_bench(o.kind, task, ncls, o.hp.batch, bench, o.hp.threads, o.train_dir, &tr, &inf, eb) != 0) {
            fprintf(stderr, "deeppacket train: %s\n", eb);
            return 1;
        }
        printf("%s %s batch %d threads %d: train %.1f samples/s, inference %.1f packets/s\n",
               o.kind == DP_MODEL_CNN ? "cnn" : "sae", dp_task_name[task], o.hp.batch, o.hp.threads, tr, inf);
        return 0;
    }
    if (!o.train_dir || !o.model_path || task < 0) {
        usage(stderr);
        return 2;
    }
    o.task = task;
    if (dp_train_run(&o, eb) != 0) {
        fprintf(stderr, "deeppacket train: %s\n", eb);
        return 1;
    }
    return 0;
}
