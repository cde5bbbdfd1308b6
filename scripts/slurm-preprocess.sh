#!/usr/bin/env bash
# Sharded preprocessing on a Slurm cluster: an array job preprocesses one
# shard of the capture folder per task (deeppacket preprocess --shard I/N),
# then a job that waits for all of them merges the shards into one dataset
# (deeppacket merge), byte-identical to a one-machine run.
#
#   bash scripts/slurm-preprocess.sh CAPTURE_DIR OUT_DIR [SHARDS]    (on the login node)
#
# submits both jobs (SHARDS defaults to 8). Shard I is written to
# OUT_DIR/shard-I, the merged dataset to OUT_DIR/dataset. CAPTURE_DIR and
# OUT_DIR must be on a file system every node sees (shards may also be
# written to node-local disk and copied; merge only needs the shard folders).
# A task that fails or is killed can be resubmitted: preprocess and merge
# resume. Adjust the #SBATCH lines (partition, account, time) to the site;
# the times below are for the full ISCX set (28 GB) in 8 shards (README,
# "The full ISCX VPN-nonVPN dataset").
#
# The same file is the body of both jobs (selected by DP_STEP).
#SBATCH --job-name=deeppacket-preprocess
#SBATCH --cpus-per-task=16
#SBATCH --mem=8G
#SBATCH --time=01:00:00
#SBATCH --output=%x-%A_%a.out
set -euo pipefail

DEEPPACKET=${DEEPPACKET:-deeppacket}

case "${DP_STEP:-submit}" in
submit)
    if [ $# -lt 2 ] || [ $# -gt 3 ]; then
        echo "usage: $0 CAPTURE_DIR OUT_DIR [SHARDS]" >&2
        exit 2
    fi
    src=$(realpath "$1") out=$(realpath -m "$2") n=${3:-8}
    case "$n" in '' | *[!0-9]* | 0) echo "$0: SHARDS must be a positive number, not '$n'" >&2; exit 2;; esac
    mkdir -p "$out"
    script=$(realpath "$0")
    jid=$(sbatch --parsable --array="0-$((n - 1))" \
        --export=ALL,DP_STEP=shard,DP_SRC="$src",DP_OUT="$out",DP_SHARDS="$n" "$script")
    sbatch --parsable --dependency="afterok:${jid%%;*}" --job-name=deeppacket-merge \
        --cpus-per-task=2 \
        --export=ALL,DP_STEP=merge,DP_SRC="$src",DP_OUT="$out",DP_SHARDS="$n" "$script" >/dev/null
    echo "submitted: preprocess array job $jid ($n shards) and the merge after it -> $out/dataset"
    ;;
shard)
    i=${SLURM_ARRAY_TASK_ID:?not run as a Slurm array task}
    # the whole folder is listed on every node, only shard i's captures are read
    "$DEEPPACKET" preprocess -q -s "$DP_SRC" -t "$DP_OUT/shard-$i" --shard "$i/$DP_SHARDS" \
        -j "${SLURM_CPUS_PER_TASK:-$(nproc)}"
    ;;
merge)
    shards=()
    for ((i = 0; i < DP_SHARDS; i++)); do shards+=("$DP_OUT/shard-$i"); done
    "$DEEPPACKET" merge -q -t "$DP_OUT/dataset" "${shards[@]}"
    ;;
*)
    echo "$0: unknown DP_STEP '$DP_STEP'" >&2
    exit 2
    ;;
esac
