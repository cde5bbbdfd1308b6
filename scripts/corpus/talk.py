#!/usr/bin/python3
"""Drives a two-way encrypted conversation between `openssl s_server` and
`openssl s_client` (real OpenSSL, TLS over TCP or DTLS over UDP) for the
deeppacket sample corpus (scripts/make-corpus.sh).

  talk.py --mode chat|voip --port SERVER_PORT [--connect-port PORT] [--dtls]
          --cert CERT --key KEY --seed N [--scale F]

chat: 25-70 short messages (10-300 bytes), each from a random side, with
      human-like pauses (0.05-0.6 s, scaled by --scale).
voip: an RTP-like call: a 60-160 byte frame every 20 ms in both directions
      (50 packets/s each way) for 0.8-2 s, with short silences.
The payload is hex text (so that openssl's stdin command letters never
appear); on the wire it is TLS/DTLS ciphertext. With --connect-port the
client connects there (an `ssh -L` tunnel to the server port).
"""
import argparse
import os
import random
import select
import socket
import subprocess
import sys
import time


def wait_port(port, udp, timeout=5.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if udp:
            out = subprocess.run(["ss", "-uln"], capture_output=True, text=True).stdout
        else:
            out = subprocess.run(["ss", "-tln"], capture_output=True, text=True).stdout
        if (":%d " % port) in out:
            return True
        time.sleep(0.05)
    return False


def drain(procs):
    """Reads whatever the openssl processes printed (so pipes never fill)."""
    fds = [p.stdout for p in procs if p.stdout]
    while True:
        r, _, _ = select.select(fds, [], [], 0)
        if not r:
            return
        for f in r:
            if not os.read(f.fileno(), 65536):
                fds.remove(f)
                if not fds:
                    return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["chat", "voip"], required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connect-port", type=int)
    ap.add_argument("--dtls", action="store_true")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    cport = a.connect_port or a.port
    proto = ["-dtls1_2"] if a.dtls else []
    srv = subprocess.Popen(["openssl", "s_server", "-quiet", "-naccept", "1", "-accept",
                            "127.0.0.1:%d" % a.port, "-cert", a.cert, "-key", a.key] + proto,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if not wait_port(a.port, a.dtls):
        srv.kill()
        sys.exit("talk.py: openssl s_server did not start on port %d" % a.port)
    if a.connect_port and not wait_port(cport, False):
        srv.kill()
        sys.exit("talk.py: nothing listens on the tunnel port %d" % cport)
    cli = subprocess.Popen(["openssl", "s_client", "-quiet", "-connect", "127.0.0.1:%d" % cport]
                           + proto, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # handshake
    ends = [cli, srv]

    def send(p, n):
        p.stdin.write(("".join(rng.choice("0123456789abcdef") for _ in range(n - 1)) + "\n").encode())
        p.stdin.flush()

    try:
        if a.mode == "chat":
            for _ in range(rng.randint(25, 70)):
                send(ends[rng.random() < 0.5], rng.randint(10, 300))
                time.sleep(rng.uniform(0.05, 0.6) * a.scale)
                drain(ends)
        else:
            dur = rng.uniform(0.8, 2.0) * a.scale
            t0 = time.time()
            k = 0
            # each side: talk spurts and short silences (comfort noise: smaller frames)
            quiet = [False, False]
            size = [rng.randint(60, 160), rng.randint(60, 160)]
            while time.time() - t0 < dur:
                for side in (0, 1):
                    if rng.random() < 0.02:
                        quiet[side] = not quiet[side]
                    send(ends[side], rng.randint(20, 30) if quiet[side] else size[side] + rng.randint(-8, 8))
                k += 1
                drain(ends)
                nxt = t0 + 0.02 * k
                time.sleep(max(0.0, nxt - time.time()))
        time.sleep(0.3)
        drain(ends)
    finally:
        for p in ends:
            try:
                p.stdin.close()
            except Exception:
                pass
        for p in (cli, srv):
            p.terminate()
        for p in (cli, srv):
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
