#!/bin/bash
# Write benchmark of tusk branch workspaces against the same writes on the local disk.
#
#   tools/bench/workspace_bench.sh                                   # SCALE=1 SCALE2=1 RUNS=3: the real figures
#   SCALE=0.05 SCALE2=0.05 RUNS=1 tools/bench/workspace_bench.sh     # smoke test, ~1 min
#   TESTS="many big" RUNS=5 tools/bench/workspace_bench.sh           # commit rows only
#
# Rows (see README.md, "workspace_bench.sh"):
#   seq    4 files x 256 MiB x SCALE written in 1 MiB blocks + fsync, native dir vs
#          MOUNT/seq/main/ of a whole-store `tusk mount` (fresh store per round); MB/s.
#          Then `tusk commit` of them vs `tusk import` of the native dir (empty store).
#   untar  tar -xf of 50,000 x SCALE files of 1-8 KiB in 100 dirs, then sync; s, files/s.
#          Then `tusk commit` vs `tusk import` of the native dir.
#   many   dataset of 200,000 x SCALE2 tiny files (imported once per run): change one file
#          through the workspace, time `tusk status` and `tusk commit`; native baseline:
#          the same change on the native tree and `tusk import` of that tree after it.
#   big    dataset of one 4 GiB x SCALE file: overwrite 1 MiB in the middle with dd, time
#          status and commit, parse "new data stored"; same native baseline.
#   + the mount daemons' peak RSS (VmHWM).
# Every timed step starts with `sync; echo 3 > /proc/sys/vm/drop_caches`.  The report
# (markdown: medians, min-max, tusk/native) goes to stdout and to
# $BENCH_ROOT/results/<timestamp>-workspace/results.md.  Needs root and /dev/fuse.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

