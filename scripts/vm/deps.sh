#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install what building and testing membroker needs on Debian 12, and only
# what is missing, so that a second run touches nothing.  Resolves the
# kernel ABI the VM will boot from the linux-image-amd64 metapackage and
# records it in build/vm/abi for the other scripts.
set -euo pipefail
. "$(dirname "$0")/common.sh"

# g++: lib/'s check builds the header and the examples as C++.
# zlib1g-dev: the static SQLite example links -lz (sqlite3.pc's
# Libs.private), which libsqlite3-dev does not pull in.
# membrokerd: libsystemd-dev (sd-event, sd-bus); its tests: a private
# dbus-daemon on Debian's system-bus configuration
# (dbus-system-bus-common), GLib's GMemoryMonitor (libglib2.0-dev), gdbus
# (libglib2.0-bin), busctl and systemd-analyze (systemd), setpriv
# (util-linux), man (man-db), the Prometheus text parser
# (python3-prometheus-client).  The Debian packages: dpkg-dev (make deb;
# its other build dependencies come from debian/control), lintian (make
# lint), mmdebstrap (make check-packages' Debian root).  The netlink spec:
# the kernel's schemas and ynl from linux-source-6.12, which need
# python3-yaml and python3-jsonschema.  dwarves: pahole, which 6.12's
# module build runs for the module's BTF (its headers ship a vmlinux).
# flex, bison, libelf-dev, libssl-dev and bc: make stress's debug kernel
# (scripts/vm/dbgkernel.sh) builds from linux-source-6.1.  kmod: modinfo,
# with which the install phase reads the vermagic of the module it built.
PKGS="gcc g++ make pkg-config cpio qemu-system-x86 busybox-static libnl-3-dev
libnl-genl-3-dev sparse linux-source-6.1 xz-utils gnuplot-nox libsqlite3-dev
zlib1g-dev python3 libsystemd-dev libglib2.0-dev libglib2.0-bin dbus-daemon
dbus-system-bus-common systemd util-linux man-db python3-prometheus-client
dpkg-dev lintian mmdebstrap linux-source-6.12 python3-yaml python3-jsonschema
dwarves flex bison libelf-dev libssl-dev bc kmod"

updated=0
apt_update() {
	if [ "$updated" = 0 ]; then
		say "deps: apt-get update"
		quiet apt_get update
		updated=1
	fi
}

missing() {
	local p

	for p in "$@"; do
		dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' ||
			echo "$p"
	done
}

install() {
	local todo

	todo=$(missing "$@")
	[ -n "$todo" ] || return 0
	apt_update
	say "deps: installing" $todo
	quiet apt_get install -y --no-install-recommends $todo
}

resolve_abi() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\(.*\)-amd64$/\1/p' | head -n1
}

# bookworm-backports, at its default priority: nothing installed from it
# unless asked for by name.  membrokerd's sd-event test client needs
# libsystemd 254 from there (daemon/tests/fetch-libsystemd.sh unpacks it
# under build/ without installing it).
backports() {
	local f=/etc/apt/sources.list.d/bookworm-backports.sources

	grep -rqs bookworm-backports /etc/apt/sources.list \
		/etc/apt/sources.list.d/ && return 0
	say "deps: adding bookworm-backports"
	printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" \
		"Suites: bookworm-backports" "Components: main" \
		"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
		as_root tee "$f" >/dev/null
	updated=0
	apt_update
}

# shellcheck disable=SC2086
install $PKGS
backports
if ! quiet "$ROOT/daemon/tests/fetch-libsystemd.sh" "$BUILD/libsystemd-bp"; then
	apt_update
	quiet "$ROOT/daemon/tests/fetch-libsystemd.sh" "$BUILD/libsystemd-bp"
fi

abi=$(resolve_abi)
if [ -z "$abi" ]; then
	# A fresh container has no package lists yet.
	apt_update
	abi=$(resolve_abi)
fi
[ -n "$abi" ] || die "cannot resolve the ABI of linux-image-amd64"
install "linux-headers-$abi-amd64"

mkdir -p "$VMDIR"
if [ "$(cat "$VMDIR/abi" 2>/dev/null)" != "$abi" ]; then
	echo "$abi" >"$VMDIR/abi"
fi
say "deps: kernel ABI $abi"
