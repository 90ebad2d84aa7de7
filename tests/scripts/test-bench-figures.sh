#!/usr/bin/env bash
# The design page's benchmark figures come from the committed result
# files: the page includes the fragment scripts/bench-figures.py
# generates, and the fragment in the series is what the script gives
# now (issue 22).  A changed or hand-edited number fails here.  Also
# checks that --check notices a fragment that differs.  Prints TAP.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
page=$top/qemu/docs/devel/migration/ram-engine.rst
frag=$top/qemu/docs/devel/migration/ram-engine-figures.rst.inc
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=tests/scripts/tap.sh
. "$top/tests/scripts/tap.sh"

grep -q '^\.\. include:: ram-engine-figures\.rst\.inc' "$page" > "$work/out" 2>&1
ok $? "the design page includes the generated figures" "$work/out"

python3 "$top/scripts/bench-figures.py" --check "$frag" > "$work/out" 2>&1
ok $? "the figures in the series are what the result files give" "$work/out"

sed 's/[0-9]\.[0-9][0-9]/9.99/' "$frag" > "$work/edited"
python3 "$top/scripts/bench-figures.py" --check "$work/edited" \
    > "$work/out" 2>&1
[ $? != 0 ]
ok $? "--check fails on a fragment with a number edited by hand" "$work/out"

echo "1..$n"
exit $((failed > 0))
