#!/usr/bin/env bash
# make check-compat: the cross-binary runs of run-checks.sh compat, the
# two directions (vanilla->patched, patched->vanilla) side by side, each
# with results of its own; then one matrix of both in
# tests/results/check-compat.txt.  The cases mostly wait (migration-test
# and the guests poll), so two at once take little more than one.
# Output: every result line of both, then "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

# Once, before the two runs that would otherwise both build them
"$here/build-guest.sh" || exit 1
"$here/build-bare-guest.sh" || exit 1
pids=()
for dir in v2p p2v; do
    COMPAT_DIRS=$dir "$here/run-checks.sh" compat \
        > "$top/build/check-compat-$dir.log" 2>&1 &
    pids+=($!)
done
rc=0
for p in "${pids[@]}"; do
    wait "$p" || rc=1
done
python3 - "$top" <<'PY'
import re, sys
top = sys.argv[1]
rows, head, counts = {}, [], [0, 0]
for d in ('v2p', 'p2v'):
    with open(f'{top}/tests/results/check-compat-{d}.txt') as f:
        text = f.read()
    m = re.search(r'(\d+) passed, (\d+) failed', text.splitlines()[0])
    counts[0] += int(m.group(1))
    counts[1] += int(m.group(2))
    head += [ln for ln in text.splitlines()[1:] if ln.startswith('# ')]
    for ln in text.splitlines():
        if ln.startswith('#') or ln.startswith('case ') or not ln.strip():
            continue
        case, verdict = ln.split()[0], ln.split()[1]
        rows.setdefault(case, {})[d] = verdict
with open(f'{top}/build/check-compat-v2p.log') as f:
    stamp = None
import datetime
stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
out = [f'# {stamp} make check-compat: {counts[0]} passed, {counts[1]} failed '
       '(both directions side by side)']
seen = set()
for ln in head:
    if ln not in seen and not ln.startswith('# case'):
        seen.add(ln)
        out.append(ln)
out.append(f"{'case':<60} {'vanilla->patched':<16} {'patched->vanilla':<16}")
for case, v in rows.items():
    out.append(f"{case:<60} {v.get('v2p', '-'):<16} {v.get('p2v', '-'):<16}")
with open(f'{top}/tests/results/check-compat.txt', 'w') as f:
    f.write('\n'.join(out) + '\n')
print('\n'.join(out[-len(rows) - 1:]))
print(f'# kept: tests/results/check-compat.txt')
print(f'{counts[0]} passed, {counts[1]} failed')
PY
exit $rc
