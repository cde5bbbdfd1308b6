/* dp_onnx: the protobuf writer and the ONNX messages (see dp_onnx.h).
 *
 * Field numbers of onnx.proto (ONNX 1.12; proto2, so repeated scalars are
 * written unpacked, one key per element, which every parser accepts):
 *
 *   ModelProto              1 ir_version (int64)   2 producer_name   3 producer_version
 *                           7 graph (GraphProto)   8 opset_import (OperatorSetIdProto)
 *                           14 metadata_props (StringStringEntryProto)
 *   OperatorSetIdProto      1 domain               2 version (int64)
 *   StringStringEntryProto  1 key                  2 value
 *   GraphProto              1 node   2 name   5 initializer (TensorProto)
 *                           11 input (ValueInfoProto)   12 output (ValueInfoProto)
 *   NodeProto               1 input  2 output  3 name  4 op_type  5 attribute  7 domain
 *   AttributeProto          1 name   2 f   3 i   4 s   7 floats   8 ints   9 strings
 *                           20 type (AttributeType: 1 FLOAT 2 INT 3 STRING
 *                                    6 FLOATS 7 INTS 8 STRINGS)
 *   TensorProto             1 dims (int64)   2 data_type (int32)   8 name   9 raw_data
 *   ValueInfoProto          1 name   2 type (TypeProto)
 *   TypeProto               1 tensor_type (TypeProto.Tensor)
 *   TypeProto.Tensor        1 elem_type (int32)   2 shape (TensorShapeProto)
 *   TensorShapeProto        1 dim (Dimension)
 *   Dimension               1 dim_value (int64)   2 dim_param (string)
 */
#include "model/dp_onnx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/dp_util.h"

enum {
    MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3, MODEL_GRAPH = 7,
    MODEL_OPSET_IMPORT = 8, MODEL_METADATA_PROPS = 14,
    OPSET_DOMAIN = 1, OPSET_VERSION = 2,
    ENTRY_KEY = 1, ENTRY_VALUE = 2,
    GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12,
    NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5, NODE_DOMAIN = 7,
    ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_S = 4, ATTR_FLOATS = 7, ATTR_INTS = 8, ATTR_STRINGS = 9,
    ATTR_TYPE = 20,
    TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9,
    VALUE_NAME = 1, VALUE_TYPE = 2,
    TYPE_TENSOR = 1,
    TTENSOR_ELEM_TYPE = 1, TTENSOR_SHAPE = 2,
    SHAPE_DIM = 1,
    DIM_VALUE = 1, DIM_PARAM = 2,
};
enum { ATYPE_FLOAT = 1, ATYPE_INT = 2, ATYPE_STRING = 3, ATYPE_FLOATS = 6, ATYPE_INTS = 7, ATYPE_STRINGS = 8 };

/* ---- wire format ------------------------------------------------------------- */

void dp_pb_free(dp_pb *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}

