#!/bin/bash
# The test command (README, .ci/run): installs what is missing, builds, and runs
#   0. a real S3 server for the S3 tests (tests/s3/rgw.sh: Ceph radosgw on
#      127.0.0.1, a few seconds to start), its address and keys exported as
#      TUSK_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID, ... and stopped on exit
#      whatever happens; TUSK_TEST_S3=0 runs without it (the S3 integration
#      tests then skip, saying so);
#   1. the whole suite on the normal build (build/), which replays every
#      checked-in fuzz corpus too (the fuzz_replay.* tests);
#   2. every fuzz target for TUSK_FUZZ_SECONDS (default 10; 0 skips) under
#      libFuzzer in a clang ASan + UBSan build (build-fuzz/), starting from its
#      corpus; a crash fails the run and leaves its input in
#      build-fuzz/fuzz-crashes/<target>/ (tools/fuzz/run.sh).
# That keeps it under 30 minutes on 2 cores. Each stage prints its time.
#
#   tools/test.sh --long   also (about 4 hours on 2 cores in all):
#     - the whole suite on an AddressSanitizer + UndefinedBehaviorSanitizer
#       build (build-sanitize/; TUSK_TEST_SANITIZE=1 adds this pass to the
#       short command, =0 drops it from --long);
#     - all the daemon-side tests, the store-level and real-program tests on
#       the ThreadSanitizer build (tools/test-tsan.sh --all; TUSK_TEST_TSAN=1
#       adds the daemon-side ones, tools/test-tsan.sh, to the short command:
#       DECISIONS puts the TSan build in the long command, to keep the short
#       one under 30 minutes);
#     - on the normal build, the full damage campaign (1200 flips;
#       TUSK_DAMAGE_FLIPS, default 160 in the suite), 400 power-loss runs of
#       the store (TUSK_POWER_LOSS_RUNS, default 25) and 800 of a workspace
#       (TUSK_WS_POWER_LOSS_RUNS, default 25), outside ctest's per-test timeout;
#     - every fuzz target for TUSK_FUZZ_SECONDS (default 600) each.
# Sanitizer builds run the randomized campaigns smaller (tests/sanitizer_scale.h).
set -euo pipefail
cd "$(dirname "$0")/.."
long=0
[ "${1:-}" = --long ] && long=1
started=$(date +%s)
stage_start=$started
stage() {  # stage NAME: closes the previous stage with its time, opens the next
  local now
  now=$(date +%s)
  echo "== [$(date +%T)] previous stage: $((now - stage_start)) s; total $((now - started)) s; next: $1"
  stage_start=$now
}

stage "installing dependencies"
tools/install-deps.sh

if [ "${TUSK_TEST_S3:-1}" != 0 ]; then
  stage "starting the S3 test server"
  rgw_dir=$(mktemp -d /tmp/tusk-test-rgw.XXXXXX)
  trap 'tests/s3/rgw.sh stop "$rgw_dir" >/dev/null 2>&1 || true' EXIT
  rgw_env=$(tests/s3/rgw.sh start "$rgw_dir" | tail -n 1)
  # shellcheck disable=SC1090
  . "$rgw_env"
fi

run_suite() {  # run_suite SANITIZE(0|1)
  local dir
  stage "build (TUSK_SANITIZE=$1)"
  dir=$(TUSK_SANITIZE=$1 tools/build.sh)
  stage "test suite on $dir"
  (cd "$dir" && ctest --output-on-failure -j"$(nproc)" --timeout 900)
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_suite 0
if [ "${TUSK_TEST_SANITIZE:-$long}" = 1 ]; then
  run_suite 1
fi
if [ "${TUSK_TEST_TSAN:-$long}" = 1 ]; then
  stage "ThreadSanitizer build and tests"
  if [ $long = 1 ]; then tools/test-tsan.sh --all; else tools/test-tsan.sh; fi
fi
if [ $long = 1 ]; then
  # ~15, ~3 and ~5 minutes: longer than ctest's 600 s per test allows.
  stage "the full damage campaign and the long power-loss runs"
  TUSK_DAMAGE_FLIPS=${TUSK_DAMAGE_FLIPS:-1200} build/tests/damage_test
  TUSK_POWER_LOSS_RUNS=${TUSK_POWER_LOSS_RUNS:-400} build/tests/power_loss_test
  TUSK_WS_POWER_LOSS_RUNS=${TUSK_WS_POWER_LOSS_RUNS:-800} build/tests/workspace_power_loss_test
fi
seconds=${TUSK_FUZZ_SECONDS:-$([ $long = 1 ] && echo 600 || echo 10)}
if [ "$seconds" != 0 ]; then
  stage "fuzzing every target for $seconds s"
  ASAN_OPTIONS=detect_leaks=1 tools/fuzz/run.sh "$seconds"
fi
stage "done"
