#!/usr/bin/env bash
# Build the bare-metal test guest (tests/guest/bare/ and the workload,
# tests/guest/workload.c) into build/guest/bare-guest.elf (or
# $GUEST_OUT/bare-guest.elf): a 64-bit ELF that QEMU boots with -kernel
# through its PVH entry point (see tests/guest/bare/README.md).
#
# Needs gcc and binutils (as, ld) from Debian and nothing else: the
# guest is freestanding C and assembly and links no library.
#
# Idempotent: the image is remade only when a source, this script or the
# compiler changed.  Prints one line when it builds, nothing otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
src=$top/tests/guest/bare
out=${GUEST_OUT:-$top/build/guest}
elf=$out/bare-guest.elf

cc=${CC:-gcc}
ld=${LD:-ld}
cflags=(-std=gnu11 -O2 -g -Wall -Wextra -Werror
        -ffreestanding -nostdlib -fno-builtin -fno-common
        -fno-pic -fno-pie -mcmodel=small -mno-red-zone -mgeneral-regs-only
        -fno-stack-protector -fno-asynchronous-unwind-tables
        -fno-tree-loop-distribute-patterns)
ldflags=(-m elf_x86_64 -nostdlib -static -z noexecstack
         -z max-page-size=4096 --no-warn-rwx-segments)
sources=(entry.S hw.c lib.c main.c ../workload.c)
inputs=("${sources[@]}" bare.h entry.h bare.lds ../workload.h ../pagefmt.h)

mkdir -p "$out"
# One builder at a time.
exec 9>"$out/.bare.lock"
flock 9

stamp="$cc $($cc -dumpfullversion 2>/dev/null || true) $ld ${cflags[*]} ${ldflags[*]}"
stale=0
if [ ! -f "$elf" ] || [ "$(cat "$elf.cmd" 2>/dev/null)" != "$stamp" ] ||
   [ "$here/build-bare-guest.sh" -nt "$elf" ]; then
    stale=1
else
    for f in "${inputs[@]}"; do
        if [ "$src/$f" -nt "$elf" ]; then
            stale=1
        fi
    done
fi
if [ "$stale" = 0 ]; then
    exit 0
fi

echo "build-bare-guest: ${elf#"$top"/}" >&2
tmp=$(mktemp -d "$out/bare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
objs=()
for f in "${sources[@]}"; do
    o=$tmp/$(basename "${f%.*}").o
    "$cc" "${cflags[@]}" -I"$src" -I"$src/.." -c "$src/$f" -o "$o"
    objs+=("$o")
done
"$ld" "${ldflags[@]}" -T "$src/bare.lds" -o "$tmp/bare-guest.elf" "${objs[@]}"
mv "$tmp/bare-guest.elf" "$elf"
echo "$stamp" > "$elf.cmd"
