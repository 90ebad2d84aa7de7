#!/usr/bin/env python3
"""Live-migrate a Linux guest holding 1 GiB of data; verify every byte.

The same migrations on the branch and on vanilla, side by side.

The guest is the project's Linux test guest (tests/guest/, built by
scripts/build-guest.sh): Debian's cloud kernel with our /init, 1536 MiB
of RAM.  It fills a 1024 MiB test area with self-describing pages, half
of them random (incompressible) and half plain (one 8-byte word
repeated: compressible, never a zero page), `guest.plain=50`.  It keeps
rewriting pages of a 128 MiB hot set at 64 MiB/s, also while it
migrates, and prints a heartbeat every 5 ms.

Each build live-migrates its own guest with precopy over a unix socket,
max-bandwidth unlimited, downtime-limit 50 ms, several times (--reps,
each time into a new QEMU of the same build; the builds take turns).
RAM is a shared file on /dev/shm on both sides, and the destination is
started with -S, so that after the switchover it holds exactly what the
source stopped with: the two RAM files must be identical byte for byte.
Then the destination resumes (`cont`): its guest must verify every page
of its test area (0 bad: lost, corrupt or stale), and keep running, its
heartbeats in sequence.

Per migration it prints QMP's figures (total time, throughput =
ram.transferred / total-time, downtime) beside the downtime the guest
saw: last heartbeat on the source to first on the destination
(guestcon.downtime_seen), less the time the demo held the destination
paused for the byte comparison (from its MIGRATION "completed" event to
its RESUME event, QEMU's own timestamps).  At the end, a table with the
median of each build and the ratios branch/vanilla.  Vanilla runs when
build/vanilla/qemu-system-x86_64 exists (make vanilla).

Usage: demo.py [--reps N] [--only patched|vanilla] [--accel kvm|tcg]
"""

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

import guestcon
import miglib

TOP = miglib.TOP
LOGS = os.path.join(TOP, 'build', 'demo')
NAMES = {'patched': 'branch', 'vanilla': 'vanilla'}

AREA_MIB = 1024                     # the guest's test area (--mib)
RAM_EXTRA_MIB = 512                 # the kernel keeps about 320 MiB
PLAIN_PCT = 50
HOT_MIB = 128
DIRTY_MBPS = 64
HB_MS = 5
DOWNTIME_LIMIT_MS = 50
REPS = 5

# Generous: the machines are shared and TCG is slow.
BOOT_TIMEOUT = 600                  # QEMU start to READY
MIGRATION_TIMEOUT = 300
VERIFY_TIMEOUT = 300
EVENT_TIMEOUT = 30
HB_TIMEOUT = 60                     # first heartbeat after cont
HB_WINDOW = 1.0                     # heartbeats watched after verify, s
MIN_HB = 20                         # ... of the 200 the guest prints
MAX_HB_SEQ_GAP = 2                  # a HB line cut by the switchover


class Failed(Exception):
    """A check failed; the message says which and why."""


def say(msg):
    """One line of the demo's output."""
    print(f'demo: {msg}', flush=True)


class Config:
    """What every QEMU of the demo runs: accelerator, guest, sizes."""

    def __init__(self, opts, accel, tmp):
        self.accel = accel
        self.tmp = tmp
        self.mib = opts.mib
        self.pages = opts.mib * 256
        self.ram_mib = opts.mib + RAM_EXTRA_MIB
        self.hot_mib = min(HOT_MIB, opts.mib)
        self.guest_dir = opts.guest_dir
        self.params = (f'guest.mib={self.mib} guest.plain={PLAIN_PCT} '
                       f'guest.hot={self.hot_mib} guest.dirty={DIRTY_MBPS} '
                       f'guest.hb={HB_MS}')


class DemoGuest(miglib.Guest):
    """A QEMU running the test guest, RAM a shared file on tmpfs; a
    destination (incoming) waits with -S."""

    def __init__(self, cfg, build, tag, incoming=False):
        self.build = build
        self.ram_path = os.path.join(cfg.tmp, f'{tag}.ram')
        mib = cfg.ram_mib
        args = ['-accel', cfg.accel, '-nodefaults', '-no-reboot']
        args += miglib.CPU_FOR_RAM_COMPARE
        args += ['-machine', 'pc,memory-backend=ram0', '-m', f'{mib}M',
                 '-object', f'memory-backend-file,id=ram0,size={mib}M,'
                            f'mem-path={self.ram_path},share=on']
        args += miglib.linux_guest_args(cfg.params, cfg.guest_dir)
        if incoming:
            args.append('-S')
        super().__init__(miglib.BUILDS[build], tag, args, cfg.tmp,
                         incoming=incoming, log_dir=LOGS)

    def close(self):
        super().close()
        self.con.save(os.path.join(LOGS, f'{self.tag}.console'),
                      '# ' + ' '.join([self.vm.binary] + self.vm.args)
                      + '\n')
        if os.path.exists(self.ram_path):
            os.unlink(self.ram_path)


