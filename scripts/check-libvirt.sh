#!/usr/bin/env bash
# libvirt as a real client of our QEMU (make check-libvirt).
#
# Starts two system-mode libvirtd (libvirt >= 11 from bookworm-backports)
# on this machine, each in a private mount namespace with state
# directories of its own, and drives the test guest of tests/guest/
# through them with virsh, the binary under test set as <emulator>:
#
#   start                       virsh create on daemon a
#   save/restore raw            virsh save / virsh restore
#   save/restore sparse-pc2     --image-format sparse --parallel-channels 2
#                               (mapped-ram + multifd)
#   save/restore sparse-pc2-bypass-cache     ... --bypass-cache (direct-io)
#   migrate a->b plain          virsh migrate --live --p2p
#   migrate b->a parallel2      ... --parallel --parallel-connections 2
#   migrate a->b postcopy       ... --postcopy --postcopy-after-precopy,
#                               bandwidth-capped so that postcopy-active is
#                               reached (checked in the QMP events: source
#                               postcopy-active, destination completed)
#   migrate postcopy-parallel2  ... --postcopy --postcopy-after-precopy
#                               --parallel --parallel-connections 2 (libvirt
#                               sets multifd with postcopy: upstream's
#                               multifd+postcopy protocol)
#   save-sparse                 --image-format sparse (mapped-ram, libvirt
#                               sets multifd with 1 channel)
#   restore-sparse-lazy         virsh restore --xml: the image's domain XML
#                               with <qemu:commandline> -global
#                               migration.x-lazy-restore=on (the branch's
#                               lazy restore; libvirt does not know the
#                               capability, so it leaves it on)
#   save-sparse-pc2-lazy        the lazily restored domain saved again,
#                               --image-format sparse --parallel-channels 2
#                               (x-lazy-restore stays on: it has no effect
#                               on the outgoing side)
#   restore-sparse-pc2-lazy     virsh restore --parallel-channels 2 of that
#                               image, lazy through the domain XML the image
#                               carries
#   guest-log                   the whole serial log: READY, no error line
#
# A lazy restore must be lazy: on the restoring daemon, the MIGRATION
# event completed and the RESUME event (libvirt's cont) must both come
# before the X_RAM_RESIDENT event, whose data (bytes, ms) the TAP line
# shows; the QEMU log must have no error line from the restore on; and
# the guest must pass the same checks as after every other case.  A
# binary without x-lazy-restore (vanilla) reports the four lazy-restore
# cases as "ok N ... # SKIP"; a skip is counted neither as passed nor as
# failed, on a "#" line before the last one.
#
# After each case the domain must be running on the expected side only,
# and the guest's serial log (one file that every QEMU of the run appends
# to) must show its heartbeat advancing and two more clean verification
# passes (guest.verify=1), with no ERROR, VERIFY-BAD or errors>0 line.
#
# Prints one TAP-like line per case (the duration is that of the virsh
# command; for a lazy restore, the evidence of it follows), and "N
# passed, N failed" as the last line; exits non-zero on any failure.
# The QMP commands libvirt sent (from the daemons' debug logs) are
# summarised per case in tests/results/check-libvirt-<build>.txt together
# with the versions and the results; full logs, QEMU's logs among them,
# are in build/test-results/libvirt-<build>/.
#
# Usage: scripts/check-libvirt.sh [patched|vanilla]     (or BUILD=...)
# Environment: QEMU=/path overrides the binary; ACCEL=tcg|kvm overrides
# the choice of accelerator; CASE_TIMEOUT seconds per virsh command
# (default 240).  Needs root.  Network traffic stays on 127.0.0.1: every
# migration passes --listen-address 127.0.0.1 --migrateuri
# tcp://127.0.0.1 (qemu.conf refuses a local address as migration_host or
# migration_address, and libvirt would otherwise use the host name).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

which=${1:-${BUILD:-patched}}
case $which in
patched) bdir=$top/build/qemu ;;
vanilla) bdir=$top/build/vanilla ;;
*)
    echo "usage: $0 [patched|vanilla]" >&2
    exit 2
    ;;
