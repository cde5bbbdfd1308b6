/* dp_gbt_check: what a gbt model's booster blob must be before XGBoost
 * reads it (the rules are in dp_gbt_check.h). */
#include "model/dp_gbt_check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/dp_ubj.h"

#define ROOT_PARENT 2147483647  /* a root's parent as XGBoost writes it */
#define DELETED_SPLIT 2147483647 /* a deleted node's split index */
#define MAX_COUNT 2147483647     /* node and tree counts are int32 in XGBoost */

typedef struct chk {
    int nf, nc;
    char *msg;
    size_t cap;
} chk;

static int bad(const chk *k, const char *fmt, ...)
{
    if (k->msg && k->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(k->msg, k->cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* One expected member of an object. */
typedef struct field {
    const char *name;
    dp_ubj_type type;
    char elem; /* DP_UBJ_TYPED: the element type */
    int optional;
} field;

static const char *type_name(dp_ubj_type t)
{
    static const char *const names[] = {"null", "a boolean", "an integer", "a number", "a string",
                                        "an array", "a typed array", "an object"};
    return names[t];
}

/* A string for a message: up to 40 bytes, unprintable ones as '?'. */
static const char *text(const dp_ubj *s, char out[48])
{
    size_t m = s->n < 40 ? (size_t)s->n : 40;
    for (size_t i = 0; i < m; i++)
        out[i] = s->p[i] >= 0x20 && s->p[i] < 0x7f ? (char)s->p[i] : '?';
    strcpy(out + m, s->n > 40 ? "..." : "");
    return out;
}

/* obj's members into vals[0..n) in f's order: exactly the fields f (the
 * optional ones may be absent: vals[i].end NULL), each of its type. */
static int members(const chk *k, const dp_ubj *obj, const char *what, const field *f, int n, dp_ubj *vals)
{
    dp_ubj_iter it;
    dp_ubj key, val;
    char tb[48];
    int r;
    if (obj->type != DP_UBJ_OBJECT || dp_ubj_iter_init(obj, &it) != 0)
        return bad(k, "%s is %s, not an object", what, type_name(obj->type));
    memset(vals, 0, (size_t)n * sizeof *vals);
    while ((r = dp_ubj_next(&it, &key, &val)) == 1) {
        int i = 0;
        while (i < n && !dp_ubj_str_eq(&key, f[i].name))
            i++;
        if (i == n)
            return bad(k, "%s has an unexpected member \"%s\"", what, text(&key, tb));
        if (val.type != f[i].type)
            return bad(k, "%s: \"%s\" is %s, not %s", what, f[i].name, type_name(val.type), type_name(f[i].type));
        if (val.type == DP_UBJ_TYPED && val.elem != f[i].elem)
            return bad(k, "%s: \"%s\" has elements of type '%c', not '%c'", what, f[i].name, val.elem, f[i].elem);
        vals[i] = val;
    }
    if (r < 0)
        return bad(k, "%s: malformed", what);
    for (int i = 0; i < n; i++)
        if (!vals[i].end && !f[i].optional)
            return bad(k, "%s has no \"%s\"", what, f[i].name);
    return 0;
}

/* A parameter as XGBoost writes one (std::to_string: decimal digits, no
 * sign, no leading zero) into *out, at most max. */
static int count_param(const chk *k, const dp_ubj *v, const char *what, const char *name, int64_t max,
                       int64_t *out)
{
    char tb[48];
    int64_t x = 0;
    int ok = v->n >= 1 && v->n <= 18 && (v->p[0] != '0' || v->n == 1);
    for (uint64_t i = 0; ok && i < v->n; i++) {
        ok = v->p[i] >= '0' && v->p[i] <= '9';
        x = x * 10 + (v->p[i] - '0');
    }
    if (!ok || x > max)
        return bad(k, "%s: %s \"%s\" is not a count up to %lld", what, name, text(v, tb), (long long)max);
    *out = x;
    return 0;
}

/* The same, which must be want. */
static int param_is(const chk *k, const dp_ubj *v, const char *what, const char *name, int64_t want)
{
    int64_t x;
    if (count_param(k, v, what, name, MAX_COUNT, &x) != 0)
        return -1;
    if (x != want)
        return bad(k, "%s: %s %lld, not %lld", what, name, (long long)x, (long long)want);
    return 0;
}

/* base_score as XGBoost writes it ("5E-1", "1.2345E-1"):
 * [-]digits[.digits][E[+|-]digits], read without the C locale's help. */
static int float_param(const dp_ubj *v, double *x)
{
    const uint8_t *s = v->p, *e = s + (v->n < 40 ? v->n : 0);
    double m = 0;
    int neg = s < e && *s == '-', digits = 0, ex = 0, edigits = 0, eneg = 0, ev = 0;
    for (s += neg; s < e && *s >= '0' && *s <= '9'; s++, digits++)
        m = m * 10 + (*s - '0');
    if (s < e && *s == '.')
        for (s++; s < e && *s >= '0' && *s <= '9'; s++, digits++, ex--)
            m = m * 10 + (*s - '0');
    if (s < e && (*s == 'E' || *s == 'e')) {
        s++;
        if (s < e && (*s == '-' || *s == '+'))
            eneg = *s++ == '-';
        for (; s < e && *s >= '0' && *s <= '9'; s++, edigits++)
            ev = ev < 100000 ? ev * 10 + (*s - '0') : ev;
        if (!edigits)
            return -1;
        ex += eneg ? -ev : ev;
    }
    if (!digits || s != e)
        return -1;
    *x = (neg ? -m : m) * pow(10, ex);
    return 0;
}

/* learner_model_param: the class count and the features of the model's
 * rows, a finite base score. */
static int check_learner_param(const chk *k, const dp_ubj *lmp)
{
    enum { BASE, AVG, NCLASS, NFEAT, NTARGET, N };
    static const field F[N] = {{"base_score", DP_UBJ_STRING, 0, 0},   {"boost_from_average", DP_UBJ_STRING, 0, 1},
                               {"num_class", DP_UBJ_STRING, 0, 0},    {"num_feature", DP_UBJ_STRING, 0, 0},
                               {"num_target", DP_UBJ_STRING, 0, 1}};
    const char *what = "learner_model_param";
    dp_ubj v[N];
    int64_t nc, nf, x;
    double base;
    char tb[48];
    if (members(k, lmp, what, F, N, v) != 0 || count_param(k, &v[NCLASS], what, "num_class", MAX_COUNT, &nc) != 0 ||
        count_param(k, &v[NFEAT], what, "num_feature", MAX_COUNT, &nf) != 0)
        return -1;
    if (nc != k->nc)
        return bad(k, "%lld classes, the model has %d", (long long)nc, k->nc);
    if (nf != k->nf)
        return bad(k, "takes %lld features, the model's flow rows have %d", (long long)nf, k->nf);
    if (v[AVG].end && (count_param(k, &v[AVG], what, "boost_from_average", 1, &x) != 0))
        return -1;
    if (v[NTARGET].end && param_is(k, &v[NTARGET], what, "num_target", 1) != 0)
        return -1;
    if (float_param(&v[BASE], &base) != 0 || !(fabs(base) <= DP_GBT_MAX_ABS))
        return bad(k, "%s: base_score \"%s\" is not a number within +-%g", what, text(&v[BASE], tb),
                   (double)DP_GBT_MAX_ABS);
    return 0;
}

/* objective: multi:softprob over the model's classes. */
static int check_objective(const chk *k, const dp_ubj *obj)
{
    static const field F[2] = {{"name", DP_UBJ_STRING, 0, 0}, {"softmax_multiclass_param", DP_UBJ_OBJECT, 0, 0}};
    static const field P[1] = {{"num_class", DP_UBJ_STRING, 0, 0}};
    dp_ubj v[2], p[1];
    char tb[48];
    int64_t nc;
    if (members(k, obj, "objective", F, 2, v) != 0)
        return -1;
    if (!dp_ubj_str_eq(&v[0], "multi:softprob"))
        return bad(k, "objective \"%s\", not multi:softprob", text(&v[0], tb));
    if (members(k, &v[1], "softmax_multiclass_param", P, 1, p) != 0 ||
        count_param(k, &p[0], "softmax_multiclass_param", "num_class", MAX_COUNT, &nc) != 0)
        return -1;
    if (nc != k->nc)
        return bad(k, "objective over %lld classes, the model has %d", (long long)nc, k->nc);
    return 0;
}

/* ---- one tree ------------------------------------------------------------ */

enum {
    T_BASE_W, T_CATS, T_CAT_NODES, T_CAT_SEGS, T_CAT_SIZES, T_DEFAULT_LEFT, T_ID, T_LEFT, T_LOSS, T_PARENTS,
    T_RIGHT, T_COND, T_SPLIT, T_SPLIT_TYPE, T_HESS, T_PARAM, T_NFIELDS
};
static const field TREE[T_NFIELDS] = {
    {"base_weights", DP_UBJ_TYPED, 'd', 0},     {"categories", DP_UBJ_TYPED, 'l', 0},
    {"categories_nodes", DP_UBJ_TYPED, 'l', 0}, {"categories_segments", DP_UBJ_TYPED, 'L', 0},
    {"categories_sizes", DP_UBJ_TYPED, 'L', 0}, {"default_left", DP_UBJ_TYPED, 'U', 0},
    {"id", DP_UBJ_INT, 0, 0},                   {"left_children", DP_UBJ_TYPED, 'l', 0},
    {"loss_changes", DP_UBJ_TYPED, 'd', 0},     {"parents", DP_UBJ_TYPED, 'l', 0},
    {"right_children", DP_UBJ_TYPED, 'l', 0},   {"split_conditions", DP_UBJ_TYPED, 'd', 0},
    {"split_indices", DP_UBJ_TYPED, 'l', 0},    {"split_type", DP_UBJ_TYPED, 'U', 0},
    {"sum_hessian", DP_UBJ_TYPED, 'd', 0},      {"tree_param", DP_UBJ_OBJECT, 0, 0},
};

/* One node's entries (the arrays' lengths are checked: the reads succeed). */
typedef struct node {
    int64_t left, right, parent, split, default_left, split_type;
    float cond, base_w, loss, hess;
} node;

static void read_node(const dp_ubj *f, int64_t i, node *n)
{
    dp_ubj_int_at(&f[T_LEFT], (uint64_t)i, &n->left);
    dp_ubj_int_at(&f[T_RIGHT], (uint64_t)i, &n->right);
    dp_ubj_int_at(&f[T_PARENTS], (uint64_t)i, &n->parent);
    dp_ubj_int_at(&f[T_SPLIT], (uint64_t)i, &n->split);
    dp_ubj_int_at(&f[T_DEFAULT_LEFT], (uint64_t)i, &n->default_left);
    dp_ubj_int_at(&f[T_SPLIT_TYPE], (uint64_t)i, &n->split_type);
    dp_ubj_float_at(&f[T_COND], (uint64_t)i, &n->cond);
    dp_ubj_float_at(&f[T_BASE_W], (uint64_t)i, &n->base_w);
    dp_ubj_float_at(&f[T_LOSS], (uint64_t)i, &n->loss);
    dp_ubj_float_at(&f[T_HESS], (uint64_t)i, &n->hess);
}

static int value_ok(const chk *k, int t, int64_t i, const char *what, float x)
{
    if (!isfinite(x))
        return bad(k, "tree %d node %lld: %s %g is not finite", t, (long long)i, what, (double)x);
    if (fabsf(x) > DP_GBT_MAX_ABS)
        return bad(k, "tree %d node %lld: %s %g is beyond +-%g", t, (long long)i, what, (double)x,
                   (double)DP_GBT_MAX_ABS);
    return 0;
}

/* Node i on its own: its values, and for a split its children (their
 * parent i) and its feature. */
static int check_node(const chk *k, int t, const dp_ubj *f, int64_t nn, int64_t i)
{
    node n, c;
    read_node(f, i, &n);
    if (n.default_left > 1 || n.split_type != 0)
        return bad(k, "tree %d node %lld: default_left %lld, split type %lld (only numerical splits)", t,
                   (long long)i, (long long)n.default_left, (long long)n.split_type);
    if (value_ok(k, t, i, "base weight", n.base_w) != 0)
        return -1;
    if (!isfinite(n.loss) || !isfinite(n.hess))
        return bad(k, "tree %d node %lld: loss change %g, hessian sum %g", t, (long long)i, (double)n.loss,
                   (double)n.hess);
    if (i > 0 ? n.parent < 0 || n.parent >= nn : n.parent != ROOT_PARENT)
        return bad(k, "tree %d node %lld: parent %lld", t, (long long)i, (long long)n.parent);
    if (n.left == -1 && n.right == -1)
        return value_ok(k, t, i, "leaf value", n.cond);
    if (n.left < 1 || n.left >= nn || n.right < 1 || n.right >= nn || n.left == n.right)
        return bad(k, "tree %d node %lld: children %lld and %lld, not two of nodes 1..%lld", t, (long long)i,
                   (long long)n.left, (long long)n.right, (long long)nn - 1);
    if (n.split < 0 || n.split >= k->nf)
        return bad(k, "tree %d node %lld splits on feature %lld of %d", t, (long long)i, (long long)n.split, k->nf);
    if (value_ok(k, t, i, "split threshold", n.cond) != 0)
        return -1;
    for (int side = 0; side < 2; side++) {
        int64_t ch = side ? n.right : n.left;
        read_node(f, ch, &c);
        if (c.parent != i)
            return bad(k, "tree %d node %lld: child %lld has parent %lld", t, (long long)i, (long long)ch,
                       (long long)c.parent);
    }
    return 0;
}

/* The nodes reachable from the root: each once (a tree: no cycle, no
 * shared child); the others exactly the num_deleted deleted leaves. */
static int check_reach(const chk *k, int t, const dp_ubj *f, int64_t nn, int64_t deleted)
{
    uint8_t *seen = calloc((size_t)nn, 1);
    int32_t *queue = malloc((size_t)nn * sizeof *queue);
    int rc = 0;
    if (!seen || !queue) {
        free(seen), free(queue);
        return bad(k, "tree %d: out of memory for %lld nodes", t, (long long)nn);
    }
    int64_t head = 0, tail = 0, unreached = 0;
    node n;
    queue[tail++] = 0, seen[0] = 1;
    while (rc == 0 && head < tail) {
        read_node(f, queue[head++], &n);
        for (int side = 0; rc == 0 && n.left != -1 && side < 2; side++) {
            int64_t ch = side ? n.right : n.left;
            if (seen[ch])
                rc = bad(k, "tree %d: node %lld reached twice from the root", t, (long long)ch);
            else
                seen[ch] = 1, queue[tail++] = (int32_t)ch;
        }
        if (rc == 0 && n.left == -1 && (n.split < 0 || n.split >= k->nf))
            rc = bad(k, "tree %d node %d: a leaf with split index %lld of %d", t, queue[head - 1],
                     (long long)n.split, k->nf);
    }
    for (int64_t i = 1; rc == 0 && i < nn; i++) {
        if (seen[i])
            continue;
        read_node(f, i, &n);
        if (n.left != -1 || n.split != DELETED_SPLIT || n.default_left != 1)
            rc = bad(k, "tree %d node %lld: not reachable from the root", t, (long long)i);
        unreached++;
    }
    if (rc == 0 && unreached != deleted)
        rc = bad(k, "tree %d: %lld deleted nodes, num_deleted %lld", t, (long long)unreached, (long long)deleted);
    free(seen), free(queue);
    return rc;
}

/* tree_param: the node count (*nn) and deleted nodes (*deleted). */
static int check_tree_param(const chk *k, int t, const dp_ubj *tp, int64_t *nn, int64_t *deleted)
{
    static const field F[4] = {{"num_deleted", DP_UBJ_STRING, 0, 0}, {"num_feature", DP_UBJ_STRING, 0, 0},
                               {"num_nodes", DP_UBJ_STRING, 0, 0}, {"size_leaf_vector", DP_UBJ_STRING, 0, 0}};
    char what[48];
    dp_ubj v[4];
    snprintf(what, sizeof what, "tree %d tree_param", t);
    if (members(k, tp, what, F, 4, v) != 0 || count_param(k, &v[2], what, "num_nodes", MAX_COUNT, nn) != 0 ||
        count_param(k, &v[0], what, "num_deleted", MAX_COUNT, deleted) != 0 ||
        param_is(k, &v[1], what, "num_feature", k->nf) != 0 || param_is(k, &v[3], what, "size_leaf_vector", 0) != 0)
        return -1;
    if (*nn < 1 || *deleted >= *nn)
        return bad(k, "%s: %lld nodes, %lld deleted", what, (long long)*nn, (long long)*deleted);
    return 0;
}

static int check_tree(const chk *k, int t, const dp_ubj *tree)
{
    char what[32];
    dp_ubj f[T_NFIELDS];
    int64_t nn, deleted;
    snprintf(what, sizeof what, "tree %d", t);
    if (members(k, tree, what, TREE, T_NFIELDS, f) != 0)
        return -1;
    if (f[T_ID].i != t)
        return bad(k, "tree %d has id %lld", t, (long long)f[T_ID].i);
    if (check_tree_param(k, t, &f[T_PARAM], &nn, &deleted) != 0)
        return -1;
    for (int i = 0; i < T_NFIELDS; i++) {
        uint64_t want = i >= T_CATS && i <= T_CAT_SIZES ? 0 : (uint64_t)nn;
        if (f[i].type == DP_UBJ_TYPED && f[i].n != want)
            return bad(k, "tree %d: %s has %llu elements, not %llu%s", t, TREE[i].name, (unsigned long long)f[i].n,
                       (unsigned long long)want, want ? "" : " (no categorical splits)");
    }
    for (int64_t i = 0; i < nn; i++)
        if (check_node(k, t, f, nn, i) != 0)
            return -1;
    return check_reach(k, t, f, nn, deleted);
}

/* ---- the booster ------------------------------------------------------- */

/* gradient_booster's model: T trees, a multiple of the classes, tree t for
 * class t % C (as XGBoost boosts one tree per class and round). */
static int check_model(const chk *k, const dp_ubj *model)
{
    static const field F[3] = {{"gbtree_model_param", DP_UBJ_OBJECT, 0, 0}, {"tree_info", DP_UBJ_ARRAY, 0, 0},
                               {"trees", DP_UBJ_ARRAY, 0, 0}};
    static const field P[3] = {{"num_parallel_tree", DP_UBJ_STRING, 0, 0}, {"num_trees", DP_UBJ_STRING, 0, 0},
                               {"size_leaf_vector", DP_UBJ_STRING, 0, 0}};
    const char *what = "gbtree_model_param";
    dp_ubj v[3], p[3], e;
    dp_ubj_iter it;
    int64_t nt;
    if (members(k, model, "model", F, 3, v) != 0 || members(k, &v[0], what, P, 3, p) != 0 ||
        param_is(k, &p[0], what, "num_parallel_tree", 1) != 0 || param_is(k, &p[2], what, "size_leaf_vector", 0) != 0 ||
        count_param(k, &p[1], what, "num_trees", MAX_COUNT, &nt) != 0)
        return -1;
    if (nt < 1 || nt % k->nc != 0 || v[1].n != (uint64_t)nt || v[2].n != (uint64_t)nt)
        return bad(k, "%lld trees (%llu listed, %llu with a class) for %d classes", (long long)nt,
                   (unsigned long long)v[2].n, (unsigned long long)v[1].n, k->nc);
    int t = 0, r;
    dp_ubj_iter_init(&v[1], &it);
    for (; (r = dp_ubj_next(&it, NULL, &e)) == 1; t++)
        if (e.type != DP_UBJ_INT || e.i != t % k->nc)
            return bad(k, "tree %d is for class %lld, not %d", t, e.type == DP_UBJ_INT ? (long long)e.i : -1LL,
                       t % k->nc);
    if (r < 0 || t != nt)
        return bad(k, "tree_info: malformed");
    dp_ubj_iter_init(&v[2], &it);
    for (t = 0; (r = dp_ubj_next(&it, NULL, &e)) == 1; t++)
        if (check_tree(k, t, &e) != 0)
            return -1;
    if (r < 0 || t != nt)
        return bad(k, "trees: malformed");
    return 0;
}

static int check_learner(const chk *k, const dp_ubj *learner)
{
    enum { ATTR, FNAMES, FTYPES, GB, LMP, OBJ, N };
    static const field F[N] = {{"attributes", DP_UBJ_OBJECT, 0, 0},          {"feature_names", DP_UBJ_ARRAY, 0, 0},
                               {"feature_types", DP_UBJ_ARRAY, 0, 0},        {"gradient_booster", DP_UBJ_OBJECT, 0, 0},
                               {"learner_model_param", DP_UBJ_OBJECT, 0, 0}, {"objective", DP_UBJ_OBJECT, 0, 0}};
    static const field G[2] = {{"model", DP_UBJ_OBJECT, 0, 0}, {"name", DP_UBJ_STRING, 0, 0}};
    dp_ubj v[N], g[2], key, val;
    dp_ubj_iter it;
    char tb[48];
    if (members(k, learner, "learner", F, N, v) != 0)
        return -1;
    dp_ubj_iter_init(&v[ATTR], &it);
    while (dp_ubj_next(&it, &key, &val) == 1)
        if (val.type != DP_UBJ_STRING)
            return bad(k, "attribute \"%s\" is %s, not a string", text(&key, tb), type_name(val.type));
    if (v[FNAMES].n || v[FTYPES].n)
        return bad(k, "%llu feature names, %llu feature types (the flow rows have none)",
                   (unsigned long long)v[FNAMES].n, (unsigned long long)v[FTYPES].n);
    if (check_learner_param(k, &v[LMP]) != 0 || check_objective(k, &v[OBJ]) != 0 ||
        members(k, &v[GB], "gradient_booster", G, 2, g) != 0)
        return -1;
    if (!dp_ubj_str_eq(&g[1], "gbtree"))
        return bad(k, "gradient_booster \"%s\", not gbtree", text(&g[1], tb));
    return check_model(k, &g[0]);
}

int dp_gbt_check_booster(const uint8_t *blob, size_t len, int nfeatures, int nclasses, char *msg, size_t cap)
{
    static const field F[2] = {{"learner", DP_UBJ_OBJECT, 0, 0}, {"version", DP_UBJ_ARRAY, 0, 0}};
    chk k = {nfeatures, nclasses, msg, cap};
    char pm[200];
    dp_ubj root, v[2], e;
    dp_ubj_iter it;
    if (nfeatures < 1 || nclasses < 1)
        return bad(&k, "checked for %d features, %d classes", nfeatures, nclasses);
    if (dp_ubj_parse(blob, len, &root, pm, sizeof pm) != 0)
        return bad(&k, "not the UBJSON XGBoost writes: %s", pm);
    if (members(&k, &root, "the booster", F, 2, v) != 0)
        return -1;
    dp_ubj_iter_init(&v[1], &it);
    int ok = v[1].n == 3;
    while (ok && dp_ubj_next(&it, NULL, &e) == 1)
        ok = e.type == DP_UBJ_INT && e.i >= 0;
    if (!ok)
        return bad(&k, "version is not 3 integers");
    return check_learner(&k, &v[0]);
}
