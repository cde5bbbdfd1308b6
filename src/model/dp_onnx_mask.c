/* dp_onnx_mask: the field mask of src/packet/dp_mask.c as ONNX nodes, so an
 * exported packet model masks its input as deeppacket does (docs/onnx.md).
 *
 * Every row is walked at once on int64 [N, 1] tensors: a byte at a per-row
 * offset is a GatherElements (offset clamped into the vector; the walk's
 * own bounds checks decide whether it counts), a branch is a Where. The
 * loops of dp_mask.c are unrolled to their bounds: 64 IPv6 extension /
 * AH headers (walk_ext), 40 TCP option steps (a step takes at least one of
 * the at most 40 option bytes). The fields to zero build a boolean [N, 1500]
 * from an index row 0..1499; the IPv6 flow label's first nibble (byte 1's
 * low half) is subtracted. Node for node, the same decisions as
 * dp_vec_layout_get and dp_mask_apply; tests/onnx/run.sh compares them. */
#include <string.h>

#include "model/dp_onnx.h"
#include "packet/dp_mask.h"

#define MAX_HOPS 64     /* walk_ext's bound */
#define MAX_OPT_STEPS 40 /* TCP options: at most 40 bytes */

typedef struct mb {
    dp_onnx_graph *G;
    const char *X;   /* int64 [N, 1500] */
    const char *idx; /* int64 [1, 1500]: 0..1499 */
    const char *Z;   /* bool [N, 1500]: bytes to zero so far, or NULL */
    int nk;
    int64_t kv[64];
    const char *kn[64];
} mb;

static const char *K(mb *b, int64_t v)
{
    for (int i = 0; i < b->nk; i++)
        if (b->kv[i] == v)
            return b->kn[i];
    const char *n = dp_onnx_const_i64(b->G, v);
    if (b->nk < 64)
        b->kv[b->nk] = v, b->kn[b->nk++] = n;
    return n;
}

static const char *O2(mb *b, const char *op, const char *x, const char *y)
{
    const char *in[2] = {x, y};
    return dp_onnx_op(b->G, op, in, 2, NULL);
}
#define ADD(x, y) O2(b, "Add", x, y)
#define MUL(x, y) O2(b, "Mul", x, y)
#define AND(x, y) O2(b, "And", x, y)
#define OR(x, y) O2(b, "Or", x, y)
#define EQ(x, v) O2(b, "Equal", x, K(b, v))

static const char *NOT(mb *b, const char *x)
{
    return dp_onnx_op(b->G, "Not", &x, 1, NULL);
}

static const char *WHERE(mb *b, const char *c, const char *x, const char *y)
{
    const char *in[3] = {c, x, y};
    return dp_onnx_op(b->G, "Where", in, 3, NULL);
}

/* Byte at the constant offset p: X[:, p:p+1]. */
static const char *byte_c(mb *b, int64_t p)
{
    dp_onnx_graph *G = b->G;
    int64_t one = 1, s = p, e = p + 1, ax = 1;
    const char *in[4] = {b->X, dp_onnx_tmp(G), dp_onnx_tmp(G), dp_onnx_tmp(G)};
    dp_onnx_init_i64(G, in[1], &one, 1, &s);
    dp_onnx_init_i64(G, in[2], &one, 1, &e);
    dp_onnx_init_i64(G, in[3], &one, 1, &ax);
    return dp_onnx_op(G, "Slice", in, 4, NULL);
}

/* Byte at the per-row offset o [N, 1], clamped into 0..1499. */
static const char *byte_at(mb *b, const char *o)
{
    const char *i = O2(b, "Min", O2(b, "Max", o, K(b, 0)), K(b, DP_VEC_LEN - 1));
    const char *in[2] = {b->X, i};
    dp_pb at = {0};
    dp_onnx_attr_int(&at, "axis", 1);
    return dp_onnx_op(b->G, "GatherElements", in, 2, &at);
}

