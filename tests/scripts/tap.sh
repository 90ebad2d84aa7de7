# shellcheck shell=bash
# TAP helpers for the project's shell tests (sourced).
#
# ok STATUS DESCRIPTION [LOG]: one case, passed if STATUS is 0; a failed
# case shows the first lines of LOG.  $n counts the cases, $failed the
# failures; end with: echo "1..$n"; exit $((failed > 0))
n=0
failed=0
ok() {
    n=$((n + 1))
    if [ "$1" = 0 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        failed=$((failed + 1))
        if [ -n "${3:-}" ]; then
            sed 's/^/# /' "$3" 2>/dev/null | head -20
        fi
    fi
}
