/* onnx_io: the deeppacket side of the ONNX end-to-end test (tests/onnx/run.sh).
 *
 *   onnx_io create KIND SEED OUT.dpm [mask]  a model with seeded initial weights:
 *           KIND cnn | cnn-app | sae | flow | flow-noconv | flow-mlp | sae-flow
 *           (an SAE over flow rows); "mask": with the default field mask
 *   onnx_io classes MODEL                 its class names as a JSON array
 *   onnx_io is-flow MODEL                 exit 0 when it reads flow rows
 *   onnx_io random MODEL N SEED OUTDIR    N synthetic inputs of the model
 *   onnx_io dataset MODEL DIR OUTDIR      the inputs of a test set (packets, or
 *                                         the flow rows dp_flowset builds)
 *   onnx_io predict MODEL INPUT.npy OUTDIR   the given packet vectors (uint8
 *                                         [N, 1500]; tests/import_torch/run.sh)
 *   onnx_io mask-graph MASK OUT.onnx      a graph that only applies the field
 *                                         mask (dp_onnx_mask_stage), uint8 out
 *   onnx_io mask-apply MASK INPUT.npy OUTDIR   OUTDIR/expected.npy: the vectors
 *                                         masked by dp_mask_apply
 * random and dataset write OUTDIR/input.npy (uint8 [N, 1500] for packet
 * models, float32 [N, in_len] for flow models) and OUTDIR/expected.npy, the
 * model's own log-probabilities float32 [N, classes] (dp_model_predict or
 * dp_model_predict_flows, as test and classify use them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/dp_dataset.h"
#include "dataset/dp_npy.h"
#include "flow/dp_flowset.h"
#include "model/dp_model.h"
#include "model/dp_onnx.h"
#include "packet/dp_mask.h"
#include "util/dp_util.h"

static int create(const char *kind, uint64_t seed, const char *out, int masked, char *err)
{
    dp_arch a;
    char *names[] = {"Chat", "Email", "File \"Transfer\"", "Streaming", "VPN: Chat"};
    int flow = !strncmp(kind, "flow", 4) || !strcmp(kind, "sae-flow"), task = strcmp(kind, "cnn-app") ? DP_TASK_TRAFFIC : DP_TASK_APP;
    dp_flowcfg cfg;
    dp_flowcfg_default(&cfg);
    cfg.payload_bytes = 16;
    if (flow)
        dp_arch_flow(&a, task, 5, cfg.npackets, dp_flowcfg_features(&cfg));
    else
        dp_arch_default(&a, !strcmp(kind, "sae") ? DP_MODEL_SAE : DP_MODEL_CNN, task, 5);
    if (!strcmp(kind, "sae-flow")) {
        dp_arch_default(&a, DP_MODEL_SAE, task, 5);
        a.in_len = dp_flowcfg_row_len(&cfg);
    }
    if (!strcmp(kind, "flow-noconv"))
        a.ext[4] = a.ext[5] = 0;
    if (!strcmp(kind, "flow-mlp"))
        a.ext[2] = a.ext[3] = a.ext[4] = a.ext[5] = 0;
    dp_model *m = dp_model_create(&a, task, names, seed, err);
    int rc = m && flow ? dp_model_set_flowcfg(m, &cfg, err) : m ? 0 : -1;
    if (rc == 0 && masked && !flow)
        dp_model_set_mask(m, DP_MASK_DEFAULT);
    if (rc == 0)
        rc = dp_model_save(m, out, err);
    dp_model_free(m);
    return rc;
}

/* Writes input.npy and expected.npy from n inputs (bytes or floats). */
static int predict_save(dp_model *m, const uint8_t *x, const float *xf, int n, const char *outdir, char *err)
{
    int C = dp_model_nclasses(m), L = dp_model_arch(m)->in_len;
    float *lp = malloc((size_t)n * C * sizeof *lp);
    char p[4096];
    int rc = lp ? 0 : dp_err(err, "out of memory");
    if (rc == 0)
        rc = xf ? dp_model_predict_flows(m, xf, n, lp, err) : dp_model_predict(m, x, n, lp, err);
    snprintf(p, sizeof p, "%s/input.npy", outdir);
    if (rc == 0)
        rc = xf ? dp_npy_save(p, DP_NPY_F4, 4, (size_t)L, xf, (uint64_t)n, err)
                : dp_npy_save(p, DP_NPY_U1, 1, (size_t)L, x, (uint64_t)n, err);
    snprintf(p, sizeof p, "%s/expected.npy", outdir);
    if (rc == 0)
        rc = dp_npy_save(p, DP_NPY_F4, 4, (size_t)C, lp, (uint64_t)n, err);
    free(lp);
    return rc;
}