static const char *rd16_at(mb *b, const char *o)
{
    return ADD(MUL(byte_at(b, o), K(b, 256)), byte_at(b, ADD(o, K(b, 1))));
}

/* Marks bytes [start, start + n) of the rows where cond holds (C's zero(),
 * whose clamping the comparisons do). start: a tensor [N, 1] or scalar. */
static void zero(mb *b, const char *start, int64_t n, const char *cond)
{
    const char *in = AND(O2(b, "GreaterOrEqual", b->idx, start), O2(b, "Less", b->idx, ADD(start, K(b, n))));
    in = AND(in, cond);
    b->Z = b->Z ? OR(b->Z, in) : in;
}

typedef struct layout {
    const char *is4, *is6, *tcp, *udp, *l4, *hlen;
} layout;

/* walk_ext, unrolled: off, nh and whether the walk ended on a transport
 * protocol (w == 0) for the rows where walking starts true. */
static const char *walk_ext(mb *b, const char *is6, const char **off, const char **nh, const char *walking)
{
    const char *ok = O2(b, "Less", *off, K(b, 0)); /* all false */
    for (int hop = 0; hop < MAX_HOPS; hop++) {
        const char *h = *nh, *o = *off;
        const char *v6ext = AND(is6, OR(OR(EQ(h, 0), EQ(h, 43)), OR(EQ(h, 60), EQ(h, 44))));
        const char *isext = OR(v6ext, EQ(h, 51));
        ok = OR(ok, AND(walking, NOT(b, isext)));
        walking = AND(walking, isext);
        walking = AND(walking, O2(b, "LessOrEqual", ADD(o, K(b, 8)), K(b, DP_VEC_LEN)));
        const char *is44 = EQ(h, 44);
        const char *nonfirst = AND(is44, O2(b, "GreaterOrEqual", rd16_at(b, ADD(o, K(b, 2))), K(b, 8)));
        walking = AND(walking, NOT(b, nonfirst));
        const char *b1 = byte_at(b, ADD(o, K(b, 1)));
        const char *len = WHERE(b, is44, K(b, 8),
                                WHERE(b, EQ(h, 51), MUL(ADD(b1, K(b, 2)), K(b, 4)), MUL(ADD(b1, K(b, 1)), K(b, 8))));
        *nh = WHERE(b, walking, byte_at(b, o), h);
        *off = WHERE(b, walking, ADD(o, len), o);
    }
    return ok;
}

/* dp_vec_layout_get, as far as the masks need it. */
static void vec_layout(mb *b, layout *L)
{
    const char *b0 = byte_c(b, 0);
    const char *ver = O2(b, "Div", b0, K(b, 16));
    L->is4 = EQ(ver, 4), L->is6 = EQ(ver, 6);
    const char *ihl = MUL(O2(b, "Mod", b0, K(b, 16)), K(b, 4));
    const char *off = WHERE(b, L->is4, O2(b, "Max", ihl, K(b, 20)), K(b, 40));
    const char *nh = WHERE(b, L->is4, byte_c(b, 9), byte_c(b, 6));
    const char *fo = O2(b, "Mod", ADD(MUL(byte_c(b, 6), K(b, 256)), byte_c(b, 7)), K(b, 8192));
    const char *frag = AND(L->is4, O2(b, "Greater", fo, K(b, 0)));
    const char *walking = AND(OR(L->is4, L->is6), NOT(b, frag));
    const char *ok = walk_ext(b, L->is6, &off, &nh, walking);
    L->tcp = AND(AND(ok, EQ(nh, 6)), O2(b, "LessOrEqual", ADD(off, K(b, 20)), K(b, DP_VEC_LEN)));
    L->udp = AND(AND(ok, EQ(nh, 17)), O2(b, "LessOrEqual", ADD(off, K(b, 8)), K(b, DP_VEC_LEN)));
    L->l4 = off;
    const char *hl = MUL(O2(b, "Div", byte_at(b, ADD(off, K(b, 12))), K(b, 16)), K(b, 4));
    L->hlen = O2(b, "Max", hl, K(b, 20));
}

