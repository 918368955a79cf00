#!/bin/bash
# tusk lineage and tusk stale at scale (issue 10): "tusk lineage over a chain of 1,000 runs
# answers in under 1 s; tusk stale with 100 recorded runs answers in under 1 s".
#
#   tools/bench/lineage_bench.sh                                   # CHAIN_N=1000 STALE_N=100 RUNS=5: the real figures
#   CHAIN_N=20 STALE_N=6 RUNS=2 tools/bench/lineage_bench.sh       # smoke test, < 1 min
#   CHAIN_N=2000 RUNS=3 TUSK_BIN=/path/to/tusk tools/bench/lineage_bench.sh
#
# Rows (see README.md, "lineage_bench.sh"):
#   1  the chain: a small tree imported into chain@s0000, then CHAIN_N `tusk run`s, run i
#      reading chain@s<i-1> and writing chain@s<i> (a new empty branch each); build time,
#      total and per run (not a target).
#   2  `tusk lineage chain@s<CHAIN_N>` and `--json`: CHAIN_N runs deep.  Target < 1 s.
#   3  `tusk stale` in the chain's store (CHAIN_N run-made branches, no input moved): info.
#   4  a second store: STALE_N runs, each reading one file of src@main into its own branch
#      out@r<i>; then a new version of src changes the files of half of them; `tusk stale`
#      and `--json` (target < 1 s, STALE_N/2 stale and STALE_N/2 not stale), then
#      `tusk update --all` once.
#   5  peak RSS of tusk lineage / stale / update.
# Every timed lineage/stale/update starts with `sync; echo 3 > /proc/sys/vm/drop_caches`.
# The report (markdown: medians, min-max, PASS/FAIL) goes to stdout and to
# $BENCH_ROOT/results/<timestamp>-lineage/results.md.  Needs root (drop_caches; tusk run
# mounts its inputs in a private mount namespace) and /dev/fuse.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export LC_NUMERIC=C             # $EPOCHREALTIME with a '.'

