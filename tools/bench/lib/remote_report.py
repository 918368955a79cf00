#!/usr/bin/env python3
"""Records and report of tools/bench/remote_bench.sh (stdlib only).

  remote_report.py rec --out F --peer P --label L --value V [--round R] [--unit U] [--what W]
        appends one plain record (a number when V parses as one) to the JSON-lines file F
  remote_report.py summary F
        one line about the last record of F (for the progress log)
  remote_report.py check-small F FILES BYTES
        exit 1 (with a message) unless the last record of F read FILES files and BYTES bytes
  remote_report.py crc F
        prints the crc of the last record of F (randread.py), or nothing
  remote_report.py report OUTDIR
        the markdown table of OUTDIR/results.jsonl (timed records of the shared
        benchlib.py plus the plain records above), with OUTDIR/manifest.json,
        OUTDIR/params.json and OUTDIR/failed.tsv

A copy of this file sits in each results directory: `python3 remote_report.py report .`
re-renders the report there.
"""
import json, os, statistics, sys

MB = 1e6


def load(path):
    recs = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        recs.append(json.loads(line))
                    except ValueError:
                        pass
    return recs


def last(path):
    recs = load(path)
    if not recs:
        sys.exit('no records in %s' % path)
    return recs[-1]


def cmd_rec(argv):
    import argparse
    ap = argparse.ArgumentParser(prog='remote_report.py rec')
    for o in ('--out', '--peer', '--label', '--value'):
        ap.add_argument(o, required=True)
    ap.add_argument('--round', type=int, default=0)
    ap.add_argument('--unit', default='')
    ap.add_argument('--what', default='')
    a = ap.parse_args(argv)
    try:
        v = float(a.value)
    except ValueError:
        v = a.value
    rec = dict(peer=a.peer, label=a.label, round=a.round, value=v)
    if a.unit:
        rec['unit'] = a.unit
    if a.what:
        rec['what'] = a.what
    with open(a.out, 'a') as f:
        f.write(json.dumps(rec) + '\n')


def cmd_summary(path):
    r = last(path)
    if 'wall_s' not in r:
        print('%s %s = %s' % (r['peer'], r['label'], r.get('value')))
        return
    s = 'wall %.3f s' % r['wall_s']
    if r.get('bytes'):
        s += ', %.1f MB/s' % (r['bytes'] / MB / r['wall_s'])
    if r.get('files'):
        s += ', %.0f files/s' % (r['files'] / r['wall_s'])
    inner = r.get('inner') or {}
    if 'iops' in inner:
        s += ', %.0f IOPS (p99 %.0f us)' % (inner['iops'], inner.get('lat_p99_us', 0))
    if 'large_seq_1' in inner:
        s += ', raw GET large %.1f MB/s, small 1 thread %.0f objects/s' % (
            inner['large_seq_1']['mb_s_median'], inner['small_1thr']['objects_s_median'])
    if r.get('daemon_cpu_s') is not None:
        s += ', daemon CPU %.2f s' % r['daemon_cpu_s']
    if r.get('rc'):
        s += ', EXIT %d' % r['rc']
    print(s)


def cmd_check_small(path, files, nbytes):
    inner = last(path).get('inner') or {}
    if inner.get('files') != int(files) or inner.get('bytes') != int(nbytes):
        print('read %s files, %s bytes; expected %s files, %s bytes' % (
            inner.get('files'), inner.get('bytes'), files, nbytes))
        sys.exit(1)
    print('%s files, %s bytes' % (files, nbytes))


def cmd_crc(path):
    inner = last(path).get('inner') or {}
    if 'crc' in inner:
        print(inner['crc'])


# ------------------------------------------------------------------ report
def wall(r):
    return r['wall_s']


def mbps(r):
    return r['bytes'] / MB / r['wall_s']


def fps(r):
    return r['files'] / r['wall_s']


def inner(*keys):
    def f(r):
        v = r.get('inner') or {}
        for k in keys:
            if not isinstance(v, dict) or k not in v:
                return None
            v = v[k]
        return v
    return f


def value(r):
    return r['value'] if isinstance(r.get('value'), (int, float)) else None


class Records:
    def __init__(self, recs):
        self.by = {}
        for r in recs:
            self.by.setdefault((r['peer'], r['label']), []).append(r)

    def vals(self, peer, label, fn):
        """Figures of the successful records (rc 0 or a plain record)."""
        out = []
        for r in self.by.get((peer, label), []):
            if r.get('rc', 0) != 0:
                continue
            try:
                v = fn(r)
            except (KeyError, TypeError, ZeroDivisionError):
                v = None
            if v is not None:
                out.append(v)
        return out

    def failed(self, peer, label):
        return sum(1 for r in self.by.get((peer, label), []) if r.get('rc', 0) != 0)


