/* test_nn: the layer engine against PyTorch fixtures (tests/fixtures/nn_*.bin,
 * written by tools/make_nn_fixtures.py), finite-difference gradient checks,
 * determinism, dropout statistics and initialisation.
 *
 * Tolerances: forward outputs |got - ref| <= 1e-5 * max(1, |ref|) per element;
 * gradients (long reductions) 1e-4 * max(1, |ref|); exact for pooling
 * indices and for anything that involves no arithmetic. */
#include "dp_fixture.h"
#include "dp_test.h"

#include "nn/dp_nn.h"

#include <pthread.h>
#include <stdint.h>

/* ---- fixtures (tests/dp_fixture.h) --------------------------------------------- */

typedef struct fx_file {
    dp_fix fix;
    char path[256];
} fx_file;

static int fx_load(fx_file *f, const char *name)
{
    char err[DP_ERRBUF_SIZE];
    snprintf(f->path, sizeof f->path, "tests/fixtures/%s", name);
    if (dp_fix_load(&f->fix, f->path, err) != 0) {
        fprintf(stderr, "  fixture missing or unreadable (run tools/make_nn_fixtures.py): %s\n", err);
        return -1;
    }
    return 0;
}

static void fx_free(fx_file *f) { dp_fix_free(&f->fix); }

/* case cs's tensor "c<cs>.<name>" (cs < 0: "<name>"); NULL + a failure if absent */
static const dp_fix_rec *fx_get(const fx_file *f, int cs, const char *name)
{
    char full[64];
    if (cs >= 0)
        snprintf(full, sizeof full, "c%d.%s", cs, name);
    else
        snprintf(full, sizeof full, "%s", name);
    const dp_fix_rec *r = dp_fix_get(&f->fix, full);
    if (!r) {
        fprintf(stderr, "  %s: no tensor %s\n", f->path, full);
        dp_test_failed_now = 1;
    }
    return r;
}

/* a malloc'd float copy of a tensor (aligned access; the file offsets are not) */
static float *fx_f32(const fx_file *f, int cs, const char *name, size_t *n)
{
    const dp_fix_rec *t = fx_get(f, cs, name);
    if (!t || t->dtype != 'f') {
        fprintf(stderr, "  %s: %s missing or not float32\n", f->path, name);
        dp_test_failed_now = 1;
        return NULL;
    }
    float *a = malloc(t->numel * sizeof(float) + 1);
    memcpy(a, t->data, t->numel * sizeof(float));
    if (n)
        *n = t->numel;
    return a;
}

static int32_t *fx_i32(const fx_file *f, int cs, const char *name, size_t *n)
{
    const dp_fix_rec *t = fx_get(f, cs, name);
    if (!t || t->dtype != 'i') {
        fprintf(stderr, "  %s: %s missing or not int32\n", f->path, name);
        dp_test_failed_now = 1;
        return NULL;
    }
    int32_t *a = malloc(t->numel * sizeof(int32_t) + 1);
    memcpy(a, t->data, t->numel * sizeof(int32_t));
    if (n)
        *n = t->numel;
    return a;
}

static int fx_ncases(const fx_file *f)
{
    int32_t *c = fx_i32(f, -1, "ncases", NULL);
    int n = c ? c[0] : 0;
    free(c);
    return n;
}

/* Compares got with ref: |got - ref| <= tol * max(1, |ref|) for every element
 * (NaN anywhere fails). On failure names the tensor and the worst index. */
static int cmp_near(const char *what, int cs, const float *got, const float *ref, size_t n, double tol)
{
    size_t worst = 0;
    double wr = -1.0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        double s = fabs((double)ref[i]);
        double r = d / (s > 1.0 ? s : 1.0);
        if (r != r || got[i] != got[i])
            r = INFINITY;
        if (r > wr) {
            wr = r;
            worst = i;
        }
        if (!(r <= tol))
            bad++;
    }
    if (bad) {
        fprintf(stderr, "  case %d: %s: %d of %zu elements off; worst [%zu] got %.9g, expected %.9g (rel err %.3g > tol %g)\n",
                cs, what, bad, n, worst, got[worst], ref[worst], wr, tol);
        dp_test_failed_now = 1;
        return 0;
    }
    return 1;
}

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4

static float *fill(size_t n, float v)
{
    float *a = malloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++)
        a[i] = v;
    return a;
}

/* ---- fixture tests ------------------------------------------------------------- */

static void test_conv1d_fixtures(void)
{
    fx_file f;
    if (fx_load(&f, "nn_conv1d.bin") < 0) {
        dp_test_failed_now = 1;
        return;
    }
    int nc = fx_ncases(&f);
    CHECK(nc >= 6);
    for (int cs = 0; cs < nc; cs++) {
        int32_t *sh = fx_i32(&f, cs, "shape", NULL);
        if (!sh)
            continue;
        int B = sh[0], C = sh[1], L = sh[2], OC = sh[3], K = sh[4], S = sh[5];
        int LO = dp_conv1d_out_len(L, K, S);
        size_t nout;
        float *x = fx_f32(&f, cs, "inp", NULL), *w = fx_f32(&f, cs, "weight", NULL);
        float *b = fx_f32(&f, cs, "bias", NULL), *ref = fx_f32(&f, cs, "out", &nout);
        float *dy = fx_f32(&f, cs, "dout", NULL), *rdx = fx_f32(&f, cs, "dinp", NULL);
        float *rdw = fx_f32(&f, cs, "dweight", NULL), *rdb = fx_f32(&f, cs, "dbias", NULL);
        CHECK_EQ_INT(nout, (size_t)B * OC * LO);
        float *scratch = fill(dp_conv1d_scratch_floats(B, C, L, OC, K, S), NAN);
        float *y = fill(nout, NAN);
        dp_conv1d_forward(y, scratch, x, w, b, B, C, L, OC, K, S);
        cmp_near("conv1d out", cs, y, ref, nout, FWD_TOL);
        /* fused ReLU */
        dp_conv1d_relu_forward(y, scratch, x, w, b, B, C, L, OC, K, S);
        for (size_t i = 0; i < nout; i++)
            ref[i] = ref[i] > 0 ? ref[i] : 0;
        cmp_near("conv1d relu out", cs, y, ref, nout, FWD_TOL);
        /* backward: dinp overwritten (prefilled with NaN), dweight/dbias accumulate onto 0.5 / 0.25 */
        size_t nx = (size_t)B * C * L, nw = (size_t)OC * C * K;
        float *dx = fill(nx, NAN), *dw = fill(nw, 0.5f), *db = fill(OC, 0.25f);
        dp_conv1d_backward(dx, dw, db, scratch, dy, x, w, B, C, L, OC, K, S);
        for (size_t i = 0; i < nw; i++)
            rdw[i] += 0.5f;
        for (int i = 0; i < OC; i++)
            rdb[i] += 0.25f;
        cmp_near("conv1d dinp", cs, dx, rdx, nx, GRAD_TOL);
        cmp_near("conv1d dweight (accumulated onto 0.5)", cs, dw, rdw, nw, GRAD_TOL);
        cmp_near("conv1d dbias (accumulated onto 0.25)", cs, db, rdb, OC, GRAD_TOL);
        /* dinp == NULL and dbias == NULL (first layer): same dweight */
        float *dw2 = fill(nw, 0.5f);
        dp_conv1d_backward(NULL, dw2, NULL, scratch, dy, x, w, B, C, L, OC, K, S);
        cmp_near("conv1d dweight without dinp", cs, dw2, rdw, nw, GRAD_TOL);
        free(sh), free(x), free(w), free(b), free(ref), free(dy), free(rdx), free(rdw), free(rdb);
        free(scratch), free(y), free(dx), free(dw), free(db), free(dw2);
    }
    fx_free(&f);
}

