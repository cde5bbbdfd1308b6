/* dp_model: CNN and SAE built from the dp_nn layers; see dp_model.h. */
#include "model/dp_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/dp_gbt.h"
#include "model/dp_model_impl.h"
#include "nn/dp_nn.h"
#include "packet/dp_mask.h"

/* ---- small helpers ----------------------------------------------------------- */

static void *xcalloc(size_t n, size_t sz)
{
    if (n == 0)
        n = 1;
    return calloc(n, sz);
}

void dp_arch_default(dp_arch *a, int kind, int task, int nclasses)
{
    if (kind == DP_MODEL_FLOW) {
        dp_arch_flow(a, task, nclasses, 10, 44 + 64);
        return;
    }
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->nclasses = nclasses;
    a->in_len = DP_VEC_LEN;
    a->dropout = 0.05f;
    if (kind == DP_MODEL_GBT) {
        a->dropout = 0;
        return;
    }
    if (kind == DP_MODEL_CNN) {
        if (task == DP_TASK_APP) {
            a->c1 = 200, a->k1 = 4, a->s1 = 3;
            a->c2 = 200, a->k2 = 5, a->s2 = 1;
        } else {
            a->c1 = 200, a->k1 = 5, a->s1 = 3;
            a->c2 = 200, a->k2 = 4, a->s2 = 3;
        }
        a->pool = 2;
        a->nhidden = 3;
        a->hidden[0] = 200, a->hidden[1] = 100, a->hidden[2] = 50;
    } else {
        static const int h[] = {400, 300, 200, 100, 50};
        a->nhidden = 5;
        for (int i = 0; i < 5; i++)
            a->hidden[i] = h[i];
    }
}

int dp_model_kind_parse(const char *s)
{
    if (!strcmp(s, "cnn"))
        return DP_MODEL_CNN;
    if (!strcmp(s, "sae"))
        return DP_MODEL_SAE;
    if (!strcmp(s, "flow"))
        return DP_MODEL_FLOW;
    if (!strcmp(s, "gbt"))
        return DP_MODEL_GBT;
    return -1;
}

void dp_hparams_default(dp_hparams *h)
{
    memset(h, 0, sizeof *h);
    h->epochs = 20;
    h->batch = 16;
    h->patience = 3;
    h->pretrain_epochs = 2;
    h->threads = 0;
    h->lr = 1e-3f;
    h->beta1 = 0.9f;
    h->beta2 = 0.999f;
    h->eps = 1e-8f;
    h->validation = 0;
    h->seed = 9876;
}

/* Checks the architecture and lays out the tensor table. */
static int layout(dp_model *m, char *errbuf, const char *src)
{
    const dp_arch *a = &m->arch;
    if (a->kind != DP_MODEL_CNN && a->kind != DP_MODEL_SAE && a->kind != DP_MODEL_FLOW && a->kind != DP_MODEL_GBT)
        return dp_err(errbuf, "%s: unknown model kind %d", src, a->kind);
    if (a->nclasses < 1 || a->nclasses > DP_MAX_CLASSES)
        return dp_err(errbuf, "%s: bad class count %d", src, a->nclasses);
    if (a->kind == DP_MODEL_FLOW && dp_flow_check(a, errbuf, src) != 0)
        return -1;
    if (a->kind == DP_MODEL_CNN && a->in_len != DP_VEC_LEN)
        return dp_err(errbuf, "%s: input length %d, expected %d", src, a->in_len, DP_VEC_LEN);
    if (a->in_len < 1 || a->in_len > DP_MODEL_MAX_IN_LEN)
        return dp_err(errbuf, "%s: input length %d out of range 1..%d", src, a->in_len, DP_MODEL_MAX_IN_LEN);
    if (a->kind == DP_MODEL_GBT) {
        m->ntensors = 0, m->nparams = 0, m->nfc = 0, m->flat = a->in_len;
        return 0;
    }
    if (a->nhidden < 1 || a->nhidden > DP_MODEL_MAX_HIDDEN)
        return dp_err(errbuf, "%s: bad hidden layer count %d", src, a->nhidden);
    if (!(a->dropout >= 0 && a->dropout < 1))
        return dp_err(errbuf, "%s: bad dropout %g", src, a->dropout);
    for (int i = 0; i < a->nhidden; i++)
        if (a->hidden[i] < 1 || a->hidden[i] > (1 << 20))
            return dp_err(errbuf, "%s: bad hidden width %d", src, a->hidden[i]);
    m->ntensors = 0;
    size_t off = 0;
#define ADD(nm, nd, s0, s1, s2, fan)                                                 \
    do {                                                                             \
        dp_tdesc *t = &m->t[m->ntensors++];                                          \
        snprintf(t->name, sizeof t->name, "%s", nm);                                 \
        t->ndim = nd;                                                                \
        t->shape[0] = s0, t->shape[1] = s1, t->shape[2] = s2, t->shape[3] = 1;       \
        t->numel = (size_t)(s0) * (size_t)(s1) * (size_t)(s2);                      \
        t->offset = off;                                                             \
        t->fan_in = fan;                                                             \
        off += t->numel;                                                             \
    } while (0)
    int in;
    if (a->kind == DP_MODEL_CNN) {
        if (a->c1 < 1 || a->c2 < 1 || a->k1 < 1 || a->k2 < 1 || a->s1 < 1 || a->s2 < 1 || a->pool < 1 ||
            a->c1 > 4096 || a->c2 > 4096 || a->k1 > 64 || a->k2 > 64 || a->s1 > 64 || a->s2 > 64 || a->pool > 64)
            return dp_err(errbuf, "%s: bad convolution parameters", src);
        m->L1 = dp_conv1d_out_len(a->in_len, a->k1, a->s1);
        m->L2 = m->L1 ? dp_conv1d_out_len(m->L1, a->k2, a->s2) : 0;
        m->L3 = m->L2 / a->pool;
        if (m->L3 < 1)
            return dp_err(errbuf, "%s: convolutions leave no output", src);
        ADD("conv1.weight", 3, a->c1, 1, a->k1, (size_t)a->k1);
        ADD("conv1.bias", 1, a->c1, 1, 1, (size_t)a->k1);
        ADD("conv2.weight", 3, a->c2, a->c1, a->k2, (size_t)a->c1 * a->k2);
        ADD("conv2.bias", 1, a->c2, 1, 1, (size_t)a->c1 * a->k2);
        in = a->c2 * m->L3;
    } else if (a->kind == DP_MODEL_FLOW) {
        const char *fn[6];
        int fs[6][3], fd[6];
        size_t ff[6];
        int nf = dp_flow_tensors(a, fn, fs, fd, ff);
        for (int i = 0; i < nf; i++)
            ADD(fn[i], fd[i], fs[i][0], fs[i][1], fs[i][2], ff[i]);
        in = dp_flow_flat(a);
    } else {
        in = a->in_len;
    }
    m->flat = in;
    m->nfc = a->nhidden + 1;
    for (int i = 0; i < m->nfc; i++) {
        int out = i < a->nhidden ? a->hidden[i] : a->nclasses;
        char nm[32];
        snprintf(nm, sizeof nm, "fc%d.weight", i + 1);
        if (i == a->nhidden)
            snprintf(nm, sizeof nm, "out.weight");
        ADD(nm, 2, out, in, 1, (size_t)in);
        snprintf(nm, sizeof nm, "fc%d.bias", i + 1);
        if (i == a->nhidden)
            snprintf(nm, sizeof nm, "out.bias");
        ADD(nm, 1, out, 1, 1, (size_t)in);
        m->fin[i] = in;
        m->fout[i] = out;
        in = out;
    }
#undef ADD
    m->nparams = off;
    return 0;
}

