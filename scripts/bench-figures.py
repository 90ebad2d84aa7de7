#!/usr/bin/python3
"""The benchmark figures of the design page, computed from result files.

    bench-figures.py [--series-tree ID[,ID...]|qemu] [--latest FILE]
                     [--out PATH | --check PATH] [--untracked]

Reads the A/B result files of scripts/bench.py in bench/results/
(<date>-<revision>[-quick].json; the ab-*, placement-* and other files
there are not of that kind and are left out) and prints a
reStructuredText fragment for ram-engine.rst: simple tables under
`.. table::` titles (rubrics, not section titles, so that the fragment
fits under any heading), each preceded by the names of the files it was
computed from, so that no number of the page is picked by hand.  Output
is deterministic: files, scenarios and metrics in a fixed order,
numbers in a fixed format, nothing that depends on the time or the
machine it runs on.

Only files that git tracks are read (committed or staged), so the
fragment is what a fresh clone gives and a result file that a running
benchmark has just written changes nothing until it is committed;
--untracked reads every file in the directory (and outside a git
checkout, every file is read anyway).

Sections:

1. The latest full run: the newest eligible file (below) whose
   scenarios include every scenario of the full run before it, so that
   a run of a few scenarios (`--only`) or one where a scenario failed is
   never taken for it, while a scenario added to bench.py since is not
   required.  --latest FILE names it instead.  Per scenario and main
   metric: each build's median [min-max], the ratio patched/vanilla of
   the medians, and the number of measured runs per build.

2. The current series: every eligible file of the series pooled (see
   below).  Per scenario and metric: the median of the per-repetition
   ratios [min-max], where each repetition pairs the k-th measured run
   of the branch with the k-th of vanilla in the same file (bench.py
   runs them back to back, alternating the order); the ratios of the
   medians of each file, [min-max]; and how many pairs and files.
   Ratios are only ever taken within one file: absolute numbers differ
   by up to 2x between runs on these machines (bench/README.md).

3. The first second (`gbps_first_s`, `cpu_s_per_gb_first_s`) over every
   measured sample of the series that has them.  A sample has them only
   when its migration took at least a second, so the table gives the
   number of samples per build beside the number of runs: where it is
   smaller, the fast runs are missing.

4. Downtime: the pause the guest saw (`downtime_seen_ms`, from its
   heartbeats) with QMP's `downtime_ms` beside it, for the latest full
   run and for the series.  Paused scenarios have no guest-seen
   downtime (the guest does not run, so it prints no heartbeats).

The current series.  A result file records `qemu_tree`, the git tree id
of qemu/ (HEAD^{tree}) when the benchmark ran; newer files (bench.py
since it hashes the binaries) also record each binary's sha256 and
`--version` line, whose `+mb.N.gTREE` names the tree the binary was
configured from.  The tree is what identifies the series: it is in
every file, it is the same on every machine for the same patches
(README, Workflow: fixed identity and dates), and two series that
differ in any file differ in it.  The sha256 is not the key: older
files lack it, and a rebuild with another compiler or on another
machine gives another one for the same series.  It serves as a check:
a file whose patched binary's version names another tree than its
`qemu_tree` (a binary left over from an earlier build) is not eligible,
and the distinct sha256 values recorded are listed.  Neither sees
uncommitted edits in qemu/, which the build would include: bench runs
of work in progress share the tree of its last commit.

Which tree is current: by default the tree of the newest eligible file,
that is the series the benchmark last measured, so the fragment follows
from the committed files alone and `--check` gives the same answer on
every clone.  --series-tree ID[,ID...] names it (prefixes of at least 8
hex digits), for example to pool a series with a later one that only
changed documentation or tests, or the runs of two patches measured
apart; --series-tree qemu takes the HEAD tree of qemu/ as it is now.
`--check PATH` without --series-tree uses the trees PATH names ("The
series is qemu/ tree ..."), so that a fragment written with
--series-tree checks on every clone as well.

Eligible files: not quick, size scale 1, host memory not warmed
(`--host-memory warm` measures another condition), and no patched
binary that names another tree.  Files of the series that are not
eligible are named with the reason.

--out PATH writes the fragment to PATH instead of stdout; --check PATH
exits 1, with a diff on stderr, when PATH differs from what would be
written now (make check-bench-figures).
"""

