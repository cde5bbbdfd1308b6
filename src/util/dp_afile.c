/* dp_afile: output files (atomic for regular files, written through for
 * special files), stale temp files, the signal-time temp registry, target
 * locks. See dp_util.h. */
#include "util/dp_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- paths ------------------------------------------------------------------ */

/* The message for the file `made` (for the output path) that could not be
 * created: a missing folder said as such, else the errno's text. */
static int create_failed(const char *path, const char *made, char *errbuf)
{
    int e = errno;
    char *d = dp_dir_of(path);
    struct stat st;
    int missing = e == ENOENT && d && stat(d, &st) != 0;
    int rc = missing ? dp_err(errbuf, "%s: cannot create it: the folder %s does not exist", path, d)
                     : (errno = e, dp_errno(errbuf, "%s: cannot create", made));
    free(d);
    return rc;
}

static const char *base_of(const char *path)
{
    const char *sl = strrchr(path, '/');
    return sl ? sl + 1 : path;
}

char *dp_resolve_links(const char *path, char *errbuf)
{
    char *p = strdup(path);
    for (int hops = 0; p; hops++) {
        struct stat st;
        if (lstat(p, &st) != 0 || !S_ISLNK(st.st_mode))
            return p;
        if (hops == 40) {
            dp_err(errbuf, "%s: too many levels of symbolic links", path);
            free(p);
            return NULL;
        }
        char target[PATH_MAX];
        ssize_t n = readlink(p, target, sizeof target - 1);
        if (n < 0) {
            dp_errno(errbuf, "%s: cannot read symbolic link", p);
            free(p);
            return NULL;
        }
        target[n] = 0;
        char *next;
        if (target[0] == '/') {
            next = strdup(target);
        } else {
            char *d = dp_dir_of(p);
            next = d ? dp_path_join(d, target) : NULL;
            free(d);
        }
        free(p);
        p = next;
    }
    dp_err(errbuf, "%s: out of memory", path);
    return NULL;
}

int dp_rename_durable(const char *from, const char *to, char *errbuf)
{
    if (rename(from, to) != 0)
        return dp_errno(errbuf, "%s: cannot rename %s into place", to, from);
    return dp_fsync_parent(to, errbuf);
}

/* ---- stale temp files ---------------------------------------------------------- */

int dp_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *c = dp_path_join(path, e->d_name);
        if (c)
            dp_remove_tree(c);
        free(c);
    }
    closedir(d);
    return rmdir(path);
}

/* 1 when name is PREFIX.tmp.<pid> or PREFIX.old.<pid> of a dead process. */
static int stale_name(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || (strncmp(name + n, ".tmp.", 5) && strncmp(name + n, ".old.", 5)))
        return 0;
    const char *num = name + n + 5;
    char *end;
    errno = 0;
    long pid = strtol(num, &end, 10);
    if (!*num || *end || errno || pid <= 0 || pid > INT_MAX)
        return 0;
    if (pid == (long)getpid())
        return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int dp_clean_stale_tmp(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!stale_name(e->d_name, prefix))
            continue;
        char *p = dp_path_join(dir, e->d_name);
        if (p && dp_remove_tree(p) == 0)
            removed++;
        free(p);
    }
    closedir(d);
    return removed;
}

/* ---- the signal-time registry ------------------------------------------------- */

#define TMP_SLOTS 64
static pthread_mutex_t tmp_mu = PTHREAD_MUTEX_INITIALIZER;
static char *tmp_paths[TMP_SLOTS];

int dp_tmp_register(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -1;
    pthread_mutex_lock(&tmp_mu);
    for (int i = 0; i < TMP_SLOTS; i++)
        if (!tmp_paths[i]) {
            tmp_paths[i] = p;
            pthread_mutex_unlock(&tmp_mu);
            return i;
        }
    pthread_mutex_unlock(&tmp_mu);
    free(p);
    return -1;
}

void dp_tmp_unregister(int slot)
{
    if (slot < 0 || slot >= TMP_SLOTS)
        return;
    pthread_mutex_lock(&tmp_mu);
    free(tmp_paths[slot]);
    tmp_paths[slot] = NULL;
    pthread_mutex_unlock(&tmp_mu);
}

void dp_tmp_remove_all(void)
{
    pthread_mutex_lock(&tmp_mu);
    for (int i = 0; i < TMP_SLOTS; i++)
        if (tmp_paths[i]) {
            dp_remove_tree(tmp_paths[i]);
            free(tmp_paths[i]);
            tmp_paths[i] = NULL;
        }
    pthread_mutex_unlock(&tmp_mu);
}

/* The handler only writes the signal number to a pipe; a thread reads it,
 * removes the registered paths (not async-signal-safe work) and ends the
 * process by the same signal. */
