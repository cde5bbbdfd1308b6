/* libFuzzer target for dp_mask. The first 4 input bytes pick the mask
 * bits, the rest is a vector (zero-padded to DP_VEC_LEN). Checks the
 * invariants: masking only zeroes bytes, is idempotent, mask 0 is a no-op,
 * the layout's offsets stay inside the vector; any violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "packet/dp_mask.h"

#define ASSERT(c)                                                                  \
    do {                                                                           \
        if (!(c))                                                                  \
            abort();                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint32_t mask = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                    (uint32_t)data[3] << 24;
    size_t n = size - 4 > DP_VEC_LEN ? DP_VEC_LEN : size - 4;
    /* a heap copy of exactly DP_VEC_LEN bytes so that ASan sees any overrun */
    uint8_t *v = calloc(1, DP_VEC_LEN), *orig = malloc(DP_VEC_LEN);
    if (!v || !orig) {
        free(v);
        free(orig);
        return 0;
    }
    memcpy(v, data + 4, n);
    memcpy(orig, v, DP_VEC_LEN);

    dp_vec_layout lay;
    dp_vec_layout_get(v, &lay);
    ASSERT(lay.ipver == 0 || lay.ipver == 4 || lay.ipver == 6);
    ASSERT(lay.l4_off >= -1 && lay.l4_off < DP_VEC_LEN);
    ASSERT(lay.payload_off >= 0 && lay.payload_off <= DP_VEC_LEN);
    ASSERT(lay.l4_off < 0 || lay.payload_off >= lay.l4_off);

    dp_mask_apply(0, v);
    ASSERT(memcmp(v, orig, DP_VEC_LEN) == 0);
    dp_mask_apply(mask, v);
    for (int i = 0; i < DP_VEC_LEN; i++)
        ASSERT(v[i] == orig[i] || v[i] == 0 || (i == 1 && v[i] == (orig[i] & 0xF0)));
    if (!(mask & DP_MASK_ALL))
        ASSERT(memcmp(v, orig, DP_VEC_LEN) == 0);
    /* idempotent */
    memcpy(orig, v, DP_VEC_LEN);
    dp_mask_apply(mask, v);
    ASSERT(memcmp(v, orig, DP_VEC_LEN) == 0);

    char name[128];
    uint32_t back;
    ASSERT(dp_mask_parse(dp_mask_name(mask, name, sizeof name), &back, NULL) == 0);
    ASSERT(back == (mask & DP_MASK_ALL));
    free(v);
    free(orig);
    return 0;
}
