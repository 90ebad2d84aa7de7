#!/usr/bin/env python3
"""Split the destination-seen latency of each postcopy fault in two, from
a traced postcopy-multifd2 run of the branch (trace-dst.log.gz: the
destination, events postcopy_ram_fault_thread_request and
postcopy_page_req_del; trace-src.log.gz: its source, event
postcopy_preempt_send_host_page; -msg timestamp=on).  Rows are (fault to
page placed, fault to source sending, source sending to placed) in us;
trace-split.txt is the output.  Usage: trace-split.py DST.gz SRC.gz"""
import re,datetime,sys
def ts(s): return datetime.datetime.strptime(s[:26],'%Y-%m-%dT%H:%M:%S.%f').timestamp()
import gzip
dst, src = (gzip.open(a, "rt") for a in sys.argv[1:3])
fault={}; hva2off={}; dl={}
for l in dst:
    m=re.match(r'(\S+) postcopy_ram_fault_thread_request Request for HVA=0x([0-9a-f]+) rb=\S+ offset=0x([0-9a-f]+)',l)
    if m:
        a=int(m.group(2),16)&~0xfff; off=int(m.group(3),16)>>12
        fault[off]=ts(m.group(1)); hva2off[a]=off; continue
    m=re.match(r'(\S+) postcopy_page_req_del resolved page req 0x([0-9a-f]+)',l)
    if m:
        a=int(m.group(2),16)
        if a in hva2off: dl[hva2off[a]]=ts(m.group(1))
send={}
t_first=min(fault.values())
for l in src:
    m=re.match(r'(\S+) postcopy_preempt_send_host_page ramblock ram0 offset 0x([0-9a-f]+)',l)
    if m:
        t=ts(m.group(1))
        if t>=t_first-1: send.setdefault(int(m.group(2),16),t)
rows=[]
for off,t in fault.items():
    if off in dl:
        rows.append(((dl[off]-t)*1e6, ((send.get(off,t)-t)*1e6), (dl[off]-send.get(off,t))*1e6))
rows.sort()
n=len(rows); print('n',n,'with send',sum(1 for o in fault if o in send))
for p in (50,90,99): print('p%d'%p, [round(x) for x in rows[int(n*p/100)-1]])
slow=[r for r in rows if r[0]>500]
print('slow',len(slow))
import statistics
print('slow: median fault->send', round(statistics.median(r[1] for r in slow)), 'send->del', round(statistics.median(r[2] for r in slow)))
print('slow where fault->send > 300:', sum(1 for r in slow if r[1]>300), ' send->del>300:', sum(1 for r in slow if r[2]>300))
fast=[r for r in rows if r[0]<=500]
print('fast: median fault->send', round(statistics.median(r[1] for r in fast)), 'send->del', round(statistics.median(r[2] for r in fast)))
