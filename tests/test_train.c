/* test_train: the training loop on a small synthetic split folder:
 * determinism (bit-identical model files), resume after a kill equals an
 * uninterrupted run, it learns (CNN and SAE), validation by flow, divergence
 * stops without touching the existing model, bad input refused; the
 * training curves (MODEL.curves.tsv and .png). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dataset/dp_dataset.h"
#include "dp_test.h"
#include "eval/dp_eval.h"
#include "model/dp_model.h"
#include "model/dp_model_train.h"
#include "train/dp_curves.h"
#include "nn/dp_nn.h"
#include "packet/dp_mask.h"
#include "train/dp_train.h"

#include <cairo.h>

#define NCLS 3

/* A learnable 3-class set: class c has bytes 200+30c..229+30c set high,
 * plus noise in the first 120 bytes; flows of 4 rows. */
static char *make_split(const char *name, int n, uint64_t seed)
{
    static char dir[512];
    char eb[DP_ERRBUF_SIZE], p[600];
    snprintf(dir, sizeof dir, "%s/%s", dp_test_tmpdir(), name);
    CHECK(dp_mkdirs(dir, eb) == 0);
    uint8_t *v = calloc((size_t)n, DP_VEC_LEN);
    int16_t *l = calloc((size_t)n, 2);
    dp_meta *m = calloc((size_t)n, sizeof(dp_meta));
    dp_rng r;
    dp_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        int c = (i / 4) % NCLS;
        l[i] = (int16_t)c;
        uint8_t *x = v + (size_t)i * DP_VEC_LEN;
        for (int k = 0; k < 120; k++)
            x[k] = (uint8_t)dp_rng_below(&r, 64);
        for (int k = 0; k < 30; k++)
            x[200 + 30 * c + k] = 250;
        m[i].flow = (uint64_t)(i / 4);
        m[i].index = (uint64_t)i;
        m[i].ipver = 4;
    }
    snprintf(p, sizeof p, "%s/vectors.npy", dir);
    CHECK(dp_npy_save(p, DP_NPY_U1, 1, DP_VEC_LEN, v, (uint64_t)n, eb) == 0);
    snprintf(p, sizeof p, "%s/labels.npy", dir);
    CHECK(dp_npy_save(p, DP_NPY_I2, 2, 0, l, (uint64_t)n, eb) == 0);
    snprintf(p, sizeof p, "%s/meta.npy", dir);
    CHECK(dp_npy_save(p, DP_META_DESCR, sizeof(dp_meta), 0, m, (uint64_t)n, eb) == 0);
    snprintf(p, sizeof p, "%s/classes.tsv", dir);
    const char *cls = "0\tChat\n1\tEmail\n2\tVoip\n";
    CHECK(dp_write_file_atomic(p, cls, strlen(cls), eb) == 0);
    free(v);
    free(l);
    free(m);
    return strdup(dir); /* caller frees */
}

static void opts(dp_train_opts *o, const char *dir, const char *model)
{
    dp_train_opts_default(o);
    o->train_dir = dir;
    o->model_path = model;
    o->task = DP_TASK_TRAFFIC;
    o->quiet = 1;
    o->cnn_channels = 4;
    o->hp.threads = 1;
}

static char *mpath(const char *name)
{
    char *p = malloc(600);
    snprintf(p, 600, "%s/%s", dp_test_tmpdir(), name);
    return p;
}

/* Trains o into p1, then into p2 (o->model_path is left at p2): 1 when both
 * runs succeed and write the same bytes, else 0 (a failed run's message on
 * stderr). */
static int trains_same_twice(dp_train_opts *o, const char *p1, const char *p2)
{
    char eb[DP_ERRBUF_SIZE];
    for (int i = 0; i < 2; i++) {
        o->model_path = i ? p2 : p1;
        if (dp_train_run(o, eb) != 0) {
            fprintf(stderr, "  %s: %s\n", o->model_path, eb);
            return 0;
        }
    }
    return dp_test_same_file(p1, p2);
}

/* Two 3-step trainings (48 rows, batch 16, 1 epoch) give the same bytes;
 * another seed gives other bytes. */
static void test_determinism(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *dir = make_split("det", 48, 1);
    char *m1 = mpath("det1.dpm"), *m2 = mpath("det2.dpm"), *m3 = mpath("det3.dpm");
    dp_train_opts o;
    opts(&o, dir, m1);
    o.hp.epochs = 1;
    CHECK(trains_same_twice(&o, m1, m2));
    /* two threads (OpenBLAS + our loops): equal to each other too */
    char *m4 = mpath("det4.dpm"), *m5 = mpath("det5.dpm");
    o.hp.threads = 2;
    CHECK(trains_same_twice(&o, m4, m5));
    free(m4), free(m5);
    o.hp.threads = 1;
    o.model_path = m3;
    o.hp.seed = 1234;
    CHECK(dp_train_run(&o, eb) == 0);
    CHECK(!dp_test_same_file(m1, m3));
    dp_model *m = dp_model_load(m1, eb);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_INT(dp_model_hparams(m)->epochs_run, 1);
        CHECK_EQ_INT(dp_model_hparams(m)->train_samples, 48);
        CHECK_EQ_INT(dp_model_hparams(m)->balance, DP_BALANCE_NONE); /* auto, equal classes */
        CHECK(!strcmp(dp_model_class_name(m, 2), "Voip"));
    }
    dp_model_free(m);
    free(m1), free(m2), free(m3);
    free(dir);
}

