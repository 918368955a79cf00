#!/usr/bin/env python3
"""Helper of tools/bench/merge_bench.sh: input generation, timing, checks, report (stdlib only).

merge_bench.sh copies it into each results directory, beside its copy of lib/benchutil.py
(imported from there): the results directory re-renders its report on its own, and an edit
of tools/bench during a run does not change the helper halfway.

  gen-table DIR ROWS CHANGES SEED
        DIR/base/labels.csv: ROWS rows `id,label,annotator,score` (~40 bytes a row); ours/ and
        theirs/ (one labels.csv each): base with CHANGES cells changed (one cell in each of
        CHANGES random rows, a random column of label/annotator/score), the rows of ours and
        theirs disjoint (a clean merge); DIR/expected.csv: base with both sides' changes.
        DIR/manifest.json, written last, marks a complete set.
  gen-files DIR N SEED
        N files of 1-4 KiB (uniformly random sizes, random bytes) in max(1, N/1000)
        directories d0000/ ...: file i is d<i*dirs/N>/f<i>.bin (%04d, %07d).  DIR.manifest.json
        beside it, written last, marks a complete tree.
  files-set DIR SET                 the paths of change set SET (d10, ours, theirs), one a line
  mutate DIR SET                    overwrite the files of SET in place with new random bytes
                                    (first backing up each file's original bytes and mtime in
                                    DIR.orig/; DIR.state.json lists the sets applied)
  restore DIR SET|all               put the backed-up bytes and mtimes back (all: every file)
  time --out F --label L --peer P --round R [--cold] [--timeout S] [--log FILE] [--save FILE] -- CMD...
        run CMD once (after sync + drop_caches if --cold) in its own process group (killed
        after S seconds, rc 124), its standard output to FILE (--save); append a JSON record:
        wall, CPU, peak RSS (/usr/bin/time -f %M), rc, last output line, the 1-minute load
        average before it and the CPU the rest of the machine used meanwhile
  check-table GOT EXPECTED          GOT equals EXPECTED: byte for byte, else as a table
                                    (same header and rows; says which); exit 1 if not
  check-diff OUTPUT DIR SET         a `tusk diff` OUTPUT lists exactly the files of SET as
                                    modified (M) and nothing else
  check-daff-diff OUTPUT ROWS       a `daff diff` OUTPUT marks exactly ROWS rows as modified
  rec --out F --label L --peer P --round R --value V [--phase PH]
                                    a record that is not timed (verify records name their phase)
  last-out RESULTS / last-err RESULTS / vmhwm PID
  report OUTDIR                     the markdown table (OUTDIR/params.json, results.jsonl)
"""
import csv, filecmp, json, os, random, re, statistics, subprocess, sys, tempfile, time

sys.dont_write_bytecode = True                                   # no __pycache__ in the results directory
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # benchutil.py is beside this file
from benchutil import (CLK, Records, append, cell, drop_caches, fmt_num, fmt_s, load_run, log_command, main,
                       parse_time, run_group, status_lines, time_record)

LABELS = ('cat dog horse cow sheep bird boat car bus train truck bicycle motorbike person plant sofa chair '
          'table bottle monitor airplane traffic_light stop_sign bench elephant bear zebra giraffe umbrella '
          'handbag suitcase frisbee kite skateboard surfboard tennis_racket wine_glass banana apple orange '
          'broccoli carrot pizza donut cake laptop keyboard microwave toaster refrigerator clock vase').split()
ANNOTATORS = ['annotator_%02d' % i for i in range(40)]
HEADER = 'id,label,annotator,score\n'
SETS = ('d10', 'ours', 'theirs')


# ------------------------------------------------------------------ tables
def write_atomic(path, text):
    with open(path + '.tmp', 'w', newline='') as f:
        f.write(text)
    os.replace(path + '.tmp', path)


