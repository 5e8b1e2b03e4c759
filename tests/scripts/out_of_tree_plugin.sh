#!/usr/bin/env bash
# Installs slt into a scratch prefix, builds docs/examples/hello_model against
# it with find_package(slt) (no slt sources), loads it, and (given the fixtures
# folder) trains, evaluates and translates with it as a user would.
set -euo pipefail
build_dir=$1 example_dir=$2 work=$3 fixtures=${4:-}
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$example_dir" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
plugin=$(find "$work/build" -name 'libslt_hello_model.so' | head -n 1)
[[ -n "$plugin" ]] || { echo "FAIL: the example did not produce libslt_hello_model.so"; exit 1; }
listing=$(SLT_PLUGIN_PATH="$(dirname "$plugin")" "$work/prefix/bin/slt-run" --list-plugins)
echo "$listing"
grep -q "model.hello_model" <<<"$listing" || { echo "FAIL: hello_model not listed"; exit 1; }
grep -q "$work/build" <<<"$listing" || { echo "FAIL: not loaded from the out-of-tree build"; exit 1; }
SLT_PLUGIN_PATH="$(dirname "$plugin")" "$work/prefix/bin/slt-run" --describe model.hello_model | grep -q "hidden_dim" \
  || { echo "FAIL: --describe model.hello_model lacks its schema"; exit 1; }
echo "out-of-tree plugin built against the installed slt and loaded"

# The plugin is a real architecture to slt: it trains, evaluates and translates
# by name with one of its own keys, core untouched.
[[ -n "$fixtures" ]] || exit 0
bin="$work/prefix/bin"
export SLT_PLUGIN_PATH="$(dirname "$plugin")"
head -n 12 "$fixtures/models/tokenizer_data/corpus.txt" >"$work/sentences.txt"
"$bin/slt-data" synthetic --sentences "$work/sentences.txt" --output-dir "$work/data" --dim 32 --frames 12 \
  --train-copies 2 >"$work/data.log" 2>&1 || { cat "$work/data.log"; exit 1; }
run=(--config-name slt_t5 model.arch=hello_model model.hidden_dim=16 model.feature_dim=32
     "model.name_or_path=$fixtures/models/tiny_t5" model.num_beams=2 data.max_target_positions=40
     "data.train_data_dirs=$work/data" "data.val_data_dir=$work/data" "common.output_dir=$work/run"
     common.device=cpu common.fp16=false common.num_workers=1 wandb.enabled=false optim.epochs=1
     optim.warmup_epochs=0 optim.train_batch_size=4 optim.val_batch_size=8)
"$bin/slt-run" "${run[@]}" >"$work/train.log" 2>&1 || { tail -n 30 "$work/train.log"; echo "FAIL: training hello_model"; exit 1; }
grep -q "hidden_dim: 16" "$work/run/config.yaml" || { echo "FAIL: config.yaml lacks model.hidden_dim"; exit 1; }
for file in checkpoint-00000.pth test_results.json test_outputs.tsv; do
  [[ -f "$work/run/$file" ]] || { echo "FAIL: the run wrote no $file"; exit 1; }
done
"$bin/slt-run" "${run[@]}" common.eval=true "common.load_model=$work/run/checkpoint-00000.pth" >"$work/eval.log" 2>&1 \
  || { tail -n 30 "$work/eval.log"; echo "FAIL: evaluating hello_model"; exit 1; }
grep -q '"bleu4"' "$work/run/test_results.json" || { echo "FAIL: no BLEU-4 in test_results.json"; exit 1; }
feature=$(find "$work/data/features" -name '*.pt' | head -n 1)
"$bin/slt-translate" --model "$work/run/checkpoint-00000.pth" --json "$feature" >"$work/translate.log" 2>&1 \
  || { cat "$work/translate.log"; echo "FAIL: slt-translate with hello_model"; exit 1; }
grep -q '"text"' "$work/translate.log" || { cat "$work/translate.log"; echo "FAIL: slt-translate printed no translation"; exit 1; }
echo "hello_model trained, evaluated and translated out of tree: $(cat "$work/translate.log")"
