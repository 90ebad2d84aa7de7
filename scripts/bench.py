#!/usr/bin/python3
"""A/B migration benchmark: vanilla QEMU 10.2.2 and the branch, one run.

For every scenario the two builds run interleaved (warm-up first, then
repetitions in alternating order), on the same guest.  A guest is filled
once per scenario and then handed along a chain of migrations:

    vanilla -> vanilla (measured) -> branch (hand-over) -> branch (measured)
    -> vanilla (hand-over) -> ...

so the fill is paid once and every measured migration starts from a
source whose memory is warm.  The hand-overs cross the two builds and
are recorded too (they prove wire compatibility); they are never part
of a ratio.  See bench/README.md for the scenarios and the metrics.

Usage: bench.py [--quick] [--reps N] [--scale F] [--only NAME,...]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import bench_report
import guestcon
import miglib

TOP = miglib.TOP
GUEST_DIR = miglib.GUEST_DIR
RESULTS = os.path.join(TOP, 'bench', 'results')
# The window of Bench.first_second()
WINDOW_S = 1.0


class Scenario:
    """One benchmark scenario.

    mode: 'socket' (live migration over a unix socket) or 'file'
    (mapped-ram save, then restore).  paused: the guest is stopped
    during the migration.  backend: 'file' (shared file on /dev/shm, so
    RAM can be byte-compared), 'anon', or 'hugetlbfs' (shared file on a
    hugetlbfs of 2 MiB pages that the bench mounts, with huge pages it
    reserves for the scenario and gives back after).  prealloc: the file backend
    with prealloc=on, on every guest of the scenario.  thp=False: every
    QEMU of the scenario runs with transparent huge pages disabled for
    it (PR_SET_THP_DISABLE), as on a host whose THP is "never"."""

    def __init__(self, name, title, ram_mib, area_mib, **kw):
        self.name = name
        self.title = title
        self.ram_mib = ram_mib
        self.area_mib = area_mib
        self.mode = kw.get('mode', 'socket')
        self.paused = kw.get('paused', False)
        self.backend = kw.get('backend', 'file' if self.paused else 'anon')
        self.caps = kw.get('caps', {})
        # Capabilities only the branch has, set on it only
        self.branch_caps = kw.get('branch_caps', {})
        # Capabilities the branch's restore side gets (mode 'file')
        self.restore_branch_caps = kw.get('restore_branch_caps', {})
        self.params = kw.get('params', {})
        self.dirty = kw.get('dirty', 0)           # MB/s
        self.hot_mib = kw.get('hot_mib', 0)
        self.postcopy = kw.get('postcopy', False)
        self.touch = kw.get('touch', 0)
        self.direct_io = kw.get('direct_io', False)
        self.fill = kw.get('fill', True)
        self.prealloc = kw.get('prealloc', False)
        self.thp = kw.get('thp', True)
        self.hb_ms = kw.get('hb_ms', 5)
        # Lazy restores of the branch twice, the second with the first's
        # working set (x-working-set)
        self.working_set = kw.get('working_set', False)

    def scaled(self, f):
        s = Scenario.__new__(Scenario)
        s.__dict__.update(self.__dict__)
        s.ram_mib = max(512, int(self.ram_mib * f))
        # The guest kernel needs about 130 MiB of its own.
        s.area_mib = max(64, min(int(self.area_mib * f), s.ram_mib - 192))
        s.hot_mib = min(s.area_mib, int(self.hot_mib * f)) \
            if self.hot_mib else 0
        return s


MULTIFD = {'multifd': True}
MULTIFD_PARAMS = {'multifd-channels': 2, 'multifd-compression': 'none'}
POSTCOPY_PREEMPT = {'postcopy-ram': True, 'postcopy-blocktime': True,
                    'postcopy-preempt': True}


def postcopy_multifd(n):
    """Postcopy-preempt with n multifd channels: the branch keeps them
    sending after the switchover (x-postcopy-multifd), upstream sends
    every page on the main channel then (its multifd+postcopy)."""
    return Scenario(f'postcopy-multifd{n}',
                    f'postcopy-preempt + multifd x{n}, guest touching pages',
                    4096, 3584, postcopy=True, touch=20000,
                    caps=dict(POSTCOPY_PREEMPT, multifd=True),
                    params={'multifd-channels': n},
                    branch_caps={'x-postcopy-multifd': True})


def scenarios():
    # 4 GiB guests leave about 3.8 GiB to the test area.
    return [
        Scenario('precopy-paused', 'precopy, 4 GiB random, paused',
                 4096, 3584, paused=True),
        Scenario('precopy-live-idle', 'precopy, 4 GiB random, live idle',
                 4096, 3584),
        Scenario('multifd-paused', 'multifd x2 none, 4 GiB random, paused',
                 4096, 3584, paused=True, caps=MULTIFD,
                 params=MULTIFD_PARAMS),
        Scenario('multifd-zstd-paused',
                 'multifd x2 zstd, 4 GiB random, paused',
                 4096, 3584, paused=True, caps=MULTIFD,
                 params=dict(MULTIFD_PARAMS, **{'multifd-compression':
                                                'zstd'})),
        Scenario('precopy-prealloc',
                 'precopy, 4 GiB random, paused, RAM preallocated',
                 4096, 3584, paused=True, prealloc=True),
        Scenario('multifd-prealloc',
                 'multifd x2 none, 4 GiB random, paused, RAM preallocated',
                 4096, 3584, paused=True, prealloc=True, caps=MULTIFD,
                 params=MULTIFD_PARAMS),
        # libvirt's default: anonymous RAM on both sides (the guest's own
        # verify checks it; there is no file to compare)
        Scenario('precopy-anon',
                 'precopy, 4 GiB random, paused, anonymous RAM',
                 4096, 3584, paused=True, backend='anon'),
        Scenario('multifd-anon',
                 'multifd x2 none, 4 GiB random, paused, anonymous RAM',
                 4096, 3584, paused=True, backend='anon', caps=MULTIFD,
                 params=MULTIFD_PARAMS),
        # The same without THP (a host with THP "never"): the branch
        # places with UFFDIO_COPY there (fill.c), and leaves RAM with THP
        # to the mapping.
        Scenario('precopy-anon-nothp',
                 'precopy, 4 GiB random, paused, anonymous RAM, no THP',
                 4096, 3584, paused=True, backend='anon', thp=False),
        Scenario('multifd-anon-nothp',
                 'multifd x2 none, 4 GiB random, paused, anonymous RAM, '
                 'no THP', 4096, 3584, paused=True, backend='anon',
                 caps=MULTIFD, params=MULTIFD_PARAMS, thp=False),
        # hugetlbfs on both sides (2 GiB guests: two of them at once need
        # 2048 huge pages)
        Scenario('precopy-hugetlbfs',
                 'precopy, 2 GiB random, paused, hugetlbfs 2 MiB',
                 2048, 1536, paused=True, backend='hugetlbfs'),
        Scenario('multifd-hugetlbfs',
                 'multifd x2 none, 2 GiB random, paused, hugetlbfs 2 MiB',
                 2048, 1536, paused=True, backend='hugetlbfs', caps=MULTIFD,
                 params=MULTIFD_PARAMS),
        Scenario('live-dirty', 'live, 1 GiB hot set at 200 MB/s, '
                 'downtime-limit 50 ms', 4096, 3584, dirty=200,
                 hot_mib=1024, params={'downtime-limit': 50}),
        Scenario('postcopy', 'postcopy, guest touching pages',
                 4096, 3584, postcopy=True, touch=20000,
                 caps={'postcopy-ram': True, 'postcopy-blocktime': True}),
        Scenario('postcopy-preempt', 'postcopy-preempt, guest touching '
                 'pages', 4096, 3584, postcopy=True, touch=20000,
                 caps=POSTCOPY_PREEMPT),
        postcopy_multifd(1),
        postcopy_multifd(2),
        postcopy_multifd(4),
        Scenario('mapped-ram', 'mapped-ram save + restore',
                 4096, 3584, mode='file', paused=True,
                 caps={'mapped-ram': True}),
        Scenario('mapped-ram-multifd',
                 'mapped-ram + multifd x2 save + restore', 4096, 3584,
                 mode='file', paused=True,
                 caps={'mapped-ram': True, 'multifd': True},
                 params={'multifd-channels': 2}),
        Scenario('mapped-ram-dio',
                 'mapped-ram + multifd x2 + direct-io save + restore',
                 4096, 3584, mode='file', paused=True, direct_io=True,
                 caps={'mapped-ram': True, 'multifd': True},
                 params={'multifd-channels': 2, 'direct-io': True}),
        # Lazy restore on the branch (x-lazy-restore), upstream's eager
        # restore beside it; the branch's eager restore of the same
        # image is the scenario without -lazy, in the same run.  The
        # guest beats every ms and touches random pages as soon as it
        # runs (first-touch latency while the load goes on).
        Scenario('mapped-ram-lazy',
                 'mapped-ram save + restore, lazy on the branch',
                 4096, 3584, mode='file', paused=True, hb_ms=1,
                 touch=2000, caps={'mapped-ram': True},
                 restore_branch_caps={'x-lazy-restore': True}),
        Scenario('mapped-ram-lazy-multifd',
                 'mapped-ram + multifd x2 save + restore, lazy on the branch',
                 4096, 3584, mode='file', paused=True, hb_ms=1,
                 touch=2000, caps={'mapped-ram': True, 'multifd': True},
                 params={'multifd-channels': 2},
                 restore_branch_caps={'x-lazy-restore': True}),
        Scenario('mapped-ram-lazy-wss',
                 'mapped-ram save + restore, lazy on the branch, twice: '
                 'the second with the working set of the first',
                 4096, 3584, mode='file', paused=True, hb_ms=1,
                 touch=2000, caps={'mapped-ram': True},
                 restore_branch_caps={'x-lazy-restore': True},
                 working_set=True),
        # 16 GiB guests with 2 GiB of data, the rest never written: a
        # sparse image of about 2 GiB.  Anonymous RAM: with the RAM in
        # files on /dev/shm, upstream's restore was killed by the OOM
        # killer on this 24 GiB machine (2026-12-08).
        Scenario('mapped-ram-16g', 'mapped-ram save + restore, 16 GiB '
                 'guest, 2 GiB written', 16384, 2048, mode='file',
                 paused=True, hb_ms=1, touch=2000, backend='anon',
                 caps={'mapped-ram': True}),
        Scenario('mapped-ram-lazy-16g', 'mapped-ram save + restore, 16 GiB '
                 'guest, 2 GiB written, lazy on the branch', 16384, 2048,
                 mode='file', paused=True, hb_ms=1, touch=2000,
                 backend='anon', caps={'mapped-ram': True},
                 restore_branch_caps={'x-lazy-restore': True}),
        Scenario('idle-zero', 'idle 8 GiB guest, mostly zero',
                 8192, 64, fill=True),
    ]


class Guest(miglib.Guest):
    """One QEMU process running the test guest of the bench's scenario."""

    def __init__(self, bench, build, tag, incoming=False, backend='anon'):
        self.bench = bench
        self.build = build
        sc = bench.scenario
        self.ram_path = None
        if backend in ('file', 'hugetlbfs'):
            self.ram_path = os.path.join(
                bench.huge_dir if backend == 'hugetlbfs' else bench.shm,
                f'{tag}.ram')
            mem = (f'memory-backend-file,id=ram0,size={sc.ram_mib}M,'
                   f'mem-path={self.ram_path},share=on')
            if sc.prealloc:
                mem += ',prealloc=on'
        else:
            mem = f'memory-backend-ram,id=ram0,size={sc.ram_mib}M'
        self.backend = backend
        args = bench.guest_args() + [
            '-machine', 'pc,memory-backend=ram0', '-m', f'{sc.ram_mib}M',
            '-object', mem]
        super().__init__(miglib.BUILDS[build], tag, args, bench.tmp,
                         incoming=incoming,
                         wrapper=() if sc.thp else NO_THP_WRAPPER)

    def cpu(self):
        return miglib.cpu_seconds(self.pid)

    def close(self):
        super().close()
        if self.ram_path and os.path.exists(self.ram_path):
            os.unlink(self.ram_path)


