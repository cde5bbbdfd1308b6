/* dp_eve: classify verdicts as Suricata EVE JSON lines (`classify --format
 * eve`), so that Filebeat's Suricata module, Logstash and Splunk read them as
 * they read Suricata's eve.json.
 *
 * One object per verdict, Suricata's common section first, the verdict in
 * its own object named like the event type:
 *
 *   {"timestamp":"2026-12-02T19:03:48.123456+0000","flow_id":N,
 *    ["in_iface":"eth0",]"event_type":"deeppacket",
 *    "src_ip":..,"src_port":..,"dest_ip":..,"dest_port":..,"proto":"TCP",
 *    ["pcap_filename":..,"pcap_cnt":N,]
 *    "deeppacket":{"per":"flow","class":C,"label":L,"probability":P,
 *                  "model":PATH,"kind":"cnn","task":"traffic","packets":N,
 *                  ["reason":..,"start":..,"end":..,]"top":[...]}}
 *
 * class and label: the best class, or -1 and "unknown" for a verdict below
 * classify --min-prob (probability and top still the model's guesses).
 * timestamp: the packet's time (a flow's: its first kept packet), UTC, in
 * Suricata's format. flow_id: the flow's 64-bit id (the JSON lines' "flow")
 * cut to its low 51 bits as Suricata does (exact in JavaScript and every
 * JSON reader), the same for a flow's packets and its flow verdict. Ports
 * only for TCP and UDP; pcap_filename/pcap_cnt (1-based frame number, the
 * flow's first kept packet) only for recorded captures.
 */
#ifndef DP_EVE_H
#define DP_EVE_H

#include <stdint.h>
#include <stdio.h>

#include "classify/dp_classify.h"

#define DP_EVE_EVENT_TYPE "deeppacket"
#define DP_EVE_FLOW_ID_MASK 0x7ffffffffffffULL /* 51 bits, as Suricata's FlowGetId */

typedef struct dp_eve_info {
    const char *model_path;   /* the model file as given to -m */
    const char *in_iface;     /* live interface, NULL for recorded captures */
} dp_eve_info;

/* Writes r as one EVE JSON object and a newline (class names and kind from m). */
void dp_cls_result_eve(FILE *f, const dp_model *m, const dp_eve_info *e, const dp_cls_result *r);

/* Formats t (seconds since the epoch) as Suricata's timestamp,
 * "YYYY-MM-DDTHH:MM:SS.uuuuuu+0000" (UTC, microseconds rounded), into
 * out[cap] (>= 32 bytes). Returns 0, or -1 when t is not finite or out of
 * range (out is then "1970-01-01T00:00:00.000000+0000"). */
int dp_eve_timestamp(double t, char *out, size_t cap);

/* Suricata's protocol name for an IP protocol number ("TCP", "UDP",
 * "ICMP", "IPv6-ICMP"), or NULL for others (written as the number). */
const char *dp_eve_proto_name(unsigned proto);

#endif
