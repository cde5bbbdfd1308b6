/* trace_train: per-step training losses of the CNN on deterministic
 * batches, for comparing the C engine step by step with the PyTorch twin
 * (tools/trace_train.py). Batch s is rows (16*s + b) * 7919 mod n,
 * b = 0..15, of SPLIT_DIR; dropout off; Adam (1e-3, 0.9, 0.999, 1e-8).
 *
 *   trace_train [-p PERTURB] [-q SPREAD] SPLIT_DIR INIT.dpm STEPS THREADS [DUMP_STEP DUMP_PREFIX]
 *
 * -p P (P > 0) first nudges 10 initial weights by one ulp (index
 * (P * 1000003 + i * 1037489) mod nparams, i = 0..9, towards +inf; the same
 * in tools/trace_train.py): a family of trajectories that differ only by
 * float-rounding-sized noise, to measure the chaotic spread. -q Q (Q > 0)
 * nudges about a quarter of all weights the same way (those j with
 * ((j * 2654435761 + Q * 40503) >> 7) & 3 == 0, uint64): noise of the size
 * that one change of summation order makes, so trajectories part early.
 * Prints "step loss" per line. With DUMP_STEP k: writes DUMP_PREFIX.grads
 * (gradients of step k) and .params0/.m0/.v0, .params1/.m1/.v1 (parameters
 * and Adam state before and after step k), raw float32 in the model's
 * tensor order (tools/trace_compare.py reads them). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dp_dataset.h"
#include "model/dp_model.h"
#include "model/dp_model_train.h"
#include "nn/dp_nn.h"

static void dump(const char *prefix, const char *ext, const float *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s.%s", prefix, ext);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, sizeof(float), n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* PREFIX.params<tag>, .m<tag>, .v<tag>: parameters and Adam state */
static void dump_state(const char *prefix, dp_model *m, const char *tag)
{
    char ext[16];
    size_t np = dp_model_nparams(m);
    snprintf(ext, sizeof ext, "params%s", tag);
    dump(prefix, ext, dp_model_params(m), np);
    snprintf(ext, sizeof ext, "m%s", tag);
    dump(prefix, ext, dp_model_adam_m(m), np);
    snprintf(ext, sizeof ext, "v%s", tag);
    dump(prefix, ext, dp_model_adam_v(m), np);
}

int main(int argc, char **argv)
{
    long perturb = 0, spread = 0;
    while (argc > 2 && (!strcmp(argv[1], "-p") || !strcmp(argv[1], "-q"))) {
        *(argv[1][1] == 'p' ? &perturb : &spread) = atol(argv[2]);
        argv += 2;
        argc -= 2;
    }
    if (argc != 5 && argc != 7) {
        fprintf(stderr, "usage: trace_train [-p PERTURB] [-q SPREAD] SPLIT_DIR INIT.dpm STEPS THREADS [DUMP_STEP DUMP_PREFIX]\n");
        return 2;
    }
    char eb[DP_ERRBUF_SIZE];
    int steps = atoi(argv[3]);
    dp_nn_set_threads(atoi(argv[4]));
    int dstep = argc == 7 ? atoi(argv[5]) : -1;
    const char *prefix = argc == 7 ? argv[6] : NULL;
    dp_splitset ss;
    if (dp_splitset_open(&ss, argv[1], eb) != 0) {
        fprintf(stderr, "%s\n", eb);
        return 1;
    }
    dp_model *m = dp_model_load(argv[2], eb);
    if (!m) {
        fprintf(stderr, "%s\n", eb);
        return 1;
    }
    enum { B = 16 };
    static uint8_t xb[B * DP_VEC_LEN];
    int yb[B];
    size_t np = dp_model_nparams(m);
    if (perturb > 0) {
        float *w = dp_model_params(m);
        for (uint64_t i = 0; i < 10; i++) {
            uint64_t j = ((uint64_t)perturb * 1000003u + i * 1037489u) % np;
            w[j] = nextafterf(w[j], INFINITY);
        }
    }
    if (spread > 0) {
        float *w = dp_model_params(m);
        for (uint64_t j = 0; j < np; j++)
            if ((((j * 2654435761u + (uint64_t)spread * 40503u) >> 7) & 3) == 0)
                w[j] = nextafterf(w[j], INFINITY);
    }
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++) {
            uint64_t r = ((uint64_t)(16 * s + b) * 7919u) % ss.n;
            memcpy(xb + (size_t)b * DP_VEC_LEN, dp_splitset_vector(&ss, r), DP_VEC_LEN);
            yb[b] = dp_splitset_label(&ss, r);
        }
        if (!dp_model_forward(m, xb, NULL, B, 0, NULL, eb)) {
            fprintf(stderr, "%s\n", eb);
            return 1;
        }
        float loss = dp_model_loss(m, yb, B, NULL);
        if (dp_model_backward(m, yb, B, eb) != 0) {
            fprintf(stderr, "%s\n", eb);
            return 1;
        }
        if (s == dstep) {
            dump(prefix, "grads", dp_model_grads(m), np);
            dump_state(prefix, m, "0");
        }
        if (dp_model_adam_step(m, 1e-3f, 0.9f, 0.999f, 1e-8f, eb) != 0) {
            fprintf(stderr, "%s\n", eb);
            return 1;
        }
        if (s == dstep)
            dump_state(prefix, m, "1");
        printf("%d %.7f\n", s, (double)loss);
        fflush(stdout);
    }
    dp_model_free(m);
    dp_splitset_close(&ss);
    return 0;
}
