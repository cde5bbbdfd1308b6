/* dp_model_infer: the CNN's inference fast path (eval mode, no dropout).
 *
 * Two ideas, both exact up to float summation order (tests/test_model.c
 * checks the results against dp_model_forward):
 *
 * 1. Data-parallel, channels-last. The batch is split over the threads by
 *    sample; each thread runs its samples through conv1, conv2 and the
 *    max-pool in position-major layout ([positions, channels],
 *    dp_conv1d_cl_relu_forward), on its own workspace that stays in cache,
 *    with single-threaded GEMMs (dp_gemm_seq: oneDNN's, AVX-512 where the
 *    CPU has it). No im2col, no fork-join per layer, no idle BLAS threads.
 *    The app CNN's conv2 (5 taps, stride 1) runs as Winograd F(4, 5), over
 *    as many of the thread's samples at once as fit its workspace (one long
 *    packet, or several short ones sharing the GEMMs).
 *
 * 2. Only each packet's own positions. A Deep Packet input is a packet
 *    zero-padded to 1500 bytes, and most real packets are far shorter
 *    (iscx-sample: median 202 bytes, mean 452). Past a vector's last
 *    non-zero byte, every layer's output is one known vector:
 *      conv1 over zeros          t1 = relu(b1)                     [c1]
 *      conv2 over t1 columns     t2 = relu(b2 + sum_{c,k} W2[:,c,k] t1[c])  [c2]
 *      max-pool of t2 columns    t2
 *    and fc1 over the flattened pooled map splits into a constant part and
 *    the part that depends on the packet:
 *      fc1(pool) = (b + W . t2 broadcast) + W . (pool - t2 broadcast)
 *    where (pool - t2) is zero at every position past the packet. So:
 *    samples are sorted by length (longest first); conv1 and conv2 compute
 *    only the positions whose window starts inside the packet (the rows
 *    after them hold t1 / t2); the max-pool writes (pool - t2)
 *    position-major, which is exactly the channels-last order, zero past
 *    the packet; fc1 runs as a few GEMMs over groups of similar length,
 *    each over the prefix its longest sample needs, against a
 *    position-major copy of W and the folded bias (cached per parameter
 *    generation). The cost follows the packets' lengths, not 1500 bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/dp_model_impl.h"
#include "nn/dp_nn.h"

struct dp_infer {
    int cap;        /* rows of the per-row arrays */
    float *t1, *t2; /* [c1], [c2]: conv1 / conv2 output over the zero tail */
    float *w1;      /* [F, L3*c2]: fc1 weight, position-major columns */
    float *b1;      /* [F]: fc1 bias + fc1 weight . t2 broadcast */
    float *fc1t;    /* [F, DP_MODEL_PREDICT_CHUNK]: fc1 outputs, transposed */
    float *wp1, *wp2; /* conv1 / conv2 weights packed by dp_conv1d_cl_pack */
    int bf16;       /* w1 and wp2 are declared constant to the bf16 GEMMs (dp_nn_bf16_const) */
    uint16_t *pool16; /* [pool16_rows, flat]: the pooled rows in bf16, fc1's operand in bf16 mode */
    int pool16_rows;
    int *ord, *n0, *n3; /* [cap] */
    /* per-thread workspaces of ws_floats each: xf [R0], a1 [R1, c1], a2 [R2, c2], scratch */
    float *ws;
    size_t ws_floats;
    int ws_threads, R0, R1, R2;
};

/* The bf16 GEMMs' copies of the big weights: made on the first bf16
 * inference of a parameter generation, dropped when they change. */
static void bf16_declare(struct dp_infer *f, size_t w1_floats, size_t wp2_floats)
{
    if (f->bf16 || dp_nn_get_precision() != DP_PREC_BF16)
        return;
    f->bf16 = 1;
    dp_nn_bf16_const(f->w1, w1_floats); /* on failure the GEMMs convert as they go */
    dp_nn_bf16_const(f->wp2, wp2_floats);
}

static void bf16_forget(struct dp_infer *f)
{
    if (!f->bf16)
        return;
    dp_nn_bf16_forget(f->w1);
    dp_nn_bf16_forget(f->wp2);
    f->bf16 = 0;
}

void dp_model_infer_free(dp_model *m)
{
    struct dp_infer *f = m->inf;
    if (!f)
        return;
    bf16_forget(f);
    free(f->t1);
    free(f->t2);
    free(f->w1);
    free(f->b1);
    free(f->fc1t);
    free(f->wp1);
    free(f->wp2);
    free(f->ord);
    free(f->n0);
    free(f->n3);
    free(f->pool16);
    free(f->ws);
    free(f);
    m->inf = NULL;
}

