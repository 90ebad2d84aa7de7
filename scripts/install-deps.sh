#!/usr/bin/env bash
# Install every build and test dependency of the branch from Debian.
#
# Idempotent and quiet when nothing is missing.  Needs root to install;
# otherwise it prints the apt-get line to run.
#
# Usage: scripts/install-deps.sh [--libvirt]
#   --libvirt  also libvirt >= 11 from bookworm-backports (daemon, QEMU
#              driver, virsh), for scripts/check-libvirt.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

with_libvirt=0
for arg in "$@"; do
    case $arg in
    --libvirt) with_libvirt=1 ;;
    *)
        echo "usage: $0 [--libvirt]" >&2
        exit 2
        ;;
    esac
done

# Packages from the release the machine runs (bookworm).
base_pkgs=(
    build-essential git xz-utils ca-certificates
    ninja-build pkg-config flex bison
    python3 python3-venv python3-distlib python3-setuptools
    libglib2.0-dev libpixman-1-dev zlib1g-dev libzstd-dev
    libgnutls28-dev
    libfdt-dev
    python3-matplotlib
    seabios ipxe-qemu qemu-system-data
    xfsprogs btrfs-progs fuse3 libfuse3-dev
)
# Packages that bookworm is too old for: taken from bookworm-backports.
bpo_pkgs=(meson python3-pycotap)
# Opt-in (--libvirt): bookworm has libvirt 9.0, which lacks mapped-ram save
# and postcopy-preempt; bookworm-backports has 11.x.  Installed as
# PACKAGE/bookworm-backports so that only libvirt itself comes from there.
libvirt_pkgs=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients)

missing() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null |
            grep -qx installed || echo "$p"
    done
}

meson_ok() {
    local v
    v=$(dpkg-query -W -f='${Version}' meson 2>/dev/null) || return 1
    dpkg --compare-versions "$v" ge 1.5
}

need_base=$(missing "${base_pkgs[@]}")
need_bpo=$(missing "${bpo_pkgs[@]}")
if ! meson_ok; then
    need_bpo="$need_bpo meson"
fi
need_bpo=$(echo $need_bpo | tr ' ' '\n' | sort -u | tr '\n' ' ')

# libvirt packages missing or older than 11 (bookworm's 9.0).
need_libvirt=
if [ "$with_libvirt" = 1 ]; then
    for p in "${libvirt_pkgs[@]}"; do
        v=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$p" 2>/dev/null) || v=
        case $v in
        "installed "*) dpkg --compare-versions "${v#installed }" ge 11 && continue ;;
        esac
        need_libvirt="$need_libvirt $p/bookworm-backports"
    done
fi

if [ -z "${need_base// /}" ] && [ -z "${need_bpo// /}" ] &&
   [ -z "${need_libvirt// /}" ] &&
   [ -r /etc/apt/sources.list.d/qemu-migration-branch.sources ]; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages; run as root:" >&2
    echo "  $here/apt-sources.sh && apt-get update && \\" >&2
    [ -n "${need_base// /}" ] && echo "  apt-get install -y" $need_base "&& \\" >&2
    echo "  apt-get install -y -t bookworm-backports" $need_bpo >&2
    if [ -n "${need_libvirt// /}" ]; then
        echo "  apt-get install -y --no-install-recommends" $need_libvirt >&2
    fi
    exit 1
fi

"$here/apt-sources.sh"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ -n "${need_base// /}" ]; then
    echo "install-deps: installing" $need_base
    apt-get install -y -qq --no-install-recommends $need_base >/dev/null
fi
if [ -n "${need_bpo// /}" ]; then
    echo "install-deps: installing from bookworm-backports:" $need_bpo
    apt-get install -y -qq --no-install-recommends \
        -t bookworm-backports $need_bpo >/dev/null
fi
if [ -n "${need_libvirt// /}" ]; then
    echo "install-deps: installing from bookworm-backports:" $need_libvirt
    apt-get install -y -qq --no-install-recommends $need_libvirt >/dev/null
fi
