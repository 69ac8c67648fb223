#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fetch the Debian kernel the VM boots and keep only what the guest needs:
# vmlinuz and the virtio modules for the balloon and virtio-mem devices.
# The result lives in build/vm/kernel/ and is reused while present.
set -euo pipefail
. "$(dirname "$0")/common.sh"

abi=$(vm_abi)
kdir=$VMDIR/kernel
pkg=linux-image-$abi-amd64

have_all() {
	local m

	[ -s "$kdir/vmlinuz" ] || return 1
	for m in $VIRTIO_MODULES; do
		[ -s "$kdir/modules/$m.ko" ] || return 1
	done
	[ "$(cat "$kdir/abi" 2>/dev/null)" = "$abi" ]
}

if have_all; then
	say "kernel: $abi cached"
	exit 0
fi

dl=$VMDIR/download
rm -rf "$dl" "$kdir"
mkdir -p "$dl" "$kdir/modules"
# apt-get download drops privileges to _apt; let it write here, and
# accept its warning where it cannot (the file lands either way).
chmod 0777 "$dl"
say "kernel: downloading $pkg"
(cd "$dl" && quiet apt-get download "$pkg")
deb=$(ls "$dl"/"$pkg"_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || die "apt-get download $pkg produced no .deb"

quiet dpkg-deb -x "$deb" "$dl/x"
cp "$dl/x/boot/vmlinuz-$abi-amd64" "$kdir/vmlinuz"
for m in $VIRTIO_MODULES; do
	ko=$(find "$dl/x/lib/modules/$abi-amd64" -name "$m.ko" | head -n1)
	[ -n "$ko" ] || die "$m.ko not in $pkg"
	cp "$ko" "$kdir/modules/"
done
echo "$abi" >"$kdir/abi"
rm -rf "$dl"
say "kernel: $abi ready in $kdir"
