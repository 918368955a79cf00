# Mount hygiene shared by the benchmarks that mount (sourced; needs log() and
# $BENCH_ROOT, and $MNT: the directory our mount points live under).
# mounts_under DIR: mount points at or below DIR, deepest first (mountinfo field 5, \040 = space)
mounts_under() {
  local root; root=$(realpath -m "$1")
  awk -v r="$root" '{ m = $5; gsub(/\\040/, " ", m); if (m == r || index(m, r "/") == 1) print length(m) "\t" m }' \
    /proc/self/mountinfo | sort -rn | cut -f2- | uniq
}
# pids_with_arg EXACT PREFIX: processes (not this shell) with an argument after argv[0]
# equal to EXACT, or, when EXACT is empty, starting with PREFIX.  Reads /proc only, never
# stat()s a mount point (that would hang on a FUSE daemon that does not answer).
pids_with_arg() {
  local f pid a args
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    [[ $pid != "$$" && $pid != "$BASHPID" ]] || continue
    mapfile -d '' -t args 2>/dev/null <"$f" || continue
    ((${#args[@]} > 1)) || continue
    for a in "${args[@]:1}"; do
      if [[ -n $1 && $a == "$1" ]] || [[ -z $1 && $a == "$2"* ]]; then echo "$pid"; break; fi
    done
  done
  return 0
}
# daemon_pids [PATH]: processes with an argument under $MNT/ (or equal to PATH): our
# mount daemons.
daemon_pids() { pids_with_arg "${1:-}" "$MNT/"; }
# stop_pids PID...: TERM each (naming it), then KILL whatever is still there after 5 s.
stop_pids() {
  local pid _i args
  for pid in "$@"; do
    args=$(tr '\0' ' ' 2>/dev/null </proc/"$pid"/cmdline | cut -c1-160)
    [[ -n $args ]] || continue                      # ended meanwhile
    log "stopping leftover pid $pid: $args"
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "$@"; do
    for _i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "pid $pid ignores TERM: KILL"; kill -KILL "$pid" 2>/dev/null; sleep 0.2; }
  done
  return 0
}
# umount_all: TERM (then KILL after 5 s) every daemon of ours, then unmount whatever is
# still mounted under $BENCH_ROOT (dead FUSE connections too), deepest first.  Twice.
umount_all() {
  local m pid pids _i _pass
  for _pass in 1 2; do
    pids=$(daemon_pids)
    for pid in $pids; do
      log "stopping leftover daemon pid $pid: $(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | cut -c1-160)"
      kill -TERM "$pid" 2>/dev/null
    done
    for pid in $pids; do
      for _i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && { log "pid $pid ignores TERM: KILL"; kill -KILL "$pid" 2>/dev/null; sleep 0.2; }
    done
    while IFS= read -r m; do
      [[ -n $m ]] || continue
      log "unmounting leftover $m"
      timeout -s KILL 20 fusermount3 -u -z "$m" 2>/dev/null || timeout -s KILL 20 umount -l "$m" 2>/dev/null \
        || log "WARNING: cannot unmount $m"
    done < <(mounts_under "$BENCH_ROOT")
  done
}
# stop_group PID SECONDS WHAT: TERM the process group led by PID, KILL it if it is
# still running SECONDS later, and reap it.  WHAT names it in the log.
stop_group() {
  local pid=$1 secs=$2 what=$3 _i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  log "stopping $what (pid $pid)"
  kill -TERM -- -"$pid" 2>/dev/null
  for _i in $(seq $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { log "$what still running after $secs s: KILL"; kill -KILL -- -"$pid" 2>/dev/null; }
  wait "$pid" 2>/dev/null
  return 0
}

# bench_cleanup RC WHAT KEPT KEEP [HOOK]: the EXIT trap of a mounting benchmark: stop the
# running group (WHAT names it), unmount everything, then (when nothing is left mounted)
# delete $NATIVE, patch files and .why, and $STORES unless KEEP is 1; else log that KEPT.
# HOOK (a command) runs just before the deletion.  Exits with RC.
bench_cleanup() {
  local rc=$1
  set +e
  trap - INT TERM
  stop_group "$TESTPID" 10 "$2"
  umount_all
  if [[ -n $(mounts_under "$BENCH_ROOT") ]]; then
    log "WARNING: still mounted under $BENCH_ROOT: $(mounts_under "$BENCH_ROOT" | xargs); $3"
  else
    [[ -z ${5:-} ]] || $5
    rm -rf "$NATIVE" "$BENCH_ROOT"/patch-* "${OUT:-/nonexistent}/.why"
    [[ $4 == 1 ]] || rm -rf "$STORES"
  fi
  ((rc == 0)) || log "exiting with status $rc${OUT:+ (results so far in $OUT)}"
  exit "$rc"
}

# run_group KIND NAME FUNC ARGS...: FUNC in a background subshell with its own process
# group ($TESTPID: the EXIT trap can stop it at once) and with set -e active: the first
# failing command ends it, which is then logged as "KIND NAME FAILED" and added to
# $OUT/failed.tsv.  Sets GROUP_RC to FUNC's status and returns 0: called outside any
# `||`/`&&`/`if` context, so that set -e stays in force in the subshell (bash ignores
# it there, in a background subshell too, when the caller is in such a context).
# Needs why, $OUT and $CMDLOG.
run_group() {
  local kind=$1 name=$2 rc=0 reason; shift 2
  rm -f "$OUT/.why"
  set -m
  (
    set +m       # monitor mode would give each pipeline in here its own process group
    set -eE
    trap 'st=$?; [[ -s $OUT/.why ]] || why "line $LINENO: $BASH_COMMAND (status $st)"' ERR
    trap - INT TERM EXIT
    "$@"
  ) </dev/null &
  TESTPID=$!
  set +m
  wait "$TESTPID" || rc=$?
  TESTPID=''
  if ((rc != 0)); then
    reason=$(cat "$OUT/.why" 2>/dev/null) || reason="exit status $rc"
    log "$kind $name FAILED: $reason (see $OUT/run.log and $CMDLOG)"
    printf '%s\t%s\n' "$name" "$reason" >>"$OUT/failed.tsv"
    umount_all
  fi
  GROUP_RC=$rc
  return 0
}

# wait_daemon MNT: sets MOUNT_PID to the daemon serving MNT (waits up to 5 s for it)
wait_daemon() {
  local _i
  MOUNT_PID=''
  for _i in $(seq 50); do
    MOUNT_PID=$(daemon_pids "$1" | head -n 1)
    [[ -z $MOUNT_PID ]] || break
    sleep 0.1
  done
  [[ -n $MOUNT_PID ]] || { why "mounted $1 but found no daemon process"; return 1; }
}
# wait_unmounted MNT PID: after `tusk umount MNT`: wait up to 60 s for the daemon PID to
# exit (then KILL it), and detach MNT if it is still mounted
wait_unmounted() {
  local mnt=$1 pid=$2 _i
  for _i in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then log "daemon $pid still running 60 s after umount: KILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
  if [[ -n $(mounts_under "$mnt") ]]; then fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt"; fi
}
