#!/usr/bin/env python3
"""Markdown tables for tools/bench (stdlib only).

  report.py peers OUTDIR PEER...   import_bench.sh: one column per peer
  report.py sweep OUTDIR           chunk_sweep.sh: one row per setting (OUTDIR/settings.tsv)

Reads OUTDIR/results.jsonl (records written by shared/bench/lib/benchlib.py),
OUTDIR/manifest.json (dataset sizes, ideal increment) and OUTDIR/failed.tsv.
MB = 10^6 bytes.  Walls are medians over the successful rounds, with min-max.
"""
import json, os, statistics, sys

sys.dont_write_bytecode = True                                   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # benchutil.py is beside this file
from benchutil import load_failed, load_records


def load(out):
    recs = load_records(os.path.join(out, 'results.jsonl'))
    man = json.load(open(os.path.join(out, 'manifest.json')))
    return recs, man, load_failed(out)


class Peer:
    """All successful measurements of one peer (or sweep setting)."""

    def __init__(self, recs, name):
        def timed(label):
            return [r for r in recs if r.get('peer') == name and r.get('label') == label
                    and r.get('rc', 0) == 0]

        def vals(label):
            return [r['value'] for r in recs if r.get('peer') == name and r.get('label') == label]

        self.v1 = timed('import_v1')
        self.v2 = timed('import_v2')
        self.s1 = vals('stored_v1')
        self.incr = vals('stored_incr')

    def wall(self, ver):
        xs = [r['wall_s'] for r in (self.v1 if ver == 1 else self.v2)]
        return statistics.median(xs) if xs else None

    def spread(self, ver):
        xs = [r['wall_s'] for r in (self.v1 if ver == 1 else self.v2)]
        return (min(xs), max(xs)) if xs else None

    def cpu(self, ver):
        xs = [r['cpu_s'] for r in (self.v1 if ver == 1 else self.v2)]
        return statistics.median(xs) if xs else None

    def rss(self):
        xs = [r['maxrss_mb'] for r in self.v1 + self.v2]
        return max(xs) if xs else None

    def stored1(self):
        return statistics.median(self.s1) if self.s1 else None

    def increment(self):
        return statistics.median(self.incr) if self.incr else None


def f(x, fmt='%.2f'):
    return '—' if x is None else fmt % x


def rng(s):
    return '—' if s is None else '%.2f–%.2f' % s


def speed_vs(t_tusk, t_peer, peer):
    """'1.85× faster than borg' from two wall (or CPU) times."""
    if not t_tusk or not t_peer:
        return '—'
    r = t_peer / t_tusk
    return ('%.2f× faster than %s' % (r, peer)) if r >= 1 else ('%.2f× slower than %s' % (1 / r, peer))


def size_vs(s_tusk, s_peer, peer):
    if s_tusk is None or not s_peer:
        return '—'
    return 'tusk/%s = %.2f (lower is better)' % (peer, s_tusk / s_peer)


def best(peers, key):
    """(name, value) of the other peer with the lowest key value."""
    c = [(key(p), n) for n, p in peers.items() if n != 'tusk' and key(p) is not None]
    if not c:
        return None, None
    v, n = min(c)
    return n, v


