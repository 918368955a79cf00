#!/bin/bash
# The test command: installs what is missing, builds, and runs the whole
# suite twice: on the normal build, then on an AddressSanitizer +
# UndefinedBehaviorSanitizer build (TUSK_TEST_SANITIZE=0 skips that pass).
set -euo pipefail
cd "$(dirname "$0")/.."
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
