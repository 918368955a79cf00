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
