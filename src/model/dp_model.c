/* dp_model: CNN, SAE and flow NN built from the dp_nn layers (layout, init,
 * forward, predict); the training side (loss, backward, Adam) is
 * dp_model_train.c, the file format dp_model_file.c. See dp_model.h. */
#include "model/dp_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/dp_gbt.h"
#include "model/dp_model_impl.h"
#include "model/dp_model_train.h"
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
    h->balance = -1;
}

/* The architecture's own checks (kinds, widths, lengths), before any layout. */
static int check_arch(const dp_arch *a, char *errbuf, const char *src)
{
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
    if (a->kind == DP_MODEL_GBT)
        return 0;
    if (a->nhidden < 1 || a->nhidden > DP_MODEL_MAX_HIDDEN)
        return dp_err(errbuf, "%s: bad hidden layer count %d", src, a->nhidden);
    if (!(a->dropout >= 0 && a->dropout < 1))
        return dp_err(errbuf, "%s: bad dropout %g", src, a->dropout);
    for (int i = 0; i < a->nhidden; i++)
        if (a->hidden[i] < 1 || a->hidden[i] > (1 << 20))
            return dp_err(errbuf, "%s: bad hidden width %d", src, a->hidden[i]);
    if (a->kind == DP_MODEL_CNN &&
        (a->c1 < 1 || a->c2 < 1 || a->k1 < 1 || a->k2 < 1 || a->s1 < 1 || a->s2 < 1 || a->pool < 1 ||
         a->c1 > 4096 || a->c2 > 4096 || a->k1 > 64 || a->k2 > 64 || a->s1 > 64 || a->s2 > 64 || a->pool > 64))
        return dp_err(errbuf, "%s: bad convolution parameters", src);
    return 0;
}

/* Appends tensor `nm` [s0, s1, s2] (nd dims shown) at *off floats. */
static void add_tensor(dp_model *m, size_t *off, const char *nm, int nd, int s0, int s1, int s2, size_t fan)
{
    dp_tdesc *t = &m->t[m->ntensors++];
    snprintf(t->name, sizeof t->name, "%s", nm);
    t->ndim = nd;
    t->shape[0] = s0, t->shape[1] = s1, t->shape[2] = s2, t->shape[3] = 1;
    t->numel = (size_t)s0 * (size_t)s1 * (size_t)s2;
    t->offset = *off;
    t->fan_in = fan;
    *off += t->numel;
}

/* The fully connected stack from `in` inputs: fc1..fcH, then out. */
static void add_fc_stack(dp_model *m, size_t *off, int in)
{
    const dp_arch *a = &m->arch;
    m->flat = in;
    m->nfc = a->nhidden + 1;
    for (int i = 0; i < m->nfc; i++) {
        int out = i < a->nhidden ? a->hidden[i] : a->nclasses;
        char nw[32], nb[32];
        snprintf(nw, sizeof nw, "fc%d.weight", i + 1);
        snprintf(nb, sizeof nb, "fc%d.bias", i + 1);
        if (i == a->nhidden) {
            snprintf(nw, sizeof nw, "out.weight");
            snprintf(nb, sizeof nb, "out.bias");
        }
        add_tensor(m, off, nw, 2, out, in, 1, (size_t)in);
        add_tensor(m, off, nb, 1, out, 1, 1, (size_t)in);
        m->fin[i] = in;
        m->fout[i] = out;
        in = out;
    }
}

