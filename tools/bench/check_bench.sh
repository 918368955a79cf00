#!/bin/bash
# What a data check costs a one-file workspace commit on a large dataset (measurement only,
# not in CI).  The target (the checks issue): "A check that receives the changed-path list on
# a 1,000,000-file dataset with one changed file adds under 0.5 s to a commit (beyond the
# check's own work)."
#
#   tools/bench/check_bench.sh                                        # FILES_N=1000000 RUNS=5: the real figures (~3 min, + ~2 min generation the first time)
#   FILES_N=10000 RUNS=3 tools/bench/check_bench.sh                   # smoke test, ~15 s
#   FILES_N=100000 RUNS=9 COLD=1 TUSK_BIN=/path/to/tusk tools/bench/check_bench.sh
#
# The dataset: FILES_N files of 1-4 KiB (random bytes) in FILES_N/1000 directories, made by
# merge_bench.sh's generator (lib/merge_tables.py gen-files) into
# $BENCH_ROOT/data/files-n<FILES_N>-seed<SEED>/ once and reused (merge_bench.sh with the same
# BENCH_ROOT shares it), imported as files@main into a fresh store, which is then mounted
# whole (`tusk mount MNT`; the branch workspace is MNT/files/main/).  Each round, for each
# of two variants (order alternating by round), a line is appended to a different file
# through the workspace and `tusk commit files@main` is timed:
#   a  no checks defined (the check is removed before: `tusk check remove files changed`)
#   b  one check that only reads the changed-path list (`tusk check add` before):
#        tusk check add files changed -- sh -c 'wc -l < "$TUSK_CHECK_CHANGED" >/dev/null'
# then (b's rounds) `tusk check run files@main` (the same check on the commit just made,
# outside a commit).  Also: the check command alone (CHECK_ALONE_N runs on a one-line list),
# the duration tusk records for the check (`tusk show --json`), the lifetime and peak RSS of
# the daemon's `tusk check-candidate` child (polled), the commit's and the daemon's peak RSS.
# Overhead = median(b) - median(a); PASS when below LIMIT_S (0.5 s).
# The report (markdown) goes to stdout and to $BENCH_ROOT/results/<timestamp>-check/results.md.
# Needs root (FUSE mounts, drop_caches with COLD=1).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export LC_NUMERIC=C

