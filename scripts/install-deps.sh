#!/usr/bin/env bash
# Installs the Debian packages deeppacket needs to build, test and run its
# demo. Idempotent: does nothing when they are all present.
set -euo pipefail
PKGS=(build-essential pkg-config libpcap-dev libopenblas-dev libdnnl-dev libcairo2-dev libxgboost-dev
      clang libclang-rt-14-dev python3 python3-numpy iproute2
      openssh-server openssh-client openssl curl
      python3-onnx nodejs npm  # ONNX export test (tests/onnx/run.sh): onnx checker, ONNX Runtime for Node.js
      python3-torch)           # tools/import_torch.py and its test (38 MB download; the test takes 20 s of CPU)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