/* Points w/b (and dw/db when gradients exist) at tensors k and k+1; k += 2. */
static void view_pair(dp_model *m, int *k, float **w, float **b, float **dw, float **db)
{
    *w = m->params + m->t[*k].offset;
    *dw = m->grads ? m->grads + m->t[*k].offset : NULL;
    *b = m->params + m->t[*k + 1].offset;
    *db = m->grads ? m->grads + m->t[*k + 1].offset : NULL;
    *k += 2;
}

static void set_views(dp_model *m)
{
    int k = 0;
    if (m->arch.kind == DP_MODEL_FLOW)
        for (int i = 0; i < dp_flow_nlayers(&m->arch); i++)
            view_pair(m, &k, &m->gw[i], &m->gb[i], &m->dgw[i], &m->dgb[i]);
    if (m->arch.kind == DP_MODEL_CNN)
        for (int i = 0; i < 2; i++)
            view_pair(m, &k, &m->cw[i], &m->cb[i], &m->dcw[i], &m->dcb[i]);
    for (int i = 0; i < m->nfc; i++)
        view_pair(m, &k, &m->fw[i], &m->fb[i], &m->dfw[i], &m->dfb[i]);
}

static dp_model *model_alloc(const dp_arch *a, int task, char *const *names, char *errbuf, const char *src)
{
    dp_model *m = calloc(1, sizeof *m);
    if (!m) {
        dp_err(errbuf, "%s: out of memory", src);
        return NULL;
    }
    m->arch = *a;
    m->task = task;
    dp_hparams_default(&m->hp);
    if (task < 0 || task >= DP_NTASKS) {
        dp_err(errbuf, "%s: bad task %d", src, task);
        free(m);
        return NULL;
    }
    if (layout(m, errbuf, src) != 0) {
        free(m);
        return NULL;
    }
    m->params = xcalloc(m->nparams, sizeof(float));
    if (!m->params) {
        dp_err(errbuf, "%s: out of memory (%zu parameters)", src, m->nparams);
        free(m);
        return NULL;
    }
    for (int c = 0; c < a->nclasses; c++)
        m->names[c] = strdup(names && names[c] ? names[c] : "");
    set_views(m);
    return m;
}

dp_model *dp_model_create(const dp_arch *a, int task, char *const *names, uint64_t seed, char *errbuf)
{
    dp_model *m = model_alloc(a, task, names, errbuf, "model");
    if (!m)
        return NULL;
    dp_rng rng;
    dp_rng_seed(&rng, seed);
    for (int i = 0; i < m->ntensors; i++)
        dp_init_uniform(m->params + m->t[i].offset, m->t[i].numel, (float)(1.0 / sqrt((double)m->t[i].fan_in)),
                        &rng);
    m->hp.seed = seed;
    return m;
}

static void free_acts(dp_model *m)
{
    free(m->x);
    free(m->a1);
    free(m->a2);
    free(m->pool);
    free(m->argmax);
    for (int i = 0; i < DP_MODEL_MAX_HIDDEN + 1; i++)
        free(m->pre[i]), m->pre[i] = NULL;
    for (int i = 0; i < DP_MODEL_MAX_HIDDEN; i++) {
        free(m->act[i]), m->act[i] = NULL;
        free(m->mask[i]), m->mask[i] = NULL;
    }
    free(m->probs);
    free(m->scratch);
    free(m->da1);
    free(m->da2);
    free(m->dP0);
    free(m->dP1);
    dp_flow_free_acts(m);
    m->x = m->a1 = m->a2 = m->pool = m->probs = m->scratch = NULL;
    m->da1 = m->da2 = m->dP0 = m->dP1 = NULL;
    m->argmax = NULL;
    m->cap = 0;
}

void dp_model_free(dp_model *m)
{
    if (!m)
        return;
    free_acts(m);
    dp_model_infer_free(m);
    free(m->params);
    free(m->grads);
    free(m->adam_m);
    free(m->adam_v);
    free(m->blob);
    free(m->masked);
    dp_gbt_free(m->gbt);
    for (int c = 0; c < DP_MAX_CLASSES; c++)
        free(m->names[c]);
    free(m);
}

