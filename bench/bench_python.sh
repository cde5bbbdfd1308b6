#!/usr/bin/env bash
# Python's Model.predict against the CLI's own inference on the same rows
# (issue 14's target: the Python call costs no more than 1.1x the CLI's
# inference time). One thread on both sides (`test -j 1`; the library's
# predict runs in the calling thread), ROUNDS alternating rounds, the
# traffic CNN trained for one epoch on iscx-sample (the weights do not
# change the cost). Prints each round and the ratio of the medians.
#   bench/bench_python.sh            # ROUNDS=3, W=/tmp/dp-bench-python
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=../shared/data/iscx-sample
[ -d "$SRC" ] || { echo "bench_python: skipped: $SRC is absent"; exit 0; }
W=${W:-/tmp/dp-bench-python}
ROUNDS=${ROUNDS:-3}
PY=/usr/bin/python3
make -s -j"$(nproc)" build/deeppacket build/libdeeppacket.so
dp=build/deeppacket
mkdir -p "$W"
[ -f "$W/ds/summary.json" ] || $dp preprocess -s "$SRC" -t "$W/ds" --labels "$SRC/labels.tsv" -q
T=$W/split/traffic_classification
[ -f "$T/test/classes.tsv" ] || $dp split -s "$W/ds" -t "$W/split" --task traffic > /dev/null
[ -f "$W/cnn.model" ] || $dp train -d "$T/train" -m "$W/cnn.model" -t traffic --epochs 1 -j 1 -q
cli=() py=()
for r in $(seq 1 "$ROUNDS"); do
  # the CLI: "packet level (N packets, X s, R packets/s)": the inference alone takes N / R
  c=$($dp test -d "$T/test" -m "$W/cnn.model" -o "$W/report" -j 1 |
      sed -nE 's/^packet level \(([0-9]+) packets, [0-9.]+ s, ([0-9.]+) packets\/s.*/\1 \2/p' |
      awk '{printf "%.3f %d", $1 / $2, $1}')
  p=$(PYTHONPATH=python DEEPPACKET_LIB=build/libdeeppacket.so $PY -c '
import sys, time, numpy as np, deeppacket
m = deeppacket.Model.load(sys.argv[1])
x = np.load(sys.argv[2] + "/vectors.npy")
t = time.perf_counter(); lp = m.predict(x); t = time.perf_counter() - t
print("%.3f %d" % (t, len(x)))' "$W/cnn.model" "$T/test")
  echo "round $r: CLI test -j 1: ${c% *} s for ${c#* } rows; Python predict: ${p% *} s for ${p#* } rows"
  cli+=("${c% *}") py+=("${p% *}")
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mc=$(med "${cli[@]}") mp=$(med "${py[@]}")
awk -v c="$mc" -v p="$mp" 'BEGIN {printf "median: CLI %.3f s, Python %.3f s: Python / CLI = %.2fx (target <= 1.1x)\n", c, p, p / c}'
