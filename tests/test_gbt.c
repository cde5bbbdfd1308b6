/* test_gbt: model file version 2 (input kind, field mask, flow config,
 * ext, blob; version-1 files still load), flow-row inference, and the GBT
 * model on XGBoost (learns, deterministic, saved and loaded inside the
 * model file, corrupt boosters refused); the bounds-checked UBJSON reader
 * that booster blobs go through (model/dp_ubj.h). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp_test.h"
#include "model/dp_gbt.h"
#include "model/dp_model.h"
#include "model/dp_ubj.h"
#include "packet/dp_mask.h"
#include "util/dp_util.h"

static char *tpath(const char *name)
{
    static char p[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dp_test_tmpdir(), name);
    return p[k];
}

static char *names3[3] = {"Chat", "Email", "VPN: Voip"};

/* A model file written by the version-1 program (tests/fixtures, made by
 * the commit before the format change) loads as a packet model without a
 * mask and predicts as it did then. */
static void test_v1_file_loads(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_model *m = dp_model_load("tests/fixtures/model_v1_sae.dpm", eb);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "  %s\n", eb);
        return;
    }
    CHECK(!strcmp(dp_model_kind_name(m), "sae"));
    CHECK_EQ_INT(dp_model_input(m), DP_INPUT_PACKET);
    CHECK_EQ_INT(dp_model_mask(m), 0);
    CHECK(dp_model_flowcfg(m) == NULL);
    CHECK(!strcmp(dp_model_class_name(m, 2), "VPN: Voip"));
    uint8_t x[2][DP_VEC_LEN];
    memset(x, 0, sizeof x);
    for (int i = 0; i < 200; i++) {
        x[0][i] = (uint8_t)(i * 37 + 5);
        x[1][i] = (uint8_t)(255 - i);
    }
    static const float want[6] = {-1.38372719f, -0.775763929f, -1.24130988f,
                                  -1.38715577f, -0.774688721f, -1.24005592f};
    float lp[6];
    CHECK_EQ_INT(dp_model_predict(m, &x[0][0], 2, lp, eb), 0);
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(lp[i], want[i], 1e-5);
    dp_model_free(m);
}

static dp_model *small_sae(int in_len)
{
    char eb[DP_ERRBUF_SIZE];
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_SAE, DP_TASK_TRAFFIC, 3);
    a.in_len = in_len;
    a.nhidden = 2;
    a.hidden[0] = 16, a.hidden[1] = 8;
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, names3, 5, eb);
    CHECK(m != NULL);
    return m;
}

/* A packet model's mask is stored and applied by predict. */
static void test_v2_mask_round_trip(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_model *m = small_sae(DP_VEC_LEN);
    if (!m)
        return;
    dp_model_set_mask(m, DP_MASK_PORTS | DP_MASK_TTL);
    const char *p = tpath("masked.dpm");
    CHECK_EQ_INT(dp_model_save(m, p, eb), 0);
    dp_model *l = dp_model_load(p, eb);
    CHECK(l != NULL);
    if (!l) {
        dp_model_free(m);
        return;
    }
    CHECK_EQ_INT(dp_model_mask(l), DP_MASK_PORTS | DP_MASK_TTL);
    /* an IPv4/TCP vector: predict(vector) = unmasked model's predict(masked vector) */
    uint8_t v[DP_VEC_LEN], mv[DP_VEC_LEN];
    memset(v, 0, sizeof v);
    v[0] = 0x45, v[2] = 0, v[3] = 60, v[8] = 200, v[9] = 6;
    v[20] = 0xFF, v[21] = 0xEE, v[22] = 0xDD, v[23] = 0xCC, v[32] = 0x50;
    for (int i = 40; i < 60; i++)
        v[i] = (uint8_t)(i * 11);
    memcpy(mv, v, sizeof v);
    dp_mask_apply(DP_MASK_PORTS | DP_MASK_TTL, mv);
    float a[3], b[3], c[3];
    CHECK_EQ_INT(dp_model_predict(l, v, 1, a, eb), 0);
    dp_model_set_mask(l, 0);
    CHECK_EQ_INT(dp_model_predict(l, mv, 1, b, eb), 0);
    CHECK_EQ_INT(dp_model_predict(l, v, 1, c, eb), 0);
    for (int k = 0; k < 3; k++)
        CHECK_NEAR(a[k], b[k], 0);
    CHECK(a[0] != c[0] || a[1] != c[1]); /* the mask changed the input */
    float rows[3];
    CHECK_EQ_INT(dp_model_predict_flows(l, (float[1]){0}, 1, rows, eb), -1);
    CHECK_STR_CONTAINS(eb, "packet model");
    dp_model_free(l);
    dp_model_free(m);
}

