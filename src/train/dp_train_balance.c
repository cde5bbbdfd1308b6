/* dp_train_balance: --balance (dp_train.h) and each epoch's row order. */
#include "train/dp_train_impl.h"

#include <stdlib.h>
#include <string.h>

/* Stream constant of --balance undersample's draws: dp_rng(seed ^ this). */
#define DP_TRAIN_UNDER_SALT 0x756e6465722d736dULL

const char *const dp_balance_name[5] = {"none", "undersample", "weight", "sample", "auto"};

int dp_balance_parse(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, dp_balance_name[i]))
            return i;
    return -1;
}

dp_balance dp_train_balance_auto(int kind, const uint64_t *counts, int nclasses)
{
    if (kind == DP_MODEL_GBT)
        return DP_BALANCE_WEIGHT;
    if (kind == DP_MODEL_FLOW)
        return DP_BALANCE_NONE;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int c = 0; c < nclasses; c++)
        if (counts[c]) {
            lo = counts[c] < lo ? counts[c] : lo;
            hi = counts[c] > hi ? counts[c] : hi;
        }
    return hi <= lo ? DP_BALANCE_NONE : DP_BALANCE_SAMPLE;
}

void dp_train_class_weights(const uint64_t *counts, int nclasses, float *w)
{
    uint64_t n = 0;
    int k = 0;
    for (int c = 0; c < nclasses; c++) {
        n += counts[c];
        k += counts[c] > 0;
    }
    for (int c = 0; c < nclasses; c++)
        w[c] = counts[c] ? (float)((double)n / ((double)k * (double)counts[c])) : 0.0f;
}

void dp_train_balanced_draw(dp_rng *r, const uint32_t *rows, const size_t *off, int nclasses, uint32_t *out,
                            size_t n)
{
    int present[DP_MAX_CLASSES], k = 0;
    for (int c = 0; c < nclasses; c++)
        if (off[c + 1] > off[c])
            present[k++] = c;
    if (!k)
        return;
    for (size_t i = 0; i < n; i++) {
        int c = present[dp_rng_below(r, (uint64_t)k)];
        out[i] = rows[off[c] + dp_rng_below(r, off[c + 1] - off[c])];
    }
}

/* Groups the training rows by class (t->byclass, t->off, t->present). */
static int group_by_class(trainer *t, char *errbuf)
{
    int C = t->ss.nclasses;
    size_t pos[DP_MAX_CLASSES];
    memset(t->off, 0, sizeof t->off);
    if (!(t->byclass = malloc(t->ntr * sizeof(uint32_t))))
        return dp_err(errbuf, "%s: out of memory", t->o->train_dir);
    for (size_t i = 0; i < t->ntr; i++)
        t->off[dp_tr_row_label(t, t->tr0[i]) + 1]++;
    t->npresent = 0;
    for (int c = 0; c < C; c++) {
        if (t->off[c + 1])
            t->present[t->npresent++] = c;
        t->off[c + 1] += t->off[c];
    }
    memcpy(pos, t->off, sizeof pos);
    for (size_t i = 0; i < t->ntr; i++)
        t->byclass[pos[dp_tr_row_label(t, t->tr0[i])]++] = t->tr0[i];
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* --balance undersample: every class cut at random to the smallest one's
 * rows; t->tr0 keeps the kept rows in ascending order. */
static void undersample(trainer *t)
{
    size_t cap = SIZE_MAX;
    for (int k = 0; k < t->npresent; k++) {
        int c = t->present[k];
        if (t->off[c + 1] - t->off[c] < cap)
            cap = t->off[c + 1] - t->off[c];
    }
    dp_rng r;
    dp_rng_seed(&r, t->hp.seed ^ DP_TRAIN_UNDER_SALT);
    size_t n = 0;
    for (int k = 0; k < t->npresent; k++) {
        int c = t->present[k];
        uint32_t *a = t->byclass + t->off[c];
        size_t nc = t->off[c + 1] - t->off[c];
        for (size_t j = 0; j < cap && nc > cap; j++) {
            size_t x = j + (size_t)dp_rng_below(&r, nc - j);
            uint32_t tmp = a[j];
            a[j] = a[x];
            a[x] = tmp;
        }
        memcpy(t->tr0 + n, a, cap * sizeof(uint32_t));
        n += cap;
    }
    qsort(t->tr0, n, sizeof(uint32_t), cmp_u32);
    t->ntr = n;
}

/* Applies o->balance to the training rows made by make_index (auto
 * resolved on their class counts); the mode used goes to t->hp.balance. */
int dp_tr_apply_balance(trainer *t, char *errbuf)
{
    dp_balance b = t->o->balance;
    if (b != DP_BALANCE_NONE && group_by_class(t, errbuf) != 0)
        return -1;
    uint64_t counts[DP_MAX_CLASSES] = {0};
    for (int c = 0; b != DP_BALANCE_NONE && c < t->ss.nclasses; c++)
        counts[c] = t->off[c + 1] - t->off[c];
    if (b == DP_BALANCE_AUTO)
        b = dp_train_balance_auto(dp_model_arch(t->m)->kind, counts, t->ss.nclasses);
    if (t->o->resume && t->ckpt_balance >= 0 && (int)b != t->ckpt_balance)
        return dp_err(errbuf, "%s: cannot resume with balance %s: the checkpoint's run used balance %s (resume "
                      "with --balance %s, or train without --resume)", t->ckpt, dp_balance_name[b],
                      dp_balance_name[t->ckpt_balance], dp_balance_name[t->ckpt_balance]);
    t->hp.balance = (int)b;
    if (b == DP_BALANCE_UNDERSAMPLE)
        undersample(t);
    if (b == DP_BALANCE_WEIGHT) {
        dp_train_class_weights(counts, t->ss.nclasses, t->cw);
        dp_model_set_class_weights(t->m, t->cw);
    }
    return 0;
}

/* The rows of the next epoch in t->tr, from the training rng: the ascending
 * training index shuffled, or (--balance sample) ntr class-balanced draws
 * with replacement. The order of an epoch only depends on the rng state at
 * its start, which the checkpoint holds. */
void dp_tr_epoch_order(trainer *t)
{
    if (t->hp.balance == DP_BALANCE_SAMPLE) {
        dp_train_balanced_draw(&t->st.rng, t->byclass, t->off, t->ss.nclasses, t->tr, t->ntr);
        return;
    }
    memcpy(t->tr, t->tr0, t->ntr * sizeof(uint32_t));
    dp_rng_shuffle_u32(&t->st.rng, t->tr, t->ntr);
}
