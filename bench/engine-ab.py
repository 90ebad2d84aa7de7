#!/usr/bin/env python3
"""A/B of the RAM engines alone, without a guest.

The source's RAM comes from a migration stream in a file on /dev/shm,
made once per run from random data (a share of it zero), so no guest has
to boot and fill it; each source loads it into anonymous RAM, stays
paused (-S) and migrates over a unix socket to a fresh
destination whose RAM is of the kind asked for.  The builds alternate
run by run.  Prints and writes (--out) per run: wall time, and the CPU
time of each process; with --perf, records the destination with perf.

    bench/engine-ab.py --mib 2048 --reps 7 --dest anon,prealloc \
        --mode precopy,multifd

It is the tool of the investigation behind the prealloc and anonymous
scenarios of make bench; make bench stays the measure of record.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'scripts'))
# pylint: disable=wrong-import-position
import miglib  # noqa: E402
from qemu.machine import QEMUMachine  # noqa: E402

DESTS = {
    'anon': 'memory-backend-ram,id=ram0,size={m}M',
    'anon-prealloc': 'memory-backend-ram,id=ram0,size={m}M,prealloc=on',
    'shm': 'memory-backend-file,id=ram0,size={m}M,mem-path={p},share=on',
    'prealloc': 'memory-backend-file,id=ram0,size={m}M,mem-path={p},'
                'share=on,prealloc=on',
}


def fill(path, mib, zero_share, tmp):
    """Write a migration stream of a paused guest of mib MiB to path: its
    RAM random 64 MiB blocks, every n-th MiB zero."""
    block = os.urandom(64 << 20)
    every = round(1 / zero_share) if zero_share else 0
    ram = path + '.ram'
    with open(ram, 'wb') as f:
        for i in range(mib):
            if every and i % every == 0:
                f.write(bytes(1 << 20))
            else:
                off = (i % 64) << 20
                f.write(block[off:off + (1 << 20)])
    m = vm(miglib.BUILDS['vanilla'], 'fill', tmp, mib,
           DESTS['shm'].format(m=mib, p=ram), False)
    try:
        m.cmd('migrate', uri=f'file:{path}')
        info = miglib.wait_migration(m)
        if info['status'] != 'completed':
            raise RuntimeError(f'fill: {info}')
    finally:
        m.shutdown()
        os.unlink(ram)


def vm(binary, tag, tmp, mib, backend, incoming):
    args = ['-accel', 'tcg', '-nodefaults', '-display', 'none', '-S',
            '-machine', 'pc,memory-backend=ram0', '-m', f'{mib}M',
            '-object', backend]
    if incoming:
        args += ['-incoming', 'defer']
    m = QEMUMachine(binary, args=args, name=tag, base_temp_dir=tmp,
                    log_dir=tmp)
    m.launch()
    return m


def caps(m, mode):
    c = [{'capability': 'multifd', 'state': mode == 'multifd'}]
    m.cmd('migrate-set-capabilities', capabilities=c)
    p = {'max-bandwidth': miglib.UNLIMITED}
    if mode == 'multifd':
        p['multifd-channels'] = 2
    m.cmd('migrate-set-parameters', args_dict=p)


def one(build, mode, dest, mib, src_path, tmp, perf, srckind='anon'):
    binary = miglib.BUILDS[build]
    # The source's RAM (anonymous unless --src says otherwise) is loaded
    # from the state file just before the run, as warm as a guest's that
    # has written it.
    srcram = os.path.join('/dev/shm', f'engine-ab-srcram-{os.getpid()}')
    src = vm(binary, 'src', tmp, mib,
             DESTS[srckind].format(m=mib, p=srcram), True)
    src.cmd('migrate-incoming', uri=f'file:{src_path}')
    while src.cmd('query-status')['status'] == 'inmigrate':
        time.sleep(0.05)
    dst_path = os.path.join('/dev/shm', f'engine-ab-dst-{os.getpid()}')
    dstb = DESTS[dest].format(m=mib, p=dst_path)
    sock = os.path.join(tmp, 'mig.sock')
    dst = vm(binary, 'dst', tmp, mib, dstb, True)
    rec = None
    try:
        caps(src, mode)
        caps(dst, mode)
        dst.cmd('migrate-incoming', uri=f'unix:{sock}')
        if perf:
            rec = [subprocess.Popen(['perf', 'record', '-q', '-e',
                                     'cpu-clock', '-g', '-p',
                                     str(m.get_pid()), '-o',
                                     f'{perf}-{build}-{mode}-{dest}-{w}.data'])
                   for m, w in ((dst, 'dst'), (src, 'src'))]
            time.sleep(0.5)
        s0 = miglib.cpu_seconds(src.get_pid())
        d0 = miglib.cpu_seconds(dst.get_pid())
        t0 = time.monotonic()
        src.cmd('migrate', uri=f'unix:{sock}')
        info = miglib.wait_migration(src, poll=0.01)
        wall = time.monotonic() - t0
        while dst.cmd('query-status')['status'] == 'inmigrate':
            time.sleep(0.01)
        s1 = miglib.cpu_seconds(src.get_pid())
        d1 = miglib.cpu_seconds(dst.get_pid())
        if info['status'] != 'completed':
            raise RuntimeError(f'{build}: {info}')
        return {'build': build, 'mode': mode, 'dest': dest, 'src': srckind,
                'wall_s': wall,
                'src_cpu_s': s1 - s0, 'dst_cpu_s': d1 - d0,
                'total_time_ms': info.get('total-time')}
    finally:
        for r in rec or []:
            r.send_signal(2)
            r.wait()
        for m in (src, dst):
            try:
                m.shutdown(timeout=10)
            except Exception:  # pylint: disable=broad-except
                m.kill()
        for path in (dst_path, srcram):
            if os.path.exists(path):
                os.unlink(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--mib', type=int, default=2048)
    ap.add_argument('--reps', type=int, default=7)
    ap.add_argument('--mode', default='precopy,multifd')
    ap.add_argument('--dest', default='anon,prealloc')
    ap.add_argument('--src', default='anon', choices=sorted(DESTS),
                    help="the source's RAM, of the kinds of --dest")
    ap.add_argument('--zero', type=float, default=0.0,
                    help='share of zero MiB in the source (0-1)')
    ap.add_argument('--builds', default='vanilla,patched')
    ap.add_argument('--perf', help='prefix of perf.data files')
    ap.add_argument('--out', help='JSON file for all runs')
    a = ap.parse_args()
    src_path = f'/dev/shm/engine-ab-src-{os.getpid()}'
    runs = []
    builds = a.builds.split(',')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fill(src_path, a.mib, a.zero, tmp)
            for mode in a.mode.split(','):
                for dest in a.dest.split(','):
                    for b in builds:        # warm-up, not counted
                        one(b, mode, dest, a.mib, src_path, tmp, None,
                            a.src)
                    for r in range(a.reps):
                        order = builds if r % 2 == 0 else builds[::-1]
                        for b in order:
                            s = one(b, mode, dest, a.mib, src_path, tmp,
                                    a.perf if r == 0 else None, a.src)
                            s['load1'] = os.getloadavg()[0]
                            runs.append(s)
                            print(json.dumps(s), flush=True)
    finally:
        if os.path.exists(src_path):
            os.unlink(src_path)
    print()
    for mode in a.mode.split(','):
        for dest in a.dest.split(','):
            med = {}
            for b in builds:
                sel = [s for s in runs if s['build'] == b and
                       s['mode'] == mode and s['dest'] == dest]
                med[b] = {k: statistics.median(s[k] for s in sel)
                          for k in ('wall_s', 'dst_cpu_s', 'src_cpu_s')}
            line = f'{mode:8} {dest:14}'
            for k in ('wall_s', 'dst_cpu_s', 'src_cpu_s'):
                v, p = med.get('vanilla', {}).get(k), med.get(
                    'patched', {}).get(k)
                if v and p:
                    line += f'  {k} v {v:.3f} p {p:.3f} speed-up {v / p:.2f}x'
            print(line)
    if a.out:
        with open(a.out, 'w', encoding='utf-8') as f:
            json.dump({'args': vars(a), 'binaries': {
                b: miglib.qemu_version(miglib.BUILDS[b]) for b in builds},
                'runs': runs}, f, indent=1)


if __name__ == '__main__':
    main()
