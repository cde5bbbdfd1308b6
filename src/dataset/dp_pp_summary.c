/* dp_pp_summary: a small strict JSON reader for summary.json (see
 * dp_pp_summary.h). It checks the whole text against the JSON grammar and
 * keeps a few top-level members; it builds no tree. */
#include "dataset/dp_pp_summary.h"

#include <stdlib.h>
#include <string.h>

#include "dataset/dp_dataset.h"
#include "util/dp_util.h"

#define MAX_DEPTH 64

typedef struct cursor {
    const char *p, *end;
} cursor;

/* What is kept of a scalar value. */
typedef struct scalar {
    int is_str;             /* a string of at most 16 characters, in str */
    char str[17];
    int is_uint;            /* an integer from 0 to 2^64-1, in num */
    uint64_t num;
} scalar;

static int parse_value(cursor *c, int depth, scalar *v);

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* A string at c->p (the opening quote); its characters (escapes decoded,
 * those beyond ASCII as '?') into out when it fits in cap - 1, else out
 * gets "" and *fits 0. */
static int parse_string(cursor *c, char *out, size_t cap, int *fits)
{
    size_t n = 0;
    *fits = 1;
    if (c->p >= c->end || *c->p++ != '"')
        return -1;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch < 0x20)
            return -1;
        if (ch == '\\') {
            if (c->p >= c->end)
                return -1;
            char e = *c->p++;
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *at = strchr(from, e);
            if (e == 'u') {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    int h = c->p < c->end ? hexval(*c->p++) : -1;
                    if (h < 0)
                        return -1;
                    v = v * 16 + (unsigned)h;
                }
                ch = v < 0x80 ? (unsigned char)v : '?';
            } else if (e && at) {
                ch = (unsigned char)to[at - from];
            } else {
                return -1;
            }
        }
        if (n + 1 < cap)
            out[n++] = (char)ch;
        else
            *fits = 0;
    }
    if (c->p >= c->end)
        return -1;
    c->p++;
    if (cap)
        out[*fits ? n : 0] = 0;
    return 0;
}

/* A number as the JSON grammar spells it; *is_uint and *num when it is an
 * integer from 0 to 2^64-1. */
static int parse_number(cursor *c, int *is_uint, uint64_t *num)
{
    const char *s = c->p;
    int neg = c->p < c->end && *c->p == '-', ovf = 0;
    uint64_t v = 0;
    c->p += neg;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return -1;
    if (*c->p == '0')
        c->p++;
    else
        for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++) {
            unsigned d = (unsigned)(*c->p - '0');
            ovf |= v > (UINT64_MAX - d) / 10;
            v = v * 10 + d;
        }
    const char *int_end = c->p;
    if (c->p < c->end && *c->p == '.') {
        if (++c->p >= c->end || *c->p < '0' || *c->p > '9')
            return -1;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return -1;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    *is_uint = !neg && !ovf && c->p == int_end && int_end > s;
    *num = v;
    return 0;
}

/* Keeps member `key` (value v) of the top-level object in sum when it is
 * one of its fields and the first of that name; -1 when its value is not
 * of the field's type. */
static int keep_member(dp_pp_summary *sum, unsigned *seen, const char *key, const scalar *v)
{
    static const char *const keys[] = {"fingerprint", "packets", "frames", "captures", "unreadable"};
    uint64_t *num[] = {NULL, &sum->packets, &sum->frames, &sum->captures, &sum->unreadable};
    for (unsigned i = 0; i < 5; i++) {
        if (strcmp(key, keys[i]) != 0 || (*seen & (1u << i)))
            continue;
        *seen |= 1u << i;
        if (i == 0 ? !v->is_str : !v->is_uint)
            return -1;
        if (i == 0)
            memcpy(sum->fingerprint, v->str, sizeof v->str);
        else
            *num[i] = v->num;
    }
    return 0;
}

/* An array or an object at c->p; the members of the top-level object
 * (sum not NULL) that sum names are kept. */
static int parse_container(cursor *c, int depth, dp_pp_summary *sum)
{
    int obj = *c->p == '{';
    char close = obj ? '}' : ']';
    unsigned seen = 0;
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    for (;;) {
        char key[32] = "";
        int fits = 1;
        scalar v;
        if (obj) {
            if (parse_string(c, key, sizeof key, &fits) != 0)
                return -1;
            skip_ws(c);
            if (c->p >= c->end || *c->p++ != ':')
                return -1;
            skip_ws(c);
        }
        if (parse_value(c, depth + 1, &v) != 0)
            return -1;
        if (sum && obj && fits && keep_member(sum, &seen, key, &v) != 0)
            return -1;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            skip_ws(c);
            continue;
        }
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 0;
        }
        return -1;
    }
}

/* Any value at c->p (nested depth deep); what is kept of it into *v. */
static int parse_value(cursor *c, int depth, scalar *v)
{
    memset(v, 0, sizeof *v);
    if (depth > MAX_DEPTH || c->p >= c->end)
        return -1;
    char ch = *c->p;
    if (ch == '{' || ch == '[')
        return parse_container(c, depth, NULL);
    if (ch == '"')
        return parse_string(c, v->str, sizeof v->str, &v->is_str);
    static const char *const lit[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(lit[i]);
        if ((size_t)(c->end - c->p) >= n && !memcmp(c->p, lit[i], n)) {
            c->p += n;
            return 0;
        }
    }
    return parse_number(c, &v->is_uint, &v->num);
}

int dp_pp_summary_parse(const char *text, size_t len, dp_pp_summary *s)
{
    memset(s, 0, sizeof *s);
    cursor c = {text, text + len};
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{' || parse_container(&c, 1, s) != 0)
        return -1;
    skip_ws(&c);
    return c.p == c.end ? 0 : -1;
}

int dp_pp_summary_read(const char *dir, dp_pp_summary *s)
{
    char *p = dp_path_join(dir, DP_FILE_SUMMARY_JSON);
    size_t len = 0;
    char *text = p ? dp_read_file(p, &len, NULL) : NULL;
    int rc = text ? dp_pp_summary_parse(text, len, s) : -1;
    free(text);
    free(p);
    return rc;
}
