#!/usr/bin/env python3
"""The lazy restore's figures (issue 24) from bench result files.

Usage: scripts/lazy-restore-figures.py bench/results/STAMP-REV.json...

Prints a markdown table per image size, from the measured runs of the
scenarios mapped-ram (eager on both builds), mapped-ram-lazy (lazy on
the branch, eager upstream), mapped-ram-16g / mapped-ram-lazy-16g, and
mapped-ram-lazy-wss (two lazy restores of one image, the second with
the working set of the first).  Medians [min-max]; every ratio is
taken between runs of the same result file, as the bench's own tables
are.
"""

import json
import statistics
import sys


def num(v):
    if abs(v) >= 100:
        return f'{v:.0f}'
    if abs(v) >= 10:
        return f'{v:.1f}'
    return f'{v:.3g}'


def cell(vals):
    if not vals:
        return '-'
    return (num(statistics.median(vals)) + ' [' + num(min(vals)) + '-' +
            num(max(vals)) + ']')


def med(vals):
    return statistics.median(vals) if vals else None


def values(samples, scenario, build, key):
    return [s[key] for s in samples
            if s['scenario'] == scenario and s['build'] == build and
            s.get('measured') and isinstance(s.get(key), (int, float))]


def ratio(a, b):
    return f'{a / b:.2f}x' if a is not None and b else '-'


def report(path):
    with open(path, encoding='utf-8') as f:
        result = json.load(f)
    samples = result['samples']
    have = {s['scenario'] for s in samples if s.get('measured')}
    print(f'### {path}\n')
    for eager, lazy, size in (('mapped-ram', 'mapped-ram-lazy', '4 GiB'),
                              ('mapped-ram-16g', 'mapped-ram-lazy-16g',
                               '16 GiB (2 GiB written)')):
        if lazy not in have:
            continue
        run_l = values(samples, lazy, 'patched', 'restore_running_s')
        run_v = values(samples, lazy, 'vanilla', 'restore_running_s')
        run_e = values(samples, eager, 'patched', 'restore_running_s')
        res_l = values(samples, lazy, 'patched', 'restore_resident_s')
        res_e = values(samples, eager, 'patched', 'restore_ready_s')
        print(f'{size}: `{lazy}` and `{eager}`\n')
        print('| metric | branch lazy | branch eager | vanilla eager |')
        print('|---|---|---|---|')
        print(f'| migrate-incoming to the first heartbeat (ms) | '
              f'{cell([v * 1e3 for v in run_l])} | '
              f'{cell([v * 1e3 for v in run_e])} | '
              f'{cell([v * 1e3 for v in run_v])} |')
        print(f'| every page resident (s) | {cell(res_l)} | {cell(res_e)} '
              f'| {cell(values(samples, lazy, "vanilla", "restore_ready_s"))}'
              f' |')
        for key, label in (('touch_p50_us', 'guest touch p50 (us)'),
                           ('touch_p99_us', 'guest touch p99 (us)'),
                           ('faults_first_s', 'faults, first second')):
            print(f'| {label} | {cell(values(samples, lazy, "patched", key))}'
                  f' | - | {cell(values(samples, lazy, "vanilla", key))} |')
        print(f'\nresident, lazy against the branch\'s eager restore: '
              f'{ratio(med(res_l), med(res_e))}\n')
    if 'mapped-ram-lazy-wss' in have:
        sc = 'mapped-ram-lazy-wss'
        print('4 GiB, two lazy restores of one image: `' + sc + '`\n')
        print('| metric | without the working set | with it |')
        print('|---|---|---|')
        for key, label in (('faults_first_s', 'faults, first second'),
                           ('faults', 'faults, until resident'),
                           ('touch_ms', 'guest touch of 2000 pages: done (ms)'),
                           ('touch_p99_us', 'guest touch p99 (us)'),
                           ('restore_resident_s', 'every page resident (s)')):
            print(f'| {label} | '
                  f'{cell(values(samples, sc, "patched", key + "_no_prefetch"))}'
                  f' | {cell(values(samples, sc, "patched", key))} |')
        pre = values(samples, sc, 'patched', 'prefetched_pages')
        without = med(values(samples, sc, 'patched',
                             'faults_first_s_no_prefetch'))
        with_ = med(values(samples, sc, 'patched', 'faults_first_s'))
        print(f'\npages loaded first: {cell(pre)}; faults in the first '
              f'second removed: ' +
              (f'{1 - with_ / without:.0%}' if without else '-') + '\n')


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        report(path)


if __name__ == '__main__':
    main()
