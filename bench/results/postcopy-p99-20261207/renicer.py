import os, sys, time, glob
nice = int(sys.argv[1]); idle = nice >= 100
done = set()
while True:
    for comm in glob.glob('/proc/[0-9]*/task/[0-9]*/comm'):
        try:
            name = open(comm).read().strip()
        except OSError:
            continue
        if name.startswith(('mig/src/send_', 'mig/dst/recv_')):
            tid = int(comm.split('/')[4])
            if tid in done: continue
            try:
                if idle:
                    os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
                else:
                    os.setpriority(os.PRIO_PROCESS, tid, nice)
                done.add(tid)
            except OSError:
                pass
    time.sleep(0.02)
