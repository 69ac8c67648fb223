#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the debug kernel `make stress` boots (VM_KERNEL=6.1-debug), into
# build/vm/kernel-6.1-debug/: vmlinuz, abi (its release), modules/order
# (empty: the virtio drivers are built in) and tree/, the configured and
# built source the module is built against (kmod.sh).
#
# Source: Debian's linux-source-6.1 tarball (deps.sh installs it).
# Configuration: Debian's own for the ABI the VM boots (from its headers
# package), every module dropped (nobody here needs DRM or sound, and
# they are most of the build), then scripts/vm/debug.config: KASAN,
# KFENCE, lockdep, DEBUG_ATOMIC_SLEEP, debug objects for work and timers,
# kmemleak, UBSAN, and the virtio drivers built in.  An option of
# debug.config that olddefconfig drops fails the build: a debug kernel
# without its checker would prove nothing.
#
# Reused while build/vm/kernel-6.1-debug/stamp matches the inputs (the
# tarball's package version, Debian's config, debug.config): a second
# `make stress` does not rebuild.  The build runs niced; it takes about
# 20 minutes on two quiet cores, much longer on a shared machine.
set -euo pipefail
. "$(dirname "$0")/common.sh"

TARBALL=${KSRC_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
kdir=$VMDIR/kernel-6.1-debug
tree=$kdir/tree
frag=$ROOT/scripts/vm/debug.config
abi=$(vm_abi)
dconfig=/usr/src/linux-headers-$abi-amd64/.config

[ -r "$TARBALL" ] || die "$TARBALL missing: run scripts/vm/deps.sh"
[ -r "$dconfig" ] || die "$dconfig missing: run scripts/vm/deps.sh"

stamp=$({
	dpkg-query -W -f '${Version}\n' linux-source-6.1 2>/dev/null || true
	sha256sum <"$dconfig"
	sha256sum <"$frag"
} | sha256sum | cut -d' ' -f1)

if [ -s "$kdir/vmlinuz" ] && [ -s "$kdir/abi" ] &&
	[ -f "$tree/Module.symvers" ] &&
	[ "$(cat "$kdir/stamp" 2>/dev/null)" = "$stamp" ]; then
	say "dbgkernel: $(cat "$kdir/abi") cached"
	exit 0
fi

# The extracted source is kept across configuration changes: extracting
# takes minutes on a busy machine.
src=$(dpkg-query -W -f '${Version}' linux-source-6.1 2>/dev/null || true)
if [ "$(cat "$tree/.mb-extracted" 2>/dev/null)" != "$src" ]; then
	rm -rf "$tree"
	mkdir -p "$tree"
	say "dbgkernel: extracting $TARBALL"
	tar -xJf "$TARBALL" -C "$tree" --strip-components=1
	echo "$src" >"$tree/.mb-extracted"
fi
rm -f "$kdir/vmlinuz" "$kdir/abi" "$kdir/stamp"
mkdir -p "$kdir/modules"

# Debian's configuration without its modules: =m becomes "not set", and
# olddefconfig below settles what depended on them.
sed -e 's/^\(CONFIG_[A-Za-z0-9_]*\)=m$/# \1 is not set/' "$dconfig" \
	>"$tree/.config"
(cd "$tree" && quiet scripts/kconfig/merge_config.sh -m .config "$frag")
quiet make -C "$tree" olddefconfig

# Every line of debug.config must have survived.
bad=0
while read -r line; do
	case "$line" in
	CONFIG_*=*)
		grep -qxF "$line" "$tree/.config" || {
			echo "dbgkernel: $line did not stick" >&2
			bad=1
		}
		;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }
		opt=${opt%% *}
		if grep -q "^$opt=" "$tree/.config"; then
			echo "dbgkernel: $opt is still set" >&2
			bad=1
		fi
		;;
	esac
done <"$frag"
[ "$bad" = 0 ] || die "the debug configuration did not apply"

say "dbgkernel: building (niced, -j$(nproc))"
log=$kdir/build.log
if ! nice -n 19 make -C "$tree" -j"$(nproc)" bzImage modules >"$log" 2>&1; then
	tail -n 40 "$log" >&2
	die "the debug kernel failed to build, see $log"
fi
cp "$tree/arch/x86/boot/bzImage" "$kdir/vmlinuz"
make -s -C "$tree" kernelrelease >"$kdir/abi"
: >"$kdir/modules/order"
echo "$stamp" >"$kdir/stamp"
say "dbgkernel: $(cat "$kdir/abi") ready in $kdir"
