/* test_flowtrain: training and testing flow models on synthetic split
 * folders whose classes differ by packet sizes: the GBT (learns,
 * deterministic, --balance undersample), an MLP over flow rows through the
 * neural training loop (learns, validation by flow), --mask on a packet
 * model (stored; training with it equals training on masked vectors),
 * refusals, and the CLI (train --model gbt, test on a flow model); the
 * GBT's per-round training curves. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classify/dp_classify.h"
#include "dataset/dp_dataset.h"
#include "dataset/dp_npy.h"
#include "deeppacket.h"
#include "dp_test.h"
#include "eval/dp_eval.h"
#include "eval/dp_evalrun.h"
#include "eval/dp_flowtest.h"
#include "flow/dp_flowset.h"
#include "model/dp_model.h"
#include "packet/dp_mask.h"
#include "train/dp_curves.h"
#include "train/dp_train.h"
#include "util/dp_util.h"

#define NCLS 3
static const char *const names[NCLS] = {"Chat", "VPN: Chat", "Voip"};

/* IPv4/TCP vector of IP length len, ports sport -> dport, a few payload bytes. */
static void vec(uint8_t *v, int len, int sport, int dport, int ttl)
{
    memset(v, 0, DP_VEC_LEN);
    v[0] = 0x45;
    v[2] = (uint8_t)(len >> 8), v[3] = (uint8_t)len;
    v[8] = (uint8_t)ttl;
    v[9] = 6;
    v[20] = (uint8_t)(sport >> 8), v[21] = (uint8_t)sport;
    v[22] = (uint8_t)(dport >> 8), v[23] = (uint8_t)dport;
    v[32] = 0x50;
    for (int i = 40; i < 60 && i < len; i++)
        v[i] = (uint8_t)(i + sport);
}

/* nflows flows of 3..10 packets; flow f has class f % 3 (or, when skew,
 * class 0 for every flow f % 6 == 1 too), packet sizes 100 + 150 c + noise,
 * directions alternating, ports and TTLs random (a shortcut only masks
 * remove). with_meta 0 leaves meta.npy out. Returns the packet count. */
static int make_flows(const char *dir, int nflows, uint64_t seed, int skew, int with_meta)
{
    int cap = nflows * 10;
    uint8_t *v = calloc((size_t)cap, DP_VEC_LEN);
    int16_t *l = calloc((size_t)cap, 2);
    dp_meta *m = calloc((size_t)cap, sizeof(dp_meta));
    dp_rng r;
    dp_rng_seed(&r, seed);
    int n = 0;
    for (int f = 0; f < nflows; f++) {
        int c = f % NCLS;
        if (skew && f % 6 == 1)
            c = 0;
        int np = 3 + (int)dp_rng_below(&r, 8), sport = 1024 + (int)dp_rng_below(&r, 60000);
        for (int k = 0; k < np; k++, n++) {
            int dir_ = k % 2, len = 100 + 150 * c + (int)dp_rng_below(&r, 40);
            vec(v + (size_t)n * DP_VEC_LEN, len, dir_ ? 443 : sport, dir_ ? sport : 443, 32 + (int)dp_rng_below(&r, 200));
            l[n] = (int16_t)c;
            m[n] = (dp_meta){.file = 0, .index = (uint64_t)n, .time = f + 0.01 * k,
                             .flow = 1000 + (uint64_t)f + seed * 100000, .ipver = 4, .proto = 6,
                             .sport = (uint16_t)(dir_ ? 443 : sport), .dport = (uint16_t)(dir_ ? sport : 443)};
            m[n].saddr[0] = dir_ ? 20 : 10;
            m[n].daddr[0] = dir_ ? 10 : 20;
        }
    }
    char cls[256];
    snprintf(cls, sizeof cls, "0\t%s\n1\t%s\n2\t%s\n", names[0], names[1], names[2]);
    CHECK(dp_test_write_split(dir, v, l, with_meta ? m : NULL, (size_t)n, cls) == 0);
    free(v), free(l), free(m);
    return n;
}

static char *tp(const char *name)
{
    static char p[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dp_test_tmpdir(), name);
    return p[k];
}

static void gbt_opts(dp_train_opts *o, const char *dir, const char *model)
{
    dp_train_opts_default(o);
    o->train_dir = dir;
    o->model_path = model;
    o->task = DP_TASK_TRAFFIC;
    o->kind = DP_MODEL_GBT;
    o->quiet = 1;
    o->hp.threads = 1;
    o->flow.npackets = 4;
    o->flow.payload_bytes = 8;
    o->flow.mask = DP_MASK_DEFAULT;
    o->gbt_trees = 8;
    o->gbt_depth = 3;
}

/* Accuracy of a flow model file on a split folder (dp_flowtest); -1 on error. */
static double flow_accuracy(const char *model, const char *dir, uint64_t *nflows)
{
    char eb[DP_ERRBUF_SIZE];
    dp_model *m = dp_model_load(model, eb);
    dp_splitset s;
    double acc = -1;
    if (m && dp_splitset_open(&s, dir, eb) == 0) {
        dp_flowtest ft;
        if (dp_flowtest_run(&ft, m, model, &s, dir, eb) == 0) {
            acc = ft.eval.accuracy;
            if (nflows)
                *nflows = ft.nflows;
            dp_flowtest_free(&ft);
        }
        dp_splitset_close(&s);
    }
    if (acc < 0)
        fprintf(stderr, "  %s\n", eb);
    dp_model_free(m);
    return acc;
}

