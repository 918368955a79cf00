#!/bin/bash
# libfuse's passthrough_ll example (FUSE3 low-level API) over plain files: the
# ceiling of a FUSE filesystem on this machine (no decompression, no lookups
# beyond the underlying ext4).  "import" is cp -a per version (as native.sh);
# "mount" serves $STORE read-only with the kernel caches at their maximum
# (cache=always: keep_cache on open, entry/attr timeout 86400 s).
# The example is compiled once from /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
# (package libfuse3-dev) to $PASSTHROUGH_LL_BIN (default $BENCH_ROOT/bin/passthrough_ll,
# BENCH_ROOT derived from STORE=$BENCH_ROOT/stores/<peer>); rebuilt when the source is newer.
# Env: PASSTHROUGH_LL_BIN, PASSTHROUGH_LL_SRC, PASSTHROUGH_LL_OPTS (default cache=always,timeout=86400).
set -euo pipefail
SHARED_BENCH=${SHARED_BENCH:-$(cd "$(dirname "$0")/../../../.." && pwd)/shared/bench}
. "$SHARED_BENCH/adapters/_common.sh"
PT_SRC=${PASSTHROUGH_LL_SRC:-/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c}
PT_BIN=${PASSTHROUGH_LL_BIN:-$(dirname "$(dirname "$STORE")")/bin/passthrough_ll}
PT_OPTS=${PASSTHROUGH_LL_OPTS:-cache=always,timeout=86400}

# _build: compile the example if the cached binary is missing or older than the source
_build() {
  [[ -x $PT_BIN && ! $PT_SRC -nt $PT_BIN ]] && return 0
  [[ -f $PT_SRC ]] || { log "missing $PT_SRC (apt-get install libfuse3-dev)"; return 1; }
  local hdrs; hdrs=$(dirname "$PT_SRC")   # passthrough_helpers.h sits beside it
  mkdir -p "$(dirname "$PT_BIN")"
  # shellcheck disable=SC2046  # pkg-config prints a flag list
  gcc -O2 -Wall -I"$hdrs" "$PT_SRC" $(pkg-config fuse3 --cflags --libs) -o "$PT_BIN.tmp.$$" >&2 \
    && mv -f "$PT_BIN.tmp.$$" "$PT_BIN" || { rm -f "$PT_BIN.tmp.$$"; log "building $PT_BIN failed"; return 1; }
  log "built $PT_BIN"
}

a_describe()  { echo "libfuse $(pkg-config --modversion fuse3 2>/dev/null) example passthrough_ll -o ro,$PT_OPTS over cp -a copies"; }
a_setup()     { _build; }
a_import()    { cp -a "$1/." "$STORE/v1"; }
a_import_v2() { cp -a "$1/." "$STORE/v2"; }
# passthrough_ll mounts, then daemonizes (fuse_daemonize): the mount exists when it returns
a_mount()     { _build && "$PT_BIN" -o "ro,source=$STORE,$PT_OPTS" "$1" </dev/null >&2 && wait_mounted "$1"; }
a_path()      { echo "$1/$2"; }
a_umount() {
  local pid; pid=$(a_pid "$1")
  fuse_umount "$1"
  [[ -n $pid ]] && while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done || true
}
a_size()      { du_bytes "$STORE"; }
dispatch "$@"
