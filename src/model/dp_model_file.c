/* dp_model_file: the model file format (save, load, checkpoint); the
 * compute code is in dp_model.c. docs/model-format.md says the same in
 * tables, with the messages the loader gives.
 *
 * On-disk layout. All integers little-endian (u16/u32/u64 unsigned, i32
 * two's complement), f32 IEEE-754 binary32 little-endian; a string is a u16
 * length then that many bytes, no terminator. Rows marked [v2] are absent
 * from version-1 files, rows marked [v3] from version-1 and -2 files.
 *
 *  1. magic          8 bytes   "DPMODEL\0" (a model) or "DPCKPT\0\0" (a checkpoint)
 *  2. version        u32       3 (versions 1 and 2 are read too; this program writes 3)
 *  3. kind           u32       0 CNN, 1 SAE, 2 FLOW (the flow NN), 3 GBT
 *  4. task           u32       0 app, 1 traffic
 *  5. nclasses       u32       1..DP_MAX_CLASSES
 *  6. in_len         u32       1500 for packet models; N x F for flow models
 *  7. c1, k1, s1     u32 x3    conv1 filters, kernel, stride (0 when none)
 *  8. c2, k2, s2     u32 x3    conv2
 *  9. pool           u32       max-pool size
 * 10. nhidden        u32       hidden fully connected layers
 * 11. hidden[8]      u32 x8    their widths (unused entries 0)
 * 12. dropout        f32
 * 13. epochs, batch, patience, pretrain_epochs, threads, epochs_run   u32 x6
 * 14. lr, beta1, beta2, eps   f32 x4   (Adam)
 * 15. validation, final_loss  f32 x2
 * 16. seed, train_samples     u64 x2
 * 17. input [v2]     u32       0 packet vectors, 1 flow rows
 * 18. mask [v2]      u32       dp_mask field bits
 * 19. flow_packets, flow_payload, flow_groups [v2]   u32 x3 (0 for packet models)
 * 20. ext[8] [v2]    i32 x8    kind-specific (flow NN: ext[0] N, ext[1] F, ...)
 * 20b. balance [v3]  i32       class balancing training used (0 none, 1 undersample,
 *                              2 weight, 3 sample; -1 unknown); read as -1 before v3
 * 21. class names    nclasses x string
 * 22. ntensors       u32
 * 23. tensor table   ntensors x (string name, u32 ndim, u32 shape[ndim],
 *                    u64 offset, u64 numel); offsets in floats; it must be
 *                    exactly the table the architecture implies
 * 24. nparams        u64
 * 25. data           nparams x f32 (the flat parameter buffer; GBT: none)
 * 26. blob_len [v2]  u64       0 except for a GBT
 * 27. blob [v2]      blob_len bytes (GBT: the XGBoost booster, UBJSON)
 *     a checkpoint then has its training state (28-38); a model goes to 39:
 * 28. has_adam       u32
 * 29. adam m, v      2 x nparams x f32 (if has_adam)
 * 30. adam step t    u32
 * 31. epoch          u32       epochs completed
 * 32. bad_epochs     u32       epochs without improvement
 * 33. best_loss      f32       best monitored loss
 * 34. phase          u32       SAE layers pre-trained
 * 35. rng            u64 x4    the training rng (xoshiro256** state)
 * 36. has_best       u32
 * 37. best params    nparams x f32 (if has_best)
 * 38. data_rows, data_fp [v2]   u64 x2: the training set's rows and fingerprint
 * 38b. precision [v4]  i32     the run's (0 fp32, 1 bf16; checkpoints only, version 4:
 *                              read as -1, unknown, before)
 * 39. checksum       u64       FNV-1a 64 (basis DP_FNV_INIT) of every preceding byte
 *
 * Nothing may follow the checksum's payload: trailing bytes are refused.
 * The loader checks, in order: magic, version, checksum, the header's
 * architecture (and that its parameters fit in the file, before anything
 * is allocated), the class names, the v2 fields against the kind, the
 * tensor table, the data, the blob, the training state, trailing bytes;
 * and that every float is finite. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/dp_gbt.h"
#include "model/dp_model.h"
#include "model/dp_model_train.h"
#include "model/dp_model_impl.h"
#include "packet/dp_mask.h"

/* ---- writing ------------------------------------------------------------------- */

#define MAGIC_MODEL "DPMODEL"
#define MAGIC_CKPT "DPCKPT\0"
#define FORMAT_VERSION 3u /* reads 1 (no input kind, mask, flow config, ext, blob), 2 (no
                            * balance) and 3; a checkpoint of version 2 or 3 ends with the
                            * training set's fingerprint */