esac
qemu=${QEMU:-$bdir/qemu-system-x86_64}
results=$top/build/test-results/libvirt-$which
summary=$top/tests/results/check-libvirt-$which.txt
op_timeout=${CASE_TIMEOUT:-240}
dom=check-libvirt
guest_dir=${GUEST_OUT:-$top/build/guest}
mem_mib=512
# A small test area, dirtied slowly, verified continuously by the guest.
cmdline="console=ttyS0 quiet panic=-1 guest.mib=128 guest.dirty=4 guest.hb=100 guest.verify=1"
# Postcopy: precopy capped so that the first pass takes a few seconds and
# the guest dirties enough in it that libvirt switches to postcopy.
postcopy_bw=(--bandwidth 25 --postcopy-bandwidth 10)

die() {
    echo "check-libvirt: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (it starts two system-mode libvirtd)"
"$here/install-deps.sh" --libvirt || die "cannot install libvirt (scripts/install-deps.sh --libvirt)"
"$here/build-guest.sh" || die "cannot build the guest (scripts/build-guest.sh)"
[ -x "$qemu" ] || die "no $qemu (make build / make vanilla)"
for f in vmlinuz initramfs.cpio.gz; do
    [ -f "$guest_dir/$f" ] || die "no $guest_dir/$f"
done
for c in libvirtd virsh unshare python3; do
    command -v "$c" >/dev/null || die "$c not found"
done
for d in /etc/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
    mkdir -p "$d"
done

# --- accelerator ---
kvm_usable() {
    echo quit | timeout 30 "$qemu" -accel kvm -machine none -nodefaults \
        -display none -monitor stdio >/dev/null 2>&1
}
case ${ACCEL:-} in
tcg) virttype=qemu accel="tcg (ACCEL=tcg)" ;;
kvm) virttype=kvm accel="kvm (ACCEL=kvm)" ;;
"")
    if [ -d /sys/module/kvm_pvm ]; then
        virttype=qemu
        accel="tcg (/dev/kvm is KVM-PVM, under which a stock kernel hangs)"
    elif kvm_usable; then
        virttype=kvm accel="kvm (/dev/kvm usable)"
    else
        virttype=qemu accel="tcg (no usable /dev/kvm)"
    fi
    ;;
*) die "ACCEL must be tcg or kvm" ;;
esac

rm -rf "$results"
mkdir -p "$results" "$(dirname "$summary")"
work=$(mktemp -d /tmp/check-libvirt.XXXXXX)
serial=$results/serial.log
qmp_txt=$work/qmp.txt
tap=$results/summary.tap
: > "$qmp_txt"
: > "$tap"

declare -A dpid=() uri=() dlog=()

