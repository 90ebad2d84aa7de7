#!/usr/bin/env bash
# Run the branch's test suites against build/qemu and print one TAP-like
# line per case, then "N passed, N failed" as the last line.  A skip fails
# unless tests/skip-allowed.txt allows it (that list is printed first).
#
# Usage: run-checks.sh all|migration|full|compat|compat-smoke|guest|qtests|scripts
#   all        scripts, qtests, migration, compat-smoke and one mode of
#              the real-guest test (make check)
#   migration  upstream migration-test, quick set, one case per process
#   full       upstream migration-test --full -m thorough, one case per
#              process; the TAP summary is also kept in
#              tests/results/check-full-<build>.tap
#   compat     cross-binary runs, vanilla->patched and patched->vanilla
#              (QTEST_QEMU_BINARY_SRC/_DST): upstream migration-test cases
#              for every stream kind, our own qtests, and the real guest
#              (check-guest.py) in every mode; prints a matrix
#   compat-smoke  one precopy and one multifd case, both directions
#   guest      the real-guest end-to-end test (check-guest.py), every mode
#   qtests     our own qtests from tests/qtest/ (build/qemu/tests/branch)
#   scripts    the series tools' round-trip tests (tests/scripts/)
#
# Environment: BUILD=patched|vanilla (default patched); CASE_TIMEOUT
# seconds per case (default 600, 300 for full); MIGRATION_TEST_ARGS extra arguments
# for migration-test's case listing (e.g. "--full").
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

suite=${1:-all}
case ${BUILD:-patched} in
patched) build=$top/build/qemu ;;
vanilla) build=$top/build/vanilla ;;
*) echo "run-checks: BUILD must be patched or vanilla" >&2; exit 2 ;;
esac
qemu=$build/qemu-system-x86_64
timeout_s=${CASE_TIMEOUT:-600}
# compat: COMPAT_DIRS=v2p or p2v runs one direction (make check-compat
# runs the two side by side: the cases mostly wait, so two at once take
# little more than one), with results of its own.
compat_dirs=${COMPAT_DIRS:-v2p p2v}
compat_tag=""
[ "$compat_dirs" = "v2p p2v" ] || compat_tag=-${compat_dirs// /-}
# One directory per build and suite, so that suites can run side by side.
results=$top/build/test-results/${BUILD:-patched}/$suite$compat_tag
mkdir -p "$results"
summary=$results/summary.tap
: > "$summary"

export QTEST_QEMU_BINARY=$qemu
export PYTHON=$build/pyvenv/bin/python3
export G_TEST_DBUS_DAEMON=/bin/true

pass=0
fail=0
skip=0
n=0
seconds=0

# The skips allowed, each with the reason it cannot run here: one line
# "GLOB REASON" each in tests/skip-allowed.txt, GLOB matched against a
# case's name as printed (with its label, e.g. "compat-v2p:/x86_64/...").
# A skip of any other case counts as failed.
skip_allowed=$top/tests/skip-allowed.txt
allow_globs=()
allow_reasons=()
if [ -f "$skip_allowed" ]; then
    while read -r glob reason; do
        case $glob in
        '' | '#'*) continue ;;
        esac
        allow_globs+=("$glob")
        allow_reasons+=("$reason")
    done < "$skip_allowed"
fi

# skip_is_allowed NAME
skip_is_allowed() {
    local i
    for i in "${!allow_globs[@]}"; do
        # shellcheck disable=SC2053 # the right side is a glob
        [[ $1 == ${allow_globs[$i]} ]] && return 0
    done
    return 1
}

