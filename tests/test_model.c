/* test_model: the CNN and SAE against PyTorch 1.13 (fixtures from
 * tools/make_model_fixtures.py), parameter counts, the model file (round
 * trip, corrupt / truncated / wrong magic / wrong version refused).
 *
 * Tolerances: logits and log-probabilities 1e-4 absolute (values ~0.1-3),
 * loss 1e-5 relative, gradients 2e-4 of the tensor's largest |gradient|
 * plus 1e-6 (float32 sums in a different order; measured differences are far
 * smaller), the ten Adam losses 2e-4 absolute; the inference fast path
 * against the plain forward 1e-5 (measured 2.4e-7). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_test.h"
#include "model/dp_model.h"
#include "model/dp_model_train.h"
#include "dp_fixture.h"
#include "nn/dp_nn.h"

static float *fix_floats(const dp_fix_rec *r)
{
    float *p = malloc(r->numel * sizeof(float) + 1);
    memcpy(p, r->data, r->numel * sizeof(float));
    return p;
}

/* Builds the fixture's model and loads its initial weights. */
static dp_model *fixture_model(const dp_fix *f, char *eb)
{
    const dp_fix_rec *ar = dp_fix_get(f, "arch");
    if (!ar)
        return NULL;
    int32_t a[14];
    memcpy(a, ar->data, sizeof a);
    dp_arch arch;
    dp_arch_default(&arch, a[0], a[1], a[2]);
    const dp_fix_rec *er = dp_fix_get(f, "ext");
    if (a[0] == DP_MODEL_FLOW && er && er->numel == 8) {
        int32_t ext[8];
        memcpy(ext, er->data, sizeof ext);
        dp_arch_flow(&arch, a[1], a[2], ext[0], ext[1]);
        for (int i = 0; i < 8; i++)
            arch.ext[i] = ext[i];
    }
    if (a[0] == DP_MODEL_CNN)
        arch.c1 = a[3], arch.c2 = a[4];
    arch.nhidden = a[5];
    for (int i = 0; i < a[5]; i++)
        arch.hidden[i] = a[6 + i];
    arch.dropout = 0;
    dp_model *m = dp_model_create(&arch, a[1], NULL, 1, eb);
    if (!m)
        return NULL;
    for (int i = 0; i < dp_model_ntensors(m); i++) {
        const char *name;
        size_t off, numel;
        dp_model_tensor(m, i, &name, &off, &numel, NULL);
        char key[80];
        snprintf(key, sizeof key, "init.%s", name);
        const dp_fix_rec *r = dp_fix_get(f, key);
        if (!r || r->numel != numel) {
            fprintf(stderr, "  fixture tensor %s missing or wrong size\n", key);
            dp_model_free(m);
            return NULL;
        }
        memcpy(dp_model_params(m) + off, r->data, numel * sizeof(float));
    }
    return m;
}

/* A fixture's input batch: byte vectors "x", or float flow rows "xf" (flow
 * models); labels "y" for `steps` batches of B. */
typedef struct fix_batch {
    const uint8_t *x;
    float *xf;
    int32_t *y;
    int steps, B, V;
    size_t in_len;
} fix_batch;

/* Every tensor's gradient against the fixture's "grad.NAME", relative to the
 * largest gradient of the tensor (which must not be zero). */
static void check_fixture_grads(dp_model *m, const dp_fix *f, const char *file)
{
    const float *g = dp_model_grads(m);
    for (int i = 0; i < dp_model_ntensors(m); i++) {
        const char *name;
        size_t off, numel;
        dp_model_tensor(m, i, &name, &off, &numel, NULL);
        char key[80];
        snprintf(key, sizeof key, "grad.%s", name);
        const dp_fix_rec *r = dp_fix_get(f, key);
        CHECK(r && r->numel == numel);
        if (!r || r->numel != numel)
            continue;
        float *wg = fix_floats(r);
        double gmax = 0, d = dp_test_max_abs_diff(g + off, wg, numel);
        for (size_t k = 0; k < numel; k++)
            gmax = fmax(gmax, fabs(wg[k]));
        if (!(d <= 2e-4 * gmax + 1e-6))
            fprintf(stderr, "  %s %s: max |grad diff| %.3g, max |grad| %.3g\n", file, name, d, gmax);
        CHECK(d <= 2e-4 * gmax + 1e-6);
        CHECK(gmax > 0);
        free(wg);
    }
}

/* Ten Adam steps, one batch each, against the fixture's loss trajectory
 * "adam_losses", then the parameters against its "final.NAME" tensors. */
static void check_fixture_adam(dp_model *m, const dp_fix *f, const fix_batch *b, dp_rng *rng,
                               const char *file)
{
    char eb[DP_ERRBUF_SIZE];
    float *al = fix_floats(dp_fix_get(f, "adam_losses"));
    int lab[64];
    for (int s = 0; s < b->steps; s++) {
        for (int k = 0; k < b->B; k++)
            lab[k] = b->y[s * b->B + k];
        size_t at = (size_t)s * b->B * b->in_len;
        CHECK(dp_model_forward(m, b->xf ? NULL : b->x + at, b->xf ? b->xf + at : NULL, b->B, 1, rng,
                               eb) != NULL);
        float l = dp_model_loss(m, lab, b->B, NULL);
        if (!(fabs(l - al[s]) <= 2e-4))
            fprintf(stderr, "  %s step %d: loss %.7f, torch %.7f\n", file, s, l, al[s]);
        CHECK_NEAR(l, al[s], 2e-4);
        dp_model_backward(m, lab, b->B, eb);
        dp_model_adam_step(m, 1e-3f, 0.9f, 0.999f, 1e-8f, eb);
    }
    for (int i = 0; i < dp_model_ntensors(m); i++) {
        const char *name;
        size_t off, numel;
        dp_model_tensor(m, i, &name, &off, &numel, NULL);
        char key[80];
        snprintf(key, sizeof key, "final.%s", name);
        const dp_fix_rec *r = dp_fix_get(f, key);
        if (!r)
            continue;
        float *wp = fix_floats(r);
        CHECK_NEAR(dp_test_max_abs_diff(dp_model_params(m) + off, wp, numel), 0, 1e-5);
        free(wp);
    }
    free(al);
}

