#!/usr/bin/env bash
# Fetch and verify the pinned upstream QEMU source tarball.
#
# Order of preference:
#   1. downloads/ already holds the verified tarball: use it.
#   2. QEMU_TARBALL=/path/to/qemu_10.2.2+ds.orig.tar.xz: verify and copy it.
#   3. apt's ordinary client, through the deb-src entry for sid that
#      scripts/apt-sources.sh derives from the machine's apt sources.
#
# Prints the path of the verified tarball on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
# shellcheck source=scripts/upstream.conf
. "$here/upstream.conf"

dl=${DOWNLOADS:-$top/downloads}
tarball="$dl/$UPSTREAM_TARBALL"
mkdir -p "$dl"

verify() {
    local sum
    sum=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$sum" != "$UPSTREAM_SHA256" ]; then
        echo "fetch-upstream: $1: sha256 mismatch" >&2
        echo "fetch-upstream:   expected $UPSTREAM_SHA256" >&2
        echo "fetch-upstream:   got      $sum" >&2
        return 1
    fi
}

if [ -f "$tarball" ] && verify "$tarball" 2>/dev/null; then
    echo "$tarball"
    exit 0
fi
rm -f "$tarball"

if [ -n "${QEMU_TARBALL:-}" ]; then
    verify "$QEMU_TARBALL" || exit 1
    cp "$QEMU_TARBALL" "$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
    echo "$tarball"
    exit 0
fi

if [ "$(id -u)" = 0 ]; then
    "$here/apt-sources.sh" >&2
    apt-get update -qq >&2
fi

tmp=$(mktemp -d "$dl/apt.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt downloads as the unprivileged _apt user where it can: give it the
# directory, or apt warns and downloads as root.
chmod 755 "$tmp"
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
    chown _apt "$tmp"
fi
echo "fetch-upstream: apt-get source --download-only $UPSTREAM_SRCPKG=$UPSTREAM_DEBVER" >&2
if ! (cd "$tmp" && apt-get source -qq --download-only \
        "$UPSTREAM_SRCPKG=$UPSTREAM_DEBVER" >&2); then
    cat >&2 <<MSG
fetch-upstream: could not download $UPSTREAM_SRCPKG $UPSTREAM_DEBVER.
fetch-upstream: If apt says the version is not found, the pinned version is
fetch-upstream: no longer served; rebase the series, see README ("Rebasing
fetch-upstream: onto a new upstream release").  Or pass a copy you trust:
fetch-upstream:   QEMU_TARBALL=/path/to/$UPSTREAM_TARBALL make prepare
MSG
    exit 1
fi
if [ ! -f "$tmp/$UPSTREAM_TARBALL" ]; then
    echo "fetch-upstream: apt did not deliver $UPSTREAM_TARBALL" >&2
    exit 1
fi
verify "$tmp/$UPSTREAM_TARBALL" || exit 1
mv "$tmp/$UPSTREAM_TARBALL" "$tarball"
echo "$tarball"
