#!/usr/bin/env bash
# make fuzz: libFuzzer on the incoming migration loader, the branch
# against upstream's loader, and a table of what each run found.
#
# The harness is tests/qtest/fuzz/migration_fuzz.c (fuzz target
# "migration-load"), a patch of the series ("tests/qtest/fuzz: a target
# that loads migration streams").
# Each input is one byte of options (bit 0: mapped-ram) and a migration
# stream, loaded in-process with qemu_loadvm_state() through a
# QIOChannelFile, as migrate-incoming "file:" does; the devices, the RAM and
# the incoming state are reset for every input (see the harness).
#
# Builds (configure-wrapper.sh profile "fuzz": clang 19, ASan, UBSan,
# libFuzzer, minimal x86_64-softmmu; migration/ instrumented):
#   build/fuzz/patched  from FUZZ_SRC_PATCHED, default build/fuzz-src: a
#                       git worktree of qemu/ checked out at its HEAD (a
#                       checkout touches only the files that changed, so
#                       the build after a change of the series is
#                       incremental)
#   build/fuzz/vanilla  from FUZZ_SRC_VANILLA, default build/fuzz-upstream-src:
#                       a worktree at upstream-10.2.2 with the series'
#                       Vanilla-Twin build fixes (0001) and the harness
#                       patch: the harness alone on upstream's loader
# Before fuzzing, each build replays tests/fuzz-regressions/ (see its
# README): the patched build must get through every one of them.
# Seeds (build/fuzz/seeds/): streams saved by build/vanilla's
# qemu-system-x86_64 from the harness's machine: a precopy stream and a
# mapped-ram file, each behind its option byte.
#
# Each build is fuzzed FUZZ_S seconds (both at once, at nice 10, one
# process each, -fork=1 so that a crash or a hang is recorded and the run
# goes on), with a fresh corpus seeded from build/fuzz/seeds.  Crashing and
# hanging inputs: build/fuzz/<build>/artifacts/.  Each one is re-run alone
# for its backtrace (build/fuzz/<build>/artifacts/*.txt) and classified by
# the innermost QEMU frame: migration/ (RAM loader, qemu-file, savevm,
# vmstate) or device code (hw/, target/).  The table: tests/results/fuzz.md.
#
# Variables: FUZZ_S (seconds per build, default 60), FUZZ_TIMEOUT (libFuzzer
# -timeout, a hang, default 10 s), FUZZ_BUILDS ("patched vanilla"),
# FUZZ_SRC_PATCHED, FUZZ_SRC_VANILLA, FUZZ_NO_BUILD=1 (use what is built),
# FUZZ_REPORT_ONLY=1 (no run: backtraces and the table from the last runs),
# JOBS (ninja, default 2).
set -euo pipefail
# shellcheck source=scripts/series-lib.sh
. "$(dirname "$0")/series-lib.sh"

FUZZ_S=${FUZZ_S:-60}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
FUZZ_BUILDS=${FUZZ_BUILDS:-patched vanilla}
jobs=${JOBS:-2}
fz=$top/build/fuzz
results=$top/tests/results/fuzz.md
regressions=$top/tests/fuzz-regressions
target=migration-load
ident=(-c "user.name=Seed d72217c1 maintainers"
       -c "user.email=maintainers@users.noreply.h-seed-d72217c1.example")
FUZZ_SRC_PATCHED=${FUZZ_SRC_PATCHED:-$top/build/fuzz-src}
FUZZ_SRC_VANILLA=${FUZZ_SRC_VANILLA:-$top/build/fuzz-upstream-src}

