/* dp_model_fixture: reader of the PyTorch reference fixtures written by
 * tools/make_model_fixtures.py (tests/fixtures/model_*.bin). Test-only,
 * header-only (static functions), shared by tests/test_model.c and
 * tests/test_train.c.
 *
 * Format (little-endian): "DPFIX001", u32 count, then count records of u16
 * name length, name, u8 dtype ('f' float32, 'i' int32, 'u' uint8), u32
 * ndim, u32 shape[ndim], raw data. */
#ifndef DP_MODEL_FIXTURE_H
#define DP_MODEL_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/dp_util.h"

typedef struct dp_fix_rec {
    char name[64];
    char dtype;
    int ndim;
    uint32_t shape[4];
    size_t numel;
    const void *data;
} dp_fix_rec;

typedef struct dp_fix {
    char *buf;
    int n;
    dp_fix_rec rec[64];
} dp_fix;

static inline void dp_fix_free(dp_fix *f)
{
    free(f->buf);
    memset(f, 0, sizeof *f);
}

/* Loads a fixture; -1 + message when missing or malformed. */
static inline int dp_fix_load(dp_fix *f, const char *path, char *errbuf)
{
    memset(f, 0, sizeof *f);
    size_t len;
    f->buf = dp_read_file(path, &len, errbuf);
    if (!f->buf)
        return -1;
    const uint8_t *p = (const uint8_t *)f->buf, *end = p + len;
    uint32_t cnt;
    if (len < 12 || memcmp(p, "DPFIX001", 8) != 0)
        goto bad;
    memcpy(&cnt, p + 8, 4);
    p += 12;
    if (cnt > 64)
        goto bad;
    for (uint32_t i = 0; i < cnt; i++) {
        dp_fix_rec *r = &f->rec[i];
        uint16_t nl;
        if (end - p < 2)
            goto bad;
        memcpy(&nl, p, 2);
        p += 2;
        if (nl >= sizeof r->name || end - p < nl + 5)
            goto bad;
        memcpy(r->name, p, nl);
        r->name[nl] = 0;
        p += nl;
        r->dtype = (char)*p++;
        uint32_t nd;
        memcpy(&nd, p, 4);
        p += 4;
        if (nd > 4 || end - p < (long)(4 * nd))
            goto bad;
        r->ndim = (int)nd;
        r->numel = 1;
        for (uint32_t k = 0; k < nd; k++) {
            memcpy(&r->shape[k], p, 4);
            p += 4;
            r->numel *= r->shape[k];
        }
        size_t es = r->dtype == 'u' ? 1 : 4;
        if ((size_t)(end - p) < r->numel * es)
            goto bad;
        r->data = p;
        p += r->numel * es;
        f->n++;
    }
    return 0;
bad:
    dp_fix_free(f);
    return dp_err(errbuf, "%s: malformed fixture", path);
}

/* The record called name, or NULL. */
static inline const dp_fix_rec *dp_fix_get(const dp_fix *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->rec[i].name, name))
            return &f->rec[i];
    return NULL;
}

#endif
