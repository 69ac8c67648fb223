#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The static library exports what the shared one does and nothing more:
# every global symbol libmembroker.a defines is in libmembroker.map's
# global list (and every one of those is defined), and an application
# defining functions named like the library's internal ones links
# against it and runs (tests/app_clash.c).  TAP; counts to COUNTS.
#
# usage: static.sh LIBMEMBROKER_A WORKDIR COUNTS "CC CFLAGS" "LIBS"
set -u

lib=$1 work=$2 counts=$3 cc=$4 libs=$5
dir=$(cd "$(dirname "$0")/.." && pwd)
pass=0 fail=0 n=0

t() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"; pass=$((pass + 1))
	else
		echo "not ok $n - $2"; fail=$((fail + 1))
	fi
}

mkdir -p "$work"
sed -n '/global:/,/local:/s/^[[:space:]]*\(mb_[a-z0-9_]*\);.*/\1/p' \
	"$dir/libmembroker.map" | sort -u >"$work/api"
nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u \
	>"$work/defined"
extra=$(comm -23 "$work/defined" "$work/api")
missing=$(comm -13 "$work/defined" "$work/api")
[ -z "$extra" ]
t $? "libmembroker.a defines no global symbol outside the map ($(echo \
	$extra | wc -w): $(echo $extra | cut -c1-200))"
[ -z "$missing" ]
t $? "libmembroker.a defines every symbol of the map ($missing)"

# shellcheck disable=SC2086
$cc -I"$dir/include" -o "$work/app_clash" "$dir/tests/app_clash.c" \
	"$lib" $libs >"$work/app_clash.log" 2>&1
rc=$?
[ $rc = 0 ] || sed 's/^/# /' "$work/app_clash.log" | head -n 5
t $rc "an application defining mb_lock, mb_now_ns, mb_classify links"
if [ $rc = 0 ]; then
	"$work/app_clash" >/dev/null
	t $? "... and runs, its functions and the library's each called"
else
	t 1 "... and runs (not built)"
fi

echo "1..$n"
mkdir -p "$(dirname "$counts")"
echo "$pass $fail 0" >"$counts"
echo "# $(basename "$counts" .counts): passed $pass failed $fail skipped 0"
[ "$fail" = 0 ]
