#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fetch the Debian kernel named by VM_KERNEL and keep what the guest and
# the module build need, in build/vm/kernel-$VM_KERNEL/:
#   vmlinuz, modules/*.ko (the virtio drivers, uncompressed) and
#   modules/order (the ones to insmod, in order; the rest are built in),
#   abi (e.g. 6.12.95+deb12), and for 6.12 headers/: the kernel's
#   headers packages unpacked, not installed.
# Reused while present.
#
#   6.1   Debian 12's own kernel (linux-image-amd64; deps.sh installs its
#         headers, which `make module` and `make lint` use)
#   6.12  bookworm-backports, added to apt's sources if missing
#   7.3   trixie-backports, fetched inside the Debian 13 build root
#         (buildroot.sh), whose gcc-14 its headers need
#
# 6.12's headers package depends on the kernel image, which would install
# a kernel into the host and build an initramfs for it, minutes for
# nothing: we unpack its headers instead.
set -euo pipefail
. "$(dirname "$0")/common.sh"

kdir=$KERNEL_DIR

# The debug kernel of `make stress` is built, not fetched.
[ "$VM_KERNEL" != 6.1-debug ] || exec "$ROOT/scripts/vm/dbgkernel.sh"

have_all() {
	local m

	[ -s "$kdir/vmlinuz" ] && [ -s "$kdir/abi" ] &&
		[ -f "$kdir/modules/order" ] || return 1
	for m in $(cat "$kdir/modules/order"); do
		[ -s "$kdir/modules/$m.ko" ] || return 1
	done
}

# The ABI the suite's linux-image-amd64 depends on, checked against the
# name we were asked for: a suite that moved on must not be tested under
# the old name.
resolve_abi() {
	local suite=$1 abi
	shift

	abi=$("$@" apt-cache depends "linux-image-amd64/$suite" 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\(.*\)-amd64$/\1/p' | head -n1)
	[ -n "$abi" ] || die "no linux-image-amd64 in $suite"
	case "$abi" in
	"$VM_KERNEL".*) ;;
	*) die "$suite has kernel $abi now, not $VM_KERNEL" ;;
	esac
	echo "$abi"
}

# Keep vmlinuz and the virtio modules from the unpacked packages in $1
# (kernel $2).  A driver the kernel has built in is skipped; one that is
# neither a module nor built in is an error.
keep_kernel() {
	local x=$1 abi=$2 mods m ko

	mods=$x/lib/modules/$abi-amd64
	[ -d "$mods" ] || mods=$x/usr/lib/modules/$abi-amd64
	[ -d "$mods" ] || die "no modules directory for $abi"
	if [ -s "$x/boot/vmlinuz-$abi-amd64" ]; then
		cp "$x/boot/vmlinuz-$abi-amd64" "$kdir/vmlinuz"
	else
		cp "$mods/vmlinuz" "$kdir/vmlinuz"
	fi
	mkdir -p "$kdir/modules"
	: >"$kdir/modules/order"
	for m in $VIRTIO_MODULES; do
		ko=$(find "$mods" -name "$m.ko" -o -name "$m.ko.xz")
		if [ -z "$ko" ]; then
			grep -q "/$m\.ko\$" "$mods/modules.builtin" ||
				die "$m: neither a module nor built into $abi"
			continue
		fi
		case "$ko" in
		*.xz) xz -dc "$ko" >"$kdir/modules/$m.ko" ;;
		*) cp "$ko" "$kdir/modules/$m.ko" ;;
		esac
		echo "$m" >>"$kdir/modules/order"
	done
}

# Point the unpacked headers' Makefile, which includes the -common tree
# by its absolute installed path, at the unpacked copy.
fix_headers() {
	local h=$1 abi=$2 mk

	mk=$h/usr/src/linux-headers-$abi-amd64/Makefile
	sed -i "s|^include /usr/src/|include $h/usr/src/|" "$mk"
	[ -f "$h/usr/src/linux-headers-$abi-amd64/scripts/Makefile.build" ] ||
		die "unpacked headers of $abi are incomplete"
}

