#!/usr/bin/env bash
# Generate qemu/: pristine upstream as the first commit (tagged), then the
# series from patches/ applied with 'git am', one commit per patch.
#
# Safe to re-run:
#   - qemu/ in sync with patches/             -> nothing to do
#   - patches/ changed (pull), qemu/ untouched -> series re-applied
#   - qemu/ has commits or edits not exported  -> refuse, say what to do
# FORCE=1 re-applies anyway, keeping the old branch as refs/backup/<date>.
#
# --allow-unexported (used by the build targets): when qemu/ holds work
# that patches/ lacks, leave qemu/ as it is, say so, and succeed, so that
# work in progress can be built and tested before it is exported.
set -euo pipefail
allow_unexported=0
[ "${1:-}" = --allow-unexported ] && allow_unexported=1
# shellcheck source=scripts/series-lib.sh
. "$(dirname "$0")/series-lib.sh"

apply_series() {
    local p
    ensure_identity
    qgit checkout -q -B master "$UPSTREAM_TAG"
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        if ! qgit am -q --committer-date-is-author-date --keep-cr \
                "$PATCH_DIR/$p"; then
            qgit am --abort || true
            echo "prepare: $p does not apply; qemu/ is left at the last good patch" >&2
            exit 1
        fi
    done < "$PATCH_DIR/series"
    qgit rev-parse HEAD > "$(stamp_file)"
    echo "prepare: qemu/ at $UPSTREAM_TAG + $(qgit rev-list --count "$UPSTREAM_TAG..HEAD") patches"
}

if [ ! -d "$QEMU_DIR/.git" ]; then
    if [ -e "$QEMU_DIR" ]; then
        echo "prepare: $QEMU_DIR exists but is not a git tree; move it away" >&2
        exit 1
    fi
    tarball=$("$here/fetch-upstream.sh")
    tmp="$QEMU_DIR.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    tar -xf "$tarball" -C "$tmp" --strip-components=1
    git -C "$tmp" init -q -b master
    QEMU_DIR=$tmp ensure_identity
    git -C "$tmp" add -A -f .
    # A fixed identity and date make the base commit id the same on every
    # machine, so that commit ids in the series are reproducible.
    GIT_AUTHOR_NAME="QEMU upstream" GIT_AUTHOR_EMAIL="qemu-devel@nongnu.org" \
    GIT_COMMITTER_NAME="QEMU upstream" GIT_COMMITTER_EMAIL="qemu-devel@nongnu.org" \
    GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z" \
        git -C "$tmp" commit -q --no-verify \
            -m "Upstream QEMU $UPSTREAM_VERSION ($UPSTREAM_TARBALL)" \
            -m "Debian source package $UPSTREAM_SRCPKG $UPSTREAM_DEBVER, sha256 $UPSTREAM_SHA256."
    git -C "$tmp" tag "$UPSTREAM_TAG"
    mv "$tmp" "$QEMU_DIR"
    apply_series
    exit 0
fi

if ! qgit rev-parse -q --verify "refs/tags/$UPSTREAM_TAG" >/dev/null; then
    echo "prepare: qemu/ has no tag $UPSTREAM_TAG; it was made for another base." >&2
    echo "prepare: export any work, then remove qemu/ and run 'make prepare' again." >&2
    exit 1
fi

state=$("$here/check-exported.sh" --state)
if [ "$state" = synced ] && [ "${FORCE:-0}" != 1 ]; then
    exit 0
fi
dirty=$(qgit status --porcelain | head -5)
if [ "$state" = unexported ] && [ "${FORCE:-0}" != 1 ] &&
   [ $allow_unexported = 1 ]; then
    echo "prepare: note: qemu/ holds work not yet in patches/; building it as it is" >&2
    "$here/check-exported.sh" 2>&1 | sed 's/^/prepare:   /' >&2 || true
    exit 0
fi
if [ "$state" = unexported ] && [ "${FORCE:-0}" != 1 ]; then
    echo "prepare: qemu/ holds work that patches/ does not have:" >&2
    "$here/check-exported.sh" >&2 || true
    echo "prepare: export it first (make export), or re-run with FORCE=1 to" >&2
    echo "prepare: re-apply patches/ (the old branch is kept under refs/backup/)." >&2
    exit 1
fi
if [ "${FORCE:-0}" = 1 ]; then
    backup="refs/backup/$(date -u +%Y%m%dT%H%M%SZ)"
    if [ -n "$dirty" ]; then
        qgit stash push -q -u -m "prepare FORCE=1" || true
        echo "prepare: uncommitted edits saved with 'git stash' in qemu/" >&2
    fi
    qgit update-ref "$backup" HEAD
    echo "prepare: old branch kept as $backup" >&2
fi
echo "prepare: patches/ changed; re-applying the series"
apply_series
