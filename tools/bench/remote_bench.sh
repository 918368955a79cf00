#!/bin/bash
# tusk with S3 (issue 12): push beside restic backup, cold reads through a lazy mount of a
# clone beside restic mount and raw S3 GETs, and reads after `tusk prefetch` beside a mount
# of the original local store; all against one local Ceph RGW (tests/s3/rgw.sh), on the
# shared bench's dataset (v1 then v2).  Measurement only, not in CI.
#
#   SCALE=0.01 RUNS=1 tools/bench/remote_bench.sh                  # smoke test, ~1.5 min (+ package installs)
#   SCALE=0.1 RUNS=3 tools/bench/remote_bench.sh                   # the real figures (~0.7 GB a version)
#   SCALE=0.1 RUNS=3 TUSK_BIN=/path/to/tusk tools/bench/remote_bench.sh
#   S3_ENV_FILE=/tmp/rgw/env SCALE=0.1 tools/bench/remote_bench.sh  # a server that is already running
#
# Rows (see README.md, "remote_bench.sh"); every figure is the median of RUNS rounds (min-max):
#   1a/1b  push v1, push v2: wall of `tusk push origin bench` (tusk: init, dataset create,
#          import of v1 (bind-mounted at $BENCH_ROOT/src), `tusk remote add origin
#          s3://BUCKET/bench --endpoint URL --path-style`, push; import of v2 into the same
#          branch, push) beside `restic backup` of the same trees into an S3 repository (repo
#          v2, --compression auto, -o s3.bucket-lookup=path).  Page cache dropped before
#          each.  Target: tusk < restic.  Each round starts from empty buckets and stores.
#   1c     bytes uploaded by the v2 push (bucket size after - before, listed with rclone) over
#          the ideal increment (changed bytes of v2, from the generator's manifest.json).
#          Target: <= 1.10.  1d/1e: the bytes themselves; 1f/1g: tusk import + push beside
#          restic backup (no target).
#   2a-2g  cold reads of bench@main (v2) through `tusk mount bench@main MNT` of a store made by
#          `tusk clone s3://BUCKET/bench DIR --endpoint URL --path-style`: before every test
#          the clone is unmounted, DIR/cache removed, remounted and the page cache
#          dropped.  Tests: `cat large/f0..f3 > /dev/null` (MB/s), `readfiles.py small 1`
#          (files/s, MB/s), `randread.py large/f2 RAND_N` (4 KiB preads, IOPS).  Peers:
#          `restic mount` of the S3 repository (remounted before every test; its cache dir,
#          index + snapshots + trees, is kept: restic has no data cache), and raw GETs of the
#          v2 tree uploaded as plain objects (`s3_raw_get.py BUCKET v2/ --threads 1,8`).
#          Targets: sequential >= 0.8x raw GET (one stream); small files/s >= 5x restic mount.
#   3a-3e  `tusk prefetch bench@main` in the clone (timed, from an empty cache), then the same
#          three tests through the clone's mount and through a mount of the original local
#          store (both remounted, page cache dropped before every test).  Target: clone /
#          local >= 0.9 for each throughput.
# The report (markdown: machine, tusk version, the table with PASS/FAIL, details, problems)
# goes to stdout and to $BENCH_ROOT/results/<timestamp>-remote/results.md.
#
# The S3 server: without S3_ENV_FILE, a fresh Ceph cluster from tests/s3/rgw.sh in
# $BENCH_ROOT/rgw (objects in RAM: RGW_MEMSTORE_BYTES, default from SCALE and RUNS, at least
# 6 GiB), stopped on exit.  With S3_ENV_FILE (the env file of rgw.sh or of
# shared/s3/ceph-s3-start.sh: S3_ENDPOINT or TUSK_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY), that server; the buckets $S3_BUCKET_PREFIX{tusk,restic,raw} are
# emptied first and deleted at the end (KEEP_STORES=1 keeps them, and the local stores).
# Needs root (drop_caches, bind and FUSE mounts).  Every mount, daemon and the RGW cluster
# are gone on exit, also after an error, Ctrl-C or kill.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export LC_NUMERIC=C
# absolute and without symlinks: leftover daemons are found by "$BENCH_ROOT/mnt/" in their argv
[[ -z ${BENCH_ROOT:-} ]] || BENCH_ROOT=$(realpath -m "$BENCH_ROOT")
# the binary: TUSK_BIN (or TUSK), else $REPO/build/tusk if built, else tusk on PATH
if [[ -z ${TUSK_BIN:-${TUSK:-}} ]]; then
  if [[ -x $REPO/build/tusk ]]; then TUSK_BIN=$REPO/build/tusk; else TUSK_BIN=$(command -v tusk || echo tusk); fi
fi
TUSK_BIN=${TUSK_BIN:-$TUSK}
. "$HERE/lib/common.sh"   # SCALE SEED RUNS BENCH_ROOT TUSK_BIN PY DATA SRC BL, gen_data, bind_src, log, die ...

