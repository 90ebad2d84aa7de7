#!/usr/bin/env python3
"""Move the trace events of one module from migration/trace-events to
migration/ram/trace-events, as the final tree groups them.

    move-trace.py FINAL_RAM_TRACE_EVENTS MODULE.c

The events listed under "# MODULE.c" in the final file that are in
migration/trace-events move, lines unchanged, under that heading."""

import sys

final, module = sys.argv[1], sys.argv[2]
names = []
sec = None
for ln in open(final):
    if ln.startswith('# ') and ln.strip().endswith('.c'):
        sec = ln[2:].strip()
    elif sec == module and ln.strip() and not ln.startswith('#'):
        names.append(ln.split('(')[0])
src = open('migration/trace-events').read().splitlines(keepends=True)
moved = [ln for ln in src if ln.split('(')[0] in names]
keep = [ln for ln in src if ln.split('(')[0] not in names]
open('migration/trace-events', 'w').write(''.join(keep))
if moved:
    with open('migration/ram/trace-events', 'a') as f:
        f.write(f'\n# {module}\n' + ''.join(moved))
print(f'{len(moved)} of {len(names)} events moved')
