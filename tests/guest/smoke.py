#!/usr/bin/env python3
"""Boot a test guest once and check its serial protocol.

Starts build/qemu/qemu-system-x86_64 through QEMU's python library
(QEMUMachine, console on a socket pair) with the Linux guest
(build/guest/{vmlinuz,initramfs.cpio.gz}, scripts/build-guest.sh) or
the bare-metal one (build/guest/bare-guest.elf,
scripts/build-bare-guest.sh), reads its console with
scripts/guestcon.py, and checks: BOOT, FILL and READY arrive, heartbeats
flow, DIRTY reports the configured rate, the `verify` command finds no
bad page, `touch N`, `stats` and `ping` answer, an unknown command is
refused.  It also reports how much host CPU QEMU uses while the guest
sits idle.  QEMU is killed at the end, whatever happens.

Usage: tests/guest/smoke.py [--guest linux|bare] [--accel tcg|kvm] ...
Exit status 0 when every check passed.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, 'scripts'))

# pylint: disable=wrong-import-position
import miglib  # noqa: E402
from guestcon import GuestConsole  # noqa: E402

# What each guest needs: the accelerator it runs under by default (the
# Linux guest hangs under this host's KVM-PVM), and guest RAM besides
# the test area.
GUESTS = {
    'linux': {'accel': 'tcg', 'ram_extra': 256},
    'bare': {'accel': 'kvm', 'ram_extra': 64},
}


def qemu_args(args):
    """QEMU's command line, but for what QEMUMachine adds."""
    ram = args.ram or args.mib + GUESTS[args.guest]['ram_extra']
    append = f'guest.mib={args.mib} guest.dirty={args.dirty:g} {args.append}'
    cmd = ['-accel', args.accel, '-m', str(ram), '-nodefaults',
           '-no-reboot']
    if args.guest == 'bare':
        return cmd + ['-kernel', os.path.join(args.dir, 'bare-guest.elf'),
                      '-append', append.strip()]
    return cmd + miglib.linux_guest_args(append, args.dir)


class Session:
    """Commands and expected answers, in order, on a GuestConsole."""

    def __init__(self, con, verbose):
        self.con = con
        self.pos = 0            # index of the first line not consumed
        self.shown = 0          # lines echoed so far
        self.verbose = verbose

    def echo(self, upto):
        if self.verbose:
            for _, line in self.con.lines[self.shown:upto]:
                print(f'  < {line}')
        self.shown = max(self.shown, upto)

    def expect(self, pattern, timeout):
        """The match of the next line matching the regex; PANIC or ERROR
        from the guest fail at once."""
        i, _, m = self.con.wait_for(rf'(?:PANIC|ERROR) |(?:{pattern})',
                                    timeout, self.pos)
        self.echo(i + 1)
        self.pos = i + 1
        if m.string.startswith(('PANIC ', 'ERROR ')):
            raise RuntimeError(f'guest: {m.string}')
        return m

    def skip(self):
        """Consume every line received so far; return them."""
        end = self.con.mark()
        self.echo(end)
        lines = self.con.lines[self.pos:end]
        self.pos = end
        return lines

    def send(self, cmd):
        self.skip()
        if self.verbose:
            print(f'  > {cmd}')
        self.con.send(cmd)


