#!/bin/bash
# The test command: installs what is missing, builds, and runs the whole
# suite. With TUSK_SANITIZE=1 the suite runs on an ASan/UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
dir=$(tools/build.sh)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$dir"
ctest --output-on-failure -j"$(nproc)" --timeout 900