def cmd_gen_table(top, rows, changes, seed):
    rows, changes, seed = int(rows), int(changes), int(seed)
    if 2 * changes > rows:
        print('gen-table: 2 x CHANGES (%d) > ROWS (%d)' % (2 * changes, rows), file=sys.stderr)
        return 1
    rng = random.Random(seed)
    t0 = time.monotonic()
    base = []
    for i in range(rows):
        base.append(['img_%07d' % (i + 1), rng.choice(LABELS), rng.choice(ANNOTATORS),
                     '%.4f' % rng.random()])
    picked = rng.sample(range(rows), 2 * changes)
    sides = {'ours': picked[:changes], 'theirs': picked[changes:]}
    edits = {}
    for side, idx in sides.items():
        e = {}
        for i in idx:
            col = rng.randrange(1, 4)
            old = base[i][col]
            while True:
                new = (rng.choice(LABELS) if col == 1 else rng.choice(ANNOTATORS) if col == 2
                       else '%.4f' % rng.random())
                if new != old:
                    break
            e[i] = (col, new)
        edits[side] = e

    def text(apply):
        out = [HEADER]
        for i, r in enumerate(base):
            for side in apply:
                ed = edits[side].get(i)
                if ed:
                    r = list(r)
                    r[ed[0]] = ed[1]
            out.append(','.join(r) + '\n')
        return ''.join(out)

    for d in ('base', 'ours', 'theirs'):
        os.makedirs(os.path.join(top, d), exist_ok=True)
    write_atomic(os.path.join(top, 'base', 'labels.csv'), text(()))
    write_atomic(os.path.join(top, 'ours', 'labels.csv'), text(('ours',)))
    write_atomic(os.path.join(top, 'theirs', 'labels.csv'), text(('theirs',)))
    write_atomic(os.path.join(top, 'expected.csv'), text(('ours', 'theirs')))
    size = os.path.getsize(os.path.join(top, 'base', 'labels.csv'))
    write_atomic(os.path.join(top, 'manifest.json'), json.dumps(dict(
        rows=rows, changes=changes, seed=seed, bytes=size, columns=HEADER.strip().split(','),
        changed_columns={s: {c: sum(1 for v in e.values() if v[0] == k) for k, c in
                             ((1, 'label'), (2, 'annotator'), (3, 'score'))} for s, e in edits.items()},
        gen_s=round(time.monotonic() - t0, 2))) + '\n')
    print('%d rows, %.1f MB a version, %d + %d cells changed, %.1f s' % (
        rows, size / 1e6, changes, changes, time.monotonic() - t0), file=sys.stderr)
    return 0


def read_rows(path):
    with open(path, newline='') as f:
        return list(csv.reader(f))


def cmd_check_table(got, expected):
    if not os.path.exists(got):
        print('no output file %s' % got)
        return 1
    if filecmp.cmp(got, expected, shallow=False):
        n = sum(1 for _ in open(expected, 'rb')) - 1
        print('OK: byte-identical to the expected table (%d rows)' % n)
        return 0
    a, b = read_rows(got), read_rows(expected)
    if a == b:
        print('OK: the same table as expected (%d rows), not byte-identical (quoting or line ends)' % (len(b) - 1))
        return 0
    if a and b and a[0] == b[0] and sorted(a[1:]) == sorted(b[1:]):
        print('OK: the same rows as expected (%d), in another order' % (len(b) - 1))
        return 0
    if not a or a[0] != b[0]:
        print('DIFFERENT: header %r, expected %r' % (a[0] if a else None, b[0]))
        return 1
    ka = {r[0]: r for r in a[1:] if r}
    kb = {r[0]: r for r in b[1:] if r}
    missing = [k for k in kb if k not in ka]
    extra = [k for k in ka if k not in kb]
    diff = [k for k in kb if k in ka and ka[k] != kb[k]]
    print('DIFFERENT: %d rows (%d expected); %d missing, %d extra, %d with other cells%s' % (
        len(a) - 1, len(b) - 1, len(missing), len(extra), len(diff),
        ('; e.g. id %s: %r, expected %r' % (diff[0], ka[diff[0]], kb[diff[0]])) if diff else ''))
    return 1


def cmd_check_daff_diff(path, rows):
    rows = int(rows)
    mod = 0
    with open(path, newline='') as f:
        for r in csv.reader(f):
            if r and r[0] == '->':
                mod += 1
    if mod != rows:
        print('daff diff marks %d rows as modified, %d expected' % (mod, rows))
        return 1
    print('OK: %d rows modified' % mod)
    return 0