/* One PyTorch fixture (tools/make_model_fixtures.py) against the C model built from
 * its initial weights: logits, loss, every gradient, predict, then ten Adam
 * steps and the final parameters. */
static void check_fixture(const char *file)
{
    char path[256], eb[DP_ERRBUF_SIZE];
    snprintf(path, sizeof path, "tests/fixtures/%s", file);
    dp_fix f;
    if (dp_fix_load(&f, path, eb) != 0) {
        fprintf(stderr, "  %s\n", eb);
        CHECK(0);
        return;
    }
    dp_model *m = fixture_model(&f, eb);
    CHECK(m != NULL);
    if (!m) {
        dp_fix_free(&f);
        return;
    }
    /* 1. the batches */
    fix_batch b = {0};
    const dp_fix_rec *xr = dp_fix_get(&f, "x"), *yr = dp_fix_get(&f, "y");
    if (!xr) {
        xr = dp_fix_get(&f, "xf");
        b.xf = fix_floats(xr);
    }
    b.steps = (int)xr->shape[0], b.B = (int)xr->shape[1], b.V = dp_model_nclasses(m);
    b.in_len = (size_t)dp_model_arch(m)->in_len;
    b.x = b.xf ? NULL : xr->data;
    b.y = malloc(yr->numel * sizeof(int32_t));
    memcpy(b.y, yr->data, yr->numel * sizeof(int32_t));
    int lab[64];
    for (int k = 0; k < b.B; k++)
        lab[k] = b.y[k];

    /* 2. logits, loss, gradients */
    dp_rng rng;
    dp_rng_seed(&rng, 1);
    const float *lg = dp_model_forward(m, b.x, b.xf, b.B, 1, &rng, eb);
    CHECK(lg != NULL);
    float *want = fix_floats(dp_fix_get(&f, "logits"));
    CHECK_NEAR(lg ? dp_test_max_abs_diff(lg, want, (size_t)b.B * b.V) : 1, 0, 1e-4);
    float loss = dp_model_loss(m, lab, b.B, NULL);
    float *wl = fix_floats(dp_fix_get(&f, "loss"));
    CHECK_NEAR(loss, wl[0], 1e-5 * fabs(wl[0]));
    CHECK(dp_model_backward(m, lab, b.B, eb) == 0);
    check_fixture_grads(m, &f, file);

    /* 3. predict == log_softmax of the eval forward (no dropout in the fixture) */
    float *lp = malloc(sizeof(float) * b.B * b.V);
    if (b.xf)
        CHECK(dp_model_predict_flows(m, b.xf, b.B, lp, eb) == 0);
    else
        CHECK(dp_model_predict(m, b.x, b.B, lp, eb) == 0);
    float *wlp = fix_floats(dp_fix_get(&f, "logprobs"));
    CHECK_NEAR(dp_test_max_abs_diff(lp, wlp, (size_t)b.B * b.V), 0, 1e-4);

    /* 4. ten Adam steps and the parameters after them */
    check_fixture_adam(m, &f, &b, &rng, file);
    free(b.xf);
    free(b.y);
    free(lp);
    free(wlp);
    free(want);
    free(wl);
    dp_model_free(m);
    dp_fix_free(&f);
}

static void test_torch_cnn_app(void) { check_fixture("model_cnn_app.bin"); }
static void test_torch_cnn_traffic(void) { check_fixture("model_cnn_traffic.bin"); }
static void test_torch_sae(void) { check_fixture("model_sae.bin"); }
/* the flow classifier, with its conv stage over packets and without it */
static void test_torch_flow(void) { check_fixture("model_flow.bin"); }
static void test_torch_flow_flat(void) { check_fixture("model_flow_flat.bin"); }
/* no per-packet stage (ext E1 = E2 = C = K = 0): an MLP over the whole row */
static void test_torch_flow_mlp(void) { check_fixture("model_flow_mlp.bin"); }

/* Full-size parameter counts, as PyTorch counts them for bench/torch_model.py
 * (sum of p.numel()): 10,107,315 app CNN (15 classes), 3,507,311 traffic CNN
 * (11 classes), 806,611 SAE (11 classes). */
static void test_param_counts(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_CNN, DP_TASK_APP, 15);
    dp_model *m = dp_model_create(&a, DP_TASK_APP, NULL, 9876, eb);
    CHECK(m != NULL);
    CHECK_EQ_INT(dp_model_nparams(m), 10107315);
    int shape[4];
    const char *name;
    dp_model_tensor(m, 4, &name, NULL, NULL, shape);
    CHECK(!strcmp(name, "fc1.weight"));
    CHECK_EQ_INT(shape[1], 49400);
    dp_model_free(m);
    dp_arch_default(&a, DP_MODEL_CNN, DP_TASK_TRAFFIC, 11);
    m = dp_model_create(&a, DP_TASK_TRAFFIC, NULL, 9876, eb);
    CHECK_EQ_INT(dp_model_nparams(m), 3507311);
    dp_model_tensor(m, 4, &name, NULL, NULL, shape);
    CHECK_EQ_INT(shape[1], 16600);
    dp_model_free(m);
    dp_arch_default(&a, DP_MODEL_SAE, DP_TASK_TRAFFIC, 11);
    m = dp_model_create(&a, DP_TASK_TRAFFIC, NULL, 9876, eb);
    CHECK_EQ_INT(dp_model_nparams(m), 806611);
    CHECK(!strcmp(dp_model_kind_name(m), "sae"));
    dp_model_free(m);
}

/* PyTorch-default init: every tensor within +-1/sqrt(fan_in), spread over it,
 * and seeded (same seed, same weights; other seed, other weights). */
