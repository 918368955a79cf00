#!/usr/bin/env bash
# A real S3 server for tusk's S3 integration tests: a throw-away single-node Ceph
# cluster (1 mon, 1 OSD on memstore, radosgw with the beast frontend) on 127.0.0.1,
# from Debian 12's own packages, without Docker, systemd or a mgr.
#
#   tests/s3/rgw.sh install      install the Debian packages it needs (only the missing ones)
#   tests/s3/rgw.sh start DIR    start a cluster whose whole state (config, data, logs, PIDs)
#                                lives in DIR; prints the path of DIR/env as its last line
#   tests/s3/rgw.sh check DIR    self-test of the running cluster with curl (SigV4)
#   tests/s3/rgw.sh stop DIR     stop the daemons started in DIR, then remove DIR
#
# DIR/env holds shell export lines for the tests:
#   TUSK_TEST_S3_ENDPOINT=http://127.0.0.1:PORT  TUSK_TEST_S3_REGION=us-east-1
#   AWS_ACCESS_KEY_ID=...  AWS_SECRET_ACCESS_KEY=...  TUSK_TEST_S3_DIR=DIR
# e.g.  env=$(tests/s3/rgw.sh start /tmp/rgw) && . "$env" && ...; tests/s3/rgw.sh stop /tmp/rgw
#
# start picks free ports itself (mon and S3, from below the kernel's ephemeral range), so
# several clusters can run side by side; it generates a fresh access key and secret, and
# gives S3 60 s to answer. On any failure it stops everything it started, prints the tails
# of the logs and keeps DIR/log for a look (stop DIR removes it). The memstore capacity is
# RGW_MEMSTORE_BYTES (default 2 GiB); objects live in the OSD's RAM, writing past it fills
# the OSD. stop kills only the PIDs recorded in DIR/pids whose command line names
# DIR/ceph.conf (SIGTERM, SIGKILL after 5 s); it never kills by name, as another cluster
# may be running. stop is idempotent: a stopped, half-started or missing cluster is fine.
#
# Why the settings are what they are (each was found the hard way on Ceph 16.2 / Debian 12):
# * auth none everywhere, and `ms mon client mode = crc`: radosgw defaults to mode
#   "secure", which cannot work without auth; it then loops on
#   "get_initial_auth_request returned -13" until its init timeout.
# * `paxos propose interval = 0.05`: with the default 1 s, every osdmap change (OSD boot,
#   each of the ~7 pools radosgw creates) waits about 1 s: start-up took ~18 s instead of ~5.
# * `public addr = v2:127.0.0.1:PORT` in [mon.a]: with only `mon host` set, a mon on a port
#   other than 3300 binds 3300 anyway and probes for itself forever.
# * no mgr: S3 does not need one, but then mgr-backed commands hang forever; never call
#   `ceph df`, `ceph osd df`, `ceph config show` or `ceph pg dump` on these clusters
#   (`ceph -s`, `ceph osd dump` and radosgw-admin are fine).
# * `osd objectstore = memstore` (an unknown value silently falls back to bluestore);
#   capacity is `memstore device bytes`.
# * `tcp_nodelay=1` in `rgw frontends`: without it ~40% of small GETs stall ~44 ms
#   (Nagle's algorithm meeting delayed ACKs), which every client benchmark would measure.
# * pool size 1, no redundancy warnings, few PGs: one OSD.
# * `ms bind retry count = 1` for the mon: a port taken meanwhile fails at once (start then
#   tries another) instead of after 3 retries 5 s apart. (0 means no attempt at all.)
# * The daemons run in the foreground (-f) as background jobs of this script, so their PIDs
#   are known (DIR/pids) before they have written anything.
# * The S3 user is made by radosgw-admin before radosgw starts: a radosgw that dies
#   uncleanly (a port clash) leaves watches that hold up every user or bucket change for
#   30 s; start blocklists such a radosgw before trying another port.
# * stop goes rgw, then OSD, then mon: an OSD whose mon is gone waits 5 s to say goodbye.
# For clients: path-style addressing only (http://127.0.0.1:PORT/bucket/key, no virtual
# hosts). SigV4 with any region signs fine; CreateBucket must send no LocationConstraint
# (or "default"; "us-east-1" gets 400 InvalidLocationConstraint). If-Match wants the bare
# hex etag: Ceph 16 answers 412 to the quoted form that AWS documents.
# `If-None-Match: *` on PUT is atomic (exactly one of racing writers wins). curl 7.88's
# --aws-sigv4 does not add x-amz-content-sha256: send "UNSIGNED-PAYLOAD" (or the hash) yourself.
set -euo pipefail

