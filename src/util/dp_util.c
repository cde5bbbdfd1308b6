#include "util/dp_util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int dp_err(char *errbuf, const char *fmt, ...)
{
    if (errbuf) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, DP_ERRBUF_SIZE, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int dp_errno(char *errbuf, const char *fmt, ...)
{
    int e = errno;
    if (errbuf) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(errbuf, DP_ERRBUF_SIZE, fmt, ap);
        va_end(ap);
        if (n >= 0 && n < DP_ERRBUF_SIZE)
            snprintf(errbuf + n, DP_ERRBUF_SIZE - n, ": %s", strerror(e));
    }
    errno = e;
    return -1;
}

typedef struct memstream {
    char **buf;
    size_t *len, cap;
} memstream;

static ssize_t memstream_write(void *cookie, const char *data, size_t n)
{
    memstream *m = cookie;
    if (*m->len + n + 1 > m->cap) { /* + 1: the closing NUL */
        size_t cap = m->cap ? m->cap : 256;
        while (cap < *m->len + n + 1)
            cap *= 2;
        char *nb = realloc(*m->buf, cap);
        if (!nb) {
            errno = ENOMEM;
            return -1; /* stdio sets the error flag */
        }
        *m->buf = nb;
        m->cap = cap;
    }
    memcpy(*m->buf + *m->len, data, n);
    *m->len += n;
    (*m->buf)[*m->len] = 0;
    return (ssize_t)n;
}

static int memstream_close(void *cookie)
{
    memstream *m = cookie;
    int rc = 0;
    if (!*m->buf && !(*m->buf = calloc(1, 1))) {
        errno = ENOMEM;
        rc = -1;
    }
    free(m);
    return rc;
}

FILE *dp_memstream_open(char **buf, size_t *len)
{
    memstream *m = malloc(sizeof *m);
    *buf = NULL;
    *len = 0;
    if (!m)
        return NULL;
    *m = (memstream){buf, len, 0};
    FILE *f = fopencookie(m, "w", (cookie_io_functions_t){NULL, memstream_write, NULL, memstream_close});
    if (!f)
        free(m);
    return f;
}

int dp_memstream_close(FILE *f)
{
    int bad = fflush(f) != 0 || ferror(f);
    if (fclose(f) != 0 || bad) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

int dp_errno_exhausted(int e) { return e == ENOMEM || e == EMFILE || e == ENFILE; }

int dp_write_full(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO; /* nothing written, no error said: not retried for ever */
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The folder part of path: its n bytes from *from (path up to its last
 * slash, "/" for "/x", "." when it has none). */
static size_t dir_part(const char *path, const char **from)
{
    const char *sl = strrchr(path, '/');
    *from = sl ? path : ".";
    return !sl || sl == path ? 1 : (size_t)(sl - path);
}

char *dp_dir_of(const char *path)
{
    const char *from;
    size_t n = dir_part(path, &from);
    return strndup(from, n);
}

int dp_fsync_parent(const char *path, char *errbuf)
{
    /* the folder's name on the stack: the fsync that follows a commit's
     * rename cannot fail for want of memory */
    char small[4096], *d = small;
    const char *from;
    size_t n = dir_part(path, &from);
    if (n >= sizeof small && !(d = malloc(n + 1)))
        return dp_err(errbuf, "%s: out of memory", path);
    memcpy(d, from, n);
    d[n] = 0;
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
        rc = dp_errno(errbuf, "%s: cannot fsync folder %s", path, d);
    if (fd >= 0)
        close(fd);
    if (d != small)
        free(d);
    return rc;
}

/* mkdir of one level; a folder made is made durable in its parent (the
 * entry fsynced, as a file's rename is: a committed output must not vanish
 * with its new folder at a power loss). */
static int mkdir_one(const char *p, char *errbuf)
{
    if (mkdir(p, 0777) == 0) {
        char eb[DP_ERRBUF_SIZE];
        dp_fsync_parent(p, eb); /* best effort: some file systems cannot fsync a folder */
        return 0;
    }
    return errno == EEXIST ? 0 : dp_errno(errbuf, "%s: cannot create directory", p);
}

int dp_mkdirs(const char *path, char *errbuf)
{
    char *p = strdup(path);
    if (!p)
        return dp_err(errbuf, "%s: out of memory", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir_one(p, errbuf) != 0) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    if (mkdir_one(p, errbuf) != 0) {
        free(p);
        return -1;
    }
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
        dp_err(errbuf, "%s: exists and is not a directory", p);
        free(p);
        return -1;
    }
    free(p);
    return 0;
}

char *dp_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s)
        return NULL;
    memcpy(s, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/')
        s[k++] = '/';
    memcpy(s + k, name, b + 1);
    return s;
}