def event_time(event):
    """A QMP event's timestamp, in seconds."""
    ts = event['timestamp']
    return ts['seconds'] + ts['microseconds'] / 1e6


def error_desc(g):
    """query-migrate's status and error-desc on g, or how QEMU ended."""
    if not g.vm.is_running():
        return f'QEMU exited ({g.vm.exitcode()})'
    info = g.vm.cmd('query-migrate')
    return f"{info.get('status')}: {info.get('error-desc', 'no error-desc')}"


def guest_errors(g):
    """The first line of g's console that reports a problem, or None."""
    bad = g.con.matching(r'(ERROR|PANIC|WARN|VERIFY-BAD) ')
    if bad:
        return bad[0][1].string
    for _, m in g.con.matching(r'VERIFY pages=\d+ errors=(\d+)'):
        if int(m.group(1)):
            return m.string
    return None


class Chain:
    """One build's guest and the migrations it went through."""

    def __init__(self, cfg, build):
        self.cfg = cfg
        self.build = build
        self.name = NAMES[build]
        self.guest = None
        self.hops = []
        self.failure = None
        self.n = 0
        self.t_start = 0.0
        self.mark = 0                   # source console index at migrate

    def new_guest(self, incoming=False):
        """A new QEMU of this build: a source, or a destination (-S)."""
        role = 'dst' if incoming else 'src'
        tag = f'{self.build}-{self.n}-{role}'
        self.n += 1
        return DemoGuest(self.cfg, self.build, tag, incoming)

    def start(self):
        """Launch the first QEMU of this build; the guest boots."""
        self.guest = self.new_guest()
        self.t_start = time.monotonic()

    def wait_ready(self):
        """Wait for READY and print the guest's start-up times; stop the
        guest until its first migration."""
        g = self.guest
        try:
            _, t_ready, m = g.con.wait_for(r'(READY|ERROR|PANIC) ',
                                           BOOT_TIMEOUT)
        except (TimeoutError, EOFError) as e:
            raise Failed(f'the guest did not boot: {e}') from e
        if m.group(1) != 'READY':
            raise Failed(f'the guest failed to start: {m.string}')
        alloc = g.con.matching(r'ALLOC mib=\d+ pages=\d+ ms=(\d+)')
        fill = g.con.matching(r'FILL pages=(\d+) ms=(\d+) plain=(\d+)')
        if not alloc or not fill:
            raise Failed('no ALLOC or FILL line: the guest images are '
                         'older than guest.plain (make guest)')
        pages, ms, plain = (int(x) for x in fill[0][1].groups())
        say(f'{self.name}: guest READY {t_ready - self.t_start:.1f} s '
            f'after QEMU started: ALLOC {self.cfg.mib} MiB '
            f'{int(alloc[0][1].group(1)) / 1000:.1f} s, FILL {pages} pages '
            f'({plain} plain, {pages - plain} random) {ms / 1000:.1f} s')
        g.vm.cmd('stop')

    def hop(self):
        """One live migration into a new QEMU of this build, checked;
        records its figures, or raises Failed."""
        src = self.guest
        if src.status() != 'running':
            src.vm.cmd('cont')
        # Running and writing: a DIRTY line comes once a second.
        try:
            src.con.wait_for(r'DIRTY ', 10, src.con.mark())
        except (TimeoutError, EOFError) as e:
            raise Failed(f'the guest does not write: {e}') from e
        before = int(src.con.command('stats', r'STATS .* dirty_pages=(\d+)',
                                     10).group(1))
        dst = self.new_guest(incoming=True)
        try:
            res = self.migrate(src, dst, before)
        except BaseException:
            dst.close()
            self.guest = None
            raise
        finally:
            src.close()
        self.guest = dst
        self.hops.append(res)
        dst.vm.cmd('stop')
        return res

    def migrate(self, src, dst, before):
        """Migrate src into dst (-S), compare RAM, cont, verify; return
        the figures and findings."""
        info = self.switchover(src, dst)
        res = self.compare_and_resume(src, dst)
        after = int(dst.con.command('stats', r'STATS .* dirty_pages=(\d+)',
                                    10).group(1))
        res.update(self.check_guest(src, dst))
        ram = info.get('ram', {})
        res.update({
            'total_ms': info['total-time'],
            'downtime_ms': info['downtime'],
            'transferred': ram.get('transferred', 0),
            'gbps': ram.get('transferred', 0) / info['total-time'] / 1e6,
            'sync': ram.get('dirty-sync-count'),
            'rewritten_mib': (after - before) / 256,
        })
        res['problems'] = problems(res, self.cfg.pages)
        res['ok'] = not res['problems']
        return res

    def switchover(self, src, dst):
        """Live-migrate src into dst; return the source's query-migrate
        when both sides completed and stopped."""
        src.set_caps({'events': True},
                     {'downtime-limit': DOWNTIME_LIMIT_MS})
        dst.set_caps({'events': True}, {})
        uri = f'unix:{os.path.join(self.cfg.tmp, dst.tag)}.sock'
        dst.vm.cmd('migrate-incoming', uri=uri)
        mark = src.con.mark()
        src.vm.cmd('migrate', uri=uri)
        info = miglib.wait_migration(src.vm, timeout=MIGRATION_TIMEOUT,
                                     poll=0.01)
        if info['status'] != 'completed':
            raise Failed(f"source {info['status']}: "
                         f"{info.get('error-desc', 'no error-desc')}; "
                         f'destination {error_desc(dst)}')
        dinfo = miglib.wait_migration(dst.vm, timeout=MIGRATION_TIMEOUT,
                                      poll=0.01)
        if dinfo['status'] != 'completed':
            raise Failed(f'destination {error_desc(dst)}')
        states = (src.status(), dst.status())
        if states != ('postmigrate', 'paused'):
            raise Failed(f'run states source/destination: {states}')
        self.mark = mark
        return info

    def compare_and_resume(self, src, dst):
        """Compare the RAM files of the stopped source and destination,
        then resume the destination; the pause the guest saw."""
        # Both stopped: the source since the switchover, the destination
        # since it loaded the last page (-S).
        t0 = time.monotonic()
        pages, diff = miglib.compare_ram_files(src.ram_path, dst.ram_path)
        cmp_s = time.monotonic() - t0

        dst.vm.cmd('cont')
        try:
            done = dst.vm.event_wait('MIGRATION', EVENT_TIMEOUT,
                                     {'data': {'status': 'completed'}})
            resume = dst.vm.event_wait('RESUME', EVENT_TIMEOUT)
        except TimeoutError as e:
            raise Failed('no MIGRATION completed or RESUME event on the '
                         'destination') from e
        held_ms = (event_time(resume) - event_time(done)) * 1000
        seen = guestcon.downtime_seen(src.con, dst.con, self.mark,
                                      HB_TIMEOUT)
        if not seen:
            raise Failed('no heartbeat on the source during the migration '
                         'or none on the destination after cont')
        if not 1 <= seen['hb_seq_gap'] <= MAX_HB_SEQ_GAP:
            raise Failed(f"heartbeat seq jumped by {seen['hb_seq_gap']} "
                         'from the source to the destination')
        return {'pages': pages, 'diff': diff, 'cmp_s': cmp_s,
                'paused_ms': seen['downtime_seen_ms'], 'held_ms': held_ms,
                'seen_ms': seen['downtime_seen_ms'] - held_ms}

    @staticmethod
    def check_guest(src, dst):
        """The resumed guest verifies every page and keeps running; no
        guest line ever reported a problem."""
        m = dst.con.verify(VERIFY_TIMEOUT)
        vpages, verrors = int(m.group(1)), int(m.group(2))
        since = dst.con.mark()
        time.sleep(HB_WINDOW)
        beats = [s for _, s in dst.con.heartbeats(since)]
        running = (dst.status() == 'running' and len(beats) >= MIN_HB and
                   beats == list(range(beats[0], beats[0] + len(beats))))
        return {'verify_pages': vpages, 'verify_errors': verrors,
                'beats': len(beats), 'running': running,
                'errors': guest_errors(src) or guest_errors(dst)}


