#!/usr/bin/env bash
# Round-trip tests of the series tools: prepare, export, check-exported,
# checkpatch, fetch-upstream.  Works on a scratch copy (a fresh qemu/ made
# by prepare.sh from the verified tarball, and a copy of patches/); the
# project's own qemu/ and patches/ are never touched.  Prints TAP.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
S=$top/scripts
. "$S/upstream.conf"

# No background 'git gc --auto' that would outlive the test and race
# with the clean-up.
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=gc.autoDetach GIT_CONFIG_VALUE_0=false
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export QEMU_DIR=$work/qemu PATCH_DIR=$work/patches
cp -r "$top/patches" "$PATCH_DIR"
cp -r "$top/patches" "$work/patches.orig"
npatches=$(grep -c . "$PATCH_DIR/series")

# shellcheck source=tests/scripts/tap.sh
. "$top/tests/scripts/tap.sh"
# expect DESCRIPTION COMMAND...: command succeeds
expect() {
    local d=$1
    shift
    "$@" > "$work/out" 2>&1
    ok $? "$d"
}
# expect_fail DESCRIPTION PATTERN COMMAND...: command fails, output has PATTERN
expect_fail() {
    local d=$1 pat=$2 rc
    shift 2
    "$@" > "$work/out" 2>&1
    rc=$?
    [ $rc != 0 ] && grep -q -- "$pat" "$work/out"
    ok $? "$d"
    [ $rc != 0 ] || sed 's/^/# /' "$work/out"
}
commits() {
    git -C "$QEMU_DIR" rev-list --count "$UPSTREAM_TAG..HEAD"
}

expect "prepare builds qemu/ from the tarball and the series" "$S/prepare.sh"
[ "$(commits)" = "$npatches" ]
ok $? "one commit per patch ($npatches)"

if [ -d "$top/qemu/.git" ]; then
    [ "$(git -C "$QEMU_DIR" rev-parse "$UPSTREAM_TAG")" = \
      "$(git -C "$top/qemu" rev-parse "$UPSTREAM_TAG")" ]
    ok $? "the pristine base commit is reproducible"
fi

expect "check-exported is silent right after prepare" "$S/check-exported.sh"
[ ! -s "$work/out" ]
ok $? "check-exported prints nothing when in sync"

expect "export of an unchanged series succeeds" "$S/export.sh"
diff -r "$work/patches.orig" "$PATCH_DIR" > /dev/null
ok $? "export of an unchanged series is byte-identical"

head=$(git -C "$QEMU_DIR" rev-parse HEAD)
expect "prepare re-run is a no-op" "$S/prepare.sh"
[ "$(git -C "$QEMU_DIR" rev-parse HEAD)" = "$head" ]
ok $? "prepare re-run keeps HEAD"

echo "# branch test edit" >> "$QEMU_DIR/README.rst"
expect_fail "check-exported catches an uncommitted edit" "README.rst" \
    "$S/check-exported.sh"
expect_fail "export refuses an uncommitted edit" "uncommitted" "$S/export.sh"
git -C "$QEMU_DIR" checkout -q -- README.rst

echo "/* branch test */" >> "$QEMU_DIR/README.rst"
git -C "$QEMU_DIR" commit -q -a -s -m "migration: test commit for the series tools" \
    -m "A commit made by tests/scripts/test-series-tools.sh."
expect_fail "check-exported catches an unexported commit" \
    "migration: test commit" "$S/check-exported.sh"
expect_fail "prepare refuses to drop an unexported commit" "export it first" \
    "$S/prepare.sh"
head=$(git -C "$QEMU_DIR" rev-parse HEAD)
expect "the build's prepare keeps unexported work and goes on" \
    "$S/prepare.sh" --allow-unexported
[ "$(git -C "$QEMU_DIR" rev-parse HEAD)" = "$head" ]
ok $? "unexported work is left in place"

expect "export writes the new commit" "$S/export.sh"
[ "$(grep -c . "$PATCH_DIR/series")" = $((npatches + 1)) ] &&
    grep -q -- "-migration-test-commit-for-the-series-tools.patch$" "$PATCH_DIR/series"
ok $? "series lists the new patch last"
expect "check-exported is happy after export" "$S/check-exported.sh"
cp -r "$PATCH_DIR" "$work/patches.new"
expect "export again" "$S/export.sh"
diff -r "$work/patches.new" "$PATCH_DIR" > /dev/null
ok $? "re-export is byte-identical (no churn)"

# A pull that brings a new patch while qemu/ is untouched: qemu/ is behind,
# which is not unexported work; prepare re-applies.
rm -rf "$PATCH_DIR" && cp -r "$work/patches.orig" "$PATCH_DIR"
expect "FORCE=1 prepare re-applies an older series" env FORCE=1 "$S/prepare.sh"
git -C "$QEMU_DIR" for-each-ref refs/backup | grep -q .
ok $? "FORCE=1 keeps the old branch under refs/backup/"
rm -rf "$PATCH_DIR" && cp -r "$work/patches.new" "$PATCH_DIR"
[ "$("$S/check-exported.sh" --state)" = stale ]
ok $? "a qemu/ behind patches/ is 'stale'"
expect "check-exported does not fail on a stale qemu/" "$S/check-exported.sh"
expect "prepare brings a stale qemu/ up to date" "$S/prepare.sh"
[ "$(commits)" = $((npatches + 1)) ] &&
    [ "$("$S/check-exported.sh" --state)" = synced ]
ok $? "qemu/ in sync after prepare"

expect "checkpatch runs over the series" "$S/checkpatch.sh"
grep -q "^checkpatch: $((npatches + 1)) patches, 0 errors" "$work/out"
ok $? "checkpatch summarises every patch"

printf 'not the tarball\n' > "$work/bogus.tar.xz"
expect_fail "fetch-upstream rejects a tarball with the wrong hash" \
    "sha256 mismatch" env DOWNLOADS="$work/dl" QEMU_TARBALL="$work/bogus.tar.xz" \
    "$S/fetch-upstream.sh"

echo "1..$n"
exit $((failed > 0))
