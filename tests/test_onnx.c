/* ONNX export (issue 14 part 3): the protobuf writer against hand-encoded
 * bytes of the protobuf encoding spec; an exported model read back with a
 * small independent protobuf reader (ir_version, opsets, node order, the
 * weights byte for byte, metadata); the field mask as graph nodes; the GBT's
 * dumped trees evaluated here against XGBoost's own predictions; a write
 * error. ONNX Runtime and the onnx checker run in tests/onnx/run.sh. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dp_test.h"
#include "model/dp_gbt.h"
#include "model/dp_model.h"
#include "model/dp_onnx.h"
#include "packet/dp_mask.h"
#include "util/dp_util.h"

static int same_bytes(const dp_pb *b, const uint8_t *want, size_t n)
{
    if (b->len != n || memcmp(b->buf, want, n) != 0) {
        fprintf(stderr, "  got %zu bytes:", b->len);
        for (size_t i = 0; i < b->len; i++)
            fprintf(stderr, " %02x", b->buf[i]);
        fprintf(stderr, "\n");
        return 0;
    }
    return 1;
}

/* Encodings from the protobuf encoding guide (varint 150 = 96 01, etc.). */
static void test_wire_format(void)
{
    dp_pb b = {0};
    uint64_t v[] = {0, 1, 127, 128, 150, 300, UINT64_MAX};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        dp_pb_varint(&b, v[i]);
    static const uint8_t want[] = {0x00, 0x01, 0x7f, 0x80, 0x01, 0x96, 0x01, 0xac, 0x02,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK(same_bytes(&b, want, sizeof want));
    dp_pb_free(&b);

    dp_pb_int(&b, 1, 150);      /* 08 96 01 */
    dp_pb_int(&b, 20, -1);      /* a0 01 + ten bytes */
    dp_pb_str(&b, 2, "testing"); /* 12 07 't' ... */
    dp_pb_float(&b, 2, 1.0f);   /* 15 00 00 80 3f */
    static const uint8_t want2[] = {0x08, 0x96, 0x01, 0xa0, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0x01, 0x12, 0x07, 't',  'e',  's',  't',  'i',  'n',
                                    'g',  0x15, 0x00, 0x00, 0x80, 0x3f};
    CHECK(same_bytes(&b, want2, sizeof want2));
    dp_pb_free(&b);

    dp_pb sub = {0}; /* message Test3 { Test1 c = 3; } with a = 150: 1a 03 08 96 01 */
    dp_pb_int(&sub, 1, 150);
    dp_pb_msg(&b, 3, &sub);
    static const uint8_t want3[] = {0x1a, 0x03, 0x08, 0x96, 0x01};
    CHECK(same_bytes(&b, want3, sizeof want3));
    CHECK(sub.buf == NULL && sub.len == 0); /* consumed */
    dp_pb_free(&b);
}

/* ---- a minimal protobuf reader (the test's own, not the writer's) ---- */

typedef struct field {
    int num, wire;
    uint64_t v;            /* varint / fixed32 value */
    const uint8_t *p;      /* length-delimited payload */
    size_t n;
} field;

static int rd_varint(const uint8_t *p, size_t n, size_t *o, uint64_t *v)
{
    *v = 0;
    for (int s = 0; s < 64 && *o < n; s += 7) {
        uint8_t c = p[(*o)++];
        *v |= (uint64_t)(c & 0x7f) << s;
        if (!(c & 0x80))
            return 0;
    }
    return -1;
}

/* The next field of message [p, p+n) at *o; 1 when one was read, 0 at the
 * end, -1 on a malformed message. */
static int next_field(const uint8_t *p, size_t n, size_t *o, field *f)
{
    uint64_t k;
    if (*o >= n)
        return 0;
    if (rd_varint(p, n, o, &k) != 0)
        return -1;
    f->num = (int)(k >> 3), f->wire = (int)(k & 7);
    if (f->wire == 0)
        return rd_varint(p, n, o, &f->v) == 0 ? 1 : -1;
    if (f->wire == 5) {
        if (*o + 4 > n)
            return -1;
        f->v = p[*o] | (uint32_t)p[*o + 1] << 8 | (uint32_t)p[*o + 2] << 16 | (uint32_t)p[*o + 3] << 24;
        *o += 4;
        return 1;
    }
    if (f->wire != 2 || rd_varint(p, n, o, &f->v) != 0 || *o + f->v > n)
        return -1;
    f->p = p + *o, f->n = (size_t)f->v;
    *o += f->n;
    return 1;
}

/* The first field `num` of a message (1), or 0. */
static int find(const uint8_t *p, size_t n, int num, field *f)
{
    size_t o = 0;
    int r;
    while ((r = next_field(p, n, &o, f)) == 1)
        if (f->num == num)
            return 1;
    return 0;
}

static int is_str(const field *f, const char *s)
{
    return f->wire == 2 && f->n == strlen(s) && memcmp(f->p, s, f->n) == 0;
}

static char *names3[3] = {"Chat", "Email", "VPN: Voip"};

static dp_model *small_sae(void)
{
    dp_arch a;
    char eb[DP_ERRBUF_SIZE];
    dp_arch_default(&a, DP_MODEL_SAE, DP_TASK_TRAFFIC, 3);
    a.nhidden = 2, a.hidden[0] = 8, a.hidden[1] = 4;
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, names3, 5, eb);
    if (!m)
        fprintf(stderr, "  %s\n", eb);
    return m;
}

