#!/usr/bin/env python3
"""Fault matrix: migrations of the live Linux test guest that go wrong.

For each migration mode (precopy, multifd with 2 channels, postcopy with
postcopy-preempt, postcopy with postcopy-preempt and 2 multifd channels
that keep sending after the switchover (x-postcopy-multifd; upstream
runs its multifd+postcopy there), the same over TLS (a PSK credential on
every channel), mapped-ram save to a file, mapped-ram restore from a
file) and each fault (a cut connection at 10, 50 and 90 % of the RAM
sent, from the source's or from the destination's end; kill -9 of the
destination; no space left for the RAM; a flipped byte in the stream or
file), this runs one migration of the self-verifying test guest of
tests/guest/ and compares what happened with the outcome written down
in EXPECTED below, before any run.  Every cell runs on the branch
(patched -> patched) and on the vanilla twin (vanilla -> vanilla); a
branch cell whose outcome differs from the expected one fails the run
(exit status 1).  Vanilla's outcomes are recorded, not judged.

How the faults are made:

  cut-src-N, cut-dst-N  when the source's query-migrate says
      ram.transferred / ram.total >= N %, QMP `yank` of the migration
      instance on that side: QEMU shutdown()s the sockets of every
      migration channel there (the main one, the multifd channels, the
      postcopy return path and preempt channel), a real cut seen by the
      other side as a peer that went away.  For postcopy the switchover
      (migrate-start-postcopy) comes at N - 10 % (at least 5 %): after a
      switchover each page is sent once, and the guest's non-zero RAM is
      less than 90 % of ram.total.
  kill-dst   SIGKILL to the destination QEMU at 50 % (postcopy: 50 %,
      after the switchover at 40 %; restore: as soon as it loads).
  enospc     the destination's RAM (memory-backend-file,share=on) is a
      file on a tmpfs of SMALL_MIB, smaller than the RAM the guest uses;
      for the mapped-ram save, the file: URI is on that tmpfs.  The
      tmpfs is mounted in a private mount namespace (the script re-runs
      itself under `unshare -m`; root needed).
  flip-hdr   one byte of a record header is flipped: precopy: the top
      bit of the offset of a page record (via a proxy between the two
      QEMUs, at 50 %); multifd: the magic of a multifd packet (all
      channels go through the proxy); mapped-ram: the version of the
      RAMBlock's mapped-ram header in the file, before the restore.
  flip-data  one byte in the payload of a page of the guest's test area
      outside its hot (rewritten) set, so that it is never sent again:
      the stream has no checksum of page data, so no build can see it;
      the migration then completes and the guest's own verification on
      the destination finds the page.  On the source (cont after the
      migration) the guest must find nothing.
  uffd-eio   the destination runs with tests/qtest/preload/uffd-read-eio.so
      preloaded and UFFD_READ_EIO_ONCE=100: its 100th read() of a
      userfaultfd fails with EIO, as a kernel could fail it, and the
      fault stays queued.  Postcopy: the switchover at 5 %, then the
      guest's own touches fault.  The page server must pause postcopy
      (never leave a vCPU waiting for good), and a recovery must finish
      the migration.

The guest: RAM_MIB MiB of RAM, a test area of AREA_MIB MiB of which the
first HOT_MIB MiB are rewritten at DIRTY_MBPS MiB/s, verified
continuously by the guest itself.  Bandwidth is capped at BW_MIBPS MiB/s
(max-bandwidth, max-postcopy-bandwidth) with a downtime-limit of 1 ms,
so that precopy does not complete before the cut points.  The
destination is started with `migrate-incoming exit-on-error=false`, so
that its query-migrate can be read after a failure.  Each source is
reused for the next cell as long as it runs.

Output: the matrix (expected, then the outcome on each build), details
of every cell (error-desc of both sides, the QEMU stderr of a QEMU that
died), also written to tests/results/check-faults.txt; logs of every
QEMU and console in build/faults/<build>/.

Usage: check-faults.py [--build patched,vanilla] [--mode M[,M]]
                       [--fault F[,F]] [--out FILE] [-v]
"""

import argparse
import datetime
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import miglib

TOP = miglib.TOP
LOGROOT = os.path.join(TOP, 'build', 'faults')
RESULT = os.path.join(TOP, 'tests', 'results', 'check-faults.txt')

RAM_MIB = 384
AREA_MIB = 256
HOT_MIB = 128
DIRTY_MBPS = 48
AREA_PAGES = AREA_MIB * 256
HOT_PAGES = HOT_MIB * 256
GUEST_PARAMS = (f'guest.mib={AREA_MIB} guest.hot={HOT_MIB} '
                f'guest.dirty={DIRTY_MBPS} guest.verify=1')
BW_MIBPS = 64
BW = BW_MIBPS << 20
SMALL_MIB = 64                  # the tmpfs of the enospc cells

BOOT_TIMEOUT = 240
END_TIMEOUT = 60                # a side must notice a fault within this
COMPLETE_TIMEOUT = 240
VERIFY_TIMEOUT = 120
FLIP_OFFSET = 2048              # byte of a guest page that flip-data flips

PAGE_MAGIC = (0x4d424731).to_bytes(4, 'little')     # pagefmt.h
MULTIFD_MAGIC = bytes.fromhex('11223344') + (1).to_bytes(4, 'big')
MAPPED_RAM_HDR = (1).to_bytes(4, 'big') + (4096).to_bytes(8, 'big')
# What the side that ran out of room must say in its error-desc.
NO_SPACE = re.compile(r'No space left on device|Cannot allocate memory')

MODES = ['precopy', 'multifd', 'postcopy-preempt', 'postcopy-multifd',
         'postcopy-multifd-tls', 'mapped-ram-save',
         'mapped-ram-restore']
