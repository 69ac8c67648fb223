#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build membroker.ko for the kernel VM_KERNEL names, into
# build/kmod/$VM_KERNEL/membroker.ko.
#
#   VM_KERNEL=6.12 scripts/vm/kmod.sh [make args, e.g. W=1]
#
# The build runs on a copy of kmod/ and include/ (build/kmod/NAME/src/),
# one per kernel, so that kernels never share object files and a build
# for one never disturbs kmod/ or another's.  Only files whose contents
# changed are copied, so a rebuild is incremental.  Headers: 6.1 Debian
# 12's installed ones, 6.12 those kernel.sh unpacked, 7.3 those in the
# Debian 13 build root, where the module is built with its gcc-14.
# Kernel API differences are detected from the headers by kmod/Kbuild.
set -euo pipefail
. "$(dirname "$0")/common.sh"

out=$BUILD/kmod/$VM_KERNEL
src=$out/src

# Copy the sources under $1 to $2, touching only what changed.
sync_dir() {
	local from=$1 to=$2 f

	(cd "$from" && find . -type f \( -name '*.[ch]' -o -name Kbuild \
		-o -name Makefile \) ! -name '*.mod.c') | while read -r f; do
		cmp -s "$from/$f" "$to/$f" && continue
		mkdir -p "$(dirname "$to/$f")"
		cp "$from/$f" "$to/$f"
	done
}

"$ROOT/scripts/vm/kernel.sh"
abi=$(cat "$KERNEL_DIR/abi")
mkdir -p "$src"
sync_dir "$ROOT/kmod" "$src/kmod"
sync_dir "$ROOT/include" "$src/include"

rc=0
case "$VM_KERNEL" in
6.1)
	quiet nice -n 10 make -C "/usr/src/linux-headers-$abi-amd64" \
		M="$src/kmod" "$@" modules || rc=$?
	;;
6.12)
	quiet nice -n 10 make \
		-C "$KERNEL_DIR/headers/usr/src/linux-headers-$abi-amd64" \
		M="$src/kmod" "$@" modules || rc=$?
	;;
6.1-debug)
	quiet nice -n 10 make -C "$KERNEL_DIR/tree" \
		M="$src/kmod" "$@" modules || rc=$?
	;;
7.3)
	BIND=$out quiet "$ROOT/scripts/vm/buildroot.sh" run \
		nice -n 10 make -C "/usr/src/linux-headers-$abi-amd64" \
		M=/build/src/kmod "$@" modules || rc=$?
	;;
*)
	die "VM_KERNEL=$VM_KERNEL: 6.1, 6.12, 7.3 or 6.1-debug"
	;;
esac
[ "$rc" = 0 ] || die "membroker.ko for $VM_KERNEL ($abi) failed to build"

# A module for another kernel would be refused at insmod: say so here.
# (The debug kernel's release is its abi file, without Debian's -amd64.)
release=$abi-amd64
[ "$VM_KERNEL" != 6.1-debug ] || release=$abi
vermagic=$(strings "$src/kmod/membroker.ko" | sed -n 's/^vermagic=//p')
case "$vermagic" in
"$release "*) ;;
*) die "membroker.ko is for '$vermagic', not $release" ;;
esac
cp "$src/kmod/membroker.ko" "$out/membroker.ko.tmp"
mv "$out/membroker.ko.tmp" "$out/membroker.ko"
say "kmod: $out/membroker.ko ($abi)"