/* train --model gbt writes MODEL.curves.tsv (one row per round: XGBoost's
 * training mlogloss and accuracy) and .png; unweighted, the last round's
 * accuracy is the model's own accuracy on its training flows. */
static void test_gbt_curves(void)
{
    char eb[DP_ERRBUF_SIZE], p[700];
    char *tr = strdup(tp("gc_train")), *m1 = strdup(tp("gc.dpm"));
    make_flows(tr, 60, 3, 1, 1);
    dp_train_opts o;
    gbt_opts(&o, tr, m1);
    o.balance = DP_BALANCE_NONE;
    o.gbt_depth = 2;
    o.flow.groups = DP_FEAT_TIME; /* little to go on: an accuracy below 1 */
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    snprintf(p, sizeof p, "%s.curves.tsv", m1);
    dp_curves c = {0};
    CHECK_EQ_INT(dp_curves_read_tsv(&c, p, eb), 0);
    CHECK_EQ_INT(c.n, o.gbt_trees);
    if (c.n == o.gbt_trees) {
        CHECK(c.v[(c.n - 1) * 4] < c.v[0]); /* the training loss fell */
        CHECK(isnan(c.v[2]) && isnan(c.v[3])); /* no validation */
        double acc = flow_accuracy(m1, tr, NULL);
        CHECK(acc > 0.3 && acc < 0.95);
        CHECK_NEAR(c.v[(c.n - 1) * 4 + 1], acc, 2e-6);
    }
    dp_curves_free(&c);
    snprintf(p, sizeof p, "%s.curves.png", m1);
    int w = 0, h = 0;
    CHECK_EQ_INT(dp_test_png_size(p, &w, &h), 0);
    CHECK(w == DP_CURVES_PNG_W && h == DP_CURVES_PNG_H);
    free(tr), free(m1);
}

static void test_gbt_train_test(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *tr = strdup(tp("g_train")), *te = strdup(tp("g_test"));
    make_flows(tr, 90, 1, 0, 1);
    make_flows(te, 30, 2, 0, 1);
    dp_train_opts o;
    char *m1 = strdup(tp("g1.dpm")), *m2 = strdup(tp("g2.dpm"));
    gbt_opts(&o, tr, m1);
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    o.model_path = m2;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    CHECK(dp_test_same_file(m1, m2));
    dp_model *m = dp_model_load(m1, eb);
    CHECK(m != NULL);
    if (m) {
        CHECK(!strcmp(dp_model_kind_name(m), "gbt"));
        CHECK_EQ_INT(dp_model_flowcfg(m)->npackets, 4);
        CHECK_EQ_INT(dp_model_mask(m), DP_MASK_DEFAULT);
        CHECK_EQ_INT(dp_model_hparams(m)->train_samples, 90);
        dp_model_free(m);
    }
    /* column sampling: the seed matters, and the same seed repeats */
    o.gbt_colsample = 0.5f;
    o.model_path = tp("gc1.dpm");
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    o.model_path = tp("gc2.dpm");
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    CHECK(dp_test_same_file(tp("gc1.dpm"), tp("gc2.dpm")));
    o.hp.seed = 4321;
    o.model_path = tp("gc3.dpm");
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    CHECK(!dp_test_same_file(tp("gc1.dpm"), tp("gc3.dpm")));
    CHECK(!dp_test_same_file(m1, tp("gc1.dpm")));
    o.gbt_colsample = 1;
    uint64_t nf = 0;
    CHECK(flow_accuracy(m1, te, &nf) >= 0.95);
    CHECK_EQ_INT(nf, 30);
    /* sizes left out: the classes are indistinguishable, accuracy falls */
    o.flow.groups = DP_FEAT_ALL & ~(uint32_t)DP_FEAT_SIZES & ~(uint32_t)DP_FEAT_HEADER;
    o.model_path = tp("g_nosizes.dpm");
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    CHECK(flow_accuracy(o.model_path, te, NULL) < 0.8);
    free(tr), free(te), free(m1), free(m2);
}

/* Log-probabilities of a flow model file on a split folder's flow rows
 * [*n, 3] (malloc'd); NULL on error. */
static float *flow_logprobs(const char *model, const char *dir, int *n)
{
    char eb[DP_ERRBUF_SIZE];
    dp_model *m = dp_model_load(model, eb);
    dp_splitset s;
    float *lp = NULL;
    if (m && dp_splitset_open(&s, dir, eb) == 0) {
        dp_flowset fs;
        if (dp_flowset_build(&fs, &s, dir, dp_model_flowcfg(m), eb) == 0) {
            float *x = dp_flowset_matrix(&fs, eb);
            *n = (int)fs.nflows;
            lp = x ? malloc(sizeof(float) * fs.nflows * 3) : NULL;
            if (lp && dp_model_predict_flows(m, x, *n, lp, eb) != 0)
                free(lp), lp = NULL;
            free(x);
            dp_flowset_free(&fs);
        }
        dp_splitset_close(&s);
    }
    if (!lp)
        fprintf(stderr, "  %s\n", eb);
    dp_model_free(m);
    return lp;
}