static void test_init(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_CNN, DP_TASK_TRAFFIC, 11);
    dp_model *m1 = dp_model_create(&a, DP_TASK_TRAFFIC, NULL, 5, eb);
    dp_model *m2 = dp_model_create(&a, DP_TASK_TRAFFIC, NULL, 5, eb);
    dp_model *m3 = dp_model_create(&a, DP_TASK_TRAFFIC, NULL, 6, eb);
    size_t n = dp_model_nparams(m1);
    CHECK(!memcmp(dp_model_params(m1), dp_model_params(m2), n * sizeof(float)));
    CHECK(memcmp(dp_model_params(m1), dp_model_params(m3), n * sizeof(float)) != 0);
    double fan[] = {5, 5, 800, 800, 16600, 16600}; /* conv2: 200 x k4 */
    for (int i = 0; i < 6; i++) {
        size_t off, numel;
        dp_model_tensor(m1, i, NULL, &off, &numel, NULL);
        double bound = 1 / sqrt(fan[i]), mx = 0;
        for (size_t k = 0; k < numel; k++)
            mx = fmax(mx, fabs(dp_model_params(m1)[off + k]));
        CHECK(mx <= bound * (1 + 1e-6));
        CHECK(mx > 0.9 * bound);
    }
    dp_model_free(m1);
    dp_model_free(m2);
    dp_model_free(m3);
}

static dp_model *small_model(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_CNN, DP_TASK_TRAFFIC, 3);
    a.c1 = a.c2 = 3;
    char *names[3] = {"Chat", "Email", "VPN: Voip"};
    return dp_model_create(&a, DP_TASK_TRAFFIC, names, 42, eb);
}

static char *write_model(const char *name, size_t *len)
{
    static char path[512];
    char eb[DP_ERRBUF_SIZE];
    dp_model *m = small_model();
    snprintf(path, sizeof path, "%s/%s", dp_test_tmpdir(), name);
    dp_model_hparams(m)->epochs_run = 7;
    CHECK(dp_model_save(m, path, eb) == 0);
    dp_model_free(m);
    char *buf = dp_read_file(path, len, eb);
    CHECK(buf != NULL);
    return buf;
}

/* Format version 3 stores the class balancing training used (field 20b, a
 * u32 at byte 212); a version-2 file (the same bytes without it) still
 * loads, with the balance unknown (-1) and the same weights. */
static void test_file_v2_balance(void)
{
    char eb[DP_ERRBUF_SIZE], path[512], path2[512];
    dp_model *m = small_model();
    snprintf(path, sizeof path, "%s/v3.dpm", dp_test_tmpdir());
    snprintf(path2, sizeof path2, "%s/v2.dpm", dp_test_tmpdir());
    dp_model_hparams(m)->balance = 3;
    CHECK(dp_model_save(m, path, eb) == 0);
    size_t len = 0;
    uint8_t *b = (uint8_t *)dp_read_file(path, &len, eb);
    CHECK(b && len > 300 && b[8] == 3 && b[212] == 3 && b[213] == 0);
    dp_model *l = dp_model_load(path, eb);
    CHECK(l && dp_model_hparams(l)->balance == 3);
    dp_model_free(l);
    if (b) { /* version 2: drop field 20b, fix the version and the checksum */
        memmove(b + 212, b + 216, len - 216);
        len -= 4;
        b[8] = 2;
        uint64_t h = dp_fnv1a(b, len - 8, DP_FNV_INIT);
        for (int i = 0; i < 8; i++)
            b[len - 8 + i] = (uint8_t)(h >> (8 * i));
        CHECK(dp_write_file_atomic(path2, b, len, eb) == 0);
        l = dp_model_load(path2, eb);
        CHECK(l != NULL);
        if (l) {
            CHECK_EQ_INT(dp_model_hparams(l)->balance, -1);
            CHECK(!memcmp(dp_model_params(l), dp_model_params(m), dp_model_nparams(m) * sizeof(float)));
        }
        dp_model_free(l);
    }
    free(b);
    dp_model_free(m);
}

static void test_file_roundtrip(void)
{
    char eb[DP_ERRBUF_SIZE], path[512];
    dp_model *m = small_model();
    snprintf(path, sizeof path, "%s/rt.dpm", dp_test_tmpdir());
    dp_model_hparams(m)->epochs_run = 7;
    dp_model_hparams(m)->lr = 5e-4f;
    CHECK(dp_model_save(m, path, eb) == 0);
    dp_model *l = dp_model_load(path, eb);
    CHECK(l != NULL);
    if (!l) {
        fprintf(stderr, "  %s\n", eb);
        dp_model_free(m);
        return;
    }
    CHECK_EQ_INT(dp_model_nparams(l), dp_model_nparams(m));
    CHECK(!memcmp(dp_model_params(l), dp_model_params(m), dp_model_nparams(m) * sizeof(float)));
    CHECK_EQ_INT(dp_model_task(l), DP_TASK_TRAFFIC);
    CHECK_EQ_INT(dp_model_nclasses(l), 3);
    CHECK(!strcmp(dp_model_class_name(l, 2), "VPN: Voip"));
    CHECK(!strcmp(dp_model_class_name(l, 3), "?"));
    CHECK(!strcmp(dp_model_kind_name(l), "cnn"));
    CHECK_EQ_INT(dp_model_arch(l)->c1, 3);
    CHECK_EQ_INT(dp_model_hparams(l)->epochs_run, 7);
    CHECK(dp_model_hparams(l)->lr == 5e-4f);
    /* same predictions; any B (chunks of 64) */
    int B = 70;
    uint8_t *x = malloc((size_t)B * DP_VEC_LEN);
    dp_rng r;
    dp_rng_seed(&r, 3);
    for (size_t i = 0; i < (size_t)B * DP_VEC_LEN; i++)
        x[i] = (uint8_t)dp_rng_below(&r, 256);
    float p1[70 * 3], p2[70 * 3], p3[3];
    CHECK(dp_model_predict(m, x, B, p1, eb) == 0);
    CHECK(dp_model_predict(l, x, B, p2, eb) == 0);
    CHECK(!memcmp(p1, p2, sizeof p1));
    CHECK(dp_model_predict(l, x + 69 * DP_VEC_LEN, 1, p3, eb) == 0);
    for (int c = 0; c < 3; c++)
        CHECK_NEAR(p3[c], p1[69 * 3 + c], 1e-5);
    double s = 0;
    for (int c = 0; c < 3; c++)
        s += exp(p1[c]);
    CHECK_NEAR(s, 1, 1e-5);
    CHECK(dp_model_predict(l, x, 0, p3, eb) == -1);
    /* a copy in memory (test's workers): the same bytes when saved, the
     * same predictions, and its own weights */
    dp_model *c = dp_model_clone(l, eb);
    CHECK(c != NULL);
    if (c) {
        char cpath[512];
        snprintf(cpath, sizeof cpath, "%s/rt-clone.dpm", dp_test_tmpdir());
        CHECK(dp_model_save(c, cpath, eb) == 0);
        CHECK(dp_test_same_file(path, cpath));
        CHECK(dp_model_predict(c, x, B, p2, eb) == 0);
        CHECK(!memcmp(p1, p2, sizeof p1));
        CHECK(dp_model_params(c) != dp_model_params(l));
        dp_model_free(c);
    }
    free(x);
    dp_model_free(m);
    dp_model_free(l);
}

