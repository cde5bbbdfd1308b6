/* test_gbt: model file version 2 (input kind, field mask, flow config,
 * ext, blob; version-1 files still load), flow-row inference, and the GBT
 * model on XGBoost (learns, deterministic, saved and loaded inside the
 * model file, corrupt boosters refused); the booster blob's check before
 * XGBoost sees it (model/dp_gbt_check.h, its UBJSON reader model/dp_ubj.h):
 * real boosters and old files pass, damaged and forged ones are refused at
 * load with a message naming the file. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp_test.h"
#include "model/dp_gbt.h"
#include "model/dp_gbt_check.h"
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
    CHECK_STR_CONTAINS(eb, "gbt booster: not the UBJSON XGBoost writes: byte 0: type 'n'");
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
    CHECK_STR_CONTAINS(eb, "x.dpm: gbt booster: takes 5 features, the model's flow rows have 44");
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

/* ---- the booster blob's check (model/dp_gbt_check.h) ------------------ */

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be(uint8_t *p, uint64_t v, int nb)
{
    for (int i = nb - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* The flow rows of the blob tests: 1 packet, no payload, 44 features. */
static void flowcfg_44(dp_flowcfg *c)
{
    dp_flowcfg_default(c);
    c->npackets = 1, c->payload_bytes = 0;
}

/* A real booster as XGBoost writes it (malloc'd, *len bytes): 3 classes
 * over 44 features, 3 rounds of depth 3 (9 trees); *g keeps it trained
 * when g is not NULL. The class is how many of features 0 and 2 are over
 * 0.5: trees whose nodes 1 and 2 both split. */
static uint8_t *real_blob(size_t *len, dp_gbt **g)
{
    char eb[DP_ERRBUF_SIZE];
    int n = 120, d = 44, y[120];
    float *x = malloc((size_t)n * d * sizeof *x);
    gbt_data(x, y, n, d, 5);
    for (int i = 0; i < n; i++)
        y[i] = (x[i * d] > 0.5f) + (x[i * d + 2] > 0.5f);
    dp_gbt_params gp;
    dp_gbt_params_default(&gp);
    gp.trees = 3, gp.depth = 3, gp.quiet = 1;
    dp_gbt *t = dp_gbt_train(x, (uint64_t)n, d, y, NULL, 3, &gp, eb);
    uint8_t *buf = NULL;
    if (!t || dp_gbt_save(t, &buf, len, eb) != 0)
        fprintf(stderr, "  %s\n", eb);
    CHECK(buf != NULL);
    free(x);
    if (g)
        *g = t;
    else
        dp_gbt_free(t);
    return buf;
}

/* A gbt model file NAME (in the test folder) holding blob, with nclasses
 * classes over flowcfg_44's rows: dp_model_save writes the checksum, as a
 * forger recomputes it. Its path, or NULL. */
static const char *gbt_file(const char *name, const uint8_t *blob, size_t len, int nclasses)
{
    static char *names[6] = {"Chat", "Email", "VPN: Voip", "Voip", "Streaming", "P2P"};
    char eb[DP_ERRBUF_SIZE];
    dp_flowcfg c;
    flowcfg_44(&c);
    dp_arch a;
    dp_arch_default(&a, DP_MODEL_GBT, DP_TASK_TRAFFIC, nclasses);
    a.in_len = dp_flowcfg_row_len(&c);
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, names, 1, eb);
    const char *p = tpath(name);
    int rc = m ? dp_model_set_flowcfg(m, &c, eb) : -1;
    if (rc == 0)
        rc = dp_model_set_blob(m, blob, len, eb);
    if (rc == 0)
        rc = dp_model_save(m, p, eb);
    if (rc != 0)
        fprintf(stderr, "  %s: %s\n", name, eb);
    CHECK_EQ_INT(rc, 0);
    dp_model_free(m);
    return rc == 0 ? p : NULL;
}

/* The file at p must be refused at load, the message naming it, the
 * booster and saying want. */
static void check_refused(const char *p, const char *want)
{
    char eb[DP_ERRBUF_SIZE], head[700];
    if (!p)
        return;
    dp_model *m = dp_model_load(p, eb);
    if (m) {
        fprintf(stderr, "  %s loaded; expected a refusal saying \"%s\"\n", p, want);
        dp_model_free(m);
        CHECK(m == NULL);
        return;
    }
    snprintf(head, sizeof head, "%s: gbt booster: ", p);
    CHECK_STR_CONTAINS(eb, head);
    CHECK_STR_CONTAINS(eb, want);
}

/* A copy of blob with f applied, saved as NAME and checked refused. */
static void refused_after(const uint8_t *blob, size_t len, const char *name, void (*f)(uint8_t *, size_t),
                          const char *want)
{
    uint8_t *b = malloc(len);
    memcpy(b, blob, len);
    f(b, len);
    check_refused(gbt_file(name, b, len, 3), want);
    free(b);
}

/* Offset of element 0 of tree t's typed array KEY (its count in *n), or 0. */
static size_t tree_array(const uint8_t *b, size_t len, int t, const char *key, uint64_t *n)
{
    size_t kn = strlen(key);
    for (size_t i = 0; i + 22 + kn <= len; i++) {
        const uint8_t *a = b + i + 9 + kn;
        if (b[i] != 'L' || be64(b + i + 1) != kn || memcmp(b + i + 9, key, kn) != 0 || a[0] != '[' || a[1] != '$')
            continue;
        if (t-- > 0)
            continue;
        *n = be64(a + 5);
        return (size_t)(a + 13 - b);
    }
    CHECK(!"no such tree array");
    return 0;
}

static int32_t get_i32(const uint8_t *b, size_t len, int t, const char *key, int k)
{
    uint64_t n;
    size_t off = tree_array(b, len, t, key, &n);
    return off && (uint64_t)k < n ? (int32_t)be32(b + off + 4 * (size_t)k) : -2;
}

static void set_i32(uint8_t *b, size_t len, int t, const char *key, int k, int32_t v)
{
    uint64_t n;
    size_t off = tree_array(b, len, t, key, &n);
    if (off && (uint64_t)k < n)
        put_be(b + off + 4 * k, (uint32_t)v, 4);
}

static void set_f32(uint8_t *b, size_t len, int t, const char *key, int k, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    set_i32(b, len, t, key, k, (int32_t)u);
}

/* A leaf of tree t (the first), or -1. */
static int a_leaf(const uint8_t *b, size_t len, int t)
{
    for (int k = 0; k < 64; k++)
        if (get_i32(b, len, t, "left_children", k) == -1)
            return k;
    return -1;
}

/* The real booster passes, for its own classes and features only; a
 * booster loaded after the check predicts as the one trained. */
static void test_gbt_check_real(void)
{
    char eb[DP_ERRBUF_SIZE], msg[256];
    size_t len = 0;
    dp_gbt *g = NULL;
    uint8_t *blob = real_blob(&len, &g);
    if (!blob || !g)
        return;
    CHECK_EQ_INT(dp_gbt_check_booster(blob, len, 44, 3, msg, sizeof msg), 0);
    CHECK_EQ_INT(dp_gbt_check_booster(blob, len, 44, 2, msg, sizeof msg), -1);
    CHECK_STR_CONTAINS(msg, "3 classes, the model has 2");
    CHECK_EQ_INT(dp_gbt_check_booster(blob, len, 45, 3, msg, sizeof msg), -1);
    CHECK_STR_CONTAINS(msg, "takes 44 features, the model's flow rows have 45");
    dp_gbt *l = dp_gbt_load(blob, len, 44, 3, "real", eb);
    CHECK(l != NULL);
    float x[20 * 44], a[20 * 3], b[20 * 3];
    int y[20];
    gbt_data(x, y, 20, 44, 6);
    x[5] = NAN; /* a missing value */
    CHECK_EQ_INT(dp_gbt_predict(g, x, 20, 44, 3, a, eb), 0);
    CHECK_EQ_INT(l ? dp_gbt_predict(l, x, 20, 44, 3, b, eb) : -1, 0);
    CHECK(!memcmp(a, b, sizeof a));
    dp_gbt_free(l);
    dp_gbt_free(g);
    free(blob);
}

/* Leaves the copy as it is (refused_after's len does the cutting). */
static void as_is(uint8_t *b, size_t len)
{
    (void)b, (void)len;
}

/* Cut blobs (the audit's blob cut to 20 bytes made XGBoost ask for
 * 0xbebebebebebf bytes): every prefix is refused by the check, and a file
 * holding one at load. */
static void test_gbt_blob_truncated(void)
{
    char msg[256];
    size_t len = 0;
    uint8_t *blob = real_blob(&len, NULL);
    if (!blob)
        return;
    int passed = 0;
    for (size_t n = 0; n < len; n++)
        passed += dp_gbt_check_booster(blob, n, 44, 3, msg, sizeof msg) == 0;
    CHECK_EQ_INT(passed, 0);
    refused_after(blob, 20, "cut20.dpm", as_is, "not the UBJSON XGBoost writes: byte 18: key length cut off");
    refused_after(blob, len / 2, "cuthalf.dpm", as_is, "not the UBJSON XGBoost writes: byte ");
    free(blob);
}

/* Lengths and counts past the end (XGBoost's DecodeStr overflowed the
 * heap on a key length, its ParseArray crashed on a count). */
static void huge_key_len(uint8_t *b, size_t len)
{
    (void)len;
    put_be(b + 2, 1ull << 40, 8); /* "learner", the first key: {L<int64>learner */
}

static void huge_string_len(uint8_t *b, size_t len)
{
    for (size_t i = 0; i + 16 < len; i++) /* "name" "gbtree": its 'S' 'L' length */
        if (!memcmp(b + i, "name", 4) && b[i + 4] == 'S' && !memcmp(b + i + 14, "gbtree", 6)) {
            put_be(b + i + 6, 0x7fffffffffffffffull, 8);
            return;
        }
    CHECK(!"no gbtree string");
}

static void huge_trees_count(uint8_t *b, size_t len)
{
    for (size_t i = 0; i + 16 < len; i++)
        if (!memcmp(b + i, "trees[#L", 8)) {
            put_be(b + i + 8, 1ull << 33, 8);
            return;
        }
    CHECK(!"no trees array");
}

static void huge_typed_count(uint8_t *b, size_t len)
{
    uint64_t n;
    size_t off = tree_array(b, len, 2, "split_conditions", &n);
    if (off)
        put_be(b + off - 8, (1ull << 62) + 1, 8); /* 4 x count wraps to 4 */
}

static void negative_count(uint8_t *b, size_t len)
{
    uint64_t n;
    size_t off = tree_array(b, len, 0, "base_weights", &n);
    if (off)
        put_be(b + off - 8, ~0ull, 8);
}

static void test_gbt_blob_lengths(void)
{
    size_t len = 0;
    uint8_t *blob = real_blob(&len, NULL);
    if (!blob)
        return;
    refused_after(blob, len, "keylen.dpm", huge_key_len, "byte 1: key length 1099511627776, but");
    refused_after(blob, len, "strlen.dpm", huge_string_len, "string length 9223372036854775807, but");
    refused_after(blob, len, "trees.dpm", huge_trees_count, "array count 8589934592, but");
    refused_after(blob, len, "typed.dpm", huge_typed_count, "typed array count 4611686018427387905, but");
    refused_after(blob, len, "negative.dpm", negative_count, "typed array count 18446744073709551615, but");
    free(blob);
}

/* The audit's mutants: 1 to 8 random bytes changed (XGBoost's parser
 * overflowed the heap or crashed on them). Each must be refused at load
 * with a message naming the file, or load and predict 5 rows with finite
 * probabilities that sum to 1. */
static void test_gbt_blob_mutations(void)
{
    char eb[DP_ERRBUF_SIZE], head[700];
    size_t len = 0;
    uint8_t *blob = real_blob(&len, NULL);
    if (!blob)
        return;
    uint8_t *b = malloc(len);
    float x[5 * 44], lp[5 * 3];
    int y[5], refused = 0, loaded = 0;
    gbt_data(x, y, 5, 44, 7);
    dp_rng r;
    dp_rng_seed(&r, 11);
    for (int i = 0; i < 300; i++) {
        memcpy(b, blob, len);
        for (int k = 1 + (int)dp_rng_below(&r, 8); k > 0; k--)
            b[dp_rng_below(&r, len)] = (uint8_t)dp_rng_below(&r, 256);
        const char *p = gbt_file("mutant.dpm", b, len, 3);
        dp_model *m = p ? dp_model_load(p, eb) : NULL;
        if (!m) {
            snprintf(head, sizeof head, "%s: gbt booster: ", p);
            CHECK_STR_CONTAINS(eb, head);
            refused++;
            continue;
        }
        loaded++;
        CHECK_EQ_INT(dp_model_predict_flows(m, x, 5, lp, eb), 0);
        for (int row = 0; row < 5; row++) {
            double s = 0;
            for (int c = 0; c < 3; c++)
                s += exp(lp[row * 3 + c]);
            CHECK_NEAR(s, 1, 1e-4);
        }
        dp_model_free(m);
    }
    CHECK(refused > 150); /* most byte changes break the format */
    fprintf(stderr, "  300 mutants: %d refused, %d loaded\n", refused, loaded);
    free(b);
    free(blob);
}

/* Split features, thresholds, leaf values and weights: the audit's split
 * on feature 5000000 crashed XGBoost's predictor; NaN or 3e38 leaves gave
 * every flow class 0 with probability 1/C. */
static int leaf_t1;
static void far_feature(uint8_t *b, size_t len) { set_i32(b, len, 1, "split_indices", 0, 5000000); }
static void negative_feature(uint8_t *b, size_t len) { set_i32(b, len, 4, "split_indices", 0, -1); }
static void nan_leaf(uint8_t *b, size_t len) { set_f32(b, len, 1, "split_conditions", leaf_t1, NAN); }
static void huge_leaf(uint8_t *b, size_t len) { set_f32(b, len, 1, "split_conditions", leaf_t1, 3e38f); }
static void inf_threshold(uint8_t *b, size_t len) { set_f32(b, len, 2, "split_conditions", 0, -INFINITY); }
static void nan_weight(uint8_t *b, size_t len) { set_f32(b, len, 3, "base_weights", 0, NAN); }
static void nan_hessian(uint8_t *b, size_t len) { set_f32(b, len, 3, "sum_hessian", 1, NAN); }

static void test_gbt_blob_values(void)
{
    size_t len = 0;
    char want[96];
    uint8_t *blob = real_blob(&len, NULL);
    if (!blob)
        return;
    CHECK(get_i32(blob, len, 1, "left_children", 0) > 0); /* root splits */
    leaf_t1 = a_leaf(blob, len, 1);
    CHECK(leaf_t1 > 0);
    refused_after(blob, len, "farfeat.dpm", far_feature, "tree 1 node 0 splits on feature 5000000 of 44");
    refused_after(blob, len, "negfeat.dpm", negative_feature, "tree 4 node 0 splits on feature -1 of 44");
    snprintf(want, sizeof want, "tree 1 node %d: leaf value nan is not finite", leaf_t1);
    refused_after(blob, len, "nanleaf.dpm", nan_leaf, want);
    snprintf(want, sizeof want, "tree 1 node %d: leaf value 3e+38 is beyond +-1e+06", leaf_t1);
    refused_after(blob, len, "hugeleaf.dpm", huge_leaf, want);
    refused_after(blob, len, "infsplit.dpm", inf_threshold, "tree 2 node 0: split threshold -inf is not finite");
    refused_after(blob, len, "nanweight.dpm", nan_weight, "tree 3 node 0: base weight nan is not finite");
    refused_after(blob, len, "nanhess.dpm", nan_hessian, "tree 3 node 1: loss change");
    free(blob);
}

/* Children that do not make a tree, in tree_12, a tree whose nodes 1 and
 * 2 both split. */
static int tree_12;
static void child_out_of_range(uint8_t *b, size_t len) { set_i32(b, len, tree_12, "right_children", 0, 99999); }
static void root_as_child(uint8_t *b, size_t len) { set_i32(b, len, tree_12, "left_children", 0, 0); }

/* Node 2 takes node 1's left child as its own too. */
static void shared_child(uint8_t *b, size_t len)
{
    set_i32(b, len, tree_12, "left_children", 2, get_i32(b, len, tree_12, "left_children", 1));
}

/* The root made a leaf, and nodes 1 and a (node 1's left child) a cycle:
 * 1 -> a -> 1, every node's own links consistent (children in range,
 * their parent the node), so only the walk from the root sees it. */
static void cycle(uint8_t *b, size_t len)
{
    int t = tree_12, a = get_i32(b, len, t, "left_children", 1);
    set_i32(b, len, t, "left_children", 0, -1);
    set_i32(b, len, t, "right_children", 0, -1);
    set_i32(b, len, t, "left_children", a, 1);
    set_i32(b, len, t, "right_children", a, 2);
    set_i32(b, len, t, "parents", 1, a);
    set_i32(b, len, t, "parents", 2, a);
}

static void test_gbt_blob_not_a_tree(void)
{
    size_t len = 0;
    uint8_t *blob = real_blob(&len, NULL);
    if (!blob)
        return;
    char want[4][96];
    for (tree_12 = 0; tree_12 < 9; tree_12++)
        if (get_i32(blob, len, tree_12, "left_children", 1) > 0 && get_i32(blob, len, tree_12, "left_children", 2) > 0)
            break;
    CHECK(tree_12 < 9);
    int t = tree_12, c = get_i32(blob, len, t, "left_children", 1);
    snprintf(want[0], sizeof want[0], "tree %d node 0: children 1 and 99999, not two of nodes 1..", t);
    snprintf(want[1], sizeof want[1], "tree %d node 0: children 0 and 2, not two of nodes 1..", t);
    snprintf(want[2], sizeof want[2], "tree %d node 2: child %d has parent 1", t, c);
    snprintf(want[3], sizeof want[3], "tree %d node 1: not reachable from the root", t);
    refused_after(blob, len, "range.dpm", child_out_of_range, want[0]);
    refused_after(blob, len, "rootchild.dpm", root_as_child, want[1]);
    refused_after(blob, len, "shared.dpm", shared_child, want[2]);
    refused_after(blob, len, "cycle.dpm", cycle, want[3]);
    free(blob);
}

/* XGBoost's pruner turns a split whose children are leaves into a leaf and
 * marks the children deleted (split index 2147483647, default left,
 * counted in num_deleted): such a tree passes, loads and predicts; with a
 * wrong num_deleted it is refused. */
static int pruned_t, pruned_i;

static void prune(uint8_t *b, size_t len, char num_deleted)
{
    int t = pruned_t, i = pruned_i, kids[2];
    kids[0] = get_i32(b, len, t, "left_children", i), kids[1] = get_i32(b, len, t, "right_children", i);
    set_i32(b, len, t, "left_children", i, -1);
    set_i32(b, len, t, "right_children", i, -1);
    uint64_t n;
    size_t dl = tree_array(b, len, t, "default_left", &n);
    for (int k = 0; k < 2 && dl; k++) {
        set_i32(b, len, t, "split_indices", kids[k], 2147483647);
        b[dl + (size_t)kids[k]] = 1;
    }
    for (size_t j = 0; j + 22 <= len; j++) /* tree t's "num_deleted" string, "0" */
        if (!memcmp(b + j, "num_deletedSL", 13) && t-- == 0) {
            CHECK(b[j + 21] == '0');
            b[j + 21] = (uint8_t)num_deleted;
            return;
        }
    CHECK(!"no num_deleted");
}
static void prune_2(uint8_t *b, size_t len) { prune(b, len, '2'); }
static void prune_1(uint8_t *b, size_t len) { prune(b, len, '1'); }

static void test_gbt_blob_deleted_nodes(void)
{
    char eb[DP_ERRBUF_SIZE], want[96];
    size_t len = 0;
    uint8_t *blob = real_blob(&len, NULL);
    if (!blob)
        return;
    pruned_i = 0;
    for (pruned_t = 0; pruned_t < 9 && !pruned_i; pruned_t++)
        for (int i = 1; i < 16 && !pruned_i; i++) {
            int l = get_i32(blob, len, pruned_t, "left_children", i);
            int r = get_i32(blob, len, pruned_t, "right_children", i);
            if (l > 0 && get_i32(blob, len, pruned_t, "left_children", l) == -1 &&
                get_i32(blob, len, pruned_t, "left_children", r) == -1)
                pruned_i = i;
        }
    pruned_t--;
    CHECK(pruned_i > 0);
    uint8_t *b = malloc(len);
    memcpy(b, blob, len);
    prune_2(b, len);
    dp_model *m = dp_model_load(gbt_file("pruned.dpm", b, len, 3), eb);
    CHECK(m != NULL);
    float x[5 * 44], lp[5 * 3];
    int y[5];
    gbt_data(x, y, 5, 44, 8);
    if (m) {
        CHECK_EQ_INT(dp_model_predict_flows(m, x, 5, lp, eb), 0);
        CHECK_NEAR(exp(lp[0]) + exp(lp[1]) + exp(lp[2]), 1, 1e-5);
    } else {
        fprintf(stderr, "  %s\n", eb);
    }
    dp_model_free(m);
    snprintf(want, sizeof want, "tree %d: 2 deleted nodes, num_deleted 1", pruned_t);
    refused_after(blob, len, "pruned1.dpm", prune_1, want);
    free(b);
    free(blob);
}

/* The model header's classes against the booster's (the audit's header of
 * 5 classes over an 11-class booster loaded, then failed at the first
 * prediction with a message naming no file, printed twice): refused at
 * load, by `classify` once. */
static void test_gbt_blob_classes(void)
{
    size_t len = 0;
    uint8_t *blob = real_blob(&len, NULL);
    if (!blob)
        return;
    const char *p5 = gbt_file("classes5.dpm", blob, len, 5);
    check_refused(p5, "3 classes, the model has 5");
    check_refused(gbt_file("classes2.dpm", blob, len, 2), "3 classes, the model has 2");
    free(blob);
    const char *dp = dp_test_cli();
    if (!dp || !p5)
        SKIP("no deeppacket binary in $BUILD");
    char cmd[4096], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' classify -m '%s' -r data/corpus/voip_01.pcap 2>&1 >/dev/null; echo rc=$?", dp,
             p5);
    dp_test_sh(cmd, out, sizeof out);
    CHECK_STR_CONTAINS(out, "gbt booster: 3 classes, the model has 5");
    int said = 0;
    for (const char *q = out; (q = strstr(q, "gbt booster")) != NULL; q++)
        said++;
    CHECK_EQ_INT(said, 1);
    CHECK(strstr(out, "rc=0") == NULL);
}

