#!/usr/bin/env bash
# The GBT trained by `mpirun --oversubscribe -np 2` with one thread per rank
# (XGBoost's rabit communicator, deeppacket's tracker) against one process
# with two threads, the same flows, seeds and settings: the training time of
# each, their ratio, and each model's per-flow weighted F1 and VPN accuracy
# on the test side. Figures: docs/distributed.md ("GBT").
#
#   bench/bench_mpi_gbt.sh SPLIT_DIR [SEEDS] [TASK]
#
# SPLIT_DIR: a split folder with <task>_classification/{train,test}, e.g.
# bench/accuracy_unseen.sh's cap split; SEEDS ("1 2"); TASK (traffic).
# Needs both builds: make -j2 && make -j2 MPI=1.
set -euo pipefail
cd "$(dirname "$0")/.."
SPLIT=${1:?usage: bench/bench_mpi_gbt.sh SPLIT_DIR [SEEDS] [TASK]}
SEEDS=${2:-1 2}
TASK=${3:-traffic}
TR=$SPLIT/${TASK}_classification/train
TE=$SPLIT/${TASK}_classification/test
for b in build/deeppacket build-mpi/deeppacket; do
  [ -x "$b" ] || { echo "bench_mpi_gbt: $b not built (make -j2 && make -j2 MPI=1)" >&2; exit 1; }
done
command -v mpirun > /dev/null || { echo "bench_mpi_gbt: no mpirun (Debian openmpi-bin)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
MPIRUN=(mpirun --oversubscribe --bind-to none -np 2)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
GBT=(train -q -d "$TR" -t "$TASK" --model gbt --colsample 0.8)
# seconds of wall clock that "$@" takes
timed() { local t0; t0=$(date +%s.%N); "$@"; awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }'; }
# "wF1 / VPN" of model $1 on the test side
scores() {
  build/deeppacket test -q -d "$TE" -m "$1" -o "$1.report" -j 2 2>/dev/null |
    awk '/Wtd. Average/ { w = $(NF - 3) } /^VPN vs non-VPN/ { v = $5 } END { printf "%.4f / %s", w, v ? v : "-" }'
}
echo "## GBT, one process x 2 threads against mpirun -np 2 x 1 thread, $TASK, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| seed | one process: s | wF1 / VPN | 2 ranks: s | wF1 / VPN | time ratio (one / two) |"
echo "|---:|---:|---|---:|---|---:|"
for s in $SEEDS; do
  t1=$(timed build/deeppacket "${GBT[@]}" -m "$out/one-$s.dpm" --seed "$s" -j 2)
  t2=$(timed "${MPIRUN[@]}" build-mpi/deeppacket "${GBT[@]}" -m "$out/two-$s.dpm" --seed "$s" -j 1)
  printf '| %s | %.1f | %s | %.1f | %s | %.2f |\n' "$s" "$t1" "$(scores "$out/one-$s.dpm")" "$t2" \
    "$(scores "$out/two-$s.dpm")" "$(awk -v a="$t1" -v b="$t2" 'BEGIN { print a / b }')"
done
