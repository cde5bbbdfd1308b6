/* dp_onnx_export: every model kind as an ONNX graph (docs/onnx.md), built
 * with the dp_onnx writer and written atomically.
 *
 *   packet models   packets uint8 [N, 1500] -> the field mask (dp_onnx_mask.c),
 *                   if any -> Cast -> Mul 1/255 (as C scales)
 *   CNN             Reshape [N, 1, 1500] -> Conv+Relu -> Conv+Relu -> MaxPool -> Flatten
 *   flow NN         flows float [N, P*F] -> per-packet Gemm+Relu x2, times the
 *                   present flag -> Conv over packets + Relu -> [N, P*C]
 *   then            Gemm+Relu per hidden layer, Gemm (out) -> LogSoftmax
 *   GBT             flows -> ai.onnx.ml TreeEnsembleRegressor (class margins)
 *                   -> Softmax -> Max 1e-30 -> Log (as dp_gbt_predict)
 * Output: logprobs float [N, classes]. Opsets: ai.onnx 17, ai.onnx.ml 3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/dp_gbt.h"
#include "model/dp_model_impl.h"
#include "model/dp_onnx.h"
#include "packet/dp_mask.h"

/* One-input, one-output node; returns the output's name. */
static const char *op1(dp_onnx_graph *G, const char *op, const char *x, dp_pb *attrs)
{
    return dp_onnx_op(G, op, &x, 1, attrs);
}

static const char *op2(dp_onnx_graph *G, const char *op, const char *a, const char *b)
{
    const char *in[2] = {a, b};
    return dp_onnx_op(G, op, in, 2, NULL);
}

/* A named int64 shape constant [-1, d1(, d2)] for Reshape. */
static const char *shape_const(dp_onnx_graph *G, int64_t d1, int64_t d2)
{
    const char *name = dp_onnx_tmp(G);
    int64_t v[3] = {-1, d1, d2}, n = d2 > 0 ? 3 : 2;
    dp_onnx_init_i64(G, name, &n, 1, v);
    return name;
}

static const char *reshape(dp_onnx_graph *G, const char *x, int64_t d1, int64_t d2)
{
    return op2(G, "Reshape", x, shape_const(G, d1, d2));
}

/* Tensor i of the model as an initializer under its state_dict name. */
static const char *param(dp_onnx_graph *G, const dp_model *m, int i)
{
    const dp_tdesc *t = &m->t[i];
    int64_t dims[4];
    for (int d = 0; d < t->ndim; d++)
        dims[d] = t->shape[d];
    dp_onnx_init_f32(G, t->name, dims, t->ndim, m->params + t->offset);
    return t->name;
}

/* Gemm(x, W^T, b) of the tensors k (weight [out, in]) and k+1 (bias). */
static const char *linear(dp_onnx_graph *G, const dp_model *m, int k, const char *x)
{
    const char *in[3] = {x, param(G, m, k), param(G, m, k + 1)}, *y = dp_onnx_tmp(G);
    dp_pb at = {0};
    dp_onnx_attr_int(&at, "transB", 1);
    dp_onnx_node(G, "Gemm", "", in, 3, &y, 1, &at);
    return y;
}

/* Conv1d of tensors k, k+1 with stride s and symmetric padding pad. */
static const char *conv(dp_onnx_graph *G, const dp_model *m, int k, const char *x, int64_t stride, int64_t pad)
{
    const char *in[3] = {x, param(G, m, k), param(G, m, k + 1)}, *y = dp_onnx_tmp(G);
    int64_t ks = m->t[k].shape[2], pads[2] = {pad, pad};
    dp_pb at = {0};
    dp_onnx_attr_ints(&at, "kernel_shape", &ks, 1);
    dp_onnx_attr_ints(&at, "strides", &stride, 1);
    dp_onnx_attr_ints(&at, "pads", pads, 2);
    dp_onnx_node(G, "Conv", "", in, 3, &y, 1, &at);
    return y;
}

/* packets uint8 [N, 1500] -> the model's field mask (dp_onnx_mask.c) ->
 * float [N, 1500] scaled by 1/255 as C does ((float)byte * (1.0f / 255.0f));
 * flows are taken as they are (their mask was applied to build them). */
