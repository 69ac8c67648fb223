#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Pack the guest's root filesystem: static busybox, the virtio modules,
# membroker.ko (when built), the static selftests and tools, and the init
# script.  Rebuilt every time: it is small and its inputs change often.
#
# Environment: VM_KERNEL (whose virtio modules, default 6.1), MODULE
# (membroker.ko, default kmod/membroker.ko, the 6.1 build; for another
# kernel build/kmod/$VM_KERNEL/membroker.ko from kmod.sh), TESTDIRS
# (directories of selftest binaries with an "order" file), TOOLDIR
# (mb-hog, membrokerctl), EXTRA_DYN (more dynamic executables for /bin,
# copied with their libraries) and EXTRA_TREE (a directory copied over
# the root), for benches that need more than the tests do.
set -euo pipefail
. "$(dirname "$0")/common.sh"

KO=${MODULE:-${KO:-$ROOT/kmod/membroker.ko}}
TESTDIRS=${TESTDIRS:-$BUILD/selftests/lib $BUILD/selftests/tools $BUILD/selftests/daemon $BUILD/selftests/membroker}
TOOLDIR=${TOOLDIR:-$BUILD/tools}
BUSYBOX=${BUSYBOX:-/bin/busybox}
OUT=${1:-$VMDIR/initramfs.cpio.gz}

kdir=$KERNEL_DIR
[ -f "$kdir/modules/order" ] ||
	die "no guest kernel $VM_KERNEL: run scripts/vm/kernel.sh"
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: install busybox-static"
# The guest has no libc: everything in it must be static.
is_static() {
	! ldd "$1" >/dev/null 2>&1
}
is_static "$BUSYBOX" || die "$BUSYBOX is not static"

# A sanitizer build is dynamic: give it its libraries and the loader at
# the paths ldd reports, which is where it will look for them.
copy_libs() {
	local lib

	for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

root=$VMDIR/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root} \
	"$root/lib/modules/virtio" "$root/tests"

cp "$BUSYBOX" "$root/bin/busybox"
install -m 0755 "$ROOT/scripts/vm/guest-init.sh" "$root/init"

# Only those the kernel has as modules (6.12 builds the virtio core in)
for m in $(cat "$kdir/modules/order"); do
	cp "$kdir/modules/$m.ko" "$root/lib/modules/virtio/"
	echo "$m"
done >"$root/lib/modules/virtio/order"

if [ -f "$KO" ]; then
	cp "$KO" "$root/lib/modules/membroker.ko"
else
	say "initramfs: $KO not built; the guest will run without it"
fi

# The VM bench (make bench, MB_MODE=bench), when built.
for bench in notify_latency tails outcome cost; do
	bench=$BUILD/bench/$bench
	if [ -x "$bench" ] && is_static "$bench"; then
		cp "$bench" "$root/bin/"
	fi
done

# Each directory's tests run in the order of its "order" file, as
# /tests/<dir>/<test>.  The library's and membrokerctl's tests come
# first: membroker's own end with "unload", which reloads the module under
# everyone's feet.
: >"$root/tests/order"
for d in $TESTDIRS; do
	[ -f "$d/order" ] || continue
	name=$(basename "$d")
	mkdir -p "$root/tests/$name"
	for t in $(cat "$d/order"); do
		[ -x "$d/$t" ] || die "selftest $d/$t listed but not built"
		cp "$d/$t" "$root/tests/$name/"
		is_static "$d/$t" || copy_libs "$d/$t"
		echo "$name/$t" >>"$root/tests/order"
	done
done

# membrokerd links libsystemd, which Debian ships only shared: it comes
# with its libraries, like the sanitizer builds.
mbd=${MEMBROKERD:-$BUILD/daemon/membrokerd}
if [ -x "$mbd" ]; then
	cp "$mbd" "$root/bin/membrokerd"
	copy_libs "$mbd"
fi

for f in ${EXTRA_DYN:-}; do
	cp "$f" "$root/bin/"
	copy_libs "$f"
done
if [ -n "${EXTRA_TREE:-}" ]; then
	cp -a "$EXTRA_TREE/." "$root/"
fi

# Static helpers: mb-demo from the selftests, mbd-listen from the
# daemon's, mb-hog and membrokerctl (when built static) from tools/.
for d in "$BUILD/selftests/membroker/bin" "$BUILD/selftests/daemon/bin" \
	 "$TOOLDIR"; do
	[ -d "$d" ] || continue
	for f in "$d"/*; do
		if [ -f "$f" ] && [ -x "$f" ] && is_static "$f"; then
			cp "$f" "$root/bin/"
		fi
	done
done
# The SQLite example for the demo scenario (make -C examples/sqlite-cache
# static), when built.
sqlite=$BUILD/examples/sqlite-cache/sqlite-cache-static
if [ -x "$sqlite" ] && is_static "$sqlite"; then
	cp "$sqlite" "$root/bin/sqlite-cache"
fi
install -m 0755 "$ROOT/scripts/vm/guest-demo.sh" "$root/bin/mb-demo.sh"

(cd "$root" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --owner=0:0 --quiet) | gzip -1 >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
say "initramfs: $OUT ($(du -h "$OUT" | cut -f1))"