static int cleanup_pipe[2] = {-1, -1};

static void on_cleanup_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    ssize_t r = write(cleanup_pipe[1], &b, 1);
    (void)r;
}

static void *cleanup_thread(void *arg)
{
    (void)arg;
    unsigned char b;
    while (read(cleanup_pipe[0], &b, 1) != 1)
        ;
    dp_tmp_remove_all();
    signal(b, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, b);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(b);
    _exit(128 + b);
}

/* stderr's writes, with the control characters of file names made
 * visible: "\x1b" rather than an escape sequence that the terminal would
 * run (retitle the window, clear the screen, hide text). Newlines, tabs,
 * carriage returns and the progress line's erase ("\033[K") pass. */
static ssize_t stderr_write(void *cookie, const char *buf, size_t n)
{
    (void)cookie;
    char out[4096 + 8];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        int keep = c >= 0x20 ? c != 0x7f : c == '\n' || c == '\t' || c == '\r' ||
                   (c == 0x1b && i + 2 < n && buf[i + 1] == '[' && buf[i + 2] == 'K');
        k += keep ? (size_t)(out[k] = (char)c, 1) : (size_t)snprintf(out + k, 5, "\\x%02x", c);
        if (k >= 4096 || i + 1 == n) {
            if (dp_write_full(2, out, k) != 0)
                return -1;
            k = 0;
        }
    }
    return (ssize_t)n;
}

void dp_process_guard(void)
{
    signal(SIGXFSZ, SIG_IGN);
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            /* read-only: a write to it still fails (EBADF) as to a closed one */
            int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* takes fd: the lowest free */
            if (nfd >= 0 && nfd != fd)
                close(nfd); /* (fd was taken meanwhile: never) */
        }
    FILE *f = fopencookie(NULL, "w", (cookie_io_functions_t){NULL, stderr_write, NULL, NULL});
    if (f && setvbuf(f, NULL, _IONBF, 0) == 0)
        stderr = f; /* (unbuffered, as stderr: one write per message) */
    else if (f)
        fclose(f);
}

void dp_tmp_cleanup_on_signals(void)
{
    if (cleanup_pipe[0] >= 0 || pipe2(cleanup_pipe, O_CLOEXEC) != 0)
        return;
    pthread_t th;
    if (pthread_create(&th, NULL, cleanup_thread, NULL) != 0)
        return;
    pthread_detach(th);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cleanup_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void dp_test_kill_point(const char *phase)
{
    static long count;
    const char *e = getenv("DP_TEST_KILL_AT");
    size_t n = strlen(phase);
    if (!e || strncmp(e, phase, n) != 0 || e[n] != ':')
        return;
    char *end;
    long at = strtol(e + n + 1, &end, 10), every = 0;
    int sig = SIGKILL;
    if (*end == ':') {
        sig = (int)strtol(end + 1, &end, 10);
        if (*end == ':')
            every = strtol(end + 1, NULL, 10);
    }
    long k = __atomic_add_fetch(&count, 1, __ATOMIC_SEQ_CST);
    if (k != at && !(every > 0 && k > at && (k - at) % every == 0))
        return;
    raise(sig > 0 ? sig : SIGKILL);
    if (sig == SIGSTOP)
        return; /* continued: the test changed files meanwhile */
    struct sigaction cur;
    if (sig > 0 && sigaction(sig, NULL, &cur) == 0 && cur.sa_handler != on_cleanup_signal &&
        cur.sa_handler != SIG_DFL)
        return; /* a handler that asks the command to stop (classify, capture) has run */
    for (;;) /* another signal's handler ends the process (dp_tmp_cleanup_on_signals) */
        pause();
}

/* ---- output files ---------------------------------------------------------------- */

static void afile_free(dp_afile *af)
{
    dp_tmp_unregister(af->slot - 1);
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
    af->slot = 0;
}

/* Opens a special file, stdout or (live) a regular file to write through. */
static int open_through(dp_afile *af, int regular, char *errbuf)
{
    af->through = regular ? 2 : 1;
    if (!strcmp(af->path, "-")) {
        af->f = stdout;
        return 0;
    }
    int fd = open(af->path, O_WRONLY | O_CLOEXEC | (regular ? O_CREAT | O_TRUNC : 0), 0666);
    if (fd >= 0)
        af->f = fdopen(fd, "wb");
    if (!af->f) {
        dp_errno(errbuf, "%s: cannot open for writing", af->path);
        if (fd >= 0)
            close(fd);
        afile_free(af);
        return -1;
    }
    /* a live file's creation is made durable now: the commit then needs no
     * access to the folder (live commands may have dropped privileges) */
    if (regular && dp_fsync_parent(af->path, errbuf) != 0) {
        fclose(af->f);
        af->f = NULL;
        afile_free(af);
        return -1;
    }
    return 0;
}

int dp_afile_open_flags(dp_afile *af, const char *path, int flags, char *errbuf)
{
    memset(af, 0, sizeof *af);
    af->path = !strcmp(path, "-") ? strdup(path) : dp_resolve_links(path, errbuf);
    if (!af->path)
        return strcmp(path, "-") ? -1 : dp_err(errbuf, "standard output: out of memory");
    struct stat st;
    int exists = strcmp(af->path, "-") != 0 && stat(af->path, &st) == 0;
    if (!strcmp(af->path, "-") || (exists && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)))
        return open_through(af, 0, errbuf);
    if (exists && S_ISDIR(st.st_mode)) {
        dp_err(errbuf, "%s: is a folder, not a file", path);
        afile_free(af);
        return -1;
    }
    char *d = dp_dir_of(af->path);
    if (d)
        dp_clean_stale_tmp(d, base_of(af->path));
    free(d);
    if (flags & DP_AFILE_LIVE)
        return open_through(af, 1, errbuf);
    size_t n = strlen(af->path) + 32;
    af->tmp = malloc(n);
    if (!af->tmp) {
        afile_free(af);
        return dp_err(errbuf, "%s: out of memory", path);
    }
    snprintf(af->tmp, n, "%s.tmp.%ld", af->path, (long)getpid());
    af->slot = dp_tmp_register(af->tmp) + 1;
    af->f = fopen(af->tmp, "wbe");
    if (!af->f) {
        create_failed(af->path, af->tmp, errbuf);
        afile_free(af);
        return -1;
    }
    return 0;
}

