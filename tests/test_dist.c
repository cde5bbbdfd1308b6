/* test_dist: data-parallel training (dp_dist, issue 13 part 2).
 *  - per-row dropout masks do not depend on how a batch is cut;
 *  - a build without MPI refuses a run under mpirun;
 *  - in a `make MPI=1` build (BUILD=build-mpi), `mpirun -np 2 deeppacket
 *    train` against the same binary in one process: CNN (dropout, a last
 *    batch of one row, validation), SAE with pre-training, the flow NN with
 *    class weights, the GBT; the loss curves match to float rounding, the
 *    models are sane and close, a resumed 2-rank run equals an
 *    uninterrupted one, a bad input fails on every rank without a hang.
 * The MPI tests skip with a message in a build without MPI or without
 * mpirun. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset/dp_dataset.h"
#include "dp_test.h"
#include "model/dp_model.h"
#include "model/dp_model_train.h"
#include "train/dp_dist.h"
#include "util/dp_util.h"

#define MPIRUN "timeout 120 mpirun --oversubscribe --allow-run-as-root -np 2"

#define tp dp_test_path

/* A split folder of `rows` packets in flows of 5: class c = flow % 3, an
 * IPv4/TCP header of length 80 + 200 c + noise, noise bytes after it. */
static void make_set(const char *dir, int rows)
{
    uint8_t *v = calloc((size_t)rows, DP_VEC_LEN);
    int16_t *l = calloc((size_t)rows, 2);
    dp_meta *m = calloc((size_t)rows, sizeof(dp_meta));
    dp_rng r;
    dp_rng_seed(&r, 77);
    for (int i = 0; i < rows; i++) {
        int f = i / 5, c = f % 3, len = 80 + 200 * c + (int)dp_rng_below(&r, 50);
        uint8_t *x = v + (size_t)i * DP_VEC_LEN;
        x[0] = 0x45, x[2] = (uint8_t)(len >> 8), x[3] = (uint8_t)len, x[8] = 64, x[9] = 6, x[32] = 0x50;
        for (int k = 40; k < len; k++)
            x[k] = (uint8_t)dp_rng_below(&r, 256);
        l[i] = (int16_t)c;
        m[i] = (dp_meta){.index = (uint64_t)i, .time = f + 0.01 * (i % 5), .flow = 500 + (uint64_t)f, .ipver = 4,
                         .proto = 6, .sport = 40000, .dport = 443};
    }
    CHECK(dp_test_write_split(dir, v, l, m, (size_t)rows, "0\tChat\n1\tEmail\n2\tVoip\n") == 0);
    free(v), free(l), free(m);
}

/* Row b's dropout mask depends on (key, row0 + b) alone: a batch of 8 run
 * whole equals its two slices [0, 3) and [3, 8) run with row0 0 and 3; the
 * slice run with the wrong row0, or another key, differs. */
static void test_dropout_per_row(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_SAE, DP_TASK_TRAFFIC, 3);
    a.dropout = 0.5f;
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, NULL, 5, eb);
    CHECK(m != NULL);
    if (!m)
        return;
    uint8_t *x = malloc(8 * DP_VEC_LEN);
    dp_rng r;
    dp_rng_seed(&r, 3);
    for (size_t i = 0; i < 8 * DP_VEC_LEN; i++)
        x[i] = (uint8_t)dp_rng_below(&r, 256);
    /* the GEMMs may round otherwise for another row count: compare to 1e-5;
     * another mask moves a logit by far more */
    float whole[8 * 3], part[8 * 3], other[8 * 3];
    memcpy(whole, dp_model_forward_rows(m, x, NULL, 8, 42, 0, eb), sizeof whole);
    memcpy(part, dp_model_forward_rows(m, x, NULL, 3, 42, 0, eb), 3 * 3 * sizeof(float));
    memcpy(part + 9, dp_model_forward_rows(m, x + 3 * DP_VEC_LEN, NULL, 5, 42, 3, eb), 5 * 3 * sizeof(float));
    CHECK_NEAR(dp_test_max_abs_diff(whole, part, 8 * 3), 0, 1e-5);
    memcpy(other, dp_model_forward_rows(m, x + 3 * DP_VEC_LEN, NULL, 5, 42, 0, eb), 5 * 3 * sizeof(float));
    CHECK(dp_test_max_abs_diff(whole + 9, other, 5 * 3) > 1e-3);
    memcpy(other, dp_model_forward_rows(m, x, NULL, 8, 43, 0, eb), sizeof other);
    CHECK(dp_test_max_abs_diff(whole, other, 8 * 3) > 1e-3);
    free(x);
    dp_model_free(m);
}