/* IPv6 extension header of type t at off (its next-header byte is set by
 * the next call): hop-by-hop 8 bytes, AH 12, a fragment 8 (a non-first one
 * when nonfirst). Returns its length. */
static int ext_header(uint8_t *v, int off, int t, int nonfirst)
{
    if (t == 51) {
        v[off + 1] = 1; /* (1 + 2) * 4 */
        return 12;
    }
    if (t == 44) {
        v[off + 2] = 0, v[off + 3] = nonfirst ? 8 : 0; /* fragment offset */
        return 8;
    }
    v[off + 1] = 0; /* (0 + 1) * 8 */
    return 8;
}

/* Headers over a random vector v (at least 120 bytes long), by kind:
 * every path of dp_mask.c's walk (IPv4 with options, a non-first IPv4
 * fragment, IPv6 with 1..3 extension headers among hop-by-hop, AH and a
 * fragment, TCP options with one or two timestamps or a bad length, UDP). */
static void craft(uint8_t *v, int kind, dp_rng *r)
{
    int off, nh; /* the transport header's offset, the byte naming it */
    if (kind % 2 == 0) {
        int ihl = kind % 4 == 0 ? 5 : 5 + (int)dp_rng_below(r, 3);
        v[0] = (uint8_t)(0x40 | ihl), off = ihl * 4, nh = 9;
        v[6] = kind == 6 ? 0x20 : 0x40, v[7] = kind == 6 ? 0x10 : 0; /* kind 6: non-first fragment */
    } else {
        static const int types[3] = {0, 51, 44};
        v[0] = (uint8_t)(0x60 | (v[0] & 15)), off = 40, nh = 6;
        for (int e = 0; e < 3 && e <= (kind % 8) / 2; e++) {
            int t = types[(kind + e) % 3];
            v[nh] = (uint8_t)t;
            nh = off;
            off += ext_header(v, off, t, kind % 3 == 0);
        }
    }
    v[nh] = kind % 5 == 0 ? 17 : 6;
    if (v[nh] == 6) { /* TCP: data offset 8..15 words, options NOP NOP TS */
        static const uint8_t opts[12] = {1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8};
        v[off + 12] = (uint8_t)((8 + dp_rng_below(r, 8)) << 4);
        memcpy(v + off + 20, opts, sizeof opts);
        if (kind % 7 == 3)
            v[off + 23] = 11; /* a bad length */
        if (kind % 4 == 1)
            v[off + 32] = 8, v[off + 33] = 10; /* a second timestamp */
    }
}

/* Synthetic inputs: crafted or random packet vectors with trailing zeros
 * for packet models; flow rows whose later packets are absent at random for
 * flow models. */
