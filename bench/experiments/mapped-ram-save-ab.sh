#!/bin/bash
# ab.sh BIN MULTIFD: save 2 GiB of random shm RAM with mapped-ram, print time
BIN=$1; MF=$2
rm -f /dev/shm/mr-img
sock=/tmp/mr/qmp.sock; rm -f $sock
$BIN -M pc,memory-backend=ram0 -object memory-backend-file,id=ram0,size=2G,mem-path=/dev/shm/mr-ram,share=on \
  -m 2G -S -display none -nodefaults -qmp unix:$sock,server=on,wait=off -accel tcg &
pid=$!
sleep 1
python3 - "$sock" "$MF" "$pid" <<'PY'
import sys, time, json, socket, os
sys.path.insert(0, '/work/main/qemu/python')
from qemu.qmp.legacy import QEMUMonitorProtocol
q = QEMUMonitorProtocol(sys.argv[1]); q.connect()
caps=[{'capability':'mapped-ram','state':True}]
if sys.argv[2]=='1': caps.append({'capability':'multifd','state':True})
q.cmd('migrate-set-capabilities', capabilities=caps)
q.cmd('migrate-set-parameters', **{'max-bandwidth': 100<<30})
if sys.argv[2]=='1': q.cmd('migrate-set-parameters', **{'multifd-channels':2})
def cpu():
    with open(f'/proc/{sys.argv[3]}/stat') as f: v=f.read().split(')')[1].split()
    return (int(v[11])+int(v[12]))/os.sysconf('SC_CLK_TCK')
c0=cpu(); t0=time.time()
q.cmd('migrate', uri='file:/dev/shm/mr-img')
while True:
    s=q.cmd('query-migrate')
    if s.get('status') in ('completed','failed'): break
    time.sleep(0.02)
print(s['status'], 'wall %.2f s cpu %.2f s total-time %s' % (time.time()-t0, cpu()-c0, s.get('total-time')))
q.cmd('quit')
PY
wait $pid
