#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# An install as a packager or a user does it: the library built once
# with the defaults (`make`), then installed into a DESTDIR under a
# PREFIX that is not the default and a multiarch LIBDIR.  pkg-config,
# reading the installed membroker.pc, must hand out the installed
# paths: examples/minimal.c is built against them, dynamically and
# statically (Libs.private), and run.  `make uninstall` then leaves no
# file behind.  TAP; counts to COUNTS.
#
# usage: install.sh WORKDIR COUNTS [MAKE]
set -u

work=$1 counts=$2 make=${3:-make}
dir=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$dir/.." && pwd)
dest=$work/destdir
prefix=/opt/membroker-test
libdir=$prefix/lib/x86_64-linux-gnu
pass=0 fail=0 n=0

t() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"; pass=$((pass + 1))
	else
		echo "not ok $n - $2"; fail=$((fail + 1))
	fi
}

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
dest=$work/destdir
vars="DESTDIR=$dest PREFIX=$prefix LIBDIR=$libdir"

# built first with the defaults, as `make -C lib` leaves it
$make -C "$dir" -s all man >"$work/build.log" 2>&1
t $? "make; make man (default PREFIX)"
# shellcheck disable=SC2086
$make -C "$dir" -s install $vars >"$work/install.log" 2>&1
t $? "make install $vars"

pc=$dest$libdir/pkgconfig/membroker.pc
grep -qx "prefix=$prefix" "$pc" 2>/dev/null
t $? "membroker.pc says prefix=$prefix ($(sed -n 's/^prefix=//p' "$pc" \
	2>/dev/null))"
[ -f "$dest$prefix/include/membroker.h" ] &&
	[ -f "$dest$libdir/libmembroker.a" ] &&
	[ -f "$dest$libdir/libmembroker.so.0" ] &&
	[ -L "$dest$libdir/libmembroker.so" ]
t $? "header, archive, shared library and its links in place"
[ -f "$dest$prefix/share/man/man3/mb_monitor_new.3" ] &&
	[ -f "$dest$prefix/share/man/man3type/mb_monitor_opts.3type" ]
t $? "man pages under PREFIX/share/man"

# pkg-config as on the target, where the tree lives at $prefix: the
# prefix is redefined to where DESTDIR put it
pcv() {
	PKG_CONFIG_PATH=$dest$libdir/pkgconfig pkg-config \
		--define-variable=prefix="$dest$prefix" "$@" membroker
}
flags=$(pcv --cflags --libs)
t $? "pkg-config --cflags --libs membroker: $flags"
case $flags in
*"-I$dest$prefix/include"*"-L$dest$libdir"*|*"-L$dest$libdir"*"-I$dest$prefix/include"*)
	t 0 "... the installed include and library directories" ;;
*)	t 1 "... the installed include and library directories" ;;
esac

# shellcheck disable=SC2086
cc -o "$work/minimal" "$root/examples/minimal.c" $flags \
	-Wl,-rpath,"$dest$libdir" >"$work/cc.log" 2>&1
rc=$?
[ $rc = 0 ] || sed 's/^/# /' "$work/cc.log" | head -n 5
t $rc "examples/minimal.c built against the installed shared library"
out=$(MEMBROKER_SOURCE=fake "$work/minimal" 0 2>&1)
[ "$out" = "source: fake" ] &&
	ldd "$work/minimal" | grep -q "$dest$libdir/libmembroker.so.0"
t $? "... and runs with it ($out)"

# shellcheck disable=SC2086
cc -static -o "$work/minimal-static" "$root/examples/minimal.c" \
	$(pcv --cflags --static --libs) >"$work/cc-static.log" 2>&1
rc=$?
[ $rc = 0 ] || grep -v 'statically linked' "$work/cc-static.log" |
	sed 's/^/# /' | head -n 5
t $rc "built statically with pkg-config --static (Libs.private)"
out=$(MEMBROKER_SOURCE=fake "$work/minimal-static" 0 2>&1)
[ "$out" = "source: fake" ]
t $? "... and runs ($out)"

# shellcheck disable=SC2086
$make -C "$dir" -s uninstall $vars >"$work/uninstall.log" 2>&1
t $? "make uninstall $vars"
left=$(find "$dest" ! -type d 2>/dev/null)
[ -z "$left" ]
t $? "nothing installed is left ($(echo $left | cut -c1-200))"

echo "1..$n"
mkdir -p "$(dirname "$counts")"
echo "$pass $fail 0" >"$counts"
echo "# $(basename "$counts" .counts): passed $pass failed $fail skipped 0"
[ "$fail" = 0 ]
