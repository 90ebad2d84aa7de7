#!/usr/bin/python3
"""Does the KVM dirty ring work on this host?

Boots upstream migration-test's boot-sector guest (it increments a byte
in every page of 1-100 MiB, round after round) under KVM, once with the
dirty bitmap and once with `-accel kvm,dirty-ring-size=4096`, and asks
QEMU for a dirty-rate measurement (calc-dirty-rate), which turns dirty
logging on and harvests it.  Before and after, it checks that the guest
still makes progress: a byte of guest RAM must keep changing.

On a working host both runs make progress.  On KVM-PVM the dirty-ring
run stops: after the first harvest the vCPU no longer runs, which is why
upstream's dirty_ring, dirty_limit and vcpu_dirty_limit cases fail here
(tests/KNOWN-ENVIRONMENT.md).

Usage: probe-dirty-ring.py [BUILD]   (patched or vanilla; default patched)
Exit status: 0 when the dirty ring works, 1 when it does not, 2 when
KVM is not usable at all.
"""

import os
import sys
import tempfile
import time

import miglib

WATCH = 0x200000        # a page the guest rewrites every round


def guest_byte(vm):
    """The guest's byte at WATCH, read through the monitor."""
    out = vm.cmd('human-monitor-command', command_line=f'xp /1xb {WATCH:#x}')
    return int(out.split(':')[1], 16)


def progresses(vm, seconds=3.0):
    """True when the guest changes its byte at WATCH within seconds."""
    first = guest_byte(vm)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if guest_byte(vm) != first:
            return True
    return False


def probe(binary, tmp, accel, mode):
    """Run the guest under accel, measure in mode; return a verdict line
    and whether the guest kept running."""
    disk = os.path.join(tmp, 'bootblock.img')
    miglib.write_bootblock(disk)
    vm = miglib.QEMUMachine(binary, base_temp_dir=tmp, log_dir=tmp, args=[
        '-accel', accel, '-m', '150M', '-nodefaults', '-display', 'none',
        '-drive', f'file={disk},format=raw'])
    vm.launch()
    try:
        before = progresses(vm, 20.0)
        vm.cmd('calc-dirty-rate', {'calc-time': 1, 'mode': mode})
        time.sleep(2)
        rate = vm.cmd('query-dirty-rate').get('dirty-rate')
        after = progresses(vm)
    finally:
        vm.shutdown()
    ok = before and after
    return (f'{accel:28} {mode:13} running before: {before}, '
            f'dirty-rate {rate} MB/s, running after: {after}'), ok


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else 'patched'
    binary = miglib.BUILDS[build]
    if not miglib.usable_kvm(binary):
        print('probe-dirty-ring: KVM is not usable here')
        return 2
    print(f'# {miglib.qemu_version(binary)}; PVM: {miglib.kvm_is_pvm()}')
    with tempfile.TemporaryDirectory(prefix='dirty-ring-') as tmp:
        line, bitmap_ok = probe(binary, tmp, 'kvm', 'dirty-bitmap')
        print(line)
        line, ring_ok = probe(binary, tmp, 'kvm,dirty-ring-size=4096',
                              'dirty-ring')
        print(line)
    if bitmap_ok and not ring_ok:
        print('verdict: the KVM dirty ring stops the vCPU on this host')
    else:
        print(f'verdict: dirty bitmap {"works" if bitmap_ok else "FAILS"}, '
              f'dirty ring {"works" if ring_ok else "FAILS"}')
    return 0 if ring_ok else 1


if __name__ == '__main__':
    sys.exit(main())