# --- clean-up: always, on any exit ---
cleanup() {
    local d n pid f
    trap - EXIT INT TERM
    for d in a b; do
        [ -n "${dpid[$d]:-}" ] || continue
        if kill -0 "${dpid[$d]}" 2>/dev/null; then
            for n in $(timeout 30 virsh -q -c "${uri[$d]}" list --all --name 2>/dev/null); do
                timeout 30 virsh -q -c "${uri[$d]}" destroy "$n" >/dev/null 2>&1
            done
            kill "${dpid[$d]}" 2>/dev/null
            for _ in $(seq 1 30); do
                kill -0 "${dpid[$d]}" 2>/dev/null || break
                sleep 0.5
            done
            kill -0 "${dpid[$d]}" 2>/dev/null && kill -9 "${dpid[$d]}"
        fi
        wait "${dpid[$d]}" 2>/dev/null
        # QEMU's logs of the domain (stderr included: stdio_handler=file)
        for f in "$work/$d"/log/qemu/*.log; do
            [ -f "$f" ] && cp "$f" "$results/qemu-$d-${f##*/}"
        done
        # A QEMU left behind (libvirtd does not stop guests when it
        # exits): by its pid file, and only if it runs the binary under test.
        for f in "$work/$d"/run/qemu/*.pid; do
            [ -f "$f" ] || continue
            pid=$(cat "$f")
            case $pid in '' | *[!0-9]*) continue ;; esac
            if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -F "$qemu" >/dev/null; then
                kill -9 "$pid" 2>/dev/null
            fi
        done
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }
fsize() { if [ -f "$1" ]; then stat -c %s "$1"; else echo 0; fi; }
vsh() {
    local d=$1
    shift
    timeout -k 10 "$op_timeout" virsh -q -c "${uri[$d]}" "$@"
}

# --- the two daemons ---
# start_daemon NAME MIGRATION_PORT_MIN
start_daemon() {
    local d=$1 pmin=$2 D=$work/$1
    mkdir -p "$D"/{run,etc,lib,cache,log}
    dlog[$d]=$results/libvirtd-$d.log
    cat > "$D/etc/libvirtd.conf" <<EOF
# check-libvirt daemon $d
host_uuid = "$(cat /proc/sys/kernel/random/uuid)"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
# The QMP traffic (commands, replies, events) goes into the log.
log_filters = "2:qemu.qemu_monitor_json 2:qemu.qemu_monitor 2:qemu.qemu_migration 3:*"
log_outputs = "1:file:${dlog[$d]}"
EOF
    cat > "$D/etc/qemu.conf" <<EOF
# check-libvirt daemon $d
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
migration_port_min = $pmin
migration_port_max = $((pmin + 31))
EOF
    # /run is a private tmpfs (libvirtd's pid file is /run/libvirtd.pid),
    # and libvirt's fixed root-mode directories are bound to $D.
    # shellcheck disable=SC2016
    unshare -m --propagation private -- sh -c '
        set -e
        D=$1
        mount -t tmpfs tmpfs /run
        mkdir /run/libvirt
        mount --bind "$D/run" /run/libvirt
        mount --bind "$D/etc" /etc/libvirt
        mount --bind "$D/lib" /var/lib/libvirt
        mount --bind "$D/cache" /var/cache/libvirt
        mount --bind "$D/log" /var/log/libvirt
        exec libvirtd -f /etc/libvirt/libvirtd.conf' sh "$D" \
        > "$results/libvirtd-$d.stderr" 2>&1 &
    dpid[$d]=$!
    uri[$d]="qemu+unix:///system?socket=$D/run/libvirt-sock"
    for _ in $(seq 1 120); do
        if [ -S "$D/run/libvirt-sock" ] &&
           virsh -q -c "${uri[$d]}" uri >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "${dpid[$d]}" 2>/dev/null || break
        sleep 0.5
    done
    tail -n 5 "$results/libvirtd-$d.stderr" "${dlog[$d]}" >&2 2>/dev/null
    die "libvirtd $d did not come up"
}

# --- the guest's serial log ---
max_seq() {
    { grep -aoE 'HB seq=[0-9]+' "$serial" 2>/dev/null || true; } |
        cut -d= -f2 | sort -n | tail -n1 | grep . || echo -1
}

# wait_alive OFFSET PREV_SEQ: after byte OFFSET of the serial log, the
# heartbeat must pass PREV_SEQ + 10 (one second of beats) and two
# verification passes must end clean.  Fails at once on a guest error.
wait_alive() {
    local off=$1 prev=$2 t0 new bad seq nver
    t0=$(date +%s)
    while :; do
        new=$(tail -c +$((off + 1)) "$serial" 2>/dev/null | tr -d '\r')
        bad=$(grep -aE '^(ERROR|VERIFY-BAD)|^VERIFY .*errors=[1-9]' <<<"$new" | head -n1)
        if [ -n "$bad" ]; then
            why="guest: $bad"
            return 1
        fi
        seq=$(max_seq)
        nver=$(grep -acE '^VERIFY pages=[0-9]+ errors=0' <<<"$new")
        if [ "$seq" -gt $((prev + 10)) ] && [ "$nver" -ge 2 ]; then
            echo "alive: HB seq $prev -> $seq, $nver clean VERIFY passes since the operation"
            return 0
        fi
        if [ $(($(date +%s) - t0)) -ge 120 ]; then
            why="guest not alive after 120s: HB seq $prev -> $seq, $nver clean VERIFY passes"
            return 1
        fi
        sleep 0.5
    done
}

# running_on SIDE: the domain runs there, and the other daemon has none.
running_on() {
    local d=$1 o st
    o=$([ "$d" = a ] && echo b || echo a)
    st=$(vsh "$d" domstate "$dom" 2>&1 | head -n1)
    if [ "$st" != running ]; then
        why="domain on $d is '${st:-absent}', want running"
        return 1
    fi
    if vsh "$o" list --all --name 2>/dev/null | grep -x "$dom" >/dev/null; then
        why="domain still present on $o ($(vsh "$o" domstate "$dom" 2>&1 | head -n1))"
        return 1
    fi
    echo "state: running on $d, absent on $o"
}

absent_everywhere() {
    local d
    for d in a b; do
        if vsh "$d" list --all --name 2>/dev/null | grep -x "$dom" >/dev/null; then
            why="domain still present on $d after save"
            return 1
        fi
    done
}

# timed CMD...: run a virsh command (through vsh), time it into op_s,
# keep its output in the case log, and its last error line in why.
op_s=0
timed() {
    local t0 out rc
    t0=$(now)
    out=$("$@" 2>&1)
    rc=$?
    op_s=$(since "$t0")
    printf '$ %s\n%s\n(exit %s, %ss)\n' "$*" "$out" "$rc" "$op_s"
    if [ "$rc" != 0 ]; then
        if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            why="$2 $3: timed out after ${op_timeout}s"
        else
            why="$(grep -v '^[[:space:]]*$' <<<"$out" | tail -n1)"
            why=${why:-"exit $rc"}
        fi
        return 1
    fi
}

# --- cases ---
side=""      # where the domain runs: a, b, or "" (nowhere)

where_is() {
    local d
    side=""
    for d in a b; do
        if [ "$(vsh "$d" domstate "$dom" 2>/dev/null | head -n1)" = running ]; then
            side=$d
            return
        fi
    done
}

boot_guest() {
    local off prev
    off=$(fsize "$serial")
    prev=$(max_seq)
    timed vsh a create "$work/guest.xml" || return 1
    side=a
    running_on a || return 1
    wait_alive "$off" "$prev"
}

# Before a case that needs a running guest: bring one up on a if the
# previous case lost it (so that one failure does not fail the rest).
ensure_running() {
    local d
    where_is
    [ -n "$side" ] && return 0
    echo "# no running guest left: starting a new one on a"
    for d in a b; do
        vsh "$d" destroy "$dom" >/dev/null 2>&1
    done
    boot_guest >> "$results/recover.log" 2>&1
}

case_start() {
    boot_guest || return 1
    vsh a dumpxml "$dom" > "$results/domain-live.xml" 2>&1
}

# case_save IMAGE VIRSH-OPTIONS...
case_save() {
    local img=$1 b
    shift
    [ "$side" = a ] || { why="guest not running on a"; return 1; }
    rm -f "$img"
    timed vsh a save "$dom" "$img" "$@" || return 1
    side=""
    absent_everywhere || return 1
    [ -s "$img" ] || { why="no image $img"; return 1; }
    b=$(stat -c '%s %b %B' "$img" |
        awk '{ printf "%.0f MB apparent, %.0f MB allocated", $1 / 1e6, $2 * $3 / 1e6 }')
    echo "image: $b"
    note="image $b"
}

# case_restore IMAGE VIRSH-OPTIONS...
case_restore() {
    local img=$1 off prev
    shift
    [ -s "$img" ] || { why="no save image (the save failed)"; return 1; }
    off=$(fsize "$serial")
    prev=$(max_seq)
    timed vsh a restore "$img" "$@" || return 1
    rm -f "$img"
    side=a
    running_on a || return 1
    wait_alive "$off" "$prev"
}

# case_migrate SRC DST VIRSH-OPTIONS...
case_migrate() {
    local src=$1 dst=$2 off prev
    shift 2
    [ "$side" = "$src" ] || { why="guest not running on $src"; return 1; }
    off=$(fsize "$serial")
    prev=$(max_seq)
    timed vsh "$src" migrate --live --p2p \
        --listen-address 127.0.0.1 --migrateuri tcp://127.0.0.1 \
        "$@" "$dom" "${uri[$dst]}" || {
        where_is
        return 1
    }
    side=$dst
    running_on "$dst" || { where_is; return 1; }
    wait_alive "$off" "$prev"
}

# event_time LOG FROM-LINE STATUS: QEMU's timestamp (s) of the first
# MIGRATION event with that status in LOG after FROM-LINE, or nothing.
event_time() {
    tail -n +$(($2 + 1)) "$1" | grep -F 'QEMU_MONITOR_RECV_EVENT' |
        grep -E "\"status\": ?\"$3\"" | head -n1 |
        sed -nE 's/.*"seconds": ?([0-9]+), ?"microseconds": ?([0-9]+).*/\1 \2/p' |
        awk '{ printf "%.3f", $1 + $2 / 1e6 }'
}

