#!/usr/bin/env bash
# Live capture loss on `lo` (docs/bench-classify.md, "Live capture on lo"):
# runs `deeppacket classify -i lo --per flow` while build/udp_flood sends
# COUNT UDP packets of 90-1,290 bytes over 100 flows to 127.0.0.1 at RATE
# packets/s, then prints how many the classifier saw. Needs root (live
# capture). Bounded: COUNT <= 10,000,000, only loopback traffic.
#
#   bench/bench_live_loss.sh MODEL [COUNT [RATE [classify options...]]]
#
# Environment: BUILD (default build), PORT (first destination port, 40000).
set -eu
BUILD=${BUILD:-build}
PORT=${PORT:-40000}
[ $# -ge 1 ] || { echo "usage: $0 MODEL [COUNT [RATE [classify options...]]]" >&2; exit 2; }
MODEL=$1 COUNT=${2:-100000} RATE=${3:-20000}
shift $(( $# < 3 ? $# : 3 ))
[ "$(id -u)" -eq 0 ] || { echo "$0: live capture needs root" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'cat "$TMP/err" >&2; rm -rf "$TMP"' EXIT
"$BUILD/deeppacket" classify -m "$MODEL" -i lo --per flow \
  -f "udp and dst portrange $PORT-$((PORT + 99))" "$@" >"$TMP/v.jsonl" 2>"$TMP/err" &
pid=$!
for _ in $(seq 200); do grep -q listening "$TMP/err" && break; sleep 0.05; done
"$BUILD/udp_flood" -n "$COUNT" -r "$RATE" -p "$PORT" -f 100 -s 90 -S 1290
sleep 1
kill -TERM "$pid"
wait "$pid" || true
seen=$(sed -nE 's/.*classify: ([0-9]+) packets seen.*/\1/p' "$TMP/err")
grep -o 'kernel: [0-9]* received, [0-9]* dropped' "$TMP/err" || true
awk -v s="$seen" -v n="$COUNT" 'BEGIN { printf "seen %d of %d: %.3f%%\n", s, n, 100 * s / n }'
