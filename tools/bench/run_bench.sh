#!/bin/bash
# The cost of recording reads: the same reads through a plain one-version mount and inside
# `tusk run`, whose view sends every open to its server and records the read set
# (measurement only, not in CI).
#
#   tools/bench/run_bench.sh                                         # SMALL_N=20000 LARGE_N=4 LARGE_MB=256 RUNS=3
#   SMALL_N=300 LARGE_N=1 LARGE_MB=8 RUNS=1 tools/bench/run_bench.sh # smoke test, < 1 min
#   READSET_N=1000000 tools/bench/run_bench.sh                       # + a run reading a million files
#
# Datasets (generated once, reused: $BENCH_ROOT/data): small = SMALL_N files of 1-8 KiB in
# 100 directories; large = LARGE_N files of LARGE_MB MiB; random bytes from SEED.  Both are
# imported into one store (datasets small and large, tag v1).  Rows (see README.md,
# "run_bench.sh"), each with 1 and with 4 reader worker processes:
#   1  small files: list every directory, read every file whole
#   2  large sequential: read every file whole in 1 MiB reads
#      (a) plain: a fresh `tusk mount DS@v1 MNT` per step, the reader on MNT;
#      (b) run:   `tusk run --in data=DS@v1 -- reader`, the reader on $TUSK_IN_data.
#      The reader times itself (time.monotonic around the listing and the reads), so both
#      columns measure the same thing; `tusk run`'s whole wall (setup, storing the record) is
#      a row of its own.  Also: files_read of `tusk show run:ID --json` (must equal the
#      files read) and the store's growth (du -sb) from each run.
#   3  READSET_N > 0: `tusk run` reading every file of a tree of READSET_N tiny files
#      (million_bench.sh's tree; reused from there when present) with 4 workers: whole wall,
#      time from the reader's end to the run recorded (tusk run's "recorded" line) and to
#      tusk run's exit (after the views' unmount), store growth.
# Plain and run steps alternate within each round (odd rounds plain first, even rounds run
# first).  Every timed step starts with `sync; echo 3 > /proc/sys/vm/drop_caches`.
# Targets: reader's wall in the run within 1.10x of plain for small files, within 1.05x for
# large; READSET: read set stored in under 64 MiB, reader's end -> run recorded and -> tusk run's
# exit under 5 s;
# each PASS/FAIL.  The report (markdown: medians, min-max, run/plain) goes to stdout and to
# $BENCH_ROOT/results/<timestamp>-run/results.md.  Needs root and /dev/fuse.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