/* Killed in epoch 2 (after 5 of 9 steps), resumed from the checkpoint of
 * epoch 1: the same model file as an uninterrupted 3-epoch run. */
static void test_resume(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *dir = make_split("res", 48, 2);
    char *a = mpath("resA.dpm"), *b = mpath("resB.dpm"), ck[700];
    dp_train_opts o;
    opts(&o, dir, a);
    o.hp.epochs = 3;
    CHECK(dp_train_run(&o, eb) == 0);
    o.model_path = b;
    o.max_steps = 5;
    CHECK(dp_train_run(&o, eb) == 0);
    struct stat st;
    CHECK(stat(b, &st) != 0); /* killed: no model yet */
    snprintf(ck, sizeof ck, "%s.ckpt", b);
    CHECK(stat(ck, &st) == 0);
    o.max_steps = 0;
    o.resume = 1;
    if (dp_train_run(&o, eb) != 0)
        fprintf(stderr, "  %s\n", eb);
    CHECK(dp_test_same_file(a, b));
    /* the curves of the resumed run are those of the uninterrupted one */
    char ca[700], cb[700];
    snprintf(ca, sizeof ca, "%s.curves.tsv", a);
    snprintf(cb, sizeof cb, "%s.curves.tsv", b);
    CHECK(dp_test_same_file(ca, cb));
    /* a checkpoint is not a model, and vice versa */
    CHECK(dp_model_load(ck, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "checkpoint");
    /* resuming with another task is refused */
    o.task = DP_TASK_APP;
    CHECK(dp_train_run(&o, eb) == -1);
    CHECK_STR_CONTAINS(eb, "cannot resume");
    free(a), free(b);
    free(dir);
}

/* Resumes a run of `base` killed in its second epoch with o changed; 0 or -1
 * (the message in eb). The checkpoint is removed first, so each call starts
 * from the same killed run. */
static int resume_changed(const dp_train_opts *base, const char *model, void (*change)(dp_train_opts *), char *eb)
{
    char ck[700];
    snprintf(ck, sizeof ck, "%s.ckpt", model);
    unlink(ck);
    dp_train_opts o = *base;
    o.model_path = model;
    o.max_steps = 7;
    CHECK(dp_train_run(&o, eb) == 0);
    o.max_steps = 0;
    o.resume = 1;
    if (change)
        change(&o);
    return dp_train_run(&o, eb);
}

static void more_epochs(dp_train_opts *o) { o->hp.epochs = 4; }
static void other_batch(dp_train_opts *o) { o->hp.batch = 32; }
static void other_lr(dp_train_opts *o) { o->hp.lr = 2e-3f; }
static void other_seed(dp_train_opts *o) { o->hp.seed = 77; }
static void no_validation(dp_train_opts *o) { o->hp.validation = 0; }
static void other_mask(dp_train_opts *o) { o->flow.mask = DP_MASK_DEFAULT; }
static void other_channels(dp_train_opts *o) { o->cnn_channels = 8; }
static void other_dropout(dp_train_opts *o) { o->dropout = 0.5f; }
static void other_balance(dp_train_opts *o) { o->balance = DP_BALANCE_WEIGHT; }
static void in_bf16(dp_train_opts *o) { o->precision = DP_PREC_BF16; }

/* --resume continues the checkpoint's run or is refused: a run with
 * --validation resumes to the uninterrupted model (before, the fraction
 * read back was 0: the held-out flows were trained on); another batch size,
 * learning rate, seed, validation fraction, mask, architecture or balance is
 * refused, naming it (before, the batch and learning rate were the resumed
 * command's, silently), and so is another precision (bf16 where the CPU has
 * it); more epochs are allowed. */
static void test_resume_settings(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *dir = make_split("ress", 96, 3);
    char *a = mpath("ressA.dpm"), *b = mpath("ressB.dpm");
    dp_train_opts o;
    opts(&o, dir, a);
    o.hp.epochs = 3;
    o.hp.validation = 0.25f;
    CHECK(dp_train_run(&o, eb) == 0);
    if (resume_changed(&o, b, NULL, eb) != 0)
        fprintf(stderr, "  %s\n", eb);
    CHECK(dp_test_same_file(a, b));
    static const struct {
        void (*change)(dp_train_opts *);
        const char *named;
    } refused[] = {{other_batch, "batch size 32"}, {other_lr, "learning rate"}, {other_seed, "seed 77"},
                   {no_validation, "validation"}, {other_mask, "mask"}, {other_channels, "architecture"},
                   {other_dropout, "architecture"}, {other_balance, "balance weight"}};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        eb[0] = 0;
        CHECK(resume_changed(&o, b, refused[i].change, eb) == -1);
        CHECK_STR_CONTAINS(eb, refused[i].named);
        CHECK_STR_CONTAINS(eb, "cannot resume");
    }
    /* the precision: recorded in the checkpoint (version 4), another refused
     * (before, an fp32 run resumed in bf16 silently) */
    char ck[700];
    snprintf(ck, sizeof ck, "%s.ckpt", b);
    dp_train_state st;
    dp_model *cm = dp_model_load_checkpoint(ck, &st, eb);
    CHECK(cm != NULL);
    if (cm) {
        CHECK_EQ_INT(st.precision, DP_PREC_FP32);
        free(st.best_params);
    }
    dp_model_free(cm);
    char probe[DP_ERRBUF_SIZE];
    int bf16 = dp_nn_set_precision(DP_PREC_BF16, probe) == 0;
    dp_nn_set_precision(DP_PREC_FP32, probe);
    if (bf16) {
        CHECK(resume_changed(&o, b, in_bf16, eb) == -1);
        CHECK_STR_CONTAINS(eb, "cannot resume with precision bf16: the checkpoint's run computed in fp32");
    }
    CHECK(resume_changed(&o, b, more_epochs, eb) == 0);
    dp_model *m = dp_model_load(b, eb);
    CHECK(m != NULL);
    if (m)
        CHECK_EQ_INT(dp_model_hparams(m)->epochs_run, 4);
    dp_model_free(m);
    free(a), free(b);
    free(dir);
}

