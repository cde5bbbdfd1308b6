#include "dataset/dp_labels.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/dp_util.h"

extern const char dp_iscx_labels_tsv[];

void dp_labels_free(dp_labels *t)
{
    for (size_t i = 0; i < t->nrows; i++) {
        free(t->rows[i].prefix);
        free(t->rows[i].filter);
    }
    free(t->rows);
    free(t->byprefix);
    for (int k = 0; k < DP_NTASKS; k++)
        for (int c = 0; c < DP_MAX_CLASSES; c++)
            free(t->names[k][c]);
    memset(t, 0, sizeof *t);
}

/* Splits line in place at tabs; returns the number of fields (at most max). */
static int split_tabs(char *line, char **f, int max)
{
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') {
            *p = 0;
            f[n++] = p + 1;
        }
    return n;
}

static void rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = 0;
}

/* A prefix, its row and the line it is on, for the duplicate check and the
 * index. */
typedef struct prefix_line {
    const char *prefix;
    size_t row;
    int lineno;
} prefix_line;

static int cmp_prefix_line(const void *a, const void *b)
{
    const prefix_line *x = a, *y = b;
    int c = strcmp(x->prefix, y->prefix);
    return c ? c : (x->lineno > y->lineno) - (x->lineno < y->lineno);
}

/* Refuses a prefix that appears on two rows: sorted, then neighbours
 * compared (O(n log n); 200,000 rows in a few tens of ms). The sorted order
 * becomes t->byprefix, the index dp_labels_find searches. */
static int index_prefixes(dp_labels *t, const int *linenos, const char *source, char *errbuf)
{
    prefix_line *v = malloc((t->nrows ? t->nrows : 1) * sizeof *v);
    t->byprefix = malloc((t->nrows ? t->nrows : 1) * sizeof *t->byprefix);
    if (!v || !t->byprefix) {
        free(v);
        return dp_err(errbuf, "%s: out of memory", source);
    }
    for (size_t i = 0; i < t->nrows; i++)
        v[i] = (prefix_line){t->rows[i].prefix, i, linenos[i]};
    qsort(v, t->nrows, sizeof *v, cmp_prefix_line);
    int rc = 0;
    for (size_t i = 1; i < t->nrows && rc == 0; i++)
        if (!strcmp(v[i - 1].prefix, v[i].prefix))
            rc = dp_err(errbuf, "%s:%d: prefix '%s' appears twice (first on line %d)", source, v[i].lineno,
                        v[i].prefix, v[i - 1].lineno);
    for (size_t i = 0; i < t->nrows; i++)
        t->byprefix[i] = &t->rows[v[i].row];
    free(v);
    return rc;
}

/* Parses one row's class ids and names into row and the table's names. */
static int parse_row_classes(dp_labels *t, char **f, dp_label_row *row, const char *source, int lineno,
                             char *errbuf)
{
    for (int k = 0; k < DP_NTASKS; k++) {
        const char *id = f[1 + 2 * k], *name = f[2 + 2 * k];
        row->cls[k] = -1;
        if (!*id && !*name)
            continue;
        char *end;
        errno = 0;
        long v = strtol(id, &end, 10);
        if (!*id || *end || errno || v < 0 || v >= DP_MAX_CLASSES)
            return dp_err(errbuf, "%s:%d: bad %s id '%s' (0..%d)", source, lineno, dp_task_name[k], id,
                          DP_MAX_CLASSES - 1);
        if (!*name)
            return dp_err(errbuf, "%s:%d: %s id %ld has no name", source, lineno, dp_task_name[k], v);
        if (t->names[k][v] && strcmp(t->names[k][v], name))
            return dp_err(errbuf, "%s:%d: %s id %ld is named '%s' here but '%s' before", source, lineno,
                          dp_task_name[k], v, name, t->names[k][v]);
        if (!t->names[k][v] && !(t->names[k][v] = strdup(name)))
            return dp_err(errbuf, "%s: out of memory", source);
        row->cls[k] = (int)v;
        if (v + 1 > t->nclasses[k])
            t->nclasses[k] = (int)v + 1;
    }
    return 0;
}

