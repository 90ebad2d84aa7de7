#!/usr/bin/env bash
# Filesystems for ram-integrity-test's "fs/" cases (issue 21): the RAM
# engine may trust the holes of a RAM file (SEEK_DATA/SEEK_HOLE) only on
# filesystems that see pages written through a shared mapping and not yet
# written back.  The test migrates RAM files on each of these.
#
# Usage: test-filesystems.sh up DIR    (as root)
#        test-filesystems.sh down DIR
#
# up mounts, under DIR:
#   DIR/xfs     xfs on a loop-mounted sparse image DIR/xfs.img (1 GiB)
#   DIR/btrfs   btrfs likewise (DIR/btrfs.img)
#   DIR/fuse    a FUSE passthrough (tests/fuse/passthrough.c, built here
#               against libfuse3) of DIR/fuse-backing
# and makes DIR/ext4, a directory, when DIR is on ext4 (else one under
# /var/tmp if that is ext4).  It prints one line QTEST_FS_<NAME>_DIR=PATH
# on stdout for each filesystem it could set up, and says on stderr why
# it could not set up the others.  Running it again reuses what is
# mounted.  down unmounts and removes all of it; it is quiet when there is
# nothing to do.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

usage() {
    echo "usage: $0 up|down DIR" >&2
    exit 2
}
[ $# = 2 ] || usage
action=$1
dir=$2

say() { echo "test-filesystems: $*" >&2; }

# mounted PATH: something is mounted there (mountpoint(1) cannot tell
# for a FUSE mount whose server died)
mounted() { findmnt -rn --mountpoint "$1" >/dev/null 2>&1; }

# usable PATH: mounted and answering; a dead mount is unmounted
usable() {
    mounted "$1" || return 1
    stat -f "$1" >/dev/null 2>&1 && return 0
    umount "$1" 2>/dev/null || umount -l "$1"
    return 1
}

# loop_fs NAME MKFS...: a sparse 1 GiB image, formatted, mounted on DIR/NAME
loop_fs() {
    local name=$1 img=$dir/$1.img mnt=$dir/$1
    shift
    usable "$mnt" || mkdir -p "$mnt" || return 1
    if ! mounted "$mnt"; then
        if ! command -v "$1" >/dev/null; then
            say "$name: no $1 (scripts/install-deps.sh installs it)"
            return 1
        fi
        rm -f "$img"
        if ! { truncate -s 1G "$img" && "$@" "$img" >/dev/null 2>&1; }; then
            say "$name: $* $img failed"
            return 1
        fi
        mount -o loop "$img" "$mnt" 2>/dev/null || {
            say "$name: cannot loop-mount $img"
            return 1
        }
    fi
    chmod 0700 "$mnt"
    echo "QTEST_FS_${name^^}_DIR=$mnt"
}

fuse_fs() {
    local mnt=$dir/fuse backing=$dir/fuse-backing bin=$dir/passthrough
    local src=$top/tests/fuse/passthrough.c
    usable "$mnt" || mkdir -p "$mnt" || return 1
    mkdir -p "$backing" || return 1
    if ! mounted "$mnt"; then
        if [ ! -e /dev/fuse ]; then
            say "fuse: no /dev/fuse"
            return 1
        fi
        if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
            # shellcheck disable=SC2046
            cc -O2 -Wall -Werror -o "$bin" "$src" \
                $(pkg-config --cflags --libs fuse3 2>/dev/null) || {
                say "fuse: cannot build $src (needs libfuse3-dev)"
                return 1
            }
        fi
        # It goes to the background once mounted; unmounting ends it.
        "$bin" "$backing" "$mnt" -o default_permissions || {
            say "fuse: $bin failed to mount $mnt"
            return 1
        }
    fi
    echo "QTEST_FS_FUSE_DIR=$mnt"
}

# Where the ext4 directory goes when DIR is not on ext4: named after DIR,
# so that two runs with different DIRs keep apart.
ext4_alt() {
    echo "/var/tmp/qemu-mb-ext4.$(printf %s "$dir" | cksum | cut -d' ' -f1)"
}

ext4_dir() {
    local d
    for d in "$dir/ext4" "$(ext4_alt)"; do
        mkdir -p "$d" 2>/dev/null || continue
        if [ "$(findmnt -n -o FSTYPE --target "$d")" = ext4 ]; then
            chmod 0700 "$d"
            echo "QTEST_FS_EXT4_DIR=$d"
            return 0
        fi
        rmdir "$d" 2>/dev/null
    done
    say "ext4: neither $dir nor /var/tmp is on ext4"
    return 1
}

up() {
    if [ "$(id -u)" != 0 ]; then
        say "not root: no loop or FUSE mounts"
        ext4_dir
        return 0
    fi
    mkdir -p "$dir" || exit 1
    ext4_dir
    loop_fs xfs mkfs.xfs -q -f
    loop_fs btrfs mkfs.btrfs -q -f
    fuse_fs
    return 0
}

down() {
    local m
    for m in fuse xfs btrfs; do
        if mounted "$dir/$m"; then
            umount "$dir/$m" || umount -l "$dir/$m"
        fi
        rmdir "$dir/$m" 2>/dev/null
        rm -f "$dir/$m.img"
    done
    rm -rf "$dir/fuse-backing" "$dir/ext4" "$(ext4_alt)"
    rm -f "$dir/passthrough"
    rmdir "$dir" 2>/dev/null
    return 0
}

case $action in
up) up ;;
down) down ;;
*) usage ;;
esac
