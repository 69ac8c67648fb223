#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the test VM once and wait for it to power off.
#
#   scripts/vm/run.sh [MODE] [key=value ...]
#
# MODE is check (default), demo or shell; key=value words are appended to
# the kernel command line and reach the guest's init as environment
# variables (MB_TESTS=family,notify selects tests; MB_TIMEOUT=secs is the
# per-test limit).  The console goes to
# build/vm/console.log (and to the terminal with V=1 or in shell mode).
# The guest has a virtio-balloon (bal0) and a virtio-mem device (vm0)
# that tests drive through the QMP socket build/vm/qmp.sock (qmp.py).
# Tests inside the guest ask for those changes themselves: the guest's
# second serial port, /dev/ttyS1, is connected to director.py on the host,
# which performs them over QMP (see director.py for the requests).
# VM_TIMEOUT (seconds, default 540) bounds the whole run: qemu is killed
# after it and the run fails.  VM_KERNEL (6.1, 6.12, 7.3; default 6.1)
# picks the kernel (build/vm/kernel-$VM_KERNEL/, kernel.sh), VM_MEM the
# boot memory in MiB (default 512), VM_SMP the vCPUs (default 2), and
# VM_EXTRA_ARGS is appended to QEMU's command line (word-split: devices
# one test needs).
set -euo pipefail
. "$(dirname "$0")/common.sh"

mode=${1:-check}
[ $# -gt 0 ] && shift
VM_TIMEOUT=${VM_TIMEOUT:-540}
VM_MEM=${VM_MEM:-512}
VM_SMP=${VM_SMP:-2}
VM_EXTRA_ARGS=${VM_EXTRA_ARGS:-}
kernel=$KERNEL_DIR/vmlinuz
initrd=${INITRD:-$VMDIR/initramfs.cpio.gz}
log=${CONSOLE:-$VMDIR/console.log}
qmp=$VMDIR/qmp.sock
ctl=$VMDIR/ctl.sock

[ -s "$kernel" ] || die "no kernel $VM_KERNEL: run scripts/vm/kernel.sh"
[ -s "$initrd" ] || die "no initramfs: run scripts/vm/initramfs.sh"
rm -f "$qmp" "$ctl"

append="console=ttyS0 panic=-1 quiet memhp_default_state=online_movable"
# The debug kernel (make stress) stalls twice for about 26 s routing PCI
# interrupts through ACPI (\_SB_.LNKD, LNKA: its loop timeouts), and the
# balloon test then fails; without ACPI interrupt routing it boots
# straight through and passes.  Debian's kernels do not stall.
[ "$VM_KERNEL" != 6.1-debug ] || append="$append acpi=noirq"
append="$append MB_MODE=$mode $*"

# shellcheck disable=SC2206
qemu=(qemu-system-x86_64 -accel tcg -cpu max -smp "$VM_SMP"
	-m "$VM_MEM,maxmem=$((VM_MEM + 1536))M,slots=2"
	-object memory-backend-ram,id=vmem0,size=1G
	-device virtio-mem-pci,id=vm0,memdev=vmem0,requested-size=0
	-device virtio-balloon-pci,id=bal0
	-qmp "unix:$qmp,server=on,wait=off"
	-chardev "socket,id=hostctl,path=$ctl,server=on,wait=off"
	-serial mon:stdio -serial chardev:hostctl
	-nographic -no-reboot
	-kernel "$kernel" -initrd "$initrd" -append "$append"
	$VM_EXTRA_ARGS)

say "run: ${qemu[*]}"

# One boot: the director connects once QEMU has created the socket and
# exits when QEMU closes it; its log shows every request it served.
director=
# (|| true: it may be gone already, and set -e would make that our status)
trap '[ -z "$director" ] || kill "$director" 2>/dev/null || true' EXIT
boot() {
	local rc=0

	rm -f "$qmp" "$ctl"
	"$ROOT/scripts/vm/director.py" "$ctl" "$qmp" \
		2>"${log%.log}.director.log" &
	director=$!
	if [ "$mode" = shell ]; then
		"${qemu[@]}" 2>&1 | tee "$log" || rc=$?
	elif [ "$V" = 1 ]; then
		timeout -k 5 "$VM_TIMEOUT" "${qemu[@]}" </dev/null 2>&1 |
			stdbuf -oL tr -d '\r' | tee "$log" || rc=$?
	else
		# line by line, so that the log can be followed (make demo does)
		timeout -k 5 "$VM_TIMEOUT" "${qemu[@]}" </dev/null 2>&1 |
			stdbuf -oL tr -d '\r' >"$log" || rc=$?
	fi
	# it exits by itself once QEMU is gone; give it 2 s to finish its log
	for _ in $(seq 20); do
		kill -0 "$director" 2>/dev/null || break
		sleep 0.1
	done
	kill "$director" 2>/dev/null || true
	wait "$director" 2>/dev/null || true
	director=
	return "$rc"
}

# Under TCG, Debian's 7.3 now and then dies while it boots, before any
# module is loaded (an int3 of its own text patching, in
# run_timer_softirq; one boot in five on 2026-12-05): a fault of the
# emulated machine, not of what is tested.  Such a boot, recognised by a panic
# before init's first marker, is kept aside and the VM booted again, at
# most VM_BOOT_TRIES times (default 3); anything later counts as usual.
tries=${VM_BOOT_TRIES:-3}
rc=0
while :; do
	rc=0
	boot || rc=$?
	[ "$mode" != shell ] && [ "$tries" -gt 1 ] &&
		! grep -q '^MB-INIT' "$log" &&
		grep -q 'Kernel panic' "$log" || break
	tries=$((tries - 1))
	cp "$log" "${log%.log}.died-booting.log"
	echo "run: the kernel died while booting, before init (see" \
		"${log%.log}.died-booting.log); booting again" >&2
done
rm -f "$qmp" "$ctl"
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "run: the VM did not finish within ${VM_TIMEOUT}s; killed" >&2
	echo "MB-HOST-TIMEOUT" >>"$log"
	exit 1
fi
[ "$rc" = 0 ] || die "qemu failed (rc=$rc), see $log"