FAULTS = ['cut-src-10', 'cut-src-50', 'cut-src-90', 'cut-dst-10',
          'cut-dst-50', 'cut-dst-90', 'kill-dst', 'enospc', 'flip-hdr',
          'flip-data', 'uffd-eio']
# The shim of tests/qtest/preload/ that fails the destination's first
# read() of its userfaultfd (built with the qtests by make build).
UFFD_EIO_SHIM = os.path.join(TOP, 'build', 'qemu', 'tests', 'branch',
                             'uffd-read-eio.so')
# ... and lets this many reads pass first: the earliest faults come while
# the destination loads the device state, before its guest runs, where a
# failure fails the migration (the source runs on) instead of pausing it.
UFFD_EIO_NTH = 100

# The outcomes, as codes.  The script classifies what it saw into one
# of these, or describes it in words when it fits none.
OUTCOMES = {
    'E': 'both sides failed with an error-desc (query-migrate), the source '
         'runs and its guest verifies 0 bad pages; for enospc the '
         "destination's error-desc names the lack of space (No space left "
         'on device, Cannot allocate memory)',
    'K': 'the source failed with an error-desc (its destination was '
         'killed), runs, and its guest verifies 0 bad pages',
    'P': 'both sides postcopy-paused; migrate-recover + migrate resume=true '
         'completed the migration and the destination guest verifies '
         '0 bad pages',
    'L': 'the source is postcopy-paused: the guest, running on the killed '
         'destination, is lost',
    'LP': 'both sides postcopy-paused, the destination with an error-desc '
          'saying why: it has no room for the rest of the RAM, so the '
          'guest cannot be recovered and is lost',
    'B': 'the migration completes and the guest on the destination finds '
         'the bad page; the source (cont) verifies 0 bad pages',
    'S': 'the save failed with an error-desc naming the lack of space, the '
         'source runs and its guest verifies 0 bad pages',
    'R': 'the restore failed with an error-desc (for enospc: naming the '
         'lack of space), the restoring QEMU is alive; the saved file '
         'restores with 0 bad pages afterwards',
    'RK': 'the restoring QEMU was killed; the saved file restores with '
          '0 bad pages afterwards',
    'RB': 'the restore completes and the restored guest finds the bad page; '
          'the saved file, unflipped, restores with 0 bad pages',
}

_CUTS = {f'cut-{s}-{p}' for s in ('src', 'dst') for p in (10, 50, 90)}
_NO_CUT_FILE = 'n/a: a file has no connection to cut'
_NO_DST_SAVE = 'n/a: a save has no destination (the file is its peer)'
_FLIP_IN_RESTORE = 'n/a: a flipped byte of the file is a restore cell'
_PAGE_DATA = ('a flipped byte in page data cannot be detected without a '
              'format change (no checksum of page data on the wire)')

# Expected outcome of every cell, with the reason where the aim (a clear
# error on both sides, the source running with 0 bad pages, postcopy
# paused then recovered) cannot be met.
EXPECTED = {}
for _m in ('precopy', 'multifd'):
    for _f in _CUTS:
        EXPECTED[_m, _f] = ('E', '')
    EXPECTED[_m, 'kill-dst'] = ('K', '')
    EXPECTED[_m, 'enospc'] = ('E', '')
    EXPECTED[_m, 'flip-hdr'] = ('E', '')
    EXPECTED[_m, 'flip-data'] = ('B', _PAGE_DATA)
for _f in _CUTS:
    EXPECTED['postcopy-preempt', _f] = ('P', '')
EXPECTED['postcopy-preempt', 'kill-dst'] = (
    'L', 'after the switchover the only up-to-date copy of the guest is '
         'on the destination; kill -9 of it loses the guest')
EXPECTED['postcopy-preempt', 'enospc'] = (
    'LP', 'the switchover comes at 5 %, before the small tmpfs is full; '
          'a destination with no room for the RAM cannot be recovered')
EXPECTED['postcopy-preempt', 'flip-hdr'] = (
    'n/a', 'not run: the proxy sits on precopy and multifd streams only')
EXPECTED['postcopy-preempt', 'flip-data'] = (
    'n/a', 'not run: the proxy sits on precopy and multifd streams only')
for _f in _CUTS:
    EXPECTED['mapped-ram-save', _f] = ('n/a', _NO_CUT_FILE)
    EXPECTED['mapped-ram-restore', _f] = ('n/a', _NO_CUT_FILE)
EXPECTED['mapped-ram-save', 'kill-dst'] = ('n/a', _NO_DST_SAVE)
EXPECTED['mapped-ram-save', 'enospc'] = ('S', '')
EXPECTED['mapped-ram-save', 'flip-hdr'] = ('n/a', _FLIP_IN_RESTORE)
EXPECTED['mapped-ram-save', 'flip-data'] = ('n/a', _FLIP_IN_RESTORE)
EXPECTED['mapped-ram-restore', 'kill-dst'] = ('RK', '')
EXPECTED['mapped-ram-restore', 'enospc'] = ('R', '')
EXPECTED['mapped-ram-restore', 'flip-hdr'] = ('R', '')
EXPECTED['mapped-ram-restore', 'flip-data'] = ('RB', _PAGE_DATA)
EXPECTED['postcopy-preempt', 'uffd-eio'] = ('P', '')
# Many-channel postcopy: what postcopy-preempt promises, with the
# background pages on 2 multifd channels after the switchover.
for _f in FAULTS:
    EXPECTED['postcopy-multifd', _f] = EXPECTED['postcopy-preempt', _f]
    EXPECTED['postcopy-multifd-tls', _f] = EXPECTED['postcopy-preempt', _f]
for _m in ('precopy', 'multifd'):
    EXPECTED[_m, 'uffd-eio'] = (
        'n/a', 'not run: nothing touches guest RAM while a precopy '
               'destination loads (multifd fill faults: ram-fault-test '
               'fill/read-error touches pages through qtest)')