static double accuracy(const char *model, const char *dir)
{
    char eb[DP_ERRBUF_SIZE];
    dp_model *m = dp_model_load(model, eb);
    dp_splitset s;
    if (!m || dp_splitset_open(&s, dir, eb) != 0) {
        dp_model_free(m);
        return -1;
    }
    int ok = 0;
    float lp[NCLS];
    for (uint64_t i = 0; i < s.n; i++) {
        dp_model_predict(m, dp_splitset_vector(&s, i), 1, lp, eb);
        int best = 0;
        for (int c = 1; c < NCLS; c++)
            if (lp[c] > lp[best])
                best = c;
        ok += best == dp_splitset_label(&s, i);
    }
    double acc = (double)ok / (double)s.n;
    dp_splitset_close(&s);
    dp_model_free(m);
    return acc;
}

static void test_learns_cnn(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *dir = make_split("learn", 192, 3);
    char *test = make_split("learn_test", 96, 4);
    char *mp = mpath("learn.dpm");
    dp_train_opts o;
    opts(&o, dir, mp);
    o.hp.epochs = 8;
    o.quiet = getenv("DP_VERBOSE") == NULL;
    CHECK(dp_train_run(&o, eb) == 0);
    double acc = accuracy(mp, test);
    if (acc < 0.9)
        fprintf(stderr, "  cnn accuracy %.3f\n", acc);
    CHECK(acc >= 0.9);
    free(mp);
    free(dir);
    free(test);
}

static void test_learns_sae(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *dir = make_split("sae", 192, 5);
    char *test = make_split("sae_test", 96, 6);
    char *mp = mpath("sae.dpm");
    dp_train_opts o;
    opts(&o, dir, mp);
    o.kind = DP_MODEL_SAE;
    o.hp.epochs = 6;
    o.hp.pretrain_epochs = 1;
    CHECK(dp_train_run(&o, eb) == 0);
    dp_model *m = dp_model_load(mp, eb);
    CHECK(m && !strcmp(dp_model_kind_name(m), "sae"));
    dp_model_free(m);
    double acc = accuracy(mp, test);
    if (acc < 0.9)
        fprintf(stderr, "  sae accuracy %.3f\n", acc);
    CHECK(acc >= 0.9);
    free(mp);
    free(dir);
    free(test);
}

/* --validation: held-out flows drive early stopping; deterministic too. */
/* PNG checks: the file's signature and IHDR size, and how many pixels have
 * the training and the validation colour (read back with cairo). */
static void png_colours(const char *path, int *ntrain, int *nval)
{
    int w = 0, h = 0;
    CHECK_EQ_INT(dp_test_png_size(path, &w, &h), 0);
    CHECK_EQ_INT(w, DP_CURVES_PNG_W);
    CHECK_EQ_INT(h, DP_CURVES_PNG_H);
    *ntrain = *nval = 0;
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    CHECK_EQ_INT(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
        unsigned char *d = cairo_image_surface_get_data(s);
        int w = cairo_image_surface_get_width(s), hh = cairo_image_surface_get_height(s);
        int stride = cairo_image_surface_get_stride(s);
        for (int y = 0; y < hh; y++)
            for (int x = 0; x < w; x++) {
                uint32_t px;
                memcpy(&px, d + (size_t)y * stride + (size_t)x * 4, 4);
                *ntrain += (px & 0xffffff) == DP_CURVES_TRAIN_RGB;
                *nval += (px & 0xffffff) == DP_CURVES_VAL_RGB;
            }
    }
    cairo_surface_destroy(s);
}

/* dp_curves_plot draws what it is given: both series, only training, none;
 * it fails with the path named when it cannot write. */