static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }

/* Positions of conv1 and conv2 whose windows start inside a packet of n0
 * bytes (the rest hold the tail values). */
static void active_positions(const dp_model *m, int n0, int *n1, int *n2)
{
    const dp_arch *a = &m->arch;
    *n1 = imin((n0 + a->s1 - 1) / a->s1, m->L1);
    *n2 = imin((*n1 + a->s2 - 1) / a->s2, m->L2);
}

/* The constant tail, the packed conv weights and the position-major fc1
 * copy for the current parameters. */
static int build_cache(dp_model *m, char *errbuf)
{
    const dp_arch *a = &m->arch;
    struct dp_infer *f = m->inf;
    int C1 = a->c1, C2 = a->c2, K2 = a->k2, L3 = m->L3, F = m->fout[0];
    if (!f) {
        f = m->inf = calloc(1, sizeof *f);
        if (!f)
            return dp_err(errbuf, "model: out of memory for inference");
        size_t K = (size_t)m->flat;
        f->t1 = malloc(sizeof(float) * (size_t)C1);
        f->t2 = malloc(sizeof(float) * (size_t)C2);
        f->w1 = malloc(sizeof(float) * F * K);
        f->b1 = malloc(sizeof(float) * F);
        f->fc1t = malloc(sizeof(float) * F * DP_MODEL_PREDICT_CHUNK);
        f->wp1 = malloc(sizeof(float) * dp_conv1d_cl_weight_floats(C1, 1, a->k1, a->s1));
        f->wp2 = malloc(sizeof(float) * dp_conv1d_cl_weight_floats(C2, C1, K2, a->s2));
        if (!f->t1 || !f->t2 || !f->w1 || !f->b1 || !f->fc1t || !f->wp1 || !f->wp2) {
            dp_model_infer_free(m);
            return dp_err(errbuf, "model: out of memory for inference (%zu MB)", F * K * sizeof(float) >> 20);
        }
        /* workspace rows: conv1's input for all L1 outputs, conv2's for all L2 */
        f->R0 = imax(dp_conv1d_cl_in_rows(m->L1, a->k1, a->s1, 1), a->in_len);
        f->R1 = imax(dp_conv1d_cl_in_rows(m->L2, K2, a->s2, C1), m->L1);
        f->R2 = m->L2;
        /* conv2's chunks: their rows' inputs fill at most R1 rows, so their
         * positions rounded up to multiples of 4 sum to at most R1 */
        size_t sc1 = dp_conv1d_cl_scratch_floats(m->L1, 1, C1, a->k1, a->s1);
        size_t sc2 = dp_conv1d_cl_scratch_floats(imax(m->L2, f->R1), C1, C2, K2, a->s2);
        f->ws_floats = (size_t)f->R0 + (size_t)f->R1 * C1 + (size_t)f->R2 * C2 + (sc1 > sc2 ? sc1 : sc2);
        f->ws_floats = (f->ws_floats + 15) & ~(size_t)15; /* 64-byte multiples */
    }
    bf16_forget(f);
    for (int c = 0; c < C1; c++)
        f->t1[c] = m->cb[0][c] > 0.0f ? m->cb[0][c] : 0.0f;
    for (int o = 0; o < C2; o++) {
        double s = m->cb[1][o];
        for (int c = 0; c < C1; c++)
            for (int k = 0; k < K2; k++)
                s += (double)m->cw[1][((size_t)o * C1 + c) * K2 + k] * f->t1[c];
        f->t2[o] = s > 0 ? (float)s : 0.0f;
    }
    size_t K = (size_t)m->flat;
    for (int j = 0; j < F; j++) {
        const float *w = m->fw[0] + (size_t)j * K;
        float *wp = f->w1 + (size_t)j * K;
        double s = m->fb[0][j];
        for (int c = 0; c < C2; c++) {
            const float *wc = w + (size_t)c * L3;
            double sc = 0;
            for (int p = 0; p < L3; p++) {
                wp[(size_t)p * C2 + c] = wc[p];
                sc += wc[p];
            }
            s += sc * f->t2[c];
        }
        f->b1[j] = (float)s;
    }
    dp_conv1d_cl_pack(f->wp1, m->cw[0], C1, 1, a->k1, a->s1);
    dp_conv1d_cl_pack(f->wp2, m->cw[1], C2, C1, K2, a->s2);
    m->inf_gen = m->gen;
    return 0;
}