static void test_seqconv_fixtures(void)
{
    fx_file f;
    if (fx_load(&f, "nn_seqconv.bin") < 0) {
        dp_test_failed_now = 1;
        return;
    }
    int nc = fx_ncases(&f);
    CHECK(nc >= 4);
    for (int cs = 0; cs < nc; cs++) {
        int32_t *sh = fx_i32(&f, cs, "shape", NULL);
        if (!sh)
            continue;
        int B = sh[0], N = sh[1], C = sh[2], OC = sh[3], K = sh[4];
        size_t ny, nx = (size_t)B * N * C, nw = (size_t)OC * C * K;
        float *x = fx_f32(&f, cs, "inp", NULL), *w = fx_f32(&f, cs, "weight", NULL);
        float *b = fx_f32(&f, cs, "bias", NULL), *ref = fx_f32(&f, cs, "out", &ny);
        float *dy = fx_f32(&f, cs, "dout", NULL), *rdx = fx_f32(&f, cs, "dinp", NULL);
        float *rdw = fx_f32(&f, cs, "dweight", NULL), *rdb = fx_f32(&f, cs, "dbias", NULL);
        CHECK_EQ_INT(ny, (size_t)B * N * OC);
        float *cols = fill((size_t)B * N * C * K, NAN), *dcols = fill((size_t)B * N * C * K, NAN);
        float *y = fill(ny, NAN);
        dp_seqconv_forward(y, cols, x, w, b, B, N, C, OC, K);
        cmp_near("seqconv out", cs, y, ref, ny, FWD_TOL);
        float *dx = fill(nx, NAN), *dw = fill(nw, 0.5f), *db = fill(OC, 0.25f);
        dp_seqconv_backward(dx, dw, db, dcols, dy, cols, w, B, N, C, OC, K);
        for (size_t i = 0; i < nw; i++)
            rdw[i] += 0.5f;
        for (int i = 0; i < OC; i++)
            rdb[i] += 0.25f;
        cmp_near("seqconv dinp", cs, dx, rdx, nx, GRAD_TOL);
        cmp_near("seqconv dweight (accumulated onto 0.5)", cs, dw, rdw, nw, GRAD_TOL);
        cmp_near("seqconv dbias (accumulated onto 0.25)", cs, db, rdb, OC, GRAD_TOL);
        free(sh), free(x), free(w), free(b), free(ref), free(dy), free(rdx), free(rdw), free(rdb);
        free(cols), free(dcols), free(y), free(dx), free(dw), free(db);
    }
    fx_free(&f);
}

/* rows scaled by a strided column (a flow row's present flags), in place too */
static void test_rowscale(void)
{
    float x[3 * 2] = {1, 2, 3, 4, 5, 6}, s[3 * 4] = {0.5f, 9, 9, 9, 0, 9, 9, 9, -2, 9, 9, 9}, y[6];
    dp_rowscale(y, x, s, 4, 3, 2);
    float want[6] = {0.5f, 1, 0, 0, -10, -12};
    cmp_near("rowscale", 0, y, want, 6, 0.0);
    dp_rowscale(x, x, s, 4, 3, 2);
    cmp_near("rowscale in place", 0, x, want, 6, 0.0);
}

static void test_maxpool1d_fixtures(void)
{
    fx_file f;
    if (fx_load(&f, "nn_maxpool1d.bin") < 0) {
        dp_test_failed_now = 1;
        return;
    }
    int nc = fx_ncases(&f);
    CHECK(nc >= 4);
    for (int cs = 0; cs < nc; cs++) {
        int32_t *sh = fx_i32(&f, cs, "shape", NULL);
        if (!sh)
            continue;
        int B = sh[0], C = sh[1], L = sh[2], P = sh[3];
        size_t no, nx = (size_t)B * C * L;
        float *x = fx_f32(&f, cs, "inp", NULL), *ref = fx_f32(&f, cs, "out", &no);
        int32_t *idx = fx_i32(&f, cs, "idx", NULL);
        float *dy = fx_f32(&f, cs, "dout", NULL), *rdx = fx_f32(&f, cs, "dinp", NULL);
        CHECK_EQ_INT(no, (size_t)B * C * (L / P));
        float *y = fill(no, NAN);
        int32_t *am = malloc(no * sizeof(int32_t));
        dp_maxpool1d_forward(y, am, x, B, C, L, P);
        cmp_near("maxpool out", cs, y, ref, no, 0.0);
        for (size_t i = 0; i < no; i++)
            if (am[i] != idx[i]) {
                fprintf(stderr, "  case %d: maxpool argmax [%zu] = %d, expected %d\n", cs, i, am[i], idx[i]);
                dp_test_failed_now = 1;
                break;
            }
        float *dx = fill(nx, NAN);
        dp_maxpool1d_backward(dx, dy, am, B, C, L, P);
        cmp_near("maxpool dinp", cs, dx, rdx, nx, 0.0);
        free(sh), free(x), free(ref), free(idx), free(dy), free(rdx), free(y), free(am), free(dx);
    }
    fx_free(&f);
}

static void test_linear_fixtures(void)
{
    fx_file f;
    if (fx_load(&f, "nn_linear.bin") < 0) {
        dp_test_failed_now = 1;
        return;
    }
    int nc = fx_ncases(&f);
    CHECK(nc >= 4);
    for (int cs = 0; cs < nc; cs++) {
        int32_t *sh = fx_i32(&f, cs, "shape", NULL);
        if (!sh)
            continue;
        int B = sh[0], C = sh[1], OC = sh[2];
        float *x = fx_f32(&f, cs, "inp", NULL), *w = fx_f32(&f, cs, "weight", NULL);
        float *b = fx_f32(&f, cs, "bias", NULL), *ref = fx_f32(&f, cs, "out", NULL);
        float *dy = fx_f32(&f, cs, "dout", NULL), *rdx = fx_f32(&f, cs, "dinp", NULL);
        float *rdw = fx_f32(&f, cs, "dweight", NULL), *rdb = fx_f32(&f, cs, "dbias", NULL);
        size_t ny = (size_t)B * OC, nx = (size_t)B * C, nw = (size_t)OC * C;
        float *y = fill(ny, NAN);
        dp_linear_forward(y, x, w, b, B, C, OC);
        cmp_near("linear out", cs, y, ref, ny, FWD_TOL);
        /* without bias: out - bias */
        dp_linear_forward(y, x, w, NULL, B, C, OC);
        for (size_t i = 0; i < ny; i++)
            y[i] += b[i % OC];
        cmp_near("linear out (bias NULL) + bias", cs, y, ref, ny, FWD_TOL);
        float *dx = fill(nx, NAN), *dw = fill(nw, -1.0f), *db = fill(OC, 2.0f);
        dp_linear_backward(dx, dw, db, dy, x, w, B, C, OC);
        for (size_t i = 0; i < nw; i++)
            rdw[i] += -1.0f;
        for (int i = 0; i < OC; i++)
            rdb[i] += 2.0f;
        cmp_near("linear dinp", cs, dx, rdx, nx, GRAD_TOL);
        cmp_near("linear dweight (accumulated onto -1)", cs, dw, rdw, nw, GRAD_TOL);
        cmp_near("linear dbias (accumulated onto 2)", cs, db, rdb, OC, GRAD_TOL);
        free(sh), free(x), free(w), free(b), free(ref), free(dy), free(rdx), free(rdw), free(rdb);
        free(y), free(dx), free(dw), free(db);
    }
    fx_free(&f);
}

static void test_relu_fixtures(void)
{
    fx_file f;
    if (fx_load(&f, "nn_relu.bin") < 0) {
        dp_test_failed_now = 1;
        return;
    }
    int nc = fx_ncases(&f);
    CHECK(nc >= 1);
    for (int cs = 0; cs < nc; cs++) {
        size_t n;
        float *x = fx_f32(&f, cs, "inp", &n), *ref = fx_f32(&f, cs, "out", NULL);
        float *dy = fx_f32(&f, cs, "dout", NULL), *rdx = fx_f32(&f, cs, "dinp", NULL);
        if (!x || !ref || !dy || !rdx)
            continue;
        float *y = fill(n, NAN), *dx = fill(n, NAN);
        dp_relu_forward(y, x, n);
        cmp_near("relu out", cs, y, ref, n, 0.0);
        dp_relu_backward(dx, dy, y, n);
        cmp_near("relu dinp", cs, dx, rdx, n, 0.0);
        /* in place */
        dp_relu_forward(x, x, n);
        cmp_near("relu out (in place)", cs, x, ref, n, 0.0);
        dp_relu_backward(dy, dy, y, n);
        cmp_near("relu dinp (in place)", cs, dy, rdx, n, 0.0);
        free(x), free(ref), free(dy), free(rdx), free(y), free(dx);
    }
    fx_free(&f);
}

