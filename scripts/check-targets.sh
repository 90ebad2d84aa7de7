#!/usr/bin/env bash
# make check-targets: build the series (qemu/ as it is) for x86_64,
# aarch64, ppc64 and s390x softmmu in build/targets, minimal and without
# docs, so that code the series changes for other targets (spapr, s390x)
# is compiled at least.  Writes tests/results/check-targets.txt.
set -uo pipefail
# shellcheck source=scripts/series-lib.sh
. "$(dirname "$0")/series-lib.sh"

build=$top/build/targets
jobs=${JOBS:-$(nproc)}
n=$(qgit rev-list --count "$UPSTREAM_TAG..HEAD")
tree=$(qgit rev-parse --short=8 'HEAD^{tree}')
series="migration-branch $UPSTREAM_VERSION+mb.$n.g$tree"
# A fixed version string: a new one each time the series changes would
# rebuild everything (it is in config-host.h); the result file names the
# series instead.
pkgversion="migration-branch $UPSTREAM_VERSION (check-targets)"
out=$top/tests/results/check-targets.txt
start=$(date +%s)

"$top/configure-wrapper.sh" "$QEMU_DIR" "$build" "$pkgversion" targets ||
    exit 1
lines=()
for t in x86_64 aarch64 ppc64 s390x; do
    t0=$(date +%s)
    if ninja -C "$build" -j "$jobs" "qemu-system-$t" \
            > "$build/ninja-$t.log" 2>&1; then
        status=ok
    else
        status="not ok"
        grep -E -B2 -A12 'error|FAILED' "$build/ninja-$t.log" | head -40 >&2
    fi
    warnings=$(grep -c 'warning:' "$build/ninja-$t.log")
    line="$status $t-softmmu # $(( $(date +%s) - t0 ))s, $warnings warnings"
    echo "$line"
    lines+=("$line")
done
keep_result "$out" "make check-targets: $series" \
    "configure-wrapper.sh profile 'targets'; $(( $(date +%s) - start ))s" \
    "${lines[@]}"
