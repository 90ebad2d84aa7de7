#!/usr/bin/env python3
"""Live-migrate a small test guest between two local QEMUs and verify it.

The guest is upstream migration-test's x86 boot sector, which keeps
dirtying 99 MiB of RAM.  Source and destination RAM are shared files on
tmpfs.  The destination is started with -S, so after the switchover it
holds exactly the state the source stopped with: the two RAM files must be
byte-identical, and the guest's own counters must be consistent.  Then the
destination resumes and the guest must keep running there.

Usage: demo.py [--build patched|vanilla] [--accel kvm|tcg]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import miglib

RAM_MIB = 150


def serial_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def wait_serial_growth(path, timeout=30.0):
    start = serial_size(path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serial_size(path) > start:
            return True
        time.sleep(0.05)
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--build', choices=miglib.BUILDS, default='patched')
    ap.add_argument('--accel', choices=('kvm', 'tcg'))
    opts = ap.parse_args()

    binary = miglib.BUILDS[opts.build]
    accel = opts.accel or ('kvm' if miglib.usable_kvm(binary) else 'tcg')
    tmp = tempfile.mkdtemp(prefix='migration-demo-',
                           dir='/dev/shm' if os.path.isdir('/dev/shm') else None)
    boot = os.path.join(tmp, 'bootblock.img')
    miglib.write_bootblock(boot)
    sock = os.path.join(tmp, 'migration.sock')
    ram = {side: os.path.join(tmp, f'{side}.ram') for side in ('src', 'dst')}
    serial = {side: os.path.join(tmp, f'{side}.serial') for side in ram}

    def vm(side, extra):
        return miglib.new_vm(binary, side, tmp, accel, RAM_MIB, ram[side],
                             miglib.CPU_FOR_RAM_COMPARE +
                             ['-drive', f'file={boot},format=raw',
                              '-serial', f'file:{serial[side]}'] + extra)

    src = vm('src', [])
    dst = vm('dst', ['-S', '-incoming', f'unix:{sock}'])
    print(f'demo: {os.path.relpath(binary, miglib.TOP)}: '
          f'{miglib.qemu_version(binary)}')
    print(f'demo: accelerator: {accel}')
    ok = False
    try:
        src.launch()
        dst.launch()
        if not wait_serial_growth(serial['src']):
            raise RuntimeError('the guest did not start on the source')
        print('demo: guest running on the source; migrating over '
              f'unix:{sock}')

        def converge(info):
            # A guest this busy may need more than the default 300 ms.
            if info.get('total-time', 0) > 10000 and not converge.done:
                src.cmd('migrate-set-parameters', downtime_limit=2000)
                converge.done = True
        converge.done = False

        src.cmd('migrate', uri=f'unix:{sock}')
        info = miglib.wait_migration(src, on_poll=converge)
        dinfo = miglib.wait_migration(dst)
        print('demo: query-migrate on the source:')
        print(json.dumps(summary(info), indent=2))
        if info['status'] != 'completed' or dinfo['status'] != 'completed':
            raise RuntimeError(f"migration {info['status']} / "
                               f"destination {dinfo['status']}")

        pages, bad = miglib.compare_ram_files(ram['src'], ram['dst'])
        counters_bad = miglib.check_bootblock_ram(ram['dst'])
        dst.cmd('cont')
        running = wait_serial_growth(serial['dst'])
        ok = not bad and counters_bad == 0 and running
        print(f'demo: RAM: {pages} pages compared byte for byte, '
              f'{len(bad)} differ'
              + (': ' + ', '.join(hex(a) for a in bad[:8]) if bad else ''))
        print(f"demo: guest counters: {counters_bad} inconsistent pages; "
              f"guest {'running' if running else 'NOT running'} "
              'on the destination')
    finally:
        for m in (src, dst):
            try:
                m.shutdown()
            except Exception:  # pylint: disable=broad-except
                m.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"demo: integrity: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def summary(info):
    ram = info.get('ram', {})
    keys = ('status', 'total-time', 'downtime', 'setup-time',
            'expected-downtime')
    out = {k: info[k] for k in keys if k in info}
    for k in ('transferred', 'total', 'duplicate', 'normal', 'mbps',
              'dirty-sync-count', 'pages-per-second'):
        if k in ram:
            out[f'ram.{k}'] = ram[k]
    if 'mbps' in ram:
        out['throughput-GB/s'] = round(ram['mbps'] / 8000, 3)
    return out


if __name__ == '__main__':
    sys.exit(main())
