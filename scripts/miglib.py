"""Helpers shared by the branch's Python tools (demo, bench, check-guest,
tests/guest/smoke.py).

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
from guestcon import GuestConsole  # noqa: E402

BUILDS = {
    'patched': os.path.join(TOP, 'build', 'qemu', 'qemu-system-x86_64'),
    'vanilla': os.path.join(TOP, 'build', 'vanilla', 'qemu-system-x86_64'),
}

# The test guests of tests/guest/ (scripts/build-guest.sh,
# scripts/build-bare-guest.sh).
GUEST_DIR = os.path.join(TOP, 'build', 'guest')

# "No bandwidth cap", as libvirt sets it: upstream's default max-bandwidth
# is 128 MiB/s.
UNLIMITED = 1 << 50     # bytes/s

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


def kvm_is_pvm():
    """True on a KVM-PVM host, where a stock Linux kernel hangs under KVM
    (no VMX/SVM; see tests/guest/README.md)."""
    return os.path.exists('/sys/module/kvm_pvm')


def pick_guest(guest, accel, binary=BUILDS['patched']):
    """(guest kind, accelerator) for the test guests of tests/guest/.

    Without an accelerator: KVM when this QEMU can use it, TCG otherwise,
    except for the Linux guest on a KVM-PVM host, which gets TCG.  Without
    a guest kind: on a KVM-PVM host under KVM, the bare-metal guest;
    otherwise the Linux guest."""
    kvm = usable_kvm(binary)
    pvm = kvm_is_pvm()
    if accel is None:
        accel = 'kvm' if kvm and not (guest == 'linux' and pvm) else 'tcg'
    if guest is None:
        guest = 'bare' if accel == 'kvm' and pvm else 'linux'
    return guest, accel


def linux_guest_accel(forced=None):
    """(accelerator, why) for the Linux test guest: forced, or as
    pick_guest() chooses it, with the reason in words."""
    accel = pick_guest('linux', forced)[1]
    if forced:
        why = 'forced by --accel'
    elif accel == 'kvm':
        why = '/dev/kvm usable'
    elif not usable_kvm(BUILDS['patched']):
        why = 'no usable /dev/kvm'
    elif kvm_is_pvm():
        why = 'KVM-PVM host: a stock Linux kernel hangs under its KVM'
    else:
        why = 'KVM not chosen'
    return accel, why


def linux_guest_args(append, guest_dir=GUEST_DIR):
    """QEMU arguments that boot the Linux test guest with the guest.*
    parameters in append (tests/guest/README.md)."""
    return ['-kernel', os.path.join(guest_dir, 'vmlinuz'),
            '-initrd', os.path.join(guest_dir, 'initramfs.cpio.gz'),
            '-append', f'console=ttyS0 quiet panic=-1 {append}'.strip()]


def cpu_seconds(pid, tid=None):
    """User + system CPU time of a process, or of its thread tid, so far,
    in seconds."""
    path = f'/proc/{pid}/task/{tid}/stat' if tid else f'/proc/{pid}/stat'
    with open(path, encoding='ascii') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def qemu_version(binary):
    """The first line of `binary --version`."""
    return subprocess.run([binary, '--version'], capture_output=True,
                          text=True, check=True).stdout.splitlines()[0]


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


def wait_status(vm, want, timeout=120.0):
    """Poll query-status until the run state is one of want."""
    deadline = time.monotonic() + timeout
    while vm.cmd('query-status')['status'] not in want:
        if time.monotonic() > deadline:
            raise TimeoutError(f'VM not {want} after {timeout} s')
        time.sleep(0.01)


def wait_migrating(vm, timeout=60.0):
    """Wait until the outgoing migration is active and has sent RAM (the
    earliest moment for migrate-start-postcopy)."""
    deadline = time.monotonic() + timeout
    while True:
        info = vm.cmd('query-migrate')
        if info.get('status') == 'active' and \
                info.get('ram', {}).get('transferred', 0) > 0:
            return
        if info.get('status') in ('completed', 'failed', 'cancelled') or \
                time.monotonic() > deadline:
            raise RuntimeError(f"migration {info.get('status')} before "
                               'postcopy could start')
        time.sleep(0.002)


class Guest:
    """One QEMU process running a test guest, launched at once, its
    serial console (a socket pair) read by a GuestConsole.

    With incoming, QEMU waits for migrate-incoming (-incoming defer).
    wrapper: a command QEMU runs under (e.g. env LD_PRELOAD=...).
    QEMU's stdout and stderr go to log_dir/<tag>.log."""

    def __init__(self, binary, tag, args, tmpdir, incoming=False,
                 log_dir=None, wrapper=()):
        if incoming:
            args = list(args) + ['-incoming', 'defer']
        self.tag = tag
        self.vm = QEMUMachine(binary, args=args, wrapper=list(wrapper),
                              name=tag, base_temp_dir=tmpdir,
                              log_dir=log_dir or tmpdir)
        self.vm.set_console()
        self.vm.launch()
        self.pid = self.vm.get_pid()
        self.con = GuestConsole(self.vm.console_socket, tag)

    def set_caps(self, caps, params):
        """Set migration capabilities and parameters; max-bandwidth is
        UNLIMITED unless params says otherwise."""
        if caps:
            self.vm.cmd('migrate-set-capabilities', capabilities=[
                {'capability': k, 'state': v} for k, v in caps.items()])
        params = dict({'max-bandwidth': UNLIMITED}, **params)
        self.vm.cmd('migrate-set-parameters', args_dict=params)

    def status(self):
        """The run state (query-status)."""
        return self.vm.cmd('query-status')['status']

    def close(self):
        """Shut QEMU down (killed if it does not quit in time)."""
        try:
            self.vm.shutdown(timeout=10)
        except Exception:  # pylint: disable=broad-except
            self.vm.kill()


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
