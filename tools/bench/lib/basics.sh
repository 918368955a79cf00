# shellcheck shell=bash
# Helpers every benchmark script uses; sourcing this has no side effects.
# log writes to $OUT/run.log too once OUT (the results directory) is set.

die() { echo "error: $*" >&2; exit 1; }
log() {
  local line="[$(date +%H:%M:%S)] $*"
  if [[ -n ${OUT:-} ]]; then echo "$line" | tee -a "$OUT/run.log" >&2; else echo "$line" >&2; fi
}

# ensure_packages PKG...: install the missing Debian packages.  No `apt-get update`
# unless the install fails with the current package lists (then: update, retry once).
ensure_packages() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local lg=/tmp/tusk-bench-apt.log
  [[ -z ${OUT:-} ]] || lg=$OUT/apt.log
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$lg" 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >>"$lg" 2>&1 \
    || { tail -n 20 "$lg" >&2; die "apt-get install ${missing[*]} failed (log: $lg)"; }
}

# take_lock: one benchmark at a time per $BENCH_ROOT (holds fd 9 until exit)
take_lock() {
  mkdir -p "$BENCH_ROOT"
  exec 9>"$BENCH_ROOT/.lock"
  flock -n 9 || die "another benchmark is running under $BENCH_ROOT"
}

# check_fs: sets FSTYPE (of $BENCH_ROOT); dies unless ext4 or ALLOW_ANY_FS=1; then
# removes the last run's $NATIVE and $STORES
check_fs() {
  FSTYPE=$(df -PT "$BENCH_ROOT" | awk 'NR==2{print $2}')
  if [[ $FSTYPE != ext4 && ${ALLOW_ANY_FS:-0} != 1 ]]; then
    die "BENCH_ROOT=$BENCH_ROOT is on $FSTYPE, not ext4 (set BENCH_ROOT to an ext4 directory, or ALLOW_ANY_FS=1)"
  fi
  rm -rf "$NATIVE" "$STORES"
}
# check_free NEED_MIB NEED_INODES PARAMS LOWER: dies when $BENCH_ROOT has less free space
# or inodes; PARAMS (e.g. "N=1000") and LOWER (e.g. "lower N") go into the message.
# Sets avail_mib.
check_free() {
  local need_mib=$1 need_inodes=$2 avail_inodes
  avail_mib=$(df -Pk "$BENCH_ROOT" | awk 'NR==2{printf "%d", $4 / 1024}')
  ((avail_mib >= need_mib)) || die "not enough free space in $BENCH_ROOT ($FSTYPE): about $need_mib MiB needed" \
    "($3), $avail_mib MiB available.  Free some space, $4, or set BENCH_ROOT."
  avail_inodes=$(df -Pi "$BENCH_ROOT" | awk 'NR==2{print $4}')
  [[ ! $avail_inodes =~ ^[0-9]+$ ]] || ((avail_inodes >= need_inodes)) \
    || die "not enough free inodes in $BENCH_ROOT: about $need_inodes needed, $avail_inodes available"
}

# copy_tusk_bin: the binary is copied first (to $BENCH_ROOT/bin/tusk): a rebuild of
# build/tusk during the run (other people compile in the same tree) must not change the
# program under test halfway.  Sets TUSK_ORIG, TUSK_BIN and tusk_version (needs REPO).
copy_tusk_bin() {
  TUSK_ORIG=$TUSK_BIN
  TUSK_BIN=$BENCH_ROOT/bin/tusk
  cp "$TUSK_ORIG" "$TUSK_BIN.tmp" && mv "$TUSK_BIN.tmp" "$TUSK_BIN"
  tusk_version="$("$TUSK_BIN" --version 2>/dev/null | head -n 1); copy of $TUSK_ORIG (built $(date -r "$TUSK_ORIG" '+%F %T'), sha256 $(sha256sum "$TUSK_BIN" | cut -c1-12)); tree at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$( [[ -n $(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null) ]] && echo ' + local changes' || true)"
}

# bench_info ON-FS: the date/host/kernel/command/tusk lines of a report header; ON-FS says
# what is on $BENCH_ROOT's file system (needs FSTYPE, CMDLINE, tusk_version)
bench_info() {
  echo "- date: $(date -Is)"
  echo "- host: $(hostname), nproc $(nproc), CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "RAM $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "- kernel: $(uname -r); BENCH_ROOT $BENCH_ROOT on $FSTYPE ($(df -P "$BENCH_ROOT" | awk 'NR==2{print $1}'));" \
       "$1"
  echo "- command: \`$CMDLINE\`"
  echo "- tusk: $tusk_version${TUSK_INIT_ARGS:+; init $TUSK_INIT_ARGS}${TUSK_MOUNT_ARGS:+; mount $TUSK_MOUNT_ARGS}"
}
