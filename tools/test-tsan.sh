#!/bin/bash
# The daemon-side tests under ThreadSanitizer: builds build-tsan/ (TUSK_TSAN=ON,
# gcc, -O1) with only the binaries below and runs them.
#
#   tools/test-tsan.sh          the test command's pass (tools/test.sh): every test of the
#                               binaries where the daemon's threads meet, but the volume
#                               tests below, and 20 model sequences
#   tools/test-tsan.sh --full   every test of those binaries (100 model sequences)
#   tools/test-tsan.sh --all    --full, the store-level and the real-program tests, and tusk run
#                               and lineage (the run view's FUSE threads in tusk run itself)
#                               (tools/test.sh --long)
#
# The volume tests (200,000 directory entries, a 64 MiB file, every fallocate
# mode, a full disk, real programs, a daemon killed at every step of a commit)
# take 530 of the 1360 CPU seconds of --full under TSan and exercise the same
# threads as the others, with more data; leaving them to --long keeps the test
# command under 30 minutes.
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
VOLUME_TESTS='^(BigDirectoryTest\.TwoHundredThousandEntries|WorkspaceTest\.ChangingOneMiBOfA64MiBFileStoresAboutThatMuch|WorkspaceTest\.FallocateInEveryModeMatchesALocalFile|WorkspaceMountTest\.(FallocateWorksAsOnALocalDisk|RealProgramsWorkInAWorkspace|AFullDiskGivesENOSPCAndKeepsEarlierData|ADaemonKilledDuringACommitLeavesTheOldOrTheNewCommit))$'
mode=${1:-}
case "$mode" in
  "") exclude=(-E "$VOLUME_TESTS"); export TUSK_MODEL_SEQUENCES=${TUSK_MODEL_SEQUENCES:-20} ;;
  --full) exclude=() ;;
  --all) exclude=(); TESTS+=(programs_test repository_test run_test lineage_test) ;;
  *) echo "usage: tools/test-tsan.sh [--full|--all]" >&2; exit 2 ;;
esac
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
  ctest --output-on-failure -j"$(nproc)" --timeout 900 -L "^($labels)\$" "${exclude[@]}") || status=1
if compgen -G "$reports/report.*" >/dev/null; then
  echo "ThreadSanitizer reports (full text in $reports):" >&2
  grep -h '^SUMMARY' "$reports"/report.* | sort | uniq -c >&2
  status=1
fi
exit $status
