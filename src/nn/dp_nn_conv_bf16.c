/* dp_nn_conv_bf16: the training convolutions in bf16 through oneDNN's
 * direct convolution primitives.
 *
 * In bf16, im2col + GEMM (dp_nn_conv.c) reaches 57-60% of the vdpbf16ps
 * peak on the app CNN's conv2 and pays, per call, an im2col matrix K times
 * the input and its conversion to bf16; oneDNN's direct bf16 convolution
 * (jit_bf16:avx512_core_bf16) reaches about 88% on the same shapes, forward
 * and both backward passes, without either (docs/benchmarks.md, "bf16").
 *
 * Tensors stay float32 in our layouts (inp [B, C, L], weight [OC, C, K],
 * out [B, OC, LO]); reorders convert them into oneDNN's blocked bf16 layouts
 * and back on every call (the weights change every step). Math as the
 * float32 path's, with bf16 products and float32 sums; the bias gradient
 * stays with the caller (a float32 sum in the float32 path's order).
 *
 * The batch is split over our own threads (dp_nn_parallel_for), each slice
 * one single-threaded primitive: with oneDNN threading them itself,
 * libgomp's idle threads spun against ours in the layers between (as in
 * dp_nn_bf16.c). Each slice's weight gradient is a partial sum, added into
 * dweight in slice order, so the result depends on the thread count only.
 * Primitives are made per slice shape and kept in a small per-thread cache,
 * released when the thread exits. Any oneDNN failure returns -1 and the
 * caller runs the im2col path. */
#include "nn/dp_nn_conv_bf16.h"

#include "nn/dp_nn.h"

#ifdef DP_WITH_DNNL
#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CV_SLOTS 6

/* one shape: primitives, oneDNN-layout buffers, user-layout views, reorders */
typedef struct cvent {
    int used, B, C, L, OC, K, S, relu, has_bwd, dd_same; /* dd_same: both backward passes read ddst */
    unsigned long tick;
    dnnl_primitive_desc_t fpd;          /* the forward's, hint of the backward ones */
    dnnl_primitive_t fwd, bww, bwd;     /* forward, backward weights, backward data */
    dnnl_memory_t src, wf, bias, dst;   /* forward operands (bias: a user view) */
    dnnl_memory_t bsrc, ddst, ddst_d, wd, dsrc, dw; /* backward operands */
    dnnl_memory_t usrc, uw, udst, uddst, udsrc, udw; /* float32 views of the caller's tensors */
    dnnl_primitive_t r_src, r_wf, r_dst, r_bsrc, r_ddst, r_ddst_d, r_wd, r_dsrc, r_dw;
    float *dwtmp;                       /* [OC, C, K]: this call's weight gradient */
} cvent;

typedef struct cvtls {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    int failed;
    unsigned long tick;
    cvent slot[CV_SLOTS];
} cvtls;

static _Thread_local cvtls cv;
static pthread_key_t cv_key;
static pthread_once_t cv_once = PTHREAD_ONCE_INIT;

static void ent_free(cvent *e)
{
    dnnl_primitive_t *p[] = {&e->fwd, &e->bww, &e->bwd, &e->r_src, &e->r_wf, &e->r_dst, &e->r_bsrc,
                             &e->r_ddst, &e->r_ddst_d, &e->r_wd, &e->r_dsrc, &e->r_dw};
    dnnl_memory_t *m[] = {&e->src, &e->wf, &e->bias, &e->dst, &e->bsrc, &e->ddst, &e->ddst_d, &e->wd,
                          &e->dsrc, &e->dw, &e->usrc, &e->uw, &e->udst, &e->uddst, &e->udsrc, &e->udw};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++)
        if (*p[i])
            dnnl_primitive_destroy(*p[i]);
    for (size_t i = 0; i < sizeof m / sizeof *m; i++)
        if (*m[i])
            dnnl_memory_destroy(*m[i]);
    if (e->fpd)
        dnnl_primitive_desc_destroy(e->fpd);
    free(e->dwtmp);
    memset(e, 0, sizeof *e);
}

/* a memory of pd's md `what` (allocated), or a view of caller memory (md given, no buffer) */
static int mem_of(dnnl_memory_t *m, const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, what, 0);
    return !md || dnnl_memory_create(m, md, cv.eng, DNNL_MEMORY_ALLOCATE) ? -1 : 0;
}

static int view(dnnl_memory_t *m, int nd, const dnnl_dims_t d, dnnl_format_tag_t tag)
{
    dnnl_memory_desc_t md;
    return dnnl_memory_desc_init_by_tag(&md, nd, d, dnnl_f32, tag) ||
                   dnnl_memory_create(m, &md, cv.eng, DNNL_MEMORY_NONE)
               ? -1
               : 0;
}

