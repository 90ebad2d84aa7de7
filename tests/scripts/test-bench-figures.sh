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
n=0
failed=0
ok() {
    n=$((n + 1))
    if [ "$1" = 0 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        failed=$((failed + 1))
        sed 's/^/# /' "$work/out" 2>/dev/null | head -20
    fi
}

grep -q '^\.\. include:: ram-engine-figures\.rst\.inc' "$page" > "$work/out" 2>&1
ok $? "the design page includes the generated figures"

python3 "$top/scripts/bench-figures.py" --check "$frag" > "$work/out" 2>&1
ok $? "the figures in the series are what the result files give"

sed 's/[0-9]\.[0-9][0-9]/9.99/' "$frag" > "$work/edited"
python3 "$top/scripts/bench-figures.py" --check "$work/edited" \
    > "$work/out" 2>&1
[ $? != 0 ]
ok $? "--check fails on a fragment with a number edited by hand"

echo "1..$n"
exit $((failed > 0))