static void expect_refused(const char *path, const char *needle)
{
    char eb[DP_ERRBUF_SIZE] = "";
    dp_model *m = dp_model_load(path, eb);
    CHECK(m == NULL);
    dp_model_free(m);
    CHECK_STR_CONTAINS(eb, path);
    CHECK_STR_CONTAINS(eb, needle);
}

static void test_file_refused(void)
{
    char eb[DP_ERRBUF_SIZE], path[512];
    size_t len;
    char *buf = write_model("good.dpm", &len);
    if (!buf)
        return;
    snprintf(path, sizeof path, "%s/bad.dpm", dp_test_tmpdir());
    /* truncated: at several points */
    size_t cuts[] = {0, 5, 11, 40, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK(dp_write_file_atomic(path, buf, cuts[i], eb) == 0);
        expect_refused(path, cuts[i] < 20 ? "truncated" : "checksum");
    }
    /* one flipped bit in the data, in the header, in the checksum */
    size_t flips[] = {len - 100, 30, len - 3};
    for (size_t i = 0; i < 3; i++) {
        buf[flips[i]] ^= 0x10;
        CHECK(dp_write_file_atomic(path, buf, len, eb) == 0);
        expect_refused(path, "checksum");
        buf[flips[i]] ^= 0x10;
    }
    /* wrong magic, wrong version */
    buf[0] = 'X';
    CHECK(dp_write_file_atomic(path, buf, len, eb) == 0);
    expect_refused(path, "bad magic");
    buf[0] = 'D';
    buf[8] = 4;
    CHECK(dp_write_file_atomic(path, buf, len, eb) == 0);
    expect_refused(path, "version 4");
    buf[8] = 3;
    /* appended bytes */
    char *big = malloc(len + 4);
    memcpy(big, buf, len);
    memset(big + len, 0, 4);
    CHECK(dp_write_file_atomic(path, big, len + 4, eb) == 0);
    expect_refused(path, "checksum");
    free(big);
    /* missing file */
    snprintf(path, sizeof path, "%s/none.dpm", dp_test_tmpdir());
    expect_refused(path, "none.dpm");
    /* the intact bytes still load */
    snprintf(path, sizeof path, "%s/again.dpm", dp_test_tmpdir());
    CHECK(dp_write_file_atomic(path, buf, len, eb) == 0);
    dp_model *m = dp_model_load(path, eb);
    CHECK(m != NULL);
    dp_model_free(m);
    free(buf);
}

/* Writes buf with the float `from` (found once) replaced by `to` and the
 * checksum made good again: what a damaged or hostile file may hold. */
static void write_with_float(const char *path, const char *buf, size_t len, float from, float to)
{
    char eb[DP_ERRBUF_SIZE], *b = malloc(len);
    memcpy(b, buf, len);
    char *at = memmem(b, len - 8, &from, 4);
    CHECK(at != NULL);
    if (at)
        memcpy(at, &to, 4);
    uint64_t h = dp_fnv1a(b, len - 8, DP_FNV_INIT);
    for (int i = 0; i < 8; i++)
        b[len - 8 + i] = (char)(h >> (8 * i));
    CHECK(dp_write_file_atomic(path, b, len, eb) == 0);
    free(b);
}

/* Header and training-state numbers that --resume would take are checked:
 * a NaN validation fraction turned validation off, a NaN best loss made no
 * epoch an improvement. */
static void test_file_state_refused(void)
{
    char eb[DP_ERRBUF_SIZE], path[512], bad[512];
    dp_model *m = small_model();
    dp_model_hparams(m)->validation = 0.3125f;
    dp_train_state st = {.epoch = 3, .best_loss = 1234.5f};
    snprintf(path, sizeof path, "%s/state.ckpt", dp_test_tmpdir());
    snprintf(bad, sizeof bad, "%s/state-bad.ckpt", dp_test_tmpdir());
    CHECK(dp_model_save_checkpoint(m, &st, path, eb) == 0);
    size_t len;
    char *buf = dp_read_file(path, &len, eb);
    CHECK(buf != NULL);
    dp_train_state got;
    dp_model *l = dp_model_load_checkpoint(path, &got, eb); /* as written: loads */
    CHECK(l && got.best_loss == 1234.5f && got.epoch == 3);
    dp_model_free(l);
    const struct {
        float from, to;
        const char *needle;
    } cases[] = {{0.3125f, NAN, "validation fraction"}, {0.3125f, 1.5f, "validation fraction"},
                 {1234.5f, NAN, "best loss nan"}, {1234.5f, -1.0f, "best loss -1"}};
    for (size_t i = 0; buf && i < sizeof cases / sizeof cases[0]; i++) {
        write_with_float(bad, buf, len, cases[i].from, cases[i].to);
        eb[0] = 0;
        l = dp_model_load_checkpoint(bad, &got, eb);
        CHECK(l == NULL);
        dp_model_free(l);
        CHECK_STR_CONTAINS(eb, cases[i].needle);
    }
    free(buf);
    dp_model_free(m);
}