def fmt(x, f):
    if x is None:
        return '—'
    if f == 'MB':
        return '%.2f MB' % (x / MB) if x < 10 * MB else '{:,.1f} MB'.format(x / MB)
    if f == 'x':
        return '%.2fx' % x
    if f == 'int':
        return '{:,.0f}'.format(x)
    return f % x


def cell(xs, f):
    if not xs:
        return '—'
    s = fmt(statistics.median(xs), f)
    if len(xs) > 1:
        lo, hi = fmt(min(xs), f), fmt(max(xs), f)
        if f == 'MB':
            lo, hi = lo[:-3], hi[:-3]
        s += ' (%s–%s)' % (lo, hi)
    return s


def med(xs):
    return statistics.median(xs) if xs else None


def report(outdir):
    recs = load(os.path.join(outdir, 'results.jsonl'))
    R = Records(recs)
    man = json.load(open(os.path.join(outdir, 'manifest.json')))
    par = json.load(open(os.path.join(outdir, 'params.json')))
    ideal = man['ideal_incremental_bytes']
    rand_n = par.get('rand_n')

    def ideal_ratio(r):
        return r['value'] / ideal if isinstance(r.get('value'), (int, float)) else None

    raw_large = inner('large_seq_1', 'mb_s_median')
    raw_small1 = inner('small_1thr', 'objects_s_median')
    raw_small1_mb = inner('small_1thr', 'mb_s_median')
    rand = inner('iops')

    # target kinds: ('lt', 1): tusk/peer < 1; ('ge', x): tusk/peer >= x; ('abs_le', x): tusk <= x
    rows = [
        ('**1. Push to S3** (v1, then v2 on top; page cache dropped first; bytes = bucket size delta)',),
        ('1a', 'push v1 wall [s]', ('tusk', 'push_v1', wall), ('restic backup', 'restic', 'backup_v1', wall),
         '%.2f', ('lt', 1.0, 'tusk < restic')),
        ('1b', 'push v2 wall [s]', ('tusk', 'push_v2', wall), ('restic backup', 'restic', 'backup_v2', wall),
         '%.2f', ('lt', 1.0, 'tusk < restic')),
        ('1c', 'v2 bytes uploaded / ideal increment', ('tusk', 'uploaded_v2', ideal_ratio),
         ('restic backup', 'restic', 'uploaded_v2', ideal_ratio), 'x', ('abs_le', 1.10, 'tusk ≤ 1.10x ideal')),
        ('1d', 'v1 bytes uploaded', ('tusk', 'uploaded_v1', value), ('restic backup', 'restic', 'uploaded_v1', value),
         'MB', None),
        ('1e', 'v2 bytes uploaded', ('tusk', 'uploaded_v2', value), ('restic backup', 'restic', 'uploaded_v2', value),
         'MB', None),
        ('1f', 'import + push v1 wall [s] (both steps of what restic backup does)', ('tusk', 'import_push_v1', value),
         ('restic backup', 'restic', 'backup_v1', wall), '%.2f', None),
        ('1g', 'import + push v2 wall [s]', ('tusk', 'import_push_v2', value),
         ('restic backup', 'restic', 'backup_v2', wall), '%.2f', None),
        ('**2. Cold reads through a lazy mount of a clone** (bench@main = v2; before each test: unmount, '
         'cache removed, remount, page cache dropped)',),
        ('2a', 'large files sequential [MB/s]', ('tusk-clone', 'seq_large', mbps),
         ('raw GET, 1 stream', 'raw-get', 'rawget', raw_large), '%.1f', ('ge', 0.8, 'tusk ≥ 0.8x raw GET')),
        ('2b', 'small files, 1 thread [files/s]', ('tusk-clone', 'small_py1', fps),
         ('restic mount', 'restic-mount', 'small_py1', fps), '%.0f', ('ge', 5.0, 'tusk ≥ 5x restic mount')),
        ('2c', 'small files, 1 thread [MB/s]', ('tusk-clone', 'small_py1', mbps),
         ('restic mount', 'restic-mount', 'small_py1', mbps), '%.1f', None),
        ('2d', 'random 4 KiB pread in large/f2, %s reads [IOPS]' % rand_n, ('tusk-clone', 'rand4k', rand),
         ('restic mount', 'restic-mount', 'rand4k', rand), '%.0f', None),
        ('2e', 'large files sequential [MB/s]', ('tusk-clone', 'seq_large', mbps),
         ('restic mount', 'restic-mount', 'seq_large', mbps), '%.1f', None),
        ('2f', 'small files, 1 thread [files/s]', ('tusk-clone', 'small_py1', fps),
         ('raw GET, 1 thread [objects/s]', 'raw-get', 'rawget', raw_small1), '%.0f', None),
        ('2g', 'small files, 1 thread [MB/s]', ('tusk-clone', 'small_py1', mbps),
         ('raw GET, 1 thread', 'raw-get', 'rawget', raw_small1_mb), '%.1f', None),
        ('**3. After `tusk prefetch bench@main`** (clone, all data in its cache) beside a mount of the original '
         'local store (before each test: remount, page cache dropped)',),
        ('3a', 'large files sequential [MB/s]', ('tusk-prefetched', 'seq_large', mbps),
         ('local store', 'tusk-local', 'seq_large', mbps), '%.1f', ('ge', 0.9, 'ratio ≥ 0.9')),
        ('3b', 'small files, 1 thread [files/s]', ('tusk-prefetched', 'small_py1', fps),
         ('local store', 'tusk-local', 'small_py1', fps), '%.0f', ('ge', 0.9, 'ratio ≥ 0.9')),
        ('3c', 'small files, 1 thread [MB/s]', ('tusk-prefetched', 'small_py1', mbps),
         ('local store', 'tusk-local', 'small_py1', mbps), '%.1f', ('ge', 0.9, 'ratio ≥ 0.9')),
        ('3d', 'random 4 KiB pread in large/f2, %s reads [IOPS]' % rand_n, ('tusk-prefetched', 'rand4k', rand),
         ('local store', 'tusk-local', 'rand4k', rand), '%.0f', ('ge', 0.9, 'ratio ≥ 0.9')),
        ('3e', 'prefetch of bench@main, 8 jobs (default) [MB/s of v2 data]', ('tusk-clone', 'prefetch', mbps),
         ('raw GET small, 8 threads', 'raw-get', 'rawget', inner('small_8thr', 'mb_s_median')), '%.1f', None),
    ]
    o = []
    o.append('| # | row | tusk | peer | peer figure | tusk / peer | target | result |')
    o.append('|---|---|---|---|---|---|---|---|')
    npass = nfail = nna = 0
    for row in rows:
        if len(row) == 1:
            o.append('| | %s | | | | | | |' % row[0])
            continue
        rid, title, (tp, tl, tf), peer, f, target = row
        tv = R.vals(tp, tl, tf)
        pname, pp, pl, pf = peer
        pv = R.vals(pp, pl, pf)
        tm, pm = med(tv), med(pv)
        ratio = tm / pm if tm is not None and pm else None
        res, ttext = '', '—'
        if target:
            kind, x, ttext = target
            if kind == 'abs_le':
                ok = tm <= x if tm is not None else None
            elif ratio is None:
                ok = None
            elif kind == 'lt':
                ok = ratio < x
            else:
                ok = ratio >= x
            if ok is None:
                res = 'n/a'
                nna += 1
            elif ok:
                res = '**PASS**'
                npass += 1
            else:
                res = '**FAIL**'
                nfail += 1
        tcell, pcell = cell(tv, f), cell(pv, f)
        if not tv and R.failed(tp, tl):
            tcell = 'failed'
        if not pv and R.failed(pp, pl):
            pcell = 'failed'
        o.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
            rid, title, tcell, pname, pcell, fmt(ratio, 'x'), ttext, res))
    o.append('')
    o.append('Targets: %d PASS, %d FAIL, %d n/a.  Figures: median of the rounds (min–max).  '
             'MB = 10^6 bytes; ideal increment = %s B (the changed bytes of v2, from the generator\'s '
             'manifest.json).' % (npass, nfail, nna, '{:,}'.format(ideal)))
    o.append('')

    # ---------------------------------------------------------------- details
    o.append('### Details')
    o.append('')
    o.append('| peer | step | runs | wall s | throughput | daemon CPU s | notes |')
    o.append('|---|---|---|---|---|---|---|')

    def drow(peer, label, what, thr=None, thr_f=None, note=''):
        rs = R.by.get((peer, label), [])
        if not rs:
            return
        ok = len([r for r in rs if r.get('rc', 0) == 0])
        runs = '%d' % ok if ok == len(rs) else '%d of %d ok' % (ok, len(rs))
        t = cell(R.vals(peer, label, thr), thr_f) if thr else ''
        o.append('| %s | %s | %s | %s | %s | %s | %s |' % (
            peer, what, runs, cell(R.vals(peer, label, wall), '%.3f'), t,
            cell(R.vals(peer, label, lambda r: r.get('daemon_cpu_s')), '%.2f'), note))

    for p, lab in (('tusk', 'import_v1'), ('tusk', 'push_v1'), ('tusk', 'import_v2'), ('tusk', 'push_v2'),
                   ('restic', 'init'), ('restic', 'backup_v1'), ('restic', 'backup_v2')):
        drow(p, lab, lab.replace('_', ' '))
    drow('tusk-clone', 'clone', 'tusk clone (metadata only)')
    drow('raw-get', 'upload', 'rclone copy of the v2 tree (set-up of the raw GET peer)', mbps, '%.1f MB/s')
    for p in ('tusk-clone', 'restic-mount', 'tusk-prefetched', 'tusk-local'):
        drow(p, 'mount', 'mount (until usable)')
        fetched = R.vals(p, 'fetched_seq_large', value)
        drow(p, 'seq_large', 'cat large/f0..f3', mbps, '%.1f MB/s',
             ('fetched into cache: %s' % cell(fetched, 'MB')) if fetched else '')
        fetched = R.vals(p, 'fetched_small_py1', value)
        drow(p, 'small_py1', 'readfiles.py small 1', fps, '%.0f files/s',
             ('fetched into cache: %s' % cell(fetched, 'MB')) if fetched else '')
        fetched = R.vals(p, 'fetched_rand4k', value)
        p99 = R.vals(p, 'rand4k', inner('lat_p99_us'))
        notes = 'p99 %s µs' % cell(p99, '%.0f') if p99 else ''
        if fetched:
            notes += '; fetched into cache: %s' % cell(fetched, 'MB')
        drow(p, 'rand4k', 'randread.py large/f2 %s' % rand_n, rand, '%.0f IOPS', notes)
    drow('raw-get', 'rawget', 's3_raw_get.py (large 1 stream; small 1 and 8 threads)', raw_large,
         '%.1f MB/s large')
    cache = R.vals('tusk-clone', 'cache_after_prefetch', value)
    drow('tusk-clone', 'prefetch', 'tusk prefetch bench@main', mbps, '%.1f MB/s',
         ('cache after: %s' % cell(cache, 'MB')) if cache else '')
    o.append('')

    # ---------------------------------------------------------------- problems
    probs = []
    fpath = os.path.join(outdir, 'failed.tsv')
    if os.path.exists(fpath):
        for line in open(fpath):
            if line.strip():
                name, _, why = line.rstrip('\n').partition('\t')
                probs.append('- FAILED %s: %s' % (name, why))
    for r in recs:
        if r.get('label') == 'verify' and r.get('value') != 'OK':
            probs.append('- verify %s, round %s, %s: %s' % (r['peer'], r.get('round'), r.get('what', ''), r['value']))
    nz = {}
    for r in recs:
        if 'wall_s' in r and r.get('rc', 0) != 0:
            nz.setdefault((r['peer'], r['label']), []).append(r['rc'])
    for (p, l), rcs in sorted(nz.items()):
        probs.append('- %s %s: %d run(s) exited non-zero (rc %s)' % (
            p, l, len(rcs), ','.join(str(x) for x in sorted(set(rcs)))))
    src = [r for r in recs if r.get('label') == 'rand4k_src']
    if src:
        want = src[-1].get('value')
        bad = {}
        for r in recs:
            if r.get('label') == 'rand4k' and r.get('rc', 0) == 0:
                c = (r.get('inner') or {}).get('crc')
                if c is not None and c != want:
                    bad[r['peer']] = bad.get(r['peer'], 0) + 1
        for p, n in sorted(bad.items()):
            probs.append('- %s: %d random-read run(s) returned data that differs from the source file '
                         '(crc != %s)' % (p, n, want))
    if probs:
        o.append('Problems:')
        o.append('')
        o.extend(probs)
    else:
        o.append('No problems: every step exited 0; every small-file read saw all %s files and bytes of v2; '
                 'every random read returned the bytes of the source file (crc)%s.' % (
                     '{:,}'.format(man['v2_small_files']),
                     '; large files of the clone mount match the source (sha256)'
                     if any(r.get('label') == 'verify' and r.get('what') == 'large sha256' for r in recs) else ''))
    return '\n'.join(o)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    c, a = sys.argv[1], sys.argv[2:]
    if c == 'rec':
        cmd_rec(a)
    elif c == 'summary':
        cmd_summary(a[0])
    elif c == 'check-small':
        cmd_check_small(*a[:3])
    elif c == 'crc':
        cmd_crc(a[0])
    elif c == 'report':
        print(report(a[0]))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
