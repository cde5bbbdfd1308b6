/* libFuzzer target for the label-table parser (dp_labels_parse): the input
 * is the table's text. An accepted table must be usable: every row's class
 * ids inside the table's class counts, every class named, lookups safe,
 * the filters counted and non-empty. */
#include <string.h>

#include "dataset/dp_labels.h"
#include "util/dp_util.h"
#include "fuzz_memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char errbuf[DP_ERRBUF_SIZE];
    dp_labels t;
    if (dp_labels_parse(&t, text, "fuzz.tsv", errbuf) != 0) {
        ASSERT(!strncmp(errbuf, "fuzz.tsv", 8)); /* the message names the table */
        free(text);
        return 0;
    }
    ASSERT(t.nrows > 0);
    int nf = 0;
    for (size_t i = 0; i < t.nrows; i++) {
        const char *f = t.rows[i].filter;
        ASSERT(!f || *f);
        nf += f != NULL;
        const char *p = t.rows[i].prefix; /* a file named as the prefix finds its row */
        if (!strpbrk(p, "./") && strlen(p) < 255)
            ASSERT(dp_labels_find(&t, p) == &t.rows[i]);
        for (int k = 0; k < DP_NTASKS; k++)
            ASSERT(t.rows[i].cls[k] >= -1 && t.rows[i].cls[k] < t.nclasses[k]);
        int cls[DP_NTASKS];
        dp_labels_lookup(&t, t.rows[i].prefix, cls);
    }
    ASSERT(nf == t.nfilters);
    for (int k = 0; k < DP_NTASKS; k++)
        for (int c = 0; c < t.nclasses[k]; c++)
            ASSERT(t.names[k][c] != NULL);
    dp_labels_free(&t);
    free(text);
    return 0;
}