static void test_curves_plot(void)
{
    char eb[DP_ERRBUF_SIZE], p[600];
    dp_curves c = {0};
    snprintf(p, sizeof p, "%s/c.png", dp_test_tmpdir());
    int nt, nv;
    CHECK_EQ_INT(dp_curves_plot(&c, p, "empty", "epoch", eb), 0);
    png_colours(p, &nt, &nv);
    CHECK(nt == 0 && nv == 0);
    for (int e = 0; e < 4; e++)
        CHECK_EQ_INT(dp_curves_add(&c, 1.0 / (e + 1), 0.5 + e * 0.1, NAN, NAN, eb), 0);
    CHECK_EQ_INT(dp_curves_plot(&c, p, "training only", "epoch", eb), 0);
    png_colours(p, &nt, &nv);
    CHECK(nt > 200 && nv == 0);
    dp_curves_truncate(&c, 0);
    for (int e = 0; e < 4; e++)
        CHECK_EQ_INT(dp_curves_add(&c, 1.0 / (e + 1), 0.5 + e * 0.1, 1.2 / (e + 1), 0.4 + e * 0.1, eb), 0);
    CHECK_EQ_INT(dp_curves_plot(&c, p, "both", "epoch", eb), 0);
    png_colours(p, &nt, &nv);
    CHECK(nt > 200 && nv > 200);
    CHECK_EQ_INT(dp_curves_plot(&c, "/nonexistent/dir/c.png", "x", "epoch", eb), -1);
    CHECK_STR_CONTAINS(eb, "/nonexistent/dir/c.png");
    /* the TSV round trip, and a file that is not one */
    snprintf(p, sizeof p, "%s/c.tsv", dp_test_tmpdir());
    CHECK_EQ_INT(dp_curves_write_tsv(&c, p, eb), 0);
    dp_curves d = {0};
    CHECK_EQ_INT(dp_curves_read_tsv(&d, p, eb), 0);
    CHECK_EQ_INT(d.n, 4);
    CHECK_NEAR(d.v[3 * 4 + 2], 0.3, 1e-6);
    CHECK_EQ_INT(dp_curves_read_tsv(&d, p, eb), -1); /* epochs must follow on */
    CHECK_STR_CONTAINS(eb, "line 2");
    dp_curves_free(&d);
    CHECK_EQ_INT(dp_write_file_atomic(p, "loss\n", 5, eb), 0);
    CHECK_EQ_INT(dp_curves_read_tsv(&d, p, eb), -1);
    CHECK_STR_CONTAINS(eb, "not a training curves file");
    dp_curves_free(&d);
    dp_curves_free(&c);
}

/* train writes MODEL.curves.tsv (one row per epoch; the kept model's loss
 * is the best validation loss in it) and MODEL.curves.png with both
 * series, and no temporary file stays. */
static void test_curves_train(void)
{
    char eb[DP_ERRBUF_SIZE], p[700], out[4096];
    char *dir = make_split("curves", 96, 5);
    char *m1 = mpath("curves.dpm");
    dp_train_opts o;
    opts(&o, dir, m1);
    o.hp.epochs = 3;
    o.hp.patience = 5;
    o.hp.validation = 0.25f;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    snprintf(p, sizeof p, "%s.curves.tsv", m1);
    dp_curves c = {0};
    CHECK_EQ_INT(dp_curves_read_tsv(&c, p, eb), 0);
    CHECK_EQ_INT(c.n, 3);
    double best = INFINITY;
    for (int e = 0; e < c.n; e++) {
        for (int k = 0; k < 4; k++)
            CHECK(isfinite(c.v[e * 4 + k]));
        best = fmin(best, c.v[e * 4 + 2]);
    }
    dp_model *m = dp_model_load(m1, eb);
    CHECK(m != NULL);
    if (m)
        CHECK_NEAR(dp_model_hparams(m)->final_loss, best, 1e-5 * fabs(best) + 1e-6);
    dp_model_free(m);
    dp_curves_free(&c);
    snprintf(p, sizeof p, "%s.curves.png", m1);
    int nt, nv;
    png_colours(p, &nt, &nv);
    CHECK(nt > 200 && nv > 200);
    snprintf(p, sizeof p, "ls %s | grep -c tmp", dp_test_tmpdir());
    dp_test_sh(p, out, sizeof out);
    CHECK_EQ_INT(atoi(out), 0);
    free(m1);
    free(dir);
}

static void test_validation(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *dir = make_split("val", 96, 7);
    char *m1 = mpath("val1.dpm"), *m2 = mpath("val2.dpm");
    dp_train_opts o;
    opts(&o, dir, m1);
    o.hp.epochs = 2;
    o.hp.validation = 0.25f;
    CHECK(trains_same_twice(&o, m1, m2));
    dp_model *m = dp_model_load(m1, eb);
    CHECK(m != NULL);
    if (m) {
        CHECK(dp_model_hparams(m)->train_samples < 96);
        CHECK(dp_model_hparams(m)->train_samples > 40);
        CHECK(dp_model_hparams(m)->train_samples % 4 == 0); /* whole flows */
    }
    dp_model_free(m);
    free(m1), free(m2);
    free(dir);
}

/* A learning rate that blows up: exit with a message, the existing model
 * file is left as it was. */
static void test_divergence(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *dir = make_split("div", 96, 8);
    char *mp = mpath("div.dpm");
    CHECK(dp_write_file_atomic(mp, "GOOD", 4, eb) == 0);
    dp_train_opts o;
    opts(&o, dir, mp);
    o.hp.epochs = 5;
    o.hp.lr = 10.0f;
    o.hp.patience = 100;
    int rc = dp_train_run(&o, eb);
    CHECK_EQ_INT(rc, -1);
    CHECK_STR_CONTAINS(eb, "diverged");
    size_t n;
    char *b = dp_read_file(mp, &n, eb);
    CHECK(b && n == 4 && !memcmp(b, "GOOD", 4));
    free(b);
    free(mp);
    free(dir);
}

/* --init: a 0-epoch run from another seed's trained model holds exactly
 * that model's weights; training on from it follows its own seed's shuffle
 * (bit-identical twice); a model of another architecture, task or class
 * list is refused, naming the file. */
