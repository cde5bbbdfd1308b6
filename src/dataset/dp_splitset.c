/* dp_splitset: opens a split folder (SPLIT_DIR/<task>/{train,test}) or a
 * preprocessed dataset folder for one task, the input of train and test.
 * See dp_dataset.h. */
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
    free(s->rows);
    memset(s, 0, sizeof *s);
}

static void identity_map(dp_splitset *s)
{
    for (int c = 0; c < DP_MAX_CLASSES; c++)
        s->map[c] = (int16_t)c;
}

int dp_splitset_write_task(const char *dir, int task, char *errbuf)
{
    char *p = dp_path_join(dir, DP_FILE_SET_TASK);
    if (!p)
        return dp_err(errbuf, "%s: out of memory", dir);
    char line[32];
    int n = snprintf(line, sizeof line, "%s\n", dp_task_name[task]);
    int rc = dp_write_file_atomic(p, line, (size_t)n, errbuf);
    free(p);
    return rc;
}

/* The task of a split folder: the one DIR/task names; else the one its
 * parent folder's name (application_classification, traffic_classification)
 * says; else -1. */
static int split_folder_task(const char *dir)
{
    char *p = dp_path_join(dir, DP_FILE_SET_TASK);
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
    for (uint64_t i = 0; i < s->n; i++) {
        int16_t y = (int16_t)dp_splitset_label(s, i);
        h = dp_fnv1a(&y, sizeof y, h);
        if (s->has_meta)
            h = dp_fnv1a(s->meta.data + sizeof(dp_meta) * dp_splitset_row(s, i), sizeof(dp_meta), h);
    }
    return h;
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

/* Opens a split folder's files (dir is known to exist); the caller closes
 * s on failure. */
static int open_split(dp_splitset *s, const char *dir, char *errbuf)
{
    struct stat st;
    char *pv = dp_path_join(dir, DP_FILE_VECTORS), *pl = dp_path_join(dir, DP_FILE_SET_LABELS);
    char *pm = dp_path_join(dir, DP_FILE_META), *pc = dp_path_join(dir, DP_FILE_SET_CLASSES);
    int rc = -1;
    if (!pv || !pl || !pm || !pc) {
        dp_err(errbuf, "%s: out of memory", dir);
        goto out;
    }
    if (parse_classes(s, pc, errbuf) != 0)
        goto out;
    if (dp_npy_open(&s->vectors, pv, errbuf) != 0 ||
        dp_npy_expect(&s->vectors, pv, DP_VECTORS_DESCR, 1, DP_VEC_LEN, errbuf) != 0)
        goto out;
    dp_test_kill_point("set-open"); /* tests: split may swap another folder in here */
    if (dp_npy_open(&s->labels, pl, errbuf) != 0 ||
        dp_npy_expect(&s->labels, pl, DP_CLASS_DESCR, 2, 0, errbuf) != 0)
        goto out;
    s->n = s->vectors.shape[0];
    if (s->labels.shape[0] != s->n) {
        dp_err(errbuf, "%s: %llu rows, but " DP_FILE_VECTORS " has %llu", pl,
               (unsigned long long)s->labels.shape[0], (unsigned long long)s->n);
        goto out;
    }
    if (stat(pm, &st) == 0) {
        if (dp_npy_open(&s->meta, pm, errbuf) != 0 ||
            dp_npy_expect(&s->meta, pm, DP_META_DESCR, sizeof(dp_meta), 0, errbuf) != 0)
            goto out;
        if (s->meta.shape[0] != s->n) {
            dp_err(errbuf, "%s: %llu rows, but " DP_FILE_VECTORS " has %llu", pm,
                   (unsigned long long)s->meta.shape[0], (unsigned long long)s->n);
            goto out;
        }
        s->has_meta = 1;
    } else if (errno != ENOENT) {
        dp_errno(errbuf, "%s: cannot stat", pm);
        goto out;
    }
    for (uint64_t i = 0; i < s->n; i++) {
        int16_t c;
        memcpy(&c, s->labels.data + 2 * i, 2);
        if (c < 0 || c >= s->nclasses) {
            dp_err(errbuf, "%s: row %llu has class %d, outside 0..%d of " DP_FILE_SET_CLASSES, pl,
                   (unsigned long long)i, c, s->nclasses - 1);
            goto out;
        }
    }
    rc = 0;
out:
    free(pv);
    free(pl);
    free(pm);
    free(pc);
    return rc;
}

/* A split folder being opened (dp_open_one_generation's context). */
typedef struct set_open {
    dp_splitset *s;
    const char *dir;
} set_open;

/* Closes what open_split filled in (arrays, class names); the rest of the
 * set stays. */
static void release_split(void *ctx)
{
    dp_splitset *s = ((set_open *)ctx)->s;
    dp_npy_close(&s->vectors);
    dp_npy_close(&s->labels);
    dp_npy_close(&s->meta);
    for (int c = 0; c < DP_MAX_CLASSES; c++) {
        free(s->names[c]);
        s->names[c] = NULL;
    }
    s->nclasses = 0;
    s->n = 0;
    s->has_meta = 0;
}

/* One attempt at opening a split folder's files; on failure nothing stays
 * open. */
static int open_split_files(void *ctx, char *errbuf)
{
    set_open *o = ctx;
    if (open_split(o->s, o->dir, errbuf) == 0)
        return 0;
    release_split(ctx); /* writes no message: errbuf keeps open_split's */
    return -1;
}

/* Takes the task's columns of an open dataset into s (the dataset keeps the
 * rest, closed by the caller) and indexes its labelled rows. */
static int take_dataset(dp_splitset *s, dp_dataset *d, const char *dir, int task, char *errbuf)
{
    s->vectors = d->vectors;
    s->labels = d->cls[task];
    s->meta = d->meta;
    memset(&d->vectors, 0, sizeof d->vectors);
    memset(&d->cls[task], 0, sizeof d->cls[task]);
    memset(&d->meta, 0, sizeof d->meta);
    s->has_meta = 1;
    s->nclasses = d->labels.nclasses[task];
    for (int c = 0; c < s->nclasses; c++) {
        const char *name = d->labels.names[task][c];
        if (!(s->names[c] = strdup(name ? name : "")))
            return dp_err(errbuf, "%s: out of memory", dir);
    }
    uint64_t N = d->n, n = 0;
    if (N >= UINT32_MAX)
        return dp_err(errbuf, "%s: %llu rows; a dataset folder is read with at most %u (split it first)", dir,
                      (unsigned long long)N, UINT32_MAX - 1);
    if (!(s->rows = malloc((N ? N : 1) * sizeof *s->rows)))
        return dp_err(errbuf, "%s: out of memory for %llu rows", dir, (unsigned long long)N);
    for (uint64_t i = 0; i < N; i++) {
        int16_t v;
        memcpy(&v, s->labels.data + 2 * i, 2);
        if (v >= 0)
            s->rows[n++] = (uint32_t)i;
    }
    s->n = n;
    if (n == 0)
        return dp_err(errbuf, "%s: no packet is labelled for the %s task", dir, dp_task_name[task]);
    return 0;
}

static int open_dataset(dp_splitset *s, const char *dir, int task, char *errbuf)
{
    if (task < 0 || task >= DP_NTASKS)
        return dp_err(errbuf, "%s: a preprocessed dataset has a label column per task; say which task "
                      "(app or traffic)", dir);
    dp_dataset d;
    if (dp_dataset_open(&d, dir, errbuf) != 0)
        return -1;
    int rc = take_dataset(s, &d, dir, task, errbuf);
    dp_dataset_close(&d);
    return rc;
}

static int file_exists(const char *dir, const char *name)
{
    char *p = dp_path_join(dir, name);
    struct stat st;
    int ok = p && stat(p, &st) == 0;
    free(p);
    return ok;
}

int dp_splitset_one_generation(const char *dir, int (*open_fn)(void *ctx, char *errbuf),
                               void (*close_fn)(void *ctx), void *ctx, char *errbuf)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return open_fn(ctx, errbuf);
    /* the same test as dp_splitset_open_task's */
    const char *marker = file_exists(dir, DP_FILE_SET_CLASSES) ? NULL : DP_FILE_SUMMARY_JSON;
    return dp_open_one_generation(dir, marker, open_fn, close_fn, ctx, errbuf);
}

