#!/usr/bin/env bash
# The main job end to end on the corpus the repository ships (data/corpus):
# install what is missing, build, preprocess, split by flow, train the
# traffic CNN, test it (report + figures), classify one capture per flow;
# then the flow classifier (gradient-boosted trees over the first packets of
# each flow, capture-identifying header fields masked) on the same split,
# and both models' flow-level scores side by side; last, installs deeppacket
# (program, library, pkg-config file, man pages, Python package) under
# /usr/local (INSTALL=0 skips it; `sudo make uninstall` removes it).
# Everything else goes to out/demo/ (override with OUT=...).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/demo}
EPOCHS=${EPOCHS:-8}
# a capture whose flow the by-flow split (seed 9876) puts in the test set
CAPTURE=${CAPTURE:-data/corpus/vpn_voip_01.pcap}

scripts/install-deps.sh demo
make -s -j"$(nproc)" build/deeppacket
dp=build/deeppacket
rm -rf "$OUT"
mkdir -p "$OUT"

step() { printf '\n== %s\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "1. preprocess the corpus" \
  $dp preprocess -s data/corpus -t "$OUT/dataset" --labels data/corpus/labels.tsv
step "2. split by flow (train/test, under-sampled training set)" \
  $dp split -s "$OUT/dataset" -t "$OUT/split" --by flow --task traffic
step "3. train the traffic CNN" \
  $dp train -d "$OUT/split/traffic_classification/train" -m "$OUT/traffic.model" -t traffic --epochs "$EPOCHS"
step "4. test it" \
  $dp test -d "$OUT/split/traffic_classification/test" -m "$OUT/traffic.model" -o "$OUT/report"
step "5. classify one capture, one verdict per flow" \
  $dp classify -m "$OUT/traffic.model" -r "$CAPTURE" --per flow --first 50 -o "$OUT/verdicts.jsonl"
head -n 5 "$OUT/verdicts.jsonl"
step "6. train the flow classifier (GBT over each flow's first 10 packets, --mask default)" \
  $dp train --model gbt -d "$OUT/split/traffic_classification/train" -m "$OUT/traffic.gbt.model" -t traffic -j 1
step "7. test it, one verdict per flow" \
  $dp test -d "$OUT/split/traffic_classification/test" -m "$OUT/traffic.gbt.model" -o "$OUT/report-gbt"
step "8. classify the same capture with it" \
  $dp classify -m "$OUT/traffic.gbt.model" -r "$CAPTURE" -o "$OUT/verdicts-gbt.jsonl"
head -n 5 "$OUT/verdicts-gbt.jsonl"

# flow-level scores of both models on the same test flows
score() { # report.json -> "weighted F1 x, macro F1 y, VPN vs non-VPN accuracy z"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); v=r.get("vpn_accuracy")
print("weighted F1 %.4f, macro F1 %.4f, VPN vs non-VPN accuracy %s over %d flows" % (r["weighted_avg"]["f1"],
      r["macro_avg"]["f1"], "%.4f" % v if v is not None else "-", r["n"]))' "$1"
}
printf '\n== flow level, same test flows\n'
printf 'reference CNN (summed packet log-probabilities): %s\n' "$(score "$OUT/report/flow_report.json")"
printf 'GBT flow classifier:                             %s\n' "$(score "$OUT/report-gbt/flow_report.json")"
python3 -c 'import json,sys; c=[x for x in json.load(open(sys.argv[1]))["coverage"] if x["min_prob"]==0.8][0]
print("GBT, verdicts of probability >= 0.8 only:        %.0f%% of the flows (%d), weighted F1 %s; the others \"unknown\" with classify --min-prob 0.8"
      % (100 * c["coverage"], c["kept"], "%.4f" % c["weighted_f1"] if c["kept"] else "-"))' "$OUT/report-gbt/flow_report.json"
printf '\nreport: %s/report/report.md, confusion matrix: %s/report/confusion.png\n' "$OUT" "$OUT"
printf 'flow classifier: %s/report-gbt/flow_report.md, %s/report-gbt/flow_confusion.png\n' "$OUT" "$OUT"
printf 'training curves: %s/traffic.model.curves.png, %s/traffic.gbt.model.curves.png\n' "$OUT" "$OUT"
printf 'in a browser: %s/report/report.html, %s/report-gbt/report.html\n' "$OUT" "$OUT"

if [ "${INSTALL:-1}" = 1 ]; then
  printf '\n== install under /usr/local (program, library, pkg-config file, man pages, Python package)\n'
  make -s -j"$(nproc)" build/deeppacket build/libdeeppacket.a build/libdeeppacket.so
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO make -s install PREFIX=/usr/local
  /usr/bin/python3 -c 'import deeppacket; print("python3: import deeppacket", deeppacket.__version__, "from", deeppacket.__file__)'
  pkg-config --modversion deeppacket | sed 's/^/pkg-config: deeppacket /'
fi
