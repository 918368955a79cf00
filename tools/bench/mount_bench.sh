#!/bin/bash
# Read benchmark of `tusk mount` beside native files, squashfuse, restic, borg
# and libfuse's passthrough_ll (the FUSE ceiling), with the shared harness.
#
#   SCALE=0.1 RUNS=3 tools/bench/mount_bench.sh
#   SCALE=0.01 RUNS=1 tools/bench/mount_bench.sh                        # smoke test, a few minutes
#   SCALE=0.1 RUNS=3 PEERS="native tusk passthrough_ll" TESTS="seq_large small_py" tools/bench/mount_bench.sh
#
# The shared harness (shared/bench, read-only; run.sh only looks for adapters
# beside itself) is copied fresh to $BENCH_ROOT/harness, our adapters
# (adapters/tusk.sh, adapters/passthrough_ll.sh) are added to the copy, and its
# run.sh does everything in one run: import v1+v2 per peer, mount all, the read
# tests interleaved over peers and rounds, daemon peak RSS/CPU, verify (file
# list + sha256 through each mount), umount.  The harness's table (medians,
# ratios to native, min-max spread) goes to stdout and to
# $BENCH_ROOT/results/<timestamp>-mount-s<SCALE>/results.md.  See README.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# absolute and without symlinks: leftover daemons are found by "$BENCH_ROOT/mnt/" in their argv
[[ -z ${BENCH_ROOT:-} ]] || BENCH_ROOT=$(realpath -m "$BENCH_ROOT")
. "$HERE/lib/common.sh"
PEERS=${PEERS:-"native squashfuse restic borg tusk passthrough_ll"}
TESTS=${TESTS:-}                # empty: the harness's default list
READ_VERSION=${READ_VERSION:-v2}
RAND_N=${RAND_N:-10000}
TUSK_MOUNT_ARGS=${TUSK_MOUNT_ARGS:-}
HARNESS=$BENCH_ROOT/harness
export PASSTHROUGH_LL_BIN=${PASSTHROUGH_LL_BIN:-$BENCH_ROOT/bin/passthrough_ll}
CMDLINE="SCALE=$SCALE SEED=$SEED RUNS=$RUNS PEERS='$PEERS'${TESTS:+ TESTS='$TESTS'} READ_VERSION=$READ_VERSION BENCH_ROOT=$BENCH_ROOT TUSK_BIN=$TUSK_BIN${TUSK_INIT_ARGS:+ TUSK_INIT_ARGS='$TUSK_INIT_ARGS'}${TUSK_MOUNT_ARGS:+ TUSK_MOUNT_ARGS='$TUSK_MOUNT_ARGS'} $0${*:+ $*}"

start_run mount
rmdir "$STORES" 2>/dev/null || true
STORES=''       # the harness keeps its stores in $BENCH_ROOT/stores/<peer>
RUN_ID=$(basename "$OUT")       # the harness writes into the same results directory
RUNPID=''       # the harness's run.sh (leader of its own process group)
T0=$SECONDS

MNT=$BENCH_ROOT/mnt   # the harness mounts every peer under it
. "$HERE/lib/mounts.sh"   # mounts_under, daemon_pids, umount_all, stop_group

mount_cleanup() {
  local rc=$?
  set +e
  trap - INT TERM
  stop_group "$RUNPID" 60 "the harness (its own cleanup unmounts its peers)"
  umount_all
  if [[ -n $(mounts_under "$BENCH_ROOT") ]]; then
    log "WARNING: still mounted under $BENCH_ROOT: $(mounts_under "$BENCH_ROOT" | xargs)"
  elif [[ $KEEP_STORES != 1 ]]; then
    local p
    for p in $PEERS; do rm -rf "${BENCH_ROOT:?}/stores/$p"; done
  fi
  (exit "$rc")
  cleanup
}
trap mount_cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- checks, packages
[[ -c /dev/fuse ]] || die "/dev/fuse is missing (FUSE mounts impossible here)"
pkgs=(jq python3 fuse3)
for p in $PEERS; do
  case $p in
    restic) pkgs+=(restic) ;;
    borg) pkgs+=(borgbackup python3-pyfuse3 python3-llfuse) ;;
    squashfuse) pkgs+=(squashfs-tools squashfuse) ;;
    squashfs-kernel) pkgs+=(squashfs-tools) ;;
    casync) pkgs+=(casync) ;;
    passthrough_ll) pkgs+=(libfuse3-dev gcc pkg-config) ;;
  esac
done
ensure_packages "${pkgs[@]}"
if [[ " $PEERS " == *" tusk "* ]] && ! tusk_ok; then
  die "$TUSK_BIN missing or \`tusk --help\` fails (build it: cmake -S . -B build && cmake --build build)"
fi
read -r first_peer _ <<<"$PEERS"
[[ $first_peer == native ]] || log "WARNING: native is not the first peer: ratios are against '$first_peer'"

