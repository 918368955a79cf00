# shellcheck shell=bash
# Shared helpers for import_bench.sh and chunk_sweep.sh.  Sourced after
# `set -euo pipefail` with HERE set to tools/bench.  Reuses the shared
# harness (gen_data.py, benchlib.py, adapters) by path; never modifies it.

REPO=$(cd "$HERE/../.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$REPO/../shared/bench}
if [[ ! -f $SHARED_BENCH/lib/gen_data.py || ! -f $SHARED_BENCH/lib/benchlib.py ]]; then
  echo "error: shared bench harness not found at $SHARED_BENCH (set SHARED_BENCH)" >&2
  exit 1
fi
SHARED_BENCH=$(cd "$SHARED_BENCH" && pwd)
export SHARED_BENCH BENCH_LIB=$SHARED_BENCH/lib

SCALE=${SCALE:-0.1}
SEED=${SEED:-42}
RUNS=${RUNS:-3}
BENCH_ROOT=${BENCH_ROOT:-/tmp/tusk-bench}
TUSK_BIN=${TUSK_BIN:-$REPO/build/tusk}
[[ $TUSK_BIN == */* ]] && TUSK_BIN=$(realpath -m "$TUSK_BIN")
TUSK_INIT_ARGS=${TUSK_INIT_ARGS:-}
KEEP_STORES=${KEEP_STORES:-0}
PY=${PY:-/usr/bin/python3}
export TUSK_BIN

DATA=$BENCH_ROOT/data/s$SCALE-seed$SEED
SRC=$BENCH_ROOT/src
BL="$PY $BENCH_LIB/benchlib.py"
OUT=''          # results directory, set by start_run
STORES=''       # per-script store root, set by start_run

. "$HERE/lib/basics.sh"   # die, log, ensure_packages, take_lock, check_fs, check_free, copy_tusk_bin, bench_info

# The adapter for a peer: ours (tools/bench/adapters) first, else the shared one.
adapter_path() {
  if [[ -x $HERE/adapters/$1.sh ]]; then echo "$HERE/adapters/$1.sh"
  elif [[ -x $SHARED_BENCH/adapters/$1.sh ]]; then echo "$SHARED_BENCH/adapters/$1.sh"
  else return 1; fi
}

check_int() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, got '$2'"; }

# take_lock (lib/basics.sh): one benchmark at a time per BENCH_ROOT: both scripts share $SRC.

# start_run KIND: results directory, store root, cleanup trap.
start_run() {
  [[ $EUID -eq 0 ]] || die "must run as root (drop_caches, bind mounts)"
  check_int RUNS "$RUNS"
  take_lock
  local id; id=$(date +%Y%m%d-%H%M%S)-$1-s$SCALE
  OUT=$BENCH_ROOT/results/$id
  STORES=$BENCH_ROOT/stores/$1
  mkdir -p "$OUT" "$SRC"
  rm -rf "$STORES"
  mkdir -p "$STORES"
  trap cleanup EXIT
  trap 'log "interrupted"; exit 130' INT TERM
}

unbind_src() {
  local _
  for _ in 1 2 3 4 5; do
    mountpoint -q "$SRC" || return 0
    umount "$SRC" 2>/dev/null || umount -l "$SRC"
  done
}
bind_src() { unbind_src; mount --bind "$DATA/$1" "$SRC"; }

cleanup() {
  local rc=$?
  set +e
  unbind_src
  if [[ -n $STORES && $KEEP_STORES != 1 ]]; then rm -rf "$STORES"; fi
  if mountpoint -q "$SRC"; then log "WARNING: $SRC is still mounted"; fi
  ((rc == 0)) || log "exiting with status $rc (results so far in $OUT)"
}

# gen_data: generate (or reuse) the two dataset versions; a half-written dir is removed.
gen_data() {
  if [[ -d $DATA && ! -f $DATA/manifest.json ]]; then
    log "removing incomplete dataset $DATA"
    rm -rf "$DATA"
  fi
  local t0=$SECONDS
  $PY "$BENCH_LIB/gen_data.py" "$DATA" --scale "$SCALE" --seed "$SEED" >&2
  cp "$DATA/manifest.json" "$OUT/manifest.json"
  log "dataset $DATA ready ($((SECONDS - t0)) s): v1 $(jq .v1_bytes "$DATA/manifest.json") B," \
      "ideal increment $(jq .ideal_incremental_bytes "$DATA/manifest.json") B"
}

# machine_info COMMAND-LINE: markdown header for results.md
machine_info() {
  local cpu; cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
  echo "- date: $(date -Is)"
  echo "- host: $(hostname), nproc $(nproc), CPU: $cpu," \
       "RAM $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "- kernel: $(uname -r); BENCH_ROOT fs: $(df -T "$BENCH_ROOT" | awk 'NR==2{print $2" on "$1}')"
  echo "- command: \`$1\`"
  echo "- dataset: SCALE=$SCALE SEED=$SEED, v1 $(jq .v1_bytes "$DATA/manifest.json") B" \
       "($(jq '.v1_small_files + 4' "$DATA/manifest.json") files), v2 $(jq .v2_bytes "$DATA/manifest.json") B," \
       "ideal increment $(jq .ideal_incremental_bytes "$DATA/manifest.json") B (shared generator $SHARED_BENCH)"
}

# import_pair NAME ADAPTER [VAR=VALUE...]: one fresh store, import v1 then v2
# (page cache dropped before each import by benchlib --cold), sizes after each.
# Records go to $OUT/results.jsonl under peer NAME; stderr of the tools to $OUT/NAME.log.
import_pair() {
  local name=$1 ad=$2; shift 2
  local st=$STORES/$name res=$OUT/results.jsonl lg=$OUT/$name.log
  local -a envv=(env "$@" PEER="$name" STORE="$st")
  local v1b v2b s1 s2
  v1b=$(jq .v1_bytes "$DATA/manifest.json")
  v2b=$(jq .v2_bytes "$DATA/manifest.json")
  rm -rf "$st" && mkdir -p "$st" || { echo "cannot create $st"; return 1; }
  "${envv[@]}" "$ad" setup >>"$lg" 2>&1 || { echo "setup failed"; return 1; }
  bind_src v1 || { echo "bind mount of v1 failed"; return 1; }
  $BL time --out "$res" --peer "$name" --label import_v1 --cold --bytes "$v1b" \
     -- "${envv[@]}" "$ad" import "$SRC" 2>>"$lg" || { unbind_src; echo "import v1 failed"; return 1; }
  unbind_src
  s1=$("${envv[@]}" "$ad" size 2>>"$lg") || { echo "size failed"; return 1; }
  $BL record --out "$res" --peer "$name" --label stored_v1 --value "$s1" --unit B
  bind_src v2 || { echo "bind mount of v2 failed"; return 1; }
  $BL time --out "$res" --peer "$name" --label import_v2 --cold --bytes "$v2b" \
     -- "${envv[@]}" "$ad" import_v2 "$SRC" 2>>"$lg" || { unbind_src; echo "import v2 failed"; return 1; }
  unbind_src
  s2=$("${envv[@]}" "$ad" size 2>>"$lg") || { echo "size failed"; return 1; }
  $BL record --out "$res" --peer "$name" --label stored_v2 --value "$s2" --unit B
  $BL record --out "$res" --peer "$name" --label stored_incr --value "$((s2 - s1))" --unit B
  log "   $name: stored v1=$s1 v2=$s2 incr=$((s2 - s1)) ($(jq -r --arg p "$name" 'select(.peer == $p and (.label | startswith("import"))) | "\(.label) \(.wall_s)s"' "$res" | tail -n 2 | xargs))"
  if [[ $(basename "$ad") == tusk.sh && ! -e $OUT/$name.stats.json ]]; then
    # not timed; kept for the reader (chunk counts, dedup/compression ratios)
    TUSK_STORE=$st/store "$TUSK_BIN" stats --json >"$OUT/$name.stats.json" 2>>"$lg" || rm -f "$OUT/$name.stats.json"
  fi
  [[ $KEEP_STORES == 1 ]] || rm -rf "$st"
}

# tusk_ok: the binary is there and answers --help
tusk_ok() { [[ -x $TUSK_BIN ]] && "$TUSK_BIN" --help >/dev/null 2>&1; }