/* Makes room for B rows of activations (and their gradients). */
int dp_model_reserve(dp_model *m, int B, char *errbuf)
{
    if (B <= m->cap)
        return 0;
    free_acts(m);
    const dp_arch *a = &m->arch;
    size_t b = (size_t)B;
    int ok = 1;
#define AL(p, n, T) ok &= ((p) = xcalloc((n), sizeof(T))) != NULL
    AL(m->x, b * a->in_len, float);
    size_t dmax = (size_t)m->flat;
    if (a->kind == DP_MODEL_CNN) {
        AL(m->a1, b * a->c1 * m->L1, float);
        AL(m->a2, b * a->c2 * m->L2, float);
        AL(m->pool, b * m->flat, float);
        AL(m->argmax, b * m->flat, int32_t);
        AL(m->da1, b * a->c1 * m->L1, float);
        AL(m->da2, b * a->c2 * m->L2, float);
        size_t s1 = dp_conv1d_scratch_floats(B, 1, a->in_len, a->c1, a->k1, a->s1);
        size_t s2 = dp_conv1d_scratch_floats(B, a->c1, m->L1, a->c2, a->k2, a->s2);
        AL(m->scratch, s1 > s2 ? s1 : s2, float);
    }
    if (a->kind == DP_MODEL_FLOW)
        ok &= dp_flow_reserve(m, B) == 0;
    for (int i = 0; i < m->nfc; i++) {
        AL(m->pre[i], b * m->fout[i], float);
        if ((size_t)m->fout[i] > dmax)
            dmax = m->fout[i];
        if (i < a->nhidden) {
            AL(m->act[i], b * m->fout[i], float);
            AL(m->mask[i], b * m->fout[i], uint8_t);
        }
    }
    AL(m->probs, b * a->nclasses, float);
    AL(m->dP0, b * dmax, float);
    AL(m->dP1, b * dmax, float);
#undef AL
    m->dmax = dmax;
    if (!ok) {
        free_acts(m);
        return dp_err(errbuf, "model: out of memory for a batch of %d", B);
    }
    m->cap = B;
    return 0;
}

static void load_input(dp_model *m, const uint8_t *x, const float *xf, int B)
{
    size_t n = (size_t)B * m->arch.in_len;
    if (xf) {
        memcpy(m->x, xf, n * sizeof(float));
        return;
    }
    const float s = 1.0f / 255.0f;
    for (size_t i = 0; i < n; i++)
        m->x[i] = (float)x[i] * s;
}

void dp_model_fc_forward(dp_model *m, const float *in, int B, int from, int upto, int train, dp_rng *rng)
{
    const dp_arch *a = &m->arch;
    for (int i = from; i <= upto; i++) {
        dp_linear_forward(m->pre[i], in, m->fw[i], m->fb[i], B, m->fin[i], m->fout[i]);
        if (i == a->nhidden)
            break;
        size_t n = (size_t)B * m->fout[i];
        /* reference order: Linear -> Dropout -> ReLU (the same values as
         * ReLU -> Dropout for any mask) */
        if (train && a->dropout > 0)
            dp_dropout_forward(m->pre[i], m->mask[i], m->pre[i], n, a->dropout, rng);
        dp_relu_forward(m->act[i], m->pre[i], n);
        in = m->act[i];
    }
}

static const float *fc_input(dp_model *m)
{
    if (m->arch.kind == DP_MODEL_FLOW)
        return dp_flow_nlayers(&m->arch) == 0 ? m->x : m->arch.ext[4] > 0 ? m->cv : m->e;
    return m->arch.kind == DP_MODEL_CNN ? m->pool : m->x;
}

static void conv_forward(dp_model *m, int B)
{
    const dp_arch *a = &m->arch;
    dp_conv1d_relu_forward(m->a1, m->scratch, m->x, m->cw[0], m->cb[0], B, 1, a->in_len, a->c1, a->k1, a->s1);
    dp_conv1d_relu_forward(m->a2, m->scratch, m->a1, m->cw[1], m->cb[1], B, a->c1, m->L1, a->c2, a->k2, a->s2);
    dp_maxpool1d_forward(m->pool, m->argmax, m->a2, B, a->c2, m->L2, a->pool);
}

const float *dp_model_forward(dp_model *m, const uint8_t *x, const float *xf, int B, int train, dp_rng *rng,
                              char *errbuf)
{
    if (B < 1) {
        dp_err(errbuf, "model: batch size %d", B);
        return NULL;
    }
    if (m->nfc < 1) {
        dp_err(errbuf, "model: a %s model has no layers to run forward", dp_model_kind_name(m));
        return NULL;
    }
    if (dp_model_reserve(m, B, errbuf) != 0)
        return NULL;
    load_input(m, x, xf, B);
    if (m->arch.kind == DP_MODEL_CNN)
        conv_forward(m, B);
    else if (m->arch.kind == DP_MODEL_FLOW)
        dp_flow_forward(m, B);
    dp_model_fc_forward(m, fc_input(m), B, 0, m->nfc - 1, train, rng);
    m->last_B = B;
    m->last_train = train && m->arch.dropout > 0;
    return m->pre[m->nfc - 1];
}

const float *dp_model_hidden(dp_model *m, const uint8_t *x, int B, int layer, char *errbuf)
{
    if (m->arch.kind == DP_MODEL_FLOW) {
        dp_err(errbuf, "model: a flow model has no byte-vector hidden layers");
        return NULL;
    }
    if (layer < 0 || layer >= m->arch.nhidden) {
        dp_err(errbuf, "model: no hidden layer %d", layer);
        return NULL;
    }
    if (dp_model_reserve(m, B, errbuf) != 0)
        return NULL;
    load_input(m, x, NULL, B);
    if (m->arch.kind == DP_MODEL_CNN)
        conv_forward(m, B);
    dp_model_fc_forward(m, fc_input(m), B, 0, layer, 0, NULL);
    return m->act[layer];
}

float dp_model_loss(dp_model *m, const int *labels, int B, int *correct)
{
    int V = m->arch.nclasses;
    const float *lg = m->pre[m->nfc - 1];
    float loss = dp_softmax_wxent_forward(m->probs, lg, labels, m->class_weight, B, V);
    if (correct) {
        int c = 0;
        for (int b = 0; b < B; b++) {
            const float *r = lg + (size_t)b * V;
            int best = 0;
            for (int j = 1; j < V; j++)
                if (r[j] > r[best])
                    best = j;
            c += best == labels[b];
        }
        *correct = c;
    }
    return loss;
}

void dp_model_set_class_weights(dp_model *m, const float *weights)
{
    m->class_weight = weights;
}

static int ensure_grads(dp_model *m, char *errbuf)
{
    if (m->grads)
        return 0;
    m->grads = xcalloc(m->nparams, sizeof(float));
    if (!m->grads)
        return dp_err(errbuf, "model: out of memory for gradients");
    set_views(m);
    return 0;
}

