/* dp_nn: threads, elementwise layers, pooling, fully connected, losses,
 * Adam and initialisation. Convolutions are in dp_nn_conv.c.
 *
 * Loops are written to vectorise (restrict pointers, unit stride, no
 * reductions that would need reassociation); the pragma below lets GCC's
 * vectoriser use its normal cost model at -O2. Every reduction runs in a
 * fixed order so results do not depend on scheduling. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

#include "nn/dp_nn.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* OpenBLAS extension (declared in its cblas.h, repeated for other BLASes). */
void openblas_set_num_threads(int num_threads);

/* ---- threads --------------------------------------------------------------- */

static atomic_int nn_threads; /* 0 = not set yet; set and read by several threads */

void dp_nn_set_threads(int n)
{
    if (n <= 0)
        n = dp_ncpu();
    if (n > 64)
        n = 64;
    nn_threads = n;
    openblas_set_num_threads(n);
}

int dp_nn_get_threads(void)
{
    if (nn_threads <= 0) {
        int n = dp_ncpu();
        return n > 64 ? 64 : n;
    }
    return nn_threads;
}

typedef struct pf_job {
    void (*fn)(void *ctx, int i, int n);
    void *ctx;
    int i, n, prec; /* prec: the caller's precision, the chunk's */
} pf_job;

static void *pf_main(void *arg)
{
    pf_job *j = arg;
    dp_nn_set_thread_precision(j->prec);
    j->fn(j->ctx, j->i, j->n);
    return NULL;
}

/* One-off threads: the fallback when the pool is taken (another thread's
 * parallel_for, or a nested one). */
static void pf_spawn(int n, void (*fn)(void *ctx, int i, int n), void *ctx)
{
    pf_job jobs[64];
    pthread_t tid[64];
    int started[64], prec = dp_nn_get_precision();
    for (int i = 1; i < n; i++) {
        jobs[i] = (pf_job){fn, ctx, i, n, prec};
        started[i] = pthread_create(&tid[i], NULL, pf_main, &jobs[i]) == 0;
    }
    fn(ctx, 0, n);
    for (int i = 1; i < n; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            fn(ctx, i, n); /* could not start a thread: run the chunk here */
    }
}

/* The pool: up to 63 detached workers, started on first need and kept for
 * the life of the process, so that a parallel_for costs a wake-up rather
 * than thread creation (and the workers keep their malloc arenas and any
 * per-thread state of the libraries they call). Worker w runs chunk w + 1
 * of each job while w + 1 < n, in the job's precision (the caller's);
 * chunk 0 runs on the caller. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    int busy, workers, pending;
    unsigned long gen, born[63]; /* born[w]: gen when worker w was started */
    void (*fn)(void *ctx, int i, int n);
    void *ctx;
    int n, prec;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static void *pool_main(void *arg)
{
    int w = (int)(intptr_t)arg;
    pthread_mutex_lock(&pool.mu);
    unsigned long seen = pool.born[w]; /* not pool.gen: the job it was started for may be out already */
    for (;;) {
        while (pool.gen == seen)
            pthread_cond_wait(&pool.go, &pool.mu);
        seen = pool.gen;
        if (w + 1 >= pool.n)
            continue;
        void (*fn)(void *, int, int) = pool.fn;
        void *ctx = pool.ctx;
        int n = pool.n;
        dp_nn_set_thread_precision(pool.prec);
        pthread_mutex_unlock(&pool.mu);
        fn(ctx, w + 1, n);
        pthread_mutex_lock(&pool.mu);
        if (--pool.pending == 0)
            pthread_cond_signal(&pool.done);
    }
    return NULL;
}

void dp_nn_parallel_for(int n, void (*fn)(void *ctx, int i, int n), void *ctx)
{
    if (n <= 1) {
        if (n == 1)
            fn(ctx, 0, 1);
        return;
    }
    if (n > 64)
        n = 64;
    pthread_mutex_lock(&pool.mu);
    if (pool.busy) {
        pthread_mutex_unlock(&pool.mu);
        pf_spawn(n, fn, ctx);
        return;
    }
    while (pool.workers < n - 1) { /* workers start waiting for the next generation */
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pool.born[pool.workers] = pool.gen;
        int ok = pthread_create(&t, &at, pool_main, (void *)(intptr_t)pool.workers) == 0;
        pthread_attr_destroy(&at);
        if (!ok)
            break;
        pool.workers++;
    }
    if (pool.workers < n - 1) { /* could not start enough threads */
        pthread_mutex_unlock(&pool.mu);
        pf_spawn(n, fn, ctx);
        return;
    }
    pool.busy = 1;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.prec = dp_nn_get_precision();
    pool.pending = n - 1;
    pool.gen++;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.mu);
    fn(ctx, 0, n);
    pthread_mutex_lock(&pool.mu);
    while (pool.pending > 0)
        pthread_cond_wait(&pool.done, &pool.mu);
    pool.busy = 0;
    pthread_mutex_unlock(&pool.mu);
}

