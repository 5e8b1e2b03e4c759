#!/usr/bin/env bash
# Runs every fuzz target (tests/fuzz/) on its seed corpus and the regression
# inputs in tests/fuzz/regressions/<target>/, then mutates for N seconds each.
#   scripts/fuzz.sh [--build DIR] [--seconds N] [--only TARGET]
# --seconds 0 replays only (the test suite does that). Findings and the input
# of a sanitizer abort land in DIR/fuzz-artifacts/ (see docs/HARDENING.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build"
seconds=20
only=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "usage: scripts/fuzz.sh [--build DIR] [--seconds N] [--only TARGET]" >&2; exit 2 ;;
  esac
done
fixtures="${SLT_FIXTURES_DIR:-$root/../shared/fixtures}"
seeds="$root/tests/fuzz/seeds"
declare -A corpus=(
  [pt]="$fixtures/hiera/pipeline/features $fixtures/hiera/tarres/tarres_inputs.pt"
  [pt_rows]="$fixtures/hiera/pipeline/features"
  [safetensors]="$fixtures/models/tiny_t5/model.safetensors"
  [yaml]="$root/configs"
  [overrides]="$seeds/overrides"
  [manifest]="$seeds/manifest $fixtures/hiera/DATASET/manifests"
  [vocab_json]="$fixtures/models/tiny_bart/vocab.json"
  [merges]="$fixtures/models/tiny_bart/merges.txt"
  [tokenizer_json]="$seeds/tokenizer_json"
  [tokenizer_config]="$fixtures/models/tiny_bart/tokenizer_config.json $fixtures/models/tiny_t5/tokenizer_config.json"
  [dictionary]="$fixtures/hiera/tarres/dictionary.txt"
  [generation_config]="$fixtures/models/tiny_t5/config.json $fixtures/models/tiny_bart/config.json $fixtures/models/tiny_bart/generation_config.json"
  [metrics]="$fixtures/metrics/dev015_edge.tsv $fixtures/metrics/dev040_mixed.tsv"
  [video]="$fixtures/hiera/DATASET/videos/00000/0000001-tsrc2-25fps-0s50.mp4"
)
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
# LibTorch's and glibc's one-time allocations live for the whole process.
export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
for target in $("$build/bin/slt-fuzz" --list | cut -f1); do
  [[ -n "$only" && "$target" != "$only" ]] && continue
  inputs=()
  for path in ${corpus[$target]:-}; do [[ -e "$path" ]] && inputs+=("$path"); done
  [[ -d "$root/tests/fuzz/regressions/$target" ]] && inputs+=("$root/tests/fuzz/regressions/$target")
  "$build/bin/slt-fuzz" "$target" --seconds "$seconds" --artifacts "$artifacts" "${inputs[@]}"
done