RAND_N=${RAND_N:-2000}
STEP_TIMEOUT=${STEP_TIMEOUT:-1800}
MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-120}
TUSK_MOUNT_ARGS=${TUSK_MOUNT_ARGS:-}
S3_ENV_FILE=${S3_ENV_FILE:-}
S3_BUCKET_PREFIX=${S3_BUCKET_PREFIX:-tusk-remotebench-}
RESTIC_COMPRESSION=${RESTIC_COMPRESSION:-auto}
RESTIC_REPO_VERSION=${RESTIC_REPO_VERSION:-2}
export RESTIC_PASSWORD=${RESTIC_PASSWORD:-bench}
RGW_SH=$REPO/tests/s3/rgw.sh
RGW_DIR=$BENCH_ROOT/rgw
CMDLINE="SCALE=$SCALE SEED=$SEED RUNS=$RUNS RAND_N=$RAND_N BENCH_ROOT=$BENCH_ROOT TUSK_BIN=$TUSK_BIN${TUSK_INIT_ARGS:+ TUSK_INIT_ARGS='$TUSK_INIT_ARGS'}${TUSK_MOUNT_ARGS:+ TUSK_MOUNT_ARGS='$TUSK_MOUNT_ARGS'}${S3_ENV_FILE:+ S3_ENV_FILE=$S3_ENV_FILE}${RGW_MEMSTORE_BYTES:+ RGW_MEMSTORE_BYTES=$RGW_MEMSTORE_BYTES} $0${*:+ $*}"
read -r -a INIT_ARGS <<<"$TUSK_INIT_ARGS"
read -r -a MOUNT_ARGS <<<"$TUSK_MOUNT_ARGS"

STORES=$BENCH_ROOT/stores/remote   # local (the pushing store), clone, restic-cache
NATIVE=$BENCH_ROOT/work-remote     # scratch (check_fs removes it and $STORES)
MNT=$BENCH_ROOT/mnt                # mount points: $MNT/clone, $MNT/local, $MNT/restic
LOCAL=$STORES/local
CLONE=$STORES/clone
RCACHE=$STORES/restic-cache
B_TUSK=${S3_BUCKET_PREFIX}tusk
B_RESTIC=${S3_BUCKET_PREFIX}restic
B_RAW=${S3_BUCKET_PREFIX}raw
OUT=''
TESTPID=''
OWN_RGW=0
declare -A FAILED=()

# ---------------------------------------------------------------- arguments, packages, lock
[[ $EUID -eq 0 ]] || die "must run as root (drop_caches, bind and FUSE mounts)"
for v in RUNS RAND_N STEP_TIMEOUT MOUNT_TIMEOUT; do check_int "$v" "${!v}"; done
[[ $KEEP_STORES == 0 || $KEEP_STORES == 1 ]] || die "KEEP_STORES must be 0 or 1, got '$KEEP_STORES'"
[[ -z ${RGW_MEMSTORE_BYTES:-} || $RGW_MEMSTORE_BYTES =~ ^[1-9][0-9]*$ ]] \
  || die "RGW_MEMSTORE_BYTES must be a number of bytes, got '$RGW_MEMSTORE_BYTES'"
[[ -z $S3_ENV_FILE || -r $S3_ENV_FILE ]] || die "S3_ENV_FILE=$S3_ENV_FILE is not readable"
[[ -c /dev/fuse ]] || die "/dev/fuse is missing (FUSE mounts impossible here)"
[[ -n $S3_ENV_FILE || -x $RGW_SH ]] || die "$RGW_SH not found (or set S3_ENV_FILE)"
ensure_packages jq python3 fuse3 restic rclone python3-boto3 coreutils util-linux
[[ -x $PY ]] || die "python interpreter $PY not found (set PY)"
tusk_ok || die "$TUSK_BIN missing or \`tusk --help\` fails (build it, or set TUSK_BIN)"
for c in remote push clone prefetch mount umount; do
  "$TUSK_BIN" help "$c" >/dev/null 2>&1 || die "$TUSK_BIN has no \`tusk $c\` (an older build? set TUSK_BIN)"
done
take_lock

