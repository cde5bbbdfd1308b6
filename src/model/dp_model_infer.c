/* dp_model_infer: the CNN's inference fast path (eval mode, no dropout).
 *
 * A Deep Packet input is a packet zero-padded to 1500 bytes, and most real
 * packets are far shorter (iscx-sample: median 202 bytes, mean 452). Past a
 * vector's last non-zero byte, every layer's output is one known vector:
 *   conv1 over zeros          t1 = relu(b1)                     [c1]
 *   conv2 over t1 columns     t2 = relu(b2 + sum_{c,k} W2[:,c,k] t1[c])  [c2]
 *   max-pool of t2 columns    t2
 * and fc1 over the flattened [c2, L3] pooled map splits into a constant part
 * and the part that depends on the packet:
 *   fc1(pool) = (b + W . t2 broadcast) + W . (pool - t2 broadcast)
 * where (pool - t2) is zero at every position past the packet. So per batch:
 *   1. n0[b] = length of vector b up to its last non-zero byte; samples are
 *      sorted by it (longest first) and processed in that order;
 *   2. conv1 and conv2 compute only the positions whose window starts inside
 *      the packet (dp_conv1d_relu_forward_tail), the rest being t1 / t2;
 *      a 5-tap, stride-1 conv2 (the app CNN's) runs as Winograd F(4, 5);
 *   3. max-pool writes (pool - t2) position-major ([L3, c2] per sample, so a
 *      packet's positions are a prefix), zero past the packet;
 *   4. fc1 runs as a few GEMMs over groups of similar length, each over the
 *      prefix its longest sample needs, against a position-major copy of W
 *      and the folded bias (cached per parameter generation);
 *   5. the small fc layers and log-softmax as usual, results unsorted.
 * The cost thus follows the packets' lengths instead of 1500 bytes, with the
 * same results as dp_model_forward up to float summation order
 * (tests/test_model.c checks it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "model/dp_model_impl.h"
#include "nn/dp_nn.h"

struct dp_infer {
    int cap;        /* rows of the per-row arrays */
    float *t1, *t2; /* [c1], [c2]: conv1 / conv2 output over the zero tail */
    float *w1;      /* [F, L3*c2]: fc1 weight, position-major columns */
    float *b1;      /* [F]: fc1 bias + fc1 weight . t2 broadcast */
    float *u2;      /* [8, c2, c1]: conv2's Winograd weights, or NULL */
    int *ord, *n0, *n1, *n2, *n3; /* [cap] */
};

void dp_model_infer_free(dp_model *m)
{
    struct dp_infer *f = m->inf;
    if (!f)
        return;
    free(f->t1);
    free(f->t2);
    free(f->w1);
    free(f->b1);
    free(f->u2);
    free(f->ord);
    free(f->n0);
    free(f->n1);
    free(f->n2);
    free(f->n3);
    free(f);
    m->inf = NULL;
}

/* The constant tail and the position-major fc1 copy for the current
 * parameters. */
static int build_cache(dp_model *m, char *errbuf)
{
    const dp_arch *a = &m->arch;
    struct dp_infer *f = m->inf;
    if (!f) {
        f = m->inf = calloc(1, sizeof *f);
        if (!f)
            return dp_err(errbuf, "model: out of memory for inference");
        size_t F = (size_t)m->fout[0], K = (size_t)m->flat;
        f->t1 = malloc(sizeof(float) * (size_t)a->c1);
        f->t2 = malloc(sizeof(float) * (size_t)a->c2);
        f->w1 = malloc(sizeof(float) * F * K);
        f->b1 = malloc(sizeof(float) * F);
        int wino = dp_conv1d_wino_ok(a->k2, a->s2);
        if (wino)
            f->u2 = malloc(sizeof(float) * dp_conv1d_wino_floats(a->c2, a->c1));
        if (!f->t1 || !f->t2 || !f->w1 || !f->b1 || (wino && !f->u2)) {
            dp_model_infer_free(m);
            return dp_err(errbuf, "model: out of memory for inference (%zu MB)", F * K * sizeof(float) >> 20);
        }
    }
    int C1 = a->c1, C2 = a->c2, K2 = a->k2, L3 = m->L3, F = m->fout[0];
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
    if (f->u2)
        dp_conv1d_wino_weights(f->u2, m->cw[1], C2, C1, K2);
    m->inf_gen = m->gen;
    return 0;
}