PROG=tests/s3/rgw.sh
PACKAGES=(ceph-mon ceph-osd radosgw ceph-common curl)
START_TIMEOUT=60   # seconds from `start` until S3 must answer with the user created
STOP_WAIT=5        # seconds between SIGTERM and SIGKILL
MARKER=.tusk-rgw   # file in DIR that says DIR is ours (stop removes only such a DIR)

say() { echo "rgw: $*" >&2; }
die() { echo "rgw: error: $*" >&2; exit 1; }
usage() {
  echo "usage: $PROG install | start DIR | check DIR | stop DIR" >&2
  exit 2
}

now() { echo "${EPOCHREALTIME//[!0-9]/}"; }              # microseconds
secs_since() { local d=$(( $(now) - $1 )); printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000)); }

# ---------------------------------------------------------------------------- install
installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }

cmd_install() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  say "installing: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---------------------------------------------------------------------------- processes
set_dir() {
  [ -n "${1:-}" ] || usage
  DIR=$(realpath -m -- "$1")
  [ "$DIR" != / ] || die "refusing DIR=/"
  CONF=$DIR/ceph.conf
}

# alive PID: the process exists and is not a zombie
alive() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  [ "${s%% *}" != Z ]
}

any_alive() {
  local p
  for p in "$@"; do alive "$p" && return 0; done
  return 1
}

# ours PID: PID is a live process one of whose arguments is exactly $CONF
ours() {
  local cmd
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  alive "$1" || return 1
  cmd=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $'\n'$cmd$'\n' == *$'\n'"$CONF"$'\n'* ]]
}

# PIDs recorded in DIR/pids for the given daemon names that are still ours
recorded_pids() {
  local name pid
  for name in "$@"; do
    [ -s "$DIR/pids/$name" ] || continue
    pid=$(<"$DIR/pids/$name")
    if ours "$pid"; then echo "$pid"; fi
  done
}

# term_kill PID...: SIGTERM (only to verified PIDs), wait up to STOP_WAIT s, SIGKILL the rest
term_kill() {
  local pids=() p t
  for p in "$@"; do
    if ours "$p" && kill -TERM "$p" 2>/dev/null; then pids+=("$p"); fi
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  t=$(( $(now) + STOP_WAIT * 1000000 ))
  while any_alive "${pids[@]}" && [ "$(now)" -lt "$t" ]; do sleep 0.05; done
  any_alive "${pids[@]}" || return 0
  for p in "${pids[@]}"; do
    if ours "$p"; then
      say "pid $p did not stop within ${STOP_WAIT}s of SIGTERM: SIGKILL"
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  t=$(( $(now) + 5000000 ))
  for p in "${pids[@]}"; do
    while alive "$p" && [ "$(now)" -lt "$t" ]; do sleep 0.05; done
  done
}

# stop the daemons of DIR; extra PIDs (e.g. this shell's jobs) are verified like the recorded ones
# One after the other, each in 0.1-0.3 s: radosgw first (it can hang in shutdown once the
# mon is gone), then the OSD (it waits up to 5 s for the mon to ack its going down), the mon.
stop_daemons() {
  local name pids=()
  for name in rgw osd mon; do
    mapfile -t pids < <(recorded_pids "$name")
    term_kill "${pids[@]}"
  done
  term_kill "$@"
}

# launch NAME ARGV...: run a daemon in the foreground as a background job, record its PID.
# fd 9 (the lock on DIR) is closed for it; its stdout/stderr go to DIR/log/NAME.out.
launch() {
  local name=$1
  shift
  "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 9>&- &
  echo $! >"$DIR/pids/$name"
}