# ---------------------------------------------------------------- cleanup
. "$HERE/lib/mounts.sh"   # mounts_under, pids_with_arg, daemon_pids, stop_pids, umount_all, stop_group, run_group, wait_daemon, wait_unmounted
why() { log "$*"; echo "$*" >"$OUT/.why"; }
# strays: processes with an argument under $STORES/ (every tusk gets --store, restic's
# cache dir is there too) or under $MNT/ (the mount daemons)
stop_strays() {
  local pids
  pids=$({ pids_with_arg "" "$STORES/"; pids_with_arg "" "$MNT/"; } | sort -u)
  # shellcheck disable=SC2086  # one pid a word
  [[ -z $pids ]] || stop_pids $pids
}
rcl() { env -u AWS_CA_BUNDLE rclone --config "" "$@"; }
bucket_exists() { rcl lsf --dirs-only --max-depth 1 benchs3: 2>/dev/null | grep -qx "$1/"; }
bucket_drop() { if bucket_exists "$1"; then rcl purge "benchs3:$1"; fi; }
bucket_fresh() { bucket_drop "$1"; rcl mkdir "benchs3:$1"; }
bucket_bytes() { rcl size --json "benchs3:$1" | jq '.bytes'; }
stop_rgw() {
  ((OWN_RGW)) || return 0
  log "stopping the RGW cluster in $RGW_DIR"
  "$RGW_SH" stop "$RGW_DIR" >>"$OUT/rgw.log" 2>&1 || log "WARNING: '$RGW_SH stop $RGW_DIR' failed (see $OUT/rgw.log)"
  OWN_RGW=0
}
remote_cleanup() {
  local rc=$?
  set +e
  trap - INT TERM
  stop_group "$TESTPID" 10 "the running phase"
  TESTPID=''
  stop_strays
  umount_all          # daemons under $MNT/, then everything mounted under $BENCH_ROOT ($SRC too)
  unbind_src
  if [[ -n $(mounts_under "$BENCH_ROOT") ]]; then
    log "WARNING: still mounted under $BENCH_ROOT: $(mounts_under "$BENCH_ROOT" | xargs); stores kept"
  else
    rm -rf "$NATIVE" "${OUT:-/nonexistent}/.why"
    [[ $KEEP_STORES == 1 ]] || rm -rf "$STORES"
  fi
  if ((!OWN_RGW)) && [[ -n ${S3_ENDPOINT:-} && $KEEP_STORES != 1 ]]; then
    for b in "$B_TUSK" "$B_RESTIC" "$B_RAW"; do bucket_drop "$b" >/dev/null 2>&1; done
  fi
  stop_rgw
  ((rc == 0)) || log "exiting with status $rc${OUT:+ (results so far in $OUT)}"
  exit "$rc"
}
trap remote_cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
stop_strays             # leftovers of an earlier run that was killed hard
umount_all
unbind_src
[[ -n $S3_ENV_FILE || ! -e $RGW_DIR ]] || "$RGW_SH" stop "$RGW_DIR" >/dev/null 2>&1 || true

# ---------------------------------------------------------------- disk, memory
check_fs        # sets FSTYPE; removes $NATIVE and $STORES
# v1 ~ 7.1 GB x SCALE: the data (1.05 x v1, if not generated yet), the local store (~ v2),
# the clone's cache (~ v2 uncompressed), restic's cache (small); + 512 MiB
have=0; [[ -f $DATA/manifest.json ]] && have=1
need_mib=$(awk -v s="$SCALE" -v h="$have" 'BEGIN { printf "%.0f\n", 7100 * s * (1.05 * (1 - h) + 2.5) + 512 }')
check_free "$need_mib" "$(awk -v s="$SCALE" 'BEGIN { printf "%.0f\n", 50000 * s * 4 + 10000 }')" "SCALE=$SCALE" "lower SCALE"
# memstore: every round's buckets (tusk + restic, ~v2 each) may still await RGW's garbage
# collection, plus the raw tree; at least 6 GiB
if [[ -z $S3_ENV_FILE ]]; then
  if [[ -z ${RGW_MEMSTORE_BYTES:-} ]]; then
    RGW_MEMSTORE_BYTES=$(awk -v s="$SCALE" -v r="$RUNS" 'BEGIN {
      b = (2 * r + 1) * 8.2e9 * s * 1.1 + 536870912; m = 6 * 1073741824; printf "%.0f\n", (b > m ? b : m) }')
  fi
  avail=$(awk '/MemAvailable/ { printf "%.0f\n", $2 * 1024 }' /proc/meminfo)
  ((avail > RGW_MEMSTORE_BYTES + 2 * 1073741824)) \
    || die "RGW keeps objects in RAM: RGW_MEMSTORE_BYTES=$RGW_MEMSTORE_BYTES needs that much + 2 GiB free," \
           "$avail B available (lower SCALE or RUNS, or set RGW_MEMSTORE_BYTES, or use S3_ENV_FILE)"
fi

OUT=$BENCH_ROOT/results/$(date +%Y%m%d-%H%M%S)-remote
mkdir -p "$OUT" "$SRC" "$STORES" "$NATIVE" "$MNT" "$BENCH_ROOT/bin"
RES=$OUT/results.jsonl
CMDLOG=$OUT/commands.log
: >"$RES"
T0=$SECONDS

