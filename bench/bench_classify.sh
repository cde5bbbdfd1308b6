#!/usr/bin/env bash
# Benchmark of `deeppacket classify` (run on demand, not in CI): packets/s
# per core in per-packet and per-flow modes, against the model's own
# inference rate, on recorded captures.
#
#   make BUILD=build -j2 && BUILD=build bench/bench_classify.sh
#
# Input: data/corpus (the project's sample corpus; CORPUS=dir for another) and, when present,
# ../shared/data/iscx-sample. The model is a randomly initialised traffic
# CNN of the spec's architecture (11 classes): a trained one costs exactly
# the same per packet. Every run uses -j 1 and is measured in CPU
# seconds (user + sys, /usr/bin/time), so the figures are per core and
# robust to other load on a shared machine; wall-clock rates are printed too.
#
# Environment: BUILD (default build), REPEATS (best of, 2), MAX_FILES (iscx-sample captures
# per set, 12: iscx-sample's 41 files hold 115k packets, minutes per run), NICE (default
# "nice -n 5"; "" for none), DP_SHARED_DATA (default ../shared/data).
# Prints a markdown report on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$BUILD/deeppacket
DATA=${DP_SHARED_DATA:-../shared/data}
REPEATS=${REPEATS:-2}
MAX_FILES=${MAX_FILES:-12}
CORPUS=${CORPUS:-data/corpus}
NICE=${NICE-nice -n 5}
[ -x "$BIN" ] || { echo "bench_classify: no $BIN (make BUILD=$BUILD first)" >&2; exit 1; }
[ -f "$BUILD/libdeeppacket.a" ] || { echo "bench_classify: no $BUILD/libdeeppacket.a" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench_classify: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/dp-bench-cls.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# a random traffic CNN, saved as a model file
cat >"$WORK/mkmodel.c" <<'C'
#include <stdio.h>
#include "model/dp_model.h"
int main(int argc, char **argv)
{
    char e[DP_ERRBUF_SIZE];
    dp_arch a;
    (void)argc;
    dp_arch_default(&a, DP_MODEL_CNN, DP_TASK_TRAFFIC, 11);
    char *names[11] = {"Chat", "Email", "File Transfer", "Streaming", "Voip", "VPN: Chat",
                       "VPN: File Transfer", "VPN: Email", "VPN: Streaming", "VPN: Torrent", "VPN: Voip"};
    dp_model *m = dp_model_create(&a, DP_TASK_TRAFFIC, names, 9876, e);
    if (!m || dp_model_save(m, argv[1], e) < 0) {
        fprintf(stderr, "%s\n", e);
        return 1;
    }
    dp_model_free(m);
    return 0;
}
C
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -O2 -Isrc -Iinclude "$WORK/mkmodel.c" "$BUILD/libdeeppacket.a" \
   $(make -s --no-print-directory print-ldlibs) -o "$WORK/mkmodel"
"$WORK/mkmodel" "$WORK/traffic.model"

# run NAME ARGS...: best-of-REPEATS CPU time of one classify run
run() {
  local name=$1; shift
  local best="" line
  for _ in $(seq "$REPEATS"); do
    $NICE /usr/bin/time -f "TIME %e %U %S" "$BIN" classify -m "$WORK/traffic.model" -j 1 "$@" \
      >"$WORK/out.jsonl" 2>"$WORK/err"
    line=$(awk '/^TIME/{print $2, $3 + $4}' "$WORK/err")
    if [ -z "$best" ] || awk -v a="$line" -v b="$best" 'BEGIN{split(a,x," ");split(b,y," ");exit !(x[2]<y[2])}'; then
      best=$line; cp "$WORK/err" "$WORK/best.err"
    fi
  done
  local seen kept cls verd model wall cpu
  seen=$(grep -o '[0-9]* packets seen' "$WORK/best.err" | cut -d' ' -f1)
  kept=$(grep -o '[0-9]* kept' "$WORK/best.err" | head -1 | cut -d' ' -f1)
  cls=$(grep -o '[0-9]* classified,' "$WORK/best.err" | cut -d' ' -f1)
  verd=$(grep -o '[0-9]* verdicts' "$WORK/best.err" | cut -d' ' -f1)
  model=$(grep -o '[0-9.]* CPU s)' "$WORK/best.err" | cut -d' ' -f1)
  wall=${best%% *}; cpu=${best##* }
  awk -v n="$name" -v s="$seen" -v k="$kept" -v c="$cls" -v v="$verd" -v m="$model" -v w="$wall" -v u="$cpu" 'BEGIN{
    printf "| %s | %d | %d | %d | %d | %.2f | %.2f | %.0f | %.0f | %.0f |\n",
      n, s, k, c, v, w, u, s / u, c / u, (m > 0 ? c / m : 0) }'
}

echo "## deeppacket classify, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Model: random traffic CNN (spec architecture, 11 classes), \`-j 1\`, best of $REPEATS (CPU time)."
echo
echo "| run | seen | kept | classified | verdicts | wall s | CPU s | seen/CPU-s | classified/CPU-s | model-only classified/CPU-s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
sets=()
if compgen -G "$CORPUS/*.pcap" >/dev/null; then sets+=("corpus:$CORPUS"); fi
if [ -d "$DATA/iscx-sample" ]; then sets+=("iscx-sample:$DATA/iscx-sample"); fi
[ ${#sets[@]} -gt 0 ] || { echo "bench_classify: no data/corpus and no $DATA/iscx-sample" >&2; exit 1; }
for s in "${sets[@]}"; do
  name=${s%%:*}; dir=${s#*:}
  files=("$dir"/*.pcap)
  # spread the sample over the classes: every k-th file
  if [ "$name" != corpus ] && [ ${#files[@]} -gt "$MAX_FILES" ]; then
    k=$(( (${#files[@]} + MAX_FILES - 1) / MAX_FILES )); sel=()
    for ((i = 0; i < ${#files[@]}; i += k)); do sel+=("${files[$i]}"); done
    files=("${sel[@]}")
  fi
  echo "<!-- $name: ${#files[@]} captures -->"
  run "$name per packet (batch 64)" -r "${files[@]}"
  run "$name per flow, first 10 (batch 64)" -r "${files[@]}" --per flow --first 10
  run "$name per packet, batch 1" -r "${files[@]}" --batch 1
done
echo
echo "seen/CPU-s counts every frame read (dropped ones are cheap); classified/CPU-s is the"
echo "rate of packets through the model including parsing, flow table and JSON output;"
echo "model-only is dp_model_predict's own rate (CPU time inside it) in the same run: the
inference bound that classify should come close to."