def problems(res, pages):
    """What went wrong in one migration, in words; [] if nothing."""
    out = []
    if res['diff']:
        out.append(f"RAM differs in {len(res['diff'])} pages")
    if res['verify_pages'] != pages or res['verify_errors']:
        out.append(f"verify: {res['verify_errors']} bad of "
                   f"{res['verify_pages']} pages (want {pages})")
    if not res['running']:
        out.append('not running after the migration')
    if res['errors']:
        out.append(f"guest said: {res['errors']}")
    return out


def plural(n, word):
    """n word(s)."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def describe(chain, res):
    """One migration's line."""
    n = len(chain.hops)
    diff = res['diff']
    ram = (f"RAM {res['pages']} pages byte-identical" if not diff else
           f"RAM {len(diff)} of {res['pages']} pages DIFFER: "
           + ', '.join(hex(a) for a in diff[:8]))
    lines = [
        f"{chain.name} #{n}: {res['total_ms'] / 1000:.2f} s, "
        f"{res['transferred'] / 1e9:.2f} GB sent, {res['gbps']:.2f} GB/s, "
        f"{res['sync']} dirty syncs, QMP downtime {res['downtime_ms']} ms, "
        f"guest-seen {res['seen_ms']:.0f} ms; the guest rewrote "
        f"~{res['rewritten_mib']:.0f} MiB meanwhile",
        f"    {ram} ({res['cmp_s']:.1f} s); guest paused "
        f"{res['paused_ms']:.0f} ms of which the demo held it "
        f"{res['held_ms']:.0f} ms for the comparison; verify "
        f"{res['verify_pages']} pages, {res['verify_errors']} bad; "
        f"{res['beats']} heartbeats in {HB_WINDOW:g} s, in sequence: "
        f"{'running' if res['running'] else 'NOT RUNNING'}"
        + (f"; guest said: {res['errors']}" if res['errors'] else ''),
    ]
    return lines