# ---------------------------------------------------------------- the binary (a copy: a rebuild must not change it halfway)
TUSK_ORIG=$TUSK_BIN
TUSK_BIN=$BENCH_ROOT/bin/tusk
cp "$TUSK_ORIG" "$TUSK_BIN.tmp" && mv "$TUSK_BIN.tmp" "$TUSK_BIN"
# the source commit, read from .git without running git (others work in the tree meanwhile)
repo_commit() {
  local g=$REPO/.git head ref
  [[ -f $g ]] && g=$(sed -n 's/^gitdir: //p' "$g")
  head=$(cat "$g/HEAD" 2>/dev/null) || { echo '?'; return; }
  if [[ $head == ref:* ]]; then
    ref=${head#ref: }
    if [[ -f $g/$ref ]]; then head=$(cat "$g/$ref")
    else head=$(awk -v r="$ref" '$2 == r { print $1 }' "$g/packed-refs" 2>/dev/null); fi
    echo "${head:0:12} (${ref#refs/heads/})"
  else
    echo "${head:0:12}"
  fi
}
tusk_version="$("$TUSK_BIN" --version 2>/dev/null | head -n 1); copy of $TUSK_ORIG (built $(date -r "$TUSK_ORIG" '+%F %T'), sha256 $(sha256sum "$TUSK_BIN" | cut -c1-12)); source tree at $(repo_commit) (from .git; local changes not checked)"
cp "$HERE/lib/remote_report.py" "$OUT/remote_report.py"
RR="$PY $OUT/remote_report.py"

# ---------------------------------------------------------------- data
log "remote bench: $CMDLINE -> $OUT"
gen_data
V1B=$(jq .v1_bytes "$DATA/manifest.json")
V2B=$(jq .v2_bytes "$DATA/manifest.json")
LBYTES=$(jq .v2_large_bytes "$DATA/manifest.json")
SBYTES=$(jq .v2_small_bytes "$DATA/manifest.json")
SFILES=$(jq .v2_small_files "$DATA/manifest.json")

# ---------------------------------------------------------------- the S3 server
if [[ -n $S3_ENV_FILE ]]; then
  while IFS='=' read -r k v; do
    k=${k#export }; v=${v%\"}; v=${v#\"}
    case $k in
      S3_ENDPOINT|TUSK_TEST_S3_ENDPOINT) [[ -n ${S3_ENDPOINT:-} ]] || S3_ENDPOINT=$v ;;
      AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_DEFAULT_REGION) [[ -n ${!k:-} ]] || export "$k=$v" ;;
    esac
  done <"$S3_ENV_FILE"
  S3_DESC="existing server from $S3_ENV_FILE"
else
  log "starting a Ceph RGW cluster in $RGW_DIR (memstore $RGW_MEMSTORE_BYTES B; log $OUT/rgw.log)"
  OWN_RGW=1
  # setsid: a Ctrl-C on the terminal must not reach the cluster before the mounts are gone
  envf=$(RGW_MEMSTORE_BYTES=$RGW_MEMSTORE_BYTES setsid "$RGW_SH" start "$RGW_DIR" 2>>"$OUT/rgw.log" | tail -n 1) \
    || { tail -n 20 "$OUT/rgw.log" >&2; die "$RGW_SH start $RGW_DIR failed (see $OUT/rgw.log)"; }
  # shellcheck disable=SC1090
  . "$envf"
  S3_ENDPOINT=$TUSK_TEST_S3_ENDPOINT
  S3_DESC="Ceph RGW $(radosgw --version 2>/dev/null | awk '{print $3}') from tests/s3/rgw.sh (one OSD on memstore, $(awk -v b="$RGW_MEMSTORE_BYTES" 'BEGIN { printf "%.1f GiB", b / 1073741824 }'))"
fi
: "${S3_ENDPOINT:?no S3 endpoint (S3_ENDPOINT or TUSK_TEST_S3_ENDPOINT in $S3_ENV_FILE)}"
: "${AWS_ACCESS_KEY_ID:?no AWS_ACCESS_KEY_ID}" "${AWS_SECRET_ACCESS_KEY:?no AWS_SECRET_ACCESS_KEY}"
S3_ENDPOINT=${S3_ENDPOINT%/}
export S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export RCLONE_CONFIG_BENCHS3_TYPE=s3 RCLONE_CONFIG_BENCHS3_PROVIDER=Ceph \
       RCLONE_CONFIG_BENCHS3_ENDPOINT=$S3_ENDPOINT \
       RCLONE_CONFIG_BENCHS3_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID \
       RCLONE_CONFIG_BENCHS3_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
       RCLONE_CONFIG_BENCHS3_FORCE_PATH_STYLE=true
export RESTIC_REPOSITORY=s3:$S3_ENDPOINT/$B_RESTIC RESTIC_CACHE_DIR=$RCACHE
rcl lsf --max-depth 1 benchs3: >/dev/null 2>>"$OUT/rgw.log" || die "cannot list the buckets of $S3_ENDPOINT (see $OUT/rgw.log)"
log "S3 at $S3_ENDPOINT: $S3_DESC"