char *dp_read_file(const char *path, size_t *len, char *errbuf)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        dp_errno(errbuf, "%s: cannot open", path);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
        } else {
            buf = nb;
        }
    }
    if (!buf) {
        fclose(f);
        dp_err(errbuf, "%s: out of memory", path);
        return NULL;
    }
    if (ferror(f)) {
        dp_errno(errbuf, "%s: read failed", path);
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

/* ---- RNG ------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    return dp_mix64(*x += 0x9e3779b97f4a7c15ULL);
}

void dp_rng_seed(dp_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dp_rng_u64(dp_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double dp_rng_double(dp_rng *r) { return (dp_rng_u64(r) >> 11) * 0x1.0p-53; }

float dp_rng_float(dp_rng *r) { return (float)(dp_rng_u64(r) >> 40) * 0x1.0p-24f; }

uint64_t dp_rng_below(dp_rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = dp_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double dp_rng_normal(dp_rng *r)
{
    double u1 = dp_rng_double(r), u2 = dp_rng_double(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void dp_rng_shuffle_u32(dp_rng *r, uint32_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = dp_rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

void dp_rng_shuffle_u64(dp_rng *r, uint64_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = dp_rng_below(r, i);
        uint64_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* ---- time and progress ---------------------------------------------------- */

double dp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double dp_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void dp_progress_init(dp_progress *p)
{
    p->start = p->last = dp_now();
    p->tty = isatty(2);
    p->printed = 0;
}

int dp_progress_due(dp_progress *p)
{
    double t = dp_now();
    double every = p->tty ? 0.5 : 10.0;
    if (t - p->last < every)
        return 0;
    p->last = t;
    return 1;
}

void dp_progress_print(dp_progress *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (p->tty)
        fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    if (!p->tty)
        fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    p->printed = 1;
}

void dp_progress_done(dp_progress *p)
{
    if (p->tty && p->printed)
        fputc('\n', stderr);
    p->printed = 0;
}

void dp_fmt_duration(char *buf, size_t cap, double sec)
{
    if (!(sec >= 0) || sec > 1e7) {
        snprintf(buf, cap, "?");
        return;
    }
    long s = (long)(sec + 0.5);
    if (s >= 3600)
        snprintf(buf, cap, "%ldh%02ldm%02lds", s / 3600, s / 60 % 60, s % 60);
    else if (s >= 60)
        snprintf(buf, cap, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, cap, "%lds", s);
}

int dp_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

size_t dp_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (size_t)ru.ru_maxrss * 1024;
}

uint64_t dp_fnv1a(const void *data, size_t n, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t dp_hash8(uint64_t h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = ((h ^ w) * 0x9e3779b97f4a7c15ULL);
        h ^= h >> 29;
    }
    uint64_t w = (uint64_t)n << 56;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

/* Length of the well-formed UTF-8 sequence at p (1-4), or 0 when p does not
 * start one (stray continuation byte, overlong form, surrogate, above
 * U+10FFFF, or cut short by the end of the string). */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || /* overlong, surrogate */
        (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))  /* overlong, > U+10FFFF */
        return 0;
    return n;
}