static int grow(dp_pb *b, size_t n)
{
    if (b->oom)
        return -1;
    if (b->len + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *p = realloc(b->buf, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->buf = p, b->cap = cap;
    return 0;
}

void dp_pb_raw(dp_pb *b, const void *p, size_t n)
{
    if (n == 0 || grow(b, n) != 0)
        return;
    memcpy(b->buf + b->len, p, n);
    b->len += n;
}

void dp_pb_varint(dp_pb *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            t[n] |= 0x80;
        n++;
    } while (v);
    dp_pb_raw(b, t, n);
}

void dp_pb_key(dp_pb *b, int field, int wire)
{
    dp_pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

void dp_pb_int(dp_pb *b, int field, int64_t v)
{
    dp_pb_key(b, field, DP_PB_VARINT);
    dp_pb_varint(b, (uint64_t)v);
}

void dp_pb_float(dp_pb *b, int field, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    uint8_t t[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    dp_pb_key(b, field, DP_PB_FIXED32);
    dp_pb_raw(b, t, 4);
}

void dp_pb_bytes(dp_pb *b, int field, const void *p, size_t n)
{
    dp_pb_key(b, field, DP_PB_LEN);
    dp_pb_varint(b, n);
    dp_pb_raw(b, p, n);
}

void dp_pb_str(dp_pb *b, int field, const char *s)
{
    dp_pb_bytes(b, field, s, strlen(s));
}

void dp_pb_msg(dp_pb *b, int field, dp_pb *sub)
{
    if (sub->oom)
        b->oom = 1;
    dp_pb_bytes(b, field, sub->buf, sub->len);
    dp_pb_free(sub);
}

/* ---- attributes ---------------------------------------------------------------- */

static void attr_head(dp_pb *a, const char *name, int type)
{
    dp_pb_str(a, ATTR_NAME, name);
    dp_pb_int(a, ATTR_TYPE, type);
}

void dp_onnx_attr_int(dp_pb *attrs, const char *name, int64_t v)
{
    dp_pb a = {0};
    attr_head(&a, name, ATYPE_INT);
    dp_pb_int(&a, ATTR_I, v);
    dp_pb_msg(attrs, NODE_ATTRIBUTE, &a);
}

void dp_onnx_attr_float(dp_pb *attrs, const char *name, float v)
{
    dp_pb a = {0};
    attr_head(&a, name, ATYPE_FLOAT);
    dp_pb_float(&a, ATTR_F, v);
    dp_pb_msg(attrs, NODE_ATTRIBUTE, &a);
}

void dp_onnx_attr_str(dp_pb *attrs, const char *name, const char *s)
{
    dp_pb a = {0};
    attr_head(&a, name, ATYPE_STRING);
    dp_pb_str(&a, ATTR_S, s);
    dp_pb_msg(attrs, NODE_ATTRIBUTE, &a);
}

void dp_onnx_attr_ints(dp_pb *attrs, const char *name, const int64_t *v, size_t n)
{
    dp_pb a = {0};
    attr_head(&a, name, ATYPE_INTS);
    for (size_t i = 0; i < n; i++)
        dp_pb_int(&a, ATTR_INTS, v[i]);
    dp_pb_msg(attrs, NODE_ATTRIBUTE, &a);
}

void dp_onnx_attr_floats(dp_pb *attrs, const char *name, const float *v, size_t n)
{
    dp_pb a = {0};
    attr_head(&a, name, ATYPE_FLOATS);
    for (size_t i = 0; i < n; i++)
        dp_pb_float(&a, ATTR_FLOATS, v[i]);
    dp_pb_msg(attrs, NODE_ATTRIBUTE, &a);
}

void dp_onnx_attr_strs(dp_pb *attrs, const char *name, const char *const *s, size_t n)
{
    dp_pb a = {0};
    attr_head(&a, name, ATYPE_STRINGS);
    for (size_t i = 0; i < n; i++)
        dp_pb_str(&a, ATTR_STRINGS, s[i]);
    dp_pb_msg(attrs, NODE_ATTRIBUTE, &a);
}

/* ---- graph ------------------------------------------------------------------------ */

void dp_onnx_node(dp_onnx_graph *G, const char *op, const char *domain, const char *const *in, int nin,
                  const char *const *out, int nout, dp_pb *attrs)
{
    dp_pb n = {0};
    char name[24];
    for (int i = 0; i < nin; i++)
        dp_pb_str(&n, NODE_INPUT, in[i] ? in[i] : "");
    for (int i = 0; i < nout; i++)
        dp_pb_str(&n, NODE_OUTPUT, out[i] ? out[i] : "");
    snprintf(name, sizeof name, "n%d", G->nnodes++);
    dp_pb_str(&n, NODE_NAME, name);
    dp_pb_str(&n, NODE_OP_TYPE, op);
    if (domain && *domain)
        dp_pb_str(&n, NODE_DOMAIN, domain);
    if (attrs) {
        if (attrs->oom)
            n.oom = 1;
        dp_pb_raw(&n, attrs->buf, attrs->len);
        dp_pb_free(attrs);
    }
    dp_pb_msg(&G->g, GRAPH_NODE, &n);
}

const char *dp_onnx_tmp(dp_onnx_graph *G)
{
    if (G->ntmp >= (int)(sizeof G->tmp / sizeof G->tmp[0])) {
        G->g.oom = 1;
        return NULL;
    }
    snprintf(G->tmp[G->ntmp], sizeof G->tmp[0], "t%d", G->ntmp);
    return G->tmp[G->ntmp++];
}

const char *dp_onnx_op(dp_onnx_graph *G, const char *op, const char *const *in, int nin, dp_pb *attrs)
{
    const char *y = dp_onnx_tmp(G);
    dp_onnx_node(G, op, "", in, nin, &y, 1, attrs);
    return y;
}

const char *dp_onnx_const_i64(dp_onnx_graph *G, int64_t v)
{
    const char *name = dp_onnx_tmp(G);
    dp_onnx_init_i64(G, name, NULL, 0, &v);
    return name;
}

static void init_tensor(dp_onnx_graph *G, const char *name, int type, const int64_t *dims, int ndim,
                        const void *data, size_t elem)
{
    dp_pb t = {0};
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        dp_pb_int(&t, TENSOR_DIMS, dims[i]);
        n *= (size_t)dims[i];
    }
    dp_pb_int(&t, TENSOR_DATA_TYPE, type);
    dp_pb_str(&t, TENSOR_NAME, name);
    /* raw_data is little-endian: the host's order on x86-64 and arm64 */
    dp_pb_bytes(&t, TENSOR_RAW_DATA, data, n * elem);
    dp_pb_msg(&G->g, GRAPH_INITIALIZER, &t);
}

void dp_onnx_init_f32(dp_onnx_graph *G, const char *name, const int64_t *dims, int ndim, const float *data)
{
    init_tensor(G, name, DP_ONNX_FLOAT, dims, ndim, data, sizeof(float));
}

void dp_onnx_init_i64(dp_onnx_graph *G, const char *name, const int64_t *dims, int ndim, const int64_t *data)
{
    init_tensor(G, name, DP_ONNX_INT64, dims, ndim, data, sizeof(int64_t));
}

void dp_onnx_io(dp_onnx_graph *G, int is_output, const char *name, int elem_type, const int64_t *dims, int ndim)
{
    dp_pb shape = {0}, tt = {0}, type = {0}, v = {0};
    for (int i = 0; i < ndim; i++) {
        dp_pb d = {0};
        if (dims[i] < 0)
            dp_pb_str(&d, DIM_PARAM, "N");
        else
            dp_pb_int(&d, DIM_VALUE, dims[i]);
        dp_pb_msg(&shape, SHAPE_DIM, &d);
    }
    dp_pb_int(&tt, TTENSOR_ELEM_TYPE, elem_type);
    dp_pb_msg(&tt, TTENSOR_SHAPE, &shape);
    dp_pb_msg(&type, TYPE_TENSOR, &tt);
    dp_pb_str(&v, VALUE_NAME, name);
    dp_pb_msg(&v, VALUE_TYPE, &type);
    dp_pb_msg(&G->g, is_output ? GRAPH_OUTPUT : GRAPH_INPUT, &v);
}

/* ---- model ------------------------------------------------------------------------ */

static void opset(dp_pb *m, const char *domain, int version)
{
    dp_pb o = {0};
    dp_pb_str(&o, OPSET_DOMAIN, domain);
    dp_pb_int(&o, OPSET_VERSION, version);
    dp_pb_msg(m, MODEL_OPSET_IMPORT, &o);
}

int dp_onnx_model(dp_pb *out, dp_onnx_graph *G, const char *graph_name, const char *const (*meta)[2], int nmeta,
                  char *errbuf)
{
    memset(out, 0, sizeof *out);
    dp_pb_int(out, MODEL_IR_VERSION, DP_ONNX_IR_VERSION);
    opset(out, "", DP_ONNX_OPSET);
    opset(out, "ai.onnx.ml", DP_ONNX_ML_OPSET);
    dp_pb_str(out, MODEL_PRODUCER_NAME, "deeppacket");
    dp_pb_str(out, MODEL_PRODUCER_VERSION, "0.1.0");
    dp_pb_str(&G->g, GRAPH_NAME, graph_name);
    dp_pb_msg(out, MODEL_GRAPH, &G->g);
    for (int i = 0; i < nmeta; i++) {
        dp_pb e = {0};
        dp_pb_str(&e, ENTRY_KEY, meta[i][0]);
        dp_pb_str(&e, ENTRY_VALUE, meta[i][1]);
        dp_pb_msg(out, MODEL_METADATA_PROPS, &e);
    }
    if (out->oom) {
        dp_pb_free(out);
        return dp_err(errbuf, "onnx: out of memory building the model");
    }
    return 0;
}