# ---------------------------------------------------------------- helpers
tk() { "$TUSK_BIN" "$@"; }
R() { restic -o s3.bucket-lookup=path "$@"; }
# timed PEER LABEL [benchlib options] -- CMD...: one timed run (benchlib.py time; options
# such as --cold, --cwd, --bytes, --pid), stdout of CMD to benchlib (its last line, if JSON,
# is kept), stderr to $OUT/PEER.log; a summary line to the log.  Fails when CMD fails.
timed() {
  local peer=$1 label=$2 opts=() rc=0; shift 2
  while [[ $1 != -- ]]; do opts+=("$1"); shift; done
  shift
  echo "# $(date +%T) $peer $label: $*" >>"$OUT/$peer.log"
  local n0; n0=$(wc -l <"$OUT/$peer.log")
  $BL time --out "$RES" --peer "$peer" --label "$label" "${opts[@]}" -- \
    timeout -k 10 "$STEP_TIMEOUT" "$@" 2>>"$OUT/$peer.log" || rc=$?
  log "   $peer $label: $($RR summary "$RES")"
  ((rc == 0)) || { why "$peer $label failed (exit $(jq -s 'last | .rc' "$RES")): $(new_output "$peer" "$n0")"; return 1; }
}
# new_output PEER N: the last lines PEER's log got after its line N (the tool's messages;
# not benchlib's summary line)
new_output() { tail -n +$(($2 + 1)) "$OUT/$1.log" | grep -v "^  $1 " | tail -n 3 | tr '\n' ' '; }
# "${LOGGED[@]}" LOG CMD...: CMD (exec'd by a bash) with its stdout and stderr appended to LOG:
# for timed commands whose output is text (tusk push's summary line), and for `tusk mount`,
# whose daemon must not hold benchlib's stdout pipe open
LOGGED=(bash -c 'lg=$1; shift; exec "$@" >>"$lg" 2>&1' logged)
rec() { $RR rec --out "$RES" "$@"; }
last_wall() { jq -rs --arg p "$1" --arg l "$2" 'map(select(.peer == $p and .label == $l)) | last | .wall_s' "$RES"; }
verify() {  # verify PEER ROUND WHAT STATUS DETAIL
  if [[ $4 == 0 ]]; then rec --peer "$1" --label verify --round "$2" --value OK --what "$3"
  else rec --peer "$1" --label verify --round "$2" --value "FAILED: $5" --what "$3"; log "VERIFY FAILED: $1 round $2: $3: $5"; fi
}
run_phase() { run_group PHASE "$@"; }

# mounts: tusk (STORE NAME) and restic, always at $MNT/NAME; MOUNT_PID is the daemon
tusk_mount() {
  local st=$1 m=$MNT/$2 peer=$3 rc=0
  mkdir -p "$m"
  echo "# $(date +%T) mount $st bench@main $m" >>"$OUT/$peer.log"
  local n0; n0=$(wc -l <"$OUT/$peer.log")
  $BL time --out "$RES" --peer "$peer" --label mount -- timeout -k 5 "$MOUNT_TIMEOUT" \
    "${LOGGED[@]}" "$OUT/$peer.log" "$TUSK_BIN" --store "$st" mount "${MOUNT_ARGS[@]}" --log "$OUT/$peer.daemon.log" bench@main "$m" 2>>"$OUT/$peer.log" || rc=$?
  ((rc == 0)) || { why "tusk mount of $st at $m failed (exit $(jq -s 'last | .rc' "$RES")): $(new_output "$peer" "$n0")"; return 1; }
  wait_daemon "$m"
}
tusk_umount() {
  local m=$MNT/$1 pid
  [[ -n $(mounts_under "$m") ]] || return 0
  pid=$(daemon_pids "$m" | head -n 1)
  timeout -k 5 60 "$TUSK_BIN" umount "$m" >>"$CMDLOG" 2>&1 || log "tusk umount $m failed: detaching it"
  if [[ -n $pid ]]; then wait_unmounted "$m" "$pid"
  elif [[ -n $(mounts_under "$m") ]]; then fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"; fi
}
RESTIC_PATH=''
# alive_pid PID: running, not a zombie (restic is our child until the phase ends)
alive_pid() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; [[ ${s%% *} != [ZX] ]]; }
restic_mount() {
  local m=$MNT/restic _i t0 t1
  mkdir -p "$m"
  echo "# $(date +%T) restic mount $m" >>"$OUT/restic-mount.log"
  t0=$EPOCHREALTIME
  setsid restic -o s3.bucket-lookup=path mount "$m" >>"$OUT/restic-mount.log" 2>&1 </dev/null &
  for _i in $(seq 1 $((MOUNT_TIMEOUT * 10))); do
    timeout -s KILL 10 test -d "$m/tags/v2" && break
    alive_pid $! || { why "restic mount exited: $(tail -n 3 "$OUT/restic-mount.log" | tr '\n' ' ')"; return 1; }
    sleep 0.1
  done
  timeout -s KILL 10 test -d "$m/tags/v2" || { why "restic mount: no $m/tags/v2 after $MOUNT_TIMEOUT s"; return 1; }
  t1=$EPOCHREALTIME
  printf '{"peer": "restic-mount", "label": "mount", "wall_s": %s, "rc": 0}\n' \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')" >>"$RES"
  wait_daemon "$m"
  RESTIC_PATH=$m/tags/v2/$(timeout -s KILL 10 ls "$m/tags/v2" | grep -v '^latest$' | sort | tail -n 1)
  [[ $RESTIC_PATH != "$m/tags/v2/" ]] || { why "restic mount: no snapshot under $m/tags/v2"; return 1; }
}
restic_umount() {
  local m=$MNT/restic pid
  [[ -n $(mounts_under "$m") ]] || return 0
  pid=$(daemon_pids "$m" | head -n 1)
  timeout -s KILL 20 fusermount3 -u "$m" 2>>"$OUT/restic-mount.log" || log "fusermount3 -u $m failed: detaching it"
  if [[ -n $pid ]]; then wait_unmounted "$m" "$pid"
  elif [[ -n $(mounts_under "$m") ]]; then fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"; fi
}

