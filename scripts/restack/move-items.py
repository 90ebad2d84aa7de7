#!/usr/bin/env python3
"""Move top-level C items (functions, variables, macros...) from one file
to another, text unchanged.

    move-items.py SRC DST NAME... [--preamble FILE] [--before NAME]

Items keep their leading comments.  A NAME that appears twice in SRC (a
forward declaration and the definition) moves both.  DST is created from
--preamble when it does not exist; items go at its end, or before the
item --before names (its trailer, e.g. an #endif, stays last).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import citems  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('src')
    ap.add_argument('dst')
    ap.add_argument('names', nargs='+')
    ap.add_argument('--preamble')
    ap.add_argument('--before')
    a = ap.parse_args()
    src = citems.parse(open(a.src).read())
    want = set(a.names)
    moved = [i for i in src if i.name in want]
    missing = want - {i.name for i in moved}
    if missing:
        sys.exit(f'move-items: not in {a.src}: {" ".join(sorted(missing))}')
    keep = [i for i in src if i.name not in want]
    if os.path.exists(a.dst):
        dst = citems.parse(open(a.dst).read())
    else:
        dst = citems.parse(open(a.preamble).read()) if a.preamble else []
    text = ''.join(i.text for i in moved)
    if not text.startswith('\n'):
        text = '\n' + text
    out = []
    placed = False
    for i in dst:
        if not placed and (i.name == a.before or
                           (a.before is None and i.name == '<trailer>')):
            out.append(text)
            placed = True
        out.append(i.text)
    if not placed:
        out.append(text)
    with open(a.dst, 'w') as f:
        f.write(''.join(out))
    with open(a.src, 'w') as f:
        f.write(''.join(i.text for i in keep))
    print(f'moved {len(moved)} items, {text.count(chr(10))} lines')


if __name__ == '__main__':
    main()
