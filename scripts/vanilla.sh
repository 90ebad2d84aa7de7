#!/usr/bin/env bash
# Generate vanilla/: the same pinned upstream, with only the patches of
# the series that carry the trailer "Vanilla-Twin: apply" (build fixes
# the stripped +ds tarball needs; they do not change QEMU).  Every A/B
# comparison and cross-binary test runs against this tree's build.
set -euo pipefail
# shellcheck source=scripts/series-lib.sh
. "$(dirname "$0")/series-lib.sh"

vpatches=$top/build/vanilla-patches
rm -rf "$vpatches"
mkdir -p "$vpatches"
: > "$vpatches/series"
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    if grep -q '^Vanilla-Twin: apply$' "$PATCH_DIR/$p"; then
        cp "$PATCH_DIR/$p" "$vpatches/"
        echo "$p" >> "$vpatches/series"
    fi
done < "$PATCH_DIR/series"

QEMU_DIR=$top/vanilla PATCH_DIR=$vpatches "$here/prepare.sh" |
    sed 's/^prepare: qemu\//vanilla: vanilla\//'