/* ---- BLAS kernels ------------------------------------------------------------ */

const char *dp_nn_blas_core(void)
{
    return openblas_get_corename();
}

/* ---- max-pool ---------------------------------------------------------------- */

void dp_maxpool1d_forward(float *out, int32_t *argmax, const float *inp, int B, int C, int L, int P)
{
    // inp [B, C, L] -> out [B, C, LO], argmax [B, C, LO], LO = L / P
    assert(P >= 1);
    int LO = L / P;
    size_t rows = (size_t)B * C;
    if (P == 2) {
        for (size_t r = 0; r < rows; r++) {
            const float *x = inp + r * L;
            float *y = out + r * LO;
            int32_t *a = argmax + r * LO;
            for (int t = 0; t < LO; t++) {
                float x0 = x[2 * t], x1 = x[2 * t + 1];
                int take1 = x1 > x0 || (isnan(x1) && !isnan(x0));
                y[t] = take1 ? x1 : x0;
                a[t] = 2 * t + take1;
            }
        }
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        const float *x = inp + r * L;
        float *y = out + r * LO;
        int32_t *a = argmax + r * LO;
        for (int t = 0; t < LO; t++) {
            int best = t * P;
            float m = x[best];
            for (int k = 1; k < P && !isnan(m); k++) {
                float v = x[t * P + k];
                if (v > m || isnan(v)) {
                    m = v;
                    best = t * P + k;
                }
            }
            y[t] = m;
            a[t] = best;
        }
    }
}

void dp_maxpool1d_backward(float *dinp, const float *dout, const int32_t *argmax, int B, int C, int L, int P)
{
    // dout [B, C, LO], argmax [B, C, LO] -> dinp [B, C, L] (overwritten)
    int LO = L / P;
    size_t rows = (size_t)B * C;
    memset(dinp, 0, rows * (size_t)L * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        float *dx = dinp + r * L;
        const float *dy = dout + r * LO;
        const int32_t *a = argmax + r * LO;
        for (int t = 0; t < LO; t++)
            dx[a[t]] += dy[t]; /* += : windows never overlap, but stay safe */
    }
}

/* ---- fully connected --------------------------------------------------------- */

void dp_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int C, int OC)
{
    // inp [B, C], weight [OC, C], bias [OC] -> out [B, OC] = inp @ weight^T + bias
    if (bias) {
        for (int b = 0; b < B; b++)
            memcpy(out + (size_t)b * OC, bias, (size_t)OC * sizeof(float));
    }
    dp_nn_gemm(0, 1, B, OC, C, inp, C, weight, C, bias ? 1.0f : 0.0f, out, OC);
}

void dp_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, int B, int C, int OC)
{
    // dout [B, OC]; inp [B, C]; weight [OC, C]
    // dinp [B, C] = dout @ weight            (overwritten)
    // dweight [OC, C] += dout^T @ inp         (accumulated)
    // dbias [OC] += sum_b dout[b]             (accumulated)
    if (dinp)
        dp_nn_gemm(0, 0, B, C, OC, dout, OC, weight, C, 0.0f, dinp, C);
    if (dweight)
        dp_nn_gemm(1, 0, OC, C, B, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        for (int b = 0; b < B; b++) {
            const float *restrict g = dout + (size_t)b * OC;
            float *restrict db = dbias;
            for (int o = 0; o < OC; o++)
                db[o] += g[o];
        }
    }
}

/* ---- activations ------------------------------------------------------------- */

void dp_relu_forward(float *out, const float *inp, size_t n)
{
    // out [n] = max(0, inp); out may alias inp (element i reads only i)
    for (size_t i = 0; i < n; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

typedef struct relujob {
    float *dinp;
    const float *dout, *out;
    size_t n;
} relujob;

static void relu_backward_task(void *ctx, int i, int parts)
{
    const relujob *j = ctx;
    size_t lo = j->n * (size_t)i / (size_t)parts, hi = j->n * (size_t)(i + 1) / (size_t)parts;
    for (size_t k = lo; k < hi; k++)
        j->dinp[k] = j->out[k] > 0.0f ? j->dout[k] : 0.0f;
}

void dp_relu_backward(float *dinp, const float *dout, const float *out, size_t n)
{
    // dinp [n] = dout * (out > 0); dinp may alias dout; split over the threads when big
    // (each element on its own: the result does not depend on the split)
    relujob j = {dinp, dout, out, n};
    int nt = n >= ((size_t)1 << 18) ? dp_nn_get_threads() : 1;
    dp_nn_parallel_for(nt, relu_backward_task, &j);
}

void dp_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n, float p, dp_rng *rng)
{
    // out [n], mask [n] <- inp [n]; keep with probability 1 - p, scale 1 / (1 - p)
    assert(p >= 0.0f && p < 1.0f);
    float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) {
        uint8_t keep = dp_rng_float(rng) >= p;
        mask[i] = keep;
        out[i] = keep ? inp[i] * scale : 0.0f;
    }
}

