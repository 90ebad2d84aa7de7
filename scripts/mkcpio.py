#!/usr/bin/env python3
"""Write a deterministic initramfs: a "newc" cpio archive, optionally gzipped.

The entries come from a list in the format of the kernel's
usr/gen_init_cpio, one per line ('#' starts a comment):

    dir  NAME MODE
    file NAME SOURCE MODE
    nod  NAME MODE c|b MAJOR MINOR
    slink NAME TARGET MODE

MODE is octal.  Every entry is owned by 0:0 and has the same fixed mtime
(SOURCE_DATE_EPOCH, default 0), inode numbers are given in list order, and
gzip output carries no name or time stamp, so the same inputs always give
the same bytes.  The output is written next to its final name and renamed
into place.

Usage: mkcpio.py [--gzip] OUTPUT [LIST]   (LIST defaults to stdin)
"""

import argparse
import gzip
import os
import stat
import sys


def header(ino, mode, nlink, mtime, filesize, rdev, name):
    """A newc header for one entry, the name and its padding."""
    namez = name.encode() + b'\0'
    fields = (ino, mode, 0, 0, nlink, mtime, filesize,
              0, 0, rdev[0], rdev[1], len(namez), 0)
    hdr = b'070701' + b''.join(b'%08X' % f for f in fields) + namez
    return hdr + b'\0' * (-len(hdr) % 4)


def pad(data):
    return data + b'\0' * (-len(data) % 4)


def parse(lines, where):
    """Yield (kind, name, mode, data, rdev) for each entry of the list."""
    for num, line in enumerate(lines, 1):
        words = line.split('#', 1)[0].split()
        if not words:
            continue
        kind, args = words[0], words[1:]
        want = {'dir': 2, 'file': 3, 'nod': 5, 'slink': 3}.get(kind)
        if want is None or len(args) != want:
            sys.exit(f'mkcpio: {where}:{num}: bad entry: {line.strip()}')
        name = args[0].lstrip('/')
        if not name or '..' in name.split('/'):
            sys.exit(f'mkcpio: {where}:{num}: bad name {args[0]!r}')
        if kind == 'dir':
            yield stat.S_IFDIR, name, int(args[1], 8), b'', (0, 0)
        elif kind == 'file':
            with open(args[1], 'rb') as f:
                data = f.read()
            yield stat.S_IFREG, name, int(args[2], 8), data, (0, 0)
        elif kind == 'nod':
            if args[2] not in ('c', 'b'):
                sys.exit(f'mkcpio: {where}:{num}: device type must be c or b')
            ftype = stat.S_IFCHR if args[2] == 'c' else stat.S_IFBLK
            yield (ftype, name, int(args[1], 8), b'',
                   (int(args[3]), int(args[4])))
        else:
            yield (stat.S_IFLNK, name, int(args[2], 8), args[1].encode(),
                   (0, 0))


def build(entries, mtime):
    out = []
    for ino, (ftype, name, mode, data, rdev) in enumerate(entries, 1):
        nlink = 2 if ftype == stat.S_IFDIR else 1
        out.append(header(ino, ftype | (mode & 0o7777), nlink, mtime,
                          len(data), rdev, name))
        out.append(pad(data))
    out.append(header(0, 0, 1, 0, 0, (0, 0), 'TRAILER!!!'))
    archive = b''.join(out)
    # Pad the archive to a multiple of 512 bytes, as cpio(1) does.
    return archive + b'\0' * (-len(archive) % 512)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--gzip', action='store_true', help='gzip the archive')
    ap.add_argument('output')
    ap.add_argument('list', nargs='?', help='entry list (default: stdin)')
    args = ap.parse_args()

    if args.list:
        with open(args.list, encoding='utf-8') as f:
            lines = f.readlines()
        where = args.list
    else:
        lines = sys.stdin.readlines()
        where = '<stdin>'
    mtime = int(os.environ.get('SOURCE_DATE_EPOCH', '0'))
    data = build(list(parse(lines, where)), mtime)
    if args.gzip:
        data = gzip.compress(data, compresslevel=9, mtime=0)

    tmp = args.output + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, args.output)


if __name__ == '__main__':
    main()
