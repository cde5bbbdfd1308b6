/* Tests for the public API added for the Python package (include/
 * deeppacket.h, issue 14): version, model information, predictions on
 * arrays against the model's own inference, the capture reader against the
 * `classify` command's JSON lines (same bytes), the dataset view against
 * the folder it reads, the precision as each handle's own (two in one
 * process, at once too; deeppacket_set_precision), and every refusal with
 * its message. */
#include "dp_test.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset/dp_dataset.h"
#include "deeppacket.h"
#include "model/dp_model.h"
#include "nn/dp_nn.h"
#include "packet/dp_mask.h"

#define CAPTURE "data/corpus/chat_03.pcap"
#define NCLS 5

/* Small models with seeded random weights, saved and loaded back through
 * the model file: an SAE with the default field mask, the traffic CNN, and
 * a flow NN over 4 packets of 16 payload bytes. */
static const char *save_model(const char *name, int kind)
{
    static char paths[3][600];
    char *path = paths[kind == DP_MODEL_CNN ? 0 : kind == DP_MODEL_SAE ? 1 : 2];
    if (path[0])
        return path;
    char eb[DP_ERRBUF_SIZE];
    char *names[NCLS] = {"Chat", "Email", "File Transfer", "Streaming", "Voip"};
    dp_flowcfg fc;
    dp_flowcfg_default(&fc);
    fc.npackets = 4;
    fc.payload_bytes = 16;
    dp_arch a;
    if (kind == DP_MODEL_FLOW)
        dp_arch_flow(&a, DP_TASK_TRAFFIC, NCLS, fc.npackets, dp_flowcfg_features(&fc));
    else
        dp_arch_default(&a, kind, DP_TASK_TRAFFIC, NCLS);
    if (kind == DP_MODEL_SAE) {
        a.nhidden = 2;
        a.hidden[0] = 32;
        a.hidden[1] = 16;
    }
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, names, 4321, eb);
    if (m && kind == DP_MODEL_SAE)
        dp_model_set_mask(m, DP_MASK_DEFAULT);
    snprintf(path, 600, "%s/%s", dp_test_tmpdir(), name);
    if (!m || (kind == DP_MODEL_FLOW && dp_model_set_flowcfg(m, &fc, eb) < 0) || dp_model_save(m, path, eb) < 0) {
        fprintf(stderr, "  cannot make %s: %s\n", name, eb);
        path[0] = 0;
    }
    dp_model_free(m);
    return path;
}
#define SAE_FIXTURE save_model("sae.model", DP_MODEL_SAE)
#define CNN_FIXTURE save_model("cnn.model", DP_MODEL_CNN)
#define FLOW_FIXTURE save_model("flow.model", DP_MODEL_FLOW)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

