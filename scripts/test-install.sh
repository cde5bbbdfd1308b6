#!/usr/bin/env bash
# The library's install check (issue 14), run by scripts/test.sh after the
# build: `make install` into a temporary PREFIX, then
#  1. examples/classify_pcap.c builds with `pkg-config --cflags --libs
#     deeppacket` (shared) and with `pkg-config --static` (libdeeppacket.a
#     and its private libraries), and both print what the installed
#     `deeppacket classify --per flow` prints for a capture;
#  2. Debian's /usr/bin/python3 imports the installed package, which finds
#     the installed library by itself and gives the same verdicts;
#  3. `make install DESTDIR=... PREFIX=/usr` stages every file where Debian
#     looks for it, and `make uninstall` with the same options removes them all.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "install check: FAILED: $*" >&2; exit 1; }

make -s install PREFIX="$prefix" > /dev/null
dp=$prefix/bin/deeppacket
cap=data/corpus/chat_03.pcap
"$dp" preprocess -s data/corpus -t "$tmp/ds" --labels data/corpus/labels.tsv -q > /dev/null 2>&1
"$dp" split -s "$tmp/ds" -t "$tmp/split" --task traffic > /dev/null
"$dp" train -d "$tmp/split/traffic_classification/train" -m "$tmp/m" -t traffic --model sae --epochs 1 \
  --pretrain-epochs 0 -j 1 > /dev/null 2>&1
"$dp" classify -m "$tmp/m" -r "$cap" --per flow > "$tmp/want" 2> /dev/null
[ -s "$tmp/want" ] || fail "the installed deeppacket classified nothing"

# 1. C, shared and static
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cc -Wall -Wextra -Werror -o "$tmp/shared" examples/classify_pcap.c $(pkg-config --cflags --libs deeppacket)
LD_LIBRARY_PATH=$prefix/lib "$tmp/shared" "$tmp/m" "$cap" > "$tmp/got" || fail "examples/classify_pcap (shared) failed"
cmp -s "$tmp/want" "$tmp/got" || fail "examples/classify_pcap (shared) differs from deeppacket classify"
readelf -d "$tmp/shared" | grep -q 'NEEDED.*\[libdeeppacket.so.0\]' || fail "the shared build does not load libdeeppacket.so.0"
cc -Wall -Wextra -Werror -o "$tmp/static" examples/classify_pcap.c $(pkg-config --cflags deeppacket) \
  -Wl,--as-needed -Wl,-Bstatic -ldeeppacket -Wl,-Bdynamic $(pkg-config --static --libs deeppacket)
! readelf -d "$tmp/static" | grep -q libdeeppacket || fail "the static build still loads libdeeppacket.so"
"$tmp/static" "$tmp/m" "$cap" > "$tmp/got" || fail "examples/classify_pcap (static) failed"
cmp -s "$tmp/want" "$tmp/got" || fail "examples/classify_pcap (static) differs from deeppacket classify"

# 2. Python, the installed package finding the installed library
pydir=$(make -s print-pythondir PREFIX="$prefix")
env -u DEEPPACKET_LIB PYTHONPATH="$pydir" /usr/bin/python3 - "$prefix" "$tmp/m" "$cap" "$tmp/want" <<'PY' \
  || fail "the installed Python package"
import json, os, sys
import deeppacket
prefix, model, cap, want = sys.argv[1:]
assert deeppacket.__file__.startswith(prefix), deeppacket.__file__
assert deeppacket.library_path == os.path.realpath(prefix + "/lib/libdeeppacket.so.0"), deeppacket.library_path
got = list(deeppacket.Model.load(model).classify_pcap(cap, per="flow"))
assert got == [json.loads(l) for l in open(want)], "verdicts differ"
PY

# 3. staged for PREFIX=/usr, then removed
stage=$tmp/stage
make -s install DESTDIR="$stage" PREFIX=/usr > /dev/null
for f in bin/deeppacket include/deeppacket.h lib/libdeeppacket.a lib/libdeeppacket.so lib/libdeeppacket.so.0 \
         lib/pkgconfig/deeppacket.pc lib/python3/dist-packages/deeppacket/__init__.py \
         lib/python3/dist-packages/deeppacket/_install.py $(ls man/*.1 2> /dev/null | sed 's|^man/|share/man/man1/|'); do
  [ -e "$stage/usr/$f" ] || fail "make install DESTDIR=... PREFIX=/usr did not install /usr/$f"
done
grep -qx 'prefix=/usr' "$stage/usr/lib/pkgconfig/deeppacket.pc" || fail "deeppacket.pc: prefix is not /usr"
grep -q '"/usr/lib/libdeeppacket.so.0"' "$stage/usr/lib/python3/dist-packages/deeppacket/_install.py" \
  || fail "_install.py does not name /usr/lib/libdeeppacket.so.0"
make -s uninstall DESTDIR="$stage" PREFIX=/usr > /dev/null
left=$(find "$stage" ! -type d)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "install check: make install, pkg-config (shared and static) C build, Python import and make uninstall: ok"
