#!/usr/bin/env bash
# Installs the Debian packages one job of deeppacket needs, and no more.
#
#   scripts/install-deps.sh GROUP...      e.g. `install-deps.sh build test`
#
# Groups (each job names the ones it uses; a package goes in the group of the
# job that runs it):
#   build   compile the program, the library and the tests (make all)
#   run     run a built binary elsewhere (the shared libraries it loads)
#   test    the test suite, the ASan/UBSan build and the fuzz run
#           (scripts/test.sh, .ci/run); includes build
#   demo    scripts/demo.sh: build + what the demo itself runs
#   corpus  scripts/make-corpus.sh: build + the programs that make the
#           corpus's traffic (OpenSSH server and client, openssl, curl)
# Idempotent: does nothing when they are all present. Needs root or sudo only
# when something is missing.
set -euo pipefail

BUILD=(build-essential pkg-config libpcap-dev libopenblas-dev libdnnl-dev libcairo2-dev libxgboost-dev)
RUN=(libpcap0.8 libopenblas0-pthread libdnnl2 libcairo2 libxgboost0)
# clang + its runtime: ASan/UBSan and libFuzzer; python3-numpy: the .npy
# cross-checks; python3: JSON checks; groff-base + man-db: the man page
# check; chromium: the HTML report renders in a real browser; python3-pytest:
# the Python package's tests; libsystemd-dev: the install check links
# libdeeppacket.a with `pkg-config --static` (libpcap's dbus-1 wants
# -lsystemd); libopenmpi-dev + openmpi-bin: the MPI build's 2-rank test
# (`make MPI=1`, docs/distributed.md);
# python3-onnx, nodejs, npm: the ONNX export test (tests/onnx/run.sh: the onnx
# checker, ONNX Runtime for Node.js from npm); python3-torch:
# tools/import_torch.py's test (tests/import_torch/run.sh); python3-sklearn:
# tests/check_report.py, the scikit-learn oracle of `test`'s reports (run by
# test_eval and test_flowtrain)
TEST=(clang libclang-rt-14-dev python3 python3-numpy groff-base man-db chromium
      python3-pytest libsystemd-dev libopenmpi-dev openmpi-bin
      python3-onnx nodejs npm python3-torch python3-sklearn)
# python3: the side-by-side scores at the end of the demo
DEMO=(python3 python3-numpy)
CORPUS=(openssh-server openssh-client openssl curl python3 iproute2)

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[ $# -ge 1 ] || usage

pkgs=()
for g in "$@"; do
  case $g in
    build) pkgs+=("${BUILD[@]}") ;;
    run) pkgs+=("${RUN[@]}") ;;
    test) pkgs+=("${BUILD[@]}" "${TEST[@]}") ;;
    demo) pkgs+=("${BUILD[@]}" "${DEMO[@]}") ;;
    corpus) pkgs+=("${BUILD[@]}" "${CORPUS[@]}") ;;
    -h | --help) usage ;;
    *) echo "install-deps.sh: unknown group '$g' (build, run, test, demo, corpus)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  case " ${missing[*]} " in *" $p "*) continue ;; esac
  # Node.js from another source (NodeSource's nodejs bundles npm, and
  # conflicts with Debian's npm package): the commands are what counts
  case $p in nodejs) command -v node >/dev/null && continue ;; npm) command -v npm >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
