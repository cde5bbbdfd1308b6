/* dp_pp_shard: sharded preprocessing and the shard manifest (see
 * dp_pp_shard.h for the hash and the format). */
#include "dataset/dp_pp_shard.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- selecting the shard's files ------------------------------------------------- */

int dp_pp_shard_select(run *r, char *errbuf)
{
    unsigned n = r->o->shard_count, i = r->o->shard_index;
    if (n == 0)
        return 0;
    if (i >= n)
        return dp_err(errbuf, "--shard %u/%u: the shard number must be below the shard count", i, n);
    uint64_t h = DP_FNV_INIT;
    for (size_t f = 0; f < r->nfiles; f++) { /* the listing line (dp_pp_shard.h) */
        uint8_t size[8];
        for (int b = 0; b < 8; b++)
            size[b] = (uint8_t)(r->files[f].size >> (8 * b));
        h = dp_fnv1a(r->files[f].rel, strlen(r->files[f].rel) + 1, h);
        h = dp_fnv1a(size, sizeof size, h);
    }
    r->listing_hash = h;
    r->listing_files = r->nfiles;
    size_t k = 0;
    for (size_t f = 0; f < r->nfiles; f++) {
        capfile *cf = &r->files[f];
        if (cf->relhash % n == i) {
            r->files[k++] = *cf;
        } else {
            free(cf->rel);
            free(cf->path);
            free(cf->filter);
        }
    }
    r->nfiles = k;
    r->st->files = k;
    return 0;
}

/* ---- writing the manifest ------------------------------------------------------------ */

/* s with bytes below 0x20, 0x7f and '%' as %XX. */
static void put_escaped(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '%')
            fprintf(f, "%%%02X", *p);
        else
            fputc(*p, f);
}

void dp_pp_shard_write(FILE *f, const run *r)
{
    fprintf(f, "%s\t%u\t%u\tfnv1a64\nsource\t", DP_SHARD_FORMAT, r->o->shard_index, r->o->shard_count);
    put_escaped(f, r->src);
    fputc('\n', f);
    if (r->filter) {
        fputs("filter\t", f);
        put_escaped(f, r->filter);
        fputc('\n', f);
    }
    fprintf(f, "listing\t%zu\t%016" PRIx64 "\n", r->listing_files, r->listing_hash);
    for (size_t i = 0; i < r->nfiles; i++) {
        const capfile *cf = &r->files[i];
        fprintf(f, "file\t%d\t%d\t%" PRIu64 "\t%" PRId64 "\t%" PRIu64 "\t%" PRIu64 "\t", cf->is_capture,
                cf->unreadable, cf->size, cf->mtime_ns, cf->frames, cf->kept);
        for (int v = 0; v < DP_VERDICT_COUNT; v++)
            fprintf(f, "%s%" PRIu64, v ? "," : "", cf->skipped[v]);
        fputc('\t', f);
        put_escaped(f, cf->status);
        fputc('\t', f);
        put_escaped(f, cf->rel);
        fputc('\n', f);
    }
    fprintf(f, "end\t%zu\n", r->nfiles);
}

/* ---- reading it back ---------------------------------------------------------------- */

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Undoes put_escaped in place; -1 on a bad escape. */
static int unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p != '%') {
            *o++ = *p;
            continue;
        }
        int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
        if (lo < 0 || (hi == 0 && lo == 0))
            return -1;
        *o++ = (char)(hi << 4 | lo);
        p += 2;
    }
    *o = 0;
    return 0;
}

/* Splits line at tabs into at most max fields; returns their number. */
static int split_tabs(char *line, char **field, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        field[n++] = p;
        p = strchr(p, '\t');
        if (!p)
            break;
        *p++ = 0;
    }
    return n;
}

/* An unsigned decimal number that is the whole of s. */
static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    *v = x;
    return errno || *end ? -1 : 0;
}

/* 16 lower-case hex digits that are the whole of s. */
static int parse_hex64(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        int d = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        x = x << 4 | (uint64_t)d;
    }
    *v = x;
    return n == 16 ? 0 : -1;
}

/* One "file" line's fields (after the word) into cf; -1 when malformed. */
static int parse_file(char **fl, const char *source, capfile *cf)
{
    uint64_t cap, unr, mt;
    char *sk = fl[6];
    if (parse_u64(fl[0], &cap) || cap > 1 || parse_u64(fl[1], &unr) || unr > 1 ||
        parse_u64(fl[2], &cf->size) || parse_u64(fl[5], &cf->kept) || parse_u64(fl[4], &cf->frames))
        return -1;
    const char *m = fl[3][0] == '-' ? fl[3] + 1 : fl[3];
    if (parse_u64(m, &mt) || mt > INT64_MAX)
        return -1;
    cf->mtime_ns = fl[3][0] == '-' ? -(int64_t)mt : (int64_t)mt;
    for (int v = 0; v < DP_VERDICT_COUNT; v++) {
        char *comma = strchr(sk, ',');
        if ((comma != NULL) != (v + 1 < DP_VERDICT_COUNT))
            return -1;
        if (comma)
            *comma = 0;
        if (parse_u64(sk, &cf->skipped[v]))
            return -1;
        if (comma)
            sk = comma + 1;
    }
    if (unescape(fl[7]) || strlen(fl[7]) >= sizeof cf->status || unescape(fl[8]) || !fl[8][0])
        return -1;
    cf->is_capture = (int)cap;
    cf->unreadable = (int)unr;
    snprintf(cf->status, sizeof cf->status, "%s", fl[7]);
    cf->rel = strdup(fl[8]);
    cf->path = dp_path_join(source, fl[8]);
    cf->relhash = dp_fnv1a(fl[8], strlen(fl[8]), DP_FNV_INIT);
    return 0;
}