# ------------------------------------------------------------------ the file tree
def tree_layout(n):
    dirs = max(1, n // 1000)
    return dirs, (lambda i: 'd%04d/f%07d.bin' % (i * dirs // n, i))


def manifest(top):
    with open(top.rstrip('/') + '.manifest.json') as f:
        return json.load(f)


def cmd_gen_files(top, n, seed):
    n, seed = int(n), int(seed)
    top = top.rstrip('/')
    rng = random.Random(seed)
    dirs, path = tree_layout(n)
    tmp = top + '.tmp'
    if os.path.exists(tmp):
        subprocess.run(['rm', '-rf', tmp], check=True)
    for j in range(dirs):
        os.makedirs(os.path.join(tmp, 'd%04d' % j))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0)
    total, t0 = 0, time.monotonic()
    for i in range(n):
        data = rng.randbytes(rng.randint(1024, 4096))
        fd = os.open(os.path.join(tmp, path(i)), flags, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        total += len(data)
        if i and i % 100000 == 0:
            print('  %d files, %.0f s' % (i, time.monotonic() - t0), file=sys.stderr)
    os.rename(tmp, top)
    write_atomic(top + '.manifest.json', json.dumps(dict(files=n, dirs=dirs, bytes=total, seed=seed,
                                                         gen_s=round(time.monotonic() - t0, 1))) + '\n')
    print('%d files, %.1f MB, %d directories, %.0f s' % (n, total / 1e6, dirs, time.monotonic() - t0),
          file=sys.stderr)
    return 0


def change_sets(top):
    """{set: [relative paths]}: d10 (DIFF_FILES), ours and theirs (CHANGES each), disjoint,
    from the tree's seed; sizes from DIR.plan.json (written by the script)."""
    m = manifest(top)
    with open(top.rstrip('/') + '.plan.json') as f:
        plan = json.load(f)
    n = m['files']
    _, path = tree_layout(n)
    rng = random.Random('%d-sets-%d-%d' % (m['seed'], plan['diff_files'], plan['changes']))
    picked = rng.sample(range(n), plan['diff_files'] + 2 * plan['changes'])
    k, c = plan['diff_files'], plan['changes']
    return {'d10': sorted(path(i) for i in picked[:k]), 'ours': sorted(path(i) for i in picked[k:k + c]),
            'theirs': sorted(path(i) for i in picked[k + c:])}


def cmd_files_set(top, name):
    print('\n'.join(change_sets(top)[name]))
    return 0


def state_path(top):
    return top.rstrip('/') + '.state.json'


def load_state(top):
    try:
        with open(state_path(top)) as f:
            return json.load(f)
    except FileNotFoundError:
        return {'applied': []}


def cmd_mutate(top, name):
    top = top.rstrip('/')
    st = load_state(top)
    if name in st['applied']:
        print('set %s is already applied' % name, file=sys.stderr)
        return 1
    orig = top + '.orig'
    os.makedirs(orig, exist_ok=True)
    st['applied'].append(name)
    write_atomic(state_path(top), json.dumps(st) + '\n')     # before the first change: a crash leaves it dirty
    rng = random.Random('%s-%s' % (manifest(top)['seed'], name))
    for rel in change_sets(top)[name]:
        p = os.path.join(top, rel)
        b = os.path.join(orig, rel.replace('/', '_'))
        if not os.path.exists(b):
            s = os.stat(p)
            with open(p, 'rb') as f:
                data = f.read()
            with open(b + '.tmp', 'wb') as f:
                f.write(data)
            os.utime(b + '.tmp', ns=(s.st_atime_ns, s.st_mtime_ns))
            os.replace(b + '.tmp', b)
        with open(p, 'r+b') as f:         # in place: same inode
            f.truncate(0)
            f.write(rng.randbytes(rng.randint(1024, 4096)))
    return 0


def cmd_restore(top, name):
    top = top.rstrip('/')
    st = load_state(top)
    orig = top + '.orig'
    sets = change_sets(top)
    names = [s for s in SETS if s in st['applied']] if name == 'all' else [name]
    for s in names:
        for rel in sets[s]:
            b = os.path.join(orig, rel.replace('/', '_'))
            if not os.path.exists(b):
                continue
            p = os.path.join(top, rel)
            bs = os.stat(b)
            with open(b, 'rb') as f:
                data = f.read()
            with open(p, 'r+b') as f:
                f.truncate(0)
                f.write(data)
            os.utime(p, ns=(bs.st_atime_ns, bs.st_mtime_ns))
        if s in st['applied']:
            st['applied'].remove(s)
    if st['applied']:
        write_atomic(state_path(top), json.dumps(st) + '\n')
    else:
        try:
            os.unlink(state_path(top))
        except FileNotFoundError:
            pass
        subprocess.run(['rm', '-rf', orig], check=True)
    return 0


def cmd_check_diff(output, top, name):
    want = set(change_sets(top)[name])
    got, other, summary = set(), [], ''
    with open(output, errors='replace') as f:
        for line in f:
            line = line.rstrip('\n')
            m = re.match(r'^([ADMRT])  (.*)$', line)
            if not m:
                if line.strip():
                    summary = line.strip()
                continue
            if m.group(1) == 'M':
                got.add(re.sub(r' \(.*\)$', '', m.group(2)))
            else:
                other.append(line)
    problems = []
    if got != want:
        problems.append('%d modified (%d expected; %d missing, %d extra)' % (
            len(got), len(want), len(want - got), len(got - want)))
    if other:
        problems.append('%d other changes (e.g. %s)' % (len(other), other[0][:120]))
    if problems:
        print('; '.join(problems) + ' [%s]' % summary)
        return 1
    print('OK: exactly the %d files of set %s modified (%s)' % (len(want), name, summary))
    return 0


# ------------------------------------------------------------------ timing
def cpu_busy():
    """Jiffies the whole machine spent busy so far (user nice system irq softirq steal)."""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)


def cmd_time(argv):
    a, cmd = parse_time(argv, ('--timeout', dict(type=float, default=600)), ('--save', dict(default=None)))
    if a.cold:
        drop_caches()
    with open('/proc/loadavg') as f:
        load1 = float(f.read().split()[0])
    out = open(a.save, 'w+b') if a.save else tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    rss = tempfile.NamedTemporaryFile(prefix='mergebench-rss-')
    b0 = cpu_busy()
    t0, t1, rc, ru, timed_out = run_group(['/usr/bin/time', '-f', '%M', '-o', rss.name, '--'] + cmd, a.timeout,
                                          out, err)
    b1 = cpu_busy()
    size = out.seek(0, os.SEEK_END)
    out.seek(max(0, size - 4096))
    tail = out.read().decode(errors='replace')
    out.seek(0)
    head = out.read(20000).decode(errors='replace')
    out.close()
    err.seek(0)
    etext = err.read().decode(errors='replace')
    lines = [l for l in tail.splitlines() if l.strip()]
    elines = [l for l in etext.splitlines() if l.strip() and not l.startswith('Command ')]
    maxrss = next((int(l) for l in reversed(open(rss.name).read().split('\n')) if l.strip().isdigit()), 0)
    rss.close()
    own = ru.ru_utime + ru.ru_stime
    rec = time_record(a, cmd, t0, t1, ru, rc, lines or elines[-1:], maxrss_kb=maxrss, out_bytes=size,
                      load1=load1, others_cpu_s=round(max(0.0, (b1 - b0) / CLK - own), 2))
    if timed_out:
        rec['timed_out'] = True
    if rc != 0:
        errs = [l for l in elines if 'error' in l.lower()] or elines[-1:]
        if errs:
            rec['err'] = errs[0][:300]
    if a.log:
        text = etext + (head if size <= 20000 else head + '\n[... %d bytes in all%s ...]\n' % (
            size, (', in ' + a.save) if a.save else ''))
        log_command(a.log, rec, text, ' maxrss=%d KiB out=%d B load1=%.2f others_cpu=%.2fs' % (
            maxrss, size, load1, rec['others_cpu_s']))
    append(a.out, rec)
    print('  %-5s %-16s r%d wall=%.3fs cpu=%.3fs rss=%.1fMiB rc=%d load=%.1f others=%.2fs%s' % (
        rec['peer'], rec['label'], rec['round'], rec['wall_s'], rec['cpu_s'], maxrss / 1024, rc, load1,
        rec['others_cpu_s'], ('  | ' + rec['out'][:100]) if rec['out'] else ''), file=sys.stderr)
    if rc != 0:
        sys.stderr.write('  %s\n' % ('timed out after %g s' % a.timeout if timed_out else
                                     'stderr of the failed command:\n' + etext[-2000:]))
    return 0 if rc == 0 else 1


# ------------------------------------------------------------------ report
MERGE_WALL_S, MERGE_RSS_MIB, FILES_S = 1.0, 256, 1.0


def cmd_report(outdir):
    P, recs, failed = load_run(outdir)
    R = Records(recs)
    nfmt = '{:,}'.format
    verdicts, rows = [], []   # rows: (#, what, tusk, daff, ratio, target, verdict)
    ver = [r for r in recs if r['label'] == 'verify']

    def bad_checks(phase, peer):
        return [r for r in ver if r.get('phase') == phase and r['peer'] == peer and r.get('value') != 'OK']

    def attempts(label, peer):
        return [r for r in recs if r['label'] == label and r['peer'] == peer and 'wall_s' in r]

    def fig(label, peer, key):
        k = {'wall': 'wall_s', 'cpu': 'cpu_s'}.get(key)
        return [(r[k] if k else r['maxrss_kb'] / 1024) for r in R.get(label, peer)]

    def show(label, peer, key, phase):
        xs = fig(label, peer, key)
        if xs:
            return cell(xs, 'MiB' if key == 'rss' else 's')
        at = attempts(label, peer)
        if any(r.get('timed_out') for r in at):
            t = max(r['wall_s'] for r in at)
            return 'timeout (> %s)' % fmt_s(t)
        if at:
            r = at[-1]
            return 'failed (rc %d%s)' % (r['rc'], (': ' + r['err'][:80]) if r.get('err') else '')
        return 'FAILED' if phase in failed else '—'

    def ratio(label, key, dlabel=None):
        t, d = fig(label, 'tusk', key), fig(dlabel or label, 'daff', key)
        if not t or not d or statistics.median(d) <= 0:
            return '—'
        x = statistics.median(t) / statistics.median(d)
        return ('%.2fx' if x >= 0.095 else '%.3fx') % x

    def target(label, key, phase, limit, what, note=''):
        xs = fig(label, 'tusk', key)
        unit = 's' if key == 'wall' else 'MiB'
        ok = None if not xs else statistics.median(xs) < limit if key == 'wall' else max(xs) < limit
        problems = bad_checks(phase, 'tusk')
        if phase in failed or problems or (attempts(label, 'tusk') and len(xs) < len(attempts(label, 'tusk'))):
            ok = False
        v = 'n.a.' if ok is None else ('PASS' if ok else '**FAIL**')
        lim = fmt_num(limit, unit, True)
        verdicts.append(('%s under %s%s' % (what, lim, note), v,
                         (cell(xs, unit) if key == 'wall' else 'max ' + fmt_num(max(xs), unit)) if xs else 'no figure'))
        return '< %s%s' % (lim, note), v

    C = P['table_changes']
    for k, n in enumerate(P['table_rows']):
        ph = 'table-%d' % n
        lm, ld = 'merge-t%d' % n, 'diff-t%d' % n
        num = str(k + 1)
        mb = R.values('bytes', ph)
        size = ' (%s)' % fmt_num(mb[0] / 1e6, 'MB') if mb else ''
        big = n >= 1000000
        tw = target(lm, 'wall', ph, MERGE_WALL_S, '%s-row merge' % nfmt(n)) if big else ('—', '')
        tr = target(lm, 'rss', ph, MERGE_RSS_MIB, '%s-row merge peak RSS' % nfmt(n)) if big else ('—', '')
        rows.append((num + 'a', '**merge** of a %s-row CSV%s, %s + %s cells changed on different rows: '
                     '`tusk merge` vs `daff merge`, wall' % (nfmt(n), size, nfmt(C), nfmt(C)),
                     show(lm, 'tusk', 'wall', ph), show(lm, 'daff', 'wall', ph), ratio(lm, 'wall')) + tw)
        rows.append((num + 'a', '… CPU (user+sys)', show(lm, 'tusk', 'cpu', ph), show(lm, 'daff', 'cpu', ph),
                     ratio(lm, 'cpu'), '—', ''))
        rows.append((num + 'b', '… peak RSS', show(lm, 'tusk', 'rss', ph), show(lm, 'daff', 'rss', ph),
                     ratio(lm, 'rss')) + tr)
        diffs = [('c', 'd', 'rows-t%d' % n, 'cell by cell: `tusk diff --rows` vs `daff diff`'),
                 ('e', 'f', ld, 'lines: `tusk diff --stat` vs `daff diff` (cells)')]
        for l1, l2, lt, what in diffs:
            if not attempts(lt, 'tusk'):
                continue                # (--rows: a tusk without it)
            rows.append((num + l1, 'diff of ours and theirs (%s rows differ), %s, wall' % (nfmt(2 * C), what),
                         show(lt, 'tusk', 'wall', ph), show(ld, 'daff', 'wall', ph), ratio(lt, 'wall', ld), '—', ''))
            rows.append((num + l1, '… CPU (user+sys)', show(lt, 'tusk', 'cpu', ph), show(ld, 'daff', 'cpu', ph),
                         ratio(lt, 'cpu', ld), '—', ''))
            rows.append((num + l2, '… peak RSS', show(lt, 'tusk', 'rss', ph), show(ld, 'daff', 'rss', ph),
                         ratio(lt, 'rss', ld), '—', ''))
    if P.get('files_n'):
        N, num, ph = P['files_n'], str(len(P['table_rows']) + 1), 'files'
        note = '' if N >= 1000000 else ' (target at 1,000,000 files; here %s)' % nfmt(N)
        tw = target('files-diff', 'wall', ph, FILES_S, '`tusk diff` (%d files differ) at %s files' % (
            P['diff_files'], nfmt(N)), note)
        rows.append((num + 'a', '**`tusk diff`** of two commits of a %s-file dataset that differ in %d files, wall'
                     % (nfmt(N), P['diff_files']), show('files-diff', 'tusk', 'wall', ph), 'n.a.', '—') + tw)
        rows.append((num + 'a', '… CPU (user+sys)', show('files-diff', 'tusk', 'cpu', ph), 'n.a.', '—', '—', ''))
        rows.append((num + 'b', '… peak RSS', show('files-diff', 'tusk', 'rss', ph), 'n.a.', '—', '—', ''))
        tw = target('files-merge', 'wall', ph, FILES_S, '`tusk merge` (%s + %s files changed) at %s files' % (
            nfmt(P['files_changes']), nfmt(P['files_changes']), nfmt(N)), note)
        rows.append((num + 'c', '**`tusk merge`** of two branches of it that each changed %s different files, wall'
                     % nfmt(P['files_changes']), show('files-merge', 'tusk', 'wall', ph), 'n.a.', '—') + tw)
        rows.append((num + 'c', '… CPU (user+sys)', show('files-merge', 'tusk', 'cpu', ph), 'n.a.', '—', '—', ''))
        rows.append((num + 'd', '… peak RSS', show('files-merge', 'tusk', 'rss', ph), 'n.a.', '—', '—', ''))

    out = ['| # | measurement | tusk | daff | tusk ÷ daff | target | verdict |', '|---|---|---|---|---|---|---|']
    for r in rows:
        out.append('| %s |' % ' | '.join(r[:-1] + (r[-1] or '—',)))
    out.append('')
    out.append('Median over %d round(s), min–max in parentheses; peak RSS: median (min–max) of the rounds, '
               'the target on the max.  %s  Walls are whole processes (monotonic, from start to exit); CPU is '
               'user+sys of the process tree (`wait4`), a figure the machine\'s load disturbs less; peak '
               'RSS is `/usr/bin/time -f %%M` (for daff: the node process).  tusk ÷ daff: ratio of the medians '
               '(below 1: tusk is faster / smaller).  daff: `daff merge %s --output OUT base ours theirs` and '
               '`daff diff %s --output OUT ours theirs` on the same files (daff %s, node %s, NODE_OPTIONS=%s); '
               'a daff that passed `DAFF_TIMEOUT` (%d s) is stopped and not run again at that size.'
               % (P['runs'], 'Page cache dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) before every timed '
                  'command.' if P.get('cold') else 'Warm page cache.', P['daff_args'], P['daff_args'],
                  P['daff_version'], P['node_version'], P['node_options'] or '(none)', P['daff_timeout']))
    # info: imports
    info = []
    for n in P['table_rows']:
        ph = 'table-%d' % n
        bits = ['%s %s' % (what, fmt_s(R.walls(lab, 'tusk')[0]))
                for lab, what in (('import-base-t%d' % n, 'base'), ('import-ours-t%d' % n, 'ours'),
                                  ('import-theirs-t%d' % n, 'theirs')) if R.walls(lab, 'tusk')]
        if bits:
            info.append('- set-up, %s rows: `tusk import` (timed once): %s' % (nfmt(n), ', '.join(bits)))
    if P.get('files_n'):
        bits = ['%s %s' % (what, fmt_s(R.walls(lab, 'tusk')[0]))
                for lab, what in (('import-base', 'base (%s files, all read)' % nfmt(P['files_n'])),
                                  ('import-d10', 'the %d-file change' % P['diff_files']),
                                  ('import-ours', 'ours (%s files changed)' % nfmt(P['files_changes'])),
                                  ('import-theirs', 'theirs (%s changed, %s put back)' % (
                                      nfmt(P['files_changes']), nfmt(P['files_changes']))))
                if R.walls(lab, 'tusk')]
        if bits:
            info.append('- set-up, %s files: `tusk import` (timed once): %s' % (nfmt(P['files_n']), ', '.join(bits)))
        sb = R.values('store_bytes', 'files')
        if sb:
            info.append('- the files store after the imports: %s' % fmt_num(sb[0] / 2**20, 'MiB'))
    if info:
        out += [''] + info
    # machine load
    timed = [r for r in recs if 'load1' in r and r['label'].startswith(('merge', 'diff', 'files-'))]
    if timed:
        loads = [r['load1'] for r in timed]
        oth = [r['others_cpu_s'] / max(r['wall_s'], 1e-6) for r in timed]
        out.append('')
        out.append('Machine load during the timed commands: 1-minute load average median %.1f (max %.1f) on %s '
                   'CPUs; CPU used by other processes meanwhile: median %.2f CPUs (max %.2f).%s' % (
                       statistics.median(loads), max(loads), P.get('nproc', '?'), statistics.median(oth), max(oth),
                       '  **Noisy**: others used more than half a CPU during some timed commands; compare '
                       'rounds (commands.log has each one\'s load).' if max(oth) > 0.5 else ''))
    out.append('')
    out.append('Targets (the issue\'s):')
    out.append('')
    for what, v, detail in verdicts:
        out.append('- %s %s (%s)' % (v, what, detail))
    allok = bool(verdicts) and all(v == 'PASS' for _, v, _ in verdicts) and not failed
    out.append('')
    out.append('**Overall: %s**' % ('PASS' if allok else 'FAIL'))
    out += status_lines(recs, failed, 'phases', 'every merge clean (exit 0), its result equal to the expected '
                        'table or tree, tables merged by key, the diffs list exactly the changed rows or files')
    print('\n'.join(out))
    return 0


def cmd_record(argv):
    """record, with an optional --phase (verify records name the phase they belong to)."""
    import argparse
    ap = argparse.ArgumentParser(prog='merge_tables.py record')
    for o in ('--out', '--label', '--peer', '--value'):
        ap.add_argument(o, required=True)
    ap.add_argument('--round', type=int, default=0)
    ap.add_argument('--phase', default='')
    a = ap.parse_args(argv)
    try:
        v = float(a.value)
    except ValueError:
        v = a.value
    rec = dict(label=a.label, peer=a.peer, round=a.round, value=v)
    if a.phase:
        rec['phase'] = a.phase
    append(a.out, rec)
    return 0


if __name__ == '__main__':
    sys.exit(main(__doc__, {'time': cmd_time, 'rec': cmd_record},
                  {'gen-table': cmd_gen_table, 'gen-files': cmd_gen_files, 'files-set': cmd_files_set,
                   'mutate': cmd_mutate, 'restore': cmd_restore, 'check-table': cmd_check_table,
                   'check-diff': cmd_check_diff, 'check-daff-diff': cmd_check_daff_diff, 'report': cmd_report}))