# read_test PEER TEST ROUND DIR: one cold read test in DIR (page cache dropped first)
read_test() {
  local peer=$1 t=$2 r=$3 d=$4 msg ok
  case $t in
    seq_large)
      timed "$peer" seq_large --cold --cwd "$d" --pid "$MOUNT_PID" --bytes "$LBYTES" -- \
        sh -c 'cat large/f0 large/f1 large/f2 large/f3 > /dev/null' ;;
    small_py1)
      timed "$peer" small_py1 --cold --cwd "$d" --pid "$MOUNT_PID" --bytes "$SBYTES" --files "$SFILES" -- \
        "$PY" "$BENCH_LIB/readfiles.py" small 1
      ok=0; msg=$($RR check-small "$RES" "$SFILES" "$SBYTES") || ok=1
      verify "$peer" "$r" "small files read" $ok "$msg" ;;
    rand4k)
      timed "$peer" rand4k --cold --cwd "$d" --pid "$MOUNT_PID" -- "$PY" "$BENCH_LIB/randread.py" large/f2 "$RAND_N"
      ok=0; [[ $($RR crc "$RES") == "$SRC_CRC" ]] || ok=1
      verify "$peer" "$r" "random reads crc" $ok "crc $($RR crc "$RES") != source $SRC_CRC" ;;
  esac
}
TESTS=(seq_large small_py1 rand4k)

# ---------------------------------------------------------------- phase 1: push (per round, per peer)
push_tusk() {
  local r=$1 b0 b1 b2 w
  rm -rf "$LOCAL"
  bucket_fresh "$B_TUSK" >>"$CMDLOG" 2>&1
  tk --store "$LOCAL" init "${INIT_ARGS[@]}" >>"$OUT/tusk.log" 2>&1
  tk --store "$LOCAL" dataset create bench >>"$OUT/tusk.log" 2>&1
  tk --store "$LOCAL" remote add origin "s3://$B_TUSK/bench" --endpoint "$S3_ENDPOINT" --path-style >>"$OUT/tusk.log" 2>&1
  bind_src v1
  timed tusk import_v1 --cold --bytes "$V1B" -- "${LOGGED[@]}" "$OUT/tusk.log" "$TUSK_BIN" --store "$LOCAL" import "$SRC" bench@main -m v1
  unbind_src
  b0=$(bucket_bytes "$B_TUSK")
  timed tusk push_v1 --cold -- "${LOGGED[@]}" "$OUT/tusk.log" "$TUSK_BIN" --store "$LOCAL" push origin bench
  b1=$(bucket_bytes "$B_TUSK")
  rec --peer tusk --label uploaded_v1 --round "$r" --value $((b1 - b0)) --unit B
  w=$(awk -v a="$(last_wall tusk import_v1)" -v b="$(last_wall tusk push_v1)" 'BEGIN { print a + b }')
  rec --peer tusk --label import_push_v1 --round "$r" --value "$w" --unit s
  bind_src v2
  timed tusk import_v2 --cold --bytes "$V2B" -- "${LOGGED[@]}" "$OUT/tusk.log" "$TUSK_BIN" --store "$LOCAL" import "$SRC" bench@main -m v2
  unbind_src
  timed tusk push_v2 --cold -- "${LOGGED[@]}" "$OUT/tusk.log" "$TUSK_BIN" --store "$LOCAL" push origin bench
  b2=$(bucket_bytes "$B_TUSK")
  rec --peer tusk --label uploaded_v2 --round "$r" --value $((b2 - b1)) --unit B
  w=$(awk -v a="$(last_wall tusk import_v2)" -v b="$(last_wall tusk push_v2)" 'BEGIN { print a + b }')
  rec --peer tusk --label import_push_v2 --round "$r" --value "$w" --unit s
  log "   tusk round $r: uploaded v1 $((b1 - b0)) B, v2 $((b2 - b1)) B"
}
push_restic() {
  local r=$1 b0 b1 b2
  rm -rf "$RCACHE"
  bucket_fresh "$B_RESTIC" >>"$CMDLOG" 2>&1
  timed restic init -- "${LOGGED[@]}" "$OUT/restic.log" restic -o s3.bucket-lookup=path init --repository-version "$RESTIC_REPO_VERSION"
  b0=$(bucket_bytes "$B_RESTIC")
  bind_src v1
  timed restic backup_v1 --cold --cwd "$SRC" --bytes "$V1B" -- "${LOGGED[@]}" "$OUT/restic.log" \
    restic -o s3.bucket-lookup=path backup --host bench --tag v1 --compression "$RESTIC_COMPRESSION" -q .
  unbind_src
  b1=$(bucket_bytes "$B_RESTIC")
  rec --peer restic --label uploaded_v1 --round "$r" --value $((b1 - b0)) --unit B
  bind_src v2
  timed restic backup_v2 --cold --cwd "$SRC" --bytes "$V2B" -- "${LOGGED[@]}" "$OUT/restic.log" \
    restic -o s3.bucket-lookup=path backup --host bench --tag v2 --compression "$RESTIC_COMPRESSION" -q .
  unbind_src
  b2=$(bucket_bytes "$B_RESTIC")
  rec --peer restic --label uploaded_v2 --round "$r" --value $((b2 - b1)) --unit B
  log "   restic round $r: uploaded v1 $((b1 - b0)) B, v2 $((b2 - b1)) B"
}

