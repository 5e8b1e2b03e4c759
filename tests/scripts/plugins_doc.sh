#!/usr/bin/env bash
# Follows docs/PLUGINS.md literally: extracts its `sh` blocks and runs them, in
# order, in a scratch folder that looks like the slt tree (build/, docs/), with
# PREFIX (the install prefix) and TOKENIZER (the fixtures' tiny T5) set.
set -euo pipefail
source_dir=$1 build_dir=$2 work=$3 fixtures=$4
rm -rf "$work"
mkdir -p "$work"
ln -s "$build_dir" "$work/build"
ln -s "$source_dir/docs" "$work/docs"
awk '/^```sh$/ { inside = 1; next } /^```$/ { inside = 0 } inside' "$source_dir/docs/PLUGINS.md" >"$work/steps.sh"
[[ $(grep -c . "$work/steps.sh") -gt 10 ]] || { echo "FAIL: no sh blocks found in docs/PLUGINS.md"; exit 1; }
cd "$work"
export PREFIX="$work/prefix" TOKENIZER="$fixtures/models/tiny_t5"
unset SLT_PLUGIN_PATH
bash -euo pipefail -x steps.sh >"$work/steps.log" 2>&1 || { tail -n 40 "$work/steps.log"; echo "FAIL: a step of docs/PLUGINS.md failed"; exit 1; }
fail() { echo "FAIL: $*"; exit 1; }
grep -q "model.hello_model" "$work/steps.log" || fail "hello_model was not listed"
grep -q "hidden_dim" "$work/steps.log" || fail "--describe printed no hidden_dim"
grep -q "arch: hello_model" runs/hello/config.yaml || fail "the run did not record arch: hello_model"
[[ -s runs/hello/test_results.json && -s runs/hello-spm/test_results.json ]] || fail "a run wrote no test results"
grep -q "tokenizer: sentencepiece" runs/hello-spm/config.yaml || fail "the second run did not record its tokenizer"
# Loaded from the out-of-tree build, not from the slt tree.
SLT_PLUGIN_PATH="$work/build-hello" "$PREFIX/bin/slt-run" --list-plugins | grep -q "$work/build-hello" ||
  fail "hello_model was not loaded from the out-of-tree build"
echo "docs/PLUGINS.md followed literally: built, listed, trained, evaluated, translated, tokenizer swapped"
