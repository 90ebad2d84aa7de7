import os, sys, time, glob, ctypes, struct
slice_ns = int(sys.argv[1]); names = tuple(sys.argv[2].split(','))
libc = ctypes.CDLL(None, use_errno=True)
def setslice(tid):
    attr = struct.pack('IIQiIQQQII', 56, 0, 0, 0, 0, slice_ns, 0, 0, 0, 0)
    buf = ctypes.create_string_buffer(attr)
    r = libc.syscall(314, tid, buf, 0)
    return r, ctypes.get_errno()
done = set()
while True:
    for comm in glob.glob('/proc/[0-9]*/task/[0-9]*/comm'):
        try:
            name = open(comm).read().strip()
        except OSError:
            continue
        if name.startswith(names):
            tid = int(comm.split('/')[4])
            if tid in done: continue
            r, e = setslice(tid)
            if r: print('slicer: failed', tid, name, e, flush=True)
            done.add(tid)
    time.sleep(0.01)
