#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Pack the guest's root filesystem: static busybox, the virtio modules,
# membroker.ko (when built), the static selftests and tools, and the init
# script.  Rebuilt every time: it is small and its inputs change often.
#
# Environment: KO (membroker.ko, default kmod/membroker.ko), TESTDIR
# (selftest binaries, their "order" file, helpers in bin/), TOOLDIR
# (mb-hog, membrokerctl).
set -euo pipefail
. "$(dirname "$0")/common.sh"

KO=${KO:-$ROOT/kmod/membroker.ko}
TESTDIR=${TESTDIR:-$BUILD/selftests/membroker}
TOOLDIR=${TOOLDIR:-$BUILD/tools}
BUSYBOX=${BUSYBOX:-/bin/busybox}
OUT=${1:-$VMDIR/initramfs.cpio.gz}

kdir=$VMDIR/kernel
[ -d "$kdir/modules" ] || die "no guest kernel: run scripts/vm/kernel.sh"
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: install busybox-static"
# The guest has no libc: everything in it must be static.
is_static() {
	! ldd "$1" >/dev/null 2>&1
}
is_static "$BUSYBOX" || die "$BUSYBOX is not static"

root=$VMDIR/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root} \
	"$root/lib/modules/virtio" "$root/tests"

cp "$BUSYBOX" "$root/bin/busybox"
install -m 0755 "$ROOT/scripts/vm/guest-init.sh" "$root/init"

for m in $VIRTIO_MODULES; do
	cp "$kdir/modules/$m.ko" "$root/lib/modules/virtio/"
	echo "$m"
done >"$root/lib/modules/virtio/order"

if [ -f "$KO" ]; then
	cp "$KO" "$root/lib/modules/membroker.ko"
else
	say "initramfs: $KO not built; the guest will run without it"
fi

if [ -f "$TESTDIR/order" ]; then
	for t in $(cat "$TESTDIR/order"); do
		[ -x "$TESTDIR/$t" ] || die "selftest $t listed but not built"
		cp "$TESTDIR/$t" "$root/tests/"
	done
	cp "$TESTDIR/order" "$root/tests/order"
else
	: >"$root/tests/order"
fi

# Static helpers: mb-demo from the selftests, mb-hog and membrokerctl
# (when built static) from tools/.
for d in "$TESTDIR/bin" "$TOOLDIR"; do
	[ -d "$d" ] || continue
	for f in "$d"/*; do
		if [ -f "$f" ] && [ -x "$f" ] && is_static "$f"; then
			cp "$f" "$root/bin/"
		fi
	done
done
install -m 0755 "$ROOT/scripts/vm/guest-demo.sh" "$root/bin/mb-demo.sh"

(cd "$root" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --owner=0:0 --quiet) | gzip -1 >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
say "initramfs: $OUT ($(du -h "$OUT" | cut -f1))"
