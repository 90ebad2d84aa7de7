#!/usr/bin/env bash
# Build the Linux test guest (tests/guest/) into build/guest/ (or
# $GUEST_OUT):
#   vmlinuz             Debian bookworm's cloud kernel, as packaged
#   init                tests/guest/{guest,workload}.c, static
#   initramfs.cpio.gz   /init, /dev/console and the mount points
#
# The kernel package is the one Debian's linux-image-cloud-amd64
# metapackage depends on; it is fetched with apt-get download into
# downloads/, checked against apt's SHA256, and unpacked, never installed.
# KERNEL_DEB=/path/to/linux-image-*.deb uses that package instead.
#
# Idempotent: each output is remade only when its inputs changed.  Prints
# one line per step it does, nothing when all is up to date.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
src=$top/tests/guest
out=${GUEST_OUT:-$top/build/guest}
dl=${DOWNLOADS:-$top/downloads}
meta=linux-image-cloud-amd64

mkdir -p "$out" "$dl"
# One builder at a time.
exec 9>"$out/.lock"
flock 9

say() { echo "build-guest: $*" >&2; }

# "PACKAGE VERSION" of the kernel image that the metapackage depends on
# (it pins the version with "="), "" if apt does not know the metapackage.
image_pkg() {
    apt-cache show --no-all-versions "$meta" 2>/dev/null |
        sed -nE 's/^Depends:[[:space:]]*(linux-image-[^[:space:],]+)[[:space:]]*\(=[[:space:]]*([^)[:space:]]+)\).*/\1 \2/p' |
        head -n1
}

# The SHA256 that apt's lists give for PACKAGE=VERSION.
pkg_sha256() {
    apt-cache show "$1=$2" 2>/dev/null | sed -nE 's/^SHA256:[[:space:]]*//p' |
        head -n1
}

sha256() { sha256sum < "$1" | cut -d' ' -f1; }

# Path of the kernel package to use, downloaded if needed.
kernel_deb() {
    local pv pkg ver sha deb tmp f

    if [ -n "${KERNEL_DEB:-}" ]; then
        echo "$KERNEL_DEB"
        return
    fi
    pv=$(image_pkg)
    if [ -z "$pv" ] && [ "$(id -u)" = 0 ]; then
        say "$meta unknown to apt; apt-get update"
        apt-get update -qq >&2
        pv=$(image_pkg)
    fi
    if [ -z "$pv" ]; then
        # No apt lists: fall back on a package downloaded before.
        deb=$(find "$dl" -maxdepth 1 -name 'linux-image-*-cloud-amd64_*.deb' |
              sort -V | tail -n1)
        if [ -n "$deb" ]; then
            say "$meta unknown to apt; using ${deb#"$top"/}"
            echo "$deb"
            return
        fi
        say "cannot resolve $meta with apt-cache"
        exit 1
    fi
    read -r pkg ver <<<"$pv"
    # apt-get download names the file with the epoch colon escaped.
    deb=$dl/${pkg}_${ver//:/%3a}_amd64.deb
    if [ -f "$deb" ]; then
        # Checked when it was unpacked, or check it now.
        if [ "$(cat "$out/vmlinuz.from" 2>/dev/null)" = "$(deb_stamp "$deb")" ] ||
           [ "$(sha256 "$deb")" = "$(pkg_sha256 "$pkg" "$ver")" ]; then
            echo "$deb"
            return
        fi
        say "${deb#"$top"/}: sha256 mismatch, downloading again"
    fi
    sha=$(pkg_sha256 "$pkg" "$ver")
    say "apt-get download $pkg=$ver"
    # apt downloads as the unprivileged _apt user where it can: give it a
    # directory of its own under /tmp.
    tmp=$(mktemp -d)
    chmod 755 "$tmp"
    if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
        chown _apt "$tmp"
    fi
    if ! (cd "$tmp" && apt-get download -qq "$pkg=$ver" >&2); then
        rm -rf "$tmp"
        say "apt-get download $pkg=$ver failed"
        exit 1
    fi
    f=$(find "$tmp" -maxdepth 1 -name '*.deb' | head -n1)
    if [ -z "$f" ] || [ -z "$sha" ] || [ "$(sha256 "$f")" != "$sha" ]; then
        rm -rf "$tmp"
        say "$pkg $ver: missing or sha256 mismatch"
        exit 1
    fi
    cp "$f" "$deb.tmp"
    mv "$deb.tmp" "$deb"
    rm -rf "$tmp"
    echo "$deb"
}

deb_stamp() { echo "$(basename "$1") $(stat -c %s "$1")"; }

# --- kernel ---
deb=$(kernel_deb)
stamp=$(deb_stamp "$deb")
if [ ! -f "$out/vmlinuz" ] || [ "$(cat "$out/vmlinuz.from" 2>/dev/null)" != "$stamp" ]; then
    say "kernel from $(basename "$deb")"
    tmp=$(mktemp -d "$out/kernel.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    dpkg-deb --fsys-tarfile "$deb" |
        tar -x -C "$tmp" --wildcards './boot/vmlinuz-*'
    set -- "$tmp"/boot/vmlinuz-*
    if [ $# != 1 ] || [ ! -f "$1" ]; then
        say "$(basename "$deb") holds no single boot/vmlinuz-*"
        exit 1
    fi
    mv "$1" "$out/vmlinuz"
    echo "$stamp" > "$out/vmlinuz.from"
    rm -rf "$tmp"
    trap - EXIT
fi

# --- /init ---
cc=${CC:-gcc}
cflags="-static -O2 -Wall -Wextra -Werror -s"
cstamp="$cc $cflags $($cc -dumpfullversion 2>/dev/null || true)"
if [ ! -f "$out/init" ] ||
   [ "$(cat "$out/init.cmd" 2>/dev/null)" != "$cstamp" ] ||
   [ -n "$(cd "$src" && find guest.c workload.c workload.h pagefmt.h \
           -newer "$out/init")" ]; then
    say "cc tests/guest/guest.c tests/guest/workload.c"
    # shellcheck disable=SC2086
    $cc $cflags -I"$src" -o "$out/init.tmp" "$src/guest.c" "$src/workload.c"
    mv "$out/init.tmp" "$out/init"
    echo "$cstamp" > "$out/init.cmd"
fi

# --- initramfs ---
img=$out/initramfs.cpio.gz
if [ ! -f "$img" ] || [ "$out/init" -nt "$img" ] ||
   [ "$here/mkcpio.py" -nt "$img" ] || [ "$here/build-guest.sh" -nt "$img" ]; then
    say "initramfs ${img#"$top"/}"
    "$here/mkcpio.py" --gzip "$img" <<LIST
dir  /dev 0755
nod  /dev/console 0600 c 5 1
dir  /proc 0555
dir  /sys 0555
file /init $out/init 0755
LIST
fi
