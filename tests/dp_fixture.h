/* dp_fixture: reader of the PyTorch reference fixtures in tests/fixtures/
 * (nn_*.bin from tools/make_nn_fixtures.py, model_*.bin from
 * tools/make_model_fixtures.py). Test-only, header-only (static functions),
 * shared by tests/test_nn.c and tests/test_model.c.
 *
 * Format (tools/fixture_format.py, little-endian):
 *   1. "DPFIX001"
 *   2. u32 count (<= DP_FIX_MAX_RECS)
 *   3. count records: u16 name length, name (< 64 bytes), u8 dtype ('f'
 *      float32, 'i' int32, 'u' uint8), u32 ndim (<= 8), u32 shape[ndim],
 *      the data, row-major.
 * Every length is checked against the file's size before it is read. */
#ifndef DP_FIXTURE_H
#define DP_FIXTURE_H

#define DP_FIX_MAX_RECS 256

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/dp_util.h"

typedef struct dp_fix_rec {
    char name[64];
    char dtype;
    int ndim;
    uint32_t shape[8];
    size_t numel;
    const void *data;
} dp_fix_rec;

typedef struct dp_fix {
    char *buf;
    int n;
    dp_fix_rec rec[DP_FIX_MAX_RECS];
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
    if (cnt > DP_FIX_MAX_RECS)
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
        if (nd > 8 || end - p < (long)(4 * nd))
            goto bad;
        r->ndim = (int)nd;
        r->numel = 1;
        for (uint32_t k = 0; k < nd; k++) {
            memcpy(&r->shape[k], p, 4);
            p += 4;
            if (r->shape[k] && r->numel > SIZE_MAX / 4 / r->shape[k])
                goto bad;
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