case "$VM_KERNEL" in
6.1)
	abi=$(vm_abi)
	# The rig kept 6.1, all of whose virtio drivers are modules, in
	# build/vm/kernel/ before there were others: reuse it.
	old=$VMDIR/kernel
	if [ ! -d "$kdir" ] && [ -s "$old/vmlinuz" ] &&
		[ "$(cat "$old/abi" 2>/dev/null)" = "$abi" ]; then
		mv "$old" "$kdir"
		printf '%s\n' $VIRTIO_MODULES >"$kdir/modules/order"
	fi
	;;
6.12)
	apt_add_suite bookworm-backports || quiet apt_get update
	abi=$(resolve_abi bookworm-backports)
	;;
7.3)
	"$ROOT/scripts/vm/buildroot.sh"
	abi=$(resolve_abi trixie-backports "$ROOT/scripts/vm/buildroot.sh" run)
	;;
*)
	die "VM_KERNEL=$VM_KERNEL: 6.1, 6.12 or 7.3"
	;;
esac

if have_all && [ "$(cat "$kdir/abi")" = "$abi" ]; then
	say "kernel: $VM_KERNEL ($abi) cached"
	exit 0
fi

rm -rf "$kdir"
mkdir -p "$kdir"
case "$VM_KERNEL" in
6.1 | 6.12)
	dl=$VMDIR/download-$VM_KERNEL
	rm -rf "$dl"
	mkdir -p "$dl"
	# apt-get download drops privileges to _apt; let it write here, and
	# accept its warning where it cannot (the file lands either way).
	chmod 0777 "$dl"
	pkgs="linux-image-$abi-amd64"
	[ "$VM_KERNEL" = 6.1 ] || pkgs="$pkgs linux-headers-$abi-amd64
		linux-headers-$abi-common linux-kbuild-$abi"
	say "kernel: downloading" $pkgs
	# shellcheck disable=SC2086
	(cd "$dl" && quiet apt-get download $pkgs)
	quiet dpkg-deb -x "$(ls "$dl"/linux-image-"$abi"-amd64_*.deb)" "$dl/x"
	keep_kernel "$dl/x" "$abi"
	if [ "$VM_KERNEL" != 6.1 ]; then
		for deb in "$dl"/linux-headers-*.deb "$dl"/linux-kbuild-*.deb; do
			quiet dpkg-deb -x "$deb" "$kdir/headers"
		done
		fix_headers "$kdir/headers" "$abi"
	fi
	rm -rf "$dl"
	;;
7.3)
	# 7.x splits the image: linux-image-<abi> only depends on
	# linux-binary-<abi> (vmlinuz), linux-modules-<abi> (.ko.xz) and
	# linux-base-<abi> (modules.builtin and the like), downloaded and unpacked in the build root and kept out here.  Its
	# headers no longer depend on the image: installed in the root,
	# where the module is built.
	br=$VMDIR/root-trixie
	rm -rf "$br/tmp/dl"
	mkdir -p "$br/tmp/dl"
	chmod 0777 "$br/tmp/dl"
	say "kernel: downloading $abi in the build root"
	quiet "$ROOT/scripts/vm/buildroot.sh" run sh -ec "
		cd /tmp/dl
		apt-get download linux-binary-$abi-amd64 \
			linux-modules-$abi-amd64 linux-base-$abi-amd64
		for d in *.deb; do
			dpkg-deb -x \$d x
		done
		apt-get install -y --no-install-recommends \
			linux-headers-$abi-amd64"
	keep_kernel "$br/tmp/dl/x" "$abi"
	rm -rf "$br/tmp/dl"
	;;
esac
echo "$abi" >"$kdir/abi"
say "kernel: $VM_KERNEL ($abi) ready in $kdir"
