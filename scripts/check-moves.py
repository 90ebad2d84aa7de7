#!/usr/bin/env python3
"""Check that a patch only moves code.

A move patch of the series (named in patches/moves, one file name per
line) may take lines out of one file and put the same lines into
another, and add only what the moved code needs to build where it now
lives: #include lines, include guards, the new file's header comment,
declarations (prototypes, extern, typedef forward declarations) in
headers, comment lines, blank lines, build-system lines (meson.build,
MAINTAINERS) and the "# file.c" lines of trace-events.  Any other added line must be a removed line, character
for character apart from trailing white space; so dropping "static",
renaming or rewording a line is not a move.

For each patch the script prints the added lines that are not moves,
with their file, and a verdict; the exit status is 1 if any patch fails.

Usage: check-moves.py [--list FILE] [PATCH...]
       (default: every patch that patches/moves names, in patches/)
"""

import argparse
import collections
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATCH_DIR = os.environ.get('PATCH_DIR', os.path.join(TOP, 'patches'))

BUILD_FILES = re.compile(r'(^|/)(meson\.build|MAINTAINERS|Makefile[^/]*)$')
ALLOWED_ANYWHERE = [
    re.compile(r'^\s*$'),                               # blank
    re.compile(r'^\s*#\s*include\s'),                   # includes
    re.compile(r'^\s*(/\*|\*|\*/|//)'),                 # comment lines
]
# In headers: guards, and declarations that end in ";" on one line or
# continue a prototype over several lines.
ALLOWED_IN_HEADER = [
    re.compile(r'^\s*#\s*(ifndef|define|endif)\b'),
    re.compile(r'^[^{}=]*\)\s*;\s*$'),                  # end of a prototype
    re.compile(r'^(extern\s+)?[A-Za-z_][\w\s\*]*\([^;{}=]*,?\s*$'),  # start
    re.compile(r'^\s+[^;{}=]*[,)]\s*;?\s*$'),           # continuation
    re.compile(r'^extern\s[^=]*;\s*$'),
    re.compile(r'^typedef\s+(struct|union|enum)\s+\w+\s+\w+;\s*$'),
    re.compile(r'^(struct|union|enum)\s+\w+;\s*$'),
]


def parse(patch_text):
    """(file, sign, line) for every added and removed line of a patch."""
    out = []
    cur = None
    for line in patch_text.splitlines():
        if line.startswith('diff --git '):
            cur = None
        elif line.startswith('+++ '):
            cur = line[4:]
            cur = cur[2:] if cur.startswith('b/') else cur
        elif line.startswith('--- '):
            continue
        elif cur and line[:1] and line[:1] in '+-' and \
                not line.startswith(('+++', '---')):
            out.append((cur, line[0], line[1:].rstrip()))
    return out


def allowed(path, line):
    if BUILD_FILES.search(path):
        return True
    if os.path.basename(path) == 'trace-events' and line.startswith('#'):
        return True
    if any(p.search(line) for p in ALLOWED_ANYWHERE):
        return True
    if path.endswith('.h') and any(p.search(line) for p in ALLOWED_IN_HEADER):
        return True
    return False


def check(name, text):
    """The added lines of patch @name that are neither moved nor allowed."""
    lines = parse(text)
    removed = collections.Counter(ln for _, s, ln in lines if s == '-')
    bad = []
    for path, sign, ln in lines:
        if sign != '+':
            continue
        if removed[ln] > 0:
            removed[ln] -= 1
            continue
        if not allowed(path, ln):
            bad.append((path, ln))
    moved = sum(1 for _, s, _ in lines if s == '+') - len(bad)
    return moved, bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--list', default=os.path.join(PATCH_DIR, 'moves'),
                    help='file naming the move patches (default: '
                    'patches/moves)')
    ap.add_argument('patches', nargs='*')
    opts = ap.parse_args()
    patches = opts.patches
    if not patches:
        if not os.path.exists(opts.list):
            print(f'check-moves: no {opts.list}')
            return 1
        with open(opts.list) as f:
            patches = [os.path.join(PATCH_DIR, ln.strip()) for ln in f
                       if ln.strip() and not ln.startswith('#')]
    failed = 0
    for p in patches:
        with open(p, errors='replace') as f:
            moved, bad = check(p, f.read())
        name = os.path.basename(p)
        if bad:
            failed += 1
            print(f'not ok {name}: {len(bad)} added lines are not moves '
                  f'({moved} are)')
            for path, ln in bad[:40]:
                print(f'    {path}: +{ln}')
            if len(bad) > 40:
                print(f'    ... and {len(bad) - 40} more')
        else:
            print(f'ok {name}: {moved} lines moved or allowed')
    print(f'{len(patches) - failed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