static int reserve_rows(struct dp_infer *f, int B, int threads, size_t flat, char *errbuf)
{
    if (threads > f->ws_threads) {
        float *w = aligned_alloc(64, sizeof(float) * f->ws_floats * (size_t)threads);
        if (!w)
            return dp_err(errbuf, "model: out of memory for inference workspaces");
        free(f->ws);
        f->ws = w;
        f->ws_threads = threads;
    }
    if (dp_nn_get_precision() == DP_PREC_BF16 && B > f->pool16_rows) {
        /* without it (out of memory) fc1's GEMMs convert the float rows themselves */
        free(f->pool16);
        f->pool16 = malloc(sizeof(uint16_t) * (size_t)B * flat);
        f->pool16_rows = f->pool16 ? B : 0;
    }
    if (B <= f->cap)
        return 0;
    int **arr[] = {&f->ord, &f->n0, &f->n3};
    for (size_t i = 0; i < sizeof arr / sizeof arr[0]; i++) {
        int *p = realloc(*arr[i], sizeof(int) * (size_t)B);
        if (!p)
            return dp_err(errbuf, "model: out of memory for inference");
        *arr[i] = p;
    }
    f->cap = B;
    return 0;
}

/* Bytes up to and including the last non-zero one (0 for an all-zero row). */
static int used_len(const uint8_t *x, int n)
{
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, x + n - 8, 8);
        if (w)
            break;
        n -= 8;
    }
    while (n > 0 && !x[n - 1])
        n--;
    return n;
}

static void fill_rows(float *dst, const float *row, int from, int to, int C)
{
    for (int t = from; t < to; t++)
        memcpy(dst + (size_t)t * C, row, sizeof(float) * (size_t)C);
}

typedef struct convjob {
    dp_model *m;
    const uint8_t *x; /* [B, L] in input order */
    int B, n3max;
    uint16_t *pool16; /* bf16 mode: the rows in bf16 too (else NULL) */
} convjob;

/* Row r's bytes -> conv1 -> a1: its conv1 outputs over the packet's
 * windows (input rows past the packet are zeros), then t1 up to the r1 rows
 * conv2 reads (zeros past L1: they feed only positions past L2). */
static void conv1_row(const convjob *j, int r, float *xf, float *a1, float *scratch, int n1, int r1)
{
    dp_model *m = j->m;
    const dp_arch *a = &m->arch;
    struct dp_infer *f = m->inf;
    int C1 = a->c1, L1 = m->L1, n0 = f->n0[r];
    const uint8_t *xb = j->x + (size_t)f->ord[r] * a->in_len;
    int r0 = dp_conv1d_cl_in_rows(n1, a->k1, a->s1, 1);
    for (int t = 0; t < n0; t++)
        xf[t] = (float)xb[t] * (1.0f / 255.0f);
    if (r0 > n0)
        memset(xf + n0, 0, sizeof(float) * (size_t)(r0 - n0));
    dp_conv1d_cl_relu_forward(a1, scratch, xf, f->wp1, m->cb[0], n1, 1, C1, a->k1, a->s1);
    fill_rows(a1, f->t1, n1, imin(r1, L1), C1);
    if (r1 > L1)
        memset(a1 + (size_t)L1 * C1, 0, sizeof(float) * (size_t)(r1 - L1) * C1);
}

/* Row r's conv2 outputs a2 (n2 rows) -> the tail t2 after them, the
 * max-pool minus the tail (ReLU already applied) into m->pool row r, zero
 * past the packet up to n3max positions, and its bf16 copy. */
static void pool_row(const convjob *j, int r, float *a2, int n2)
{
    dp_model *m = j->m;
    struct dp_infer *f = m->inf;
    int C2 = m->arch.c2, P = m->arch.pool, n3 = f->n3[r];
    size_t K = (size_t)m->flat;
    fill_rows(a2, f->t2, n2, P * n3, C2);
    float *pm = m->pool + (size_t)r * K;
    dp_maxpool1d_cl_forward(pm, a2, f->t2, n3, C2, P);
    memset(pm + (size_t)n3 * C2, 0, sizeof(float) * (size_t)(j->n3max - n3) * C2);
    if (j->pool16) /* once here, in parallel, rather than by every fc1 slice */
        dp_nn_to_bf16(j->pool16 + (size_t)r * K, pm, (size_t)j->n3max * C2);
}

