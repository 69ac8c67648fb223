#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make stress: the module's selftests on a debug kernel, phase
# "stress-6.1-debug" (counts in build/results/, like make check's).
#
# The kernel is Debian's linux-source-6.1 with KASAN, KFENCE, lockdep,
# DEBUG_ATOMIC_SLEEP, debug objects for work and timers, kmemleak and
# UBSAN (scripts/vm/dbgkernel.sh: built once, about 20 minutes on two
# quiet cores, cached in build/vm/kernel-6.1-debug/), the module built
# against it (kmod.sh).  The guest gets 1 GiB (KASAN's shadow takes an
# eighth) and generous time: under TCG every instrumented access costs.
# At the end the guest runs two kmemleak scans; parse-log.sh fails the
# run on any report in the kernel log: KASAN, KFENCE, UBSAN, lockdep,
# "sleeping function called from invalid context", WARN, BUG, Oops, and
# kmemleak's "unreferenced object".
#
# Environment: STRESS_TESTS=a,b picks selftests (default: all of
# build/selftests/membroker), STRESS_CYCLES the load/unload cycles of
# membroker/unload (default 1000), STRESS_TIMEOUT the per-test limit in
# the guest (default 900 s and 4 s per cycle: a cycle took 1.15 s on
# this kernel, and the machine may be shared).
set -uo pipefail
. "$(dirname "$0")/vm/common.sh"

export VM_KERNEL=6.1-debug
RESULTS=$BUILD/results
name=stress-6.1-debug
initrd=$VMDIR/$name.cpio.gz
log=$VMDIR/$name.console.log
mkdir -p "$RESULTS"
rm -f "$RESULTS/$name.counts"

cycles=${STRESS_CYCLES:-1000}
timeout=${STRESS_TIMEOUT:-$((900 + 4 * cycles))}

stress_phase() {
	local args="MB_KMEMLEAK=1 MB_TIMEOUT=$timeout MB_CYCLES=$cycles
		MB_FUZZ_MESSAGES=100000"

	[ -z "${STRESS_TESTS:-}" ] || args="$args MB_TESTS=$STRESS_TESTS"
	"$ROOT/scripts/vm/kmod.sh" &&
	MODULE=$BUILD/kmod/$VM_KERNEL/membroker.ko \
		TESTDIRS=$BUILD/selftests/membroker \
		"$ROOT/scripts/vm/initramfs.sh" "$initrd" &&
	{ INITRD=$initrd CONSOLE=$log VM_MEM=1024 \
		VM_TIMEOUT=$((5400 + 4 * cycles)) \
		VM_EXTRA_ARGS=$(VM_MEM=1024 stream_disk_args) \
		"$ROOT/scripts/vm/run.sh" check $args || true; } &&
	"$ROOT/scripts/vm/parse-log.sh" "$log" "$RESULTS/$name.counts"
}

start=$SECONDS
rc=0
if [ "$V" = 1 ]; then
	stress_phase 2>&1 | tee "$RESULTS/$name.log"
	rc=${PIPESTATUS[0]}
else
	stress_phase >"$RESULTS/$name.log" 2>&1 || rc=$?
fi
if [ ! -f "$RESULTS/$name.counts" ]; then
	echo "0 1 0" >"$RESULTS/$name.counts"
	echo "$name: failed before reporting (rc=$rc):" >&2
	tail -n 20 "$RESULTS/$name.log" >&2
elif [ "$rc" != 0 ]; then
	grep -E '^(FAIL|KERNEL)' "$RESULTS/$name.log" | head -n 40 >&2
fi
read -r p f s _ <"$RESULTS/$name.counts"
echo "$name: $p passed, $f failed${s:+, $s skipped} ($((SECONDS - start))s)"
echo "$p passed, $f failed"
[ "$f" = 0 ]