static void test_init_from(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *dir = make_split("init", 48, 3);
    char *src = mpath("init_src.dpm"), *m0 = mpath("init_0.dpm"), *m1 = mpath("init_1.dpm"), *m2 = mpath("init_2.dpm");
    dp_train_opts o;
    opts(&o, dir, src);
    o.hp.epochs = 2;
    o.hp.seed = 77;
    CHECK(dp_train_run(&o, eb) == 0);
    opts(&o, dir, m0);
    o.hp.epochs = 0;
    o.init_path = src;
    CHECK(dp_train_run(&o, eb) == 0);
    dp_model *a = dp_model_load(src, eb), *b = dp_model_load(m0, eb);
    CHECK(a && b);
    if (a && b)
        CHECK(dp_model_nparams(a) == dp_model_nparams(b) &&
              !memcmp(dp_model_params(a), dp_model_params(b), sizeof(float) * dp_model_nparams(a)));
    dp_model_free(a);
    dp_model_free(b);
    o.hp.epochs = 1;
    CHECK(trains_same_twice(&o, m1, m2));
    CHECK(!dp_test_same_file(m1, m0));
    /* dropout is a training setting: --dropout 0 from a 0.05 model is fine,
     * and the written model says 0 */
    o.dropout = 0;
    CHECK(dp_train_run(&o, eb) == 0);
    dp_model *d0 = dp_model_load(m2, eb);
    CHECK(d0 && dp_model_arch(d0)->dropout == 0.0f);
    dp_model_free(d0);
    CHECK(!dp_test_same_file(m1, m2));
    o.dropout = -1;
    /* another architecture (channels), then another class list: refused */
    o.cnn_channels = 6;
    CHECK(dp_train_run(&o, eb) == -1);
    CHECK(strstr(eb, "init_src.dpm") != NULL && strstr(eb, "parameters") != NULL);
    o.cnn_channels = 4;
    /* another mask: the weights were learnt on other inputs (before, taken silently) */
    o.flow.mask = DP_MASK_DEFAULT;
    CHECK(dp_train_run(&o, eb) == -1);
    CHECK_STR_CONTAINS(eb, "a model of --mask none; this run trains one of --mask ports,");
    o.flow.mask = 0;
    char *dir2 = make_split("init2", 48, 3), p[700];
    snprintf(p, sizeof p, "%s/classes.tsv", dir2);
    const char *cls = "0\tChat\n1\tEmail\n2\tStreaming\n";
    CHECK(dp_write_file_atomic(p, cls, strlen(cls), eb) == 0);
    o.train_dir = dir2;
    CHECK(dp_train_run(&o, eb) == -1);
    CHECK(strstr(eb, "class 2 is 'Voip'") != NULL);
    free(dir2);
    free(src), free(m0), free(m1), free(m2), free(dir);
}

static void test_bad_input(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *mp = mpath("none.dpm");
    dp_train_opts o;
    opts(&o, "/nonexistent/split", mp);
    CHECK_EQ_INT(dp_train_run(&o, eb), -1);
    CHECK_STR_CONTAINS(eb, "/nonexistent/split");
    char *nm = make_split("nometa", 16, 9);
    o.train_dir = nm;
    char p[700];
    snprintf(p, sizeof p, "%s/meta.npy", o.train_dir);
    remove(p);
    o.hp.validation = 0.2f;
    CHECK_EQ_INT(dp_train_run(&o, eb), -1);
    CHECK_STR_CONTAINS(eb, "meta.npy");
    o.hp.validation = 0;
    o.resume = 1;
    CHECK_EQ_INT(dp_train_run(&o, eb), -1);
    CHECK_STR_CONTAINS(eb, "none.dpm.ckpt");
    free(mp);
    free(nm);
}

/* make_split's rows as a preprocessed dataset folder, with every third flow
 * unlabelled for traffic (-1) and no app labels; also writes, as the split
 * folder `name`_split, the labelled rows alone. Returns the dataset path. */