/* --init MODEL for a gbt: MODEL's trees are kept and --trees more added; on
 * the same flows (no column sampling) 5 trees and then 3 more are the 8
 * trees of one run, and the model says 8. A model of another kind, other
 * flow rows or other classes is refused by name. */
static void test_gbt_init(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *tr = strdup(tp("gi_train")), *te = strdup(tp("gi_test")), *m5 = strdup(tp("gi5.dpm"));
    make_flows(tr, 90, 1, 0, 1);
    make_flows(te, 30, 2, 0, 1);
    dp_train_opts o;
    gbt_opts(&o, tr, m5);
    o.balance = DP_BALANCE_NONE, o.gbt_trees = 5;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    o.gbt_trees = 8, o.model_path = tp("gi8.dpm");
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    o.gbt_trees = 3, o.model_path = tp("gi53.dpm"), o.init_path = m5;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    int n8 = 0, n53 = 0;
    float *a = flow_logprobs(tp("gi8.dpm"), te, &n8), *b = flow_logprobs(tp("gi53.dpm"), te, &n53);
    CHECK(a && b && n8 == 30 && n53 == 30);
    if (a && b)
        CHECK(dp_test_max_abs_diff(a, b, 30 * 3) < 1e-5);
    dp_model *m = dp_model_load(tp("gi53.dpm"), eb);
    CHECK(m && dp_model_arch(m)->ext[2] == 8 && dp_model_hparams(m)->epochs_run == 8);
    dp_model_free(m);
    free(a), free(b);
    /* refusals: other flow rows, another model kind, other classes */
    o.flow.payload_bytes = 16;
    CHECK_EQ_INT(dp_train_run(&o, eb), -1);
    CHECK_STR_CONTAINS(eb, "gi5.dpm: its flow rows are --packets 4 --payload-bytes 8");
    CHECK_STR_CONTAINS(eb, "this run's --packets 4 --payload-bytes 16");
    o.flow.payload_bytes = 8;
    o.task = DP_TASK_APP;
    CHECK_EQ_INT(dp_train_run(&o, eb), -1);
    CHECK_STR_CONTAINS(eb, "gi5.dpm: a gbt traffic model; --init for gbt takes a gbt app model");
    free(tr), free(te), free(m5);
}

static void test_gbt_undersample(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *tr = strdup(tp("u_train"));
    make_flows(tr, 60, 3, 1, 1); /* class 0: 30 flows, classes 1, 2: 20, 10 */
    dp_train_opts o;
    gbt_opts(&o, tr, tp("u.dpm"));
    o.balance = DP_BALANCE_UNDERSAMPLE;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    dp_model *m = dp_model_load(o.model_path, eb);
    CHECK(m != NULL);
    if (m) {
        uint64_t n1 = dp_model_hparams(m)->train_samples;
        CHECK(n1 < 60);
        CHECK_EQ_INT(n1 % 3, 0);
        dp_model_free(m);
    }
    free(tr);
}

static void test_mlp_on_flows(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *tr = strdup(tp("n_train")), *te = strdup(tp("n_test"));
    make_flows(tr, 120, 4, 0, 1);
    make_flows(te, 30, 5, 0, 1);
    dp_train_opts o;
    dp_train_opts_default(&o);
    o.train_dir = tr;
    o.model_path = tp("mlp.dpm");
    o.kind = DP_MODEL_SAE;
    o.flows = 1;
    o.flow.npackets = 4;
    o.flow.payload_bytes = 0;
    o.flow.groups = DP_FEAT_SIZES;
    o.quiet = 1;
    o.hp.threads = 1;
    o.hp.epochs = 25;
    o.hp.lr = 3e-3f;
    o.hp.validation = 0.2f;
    o.hp.patience = 25;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    dp_model *m = dp_model_load(o.model_path, eb);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_INT(dp_model_input(m), DP_INPUT_FLOW);
        CHECK_EQ_INT(dp_model_arch(m)->in_len, 4 * 44);
        /* training rows are flows: 120 minus the validation flows */
        CHECK(dp_model_hparams(m)->train_samples < 120 && dp_model_hparams(m)->train_samples > 60);
        dp_model_free(m);
    }
    CHECK(flow_accuracy(o.model_path, te, NULL) >= 0.9);
    /* the CNN reads packet vectors only */
    o.kind = DP_MODEL_CNN;
    o.model_path = tp("cnnflows.dpm");
    CHECK_EQ_INT(dp_train_run(&o, eb), -1);
    CHECK_STR_CONTAINS(eb, "not flow rows");
    free(tr), free(te);
}

/* The flow NN (DP_MODEL_FLOW, src/model/dp_model_flow.c) through the
 * training loop: its default architecture from the run's N and F, saved and
 * reloaded, scores the synthetic test flows. */
