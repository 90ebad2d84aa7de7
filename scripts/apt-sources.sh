#!/usr/bin/env bash
# Add the apt entries this project needs, derived from the machine's own
# Debian apt configuration:
#   - deb-src for sid   (to fetch the pinned upstream source package)
#   - deb for bookworm-backports (meson >= 1.5, python3-pycotap)
#
# The archive URI is never hard-coded: it is read from the existing
# sources (one-line sources.list or deb822 *.sources) and reused.
#
# Usage: scripts/apt-sources.sh [--print-uri]
set -euo pipefail

list_file=/etc/apt/sources.list.d/qemu-migration-branch.sources

# Print the first Debian archive URI (not the security archive) that the
# machine's apt configuration uses for its main suite.
debian_uri() {
    local f
    {
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -r "$f" ] || continue
            # deb [opts] URI suite comp...
            sed -nE 's/^[[:space:]]*deb(-src)?[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\3 \4/p' "$f"
        done
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -r "$f" ] || continue
            [ "$f" = "$list_file" ] && continue
            awk 'BEGIN { RS=""; FS="\n" }
                 {
                     uri=""; suites="";
                     for (i = 1; i <= NF; i++) {
                         if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); uri=$i }
                         if ($i ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", $i); suites=$i }
                     }
                     split(uri, u, /[ \t]+/); split(suites, s, /[ \t]+/);
                     if (u[1] != "") print u[1], s[1];
                 }' "$f"
        done
    } | awk '$2 !~ /-security$|\/updates$/ && $1 ~ /debian\/?$/ { print $1; exit }'
}

uri=$(debian_uri)
if [ -z "$uri" ]; then
    echo "apt-sources: no Debian archive URI found in /etc/apt/sources*;" >&2
    echo "apt-sources: add a Debian 'deb' entry for bookworm first." >&2
    exit 1
fi
if [ "${1:-}" = "--print-uri" ]; then
    echo "$uri"
    exit 0
fi

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
want=$(cat <<SRC
# Written by the qemu migration branch's scripts/apt-sources.sh.
# The URI is taken from this machine's own Debian apt sources.
Types: deb-src
URIs: $uri
Suites: sid
Components: main
Signed-By: $keyring

Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: $keyring
SRC
)

if [ -r "$list_file" ] && [ "$(cat "$list_file")" = "$want" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "apt-sources: must run as root to write $list_file" >&2
    exit 1
fi
printf '%s\n' "$want" > "$list_file"
# A fresh entry needs fresh lists.
rm -f /var/lib/apt/periodic/qemu-migration-branch-updated
echo "apt-sources: wrote $list_file (archive: $uri)"