# ---------------------------------------------------------------- phase 2: cold reads
setup_clone() {
  rm -rf "$CLONE"
  timed tusk-clone clone -- "${LOGGED[@]}" "$OUT/tusk-clone.log" "$TUSK_BIN" clone "s3://$B_TUSK/bench" "$CLONE" \
    --endpoint "$S3_ENDPOINT" --path-style
}
setup_raw() {
  bucket_fresh "$B_RAW" >>"$CMDLOG" 2>&1
  timed raw-get upload --bytes "$V2B" -- "${LOGGED[@]}" "$OUT/raw-get.log" \
    env -u AWS_CA_BUNDLE rclone --config "" copy "$DATA/v2" "benchs3:$B_RAW/v2" --transfers 8
  local n; n=$(rcl size --json "benchs3:$B_RAW/v2" | jq '.count')
  [[ $n == $((SFILES + 4)) ]] || { why "raw bucket holds $n objects under v2/, expected $((SFILES + 4))"; return 1; }
}
cold_tusk() {
  local r=$1 t
  for t in "${TESTS[@]}"; do
    tusk_umount clone
    rm -rf "$CLONE/cache"
    tusk_mount "$CLONE" clone tusk-clone
    read_test tusk-clone "$t" "$r" "$MNT/clone"
    rec --peer tusk-clone --label "fetched_$t" --round "$r" \
      --value "$(du -s --block-size=1 "$CLONE/cache" 2>/dev/null | cut -f1 || echo 0)" --unit B
    tusk_umount clone
  done
}
cold_restic() {
  local r=$1 t
  for t in "${TESTS[@]}"; do
    restic_umount
    restic_mount
    read_test restic-mount "$t" "$r" "$RESTIC_PATH"
    restic_umount
  done
}
raw_get() {
  MOUNT_PID=''
  timed raw-get rawget --cold -- "$PY" "$BENCH_LIB/s3_raw_get.py" "$B_RAW" v2/ --threads 1,8 --repeat 1
}

# ---------------------------------------------------------------- phase 3: after prefetch
prefetch() {
  local ok msg
  tusk_umount clone
  rm -rf "$CLONE/cache"
  timed tusk-clone prefetch --cold --bytes "$V2B" -- "${LOGGED[@]}" "$OUT/tusk-clone.log" "$TUSK_BIN" --store "$CLONE" prefetch bench@main
  rec --peer tusk-clone --label cache_after_prefetch --value "$(du -s --block-size=1 "$CLONE/cache" | cut -f1)" --unit B
  # the large files through the clone's mount equal the source (not timed)
  tusk_mount "$CLONE" clone tusk-verify
  ok=0; msg=''
  for f in f0 f1 f2 f3; do
    [[ $(sha256sum <"$MNT/clone/large/$f") == "$(sha256sum <"$DATA/v2/large/$f")" ]] || { ok=1; msg+="large/$f differs; "; }
  done
  verify tusk-prefetched 0 "large sha256" $ok "$msg"
  tusk_umount clone
}
warm_tusk() {  # warm_tusk ROUND PEER STORE NAME
  local r=$1 peer=$2 st=$3 name=$4 t
  for t in "${TESTS[@]}"; do
    tusk_umount "$name"
    tusk_mount "$st" "$name" "$peer"
    read_test "$peer" "$t" "$r" "$MNT/$name"
    tusk_umount "$name"
  done
}

# ---------------------------------------------------------------- header
SRC_CRC=$($PY "$BENCH_LIB/randread.py" "$DATA/v2/large/f2" "$RAND_N" | jq .crc)
rec --peer source --label rand4k_src --value "$SRC_CRC"
cat >"$OUT/params.json" <<EOF
{"scale": "$SCALE", "seed": $SEED, "runs": $RUNS, "rand_n": $RAND_N, "s3_endpoint": "$S3_ENDPOINT",
 "buckets": ["$B_TUSK", "$B_RESTIC", "$B_RAW"], "nproc": $(nproc)}
