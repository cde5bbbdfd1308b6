#!/usr/bin/env bash
# Benchmark of `deeppacket preprocess` (run on demand, not in CI).
#
# Replays ../shared/data/iscx-sample (symlinks in a temp folder under /tmp,
# each copy in its own subfolder) until it holds >= MIN_FRAMES frames, then
# preprocesses it with -j1 and -j2 (best of REPEATS), and once more with 4x
# the input to show that peak RSS does not grow with the input. Then runs
# bench/scapy_transform.py (the reference's per-packet transform in
# Python/scapy) over the first SCAPY_FRAMES frames, checks that its vectors
# equal ours, and prints the speed ratio per core.
#
#   make BUILD=build -j2 && BUILD=build bench/bench_preprocess.sh
#
# Environment: BUILD (default build), MIN_FRAMES (1000000), REPEATS (3),
# SCAPY_FRAMES (20000), NICE (default "nice -n 5"; "" for none),
# DP_SHARED_DATA (default ../shared/data).
# Prints a markdown report on stdout. The captures come from the page cache
# (symlinks to the same files), so this measures the pipeline, not the disk
# it reads from; the output is written to /tmp and fsync'd at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$BUILD/deeppacket
DATA=${DP_SHARED_DATA:-../shared/data}
SAMPLE=$DATA/iscx-sample
MIN_FRAMES=${MIN_FRAMES:-1000000}
REPEATS=${REPEATS:-3}
SCAPY_FRAMES=${SCAPY_FRAMES:-20000}
NICE=${NICE-nice -n 5}
PY=/usr/bin/python3

[ -x "$BIN" ] || { echo "bench_preprocess: no $BIN (make BUILD=$BUILD first)" >&2; exit 1; }
[ -d "$SAMPLE" ] || { echo "bench_preprocess: $SAMPLE is absent; skipped" >&2; exit 0; }
[ -x /usr/bin/time ] || { echo "bench_preprocess: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/dp-bench-pre.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
LABELS=$SAMPLE/labels.tsv
SAMPLE_ABS=$(cd "$SAMPLE" && pwd)

# replay DIR K: K symlinked copies of the sample's captures
replay() {
    local dir=$1 k=$2
    mkdir -p "$dir"
    for i in $(seq 1 "$k"); do
        mkdir -p "$dir/r$i"
        for f in "$SAMPLE_ABS"/*.pcap; do ln -s "$f" "$dir/r$i/"; done
    done
}

# one run: SRC THREADS -> sets R_* from the closing line and /usr/bin/time
one_run() {
    local src=$1 j=$2
    rm -rf "$WORK/out"
    sync
    $NICE /usr/bin/time -v -o "$WORK/time.txt" "$BIN" preprocess -q -s "$src" -t "$WORK/out" \
        -j "$j" --labels "$LABELS" >"$WORK/line.txt" 2>"$WORK/err.txt" || {
        echo "bench_preprocess: preprocess failed:" >&2; cat "$WORK/err.txt" >&2; exit 1; }
    local line
    line=$(cat "$WORK/line.txt")
    R_KEPT=$(sed -E 's/.*: ([0-9]+) packets kept of ([0-9]+) frames.*/\1/' <<<"$line")
    R_FRAMES=$(sed -E 's/.* packets kept of ([0-9]+) frames.*/\1/' <<<"$line")
    R_MB=$(sed -E 's/.*captures \(([0-9.]+) MB;.*/\1/' <<<"$line")
    R_SEC=$(sed -E 's/.* in ([0-9.]+) s \(reading.*/\1/' <<<"$line")
    R_READ=$(sed -E 's/.*\(reading ([0-9.]+) s,.*/\1/' <<<"$line")
    R_MERGE=$(sed -E 's/.*merge tail ([0-9.]+) s\).*/\1/' <<<"$line")
    R_RSS=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$WORK/time.txt")
    R_CPU=$(awk -F': ' '/User time|System time/ {t += $2} END {printf "%.2f", t}' "$WORK/time.txt")
}

# best of REPEATS (shortest total time)
best_run() {
    local src=$1 j=$2 best=""
    for _ in $(seq 1 "$REPEATS"); do
        one_run "$src" "$j"
        if [ -z "$best" ] || awk "BEGIN{exit !($R_SEC < $best)}"; then
            best=$R_SEC
            B_KEPT=$R_KEPT B_FRAMES=$R_FRAMES B_MB=$R_MB B_SEC=$R_SEC B_READ=$R_READ
            B_MERGE=$R_MERGE B_RSS=$R_RSS B_CPU=$R_CPU
        fi
    done
}

row() { # label threads
    awk -v l="$1" -v j="$2" -v f="$B_FRAMES" -v k="$B_KEPT" -v mb="$B_MB" -v s="$B_SEC" \
        -v r="$B_READ" -v m="$B_MERGE" -v rss="$B_RSS" -v cpu="$B_CPU" 'BEGIN {
        printf "| %s | %d | %d | %d | %.0f | %.2f | %.2f | %.2f | %.0f | %.0f | %.0f | %.1f | %.2f | %.0f | %.1f |\n",
            l, j, f, k, mb, s, r, m, f / s, k / s, f / r, mb / s, cpu, f / cpu, rss }'
}

echo "## deeppacket preprocess benchmark"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(lscpu | sed -nE 's/^Model name: +//p' | head -1), $(nproc) CPUs online, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM; /tmp on $(df -T /tmp | awk 'NR==2 {print $2}')"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (shared machine: figures are noisy)"
echo "- binary: $BIN ($(git log -1 --format=%h 2>/dev/null || echo '?')), runs under: ${NICE:-(no nice)}"
echo

