#!/bin/bash
# Fuzzes every target of tests/fuzz for SECONDS each (default 600), one after
# the other, starting from its checked-in corpus:
#
#   tools/fuzz/run.sh [SECONDS] [TARGET...]     # targets: names of tests/fuzz/*_fuzz.cc without _fuzz
#
# Builds build-fuzz/ (clang) first. New inputs go to build-fuzz/fuzz-work/<target>/ (the
# checked-in corpus is not touched; tools/fuzz/make-corpus.sh merges into it). A crash, leak,
# timeout or out-of-memory stops that target and leaves the input in
#   build-fuzz/fuzz-crashes/<target>/crash-<sha1> (or leak-, timeout-, oom-)
# with the log next to it; reproduce it with
#   build-fuzz/tests/fuzz/<target>_fuzz build-fuzz/fuzz-crashes/<target>/crash-<sha1>
# (or under gcc: build/tests/fuzz/<target>_fuzz FILE). Prints executions per target and exits
# non-zero if any target failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
shift || true
dir=$(tools/fuzz/build.sh)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for src in tests/fuzz/*_fuzz.cc; do
    name=$(basename "$src" .cc)
    targets+=("${name%_fuzz}")
  done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
summary=$(mktemp)
for name in "${targets[@]}"; do
  work=$dir/fuzz-work/$name
  crashes=$dir/fuzz-crashes/$name
  log=$crashes/fuzz.log
  mkdir -p "$work" "$crashes"
  start=$(date +%s)
  status=ok
  # -max_len: packs and payloads of the seed store reach ~150 KiB.
  "$dir/tests/fuzz/${name}_fuzz" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -max_len=262144 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1 || status=FAILED
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "$name: $status, $execs executions in $(( $(date +%s) - start )) s, corpus $(ls "$work" | wc -l) + $(ls "tests/fuzz/corpus/$name" | wc -l)" | tee -a "$summary"
  if [ "$status" != ok ]; then
    failed+=("$name")
    grep -E 'ERROR|FUZZ_CHECK|SUMMARY|Test unit written' "$log" | head -n 5 >&2 || true
    echo "  log: $log" >&2
  fi
done
echo "== fuzz summary ($seconds s per target)"
cat "$summary"
rm -f "$summary"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz targets failed: ${failed[*]}; inputs in $dir/fuzz-crashes/<target>/" >&2
  exit 1
fi