/* The inference fast path (dp_model_infer.c: work only up to each vector's
 * last non-zero byte) against the plain eval forward, for both CNNs, on
 * vectors of every kind of length (empty, a few bytes, around the stride and
 * kernel boundaries, full, interior zeros), in chunks (B = 70) and one by
 * one, and again after the parameters change (the cache must follow). */
static void check_predict_vs_forward(dp_model *m, const uint8_t *x, int B, const char *what)
{
    char eb[DP_ERRBUF_SIZE] = "";
    int V = dp_model_nclasses(m);
    float *lp = malloc(sizeof(float) * (size_t)B * V), *ref = malloc(sizeof(float) * (size_t)B * V);
    CHECK(dp_model_predict(m, x, B, lp, eb) == 0);
    for (int b0 = 0; b0 < B; b0 += 64) {
        int n = B - b0 < 64 ? B - b0 : 64;
        const float *lg = dp_model_forward(m, x + (size_t)b0 * DP_VEC_LEN, NULL, n, 0, NULL, eb);
        CHECK(lg != NULL);
        if (lg)
            dp_log_softmax(ref + (size_t)b0 * V, lg, n, V);
    }
    double maxd = 0, maxv = 0;
    for (int i = 0; i < B * V; i++) {
        maxd = fmax(maxd, fabs(lp[i] - ref[i]));
        maxv = fmax(maxv, fabs(ref[i]));
    }
    if (!(maxd <= 1e-5) || getenv("DP_TEST_VERBOSE"))
        fprintf(stderr, "  %s: max |logprob diff| %.3g\n", what, maxd);
    CHECK(maxd <= 1e-5);
    CHECK(maxv > 0.01); /* not a degenerate model */
    /* one at a time: the same values */
    float one[DP_MAX_CLASSES];
    for (int b = 0; b < B; b += 7) {
        CHECK(dp_model_predict(m, x + (size_t)b * DP_VEC_LEN, 1, one, eb) == 0);
        for (int c = 0; c < V; c++)
            CHECK_NEAR(one[c], ref[(size_t)b * V + c], 1e-5);
    }
    free(lp);
    free(ref);
}

static void test_predict_tail(void)
{
    char eb[DP_ERRBUF_SIZE] = "";
    static const int lens[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 40, 54, 99, 100,
                               101, 600, 1000, 1490, 1496, 1497, 1498, 1499, 1500};
    int B = 70, nl = (int)(sizeof lens / sizeof lens[0]);
    uint8_t *x = calloc((size_t)B, DP_VEC_LEN);
    dp_rng r;
    dp_rng_seed(&r, 11);
    for (int b = 0; b < B; b++) {
        int n = b < nl ? lens[b] : (int)dp_rng_below(&r, DP_VEC_LEN + 1);
        for (int i = 0; i < n; i++)
            x[(size_t)b * DP_VEC_LEN + i] = (uint8_t)(i % 9 == 4 ? 0 : 1 + dp_rng_below(&r, 255));
        if (n > 0)
            x[(size_t)b * DP_VEC_LEN + n - 1] = (uint8_t)(1 + dp_rng_below(&r, 255)); /* length exactly n */
    }
    for (int task = 0; task < DP_NTASKS; task++) {
        dp_arch a;
        dp_arch_default(&a, DP_MODEL_CNN, task, task == DP_TASK_APP ? 15 : 11);
        dp_model *m = dp_model_create(&a, task, NULL, 5 + task, eb);
        CHECK(m != NULL);
        if (!m)
            continue;
        /* data-parallel over 1, 2 and 3 threads (rows split unevenly) */
        for (int nt = 1; nt <= 3; nt++) {
            dp_nn_set_threads(nt);
            check_predict_vs_forward(m, x, B, task == DP_TASK_APP ? "app" : "traffic");
        }
        dp_nn_set_threads(1);
        /* parameters change (as after a training step): predictions follow */
        float *p = dp_model_params(m);
        dp_rng_seed(&r, 12);
        for (size_t i = 0; i < dp_model_nparams(m); i += 97)
            p[i] += 0.05f * (dp_rng_float(&r) - 0.5f);
        check_predict_vs_forward(m, x, B, "after a parameter change");
        dp_model_free(m);
    }
    free(x);
}

/* ---- the flow classifier (DP_MODEL_FLOW) ------------------------------------- */

/* Default architecture: N = 10 packets of F = 44 + 64 features, encoder
 * 108 -> 64 -> 32, conv 32 channels (kernel 3) over packets, head 320 -> 128
 * -> classes; the parameter count is PyTorch's for bench/flow_model.py
 * FlowNet("conv", 10, 108, 11). */
