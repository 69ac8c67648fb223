#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run every test phase, then print the summary line.  Each phase leaves
# build/results/<phase>.counts ("PASSED FAILED SKIPPED"); a phase that
# breaks before writing one is counted as one failure.  Output is one line
# per phase (V=1: everything); logs are in build/results/<phase>.log.
#
#   scripts/check.sh            make check: every phase below, on 6.1
#   scripts/check.sh kernels    make check-kernels: the module selftests
#                               on the other kernels (KERNELS, default
#                               "6.12 7.3"), phases vm-6.12 and vm-7.3,
#                               and the ynl client on each, phases
#                               ynl-6.12 and ynl-7.3;
#                               the counts of make check are kept, so
#                               the summary covers both
#   scripts/check.sh packages   make check-packages: the Debian packages
#                               built (phase pkg-deb), then for each of
#                               PKG_KERNELS (default "6.1 6.12 7.3")
#                               installed into a fresh Debian root (12,
#                               13 for 7.3) and booted with the
#                               DKMS-built module (phases
#                               pkg-K and pkg-K-vm, scripts/pkg/check.sh);
#                               the summary covers these phases only
#
# Phases: host tests of lib/, tools/ and daemon/ (`make -C DIR check`,
# skipped with a notice while a directory has no check target; tools/ and
# daemon/ again built with ASan+UBSan and with TSan) and of the SQLite
# example, the install phase (Kbuild at the top, make install/uninstall,
# the Debian packages' contents), then the selftests in the VM against
# membroker.ko: static, then
# built with ASan+UBSan and with TSan; the demo scenario (the one
# `make demo` plays), checked by scripts/vm/demo-report.py; the netlink
# spec driven by ynl in the VM; last the benches' smoke run.
set -uo pipefail
. "$(dirname "$0")/vm/common.sh"

what=${1:-all}
KERNELS=${KERNELS:-6.12 7.3}
RESULTS=$BUILD/results
export RESULTS
mkdir -p "$RESULTS"
if [ "$what" = kernels ]; then
	for k in $KERNELS; do
		rm -f "$RESULTS/vm-$k.counts" "$RESULTS/ynl-$k.counts"
	done
elif [ "$what" = packages ]; then
	rm -f "$RESULTS"/pkg-*.counts