static const char *input_stage(dp_onnx_graph *G, const dp_model *m)
{
    int64_t dims[2] = {-1, m->arch.in_len};
    if (m->input == DP_INPUT_FLOW) {
        dp_onnx_io(G, 0, "flows", DP_ONNX_FLOAT, dims, 2);
        return "flows";
    }
    dp_onnx_io(G, 0, "packets", DP_ONNX_UINT8, dims, 2);
    const char *x = m->fieldmask ? dp_onnx_mask_stage(G, "packets", m->fieldmask) : "packets";
    dp_pb at = {0};
    dp_onnx_attr_int(&at, "to", DP_ONNX_FLOAT);
    x = op1(G, "Cast", x, &at);
    const float s = 1.0f / 255.0f;
    dp_onnx_init_f32(G, "scale", NULL, 0, &s);
    return op2(G, "Mul", x, "scale");
}

/* The reference CNN's convolutions: [N, 1500] -> [N, c2 * L3]. */
static const char *cnn_stage(dp_onnx_graph *G, const dp_model *m, const char *x)
{
    const dp_arch *a = &m->arch;
    x = reshape(G, x, 1, a->in_len);
    x = op1(G, "Relu", conv(G, m, 0, x, a->s1, 0), NULL);
    x = op1(G, "Relu", conv(G, m, 2, x, a->s2, 0), NULL);
    int64_t pool = a->pool;
    dp_pb at = {0};
    dp_onnx_attr_ints(&at, "kernel_shape", &pool, 1);
    dp_onnx_attr_ints(&at, "strides", &pool, 1);
    x = op1(G, "MaxPool", x, &at);
    dp_pb fl = {0};
    dp_onnx_attr_int(&fl, "axis", 1);
    return op1(G, "Flatten", x, &fl);
}

/* The flow NN's per-packet stage (dp_model_flow.c): [N, P*F] -> the head's
 * input [N, P*C] (or [N, P*E2] without conv; the row itself without
 * per-packet layers). */
static const char *flow_stage(dp_onnx_graph *G, const dp_model *m, const char *x)
{
    const int *e = m->arch.ext; /* [0] P, [1] F, [2] E1, [3] E2, [4] C, [5] K */
    int nl = dp_flow_nlayers(&m->arch);
    if (nl == 0)
        return x;
    const char *rows = reshape(G, x, e[1], 0); /* [N*P, F] */
    const char *present = dp_onnx_tmp(G);
    int64_t one = 1, v[3] = {0, 1, 1}; /* column 0 of axis 1 */
    const char *starts = dp_onnx_tmp(G), *ends = dp_onnx_tmp(G), *axes = dp_onnx_tmp(G);
    dp_onnx_init_i64(G, starts, &one, 1, &v[0]);
    dp_onnx_init_i64(G, ends, &one, 1, &v[1]);
    dp_onnx_init_i64(G, axes, &one, 1, &v[2]);
    const char *in[4] = {rows, starts, ends, axes};
    dp_onnx_node(G, "Slice", "", in, 4, &present, 1, NULL); /* [N*P, 1]: the present flag */
    const char *h = op1(G, "Relu", linear(G, m, 0, rows), NULL);
    h = op1(G, "Relu", linear(G, m, 2, h), NULL);
    h = op2(G, "Mul", h, present); /* absent packets -> 0 */
    if (nl == 2)
        return reshape(G, h, (int64_t)e[0] * e[3], 0);
    int64_t perm[3] = {0, 2, 1};
    dp_pb t1 = {0}, t2 = {0};
    dp_onnx_attr_ints(&t1, "perm", perm, 3);
    dp_onnx_attr_ints(&t2, "perm", perm, 3);
    h = op1(G, "Transpose", reshape(G, h, e[0], e[3]), &t1); /* [N, E2, P] */
    h = op1(G, "Relu", conv(G, m, 4, h, 1, e[5] / 2), NULL);   /* [N, C, P] */
    h = op1(G, "Transpose", h, &t2);                           /* [N, P, C] */
    return reshape(G, h, (int64_t)e[0] * e[4], 0);
}

/* The fully connected stack after the first `first` tensors -> logits. */
static const char *fc_stage(dp_onnx_graph *G, const dp_model *m, const char *x)
{
    int first = m->ntensors - 2 * m->nfc;
    for (int i = 0; i < m->nfc; i++) {
        x = linear(G, m, first + 2 * i, x);
        if (i < m->nfc - 1)
            x = op1(G, "Relu", x, NULL); /* dropout is off at inference */
    }
    return x;
}