/* A flow model (an SAE-shaped MLP over flow rows): config, ext, predict. */
static void test_v2_flow_model(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_flowcfg c;
    dp_flowcfg_default(&c);
    c.npackets = 3, c.payload_bytes = 4, c.groups = DP_FEAT_SIZES | DP_FEAT_HEADER;
    int L = dp_flowcfg_row_len(&c);
    dp_model *m = small_sae(L + 1);
    if (!m)
        return;
    CHECK_EQ_INT(dp_model_set_flowcfg(m, &c, eb), -1); /* in_len != N*F */
    CHECK_STR_CONTAINS(eb, "3 packets x 48 features");
    dp_model_free(m);
    m = small_sae(L);
    CHECK_EQ_INT(dp_model_set_flowcfg(m, &c, eb), 0);
    const char *p = tpath("flowmlp.dpm");
    CHECK_EQ_INT(dp_model_save(m, p, eb), 0);
    dp_model *l = dp_model_load(p, eb);
    CHECK(l != NULL);
    if (!l) {
        fprintf(stderr, "  %s\n", eb);
        dp_model_free(m);
        return;
    }
    CHECK_EQ_INT(dp_model_input(l), DP_INPUT_FLOW);
    const dp_flowcfg *lc = dp_model_flowcfg(l);
    CHECK(lc != NULL);
    if (lc) {
        CHECK_EQ_INT(lc->npackets, 3);
        CHECK_EQ_INT(lc->payload_bytes, 4);
        CHECK_EQ_INT(lc->groups, DP_FEAT_SIZES | DP_FEAT_HEADER);
        CHECK_EQ_INT(lc->mask, DP_MASK_DEFAULT);
    }
    float *x = calloc((size_t)L * 70, sizeof(float));
    for (int i = 0; i < L * 70; i++)
        x[i] = (float)((i * 7919) % 101) / 101.0f;
    float a[70 * 3], b[70 * 3];
    CHECK_EQ_INT(dp_model_predict_flows(m, x, 70, a, eb), 0);
    CHECK_EQ_INT(dp_model_predict_flows(l, x, 70, b, eb), 0);
    CHECK(!memcmp(a, b, sizeof a));
    uint8_t v[DP_VEC_LEN] = {0x45};
    CHECK_EQ_INT(dp_model_predict(l, v, 1, a, eb), -1);
    CHECK_STR_CONTAINS(eb, "classifies flows");
    free(x);
    dp_model_free(l);
    dp_model_free(m);
}

/* Three classes told apart by feature 1 (plus noise features). */
static void gbt_data(float *x, int *y, int n, int d, uint64_t seed)
{
    dp_rng r;
    dp_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        y[i] = i % 3;
        for (int j = 0; j < d; j++)
            x[(size_t)i * d + j] = dp_rng_float(&r);
        x[(size_t)i * d + 1] = (float)y[i] + 0.3f * dp_rng_float(&r);
    }
}

