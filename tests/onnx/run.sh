#!/usr/bin/env bash
# ONNX end-to-end test (issue 14 part 3), run by scripts/test.sh:
#  - trains tiny models of every kind on the demo corpus (data/corpus), an SAE
#    with the default field mask among them, and makes seeded ones of the
#    other architectures (build/onnx_io create);
#  - checks the field mask in the graph byte for byte against dp_mask_apply;
#  - exports each (`deeppacket export`), checks the file with Debian's
#    python3-onnx checker and its metadata;
#  - runs it in ONNX Runtime for Node.js (onnxruntime-node, installed by npm
#    into tests/onnx/node_modules, gitignored) on synthetic inputs and on the
#    corpus test split, and on the iscx-sample test split where ../shared
#    exists, and compares the log-probabilities with deeppacket's own
#    (build/onnx_io: dp_model_predict / dp_model_predict_flows) to 1e-4.
# Skips with a message what it cannot run (no python3-onnx, no node/npm, no
# ../shared). Ends with "onnx: N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
DP=$BUILD/deeppacket
IO=$BUILD/onnx_io
TOL=1e-4
SHARED=${DP_SHARED_DATA:-../shared/data}
[ -d "$SHARED" ] || [ -n "${DP_SHARED_DATA:-}" ] || SHARED=../../shared/data # a worktree under wt/
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "  ok: $*"; }
bad() { fail=$((fail + 1)); echo "  FAILED: $*"; }
skipped() { skip=$((skip + 1)); echo "  skipped: $*"; }
finish() { echo "onnx: $pass passed, $fail failed, $skip skipped"; [ "$fail" -eq 0 ]; exit; }

[ -x "$DP" ] && [ -x "$IO" ] || { echo "tests/onnx/run.sh: build first (make all)"; bad "no $DP or $IO"; finish; }
T=$(mktemp -d /tmp/dp-onnx.XXXXXX)
trap 'rm -rf "$T"' EXIT

have_checker=1
/usr/bin/python3 -c 'import onnx' 2>/dev/null || have_checker=0
have_ort=0
if command -v node >/dev/null && command -v npm >/dev/null; then
  if [ ! -d tests/onnx/node_modules/onnxruntime-node ]; then
    # --ignore-scripts: the package's install script only fetches GPU providers
    (cd tests/onnx && npm ci --ignore-scripts --no-audit --no-fund >"$T/npm.log" 2>&1) || tail -n 5 "$T/npm.log"
  fi
  node -e "require('./tests/onnx/node_modules/onnxruntime-node')" 2>/dev/null && have_ort=1
fi
[ $have_checker = 1 ] || skipped "onnx checker: /usr/bin/python3 has no onnx module (apt-get install python3-onnx)"
[ $have_ort = 1 ] || skipped "ONNX Runtime: node/npm missing or onnxruntime-node could not be installed"

# The checker, the class names in the metadata and the input's name and type.
check_file() { # MODEL.onnx MODEL.dpm INPUT_NAME
  [ $have_checker = 1 ] || return 0
  local want
  want=$("$IO" classes "$2") || { bad "$2: cannot read its classes"; return; }
  if /usr/bin/python3 - "$1" "$3" "$want" <<'EOF'; then ok "$1: onnx checker, metadata"; else bad "$1: onnx checker or metadata"; fi
import json, sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
meta = {p.key: p.value for p in m.metadata_props}
assert json.loads(meta["classes"]) == json.loads(sys.argv[3]), (meta["classes"], sys.argv[3])
assert [i.name for i in m.graph.input] == [sys.argv[2]], m.graph.input
assert [o.name for o in m.graph.output] == ["logprobs"]
assert {o.domain: o.version for o in m.opset_import}[""] == 17
if sys.argv[2] == "flows":  # the flow configuration, machine-readable
    assert int(meta["deeppacket.flow_packets"]) * (44 + int(meta["deeppacket.flow_payload_bytes"])) == \
        m.graph.input[0].type.tensor_type.shape.dim[1].dim_value, meta
    assert meta["deeppacket.flow_features"] == "all", meta
EOF
}

# ONNX Runtime's log-probabilities against deeppacket's: compare LABEL MODEL.onnx DIR
compare() {
  [ $have_ort = 1 ] || return 0
  if node tests/onnx/compare.js "$2" "$3/input.npy" "$3/expected.npy" "$TOL"; then ok "$1"; else bad "$1"; fi
}

# Exports MODEL.dpm, checks it, compares on synthetic inputs and on each test set given.
export_and_compare() { # NAME TESTDIR...
  local name=$1 dpm=$T/$1.dpm onnx=$T/$1.onnx input=packets
  shift
  if ! "$DP" export --model-file "$dpm" --output "$onnx" 2>"$T/err"; then bad "$name: export: $(cat "$T/err")"; return; fi
  "$IO" is-flow "$dpm" && input=flows
  check_file "$onnx" "$dpm" "$input"
  mkdir -p "$T/$name.random" && "$IO" random "$dpm" 200 11 "$T/$name.random" &&
    compare "$name, synthetic inputs" "$onnx" "$T/$name.random"
  for d in "$@"; do
    local out=$T/$name.$(basename "$(dirname "$(dirname "$d")")")
    mkdir -p "$out" && "$IO" dataset "$dpm" "$d" "$out" && compare "$name, $d" "$onnx" "$out"
  done
}