/* Checks the architecture and lays out the tensor table. */
int dp_model_layout(dp_model *m, char *errbuf, const char *src)
{
    const dp_arch *a = &m->arch;
    if (check_arch(a, errbuf, src) != 0)
        return -1;
    if (a->kind == DP_MODEL_GBT) {
        m->ntensors = 0, m->nparams = 0, m->nfc = 0, m->flat = a->in_len;
        return 0;
    }
    m->ntensors = 0;
    size_t off = 0;
    int in = a->in_len;
    if (a->kind == DP_MODEL_CNN) {
        m->L1 = dp_conv1d_out_len(a->in_len, a->k1, a->s1);
        m->L2 = m->L1 ? dp_conv1d_out_len(m->L1, a->k2, a->s2) : 0;
        m->L3 = m->L2 / a->pool;
        if (m->L3 < 1)
            return dp_err(errbuf, "%s: convolutions leave no output", src);
        add_tensor(m, &off, "conv1.weight", 3, a->c1, 1, a->k1, (size_t)a->k1);
        add_tensor(m, &off, "conv1.bias", 1, a->c1, 1, 1, (size_t)a->k1);
        add_tensor(m, &off, "conv2.weight", 3, a->c2, a->c1, a->k2, (size_t)a->c1 * a->k2);
        add_tensor(m, &off, "conv2.bias", 1, a->c2, 1, 1, (size_t)a->c1 * a->k2);
        in = a->c2 * m->L3;
    } else if (a->kind == DP_MODEL_FLOW) {
        const char *fn[6];
        int fs[6][3], fd[6];
        size_t ff[6];
        int nf = dp_flow_tensors(a, fn, fs, fd, ff);
        for (int i = 0; i < nf; i++)
            add_tensor(m, &off, fn[i], fd[i], fs[i][0], fs[i][1], fs[i][2], ff[i]);
        in = dp_flow_flat(a);
    }
    add_fc_stack(m, &off, in);
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

void dp_model_set_views(dp_model *m)
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

dp_model *dp_model_alloc(const dp_arch *a, int task, char *const *names, char *errbuf, const char *src)
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
    if (dp_model_layout(m, errbuf, src) != 0) {
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
        if (!(m->names[c] = strdup(names && names[c] ? names[c] : ""))) {
            /* a model with a class name missing would test and save wrong */
            dp_err(errbuf, "%s: out of memory (class names)", src);
            while (c-- > 0)
                free(m->names[c]);
            free(m->params);
            free(m);
            return NULL;
        }
    dp_model_set_views(m);
    return m;
}

dp_model *dp_model_create(const dp_arch *a, int task, char *const *names, uint64_t seed, char *errbuf)
{
    dp_model *m = dp_model_alloc(a, task, names, errbuf, "model");
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

void dp_model_load_input(dp_model *m, const uint8_t *x, const float *xf, int B)
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

/* Dropout of hidden layer i for dp_model_forward_rows: row b's mask from
 * its own rng, seeded with a hash of (key, row0 + b, i). */
static void keyed_dropout(dp_model *m, int i, int B)
{
    size_t w = (size_t)m->fout[i];
    for (int b = 0; b < B; b++) {
        uint64_t row = m->drop_row0 + (uint64_t)b, h[3] = {m->drop_key, row, (uint64_t)i};
        dp_rng r;
        dp_rng_seed(&r, dp_fnv1a(h, sizeof h, DP_FNV_INIT));
        float *p = m->pre[i] + (size_t)b * w;
        dp_dropout_forward(p, m->mask[i] + (size_t)b * w, p, w, m->arch.dropout, &r);
    }
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
        if (train && a->dropout > 0 && m->drop_keyed)
            keyed_dropout(m, i, B);
        else if (train && a->dropout > 0)
            dp_dropout_forward(m->pre[i], m->mask[i], m->pre[i], n, a->dropout, rng);
        dp_relu_forward(m->act[i], m->pre[i], n);
        in = m->act[i];
    }
}

const float *dp_model_fc_input(dp_model *m)
{
    if (m->arch.kind == DP_MODEL_FLOW)
        return dp_flow_nlayers(&m->arch) == 0 ? m->x : m->arch.ext[4] > 0 ? m->cv : m->e;
    return m->arch.kind == DP_MODEL_CNN ? m->pool : m->x;
}

void dp_model_conv_forward(dp_model *m, int B)
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
    dp_model_load_input(m, x, xf, B);
    if (m->arch.kind == DP_MODEL_CNN)
        dp_model_conv_forward(m, B);
    else if (m->arch.kind == DP_MODEL_FLOW)
        dp_flow_forward(m, B);
    dp_model_fc_forward(m, dp_model_fc_input(m), B, 0, m->nfc - 1, train, rng);
    m->last_B = B;
    m->last_train = train && m->arch.dropout > 0;
    return m->pre[m->nfc - 1];
}