for _m in ('mapped-ram-save', 'mapped-ram-restore'):
    EXPECTED[_m, 'uffd-eio'] = (
        'n/a', 'not run: no userfaultfd in a save or a restore')


class CellError(Exception):
    """The cell could not be run as planned (a cut point never reached,
    a guest that did not boot ...); the message is its outcome."""


def exit_desc(g):
    """How a QEMU that is no longer running ended."""
    code = g.vm.exitcode()
    if code is None:
        return 'gone'
    if code < 0:
        return f'died {signal.Signals(-code).name}'
    return f'exited {code}'


def mig_state(g):
    """(status, error-desc) of g's query-migrate; status says how QEMU
    ended if it is not running."""
    if getattr(g, 'killed', False):
        return 'killed', None
    if not g.vm.is_running():
        return exit_desc(g), None
    try:
        info = g.vm.cmd('query-migrate')
    except Exception as e:  # pylint: disable=broad-except
        time.sleep(0.2)
        if not g.vm.is_running():
            return exit_desc(g), None
        return f'no QMP ({type(e).__name__})', None
    return info.get('status', 'none'), info.get('error-desc')


def wait_state(g, want, timeout=END_TIMEOUT):
    """Wait until g's migration status is in want (or QEMU is gone);
    return (status, error-desc); the status it had at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        st, err = mig_state(g)
        if st in want or st.startswith(('died', 'exited', 'killed',
                                        'gone', 'no QMP')):
            return st, err
        if time.monotonic() > deadline:
            return f'{st} after {timeout} s', err
        time.sleep(0.05)


FINAL = ('failed', 'completed', 'cancelled')


def side_desc(st, err):
    """One side's end state as a word: 'error' is failed + error-desc."""
    if st == 'failed':
        return 'error' if err else 'failed without error-desc'
    return st


def ratio(info):
    """ram.transferred / ram.total of a query-migrate answer."""
    ram = info.get('ram', {})
    return ram.get('transferred', 0) / ram['total'] if ram.get('total') \
        else 0.0


def wait_ratio(src, frac, timeout=180):
    """Wait until the source has sent frac of its RAM; return the ratio."""
    deadline = time.monotonic() + timeout
    while True:
        info = src.vm.cmd('query-migrate')
        r = ratio(info)
        if r >= frac:
            return r
        st = info.get('status')
        if st not in ('setup', 'active', 'postcopy-active', 'device',
                      'pre-switchover', 'wait-unplug'):
            raise CellError(f'migration {st} at {r:.0%}, before the fault '
                            f'point {frac:.0%}'
                            + (f": {info['error-desc']}"
                               if info.get('error-desc') else ''))
        if time.monotonic() > deadline:
            raise CellError(f'only {r:.0%} sent after {timeout} s')
        time.sleep(0.02)


# -- the proxy of the flip cells -------------------------------------------

def find_guest_page(buf, start=0):
    """Offset in buf of a whole page of the guest's test area outside
    the hot set (never rewritten), or -1."""
    i = buf.find(PAGE_MAGIC, start)
    while i >= 0:
        p = i - 8
        if p >= 0 and p + 4096 <= len(buf):
            index = int.from_bytes(buf[p:p + 8], 'little')
            seed = int.from_bytes(buf[p + 16:p + 24], 'little')
            if HOT_PAGES <= index < AREA_PAGES and seed == 1:
                return p
        i = buf.find(PAGE_MAGIC, i + 1)
    return -1


def flip_in(buf, what, mode):
    """Flip one byte of buf (a bytearray) as the cell asks; return a
    description, or None when buf has no place for it."""
    if what == 'flip-hdr' and mode == 'multifd':
        i = buf.find(MULTIFD_MAGIC)
        if i < 0:
            return None
        buf[i] ^= 0xff
        return f'multifd packet magic byte 0x11 -> 0x{buf[i]:02x}'
    start = 0
    while True:
        p = find_guest_page(buf, start)
        if p < 0:
            return None
        index = int.from_bytes(buf[p:p + 8], 'little')
        if what == 'flip-data':
            buf[p + FLIP_OFFSET] ^= 0xff
            return f'byte {FLIP_OFFSET} of guest area page {index}'
        # precopy: the page's record header, just before it: be64
        # offset | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_CONTINUE.
        if p >= 8 and int.from_bytes(buf[p - 8:p], 'big') & 0xfff == 0x28:
            buf[p - 8] ^= 0x80
            return (f'top bit of the offset in the record header of guest '
                    f'area page {index}')
        start = p + 1


class Proxy:
    """A unix-socket proxy between the source and the destination: every
    connection the source opens (main channel, multifd channels) is
    forwarded to the destination's socket.  Once armed, it flips one
    byte in the source-to-destination direction (flip_in)."""

    def __init__(self, path, target, what, mode):
        self.target = target
        self.what = what
        self.mode = mode
        self.armed = threading.Event()
        self.done = threading.Event()
        self.flipped = None
        self.lock = threading.Lock()
        self.socks = []
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(path)
        self.lsock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                u.connect(self.target)
            except OSError:
                c.close()
                continue
            self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False),
                             daemon=True).start()

    def _pump(self, a, b, flip):
        try:
            while True:
                data = a.recv(1 << 17)
                if not data:
                    break
                if flip and self.armed.is_set() and not self.done.is_set():
                    with self.lock:
                        if not self.done.is_set():
                            buf = bytearray(data)
                            what = flip_in(buf, self.what, self.mode)
                            if what:
                                self.flipped = what
                                self.done.set()
                                data = bytes(buf)
                b.sendall(data)
        except OSError:
            pass
        # One end went away: the other sees its peer go too.
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.lsock.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


# -- one build's run ---------------------------------------------------------