/* The attribute lists of TreeEnsembleRegressor from the dumped nodes. */
static int tree_attrs(dp_pb *at, const dp_gbt_node *nd, size_t n, int nclasses, float base, char *errbuf)
{
    int64_t *iv = malloc((n ? n : 1) * 6 * sizeof *iv);
    float *fv = malloc((n ? n : 1) * 2 * sizeof *fv);
    const char **modes = malloc((n ? n : 1) * sizeof *modes);
    float *bases = malloc((size_t)nclasses * sizeof *bases);
    if (!iv || !fv || !modes || !bases) {
        free(iv), free(fv), free(modes), free(bases);
        return dp_err(errbuf, "onnx: out of memory for %zu tree nodes", n);
    }
    int64_t *tree = iv, *id = iv + n, *feat = iv + 2 * n, *yes = iv + 3 * n, *no = iv + 4 * n, *miss = iv + 5 * n;
    float *val = fv;
    size_t nl = 0;
    for (size_t i = 0; i < n; i++) {
        tree[i] = nd[i].tree, id[i] = nd[i].id;
        feat[i] = nd[i].leaf ? 0 : nd[i].feature;
        yes[i] = nd[i].leaf ? 0 : nd[i].yes, no[i] = nd[i].leaf ? 0 : nd[i].no;
        miss[i] = !nd[i].leaf && nd[i].missing == nd[i].yes;
        val[i] = nd[i].leaf ? 0 : nd[i].value;
        modes[i] = nd[i].leaf ? "LEAF" : "BRANCH_LT";
        nl += nd[i].leaf;
    }
    dp_onnx_attr_ints(at, "nodes_treeids", tree, n);
    dp_onnx_attr_ints(at, "nodes_nodeids", id, n);
    dp_onnx_attr_ints(at, "nodes_featureids", feat, n);
    dp_onnx_attr_strs(at, "nodes_modes", modes, n);
    dp_onnx_attr_floats(at, "nodes_values", val, n);
    dp_onnx_attr_ints(at, "nodes_truenodeids", yes, n);
    dp_onnx_attr_ints(at, "nodes_falsenodeids", no, n);
    dp_onnx_attr_ints(at, "nodes_missing_value_tracks_true", miss, n);
    /* the leaves: reuse the arrays (nl <= n) */
    float *w = fv + n;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (nd[i].leaf) {
            tree[k] = nd[i].tree, id[k] = nd[i].id, feat[k] = nd[i].tree % nclasses, w[k] = nd[i].value;
            k++;
        }
    dp_onnx_attr_ints(at, "target_treeids", tree, nl);
    dp_onnx_attr_ints(at, "target_nodeids", id, nl);
    dp_onnx_attr_ints(at, "target_ids", feat, nl);
    dp_onnx_attr_floats(at, "target_weights", w, nl);
    for (int c = 0; c < nclasses; c++)
        bases[c] = base;
    dp_onnx_attr_floats(at, "base_values", bases, (size_t)nclasses);
    dp_onnx_attr_int(at, "n_targets", nclasses);
    dp_onnx_attr_str(at, "aggregate_function", "SUM");
    dp_onnx_attr_str(at, "post_transform", "NONE");
    free(iv), free(fv), free(modes), free(bases);
    return 0;
}

/* The GBT: flows -> class margins (the trees) -> log(max(softmax, 1e-30)). */
static const char *gbt_stage(dp_onnx_graph *G, const dp_model *m, const char *x, char *errbuf)
{
    dp_gbt *g = dp_gbt_load(m->blob, m->blob_len, m->arch.in_len, m->arch.nclasses, "model", errbuf);
    dp_gbt_node *nd = NULL;
    size_t n = 0;
    int ntrees = 0;
    float base = 0;
    dp_pb at = {0};
    int rc = g ? dp_gbt_trees(g, &nd, &n, &ntrees, &base, errbuf) : -1;
    if (rc == 0)
        rc = tree_attrs(&at, nd, n, m->arch.nclasses, base, errbuf);
    free(nd);
    dp_gbt_free(g);
    if (rc != 0) {
        dp_pb_free(&at);
        return NULL;
    }
    const char *y = dp_onnx_tmp(G);
    dp_onnx_node(G, "TreeEnsembleRegressor", "ai.onnx.ml", &x, 1, &y, 1, &at);
    dp_pb sm = {0};
    dp_onnx_attr_int(&sm, "axis", 1);
    y = op1(G, "Softmax", y, &sm);
    const float floor_p = 1e-30f;
    dp_onnx_init_f32(G, "prob_floor", NULL, 0, &floor_p);
    return op2(G, "Max", y, "prob_floor");
}

/* ---- metadata -------------------------------------------------------------------- */

#define NMETA 9
typedef struct meta {
    const char *kv[NMETA][2];
    int n;          /* pairs used: 6, or 9 for a flow model */
    char *classes;  /* JSON array of the class names (dp_memstream_open) */
    char input[512], mask[64], groups[48], npk[16], nk[16];
} meta;