/* Appends a row (prefix lower-cased and copied) with its line number. */
static int add_row(dp_labels *t, dp_label_row row, const char *prefix, int lineno, int **linenos, size_t *cap,
                   const char *source, char *errbuf)
{
    if (t->nrows == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        dp_label_row *nr = realloc(t->rows, nc * sizeof *nr);
        if (nr)
            t->rows = nr;
        int *nl = nr ? realloc(*linenos, nc * sizeof *nl) : NULL;
        if (!nl)
            return dp_err(errbuf, "%s: out of memory", source);
        *linenos = nl;
        *cap = nc;
    }
    if (!(row.prefix = strdup(prefix)))
        return dp_err(errbuf, "%s: out of memory", source);
    if (row.filter && !(row.filter = strdup(row.filter))) {
        free(row.prefix);
        return dp_err(errbuf, "%s: out of memory", source);
    }
    t->nfilters += row.filter != NULL;
    for (char *p = row.prefix; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    (*linenos)[t->nrows] = lineno;
    t->rows[t->nrows++] = row;
    return 0;
}

/* The header's column count (5, or 6 with `filter`), or 0 if f is none. */
static int header_columns(char **f, int nf)
{
    if ((nf != 5 && nf != 6) || strcmp(f[0], "prefix") || strcmp(f[1], "app_id") || strcmp(f[2], "app_name") ||
        strcmp(f[3], "traffic_id") || strcmp(f[4], "traffic_name"))
        return 0;
    return nf == 5 || !strcmp(f[5], "filter") ? nf : 0;
}

/* One row's fields (ncols: the header's) into t; 0 or -1. */
static int parse_row(dp_labels *t, char **f, int nf, int ncols, const char *source, int lineno, int **linenos,
                     size_t *cap, char *errbuf)
{
    if (nf != 5 && nf != ncols)
        return dp_err(errbuf, "%s:%d: expected %d tab-separated fields, got %d%s", source, lineno, ncols, nf,
                      nf == 6 ? " (a filter needs the header's sixth column, 'filter')" : "");
    if (!*f[0])
        return dp_err(errbuf, "%s:%d: empty prefix", source, lineno);
    dp_label_row row = {0};
    row.filter = nf == 6 && *f[5] ? f[5] : NULL;
    if (parse_row_classes(t, f, &row, source, lineno, errbuf) != 0)
        return -1;
    return add_row(t, row, f[0], lineno, linenos, cap, source, errbuf);
}

/* Line numbers count every physical line, blank ones included; blank lines
 * and '#' comments (before the header too) are skipped. */
int dp_labels_parse(dp_labels *t, const char *text, const char *source, char *errbuf)
{
    memset(t, 0, sizeof *t);
    char *copy = strdup(text);
    if (!copy)
        return dp_err(errbuf, "%s: out of memory", source);
    size_t cap = 0;
    int *linenos = NULL;
    int lineno = 0, rc = -1, header = 0;
    for (char *line = copy, *next; *line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : line + strlen(line);
        if (nl)
            *nl = 0;
        lineno++;
        rstrip(line);
        if (!*line || line[0] == '#')
            continue;
        char *f[7];
        int nf = split_tabs(line, f, 7);
        if (!header) {
            if (!(header = header_columns(f, nf))) {
                dp_err(errbuf, "%s:%d: expected the header 'prefix, app_id, app_name, traffic_id, traffic_name' "
                       "(tab-separated; a sixth column 'filter' may follow) as the first line that is not blank "
                       "or a '#' comment", source, lineno);
                goto out;
            }
            continue;
        }
        if (parse_row(t, f, nf, header, source, lineno, &linenos, &cap, errbuf) != 0)
            goto out;
    }
    if (!header) {
        dp_err(errbuf, "%s: empty label table", source);
        goto out;
    }
    if (t->nrows == 0) {
        dp_err(errbuf, "%s: label table has no rows", source);
        goto out;
    }
    if (index_prefixes(t, linenos, source, errbuf) != 0)
        goto out;
    for (int k = 0; k < DP_NTASKS; k++)
        for (int c = 0; c < t->nclasses[k]; c++)
            if (!t->names[k][c]) {
                char buf[32];
                snprintf(buf, sizeof buf, "class %d", c);
                if (!(t->names[k][c] = strdup(buf))) {
                    dp_err(errbuf, "%s: out of memory", source);
                    goto out;
                }
            }
    rc = 0;
out:
    free(copy);
    free(linenos);
    if (rc != 0) {
        char keep[DP_ERRBUF_SIZE];
        if (errbuf)
            memcpy(keep, errbuf, DP_ERRBUF_SIZE);
        dp_labels_free(t);
        if (errbuf)
            memcpy(errbuf, keep, DP_ERRBUF_SIZE);
    }
    return rc;
}

char *dp_labels_read(const char *path, char *errbuf)
{
    size_t n;
    char *text = dp_read_file(path, &n, errbuf);
    const char *nul = text ? memchr(text, 0, n) : NULL;
    if (nul) { /* the parser would stop there: the rows after it lost without a word */
        int line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        dp_err(errbuf, "%s:%d: a NUL byte: not a text table", path, line);
        free(text);
        return NULL;
    }
    return text;
}

int dp_labels_load(dp_labels *t, const char *path, char *errbuf)
{
    char *text = dp_labels_read(path, errbuf);
    if (!text) {
        memset(t, 0, sizeof *t);
        return -1;
    }
    int rc = dp_labels_parse(t, text, path, errbuf);
    free(text);
    return rc;
}

int dp_labels_load_iscx(dp_labels *t, char *errbuf)
{
    return dp_labels_parse(t, dp_iscx_labels_tsv, "built-in ISCX table", errbuf);
}

void dp_labels_prefix(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t k = 0;
    for (; base[k] && base[k] != '.' && k + 1 < cap; k++)
        out[k] = (char)tolower((unsigned char)base[k]);
    out[k] = 0;
}

/* strcmp of the file name's prefix (key: the base name; up to its first
 * dot, lower-cased, as dp_labels_prefix makes it, whatever its length) with
 * a row's prefix, without a copy: the lookup cannot fail, so a capture is
 * never taken for one missing from the table for want of memory. */
static int cmp_key_row(const void *key, const void *elem)
{
    const unsigned char *a = key;
    const unsigned char *b = (const unsigned char *)(*(const dp_label_row *const *)elem)->prefix;
    for (;; a++, b++) {
        int ca = *a && *a != '.' ? tolower(*a) : 0;
        if (ca != *b || !ca)
            return ca - *b;
    }
}

const dp_label_row *dp_labels_find(const dp_labels *t, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const dp_label_row *const *hit = t->nrows ? bsearch(base, t->byprefix, t->nrows, sizeof *t->byprefix,
                                                        cmp_key_row) : NULL;
    return hit ? *hit : NULL;
}

int dp_labels_lookup(const dp_labels *t, const char *path, int cls[DP_NTASKS])
{
    const dp_label_row *row = dp_labels_find(t, path);
    for (int k = 0; k < DP_NTASKS; k++)
        cls[k] = row ? row->cls[k] : -1;
    return row != NULL;
}