static dp_model *gbt_model(const float *x, const int *y, int n, const dp_flowcfg *c, char *eb)
{
    dp_gbt_params gp;
    dp_gbt_params_default(&gp);
    gp.trees = 10, gp.depth = 3, gp.quiet = 1;
    int d = dp_flowcfg_row_len(c);
    dp_gbt *g = dp_gbt_train(x, (uint64_t)n, d, y, NULL, 3, &gp, eb);
    if (!g)
        return NULL;
    uint8_t *buf;
    size_t len;
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_GBT, DP_TASK_TRAFFIC, 3);
    a.in_len = d;
    dp_model *m = NULL;
    if (dp_gbt_save(g, &buf, &len, eb) == 0) {
        m = dp_model_create(&a, DP_TASK_TRAFFIC, names3, 1, eb);
        if (m && (dp_model_set_flowcfg(m, c, eb) || dp_model_set_blob(m, buf, len, eb))) {
            dp_model_free(m);
            m = NULL;
        }
        free(buf);
    }
    dp_gbt_free(g);
    return m;
}

static void test_gbt_learns_and_round_trips(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_flowcfg c;
    dp_flowcfg_default(&c);
    c.npackets = 1, c.payload_bytes = 0;
    int d = dp_flowcfg_row_len(&c), n = 300;
    float *x = malloc((size_t)n * d * sizeof(float));
    int *y = malloc((size_t)n * sizeof(int));
    gbt_data(x, y, n, d, 1);
    dp_model *m = gbt_model(x, y, n, &c, eb);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "  %s\n", eb);
        free(x), free(y);
        return;
    }
    CHECK(!strcmp(dp_model_kind_name(m), "gbt"));
    const char *p1 = tpath("g1.dpm"), *p2 = tpath("g2.dpm");
    CHECK_EQ_INT(dp_model_save(m, p1, eb), 0);
    /* deterministic: a second training writes the same bytes */
    dp_model *m2 = gbt_model(x, y, n, &c, eb);
    CHECK(m2 && dp_model_save(m2, p2, eb) == 0);
    CHECK(dp_test_same_file(p1, p2));
    dp_model_free(m2);
    dp_model *l = dp_model_load(p1, eb);
    CHECK(l != NULL);
    if (l) {
        /* new data from the same rule: nearly all right; same output as before saving */
        gbt_data(x, y, n, d, 2);
        float *a = malloc((size_t)n * 3 * sizeof(float)), *b = malloc((size_t)n * 3 * sizeof(float));
        CHECK_EQ_INT(dp_model_predict_flows(m, x, n, a, eb), 0);
        CHECK_EQ_INT(dp_model_predict_flows(l, x, n, b, eb), 0);
        CHECK(!memcmp(a, b, (size_t)n * 3 * sizeof(float)));
        int right = 0;
        double s = 0;
        for (int i = 0; i < n; i++) {
            int best = 0;
            for (int k = 1; k < 3; k++)
                if (b[i * 3 + k] > b[i * 3 + best])
                    best = k;
            right += best == y[i];
        }
        for (int k = 0; k < 3; k++)
            s += exp(b[k]);
        CHECK(right >= n * 95 / 100);
        CHECK_NEAR(s, 1, 1e-5);
        free(a), free(b);
    }
    dp_model_free(l);
    dp_model_free(m);
    free(x), free(y);
}