static void test_xent_fixtures(void)
{
    fx_file f;
    if (fx_load(&f, "nn_xent.bin") < 0) {
        dp_test_failed_now = 1;
        return;
    }
    int nc = fx_ncases(&f);
    CHECK(nc >= 4);
    for (int cs = 0; cs < nc; cs++) {
        int32_t *sh = fx_i32(&f, cs, "shape", NULL), *lab = fx_i32(&f, cs, "labels", NULL);
        float *z = fx_f32(&f, cs, "logits", NULL), *rl = fx_f32(&f, cs, "loss", NULL);
        float *rp = fx_f32(&f, cs, "probs", NULL), *rls = fx_f32(&f, cs, "logsoftmax", NULL);
        float *rd = fx_f32(&f, cs, "dlogits", NULL);
        if (!sh || !lab || !z || !rl || !rp || !rls || !rd)
            continue;
        int B = sh[0], V = sh[1];
        size_t n = (size_t)B * V;
        float *p = fill(n, NAN), *ls = fill(n, NAN), *d = fill(n, NAN);
        float loss = dp_softmax_xent_forward(p, z, lab, B, V);
        cmp_near("xent loss", cs, &loss, rl, 1, FWD_TOL);
        cmp_near("xent probs", cs, p, rp, n, FWD_TOL);
        dp_log_softmax(ls, z, B, V);
        cmp_near("log_softmax", cs, ls, rls, n, FWD_TOL);
        dp_softmax_xent_backward(d, p, lab, B, V);
        cmp_near("xent dlogits", cs, d, rd, n, FWD_TOL);
        /* in place log-softmax */
        dp_log_softmax(z, z, B, V);
        cmp_near("log_softmax (in place)", cs, z, rls, n, FWD_TOL);
        free(sh), free(lab), free(z), free(rl), free(rp), free(rls), free(rd), free(p), free(ls), free(d);
    }
    fx_free(&f);
}

static void test_mse_fixtures(void)
{
    fx_file f;
    if (fx_load(&f, "nn_mse.bin") < 0) {
        dp_test_failed_now = 1;
        return;
    }
    int nc = fx_ncases(&f);
    CHECK(nc >= 2);
    for (int cs = 0; cs < nc; cs++) {
        size_t n;
        float *pr = fx_f32(&f, cs, "pred", &n), *tg = fx_f32(&f, cs, "target", NULL);
        float *rl = fx_f32(&f, cs, "loss", NULL), *rd = fx_f32(&f, cs, "dpred", NULL);
        if (!pr || !tg || !rl || !rd)
            continue;
        float loss = dp_mse_forward(pr, tg, n);
        cmp_near("mse loss", cs, &loss, rl, 1, FWD_TOL);
        float *d = fill(n, NAN);
        dp_mse_backward(d, pr, tg, n);
        cmp_near("mse dpred", cs, d, rd, n, FWD_TOL);
        free(pr), free(tg), free(rl), free(rd), free(d);
    }
    fx_free(&f);
}

static void test_adam_fixtures(void)
{
    fx_file f;
    if (fx_load(&f, "nn_adam.bin") < 0) {
        dp_test_failed_now = 1;
        return;
    }
    int nc = fx_ncases(&f);
    CHECK(nc >= 2);
    for (int cs = 0; cs < nc; cs++) {
        int32_t *sh = fx_i32(&f, cs, "shape", NULL);
        float *hy = fx_f32(&f, cs, "hyper", NULL), *p = fx_f32(&f, cs, "p0", NULL);
        float *g = fx_f32(&f, cs, "grads", NULL), *ref = fx_f32(&f, cs, "params", NULL);
        if (!sh || !hy || !p || !g || !ref)
            continue;
        int n = sh[0], steps = sh[1];
        float *m = fill(n, 0.0f), *v = fill(n, 0.0f);
        for (int t = 1; t <= steps; t++) {
            dp_adam_update(p, g + (size_t)(t - 1) * n, m, v, n, hy[0], hy[1], hy[2], hy[3], t);
            char what[64];
            snprintf(what, sizeof what, "adam params after step %d", t);
            /* parameters are ~0.01 and move by ~lr per step: 1e-7 absolute is
             * 1e-4 of a step (float rounding of the update is ~1e-7 relative) */
            if (!cmp_near(what, cs, p, ref + (size_t)(t - 1) * n, n, 1e-7))
                break;
        }
        free(sh), free(hy), free(p), free(g), free(ref), free(m), free(v);
    }
    fx_free(&f);
}

/* ---- finite differences ---------------------------------------------------------
 * loss = sum(out * R) (R random) for the layers, so dout = R; the numeric
 * derivative is a central difference of the float forward, summed in double. */

static dp_rng trng;

static void randn(float *a, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        a[i] = (float)dp_rng_normal(&trng) * scale;
}

static double dotd(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* compares analytic g with numeric n: |g - n| <= tol * max(1, |n|) */
static void fd_check(const char *what, const float *g, const double *num, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++) {
        double s = fabs(num[i]) > 1 ? fabs(num[i]) : 1;
        if (!(fabs(g[i] - num[i]) <= tol * s)) {
            fprintf(stderr, "  %s: [%zu] analytic %.7g, numeric %.7g\n", what, i, g[i], num[i]);
            dp_test_failed_now = 1;
            return;
        }
    }
}

typedef struct convp {
    int B, C, L, OC, K, S;
    float *x, *w, *b, *R, *y, *scr;
} convp;

static double conv_loss(convp *p)
{
    dp_conv1d_forward(p->y, p->scr, p->x, p->w, p->b, p->B, p->C, p->L, p->OC, p->K, p->S);
    return dotd(p->y, p->R, (size_t)p->B * p->OC * dp_conv1d_out_len(p->L, p->K, p->S));
}

static void fd_array(double (*loss)(void *), void *ctx, float *a, size_t n, double h, double *num)
{
    for (size_t i = 0; i < n; i++) {
        float keep = a[i];
        a[i] = keep + (float)h;
        double lp = loss(ctx);
        a[i] = keep - (float)h;
        double lm = loss(ctx);
        a[i] = keep;
        num[i] = (lp - lm) / (2 * h);
    }
}

static double conv_loss_v(void *p) { return conv_loss(p); }

static void test_conv1d_fd(void)
{
    /* both code paths: direct (C*K <= 16) and BLAS */
    int shapes[][6] = {{2, 2, 11, 3, 3, 2}, {2, 4, 13, 3, 5, 1}, {1, 5, 17, 2, 4, 3}};
    for (int s = 0; s < 3; s++) {
        convp p = {shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], shapes[s][4], shapes[s][5],
                   0, 0, 0, 0, 0, 0};
        int LO = dp_conv1d_out_len(p.L, p.K, p.S);
        size_t nx = (size_t)p.B * p.C * p.L, nw = (size_t)p.OC * p.C * p.K, ny = (size_t)p.B * p.OC * LO;
        p.x = fill(nx, 0), p.w = fill(nw, 0), p.b = fill(p.OC, 0), p.R = fill(ny, 0), p.y = fill(ny, 0);
        p.scr = fill(dp_conv1d_scratch_floats(p.B, p.C, p.L, p.OC, p.K, p.S), 0);
        randn(p.x, nx, 1), randn(p.w, nw, 0.5f), randn(p.b, p.OC, 0.5f), randn(p.R, ny, 1);
        float *dx = fill(nx, 0), *dw = fill(nw, 0), *db = fill(p.OC, 0);
        dp_conv1d_backward(dx, dw, db, p.scr, p.R, p.x, p.w, p.B, p.C, p.L, p.OC, p.K, p.S);
        double *num = malloc((nx + nw + p.OC) * sizeof(double));
        fd_array(conv_loss_v, &p, p.x, nx, 1e-2, num);
        fd_check("conv1d fd dinp", dx, num, nx, 2e-3);
        fd_array(conv_loss_v, &p, p.w, nw, 1e-2, num);
        fd_check("conv1d fd dweight", dw, num, nw, 2e-3);
        fd_array(conv_loss_v, &p, p.b, p.OC, 1e-2, num);
        fd_check("conv1d fd dbias", db, num, p.OC, 2e-3);
        free(p.x), free(p.w), free(p.b), free(p.R), free(p.y), free(p.scr), free(dx), free(dw), free(db), free(num);
    }
}

