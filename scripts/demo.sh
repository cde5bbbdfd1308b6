#!/usr/bin/env bash
# The main job end to end on the corpus the repository ships (data/corpus):
# install what is missing, build, preprocess, split by flow, train the
# traffic CNN, test it (report + figures), classify one capture per flow.
# Everything goes to out/demo/ (override with OUT=...).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/demo}
EPOCHS=${EPOCHS:-8}
# a capture whose flow the by-flow split (seed 9876) puts in the test set
CAPTURE=${CAPTURE:-data/corpus/vpn_voip_01.pcap}

scripts/install-deps.sh
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
printf '\nreport: %s/report/report.md, confusion matrix: %s/report/confusion.png\n' "$OUT" "$OUT"
