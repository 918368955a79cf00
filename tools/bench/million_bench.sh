#!/bin/bash
# One million small files: import, listings through both mount views, a one-file commit,
# a 10-file diff, and the peak RSS of every tusk process (issue 13, item 4; measurement
# only, not in CI).
#
#   tools/bench/million_bench.sh                                   # N=1000000 RUNS=3: the real figures
#   N=10000 RUNS=1 tools/bench/million_bench.sh                    # smoke test, ~1 min
#   N=200000 RUNS=3 TUSK_BIN=/path/to/tusk tools/bench/million_bench.sh
#
# Dataset (generated once, reused: $BENCH_ROOT/data/n<N>-seed<SEED>): N files of 1-4 KiB
# (random sizes, random bytes from SEED), N/10 of them in one directory big/, the others in
# round((N - N/10) / 900) directories d0000/... of ~900 files (N=1,000,000: 1,000 x 900 +
# 100,000).  Rows (see README.md, "million_bench.sh"):
#   2  `tusk import` of the tree into an empty store vs `cp -a` (and `cp -a` + `sync`)
#      to a native directory on the same file system.
#   3  `find -type f | wc -l`, `ls -lR`, `ls -l` of big/: native tree vs a one-version
#      mount (`tusk mount m@v1 MNT`) vs the branch directory of a whole-store mount
#      (MNT/m/main/); the daemons' peak RSS after them.
#   4  overwrite one file through the branch directory, time `tusk status`, `tusk commit`.
#   5  change 10 files through it and commit; time `tusk diff` of the two versions.
#   6  peak RSS of every tusk CLI command (wait4 ru_maxrss) and daemon (VmHWM).
# Every timed step starts with `sync; echo 3 > /proc/sys/vm/drop_caches` (except the `sync`
# after `cp -a`).  Targets: no RSS above 256 MiB, listings within 2x native, one-file
# commit under 1 s; each printed PASS/FAIL.  The report (markdown: medians, min-max,
# tusk/native) goes to stdout and to $BENCH_ROOT/results/<timestamp>-million/results.md.
# Needs root and /dev/fuse.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