typedef struct linp {
    int B, C, OC;
    float *x, *w, *b, *R, *y;
} linp;

static double lin_loss_v(void *v)
{
    linp *p = v;
    dp_linear_forward(p->y, p->x, p->w, p->b, p->B, p->C, p->OC);
    return dotd(p->y, p->R, (size_t)p->B * p->OC);
}

static void test_linear_fd(void)
{
    linp p = {3, 7, 5, 0, 0, 0, 0, 0};
    size_t nx = 21, nw = 35, ny = 15;
    p.x = fill(nx, 0), p.w = fill(nw, 0), p.b = fill(5, 0), p.R = fill(ny, 0), p.y = fill(ny, 0);
    randn(p.x, nx, 1), randn(p.w, nw, 0.5f), randn(p.b, 5, 0.5f), randn(p.R, ny, 1);
    float *dx = fill(nx, 0), *dw = fill(nw, 0), *db = fill(5, 0);
    dp_linear_backward(dx, dw, db, p.R, p.x, p.w, 3, 7, 5);
    double num[64];
    fd_array(lin_loss_v, &p, p.x, nx, 1e-2, num);
    fd_check("linear fd dinp", dx, num, nx, 2e-3);
    fd_array(lin_loss_v, &p, p.w, nw, 1e-2, num);
    fd_check("linear fd dweight", dw, num, nw, 2e-3);
    fd_array(lin_loss_v, &p, p.b, 5, 1e-2, num);
    fd_check("linear fd dbias", db, num, 5, 2e-3);
    free(p.x), free(p.w), free(p.b), free(p.R), free(p.y), free(dx), free(dw), free(db);
}

typedef struct poolp {
    int B, C, L, P;
    float *x, *R, *y;
    int32_t *am;
} poolp;

static double pool_loss_v(void *v)
{
    poolp *p = v;
    dp_maxpool1d_forward(p->y, p->am, p->x, p->B, p->C, p->L, p->P);
    return dotd(p->y, p->R, (size_t)p->B * p->C * (p->L / p->P));
}

static void test_maxpool1d_fd(void)
{
    poolp p = {2, 3, 11, 2, 0, 0, 0, 0};
    size_t nx = 66, ny = 30;
    p.x = fill(nx, 0), p.R = fill(ny, 0), p.y = fill(ny, 0);
    p.am = malloc(ny * sizeof(int32_t));
    /* distinct values at least 0.1 apart so that h = 1e-2 never changes the argmax */
    for (size_t i = 0; i < nx; i++)
        p.x[i] = 0.1f * (float)((i * 37) % nx) - 3.0f;
    randn(p.R, ny, 1);
    pool_loss_v(&p);
    float *dx = fill(nx, 0);
    dp_maxpool1d_backward(dx, p.R, p.am, 2, 3, 11, 2);
    double num[66];
    fd_array(pool_loss_v, &p, p.x, nx, 1e-2, num);
    fd_check("maxpool fd dinp", dx, num, nx, 2e-3);
    free(p.x), free(p.R), free(p.y), free(p.am), free(dx);
}

typedef struct xentp {
    int B, V;
    float *z, *pr;
    int *lab;
} xentp;

static double xent_loss_v(void *v)
{
    xentp *p = v;
    return dp_softmax_xent_forward(p->pr, p->z, p->lab, p->B, p->V);
}

static void test_xent_fd(void)
{
    xentp p = {4, 6, 0, 0, 0};
    int lab[4] = {0, 5, 2, 2};
    p.lab = lab;
    p.z = fill(24, 0), p.pr = fill(24, 0);
    randn(p.z, 24, 2);
    float loss = dp_softmax_xent_forward(p.pr, p.z, lab, 4, 6);
    CHECK(loss > 0 && isfinite(loss));
    float *d = fill(24, 0);
    dp_softmax_xent_backward(d, p.pr, lab, 4, 6);
    double num[24];
    fd_array(xent_loss_v, &p, p.z, 24, 1e-2, num);
    fd_check("xent fd dlogits", d, num, 24, 1e-3);
    /* each row of dlogits sums to 0 */
    for (int b = 0; b < 4; b++) {
        double s = 0;
        for (int i = 0; i < 6; i++)
            s += d[b * 6 + i];
        CHECK_NEAR(s, 0.0, 1e-6);
    }
    free(p.z), free(p.pr), free(d);
}

typedef struct msep {
    size_t n;
    float *pr, *tg;
} msep;

static double mse_loss_v(void *v)
{
    msep *p = v;
    return dp_mse_forward(p->pr, p->tg, p->n);
}

static void test_mse_fd(void)
{
    msep p = {13, 0, 0};
    p.pr = fill(13, 0), p.tg = fill(13, 0);
    randn(p.pr, 13, 1), randn(p.tg, 13, 1);
    float *d = fill(13, 0);
    dp_mse_backward(d, p.pr, p.tg, 13);
    double num[13];
    fd_array(mse_loss_v, &p, p.pr, 13, 1e-2, num);
    fd_check("mse fd dpred", d, num, 13, 1e-3);
    CHECK_NEAR(dp_mse_forward(p.pr, p.pr, 13), 0.0, 0.0);
    free(p.pr), free(p.tg), free(d);
}

/* ---- against a naive double-precision convolution --------------------------------
 * shapes with several GEMM groups and a short last group (B > 2048 / LO),
 * and the direct path split over threads */
static void test_conv1d_vs_naive(void)
{
    int shapes[][6] = {{7, 20, 700, 9, 3, 1}, {5, 6, 1000, 4, 4, 3}, {9, 1, 1500, 11, 5, 3}, {4, 3, 2, 2, 2, 1}};
    for (int s = 0; s < 4; s++) {
        int B = shapes[s][0], C = shapes[s][1], L = shapes[s][2], OC = shapes[s][3], K = shapes[s][4],
            S = shapes[s][5];
        int LO = dp_conv1d_out_len(L, K, S);
        size_t nx = (size_t)B * C * L, nw = (size_t)OC * C * K, ny = (size_t)B * OC * LO;
        float *x = fill(nx, 0), *w = fill(nw, 0), *b = fill(OC, 0), *dy = fill(ny, 0);
        randn(x, nx, 1), randn(w, nw, 0.3f), randn(b, OC, 0.3f), randn(dy, ny, 1);
        float *y = fill(ny, NAN), *dx = fill(nx, NAN), *dw = fill(nw, 0), *db = fill(OC, 0);
        float *ry = fill(ny, 0), *rdx = fill(nx, 0), *rdw = fill(nw, 0), *rdb = fill(OC, 0);
        float *scr = fill(dp_conv1d_scratch_floats(B, C, L, OC, K, S), NAN);
        dp_conv1d_forward(y, scr, x, w, b, B, C, L, OC, K, S);
        dp_conv1d_backward(dx, dw, db, scr, dy, x, w, B, C, L, OC, K, S);
        double *acc = calloc(nx + nw, sizeof(double));
        for (int bb = 0; bb < B; bb++)
            for (int o = 0; o < OC; o++)
                for (int t = 0; t < LO; t++) {
                    double v = b[o], g = dy[((size_t)bb * OC + o) * LO + t];
                    for (int c = 0; c < C; c++)
                        for (int k = 0; k < K; k++) {
                            size_t xi = ((size_t)bb * C + c) * L + (size_t)t * S + k, wi = ((size_t)o * C + c) * K + k;
                            v += (double)w[wi] * x[xi];
                            acc[xi] += g * w[wi];
                            acc[nx + wi] += g * x[xi];
                        }
                    ry[((size_t)bb * OC + o) * LO + t] = (float)v;
                    rdb[o] += (float)g;
                }
        for (size_t i = 0; i < nx; i++)
            rdx[i] = (float)acc[i];
        for (size_t i = 0; i < nw; i++)
            rdw[i] = (float)acc[nx + i];
        cmp_near("conv1d out vs naive", s, y, ry, ny, FWD_TOL);
        cmp_near("conv1d dinp vs naive", s, dx, rdx, nx, GRAD_TOL);
        cmp_near("conv1d dweight vs naive", s, dw, rdw, nw, GRAD_TOL);
        cmp_near("conv1d dbias vs naive", s, db, rdb, OC, GRAD_TOL);
        free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
        free(ry), free(rdx), free(rdw), free(rdb), free(scr), free(acc);
    }
}