# ---------------------------------------------------------------------------- ports
# used_ports: every local TCP port in use (any state, IPv4 and IPv6), one a line
used_ports() {
  local f
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    while read -r _ addr _; do
      if [[ $addr == *:* ]]; then echo $((16#${addr##*:})); fi
    done <"$f"
  done
}

# pick_port [PORT...]: a free port below the ephemeral range (so that no client socket takes
# it meanwhile), other than the given ones
pick_port() {
  local lo=20000 hi eph used p i
  read -r eph _ </proc/sys/net/ipv4/ip_local_port_range
  hi=$((eph - 1))
  [ $((hi - lo)) -ge 1000 ] || { lo=10000; hi=19999; }
  used=" $(used_ports | tr '\n' ' ') $* "
  for i in $(seq 1 200); do
    p=$((lo + SRANDOM % (hi - lo + 1)))
    [[ $used == *" $p "* ]] || { echo "$p"; return 0; }
  done
  die "no free TCP port found in $lo-$hi"
}

# listening PORT PID: process PID listens on 127.0.0.1:PORT (or on 0.0.0.0:PORT)
listening() {
  local hex ino fds
  hex=$(printf '%04X' "$1")
  fds=$(ls -l "/proc/$2/fd" 2>/dev/null) || return 1
  for ino in $(awk -v a="0100007F:$hex" -v b="00000000:$hex" \
                 '$4 == "0A" && ($2 == a || $2 == b) { print $10 }' /proc/net/tcp); do
    [[ $fds == *"socket:[$ino]"* ]] && return 0
  done
  return 1
}

# ---------------------------------------------------------------------------- start
write_conf() {
  cat >"$CONF.tmp" <<EOF
# written by $PROG start; the whole cluster lives in $DIR
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
# radosgw defaults to ms_mon_client_mode = secure, which cannot work with auth none
ms mon client mode = crc
ms client mode = crc
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
log to stderr = false
err to stderr = false
debug ms = 0
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
mon warn on insecure global id reclaim allowed = false
# every osdmap change (osd boot, each rgw pool) otherwise waits the default 1 s
paxos propose interval = 0.05
paxos min wait = 0.01

[mon.a]
mon data = $DIR/mon
# without this a mon on a port other than 3300 binds 3300 and probes for itself forever
public addr = v2:127.0.0.1:$MON_PORT
# a taken port: fail at once (start then tries another) instead of retrying for ~10 s;
# 0 would mean no attempt at all
ms bind retry count = 1

[osd.0]
osd data = $DIR/osd
# an unknown objectstore name silently falls back to bluestore
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd memory target = 939524096
osd op num shards = 1
osd op num threads per shard = 2
osd class update on start = false

[client.rgw.a]
rgw data = $DIR/rgw
# tcp_nodelay: without it ~40% of small GETs stall ~44 ms (Nagle + delayed ACK)
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT tcp_nodelay=1
rgw thread pool size = 64
rgw init timeout = $START_TIMEOUT
rgw enable usage log = false
rgw gc obj min wait = 10
rgw gc processor period = 10
debug rgw = 1
EOF
  mv "$CONF.tmp" "$CONF"
}

START_OK=0
START_T0=0
on_start_exit() {
  local rc=$?
  [ "$START_OK" = 1 ] && return 0
  trap - EXIT INT TERM
  set +e
  echo "rgw: start of $DIR FAILED after $(secs_since "$START_T0") s; stopping what it started" >&2
  local f
  for f in "$DIR"/log/*; do
    [ -s "$f" ] || continue
    echo "==> $f (last lines)" >&2
    tail -n 12 "$f" >&2
  done
  # this shell's jobs too: a daemon whose PID was not yet recorded is one of them
  stop_daemons $(jobs -p)
  echo "rgw: the logs are kept in $DIR/log; '$PROG stop $DIR' removes $DIR" >&2
  exit $((rc == 0 ? 1 : rc))
}

# bounded CMD...: run CMD bounded by what is left of the start deadline
# (--foreground: so that Ctrl-C reaches CMD too)
remaining() {
  local s=$(( (START_DEADLINE - $(now)) / 1000000 + 1 ))
  echo $((s < 1 ? 1 : s))
}
bounded() { timeout --foreground --kill-after=2 "$(remaining)" "$@"; }
left() { [ "$(now)" -lt "$START_DEADLINE" ]; }

# guarded OUT ERR CMD...: run CMD (stdout to OUT, stderr to ERR) bounded by the deadline,
# and fail at once should a daemon started so far exit meanwhile (a client would otherwise
# wait for it until the deadline)
guarded() {
  local out=$1 err=$2
  shift 2
  # (timeout itself, not a function, so that $! is the process that owns CMD)
  timeout --foreground --kill-after=2 "$(remaining)" "$@" >"$out" 2>"$err" &
  local job=$! name pid
  while alive "$job"; do
    for name in mon osd rgw; do
      [ -s "$DIR/pids/$name" ] || continue
      pid=$(<"$DIR/pids/$name")
      if ! alive "$pid"; then
        kill -TERM "$job" 2>/dev/null || true
        wait "$job" 2>/dev/null || true
        die "$(daemon_exited "$name")"
      fi
    done
    sleep 0.05
  done
  wait "$job"
}
daemon_exited() {
  case $1 in
    mon) echo "ceph-mon exited (see $DIR/log/mon.a.log)" ;;
    osd) echo "ceph-osd exited (see $DIR/log/osd.0.log)" ;;
    rgw) echo "radosgw exited (see $DIR/log/client.rgw.a.log)" ;;
  esac
}

# set_aside ATTEMPT LOG...: keep the logs of a failed attempt as LOG.ATTEMPT-1
set_aside() {
  local a=$1 f
  shift
  [ "$a" -gt 1 ] || return 0
  for f in "$@"; do
    if [ -e "$DIR/log/$f" ]; then mv "$DIR/log/$f" "$DIR/log/$f.$((a - 1))"; fi
  done
}

# drop_watchers: a radosgw that exited (on a port clash) leaves its watches on the
# control objects, and until they time out (30 s) every metadata change (a user, a bucket)
# waits for it: blocklist its address so that the OSD drops them at once
drop_watchers() {
  local o a addrs=()
  for o in $(bounded rados -c "$CONF" -p default.rgw.control ls 2>/dev/null); do
    for a in $(bounded rados -c "$CONF" -p default.rgw.control listwatchers "$o" 2>/dev/null |
               sed -n 's/^watcher=\([^ ]*\) .*/\1/p'); do
      [[ " ${addrs[*]} " == *" $a "* ]] || addrs+=("$a")
    done
  done
  for a in "${addrs[@]}"; do
    bounded ceph -c "$CONF" osd blocklist add "$a" >>"$DIR/log/blocklist.out" 2>&1 || true
  done
}

# bind_failed FILE...: the daemon's logs say that it could not bind its port
bind_failed() { grep -qsiE 'address already in use|EADDRINUSE|failed to bind' "$@"; }

cmd_start() {
  set_dir "${1:-}"
  [[ ${RGW_MEMSTORE_BYTES:-} =~ ^[0-9]*$ ]] || die "RGW_MEMSTORE_BYTES must be a number of bytes"
  MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-2147483648}
  cmd_install

  # take DIR: refuse a running cluster, or a DIR of someone else's files
  if [ -e "$DIR" ] && [ ! -e "$DIR/$MARKER" ]; then
    [ -d "$DIR" ] && [ -z "$(ls -A "$DIR")" ] ||
      die "$DIR exists and is not a cluster directory of $PROG; choose a new DIR"
  fi
  mkdir -p "$DIR"
  exec 9>>"$DIR/$MARKER"
  flock -n 9 || die "$DIR: another '$PROG start/stop' is working on it"
  local running
  running=$(recorded_pids mon osd rgw | paste -sd ' ')
  [ -z "$running" ] ||
    die "a cluster is already running in $DIR (pids $running); run '$PROG stop $DIR' first"
  # leftovers of a stopped or failed cluster: start afresh (the marker holds the lock)
  find "$DIR" -mindepth 1 -maxdepth 1 ! -name "$MARKER" -exec rm -rf {} +
  mkdir -p "$DIR"/{mon,osd,rgw,log,run,pids}

  START_T0=$(now)
  START_DEADLINE=$((START_T0 + START_TIMEOUT * 1000000))
  trap on_start_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  FSID=$(cat /proc/sys/kernel/random/uuid)
  local ACCESS SECRET attempt pid
  ACCESS=TUSK$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)
  SECRET=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')

  # --- monitor. Ports are picked at random among free ones; should another process take
  #     the same port meanwhile, the daemon fails to bind and we try another port.
  S3_PORT=0
  for attempt in 1 2 3; do
    MON_PORT=$(pick_port)
    write_conf
    rm -rf "$DIR/mon" && mkdir "$DIR/mon"
    set_aside "$attempt" mon.a.log mon.out
    bounded ceph-mon -c "$CONF" -i a --mkfs --keyring /dev/null >"$DIR/log/mkfs-mon.out" 2>&1 ||
      die "ceph-mon --mkfs failed (see $DIR/log/mkfs-mon.out)"
    launch mon ceph-mon -f -c "$CONF" -i a
    pid=$(<"$DIR/pids/mon")
    while alive "$pid" && ! listening "$MON_PORT" "$pid" && left; do sleep 0.02; done
    alive "$pid" && listening "$MON_PORT" "$pid" && break
    left || die "the mon did not listen on port $MON_PORT within ${START_TIMEOUT}s"
    if [ "$attempt" -lt 3 ] && bind_failed "$DIR/log/mon.a.log" "$DIR/log/mon.out"; then
      say "mon port $MON_PORT was taken; trying another"
      continue
    fi
    die "$(daemon_exited mon)"
  done
  say "mon up on port $MON_PORT ($(secs_since "$START_T0") s)"

  # --- OSD ('osd create' waits for the mon; the python ceph CLI is slow to start: once only)
  local osd_id
  guarded "$DIR/log/osd-create.out" "$DIR/log/osd-create.err" \
    ceph -c "$CONF" --connect-timeout "$START_TIMEOUT" osd create ||
    die "'ceph osd create' failed (see $DIR/log/osd-create.err)"
  osd_id=$(<"$DIR/log/osd-create.out")
  [ "$osd_id" = 0 ] || die "'ceph osd create' gave id '$osd_id', expected 0"
  guarded "$DIR/log/mkfs-osd.out" "$DIR/log/mkfs-osd.err" ceph-osd -c "$CONF" -i 0 --mkfs ||
    die "ceph-osd --mkfs failed (see $DIR/log/mkfs-osd.err)"
  launch osd ceph-osd -f -c "$CONF" -i 0
  say "osd started ($(secs_since "$START_T0") s)"

  # --- the S3 user, before radosgw runs: radosgw-admin creates the zone and the pools
  #     itself, and a user created while a radosgw that died uncleanly (a port clash below)
  #     still holds its watches would wait ~30 s for them to time out
  guarded "$DIR/log/user-create.out" "$DIR/log/user-create.err" \
    radosgw-admin -c "$CONF" -n client.admin user create --uid=tusk-test \
    --display-name="tusk tests" --access-key="$ACCESS" --secret-key="$SECRET" ||
    die "radosgw-admin user create failed (see $DIR/log/user-create.err)"
  say "user created ($(secs_since "$START_T0") s)"

  # --- radosgw: binds the S3 port once initialised
  local mon_pid osd_pid rgw_pid
  mon_pid=$(<"$DIR/pids/mon")
  osd_pid=$(<"$DIR/pids/osd")
  for attempt in 1 2 3; do
    S3_PORT=$(pick_port "$MON_PORT")
    write_conf
    set_aside "$attempt" client.rgw.a.log rgw.out
    [ "$attempt" -eq 1 ] || drop_watchers
    launch rgw radosgw -f -c "$CONF" -n client.rgw.a
    rgw_pid=$(<"$DIR/pids/rgw")
    # its own socket on the port (not some other server's that took the port meanwhile)
    while alive "$rgw_pid" && ! listening "$S3_PORT" "$rgw_pid" && left; do
      alive "$mon_pid" || die "$(daemon_exited mon)"
      alive "$osd_pid" || die "$(daemon_exited osd)"
      sleep 0.05
    done
    if alive "$rgw_pid" && listening "$S3_PORT" "$rgw_pid"; then
      while ! curl -s -o /dev/null -m 2 "http://127.0.0.1:$S3_PORT/" && alive "$rgw_pid" && left; do
        sleep 0.05
      done
      alive "$rgw_pid" && curl -s -o /dev/null -m 2 "http://127.0.0.1:$S3_PORT/" && break
    fi
    left || die "S3 did not answer on port $S3_PORT within ${START_TIMEOUT}s"
    if [ "$attempt" -lt 3 ] && bind_failed "$DIR/log/client.rgw.a.log" "$DIR/log/rgw.out"; then
      say "S3 port $S3_PORT was taken; trying another"
      continue
    fi
    die "$(daemon_exited rgw)"
  done

  {
    echo "# S3 test server of $PROG; stop it with: $PROG stop $DIR"
    printf 'export TUSK_TEST_S3_ENDPOINT=%q\n' "http://127.0.0.1:$S3_PORT"
    printf 'export TUSK_TEST_S3_REGION=%q\n' us-east-1
    printf 'export AWS_ACCESS_KEY_ID=%q\n' "$ACCESS"
    printf 'export AWS_SECRET_ACCESS_KEY=%q\n' "$SECRET"
    printf 'export TUSK_TEST_S3_DIR=%q\n' "$DIR"
  } >"$DIR/env.tmp"
  mv "$DIR/env.tmp" "$DIR/env"
  START_OK=1
  trap - EXIT INT TERM
  say "ready in $(secs_since "$START_T0") s: S3 on http://127.0.0.1:$S3_PORT (mon $MON_PORT)"
  echo "$DIR/env"
}