# ---------------------------------------------------------------- harness copy + our adapters
ORIG_SHARED_BENCH=$SHARED_BENCH
rm -rf "$HARNESS"
cp -r "$SHARED_BENCH" "$HARNESS"
chmod -R u+w "$HARNESS"
for a in "$HERE"/adapters/*.sh; do install -m 755 "$a" "$HARNESS/adapters/"; done
export SHARED_BENCH=$HARNESS BENCH_LIB=$HARNESS/lib   # our adapters source $SHARED_BENCH/adapters/_common.sh
for p in $PEERS; do
  [[ -x $HARNESS/adapters/$p.sh ]] || die "no adapter $p.sh in $ORIG_SHARED_BENCH/adapters or $HERE/adapters"
done
if [[ " $PEERS " == *" passthrough_ll "* ]]; then
  # built here, once, so that compiling never counts as setup or mount time
  PEER=passthrough_ll STORE=$BENCH_ROOT/stores/passthrough_ll "$HARNESS/adapters/passthrough_ll.sh" setup 2>&1 \
    | while IFS= read -r l; do log "$l"; done
  [[ -x $PASSTHROUGH_LL_BIN ]] || die "could not build $PASSTHROUGH_LL_BIN"
fi

log "mount bench: $CMDLINE -> $OUT"
gen_data

# ---------------------------------------------------------------- the harness, in one run
# Own process group (set -m): on Ctrl-C / kill of this script the whole harness
# gets TERM at once, and its EXIT trap unmounts what it mounted.
log "running $HARNESS/run.sh (progress: $OUT/run.log, per-peer logs: $OUT/<peer>.log)"
set -m
env SCALE="$SCALE" SEED="$SEED" RUNS="$RUNS" PEERS="$PEERS" READ_VERSION="$READ_VERSION" RAND_N="$RAND_N" \
    BENCH_ROOT="$BENCH_ROOT" RUN_ID="$RUN_ID" KEEP_STORES="$KEEP_STORES" PY="$PY" ${TESTS:+TESTS="$TESTS"} \
    TUSK_BIN="$TUSK_BIN" TUSK_INIT_ARGS="$TUSK_INIT_ARGS" \
    TUSK_MOUNT_ARGS="--log $OUT/tusk.daemon.log${TUSK_MOUNT_ARGS:+ $TUSK_MOUNT_ARGS}" \
    "$HARNESS/run.sh" </dev/null >"$OUT/harness.stdout" &
RUNPID=$!
set +m
hrc=0
wait "$RUNPID" || hrc=$?
RUNPID=''
[[ -f $OUT/results.md ]] || die "the harness failed (exit $hrc) before writing its report: see $OUT/run.log"
((hrc == 0)) || log "WARNING: the harness exited with status $hrc (see $OUT/run.log)"

# ---------------------------------------------------------------- report
# problems: failed peers, verify != OK, timed commands with a non-zero exit
problems() {
  [[ -s $OUT/failed.tsv ]] && sed 's/^\([^\t]*\)\t/- FAILED \1: /' "$OUT/failed.tsv"
  jq -r 'select(.label == "verify" and .value != "OK") | "- verify \(.value) for \(.peer): see \(.peer).log"' "$OUT/results.jsonl"
  jq -rs 'map(select((.rc // 0) != 0)) | group_by(.peer + " " + .label)[]
          | "- \(.[0].peer) \(.[0].label): \(length) run(s) exited non-zero (rc \(map(.rc) | unique | join(",")))"' "$OUT/results.jsonl"
}
{
  echo "# tusk mount benchmark (read tests through the mounts)"
  echo
  SHARED_BENCH=$ORIG_SHARED_BENCH machine_info "$CMDLINE"
  echo "- harness: copy of $ORIG_SHARED_BENCH in $HARNESS" \
       "(run.sh sha256 $(sha256sum "$HARNESS/run.sh" | cut -c1-12)), adapters tusk.sh and passthrough_ll.sh from $HERE/adapters"
  if [[ " $PEERS " == *" tusk "* ]]; then
    echo "- tusk: $("$TUSK_BIN" --version 2>/dev/null | head -1) ($TUSK_BIN), source $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$( [[ -n $(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null) ]] && echo ' + local changes')"
  fi
  echo
  cat "$OUT/results.md"
  echo
  p=$(problems) || true
  if [[ -n $p ]]; then echo "Problems:"; echo; echo "$p"; else echo "No failures: every peer mounted, every timed run exited 0, verify OK."; fi
  echo
  echo "Total benchmark time $((SECONDS - T0)) s.  Raw records: results.jsonl; logs: run.log, <peer>.log, tusk.daemon.log."
} >"$OUT/results.md.tmp"
mv "$OUT/results.md.tmp" "$OUT/results.md"
cat "$OUT/results.md"
log "results: $OUT/results.md"