import argparse
import difflib
import json
import os
import re
import statistics
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_report  # noqa: E402  pylint: disable=wrong-import-position

RESULTS = os.path.join('bench', 'results')
NAME_RE = re.compile(r'^\d{8}T\d{6}-[0-9a-z]+(-quick)?\.json$')
VERSION_TREE_RE = re.compile(r'\+mb\.\d+\.g([0-9a-f]+)')
BUILDS = ('vanilla', 'patched')
# key -> (label, unit, lower is better)
METRIC = {k: (label, unit, lower)
          for k, label, unit, lower in bench_report.METRICS}
MAIN = ['wall_s', 'gbps', 'src_cpu_s', 'dst_cpu_s', 'cpu_s_per_gb',
        'restore_ready_s', 'restore_running_s', 'touch_p50_us',
        'touch_p99_us']
DOWNTIME = ['downtime_seen_ms', 'downtime_ms']
FIRST_S = ['gbps_first_s', 'cpu_s_per_gb_first_s']
RATIO_NOTE = ('Ratio: patched / vanilla; below 1 is better for times, '
              'CPU and downtime, above 1 for throughput.')


def _git(*args):
    try:
        return subprocess.run(['git', '-C', TOP] + list(args), check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


NONE = 'n/a'


def _number(v):
    """Fixed format: three significant digits (trailing zeros kept),
    whole numbers from 100 up."""
    if v is None:
        return NONE
    a = abs(v)
    if a == 0:
        return '0'
    if a >= 99.95:
        return f'{v:.0f}'
    if a >= 0.001:
        return f'{v:#.3g}'
    return f'{v:.2e}'


def _ratio(r):
    """Two decimals, as the page gives ratios; two significant digits
    below 0.1."""
    if r is None:
        return NONE
    if r == 0:
        return '0'
    return f'{r:.2f}' if r >= 0.095 else f'{r:#.2g}'


def _integer(v):
    """For metrics counted in whole units (QMP's milliseconds): the
    median of an even number of them may end in .5."""
    return f'{v:.0f}' if float(v).is_integer() else f'{v:.1f}'


def _median_range(vals, fmt=_number):
    if not vals:
        return NONE
    if fmt is _number and all(isinstance(v, int) for v in vals):
        fmt = _integer
    return (f'{fmt(statistics.median(vals))} '
            f'[{fmt(min(vals))}-{fmt(max(vals))}]')


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Run:  # pylint: disable=too-many-instance-attributes
    """One result file of scripts/bench.py."""

    def __init__(self, rel, data):
        self.rel = rel
        self.name = os.path.basename(rel)
        self.data = data
        self.quick = bool(data.get('quick',
                                   self.name.endswith('-quick.json')))
        self.scale = data.get('scale') or 1.0
        self.tree = data.get('qemu_tree') or '?'
        self.revision = data.get('revision') or '?'
        self.host_memory = (data.get('limits') or {}).get('host_memory',
                                                          'cold')
        self.binaries = data.get('binaries') or {}
        # measured samples: {scenario: {build: [sample, ...]}}, in order
        self.measured = {}
        for s in data.get('samples', []):
            if not s.get('measured'):
                continue
            per = self.measured.setdefault(s['scenario'], {})
            per.setdefault(s['build'], []).append(s)
        self.scenarios = [sc for sc, per in self.measured.items()
                          if all(b in per for b in BUILDS)]

    def reps(self):
        """Measured runs per build and scenario (older files: counted)."""
        if self.data.get('reps'):
            return self.data['reps']
        return max((len(v) for per in self.measured.values()
                    for v in per.values()), default=0)

    def ineligible(self):
        """Why the file cannot be pooled, or None."""
        if self.quick:
            return 'quick run'
        if self.scale != 1.0:
            return f'size scale {self.scale}'
        if self.host_memory == 'warm':
            return 'host memory warmed'
        mismatch = self.binary_tree_mismatch()
        if mismatch:
            return (f'its patched binary was built from tree {mismatch}, '
                    f'not {self.tree}')
        return None

    def binary_tree_mismatch(self):
        """The tree the patched binary's version names, when it is not
        the file's qemu_tree; None when they agree or nothing says."""
        ver = (self.binaries.get('patched') or {}).get('version', '')
        m = VERSION_TREE_RE.search(ver)
        if m and not (self.tree.startswith(m.group(1)) or
                      m.group(1).startswith(self.tree)):
            return m.group(1)
        return None

    def values(self, scenario, build, key):
        """The metric's values over the build's measured runs."""
        return [s[key] for s in self.measured.get(scenario, {}).get(build, [])
                if _is_number(s.get(key))]

    def runs(self, scenario, build):
        """How many measured runs the build has in the scenario."""
        return len(self.measured.get(scenario, {}).get(build, []))

    def pair_ratios(self, scenario, key):
        """patched/vanilla of the k-th measured run of each build."""
        per = self.measured.get(scenario, {})
        out = []
        for v, p in zip(per.get('vanilla', []), per.get('patched', [])):
            a, b = v.get(key), p.get(key)
            if _is_number(a) and _is_number(b) and a:
                out.append(b / a)
        return out

    def median_ratio(self, scenario, key):
        """patched/vanilla of the medians in this file."""
        v = self.values(scenario, 'vanilla', key)
        p = self.values(scenario, 'patched', key)
        if not v or not p or not statistics.median(v):
            return None
        return statistics.median(p) / statistics.median(v)


def load_runs(results, untracked):
    """Every A/B result file, oldest first (the name starts with the
    date)."""
    full = os.path.join(TOP, results) if not os.path.isabs(results) \
        else results
    names = sorted(n for n in os.listdir(full) if NAME_RE.match(n))
    if not untracked:
        listed = _git('ls-files', '--', full)
        if listed is not None:
            tracked = {os.path.basename(p) for p in listed.splitlines()}
            names = [n for n in names if n in tracked]
    runs = []
    for n in names:
        with open(os.path.join(full, n), encoding='utf-8') as f:
            data = json.load(f)
        rel = os.path.relpath(os.path.join(full, n), TOP)
        runs.append(Run(rel, data))
    return runs


def latest_full(runs):
    """The newest eligible run whose scenarios include those of the
    full run before it."""
    last, known = None, set()
    for r in runs:
        if r.ineligible() or not r.scenarios:
            continue
        if set(r.scenarios) >= known:
            last, known = r, set(r.scenarios)
    return last


def scenario_order(runs):
    """Scenarios in bench.py's order: as they first appear, newest file
    first, full runs before the others (a run of a few scenarios with
    --only lists them in the order asked for)."""
    order = []
    for r in sorted(reversed(runs), key=lambda r: bool(r.ineligible())):
        for sc in r.scenarios:
            if sc not in order:
                order.append(sc)
    return order


def _label(key):
    label, unit, _ = METRIC[key]
    return f'{label} ({unit})'


def _files_text(runs):
    return ', '.join(f'``{r.rel}``' for r in runs)


def para(*parts):
    """A paragraph, wrapped, and the blank line after it."""
    return textwrap.wrap(''.join(parts), width=76, break_long_words=False,
                         break_on_hyphens=False) + ['']


def table(title, header, rows):
    """A simple table in a table directive with its title.  Every cell
    has text: an empty first cell would continue the row above."""
    widths = [max(len(row[i]) for row in [header] + rows)
              for i in range(len(header))]
    border = '  '.join('=' * w for w in widths)

    def line(cells):
        return '  '.join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    body = [border, line(header), border] + [line(r) for r in rows] + \
        [border]
    return [f'.. table:: {title}', ''] + ['   ' + b for b in body] + ['']


def _span(ratios):
    """min-max of ratios, or the one value."""
    if not ratios:
        return NONE
    lo, hi = _ratio(min(ratios)), _ratio(max(ratios))
    return lo if lo == hi else f'{lo}-{hi}'


def _pool(runs, scenario, build, key):
    vals = []
    for r in runs:
        vals += r.values(scenario, build, key)
    return vals


def section_latest(run):
    """Section 1: the medians of the latest full run."""
    lines = ['.. rubric:: The latest full run', ''] + para(
        f'Computed from {_files_text([run])} (revision {run.revision}, '
        f'qemu/ tree {run.tree}, {run.reps()} measured runs per build and '
        f'scenario).  Each build: median [min-max] over its measured runs.  '
        f'{RATIO_NOTE}')
    rows = []
    for sc in run.scenarios:
        for key in MAIN:
            cells = [run.values(sc, b, key) for b in BUILDS]
            if not any(cells):
                continue
            rows.append([f'``{sc}``', _label(key),
                         _median_range(cells[0]), _median_range(cells[1]),
                         _ratio(run.median_ratio(sc, key)),
                         '/'.join(str(len(c)) for c in cells)])
    lines += table(
        f'{run.name[:-5]}: medians per build',
        ['scenario', 'metric', 'vanilla', 'patched', 'ratio',
         'runs (v/p)'], rows)
    return lines


def section_downtime(runs, title, scenarios):
    """Section 4: downtime seen by the guest, QMP's beside it."""
    rows = []
    for sc in scenarios:
        cells = [_median_range(_pool(runs, sc, b, key))
                 for b in BUILDS for key in DOWNTIME]
        if all(c == NONE for c in cells):
            continue
        runs_n = '/'.join(str(sum(r.runs(sc, b) for r in runs))
                          for b in BUILDS)
        rows.append([f'``{sc}``'] + cells + [runs_n])
    return table(
        title,
        ['scenario', 'vanilla, guest (ms)', 'vanilla, QMP (ms)',
         'patched, guest (ms)', 'patched, QMP (ms)', 'runs (v/p)'], rows)


def series_runs(runs, trees):
    """(pooled runs, notes) for the series whose trees are given."""
    pooled, notes = [], []
    for r in runs:
        if not any(r.tree.startswith(t) or t.startswith(r.tree)
                   for t in trees):
            continue
        why = r.ineligible()
        if why:
            notes.append(f'``{r.rel}`` is left out: {why}.')
        elif r.scenarios:
            pooled.append(r)
    return pooled, notes


def _binaries_text(pooled):
    parts = []
    for b in BUILDS:
        shas = sorted({r.binaries[b]['sha256'] for r in pooled
                       if (r.binaries.get(b) or {}).get('sha256')})
        have = sum(1 for r in pooled
                   if (r.binaries.get(b) or {}).get('sha256'))
        versions = sorted({r.binaries[b].get('version', '?') for r in pooled
                           if (r.binaries.get(b) or {}).get('sha256')})
        if shas:
            parts.append(f'{b} binary sha256 '
                         + ', '.join(f'``{s[:16]}``' for s in shas)
                         + ' (' + ', '.join(f'"{v}"' for v in versions)
                         + f'; recorded in {have} of {len(pooled)} files)')
        else:
            parts.append(f'no {b} binary sha256 recorded')
    text = '; '.join(parts) + '.'
    return text[0].upper() + text[1:]


def section_series(pooled, notes, order):
    """Section 2: the ratios over every run of the series."""
    scen = [sc for sc in order if any(sc in r.scenarios for r in pooled)]
    shown = []
    for r in pooled:
        if r.tree not in shown:
            shown.append(r.tree)
    lines = ['.. rubric:: The current series', ''] + para(
        f'The series is qemu/ tree {", ".join(shown)}; computed from '
        f'{_files_text(pooled)}.  {_binaries_text(pooled)}')
    for n in notes:
        lines += para(n)
    lines += para(
        'Ratio of pairs: patched / vanilla of the k-th measured run of each '
        'build in the same file (run back to back), median [min-max] over '
        'all pairs.  Per file: the ratio of the medians of each file, '
        f'[min-max] over the files.  {RATIO_NOTE}')
    rows = []
    for sc in scen:
        mine = [r for r in pooled if sc in r.scenarios]
        for key in MAIN + DOWNTIME:
            pairs = []
            for r in mine:
                pairs += r.pair_ratios(sc, key)
            if not pairs:
                continue
            per_file = [x for x in (r.median_ratio(sc, key) for r in mine)
                        if x is not None]
            files = sum(1 for r in mine if r.pair_ratios(sc, key))
            rows.append([f'``{sc}``', _label(key),
                         _median_range(pairs, _ratio),
                         _span(per_file),
                         str(len(pairs)), str(files)])
    lines += table(
        'The current series: ratios over all its runs',
        ['scenario', 'metric', 'ratio of pairs', 'per file', 'pairs',
         'files'], rows)
    return lines


def section_first_second(pooled, order):
    """Section 3: the first second over every sample that has it."""
    scen = [sc for sc in order if any(sc in r.scenarios for r in pooled)]
    lines = ['.. rubric:: The first second', ''] + para(
        'Throughput and CPU (source and destination) per GB over the first '
        'second of each migration, from every measured sample of '
        f'{_files_text(pooled)} that has them (migrations that took less '
        'than a second have none: where a build has fewer samples than '
        'runs, its fastest runs are missing).  Each build: median '
        '[min-max] over the samples pooled; ratio of the pooled medians, '
        f'and of pairs as above.  {RATIO_NOTE}')
    rows = []
    for sc in scen:
        mine = [r for r in pooled if sc in r.scenarios]
        for key in FIRST_S:
            vals = [_pool(mine, sc, b, key) for b in BUILDS]
            if not any(vals):
                continue
            pairs = []
            for r in mine:
                pairs += r.pair_ratios(sc, key)
            ratio = (statistics.median(vals[1]) / statistics.median(vals[0])
                     if all(vals) and statistics.median(vals[0]) else None)
            runs = [sum(r.runs(sc, b) for r in mine) for b in BUILDS]
            rows.append([f'``{sc}``', _label(key),
                         _median_range(vals[0]), _median_range(vals[1]),
                         _ratio(ratio), _median_range(pairs, _ratio),
                         f'{len(vals[0])}/{len(vals[1])} of '
                         f'{runs[0]}/{runs[1]}'])
    lines += table(
        'The first second, over all samples of the current series',
        ['scenario', 'metric', 'vanilla', 'patched', 'ratio of medians',
         'ratio of pairs', 'samples of runs (v/p)'], rows)
    return lines


def generate(runs, latest, trees):
    """The whole fragment, as text."""
    order = scenario_order(runs)
    lines = [
        '..',
        '   SPDX-License-Identifier: GPL-2.0-or-later',
        '',
        '   Generated by scripts/bench-figures.py from the result files',
        '   of scripts/bench.py in bench/results; do not edit by hand.',
        '   make bench-figures writes it, make check-bench-figures checks',
        '   it against the files.', '']
    if latest:
        lines += section_latest(latest)
        lines += para(f'Downtime in {_files_text([latest])}: median '
                      '[min-max] of the pause the guest saw (its '
                      "heartbeats, every 5 ms) and of QMP's downtime.  "
                      'Paused scenarios have no guest-seen downtime: the '
                      'guest does not run.')
        lines += section_downtime([latest],
                                  f'{latest.name[:-5]}: downtime',
                                  latest.scenarios)
    else:
        lines += ['No full run among the result files.', '']
    pooled, notes = series_runs(runs, trees)
    if not pooled:
        print(f'bench-figures: no eligible result file of qemu/ tree '
              f'{", ".join(trees)}', file=sys.stderr)
        lines += para(f'No eligible result file of qemu/ tree '
                      f'{", ".join(trees)}.')
        for n in notes:
            lines += para(n)
        return '\n'.join(lines).rstrip('\n') + '\n'
    lines += section_series(pooled, notes, order)
    lines += section_first_second(pooled, order)
    lines += para(f'Downtime over all runs of the series '
                  f'({_files_text(pooled)}), pooled: median [min-max].')
    lines += section_downtime(
        pooled, 'The current series: downtime',
        [sc for sc in order if any(sc in r.scenarios for r in pooled)])
    return '\n'.join(lines).rstrip('\n') + '\n'


def current_trees(opt, runs):
    """The tree ids of the current series (see the docstring)."""
    if opt == 'qemu':
        out = _git('-C', 'qemu', 'rev-parse', '--short=12', 'HEAD^{tree}')
        if not out:
            sys.exit('bench-figures: cannot read the tree of qemu/')
        return [out.strip()]
    if opt:
        trees = [t.strip().lower() for t in opt.split(',') if t.strip()]
        for t in trees:
            if not re.fullmatch(r'[0-9a-f]{8,40}', t):
                sys.exit(f'bench-figures: --series-tree {t}: not a tree id '
                         '(8 to 40 hex digits)')
        return trees
    eligible = [r for r in runs if not r.ineligible() and r.scenarios]
    if not eligible:
        sys.exit('bench-figures: no eligible result file')
    return [eligible[-1].tree]


def main():
    """Write, print or check the fragment."""
    ap = argparse.ArgumentParser(
        description='The design page\'s benchmark figures as an '
        'reStructuredText fragment (see the docstring).')
    ap.add_argument('--results', default=RESULTS,
                    help='the result directory (default bench/results)')
    ap.add_argument('--untracked', action='store_true',
                    help='also read result files git does not track')
    ap.add_argument('--series-tree', metavar='ID[,ID...]|qemu',
                    help='the qemu/ tree(s) of the current series (default: '
                    'that of the newest eligible file)')
    ap.add_argument('--latest', metavar='FILE',
                    help='the result file to take as the latest full run')
    out = ap.add_mutually_exclusive_group()
    out.add_argument('--out', metavar='PATH', help='write the fragment here')
    out.add_argument('--check', metavar='PATH',
                     help='exit 1 if PATH differs from what would be '
                     'written (for the series trees PATH names, unless '
                     '--series-tree is given)')
    opts = ap.parse_args()

    runs = load_runs(opts.results, opts.untracked)
    if not runs:
        sys.exit(f'bench-figures: no result files in {opts.results}')
    if opts.latest:
        base = os.path.basename(opts.latest)
        latest = next((r for r in runs if r.name == base), None)
        if latest is None:
            sys.exit(f'bench-figures: {opts.latest}: not among the result '
                     'files read')
    else:
        latest = latest_full(runs)
    have = None
    if opts.check:
        try:
            with open(opts.check, encoding='utf-8') as f:
                have = f.read()
        except OSError as e:
            print(f'bench-figures: {opts.check}: {e.strerror}',
                  file=sys.stderr)
            return 1
    series_tree = opts.series_tree
    if have is not None and not series_tree:
        # Check against the trees the fragment names, as --out wrote it
        m = re.search(r'The series is qemu/ tree\s+'
                      r'([0-9a-f]{8,40}(?:,\s+[0-9a-f]{8,40})*);',
                      have)
        if m:
            series_tree = ','.join(re.split(r',\s+', m.group(1)))
    text = generate(runs, latest, current_trees(series_tree, runs))

    if have is not None:
        if have == text:
            return 0
        sys.stderr.writelines(difflib.unified_diff(
            have.splitlines(True), text.splitlines(True),
            opts.check, 'generated now'))
        print(f'bench-figures: {opts.check} differs from the result files; '
              'regenerate it with make bench-figures', file=sys.stderr)
        return 1
    if opts.out:
        os.makedirs(os.path.dirname(os.path.abspath(opts.out)),
                    exist_ok=True)
        with open(opts.out, 'w', encoding='utf-8') as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
