#!/usr/bin/env bash
# Regenerate patches/ and patches/series from the commits in qemu/ after
# the upstream tag.  Output is normalised, so an unchanged series gives
# no diff.  Refuses while qemu/ has uncommitted edits.
set -euo pipefail
# shellcheck source=scripts/series-lib.sh
. "$(dirname "$0")/series-lib.sh"

if [ ! -d "$QEMU_DIR/.git" ]; then
    echo "export: no $QEMU_DIR; run 'make prepare' first" >&2
    exit 1
fi
dirty=$(qgit status --porcelain | head -20)
if [ -n "$dirty" ]; then
    echo "export: qemu/ has uncommitted changes; commit them first:" >&2
    echo "$dirty" >&2
    exit 1
fi
if qgit rev-parse -q --verify REBASE_HEAD >/dev/null ||
   [ -d "$QEMU_DIR/.git/rebase-merge" ] || [ -d "$QEMU_DIR/.git/rebase-apply" ]; then
    echo "export: a rebase or 'git am' is in progress in qemu/; finish it first" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
format_patches "$tmp"

mkdir -p "$PATCH_DIR"
changed=0
for f in "$PATCH_DIR"/*.patch; do
    [ -e "$f" ] || continue
    if [ ! -e "$tmp/$(basename "$f")" ]; then
        rm -f "$f"
        echo "export: removed $(basename "$f")"
        changed=1
    fi
done
for f in "$tmp"/*.patch "$tmp/series"; do
    [ -e "$f" ] || continue
    b=$(basename "$f")
    if ! cmp -s "$f" "$PATCH_DIR/$b"; then
        cp "$f" "$PATCH_DIR/$b"
        [ "$b" = series ] || echo "export: wrote $b"
        changed=1
    fi
done
qgit rev-parse HEAD > "$(stamp_file)"
if [ $changed = 0 ]; then
    echo "export: patches/ already up to date ($(grep -c . "$PATCH_DIR/series") patches)"
fi
