/* A file holding the fuzzer's input, for loaders that take a path: one
 * memfd reused across inputs, named by /proc/self/fd/N. */
#ifndef FUZZ_MEMFILE_H
#define FUZZ_MEMFILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define ASSERT(c)                                                                  \
    do {                                                                           \
        if (!(c))                                                                  \
            abort();                                                               \
    } while (0)

/* Replaces the memfile's content with data[0..size); returns its path. */
static const char *memfile(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-input", 0);
        ASSERT(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    ASSERT(ftruncate(fd, 0) == 0);
    ASSERT(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size);
    return path;
}

#endif
