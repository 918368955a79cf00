#!/bin/bash
# tusk merge and tusk diff beside daff (the tabular diff3 peer), on the same files in the same
# run (issues 11 and 15; measurement only, not in CI).
#
#   tools/bench/merge_bench.sh                                          # TABLE_ROWS="200000 1000000" FILES_N=100000 RUNS=3
#   TABLE_ROWS=20000 FILES_N=2000 RUNS=1 tools/bench/merge_bench.sh     # smoke test, ~1 min
#   FILES_N=1000000 tools/bench/merge_bench.sh                          # the documented full run (1M-file import: long)
#   TABLE_ROWS=1000000 FILES_N=0 RUNS=5 TUSK_BIN=/path/to/tusk tools/bench/merge_bench.sh
#
# Rows (see README.md, "merge_bench.sh"), for each table size in TABLE_ROWS:
#   a/b  a CSV `id,label,annotator,score` (~40 bytes a row): base, ours and theirs each with
#        TABLE_CHANGES cells changed on different rows (a clean merge).  tusk: base imported
#        into labels@main, branch labels@side, ours imported into main, theirs into side;
#        each round `tusk merge labels@side labels@m<r>` (m<r>: a new branch at ours'
#        commit); wall and peak RSS; the merged file must equal the generator's expected
#        one.  daff: `daff merge --id id --output OUT base ours theirs` on the same three
#        files (stopped after DAFF_TIMEOUT s, then not run again at that size).
#        Targets at 1,000,000 rows: wall < 1 s, peak RSS < 256 MiB.
#   c/d  diff of ours and theirs cell by cell: `tusk diff --rows labels@ours labels@side` (when
#        the binary has --rows) vs `daff diff --id id`;
#   e/f  the same by line: `tusk diff --stat labels@ours labels@side` vs `daff diff --id id`.
# and, unless FILES_N=0, a dataset of FILES_N files of 1-4 KiB in FILES_N/1000 directories:
#   a/b  `tusk diff` of two commits that differ in DIFF_FILES files (target < 1 s at 1M files)
#   c/d  `tusk merge` of two branches that each changed FILES_CHANGES different files
#        (target < 1 s at 1M files); peak RSS.
# Every timed command starts with `sync; echo 3 > /proc/sys/vm/drop_caches` (COLD=0: not).
# The report (markdown: medians, min-max, tusk / daff, PASS/FAIL) goes to stdout and to
# $BENCH_ROOT/results/<timestamp>-merge/results.md.  Needs root (drop_caches).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export LC_NUMERIC=C

