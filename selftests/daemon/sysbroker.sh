#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The system broker in the test VM, with the module: the scenario of
# mb-sysload (four processes with a cheap and an expensive cache each, a
# job that needs memory worth a third of the caches) once with membrokerd.
# It asserts what must hold whatever the machine's speed: every process
# registered, LOW came and went, the daemon decided and recorded it, no
# expensive cache gave memory while a cheap one still held some, the
# caches gave at most 1.5 times what was needed (the steps wait for their
# effect), and nobody was killed.  The figures (overshoot, time in LOW)
# are printed; make bench compares them with the processes on their own.

n=0
failed=0

check() {
	n=$((n + 1))
	desc=$1
	shift
	if "$@"; then
		echo "ok $n - $desc"
	else
		failed=$((failed + 1))
		echo "not ok $n - $desc"
		echo "#   $line"
	fi
}

field() {
	echo "$line" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'
}

echo "TAP version 13"
echo "1..8"
mb-sysload daemon 1 >/tmp/sysload.out 2>&1
grep '^MB-SYS' /tmp/sysload.out | sed 's/^/# /'
line=$(grep '^MB-SYS-RUN' /tmp/sysload.out | tail -n 1)
T=/tmp/sysload/daemon-1

check "the scenario ran to its end" [ -n "$line" ]
check "all four processes registered, their 8 clerks listed" \
	[ "$(field registered)" = 8 ]
check "the job brought LOW, and LOW ended" \
	[ "$(field low_ms)" != none ] && [ "$(field low_ms)" != never ]
check "the daemon asked, and recorded what it asked (its ring)" \
	[ "$(field decisions)" -gt 0 ]
check "the caches gave memory back" [ "$(field released)" -gt 0 ]
check "no expensive cache gave while a cheap one held memory" \
	[ "$(field misordered)" = 0 ]
check "at most 1.5 times what was needed was released" \
	[ "$(field released)" -le $(($(field needed) * 3 / 2)) ]
check "no OOM kill" [ "$(field oom)" = 0 ]
echo "# overshoot $(field overshoot) (released $(field released) for" \
	"$(field needed) needed), LOW for $(field low_ms) ms"
if [ "$failed" != 0 ]; then
	for f in "$T"/*.out "$T"/daemon.log "$T"/decisions.txt; do
		echo "# $f:"
		grep -v ' sample \| notify ' "$f" | tail -n 30 | sed 's/^/#   /'
	done
fi
[ "$failed" = 0 ]
