/* dp_train_sae: the SAE's greedy layer-wise pre-training; see dp_train_impl.h. */
#include "train/dp_train_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/dp_nn.h"

/* ---- SAE greedy layer-wise pre-training ---------------------------------------
 * Hidden layer L as an autoencoder on the outputs of layers 0..L-1 (eval
 * mode): encoder = the model's fc(L) + ReLU, decoder = a temporary Linear
 * back to the input width; MSE reconstruction loss; Adam with the training
 * hyper-parameters; hp.pretrain_epochs epochs per layer; no dropout. */
/* The input of SAE layer L for the gathered batch: the scaled bytes
 * (L = 0) or the eval-mode activations of layer L - 1, into inp [nb, in]. */
static int layer_input(trainer *t, int L, int nb, int in, float *inp, char *errbuf)
{
    if (L == 0) {
        for (size_t i = 0; i < (size_t)nb * in; i++)
            inp[i] = (float)t->xb[i] * (1.0f / 255.0f);
        return 0;
    }
    const float *p = dp_model_hidden(t->m, t->xb, nb, L - 1, errbuf);
    if (!p)
        return -1;
    memcpy(inp, p, sizeof(float) * (size_t)nb * in);
    return 0;
}

/* The autoencoder of SAE pre-training layer L: the model's fc(L) as the encoder, a
 * temporary decoder back to the layer's input width, the Adam moments of
 * both and the batch buffers. */
typedef struct sae_ae {
    int L, in, h, tstep;
    size_t ne, nd;            /* encoder (W, b) and decoder floats */
    float *W, *b, *dW, *db;   /* in the model's parameters and gradients */
    float *dec, *ddec, *me, *ve, *md, *vd;
    float *inp, *hid, *rec, *drec, *dhid;
} sae_ae;

static void ae_free(sae_ae *a)
{
    free(a->dec), free(a->ddec), free(a->me), free(a->ve), free(a->md), free(a->vd);
    free(a->inp), free(a->hid), free(a->rec), free(a->drec), free(a->dhid);
}

/* Allocates the ae of layer L and draws the decoder's initialisation from
 * the training rng (the same draws on every rank). 0, or -1 + message. */
static int ae_init(trainer *t, int L, sae_ae *a, char *errbuf)
{
    memset(a, 0, sizeof *a);
    a->L = L;
    dp_model_fc(t->m, L, &a->W, &a->b, &a->dW, &a->db, &a->in, &a->h);
    int in = a->in, h = a->h;
    a->ne = (size_t)in * h + h, a->nd = (size_t)h * in + in;
    if (a->b != a->W + (size_t)in * h || a->db != a->dW + (size_t)in * h)
        return dp_err(errbuf, "internal: fc%d weight and bias not adjacent", L + 1);
    size_t B = (size_t)t->hp.batch;
    a->dec = calloc(a->nd, sizeof(float)), a->ddec = calloc(a->nd, sizeof(float));
    a->me = calloc(a->ne, sizeof(float)), a->ve = calloc(a->ne, sizeof(float));
    a->md = calloc(a->nd, sizeof(float)), a->vd = calloc(a->nd, sizeof(float));
    a->inp = calloc(B * in, sizeof(float)), a->hid = calloc(B * h, sizeof(float));
    a->rec = calloc(B * in, sizeof(float)), a->drec = calloc(B * in, sizeof(float));
    a->dhid = calloc(B * h, sizeof(float));
    if (!a->dec || !a->ddec || !a->me || !a->ve || !a->md || !a->vd || !a->inp || !a->hid || !a->rec || !a->drec ||
        !a->dhid)
        return dp_err(errbuf, "out of memory for pre-training layer %d", L + 1);
    float bound = (float)(1.0 / sqrt((double)h));
    dp_init_uniform(a->dec, (size_t)h * in, bound, &t->st.rng);
    dp_init_uniform(a->dec + (size_t)h * in, (size_t)in, bound, &t->st.rng);
    return 0;
}

/* The forward pass of the ae on nb gathered rows: *loss, the MSE of the
 * reconstruction. 0, or -1 + message. */
static int ae_forward(trainer *t, sae_ae *a, int nb, float *loss, char *errbuf)
{
    if (layer_input(t, a->L, nb, a->in, a->inp, errbuf) != 0)
        return -1;
    float *Wd = a->dec, *bd = a->dec + (size_t)a->h * a->in;
    dp_linear_forward(a->hid, a->inp, a->W, a->b, nb, a->in, a->h);
    dp_relu_forward(a->hid, a->hid, (size_t)nb * a->h);
    dp_linear_forward(a->rec, a->hid, Wd, bd, nb, a->h, a->in);
    *loss = dp_mse_forward(a->rec, a->inp, (size_t)nb * a->in);
    return 0;
}

/* Backpropagates the ae's MSE on nb rows into dW, db (the model's
 * gradients) and ddec. */