static void test_version(void)
{
    char want[64], out[256];
    snprintf(want, sizeof want, "%d.%d.%d", DEEPPACKET_VERSION_MAJOR, DEEPPACKET_VERSION_MINOR,
             DEEPPACKET_VERSION_PATCH);
    CHECK(!strcmp(DEEPPACKET_VERSION_STRING, want));
    CHECK(!strcmp(deeppacket_version(), want));
    const char *cli = dp_test_cli();
    if (!cli)
        SKIP("no %s: the program's --version not compared", "build/deeppacket");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s --version", cli);
    CHECK_EQ_INT(dp_test_sh(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "deeppacket %s\n", want);
    CHECK(!strcmp(out, cmd));
}

/* The handle's information equals the model file's, for a packet and a
 * flow model. */
static void test_model_info(void)
{
    const char *paths[] = {SAE_FIXTURE, CNN_FIXTURE, FLOW_FIXTURE};
    for (int i = 0; i < 3; i++) {
        char eb[DEEPPACKET_ERRBUF_SIZE], name[64];
        deeppacket *dp = deeppacket_open(paths[i], eb);
        dp_model *m = dp_model_load(paths[i], eb);
        CHECK(dp && m);
        if (!dp || !m) {
            deeppacket_close(dp);
            dp_model_free(m);
            continue;
        }
        CHECK(!strcmp(deeppacket_model_kind(dp), dp_model_kind_name(m)));
        CHECK(!strcmp(deeppacket_task(dp), dp_task_name[dp_model_task(m)]));
        CHECK(!strcmp(deeppacket_mask(dp), dp_mask_name(dp_model_mask(m), name, sizeof name)));
        const dp_flowcfg *fc = dp_model_flowcfg(m);
        CHECK_EQ_INT(deeppacket_flow_row_len(dp), fc ? dp_flowcfg_row_len(fc) : 0);
        CHECK_EQ_INT(deeppacket_wants_flows(dp), fc != NULL);
        deeppacket_close(dp);
        dp_model_free(m);
    }
    char eb[DEEPPACKET_ERRBUF_SIZE];
    deeppacket *dp = deeppacket_open(SAE_FIXTURE, eb);
    CHECK(dp && !strcmp(deeppacket_model_kind(dp), "sae") && !strcmp(deeppacket_task(dp), "traffic"));
    CHECK(dp && !strcmp(deeppacket_mask(dp), "ports,ipid,ttl,checksum,seq,tcpts"));
    deeppacket_close(dp);
    dp = deeppacket_open(FLOW_FIXTURE, eb);
    CHECK(dp && !strcmp(deeppacket_model_kind(dp), "flow") && deeppacket_flow_row_len(dp) > 0);
    deeppacket_close(dp);
}

/* deeppacket_predict on n vectors (more than one model chunk) equals
 * dp_model_predict row by row. */
static void check_predict(const char *path, size_t n)
{
    char eb[DEEPPACKET_ERRBUF_SIZE];
    deeppacket *dp = deeppacket_open(path, eb);
    dp_model *m = dp_model_load(path, eb);
    int C = dp ? deeppacket_nclasses(dp) : 0;
    uint8_t *x = malloc(n * DEEPPACKET_VECTOR_LEN);
    float *a = malloc(n * (size_t)C * sizeof *a), *b = malloc((size_t)C * sizeof *b);
    CHECK(dp && m && x && a && b);
    if (dp && m && x && a && b) {
        for (size_t i = 0; i < n * DEEPPACKET_VECTOR_LEN; i++)
            x[i] = (i % DEEPPACKET_VECTOR_LEN) < 200 ? (uint8_t)rnd() : 0;
        CHECK_EQ_INT(deeppacket_predict(dp, x, n, a, eb), 0);
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            CHECK_EQ_INT(dp_model_predict(m, x + i * DEEPPACKET_VECTOR_LEN, 1, b, eb), 0);
            for (int k = 0; k < C; k++)
                worst = fmax(worst, fabs(a[i * C + k] - b[k]));
        }
        CHECK_NEAR(worst, 0, 1e-5);
        CHECK_EQ_INT(deeppacket_predict(dp, NULL, 0, NULL, eb), 0);
        CHECK_EQ_INT(deeppacket_predict(dp, NULL, 3, a, eb), -1);
        CHECK_STR_CONTAINS(eb, "3 rows without vectors");
        CHECK_EQ_INT(deeppacket_predict_flows(dp, (const float *)x, 1, a, eb), -1);
        CHECK_STR_CONTAINS(eb, "reads packet vectors, not flow rows");
    }
    free(x);
    free(a);
    free(b);
    dp_model_free(m);
    deeppacket_close(dp);
}

static void test_predict(void)
{
    check_predict(SAE_FIXTURE, 150);
    check_predict(CNN_FIXTURE, 70);
}

/* A thread's rounds of deeppacket_predict with its own handle
 * (test_open_while_predicting). */
typedef struct predictor {
    deeppacket *dp;
    const uint8_t *x;
    size_t n;
    float *out;
    int rounds, rc;
} predictor;

static void *predict_rounds(void *arg)
{
    predictor *p = arg;
    char eb[DEEPPACKET_ERRBUF_SIZE];
    for (int r = 0; r < p->rounds && p->rc == 0; r++)
        p->rc = deeppacket_predict(p->dp, p->x, p->n, p->out, eb);
    return NULL;
}

/* Handles opened in one thread while another predicts with its own: the
 * predictions are those of the thread alone. deeppacket_open reads
 * DEEPPACKET_PRECISION for its own handle (it once set a process-wide
 * precision that every GEMM read: under `make tsan` this was also the
 * check that the setting was not a data race). */
static void test_open_while_predicting(void)
{
    char eb[DEEPPACKET_ERRBUF_SIZE];
    deeppacket *dp = deeppacket_open(CNN_FIXTURE, eb);
    CHECK(dp != NULL);
    if (!dp)
        return;
    size_t n = 4, C = (size_t)deeppacket_nclasses(dp);
    uint8_t *x = calloc(n, DEEPPACKET_VECTOR_LEN);
    float *alone = malloc(n * C * sizeof *alone), *got = malloc(n * C * sizeof *got);
    CHECK(x && alone && got);
    if (x && alone && got) {
        for (size_t i = 0; i < n * DEEPPACKET_VECTOR_LEN; i++)
            x[i] = (i % DEEPPACKET_VECTOR_LEN) < 200 ? (uint8_t)rnd() : 0;
        CHECK_EQ_INT(deeppacket_predict(dp, x, n, alone, eb), 0);
        predictor p = {dp, x, n, got, 10, 0};
        pthread_t th;
        CHECK(pthread_create(&th, NULL, predict_rounds, &p) == 0);
        for (int i = 0; i < 10; i++) {
            deeppacket *other = deeppacket_open(SAE_FIXTURE, eb);
            CHECK(other != NULL);
            deeppacket_close(other);
        }
        pthread_join(th, NULL);
        CHECK_EQ_INT(p.rc, 0);
        CHECK(memcmp(got, alone, n * C * sizeof *got) == 0);
    }
    free(x);
    free(alone);
    free(got);
    deeppacket_close(dp);
}

/* ---- precision per handle -------------------------------------------------- */

