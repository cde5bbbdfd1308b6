#!/usr/bin/env bash
# tools/import_torch.py end to end (issue 14 part 3), run by scripts/test.sh:
# a checkpoint shaped like the reference PyTorch pipeline's (Lightning dict,
# random weights, the reference's hyper-parameters, for both tasks) is
# converted into a deeppacket model, whose log-probabilities (build/onnx_io
# predict: dp_model_predict, as test and classify use it) must equal the
# torch model's to 1e-4 on synthetic vectors and on real ones (the demo
# corpus); faulty checkpoints must be refused. Skips without python3-torch.
# Ends with "import_torch: N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
DP=$BUILD/deeppacket
IO=$BUILD/onnx_io
PY=/usr/bin/python3
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "  ok: $*"; }
bad() { fail=$((fail + 1)); echo "  FAILED: $*"; }
finish() { echo "import_torch: $pass passed, $fail failed, $skip skipped"; [ "$fail" -eq 0 ]; exit; }

if ! $PY -c 'import torch, numpy' 2>/dev/null; then
  echo "  skipped: /usr/bin/python3 has no torch or numpy (apt-get install python3-torch)"
  skip=1
  finish
fi
[ -x "$DP" ] && [ -x "$IO" ] || { bad "build first (make all): no $DP or $IO"; finish; }
T=$(mktemp -d /tmp/dp-import.XXXXXX)
trap 'rm -rf "$T"' EXIT

"$DP" preprocess -s data/corpus -t "$T/corpus" --labels data/corpus/labels.tsv -q >/dev/null 2>&1 ||
  { bad "corpus preprocess"; finish; }

for task in traffic app; do
  mkdir -p "$T/$task" "$T/$task.dp"
  if ! $PY tests/import_torch/make_checkpoint.py "$task" 5 "$T/$task.ckpt" "$T/$task" "$T/corpus/vectors.npy"; then
    bad "$task: making the checkpoint"; continue
  fi
  if ! $PY tools/import_torch.py "$T/$task.ckpt" -o "$T/$task.dpm" 2>"$T/err"; then
    bad "$task: import_torch: $(cat "$T/err")"; continue
  fi
  "$IO" predict "$T/$task.dpm" "$T/$task/input.npy" "$T/$task.dp" || { bad "$task: deeppacket predict"; continue; }
  if $PY - "$T/$task/torch.npy" "$T/$task.dp/expected.npy" "$T/$task.dpm" "$task" <<'PYEOF'; then ok "$task: deeppacket = torch to 1e-4, classes and architecture"; else bad "$task: outputs or model differ"; fi
import subprocess, sys
import numpy as np
want, got = np.load(sys.argv[1]), np.load(sys.argv[2])
d = float(np.abs(want - got).max())
spread = float((want.max(1) - want.min(1)).mean())
print("    %s: %d rows x %d classes, max |diff| %.3g (mean log-prob spread %.2f)" % (sys.argv[4], *want.shape, d, spread))
assert want.shape == got.shape and d <= 1e-4 and spread > 1, d
classes = subprocess.run(["build/onnx_io", "classes", sys.argv[3]], capture_output=True, text=True).stdout
assert ("\"VPN: Voip\"" in classes) == (sys.argv[4] == "traffic") and ("\"Youtube\"" in classes) == (sys.argv[4] == "app"), classes
PYEOF
done

# the tool's refusals: exit 1 and a message naming the file and the fault
for b in missing:"lacks out.bias" shape:"conv2.0.weight has shape" hparams:"lack c2_stride"; do
  kind=${b%%:*} msg=${b#*:}
  $PY tests/import_torch/make_checkpoint.py traffic 1 "$T/$kind.ckpt" "$T" --broken "$kind" >/dev/null 2>&1
  $PY tools/import_torch.py "$T/$kind.ckpt" -o "$T/$kind.dpm" 2>"$T/err"; rc=$?
  if [ $rc = 1 ] && grep -q "$kind.ckpt" "$T/err" && grep -q "$msg" "$T/err" && [ ! -e "$T/$kind.dpm" ]; then
    ok "a checkpoint with fault '$kind' is refused"
  else bad "fault '$kind': exit $rc, $(cat "$T/err")"; fi
done
printf 'not a checkpoint' >"$T/junk.ckpt"
$PY tools/import_torch.py "$T/junk.ckpt" -o "$T/junk.dpm" 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "junk.ckpt: cannot read" "$T/err" && ok "a file that is no checkpoint: exit 1" ||
  bad "junk checkpoint: exit $rc, $(cat "$T/err")"
$PY tools/import_torch.py "$T/traffic.ckpt" 2>/dev/null; rc=$?
[ $rc = 2 ] && ok "no -o: usage error (exit 2)" || bad "no -o: exit $rc"
finish