skip_allowed_banner() {
    local i
    [ ${#allow_globs[@]} = 0 ] &&
        echo "# skip allowed: none (${skip_allowed#"$top"/})"
    for i in "${!allow_globs[@]}"; do
        echo "# skip allowed: ${allow_globs[$i]}: ${allow_reasons[$i]}"
    done
}

# record STATUS NAME SECONDS [REASON]
record() {
    n=$((n + 1))
    seconds=$((seconds + $3))
    if [ "$1" = skip ] && ! skip_is_allowed "$2"; then
        set -- fail "$2" "$3" \
            "(skipped, not allowed by ${skip_allowed#"$top"/}: ${4:-})"
    fi
    case $1 in
    pass) pass=$((pass + 1)); line="ok $n $2 # ${3}s${4:+ $4}" ;;
    skip) skip=$((skip + 1)); line="ok $n $2 # SKIP ${4:-} (${3}s)" ;;
    *)    fail=$((fail + 1)); line="not ok $n $2 # ${3}s ${4:-}" ;;
    esac
    echo "$line"
    echo "$line" >> "$summary"
}

# Run every case of a GLib test binary in a process of its own: a failing
# case aborts the whole binary, and a hung one must not stop the others.
# GLib's -p runs the case at that path and also every case one level
# below it (/a/precopy runs /a/precopy/rewrite too), so the cases listed
# under the path are left out with -s; GLib prints an "ok N PATH # SKIP
# by request (-s option)" line for each of those.  Any other line is a
# case that ran: the log must hold exactly one result, for this case.
run_gtest_binary() {
    local bin=$1 label=$2 all cases c d start rc log status reason
    local skips res nres line name
    all=$("$bin" -l ${MIGRATION_TEST_ARGS:-} 2>/dev/null | grep '^/') || {
        record fail "$label" 0 "(could not list cases)"
        return
    }
    cases=$all
    if [ -n "${CASE_FILTER:-}" ]; then
        # A case asked for that the binary does not list is a failure,
        # not something to pass over.
        for c in $(grep -vxF -f <(echo "$cases") <(printf '%s\n' $CASE_FILTER)); do
            record fail "$label$c" 0 "(not listed by $(basename "$bin"))"
        done
        cases=$(grep -xF -f <(printf '%s\n' $CASE_FILTER) <<<"$cases")
    fi
    for c in $cases; do
        log=$results/$label${c//\//_}.log
        skips=()
        for d in $all; do
            [[ $d == "$c"/* ]] && skips+=(-s "$d")
        done
        start=$(date +%s)
        # Like meson's test runner: from the build directory, which links
        # scripts/ (analyze-migration.py) and qemu-img.
        (cd "$build" && timeout -k 15 "$timeout_s" "$bin" --tap -k \
            ${MIGRATION_TEST_ARGS:-} -p "$c" "${skips[@]}") > "$log" 2>&1
        rc=$?
        res=$(grep -E '^(not )?ok [0-9]+ ' "$log" |
                  grep -vF ' # SKIP by request (-s option)')
        nres=$(grep -c . <<<"$res")
        line=${res#*ok [0-9]* }
        name=${line%% # *}
        status=fail
        reason=""
        if [ $rc = 124 ] || [ $rc = 137 ]; then
            reason="(timed out after ${timeout_s}s)"
        elif [ $rc != 0 ]; then
            reason="(exit $rc, log: ${log#"$top"/})"
        elif [ "$nres" = 0 ]; then
            reason="(no result: case not run)"
        elif [ "$nres" != 1 ]; then
            reason="($nres results in one run, want 1: log: ${log#"$top"/})"
        elif [ "$name" != "$c" ]; then
            reason="(the result is for $name, log: ${log#"$top"/})"
        elif [[ $line == *" # SKIP"* ]]; then
            status=skip
            reason=${line#*" # SKIP"}
            reason=${reason# }
        elif [[ $res == "ok "* && $line != *" # TODO"* ]]; then
            status=pass
        else
            reason="(result: $res; log: ${log#"$top"/})"
        fi
        record $status "$label$c" $(($(date +%s) - start)) "$reason"
    done
}

accel_banner() {
    if echo quit | timeout 30 "$qemu" -accel kvm -machine none -nodefaults \
            -display none -monitor stdio >/dev/null 2>&1; then
        echo "# accelerator: kvm ($(uname -r); /dev/kvm usable)"
    else
        echo "# accelerator: tcg (no usable /dev/kvm)"
    fi
    echo "# qemu: $("$qemu" --version | head -1)"
}

run_migration() {
    run_gtest_binary "$build/tests/qtest/migration-test" migration-test
}

run_full() {
    # A case that hangs (dirty_ring on KVM-PVM) should not cost 10 min.
    timeout_s=${CASE_TIMEOUT:-300}
    MIGRATION_TEST_ARGS="--full -m thorough" run_migration
}

# Upstream cases that cover each kind of stream, for the compat matrix.
COMPAT_CASES="
/x86_64/migration/precopy/unix/plain
/x86_64/migration/precopy/unix/xbzrle
/x86_64/migration/precopy/tcp/plain/switchover-ack
/x86_64/migration/multifd/tcp/uri/plain/none
/x86_64/migration/multifd/tcp/plain/zlib
/x86_64/migration/multifd/tcp/plain/zstd
/x86_64/migration/multifd/tcp/plain/zero-page/legacy
/x86_64/migration/postcopy/plain
/x86_64/migration/postcopy/preempt/plain
/x86_64/migration/postcopy/recovery/plain
/x86_64/migration/postcopy/preempt/recovery/plain
/x86_64/migration/multifd+postcopy/plain
/x86_64/migration/multifd+postcopy/preempt/plain
/x86_64/migration/multifd+postcopy/recovery/tls/psk
/x86_64/migration/multifd+postcopy/preempt/recovery/tls/psk
/x86_64/migration/precopy/file
/x86_64/migration/precopy/file/mapped-ram
/x86_64/migration/multifd/file/mapped-ram
/x86_64/migration/multifd/file/mapped-ram/dio
"
# The real-guest modes that make check runs (check-guest runs them all).
GUEST_SMOKE_MODE=multifd,multifd-memfd,fresh-writes
COMPAT_SMOKE_CASES="
/x86_64/migration/precopy/unix/plain
/x86_64/migration/multifd/tcp/plain/zstd
"
# Our own qtests that make check runs across binaries (make check runs
# every case of ours branch->branch, and make check-compat every case in
# both directions): a case of each kind of stream and fault, so that CI
# stays within its time budget.
COMPAT_SMOKE_QTESTS="
/x86_64/migration/ram-bad-input/stream/control
/x86_64/migration/ram-bad-input/stream/truncated/pages
/x86_64/migration/ram-bad-input/stream/zero-run/truncated
/x86_64/migration/ram-bad-input/stream/ramblock/unknown
/x86_64/migration/ram-bad-input/dropped/destination
/x86_64/migration/ram-bad-input/dropped/source
/x86_64/migration/ram-fault/enospc/precopy
/x86_64/migration/ram-fault/enospc/multifd
/x86_64/migration/ram-integrity/precopy
/x86_64/migration/ram-integrity/multifd/none
/x86_64/migration/ram-integrity/multifd/zstd
/x86_64/migration/ram-integrity/postcopy
/x86_64/migration/ram-integrity/precopy/anon
/x86_64/migration/ram-integrity/fs/ext4/precopy-paused
/x86_64/migration/ram-integrity/fs/fuse/multifd-paused
/x86_64/migration/ram-exact/mapped-ram/multifd
/x86_64/migration/ram-exact/mapped-ram/lazy-multifd
/x86_64/migration/ram-exact/mapped-ram/lazy-x-fd-multifd
/x86_64/migration/ram-exact/xbzrle/rewrite
/x86_64/migration/ram-exact/postcopy/recovery-preempt
"

# run_branch_qtests LABEL [CASES]: our qtests, every case or only CASES
# (each of which some binary must list).
run_branch_qtests() {
    local label=$1 want=${2:-} t listed mine c found=""
    for t in "$build"/tests/branch/*-test; do
        [ -x "$t" ] || continue
        if [ -z "$want" ]; then
            run_gtest_binary "$t" "$label"
            continue
        fi
        listed=$("$t" -l 2>/dev/null | grep '^/')
        mine=$(grep -xF -f <(printf '%s\n' $want) <<<"$listed")
        found=$found$'\n'$mine
        if [ -n "$mine" ]; then
            CASE_FILTER="$mine" run_gtest_binary "$t" "$label"
        fi
    done
    for c in $want; do
        grep -qxF -- "$c" <<<"$found" ||
            record fail "$label$c" 0 "(no test binary lists it)"
    done
}

# run_compat CASES [GUEST-MODES [QTESTS]]: every case in both directions,
# our qtests (all, or QTESTS), and the real guest in the given modes
# (check-guest.py), then the matrix.
run_compat() {
    local cases=$1 guest_modes=${2:-} qtests=${3:-} dir
    local v=$top/build/vanilla/qemu-system-x86_64
    local t c line matrix=$results/compat-matrix.txt
    if [ ! -x "$v" ]; then
        record fail compat 0 "(no vanilla build: make vanilla)"
        return
    fi
    for dir in $compat_dirs; do
        # As migration-test wants it: QTEST_QEMU_BINARY is one side, and
        # exactly one of _SRC or _DST names the other.
        unset QTEST_QEMU_BINARY_SRC QTEST_QEMU_BINARY_DST
        if [ $dir = v2p ]; then
            export QTEST_QEMU_BINARY_SRC=$v
        else
            export QTEST_QEMU_BINARY_DST=$v
        fi
        MIGRATION_TEST_ARGS="--full -m thorough" CASE_FILTER="$cases" \
            run_gtest_binary "$build/tests/qtest/migration-test" "compat-$dir:"
        run_branch_qtests "compat-$dir:" "$qtests"
        if [ "$guest_modes" ]; then
            if [ $dir = v2p ]; then
                run_guest "compat-$dir:" --src vanilla --dst patched \
                    --mode "$guest_modes"
            else
                run_guest "compat-$dir:" --src patched --dst vanilla \
                    --mode "$guest_modes"
            fi
        fi
    done
    unset QTEST_QEMU_BINARY_SRC QTEST_QEMU_BINARY_DST
    {
        line=$(printf '%-60s' case)
        for dir in $compat_dirs; do
            case $dir in
            v2p) line="$line $(printf '%-16s' vanilla-\>patched)" ;;
            p2v) line="$line $(printf '%-16s' patched-\>vanilla)" ;;
            esac
        done
        echo "$line"
        # The case names of the result lines (not the log names in them)
        for c in $(sed -nE 's/^(not )?ok [0-9]+ compat-(v2p|p2v):([^ ]*).*/\3/p' \
                "$summary" | awk '!seen[$0]++'); do
            line=$(printf '%-60s' "$c")
            for dir in $compat_dirs; do
                if grep -q "^ok [0-9]* compat-$dir:$c # SKIP" "$summary"; then
                    line="$line $(printf '%-16s' skip)"
                elif grep -q "^ok [0-9]* compat-$dir:$c " "$summary"; then
                    line="$line $(printf '%-16s' pass)"
                else
                    line="$line $(printf '%-16s' FAIL)"
                fi
            done
            echo "$line"
        done
    } > "$matrix"
    sed 's/^/# /' "$matrix"
}

# ram-integrity-test's "thp" cases want the destination's RAM on a tmpfs
# that gives shared mappings transparent huge pages (QTEST_THP_DIR).
# Mounting one takes root; without it those cases report a skip.
thp_mount() {
    local dir=$results/thp
    [ -n "${QTEST_THP_DIR:-}" ] && return
    mkdir -p "$dir" || return
    mountpoint -q "$dir" ||
        mount -t tmpfs -o huge=advise,size=1g,mode=0700 ram-thp "$dir" \
            2>/dev/null || return
    trap 'umount "$results/thp" 2>/dev/null' EXIT
    export QTEST_THP_DIR=$dir
}

# ram-integrity-test's "fs/" cases want directories on ext4, xfs, btrfs
# and a FUSE mount (QTEST_FS_EXT4_DIR and so on), which
# scripts/test-filesystems.sh sets up under $results/fs: loop mounts and
# FUSE take root, without it only ext4 is there and the other cases
# report a skip.  They are unmounted at exit, after whatever else the
# EXIT trap already does.
fs_mount() {
    local line old=
    [ -n "${QTEST_FS_EXT4_DIR:-}${QTEST_FS_XFS_DIR:-}" ] && return
    [ -n "${QTEST_FS_BTRFS_DIR:-}${QTEST_FS_FUSE_DIR:-}" ] && return
    while IFS= read -r line; do
        case $line in
        QTEST_FS_*_DIR=/*) export "${line?}" ;;
        esac
    done < <("$here/test-filesystems.sh" up "$results/fs")
    eval "old=$(trap -p EXIT | sed -e 's/^trap -- //' -e 's/ EXIT$//')"
    trap "${old:+$old; }"'"$here/test-filesystems.sh" down "$results/fs"' \
        EXIT
}

# ram-exact-test's "hugetlbfs" cases want a hugetlbfs with 2 MiB pages for
# the RAM of both QEMUs (QTEST_HUGETLB_DIR).  These machines start with no
# huge pages: add ours to vm.nr_hugepages, mount one, and give both back
# at exit.  make check-compat runs two of these at once, so each adds and
# later takes away its own pages, under a lock.  Without root those cases
# report a skip, which tests/skip-allowed.txt does not allow.
HUGETLB_PAGES=160
hugetlb_adjust() {
    (
        flock 9
        echo $(( $(cat /proc/sys/vm/nr_hugepages) + $1 )) \
            > /proc/sys/vm/nr_hugepages
    ) 9> /run/lock/qemu-migration-branch-hugetlb.lock
}
hugetlb_mount() {
    local dir=$results/hugetlb old
    local fr=/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages
    [ -n "${QTEST_HUGETLB_DIR:-}" ] && return
    [ -w /proc/sys/vm/nr_hugepages ] && [ -r "$fr" ] || return
    hugetlb_adjust "$HUGETLB_PAGES" 2>/dev/null || return
    if [ "$(cat "$fr")" -lt "$HUGETLB_PAGES" ]; then
        hugetlb_adjust "-$HUGETLB_PAGES"
        echo "# hugetlbfs: could not reserve $HUGETLB_PAGES pages of 2 MiB"
        return
    fi
    mkdir -p "$dir" || return
    mountpoint -q "$dir" ||
        mount -t hugetlbfs -o pagesize=2M,mode=0700 ram-hugetlb "$dir" \
            2>/dev/null || { hugetlb_adjust "-$HUGETLB_PAGES"; return; }
    eval "old=$(trap -p EXIT | sed -e 's/^trap -- //' -e 's/ EXIT$//')"
    trap "${old:+$old; }"'umount "$results/hugetlb" 2>/dev/null; '\
'hugetlb_adjust "-$HUGETLB_PAGES"' EXIT
    export QTEST_HUGETLB_DIR=$dir
}

run_qtests() {
    local t
    for t in "$build"/tests/branch/*-test; do
        [ -x "$t" ] || continue
        run_gtest_binary "$t" "$(basename "$t")"
    done
}

# run_tap LABEL NAME LOG COMMAND...: run a command that prints TAP-like
# lines ("ok N - what", or "ok N what # 12s details") and count each of
# them as a case of ours, named LABEL plus its own name; its "# accelerator:"
# and similar header lines are shown too.  A command that fails without a
# "not ok" line is a failed case called NAME.
run_tap() {
    local label=$1 fallback=$2 log=$3 start rc line status name secs details
    shift 3
    start=$(date +%s)
    timeout -k 15 "$timeout_s" "$@" > "$log" 2>&1
    rc=$?
    while read -r line; do
        case $line in
        "ok "*) status=pass ;;
        "not ok "*) status=fail ;;
        "# accelerator: "* | "# src: "* | "# dst: "* | "# guest: "*)
            echo "$line" | tee -a "$summary"
            continue
            ;;
        *) continue ;;
        esac
        line=${line#*ok [0-9]* }
        line=${line#- }
        name=${line%% # *}
        secs=0
        details=${line#"$name"}
        if [[ $details =~ ^\ \#\ ([0-9]+)s\ ?(.*)$ ]]; then
            secs=${BASH_REMATCH[1]}
            details=${BASH_REMATCH[2]}
        elif [ $status = pass ] &&
                [[ $details =~ ^\ \#\ SKIP\ ?(.*)$ ]]; then
            status=skip
            details=${BASH_REMATCH[1]}
        fi
        record $status "$label$name" "$secs" "$details"
    done < "$log"
    if [ $rc != 0 ] && ! grep -q '^not ok' "$log"; then
        record fail "$fallback" $(($(date +%s) - start)) \
            "(exit $rc, log: ${log#"$top"/})"
    fi
}

run_scripts() {
    local t
    for t in "$top"/tests/scripts/test-*.sh; do
        run_tap "$(basename "$t" .sh): " "$(basename "$t" .sh)" \
            "$results/$(basename "$t" .sh).log" bash "$t"
    done
}

# run_guest LABEL CHECK-GUEST-ARGS...: the real-guest end-to-end test;
# its cases are called LABEL plus check-guest/<mode>.
run_guest() {
    local label=$1
    shift
    "$here/build-guest.sh" || {
        record fail "${label}build-guest" 0 "(scripts/build-guest.sh failed)"
        return
    }
    "$here/build-bare-guest.sh" || {
        record fail "${label}build-bare-guest" 0 \
            "(scripts/build-bare-guest.sh failed)"
        return
    }
    run_tap "$label" "${label}check-guest" "$results/check-guest.log" \
        "$here/check-guest.py" --results "$results/guest" "$@"
}

accel_banner | tee -a "$summary"
skip_allowed_banner | tee -a "$summary"
case $suite in
all|compat|compat-smoke|qtests) thp_mount; fs_mount; hugetlb_mount ;;
esac
case $suite in
all)
    run_scripts
    run_qtests
    run_migration
    run_compat "$COMPAT_SMOKE_CASES" "" "$COMPAT_SMOKE_QTESTS"
    run_guest "" --mode "$GUEST_SMOKE_MODE"
    ;;
migration) run_migration ;;
full) run_full ;;
compat) run_compat "$COMPAT_CASES" all ;;
compat-smoke) run_compat "$COMPAT_SMOKE_CASES" "" "$COMPAT_SMOKE_QTESTS" ;;
guest) run_guest "" ;;
qtests) run_qtests ;;
scripts) run_scripts ;;
*) echo "run-checks: unknown suite $suite" >&2; exit 2 ;;
esac

# The last line is "N passed, N failed" (.ci/run reads it); a skip the
# allow-list does not name is counted as failed, one it names is neither.
tail="$pass passed, $fail failed"
skipped=""
[ $skip -gt 0 ] &&
    skipped="$skip skipped, each allowed by ${skip_allowed#"$top"/}"
echo "# results: ${summary#"$top"/}"
if [ "$suite" = compat ]; then
    kept=$top/tests/results/check-compat$compat_tag.txt
    mkdir -p "$(dirname "$kept")"
    { echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) make check-compat:" \
          "$tail${skipped:+ ($skipped)}"
      grep '^# ' "$summary"
      cat "$results/compat-matrix.txt"; } > "$kept"
    echo "# kept: ${kept#"$top"/}"
fi
if [ "$suite" = full ]; then
    kept=$top/tests/results/check-full-${BUILD:-patched}.tap
    mkdir -p "$(dirname "$kept")"
    { echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) migration-test --full -m thorough"
      cat "$summary"
      echo "1..$n"
      echo "# summary: $tail${skipped:+ ($skipped)}; ${seconds}s in cases"
      grep -E '^not ok|# SKIP' "$summary" | sed 's/^/#   not passed: /'
      echo "# reasons: tests/KNOWN-ENVIRONMENT.md"; } > "$kept"
    echo "# kept: ${kept#"$top"/}"
fi
[ "$skipped" ] && echo "# $skipped"
echo "$tail"
[ $fail = 0 ]
