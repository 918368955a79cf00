#!/bin/bash
# Import benchmark: tusk beside restic and borg on the shared bench datasets.
#
#   SCALE=0.1 RUNS=3 tools/bench/import_bench.sh
#   SCALE=0.01 RUNS=1 PEERS="restic borg" tools/bench/import_bench.sh   # smoke test
#
# For each round and each peer: fresh empty store, v1 bind-mounted at
# $BENCH_ROOT/src, page cache dropped, v1 import timed (wall + user/sys CPU of
# the process tree), store size; then v2 bind-mounted at the same path, cache
# dropped, v2 import timed, store size.  Prints a markdown table and writes it
# to $BENCH_ROOT/results/<timestamp>-import-s<SCALE>/results.md.  See README.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib/common.sh"
PEERS=${PEERS:-"restic borg tusk"}
CMDLINE="SCALE=$SCALE SEED=$SEED RUNS=$RUNS PEERS='$PEERS' BENCH_ROOT=$BENCH_ROOT TUSK_BIN=$TUSK_BIN TUSK_INIT_ARGS='$TUSK_INIT_ARGS' $0${*:+ $*}"

start_run import
T0=$SECONDS

pkgs=(jq python3)
for p in $PEERS; do
  case $p in restic) pkgs+=(restic) ;; borg) pkgs+=(borgbackup) ;; esac
done
ensure_packages "${pkgs[@]}"

declare -A FAILED=() AD=()
fail() { FAILED[$1]=$2; log "PEER $1 FAILED: $2"; printf '%s\t%s\n' "$1" "$2" >>"$OUT/failed.tsv"; }
for p in $PEERS; do
  AD[$p]=$(adapter_path "$p") || { fail "$p" "no adapter $p.sh"; continue; }
  if [[ $p == tusk ]] && ! tusk_ok; then fail tusk "$TUSK_BIN missing or \`tusk --help\` fails"; fi
done

log "import bench: $CMDLINE -> $OUT"
gen_data

{
  echo "# tusk import benchmark"
  echo
  machine_info "$CMDLINE"
  for p in $PEERS; do
    [[ -n ${AD[$p]:-} && -z ${FAILED[$p]:-} ]] || continue
    echo "- $p: $(PEER=$p STORE=$STORES/$p TUSK_INIT_ARGS="$TUSK_INIT_ARGS" "${AD[$p]}" describe 2>/dev/null) (adapter ${AD[$p]})"
  done
  echo
} >"$OUT/results.md"

for r in $(seq 1 "$RUNS"); do
  for p in $PEERS; do
    [[ -z ${FAILED[$p]:-} ]] || continue
    log "== round $r/$RUNS: $p"
    t=$SECONDS
    why=$(import_pair "$p" "${AD[$p]}" TUSK_INIT_ARGS="$TUSK_INIT_ARGS") \
      || fail "$p" "round $r: ${why:-error} (see $OUT/$p.log)"
    log "   $p round $r took $((SECONDS - t)) s"
  done
done

# shellcheck disable=SC2086  # PEERS is a word list
$PY "$HERE/lib/report.py" peers "$OUT" $PEERS >>"$OUT/results.md"
echo >>"$OUT/results.md"
echo "Total benchmark time $((SECONDS - T0)) s.  Raw records: results.jsonl; tool output: <peer>.log." >>"$OUT/results.md"
cat "$OUT/results.md"
log "results: $OUT/results.md"
