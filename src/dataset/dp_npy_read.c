/* dp_npy_read: reading .npy arrays (memory-mapped, header parsed and
 * checked); the writers are in dp_npy.c. */
#include "dataset/dp_npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Finds the value text after 'key': in the header dict. */
static const char *dict_value(const char *dict, const char *key)
{
    const char *p = strstr(dict, key);
    if (!p)
        return NULL;
    p += strlen(key);
    while (*p == ' ' || *p == ':')
        p++;
    return p;
}

/* Maps the whole of path read-only; at least the 10 bytes of a v1 preamble. */
static int map_file(const char *path, void **map, size_t *len, char *errbuf)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return dp_errno(errbuf, "%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return dp_errno(errbuf, "%s: cannot stat", path);
    }
    *len = (size_t)st.st_size;
    if (*len < 10) {
        close(fd);
        return dp_err(errbuf, "%s: not a .npy file (too short)", path);
    }
    *map = mmap(NULL, *len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (*map == MAP_FAILED)
        return dp_errno(errbuf, "%s: cannot map", path);
    return 0;
}

/* Checks the magic and version of the len bytes at b and finds where the
 * header dict starts and how long it is. */
static int header_span(const uint8_t *b, size_t len, const char *path, size_t *hstart, size_t *hlen,
                       char *errbuf)
{
    if (memcmp(b, "\x93NUMPY", 6) != 0)
        return dp_err(errbuf, "%s: not a .npy file (bad magic)", path);
    if (b[6] == 1) {
        *hlen = b[8] | (size_t)b[9] << 8;
        *hstart = 10;
    } else if (b[6] == 2 || b[6] == 3) {
        if (len < 12)
            return dp_err(errbuf, "%s: truncated .npy header", path);
        *hlen = b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        *hstart = 12;
    } else {
        return dp_err(errbuf, "%s: unsupported .npy version %d", path, b[6]);
    }
    if (*hstart + *hlen > len || *hlen > 65536)
        return dp_err(errbuf, "%s: truncated .npy header", path);
    return 0;
}

/* Copies the dtype description at d (to the matching close of its quote or
 * bracket) into a->descr. */
static int parse_descr(dp_npy *a, const char *d, const char *path, char *errbuf)
{
    const char *e;
    if (*d == '[') {
        int depth = 0;
        for (e = d; *e; e++) {
            if (*e == '[' || *e == '(')
                depth++;
            else if ((*e == ']' || *e == ')') && --depth == 0)
                break;
        }
        if (!*e)
            return dp_err(errbuf, "%s: cannot parse .npy dtype", path);
        e++;
    } else if (*d == '\'') {
        e = strchr(d + 1, '\'');
        if (!e)
            return dp_err(errbuf, "%s: cannot parse .npy dtype", path);
        e++;
    } else {
        return dp_err(errbuf, "%s: cannot parse .npy dtype", path);
    }
    if ((size_t)(e - d) >= sizeof a->descr)
        return dp_err(errbuf, "%s: .npy dtype too long", path);
    memcpy(a->descr, d, (size_t)(e - d));
    a->descr[e - d] = 0;
    return 0;
}

/* Reads the shape at sh, (N,) or (N, M), into a->shape and a->ndim. */
static int parse_shape(dp_npy *a, const char *sh, const char *path, char *errbuf)
{
    const char *p = sh + 1;
    int nd = 0;
    while (*p && *p != ')') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ')')
            break;
        char *end = (char *)p;
        errno = 0;
        unsigned long long v = *p >= '0' && *p <= '9' ? strtoull(p, &end, 10) : 0;
        if (*p < '0' || *p > '9' || end == p || errno) /* no sign, no overflow */
            return dp_err(errbuf, "%s: cannot parse .npy shape", path);
        if (nd >= 2)
            return dp_err(errbuf, "%s: more than 2 dimensions", path);
        a->shape[nd++] = v;
        p = end;
    }
    if (nd == 0)
        return dp_err(errbuf, "%s: scalar .npy arrays are not supported", path);
    a->ndim = nd;
    if (nd == 1)
        a->shape[1] = 1;
    return 0;
}