# case_postcopy SRC DST VIRSH-OPTIONS...: as case_migrate, and the
# migration must have been in postcopy-active (the source's MIGRATION
# events) and completed on the destination.
case_postcopy() {
    local src=$1 dst=$2 a0 b0 t_pc t_done
    a0=$(lines "${dlog[$src]}")
    b0=$(lines "${dlog[$dst]}")
    case_migrate "$@" || return 1
    t_pc=$(event_time "${dlog[$src]}" "$a0" postcopy-active)
    t_done=$(event_time "${dlog[$dst]}" "$b0" completed)
    if [ -z "$t_pc" ]; then
        why="the migration never reached postcopy-active"
        return 1
    fi
    if [ -z "$t_done" ]; then
        why="no MIGRATION completed event on the destination"
        return 1
    fi
    note="postcopy-active for $(awk -v a="$t_pc" -v b="$t_done" 'BEGIN { printf "%.1f", b - a }')s"
    echo "postcopy: $note (source postcopy-active to destination completed)"
}

# named_event LOG FROM-LINE EVENT: the first QMP event EVENT in LOG
# after FROM-LINE, as its JSON, or nothing.
named_event() {
    tail -n +$(($2 + 1)) "$1" | grep -F 'QEMU_MONITOR_RECV_EVENT' |
        grep -E "\"event\": ?\"$3\"" | head -n1 | sed -nE 's/.* event=(\{.*\})\s*$/\1/p'
}

