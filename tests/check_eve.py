#!/usr/bin/python3
"""Oracle for `classify --format eve` (tests/test_classify.c).

    check_eve.py EVE.jsonl JSON.jsonl CAPTURE.pcap PER [IFACE]

Parses every EVE line as JSON and checks it against the capture itself
(read here with struct, independently of deeppacket): the timestamp, the
addresses, ports and protocol of frame pcap_cnt, and against the default
JSON lines of the same run (same verdicts in the same order; flow_id = the
JSON "flow" cut to 51 bits; a flow's packets share one flow_id). Live runs
(IFACE given) have in_iface and no pcap fields; their tuple is checked
against the JSON lines only. Prints OK, or the first mismatch and exits 1.
"""
import datetime
import json
import socket
import struct
import sys


def frames(path):
    """[(time, bytes)] of a classic pcap file (us or ns timestamps)."""
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    scale = {0xA1B2C3D4: 1e-6, 0xA1B23C4D: 1e-9}[magic]
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        out.append((sec, frac, scale, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return out


def tuple_of(frame):
    ip = frame[14:]
    proto = ip[9]
    ihl = (ip[0] & 15) * 4
    sport, dport = struct.unpack(">HH", ip[ihl:ihl + 4])
    return socket.inet_ntoa(ip[12:16]), sport, socket.inet_ntoa(ip[16:20]), dport, {6: "TCP", 17: "UDP"}[proto]


def ts(sec, frac, scale):
    us = round(frac * scale * 1e6)
    t = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%06d+0000" % us


def fail(i, msg):
    print("line %d: %s" % (i + 1, msg))
    sys.exit(1)


def main():
    eve_path, json_path, cap, per = sys.argv[1:5]
    iface = sys.argv[5] if len(sys.argv) > 5 else None
    eve = [json.loads(l) for l in open(eve_path)]
    ref = [json.loads(l) for l in open(json_path)]
    fr = frames(cap) if not iface else None
    if len(eve) != len(ref) or not eve:
        fail(0, "%d EVE lines, %d JSON lines" % (len(eve), len(ref)))
    ids = {}
    for i, (e, j) in enumerate(zip(eve, ref)):
        keys = list(e)
        want = ["timestamp", "flow_id"] + (["in_iface"] if iface else []) + ["event_type", "src_ip", "src_port",
                                                                             "dest_ip", "dest_port", "proto"]
        if keys[:len(want)] != want:
            fail(i, "keys %s, expected %s first" % (keys, want))
        if e["event_type"] != "deeppacket" or not isinstance(e["deeppacket"], dict):
            fail(i, "event_type/verdict object")
        if iface:
            if e["in_iface"] != iface or "pcap_cnt" in e:
                fail(i, "in_iface %r / pcap fields in a live run" % e.get("in_iface"))
            tup = (j["src"], j["sport"], j["dst"], j["dport"], j["proto"].upper())
        else:
            if e["pcap_filename"] != cap or e["pcap_cnt"] != j["index"] + 1:
                fail(i, "pcap_filename %r pcap_cnt %r" % (e["pcap_filename"], e["pcap_cnt"]))
            sec, frac, scale, b = fr[e["pcap_cnt"] - 1]
            tup = tuple_of(b)
            if e["timestamp"] != ts(sec, frac, scale):
                fail(i, "timestamp %s, the capture says %s" % (e["timestamp"], ts(sec, frac, scale)))
        got = (e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"], e["proto"])
        if got != tup:
            fail(i, "tuple %s, expected %s" % (got, tup))
        v = e["deeppacket"]
        if (v["per"], v["class"], v["label"], v["probability"], v["top"]) != (per, j["class"], j["label"],
                                                                              j["prob"], j["top"]):
            fail(i, "verdict %s differs from the JSON line %s" % (v, j))
        if not 0 < v["probability"] <= 1 or v["task"] != "traffic" or not v["model"] or not v["kind"]:
            fail(i, "verdict fields %s" % v)
        if not 0 <= e["flow_id"] < 2 ** 51:
            fail(i, "flow_id %d not in 51 bits" % e["flow_id"])
        key = tuple(sorted([(tup[0], tup[1]), (tup[2], tup[3])])) + (tup[4],)
        if ids.setdefault(key, e["flow_id"]) != e["flow_id"]:
            fail(i, "flow %s has two flow_ids" % (key,))
        if per == "flow":
            if int(j["flow"], 16) & (2 ** 51 - 1) != e["flow_id"] or v["packets"] != j["packets"] \
                    or v["reason"] != j["reason"]:
                fail(i, "flow_id/packets/reason differ from the JSON line")
        elif v["packets"] != 1:
            fail(i, "a packet verdict of %d packets" % v["packets"])
    if len(set(ids.values())) != len(ids):
        fail(0, "two flows share a flow_id")
    print("OK %d" % len(eve))


main()
