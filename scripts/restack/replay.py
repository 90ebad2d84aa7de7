#!/usr/bin/env python3
"""Apply an old patch of the series to the restacked tree.

    replay.py PATCH [--renames FILE]

The old patch was written against the old layout: its hunks for
migration/ram.c (and ram/*) may now belong to another file of
migration/ram/, and names may have changed.  The rename map ("old new"
per line) is applied to the patch text first.  Then each file's diff is
tried with `git apply --3way`; hunks that do not apply are tried one by
one against every file of migration/ (same file first), with
`git apply` of the hunk re-targeted; what still does not apply is
written to PATCH.rej.N for a human.  Prints a line per hunk.
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile


def git_apply(text, *args):
    with tempfile.NamedTemporaryFile('w', suffix='.patch', delete=False) as f:
        f.write(text)
        name = f.name
    try:
        r = subprocess.run(['git', 'apply', *args, name],
                           capture_output=True, text=True)
        return r.returncode == 0, r.stderr
    finally:
        os.unlink(name)


def split_files(text):
    parts = re.split(r'(?m)^(?=diff --git )', text)
    return [p for p in parts if p.startswith('diff --git')]


def retarget(head, path):
    head = re.sub(r'(?m)^diff --git a/\S+ b/\S+',
                  f'diff --git a/{path} b/{path}', head)
    head = re.sub(r'(?m)^--- a/\S+', f'--- a/{path}', head)
    head = re.sub(r'(?m)^\+\+\+ b/\S+', f'+++ b/{path}', head)
    head = re.sub(r'(?m)^index .*\n', '', head)
    return head


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('patch')
    ap.add_argument('--renames')
    a = ap.parse_args()
    text = open(a.patch).read()
    if a.renames:
        for ln in open(a.renames):
            if ln.strip():
                old, new = ln.split()
                text = re.sub(r'\b%s\b' % re.escape(old), new, text)
    body = text[text.index('diff --git'):]
    body = re.sub(r'(?m)^-- \n[\s\S]*$', '', body)
    rej = 0
    for fd in split_files(body):
        m = re.match(r'diff --git a/(\S+) b/(\S+)', fd)
        path = m.group(2)
        ok, err = git_apply(fd, '--recount')
        if ok:
            print(f'ok   {path}')
            continue
        if '/dev/null' in fd.split('@@')[0] or '@@' not in fd:
            print(f'FAIL {path} (new or binary file): {err.strip()[:200]}')
            rej += 1
            open(f'{a.patch}.rej.{rej}', 'w').write(fd)
            continue
        parts = re.split(r'(?m)^(?=@@ )', fd)
        head, hunks = parts[0], parts[1:]
        cands = [path] + sorted(set(glob.glob('migration/ram/*.[ch]') +
                                    ['migration/ram.c', 'migration/ram.h'])
                                - {path})
        for h in hunks:
            done = None
            for c in cands:
                if not os.path.exists(c):
                    continue
                ok, _ = git_apply(retarget(head, c) + h, '--recount')
                if ok:
                    done = c
                    break
            if done:
                print(f'ok   {path} hunk -> {done}')
            else:
                rej += 1
                open(f'{a.patch}.rej.{rej}', 'w').write(retarget(head, path)
                                                       + h)
                print(f'REJ  {path} hunk {h.splitlines()[0]} '
                      f'-> {a.patch}.rej.{rej}')
    sys.exit(1 if rej else 0)


if __name__ == '__main__':
    main()