class Cell:
    """What one cell saw: its outcome code (or words) and details."""

    def __init__(self):
        self.outcome = None
        self.details = []
        self.secs = 0.0


class BuildRun:
    """The cells of one build, migrating from and to that build."""

    def __init__(self, build, accel, small, opts):
        self.build = build
        self.binary = miglib.BUILDS[build]
        self.accel = accel
        self.small = small
        self.opts = opts
        self.logdir = os.path.join(LOGROOT, build)
        shutil.rmtree(self.logdir, ignore_errors=True)
        os.makedirs(self.logdir)
        self.tmp = tempfile.mkdtemp(prefix=f'faults-{build}-',
                                    dir='/dev/shm')
        # The TLS modes' pre-shared key (user "qemu", as QEMU's default)
        self.psk = os.path.join(self.tmp, 'psk')
        os.makedirs(self.psk)
        with open(os.path.join(self.psk, 'keys.psk'), 'w',
                  encoding='utf-8') as f:
            f.write('qemu:' + os.urandom(32).hex() + '\n')
        self.src = None
        self.n = 0
        self.saved = None       # the good mapped-ram file
        self.t0 = time.monotonic()

    def say(self, msg):
        if self.opts.verbose:
            print(f'# {self.build}: {msg}', flush=True)

    # -- QEMUs ---------------------------------------------------------------

    def start(self, role, cell, ram=None, incoming=False, extra=(),
              wrapper=()):
        """A QEMU of this build with the guest; ram: a file for the
        destination's RAM (shared), or None for anonymous RAM; wrapper:
        a command to run QEMU under."""
        self.n += 1
        tag = f'{self.n:03d}-{cell}-{role}'
        if ram:
            backend = (f'memory-backend-file,id=ram0,size={RAM_MIB}M,'
                       f'mem-path={ram},share=on')
        else:
            backend = f'memory-backend-ram,id=ram0,size={RAM_MIB}M'
        endpoint = 'client' if role == 'src' else 'server'
        tls = (f'tls-creds-psk,id=tlscreds0,endpoint={endpoint},'
               f'dir={self.psk}')
        args = ['-accel', self.accel, '-nodefaults', '-no-reboot',
                '-machine', 'pc,memory-backend=ram0', '-m', f'{RAM_MIB}M',
                '-object', backend, '-object', tls] + list(extra) + \
            miglib.linux_guest_args(GUEST_PARAMS)
        g = miglib.Guest(self.binary, tag, args, self.tmp,
                         incoming=incoming, log_dir=self.logdir,
                         wrapper=wrapper)
        g.killed = False
        g.cell = cell
        self.say(f'{tag} started (pid {g.pid})')
        return g

    def close(self, g):
        """Shut g down and keep its console transcript."""
        if g is None:
            return
        try:
            if g.vm.is_running():
                g.vm.kill()
            g.vm.shutdown(timeout=5)
        except Exception:  # pylint: disable=broad-except
            pass
        g.con.save(os.path.join(self.logdir, f'{g.tag}.console'),
                   '# ' + ' '.join([g.vm.binary] + g.vm.args) + '\n',
                   self.t0)

    def qemu_log(self, g, n=4):
        """The last lines of g's stderr/stdout, CPUID warnings left out."""
        path = os.path.join(self.logdir, f'{g.tag}.log')
        try:
            with open(path, encoding='utf-8', errors='replace') as f:
                lines = [ln.rstrip() for ln in f
                         if ln.strip() and 'CPUID' not in ln]
        except OSError:
            return []
        return lines[-n:]

    def source(self, cell):
        """A running source with its guest READY: the last one if it still
        runs and is not migrating, else a new one."""
        g = self.src
        if g is not None:
            try:
                ok = g.vm.is_running() and g.status() == 'running' and \
                    wait_state(g, FINAL + ('none',), 30)[0] in \
                    FINAL + ('none',)
            except Exception:  # pylint: disable=broad-except
                ok = False
            if ok:
                return g
            self.close(g)
        g = self.src = self.start('src', cell)
        try:
            _, _, m = g.con.wait_for(r'(READY|ERROR|PANIC) ', BOOT_TIMEOUT)
        except (TimeoutError, EOFError) as e:
            raise CellError(f'the guest did not boot: {e}') from e
        if m.group(1) != 'READY':
            raise CellError(f'the guest failed to start: {m.string}')
        return g

    def drop_source(self):
        self.close(self.src)
        self.src = None

    def set_mode(self, g, mode, src, params=None):
        """The mode's capabilities and parameters (retried while the last
        migration still cleans up)."""
        postcopy = mode.startswith('postcopy')
        caps = {'multifd': mode in ('multifd', 'postcopy-multifd',
                                    'postcopy-multifd-tls'),
                'postcopy-ram': postcopy,
                'postcopy-preempt': postcopy,
                'mapped-ram': mode.startswith('mapped-ram')}
        if self.build != 'vanilla':
            # Upstream has no such capability: it runs multifd+postcopy
            caps['x-postcopy-multifd'] = mode.startswith('postcopy-multifd')
        p = {'multifd-channels': 2,
             'tls-creds': 'tlscreds0' if mode.endswith('-tls') else ''}
        if src:
            p.update({'max-bandwidth': BW, 'max-postcopy-bandwidth': BW,
                      'downtime-limit': 1})
        p.update(params or {})
        deadline = time.monotonic() + 20
        while True:
            try:
                g.vm.cmd('migrate-set-capabilities', capabilities=[
                    {'capability': k, 'state': v} for k, v in caps.items()])
                g.vm.cmd('migrate-set-parameters', args_dict=p)
                return
            except Exception:  # pylint: disable=broad-except
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def verify(self, g):
        """Bad pages the guest finds: a full pass now, and every pass it
        made before (continuous verification).  -1: no answer."""
        try:
            m = g.con.verify(VERIFY_TIMEOUT)
        except (TimeoutError, EOFError):
            return -1, ['no VERIFY answer']
        bad = int(m.group(2))
        worst = max([int(x.group(1)) for _, x in g.con.matching(
            r'VERIFY pages=\d+ errors=(\d+)')] + [bad])
        lines = [m.string]
        lines += list(dict.fromkeys(x.string for _, x in
                                    g.con.matching(r'VERIFY-BAD ')))[:3]
        return max(bad, worst), lines

    def incoming(self, dst, uri):
        dst.vm.cmd('migrate-incoming',
                   args_dict={'uri': uri, 'exit-on-error': False})

    def yank(self, g):
        g.vm.cmd('yank', instances=[{'type': 'migration'}])

    def ram_path(self, cell, small):
        d = self.small if small else self.tmp
        return os.path.join(d, f'{cell}.ram')

    def cleanup_small(self):
        for f in os.listdir(self.small):
            os.unlink(os.path.join(self.small, f))

    # -- cells ---------------------------------------------------------------

    def run_cell(self, mode, fault):
        cell = Cell()
        t0 = time.monotonic()
        name = f'{mode}.{fault}'
        try:
            if mode in ('precopy', 'multifd'):
                self.live(cell, mode, fault, name)
            elif mode.startswith('postcopy'):
                self.postcopy(cell, mode, fault, name)
            elif mode == 'mapped-ram-save':
                self.save(cell, mode, name)
            else:
                self.restore(cell, mode, fault, name)
        except CellError as e:
            cell.outcome = f'not as planned: {e}'
        except Exception as e:  # pylint: disable=broad-except
            cell.outcome = f'script error: {type(e).__name__}: {e}'
            self.drop_source()
        finally:
            self.cleanup_small()
        cell.secs = time.monotonic() - t0
        return cell

    def live(self, cell, mode, fault, name):
        """precopy and multifd."""
        src = self.source(name)
        self.set_mode(src, mode, True)
        dst = self.start('dst', name, incoming=True,
                         ram=self.ram_path(name, fault == 'enospc'))
        self.set_mode(dst, mode, False)
        dst_uri = f'unix:{self.tmp}/{dst.tag}.sock'
        src_uri, proxy = dst_uri, None
        try:
            self.incoming(dst, dst_uri)
            if fault.startswith('flip'):
                ppath = f'{self.tmp}/{dst.tag}.proxy'
                proxy = Proxy(ppath, dst_uri[5:], fault, mode)
                src_uri = f'unix:{ppath}'
            src.vm.cmd('migrate', uri=src_uri)
            if fault.startswith('cut'):
                _, side, pct = fault.split('-')
                r = wait_ratio(src, int(pct) / 100)
                self.yank(src if side == 'src' else dst)
                cell.details.append(f'yank on the {side} at {r:.1%}')
            elif fault == 'kill-dst':
                r = wait_ratio(src, 0.5)
                os.kill(dst.pid, signal.SIGKILL)
                dst.killed = True
                cell.details.append(f'SIGKILL to the destination at {r:.1%}')
            elif fault.startswith('flip'):
                r = wait_ratio(src, 0.5)
                proxy.armed.set()
                if not proxy.done.wait(60):
                    raise CellError('the proxy found nothing to flip')
                cell.details.append(f'flipped at {r:.1%}: {proxy.flipped}')
            if fault == 'flip-data':
                self.complete_flip_data(cell, src, dst)
                return
            sst, serr = wait_state(src, FINAL)
            dst_st, derr = wait_state(dst, FINAL)
            run = src.status() if src.vm.is_running() else exit_desc(src)
            bad, vlines = self.verify(src) if run == 'running' else (-1, [])
            sd, dd = side_desc(sst, serr), side_desc(dst_st, derr)
            cell.details += [f'source: {sst}: {serr}',
                             f'destination: {dst_st}: {derr}',
                             f'source {run}, its guest: '
                             + '; '.join(vlines)]
            if not dst.vm.is_running() and not dst.killed:
                cell.details.append('destination stderr: '
                                    + ' | '.join(self.qemu_log(dst)))
            if fault == 'enospc' and dd == 'error' and \
                    not NO_SPACE.search(derr):
                dd = 'error not naming the lack of space'
            if sd == 'error' and run == 'running' and bad == 0 and \
                    dd in ('error', 'killed'):
                cell.outcome = 'E' if dd == 'error' else 'K'
            else:
                cell.outcome = (f'src {sd}, dst {dd}; src {run}, '
                                f'{bad} bad pages')
        finally:
            if proxy:
                proxy.close()
            self.close(dst)

    def complete_flip_data(self, cell, src, dst):
        """Let a migration with a flipped page byte complete, then count
        the bad pages on both sides."""
        src.con.send('dirty 0')
        src.vm.cmd('migrate-set-parameters', args_dict={
            'max-bandwidth': miglib.UNLIMITED, 'downtime-limit': 300})
        sst, serr = wait_state(src, FINAL, COMPLETE_TIMEOUT)
        dst_st, derr = wait_state(dst, FINAL, 30)
        cell.details += [f'source: {sst}: {serr}',
                         f'destination: {dst_st}: {derr}']
        if (sst, dst_st) != ('completed', 'completed'):
            cell.outcome = f'src {side_desc(sst, serr)}, dst ' \
                f'{side_desc(dst_st, derr)}'
            return
        dbad, dlines = self.verify(dst)
        src.vm.cmd('cont')
        sbad, slines = self.verify(src)
        self.drop_source()
        cell.details += ['destination guest: ' + '; '.join(dlines),
                         'source guest (cont): ' + '; '.join(slines)]
        if dbad > 0 and sbad == 0:
            cell.outcome = 'B'
        else:
            cell.outcome = (f'completed; dst {dbad} bad pages, src {sbad} '
                            'bad pages')

    def postcopy(self, cell, mode, fault, name):
        """postcopy with postcopy-preempt, and with 2 multifd channels
        and x-postcopy-multifd (upstream: multifd+postcopy)."""
        src = self.source(name)
        self.set_mode(src, mode, True)
        wrapper = ()
        if fault == 'uffd-eio':
            if not os.path.exists(UFFD_EIO_SHIM):
                raise CellError(f'{UFFD_EIO_SHIM} is not built')
            wrapper = ('env', f'LD_PRELOAD={UFFD_EIO_SHIM}',
                       f'UFFD_READ_EIO_ONCE={UFFD_EIO_NTH}')
        dst = self.start('dst', name, incoming=True,
                         ram=self.ram_path(name, fault == 'enospc'),
                         wrapper=wrapper)
        self.set_mode(dst, mode, False)
        uri = f'unix:{self.tmp}/{dst.tag}.sock'
        try:
            self.incoming(dst, uri)
            src.vm.cmd('migrate', uri=uri)
            pct = int(fault.rsplit('-', 1)[1]) if fault.startswith('cut') \
                else (50 if fault == 'kill-dst' else 0)
            switch = max(5, pct - 10) / 100
            r = wait_ratio(src, switch)
            src.vm.cmd('migrate-start-postcopy')
            # uffd-eio: the first fault may pause postcopy at once
            st = wait_state(src, ('postcopy-active', 'postcopy-paused') +
                            FINAL, 60)[0]
            if st not in ('postcopy-active', 'postcopy-paused'):
                raise CellError(f'no postcopy-active after the switch: {st}')
            cell.details.append(f'migrate-start-postcopy at {r:.1%}')
            if fault.startswith('cut'):
                side = fault.split('-')[1]
                r = wait_ratio(src, pct / 100)
                self.yank(src if side == 'src' else dst)
                cell.details.append(f'yank on the {side} at {r:.1%}')
            elif fault == 'kill-dst':
                r = wait_ratio(src, pct / 100)
                os.kill(dst.pid, signal.SIGKILL)
                dst.killed = True
                cell.details.append(f'SIGKILL to the destination at {r:.1%}')
            paused = ('postcopy-paused',) + FINAL
            sst, serr = wait_state(src, paused)
            dst_st, derr = wait_state(dst, paused)
            cell.details += [f'source: {sst}: {serr}',
                             f'destination: {dst_st}: {derr}']
            if not dst.vm.is_running() and not dst.killed:
                cell.details.append('destination stderr: '
                                    + ' | '.join(self.qemu_log(dst)))
            both = (sst, dst_st)
            if fault == 'kill-dst':
                cell.outcome = 'L' if sst == 'postcopy-paused' else \
                    f'src {side_desc(sst, serr)}'
                return
            if fault == 'enospc':
                cell.outcome = 'LP' if both == ('postcopy-paused',) * 2 \
                    and derr and NO_SPACE.search(derr) else (
                        f'src {side_desc(sst, serr)}, dst '
                        f'{side_desc(dst_st, derr)}'
                        + ('' if derr else ' without error-desc'))
                if cell.outcome != 'LP':
                    cell.details.append('destination stderr: '
                                        + ' | '.join(self.qemu_log(dst)))
                return
            if both != ('postcopy-paused',) * 2:
                cell.outcome = (f'src {side_desc(sst, serr)}, dst '
                                f'{side_desc(dst_st, derr)}')
                return
            # Recover over a new socket, uncapped.
            uri2 = f'unix:{self.tmp}/{dst.tag}-recover.sock'
            dst.vm.cmd('migrate-recover', uri=uri2)
            src.vm.cmd('migrate-set-parameters', args_dict={
                'max-postcopy-bandwidth': 0})
            src.vm.cmd('migrate', uri=uri2, resume=True)
            sst, serr = wait_state(src, FINAL, COMPLETE_TIMEOUT)
            dst_st, derr = wait_state(dst, FINAL, 60)
            cell.details.append(f'after recovery: source {sst}: {serr}; '
                                f'destination {dst_st}: {derr}')
            if (sst, dst_st) != ('completed', 'completed'):
                cell.outcome = (f'paused both; recovery: src {sst}, dst '
                                f'{dst_st}')
                return
            bad, lines = self.verify(dst)
            run = dst.status()
            cell.details.append(f'destination {run}, its guest: '
                                + '; '.join(lines))
            cell.outcome = 'P' if bad == 0 and run == 'running' else \
                f'paused both, recovered; dst {run}, {bad} bad pages'
        finally:
            self.close(dst)
            # A source that switched over has no guest of its own left.
            try:
                keep = mig_state(src)[0] == 'failed' and \
                    src.status() == 'running'
            except Exception:  # pylint: disable=broad-except
                keep = False
            if not keep:
                self.drop_source()

    def save(self, cell, mode, name):
        """mapped-ram save into a tmpfs too small for it."""
        src = self.source(name)
        self.set_mode(src, mode, True, {'max-bandwidth': miglib.UNLIMITED,
                                        'downtime-limit': 300})
        path = os.path.join(self.small, f'{name}.img')
        src.vm.cmd('migrate', uri=f'file:{path}')
        sst, serr = wait_state(src, FINAL, COMPLETE_TIMEOUT)
        run = src.status() if src.vm.is_running() else exit_desc(src)
        bad, lines = self.verify(src) if run == 'running' else (-1, [])
        cell.details += [f'source: {sst}: {serr}',
                         f'source {run}, its guest: ' + '; '.join(lines)]
        sd = side_desc(sst, serr)
        if sd == 'error' and not NO_SPACE.search(serr):
            sd = 'error not naming the lack of space'
        if sd == 'error' and run == 'running' and bad == 0:
            cell.outcome = 'S'
        else:
            cell.outcome = f'src {sd}; src {run}, ' \
                f'{bad} bad pages'

    def saved_file(self):
        """A good mapped-ram file of the guest (made once)."""
        if self.saved:
            return self.saved
        src = self.source('mapped-ram-restore.file')
        self.set_mode(src, 'mapped-ram-save', True, {
            'max-bandwidth': miglib.UNLIMITED, 'downtime-limit': 300})
        path = os.path.join(self.tmp, 'saved.img')
        src.vm.cmd('migrate', uri=f'file:{path}')
        sst, serr = wait_state(src, FINAL, COMPLETE_TIMEOUT)
        self.drop_source()
        if sst != 'completed':
            raise CellError(f'the save for the restore cells: {sst}: {serr}')
        self.saved = path
        return path

    def restore_one(self, name, path, small=False, kill=False):
        """Restore path into a new QEMU (-S); return (it, status,
        error-desc)."""
        dst = self.start('dst', name, incoming=True, extra=['-S'],
                         ram=self.ram_path(name, small))
        self.set_mode(dst, 'mapped-ram-restore', False)
        self.incoming(dst, f'file:{path}')
        if kill:
            wait_state(dst, ('active',) + FINAL, 10)
            os.kill(dst.pid, signal.SIGKILL)
            dst.killed = True
        st, err = wait_state(dst, FINAL, COMPLETE_TIMEOUT)
        return dst, st, err

    def file_restores(self, cell, path):
        """The saved file restores, and the guest finds 0 bad pages."""
        dst, st, err = self.restore_one('mapped-ram-restore.check', path)
        try:
            if st != 'completed':
                cell.details.append(f'the saved file: restore {st}: {err}')
                return False
            dst.vm.cmd('cont')
            bad, lines = self.verify(dst)
            cell.details.append('the saved file restored, its guest: '
                                + '; '.join(lines))
            return bad == 0
        finally:
            self.close(dst)
            self.cleanup_files('mapped-ram-restore.check')

    def cleanup_files(self, name):
        for d in (self.tmp, self.small):
            p = os.path.join(d, f'{name}.ram')
            if os.path.exists(p):
                os.unlink(p)

    def restore(self, cell, mode, fault, name):
        """mapped-ram restore."""
        good = self.saved_file()
        path = good
        if fault.startswith('flip'):
            path = os.path.join(self.tmp, f'{name}.img')
            subprocess.run(['cp', '--sparse=always', good, path], check=True)
            cell.details.append('flipped in the file: '
                                + flip_file(path, fault))
        dst, st, err = self.restore_one(name, path,
                                        small=fault == 'enospc',
                                        kill=fault == 'kill-dst')
        try:
            cell.details.append(f'restore: {st}: {err}')
            if not dst.vm.is_running() and not dst.killed:
                cell.details.append('restoring QEMU stderr: '
                                    + ' | '.join(self.qemu_log(dst)))
            got = side_desc(st, err)
            if fault == 'enospc' and got == 'error' and \
                    not NO_SPACE.search(err):
                got = 'error not naming the lack of space'
            dbad = None
            if st == 'completed':
                dst.vm.cmd('cont')
                dbad, lines = self.verify(dst)
                cell.details.append('restored guest: ' + '; '.join(lines))
        finally:
            self.close(dst)
            self.cleanup_files(name)
            if path != good:
                os.unlink(path)
        fine = self.file_restores(cell, good)
        if fault == 'kill-dst':
            ok = got == 'killed'
            code = 'RK'
        elif fault == 'flip-data':
            ok = st == 'completed' and dbad and dbad > 0
            code = 'RB'
        else:
            ok = got == 'error'
            code = 'R'
        if ok and fine:
            cell.outcome = code
        else:
            cell.outcome = (f'restore {got}' + (f', {dbad} bad pages'
                                                if dbad is not None else '')
                            + ('; file restores fine' if fine else
                               '; the saved file does NOT restore fine'))


