#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the test suite,
# the same suite under ASan+UBSan, and a short fuzz run of the packet parser.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j"$(nproc)" all
make check
make -j"$(nproc)" asan
make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
