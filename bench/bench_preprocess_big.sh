#!/usr/bin/env bash
# Benchmark of one big capture and of sharded preprocessing (issue 13; run
# on demand, not in CI).
#
#   make BUILD=build -j2 && BUILD=build bench/bench_preprocess_big.sh > /tmp/bench-big.md
#
# 1. Writes ONE pcap of >= MIN_FRAMES frames (default 1,000,000) under /tmp
#    by concatenating the frames of ../shared/data/iscx-sample's captures
#    (all raw IP, microsecond pcap) over and over, and preprocesses it with
#    -j1 and -j2, alternating, REPEATS times each (default 5): best and
#    median wall time, CPU seconds (user + system), frames/s. With OLD_BIN
#    set (another build of deeppacket), that binary is measured in the same
#    rounds, for a before/after under the same load. The -j1 and -j2
#    datasets are compared byte for byte.
# 2. Copies iscx-sample K times (copies: preprocess reads a file reached
#    through two links once) to >= MIN_FRAMES frames, preprocesses it whole and in SHARDS shards (default
#    4, one after the other, -j2 each) and merges them: times, and cmp of
#    every output file of the merge against the whole run.
#
# The captures come from the page cache; the outputs are written to /tmp
# (direct I/O for vectors.npy) and fsync'd. Prints markdown on stdout.
# Environment: BUILD, OLD_BIN, MIN_FRAMES, REPEATS, SHARDS, DP_SHARED_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$BUILD/deeppacket
OLD_BIN=${OLD_BIN:-}
DATA=${DP_SHARED_DATA:-../shared/data}
SAMPLE=$DATA/iscx-sample
MIN_FRAMES=${MIN_FRAMES:-1000000}
REPEATS=${REPEATS:-5}
SHARDS=${SHARDS:-4}
PY=/usr/bin/python3
OUTS="vectors.npy app.npy traffic.npy meta.npy files.tsv labels.tsv summary.md summary.json"