def flip_file(path, fault):
    """Flip one byte of a mapped-ram file; return what was flipped."""
    with open(path, 'r+b') as f:
        if fault == 'flip-hdr':
            head = f.read(8 << 20)
            i = head.find(MAPPED_RAM_HDR)
            if i < 0:
                raise CellError('no mapped-ram header in the file')
            f.seek(i + 3)
            f.write(bytes([head[i + 3] ^ 0x80]))
            return f'version of the mapped-ram header at {i}: 1 -> 0x81'
        off = 0
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                raise CellError('no page of the guest area in the file')
            p = find_guest_page(chunk)
            if p >= 0 and p % 4096 == 0:
                index = int.from_bytes(chunk[p:p + 8], 'little')
                f.seek(off + p + FLIP_OFFSET)
                f.write(bytes([chunk[p + FLIP_OFFSET] ^ 0xff]))
                return (f'byte {FLIP_OFFSET} of guest area page {index} '
                        f'(file offset {off + p})')
            off += len(chunk)


# -- the report --------------------------------------------------------------

def mark(build, exp, got):
    """How a cell's outcome compares with the expected one."""
    if got is None:
        return 'not run'
    if got == exp:
        return f'{got} ok'
    if build == 'vanilla':
        return f'{got} (differs)'
    return f'{got} FAIL'


