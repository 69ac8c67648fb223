#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A Debian 13 (trixie) root for the kernels Debian 12 cannot build modules
# for: 7.x headers need gcc-14, and Debian 12 has gcc-12.  Made once with
# debootstrap from this machine's mirror, with trixie-backports added and
# build-essential and bc installed; kept in build/vm/root-trixie/ (remove
# it to start over).  The root is a cache, not part of the tests' inputs:
# everything built in it comes back out as files under build/.
#
#   scripts/vm/buildroot.sh                 make the root (if missing)
#   scripts/vm/buildroot.sh run CMD ARG...  run CMD in it, /proc mounted
#                                           (and $BIND at /build if set)
#
# Every command, debootstrap included, runs in a private mount namespace
# (unshare), so /proc and whatever debootstrap mounts are gone with the
# process, however it ends: nothing stays mounted under build/.
set -euo pipefail
. "$(dirname "$0")/common.sh"

SUITE=trixie
BROOT=$VMDIR/root-$SUITE
stamp=$BROOT/.membroker-root

# Run "$@" inside the root with /proc mounted (objtool reads a limit from
# /proc; apt and dpkg want it too), and the host directory $BIND, if set,
# at /build.
broot_run() {
	mkdir -p "$BROOT/build"
	unshare --mount --propagation private -- sh -c '
		mount -t proc proc "$0/proc" &&
		if [ -n "$BIND" ]; then mount --bind "$BIND" "$0/build"; fi &&
		exec chroot "$0" "$@"' \
		"$BROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

make_root() {
	local tmp=$BROOT.tmp mirror

	command -v debootstrap >/dev/null || {
		quiet apt_get update
		quiet apt_get install -y --no-install-recommends debootstrap
	}
	mirror=$(debian_mirror)
	say "buildroot: debootstrap $SUITE from $mirror"
	rm -rf "$tmp"
	mkdir -p "$VMDIR"
	quiet unshare --mount --propagation private -- \
		debootstrap --variant=minbase "$SUITE" "$tmp" "$mirror"
	cat >"$tmp/etc/apt/sources.list.d/$SUITE-backports.sources" <<-EOF
		Types: deb
		URIs: $mirror
		Suites: $SUITE-backports
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
	BROOT=$tmp quiet broot_run apt-get update
	BROOT=$tmp quiet broot_run apt-get install -y --no-install-recommends \
		build-essential bc
	echo "$SUITE" >"$tmp/.membroker-root"
	rm -rf "$BROOT"
	mv "$tmp" "$BROOT"
}

[ -f "$stamp" ] || make_root

case "${1:-}" in
"")
	;;
run)
	shift
	broot_run "$@"
	;;
*)
	die "usage: $0 [run CMD ARG...]"
	;;
esac
