#!/usr/bin/env bash
# The one place that holds QEMU's configure flags, for the patched branch
# and for the vanilla twin alike.
#
# Usage: configure-wrapper.sh SRCDIR BUILDDIR PKGVERSION
#        configure-wrapper.sh --print-firmwarepath
#
# Re-running with the same arguments is a no-op; with other arguments it
# reconfigures BUILDDIR in place (meson keeps what it can).
set -euo pipefail

# Debian's seabios, ipxe-qemu and qemu-system-data ship the firmware the
# +ds source tarball does not have.
firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu

if [ "${1:-}" = --print-firmwarepath ]; then
    echo "$firmwarepath"
    exit 0
fi
if [ $# != 3 ] && [ $# != 4 ]; then
    echo "usage: $0 SRCDIR BUILDDIR PKGVERSION [x86|targets|fuzz]" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
build=$2
pkgversion=$3
profile=${4:-x86}

case $profile in
x86)
    # The build every test, the demo and the benchmark run.
    flags=(
        --target-list=x86_64-softmmu
        --enable-kvm
        --enable-zstd
        --enable-gnutls
    )
    ;;
targets)
    # make check-targets: the series compiles for the other hosts'
    # targets too (minimal; ppc64 and aarch64 take libfdt from Debian,
    # as the tarball has no dtc subproject).
    flags=(
        --target-list=x86_64-softmmu,aarch64-softmmu,ppc64-softmmu,s390x-softmmu
        --without-default-features
        --enable-fdt=system
        --enable-zstd
    )
    ;;
fuzz)
    # make fuzz: the libFuzzer build of qemu-fuzz-x86_64 with ASan and
    # UBSan (scripts/fuzz.sh), Debian's clang 19; minimal.
    flags=(
        --target-list=x86_64-softmmu
        --without-default-features
        --cc=clang-19
        --cxx=clang++-19
        --enable-fuzzing
        --enable-asan
        --enable-ubsan
    )
    ;;
*)
    echo "configure-wrapper: unknown profile $profile" >&2
    exit 2
    ;;
esac
flags+=(
    --disable-docs
    --disable-rust
    --disable-download
    --python=/usr/bin/python3
    --firmwarepath="$firmwarepath"
    --with-pkgversion="$pkgversion"
)

mkdir -p "$build"
stamp="$build/.configure-wrapper.args"
want=$(printf '%s\n' "$src" "${flags[@]}")
have=$(cat "$stamp" 2>/dev/null || true)
if [ -f "$build/build.ninja" ] && [ "$have" = "$want" ]; then
    exit 0
fi
# Only the version string changed (a new commit): no need to run the
# whole of configure again.
if [ -f "$build/build.ninja" ] && [ -x "$build/pyvenv/bin/meson" ] &&
   [ "$(grep -v -- '^--with-pkgversion=' <<<"$have")" = \
     "$(grep -v -- '^--with-pkgversion=' <<<"$want")" ]; then
    "$build/pyvenv/bin/meson" configure "$build" -Dpkgversion="$pkgversion" \
        > "$build/configure.log" 2>&1
    printf '%s\n' "$want" > "$stamp"
    exit 0
fi
rm -f "$stamp"
(cd "$build" && "$src/configure" "${flags[@]}") > "$build/configure.log" 2>&1 || {
    tail -30 "$build/configure.log" >&2
    echo "configure-wrapper: configure failed; see $build/configure.log" >&2
    exit 1
}
printf '%s\n' "$want" > "$stamp"