/* The exported SAE read back: header, node order, every weight's bytes,
 * the input and output, the class names. */
static void test_export_reads_back(void)
{
    char eb[DP_ERRBUF_SIZE], path[512];
    dp_model *m = small_sae();
    CHECK(m != NULL);
    if (!m)
        return;
    snprintf(path, sizeof path, "%s/sae.onnx", dp_test_tmpdir());
    CHECK_EQ_INT(dp_onnx_export(m, path, eb), 0);
    size_t n = 0, o = 0;
    uint8_t *b = dp_test_read_file(path, &n);
    CHECK(b != NULL);
    if (!b) {
        dp_model_free(m);
        return;
    }
    field f, g;
    CHECK(find(b, n, 1, &f) && f.v == 8); /* ir_version */
    int opsets = 0, meta = 0;
    while (next_field(b, n, &o, &f) == 1) {
        if (f.num == 8) { /* opset_import */
            field d, v;
            CHECK(find(f.p, f.n, 2, &v));
            if (find(f.p, f.n, 1, &d) && is_str(&d, "ai.onnx.ml"))
                CHECK_EQ_INT(v.v, 3);
            else
                CHECK_EQ_INT(v.v, 17);
            opsets++;
        }
        if (f.num == 14 && find(f.p, f.n, 1, &g) && is_str(&g, "classes")) {
            CHECK(find(f.p, f.n, 2, &g) && is_str(&g, "[\"Chat\", \"Email\", \"VPN: Voip\"]"));
            meta++;
        }
    }
    CHECK_EQ_INT(opsets, 2);
    CHECK_EQ_INT(meta, 1);
    CHECK(find(b, n, 7, &g)); /* graph */
    const char *ops[] = {"Cast", "Mul", "Gemm", "Relu", "Gemm", "Relu", "Gemm", "LogSoftmax"};
    int nops = 0, ninit = 0;
    o = 0;
    while (next_field(g.p, g.n, &o, &f) == 1) {
        field t;
        if (f.num == 1 && find(f.p, f.n, 4, &t)) { /* node.op_type */
            CHECK(nops < 8 && is_str(&t, ops[nops]));
            nops++;
        }
        if (f.num == 5 && find(f.p, f.n, 8, &t)) { /* initializer: name, raw_data */
            for (int i = 0; i < dp_model_ntensors(m); i++) {
                const char *nm;
                size_t off, numel;
                int shape[4];
                dp_model_tensor(m, i, &nm, &off, &numel, shape);
                field raw;
                if (is_str(&t, nm)) {
                    CHECK(find(f.p, f.n, 9, &raw) && raw.n == numel * 4 &&
                          memcmp(raw.p, dp_model_params(m) + off, raw.n) == 0);
                    ninit++;
                }
            }
        }
        if (f.num == 11 || f.num == 12) { /* input, output */
            CHECK(find(f.p, f.n, 1, &t) && is_str(&t, f.num == 11 ? "packets" : "logprobs"));
        }
    }
    CHECK_EQ_INT(nops, 8);
    CHECK_EQ_INT(ninit, dp_model_ntensors(m));
    free(b);
    dp_model_free(m);
}

/* Node count and whether an op occurs in an exported model's graph. */
static int graph_ops(const char *path, const char *op, int *has)
{
    size_t n = 0, o = 0;
    uint8_t *b = dp_test_read_file(path, &n);
    field g, f, t;
    int count = 0;
    *has = 0;
    if (b && find(b, n, 7, &g))
        while (next_field(g.p, g.n, &o, &f) == 1)
            if (f.num == 1 && find(f.p, f.n, 4, &t)) {
                count++;
                *has |= is_str(&t, op);
            }
    free(b);
    return count;
}

