"""Experiment driver: bench.py with results in /tmp and optional trace args."""
import os, sys
sys.path.insert(0, '/work/main/scripts')
import bench, miglib
bench.RESULTS = os.environ.get('EXPT_OUT', '/tmp/expt/results')
os.makedirs(bench.RESULTS, exist_ok=True)
orig = bench.Guest.__init__
def init(self, b, build, tag, incoming=False, backend='anon'):
    extra = os.environ.get('EXPT_TRACE_DST' if incoming else 'EXPT_TRACE_SRC')
    print("EXPT", build, tag, incoming, extra, flush=True)
    if os.environ.get('EXPT_NAMES'):
        ga0 = b.guest_args
        b.guest_args = lambda: ga0() + ['-name', 'debug-threads=on']
    if extra and build == 'patched':
        ga = b.guest_args
        b.guest_args = lambda: ga() + ['-msg', 'timestamp=on'] + [a for e in extra.split(',') for a in ('-trace', e)] + ['-D',
                                       f'/tmp/expt/trace-{tag}-{"dst" if incoming else "src"}.log']
        try:
            orig(self, b, build, tag, incoming, backend)
        finally:
            b.guest_args = ga
    else:
        orig(self, b, build, tag, incoming, backend)
    if os.environ.get('EXPT_NAMES'):
        b.guest_args = ga0
bench.Guest.__init__ = init
sys.exit(bench.main())
