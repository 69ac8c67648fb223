#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-packages, one step at a time (scripts/check.sh packages runs
# them as phases):
#
#   scripts/pkg/check.sh debs      build/deb/*.deb (deb.sh --reuse: make
#                                  deb unless they are newer than every
#                                  file of the tree); pkg-deb.counts
#   scripts/pkg/check.sh KERNEL    6.1, 6.12 or 7.3: the packages the
#                                  way a user meets them, below
#
# For KERNEL, a fresh root of the Debian release that ships it (a copy of
# a cached mmdebstrap base, build/pkg/base-SUITE.tar; remove it to start
# over): Debian 12 (bookworm) for 6.1 and for 6.12 from
# bookworm-backports, Debian 13 (trixie) for 7.3 from trixie-backports,
# whose headers need trixie's gcc-14.  The packages are the ones built on
# Debian 12, installed unchanged on both.  In that root
#   - `apt-get install` of the four packages' .deb files together with
#     linux-headers-ABI-amd64 (from the backports suite for 6.12 and 7.3)
#     succeeds;
#   - DKMS built and installed membroker.ko for that kernel: `dkms status`
#     says so and the module is in /lib/modules/ABI-amd64/updates/dkms
#     (membroker.ko, or membroker.ko.xz where DKMS compresses it as for
#     6.12), for that kernel's vermagic;
#   - selftests/pkg/client.c, a program that knows only the installed
#     header and `pkg-config membroker`, builds (shared and static) and
#     its meminfo checks pass in the root;
#   - membrokerctl from membroker-tools runs, on the installed library;
# those are build/results/pkg-KERNEL.counts.  Then the VM boots KERNEL
# with the DKMS-built module and runs the static client (the module's
# state and configuration through the installed library) and the module
# selftests (PKG_TESTS="MB_TESTS=a,b" picks some), counted by
# parse-log.sh in build/results/pkg-KERNEL-vm.counts.
#
# Packages are downloaded once into build/pkg/archives/SUITE/ (bound to
# the root's apt cache); nothing is installed on the host but mmdebstrap.
set -uo pipefail
. "$(dirname "$0")/../vm/common.sh"

RESULTS=${RESULTS:-$BUILD/results}
PKGDIR=$BUILD/pkg
DEBDIR=$BUILD/deb
mkdir -p "$RESULTS"

# ---- make deb, unless build/deb/ is newer than the tree ----
debs_step() {
	rm -f "$RESULTS/pkg-deb.counts"
	if "$ROOT/scripts/pkg/deb.sh" --reuse; then
		echo "1 0 0" >"$RESULTS/pkg-deb.counts"
	else
		echo "0 1 0" >"$RESULTS/pkg-deb.counts"
		return 1
	fi
}

# ---- the root ----
# The Debian release whose root tests kernel $1.
suite_of() {
	case "$1" in
	6.1 | 6.12) echo bookworm ;;
	7.3) echo trixie ;;
	*) return 1 ;;
	esac
}

# build/pkg/base-$SUITE.tar, from this machine's mirrors.
make_base() {
	local mirror sec

	command -v mmdebstrap >/dev/null || {
		quiet apt_get update
		quiet apt_get install -y --no-install-recommends mmdebstrap
	}
	mirror=$(debian_mirror)
	sec=$(security_mirror)
	say "pkg: mmdebstrap $SUITE from $mirror"
	mkdir -p "$PKGDIR"
	# Written under another name and renamed when complete, so that an
	# interrupted run never leaves a truncated base to be reused.  The
	# format is explicit: from a name not ending in .tar mmdebstrap
	# would make a directory.  rm -rf: an older run's may be one.
	rm -rf "$BASE.tmp"
	mmdebstrap --variant=apt --mode=root --format=tar "$SUITE" \
		"$BASE.tmp" \
		"deb $mirror $SUITE main" \
		"deb $mirror $SUITE-updates main" \
		"deb $sec $SUITE-security main" \
		>"$PKGDIR/base-$SUITE.log" 2>&1 || {
		tail -n 20 "$PKGDIR/base-$SUITE.log" >&2
		rm -rf "$BASE.tmp"
		return 1
	}
	mv "$BASE.tmp" "$BASE"
}

# Run "$@" in $root with /proc mounted and the package cache bound, in a
# private mount namespace: nothing stays mounted when it ends.
in_root() {
	unshare --mount --propagation private -- sh -c '
		mount -t proc proc "$0/proc" &&
		mount --bind "$1" "$0/var/cache/apt/archives" &&
		shift && exec chroot "$0" "$@"' \
		"$root" "$ARCHIVES" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

passed=0 failed=0
ok() {
	passed=$((passed + 1))
	echo "ok: $*"
}
not_ok() {
	failed=$((failed + 1))
	echo "FAIL: $*" >&2
}
# check WHAT CMD...: one counted check, CMD's output in the step's log
check() {
	local what=$1
	shift

	if "$@" >>"$log" 2>&1; then
		ok "$what"
	else
		not_ok "$what (see ${log#"$ROOT"/})"
		return 1
	fi
}

# Count the TAP lines of a run of the client (in $1) as checks.
count_tap() {
	local line

	while read -r line; do
		case "$line" in
		"ok "*"# SKIP"*) not_ok "client: $line (nothing may skip)" ;;
		"ok "*) ok "client: ${line#ok }" ;;
		"not ok "*) not_ok "client: $line" ;;
		esac
	done <"$1"
}

