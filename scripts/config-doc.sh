#!/usr/bin/env bash
# Rewrites docs/CONFIG.md from the registered schemas (slt-run --config-reference).
#   scripts/config-doc.sh [BUILD_DIR]        (default: build/)
#   scripts/config-doc.sh --check [BUILD_DIR] exits 1 when docs/CONFIG.md is stale
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
check=false
if [[ "${1:-}" == "--check" ]]; then check=true; shift; fi
build=${1:-$root/build}
doc="$root/docs/CONFIG.md"
# Only the plugins built with slt, whatever SLT_PLUGIN_PATH says here.
generated=$(env -u SLT_PLUGIN_PATH "$build/bin/slt-run" --config-reference)
if $check; then
  if ! diff -u "$doc" <(printf '%s\n' "$generated") >&2; then
    echo "docs/CONFIG.md is stale: run scripts/config-doc.sh to regenerate it" >&2
    exit 1
  fi
else
  printf '%s\n' "$generated" > "$doc"
  echo "wrote $doc"
fi