/* a reorder from one memory's layout to another's */
static int reorder(dnnl_primitive_t *r, const_dnnl_memory_t from, const_dnnl_memory_t to)
{
    const dnnl_memory_desc_t *a, *b;
    dnnl_primitive_desc_t pd;
    if (dnnl_memory_get_memory_desc(from, &a) || dnnl_memory_get_memory_desc(to, &b) ||
        dnnl_reorder_primitive_desc_create(&pd, a, cv.eng, b, cv.eng, NULL))
        return -1;
    int rc = dnnl_primitive_create(r, pd) ? -1 : 0;
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* the forward primitive (bias and ReLU fused) and what it reads and writes */
static int fwd_make(cvent *e)
{
    int LO = dp_conv1d_out_len(e->L, e->K, e->S);
    dnnl_dims_t sd = {e->B, e->C, e->L}, wd = {e->OC, e->C, e->K}, dd = {e->B, e->OC, LO}, bd = {e->OC};
    dnnl_dims_t st = {e->S}, pad = {0};
    dnnl_memory_desc_t s, w, b, d;
    dnnl_convolution_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    int rc = -1;
    if (dnnl_memory_desc_init_by_tag(&s, 3, sd, dnnl_bf16, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&w, 3, wd, dnnl_bf16, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_x) ||
        dnnl_memory_desc_init_by_tag(&d, 3, dd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct, &s, &w, &b, &d,
                                           st, pad, pad) ||
        dnnl_primitive_attr_create(&attr))
        return -1;
    if (e->relu && (dnnl_post_ops_create(&po) || dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0, 0) ||
                    dnnl_primitive_attr_set_post_ops(attr, po)))
        goto out;
    if (dnnl_primitive_desc_create(&e->fpd, &desc, attr, cv.eng, NULL) || dnnl_primitive_create(&e->fwd, e->fpd) ||
        mem_of(&e->src, e->fpd, dnnl_query_src_md) || mem_of(&e->wf, e->fpd, dnnl_query_weights_md) ||
        mem_of(&e->dst, e->fpd, dnnl_query_dst_md) || view(&e->bias, 1, bd, dnnl_x) ||
        view(&e->usrc, 3, sd, dnnl_ncw) || view(&e->uw, 3, wd, dnnl_oiw) || view(&e->udst, 3, dd, dnnl_ncw) ||
        reorder(&e->r_src, e->usrc, e->src) || reorder(&e->r_wf, e->uw, e->wf) || reorder(&e->r_dst, e->dst, e->udst))
        goto out;
    rc = 0;
out:
    if (po)
        dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* the backward primitives (weights without bias, data) and their operands */
static int bwd_make(cvent *e)
{
    int LO = dp_conv1d_out_len(e->L, e->K, e->S);
    dnnl_dims_t sd = {e->B, e->C, e->L}, wd = {e->OC, e->C, e->K}, dd = {e->B, e->OC, LO}, st = {e->S}, pad = {0};
    dnnl_memory_desc_t s, w, dwd, d, ds;
    dnnl_convolution_desc_t bw, bd;
    dnnl_primitive_desc_t pw = NULL, pdd = NULL;
    int rc = -1;
    if (dnnl_memory_desc_init_by_tag(&s, 3, sd, dnnl_bf16, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&w, 3, wd, dnnl_bf16, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&dwd, 3, wd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&d, 3, dd, dnnl_bf16, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&ds, 3, sd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_convolution_backward_weights_desc_init(&bw, dnnl_convolution_direct, &s, &dwd, NULL, &d, st, pad, pad) ||
        dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &ds, &w, &d, st, pad, pad) ||
        dnnl_primitive_desc_create(&pw, &bw, NULL, cv.eng, e->fpd) ||
        dnnl_primitive_desc_create(&pdd, &bd, NULL, cv.eng, e->fpd))
        goto out;
    const dnnl_memory_desc_t *ddw = dnnl_primitive_desc_query_md(pw, dnnl_query_diff_dst_md, 0),
                             *ddd = dnnl_primitive_desc_query_md(pdd, dnnl_query_diff_dst_md, 0);
    e->dd_same = ddw && ddd && dnnl_memory_desc_equal(ddw, ddd);
    if (dnnl_primitive_create(&e->bww, pw) || dnnl_primitive_create(&e->bwd, pdd) ||
        mem_of(&e->bsrc, pw, dnnl_query_src_md) || mem_of(&e->ddst, pw, dnnl_query_diff_dst_md) ||
        mem_of(&e->dw, pw, dnnl_query_diff_weights_md) ||
        (!e->dd_same && (mem_of(&e->ddst_d, pdd, dnnl_query_diff_dst_md) ||
                         reorder(&e->r_ddst_d, e->ddst, e->ddst_d))) ||
        mem_of(&e->wd, pdd, dnnl_query_weights_md) || mem_of(&e->dsrc, pdd, dnnl_query_diff_src_md) ||
        view(&e->uddst, 3, dd, dnnl_ncw) || view(&e->udsrc, 3, sd, dnnl_ncw) || view(&e->udw, 3, wd, dnnl_oiw) ||
        reorder(&e->r_bsrc, e->usrc, e->bsrc) || reorder(&e->r_ddst, e->uddst, e->ddst) ||
        reorder(&e->r_wd, e->uw, e->wd) || reorder(&e->r_dsrc, e->dsrc, e->udsrc) || reorder(&e->r_dw, e->dw, e->udw))
        goto out;
    e->dwtmp = malloc((size_t)e->OC * e->C * e->K * sizeof(float));
    rc = e->dwtmp ? 0 : -1;
    e->has_bwd = rc == 0;
out:
    if (pw)
        dnnl_primitive_desc_destroy(pw);
    if (pdd)
        dnnl_primitive_desc_destroy(pdd);
    return rc;
}

/* at thread exit: the thread's primitives, buffers, stream and engine */
static void cv_release(void *unused)
{
    (void)unused;
    for (int i = 0; i < CV_SLOTS; i++)
        ent_free(&cv.slot[i]);
    if (cv.strm)
        dnnl_stream_destroy(cv.strm);
    if (cv.eng)
        dnnl_engine_destroy(cv.eng);
    memset(&cv, 0, sizeof cv);
}

static void cv_key_make(void) { pthread_key_create(&cv_key, cv_release); }

/* the calling thread's entry of a shape (made on first use), or NULL */
static cvent *ent_get(int B, int C, int L, int OC, int K, int S, int relu, int backward)
{
    if (!cv.eng && !cv.failed) {
        pthread_once(&cv_once, cv_key_make);
        pthread_setspecific(cv_key, &cv);
        omp_set_num_threads(1); /* one thread per slice; oneDNN sizes its work when a primitive is made */
        cv.failed = dnnl_engine_create(&cv.eng, dnnl_cpu, 0) != dnnl_success ||
                    dnnl_stream_create(&cv.strm, cv.eng, dnnl_stream_default_flags) != dnnl_success;
    }
    if (cv.failed)
        return NULL;
    cvent *lru = &cv.slot[0], *e = NULL;
    for (int i = 0; i < CV_SLOTS && !e; i++) {
        cvent *x = &cv.slot[i];
        if (x->used && x->B == B && x->C == C && x->L == L && x->OC == OC && x->K == K && x->S == S &&
            x->relu == relu)
            e = x;
        else if (!x->used || (lru->used && x->tick < lru->tick))
            lru = x;
    }
    if (!e) {
        e = lru;
        ent_free(e);
        *e = (cvent){.used = 1, .B = B, .C = C, .L = L, .OC = OC, .K = K, .S = S, .relu = relu};
        if (fwd_make(e) != 0) {
            ent_free(e);
            return NULL;
        }
    }
    if (backward && !e->has_bwd && bwd_make(e) != 0) {
        ent_free(e);
        return NULL;
    }
    e->tick = ++cv.tick;
    return e;
}

/* run primitives in order on the stream */
typedef struct step {
    dnnl_primitive_t p;
    int n;
    dnnl_exec_arg_t a[4];
} step;

static int run(step *s, int n)
{
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        rc = dnnl_primitive_execute(s[i].p, cv.strm, s[i].n, s[i].a) != dnnl_success;
    rc = rc || dnnl_stream_wait(cv.strm) != dnnl_success;
    return rc ? -1 : 0;
}

#define R(prim, from, to) {prim, 2, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}}

/* one call, split over the batch: slice i of n takes samples [b0, b1) */
typedef struct cvjob {
    float *out, *dinp, *dweight;
    const float *inp, *weight, *bias, *dout;
    int B, C, L, OC, K, S, relu, LO;
    int rc[64];
    const float *part[64]; /* backward: each slice's weight gradient */
} cvjob;

static void fwd_task(void *ctx, int i, int n)
{
    cvjob *j = ctx;
    int b0 = (int)((long)j->B * i / n), b1 = (int)((long)j->B * (i + 1) / n);
    cvent *e = ent_get(b1 - b0, j->C, j->L, j->OC, j->K, j->S, j->relu, 0);
    j->rc[i] = -1;
    if (!e)
        return;
    dnnl_memory_set_data_handle(e->usrc, (void *)(j->inp + (size_t)b0 * j->C * j->L));
    dnnl_memory_set_data_handle(e->uw, (void *)j->weight);
    dnnl_memory_set_data_handle(e->bias, (void *)j->bias);
    dnnl_memory_set_data_handle(e->udst, j->out + (size_t)b0 * j->OC * j->LO);
    step s[] = {R(e->r_src, e->usrc, e->src), R(e->r_wf, e->uw, e->wf),
                {e->fwd, 4, {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wf}, {DNNL_ARG_BIAS, e->bias},
                             {DNNL_ARG_DST, e->dst}}},
                R(e->r_dst, e->dst, e->udst)};
    j->rc[i] = run(s, 4);
}

