#!/usr/bin/env python3
"""Restack helper: the prep and the move of one module of migration/ram/.

    move-module.py prep --final F --src ram.c --renames R
        In SRC, rename (word for word, in every file given by --also)
        the items that F defines, per the rename map R ("old new" per
        line), and drop "static" (or make it "static inline") where F
        has it so.  Prints what it did and what it could not do.
    move-module.py move --final F --src ram.c [--src ram.h] --dst D
        Write D after F: F's preamble (comments, includes of headers
        that exist, guards) and, for every item of F that a SRC has, that
        item's text cut from its SRC, unchanged.  Items of F that no SRC
        has (later changes) are left out and listed.

F is the module's file in the final tree of the series (the tree the
restack reproduces).
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import citems  # noqa: E402


def code_head(it):
    return it.code.lstrip()


def prep(a):
    final = {i.name: i for i in citems.parse(open(a.final).read())}
    ren = {}
    if a.renames:
        for ln in open(a.renames):
            if ln.strip():
                old, new = ln.split()
                ren[old] = new
    rev = {v: k for k, v in ren.items()}
    path = a.src[0]
    text = open(path).read()
    items = citems.parse(text)
    todo = []
    for name, fit in final.items():
        old = rev.get(name, name)
        src = [i for i in items if i.name == old]
        if not src:
            continue
        if old != name:
            todo.append((old, name))
    files = [path] + (a.also or [])
    for old, new in todo:
        for f in files:
            t = open(f).read()
            t2 = re.sub(r'\b%s\b' % re.escape(old), new, t)
            if t2 != t:
                open(f, 'w').write(t2)
        print(f'renamed {old} -> {new}')
    text = open(path).read()
    items = citems.parse(text)
    out = []
    for it in items:
        fit = final.get(it.name)
        if fit and it.name not in ('<trailer>',) and '(' in it.code and \
                '{' in fit.code:
            fh, sh = code_head(fit), code_head(it)
            if sh.startswith('static ') and not fh.startswith('static ') \
                    and '{' in it.code:
                # all occurrences: a forward declaration too
                it.lines[it.code_start] = it.lines[it.code_start].replace(
                    'static ', '', 1)
                print(f'dropped static: {it.name}')
            elif sh.startswith('static ') and \
                    fh.startswith('static inline ') and \
                    not sh.startswith('static inline '):
                it.lines[it.code_start] = it.lines[it.code_start].replace(
                    'static ', 'static inline ', 1)
                print(f'made static inline: {it.name}')
        out.append(it.text)
    open(path, 'w').write(''.join(out))


def move(a):
    ftext = open(a.final).read()
    fitems = citems.parse(ftext)
    srcs = {p: citems.parse(open(p).read()) for p in a.src}
    taken = {p: set() for p in a.src}
    out = []
    left = []
    started = False
    dstdir = os.path.dirname(os.path.abspath(a.dst))
    for fit in fitems:
        found = None
        proto = '(' in fit.code and '{' not in fit.code and \
            not fit.code.lstrip().startswith(('#', 'typedef'))
        if fit.name not in ('<trailer>',) and not fit.name.startswith(
                ('#include', '#define MIGRATION_')):
            for p, its in srcs.items():
                for idx, it in enumerate(its):
                    if it.name == fit.name and idx not in taken[p] and \
                            ('{' in it.code) == ('{' in fit.code):
                        found = (p, idx, it)
                        break
                if found:
                    break
        if not found and proto:
            # a declaration of a function defined non-static elsewhere
            defined = [it for its in srcs.values() for it in its
                       if it.name == fit.name and '{' in it.code]
            if defined and not defined[0].code.lstrip().startswith(
                    'static'):
                out.append(fit.text)
            else:
                left.append(f'{fit.name} (declaration)')
            continue
        if found:
            p, idx, it = found
            taken[p].add(idx)
            # a forward declaration and the definition share a name
            for idx2, it2 in enumerate(srcs[p]):
                if it2.name == it.name and idx2 not in taken[p] and \
                        fitems.count(fit) == 1 and \
                        sum(1 for f in fitems if f.name == fit.name) == 1:
                    taken[p].add(idx2)
                    out.append(it2.text)
            out.append(it.text)
            started = True
            continue
        name = fit.name
        if name.startswith('#include'):
            m = re.search(r'#include\s+"([^"]+)"', fit.code)
            inc = m.group(1) if m else None
            if inc and '/' not in inc and not os.path.exists(
                    os.path.join(dstdir, inc)):
                left.append(f'include {inc}')
                out.append(fit.text[:fit.text.index(fit.code)])
                continue
            out.append(fit.text)
        elif name in ('<trailer>',) or name.startswith('#define MIGRATION_') \
                or fit.code.lstrip().startswith(('#ifndef MIGRATION_',
                                                 '#endif')):
            out.append(fit.text)
        elif not started and not fit.code.strip():
            out.append(fit.text)
        else:
            left.append(name)
            # keep the comment lines before it only if they lead a kept
            # item: drop them with the item
    for p, its in srcs.items():
        keep = [it.text for i, it in enumerate(its) if i not in taken[p]]
        open(p, 'w').write(''.join(keep))
    open(a.dst, 'w').write(''.join(out))
    for n in left:
        print(f'left out: {n}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('what', choices=('prep', 'move'))
    ap.add_argument('--final', required=True)
    ap.add_argument('--src', action='append', required=True)
    ap.add_argument('--dst')
    ap.add_argument('--renames')
    ap.add_argument('--also', action='append')
    a = ap.parse_args()
    prep(a) if a.what == 'prep' else move(a)


if __name__ == '__main__':
    main()