const float *dp_model_forward_rows(dp_model *m, const uint8_t *x, const float *xf, int B, uint64_t key,
                                   uint64_t row0, char *errbuf)
{
    m->drop_keyed = 1;
    m->drop_key = key;
    m->drop_row0 = row0;
    const float *r = dp_model_forward(m, x, xf, B, 1, NULL, errbuf);
    m->drop_keyed = 0;
    return r;
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
const char *dp_model_kind_str(int kind)
{
    static const char *const names[] = {"cnn", "sae", "flow", "gbt"};
    return kind >= 0 && kind < 4 ? names[kind] : "?";
}
const char *dp_model_kind_name(const dp_model *m) { return dp_model_kind_str(m->arch.kind); }
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

/* 0 when the n log-probabilities are numbers, else -1 + message: weights
 * that are finite but huge (a corrupt or hostile file passes the loader's
 * NaN check) overflow to NaN, which would be reported as a verdict. */
static int check_finite(const float *logprobs, size_t n, char *errbuf)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(logprobs[i]))
            return dp_err(errbuf, "model: its output %g is not a number: its weights overflow (a corrupt "
                          "model file?); no verdict given", (double)logprobs[i]);
    return 0;
}

int dp_model_set_precision(dp_model *m, int prec, char *errbuf)
{
    if ((prec = dp_nn_precision_resolve(prec, errbuf)) < 0)
        return -1;
    m->prec = prec;
    return 0;
}

int dp_model_precision(const dp_model *m) { return m->prec; }

/* dp_model_predict's chunks, on the calling thread in the model's precision. */
static int predict_vectors(dp_model *m, const uint8_t *vectors, int B, float *logprobs, char *errbuf)
{
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
    return check_finite(logprobs, (size_t)B * V, errbuf);
}

int dp_model_predict(dp_model *m, const uint8_t *vectors, int B, float *logprobs, char *errbuf)
{
    if (B < 1)
        return dp_err(errbuf, "model: predict on %d vectors", B);
    if (m->input != DP_INPUT_PACKET || m->arch.kind == DP_MODEL_FLOW)
        return dp_err(errbuf, "model: a %s flow model classifies flows, not single packets (dp_model_predict_flows)",
                      dp_model_kind_name(m));
    int old = dp_nn_set_thread_precision(m->prec); /* the layers, and the threads they hand work to, read it */
    int rc = predict_vectors(m, vectors, B, logprobs, errbuf);
    dp_nn_set_thread_precision(old);
    return rc;
}

/* dp_model_predict_flows' chunks for a neural model, as predict_vectors. */
static int predict_rows(dp_model *m, const float *xf, int B, float *logprobs, char *errbuf)
{
    int V = m->arch.nclasses;
    for (int done = 0; done < B;) {
        int n = B - done < DP_MODEL_PREDICT_CHUNK ? B - done : DP_MODEL_PREDICT_CHUNK;
        const float *lg = dp_model_forward(m, NULL, xf + (size_t)done * m->arch.in_len, n, 0, NULL, errbuf);
        if (!lg)
            return -1;
        dp_log_softmax(logprobs + (size_t)done * V, lg, n, V);
        done += n;
    }
    return check_finite(logprobs, (size_t)B * V, errbuf);
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
    int old = dp_nn_set_thread_precision(m->prec);
    int rc = predict_rows(m, xf, B, logprobs, errbuf);
    dp_nn_set_thread_precision(old);
    return rc;
}