SCALE=${SCALE:-1}
SCALE2=${SCALE2:-1}
RUNS=${RUNS:-3}
SEED=${SEED:-42}
TESTS=${TESTS:-"seq untar many big"}
# absolute and without symlinks: leftover daemons are found by "$BENCH_ROOT/mnt/" in their argv
BENCH_ROOT=$(realpath -m "${BENCH_ROOT:-/tmp/tusk-wsbench}")
TUSK_BIN=${TUSK_BIN:-$REPO/build/tusk}
[[ $TUSK_BIN == */* ]] && TUSK_BIN=$(realpath -m "$TUSK_BIN")
TUSK_INIT_ARGS=${TUSK_INIT_ARGS:-}
TUSK_MOUNT_ARGS=${TUSK_MOUNT_ARGS:-}
TUSK_MOUNT_TIMEOUT=${TUSK_MOUNT_TIMEOUT:-120}
KEEP_STORES=${KEEP_STORES:-0}
ALLOW_ANY_FS=${ALLOW_ANY_FS:-0}
PY=${PY:-/usr/bin/python3}
CMDLINE="SCALE=$SCALE SCALE2=$SCALE2 RUNS=$RUNS SEED=$SEED TESTS='$TESTS' BENCH_ROOT=$BENCH_ROOT TUSK_BIN=$TUSK_BIN${TUSK_INIT_ARGS:+ TUSK_INIT_ARGS='$TUSK_INIT_ARGS'}${TUSK_MOUNT_ARGS:+ TUSK_MOUNT_ARGS='$TUSK_MOUNT_ARGS'} $0${*:+ $*}"
read -r -a INIT_ARGS <<<"$TUSK_INIT_ARGS"
read -r -a MOUNT_ARGS <<<"$TUSK_MOUNT_ARGS"

DATA=$BENCH_ROOT/data           # generated inputs, reused across runs
NATIVE=$BENCH_ROOT/native       # native write targets (emptied after each step)
STORES=$BENCH_ROOT/stores       # this run's stores (deleted on exit unless KEEP_STORES=1)
MNT=$BENCH_ROOT/mnt
OUT=''
TESTPID=''                      # the running test (leader of its own process group)

. "$HERE/lib/basics.sh"   # die, log, ensure_packages, take_lock, check_fs, check_free, copy_tusk_bin, bench_info
has_test() { [[ " $TESTS " == *" $1 "* ]]; }
tk() { local st=$1; shift; "$TUSK_BIN" --store "$st" "$@"; }

# ---------------------------------------------------------------- arguments, sizes
[[ $EUID -eq 0 ]] || die "must run as root (drop_caches, FUSE mounts)"
for v in SCALE SCALE2; do
  [[ ${!v} =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] && awk -v x="${!v}" 'BEGIN{exit !(x > 0)}' \
    || die "$v must be a positive number, got '${!v}'"
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ $SEED =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, got '$SEED'"
for t in $TESTS; do
  case $t in seq|untar|many|big) ;; *) die "unknown test '$t' in TESTS (seq untar many big)" ;; esac
done
[[ -c /dev/fuse ]] || die "/dev/fuse is missing (FUSE mounts impossible here)"
# scaled N MIN: round(N * s), at least MIN
scaled() { awk -v n="$1" -v s="$2" -v m="$3" 'BEGIN{v = int(n * s + 0.5); if (v < m) v = m; print v}'; }
SEQ_FILES=4
SEQ_MIB=$(scaled 256 "$SCALE" 1)                # per file
UNTAR_N=$(scaled 50000 "$SCALE" 100)
UNTAR_DIRS=100
MANY_N=$(scaled 200000 "$SCALE2" 1000)
MANY_DIRS=200
BIG_MIB=$(scaled 4096 "$SCALE" 8)
BIG_SEEK=$((BIG_MIB / 2))
TAR=$DATA/untar-n$UNTAR_N-seed$SEED.tar
MANY=$DATA/many-n$MANY_N
BIG=$DATA/big-m$BIG_MIB-seed$SEED               # a directory holding big.bin

# ---------------------------------------------------------------- packages, binary, lock
ensure_packages fuse3 openssl python3 tar coreutils
[[ -x $PY ]] || die "python interpreter $PY not found (set PY)"
[[ -x $TUSK_BIN ]] && "$TUSK_BIN" --help >/dev/null 2>&1 \
  || die "$TUSK_BIN missing or \`tusk --help\` fails (build it, or set TUSK_BIN)"

take_lock

# ---------------------------------------------------------------- cleanup (mounts, daemons, stores)
. "$HERE/lib/mounts.sh"   # mounts_under, daemon_pids, umount_all, stop_group, bench_cleanup, run_group, wait_daemon, wait_unmounted
cleanup() { bench_cleanup $? "the running test" "stores and native files kept" "$KEEP_STORES"; }
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
umount_all              # leftovers of an earlier run that was killed hard

# ---------------------------------------------------------------- file system, free space
check_fs        # sets FSTYPE; removes the last run's $NATIVE and $STORES
# Peak need (estimates, MiB): inputs not yet generated + the larger of the two phases:
# rows 1-2 per round (native copy, workspace upper, committed store, native-import store)
# and rows 3-4 (one store holding the imported data, small growth per round).
need_mib=$(awk -v seq=$((SEQ_FILES * SEQ_MIB)) -v un="$UNTAR_N" -v mn="$MANY_N" -v big="$BIG_MIB" -v runs="$RUNS" \
  -v t_seq="$(has_test seq && echo 1 || echo 0)" -v t_un="$(has_test untar && echo 1 || echo 0)" \
  -v t_many="$(has_test many && echo 1 || echo 0)" -v t_big="$(has_test big && echo 1 || echo 0)" \
  -v have_tar="$([[ -f $TAR ]] && echo 1 || echo 0)" -v have_many="$([[ -d $MANY ]] && echo 1 || echo 0)" \
  -v have_big="$([[ -f $BIG/big.bin ]] && echo 1 || echo 0)" 'BEGIN {
    inputs = t_un * (1 - have_tar) * un * 5.6 / 1024 + t_many * (1 - have_many) * mn * 4.5 / 1024 \
           + t_big * (1 - have_big) * big
    a = t_seq * 4 * seq + t_un * 4 * un * 7 / 1024
    b = t_many * mn * 2 / 1024 + t_big * (big + 4 * runs + 64)
    printf "%d\n", inputs + (a > b ? a : b) + 1024 }')
need_inodes=10000
has_test untar && need_inodes=$((need_inodes + 4 * UNTAR_N))
has_test many && need_inodes=$((need_inodes + 2 * MANY_N))
check_free "$need_mib" "$need_inodes" "SCALE=$SCALE SCALE2=$SCALE2" "lower SCALE/SCALE2"   # sets avail_mib

OUT=$BENCH_ROOT/results/$(date +%Y%m%d-%H%M%S)-workspace
mkdir -p "$OUT" "$DATA" "$NATIVE" "$STORES" "$MNT" "$BENCH_ROOT/bin"
T0=$SECONDS

copy_tusk_bin   # sets TUSK_ORIG, TUSK_BIN (the copy), tusk_version

# ---------------------------------------------------------------- the python helper (timing, data, report)
# lib/benchutil.py (shared with million_bench.sh) is copied beside it: the results directory
# re-renders its report on its own, and an edit of tools/bench during the run changes nothing
WB=$OUT/wsbench.py
cp "$HERE/lib/benchutil.py" "$OUT/benchutil.py"
cat >"$WB" <<'PYEOF'
#!/usr/bin/env python3
"""Helper of tools/bench/workspace_bench.sh (written by it into each results directory, beside
its copy of tools/bench/lib/benchutil.py).

  time --out F --label L --peer P --round R [--bytes B] [--files N] [--pid PID] [--cold]
       [--log FILE] -- CMD...      run CMD once (after sync + drop_caches if --cold);
                                   append a JSON record (wall, CPU, daemon CPU, rc, last line)
  seqwrite --out F --label L --peer P --round R --dir D --files N --mib M --seed S [--pid PID]
                                   generate N*M MiB of random data in memory, drop caches, then
                                   time writing N files in 1 MiB writes, fsync after each file
  gentar TAR N DIRS SEED | genmany DIR N DIRS | genbig FILE MIB SEED | genpatch FILE BYTES
  vmhwm PID                        peak RSS of PID in KiB
  record --out F --label L --peer P --round R --value V
  last-out RESULTS                 the output's last line of the latest timed command
  drop                             sync + drop_caches
  report OUTDIR                    the markdown table (OUTDIR/params.json, results.jsonl)
MB = 10^6 bytes; MiB = 2^20.
"""
import argparse, functools, io, os, statistics, subprocess, sys, tarfile, time

sys.dont_write_bytecode = True                                   # no __pycache__ in the results directory
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # benchutil.py is beside this file
import benchutil
from benchutil import (Records, add_daemon_cpu, append, cmd_drop, common, drop_caches, fmt_s, load_run,
                       log_command, main, parse_time, proc_cpu, prog, ratio, status_lines, time_record)

cell = functools.partial(benchutil.cell, adaptive=True)   # KiB/MiB: '%.2f' below 10, else '1,234'


def show(rec):
    extra = ''
    if rec.get('daemon_cpu_s') is not None:
        extra += ' daemon_cpu=%.2fs' % rec['daemon_cpu_s']
    if rec.get('bytes'):
        extra += ' %.1f MB/s' % (rec['bytes'] / rec['wall_s'] / 1e6)
    print('  %-6s %-14s r%d wall=%.4fs%s rc=%d%s' % (
        rec['peer'], rec['label'], rec['round'], rec['wall_s'], extra, rec['rc'],
        ('  | ' + rec['out']) if rec.get('out') else ''), file=sys.stderr)


def cmd_time(argv):
    a, cmd = parse_time(argv, ('--bytes', dict(type=float)), ('--files', dict(type=float)))
    if a.cold:
        drop_caches()
    d0 = proc_cpu(a.pid)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tail = b''
    while True:
        b = p.stdout.read(65536)
        if not b:
            break
        tail = (tail + b)[-65536:]
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.monotonic()
    p.returncode = os.waitstatus_to_exitcode(status)
    d1 = proc_cpu(a.pid)
    text = tail.decode(errors='replace')
    lines = [l for l in text.splitlines() if l.strip()]
    rec = time_record(a, cmd, t0, t1, ru, p.returncode, lines)
    add_daemon_cpu(rec, d0, d1)
    if a.bytes is not None:
        rec['bytes'] = a.bytes
    if a.files is not None:
        rec['files'] = a.files
    if a.log:
        log_command(a.log, rec, text)
    append(a.out, rec)
    show(rec)
    if rec['rc'] != 0 and text:
        sys.stderr.write('  output of the failed command:\n' + text[-2000:] + '\n')
    return 0 if rec['rc'] == 0 else 1


def random_stream(seed, label):
    """Deterministic incompressible bytes: AES-128-CTR of zeros (openssl), about 1 GB/s."""
    return subprocess.Popen(['openssl', 'enc', '-aes-128-ctr', '-nosalt', '-pbkdf2',
                             '-pass', 'pass:tusk-wsbench-%s-%s' % (label, seed), '-in', '/dev/zero'],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def read_random(n, seed, label):
    buf = bytearray(n)
    mv = memoryview(buf)
    p = random_stream(seed, label)
    got = 0
    while got < n:
        k = p.stdout.readinto(mv[got:])
        if not k:
            raise SystemExit('openssl stopped after %d bytes' % got)
        got += k
    p.kill()
    p.wait()
    return buf


def cmd_seqwrite(argv):
    ap = argparse.ArgumentParser(prog=prog('seqwrite'))
    common(ap)
    ap.add_argument('--dir', required=True)
    ap.add_argument('--files', type=int, required=True)
    ap.add_argument('--mib', type=int, required=True)
    ap.add_argument('--seed', default='42')
    a = ap.parse_args(argv)
    size = a.mib << 20
    data = memoryview(read_random(a.files * size, a.seed, 'seq'))
    drop_caches()
    d0 = proc_cpu(a.pid)
    t0 = time.monotonic()
    for i in range(a.files):
        fd = os.open(os.path.join(a.dir, 'f%d.bin' % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        part = data[i * size:(i + 1) * size]
        off = 0
        while off < size:
            off += os.write(fd, part[off:off + (1 << 20)])
        os.fsync(fd)
        os.close(fd)
    t1 = time.monotonic()
    d1 = proc_cpu(a.pid)
    rec = dict(label=a.label, peer=a.peer, round=a.round, wall_s=round(t1 - t0, 6), rc=0, cold=True,
               bytes=a.files * size, files=a.files)
    add_daemon_cpu(rec, d0, d1)
    append(a.out, rec)
    show(rec)
    return 0


def cmd_gentar(tar, n, dirs, seed):
    import random
    n, dirs = int(n), int(dirs)
    rng = random.Random(int(seed))
    sizes = [rng.randint(1024, 8192) for _ in range(n)]
    pool = bytes(read_random(8 << 20, seed, 'tar'))   # contents: random slices of 8 MiB of random data
    tmp = tar + '.tmp'
    with tarfile.open(tmp, 'w', format=tarfile.GNU_FORMAT) as t:
        d = -1
        for i in range(n):
            j = i * dirs // n
            if j != d:
                d = j
                ti = tarfile.TarInfo('d%03d' % d)
                ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
                t.addfile(ti)
            ti = tarfile.TarInfo('d%03d/f%06d.bin' % (d, i))
            ti.size, ti.mode, ti.mtime = sizes[i], 0o644, 1700000000 + i
            off = rng.randrange(0, len(pool) - sizes[i])
            t.addfile(ti, io.BytesIO(pool[off:off + sizes[i]]))
    os.rename(tmp, tar)
    return 0


def cmd_genmany(top, n, dirs):
    n, dirs = int(n), int(dirs)
    tmp = top + '.tmp'
    for j in range(dirs):
        os.makedirs(os.path.join(tmp, 'd%03d' % j), exist_ok=True)
    for i in range(n):
        with open(os.path.join(tmp, 'd%03d' % (i * dirs // n), 'f%06d.txt' % i), 'w') as f:
            f.write('file %d\n' % i)
    os.rename(tmp, top)
    return 0


def cmd_genbig(path, mib, seed):
    mib = int(mib)
    p = random_stream(seed, 'big')
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        for _ in range(mib):
            b = p.stdout.read(1 << 20)
            if len(b) != 1 << 20:
                raise SystemExit('openssl stopped early')
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    p.kill()
    p.wait()
    os.rename(tmp, path)
    return 0


def cmd_genpatch(path, n):
    with open(path, 'wb') as f:
        f.write(os.urandom(int(n)))
    return 0


# ------------------------------------------------------------------ report


def cmd_report(outdir):
    P, recs, failed = load_run(outdir)
    tests = P['tests'].split()
    R = Records(recs)
    get, walls, values = R.get, R.walls, R.values

    def rates(label, peer, key, scale):
        return [r[key] / r['wall_s'] / scale for r in get(label, peer) if r['wall_s'] > 0]

    def tar_sync(peer):
        return R.sums('untar_tar', 'untar_sync', peer)

    def files_per_s(peer):
        return [P['untar_files'] / w for w in tar_sync(peer)]

    def stored(label, peer):
        return R.stored(label, peer, 1 << 20)

    rows = []     # (test, '#', what, unit, native values, tusk values, ratio?, target text)
    seq_mb = P['seq_files'] * P['seq_mib']
    if 'seq' in tests:
        n, t = rates('seq_write', 'native', 'bytes', 1e6), rates('seq_write', 'tusk', 'bytes', 1e6)
        tgt = ''
        if n and t:
            r = statistics.median(t) / statistics.median(n)
            tgt = '≥ 0.50x: %s' % ('met' if r >= 0.5 else '**missed**')
        rows.append(('seq', '1', 'Sequential write, %d files × %d MiB, 1 MiB writes, fsync each file (MB/s)'
                     % (P['seq_files'], P['seq_mib']), 'MB/s', n, t, True, tgt))
        rows.append(('seq', '1+', '… then commit them: native = `tusk import` of the native dir into an empty '
                     'store, tusk = `tusk commit` (s)', 's', walls('seq_import', 'native'),
                     walls('seq_commit', 'tusk'), True, ''))
    if 'untar' in tests:
        N = P['untar_files']
        rows.append(('untar', '2', '`tar -xf` of %s files of 1–8 KiB in %d dirs (s)' % ('{:,}'.format(N), P['untar_dirs']),
                     's', walls('untar_tar', 'native'), walls('untar_tar', 'tusk'), True, ''))
        rows.append(('untar', '2', '… `sync` right after it (s)', 's', walls('untar_sync', 'native'),
                     walls('untar_sync', 'tusk'), True, ''))
        rows.append(('untar', '2', '… tar + sync (s)', 's', tar_sync('native'), tar_sync('tusk'), True, ''))
        rows.append(('untar', '2', '… files/s (tar + sync)', 'files/s', files_per_s('native'), files_per_s('tusk'), True, ''))
        rows.append(('untar', '2+', '… then commit them: native = `tusk import` of the native dir into an empty '
                     'store, tusk = `tusk commit` (s)', 's', walls('untar_import', 'native'),
                     walls('untar_commit', 'tusk'), True, ''))
    if 'many' in tests:
        N = '{:,}'.format(P['many_files'])
        rows.append(('many', '3', 'Dataset of %s tiny files: overwrite one file (`dd conv=fsync`) (s)' % N, 's',
                     walls('many_change', 'native'), walls('many_change', 'tusk'), True, ''))
        rows.append(('many', '3', '… `tusk status` (s)', 's', [], walls('many_status', 'tusk'), False, ''))
        c = walls('many_commit', 'tusk')
        tgt = ('< 1 s: %s' % ('met' if statistics.median(c) < 1 else '**missed**')) if c else ''
        rows.append(('many', '3', '… **commit** (s): tusk = `tusk commit` through the workspace; native = '
                     '`tusk import` of the changed native tree (no workspace)', 's',
                     walls('many_import', 'native'), c, True, tgt))
        rows.append(('many', '3', '… store growth by that commit / import (bytes added to packs/)', 'KiB',
                     values('many_import_growth', 'native', 1024.0), values('many_commit_growth', 'tusk', 1024.0), True, ''))
    if 'big' in tests:
        rows.append(('big', '4', 'Dataset of one %d MiB file: overwrite 1 MiB at MiB %d (`dd bs=1M conv=notrunc,fsync`) (s)'
                     % (P['big_mib'], P['big_seek']), 's', walls('big_change', 'native'), walls('big_change', 'tusk'), True, ''))
        rows.append(('big', '4', '… `tusk status` (s)', 's', [], walls('big_status', 'tusk'), False, ''))
        rows.append(('big', '4', '… **commit** (s): tusk = `tusk commit`; native = `tusk import` of the changed '
                     'native file (no workspace)', 's', walls('big_import', 'native'), walls('big_commit', 'tusk'), True, ''))
        rows.append(('big', '4', '… "new data stored" printed by that commit / import (1 MiB changed)', 'MiB',
                     stored('big_import', 'native'), stored('big_commit', 'tusk'), True, ''))
        rows.append(('big', '4', '… store growth by that commit / import (bytes added to packs/)', 'MiB',
                     values('big_import_growth', 'native', 1048576.0), values('big_commit_growth', 'tusk', 1048576.0), True, ''))
    for key, num in (('seq', '1'), ('untar', '2'), ('many', '3'), ('big', '4')):
        v = values('daemon_vmhwm_kb', key, 1024.0)
        if v and key in tests:
            rows.append(('rss', '5', 'Mount daemon peak RSS, VmHWM, at the end of row %s%s' % (
                num, ' (max over rounds, one mount each)' if len(v) > 1 else ''), 'MiB', [], [max(v)], False, ''))

    out = []
    out.append('| # | test | native disk | tusk workspace | tusk / native | target |')
    out.append('|---|---|---|---|---|---|')
    for test, num, what, unit, nat, tus, has_ratio, tgt in rows:
        if test in failed:
            out.append('| %s | %s | FAILED | FAILED | | |' % (num, what))
            continue
        out.append('| %s | %s | %s | %s | %s | %s |' % (num, what, cell(nat, unit), cell(tus, unit),
                   ratio(nat, tus) if has_ratio else '', tgt))
    out.append('')
    out.append('Median over %d round(s), min–max in parentheses.  "tusk / native" divides the medians: '
               'for MB/s and files/s above 1 means tusk is faster, for seconds below 1 means tusk is faster.  '
               'MB = 10^6 bytes.  Page cache dropped (`sync; echo 3 > drop_caches`) before every timed step; '
               'walls are whole processes (`tusk commit`: from the CLI\'s start to its exit).' % P['runs'])
    setup = []
    for label, what in (('many_setup', '%s tiny files' % '{:,}'.format(P['many_files'])),
                        ('big_setup', 'one %d MiB file' % P['big_mib'])):
        w = walls(label, 'tusk')
        if w:
            setup.append('`tusk import` of %s into an empty store: %s' % (what, fmt_s(w[0])))
    if setup:
        out.append('')
        out.append('Setup, once per run (not a row): ' + '; '.join(setup) + '.')
    out += status_lines(recs, failed, 'tests', 'commit outputs, staged change listed, changed bytes equal '
                        'through the mount')
    print('\n'.join(out))
    return 0


if __name__ == '__main__':
    sys.exit(main(__doc__, dict(time=cmd_time, seqwrite=cmd_seqwrite),
                  dict(gentar=cmd_gentar, genmany=cmd_genmany, genbig=cmd_genbig, genpatch=cmd_genpatch,
                       drop=cmd_drop, report=cmd_report)))
PYEOF

RES=$OUT/results.jsonl
CMDLOG=$OUT/commands.log
: >"$RES"
# timed LABEL PEER ROUND [time options] -- CMD...: cold-cache timing of one command
timed() {
  local label=$1 peer=$2 round=$3 rc=0; shift 3
  { $PY "$WB" time --out "$RES" --label "$label" --peer "$peer" --round "$round" --cold --log "$CMDLOG" "$@" 2>&1 \
      | tee -a "$OUT/run.log" >&2; } || rc=$?     # pipefail: the helper's status (it returns the command's)
  ((rc == 0)) || why "$peer $label round $round failed: $(last_out)"
  return "$rc"
}
# why TEXT: the reason the running test fails (shown in the report), also logged
why() { log "$*"; echo "$*" >"$OUT/.why"; }
record() { $PY "$WB" record --out "$RES" --label "$1" --peer "$2" --round "$3" --value "$4"; }
verify() {  # verify ROUND WHAT STATUS: a check's result (0 = OK) as a record; never fails the test
  if [[ $3 == 0 ]]; then record verify "$2" "$1" OK
  else record verify "$2" "$1" "FAILED"; log "VERIFY FAILED: $2 round $1"; fi
}
last_out() { $PY "$WB" last-out "$RES"; }   # the output's last line of the latest timed command

# mount_store STORE MNT NAME: background whole-store mount; sets MOUNT_PID (the daemon)
mount_store() {
  local st=$1 mnt=$2 name=$3 rc=0 _i
  mkdir -p "$mnt"
  echo "== tusk mount $mnt" >>"$CMDLOG"
  timeout "$TUSK_MOUNT_TIMEOUT" "$TUSK_BIN" --store "$st" mount --log "$OUT/daemon-$name.log" "${MOUNT_ARGS[@]}" "$mnt" \
    </dev/null >>"$CMDLOG" 2>&1 || rc=$?
  if ((rc != 0)); then
    why "tusk mount $mnt failed (status $rc$( ((rc == 124)) && echo ": no answer within $TUSK_MOUNT_TIMEOUT s")): $(tail -n 1 "$CMDLOG")"
    return 1
  fi
  wait_daemon "$mnt" || return 1
  log "mounted $st on $mnt (daemon pid $MOUNT_PID)"
}
# umount_store STORE MNT PID: `tusk umount`, then wait for the daemon to exit
umount_store() {
  tk "$1" umount "$2" >>"$CMDLOG" 2>&1 || log "tusk umount $2 failed"
  wait_unmounted "$2" "$3"
}
rss_record() {  # rss_record KEY ROUND PID
  local kb; kb=$($PY "$WB" vmhwm "$3" 2>/dev/null) || return 0
  record daemon_vmhwm_kb "$1" "$2" "$kb"
  log "   daemon $3 peak RSS $((kb / 1024)) MiB"
}
packs_bytes() { du -sb "$1/packs" | cut -f1; }
# timed_growth STORE LABEL PEER ROUND [time options] -- CMD...: timed, plus the bytes the
# store's packs/ grew by (an independent check of "new data stored")
timed_growth() {
  local st=$1 b0; shift
  b0=$(packs_bytes "$st")
  timed "$@"
  record "$1_growth" "$2" "$3" $(( $(packs_bytes "$st") - b0 ))
}
new_store() {  # new_store DIR DATASET...
  local st=$1 d; shift
  rm -rf "$st"
  tk "$st" init "${INIT_ARGS[@]}" >>"$CMDLOG" 2>&1
  for d in "$@"; do tk "$st" dataset create "$d" >>"$CMDLOG" 2>&1; done
}

# ---------------------------------------------------------------- inputs (generated once, reused)
gen_inputs() {
  local t
  if has_test untar && [[ ! -f $TAR ]]; then
    t=$SECONDS; log "generating $TAR ($UNTAR_N files of 1-8 KiB in $UNTAR_DIRS dirs)"
    rm -f "$TAR.tmp"; $PY "$WB" gentar "$TAR" "$UNTAR_N" "$UNTAR_DIRS" "$SEED"
    log "   done in $((SECONDS - t)) s, $(du -h "$TAR" | cut -f1)"
  fi
  if has_test many && [[ ! -d $MANY ]]; then
    t=$SECONDS; log "generating $MANY ($MANY_N tiny files in $MANY_DIRS dirs)"
    rm -rf "$MANY.tmp"; $PY "$WB" genmany "$MANY" "$MANY_N" "$MANY_DIRS"
    log "   done in $((SECONDS - t)) s"
  fi
  if has_test big && [[ ! -f $BIG/big.bin ]]; then
    t=$SECONDS; log "generating $BIG/big.bin ($BIG_MIB MiB of random data)"
    mkdir -p "$BIG"; rm -f "$BIG/big.bin.tmp"; $PY "$WB" genbig "$BIG/big.bin" "$BIG_MIB" "$SEED"
    log "   done in $((SECONDS - t)) s"
  fi
}

# ---------------------------------------------------------------- rows 1-2: seq, untar (fresh stores each round)
# phase_seq ROUND / phase_untar ROUND: a fresh store (dataset, mounted) for the workspace and
# a fresh one for the native baseline's `tusk import`; unmounted and deleted at the end.
phase_seq() {
  local r=$1 st=$STORES/seq nst=$STORES/seq-native mnt=$MNT/seq pid ok
  new_store "$st" seq
  new_store "$nst" seq
  mount_store "$st" "$mnt" "seq-r$r"
  pid=$MOUNT_PID
  log "-- round $r: seq write ($SEQ_FILES x $SEQ_MIB MiB)"
  rm -rf "$NATIVE/seq"; mkdir -p "$NATIVE/seq"
  $PY "$WB" seqwrite --out "$RES" --label seq_write --peer native --round "$r" \
    --dir "$NATIVE/seq" --files "$SEQ_FILES" --mib "$SEQ_MIB" --seed "$SEED" 2>&1 | tee -a "$OUT/run.log" >&2
  $PY "$WB" seqwrite --out "$RES" --label seq_write --peer tusk --round "$r" --pid "$pid" \
    --dir "$mnt/seq/main" --files "$SEQ_FILES" --mib "$SEQ_MIB" --seed "$SEED" 2>&1 | tee -a "$OUT/run.log" >&2
  timed seq_commit tusk "$r" --pid "$pid" -- "$TUSK_BIN" --store "$st" commit seq@main -m "seq r$r"
  ok=0; [[ $(last_out) == "committed "*": $SEQ_FILES changed;"* ]] || ok=1; verify "$r" seq_commit $ok
  timed seq_import native "$r" -- "$TUSK_BIN" --store "$nst" import "$NATIVE/seq" seq@main -m "seq r$r"
  ok=0; cmp -s "$NATIVE/seq/f0.bin" "$mnt/seq/main/f0.bin" || ok=1; verify "$r" seq_content $ok
  rm -rf "$NATIVE/seq"
  rss_record seq "$r" "$pid"
  umount_store "$st" "$mnt" "$pid"
  rm -rf "$st" "$nst"
}
phase_untar() {
  local r=$1 st=$STORES/untar nst=$STORES/untar-native mnt=$MNT/untar pid n ok
  new_store "$st" untar
  new_store "$nst" untar
  mount_store "$st" "$mnt" "untar-r$r"
  pid=$MOUNT_PID
  log "-- round $r: untar ($UNTAR_N files)"
  rm -rf "$NATIVE/untar"; mkdir -p "$NATIVE/untar"
  timed untar_tar native "$r" --files "$UNTAR_N" -- tar -xf "$TAR" -C "$NATIVE/untar"
  timed untar_sync native "$r" -- sync
  timed untar_tar tusk "$r" --files "$UNTAR_N" --pid "$pid" -- tar -xf "$TAR" -C "$mnt/untar/main"
  timed untar_sync tusk "$r" --pid "$pid" -- sync
  timed untar_commit tusk "$r" --pid "$pid" -- "$TUSK_BIN" --store "$st" commit untar@main -m "untar r$r"
  n=$(sed -n 's/^committed .*: \([0-9]*\) changed;.*/\1/p' <<<"$(last_out)")
  ok=0; [[ -n $n ]] && ((n >= UNTAR_N)) || ok=1; verify "$r" untar_commit $ok
  timed untar_import native "$r" -- "$TUSK_BIN" --store "$nst" import "$NATIVE/untar" untar@main -m "untar r$r"
  rm -rf "$NATIVE/untar"
  rss_record untar "$r" "$pid"
  umount_store "$st" "$mnt" "$pid"
  rm -rf "$st" "$nst"
}

# ---------------------------------------------------------------- rows 3-4: many, big (one store per test and run)
# The dataset is imported once into DS@main (the workspace) and branched to DS@native, which
# the native baseline re-imports after each round's change (the importer skips unchanged
# files by their metadata, as an incremental `tusk import` would).
round_many() {
  local r=$1 st=$2 mnt=$3 pid=$4 rel ok
  # a different file each round, one in the middle of its directory
  local i=$(( (MANY_N / MANY_DIRS) * ((r - 1) % MANY_DIRS) + MANY_N / MANY_DIRS / 2 ))
  rel=d$(printf %03d $((i * MANY_DIRS / MANY_N)))/f$(printf %06d "$i").txt
  log "-- round $r: change $rel in the $MANY_N-file dataset"
  # different new contents on the two sides: neither branch dedups against the other's change
  printf 'round %d native %s\n' "$r" "$(date +%s.%N)" >"$BENCH_ROOT/patch-small-native"
  printf 'round %d tusk %s\n' "$r" "$(date +%s.%N)" >"$BENCH_ROOT/patch-small-tusk"
  timed many_change native "$r" -- dd if="$BENCH_ROOT/patch-small-native" of="$MANY/$rel" bs=64 conv=fsync status=none
  timed many_change tusk "$r" --pid "$pid" -- dd if="$BENCH_ROOT/patch-small-tusk" of="$mnt/many/main/$rel" bs=64 conv=fsync status=none
  timed many_status tusk "$r" --pid "$pid" -- "$TUSK_BIN" --store "$st" status many@main
  ok=0; [[ $(last_out) == "M  $rel" ]] || ok=1; verify "$r" many_status $ok
  timed_growth "$st" many_commit tusk "$r" --pid "$pid" -- "$TUSK_BIN" --store "$st" commit many@main -m "many r$r"
  ok=0; [[ $(last_out) == "committed "*": 1 changed;"* ]] || ok=1; verify "$r" many_commit $ok
  timed_growth "$st" many_import native "$r" -- "$TUSK_BIN" --store "$st" import "$MANY" many@native -m "many r$r"
  ok=0; cmp -s "$BENCH_ROOT/patch-small-tusk" "$mnt/many/main/$rel" || ok=1; verify "$r" many_content $ok
}
round_big() {
  local r=$1 st=$2 mnt=$3 pid=$4 f=big.bin ok
  log "-- round $r: overwrite 1 MiB at MiB $BIG_SEEK of the $BIG_MIB MiB file"
  # different random 1 MiB on the two sides (one store: no dedup between the two changes)
  $PY "$WB" genpatch "$BENCH_ROOT/patch-1m-native" $((1 << 20))
  $PY "$WB" genpatch "$BENCH_ROOT/patch-1m-tusk" $((1 << 20))
  timed big_change native "$r" -- dd if="$BENCH_ROOT/patch-1m-native" of="$BIG/$f" bs=1M seek="$BIG_SEEK" count=1 conv=notrunc,fsync status=none
  timed big_change tusk "$r" --pid "$pid" -- dd if="$BENCH_ROOT/patch-1m-tusk" of="$mnt/big/main/$f" bs=1M seek="$BIG_SEEK" count=1 conv=notrunc,fsync status=none
  timed big_status tusk "$r" --pid "$pid" -- "$TUSK_BIN" --store "$st" status big@main
  timed_growth "$st" big_commit tusk "$r" --pid "$pid" -- "$TUSK_BIN" --store "$st" commit big@main -m "big r$r"
  ok=0; [[ $(last_out) == "committed "*": 1 changed;"* ]] || ok=1; verify "$r" big_commit $ok
  timed_growth "$st" big_import native "$r" -- "$TUSK_BIN" --store "$st" import "$BIG" big@native -m "big r$r"
  ok=0
  cmp -s -n $((1 << 20)) -i $((BIG_SEEK << 20)):0 "$mnt/big/main/$f" "$BENCH_ROOT/patch-1m-tusk" || ok=1
  [[ $(stat -c %s "$mnt/big/main/$f") == $((BIG_MIB << 20)) ]] || ok=1
  verify "$r" big_content $ok
}
# phase_commit many|big: store, import once, branch, mount, RUNS rounds, peak RSS, umount
phase_commit() {
  local t=$1 st=$STORES/$1 mnt=$MNT/$1 src pid r what
  if [[ $t == many ]]; then src=$MANY what="$MANY_N files"; else src=$BIG what="$BIG_MIB MiB"; fi
  new_store "$st" "$t"
  log "-- setup: import $src ($what) into $t@main, branch $t@native for the native baseline"
  timed "${t}_setup" tusk 0 -- "$TUSK_BIN" --store "$st" import "$src" "$t@main" -m setup
  tk "$st" branch "$t@native" main >>"$CMDLOG" 2>&1
  mount_store "$st" "$mnt" "$t"
  pid=$MOUNT_PID
  for r in $(seq 1 "$RUNS"); do "round_$t" "$r" "$st" "$mnt" "$pid"; done
  rss_record "$t" 0 "$pid"
  umount_store "$st" "$mnt" "$pid"
  [[ $KEEP_STORES == 1 ]] || rm -rf "$st"
}

# run_test NAME FUNC ARGS...: in a background subshell with its own process group (the
# EXIT trap can stop it at once) and with set -e active: the first failing command ends
# the test, which is then reported as FAILED; the other tests still run.
run_test() { run_group TEST "$@"; }

# ---------------------------------------------------------------- header, run, report
cat >"$OUT/params.json" <<EOF
{"scale": $SCALE, "scale2": $SCALE2, "runs": $RUNS, "seed": $SEED, "tests": "$TESTS",
 "seq_files": $SEQ_FILES, "seq_mib": $SEQ_MIB, "untar_files": $UNTAR_N, "untar_dirs": $UNTAR_DIRS,
 "many_files": $MANY_N, "many_dirs": $MANY_DIRS, "big_mib": $BIG_MIB, "big_seek": $BIG_SEEK}
EOF
{
  echo "# tusk workspace write benchmark (writes through a branch workspace vs the local disk)"
  echo
  bench_info "native dirs and stores on that same file system"
  sizes=()
  has_test seq && sizes+=("seq $SEQ_FILES × $SEQ_MIB MiB")
  has_test untar && sizes+=("untar $UNTAR_N files in $UNTAR_DIRS dirs ($TAR)")
  has_test many && sizes+=("many $MANY_N files in $MANY_DIRS dirs ($MANY)")
  has_test big && sizes+=("big $BIG_MIB MiB, 1 MiB overwritten at MiB $BIG_SEEK ($BIG/big.bin)")
  echo "- tests: $(IFS=';'; echo "${sizes[*]}" | sed 's/;/; /g')"
  echo
} >"$OUT/header.md"
cat "$OUT/header.md" >&2
log "workspace bench -> $OUT (about $need_mib MiB of disk needed, $avail_mib MiB free)"

gen_inputs
for t in seq untar; do
  has_test $t || continue
  for r in $(seq 1 "$RUNS"); do
    log "== $t, round $r/$RUNS"
    run_test "$t" "phase_$t" "$r"
  done
done
for t in many big; do
  has_test $t || continue
  log "== $t: $RUNS rounds on one store"
  run_test "$t" phase_commit "$t"
done

{
  cat "$OUT/header.md"
  $PY "$WB" report "$OUT"
  echo
  echo "Total benchmark time $((SECONDS - T0)) s.  Raw records: results.jsonl; progress: run.log;" \
       "output of every timed command: commands.log; daemon logs: daemon-*.log."
} >"$OUT/results.md"
cat "$OUT/results.md"
log "results: $OUT/results.md"
