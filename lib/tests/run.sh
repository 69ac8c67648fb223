#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Run every unit test binary in a directory, print their TAP output and
# write "PASSED FAILED SKIPPED" to a counts file.  A binary that dies
# (sanitizer report, signal, timeout) or exits non-zero without a failing
# test line counts as one more failure.
#
# usage: run.sh BINDIR COUNTS_FILE [TIMEOUT_SECONDS]
set -u

dir=$1
counts=$2
limit=${3:-120}
pass=0 fail=0 skip=0

# A membrokerd running on this machine must not take part: the monitors
# look for one where none is (test_sysbroker plays its own).
MEMBROKERD_SOCKET=$dir/no-membrokerd.sock
export MEMBROKERD_SOCKET
unset MEMBROKER_SYSTEM_BROKER

for t in "$dir"/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	echo "# $name"
	out=$(timeout "$limit" "$t" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	p=$(printf '%s\n' "$out" | grep -c '^ok .*# SKIP' )
	s=$p
	p=$(printf '%s\n' "$out" | grep -c '^ok ')
	f=$(printf '%s\n' "$out" | grep -c '^not ok ')
	p=$((p - s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited with status $rc"
		f=1
	fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done

mkdir -p "$(dirname "$counts")"
echo "$pass $fail $skip" > "$counts"
echo "# $(basename "$counts" .counts): passed $pass failed $fail skipped $skip"
[ "$fail" -eq 0 ]