# ---------------------------------------------------------------------------- stop
cmd_stop() {
  set_dir "${1:-}"
  if [ ! -e "$DIR" ]; then
    say "nothing to stop: $DIR does not exist"
    return 0
  fi
  if [ ! -e "$DIR/$MARKER" ]; then
    if [ -d "$DIR" ] && [ -z "$(ls -A "$DIR")" ]; then rmdir "$DIR"; return 0; fi
    die "$DIR is not a cluster directory of $PROG (no $MARKER); not touching it"
  fi
  exec 9>>"$DIR/$MARKER"
  # a start in progress on DIR ends (or fails and cleans up) within its deadline
  flock -w $((START_TIMEOUT + 30)) 9 || die "$DIR: another '$PROG start/stop' holds it"
  local t0 n
  t0=$(now)
  n=$(recorded_pids rgw osd mon | wc -l)
  stop_daemons
  n=$((n - $(recorded_pids rgw osd mon | wc -l)))
  [ -z "$(recorded_pids rgw osd mon)" ] || die "could not stop the daemons of $DIR"
  rm -rf "$DIR"
  say "stopped $n daemon(s) in $(secs_since "$t0") s; removed $DIR"
}

# ---------------------------------------------------------------------------- check
CHECK_PASS=0
CHECK_FAIL=0
ok() { CHECK_PASS=$((CHECK_PASS + 1)); echo "ok    $*"; }
bad() { CHECK_FAIL=$((CHECK_FAIL + 1)); echo "FAIL  $*"; }
# expect NAME WANT GOT [DETAIL]
expect() { if [ "$3" = "$2" ]; then ok "$1"; else bad "$1: got ${3:-nothing}, want $2${4:+ ($4)}"; fi; }

