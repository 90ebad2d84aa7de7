#!/usr/bin/env python3
"""Boot the bare-metal test guest once and check its serial protocol.

Starts build/qemu/qemu-system-x86_64 with build/guest/bare-guest.elf
(scripts/build-bare-guest.sh makes it), its serial port connected to a
unix socket this script listens on, and checks: BOOT, FILL and READY
arrive, heartbeats flow, DIRTY reports the configured rate, the `verify`
command finds no bad page, `touch N`, `stats` and `ping` answer, an
unknown command is refused.  It also reports how much host CPU QEMU used
while the guest sat idle.  QEMU is killed at the end, whatever happens.

Usage: tests/guest/bare/smoke.py [--accel kvm|tcg] [--mib 256] ...
Exit status 0 when every check passed.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


class Console:
    """Line-oriented access to the guest's serial port over a socket."""

    def __init__(self, sock, echo):
        self.sock = sock
        self.buf = b''
        self.echo = echo
        self.lines = []         # (host monotonic time, line), all of them

    def readline(self, timeout):
        """The next line (without CR LF), or None after timeout seconds."""
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not data:
                raise EOFError('guest console closed')
            self.buf += data
        raw, self.buf = self.buf.split(b'\n', 1)
        line = raw.decode('ascii', 'replace').strip('\r')
        self.lines.append((time.monotonic(), line))
        if self.echo:
            print(f'  < {line}')
        return line

    def expect(self, pattern, timeout):
        """Read lines until one matches the regex; return the match."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.0, deadline - time.monotonic()))
            if line is None:
                raise TimeoutError(f'no line matching {pattern!r} '
                                   f'within {timeout} s')
            if line.startswith(('PANIC', 'ERROR')):
                raise RuntimeError(f'guest: {line}')
            m = re.search(pattern, line)
            if m:
                return m

    def send(self, cmd):
        if self.echo:
            print(f'  > {cmd}')
        self.sock.sendall(cmd.encode('ascii') + b'\r')


def cpu_seconds(pid):
    """User + system CPU time of a process so far, in seconds."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--qemu', default=os.path.join(
        TOP, 'build', 'qemu', 'qemu-system-x86_64'))
    ap.add_argument('--elf', default=os.path.join(
        TOP, 'build', 'guest', 'bare-guest.elf'))
    ap.add_argument('--accel', default='kvm', help='kvm (default) or tcg')
    ap.add_argument('--mib', type=int, default=256, help='test area, MiB')
    ap.add_argument('--ram', type=int, help='guest RAM, MiB '
                    '(default: test area + 64)')
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

    ram = args.ram or args.mib + 64
    tmp = tempfile.mkdtemp(prefix='bare-smoke.')
    sock_path = os.path.join(tmp, 'serial.sock')
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    append = (f'guest.mib={args.mib} guest.dirty={args.dirty:g} '
              f'{args.append}').strip()
    cmd = [args.qemu, '-accel', args.accel, '-m', str(ram), '-nodefaults',
           '-display', 'none', '-no-reboot',
           '-chardev', f'socket,id=con,path={sock_path}',
           '-serial', 'chardev:con',
           '-kernel', args.elf, '-append', append]
    print('smoke: ' + ' '.join(cmd))
    failures = []
    t_start = time.monotonic()
    qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        listener.settimeout(30)
        conn, _ = listener.accept()
        con = Console(conn, args.verbose)

        m = con.expect(r'^BOOT ms=(\d+) .*pvm=(\d)', args.timeout)
        print(f'smoke: BOOT after {time.monotonic() - t_start:.1f} s on '
              f'the host: {m.string}')
        print('smoke: ' + con.expect(r'^CLOCK ', args.timeout).string)
        print('smoke: ' + con.expect(r'^ALLOC ', args.timeout).string)
        m = con.expect(r'^FILL pages=(\d+) ms=(\d+)', args.timeout)
        pages, ms = int(m.group(1)), int(m.group(2))
        print(f'smoke: FILL {pages} pages in {ms} ms '
              f'({pages * 4096 / 1048576 / max(ms, 1) * 1000:.0f} MiB/s)')
        con.expect(r'^READY mib=(\d+) seed=(\d+)', args.timeout)
        print(f'smoke: READY after {time.monotonic() - t_start:.1f} s')

        # Heartbeats and dirty reports for a while.
        end = time.monotonic() + args.seconds
        hbs, dirty = [], []
        while time.monotonic() < end:
            line = con.readline(end - time.monotonic())
            if line is None:
                break
            m = re.match(r'HB seq=(\d+)$', line)
            if m:
                hbs.append((con.lines[-1][0], int(m.group(1))))
            m = re.match(r'DIRTY pages=(\d+) mbps=([\d.]+)$', line)
            if m:
                dirty.append(float(m.group(2)))
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

        con.send('verify')
        m = con.expect(r'^VERIFY pages=(\d+) errors=(\d+) ms=(\d+)', 600)
        print(f'smoke: {m.group(0)}')
        if int(m.group(2)) != 0 or int(m.group(1)) != pages:
            failures.append('verify')

        con.send(f'touch {args.touch}')
        m = con.expect(r'^TOUCH n=(\d+) p50=([\d.]+) p90=([\d.]+) '
                       r'p99=([\d.]+) max=([\d.]+) us', 600)
        print(f'smoke: {m.group(0)}')
        hist = con.expect(r'^TOUCH-HIST', 10)
        print(f'smoke: {hist.string}')

        con.send('stats')
        print('smoke: ' + con.expect(r'^STATS ', 10).string)
        con.send('ping smoke')
        con.expect(r'^PONG smoke$', 10)
        con.send('bogus')
        con.expect(r'^ERR unknown command', 10)

        # Host CPU of an idle guest: no dirtying, heartbeats on, then off.
        con.send('dirty 0')
        con.expect(r'^OK dirty=0$', 10)
        for what, cmd in (('heartbeats on', None), ('quiet', 'quiet')):
            if cmd:
                con.send(cmd)
                con.expect(r'^OK hb=0$', 10)
            c0, t0 = cpu_seconds(qemu.pid), time.monotonic()
            end = t0 + 2
            while con.readline(max(0.0, end - time.monotonic())) is not None:
                pass
            busy = (cpu_seconds(qemu.pid) - c0) / (time.monotonic() - t0)
            print(f'smoke: idle guest, {what}: QEMU used '
                  f'{busy * 100:.0f}% of a host CPU')
        con.send('ping idle')
        con.expect(r'^PONG idle$', 10)
    except (TimeoutError, EOFError, OSError, RuntimeError) as e:
        failures.append(str(e))
    finally:
        qemu.kill()
        _, err = qemu.communicate()
        listener.close()
        shutil.rmtree(tmp, ignore_errors=True)
        err = [ln for ln in err.splitlines()
               if 'CPUID' not in ln and 'terminating' not in ln]
        if err:
            print('smoke: QEMU said: ' + ' | '.join(err[:5]))

    if failures:
        print('smoke: FAIL: ' + '; '.join(failures))
        return 1
    print('smoke: PASS')
    return 0


if __name__ == '__main__':
    sys.exit(main())