/* Without MPI in the build, a launcher's world size above 1 is refused by
 * dp_dist_init and by `train` (exit 1, saying how to build with MPI). */
static void test_stub_refuses_mpirun(void)
{
#ifdef DP_WITH_MPI
    SKIP("an MPI build (the stub is the build without MPI)");
#else
    char eb[DP_ERRBUF_SIZE], cmd[2048];
    CHECK_EQ_INT(dp_dist_init(eb), 0);
    CHECK_EQ_INT(dp_dist_size(), 1);
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    CHECK_EQ_INT(dp_dist_init(eb), -1);
    CHECK_STR_CONTAINS(eb, "make MPI=1");
    unsetenv("OMPI_COMM_WORLD_SIZE");
    const char *bin = dp_test_cli();
    if (!bin)
        SKIP("no deeppacket binary in $BUILD (run through make check)");
    char *dir = strdup(tp("stub_set")), *log = strdup(tp("stub.log"));
    make_set(dir, 20);
    snprintf(cmd, sizeof cmd, "OMPI_COMM_WORLD_SIZE=2 '%s' train -d '%s' -m '%s' -t traffic 2> '%s'", bin, dir,
             tp("stub.dpm"), log);
    CHECK_EQ_INT(dp_test_system(cmd), 1);
    char *text = dp_read_file(log, NULL, eb);
    CHECK_STR_CONTAINS(text, "built without MPI");
    CHECK(access(tp("stub.dpm"), F_OK) != 0);
    free(text), free(dir), free(log);
#endif
}

/* ---- 2 ranks against one process (MPI builds) ------------------------------- */

/* The binary for the MPI tests, or NULL with *why set. */
static const char *mpi_cli(const char **why)
{
#ifndef DP_WITH_MPI
    *why = "built without MPI (make MPI=1 check runs these; scripts/test.sh does)";
    return NULL;
#else
    if (dp_test_system("command -v mpirun > /dev/null") != 0) {
        *why = "mpirun not installed (Debian openmpi-bin)";
        return NULL;
    }
    const char *bin = dp_test_cli();
    if (!bin)
        *why = "no deeppacket binary in $BUILD (run through make MPI=1 check)";
    return bin;
#endif
}

/* Reads a --loss-log file: its losses into loss[], their count (-1 on error). */
static int read_curve(const char *path, double *loss, int cap)
{
    char eb[DP_ERRBUF_SIZE];
    char *text = dp_read_file(path, NULL, eb), *save = NULL;
    if (!text) {
        fprintf(stderr, "  %s\n", eb);
        return -1;
    }
    int n = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char ph[32];
        int e;
        long st;
        if (strncmp(line, "phase", 5) && n < cap && sscanf(line, "%31s %d %ld %lf", ph, &e, &st, &loss[n]) == 4)
            n++;
    }
    free(text);
    return n;
}

/* Trains with ARGS in one process (into NAME1.dpm, NAME1.tsv) and with 2
 * ranks (NAME2.*); checks both curves have `steps` steps that agree to
 * 1e-4 relative and both models load, finite and within 1e-3 of each other.
 * Returns 1 when both runs succeeded. */
static int one_vs_two(const char *bin, const char *name, const char *args, int steps)
{
    char cmd[4096], m1[600], m2[600], c1[600], c2[600], eb[DP_ERRBUF_SIZE];
    snprintf(m1, sizeof m1, "%s/%s1.dpm", dp_test_tmpdir(), name);
    snprintf(m2, sizeof m2, "%s/%s2.dpm", dp_test_tmpdir(), name);
    snprintf(c1, sizeof c1, "%s/%s1.tsv", dp_test_tmpdir(), name);
    snprintf(c2, sizeof c2, "%s/%s2.tsv", dp_test_tmpdir(), name);
    snprintf(cmd, sizeof cmd, "'%s' train %s -j 1 -q -m '%s' --loss-log '%s'", bin, args, m1, c1);
    int ok1 = dp_test_system(cmd) == 0;
    snprintf(cmd, sizeof cmd, MPIRUN " '%s' train %s -j 1 -q -m '%s' --loss-log '%s'", bin, args, m2, c2);
    int ok2 = dp_test_system(cmd) == 0;
    CHECK(ok1);
    CHECK(ok2);
    if (!ok1 || !ok2)
        return 0;
    static double a[4096], b[4096];
    int na = read_curve(c1, a, 4096), nb = read_curve(c2, b, 4096);
    CHECK_EQ_INT(na, steps);
    CHECK_EQ_INT(nb, steps);
    double worst = 0;
    for (int i = 0; i < na && i < nb; i++)
        worst = fmax(worst, fabs(a[i] - b[i]) / fmax(fabs(a[i]), 1e-3));
    CHECK_NEAR(worst, 0, 1e-4);
    dp_model *x = dp_model_load(m1, eb), *y = x ? dp_model_load(m2, eb) : NULL;
    CHECK(x && y);
    if (x && y && dp_model_nparams(x) == dp_model_nparams(y)) {
        double d = 0;
        const float *p = dp_model_params(x), *q = dp_model_params(y);
        for (size_t i = 0; i < dp_model_nparams(x); i++) {
            CHECK(isfinite(p[i]) && isfinite(q[i]));
            d = fmax(d, fabs((double)p[i] - q[i]));
        }
        CHECK_NEAR(d, 0, 1e-3);
        CHECK_EQ_INT(dp_model_hparams(y)->epochs_run, dp_model_hparams(x)->epochs_run);
    }
    dp_model_free(x), dp_model_free(y);
    return 1;
}