static int reserve_rows(struct dp_infer *f, int B, char *errbuf)
{
    if (B <= f->cap)
        return 0;
    int **arr[] = {&f->ord, &f->n0, &f->n1, &f->n2, &f->n3};
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

/* Splits rows 0..B-1 (n3 non-increasing) into groups for the fc1 GEMMs,
 * minimising sum over groups of n3[first] * (rows + ROW_COST): a group
 * streams its prefix of the weight once (worth about ROW_COST rows of
 * arithmetic) and computes every row over that prefix. start[g] = first row
 * of group g; returns the group count. */
#define ROW_COST 16
static int plan_groups(const int *n3, int B, int *start)
{
    double best[DP_MODEL_PREDICT_CHUNK + 1];
    int from[DP_MODEL_PREDICT_CHUNK + 1];
    best[0] = 0;
    for (int j = 1; j <= B; j++) { /* rows 0..j-1 done; last group i..j-1 */
        best[j] = INFINITY;
        for (int i = 0; i < j; i++) {
            double c = best[i] + (double)n3[i] * (j - i + ROW_COST);
            if (c < best[j])
                best[j] = c, from[j] = i;
        }
    }
    int n = 0, tmp[DP_MODEL_PREDICT_CHUNK];
    for (int j = B; j > 0; j = from[j])
        tmp[n++] = from[j];
    for (int g = 0; g < n; g++)
        start[g] = tmp[n - 1 - g];
    return n;
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
    if (reserve_rows(f, B, errbuf) != 0)
        return -1;
    int L = a->in_len, C1 = a->c1, C2 = a->c2, P = a->pool, L1 = m->L1, L2 = m->L2, L3 = m->L3;
    size_t K = (size_t)m->flat;

    /* 1. lengths, longest first (insertion sort, stable), inputs in that order */
    int len[DP_MODEL_PREDICT_CHUNK];
    for (int b = 0; b < B; b++) {
        len[b] = used_len(x + (size_t)b * L, L);
        int r = b;
        for (; r > 0 && len[f->ord[r - 1]] < len[b]; r--)
            f->ord[r] = f->ord[r - 1];
        f->ord[r] = b;
    }
    const float s255 = 1.0f / 255.0f;
    for (int r = 0; r < B; r++) {
        const uint8_t *xb = x + (size_t)f->ord[r] * L;
        float *xr = m->x + (size_t)r * L;
        int n = len[f->ord[r]];
        f->n0[r] = n;
        for (int i = 0; i < n; i++)
            xr[i] = (float)xb[i] * s255;
        memset(xr + n, 0, sizeof(float) * (size_t)(L - n));
    }

    /* 2. the convolutions over the packets' own positions */
    /*    (conv1's halo covers conv2's windows, in whole Winograd tiles) */
    dp_conv1d_relu_forward_tail(m->a1, f->n1, m->scratch, m->x, f->n0, m->cw[0], NULL, m->cb[0], f->t1, a->k2 + 3, B,
                                1, L, C1, a->k1, a->s1);
    dp_conv1d_relu_forward_tail(m->a2, f->n2, m->scratch, m->a1, f->n1, m->cw[1], f->u2, m->cb[1], f->t2, P, B, C1,
                                L1, C2, a->k2, a->s2);

    /* 3. max-pool minus the tail, position-major, zero past the packet up
     *    to the longest packet (row 0) */
    int n3max = 0;
    for (int r = 0; r < B; r++) {
        int n3 = (f->n2[r] + P - 1) / P;
        f->n3[r] = n3 < L3 ? n3 : L3;
        if (f->n3[r] > n3max)
            n3max = f->n3[r];
    }
    for (int r = 0; r < B; r++) {
        float *pm = m->pool + (size_t)r * K;
        const float *a2 = m->a2 + (size_t)r * C2 * L2;
        int n3 = f->n3[r];
        for (int c = 0; c < C2; c++) {
            const float *row = a2 + (size_t)c * L2;
            float t = f->t2[c];
            for (int p = 0; p < n3; p++) {
                float v = row[p * P];
                for (int k = 1; k < P; k++)
                    v = row[p * P + k] > v ? row[p * P + k] : v;
                pm[(size_t)p * C2 + c] = v - t;
            }
        }
        memset(pm + (size_t)n3 * C2, 0, sizeof(float) * (size_t)(n3max - n3) * C2);
    }

    /* 4. fc1 = folded bias + W . (pool - tail), per group over its prefix */
    int F = m->fout[0], start[DP_MODEL_PREDICT_CHUNK + 1];
    int ng = plan_groups(f->n3, B, start);
    start[ng] = B;
    for (int r = 0; r < B; r++)
        memcpy(m->pre[0] + (size_t)r * F, f->b1, sizeof(float) * (size_t)F);
    for (int g = 0; g < ng; g++) {
        int r0 = start[g], rows = start[g + 1] - r0, k = f->n3[r0] * C2;
        if (k > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, F, k, 1.0f, m->pool + (size_t)r0 * K, (int)K,
                        f->w1, (int)K, 1.0f, m->pre[0] + (size_t)r0 * F, F);
    }

    /* 5. the rest of the stack, then log-softmax back in input order */
    dp_relu_forward(m->act[0], m->pre[0], (size_t)B * F);
    dp_model_fc_forward(m, m->act[0], B, 1, m->nfc - 1, 0, NULL);
    int V = a->nclasses;
    const float *lg = m->pre[m->nfc - 1];
    for (int r = 0; r < B; r++)
        dp_log_softmax(logprobs + (size_t)f->ord[r] * V, lg + (size_t)r * V, 1, V);
    return 0;
}