/* Opens path as a program would with DEEPPACKET_PRECISION=word in its
 * environment (NULL: unset). */
static deeppacket *open_with(const char *path, const char *word, char *eb)
{
    if (word)
        setenv("DEEPPACKET_PRECISION", word, 1);
    deeppacket *dp = deeppacket_open(path, eb);
    unsetenv("DEEPPACKET_PRECISION");
    if (!dp)
        fprintf(stderr, "  %s (%s): %s\n", path, word ? word : "unset", eb);
    return dp;
}

/* n inputs for dp's model: packet vectors of different lengths, or flow
 * rows; NULL when out of memory. */
static void *model_inputs(const deeppacket *dp, size_t n)
{
    size_t L = (size_t)deeppacket_flow_row_len(dp);
    if (L) {
        float *x = malloc(n * L * sizeof *x);
        for (size_t i = 0; x && i < n * L; i++)
            x[i] = (float)(rnd() % 1000) / 1000.0f;
        return x;
    }
    uint8_t *x = calloc(n, DEEPPACKET_VECTOR_LEN);
    for (size_t i = 0; x && i < n; i++)
        for (size_t k = 0; k < 60 + 90 * (i % 16); k++)
            x[i * DEEPPACKET_VECTOR_LEN + k] = (uint8_t)rnd();
    return x;
}

/* deeppacket_predict or _predict_flows, as dp's model reads. */
static int predict_any(deeppacket *dp, const void *x, size_t n, float *out, char *eb)
{
    return deeppacket_wants_flows(dp) ? deeppacket_predict_flows(dp, x, n, out, eb)
                                      : deeppacket_predict(dp, x, n, out, eb);
}

/* dp's outputs on x are exactly want's n*C floats. */
static int predicts(deeppacket *dp, const void *x, size_t n, const float *want, char *eb)
{
    size_t bytes = n * (size_t)deeppacket_nclasses(dp) * sizeof(float);
    float *got = malloc(bytes);
    int same = got && predict_any(dp, x, n, got, eb) == 0 && memcmp(got, want, bytes) == 0;
    free(got);
    return same;
}

/* An fp32 handle f of a model and its outputs ref on n inputs x, computed
 * with no other handle open; then (when asked) a bf16 handle b of the same
 * model and its outputs b16. */
typedef struct prec_pair {
    deeppacket *f, *b;
    void *x;
    size_t n, C;
    float *ref, *b16;
} prec_pair;

/* Opens p for path (b too when bf16); 0, or -1 after a failed CHECK (what
 * opened is for pair_close). */
static int pair_open(prec_pair *p, const char *path, size_t n, int bf16)
{
    char eb[DEEPPACKET_ERRBUF_SIZE];
    memset(p, 0, sizeof *p);
    p->n = n;
    p->f = open_with(path, NULL, eb);
    p->C = p->f ? (size_t)deeppacket_nclasses(p->f) : 0;
    p->x = p->f ? model_inputs(p->f, n) : NULL;
    p->ref = malloc(n * p->C * sizeof(float));
    p->b16 = malloc(n * p->C * sizeof(float));
    int ok = p->f && p->x && p->ref && p->b16 && predict_any(p->f, p->x, n, p->ref, eb) == 0;
    if (ok && bf16)
        ok = (p->b = open_with(path, "bf16", eb)) != NULL && predict_any(p->b, p->x, n, p->b16, eb) == 0;
    CHECK(ok);
    return ok ? 0 : -1;
}

static void pair_close(prec_pair *p)
{
    free(p->x), free(p->ref), free(p->b16);
    deeppacket_close(p->f), deeppacket_close(p->b);
}

/* An fp32 and a bf16 handle of path in one process: the fp32 handle's
 * outputs are those it gave before the bf16 one was opened, bit for bit;
 * the bf16 handle's differ from them within bf16's rounding, and stay its
 * own when an fp32 handle is opened after it. (One process-wide precision,
 * set by each open, failed all three.) */
static void check_two_precisions(const char *path)
{
    char eb[DEEPPACKET_ERRBUF_SIZE];
    prec_pair p;
    if (pair_open(&p, path, 48, 1) == 0) { /* 48 rows: the CNN splits them over the threads */
        CHECK(predicts(p.f, p.x, p.n, p.ref, eb));
        double e = dp_test_max_abs_diff(p.b16, p.ref, p.n * p.C);
        if (!(e > 0 && e < 0.05))
            fprintf(stderr, "  %s: bf16 against fp32: max |log-prob difference| %.3g\n", path, e);
        CHECK(e > 0 && e < 0.05);
        deeppacket *f2 = open_with(path, "fp32", eb);
        CHECK(f2 != NULL);
        CHECK(predicts(p.b, p.x, p.n, p.b16, eb));
        CHECK(f2 && predicts(f2, p.x, p.n, p.ref, eb));
        CHECK(predicts(p.f, p.x, p.n, p.ref, eb));
        deeppacket_close(f2);
    }
    pair_close(&p);
}