int dp_model_backward(dp_model *m, const int *labels, int B, char *errbuf)
{
    if (ensure_grads(m, errbuf) != 0)
        return -1;
    const dp_arch *a = &m->arch;
    memset(m->grads, 0, m->nparams * sizeof(float));
    float *d = m->dP0, *e = m->dP1;
    dp_softmax_wxent_backward(d, m->probs, labels, m->class_weight, B, a->nclasses);
    for (int i = m->nfc - 1; i >= 0; i--) {
        if (i < a->nhidden) { /* d = dact[i] -> dpre[i] */
            size_t n = (size_t)B * m->fout[i];
            dp_relu_backward(d, d, m->act[i], n);
            if (m->last_train)
                dp_dropout_backward(d, d, m->mask[i], n, a->dropout);
        }
        const float *in = i > 0 ? m->act[i - 1] : fc_input(m);
        float *dinp = (i > 0 || a->kind != DP_MODEL_SAE) ? e : NULL;
        dp_linear_backward(dinp, m->dfw[i], m->dfb[i], d, in, m->fw[i], B, m->fin[i], m->fout[i]);
        float *t = d;
        d = e;
        e = t;
    }
    if (a->kind == DP_MODEL_FLOW)
        dp_flow_backward(m, d, B);
    if (a->kind == DP_MODEL_CNN) { /* d = dpool [B, c2*L3] */
        dp_maxpool1d_backward(m->da2, d, m->argmax, B, a->c2, m->L2, a->pool);
        dp_relu_backward(m->da2, m->da2, m->a2, (size_t)B * a->c2 * m->L2);
        dp_conv1d_backward(m->da1, m->dcw[1], m->dcb[1], m->scratch, m->da2, m->a1, m->cw[1], B, a->c1, m->L1,
                           a->c2, a->k2, a->s2);
        dp_relu_backward(m->da1, m->da1, m->a1, (size_t)B * a->c1 * m->L1);
        dp_conv1d_backward(NULL, m->dcw[0], m->dcb[0], m->scratch, m->da1, m->x, m->cw[0], B, 1, a->in_len, a->c1,
                           a->k1, a->s1);
    }
    return 0;
}

float *dp_model_grads(dp_model *m)
{
    ensure_grads(m, NULL);
    return m->grads;
}

static int ensure_adam(dp_model *m, char *errbuf)
{
    if (m->adam_m)
        return 0;
    m->adam_m = xcalloc(m->nparams, sizeof(float));
    m->adam_v = xcalloc(m->nparams, sizeof(float));
    if (!m->adam_m || !m->adam_v) {
        free(m->adam_m);
        free(m->adam_v);
        m->adam_m = m->adam_v = NULL;
        return dp_err(errbuf, "model: out of memory for the optimiser state");
    }
    m->adam_t = 0;
    return 0;
}

int dp_model_adam_step(dp_model *m, float lr, float b1, float b2, float eps, char *errbuf)
{
    if (ensure_adam(m, errbuf) != 0 || ensure_grads(m, errbuf) != 0)
        return -1;
    m->adam_t++;
    m->gen++;
    dp_adam_update(m->params, m->grads, m->adam_m, m->adam_v, m->nparams, lr, b1, b2, eps, m->adam_t);
    return 0;
}

float *dp_model_adam_m(dp_model *m)
{
    ensure_adam(m, NULL);
    return m->adam_m;
}
float *dp_model_adam_v(dp_model *m)
{
    ensure_adam(m, NULL);
    return m->adam_v;
}
int *dp_model_adam_t(dp_model *m)
{
    return &m->adam_t;
}

void dp_model_fc(dp_model *m, int i, float **w, float **b, float **dw, float **db, int *in, int *out)
{
    ensure_grads(m, NULL);
    m->gen++; /* the caller may write the weights */
    if (w)
        *w = m->fw[i];
    if (b)
        *b = m->fb[i];
    if (dw)
        *dw = m->dfw[i];
    if (db)
        *db = m->dfb[i];
    if (in)
        *in = m->fin[i];
    if (out)
        *out = m->fout[i];
}

/* ---- accessors ------------------------------------------------------------------ */

int dp_model_task(const dp_model *m) { return m->task; }
int dp_model_nclasses(const dp_model *m) { return m->arch.nclasses; }
const char *dp_model_class_name(const dp_model *m, int c)
{
    if (c < 0 || c >= m->arch.nclasses)
        return "?";
    return m->names[c] ? m->names[c] : "";
}
const char *dp_model_kind_name(const dp_model *m)
{
    static const char *const names[] = {"cnn", "sae", "flow", "gbt"};
    return m->arch.kind >= 0 && m->arch.kind < 4 ? names[m->arch.kind] : "?";
}
int dp_model_input(const dp_model *m) { return m->input; }
uint32_t dp_model_mask(const dp_model *m) { return m->fieldmask; }
const dp_flowcfg *dp_model_flowcfg(const dp_model *m) { return m->input == DP_INPUT_FLOW ? &m->flow : NULL; }

int dp_model_set_flowcfg(dp_model *m, const dp_flowcfg *cfg, char *errbuf)
{
    if (dp_flowcfg_check(cfg, "model", errbuf) < 0)
        return -1;
    if (m->arch.in_len != dp_flowcfg_row_len(cfg))
        return dp_err(errbuf, "model: input length %d is not %d packets x %d features", m->arch.in_len,
                      cfg->npackets, dp_flowcfg_features(cfg));
    m->input = DP_INPUT_FLOW;
    m->flow = *cfg;
    m->fieldmask = cfg->mask;
    return 0;
}

void dp_model_set_mask(dp_model *m, uint32_t mask)
{
    m->fieldmask = mask & DP_MASK_ALL;
    if (m->input == DP_INPUT_FLOW)
        m->flow.mask = m->fieldmask;
}

const uint8_t *dp_model_blob(const dp_model *m, size_t *len)
{
    *len = m->blob_len;
    return m->blob;
}