def report(cells, builds, head, elapsed, done, per_build=None):
    """The matrix and the details, as text."""
    out = list(head)
    w = max(len(f'{m} {f}') for m in MODES for f in FAULTS) + 2
    out.append('')
    out.append(f"{'cell':<{w}}{'expected':<10}" + ''.join(
        f'{b:<28}' for b in builds))
    for m in MODES:
        for f in FAULTS:
            exp = EXPECTED[m, f][0]
            row = f"{m + ' ' + f:<{w}}{exp:<10}"
            for b in builds:
                c = cells.get((b, m, f))
                if exp == 'n/a':
                    row += f"{'n/a':<28}"
                    continue
                txt = mark(b, exp, c.outcome if c else None)
                row += f'{txt:<28}' if len(txt) < 28 else f'{txt}  '
            out.append(row.rstrip())
    out.append('')
    out.append('Outcomes:')
    for k, v in OUTCOMES.items():
        out.append(f'  {k:<3} {v}')
    out.append('Reasons where the expected outcome is not the aim:')
    for (m, f), (exp, why) in EXPECTED.items():
        if why and exp != 'n/a':
            out.append(f'  {m} {f}: {exp}: {why}')
    out.append('  n/a cells: ' + '; '.join(sorted({
        why for (exp, why) in EXPECTED.values() if exp == 'n/a'})))
    out.append('')
    out.append('Details:')
    for b in builds:
        for m in MODES:
            for f in FAULTS:
                c = cells.get((b, m, f))
                if not c:
                    continue
                out.append(f'[{b}] {m} {f}: {c.outcome} ({c.secs:.0f} s)')
                out += [f'    {d}' for d in c.details]
    out.append('')
    out.append(f"# {'finished' if done else 'INCOMPLETE'}; run time "
               f'{elapsed / 60:.1f} min'
               + ''.join(f', {b} {t / 60:.1f} min'
                         for b, t in (per_build or {}).items()))
    return '\n'.join(out) + '\n'


