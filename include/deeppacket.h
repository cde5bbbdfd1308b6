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
 * Link with libdeeppacket.a and its dependencies:
 *   cc app.c build/libdeeppacket.a $(make -s print-ldlibs)
 * i.e. $(pkg-config --libs libpcap cairo openblas) -lxgboost -lm -lpthread
 * -ldnnl -lgomp (the last two unless built with DNNL=0).
 * A handle is not thread-safe: use one per thread.
 */
#ifndef DEEPPACKET_H
#define DEEPPACKET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
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
    int class_id;            /* kept: best class id (the model's task ids); else -1 */
    const char *class_name;  /* kept: its name; else "" */
    float probability;       /* kept: its probability in [0, 1]; else 0 */
} deeppacket_result;

/* Loads a model file written by `deeppacket train`. NULL with a message in
 * errbuf (naming the file) when it is missing, truncated, corrupt or of an
 * unknown version. The environment variable DEEPPACKET_PRECISION (fp32,
 * bf16 or auto; unset: fp32) sets the precision of the model's products,
 * process-wide, as `classify --precision` does; a value that is not one of
 * these, or bf16 on a CPU without AVX512_BF16, makes the open fail. */
deeppacket *deeppacket_open(const char *model_path, char *errbuf);

/* Classifies one captured frame: linktype is the pcap LINKTYPE_* number of
 * the capture (1 Ethernet, 101 raw IP, 113 Linux cooked, ...), frame the
 * caplen captured bytes. The frame goes through exactly the transform used
 * in training; a frame the rules drop gives kept = 0 (not an error).
 * Returns 0 with *out filled, or -1 + message if the model fails. */
int deeppacket_classify(deeppacket *dp, int linktype, const uint8_t *frame, size_t caplen,
                        deeppacket_result *out, char *errbuf);

/* 1 when the model classifies whole flows (a flow model: `train --model
 * gbt|flow`; use deeppacket_classify_flow), 0 for a per-packet model. */
int deeppacket_wants_flows(const deeppacket *dp);
/* A flow model's N: it decides from a flow's first N kept packets (0 for
 * a packet model). */
int deeppacket_flow_packets(const deeppacket *dp);

/* Classifies one bidirectional flow from its captured frames, in capture
 * order: frames[i] of caplens[i] bytes captured at times[i] (seconds), all
 * of link type linktype. Frames the preprocessing rules drop are skipped;
 * out->kept is the number of kept frames used (0: nothing to classify,
 * class_id -1, not an error). A flow model reads the first N kept frames
 * (direction relative to the first kept frame, inter-arrival times, its
 * field mask); a packet model sums the log-probabilities of every kept
 * frame given (as `classify --per flow`). Returns 0, or -1 + message. */
int deeppacket_classify_flow(deeppacket *dp, int linktype, const uint8_t *const *frames, const size_t *caplens,
                             const double *times, int nframes, deeppacket_result *out, char *errbuf);

/* Number of classes of the model and the name of class id c ("" if unnamed). */
int deeppacket_nclasses(const deeppacket *dp);
const char *deeppacket_class_name(const deeppacket *dp, int c);

/* Frees the handle (NULL is allowed). */
void deeppacket_close(deeppacket *dp);

#ifdef __cplusplus
}
#endif

#endif
