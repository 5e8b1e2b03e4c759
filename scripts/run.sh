#!/usr/bin/env bash
# Quick start, main job: builds slt if needed, then runs slt-run with the given arguments.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/build.sh" >&2
exec "$root/build/bin/slt-run" "$@"