void dp_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
        size_t n = utf8_seq(p);
        if (n == 0) /* not UTF-8 (a file name in another encoding) */
            fputs("\\ufffd", f);
        else if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fwrite(p, 1, n, f);
        p += n ? n : 1;
    }
    fputc('"', f);
}

void dp_md_text(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
        size_t n = utf8_seq(p);
        if (n == 0)
            fputs("\xef\xbf\xbd", f); /* U+FFFD: not UTF-8 */
        else if (*p == '|' || *p == '\\' || *p == '<')
            fprintf(f, "\\%c", *p); /* no column break, no HTML tag */
        else if (*p < 0x20 || *p == 0x7f)
            fputc(' ', f);
        else
            fwrite(p, 1, n, f);
        p += n ? n : 1;
    }
}

void dp_html_str(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
        size_t n = utf8_seq(p);
        if (n == 0 || (*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7f)
            fputs("\xef\xbf\xbd", f); /* U+FFFD */
        else if (*p == '&')
            fputs("&amp;", f);
        else if (*p == '<')
            fputs("&lt;", f);
        else if (*p == '>')
            fputs("&gt;", f);
        else if (*p == '"')
            fputs("&quot;", f);
        else if (*p == '\'')
            fputs("&#39;", f);
        else
            fwrite(p, 1, n, f);
        p += n ? n : 1;
    }
}

void dp_json_num(FILE *f, const char *fmt, double v)
{
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("null", f);
}

/* ---- named bit sets ------------------------------------------------------ */

static int bits_lookup(const char *s, size_t n, const char *const *names, int nnames,
                       const char *const *aliases, const uint32_t *alias_bits, int naliases, uint32_t *bits)
{
    for (int i = 0; i < naliases; i++)
        if (strlen(aliases[i]) == n && memcmp(s, aliases[i], n) == 0) {
            *bits = alias_bits[i];
            return 0;
        }
    for (int i = 0; i < nnames; i++)
        if (strlen(names[i]) == n && memcmp(s, names[i], n) == 0) {
            *bits = 1u << i;
            return 0;
        }
    return -1;
}

static void bits_valid_list(char *buf, size_t n, const char *const *names, int nnames,
                            const char *const *aliases, int naliases)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < nnames + naliases && len < n; i++) {
        const char *nm = i < nnames ? names[i] : aliases[i - nnames];
        const char *sep = i == 0 ? "" : i == nnames ? ", or " : ", ";
        int w = snprintf(buf + len, n - len, "%s%s", sep, nm);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

int dp_bits_parse(const char *opt, const char *list, const char *const *names, int nnames,
                  const char *const *aliases, const uint32_t *alias_bits, int naliases, uint32_t *out,
                  char *errbuf)
{
    char valid[256];
    bits_valid_list(valid, sizeof valid, names, nnames, aliases, naliases);
    const char *p = list ? list : "";
    if (!*p)
        return dp_err(errbuf, "%s: empty list (valid: %s)", opt, valid);
    uint32_t m = 0;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        uint32_t bits;
        if (n == 0)
            return dp_err(errbuf, "%s '%s': empty field name (valid: %s)", opt, list, valid);
        if (bits_lookup(p, n, names, nnames, aliases, alias_bits, naliases, &bits) < 0)
            return dp_err(errbuf, "%s: unknown field '%.*s' (valid: %s)", opt, (int)(n > 64 ? 64 : n), p, valid);
        m |= bits;
        if (!e)
            break;
        p = e + 1;
    }
    *out = m;
    return 0;
}

char *dp_bits_name(uint32_t bits, const char *const *names, int nnames, const char *zero, char *buf, size_t n)
{
    size_t len = 0;
    if (n == 0)
        return buf;
    buf[0] = 0;
    for (int i = 0; i < nnames; i++) {
        if (!(bits & (1u << i)))
            continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? "," : "", names[i]);
        if (w < 0 || (size_t)w >= n - len)
            break;
        len += (size_t)w;
    }
    if (!len)
        snprintf(buf, n, "%s", zero);
    return buf;
}
