#!/usr/bin/env bash
# The slt demo: sign-language video to BLEU on a generated corpus, on any machine.
#   ./scripts/demo.sh            the full demo (about 8 minutes on 2 cores after the build)
#   ./scripts/demo.sh --small    a reduced run (CI: fewer videos and epochs)
# Every stage is resumable: a second run reuses what exists and takes seconds.
# Outputs go to demo/ (or $SLT_DEMO_DIR).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${SLT_DEMO_DIR:-$root/demo}
train=400 val=50 test=50 epochs=80 vocab=100 estimate="about 8 minutes"
if [[ "${1:-}" == "--small" ]]; then
  train=200 val=20 test=20 epochs=60 vocab=80 estimate="about 4 minutes"
  out=${SLT_DEMO_DIR:-$root/demo-small}
elif [[ -n "${1:-}" ]]; then
  echo "usage: $0 [--small]" >&2
  exit 2
fi

# SLT_DEMO_BUILT=1: the build is done already (the test suite runs the demo from its build,
# SLT_BUILD_DIR).
if [[ "${SLT_DEMO_BUILT:-}" != 1 ]]; then
  echo "slt demo: installing what is missing and building first (a fresh clone: about 12 minutes on 2 cores)"
  bash "$root/scripts/build.sh" >&2
fi
bin="${SLT_BUILD_DIR:-$root/build}/bin"
data="$out/synthsign"
started=$(date +%s)
stage() { echo; echo "== [$(( $(date +%s) - started )) s] $*"; }

echo "slt demo: SynthSign videos -> SignHiera features -> Tarrés transformer -> BLEU, in $out"
echo "          $train/$val/$test train/val/test videos, $epochs epochs: $estimate on 2 cores; reruns reuse every stage"

stage "1/6 generating SynthSign ($((train + val + test)) videos)"
"$bin/slt-data" synthsign --output-dir "$data" --train "$train" --val "$val" --test "$test" --seed 0

stage "2/6 extracting features with a randomly initialised SignHiera (configs/demo_extract.yaml)"
weights="$out/signhiera_demo.pth"
[[ -f "$weights" ]] || "$bin/slt-extract" --config-name demo_extract --init-weights "$weights" --seed 0
for split in train val test; do
  # The summary line of each shard of 25 videos; failures and warnings.
  "$bin/slt-extract" --config-name demo_extract data_dir="$data" output_dir="$data/features" \
      pretrained_model_path="$weights" split="$split" 2>&1 | { grep --line-buffered -E "done:|all [0-9]+ shards|error|warn|failed_" || true; }
  "$bin/slt-data" feature-lengths --manifest "$data/manifests/$split.tsv" --data-dir "$data/features/0" \
      --output-dir "$data/manifests" 2>&1 | tail -n 1
done
# Random features carry a large offset common to every frame: train on them
# normalised by the training set's mean and std (data.feature_stats).
[[ -f "$data/feature_stats.pt" ]] ||
  "$bin/slt-data" feature-stats --manifest "$data/manifests/train.tsv" --data-dir "$data/features/0" \
      --output "$data/feature_stats.pt"

stage "3/6 training the tokenizer on the training captions"
[[ -f "$out/tokenizer/dictionary.txt" ]] ||
  "$bin/slt-data" train-tokenizer --tsv-file "$data/manifests/train_features.tsv" --output-dir "$out/tokenizer" \
      --vocab-size "$vocab" --lowercase --num-threads 2

stage "4/6 training the Tarrés transformer from scratch (configs/demo.yaml), then evaluating"
# One line per epoch here; everything in $out/run/logs/train.log.
"$bin/slt-run" --config-name demo data.train_data_dirs="$data" data.val_data_dir="$data" \
    data.feature_stats="$data/feature_stats.pt" model.name_or_path="$out/tokenizer" common.output_dir="$out/run" \
    optim.epochs="$epochs" 2>&1 | { grep --line-buffered -E "epoch [0-9]+ done|\* test|error|warn|finished" || true; }

stage "5/6 translating three test videos end to end (video -> features -> text)"
mapfile -t examples < <(head -n 3 "$data/manifests/test.tsv")
videos=()
for line in "${examples[@]}"; do
  name=${line%%$'\t'*}
  videos+=("$data/videos/${name:0:5}/$name")
done
# The run folder records the extractor its features came from (extractor.yaml).
mapfile -t predictions < <("$bin/slt-translate" --model "$out/run" "${videos[@]}")
for i in "${!examples[@]}"; do
  printf '  %s\n    reference:  %s\n    prediction: %s\n' "${examples[$i]%%$'\t'*}" "${examples[$i]##*$'\t'}" \
      "${predictions[$i]}"
done

stage "6/6 report with learning curves"
"$bin/slt-report" "$out/run" --output-dir "$out" >/dev/null
awk '/^\|/ && shown++ < 3' "$out/report.md"

bleu4=$(grep -o '"bleu4": *[0-9.]*' "$out/run/test_results.json" | grep -o '[0-9.]*$')
echo
echo "slt demo finished in $(( $(date +%s) - started )) s: test BLEU-4 $bleu4; outputs in $out (report: $out/report.html)"
