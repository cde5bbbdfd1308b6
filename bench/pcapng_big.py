#!/usr/bin/env python3
"""Writes one pcapng of at least N frames for benchmarks (docs/benchmarks.md,
"One big pcapng capture"): a section header, one interface (link type 101,
raw IP, microseconds) and enhanced packet blocks holding the frames of
iscx-sample's pcaps, over and over, each pass one 1000 s later.

    /usr/bin/python3 bench/pcapng_big.py OUT.pcapng [N [DATA]]   # N 1000000, DATA ../shared/data
"""
import glob
import struct
import sys


def block(btype, body):
    pad = (-len(body)) % 4
    n = 12 + len(body) + pad
    return struct.pack('<II', btype, n) + body + b'\0' * pad + struct.pack('<I', n)


def frames(data):
    """(microseconds, bytes, original length) of every raw-IP pcap's frames."""
    out = []
    for path in sorted(glob.glob(data + '/iscx-sample/**/*.pcap', recursive=True)):
        d = open(path, 'rb').read()
        if len(d) < 24 or struct.unpack('<I', d[:4])[0] != 0xa1b2c3d4:
            continue
        if struct.unpack('<I', d[20:24])[0] not in (101, 12, 228):
            continue
        p = 24
        while p + 16 <= len(d):
            s, us, cl, ol = struct.unpack('<IIII', d[p:p + 16])
            out.append((s * 1000000 + us, d[p + 16:p + 16 + cl], ol))
            p += 16 + cl
    return out


def main():
    path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
    fr = frames(sys.argv[3] if len(sys.argv) > 3 else '../shared/data')
    if not fr:
        sys.exit('pcapng_big: no raw-IP pcap under DATA/iscx-sample')
    with open(path, 'wb') as out:
        out.write(block(0x0A0D0D0A, struct.pack('<IHHq', 0x1A2B3C4D, 1, 0, -1)))
        out.write(block(1, struct.pack('<HHI', 101, 0, 262144)))
        written, shift = 0, 0
        while written < n:
            for ts, data, orig in fr:
                ts += shift
                out.write(block(6, struct.pack('<IIIII', 0, ts >> 32, ts & 0xffffffff, len(data), orig) + data))
            written += len(fr)
            shift += 10**9
    print(f'{path}: {written} frames ({len(fr)} distinct)')


if __name__ == '__main__':
    main()