int dp_model_set_blob(dp_model *m, const void *data, size_t len, char *errbuf)
{
    uint8_t *b = len ? malloc(len) : NULL;
    if (len && !b)
        return dp_err(errbuf, "model: out of memory for a %zu-byte blob", len);
    if (len)
        memcpy(b, data, len);
    free(m->blob);
    m->blob = b;
    m->blob_len = len;
    dp_gbt_free(m->gbt);
    m->gbt = NULL;
    return 0;
}
const dp_arch *dp_model_arch(const dp_model *m) { return &m->arch; }
dp_hparams *dp_model_hparams(dp_model *m) { return &m->hp; }
size_t dp_model_nparams(const dp_model *m) { return m->nparams; }
float *dp_model_params(dp_model *m)
{
    m->gen++; /* the caller may write the parameters */
    return m->params;
}
int dp_model_ntensors(const dp_model *m) { return m->ntensors; }

int dp_model_tensor(const dp_model *m, int i, const char **name, size_t *offset, size_t *numel, int shape[4])
{
    const dp_tdesc *t = &m->t[i];
    if (name)
        *name = t->name;
    if (offset)
        *offset = t->offset;
    if (numel)
        *numel = t->numel;
    if (shape)
        for (int k = 0; k < 4; k++)
            shape[k] = k < t->ndim ? t->shape[k] : 1;
    return t->ndim;
}

/* The chunk's vectors with the model's field mask applied (a copy), or
 * the vectors themselves when the model masks nothing; NULL when out of
 * memory. */
static const uint8_t *masked_chunk(dp_model *m, const uint8_t *x, int n)
{
    if (!m->fieldmask)
        return x;
    if (!m->masked && !(m->masked = malloc((size_t)DP_MODEL_PREDICT_CHUNK * DP_VEC_LEN)))
        return NULL;
    memcpy(m->masked, x, (size_t)n * DP_VEC_LEN);
    for (int i = 0; i < n; i++)
        dp_mask_apply(m->fieldmask, m->masked + (size_t)i * DP_VEC_LEN);
    return m->masked;
}

int dp_model_predict(dp_model *m, const uint8_t *vectors, int B, float *logprobs, char *errbuf)
{
    if (B < 1)
        return dp_err(errbuf, "model: predict on %d vectors", B);
    if (m->input != DP_INPUT_PACKET || m->arch.kind == DP_MODEL_FLOW)
        return dp_err(errbuf, "model: a %s flow model classifies flows, not single packets (dp_model_predict_flows)",
                      dp_model_kind_name(m));
    int V = m->arch.nclasses;
    for (int done = 0; done < B;) {
        int n = B - done < DP_MODEL_PREDICT_CHUNK ? B - done : DP_MODEL_PREDICT_CHUNK;
        const uint8_t *x = masked_chunk(m, vectors + (size_t)done * m->arch.in_len, n);
        if (!x)
            return dp_err(errbuf, "model: out of memory");
        if (m->arch.kind == DP_MODEL_CNN) {
            if (dp_model_infer_cnn(m, x, n, logprobs + (size_t)done * V, errbuf) != 0)
                return -1;
        } else {
            const float *lg = dp_model_forward(m, x, NULL, n, 0, NULL, errbuf);
            if (!lg)
                return -1;
            dp_log_softmax(logprobs + (size_t)done * V, lg, n, V);
        }
        done += n;
    }
    return 0;
}

int dp_model_predict_flows(dp_model *m, const float *xf, int B, float *logprobs, char *errbuf)
{
    if (B < 1)
        return dp_err(errbuf, "model: predict on %d flows", B);
    if (m->input != DP_INPUT_FLOW && m->arch.kind != DP_MODEL_FLOW)
        return dp_err(errbuf, "model: a %s packet model classifies packets, not flow rows", dp_model_kind_name(m));
    int V = m->arch.nclasses;
    if (m->arch.kind == DP_MODEL_GBT) {
        if (!m->gbt && !(m->gbt = dp_gbt_load(m->blob, m->blob_len, m->arch.in_len, V, "model", errbuf)))
            return -1;
        return dp_gbt_predict(m->gbt, xf, B, m->arch.in_len, V, logprobs, errbuf);
    }
    for (int done = 0; done < B;) {
        int n = B - done < DP_MODEL_PREDICT_CHUNK ? B - done : DP_MODEL_PREDICT_CHUNK;
        const float *lg = dp_model_forward(m, NULL, xf + (size_t)done * m->arch.in_len, n, 0, NULL, errbuf);
        if (!lg)
            return -1;
        dp_log_softmax(logprobs + (size_t)done * V, lg, n, V);
        done += n;
    }
    return 0;
}

/* ---- model file ----------------------------------------------------------------- */

#define MAGIC_MODEL "DPMODEL"
#define MAGIC_CKPT "DPCKPT\0"
#define FORMAT_VERSION 2u /* reads 1 (no input kind, mask, flow config, ext, blob) and 2; a
                            * checkpoint of version 2 ends with the training set's fingerprint */

typedef struct wbuf {
    FILE *f;
    uint64_t h;
    int err;
} wbuf;

static void w_bytes(wbuf *w, const void *p, size_t n)
{
    if (!n)
        return;
    w->h = dp_fnv1a(p, n, w->h);
    if (fwrite(p, 1, n, w->f) != n)
        w->err = 1;
}
static void w_u16(wbuf *w, uint32_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    w_bytes(w, b, 2);
}
static void w_u32(wbuf *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, 4);
}
static void w_u64(wbuf *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, 8);
}
static void w_f32(wbuf *w, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    w_u32(w, v);
}
/* float arrays: the host is little-endian (x86-64/aarch64), checked below */
static void w_floats(wbuf *w, const float *p, size_t n)
{
    w_bytes(w, p, n * sizeof(float));
}

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "model files assume a little-endian host");

