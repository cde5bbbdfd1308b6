/* dp_onnx: a small protobuf writer for ONNX model files (ggml style: the
 * onnx.proto field numbers are numbered at the top of dp_onnx.c), and the
 * export of every deeppacket model kind to ONNX (dp_onnx_export.c; graph
 * layout in docs/onnx.md).
 *
 * The writer builds messages in growable byte buffers (dp_pb): a nested
 * message is built in its own buffer and appended, length-prefixed, to its
 * parent. Out of memory is sticky (dp_pb.oom) and checked once at the end,
 * so builders do not check every call. */
#ifndef DP_ONNX_H
#define DP_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "model/dp_model.h"

/* ---- protobuf wire format --------------------------------------------------- */

typedef struct dp_pb {
    uint8_t *buf;
    size_t len, cap;
    int oom; /* an allocation failed: the buffer is incomplete */
} dp_pb;

#define DP_PB_VARINT 0
#define DP_PB_FIXED64 1
#define DP_PB_LEN 2
#define DP_PB_FIXED32 5

void dp_pb_free(dp_pb *b);
/* Appends raw bytes. */
void dp_pb_raw(dp_pb *b, const void *p, size_t n);
/* Base-128 varint, low group first (negative int64 values as their 64-bit
 * two's complement: 10 bytes). */
void dp_pb_varint(dp_pb *b, uint64_t v);
/* Field key: (field << 3) | wire type. */
void dp_pb_key(dp_pb *b, int field, int wire);
/* A varint field (int32, int64, enum, bool). */
void dp_pb_int(dp_pb *b, int field, int64_t v);
/* A float field (fixed32, IEEE-754 little-endian). */
void dp_pb_float(dp_pb *b, int field, float v);
/* A length-delimited field: bytes, a string, or a message built in sub
 * (dp_pb_msg appends sub and frees it; an oom in sub carries over). */
void dp_pb_bytes(dp_pb *b, int field, const void *p, size_t n);
void dp_pb_str(dp_pb *b, int field, const char *s);
void dp_pb_msg(dp_pb *b, int field, dp_pb *sub);

/* ---- ONNX messages ------------------------------------------------------------ */

/* TensorProto.DataType values used here */
#define DP_ONNX_FLOAT 1
#define DP_ONNX_UINT8 2
#define DP_ONNX_INT64 7

/* Attributes of one node, appended to attrs (AttributeProto each). */
void dp_onnx_attr_int(dp_pb *attrs, const char *name, int64_t v);
void dp_onnx_attr_float(dp_pb *attrs, const char *name, float v);
void dp_onnx_attr_str(dp_pb *attrs, const char *name, const char *s);
void dp_onnx_attr_ints(dp_pb *attrs, const char *name, const int64_t *v, size_t n);
void dp_onnx_attr_floats(dp_pb *attrs, const char *name, const float *v, size_t n);
void dp_onnx_attr_strs(dp_pb *attrs, const char *name, const char *const *s, size_t n);

/* A graph under construction (GraphProto fields, in any order). */
typedef struct dp_onnx_graph {
    dp_pb g;
    int nnodes;         /* node names n0, n1, ... */
    int ntmp;           /* intermediate value names t0, t1, ... */
    char tmp[8192][16]; /* their storage */
} dp_onnx_graph;

/* A node op(inputs) -> outputs in domain ("" = the default ai.onnx);
 * attrs (may be NULL) is consumed. */
void dp_onnx_node(dp_onnx_graph *G, const char *op, const char *domain, const char *const *in, int nin,
                  const char *const *out, int nout, dp_pb *attrs);
/* A fresh intermediate value name ("t7"); NULL once 8192 are used (the
 * graph is then marked oom). */
const char *dp_onnx_tmp(dp_onnx_graph *G);
/* A default-domain node op(in[0..nin)) with one fresh output, returned;
 * attrs (may be NULL) is consumed. */
const char *dp_onnx_op(dp_onnx_graph *G, const char *op, const char *const *in, int nin, dp_pb *attrs);
/* A scalar int64 constant (an initializer), returned by name. */
const char *dp_onnx_const_i64(dp_onnx_graph *G, int64_t v);
/* An initializer (raw_data, little-endian) of dims[ndim]. */
void dp_onnx_init_f32(dp_onnx_graph *G, const char *name, const int64_t *dims, int ndim, const float *data);
void dp_onnx_init_i64(dp_onnx_graph *G, const char *name, const int64_t *dims, int ndim, const int64_t *data);
/* A graph input (is_output 0) or output (1) of elem_type and dims; a dim
 * < 0 is symbolic, named "N". */
void dp_onnx_io(dp_onnx_graph *G, int is_output, const char *name, int elem_type, const int64_t *dims, int ndim);

/* Serialises a ModelProto around G (consumed) into out: IR version 8,
 * opsets ai.onnx 17 and ai.onnx.ml 3, producer "deeppacket", and nmeta
 * metadata_props key/value pairs. Returns 0, or -1 + message when out of
 * memory. */
#define DP_ONNX_IR_VERSION 8
#define DP_ONNX_OPSET 17
#define DP_ONNX_ML_OPSET 3
int dp_onnx_model(dp_pb *out, dp_onnx_graph *G, const char *graph_name, const char *const (*meta)[2], int nmeta,
                  char *errbuf);

/* ---- export -------------------------------------------------------------------- */

/* The field mask of src/packet/dp_mask.c as graph nodes (dp_onnx_mask.c):
 * x, uint8 [N, 1500] -> the masked vectors, int64 [N, 1500]. */
const char *dp_onnx_mask_stage(dp_onnx_graph *G, const char *x, uint32_t mask);

/* Writes model m as an ONNX file at path (atomically, dp_afile): input
 * "packets" uint8 [N, 1500] for packet models (scaled by 1/255 inside the
 * graph) or "flows" float [N, in_len] for flow models (the rows of
 * docs/flow-features.md), output "logprobs" float [N, nclasses]; class
 * names and the input description as metadata_props (docs/onnx.md).
 * A packet model's field mask is applied in the graph (dp_onnx_mask.c).
 * -1 + message (naming path) on a write error. */
int dp_onnx_export(dp_model *m, const char *path, char *errbuf);

#endif
