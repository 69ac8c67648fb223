#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The library from C++: tests/cxx_opts.cc (MB_OPTS() for every options
# struct) built as C++11, 14, 17 and 20, and the examples
# (examples/minimal.c, the SQLite example) as C++11 and C++20, with
# -Wall -Wextra -Wpedantic -Werror, linked against libmembroker.a, and
# run where they can run here.  TAP; counts to COUNTS.
#
# usage: cxx.sh LIBMEMBROKER_A WORKDIR COUNTS "CXX CXXFLAGS" "LIBS"
set -u

lib=$1 work=$2 counts=$3 cxx=$4 libs=$5
dir=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$dir/.." && pwd)
pass=0 fail=0 n=0
flags="-Wall -Wextra -Wpedantic -Werror -pthread"

t() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"; pass=$((pass + 1))
	else
		echo "not ok $n - $2"; fail=$((fail + 1))
	fi
}

# build NAME STD SOURCE EXTRA_LIBS: 0 when it built without a warning
build() {
	rm -f "$work/$1-$2"
	# shellcheck disable=SC2086
	$cxx -x c++ -std="$2" $flags -I"$dir/include" -o "$work/$1-$2" "$3" \
		-x none "$lib" $4 $libs >"$work/$1-$2.log" 2>&1
	rc=$?
	[ $rc = 0 ] || sed 's/^/# /' "$work/$1-$2.log" | head -n 6
	return $rc
}

mkdir -p "$work"
sqlite=$(pkg-config --cflags --libs sqlite3 2>/dev/null)
for std in c++11 c++14 c++17 c++20; do
	build cxx_opts "$std" "$dir/tests/cxx_opts.cc" ""
	t $? "$std: tests/cxx_opts.cc builds with $flags"
	out=$("$work/cxx_opts-$std" 2>&1)
	rc=$?
	[ $rc = 0 ] || printf '%s\n' "$out" | grep '^not ok' | sed 's/^/# /'
	t $rc "$std: ... and MB_OPTS() filled what the library acted on"

	# the examples with the oldest and the newest standard only: the
	# header is what changes between them, and cxx_opts covers it
	case $std in c++14|c++17) continue ;; esac
	build minimal "$std" "$root/examples/minimal.c" ""
	t $? "$std: examples/minimal.c builds as C++"
	out=$(MEMBROKER_SOURCE=fake "$work/minimal-$std" 0 2>&1)
	[ "$out" = "source: fake" ]
	t $? "$std: ... and runs ($out)"

	build sqlite-cache "$std" "$root/examples/sqlite-cache/sqlite-cache.c" \
		"$sqlite"
	t $? "$std: examples/sqlite-cache/sqlite-cache.c builds as C++"
done

echo "1..$n"
mkdir -p "$(dirname "$counts")"
echo "$pass $fail 0" >"$counts"
echo "# $(basename "$counts" .counts): passed $pass failed $fail skipped 0"
[ "$fail" = 0 ]