def peers_report(out, names):
    recs, man, failed = load(out)
    v1b, ideal = man['v1_bytes'], man['ideal_incremental_bytes']
    P = {n: Peer(recs, n) for n in names}
    runs = {n: 'v1 %d, v2 %d' % (len(P[n].v1), len(P[n].v2)) for n in names}
    rows = [
        ('import v1 wall s (median)', lambda p: f(p.wall(1))),
        ('import v1 wall s (min–max)', lambda p: rng(p.spread(1))),
        ('import v1 MB/s', lambda p: f(v1b / 1e6 / p.wall(1), '%.1f') if p.wall(1) else '—'),
        ('import v1 CPU s (user+sys)', lambda p: f(p.cpu(1))),
        ('stored v1 / raw (%)', lambda p: f(100.0 * p.stored1() / v1b, '%.1f') if p.stored1() else '—'),
        ('import v2 wall s (median)', lambda p: f(p.wall(2))),
        ('import v2 wall s (min–max)', lambda p: rng(p.spread(2))),
        ('import v2 CPU s (user+sys)', lambda p: f(p.cpu(2))),
        ('stored increment (bytes)', lambda p: f(p.increment(), '%.0f')),
        ('increment / ideal changed bytes', lambda p: f(p.increment() / ideal, '%.2f') if p.increment() is not None else '—'),
        ('importer peak RSS MB', lambda p: f(p.rss(), '%.0f')),
        ('successful rounds', None),
    ]
    has_tusk = 'tusk' in P and P['tusk'].v1
    t = P.get('tusk')
    fast1, _ = best(P, lambda p: p.wall(1))
    cpu1, _ = best(P, lambda p: p.cpu(1))
    small1, _ = best(P, lambda p: p.stored1())
    ref2 = 'restic' if 'restic' in P and P['restic'].v2 else best(P, lambda p: p.wall(2))[0]
    cpu2, _ = best(P, lambda p: p.cpu(2))
    smalli, _ = best(P, lambda p: p.increment())
    vs = {}
    if has_tusk:
        g = P.get
        vs = {
            'import v1 wall s (median)': speed_vs(t.wall(1), g(fast1).wall(1), fast1) if fast1 else '—',
            'import v1 MB/s': speed_vs(t.wall(1), g(fast1).wall(1), fast1) if fast1 else '—',
            'import v1 CPU s (user+sys)': speed_vs(t.cpu(1), g(cpu1).cpu(1), cpu1).replace('faster', 'less CPU').replace('slower', 'more CPU') if cpu1 else '—',
            'stored v1 / raw (%)': size_vs(t.stored1(), g(small1).stored1(), small1) if small1 else '—',
            'import v2 wall s (median)': speed_vs(t.wall(2), g(ref2).wall(2), ref2) if ref2 else '—',
            'import v2 CPU s (user+sys)': speed_vs(t.cpu(2), g(cpu2).cpu(2), cpu2).replace('faster', 'less CPU').replace('slower', 'more CPU') if cpu2 else '—',
            'stored increment (bytes)': size_vs(t.increment(), g(smalli).increment(), smalli) if smalli else '—',
        }
    hdr = ['metric'] + names + (['tusk vs best other peer'] if 'tusk' in P else [])
    o = ['| ' + ' | '.join(hdr) + ' |', '|' + '---|' * len(hdr)]
    for label, fn in rows:
        cells = [runs[n] if fn is None else (fn(P[n]) if P[n].v1 else 'FAILED') for n in names]
        if 'tusk' in P:
            cells.append(vs.get(label, ''))
        o.append('| ' + ' | '.join([label] + cells) + ' |')
    o.append('')
    o.append('Raw v1 = %d B, ideal increment = %d B (changed bytes of v2).  MB = 10^6 B.  '
             'Each round uses a fresh store; page cache dropped before every import.' % (v1b, ideal))
    if has_tusk:
        o.append('')
        if fast1 and t.wall(1):
            o.append('**tusk import v1: %s** (the faster peer; median wall %.2f s vs %.2f s).'
                     % (speed_vs(t.wall(1), P[fast1].wall(1), fast1), t.wall(1), P[fast1].wall(1)))
        if ref2 and t.wall(2) and P[ref2].wall(2):
            o.append('**tusk import v2: %s** (median wall %.2f s vs %.2f s).'
                     % (speed_vs(t.wall(2), P[ref2].wall(2), ref2), t.wall(2), P[ref2].wall(2)))
    for n, why in failed.items():
        o.append('')
        o.append('FAILED %s: %s' % (n, why))
    return '\n'.join(o)


def stats_cells(path):
    """chunk count and mean unique chunk size from `tusk stats --json` (after v2, round 1)."""
    try:
        st = json.load(open(path))
        n, u = st['chunks'], st['unique_bytes']
        return ['%d' % n, '%.0f' % (u / n / 1024) if n else '—']
    except (OSError, ValueError, KeyError, TypeError):
        return ['—', '—']


def sweep_report(out):
    recs, man, failed = load(out)
    v1b, ideal = man['v1_bytes'], man['ideal_incremental_bytes']
    settings = []
    for line in open(os.path.join(out, 'settings.tsv')):
        name, _, args = line.rstrip('\n').partition('\t')
        settings.append((name, args))
    hdr = ['setting', 'tusk init args', 'v1 wall s (median)', 'v1 wall min–max', 'v1 MB/s',
           'v1 CPU s', 'stored v1 / raw (%)', 'v2 wall s', 'v2 increment (B)', 'increment / ideal',
           'chunks', 'mean chunk KiB', 'rounds']
    o = ['| ' + ' | '.join(hdr) + ' |', '|' + '---|' * len(hdr)]
    for name, args in settings:
        p = Peer(recs, name)
        if not p.v1:
            o.append('| ' + ' | '.join([name, '`%s`' % args, 'FAILED: %s' % failed.get(name, 'no data')]
                                       + [''] * (len(hdr) - 3)) + ' |')
            continue
        w1, s1, inc = p.wall(1), p.stored1(), p.increment()
        cells = [name, '`%s`' % args, f(w1), rng(p.spread(1)), f(v1b / 1e6 / w1, '%.1f'), f(p.cpu(1)),
                 f(100.0 * s1 / v1b, '%.1f') if s1 else '—', f(p.wall(2)),
                 f(inc, '%.0f'), f(inc / ideal, '%.2f') if inc is not None else '—']
        cells += stats_cells(os.path.join(out, name + '.stats.json'))
        cells.append('%d' % len(p.v1))
        o.append('| ' + ' | '.join(cells) + ' |')
    o.append('')
    o.append('Raw v1 = %d B, ideal increment = %d B (changed bytes of v2).  MB = 10^6 B.  '
             'Chunk sizes: min = avg/4, max = avg*4; compression rows use the default chunk sizes.  '
             'chunks / mean chunk: distinct chunks after v2 and unique bytes / chunks (`tusk stats`, round 1).  '
             'Each round uses a fresh store; page cache dropped before every import.' % (v1b, ideal))
    for n, why in failed.items():
        o.append('')
        o.append('FAILED %s: %s' % (n, why))
    return '\n'.join(o)


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ('peers', 'sweep'):
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == 'peers':
        print(peers_report(sys.argv[2], sys.argv[3:]))
    else:
        print(sweep_report(sys.argv[2]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