static void test_flow_arch(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_FLOW, DP_TASK_TRAFFIC, 11);
    CHECK_EQ_INT(a.kind, DP_MODEL_FLOW);
    CHECK_EQ_INT(a.ext[0], 10);
    CHECK_EQ_INT(a.ext[1], 108);
    CHECK_EQ_INT(a.in_len, 1080);
    CHECK_EQ_INT(dp_model_kind_parse("flow"), DP_MODEL_FLOW);
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, NULL, 9876, eb);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(!strcmp(dp_model_kind_name(m), "flow"));
    CHECK_EQ_INT(dp_model_nparams(m), 108 * 64 + 64 + 64 * 32 + 32 + 32 * 32 * 3 + 32 + 320 * 128 + 128 + 128 * 11 + 11);
    static const char *names[] = {"enc1.weight", "enc1.bias", "enc2.weight", "enc2.bias", "conv.weight",
                                  "conv.bias",   "fc1.weight", "fc1.bias",   "out.weight",  "out.bias"};
    CHECK_EQ_INT(dp_model_ntensors(m), 10);
    for (int i = 0; i < 10 && i < dp_model_ntensors(m); i++) {
        const char *name;
        dp_model_tensor(m, i, &name, NULL, NULL, NULL);
        CHECK(!strcmp(name, names[i]));
    }
    int shape[4];
    CHECK_EQ_INT(dp_model_tensor(m, 4, NULL, NULL, NULL, shape), 3);
    CHECK(shape[0] == 32 && shape[1] == 32 && shape[2] == 3);
    /* PyTorch-default init bounds: conv fan-in 32*3, fc1 fan-in 320 */
    size_t off, numel;
    dp_model_tensor(m, 4, NULL, &off, &numel, NULL);
    double mx = 0;
    for (size_t k = 0; k < numel; k++)
        mx = fmax(mx, fabs(dp_model_params(m)[off + k]));
    CHECK(mx <= 1 / sqrt(96.0) * (1 + 1e-6) && mx > 0.9 / sqrt(96.0));
    dp_model_free(m);
    /* N and F set by dp_arch_flow; without the conv stage (C = 0) */
    dp_arch_flow(&a, DP_TASK_APP, 15, 3, 44);
    a.ext[4] = 0, a.ext[5] = 0;
    m = dp_model_create(&a, DP_TASK_APP, NULL, 1, eb);
    CHECK(m != NULL);
    CHECK_EQ_INT(dp_model_ntensors(m), 8);
    dp_model_free(m);
}

/* Each inconsistent flow architecture is refused with a message. */
static void test_flow_arch_refused(void)
{
    struct {
        int idx, val;
        const char *needle;
    } bad[] = {{0, 0, "packet count"},  {0, 65, "packet count"}, {1, 0, "feature count"}, {2, 0, "encoder"},
               {3, 5000, "encoder"},     {4, -1, "channel"},      {5, 2, "kernel"},         {5, 21, "kernel"},
               {6, 1, "unused"},         {7, 3, "unused"},        {-1, 0, "input length"},  {-2, 0, "unused"},
               {-3, 0, "hidden layers"}, {-4, 0, "hidden layer"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char eb[DP_ERRBUF_SIZE] = "";
        dp_arch a;
        dp_arch_default(&a, DP_MODEL_FLOW, DP_TASK_TRAFFIC, 11);
        if (bad[i].idx >= 0) {
            a.ext[bad[i].idx] = bad[i].val;
            if (bad[i].idx <= 1)
                a.in_len = a.ext[0] * a.ext[1];
        } else if (bad[i].idx == -1) {
            a.in_len = DP_VEC_LEN;
        } else if (bad[i].idx == -4) {
            a.nhidden = 0x7fffffff; /* a file's count: no sum with it may overflow (fuzz_model found one) */
        } else if (bad[i].idx == -3) {
            a.nhidden = DP_MODEL_MAX_HIDDEN; /* 3 + 8 + 1 layers: more tensors than a model holds */
            for (int k = 0; k < a.nhidden; k++)
                a.hidden[k] = 4;
        } else {
            a.ext[4] = 0; /* no conv but a kernel */
        }
        dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, NULL, 1, eb);
        CHECK(m == NULL);
        dp_model_free(m);
        CHECK_STR_CONTAINS(eb, "flow model");
        CHECK_STR_CONTAINS(eb, bad[i].needle);
    }
}

/* Random flow rows of N packets x F features: 1..N packets present, the
 * blocks after the last one zero (or, with junk, non-zero but not present). */
static float *flow_rows(int B, int N, int F, uint64_t seed, int junk)
{
    float *x = calloc((size_t)B * N * F, sizeof(float));
    dp_rng r;
    dp_rng_seed(&r, seed);
    for (int b = 0; b < B; b++) {
        int n = 1 + (int)dp_rng_below(&r, (uint64_t)N);
        for (int t = 0; t < N; t++) {
            float *p = x + ((size_t)b * N + t) * F;
            for (int f = 1; f < F; f++) {
                float v = dp_rng_float(&r) * 2 - 1; /* drawn either way: the same present packets */
                p[f] = t < n || junk ? v : 0;
            }
            p[0] = t < n ? 1.0f : 0.0f;
        }
    }
    return x;
}

/* dp_model_predict_flows: the log-softmax of the eval forward, in chunks
 * (B = 70) and one flow at a time; what lies in absent packet blocks does not
 * matter; the wrong entry point for either kind is refused. */