/* dp_conv1d_cl_relu_forward (channels-last, one sample): for every output
 * count n, the first n positions equal dp_conv1d_relu_forward's, later rows
 * stay untouched (NaN sentinel), and no input row past
 * dp_conv1d_cl_in_rows(n) is read (they hold NaN, which would spread).
 * Direct (C = 1, 4 and 5 taps, and C*K = 9), GEMM (strides 1 and 3) and
 * Winograd F(4, 5) paths, with and without bias; then the channels-last
 * max-pool against dp_maxpool1d_forward. */
static void test_conv1d_cl(void)
{
    int shapes[][5] = {{1, 1500, 11, 5, 3}, {1, 1500, 13, 4, 3}, {3, 40, 7, 3, 2}, {20, 70, 9, 3, 1},
                       {12, 499, 10, 4, 3}, {8, 300, 6, 5, 1}, {30, 499, 20, 5, 1}, {16, 31, 17, 5, 1}};
    int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    for (int s = 0; s < nshapes; s++) {
        int C = shapes[s][0], L = shapes[s][1], OC = shapes[s][2], K = shapes[s][3], S = shapes[s][4];
        int LO = dp_conv1d_out_len(L, K, S);
        size_t nx = (size_t)C * L, nw = (size_t)OC * C * K;
        float *x = fill(nx, 0), *w = fill(nw, 0), *b = fill(OC, 0);
        randn(x, nx, 1), randn(w, nw, 0.3f), randn(b, OC, 0.3f);
        float *ry = fill((size_t)OC * LO, 0);
        float *scr = fill(dp_conv1d_scratch_floats(1, C, L, OC, K, S), NAN);
        float *wp = fill(dp_conv1d_cl_weight_floats(OC, C, K, S), NAN);
        dp_conv1d_cl_pack(wp, w, OC, C, K, S);
        int rows = dp_conv1d_cl_in_rows(LO, K, S, C) + 8;
        CHECK(rows >= L);
        float *xcl = fill((size_t)rows * C, NAN), *y = fill((size_t)(LO + 1) * OC, NAN);
        float *cscr = fill(dp_conv1d_cl_scratch_floats(LO, C, OC, K, S), NAN);
        int ns[] = {0, 1, 2, 3, 4, 5, 7, LO / 2, LO - 1, LO};
        for (int withb = 0; withb < 2; withb++) {
            dp_conv1d_relu_forward(ry, scr, x, w, withb ? b : NULL, 1, C, L, OC, K, S);
            for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
                int n = ns[i], in = dp_conv1d_cl_in_rows(n, K, S, C);
                if (n < 0 || n > LO)
                    continue;
                CHECK(n == 0 ? in == 0 : in >= S * (n - 1) + K);
                for (int t = 0; t < rows; t++) /* the signal, zeros past it, NaN past in_rows */
                    for (int c = 0; c < C; c++)
                        xcl[(size_t)t * C + c] = t >= in ? NAN : t < L ? x[(size_t)c * L + t] : 0.0f;
                for (size_t j = 0; j < (size_t)(LO + 1) * OC; j++)
                    y[j] = NAN;
                dp_conv1d_cl_relu_forward(y, cscr, xcl, wp, withb ? b : NULL, n, C, OC, K, S);
                int bad = 0;
                for (int t = 0; t <= LO; t++)
                    for (int o = 0; o < OC; o++) {
                        float v = y[(size_t)t * OC + o];
                        if (t < n ? !(fabsf(v - ry[(size_t)o * LO + t]) <= FWD_TOL * (1 + fabsf(ry[(size_t)o * LO + t])))
                                  : !isnan(v))
                            bad++;
                    }
                if (bad)
                    fprintf(stderr, "  conv1d cl shape %d n %d bias %d: %d bad values\n", s, n, withb, bad);
                CHECK_EQ_INT(bad, 0);
            }
        }
        /* max-pool P = 2 and 3 over the full output (ReLU applied), minus b */
        for (int P = 2; P <= 3; P++) {
            int n3 = LO / P;
            float *pr = fill((size_t)OC * (n3 > 0 ? n3 : 1), 0), *pc = fill((size_t)(n3 + 1) * OC, NAN);
            int32_t *am = calloc((size_t)OC * (n3 > 0 ? n3 : 1), sizeof(int32_t));
            float *ycl = fill((size_t)LO * OC, 0);
            for (int t = 0; t < LO; t++)
                for (int o = 0; o < OC; o++)
                    ycl[(size_t)t * OC + o] = ry[(size_t)o * LO + t];
            if (n3 > 0)
                dp_maxpool1d_forward(pr, am, ry, 1, OC, LO, P);
            dp_maxpool1d_cl_forward(pc, ycl, b, n3, OC, P);
            int bad = 0;
            for (int p = 0; p <= n3; p++)
                for (int o = 0; o < OC; o++)
                    if (p < n3 ? pc[(size_t)p * OC + o] != pr[(size_t)o * n3 + p] - b[o] : !isnan(pc[(size_t)p * OC + o]))
                        bad++;
            CHECK_EQ_INT(bad, 0);
            free(pr), free(pc), free(am), free(ycl);
        }
        free(x), free(w), free(b), free(ry), free(scr), free(wp), free(xcl), free(y), free(cscr);
    }
}

/* dp_conv1d_cl_relu_forward_many: signals of different lengths (none, one
 * position, ends inside a tile, the full length) in one call, each equal to
 * its own dp_conv1d_cl_relu_forward (the Winograd form shares its GEMMs
 * across them: a signal's tiles must not spill into another's outputs),
 * rows past each signal's n untouched, no input row past its in_rows read
 * (NaN). Winograd, GEMM and direct forms. */
static void test_conv1d_cl_many(void)
{
    int shapes[][5] = {{30, 200, 20, 5, 1}, {12, 200, 10, 4, 3}, {1, 200, 11, 5, 3}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        int C = shapes[sh][0], L = shapes[sh][1], OC = shapes[sh][2], K = shapes[sh][3], S = shapes[sh][4];
        int LO = dp_conv1d_out_len(L, K, S), rows = dp_conv1d_cl_in_rows(LO, K, S, C);
        int ns[] = {7, 0, 1, LO, 13, LO / 2, 2}, cnt = (int)(sizeof ns / sizeof ns[0]), sum = 0;
        for (int i = 0; i < cnt; i++)
            sum += 4 * ((ns[i] + 3) / 4);
        size_t nw = (size_t)OC * C * K;
        float *w = fill(nw, 0), *b = fill(OC, 0);
        randn(w, nw, 0.3f), randn(b, OC, 0.3f);
        float *wp = fill(dp_conv1d_cl_weight_floats(OC, C, K, S), NAN);
        dp_conv1d_cl_pack(wp, w, OC, C, K, S);
        float *scr = fill(dp_conv1d_cl_scratch_floats(sum, C, OC, K, S), NAN);
        float *x[8], *y[8], *ref = fill((size_t)(LO + 1) * OC, NAN);
        for (int i = 0; i < cnt; i++) {
            int in = dp_conv1d_cl_in_rows(ns[i], K, S, C);
            x[i] = fill((size_t)rows * C, NAN), y[i] = fill((size_t)(LO + 1) * OC, NAN);
            randn(x[i], (size_t)in * C, 1);
        }
        dp_conv1d_cl_relu_forward_many(y, scr, (const float *const *)x, ns, cnt, wp, b, C, OC, K, S);
        for (int i = 0; i < cnt; i++) {
            for (size_t j = 0; j < (size_t)(LO + 1) * OC; j++)
                ref[j] = NAN;
            dp_conv1d_cl_relu_forward(ref, scr, x[i], wp, b, ns[i], C, OC, K, S);
            int bad = 0;
            for (size_t j = 0; j < (size_t)(LO + 1) * OC; j++)
                if (j < (size_t)ns[i] * OC ? !(fabsf(y[i][j] - ref[j]) <= FWD_TOL * (1 + fabsf(ref[j]))) : !isnan(y[i][j]))
                    bad++;
            if (bad)
                fprintf(stderr, "  conv1d cl many shape %zu signal %d (n %d): %d bad values\n", sh, i, ns[i], bad);
            CHECK_EQ_INT(bad, 0);
            free(x[i]), free(y[i]);
        }
        free(w), free(b), free(wp), free(scr), free(ref);
    }
    /* more signals than DP_CONV_CL_MANY: the Winograd form takes them in pieces */
    int C = 8, OC = 16, K = 5, cnt = DP_CONV_CL_MANY + 7, rows = dp_conv1d_cl_in_rows(5, K, 1, C);
    float *w = fill((size_t)OC * C * K, 0), *wp = fill(dp_conv1d_cl_weight_floats(OC, C, K, 1), NAN);
    randn(w, (size_t)OC * C * K, 0.3f);
    dp_conv1d_cl_pack(wp, w, OC, C, K, 1);
    float *xs = fill((size_t)cnt * rows * C, 0), *ys = fill((size_t)cnt * 5 * OC, NAN), *ref = fill(5 * OC, NAN);
    float *scr = fill(dp_conv1d_cl_scratch_floats(8 * cnt, C, OC, K, 1), NAN);
    randn(xs, (size_t)cnt * rows * C, 1);
    const float *ins[DP_CONV_CL_MANY + 7];
    float *outs[DP_CONV_CL_MANY + 7];
    int ns[DP_CONV_CL_MANY + 7], bad = 0;
    for (int i = 0; i < cnt; i++)
        ins[i] = xs + (size_t)i * rows * C, outs[i] = ys + (size_t)i * 5 * OC, ns[i] = 1 + i % 5;
    dp_conv1d_cl_relu_forward_many(outs, scr, ins, ns, cnt, wp, NULL, C, OC, K, 1);
    for (int i = 0; i < cnt; i++) {
        dp_conv1d_cl_relu_forward(ref, scr, ins[i], wp, NULL, ns[i], C, OC, K, 1);
        for (int j = 0; j < ns[i] * OC; j++)
            bad += !(fabsf(outs[i][j] - ref[j]) <= FWD_TOL * (1 + fabsf(ref[j])));
    }
    CHECK_EQ_INT(bad, 0);
    free(w), free(wp), free(xs), free(ys), free(ref), free(scr);
}

