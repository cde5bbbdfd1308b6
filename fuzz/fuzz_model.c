/* libFuzzer target for the model and checkpoint loaders: the input is the
 * file minus its checksum, which the target appends (FNV-1a, as the writer
 * does), so that the fuzzer explores the structure behind it. The first
 * byte picks the loader. A loaded model must be finite and consistent, and
 * a gbt model, whose booster passed dp_gbt_check, must predict probabilities
 * (seed gbt: `train --model gbt` on data/corpus, 1 round of depth 2, 11
 * classes, 2 packets without payload: 88 features). */
#include <math.h>
#include <string.h>

#include "fuzz_memfile.h"
#include "model/dp_model.h"
#include "model/dp_model_train.h"
#include "model/dp_model_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    int ckpt = data[0] & 1;
    size_t n = size - 1;
    uint8_t *file = malloc(n + 8);
    if (!file)
        return 0;
    memcpy(file, data + 1, n);
    uint64_t h = dp_fnv1a(file, n, DP_FNV_INIT);
    for (int i = 0; i < 8; i++)
        file[n + i] = (uint8_t)(h >> (8 * i));
    const char *path = memfile(file, n + 8);
    free(file);
    char errbuf[DP_ERRBUF_SIZE];
    dp_train_state st;
    dp_model *m = ckpt ? dp_model_load_checkpoint(path, &st, errbuf) : dp_model_load(path, errbuf);
    if (!m) {
        ASSERT(strstr(errbuf, path) != NULL); /* the message names the file */
        return 0;
    }
    ASSERT(m->nparams * sizeof(float) <= n);
    for (size_t i = 0; i < m->nparams; i++)
        ASSERT(isfinite(m->params[i]));
    if (m->arch.kind == DP_MODEL_GBT) {
        float *x = calloc((size_t)m->arch.in_len, sizeof *x), *lp = calloc((size_t)m->arch.nclasses, sizeof *lp);
        ASSERT(x && lp && dp_model_predict_flows(m, x, 1, lp, errbuf) == 0);
        double s = 0;
        for (int c = 0; c < m->arch.nclasses; c++) {
            ASSERT(isfinite(lp[c]));
            s += exp(lp[c]);
        }
        ASSERT(fabs(s - 1) < 1e-3);
        free(x), free(lp);
    }
    if (ckpt)
        free(st.best_params);
    dp_model_free(m);
    return 0;
}