#define CKPT_VERSION 4u /* checkpoints: version 4 adds the precision after the fingerprint
                          * (field 38b); the model's fields are version 3's */

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
    w_u32(w, (uint32_t)h->balance);
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
    write_model_body(&w, m, MAGIC_CKPT, CKPT_VERSION);
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
    w_u32(&w, (uint32_t)st->precision);
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
    if (dp_model_layout(&probe, errbuf, path) != 0)
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

/* Reads PATH whole and checks its magic (a model or a checkpoint, as
 * asked), version and checksum; returns the bytes (len, *ver set), or NULL
 * + message. */
static uint8_t *read_checked(const char *path, int ckpt, size_t *len, uint32_t *ver, char *errbuf)
{
    char eb[DP_ERRBUF_SIZE];
    uint8_t *buf = (uint8_t *)dp_read_file(path, len, eb);
    if (!buf) {
        dp_err(errbuf, "%s", eb);
        return NULL;
    }
    size_t n = *len;
    const char *want = ckpt ? MAGIC_CKPT : MAGIC_MODEL;
    if (n < 8 || memcmp(buf, want, 8) != 0) {
        if (n >= 8 && memcmp(buf, ckpt ? MAGIC_MODEL : MAGIC_CKPT, 8) == 0)
            dp_err(errbuf, "%s: is a %s, not a %s", path, ckpt ? "model file" : "training checkpoint",
                   ckpt ? "training checkpoint" : "model file");
        else if (n < 8)
            dp_err(errbuf, "%s: truncated model file (%zu bytes)", path, n);
        else
            dp_err(errbuf, "%s: not a deeppacket model file (bad magic)", path);
    } else if (n < 12 + 8) {
        dp_err(errbuf, "%s: truncated model file (%zu bytes)", path, n);
    } else if ((*ver = (uint32_t)buf[8] | (uint32_t)buf[9] << 8 | (uint32_t)buf[10] << 16 |
                       (uint32_t)buf[11] << 24) < 1 ||
               *ver > (ckpt ? CKPT_VERSION : FORMAT_VERSION)) {
        dp_err(errbuf, "%s: unsupported %s version %u (this program reads versions 1 to %u)", path,
               ckpt ? "checkpoint" : "model file", *ver, ckpt ? CKPT_VERSION : FORMAT_VERSION);
    } else {
        uint64_t want_h = 0;
        for (int i = 0; i < 8; i++)
            want_h |= (uint64_t)buf[n - 8 + i] << (8 * i);
        if (dp_fnv1a(buf, n - 8, DP_FNV_INIT) == want_h)
            return buf;
        dp_err(errbuf, "%s: checksum mismatch: the model file is truncated or corrupt", path);
    }
    free(buf);
    return NULL;
}

/* The fixed header (fields 3-16, and 17-20 from version 2): the
 * architecture, task and hyper-parameters. */
typedef struct file_header {
    dp_arch a;
    int task;
    dp_hparams h;
    v2_header v2;
} file_header;

/* Reads fields 3-20b into *fh; 0, or -1 + message when they are short or
 * the class count is out of range. */
static int read_header(rbuf *r, uint32_t ver, file_header *fh, const char *path, char *errbuf)
{
    dp_arch *a = &fh->a;
    dp_hparams *h = &fh->h;
    memset(fh, 0, sizeof *fh);
    a->kind = r_i32(r);
    fh->task = r_i32(r);
    a->nclasses = r_i32(r);
    a->in_len = r_i32(r);
    a->c1 = r_i32(r), a->k1 = r_i32(r), a->s1 = r_i32(r);
    a->c2 = r_i32(r), a->k2 = r_i32(r), a->s2 = r_i32(r);
    a->pool = r_i32(r);
    a->nhidden = r_i32(r);
    for (int i = 0; i < DP_MODEL_MAX_HIDDEN; i++)
        a->hidden[i] = r_i32(r);
    a->dropout = r_f32(r);
    h->epochs = r_i32(r), h->batch = r_i32(r), h->patience = r_i32(r);
    h->pretrain_epochs = r_i32(r), h->threads = r_i32(r), h->epochs_run = r_i32(r);
    h->lr = r_f32(r), h->beta1 = r_f32(r), h->beta2 = r_f32(r), h->eps = r_f32(r);
    h->validation = r_f32(r), h->final_loss = r_f32(r);
    h->seed = r_uint(r, 8), h->train_samples = r_uint(r, 8);
    if (ver >= 2)
        read_v2_header(r, &fh->v2, a);
    h->balance = ver >= 3 ? (int)(int32_t)(uint32_t)r_uint(r, 4) : -1;
    if (r->bad || a->nclasses < 1 || a->nclasses > DP_MAX_CLASSES || h->balance < -1 || h->balance > 3)
        return dp_err(errbuf, "%s: corrupt model header", path);
    if (!(h->validation >= 0 && h->validation < 1)) /* --resume takes it: NaN turned validation off */
        return dp_err(errbuf, "%s: corrupt model header (validation fraction %g)", path, (double)h->validation);
    return 0;
}