[ -x "$BIN" ] || { echo "bench_preprocess_big: no $BIN (make BUILD=$BUILD first)" >&2; exit 1; }
[ -d "$SAMPLE" ] || { echo "bench_preprocess_big: $SAMPLE is absent; skipped" >&2; exit 0; }
[ -x /usr/bin/time ] || { echo "bench_preprocess_big: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/dp-bench-big.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SAMPLE_ABS=$(cd "$SAMPLE" && pwd)

# one pcap of >= MIN_FRAMES frames from the sample's captures
mkdir -p "$WORK/big"
FRAMES=$($PY - "$WORK/big/big.pcap" "$MIN_FRAMES" "$SAMPLE_ABS"/*.pcap <<'EOF'
import struct, sys
out, want, files = sys.argv[1], int(sys.argv[2]), sorted(sys.argv[3:])
n, head = 0, None
with open(out, 'wb') as o:
    while n < want:
        for f in files:
            b = open(f, 'rb').read()
            if head is None:
                head = b[:24]
                o.write(head)
            if b[:4] != head[:4] or b[20:24] != head[20:24]:
                continue  # another byte order, precision or link type
            o.write(b[24:])
            off = 24
            while off + 16 <= len(b):
                off += 16 + struct.unpack_from('<I', b, off + 8)[0]
                n += 1
print(n)
EOF
)
MB=$(du -m "$WORK/big/big.pcap" | cut -f1)

# run BIN J SRC OUT -> "wall cpu"
run() {
    rm -rf "$4"
    sync
    /usr/bin/time -f '%e %U %S' -o "$WORK/t" "$1" preprocess -q -s "$3" -t "$4" -j "$2" >/dev/null 2>"$WORK/err" ||
        { echo "bench_preprocess_big: $1 preprocess failed:" >&2; cat "$WORK/err" >&2; exit 1; }
    awk '{printf "%s %.2f\n", $1, $2 + $3}' "$WORK/t"
}

echo "## One big capture and sharded preprocessing"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(lscpu | sed -nE 's/^Model name: +//p' | head -1), $(nproc) CPUs online; /tmp on $(df -T /tmp | awk 'NR==2 {print $2}')"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (shared machine: wall times are noisy, CPU seconds less so)"
echo "- binary: $BIN ($(git log -1 --format=%h 2>/dev/null || echo '?'))${OLD_BIN:+, before: $OLD_BIN}"
echo
echo "### One capture: $FRAMES frames, $MB MB (iscx-sample's frames concatenated), $REPEATS rounds"
echo
: >"$WORK/res"
for _ in $(seq 1 "$REPEATS"); do
    for b in $BIN $OLD_BIN; do
        for j in 1 2; do
            echo "$b $j $(run "$b" "$j" "$WORK/big" "$WORK/out-$j")" >>"$WORK/res"
        done
    done
done
for f in $OUTS; do cmp -s "$WORK/out-1/$f" "$WORK/out-2/$f" || echo "**$f differs between -j1 and -j2**"; done
echo "| binary | -j | best s | median s | best frames/s | median frames/s | CPU s (median) | frames per CPU s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
$PY - "$WORK/res" "$FRAMES" <<'EOF'
import collections, statistics, sys
runs, frames = collections.OrderedDict(), int(sys.argv[2])
for line in open(sys.argv[1]):
    b, j, w, c = line.split()
    runs.setdefault((b, j), []).append((float(w), float(c)))
for (b, j), v in runs.items():
    w = [x[0] for x in v]; c = statistics.median(x[1] for x in v)
    print("| %s | %s | %.2f | %.2f | %.0f | %.0f | %.2f | %.0f |" % (b, j, min(w), statistics.median(w),
          frames / min(w), frames / statistics.median(w), c, frames / c))
EOF
echo
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
echo

# sharded: K copies of the sample, whole vs SHARDS shards + merge
K=$(( (MIN_FRAMES + 115237) / 115238 ))
for i in $(seq 1 "$K"); do
    mkdir -p "$WORK/rep/r$i"
    cp "$SAMPLE_ABS"/*.pcap "$WORK/rep/r$i/"
done
read -r W_WALL W_CPU <<<"$(run "$BIN" 2 "$WORK/rep" "$WORK/whole")"
S_WALL=0 S_CPU=0 SH=()
for i in $(seq 0 $((SHARDS - 1))); do
    rm -rf "$WORK/shard-$i"
    /usr/bin/time -f '%e %U %S' -o "$WORK/t" "$BIN" preprocess -q -s "$WORK/rep" -t "$WORK/shard-$i" -j 2 \
        --shard "$i/$SHARDS" >/dev/null 2>"$WORK/err"
    read -r w u s <"$WORK/t"
    S_WALL=$(awk -v a="$S_WALL" -v b="$w" 'BEGIN{print a + b}')
    S_CPU=$(awk -v a="$S_CPU" -v b="$u" -v c="$s" 'BEGIN{print a + b + c}')
    SH+=("$WORK/shard-$i")
done
rm -rf "$WORK/merged"
sync
/usr/bin/time -f '%e %U %S' -o "$WORK/t" "$BIN" merge -q -t "$WORK/merged" "${SH[@]}" >"$WORK/line" 2>"$WORK/err"
read -r M_WALL mu ms <"$WORK/t"
SAME=yes
for f in $OUTS; do cmp -s "$WORK/whole/$f" "$WORK/merged/$f" || SAME="no: $f differs"; done
ROWS=$(sed -E 's/.*: ([0-9]+) packets.*/\1/' "$WORK/line")
echo "### Shards: iscx-sample copied ${K}x ($ROWS kept packets), $SHARDS shards one after the other"
echo
echo "| step | wall s | CPU s |"
echo "|---|---:|---:|"
echo "| preprocess whole, -j2 | $W_WALL | $W_CPU |"
echo "| preprocess $SHARDS shards (sum), -j2 each | $S_WALL | $S_CPU |"
echo "| merge | $M_WALL | $(awk -v a="$mu" -v b="$ms" 'BEGIN{printf "%.2f", a + b}') |"
echo
echo "Merged dataset byte-identical to the whole run (all 8 files): $SAME."
