#!/usr/bin/env bash
# Configure (through configure-wrapper.sh) and build one of the two trees:
#   patched  qemu/    -> build/qemu     the branch
#   vanilla  vanilla/ -> build/vanilla  upstream + build fixes only
#
# Builds qemu-system-x86_64, upstream's migration-test, and our own qtests
# from tests/qtest/ against that build.
set -euo pipefail
# shellcheck source=scripts/series-lib.sh
. "$(dirname "$0")/series-lib.sh"

which=${1:-patched}
jobs=${JOBS:-$(nproc)}

case $which in
patched)
    src=$QEMU_DIR
    build=$top/build/qemu
    n=$(qgit rev-list --count "$UPSTREAM_TAG..HEAD")
    tree=$(qgit rev-parse --short=8 'HEAD^{tree}')
    pkgversion="migration-branch $UPSTREAM_VERSION+mb.$n.g$tree"
    ;;
vanilla)
    "$here/vanilla.sh"
    src=$top/vanilla
    build=$top/build/vanilla
    pkgversion="vanilla $UPSTREAM_VERSION, twin of the migration branch"
    ;;
*)
    echo "usage: $0 patched|vanilla" >&2
    exit 2
    ;;
esac

"$top/configure-wrapper.sh" "$src" "$build" "$pkgversion"
echo "build: $which in ${build#"$top"/} ($pkgversion)"
# contrib/vhost-user-blk: the backend of ram-exact-test's vhost-user case
if ! ninja -C "$build" -j "$jobs" qemu-system-x86_64 \
        tests/qtest/migration-test contrib/vhost-user-blk/vhost-user-blk \
        > "$build/ninja.log" 2>&1; then
    grep -E -B2 -A12 'error|FAILED' "$build/ninja.log" | head -60 >&2
    echo "build: ninja failed; see ${build#"$top"/}/ninja.log" >&2
    exit 1
fi

# A binary run from the build tree resolves every data directory, the
# firmware path included, inside BUILD/qemu-bundle.  Link the firmware
# directories there so that the uninstalled binary finds Debian's blobs.
IFS=: read -r -a fwdirs <<<"$("$top/configure-wrapper.sh" --print-firmwarepath)"
for d in "${fwdirs[@]}"; do
    link=$build/qemu-bundle$d
    if [ ! -e "$link" ]; then
        mkdir -p "$(dirname "$link")"
        ln -sfn "$d" "$link"
    fi
done

"$here/build-qtests.py" "$build" "$top/tests/qtest"