/* mask_tcpts, unrolled: the timestamp option's 8 value bytes. */
static void mask_tcpts(mb *b, const layout *L)
{
    const char *o = ADD(L->l4, K(b, 20));
    const char *end = O2(b, "Min", ADD(L->l4, L->hlen), K(b, DP_VEC_LEN));
    const char *walking = L->tcp;
    for (int step = 0; step < MAX_OPT_STEPS; step++) {
        walking = AND(walking, O2(b, "Less", o, end));
        const char *kind = byte_at(b, o);
        walking = AND(walking, NOT(b, EQ(kind, 0)));
        const char *is1 = EQ(kind, 1);
        const char *len = byte_at(b, ADD(o, K(b, 1)));
        const char *bad = OR(O2(b, "GreaterOrEqual", ADD(o, K(b, 1)), end),
                             OR(O2(b, "Less", len, K(b, 2)), O2(b, "Greater", ADD(o, len), end)));
        walking = AND(walking, NOT(b, AND(NOT(b, is1), bad)));
        const char *ts = AND(AND(walking, NOT(b, is1)), AND(EQ(kind, 8), EQ(len, 10)));
        zero(b, ADD(o, K(b, 2)), 8, ts);
        o = WHERE(b, walking, WHERE(b, is1, ADD(o, K(b, 1)), ADD(o, len)), o);
    }
}

/* mask_ip and mask_l4: the fields of `mask` into b->Z. */
static void mask_fields(mb *b, uint32_t mask, const layout *L)
{
    const char *l4 = OR(L->tcp, L->udp), *o = L->l4;
    if (mask & DP_MASK_IPID) {
        zero(b, K(b, 4), 2, L->is4);
        zero(b, K(b, 2), 2, L->is6);
    }
    if (mask & DP_MASK_TTL) {
        zero(b, K(b, 8), 1, L->is4);
        zero(b, K(b, 7), 1, L->is6);
    }
    if (mask & DP_MASK_CHECKSUM) {
        zero(b, K(b, 10), 2, L->is4);
        zero(b, ADD(o, K(b, 6)), 2, L->udp);
        zero(b, ADD(o, K(b, 16)), 2, L->tcp);
    }
    if (mask & DP_MASK_PORTS)
        zero(b, o, 4, l4);
    if (mask & DP_MASK_SEQ)
        zero(b, ADD(o, K(b, 4)), 8, L->tcp);
    if (mask & DP_MASK_WINDOW)
        zero(b, ADD(o, K(b, 14)), 2, L->tcp);
    if (mask & DP_MASK_TCPTS)
        mask_tcpts(b, L);
}

const char *dp_onnx_mask_stage(dp_onnx_graph *G, const char *x, uint32_t mask)
{
    mb b0 = {.G = G}, *b = &b0;
    dp_pb at = {0};
    dp_onnx_attr_int(&at, "to", DP_ONNX_INT64);
    b->X = dp_onnx_op(G, "Cast", &x, 1, &at);
    int64_t dims[2] = {1, DP_VEC_LEN}, iv[DP_VEC_LEN];
    for (int i = 0; i < DP_VEC_LEN; i++)
        iv[i] = i;
    b->idx = dp_onnx_tmp(G);
    dp_onnx_init_i64(G, b->idx, dims, 2, iv);
    layout L;
    vec_layout(b, &L);
    mask_fields(b, mask, &L);
    const char *y = b->Z ? WHERE(b, b->Z, K(b, 0), b->X) : b->X;
    if (mask & DP_MASK_IPID) { /* IPv6: byte 1 &= 0xF0 (the flow label's first nibble) */
        const char *low = O2(b, "Mod", byte_c(b, 1), K(b, 16));
        y = O2(b, "Sub", y, WHERE(b, AND(EQ(b->idx, 1), L.is6), low, K(b, 0)));
    }
    return y;
}
