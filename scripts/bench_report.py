"""Results of scripts/bench.py: raw JSON, a markdown table, a PNG chart.

Every metric is summarised per scenario and build as median, min and
max over the measured runs, then as the ratio patched/vanilla of the
medians, and, for throughput, as a fraction of the single-stream
unix-socket limit measured in the same run.
"""

import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (key, label, unit, lower is better)
METRICS = [
    ('wall_s', 'wall time', 's', True),
    ('total_time_ms', 'QMP total-time', 'ms', True),
    ('downtime_ms', 'downtime (QMP)', 'ms', True),
    ('downtime_seen_ms', 'downtime seen by the guest', 'ms', True),
    ('gbps', 'throughput', 'GB/s', False),
    ('transferred_bytes', 'bytes transferred', 'B', True),
    ('src_cpu_s', 'source CPU', 's', True),
    ('dst_cpu_s', 'destination CPU', 's', True),
    ('cpu_s_per_gb', 'CPU (src+dst) per GB', 's/GB', True),
    ('gbps_first_s', 'throughput, first second', 'GB/s', False),
    ('cpu_s_per_gb_first_s', 'CPU per GB, first second', 's/GB', True),
    ('gbps_after_first_s', 'throughput after the first second', 'GB/s',
     False),
    ('restore_running_s', 'restore: until the guest runs', 's', True),
    # For a lazy restore: until completed, the device state loaded
    ('restore_ready_s', 'restore: until all RAM is in', 's', True),
    ('restore_resident_s', 'lazy restore: until all RAM is resident', 's',
     True),
    ('faults_first_s', 'lazy restore: faults, first second', '', True),
    ('faults', 'lazy restore: faults', '', True),
    ('prefetched_pages', 'lazy restore: pages of the working set loaded '
     'first', '', False),
    ('faults_first_s_no_prefetch', 'lazy restore without the working set: '
     'faults, first second', '', True),
    ('touch_ms', 'guest touch: all done', 'ms', True),
    ('touch_ms_no_prefetch', 'guest touch without the working set: all '
     'done', 'ms', True),
    ('touch_p50_us', 'guest touch p50', 'us', True),
    ('touch_p90_us', 'guest touch p90', 'us', True),
    ('touch_p99_us', 'guest touch p99', 'us', True),
    ('touch_max_us', 'guest touch max', 'us', True),
    ('postcopy_latency_us', 'postcopy remote fault latency (QMP)', 'us',
     True),
    ('postcopy_blocktime', 'postcopy blocktime', 'ms', True),
    ('postcopy_tail_s', 'postcopy: switchover to the last page', 's', True),
    ('dst_anon_huge_mib', 'destination AnonHugePages after the load', 'MiB',
     False),
]


