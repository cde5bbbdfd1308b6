/* dp_model_train: the training side of dp_model (dp_model_train.h): the
 * SAE's hidden activations, the loss, backward, the gradient buffer and
 * Adam. The forward pass and the layout are dp_model.c. */
#include "model/dp_model_train.h"

#include <stdlib.h>
#include <string.h>

#include "model/dp_model_impl.h"
#include "nn/dp_nn.h"

static void *calloc_at_least1(size_t n, size_t sz)
{
    return calloc(n ? n : 1, sz);
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
    dp_model_load_input(m, x, NULL, B);
    if (m->arch.kind == DP_MODEL_CNN)
        dp_model_conv_forward(m, B);
    dp_model_fc_forward(m, dp_model_fc_input(m), B, 0, layer, 0, NULL);
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
    m->grads = calloc_at_least1(m->nparams, sizeof(float));
    if (!m->grads)
        return dp_err(errbuf, "model: out of memory for gradients");
    dp_model_set_views(m);
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
        const float *in = i > 0 ? m->act[i - 1] : dp_model_fc_input(m);
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

int dp_model_ensure_adam(dp_model *m, char *errbuf)
{
    if (m->adam_m)
        return 0;
    m->adam_m = calloc_at_least1(m->nparams, sizeof(float));
    m->adam_v = calloc_at_least1(m->nparams, sizeof(float));
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
    if (dp_model_ensure_adam(m, errbuf) != 0 || ensure_grads(m, errbuf) != 0)
        return -1;
    m->adam_t++;
    m->gen++;
    dp_adam_update(m->params, m->grads, m->adam_m, m->adam_v, m->nparams, lr, b1, b2, eps, m->adam_t);
    return 0;
}

float *dp_model_adam_m(dp_model *m)
{
    dp_model_ensure_adam(m, NULL);
    return m->adam_m;
}
float *dp_model_adam_v(dp_model *m)
{
    dp_model_ensure_adam(m, NULL);
    return m->adam_v;
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