# stamp JSON: QEMU's timestamp (s) of an event.
stamp() {
    sed -nE 's/.*"seconds": ?([0-9]+), ?"microseconds": ?([0-9]+).*/\1 \2/p' <<<"$1" |
        awk '{ printf "%.3f", $1 + $2 / 1e6 }'
}

# The binary knows x-lazy-restore (the branch) if it starts with it set.
lazy_ok() {
    echo quit | timeout 30 "$qemu" -machine none -nodefaults -display none \
        -global migration.x-lazy-restore=on -monitor stdio >/dev/null 2>&1
}
lazy_skip="$which has no x-lazy-restore"

# lazy_xml IN OUT: the domain XML IN with -global
# migration.x-lazy-restore=on on QEMU's command line.
lazy_xml() {
    sed -E -e "s|^<domain type='([a-z]+)'>|<domain type='\\1' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>|" \
        -e 's|^</domain>|  <qemu:commandline>\n    <qemu:arg value='"'"'-global'"'"'/>\n    <qemu:arg value='"'"'migration.x-lazy-restore=on'"'"'/>\n  </qemu:commandline>\n</domain>|' \
        "$1" > "$2"
    grep -q 'migration.x-lazy-restore=on' "$2" && grep -q 'xmlns:qemu=' "$2"
}