static void ae_backward(sae_ae *a, int nb)
{
    size_t nin = (size_t)nb * a->in;
    float *Wd = a->dec, *dWd = a->ddec, *dbd = a->ddec + (size_t)a->h * a->in;
    dp_mse_backward(a->drec, a->rec, a->inp, nin);
    dp_linear_backward(a->dhid, dWd, dbd, a->drec, a->hid, Wd, nb, a->h, a->in);
    dp_relu_backward(a->dhid, a->dhid, a->hid, (size_t)nb * a->h);
    dp_linear_backward(NULL, a->dW, a->db, a->dhid, a->inp, a->W, nb, a->in, a->h);
}

/* One pre-training step on the global batch rows idx[0..nb): this rank's
 * slice through the ae, the statistics and gradients summed over the ranks,
 * one Adam step of encoder and decoder. *loss: the batch's MSE. */
static int pretrain_step(trainer *t, sae_ae *a, const uint32_t *idx, int nb, long step, float *loss, char *errbuf)
{
    size_t lo, hi;
    dp_tr_rank_slice(t, (size_t)nb, &lo, &hi);
    int n = (int)(hi - lo);
    double st[3] = {0, 0, 1}; /* MSE * rows, rows, ok */
    memset(a->ddec, 0, a->nd * sizeof(float));
    memset(a->dW, 0, a->ne * sizeof(float));
    if (n > 0) {
        dp_tr_gather(t, idx + lo, (size_t)n);
        st[2] = ae_forward(t, a, n, loss, errbuf) == 0;
        st[0] = (double)*loss * n, st[1] = n;
    }
    if (dp_tr_sum_stats(t, st, 3, errbuf) != 0)
        return -1;
    if (t->size > 1)
        *loss = (float)(st[0] / st[1]);
    if (!isfinite(*loss) || *loss > DP_TRAIN_MAX_LOSS)
        return dp_tr_diverged(t, *loss, 0, step, errbuf);
    if (n > 0)
        ae_backward(a, n);
    dp_tr_sum_grads(t, a->dW, a->ne, n / st[1]);
    dp_tr_sum_grads(t, a->ddec, a->nd, n / st[1]);
    a->tstep++;
    dp_adam_update(a->W, a->dW, a->me, a->ve, a->ne, t->hp.lr, t->hp.beta1, t->hp.beta2, t->hp.eps, a->tstep);
    dp_adam_update(a->dec, a->ddec, a->md, a->vd, a->nd, t->hp.lr, t->hp.beta1, t->hp.beta2, t->hp.eps, a->tstep);
    return 0;
}

/* Hidden layer L as an autoencoder (see above) for hp.pretrain_epochs
 * epochs. 0, or -1 + message. */
static int pretrain_layer(trainer *t, int L, char *errbuf)
{
    sae_ae a;
    int B = t->hp.batch, nh = dp_model_arch(t->m)->nhidden, rc = ae_init(t, L, &a, errbuf);
    dp_progress pr;
    dp_progress_init(&pr);
    for (int e = 0; rc == 0 && e < t->hp.pretrain_epochs; e++) {
        dp_tr_epoch_order(t);
        double sl = 0, t0 = dp_now();
        for (size_t s = 0; rc == 0 && s < t->ntr; s += (size_t)B) {
            int nb = (int)(t->ntr - s < (size_t)B ? t->ntr - s : (size_t)B);
            float loss = 0;
            if ((rc = pretrain_step(t, &a, t->tr + s, nb, (long)(s / B), &loss, errbuf)) != 0)
                break;
            sl += (double)loss * nb;
            rc = dp_tr_note_curve(t, L + 1, e + 1, (long)(s / B) + 1, loss, errbuf);
            if (!t->o->quiet && dp_progress_due(&pr))
                dp_progress_print(&pr, "pre-train layer %d/%d epoch %d/%d step %zu/%zu mse %.5f", L + 1, nh, e + 1,
                                  t->hp.pretrain_epochs, s / B + 1, (t->ntr + B - 1) / B, sl / (double)(s + nb));
        }
        if (rc == 0 && !t->o->quiet) {
            dp_progress_done(&pr);
            fprintf(stderr, "pre-train layer %d/%d epoch %d/%d: mse %.6f, %.0f samples/s\n", L + 1, nh, e + 1,
                    t->hp.pretrain_epochs, sl / (double)t->ntr, (double)t->ntr / fmax(dp_now() - t0, 1e-9));
        }
    }
    ae_free(&a);
    return rc;
}

/* SAE on packets, before the first epoch: greedy pre-training, one
 * checkpoint per layer (a resumed run continues at its layer). */
int dp_tr_pretrain_sae(trainer *t, char *errbuf)
{
    const dp_arch *arch = dp_model_arch(t->m);
    if (arch->kind != DP_MODEL_SAE || t->flows || t->st.epoch != 0)
        return 0;
    while (t->st.phase < arch->nhidden && t->hp.pretrain_epochs > 0) {
        if (pretrain_layer(t, t->st.phase, errbuf) != 0)
            return -1;
        t->st.phase++;
        dp_tr_sync_ranks(t);
        if (dp_tr_save_ckpt(t, errbuf) != 0)
            return -1;
    }
    return 0;
}