static void test_flow_nn(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *tr = strdup(tp("fn_train")), *te = strdup(tp("fn_test"));
    make_flows(tr, 120, 6, 0, 1);
    make_flows(te, 30, 7, 0, 1);
    dp_train_opts o;
    dp_train_opts_default(&o);
    o.train_dir = tr;
    o.model_path = tp("flownn.dpm");
    o.kind = DP_MODEL_FLOW;
    o.flow.npackets = 4;
    o.flow.payload_bytes = 8;
    o.quiet = 1;
    o.hp.threads = 1;
    o.hp.epochs = 30;
    o.hp.batch = 16;
    o.hp.lr = 3e-3f;
    o.hp.patience = 30;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    dp_model *m = dp_model_load(o.model_path, eb);
    CHECK(m != NULL);
    if (m) {
        CHECK(!strcmp(dp_model_kind_name(m), "flow"));
        CHECK_EQ_INT(dp_model_input(m), DP_INPUT_FLOW);
        CHECK_EQ_INT(dp_model_arch(m)->ext[0], 4);
        CHECK_EQ_INT(dp_model_arch(m)->ext[1], 44 + 8);
        CHECK_EQ_INT(dp_model_arch(m)->in_len, 4 * 52);
        dp_model_free(m);
    }
    double acc = flow_accuracy(o.model_path, te, NULL);
    if (!(acc >= 0.9))
        fprintf(stderr, "  flow NN accuracy %.3f\n", acc);
    CHECK(acc >= 0.9);
    free(tr), free(te);
}

/* A flow-row run killed after some steps and resumed from its checkpoint
 * (model file version 2: the flow configuration travels with it) equals an
 * uninterrupted run; resuming with another flow configuration is refused. */
static void test_flow_resume(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *tr = strdup(tp("res_train")), *a = strdup(tp("resA.dpm")), *b = strdup(tp("resB.dpm"));
    make_flows(tr, 40, 12, 0, 1);
    dp_train_opts o;
    dp_train_opts_default(&o);
    o.train_dir = tr;
    o.model_path = a;
    o.kind = DP_MODEL_SAE;
    o.flows = 1;
    o.flow.npackets = 3;
    o.flow.payload_bytes = 2;
    o.quiet = 1;
    o.hp.threads = 1;
    o.hp.epochs = 3;
    o.hp.batch = 8;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    o.model_path = b;
    o.max_steps = 7; /* inside epoch 2 */
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    CHECK(access(b, F_OK) != 0);
    o.max_steps = 0;
    o.resume = 1;
    o.flow.npackets = 9; /* refused: not the checkpoint's configuration (before, ignored silently) */
    CHECK_EQ_INT(dp_train_run(&o, eb), -1);
    CHECK_STR_CONTAINS(eb, "cannot resume with --mask none, --packets 9");
    CHECK_STR_CONTAINS(eb, "--packets 3");
    o.flow.npackets = 3;
    if (dp_train_run(&o, eb) != 0)
        fprintf(stderr, "  %s\n", eb);
    CHECK(dp_test_same_file(a, b));
    free(tr), free(a), free(b);
}

/* Training with --mask equals training without on the masked vectors. */
static void test_packet_mask(void)
{
    char eb[DP_ERRBUF_SIZE], p[700];
    char *raw = strdup(tp("m_raw")), *pre = strdup(tp("m_pre"));
    int n = make_flows(raw, 20, 6, 0, 1);
    make_flows(pre, 20, 6, 0, 1);
    /* pre-mask the copy's vectors in place */
    snprintf(p, sizeof p, "%s/vectors.npy", pre);
    dp_npy a;
    CHECK(dp_npy_open(&a, p, eb) == 0);
    uint8_t *v = malloc((size_t)n * DP_VEC_LEN);
    memcpy(v, a.data, (size_t)n * DP_VEC_LEN);
    dp_npy_close(&a);
    for (int i = 0; i < n; i++)
        dp_mask_apply(DP_MASK_PORTS | DP_MASK_TTL, v + (size_t)i * DP_VEC_LEN);
    CHECK(dp_npy_save(p, DP_NPY_U1, 1, DP_VEC_LEN, v, (uint64_t)n, eb) == 0);
    free(v);
    dp_train_opts o;
    dp_train_opts_default(&o);
    o.kind = DP_MODEL_SAE;
    o.quiet = 1;
    o.hp.threads = 1;
    o.hp.epochs = 1;
    o.hp.pretrain_epochs = 0;
    o.train_dir = raw;
    o.model_path = tp("masked.dpm");
    o.flow.mask = DP_MASK_PORTS | DP_MASK_TTL;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    o.train_dir = pre;
    o.model_path = tp("premasked.dpm");
    o.flow.mask = 0;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    o.train_dir = raw;
    o.model_path = tp("unmasked.dpm");
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    dp_model *a1 = dp_model_load(tp("masked.dpm"), eb), *a2 = dp_model_load(tp("premasked.dpm"), eb);
    dp_model *a3 = dp_model_load(tp("unmasked.dpm"), eb);
    CHECK(a1 && a2 && a3);
    if (a1 && a2 && a3) {
        size_t np = dp_model_nparams(a1) * sizeof(float);
        CHECK_EQ_INT(dp_model_mask(a1), DP_MASK_PORTS | DP_MASK_TTL);
        CHECK_EQ_INT(dp_model_mask(a2), 0);
        CHECK(!memcmp(dp_model_params(a1), dp_model_params(a2), np));
        CHECK(memcmp(dp_model_params(a1), dp_model_params(a3), np) != 0);
    }
    dp_model_free(a1), dp_model_free(a2), dp_model_free(a3);
    free(raw), free(pre);
}

