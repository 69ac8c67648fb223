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

# The kernel ABI of Debian 12's own kernel (resolved by deps.sh): the
# default guest, and the headers `make module` and `make lint` use.
vm_abi() {
	[ -s "$VMDIR/abi" ] || die "$VMDIR/abi missing: run scripts/vm/deps.sh"
	cat "$VMDIR/abi"
}

# The guest kernel: VM_KERNEL names it (kernel.sh knows where each comes
# from), its files are in build/vm/kernel-$VM_KERNEL/: vmlinuz,
# modules/*.ko (uncompressed) and abi.
VM_KERNEL=${VM_KERNEL:-6.1}
KERNEL_DIR=$VMDIR/kernel-$VM_KERNEL

# The URI of the archive whose path ends in /$1 (debian, debian-security)
# in this machine's apt sources: the first URIs: field of a deb822 source
# or the first `deb` line naming it.  Comments are skipped: a source may
# keep another URI in one (Debian's images note the snapshot of their
# date as "# http://snapshot.debian.org/archive/debian/2025...").
apt_source_uri() {
	cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
		2>/dev/null | awk -v archive="$1" '
		function want(u) {
			return u ~ "^(https?|ftp)://" && u ~ "/" archive "/?$"
		}
		/^[ \t]*#/ { next }
		$1 == "URIs:" {
			for (i = 2; i <= NF; i++)
				if (want($i)) { print $i; exit }
		}
		$1 == "deb" {
			i = 2
			if ($2 ~ /^\[/) {
				while (i <= NF && $i !~ /\]$/)
					i++
				i++
			}
			if (want($i)) { print $i; exit }
		}'
}

# The Debian mirror this machine uses, for suites we add and for the
# Debian 13 build root; and its security archive.
debian_mirror() {
	local uri

	uri=$(apt_source_uri debian)
	echo "${uri:-http://deb.debian.org/debian}"
}

security_mirror() {
	local uri

	uri=$(apt_source_uri debian-security)
	echo "${uri:-http://deb.debian.org/debian-security}"
}

# The virtio modules the guest loads, in dependency order (from
# `strings X.ko | grep ^depends=` on the Debian image).  virtio_blk is for
# the disk some tests stream through the page cache (VM_EXTRA_ARGS).
VIRTIO_MODULES="virtio_ring virtio virtio_pci_modern_dev
virtio_pci_legacy_dev virtio_pci virtio_balloon virtio_mem virtio_blk"

# Make apt see SUITE (e.g. bookworm-backports) of the Debian mirror, unless
# some source already names it.  Backports suites are NotAutomatic:
# nothing is taken from them unless asked for by name or with -t.
# Returns 1 when it added the suite (the caller then runs apt-get update).
apt_add_suite() {
	local suite=$1 f=/etc/apt/sources.list.d/$1.sources

	grep -rqsw -- "$suite" /etc/apt/sources.list /etc/apt/sources.list.d/ &&
		return 0
	say "apt: adding $suite"
	as_root tee "$f" >/dev/null <<-EOF
		Types: deb
		URIs: $(debian_mirror)
		Suites: $suite
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	return 1
}

# A sparse disk image larger than the guest's RAM (VM_MEM, MiB), for the
# tests that stream a device through the page cache (membroker/reclaim):
# creates build/vm/stream.img if needed and prints the qemu arguments that
# attach it read-only as virtio-blk (/dev/vda in the guest).
stream_disk_args() {
	local img=$VMDIR/stream.img mib=$((2 * ${VM_MEM:-512}))

	mkdir -p "$VMDIR"
	if [ "$(stat -c %s "$img" 2>/dev/null || echo 0)" -lt \
	     $((mib * 1024 * 1024)) ]; then
		truncate -s "${mib}M" "$img" || return 1
	fi
	echo "-drive file=$img,if=virtio,format=raw,readonly=on"
}