/* check_two_precisions for the CNN (its inference threads), the SAE and
 * the flow NN (the fully connected layers' GEMMs split over threads), with
 * three threads so that the pool's workers take part. */
static void test_precision_per_handle(void)
{
    if (!dp_nn_bf16_available())
        SKIP("bf16 unavailable here: no AVX512_BF16 or no oneDNN");
    dp_nn_set_threads(3);
    check_two_precisions(CNN_FIXTURE);
    check_two_precisions(SAE_FIXTURE);
    check_two_precisions(FLOW_FIXTURE);
    dp_nn_set_threads(0);
}

/* A thread's rounds on its handle, each compared with want bit for bit. */
typedef struct prec_rounds {
    deeppacket *dp;
    const void *x;
    size_t n;
    const float *want;
    int rounds, same;
} prec_rounds;

static void *run_prec_rounds(void *arg)
{
    prec_rounds *p = arg;
    char eb[DEEPPACKET_ERRBUF_SIZE];
    p->same = 1;
    for (int r = 0; r < p->rounds; r++)
        p->same &= predicts(p->dp, p->x, p->n, p->want, eb);
    return NULL;
}

/* An fp32 and a bf16 handle of the CNN predicting at the same time from two
 * threads (one gets the thread pool, the other one-off threads): each gives,
 * every round, the bits it gave alone, the fp32 one those of before the
 * bf16 handle existed. */
static void test_precision_concurrent(void)
{
    if (!dp_nn_bf16_available())
        SKIP("bf16 unavailable here: no AVX512_BF16 or no oneDNN");
    dp_nn_set_threads(3);
    prec_pair p;
    if (pair_open(&p, CNN_FIXTURE, 16, 1) == 0) {
        CHECK(memcmp(p.ref, p.b16, p.n * p.C * sizeof(float)) != 0);
        prec_rounds pf = {p.f, p.x, p.n, p.ref, 8, 0}, pb = {p.b, p.x, p.n, p.b16, 8, 0};
        pthread_t th;
        CHECK(pthread_create(&th, NULL, run_prec_rounds, &pb) == 0);
        run_prec_rounds(&pf);
        pthread_join(th, NULL);
        CHECK(pf.same);
        CHECK(pb.same);
    }
    pair_close(&p);
    dp_nn_set_threads(0);
}

/* deeppacket_set_precision: refusals with their message, the precision
 * unchanged; then, where bf16 runs, a handle switched to bf16 gives the
 * bits of one opened in bf16, and back in fp32 those of fp32, while the
 * other handle keeps its own. */
static void test_set_precision(void)
{
    char eb[DEEPPACKET_ERRBUF_SIZE];
    prec_pair p;
    int bf16 = dp_nn_bf16_available();
    if (pair_open(&p, CNN_FIXTURE, 20, bf16) == 0) {
        deeppacket *dp = p.f;
        CHECK_EQ_INT(deeppacket_set_precision(NULL, "fp32", eb), -1);
        CHECK_STR_CONTAINS(eb, "deeppacket_set_precision: no model handle");
        CHECK_EQ_INT(deeppacket_set_precision(dp, NULL, eb), -1);
        CHECK_STR_CONTAINS(eb, "deeppacket_set_precision: no precision");
        CHECK_EQ_INT(deeppacket_set_precision(dp, "fp16", eb), -1);
        CHECK_STR_CONTAINS(eb, "'fp16': expected fp32, bf16 or auto");
        setenv("DEEPPACKET_CPU_NO_BF16", "1", 1);
        CHECK_EQ_INT(deeppacket_set_precision(dp, "bf16", eb), -1);
        CHECK_STR_CONTAINS(eb, "AVX512_BF16");
        CHECK_EQ_INT(deeppacket_set_precision(dp, "auto", eb), 0); /* fp32 on such a CPU */
        unsetenv("DEEPPACKET_CPU_NO_BF16");
        CHECK(strcmp(deeppacket_precision(dp), "fp32") == 0);
        CHECK(strcmp(deeppacket_precision(NULL), "") == 0);
        CHECK(predicts(dp, p.x, p.n, p.ref, eb));
        if (bf16) {
            CHECK_EQ_INT(deeppacket_set_precision(dp, "bf16", eb), 0);
            CHECK(strcmp(deeppacket_precision(dp), "bf16") == 0);
            CHECK(predicts(dp, p.x, p.n, p.b16, eb));
            CHECK_EQ_INT(deeppacket_set_precision(p.b, "fp32", eb), 0);
            CHECK(predicts(p.b, p.x, p.n, p.ref, eb));
            CHECK(predicts(dp, p.x, p.n, p.b16, eb));
            CHECK_EQ_INT(deeppacket_set_precision(dp, "fp32", eb), 0);
            CHECK(predicts(dp, p.x, p.n, p.ref, eb));
            CHECK_EQ_INT(deeppacket_set_precision(dp, "auto", eb), 0);
            CHECK(predicts(dp, p.x, p.n, p.b16, eb));
        }
    }
    pair_close(&p);
    if (!bf16)
        SKIP("bf16 unavailable here: its part not run");
}

