/* dp_splitset: opens one split folder (SPLIT_DIR/<task>/{train,test}), the
 * input of train and test. See dp_dataset.h. */
#include "dataset/dp_dataset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void dp_splitset_close(dp_splitset *s)
{
    dp_npy_close(&s->vectors);
    dp_npy_close(&s->labels);
    dp_npy_close(&s->meta);
    for (int c = 0; c < DP_MAX_CLASSES; c++)
        free(s->names[c]);
    memset(s, 0, sizeof *s);
}

/* Parses classes.tsv: lines "id<TAB>name", ids 0, 1, 2, ... in order. */
static int parse_classes(dp_splitset *s, const char *path, char *errbuf)
{
    char *text = dp_read_file(path, NULL, errbuf);
    if (!text)
        return -1;
    int rc = -1, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = 0;
        if (!*line || line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        if (!tab || !tab[1]) {
            dp_err(errbuf, "%s:%d: expected 'id<TAB>name'", path, lineno);
            goto out;
        }
        *tab = 0;
        char *end;
        errno = 0;
        long id = strtol(line, &end, 10);
        if (!*line || *end || errno || id != s->nclasses) {
            dp_err(errbuf, "%s:%d: expected class id %d, got '%s'", path, lineno, s->nclasses, line);
            goto out;
        }
        if (s->nclasses >= DP_MAX_CLASSES) {
            dp_err(errbuf, "%s:%d: more than %d classes", path, lineno, DP_MAX_CLASSES);
            goto out;
        }
        if (!(s->names[s->nclasses] = strdup(tab + 1))) {
            dp_err(errbuf, "%s: out of memory", path);
            goto out;
        }
        s->nclasses++;
    }
    if (s->nclasses == 0) {
        dp_err(errbuf, "%s: no classes", path);
        goto out;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

int dp_splitset_write_task(const char *dir, int task, char *errbuf)
{
    char *p = dp_path_join(dir, "task");
    if (!p)
        return dp_err(errbuf, "%s: out of memory", dir);
    char line[32];
    int n = snprintf(line, sizeof line, "%s\n", dp_task_name[task]);
    int rc = dp_write_file_atomic(p, line, (size_t)n, errbuf);
    free(p);
    return rc;
}

/* The task DIR/task names; else the one its parent folder's name
 * (application_classification, traffic_classification) says; else -1. */
static int read_task(const char *dir)
{
    char *p = dp_path_join(dir, "task");
    char *text = p ? dp_read_file(p, NULL, NULL) : NULL;
    free(p);
    if (text) {
        text[strcspn(text, "\r\n")] = 0;
        int t = dp_task_parse(text);
        free(text);
        return t;
    }
    char *real = realpath(dir, NULL);
    int t = -1;
    if (real) {
        char *sl = strrchr(real, '/');
        if (sl && sl != real) {
            *sl = 0;
            const char *parent = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
            for (int k = 0; k < DP_NTASKS; k++)
                if (!strcmp(parent, dp_task_dir[k]))
                    t = k;
        }
        free(real);
    }
    return t;
}

uint64_t dp_splitset_fingerprint(const dp_splitset *s)
{
    uint64_t h = dp_fnv1a(&s->n, sizeof s->n, DP_FNV_INIT);
    for (int c = 0; c < s->nclasses; c++)
        h = dp_fnv1a(s->names[c] ? s->names[c] : "", strlen(s->names[c] ? s->names[c] : "") + 1, h);
    h = dp_fnv1a(s->labels.data, 2 * s->n, h);
    if (s->has_meta)
        h = dp_fnv1a(s->meta.data, sizeof(dp_meta) * s->n, h);
    return h;
}

int dp_splitset_open(dp_splitset *s, const char *dir, char *errbuf)
{
    memset(s, 0, sizeof *s);
    s->task = -1;
    struct stat st;
    if (stat(dir, &st) != 0)
        return dp_errno(errbuf, "%s: cannot open split folder", dir);
    if (!S_ISDIR(st.st_mode))
        return dp_err(errbuf, "%s: not a directory (expected a split folder)", dir);
    char *pv = dp_path_join(dir, "vectors.npy"), *pl = dp_path_join(dir, "labels.npy");
    char *pm = dp_path_join(dir, "meta.npy"), *pc = dp_path_join(dir, "classes.tsv");
    int rc = -1;
    if (!pv || !pl || !pm || !pc) {
        dp_err(errbuf, "%s: out of memory", dir);
        goto out;
    }
    if (parse_classes(s, pc, errbuf) != 0)
        goto out;
    if (dp_npy_open(&s->vectors, pv, errbuf) != 0 ||
        dp_npy_expect(&s->vectors, pv, DP_NPY_U1, 1, DP_VEC_LEN, errbuf) != 0)
        goto out;
    if (dp_npy_open(&s->labels, pl, errbuf) != 0 ||
        dp_npy_expect(&s->labels, pl, DP_NPY_I2, 2, 0, errbuf) != 0)
        goto out;
    s->n = s->vectors.shape[0];
    if (s->labels.shape[0] != s->n) {
        dp_err(errbuf, "%s: %llu rows, but vectors.npy has %llu", pl,
               (unsigned long long)s->labels.shape[0], (unsigned long long)s->n);
        goto out;
    }
    if (stat(pm, &st) == 0) {
        if (dp_npy_open(&s->meta, pm, errbuf) != 0 ||
            dp_npy_expect(&s->meta, pm, DP_META_DESCR, sizeof(dp_meta), 0, errbuf) != 0)
            goto out;
        if (s->meta.shape[0] != s->n) {
            dp_err(errbuf, "%s: %llu rows, but vectors.npy has %llu", pm,
                   (unsigned long long)s->meta.shape[0], (unsigned long long)s->n);
            goto out;
        }
        s->has_meta = 1;
    } else if (errno != ENOENT) {
        dp_errno(errbuf, "%s: cannot stat", pm);
        goto out;
    }
    for (uint64_t i = 0; i < s->n; i++) {
        int c = dp_splitset_label(s, i);
        if (c < 0 || c >= s->nclasses) {
            dp_err(errbuf, "%s: row %llu has class %d, outside 0..%d of classes.tsv", pl,
                   (unsigned long long)i, c, s->nclasses - 1);
            goto out;
        }
    }
    s->task = read_task(dir);
    rc = 0;
out:
    free(pv);
    free(pl);
    free(pm);
    free(pc);
    if (rc != 0) {
        char keep[DP_ERRBUF_SIZE];
        if (errbuf)
            memcpy(keep, errbuf, DP_ERRBUF_SIZE);
        dp_splitset_close(s);
        if (errbuf)
            memcpy(errbuf, keep, DP_ERRBUF_SIZE);
    }
    return rc;
}