def median(chain, key):
    """The median of a figure over a build's migrations."""
    return statistics.median(h[key] for h in chain.hops)


def verdict(chain, reps):
    """The verdict column for a build."""
    if chain.failure:
        return f'FAILED: {chain.failure}'
    bad = [f"#{n}: {', '.join(h['problems'])}"
           for n, h in enumerate(chain.hops, 1) if h['problems']]
    if bad:
        return 'FAILED: ' + '; '.join(bad)
    return (f'OK: {reps}/{reps} RAM byte-identical, 0 bad pages, '
            'running')


def table(chains, reps):
    """The summary: medians per build, ratios branch/vanilla."""
    cols = ('build', 'total time', 'throughput', 'QMP downtime',
            'guest-seen downtime', 'verdict')
    rows = []
    for c in chains:
        if not c.hops:
            rows.append((c.name, '-', '-', '-', '-', verdict(c, reps)))
            continue
        rows.append((c.name, f"{median(c, 'total_ms') / 1000:.2f} s",
                     f"{median(c, 'gbps'):.2f} GB/s",
                     f"{median(c, 'downtime_ms'):.0f} ms",
                     f"{median(c, 'seen_ms'):.0f} ms", verdict(c, reps)))
    both = [c for c in chains if c.hops]
    if len(both) == 2 and both[0].build == 'patched':
        b, v = both

        def ratio(key):
            den = median(v, key)
            return f'{median(b, key) / den:.2f}x' if den else '-'
        rows.append(('branch/vanilla', ratio('total_ms'), ratio('gbps'),
                     ratio('downtime_ms'), ratio('seen_ms'), ''))
    widths = [max(len(r[i]) for r in rows + [cols]) for i in range(5)]
    out = []
    for r in [cols] + rows:
        cells = [r[0].ljust(widths[0])] + \
            [r[i].rjust(widths[i]) for i in range(1, 5)] + [r[5]]
        out.append('  '.join(cells).rstrip())
    return out


def exit_on_signal(signum, _frame):
    """SIGTERM and SIGHUP end the demo as Ctrl-C does: the QEMUs quit and
    the RAM files on /dev/shm are removed."""
    sys.exit(128 + signum)


