/* flow_nn_check: trains the C flow NN (DP_MODEL_FLOW) on a split folder's
 * flows with the training API directly and prints per-flow weighted and
 * macro F1 and the VPN/non-VPN accuracy on a time split: per capture file,
 * the latest 20% of its flows (by first packet) are the test set, as
 * bench/flow_model.py --splits file. Plain cross-entropy (no class weights:
 * compare with flow_model.py --balance none). A check of the C model on real
 * data until `train --model flow` does this; see docs/accuracy.md.
 *
 *   make build/flow_nn_check
 *   build/flow_nn_check SPLIT_DIR [seed [epochs [conv|flat|mlp|conv-wide|flat-wide]]]   (default: conv;
 *   -wide: encoder 128 -> 64, conv 64 channels)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dp_dataset.h"
#include "flow/dp_flowset.h"
#include "model/dp_model.h"
#include "model/dp_model_train.h"
#include "nn/dp_nn.h"

static uint32_t flow_file(const dp_flowset *fs, uint64_t i)
{
    return dp_splitset_meta(fs->set, fs->rows[fs->flows[i].first]).file;
}

/* test[i] = 1 for the latest 20% of each file's flows (flows are in time order) */
static void time_split(const dp_flowset *fs, uint8_t *test)
{
    uint32_t nfiles = 0;
    for (uint64_t i = 0; i < fs->nflows; i++)
        if (flow_file(fs, i) + 1 > nfiles)
            nfiles = flow_file(fs, i) + 1;
    uint64_t *cnt = calloc(nfiles, 8), *seen = calloc(nfiles, 8);
    for (uint64_t i = 0; i < fs->nflows; i++)
        cnt[flow_file(fs, i)]++;
    for (uint64_t i = 0; i < fs->nflows; i++) {
        uint32_t f = flow_file(fs, i);
        uint64_t ntest = (uint64_t)llround(0.2 * (double)cnt[f]);
        test[i] = seen[f]++ >= cnt[f] - ntest;
    }
    free(cnt);
    free(seen);
}

static void report(const dp_splitset *s, const int *y, const int *p, int n, int V)
{
    double wf = 0, mf = 0, vpn = 0;
    int ncls = 0;
    for (int c = 0; c < V; c++) {
        int tp = 0, fp = 0, fn = 0;
        for (int i = 0; i < n; i++) {
            tp += y[i] == c && p[i] == c;
            fp += y[i] != c && p[i] == c;
            fn += y[i] == c && p[i] != c;
        }
        if (tp + fn == 0)
            continue;
        double f1 = tp ? 2.0 * tp / (2.0 * tp + fp + fn) : 0;
        wf += f1 * (tp + fn) / n;
        mf += f1;
        ncls++;
    }
    for (int i = 0; i < n; i++)
        vpn += (strncmp(s->names[y[i]], "VPN", 3) == 0) == (strncmp(s->names[p[i]], "VPN", 3) == 0);
    printf("test flows %d: weighted F1 %.3f, macro F1 %.3f, VPN/non-VPN accuracy %.3f\n", n, wf, mf / ncls,
           vpn / n);
}

int main(int argc, char **argv)
{
    char eb[DP_ERRBUF_SIZE];
    if (argc < 2)
        return fprintf(stderr, "usage: %s SPLIT_DIR [seed [epochs [conv|flat|mlp]]]\n", argv[0]), 2;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    int epochs = argc > 3 ? atoi(argv[3]) : 40, BS = 64;
    dp_nn_set_threads(1);
    dp_splitset s;
    dp_flowset fs;
    dp_flowcfg cfg;
    dp_flowcfg_default(&cfg);
    if (dp_splitset_open(&s, argv[1], eb) != 0 || dp_flowset_build(&fs, &s, argv[1], &cfg, eb) != 0)
        return fprintf(stderr, "%s\n", eb), 1;
    float *X = dp_flowset_matrix(&fs, eb);
    if (!X)
        return fprintf(stderr, "%s\n", eb), 1;
    int n = (int)fs.nflows, L = dp_flowcfg_row_len(&cfg), V = s.nclasses;
    uint8_t *test = calloc(n, 1);
    time_split(&fs, test);
    int *tr = malloc(sizeof(int) * n), ntr = 0, *yb = malloc(sizeof(int) * BS);
    for (int i = 0; i < n; i++)
        if (!test[i])
            tr[ntr++] = i;
    dp_arch a;
    dp_arch_flow(&a, DP_TASK_TRAFFIC, V, cfg.npackets, dp_flowcfg_features(&cfg));
    if (argc > 4 && strstr(argv[4], "-wide")) /* encoder 128 -> 64, conv 64 channels */
        a.ext[2] = 128, a.ext[3] = 64, a.ext[4] = 64;
    if (argc > 4 && strncmp(argv[4], "conv", 4) != 0) { /* the stages of bench/flow_model.py */
        a.ext[4] = a.ext[5] = 0;
        if (!strcmp(argv[4], "mlp"))
            a.ext[2] = a.ext[3] = 0, a.nhidden = 2, a.hidden[0] = 256, a.hidden[1] = 128;
    }
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, s.names, seed, eb);
    if (!m)
        return fprintf(stderr, "%s\n", eb), 1;
    float *xb = malloc(sizeof(float) * BS * L);
    dp_rng r;
    dp_rng_seed(&r, seed);
    for (int ep = 0; ep < epochs; ep++) {
        for (int i = ntr - 1; i > 0; i--) {
            int j = (int)dp_rng_below(&r, (uint64_t)i + 1), t = tr[i];
            tr[i] = tr[j], tr[j] = t;
        }
        for (int b0 = 0; b0 < ntr; b0 += BS) {
            int nb = ntr - b0 < BS ? ntr - b0 : BS;
            for (int k = 0; k < nb; k++) {
                memcpy(xb + (size_t)k * L, X + (size_t)tr[b0 + k] * L, sizeof(float) * L);
                yb[k] = fs.flows[tr[b0 + k]].label;
            }
            if (!dp_model_forward(m, NULL, xb, nb, 1, &r, eb) || (dp_model_loss(m, yb, nb, NULL),
                dp_model_backward(m, yb, nb, eb)) != 0 || dp_model_adam_step(m, 1e-3f, 0.9f, 0.999f, 1e-8f, eb))
                return fprintf(stderr, "%s\n", eb), 1;
        }
    }
    int *y = malloc(sizeof(int) * n), *p = malloc(sizeof(int) * n), nt = 0;
    float lp[DP_MAX_CLASSES];
    for (int i = 0; i < n; i++) {
        if (!test[i])
            continue;
        dp_model_predict_flows(m, X + (size_t)i * L, 1, lp, eb);
        int best = 0;
        for (int c = 1; c < V; c++)
            best = lp[c] > lp[best] ? c : best;
        y[nt] = fs.flows[i].label, p[nt++] = best;
    }
    report(&s, y, p, nt, V);
    return 0;
}