static void test_flow_predict(void)
{
    char eb[DP_ERRBUF_SIZE] = "";
    dp_arch a;
    dp_arch_flow(&a, DP_TASK_TRAFFIC, 4, 5, 20);
    a.dropout = 0.5f;
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, NULL, 3, eb);
    CHECK(m != NULL);
    if (!m)
        return;
    int B = 70, V = 4, L = 5 * 20;
    float *x = flow_rows(B, 5, 20, 7, 0), *xj = flow_rows(B, 5, 20, 7, 1);
    float *lp = malloc(sizeof(float) * B * V), *lpj = malloc(sizeof(float) * B * V), *ref = malloc(sizeof(float) * B * V);
    CHECK(dp_model_predict_flows(m, x, B, lp, eb) == 0);
    for (int b0 = 0; b0 < B; b0 += 64) {
        int n = B - b0 < 64 ? B - b0 : 64;
        const float *lg = dp_model_forward(m, NULL, x + (size_t)b0 * L, n, 0, NULL, eb);
        CHECK(lg != NULL);
        if (lg)
            dp_log_softmax(ref + (size_t)b0 * V, lg, n, V);
    }
    double d = 0, spread = 0;
    for (int i = 0; i < B * V; i++) {
        d = fmax(d, fabs(lp[i] - ref[i]));
        spread = fmax(spread, fabs(lp[i] - lp[i % V]));
    }
    CHECK(d == 0);
    CHECK(spread > 1e-3); /* the flows get different answers */
    float one[4];
    for (int b = 0; b < B; b += 9) {
        CHECK(dp_model_predict_flows(m, x + (size_t)b * L, 1, one, eb) == 0);
        double s = 0;
        for (int c = 0; c < V; c++) {
            CHECK_NEAR(one[c], lp[b * V + c], 1e-5);
            s += exp(one[c]);
        }
        CHECK_NEAR(s, 1, 1e-5);
    }
    /* junk in the absent blocks (present flag 0): the same predictions */
    CHECK(dp_model_predict_flows(m, xj, B, lpj, eb) == 0);
    CHECK_NEAR(dp_test_max_abs_diff(lp, lpj, (size_t)B * V), 0, 1e-5);
    /* refusals */
    CHECK(dp_model_predict_flows(m, x, 0, lp, eb) == -1);
    uint8_t vec[DP_VEC_LEN] = {0x45};
    eb[0] = 0;
    CHECK(dp_model_predict(m, vec, 1, lp, eb) == -1);
    CHECK_STR_CONTAINS(eb, "dp_model_predict_flows");
    CHECK(dp_model_hidden(m, vec, 1, 0, eb) == NULL);
    dp_model *cnn = small_model();
    eb[0] = 0;
    CHECK(dp_model_predict_flows(cnn, x, 1, lp, eb) == -1);
    CHECK_STR_CONTAINS(eb, "cnn packet model");
    dp_model_free(cnn);
    free(x), free(xj), free(lp), free(lpj), free(ref);
    dp_model_free(m);
}

/* Synthetic flows whose class is the position (0, 1 or 2) of the largest
 * packet among the first three ([2], the IP length), in noise: only a model
 * that keeps packet order can separate them. */
static void synth_flows(float *x, int *y, int B, int N, int F, dp_rng *r)
{
    memset(x, 0, sizeof(float) * (size_t)B * N * F);
    for (int b = 0; b < B; b++) {
        int n = 3 + (int)dp_rng_below(r, (uint64_t)(N - 2)), cls = (int)dp_rng_below(r, 3);
        for (int t = 0; t < n; t++) {
            float *p = x + ((size_t)b * N + t) * F;
            p[0] = 1;
            p[1] = dp_rng_below(r, 2) ? 1.0f : -1.0f;
            for (int f = 3; f < F; f++)
                p[f] = dp_rng_float(r);
            p[2] = t < 3 ? 0.1f + 0.3f * dp_rng_float(r) : dp_rng_float(r);
            if (t == cls)
                p[2] = 0.6f + 0.4f * dp_rng_float(r);
        }
        y[b] = cls;
    }
}

/* A small C training run fits the synthetic flows: train through the
 * training API (forward with dropout, loss, backward, Adam) and classify
 * fresh flows with dp_model_predict_flows. */
static void test_flow_train_synthetic(void)
{
    char eb[DP_ERRBUF_SIZE] = "";
    enum { N = 6, F = 12, BS = 32, STEPS = 400, NTEST = 300 };
    dp_arch a;
    dp_arch_flow(&a, DP_TASK_TRAFFIC, 3, N, F);
    a.ext[2] = 16, a.ext[3] = 8, a.ext[4] = 8, a.hidden[0] = 32, a.dropout = 0.1f;
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, NULL, 11, eb);
    CHECK(m != NULL);
    if (!m)
        return;
    dp_rng r, dr;
    dp_rng_seed(&r, 21);
    dp_rng_seed(&dr, 22);
    float *x = malloc(sizeof(float) * NTEST * N * F), *lp = malloc(sizeof(float) * NTEST * 3);
    int y[NTEST];
    float first = 0, last = 0;
    for (int s = 0; s < STEPS; s++) {
        synth_flows(x, y, BS, N, F, &r);
        CHECK(dp_model_forward(m, NULL, x, BS, 1, &dr, eb) != NULL);
        float l = dp_model_loss(m, y, BS, NULL);
        if (s < 10)
            first += l / 10;
        if (s >= STEPS - 10)
            last += l / 10;
        CHECK(dp_model_backward(m, y, BS, eb) == 0);
        CHECK(dp_model_adam_step(m, 3e-3f, 0.9f, 0.999f, 1e-8f, eb) == 0);
    }
    synth_flows(x, y, NTEST, N, F, &r);
    CHECK(dp_model_predict_flows(m, x, NTEST, lp, eb) == 0);
    int ok = 0;
    for (int b = 0; b < NTEST; b++) {
        const float *p = lp + b * 3;
        int best = p[1] > p[0] ? 1 : 0;
        best = p[2] > p[best] ? 2 : best;
        ok += best == y[b];
    }
    if (!(ok >= 0.95 * NTEST) || getenv("DP_TEST_VERBOSE"))
        fprintf(stderr, "  synthetic flows: loss %.3f -> %.3f, %d/%d fresh flows right\n", first, last, ok, NTEST);
    CHECK(last < 0.5f * first);
    CHECK(ok >= 0.95 * NTEST);
    free(x);
    free(lp);
    dp_model_free(m);
}

/* A flow model through the model file (format 2 keeps ext[8] and the flow
 * configuration): the same architecture, weights and predictions back; an
 * ext[] that no longer matches the tensor table (checksum made valid again)
 * is refused, as is one the flow kind does not accept. */