/* Parses the header dict (hlen bytes at h): dtype, order and shape. */
static int parse_header(dp_npy *a, const uint8_t *h, size_t hlen, const char *path, char *errbuf)
{
    char *dict = malloc(hlen + 1);
    if (!dict)
        return dp_err(errbuf, "%s: out of memory", path);
    memcpy(dict, h, hlen);
    dict[hlen] = 0;
    int rc = -1;
    const char *d = dict_value(dict, "'descr'");
    const char *fo = dict_value(dict, "'fortran_order'");
    const char *sh = dict_value(dict, "'shape'");
    if (!d || !fo || !sh || *sh != '(')
        dp_err(errbuf, "%s: cannot parse .npy header", path);
    else if (strncmp(fo, "False", 5) != 0)
        dp_err(errbuf, "%s: Fortran-ordered arrays are not supported", path);
    else if (parse_descr(a, d, path, errbuf) == 0 && parse_shape(a, sh, path, errbuf) == 0)
        rc = 0;
    free(dict);
    return rc;
}

int dp_npy_open(dp_npy *a, const char *path, char *errbuf)
{
    memset(a, 0, sizeof *a);
    void *map = NULL;
    size_t len = 0, hstart = 0, hlen = 0;
    if (map_file(path, &map, &len, errbuf) != 0)
        return -1;
    const uint8_t *b = map;
    if (header_span(b, len, path, &hstart, &hlen, errbuf) != 0 ||
        parse_header(a, b + hstart, hlen, path, errbuf) != 0) {
        munmap(map, len);
        return -1;
    }
    a->map = map;
    a->map_len = len;
    a->data = b + hstart + hlen;
    return 0;
}

/* Normalises a descr for comparison: drops spaces and spells the one-byte
 * types without a byte-order mark ('|u1', '<u1' and 'u1' are all numpy's
 * uint8, and numpy writes them differently in plain and structured dtypes). */
static void squash(char *dst, const char *src, size_t cap)
{
    size_t k = 0;
    for (; *src && k + 1 < cap; src++) {
        if (*src == ' ')
            continue;
        if (src[0] == '\'' && (src[1] == '|' || src[1] == '<' || src[1] == '>' || src[1] == '=') &&
            (src[2] == 'u' || src[2] == 'i' || src[2] == 'b') && src[3] == '1' && src[4] == '\'') {
            dst[k++] = '\'';
            src++; /* skip the byte-order mark */
            continue;
        }
        dst[k++] = *src;
    }
    dst[k] = 0;
}

int dp_npy_expect(const dp_npy *a, const char *path, const char *descr,
                  size_t itemsize, size_t ncols, char *errbuf)
{
    char x[512], y[512];
    squash(x, a->descr, sizeof x);
    squash(y, descr, sizeof y);
    if (strcmp(x, y) != 0)
        return dp_err(errbuf, "%s: dtype is %s, expected %s", path, a->descr, descr);
    if (ncols ? (a->ndim != 2 || a->shape[1] != ncols) : a->ndim != 1) {
        if (ncols)
            return dp_err(errbuf, "%s: expected shape [N, %zu]", path, ncols);
        return dp_err(errbuf, "%s: expected a 1-D array", path);
    }
    /* every product checked: a crafted header may claim 2^63 rows */
    uint64_t row = (uint64_t)itemsize * (ncols ? ncols : 1), need;
    uint64_t have = a->map_len - (uint64_t)(a->data - (const uint8_t *)a->map);
    if ((ncols && row / ncols != itemsize) || __builtin_mul_overflow(a->shape[0], row, &need) ||
        need > have)
        return dp_err(errbuf, "%s: truncated: header says %llu rows, file holds %llu bytes of data",
                      path, (unsigned long long)a->shape[0], (unsigned long long)have);
    return 0;
}

void dp_npy_close(dp_npy *a)
{
    if (a->map)
        munmap(a->map, a->map_len);
    memset(a, 0, sizeof *a);
}