static char *make_dataset(const char *name, int n, uint64_t seed)
{
    char eb[DP_ERRBUF_SIZE], p[700], sname[256];
    snprintf(sname, sizeof sname, "%s_src", name);
    char *src = make_split(sname, n, seed);
    dp_splitset s;
    CHECK(dp_splitset_open(&s, src, eb) == 0);
    char *dir = mpath(name), *sdir = malloc(700);
    snprintf(sdir, 700, "%s_split", dir);
    CHECK(dp_mkdirs(dir, eb) == 0 && dp_mkdirs(sdir, eb) == 0);
    int16_t *tl = malloc((size_t)n * 2), *al = malloc((size_t)n * 2), *sl = malloc((size_t)n * 2);
    uint8_t *sv = malloc((size_t)n * DP_VEC_LEN);
    dp_meta *sm = malloc((size_t)n * sizeof(dp_meta));
    uint64_t k = 0;
    for (int i = 0; i < n; i++) {
        dp_meta m = dp_splitset_meta(&s, (uint64_t)i);
        al[i] = -1;
        tl[i] = m.flow % 3 == 1 ? -1 : (int16_t)dp_splitset_label(&s, (uint64_t)i);
        if (tl[i] < 0)
            continue;
        sl[k] = tl[i];
        sm[k] = m;
        memcpy(sv + k * DP_VEC_LEN, dp_splitset_vector(&s, (uint64_t)i), DP_VEC_LEN);
        k++;
    }
    snprintf(p, sizeof p, "%s/vectors.npy", dir);
    CHECK(dp_npy_save(p, DP_NPY_U1, 1, DP_VEC_LEN, s.vectors.data, (uint64_t)n, eb) == 0);
    snprintf(p, sizeof p, "%s/meta.npy", dir);
    CHECK(dp_npy_save(p, DP_META_DESCR, sizeof(dp_meta), 0, s.meta.data, (uint64_t)n, eb) == 0);
    snprintf(p, sizeof p, "%s/traffic.npy", dir);
    CHECK(dp_npy_save(p, DP_NPY_I2, 2, 0, tl, (uint64_t)n, eb) == 0);
    snprintf(p, sizeof p, "%s/app.npy", dir);
    CHECK(dp_npy_save(p, DP_NPY_I2, 2, 0, al, (uint64_t)n, eb) == 0);
    const char *lt = "prefix\tapp_id\tapp_name\ttraffic_id\ttraffic_name\n"
                     "c\t\t\t0\tChat\ne\t\t\t1\tEmail\nv\t\t\t2\tVoip\n";
    snprintf(p, sizeof p, "%s/labels.tsv", dir);
    CHECK(dp_write_file_atomic(p, lt, strlen(lt), eb) == 0);
    snprintf(p, sizeof p, "%s/summary.json", dir);
    CHECK(dp_write_file_atomic(p, "{}\n", 3, eb) == 0);
    snprintf(p, sizeof p, "%s/vectors.npy", sdir);
    CHECK(dp_npy_save(p, DP_NPY_U1, 1, DP_VEC_LEN, sv, k, eb) == 0);
    snprintf(p, sizeof p, "%s/meta.npy", sdir);
    CHECK(dp_npy_save(p, DP_META_DESCR, sizeof(dp_meta), 0, sm, k, eb) == 0);
    snprintf(p, sizeof p, "%s/labels.npy", sdir);
    CHECK(dp_npy_save(p, DP_NPY_I2, 2, 0, sl, k, eb) == 0);
    snprintf(p, sizeof p, "%s/classes.tsv", sdir);
    CHECK(dp_write_file_atomic(p, "0\tChat\n1\tEmail\n2\tVoip\n", 21, eb) == 0);
    dp_splitset_close(&s);
    free(src);
    free(sdir);
    free(tl);
    free(al);
    free(sl);
    free(sv);
    free(sm);
    return dir;
}

/* train -d DATASET_DIR: the rows labelled for the task, read in place, give
 * the model that a split folder of exactly those rows gives, bit for bit. */
static void test_train_on_dataset(void)
{
    char eb[DP_ERRBUF_SIZE], sdir[700];
    char *ds = make_dataset("tods", 96, 21);
    snprintf(sdir, sizeof sdir, "%s_split", ds);
    char *m1 = mpath("tods1.dpm"), *m2 = mpath("tods2.dpm");
    dp_train_opts o;
    opts(&o, ds, m1);
    o.hp.epochs = 2;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    o.train_dir = sdir;
    o.model_path = m2;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    CHECK(dp_test_same_file(m1, m2));
    dp_model *m = dp_model_load(m1, eb);
    CHECK(m && dp_model_hparams(m)->train_samples == 64);
    dp_model_free(m);
    /* the same for a gbt (flow rows): the dataset folder gives the split's model */
    o.kind = DP_MODEL_GBT;
    o.gbt_trees = 3, o.gbt_depth = 2, o.flow.npackets = 4, o.flow.payload_bytes = 8;
    o.train_dir = ds;
    o.model_path = m1;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    o.train_dir = sdir;
    o.model_path = m2;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    CHECK(dp_test_same_file(m1, m2));
    o.kind = DP_MODEL_CNN;
    /* the app column has no label: refused, naming the task */
    o.train_dir = ds;
    o.task = DP_TASK_APP;
    CHECK_EQ_INT(dp_train_run(&o, eb), -1);
    CHECK_STR_CONTAINS(eb, "no packet is labelled for the app task");
    free(ds);
    free(m1);
    free(m2);
}

/* A split folder of 3 classes with 60, 20 and 8 rows (flows of 4 rows). */
static char *make_imbalanced(const char *name)
{
    char eb[DP_ERRBUF_SIZE], p[700];
    char *src = make_split(name, 180, 31); /* balanced: 60 rows per class */
    dp_splitset s;
    CHECK(dp_splitset_open(&s, src, eb) == 0);
    char *dir = malloc(700);
    snprintf(dir, 700, "%s_imb", src);
    CHECK(dp_mkdirs(dir, eb) == 0);
    static const int keep[NCLS] = {60, 20, 8};
    int seen[NCLS] = {0};
    uint8_t *v = malloc(180 * DP_VEC_LEN);
    int16_t l[180];
    dp_meta m[180];
    uint64_t n = 0;
    for (uint64_t i = 0; i < s.n; i++) {
        int c = dp_splitset_label(&s, i);
        if (seen[c]++ >= keep[c])
            continue;
        memcpy(v + n * DP_VEC_LEN, dp_splitset_vector(&s, i), DP_VEC_LEN);
        l[n] = (int16_t)c;
        m[n++] = dp_splitset_meta(&s, i);
    }
    snprintf(p, sizeof p, "%s/vectors.npy", dir);
    CHECK(dp_npy_save(p, DP_NPY_U1, 1, DP_VEC_LEN, v, n, eb) == 0);
    snprintf(p, sizeof p, "%s/labels.npy", dir);
    CHECK(dp_npy_save(p, DP_NPY_I2, 2, 0, l, n, eb) == 0);
    snprintf(p, sizeof p, "%s/meta.npy", dir);
    CHECK(dp_npy_save(p, DP_META_DESCR, sizeof(dp_meta), 0, m, n, eb) == 0);
    snprintf(p, sizeof p, "%s/classes.tsv", dir);
    CHECK(dp_write_file_atomic(p, "0\tChat\n1\tEmail\n2\tVoip\n", 21, eb) == 0);
    dp_splitset_close(&s);
    free(v);
    free(src);
    return dir;
}

