#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build (build-sanitize/) of the
# core, the plugins the parsers live in, the parsers' tests and the fuzz
# targets; runs the tests, then every fuzz target for a bounded time.
#   scripts/sanitize.sh [--fuzz-seconds N]     (default 15 per target)
# LibTorch, FFmpeg and the other system libraries are not instrumented: their
# own bugs are out of reach, and only their process-lifetime allocations are
# suppressed (tests/fuzz/lsan.supp). docs/HARDENING.md says more.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${SLT_SANITIZE_BUILD:-$root/build-sanitize}"
fuzz_seconds=15
while [[ $# -gt 0 ]]; do
  case "$1" in
    --fuzz-seconds) fuzz_seconds=$2; shift 2 ;;
    *) echo "usage: scripts/sanitize.sh [--fuzz-seconds N]" >&2; exit 2 ;;
  esac
done
bash "$root/scripts/install-deps.sh" --with-tests
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  # -O1: a third faster to compile than -O2 and still quick under the sanitizers; GCC warns
  # about std::regex internals under ASan (maybe-uninitialized) where nothing is.
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1 -Wno-maybe-uninitialized" \
    -DSLT_SANITIZE=address,undefined -DSLT_BUILD_BENCHMARKS=OFF >/dev/null
fi
cmake --build "$build" --target slt_sanitized_tests slt-fuzz -- -j"$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
echo "== parsers' tests under ASan + UBSan"
"$build/bin/slt_sanitized_tests"
echo "== fuzz targets under ASan + UBSan, ${fuzz_seconds} s each"
bash "$root/scripts/fuzz.sh" --build "$build" --seconds "$fuzz_seconds"
