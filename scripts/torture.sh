#!/usr/bin/env bash
# Torture run (on demand, not in CI): kill -9 at random points of preprocess,
# split and train, rerun, and compare every output byte for byte with an
# uninterrupted run; check that no temporary file is left; print a report.
#
#   scripts/torture.sh                      # from the repository root, after `make`
#   KILLS=5 REPL=3 SEED=7 scripts/torture.sh
#   FILTER='tcp' scripts/torture.sh        # preprocess with --filter (reference too)
#   LABELS=table.tsv scripts/torture.sh    # another label table (e.g. with a filter column)
#
# The captures are ../shared/data/iscx-sample (or $DP_SHARED_DATA/iscx-sample)
# copied REPL times under new names (the label prefix kept) into a temporary
# folder under /tmp (REPL=2: about 230,000 frames). Each phase is killed
# KILLS times at a random moment within the time an uninterrupted run of it
# took (the i-th kill in the i-th of KILLS slices of that time): preprocess and train then resume (train --resume when MODEL.ckpt
# exists), split starts over; after every killed split the target must be
# absent or whole. Exit status 0 when every check passes. The work folder is
# removed at the end unless KEEP=1.
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-build/deeppacket}
DATA=${DP_SHARED_DATA:-../shared/data}/iscx-sample
REPL=${REPL:-2}
KILLS=${KILLS:-4}
SEED=${SEED:-$$}
THREADS=${THREADS:-2}
FILTER=${FILTER:-}
[ -x "$BIN" ] || { echo "torture: no $BIN (run make first)" >&2; exit 2; }
[ -d "$DATA" ] || { echo "torture: no $DATA: skipped" >&2; exit 0; }
RANDOM=$SEED
W=$(mktemp -d /tmp/dp-torture.XXXXXX)
fails=0
report=()
note() { report+=("$*"); echo "torture: $*" >&2; }
check() { # check DESCRIPTION COMMAND...: records pass/fail
  local what=$1; shift
  if "$@"; then note "ok   $what"; else note "FAIL $what"; fails=$((fails + 1)); fi
}