static void test_gbt_refusals(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_flowcfg c;
    dp_flowcfg_default(&c);
    c.npackets = 1, c.payload_bytes = 0;
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_GBT, DP_TASK_TRAFFIC, 3);
    a.in_len = dp_flowcfg_row_len(&c);
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, names3, 1, eb);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK_EQ_INT(dp_model_set_flowcfg(m, &c, eb), 0);
    /* no booster at all */
    const char *p = tpath("noblob.dpm");
    CHECK_EQ_INT(dp_model_save(m, p, eb), 0);
    CHECK(dp_model_load(p, eb) == NULL);
    CHECK_STR_CONTAINS(eb, p);
    CHECK_STR_CONTAINS(eb, "without its booster");
    /* garbage booster */
    CHECK_EQ_INT(dp_model_set_blob(m, "not a booster at all", 20, eb), 0);
    p = tpath("badblob.dpm");
    CHECK_EQ_INT(dp_model_save(m, p, eb), 0);
    CHECK(dp_model_load(p, eb) == NULL);
    CHECK_STR_CONTAINS(eb, p);
    CHECK_STR_CONTAINS(eb, "loading the gbt booster");
    /* a booster over other features than the flow rows */
    dp_model_free(m);
    int n = 30, d = 5;
    float x[150];
    int y[30];
    gbt_data(x, y, n, d, 3);
    dp_gbt_params gp;
    dp_gbt_params_default(&gp);
    gp.trees = 2, gp.quiet = 1;
    dp_gbt *g = dp_gbt_train(x, (uint64_t)n, d, y, NULL, 3, &gp, eb);
    CHECK(g != NULL);
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(g && dp_gbt_save(g, &buf, &len, eb) == 0);
    dp_gbt_free(g);
    dp_gbt *l = buf ? dp_gbt_load(buf, len, 44, 3, "x.dpm", eb) : NULL;
    CHECK(l == NULL);
    CHECK_STR_CONTAINS(eb, "x.dpm: the gbt booster takes 5 features");
    free(buf);
    /* bad arguments */
    gp.trees = 0;
    CHECK(dp_gbt_train(x, (uint64_t)n, d, y, NULL, 3, &gp, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "0 trees");
    /* a label outside the classes: XGBoost's own message comes through */
    gp.trees = 2;
    y[0] = 7;
    CHECK(dp_gbt_train(x, (uint64_t)n, d, y, NULL, 3, &gp, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "gbt: ");
}

/* ---- the UBJSON reader (model/dp_ubj.h) ----------------------------- */

/* The UBJSON reader on its own: what it takes and what it refuses. */
static const uint8_t ubj_doc[] = {
    '{', 'L', 0, 0, 0, 0, 0, 0, 0, 1, 'a', 'i', 5,                                     /* "a": 5 */
    'L', 0, 0, 0, 0, 0, 0, 0, 1, 'b', '[', '#', 'L', 0, 0, 0, 0, 0, 0, 0, 2,          /* "b": [ */
    'S', 'L', 0, 0, 0, 0, 0, 0, 0, 1, 'x', 'd', 0x3f, 0xc0, 0, 0,                    /* "x", 1.5] */
    'L', 0, 0, 0, 0, 0, 0, 0, 2, 'b', 'c', '[', '$', 'U', '#', 'L', 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 250, /* "bc" */
    'L', 0, 0, 0, 0, 0, 0, 0, 1, 'c', 'I', 0xff, 0x00,                                 /* "c": -256 */
    '}'};

static int ubj_refuses(const uint8_t *b, size_t n, const char *want)
{
    dp_ubj v;
    char msg[256] = "";
    int rc = dp_ubj_parse(b, n, &v, msg, sizeof msg);
    if (rc == 0 || !strstr(msg, want))
        fprintf(stderr, "  expected a refusal saying \"%s\", got %d \"%s\"\n", want, rc, msg);
    return rc != 0 && strstr(msg, want) != NULL;
}

static void test_ubj_reader(void)
{
    dp_ubj root, v;
    int64_t i;
    float f;
    char msg[256];
    CHECK_EQ_INT(dp_ubj_parse(ubj_doc, sizeof ubj_doc, &root, msg, sizeof msg), 0);
    CHECK_EQ_INT(root.type, DP_UBJ_OBJECT);
    CHECK_EQ_INT(root.n, 4);
    CHECK(dp_ubj_get(&root, "a", &v) == 1 && v.type == DP_UBJ_INT && v.i == 5);
    CHECK(dp_ubj_get(&root, "c", &v) == 1 && v.type == DP_UBJ_INT && v.i == -256);
    CHECK(dp_ubj_get(&root, "bc", &v) == 1 && v.type == DP_UBJ_TYPED && v.elem == 'U' && v.n == 3);
    CHECK(dp_ubj_int_at(&v, 2, &i) == 0 && i == 250);
    CHECK(dp_ubj_int_at(&v, 3, &i) == -1 && dp_ubj_float_at(&v, 0, &f) == -1);
    CHECK_EQ_INT(dp_ubj_get(&root, "bb", &v), 0);
    CHECK(dp_ubj_get(&root, "b", &v) == 1 && v.type == DP_UBJ_ARRAY && v.n == 2);
    dp_ubj_iter it;
    dp_ubj e;
    CHECK(dp_ubj_iter_init(&v, &it) == 0 && dp_ubj_next(&it, NULL, &e) == 1 && dp_ubj_str_eq(&e, "x"));
    CHECK(dp_ubj_next(&it, NULL, &e) == 1 && e.type == DP_UBJ_FLOAT && e.f == 1.5f);
    CHECK_EQ_INT(dp_ubj_next(&it, NULL, &e), 0);
    int taken = 0; /* every prefix refused */
    for (size_t n = 0; n < sizeof ubj_doc; n++)
        taken += dp_ubj_parse(ubj_doc, n, &root, msg, sizeof msg) == 0;
    CHECK_EQ_INT(taken, 0);
    uint8_t b[sizeof ubj_doc + 1];
    memcpy(b, ubj_doc, sizeof ubj_doc);
    b[sizeof ubj_doc] = 'Z';
    CHECK(ubj_refuses(b, sizeof b, "byte 91: 1 bytes after the end of the value"));
    b[10] = 'b', b[22] = 'a'; /* keys "b", "a" */
    CHECK(ubj_refuses(b, sizeof ubj_doc, "keys repeated or out of order"));
    b[22] = 'b'; /* "b" twice */
    CHECK(ubj_refuses(b, sizeof ubj_doc, "key \"b\" after \"b\""));
    static const uint8_t scalar_u[] = {'U', 7}, scalar_big[] = {'D', 0, 0, 0, 0, 0, 0, 0, 0},
                         open_array[] = {'[', 'i', 1, ']'},
                         small_count[] = {'[', '#', 'i', 1, 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z'},
                         typed_i[] = {'[', '$', 'i', '#', 'L', 0, 0, 0, 0, 0, 0, 0, 1, 5};
    CHECK(ubj_refuses(scalar_u, 2, "byte 0: type 'U'"));
    CHECK(ubj_refuses(scalar_big, 9, "byte 0: type 'D'"));
    CHECK(ubj_refuses(open_array, 4, "array without a count"));
    CHECK(ubj_refuses(small_count, 11, "array count of type 'i'"));
    CHECK(ubj_refuses(typed_i, 14, "typed array of type 'i'"));
    static const uint8_t level[11] = {'[', '#', 'L', 0, 0, 0, 0, 0, 0, 0, 1}; /* an array of 1 */
    uint8_t deep[20 * 11 + 1];
    for (int d = 1; d <= 20; d++) { /* d arrays, one in the other, around a null */
        memcpy(deep + 11 * (d - 1), level, 11);
        deep[11 * d] = 'Z';
        int rc = dp_ubj_parse(deep, 11 * (size_t)d + 1, &root, msg, sizeof msg);
        CHECK_EQ_INT(rc, d <= DP_UBJ_MAX_DEPTH ? 0 : -1);
        if (d > DP_UBJ_MAX_DEPTH)
            CHECK_STR_CONTAINS(msg, "nested deeper than 16");
    }
    CHECK_EQ_INT(dp_ubj_parse(NULL, 0, &root, msg, sizeof msg), -1);
    CHECK_STR_CONTAINS(msg, "byte 0: value cut off");
}

int main(void)
{
    dp_test_prog = "test_gbt";
    DP_RUN(test_v1_file_loads);
    DP_RUN(test_v2_mask_round_trip);
    DP_RUN(test_v2_flow_model);
    DP_RUN(test_gbt_learns_and_round_trips);
    DP_RUN(test_gbt_refusals);
    DP_RUN(test_ubj_reader);
    return dp_test_end();
}