/* The header and source lines; -1 when malformed. */
static int parse_head(char *l1, char *l2, dp_pp_manifest *m)
{
    char *f[5];
    uint64_t i, n;
    if (split_tabs(l1, f, 5) != 4 || strcmp(f[0], DP_SHARD_FORMAT) || parse_u64(f[1], &i) ||
        parse_u64(f[2], &n) || strcmp(f[3], "fnv1a64") || n == 0 || n > 65536 || i >= n)
        return -1;
    m->index = (unsigned)i;
    m->count = (unsigned)n; /* set: the first line is good */
    if (split_tabs(l2, f, 3) != 2 || strcmp(f[0], "source") || unescape(f[1]) || !(m->source = strdup(f[1])))
        return -1;
    return 0;
}

size_t dp_pp_manifest_parse(char *text, dp_pp_manifest *m)
{
    char *line[2] = {NULL, NULL}, *save = text;
    size_t ln = 0, cap = 0;
    for (char *nl; ln < 2 && (nl = strchr(save, '\n')); save = nl + 1)
        line[ln++] = save, *nl = 0;
    if (ln < 2 || parse_head(line[0], line[1], m))
        return ln < 2 ? ln + 1 : (m->count ? 2 : 1);
    for (char *nl; (nl = strchr(save, '\n')); save = nl + 1) {
        *nl = 0;
        ln++;
        char *f[11];
        int nf = split_tabs(save, f, 11);
        uint64_t count;
        if (nf == 2 && !strcmp(f[0], "end"))
            return parse_u64(f[1], &count) || count != m->nfiles || nl[1] ? ln : 0;
        if (nf == 2 && !strcmp(f[0], "filter") && !m->filter && !m->nfiles) { /* once, before the files */
            if (unescape(f[1]) || !f[1][0] || !(m->filter = strdup(f[1])))
                return ln;
            continue;
        }
        if (nf == 3 && !strcmp(f[0], "listing") && !m->has_listing && !m->nfiles) { /* once, before the files */
            if (parse_u64(f[1], &m->listing_files) || parse_hex64(f[2], &m->listing_hash))
                return ln;
            m->has_listing = 1;
            continue;
        }
        if (nf != 10 || strcmp(f[0], "file"))
            return ln;
        if (m->nfiles == cap) {
            cap = cap ? 2 * cap : 64;
            capfile *nfs = realloc(m->files, cap * sizeof *nfs);
            if (!nfs)
                return ln;
            m->files = nfs;
        }
        capfile *cf = &m->files[m->nfiles];
        memset(cf, 0, sizeof *cf);
        int bad = parse_file(f + 1, m->source, cf);
        m->nfiles++;
        if (bad || !cf->rel || !cf->path)
            return ln;
    }
    return ln + 1; /* no end line: cut short */
}

int dp_pp_manifest_read(const char *dir, dp_pp_manifest *m, char *errbuf)
{
    memset(m, 0, sizeof *m);
    char *p = dp_path_join(dir, DP_SHARD_FILE);
    if (!p)
        return dp_err(errbuf, "%s: out of memory", dir);
    size_t len;
    char eb[DP_ERRBUF_SIZE];
    char *text = dp_read_file(p, &len, eb);
    int rc = 0;
    if (!text)
        rc = dp_err(errbuf, "%s: not a shard dataset (no %s; make shards with preprocess --shard I/N)",
                    dir, DP_SHARD_FILE);
    else if (strlen(text) != len)
        rc = dp_err(errbuf, "%s: malformed shard manifest (a NUL byte)", p);
    else {
        size_t bad = dp_pp_manifest_parse(text, m);
        if (bad)
            rc = dp_err(errbuf, "%s: line %zu: malformed shard manifest", p, bad);
    }
    free(text);
    free(p);
    if (rc)
        dp_pp_manifest_free(m);
    return rc;
}

void dp_pp_manifest_free(dp_pp_manifest *m)
{
    for (size_t i = 0; i < m->nfiles; i++) {
        free(m->files[i].rel);
        free(m->files[i].path);
    }
    free(m->files);
    free(m->source);
    free(m->filter);
    memset(m, 0, sizeof *m);
}