/* deeppacket_predict_flows equals dp_model_predict_flows; a flow model
 * refuses packet vectors. */
static void test_predict_flows(void)
{
    char eb[DEEPPACKET_ERRBUF_SIZE];
    deeppacket *dp = deeppacket_open(FLOW_FIXTURE, eb);
    dp_model *m = dp_model_load(FLOW_FIXTURE, eb);
    CHECK(dp && m);
    if (!dp || !m) {
        deeppacket_close(dp);
        dp_model_free(m);
        return;
    }
    int L = deeppacket_flow_row_len(dp), C = deeppacket_nclasses(dp), n = 70;
    float *x = malloc((size_t)n * L * sizeof *x), *a = malloc((size_t)n * C * sizeof *a);
    float *b = malloc((size_t)n * C * sizeof *b);
    for (size_t i = 0; x && i < (size_t)n * L; i++)
        x[i] = (float)(rnd() % 1000) / 1000.0f;
    CHECK(x && a && b);
    if (x && a && b) {
        CHECK_EQ_INT(deeppacket_predict_flows(dp, x, (size_t)n, a, eb), 0);
        CHECK_EQ_INT(dp_model_predict_flows(m, x, n, b, eb), 0);
        CHECK_NEAR(dp_test_max_abs_diff(a, b, (size_t)n * C), 0, 1e-5);
        uint8_t v[DEEPPACKET_VECTOR_LEN] = {0x45};
        CHECK_EQ_INT(deeppacket_predict(dp, v, 1, a, eb), -1);
        CHECK_STR_CONTAINS(eb, "flow model reads flow rows, not packet vectors");
    }
    free(x);
    free(a);
    free(b);
    dp_model_free(m);
    deeppacket_close(dp);
}

/* Every verdict of the reader, one per line, into out[cap]; returns the
 * last deeppacket_pcap_next result (0 or -1, message in eb), or -2 when
 * the reader did not open. */
static int read_all(deeppacket *dp, const char *path, int per_flow, int first_n, char *out, size_t cap, char *eb)
{
    deeppacket_pcap *pc = deeppacket_pcap_open(dp, path, per_flow, first_n, eb);
    if (!pc)
        return -2;
    size_t len = 0;
    const char *line;
    int rc;
    out[0] = 0;
    while ((rc = deeppacket_pcap_next(pc, &line, eb)) == 1)
        len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s\n", line);
    const char *after;
    CHECK_EQ_INT(deeppacket_pcap_next(pc, &after, eb), 0); /* stays at the end */
    deeppacket_pcap_close(pc);
    return rc;
}

/* The reader's lines equal `classify -r` stdout for the same options. */
static void compare_with_cli(const char *model, const char *capture, int per_flow, const char *cli_opts)
{
    const char *cli = dp_test_cli();
    size_t cap = 1 << 20;
    char *want = malloc(cap), *got = malloc(cap), cmd[1024], eb[DEEPPACKET_ERRBUF_SIZE];
    deeppacket *dp = deeppacket_open(model, eb);
    CHECK(want && got && dp);
    if (want && got && dp) {
        snprintf(cmd, sizeof cmd, "%s classify -m %s -r %s %s 2>/dev/null", cli, model, capture, cli_opts);
        int cli_rc = dp_test_sh(cmd, want, cap);
        int rc = read_all(dp, capture, per_flow, per_flow == 1 ? 4 : 0, got, cap, eb);
        CHECK_EQ_INT(rc, cli_rc == 0 ? 0 : -1);
        CHECK(strlen(want) > 100);
        CHECK(!strcmp(got, want));
    }
    free(want);
    free(got);
    deeppacket_close(dp);
}

static void test_pcap_equals_cli(void)
{
    if (!dp_test_cli())
        SKIP("no build/deeppacket to compare with");
    compare_with_cli(SAE_FIXTURE, CAPTURE, -1, "");
    compare_with_cli(SAE_FIXTURE, CAPTURE, 0, "--per packet");
    compare_with_cli(SAE_FIXTURE, CAPTURE, 1, "--per flow --first 4");
    compare_with_cli(FLOW_FIXTURE, CAPTURE, -1, "");
    /* a truncated capture: the verdicts of what could be read, then the error */
    char cut[600], cmd[1400];
    snprintf(cut, sizeof cut, "%s/cut.pcap", dp_test_tmpdir());
    snprintf(cmd, sizeof cmd, "head -c 9000 %s > %s", CAPTURE, cut);
    CHECK_EQ_INT(dp_test_system(cmd), 0);
    compare_with_cli(SAE_FIXTURE, cut, 1, "--per flow --first 4");
    char eb[DEEPPACKET_ERRBUF_SIZE], out[65536];
    deeppacket *dp = deeppacket_open(SAE_FIXTURE, eb);
    CHECK_EQ_INT(read_all(dp, cut, 0, 0, out, sizeof out, eb), -1);
    CHECK_STR_CONTAINS(eb, cut);
    CHECK(strchr(out, '\n') != NULL);
    deeppacket_close(dp);
}

