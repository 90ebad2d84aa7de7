"""Helpers shared by the branch's Python tools (demo, bench).

QEMU processes are driven with QEMU's own python/qemu library from the
generated tree (QEMUMachine and its QMP client); nothing here speaks QMP
by hand.
"""

import os
import re
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU_SRC = os.path.join(TOP, 'qemu')
sys.path.insert(0, os.path.join(QEMU_SRC, 'python'))

# pylint: disable=wrong-import-position
from qemu.machine import QEMUMachine  # noqa: E402

BUILDS = {
    'patched': os.path.join(TOP, 'build', 'qemu', 'qemu-system-x86_64'),
    'vanilla': os.path.join(TOP, 'build', 'vanilla', 'qemu-system-x86_64'),
}

# Upstream migration-test's x86 boot sector guest: it increments one byte
# in every 4 KiB page from 1 MiB to 100 MiB, round after round, and prints
# 'B' on the serial port after each round.
BOOTBLOCK_HEADER = os.path.join(QEMU_SRC, 'tests', 'qtest', 'migration',
                                'i386', 'a-b-bootblock.h')
BOOTBLOCK_MEM_START = 1 << 20
BOOTBLOCK_MEM_END = 100 << 20
PAGE_SIZE = 4096

# Under KVM, SeaBIOS registers a kvmclock page in its data area (0xe8c20),
# and KVM itself rewrites that page on the destination when it restores
# the clock: correct, but not something the RAM engine sent.  Without the
# kvmclock CPUID bit the firmware leaves it alone and the RAM of a paused
# migration can be compared byte for byte.
CPU_FOR_RAM_COMPARE = ['-cpu', 'qemu64,kvmclock=off']


def usable_kvm(binary):
    """True when this QEMU can open a KVM VM on this host."""
    try:
        res = subprocess.run([binary, '-accel', 'kvm', '-machine', 'none',
                              '-nodefaults', '-display', 'none',
                              '-monitor', 'stdio'],
                             input=b'quit\n', capture_output=True,
                             timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def write_bootblock(path):
    """Write upstream's migration-test boot sector as a raw disk image."""
    with open(BOOTBLOCK_HEADER, encoding='utf-8') as f:
        text = f.read()
    body = text[text.index('{') + 1:text.index('}')]
    data = bytes(int(x, 16) for x in re.findall(r'0x[0-9a-fA-F]{2}', body))
    with open(path, 'wb') as f:
        f.write(data)


def new_vm(binary, name, tmpdir, accel, ram_mib, ram_path, extra=()):
    """A QEMUMachine whose RAM is a shared file at ram_path."""
    args = ['-accel', accel, '-nodefaults',
            '-machine', 'pc,memory-backend=ram0', '-m', f'{ram_mib}M',
            '-object', f'memory-backend-file,id=ram0,size={ram_mib}M,'
                       f'mem-path={ram_path},share=on']
    args += list(extra)
    return QEMUMachine(binary, args=args, name=name, base_temp_dir=tmpdir,
                       log_dir=tmpdir)


def wait_migration(vm, timeout=300.0, poll=0.05, on_poll=None):
    """Poll query-migrate until it completes or fails; return its result."""
    deadline = time.monotonic() + timeout
    while True:
        info = vm.cmd('query-migrate')
        status = info.get('status')
        if status in ('completed', 'failed', 'cancelled'):
            return info
        if time.monotonic() > deadline:
            raise TimeoutError(f'migration still {status} after {timeout}s')
        if on_poll:
            on_poll(info)
        time.sleep(poll)


def compare_ram_files(path_a, path_b, chunk=PAGE_SIZE * 256):
    """Return (pages compared, list of the guest addresses of the pages
    that differ) for two RAM files."""
    pages = 0
    bad = []
    with open(path_a, 'rb') as fa, open(path_b, 'rb') as fb:
        base = 0
        while True:
            a = fa.read(chunk)
            b = fb.read(chunk)
            if not a and not b:
                break
            if a == b:
                pages += len(a) // PAGE_SIZE
                base += len(a)
                continue
            for off in range(0, max(len(a), len(b)), PAGE_SIZE):
                pages += 1
                if a[off:off + PAGE_SIZE] != b[off:off + PAGE_SIZE]:
                    bad.append(base + off)
            base += max(len(a), len(b))
    return pages, bad


def check_bootblock_ram(path):
    """Upstream's check_guests_ram(), on a RAM file: all counters equal but
    for one step down where the guest was stopped.  Returns bad pages."""
    with open(path, 'rb') as f:
        f.seek(BOOTBLOCK_MEM_START)
        data = f.read(BOOTBLOCK_MEM_END - BOOTBLOCK_MEM_START)
    counters = data[::PAGE_SIZE]
    last = counters[0]
    hit_edge = False
    bad = 0
    for b in counters[1:]:
        if b != last:
            if (b + 1) % 256 == last and not hit_edge:
                hit_edge = True
                last = b
            else:
                bad += 1
    return bad
