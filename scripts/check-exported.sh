#!/usr/bin/env bash
# Exit non-zero, naming what is missing, when qemu/ holds commits or
# uncommitted changes that patches/ does not have.  Silent when in sync.
#
# A qemu/ that is merely behind patches/ (patches/ was updated by a pull,
# qemu/ untouched since the last prepare or export) holds no unexported
# work: that exits 0 with a hint to run 'make prepare'.
#
# --state prints one word instead: synced, stale or unexported.
set -euo pipefail
# shellcheck source=scripts/series-lib.sh
. "$(dirname "$0")/series-lib.sh"

state_only=0
[ "${1:-}" = --state ] && state_only=1

if [ ! -d "$QEMU_DIR/.git" ]; then
    [ $state_only = 1 ] && echo stale
    exit 0
fi
if [ $state_only = 1 ]; then
    exec 3>&1 >/dev/null
fi

rc=0
dirty=$(qgit status --porcelain | head -20)
if [ -n "$dirty" ]; then
    echo "check-exported: uncommitted changes in qemu/:"
    printf '  %s\n' "$dirty" | sed 's/^  /  /'
    rc=1
fi
for d in rebase-merge rebase-apply; do
    if [ -d "$QEMU_DIR/.git/$d" ]; then
        echo "check-exported: a rebase or 'git am' is in progress in qemu/"
        rc=1
    fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
format_patches "$tmp"

# Commits whose exported form is not in patches/, in series order.
i=0
for c in $(qgit rev-list --reverse "$UPSTREAM_TAG..HEAD"); do
    i=$((i + 1))
    f=$(sed -n "${i}p" "$tmp/series")
    if ! cmp -s "$tmp/$f" "$PATCH_DIR/$f"; then
        echo "check-exported: commit not exported: $(qgit log -1 --format='%h %s' "$c") -> patches/$f"
        rc=1
    fi
done
# Patches that qemu/ no longer has (dropped or reordered there).
if ! cmp -s "$tmp/series" "$PATCH_DIR/series" 2>/dev/null; then
    for f in $(cat "$PATCH_DIR/series" 2>/dev/null); do
        if ! grep -qxF "$f" "$tmp/series"; then
            echo "check-exported: patches/$f is not in qemu/ (dropped or renamed there)"
        fi
    done
    echo "check-exported: patches/series differs from qemu/'s commits"
    rc=1
fi
state=synced
if [ $rc != 0 ]; then
    state=unexported
    if [ -z "$dirty" ] &&
       [ "$(qgit rev-parse HEAD)" = "$(cat "$(stamp_file)" 2>/dev/null)" ]; then
        state=stale
    fi
fi
if [ $state_only = 1 ]; then
    echo $state >&3
    exit 0
fi
case $state in
stale)
    echo "check-exported: qemu/ is behind patches/ (nothing unexported); run 'make prepare'" >&2
    exit 0 ;;
unexported)
    echo "check-exported: run 'make export' and commit patches/"
    exit 1 ;;
esac
