#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The netlink spec in use: boot the VM (VM_KERNEL, default 6.1 with make
# check's kmod/membroker.ko; another kernel with its own build of the
# module by kmod.sh) with python3 and the kernel's ynl (tools/net/ynl of
# linux-source-6.12, scripts/netlink/ksrc.sh) in the initramfs, and run
# guest-ynl.sh, which drives the family with ynl's command-line client
# from Documentation/netlink/specs/membroker.yaml alone: get-state,
# get-config, set-config refused to nobody and applied for root with its
# notification, the history dump.  The busybox initramfs has no python:
# the host's python3.11 goes in with its libraries (EXTRA_DYN), its
# standard library and python3-yaml (EXTRA_TREE), less what the client
# cannot need.  Counts in build/results/ynl.counts, on another kernel
# ynl-$VM_KERNEL.counts (make check-kernels' phases ynl-6.12, ynl-7.3).
set -euo pipefail
. "$(dirname "$0")/../vm/common.sh"

RESULTS=${RESULTS:-$BUILD/results}
if [ "$VM_KERNEL" = 6.1 ]; then
	name=ynl
	out=$BUILD/ynl-vm
	ko=$ROOT/kmod/membroker.ko
else
	name=ynl-$VM_KERNEL
	out=$BUILD/ynl-vm-$VM_KERNEL
	ko=$BUILD/kmod/$VM_KERNEL/membroker.ko
fi
py=/usr/bin/python3.11
rm -f "$RESULTS/$name.counts"
mkdir -p "$RESULTS"

[ -x "$py" ] || die "$py missing (Debian 12's python3)"
ksrc=$("$ROOT/scripts/netlink/ksrc.sh")
rm -rf "$out"
mkdir -p "$out/tree/ynl" "$out/tree/usr/lib/python3/dist-packages" \
	"$out/tests/ynl"
cp -a "$ksrc/tools/net/ynl/cli.py" "$ksrc/tools/net/ynl/lib" \
	"$out/tree/ynl/"
cp "$ROOT/Documentation/netlink/specs/membroker.yaml" "$out/tree/ynl/"
cp -a /usr/lib/python3.11 "$out/tree/usr/lib/"
(cd "$out/tree/usr/lib/python3.11" &&
	rm -rf config-* test idlelib tkinter turtledemo ensurepip lib2to3 \
		pydoc_data distutils site-packages)
cp -a /usr/lib/python3/dist-packages/yaml \
	"$out/tree/usr/lib/python3/dist-packages/"
# PyYAML's C speedups need libyaml; the pure Python parser does.
rm -f "$out/tree/usr/lib/python3/dist-packages/yaml/"_yaml*.so
install -m 0755 "$ROOT/scripts/netlink/guest-ynl.sh" "$out/tests/ynl/ynl"
echo ynl >"$out/tests/ynl/order"

"$ROOT/scripts/vm/kernel.sh"
if [ "$VM_KERNEL" != 6.1 ]; then
	"$ROOT/scripts/vm/kmod.sh"
fi
MODULE=$ko TESTDIRS=$out/tests/ynl EXTRA_DYN=$py EXTRA_TREE=$out/tree \
	"$ROOT/scripts/vm/initramfs.sh" "$out/vm.cpio.gz"
INITRD=$out/vm.cpio.gz CONSOLE=$out/vm.console.log \
	VM_TIMEOUT=${VM_TIMEOUT:-900} \
	"$ROOT/scripts/vm/run.sh" check MB_TIMEOUT=600 || true
"$ROOT/scripts/vm/parse-log.sh" "$out/vm.console.log" "$RESULTS/$name.counts"
