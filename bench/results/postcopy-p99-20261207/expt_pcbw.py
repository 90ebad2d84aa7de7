"""expt.py plus: postcopy background limited to EXPT_PCBW bytes/s until the
guest's touches are done (request-path floor)."""
import os, sys
sys.path.insert(0, '/work/main/scripts')
import bench, miglib
bw = int(os.environ['EXPT_PCBW'])
last = {}
orig_init = bench.Guest.__init__
def init(self, b, build, tag, incoming=False, backend='anon'):
    orig_init(self, b, build, tag, incoming, backend)
    if incoming:
        last['dst'] = self
bench.Guest.__init__ = init
orig_caps = bench.Guest.set_caps
def set_caps(self, caps, params):
    orig_caps(self, caps, dict(params, **{'max-postcopy-bandwidth': bw}))
bench.Guest.set_caps = set_caps
orig_wait = miglib.wait_migration
def wait_migration(vm, **kw):
    d = last.get('dst')
    if d is not None and vm is not d.vm:
        d.con.wait_for(r'TOUCH n=', timeout=120)
        vm.cmd('migrate-set-parameters', **{'max-postcopy-bandwidth': 0})
    return orig_wait(vm, **kw)
miglib.wait_migration = wait_migration
bench.RESULTS = '/tmp/expt/results'
sys.exit(bench.main())
