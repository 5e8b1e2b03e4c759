#!/usr/bin/env bash
# Data-parallel scaling on this machine: training samples/s of one process
# (all CPUs as threads) against N Gloo ranks (CPUs divided among them), same
# global batch, the reference-size Tarrés model on synthetic 768-d features;
# and the share of step time spent averaging gradients. docs/DISTRIBUTED.md.
#   bench/distributed_scaling.sh [BUILD_DIR] [RANKS] [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:-$root/build}/bin
ranks=${2:-2}
rounds=${3:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -12 "$root/../shared/fixtures/models/tokenizer_data/corpus.txt" > "$work/sentences.txt"
"$bin/slt-data" synthetic --sentences "$work/sentences.txt" --output-dir "$work/data" --dim 768 --frames 200 \
  --train-copies $((8 * ranks)) > /dev/null 2>&1
"$bin/slt-data" train-tokenizer --tsv-file "$work/data/manifests/train_features.tsv" --output-dir "$work/spm" \
  --vocab-size 100 --lowercase --num-threads 1 > /dev/null 2>&1
common=(--config-name slt_tarres_fairseq "data.train_data_dirs=$work/data" "data.val_data_dir=$work/data"
  common.device=cpu common.fp16=false common.num_workers=1 wandb.enabled=false common.eval_print_samples=false
  "model.name_or_path=$work/spm" model.feature_dim=768 optim.epochs=1 common.print_freq=1
  common.eval_best_model_after_training=false)
# Median items/s of a log's step lines (rank 0's own items), skipping the first step.
median_rate() {
  grep -E '\] loss .* items/s' "$1" | tail -n +2 | sed -E 's/.* ([0-9.]+) items\/s.*/\1/' | sort -g |
    awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'
}
for round in $(seq "$rounds"); do
  rm -rf "$work/one" "$work/many"
  "$bin/slt-run" "${common[@]}" "common.output_dir=$work/one" optim.train_batch_size=$((8 * ranks)) > "$work/one.log" 2>&1
  "$bin/slt-run" "${common[@]}" "common.output_dir=$work/many" optim.train_batch_size=8 --nproc "$ranks" \
    > "$work/many.log" 2>&1
  one=$(median_rate "$work/one.log")
  many=$(awk -v r="$(median_rate "$work/many.log")" -v n="$ranks" 'BEGIN {print r * n}')
  share=$(grep -oE '[0-9.]+% of the training steps' "$work/many.log" | grep -oE '^[0-9.]+')
  echo "{\"bench\": \"distributed_scaling\", \"round\": $round, \"ranks\": $ranks, \"one_process_items_per_s\": $one," \
       "\"ranks_items_per_s\": $many, \"speedup\": $(awk -v a="$many" -v b="$one" 'BEGIN {printf "%.2f", a / b}')," \
       "\"gradient_averaging_share_percent\": $share}"
done