# case_restore_lazy IMAGE XML VIRSH-OPTIONS...: as case_restore (with
# --xml XML unless XML is "-"), and the restore must have been lazy: on
# daemon a, MIGRATION completed and RESUME before X_RAM_RESIDENT; no
# error line in QEMU's log.
case_restore_lazy() {
    local img=$1 xml=$2 l0 q0 off prev qm ev t_done t_resume t_res bytes ms qerr t0
    local qlog=$work/a/log/qemu/$dom.log
    shift 2
    [ -s "$img" ] || { why="no save image (the save failed)"; return 1; }
    # The domain XML the restore uses: the one given, or the image's.
    if [ "$xml" != - ]; then
        set -- --xml "$xml" "$@"
        grep -q 'migration.x-lazy-restore=on' "$xml" ||
            { why="$xml has no -global migration.x-lazy-restore=on"; return 1; }
    elif ! vsh a save-image-dumpxml "$img" | grep -q 'migration.x-lazy-restore=on'; then
        why="the image's domain XML has no -global migration.x-lazy-restore=on"
        return 1
    fi
    l0=$(lines "${dlog[a]}")
    q0=$(fsize "$qlog")
    off=$(fsize "$serial")
    prev=$(max_seq)
    timed vsh a restore "$img" "$@" || return 1
    # At once: the incoming side's progress (RAM may be resident already).
    qm=$(vsh a qemu-monitor-command "$dom" '{"execute":"query-migrate"}' 2>&1)
    echo "query-migrate right after the restore: $qm"
    rm -f "$img"
    side=a
    running_on a || return 1
    wait_alive "$off" "$prev" || return 1
    t0=$(date +%s)
    while ev=$(named_event "${dlog[a]}" "$l0" X_RAM_RESIDENT) && [ -z "$ev" ]; do
        if [ $(($(date +%s) - t0)) -ge 120 ]; then
            why="no X_RAM_RESIDENT event (the restore was not lazy, or RAM never became resident)"
            return 1
        fi
        sleep 0.5
    done
    echo "X_RAM_RESIDENT: $ev"
    t_done=$(event_time "${dlog[a]}" "$l0" completed)
    t_resume=$(stamp "$(named_event "${dlog[a]}" "$l0" RESUME)")
    t_res=$(stamp "$ev")
    bytes=$(sed -nE 's/.*"bytes": ?([0-9]+).*/\1/p' <<<"$ev")
    ms=$(sed -nE 's/.*"ms": ?(-?[0-9]+).*/\1/p' <<<"$ev")
    echo "events: completed@$t_done RESUME@$t_resume X_RAM_RESIDENT@$t_res"
    if [ -z "$t_done" ] || [ -z "$t_resume" ]; then
        why="no MIGRATION completed or RESUME event on a"
        return 1
    fi
    if ! awk -v d="$t_done" -v r="$t_resume" -v x="$t_res" 'BEGIN { exit !(d < x && r < x) }'; then
        why="not lazy: completed@$t_done, RESUME@$t_resume not before X_RAM_RESIDENT@$t_res"
        return 1
    fi
    if [ "${bytes:-0}" -le 0 ]; then
        why="X_RAM_RESIDENT with no bytes read: $ev"
        return 1
    fi
    note="lazy: guest resumed $(awk -v r="$t_resume" -v x="$t_res" 'BEGIN { printf "%.2f", x - r }')s before X_RAM_RESIDENT {bytes: $bytes, ms: $ms}"
    tap_note=$note
    echo "$note"
    # QEMU's own error lines (stderr is in its log) since the restore
    qerr=$(tail -c +$((q0 + 1)) "$qlog" 2>/dev/null |
        grep -aE 'qemu-system-[a-z0-9_]+: ' | grep -avF 'terminating on signal' | head -n1)
    if [ -n "$qerr" ]; then
        why="QEMU log: $qerr"
        return 1
    fi
}

# QMP commands (and MIGRATION events) of one daemon log from a line on,
# summarised: non-query commands in order with their arguments,
# capabilities as on/off lists; query-*/qom-* commands counted.
qmp_summary() {
    python3 "$here/libvirt-qmp-summary.py" "$@"
}