static void test_balance_weights_and_draws(void)
{
    const uint64_t counts[4] = {60, 20, 0, 8};
    float w[4];
    dp_train_class_weights(counts, 4, w);
    CHECK_NEAR(w[0], 88.0 / 180, 1e-6);
    CHECK_NEAR(w[1], 88.0 / 60, 1e-6);
    CHECK(w[2] == 0.0f);
    CHECK_NEAR(w[3], 88.0 / 24, 1e-6);
    CHECK_NEAR((60 * w[0] + 20 * w[1] + 8 * w[3]) / 88, 1.0, 1e-6); /* mean weight over the rows */

    /* class 0: rows 0..59, class 1: 100..119, class 2: none, class 3: 200..207 */
    uint32_t rows[88];
    for (int i = 0; i < 60; i++)
        rows[i] = (uint32_t)i;
    for (int i = 0; i < 20; i++)
        rows[60 + i] = 100 + (uint32_t)i;
    for (int i = 0; i < 8; i++)
        rows[80 + i] = 200 + (uint32_t)i;
    const size_t off[5] = {0, 60, 80, 80, 88};
    enum { N = 30000 };
    uint32_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    dp_rng r;
    dp_rng_seed(&r, 5);
    dp_train_balanced_draw(&r, rows, off, 4, a, N);
    dp_rng_seed(&r, 5);
    dp_train_balanced_draw(&r, rows, off, 4, b, N);
    CHECK(!memcmp(a, b, N * sizeof *a));
    int per[3] = {0, 0, 0}, bad = 0, hit[8] = {0};
    for (int i = 0; i < N; i++) {
        if (a[i] < 60)
            per[0]++;
        else if (a[i] >= 100 && a[i] < 120)
            per[1]++;
        else if (a[i] >= 200 && a[i] < 208)
            per[2]++, hit[a[i] - 200] = 1;
        else
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    for (int k = 0; k < 3; k++)
        CHECK_NEAR(per[k], N / 3.0, 400); /* sd 82 */
    for (int k = 0; k < 8; k++)
        CHECK(hit[k]); /* every row of the small class is drawn */
    free(a);
    free(b);
}

/* --balance on an imbalanced training set: undersample trains on 3 x 8 rows;
 * every mode is deterministic and gives another model than none; sample
 * resumes to the uninterrupted model; the mode used is stored in the model;
 * auto (the default) is sample here, and none on a balanced set. */
static void test_balance_train(void)
{
    char eb[DP_ERRBUF_SIZE];
    char *dir = make_imbalanced("bal");
    char *m0 = mpath("bal0.dpm");
    dp_train_opts o;
    opts(&o, dir, m0);
    o.hp.epochs = 2;
    CHECK_EQ_INT(o.balance, DP_BALANCE_AUTO);
    o.balance = DP_BALANCE_NONE;
    CHECK_EQ_INT(dp_train_run(&o, eb), 0);
    dp_model *m = dp_model_load(m0, eb);
    CHECK(m && dp_model_hparams(m)->train_samples == 88 && dp_model_hparams(m)->balance == DP_BALANCE_NONE);
    dp_model_free(m);
    for (int b = DP_BALANCE_UNDERSAMPLE; b <= DP_BALANCE_SAMPLE; b++) {
        char n1[64], n2[64];
        snprintf(n1, sizeof n1, "bal%d_1.dpm", b);
        snprintf(n2, sizeof n2, "bal%d_2.dpm", b);
        char *p1 = mpath(n1), *p2 = mpath(n2);
        o.balance = (dp_balance)b;
        CHECK(trains_same_twice(&o, p1, p2));
        CHECK(!dp_test_same_file(m0, p1));
        m = dp_model_load(p1, eb);
        CHECK(m && dp_model_hparams(m)->train_samples == (b == DP_BALANCE_UNDERSAMPLE ? 24 : 88));
        CHECK(m && dp_model_hparams(m)->balance == b);
        dp_model_free(m);
        if (b == DP_BALANCE_SAMPLE) {
            char *pa = mpath("bal_auto.dpm");
            o.model_path = pa;
            o.balance = DP_BALANCE_AUTO;
            CHECK_EQ_INT(dp_train_run(&o, eb), 0);
            CHECK(dp_test_same_file(p1, pa));
            o.balance = DP_BALANCE_SAMPLE;
            free(pa);
            char *p3 = mpath("bal_res.dpm");
            o.model_path = p3;
            o.max_steps = 7; /* killed in epoch 2 */
            CHECK_EQ_INT(dp_train_run(&o, eb), 0);
            o.max_steps = 0;
            o.resume = 1;
            CHECK_EQ_INT(dp_train_run(&o, eb), 0);
            CHECK(dp_test_same_file(p1, p3));
            o.resume = 0;
            free(p3);
        }
        free(p1);
        free(p2);
    }
    free(m0);
    free(dir);
}

/* train --balance with an unknown mode is a usage error (exit 2). */
/* Mixed precision (--precision bf16): the CNN and the SAE learn, the same
 * seed and threads give the same bytes, and not those of float32 (bf16 was
 * used). Skipped without AVX512_BF16. */
static void test_learns_bf16(void)
{
    char eb[DP_ERRBUF_SIZE];
    if (dp_nn_set_precision(DP_PREC_BF16, eb) != 0)
        SKIP("bf16 unavailable here: %s", eb);
    char *dir = make_split("bf16", 192, 3), *test = make_split("bf16_test", 96, 4);
    char *p1 = mpath("bf16_a.dpm"), *p2 = mpath("bf16_b.dpm"), *pf = mpath("bf16_f.dpm");
    for (int kind = DP_MODEL_CNN; kind <= DP_MODEL_SAE; kind++) {
        dp_train_opts o;
        opts(&o, dir, pf);
        o.kind = kind;
        o.hp.epochs = 8;
        CHECK(dp_train_run(&o, eb) == 0);
        o.precision = DP_PREC_BF16;
        CHECK(trains_same_twice(&o, p1, p2));
        CHECK(!dp_test_same_file(p1, pf));
        double acc = accuracy(p1, test), accf = accuracy(pf, test);
        if (acc < 0.9)
            fprintf(stderr, "  %s bf16 accuracy %.3f (fp32 %.3f)\n", kind == DP_MODEL_CNN ? "cnn" : "sae", acc, accf);
        CHECK(acc >= 0.9);
    }
    free(p1), free(p2), free(pf), free(dir), free(test);
}

/* --precision on the command line: an unknown word is a usage error (2) for
 * train, test and classify; bf16 where the CPU lacks it (simulated with
 * DEEPPACKET_CPU_NO_BF16) fails the run (1) naming AVX512_BF16, for train
 * and test; auto there is fp32, byte for byte. */
static void test_precision_cli(void)
{
    const char *dp = dp_test_cli();
    if (!dp)
        SKIP("deeppacket not built");
    char cmd[2000], out[4096];
    char *dir = make_split("pcli", 48, 1), *m1 = mpath("pcli1.dpm"), *m2 = mpath("pcli2.dpm");
    const char *cmds[] = {"train -d %s -m %s -t traffic --precision fp16", "test -d %s -m %s --precision 16",
                          "classify -m %2$s -r %1$s/x.pcap --precision bf32"};
    for (int i = 0; i < 3; i++) {
        int n = snprintf(cmd, sizeof cmd, "'%s' ", dp);
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, cmds[i], dir, m1);
        snprintf(cmd + n, sizeof cmd - (size_t)n, " 2>&1");
        CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 2);
        CHECK_STR_CONTAINS(out, "fp32, bf16 or auto");
    }
    const char *base = "--epochs 1 --channels 4 -j 1 -q --seed 3";
    snprintf(cmd, sizeof cmd, "'%s' train -d %s -m %s -t traffic %s 2>&1", dp, dir, m1, base);
    CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "DEEPPACKET_CPU_NO_BF16=1 '%s' train -d %s -m %s -t traffic %s --precision bf16 2>&1", dp,
             dir, m2, base);
    CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 1);
    CHECK_STR_CONTAINS(out, "AVX512_BF16");
    snprintf(cmd, sizeof cmd, "DEEPPACKET_CPU_NO_BF16=1 '%s' test -d %s -m %s -o %s.rep --precision bf16 2>&1", dp,
             dir, m1, m1);
    CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 1);
    CHECK_STR_CONTAINS(out, "AVX512_BF16");
    snprintf(cmd, sizeof cmd, "DEEPPACKET_CPU_NO_BF16=1 '%s' train -d %s -m %s -t traffic %s --precision auto 2>&1", dp,
             dir, m2, base);
    CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 0);
    CHECK(dp_test_same_file(m1, m2));
    free(dir), free(m1), free(m2);
}