static void write_model_body(wbuf *w, const dp_model *m, const char *magic, uint32_t version)
{
    const dp_arch *a = &m->arch;
    const dp_hparams *h = &m->hp;
    w_bytes(w, magic, 8);
    w_u32(w, version);
    w_u32(w, (uint32_t)a->kind);
    w_u32(w, (uint32_t)m->task);
    w_u32(w, (uint32_t)a->nclasses);
    w_u32(w, (uint32_t)a->in_len);
    w_u32(w, (uint32_t)a->c1), w_u32(w, (uint32_t)a->k1), w_u32(w, (uint32_t)a->s1);
    w_u32(w, (uint32_t)a->c2), w_u32(w, (uint32_t)a->k2), w_u32(w, (uint32_t)a->s2);
    w_u32(w, (uint32_t)a->pool);
    w_u32(w, (uint32_t)a->nhidden);
    for (int i = 0; i < DP_MODEL_MAX_HIDDEN; i++)
        w_u32(w, (uint32_t)a->hidden[i]);
    w_f32(w, a->dropout);
    w_u32(w, (uint32_t)h->epochs), w_u32(w, (uint32_t)h->batch), w_u32(w, (uint32_t)h->patience);
    w_u32(w, (uint32_t)h->pretrain_epochs), w_u32(w, (uint32_t)h->threads), w_u32(w, (uint32_t)h->epochs_run);
    w_f32(w, h->lr), w_f32(w, h->beta1), w_f32(w, h->beta2), w_f32(w, h->eps);
    w_f32(w, h->validation), w_f32(w, h->final_loss);
    w_u64(w, h->seed), w_u64(w, h->train_samples);
    w_u32(w, (uint32_t)m->input), w_u32(w, m->fieldmask);
    w_u32(w, (uint32_t)m->flow.npackets), w_u32(w, (uint32_t)m->flow.payload_bytes), w_u32(w, m->flow.groups);
    for (int i = 0; i < 8; i++)
        w_u32(w, (uint32_t)a->ext[i]);
    for (int c = 0; c < a->nclasses; c++) {
        const char *s = m->names[c] ? m->names[c] : "";
        size_t n = strlen(s);
        if (n > 255)
            n = 255;
        w_u16(w, (uint32_t)n);
        w_bytes(w, s, n);
    }
    w_u32(w, (uint32_t)m->ntensors);
    for (int i = 0; i < m->ntensors; i++) {
        const dp_tdesc *t = &m->t[i];
        size_t n = strlen(t->name);
        w_u16(w, (uint32_t)n);
        w_bytes(w, t->name, n);
        w_u32(w, (uint32_t)t->ndim);
        for (int k = 0; k < t->ndim; k++)
            w_u32(w, (uint32_t)t->shape[k]);
        w_u64(w, t->offset);
        w_u64(w, t->numel);
    }
    w_u64(w, m->nparams);
    w_floats(w, m->params, m->nparams);
    w_u64(w, m->blob_len);
    w_bytes(w, m->blob, m->blob_len);
}

static int finish(wbuf *w, dp_afile *af, const char *path, char *errbuf)
{
    uint64_t h = w->h;
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(h >> (8 * i));
    if (fwrite(b, 1, 8, af->f) != 8)
        w->err = 1;
    if (w->err) {
        dp_errno(errbuf, "%s: write failed", path);
        dp_afile_abort(af);
        return -1;
    }
    return dp_afile_commit(af, errbuf);
}

int dp_model_save(const dp_model *m, const char *path, char *errbuf)
{
    dp_afile af;
    if (dp_afile_open(&af, path, errbuf) != 0)
        return -1;
    wbuf w = {af.f, DP_FNV_INIT, 0};
    write_model_body(&w, m, MAGIC_MODEL, FORMAT_VERSION);
    return finish(&w, &af, path, errbuf);
}

int dp_model_save_checkpoint(const dp_model *m, const dp_train_state *st, const char *path, char *errbuf)
{
    dp_afile af;
    if (dp_afile_open(&af, path, errbuf) != 0)
        return -1;
    wbuf w = {af.f, DP_FNV_INIT, 0};
    write_model_body(&w, m, MAGIC_CKPT, FORMAT_VERSION);
    w_u32(&w, m->adam_m ? 1 : 0);
    if (m->adam_m) {
        w_floats(&w, m->adam_m, m->nparams);
        w_floats(&w, m->adam_v, m->nparams);
    }
    w_u32(&w, (uint32_t)m->adam_t);
    w_u32(&w, (uint32_t)st->epoch);
    w_u32(&w, (uint32_t)st->bad_epochs);
    w_f32(&w, st->best_loss);
    w_u32(&w, (uint32_t)st->phase);
    for (int i = 0; i < 4; i++)
        w_u64(&w, st->rng.s[i]);
    int hb = st->has_best && st->best_params;
    w_u32(&w, (uint32_t)hb);
    if (hb)
        w_floats(&w, st->best_params, m->nparams);
    w_u64(&w, st->data_rows);
    w_u64(&w, st->data_fp);
    return finish(&w, &af, path, errbuf);
}

typedef struct rbuf {
    const uint8_t *p;
    size_t n, pos;
    int bad;
} rbuf;