/* Writes a pcap file of one frame of link type lt; returns path. */
static const char *write_pcap(const char *name, uint32_t lt)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", dp_test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    uint32_t hdr[6] = {0xa1b2c3d4, 2 | (4u << 16), 0, 0, 65535, lt};
    uint8_t frame[60] = {0x45, 0, 0, 60};
    uint32_t rec[4] = {1700000000, 0, sizeof frame, sizeof frame};
    if (f) {
        fwrite(hdr, sizeof hdr, 1, f);
        fwrite(rec, sizeof rec, 1, f);
        fwrite(frame, sizeof frame, 1, f);
        fclose(f);
    }
    return path;
}

/* Opens the SAE (a packet model) and the flow NN fixtures; 0, or -1 (a
 * failed check, nothing left open). */
static int open_sae_and_flow(deeppacket **dp, deeppacket **fl)
{
    char eb[DEEPPACKET_ERRBUF_SIZE];
    *dp = deeppacket_open(SAE_FIXTURE, eb);
    *fl = deeppacket_open(FLOW_FIXTURE, eb);
    CHECK(*dp && *fl);
    if (*dp && *fl)
        return 0;
    deeppacket_close(*dp);
    deeppacket_close(*fl);
    return -1;
}

static void test_pcap_errors(void)
{
    char eb[DEEPPACKET_ERRBUF_SIZE], out[4096];
    deeppacket *dp, *fl;
    if (open_sae_and_flow(&dp, &fl) < 0)
        return;
    CHECK(deeppacket_pcap_open(dp, "/nonexistent/x.pcap", -1, 0, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "/nonexistent/x.pcap");
    CHECK(deeppacket_pcap_open(dp, SAE_FIXTURE, -1, 0, eb) == NULL);
    CHECK_STR_CONTAINS(eb, SAE_FIXTURE);
    CHECK_STR_CONTAINS(eb, ": not a pcap or pcapng file");
    CHECK(deeppacket_pcap_open(fl, CAPTURE, 0, 0, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "flow model gives one verdict per flow");
    CHECK(deeppacket_pcap_open(dp, CAPTURE, 2, 0, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "per_flow is -1, 0 or 1");
    CHECK(deeppacket_pcap_open(dp, CAPTURE, 1, -1, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "first_n");
    /* an unsupported link type: nothing classified is an error, as in the CLI */
    const char *odd = write_pcap("odd.pcap", 147);
    CHECK_EQ_INT(read_all(dp, odd, -1, 0, out, sizeof out, eb), -1);
    CHECK_STR_CONTAINS(eb, "link type 147 is not supported");
    CHECK(out[0] == 0);
    /* a raw-IP frame the rules drop: no verdict, no error */
    const char *raw = write_pcap("raw.pcap", 101);
    CHECK_EQ_INT(read_all(dp, raw, -1, 0, out, sizeof out, eb), 0);
    deeppacket_pcap_close(NULL);
    deeppacket_close(dp);
    deeppacket_close(fl);
}

/* Feeds a FIFO: the first `half` bytes, a pause, the rest (see test_pcap_stream_stall). */
struct stall_feed {
    const char *fifo;
    const char *bytes;
    size_t half, n;
};

static void *feed_with_stall(void *arg)
{
    struct stall_feed *sf = arg;
    FILE *f = fopen(sf->fifo, "wb");
    if (!f)
        return NULL;
    fwrite(sf->bytes, 1, sf->half, f);
    fflush(f);
    usleep(400000);
    fwrite(sf->bytes + sf->half, 1, sf->n - sf->half, f);
    fclose(f);
    return NULL;
}

/* The "index" values of JSON lines, in order, as one string. */
static void indexes(const char *lines, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    for (const char *p = lines; (p = strstr(p, "\"index\":")); p += 8)
        len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%ld,", strtol(p + 8, NULL, 10));
}

/* A FIFO whose writer pauses between two records: the reader's stall
 * timeout (DP_NEXT_TIMEOUT inside deeppacket_pcap_next) is no error, and
 * the verdicts are those of the file, in order. */
static void test_pcap_stream_stall(void)
{
    char eb[DEEPPACKET_ERRBUF_SIZE];
    size_t n, cap = 1 << 20;
    char *bytes = dp_read_file(CAPTURE, &n, eb), *want = malloc(cap), *got = malloc(cap);
    deeppacket *dp = deeppacket_open(SAE_FIXTURE, eb);
    CHECK(bytes && want && got && dp && n > 200);
    if (bytes && want && got && dp && n > 200) {
        size_t half = 24; /* past the file header and 10 records (little-endian pcap) */
        for (int r = 0; r < 10 && half + 16 <= n; r++)
            half += 16 + ((size_t)(uint8_t)bytes[half + 8] | (size_t)(uint8_t)bytes[half + 9] << 8);
        char fifo[600];
        snprintf(fifo, sizeof fifo, "%s/stall.fifo", dp_test_tmpdir());
        CHECK(mkfifo(fifo, 0600) == 0);
        struct stall_feed sf = {fifo, bytes, half, n};
        pthread_t th;
        CHECK(pthread_create(&th, NULL, feed_with_stall, &sf) == 0);
        CHECK_EQ_INT(read_all(dp, fifo, 0, 0, got, cap, eb), 0);
        pthread_join(th, NULL);
        CHECK_EQ_INT(read_all(dp, CAPTURE, 0, 0, want, cap, eb), 0);
        char wi[8192], gi[8192];
        indexes(want, wi, sizeof wi);
        indexes(got, gi, sizeof gi);
        CHECK(strlen(wi) > 10);
        CHECK(!strcmp(wi, gi));
    }
    free(bytes);
    free(want);
    free(got);
    deeppacket_close(dp);
}

/* NULL handles, results, frames and paths are errors through errbuf (or
 * neutral answers for the getters), never a crash; a flow model refuses
 * single packets before touching the result's fields. */
static void test_null_arguments(void)
{
    char eb[DEEPPACKET_ERRBUF_SIZE];
    deeppacket_result r;
    const char *json = NULL;
    uint8_t fr[64] = {0x45, 0, 0, 36, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                      0x10, 0, 1, 0xbb, 0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    deeppacket *dp, *fl;
    if (open_sae_and_flow(&dp, &fl) < 0)
        return;
    CHECK(deeppacket_open(NULL, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "no model path");
    CHECK_EQ_INT(deeppacket_classify(NULL, 101, fr, 36, &r, eb), -1);
    CHECK_STR_CONTAINS(eb, "deeppacket_classify: no model handle");
    CHECK_EQ_INT(deeppacket_classify(dp, 101, fr, 36, NULL, eb), -1);
    CHECK_STR_CONTAINS(eb, "no result to fill");
    CHECK_EQ_INT(deeppacket_classify(dp, 101, NULL, 36, &r, eb), -1);
    CHECK_STR_CONTAINS(eb, "36 captured bytes without a frame");
    CHECK_EQ_INT(deeppacket_classify(dp, 101, NULL, 0, &r, eb), 0); /* zero length: a malformed frame */
    CHECK(!r.kept && !strcmp(r.skip_reason, "malformed"));
    CHECK_EQ_INT(deeppacket_classify(fl, 101, fr, 36, &r, eb), -1);
    CHECK_STR_CONTAINS(eb, "use deeppacket_classify_flow");
    CHECK(r.kept == 0 || r.kept == 1); /* untouched or cleared, never a half verdict */
    CHECK_EQ_INT(deeppacket_classify_flow(NULL, 101, NULL, NULL, NULL, 0, &r, eb), -1);
    CHECK_EQ_INT(deeppacket_classify_flow(fl, 101, NULL, NULL, NULL, 0, NULL, eb), -1);
    CHECK_EQ_INT(deeppacket_predict(NULL, fr, 0, NULL, eb), -1);
    CHECK_EQ_INT(deeppacket_predict_flows(NULL, NULL, 0, NULL, eb), -1);
    CHECK_EQ_INT(deeppacket_nclasses(NULL), 0);
    CHECK(!strcmp(deeppacket_class_name(NULL, 0), "") && !strcmp(deeppacket_model_kind(NULL), ""));
    CHECK(!strcmp(deeppacket_task(NULL), "") && !strcmp(deeppacket_mask(NULL), ""));
    CHECK(deeppacket_wants_flows(NULL) == 0 && deeppacket_flow_packets(NULL) == 0 &&
          deeppacket_flow_row_len(NULL) == 0);
    CHECK(deeppacket_pcap_open(NULL, CAPTURE, -1, 0, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "no model handle");
    CHECK(deeppacket_pcap_open(dp, NULL, -1, 0, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "no capture path");
    CHECK_EQ_INT(deeppacket_pcap_next(NULL, &json, eb), -1);
    deeppacket_pcap *pc = deeppacket_pcap_open(dp, CAPTURE, -1, 0, eb);
    CHECK(pc != NULL);
    if (pc)
        CHECK_EQ_INT(deeppacket_pcap_next(pc, NULL, eb), -1);
    deeppacket_pcap_close(pc);
    CHECK(deeppacket_dataset_open(NULL, NULL, eb) == NULL);
    CHECK_EQ_INT(deeppacket_dataset_read(NULL, 0, 0, NULL, NULL, NULL, eb), -1);
    CHECK(deeppacket_dataset_rows(NULL) == 0 && deeppacket_dataset_nclasses(NULL) == 0 &&
          deeppacket_dataset_has_flows(NULL) == 0);
    CHECK(!strcmp(deeppacket_dataset_task(NULL), "") && !strcmp(deeppacket_dataset_class_name(NULL, 0), ""));
    deeppacket_close(dp);
    deeppacket_close(fl);
}

#define NROWS 40

/* A split folder of NROWS rows (every third without meta when no_meta). */
static const char *make_split(const char *name, int with_meta, uint8_t *vec, int16_t *lab, dp_meta *meta)
{
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/%s", dp_test_tmpdir(), name);
    memset(meta, 0, NROWS * sizeof *meta);
    for (int i = 0; i < NROWS; i++) {
        for (int j = 0; j < DEEPPACKET_VECTOR_LEN; j++)
            vec[i * DEEPPACKET_VECTOR_LEN + j] = (uint8_t)(i * 7 + j);
        lab[i] = (int16_t)(i % 3);
        meta[i].flow = 1000 + (uint64_t)i / 4;
    }
    if (dp_test_write_split(dir, vec, lab, with_meta ? meta : NULL, NROWS, "0\tChat\n1\tEmail\n2\tVoip\n") < 0)
        return NULL;
    if (with_meta) {
        char eb[DEEPPACKET_ERRBUF_SIZE];
        CHECK_EQ_INT(dp_splitset_write_task(dir, DP_TASK_TRAFFIC, eb), 0);
    }
    return dir;
}

static void test_dataset(void)
{
    static uint8_t vec[NROWS * DEEPPACKET_VECTOR_LEN], got[NROWS * DEEPPACKET_VECTOR_LEN];
    int16_t lab[NROWS], glab[NROWS];
    dp_meta meta[NROWS];
    uint64_t flows[NROWS];
    char eb[DEEPPACKET_ERRBUF_SIZE];
    const char *dir = make_split("split", 1, vec, lab, meta);
    CHECK(dir != NULL);
    if (!dir)
        return;
    deeppacket_dataset *ds = deeppacket_dataset_open(dir, NULL, eb);
    CHECK(ds != NULL);
    if (!ds)
        return;
    CHECK_EQ_INT(deeppacket_dataset_rows(ds), NROWS);
    CHECK(!strcmp(deeppacket_dataset_task(ds), "traffic"));
    CHECK_EQ_INT(deeppacket_dataset_nclasses(ds), 3);
    CHECK(!strcmp(deeppacket_dataset_class_name(ds, 2), "Voip"));
    CHECK(!strcmp(deeppacket_dataset_class_name(ds, 3), ""));
    CHECK_EQ_INT(deeppacket_dataset_has_flows(ds), 1);
    CHECK_EQ_INT(deeppacket_dataset_read(ds, 0, NROWS, got, glab, flows, eb), 0);
    CHECK(!memcmp(got, vec, sizeof vec));
    CHECK(!memcmp(glab, lab, sizeof lab));
    CHECK_EQ_INT(flows[13], 1003);
    CHECK_EQ_INT(deeppacket_dataset_read(ds, 10, 5, got, NULL, NULL, eb), 0);
    CHECK(!memcmp(got, vec + 10 * DEEPPACKET_VECTOR_LEN, 5 * DEEPPACKET_VECTOR_LEN));
    CHECK_EQ_INT(deeppacket_dataset_read(ds, 38, 3, got, NULL, NULL, eb), -1);
    CHECK_STR_CONTAINS(eb, "rows [38, 41) are outside the 40 rows");
    CHECK_EQ_INT(deeppacket_dataset_read(ds, UINT64_MAX, 2, got, NULL, NULL, eb), -1);
    deeppacket_dataset_close(ds);
    deeppacket_dataset_close(NULL);

    CHECK(deeppacket_dataset_open(dir, "app", eb) == NULL);
    CHECK_STR_CONTAINS(eb, "a split folder of the traffic task, not of the app task");
    CHECK(deeppacket_dataset_open(dir, "video", eb) == NULL);
    CHECK_STR_CONTAINS(eb, "unknown task 'video'");
    CHECK(deeppacket_dataset_open("/nonexistent/ds", NULL, eb) == NULL);
    CHECK_STR_CONTAINS(eb, "/nonexistent/ds");

    const char *bare = make_split("bare", 0, vec, lab, meta);
    ds = bare ? deeppacket_dataset_open(bare, NULL, eb) : NULL;
    CHECK(ds != NULL);
    if (ds) {
        CHECK_EQ_INT(deeppacket_dataset_has_flows(ds), 0);
        CHECK(!strcmp(deeppacket_dataset_task(ds), ""));
        CHECK_EQ_INT(deeppacket_dataset_read(ds, 0, 1, NULL, glab, flows, eb), -1);
        CHECK_STR_CONTAINS(eb, "no meta.npy, so no flow ids");
        deeppacket_dataset_close(ds);
    }
}

int main(void)
{
    dp_test_prog = "test_api";
    DP_RUN(test_version);
    DP_RUN(test_model_info);
    DP_RUN(test_predict);
    DP_RUN(test_open_while_predicting);
    DP_RUN(test_precision_per_handle);
    DP_RUN(test_precision_concurrent);
    DP_RUN(test_set_precision);
    DP_RUN(test_predict_flows);
    DP_RUN(test_pcap_equals_cli);
    DP_RUN(test_pcap_errors);
    DP_RUN(test_null_arguments);
    DP_RUN(test_pcap_stream_stall);
    DP_RUN(test_dataset);
    return dp_test_end();
}
