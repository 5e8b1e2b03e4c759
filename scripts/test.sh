#!/usr/bin/env bash
# Quick start, test suite: installs what is missing, builds, runs every test,
# then the sanitizer build and the fuzz targets.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/build.sh" --with-tests
cd "$root/build"
# Tests run side by side, one per core: one compute thread each (a run's
# default is every usable CPU; the test of that default unsets this).
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ctest --output-on-failure -j"$(nproc)" "$@"
# The parsers under AddressSanitizer + UndefinedBehaviorSanitizer and a bounded
# fuzz run of each (build-sanitize/, docs/HARDENING.md); SLT_SKIP_SANITIZERS=1 skips it.
if [[ "${SLT_SKIP_SANITIZERS:-0}" != 1 ]]; then
  bash "$root/scripts/sanitize.sh"
fi