int dp_path_written_through(const char *path)
{
    struct stat st; /* stat follows symlinks, as dp_afile does */
    return !strcmp(path, "-") || (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode));
}

int dp_afile_open(dp_afile *af, const char *path, char *errbuf)
{
    return dp_afile_open_flags(af, path, 0, errbuf);
}

/* Flushes f; -1 with a message naming NAME when that or an earlier write
 * failed. The errno is the failing flush's; an earlier failure's errno is
 * gone by now (the stream keeps only its error flag), and a stale one
 * would name a wrong cause, so the message says that instead. */
static int flush_check(FILE *f, const char *name, char *errbuf)
{
    errno = 0;
    int flushed = fflush(f) == 0;
    if (flushed && !ferror(f))
        return 0;
    if (!flushed && errno != 0)
        return dp_errno(errbuf, "%s: write failed", name);
    return dp_err(errbuf, "%s: write failed (an earlier write to it failed)", name);
}

int dp_afile_commit(dp_afile *af, char *errbuf)
{
    int rc = 0;
    const char *name = af->f == stdout ? "standard output" : af->path;
    if (flush_check(af->f, name, errbuf) != 0)
        rc = -1;
    else if (af->through != 1 && fsync(fileno(af->f)) != 0 && errno != EINVAL)
        rc = dp_errno(errbuf, "%s: fsync failed", name);
    if (af->f != stdout && fclose(af->f) != 0 && rc == 0)
        rc = dp_errno(errbuf, "%s: close failed", name);
    af->f = NULL;
    if (rc == 0 && af->tmp) {
        dp_test_kill_point("commit");
        rc = dp_rename_durable(af->tmp, af->path, errbuf);
    }
    if (rc != 0 && af->tmp)
        unlink(af->tmp);
    afile_free(af);
    return rc;
}

void dp_afile_abort(dp_afile *af)
{
    if (af->f && af->f != stdout)
        fclose(af->f);
    else if (af->f)
        fflush(af->f);
    af->f = NULL;
    if (af->tmp)
        unlink(af->tmp);
    afile_free(af);
}

int dp_write_file_atomic(const char *path, const void *buf, size_t n, char *errbuf)
{
    dp_afile af;
    if (dp_afile_open(&af, path, errbuf) != 0)
        return -1;
    if (n && fwrite(buf, 1, n, af.f) != n) {
        dp_errno(errbuf, "%s: write failed", path);
        dp_afile_abort(&af);
        return -1;
    }
    return dp_afile_commit(&af, errbuf);
}

/* ---- folders --------------------------------------------------------------------- */

