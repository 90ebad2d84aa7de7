#!/usr/bin/env python3
"""Build the branch's own qtests (tests/qtest/*.c) against a QEMU build.

Each test is compiled with exactly the flags the build tree uses for
upstream's migration-test, and linked with the same objects minus
migration-test's main(), so it can use libqtest and the migration test
helpers in tests/qtest/migration/.  Outputs go to BUILD/tests/branch/.

Shared libraries that tests preload into a QEMU (SOURCE_DIR/preload/*.c)
are built there too, as NAME.so, with the host compiler alone.

Usage: build-qtests.py BUILD_DIR SOURCE_DIR
"""

import json
import os
import shlex
import subprocess
import sys

REF_SOURCE = 'tests/qtest/migration/framework.c'
REF_TARGET = 'tests/qtest/migration-test'
REF_MAIN_OBJ = 'tests/qtest/migration-test.p/migration-test.c.o'


def compile_template(build):
    with open(os.path.join(build, 'compile_commands.json')) as f:
        for entry in json.load(f):
            if entry['file'].endswith(REF_SOURCE):
                return shlex.split(entry['command'])
    sys.exit(f'build-qtests: no compile command for {REF_SOURCE} in {build}')


def link_template(build):
    out = subprocess.run(['ninja', '-C', build, '-t', 'commands', REF_TARGET],
                         check=True, capture_output=True, text=True).stdout
    return shlex.split(out.strip().splitlines()[-1])


def compile_cmd(template, src, obj):
    cmd = []
    skip = False
    for arg in template:
        if skip:
            skip = False
            continue
        if arg in ('-o', '-MF', '-MQ'):
            skip = True
            continue
        if arg in ('-c', '-MD') or arg.endswith(REF_SOURCE):
            continue
        cmd.append(arg)
    return cmd + ['-MD', '-MF', obj + '.d', '-o', obj, '-c', src]


def link_cmd(template, obj, exe):
    cmd = []
    skip = False
    for arg in template:
        if skip:
            skip = False
            continue
        if arg == '-o':
            skip = True
            continue
        if arg == REF_MAIN_OBJ:
            arg = obj
        cmd.append(arg)
    return cmd + ['-o', exe]


def stale(target, deps):
    if not os.path.exists(target):
        return True
    t = os.path.getmtime(target)
    return any(os.path.getmtime(d) > t for d in deps if os.path.exists(d))


def depfile_inputs(depfile):
    if not os.path.exists(depfile):
        return []
    with open(depfile) as f:
        text = f.read().replace('\\\n', ' ')
    return text.split(':', 1)[1].split() if ':' in text else []


def build_preloads(srcdir, outdir):
    pdir = os.path.join(srcdir, 'preload')
    if not os.path.isdir(pdir):
        return
    for src in sorted(f for f in os.listdir(pdir) if f.endswith('.c')):
        lib = os.path.join(outdir, src[:-2] + '.so')
        src = os.path.join(pdir, src)
        if stale(lib, [src]):
            print(f'build-qtests: CC {os.path.basename(lib)}')
            subprocess.run(['cc', '-O2', '-Wall', '-Werror', '-fPIC',
                            '-shared', '-o', lib, src, '-ldl'], check=True)


def main():
    build = os.path.abspath(sys.argv[1])
    srcdir = os.path.abspath(sys.argv[2])
    sources = sorted(f for f in os.listdir(srcdir) if f.endswith('.c'))
    if not sources:
        return
    outdir = os.path.join(build, 'tests', 'branch')
    os.makedirs(outdir, exist_ok=True)
    ctmpl = compile_template(build)
    ltmpl = link_template(build)
    ref_exe = os.path.join(build, REF_TARGET)
    build_preloads(srcdir, outdir)
    for src in sources:
        name = src[:-2]
        src = os.path.join(srcdir, src)
        obj = os.path.join(outdir, name + '.o')
        exe = os.path.join(outdir, name)
        if stale(obj, [src] + depfile_inputs(obj + '.d')):
            print(f'build-qtests: CC {name}')
            subprocess.run(compile_cmd(ctmpl, src, obj), cwd=build, check=True)
        if stale(exe, [obj, ref_exe]):
            print(f'build-qtests: LINK {name}')
            subprocess.run(link_cmd(ltmpl, obj, exe), cwd=build, check=True)


if __name__ == '__main__':
    main()