TABLE_ROWS=${TABLE_ROWS-200000 1000000}
TABLE_CHANGES=${TABLE_CHANGES:-1000}
FILES_N=${FILES_N:-100000}
FILES_CHANGES=${FILES_CHANGES:-1000}
DIFF_FILES=${DIFF_FILES:-10}
RUNS=${RUNS:-3}
SEED=${SEED:-42}
# absolute and without symlinks: leftover processes are found by "$BENCH_ROOT/stores/" in their argv
BENCH_ROOT=$(realpath -m "${BENCH_ROOT:-/tmp/tusk-mergebench}")
TUSK_BIN=${TUSK_BIN:-${TUSK:-$REPO/build/tusk}}
[[ $TUSK_BIN == */* ]] && TUSK_BIN=$(realpath -m "$TUSK_BIN")
TUSK_INIT_ARGS=${TUSK_INIT_ARGS:-}
DAFF_DIR=$(realpath -m "${DAFF_DIR:-$BENCH_ROOT/daff}")
DAFF_VERSION=${DAFF_VERSION-1.4.2}
DAFF_ARGS=${DAFF_ARGS-"--id id"}
DAFF_TIMEOUT=${DAFF_TIMEOUT:-300}
DAFF_NODE_OPTIONS=${DAFF_NODE_OPTIONS:-}
COLD=${COLD:-1}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
KEEP=${KEEP:-0}
ALLOW_ANY_FS=${ALLOW_ANY_FS:-0}
PY=${PY:-/usr/bin/python3}
CMDLINE="TABLE_ROWS='$TABLE_ROWS' TABLE_CHANGES=$TABLE_CHANGES FILES_N=$FILES_N FILES_CHANGES=$FILES_CHANGES DIFF_FILES=$DIFF_FILES RUNS=$RUNS SEED=$SEED BENCH_ROOT=$BENCH_ROOT TUSK_BIN=$TUSK_BIN${TUSK_INIT_ARGS:+ TUSK_INIT_ARGS='$TUSK_INIT_ARGS'} DAFF_ARGS='$DAFF_ARGS' DAFF_TIMEOUT=$DAFF_TIMEOUT${DAFF_NODE_OPTIONS:+ DAFF_NODE_OPTIONS='$DAFF_NODE_OPTIONS'} COLD=$COLD KEEP=$KEEP $0${*:+ $*}"
read -r -a INIT_ARGS <<<"$TUSK_INIT_ARGS"
read -r -a DAFF_ARGV <<<"$DAFF_ARGS"
read -r -a TABLE_SIZES <<<"$TABLE_ROWS"

STORES=$BENCH_ROOT/stores       # this run's stores, t<ROWS>/ and files/ (deleted on exit unless KEEP=1)
NATIVE=$BENCH_ROOT/work         # merged and diff outputs being checked (deleted on exit)
DATA=$BENCH_ROOT/data           # the generated inputs (kept, reused by later runs)
MNT=$BENCH_ROOT/mnt             # not used (nothing is mounted); mounts.sh needs it
TREE=$DATA/files-n$FILES_N-seed$SEED
DAFF=$DAFF_DIR/node_modules/.bin/daff
OUT=''
TESTPID=''                      # the running phase (leader of its own process group)

. "$HERE/lib/basics.sh"   # die, log, ensure_packages, take_lock, check_fs, check_free, copy_tusk_bin, bench_info

# ---------------------------------------------------------------- arguments
[[ $EUID -eq 0 ]] || die "must run as root (drop_caches)"
[[ $TABLE_CHANGES =~ ^[1-9][0-9]*$ ]] || die "TABLE_CHANGES must be a positive integer, got '$TABLE_CHANGES'"
for n in "${TABLE_SIZES[@]}"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] && ((n >= 2 * TABLE_CHANGES)) \
    || die "TABLE_ROWS must list integers >= 2 x TABLE_CHANGES ($((2 * TABLE_CHANGES))), got '$TABLE_ROWS'"
done
[[ $FILES_N =~ ^[0-9]+$ ]] || die "FILES_N must be a non-negative integer (0: no file rows), got '$FILES_N'"
for v in FILES_CHANGES DIFF_FILES RUNS DAFF_TIMEOUT STEP_TIMEOUT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
((FILES_N == 0 || FILES_N >= DIFF_FILES + 2 * FILES_CHANGES)) \
  || die "FILES_N ($FILES_N) must be at least DIFF_FILES + 2 x FILES_CHANGES ($((DIFF_FILES + 2 * FILES_CHANGES)))"
[[ $SEED =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, got '$SEED'"
[[ $KEEP == 0 || $KEEP == 1 ]] || die "KEEP must be 0 or 1, got '$KEEP'"
[[ $COLD == 0 || $COLD == 1 ]] || die "COLD must be 0 or 1, got '$COLD'"
((${#TABLE_SIZES[@]} || FILES_N)) || die "nothing to do (TABLE_ROWS empty and FILES_N=0)"

# ---------------------------------------------------------------- packages, binary, lock
ensure_packages python3 time coreutils
command -v node >/dev/null && command -v npm >/dev/null || ensure_packages nodejs npm
[[ -x $PY ]] || die "python interpreter $PY not found (set PY)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "$PY is older than Python 3.9 (random.randbytes)"
[[ -x $TUSK_BIN ]] && "$TUSK_BIN" --help >/dev/null 2>&1 \
  || die "$TUSK_BIN missing or \`tusk --help\` fails (build it, or set TUSK_BIN)"
for c in merge diff table; do
  "$TUSK_BIN" help "$c" >/dev/null 2>&1 || die "$TUSK_BIN has no \`tusk $c\` (an older build? set TUSK_BIN)"
done
HAS_ROWS=0; "$TUSK_BIN" help diff 2>/dev/null | grep -q -- '--rows' && HAS_ROWS=1   # tusk diff --rows (cells)

take_lock

# ---------------------------------------------------------------- cleanup (processes, the tree, stores)
. "$HERE/lib/mounts.sh"   # pids_with_arg, umount_all, stop_group, bench_cleanup, run_group
# stray_pids: processes with an argument under $STORES/ (every tusk gets `--store $STORES/...`)
# or $NATIVE/ (every daff gets `--output $NATIVE/...`)
stray_pids() { { pids_with_arg "" "$STORES/"; pids_with_arg "" "$NATIVE/"; } | sort -u; }
stop_strays() {
  local pids
  pids=$(stray_pids)
  [[ -n $pids ]] || return 0
  # shellcheck disable=SC2086  # one pid a word
  stop_pids $pids
}
# restore_tree: put back the files of the tree that a run changed (bytes and mtimes, from
# $TREE.orig/); $TREE.state.json exists while some are changed
restore_tree() {
  [[ -f $TREE.state.json ]] || return 0
  log "putting back the files changed in $TREE"
  "$PY" "${HLP:-$HERE/lib/merge_tables.py}" restore "$TREE" all || log "WARNING: could not restore $TREE"
}
cleanup() {
  local rc=$?
  set +e
  trap - INT TERM
  stop_group "$TESTPID" 10 "the running phase"
  TESTPID=''
  stop_strays
  bench_cleanup "$rc" "the running phase" "stores kept" "$KEEP" restore_tree
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
stop_strays             # leftovers of an earlier run that was killed hard
umount_all
((FILES_N == 0)) || restore_tree

# ---------------------------------------------------------------- file system, free space
check_fs        # sets FSTYPE; removes the last run's $NATIVE and $STORES
# Estimate: per table size n, ~40 B a row: 4 versions generated (if missing), 2 outputs being
# checked, the store (3 imports + RUNS merged versions, ~25 % compressed); the tree: 4.2 KiB
# on disk a file (if missing), ~3 KiB a file in the store; + 512 MiB slack.
need_mib=512; need_inodes=10000
for n in "${TABLE_SIZES[@]}"; do
  have=0; [[ -f $DATA/table-r$n-c$TABLE_CHANGES-seed$SEED/manifest.json ]] && have=1
  need_mib=$(awk -v n="$n" -v h="$have" -v r="$RUNS" -v m="$need_mib" \
    'BEGIN { printf "%d\n", m + n * 40 * (4 * (1 - h) + 2 + (3 + r) * 0.25) / 1048576 }')
done
if ((FILES_N)); then
  have=0; [[ -f $TREE.manifest.json ]] && have=1
  need_mib=$(awk -v n="$FILES_N" -v h="$have" -v m="$need_mib" \
    'BEGIN { printf "%d\n", m + n * (4.2 * (1 - h) + 3) / 1024 }')
  ((have)) || need_inodes=$((need_inodes + FILES_N + FILES_N / 1000))
fi
check_free "$need_mib" "$need_inodes" "TABLE_ROWS='$TABLE_ROWS' FILES_N=$FILES_N" "lower FILES_N or TABLE_ROWS"

OUT=$BENCH_ROOT/results/$(date +%Y%m%d-%H%M%S)-merge
mkdir -p "$OUT" "$NATIVE" "$STORES" "$DATA" "$BENCH_ROOT/bin"
T0=$SECONDS

copy_tusk_bin   # sets TUSK_ORIG, TUSK_BIN (the copy), tusk_version
cd "$BENCH_ROOT"

# ---------------------------------------------------------------- daff (npm), once per DAFF_DIR
daff_version() { node -e 'console.log(require(process.argv[1]).version)' "$DAFF_DIR/node_modules/daff/package.json" 2>/dev/null; }
if [[ ! -x $DAFF ]] || { [[ -n $DAFF_VERSION ]] && [[ $(daff_version) != "$DAFF_VERSION" ]]; }; then
  log "installing daff${DAFF_VERSION:+ $DAFF_VERSION} into $DAFF_DIR (npm)"
  mkdir -p "$DAFF_DIR"
  npm install --prefix "$DAFF_DIR" --no-audit --no-fund --loglevel=error "daff${DAFF_VERSION:+@$DAFF_VERSION}" \
    >>"$OUT/npm.log" 2>&1 || { tail -n 20 "$OUT/npm.log" >&2; die "npm install daff failed (log: $OUT/npm.log)"; }
fi
[[ -x $DAFF ]] && "$DAFF" version >/dev/null 2>&1 || die "$DAFF does not run"
DAFF_V=$(daff_version)
NODE_V=$(node --version)

# ---------------------------------------------------------------- the python helper
# lib/merge_tables.py and lib/benchutil.py are copied into the results directory: it
# re-renders its report on its own, and an edit of tools/bench changes nothing halfway
HLP=$OUT/merge_tables.py
cp "$HERE/lib/benchutil.py" "$OUT/benchutil.py"
cp "$HERE/lib/merge_tables.py" "$HLP"

RES=$OUT/results.jsonl
CMDLOG=$OUT/commands.log
: >"$RES"
COLD_ARG=(); ((COLD)) && COLD_ARG=(--cold)
# timed LABEL PEER ROUND SAVE TIMEOUT -- CMD...: one timed command (cache dropped first unless
# COLD=0), its stdout to SAVE (or nowhere: ""); its exit status in TRC (always returns 0)
timed() {
  local label=$1 peer=$2 round=$3 save=$4 to=$5 sv=(); shift 6
  [[ -z $save ]] || sv=(--save "$save")
  TRC=0
  { $PY "$HLP" time --out "$RES" --label "$label" --peer "$peer" --round "$round" "${COLD_ARG[@]}" \
      --timeout "$to" --log "$CMDLOG" "${sv[@]}" -- "$@" 2>&1 | tee -a "$OUT/run.log" >&2; } || TRC=$?
  ((TRC == 0)) || TRC=$($PY -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1].get("rc", 1))' "$RES")
  return 0
}
# must PHASE-LABEL ...: a timed step the phase needs (an import): its failure ends the phase
must() {
  timed "$@"
  ((TRC == 0)) || { why "$2 $1 failed: $(last_err)"; return 1; }
}
why() { log "$*"; echo "$*" >"$OUT/.why"; }
record() { $PY "$HLP" rec --out "$RES" --label "$1" --peer "$2" --round "$3" --value "$4" ${5:+--phase "$5"}; }
# verify PHASE PEER ROUND WHAT STATUS [DETAIL]: a check's result (0 = OK); never fails the phase
verify() {
  if [[ $5 == 0 ]]; then record verify "$2" "$3" OK "$1"
  else record verify "$2" "$3" "$4 FAILED${6:+: $6}" "$1"; log "VERIFY FAILED: $1 $2 round $3: $4${6:+: $6}"; fi
}
last_err() { $PY "$HLP" last-err "$RES"; }

# ---------------------------------------------------------------- phase: one table size
phase_table() {
  local n=$1 ph=table-$1 d st r ok msg daff_merge_off='' daff_diff_off=''
  d=$DATA/table-r$n-c$TABLE_CHANGES-seed$SEED
  st=$STORES/t$n
  if [[ ! -f $d/manifest.json ]]; then
    log "   generating $n rows x 3 versions + the expected merge in $d"
    rm -rf "$d"
    $PY "$HLP" gen-table "$d" "$n" "$TABLE_CHANGES" "$SEED" 2>&1 | tee -a "$OUT/run.log" >&2
  fi
  record bytes "$ph" 0 "$(stat -c %s "$d/base/labels.csv")"
  tk() { "$TUSK_BIN" --store "$st" "$@"; }
  tk init "${INIT_ARGS[@]}" >>"$CMDLOG" 2>&1
  tk dataset create labels >>"$CMDLOG" 2>&1
  must "import-base-t$n" tusk 0 "" "$STEP_TIMEOUT" -- "$TUSK_BIN" --store "$st" import "$d/base" labels@main -m base
  tk tag labels@base >>"$CMDLOG" 2>&1
  tk branch labels@side >>"$CMDLOG" 2>&1
  must "import-ours-t$n" tusk 0 "" "$STEP_TIMEOUT" -- "$TUSK_BIN" --store "$st" import "$d/ours" labels@main -m ours
  tk tag labels@ours >>"$CMDLOG" 2>&1
  must "import-theirs-t$n" tusk 0 "" "$STEP_TIMEOUT" -- "$TUSK_BIN" --store "$st" import "$d/theirs" labels@side -m theirs
  for r in $(seq 1 "$RUNS"); do
    log "-- $n rows, round $r/$RUNS: merge (tusk, daff; $( ((r % 2)) && echo 'tusk first' || echo 'daff first')), diff"
    if ((r % 2)); then merge_tusk; merge_daff; else merge_daff; merge_tusk; fi
    # diff of ours and theirs: 2 x TABLE_CHANGES rows differ; cell by cell (a tusk with --rows), by line
    if ((HAS_ROWS)); then
      timed "rows-t$n" tusk "$r" "$NATIVE/rows-tusk.txt" "$STEP_TIMEOUT" -- \
        "$TUSK_BIN" --store "$st" diff --rows labels@ours labels@side
      if ((TRC == 0)); then
        ok=0
        grep -q "^M  labels.csv (CSV, key id): 0 rows added, 0 removed, $((2 * TABLE_CHANGES)) changed ($((2 * TABLE_CHANGES)) cells)" \
          "$NATIVE/rows-tusk.txt" && [[ $(grep -c '^ *~ id=' "$NATIVE/rows-tusk.txt") == $((2 * TABLE_CHANGES)) ]] || ok=1
        verify "$ph" tusk "$r" "diff --rows" $ok "$(head -n 1 "$NATIVE/rows-tusk.txt")"
      fi
    fi
    timed "diff-t$n" tusk "$r" "$NATIVE/diff-tusk.txt" "$STEP_TIMEOUT" -- \
      "$TUSK_BIN" --store "$st" diff --stat labels@ours labels@side
    if ((TRC == 0)); then
      ok=0; grep -q "^ 1 file changed, $((2 * TABLE_CHANGES)) insertions(+), $((2 * TABLE_CHANGES)) deletions(-)" \
        "$NATIVE/diff-tusk.txt" || ok=1
      verify "$ph" tusk "$r" "diff --stat" $ok "$(tail -n 1 "$NATIVE/diff-tusk.txt")"
    fi
    if [[ -z $daff_diff_off ]]; then
      timed "diff-t$n" daff "$r" "" "$DAFF_TIMEOUT" -- env NODE_OPTIONS="$DAFF_NODE_OPTIONS" "$DAFF" diff \
        "${DAFF_ARGV[@]}" --output "$NATIVE/diff-daff.csv" "$d/ours/labels.csv" "$d/theirs/labels.csv"
      if ((TRC == 0)); then
        ok=0; msg=$($PY "$HLP" check-daff-diff "$NATIVE/diff-daff.csv" $((2 * TABLE_CHANGES))) || ok=1
        verify "$ph" daff "$r" "daff diff" $ok "$msg"
      else
        daff_diff_off=$TRC; log "   daff diff: exit $TRC$( ((TRC == 124)) && echo " (timeout after $DAFF_TIMEOUT s)"); not run again at $n rows"
      fi
    fi
    rm -f "$NATIVE"/diff-* "$NATIVE/rows-tusk.txt"
  done
}
# (helpers of phase_table: they use its locals n, ph, d, st, r)
merge_tusk() {
  local ok msg
  tk branch "labels@m$r" labels@ours >>"$CMDLOG" 2>&1
  timed "merge-t$n" tusk "$r" "$NATIVE/merge-tusk.txt" "$STEP_TIMEOUT" -- \
    "$TUSK_BIN" --store "$st" merge labels@side "labels@m$r"
  if ((TRC != 0)); then
    verify "$ph" tusk "$r" "clean merge" 1 "exit $TRC: $(last_err)"
    return 0
  fi
  ok=0; grep -q '^merged labels.csv by table, key id' "$NATIVE/merge-tusk.txt" || ok=1
  verify "$ph" tusk "$r" "merged by table, key id" $ok "$(head -n 1 "$NATIVE/merge-tusk.txt")"
  tk cat "labels@m$r" labels.csv >"$NATIVE/merged-tusk.csv" 2>>"$CMDLOG"
  ok=0; msg=$($PY "$HLP" check-table "$NATIVE/merged-tusk.csv" "$d/expected.csv") || ok=1
  verify "$ph" tusk "$r" "merged file" $ok "$msg"; log "   tusk: $msg"
  rm -f "$NATIVE/merged-tusk.csv" "$NATIVE/merge-tusk.txt"
}
merge_daff() {
  local ok msg
  [[ -z $daff_merge_off ]] || return 0
  timed "merge-t$n" daff "$r" "" "$DAFF_TIMEOUT" -- env NODE_OPTIONS="$DAFF_NODE_OPTIONS" "$DAFF" merge \
    "${DAFF_ARGV[@]}" --output "$NATIVE/merged-daff.csv" "$d/base/labels.csv" "$d/ours/labels.csv" "$d/theirs/labels.csv"
  if ((TRC != 0)); then
    daff_merge_off=$TRC
    log "   daff merge: exit $TRC$( ((TRC == 124)) && echo " (timeout after $DAFF_TIMEOUT s)"); not run again at $n rows"
    ((TRC == 124)) || verify "$ph" daff "$r" "daff merge" 1 "exit $TRC: $(last_err)"
    return 0
  fi
  ok=0; msg=$($PY "$HLP" check-table "$NATIVE/merged-daff.csv" "$d/expected.csv") || ok=1
  verify "$ph" daff "$r" "merged file" $ok "$msg"; log "   daff: $msg"
  rm -f "$NATIVE/merged-daff.csv"
}

# ---------------------------------------------------------------- phase: the file dataset
phase_files() {
  local st=$STORES/files r ok msg
  if [[ ! -f $TREE.manifest.json ]]; then
    log "   generating $FILES_N files of 1-4 KiB in $((FILES_N >= 2000 ? FILES_N / 1000 : 1)) directories: $TREE"
    rm -rf "$TREE" "$TREE.tmp" "$TREE.orig" "$TREE.state.json"
    $PY "$HLP" gen-files "$TREE" "$FILES_N" "$SEED" 2>&1 | tee -a "$OUT/run.log" >&2
  fi
  printf '{"diff_files": %d, "changes": %d}\n' "$DIFF_FILES" "$FILES_CHANGES" >"$TREE.plan.json"
  tf() { "$TUSK_BIN" --store "$st" "$@"; }
  tf init "${INIT_ARGS[@]}" >>"$CMDLOG" 2>&1
  tf dataset create files >>"$CMDLOG" 2>&1
  log "   importing the base, then $DIFF_FILES changed files (main), $FILES_CHANGES (main: ours), $FILES_CHANGES others (side: theirs)"
  must import-base tusk 0 "" "$STEP_TIMEOUT" -- "$TUSK_BIN" --store "$st" import "$TREE" files@main -m base
  tf tag files@base >>"$CMDLOG" 2>&1
  $PY "$HLP" mutate "$TREE" d10
  must import-d10 tusk 0 "" "$STEP_TIMEOUT" -- "$TUSK_BIN" --store "$st" import "$TREE" files@main -m "$DIFF_FILES files changed"
  tf tag files@d10 >>"$CMDLOG" 2>&1
  tf branch files@side >>"$CMDLOG" 2>&1
  $PY "$HLP" mutate "$TREE" ours
  must import-ours tusk 0 "" "$STEP_TIMEOUT" -- "$TUSK_BIN" --store "$st" import "$TREE" files@main -m ours
  tf tag files@ours >>"$CMDLOG" 2>&1
  $PY "$HLP" restore "$TREE" ours       # their bytes and mtimes as in d10
  $PY "$HLP" mutate "$TREE" theirs
  must import-theirs tusk 0 "" "$STEP_TIMEOUT" -- "$TUSK_BIN" --store "$st" import "$TREE" files@side -m theirs
  record store_bytes files 0 "$(du -sb "$st" | cut -f1)"
  restore_tree                          # the tree is as generated again
  # the set-up (not timed): each side changed exactly its files
  tf diff files@d10 files@main >"$NATIVE/d.txt" 2>>"$CMDLOG"
  ok=0; msg=$($PY "$HLP" check-diff "$NATIVE/d.txt" "$TREE" ours) || ok=1
  verify files tusk 0 "set-up ours" $ok "$msg"
  tf diff files@d10 files@side >"$NATIVE/d.txt" 2>>"$CMDLOG"
  ok=0; msg=$($PY "$HLP" check-diff "$NATIVE/d.txt" "$TREE" theirs) || ok=1
  verify files tusk 0 "set-up theirs" $ok "$msg"
  for r in $(seq 1 "$RUNS"); do
    log "-- $FILES_N files, round $r/$RUNS: tusk diff ($DIFF_FILES files), tusk merge ($FILES_CHANGES + $FILES_CHANGES files)"
    timed files-diff tusk "$r" "$NATIVE/diff.txt" "$STEP_TIMEOUT" -- "$TUSK_BIN" --store "$st" diff files@base files@d10
    if ((TRC == 0)); then
      ok=0; msg=$($PY "$HLP" check-diff "$NATIVE/diff.txt" "$TREE" d10) || ok=1
      verify files tusk "$r" "diff" $ok "$msg"
    fi
    tf branch "files@m$r" files@ours >>"$CMDLOG" 2>&1
    timed files-merge tusk "$r" "$NATIVE/merge.txt" "$STEP_TIMEOUT" -- "$TUSK_BIN" --store "$st" merge files@side "files@m$r"
    if ((TRC != 0)); then
      verify files tusk "$r" "clean merge" 1 "exit $TRC: $(last_err)"
      continue
    fi
    # the merged tree: ours plus theirs' files, theirs plus ours' files
    tf diff files@ours "files@m$r" >"$NATIVE/d.txt" 2>>"$CMDLOG"
    ok=0; msg=$($PY "$HLP" check-diff "$NATIVE/d.txt" "$TREE" theirs) || ok=1
    verify files tusk "$r" "merged = ours + theirs' files" $ok "$msg"
    tf diff files@side "files@m$r" >"$NATIVE/d.txt" 2>>"$CMDLOG"
    ok=0; msg=$($PY "$HLP" check-diff "$NATIVE/d.txt" "$TREE" ours) || ok=1
    verify files tusk "$r" "merged = theirs + ours' files" $ok "$msg"; log "   merge check: $msg"
  done
  rm -f "$NATIVE"/*.txt
}

run_phase() { run_group PHASE "$@"; }

# ---------------------------------------------------------------- header, run, report
{
  echo "# tusk merge and diff beside daff"
  echo
  bench_info "inputs and stores on that file system"
  echo "- load at the start: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; $(nproc) CPUs)"
  echo "- daff $DAFF_V ($DAFF), node $NODE_V${DAFF_NODE_OPTIONS:+, NODE_OPTIONS=$DAFF_NODE_OPTIONS}; \`daff merge $DAFF_ARGS\`, \`daff diff $DAFF_ARGS\`"
  for n in "${TABLE_SIZES[@]}"; do
    echo "- table: $(printf "%'d" "$n") rows \`id,label,annotator,score\` (\`img_0000001,cat,annotator_07,0.0250\`)," \
         "$TABLE_CHANGES cells changed in ours and $TABLE_CHANGES in theirs (one a row, different rows)," \
         "\`$DATA/table-r$n-c$TABLE_CHANGES-seed$SEED/\`"
  done
  ((FILES_N == 0)) || echo "- files: $(printf "%'d" "$FILES_N") files of 1-4 KiB (random bytes) in" \
    "$((FILES_N >= 2000 ? FILES_N / 1000 : 1)) directories (\`$TREE\`); $DIFF_FILES files changed for the diff;" \
    "$FILES_CHANGES changed on main (ours) and $FILES_CHANGES others on side (theirs)"
} >"$OUT/header.md"
cat "$OUT/header.md" >&2
log "merge bench -> $OUT (about $need_mib MiB of disk needed, $avail_mib MiB free)"
sizes_json=$(printf '%s,' "${TABLE_SIZES[@]}"); sizes_json="[${sizes_json%,}]"
cat >"$OUT/params.json" <<EOF
{"table_rows": $sizes_json, "table_changes": $TABLE_CHANGES, "files_n": $FILES_N, "files_changes": $FILES_CHANGES,
 "diff_files": $DIFF_FILES, "runs": $RUNS, "cold": $COLD, "nproc": $(nproc),
 "daff_args": "$DAFF_ARGS", "daff_version": "$DAFF_V", "node_version": "$NODE_V",
 "node_options": "$DAFF_NODE_OPTIONS", "daff_timeout": $DAFF_TIMEOUT}
EOF

for n in "${TABLE_SIZES[@]}"; do
  log "== table rows: $n rows, $TABLE_CHANGES + $TABLE_CHANGES cells (RUNS=$RUNS)"
  run_phase "table-$n" phase_table "$n"
  ((KEEP)) || rm -rf "${STORES:?}/t$n"        # a store is not needed after its phase
done
if ((FILES_N)); then
  log "== file rows: $FILES_N files (RUNS=$RUNS)"
  run_phase files phase_files
fi

{
  cat "$OUT/header.md"
  echo
  $PY "$HLP" report "$OUT"
  echo
  echo "Total benchmark time $((SECONDS - T0)) s.  Raw records: results.jsonl; progress: run.log;" \
       "output of every timed command: commands.log."
} >"$OUT/results.md"
cat "$OUT/results.md"
log "results: $OUT/results.md"
