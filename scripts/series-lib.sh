# Shared helpers for the series scripts (sourced, not run).
# shellcheck shell=bash

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
# shellcheck source=scripts/upstream.conf
. "$here/upstream.conf"

QEMU_DIR=${QEMU_DIR:-$top/qemu}
PATCH_DIR=${PATCH_DIR:-$top/patches}

# git in the generated tree, with a fallback identity so that 'git am'
# works on a machine without a global one.
qgit() {
    git -C "$QEMU_DIR" "$@"
}

ensure_identity() {
    if [ -z "$(qgit config user.email || true)" ]; then
        qgit config user.name "QEMU migration branch"
        qgit config user.email "qemu-migration-branch@localhost"
    fi
}

# The one normalised export form: re-exporting an unchanged series must
# produce byte-identical files.
format_patches() {
    local outdir=$1
    qgit -c core.abbrev=12 -c diff.noprefix=false -c diff.mnemonicPrefix=false \
        -c format.signature= format-patch --quiet \
        --zero-commit --no-signature --no-numbered --diff-algorithm=myers \
        --no-renames --stat=80 \
        -o "$outdir" "$UPSTREAM_TAG..HEAD" >/dev/null
    (cd "$outdir" && ls -1 -- *.patch 2>/dev/null) > "$outdir/series" || true
}

# The HEAD recorded at the last prepare or export: qemu/ is in sync with
# patches/ exactly when HEAD is this commit and the tree is clean.
stamp_file() {
    echo "$QEMU_DIR/.git/migration-branch-synced"
}

# keep_result FILE TITLE DETAIL LINE...: write a result file (a
# time-stamped title, a detail line, the TAP-like LINEs, then
# "N passed, N failed" counted from them), print where it went and the
# count; fails if any line is "not ok".
keep_result() {
    local out=$1 title=$2 detail=$3 pass fail
    shift 3
    pass=$(printf '%s\n' "$@" | grep -c '^ok ')
    fail=$(printf '%s\n' "$@" | grep -c '^not ok ')
    mkdir -p "$(dirname "$out")"
    {
        echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $title"
        echo "# $detail"
        printf '%s\n' "$@"
        echo "$pass passed, $fail failed"
    } > "$out"
    echo "# kept: ${out#"$top"/}"
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
}
