#!/usr/bin/env bash
# Accuracy on traffic the model has never seen (issue 10): the reference CNN
# and the flow models side by side on time splits of iscx-sample, several
# seeds, per flow, plus ablations. Prints markdown tables (docs/accuracy.md
# keeps them with the command and the machine). On demand, not in CI.
#
#   make -j2 && bench/accuracy_unseen.sh > /tmp/accuracy.md
#
# Environment: BUILD (build), OUT (/tmp/dp-accuracy), SEEDS ("1 2 3"),
# CNN_SEEDS (SEEDS; on the cls split only the first), CNN_EPOCHS (5), FLOW_EPOCHS (40), SPLITS ("cap cls"),
# TASKS ("traffic app"), ABLATIONS (1), JOBS (2: runs in parallel, one
# thread each), DP_SHARED_DATA (../shared/data), LABELS (iscx-sample's
# labels.tsv; e.g. a copy with the filter column, docs/accuracy.md "eighth
# pass").
#
# Splits (both `split --by time`, test size 0.2, no under-sampling; the CNN
# gets the reference's under-sampling with `train --balance undersample`):
#   cap  --time-scope capture: each capture's later sessions in test;
#   cls  --time-scope class: each class's later flows in test; iscx-sample's
#        clock orders its captures by name, so whole captures (often whole
#        applications) are only in test.
#   net  another network: trained on all of iscx-sample, tested on the nDPI
#        project's captures (../shared/data/ndpi with its labels.tsv: other
#        machines, other years, only non-VPN classes, and labels per capture
#        file, so their background flows carry the file's label too).
# Every test also runs with --train-set (the training side): the "dedup"
# column drops the test flows whose first-10 size/direction sequence occurs
# in training.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DP=${DP:-$PWD/$BUILD/deeppacket}
OUT=${OUT:-/tmp/dp-accuracy}
SEEDS=${SEEDS:-1 2 3}
CNN_SEEDS=${CNN_SEEDS:-$SEEDS}
CNN_EPOCHS=${CNN_EPOCHS:-5}
FLOW_EPOCHS=${FLOW_EPOCHS:-40}
SPLITS=${SPLITS:-cap cls net}
TASKS=${TASKS:-traffic app}
ABLATIONS=${ABLATIONS:-1}
JOBS=${JOBS:-2}
DATA=${DP_SHARED_DATA:-../shared/data}
LABELS=${LABELS:-$DATA/iscx-sample/labels.tsv}
PY=/usr/bin/python3
[ -x "$DP" ] || { echo "build first: make -j2 ($DP missing)" >&2; exit 1; }
[ -d "$DATA/iscx-sample" ] || { echo "skipped: $DATA/iscx-sample is absent" >&2; exit 0; }
mkdir -p "$OUT"

# 1. the dataset and the two time splits
"$DP" preprocess -q -s "$DATA/iscx-sample" -t "$OUT/ds" --labels "$LABELS"
"$DP" split -q -s "$OUT/ds" -t "$OUT/cap" --by time --time-scope capture --no-under-sampling
"$DP" split -q -s "$OUT/ds" -t "$OUT/cls" --by time --time-scope class --no-under-sampling
case " $SPLITS " in
  *" net "*)
    if [ -d "$DATA/ndpi" ]; then
      "$DP" preprocess -q -s "$DATA/ndpi" -t "$OUT/ndpi" --labels "$DATA/ndpi/labels.tsv"
    else
      echo "net split skipped: $DATA/ndpi is absent" >&2
      SPLITS=$(echo " $SPLITS " | sed 's/ net / /')
    fi ;;
esac

# 2. the runs, one line each: NAME SPLIT TASK SEED TRAIN-OPTIONS...
runs=$OUT/runs.txt
: > "$runs"
for s in $SPLITS; do
  for t in $TASKS; do
    cnn_seeds=$CNN_SEEDS
    [ "$s" != cap ] && cnn_seeds=$(echo $CNN_SEEDS | cut -d' ' -f1)
    for seed in $cnn_seeds; do
      echo "cnn $s $t $seed --model cnn --balance undersample --epochs $CNN_EPOCHS" >> "$runs"
    done
    for seed in $SEEDS; do
      echo "gbt $s $t $seed --model gbt --colsample 0.8" >> "$runs"
      echo "flow $s $t $seed --model flow --epochs $FLOW_EPOCHS --batch-size 64" >> "$runs"
    done
  done
done
if [ "$ABLATIONS" = 1 ]; then
  first=$(echo $SEEDS | cut -d' ' -f1)
  for m in gbt flow; do
    [ $m = gbt ] && base="--model gbt --colsample 0.8" || base="--model flow --epochs $FLOW_EPOCHS --batch-size 64"
    echo "$m-mask-none cap traffic $first $base --mask none" >> "$runs"
    echo "$m-mask-ports cap traffic $first $base --mask ports" >> "$runs"
    echo "$m-no-payload cap traffic $first $base --payload-bytes 0" >> "$runs"
    echo "$m-sizes-only cap traffic $first $base --features sizes" >> "$runs"
    echo "$m-20-packets cap traffic $first $base --packets 20" >> "$runs"
  done
