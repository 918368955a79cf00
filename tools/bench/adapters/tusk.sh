#!/bin/bash
# tusk adapter for the shared bench harness (copy of shared/bench/adapters/tusk.sh,
# adjusted to the CLI as built, see tools/tusk/CLI-SPEC.md).
# One dataset "bench"; v1 and v2 are two commits of branch main, tagged v1 and v2.
# Env: TUSK_BIN (default: tusk on PATH), TUSK_INIT_ARGS (extra flags for `tusk init`,
#      e.g. "--chunk-avg 128K --compression-level 6"), TUSK_MOUNT_ARGS (extra flags for
#      `tusk mount`, e.g. "--log FILE --cache-size 256M"), SHARED_BENCH (shared/bench dir).
# The mount daemon is `tusk mount` forked (no exec), so its argv holds MNT: the default
# `pid` (first process whose argv contains MNT) finds it.
set -euo pipefail
SHARED_BENCH=${SHARED_BENCH:-$(cd "$(dirname "$0")/../../../.." && pwd)/shared/bench}
. "$SHARED_BENCH/adapters/_common.sh"
BIN=${TUSK_BIN:-tusk}
export TUSK_STORE=$STORE/store
# word splitting of TUSK_INIT_ARGS is intended (a list of flags)
read -r -a INIT_ARGS <<<"${TUSK_INIT_ARGS:-}"
read -r -a MOUNT_ARGS <<<"${TUSK_MOUNT_ARGS:-}"

a_describe()  { echo "$($BIN --version 2>/dev/null | head -1)${TUSK_INIT_ARGS:+ $TUSK_INIT_ARGS}"; }
a_setup()     { $BIN init "${INIT_ARGS[@]}" >/dev/null && $BIN dataset create bench >/dev/null; }
a_import()    { $BIN import "$1" bench@main -m v1 >/dev/null && $BIN tag bench@v1 bench@main >/dev/null; }
a_import_v2() { $BIN import "$1" bench@main -m v2 >/dev/null && $BIN tag bench@v2 bench@main >/dev/null; }
# _mount_pids MNT: PIDs of `$BIN mount ... MNT` processes.  Reads /proc only: while a
# FUSE daemon hangs before answering INIT, any stat() of MNT (realpath, mountpoint) hangs too.
_mount_pids() {
  local f pid args
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    mapfile -d '' -t args 2>/dev/null <"$f" || continue
    ((${#args[@]} >= 3)) && [[ ${args[0]} == "$BIN" && ${args[1]} == mount && ${args[-1]} == "$1" ]] && echo "$pid"
  done
  return 0
}
# `tusk mount` returns once the daemon has mounted (TUSK_MOUNT_TIMEOUT s at most, default
# 120); on failure its output goes to stderr (the harness's <peer>.log) and a daemon
# left behind is killed (SIGKILL: a hung one sleeps in the kernel) and its mount dropped.
a_mount() {
  local rc=0 pids
  timeout "${TUSK_MOUNT_TIMEOUT:-120}" "$BIN" mount "${MOUNT_ARGS[@]}" "bench@$READ_VERSION" "$1" \
    >"$STORE/mount.log" 2>&1 </dev/null || rc=$?
  if ((rc == 0)); then wait_mounted "$1"; return; fi
  cat "$STORE/mount.log" >&2
  ((rc == 124)) && log "tusk mount did not return within ${TUSK_MOUNT_TIMEOUT:-120} s"
  pids=$(_mount_pids "$1")
  if [[ -n $pids ]]; then
    log "killing the mount daemon: $(echo "$pids" | xargs)"
    # shellcheck disable=SC2086  # a list of PIDs
    kill -KILL $pids 2>/dev/null || true
    sleep 0.5
  fi
  grep -qF " $1 " /proc/self/mountinfo && { fusermount3 -u -z "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true; }
  return 1
}
a_path()      { echo "$1"; }
a_umount() {
  local pid; pid=$(a_pid "$1")
  $BIN umount "$1" 2>/dev/null || fuse_umount "$1"
  [[ -n $pid ]] && while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done || true
}
a_size()      { du_bytes "$TUSK_STORE"; }
dispatch "$@"