else
	rm -f "$RESULTS"/*.counts
fi

phase_line() {
	local name=$1 secs=$2 f p fl s line

	for f in "$RESULTS/$name".counts "$RESULTS/$name"-[a-z]*.counts; do
		[ -f "$f" ] || continue
		read -r p fl s _ <"$f"
		line="$p passed, $fl failed"
		[ "${s:-0}" = 0 ] || line="$line, $s skipped"
		echo "$(basename "$f" .counts): $line (${secs}s)"
	done
}

# Run "$@" for phase $name; if it wrote no counts and failed, record that.
run_phase() {
	local name=$1 start rc=0
	shift

	start=$SECONDS
	if [ "$V" = 1 ]; then
		"$@" 2>&1 | tee "$RESULTS/$name.log"
		rc=${PIPESTATUS[0]}
	else
		"$@" >"$RESULTS/$name.log" 2>&1 || rc=$?
	fi
	if ! ls "$RESULTS/$name"*.counts >/dev/null 2>&1; then
		if [ "$rc" != 0 ]; then
			echo "0 1 0" >"$RESULTS/$name.counts"
			echo "$name: failed before reporting (rc=$rc):" >&2
			tail -n 20 "$RESULTS/$name.log" >&2
		fi
	elif [ "$rc" != 0 ] && [ "$V" != 1 ]; then
		# with parse-log.sh's "    # ..." lines: why each case failed
		grep -E '^(FAIL|KERNEL|not ok)|FAIL|^    # ' "$RESULTS/$name.log" |
			head -n 80 >&2
	fi
	phase_line "$name" $((SECONDS - start))
}

host_phase() {
	local name=$1 dir=$ROOT/$1

	if [ -f "$dir/Makefile" ] && grep -q '^check:' "$dir/Makefile"; then
		run_phase "$name" make -C "$dir" check
	else
		echo "$name: no 'check' target in $name/Makefile yet; skipped" >&2
	fi
}

# vm_phase NAME TESTDIRS [CYCLES]: one boot running the selftests in
# TESTDIRS, with a disk to stream through the page cache
# (stream_disk_args); VM_MEM and VM_SMP from the environment size the
# guest.  CYCLES (default 200) is MB_CYCLES, the load/unload cycles of
# membroker/unload.
vm_phase() {
	local name=$1 initrd=$VMDIR/$1.cpio.gz log=$VMDIR/$1.console.log
	local disk cycles=${3:-200}

	disk=$(stream_disk_args) &&
	"$ROOT/scripts/vm/kernel.sh" &&
	TESTDIRS=$2 "$ROOT/scripts/vm/initramfs.sh" "$initrd" &&
	{ INITRD=$initrd CONSOLE=$log VM_EXTRA_ARGS=$disk \
		VM_TIMEOUT=${VM_TIMEOUT:-900} \
		"$ROOT/scripts/vm/run.sh" check MB_TIMEOUT=600 \
		MB_CYCLES="$cycles" || true; } &&
	"$ROOT/scripts/vm/parse-log.sh" "$log" "$RESULTS/$name.counts"
}

# big_phase: vm_phase in a guest of 2 GiB and 4 CPUs.
big_phase() {
	VM_MEM=2048 VM_SMP=4 vm_phase vm-big "$BUILD/selftests/membroker-big"
}

# scenario_phase: one boot playing the demo (scripts/vm/guest-demo.sh);
# demo-report.py asserts the order of events and what the caches did.
scenario_phase() {
	local initrd=$VMDIR/scenario.cpio.gz log=$VMDIR/scenario.console.log

	"$ROOT/scripts/vm/kernel.sh" &&
	"$ROOT/scripts/vm/initramfs.sh" "$initrd" &&
	{ INITRD=$initrd CONSOLE=$log VM_TIMEOUT=300 \
		"$ROOT/scripts/vm/run.sh" demo || true; } &&
	"$ROOT/scripts/vm/demo-report.py" "$log" --timeline \
		--check "$RESULTS/scenario.counts"
}

# kernel_phase NAME: on kernel NAME, its own build of the module (kmod.sh)
# and the module selftests (build/selftests/membroker: whatever its order
# file lists, so tests added there run on every kernel; MB_TESTS=a,b in
# KERNEL_TESTS picks some), the fuzzer sending KERNEL_FUZZ_MESSAGES
# (default 2000: a short fuzz; make check's 6.1 phase sends 10000) and
# KERNEL_CYCLES load/unload cycles (default 200, as on 6.1).
kernel_phase() {
	local k=$1 initrd=$VMDIR/vm-$1.cpio.gz log=$VMDIR/vm-$1.console.log

	VM_KERNEL=$k "$ROOT/scripts/vm/kmod.sh" &&
	VM_KERNEL=$k MODULE=$BUILD/kmod/$k/membroker.ko \
		TESTDIRS=$st/membroker \
		"$ROOT/scripts/vm/initramfs.sh" "$initrd" &&
	{ VM_KERNEL=$k INITRD=$initrd CONSOLE=$log \
		VM_EXTRA_ARGS=$(stream_disk_args) VM_TIMEOUT=${VM_TIMEOUT:-900} \
		"$ROOT/scripts/vm/run.sh" check MB_TIMEOUT=600 \
		MB_FUZZ_MESSAGES=${KERNEL_FUZZ_MESSAGES:-2000} \
		MB_CYCLES=${KERNEL_CYCLES:-200} \
		${KERNEL_TESTS:-} || true; } &&
	"$ROOT/scripts/vm/parse-log.sh" "$log" "$RESULTS/vm-$k.counts"
}

st=$BUILD/selftests
if [ "$what" = kernels ]; then
	for k in $KERNELS; do
		run_phase "vm-$k" kernel_phase "$k"
		# the netlink spec on this kernel (its module, built above)
		run_phase "ynl-$k" env VM_KERNEL="$k" \
			"$ROOT/scripts/netlink/ynl-vm.sh"
	done
	exec "$ROOT/scripts/summary.sh"
fi
if [ "$what" = packages ]; then
	run_phase pkg-deb "$ROOT/scripts/pkg/check.sh" debs
	for k in ${PKG_KERNELS:-6.1 6.12 7.3}; do
		run_phase "pkg-$k" "$ROOT/scripts/pkg/check.sh" "$k"
	done
	exec "$ROOT/scripts/summary.sh" pkg-
fi
[ "$what" = all ] || die "usage: $0 [kernels|packages]"

[ -f "$ROOT/kmod/membroker.ko" ] ||
	echo "check: kmod/membroker.ko not built; VM tests will skip" >&2

host_phase lib
host_phase tools
# membrokerctl and mb-hog again, built with ASan+UBSan and with TSan
run_phase tools-asan make -C "$ROOT/tools" SAN=1 check
run_phase tools-tsan make -C "$ROOT/tools" SAN=thread check
# membrokerd on a private bus with real clients, then with sanitizers
host_phase daemon
run_phase daemon-asan make -C "$ROOT/daemon" SAN=1 check
run_phase daemon-tsan make -C "$ROOT/daemon" SAN=thread check
run_phase sqlite env COUNTS="$RESULTS/sqlite.counts" \
	make -C "$ROOT/examples/sqlite-cache" check
# Kbuild at the top, make install/uninstall against the Debian packages
# (scripts/pkg/install-check.sh; builds them unless fresh, about a
# minute, which make lint then reuses).
run_phase install "$ROOT/scripts/pkg/install-check.sh"
# membrokerctl's tests (tools) and membrokerd's before membroker's, whose
# last one reloads the module.
run_phase vm vm_phase vm "$st/lib $st/tools $st/daemon $st/membroker"
# The same tests built with sanitizers (dynamic; no library tests, whose
# own sanitizer runs happen on the host), with 20 load/unload cycles:
# these phases check the tests' own code, which 20 cycles run through as
# 200 would (and the leak check needs 100 to judge: vm does that).
run_phase vm-asan vm_phase vm-asan "$st/membroker-asan" 20
run_phase vm-tsan vm_phase vm-tsan "$st/membroker-tsan" 20
# The tests that need a 2 GiB guest with several CPUs (membroker-big).
run_phase vm-big big_phase
run_phase scenario scenario_phase
# The netlink spec driven by the kernel's ynl client in the VM
# (scripts/netlink/ynl-vm.sh, half a minute).
run_phase ynl "$ROOT/scripts/netlink/ynl-vm.sh"
# The performance benches' smoke run (bench/perf.sh): well-formed figures,
# no time judged.
run_phase bench env SMOKE=1 "$ROOT/bench/perf.sh"

exec "$ROOT/scripts/summary.sh"