int dp_link_tree(const char *from, const char *to, char *errbuf)
{
    struct stat st;
    if (lstat(from, &st) != 0)
        return dp_errno(errbuf, "%s: cannot read", from);
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(from, target, sizeof target - 1);
        if (n < 0)
            return dp_errno(errbuf, "%s: cannot read symbolic link", from);
        target[n] = 0;
        return symlink(target, to) == 0 ? 0 : dp_errno(errbuf, "%s: cannot create link", to);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (!S_ISREG(st.st_mode))
            return 0; /* sockets, FIFOs: not carried over */
        return link(from, to) == 0 ? 0 : dp_errno(errbuf, "%s: cannot link %s", to, from);
    }
    if (mkdir(to, st.st_mode & 07777) != 0)
        return dp_errno(errbuf, "%s: cannot create directory", to);
    DIR *d = opendir(from);
    if (!d)
        return dp_errno(errbuf, "%s: cannot read folder", from);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *a = dp_path_join(from, e->d_name), *b = dp_path_join(to, e->d_name);
        rc = a && b ? dp_link_tree(a, b, errbuf) : dp_err(errbuf, "%s: out of memory", from);
        free(a);
        free(b);
    }
    closedir(d);
    return rc;
}

int dp_swap_dir_into_place(const char *tmp, const char *target, char *errbuf)
{
    if (dp_fsync_parent(tmp, errbuf) != 0)
        return -1;
    struct stat st;
    if (lstat(target, &st) != 0) {
        if (errno != ENOENT)
            return dp_errno(errbuf, "%s: cannot read", target);
        return dp_rename_durable(tmp, target, errbuf);
    }
    if (!S_ISDIR(st.st_mode))
        return dp_err(errbuf, "%s: exists and is not a folder", target);
    dp_test_kill_point("swap");
    /* one atomic exchange; the old folder is then at tmp */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_EXCHANGE) != 0) {
        if (errno != EINVAL && errno != ENOSYS)
            return dp_errno(errbuf, "%s: cannot swap %s into place", target, tmp);
        /* no exchange on this file system: two renames (a crash between
         * them leaves the old folder at TARGET.old.<pid>, and no target) */
        size_t n = strlen(target) + 32;
        char *old = malloc(n);
        if (!old)
            return dp_err(errbuf, "%s: out of memory", target);
        snprintf(old, n, "%s.old.%ld", target, (long)getpid());
        int rc = rename(target, old) == 0 ? dp_rename_durable(tmp, target, errbuf)
                                          : dp_errno(errbuf, "%s: cannot move aside", target);
        if (rc == 0)
            dp_remove_tree(old);
        free(old);
        return rc;
    }
    if (dp_fsync_parent(target, errbuf) != 0)
        return -1;
    dp_remove_tree(tmp);
    return 0;
}

int dp_check_writable_dir(const char *dir, char *errbuf)
{
    if (dp_mkdirs(dir, errbuf) != 0)
        return -1;
    char name[64];
    snprintf(name, sizeof name, ".write-check.tmp.%ld", (long)getpid());
    char *p = dp_path_join(dir, name);
    if (!p)
        return dp_err(errbuf, "%s: out of memory", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = fd >= 0 ? 0 : dp_errno(errbuf, "%s: cannot write in this folder", dir);
    if (fd >= 0) {
        close(fd);
        unlink(p);
    }
    free(p);
    return rc;
}

/* ---- locks ------------------------------------------------------------------------ */

int dp_lock_target(const char *target, const char *what, char *errbuf)
{
    /* a symlink's target is what is written: locked beside it, so that the link
     * and the file it names are one lock (dp_resolve_links) */
    char *real = dp_resolve_links(target, errbuf);
    if (!real)
        return -1;
    size_t n = strlen(real) + 8;
    char *lp = malloc(n);
    if (!lp) {
        free(real);
        return dp_err(errbuf, "%s: out of memory", target);
    }
    /* a trailing slash would put the lock inside the target */
    snprintf(lp, n, "%s", real);
    free(real);
    for (size_t k = strlen(lp); k > 1 && lp[k - 1] == '/'; k--)
        lp[k - 1] = 0;
    strcat(lp, ".lock");
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        create_failed(lp, lp, errbuf);
        free(lp);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t r = pread(fd, pid, sizeof pid - 1, 0);
        pid[r > 0 ? r : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        if (e == EWOULDBLOCK)
            dp_err(errbuf, "%s: locked by another %s (pid %s) writing %s", lp, what, pid[0] ? pid : "?",
                   target);
        else {
            errno = e;
            dp_errno(errbuf, "%s: cannot lock", lp);
        }
        close(fd);
        free(lp);
        return -1;
    }
    char pid[32];
    int k = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)k, 0) != k) {
        dp_errno(errbuf, "%s: cannot write lock file", lp);
        close(fd);
        free(lp);
        return -1;
    }
    free(lp);
    return fd;
}

int dp_check_stdout(char *errbuf)
{
    return flush_check(stdout, "standard output", errbuf);
}
