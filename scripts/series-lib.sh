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
