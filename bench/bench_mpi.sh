#!/usr/bin/env bash
# Data-parallel training on one machine: `mpirun --oversubscribe -np 2` with
# one thread per rank against one process with two threads (the same two
# cores), the same global batch, seed and STEPS optimiser steps of the
# reference CNN. Prints each run's training rate (samples/s between step 10
# and the last, from --loss-log's time column: start-up left out), their
# ratio (target >= 0.85), and the largest relative difference of the loss
# curves: of the 2 ranks against one process with one thread (the same
# kernels per rank: float rounding of the sums), and, for scale, of one
# process with two threads against one thread (the kernels round otherwise,
# and 200 Adam steps amplify it). Figures: docs/distributed.md.
#
#   bench/bench_mpi.sh [DATA_DIR] [STEPS] [BATCHES] [TASK]
#
# DATA_DIR: a split or dataset folder (default /work/data/iscx-ds, else
# ../shared/data's preprocessed copy); BATCHES: global batch sizes ("16 64").
# Needs the MPI build: make -j2 MPI=1 (build-mpi/deeppacket). BALANCE (default
# none: every row of the set in epoch order, as docs/distributed.md's figures)
# is passed as --balance; train's default on a dataset folder, auto, samples
# classes evenly, and its draws amplify rounding sooner (docs/distributed.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-/work/data/iscx-ds}
STEPS=${2:-200}
BATCHES=${3:-16 64}
TASK=${4:-traffic}
DP=${DP:-build-mpi/deeppacket}
[ -x "$DP" ] || { echo "bench_mpi: $DP not built (make -j2 MPI=1)" >&2; exit 1; }
command -v mpirun > /dev/null || { echo "bench_mpi: no mpirun (Debian openmpi-bin)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
MPIRUN=(mpirun --oversubscribe --bind-to none -np 2)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
# samples/s between step 10 and the last step of a loss log, at batch $2
rate() { awk -v b="$2" '$1 == "train" { n++; if (n == 10) t0 = $5; t = $5 } END { printf "%.1f", (n - 10) * b / (t - t0) }' "$1"; }
# largest |a - b| / max(|a|, 1e-3) over the two logs' losses
curve_diff() {
  paste "$1" "$2" | awk -F'\t' 'NR > 1 { d = $4 - $9; if (d < 0) d = -d; a = $4 < 0 ? -$4 : $4; if (a < 1e-3) a = 1e-3;
    if (d / a > m) m = d / a; n++ } END { printf "%.2e over %d steps", m, n }'
}
echo "# $(date -u '+%F %T') UTC, $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg), $(git rev-parse --short HEAD)"
echo "# $TASK CNN on $DATA, $STEPS steps, --balance ${BALANCE:-none}, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
printf "%5s | %14s | %15s | %5s | %s\n" batch "1 proc x 2 thr" "2 ranks x 1 thr" ratio \
  "loss curves, max relative difference: 2 ranks vs 1 proc x 1 thr; 1 proc 2 thr vs 1 thr"
for b in $BATCHES; do
  args=(train -d "$DATA" -t "$TASK" --batch-size "$b" --max-steps "$STEPS" -q --balance "${BALANCE:-none}")
  "$DP" "${args[@]}" -j 2 -m "$out/one.dpm" --loss-log "$out/one.tsv"
  "${MPIRUN[@]}" "$DP" "${args[@]}" -j 1 -m "$out/two.dpm" --loss-log "$out/two.tsv"
  "$DP" "${args[@]}" -j 1 -m "$out/one1.dpm" --loss-log "$out/one1.tsv"
  r1=$(rate "$out/one.tsv" "$b"); r2=$(rate "$out/two.tsv" "$b")
  printf "%5d | %14s | %15s | %5.2f | %s; %s\n" "$b" "$r1" "$r2" "$(echo "$r2 / $r1" | bc -l)" \
    "$(curve_diff "$out/one1.tsv" "$out/two.tsv")" "$(curve_diff "$out/one1.tsv" "$out/one.tsv")"
  rm -f "$out"/*.ckpt
done