echo "== tiny models on the demo corpus"
"$DP" preprocess -s data/corpus -t "$T/corpus" --labels data/corpus/labels.tsv -q >/dev/null 2>&1 &&
  "$DP" split -s "$T/corpus" -t "$T/corpus-split" --test-size 0.8 --task traffic >/dev/null 2>&1 ||
  { bad "corpus preprocess/split"; finish; }
CT=$T/corpus-split/traffic_classification
train() { "$DP" train -d "$CT/train" -m "$T/$1.dpm" -t traffic "${@:2}" >/dev/null 2>&1 || bad "train $1"; }
train cnn --epochs 1 -j 2
train sae --model sae --epochs 1 --pretrain-epochs 1 -j 2
train flow --model flow --epochs 3 -j 2
train gbt --model gbt --trees 20 --depth 4 -j 1 # XGBoost's threads spin on a busy machine
train sae-mask --model sae --epochs 1 --pretrain-epochs 1 --mask default -j 2
for k in cnn-app flow-noconv flow-mlp sae-flow; do "$IO" create "$k" 7 "$T/$k.dpm" || bad "onnx_io create $k"; done
for k in cnn sae flow gbt sae-mask; do export_and_compare "$k" "$CT/test"; done
"$IO" create cnn 7 "$T/cnn-mask.dpm" mask || bad "onnx_io create cnn mask"
for k in cnn-app flow-noconv flow-mlp sae-flow cnn-mask; do export_and_compare "$k"; done

if [ $have_ort = 1 ]; then # the comparison itself must see a wrong answer
  if node tests/onnx/compare.js "$T/cnn.onnx" "$T/sae.random/input.npy" "$T/sae.random/expected.npy" "$TOL" >/dev/null; then
    bad "compare.js accepted another model's log-probabilities"
  else ok "compare.js rejects another model's log-probabilities"; fi
fi

# The field mask in the graph (dp_onnx_mask.c), byte for byte against
# dp_mask_apply: on crafted headers (the synthetic inputs of a packet model)
# and on the test sets given.
mask_check() { # TESTDIR...
  [ $have_ort = 1 ] || return 0
  local inputs=("$T/cnn.random") d mk
  for d in "$@"; do inputs+=("$T/cnn.$(basename "$(dirname "$(dirname "$d")")")"); done
  for mk in all default ports ipid ttl checksum seq tcpts window; do
    "$IO" mask-graph "$mk" "$T/mask-$mk.onnx" || { bad "mask graph $mk"; continue; }
    for d in "${inputs[@]}"; do
      mkdir -p "$d.mask-$mk" && "$IO" mask-apply "$mk" "$d/input.npy" "$d.mask-$mk" &&
        node tests/onnx/compare.js "$T/mask-$mk.onnx" "$d/input.npy" "$d.mask-$mk/expected.npy" 0 >"$T/out" ||
        { cat "$T/out"; bad "mask $mk in the graph differs from dp_mask_apply on $d"; continue 2; }
    done
    ok "mask $mk in the graph = dp_mask_apply, byte for byte (${#inputs[@]} input sets)"
  done
}
mask_check "$CT/test"

echo "== bad input"
"$DP" export -m "$T/cnn.dpm" 2>/dev/null; rc=$?
[ $rc = 2 ] && ok "export without -o: usage error (exit 2)" || bad "export without -o: exit $rc"
printf 'not a model' >"$T/junk.dpm"
"$DP" export -m "$T/junk.dpm" -o "$T/junk.onnx" 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "junk.dpm" "$T/err" && [ ! -e "$T/junk.onnx" ] && ok "a bad model file: exit 1 naming it" ||
  bad "bad model file: exit $rc, $(cat "$T/err")"

echo "== iscx-sample test split"
if [ -d "$SHARED/iscx-sample" ]; then
  "$DP" preprocess -s "$SHARED/iscx-sample" -t "$T/iscx" --labels "$SHARED/iscx-sample/labels.tsv" -q >/dev/null 2>&1 &&
    "$DP" split -s "$T/iscx" -t "$T/iscx-split" --task traffic >/dev/null 2>&1 || { bad "iscx preprocess/split"; finish; }
  IT=$T/iscx-split/traffic_classification
  # flow models trained on iscx itself (cheap); the packet models are the corpus's
  CT=$IT train iscx-flow --model flow --epochs 2 -j 2
  CT=$IT train iscx-gbt --model gbt --trees 20 -j 1
  for k in iscx-flow iscx-gbt; do export_and_compare "$k" "$IT/test"; done
  for k in cnn sae flow gbt sae-mask; do
    mkdir -p "$T/$k.iscx" && "$IO" dataset "$T/$k.dpm" "$IT/test" "$T/$k.iscx" &&
      compare "$k, iscx-sample test split" "$T/$k.onnx" "$T/$k.iscx"
  done
  mv "$T/cnn.iscx" "$T/cnn.iscx-split" && mask_check "$IT/test"
else
  skipped "iscx-sample test split: $SHARED/iscx-sample not found"
fi
finish