# 1x: frame count of one copy, warm-up, and the dataset for the parity check
replay "$WORK/in1" 1
one_run "$WORK/in1" 1
FRAMES_1X=$R_FRAMES
mv "$WORK/out" "$WORK/ds1x"
K=$(( (MIN_FRAMES + FRAMES_1X - 1) / FRAMES_1X ))
replay "$WORK/inK" "$K"
replay "$WORK/in4K" $((4 * K))
echo "Input: iscx-sample ($FRAMES_1X frames, 41 captures) replayed ${K}x and $((4 * K))x (symlinks)."
echo "Best of $REPEATS runs for ${K}x; one run for $((4 * K))x."
echo
echo "| input | -j | frames | kept | capture MB | total s | reading s | merge tail s | frames/s | kept/s | frames/s reading | MB/s | CPU s | frames per CPU s | peak RSS MB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
best_run "$WORK/inK" 1
row "${K}x" 1
J1_FPS=$(awk -v f="$B_FRAMES" -v s="$B_SEC" 'BEGIN{print f/s}')
J1_RFPS=$(awk -v f="$B_FRAMES" -v s="$B_READ" 'BEGIN{print f/s}')
J1_RSS=$B_RSS
J1_CPS=$(awk -v f="$B_FRAMES" -v c="$B_CPU" 'BEGIN{print f/c}')
best_run "$WORK/inK" 2
row "${K}x" 2
J2_FPS=$(awk -v f="$B_FRAMES" -v s="$B_SEC" 'BEGIN{print f/s}')
J2_RFPS=$(awk -v f="$B_FRAMES" -v s="$B_READ" 'BEGIN{print f/s}')
J2_RSS=$B_RSS
J2_CPS=$(awk -v f="$B_FRAMES" -v c="$B_CPU" 'BEGIN{print f/c}')
REPEATS=1 best_run "$WORK/in4K" 2
row "$((4 * K))x" 2
J2_4X_RSS=$B_RSS
rm -rf "$WORK/out"
echo
echo "Peak RSS -j2: ${J2_RSS} MB at ${K}x, ${J2_4X_RSS} MB at $((4 * K))x (flat: memory does not grow with the input)."
echo

# scapy baseline on the first SCAPY_FRAMES frames, in dataset order
mapfile -t CAPS < <(ls "$SAMPLE_ABS"/*.pcap | LC_ALL=C sort)
if $PY -c 'import scapy, numpy' 2>/dev/null; then
    SC=$($NICE $PY bench/scapy_transform.py --max-frames "$SCAPY_FRAMES" -o "$WORK/scapy.bin" "${CAPS[@]}")
    SC_CPS=$(sed -E 's/.*frames_per_cpu_s=([0-9.]+).*/\1/' <<<"$SC")
    SC_FPS=$(sed -E 's/.*frames_per_s=([0-9.]+).*/\1/' <<<"$SC")
    SC_KEPT=$(sed -E 's/.*kept=([0-9]+).*/\1/' <<<"$SC")
    PARITY=$($PY - "$WORK/scapy.bin" "$WORK/ds1x/vectors.npy" "$SC_KEPT" <<'EOF'
import sys, numpy as np
s = np.fromfile(sys.argv[1], dtype=np.uint8).reshape(-1, 1500)
v = np.load(sys.argv[2], mmap_mode='r')[:int(sys.argv[3])]
print("identical" if s.shape == v.shape and (s == v).all() else
      "DIFFERENT (%d of %d rows)" % (int((s != v).any(1).sum()) if s.shape == v.shape else -1, len(s)))
EOF
)
    # the same with the reference's own last per-packet step (sparse float row)
    SCS_CPS=0
    if $PY -c 'import scipy' 2>/dev/null; then
        SCS=$($NICE $PY bench/scapy_transform.py --sparse --max-frames "$SCAPY_FRAMES" "${CAPS[@]}")
        SCS_CPS=$(sed -E 's/.*frames_per_cpu_s=([0-9.]+).*/\1/' <<<"$SCS")
        echo "scapy + sparse row (the reference's whole transform_packet, 1 core): $SCS"
    fi
    echo "scapy baseline (bench/scapy_transform.py, 1 core): $SC"
    echo "Its $SC_KEPT vectors vs the first $SC_KEPT rows of our dataset: $PARITY."
    echo
    awk -v c1="$J1_FPS" -v r1="$J1_RFPS" -v c2="$J2_FPS" -v r2="$J2_RFPS" -v s="$SC_FPS" \
        -v p1="$J1_CPS" -v p2="$J2_CPS" -v ps="$SC_CPS" -v pss="$SCS_CPS" 'BEGIN {
        printf "| per core, frames/s | deeppacket | scapy | ratio |\n|---|---:|---:|---:|\n"
        printf "| -j1 frames per CPU second | %.0f | %.0f | %.0fx |\n", p1, ps, p1 / ps
        printf "| -j2 frames per CPU second | %.0f | %.0f | %.0fx |\n", p2, ps, p2 / ps
        printf "| -j1 end to end | %.0f | %.0f | %.0fx |\n", c1, s, c1 / s
        printf "| -j1 reading phase | %.0f | %.0f | %.0fx |\n", r1, s, r1 / s
        printf "| -j2 end to end / 2 | %.0f | %.0f | %.0fx |\n", c2 / 2, s, c2 / 2 / s
        printf "| -j2 reading phase / 2 | %.0f | %.0f | %.0fx |\n", r2 / 2, s, r2 / 2 / s
        if (pss > 0)
            printf "| -j1 frames per CPU second vs scapy + sparse row | %.0f | %.0f | %.0fx |\n", p1, pss, p1 / pss
    }'
else
    echo "scapy baseline skipped: /usr/bin/python3 with scapy and numpy is not available"
fi