# --- the captures ------------------------------------------------------------------
mkdir -p "$W/caps"
for r in $(seq 1 "$REPL"); do
  for f in "$DATA"/*.pcap; do
    b=$(basename "$f" .pcap)
    cp "$f" "$W/caps/$b.r$r.pcap"
  done
done
LABELS=${LABELS:-$DATA/labels.tsv}

# The commands, as arrays in CMD (run directly, so that kill -9 hits the program).
pp_cmd() {
    CMD=("$BIN" preprocess -q -j "$THREADS" -s "$W/caps" -t "$1" --labels "$LABELS")
    [ -z "$FILTER" ] || CMD+=(--filter "$FILTER")
}
split_cmd() { CMD=("$BIN" split -q -s "$W/ref/ds" -t "$1"); }
train_cmd() { # train_cmd MODEL [--resume]
  CMD=("$BIN" train -q -d "$W/ref/split/traffic_classification/train" -m "$1" -t traffic --model sae
       --epochs 2 --pretrain-epochs 1 -j "$THREADS" "${@:2}")
}
run() { "${CMD[@]}" >/dev/null 2>>"$W/log"; }
PP() { pp_cmd "$@"; run; }
SPLIT() { split_cmd "$@"; run; }
TRAIN() { train_cmd "$@"; run; }

# --- uninterrupted runs, timed ------------------------------------------------------------
mkdir -p "$W/ref" "$W/tor"
t0=$(date +%s.%N); PP "$W/ref/ds" || { echo "torture: reference preprocess failed" >&2; exit 1; }
t1=$(date +%s.%N); SPLIT "$W/ref/split" || { echo "torture: reference split failed" >&2; exit 1; }
t2=$(date +%s.%N); TRAIN "$W/ref/model" || { echo "torture: reference train failed" >&2; exit 1; }
t3=$(date +%s.%N)
T_PP=$(echo "$t1 - $t0" | bc); T_SPLIT=$(echo "$t2 - $t1" | bc); T_TRAIN=$(echo "$t3 - $t2" | bc)
frames=$(grep -o '"frames": [0-9]*' "$W/ref/ds/summary.json" | head -1 | grep -o '[0-9]*$')
packets=$(grep -o '"packets": [0-9]*' "$W/ref/ds/summary.json" | head -1 | grep -o '[0-9]*$')
note "captures: $(ls "$W/caps" | wc -l) files, $frames frames, $packets packets (REPL=$REPL, SEED=$SEED)"
[ -z "$FILTER" ] || note "preprocess --filter '$FILTER'"
note "uninterrupted: preprocess ${T_PP}s, split ${T_SPLIT}s, train ${T_TRAIN}s"

# Runs CMD in the background and kills it with SIGKILL at a random moment of
# the i-th of KILLS equal slices of SECONDS (so that the kills spread over the
# whole run: early, mid-way, at the commit); prints "killed at ..." or
# "finished ...".
kill_at_random() { # kill_at_random SECONDS RANDOM_NUMBER i KILLS
  local T=$1 at pid
  at=$(echo "scale=3; $T * ($3 - 1 + $(( $2 % 1000 )) / 1000) / $4" | bc)
  [ "$(echo "$at < 0.005" | bc)" = 1 ] && at=0.005
  "${CMD[@]}" >/dev/null 2>>"$W/log" &
  pid=$!
  sleep "$at"
  if kill -9 "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null; echo "killed at ${at}s"
  else wait "$pid"; echo "finished before ${at}s (exit $?)"; fi
}

same_tree() { # same_tree A B: same files (names and bytes), lock files aside
  diff -r -x '*.lock' "$1" "$2" >/dev/null
}
no_temp() { # no_temp DIR: nothing named *.tmp.* / *.old.* / .parts / *.partial left
  local left
  left=$(find "$1" \( -name '*.tmp.*' -o -name '*.old.*' -o -name '.parts' -o -name '*.partial' \) | head -5)
  [ -z "$left" ] || { echo "torture: left behind: $left" >&2; return 1; }
}

# --- preprocess: kills, each rerun resumes -------------------------------------------------
D="$W/tor/ds"
for i in $(seq 1 "$KILLS"); do pp_cmd "$D"; rn=$RANDOM; note "preprocess run $i: $(kill_at_random "$T_PP" $rn $i "$KILLS")"; done
PP "$D"; note "preprocess final run: exit $?"
check "preprocess output identical to the uninterrupted run" same_tree "$W/ref/ds" "$D"
check "preprocess left no temporary file" no_temp "$W/tor"

# --- split: kills; the target is absent or whole after each -------------------------------
S="$W/tor/split"
for i in $(seq 1 "$KILLS"); do
  split_cmd "$S"; rn=$RANDOM; note "split run $i: $(kill_at_random "$T_SPLIT" $rn $i "$KILLS")"
  if [ -e "$S" ]; then check "split target whole after kill $i" same_tree "$W/ref/split" "$S"
  else note "ok   split target absent after kill $i (no split yet)"; fi
done
SPLIT "$S"; note "split final run: exit $?"
check "split output identical to the uninterrupted run" same_tree "$W/ref/split" "$S"
check "split left no temporary file" no_temp "$W/tor"

# --- train: kills, each rerun resumes from the checkpoint ----------------------------------
M="$W/tor/model"
for i in $(seq 1 "$KILLS"); do
  if [ -f "$M.ckpt" ]; then r=--resume; else r=; fi
  train_cmd "$M" $r; rn=$RANDOM; note "train run $i ${r:-(fresh)}: $(kill_at_random "$T_TRAIN" $rn $i "$KILLS")"
done
if [ -f "$M.ckpt" ]; then r=--resume; else r=; fi
TRAIN "$M" $r; note "train final run ${r:-(fresh)}: exit $?"
check "model identical to the uninterrupted run" cmp -s "$W/ref/model" "$M"
check "checkpoint identical to the uninterrupted run" cmp -s "$W/ref/model.ckpt" "$M.ckpt"
check "train left no temporary file" no_temp "$W/tor"

echo
echo "== torture report ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs)"
printf '%s\n' "${report[@]}"
echo "== $fails failed check(s)"
if [ "${KEEP:-0}" = 1 ]; then echo "work folder kept: $W"; else rm -rf "$W"; fi
[ "$fails" -eq 0 ]