static void flow_file_tamper(const char *path, const char *buf, size_t len, int idx, int val, const char *needle)
{
    char eb[DP_ERRBUF_SIZE];
    static const uint32_t ext[8] = {10, 108, 64, 32, 32, 3, 0, 0};
    char *b = malloc(len);
    memcpy(b, buf, len);
    char *at = memmem(b, len, ext, sizeof ext);
    CHECK(at != NULL);
    if (at) {
        uint32_t v = (uint32_t)val;
        memcpy(at + 4 * idx, &v, 4);
        uint64_t h = dp_fnv1a(b, len - 8, DP_FNV_INIT);
        for (int i = 0; i < 8; i++)
            b[len - 8 + i] = (char)(h >> (8 * i));
        CHECK(dp_write_file_atomic(path, b, len, eb) == 0);
        expect_refused(path, needle);
    }
    free(b);
}

/* Finite but huge weights (the loader refuses NaN and infinity only)
 * overflow to NaN outputs: an error, not a verdict of class 0. */
static void test_predict_overflow(void)
{
    char eb[DP_ERRBUF_SIZE] = "";
    dp_model *m = small_model();
    float *w = dp_model_params(m);
    for (size_t i = 0; i < dp_model_nparams(m); i++)
        w[i] = 3e38f;
    uint8_t x[2 * DP_VEC_LEN];
    for (size_t i = 0; i < sizeof x; i++)
        x[i] = (uint8_t)(i * 7);
    float lp[2 * 3];
    CHECK_EQ_INT(dp_model_predict(m, x, 2, lp, eb), -1);
    CHECK_STR_CONTAINS(eb, "not a number");
    dp_model_free(m);
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_FLOW, DP_TASK_TRAFFIC, 3);
    char *names[3] = {"Chat", "Email", "VPN: Voip"};
    dp_model *f = dp_model_create(&a, DP_TASK_TRAFFIC, names, 8, eb);
    dp_flowcfg cfg;
    dp_flowcfg_default(&cfg);
    CHECK(f && dp_model_set_flowcfg(f, &cfg, eb) == 0);
    if (!f)
        return;
    float *rows = flow_rows(2, 10, 108, 4, 0);
    CHECK_EQ_INT(dp_model_predict_flows(f, rows, 2, lp, eb), 0); /* as made: fine */
    w = dp_model_params(f);
    for (size_t i = 0; i < dp_model_nparams(f); i++)
        w[i] = 3e38f;
    eb[0] = 0;
    CHECK_EQ_INT(dp_model_predict_flows(f, rows, 2, lp, eb), -1);
    CHECK_STR_CONTAINS(eb, "not a number");
    free(rows);
    dp_model_free(f);
}

static void test_flow_file(void)
{
    char eb[DP_ERRBUF_SIZE] = "", path[512];
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_FLOW, DP_TASK_TRAFFIC, 3);
    char *names[3] = {"Chat", "Email", "VPN: Voip"};
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, names, 8, eb);
    CHECK(m != NULL);
    if (!m)
        return;
    dp_flowcfg cfg;
    dp_flowcfg_default(&cfg);
    CHECK(dp_model_set_flowcfg(m, &cfg, eb) == 0);
    snprintf(path, sizeof path, "%s/flow.dpm", dp_test_tmpdir());
    CHECK(dp_model_save(m, path, eb) == 0);
    dp_model *l = dp_model_load(path, eb);
    if (!l)
        fprintf(stderr, "  %s\n", eb);
    CHECK(l != NULL);
    if (l) {
        CHECK(!strcmp(dp_model_kind_name(l), "flow"));
        CHECK(!memcmp(dp_model_arch(l)->ext, a.ext, sizeof a.ext));
        CHECK_EQ_INT(dp_model_nparams(l), dp_model_nparams(m));
        CHECK(!memcmp(dp_model_params(l), dp_model_params(m), dp_model_nparams(m) * sizeof(float)));
        float *x = flow_rows(5, 10, 108, 4, 0), p1[15], p2[15];
        CHECK(dp_model_predict_flows(m, x, 5, p1, eb) == 0);
        CHECK(dp_model_predict_flows(l, x, 5, p2, eb) == 0);
        CHECK(!memcmp(p1, p2, sizeof p1));
        dp_model *c = dp_model_clone(l, eb); /* its flow settings and mask too */
        char cpath[512];
        snprintf(cpath, sizeof cpath, "%s/flow-clone.dpm", dp_test_tmpdir());
        CHECK(c && dp_model_save(c, cpath, eb) == 0 && dp_test_same_file(path, cpath));
        CHECK(c && dp_model_predict_flows(c, x, 5, p2, eb) == 0 && !memcmp(p1, p2, sizeof p1));
        dp_model_free(c);
        free(x);
        dp_model_free(l);
    }
    size_t len;
    char *buf = dp_read_file(path, &len, eb);
    CHECK(buf != NULL);
    if (buf) {
        flow_file_tamper(path, buf, len, 2, 65, "tensor table");  /* E1: other shapes */
        flow_file_tamper(path, buf, len, 5, 2, "kernel");         /* an even kernel */
        flow_file_tamper(path, buf, len, 7, 1, "unused");         /* reserved ext */
        free(buf);
    }
    dp_model_free(m);
}

int main(void)
{
    dp_test_prog = "test_model";
    dp_nn_set_threads(1);
    DP_RUN(test_param_counts);
    DP_RUN(test_init);
    DP_RUN(test_torch_cnn_app);
    DP_RUN(test_torch_cnn_traffic);
    DP_RUN(test_torch_sae);
    DP_RUN(test_torch_flow);
    DP_RUN(test_torch_flow_flat);
    DP_RUN(test_torch_flow_mlp);
    DP_RUN(test_file_roundtrip);
    DP_RUN(test_file_v2_balance);
    DP_RUN(test_file_refused);
    DP_RUN(test_file_state_refused);
    DP_RUN(test_predict_tail);
    DP_RUN(test_flow_arch);
    DP_RUN(test_flow_arch_refused);
    DP_RUN(test_flow_predict);
    DP_RUN(test_flow_train_synthetic);
    DP_RUN(test_flow_file);
    DP_RUN(test_predict_overflow);
    return dp_test_end();
}
