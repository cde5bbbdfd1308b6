/* failmalloc: an LD_PRELOAD shim that makes allocations fail, to test how a
 * program copes with running out of memory.
 *
 *   cc -shared -fPIC -O1 -o failmalloc.so tests/failmalloc.c -ldl
 *   FAILMALLOC_N=120 LD_PRELOAD=./failmalloc.so build/deeppacket ...
 *
 * Counts the calls of malloc, calloc, realloc, posix_memalign, aligned_alloc,
 * memalign and valloc made once main() has started (the dynamic loader's and
 * the libraries' constructors' are not counted), across all threads, and
 * makes the FAILMALLOC_N-th one (1-based) fail with ENOMEM. Other variables:
 * FAILMALLOC_STICKY=1 fails every call from the N-th on (out of memory for
 * good, not one failed call); FAILMALLOC_COUNT=FILE writes the number of
 * counted calls to FILE at exit (to size a sweep); FAILMALLOC_BT=1 prints
 * the backtrace of the failed call on standard error.
 * A test tool, not part of the library: nothing links it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_long calls;
static atomic_int armed;
static long fail_at = -1;
static int sticky, want_bt;
static const char *count_file;

static void report_count(void)
{
    if (!count_file)
        return;
    int fd = open(count_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)atomic_load(&calls));
    if (write(fd, buf, (size_t)n) < 0) {
    }
    close(fd);
}

/* 1 when this call is to fail. */
static int should_fail(void)
{
    if (!atomic_load_explicit(&armed, memory_order_relaxed))
        return 0;
    long k = atomic_fetch_add(&calls, 1) + 1;
    if (fail_at <= 0 || (sticky ? k < fail_at : k != fail_at))
        return 0;
    if (want_bt && k == fail_at) {
        void *frames[48];
        static const char head[] = "failmalloc: this allocation fails:\n";
        if (write(2, head, sizeof head - 1) < 0) {
        }
        backtrace_symbols_fd(frames, backtrace(frames, 48), 2);
    }
    errno = ENOMEM;
    return 1;
}

void *malloc(size_t n) { return should_fail() ? NULL : __libc_malloc(n); }
void *calloc(size_t a, size_t b) { return should_fail() ? NULL : __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return should_fail() ? NULL : __libc_realloc(p, n); }
void *memalign(size_t al, size_t n) { return should_fail() ? NULL : __libc_memalign(al, n); }
void *aligned_alloc(size_t al, size_t n) { return should_fail() ? NULL : __libc_memalign(al, n); }
void *valloc(size_t n) { return should_fail() ? NULL : __libc_memalign((size_t)getpagesize(), n); }

int posix_memalign(void **out, size_t al, size_t n)
{
    if (should_fail())
        return ENOMEM;
    void *p = __libc_memalign(al, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

typedef int (*main_fn)(int, char **, char **);
static main_fn real_main;

static int counting_main(int argc, char **argv, char **envp)
{
    const char *s = getenv("FAILMALLOC_N");
    fail_at = s ? atol(s) : -1;
    sticky = getenv("FAILMALLOC_STICKY") && atoi(getenv("FAILMALLOC_STICKY"));
    want_bt = getenv("FAILMALLOC_BT") && atoi(getenv("FAILMALLOC_BT"));
    count_file = getenv("FAILMALLOC_COUNT");
    if (want_bt) { /* backtrace() loads libgcc_s on its first call: not while failing */
        void *f[2];
        backtrace(f, 2);
    }
    atexit(report_count);
    atomic_store(&armed, 1);
    return real_main(argc, argv, envp);
}

int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                      void (*rtld_fini)(void), void *stack_end)
{
    typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *);
    start_fn next = (start_fn)dlsym(RTLD_NEXT, "__libc_start_main");
    real_main = main;
    return next(counting_main, argc, argv, init, fini, rtld_fini, stack_end);
}
