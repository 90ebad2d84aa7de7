#!/usr/bin/python3
"""A/B of a paused migration into RAM that gets transparent huge pages.

The guest's RAM is a file on a tmpfs mounted with huge=advise, aligned
to 2 MiB (align=2M), so that the kernel backs its mapping with huge
pages, as a memfd does with shmem_enabled=advise.  For each build, and
interleaved, the bare test guest fills its RAM and stops, then migrates
over a unix socket (precopy on one channel, multifd on two); the table
gives the time, the source's and the destination's CPU, and how much of
the destination's RAM is in huge pages (ShmemHugePages in /proc/meminfo
before and after the load).  Needs root, for the mount.

Usage: thp.py [--reps N] [--mib MiB] [--build NAME=BINARY ...]
Writes bench/results/thp-<time>.md.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'scripts'))
import miglib  # noqa: E402

MODES = {'precopy': {}, 'multifd': {'multifd': True}}


def shmem_huge_mib():
    with open('/proc/meminfo', encoding='ascii') as f:
        for line in f:
            if line.startswith('ShmemHugePages:'):
                return int(line.split()[1]) / 1024
    return 0.0


def guest_args(mib, path):
    return ['-accel', 'kvm', '-accel', 'tcg', '-nodefaults', '-no-reboot'] + \
        miglib.CPU_FOR_RAM_COMPARE + [
            '-bios', 'qboot.rom',
            '-kernel', os.path.join(miglib.GUEST_DIR, 'bare-guest.elf'),
            '-append', f'guest.mib={mib - 256} guest.hb=5 guest.seed=1',
            '-machine', 'pc,memory-backend=ram0', '-m', f'{mib}M',
            '-object', f'memory-backend-file,id=ram0,size={mib}M,'
                       f'mem-path={path},share=on,align=2M']


def migrate(binary, mode, mib, mnt, tmp):
    src = miglib.Guest(binary, 'src', guest_args(mib, f'{mnt}/src'), tmp)
    try:
        src.con.wait_for(r'READY ', timeout=600)
        src.vm.cmd('stop')
        huge0 = shmem_huge_mib()
        dst = miglib.Guest(binary, 'dst', guest_args(mib, f'{mnt}/dst'), tmp,
                           incoming=True)
        params = {'multifd-channels': 2} if MODES[mode] else {}
        for g in (src, dst):
            g.set_caps(MODES[mode], params)
        sock = f'{tmp}/mig.sock'
        dst.vm.cmd('migrate-incoming', uri=f'unix:{sock}')
        cpu0 = (miglib.cpu_seconds(src.pid), miglib.cpu_seconds(dst.pid))
        t0 = time.monotonic()
        src.vm.cmd('migrate', uri=f'unix:{sock}')
        info = miglib.wait_migration(src.vm, poll=0.01)
        dinfo = miglib.wait_migration(dst.vm, poll=0.01)
        wall = time.monotonic() - t0
        cpu1 = (miglib.cpu_seconds(src.pid), miglib.cpu_seconds(dst.pid))
        if info['status'] != 'completed' or dinfo['status'] != 'completed':
            raise RuntimeError(f"{mode}: {info['status']}/{dinfo['status']}")
        sample = {'wall_s': wall, 'src_cpu_s': cpu1[0] - cpu0[0],
                  'dst_cpu_s': cpu1[1] - cpu0[1],
                  'dst_huge_mib': shmem_huge_mib() - huge0}
        dst.close()
        return sample
    finally:
        src.close()
        for name in ('src', 'dst'):
            if os.path.exists(f'{mnt}/{name}'):
                os.unlink(f'{mnt}/{name}')


def cell(values, fmt):
    return (f'{statistics.median(values):{fmt}} '
            f'[{min(values):{fmt}}-{max(values):{fmt}}]')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--mib', type=int, default=4096)
    ap.add_argument('--build', action='append', default=[],
                    help='NAME=BINARY, in addition to vanilla and patched')
    opts = ap.parse_args()
    builds = {'vanilla': miglib.BUILDS['vanilla'],
              'patched': miglib.BUILDS['patched']}
    builds.update(b.split('=', 1) for b in opts.build)

    tmp = tempfile.mkdtemp(prefix='thp-')
    mnt = os.path.join(tmp, 'mnt')
    os.mkdir(mnt)
    subprocess.run(['mount', '-t', 'tmpfs', '-o',
                    f'huge=advise,size={opts.mib * 3}m', 'bench-thp', mnt],
                   check=True)
    samples = {}
    started = time.time()
    try:
        for rep in range(opts.reps):
            # Alternate the order, so no build always goes first.
            order = list(builds) if rep % 2 == 0 else list(builds)[::-1]
            for mode in MODES:
                for name in order:
                    s = migrate(builds[name], mode, opts.mib, mnt, tmp)
                    samples.setdefault((mode, name), []).append(s)
                    print(f'{mode} {name} {s}', flush=True)
    finally:
        subprocess.run(['umount', mnt], check=False)

    stamp = time.strftime('%Y%m%dT%H%M%S', time.gmtime(started))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results',
                       f'thp-{stamp}.md')
    with open(out, 'w', encoding='utf-8') as f:
        f.write(f'# Paused migration into RAM with transparent huge pages, '
                f'{time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))}'
                f'\n\n`bench/thp.py --reps {opts.reps} --mib {opts.mib}`: '
                f'a {opts.mib} MiB bare guest ({opts.mib - 256} MiB of '
                'random data) on a tmpfs with huge=advise, align=2M; '
                f'{opts.reps} runs per build and mode, interleaved; '
                f'{time.time() - started:.0f} s.  Median [min-max].\n\n'
                '| mode | build | wall (s) | source CPU (s) | '
                'destination CPU (s) | destination RAM in huge pages '
                '(MiB) |\n|---|---|---|---|---|---|\n')
        for (mode, name), ss in samples.items():
            f.write(f'| {mode} | {name} | '
                    f'{cell([s["wall_s"] for s in ss], ".2f")} | '
                    f'{cell([s["src_cpu_s"] for s in ss], ".2f")} | '
                    f'{cell([s["dst_cpu_s"] for s in ss], ".2f")} | '
                    f'{cell([s["dst_huge_mib"] for s in ss], ".0f")} |\n')
    print(f'thp: wrote {os.path.relpath(out)}')
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
