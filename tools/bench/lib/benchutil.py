"""Shared helpers of the Python helpers embedded in tools/bench (stdlib only).

million_bench.sh (millionbench.py), workspace_bench.sh (wsbench.py) and lib/report.py use it.
The two benchmark scripts copy this file into each results directory beside their helper,
which imports it from its own directory: the results directory re-renders its report on its
own, and an edit of tools/bench during a run does not change the helper halfway.

  timing:   drop_caches, proc_cpu, parse_time, time_record, add_daemon_cpu, log_command
  records:  append, common (the --out/--label/--peer/--round/--pid options), cmd_record,
            cmd_vmhwm, last_out, last_err
  report:   load_records, load_failed, load_run, Records, ratio_v, ratio, stored_bytes,
            fmt_s, fmt_num, cell, status_lines
  main:     the command dispatch of a helper, with the shared commands record, vmhwm,
            last-out, last-err
"""
import argparse, json, os, re, signal, statistics, subprocess, sys, threading, time

CLK = os.sysconf('SC_CLK_TCK')


# ------------------------------------------------------------------ timing
def alive(pid):
    """Whether PID is a live process (a zombie counts as gone)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            s = f.read()
        return s[s.rindex(')') + 2] != 'Z'
    except (OSError, ValueError, IndexError):
        return False


def stop_group(pgid, grace=0.0):
    """KILL the process group at once (grace 0), or TERM it first and KILL what is left
    GRACE seconds later or when its leader has exited (`tusk run` passes TERM on to its
    command and still records the run)."""
    if grace > 0:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except OSError:
            return
        end = time.monotonic() + grace
        while time.monotonic() < end and alive(pgid):
            time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def run_group(cmd, timeout, stdout, stderr, grace=0.0, on_signal=None):
    """Runs CMD (stdin /dev/null) in a process group of its own, so that a timeout or a
    TERM/INT to us stops the whole command (stop_group with GRACE).  Output goes to files,
    not pipes: a command that leaves a daemon behind must not hold our pipe open.  On a
    signal, on_signal(sig, t0) runs after the group is stopped and we exit 128 + sig.
    Returns (t0, t1, rc, rusage, timed_out); rc is 124 after a timeout."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, preexec_fn=os.setpgrp)
    timed_out = []

    def handler(sig, _):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_group(p.pid, grace)
        if on_signal:
            on_signal(sig, t0)
        sys.exit(128 + sig)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    timer = threading.Timer(timeout, lambda: (timed_out.append(1), stop_group(p.pid, grace)))
    timer.daemon = True
    timer.start()
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.monotonic()
    timer.cancel()
    rc = 124 if timed_out else os.waitstatus_to_exitcode(status)
    return t0, t1, rc, ru, bool(timed_out)


def drop_caches():
    os.sync()
    with open('/proc/sys/vm/drop_caches', 'w') as f:
        f.write('3\n')


