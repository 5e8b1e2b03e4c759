#!/usr/bin/env bash
# Installs slt into a scratch prefix, builds docs/examples/hello_model against
# it with find_package(slt) (no slt sources), and loads the result.
set -euo pipefail
build_dir=$1 example_dir=$2 work=$3
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
