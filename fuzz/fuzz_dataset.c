/* libFuzzer target for the two text files a dataset folder holds that
 * deeppacket reads back with parsers of its own: summary.json (is the
 * dataset complete and up to date? dp_pp_summary_parse, a small strict JSON
 * reader) and a shard's shard.tsv (what `merge` joins;
 * dp_pp_manifest_parse). Every input is tried as both. Checks the
 * contracts of their headers; any violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dp_pp_shard.h"
#include "dataset/dp_pp_summary.h"

#define ASSERT(c)                                                                  \
    do {                                                                           \
        if (!(c))                                                                  \
            abort();                                                               \
    } while (0)

/* summary.json: 0 or -1; on 0 a fingerprint of at most 16 characters. The
 * text is a heap copy of exactly size bytes (no NUL) so that ASan sees any
 * read past its end. */
static void fuzz_summary(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        return;
    memcpy(text, data, size);
    dp_pp_summary s;
    int rc = dp_pp_summary_parse(text, size, &s);
    ASSERT(rc == 0 || rc == -1);
    ASSERT(memchr(s.fingerprint, 0, sizeof s.fingerprint) != NULL);
    free(text);
}

/* shard.tsv: on success a shard I < N, a source, a filter that is absent
 * or not empty, and files that each have a non-empty relative path, a
 * joined path and a terminated status. */
static void fuzz_manifest(const uint8_t *data, size_t size)
{
    if (memchr(data, 0, size)) /* dp_pp_manifest_read refuses a NUL byte first */
        return;
    char *text = malloc(size + 1);
    if (!text)
        return;
    memcpy(text, data, size);
    text[size] = 0;
    dp_pp_manifest m;
    memset(&m, 0, sizeof m);
    size_t bad = dp_pp_manifest_parse(text, &m);
    if (bad == 0) {
        ASSERT(m.count > 0 && m.index < m.count && m.source);
        ASSERT(!m.filter || m.filter[0]);
        for (size_t i = 0; i < m.nfiles; i++) {
            ASSERT(m.files[i].rel && m.files[i].rel[0] && m.files[i].path);
            ASSERT(memchr(m.files[i].status, 0, sizeof m.files[i].status) != NULL);
            ASSERT(m.files[i].is_capture <= 1 && m.files[i].unreadable <= 1);
        }
    } else {
        size_t lines = 1;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        ASSERT(bad <= lines + 1);
    }
    dp_pp_manifest_free(&m);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_summary(data, size);
    fuzz_manifest(data, size);
    return 0;
}
