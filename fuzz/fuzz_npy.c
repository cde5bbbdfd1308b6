/* libFuzzer target for the .npy reader (dp_npy_open, dp_npy_expect): the
 * input is the whole file. When a header is accepted for one of the dtypes
 * the program reads, every row it promises must lie inside the mapping:
 * the last byte is read (a crash or an abort otherwise). */
#include <string.h>

#include "dataset/dp_dataset.h"
#include "dataset/dp_npy.h"
#include "fuzz_memfile.h"

static const struct {
    const char *descr;
    size_t itemsize, ncols;
} kinds[] = {
    {DP_NPY_U1, 1, DP_VEC_LEN}, {DP_NPY_I2, 2, 0}, {DP_NPY_F4, 4, 11},
    {DP_NPY_I8, 8, 0},          {DP_META_DESCR, sizeof(dp_meta), 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = memfile(data, size);
    char errbuf[DP_ERRBUF_SIZE];
    dp_npy a;
    if (dp_npy_open(&a, path, errbuf) != 0) {
        ASSERT(strstr(errbuf, path) != NULL); /* the message names the file */
        return 0;
    }
    ASSERT(a.ndim == 1 || a.ndim == 2);
    ASSERT(a.data >= (const uint8_t *)a.map && a.data <= (const uint8_t *)a.map + a.map_len);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (dp_npy_expect(&a, path, kinds[k].descr, kinds[k].itemsize, kinds[k].ncols, errbuf) != 0)
            continue;
        size_t row = kinds[k].itemsize * (kinds[k].ncols ? kinds[k].ncols : 1);
        size_t need = (size_t)a.shape[0] * row;
        ASSERT(need / row == a.shape[0]);
        ASSERT(a.data + need <= (const uint8_t *)a.map + a.map_len);
        if (need) {
            volatile uint8_t last = a.data[need - 1];
            (void)last;
        }
    }
    dp_npy_close(&a);
    return 0;
}
