/* Shared harness code (linked into every test binary). */
#include "dp_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dataset/dp_dataset.h"
#include "util/dp_util.h"

int dp_test_failed_now, dp_test_skipped_now;
int dp_test_pass, dp_test_fail, dp_test_skip;
const char *dp_test_prog = "test";
static char tmpdir[256];

void dp_test_run(const char *name, void (*fn)(void))
{
    dp_test_failed_now = dp_test_skipped_now = 0;
    fn();
    if (dp_test_failed_now) {
        dp_test_fail++;
        fprintf(stderr, "FAIL %s\n", name);
    } else if (dp_test_skipped_now) {
        dp_test_skip++;
        fprintf(stderr, "skip %s\n", name);
    } else {
        dp_test_pass++;
        fprintf(stderr, "ok   %s\n", name);
    }
}

int dp_test_end(void)
{
    if (tmpdir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    }
    printf("%s: %d passed, %d failed, %d skipped\n", dp_test_prog, dp_test_pass,
           dp_test_fail, dp_test_skip);
    return dp_test_fail ? 1 : 0;
}

const char *dp_test_shared(const char *rel)
{
    static char buf[4096];
    const char *env = getenv("DP_SHARED_DATA");
    const char *roots[] = {env, "../shared/data", "../../shared/data", NULL};
    for (int i = 0; i < 3; i++) {
        if (!roots[i])
            continue;
        snprintf(buf, sizeof buf, "%s/%s", roots[i], rel);
        struct stat st;
        if (stat(buf, &st) == 0)
            return buf;
    }
    return NULL;
}

const char *dp_test_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/dptest.XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return tmpdir;
}

int dp_test_sh(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *dp_test_cli(void)
{
    static char path[512];
    const char *b = getenv("BUILD");
    snprintf(path, sizeof path, "%s/deeppacket", b && *b ? b : "build");
    return access(path, X_OK) == 0 ? path : NULL;
}
int dp_test_system(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int dp_test_same_file(const char *a, const char *b)
{
    size_t la, lb;
    char eb[DP_ERRBUF_SIZE];
    char *x = dp_read_file(a, &la, eb), *y = dp_read_file(b, &lb, eb);
    int same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

int dp_test_count_parts(const char *dst, const char *ext)
{
    char *p = dp_path_join(dst, ".parts");
    DIR *d = opendir(p);
    int n = 0;
    struct dirent *e;
    size_t el = strlen(ext);
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > el && !strcmp(e->d_name + l - el, ext))
            n++;
    }
    if (d)
        closedir(d);
    free(p);
    return n;
}

int dp_test_same_dataset(const char *d1, const char *d2)
{
    static const char *const outs[] = {"vectors.npy", "app.npy",    "traffic.npy", "meta.npy",
                                       "files.tsv",   "labels.tsv", "summary.md",  "summary.json"};
    int all = 1;
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        char *a = dp_path_join(d1, outs[i]), *b = dp_path_join(d2, outs[i]);
        if (!dp_test_same_file(a, b)) {
            fprintf(stderr, "  %s differs between %s and %s\n", outs[i], d1, d2);
            all = 0;
        }
        free(a);
        free(b);
    }
    return all;
}

int dp_test_write_split(const char *dir, const void *vectors, const int16_t *labels, const void *meta, size_t n,
                        const char *classes_tsv)
{
    char eb[DP_ERRBUF_SIZE], p[1024];
    int rc = dp_mkdirs(dir, eb);
    snprintf(p, sizeof p, "%s/vectors.npy", dir);
    rc = rc ? rc : dp_npy_save(p, DP_NPY_U1, 1, DP_VEC_LEN, vectors, (uint64_t)n, eb);
    snprintf(p, sizeof p, "%s/labels.npy", dir);
    rc = rc ? rc : dp_npy_save(p, DP_NPY_I2, 2, 0, labels, (uint64_t)n, eb);
    snprintf(p, sizeof p, "%s/meta.npy", dir);
    if (meta)
        rc = rc ? rc : dp_npy_save(p, DP_META_DESCR, sizeof(dp_meta), 0, meta, (uint64_t)n, eb);
    snprintf(p, sizeof p, "%s/classes.tsv", dir);
    rc = rc ? rc : dp_write_file_atomic(p, classes_tsv, strlen(classes_tsv), eb);
    if (rc)
        fprintf(stderr, "  %s\n", eb);
    return rc;
}

const char *dp_test_path(const char *name)
{
    static char p[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dp_test_tmpdir(), name);
    return p[k];
}

double dp_test_max_abs_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++)
        d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

int dp_test_png_size(const char *path, int *w, int *h)
{
    unsigned char b[24];
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n != sizeof b || memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(b + 12, "IHDR", 4) != 0)
        return -1;
    *w = (b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19];
    *h = (b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23];
    return 0;
}

uint8_t *dp_test_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return b;
}

void *dp_test_copy_fifo(void *arg)
{
    dp_test_fifo_copy *c = arg;
    c->n = -1;
    int in = open(c->fifo, O_RDONLY), out = open(c->file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in >= 0 && out >= 0) {
        char buf[4096];
        ssize_t k;
        c->n = 0;
        while ((k = read(in, buf, sizeof buf)) > 0)
            c->n = write(out, buf, (size_t)k) == k && c->n >= 0 ? c->n + k : -1;
    }
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return NULL;
}