static const uint8_t *r_bytes(rbuf *r, size_t n)
{
    if (r->bad || r->n - r->pos < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}
static uint64_t r_uint(rbuf *r, int nb)
{
    const uint8_t *p = r_bytes(r, (size_t)nb);
    uint64_t v = 0;
    if (!p)
        return 0;
    for (int i = 0; i < nb; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static int r_i32(rbuf *r)
{
    uint64_t v = r_uint(r, 4);
    if (v > 0x7fffffff)
        r->bad = 1;
    return (int)v;
}
static float r_f32(rbuf *r)
{
    uint32_t v = (uint32_t)r_uint(r, 4);
    float f;
    memcpy(&f, &v, 4);
    return f;
}
static int r_floats(rbuf *r, float *dst, size_t n)
{
    if (n > (SIZE_MAX / 4)) {
        r->bad = 1;
        return -1;
    }
    const uint8_t *p = r_bytes(r, n * 4);
    if (!p)
        return -1;
    memcpy(dst, p, n * 4);
    return 0;
}

/* Index of the first NaN or infinite value of p[0..n), or n when all are finite. */
static size_t first_nonfinite(const float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return i;
    return n;
}

/* Refuses (with a message naming the tensor) a model whose parameters hold a
 * NaN or an infinity: the checksum only says the bytes are the ones written. */
static int check_finite(const dp_model *m, const float *p, const char *what, const char *path,
                        char *errbuf)
{
    size_t i = first_nonfinite(p, m->nparams);
    if (i == m->nparams)
        return 0;
    const char *tname = "?";
    for (int k = 0; k < m->ntensors; k++)
        if (i >= m->t[k].offset && i < m->t[k].offset + m->t[k].numel)
            tname = m->t[k].name;
    return dp_err(errbuf, "%s: %s %s holds %s at element %zu: the model is unusable", path, what, tname,
                  isnan(p[i]) ? "NaN" : "an infinity", i);
}

/* 0 when an architecture's parameters fit in a file of len bytes (checked
 * before anything is allocated for them), else -1 with a message. */
static int params_fit(const dp_arch *a, size_t len, const char *path, char *errbuf)
{
    dp_model probe;
    memset(&probe, 0, sizeof probe);
    probe.arch = *a;
    if (layout(&probe, errbuf, path) != 0)
        return -1;
    if (probe.nparams > len / sizeof(float))
        return dp_err(errbuf, "%s: the header's architecture needs %zu parameters, more than the file's %zu bytes hold",
                      path, probe.nparams, len);
    return 0;
}

/* Version 2's header fields after train_samples. */
typedef struct v2_header {
    int input;
    uint32_t mask;
    dp_flowcfg flow;
} v2_header;

static void read_v2_header(rbuf *r, v2_header *v, dp_arch *a)
{
    v->input = r_i32(r);
    v->mask = (uint32_t)r_uint(r, 4);
    v->flow.npackets = r_i32(r);
    v->flow.payload_bytes = r_i32(r);
    v->flow.groups = (uint32_t)r_uint(r, 4);
    v->flow.mask = v->mask;
    for (int i = 0; i < 8; i++)
        a->ext[i] = (int)(int32_t)(uint32_t)r_uint(r, 4);
}

/* Checks the input kind, mask and flow configuration against the
 * architecture and sets them on m. */
static int apply_v2_header(dp_model *m, const v2_header *v, const char *path, char *errbuf)
{
    if (v->mask & ~(uint32_t)DP_MASK_ALL)
        return dp_err(errbuf, "%s: unknown field mask bits 0x%x (corrupt file)", path, v->mask);
    int flow_kind = m->arch.kind == DP_MODEL_GBT || m->arch.kind == DP_MODEL_FLOW;
    if (v->input == DP_INPUT_PACKET) {
        if (flow_kind || m->arch.in_len != DP_VEC_LEN || v->flow.npackets || v->flow.payload_bytes ||
            v->flow.groups)
            return dp_err(errbuf, "%s: a %s model on packet vectors of %d bytes (corrupt file)", path,
                          dp_model_kind_name(m), m->arch.in_len);
        dp_model_set_mask(m, v->mask);
        return 0;
    }
    if (v->input != DP_INPUT_FLOW || m->arch.kind == DP_MODEL_CNN)
        return dp_err(errbuf, "%s: bad input kind %d for a %s model (corrupt file)", path, v->input,
                      dp_model_kind_name(m));
    char eb[DP_ERRBUF_SIZE];
    if (dp_model_set_flowcfg(m, &v->flow, eb) != 0)
        return dp_err(errbuf, "%s: flow configuration: %s", path, eb);
    return 0;
}

static int read_blob(rbuf *r, dp_model *m, const char *path, char *errbuf)
{
    uint64_t n = r_uint(r, 8);
    const uint8_t *b = r->bad || n > r->n - r->pos ? NULL : r_bytes(r, (size_t)n);
    if (!b) {
        r->bad = 1;
        return dp_err(errbuf, "%s: truncated model blob", path);
    }
    if (n && m->arch.kind != DP_MODEL_GBT)
        return dp_err(errbuf, "%s: a %s model with a %llu-byte blob (corrupt file)", path, dp_model_kind_name(m),
                      (unsigned long long)n);
    return dp_model_set_blob(m, b, (size_t)n, errbuf);
}

static dp_model *load_any(const char *path, int ckpt, dp_train_state *st, char *errbuf)
{
    size_t len;
    char eb[DP_ERRBUF_SIZE];
    uint8_t *buf = (uint8_t *)dp_read_file(path, &len, eb);
    if (!buf) {
        dp_err(errbuf, "%s", eb);
        return NULL;
    }
    dp_model *m = NULL;
    const char *want = ckpt ? MAGIC_CKPT : MAGIC_MODEL;
    if (len < 8 || memcmp(buf, want, 8) != 0) {
        if (len >= 8 && memcmp(buf, ckpt ? MAGIC_MODEL : MAGIC_CKPT, 8) == 0)
            dp_err(errbuf, "%s: is a %s, not a %s", path, ckpt ? "model file" : "training checkpoint",
                   ckpt ? "training checkpoint" : "model file");
        else if (len < 8)
            dp_err(errbuf, "%s: truncated model file (%zu bytes)", path, len);
        else
            dp_err(errbuf, "%s: not a deeppacket model file (bad magic)", path);
        goto out;
    }
    if (len < 12 + 8) {
        dp_err(errbuf, "%s: truncated model file (%zu bytes)", path, len);
        goto out;
    }
    uint32_t ver = (uint32_t)buf[8] | (uint32_t)buf[9] << 8 | (uint32_t)buf[10] << 16 | (uint32_t)buf[11] << 24;
    if (ver != 1 && ver != FORMAT_VERSION) {
        dp_err(errbuf, "%s: unsupported %s version %u (this program reads versions 1 and %u)", path,
               ckpt ? "checkpoint" : "model file", ver, FORMAT_VERSION);
        goto out;
    }
    uint64_t want_h = 0;
    for (int i = 0; i < 8; i++)
        want_h |= (uint64_t)buf[len - 8 + i] << (8 * i);
    if (dp_fnv1a(buf, len - 8, DP_FNV_INIT) != want_h) {
        dp_err(errbuf, "%s: checksum mismatch: the model file is truncated or corrupt", path);
        goto out;
    }
    rbuf r = {buf, len - 8, 12, 0};
    dp_arch a;
    memset(&a, 0, sizeof a);
    a.kind = r_i32(&r);
    int task = r_i32(&r);
    a.nclasses = r_i32(&r);
    a.in_len = r_i32(&r);
    a.c1 = r_i32(&r), a.k1 = r_i32(&r), a.s1 = r_i32(&r);
    a.c2 = r_i32(&r), a.k2 = r_i32(&r), a.s2 = r_i32(&r);
    a.pool = r_i32(&r);
    a.nhidden = r_i32(&r);
    for (int i = 0; i < DP_MODEL_MAX_HIDDEN; i++)
        a.hidden[i] = r_i32(&r);
    a.dropout = r_f32(&r);
    dp_hparams h;
    memset(&h, 0, sizeof h);
    h.epochs = r_i32(&r), h.batch = r_i32(&r), h.patience = r_i32(&r);
    h.pretrain_epochs = r_i32(&r), h.threads = r_i32(&r), h.epochs_run = r_i32(&r);
    h.lr = r_f32(&r), h.beta1 = r_f32(&r), h.beta2 = r_f32(&r), h.eps = r_f32(&r);
    h.validation = r_f32(&r), h.final_loss = r_f32(&r);
    h.seed = r_uint(&r, 8), h.train_samples = r_uint(&r, 8);
    v2_header v2 = {0};
    if (ver >= 2)
        read_v2_header(&r, &v2, &a);
    if (r.bad || a.nclasses < 1 || a.nclasses > DP_MAX_CLASSES) {
        dp_err(errbuf, "%s: corrupt model header", path);
        goto out;
    }
    char *names[DP_MAX_CLASSES] = {0};
    int names_ok = 1;
    for (int c = 0; c < a.nclasses && names_ok; c++) {
        size_t n = (size_t)r_uint(&r, 2);
        const uint8_t *s = r_bytes(&r, n);
        if (!s || !(names[c] = strndup((const char *)s, n)))
            names_ok = 0;
    }
    if (names_ok && params_fit(&a, len, path, errbuf) != 0) {
        names_ok = -1;
    } else if (names_ok) {
        char src[DP_ERRBUF_SIZE / 2];
        snprintf(src, sizeof src, "%s", path);
        m = model_alloc(&a, task, names, errbuf, src);
    } else if (!names_ok) {
        dp_err(errbuf, "%s: corrupt class names", path);
    }
    for (int c = 0; c < DP_MAX_CLASSES; c++)
        free(names[c]);
    if (!m)
        goto out;
    m->hp = h;
    if (apply_v2_header(m, &v2, path, errbuf) != 0)
        goto fail;
    int nt = r_i32(&r);
    int table_ok = !r.bad && nt == m->ntensors;
    for (int i = 0; table_ok && i < nt; i++) {
        const dp_tdesc *t = &m->t[i];
        size_t n = (size_t)r_uint(&r, 2);
        const uint8_t *s = r_bytes(&r, n);
        if (!s || n != strlen(t->name) || memcmp(s, t->name, n) != 0) {
            table_ok = 0;
            break;
        }
        int nd = r_i32(&r);
        if (nd != t->ndim) {
            table_ok = 0;
            break;
        }
        for (int k = 0; k < nd; k++)
            if (r_i32(&r) != t->shape[k])
                table_ok = 0;
        if (r_uint(&r, 8) != t->offset || r_uint(&r, 8) != t->numel)
            table_ok = 0;
    }
    if (!table_ok || r.bad || r_uint(&r, 8) != m->nparams) {
        dp_err(errbuf, "%s: tensor table does not match the architecture (corrupt file)", path);
        goto fail;
    }
    if (r_floats(&r, m->params, m->nparams) != 0) {
        dp_err(errbuf, "%s: truncated parameter data", path);
        goto fail;
    }
    if (check_finite(m, m->params, "tensor", path, errbuf) != 0)
        goto fail;
    if (ver >= 2 && read_blob(&r, m, path, errbuf) != 0)
        goto fail;
    if (m->arch.kind == DP_MODEL_GBT && !m->blob_len) {
        dp_err(errbuf, "%s: a gbt model without its booster (corrupt file)", path);
        goto fail;
    }
    if (m->arch.kind == DP_MODEL_GBT &&
        !(m->gbt = dp_gbt_load(m->blob, m->blob_len, m->arch.in_len, m->arch.nclasses, path, errbuf)))
        goto fail;
    if (ckpt) {
        if (r_uint(&r, 4)) {
            if (ensure_adam(m, errbuf) != 0)
                goto fail;
            r_floats(&r, m->adam_m, m->nparams);
            r_floats(&r, m->adam_v, m->nparams);
        }
        m->adam_t = r_i32(&r);
        memset(st, 0, sizeof *st);
        st->epoch = r_i32(&r);
        st->bad_epochs = r_i32(&r);
        st->best_loss = r_f32(&r);
        st->phase = r_i32(&r);
        for (int i = 0; i < 4; i++)
            st->rng.s[i] = r_uint(&r, 8);
        st->has_best = r_i32(&r);
        if (st->has_best && !r.bad) {
            st->best_params = malloc(m->nparams * sizeof(float));
            if (!st->best_params) {
                dp_err(errbuf, "%s: out of memory", path);
                goto fail;
            }
            r_floats(&r, st->best_params, m->nparams);
        }
        if (ver >= 2) {
            st->has_data = 1;
            st->data_rows = r_uint(&r, 8);
            st->data_fp = r_uint(&r, 8);
        }
        if (r.bad) {
            free(st->best_params);
            st->best_params = NULL;
            dp_err(errbuf, "%s: truncated training state", path);
            goto fail;
        }
        if ((m->adam_m && (check_finite(m, m->adam_m, "Adam moment of", path, errbuf) != 0 ||
                           check_finite(m, m->adam_v, "Adam moment of", path, errbuf) != 0)) ||
            (st->best_params && check_finite(m, st->best_params, "best tensor", path, errbuf) != 0)) {
            free(st->best_params);
            st->best_params = NULL;
            goto fail;
        }
    }
    if (r.pos != r.n) {
        if (ckpt) {
            free(st->best_params);
            st->best_params = NULL;
        }
        dp_err(errbuf, "%s: %zu unexpected trailing bytes", path, r.n - r.pos);
        goto fail;
    }
    goto out;
fail:
    dp_model_free(m);
    m = NULL;
out:
    free(buf);
    return m;
}

dp_model *dp_model_load(const char *path, char *errbuf)
{
    return load_any(path, 0, NULL, errbuf);
}

dp_model *dp_model_load_checkpoint(const char *path, dp_train_state *st, char *errbuf)
{
    return load_any(path, 1, st, errbuf);
}
