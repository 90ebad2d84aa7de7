#!/usr/bin/env python3
"""Print the switchover of one traced postcopy-multifd4 run of the branch:
source (S) and destination (D) trace events, in ms from the source's
postcopy_start.  Usage: timeline.py SRC.log.gz DST.log.gz"""
import datetime
import gzip
import re
import sys


def ts(s):
    return datetime.datetime.strptime(s[:26],
                                      '%Y-%m-%dT%H:%M:%S.%f').timestamp()


ev = []
for path, side in ((sys.argv[1], 'S'), (sys.argv[2], 'D')):
    with gzip.open(path, 'rt') as f:
        for line in f:
            m = re.match(r'(\S+Z) (\S+)(.*)', line)
            if m and not (m.group(2) == 'savevm_section_start' and
                          'ram' not in m.group(3)):
                ev.append((ts(m.group(1)), side, m.group(2),
                           m.group(3)[:70]))
ev.sort()
t0 = [e[0] for e in ev if e[1] == 'S' and e[2] == 'postcopy_start'][-1]
for e in ev:
    if t0 - 0.001 < e[0] < t0 + 0.06:
        print(f'{(e[0] - t0) * 1000:8.2f} {e[1]} {e[2]} {e[3]}')
