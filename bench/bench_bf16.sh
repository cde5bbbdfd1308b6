#!/usr/bin/env bash
# bf16 against fp32 (issue 13): training samples/s and inference packets/s of
# the CNNs (`deeppacket train --bench --precision fp32|bf16`), the two
# precisions alternating within each of REPEATS rounds so that load changes
# hit both; prints wall-clock and per-CPU-second rates and the bf16 / fp32
# ratios of each round. Needs a CPU with AVX512_BF16. Figures:
# docs/benchmarks.md ("bf16").
#
#   bench/bench_bf16.sh [BUILD_DIR] [STEPS] [THREADS] [REPEATS] [SPLIT_DIR] [TASKS] [BATCHES]
#
# Training and the first inference figures run on random full-length bytes;
# with SPLIT_DIR (a `deeppacket split` output) inference is timed again on
# the real packets of SPLIT_DIR/<task>_classification/test.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
STEPS=${2:-10}
THREADS=${3:-2}
REPEATS=${4:-3}
SPLIT=${5:-}
TASKS=${6:-app}
BATCHES=${7:-64}
DP="$BUILD/deeppacket"
[ -x "$DP" ] || { echo "bench_bf16: $DP not built (make BUILD=$BUILD)" >&2; exit 1; }
grep -qw avx512_bf16 /proc/cpuinfo || { echo "bench_bf16: this CPU has no avx512_bf16" >&2; exit 1; }
# "... train T samples/s, inference I packets/s (per CPU second: TC samples, IC packets)"
field() { sed -E "s/.*train ([0-9.]+) samples\/s, inference ([0-9.]+) packets\/s \(per CPU second: ([0-9.]+) samples, ([0-9.]+) packets\).*/\\$1/"; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
echo "# $(date -u '+%F %T') UTC, $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD 2>/dev/null || echo ?), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
printf "%-7s %5s %3s | %-27s | %-27s | %-27s | %-27s\n" task batch run "train samples/s fp32 bf16 x" \
  "per CPU s fp32 bf16 x" "infer packets/s fp32 bf16 x" "per CPU s fp32 bf16 x"
for task in $TASKS; do
  [ "$task" = app ] && dir=application_classification || dir=traffic_classification
  for b in $BATCHES; do
    for r in $(seq 1 "$REPEATS"); do
      f=$("$DP" train --bench "$STEPS" -t "$task" --batch-size "$b" -j "$THREADS" --precision fp32)
      h=$("$DP" train --bench "$STEPS" -t "$task" --batch-size "$b" -j "$THREADS" --precision bf16)
      line=$(printf "%-7s %5d %3d" "$task" "$b" "$r")
      for k in 1 3 2 4; do
        a=$(field "$k" <<<"$f"); c=$(field "$k" <<<"$h")
        line="$line | $(printf "%8.1f %8.1f %5sx" "$a" "$c" "$(ratio "$c" "$a")")"
      done
      echo "$line"
      if [ -n "$SPLIT" ]; then
        f=$("$DP" train --bench "$STEPS" -t "$task" --batch-size "$b" -j "$THREADS" --precision fp32 -d "$SPLIT/$dir/test")
        h=$("$DP" train --bench "$STEPS" -t "$task" --batch-size "$b" -j "$THREADS" --precision bf16 -d "$SPLIT/$dir/test")
        printf "%-7s %5d %3d | real packets: inference %8.1f %8.1f %5sx, per CPU s %8.1f %8.1f %5sx\n" "$task" "$b" "$r" \
          "$(field 2 <<<"$f")" "$(field 2 <<<"$h")" "$(ratio "$(field 2 <<<"$h")" "$(field 2 <<<"$f")")" \
          "$(field 4 <<<"$f")" "$(field 4 <<<"$h")" "$(ratio "$(field 4 <<<"$h")" "$(field 4 <<<"$f")")"
      fi
    done
  done
done
