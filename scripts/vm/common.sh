# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the scripts/vm/*.sh rig: where things live and how to be
# quiet.  Every script is silent unless V=1 so that `make check` prints
# only results; errors always reach stderr.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
VMDIR=$BUILD/vm
V=${V:-0}

say() {
	if [ "$V" = 1 ]; then
		echo "$*" >&2
	fi
	return 0
}

die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

# Run a command, showing its output only with V=1 or when it fails.
quiet() {
	local log rc=0

	if [ "$V" = 1 ]; then
		"$@"
		return
	fi
	log=$(mktemp)
	"$@" >"$log" 2>&1 || rc=$?
	if [ "$rc" != 0 ]; then
		cat "$log" >&2
	fi
	rm -f "$log"
	return "$rc"
}

# Root for apt/dpkg: sudo when we are not root and it is there.
as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root for: $*"
	fi
}

# apt-get as root, one at a time: several checkouts of this repository may
# install their dependencies at once on one machine, and apt refuses to
# run while another apt holds its locks.  flock serialises ours; the lock
# timeout makes apt wait for anyone else's instead of failing.
apt_get() {
	as_root flock /var/lock/membroker-apt.lock \
		env DEBIAN_FRONTEND=noninteractive \
		apt-get -o DPkg::Lock::Timeout=600 "$@"
}

# The kernel ABI the VM boots (resolved by deps.sh).
vm_abi() {
	[ -s "$VMDIR/abi" ] || die "$VMDIR/abi missing: run scripts/vm/deps.sh"
	cat "$VMDIR/abi"
}

# The virtio modules the guest loads, in dependency order (from
# `strings X.ko | grep ^depends=` on the Debian image).
VIRTIO_MODULES="virtio_ring virtio virtio_pci_modern_dev
virtio_pci_legacy_dev virtio_pci virtio_balloon virtio_mem"
