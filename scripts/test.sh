#!/usr/bin/env bash
# Quick start, test suite: installs what is missing, builds, runs every test.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/build.sh" --with-tests
cd "$root/build"
ctest --output-on-failure -j"$(nproc)" "$@"
