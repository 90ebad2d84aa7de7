#!/usr/bin/env python3
"""Pick hunks of a diff, to split a working tree's changes into commits.

    git diff -U0 | pick-hunks.py [--file REGEX]... [--match REGEX]... \
        [--invert] > part.patch
    git apply --cached --unidiff-zero part.patch

A hunk is picked when its file matches one of --file (default: any)
and, if --match is given, its text matches one of --match.  New files
(whole-file hunks) are picked by --file alone.
"""

import argparse
import re
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--file', action='append', default=[])
    ap.add_argument('--match', action='append', default=[])
    ap.add_argument('--invert', action='store_true')
    a = ap.parse_args()
    text = sys.stdin.read()
    files = re.split(r'(?m)^(?=diff --git )', text)
    out = []
    for f in files:
        if not f.startswith('diff --git'):
            continue
        m = re.match(r'diff --git a/(\S+) b/(\S+)', f)
        path = m.group(2)
        parts = re.split(r'(?m)^(?=@@ )', f)
        head, hunks = parts[0], parts[1:]
        fsel = not a.file or any(re.search(x, path) for x in a.file)
        picked = []
        for h in hunks:
            sel = fsel and (not a.match or
                            any(re.search(x, h.split("\n", 1)[1]) for x in a.match))
            if sel != a.invert:
                picked.append(h)
        if picked:
            out.append(head + ''.join(picked))
    sys.stdout.write(''.join(out))


if __name__ == '__main__':
    main()
