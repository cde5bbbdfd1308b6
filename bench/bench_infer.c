/* bench_infer: CNN inference (dp_model_predict, the path of `test` and
 * `classify`) in float32 against bf16, side by side: rounds alternate the
 * two precisions so that load changes hit both, each round times whole
 * passes over the same packets in batches, and the rates, the bf16 / fp32
 * ratio of each round and their medians are printed. On demand, not in CI;
 * figures in docs/benchmarks.md ("bf16").
 *
 *   make build/bench_infer
 *   build/bench_infer [-t app|traffic] [-j THREADS] [-b BATCH] [-r ROUNDS] [-p PASSES] [-P fp32|bf16]
 *                     [SPLIT_TEST_DIR | random]
 *
 * SPLIT_TEST_DIR: a `deeppacket split` side (.../application_classification/test):
 * real packets, in their stored order. random (the default): 2,560
 * full-length vectors of random bytes, the worst case (no zero tail to
 * skip). The model is a freshly initialised reference CNN (its weights do
 * not change the work). Each round keeps the best of PASSES passes, after
 * one warm-up pass (oneDNN builds its kernels on first use of a shape).
 * -P runs one precision only (to profile it alone, e.g. under perf record). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset/dp_dataset.h"
#include "model/dp_model.h"
#include "nn/dp_nn.h"
#include "util/dp_util.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* packets per second of the best of `passes` passes over n packets */
static double rate(dp_model *m, const uint8_t *x, size_t n, int batch, int passes, float *lp, char *eb)
{
    double best = 0;
    for (int p = 0; p <= passes; p++) { /* pass 0 warms up */
        double t0 = dp_now();
        for (size_t i = 0; i + (size_t)batch <= n; i += (size_t)batch)
            if (dp_model_predict(m, x + i * DP_VEC_LEN, batch, lp, eb) != 0) {
                fprintf(stderr, "bench_infer: %s\n", eb);
                exit(1);
            }
        double r = (double)(n / (size_t)batch * (size_t)batch) / (dp_now() - t0);
        if (p && r > best)
            best = r;
    }
    return best;
}

/* The packets to time: 2,560 vectors of random bytes (src "random", into
 * *rnd), or the vectors of a split side opened into *set; n of them. NULL
 * with eb set when they cannot be had. */
static const uint8_t *packets(const char *src, int task, dp_splitset *set, uint8_t **rnd, size_t *n, char *eb)
{
    if (strcmp(src, "random") == 0) {
        *n = 2560;
        *rnd = malloc(*n * DP_VEC_LEN);
        dp_rng r;
        dp_rng_seed(&r, 3);
        for (size_t i = 0; *rnd && i < *n * DP_VEC_LEN; i++)
            (*rnd)[i] = (uint8_t)dp_rng_below(&r, 256);
        if (!*rnd)
            snprintf(eb, DP_ERRBUF_SIZE, "out of memory");
        return *rnd;
    }
    if (dp_splitset_open_task(set, src, task, eb) != 0)
        return NULL;
    *n = (size_t)set->vectors.shape[0];
    return set->vectors.data;
}

int main(int argc, char **argv)
{
    int task = DP_TASK_APP, threads = 2, batch = 64, rounds = 7, passes = 2, only = -1, opt;
    char eb[DP_ERRBUF_SIZE];
    while ((opt = getopt(argc, argv, "t:j:b:r:p:P:")) != -1) {
        if (opt == 't' && (!strcmp(optarg, "app") || !strcmp(optarg, "traffic")))
            task = strcmp(optarg, "traffic") ? DP_TASK_APP : DP_TASK_TRAFFIC;
        else if (opt == 'j')
            threads = atoi(optarg);
        else if (opt == 'b')
            batch = atoi(optarg);
        else if (opt == 'r')
            rounds = atoi(optarg);
        else if (opt == 'p')
            passes = atoi(optarg);
        else if (opt == 'P' && (!strcmp(optarg, "fp32") || !strcmp(optarg, "bf16")))
            only = strcmp(optarg, "fp32") ? DP_PREC_BF16 : DP_PREC_FP32;
        else
            return fprintf(stderr, "usage: %s [-t app|traffic] [-j threads] [-b batch] [-r rounds] [-p passes] "
                                   "[-P fp32|bf16] [SPLIT_TEST_DIR | random]\n", argv[0]), 2;
    }
    const char *src = optind < argc ? argv[optind] : "random";
    if (batch < 1 || batch > DP_MODEL_PREDICT_CHUNK || rounds < 1 || rounds > 64 || passes < 1 || threads < 1)
        return fprintf(stderr, "bench_infer: bad -b (1..%d), -r (1..64), -p or -j\n", DP_MODEL_PREDICT_CHUNK), 2;
    if (dp_nn_precision_resolve(DP_PREC_BF16, eb) < 0)
        return fprintf(stderr, "bench_infer: %s\n", eb), 1;
    /* 1. the packets */
    dp_splitset set = {0};
    size_t n;
    uint8_t *rnd = NULL;
    const uint8_t *x = packets(src, task, &set, &rnd, &n, eb);
    if (!x)
        return fprintf(stderr, "bench_infer: %s\n", eb), 1;
    if (n < (size_t)batch)
        return fprintf(stderr, "bench_infer: %s: fewer than %d packets\n", src, batch), 1;
    /* 2. the model */
    int V = task == DP_TASK_APP ? 15 : 11;
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_CNN, task, V);
    dp_nn_set_threads(threads);
    dp_model *m = dp_model_create(&a, task, NULL, 9876, eb);
    float *lp = malloc(sizeof(float) * (size_t)batch * V);
    if (!m || !lp)
        return fprintf(stderr, "bench_infer: %s\n", m ? "out of memory" : eb), 1;
    /* 3. rounds, the precisions alternating */
    printf("# %s CNN inference, %s (%zu packets), batch %d, %d threads, best of %d passes per round\n",
           task == DP_TASK_APP ? "app" : "traffic", src, n / (size_t)batch * (size_t)batch, batch, threads, passes);
    printf("round | fp32 packets/s | bf16 packets/s | bf16 / fp32\n");
    double ratio[64], f32[64], b16[64];
    for (int r = 0; r < rounds; r++) {
        f32[r] = b16[r] = 0;
        if (only != DP_PREC_BF16) {
            dp_model_set_precision(m, DP_PREC_FP32, eb);
            f32[r] = rate(m, x, n, batch, passes, lp, eb);
        }
        if (only != DP_PREC_FP32) {
            dp_model_set_precision(m, DP_PREC_BF16, eb);
            b16[r] = rate(m, x, n, batch, passes, lp, eb);
        }
        ratio[r] = f32[r] > 0 ? b16[r] / f32[r] : 0;
        printf("%5d | %14.0f | %14.0f | %.2fx\n", r + 1, f32[r], b16[r], ratio[r]);
        fflush(stdout);
    }
    printf("median | %13.0f | %14.0f | %.2fx (median of the rounds' ratios)\n", median(f32, rounds),
           median(b16, rounds), median(ratio, rounds));
    dp_model_free(m);
    free(lp);
    if (rnd)
        free(rnd);
    else
        dp_splitset_close(&set);
    return 0;
}