/* Reads the class names (field 21) and, once the architecture is known to
 * fit in a file of len bytes, makes the model with the header's
 * hyper-parameters; NULL + message. */
static dp_model *read_names_and_alloc(rbuf *r, const file_header *fh, size_t len, const char *path,
                                      char *errbuf)
{
    dp_model *m = NULL;
    char *names[DP_MAX_CLASSES] = {0};
    int names_ok = 1, oom = 0;
    for (int c = 0; c < fh->a.nclasses && names_ok; c++) {
        size_t n = (size_t)r_uint(r, 2);
        const uint8_t *s = r_bytes(r, n);
        oom = s && !(names[c] = strndup((const char *)s, n));
        names_ok = s && !oom;
    }
    if (!names_ok) {
        dp_err(errbuf, "%s: %s", path, oom ? "out of memory (class names)" : "corrupt class names");
    } else if (params_fit(&fh->a, len, path, errbuf) == 0) {
        char src[DP_ERRBUF_SIZE / 2];
        snprintf(src, sizeof src, "%s", path);
        m = dp_model_alloc(&fh->a, fh->task, names, errbuf, src);
    }
    for (int c = 0; c < DP_MAX_CLASSES; c++)
        free(names[c]);
    if (m)
        m->hp = fh->h;
    return m;
}

/* Checks the tensor table (fields 22-24) against the one m's architecture
 * implies; 0, or -1 + message. */
static int read_tensor_table(rbuf *r, const dp_model *m, const char *path, char *errbuf)
{
    int nt = r_i32(r);
    int table_ok = !r->bad && nt == m->ntensors;
    for (int i = 0; table_ok && i < nt; i++) {
        const dp_tdesc *t = &m->t[i];
        size_t n = (size_t)r_uint(r, 2);
        const uint8_t *s = r_bytes(r, n);
        if (!s || n != strlen(t->name) || memcmp(s, t->name, n) != 0) {
            table_ok = 0;
            break;
        }
        int nd = r_i32(r);
        if (nd != t->ndim) {
            table_ok = 0;
            break;
        }
        for (int k = 0; k < nd; k++)
            if (r_i32(r) != t->shape[k])
                table_ok = 0;
        if (r_uint(r, 8) != t->offset || r_uint(r, 8) != t->numel)
            table_ok = 0;
    }
    if (!table_ok || r->bad || r_uint(r, 8) != m->nparams)
        return dp_err(errbuf, "%s: tensor table does not match the architecture (corrupt file)", path);
    return 0;
}

/* Reads the weights (field 25, all finite) and from version 2 the blob
 * (26-27); a GBT must have a booster that XGBoost loads. 0, or -1 +
 * message. */
static int read_weights_and_blob(rbuf *r, dp_model *m, uint32_t ver, const char *path, char *errbuf)
{
    if (r_floats(r, m->params, m->nparams) != 0)
        return dp_err(errbuf, "%s: truncated parameter data", path);
    if (check_finite(m, m->params, "tensor", path, errbuf) != 0)
        return -1;
    if (ver >= 2 && read_blob(r, m, path, errbuf) != 0)
        return -1;
    if (m->arch.kind == DP_MODEL_GBT && !m->blob_len)
        return dp_err(errbuf, "%s: a gbt model without its booster (corrupt file)", path);
    if (m->arch.kind == DP_MODEL_GBT &&
        !(m->gbt = dp_gbt_load(m->blob, m->blob_len, m->arch.in_len, m->arch.nclasses, path, errbuf)))
        return -1;
    return 0;
}

/* Reads a checkpoint's training state (fields 28-38) into m's Adam state
 * and *st; every float finite. 0, or -1 + message (st->best_params
 * freed then). */