/* A gbt model file written before the check (tests/fixtures/model_gbt.dpm:
 * `train --model gbt` on data/corpus's traffic split, --packets 2
 * --payload-bytes 0 --trees 2 --depth 3, by commit 072f1fe) loads and
 * predicts as it did then. */
static void test_gbt_old_file_loads(void)
{
    char eb[DP_ERRBUF_SIZE];
    dp_model *m = dp_model_load("tests/fixtures/model_gbt.dpm", eb);
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "  %s\n", eb);
        return;
    }
    int d = dp_model_arch(m)->in_len;
    CHECK_EQ_INT(d, 88);
    CHECK_EQ_INT(dp_model_arch(m)->nclasses, 11);
    float x[2 * 88], lp[2 * 11];
    for (int j = 0; j < d; j++) {
        x[j] = (float)((j * 37 + 5) % 101) / 101.0f;
        x[d + j] = j % 44 == 0 ? 1.0f : (float)((j * 11) % 7) / 7.0f - 0.5f;
    }
    static const float want[22] = {
        -2.56390381f, -2.56851244f, -2.56506491f, -2.56718063f, -1.83591366f, -2.48629594f, -2.40458775f,
        -2.56851244f, -2.43469381f, -2.56851244f, -2.13057065f, -2.48800206f, -2.49261045f, -2.46288776f,
        -1.88510239f, -2.4916718f,  -2.48777938f, -2.32868576f, -2.49261045f, -2.45735693f, -2.49261045f,
        -2.49023867f};
    CHECK_EQ_INT(dp_model_predict_flows(m, x, 2, lp, eb), 0);
    for (int i = 0; i < 22; i++)
        CHECK_NEAR(lp[i], want[i], 1e-6);
    dp_model_free(m);
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
    DP_RUN(test_gbt_check_real);
    DP_RUN(test_gbt_blob_truncated);
    DP_RUN(test_gbt_blob_lengths);
    DP_RUN(test_gbt_blob_mutations);
    DP_RUN(test_gbt_blob_values);
    DP_RUN(test_gbt_blob_not_a_tree);
    DP_RUN(test_gbt_blob_deleted_nodes);
    DP_RUN(test_gbt_blob_classes);
    DP_RUN(test_gbt_old_file_loads);
    return dp_test_end();
}
