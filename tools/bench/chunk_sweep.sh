#!/bin/bash
# tusk chunking / compression sweep on the shared bench datasets.
#
#   SCALE=0.1 RUNS=1 tools/bench/chunk_sweep.sh
#
# One fresh store per setting and round; v1 then v2 imported exactly as in
# import_bench.sh (bind mount at $BENCH_ROOT/src, cold page cache).  Settings:
#   avg<A>:  tusk init --chunk-min A/4 --chunk-avg A --chunk-max A*4  (default level)
#   zstd<N>: tusk init --compression-level N                          (default chunk sizes)
# Prints one row per setting: v1 wall and MB/s, stored v1 / raw, v2
# increment / ideal.  Results in $BENCH_ROOT/results/<timestamp>-sweep-s<SCALE>/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib/common.sh"
SWEEP_AVG=${SWEEP_AVG:-"64K 128K 256K 512K 1M"}
SWEEP_LEVELS=${SWEEP_LEVELS:-"1 3 6"}
CMDLINE="SCALE=$SCALE SEED=$SEED RUNS=$RUNS SWEEP_AVG='$SWEEP_AVG' SWEEP_LEVELS='$SWEEP_LEVELS' BENCH_ROOT=$BENCH_ROOT TUSK_BIN=$TUSK_BIN TUSK_INIT_ARGS='$TUSK_INIT_ARGS' $0${*:+ $*}"

# kib SIZE: SIZE with a K/M/G suffix (powers of 1024) in KiB
kib() {
  local n=${1%[KkMmGg]} u=${1: -1}
  [[ $n =~ ^[0-9]+$ ]] || die "bad size '$1' in SWEEP_AVG (use e.g. 64K, 1M)"
  case $u in K|k) echo "$n" ;; M|m) echo $((n * 1024)) ;; G|g) echo $((n * 1048576)) ;; *) die "size '$1' needs a K/M/G suffix" ;; esac
}

# ksize KIB: KIB as a tusk SIZE string (largest exact K/M/G unit)
ksize() {
  if (($1 % 1048576 == 0)); then echo "$(($1 / 1048576))G"
  elif (($1 % 1024 == 0)); then echo "$(($1 / 1024))M"
  else echo "${1}K"; fi
}

start_run sweep
T0=$SECONDS
ensure_packages jq python3
tusk_ok || die "$TUSK_BIN missing or \`tusk --help\` fails (build it: cmake -S . -B build && cmake --build build)"
AD=$HERE/adapters/tusk.sh

: >"$OUT/settings.tsv"
for a in $SWEEP_AVG; do
  k=$(kib "$a")
  ((k % 4 == 0)) || die "avg $a is not a multiple of 4 KiB"
  printf 'avg%s\t%s\n' "$a" "--chunk-min $(ksize $((k / 4))) --chunk-avg $(ksize "$k") --chunk-max $(ksize $((k * 4)))${TUSK_INIT_ARGS:+ $TUSK_INIT_ARGS}" >>"$OUT/settings.tsv"
done
for l in $SWEEP_LEVELS; do
  [[ $l =~ ^[0-9]+$ ]] || die "bad level '$l' in SWEEP_LEVELS"
  printf 'zstd%s\t%s\n' "$l" "--compression-level $l${TUSK_INIT_ARGS:+ $TUSK_INIT_ARGS}" >>"$OUT/settings.tsv"
done

log "chunk sweep: $CMDLINE -> $OUT"
gen_data
{
  echo "# tusk chunk-size / compression sweep"
  echo
  machine_info "$CMDLINE"
  echo "- tusk: $("$TUSK_BIN" --version 2>/dev/null | head -1) ($TUSK_BIN)"
  echo
} >"$OUT/results.md"

declare -A FAILED=()
for r in $(seq 1 "$RUNS"); do
  while IFS=$'\t' read -r name args; do
    [[ -z ${FAILED[$name]:-} ]] || continue
    log "== round $r/$RUNS: $name ($args)"
    t=$SECONDS
    if ! why=$(import_pair "$name" "$AD" TUSK_INIT_ARGS="$args" </dev/null); then
      FAILED[$name]=1
      log "SETTING $name FAILED: $why"
      printf '%s\t%s\n' "$name" "round $r: ${why:-error} (see $OUT/$name.log)" >>"$OUT/failed.tsv"
    fi
    log "   $name round $r took $((SECONDS - t)) s"
  done <"$OUT/settings.tsv"
done

$PY "$HERE/lib/report.py" sweep "$OUT" >>"$OUT/results.md"
echo >>"$OUT/results.md"
echo "Total sweep time $((SECONDS - T0)) s.  Raw records: results.jsonl; tusk output: <setting>.log; \`tusk stats --json\` after round 1: <setting>.stats.json." >>"$OUT/results.md"
cat "$OUT/results.md"
log "results: $OUT/results.md"