/* ---- determinism, threads ---------------------------------------------------------- */

typedef struct run_out {
    float *y, *dx, *dw, *db, *ly, *ldx, *ldw;
} run_out;

/* one conv (BLAS path, big enough to split im2col over threads) and one linear,
 * forward and backward */
static void det_run(run_out *o, int threads)
{
    dp_nn_set_threads(threads);
    dp_rng_seed(&trng, 777);
    int B = 3, C = 24, L = 300, OC = 40, K = 5, S = 1, LO = dp_conv1d_out_len(L, K, S);
    size_t nx = (size_t)B * C * L, nw = (size_t)OC * C * K, ny = (size_t)B * OC * LO;
    float *x = fill(nx, 0), *w = fill(nw, 0), *b = fill(OC, 0), *dy = fill(ny, 0);
    float *scr = fill(dp_conv1d_scratch_floats(B, C, L, OC, K, S), 0);
    randn(x, nx, 1), randn(w, nw, 0.1f), randn(b, OC, 0.1f), randn(dy, ny, 1);
    o->y = fill(ny, 0), o->dx = fill(nx, 0), o->dw = fill(nw, 0), o->db = fill(OC, 0);
    dp_conv1d_relu_forward(o->y, scr, x, w, b, B, C, L, OC, K, S);
    dp_conv1d_backward(o->dx, o->dw, o->db, scr, dy, x, w, B, C, L, OC, K, S);
    int LB = 16, LC = 4000, LOC = 200;
    float *lx = fill((size_t)LB * LC, 0), *lw = fill((size_t)LOC * LC, 0), *lb = fill(LOC, 0);
    float *ldy = fill((size_t)LB * LOC, 0);
    randn(lx, (size_t)LB * LC, 1), randn(lw, (size_t)LOC * LC, 0.02f), randn(ldy, (size_t)LB * LOC, 1);
    o->ly = fill((size_t)LB * LOC, 0), o->ldx = fill((size_t)LB * LC, 0), o->ldw = fill((size_t)LOC * LC, 0);
    dp_linear_forward(o->ly, lx, lw, lb, LB, LC, LOC);
    dp_linear_backward(o->ldx, o->ldw, NULL, ldy, lx, lw, LB, LC, LOC);
    free(x), free(w), free(b), free(dy), free(scr), free(lx), free(lw), free(lb), free(ldy);
}

static void det_free(run_out *o)
{
    free(o->y), free(o->dx), free(o->dw), free(o->db), free(o->ly), free(o->ldx), free(o->ldw);
}

static int same_bits(const char *what, const float *a, const float *b, size_t n)
{
    if (memcmp(a, b, n * sizeof(float)) != 0) {
        for (size_t i = 0; i < n; i++)
            if (memcmp(&a[i], &b[i], sizeof(float))) {
                fprintf(stderr, "  %s differs at [%zu]: %.9g vs %.9g\n", what, i, a[i], b[i]);
                break;
            }
        dp_test_failed_now = 1;
        return 0;
    }
    return 1;
}

static void test_determinism(void)
{
    int B = 3, C = 24, L = 300, OC = 40, K = 5, LO = dp_conv1d_out_len(L, K, 1);
    size_t ny = (size_t)B * OC * LO, nx = (size_t)B * C * L, nw = (size_t)OC * C * K;
    int tcounts[2] = {1, 2};
    run_out first[2];
    for (int ti = 0; ti < 2; ti++) {
        int t = tcounts[ti];
        run_out a, b;
        det_run(&a, t);
        det_run(&b, t);
        same_bits("conv out (same threads)", a.y, b.y, ny);
        same_bits("conv dinp (same threads)", a.dx, b.dx, nx);
        same_bits("conv dweight (same threads)", a.dw, b.dw, nw);
        same_bits("conv dbias (same threads)", a.db, b.db, OC);
        same_bits("linear out (same threads)", a.ly, b.ly, 16 * 200);
        same_bits("linear dinp (same threads)", a.ldx, b.ldx, 16 * 4000);
        same_bits("linear dweight (same threads)", a.ldw, b.ldw, 200 * 4000);
        det_free(&b);
        first[ti] = a;
    }
    /* different thread counts: equal within rounding */
    cmp_near("conv out 1 vs 2 threads", 0, first[1].y, first[0].y, ny, FWD_TOL);
    cmp_near("conv dweight 1 vs 2 threads", 0, first[1].dw, first[0].dw, nw, GRAD_TOL);
    cmp_near("conv dinp 1 vs 2 threads", 0, first[1].dx, first[0].dx, nx, GRAD_TOL);
    cmp_near("linear dweight 1 vs 2 threads", 0, first[1].ldw, first[0].ldw, 200 * 4000, GRAD_TOL);
    det_free(&first[0]);
    det_free(&first[1]);
    dp_nn_set_threads(0);
    CHECK_EQ_INT(dp_nn_get_threads(), dp_ncpu() > 64 ? 64 : dp_ncpu());
}

static void test_blas_core(void)
{
    const char *core = dp_nn_blas_core();
    CHECK(core != NULL && core[0] != 0);
    fprintf(stderr, "  OpenBLAS core: %s (OPENBLAS_CORETYPE=%s)\n", core ? core : "?",
            getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "unset");
}

/* Adam splits big vectors over threads; being elementwise it must give the
 * same bits on 1 and 2 threads, and match a scalar re-computation. */