# s3 METHOD PATH [curl args...]: signed request; body to $T/body, headers to $T/hdr;
# prints the HTTP status
s3() {
  local method=$1 path=$2
  shift 2
  local m=(-X "$method")
  [ "$method" = HEAD ] && m=(--head)
  curl -sS -m 30 "${m[@]}" --aws-sigv4 "aws:amz:$TUSK_TEST_S3_REGION:s3" \
    --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    -o "$T/body" -D "$T/hdr" -w '%{http_code}' "$@" "$TUSK_TEST_S3_ENDPOINT$path" || true
}
header() { sed -n "s/^$1: *//Ip" "$T/hdr" | tr -d '\r' | tail -n 1; }

cmd_check() {
  set_dir "${1:-}"
  [ -r "$DIR/env" ] || die "no $DIR/env: is a cluster running there? ('$PROG start $DIR')"
  # shellcheck disable=SC1091
  . "$DIR/env"
  [ -n "$(recorded_pids rgw)" ] || die "the radosgw of $DIR is not running"
  T=$(mktemp -d)
  trap 'rm -rf "$T"' EXIT
  local b=tusk-check-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n') c etag i n
  echo "checking $TUSK_TEST_S3_ENDPOINT (bucket $b)"

  expect "create bucket" 200 "$(s3 PUT "/$b")"
  printf '0123456789abcdef' >"$T/obj"
  c=$(s3 PUT "/$b/d/obj" -T "$T/obj")
  etag=$(header etag | tr -d '"')
  expect "PUT object" 200 "$c"
  [ "$etag" = "$(md5sum <"$T/obj" | cut -d' ' -f1)" ] && ok "PUT etag is the MD5 of the body" ||
    bad "PUT etag '$etag' is not the MD5 of the body"
  c=$(s3 GET "/$b/d/obj")
  expect "GET object" "200 0123456789abcdef" "$c $(cat "$T/body")"
  c=$(s3 HEAD "/$b/d/obj")
  expect "HEAD object" "200 16 $etag" "$c $(header content-length) $(header etag | tr -d '"')"
  c=$(s3 GET "/$b/d/obj" -H 'Range: bytes=2-5')
  expect "range GET bytes=2-5" "206 2345" "$c $(cat "$T/body")"
  printf 'x' >"$T/one"
  s3 PUT "/$b/other" -T "$T/one" >/dev/null
  c=$(s3 GET "/$b?list-type=2&prefix=d%2F")
  n=$(grep -o '<Key>[^<]*</Key>' "$T/body" | tr '\n' ' ' || true)
  expect "ListObjectsV2 prefix=d/" "200 <Key>d/obj</Key> " "$c $n"

  # conditional writes
  expect "PUT If-None-Match: * on an existing key" 412 "$(s3 PUT "/$b/d/obj" -T "$T/one" -H 'If-None-Match: *')"
  expect "PUT If-None-Match: * on a new key" 200 "$(s3 PUT "/$b/new" -T "$T/one" -H 'If-None-Match: *')"
  expect "PUT If-Match: right etag" 200 "$(s3 PUT "/$b/d/obj" -T "$T/obj" -H "If-Match: $etag")"
  expect "PUT If-Match: wrong etag" 412 \
    "$(s3 PUT "/$b/d/obj" -T "$T/obj" -H 'If-Match: 0123456789abcdef0123456789abcdef')"
  c=$(s3 PUT "/$b/d/obj" -T "$T/obj" -H "If-Match: \"$etag\"")
  echo "note  PUT If-Match with the quoted etag answers $c (Ceph 16: 412, it wants the bare etag)"

  # 8 writers race with If-None-Match: * on one new key; exactly one must win
  for i in 1 2 3 4 5 6 7 8; do
    printf 'writer %d' "$i" >"$T/race.$i"
    (T=$T/r$i; mkdir "$T"; s3 PUT "/$b/race" -T "${T%/*}/race.$i" -H 'If-None-Match: *' >"$T.code") &
  done
  wait
  local wins=0 losers=0 winner=
  for i in 1 2 3 4 5 6 7 8; do
    case $(<"$T/r$i.code") in
      200) wins=$((wins + 1)); winner=$i ;;
      412) losers=$((losers + 1)) ;;
    esac
  done
  expect "8-way If-None-Match: * race: winners, losers(412)" "1 7" "$wins $losers" \
    "codes: $(cat "$T"/r?.code | tr '\n' ' ')"
  c=$(s3 GET "/$b/race")
  expect "the race's object is the winner's" "200 writer $winner" "$c $(cat "$T/body")"

  expect "DELETE object" 204 "$(s3 DELETE "/$b/d/obj")"
  expect "GET deleted object" 404 "$(s3 GET "/$b/d/obj")"
  for n in other new race; do s3 DELETE "/$b/$n" >/dev/null; done
  expect "delete bucket" 204 "$(s3 DELETE "/$b")"

  echo "rgw-check: $CHECK_PASS passed, $CHECK_FAIL failed"
  [ "$CHECK_FAIL" -eq 0 ]
}

# ---------------------------------------------------------------------------- main
case "${1:-}" in
  install) [ $# -eq 1 ] || usage; cmd_install ;;
  start) [ $# -eq 2 ] || usage; cmd_start "$2" ;;
  stop) [ $# -eq 2 ] || usage; cmd_stop "$2" ;;
  check) [ $# -eq 2 ] || usage; cmd_check "$2" ;;
  *) usage ;;
esac