static int meta_fill(meta *mt, const dp_model *m, char *errbuf)
{
    size_t len = 0;
    FILE *f = dp_memstream_open(&mt->classes, &len);
    if (!f)
        return dp_err(errbuf, "onnx: out of memory");
    fputc('[', f);
    for (int c = 0; c < m->arch.nclasses; c++) {
        fputs(c ? ", " : "", f);
        dp_json_str(f, dp_model_class_name(m, c));
    }
    fputc(']', f);
    if (dp_memstream_close(f) != 0)
        return dp_err(errbuf, "onnx: out of memory");
    const dp_flowcfg *fc = dp_model_flowcfg(m);
    dp_mask_name(m->fieldmask, mt->mask, sizeof mt->mask);
    if (fc)
        snprintf(mt->input, sizeof mt->input,
                 "flows: float32 [N, %d], one row per flow: its first %d packets x %d features "
                 "(docs/flow-features.md; payload bytes %d, mask %s, feature groups %s)",
                 m->arch.in_len, fc->npackets, dp_flowcfg_features(fc), fc->payload_bytes, mt->mask,
                 dp_flowfeat_groups_name(fc->groups, mt->groups, sizeof mt->groups));
    else if (m->input == DP_INPUT_FLOW)
        snprintf(mt->input, sizeof mt->input, "flows: float32 [N, %d] rows as given to the model", m->arch.in_len);
    else
        snprintf(mt->input, sizeof mt->input,
                 "packets: uint8 [N, 1500] Deep Packet vectors (docs/packet.md), scaled by 1/255 in the graph");
    snprintf(mt->npk, sizeof mt->npk, "%d", fc ? fc->npackets : 0);
    snprintf(mt->nk, sizeof mt->nk, "%d", fc ? fc->payload_bytes : 0);
    const char *kv[NMETA][2] = {
        {"classes", mt->classes},
        {"deeppacket.kind", dp_model_kind_name(m)},
        {"deeppacket.task", m->task == DP_TASK_APP ? "app" : "traffic"},
        {"deeppacket.input", mt->input},
        {"deeppacket.output", "logprobs: float32 [N, classes], log-probabilities (natural log)"},
        {"deeppacket.mask", mt->mask},
        {"deeppacket.flow_packets", mt->npk},
        {"deeppacket.flow_payload_bytes", mt->nk},
        {"deeppacket.flow_features", mt->groups},
    };
    memcpy(mt->kv, kv, sizeof kv);
    mt->n = fc ? NMETA : 6;
    return 0;
}

/* ---- the export ------------------------------------------------------------------ */

/* Builds the graph of m: input -> the kind's stages -> "logprobs". */
static int build_graph(dp_onnx_graph *G, dp_model *m, char *errbuf)
{
    const char *x = input_stage(G, m);
    if (m->arch.kind == DP_MODEL_GBT) {
        if (!(x = gbt_stage(G, m, x, errbuf)))
            return -1;
        dp_onnx_node(G, "Log", "", &x, 1, &(const char *){"logprobs"}, 1, NULL);
    } else {
        if (m->arch.kind == DP_MODEL_CNN)
            x = cnn_stage(G, m, x);
        else if (m->arch.kind == DP_MODEL_FLOW)
            x = flow_stage(G, m, x);
        x = fc_stage(G, m, x);
        dp_pb at = {0};
        dp_onnx_attr_int(&at, "axis", 1);
        dp_onnx_node(G, "LogSoftmax", "", &x, 1, &(const char *){"logprobs"}, 1, &at);
    }
    int64_t dims[2] = {-1, m->arch.nclasses};
    dp_onnx_io(G, 1, "logprobs", DP_ONNX_FLOAT, dims, 2);
    return 0;
}

int dp_onnx_export(dp_model *m, const char *path, char *errbuf)
{
    char err[DP_ERRBUF_SIZE];
    dp_onnx_graph *G = calloc(1, sizeof *G);
    meta mt = {0};
    dp_pb out = {0};
    int rc = G ? 0 : dp_err(err, "out of memory");
    if (rc == 0)
        rc = build_graph(G, m, err);
    if (rc == 0)
        rc = meta_fill(&mt, m, err);
    if (rc == 0)
        rc = dp_onnx_model(&out, G, "deeppacket", (const char *const(*)[2])mt.kv, mt.n, err);
    else if (G)
        dp_pb_free(&G->g);
    if (rc != 0)
        dp_err(errbuf, "%s: %s", path, err);
    else
        rc = dp_write_file_atomic(path, out.buf, out.len, errbuf);
    dp_pb_free(&out);
    free(mt.classes);
    free(G);
    return rc;
}