int dp_splitset_open_task(dp_splitset *s, const char *dir, int task, char *errbuf)
{
    memset(s, 0, sizeof *s);
    identity_map(s);
    s->task = -1;
    struct stat st;
    if (stat(dir, &st) != 0)
        return dp_errno(errbuf, "%s: cannot open the data folder", dir);
    if (!S_ISDIR(st.st_mode))
        return dp_err(errbuf, "%s: not a directory (expected a split or dataset folder)", dir);
    int rc;
    if (file_exists(dir, DP_FILE_SET_CLASSES)) {
        s->kind = DP_SET_SPLIT;
        int ft = split_folder_task(dir);
        if (task >= 0 && ft >= 0 && ft != task)
            return dp_err(errbuf, "%s: a split folder of the %s task, not of the %s task", dir,
                          dp_task_name[ft], dp_task_name[task]);
        /* split replaces the whole folder (a swap): its files, opened one
         * by one, must all be of the same folder */
        set_open o = {s, dir};
        rc = dp_open_one_generation(dir, NULL, open_split_files, release_split, &o, errbuf);
        s->task = ft >= 0 ? ft : task;
    } else if (file_exists(dir, DP_FILE_LABELS) || file_exists(dir, DP_FILE_VECTORS)) {
        s->kind = DP_SET_DATASET;
        rc = open_dataset(s, dir, task, errbuf);
        s->task = task;
    } else {
        return dp_err(errbuf, "%s: neither a split folder (no " DP_FILE_SET_CLASSES ") nor a preprocessed dataset "
                      "(no " DP_FILE_LABELS ", " DP_FILE_VECTORS ")", dir);
    }
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

int dp_splitset_open(dp_splitset *s, const char *dir, char *errbuf)
{
    return dp_splitset_open_task(s, dir, -1, errbuf);
}

void dp_splitset_class_counts(const dp_splitset *s, uint64_t *counts)
{
    memset(counts, 0, sizeof *counts * (size_t)s->nclasses);
    for (uint64_t i = 0; i < s->n; i++)
        counts[dp_splitset_label(s, i)]++;
}

int dp_splitset_match_classes(dp_splitset *s, const char *dir, int n, const char *const *names,
                              const char *model, char *errbuf)
{
    uint64_t counts[DP_MAX_CLASSES];
    dp_splitset_class_counts(s, counts);
    int16_t map[DP_MAX_CLASSES];
    for (int c = 0; c < s->nclasses; c++) {
        map[c] = -1;
        for (int k = 0; k < n && map[c] < 0; k++)
            if (!strcmp(s->names[c] ? s->names[c] : "", names[k] ? names[k] : ""))
                map[c] = (int16_t)k;
        if (map[c] < 0 && counts[c]) {
            int len = snprintf(errbuf, DP_ERRBUF_SIZE,
                               "%s and %s: classes differ: dataset class '%s' is not one of the model's (", dir,
                               model, s->names[c] ? s->names[c] : "");
            for (int k = 0; k < n && len > 0 && len < DP_ERRBUF_SIZE; k++)
                len += snprintf(errbuf + len, DP_ERRBUF_SIZE - (size_t)len, "%s%s", k ? ", " : "",
                                names[k] ? names[k] : "");
            if (len > 0 && len < DP_ERRBUF_SIZE)
                snprintf(errbuf + len, DP_ERRBUF_SIZE - (size_t)len, ")");
            return -1;
        }
    }
    char *nn[DP_MAX_CLASSES] = {0};
    for (int k = 0; k < n; k++)
        if (!(nn[k] = strdup(names[k] ? names[k] : ""))) {
            for (int j = 0; j < k; j++)
                free(nn[j]);
            return dp_err(errbuf, "%s: out of memory", dir);
        }
    /* a class without rows maps to 0: no row reads it */
    int16_t composed[DP_MAX_CLASSES];
    for (int c = 0; c < DP_MAX_CLASSES; c++) {
        int v = s->map[c];
        composed[c] = v >= 0 && v < s->nclasses && map[v] >= 0 ? map[v] : 0;
    }
    memcpy(s->map, composed, sizeof composed);
    for (int c = 0; c < DP_MAX_CLASSES; c++) {
        free(s->names[c]);
        s->names[c] = nn[c];
    }
    s->nclasses = n;
    return 0;
}

const uint8_t *dp_splitset_vectors(const dp_splitset *s, uint64_t start, int n, uint8_t *buf)
{
    if (!s->rows || n <= 0 || (uint64_t)s->rows[start + (uint64_t)n - 1] - s->rows[start] == (uint64_t)n - 1)
        return dp_splitset_vector(s, start);
    for (int r = 0; r < n; r++)
        memcpy(buf + (size_t)r * DP_VEC_LEN, dp_splitset_vector(s, start + (uint64_t)r), DP_VEC_LEN);
    return buf;
}