static void test_refusals(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *nometa = strdup(tp("r_nometa"));
    make_flows(nometa, 12, 7, 0, 0);
    dp_train_opts o;
    gbt_opts(&o, nometa, tp("r.dpm"));
    CHECK_EQ_INT(dp_train_run(&o, eb), -1);
    CHECK_STR_CONTAINS(eb, "r_nometa: no flow information (meta.npy)");
    CHECK(access(tp("r.dpm"), F_OK) != 0);
    /* flow testing of a packet model */
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_SAE, DP_TASK_TRAFFIC, NCLS);
    a.nhidden = 1, a.hidden[0] = 4;
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, (char *const *)names, 1, eb);
    dp_splitset s;
    CHECK(dp_splitset_open(&s, nometa, eb) == 0);
    dp_flowtest ft;
    CHECK_EQ_INT(dp_flowtest_run(&ft, m, "p.dpm", &s, nometa, eb), -1);
    CHECK_STR_CONTAINS(eb, "p.dpm is a sae packet model");
    dp_splitset_close(&s);
    dp_model_free(m);
    free(nometa);
}

/* VPN vs non-VPN: confusions inside one side count as right. */
static void test_vpn_fold(void)
{
    char eb[DP_ERRBUF_SIZE];
    const char *const nm[4] = {"Chat", "VPN: Chat", "VPN: Voip", "Voip"};
    int t[] = {0, 1, 1, 2, 2, 3, 3, 0}, p[] = {3, 2, 1, 1, 0, 3, 2, 0};
    dp_eval e;
    CHECK_EQ_INT(dp_eval_compute(&e, 4, nm, t, p, 8, eb), 0);
    CHECK_EQ_INT(e.has_vpn, 1);
    CHECK_EQ_INT(e.vpn_correct, 6); /* only 2->0 and 3->2 cross the sides */
    CHECK_NEAR(e.vpn_accuracy, 0.75, 1e-12);
    dp_eval_free(&e);
    const char *const plain[2] = {"Chat", "Voip"};
    CHECK_EQ_INT(dp_eval_compute(&e, 2, plain, t, t, 1, eb), 0);
    CHECK_EQ_INT(e.has_vpn, 0);
    dp_eval_free(&e);
}

/* Gives the second packet of the first `later` flows of split folder dir,
 * and the first packet of the flow after them, the next class's label: so
 * `later` + 1 flows carry two labels. 0, or -1. */
static int relabel_flows(const char *dir, int later)
{
    char eb[DP_ERRBUF_SIZE], path[700];
    dp_splitset s;
    if (dp_splitset_open(&s, dir, eb) != 0)
        return -1;
    int16_t *l = malloc((s.n ? s.n : 1) * sizeof *l);
    int fo = -1, k = 0;
    for (uint64_t i = 0; l && i < s.n; i++) {
        int first = i == 0 || dp_splitset_meta(&s, i).flow != dp_splitset_meta(&s, i - 1).flow;
        fo += first;
        k = first ? 0 : k + 1;
        l[i] = (int16_t)dp_splitset_label(&s, i);
        if ((fo < later && k == 1) || (fo == later && k == 0))
            l[i] = (int16_t)((l[i] + 1) % NCLS);
    }
    uint64_t n = s.n;
    dp_splitset_close(&s);
    snprintf(path, sizeof path, "%s/labels.npy", dir);
    int rc = l ? dp_npy_save(path, DP_NPY_I2, 2, 0, l, n, eb) : -1;
    free(l);
    return rc;
}

/* A flow model's report counts the test flows whose packets carry more
 * than one label (label_conflicts), as a packet model's flow level does;
 * such a flow's true label stays its first packet's (it used to say 0). */