N=${N:-1000000}
RUNS=${RUNS:-3}
SEED=${SEED:-42}
# absolute and without symlinks: leftover daemons are found by "$BENCH_ROOT/mnt/" in their argv
BENCH_ROOT=$(realpath -m "${BENCH_ROOT:-/tmp/tusk-millionbench}")
TUSK_BIN=${TUSK_BIN:-$REPO/build/tusk}
[[ $TUSK_BIN == */* ]] && TUSK_BIN=$(realpath -m "$TUSK_BIN")
TUSK_INIT_ARGS=${TUSK_INIT_ARGS:-}
TUSK_MOUNT_ARGS=${TUSK_MOUNT_ARGS:-}
TUSK_MOUNT_TIMEOUT=${TUSK_MOUNT_TIMEOUT:-120}
STEP_TIMEOUT=${STEP_TIMEOUT:-7200}
KEEP=${KEEP:-0}
ALLOW_ANY_FS=${ALLOW_ANY_FS:-0}
PY=${PY:-/usr/bin/python3}
CMDLINE="N=$N RUNS=$RUNS SEED=$SEED BENCH_ROOT=$BENCH_ROOT TUSK_BIN=$TUSK_BIN${TUSK_INIT_ARGS:+ TUSK_INIT_ARGS='$TUSK_INIT_ARGS'}${TUSK_MOUNT_ARGS:+ TUSK_MOUNT_ARGS='$TUSK_MOUNT_ARGS'} KEEP=$KEEP $0${*:+ $*}"
read -r -a INIT_ARGS <<<"$TUSK_INIT_ARGS"
read -r -a MOUNT_ARGS <<<"$TUSK_MOUNT_ARGS"

STORES=$BENCH_ROOT/stores       # this run's store (deleted on exit unless KEEP=1)
ST=$STORES/million              # the store: dataset m, branch main, tags v1 and d0
NATIVE=$BENCH_ROOT/native       # targets of `cp -a`, one per round (deleted at the end)
MNT=$BENCH_ROOT/mnt
MNT_VER=$MNT/ver                # one-version mount: m@v1
MNT_ALL=$MNT/all                # whole-store mount: $MNT_ALL/m/main/ is the branch workspace
OUT=''
TESTPID=''                      # the running phase (leader of its own process group)

. "$HERE/lib/basics.sh"   # die, log, ensure_packages, take_lock, check_fs, check_free, copy_tusk_bin, bench_info
tk() { "$TUSK_BIN" --store "$ST" "$@"; }

# ---------------------------------------------------------------- arguments, layout
[[ $EUID -eq 0 ]] || die "must run as root (drop_caches, FUSE mounts)"
[[ $N =~ ^[1-9][0-9]*$ ]] && ((N >= 100)) || die "N must be an integer >= 100, got '$N'"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ $SEED =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, got '$SEED'"
[[ $KEEP == 0 || $KEEP == 1 ]] || die "KEEP must be 0 or 1, got '$KEEP'"
for v in TUSK_MOUNT_TIMEOUT STEP_TIMEOUT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (seconds), got '${!v}'"
done
[[ -c /dev/fuse ]] || die "/dev/fuse is missing (FUSE mounts impossible here)"
BIG_N=$((N / 10))                       # files in big/
SMALL_N=$((N - BIG_N))                  # files in d0000/ ...
DIRS=$(((SMALL_N + 450) / 900)); ((DIRS >= 1)) || DIRS=1
PER_DIR=$((SMALL_N / DIRS))
DATA=$BENCH_ROOT/data/n$N-seed$SEED     # the tree (cache, kept across runs)
# rel_of I: path of file I in the tree (the generator's layout)
rel_of() {
  if (($1 < SMALL_N)); then printf 'd%04d/f%07d.bin' $(($1 * DIRS / SMALL_N)) "$1"
  else printf 'big/f%07d.bin' "$1"; fi
}

# ---------------------------------------------------------------- packages, binary, lock
ensure_packages fuse3 python3 jq time coreutils findutils
[[ -x $PY ]] || die "python interpreter $PY not found (set PY)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "$PY is older than Python 3.9 (random.randbytes)"
[[ -x $TUSK_BIN ]] && "$TUSK_BIN" --help >/dev/null 2>&1 \
  || die "$TUSK_BIN missing or \`tusk --help\` fails (build it, or set TUSK_BIN)"

take_lock

# ---------------------------------------------------------------- cleanup (mounts, daemons, store)
. "$HERE/lib/mounts.sh"   # mounts_under, daemon_pids, umount_all, stop_group, bench_cleanup, run_group, wait_daemon, wait_unmounted
note_native() {
  if [[ -n $(ls -A "$NATIVE" 2>/dev/null) ]]; then
    log "deleting the \`cp -a\` copies in $NATIVE (slow where the file system is mounted with 'discard')"
  fi
}
cleanup() { bench_cleanup $? "the running phase" "store and native copy kept" "$KEEP" note_native; }
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
umount_all              # leftovers of an earlier run that was killed hard

# ---------------------------------------------------------------- file system, free space
check_fs        # sets FSTYPE; removes the last run's $NATIVE and $STORES
[[ -f $DATA.manifest.json && -d $DATA ]] && have_data=1 || have_data=0
# Estimates per file (ext4, 4 KiB blocks): the tree and each round's `cp -a` copy 4.2 KiB
# (one block + directory entries; the copies are all deleted at the end: deleting synced
# files one by one costs ~3 ms each on ext4 mounted with 'discard', so not between rounds),
# the store 3.5 KiB (2.5 KiB of incompressible data + packs, index and commit trees;
# measured ~3 KiB at N=20,000), + 1 GiB slack.
need_mib=$(awk -v n="$N" -v have="$have_data" -v runs="$RUNS" \
  'BEGIN { printf "%d\n", n * ((1 - have) * 4.2 + runs * 4.2 + 3.5) / 1024 + 1024 }')
need_inodes=$(( (1 - have_data + RUNS) * (N + DIRS + 10) + 10000 ))
check_free "$need_mib" "$need_inodes" "N=$N" "lower N"   # sets avail_mib

OUT=$BENCH_ROOT/results/$(date +%Y%m%d-%H%M%S)-million
mkdir -p "$OUT" "$BENCH_ROOT/data" "$NATIVE" "$STORES" "$MNT_VER" "$MNT_ALL" "$BENCH_ROOT/bin"
T0=$SECONDS

copy_tusk_bin   # sets TUSK_ORIG, TUSK_BIN (the copy), tusk_version

# ---------------------------------------------------------------- the python helper (timing, data, report)
# lib/benchutil.py (shared with workspace_bench.sh) is copied beside it: the results directory
# re-renders its report on its own, and an edit of tools/bench during the run changes nothing
MB=$OUT/millionbench.py
cp "$HERE/lib/benchutil.py" "$OUT/benchutil.py"
cat >"$MB" <<'PYEOF'
#!/usr/bin/env python3
"""Helper of tools/bench/million_bench.sh (written by it into each results directory, beside
its copy of tools/bench/lib/benchutil.py).

  time --out F --label L --peer P --round R [--pid PID] [--cold] [--timeout S] [--log FILE] -- CMD...
        run CMD once (after sync + drop_caches if --cold), in its own process group (killed
        after S seconds, rc 124); append a JSON record: wall, CPU, peak RSS of CMD (through
        /usr/bin/time -f %M: our own ru_maxrss would include the python fork before exec),
        daemon CPU of PID during it, rc, the output's last line
  gen DIR N BIG DIRS SEED     the tree: N files of 1-4 KiB of random bytes, the last BIG in
                              DIR/big/, the others in DIRS directories DIR/d0000/...
  patch FILE SEED             1-4 KiB of fresh random bytes
  vmhwm PID                   peak RSS of PID in KiB
  record --out F --label L --peer P --round R --value V
  last-out RESULTS            the output's last line of the latest timed command
  last-err RESULTS            its first line with "error", else its last line
  report OUTDIR               the markdown table (OUTDIR/params.json, results.jsonl)
MiB = 2^20 bytes.
"""
import json, os, random, signal, statistics, subprocess, sys, tempfile, threading, time

sys.dont_write_bytecode = True                                   # no __pycache__ in the results directory
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # benchutil.py is beside this file
from benchutil import (Records, add_daemon_cpu, append, cell, drop_caches, fmt_num, fmt_s, load_run,
                       log_command, main, parse_time, proc_cpu, ratio, ratio_v, run_group, status_lines, time_record)

RSS_TARGET_MIB = 256
LIST_TARGET = 2.0
COMMIT_TARGET_S = 1.0


def cmd_time(argv):
    a, cmd = parse_time(argv, ('--timeout', dict(type=float, default=7200)))
    if a.cold:
        drop_caches()
    # Output to a file, not a pipe: `tusk mount` leaves a daemon behind that must not hold
    # our pipe open.  Own process group: a timeout or our TERM stops the whole command.
    tmp = tempfile.TemporaryFile()
    rss = tempfile.NamedTemporaryFile(prefix='millionbench-rss-')
    d0 = proc_cpu(a.pid)
    t0, t1, rc, ru, timed_out = run_group(['/usr/bin/time', '-f', '%M', '-o', rss.name, '--'] + cmd, a.timeout,
                                          tmp, subprocess.STDOUT)
    d1 = proc_cpu(a.pid)
    tmp.seek(0)
    text = tmp.read().decode(errors='replace')
    lines = [l for l in text.splitlines() if l.strip()]
    # GNU time writes "Command exited with non-zero status N" etc. before the figure
    maxrss = next((int(l) for l in reversed(open(rss.name).read().split('\n')) if l.strip().isdigit()), 0)
    rss.close()
    rec = time_record(a, cmd, t0, t1, ru, rc, lines, maxrss_kb=maxrss)
    errs = [l for l in lines if 'error' in l.lower()]
    if rc != 0 and errs:
        rec['err'] = errs[0][:300]
    add_daemon_cpu(rec, d0, d1)
    if a.log:
        log_command(a.log, rec, text[-20000:], ' maxrss=%d KiB' % maxrss)
    append(a.out, rec)
    print('  %-7s %-12s r%d wall=%.4fs cpu=%.2fs rss=%.1fMiB%s rc=%d%s' % (
        rec['peer'], rec['label'], rec['round'], rec['wall_s'], rec['cpu_s'], maxrss / 1024,
        (' daemon_cpu=%.2fs' % rec['daemon_cpu_s']) if 'daemon_cpu_s' in rec else '', rc,
        ('  | ' + rec['out']) if rec['out'] else ''), file=sys.stderr)
    if rc != 0:
        sys.stderr.write('  %s\n' % ('timed out after %g s' % a.timeout if timed_out else
                                     'output of the failed command:\n' + text[-2000:]))
    return 0 if rc == 0 else 1


def cmd_gen(top, n, big, dirs, seed):
    n, big, dirs = int(n), int(big), int(dirs)
    small = n - big
    rng = random.Random(int(seed))
    tmp = top + '.tmp'
    if os.path.exists(tmp):
        subprocess.run(['rm', '-rf', tmp], check=True)
    names = ['d%04d' % j for j in range(dirs)]
    for d in names + ['big']:
        os.makedirs(os.path.join(tmp, d))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0)
    total = 0
    t0 = time.monotonic()
    for i in range(n):
        rel = ('%s/f%07d.bin' % (names[i * dirs // small], i)) if i < small else ('big/f%07d.bin' % i)
        data = rng.randbytes(rng.randint(1024, 4096))
        fd = os.open(os.path.join(tmp, rel), flags, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        total += len(data)
        if i and i % 100000 == 0:
            print('  %d files, %.0f s' % (i, time.monotonic() - t0), file=sys.stderr)
    # DIR.manifest.json, beside the tree (the tree holds exactly the N files), written
    # last: its presence marks a complete tree
    with open(top + '.manifest.tmp', 'w') as f:
        json.dump(dict(files=n, big_files=big, dirs=dirs, bytes=total, seed=int(seed),
                       layout='d0000..d%04d/f<i>.bin (%d files), big/f<i>.bin (%d files)' % (dirs - 1, small, big)), f)
    os.sync()
    os.rename(tmp, top)
    os.rename(top + '.manifest.tmp', top + '.manifest.json')
    return 0


def cmd_patch(path, seed):
    rng = random.Random('%s-%s-%s' % (seed, path, time.time_ns()))
    with open(path, 'wb') as f:
        f.write(rng.randbytes(rng.randint(1024, 4096)))
    return 0


# ------------------------------------------------------------------ report


def cmd_report(outdir):
    P, recs, failed = load_run(outdir)
    R = Records(recs)
    get, walls, sums, values = R.get, R.walls, R.sums, R.values

    def stored_kib(label, peer):
        return R.stored(label, peer, 1024)

    def rss_mib(label, peer):
        return [r['maxrss_kb'] / 1024 for r in recs if r['label'] == label and r['peer'] == peer and 'maxrss_kb' in r]

    verdicts = []     # (target, PASS/FAIL/n.a., detail)

    def verdict(ok):
        return 'n.a.' if ok is None else ('PASS' if ok else '**FAIL**')

    N, big = P['files'], P['big_files']
    nfmt = '{:,}'.format
    rows = []   # (phase, '#', what, native, tusk, ratio text, target text)
    # row 2: import vs cp -a
    imp = walls('import', 'tusk')
    cp, cps = walls('cp', 'native'), sums('cp', 'sync', 'native')
    rows.append(('import', '2', '`tusk import` of the tree into an empty store vs `cp -a` of it to a native '
                 'directory (s)', cell(cp, 's'), cell(imp, 's'), ratio(cp, imp), ''))
    rows.append(('import', '2', '… vs `cp -a` + `sync` (the import\'s commit is durable when it returns) (s)',
                 cell(cps, 's'), cell(imp, 's'), ratio(cps, imp), ''))
    # row 3: listings
    views = (('ver', '3a', 'one-version mount (`tusk mount m@v1 MNT`)'),
             ('ws', '3b', 'branch directory of a whole-store mount (`MNT/m/main/`)'))
    tests = (('find', '`find -type f | wc -l` of the tree'),
             ('lsR', '`ls -lR > /dev/null` of the tree'),
             ('lsbig', '`ls -l` of big/ alone (%s files)' % nfmt(big)))
    for peer, num, view in views:
        for t, what in tests:
            nat, tus = walls(t, 'native'), walls(t, peer)
            r = ratio_v(nat, tus)
            ok = None if r is None else r <= LIST_TARGET
            if 'list' in failed:
                ok = False
            verdicts.append(('listing within %gx native: %s, %s' % (LIST_TARGET, t, peer), ok,
                             '%.2fx' % r if r is not None else 'no figure'))
            rows.append(('list', num, '%s, %s (s)' % (what, view), cell(nat, 's'), cell(tus, 's'), ratio(nat, tus),
                         '≤ %gx: %s' % (LIST_TARGET, verdict(ok))))
    for peer, what in (('ver', 'one-version'), ('ws', 'whole-store')):
        rows.append(('list', '3', '`tusk mount` (%s) until it returns (s)' % what, '', cell(walls('mount', peer), 's'), '', ''))
    # row 4: one-file commit
    rows.append(('commit', '4', 'overwrite one file through the branch directory (`dd conv=fsync`, 1–4 KiB) (s)',
                 '', cell(walls('change', 'ws'), 's'), '', ''))
    rows.append(('commit', '4', '… `tusk status` (s)', '', cell(walls('status', 'ws'), 's'), '', ''))
    c = walls('commit', 'ws')
    ok = (statistics.median(c) < COMMIT_TARGET_S) if c else None
    if 'commit' in failed:
        ok = False
    verdicts.append(('one-file commit under %g s (median)' % COMMIT_TARGET_S, ok,
                     fmt_s(statistics.median(c)) + (', max ' + fmt_s(max(c)) if len(c) > 1 else '') if c else 'no figure'))
    rows.append(('commit', '4', '… **`tusk commit`** of that one file (s)', '', cell(c, 's'), '',
                 '< %g s: %s' % (COMMIT_TARGET_S, verdict(ok))))
    rows.append(('commit', '4', '… "new data stored" printed by that commit (file data, tree pages, commit)', '',
                 cell(stored_kib('commit', 'ws'), 'KiB'), '', ''))
    # row 5: diff
    rows.append(('commit', '5', '10 files changed through the branch directory, then `tusk commit` (setup, once) (s)', '',
                 cell(sums('change10', 'commit10', 'ws'), 's'), '', ''))
    rows.append(('commit', '5', '… "new data stored" printed by that commit of 10 files', '',
                 cell(stored_kib('commit10', 'ws'), 'KiB'), '', ''))
    rows.append(('commit', '5', '`tusk diff m@d0 m@main` (the two versions differ in 10 files) (s)', '',
                 cell(walls('diff', 'ws'), 's'), '', ''))
    # row 6: peak RSS
    rss_rows = []
    for label, peer, what in (('import', 'tusk', '`tusk import`'),
                              ('mount', 'ver', '`tusk mount m@v1` (the command, not the daemon)'),
                              ('mount', 'ws', '`tusk mount` whole store (the command)'),
                              ('mount', 'ws2', '`tusk mount` whole store, again for rows 4–5 (the command)'),
                              ('status', 'ws', '`tusk status`'),
                              ('commit', 'ws', '`tusk commit` (the command; the daemon commits)'),
                              ('commit10', 'ws', '`tusk commit` of 10 files (the command)'),
                              ('diff', 'ws', '`tusk diff`')):
        v = rss_mib(label, peer)
        if v:
            rss_rows.append((what + ', max over runs', max(v)))
    for label, what in (('vmhwm_ver_mounted', 'one-version mount daemon right after mounting'),
                        ('vmhwm_ver_listed', 'one-version mount daemon after the listings'),
                        ('vmhwm_ws_mounted', 'whole-store mount daemon right after mounting'),
                        ('vmhwm_ws_listed', 'whole-store mount daemon after the listings'),
                        ('vmhwm_ws2_done', 'whole-store mount daemon (mounted again) after rows 4–5')):
        v = values(label, 'daemon')
        if v:
            rss_rows.append((what + ' (VmHWM)', max(v) / 1024))
    for what, mib in rss_rows:
        ok = mib <= RSS_TARGET_MIB
        verdicts.append(('peak RSS ≤ %d MiB: %s' % (RSS_TARGET_MIB, what), ok, '%.1f MiB' % mib))
        rows.append(('rss', '6', 'peak RSS: ' + what, '', fmt_num(mib, 'MiB'), '',
                     '≤ %d MiB: %s' % (RSS_TARGET_MIB, verdict(ok))))

    out = []
    out.append('| # | measurement | native | tusk | tusk / native | target |')
    out.append('|---|---|---|---|---|---|')
    for phase, num, what, nat, tus, rat, tgt in rows:
        if phase in failed and tus == '—':
            tus = 'FAILED'
        out.append('| %s | %s | %s | %s | %s | %s |' % (num, what, nat, tus, rat, tgt))
    out.append('')
    out.append('Median over %d run(s), min–max in parentheses; "tusk / native" divides the medians (below 1: '
               'tusk is faster).  Page cache dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) before every '
               'timed step except the `sync` after `cp -a`; that also drops the kernel\'s FUSE dentries and '
               'attributes, not the daemons\' own caches.  Walls are whole processes; CLI peak RSS is '
               '`/usr/bin/time -f %%M` (max over runs), daemon peak RSS `VmHWM` from /proc/PID/status.' % P['runs'])
    notes = []
    st = values('store_bytes', 'tusk')
    if st:
        notes.append('store size after the import %.1f MiB (data %.1f MiB)' % (max(st) / 2**20, P['bytes'] / 2**20))
    imp_cpu = [r['cpu_s'] for r in get('import', 'tusk')]
    if imp_cpu:
        notes.append('`tusk import` CPU %s (user+sys, median)' % fmt_s(statistics.median(imp_cpu)))
    for peer, what in (('ver', 'one-version'), ('ws', 'whole-store')):
        dc = [r['daemon_cpu_s'] for r in recs if r.get('peer') == peer and r.get('label') in ('find', 'lsR', 'lsbig')
              and 'daemon_cpu_s' in r]
        if dc:
            notes.append('%s daemon CPU during its listings %s in all' % (what, fmt_s(sum(dc))))
    if notes:
        out.append('')
        out.append('Also: ' + '; '.join(notes) + '.')
    out.append('')
    out.append('Targets:')
    out.append('')
    for what, ok, detail in verdicts:
        out.append('- %s %s (%s)' % (verdict(ok), what, detail))
    allok = bool(verdicts) and all(ok for _, ok, _ in verdicts) and not failed
    out.append('')
    out.append('**Overall: %s**' % ('PASS' if allok else 'FAIL'))
    out += status_lines(recs, failed, 'phases', 'import and commit outputs, file counts through both mounts, '
                        'the changed path in `tusk status`, the changed bytes read back, the diff summary')
    print('\n'.join(out))
    return 0


if __name__ == '__main__':
    sys.exit(main(__doc__, dict(time=cmd_time), dict(gen=cmd_gen, patch=cmd_patch, report=cmd_report)))
PYEOF

RES=$OUT/results.jsonl
CMDLOG=$OUT/commands.log
: >"$RES"
# timed LABEL PEER ROUND [time options] -- CMD...: cold-cache timing of one command (no
# --cold for `sync`: pass WARM=1)
timed() {
  local label=$1 peer=$2 round=$3 rc=0 cold=--cold; shift 3
  [[ ${WARM:-0} == 1 ]] && cold=''
  { $PY "$MB" time --out "$RES" --label "$label" --peer "$peer" --round "$round" $cold \
      --timeout "$STEP_TIMEOUT" --log "$CMDLOG" "$@" 2>&1 | tee -a "$OUT/run.log" >&2; } || rc=$?
  ((rc == 0)) || why "$peer $label round $round failed: $(last_err)"
  return "$rc"
}
# why TEXT: the reason the running phase fails (shown in the report), also logged
why() { log "$*"; echo "$*" >"$OUT/.why"; }
record() { $PY "$MB" record --out "$RES" --label "$1" --peer "$2" --round "$3" --value "$4"; }
verify() {  # verify ROUND WHAT STATUS [DETAIL]: a check's result (0 = OK) as a record; never fails the phase
  if [[ $3 == 0 ]]; then record verify "$2" "$1" OK
  else record verify "$2" "$1" "FAILED${4:+: $4}"; log "VERIFY FAILED: $2 round $1${4:+: $4}"; fi
}
last_out() { $PY "$MB" last-out "$RES"; }   # the output's last line of the latest timed command
last_err() { $PY "$MB" last-err "$RES"; }   # its first line with "error", else its last line
vmhwm_record() {  # vmhwm_record LABEL PID
  local kb; kb=$($PY "$MB" vmhwm "$2" 2>/dev/null) || { log "cannot read VmHWM of pid $2"; return 0; }
  record "$1" daemon 0 "$kb"
  log "   $1: daemon $2 peak RSS $((kb / 1024)) MiB"
}

# mount_tusk PEER MNT [REF]: background `tusk mount` (timed, as row "mount"); sets MOUNT_PID
mount_tusk() {
  local peer=$1 mnt=$2 _i; shift 2
  mkdir -p "$mnt"
  STEP_TIMEOUT=$TUSK_MOUNT_TIMEOUT timed mount "$peer" 1 -- \
    "$TUSK_BIN" --store "$ST" mount --log "$OUT/daemon-$peer.log" "${MOUNT_ARGS[@]}" "$@" "$mnt" \
    || { why "tusk mount ${*:+$* }$mnt failed: $(last_err)"; return 1; }
  wait_daemon "$mnt" || return 1
  log "mounted ${*:-the whole store} on $mnt (daemon pid $MOUNT_PID)"
}
# umount_tusk MNT PID: `tusk umount`, then wait for the daemon to exit
umount_tusk() {
  "$TUSK_BIN" umount "$1" >>"$CMDLOG" 2>&1 || log "tusk umount $1 failed"
  wait_unmounted "$1" "$2"
}

# ---------------------------------------------------------------- row 1: the tree (not timed, reused)
phase_gen() {
  if [[ -f $DATA.manifest.json && -d $DATA ]]; then
    log "reusing $DATA ($(jq -r .layout "$DATA.manifest.json" 2>/dev/null || echo '?'))"
    return 0
  fi
  rm -rf "$DATA" "$DATA.manifest.json"
  local t=$SECONDS
  log "generating $DATA: $N files of 1-4 KiB ($SMALL_N in $DIRS dirs of ~$PER_DIR, $BIG_N in big/), seed $SEED"
  $PY "$MB" gen "$DATA" "$N" "$BIG_N" "$DIRS" "$SEED"
  record gen_s tree 0 $((SECONDS - t))
  log "   done in $((SECONDS - t)) s, $(du -sh "$DATA" | cut -f1)"
}

# ---------------------------------------------------------------- row 2: import vs cp -a
new_store() {
  rm -rf "$ST"
  tk init "${INIT_ARGS[@]}" >>"$CMDLOG" 2>&1
  tk dataset create m >>"$CMDLOG" 2>&1
}
phase_import() {
  local r ok
  for r in $(seq 1 "$RUNS"); do
    log "-- round $r/$RUNS: tusk import of $N files into an empty store, cp -a of them"
    new_store
    timed import tusk "$r" -- "$TUSK_BIN" --store "$ST" import "$DATA" m@main -m "import r$r"
    ok=0; [[ $(last_out) == "committed "*" to m@main: $N files,"* ]] || ok=1; verify "$r" import $ok "$(last_out)"
    record store_bytes tusk "$r" "$(du -sb "$ST" | cut -f1)"
    ((r == RUNS)) || rm -rf "$ST"          # the last store is the one mounted below
    rm -rf "$NATIVE/copy-r$r"
    timed cp native "$r" -- cp -a "$DATA" "$NATIVE/copy-r$r"
    WARM=1 timed sync native "$r" -- sync
  done
  tk tag m@v1 m@main >>"$CMDLOG" 2>&1
}

# ---------------------------------------------------------------- row 3: listings, native vs both mount views
phase_list() {
  local r t p dir cnt ok pid_ver pid_ws want
  [[ -d $ST ]] || { why "no store (the import failed)"; return 1; }
  mount_tusk ver "$MNT_VER" m@v1
  pid_ver=$MOUNT_PID
  vmhwm_record vmhwm_ver_mounted "$pid_ver"
  mount_tusk ws "$MNT_ALL"
  pid_ws=$MOUNT_PID
  vmhwm_record vmhwm_ws_mounted "$pid_ws"
  [[ -d $MNT_ALL/m/main ]] || { why "$MNT_ALL/m/main is not a directory"; return 1; }
  for r in $(seq 1 "$RUNS"); do
    log "-- round $r/$RUNS: listings (native, one-version mount, branch directory)"
    for t in find lsR lsbig; do
      for p in native ver ws; do
        case $p in native) dir=$DATA ;; ver) dir=$MNT_VER ;; ws) dir=$MNT_ALL/m/main ;; esac
        pid=''; [[ $p == ver ]] && pid=$pid_ver; [[ $p == ws ]] && pid=$pid_ws
        case $t in
          find)  timed find "$p" "$r" ${pid:+--pid "$pid"} -- sh -c 'find "$1" -type f | wc -l' sh "$dir"
                 want=$N ;;
          lsR)   timed lsR "$p" "$r" ${pid:+--pid "$pid"} -- sh -c 'ls -lR "$1" > /dev/null' sh "$dir"
                 want='' ;;
          lsbig) timed lsbig "$p" "$r" ${pid:+--pid "$pid"} -- sh -c 'ls -l "$1/big" | wc -l' sh "$dir"
                 want=$((BIG_N + 1)) ;;           # + the "total" line
        esac
        if [[ -n $want ]]; then
          cnt=$(last_out); ok=0; [[ $cnt == "$want" ]] || ok=1
          verify "$r" "$t-$p" $ok "$cnt lines, $want expected"
        fi
      done
    done
  done
  vmhwm_record vmhwm_ver_listed "$pid_ver"
  vmhwm_record vmhwm_ws_listed "$pid_ws"
  umount_tusk "$MNT_VER" "$pid_ver"
  umount_tusk "$MNT_ALL" "$pid_ws"
}

# ---------------------------------------------------------------- rows 4-5: one-file commit, 10-file diff
phase_commit() {
  local r i k rel ok pid ws=$MNT_ALL/m/main
  [[ -d $ST ]] || { why "no store (the import failed)"; return 1; }
  mount_tusk ws2 "$MNT_ALL"
  pid=$MOUNT_PID
  for r in $(seq 1 "$RUNS"); do
    # a different file each round, in the middle of a directory
    i=$((PER_DIR * ((r - 1) % DIRS) + PER_DIR / 2))
    rel=$(rel_of "$i")
    log "-- round $r/$RUNS: overwrite $rel through the branch directory, status, commit"
    $PY "$MB" patch "$BENCH_ROOT/patch-$r" "$SEED"
    timed change ws "$r" --pid "$pid" -- dd if="$BENCH_ROOT/patch-$r" of="$ws/$rel" bs=64K conv=fsync status=none
    timed status ws "$r" --pid "$pid" -- "$TUSK_BIN" --store "$ST" status m@main
    ok=0; [[ $(last_out) == "M  $rel" ]] || ok=1; verify "$r" status $ok "$(last_out)"
    timed commit ws "$r" --pid "$pid" -- "$TUSK_BIN" --store "$ST" commit m@main -m "one file r$r"
    ok=0; [[ $(last_out) == "committed "*": 1 changed;"* ]] || ok=1; verify "$r" commit $ok "$(last_out)"
    ok=0; cmp -s "$BENCH_ROOT/patch-$r" "$ws/$rel" || ok=1; verify "$r" content $ok
  done
  # row 5: a second version 10 files away from d0 (changes through the workspace and one
  # commit: far cheaper than a re-import, which would stat all N files)
  tk tag m@d0 m@main >>"$CMDLOG" 2>&1
  log "-- 10 files changed through the branch directory, committed; then tusk diff m@d0 m@main"
  local pairs=()
  for k in $(seq 0 9); do
    rel=$(rel_of $((k * N / 10 + 3)))       # 9 files in the small directories, 1 in big/
    $PY "$MB" patch "$BENCH_ROOT/patch-10-$k" "$SEED"
    pairs+=("$BENCH_ROOT/patch-10-$k" "$ws/$rel")
  done
  timed change10 ws 1 --pid "$pid" -- sh -c 'while [ $# -ge 2 ]; do
      dd if="$1" of="$2" bs=64K conv=fsync status=none || exit 1; shift 2; done' sh "${pairs[@]}"
  timed commit10 ws 1 --pid "$pid" -- "$TUSK_BIN" --store "$ST" commit m@main -m "ten files"
  ok=0; [[ $(last_out) == "committed "*": 10 changed;"* ]] || ok=1; verify 1 commit10 $ok "$(last_out)"
  for r in $(seq 1 "$RUNS"); do
    timed diff ws "$r" --pid "$pid" -- "$TUSK_BIN" --store "$ST" diff m@d0 m@main
    ok=0; [[ $(last_out) == "0 added, 0 deleted, 10 modified, 0 renamed"* ]] || ok=1; verify "$r" diff $ok "$(last_out)"
  done
  vmhwm_record vmhwm_ws2_done "$pid"
  umount_tusk "$MNT_ALL" "$pid"
}

# run_phase NAME FUNC ARGS...: in a background subshell with its own process group (the
# EXIT trap can stop it at once) and with set -e active: the first failing command ends
# the phase, which is then reported as FAILED; the next phases still run. It returns 0
# and leaves the phase's status in GROUP_RC: called on the left of `||`, bash would
# turn set -e off inside the phase, and a failing command would not end it.
run_phase() { run_group PHASE "$@"; }

# ---------------------------------------------------------------- header, run, report
{
  echo "# tusk million-file benchmark (import, listings through the mounts, one-file commit, diff, peak RSS)"
  echo
  bench_info "tree, \`cp -a\` copies and store on that same file system"
  echo "- dataset: $(printf "%'d" "$N") files of 1–4 KiB (random sizes, random bytes, seed $SEED):" \
       "$(printf "%'d" "$SMALL_N") in $DIRS directories \`d0000/\`… of ~$PER_DIR," \
       "$(printf "%'d" "$BIG_N") in \`big/\`; $DATA"
} >"$OUT/header.md"
cat "$OUT/header.md" >&2
log "million bench -> $OUT (about $need_mib MiB of disk needed, $avail_mib MiB free)"

run_phase gen phase_gen
((GROUP_RC == 0)) || die "could not generate the tree $DATA"
cat >"$OUT/params.json" <<EOF
{"files": $N, "big_files": $BIG_N, "dirs": $DIRS, "per_dir": $PER_DIR, "runs": $RUNS, "seed": $SEED,
 "bytes": $(jq .bytes "$DATA.manifest.json"), "data": "$DATA"}
EOF
log "== row 2: import vs cp -a ($RUNS runs)"
run_phase import phase_import
log "== row 3: listings ($RUNS runs)"
run_phase list phase_list
log "== rows 4-5: one-file commit, 10-file diff ($RUNS runs)"
run_phase commit phase_commit

{
  cat "$OUT/header.md"
  g=$(jq -r 'select(.label == "gen_s") | .value' "$RES" | head -n 1)
  echo "- data: $(jq -r '.bytes / 1048576 * 10 | floor / 10' "$DATA.manifest.json") MiB in the files" \
       "($(du -sm "$DATA" | cut -f1) MiB on disk)$( [[ -n $g ]] && echo ", generated in this run in ${g%.*} s" || echo ', reused from an earlier run')"
  echo
  $PY "$MB" report "$OUT"
  echo
  echo "Total benchmark time $((SECONDS - T0)) s.  Raw records: results.jsonl; progress: run.log;" \
       "output of every timed command: commands.log; daemon logs: daemon-*.log."
} >"$OUT/results.md"
cat "$OUT/results.md"
log "results: $OUT/results.md"
