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
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'scripts'))
import miglib  # noqa: E402


def switches(pid):
    """Voluntary context switches of the process's main thread so far."""
    with open(f'/proc/{pid}/status', encoding='ascii') as f:
        for line in f:
            if line.startswith('voluntary_ctxt_switches:'):
                return int(line.split()[1])
    return 0


def migrate(binary, accel, tmp, mib, src_ram, sndbuf):
    dst_ram = os.path.join(tmp, 'dst.ram')
    mig = os.path.join(tmp, 'mig.sock')
    src = miglib.new_vm(binary, 'src', tmp, accel, mib, src_ram, ['-S'])
    dst = miglib.new_vm(binary, 'dst', tmp, accel, mib, dst_ram,
                        ['-S', '-incoming', 'defer'])
    try:
        src.launch()
        dst.launch()
        dst.cmd('migrate-incoming', uri=f'unix:{mig}')
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sk:
            if sndbuf:
                sk.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            sk.connect(mig)
            src.send_fd_scm(fd=sk.fileno())
            src.cmd('getfd', fdname='mig')
        src.cmd('migrate-set-parameters', **{'max-bandwidth': 1 << 50})
        cs0 = switches(dst.get_pid())
        main = (dst.get_pid(), dst.get_pid())     # its main thread
        main0 = miglib.cpu_seconds(*main)
        cpu0 = (miglib.cpu_seconds(src.get_pid()),
                miglib.cpu_seconds(dst.get_pid()))
        t0 = time.monotonic()
        src.cmd('migrate', uri='fd:mig')
        miglib.wait_migration(src, poll=0.01)
        return {'wall': time.monotonic() - t0,
                'src': miglib.cpu_seconds(src.get_pid()) - cpu0[0],
                'dst': miglib.cpu_seconds(dst.get_pid()) - cpu0[1],
                'cs': switches(dst.get_pid()) - cs0,
                'main': miglib.cpu_seconds(*main) - main0}
    finally:
        src.shutdown()
        dst.shutdown()
        os.unlink(dst_ram)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--reps', type=int, default=6)
    ap.add_argument('--mib', type=int, default=2048)
    ap.add_argument('--binary', default=miglib.BUILDS['patched'])
    ap.add_argument('sizes', type=int, nargs='*',
                    default=[0, 212992, 4 << 20])
    args = ap.parse_args()

    results = {size: [] for size in args.sizes}
    accel = 'kvm' if miglib.usable_kvm(args.binary) else 'tcg'
    with tempfile.TemporaryDirectory(dir='/dev/shm') as tmp:
        src_ram = os.path.join(tmp, 'src.ram')
        chunk = os.urandom(64 << 20)
        with open(src_ram, 'wb') as f:
            for i in range(args.mib // 64):
                f.write(chunk[i:] + chunk[:i])
        for _ in range(args.reps):
            for size in args.sizes:
                r = migrate(args.binary, accel, tmp, args.mib, src_ram,
                            size)
                print(f'sndbuf {size:8d}: {r["wall"]:.2f} s, src '
                      f'{r["src"]:.2f} s, dst {r["dst"]:.2f} s, '
                      f'{r["cs"]} switches, main thread {r["main"]:.2f} s',
                      flush=True)
                results[size].append(r)

    stamp = time.strftime('%Y%m%dT%H%M%S')
    out = os.path.join(miglib.TOP, 'bench', 'results', f'sndbuf-{stamp}.md')
    with open(out, 'w', encoding='utf-8') as f:
        f.write(f'# bench/sndbuf.py, {stamp}\n\n'
                f'{miglib.qemu_version(args.binary)} under {accel}; '
                f'{args.mib} MiB of random data, paused, '
                f'{args.reps} runs per size, interleaved; '
                f'net.core.wmem_max '
                f'{open("/proc/sys/net/core/wmem_max").read().strip()}.  '
                'Median [min-max].\n\n'
                '| SO_SNDBUF | wall (s) | source CPU (s) | '
                'destination CPU (s) | main thread switches | '
                'main thread CPU (s) | source + main thread (s) |\n'
                '|---|---|---|---|---|---|---|\n')
        for size, runs in results.items():
            for r in runs:
                r['src_main'] = r['src'] + r['main']
            cols = []
            for key in ('wall', 'src', 'dst', 'cs', 'main', 'src_main'):
                vals = [r[key] for r in runs]
                cols.append(f'{statistics.median(vals):.2f} '
                            f'[{min(vals):.2f}-{max(vals):.2f}]'
                            if key != 'cs' else
                            f'{statistics.median(vals):.0f}')
            f.write(f'| {size or "default"} | ' + ' | '.join(cols) + ' |\n')
    print(f'sndbuf: {os.path.relpath(out, miglib.TOP)}')


if __name__ == '__main__':
    main()
