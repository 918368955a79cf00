#!/bin/bash
# The daemon-side tests under ThreadSanitizer: builds build-tsan/ (TUSK_TSAN=ON,
# gcc) with only the binaries below and runs them.
#
#   tools/test-tsan.sh          the tests where the daemon's threads meet
#   tools/test-tsan.sh --all    those, the store-level and the real-program tests (tools/test.sh --long)
#
# The mount tests start `tusk mount` as child processes, whose reports would go
# to a log nobody reads, so every process reports to
# build-tsan/tsan-reports/report.<pid> (TSAN_OPTIONS log_path); any report
# fails the run and its summary lines are printed. Randomized campaigns run
# their sanitizer-build sizes (tests/sanitizer_scale.h).
set -euo pipefail
cd "$(dirname "$0")/.."
TESTS=(mount_test random_read_test snapshot_fs_test workspace_model_test workspace_mount_test workspace_test
       workspace_gc_test lease_test control_socket_test)
[ "${1:-}" = --all ] && TESTS+=(programs_test repository_test)
dir=build-tsan
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUSK_TSAN=ON >/dev/null
cmake --build "$dir" -j"$(nproc)" --target tusk "${TESTS[@]}" >&2
reports=$PWD/$dir/tsan-reports
rm -rf "$reports"
mkdir -p "$reports"
labels=$(IFS='|'; echo "${TESTS[*]}")
echo "== ThreadSanitizer: ${TESTS[*]}"
status=0
# second_deadlock_stack: both stacks of a lock-order report. exitcode 66 is TSan's default.
(cd "$dir" && TSAN_OPTIONS="log_path=$reports/report second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
  ctest --output-on-failure -j"$(nproc)" --timeout 900 -L "^($labels)\$") || status=1
if compgen -G "$reports/report.*" >/dev/null; then
  echo "ThreadSanitizer reports (full text in $reports):" >&2
  grep -h '^SUMMARY' "$reports"/report.* | sort | uniq -c >&2
  status=1
fi
exit $status
