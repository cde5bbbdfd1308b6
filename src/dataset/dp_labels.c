#include "dataset/dp_labels.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/dp_util.h"

extern const char dp_iscx_labels_tsv[];

const char *const dp_task_name[DP_NTASKS] = {"app", "traffic"};
const char *const dp_task_dir[DP_NTASKS] = {"application_classification",
                                            "traffic_classification"};

int dp_task_parse(const char *s)
{
    for (int t = 0; t < DP_NTASKS; t++)
        if (!strcmp(s, dp_task_name[t]) || !strcmp(s, dp_task_dir[t]))
            return t;
    if (!strcmp(s, "application"))
        return DP_TASK_APP;
    return -1;
}

void dp_labels_free(dp_labels *t)
{
    for (size_t i = 0; i < t->nrows; i++)
        free(t->rows[i].prefix);
    free(t->rows);
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

int dp_labels_parse(dp_labels *t, const char *text, const char *source, char *errbuf)
{
    memset(t, 0, sizeof *t);
    char *copy = strdup(text);
    if (!copy)
        return dp_err(errbuf, "%s: out of memory", source);
    size_t cap = 0;
    int lineno = 0, rc = -1;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        rstrip(line);
        if (!*line || line[0] == '#')
            continue;
        char *f[6];
        int nf = split_tabs(line, f, 6);
        if (lineno == 1) {
            if (nf != 5 || strcmp(f[0], "prefix") || strcmp(f[1], "app_id") ||
                strcmp(f[2], "app_name") || strcmp(f[3], "traffic_id") ||
                strcmp(f[4], "traffic_name")) {
                dp_err(errbuf, "%s:1: expected the header 'prefix, app_id, app_name, traffic_id, traffic_name' (tab-separated)", source);
                goto out;
            }
            continue;
        }
        if (nf != 5) {
            dp_err(errbuf, "%s:%d: expected 5 tab-separated fields, got %d", source, lineno, nf);
            goto out;
        }
        if (!*f[0]) {
            dp_err(errbuf, "%s:%d: empty prefix", source, lineno);
            goto out;
        }
        dp_label_row row = {0};
        for (int k = 0; k < DP_NTASKS; k++) {
            const char *id = f[1 + 2 * k], *name = f[2 + 2 * k];
            row.cls[k] = -1;
            if (!*id && !*name)
                continue;
            char *end;
            errno = 0;
            long v = strtol(id, &end, 10);
            if (!*id || *end || errno || v < 0 || v >= DP_MAX_CLASSES) {
                dp_err(errbuf, "%s:%d: bad %s id '%s' (0..%d)", source, lineno,
                       dp_task_name[k], id, DP_MAX_CLASSES - 1);
                goto out;
            }
            if (!*name) {
                dp_err(errbuf, "%s:%d: %s id %ld has no name", source, lineno, dp_task_name[k], v);
                goto out;
            }
            if (t->names[k][v] && strcmp(t->names[k][v], name)) {
                dp_err(errbuf, "%s:%d: %s id %ld is named '%s' here but '%s' before", source,
                       lineno, dp_task_name[k], v, name, t->names[k][v]);
                goto out;
            }
            if (!t->names[k][v] && !(t->names[k][v] = strdup(name))) {
                dp_err(errbuf, "%s: out of memory", source);
                goto out;
            }
            row.cls[k] = (int)v;
            if (v + 1 > t->nclasses[k])
                t->nclasses[k] = (int)v + 1;
        }
        for (char *p = f[0]; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        for (size_t i = 0; i < t->nrows; i++)
            if (!strcmp(t->rows[i].prefix, f[0])) {
                dp_err(errbuf, "%s:%d: prefix '%s' appears twice", source, lineno, f[0]);
                goto out;
            }
        if (t->nrows == cap) {
            cap = cap ? cap * 2 : 64;
            dp_label_row *nr = realloc(t->rows, cap * sizeof *nr);
            if (!nr) {
                dp_err(errbuf, "%s: out of memory", source);
                goto out;
            }
            t->rows = nr;
        }
        if (!(row.prefix = strdup(f[0]))) {
            dp_err(errbuf, "%s: out of memory", source);
            goto out;
        }
        t->rows[t->nrows++] = row;
    }
    if (lineno == 0) {
        dp_err(errbuf, "%s: empty label table", source);
        goto out;
    }
    if (t->nrows == 0) {
        dp_err(errbuf, "%s: label table has no rows", source);
        goto out;
    }
    for (int k = 0; k < DP_NTASKS; k++)
        for (int c = 0; c < t->nclasses[k]; c++)
            if (!t->names[k][c]) {
                char buf[32];
                snprintf(buf, sizeof buf, "class %d", c);
                t->names[k][c] = strdup(buf);
            }
    rc = 0;
out:
    free(copy);
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

int dp_labels_load(dp_labels *t, const char *path, char *errbuf)
{
    char *text = dp_read_file(path, NULL, errbuf);
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

int dp_labels_lookup(const dp_labels *t, const char *path, int cls[DP_NTASKS])
{
    char prefix[256];
    dp_labels_prefix(path, prefix, sizeof prefix);
    for (int k = 0; k < DP_NTASKS; k++)
        cls[k] = -1;
    for (size_t i = 0; i < t->nrows; i++)
        if (!strcmp(t->rows[i].prefix, prefix)) {
            for (int k = 0; k < DP_NTASKS; k++)
                cls[k] = t->rows[i].cls[k];
            return 1;
        }
    return 0;
}