/* A packet model's field mask becomes graph nodes (the header walk's
 * GatherElements; the values are compared with dp_mask_apply in
 * tests/onnx/run.sh); a folder that does not exist fails naming the path
 * and leaves nothing. */
static void test_export_mask_and_refusals(void)
{
    char eb[DP_ERRBUF_SIZE], path[512];
    struct stat st;
    int has;
    dp_model *m = small_sae();
    if (!m)
        return;
    snprintf(path, sizeof path, "%s/plain.onnx", dp_test_tmpdir());
    CHECK_EQ_INT(dp_onnx_export(m, path, eb), 0);
    CHECK_EQ_INT(graph_ops(path, "GatherElements", &has), 8);
    CHECK(!has);
    dp_model_set_mask(m, DP_MASK_DEFAULT);
    snprintf(path, sizeof path, "%s/masked.onnx", dp_test_tmpdir());
    CHECK_EQ_INT(dp_onnx_export(m, path, eb), 0);
    CHECK(graph_ops(path, "GatherElements", &has) > 1000);
    CHECK(has);
    snprintf(path, sizeof path, "%s/no/such/dir/x.onnx", dp_test_tmpdir());
    CHECK_EQ_INT(dp_onnx_export(m, path, eb), -1);
    CHECK_STR_CONTAINS(eb, "no/such/dir/x.onnx");
    CHECK(stat(path, &st) != 0);
    dp_model_free(m);
}

/* Leaf value of one tree for row x (walking the dumped nodes). */
static float walk(const dp_gbt_node *nd, size_t n, int tree, const float *x)
{
    int id = 0;
    for (int hops = 0; hops < 64; hops++) {
        const dp_gbt_node *k = NULL;
        for (size_t i = 0; i < n && !k; i++)
            if (nd[i].tree == tree && nd[i].id == id)
                k = &nd[i];
        if (!k)
            return NAN;
        if (k->leaf)
            return k->value;
        id = x[k->feature] < k->value ? k->yes : k->no;
    }
    return NAN;
}

/* The dumped trees, evaluated as the ONNX graph does (sum per class + base,
 * softmax, log), give XGBoost's own log-probabilities. */
static void test_gbt_trees_match_xgboost(void)
{
    enum { N = 90, D = 6, C = 3 };
    float x[N * D], lp[N * C];
    int y[N];
    char eb[DP_ERRBUF_SIZE];
    dp_rng r;
    dp_rng_seed(&r, 3);
    for (int i = 0; i < N; i++) {
        y[i] = i % C;
        for (int j = 0; j < D; j++)
            x[i * D + j] = dp_rng_float(&r) + (j == 2 ? (float)y[i] : 0);
    }
    dp_gbt_params gp;
    dp_gbt_params_default(&gp);
    gp.trees = 8, gp.depth = 3, gp.quiet = 1;
    dp_gbt *g = dp_gbt_train(x, N, D, y, NULL, C, &gp, eb);
    CHECK(g != NULL);
    if (!g)
        return;
    dp_gbt_node *nd = NULL;
    size_t n = 0;
    int ntrees = 0;
    float base = 0;
    CHECK_EQ_INT(dp_gbt_trees(g, &nd, &n, &ntrees, &base, eb), 0);
    CHECK_EQ_INT(ntrees, gp.trees * C);
    CHECK_EQ_INT(dp_gbt_predict(g, x, N, D, C, lp, eb), 0);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double z[C], mx = -1e30, s = 0;
        for (int c = 0; c < C; c++)
            z[c] = base;
        for (int t = 0; t < ntrees; t++)
            z[t % C] += walk(nd, n, t, x + i * D);
        for (int c = 0; c < C; c++)
            mx = z[c] > mx ? z[c] : mx;
        for (int c = 0; c < C; c++)
            s += exp(z[c] - mx);
        for (int c = 0; c < C; c++) {
            double d = fabs(z[c] - mx - log(s) - lp[i * C + c]);
            worst = d > worst || d != d ? d : worst;
        }
    }
    CHECK(worst < 1e-5);
    free(nd);
    dp_gbt_free(g);
}

int main(void)
{
    dp_test_prog = "test_onnx";
    DP_RUN(test_wire_format);
    DP_RUN(test_export_reads_back);
    DP_RUN(test_export_mask_and_refusals);
    DP_RUN(test_gbt_trees_match_xgboost);
    return dp_test_end();
}