/* CNN, dropout 0.3, 2 epochs with a validation split; the 2-rank run
 * writes the files the one-process run writes (model, checkpoint, lock,
 * loss log), nothing more. */
static void test_mpi_cnn(void)
{
    const char *why, *bin = mpi_cli(&why);
    if (!bin)
        SKIP("%s", why);
    char *dir = strdup(tp("cnn_set")), args[1024];
    make_set(dir, 100);
    snprintf(args, sizeof args, "-d '%s' -t traffic --channels 4 --dropout 0.3 --epochs 2 --validation 0.2", dir);
    /* 100 rows in 20 flows, 0.2 of the flows held out: count the steps */
    char cmd[2048], out[256], want[256];
    snprintf(cmd, sizeof cmd, "'%s' train %s -j 1 -m '%s' 2>&1 | grep -o '[0-9]* training rows'", bin, args,
             tp("count.dpm"));
    CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 0);
    int rows = atoi(out);
    CHECK(rows > 40 && rows < 100);
    one_vs_two(bin, "cnn", args, 2 * ((rows + 15) / 16));
    snprintf(cmd, sizeof cmd, "cd '%s' && ls | grep cnn1 | tr '\\n' ' '", dp_test_tmpdir());
    CHECK_EQ_INT(dp_test_sh(cmd, want, sizeof want), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && ls | grep cnn2 | sed s/cnn2/cnn1/ | tr '\\n' ' '", dp_test_tmpdir());
    CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 0);
    CHECK(!strcmp(out, want));
    CHECK_STR_CONTAINS(want, "cnn1.dpm cnn1.dpm.ckpt");
    CHECK_STR_CONTAINS(want, "cnn1.tsv");
    free(dir);
}

/* SAE: one pre-training epoch per layer and one supervised epoch; the
 * flow NN with class weights, 13 flows at batch 4 (the last batch of one
 * flow leaves rank 0 nothing); the GBT (the flows shared out, one booster
 * through XGBoost's rabit communicator and our tracker: on a set this small,
 * whose features have fewer values than the histogram bins, the same bytes
 * as one process). */
static void test_mpi_kinds(void)
{
    const char *why, *bin = mpi_cli(&why);
    if (!bin)
        SKIP("%s", why);
    char *dir = strdup(tp("kinds_set")), args[2048];
    make_set(dir, 64);
    snprintf(args, sizeof args, "-d '%s' -t traffic --model sae --pretrain-epochs 1 --epochs 1", dir);
    one_vs_two(bin, "sae", args, 5 * 4 + 4);
    /* flow NN: 64 rows = 13 flows (the last of 4 rows), batch 4 */
    snprintf(args, sizeof args, "-d '%s' -t traffic --model flow --packets 4 --payload-bytes 8 --epochs 2 "
             "--batch-size 4 --balance weight", dir);
    one_vs_two(bin, "flow", args, 2 * 4);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, MPIRUN " '%s' train -d '%s' -t traffic --model gbt --packets 4 --trees 4 -j 1 "
             "-m '%s' 2>&1 | grep -c 'shared out over 2 ranks (6 on rank 0)' && '%s' train -d '%s' -t traffic "
             "--model gbt --packets 4 --trees 4 -j 1 -q -m '%s'", bin, dir, tp("gbt2.dpm"), bin, dir, tp("gbt1.dpm"));
    char out[64];
    CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 0);
    CHECK_EQ_INT(atoi(out), 1);
    CHECK(dp_test_same_file(tp("gbt1.dpm"), tp("gbt2.dpm")));
    /* rank 0 cannot write the model: both ranks end, exit 1, no hang */
    snprintf(cmd, sizeof cmd, MPIRUN " '%s' train -d '%s' -t traffic --model gbt --packets 4 --trees 4 -j 1 -q "
             "-m '%s/nodir/g.dpm' 2>&1", bin, dir, dp_test_tmpdir());
    char err[4096];
    CHECK(dp_test_sh(cmd, err, sizeof err) != 0);
    CHECK_STR_CONTAINS(err, "rank 0: ");
    CHECK_STR_CONTAINS(err, "nodir/g.dpm");
    free(dir);
}