/* Rows r = i, i + n, ... (sorted order): bytes -> conv1 -> conv2 -> pool
 * minus the tail, into m->pool row r. The rows go in chunks whose conv2
 * inputs fit a1 (R1 rows) and outputs a2 (R2 rows), and conv2 runs over a
 * whole chunk at once (dp_conv1d_cl_relu_forward_many): a long packet is a
 * chunk of its own, short ones share their GEMMs. */
static void conv_task(void *ctx, int i, int n)
{
    const convjob *j = ctx;
    dp_model *m = j->m;
    const dp_arch *a = &m->arch;
    struct dp_infer *f = m->inf;
    int C1 = a->c1, C2 = a->c2;
    float *xf = f->ws + f->ws_floats * (size_t)i, *a1 = xf + f->R0, *a2 = a1 + (size_t)f->R1 * C1,
          *scratch = a2 + (size_t)f->R2 * C2;
    for (int r = i; r < j->B;) {
        /* 1. conv1 of each row of the chunk, into its own rows of a1 */
        float *outs[DP_CONV_CL_MANY];
        const float *ins[DP_CONV_CL_MANY];
        int n2s[DP_CONV_CL_MANY], rows[DP_CONV_CL_MANY], cnt = 0, u1 = 0, u2 = 0;
        for (; r < j->B && cnt < DP_CONV_CL_MANY; r += n) {
            int n1, n2;
            active_positions(m, f->n0[r], &n1, &n2);
            int r1 = dp_conv1d_cl_in_rows(n2, a->k2, a->s2, C1), w1 = imax(r1, n1);
            int w2 = imax(n2, a->pool * f->n3[r]);
            if (cnt && (u1 + w1 > f->R1 || u2 + w2 > f->R2))
                break;
            conv1_row(j, r, xf, a1 + (size_t)u1 * C1, scratch, n1, r1);
            ins[cnt] = a1 + (size_t)u1 * C1, outs[cnt] = a2 + (size_t)u2 * C2, n2s[cnt] = n2, rows[cnt++] = r;
            u1 += w1, u2 += w2;
        }
        /* 2. conv2 over the chunk; 3. each row's pool */
        dp_conv1d_cl_relu_forward_many(outs, scratch, ins, n2s, cnt, f->wp2, m->cb[1], C1, C2, a->k2, a->s2);
        for (int c = 0; c < cnt; c++)
            pool_row(j, rows[c], outs[c], n2s[c]);
    }
}

/* Splits rows 0..B-1 (n3 non-increasing) into groups for the fc1 GEMMs,
 * minimising sum over groups of n3[first] * (rows + ROW_COST): a group
 * streams its prefix of the weight once (worth about ROW_COST rows of
 * arithmetic) and computes every row over that prefix. Groups start at
 * multiples of g: the bf16 GEMMs vectorise over the rows in blocks of 16
 * and run a tail of fewer rows at a fraction of their rate, so in bf16 a
 * group's rows past a shorter packet's end (zeros) cost less than the
 * tail. start[g] = first row of group g; returns the group count. */
#define ROW_COST 16
static int plan_groups(const int *n3, int B, int g, int *start)
{
    double best[DP_MODEL_PREDICT_CHUNK + 1];
    int from[DP_MODEL_PREDICT_CHUNK + 1];
    best[0] = 0;
    for (int j = 1; j <= B; j++) { /* rows 0..j-1 done; last group i..j-1 */
        best[j] = INFINITY;
        if (j % g && j < B)
            continue;
        for (int i = 0; i < j; i += g) {
            double c = best[i] + (double)n3[i] * (j - i + ROW_COST);
            if (c < best[j])
                best[j] = c, from[j] = i;
        }
    }
    int n = 0, tmp[DP_MODEL_PREDICT_CHUNK];
    for (int j = B; j > 0; j = from[j])
        tmp[n++] = from[j];
    for (int k = 0; k < n; k++)
        start[k] = tmp[n - 1 - k];
    return n;
}

typedef struct fc1job {
    dp_model *m;
    int B, ng, start[DP_MODEL_PREDICT_CHUNK + 1]; /* row groups (plan_groups) */
    const uint16_t *pool16;                       /* as convjob's */
} fc1job;

/* fc1 outputs [F * i / n, F * (i + 1) / n) of every row, transposed into
 * f->fc1t [F, B]: the folded bias plus W . (pool - tail), per group over
 * the prefix it needs. Computed as W [f, k] @ pool^T [k, rows] rather than
 * pool @ W^T: the same products, but oneDNN then streams W as the GEMM's
 * A operand (7x faster at 16 rows). */
