# Mount hygiene shared by the benchmarks that mount (sourced; needs log() and
# $BENCH_ROOT, and $MNT: the directory our mount points live under).
# mounts_under DIR: mount points at or below DIR, deepest first (mountinfo field 5, \040 = space)
mounts_under() {
  local root; root=$(realpath -m "$1")
  awk -v r="$root" '{ m = $5; gsub(/\\040/, " ", m); if (m == r || index(m, r "/") == 1) print length(m) "\t" m }' \
    /proc/self/mountinfo | sort -rn | cut -f2- | uniq
}
# daemon_pids [PATH]: processes with an argument under $MNT/ (or equal to PATH): our
# mount daemons.  Reads /proc only, never stat()s a mount point (that would hang on a
# FUSE daemon that does not answer).
daemon_pids() {
  local f pid a args
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    [[ $pid != "$$" && $pid != "$BASHPID" ]] || continue
    mapfile -d '' -t args 2>/dev/null <"$f" || continue
    ((${#args[@]} > 1)) || continue
    for a in "${args[@]:1}"; do
      if [[ -n ${1:-} && $a == "$1" ]] || [[ -z ${1:-} && $a == "$MNT/"* ]]; then echo "$pid"; break; fi
    done
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