def main():
    """Run the demo; exit status 0 when every check passed."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_on_signal)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--reps', type=int, default=REPS,
                    help='migrations per build (default %(default)s)')
    ap.add_argument('--only', choices=miglib.BUILDS,
                    help='one build only')
    ap.add_argument('--accel', choices=('kvm', 'tcg'))
    ap.add_argument('--mib', type=int, default=AREA_MIB,
                    help="the guest's test area, MiB (default "
                    f'%(default)s; RAM is {RAM_EXTRA_MIB} MiB more)')
    ap.add_argument('--guest-dir', default=miglib.GUEST_DIR,
                    help='the guest images (default: %(default)s)')
    opts = ap.parse_args()

    builds = [opts.only] if opts.only else ['patched'] + \
        (['vanilla'] if os.path.exists(miglib.BUILDS['vanilla']) else [])
    need = [miglib.BUILDS[b] for b in builds]
    need += [os.path.join(opts.guest_dir, f)
             for f in ('vmlinuz', 'initramfs.cpio.gz')]
    missing = [os.path.relpath(p, TOP) for p in need
               if not os.path.exists(p)]
    if missing:
        sys.exit(f'demo: missing {", ".join(missing)} (make build, '
                 'make vanilla, make guest)')
    accel, why = miglib.linux_guest_accel(opts.accel)
    shutil.rmtree(LOGS, ignore_errors=True)
    os.makedirs(LOGS)
    tmp = tempfile.mkdtemp(prefix='migration-demo-', dir='/dev/shm')
    cfg = Config(opts, accel, tmp)
    header(opts, cfg, builds, why)
    chains = [Chain(cfg, b) for b in builds]
    t_start = time.monotonic()
    try:
        run(chains, opts.reps)
    finally:
        for c in chains:
            if c.guest:
                c.guest.close()
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.monotonic() - t_start

    print(flush=True)
    say(f"medians of {plural(opts.reps, 'live migration')} per build, "
        f'{accel}, '
        'this machine; compare the builds, not the figures:')
    for line in table(chains, opts.reps):
        say('  ' + line)
    ok = all(not c.failure and len(c.hops) == opts.reps and
             all(h['ok'] for h in c.hops) for c in chains)
    say(f'{elapsed:.0f} s; consoles and QEMU logs in '
        f'{os.path.relpath(LOGS, TOP)}/')
    say(f"integrity: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def header(opts, cfg, builds, why):
    """The first lines: accelerator, binaries, guest, migration."""
    say(f'accelerator: {cfg.accel} ({why})')
    for b in builds:
        say(f'{NAMES[b]}: {os.path.relpath(miglib.BUILDS[b], TOP)}: '
            f'{miglib.qemu_version(miglib.BUILDS[b])}')
    if 'vanilla' not in builds and not opts.only:
        say('vanilla: not built (make vanilla), the branch runs alone')
    say(f'guest: the Linux test guest '
        f'({os.path.relpath(cfg.guest_dir, TOP)}), {cfg.ram_mib} MiB RAM, '
        f'{cfg.params}')
    say(f'  it fills {cfg.mib} MiB: {100 - PLAIN_PCT}% of the pages random '
        f'(incompressible), {PLAIN_PCT}% plain (one 8-byte word repeated: '
        'compressible, not zero); while it migrates it keeps rewriting '
        f'pages of a {cfg.hot_mib} MiB hot set at {DIRTY_MBPS} MiB/s and '
        f'prints a heartbeat every {HB_MS} ms')
    say(f'migration: precopy, unix socket, max-bandwidth unlimited, '
        f'downtime-limit {DOWNTIME_LIMIT_MS} ms; RAM a shared file on '
        f'/dev/shm on both sides; destination started with -S; '
        f"{plural(opts.reps, 'migration')} per build, each into a new QEMU, "
        'builds taking turns')


def run(chains, reps):
    """Boot every build's guest (at once), then the migrations, the
    builds taking turns (in alternating order)."""
    for c in chains:
        c.start()
    for c in chains:
        try:
            c.wait_ready()
        except Failed as e:
            c.failure = str(e)
            say(f'{c.name}: FAILED: {e}')
    for rep in range(reps):
        for c in chains if rep % 2 == 0 else chains[::-1]:
            if c.failure:
                continue
            try:
                res = c.hop()
            except (Failed, TimeoutError, EOFError) as e:
                c.failure = f'migration #{len(c.hops) + 1}: {e}'
                say(f'{c.name}: FAILED: {c.failure}')
                continue
            for line in describe(c, res):
                say(line)


if __name__ == '__main__':
    sys.exit(main())