static void test_adam_threads(void)
{
    size_t n = 300001;
    float *p1 = fill(n, 0), *g = fill(n, 0), *m1 = fill(n, 0), *v1 = fill(n, 0);
    randn(p1, n, 0.1f), randn(g, n, 1);
    float *p2 = malloc(n * 4), *m2 = fill(n, 0), *v2 = fill(n, 0);
    memcpy(p2, p1, n * 4);
    float p0 = p1[n - 1];
    for (int t = 1; t <= 3; t++) {
        dp_nn_set_threads(1);
        dp_adam_update(p1, g, m1, v1, n, 1e-3f, 0.9f, 0.999f, 1e-8f, t);
        dp_nn_set_threads(2);
        dp_adam_update(p2, g, m2, v2, n, 1e-3f, 0.9f, 0.999f, 1e-8f, t);
    }
    dp_nn_set_threads(0);
    same_bits("adam params 1 vs 2 threads", p1, p2, n);
    same_bits("adam m 1 vs 2 threads", m1, m2, n);
    same_bits("adam v 1 vs 2 threads", v1, v2, n);
    /* constant gradient g: after any number of steps m_hat = g, v_hat = g^2, so
     * each step moves by lr * g / (|g| + eps) ~ lr * sign(g) */
    CHECK_NEAR(p1[n - 1], p0 - 3e-3 * (g[n - 1] > 0 ? 1 : -1), 1e-5);
    /* the vector (SSE) lanes and the scalar tail compute the same bits:
     * 7 identical elements = one 4-lane block + 3 scalar ones */
    float q[7], qg[7], qm[7] = {0}, qv[7] = {0};
    for (int i = 0; i < 7; i++)
        q[i] = 0.0123f, qg[i] = -0.7f;
    for (int t = 1; t <= 5; t++) {
        for (int i = 0; i < 7; i++)
            qg[i] = qg[i] * -1.3f + 0.01f;
        dp_adam_update(q, qg, qm, qv, 7, 1e-3f, 0.9f, 0.999f, 1e-8f, t);
    }
    for (int i = 1; i < 7; i++) {
        CHECK(memcmp(&q[i], &q[0], 4) == 0);
        CHECK(memcmp(&qm[i], &qm[0], 4) == 0);
        CHECK(memcmp(&qv[i], &qv[0], 4) == 0);
    }
    free(p1), free(g), free(m1), free(v1), free(p2), free(m2), free(v2);
}

static void pf_fill(void *ctx, int i, int n)
{
    int *a = ctx;
    a[i] = i * 10 + n;
}

/* a parallel_for inside a parallel_for (the pool is busy: one-off threads) */
static void pf_nested(void *ctx, int i, int n)
{
    int *a = ctx;
    int inner[4] = {0};
    dp_nn_parallel_for(3, pf_fill, inner);
    a[i] = (inner[0] == 3 && inner[1] == 13 && inner[2] == 23) ? n : -1;
}

typedef struct pf_caller {
    int ok;
} pf_caller;

/* many parallel_fors from another thread while the main thread runs its own */
static void *pf_other(void *arg)
{
    pf_caller *c = arg;
    c->ok = 1;
    for (int r = 0; r < 300; r++) {
        int a[8] = {0};
        int n = 2 + r % 5;
        dp_nn_parallel_for(n, pf_fill, a);
        for (int i = 0; i < n; i++)
            c->ok &= a[i] == i * 10 + n;
    }
    return NULL;
}

static void test_parallel_for(void)
{
    int a[8] = {0};
    dp_nn_parallel_for(5, pf_fill, a);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(a[i], i * 10 + 5);
    CHECK_EQ_INT(a[5], 0);
    dp_nn_parallel_for(0, pf_fill, a); /* no-op */
    /* the pool grows and shrinks its jobs: every chunk runs once, each time */
    int bad = 0;
    for (int r = 0; r < 500; r++) {
        int b[8], n = 1 + (r * 7) % 8;
        for (int i = 0; i < 8; i++)
            b[i] = -7;
        dp_nn_parallel_for(n, pf_fill, b);
        for (int i = 0; i < 8; i++)
            bad += b[i] != (i < n ? i * 10 + n : -7);
    }
    CHECK_EQ_INT(bad, 0);
    int c[4] = {0};
    dp_nn_parallel_for(4, pf_nested, c);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(c[i], 4);
    pthread_t t;
    pf_caller other = {0};
    CHECK(pthread_create(&t, NULL, pf_other, &other) == 0);
    pf_caller mine = {0};
    pf_other(&mine);
    pthread_join(t, NULL);
    CHECK(other.ok && mine.ok);
}

/* chunk i records the precision in effect on its thread */
static void pf_prec(void *ctx, int i, int n)
{
    (void)n;
    ((int *)ctx)[i] = dp_nn_get_precision();
}

/* chunk i records its precision in a[i], and in a[8 + i] whether the chunks
 * of a parallel_for nested in it (one-off threads: the pool is busy) all
 * ran in it too */
static void pf_prec_nested(void *ctx, int i, int n)
{
    int *a = ctx, inner[3];
    pf_prec(a, i, n);
    dp_nn_parallel_for(3, pf_prec, inner);
    a[8 + i] = inner[0] == a[i] && inner[1] == a[i] && inner[2] == a[i];
}

static void *prec_other(void *arg)
{
    *(int *)arg = dp_nn_get_precision();
    return NULL;
}

/* A thread's own precision is in effect on it and in every chunk of its
 * parallel_fors (pooled and one-off threads, nested ones too), and nowhere
 * else: not on another thread, not in the pool's next job once restored;
 * the process's does not override it. Bookkeeping only: no layer runs, so
 * it holds on any CPU. */
static void test_thread_precision(void)
{
    int a[16], other = -1;
    CHECK_EQ_INT(dp_nn_get_precision(), DP_PREC_FP32);
    CHECK_EQ_INT(dp_nn_set_thread_precision(DP_PREC_BF16), -1);
    CHECK_EQ_INT(dp_nn_get_precision(), DP_PREC_BF16);
    memset(a, 0xff, sizeof a);
    dp_nn_parallel_for(4, pf_prec_nested, a);
    for (int i = 0; i < 4; i++)
        CHECK(a[i] == DP_PREC_BF16 && a[8 + i] == 1);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, prec_other, &other) == 0);
    pthread_join(t, NULL);
    CHECK_EQ_INT(other, DP_PREC_FP32);
    CHECK_EQ_INT(dp_nn_set_thread_precision(-1), DP_PREC_BF16);
    dp_nn_parallel_for(4, pf_prec, a);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(a[i], DP_PREC_FP32);
    char eb[DP_ERRBUF_SIZE];
    if (dp_nn_set_precision(DP_PREC_BF16, eb) == 0) { /* the process's in bf16, the thread's in fp32 */
        CHECK_EQ_INT(dp_nn_set_thread_precision(DP_PREC_FP32), -1);
        dp_nn_parallel_for(4, pf_prec, a);
        for (int i = 0; i < 4; i++)
            CHECK_EQ_INT(a[i], DP_PREC_FP32);
        CHECK_EQ_INT(dp_nn_set_thread_precision(7), DP_PREC_FP32); /* no precision: none */
        CHECK_EQ_INT(dp_nn_get_precision(), DP_PREC_BF16);
        dp_nn_set_precision(DP_PREC_FP32, eb);
    }
    CHECK_EQ_INT(dp_nn_get_precision(), DP_PREC_FP32);
}

/* ---- dropout, init, odd shapes ------------------------------------------------------ */

static void test_dropout(void)
{
    size_t n = 1000000;
    float p = 0.05f;
    float *x = fill(n, 0), *y = fill(n, NAN), *dy = fill(n, 0), *dx = fill(n, NAN);
    uint8_t *mask = malloc(n), *mask2 = malloc(n);
    dp_rng_seed(&trng, 42);
    randn(x, n, 1);
    randn(dy, n, 1);
    dp_rng r1, r2;
    dp_rng_seed(&r1, 9876);
    dp_rng_seed(&r2, 9876);
    dp_dropout_forward(y, mask, x, n, p, &r1);
    size_t kept = 0;
    int bad = 0;
    float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) {
        kept += mask[i];
        if (mask[i] > 1 || y[i] != (mask[i] ? x[i] * scale : 0.0f))
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    /* keep rate 0.95 +- 5 sigma (sigma = sqrt(p (1-p) / n) = 2.2e-4) */
    CHECK_NEAR((double)kept / n, 1.0 - p, 5 * sqrt(p * (1 - p) / n));
    /* expectation preserved: mean(y) ~ mean(x) */
    double sx = 0, sy = 0;
    for (size_t i = 0; i < n; i++)
        sx += x[i], sy += y[i];
    CHECK_NEAR(sy / n, sx / n, 5e-3);
    /* backward agrees with the mask */
    dp_dropout_backward(dx, dy, mask, n, p);
    bad = 0;
    for (size_t i = 0; i < n; i++)
        if (dx[i] != (mask[i] ? dy[i] * scale : 0.0f))
            bad++;
    CHECK_EQ_INT(bad, 0);
    /* same seed, same mask; in place */
    dp_dropout_forward(x, mask2, x, n, p, &r2);
    CHECK(memcmp(mask, mask2, n) == 0);
    CHECK(memcmp(x, y, n * sizeof(float)) == 0);
    /* a different seed gives a different mask; p = 0 keeps everything unscaled */
    dp_rng_seed(&r2, 1);
    dp_dropout_forward(y, mask2, x, n, p, &r2);
    CHECK(memcmp(mask, mask2, n) != 0);
    dp_dropout_forward(y, mask2, x, 1000, 0.0f, &r2);
    for (int i = 0; i < 1000; i++)
        if (mask2[i] != 1 || y[i] != x[i])
            bad++;
    CHECK_EQ_INT(bad, 0);
    free(x), free(y), free(dy), free(dx), free(mask), free(mask2);
}

