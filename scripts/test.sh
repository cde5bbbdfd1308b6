#!/usr/bin/env bash
# The test command: installs what is missing, builds (program, static and
# shared library), runs the test suite, the library's install check
# (scripts/test-install.sh), the Python package's tests (pytest), the
# suite under ASan+UBSan, the MPI build's 2-rank test (test_dist), the ONNX
# export and PyTorch import end-to-end tests (tests/onnx/run.sh,
# tests/import_torch/run.sh) and a short fuzz run of the eight fuzz targets,
# then prints one closing line for all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
make -j"$(nproc)" all
make -j"$(nproc)" tools   # the on-demand benchmarks and tools: built, not run
make check 2>&1 | tee "$log/check"
bash scripts/test-install.sh
/usr/bin/python3 -m pytest -q -p no:cacheprovider python/tests 2>&1 | tee "$log/pytest"
make -j"$(nproc)" asan 2>&1 | tee "$log/asan"
# the threaded tests under ThreadSanitizer (build-tsan/; about a minute)
make -j"$(nproc)" tsan 2>&1 | tee "$log/tsan"
sed -nE 's/^test_[a-z_0-9]+: ([0-9]+ passed, [0-9]+ failed, [0-9]+ skipped)$/tests: \1/p' "$log/tsan" > "$log/tsan-sum"
# data-parallel training: the MPI build (build-mpi/) of the binary and of
# test_dist, which runs `mpirun -np 2 deeppacket train` against one process
make -j"$(nproc)" MPI=1 build-mpi/deeppacket build-mpi/tests/test_dist
BUILD=build-mpi build-mpi/tests/test_dist 2>&1 | tee "$log/mpi-run"
sed -nE 's/^.*: ([0-9]+ passed, [0-9]+ failed, [0-9]+ skipped)$/tests: \1/p' "$log/mpi-run" > "$log/mpi"
tests/onnx/run.sh 2>&1 | tee "$log/onnx"
tests/import_torch/run.sh 2>&1 | tee "$log/import"
make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}" > "$log/fuzz" 2>&1 || { tail -n 50 "$log/fuzz"; echo "fuzz: FAILED"; exit 1; }
grep -E '^(Done|#[0-9]+ *DONE)' "$log/fuzz" | grep -v '^#' | sed 's/^/fuzz: /'
sum() { grep -hE '^(tests|onnx|import_torch): ' "$@" | awk '{p+=$2; f+=$4; s+=$6} END {printf "%d %d %d", p, f, s}'; }
read -r p1 f1 s1 <<<"$(sum "$log/check")"
read -r p2 f2 s2 <<<"$(sum "$log/asan" "$log/onnx" "$log/import")"
read -r p4 f4 s4 <<<"$(sum "$log/mpi" "$log/tsan-sum")"
pyt() { grep -oE "[0-9]+ $1" "$log/pytest" | tail -n 1 | cut -d' ' -f1 || true; }
p3=$(pyt passed) s3=$(pyt skipped)
echo "suite (plain + ASan/UBSan + TSan + Python + MPI build's test_dist + ONNX export + PyTorch import), install check and fuzz run clean:"
echo "tests: $((p1 + p2 + ${p3:-0} + p4)) passed, $((f1 + f2 + f4)) failed, $((s1 + s2 + ${s3:-0} + s4)) skipped"
