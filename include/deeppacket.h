/* deeppacket.h: embed the Deep Packet classifier in another program.
 *
 *   char err[DEEPPACKET_ERRBUF_SIZE];
 *   deeppacket *dp = deeppacket_open("traffic.model", err);
 *   if (!dp) { fprintf(stderr, "%s\n", err); ... }
 *   deeppacket_result r;
 *   if (deeppacket_classify(dp, 1, frame, caplen, &r, err) == 0 && r.kept)
 *       printf("%s %.2f\n", r.class_name, r.probability);
 *   deeppacket_close(dp);
 *
 * Installed (`make install`), build against the shared library with
 *   cc app.c $(pkg-config --cflags --libs deeppacket)
 * or statically (libdeeppacket.a, its dependencies shared):
 *   cc app.c $(pkg-config --cflags deeppacket) -Wl,--as-needed -Wl,-Bstatic -ldeeppacket \
 *      -Wl,-Bdynamic $(pkg-config --static --libs deeppacket)
 * In the source tree: cc app.c -Iinclude build/libdeeppacket.a $(make -s print-ldlibs).
 * The shared library exports exactly the deeppacket_* functions below.
 * A handle is not thread-safe: use one per thread. Functions that can fail
 * take errbuf (DEEPPACKET_ERRBUF_SIZE bytes) and leave a one-line message
 * there; they never abort on bad input: a NULL handle, result, frame or
 * path is such an error (-1 or NULL), and the getters below answer 0 or ""
 * for a NULL handle. A closed handle is freed memory: do not pass it.
 */
#ifndef DEEPPACKET_H
#define DEEPPACKET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version (semantic: the soname is libdeeppacket.so.MAJOR). */
#define DEEPPACKET_VERSION_MAJOR 0
#define DEEPPACKET_VERSION_MINOR 2
#define DEEPPACKET_VERSION_PATCH 0
#define DEEPPACKET_VERSION_STRING "0.2.0"

/* Marks the functions the shared library exports (it is built with
 * -fvisibility=hidden and a version script). */
#if defined(__GNUC__) || defined(__clang__)
#define DEEPPACKET_API __attribute__((visibility("default")))
#else
#define DEEPPACKET_API
#endif

/* Size of the error buffers below (one-line messages). */
#define DEEPPACKET_ERRBUF_SIZE 512

typedef struct deeppacket deeppacket;

/* What became of one frame. Pointers stay valid until deeppacket_close. */
typedef struct deeppacket_result {
    int kept;                /* 1: the frame was classified; 0: dropped by the
                                preprocessing rules (see skip_reason);
                                deeppacket_classify_flow: kept frames used */
    const char *skip_reason; /* "kept", "not_ip", "linktype", "malformed",
                                "empty_tcp", "dns" */
    int class_id;            /* kept: best class id (the model's task ids), or -1
                                when its probability is below the handle's
                                min_prob (deeppacket_set_min_prob); else -1 */
    const char *class_name;  /* kept: its name, or "unknown" below min_prob; else "" */
    float probability;       /* kept: the best class's probability in [0, 1]; else 0 */
} deeppacket_result;

/* Loads a model file written by `deeppacket train`. NULL with a message in
 * errbuf (naming the file) when it is missing, truncated, corrupt or of an
 * unknown version. The environment variable DEEPPACKET_PRECISION (fp32,
 * bf16 or auto; unset: fp32), read here, sets the handle's precision
 * (deeppacket_set_precision); a value that is not one of these, or bf16 on
 * a CPU without AVX512_BF16, makes the open fail. */
DEEPPACKET_API deeppacket *deeppacket_open(const char *model_path, char *errbuf);

/* Sets the precision of the handle's model products, as `classify
 * --precision` does: "fp32" (float32, the default), "bf16" (the
 * convolutions' and fully connected layers' products with bf16 inputs and
 * float32 sums, on AVX512_BF16; results within bf16's rounding of fp32's,
 * not bit for bit) or "auto" (bf16 where the CPU has it, else fp32). It
 * applies to this handle alone, from its next call on, on every thread the
 * call uses: other handles in the process keep theirs, and an fp32 handle
 * gives the same bits whatever the others use, at the same time too. A GBT
 * model has no such products: accepted, no effect. Returns 0, or -1 + message
 * and the precision unchanged for a NULL dp or precision, another word, or
 * bf16 where it cannot run (no AVX512_BF16, or a library built without
 * oneDNN). Not while the handle is in use (a call on it, or a capture
 * reader of it, in progress). */
DEEPPACKET_API int deeppacket_set_precision(deeppacket *dp, const char *precision, char *errbuf);
/* The handle's precision in effect: "fp32" or "bf16" ("auto" resolved);
 * "" for a NULL dp. */
DEEPPACKET_API const char *deeppacket_precision(const deeppacket *dp);