static void test_init_uniform(void)
{
    size_t n = 200000;
    float bound = 1.0f / sqrtf(49400.0f);
    float *w = fill(n, NAN);
    dp_rng r;
    dp_rng_seed(&r, 9876);
    dp_init_uniform(w, n, bound, &r);
    double s = 0, s2 = 0;
    int out = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(w[i] >= -bound && w[i] <= bound))
            out++;
        s += w[i];
        s2 += (double)w[i] * w[i];
    }
    CHECK_EQ_INT(out, 0);
    CHECK_NEAR(s / n / bound, 0.0, 0.01);
    CHECK_NEAR(s2 / n / ((double)bound * bound), 1.0 / 3.0, 0.01);
    /* reproducible */
    float *w2 = fill(n, 0);
    dp_rng_seed(&r, 9876);
    dp_init_uniform(w2, n, bound, &r);
    CHECK(memcmp(w, w2, n * sizeof(float)) == 0);
    free(w), free(w2);
}

static void test_shapes_and_nan(void)
{
    CHECK_EQ_INT(dp_conv1d_out_len(1500, 4, 3), 499);
    CHECK_EQ_INT(dp_conv1d_out_len(499, 5, 1), 495);
    CHECK_EQ_INT(dp_conv1d_out_len(1500, 5, 3), 499);
    CHECK_EQ_INT(dp_conv1d_out_len(499, 4, 3), 166);
    CHECK_EQ_INT(dp_conv1d_out_len(3, 4, 1), 0);
    CHECK(dp_conv1d_scratch_floats(16, 200, 499, 200, 5, 1) >= (size_t)200 * 5 * 495);
    /* max-pool: NaN wins (as PyTorch), ties pick the first index, odd tail dropped */
    float x[7] = {1, NAN, 2, 2, -1, -3, 9};
    float y[3];
    int32_t a[3];
    dp_maxpool1d_forward(y, a, x, 1, 1, 7, 2);
    CHECK(isnan(y[0]));
    CHECK_EQ_INT(a[0], 1);
    CHECK(y[1] == 2 && a[1] == 2);
    CHECK(y[2] == -1 && a[2] == 4);
    /* cross-entropy stays finite with huge logits */
    float z[3] = {1e4f, -1e4f, 0}, pr[3];
    int lab = 1;
    float loss = dp_softmax_xent_forward(pr, z, &lab, 1, 3);
    CHECK_NEAR(loss, 2e4, 1.0);
    CHECK(pr[0] == 1.0f && pr[1] == 0.0f);
}

/* Scratch sized for a batch must serve every smaller batch (callers size it
 * once for their largest batch): non-decreasing in B for the CNN shapes. */
static void test_conv_scratch_monotonic(void)
{
    const int shapes[][5] = {{1, 1500, 200, 4, 3}, {200, 499, 200, 5, 1}, {1, 1500, 200, 5, 3},
                             {200, 499, 200, 4, 3}, {3, 100, 8, 3, 2}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int *q = shapes[s];
        size_t prev = 0;
        for (int B = 1; B <= 300; B++) {
            size_t n = dp_conv1d_scratch_floats(B, q[0], q[1], q[2], q[3], q[4]);
            if (n < prev) {
                fprintf(stderr, "  shape %zu: scratch(%d) = %zu < scratch(%d) = %zu\n", s, B, n, B - 1, prev);
                CHECK(n >= prev);
                break;
            }
            prev = n;
        }
    }
}

/* Class-weighted cross-entropy against values computed independently (in
 * double, by the formula PyTorch documents for cross_entropy(weight=w):
 * sum_i w_yi loss_i / sum_i w_yi, and its gradient). */
static void test_weighted_xent(void)
{
    const int B = 4, V = 3;
    const float z[12] = {1.0f, -2.0f, 0.5f, 0.2f, 0.1f, -0.3f, 3.0f, 1.0f, -1.0f, -0.5f, 2.5f, 0.0f};
    const int lab[4] = {0, 2, 1, 1};
    const float w[3] = {0.5f, 2.0f, 1.25f};
    const double want_d[12] = {-0.0344566177, 0.0026138163, 0.0318428014, 0.0865629002, 0.0783253511,
                               -0.1648882514, 0.3015002895, -0.3070224599, 0.0055221704, 0.0152996453,
                               -0.0405244960, 0.0252248507};
    float p[12], d[12], p0[12], d0[12];
    CHECK_NEAR(dp_softmax_wxent_forward(p, z, lab, w, B, V), 1.1412073381480434, 1e-6);
    dp_softmax_wxent_backward(d, p, lab, w, B, V);
    for (int i = 0; i < 12; i++)
        CHECK_NEAR(d[i], want_d[i], 1e-6);
    /* no weights: exactly the unweighted pair; equal weights: the same values */
    float l0 = dp_softmax_xent_forward(p0, z, lab, B, V);
    dp_softmax_xent_backward(d0, p0, lab, B, V);
    CHECK(dp_softmax_wxent_forward(p, z, lab, NULL, B, V) == l0);
    dp_softmax_wxent_backward(d, p, lab, NULL, B, V);
    CHECK(!memcmp(d, d0, sizeof d));
    const float ones[3] = {3, 3, 3};
    CHECK_NEAR(dp_softmax_wxent_forward(p, z, lab, ones, B, V), l0, 1e-6);
    dp_softmax_wxent_backward(d, p, lab, ones, B, V);
    for (int i = 0; i < 12; i++)
        CHECK_NEAR(d[i], d0[i], 1e-7);
    /* all weights of the batch zero: loss and gradient 0, not NaN */
    const float zero[3] = {0, 0, 0};
    CHECK(dp_softmax_wxent_forward(p, z, lab, zero, B, V) == 0.0f);
    dp_softmax_wxent_backward(d, p, lab, zero, B, V);
    for (int i = 0; i < 12; i++)
        CHECK(d[i] == 0.0f);
}

int main(void)
{
    dp_test_prog = "test_nn";
    dp_rng_seed(&trng, 12345);
    DP_RUN(test_conv1d_fixtures);
    DP_RUN(test_maxpool1d_fixtures);
    DP_RUN(test_linear_fixtures);
    DP_RUN(test_seqconv_fixtures);
    DP_RUN(test_rowscale);
    DP_RUN(test_relu_fixtures);
    DP_RUN(test_xent_fixtures);
    DP_RUN(test_weighted_xent);
    DP_RUN(test_mse_fixtures);
    DP_RUN(test_adam_fixtures);
    DP_RUN(test_conv1d_fd);
    DP_RUN(test_conv1d_vs_naive);
    DP_RUN(test_conv1d_cl);
    DP_RUN(test_conv1d_cl_many);
    DP_RUN(test_linear_fd);
    DP_RUN(test_maxpool1d_fd);
    DP_RUN(test_xent_fd);
    DP_RUN(test_mse_fd);
    DP_RUN(test_determinism);
    DP_RUN(test_adam_threads);
    DP_RUN(test_parallel_for);
    DP_RUN(test_thread_precision);
    DP_RUN(test_blas_core);
    DP_RUN(test_dropout);
    DP_RUN(test_init_uniform);
    DP_RUN(test_shapes_and_nan);
    DP_RUN(test_conv_scratch_monotonic);
    return dp_test_end();
}