fi

one_run() {  # NAME SPLIT TASK SEED OPTIONS...
  local name=$1 split=$2 task=$3 seed=$4; shift 4
  local dir=$OUT/$split/traffic_classification tag=$OUT/runs/$name-$split-$task-$seed
  [ "$task" = app ] && dir=$OUT/$split/application_classification
  local train=$dir/train test=$dir/test
  [ "$split" = net ] && { train=$OUT/ds; test=$OUT/ndpi; }
  local t0
  [ -f "$tag/flow_report.json" ] && return 0   # done in an earlier run of this script
  mkdir -p "$tag"
  if [ ! -f "$tag/model" ]; then   # a model trained earlier (same command) is only tested
    t0=$(date +%s.%N)
    "$DP" train -q -j 1 -d "$train" -m "$tag/model" -t "$task" --seed "$seed" "$@" || return 1
    awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f\n", a - b }' > "$tag/train_seconds"
  fi
  "$DP" test -j 1 -d "$test" -m "$tag/model" -o "$tag" --train-set "$train" > "$tag/test.txt" || return 1
  rm -f "$tag/model.ckpt" "$tag/predictions.npy" "$tag/flows.npy"
}
export -f one_run
export DP OUT
echo "$(wc -l < "$runs") runs, $JOBS at a time ..." >&2
xargs -P "$JOBS" -L 1 bash -c 'one_run "$@" || echo "FAILED: $*" >&2' _ < "$runs"

# 3. the tables
"$PY" - "$OUT" <<'PY'
import json, os, sys, statistics as st
out = sys.argv[1]
rows = {}
for line in open(os.path.join(out, 'runs.txt')):
    name, split, task, seed = line.split()[:4]
    d = os.path.join(out, 'runs', f'{name}-{split}-{task}-{seed}')
    try:
        fr = json.load(open(os.path.join(d, 'flow_report.json')))
    except OSError:
        continue
    pr = None
    if os.path.exists(os.path.join(d, 'report.json')):
        pr = json.load(open(os.path.join(d, 'report.json')))
    dd = fr.get('without_duplicates') or {}
    r = dict(wf1=fr['weighted_avg']['f1'], mf1=fr['macro_avg']['f1'], vpn=fr.get('vpn_accuracy'),
             pw=pr['weighted_avg']['f1'] if pr else None, dedup=dd.get('weighted_f1'),
             cov={c['min_prob']: c for c in fr.get('coverage') or []},
             secs=float(open(os.path.join(d, 'train_seconds')).read() or 0)
                  if os.path.exists(os.path.join(d, 'train_seconds')) else None)
    rows.setdefault((name, split, task), []).append(r)

def ms(v):
    v = [x for x in v if x is not None]
    if not v: return '-'
    return f'{st.mean(v):.3f}' + (f' ± {st.stdev(v):.3f}' if len(v) > 1 else '')

print('| model | split | task | seeds | per packet wF1 | per flow wF1 | per flow macro F1 | VPN vs non-VPN | wF1 without duplicate flows | train s |')
print('|---|---|---|---:|---:|---:|---:|---:|---:|---:|')
for (name, split, task), rs in sorted(rows.items(), key=lambda k: ('-' in k[0][0], k[0][1], k[0][2], k[0][0])):
    g = lambda k: [r[k] for r in rs]
    secs = [x for x in g("secs") if x is not None]
    print(f'| {name} | {split} | {task} | {len(rs)} | {ms(g("pw"))} | {ms(g("wf1"))} | {ms(g("mf1"))} | {ms(g("vpn"))} | {ms(g("dedup"))} | {f"{st.mean(secs):.0f}" if secs else "-"} |')

# the verdicts by probability (flow_report.json "coverage"): what `classify
# --min-prob P` keeps of the test flows, and the weighted F1 of those
TH = (0.5, 0.7, 0.8, 0.9, 0.95)
print()
print('| model | split | task | seeds | ' + ' | '.join(f'min prob {t}: flows kept, wF1' for t in TH) + ' |')
print('|---|---|---|---:|' + '---:|' * len(TH))
for (name, split, task), rs in sorted(rows.items(), key=lambda k: ('-' in k[0][0], k[0][1], k[0][2], k[0][0])):
    if '-' in name or not all(r['cov'] for r in rs):
        continue
    cells = []
    for t in TH:
        kept = [r['cov'][t]['coverage'] for r in rs]
        wf = [r['cov'][t]['weighted_f1'] for r in rs if r['cov'][t]['kept']]
        cells.append(f'{100 * st.mean(kept):.0f}%, {ms(wf)}')
    print(f'| {name} | {split} | {task} | {len(rs)} | ' + ' | '.join(cells) + ' |')
PY