CHAIN_N=${CHAIN_N:-1000}
STALE_N=${STALE_N:-100}
RUNS=${RUNS:-5}
# absolute and without symlinks: leftover processes are found by "$BENCH_ROOT/stores/" in their argv
BENCH_ROOT=$(realpath -m "${BENCH_ROOT:-/tmp/tusk-lineagebench}")
TUSK_BIN=${TUSK_BIN:-$REPO/build/tusk}
[[ $TUSK_BIN == */* ]] && TUSK_BIN=$(realpath -m "$TUSK_BIN")
TUSK_INIT_ARGS=${TUSK_INIT_ARGS:-}
RUN_DIR=$(realpath -m "${RUN_DIR:-$BENCH_ROOT/cwd}")
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
KEEP=${KEEP:-0}
ALLOW_ANY_FS=${ALLOW_ANY_FS:-0}
PY=${PY:-/usr/bin/python3}
CMDLINE="CHAIN_N=$CHAIN_N STALE_N=$STALE_N RUNS=$RUNS BENCH_ROOT=$BENCH_ROOT TUSK_BIN=$TUSK_BIN${TUSK_INIT_ARGS:+ TUSK_INIT_ARGS='$TUSK_INIT_ARGS'}${RUN_DIR:+ RUN_DIR=$RUN_DIR} KEEP=$KEEP $0${*:+ $*}"
read -r -a INIT_ARGS <<<"$TUSK_INIT_ARGS"

STORES=$BENCH_ROOT/stores       # this run's stores (deleted on exit unless KEEP=1)
STC=$STORES/chain               # dataset chain, branches s0000 (imported), s0001 ... (runs)
STS=$STORES/stale               # datasets src (main) and out (r0000 ... , one run each)
NATIVE=$BENCH_ROOT/inputs       # the small trees imported (deleted on exit)
MNT=$BENCH_ROOT/mnt             # not used (tusk run's input mounts live in its own namespace)
OUT=''
TESTPID=''                      # the running phase (leader of its own process group)

. "$HERE/lib/basics.sh"   # die, log, ensure_packages, take_lock, check_fs, check_free, copy_tusk_bin, bench_info

# ---------------------------------------------------------------- arguments, layout
[[ $EUID -eq 0 ]] || die "must run as root (drop_caches, tusk run's mount namespace)"
[[ $CHAIN_N =~ ^[1-9][0-9]*$ ]] || die "CHAIN_N must be a positive integer, got '$CHAIN_N'"
[[ $STALE_N =~ ^[1-9][0-9]*$ ]] && ((STALE_N >= 2)) || die "STALE_N must be an integer >= 2, got '$STALE_N'"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ $KEEP == 0 || $KEEP == 1 ]] || die "KEEP must be 0 or 1, got '$KEEP'"
for v in RUN_TIMEOUT STEP_TIMEOUT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (seconds), got '${!v}'"
done
[[ -c /dev/fuse ]] || die "/dev/fuse is missing (tusk run serves its inputs through FUSE)"
CW=${#CHAIN_N}; ((CW >= 4)) || CW=4     # branch names s0000 ... (zero-padded, sort in order)
SW=${#STALE_N}; ((SW >= 4)) || SW=4     # r0000 ..., files f0000.txt ...
LAST=$(printf "s%0${CW}d" "$CHAIN_N")
STALE_EXP=$(((STALE_N + 1) / 2))        # runs i = 0, 2, 4, ... read a file that changes
NOTSTALE_EXP=$((STALE_N / 2))

# ---------------------------------------------------------------- packages, binary, lock
ensure_packages fuse3 python3 jq time coreutils
[[ -x $PY ]] || die "python interpreter $PY not found (set PY)"
[[ -x $TUSK_BIN ]] && "$TUSK_BIN" --help >/dev/null 2>&1 \
  || die "$TUSK_BIN missing or \`tusk --help\` fails (build it, or set TUSK_BIN)"
for c in run lineage stale update; do
  "$TUSK_BIN" help "$c" >/dev/null 2>&1 || die "$TUSK_BIN has no \`tusk $c\` (an older build? set TUSK_BIN)"
done

take_lock

# ---------------------------------------------------------------- cleanup (processes, mounts, stores)
. "$HERE/lib/mounts.sh"   # mounts_under, daemon_pids, umount_all, stop_group, bench_cleanup, run_group
# stray_pids: processes with an argument under $STORES/ (every tusk we start has
# `--store $STORES/...`)
stray_pids() { pids_with_arg "" "$STORES/"; }
# stop_strays: TERM (KILL after 5 s) what is left of our tusk processes and their commands
stop_strays() {
  local pids
  pids=$(stray_pids)
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
  stop_strays
  bench_cleanup "$rc" "the running phase" "stores kept" "$KEEP"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
stop_strays             # leftovers of an earlier run that was killed hard
umount_all

# ---------------------------------------------------------------- file system, free space
check_fs        # sets FSTYPE; removes the last run's $NATIVE and $STORES
# Estimate: ~40 KiB of store per run (commit, run record, read set, tree, index pages;
# measured ~23 KiB), the first round's lineage outputs (the text grows with the square of
# CHAIN_N: ~6 MiB at 1,000, the JSON ~0.5 MiB), + 256 MiB slack.
need_mib=$(awk -v c="$CHAIN_N" -v s="$STALE_N" \
  'BEGIN { printf "%d\n", (c + 2 * s) * 40 / 1024 + (c / 1000) * (c / 1000) * 10 + 256 }')
need_inodes=$((2 * (CHAIN_N + 2 * STALE_N) + 10000))
check_free "$need_mib" "$need_inodes" "CHAIN_N=$CHAIN_N STALE_N=$STALE_N" "lower CHAIN_N"   # sets avail_mib

OUT=$BENCH_ROOT/results/$(date +%Y%m%d-%H%M%S)-lineage
mkdir -p "$OUT/out" "$NATIVE" "$STORES" "$BENCH_ROOT/bin"
T0=$SECONDS

copy_tusk_bin   # sets TUSK_ORIG, TUSK_BIN (the copy), tusk_version

# Every tusk command (and so every run, and the reruns of `tusk update`) starts in RUN_DIR.
# tusk run records the git state of its working directory (5 git commands, `git diff HEAD`
# hashed when dirty: ~0.2 s a run in this repository): outside a git work tree by default,
# so that the figures do not depend on where the script was started.
mkdir -p "$RUN_DIR"
cd "$RUN_DIR"
if git_top=$(git -C "$RUN_DIR" rev-parse --show-toplevel 2>/dev/null); then
  run_dir_note="in the git work tree $git_top: every tusk run also records its state (git status, git diff HEAD)"
else
  run_dir_note="not in a git work tree"
fi

# ---------------------------------------------------------------- the python helper (timing, checks, report)
# lib/benchutil.py (shared with the other benchmarks) is copied beside it: the results
# directory re-renders its report on its own, and an edit of tools/bench changes nothing
LB=$OUT/lineagebench.py
cp "$HERE/lib/benchutil.py" "$OUT/benchutil.py"
cat >"$LB" <<'PYEOF'
#!/usr/bin/env python3
"""Helper of tools/bench/lineage_bench.sh (written by it into each results directory, beside
its copy of tools/bench/lib/benchutil.py).

  time --out F --label L --peer P --round R [--cold] [--timeout S] [--log FILE] [--save FILE] -- CMD...
        run CMD once (after sync + drop_caches if --cold), in its own process group (killed
        after S seconds, rc 124), its standard output to FILE (--save); append a JSON record:
        wall, CPU, peak RSS (/usr/bin/time -f %M), rc, the output's last line, its size
  check-lineage TEXT JSON N       TEXT and JSON (outputs of `tusk lineage`, `--json`) describe a
                                  chain of N runs down to one commit no run made
  check-stale TEXT JSON STALE NOT TEXT and JSON (outputs of `tusk stale`, `--json`) list exactly
                                  the branches of file STALE (one a line) as stale and NOT
                                  others as not stale
  record --out F --label L --peer P --round R --value V
  last-out RESULTS / last-err RESULTS
  report OUTDIR                   the markdown table (OUTDIR/params.json, results.jsonl)
"""
import json, os, re, signal, statistics, subprocess, sys, tempfile, threading, time

sys.dont_write_bytecode = True                                   # no __pycache__ in the results directory
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # benchutil.py is beside this file
from benchutil import (Records, append, cell, drop_caches, fmt_num, fmt_s, load_run, log_command, main,
                       parse_time, run_group, status_lines, time_record)

TARGET_S = 1.0


def cmd_time(argv):
    a, cmd = parse_time(argv, ('--timeout', dict(type=float, default=600)), ('--save', dict(default=None)))
    if a.cold:
        drop_caches()
    out = open(a.save, 'w+b') if a.save else tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    rss = tempfile.NamedTemporaryFile(prefix='lineagebench-rss-')
    t0, t1, rc, ru, timed_out = run_group(['/usr/bin/time', '-f', '%M', '-o', rss.name, '--'] + cmd, a.timeout,
                                          out, err)
    size = out.seek(0, os.SEEK_END)
    out.seek(max(0, size - 4096))
    tail = out.read().decode(errors='replace')
    out.seek(0)
    head = out.read(20000).decode(errors='replace')
    out.close()
    err.seek(0)
    etext = err.read().decode(errors='replace')
    lines = [l for l in tail.splitlines() if l.strip()]
    elines = [l for l in etext.splitlines() if l.strip()]
    maxrss = next((int(l) for l in reversed(open(rss.name).read().split('\n')) if l.strip().isdigit()), 0)
    rss.close()
    rec = time_record(a, cmd, t0, t1, ru, rc, lines, maxrss_kb=maxrss, out_bytes=size)
    if rc != 0:
        errs = [l for l in elines if 'error' in l.lower()] or elines[-1:]
        if errs:
            rec['err'] = errs[0][:300]
    if a.log:
        text = etext + (head if size <= 20000 else head + '\n[... %d bytes in all%s ...]\n' % (
            size, (', in ' + a.save) if a.save else ''))
        log_command(a.log, rec, text, ' maxrss=%d KiB out=%d B' % (maxrss, size))
    append(a.out, rec)
    print('  %-6s %-13s r%d wall=%.4fs cpu=%.3fs rss=%.1fMiB out=%dB rc=%d%s' % (
        rec['peer'], rec['label'], rec['round'], rec['wall_s'], rec['cpu_s'], maxrss / 1024, size, rc,
        ('  | ' + rec['out'][:100]) if rec['out'] else ''), file=sys.stderr)
    if rc != 0:
        sys.stderr.write('  %s\n' % ('timed out after %g s' % a.timeout if timed_out else
                                     'stderr of the failed command:\n' + etext[-2000:]))
    return 0 if rc == 0 else 1


def load_deep_json(path):
    """json.load of a deeply nested document (a lineage chain nests ~4 levels per run): in a
    thread with a large stack and a high recursion limit."""
    res = {}

    def work():
        sys.setrecursionlimit(1000000)
        try:
            with open(path) as f:
                res['v'] = json.load(f)
        except Exception as e:          # noqa: BLE001 (reported as a check failure)
            res['e'] = '%s: %s' % (type(e).__name__, str(e)[:200])
    threading.stack_size(512 << 20)
    t = threading.Thread(target=work)
    t.start()
    t.join()
    if 'e' in res:
        raise ValueError('cannot parse %s: %s' % (os.path.basename(path), res['e']))
    return res['v']


def depth_of(v):
    """Nesting depth of a JSON value (iterative)."""
    best, stack = 0, [(v, 1)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, dict):
            best = max(best, d)
            stack.extend((y, d + 1) for y in x.values())
        elif isinstance(x, list):
            best = max(best, d)
            stack.extend((y, d + 1) for y in x)
    return best


def cmd_check_lineage(text, js, n):
    n, problems = int(n), []
    with open(text, errors='replace') as f:
        lines = f.read().splitlines()
    made = sum(1 for l in lines if 'made by run:' in l)
    roots = sum(1 for l in lines if '(not made by a run' in l)
    if made != n:
        problems.append('text: %d "made by run:" lines, %d expected' % (made, n))
    if roots != 1:
        problems.append('text: %d "(not made by a run" lines, 1 expected' % roots)
    runs, depth = 0, 0
    try:
        doc = load_deep_json(js)
        depth = depth_of(doc)
        # Flat form: commits (each with the run that made it, or null) and
        # runs (each with its inputs); follow the chain from the root.
        commits = {c['commit']: c for c in doc.get('commits', [])}
        runs_by_id = {r['run']: r for r in doc.get('runs', [])}
        node, seen = commits.get(doc.get('root')), set()
        while isinstance(node, dict) and node.get('run'):
            rid = node['run']
            if rid in seen:
                problems.append('json: run %s twice' % rid)
                break
            seen.add(rid)
            runs += 1
            r = runs_by_id.get(rid)
            ins = (r or {}).get('inputs') or []
            if len(ins) != 1:
                problems.append('json: run %s has %d inputs, 1 expected' % (rid[:12], len(ins)))
                break
            node = commits.get(ins[0].get('commit'))
        if runs != n:
            problems.append('json: a chain of %d runs, %d expected' % (runs, n))
        if not isinstance(node, dict) or node.get('run') is not None:
            problems.append('json: the chain does not end at a commit no run made')
    except ValueError as e:
        problems.append('json: %s' % e)
    if problems:
        print('; '.join(problems))
        return 1
    print('OK: %d runs in the text (%d lines) and in the JSON (nesting depth %d)' % (made, len(lines), depth))
    return 0


def cmd_check_stale(text, js, stale_file, notstale):
    notstale, problems = int(notstale), []
    with open(stale_file) as f:
        want = set(l.strip() for l in f if l.strip())
    with open(text, errors='replace') as f:
        lines = f.read().splitlines()
    t_stale = set(m.group(1) for m in (re.match(r'^(\S+): stale \(made by run:', l) for l in lines) if m)
    t_not = set(m.group(1) for m in (re.match(r'^(\S+): not stale \(made by run:', l) for l in lines) if m)
    if t_stale != want:
        problems.append('text: %d stale (%d expected; %d missing, %d extra)' % (
            len(t_stale), len(want), len(want - t_stale), len(t_stale - want)))
    if len(t_not) != notstale:
        problems.append('text: %d not stale, %d expected' % (len(t_not), notstale))
    try:
        with open(js) as f:
            doc = json.load(f)
        j_stale = set(x['branch'] for x in doc if x.get('stale'))
        j_not = set(x['branch'] for x in doc if not x.get('stale'))
        if j_stale != want:
            problems.append('json: %d stale (%d expected; %d missing, %d extra)' % (
                len(j_stale), len(want), len(want - j_stale), len(j_stale - want)))
        if len(j_not) != notstale:
            problems.append('json: %d not stale, %d expected' % (len(j_not), notstale))
        if j_stale != t_stale or j_not != t_not:
            problems.append('text and json differ')
        bad = [x['branch'] for x in doc if x.get('stale') and not any(i.get('changed') for i in x.get('inputs', []))]
        if bad:
            problems.append('json: stale without a changed path: %s' % ' '.join(bad[:5]))
    except (ValueError, KeyError, TypeError) as e:
        problems.append('json: %s: %s' % (type(e).__name__, str(e)[:200]))
    if problems:
        print('; '.join(problems))
        return 1
    print('OK: %d stale, %d not stale' % (len(t_stale), len(t_not)))
    return 0


# ------------------------------------------------------------------ report


def cmd_report(outdir):
    P, recs, failed = load_run(outdir)
    R = Records(recs)
    get, walls, values = R.get, R.walls, R.values
    nfmt = '{:,}'.format
    C, S = P['chain_n'], P['stale_n']
    verdicts = []
    rows = []    # (phase, '#', what, value, target)

    def verdict(ok):
        return 'n.a.' if ok is None else ('PASS' if ok else '**FAIL**')

    def target(label, peer, what, phase):
        w = walls(label, peer)
        ok = None if not w else statistics.median(w) < TARGET_S
        if phase in failed:
            ok = False
        verdicts.append(('%s under %g s' % (what, TARGET_S), ok, cell(w, 's') if w else 'no figure'))
        return '< %g s: %s' % (TARGET_S, verdict(ok))

    def first(label, peer):
        v = values(label, peer)
        return v[0] if v else None

    def out_size(label, peer):
        """The median size of the command's standard output."""
        g = [r['out_bytes'] for r in get(label, peer) if 'out_bytes' in r]
        if not g:
            return '—'
        m = statistics.median(g)
        return fmt_num(m / 2**20, 'MiB', True) if m >= 2**20 else fmt_num(m / 1024, 'KiB', True)

    def rss(label, peer):
        v = [r['maxrss_kb'] / 1024 for r in get(label, peer) if 'maxrss_kb' in r]
        return fmt_num(max(v), 'MiB') if v else '—'

    # 1: the chain
    cr = [r['wall_s'] for r in sorted(get('run', 'chain'), key=lambda r: r['round'])]
    tot = first('build_s', 'chain')
    rows.append(('chain', '1', 'build the chain: %s × (`tusk branch` + `tusk run`), each run reading the previous '
                 'output branch (whole build, s)' % nfmt(C), fmt_s(tot) if tot is not None else '—', ''))
    rows.append(('chain', '1', '… one `tusk run` (s)', cell(cr, 's'), ''))
    k = min(100, len(cr) // 4)
    if k >= 5:
        rows.append(('chain', '1', '… one `tusk run`, the first %d / the last %d runs (s, medians)' % (k, k),
                     '%s / %s' % (fmt_s(statistics.median(cr[:k])), fmt_s(statistics.median(cr[-k:]))), ''))
    sb = first('store_bytes', 'chain')
    if sb is not None:
        rows.append(('chain', '1', 'store size after the chain', '%s (%s per run)' % (
            fmt_num(sb / 2**20, 'MiB', True), fmt_num(sb / 1024 / max(C, 1), 'KiB', True)), ''))
    # 2: lineage
    rows.append(('lineage', '2', '**`tusk lineage chain@%s`** (text, %s runs deep), cold (s)' % (P['last'], nfmt(C)),
                 cell(walls('lineage', 'chain'), 's'), target('lineage', 'chain', '`tusk lineage` (text)', 'lineage')))
    rows.append(('lineage', '2', '**`tusk lineage chain@%s --json`**, cold (s)' % P['last'],
                 cell(walls('lineage_json', 'chain'), 's'),
                 target('lineage_json', 'chain', '`tusk lineage --json`', 'lineage')))
    rows.append(('lineage', '2', '… their output: text / JSON', '%s / %s' % (
        out_size('lineage', 'chain'), out_size('lineage_json', 'chain')), ''))
    rows.append(('lineage', '2', '… their CPU (user+sys, s): text / JSON', '%s / %s' % (
        cell([r['cpu_s'] for r in get('lineage', 'chain')], 's'),
        cell([r['cpu_s'] for r in get('lineage_json', 'chain')], 's')), ''))
    # 3: stale on the chain store
    rows.append(('lineage', '3', '`tusk stale` in the chain\'s store (%s run-made branches, no input moved: '
                 'nothing listed), cold (s)' % nfmt(C), cell(walls('stale', 'chain'), 's'), ''))
    # 4: stale
    sr = [r['wall_s'] for r in sorted(get('run', 'stale'), key=lambda r: r['round'])]
    st = first('build_s', 'stale')
    rows.append(('stale', '4', 'set-up: %s × (`tusk branch` + `tusk run`), each reading one file of src@main into '
                 'its own branch (whole, s)' % nfmt(S), fmt_s(st) if st is not None else '—', ''))
    rows.append(('stale', '4', '… one `tusk run` (s)', cell(sr, 's'), ''))
    rows.append(('stale', '4', '**`tusk stale`** after a new src@main that changes the files %s of them read '
                 '(%s listed), cold (s)' % (nfmt(P['stale_exp']), nfmt(S)), cell(walls('stale', 'stale'), 's'),
                 target('stale', 'stale', '`tusk stale` (text)', 'stale')))
    rows.append(('stale', '4', '**`tusk stale --json`**, cold (s)', cell(walls('stale_json', 'stale'), 's'),
                 target('stale_json', 'stale', '`tusk stale --json`', 'stale')))
    up = walls('update', 'stale')
    rows.append(('stale', '4', '`tusk update --all` (runs the %s stale ones again), once, cold (s)'
                 % nfmt(P['stale_exp']), cell(up, 's'), ''))
    rows.append(('stale', '4', '`tusk stale` after it (%s listed, none stale), cold (s)' % nfmt(P['notstale_exp']),
                 cell(walls('stale_after', 'stale'), 's'), ''))
    # 5: peak RSS
    rows.append(('lineage', '5', 'peak RSS (max over runs): `tusk lineage` text / JSON; `tusk stale` (chain store)',
                 '%s / %s; %s' % (rss('lineage', 'chain'), rss('lineage_json', 'chain'), rss('stale', 'chain')), ''))
    rows.append(('stale', '5', 'peak RSS (max over runs): `tusk stale` text / JSON; `tusk update --all`',
                 '%s / %s; %s' % (rss('stale', 'stale'), rss('stale_json', 'stale'), rss('update', 'stale')), ''))

    out = ['| # | measurement | median (min–max) | target |', '|---|---|---|---|']
    for phase, num, what, val, tgt in rows:
        if phase in failed and not re.search(r'[0-9]', val):
            val = 'FAILED'
        out.append('| %s | %s | %s | %s |' % (num, what, val, tgt))
    out.append('')
    out.append('Median over %d round(s), min–max in parentheses (the per-run rows: over all runs of the build).  '
               'Page cache dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) before every timed lineage, stale '
               'and update; the builds run back to back, warm.  Walls are whole processes (monotonic); peak RSS '
               'is `/usr/bin/time -f %%M`.' % P['runs'])
    out.append('')
    out.append('Targets:')
    out.append('')
    for what, ok, detail in verdicts:
        out.append('- %s %s (%s)' % (verdict(ok), what, detail))
    allok = bool(verdicts) and all(ok for _, ok, _ in verdicts) and not failed
    out.append('')
    out.append('**Overall: %s**' % ('PASS' if allok else 'FAIL'))
    out += status_lines(recs, failed, 'phases', 'the chain\'s last output, the lineage text and JSON (every run of '
                        'the chain, down to the imported commit), the stale and not-stale branches in text and '
                        'JSON, the updated outputs, nothing stale after the update')
    print('\n'.join(out))
    return 0


if __name__ == '__main__':
    sys.exit(main(__doc__, dict(time=cmd_time),
                  {'check-lineage': cmd_check_lineage, 'check-stale': cmd_check_stale, 'report': cmd_report}))
PYEOF

RES=$OUT/results.jsonl
CMDLOG=$OUT/commands.log
: >"$RES"
# timed LABEL PEER ROUND SAVE -- CMD...: cold-cache timing of one command, its stdout to SAVE
timed() {
  local label=$1 peer=$2 round=$3 save=$4 rc=0; shift 4
  { $PY "$LB" time --out "$RES" --label "$label" --peer "$peer" --round "$round" --cold \
      --timeout "$STEP_TIMEOUT" --log "$CMDLOG" --save "$save" "$@" 2>&1 | tee -a "$OUT/run.log" >&2; } || rc=$?
  ((rc == 0)) || why "$peer $label round $round failed: $(last_err)"
  return "$rc"
}
# why TEXT: the reason the running phase fails (shown in the report), also logged
why() { log "$*"; echo "$*" >"$OUT/.why"; }
record() { $PY "$LB" record --out "$RES" --label "$1" --peer "$2" --round "$3" --value "$4"; }
verify() {  # verify ROUND WHAT STATUS [DETAIL]: a check's result (0 = OK) as a record; never fails the phase
  if [[ $3 == 0 ]]; then record verify "$2" "$1" OK
  else record verify "$2" "$1" "FAILED${4:+: $4}"; log "VERIFY FAILED: $2 round $1${4:+: $4}"; fi
}
last_err() { $PY "$LB" last-err "$RES"; }
us_now() { local t=$EPOCHREALTIME; echo "${t/./}"; }          # microseconds
secs() { printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }
median_us() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# run_step PEER I LOG -- TUSK-RUN-ARGS...: one `tusk run` of a build, timed (wall; a record
# "run" with round I), its messages to LOG
run_step() {
  local peer=$1 i=$2 lg=$3 t0 t1 rc=0; shift 4
  t0=$(us_now)
  timeout --foreground -k 10 "$RUN_TIMEOUT" "$TUSK_BIN" "$@" >>"$lg" 2>&1 || rc=$?
  t1=$(us_now)
  if ((rc != 0)); then
    local how="exit $rc"; ((rc != 124)) || how="timed out after $RUN_TIMEOUT s"
    why "$peer: tusk run $i failed ($how): $(tail -n 2 "$lg" | tr '\n' ' ')"
    return 1
  fi
  STEP_US=$((t1 - t0))
  printf '{"label": "run", "peer": "%s", "round": %d, "wall_s": %s, "rc": 0}\n' "$peer" "$i" "$(secs "$STEP_US")" >>"$RES"
}
# progress WHAT I N T0_US US...: a progress line every 100 runs and at the end
progress() {
  local what=$1 i=$2 n=$3 t0=$4; shift 4
  ((i % 100 == 0 || i == n)) || return 0
  local el=$(($(us_now) - t0)) k=$((i % 100)); ((k)) || k=100
  log "   $what: $i/$n runs, $((el / 1000000)) s; last $k: median $(printf '%.3f' "$(secs "$(median_us "${@: -$k}")")") s per run$( ((i < n)) \
       && echo ", ~$((el * (n - i) / i / 1000000)) s to go")"
}

# ---------------------------------------------------------------- phase 1-3: the chain, lineage, stale in it
tkc() { "$TUSK_BIN" --store "$STC" "$@"; }
phase_chain() {
  local i b p t0 lg=$OUT/chain-runs.log walls=() ok
  log "-- building the chain: chain@s$(printf "%0${CW}d" 0) imported, then $CHAIN_N runs (each s<i-1> -> s<i>)"
  tkc init "${INIT_ARGS[@]}" >>"$CMDLOG" 2>&1
  tkc dataset create chain >>"$CMDLOG" 2>&1
  mkdir -p "$NATIVE/chain0/more"
  echo "step 0" >"$NATIVE/chain0/f.txt"
  echo "not read by the runs" >"$NATIVE/chain0/more/g.txt"
  p=$(printf "s%0${CW}d" 0)
  tkc branch "chain@$p" >>"$CMDLOG" 2>&1
  tkc import "$NATIVE/chain0" "chain@$p" -m "chain start" >>"$CMDLOG" 2>&1
  t0=$(us_now)
  for ((i = 1; i <= CHAIN_N; i++)); do
    b=$(printf "s%0${CW}d" "$i")
    tkc branch "chain@$b" >>"$lg" 2>&1      # from chain@main: no commits, an empty branch
    # $0 of the command is under $STORES/: a leftover is found by its argv (stray_pids)
    run_step chain "$i" "$lg" -- --store "$STC" run --in prev="chain@$p" --out "chain@$b" -m "step $i" \
      -- sh -c 'cp "$TUSK_IN_prev/f.txt" "$TUSK_OUT/f.txt" && echo "step $1" >> "$TUSK_OUT/f.txt"' "$STC/step" "$i"
    walls+=("$STEP_US")
    progress chain "$i" "$CHAIN_N" "$t0" "${walls[@]}"
    p=$b
  done
  record build_s chain 0 "$(secs $(($(us_now) - t0)))"
  record store_bytes chain 0 "$(du -sb "$STC" | cut -f1)"
  # the last output holds every step: CHAIN_N + 1 lines, the last "step CHAIN_N"
  tkc cat "chain@$LAST" f.txt >"$OUT/out/chain-last-f.txt" 2>>"$CMDLOG"
  ok=0
  [[ $(wc -l <"$OUT/out/chain-last-f.txt") == $((CHAIN_N + 1)) && $(tail -n 1 "$OUT/out/chain-last-f.txt") == "step $CHAIN_N" ]] || ok=1
  verify 0 chain-output $ok "chain@$LAST:f.txt has $(wc -l <"$OUT/out/chain-last-f.txt") lines, $((CHAIN_N + 1)) expected"
}
phase_lineage() {
  local r ok msg
  [[ -d $STC ]] || { why "no chain store (the build failed)"; return 1; }
  for r in $(seq 1 "$RUNS"); do
    log "-- round $r/$RUNS: tusk lineage chain@$LAST, text and --json; tusk stale in the chain's store"
    timed lineage chain "$r" "$OUT/out/lineage-r$r.txt" -- "$TUSK_BIN" --store "$STC" lineage "chain@$LAST"
    timed lineage_json chain "$r" "$OUT/out/lineage-r$r.json" -- "$TUSK_BIN" --store "$STC" lineage "chain@$LAST" --json
    ok=0; msg=$($PY "$LB" check-lineage "$OUT/out/lineage-r$r.txt" "$OUT/out/lineage-r$r.json" "$CHAIN_N") || ok=1
    verify "$r" lineage $ok "$msg"; log "   check: $msg"
    timed stale chain "$r" "$OUT/out/chain-stale-r$r.txt" -- "$TUSK_BIN" --store "$STC" stale
    ok=0; grep -q '^nothing is stale' "$OUT/out/chain-stale-r$r.txt" || ok=1
    verify "$r" chain-stale $ok "$(head -c 200 "$OUT/out/chain-stale-r$r.txt")"
    # the outputs of later rounds are the same: keep the first round's
    ((r == 1)) || rm -f "$OUT/out/lineage-r$r.txt" "$OUT/out/lineage-r$r.json" "$OUT/out/chain-stale-r$r.txt"
  done
}

# ---------------------------------------------------------------- phase 4: stale
tks() { "$TUSK_BIN" --store "$STS" "$@"; }
phase_stale() {
  local i f b r t0 ok msg lg=$OUT/stale-runs.log walls=() src=$NATIVE/src
  log "-- set-up: src@main with $STALE_N files; $STALE_N runs, run i reads f<i>.txt into out@r<i>"
  tks init "${INIT_ARGS[@]}" >>"$CMDLOG" 2>&1
  tks dataset create src >>"$CMDLOG" 2>&1
  tks dataset create out >>"$CMDLOG" 2>&1
  mkdir -p "$src"
  for ((i = 0; i < STALE_N; i++)); do echo "file $i, version 1" >"$src/$(printf "f%0${SW}d" "$i").txt"; done
  tks import "$src" src@main -m "src v1" >>"$CMDLOG" 2>&1
  : >"$OUT/stale-expected.txt"
  t0=$(us_now)
  for ((i = 0; i < STALE_N; i++)); do
    f=$(printf "f%0${SW}d.txt" "$i"); b=$(printf "r%0${SW}d" "$i")
    tks branch "out@$b" >>"$lg" 2>&1
    run_step stale $((i + 1)) "$lg" -- --store "$STS" run --in src=src@main --out "out@$b" -m "read $f" \
      -- sh -c 'cat "$TUSK_IN_src/$1" > "$TUSK_OUT/r.txt"' "$STS/step" "$f"
    walls+=("$STEP_US")
    progress stale $((i + 1)) "$STALE_N" "$t0" "${walls[@]}"
    ((i % 2)) || echo "out@$b" >>"$OUT/stale-expected.txt"
  done
  record build_s stale 0 "$(secs $(($(us_now) - t0)))"
  # src v2: the files of runs 0, 2, 4, ... change, the others stay
  for ((i = 0; i < STALE_N; i += 2)); do echo "file $i, version 2" >"$src/$(printf "f%0${SW}d" "$i").txt"; done
  tks import "$src" src@main -m "src v2: every other file changed" >>"$CMDLOG" 2>&1
  for r in $(seq 1 "$RUNS"); do
    log "-- round $r/$RUNS: tusk stale, tusk stale --json ($STALE_N runs, $STALE_EXP stale expected)"
    timed stale stale "$r" "$OUT/out/stale-r$r.txt" -- "$TUSK_BIN" --store "$STS" stale
    timed stale_json stale "$r" "$OUT/out/stale-r$r.json" -- "$TUSK_BIN" --store "$STS" stale --json
    ok=0; msg=$($PY "$LB" check-stale "$OUT/out/stale-r$r.txt" "$OUT/out/stale-r$r.json" \
                  "$OUT/stale-expected.txt" "$NOTSTALE_EXP") || ok=1
    verify "$r" stale $ok "$msg"; log "   check: $msg"
    ((r == 1)) || rm -f "$OUT/out/stale-r$r.txt" "$OUT/out/stale-r$r.json"
  done
  log "-- tusk update --all (runs the $STALE_EXP stale branches again), then tusk stale"
  timed update stale 1 "$OUT/out/update.txt" -- "$TUSK_BIN" --store "$STS" update --all
  : >"$OUT/stale-none.txt"
  timed stale_after stale 1 "$OUT/out/stale-after.txt" -- "$TUSK_BIN" --store "$STS" stale
  "$TUSK_BIN" --store "$STS" stale --json >"$OUT/out/stale-after.json" 2>>"$CMDLOG"
  ok=0; msg=$($PY "$LB" check-stale "$OUT/out/stale-after.txt" "$OUT/out/stale-after.json" \
                "$OUT/stale-none.txt" "$NOTSTALE_EXP") || ok=1
  verify 1 stale-after-update $ok "$msg"; log "   check after the update: $msg"
  ok=0; [[ $(tks cat "out@$(printf "r%0${SW}d" 0)" r.txt 2>>"$CMDLOG") == "file 0, version 2" ]] || ok=1
  verify 1 updated-output $ok "out@$(printf "r%0${SW}d" 0):r.txt is not version 2"
}

run_phase() { run_group PHASE "$@"; }

# ---------------------------------------------------------------- header, run, report
{
  echo "# tusk lineage and stale at scale (issue 10)"
  echo
  bench_info "stores on that file system"
  echo "- working directory of every tusk command: $RUN_DIR ($run_dir_note)"
  echo "- chain: $(printf "%'d" "$CHAIN_N") runs, run i: \`tusk run --in prev=chain@s<i-1> --out chain@s<i>" \
       "-- sh -c 'cp \$TUSK_IN_prev/f.txt \$TUSK_OUT/f.txt; echo step i >> \$TUSK_OUT/f.txt'\`, s0 imported" \
       "(2 files); lineage of chain@$LAST"
  echo "- stale: $(printf "%'d" "$STALE_N") runs, run i: \`tusk run --in src=src@main --out out@r<i>" \
       "-- sh -c 'cat \$TUSK_IN_src/f<i>.txt > \$TUSK_OUT/r.txt'\`; then a new src@main changing the files" \
       "of runs 0, 2, 4, … ($STALE_EXP stale, $NOTSTALE_EXP not stale expected)"
} >"$OUT/header.md"
cat "$OUT/header.md" >&2
log "lineage bench -> $OUT (about $need_mib MiB of disk needed, $avail_mib MiB free)"
cat >"$OUT/params.json" <<EOF
{"chain_n": $CHAIN_N, "stale_n": $STALE_N, "runs": $RUNS, "last": "$LAST",
 "stale_exp": $STALE_EXP, "notstale_exp": $NOTSTALE_EXP}
EOF

log "== rows 1-3: a chain of $CHAIN_N runs; lineage (RUNS=$RUNS)"
run_phase chain phase_chain
if ((GROUP_RC == 0)); then
  run_phase lineage phase_lineage
else
  printf 'lineage\tno chain (its build failed)\n' >>"$OUT/failed.tsv"
fi
log "== row 4: stale with $STALE_N runs (RUNS=$RUNS)"
run_phase stale phase_stale

{
  cat "$OUT/header.md"
  echo
  $PY "$LB" report "$OUT"
  echo
  echo "Total benchmark time $((SECONDS - T0)) s.  Raw records: results.jsonl; progress: run.log;" \
       "output of every timed command: commands.log (first round's whole outputs in out/); the builds' tusk" \
       "run messages: chain-runs.log, stale-runs.log."
} >"$OUT/results.md"
cat "$OUT/results.md"
log "results: $OUT/results.md"