static void bwd_task(void *ctx, int i, int n)
{
    cvjob *j = ctx;
    int b0 = (int)((long)j->B * i / n), b1 = (int)((long)j->B * (i + 1) / n);
    /* the backward primitives hang on a forward one; the ReLU is the caller's (dout is past it) */
    cvent *e = ent_get(b1 - b0, j->C, j->L, j->OC, j->K, j->S, 1, 1);
    j->rc[i] = -1;
    if (!e)
        return;
    dnnl_memory_set_data_handle(e->usrc, (void *)(j->inp + (size_t)b0 * j->C * j->L));
    dnnl_memory_set_data_handle(e->uw, (void *)j->weight);
    dnnl_memory_set_data_handle(e->uddst, (void *)(j->dout + (size_t)b0 * j->OC * j->LO));
    dnnl_memory_set_data_handle(e->udw, e->dwtmp);
    step s[8];
    int k = 0;
    s[k++] = (step)R(e->r_ddst, e->uddst, e->ddst);
    if (j->dweight) {
        s[k++] = (step)R(e->r_bsrc, e->usrc, e->bsrc);
        s[k++] = (step){e->bww, 3, {{DNNL_ARG_SRC, e->bsrc}, {DNNL_ARG_DIFF_DST, e->ddst},
                                    {DNNL_ARG_DIFF_WEIGHTS, e->dw}}};
        s[k++] = (step)R(e->r_dw, e->dw, e->udw);
    }
    if (j->dinp) {
        dnnl_memory_set_data_handle(e->udsrc, j->dinp + (size_t)b0 * j->C * j->L);
        if (!e->dd_same)
            s[k++] = (step)R(e->r_ddst_d, e->ddst, e->ddst_d);
        s[k++] = (step)R(e->r_wd, e->uw, e->wd);
        s[k++] = (step){e->bwd, 3, {{DNNL_ARG_DIFF_DST, e->dd_same ? e->ddst : e->ddst_d}, {DNNL_ARG_WEIGHTS, e->wd},
                                    {DNNL_ARG_DIFF_SRC, e->dsrc}}};
        s[k++] = (step)R(e->r_dsrc, e->dsrc, e->udsrc);
    }
    j->part[i] = e->dwtmp;
    j->rc[i] = run(s, k);
}