# The series' patch that adds the harness
harness_patch() {
    local p
    p=$(grep -l '^+++ b/tests/qtest/fuzz/migration_fuzz.c$' "$PATCH_DIR"/*.patch |
        head -1)
    if [ -z "$p" ]; then
        echo "fuzz: no patch of the series adds tests/qtest/fuzz/migration_fuzz.c" >&2
        exit 1
    fi
    echo "$p"
}

need_clang() {
    if command -v clang-19 >/dev/null &&
       [ -n "$(find /usr/lib/llvm-19/lib/clang -name 'libclang_rt.fuzzer*.a' 2>/dev/null)" ]; then
        return
    fi
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y clang-19 libclang-rt-19-dev lld-19 >/dev/null
    else
        echo "fuzz: needs clang-19 libclang-rt-19-dev lld-19 (apt-get install)" >&2
        exit 1
    fi
}

# A worktree of qemu/ at commit REV, with PATCHES applied on top
worktree_at() {
    local dir=$1 rev=$2 want
    shift 2
    if [ ! -e "$dir/.git" ]; then
        echo "fuzz: making ${dir#"$top"/} at $rev"
        rm -rf "$dir"
        qgit worktree prune
        qgit worktree add -q --detach "$dir" "$rev"
    fi
    # The tree it should hold: REV, plus PATCHES, applied once
    want=$(qgit rev-parse "$rev^{commit}")
    if [ "$(cat "$dir/.fuzz-base" 2>/dev/null)" = "$want $*" ] &&
       git -C "$dir" diff --quiet HEAD; then
        return
    fi
    echo "fuzz: ${dir#"$top"/} at $rev${*:+ + $*}"
    git -C "$dir" checkout -q --detach "$want"
    for p in "$@"; do
        git -C "$dir" "${ident[@]}" am -q "$p"
    done
    echo "$want $*" > "$dir/.fuzz-base"
}

prepare_sources() {
    local twin=() p harness
    harness=$(harness_patch)
    if [ "$FUZZ_SRC_PATCHED" = "$top/build/fuzz-src" ]; then
        worktree_at "$FUZZ_SRC_PATCHED" HEAD
    fi
    if [ ! -f "$FUZZ_SRC_PATCHED/tests/qtest/fuzz/migration_fuzz.c" ]; then
        echo "fuzz: $FUZZ_SRC_PATCHED has no harness" >&2
        exit 1
    fi
    if [ "$FUZZ_SRC_VANILLA" = "$top/build/fuzz-upstream-src" ]; then
        while read -r p; do
            case "$p" in ''|'#'*) continue ;; esac
            if grep -q '^Vanilla-Twin: apply$' "$PATCH_DIR/$p"; then
                twin+=("$PATCH_DIR/$p")
            fi
        done < "$PATCH_DIR/series"
        worktree_at "$FUZZ_SRC_VANILLA" "$UPSTREAM_TAG" "${twin[@]}" "$harness"
    fi
}

# The inputs of tests/fuzz-regressions/ on build B, each group in one
# process (an input may need the state the one before it left); the
# patched build must finish every group cleanly.
replay_regressions() {
    local b=$1 bdir=$fz/$1 group files rc bad=0
    local out=$bdir/run/regressions.txt
    : > "$out"
    for group in $(find "$regressions" -maxdepth 1 -type f ! -name '*.md' \
                       -printf '%f\n' | sed -E 's/-[0-9]+-[^-]*$//' | sort -u); do
        mapfile -t files < <(find "$regressions" -maxdepth 1 -type f \
                                 \( -name "$group" -o -name "$group-[0-9]*" \) | sort)
        rc=0
        (cd "$bdir" &&
         ASAN_OPTIONS=detect_leaks=0:symbolize=1 \
         UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
         timeout 300 ./qemu-fuzz-x86_64 --fuzz-target=$target \
            -timeout="$FUZZ_TIMEOUT" "${files[@]}" \
            > "$bdir/run/regression-$group.log" 2>&1) || rc=$?
        echo "$group (${#files[@]} inputs): exit $rc" >> "$out"
        [ $rc = 0 ] || bad=1
    done
    sed "s/^/fuzz: $b: regression /" "$out"
    if [ "$b" = patched ] && [ $bad != 0 ]; then
        echo "fuzz: the patched build fails a regression input (build/fuzz/patched/run/)" >&2
        exit 1
    fi
}

build_one() {
    local b=$1 src=$2 bdir=$fz/$1 ver
    ver="$b $(git -C "$src" rev-parse --short=8 'HEAD^{tree}' 2>/dev/null || echo tree) fuzz"
    nice -n 10 "$top/configure-wrapper.sh" "$src" "$bdir" "$ver" fuzz
    echo "fuzz: building ${bdir#"$top"/}/qemu-fuzz-x86_64 from $src"
    if ! nice -n 10 ninja -C "$bdir" -j "$jobs" qemu-fuzz-x86_64 \
            > "$bdir/ninja.log" 2>&1; then
        grep -E -B2 -A12 'error|FAILED' "$bdir/ninja.log" | head -60 >&2
        echo "fuzz: ninja failed; see ${bdir#"$top"/}/ninja.log" >&2
        exit 1
    fi
    link_firmware "$bdir"
}

# As scripts/build.sh does: a binary in the build tree looks for its
# firmware in BUILD/qemu-bundle.
link_firmware() {
    local d link
    IFS=: read -r -a fwdirs <<<"$("$top/configure-wrapper.sh" --print-firmwarepath)"
    for d in "${fwdirs[@]}"; do
        link=$1/qemu-bundle$d
        if [ ! -e "$link" ]; then
            mkdir -p "$(dirname "$link")"
            ln -sfn "$d" "$link"
        fi
    done
}

# The seeds: vanilla saves the harness's machine, with a few pages of data.
make_seeds() {
    local qemu=$top/build/vanilla/qemu-system-x86_64
    mkdir -p "$fz/seeds"
    [ -s "$fz/seeds/precopy" ] && [ -s "$fz/seeds/mapped-ram" ] && return
    [ -x "$qemu" ] || { echo "fuzz: $qemu missing (make vanilla)" >&2; exit 1; }
    python3 - "$qemu" "$fz/seeds" <<'EOF'
import json, os, random, socket, subprocess, sys, tempfile, time
qemu, outdir = sys.argv[1], sys.argv[2]
mem = '2M'      # must match migration_fuzz_cmdline() in the harness

def save(name, opts, caps):
    tmp = tempfile.mkdtemp(prefix='fuzz-seed-')
    qs, ms, stream = (os.path.join(tmp, n) for n in ('qtest', 'qmp', 'stream'))
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(qs)
    srv.listen(1)
    p = subprocess.Popen([qemu, '-machine', 'pc,memory-backend=ram0', '-m', mem,
                          '-nodefaults', '-object',
                          f'memory-backend-memfd,id=ram0,size={mem},share=on',
                          '-display', 'none', '-qtest', f'unix:{qs}',
                          '-qtest-log', '/dev/null',
                          '-qmp', f'unix:{ms},server=on,wait=off'])
    c, _ = srv.accept()
    cf = c.makefile('rw')

    def qt(cmd):
        cf.write(cmd + '\n')
        cf.flush()
        r = cf.readline()
        assert r.startswith('OK'), (cmd, r)
    # A few pages with data, one half-filled, the rest of RAM zero
    qt('memset 0x100000 0x3000 0x5a')
    qt('write 0x180000 0x10 0x00112233445566778899aabbccddeeff')
    rnd = random.Random(1)
    qt('write 0x1c0000 0x1000 0x' + bytes(rnd.randrange(256) for _ in range(4096)).hex())
    qt('memset 0x1e0800 0x10 0x01')
    m = socket.socket(socket.AF_UNIX)
    for _ in range(100):
        try:
            m.connect(ms)
            break
        except OSError:
            time.sleep(0.1)
    mf = m.makefile('rw')

    def qmp(cmd, **args):
        mf.write(json.dumps({'execute': cmd, 'arguments': args}) + '\n')
        mf.flush()
        while True:
            r = json.loads(mf.readline())
            if 'return' in r or 'error' in r:
                assert 'return' in r, r
                return r['return']
    json.loads(mf.readline())
    qmp('qmp_capabilities')
    if caps:
        qmp('migrate-set-capabilities',
            capabilities=[{'capability': c, 'state': True} for c in caps])
    qmp('migrate', uri='file:' + stream)
    for _ in range(600):
        st = qmp('query-migrate').get('status')
        if st in ('completed', 'failed'):
            break
        time.sleep(0.1)
    assert st == 'completed', st
    qmp('quit')
    p.wait()
    with open(os.path.join(outdir, name), 'wb') as o, open(stream, 'rb') as i:
        o.write(bytes([opts]))
        o.write(i.read())
    for f in (qs, stream):
        os.unlink(f)
    os.rmdir(tmp)
    print(f'fuzz: seed {name}: {os.path.getsize(os.path.join(outdir, name))} bytes')

save('precopy', 0, [])
save('mapped-ram', 1, ['mapped-ram'])
EOF
}

run_one() {
    local b=$1 bdir=$fz/$1
    local maxlen
    link_firmware "$bdir"
    rm -rf "$bdir/corpus" "$bdir/artifacts" "$bdir/fuzz.log" "$bdir/reports"
    mkdir -p "$bdir/corpus" "$bdir/artifacts" "$bdir/run" "$bdir/reports"
    echo "$FUZZ_S" > "$bdir/run/fuzz_s"
    date -u '+%Y-%m-%d %H:%M' > "$bdir/run/started"
    echo "$FUZZ_BUILDS" > "$bdir/run/beside"
    local src=$FUZZ_SRC_PATCHED
    [ "$b" = vanilla ] && src=$FUZZ_SRC_VANILLA
    git -C "$src" log -1 --format='%h %s' > "$bdir/run/source" 2>/dev/null || true
    maxlen=$(( $(stat -c %s "$fz/seeds/mapped-ram") + 65536 ))
    # The forked job's own TMPDIR: libFuzzer keeps its job logs there
    mkdir -p "$bdir/tmp"
    (cd "$bdir" &&
     TMPDIR=$bdir/tmp \
     ASAN_OPTIONS=detect_leaks=0:symbolize=1:log_path=$bdir/reports/asan \
     UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$bdir/reports/ubsan \
     nice -n 10 ./qemu-fuzz-x86_64 --fuzz-target=$target \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$FUZZ_S" -timeout="$FUZZ_TIMEOUT" \
        -rss_limit_mb=4096 -max_len="$maxlen" -len_control=0 \
        -artifact_prefix="$bdir/artifacts/" \
        corpus "$fz/seeds" > "$bdir/fuzz.log" 2>&1) || true
}

# Re-run each artifact alone: its backtrace, and where it broke.
classify() {
    local b=$1 bdir=$fz/$1 a
    for a in "$bdir"/artifacts/crash-* "$bdir"/artifacts/timeout-* \
             "$bdir"/artifacts/oom-*; do
        [ -f "$a" ] || continue
        case $a in *.txt) continue ;; esac
        [ -f "$a.txt" ] && continue
        (cd "$bdir" &&
         ASAN_OPTIONS=detect_leaks=0:symbolize=1 \
         UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
         timeout 120 ./qemu-fuzz-x86_64 --fuzz-target=$target \
            -timeout="$FUZZ_TIMEOUT" -rss_limit_mb=4096 "$a" \
            > "$a.txt" 2>&1) || true
    done
}

# Every input that made the vanilla run crash or hang, replayed on the
# patched build (findings in code both builds share must not crash it).
cross_replay() {
    local a n=0 bad=0 out=$fz/patched/run/cross-replay.txt
    [ -d "$fz/vanilla/artifacts" ] && [ -x "$fz/patched/qemu-fuzz-x86_64" ] ||
        return 0
    : > "$out"
    for a in "$fz"/vanilla/artifacts/crash-* "$fz"/vanilla/artifacts/timeout-*; do
        [ -f "$a" ] || continue
        case $a in *.txt) continue ;; esac
        n=$((n + 1))
        if ! (cd "$fz/patched" &&
              ASAN_OPTIONS=detect_leaks=0:symbolize=1 \
              UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
              timeout 120 ./qemu-fuzz-x86_64 --fuzz-target=$target \
                  -timeout="$FUZZ_TIMEOUT" "$a" > "$a.patched.txt" 2>&1); then
            bad=$((bad + 1))
            echo "not ok ${a#"$top"/} (log: ${a#"$top"/}.patched.txt)" >> "$out"
        fi
    done
    echo "$n replayed, $bad failed" >> "$out"
}

# One line per artifact: kind, innermost QEMU frame, class.
findings() {
    local b=$1 bdir=$fz/$1
    python3 - "$bdir" "$b" <<'EOF'
import os, re, sys
bdir, b = sys.argv[1], sys.argv[2]
art = os.path.join(bdir, 'artifacts')
rep = os.path.join(bdir, 'reports')
items = [(os.path.join(art, n), 'artifacts') for n in sorted(os.listdir(art)) if not n.endswith('.txt')]
items += [(os.path.join(rep, n), 'reports') for n in sorted(os.listdir(rep))] if os.path.isdir(rep) else []
rows = {}
for p, where in items:
    n = os.path.basename(p)
    if where == 'reports':
        log = open(p, errors='replace').read()
        if not re.search(r'ERROR: |runtime error:', log):
            continue        # only ASan's start-up warning
    else:
        log = open(p + '.txt', errors='replace').read() if os.path.exists(p + '.txt') else ''
    kind = 'timeout' if n.startswith('timeout') else 'oom' if n.startswith('oom') else \
        'sanitizer report (kept while fuzzing)' if where == 'reports' else 'crash'
    m = re.search(r'ERROR: AddressSanitizer: ([\w-]+)', log)
    if m:
        kind = 'ASan ' + m.group(1)
    m = re.search(r'runtime error: (.*)', log)
    if m:
        kind = 'UBSan ' + m.group(1)[:80]
    if 'Assertion' in log or 'assertion failed' in log.lower():
        m = re.search(r'(Assertion .*|assertion failed.*)', log)
        kind = 'assert: ' + m.group(1)[:100]
    frame = ''
    for m in re.finditer(r'#\d+ 0x[0-9a-f]+ in (\S+) (\S+)', log):
        fn, loc = m.groups()
        if re.search(r'/(migration|hw|target|system|util|io|accel|qom|block)/', loc) \
           and '/tests/qtest/fuzz/' not in loc:
            short = re.sub(r'.*?/(migration|hw|target|system|util|io|accel|qom|block)/', r'\1/', loc, count=1)
            frame = f'{fn} {short}'
            break
    if not frame and 'libFuzzer: timeout' in log:
        frame = '(re-run: timeout, see .txt)'
    m = re.search(r'ERROR: AddressSanitizer:.*\bT(\d+)\)', log)
    if m and m.group(1) != '0':
        kind += f' in thread T{m.group(1)}'
    reproduced = where == 'reports' or re.search(r'ERROR: |runtime error:|libFuzzer: timeout|Assertion', log)
    if not reproduced and log.strip():
        cls = 'not reproduced alone (see the report in build/fuzz/%s/reports)' % b
    elif ' migration/ram' in frame:
        cls = 'loader: RAM loader'
    elif ' migration/qemu-file' in frame:
        cls = 'loader: qemu-file'
    elif ' migration/' in frame:
        cls = 'loader: savevm/vmstate (%s)' % frame.split(' ')[1].split(':')[0]
    elif re.search(r' (hw|target)/', frame):
        cls = 'device (post_load/vmstate of a device)'
    elif not log.strip():
        cls = 'not reproduced'
    elif 'timeout' in kind and not frame:
        cls = 'hang, see backtrace'
    else:
        cls = 'other'
    key = (where, kind, frame, cls)
    if key not in rows:
        rows[key] = [n, os.path.getsize(p) if where == 'artifacts' else '-', 0]
    rows[key][2] += 1
# One row per distinct (kind, frame, class): how many, and one of them
for (where, kind, frame, cls), (n, size, count) in rows.items():
    print(f'| {b} | {count} | `build/fuzz/{b}/{where}/{n}` | {size} | {kind} | `{frame}` | {cls} |')
EOF
}

stats_row() {
    local b=$1 bdir=$fz/$1
    python3 - "$bdir" "$b" <<'EOF'
import os, re, sys
bdir, b = sys.argv[1:3]
run = lambda n: open(os.path.join(bdir, 'run', n)).read().strip()
fs, started = run('fuzz_s'), run('started')
log = open(os.path.join(bdir, 'fuzz.log'), errors='replace').read()
# fork mode: "#N: cov: C ft: F corp: K exec/s: E oom/timeout/crash: O/T/X time: S"
rows = re.findall(r'#(\d+): cov: (\d+) ft: (\d+) corp: (\d+) exec/s: (\d+) '
                  r'oom/timeout/crash: (\d+)/(\d+)/(\d+) time: (\d+)s', log)
if rows:
    n, cov, ft, corp, eps, oom, to, cr, t = rows[-1]
    eps = int(n) // max(int(t), 1)      # the last line's exec/s is the wrap-up's
else:
    n = cov = ft = corp = eps = oom = to = cr = t = '?'
# Sanitizer reports: each forked job's own (log_path), else its ERROR lines
reps = []
rdir = os.path.join(bdir, 'reports')
for rn in (os.listdir(rdir) if os.path.isdir(rdir) else []):
    reps.append(open(os.path.join(rdir, rn), errors='replace').read())
asan = sum(1 for r in reps if 'ERROR: AddressSanitizer' in r) or \
    len(re.findall(r'ERROR: AddressSanitizer', log))
ubsan = sum(1 for r in reps if 'runtime error:' in r) or \
    len(re.findall(r'runtime error:', log))
art = os.listdir(os.path.join(bdir, 'artifacts'))
ncr = len([a for a in art if a.startswith('crash-') and not a.endswith('.txt')])
nto = len([a for a in art if a.startswith('timeout-') and not a.endswith('.txt')])
print(f'| {b} | {fs} | {started} | {t} | {n} | {eps} | {cov} | {ft} | {corp} | '
      f'{cr} ({ncr} kept) | {to} ({nto} kept) | {oom} | {asan} | {ubsan} |')
EOF
}

need_clang
prepare_sources
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
    for b in $FUZZ_BUILDS; do
        case $b in
        patched) build_one patched "$FUZZ_SRC_PATCHED" ;;
        vanilla) build_one vanilla "$FUZZ_SRC_VANILLA" ;;
        esac
    done
fi
make_seeds

if [ -z "${FUZZ_REPORT_ONLY:-}" ]; then
    for b in $FUZZ_BUILDS; do
        rm -rf "$fz/$b/run"
        mkdir -p "$fz/$b/run"
        link_firmware "$fz/$b"
        replay_regressions "$b"
    done
    echo "fuzz: running $FUZZ_BUILDS for $FUZZ_S s each, side by side (logs: build/fuzz/<build>/fuzz.log)"
    pids=()
    for b in $FUZZ_BUILDS; do
        run_one "$b" &
        pids+=($!)
    done
    wait "${pids[@]}"
    for b in $FUZZ_BUILDS; do
        classify "$b"
    done
    cross_replay
fi

# The table holds the last run of each build (FUZZ_BUILDS=patched runs one).
ran=()
for b in patched vanilla; do
    [ -f "$fz/$b/run/fuzz_s" ] && [ -f "$fz/$b/fuzz.log" ] && ran+=("$b")
done
# FUZZ_REPORT_ONLY=1: only the table (and backtraces not taken yet)
if [ -n "${FUZZ_REPORT_ONLY:-}" ]; then
    for b in "${ran[@]}"; do
        classify "$b"
    done
    cross_replay
fi
mkdir -p "$(dirname "$results")"
{
    echo "# Loader fuzzing: the branch against upstream's loader"
    echo
    echo "\`make fuzz FUZZ_S=N\` (scripts/fuzz.sh); table written $(date -u +%Y-%m-%d\ %H:%M) UTC."
    echo "libFuzzer target \`$target\` ($(basename "$(harness_patch)")): each input is an"
    echo "option byte (bit 0: mapped-ram) and a migration stream, loaded in-process with"
    echo "\`qemu_loadvm_state()\` through a QIOChannelFile, as \`migrate-incoming file:\` does;"
    echo "machine \`pc\`, 2 MiB of RAM in a shared memfd, \`-nodefaults\`.  clang 19, ASan +"
    echo "UBSan (halt on error), migration/ instrumented for coverage.  One fuzzing"
    echo "process per build at nice 10 on this shared 2-core machine (\`-fork=1\`: crashes"
    echo "and timeouts are recorded and the run goes on; \`-timeout=$FUZZ_TIMEOUT\` s is a hang),"
    echo "each from a fresh corpus seeded with the same two streams saved by vanilla"
    echo "(build/fuzz/seeds: precopy, mapped-ram).  Executions depend on the load of the"
    echo "machine at the time: compare runs made side by side."
    echo
    for b in "${ran[@]}"; do
        src=$FUZZ_SRC_PATCHED
        [ "$b" = vanilla ] && src=$FUZZ_SRC_VANILLA
        echo "- $b: fuzzed $(cat "$fz/$b/run/source" 2>/dev/null || echo '?') (${src#"$top"/}); built now: $(git -C "$src" log -1 --format='%h %s' 2>/dev/null)"
    done
    echo
    echo "| build | FUZZ_S | started (UTC) | time (s) | executions | exec/s | cov | ft | corpus | crashes | timeouts (hangs) | ooms | ASan reports | UBSan reports |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for b in "${ran[@]}"; do
        stats_row "$b"
    done
    echo
    echo "cov/ft: libFuzzer's last \`cov:\`/\`ft:\` line (edges and features in the"
    echo "instrumented code: hw/, net/, migration/ and the harness).  Crashes and"
    echo "timeouts as libFuzzer counted them; \"kept\": distinct inputs in"
    echo "build/fuzz/<build>/artifacts/.  ASan/UBSan reports: those the forked jobs wrote"
    echo "(build/fuzz/<build>/reports/), one per crashing job."
    echo
    echo "## Regression inputs"
    echo
    echo "tests/fuzz-regressions/, replayed on each build before it was fuzzed"
    echo "(exit 0: every input of the group loaded or failed cleanly, without a"
    echo "sanitizer report; logs in build/fuzz/<build>/run/regression-*.log):"
    echo
    for b in "${ran[@]}"; do
        if [ -f "$fz/$b/run/regressions.txt" ]; then
            sed "s/^/- $b: /" "$fz/$b/run/regressions.txt"
        fi
    done
    echo
    if [ -f "$fz/patched/run/cross-replay.txt" ]; then
        echo "Every input that made the vanilla run crash or hang, replayed on the"
        echo "patched build as it is now (build/fuzz/patched):"
        echo
        sed 's/^/    /' "$fz/patched/run/cross-replay.txt"
        echo
    fi
    echo "## Findings"
    echo
    echo "Each kept input is re-run alone (backtrace next to it, \`.txt\`), and every"
    echo "sanitizer report a forked job wrote while fuzzing is kept (build/fuzz/<build>/reports,"
    echo "with its stack); the class is by the innermost QEMU frame: loader (migration/:"
    echo "RAM loader, qemu-file, savevm, vmstate) or device (hw/, target/).  An input that"
    echo "does not crash alone needed the state an earlier input of its job left."
    echo
    echo "| build | count | input or report (one of them) | bytes | kind | innermost QEMU frame | class |"
    echo "|---|---|---|---|---|---|---|"
    for b in "${ran[@]}"; do
        findings "$b"
    done
} > "$results.new"
mv "$results.new" "$results"
cat "$results"
