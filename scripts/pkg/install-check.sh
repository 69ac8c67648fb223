#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check's "install" phase: the cheap half of issue 11, on the host.
#   - Kbuild at the top: `make -C KDIR M=DIR`, DIR the repository's
#     Kbuild, kmod/ and include/ copied with their layout (as DKMS has
#     them; a copy, so that kmod/'s objects, which the VM tests use, are
#     not rebuilt under them), builds kmod/membroker.ko for KDIR's kernel.
#   - `make install DESTDIR=... PREFIX=/usr` with debian/rules' variables
#     installs what the sources call for (a man page per exported
#     function, the module's sources in the DKMS tree ...), and exactly the files of the Debian packages (dpkg-deb -c of
#     build/deb/*.deb, built by deb.sh --reuse, so only when the tree is
#     newer than them), less what only Debian adds (copyright, changelog,
#     lintian overrides) and with the man pages uncompressed;
#   - with the default PREFIX (/usr/local), everything lands under it
#     but the D-Bus policy, which goes where dbus-daemon reads it (/etc);
#   - `make uninstall` with the same variables leaves no file and no
#     membroker directory, in both cases.
# One line per check; counts in build/results/install.counts.
set -uo pipefail
. "$(dirname "$0")/../vm/common.sh"

RESULTS=${RESULTS:-$BUILD/results}
KDIR=${KDIR:-/usr/src/linux-headers-$(vm_abi)-amd64}
work=$BUILD/install-check
counts=$RESULTS/install.counts
mkdir -p "$RESULTS"
rm -f "$counts"
rm -rf "$work"
mkdir -p "$work"

passed=0 failed=0
t() {
	local rc=$1
	shift

	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		echo "ok: $*"
	else
		failed=$((failed + 1))
		echo "FAIL: $*"
	fi
}

# ---- Kbuild at the top ----
top=$work/kbuild
mkdir -p "$top"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
	Kbuild kmod include | xargs -0 cp --parents -t "$top")
make -C "$KDIR" M="$top" modules >"$work/kbuild.log" 2>&1
rc=$?
release=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' \
	"$KDIR/include/generated/utsrelease.h")
[ "$rc" = 0 ] && [ -f "$top/kmod/membroker.ko" ] &&
	modinfo -F vermagic "$top/kmod/membroker.ko" | grep -q "^$release "
t $? "make -C KDIR M=<the top> builds kmod/membroker.ko for $release"

# ---- make install, as debian/rules calls it, against the packages ----
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
debvars="PREFIX=/usr LIBDIR=/usr/lib/$multiarch UNITDIR=/lib/systemd/system
DOCDIR=/usr/share/doc/membroker-dkms MAN3TYPEDIR=/usr/share/man/man3"

# The files (and links) under $1, one path a line, sorted.
files_of() {
	(cd "$1" && find . ! -type d | sed 's|^\.||' | LC_ALL=C sort)
}