/* slices: the library's threads, at most one per sample and 64 */
static int slices(int B)
{
    int n = dp_nn_get_threads();
    n = n < B ? n : B;
    return n < 64 ? n : 64;
}

int dp_conv1d_bf16_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int C,
                           int L, int OC, int K, int S, int relu)
{
    if (!bias || B < 1)
        return -1;
    cvjob j = {.out = out, .inp = inp, .weight = weight, .bias = bias, .B = B, .C = C, .L = L, .OC = OC, .K = K,
               .S = S, .relu = relu, .LO = dp_conv1d_out_len(L, K, S)};
    int n = slices(B);
    dp_nn_parallel_for(n, fwd_task, &j);
    for (int i = 0; i < n; i++)
        if (j.rc[i])
            return -1;
    return 0;
}

int dp_conv1d_bf16_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                            int B, int C, int L, int OC, int K, int S)
{
    if (B < 1)
        return -1;
    cvjob j = {.dinp = dinp, .dweight = dweight, .inp = inp, .weight = weight, .dout = dout, .B = B, .C = C,
               .L = L, .OC = OC, .K = K, .S = S, .LO = dp_conv1d_out_len(L, K, S)};
    int n = slices(B);
    dp_nn_parallel_for(n, bwd_task, &j);
    for (int i = 0; i < n; i++)
        if (j.rc[i])
            return -1;
    /* the slices' partial weight gradients, in slice order */
    for (int i = 0; dweight && i < n; i++)
        for (size_t k = 0, nw = (size_t)OC * C * K; k < nw; k++)
            dweight[k] += j.part[i][k];
    return 0;
}

#else /* no oneDNN: the caller's im2col path */

int dp_conv1d_bf16_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int C,
                           int L, int OC, int K, int S, int relu)
{
    (void)out, (void)inp, (void)weight, (void)bias, (void)B, (void)C, (void)L, (void)OC, (void)K, (void)S, (void)relu;
    return -1;
}

int dp_conv1d_bf16_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                            int B, int C, int L, int OC, int K, int S)
{
    (void)dinp, (void)dweight, (void)dout, (void)inp, (void)weight, (void)B, (void)C, (void)L, (void)OC, (void)K,
        (void)S;
    return -1;
}
#endif