def _git(*args):
    try:
        return subprocess.run(['git', '-C', TOP] + list(args), check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _qemu_tree():
    return _git('-C', 'qemu', 'rev-parse', '--short=12', 'HEAD^{tree}')


def binaries():
    """What ran: each build's binary, its sha256 and its --version line."""
    out = {}
    for build, path in (('patched', 'build/qemu'),
                        ('vanilla', 'build/vanilla')):
        exe = os.path.join(TOP, path, 'qemu-system-x86_64')
        if not os.path.exists(exe):
            continue
        h = hashlib.sha256()
        with open(exe, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        try:
            ver = subprocess.run([exe, '--version'], capture_output=True,
                                 text=True, check=False).stdout
            ver = ver.splitlines()[0] if ver else '?'
        except OSError:
            ver = '?'
        out[build] = {'path': os.path.relpath(exe, TOP),
                      'sha256': h.hexdigest(), 'version': ver}
    return out


def load():
    """The machine's load averages (1, 5, 15 min) now."""
    with open('/proc/loadavg') as f:
        return [float(x) for x in f.read().split()[:3]]


def machine():
    with open('/proc/cpuinfo') as f:
        model = next((ln.split(':', 1)[1].strip() for ln in f
                      if ln.startswith('model name')), '?')
    with open('/proc/meminfo') as f:
        mem_kb = int(f.readline().split()[1])
    return {'cpu': model, 'cores': os.cpu_count(),
            'mem_gib': round(mem_kb / 1024 / 1024, 1),
            'kernel': platform.release(),
            'kvm': os.path.exists('/dev/kvm')}


def collect(samples, limits, errors, started, reps, scale, quick,
            load_start=None, bins=None):
    for s in samples:
        gb = (s.get('transferred_bytes') or 0) / 1e9
        if gb:
            s['cpu_s_per_gb'] = (s['src_cpu_s'] + s['dst_cpu_s']) / gb
    return {
        'date': datetime.datetime.fromtimestamp(
            started, datetime.timezone.utc).isoformat(timespec='seconds'),
        'duration_s': round(datetime.datetime.now().timestamp() - started),
        'revision': _git('rev-parse', '--short=12', 'HEAD'),
        'qemu_tree': _qemu_tree(),
        'machine': machine(),
        'binaries': bins if bins is not None else binaries(),
        'load_start': load_start,
        'load_end': load(),
        'limits': limits,
        'reps': reps, 'scale': scale, 'quick': quick,
        'errors': errors,
        'samples': samples,
    }


def _stats(vals):
    return {'median': statistics.median(vals), 'min': min(vals),
            'max': max(vals), 'n': len(vals)}


def summarise(result):
    """{scenario: {metric: {'vanilla': stats, 'patched': stats,
    'ratio': r}}} over the measured samples."""
    out = {}
    for s in result['samples']:
        if not s.get('measured'):
            continue
        sc = out.setdefault(s['scenario'], {})
        for key, *_ in METRICS:
            v = s.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                sc.setdefault(key, {}).setdefault(s['build'], []).append(v)
    for sc in out.values():
        for key, per in list(sc.items()):
            row = {b: _stats(v) for b, v in per.items()}
            if 'vanilla' in row and 'patched' in row and \
                    row['vanilla']['median']:
                row['ratio'] = row['patched']['median'] / \
                    row['vanilla']['median']
            sc[key] = row
    return out


def _fmt(v):
    if v is None:
        return '-'
    if abs(v) >= 1e6:
        return f'{v / 1e9:.3g} G'
    if abs(v) >= 100:
        return f'{v:.0f}'
    return f'{v:.3g}'


def _integrity(samples, scenario):
    runs = [s for s in samples if s['scenario'] == scenario]
    bad = [s['tag'] for s in runs
           if s.get('verify_errors', 0) != 0 or
           s.get('ram_identical') is False]
    checks = []
    if any('ram_identical' in s for s in runs):
        checks.append('RAM byte-identical after every paused run')
    if any('verify_pages' in s for s in runs):
        checks.append("guest's verify after every measured run")
    return ('OK (' + '; '.join(checks) + ')' if not bad else
            'FAILED: ' + ', '.join(bad))


def _limit_honoured(samples, scenario):
    runs = [s for s in samples
            if s['scenario'] == scenario and s.get('measured') and
            s.get('downtime_limit_ms')]
    if not runs:
        return []
    limit = runs[0]['downtime_limit_ms']
    parts = []
    for b in ('vanilla', 'patched'):
        mine = [s for s in runs if s['build'] == b]
        qmp = sum(1 for s in mine if s['downtime_ms'] <= limit)
        seen = [s for s in mine if 'downtime_seen_ms' in s]
        ok = sum(1 for s in seen if s['downtime_seen_ms'] <= limit)
        parts.append(f'{b}: {qmp}/{len(mine)} runs by QMP downtime, '
                     f'{ok}/{len(seen)} by the downtime the guest saw')
    return [f'downtime-limit {limit} ms honoured: ' + '; '.join(parts) +
            '.', '']


HOST_MEMORY = {
    'warm': 'Host memory: **warmed**. Before each measured destination '
            'starts, a helper touches as much fresh memory as the guest '
            'has and frees it, so that the destination takes pages the '
            'outer host backs (bench/README.md, "Host memory").',
    'cold': 'Host memory: as found (cold). Destinations take memory the '
            'outer host may have reclaimed (bench/README.md, '
            '"Host memory").',
}


def markdown(result, summary):
    lim = result['limits']
    m = result['machine']
    lines = [
        f"# Migration A/B benchmark, {result['date']}",
        '',
        f"Revision `{result['revision']}`, qemu/ tree `{result['qemu_tree']}`"
        f"; {m['cores']} cores, {m['mem_gib']} GiB, {m['cpu']}, "
        f"kernel {m['kernel']}.  {result['reps']} measured runs per build "
        f"and scenario, interleaved; size scale {result['scale']}; "
        f"the run took {result['duration_s']} s.",
        '',
    ]
    for build, b in sorted(result.get('binaries', {}).items()):
        lines.append(f"- {build}: `{b['path']}` sha256 `{b['sha256']}` "
                     f"({b['version']})")
    if result.get('load_start') or result.get('load_end'):
        ls, le = result.get('load_start'), result.get('load_end')
        lines.append(f"- machine load (1/5/15 min): "
                     f"{' '.join(map(str, ls)) if ls else '?'} at the start, "
                     f"{' '.join(map(str, le)) if le else '?'} at the end; "
                     "each run's 1-min load is in the JSON ('load1')")
    lines += [
        '',
        f"Machine limits in this run: memcpy {lim['memcpy_gbps']} GB/s, "
        f"one unix-socket stream {lim['unix_gbps']} GB/s, first touch "
        f"{lim['fault_4k_s_per_gb']} s/GB (4K), "
        f"{lim['fault_thp_s_per_gb']} s/GB (THP), MADV_POPULATE_WRITE "
        f"{lim['populate_write_s_per_gb']} s/GB.",
        '',
        HOST_MEMORY.get(lim.get('host_memory', 'cold'), ''),
        '',
        'Ratio = patched median / vanilla median (below 1 is better for '
        'times, CPU and bytes; above 1 is better for throughput).  '
        'Columns give median [min-max].',
        '',
    ]
    if result['errors']:
        lines += ['**Errors:** ' + '; '.join(result['errors']), '']
    samples = result['samples']
    for name, sc in summary.items():
        first = next(s for s in samples if s['scenario'] == name)
        lines += [f"## {name}", '',
                  f"{first['guest']} guest under {first['accel']}, "
                  f"{first['ram_mib']} MiB RAM ({first['area_mib']} MiB "
                  f"test area), memory backend {first['backend']}; "
                  f"integrity: {_integrity(samples, name)}.", '']
        lines += _limit_honoured(samples, name)
        lines += ['| metric | vanilla | patched | ratio | of limit |',
                  '|---|---|---|---|---|']
        for key, label, unit, _ in METRICS:
            row = sc.get(key)
            if not row:
                continue
            cells = []
            for b in ('vanilla', 'patched'):
                st = row.get(b)
                cells.append('-' if not st else
                             f"{_fmt(st['median'])} [{_fmt(st['min'])}-"
                             f"{_fmt(st['max'])}]")
            ratio = f"{row['ratio']:.2f}" if 'ratio' in row else '-'
            frac = '-'
            if key == 'gbps' and lim.get('unix_gbps'):
                frac = ' / '.join(
                    f"{row[b]['median'] / lim['unix_gbps']:.0%}"
                    for b in ('vanilla', 'patched') if b in row)
            unit = f' ({unit})' if unit else ''
            lines.append(f'| {label}{unit} | {cells[0]} | {cells[1]} | '
                         f'{ratio} | {frac} |')
        lines.append('')
    return '\n'.join(lines)


# The chart's panels: (metric, title, lower is better)
CHART_PANELS = [
    ('wall_s', 'wall time', True),
    ('gbps', 'throughput', False),
    ('cpu_s_per_gb', 'CPU (src+dst) per GB', True),
    ('downtime_seen_ms', 'downtime seen by the guest', True),
    ('downtime_ms', 'downtime (QMP)', True),
]
# The gain axis: a gain beyond it is drawn to the edge and labelled with
# its value, so that one outlier does not flatten the other bars.
CHART_LIMITS = (1 / 4, 4)


def gain(row, lower_is_better):
    """The branch's gain over vanilla for one metric's summary row:
    above 1 is better for the branch, whichever way the metric goes."""
    r = row.get('ratio') if row else None
    if not r:
        return None
    return 1 / r if lower_is_better else r


def _gain_label(g):
    if g >= 99.5:
        return f'{g:.0f}x'
    if g >= 9.95:
        return f'{g:.1f}x'
    return f'{g:.2f}x' if g >= 0.095 else f'{g:.2g}x'


def _chart_bar(ax, y, g):
    """One scenario's bar: from 1 to the gain, green when the branch is
    better.  A gain beyond the axis goes to its edge, with an arrow head
    and the true value inside the bar; a label that would not fit beside
    its bar goes inside it too."""
    lo, hi = CHART_LIMITS
    shown = min(max(g, lo), hi)
    better = g >= 1
    color = 'tab:green' if better else 'tab:red'
    ax.barh(y, abs(shown - 1), left=min(shown, 1), height=0.7, color=color)
    clipped = shown != g
    if clipped:
        ax.plot([shown], [y], marker='>' if better else '<', color=color,
                markersize=7, clip_on=False)
    # about the width of a label on the log axis, as a factor
    room = 1.8
    inside = clipped or (shown * room > hi if better else shown / room < lo)
    if inside:
        ax.text(shown / 1.08 if better else shown * 1.08, y, _gain_label(g),
                va='center', fontsize=7, color='white', fontweight='bold',
                ha='right' if better else 'left')
    else:
        ax.text(shown * 1.05 if better else shown / 1.05, y, _gain_label(g),
                va='center', fontsize=7, ha='left' if better else 'right')


def chart(summary, path):
    """One panel per metric, one bar per scenario: the branch's gain over
    vanilla (medians) on a log axis with a line at 1.0, better to the
    right everywhere (vanilla/branch for times, CPU and downtime,
    branch/vanilla for throughput, as each panel's title says); a gain
    beyond the axis is drawn to its edge and labelled with its value."""
    try:
        import matplotlib  # pylint: disable=import-outside-toplevel
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt  # noqa: E402
    except ImportError:
        return False
    names = list(summary)
    lo, hi = CHART_LIMITS
    fig, axes = plt.subplots(1, len(CHART_PANELS), sharey=True,
                             figsize=(2.8 * len(CHART_PANELS),
                                      1.9 + 0.32 * len(names)))
    for ax, (key, title, lower) in zip(axes, CHART_PANELS):
        for y, name in enumerate(names):
            g = gain(summary[name].get(key), lower)
            if g is None:
                ax.text(1.06, y, 'n/a', ha='left', va='center', fontsize=7,
                        color='grey')
            else:
                _chart_bar(ax, y, g)
        ax.set_xscale('log')
        ax.set_xlim(lo, hi)
        ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8) if lo <= t <= hi]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f'{t:g}' for t in ticks], fontsize=7)
        ax.minorticks_off()
        ax.axvline(1.0, color='black', linewidth=0.8)
        how = ('lower is better: vanilla / branch' if lower else
               'higher is better: branch / vanilla')
        ax.set_title(f'{title}\n({how})', fontsize=8)
        ax.set_xlabel('gain (>1: branch better)', fontsize=7)
        ax.grid(axis='x', linewidth=0.3)
    axes[0].set_yticks(range(len(names)))
    axes[0].set_yticklabels(names, fontsize=8)
    # the first scenario at the top, every row shown even without a bar
    axes[0].set_ylim(len(names) - 0.4, -0.6)
    fig.suptitle('Migration branch against vanilla 10.2.2: the branch\'s '
                 'gain per metric (medians; log axis, clipped at '
                 f'{lo:g}x-{hi:g}x; right of 1 = branch better)',
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write(result, outdir):
    os.makedirs(outdir, exist_ok=True)
    stamp = result['date'].replace(':', '').replace('-', '')[:15]
    base = os.path.join(outdir, f"{stamp}-{result['revision'] or 'norev'}"
                        f"{'-quick' if result['quick'] else ''}")
    summary = summarise(result)
    result['summary'] = summary
    paths = [base + '.json', base + '.md']
    with open(paths[0], 'w') as f:
        json.dump(result, f, indent=1, sort_keys=True)
    with open(paths[1], 'w') as f:
        f.write(markdown(result, summary))
    if chart(summary, base + '.png'):
        paths.append(base + '.png')
    return paths