void dp_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p)
{
    // dinp [n] = dout * mask / (1 - p); dinp may alias dout
    float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++)
        dinp[i] = mask[i] ? dout[i] * scale : 0.0f;
}

/* ---- losses ----------------------------------------------------------------- */

/* log(sum_i exp(x[i])) of one row, stable (shifted by the row's max), in double */
static double row_logsumexp(const float *x, int V)
{
    float m = -INFINITY;
    for (int i = 0; i < V; i++)
        m = x[i] > m ? x[i] : m;
    double s = 0.0;
    for (int i = 0; i < V; i++)
        s += exp((double)x[i] - m);
    return m + log(s);
}

void dp_log_softmax(float *out, const float *logits, int B, int V)
{
    // logits [B, V] -> out [B, V] = logits - logsumexp(logits, row)
    for (int b = 0; b < B; b++) {
        const float *x = logits + (size_t)b * V;
        float *y = out + (size_t)b * V;
        float lse = (float)row_logsumexp(x, V);
        for (int i = 0; i < V; i++)
            y[i] = x[i] - lse;
    }
}

float dp_softmax_xent_forward(float *probs, const float *logits, const int *labels, int B, int V)
{
    // logits [B, V], labels [B] -> probs [B, V]; returns mean_b -log probs[b, labels[b]]
    /* weight 1 per row: the same sums, so the same bits, as a plain mean */
    return dp_softmax_wxent_forward(probs, logits, labels, NULL, B, V);
}

void dp_softmax_xent_backward(float *dlogits, const float *probs, const int *labels, int B, int V)
{
    // probs [B, V], labels [B] -> dlogits [B, V] = (probs - onehot) / B
    float inv = 1.0f / (float)B;
    for (int b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * V;
        float *d = dlogits + (size_t)b * V;
        for (int i = 0; i < V; i++)
            d[i] = p[i] * inv;
        d[labels[b]] = (p[labels[b]] - 1.0f) * inv;
    }
}

float dp_softmax_wxent_forward(float *probs, const float *logits, const int *labels, const float *cw, int B,
                               int V)
{
    // logits [B, V], labels [B], cw [V] -> probs [B, V]; returns sum_b w_b loss_b / sum_b w_b
    double loss = 0.0, wsum = 0.0;
    for (int b = 0; b < B; b++) {
        const float *x = logits + (size_t)b * V;
        float *p = probs + (size_t)b * V;
        double lse = row_logsumexp(x, V);
        for (int i = 0; i < V; i++)
            p[i] = (float)exp((double)x[i] - lse);
        assert(labels[b] >= 0 && labels[b] < V);
        double w = cw ? cw[labels[b]] : 1.0;
        loss += w * (lse - x[labels[b]]);
        wsum += w;
    }
    return wsum > 0 ? (float)(loss / wsum) : 0.0f;
}

void dp_softmax_wxent_backward(float *dlogits, const float *probs, const int *labels, const float *cw, int B,
                               int V)
{
    // probs [B, V], labels [B], cw [V] -> dlogits [B, V] = w_b (probs - onehot) / sum_b w_b
    if (!cw) {
        dp_softmax_xent_backward(dlogits, probs, labels, B, V);
        return;
    }
    double wsum = 0.0;
    for (int b = 0; b < B; b++)
        wsum += cw[labels[b]];
    for (int b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * V;
        float *d = dlogits + (size_t)b * V;
        float s = wsum > 0 ? (float)(cw[labels[b]] / wsum) : 0.0f;
        for (int i = 0; i < V; i++)
            d[i] = p[i] * s;
        d[labels[b]] = (p[labels[b]] - 1.0f) * s;
    }
}

float dp_mse_forward(const float *pred, const float *target, size_t n)
{
    // pred [n], target [n] -> mean (pred - target)^2
    /* 8 double partial sums: fixed order, so deterministic, and accurate */
    double acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            double d = (double)pred[i + j] - target[i + j];
            acc[j] += d * d;
        }
    for (; i < n; i++) {
        double d = (double)pred[i] - target[i];
        acc[0] += d * d;
    }
    double s = 0.0;
    for (int j = 0; j < 8; j++)
        s += acc[j];
    return n ? (float)(s / (double)n) : 0.0f;
}