# The members of the packages, as make install would have put them.
deb_files() {
	local deb

	for deb in "$BUILD"/deb/*.deb; do
		case "$deb" in *-dbgsym_*) continue ;; esac
		dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }'
	done | sed -E 's|^\.||; s|^(/usr/share/man/.*)\.gz$|\1|' |
		grep -vE '^/usr/share/doc/[^/]+/(changelog(\.Debian)?\.gz|copyright)$|^/usr/share/lintian/' |
		LC_ALL=C sort
}

dest=$work/usr
# shellcheck disable=SC2086
make -C "$ROOT" install DESTDIR="$dest" $debvars >"$work/install.log" 2>&1
t $? "make install DESTDIR=... $(echo $debvars)"
files_of "$dest" >"$work/install.list"

# The packages are made by this same make install, so a file missing
# from it would be missing from both: what issue 11 lists must be there,
# as the sources say (a man page per function the header exports, the
# module's every source in the DKMS tree).
version=$(sed -n 's/^VERSION[[:space:]]*:= *//p' "$ROOT/lib/Makefile")
{
	echo /usr/include/membroker.h
	for f in libmembroker.a libmembroker.so libmembroker.so.0 \
		 pkgconfig/membroker.pc; do
		echo "/usr/lib/$multiarch/$f"
	done
	echo /usr/bin/membrokerctl
	echo /usr/sbin/membrokerd
	grep '^MB_API' "$ROOT/lib/include/membroker.h" |
		grep -o 'mb_[a-z0-9_]*(' | sed 's|(|.3|; s|^|/usr/share/man/man3/|'
	echo /usr/share/man/man8/membrokerctl.8
	echo /usr/share/man/man8/membrokerd.8
	for d in modules-load.d modprobe.d; do
		echo "/usr/share/doc/membroker-dkms/examples/$d/membroker.conf"
	done
	(cd "$ROOT" && git ls-files Kbuild 'kmod/*.[ch]' kmod/Kbuild \
		kmod/Makefile include/uapi/linux/membroker.h) |
		sed "s|^|/usr/src/membroker-$version/|"
	echo "/usr/src/membroker-$version/dkms.conf"
} | LC_ALL=C sort -u >"$work/expected.list"
missing=$(LC_ALL=C comm -23 "$work/expected.list" "$work/install.list")
t "$([ -z "$missing" ]; echo $?)" \
	"the $(wc -l <"$work/expected.list") files the sources call for among them" \
	"${missing:+(missing: $(echo $missing))}"

if "$ROOT/scripts/pkg/deb.sh" --reuse >"$work/deb.log" 2>&1; then
	deb_files >"$work/deb.list"
	diff -u "$work/deb.list" "$work/install.list" >"$work/install.diff"
	t $? "make install puts the packages' $(wc -l <"$work/deb.list") files, no more ($(wc -l <"$work/install.list"))"
	sed -n '3,$p' "$work/install.diff" | head -n 20
else
	tail -n 20 "$work/deb.log"
	t 1 "make deb (see ${work#"$ROOT"/}/deb.log)"
fi

# shellcheck disable=SC2086
make -C "$ROOT" uninstall DESTDIR="$dest" $debvars >"$work/uninstall.log" 2>&1
t $? "make uninstall, the same variables"
left=$( (cd "$dest" && find . ! -type d; find . -type d -name '*membroker*'))
t "$([ -z "$left" ]; echo $?)" "make uninstall leaves nothing of ours" \
	"${left:+(left: $(echo $left))}"

# ---- the defaults: PREFIX=/usr/local ----
dest=$work/local
make -C "$ROOT" install DESTDIR="$dest" >"$work/install-local.log" 2>&1
t $? "make install DESTDIR=... (PREFIX=/usr/local)"
# but the bus policy: dbus-daemon reads none under /usr/local
# (daemon/Makefile)
outside=$(files_of "$dest" | grep -v '^/usr/local/' |
	grep -vx /etc/dbus-1/system.d/membrokerd.conf)
t "$([ -z "$outside" ]; echo $?)" \
	"everything under /usr/local, the bus policy in /etc" \
	"${outside:+(not: $(echo $outside))}"
[ -f "$dest/usr/local/src/membroker-$version/dkms.conf" ] &&
	[ -f "$dest/usr/local/include/membroker.h" ] &&
	[ -x "$dest/usr/local/bin/membrokerctl" ]
t $? "the DKMS tree, the header and membrokerctl among them"
make -C "$ROOT" uninstall DESTDIR="$dest" >"$work/uninstall-local.log" 2>&1
t $? "make uninstall (PREFIX=/usr/local)"
left=$( (cd "$dest" && find . ! -type d; find . -type d -name '*membroker*'))
t "$([ -z "$left" ]; echo $?)" "make uninstall leaves nothing of ours" \
	"${left:+(left: $(echo $left))}"

echo "$passed $failed 0" >"$counts"
[ "$failed" = 0 ]