# Runs QEMU with transparent huge pages disabled for it (prctl
# PR_SET_THP_DISABLE, kept across execve)
NO_THP_WRAPPER = (sys.executable, '-c',
                  'import ctypes, os, sys\n'
                  'if ctypes.CDLL(None).prctl(41, 1, 0, 0, 0):\n'
                  '    sys.exit("PR_SET_THP_DISABLE failed")\n'
                  'os.execv(sys.argv[1], sys.argv[1:])')


def anon_huge_mib(pid):
    """AnonHugePages of process pid, in MiB."""
    with open(f'/proc/{pid}/smaps_rollup', encoding='ascii') as f:
        for line in f:
            if line.startswith('AnonHugePages:'):
                return int(line.split()[1]) / 1024
    return 0.0


def ram_diff(a, b):
    """Guest addresses of the pages that differ between two RAM files."""
    if subprocess.run(['cmp', '-s', a, b], check=False).returncode == 0:
        return []
    return miglib.compare_ram_files(a, b)[1]


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.tmp = tempfile.mkdtemp(prefix='bench-', dir=os.path.join(
            TOP, 'build'))
        self.shm = tempfile.mkdtemp(prefix='bench-', dir='/dev/shm')
        self.samples = []
        self.scenario = None
        self.guest_kind, self.accel = miglib.pick_guest(
            opts.guest, opts.accel)
        self.host_memory = opts.host_memory
        if self.host_memory == 'auto':
            self.host_memory = 'warm' if free_page_reporting() else 'cold'
        self.limits_exe = os.path.join(self.tmp, 'limits')
        self.huge_dir = None
        self.huge_pages_before = None

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.shm, ignore_errors=True)

    # -- the guest ---------------------------------------------------------

    def guest_args(self):
        sc = self.scenario
        append = f'guest.mib={sc.area_mib} guest.hb={sc.hb_ms} guest.seed=1'
        if sc.dirty:
            append += f' guest.dirty=0 guest.hot={sc.hot_mib}'
        args = ['-accel', self.accel, '-nodefaults', '-no-reboot']
        args += miglib.CPU_FOR_RAM_COMPARE
        if self.guest_kind == 'bare':
            # qboot starts the PVH kernel in 0.2 s; SeaBIOS takes 1.4 s
            # under KVM-PVM, for every destination process.
            return args + ['-bios', 'qboot.rom',
                           '-kernel', os.path.join(GUEST_DIR,
                                                   'bare-guest.elf'),
                           '-append', append]
        return args + miglib.linux_guest_args(append)

    def boot(self, build):
        sc = self.scenario
        g = Guest(self, build, f'{build}-0', backend=sc.backend)
        _, _, m = g.con.wait_for(r'(READY|ERROR) ', timeout=600)
        if m.group(1) == 'ERROR':
            g.close()
            raise RuntimeError(f'guest: {g.con.lines[-1][1]}')
        if sc.dirty:
            g.con.command(f'dirty {sc.dirty}', r'OK dirty=', 10)
        if sc.paused:
            g.vm.cmd('stop')
        return g

    # -- one migration -----------------------------------------------------

    def warm_host_memory(self, measured):
        """Hand the next destination memory that the outer host backs."""
        if not measured or self.host_memory != 'warm':
            return
        sc = self.scenario
        mib = min(sc.ram_mib, sc.area_mib + 512)
        subprocess.run([self.limits_exe, '--warm', str(mib)], check=True,
                       stdout=subprocess.DEVNULL)

    def migrate(self, src, build, tag, measured):
        sc = self.scenario
        if sc.mode == 'file':
            return self.save_restore(src, build, tag, measured)
        self.warm_host_memory(measured)
        dst = Guest(self, build, tag, incoming=True, backend=sc.backend)
        sock = os.path.join(self.tmp, f'{tag}.sock')
        # The branch's own capabilities need the branch on both sides;
        # a hand-over between the builds runs upstream's protocol, and a
        # branch QEMU turns them off again (it keeps what it was set to).
        both = build == src.build == 'patched'
        for g in (src, dst):
            caps = dict(sc.caps)
            if g.build == 'patched':
                caps.update({k: v and both
                             for k, v in sc.branch_caps.items()})
            g.set_caps(caps, sc.params)
        dst.vm.cmd('migrate-incoming', uri=f'unix:{sock}')
        src_mark = src.con.mark()
        cpu0 = (src.cpu(), dst.cpu())
        t0 = time.monotonic()
        src.vm.cmd('migrate', uri=f'unix:{sock}')
        if sc.postcopy:
            # Switch over as soon as the first pass runs: most pages are
            # still on the source when the guest moves, and its touches
            # fault them in.
            miglib.wait_migrating(src.vm)
            src.vm.cmd('migrate-start-postcopy')
            t_switch = time.monotonic() - t0
            miglib.wait_status(dst.vm, ('running',), timeout=120)
            dst.con.send(f'touch {sc.touch}')
        trail = []
        info = miglib.wait_migration(
            src.vm, timeout=600, poll=0.01,
            on_poll=lambda i: trail.append(
                (time.monotonic() - t0, i.get('ram', {}).get('transferred', 0),
                 src.cpu() + dst.cpu())))
        t1 = time.monotonic()
        dinfo = miglib.wait_migration(dst.vm, timeout=600, poll=0.01)
        t2 = time.monotonic()
        cpu1 = (src.cpu(), dst.cpu())
        sample = self.sample(build, tag, measured, info, t1 - t0, cpu0, cpu1)
        sample['dest_complete_s'] = t2 - t0
        if sc.postcopy:
            # Switchover to the last page placed: the destination completes
            sample['postcopy_tail_s'] = t2 - t0 - t_switch
        sample.update(self.first_second(trail, sample, sum(cpu0)))
        if info['status'] != 'completed' or dinfo['status'] != 'completed':
            sample['error'] = f"{info['status']}/{dinfo['status']}"
            src.close()
            dst.close()
            raise RuntimeError(f'{tag}: migration {sample["error"]}')
        if sc.postcopy:
            sample.update(self.postcopy_stats(dst, dinfo))
        if sc.backend == 'anon':
            # Whether the load cost the guest its huge pages
            sample['dst_anon_huge_mib'] = anon_huge_mib(dst.pid)
        if not sc.paused:
            sample.update(self.downtime_seen(src, dst, src_mark))
        sample.update(self.integrity(src, dst, measured))
        src.close()
        return dst, sample

    def save_restore(self, src, build, tag, measured):
        sc = self.scenario
        fdir = self.tmp if sc.direct_io else self.shm
        path = os.path.join(fdir, f'{tag}.img')
        # The saving guest may have been restored lazily (run chain)
        src.set_caps(dict(sc.caps, **{k: False for k in
                                      sc.restore_branch_caps})
                     if src.build == 'patched' else sc.caps, sc.params)
        cpu0 = src.cpu()
        t0 = time.monotonic()
        src.vm.cmd('migrate', uri=f'file:{path}')
        info = miglib.wait_migration(src.vm, timeout=600, poll=0.01)
        t_save = time.monotonic() - t0
        cpu_src = src.cpu() - cpu0
        if info['status'] != 'completed':
            raise RuntimeError(f'{tag}: save {info["status"]}')
        src_ram = src.ram_path
        lazy = build == 'patched' and bool(sc.restore_branch_caps)
        caps = dict(sc.caps, **(sc.restore_branch_caps if lazy else {}))
        first = None
        if lazy and sc.working_set:
            # The same image twice: the first restore records the
            # guest's faults beside it (x-working-set), the second
            # loads them first.  The guest touches the same pages in
            # both: it resumes from the same state.
            caps['x-working-set'] = True
            dst, first, _ = self.restore_once(build, tag, path, caps, lazy,
                                              src_ram, False)
            dst.close()
        dst, sample, dinfo = self.restore_once(build, tag, path, caps, lazy,
                                               src_ram, measured)
        if first:
            sample.update({f'{k}_no_prefetch': v for k, v in first.items()
                           if k.startswith(('restore_', 'touch_', 'faults'))})
        sample = dict(self.sample(build, tag, measured, info, t_save,
                                  (0, 0), (cpu_src, sample.pop('cpu_dst'))),
                      **sample)
        sample.update({'restore_lazy': lazy,
                       'file_bytes': os.path.getsize(path),
                       'file_fs': 'tmpfs' if fdir == self.shm else
                       'disk (build/)',
                       'restore_status': dinfo['status']})
        os.unlink(path)
        if os.path.exists(path + '.wss'):
            os.unlink(path + '.wss')
        if measured:
            sample.update(self.guest_verify(dst))
        src.close()
        return dst, sample

    def restore_once(self, build, tag, path, caps, lazy, src_ram, measured):
        """Restore the image at path into a new guest; returns it, the
        sample's restore fields and the incoming side's query-migrate."""
        sc = self.scenario
        self.warm_host_memory(measured)
        dst = Guest(self, build, tag, incoming=True, backend=sc.backend)
        dst.set_caps(caps, sc.params)
        cpu0 = dst.cpu()
        mark = dst.con.mark()
        wall0 = time.time()
        t0 = time.monotonic()
        dst.vm.cmd('migrate-incoming', uri=f'file:{path}')
        dinfo = miglib.wait_migration(dst.vm, timeout=600, poll=0.001)
        t_ready = time.monotonic() - t0
        # Compare before the restored guest runs and changes its RAM
        # (a lazy restore has not read it yet: the guest checks itself).
        verdict = {}
        t_cmp = time.monotonic()
        if measured and src_ram and dst.ram_path and not lazy:
            verdict = self.ram_verdict(src_ram, dst.ram_path)
        t_cmp = time.monotonic() - t_cmp
        dst.vm.cmd('cont')
        _, t_hb, _ = dst.con.wait_for(r'HB ', timeout=60, since=mark)
        # The first heartbeat's arrival, from migrate-incoming
        t_running = t_hb - t0 - t_cmp
        sample = {'restore_running_s': t_running,
                  'restore_ready_s': t_ready}
        sample['cpu_dst'] = dst.cpu() - cpu0
        if sc.touch:
            # Random pages of the test area, timed by the guest, while
            # a lazy restore still loads
            dst.con.send(f'touch {sc.touch}')
        if lazy:
            ev = dst.vm.event_wait('X_RAM_RESIDENT', timeout=600)
            if not ev:
                raise RuntimeError(f'{tag}: no X_RAM_RESIDENT')
            ts = ev['timestamp']
            data = ev['data']
            sample.update({
                'restore_resident_s': ts['seconds'] +
                ts['microseconds'] / 1e6 - wall0,
                'restore_resident_event_ms': data['ms'],
                'restore_resident_bytes': data['bytes'],
                'faults': data.get('faults'),
                'faults_first_s': data.get('faults-first-second'),
                'prefetched_pages': data.get('prefetched')})
            # The restore's CPU: until every page is resident
            sample['cpu_dst'] = dst.cpu() - cpu0
        if sc.touch:
            _, _, m = dst.con.wait_for(
                r'TOUCH n=(\d+) p50=([\d.]+) p90=([\d.]+) p99=([\d.]+) '
                r'max=([\d.]+) us mode=\w+ bad=(\d+) ms=(\d+)',
                timeout=300, since=mark)
            sample.update({'touch_n': int(m.group(1)),
                           'touch_p50_us': float(m.group(2)),
                           'touch_p90_us': float(m.group(3)),
                           'touch_p99_us': float(m.group(4)),
                           'touch_max_us': float(m.group(5)),
                           'touch_bad': int(m.group(6)),
                           'touch_ms': int(m.group(7))})
        dst.vm.cmd('stop')
        sample.update(verdict)
        return dst, sample, dinfo

    # -- metrics -----------------------------------------------------------

    def sample(self, build, tag, measured, info, wall, cpu0, cpu1):
        ram = info.get('ram', {})
        sc = self.scenario
        return {
            'scenario': sc.name, 'build': build, 'tag': tag,
            'measured': measured, 'accel': self.accel,
            'guest': self.guest_kind, 'backend': sc.backend,
            'ram_mib': sc.ram_mib, 'area_mib': sc.area_mib,
            'wall_s': wall,
            'total_time_ms': info.get('total-time'),
            'downtime_ms': info.get('downtime'),
            'setup_time_ms': info.get('setup-time'),
            'transferred_bytes': ram.get('transferred'),
            'gbps': (ram.get('transferred', 0) / wall / 1e9) if wall else 0,
            'qmp_mbps': ram.get('mbps'),
            'dirty_sync_count': ram.get('dirty-sync-count'),
            'src_cpu_s': cpu1[0] - cpu0[0],
            'dst_cpu_s': cpu1[1] - cpu0[1],
            'load1': bench_report.load()[0],
        }

    @staticmethod
    def first_second(trail, sample, cpu0):
        """Throughput and CPU per GB over the first second of the
        migration, and throughput after it, from the query-migrate polls.

        On these machines a destination runs at full speed only while it
        gets memory the outer host still backs; later it waits for the
        host (bench/README.md, "Reading the table").  The first second
        shows the engines' own speed; the rest shows the host's."""
        mark = next((p for p in trail if p[0] >= WINDOW_S), None)
        if not mark or not mark[1] or sample['wall_s'] <= mark[0]:
            return {}
        t, sent, cpu = mark
        out = {'gbps_first_s': sent / t / 1e9,
               'cpu_s_per_gb_first_s': (cpu - cpu0) / (sent / 1e9)}
        rest = (sample['transferred_bytes'] or 0) - sent
        if rest > 0:
            out['gbps_after_first_s'] = rest / (sample['wall_s'] - t) / 1e9
        return out

    def downtime_seen(self, src, dst, src_mark):
        """The guest's real pause: last heartbeat the source printed to
        first heartbeat the destination printed (guestcon.downtime_seen)."""
        out = guestcon.downtime_seen(src.con, dst.con, src_mark)
        limit = self.scenario.params.get('downtime-limit')
        if out and limit:
            out['downtime_limit_ms'] = limit
        return out

    def postcopy_stats(self, dst, dinfo):
        out = {}
        # Present since 10.1 with the postcopy-blocktime capability.
        if 'postcopy-blocktime' in dinfo:
            out['postcopy_blocktime'] = dinfo['postcopy-blocktime']
        if 'postcopy-latency' in dinfo:
            out['postcopy_latency_us'] = dinfo['postcopy-latency'] / 1000
        if 'postcopy-latency-dist' in dinfo:
            out['postcopy_latency_dist'] = dinfo['postcopy-latency-dist']
        _, _, m = dst.con.wait_for(
            r'TOUCH n=(\d+) p50=([\d.]+) p90=([\d.]+) p99=([\d.]+) '
            r'max=([\d.]+)', timeout=300)
        _, _, h = dst.con.wait_for(r'TOUCH-HIST (.*)', timeout=30)
        out['touch_hist_us'] = dict(kv.split('=') for kv in
                                    h.group(1).split())
        out.update({'touch_n': int(m.group(1)),
                    'touch_p50_us': float(m.group(2)),
                    'touch_p90_us': float(m.group(3)),
                    'touch_p99_us': float(m.group(4)),
                    'touch_max_us': float(m.group(5))})
        return out

    def guest_verify(self, g):
        paused = g.status() != 'running'
        if paused:
            g.vm.cmd('cont')
        m = g.con.verify(timeout=900)
        if paused:
            g.vm.cmd('stop')
        return {'verify_pages': int(m.group(1)),
                'verify_errors': int(m.group(2))}

    @staticmethod
    def ram_verdict(a, b):
        diff = ram_diff(a, b)
        return {'ram_identical': not diff,
                'ram_diff_pages': [hex(x) for x in diff[:16]]}

    def integrity(self, src, dst, measured):
        """For measured runs: RAM compared byte for byte when paused, and
        the guest's own verify.  A page broken by a warm-up or hand-over
        stays broken along the chain, so the next verify catches it."""
        out = {}
        miglib.wait_status(dst.vm, ('running', 'paused', 'postmigrate'))
        if not measured:
            return out
        if self.scenario.paused and src.ram_path and dst.ram_path:
            out.update(self.ram_verdict(src.ram_path, dst.ram_path))
        out.update(self.guest_verify(dst))
        return out

    # -- a scenario --------------------------------------------------------

    def direct_io_supported(self):
        """Can the filesystem of the bench's work directory do O_DIRECT?"""
        path = os.path.join(self.tmp, 'odirect-probe')
        try:
            fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_DIRECT, 0o600)
            os.close(fd)
            return True
        except OSError:
            return False
        finally:
            if os.path.exists(path):
                os.unlink(path)

    HUGE_PAGES = '/proc/sys/vm/nr_hugepages'

    def huge_setup(self, sc):
        """Reserve 2 MiB pages for two guests of the scenario and mount a
        hugetlbfs for their RAM; fail loudly if the host cannot."""
        need = 2 * sc.ram_mib // 2 + 16
        with open(self.HUGE_PAGES, encoding='ascii') as f:
            self.huge_pages_before = int(f.read())
        with open(self.HUGE_PAGES, 'w', encoding='ascii') as f:
            f.write(str(self.huge_pages_before + need))
        with open('/proc/meminfo', encoding='ascii') as f:
            free = next(int(line.split()[1]) for line in f
                        if line.startswith('HugePages_Free:'))
        if free < need:
            self.huge_teardown()
            raise RuntimeError(f'cannot reserve {need} huge pages of 2 MiB '
                               f'(free: {free})')
        self.huge_dir = tempfile.mkdtemp(prefix='bench-huge-', dir=self.tmp)
        if subprocess.run(['mount', '-t', 'hugetlbfs', '-o', 'pagesize=2M',
                           'none', self.huge_dir], check=False).returncode:
            os.rmdir(self.huge_dir)
            self.huge_dir = None
            self.huge_teardown()
            raise RuntimeError('cannot mount a hugetlbfs of 2 MiB pages')

    def huge_teardown(self):
        if self.huge_dir:
            subprocess.run(['umount', self.huge_dir], check=False)
            os.rmdir(self.huge_dir)
            self.huge_dir = None
        if self.huge_pages_before is not None:
            with open(self.HUGE_PAGES, 'w', encoding='ascii') as f:
                f.write(str(self.huge_pages_before))
            self.huge_pages_before = None

    def run_scenario(self, sc, reps):
        if sc.backend != 'hugetlbfs':
            self.run_scenario_on(sc, reps)
            return
        self.huge_setup(sc)
        try:
            self.run_scenario_on(sc, reps)
        finally:
            self.huge_teardown()

    def run_scenario_on(self, sc, reps):
        self.scenario = sc
        if sc.direct_io and not self.direct_io_supported():
            raise RuntimeError('skipped: the filesystem of build/ has no '
                               'O_DIRECT')
        print(f'bench: {sc.name}: {sc.title} [{self.guest_kind} guest, '
              f'{self.accel}, {sc.ram_mib} MiB, backend {sc.backend}]',
              flush=True)
        order = ['vanilla', 'patched']
        cur = self.boot(order[0])
        n = 0
        try:
            # Warm-up: one unmeasured migration on each build.
            plan = [(b, False) for b in order]
            for i in range(reps):
                pair = order if i % 2 == 0 else order[::-1]
                plan += [(b, True) for b in pair]
            for build, measured in plan:
                if cur.build != build:
                    n += 1
                    cur, s = self.migrate(cur, build, f'{build}-{n}', False)
                    s['handover'] = True
                    self.record(s)
                n += 1
                cur, s = self.migrate(cur, build, f'{build}-{n}', measured)
                self.record(s)
        finally:
            cur.close()

    def record(self, s):
        self.samples.append(s)
        kind = 'measured' if s['measured'] else (
            'hand-over' if s.get('handover') else 'warm-up')
        extra = ''
        if 'downtime_seen_ms' in s:
            extra += f" seen {s['downtime_seen_ms']:.0f} ms"
        if 'restore_running_s' in s:
            extra += f" restore {s['restore_running_s']:.3f} s"
        if 'restore_resident_s' in s:
            extra += f" resident {s['restore_resident_s']:.2f} s"
        if 'touch_p50_us' in s:
            extra += f" touch p50 {s['touch_p50_us']} us"
        ok = s.get('verify_errors', 0) == 0 and s.get('ram_identical', True)
        print(f"bench:   {s['tag']:<12} {kind:<9} wall {s['wall_s']:6.2f} s "
              f"{s['gbps']:5.2f} GB/s downtime {s['downtime_ms']} ms"
              f"{extra} cpu {s['src_cpu_s']:.2f}+{s['dst_cpu_s']:.2f} s "
              f"integrity {'OK' if ok else 'FAILED'}", flush=True)


