/* dump_flows: the flow models' feature rows of a split or dataset folder as
 * .npy files, for experiments outside deeppacket (tools/gbt_study.py).
 *
 *   build/dump_flows DIR TASK OUT_PREFIX [N K MASK]
 *
 * writes OUT_PREFIX.x.npy float32 [F, N*F'] (the rows `train --model gbt`
 * sees), OUT_PREFIX.y.npy int16 [F] (labels), OUT_PREFIX.t.npy float64 [F]
 * (first packet time), OUT_PREFIX.id.npy uint64 [F] (flow ids) and
 * OUT_PREFIX.file.npy uint32 [F] (capture file of the first packet) and
 * OUT_PREFIX.raw.npy uint8 [F, N*1500] (the unmasked vectors), flows in
 * dp_flowset order. TASK is traffic or app; MASK a --mask list (default). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dp_dataset.h"
#include "dataset/dp_npy.h"
#include "flow/dp_flowset.h"
#include "packet/dp_mask.h"

static int save(const char *prefix, const char *what, const char *descr, size_t isz, const void *p, size_t n,
                size_t cols, char *eb)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%s.npy", prefix, what);
    return dp_npy_save(path, descr, isz, cols, p, n, eb);
}

int main(int argc, char **argv)
{
    char eb[512];
    if (argc < 4) {
        fprintf(stderr, "usage: dump_flows DIR traffic|app OUT_PREFIX [N K MASK]\n");
        return 2;
    }
    int task = strcmp(argv[2], "app") == 0 ? DP_TASK_APP : DP_TASK_TRAFFIC;
    dp_flowcfg cfg;
    dp_flowcfg_default(&cfg);
    if (argc > 4) cfg.npackets = atoi(argv[4]);
    if (argc > 5) cfg.payload_bytes = atoi(argv[5]);
    if (argc > 6 && dp_mask_parse(argv[6], &cfg.mask, eb) < 0) {
        fprintf(stderr, "%s\n", eb);
        return 2;
    }
    dp_splitset ss;
    dp_flowset fs;
    if (dp_splitset_open_task(&ss, argv[1], task, eb) != 0 || dp_flowset_build(&fs, &ss, argv[1], &cfg, eb) != 0) {
        fprintf(stderr, "%s\n", eb);
        return 1;
    }
    float *x = dp_flowset_matrix(&fs, eb);
    int16_t *y = malloc(fs.nflows * sizeof *y);
    double *t = malloc(fs.nflows * sizeof *t);
    uint64_t *id = malloc(fs.nflows * sizeof *id);
    uint32_t *file = malloc(fs.nflows * sizeof *file);
    if (!x || !y || !t || !id || !file) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (uint64_t i = 0; i < fs.nflows; i++)
        y[i] = fs.flows[i].label, t[i] = fs.flows[i].first_time, id[i] = fs.flows[i].id,
        file[i] = dp_splitset_meta(&ss, fs.rows[fs.flows[i].first]).file;
    size_t L = (size_t)dp_flowcfg_row_len(&cfg);
    if (save(argv[3], "x", "'<f4'", 4, x, fs.nflows, L, eb) || save(argv[3], "y", "'<i2'", 2, y, fs.nflows, 0, eb) ||
        save(argv[3], "t", "'<f8'", 8, t, fs.nflows, 0, eb) || save(argv[3], "id", "'<u8'", 8, id, fs.nflows, 0, eb) ||
        save(argv[3], "file", "'<u4'", 4, file, fs.nflows, 0, eb)) {
        fprintf(stderr, "%s\n", eb);
        return 1;
    }
    uint8_t *raw = calloc(fs.nflows * (size_t)cfg.npackets, DP_VEC_LEN);
    if (!raw) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (uint64_t i = 0; i < fs.nflows; i++)
        for (int j = 0; j < fs.flows[i].nrows; j++)
            memcpy(raw + (i * (size_t)cfg.npackets + (size_t)j) * DP_VEC_LEN,
                   dp_splitset_vector(&ss, fs.rows[fs.flows[i].first + (uint64_t)j]), DP_VEC_LEN);
    if (save(argv[3], "raw", "'|u1'", 1, raw, fs.nflows, (size_t)cfg.npackets * DP_VEC_LEN, eb)) {
        fprintf(stderr, "%s\n", eb);
        return 1;
    }
    printf("%llu flows, %zu features, %d classes\n", (unsigned long long)fs.nflows, L, ss.nclasses);
    return 0;
}