static int random_inputs(dp_model *m, int n, uint64_t seed, const char *outdir, char *err)
{
    int L = dp_model_arch(m)->in_len, flow = dp_model_input(m) == DP_INPUT_FLOW;
    const dp_flowcfg *fc = dp_model_flowcfg(m);
    int F = fc ? dp_flowcfg_features(fc) : L;
    dp_rng r;
    dp_rng_seed(&r, seed);
    uint8_t *x = malloc((size_t)n * L);
    float *xf = malloc((size_t)n * L * sizeof *xf);
    if (!x || !xf) {
        free(x), free(xf);
        return dp_err(err, "out of memory");
    }
    for (size_t i = 0; i < (size_t)n * L; i++) {
        x[i] = (uint8_t)(dp_rng_u64(&r) >> 56);
        xf[i] = (float)dp_rng_float(&r);
    }
    for (int i = 0; i < n; i++) {
        int len = 20 + (int)dp_rng_below(&r, DP_VEC_LEN - 20), present = 1 + (int)dp_rng_below(&r, (uint64_t)(L / F));
        x[(size_t)i * L] = 0x45;
        if (!flow && i % 4 != 3)
            craft(x + (size_t)i * L, i, &r);
        if (len < 120)
            len = 120;
        memset(x + (size_t)i * L + len, 0, (size_t)(L - len) * !flow);
        for (int t = 0; flow && t < L / F; t++) {
            float *blk = xf + (size_t)i * L + (size_t)t * F;
            if (t < present)
                blk[0] = 1.0f;
            else
                memset(blk, 0, (size_t)F * sizeof *blk);
        }
    }
    int rc = predict_save(m, flow ? NULL : x, flow ? xf : NULL, n, outdir, err);
    free(x), free(xf);
    return rc;
}

static int dataset_inputs(dp_model *m, const char *dir, const char *outdir, char *err)
{
    dp_splitset s;
    const dp_flowcfg *fc = dp_model_flowcfg(m);
    if (dp_splitset_open_task(&s, dir, dp_model_task(m), err) != 0)
        return -1;
    int rc = 0;
    if (fc) {
        dp_flowset fs;
        if ((rc = dp_flowset_build(&fs, &s, dir, fc, err)) == 0) {
            float *xf = dp_flowset_matrix(&fs, err);
            rc = xf ? predict_save(m, NULL, xf, (int)fs.nflows, outdir, err) : -1;
            free(xf);
            dp_flowset_free(&fs);
        }
    } else {
        uint8_t *x = malloc(s.n * DP_VEC_LEN + 1);
        rc = x ? 0 : dp_err(err, "out of memory");
        for (uint64_t i = 0; x && i < s.n; i++)
            memcpy(x + i * DP_VEC_LEN, dp_splitset_vector(&s, i), DP_VEC_LEN);
        if (rc == 0)
            rc = predict_save(m, x, NULL, (int)s.n, outdir, err);
        free(x);
    }
    dp_splitset_close(&s);
    return rc;
}

/* A graph that only masks: packets uint8 [N, 1500] -> logprobs, the masked
 * vectors as uint8 (named so for compare.js). */
static int mask_graph(uint32_t mask, const char *out, char *err)
{
    dp_onnx_graph *G = calloc(1, sizeof *G);
    if (!G)
        return dp_err(err, "out of memory");
    int64_t dims[2] = {-1, DP_VEC_LEN};
    dp_onnx_io(G, 0, "packets", DP_ONNX_UINT8, dims, 2);
    const char *y = dp_onnx_mask_stage(G, "packets", mask);
    dp_pb at = {0}, pb = {0};
    dp_onnx_attr_int(&at, "to", DP_ONNX_UINT8);
    dp_onnx_node(G, "Cast", "", &y, 1, &(const char *){"logprobs"}, 1, &at);
    dp_onnx_io(G, 1, "logprobs", DP_ONNX_UINT8, dims, 2);
    int rc = dp_onnx_model(&pb, G, "mask", NULL, 0, err);
    if (rc == 0)
        rc = dp_write_file_atomic(out, pb.buf, pb.len, err);
    dp_pb_free(&pb);
    free(G);
    return rc;
}