FILES_N=${FILES_N:-1000000}
RUNS=${RUNS:-5}
SEED=${SEED:-42}
# absolute and without symlinks: leftover daemons are found by "$BENCH_ROOT/mnt/" and
# "$BENCH_ROOT/stores/" in their argv
BENCH_ROOT=$(realpath -m "${BENCH_ROOT:-/tmp/tusk-checkbench}")
TUSK_BIN=${TUSK_BIN:-${TUSK:-$REPO/build/tusk}}
[[ $TUSK_BIN == */* ]] && TUSK_BIN=$(realpath -m "$TUSK_BIN")
TUSK_INIT_ARGS=${TUSK_INIT_ARGS:-}
TUSK_MOUNT_ARGS=${TUSK_MOUNT_ARGS:-}
TUSK_MOUNT_TIMEOUT=${TUSK_MOUNT_TIMEOUT:-120}
IMPORT_TIMEOUT=${IMPORT_TIMEOUT:-7200}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
LIMIT_S=${LIMIT_S:-0.5}
CHECK_ALONE_N=${CHECK_ALONE_N:-20}
POLL_MS=${POLL_MS:-5}
COLD=${COLD:-0}
KEEP=${KEEP:-0}
ALLOW_ANY_FS=${ALLOW_ANY_FS:-0}
PY=${PY:-/usr/bin/python3}
CMDLINE="FILES_N=$FILES_N RUNS=$RUNS SEED=$SEED BENCH_ROOT=$BENCH_ROOT TUSK_BIN=$TUSK_BIN${TUSK_INIT_ARGS:+ TUSK_INIT_ARGS='$TUSK_INIT_ARGS'}${TUSK_MOUNT_ARGS:+ TUSK_MOUNT_ARGS='$TUSK_MOUNT_ARGS'} LIMIT_S=$LIMIT_S CHECK_ALONE_N=$CHECK_ALONE_N POLL_MS=$POLL_MS COLD=$COLD KEEP=$KEEP $0${*:+ $*}"
read -r -a INIT_ARGS <<<"$TUSK_INIT_ARGS"
read -r -a MOUNT_ARGS <<<"$TUSK_MOUNT_ARGS"

STORES=$BENCH_ROOT/stores       # this run's store, files/ (deleted on exit unless KEEP=1)
NATIVE=$BENCH_ROOT/work         # scratch (deleted on exit)
DATA=$BENCH_ROOT/data           # the generated tree (kept, reused by later runs)
MNT=$BENCH_ROOT/mnt             # the whole-store mount point, $MNT/store
TREE=$DATA/files-n$FILES_N-seed$SEED
ST=$STORES/files
SMNT=$MNT/store
WS=$SMNT/files/main             # the branch workspace of files@main
# the check, exactly as `tusk check add` gets it
CHECK_ARGV=(sh -c 'wc -l < "$TUSK_CHECK_CHANGED" >/dev/null')
OUT=''
TESTPID=''                      # the running phase (leader of its own process group)

. "$HERE/lib/basics.sh"   # die, log, ensure_packages, take_lock, check_fs, check_free, copy_tusk_bin, bench_info
tk() { "$TUSK_BIN" --store "$ST" "$@"; }

# ---------------------------------------------------------------- arguments
[[ $EUID -eq 0 ]] || die "must run as root (FUSE mounts, drop_caches)"
[[ $FILES_N =~ ^[1-9][0-9]*$ ]] && ((FILES_N >= 100)) || die "FILES_N must be an integer >= 100, got '$FILES_N'"
for v in RUNS TUSK_MOUNT_TIMEOUT IMPORT_TIMEOUT STEP_TIMEOUT CHECK_ALONE_N; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
((2 * RUNS <= FILES_N)) || die "RUNS ($RUNS) must be at most FILES_N / 2 (a different file each commit)"
[[ $POLL_MS =~ ^[0-9]+$ ]] || die "POLL_MS must be a non-negative integer (0: no polling), got '$POLL_MS'"
[[ $SEED =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, got '$SEED'"
[[ $LIMIT_S =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] || die "LIMIT_S must be a number of seconds, got '$LIMIT_S'"
[[ $KEEP == 0 || $KEEP == 1 ]] || die "KEEP must be 0 or 1, got '$KEEP'"
[[ $COLD == 0 || $COLD == 1 ]] || die "COLD must be 0 or 1, got '$COLD'"
[[ -c /dev/fuse ]] || die "/dev/fuse is missing (FUSE mounts impossible here)"

# ---------------------------------------------------------------- packages, binary, lock
ensure_packages fuse3 python3 time coreutils
[[ -x $PY ]] || die "python interpreter $PY not found (set PY)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "$PY is older than Python 3.9 (random.randbytes)"
[[ -x $TUSK_BIN ]] && "$TUSK_BIN" --help >/dev/null 2>&1 \
  || die "$TUSK_BIN missing or \`tusk --help\` fails (build it, or set TUSK_BIN)"
"$TUSK_BIN" help check >/dev/null 2>&1 || die "$TUSK_BIN has no \`tusk check\` (an older build? set TUSK_BIN)"

take_lock

# ---------------------------------------------------------------- cleanup (processes, mounts, store)
. "$HERE/lib/mounts.sh"   # pids_with_arg, daemon_pids, umount_all, stop_group, bench_cleanup, run_group, wait_daemon, wait_unmounted
# stray_pids: processes with an argument under $STORES/ (every tusk gets `--store $STORES/files`:
# the import, the commits, the mount daemon and its `tusk check-candidate` children)
stop_strays() {
  local pids
  pids=$(pids_with_arg "" "$STORES/" | sort -u)
  [[ -n $pids ]] || return 0
  # shellcheck disable=SC2086  # one pid a word
  stop_pids $pids
}
cleanup() {
  local rc=$?
  set +e
  trap - INT TERM
  stop_group "$TESTPID" 10 "the running phase"
  TESTPID=''
  # a clean unmount first (the daemon is still there when the phase was interrupted)
  if [[ -n $(mounts_under "$SMNT") && -x $TUSK_BIN ]]; then
    timeout -s KILL 30 "$TUSK_BIN" --store "$ST" umount "$SMNT" >/dev/null 2>&1
  fi
  umount_all            # daemons under $MNT/ (TERM, KILL), then fusermount3 -u -z / umount -l
  stop_strays
  bench_cleanup "$rc" "the running phase" "store kept" "$KEEP"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
umount_all              # leftovers of an earlier run that was killed hard
stop_strays

# ---------------------------------------------------------------- file system, free space
check_fs        # sets FSTYPE; removes the last run's $NATIVE and $STORES
# the tree: 4.2 KiB on disk a file (if missing); the store: ~3 KiB a file; + 512 MiB slack
have=0; [[ -f $TREE.manifest.json ]] && have=1
need_mib=$(awk -v n="$FILES_N" -v h="$have" 'BEGIN { printf "%d\n", 512 + n * (4.2 * (1 - h) + 3) / 1024 }')
need_inodes=10000; ((have)) || need_inodes=$((need_inodes + FILES_N + FILES_N / 1000))
check_free "$need_mib" "$need_inodes" "FILES_N=$FILES_N" "lower FILES_N"

OUT=$BENCH_ROOT/results/$(date +%Y%m%d-%H%M%S)-check
mkdir -p "$OUT" "$NATIVE" "$STORES" "$DATA" "$MNT" "$BENCH_ROOT/bin"
T0=$SECONDS

copy_tusk_bin   # sets TUSK_ORIG, TUSK_BIN (the copy), tusk_version
cd "$BENCH_ROOT"

# ---------------------------------------------------------------- the python helper
# lib/merge_tables.py (the generator) and lib/benchutil.py are copied into the results
# directory beside the embedded helper: an edit of tools/bench changes nothing halfway, and
# `python3 checkbench.py report DIR` re-renders the report from there.
HLP=$OUT/checkbench.py
GEN=$OUT/merge_tables.py
cp "$HERE/lib/benchutil.py" "$OUT/benchutil.py"
cp "$HERE/lib/merge_tables.py" "$GEN"
cat >"$HLP" <<'PYEOF'
#!/usr/bin/env python3
"""Helper of tools/bench/check_bench.sh (stdlib only; benchutil.py beside it).

  pick N K SEED                     K different file paths of the generated tree of N files
  time --out F --label L --peer P --round R [--cold] [--timeout S] [--log FILE] [--daemon PID]
       [--poll-ms MS] -- CMD...
        run CMD once (after sync + drop_caches if --cold) in its own process group; append a
        JSON record: wall, CPU, peak RSS (/usr/bin/time -f %M), rc, last output line, the
        1-minute load average before it, the CPU the rest of the machine used meanwhile, the
        daemon PID's CPU during it (its own, and its children's that it waited for) and its
        VmHWM after it, and (polling PID's children every
        MS ms) the lifetime and peak VmHWM of its `tusk check-candidate` children
  alone --out F --n N -- CMD...     run the check command N times on its own (cwd: a scratch
                                    directory, TUSK_CHECK_CHANGED a one-line list): one record
                                    per run
  checks-of JSON                    the `checks` of a `tusk show --json` output: NAME OUTCOME MS
  record --out F --label L --peer P --round R --value V
  vmhwm PID / last-out F / last-err F
  report OUTDIR                     the markdown report (OUTDIR/params.json, results.jsonl)
"""
import argparse, json, os, random, statistics, subprocess, sys, tempfile, threading, time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import (CLK, Records, append, cell, drop_caches, fmt_num, fmt_s, load_run, log_command, main,
                       parse_time, proc_cpu, run_group, status_lines, time_record)


def cpu_busy():
    """Jiffies the whole machine spent busy so far (user nice system irq softirq steal)."""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)


def cmd_pick(n, k, seed):
    n, k = int(n), int(k)
    dirs = max(1, n // 1000)          # merge_tables.py's tree_layout
    for i in random.Random('%s-check-bench' % seed).sample(range(n), k):
        print('d%04d/f%07d.bin' % (i * dirs // n, i))
    return 0


def children_cpu(pid):
    """CPU seconds of PID's children that it waited for (cutime + cstime), None if unreadable."""
    if not pid:
        return None
    try:
        with open('/proc/%s/stat' % pid) as f:
            s = f.read()
        fields = s[s.rindex(')') + 2:].split()
        return (int(fields[13]) + int(fields[14])) / CLK
    except (OSError, ValueError, IndexError):
        return None


def vmhwm_kb(pid):
    try:
        with open('/proc/%s/status' % pid) as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class ChildWatch(threading.Thread):
    """Polls the daemon's children (/proc/PID/task/*/children) for `check-candidate`
    processes: when each was first and last seen (monotonic) and the largest VmHWM read."""

    def __init__(self, pid, every):
        super().__init__(daemon=True)
        self.pid, self.every, self.stop, self.seen = pid, every, threading.Event(), {}

    def run(self):
        while not self.stop.is_set():
            try:
                tids = os.listdir('/proc/%s/task' % self.pid)
            except OSError:
                return
            kids = set()
            for t in tids:
                try:
                    with open('/proc/%s/task/%s/children' % (self.pid, t)) as f:
                        kids.update(f.read().split())
                except OSError:
                    pass
            now = time.monotonic()
            for k in kids:
                s = self.seen.get(k)
                if s is None:
                    try:
                        with open('/proc/%s/cmdline' % k, 'rb') as f:
                            if b'check-candidate' not in f.read():
                                continue
                    except OSError:
                        continue
                    s = self.seen[k] = dict(first=now, last=now, hwm=0)
                s['last'] = now
                h = vmhwm_kb(k)
                if h:
                    s['hwm'] = max(s['hwm'], h)
            self.stop.wait(self.every)


def cmd_time(argv):
    a, cmd = parse_time(argv, ('--timeout', dict(type=float, default=600)), ('--daemon', dict(default='')),
                        ('--poll-ms', dict(type=float, default=5)))
    if a.cold:
        drop_caches()
    with open('/proc/loadavg') as f:
        load1 = float(f.read().split()[0])
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    rss = tempfile.NamedTemporaryFile(prefix='checkbench-rss-')
    watch = None
    if a.daemon and a.poll_ms > 0:
        watch = ChildWatch(a.daemon, a.poll_ms / 1000.0)
        watch.start()
    d0, c0, b0 = proc_cpu(a.daemon), children_cpu(a.daemon), cpu_busy()
    t0, t1, rc, ru, timed_out = run_group(['/usr/bin/time', '-f', '%M', '-o', rss.name, '--'] + cmd, a.timeout,
                                          out, err)
    d1, c1, b1 = proc_cpu(a.daemon), children_cpu(a.daemon), cpu_busy()
    if watch:
        watch.stop.set()
        watch.join()
    out.seek(0)
    text = out.read().decode(errors='replace')
    err.seek(0)
    etext = err.read().decode(errors='replace')
    lines = [l for l in text.splitlines() if l.strip()]
    elines = [l for l in etext.splitlines() if l.strip() and not l.startswith('Command ')]
    maxrss = next((int(l) for l in reversed(open(rss.name).read().split('\n')) if l.strip().isdigit()), 0)
    rss.close()
    own = ru.ru_utime + ru.ru_stime
    dcpu = (d1 - d0) if d0 is not None and d1 is not None else 0
    ccpu = (c1 - c0) if c0 is not None and c1 is not None else 0
    rec = time_record(a, cmd, t0, t1, ru, rc, lines or elines[-1:], maxrss_kb=maxrss, load1=load1,
                      others_cpu_s=round(max(0.0, (b1 - b0) / CLK - own - dcpu - ccpu), 2))
    if d0 is not None and d1 is not None:
        rec['daemon_cpu_s'] = round(dcpu, 3)
    if c0 is not None and c1 is not None:
        rec['daemon_children_cpu_s'] = round(ccpu, 3)
    if a.daemon:
        h = vmhwm_kb(a.daemon)
        if h:
            rec['daemon_vmhwm_kb'] = h
    if watch and watch.seen:
        rec['candidates'] = len(watch.seen)
        rec['cand_s'] = round(max(s['last'] - s['first'] for s in watch.seen.values()), 4)
        rec['cand_start_s'] = round(min(s['first'] for s in watch.seen.values()) - t0, 4)
        rec['cand_hwm_kb'] = max(s['hwm'] for s in watch.seen.values())
    if timed_out:
        rec['timed_out'] = True
    if rc != 0:
        errs = [l for l in elines if 'error' in l.lower()] or elines[-1:]
        if errs:
            rec['err'] = errs[0][:300]
    if a.log:
        log_command(a.log, rec, etext + text[:20000], ' maxrss=%d KiB load1=%.2f others_cpu=%.2fs' % (
            maxrss, load1, rec['others_cpu_s']))
    append(a.out, rec)
    extra = ''
    if 'daemon_cpu_s' in rec:
        extra += ' daemon_cpu=%.3fs' % rec['daemon_cpu_s']
    if rec.get('daemon_children_cpu_s'):
        extra += ' +children=%.3fs' % rec['daemon_children_cpu_s']
    if 'cand_s' in rec:
        extra += ' check-candidate=%.3fs (from +%.3fs, %.1fMiB)' % (rec['cand_s'], rec['cand_start_s'],
                                                                   rec['cand_hwm_kb'] / 1024)
    print('  %-8s %-10s r%d wall=%.3fs cpu=%.3fs rss=%.1fMiB%s rc=%d load=%.1f others=%.2fs%s' % (
        rec['peer'], rec['label'], rec['round'], rec['wall_s'], rec['cpu_s'], maxrss / 1024, extra, rc, load1,
        rec['others_cpu_s'], ('  | ' + rec['out'][:100]) if rec['out'] else ''), file=sys.stderr)
    if rc != 0:
        sys.stderr.write('  %s\n' % ('timed out after %g s' % a.timeout if timed_out else
                                     'stderr of the failed command:\n' + etext[-2000:]))
    return 0 if rc == 0 else 1


def cmd_alone(argv):
    ap = argparse.ArgumentParser(prog='checkbench.py alone')
    ap.add_argument('--out', required=True)
    ap.add_argument('--n', type=int, default=20)
    ap.add_argument('cmd', nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == '--' else a.cmd
    with tempfile.TemporaryDirectory(prefix='checkbench-alone-') as d:
        with open(os.path.join(d, 'changed'), 'w') as f:
            f.write('d0000/f0000000.bin\n')
        open(os.path.join(d, 'deleted'), 'w').close()
        env = dict(os.environ, TUSK_CHECK_TREE=d, TUSK_CHECK_CHANGED=os.path.join(d, 'changed'),
                   TUSK_CHECK_DELETED=os.path.join(d, 'deleted'), TUSK_CHECK_NAME='changed', TUSK_DATASET='files')
        walls = []
        for i in range(a.n):
            t0 = time.monotonic()
            rc = subprocess.run(cmd, cwd=d, env=env, stdin=subprocess.DEVNULL).returncode
            t1 = time.monotonic()
            append(a.out, dict(label='alone', peer='check', round=i + 1, wall_s=round(t1 - t0, 6), rc=rc,
                               out='', cmd=' '.join(cmd)[:300]))
            walls.append(t1 - t0)
    print('  the check command alone, %d runs: median %.4f s (%.4f-%.4f)' % (
        a.n, statistics.median(walls), min(walls), max(walls)), file=sys.stderr)
    return 0


def cmd_checks_of(path):
    with open(path) as f:
        j = json.load(f)
    for c in j.get('checks') or []:
        print(c.get('name', '?'), c.get('outcome', '?'), c.get('duration_ms', ''))
    return 0


# ------------------------------------------------------------------ report
def cmd_report(outdir):
    P, recs, failed = load_run(outdir)
    R = Records(recs)
    n = P['files_n']
    limit = P['limit_s']
    a, b = R.walls('commit', 'nocheck'), R.walls('commit', 'check')
    rows = []

    def row(k, what, xs, unit='s', note=''):
        rows.append('| %s | %s | %s | %s |' % (k, what, cell(xs, unit, True) if xs else '—', note))

    def vals(label, peer, key, recs_=None):
        return [r[key] for r in R.get(label, peer) if key in r]

    ra, rb = R.by_round('commit', 'nocheck'), R.by_round('commit', 'check')
    paired = [rb[k]['wall_s'] - ra[k]['wall_s'] for k in sorted(ra) if k in rb]
    over = statistics.median(b) - statistics.median(a) if a and b else None
    alone = R.walls('alone', 'check')
    check_ms = [v / 1000.0 for v in R.values('check_ms', 'check')]
    verdict = '—'
    if over is not None:
        verdict = '**%s** (%s %s %s)' % ('PASS' if over < limit else 'FAIL', fmt_s(over),
                                         '<' if over < limit else '≥', fmt_s(limit))
    row('a', '`tusk commit files@main`, one file changed, **no checks**: wall', a)
    row('b', '… **with the check** `changed` (reads `$TUSK_CHECK_CHANGED`): wall', b)
    rows.append('| b − a | **overhead of the check**: median(b) − median(a) | %s | target < %s: %s |' % (
        fmt_s(over) if over is not None else '—', fmt_s(limit), verdict))
    row('', '… per round, b − a of the same round (median, min–max)', paired)
    if over is not None and alone:
        rows.append('| | … beyond the check\'s own work: overhead − median(c) | %s | |' % fmt_s(
            over - statistics.median(alone)))
    row('c', 'the check command alone (`%s`, one-line list, %d runs)' % (P['check_cmd'], len(alone)), alone)
    row('d', 'the check\'s duration as tusk records it (`tusk show --json`: `duration_ms`; includes mounting the view)',
        check_ms)
    cs = vals('commit', 'check', 'cand_s')
    row('e', '`tusk check-candidate` (the daemon\'s child that runs the checks): lifetime seen by polling every %g ms'
        % P['poll_ms'], cs, note='(polled: ± the interval)')
    st = vals('commit', 'check', 'cand_start_s')
    row('', '… started after the commit\'s start', st)
    row('f', '`tusk check run files@main` (the same check on the new head, outside a commit): wall',
        R.walls('checkrun', 'check'))
    for peer, k in (('nocheck', 'a'), ('check', 'b')):
        row(k, 'CPU: the `tusk commit` process', vals('commit', peer, 'cpu_s'))
        row(k, 'CPU: the mount daemon\'s own threads during the commit',
            vals('commit', peer, 'daemon_cpu_s'))
    row('b', 'CPU: the daemon\'s children during the commit (`check-candidate` and the check: their cutime + cstime)',
        vals('commit', 'check', 'daemon_children_cpu_s'))
    for peer, k in (('nocheck', 'a'), ('check', 'b')):
        row(k, 'peak RSS of the `tusk commit` process (max)', [max(vals('commit', peer, 'maxrss_kb') or [0]) / 1024] if
            vals('commit', peer, 'maxrss_kb') else [], 'MiB')
    h = vals('commit', 'nocheck', 'daemon_vmhwm_kb') + vals('commit', 'check', 'daemon_vmhwm_kb')
    row('', 'peak RSS of the mount daemon (VmHWM after the last commit)', [max(h) / 1024] if h else [], 'MiB')
    c = vals('commit', 'check', 'cand_hwm_kb')
    row('b', 'peak RSS of `tusk check-candidate` (largest VmHWM polled)', [max(c) / 1024] if c else [], 'MiB')

    print('## One-file commit with and without a check, %s files\n' % '{:,}'.format(n))
    print('| row | what (median, min–max over %d rounds) | value | target |' % P['runs'])
    print('|---|---|---|---|')
    print('\n'.join(rows))
    imp = R.get('import', 'tusk')
    print()
    if imp:
        print('Import of the %s files into the empty store (once, not a row): %s wall, %s CPU, peak RSS %.0f MiB; '
              '`%s`.' % ('{:,}'.format(n), fmt_s(imp[0]['wall_s']), fmt_s(imp[0]['cpu_s']), imp[0]['maxrss_kb'] / 1024,
                         imp[0]['out'][:200]))
    timed = [r for r in recs if r['label'] == 'commit' and 'load1' in r]
    if timed:
        loads = [r['load1'] for r in timed]
        oth = [r['others_cpu_s'] / max(r['wall_s'], 1e-6) for r in timed]
        print('Machine load during the commits: 1-minute load average %.2f median (max %.2f) on %d CPUs; other '
              'processes used %.2f CPUs median (max %.2f) while a commit ran.%s' % (
                  statistics.median(loads), max(loads), P['nproc'], statistics.median(oth), max(oth),
                  '  **Noisy**: other processes used more than half a CPU during some commit; compare the '
                  'per-round differences and the CPU rows, and re-run on a quiet machine.' if max(oth) > 0.5 else ''))
    print('Order: odd rounds a then b, even rounds b then a; the check is added (`tusk check add`) before each b and '
          'removed before each a (not timed).  Page cache %s.' % (
              'dropped before every timed command (COLD=1)' if P['cold'] else 'not dropped (COLD=0): warm'))
    if n != 1000000:
        print('The target is the issue\'s for 1,000,000 files; this run measured %s.' % '{:,}'.format(n))
    print('\n'.join(status_lines(recs, failed, 'phases', 'commit output, the committed line read back, '
                                 'the checks recorded in the commit')))
    return 0


if __name__ == '__main__':
    sys.exit(main(__doc__, {'time': cmd_time, 'alone': cmd_alone},
                  {'pick': cmd_pick, 'report': cmd_report, 'checks-of': cmd_checks_of}))
PYEOF

RES=$OUT/results.jsonl
CMDLOG=$OUT/commands.log
: >"$RES"
COLD_ARG=(); ((COLD)) && COLD_ARG=(--cold)
# timed LABEL PEER ROUND TIMEOUT -- CMD...: one timed command (the daemon's CPU and children
# watched when MOUNT_PID is set); its exit status in TRC (always returns 0)
timed() {
  local label=$1 peer=$2 round=$3 to=$4 dm=(); shift 5
  [[ -z ${MOUNT_PID:-} ]] || dm=(--daemon "$MOUNT_PID" --poll-ms "$POLL_MS")
  TRC=0
  { $PY "$HLP" time --out "$RES" --label "$label" --peer "$peer" --round "$round" "${COLD_ARG[@]}" \
      --timeout "$to" --log "$CMDLOG" "${dm[@]}" -- "$@" 2>&1 | tee -a "$OUT/run.log" >&2; } || TRC=$?
  ((TRC == 0)) || TRC=$($PY -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1].get("rc", 1))' "$RES")
  return 0
}
why() { log "$*"; echo "$*" >"$OUT/.why"; }
record() { $PY "$HLP" record --out "$RES" --label "$1" --peer "$2" --round "$3" --value "$4"; }
# verify PEER ROUND WHAT STATUS [DETAIL]: a check's result (0 = OK); never fails the phase
verify() {
  if [[ $4 == 0 ]]; then record verify "$1" "$2" OK
  else record verify "$1" "$2" "$3 FAILED${5:+: $5}"; log "VERIFY FAILED: $1 round $2: $3${5:+: $5}"; fi
}
last_err() { $PY "$HLP" last-err "$RES"; }

# mount_store: background whole-store mount on $SMNT; sets MOUNT_PID (the daemon)
mount_store() {
  local rc=0
  mkdir -p "$SMNT"
  echo "== tusk mount $SMNT" >>"$CMDLOG"
  timeout "$TUSK_MOUNT_TIMEOUT" "$TUSK_BIN" --store "$ST" mount --log "$OUT/daemon.log" "${MOUNT_ARGS[@]}" "$SMNT" \
    </dev/null >>"$CMDLOG" 2>&1 || rc=$?
  if ((rc != 0)); then
    why "tusk mount $SMNT failed (status $rc$( ((rc == 124)) && echo ": no answer within $TUSK_MOUNT_TIMEOUT s")): $(tail -n 1 "$CMDLOG")"
    return 1
  fi
  wait_daemon "$SMNT" || return 1
  log "   mounted $ST on $SMNT (daemon pid $MOUNT_PID)"
}

# set_check on|off: the check `changed` defined (and trusted: `tusk check add` trusts what it
# adds) or not; not timed
set_check() {
  if [[ $1 == on ]]; then
    tk check add files changed -- "${CHECK_ARGV[@]}" >>"$CMDLOG" 2>&1
    tk check list files >"$NATIVE/list.txt" 2>&1
    if ! grep -q '^changed ' "$NATIVE/list.txt" || grep -qi 'not trusted' "$NATIVE/list.txt"; then
      why "tusk check add did not give a trusted check: $(head -c 300 "$NATIVE/list.txt")"
      return 1
    fi
  else
    tk check list files >"$NATIVE/list.txt" 2>&1 || true
    grep -q '^changed ' "$NATIVE/list.txt" || return 0
    tk check remove files changed >>"$CMDLOG" 2>&1
  fi
}

# one_commit PEER ROUND PATH: append a line to PATH through the workspace, time the commit,
# verify it
one_commit() {
  local peer=$1 r=$2 p=$3 line ok got want
  line="check_bench round $r $peer $(date +%s.%N)"
  printf '\n%s\n' "$line" >>"$WS/$p"     # the files are random bytes: a line of its own
  timed commit "$peer" "$r" "$STEP_TIMEOUT" -- "$TUSK_BIN" --store "$ST" commit files@main -m "check_bench r$r $peer: $p"
  if ((TRC != 0)); then
    verify "$peer" "$r" "commit" 1 "exit $TRC: $(last_err)"
    return 0
  fi
  ok=0; [[ $($PY "$HLP" last-out "$RES") == *"1 changed"* ]] || ok=1
  verify "$peer" "$r" "commit says 1 changed" $ok "$($PY "$HLP" last-out "$RES")"
  got=$(tk cat files@main "$p" 2>>"$CMDLOG" | tail -n 1 | tr -d '\0') || true
  ok=0; [[ $got == "$line" ]] || ok=1
  verify "$peer" "$r" "the appended line committed" $ok "last line '$got'"
  tk show --json files@main >"$NATIVE/show.json" 2>>"$CMDLOG" || true
  got=$($PY "$HLP" checks-of "$NATIVE/show.json" 2>>"$CMDLOG" | tr '\n' ';') || true
  if [[ $peer == check ]]; then
    want="changed passed"
    ok=0; [[ $got == "$want "*";" ]] || ok=1
    verify "$peer" "$r" "the commit records the check as passed" $ok "checks: '$got'"
    ((ok)) || record check_ms check "$r" "$(echo "$got" | awk '{print $3}' | tr -d ';')"
  else
    ok=0; [[ -z $got ]] || ok=1
    verify "$peer" "$r" "the commit records no checks" $ok "checks: '$got'"
  fi
}

# ---------------------------------------------------------------- the phase
phase_commits() {
  local r i p peer
  if [[ ! -f $TREE.manifest.json ]]; then
    log "   generating $FILES_N files of 1-4 KiB in $((FILES_N >= 2000 ? FILES_N / 1000 : 1)) directories: $TREE" \
        "(about 10 s per 100,000 files)"
    rm -rf "$TREE"
    $PY "$GEN" gen-files "$TREE" "$FILES_N" "$SEED" 2>&1 | tee -a "$OUT/run.log" >&2
  fi
  tk init "${INIT_ARGS[@]}" >>"$CMDLOG" 2>&1
  tk dataset create files >>"$CMDLOG" 2>&1
  log "   importing $FILES_N files into files@main$( ((FILES_N >= 200000)) && echo \
      " (at this size the import takes a while: about 2 min for 1,000,000 files on the 2-core development VM)")"
  timed import tusk 0 "$IMPORT_TIMEOUT" -- "$TUSK_BIN" --store "$ST" import "$TREE" files@main -m base
  ((TRC == 0)) || { why "tusk import failed: $(last_err)"; return 1; }
  mount_store
  [[ -d $WS ]] || { why "no workspace directory $WS in the mount"; return 1; }
  $PY "$HLP" pick "$FILES_N" $((2 * RUNS)) "$SEED" >"$NATIVE/paths.txt"
  mapfile -t PATHS <"$NATIVE/paths.txt"
  log "   the check command alone, $CHECK_ALONE_N times"
  $PY "$HLP" alone --out "$RES" --n "$CHECK_ALONE_N" -- "${CHECK_ARGV[@]}" 2>&1 | tee -a "$OUT/run.log" >&2
  i=0
  for r in $(seq 1 "$RUNS"); do
    log "-- round $r/$RUNS: one-file commit $( ((r % 2)) && echo 'without, then with' || echo 'with, then without') the check"
    for peer in $( ((r % 2)) && echo "nocheck check" || echo "check nocheck"); do
      p=${PATHS[i]}; i=$((i + 1))
      if [[ $peer == check ]]; then set_check on; else set_check off; fi
      one_commit "$peer" "$r" "$p"
      if [[ $peer == check ]]; then
        timed checkrun check "$r" "$STEP_TIMEOUT" -- "$TUSK_BIN" --store "$ST" check run files@main
      fi
    done
  done
  set_check off
  log "   daemon $MOUNT_PID peak RSS $(( $($PY "$HLP" vmhwm "$MOUNT_PID") / 1024 )) MiB; unmounting"
  tk umount "$SMNT" >>"$CMDLOG" 2>&1 || log "tusk umount $SMNT failed"
  wait_unmounted "$SMNT" "$MOUNT_PID"
  record store_bytes tusk 0 "$(du -sb "$ST" | cut -f1)"
}

# ---------------------------------------------------------------- header, run, report
{
  echo "# tusk check overhead on a one-file workspace commit"
  echo
  bench_info "tree and store on that file system"
  echo "- load at the start: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; $(nproc) CPUs)"
  echo "- dataset: $(printf "%'d" "$FILES_N") files of 1-4 KiB (random bytes) in" \
       "$((FILES_N >= 2000 ? FILES_N / 1000 : 1)) directories (\`$TREE\`), imported as \`files@main\`;" \
       "whole-store mount, workspace \`$WS\`"
  echo "- the check: \`tusk check add files changed -- sh -c 'wc -l < \"\$TUSK_CHECK_CHANGED\" >/dev/null'\`"
  echo
} >"$OUT/header.md"
cat "$OUT/header.md" >&2
log "check bench -> $OUT (about $need_mib MiB of disk needed, $avail_mib MiB free)"
cat >"$OUT/params.json" <<EOF
{"files_n": $FILES_N, "runs": $RUNS, "seed": $SEED, "cold": $COLD, "nproc": $(nproc), "limit_s": $LIMIT_S,
 "poll_ms": $POLL_MS, "check_alone_n": $CHECK_ALONE_N,
 "check_cmd": "sh -c 'wc -l < \\"\$TUSK_CHECK_CHANGED\\" >/dev/null'"}
EOF

log "== $FILES_N files, $RUNS rounds"
run_group PHASE commits phase_commits

{
  cat "$OUT/header.md"
  $PY "$HLP" report "$OUT"
  echo
  echo "- load at the end: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
  echo
  echo "Total benchmark time $((SECONDS - T0)) s.  Raw records: results.jsonl; progress: run.log;" \
       "output of every timed command: commands.log; daemon log (with the checks' stderr): daemon.log."
} >"$OUT/results.md"
cat "$OUT/results.md"
log "results: $OUT/results.md"