static void test_balance_cli(void)
{
    char self[400] = {0}, cmd[1200];
    if (readlink("/proc/self/exe", self, sizeof self - 1) < 0)
        SKIP("cannot find this test binary");
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    char bin[500];
    snprintf(bin, sizeof bin, "%s/../deeppacket", self);
    if (access(bin, X_OK) != 0)
        SKIP("%s not built", bin);
    snprintf(cmd, sizeof cmd, "'%s' train -d /nonexistent -m /nonexistent.model -t traffic --balance oversample "
             "2>/dev/null", bin);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    snprintf(cmd, sizeof cmd, "'%s' train --help | grep -q -- '--balance MODE'", bin);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    dp_test_prog = "test_train";
    DP_RUN(test_determinism);
    DP_RUN(test_resume);
    DP_RUN(test_resume_settings);
    DP_RUN(test_learns_cnn);
    DP_RUN(test_learns_sae);
    DP_RUN(test_validation);
    DP_RUN(test_divergence);
    DP_RUN(test_init_from);
    DP_RUN(test_bad_input);
    DP_RUN(test_train_on_dataset);
    DP_RUN(test_balance_weights_and_draws);
    DP_RUN(test_balance_train);
    DP_RUN(test_balance_cli);
    DP_RUN(test_curves_plot);
    DP_RUN(test_curves_train);
    DP_RUN(test_learns_bf16);
    DP_RUN(test_precision_cli);
    dp_eval_plot_release(); /* training curves drew text: cairo's and fontconfig's caches */
    return dp_test_end();
}