def check(s, args, pid, t_start, failures):
    """Every check, in order; appends to failures what failed."""
    m = s.expect(r'BOOT ms=(\d+)', args.timeout)
    print(f'smoke: BOOT after {time.monotonic() - t_start:.1f} s on the '
          f'host: {m.string}')
    print('smoke: ' + s.expect(r'CLOCK ', args.timeout).string)
    print('smoke: ' + s.expect(r'ALLOC ', args.timeout).string)
    m = s.expect(r'FILL pages=(\d+) ms=(\d+)', args.timeout)
    pages, ms = int(m.group(1)), int(m.group(2))
    print(f'smoke: FILL {pages} pages in {ms} ms '
          f'({pages * 4096 / 1048576 / max(ms, 1) * 1000:.0f} MiB/s)')
    s.expect(r'READY mib=(\d+) seed=(\d+)', args.timeout)
    print(f'smoke: READY after {time.monotonic() - t_start:.1f} s')

    # Heartbeats and dirty reports for a while.
    since = s.pos
    time.sleep(args.seconds)
    hbs = s.con.heartbeats(since)
    dirty = []
    for _, line in s.skip():
        m = re.match(r'DIRTY pages=\d+ mbps=([\d.]+)$', line)
        if m:
            dirty.append(float(m.group(1)))
    gaps = [b[0] - a[0] for a, b in zip(hbs, hbs[1:])]
    seq_ok = all(b[1] == a[1] + 1 for a, b in zip(hbs, hbs[1:]))
    if len(hbs) < 2 or not seq_ok:
        failures.append('heartbeats')
    else:
        print(f'smoke: {len(hbs)} HB, gap max {max(gaps) * 1000:.1f} ms,'
              f' mean {sum(gaps) / len(gaps) * 1000:.1f} ms')
    if args.dirty > 0:
        if not dirty:
            failures.append('no DIRTY line')
        else:
            print(f'smoke: DIRTY mbps {dirty}')

    s.send('verify')
    m = s.expect(r'VERIFY pages=(\d+) errors=(\d+) ms=(\d+)', 600)
    print(f'smoke: {m.group(0)}')
    if int(m.group(2)) != 0 or int(m.group(1)) != pages:
        failures.append('verify')

    s.send(f'touch {args.touch}')
    m = s.expect(r'TOUCH n=(\d+) p50=([\d.]+) p90=([\d.]+) '
                 r'p99=([\d.]+) max=([\d.]+) us', 600)
    print(f'smoke: {m.group(0)}')
    print('smoke: ' + s.expect(r'TOUCH-HIST', 10).string)

    s.send('stats')
    print('smoke: ' + s.expect(r'STATS ', 10).string)
    s.send('ping smoke')
    s.expect(r'PONG smoke$', 10)
    s.send('bogus')
    s.expect(r'ERR unknown command', 10)

    # Host CPU of an idle guest: no dirtying, heartbeats on, then off.
    s.send('dirty 0')
    s.expect(r'OK dirty=0$', 10)
    for what, cmd in (('heartbeats on', None), ('quiet', 'quiet')):
        if cmd:
            s.send(cmd)
            s.expect(r'OK hb=0$', 10)
        c0, t0 = miglib.cpu_seconds(pid), time.monotonic()
        time.sleep(2)
        busy = (miglib.cpu_seconds(pid) - c0) / (time.monotonic() - t0)
        print(f'smoke: idle guest, {what}: QEMU used '
              f'{busy * 100:.0f}% of a host CPU')
    s.send('ping idle')
    s.expect(r'PONG idle$', 10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--guest', choices=sorted(GUESTS), default='linux')
    ap.add_argument('--accel', choices=('kvm', 'tcg'),
                    help='default: tcg for linux, kvm for bare')
    ap.add_argument('--qemu', default=miglib.BUILDS['patched'])
    ap.add_argument('--dir', default=os.environ.get(
        'GUEST_OUT', os.path.join(TOP, 'build', 'guest')),
        help='where the guest images are (default: $GUEST_OUT or '
        'build/guest)')
    ap.add_argument('--mib', type=int, default=256, help='test area, MiB')
    ap.add_argument('--ram', type=int, help='guest RAM, MiB (default: '
                    'test area + 256 for linux, + 64 for bare)')
    ap.add_argument('--dirty', type=float, default=50, help='MB/s')
    ap.add_argument('--touch', type=int, default=1000)
    ap.add_argument('--seconds', type=float, default=3,
                    help='how long to watch heartbeats and DIRTY')
    ap.add_argument('--append', default='', help='more guest parameters')
    ap.add_argument('--timeout', type=float, default=300,
                    help='for boot and fill')
    ap.add_argument('-v', '--verbose', action='store_true',
                    help='echo every console line')
    args = ap.parse_args()
    args.accel = args.accel or GUESTS[args.guest]['accel']

    tmp = tempfile.mkdtemp(prefix='guest-smoke.')
    vm = miglib.QEMUMachine(args.qemu, args=qemu_args(args), name='smoke',
                            base_temp_dir=tmp, log_dir=tmp)
    vm.set_console()
    print('smoke: ' + ' '.join([args.qemu] + vm.args))
    failures = []
    t_start = time.monotonic()
    try:
        vm.launch()
        s = Session(GuestConsole(vm.console_socket, args.guest),
                    args.verbose)
        check(s, args, vm.get_pid(), t_start, failures)
    except Exception as e:  # pylint: disable=broad-except
        failures.append(f'{type(e).__name__}: {e}')
    finally:
        vm.kill()
        err = [ln for ln in (vm.get_log() or '').splitlines()
               if 'CPUID' not in ln and 'terminating' not in ln]
        if err:
            print('smoke: QEMU said: ' + ' | '.join(err[:5]))
        shutil.rmtree(tmp, ignore_errors=True)

    if failures:
        print('smoke: FAIL: ' + '; '.join(failures))
        return 1
    print('smoke: PASS')
    return 0


if __name__ == '__main__':
    sys.exit(main())