/* Sets the probability below which the handle's verdicts are "unknown",
 * as `classify --min-prob` does: a verdict whose best class has a lower
 * probability gets class_id -1 and class_name "unknown" (probability stays
 * the best class's; the capture reader's JSON lines say class -1, label
 * "unknown" and keep their top list). 0, the default, never. A model is
 * sure of the traffic it knows and unsure of the traffic it has never
 * seen: `deeppacket test` reports how many verdicts each threshold keeps
 * and how right they are. Applies to this handle's calls and capture
 * readers opened after it. Returns 0, or -1 + message (NULL dp, min_prob
 * outside [0, 1], NaN); the threshold is then unchanged. */
DEEPPACKET_API int deeppacket_set_min_prob(deeppacket *dp, double min_prob, char *errbuf);
/* The handle's threshold (0 for a NULL dp). */
DEEPPACKET_API double deeppacket_min_prob(const deeppacket *dp);

/* Classifies one captured frame: linktype is the pcap LINKTYPE_* number of
 * the capture (1 Ethernet, 101 raw IP, 113 Linux cooked, ...), frame the
 * caplen captured bytes. The frame goes through exactly the transform used
 * in training; a frame the rules drop gives kept = 0 (not an error), as
 * does caplen 0 (frame may then be NULL). Returns 0 with *out filled, or
 * -1 + message if the model fails, for a flow model (it classifies flows:
 * deeppacket_classify_flow) or a NULL dp, out or frame (caplen > 0). */
DEEPPACKET_API int deeppacket_classify(deeppacket *dp, int linktype, const uint8_t *frame, size_t caplen,
                        deeppacket_result *out, char *errbuf);

/* 1 when the model classifies whole flows (a flow model: `train --model
 * gbt|flow`; use deeppacket_classify_flow), 0 for a per-packet model. */
DEEPPACKET_API int deeppacket_wants_flows(const deeppacket *dp);
/* A flow model's N: it decides from a flow's first N kept packets (0 for
 * a packet model). */
DEEPPACKET_API int deeppacket_flow_packets(const deeppacket *dp);

/* Classifies one bidirectional flow from its captured frames, in capture
 * order: frames[i] of caplens[i] bytes captured at times[i] (seconds), all
 * of link type linktype. Frames the preprocessing rules drop are skipped;
 * out->kept is the number of kept frames used (0: nothing to classify,
 * class_id -1, not an error). A flow model reads the first N kept frames
 * (direction relative to the first kept frame, inter-arrival times, its
 * field mask); a packet model sums the log-probabilities of every kept
 * frame given (as `classify --per flow`): the class of the largest sum,
 * with the softmax of their mean (the normalised geometric mean of the
 * frames' probabilities) as its probability. Returns 0, or -1 + message. */
DEEPPACKET_API int deeppacket_classify_flow(deeppacket *dp, int linktype, const uint8_t *const *frames, const size_t *caplens,
                             const double *times, int nframes, deeppacket_result *out, char *errbuf);

/* Number of classes of the model and the name of class id c ("" if unnamed). */
DEEPPACKET_API int deeppacket_nclasses(const deeppacket *dp);
DEEPPACKET_API const char *deeppacket_class_name(const deeppacket *dp, int c);

/* Frees the handle (NULL is allowed). */
DEEPPACKET_API void deeppacket_close(deeppacket *dp);

/* ---- version and model information ------------------------------------- */

/* The library's version, "MAJOR.MINOR.PATCH" (DEEPPACKET_VERSION_STRING of
 * the library actually loaded, which may be newer than the header). */
DEEPPACKET_API const char *deeppacket_version(void);

/* The model's kind: "cnn", "sae", "flow" or "gbt" (the flow NN and the
 * GBT read flow rows: deeppacket_wants_flows). */
DEEPPACKET_API const char *deeppacket_model_kind(const deeppacket *dp);
/* The model's task: "app" or "traffic". */
DEEPPACKET_API const char *deeppacket_task(const deeppacket *dp);
/* The header-field mask the model applies to every vector: "none" or the
 * field names joined by commas ("ports,ipid,ttl,checksum,seq,tcpts"). */
DEEPPACKET_API const char *deeppacket_mask(const deeppacket *dp);
/* A flow model's row length (N packets x F features per packet, floats;
 * docs/flow-features.md), 0 for a packet model. */
DEEPPACKET_API int deeppacket_flow_row_len(const deeppacket *dp);

/* ---- arrays ------------------------------------------------------------- */

/* Size of one packet vector (the Deep Packet input: uint8, 1500 bytes). */
#define DEEPPACKET_VECTOR_LEN 1500

/* A packet model on n preprocessed vectors (row-major [n, 1500] uint8, as
 * in a dataset's vectors.npy): the model's mask applied to a copy, each
 * byte scaled by 1/255, log-probabilities (log-softmax) written to
 * logprobs[n, nclasses] (row-major). n = 0 writes nothing. Returns 0, or -1
 * + message for a flow model (it reads flow rows) or a failed model. */