static int read_train_state(rbuf *r, dp_model *m, uint32_t ver, dp_train_state *st, const char *path,
                            char *errbuf)
{
    if (r_uint(r, 4)) {
        if (dp_model_ensure_adam(m, errbuf) != 0)
            return -1;
        r_floats(r, m->adam_m, m->nparams);
        r_floats(r, m->adam_v, m->nparams);
    }
    m->adam_t = r_i32(r);
    memset(st, 0, sizeof *st);
    st->epoch = r_i32(r);
    st->bad_epochs = r_i32(r);
    st->best_loss = r_f32(r);
    st->phase = r_i32(r);
    for (int i = 0; i < 4; i++)
        st->rng.s[i] = r_uint(r, 8);
    st->has_best = r_i32(r);
    if (st->has_best && !r->bad) {
        st->best_params = malloc(m->nparams * sizeof(float));
        if (!st->best_params)
            return dp_err(errbuf, "%s: out of memory", path);
        r_floats(r, st->best_params, m->nparams);
    }
    if (ver >= 2) {
        st->has_data = 1;
        st->data_rows = r_uint(r, 8);
        st->data_fp = r_uint(r, 8);
    }
    st->precision = ver >= 4 ? r_i32(r) : -1;
    int rc = 0;
    if (r->bad)
        rc = dp_err(errbuf, "%s: truncated training state", path);
    else if (isnan(st->best_loss) || st->best_loss < 0 || st->epoch < 0 || st->bad_epochs < 0 || m->adam_t < 0 ||
             st->precision < -1 || st->precision > 1)
        /* a NaN best loss: no epoch would ever count as an improvement */
        rc = dp_err(errbuf, "%s: bad training state (epoch %d, epochs without improvement %d, best loss %g, Adam "
                    "step %d)", path, st->epoch, st->bad_epochs, (double)st->best_loss, m->adam_t);
    else if ((m->adam_m && (check_finite(m, m->adam_m, "Adam moment of", path, errbuf) != 0 ||
                            check_finite(m, m->adam_v, "Adam moment of", path, errbuf) != 0)) ||
             (st->best_params && check_finite(m, st->best_params, "best tensor", path, errbuf) != 0))
        rc = -1;
    if (rc) {
        free(st->best_params);
        st->best_params = NULL;
    }
    return rc;
}

/* Reads the body of a checked file (fields 3-38) into a new model (and for
 * a checkpoint *st); NULL + message. */
static dp_model *read_body(rbuf *r, uint32_t ver, size_t len, int ckpt, dp_train_state *st, const char *path,
                           char *errbuf)
{
    file_header fh;
    if (read_header(r, ver, &fh, path, errbuf) != 0)
        return NULL;
    dp_model *m = read_names_and_alloc(r, &fh, len, path, errbuf);
    if (!m)
        return NULL;
    if (apply_v2_header(m, &fh.v2, path, errbuf) != 0 || read_tensor_table(r, m, path, errbuf) != 0 ||
        read_weights_and_blob(r, m, ver, path, errbuf) != 0 ||
        (ckpt && read_train_state(r, m, ver, st, path, errbuf) != 0)) {
        dp_model_free(m);
        return NULL;
    }
    return m;
}

/* Loads a model (ckpt 0) or a checkpoint (ckpt 1, filling *st): the file
 * checked whole, its body read field by field, nothing left over. */
static dp_model *load_any(const char *path, int ckpt, dp_train_state *st, char *errbuf)
{
    size_t len;
    uint32_t ver;
    uint8_t *buf = read_checked(path, ckpt, &len, &ver, errbuf);
    if (!buf)
        return NULL;
    rbuf r = {buf, len - 8, 12, 0};
    dp_model *m = read_body(&r, ver, len, ckpt, st, path, errbuf);
    if (m && r.pos != r.n) {
        if (ckpt) {
            free(st->best_params);
            st->best_params = NULL;
        }
        dp_err(errbuf, "%s: %zu unexpected trailing bytes", path, r.n - r.pos);
        dp_model_free(m);
        m = NULL;
    }
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

dp_model *dp_model_clone(const dp_model *m, char *errbuf)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = dp_memstream_open(&buf, &len);
    if (!f)
        return dp_errno(errbuf, "cannot copy the model"), NULL;
    wbuf w = {f, DP_FNV_INIT, 0};
    write_model_body(&w, m, MAGIC_MODEL, FORMAT_VERSION); /* the bytes a save writes, less the checksum */
    int bad = dp_memstream_close(f) != 0 || w.err;
    dp_model *c = NULL;
    if (bad)
        dp_err(errbuf, "out of memory copying the model");
    else {
        rbuf r = {(const uint8_t *)buf, len, 12, 0};
        c = read_body(&r, FORMAT_VERSION, len + 8, 0, NULL, "(model copy)", errbuf);
        if (c && r.pos != r.n) {
            dp_err(errbuf, "(model copy): %zu unexpected trailing bytes", r.n - r.pos);
            dp_model_free(c);
            c = NULL;
        }
        if (c)
            c->prec = m->prec; /* a run-time setting, not in the file */
    }
    free(buf);
    return c;
}