static void fc1_task(void *ctx, int i, int n)
{
    const fc1job *j = ctx;
    dp_model *m = j->m;
    struct dp_infer *f = m->inf;
    int F = m->fout[0], C2 = m->arch.c2, B = j->B, f0 = F * i / n, f1 = F * (i + 1) / n;
    size_t K = (size_t)m->flat;
    for (int o = f0; o < f1; o++)
        for (int r = 0; r < B; r++)
            f->fc1t[(size_t)o * B + r] = f->b1[o];
    for (int g = 0; g < j->ng; g++) {
        int r0 = j->start[g], rows = j->start[g + 1] - r0, k = f->n3[r0] * C2;
        if (k <= 0)
            continue;
        const float *w = f->w1 + (size_t)f0 * K, *x = m->pool + (size_t)r0 * K;
        float *y = f->fc1t + (size_t)f0 * B + r0;
        if (!j->pool16 ||
            dp_gemm_seq_bf16_pre(1, f1 - f0, rows, k, w, NULL, (int)K, x, j->pool16 + (size_t)r0 * K, (int)K, 1.0f,
                                 y, B) != 0)
            dp_gemm_seq(1, f1 - f0, rows, k, w, (int)K, x, (int)K, 1.0f, y, B);
    }
}

int dp_model_infer_cnn(dp_model *m, const uint8_t *x, int B, float *logprobs, char *errbuf)
{
    const dp_arch *a = &m->arch;
    if (B < 1 || B > DP_MODEL_PREDICT_CHUNK)
        return dp_err(errbuf, "model: inference batch %d", B);
    if (dp_model_reserve(m, B, errbuf) != 0)
        return -1;
    if ((!m->inf || m->inf_gen != m->gen) && build_cache(m, errbuf) != 0)
        return -1;
    struct dp_infer *f = m->inf;
    bf16_declare(f, (size_t)m->fout[0] * m->flat, dp_conv1d_cl_weight_floats(a->c2, a->c1, a->k2, a->s2));
    int nt = imin(dp_nn_get_threads(), B);
    if (reserve_rows(f, B, nt, (size_t)m->flat, errbuf) != 0)
        return -1;
    int L = a->in_len, P = a->pool, L3 = m->L3;

    /* 1. lengths, longest first (insertion sort, stable) */
    int len[DP_MODEL_PREDICT_CHUNK];
    for (int b = 0; b < B; b++) {
        len[b] = used_len(x + (size_t)b * L, L);
        int r = b;
        for (; r > 0 && len[f->ord[r - 1]] < len[b]; r--)
            f->ord[r] = f->ord[r - 1];
        f->ord[r] = b;
    }
    for (int r = 0; r < B; r++) {
        int n0 = len[f->ord[r]];
        int n1, n2;
        active_positions(m, n0, &n1, &n2);
        f->n0[r] = n0;
        f->n3[r] = imin((n2 + P - 1) / P, L3);
    }

    /* 2. convolutions and pool, data-parallel by sample; 3. fc1 split over
     *    its outputs (OpenBLAS held to one thread meanwhile: its idle
     *    threads would spin against ours) */
    uint16_t *p16 = dp_nn_get_precision() == DP_PREC_BF16 && f->pool16_rows >= B ? f->pool16 : NULL;
    convjob cj = {.m = m, .x = x, .B = B, .n3max = f->n3[0], .pool16 = p16};
    dp_gemm_seq_begin();
    dp_nn_parallel_for(nt, conv_task, &cj);
    fc1job fj = {.m = m, .B = B, .pool16 = p16};
    fj.ng = plan_groups(f->n3, B, p16 ? 16 : 1, fj.start);
    fj.start[fj.ng] = B;
    dp_nn_parallel_for(imin(dp_nn_get_threads(), m->fout[0]), fc1_task, &fj);
    /* 4. the rest of the stack, then log-softmax back in input order */
    int F = m->fout[0];
    for (int r = 0; r < B; r++)
        for (int o = 0; o < F; o++) {
            float v = f->fc1t[(size_t)o * B + r];
            m->act[0][(size_t)r * F + o] = v > 0.0f ? v : 0.0f;
        }
    dp_model_fc_forward(m, m->act[0], B, 1, m->nfc - 1, 0, NULL);
    dp_gemm_seq_end();
    int V = a->nclasses;
    const float *lg = m->pre[m->nfc - 1];
    for (int r = 0; r < B; r++)
        dp_log_softmax(logprobs + (size_t)f->ord[r] * V, lg + (size_t)r * V, 1, V);
    return 0;
}