/* A 2-rank run stopped in its second epoch and resumed with --resume (all
 * ranks load rank 0's checkpoint) writes the same bytes as an
 * uninterrupted 2-rank run; a missing training set fails on both ranks,
 * exit 1, no hang; so does a rank given another training set than rank 0. */
static void test_mpi_resume_and_failure(void)
{
    const char *why, *bin = mpi_cli(&why);
    if (!bin)
        SKIP("%s", why);
    char *dir = strdup(tp("res_set")), cmd[4096], eb[DP_ERRBUF_SIZE];
    make_set(dir, 48); /* 3 steps per epoch */
    const char *common = "-t traffic --channels 4 --dropout 0.3 --epochs 3 --patience 9 -j 1 -q";
    snprintf(cmd, sizeof cmd, MPIRUN " '%s' train -d '%s' %s -m '%s'", bin, dir, common, tp("full.dpm"));
    CHECK_EQ_INT(dp_test_system(cmd), 0);
    snprintf(cmd, sizeof cmd, MPIRUN " '%s' train -d '%s' %s -m '%s' --max-steps 5", bin, dir, common,
             tp("cut.dpm"));
    CHECK_EQ_INT(dp_test_system(cmd), 0);
    CHECK(access(tp("cut.dpm"), F_OK) != 0);
    CHECK(access(tp("cut.dpm.ckpt"), F_OK) == 0);
    snprintf(cmd, sizeof cmd, MPIRUN " '%s' train -d '%s' %s -m '%s' --resume", bin, dir, common, tp("cut.dpm"));
    CHECK_EQ_INT(dp_test_system(cmd), 0);
    CHECK(dp_test_same_file(tp("full.dpm"), tp("cut.dpm")));
    snprintf(cmd, sizeof cmd, MPIRUN " '%s' train -d '%s' %s -m '%s' 2> '%s'", bin, tp("missing"), common,
             tp("bad.dpm"), tp("bad.log"));
    int rc = dp_test_system(cmd);
    CHECK(rc != 0 && rc != 124); /* 124: timeout, a hang */
    char *text = dp_read_file(tp("bad.log"), NULL, eb);
    CHECK_STR_CONTAINS(text, "rank 0: ");
    CHECK_STR_CONTAINS(text, "rank 1: ");
    CHECK_STR_CONTAINS(text, "missing");
    free(text);
    /* rank 1 given another training set (MPMD: one -d per rank) */
    char *other = strdup(tp("res_other"));
    make_set(other, 40);
    snprintf(cmd, sizeof cmd, "timeout 120 mpirun --oversubscribe --allow-run-as-root -np 1 '%s' train -d '%s' %s "
             "-m '%s' : -np 1 '%s' train -d '%s' %s -m '%s' 2> '%s'", bin, dir, common, tp("two.dpm"), bin, other,
             common, tp("two.dpm"), tp("two.log"));
    rc = dp_test_system(cmd);
    CHECK(rc != 0 && rc != 124);
    CHECK(access(tp("two.dpm"), F_OK) != 0);
    text = dp_read_file(tp("two.log"), NULL, eb);
    CHECK_STR_CONTAINS(text, "rank 1: ");
    CHECK_STR_CONTAINS(text, "every rank must read the same training set");
    free(text), free(other);
    free(dir);
}

int main(void)
{
    dp_test_prog = "test_dist";
    DP_RUN(test_dropout_per_row);
    DP_RUN(test_stub_refuses_mpirun);
    DP_RUN(test_mpi_cnn);
    DP_RUN(test_mpi_kinds);
    DP_RUN(test_mpi_resume_and_failure);
    return dp_test_end();
}