/* OUTDIR/expected.npy: the vectors of INPUT.npy masked by dp_mask_apply. */
static int mask_apply(uint32_t mask, const char *path, const char *outdir, char *err)
{
    dp_npy a;
    char p[4096];
    if (dp_npy_open(&a, path, err) != 0)
        return -1;
    size_t n = (size_t)a.shape[0] * DP_VEC_LEN;
    uint8_t *x = malloc(n ? n : 1);
    int rc = x ? 0 : dp_err(err, "out of memory");
    if (x) {
        memcpy(x, a.data, n);
        for (size_t i = 0; i < a.shape[0]; i++)
            dp_mask_apply(mask, x + i * DP_VEC_LEN);
        snprintf(p, sizeof p, "%s/expected.npy", outdir);
        rc = dp_npy_save(p, DP_NPY_U1, 1, DP_VEC_LEN, x, a.shape[0], err);
    }
    free(x);
    dp_npy_close(&a);
    return rc;
}

/* The packet vectors of a .npy file (uint8 [N, 1500]). */
static int npy_inputs(dp_model *m, const char *path, const char *outdir, char *err)
{
    dp_npy a;
    if (dp_npy_open(&a, path, err) != 0)
        return -1;
    int rc = 0;
    if (strcmp(a.descr, DP_NPY_U1) != 0 || a.ndim != 2 || a.shape[1] != DP_VEC_LEN || a.shape[0] < 1)
        rc = dp_err(err, "%s: not a uint8 [N, %d] array", path, DP_VEC_LEN);
    if (rc == 0)
        rc = predict_save(m, a.data, NULL, (int)a.shape[0], outdir, err);
    dp_npy_close(&a);
    return rc;
}

int main(int argc, char **argv)
{
    char err[DP_ERRBUF_SIZE] = "";
    int rc = -1;
    if ((argc == 5 || argc == 6) && !strcmp(argv[1], "create")) {
        rc = create(argv[2], strtoull(argv[3], NULL, 10), argv[4], argc == 6 && !strcmp(argv[5], "mask"), err);
    } else if (argc == 3 && (!strcmp(argv[1], "classes") || !strcmp(argv[1], "is-flow"))) {
        dp_model *m = dp_model_load(argv[2], err);
        if (m && !strcmp(argv[1], "is-flow")) {
            int flow = dp_model_input(m) == DP_INPUT_FLOW;
            dp_model_free(m);
            return flow ? 0 : 1;
        }
        for (int c = 0; m && c < dp_model_nclasses(m); c++) {
            fputs(c ? ", " : "[", stdout);
            dp_json_str(stdout, dp_model_class_name(m, c));
        }
        if (m)
            puts("]");
        rc = m ? 0 : -1;
        dp_model_free(m);
    } else if ((argc == 4 || argc == 5) && !strncmp(argv[1], "mask-", 5)) {
        uint32_t mask = 0;
        if (dp_mask_parse(argv[2], &mask, err) == 0)
            rc = argc == 4 && !strcmp(argv[1], "mask-graph") ? mask_graph(mask, argv[3], err)
                 : argc == 5 && !strcmp(argv[1], "mask-apply") ? mask_apply(mask, argv[3], argv[4], err)
                                                                : dp_err(err, "bad arguments");
    } else if (argc == 5 && !strcmp(argv[1], "predict")) {
        dp_model *m = dp_model_load(argv[2], err);
        rc = m ? npy_inputs(m, argv[3], argv[4], err) : -1;
        dp_model_free(m);
    } else if (argc >= 5 && (!strcmp(argv[1], "random") || !strcmp(argv[1], "dataset"))) {
        dp_model *m = dp_model_load(argv[2], err);
        if (m && argc == 6 && !strcmp(argv[1], "random"))
            rc = random_inputs(m, atoi(argv[3]), strtoull(argv[4], NULL, 10), argv[5], err);
        else if (m && argc == 5)
            rc = dataset_inputs(m, argv[3], argv[4], err);
        dp_model_free(m);
    } else {
        fprintf(stderr, "usage: onnx_io create KIND SEED OUT | random MODEL N SEED OUTDIR | dataset MODEL DIR OUTDIR\n");
        return 2;
    }
    if (rc != 0)
        fprintf(stderr, "onnx_io: %s\n", err);
    return rc == 0 ? 0 : 1;
}
