#!/bin/bash
# The test command: installs what is missing, builds, and runs the whole
# suite twice: on the normal build, then on an AddressSanitizer +
# UndefinedBehaviorSanitizer build (TUSK_TEST_SANITIZE=0 skips that pass).
# Both replay every checked-in fuzz corpus (the fuzz_replay.* tests). Then
# every fuzz target runs for TUSK_FUZZ_SECONDS (default 15; 0 skips) under
# libFuzzer (clang, build-fuzz/); a crash fails the run and leaves its input
# in build-fuzz/fuzz-crashes/<target>/ (tools/fuzz/run.sh).
#
#   tools/test.sh --long   the same, then on the normal build the full
#                          damage campaign (1200 flips; TUSK_DAMAGE_FLIPS,
#                          default 160 in the suite) and 400 power-loss runs
#                          (TUSK_POWER_LOSS_RUNS, default 25), run outside
#                          ctest's per-test timeout, then a ThreadSanitizer
#                          build of the daemon-side tests (build-tsan/), and
#                          every fuzz target for TUSK_FUZZ_SECONDS (default
#                          600) each
set -euo pipefail
cd "$(dirname "$0")/.."
long=0
[ "${1:-}" = --long ] && long=1
tools/install-deps.sh

run_suite() {  # run_suite SANITIZE(0|1)
  local dir
  dir=$(TUSK_SANITIZE=$1 tools/build.sh)
  echo "== test suite on $dir"
  (cd "$dir" && ctest --output-on-failure -j"$(nproc)" --timeout 900)
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_suite 0
if [ "${TUSK_TEST_SANITIZE:-1}" = 1 ]; then
  run_suite 1
fi
if [ $long = 1 ]; then
  # ~15 and ~3 minutes: longer than ctest's 600 s per test allows.
  echo "== the full damage campaign and 400 power-loss runs"
  TUSK_DAMAGE_FLIPS=${TUSK_DAMAGE_FLIPS:-1200} build/tests/damage_test
  TUSK_POWER_LOSS_RUNS=${TUSK_POWER_LOSS_RUNS:-400} build/tests/power_loss_test
  tools/test-tsan.sh
fi
seconds=${TUSK_FUZZ_SECONDS:-$([ $long = 1 ] && echo 600 || echo 15)}
if [ "$seconds" != 0 ]; then
  echo "== fuzzing every target for $seconds s"
  ASAN_OPTIONS=detect_leaks=1 tools/fuzz/run.sh "$seconds"
fi