static void test_label_conflicts(void)
{
    char eb[DP_ERRBUF_SIZE], p[700];
    char *tr = strdup(tp("lc_train")), *te = strdup(tp("lc_test"));
    char *model = strdup(tp("lc.dpm")), *out = strdup(tp("lc_out"));
    make_flows(tr, 60, 11, 0, 1);
    make_flows(te, 12, 12, 0, 1);
    CHECK_EQ_INT(relabel_flows(te, 4), 0);
    dp_train_opts o;
    gbt_opts(&o, tr, model);
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    dp_evalrun_opts eo;
    dp_evalrun_opts_init(&eo);
    eo.test_dir = te, eo.model_path = model, eo.report_dir = out, eo.threads = 1;
    dp_evalrun_result r;
    CHECK_EQ_INT(dp_evalrun(&eo, &r, eb), 0);
    CHECK_EQ_INT(r.flows.n, 12);
    dp_evalrun_result_free(&r);
    snprintf(p, sizeof p, "%s/flow_report.json", out);
    char *text = dp_read_file(p, NULL, eb);
    CHECK_STR_CONTAINS(text, "\"label_conflicts\": 5,");
    free(text);
    snprintf(p, sizeof p, "%s/report.html", out);
    text = dp_read_file(p, NULL, eb);
    CHECK_STR_CONTAINS(text, "5 flows (first packet&#39;s label used)");
    free(text);
    /* the flow of a relabelled first packet is of that packet's class */
    dp_model *m = dp_model_load(model, eb);
    dp_splitset s;
    memset(&s, 0, sizeof s);
    CHECK(m && dp_splitset_open(&s, te, eb) == 0);
    dp_flowtest ft;
    if (m && dp_flowtest_run(&ft, m, model, &s, te, eb) == 0) {
        CHECK_EQ_INT(ft.conflicts, 5);
        CHECK_EQ_INT(ft.label[4], (4 % NCLS + 1) % NCLS);
        CHECK_EQ_INT(ft.label[3], 3 % NCLS);
        dp_flowtest_free(&ft);
    }
    dp_splitset_close(&s);
    dp_model_free(m);
    free(tr), free(te), free(model), free(out);
}

/* test --save-logprobs on a flow model: flow_logprobs.npy [flows, classes]
 * in flows.npy's order, each row log-probabilities whose argmax is the
 * flow's verdict in flows.npy. */
static void check_flow_logprobs(const char *out, int nflows, int nclasses)
{
    char p[700], eb[DP_ERRBUF_SIZE];
    dp_npy lp, fl;
    snprintf(p, sizeof p, "%s/flow_logprobs.npy", out);
    CHECK_EQ_INT(dp_npy_open(&lp, p, eb), 0);
    CHECK_EQ_INT(dp_npy_expect(&lp, p, DP_NPY_F4, 4, (size_t)nclasses, eb), 0);
    snprintf(p, sizeof p, "%s/flows.npy", out);
    CHECK_EQ_INT(dp_npy_open(&fl, p, eb), 0);
    CHECK(lp.shape[0] == (uint64_t)nflows && fl.shape[0] == (uint64_t)nflows);
    for (int i = 0; i < nflows && lp.data && fl.data; i++) {
        const float *r = (const float *)lp.data + (size_t)i * nclasses;
        int16_t pred;
        memcpy(&pred, fl.data + (size_t)i * 20 + 10, 2); /* flow u8, label i2, pred i2, packets u8 */
        double z = 0;
        int best = 0;
        for (int c = 0; c < nclasses; c++) {
            z += exp(r[c]);
            best = r[c] > r[best] ? c : best;
        }
        CHECK(fabs(z - 1) < 1e-4);
        CHECK_EQ_INT(best, pred);
    }
    dp_npy_close(&lp);
    dp_npy_close(&fl);
}

