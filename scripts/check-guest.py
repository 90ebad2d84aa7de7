#!/usr/bin/env python3
"""Real-guest end-to-end migration test: the Linux test guest, live.

Boots the Linux test guest of tests/guest/ (Debian's cloud kernel with
our self-verifying /init, built by scripts/build-guest.sh) with a live
workload: a 256 MiB test area that the guest rewrites at 64 MiB/s and
verifies again and again by itself.  For each mode it migrates the
running guest and checks that the source stopped, that heartbeats resume
on the destination in sequence and keep coming, that a full `verify` of
the area there finds 0 bad pages (lost, corrupt or stale), and that no
verification pass on either side ever found one.

Modes:
  precopy           plain live migration over a unix socket
  multifd           the same with 2 multifd channels
  multifd-memfd     multifd with guest RAM a shared memfd on both sides,
                    which the branch's destination fills with
                    UFFDIO_COPY while the guest's vCPUs may already run
  postcopy          precopy for a second at a capped rate, then
                    migrate-start-postcopy; the source must report
                    postcopy-active
  postcopy-preempt  the same with the postcopy-preempt channel
  postcopy-multifd  postcopy-preempt with 2 multifd channels that keep
                    sending after the switchover (x-postcopy-multifd,
                    where both builds have it; with vanilla on either
                    side, upstream's multifd+postcopy); the source must
                    have sent on them after postcopy-active
  mapped-ram        save to a file: URI (migration stops the guest), then
                    restore into a new QEMU (-S -incoming defer,
                    migrate-incoming, cont)
  ping-pong         10 live precopy migrations back and forth, each into
                    a fresh QEMU, alternately of the --dst and --src
                    builds, verified after each
  fresh-writes      precopy of a guest whose area was never written
                    (guest.fill=0) while it writes pages for the first
                    time (`touch N w`: each page once), with the source's
                    dirty log cleared in chunks of 64 pages
                    (x-clear-bitmap-shift=6); every page written must
                    arrive, every other must be zero.  Under KVM the
                    dirty log starts "initially set", so a page written
                    before its chunk is cleared leaves no dirty bit; a
                    source that decided such a page was a hole before
                    the clear lost the write.  The guest's TOUCH line
                    must have every page written and none bad, and the
                    heartbeats the source printed (`touched=D`) must
                    show pages written there after `migrate` returned:
                    a guest that wrote nothing, or only before the
                    migration or after the switchover, fails.  On a
                    KVM-PVM host this mode runs the bare-metal guest
                    under KVM (the Linux guest cannot), elsewhere the
                    Linux guest

Bandwidth is uncapped, as libvirt sets it, except in the precopy phase
of the postcopy modes.  QEMU is driven through QEMU's python library
(scripts/miglib.py).  The first lines name the accelerator and the
binaries; then one TAP-like line per mode, and last "N passed, N failed".
The exit status is 1 if any mode failed.  Console transcripts and QEMU's
output are kept in build/test-results/guest/<mode>/ (--results DIR).

Usage: check-guest.py [--mode NAME[,NAME]] [--src patched|vanilla]
                      [--dst patched|vanilla] [--accel kvm|tcg]
                      [--results DIR] [-v]
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time

import miglib

TOP = miglib.TOP
RESULTS = os.path.join(TOP, 'build', 'test-results', 'guest')

AREA_MIB = 256                      # the guest's test area
AREA_PAGES = AREA_MIB * 256
RAM_MIB = AREA_MIB + 256            # the kernel needs about 130 MiB
DIRTY_MBPS = 64
GUEST_PARAMS = (f'guest.mib={AREA_MIB} guest.dirty={DIRTY_MBPS} '
                'guest.verify=1')

# Generous: the machines these run on are shared and TCG is slow.
BOOT_TIMEOUT = 180                  # QEMU start to READY
MIGRATION_TIMEOUT = 300
VERIFY_TIMEOUT = 120                # a full pass takes about 0.3 s
HB_TIMEOUT = 60                     # first heartbeat on the destination
HB_WINDOW = 1.0                     # heartbeats watched after that, s
MIN_HB = 10                         # ... of the 100 the guest prints
MAX_HB_SEQ_GAP = 2                  # a HB line cut by the switchover

# Postcopy modes: precopy first, slow enough that it cannot complete
# before migrate-start-postcopy (the postcopy phase is uncapped).
POSTCOPY_PRECOPY_BW = 64 << 20      # bytes/s
POSTCOPY_PRECOPY_S = 1.0

PING_PONG_HOPS = 10

POSTCOPY = {'postcopy-ram': True}
MODES = {
    'precopy': {},
    'multifd': {'caps': {'multifd': True},
                'params': {'multifd-channels': 2}},
    'multifd-memfd': {'caps': {'multifd': True},
                      'params': {'multifd-channels': 2}, 'memfd': True},
    'postcopy': {'caps': POSTCOPY, 'postcopy': True},
    'postcopy-preempt': {'caps': dict(POSTCOPY, **{'postcopy-preempt':
                                                   True}),
                         'postcopy': True},
    'postcopy-multifd': {'caps': dict(POSTCOPY, **{'postcopy-preempt': True,
                                                   'multifd': True}),
                         'params': {'multifd-channels': 2},
                         'postcopy': True, 'many': True},
    'mapped-ram': {'caps': {'mapped-ram': True}, 'file': True},
    'ping-pong': {'hops': PING_PONG_HOPS},
    'fresh-writes': {'fresh': True},
}

# fresh-writes: the guest writes this many pages during the migration
# (at most 3/4 of its area, each once), and the source clears its dirty
# log in chunks of 2^6 pages, so that many holes are looked at before
# their chunk is cleared.
FRESH_TOUCH_PAGES = 200000
FRESH_CLEAR_BITMAP_SHIFT = 6
FRESH_BARE_AREA_MIB = 1024
TOUCH_TIMEOUT = 120                 # the TOUCH line, after the migration


class Failed(Exception):
    """A check failed; the message says which and why."""


def log_tail(path, n=5):
    """The last n non-empty lines of a file, or [] if there is none."""
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            lines = [ln.rstrip() for ln in f if ln.strip()]
    except OSError:
        return []
    return lines[-n:]


class ModeRun:
    """One mode of the test: its QEMUs, their logs, and the checks."""

    def __init__(self, opts, accel, tmp, name):
        self.opts = opts
        self.accel = accel
        self.tmp = tmp
        self.name = name
        self.spec = MODES[name]
        self.logdir = os.path.join(opts.results, name)
        shutil.rmtree(self.logdir, ignore_errors=True)
        os.makedirs(self.logdir)
        self.guests = []
        self.t0 = time.monotonic()
        self.guest = 'linux'
        if self.spec.get('fresh'):
            # The bare-metal guest under KVM where the Linux guest
            # cannot run under it (KVM-PVM): the mode is about KVM.
            self.guest, self.accel = miglib.pick_guest(
                None, opts.accel, miglib.BUILDS[opts.src])

    def say(self, msg):
        """A progress line, with -v."""
        if self.opts.verbose:
            print(f'# {self.name}: {msg}', flush=True)

    # -- QEMUs -------------------------------------------------------------

    def guest_args(self):
        """-m and the guest: the Linux guest with its live workload, or
        for fresh-writes a guest that has written nothing (the bare-metal
        guest under KVM on a KVM-PVM host)."""
        if not self.spec.get('fresh'):
            return ['-m', str(RAM_MIB)] + \
                miglib.linux_guest_args(GUEST_PARAMS)
        if self.guest == 'bare':
            return ['-m', str(FRESH_BARE_AREA_MIB + 64),
                    '-bios', 'qboot.rom', '-kernel',
                    os.path.join(miglib.GUEST_DIR, 'bare-guest.elf'),
                    '-append', f'guest.mib={FRESH_BARE_AREA_MIB} '
                               'guest.fill=0']
        return ['-m', str(RAM_MIB)] + \
            miglib.linux_guest_args(f'guest.mib={AREA_MIB} guest.fill=0')

    def area_pages(self):
        """Pages of the guest's test area."""
        if self.guest == 'bare':
            return FRESH_BARE_AREA_MIB * 256
        return AREA_PAGES

    def start(self, build, role, incoming=False, extra=()):
        """Launch a QEMU of build with the guest (or waiting for it)."""
        tag = f'{len(self.guests):02d}-{role}-{build}'
        args = ['-accel', self.accel, '-nodefaults',
                '-no-reboot'] + list(extra)
        if self.spec.get('memfd'):
            args += ['-machine', 'memory-backend=ram0', '-object',
                     f'memory-backend-memfd,id=ram0,size={RAM_MIB}M,'
                     'share=on']
        if self.spec.get('fresh') and role == 'src':
            args += ['-global', 'migration.x-clear-bitmap-shift='
                     f'{FRESH_CLEAR_BITMAP_SHIFT}']
        args += self.guest_args()
        g = miglib.Guest(miglib.BUILDS[build], tag, args, self.tmp,
                         incoming=incoming, log_dir=self.logdir)
        self.guests.append(g)
        self.say(f'{tag}: ' + ' '.join(g.vm.args))
        return g

    def boot(self, build):
        """Start the source and wait for the guest's READY."""
        g = self.start(build, 'src')
        t0 = time.monotonic()
        try:
            _, _, m = g.con.wait_for(r'(READY|ERROR|PANIC) ', BOOT_TIMEOUT)
        except (TimeoutError, EOFError) as e:
            raise Failed(f'the guest did not boot: {e}') from e
        if m.group(1) != 'READY':
            raise Failed(f'the guest failed to start: {m.string}')
        self.say(f'{g.tag}: READY after {time.monotonic() - t0:.1f} s')
        return g

    def finish(self):
        """Shut every QEMU down and keep the console transcripts."""
        for g in self.guests:
            g.close()
            g.con.save(os.path.join(self.logdir, f'{g.tag}.console'),
                       '# ' + ' '.join([g.vm.binary] + g.vm.args) + '\n',
                       self.t0)

    def post_mortem(self):
        """Console and QEMU log tails of every QEMU of this mode."""
        out = []
        for g in self.guests:
            con = [ln for _, ln in g.con.lines[-4:]]
            out.append(f'{g.tag} console: {con}')
            qemu = [ln for ln in log_tail(os.path.join(self.logdir,
                                                       f'{g.tag}.log'))
                    if 'CPUID' not in ln]
            if qemu:
                out.append(f'{g.tag} QEMU: {" | ".join(qemu)}')
        out.append(f'logs: {os.path.relpath(self.logdir, TOP)}/')
        return out

    # -- migration ---------------------------------------------------------

    def set_caps(self, g, src):
        """The mode's capabilities and parameters on one side.  The
        source also sends MIGRATION events, so that a postcopy-active
        state, however short, is seen."""
        caps = dict(self.spec.get('caps', {}))
        params = dict(self.spec.get('params', {}))
        if self.many_channels():
            caps['x-postcopy-multifd'] = True
        if src:
            caps['events'] = True
            if self.spec.get('postcopy'):
                params['max-bandwidth'] = POSTCOPY_PRECOPY_BW
        g.set_caps(caps, params)

    def wait_done(self, g, side, peer=None):
        """Wait for g's migration to complete; fail with its error-desc
        and that of the peer."""
        try:
            info = miglib.wait_migration(g.vm, timeout=MIGRATION_TIMEOUT,
                                         poll=0.02)
        except TimeoutError as e:
            raise Failed(f'{side}: {e}') from e
        if info['status'] == 'completed':
            return info
        msg = (f"{side}: migration {info['status']}: "
               f"{info.get('error-desc', 'no error-desc')}")
        if peer and not peer.vm.is_running():
            msg += f'; other side: QEMU exited ({peer.vm.exitcode()})'
        elif peer:
            pinfo = peer.vm.cmd('query-migrate')
            msg += (f"; other side {pinfo.get('status')}: "
                    f"{pinfo.get('error-desc', 'no error-desc')}")
        raise Failed(msg)

    def many_channels(self):
        """x-postcopy-multifd: the mode wants it and both builds have it."""
        return self.spec.get('many') and 'vanilla' not in (self.opts.src,
                                                           self.opts.dst)

    def start_postcopy(self, src):
        """Switch to postcopy after a second of precopy; return the
        source's multifd-bytes then."""
        try:
            miglib.wait_migrating(src.vm)
        except RuntimeError as e:
            raise Failed(str(e)) from e
        time.sleep(POSTCOPY_PRECOPY_S)
        src.vm.cmd('migrate-start-postcopy')
        return src.vm.cmd('query-migrate').get('ram', {}).get(
            'multifd-bytes', 0)

    def states_seen(self, src):
        """The migration states of the source's MIGRATION events."""
        return [e['data']['status'] for e in src.vm.get_qmp_events()
                if e['event'] == 'MIGRATION']

    def migrate_live(self, src, build):
        """Live-migrate src into a new QEMU of build over a unix socket;
        return the destination and a summary."""
        dst = self.start(build, 'dst', incoming=True)
        self.set_caps(src, True)
        self.set_caps(dst, False)
        uri = f'unix:{os.path.join(self.tmp, dst.tag)}.sock'
        dst.vm.cmd('migrate-incoming', uri=uri)
        mark = src.con.mark()
        pages = 0
        if self.spec.get('fresh'):
            pages = min(FRESH_TOUCH_PAGES, self.area_pages() * 3 // 4)
            src.con.send(f'touch {pages} w')
        t0 = time.monotonic()
        src.vm.cmd('migrate', uri=uri)
        if self.spec.get('fresh'):
            # Its PONG marks a moment after the migration started.
            src.con.send(f'ping started-{mark}')
        multifd_at_switch = 0
        if self.spec.get('postcopy'):
            multifd_at_switch = self.start_postcopy(src)
        info = self.wait_done(src, 'source', dst)
        wall = time.monotonic() - t0
        self.wait_done(dst, 'destination', src)
        states = self.states_seen(src)
        res = {'wall': wall, 'info': info, 'mark': mark}
        if self.spec.get('fresh'):
            res['touch'] = self.check_touch(src, dst, mark, pages)
        if self.spec.get('postcopy'):
            if 'postcopy-active' not in states:
                raise Failed(f'never entered postcopy-active: {states}')
            res['postcopy-requests'] = info['ram'].get('postcopy-requests')
        if self.many_channels():
            after = info['ram'].get('multifd-bytes', 0) - multifd_at_switch
            if after <= 0:
                raise Failed('x-postcopy-multifd: nothing went on the '
                             'multifd channels after the switchover')
            res['multifd-after-switch'] = after
        self.say(f'{src.tag} -> {dst.tag}: {wall:.2f} s, states {states}')
        return dst, res

    def save_restore(self, src, build):
        """Save src to a mapped-ram file (which stops it), restore into a
        new QEMU of build and cont; return the destination and a
        summary."""
        path = os.path.join(self.tmp, f'{self.name}.img')
        self.set_caps(src, True)
        mark = src.con.mark()
        t0 = time.monotonic()
        src.vm.cmd('migrate', uri=f'file:{path}')
        info = self.wait_done(src, 'save')
        wall = time.monotonic() - t0
        size = os.path.getsize(path)
        dst = self.start(build, 'dst', incoming=True, extra=['-S'])
        self.set_caps(dst, False)
        t1 = time.monotonic()
        dst.vm.cmd('migrate-incoming', uri=f'file:{path}')
        self.wait_done(dst, 'restore')
        status = dst.status()
        if status == 'running':
            raise Failed('restored guest runs before cont (-S)')
        dst.vm.cmd('cont')
        restore = time.monotonic() - t1
        os.unlink(path)
        self.say(f'saved {size >> 20} MiB in {wall:.2f} s, restored in '
                 f'{restore:.2f} s (was {status})')
        return dst, {'wall': wall, 'info': info, 'mark': mark,
                     'restore': restore, 'file': size}

    def migrate(self, src, build):
        """One migration of the mode's kind."""
        if self.spec.get('file'):
            return self.save_restore(src, build)
        return self.migrate_live(src, build)

    # -- checks ------------------------------------------------------------

    def check_touch(self, src, dst, mark, pages):
        """fresh-writes: the guest wrote its pages, and wrote some of them
        on the source while it migrated.  The TOUCH line (printed by
        whichever side finished the touch) must have all the pages
        written and none bad.  The heartbeats the source printed carry
        how far the touch got (`touched=`): the pages written there,
        before the switchover, less those written before the PONG that
        the source printed after `migrate` returned, must be more than
        none.  Returns a summary."""
        on_src = src.con.matching(r'(TOUCH|ERR) ', mark)
        side = 'source'
        if on_src:
            m = on_src[0][1]
        else:
            side = 'destination'
            try:
                _, _, m = dst.con.wait_for(r'(TOUCH|ERR) ', TOUCH_TIMEOUT)
            except (TimeoutError, EOFError) as e:
                raise Failed(f'no TOUCH line for `touch {pages} w`: '
                             f'{e}') from e
        t = re.match(r'TOUCH n=(\d+) .* mode=(\w+) bad=(\d+) ms=(\d+)',
                     m.string)
        if not t:
            raise Failed(f'`touch {pages} w` on the {side}: {m.string}')
        if (int(t.group(1)), t.group(2), int(t.group(3))) != \
                (pages, 'write', 0):
            raise Failed(f'{m.string} on the {side} (want n={pages} '
                         'mode=write bad=0)')

        # In the source's console order: heartbeats with the touch's
        # progress, the PONG, perhaps TOUCH.  The first value printed
        # after the PONG is at least what was done when the migration
        # started; the last, what was done before the switchover.
        progress, pong = [], None
        for _, p in src.con.matching(rf'(PONG started-{mark}$|TOUCH |'
                                     r'HB seq=\d+ touched=(\d+))', mark):
            if p.string.startswith('PONG'):
                pong = len(progress)
            elif p.string.startswith('TOUCH'):
                progress.append(pages)
            else:
                progress.append(int(p.group(2)))
        before = progress[-1] if progress else 0
        if pong is None:
            raise Failed(f'touch: the source printed no PONG after migrate '
                         f'({before} of {pages} pages written there)')
        started = progress[pong] if pong < len(progress) else before
        during = before - started
        if during <= 0:
            raise Failed(f'touch: no page written on the source while it '
                         f'migrated ({started} before the migration, '
                         f'{before} before the switchover, {pages} in all, '
                         f'TOUCH on the {side})')
        return (f'touch: {during} of {pages} pages written on the source '
                f'while it migrated ({started} before, TOUCH on the {side} '
                f'after {t.group(4)} ms)')

    def check_heartbeats(self, src, dst, res):
        """The guest resumed on dst where it stopped on src, and keeps
        beating.  Adds the pause the guest saw to res."""
        try:
            i, t_first, m = dst.con.wait_for(r'HB seq=(\d+)', HB_TIMEOUT)
        except (TimeoutError, EOFError) as e:
            raise Failed(f'no heartbeat on the destination: {e}') from e
        before = src.con.heartbeats(res['mark'])
        if not before:
            raise Failed('no heartbeat on the source during the migration')
        gap = int(m.group(1)) - before[-1][1]
        if not 1 <= gap <= MAX_HB_SEQ_GAP:
            raise Failed(f'heartbeat seq {before[-1][1]} on the source, '
                         f'{m.group(1)} on the destination')
        res['paused_ms'] = (t_first - before[-1][0]) * 1000
        time.sleep(HB_WINDOW)
        beats = dst.con.heartbeats(i)
        if len(beats) < MIN_HB:
            raise Failed(f'heartbeats stopped on the destination: '
                         f'{len(beats)} in {HB_WINDOW:g} s')
        seqs = [s for _, s in beats]
        if seqs != list(range(seqs[0], seqs[0] + len(seqs))):
            raise Failed(f'heartbeat seq not consecutive: {seqs[:20]}')

    def check_states(self, src, dst):
        """The source stopped for good; the destination runs."""
        states = (src.status(), dst.status())
        if states != ('postmigrate', 'running'):
            raise Failed(f'run states source/destination: {states}')

    def check_verify(self, dst, res):
        """A full `verify` on the destination finds every page good."""
        m = dst.con.verify(VERIFY_TIMEOUT)
        pages, errors = int(m.group(1)), int(m.group(2))
        if errors or pages != self.area_pages():
            raise Failed(f'verify: {m.string} (want pages='
                         f'{self.area_pages()} errors=0) {bad_pages(dst)}')
        res['verify'] = m.string

    def check_all_passes(self):
        """No verification pass of any QEMU of this mode found a bad
        page, and no guest reported an error.  Returns the passes."""
        passes = 0
        for g in self.guests:
            for _, m in g.con.matching(r'VERIFY pages=\d+ errors=(\d+)'):
                passes += 1
                if int(m.group(1)):
                    raise Failed(f'{g.tag}: a verification pass found bad '
                                 f'pages: {m.string} {bad_pages(g)}')
            bad = g.con.matching(r'(ERROR|PANIC|WARN) ')
            if bad:
                raise Failed(f'{g.tag}: {bad[0][1].string}')
        return passes

    def hop(self, src, build):
        """Migrate src to a new QEMU of build, check it there, shut src
        down; return the destination and the hop's summary."""
        dst, res = self.migrate(src, build)
        self.check_heartbeats(src, dst, res)
        self.check_states(src, dst)
        self.check_verify(dst, res)
        res['passes'] = self.check_all_passes()
        src.close()         # its console lines stay in memory
        return dst, res

    # -- the modes ---------------------------------------------------------

    def run(self):
        """Run the mode; return the details for its TAP line."""
        src = self.boot(self.opts.src)
        if 'hops' in self.spec:
            return self.ping_pong(src, self.spec['hops'])
        _, res = self.hop(src, self.opts.dst)
        guest = ''
        if self.spec.get('fresh'):
            guest = f'{self.guest} guest under {self.accel}, '
        return f'{guest}{self.opts.src}->{self.opts.dst}: {describe(res)}'

    def ping_pong(self, g, hops):
        """hops live migrations, alternately to the --dst and the --src
        build."""
        builds = (self.opts.dst, self.opts.src)
        walls, downs, paused = [], [], []
        for n in range(hops):
            g, res = self.hop(g, builds[n % 2])
            walls.append(res['wall'])
            downs.append(res['info'].get('downtime', 0))
            paused.append(res['paused_ms'])
            self.say(f'hop {n + 1}: {describe(res)}')
        return (f'{hops} hops {self.opts.src}<->{self.opts.dst}, migrate '
                f'{min(walls):.2f}-{max(walls):.2f} s, downtime max '
                f'{max(downs)} ms (guest paused max {max(paused):.0f} ms), '
                f'{res["passes"]} verify passes, 0 errors')


def bad_pages(g):
    """The distinct VERIFY-BAD lines of g's console, at most 4."""
    bad = [m.string for _, m in g.con.matching(r'VERIFY-BAD ')]
    return list(dict.fromkeys(bad))[:4]


def describe(res):
    """One migration's summary for a TAP line."""
    info = res['info']
    out = [f"migrate {res['wall']:.2f} s",
           f"downtime {info.get('downtime', '?')} ms"]
    if 'paused_ms' in res:
        out[-1] += f" (guest paused {res['paused_ms']:.0f} ms)"
    out.append(f"{info.get('ram', {}).get('transferred', 0) / 1e6:.0f} MB "
               'sent')
    if 'multifd-after-switch' in res:
        out.append(f"{res['multifd-after-switch'] >> 20} MiB on the multifd "
                   "channels after the switchover")
    if 'postcopy-requests' in res:
        out.append(f"postcopy-active, {res['postcopy-requests']} page "
                   'requests')
    if 'touch' in res:
        out.append(res['touch'])
    if 'restore' in res:
        out.append(f"file {res['file'] / 1e6:.0f} MB, restore "
                   f"{res['restore']:.2f} s")
    out.append(f"{res['verify']}, {res['passes']} verify passes 0 errors")
    return ', '.join(out)


def preflight(opts):
    """Fail early, with what to do, when binaries or images are missing."""
    need = [miglib.BUILDS[opts.src], miglib.BUILDS[opts.dst]]
    need += [os.path.join(miglib.GUEST_DIR, f)
             for f in ('vmlinuz', 'initramfs.cpio.gz', 'bare-guest.elf')]
    missing = [os.path.relpath(p, TOP) for p in need
               if not os.path.exists(p)]
    if missing:
        sys.exit(f'check-guest: missing {", ".join(missing)} (make build, '
                 'make vanilla, make guest)')


def header(opts, accel, why):
    """The first lines: accelerator, binaries, guest, logs."""
    print(f'# accelerator: {accel} ({why})')
    for side in ('src', 'dst'):
        binary = getattr(opts, side)
        path = miglib.BUILDS[binary]
        print(f'# {side}: {binary} {os.path.relpath(path, TOP)}: '
              f'{miglib.qemu_version(path)}')
    print(f'# guest: {os.path.relpath(miglib.GUEST_DIR, TOP)}/vmlinuz + '
          f'initramfs.cpio.gz, {RAM_MIB} MiB RAM, {GUEST_PARAMS}')
    print(f'# logs: {os.path.relpath(opts.results, TOP)}/<mode>/',
          flush=True)


def run_mode(opts, accel, tmp, name):
    """Run one mode; return (passed, TAP details, post-mortem lines)."""
    mode = ModeRun(opts, accel, tmp, name)
    try:
        return True, mode.run(), []
    except Failed as e:
        return False, str(e), mode.post_mortem()
    except Exception as e:  # pylint: disable=broad-except
        return False, f'{type(e).__name__}: {e}', mode.post_mortem()
    finally:
        mode.finish()


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split('\n', 1)[0],
        epilog='modes: ' + ', '.join(MODES))
    ap.add_argument('--mode', default='all',
                    help='comma-separated modes, or all (the default)')
    ap.add_argument('--src', choices=miglib.BUILDS, default='patched')
    ap.add_argument('--dst', choices=miglib.BUILDS, default='patched')
    ap.add_argument('--accel', choices=('kvm', 'tcg'))
    ap.add_argument('--results', default=RESULTS, metavar='DIR',
                    help='where the logs go (default: %(default)s)')
    ap.add_argument('-v', '--verbose', action='store_true',
                    help='progress, QEMU command lines')
    opts = ap.parse_args()
    modes = list(MODES) if opts.mode == 'all' else opts.mode.split(',')
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        ap.error(f'unknown mode {", ".join(unknown)}; modes: '
                 f'{", ".join(MODES)}')
    preflight(opts)
    accel, why = miglib.linux_guest_accel(opts.accel)
    header(opts, accel, why)

    os.makedirs(opts.results, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='check-guest-', dir='/dev/shm')
    passed = failed = 0
    try:
        with open(os.path.join(opts.results, 'summary.tap'), 'w',
                  encoding='utf-8') as summary:
            for n, name in enumerate(modes, 1):
                t0 = time.monotonic()
                ok, details, notes = run_mode(opts, accel, tmp, name)
                line = (f"{'ok' if ok else 'not ok'} {n} check-guest/{name}"
                        f' # {time.monotonic() - t0:.0f}s {details}')
                for text in [line] + [f'#   {x}' for x in notes]:
                    print(text, flush=True)
                    summary.write(text + '\n')
                passed += ok
                failed += not ok
            summary.write(f'{passed} passed, {failed} failed\n')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
