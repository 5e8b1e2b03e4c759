#!/usr/bin/env bash
# The README's demo, reduced (scripts/demo.sh --small): every stage leaves its
# files, a rerun reuses them, and the trained model beats the trivial baseline
# (the most frequent training caption for every test video) on test BLEU-4.
set -euo pipefail
source_dir=$1 build_dir=$2 work=$3
rm -rf "$work"
export SLT_DEMO_DIR="$work" SLT_DEMO_BUILT=1 SLT_BUILD_DIR="$build_dir"
log="$work.log"
bash "$source_dir/scripts/demo.sh" --small >"$log" 2>&1 || { tail -n 40 "$log"; echo "FAIL: the demo failed"; exit 1; }
tail -n 25 "$log"
fail() { echo "FAIL: $*"; exit 1; }
for file in synthsign/synthsign.json synthsign/manifests/train.tsv synthsign/manifests/test_features.tsv \
            synthsign/features/extractor.yaml synthsign/feature_stats.pt signhiera_demo.pth tokenizer/dictionary.txt \
            run/config.yaml run/extractor.yaml run/best_model.pth run/test_results.json run/test_outputs.tsv \
            report.md report.html; do
  [[ -s "$work/$file" ]] || fail "the demo left no $file"
done
videos=$(find "$work/synthsign/videos" -name '*.mp4' | wc -l)
features=$(find "$work/synthsign/features/0" -name '*.pt' | wc -l)
[[ "$videos" -eq "$features" && "$videos" -gt 0 ]] || fail "$videos videos but $features feature files"
[[ $(grep -c "reference:" "$log") -eq 3 ]] || fail "three translated test videos expected"
last=$(tail -n 1 "$log")
[[ "$last" == *"test BLEU-4"* ]] || fail "the last line does not state the test BLEU-4: $last"

bleu4=$(grep -o '"bleu4": *[0-9.]*' "$work/run/test_results.json" | grep -o '[0-9.]*$')
# awk reads to the end: with `head -n 1` sort could be killed by SIGPIPE, which
# pipefail turned into a silent exit of this script (the rare demo_small failure).
caption=$(cut -f3 "$work/synthsign/manifests/train.tsv" | sort | uniq -c | sort -k1,1nr -k2 |
          awk 'NR == 1 { sub(/^ *[0-9]+ /, ""); print }')
cut -f3 "$work/synthsign/manifests/test.tsv" >"$work/refs.txt"
while IFS= read -r _; do printf '%s\n' "$caption"; done <"$work/refs.txt" >"$work/baseline.txt"
baseline=$("$build_dir/bin/slt-score" --hyps "$work/baseline.txt" --refs "$work/refs.txt" --json |
           grep -o '"bleu4": *[0-9.]*' | grep -o '[0-9.]*$')
echo "test BLEU-4: model $bleu4, most frequent training caption $baseline"
awk -v m="$bleu4" -v b="$baseline" 'BEGIN { exit !(m > b) }' || fail "the model ($bleu4) does not beat the baseline ($baseline)"

# Every stage is resumable: a second run reuses everything.
start=$(date +%s)
bash "$source_dir/scripts/demo.sh" --small >"$log.again" 2>&1 || { tail -n 20 "$log.again"; fail "the rerun failed"; }
grep -q "complete already" "$log.again" || fail "the rerun generated SynthSign again"
! grep -q "done: [1-9][0-9]* videos extracted" "$log.again" || fail "the rerun extracted features again"
echo "rerun: $(( $(date +%s) - start )) s"