static void test_cli(void)
{
    const char *bin = dp_test_cli();
    if (!bin)
        SKIP("no deeppacket binary in $BUILD (run through make check)");
    char cmd[4096], eb[DP_ERRBUF_SIZE];
    char *tr = strdup(tp("c_train")), *te = strdup(tp("c_test")), *nm = strdup(tp("c_nometa"));
    char *model = strdup(tp("c.dpm")), *out = strdup(tp("c_out")), *log = strdup(tp("c.log"));
    make_flows(tr, 60, 8, 0, 1);
    make_flows(te, 15, 9, 0, 1);
    make_flows(nm, 15, 9, 0, 0);
    snprintf(cmd, sizeof cmd, "'%s' train -d '%s' -m '%s' -t traffic --mask ports,tll 2> '%s'", bin, tr, model, log);
    CHECK_EQ_INT(dp_test_system(cmd), 2);
    char *text = dp_read_file(log, NULL, eb);
    CHECK_STR_CONTAINS(text, "unknown field 'tll'");
    free(text);
    snprintf(cmd, sizeof cmd, "'%s' train --model gbt -d '%s' -m '%s' -t traffic --packets 4 --payload-bytes 8 "
             "--trees 5 --depth 3 -j 1 -q 2> '%s'", bin, tr, model, log);
    CHECK_EQ_INT(dp_test_system(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' -o '%s' > '%s' 2>&1", bin, te, model, out, log);
    CHECK_EQ_INT(dp_test_system(cmd), 0);
    text = dp_read_file(log, NULL, eb);
    CHECK_STR_CONTAINS(text, "flow level (15 flows");
    CHECK_STR_CONTAINS(text, "gbt flow model");
    CHECK_STR_CONTAINS(text, "VPN vs non-VPN accuracy: ");
    free(text);
    char p[700];
    snprintf(p, sizeof p, "%s/flow_report.json", out);
    text = dp_read_file(p, NULL, eb);
    CHECK_STR_CONTAINS(text, "\"vpn_accuracy\": ");
    CHECK(text && !strstr(text, "\"vpn_accuracy\": null"));
    CHECK_STR_CONTAINS(text, "\"model_kind\": \"gbt\"");
    free(text);
    /* report.html: the flow level only, as flow_report.json says */
    if (access("/usr/bin/python3", X_OK) == 0) {
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/check_html.py '%s/report.html' '%s' 2>&1", out, out);
        char res[4096];
        CHECK_EQ_INT(dp_test_sh(cmd, res, sizeof res), 0);
        CHECK_STR_CONTAINS(res, "OK 1");
    }
    snprintf(p, sizeof p, "%s/flow_logprobs.npy", out);
    CHECK(access(p, F_OK) != 0); /* only when asked */
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' -o '%s' --save-logprobs > '%s' 2>&1", bin, te, model, out,
             log);
    CHECK_EQ_INT(dp_test_system(cmd), 0);
    check_flow_logprobs(out, 15, 3);
    char ores[8192]; /* the independent oracle (sklearn), verdicts by probability included */
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/check_report.py '%s' '%s' 2>&1", out, te);
    CHECK_EQ_INT(dp_test_sh(cmd, ores, sizeof ores), 0);
    if (!strstr(ores, "SKIP"))
        CHECK_STR_CONTAINS(ores, ": 0 mismatches");
    dp_model *gm = dp_model_load(model, eb); /* --balance auto is weight for a gbt, and recorded */
    CHECK(gm && dp_model_hparams(gm)->balance == DP_BALANCE_WEIGHT);
    dp_model_free(gm);
    snprintf(p, sizeof p, "%s/flow_report.json", out);
    /* --train-set: the training flows tested against themselves are all duplicates */
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' -o '%s' --train-set '%s' > '%s' 2>&1", bin, tr, model, out,
             tr, log);
    CHECK_EQ_INT(dp_test_system(cmd), 0);
    text = dp_read_file(log, NULL, eb);
    CHECK_STR_CONTAINS(text, "without duplicate sequences: 60 of 60 test flows dropped");
    free(text);
    text = dp_read_file(p, NULL, eb);
    CHECK_STR_CONTAINS(text, "\"dropped_flows\": 60");
    free(text);
    snprintf(cmd, sizeof cmd, "'%s' test -d '%s' -m '%s' -o '%s' > '%s' 2>&1", bin, nm, model, out, log);
    CHECK_EQ_INT(dp_test_system(cmd), 1);
    text = dp_read_file(log, NULL, eb);
    CHECK_STR_CONTAINS(text, "no flow information (meta.npy)");
    free(text);
    /* a flow model decides from its own N: another --first is refused, not ignored */
    snprintf(cmd, sizeof cmd, "'%s' classify -m '%s' -r data/corpus/chat_01.pcap --first 7 > '%s' 2>&1", bin, model,
             log);
    CHECK_EQ_INT(dp_test_system(cmd), 2);
    text = dp_read_file(log, NULL, eb);
    CHECK_STR_CONTAINS(text, "it decides from the first 4 packets of a flow, its own N (train --packets), not --first 7");
    free(text);
    free(tr), free(te), free(nm), free(model), free(out), free(log);
}

/* ---- classify and the C API ------------------------------------------------ */

typedef struct got {
    int n;
    uint64_t flow[64]; /* the frame index of the flow's first packet */
    int top[64], npackets[64], reason[64];
    double prob[64];
} got;

static void on_verdict(void *ctx, const dp_cls_result *r)
{
    got *g = ctx;
    if (g->n < 64) {
        g->flow[g->n] = r->index, g->top[g->n] = r->top[0], g->prob[g->n] = r->prob[0];
        g->npackets[g->n] = (int)r->npackets, g->reason[g->n] = (int)r->reason;
    }
    g->n++;
}

/* The frame (raw IPv4) of split row i: its vector with the real addresses. */
static size_t frame_of(const dp_splitset *s, uint64_t i, uint8_t *fr)
{
    const uint8_t *v = dp_splitset_vector(s, i);
    dp_meta m = dp_splitset_meta(s, i);
    size_t len = (size_t)v[2] << 8 | v[3];
    memcpy(fr, v, len);
    memcpy(fr + 12, m.saddr, 4);
    memcpy(fr + 16, m.daddr, 4);
    return len;
}

/* The class a flow model gives flow f of fs on its own (row through
 * dp_model_predict_flows), with that class's log-probability in *lp_best. */
static int direct_verdict(dp_model *m, const dp_flowset *fs, uint64_t f, float *row, float *lp_best)
{
    float lp[8];
    char eb[DP_ERRBUF_SIZE];
    dp_flowset_row(fs, f, row);
    CHECK_EQ_INT(dp_model_predict_flows(m, row, 1, lp, eb), 0);
    int best = 0;
    for (int k = 1; k < dp_model_nclasses(m); k++)
        if (lp[k] > lp[best])
            best = k;
    *lp_best = lp[best];
    return best;
}

/* The index in g of the verdict on the flow whose first row is row, or -1. */
static int verdict_on(const got *g, uint64_t row)
{
    int v = -1;
    for (int k = 0; k < g->n && k < 64; k++)
        if (g->flow[k] == row)
            v = k;
    return v;
}

/* classify --per flow with a flow model and deeppacket_classify_flow give,
 * for each flow of a capture, what the model says about the flow's row in
 * the split (same packets); packets past N skip the model. */
