#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the test suite,
# the same suite under ASan+UBSan, the ONNX export and PyTorch import end-to-end
# tests (tests/onnx/run.sh, tests/import_torch/run.sh),
# and a short fuzz run of the six fuzz targets,
# then prints one closing line for all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
make -j"$(nproc)" all
make check 2>&1 | tee "$log/check"
make -j"$(nproc)" asan 2>&1 | tee "$log/asan"
tests/onnx/run.sh 2>&1 | tee "$log/onnx"
tests/import_torch/run.sh 2>&1 | tee "$log/import"
make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}" > "$log/fuzz" 2>&1 || { tail -n 50 "$log/fuzz"; echo "fuzz: FAILED"; exit 1; }
grep -E '^(Done|#[0-9]+ *DONE)' "$log/fuzz" | grep -v '^#' | sed 's/^/fuzz: /'
sum() { grep -hE '^(tests|onnx|import_torch): ' "$@" | awk '{p+=$2; f+=$4; s+=$6} END {printf "%d %d %d", p, f, s}'; }
read -r p1 f1 s1 <<<"$(sum "$log/check")"
read -r p2 f2 s2 <<<"$(sum "$log/asan" "$log/onnx" "$log/import")"
echo "suite (plain + ASan/UBSan + ONNX export + PyTorch import end to end), fuzz run clean:"
echo "tests: $((p1 + p2)) passed, $((f1 + f2)) failed, $((s1 + s2)) skipped"