n=0
pass=0
fail=0
skip=0
# skip_case NAME REASON: a case this binary cannot do.
skip_case() {
    local line="ok $((n + 1)) libvirt/$1 # SKIP $2"
    n=$((n + 1))
    skip=$((skip + 1))
    echo "$line"
    echo "$line" >> "$tap"
    printf '### libvirt/%s: skipped (%s)\n\n' "$1" "$2" >> "$qmp_txt"
}
# run_case NAME FUNCTION ARGS...
run_case() {
    local base=$1 name=libvirt/$1 f=$2 la lb t0 total st line log roles=""
    shift 2
    case $f in
    case_migrate | case_postcopy) roles=" ($1 -> $2)" ;;
    case_save* | case_restore* | case_start) roles=" (on a)" ;;
    esac
    n=$((n + 1))
    why=""
    note=""
    tap_note=""
    op_s=0
    log=$results/$(printf '%02d' "$n")-$base.log
    la=$(lines "${dlog[a]}")
    lb=$(lines "${dlog[b]}")
    t0=$(now)
    if "$f" "$@" >> "$log" 2>&1; then
        st=ok
        pass=$((pass + 1))
        line="ok $n $name # ${op_s}s${tap_note:+, $tap_note}"
    else
        st=fail
        fail=$((fail + 1))
        line="not ok $n $name # ${op_s}s $why"
    fi
    total=$(since "$t0")
    echo "$line"
    echo "$line" >> "$tap"
    {
        echo "### $name$roles: $st, virsh ${op_s}s, case ${total}s${note:+, $note}${why:+ ($why)}"
        qmp_summary a "$la" "${dlog[a]}"
        qmp_summary b "$lb" "${dlog[b]}"
        echo
    } >> "$qmp_txt"
}

# --- set-up ---
t_run=$(now)
echo "# check-libvirt: $which, $qemu"
echo "# qemu: $("$qemu" --version | head -n1)"
echo "# accelerator: $accel; <domain type='$virttype'>"
start_daemon a 49152
start_daemon b 49200
echo "# libvirt: $(libvirtd --version) (virsh $(virsh -v)); daemons a and b in private mount namespaces"
# Probe the binary on both daemons before the cases (the first start of
# a binary on a daemon probes it; fresh state dirs mean no stale cache).
for d in a b; do
    if ! vsh "$d" domcapabilities --emulatorbin "$qemu" --virttype "$virttype" \
            --arch x86_64 --machine pc > "$results/domcapabilities-$d.xml" 2>&1; then
        tail -n 5 "$results/domcapabilities-$d.xml" >&2
        die "libvirt $d cannot probe $qemu"
    fi
done
machine=$(sed -nE 's:.*<machine>(.*)</machine>.*:\1:p' "$results/domcapabilities-a.xml" | head -n1)
echo "# machine: $machine; guest: $mem_mib MiB, $cmdline"

sed -e "s|@VIRTTYPE@|$virttype|" -e "s|@NAME@|$dom|" -e "s|@MEM_MIB@|$mem_mib|" \
    -e "s|@KERNEL@|$guest_dir/vmlinuz|" -e "s|@INITRD@|$guest_dir/initramfs.cpio.gz|" \
    -e "s|@CMDLINE@|$cmdline|" -e "s|@EMULATOR@|$qemu|" -e "s|@SERIAL@|$serial|" \
    "$top/tests/libvirt/guest.xml.in" > "$work/guest.xml"
cp "$work/guest.xml" "$results/guest.xml"

# --- the cases ---
img=$work/save.img
run_case start case_start
run_case save-raw case_save "$img"
run_case restore-raw case_restore "$img"
ensure_running
run_case save-sparse-pc2 case_save "$img" --image-format sparse --parallel-channels 2
run_case restore-sparse-pc2 case_restore "$img" --parallel-channels 2
ensure_running
run_case save-sparse-pc2-bypass-cache case_save "$img" \
    --image-format sparse --parallel-channels 2 --bypass-cache
run_case restore-sparse-pc2-bypass-cache case_restore "$img" \
    --parallel-channels 2 --bypass-cache
ensure_running
if [ "$side" = a ]; then
    run_case migrate-plain case_migrate a b
else
    run_case migrate-plain case_migrate b a
fi
ensure_running
if [ "$side" = a ]; then
    run_case migrate-parallel2 case_migrate a b --parallel --parallel-connections 2
else
    run_case migrate-parallel2 case_migrate b a --parallel --parallel-connections 2
fi
ensure_running
if [ "$side" = a ]; then
    run_case migrate-postcopy case_postcopy a b --postcopy --postcopy-after-precopy "${postcopy_bw[@]}"
else
    run_case migrate-postcopy case_postcopy b a --postcopy --postcopy-after-precopy "${postcopy_bw[@]}"
fi
ensure_running
if [ "$side" = a ]; then
    run_case migrate-postcopy-parallel2 case_postcopy a b --postcopy --postcopy-after-precopy \
        --parallel --parallel-connections 2 "${postcopy_bw[@]}"