def build_everything():
    for cmd in (['make', '-s', '-C', TOP, 'build', 'vanilla', 'guest'],):
        subprocess.run(cmd, check=True)


def free_page_reporting():
    """Does this kernel hand free memory back to an outer host?"""
    with open('/proc/cmdline', encoding='ascii') as f:
        if 'page_reporting' in f.read():
            return True
    return os.path.exists('/sys/module/page_reporting')


def machine_limits(tmp):
    exe = os.path.join(tmp, 'limits')
    subprocess.run(['gcc', '-O2', '-o', exe,
                    os.path.join(TOP, 'bench', 'limits.c')], check=True)
    out = subprocess.run([exe, '1024'], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def exit_on_signal(signum, _frame):
    """SIGTERM and SIGHUP end the run as Ctrl-C does: the guests quit and
    the guest RAM files on /dev/shm are removed."""
    sys.exit(128 + signum)


def main():
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_on_signal)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true',
                    help='every scenario with guests at 1/8 size, 3 '
                    'repetitions (about 3 minutes)')
    ap.add_argument('--reps', type=int, help='measured runs per build')
    ap.add_argument('--scale', type=float,
                    help='multiply guest sizes by this factor')
    ap.add_argument('--only', help='comma-separated scenario names')
    ap.add_argument('--guest', choices=('linux', 'bare'),
                    help='test guest (default: see miglib.pick_guest())')
    ap.add_argument('--accel', choices=('kvm', 'tcg'))
    ap.add_argument('--no-build', action='store_true')
    ap.add_argument('--host-memory', choices=('cold', 'warm', 'auto'),
                    default='cold',
                    help='warm: before each measured destination starts, '
                    'touch and free as much memory as the guest has; '
                    'auto: warm where the kernel reports free pages to an '
                    'outer host; cold (default): neither (see '
                    'bench/README.md, "Host memory")')
    opts = ap.parse_args()
    reps = opts.reps or (3 if opts.quick else 5)
    scale = opts.scale or (0.125 if opts.quick else 1.0)
    chosen = scenarios()
    if opts.only:
        names = opts.only.split(',')
        chosen = [s for s in chosen if s.name in names]
    if not opts.no_build:
        build_everything()

    bench = Bench(opts)
    started = time.time()
    load_start = bench_report.load()
    # The binaries this run measures (hashed before, checked after)
    bins = bench_report.binaries()
    limits = machine_limits(bench.tmp)
    limits['host_memory'] = bench.host_memory
    print(f'bench: machine limits: {json.dumps(limits)}', flush=True)
    errors = []
    sc = None
    try:
        for sc in chosen:
            try:
                bench.run_scenario(sc.scaled(scale), reps)
            except (RuntimeError, TimeoutError, EOFError) as e:
                errors.append(f'{sc.name}: {e}')
                print(f'bench: {sc.name}: FAILED: {e}', flush=True)
    except (KeyboardInterrupt, SystemExit) as e:
        # Keep what was measured: the file says the run was cut short,
        # and scenarios not reached are missing from it.
        where = sc.name if sc else 'the first scenario'
        errors.append(f'interrupted ({type(e).__name__}) during {where}; '
                      'later scenarios not run')
        print(f'bench: interrupted during {where}', flush=True)
    finally:
        bench.cleanup()
    if bench_report.binaries() != bins:
        errors.append('a QEMU binary changed during the run')
    result = bench_report.collect(bench.samples, limits, errors, started,
                                  reps, scale, opts.quick, load_start, bins)
    paths = bench_report.write(result, RESULTS)
    for p in paths:
        print(f'bench: wrote {os.path.relpath(p, TOP)}')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
