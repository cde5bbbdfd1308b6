/* dp_train_bench: train --bench (dp_train.h). */
#include "train/dp_train.h"

#include <math.h>
#include <stdlib.h>

#include "dataset/dp_dataset.h"
#include "nn/dp_nn.h"

int dp_train_bench(int kind, int task, int nclasses, int batch, int steps, int threads, int precision,
                   const char *infer_dir, double *train_sps, double *infer_pps, double cpu_rates[2],
                   char *errbuf)
{
    if (dp_nn_set_precision(precision, errbuf) != 0)
        return -1;
    dp_splitset set = {0};
    if (infer_dir) {
        if (dp_splitset_open_task(&set, infer_dir, task, errbuf) != 0)
            return -1;
        if (set.vectors.shape[0] < (uint64_t)batch) {
            dp_err(errbuf, "%s: %llu vectors, fewer than the batch size %d", infer_dir,
                   (unsigned long long)set.vectors.shape[0], batch);
            dp_splitset_close(&set);
            return -1;
        }
    }
    dp_nn_set_threads(threads);
    dp_arch a;
    dp_arch_default(&a, kind, task, nclasses);
    dp_model *m = dp_model_create(&a, task, NULL, 9876, errbuf);
    if (!m)
        return -1;
    dp_model_set_precision(m, dp_nn_get_precision(), errbuf); /* its inference in the training's (resolved) */
    uint8_t *x = malloc((size_t)batch * DP_VEC_LEN);
    int *y = malloc(sizeof(int) * (size_t)batch);
    float *lp = malloc(sizeof(float) * (size_t)batch * nclasses);
    int rc = -1;
    if (!x || !y || !lp) {
        dp_err(errbuf, "out of memory");
        goto out;
    }
    dp_rng r;
    dp_rng_seed(&r, 1);
    for (size_t i = 0; i < (size_t)batch * DP_VEC_LEN; i++)
        x[i] = (uint8_t)dp_rng_below(&r, 256);
    for (int b = 0; b < batch; b++)
        y[b] = (int)dp_rng_below(&r, (uint64_t)nclasses);
    double t0 = 0, c0 = 0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1)
            t0 = dp_now(), c0 = dp_cpu_now();
        if (!dp_model_forward(m, x, NULL, batch, 1, &r, errbuf))
            goto out;
        dp_model_loss(m, y, batch, NULL);
        if (dp_model_backward(m, y, batch, errbuf) != 0 || dp_model_adam_step(m, 1e-3f, 0.9f, 0.999f, 1e-8f, errbuf) != 0)
            goto out;
    }
    *train_sps = (double)steps * batch / fmax(dp_now() - t0, 1e-9);
    if (cpu_rates)
        cpu_rates[0] = (double)steps * batch / fmax(dp_cpu_now() - c0, 1e-9);
    for (int s = 0; s <= steps; s++) {
        if (s == 1)
            t0 = dp_now(), c0 = dp_cpu_now();
        const uint8_t *xs = x;
        if (infer_dir)
            xs = set.vectors.data + DP_VEC_LEN * ((uint64_t)s * batch % (set.vectors.shape[0] - (uint64_t)batch + 1));
        if (dp_model_predict(m, xs, batch, lp, errbuf) != 0)
            goto out;
    }
    *infer_pps = (double)steps * batch / fmax(dp_now() - t0, 1e-9);
    if (cpu_rates)
        cpu_rates[1] = (double)steps * batch / fmax(dp_cpu_now() - c0, 1e-9);
    rc = 0;
out:
    free(x);
    free(y);
    free(lp);
    dp_model_free(m);
    if (infer_dir)
        dp_splitset_close(&set);
    return rc;
}
