#!/usr/bin/env bash
# Training samples/s and inference packets/s of both CNNs at batch 16 and 64:
# our C code (`deeppacket train --bench`) vs PyTorch 1.13 (bench/torch_model.py,
# torch.set_num_threads = the same thread count), same machine, same run,
# alternating C and PyTorch so that load changes hit both. Prints ratios
# (C / PyTorch; > 1 means C is faster). Figures: docs/bench-train.md.
#
#   bench/bench_train.sh [BUILD_DIR] [STEPS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
STEPS=${2:-20}
THREADS=${3:-2}
DP="$BUILD/deeppacket"
PY=/usr/bin/python3
[ -x "$DP" ] || { echo "bench_train: $DP not built (make BUILD=$BUILD)" >&2; exit 1; }
num() { sed -E "s/.*train ([0-9.]+) samples\/s, inference ([0-9.]+) packets\/s.*/\\$1/"; }
printf "%-8s %5s | %10s %10s %6s | %10s %10s %6s\n" task batch "C train/s" "torch" ratio "C infer/s" torch ratio
for task in traffic app; do
  for b in 16 64; do
    c=$("$DP" train --bench "$STEPS" -t "$task" --batch-size "$b" -j "$THREADS")
    t=$($PY bench/torch_model.py --task "$task" --batch "$b" --steps "$STEPS" --threads "$THREADS")
    ct=$(num 1 <<<"$c"); ci=$(num 2 <<<"$c"); tt=$(num 1 <<<"$t"); ti=$(num 2 <<<"$t")
    printf "%-8s %5d | %10.1f %10.1f %6.2f | %10.1f %10.1f %6.2f\n" "$task" "$b" "$ct" "$tt" \
      "$(echo "$ct / $tt" | bc -l)" "$ci" "$ti" "$(echo "$ci / $ti" | bc -l)"
  done
done
