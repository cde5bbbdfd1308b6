/* dp_ubj: the UBJSON subset XGBoost 1.7 writes, read with every length
 * checked (format and contract in dp_ubj.h). */
#include "model/dp_ubj.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Where messages go and what offsets count from (base NULL: no message). */
typedef struct ubj_ctx {
    const uint8_t *base;
    char *msg;
    size_t cap;
} ubj_ctx;

static int fail(const ubj_ctx *c, const uint8_t *at, const char *fmt, ...)
{
    if (!c->msg || !c->cap)
        return -1;
    int n = snprintf(c->msg, c->cap, "byte %zu: ", (size_t)(at - c->base));
    if (n >= 0 && (size_t)n < c->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg + n, c->cap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A marker byte for a message: "'x'" when printable, else "0xNN". */
static const char *marker(uint8_t b, char out[8])
{
    if (b >= 0x21 && b < 0x7f)
        snprintf(out, 8, "'%c'", b);
    else
        snprintf(out, 8, "0x%02x", b);
    return out;
}

static uint64_t be_uint(const uint8_t *p, int nb)
{
    uint64_t v = 0;
    for (int i = 0; i < nb; i++)
        v = v << 8 | p[i];
    return v;
}

static size_t left(const uint8_t *p, const uint8_t *end)
{
    return p < end ? (size_t)(end - p) : 0;
}

/* The 'L' int64 length or count at p, which must be at most max (what the
 * bytes after it can hold); 0, or -1 + message ("what" names it). */
static int count_at(const ubj_ctx *c, const uint8_t *p, const uint8_t *end, size_t per, const char *what,
                    uint64_t *n)
{
    char mk[8];
    if (left(p, end) < 9)
        return fail(c, p, "%s cut off (%zu bytes left)", what, left(p, end));
    if (p[0] != 'L')
        return fail(c, p, "%s of type %s (XGBoost writes 'L')", what, marker(p[0], mk));
    uint64_t v = be_uint(p + 1, 8);
    size_t room = left(p + 9, end) / per;
    if (v > room)
        return fail(c, p, "%s %llu, but %zu bytes left", what, (unsigned long long)v, left(p + 9, end));
    *n = v;
    return 0;
}

/* An integer of nb bytes (1, 2, 4, 8), two's complement. */
static int64_t be_int(const uint8_t *p, int nb)
{
    uint64_t u = be_uint(p, nb);
    if (nb < 8 && (u >> (8 * nb - 1)) & 1)
        u |= ~(uint64_t)0 << (8 * nb);
    return (int64_t)u;
}

static float be_float(const uint8_t *p)
{
    uint32_t u = (uint32_t)be_uint(p, 4);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int value(const ubj_ctx *c, const uint8_t *p, const uint8_t *end, int depth, dp_ubj *v);

/* A typed array, p at '$'. */
static int typed_array(const ubj_ctx *c, const uint8_t *p, const uint8_t *end, dp_ubj *v)
{
    char mk[8];
    if (left(p, end) < 3)
        return fail(c, p, "typed array header cut off");
    size_t size = p[1] == 'd' || p[1] == 'l' ? 4 : p[1] == 'L' ? 8 : p[1] == 'U' ? 1 : 0;
    if (!size)
        return fail(c, p + 1, "typed array of type %s (XGBoost writes 'd', 'l', 'L', 'U')", marker(p[1], mk));
    if (p[2] != '#')
        return fail(c, p + 2, "typed array without a count");
    uint64_t n;
    if (count_at(c, p + 3, end, size, "typed array count", &n) != 0)
        return -1;
    v->type = DP_UBJ_TYPED;
    v->elem = (char)p[1];
    v->n = n;
    v->p = p + 12;
    v->end = v->p + n * size;
    return 0;
}

/* An array, p after its '['. */
static int array(const ubj_ctx *c, const uint8_t *p, const uint8_t *end, int depth, dp_ubj *v)
{
    if (depth >= DP_UBJ_MAX_DEPTH)
        return fail(c, p - 1, "containers nested deeper than %d", DP_UBJ_MAX_DEPTH);
    if (p < end && *p == '$')
        return typed_array(c, p, end, v);
    if (p >= end || *p != '#')
        return fail(c, p, "array without a count (XGBoost writes '[#L')");
    uint64_t n;
    if (count_at(c, p + 1, end, 1, "array count", &n) != 0)
        return -1;
    const uint8_t *q = p + 10;
    for (uint64_t k = 0; k < n; k++) {
        dp_ubj e;
        if (value(c, q, end, depth + 1, &e) != 0)
            return -1;
        q = e.end;
    }
    v->type = DP_UBJ_ARRAY;
    v->n = n;
    v->p = p + 10;
    v->end = q;
    return 0;
}

/* <0, 0, >0 as key a sorts before, with or after b (std::string's order). */
static int key_cmp(const uint8_t *a, uint64_t na, const uint8_t *b, uint64_t nb)
{
    int r = memcmp(a, b, na < nb ? na : nb);
    return r ? r : (na > nb) - (na < nb);
}

/* A key for a message: up to 40 bytes, unprintable ones as '?'. */
static const char *key_text(const uint8_t *k, uint64_t n, char out[48])
{
    size_t m = n < 40 ? (size_t)n : 40;
    for (size_t i = 0; i < m; i++)
        out[i] = k[i] >= 0x20 && k[i] < 0x7f ? (char)k[i] : '?';
    strcpy(out + m, n > 40 ? "..." : "");
    return out;
}

/* An object, p after its '{'. */
static int object(const ubj_ctx *c, const uint8_t *p, const uint8_t *end, int depth, dp_ubj *v)
{
    if (depth >= DP_UBJ_MAX_DEPTH)
        return fail(c, p - 1, "containers nested deeper than %d", DP_UBJ_MAX_DEPTH);
    const uint8_t *q = p, *prev = NULL;
    uint64_t prev_n = 0, members = 0;
    while (q < end && *q != '}') {
        uint64_t kn;
        if (count_at(c, q, end, 1, "key length", &kn) != 0)
            return -1;
        const uint8_t *k = q + 9;
        if (prev && key_cmp(prev, prev_n, k, kn) >= 0) {
            char a[48], b[48];
            return fail(c, q, "key \"%s\" after \"%s\": keys repeated or out of order", key_text(k, kn, a),
                        key_text(prev, prev_n, b));
        }
        dp_ubj e;
        if (value(c, k + kn, end, depth + 1, &e) != 0)
            return -1;
        prev = k, prev_n = kn;
        q = e.end;
        members++;
    }
    if (q >= end)
        return fail(c, q, "object not closed");
    v->type = DP_UBJ_OBJECT;
    v->n = members;
    v->p = p;
    v->end = q + 1;
    return 0;
}

/* A scalar's payload size for marker t (0: t is no scalar marker). */
static size_t scalar_size(uint8_t t)
{
    switch (t) {
    case 'Z': case 'T': case 'F': return 1;
    case 'i': return 2;
    case 'I': return 3;
    case 'l': case 'd': return 5;
    case 'L': return 9;
    default: return 0;
    }
}

/* The value at p (which must end by end) into *v; depth counts the
 * containers around it. 0, or -1 + message. */
static int value(const ubj_ctx *c, const uint8_t *p, const uint8_t *end, int depth, dp_ubj *v)
{
    char mk[8];
    memset(v, 0, sizeof *v);
    if (p >= end)
        return fail(c, p, "value cut off");
    uint8_t t = *p;
    if (t == '[')
        return array(c, p + 1, end, depth, v);
    if (t == '{')
        return object(c, p + 1, end, depth, v);
    if (t == 'S') {
        if (count_at(c, p + 1, end, 1, "string length", &v->n) != 0)
            return -1;
        v->type = DP_UBJ_STRING;
        v->p = p + 10;
        v->end = v->p + v->n;
        return 0;
    }
    size_t size = scalar_size(t);
    if (!size)
        return fail(c, p, "type %s (not one XGBoost writes)", marker(t, mk));
    if (left(p, end) < size)
        return fail(c, p, "%s value cut off", marker(t, mk));
    v->end = p + size;
    if (t == 'Z') {
        v->type = DP_UBJ_NULL;
    } else if (t == 'T' || t == 'F') {
        v->type = DP_UBJ_BOOL;
        v->i = t == 'T';
    } else if (t == 'd') {
        v->type = DP_UBJ_FLOAT;
        v->f = be_float(p + 1);
    } else {
        v->type = DP_UBJ_INT;
        v->i = be_int(p + 1, (int)size - 1);
    }
    return 0;
}

int dp_ubj_parse(const uint8_t *buf, size_t len, dp_ubj *root, char *msg, size_t cap)
{
    static const uint8_t none[1];
    if (!buf)
        buf = none, len = 0;
    ubj_ctx c = {buf, msg, cap};
    if (value(&c, buf, buf + len, 0, root) != 0)
        return -1;
    if (root->end != buf + len)
        return fail(&c, root->end, "%zu bytes after the end of the value", left(root->end, buf + len));
    return 0;
}

int dp_ubj_iter_init(const dp_ubj *v, dp_ubj_iter *it)
{
    if (v->type != DP_UBJ_ARRAY && v->type != DP_UBJ_OBJECT)
        return -1;
    it->p = v->p;
    it->end = v->end;
    it->left = v->n;
    it->object = v->type == DP_UBJ_OBJECT;
    return 0;
}

int dp_ubj_next(dp_ubj_iter *it, dp_ubj *key, dp_ubj *val)
{
    if (!it->left)
        return 0;
    ubj_ctx c = {NULL, NULL, 0};
    const uint8_t *q = it->p;
    if (it->object) {
        uint64_t kn;
        if (count_at(&c, q, it->end, 1, "key length", &kn) != 0)
            return -1;
        if (key) {
            memset(key, 0, sizeof *key);
            key->type = DP_UBJ_STRING;
            key->p = q + 9;
            key->n = kn;
            key->end = q + 9 + kn;
        }
        q += 9 + kn;
    }
    if (value(&c, q, it->end, 0, val) != 0)
        return -1;
    it->p = val->end;
    it->left--;
    return 1;
}

int dp_ubj_get(const dp_ubj *obj, const char *key, dp_ubj *val)
{
    dp_ubj_iter it;
    if (obj->type != DP_UBJ_OBJECT || dp_ubj_iter_init(obj, &it) != 0)
        return -1;
    size_t n = strlen(key);
    dp_ubj k;
    int r;
    while ((r = dp_ubj_next(&it, &k, val)) == 1) {
        int cmp = key_cmp(k.p, k.n, (const uint8_t *)key, n);
        if (cmp == 0)
            return 1;
        if (cmp > 0) /* keys are in order: it is not further on */
            return 0;
    }
    return r;
}

int dp_ubj_str_eq(const dp_ubj *v, const char *s)
{
    size_t n = strlen(s);
    return v->type == DP_UBJ_STRING && v->n == n && memcmp(v->p, s, n) == 0;
}

int dp_ubj_int_at(const dp_ubj *a, uint64_t k, int64_t *out)
{
    if (a->type != DP_UBJ_TYPED || k >= a->n)
        return -1;
    if (a->elem == 'l')
        *out = be_int(a->p + 4 * k, 4);
    else if (a->elem == 'L')
        *out = be_int(a->p + 8 * k, 8);
    else if (a->elem == 'U')
        *out = a->p[k];
    else
        return -1;
    return 0;
}

int dp_ubj_float_at(const dp_ubj *a, uint64_t k, float *out)
{
    if (a->type != DP_UBJ_TYPED || a->elem != 'd' || k >= a->n)
        return -1;
    *out = be_float(a->p + 4 * k);
    return 0;
}