DEEPPACKET_API int deeppacket_predict(deeppacket *dp, const uint8_t *vectors, size_t n, float *logprobs,
                                      char *errbuf);

/* A flow model on n flow rows (row-major [n, deeppacket_flow_row_len]
 * floats, the layout of docs/flow-features.md, mask already applied as
 * the model's feature extraction does): log-probabilities [n, nclasses].
 * Returns 0, or -1 + message for a packet model or a failed model. */
DEEPPACKET_API int deeppacket_predict_flows(deeppacket *dp, const float *rows, size_t n, float *logprobs,
                                            char *errbuf);

/* ---- capture files --------------------------------------------------------
 * Verdicts on a pcap/pcapng file, one at a time, as the JSON lines of
 * `deeppacket classify -r PATH` with the same options (same keys, values
 * and order: the same code writes them). */
typedef struct deeppacket_pcap deeppacket_pcap;

/* Opens the capture at path for classification by dp (which must outlive
 * the reader and is not to be used meanwhile). per_flow: 0 one verdict per
 * kept packet, 1 one per bidirectional flow, -1 the model's default (per
 * packet, or per flow for a flow model); a flow model refuses 0. first_n:
 * per flow, the kept packets a verdict is made of (0: 10; a flow model
 * always uses its own N). path "-" is standard input; it and a FIFO are
 * read as streams: deeppacket_pcap_next waits for their data, and when
 * one stalls (100 ms without a record) the packets read so far are
 * classified, so that their verdicts come out meanwhile. NULL + message
 * when the file cannot be opened or is no capture, or the options are
 * wrong. */
DEEPPACKET_API deeppacket_pcap *deeppacket_pcap_open(deeppacket *dp, const char *path, int per_flow, int first_n,
                                                     char *errbuf);
/* The next verdict: returns 1 with *json pointing to one JSON object (no
 * newline; valid until the next call or deeppacket_pcap_close), 0 at the
 * end, or -1 + message: a truncated or corrupt capture (after the verdicts
 * of what could be read, as the CLI prints them), a failed model, or a
 * capture of an unsupported link type from which nothing was classified.
 * After 0 or -1 it keeps returning 0. */
DEEPPACKET_API int deeppacket_pcap_next(deeppacket_pcap *pc, const char **json, char *errbuf);
/* Frees the reader (NULL is allowed). */
DEEPPACKET_API void deeppacket_pcap_close(deeppacket_pcap *pc);

/* ---- datasets ---------------------------------------------------------------
 * A split folder (SPLIT_DIR/<task>/{train,test}) or a preprocessed dataset
 * folder, as `train` and `test` read it: rows with a vector, a class id of
 * one task and (when the folder has meta.npy) a flow id. Memory-mapped: the
 * rows are copied out on request only. */
typedef struct deeppacket_dataset deeppacket_dataset;

/* Opens dir for task "app" or "traffic" (NULL: a split folder's own task;
 * a dataset folder has two and needs one). A dataset folder's rows without
 * a label for the task are left out. NULL + message naming dir when it is
 * neither kind of folder, a file is missing or malformed, or the task does
 * not match a split folder's. */
DEEPPACKET_API deeppacket_dataset *deeppacket_dataset_open(const char *dir, const char *task, char *errbuf);
/* Rows of the view. */
DEEPPACKET_API uint64_t deeppacket_dataset_rows(const deeppacket_dataset *ds);
/* The view's task ("app", "traffic"; "" when an old split folder does not
 * say), number of classes and the name of class id c ("" when unnamed or
 * out of range). */
DEEPPACKET_API const char *deeppacket_dataset_task(const deeppacket_dataset *ds);
DEEPPACKET_API int deeppacket_dataset_nclasses(const deeppacket_dataset *ds);
DEEPPACKET_API const char *deeppacket_dataset_class_name(const deeppacket_dataset *ds, int c);
/* 1 when the rows have flow ids (meta.npy), else 0. */
DEEPPACKET_API int deeppacket_dataset_has_flows(const deeppacket_dataset *ds);
/* Copies rows [start, start + n) out: their vectors to vectors[n, 1500],
 * class ids to labels[n], flow ids to flows[n] (each may be NULL; flows
 * needs deeppacket_dataset_has_flows). Returns 0, or -1 + message when the
 * range is outside the view or flows are asked of a folder without them. */
DEEPPACKET_API int deeppacket_dataset_read(const deeppacket_dataset *ds, uint64_t start, uint64_t n,
                                           uint8_t *vectors, int16_t *labels, uint64_t *flows, char *errbuf);
/* Unmaps and frees the view (NULL is allowed). */
DEEPPACKET_API void deeppacket_dataset_close(deeppacket_dataset *ds);

#ifdef __cplusplus
}
#endif

#endif