else
    run_case migrate-postcopy-parallel2 case_postcopy b a --postcopy --postcopy-after-precopy \
        --parallel --parallel-connections 2 "${postcopy_bw[@]}"
fi

# Lazy restores (the branch's x-lazy-restore), last: a domain restored
# lazily keeps the capability on, so it migrates out only once it is set
# off by hand.  The eager restore-sparse-pc2 above is the comparison.
if ! lazy_ok; then
    for c in save-sparse restore-sparse-lazy save-sparse-pc2-lazy restore-sparse-pc2-lazy; do
        skip_case "$c" "$lazy_skip"
    done
else
    ensure_running
    run_case save-sparse case_save "$img" --image-format sparse
    if [ -s "$img" ]; then
        vsh a save-image-dumpxml "$img" > "$work/image.xml" 2>&1
        lazy_xml "$work/image.xml" "$results/restore-lazy.xml" ||
            echo "# cannot make the lazy domain XML from $work/image.xml"
    fi
    run_case restore-sparse-lazy case_restore_lazy "$img" "$results/restore-lazy.xml"
    ensure_running
    run_case save-sparse-pc2-lazy case_save "$img" --image-format sparse --parallel-channels 2
    run_case restore-sparse-pc2-lazy case_restore_lazy "$img" - --parallel-channels 2
fi

# The guest's serial log over the whole run: READY, and none of its own
# error lines (also outside the cases' windows).
case_guest_log() {
    local lines=$work/serial.txt
    tr -d '\r' < "$serial" > "$lines"
    guest_errors=$(grep -acE '^(ERROR|VERIFY-BAD)|^VERIFY .*errors=[1-9]' "$lines")
    verify_ok=$(grep -acE '^VERIFY pages=[0-9]+ errors=0' "$lines")
    note="HB seq up to $(max_seq), $verify_ok clean VERIFY passes, $guest_errors error lines"
    guest_summary=$note
    echo "$note"
    grep -aqE '^READY ' "$lines" || { why="no READY in the serial log"; return 1; }
    if [ "$guest_errors" != 0 ]; then
        why="$guest_errors error lines: $(grep -aE '^(ERROR|VERIFY-BAD)|^VERIFY .*errors=[1-9]' "$lines" | head -n1)"
        return 1
    fi
}
guest_errors=0 verify_ok=0 guest_summary=""
run_case guest-log case_guest_log
t_total=$(since "$t_run")

# --- results file ---
{
    echo "check-libvirt: $which ($(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    echo "qemu:         $("$qemu" --version | head -n1)"
    echo "binary:       ${qemu#"$top"/}"
    echo "libvirt:      $(libvirtd --version); $(dpkg-query -W -f='${Package} ${Version}' libvirt-daemon 2>/dev/null)"
    vsh a version --daemon 2>/dev/null | grep -v 'Running hypervisor' | sed 's/^/virsh:        /'
    echo "accelerator:  $accel"
    echo "machine:      $machine"
    echo "guest:        $mem_mib MiB, 1 vCPU, $cmdline"
    echo "postcopy:     ${postcopy_bw[*]}"
    echo "host:         $(nproc) CPUs, $(uname -r)"
    echo "run:          ${t_total}s for the cases; guest: $guest_summary"
    echo
    echo "Results (duration = the virsh command):"
    cat "$tap"
    [ "$skip" = 0 ] || echo "# $skip skipped ($lazy_skip)"
    echo "$pass passed, $fail failed"
    echo
    echo "QMP commands libvirt sent, per case (a and b are the two daemons;"
    echo "non-query commands in order with their arguments; for migrate-set-capabilities"
    echo "the capabilities set on and the number set off; query-*/qom-* commands counted;"
    echo "MIGRATION events with seconds since the first)."
    echo "The capability probe of the binary at set-up is in the daemon logs only."
    echo
    cat "$qmp_txt"
} > "$summary"
cp "$summary" "$results/"

echo "# ${t_total}s; results: ${summary#"$top"/}, logs: ${results#"$top"/}/"
[ "$skip" = 0 ] || echo "# $skip skipped ($lazy_skip)"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
