#!/usr/bin/env bash
# Run upstream's scripts/checkpatch.pl over every patch in the series and
# summarise errors and warnings per patch.  Exits non-zero on any error.
# VERBOSE=1 prints checkpatch's full report for patches with findings.
set -euo pipefail
# shellcheck source=scripts/series-lib.sh
. "$(dirname "$0")/series-lib.sh"

cp=$QEMU_DIR/scripts/checkpatch.pl
[ -x "$cp" ] || { echo "checkpatch: no $cp; run 'make prepare'" >&2; exit 1; }

total_e=0
total_w=0
n=0
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    n=$((n + 1))
    out=$(cd "$QEMU_DIR" && perl "$cp" --no-color "$PATCH_DIR/$p" 2>&1 || true)
    summary=$(grep -E '^total: [0-9]+ errors, [0-9]+ warnings' <<<"$out" | tail -1)
    if [ -z "$summary" ]; then
        echo "checkpatch: $p: no summary from checkpatch.pl:" >&2
        echo "$out" | tail -5 >&2
        total_e=$((total_e + 1))
        continue
    fi
    e=$(sed -E 's/^total: ([0-9]+) errors.*/\1/' <<<"$summary")
    w=$(sed -E 's/^total: [0-9]+ errors, ([0-9]+) warnings.*/\1/' <<<"$summary")
    printf '%-72s %3d errors %3d warnings\n' "$p" "$e" "$w"
    if [ "${VERBOSE:-0}" = 1 ] && [ $((e + w)) -gt 0 ]; then
        grep -E -A4 '^(ERROR|WARNING):' <<<"$out" | sed 's/^/    /'
    fi
    total_e=$((total_e + e))
    total_w=$((total_w + w))
done < "$PATCH_DIR/series"
echo "checkpatch: $n patches, $total_e errors, $total_w warnings"
[ "$total_e" = 0 ]