kernel_step() {
	local k=$1 abi version out ko pkgs extra release

	rm -f "$RESULTS/pkg-$k.counts" "$RESULTS/pkg-$k-vm.counts"
	VM_KERNEL=$k "$ROOT/scripts/vm/kernel.sh" || return 1
	abi=$(cat "$VMDIR/kernel-$k/abi")-amd64
	version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
	root=$PKGDIR/root-$k
	out=$PKGDIR/$k
	log=$out/root.log
	SUITE=$(suite_of "$k")
	BASE=$PKGDIR/base-$SUITE.tar
	ARCHIVES=$PKGDIR/archives/$SUITE
	case "$SUITE" in
	bookworm) release="Debian 12" ;;
	trixie) release="Debian 13" ;;
	esac
	rm -rf "$root" "$out"
	mkdir -p "$root" "$out/vm/pkg" "$ARCHIVES/partial"

	[ -f "$BASE" ] || make_base || return 1
	tar -C "$root" -xf "$BASE" || return 1
	cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
	# 6.12's and 7.3's headers come from the release's backports.
	if [ "$k" != 6.1 ]; then
		echo "deb $(debian_mirror) $SUITE-backports main" \
			>"$root/etc/apt/sources.list.d/$SUITE-backports.list"
	fi
	# 6.12's headers depend on its image, whose initramfs-tools would
	# spend ten minutes on an initramfs nobody boots: tiny-initramfs is
	# the other linux-initramfs-tool it accepts, and takes seconds.
	# (7.x's headers no longer depend on the image.)
	extra=
	[ "$k" != 6.12 ] || extra=tiny-initramfs
	mkdir -p "$root/root/debs" "$root/root/client"
	pkgs=
	for p in membroker-dkms libmembroker0 libmembroker-dev \
		 membroker-tools; do
		set -- "$DEBDIR/${p}_${version}_"*.deb
		[ -f "$1" ] || { not_ok "$p: no .deb in build/deb"; return 1; }
		cp "$1" "$root/root/debs/"
		pkgs="$pkgs ./$(basename "$1")"
	done
	cp "$ROOT/selftests/pkg/client.c" "$root/root/client/"

	echo "pkg: $k ($abi): apt-get install$pkgs linux-headers-$abi"
	check "apt-get update in a fresh $release root ($SUITE)" \
		in_root apt-get update || return 1
	# Recommends left out: dkms's would add the headers of the release's
	# default kernel to every kernel's test.  The compiler and pkg-config
	# are what a user writing a client installs.
	# shellcheck disable=SC2086
	check "apt-get install of the packages and linux-headers-$abi" \
		in_root sh -c "cd /root/debs && apt-get install -y \
			--no-install-recommends $pkgs linux-headers-$abi \
			pkgconf gcc libc6-dev $extra" || return 1

	in_root dkms status membroker >"$out/dkms-status" 2>&1
	cat "$out/dkms-status" >>"$log"
	check "dkms status: membroker/$version installed for $abi" \
		grep -q "^membroker/$version, $abi, x86_64: installed" \
		"$out/dkms-status"
	ko=$(ls "$root/lib/modules/$abi/updates/dkms/membroker.ko"* 2>/dev/null |
		head -n1)
	if [ -z "$ko" ]; then
		not_ok "no membroker.ko in /lib/modules/$abi/updates/dkms"
	else
		case "$ko" in
		*.xz) xz -dc "$ko" >"$out/membroker.ko" ;;
		*) cp "$ko" "$out/membroker.ko" ;;
		esac
		check "the DKMS-built ${ko##*/} is for $abi" \
			sh -c "modinfo -F vermagic '$out/membroker.ko' |
				grep -q '^$abi '"
	fi

	check "client builds with pkg-config --cflags --libs membroker" \
		in_root sh -c 'cd /root/client && gcc -Wall -Wextra -Werror \
			-o client client.c $(pkg-config --cflags --libs membroker)'
	in_root /root/client/client meminfo >"$out/client-meminfo.tap" 2>&1
	echo "client meminfo: rc=$?" >>"$out/client-meminfo.tap"
	count_tap "$out/client-meminfo.tap"
	check "client builds static with pkg-config --static" \
		in_root sh -c 'cd /root/client && gcc -static -Wall -Wextra \
			-Werror -o client-static client.c \
			$(pkg-config --static --cflags --libs membroker)' &&
		cp "$root/root/client/client-static" "$out/vm/pkg/client"
	check "membrokerctl --help runs on the installed library" \
		in_root membrokerctl --help

	echo "$passed $failed 0" >"$RESULTS/pkg-$k.counts"
	[ -f "$out/membroker.ko" ] || return 1

	# The VM: the static client first (the module selftests end by
	# unloading it), then the module selftests.
	echo client >"$out/vm/pkg/order"
	[ -x "$out/vm/pkg/client" ] || : >"$out/vm/pkg/order"
	VM_KERNEL=$k MODULE=$out/membroker.ko \
		TESTDIRS="$out/vm/pkg $BUILD/selftests/membroker" \
		"$ROOT/scripts/vm/initramfs.sh" "$out/vm.cpio.gz" || return 1
	VM_KERNEL=$k INITRD=$out/vm.cpio.gz CONSOLE=$out/vm.console.log \
		VM_EXTRA_ARGS=$(stream_disk_args) \
		VM_TIMEOUT=${VM_TIMEOUT:-900} \
		"$ROOT/scripts/vm/run.sh" check MB_TIMEOUT=600 \
		MB_FUZZ_MESSAGES=${PKG_FUZZ_MESSAGES:-2000} ${PKG_TESTS:-} ||
		true
	"$ROOT/scripts/vm/parse-log.sh" "$out/vm.console.log" \
		"$RESULTS/pkg-$k-vm.counts" || return 1
	[ "$failed" = 0 ]
}

case "${1:-}" in
debs)
	debs_step
	;;
6.1 | 6.12 | 7.3)
	kernel_step "$1"
	;;
*)
	die "usage: $0 debs|6.1|6.12|7.3"
	;;
esac
