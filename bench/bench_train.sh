#!/usr/bin/env bash
# Training samples/s and inference packets/s of both CNNs at batch 16 and 64:
# our C code (`deeppacket train --bench`) vs PyTorch 1.13 (bench/torch_model.py,
# torch.set_num_threads = the same thread count), same machine, same run,
# alternating C and PyTorch so that load changes hit both. Prints ratios
# (C / PyTorch; > 1 means C is faster). Figures: docs/bench-train.md.
#
#   bench/bench_train.sh [BUILD_DIR] [STEPS] [THREADS] [SPLIT_DIR]
#
# Training and the first inference columns run on random bytes (full-length
# packets: the worst case for our inference, which skips each packet's
# trailing zeros). With SPLIT_DIR (a `deeppacket split` output), inference is
# timed again on real packets: the same rows of
# SPLIT_DIR/<task>_classification/test on both sides.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
STEPS=${2:-20}
THREADS=${3:-2}
SPLIT=${4:-}
DP="$BUILD/deeppacket"
PY=/usr/bin/python3
[ -x "$DP" ] || { echo "bench_train: $DP not built (make BUILD=$BUILD)" >&2; exit 1; }
num() { sed -E "s/.*train ([0-9.]+) samples\/s, inference ([0-9.]+) packets\/s.*/\\$1/"; }
ratio() { echo "$1 / $2" | bc -l; }
echo "# $(date -u '+%F %T') UTC, $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
hdr="%-8s %5s | %10s %10s %6s | %10s %10s %6s"
row="%-8s %5d | %10.1f %10.1f %6.2f | %10.1f %10.1f %6.2f"
if [ -n "$SPLIT" ]; then
  hdr="$hdr | %10s %10s %6s"; row="$row | %10.1f %10.1f %6.2f"
  printf "$hdr\n" task batch "C train/s" "torch" ratio "C infer/s" torch ratio "C real/s" torch ratio
else
  printf "$hdr\n" task batch "C train/s" "torch" ratio "C infer/s" torch ratio
fi
for task in traffic app; do
  [ $task = app ] && dir=application_classification || dir=traffic_classification
  for b in 16 64; do
    c=$("$DP" train --bench "$STEPS" -t "$task" --batch-size "$b" -j "$THREADS")
    t=$($PY bench/torch_model.py --task "$task" --batch "$b" --steps "$STEPS" --threads "$THREADS")
    ct=$(num 1 <<<"$c"); ci=$(num 2 <<<"$c"); tt=$(num 1 <<<"$t"); ti=$(num 2 <<<"$t")
    if [ -n "$SPLIT" ]; then
      cr=$("$DP" train --bench "$STEPS" -t "$task" --batch-size "$b" -j "$THREADS" -d "$SPLIT/$dir/test" | num 2)
      tr=$($PY bench/torch_model.py --task "$task" --batch "$b" --steps "$STEPS" --threads "$THREADS" \
             --vectors "$SPLIT/$dir/test" | num 2)
      printf "$row\n" "$task" "$b" "$ct" "$tt" "$(ratio "$ct" "$tt")" "$ci" "$ti" "$(ratio "$ci" "$ti")" \
        "$cr" "$tr" "$(ratio "$cr" "$tr")"
    else
      printf "$row\n" "$task" "$b" "$ct" "$tt" "$(ratio "$ct" "$tt")" "$ci" "$ti" "$(ratio "$ci" "$ti")"
    fi
  done
done
