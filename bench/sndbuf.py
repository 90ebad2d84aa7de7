#!/usr/bin/python3
"""Paused precopy over a unix socket, with the source's send buffer set.

A unix stream socket holds at most the sender's SO_SNDBUF in flight
(212992 bytes by default), so the destination's main thread reads about
200 KiB per wake-up although it asks for 1 MiB.  This script measures
whether a larger send buffer saves the destination CPU: it connects to
the destination itself, sets SO_SNDBUF on that socket, and hands it to
the source with getfd ("fd:" migration), so one binary runs with every
size, interleaved.

The guest never runs (-S): its RAM is a file on /dev/shm, filled with
random data before the source starts; every run migrates it into a
fresh file.  Per run: wall time, the source's and the destination's CPU,
and the voluntary context switches of the destination's main thread.

Usage: sndbuf.py [--reps N] [--mib MiB] [--binary PATH] [SIZE ...]
SIZE 0 leaves the default.  Writes bench/results/sndbuf-<time>.md.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
sys.path.insert(0, os.path.join(TOP, 'qemu', 'python'))
from qemu.qmp.legacy import QEMUMonitorProtocol  # noqa: E402


def cpu_s(pid):
    fields = open(f'/proc/{pid}/stat', encoding='ascii').read()
    fields = fields.rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def switches(pid):
    with open(f'/proc/{pid}/status', encoding='ascii') as f:
        for line in f:
            if line.startswith('voluntary_ctxt_switches:'):
                return int(line.split()[1])
    return 0


def start(binary, tmp, name, mib, ram, extra):
    sock = os.path.join(tmp, f'{name}.qmp')
    proc = subprocess.Popen(
        [binary, '-accel', 'kvm', '-accel', 'tcg', '-nodefaults',
         '-display', 'none', '-S', '-machine', 'pc,memory-backend=m0',
         '-m', f'{mib}M', '-object',
         f'memory-backend-file,id=m0,size={mib}M,mem-path={ram},share=on',
         '-qmp', f'unix:{sock},server=on,wait=on'] + extra,
        stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    qmp = QEMUMonitorProtocol(sock)
    qmp.connect()
    return proc, qmp


def migrate(binary, tmp, mib, src_ram, sndbuf):
    dst_ram = os.path.join(tmp, 'dst.ram')
    mig = os.path.join(tmp, 'mig.sock')
    src, qsrc = start(binary, tmp, 'src', mib, src_ram, [])
    dst, qdst = start(binary, tmp, 'dst', mib, dst_ram,
                      ['-incoming', 'defer'])
    try:
        qdst.cmd('migrate-incoming', uri=f'unix:{mig}')
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sk:
            if sndbuf:
                sk.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            sk.connect(mig)
            qsrc.send_fd_scm(sk.fileno())
            qsrc.cmd('getfd', fdname='mig')
        qsrc.cmd('migrate-set-parameters', **{'max-bandwidth': 1 << 50})
        cs0 = switches(dst.pid)
        cpu0 = cpu_s(src.pid), cpu_s(dst.pid)
        t0 = time.monotonic()
        qsrc.cmd('migrate', uri='fd:mig')
        while qsrc.cmd('query-migrate')['status'] not in ('completed',
                                                           'failed'):
            time.sleep(0.01)
        return {'wall': time.monotonic() - t0,
                'src': cpu_s(src.pid) - cpu0[0],
                'dst': cpu_s(dst.pid) - cpu0[1],
                'cs': switches(dst.pid) - cs0}
    finally:
        for proc, qmp in ((src, qsrc), (dst, qdst)):
            try:
                qmp.cmd('quit')
                proc.wait(timeout=30)
                qmp.close()
            except Exception:   # pylint: disable=broad-except
                proc.kill()
                proc.wait()
        os.unlink(dst_ram)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--reps', type=int, default=6)
    ap.add_argument('--mib', type=int, default=2048)
    ap.add_argument('--binary',
                    default=os.path.join(TOP, 'build', 'qemu',
                                         'qemu-system-x86_64'))
    ap.add_argument('sizes', type=int, nargs='*',
                    default=[0, 212992, 4 << 20])
    args = ap.parse_args()

    results = {size: [] for size in args.sizes}
    with tempfile.TemporaryDirectory(dir='/dev/shm') as tmp:
        src_ram = os.path.join(tmp, 'src.ram')
        chunk = os.urandom(64 << 20)
        with open(src_ram, 'wb') as f:
            for i in range(args.mib // 64):
                f.write(chunk[i:] + chunk[:i])
        for rep in range(args.reps):
            for size in args.sizes:
                r = migrate(args.binary, tmp, args.mib, src_ram, size)
                print(f'sndbuf {size:8d}: {r["wall"]:.2f} s, src '
                      f'{r["src"]:.2f} s, dst {r["dst"]:.2f} s, '
                      f'{r["cs"]} switches', flush=True)
                results[size].append(r)

    stamp = time.strftime('%Y%m%dT%H%M%S')
    out = os.path.join(TOP, 'bench', 'results', f'sndbuf-{stamp}.md')
    version = subprocess.run([args.binary, '--version'], check=True,
                             capture_output=True, text=True).stdout
    with open(out, 'w', encoding='utf-8') as f:
        f.write(f'# bench/sndbuf.py, {stamp}\n\n'
                f'{version.splitlines()[0]}; {args.mib} MiB of random '
                f'data, paused, {args.reps} runs per size, interleaved; '
                f'net.core.wmem_max '
                f'{open("/proc/sys/net/core/wmem_max").read().strip()}.  '
                'Median [min-max].\n\n'
                '| SO_SNDBUF | wall (s) | source CPU (s) | '
                'destination CPU (s) | main thread switches |\n'
                '|---|---|---|---|---|\n')
        for size, runs in results.items():
            cols = []
            for key in ('wall', 'src', 'dst', 'cs'):
                vals = [r[key] for r in runs]
                cols.append(f'{statistics.median(vals):.2f} '
                            f'[{min(vals):.2f}-{max(vals):.2f}]'
                            if key != 'cs' else
                            f'{statistics.median(vals):.0f}')
            f.write(f'| {size or "default"} | ' + ' | '.join(cols) + ' |\n')
    print(f'sndbuf: {out}')


if __name__ == '__main__':
    main()
