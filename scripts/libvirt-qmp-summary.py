#!/usr/bin/python3
"""Summarise the QMP traffic of one libvirtd debug log (check-libvirt.sh).

Usage: libvirt-qmp-summary.py LABEL FIRST-LINE LOG

From line FIRST-LINE of LOG on: the non-query commands libvirt sent, in
order with their arguments (migrate-set-capabilities as the list of
capabilities set on), the query-*/qom-* commands counted, the MIGRATION
events with their times, and the branch's X_RAM_RESIDENT events (a lazy
restore's RAM all resident) with their data; every line starts with
LABEL.
"""

import json
import re
import sys

# libvirt's monitor probes (info level): a message may end in CR LF, so
# the JSON is the rest of the line, and " fd=N" follows on the next one.
SEND = re.compile(r'QEMU_MONITOR_SEND_MSG: mon=\S+ msg=(\{.*\})\s*$')
FD_LINE = re.compile(r'^ fd=(-?\d+)')
EVENT = re.compile(r'QEMU_MONITOR_RECV_EVENT: mon=\S+ event=(\{.*\})\s*$')
MAX_ARGS = 400


def json_of(regex, line):
    """The JSON object that regex finds in line, or None."""
    m = regex.search(line)
    if not m:
        return None
    try:
        return json.loads(m.group(1))
    except ValueError:
        return None


def is_query(name):
    return (name.startswith(('query-', 'qom-')) or
            name == 'device-list-properties')


def describe(name, args):
    """One command as a line of the summary."""
    if name == 'migrate-set-capabilities' and args:
        caps = args.get('capabilities', [])
        on = [c['capability'] for c in caps if c.get('state')]
        return f'{name} on=[{",".join(on)}] ({len(caps) - len(on)} others off)'
    if not args:
        return name
    text = json.dumps(args, separators=(',', ':'))
    if len(text) > MAX_ARGS:
        text = text[:MAX_ARGS] + '...'
    return f'{name} {text}'


def event_time(ev):
    ts = ev.get('timestamp', {})
    return ts.get('seconds', 0) + ts.get('microseconds', 0) / 1e6


def summarise(lines):
    """(commands as [text, count] runs, query counts, MIGRATION states
    with their times, X_RAM_RESIDENT events as (time, data)) of a piece
    of a daemon log."""
    out, queries, events, resident = [], {}, [], []
    for i, line in enumerate(lines):
        cmd = json_of(SEND, line)
        if cmd is not None:
            name = cmd.get('execute', cmd.get('exec-oob', '?'))
            if is_query(name):
                queries[name] = queries.get(name, 0) + 1
                continue
            text = describe(name, cmd.get('arguments'))
            fd = FD_LINE.match(lines[i + 1]) if i + 1 < len(lines) else None
            if fd and int(fd.group(1)) >= 0:
                text += ' (passes an fd)'
            if out and out[-1][0] == text:
                out[-1][1] += 1
            else:
                out.append([text, 1])
            continue
        ev = json_of(EVENT, line)
        if ev is not None and ev.get('event') == 'X_RAM_RESIDENT':
            resident.append((event_time(ev), ev.get('data', {})))
        if ev is None or ev.get('event') != 'MIGRATION':
            continue
        status = ev.get('data', {}).get('status')
        t = event_time(ev)
        if status and (not events or events[-1][0] != status):
            events.append((status, t))
    return out, queries, events, resident


def times(n):
    return f' (x{n})' if n > 1 else ''


def main():
    label, start, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    try:
        with open(path, errors='replace', encoding='utf-8') as f:
            lines = f.readlines()[start:]
    except OSError:
        lines = []
    out, queries, events, resident = summarise(lines)
    for text, n in out:
        print(f'  {label}: {text}{times(n)}')
    if queries:
        counted = ', '.join(f'{k} x{v}' if v > 1 else k
                            for k, v in queries.items())
        print(f'  {label}: queries: {counted}')
    if events:
        t0 = events[0][1]
        print(f'  {label}: MIGRATION events (s): ' +
              ' '.join(f'{st}@{t - t0:.1f}' for st, t in events))
    for t, data in resident:
        at = f'@{t - events[0][1]:.1f}' if events else ''
        text = json.dumps(data, separators=(',', ':'))
        print(f'  {label}: X_RAM_RESIDENT{at} {text}')


if __name__ == '__main__':
    main()