def sha256(path):
    """The sha256 of a file, hex."""
    return subprocess.run(['sha256sum', path], capture_output=True,
                          text=True, check=True).stdout.split()[0]


def in_private_ns():
    return os.environ.get('CHECK_FAULTS_NS') == '1'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    ap.add_argument('--build', default='patched,vanilla')
    ap.add_argument('--mode', default=','.join(MODES))
    ap.add_argument('--fault', default=','.join(FAULTS))
    ap.add_argument('--out', default=RESULT)
    ap.add_argument('-v', '--verbose', action='store_true')
    opts = ap.parse_args()
    builds = opts.build.split(',')
    modes = opts.mode.split(',')
    faults = opts.fault.split(',')
    for lst, known in ((builds, miglib.BUILDS), (modes, MODES),
                       (faults, FAULTS)):
        bad = [x for x in lst if x not in known]
        if bad:
            ap.error(f'unknown {bad}; known: {", ".join(known)}')
    assert set(EXPECTED) == {(m, f) for m in MODES for f in FAULTS}

    if not in_private_ns():
        if os.geteuid() != 0:
            sys.exit('check-faults: needs root (a tmpfs in a private '
                     'mount namespace)')
        env = dict(os.environ, CHECK_FAULTS_NS='1')
        os.execvpe('unshare', ['unshare', '-m', '--propagation', 'private',
                               sys.executable] + sys.argv, env)

    os.makedirs(LOGROOT, exist_ok=True)
    small = tempfile.mkdtemp(prefix='small-', dir=LOGROOT)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={SMALL_MIB}M',
                    'tmpfs', small], check=True)

    accel = miglib.pick_guest('linux', None)[1]
    now = datetime.datetime.now(datetime.timezone.utc)
    head = [f'# check-faults {now:%Y-%m-%d %H:%M} UTC',
            f'# accelerator: {accel}']
    sums = {b: sha256(miglib.BUILDS[b]) for b in builds}
    for b in builds:
        head.append(f'# {b}: {miglib.qemu_version(miglib.BUILDS[b])} '
                    f'({b} -> {b}), sha256 {sums[b][:16]}')
    head.append(f'# guest: {RAM_MIB} MiB RAM, {GUEST_PARAMS}; '
                f'max-bandwidth {BW_MIBPS} MiB/s, downtime-limit 1 ms; '
                f'small tmpfs {SMALL_MIB} MiB; logs build/faults/<build>/')
    head.append('# cuts: QMP yank of the migration instance on the side '
                'named, at ram.transferred/ram.total of the source')
    print('\n'.join(head), flush=True)

    cells = {}
    t0 = time.monotonic()
    fails = 0
    per_build = {}
    try:
        for b in builds:
            tb = time.monotonic()
            run = BuildRun(b, accel, small, opts)
            try:
                for m in modes:
                    for f in faults:
                        if EXPECTED[m, f][0] == 'n/a':
                            continue
                        c = run.run_cell(m, f)
                        cells[b, m, f] = c
                        exp = EXPECTED[m, f][0]
                        verdict = mark(b, exp, c.outcome)
                        if b != 'vanilla' and c.outcome != exp:
                            fails += 1
                        print(f'{b:<8} {m:<19} {f:<11} expected {exp:<3} '
                              f'got {verdict}  ({c.secs:.0f} s)', flush=True)
                        for d in c.details:
                            print(f'#     {d}', flush=True)
                        with open(opts.out + '.partial', 'w',
                                  encoding='utf-8') as fh:
                            fh.write(report(cells, builds, head,
                                            time.monotonic() - t0, False))
            finally:
                run.drop_source()
                shutil.rmtree(run.tmp, ignore_errors=True)
                per_build[b] = time.monotonic() - tb
    finally:
        subprocess.run(['umount', small], check=False)
        os.rmdir(small)
    for b in builds:
        if sha256(miglib.BUILDS[b]) != sums[b]:
            head.append(f'# WARNING: {miglib.BUILDS[b]} changed during the '
                        'run (rebuilt by someone else): cells may have run '
                        'different binaries')
    text = report(cells, builds, head, time.monotonic() - t0, True,
                  per_build)
    with open(opts.out, 'w', encoding='utf-8') as fh:
        fh.write(text)
    if os.path.exists(opts.out + '.partial'):
        os.unlink(opts.out + '.partial')
    print(text)
    print(f'{fails} branch cell(s) differ from the expected outcome')
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main())