static void test_classify_flows(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *tr = strdup(tp("k_train")), *te = strdup(tp("k_test"));
    make_flows(tr, 60, 10, 0, 1);
    make_flows(te, 12, 11, 0, 1);
    dp_train_opts o;
    gbt_opts(&o, tr, tp("k.dpm"));
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    dp_model *m = dp_model_load(o.model_path, eb);
    dp_splitset s;
    dp_flowset fs;
    CHECK(m && dp_splitset_open(&s, te, eb) == 0);
    if (!m)
        return;
    CHECK_EQ_INT(dp_flowset_build(&fs, &s, te, dp_model_flowcfg(m), eb), 0);
    dp_cls_opts co;
    dp_cls_opts_default(&co);
    co.per_flow = 0;
    CHECK(dp_classifier_new(m, &co, on_verdict, NULL, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "one verdict per flow");
    co.per_flow = 1;
    got g = {0};
    dp_classifier *c = dp_classifier_new(m, &co, on_verdict, &g, eb);
    CHECK(c != NULL);
    deeppacket *dp = deeppacket_open(o.model_path, eb);
    CHECK(dp && deeppacket_wants_flows(dp) && deeppacket_flow_packets(dp) == 4);
    if (!c || !dp)
        return;
    dp_classifier_begin(c, "k");
    static uint8_t fr[600][DP_VEC_LEN];
    size_t caplen[600];
    double times[600];
    uint64_t expect_ignored = 0;
    for (uint64_t i = 0; i < s.n && i < 600; i++) { /* rows are in capture order */
        caplen[i] = frame_of(&s, i, fr[i]);
        times[i] = dp_splitset_meta(&s, i).time;
        dp_frame f = {fr[i], (uint32_t)caplen[i], (uint32_t)caplen[i], times[i], DP_LINKTYPE_RAW, i};
        CHECK_EQ_INT(dp_classifier_frame(c, &f, eb), 0);
    }
    CHECK_EQ_INT(dp_classifier_finish(c, DP_FLOW_END, eb), 0);
    CHECK_EQ_INT(g.n, (int)fs.nflows);
    float *row = malloc((size_t)dp_flowcfg_row_len(&fs.cfg) * sizeof(float)), lp_best;
    uint64_t start = 0;
    for (uint64_t f = 0; f < fs.nflows && f < 64; f++) {
        const dp_flowinfo *fi = &fs.flows[f];
        expect_ignored += fi->npackets - fi->nrows;
        int best = direct_verdict(m, &fs, f, row, &lp_best), v = verdict_on(&g, fs.rows[fi->first]);
        CHECK(v >= 0);
        if (v < 0) {
            start += fi->npackets;
            continue;
        }
        CHECK_EQ_INT(g.top[v], best);
        CHECK_NEAR(g.prob[v], exp(lp_best), 1e-5);
        CHECK_EQ_INT(g.npackets[v], fi->nrows);
        CHECK_EQ_INT(g.reason[v], fi->npackets >= 4 ? DP_FLOW_COMPLETE : DP_FLOW_END);
        /* the C API on the flow's frames (rows start..start+npackets) */
        const uint8_t *frames[16];
        for (uint32_t k = 0; k < fi->npackets; k++)
            frames[k] = fr[start + k];
        deeppacket_result r;
        CHECK_EQ_INT(deeppacket_classify_flow(dp, DP_LINKTYPE_RAW, frames, caplen + start, times + start,
                                              (int)fi->npackets, &r, eb), 0);
        CHECK_EQ_INT(r.class_id, best);
        CHECK_EQ_INT(r.kept, fi->nrows);
        CHECK_NEAR(r.probability, exp(lp_best), 1e-5);
        start += fi->npackets;
    }
    CHECK_EQ_INT(dp_classifier_stats(c)->ignored, expect_ignored);
    deeppacket_result r;
    CHECK_EQ_INT(deeppacket_classify(dp, DP_LINKTYPE_RAW, fr[0], caplen[0], &r, eb), -1);
    CHECK_STR_CONTAINS(eb, "classifies flows");
    CHECK_EQ_INT(deeppacket_classify_flow(dp, DP_LINKTYPE_RAW, NULL, NULL, NULL, 0, &r, eb), 0);
    CHECK_EQ_INT(r.kept, 0);
    CHECK_EQ_INT(r.class_id, -1);
    free(row);
    deeppacket_close(dp);
    dp_classifier_free(c);
    dp_flowset_free(&fs);
    dp_splitset_close(&s);
    dp_model_free(m);
    free(tr), free(te);
}

int main(void)
{
    dp_test_prog = "test_flowtrain";
    DP_RUN(test_gbt_train_test);
    DP_RUN(test_gbt_curves);
    DP_RUN(test_gbt_init);
    DP_RUN(test_gbt_undersample);
    DP_RUN(test_mlp_on_flows);
    DP_RUN(test_flow_nn);
    DP_RUN(test_flow_resume);
    DP_RUN(test_packet_mask);
    DP_RUN(test_refusals);
    DP_RUN(test_vpn_fold);
    DP_RUN(test_label_conflicts);
    DP_RUN(test_classify_flows);
    DP_RUN(test_cli);
    dp_eval_plot_release(); /* training curves drew text: cairo's and fontconfig's caches */
    return dp_test_end();
}
