#!/usr/bin/env python3
"""WIP: time from migrate-incoming to a running guest, eager against lazy
restore of one mapped-ram image (issue 24 first cut)."""
import os, sys, time, json
sys.path.insert(0, '/work/main/scripts')
import miglib
from qemu.machine import QEMUMachine

BIN = '/work/main/build/qemu/qemu-system-x86_64'
MIB = int(os.environ.get('MIB', '4096'))
DATA_MIB = MIB * 7 // 8
tmp = '/dev/shm/lazy-bench'
os.makedirs(tmp, exist_ok=True)
img = f'{tmp}/img'
src_ram = f'{tmp}/src-ram'

def vm(name, ram_args, incoming):
    args = ['-accel', 'kvm', '-accel', 'tcg', '-nodefaults', '-S', '-m', f'{MIB}M',
            '-machine', 'pc,memory-backend=ram0'] + ram_args
    if incoming:
        args += ['-incoming', 'defer']
    m = QEMUMachine(BIN, args=args, name=name, base_temp_dir=tmp, log_dir=tmp)
    m.launch()
    return m

if not os.path.exists(img):
    src = vm('src', ['-object', f'memory-backend-file,id=ram0,size={MIB}M,mem-path={src_ram},share=on'], False)
    page = bytearray(4096)
    with open(src_ram, 'r+b') as f:
        chunk = bytearray(os.urandom(1 << 20))
        for i in range(DATA_MIB):
            chunk[0:8] = i.to_bytes(8, 'little')
            f.seek(i << 20); f.write(chunk)
    src.cmd('migrate-set-capabilities', capabilities=[{'capability': 'mapped-ram', 'state': True}])
    t = time.monotonic()
    src.cmd('migrate', uri=f'file:{img}')
    miglib.wait_migration(src)
    print(f'save: {time.monotonic() - t:.2f} s, file {os.path.getsize(img) >> 20} MiB')
    src.shutdown()
    os.unlink(src_ram)

res = {}
for mode in sys.argv[1:] or ['eager', 'lazy', 'eager', 'lazy']:
    dst = vm('dst', ['-object', f'memory-backend-ram,id=ram0,size={MIB}M'], True)
    caps = [{'capability': 'mapped-ram', 'state': True}, {'capability': 'events', 'state': True}]
    if mode == 'lazy':
        caps.append({'capability': 'postcopy-ram', 'state': True})
    dst.cmd('migrate-set-capabilities', capabilities=caps)
    dst.cmd('migrate-incoming', uri=f'file:{img}')
    t0 = time.monotonic()
    # -S: the guest may run once the device state is loaded; cont then
    while True:
        st = dst.cmd('query-status')['status']
        mst = dst.cmd('query-migrate').get('status')
        if st != 'inmigrate' or mst in ('postcopy-active', 'completed', 'failed'):
            break
        time.sleep(0.0005)
    t_loaded = time.monotonic() - t0
    dst.cmd('cont')
    t_run = time.monotonic() - t0
    info = miglib.wait_migration(dst, poll=0.005)
    t_done = time.monotonic() - t0
    print(f'{mode}: devices loaded {t_loaded*1000:.1f} ms, running {t_run*1000:.1f} ms, '
          f'resident/completed {t_done*1000:.0f} ms, status {info.get("status")}')
    res.setdefault(mode, []).append((t_loaded, t_run, t_done))
    dst.shutdown()
print(json.dumps(res))
