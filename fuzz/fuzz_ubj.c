/* libFuzzer target for the UBJSON reader (model/dp_ubj.h) and the gbt
 * booster check built on it (model/dp_gbt_check.h). The input is one byte
 * of class count, two (little-endian) of feature count, then the blob. A
 * blob the reader takes is walked whole (every member, element and typed
 * element read, every key looked up again); a blob the check takes must be
 * one that XGBoost loads and predicts from with finite probabilities that
 * sum to 1: what the check is for.
 *
 * Seeds (fuzz/seeds-ubj): boosters written by `train --model gbt`: tiny11
 * (1 round, depth 2, 11 classes over 2 packets without payload: 88
 * features, from data/corpus), small3 (dp_gbt_train on 3 classes of 5
 * random features, 2 rounds, depth 3). */
#include <math.h>
#include <string.h>

#include "fuzz_memfile.h"
#include "model/dp_gbt.h"
#include "model/dp_gbt_check.h"
#include "model/dp_ubj.h"
#include "util/dp_util.h"

static const uint8_t *lo, *hi; /* the blob */

static void walk(const dp_ubj *v, int depth);

static void walk_typed(const dp_ubj *v)
{
    int64_t x;
    float f;
    size_t size = v->elem == 'U' ? 1 : v->elem == 'L' ? 8 : 4;
    ASSERT(v->p + v->n * size == v->end);
    for (uint64_t k = 0; k < v->n; k++)
        ASSERT(v->elem == 'd' ? dp_ubj_float_at(v, k, &f) == 0 : dp_ubj_int_at(v, k, &x) == 0);
    ASSERT(dp_ubj_int_at(v, v->n, &x) == -1 && dp_ubj_float_at(v, v->n, &f) == -1);
}

/* Every member or element; an object's first members looked up by key. */
static void walk_container(const dp_ubj *v, int depth)
{
    dp_ubj_iter it;
    dp_ubj key, val, again, prev = {0};
    uint64_t n = 0;
    int r;
    ASSERT(dp_ubj_iter_init(v, &it) == 0);
    while ((r = dp_ubj_next(&it, v->type == DP_UBJ_OBJECT ? &key : NULL, &val)) == 1) {
        walk(&val, depth + 1);
        if (v->type == DP_UBJ_OBJECT) {
            ASSERT(key.type == DP_UBJ_STRING && key.p + key.n == key.end && key.end <= val.end);
            if (n > 0) { /* keys in order */
                size_t m = prev.n < key.n ? prev.n : key.n;
                int c = memcmp(prev.p, key.p, m);
                ASSERT(c < 0 || (c == 0 && prev.n < key.n));
            }
            char name[64];
            if (n < 32 && key.n < sizeof name && !memchr(key.p, 0, key.n)) {
                memcpy(name, key.p, key.n);
                name[key.n] = 0;
                ASSERT(dp_ubj_get(v, name, &again) == 1 && again.end == val.end && again.type == val.type);
            }
            prev = key;
        }
        n++;
    }
    ASSERT(r == 0 && n == v->n);
}

static void walk(const dp_ubj *v, int depth)
{
    ASSERT(depth <= DP_UBJ_MAX_DEPTH);
    ASSERT(v->end > lo && v->end <= hi);
    if (v->type == DP_UBJ_STRING)
        ASSERT(v->p >= lo && v->p + v->n == v->end);
    else if (v->type == DP_UBJ_TYPED)
        walk_typed(v);
    else if (v->type == DP_UBJ_ARRAY || v->type == DP_UBJ_OBJECT)
        walk_container(v, depth);
}

/* A booster the check took: XGBoost loads it and predicts sanely. */
static void predict(const uint8_t *blob, size_t len, int nf, int nc)
{
    char eb[DP_ERRBUF_SIZE];
    dp_gbt *g = dp_gbt_load(blob, len, nf, nc, "fuzz", eb);
    if (!g)
        fprintf(stderr, "checked booster refused: %s\n", eb);
    ASSERT(g != NULL);
    float *x = malloc(3 * (size_t)nf * sizeof *x), *lp = malloc(3 * (size_t)nc * sizeof *lp);
    ASSERT(x && lp);
    for (int j = 0; j < nf; j++) {
        x[j] = 0;
        x[nf + j] = NAN; /* missing */
        x[2 * nf + j] = (float)blob[(size_t)j % len] / 64.0f - 1.0f;
    }
    ASSERT(dp_gbt_predict(g, x, 3, nf, nc, lp, eb) == 0);
    for (int r = 0; r < 3; r++) {
        double s = 0;
        for (int c = 0; c < nc; c++) {
            ASSERT(isfinite(lp[r * nc + c]));
            s += exp(lp[r * nc + c]);
        }
        ASSERT(fabs(s - 1) < 1e-3);
    }
    free(x), free(lp);
    dp_gbt_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > (1u << 20))
        return 0;
    int nc = data[0], nf = data[1] | data[2] << 8;
    const uint8_t *blob = data + 3;
    size_t len = size - 3;
    char msg[256];
    dp_ubj root;
    lo = blob, hi = blob + len;
    if (dp_ubj_parse(blob, len, &root, msg, sizeof msg) == 0)
        walk(&root, 0);
    else
        ASSERT(strncmp(msg, "byte ", 5) == 0);
    if (dp_gbt_check_booster(blob, len, nf, nc, msg, sizeof msg) == 0)
        predict(blob, len, nf, nc);
    else
        ASSERT(msg[0] != 0);
    return 0;
}