def proc_cpu(pid):
    """CPU seconds (user + sys) of PID so far, None without PID or when unreadable."""
    if not pid:
        return None
    try:
        with open('/proc/%s/stat' % pid) as f:
            s = f.read()
        fields = s[s.rindex(')') + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except (OSError, ValueError, IndexError):
        return None


def prog(cmd):
    """'millionbench.py CMD': the helper's name (as run) and the command, for argparse."""
    return '%s %s' % (os.path.basename(sys.argv[0]), cmd)


def parse_time(argv, *extra):
    """The arguments of a helper's `time` command: the common options, the EXTRA ones
    ((flag, argparse keywords) pairs), --cold, --log and -- CMD...; returns (args, CMD)."""
    ap = argparse.ArgumentParser(prog=prog('time'))
    common(ap)
    for flag, kw in extra:
        ap.add_argument(flag, **kw)
    ap.add_argument('--cold', action='store_true')
    ap.add_argument('--log')
    ap.add_argument('cmd', nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    return a, (a.cmd[1:] if a.cmd and a.cmd[0] == '--' else a.cmd)


def time_record(a, cmd, t0, t1, ru, rc, lines, **more):
    """The record of one timed command (MORE follows cpu_s); `out` is its output's last line."""
    rec = dict(label=a.label, peer=a.peer, round=a.round, wall_s=round(t1 - t0, 6),
               cpu_s=round(ru.ru_utime + ru.ru_stime, 3))
    rec.update(more)
    rec.update(rc=rc, cold=a.cold, out=lines[-1][:300] if lines else '', cmd=' '.join(cmd)[:300])
    return rec


def add_daemon_cpu(rec, d0, d1):
    """The daemon's CPU during the step, from proc_cpu before (D0) and after (D1)."""
    if d0 is not None and d1 is not None:
        rec['daemon_cpu_s'] = round(d1 - d0, 3)


def log_command(path, rec, text, extra=''):
    """Appends the command and its output TEXT to the command log PATH."""
    with open(path, 'a') as f:
        f.write('== %s %s r%d rc=%d wall=%.4fs%s: %s\n%s%s' % (
            rec['peer'], rec['label'], rec['round'], rec['rc'], rec['wall_s'], extra, rec['cmd'],
            text, '' if text.endswith('\n') or not text else '\n'))


# ------------------------------------------------------------------ records
def append(out, rec):
    with open(out, 'a') as f:
        f.write(json.dumps(rec) + '\n')


def common(ap):
    ap.add_argument('--out', required=True)
    ap.add_argument('--label', required=True)
    ap.add_argument('--peer', required=True)
    ap.add_argument('--round', type=int, default=0)
    ap.add_argument('--pid', default='')


def cmd_record(argv):
    ap = argparse.ArgumentParser(prog=prog('record'))
    common(ap)
    ap.add_argument('--value', required=True)
    a = ap.parse_args(argv)
    try:
        v = float(a.value)
    except ValueError:
        v = a.value
    append(a.out, dict(label=a.label, peer=a.peer, round=a.round, value=v))
    return 0


def cmd_vmhwm(pid):
    with open('/proc/%s/status' % pid) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                print(line.split()[1])
                return 0
    return 1


def cmd_drop():
    drop_caches()
    return 0


def load_records(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def last_timed(path):
    """The latest record of a timed command in the results file PATH ({} if none)."""
    return next((x for x in reversed(load_records(path)) if 'out' in x), {})


def cmd_last_out(path):
    """The output's last line of the latest timed command."""
    print(last_timed(path).get('out', ''))
    return 0


def cmd_last_err(path):
    """The first line with "error" of the latest timed command, else its last line."""
    x = last_timed(path)
    print(x.get('err') or x.get('out', ''))
    return 0


# ------------------------------------------------------------------ report
def load_failed(outdir):
    """OUTDIR/failed.tsv: {phase or test: the reason}, the first reason of each."""
    failed = {}
    fp = os.path.join(outdir, 'failed.tsv')
    if os.path.exists(fp):
        with open(fp) as f:
            for line in f:
                k, _, why = line.rstrip('\n').partition('\t')
                failed.setdefault(k, why)
    return failed


def load_run(outdir):
    """(params.json, the records of results.jsonl, failed.tsv) of a results directory."""
    with open(os.path.join(outdir, 'params.json')) as f:
        params = json.load(f)
    return params, load_records(os.path.join(outdir, 'results.jsonl')), load_failed(outdir)


UNITS = {'B': 1, 'KiB': 1 << 10, 'MiB': 1 << 20, 'GiB': 1 << 30, 'TiB': 1 << 40}


def stored_bytes(out):
    m = re.search(r'new data stored: ([0-9.]+) (B|KiB|MiB|GiB|TiB)', out or '')
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


class Records:
    """Queries of a run's records by label and peer."""

    def __init__(self, recs):
        self.recs = recs

    def get(self, label, peer):
        """The successful timed records."""
        return [r for r in self.recs if r['label'] == label and r['peer'] == peer and 'wall_s' in r
                and r.get('rc', 0) == 0]

    def walls(self, label, peer):
        return [r['wall_s'] for r in self.get(label, peer)]

    def by_round(self, label, peer):
        return {r['round']: r for r in self.get(label, peer)}

    def sums(self, l1, l2, peer):
        """Per round: the wall of L1 plus that of L2 (rounds that have both)."""
        a, b = self.by_round(l1, peer), self.by_round(l2, peer)
        return [a[k]['wall_s'] + b[k]['wall_s'] for k in a if k in b]

    def values(self, label, peer, scale=1.0):
        """The numeric values of `record` (not timed) records, divided by SCALE."""
        return [r['value'] / scale for r in self.recs if r['label'] == label and r['peer'] == peer
                and 'wall_s' not in r and isinstance(r.get('value'), (int, float))]

    def stored(self, label, peer, scale):
        """"new data stored" of the successful timed records, in bytes / SCALE."""
        return [b / scale for b in (stored_bytes(r.get('out')) for r in self.get(label, peer)) if b is not None]


def ratio_v(nat, tus):
    """median(TUS) / median(NAT), None without figures."""
    if not nat or not tus or statistics.median(nat) <= 0:
        return None
    return statistics.median(tus) / statistics.median(nat)


def ratio(nat, tus):
    r = ratio_v(nat, tus)
    return '%.2fx' % r if r is not None else '—'


def fmt_s(x):
    if x >= 100:
        return '%.0f s' % x
    if x >= 1:
        return '%.2f s' % x
    if x >= 0.01:
        return '%.3f s' % x
    return '%.4f s' % x


def fmt_num(x, unit, adaptive=False):
    """X in UNIT.  KiB and MiB: '%.1f', or with ADAPTIVE '%.2f' below 10 and whole numbers
    with thousands separators from 10 on; other units: whole numbers with separators."""
    if unit == 's':
        return fmt_s(x)
    if unit in ('MiB', 'KiB'):
        if not adaptive:
            return '%.1f %s' % (x, unit)
        return '%.2f %s' % (x, unit) if x < 10 else '{:,.0f} {}'.format(x, unit)
    return '{:,.0f} {}'.format(x, unit)


def cell(xs, unit, adaptive=False):
    """A table cell: the median of XS, with (min–max) when there are several (fmt_num)."""
    if not xs:
        return '—'
    s = fmt_num(statistics.median(xs), unit, adaptive)
    if len(xs) > 1:
        lo, hi = fmt_num(min(xs), unit, adaptive), fmt_num(max(xs), unit, adaptive)
        suffix = ' ' + unit
        if lo.endswith(suffix) and hi.endswith(suffix):
            lo = lo[:-len(suffix)]
        s += ' (%s–%s)' % (lo, hi)
    return s


def status_lines(recs, failed, parts, checks):
    """The lines after a report's notes: an empty line, then the failed PARTS ('phases',
    'tests'), the failed checks or the count of those OK (CHECKS: what they checked), and the
    timed commands that exited non-zero."""
    ver = [r for r in recs if r['label'] == 'verify']
    bad = [r for r in ver if r.get('value') != 'OK']
    out = ['']
    if failed:
        out.append('Failed %s: ' % parts + '; '.join('%s: %s' % kv for kv in failed.items()) + '.')
    if bad:
        out.append('Verification problems: ' + '; '.join('%s r%d: %s' % (r['peer'], r['round'], r['value']) for r in bad) + '.')
    elif ver:
        out.append('Verification: %d check(s) OK (%s).' % (len(ver), checks))
    bad_rc = [r for r in recs if r.get('rc', 0) != 0]
    if bad_rc:
        out.append('Timed commands that exited non-zero: ' + '; '.join(
            '%s %s r%d (rc %d)' % (r['peer'], r['label'], r['round'], r['rc']) for r in bad_rc) + '.')
    return out


# ------------------------------------------------------------------ main
def main(doc, argv_cmds, cmds):
    """Runs the command named by sys.argv[1]: ARGV_CMDS and `record` get the argument list
    (argparse), CMDS and vmhwm, last-out, last-err the arguments themselves."""
    argv_cmds = dict(argv_cmds, record=cmd_record)
    cmds = dict(cmds, vmhwm=cmd_vmhwm, **{'last-out': cmd_last_out, 'last-err': cmd_last_err})
    if len(sys.argv) < 2:
        print(doc)
        return 2
    c, argv = sys.argv[1], sys.argv[2:]
    if c in argv_cmds:
        return argv_cmds[c](argv)
    f = cmds.get(c)
    if not f:
        print(doc)
        return 2
    return f(*argv)
