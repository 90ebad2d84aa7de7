# QEMU migration branch: a patch series on top of pinned upstream QEMU.
# See README.md.  Every target installs and builds what it needs first.

SHELL := /bin/bash
.DEFAULT_GOAL := help
S := scripts

.PHONY: help deps fetch prepare build vanilla guest demo check check-qtests \
	check-migration check-scripts check-full check-compat check-guest check-libvirt \
	check-targets check-bisect check-moves fuzz \
	export check-exported checkpatch \
	bench bench-quick bench-figures check-bench-figures clean distclean

help:
	@echo "make demo            set up everything, then live-migrate a 1 GiB guest (branch, and vanilla if built), verify its RAM"
	@echo "make check           set up everything, then run the tests (CI runs this)"
	@echo "make check-full      upstream migration-test --full, 86 cases (BUILD=vanilla|patched)"
	@echo "make check-compat    cross-binary runs, vanilla<->branch, as a matrix"
	@echo "make check-guest     the Linux test guest migrated live in every mode"
	@echo "make check-faults    cuts, kill -9, ENOSPC, flipped bytes in every mode: branch and vanilla"
	@echo "make check-libvirt   libvirt drives the branch: save/restore, migrate (BUILD=...)"
	@echo "make check-targets   build the series for x86_64, aarch64, ppc64, s390x softmmu"
	@echo "make check-bisect    build the series patch by patch (every patch builds alone)"
	@echo "make check-moves     the move patches (patches/moves) only move lines"
	@echo "make fuzz            libFuzzer on the migration loader, branch vs upstream (FUZZ_S=secs)"
	@echo "make prepare         generate qemu/ (upstream tag + patches/ as commits)"
	@echo "make build           configure and build qemu/ in build/qemu"
	@echo "make vanilla         build the same upstream without the series in build/vanilla"
	@echo "make bench           A/B benchmark, vanilla vs branch (about 20 min; bench/README.md)"
	@echo "make bench-quick     the same, small and short (about 3 min)"
	@echo "make bench-figures   the design page's benchmark tables from bench/results (BENCH_FIGURES=path)"
	@echo "make export          regenerate patches/ from the commits in qemu/"
	@echo "make check-exported  fail if qemu/ holds work that patches/ lacks"
	@echo "make checkpatch      run upstream checkpatch.pl over the series"

deps:
	@$(S)/install-deps.sh

fetch: deps
	@$(S)/fetch-upstream.sh >/dev/null

prepare: fetch
	@$(S)/prepare.sh

build: fetch
	@$(S)/prepare.sh --allow-unexported
	@$(S)/build.sh patched

vanilla: fetch
	@$(S)/build.sh vanilla

guest: deps
	@$(S)/build-guest.sh
	@$(S)/build-bare-guest.sh

# DEMO_ARGS: e.g. --reps 5, --only patched (scripts/demo.py --help)
demo: build guest
	@$(S)/demo.py $(DEMO_ARGS)

# BENCH_ARGS: e.g. --reps 7 --scale 0.5 --only precopy-paused,live-dirty
bench: build vanilla guest
	@$(S)/bench.py --no-build $(BENCH_ARGS)

bench-quick: build vanilla guest
	@$(S)/bench.py --no-build --quick $(BENCH_ARGS)

# The design page's benchmark tables, an reStructuredText fragment computed
# from the committed result files (scripts/bench-figures.py; bench/README.md).
# BENCH_FIGURES_ARGS: e.g. --series-tree ID or --latest FILE
BENCH_FIGURES ?= build/ram-engine-figures.rst
bench-figures:
	@$(S)/bench-figures.py --out $(BENCH_FIGURES) $(BENCH_FIGURES_ARGS)
	@echo "bench-figures: wrote $(BENCH_FIGURES)"

# Fails when $(BENCH_FIGURES) is not what the result files give now.
check-bench-figures:
	@$(S)/bench-figures.py --check $(BENCH_FIGURES) $(BENCH_FIGURES_ARGS)

check: build vanilla
	@$(S)/run-checks.sh all

# BUILD=patched (default) or BUILD=vanilla
check-full: $(if $(filter vanilla,$(BUILD)),vanilla,build)
	@BUILD=$(or $(BUILD),patched) $(S)/run-checks.sh full

check-compat: build vanilla
	@$(S)/check-compat.sh

# The Linux test guest, live, in every mode (scripts/check-guest.py).
# CHECK_GUEST_ARGS: e.g. --src vanilla --dst patched, or --mode postcopy
check-guest: build vanilla
	@$(S)/build-guest.sh
	@$(S)/build-bare-guest.sh
	@$(S)/check-guest.py $(CHECK_GUEST_ARGS)

# Faults in migrations of the live test guest (scripts/check-faults.py),
# branch and vanilla side by side; the matrix in tests/results/check-faults.txt.
# Root: the ENOSPC cells mount a small tmpfs in a private mount namespace.
# CHECK_FAULTS_ARGS: e.g. --build patched --mode precopy --fault kill-dst
.PHONY: check-faults
check-faults: build vanilla
	@$(S)/build-guest.sh
	@$(S)/check-faults.py $(CHECK_FAULTS_ARGS)

# libvirt 11 (bookworm-backports) drives the binary: virsh save/restore and
# migrate between two daemons.  BUILD=patched (default) or BUILD=vanilla.
check-libvirt: $(if $(filter vanilla,$(BUILD)),vanilla,build)
	@$(S)/check-libvirt.sh $(or $(BUILD),patched)

# The series compiles for other targets too (minimal builds in build/targets).
check-targets: fetch
	@$(S)/prepare.sh --allow-unexported
	@$(S)/check-targets.sh

# Every patch of the series builds on its own (build/bisect; one line
# per patch in tests/results/check-bisect.txt).
check-bisect: fetch
	@$(S)/prepare.sh --allow-unexported
	@$(S)/check-bisect.sh

# Pure moves of the series only move lines (patches/moves names them).
check-moves:
	@$(S)/check-moves.py

# libFuzzer on the incoming migration loader (clang 19, ASan, UBSan), the
# branch against upstream's loader, FUZZ_S seconds each; the table in
# tests/results/fuzz.md (scripts/fuzz.sh says which sources it builds).
fuzz: vanilla
	@FUZZ_S=$(or $(FUZZ_S),60) $(S)/fuzz.sh

check-qtests check-migration check-scripts: build
	@$(S)/run-checks.sh $(@:check-%=%)

export:
	@$(S)/export.sh

check-exported:
	@$(S)/check-exported.sh

checkpatch: prepare
	@$(S)/checkpatch.sh

clean:
	rm -rf build

# Keeps downloads/ (the verified tarball) but drops both generated trees,
# after making sure qemu/ holds no unexported work.
distclean: clean
	@$(S)/check-exported.sh
	rm -rf qemu vanilla