SMALL_N=${SMALL_N:-20000}
LARGE_N=${LARGE_N:-4}
LARGE_MB=${LARGE_MB:-256}
READSET_N=${READSET_N:-0}
READSET_EVERY=${READSET_EVERY:-1}   # row 3 reads every READSET_EVERY-th file (2: half of them)
RUNS=${RUNS:-3}
SEED=${SEED:-42}
# absolute and without symlinks: leftover processes are found by "$BENCH_ROOT/" in their argv
BENCH_ROOT=$(realpath -m "${BENCH_ROOT:-/tmp/tusk-runbench}")
MILLION_DATA=$(realpath -m "${MILLION_DATA:-/tmp/tusk-millionbench/data}")
TUSK_BIN=${TUSK_BIN:-$REPO/build/tusk}
[[ $TUSK_BIN == */* ]] && TUSK_BIN=$(realpath -m "$TUSK_BIN")
TUSK_INIT_ARGS=${TUSK_INIT_ARGS:-}
TUSK_MOUNT_TIMEOUT=${TUSK_MOUNT_TIMEOUT:-120}
STEP_TIMEOUT=${STEP_TIMEOUT:-7200}
KEEP=${KEEP:-0}
ALLOW_ANY_FS=${ALLOW_ANY_FS:-0}
PY=${PY:-/usr/bin/python3}
CMDLINE="SMALL_N=$SMALL_N LARGE_N=$LARGE_N LARGE_MB=$LARGE_MB READSET_N=$READSET_N RUNS=$RUNS SEED=$SEED BENCH_ROOT=$BENCH_ROOT TUSK_BIN=$TUSK_BIN${TUSK_INIT_ARGS:+ TUSK_INIT_ARGS='$TUSK_INIT_ARGS'} KEEP=$KEEP $0${*:+ $*}"
read -r -a INIT_ARGS <<<"$TUSK_INIT_ARGS"
WORKERS=(1 4)                   # reader worker processes, rows 1-2
READSET_WORKERS=4               # row 3

STORES=$BENCH_ROOT/stores       # this run's stores (deleted on exit unless KEEP=1)
ST=$STORES/run                  # rows 1-2: datasets small and large, tag v1 on each
RST=$STORES/readset             # row 3: dataset r, tag v1
NATIVE=$BENCH_ROOT/native       # unused here (bench_cleanup and check_fs delete it)
MNT=$BENCH_ROOT/mnt
MNT_PLAIN=$MNT/plain            # the one-version mount of the plain steps
OUT=''
TESTPID=''                      # the running step (leader of its own process group)

. "$HERE/lib/basics.sh"   # die, log, ensure_packages, take_lock, check_fs, check_free, copy_tusk_bin, bench_info
tk() { "$TUSK_BIN" --store "$ST" "$@"; }

# ---------------------------------------------------------------- arguments, layout
[[ $EUID -eq 0 ]] || die "must run as root (drop_caches, FUSE mounts)"
[[ $SMALL_N =~ ^[1-9][0-9]*$ ]] || die "SMALL_N must be a positive integer, got '$SMALL_N'"
[[ $LARGE_N =~ ^[1-9][0-9]*$ ]] || die "LARGE_N must be a positive integer, got '$LARGE_N'"
[[ $LARGE_MB =~ ^[1-9][0-9]*$ ]] || die "LARGE_MB must be a positive integer (MiB), got '$LARGE_MB'"
[[ $READSET_N =~ ^[0-9]+$ ]] && { ((READSET_N == 0)) || ((READSET_N >= 100)); } \
  || die "READSET_N must be 0 (skip row 3) or an integer >= 100, got '$READSET_N'"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ $SEED =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, got '$SEED'"
[[ $KEEP == 0 || $KEEP == 1 ]] || die "KEEP must be 0 or 1, got '$KEEP'"
for v in TUSK_MOUNT_TIMEOUT STEP_TIMEOUT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (seconds), got '${!v}'"
done
[[ -c /dev/fuse ]] || die "/dev/fuse is missing (FUSE mounts impossible here)"
SMALL_DIRS=$((SMALL_N < 100 ? SMALL_N : 100))
SMALL_DATA=$BENCH_ROOT/data/small-n$SMALL_N-seed$SEED        # + .manifest.json beside it when complete
LARGE_DATA=$BENCH_ROOT/data/large-n$LARGE_N-m$LARGE_MB-seed$SEED
# row 3: million_bench.sh's layout (N/10 files in big/, the others in dirs of ~900)
R_BIG=$((READSET_N / 10))
R_SMALL=$((READSET_N - R_BIG))
R_DIRS=$(((R_SMALL + 450) / 900)); ((R_DIRS >= 1)) || R_DIRS=1
READSET_DATA=''                 # the tree used (ours, or million_bench.sh's)
if ((READSET_N > 0)); then
  for d in "$BENCH_ROOT/data/n$READSET_N-seed$SEED" "$MILLION_DATA/n$READSET_N-seed$SEED"; do
    if [[ -f $d.manifest.json && -d $d ]]; then READSET_DATA=$d; break; fi
  done
  [[ -n $READSET_DATA ]] || READSET_DATA=$BENCH_ROOT/data/n$READSET_N-seed$SEED   # generated here
fi

# ---------------------------------------------------------------- packages, binary, lock
ensure_packages fuse3 python3 jq coreutils findutils
[[ -x $PY ]] || die "python interpreter $PY not found (set PY)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "$PY is older than Python 3.9 (random.randbytes)"
[[ -x $TUSK_BIN ]] && "$TUSK_BIN" --help >/dev/null 2>&1 \
  || die "$TUSK_BIN missing or \`tusk --help\` fails (build it, or set TUSK_BIN)"
"$TUSK_BIN" run --help >/dev/null 2>&1 || die "$TUSK_BIN has no \`tusk run\` (build a newer tusk, or set TUSK_BIN)"

take_lock

# ---------------------------------------------------------------- cleanup (runs, mounts, daemons, stores)
. "$HERE/lib/mounts.sh"   # mounts_under, daemon_pids, umount_all, stop_group, bench_cleanup, run_group, wait_daemon, wait_unmounted
# ours_pids: our processes, by their argv: our copy of the binary ($BENCH_ROOT/bin/tusk: `tusk
# run`, mount daemons), the reader and its workers, the helper ($BENCH_ROOT/results/*/runreader.py,
# runbench.py).  A run's mounts live in its private mount namespace, invisible to umount_all:
# they go when its processes do.  Reads /proc only, never stat()s a mount point.
ours_pids() {
  local f pid a args
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    [[ $pid != "$$" && $pid != "$BASHPID" && $pid != "$PPID" ]] || continue
    mapfile -d '' -t args 2>/dev/null <"$f" || continue
    for a in "${args[@]}"; do
      if [[ $a == "$BENCH_ROOT/bin/tusk" || $a == "$BENCH_ROOT/results/"*/runreader.py \
            || $a == "$BENCH_ROOT/results/"*/runbench.py ]]; then echo "$pid"; break; fi
    done
  done
  return 0
}
# stop_ours: TERM them (`tusk run` passes TERM on to its command, waits for it and records
# the run), KILL what is left 10 s later
stop_ours() {
  local pids pid _i left
  pids=$(ours_pids)
  [[ -n $pids ]] || return 0
  for pid in $pids; do
    log "stopping leftover pid $pid: $(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | cut -c1-160 | grep . || echo '(exiting)')"
    kill -TERM "$pid" 2>/dev/null
  done
  for _i in $(seq 100); do
    left=''
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && left+=" $pid"; done
    [[ -n $left ]] || break
    sleep 0.1
  done
  if [[ -n $left ]]; then
    log "still running after 10 s: KILL$left"
    for pid in $left; do kill -KILL "$pid" 2>/dev/null; done
    sleep 0.2
  fi
  return 0
}
cleanup() {
  local rc=$?
  set +e
  trap - INT TERM
  stop_group "$TESTPID" 10 "the running step"
  stop_ours
  bench_cleanup "$rc" "the running step" "stores kept" "$KEEP"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
stop_ours               # leftovers of an earlier run that was killed hard
umount_all

# ---------------------------------------------------------------- file system, free space
check_fs        # sets FSTYPE; removes the last run's $NATIVE and $STORES
have() { [[ -f $1.manifest.json && -d $1 ]] && echo 1 || echo 0; }
# Estimates (ext4, 4 KiB blocks): small files 8 KiB each on disk (tree) + 6 KiB (store);
# large files their size twice (tree + store: random data does not compress); the READSET
# tree 4.2 KiB a file, its store 3.5 KiB a file (million_bench.sh's figures); + 1 GiB.
need_mib=$(awk -v sn="$SMALL_N" -v ln="$LARGE_N" -v lm="$LARGE_MB" -v rn="$READSET_N" \
  -v hs="$(have "$SMALL_DATA")" -v hl="$(have "$LARGE_DATA")" \
  -v hr="$( ((READSET_N > 0)) && have "$READSET_DATA" || echo 1)" \
  'BEGIN { printf "%d\n", ((1 - hs) * 8 + 6) * sn / 1024 + (2 - hl) * ln * lm + rn * ((1 - hr) * 4.2 + 3.5) / 1024 + 1024 }')
# Inodes: one per file of a tree still to generate; a store holds packs (32 MiB each), not files.
need_inodes=$(( (1 - $(have "$SMALL_DATA")) * SMALL_N + 10000 ))
((READSET_N > 0)) && need_inodes=$(( need_inodes + (1 - $(have "$READSET_DATA")) * READSET_N ))
check_free "$need_mib" "$need_inodes" "SMALL_N=$SMALL_N LARGE_N=$LARGE_N LARGE_MB=$LARGE_MB READSET_N=$READSET_N" \
  "lower the sizes"   # sets avail_mib

OUT=$BENCH_ROOT/results/$(date +%Y%m%d-%H%M%S)-run
mkdir -p "$OUT/runs" "$BENCH_ROOT/data" "$STORES" "$MNT_PLAIN" "$BENCH_ROOT/bin"
T0=$SECONDS
# every command runs in the results directory: `tusk run` would otherwise record the git
# checkout it is started in (git rev-parse, status, diff: not the cost measured here)
cd "$OUT"

copy_tusk_bin   # sets TUSK_ORIG, TUSK_BIN (the copy), tusk_version

# ---------------------------------------------------------------- the reader (run by both sides)
RR=$OUT/runreader.py
cat >"$RR" <<'PYEOF'
#!/usr/bin/env python3
"""Reader of tools/bench/run_bench.sh (written by it into each results directory).

  runreader.py [--workers W] [--batch B] DIR

Lists every directory under DIR (in this process, sorted), then reads every file whole, in
1 MiB reads (unbuffered readinto), in W worker processes (multiprocessing, fork), handed out
in batches of B files (default: up to 32, at least 4 batches per worker), as the workers of
a torch.utils.data.DataLoader load samples.  DIR may be "$TUSK_IN_data": the reader expands
it.  Prints one line:

  runbench-read: wall_s= files= bytes= dirs= workers= cpu_s= t_begin= t0= t1= t_end=

wall_s = t1 - t0, its own wall from before the listing to the last byte read (the workers
are started before t0); cpu_s = user+sys of it and its workers; t_begin, t_end = its first
and last line; all times time.monotonic() (CLOCK_MONOTONIC: comparable across processes).
Stdlib only.
"""
import time

T_BEGIN = time.monotonic()
import argparse, multiprocessing, os, resource, sys

BLOCK = 1 << 20


def read_batch(paths):
    buf = bytearray(BLOCK)
    mv = memoryview(buf)
    nbytes = 0
    for p in paths:
        with open(p, 'rb', buffering=0) as f:
            while True:
                k = f.readinto(mv)
                if not k:
                    break
                nbytes += k
    return len(paths), nbytes


def main():
    ap = argparse.ArgumentParser(prog='runreader.py')
    ap.add_argument('--workers', type=int, default=1)
    ap.add_argument('--batch', type=int, default=0)
    ap.add_argument('--every', type=int, default=1)
    ap.add_argument('dir')
    a = ap.parse_args()
    root = os.path.expandvars(a.dir)
    if '$' in root:
        sys.exit('runreader.py: %s is not set' % a.dir)
    pool = multiprocessing.get_context('fork').Pool(a.workers)
    t0 = time.monotonic()
    files, dirs, stack = [], 0, [root]
    while stack:
        d = stack.pop()
        dirs += 1
        with os.scandir(d) as it:
            entries = sorted(it, key=lambda e: e.name)
        sub = []
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                sub.append(e.path)
            elif e.is_file(follow_symlinks=False):
                files.append(e.path)
        stack.extend(reversed(sub))
    files = files[::max(1, a.every)]
    batch = a.batch or max(1, min(32, len(files) // (4 * a.workers)))
    nfiles = nbytes = 0
    for k, b in pool.imap_unordered(read_batch, [files[i:i + batch] for i in range(0, len(files), batch)]):
        nfiles += k
        nbytes += b
    t1 = time.monotonic()
    pool.close()
    pool.join()
    cpu = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        cpu += ru.ru_utime + ru.ru_stime
    t_end = time.monotonic()
    print('runbench-read: wall_s=%.6f files=%d bytes=%d dirs=%d workers=%d cpu_s=%.3f t_begin=%.6f t0=%.6f '
          't1=%.6f t_end=%.6f' % (t1 - t0, nfiles, nbytes, dirs, a.workers, cpu, T_BEGIN, t0, t1, t_end), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
PYEOF

# ---------------------------------------------------------------- the python helper (timing, data, report)
# lib/benchutil.py (shared with million_bench.sh and workspace_bench.sh) is copied beside it:
# the results directory re-renders its report on its own
RB=$OUT/runbench.py
cp "$HERE/lib/benchutil.py" "$OUT/benchutil.py"
cat >"$RB" <<'PYEOF'
#!/usr/bin/env python3
"""Helper of tools/bench/run_bench.sh (written by it into each results directory, beside
its copy of tools/bench/lib/benchutil.py and the reader, runreader.py).

  time --out F --label L --peer P --round R [--pid PID] [--cold] [--timeout S] [--log FILE] -- CMD...
        run CMD once (after sync + drop_caches if --cold), in its own process group (TERM,
        then KILL 5 s later, after S seconds: rc 124); append a JSON record: wall and CPU of
        CMD's process tree, daemon CPU of PID during it, rc, the output's last line; when the
        output holds the reader's "runbench-read:" line also its figures (r_*), the time from
        CMD's start to the reader's first line (pre_s) and from the reader's end to CMD's exit
        (post_s), CMD's own CPU (server_cpu_s: the tree's minus the reader's), and the run's
        id when the output says "run:ID recorded"
  gen-small DIR N DIRS SEED       N files of 1-8 KiB of random bytes in DIRS directories
  gen-large DIR N MIB SEED        N files of MIB MiB of random bytes
  gen-tree DIR N BIG DIRS SEED    million_bench.sh's tree (same layout, same bytes)
  field RESULTS KEY...            the KEYs of the latest timed record (space-separated)
  record --out F --label L --peer P --round R --value V
  report OUTDIR                   the markdown table (OUTDIR/params.json, results.jsonl)
MiB = 2^20 bytes, MB = 10^6.
"""
import json, os, random, re, signal, statistics, subprocess, sys, tempfile, threading, time

sys.dont_write_bytecode = True                                   # no __pycache__ in the results directory
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # benchutil.py is beside this file
from benchutil import (Records, add_daemon_cpu, append, cell, drop_caches, fmt_num, fmt_s, last_timed, load_run,
                       log_command, main, parse_time, proc_cpu, ratio, ratio_v, run_group, status_lines, time_record)

SMALL_TARGET = 1.10
LARGE_TARGET = 1.05
READSET_STORE_MIB = 64
READSET_POST_S = 5.0


def reader_figures(lines):
    for l in reversed(lines):
        if l.startswith('runbench-read: '):
            out = {}
            for kv in l.split()[1:]:
                k, _, v = kv.partition('=')
                out[k] = float(v) if '.' in v else int(v)
            return out
    return None


def cmd_time(argv):
    a, cmd = parse_time(argv, ('--timeout', dict(type=float, default=7200)))
    if a.cold:
        drop_caches()
    # Output to a file, not a pipe: `tusk mount` leaves a daemon behind that must not hold
    # our pipe open.  Own process group: a timeout or our TERM stops the whole command.
    tmp = tempfile.TemporaryFile()
    d0 = proc_cpu(a.pid)

    def on_signal(sig, t0):
        if a.log:   # what the stopped command said (no record: its figures are not complete)
            time.sleep(0.2)
            tmp.seek(0)
            with open(a.log, 'a') as f:
                f.write('== %s %s r%d stopped by signal %d after %.1f s: %s\n%s\n' % (
                    a.peer, a.label, a.round, sig, time.monotonic() - t0, ' '.join(cmd)[:300],
                    tmp.read().decode(errors='replace')[-20000:]))

    # When tusk run says the run is recorded (or its output committed): its record is durable
    # then, while the views' unmount may still be going on.  Watched in the output as it grows.
    seen, stop = {}, threading.Event()

    def watch():
        while not stop.is_set():
            try:
                with open('/proc/self/fd/%d' % tmp.fileno(), 'rb') as f:
                    data = f.read()
            except OSError:
                data = b''
            if re.search(rb'\brun:[0-9a-f]{6,} (recorded|committed)', data):
                seen['t'] = time.monotonic()
                return
            stop.wait(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0, t1, rc, ru, timed_out = run_group(cmd, a.timeout, tmp, subprocess.STDOUT, grace=5.0, on_signal=on_signal)
    stop.set()
    watcher.join()
    d1 = proc_cpu(a.pid)
    tmp.seek(0)
    text = tmp.read().decode(errors='replace')
    lines = [l for l in text.splitlines() if l.strip()]
    rec = time_record(a, cmd, t0, t1, ru, rc, lines)
    add_daemon_cpu(rec, d0, d1)
    r = reader_figures(lines)
    if r:
        for k, v in r.items():
            rec['r_' + k] = v
        rec['pre_s'] = round(r['t_begin'] - t0, 6)
        rec['post_s'] = round(t1 - r['t_end'], 6)
        if 't' in seen:
            rec['recorded_s'] = round(seen['t'] - r['t_end'], 6)
        rec['server_cpu_s'] = round(rec['cpu_s'] - r['cpu_s'], 3)
    m = re.search(r'\brun:([0-9a-f]{6,}) recorded', text)
    if m:
        rec['run_id'] = m.group(1)
    errs = [l for l in lines if 'error' in l.lower()]
    if rc != 0 and errs:
        rec['err'] = errs[0][:300]
    if a.log:
        log_command(a.log, rec, text[-20000:])
    append(a.out, rec)
    extra = ''
    if r:
        extra = ' reader=%.4fs pre=%.3fs post=%.3fs files=%d' % (r['wall_s'], rec['pre_s'], rec['post_s'], r['files'])
    print('  %-5s %-16s r%d wall=%.4fs%s%s rc=%d%s' % (
        rec['peer'], rec['label'], rec['round'], rec['wall_s'], extra,
        (' daemon_cpu=%.2fs' % rec['daemon_cpu_s']) if 'daemon_cpu_s' in rec else '', rc,
        ('  | ' + rec['out']) if rec['out'] and not rec['out'].startswith('runbench-read:') else ''), file=sys.stderr)
    if rc != 0:
        sys.stderr.write('  %s\n' % ('timed out after %g s' % a.timeout if timed_out else
                                     'output of the failed command:\n' + text[-2000:]))
    return 0 if rc == 0 else 1


# ------------------------------------------------------------------ data


def finish(tmp, top, manifest):
    """Moves the complete tree TMP to TOP and writes TOP.manifest.json (its presence marks a
    complete tree)."""
    with open(top + '.manifest.tmp', 'w') as f:
        json.dump(manifest, f)
    os.sync()
    os.rename(tmp, top)
    os.rename(top + '.manifest.tmp', top + '.manifest.json')


def fresh_tmp(top):
    tmp = top + '.tmp'
    if os.path.exists(tmp):
        subprocess.run(['rm', '-rf', tmp], check=True)
    os.makedirs(tmp)
    return tmp


def write_new(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def cmd_gen_small(top, n, dirs, seed):
    n, dirs = int(n), int(dirs)
    rng = random.Random('small-%s' % seed)
    tmp = fresh_tmp(top)
    for j in range(dirs):
        os.makedirs(os.path.join(tmp, 'd%03d' % j))
    total = 0
    for i in range(n):
        data = rng.randbytes(rng.randint(1024, 8192))
        write_new(os.path.join(tmp, 'd%03d' % (i * dirs // n), 'f%06d.bin' % i), data)
        total += len(data)
    finish(tmp, top, dict(files=n, dirs=dirs, bytes=total, seed=int(seed),
                          layout='d000..d%03d/f<i>.bin, 1-8 KiB each' % (dirs - 1)))
    return 0


def cmd_gen_large(top, n, mib, seed):
    n, mib = int(n), int(mib)
    rng = random.Random('large-%s' % seed)
    tmp = fresh_tmp(top)
    for i in range(n):
        with open(os.path.join(tmp, 'f%d.bin' % i), 'xb') as f:
            for _ in range(mib):
                f.write(rng.randbytes(1 << 20))
    finish(tmp, top, dict(files=n, dirs=0, bytes=n * (mib << 20), seed=int(seed),
                          layout='f0.bin..f%d.bin, %d MiB each' % (n - 1, mib)))
    return 0


def cmd_gen_tree(top, n, big, dirs, seed):
    """million_bench.sh's `gen`, byte for byte: either script reuses the other's tree."""
    n, big, dirs = int(n), int(big), int(dirs)
    small = n - big
    rng = random.Random(int(seed))
    tmp = top + '.tmp'
    if os.path.exists(tmp):
        subprocess.run(['rm', '-rf', tmp], check=True)
    names = ['d%04d' % j for j in range(dirs)]
    for d in names + ['big']:
        os.makedirs(os.path.join(tmp, d))
    total = 0
    t0 = time.monotonic()
    for i in range(n):
        rel = ('%s/f%07d.bin' % (names[i * dirs // small], i)) if i < small else ('big/f%07d.bin' % i)
        data = rng.randbytes(rng.randint(1024, 4096))
        write_new(os.path.join(tmp, rel), data)
        total += len(data)
        if i and i % 100000 == 0:
            print('  %d files, %.0f s' % (i, time.monotonic() - t0), file=sys.stderr)
    finish(tmp, top, dict(files=n, big_files=big, dirs=dirs, bytes=total, seed=int(seed),
                          layout='d0000..d%04d/f<i>.bin (%d files), big/f<i>.bin (%d files)' % (dirs - 1, small, big)))
    return 0


def cmd_field(path, *keys):
    rec = last_timed(path)
    print(' '.join(str(rec.get(k, '')) for k in keys))
    return 0


# ------------------------------------------------------------------ report


def cmd_report(outdir):
    P, recs, failed = load_run(outdir)
    R = Records(recs)
    walls, values = R.walls, R.values

    def fig(label, peer, key):
        return [r[key] for r in R.get(label, peer) if isinstance(r.get(key), (int, float))]

    verdicts = []     # (what, ok or None, detail)

    def verdict(ok):
        return 'n.a.' if ok is None else ('PASS' if ok else '**FAIL**')

    nfmt = '{:,}'.format
    rows = []         # (#, what, plain, run, ratio text, target text)
    throughput = []
    groups = [('small', '1', 'Small files: %s files of 1–8 KiB in %d directories (%.1f MiB); list every directory, '
               'read every file' % (nfmt(P['small_files']), P['small_dirs'], P['small_bytes'] / 2**20), SMALL_TARGET),
              ('large', '2', 'Large sequential: %d file%s of %d MiB, read whole in 1 MiB reads'
               % (P['large_files'], '' if P['large_files'] == 1 else 's', P['large_mib']), LARGE_TARGET)]
    for k, num, title, target in groups:
        rows.append(('**%s**' % num, '**%s**' % title, '', '', '', ''))
        nfiles = P[k + '_files']
        for i, w in enumerate(P['workers']):
            lab = '%s-w%d' % (k, w)
            sub = num + 'abcdefgh'[i]
            bad = lab in failed
            pw, rw = fig(lab, 'plain', 'r_wall_s'), fig(lab, 'run', 'r_wall_s')
            rv = ratio_v(pw, rw)
            ok = None if rv is None else rv <= target
            if bad:
                ok = False
            verdicts.append(('%s, %d worker(s): reader\'s wall in the run within %.2fx of plain' % (k, w, target), ok,
                             ('%.3fx' % rv if rv is not None else 'no figure') + ('; FAILED: ' + failed[lab] if bad else '')))
            rows.append((sub, '%d worker%s: **the reader\'s own wall** (s)' % (w, '' if w == 1 else 's'),
                         cell(pw, 's'), cell(rw, 's'), ratio(pw, rw), '≤ %.2fx: %s' % (target, verdict(ok))))
            rows.append((sub, '… whole command (s): plain = the reader process on the mount; run = `tusk run … -- reader`, '
                         'start to exit', cell(walls(lab, 'plain'), 's'), cell(walls(lab, 'run'), 's'),
                         ratio(walls(lab, 'plain'), walls(lab, 'run')), ''))
            rows.append((sub, '… before the reader (s): plain = `tusk mount` until it returns; run = tusk run\'s start '
                         'to the reader\'s first line (namespace, FUSE mount, Python start)',
                         cell(walls(lab + '-mount', 'plain'), 's'), cell(fig(lab, 'run', 'pre_s'), 's'), '', ''))
            rows.append((sub, '… after the reader (s): plain = `tusk umount`; run = the reader\'s end to tusk run\'s '
                         'exit (unmount, storing the read set and the run)',
                         cell(walls(lab + '-umount', 'plain'), 's'), cell(fig(lab, 'run', 'post_s'), 's'), '', ''))
            rows.append((sub, '… server CPU (s): plain = the mount daemon during the reader; run = tusk run itself, '
                         'start to exit', cell(fig(lab, 'plain', 'daemon_cpu_s'), 's'),
                         cell(fig(lab, 'run', 'server_cpu_s'), 's'), '', ''))
            fr = values(lab + '-files_read', 'run')
            fok = None if not fr else (all(v == nfiles for v in fr) and len(fr) == len(fig(lab, 'run', 'r_wall_s')))
            if bad and not fr:
                fok = False
            verdicts.append(('%s, %d worker(s): files_read of every run = %s files read' % (k, w, nfmt(nfiles)), fok,
                             ', '.join(nfmt(int(v)) for v in fr) or 'no figure'))
            rows.append((sub, '… files_read recorded (`tusk show run:ID --json`)', '',
                         cell(fr, 'files'), '', '= %s: %s' % (nfmt(nfiles), verdict(fok))))
            rows.append((sub, '… store growth from recording (`du -sb` of the store after − before the run)', '',
                         cell(values(lab + '-growth', 'run', 1024.0), 'KiB'), '', ''))
            for peer in ('plain', 'run'):
                ws = fig(lab, peer, 'r_wall_s')
                if ws:
                    m = statistics.median(ws)
                    throughput.append('%s %d worker(s) %s %s files/s, %.0f MB/s' % (
                        k, w, peer, nfmt(round(nfiles / m)), P[k + '_bytes'] / m / 1e6))
    if P.get('readset_files'):
        total = P['readset_files']
        every = P.get('readset_every', 1)
        n = (total + every - 1) // every  # the files the reader reads
        lab = 'readset'
        bad = lab in failed or 'readset-import' in failed
        which = 'every file read once' if every == 1 else 'every %d%s file (%s files) read once' % (
            every, {2: 'nd', 3: 'rd'}.get(every, 'th'), nfmt(n))
        rows.append(('**3**', '**Read set: %s files of 1–4 KiB in %d directories (million_bench.sh\'s tree), '
                     '%s by %d workers**' % (nfmt(total), P['readset_dirs'], which, P['readset_workers']),
                     '', '', '', ''))
        rows.append(('3', '`tusk run … -- reader`, start to exit (s)', '', cell(walls(lab, 'run'), 's'), '', ''))
        rows.append(('3', '… the reader\'s own wall (s)', '', cell(fig(lab, 'run', 'r_wall_s'), 's'), '', ''))
        rows.append(('3', '… before the reader: tusk run\'s start to the reader\'s first line (s)', '',
                     cell(fig(lab, 'run', 'pre_s'), 's'), '', ''))
        def under_post_target(figs, what, row):
            ok = None if not figs else statistics.median(figs) < READSET_POST_S
            if bad:
                ok = False
            verdicts.append(('read set: the reader\'s end to %s under %g s (median)' % (what, READSET_POST_S), ok,
                             (fmt_s(statistics.median(figs)) + (', max ' + fmt_s(max(figs)) if len(figs) > 1 else ''))
                             if figs else 'no figure'))
            rows.append(('3', row, '', cell(figs, 's'), '', '< %g s: %s' % (READSET_POST_S, verdict(ok))))

        under_post_target(fig(lab, 'run', 'recorded_s'), 'the run recorded (its read set and record durable)',
                          '… **after the reader: its end to the run recorded** (tusk run\'s "recorded" line: the '
                          'read set and the run durable) (s)')
        post = fig(lab, 'run', 'post_s')
        under_post_target(post, 'tusk run\'s exit (unmount, storing the read set)',
                          '… **after the reader: its end to tusk run\'s exit** (unmount, storing the read set and '
                          'the run) (s)')
        g = values(lab + '-growth', 'run', 2.0**20)
        ok = None if not g else max(g) < READSET_STORE_MIB
        if bad:
            ok = False
        verdicts.append(('read set stored in under %d MiB (store growth, max over runs)' % READSET_STORE_MIB, ok,
                         ('%.3f MiB' % max(g)) if g else 'no figure'))
        rows.append(('3', '… **store growth from recording** (`du -sb` after − before) (MiB)', '',
                     cell(g, 'MiB', True), '', '< %d MiB: %s' % (READSET_STORE_MIB, verdict(ok))))
        rows.append(('3', '… tusk run\'s own CPU, start to exit (s)', '', cell(fig(lab, 'run', 'server_cpu_s'), 's'),
                     '', ''))
        fr = values(lab + '-files_read', 'run')
        fok = None if not fr else (all(v == n for v in fr) and len(fr) == len(post))
        if bad and not fr:
            fok = False
        verdicts.append(('read set: files_read of every run = %s' % nfmt(n), fok,
                         ', '.join(nfmt(int(v)) for v in fr) or 'no figure'))
        rows.append(('3', '… files_read recorded (`tusk show run:ID --json`)', '', cell(fr, 'files'), '',
                     '= %s: %s' % (nfmt(n), verdict(fok))))
        ws = fig(lab, 'run', 'r_wall_s')
        if ws:
            throughput.append('read set %s files/s' % nfmt(round(n / statistics.median(ws))))

    out = []
    out.append('| # | measurement | plain mount | tusk run view | run / plain | target |')
    out.append('|---|---|---|---|---|---|')
    for num, what, pl, rn, rat, tgt in rows:
        out.append('| %s | %s | %s | %s | %s | %s |' % (num, what, pl, rn, rat, tgt))
    out.append('')
    out.append('Median over %d round(s), min–max in parentheses; "run / plain" divides the medians (above 1: the run '
               'is slower).  Plain = a fresh `tusk mount DS@v1 MNT` for every step (so that both sides start with a '
               'fresh server: a run\'s view is always new), the reader on MNT; run = `tusk run --in data=DS@v1 -- '
               'reader`, the reader on $TUSK_IN_data.  The two alternate within each round (odd rounds plain first).  '
               'Page cache dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) before every timed step (and before '
               'each plain `tusk mount`).  The reader (`runreader.py`, beside this file) times itself: `time.monotonic()` '
               'from before its listing to the last byte read, its worker processes started before; "before" and '
               '"after" the reader are measured against its first and last line on the same clock.' % P['runs'])
    notes = []
    for label, what in (('import-small', 'small'), ('import-large', 'large'), ('readset-import', 'read-set tree')):
        w = walls(label, 'setup')
        if w:
            notes.append('`tusk import` of the %s dataset %s' % (what, fmt_s(w[0])))
    if notes:
        out.append('')
        out.append('Setup, once per run (not a row): ' + '; '.join(notes) + '.')
    if throughput:
        out.append('')
        out.append('Throughput (reader\'s wall, medians): ' + '; '.join(throughput) + '.')
    out.append('')
    out.append('Targets:')
    out.append('')
    for what, ok, detail in verdicts:
        out.append('- %s %s (%s)' % (verdict(ok), what, detail))
    allok = bool(verdicts) and all(ok for _, ok, _ in verdicts) and not failed
    out.append('')
    out.append('**Overall: %s**' % ('PASS' if allok else 'FAIL'))
    out += status_lines(recs, failed, 'steps', 'files, bytes and directories the reader saw; files_read and '
                        'dirs_listed of every run; its exit status; the store\'s runs/ left empty')
    print('\n'.join(out))
    return 0


if __name__ == '__main__':
    sys.exit(main(__doc__, dict(time=cmd_time),
                  {'gen-small': cmd_gen_small, 'gen-large': cmd_gen_large, 'gen-tree': cmd_gen_tree,
                   'field': cmd_field, 'report': cmd_report}))
PYEOF

RES=$OUT/results.jsonl
CMDLOG=$OUT/commands.log
: >"$RES"
# timed LABEL PEER ROUND [time options] -- CMD...: cold-cache timing of one command
timed() {
  local label=$1 peer=$2 round=$3 rc=0 cold=--cold; shift 3
  [[ ${WARM:-0} == 1 ]] && cold=''
  { $PY "$RB" time --out "$RES" --label "$label" --peer "$peer" --round "$round" $cold \
      --timeout "$STEP_TIMEOUT" --log "$CMDLOG" "$@" 2>&1 | tee -a "$OUT/run.log" >&2; } || rc=$?
  ((rc == 0)) || why "$peer $label round $round failed: $(last_err)"
  return "$rc"
}
# why TEXT: the reason the running step fails (shown in the report), also logged
why() { log "$*"; echo "$*" >"$OUT/.why"; }
record() { $PY "$RB" record --out "$RES" --label "$1" --peer "$2" --round "$3" --value "$4"; }
verify() {  # verify ROUND WHAT STATUS [DETAIL]: a check's result (0 = OK) as a record; never fails the step
  if [[ $3 == 0 ]]; then record verify "$2" "$1" OK
  else record verify "$2" "$1" "FAILED${4:+: $4}"; log "VERIFY FAILED: $2 round $1${4:+: $4}"; fi
}
field() { $PY "$RB" field "$RES" "$@"; }    # fields of the latest timed command's record
last_err() { local e; e=$(field err); if [[ -n $e ]]; then echo "$e"; else field out; fi; }
store_bytes() { du -sb "$1" | cut -f1; }

# check_reader LABEL PEER ROUND FILES BYTES DIRS: what the reader of the latest step saw
check_reader() {
  local got want ok=0
  if [[ -z $5 ]]; then  # bytes unknown (row 3 reading a subset)
    got=$(field r_files r_dirs); want="$4 $6"
  else
    got=$(field r_files r_bytes r_dirs); want="$4 $5 $6"
  fi
  [[ $got == "$want" ]] || ok=1
  verify "$3" "$1-$2-reader" $ok "files (bytes) dirs: $got, expected $want"
}
# check_run STORE LABEL ROUND FILES DIRS: the run just recorded: files_read and dirs_listed of
# `tusk show run:ID --json`, exit status, and the store's runs/ left empty; records files_read
check_run() {
  local st=$1 lab=$2 r=$3 id js fr dl es ok
  id=$(field run_id)
  [[ -n $id ]] || { why "$lab round $r: no \"run:ID recorded\" in tusk run's output"; return 1; }
  js=$OUT/runs/$lab-r$r.json
  "$TUSK_BIN" --store "$st" show "run:$id" --json >"$js" 2>>"$CMDLOG" \
    || { why "$lab round $r: tusk show run:$id --json failed"; return 1; }
  fr=$(jq -r '.inputs[0].files_read' "$js")
  dl=$(jq -r '.inputs[0].dirs_listed' "$js")
  es=$(jq -r '.exit_status' "$js")
  record "$lab-files_read" run "$r" "$fr"
  ok=0; [[ $fr == "$4" ]] || ok=1; verify "$r" "$lab-files_read" $ok "files_read $fr, the reader read $4"
  ok=0; [[ $dl == "$5" ]] || ok=1; verify "$r" "$lab-dirs_listed" $ok "dirs_listed $dl, the reader listed $5"
  ok=0; [[ $es == 0 ]] || ok=1; verify "$r" "$lab-exit_status" $ok "exit_status $es"
  ok=0; [[ -z $(ls -A "$st/runs" 2>/dev/null) ]] || ok=1
  verify "$r" "$lab-runs_dir_empty" $ok "left in $st/runs: $(ls -A "$st/runs" 2>/dev/null | tr "\n" " ")"
  log "   run:$id: files_read $fr, dirs_listed $dl, exit status $es"
}

# ---------------------------------------------------------------- data (generated once, reused)
phase_gen() {
  local t
  if [[ $(have "$SMALL_DATA") == 0 ]]; then
    rm -rf "$SMALL_DATA" "$SMALL_DATA.manifest.json"
    t=$SECONDS; log "generating $SMALL_DATA: $SMALL_N files of 1-8 KiB in $SMALL_DIRS dirs, seed $SEED"
    $PY "$RB" gen-small "$SMALL_DATA" "$SMALL_N" "$SMALL_DIRS" "$SEED"
    log "   done in $((SECONDS - t)) s"
  else log "reusing $SMALL_DATA"; fi
  if [[ $(have "$LARGE_DATA") == 0 ]]; then
    rm -rf "$LARGE_DATA" "$LARGE_DATA.manifest.json"
    t=$SECONDS; log "generating $LARGE_DATA: $LARGE_N files of $LARGE_MB MiB, seed $SEED"
    $PY "$RB" gen-large "$LARGE_DATA" "$LARGE_N" "$LARGE_MB" "$SEED"
    log "   done in $((SECONDS - t)) s"
  else log "reusing $LARGE_DATA"; fi
  if ((READSET_N > 0)); then
    if [[ $(have "$READSET_DATA") == 0 ]]; then
      rm -rf "$READSET_DATA" "$READSET_DATA.manifest.json"
      t=$SECONDS; log "generating $READSET_DATA: $READSET_N files of 1-4 KiB (million_bench.sh's tree), seed $SEED"
      $PY "$RB" gen-tree "$READSET_DATA" "$READSET_N" "$R_BIG" "$R_DIRS" "$SEED"
      log "   done in $((SECONDS - t)) s"
    else log "reusing $READSET_DATA ($(jq -r .layout "$READSET_DATA.manifest.json" 2>/dev/null || echo '?'))"; fi
  fi
}

# ---------------------------------------------------------------- setup: the store (not timed as a row)
phase_import() {
  local k
  rm -rf "$ST"
  tk init "${INIT_ARGS[@]}" >>"$CMDLOG" 2>&1
  for k in small large; do
    tk dataset create "$k" >>"$CMDLOG" 2>&1
    local src=$SMALL_DATA; [[ $k == large ]] && src=$LARGE_DATA
    timed "import-$k" setup 0 -- "$TUSK_BIN" --store "$ST" import "$src" "$k@main" -m "run_bench $k"
    tk tag "$k@v1" "$k@main" >>"$CMDLOG" 2>&1
  done
}

# ---------------------------------------------------------------- rows 1-2: one step of each side
# exp_of K: "FILES BYTES DIRS" the reader must see in dataset K (DIRS: with the root)
exp_of() {
  local m=$SMALL_DATA.manifest.json
  [[ $1 == large ]] && m=$LARGE_DATA.manifest.json
  jq -r '"\(.files) \(.bytes) \(.dirs + 1)"' "$m"
}
# step_plain K W ROUND: fresh `tusk mount K@v1`, the reader with W workers on it, `tusk umount`
step_plain() {
  local k=$1 w=$2 r=$3 lab=$1-w$2 pid exp
  read -r -a exp <<<"$(exp_of "$k")"
  STEP_TIMEOUT=$TUSK_MOUNT_TIMEOUT timed "$lab-mount" plain "$r" -- \
    "$TUSK_BIN" --store "$ST" mount --log "$OUT/daemon-plain.log" "$k@v1" "$MNT_PLAIN"
  wait_daemon "$MNT_PLAIN"
  pid=$MOUNT_PID
  timed "$lab" plain "$r" --pid "$pid" -- "$PY" "$RR" --workers "$w" "$MNT_PLAIN"
  check_reader "$lab" plain "$r" "${exp[@]}"
  WARM=1 timed "$lab-umount" plain "$r" -- "$TUSK_BIN" umount "$MNT_PLAIN"
  wait_unmounted "$MNT_PLAIN" "$pid"
}
# step_run STORE DS LABEL W ROUND FILES BYTES DIRS: `tusk run` of the reader with W workers on
# DS@v1; store growth; the record checked
step_run() {
  local st=$1 ds=$2 lab=$3 w=$4 r=$5 b0 g
  b0=$(store_bytes "$st")
  timed "$lab" run "$r" -- "$TUSK_BIN" --store "$st" run --in "data=$ds@v1" -m "run_bench $lab r$r" -- \
    "$PY" "$RR" --workers "$w" ${READER_EXTRA:-} '$TUSK_IN_data'
  g=$(($(store_bytes "$st") - b0))
  record "$lab-growth" run "$r" "$g"
  log "   store grew by $g B"
  check_reader "$lab" run "$r" "$6" "$7" "$8"
  check_run "$st" "$lab" "$r" "$6" "$8"
}
# pair K W ROUND: both sides, plain first in odd rounds, run first in even ones
pair() {
  local k=$1 w=$2 r=$3 exp
  read -r -a exp <<<"$(exp_of "$k")"
  log "-- round $r/$RUNS: $k, $w worker(s): $( ((r % 2)) && echo 'plain, then run' || echo 'run, then plain')"
  if ((r % 2)); then
    step_plain "$k" "$w" "$r"
    step_run "$ST" "$k" "$k-w$w" "$w" "$r" "${exp[@]}"
  else
    step_run "$ST" "$k" "$k-w$w" "$w" "$r" "${exp[@]}"
    step_plain "$k" "$w" "$r"
  fi
}

# ---------------------------------------------------------------- row 3: the read set of many files
phase_readset_import() {
  rm -rf "$RST"
  "$TUSK_BIN" --store "$RST" init "${INIT_ARGS[@]}" >>"$CMDLOG" 2>&1
  "$TUSK_BIN" --store "$RST" dataset create r >>"$CMDLOG" 2>&1
  timed readset-import setup 0 -- "$TUSK_BIN" --store "$RST" import "$READSET_DATA" r@main -m "run_bench read set"
  "$TUSK_BIN" --store "$RST" tag r@v1 r@main >>"$CMDLOG" 2>&1
}
round_readset() {
  local r=$1 bytes
  bytes=$(jq -r .bytes "$READSET_DATA.manifest.json")
  local n=$(( (READSET_N + READSET_EVERY - 1) / READSET_EVERY ))
  log "-- round $r/$RUNS: tusk run reading $n of the $READSET_N files (every $READSET_EVERY) with $READSET_WORKERS workers"
  ((READSET_EVERY == 1)) || bytes=''
  READER_EXTRA="--every $READSET_EVERY" step_run "$RST" r readset "$READSET_WORKERS" "$r" "$n" "$bytes" $((R_DIRS + 2))
}

# run_step NAME FUNC ARGS...: in a background subshell with its own process group (the
# EXIT trap can stop it at once) and with set -e active: the first failing command ends
# the step, which is then reported as FAILED; the next steps still run.  Sets GROUP_RC.
run_step() { run_group STEP "$@"; }

# ---------------------------------------------------------------- header, run, report
{
  echo "# tusk run benchmark (the cost of recording reads: a plain one-version mount vs \`tusk run\`)"
  echo
  bench_info "data and stores on that same file system; commands run in the results directory (no git checkout)"
  echo "- datasets: small $(printf "%'d" "$SMALL_N") files of 1–8 KiB in $SMALL_DIRS dirs ($SMALL_DATA);" \
       "large $LARGE_N × $LARGE_MB MiB ($LARGE_DATA)$( ((READSET_N > 0)) && echo "; read set $(printf "%'d" "$READSET_N") files of 1–4 KiB in $R_DIRS dirs + big/ ($READSET_DATA)"); random bytes, seed $SEED"
  echo "- reader: \`$PY runreader.py --workers W DIR\` (W = ${WORKERS[*]}; row 3: $READSET_WORKERS), $("$PY" --version 2>&1)"
} >"$OUT/header.md"
cat "$OUT/header.md" >&2
log "run bench -> $OUT (about $need_mib MiB of disk needed, $avail_mib MiB free)"

run_step gen phase_gen
((GROUP_RC == 0)) || die "could not generate the data in $BENCH_ROOT/data"
cat >"$OUT/params.json" <<EOF
{"small_files": $SMALL_N, "small_dirs": $SMALL_DIRS, "small_bytes": $(jq .bytes "$SMALL_DATA.manifest.json"),
 "large_files": $LARGE_N, "large_mib": $LARGE_MB, "large_bytes": $(jq .bytes "$LARGE_DATA.manifest.json"),
 "readset_files": $READSET_N, "readset_every": $READSET_EVERY, "readset_dirs": $((READSET_N > 0 ? R_DIRS + 1 : 0)), "readset_workers": $READSET_WORKERS,
 "readset_data": "$READSET_DATA", "workers": [$(IFS=,; echo "${WORKERS[*]}")], "runs": $RUNS, "seed": $SEED}
EOF
log "== setup: import small ($SMALL_N files) and large ($LARGE_N x $LARGE_MB MiB) into $ST"
run_step import phase_import
if ((GROUP_RC == 0)); then
  for r in $(seq 1 "$RUNS"); do
    for k in small large; do
      for w in "${WORKERS[@]}"; do
        run_step "$k-w$w" pair "$k" "$w" "$r"
      done
    done
  done
else
  for k in small large; do for w in "${WORKERS[@]}"; do
    printf '%s\t%s\n' "$k-w$w" "no store (the import failed)" >>"$OUT/failed.tsv"
  done; done
fi
if ((READSET_N > 0)); then
  log "== row 3: import the read-set tree ($READSET_N files) into $RST"
  run_step readset-import phase_readset_import
  if ((GROUP_RC == 0)); then
    for r in $(seq 1 "$RUNS"); do run_step readset round_readset "$r"; done
  fi
fi

{
  cat "$OUT/header.md"
  echo
  $PY "$RB" report "$OUT"
  echo
  echo "Total benchmark time $((SECONDS - T0)) s.  Raw records: results.jsonl; progress: run.log;" \
       "output of every timed command: commands.log; each run's \`tusk show run:ID --json\`: runs/;" \
       "plain mount daemon log: daemon-plain.log."
} >"$OUT/results.md"
cat "$OUT/results.md"
log "results: $OUT/results.md"
