#!/usr/bin/env bash
# make check-bisect: every patch of the series builds on its own.
#
# Checks out each commit of qemu/ from the upstream tag to HEAD in turn,
# in a worktree of its own (build/bisect-src), and builds
# qemu-system-x86_64 and the qtest migration-test there (build/bisect,
# the default x86 profile of configure-wrapper.sh with a fixed version
# string, so that each step rebuilds only what the patch changed).  A
# build, not make check: the whole series runs every check target.
# Writes tests/results/check-bisect.txt: one line per patch, then
# "N passed, N failed".
#
# Variables: JOBS (ninja, default nproc), FROM (first commit to build,
# default the first patch).
set -uo pipefail
# shellcheck source=scripts/series-lib.sh
. "$(dirname "$0")/series-lib.sh"

src=$top/build/bisect-src
build=$top/build/bisect
jobs=${JOBS:-$(nproc)}
out=$top/tests/results/check-bisect.txt
pkgversion="migration-branch $UPSTREAM_VERSION (check-bisect)"
n=$(qgit rev-list --count "$UPSTREAM_TAG..HEAD")
tree=$(qgit rev-parse --short=8 'HEAD^{tree}')
series="migration-branch $UPSTREAM_VERSION+mb.$n.g$tree"
start=$(date +%s)

if [ ! -e "$src/.git" ]; then
    rm -rf "$src"
    qgit worktree prune
    qgit worktree add -q --detach "$src" "$UPSTREAM_TAG" || exit 1
fi
commits=$(qgit rev-list --reverse "${FROM:-$UPSTREAM_TAG}..HEAD")
[ -n "${FROM:-}" ] && commits="$(qgit rev-parse "$FROM") $commits"

lines=()
i=0
first=1
for c in $commits; do
    i=$((i + 1))
    git -C "$src" checkout -q --detach "$c" || exit 1
    if [ $first = 1 ]; then
        "$top/configure-wrapper.sh" "$src" "$build" "$pkgversion" ||
            exit 1
        first=0
    fi
    subject=$(git -C "$src" log -1 --format=%s)
    t0=$(date +%s)
    log=$build/ninja-$i.log
    if ninja -C "$build" -j "$jobs" qemu-system-x86_64 \
            tests/qtest/migration-test > "$log" 2>&1; then
        status=ok
        rm -f "$log"
    else
        status="not ok"
        grep -E -B2 -A12 'error|FAILED' "$log" | head -40 >&2
    fi
    line="$status $i $(git -C "$src" rev-parse --short=8 HEAD) $subject # $(( $(date +%s) - t0 ))s"
    echo "$line"
    lines+=("$line")
done
keep_result "$out" "make check-bisect: $series" \
    "each commit from ${FROM:-$UPSTREAM_TAG} built alone (qemu-system-x86_64, migration-test); $(( $(date +%s) - start ))s" \
    "${lines[@]}"