void dp_mse_backward(float *dpred, const float *pred, const float *target, size_t n)
{
    // dpred [n] = 2 (pred - target) / n
    float k = n ? 2.0f / (float)n : 0.0f;
    for (size_t i = 0; i < n; i++)
        dpred[i] = k * (pred[i] - target[i]);
}

/* ---- Adam ---------------------------------------------------------------------- */

typedef struct adamctx {
    float *p, *m, *v;
    const float *g;
    size_t n;
    float step_size, bc2_sqrt, beta1, beta2, omb1, omb2, eps;
} adamctx;

/* Adam is a large share of a training step (10 M parameters, 7 floats
 * moved, a sqrt and two divisions each). GCC will not vectorise sqrtf
 * without -fno-math-errno, so the x86-64 path uses SSE2 (always present
 * there) explicitly: 4 lanes, each computing exactly the scalar expression
 * in the same order (no FMA), so the bits equal the scalar loop's. */
static void adam_range(const adamctx *a, size_t i0, size_t i1)
{
    float *restrict p = a->p, *restrict mm = a->m, *restrict vv = a->v;
    const float *restrict g = a->g;
    float beta1 = a->beta1, beta2 = a->beta2, omb1 = a->omb1, omb2 = a->omb2;
    float bc2_sqrt = a->bc2_sqrt, eps = a->eps, step_size = a->step_size;
    size_t i = i0;
#if defined(__SSE2__)
    __m128 B1 = _mm_set1_ps(beta1), B2 = _mm_set1_ps(beta2), O1 = _mm_set1_ps(omb1), O2 = _mm_set1_ps(omb2);
    __m128 C2 = _mm_set1_ps(bc2_sqrt), EPS = _mm_set1_ps(eps), SS = _mm_set1_ps(step_size);
    for (; i + 4 <= i1; i += 4) {
        __m128 gi = _mm_loadu_ps(g + i);
        __m128 mi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(mm + i), B1), _mm_mul_ps(O1, gi));
        __m128 vi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(vv + i), B2), _mm_mul_ps(_mm_mul_ps(O2, gi), gi));
        _mm_storeu_ps(mm + i, mi);
        _mm_storeu_ps(vv + i, vi);
        __m128 denom = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), C2), EPS);
        _mm_storeu_ps(p + i, _mm_sub_ps(_mm_loadu_ps(p + i), _mm_mul_ps(SS, _mm_div_ps(mi, denom))));
    }
#endif
    for (; i < i1; i++) {
        float gi = g[i];
        float mi = mm[i] * beta1 + omb1 * gi;
        float vi = vv[i] * beta2 + omb2 * gi * gi;
        mm[i] = mi;
        vv[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] -= step_size * (mi / denom);
    }
}

static void adam_task(void *ctx, int i, int n)
{
    const adamctx *a = ctx;
    /* chunk borders on multiples of 16 elements (64 bytes) */
    size_t blocks = (a->n + 15) / 16;
    size_t i0 = blocks * i / n * 16, i1 = blocks * (i + 1) / n * 16;
    adam_range(a, i0 < a->n ? i0 : a->n, i1 < a->n ? i1 : a->n);
}

void dp_adam_update(float *params, const float *grads, float *m, float *v, size_t n,
                    float lr, float beta1, float beta2, float eps, int t)
{
    // params, grads, m, v [n]; torch.optim.Adam (single-tensor path) step t >= 1.
    // Elementwise, so splitting it over threads does not change any bit.
    assert(t >= 1);
    double bc1 = 1.0 - pow((double)beta1, t);
    double bc2 = 1.0 - pow((double)beta2, t);
    adamctx a = {params, m, v, grads, n, (float)(lr / bc1), (float)sqrt(bc2), beta1, beta2,
                 1.0f - beta1, 1.0f - beta2, eps};
    int nt = dp_nn_get_threads();
    if (nt > 1 && n >= (1u << 18))
        dp_nn_parallel_for(nt, adam_task, &a);
    else
        adam_range(&a, 0, n);
}

/* ---- init -------------------------------------------------------------------- */

void dp_init_uniform(float *w, size_t n, float bound, dp_rng *rng)
{
    // w [n] ~ U(-bound, bound), drawn in order
    for (size_t i = 0; i < n; i++)
        w[i] = (2.0f * dp_rng_float(rng) - 1.0f) * bound;
}
