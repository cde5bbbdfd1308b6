#!/usr/bin/python3
"""The Deep Packet per-packet transform written the way the reference
pipeline writes it (Python + scapy), as a speed baseline for
bench/bench_preprocess.sh. Not used by deeppacket itself.

Per frame: read with scapy, drop TCP segments with no payload and SYN/ACK/FIN
set (the intended TCP-flags rule, not the reference's IP-flags slip) and DNS
(port 53 at either end, mDNS 5353), strip the link layer, insert 12 zero bytes
after the UDP header, zero the IP addresses (v4 and v6), cut or zero-pad to
1500 bytes and write the bytes out. The reference additionally turns every
vector into 1500 floats, a scipy sparse row and gzip JSON, which is slower
still; by default this measures only the transform. With --sparse it also
does the reference's last per-packet step (its packet_to_sparse_array: the
bytes as floats divided by 255, padded to 1500, as a scipy CSR row), so that
the work per packet is the reference's transform_packet (still without its
JSON/gzip output).

usage: scapy_transform.py [--max-frames N] [--sparse] [-o OUT] CAPTURE...
prints one line: frames=F kept=K seconds=S frames_per_s=R kept_per_s=Q cpu_s=C
frames_per_cpu_s=P (the loop only: no interpreter start or imports)
"""
import argparse
import sys
import time

from scapy.all import PcapReader, Padding, raw
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

VEC_LEN = 1500


def should_omit(pkt):
    if TCP in pkt and (int(pkt[TCP].flags) & 0x13):
        layers = pkt[TCP].payload.layers()
        if not layers or (Padding in layers and len(layers) == 1):
            return True
    for proto in (TCP, UDP):
        if proto in pkt:
            sport, dport = pkt[proto].sport, pkt[proto].dport
            if sport == 53 or dport == 53:
                return True
            if proto is UDP and (sport == 5353 or dport == 5353):
                return True
    return False


def strip_link(pkt):
    if Ether in pkt:
        return pkt[Ether].payload
    return pkt


def pad_udp(raw_ip, pkt):
    """Inserts 12 zero bytes right after the 8-byte UDP header. (Done on the
    bytes: the reference's `before / Padding / after` lets scapy move the
    padding to the end of the packet, the defect spec section 3 names.)"""
    if UDP in pkt:
        off = len(raw_ip) - len(raw(pkt[UDP])) + 8
        return raw_ip[:off] + bytes(12) + raw_ip[off:]
    return raw_ip


def mask_ip(pkt):
    if IP in pkt:
        pkt[IP].src = "0.0.0.0"
        pkt[IP].dst = "0.0.0.0"
    elif IPv6 in pkt:
        pkt[IPv6].src = "::"
        pkt[IPv6].dst = "::"
    return pkt


def transform(pkt):
    if IP not in pkt and IPv6 not in pkt:
        return None
    if should_omit(pkt):
        return None
    pkt = mask_ip(strip_link(pkt))
    b = raw(pkt)
    # bytes past the IP packet's own length (link-layer trailers) are not part of it
    if IP in pkt and pkt[IP].len:
        b = b[:pkt[IP].len]
    elif IPv6 in pkt:
        b = b[:40 + pkt[IPv6].plen]
    b = pad_udp(b, pkt)[:VEC_LEN]
    return b + bytes(VEC_LEN - len(b))


def to_sparse_row(vec):
    """The reference's packet_to_sparse_array on a 1500-byte vector."""
    import numpy as np
    from scipy import sparse
    arr = np.frombuffer(vec, dtype=np.uint8)[0:VEC_LEN] / 255
    if len(arr) < VEC_LEN:
        arr = np.pad(arr, pad_width=(0, VEC_LEN - len(arr)), constant_values=0)
    return sparse.csr_matrix(arr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-frames", type=int, default=0)
    ap.add_argument("-o", "--out", default="/dev/null")
    ap.add_argument("--sparse", action="store_true",
                    help="also build the reference's sparse float row per kept packet")
    ap.add_argument("captures", nargs="+")
    a = ap.parse_args()
    if a.sparse:
        to_sparse_row(bytes(VEC_LEN))  # imports outside the timed loop
    frames = kept = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    with open(a.out, "wb") as out:
        for path in a.captures:
            with PcapReader(path) as rd:
                for pkt in rd:
                    frames += 1
                    v = transform(pkt)
                    if v is not None:
                        if a.sparse:
                            to_sparse_row(v)
                        out.write(v)
                        kept += 1
                    if a.max_frames and frames >= a.max_frames:
                        break
            if a.max_frames and frames >= a.max_frames:
                break
    s = time.perf_counter() - t0
    c = time.process_time() - c0
    print("frames=%d kept=%d seconds=%.3f frames_per_s=%.1f kept_per_s=%.1f cpu_s=%.3f "
          "frames_per_cpu_s=%.1f" % (frames, kept, s, frames / s if s else 0,
                                     kept / s if s else 0, c, frames / c if c else 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