EOF
{
  echo "# tusk remote benchmark: push to S3, lazy reads from a clone, reads after prefetch"
  echo
  bench_info "data, stores, clone cache and restic cache on that file system"
  echo "- load at the start: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; $(nproc) CPUs);" \
       "memory available $(awk '/MemAvailable/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "- dataset: SCALE=$SCALE SEED=$SEED (\`$DATA\`): v1 $(printf "%'d" "$V1B") B," \
       "v2 $(printf "%'d" "$V2B") B ($(printf "%'d" "$SFILES") small files, 4 large of $(printf "%'d" "$(jq .large_file_bytes "$DATA/manifest.json")") B;" \
       "f2 +10 MiB in v2), ideal v2 increment $(printf "%'d" "$(jq .ideal_incremental_bytes "$DATA/manifest.json")") B"
  echo "- S3: $S3_DESC at $S3_ENDPOINT, path-style; buckets $B_TUSK (tusk remote at /bench)," \
       "$B_RESTIC (restic), $B_RAW (the v2 tree as plain objects, \`rclone copy\`)"
  echo "- restic: $(restic version | awk '{print $1, $2}'), repository v$RESTIC_REPO_VERSION," \
       "--compression $RESTIC_COMPRESSION, -o s3.bucket-lookup=path; RESTIC_CACHE_DIR kept across the read rounds" \
       "(index, snapshots, trees; restic has no data cache), \`restic mount\` remounted before every read test" \
       "(its in-memory blob cache starts empty)"
  echo "- raw GET: \`s3_raw_get.py $B_RAW v2/ --threads 1,8 --repeat 1\` once a round (boto3 $($PY -c 'import boto3; print(boto3.__version__)' 2>/dev/null))"
  echo "- cold: \`sync; echo 3 > /proc/sys/vm/drop_caches\` (benchlib.py time --cold) after the remount, before every" \
       "timed step; timing: benchlib.py (wall, monotonic); rounds: RUNS=$RUNS; random reads: RAND_N=$RAND_N"
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

# ---------------------------------------------------------------- run
for r in $(seq 1 "$RUNS"); do
  log "== push round $r/$RUNS"
  order=(tusk restic); ((r % 2)) || order=(restic tusk)
  for p in "${order[@]}"; do
    [[ -z ${FAILED[$p]:-} ]] || continue
    run_phase "push-$p-r$r" "push_$p" "$r"
    ((GROUP_RC == 0)) || FAILED[$p]=1
  done
done

log "== set-up of the read tests: tusk clone, the raw tree in $B_RAW"
if [[ -z ${FAILED[tusk]:-} ]]; then
  run_phase clone setup_clone
  ((GROUP_RC == 0)) || FAILED[tusk]=1
fi
run_phase raw-upload setup_raw
((GROUP_RC == 0)) || FAILED[raw]=1

# a peer that failed in one round is not run again (its failure is in failed.tsv)
for r in $(seq 1 "$RUNS"); do
  log "== cold reads, round $r/$RUNS"
  order=(tusk restic raw); ((r % 2)) || order=(raw restic tusk)
  for p in "${order[@]}"; do
    case $p in
      tusk) [[ -z ${FAILED[tusk]:-}${FAILED[tusk-cold]:-} ]] || continue
            run_phase "cold-tusk-r$r" cold_tusk "$r"; ((GROUP_RC == 0)) || FAILED[tusk-cold]=1 ;;
      restic) [[ -z ${FAILED[restic]:-} ]] || continue
              run_phase "cold-restic-r$r" cold_restic "$r"; ((GROUP_RC == 0)) || FAILED[restic]=1 ;;
      raw) [[ -z ${FAILED[raw]:-} ]] || continue
           run_phase "raw-get-r$r" raw_get; ((GROUP_RC == 0)) || FAILED[raw]=1 ;;
    esac
  done
done

if [[ -z ${FAILED[tusk]:-} ]]; then
  log "== tusk prefetch bench@main in the clone"
  run_phase prefetch prefetch
  ((GROUP_RC == 0)) || FAILED[prefetch]=1
  for r in $(seq 1 "$RUNS"); do
    log "== reads after prefetch, round $r/$RUNS"
    order=(prefetched local); ((r % 2)) || order=(local prefetched)
    for p in "${order[@]}"; do
      case $p in
        prefetched) [[ -z ${FAILED[prefetch]:-} ]] || continue
                    run_phase "prefetched-r$r" warm_tusk "$r" tusk-prefetched "$CLONE" clone
                    ((GROUP_RC == 0)) || FAILED[prefetch]=1 ;;
        local) [[ -z ${FAILED[local]:-} ]] || continue
               run_phase "local-r$r" warm_tusk "$r" tusk-local "$LOCAL" local
               ((GROUP_RC == 0)) || FAILED[local]=1 ;;
      esac
    done
  done
fi

# ---------------------------------------------------------------- report
{
  cat "$OUT/header.md"
  echo
  $RR report "$OUT"
  echo
  echo "Total benchmark time $((SECONDS - T0)) s.  Raw records: results.jsonl; progress: run.log; tool output:" \
       "<peer>.log, tusk daemons: <peer>.daemon.log; \`python3 remote_report.py report .\` re-renders the table."
} >"$OUT/results.md"
cat "$OUT/results.md"
log "results: $OUT/results.md"
